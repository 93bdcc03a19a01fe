/* storage.h: plume's storage engine, the one public header of storage/.
 *
 * A store is one LMDB environment in a directory. It keeps a catalog of series (a string key
 * such as "010000A89000:a21026:hour" mapped to a compact id, with labels), columnar compressed
 * chunks of points per series and time window, a write-ahead log for points not yet sealed
 * into chunks, and a few named key/value tables that the layers above use for their own
 * records (registry, alert outbox, ...). One writer thread owns every write transaction and
 * commits in groups; readers take consistent snapshots that never block the writer.
 *
 * The on-disk format is written down in storage/FORMAT.md.
 *
 * Conventions: functions return 0 or a negative errno-style code (STORAGE_E* below or -errno);
 * results come back through out-parameters; storage_strerror() names a code. This layer never
 * logs. Unless a function says otherwise it may be called from any thread.
 *
 * Caveats
 * - A storage_reader sees everything committed before it was opened. It may also see points
 *   committed later (recent points live in an in-memory head that readers share). Keep
 *   readers short-lived (LMDB pins the pages a reader can see, and the file grows).
 * - A reader of a store opened read-only beside a writing process sees exactly one snapshot:
 *   the chunks and the write-ahead log as its transaction found them (the log is decoded
 *   when the reader opens, so opening one costs time in proportion to the unsealed points).
 *   Series created after the read-only open are not seen.
 * - A reader must be used by one thread at a time, and closed by the thread that uses it.
 * - Do not wait for the writer (storage_write, storage_sync, storage_retention_run, close)
 *   while holding a reader on the same thread: growing the map waits for open readers.
 * - Timestamps are int64 seconds since the Unix epoch, UTC.
 */
#ifndef PLUME_STORAGE_H
#define PLUME_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes beyond -errno. */
enum {
    STORAGE_ECORRUPT = -10001,  /* a chunk or record failed to decode or verify */
    STORAGE_EFORMAT = -10002,   /* the database was written by an incompatible format version */
    STORAGE_ELMDB = -10003,     /* an LMDB error with no errno equivalent */
    STORAGE_ECLOSED = -10004,   /* the store is closing; the write was not accepted */
};

const char *storage_strerror(int code);

typedef struct storage storage;               /* one open store; opaque */
typedef struct storage_batch storage_batch;   /* points and records to commit together */
typedef struct storage_reader storage_reader; /* a read snapshot */
typedef struct storage_iter storage_iter;     /* points of one series in a time range */

typedef uint32_t storage_sid; /* series id: dense from 1, never reused; 0 means none */

/* The value columns a point may carry. A series holds only the columns its source sent;
 * an absent column costs nothing. */
enum storage_col {
    STORAGE_COL_AVG = 0, /* the average, or the real-time value (rtd) of real-time series */
    STORAGE_COL_MIN,
    STORAGE_COL_MAX,
    STORAGE_COL_COU,     /* cumulative amount over the period (kg, m3) */
    STORAGE_COL_ZSAVG,   /* oxygen-corrected (折算) average or real-time value */
    STORAGE_COL_ZSMIN,
    STORAGE_COL_ZSMAX,
    STORAGE_NCOLS
};

/* Column names as they appear in keys and protocols: "avg", "min", ..., "zsmax".
 * storage_col_parse() also accepts "rtd" (AVG) and "zsrtd" (ZSAVG); -1 if unknown. */
const char *storage_col_name(int col);
int storage_col_parse(const char *name);

/* Interval classes. A series' class decides how long its chunk windows are (FORMAT.md) and
 * which retention applies to it. */
enum storage_interval {
    STORAGE_IV_RTD = 0, /* real-time values, seconds apart */
    STORAGE_IV_MIN,     /* minute records */
    STORAGE_IV_HOUR,    /* hourly records, and series of unknown interval */
    STORAGE_IV_DAY,     /* daily records */
    STORAGE_NIV,
    STORAGE_IV_AUTO = -1 /* for storage_series_ensure: derive from the key */
};
const char *storage_interval_name(int iv);

/* One point: a timestamp, up to STORAGE_NCOLS values, and the data flag. */
typedef struct storage_point {
    int64_t ts;                /* period start, seconds since epoch, UTC */
    double v[STORAGE_NCOLS];   /* v[c] is meaningful only when mask has bit c */
    uint8_t mask;              /* bit c set: column c present */
    uint8_t flag;              /* data flag as sent ('N', 'F', 'M', ...); 0: none sent */
} storage_point;

/* ---- Open and close ---------------------------------------------------------------- */

typedef struct storage_options {
    uint64_t map_size;             /* initial LMDB map size in bytes; 0: default. The map grows
                                      on demand, so this is a starting point, not a cap. */
    uint32_t commit_interval_ms;   /* longest a submitted batch waits for its group commit;
                                      0: default (2 ms) */
    const char *const *kv_tables;  /* NULL-terminated names of the extra key/value tables the
                                      caller will use (each <= 32 bytes); may be NULL */
    bool read_only;                /* open for reading only: no writer thread, no WAL replay */
} storage_options;

