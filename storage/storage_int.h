/* storage_int.h: internal to storage/. The structures the storage files share: the open
 * store, the in-memory catalog and head, batches, and the helpers that read and write
 * chunk records. Nothing outside storage/ includes this (tests may, to reach test hooks).
 *
 * Locking, in the order they may nest: map_lock (rwlock; readers hold it shared for their
 * life, the writer takes it exclusive only to grow the map) > head_mu (head arrays and the
 * checkpoint generation) > cat_lock (catalog arrays and hash) > queue_mu (writer queue).
 */
#ifndef PLUME_STORAGE_INT_H
#define PLUME_STORAGE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "chunk.h"
#include "storage.h"

#define STORAGE_FORMAT_VERSION 1u
#define STORAGE_DEFAULT_MAP ((uint64_t)1 << 40)  /* address space, not disk: 1 TiB */
#define STORAGE_CHUNK_KEY_LEN 14                 /* be64 window | be32 sid | be16 part */
#define STORAGE_PART_MAX 2000                    /* largest chunk value kept inline in a page */
#define STORAGE_DIRECT_MIN 20000                 /* storage_write bypasses the WAL from here */
#define STORAGE_HEAD_MAX_POINTS (1u << 20)       /* head points worth sealing once quiet */
#define STORAGE_HEAD_LOAD_POINTS (6u << 20)      /* head points that drain it under load */
#define STORAGE_HEAD_HARD_POINTS (1u << 24)      /* head array use that seals it at once */
#define STORAGE_SLICE_POINTS 100000              /* points sealed per draining transaction */
#define STORAGE_QUIET_POINTS 20000               /* recent commits under this: quiet */
#define STORAGE_QUIET_HALF_US 100000             /* their count halves every 100 ms */
#define STORAGE_SEAL_RETRY_US 1000000            /* a failed seal is tried again after 1 s */
#define STORAGE_GROUP_MAX_POINTS 200000          /* points per group commit */
#define STORAGE_KV_MAX 16

/* One point of a batch: compact, the values of present columns live in storage_batch.vals. */
typedef struct storage_bpoint {
    int64_t ts;
    uint32_t sid;
    uint32_t voff; /* index of the first present value in vals */
    uint8_t mask, flag;
} storage_bpoint;

struct storage_batch {
    storage_bpoint *pts;
    size_t n, cap;
    double *vals;
    size_t nv, vcap;
    uint8_t *kv; /* ops: [u8 del][u8 tlen][table][u16 klen][key][u32 vlen][val] */
    size_t kvlen, kvcap, nkv;
    /* set when queued */
    storage_commit_cb cb;
    void *arg;
    bool borrowed; /* storage_write: the caller keeps the batch */
    bool direct;   /* write points straight into chunks */
    int kind;      /* STORAGE_JOB_* */
    int64_t now;   /* retention: the reference time */
    uint64_t queued_us; /* when it was queued (monotonic) */
    struct storage_batch *next;
};

enum { STORAGE_JOB_BATCH = 0, STORAGE_JOB_RETENTION };

/* One catalog entry. */
typedef struct storage_series_rec {
    char *key;        /* owned, NUL-terminated */
    char *labels;     /* owned, NUL-terminated, never NULL */
    uint8_t iv;
    uint8_t klen;
    bool in_arena;           /* key and labels live in the load arena */
    uint32_t rev, saved_rev; /* record revision in memory, and the one durable in LMDB */
    uint32_t flushed_rev;    /* the revision the writer's current transaction holds */
    int64_t first_window;    /* oldest window ever given a chunk; INT64_MAX: none */
    int64_t last_window;     /* newest window holding a chunk; INT64_MIN: none */
} storage_series_rec;

/* One unsealed point in the head (head.c): the values of its present columns are
 * head_vals[voff...]; next links the series' following point in arrival order. */
typedef struct storage_hpoint {
    int64_t ts;
    uint32_t next;
    uint32_t voff;
    uint8_t mask, flag;
} storage_hpoint;

/* One series' chain of head points in arrival order (n == 0: none). */
typedef struct storage_head_series {
    uint32_t first, last, n;
} storage_head_series;

struct storage {
    MDB_env *env;
    MDB_dbi dbi_meta, dbi_series, dbi_chunks, dbi_wal;
    int nkv;
    char kv_names[STORAGE_KV_MAX][33];
    MDB_dbi kv_dbi[STORAGE_KV_MAX];
    bool kv_ok[STORAGE_KV_MAX];
    bool read_only;
    uint64_t map_size;
    pthread_rwlock_t map_lock;