/* Opens (creating if needed) the store in directory dir, replays the write-ahead log, and
 * starts the writer thread. opts may be NULL for defaults. On success *out owns the store
 * until storage_close(). */
int storage_open(const char *dir, const storage_options *opts, storage **out);

/* Waits for every submitted batch to commit (their callbacks run), stops the writer, and
 * closes the environment. Readers and iterators must be closed first. NULL is a no-op. */
void storage_close(storage *st);

/* ---- Series catalog ---------------------------------------------------------------- */

/* Finds the series with this key, creating it if absent. iv is the interval class for a new
 * series, or STORAGE_IV_AUTO to take it from the key (a ":rtd", ":min", ":hour" or ":day"
 * field, e.g. "MN:a21026:hour" or "MN:a21026:hour.calc"; STORAGE_IV_HOUR otherwise).
 * A new series is durable with the first commit after its creation. Keys are 1 to 255 bytes
 * with no NUL. Returns 0 (found or created) or -EINVAL (bad key). */
int storage_series_ensure(storage *st, const char *key, int iv, storage_sid *out);

/* Finds an existing series; -ENOENT if there is none. */
int storage_series_lookup(storage *st, const char *key, storage_sid *out);

/* Copies the key of series sid into buf (NUL-terminated); -ENOENT, or -ERANGE if len is too
 * small. */
int storage_series_key(storage *st, storage_sid sid, char *buf, size_t len);

/* The interval class of series sid, or -ENOENT. */
int storage_series_interval(storage *st, storage_sid sid);

/* Number of series; ids run from 1 to this number. */
uint32_t storage_series_count(storage *st);

/* Labels are "name=value" pairs, one per line ("mn=0100...\npollutant=a21026"). Setting
 * replaces all labels of the series; it is durable with the next commit. get copies them
 * into buf (NUL-terminated; "" when none). */
int storage_series_set_labels(storage *st, storage_sid sid, const char *labels);
int storage_series_labels(storage *st, storage_sid sid, char *buf, size_t len);

/* ---- Writing --------------------------------------------------------------------------- */

/* A batch collects points and key/value records that commit together, atomically. */
storage_batch *storage_batch_create(void);
void storage_batch_destroy(storage_batch *b);
void storage_batch_clear(storage_batch *b);
size_t storage_batch_points(const storage_batch *b);

/* Adds a point. A point with the same series and timestamp as one already stored replaces it
 * (devices resend); points may arrive in any order, late by days. -EINVAL if sid is 0 or the
 * point has no column. */
int storage_batch_add(storage_batch *b, storage_sid sid, const storage_point *p);

/* Adds a put or a delete of a record in a named key/value table (one given in
 * storage_options.kv_tables). key is 1 to 511 bytes. The bytes are copied. */
int storage_batch_kv_put(storage_batch *b, const char *table, const void *key, size_t klen,
                         const void *val, size_t vlen);
int storage_batch_kv_del(storage_batch *b, const char *table, const void *key, size_t klen);

/* Called on the writer thread once the group commit holding the batch is durable (status 0)
 * or has failed (status < 0, nothing of the batch is stored). Must not block for long. */
typedef void (*storage_commit_cb)(void *arg, int status);

/* Queues b for the writer thread and takes ownership of it (it is destroyed after the
 * commit). cb may be NULL. Returns 0, or STORAGE_ECLOSED (b is destroyed, cb not called). */
int storage_submit(storage *st, storage_batch *b, storage_commit_cb cb, void *arg);

/* Commits b and waits until it is durable. b stays owned by the caller and is left empty
 * (whatever the result). Large batches (imports, backfills: >= 20,000 points) are sorted and
 * written straight into chunks in one transaction, bypassing the write-ahead log. Returns 0,
 * -EINVAL (a point of an unknown series) or -ENOENT (an unknown key/value table): then
 * nothing of the batch is stored. */
int storage_write(storage *st, storage_batch *b);

/* Like storage_write, but writes the points straight into chunks (after sealing the head)
 * whatever the batch size: for bulk loads such as imports, whose points would otherwise
 * pass through the write-ahead log only to be sealed from it at close. */
int storage_write_direct(storage *st, storage_batch *b);

/* Waits until everything submitted so far is durable. */
int storage_sync(storage *st);

/* ---- Reading --------------------------------------------------------------------------- */

int storage_reader_open(storage *st, storage_reader **out);
void storage_reader_close(storage_reader *r);

/* Iterates the points of sid with from <= ts <= to, in time order. next returns 1 with a
 * point, 0 at the end, or a negative code. */
int storage_iter_open(storage_reader *r, storage_sid sid, int64_t from, int64_t to,
                      storage_iter **out);
int storage_iter_next(storage_iter *it, storage_point *out);
void storage_iter_close(storage_iter *it);

/* Hands the points of column col of sid with from <= ts <= to to fn, in time order, a block
 * at a time: ts, v and flag (the data flag, 0 when none was sent) hold n >= 1 points, all
 * having the column; the arrays are borrowed for the call only. The points are those the
 * iterator returns (head points override chunk points of the same timestamp) without the
 * ones lacking col. A non-zero return from fn stops the scan and is returned; otherwise 0
 * or a negative code. Decodes only the timestamps, the column and the flags of each chunk:
 * the fast way to read every point of a long range. */
typedef int (*storage_scan_fn)(void *arg, const int64_t *ts, const double *v,
                               const uint8_t *flag, size_t n);
int storage_scan_col(storage_reader *r, storage_sid sid, int col, int64_t from, int64_t to,
                     storage_scan_fn fn, void *arg);

/* A number that changes whenever a commit changes the points of sid (a write of any of its
 * points, a retention run dropping chunks), for caches of results computed from them: equal
 * numbers mean equal points. A reader opened after reading the number sees at least the
 * points of that version. Numbers count from 0 at storage_open (in memory only). */
uint64_t storage_series_version(storage *st, storage_sid sid);

/* The newest point of sid: 0, or -ENOENT if the series has none. */
int storage_latest(storage_reader *r, storage_sid sid, storage_point *out);

/* One time bucket of a column's values. Fields are meaningful only when count > 0. */
typedef struct storage_bucket {
    int64_t start;              /* bucket start (seconds) */
    uint64_t count;
    double sum, sumsq;          /* for averages and variance */
    double min, max, first, last;
    int64_t min_ts, max_ts, first_ts, last_ts;
} storage_bucket;

/* Aggregates column col of sid over [from, to] into buckets of width_s seconds whose starts
 * are align + k * width_s. Writes at most max buckets, in time order, only those with
 * count > 0, and sets *n. A chunk that lies wholly inside one bucket contributes its stored
 * aggregates without being decoded. -ERANGE if more than max buckets would be written (the
 * first max are filled). */
int storage_aggregate(storage_reader *r, storage_sid sid, int col, int64_t from, int64_t to,
                      int64_t width_s, int64_t align, storage_bucket *out, size_t max,
                      size_t *n);

/* ---- Key/value tables (for the layers above) --------------------------------------- */

/* Copies the value of key from table into a malloc'd buffer the caller frees. -ENOENT. */
int storage_kv_get(storage_reader *r, const char *table, const void *key, size_t klen,
                   void **val, size_t *vlen);

/* Calls fn for each record with key >= from (from may be NULL: the first key), in key order,
 * until fn returns non-zero (which storage_kv_scan then returns). The pointers are borrowed
 * for the duration of the call only. */
typedef int (*storage_kv_fn)(void *arg, const void *key, size_t klen, const void *val,
                             size_t vlen);
int storage_kv_scan(storage_reader *r, const char *table, const void *from, size_t flen,
                    storage_kv_fn fn, void *arg);

/* ---- Maintenance ------------------------------------------------------------------- */

typedef struct storage_stats {
    uint64_t series;
    uint64_t points;        /* distinct points, in chunks or not yet sealed */
    uint64_t chunks;
    uint64_t wal_points;    /* distinct points not yet sealed into chunks (in the log); with
                               more than 100,000 series unsealed, the points received */
    uint64_t file_bytes;    /* bytes the database files occupy on disk (as du counts) */
    uint64_t map_size;      /* current LMDB map size */
    uint64_t map_used;      /* bytes of the map in use (last page used x page size) */
    uint64_t commits;       /* write transactions committed since open */
    uint64_t commit_us_total; /* their total duration, microseconds */
} storage_stats;
/* Fills *out. Counting the unsealed points decodes the chunks they fall in, so the cost
 * grows with the number of series holding unsealed points. */
int storage_get_stats(storage *st, storage_stats *out);

/* Sets how long points of an interval class are kept (seconds; 0 = forever, the default).
 * Whole chunks whose window ended before now - keep are dropped by storage_retention_run(),
 * which returns the number of chunks dropped (>= 0) or a negative code. Points still in the
 * head are not affected until they are sealed. */
int storage_set_retention(storage *st, int iv, int64_t keep_s);
int storage_retention_run(storage *st, int64_t now);

/* Decodes every chunk and verifies its aggregates and ordering. fn (may be NULL) is called
 * for each fault with the series key, the window start and a message; returns the number
 * of faults found (0 = healthy), or a negative code if the check itself could not run. */
typedef void (*storage_fault_fn)(void *arg, const char *series, int64_t window_start,
                                 const char *msg);
int storage_check(storage *st, storage_fault_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