    /* catalog */
    pthread_rwlock_t cat_lock;
    storage_series_rec *series; /* index sid - 1 */
    uint32_t nseries, series_cap;
    uint64_t *hash;             /* open addressing: hash tag << 32 | sid, or 0 */
    uint32_t hash_cap;          /* power of two */
    struct arena_block *arena;  /* keys and labels loaded at open */
    uint32_t *dirty;            /* sids whose record must be written */
    uint32_t ndirty, dirty_cap;

    /* head */
    pthread_mutex_t head_mu;
    storage_head_series *head; /* index sid - 1 */
    uint32_t head_cap;
    uint32_t *head_active;     /* sids with n > 0 */
    uint32_t nactive, active_cap;
    storage_hpoint *head_pts;  /* every head point, in arrival order */
    size_t head_npts, head_pts_cap;
    double *head_vals;         /* their present values */
    size_t head_nvals, head_vals_cap;
    uint64_t head_points;      /* live points (head_npts also counts sealed ones) */
    bool draining;             /* the writer is sealing the head in slices */
    /* When to seal (writer.c): from head_quiet_points while ingest is quiet, from
     * head_load_points whatever the load (the STORAGE_HEAD_* values; tests lower them). */
    uint64_t head_quiet_points, head_load_points;
    uint64_t recent_points;    /* points committed lately, halved every STORAGE_QUIET_HALF_US */
    uint64_t recent_us;        /* when recent_points was last halved */
    uint64_t quiet_seals, load_seals; /* slices sealed while quiet and under load */
    uint64_t seal_retry_us;    /* no seal before this (after a failed one) */
    uint64_t ckpt_gen;         /* bumped when head points move into chunks */
    uint64_t *ver;             /* index sid - 1: data_seq when its points last changed */
    uint32_t ver_cap;
    uint64_t data_seq;         /* counts changes of points since open */
    uint64_t ver_floor;        /* data_seq of the last change that may touch any series */

    /* durable counters (meta "counts"), changed only by the writer */
    uint64_t n_chunks, n_points, wal_points;
    uint64_t wal_seq;
    uint64_t commits, commit_us;

    int64_t retention[STORAGE_NIV];

    /* writer */
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cv;
    storage_batch *qhead, *qtail;
    uint64_t commit_interval_us; /* longest a submitted batch waits for more to join it */
    bool closing;
    bool test_no_seal; /* tests: close without sealing the head */
};

/* ---- store.c */
int storage__lmdb_err(int rc);
int64_t storage__window_len(int iv);
int64_t storage__window_start(int iv, int64_t ts);
void storage__chunk_key(uint8_t k[STORAGE_CHUNK_KEY_LEN], int64_t window, storage_sid sid,
                        uint16_t part);
void storage__chunk_key_parse(const uint8_t *k, int64_t *window, storage_sid *sid,
                              uint16_t *part);
int storage__grow_map(storage *st);
int storage__kv_index(const storage *st, const char *table);
uint64_t storage__now_us(void);
int storage__put_counts(storage *st, MDB_txn *txn, uint64_t chunks, uint64_t points);

/* ---- catalog.c */
int storage__catalog_load(storage *st, MDB_txn *txn);
void storage__catalog_free(storage *st);
/* Writes dirty series records in txn; *taken receives how many dirty entries were written
 * (pass to storage__catalog_saved after the commit). */
int storage__catalog_flush(storage *st, MDB_txn *txn, uint32_t *taken);
void storage__catalog_saved(storage *st, uint32_t taken);
int storage__series_iv(storage *st, storage_sid sid);
/* The windows of sid that may hold chunks: [*first, *last] (first > last: none). */
void storage__series_windows(storage *st, storage_sid sid, int64_t *first, int64_t *last);
/* Widens that range to include [first, last]; the record is rewritten with the next commit. */
void storage__series_widen(storage *st, storage_sid sid, int64_t first, int64_t last);

/* ---- head.c (every function called with head_mu held) */
int storage__head_insert(storage *st, storage_sid sid, const storage_point *p);
/* Appends a point given as its mask, flag and the values of its present columns. */
int storage__head_append(storage *st, storage_sid sid, int64_t ts, uint8_t mask, uint8_t flag,
                         const double *vals);
/* Forgets the points of head_active[0..k) (sealed) and removes them from the list. */
void storage__head_forget(storage *st, uint32_t k);
/* The head points of sid, sorted by time, one per timestamp (the latest arrival), into
 * *buf (grown as needed, capacity *cap); *n receives the count. */
int storage__head_series(storage *st, storage_sid sid, storage_point **buf, size_t *cap,
                         size_t *n);
void storage__head_clear(storage *st);
void storage__head_free(storage *st);
/* Copies head points of sid with from <= ts <= to into a malloc'd array (*out, *n). */
int storage__head_copy(storage *st, storage_sid sid, int64_t from, int64_t to,
                       storage_point **out, size_t *n);
/* Called with head_mu held, after a commit that changed the points of sid (sid 0: of any
 * series): gives it a new storage_series_version. */
void storage__touch(storage *st, storage_sid sid);

/* ---- batch.c */
void storage__batch_point(const storage_batch *b, size_t i, storage_point *p);
/* Walks kv ops: returns the offset of the next op or 0 at the end. */
size_t storage__batch_kv_next(const storage_batch *b, size_t off, bool *del, const char **table,
                              size_t *tlen, const void **key, size_t *klen, const void **val,
                              size_t *vlen);

/* ---- chunkstore.c: writing and reading chunk records inside one transaction */
typedef struct storage_out {
    uint8_t key[STORAGE_CHUNK_KEY_LEN];
    size_t off, len;
} storage_out;

typedef struct storage_wctx {
    storage *st;
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t last_key[STORAGE_CHUNK_KEY_LEN]; /* greatest key at txn start */
    bool have_last;
    chunk_buf arena;       /* encoded chunks waiting to be appended */
    storage_out *outs;
    size_t nouts, outs_cap;
    storage_point *tmp;    /* merge scratch */
    size_t tmp_cap;
    storage_point *old;    /* decoded existing parts */
    size_t old_cap;
    chunk_buf pack;        /* re-encoded parts while packing the final append */
    size_t page_usable, node_max;  /* LMDB leaf page geometry for packing */
    size_t leaf_pages;     /* leaf pages of the chunks table after the last append */
    long page_free;        /* bytes left on the last leaf page; -1: unknown */
    int64_t d_chunks, d_points;
    /* last-window updates to apply after commit */
    uint32_t *lw_sid;
    int64_t *lw_win;
    size_t nlw, lw_cap;
} storage_wctx;

int storage__wctx_begin(storage_wctx *c, storage *st, MDB_txn *txn);
/* Writes pts (sorted by strictly increasing ts) of sid into chunks, merging with what the
 * windows already hold; the new points win on equal ts. */
int storage__write_series(storage_wctx *c, storage_sid sid, const storage_point *pts, size_t n);
/* Appends the collected chunks in key order and writes the counters. */
int storage__wctx_finish(storage_wctx *c);
void storage__wctx_after_commit(storage_wctx *c);
void storage__wctx_free(storage_wctx *c);

/* ---- wal.c */
int storage__wal_append(storage *st, MDB_txn *txn, storage_batch *const *jobs, size_t njobs,
                        uint64_t *seq, uint64_t *npoints);
int storage__wal_replay(storage *st, MDB_txn *txn);

/* ---- reader.c */
struct storage_reader {
    storage *st;
    MDB_txn *txn;
    uint64_t gen;   /* the checkpoint generation txn is consistent with */
    int open_iters; /* iterators using txn: it must not be renewed under them */
    /* read-only stores: the write-ahead log as txn sees it (wal_snapshot.c), sorted by
     * series and time, standing in for the head another process holds */
    storage_sid *wal_sids;
    storage_point *wal_pts;
    size_t wal_n;
};

/* ---- wal_snapshot.c */
/* Decodes the wal table as txn sees it into arrays sorted by (sid, ts), one point per
 * timestamp (the later write), skipping series this handle does not know. */
int storage__wal_snapshot(storage *st, MDB_txn *txn, storage_sid **sids, storage_point **pts,
                          size_t *npts);
/* Copies the points of sid with from <= ts <= to into a malloc'd array (*out, *nout). */
int storage__wal_snapshot_copy(const storage_sid *sids, const storage_point *pts, size_t n,
                               storage_sid sid, int64_t from, int64_t to, storage_point **out,
                               size_t *nout);

/* A consistent view of one series: a transaction whose chunks and the copied head points
 * (*hp, malloc'd, sorted) together hold every committed point of [from, to]. When *own is
 * set the caller aborts *txn. */
int storage__view(storage_reader *r, storage_sid sid, int64_t from, int64_t to, MDB_txn **txn,
                  bool *own, storage_point **hp, size_t *hn);

/* Walks the chunk parts of one series over the windows that may hold [from, to]. */
typedef struct storage_walk {
    MDB_cursor *cur;
    storage_sid sid;
    int64_t wl, win, last_win;
    bool in_window;
} storage_walk;
int storage__walk_open(storage_walk *w, storage *st, MDB_txn *txn, storage_sid sid, int64_t from,
                       int64_t to);
/* The next part in time order: 1 with *v set, 0 at the end, or a negative code. */
int storage__walk_next(storage_walk *w, MDB_val *v);
void storage__walk_close(storage_walk *w);

/* ---- writer.c */
int storage__writer_start(storage *st);
void storage__writer_stop(storage *st);
int storage__enqueue(storage *st, storage_batch *b);
int storage__checkpoint(storage *st);

#endif
