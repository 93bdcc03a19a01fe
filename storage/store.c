/* store.c: opening and closing a store, and what every other storage file leans on: the
 * LMDB environment and its tables, the translation of LMDB errors, the chunk key layout and
 * window arithmetic, growing the map on MDB_MAP_FULL, and the statistics.
 *
 * The store is one LMDB environment in a directory (FORMAT.md has the tables). Opening
 * loads the catalog into memory, replays the write-ahead log into the head and starts the
 * writer thread (writer.c); closing waits for the writer to drain, seals the head into
 * chunks and closes the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "storage_int.h"

int storage__lmdb_err(int rc)
{
    if (rc >= 0)
        return rc == 0 ? 0 : -rc; /* LMDB passes errno values through as positive codes */
    switch (rc) {
    case MDB_NOTFOUND: return -ENOENT;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return STORAGE_ECORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return STORAGE_EFORMAT;
    case MDB_READERS_FULL: return -EAGAIN;
    case MDB_BAD_VALSIZE: return -EINVAL;
    case MDB_TXN_FULL: return -E2BIG;
    default: return STORAGE_ELMDB;
    }
}

uint64_t storage__now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* Window lengths per interval class: rtd 6 h, min 1 day, hour 64 days, day 1,024 days. */
static const int64_t window_len[STORAGE_NIV] = {21600, 86400, 5529600, 88473600};

int64_t storage__window_len(int iv)
{
    return window_len[iv >= 0 && iv < STORAGE_NIV ? iv : STORAGE_IV_HOUR];
}

int64_t storage__window_start(int iv, int64_t ts)
{
    int64_t w = storage__window_len(iv);
    int64_t q = ts / w;
    if (ts % w != 0 && ts < 0)
        q--;
    return q * w;
}

void storage__chunk_key(uint8_t k[STORAGE_CHUNK_KEY_LEN], int64_t window, storage_sid sid,
                        uint16_t part)
{
    uint64_t w = (uint64_t)window ^ (UINT64_C(1) << 63); /* negative windows sort first */
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(w >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        k[8 + i] = (uint8_t)(sid >> (24 - 8 * i));
    k[12] = (uint8_t)(part >> 8);
    k[13] = (uint8_t)part;
}

void storage__chunk_key_parse(const uint8_t *k, int64_t *window, storage_sid *sid,
                              uint16_t *part)
{
    uint64_t w = 0;
    uint32_t s = 0;
    for (int i = 0; i < 8; i++)
        w = w << 8 | k[i];
    for (int i = 0; i < 4; i++)
        s = s << 8 | k[8 + i];
    *window = (int64_t)(w ^ (UINT64_C(1) << 63));
    *sid = s;
    *part = (uint16_t)(k[12] << 8 | k[13]);
}

/* Doubles the map. Called by the writer thread with no transaction of its own active; waits
 * for open readers to close (they hold map_lock shared). */
int storage__grow_map(storage *st)
{
    pthread_rwlock_wrlock(&st->map_lock);
    uint64_t want = st->map_size * 2;
    int rc = mdb_env_set_mapsize(st->env, (size_t)want);
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(st->env, &info);
        st->map_size = info.me_mapsize;
    }
    pthread_rwlock_unlock(&st->map_lock);
    return storage__lmdb_err(rc);
}

int storage__kv_index(const storage *st, const char *table)
{
    for (int i = 0; i < st->nkv; i++)
        if (strcmp(st->kv_names[i], table) == 0)
            return st->kv_ok[i] ? i : -ENOENT;
    return -ENOENT;
}

int storage__put_counts(storage *st, MDB_txn *txn, uint64_t chunks, uint64_t points)
{
    uint8_t buf[16];
    memcpy(buf, &chunks, 8);
    memcpy(buf + 8, &points, 8);
    MDB_val k = {6, (void *)"counts"}, v = {16, buf};
    return mdb_put(txn, st->dbi_meta, &k, &v, 0);
}

/* Opens (creating when writable) every table, checks the format version and reads the
 * counters. */
static int open_tables(storage *st, MDB_txn *txn, const storage_options *o)
{
    unsigned fl = st->read_only ? 0 : MDB_CREATE;
    int rc;
    if ((rc = mdb_dbi_open(txn, "meta", fl, &st->dbi_meta)) ||
        (rc = mdb_dbi_open(txn, "series", fl, &st->dbi_series)) ||
        (rc = mdb_dbi_open(txn, "chunks", fl, &st->dbi_chunks)) ||
        (rc = mdb_dbi_open(txn, "wal", fl, &st->dbi_wal)))
        return rc;
    for (int i = 0; o && o->kv_tables && o->kv_tables[i]; i++) {
        char name[40];
        snprintf(name, sizeof name, "kv.%s", st->kv_names[i]);
        rc = mdb_dbi_open(txn, name, fl, &st->kv_dbi[i]);
        if (rc == MDB_NOTFOUND && st->read_only)
            continue; /* never written: reads find nothing */
        if (rc)
            return rc;
        st->kv_ok[i] = true;
    }
    MDB_val k = {6, (void *)"format"}, v;
    rc = mdb_get(txn, st->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND && !st->read_only) {
        uint32_t ver = STORAGE_FORMAT_VERSION;
        v.mv_size = 4;
        v.mv_data = &ver;
        if ((rc = mdb_put(txn, st->dbi_meta, &k, &v, 0)))
            return rc;
    } else if (rc) {
        return rc;
    } else {
        uint32_t ver;
        if (v.mv_size != 4)
            return MDB_INVALID;
        memcpy(&ver, v.mv_data, 4);
        if (ver != STORAGE_FORMAT_VERSION)
            return MDB_INVALID;
    }
    k.mv_size = 6;
    k.mv_data = "counts";
    rc = mdb_get(txn, st->dbi_meta, &k, &v);
    if (rc == 0 && v.mv_size == 16) {
        memcpy(&st->n_chunks, v.mv_data, 8);
        memcpy(&st->n_points, (uint8_t *)v.mv_data + 8, 8);
    } else if (rc != MDB_NOTFOUND && rc != 0) {
        return rc;
    }
    return 0;
}

/* The opening transaction: tables, catalog, WAL replay. Retried after growing the map. */
static int open_txn(storage *st, const storage_options *o)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(st->env, NULL, st->read_only ? MDB_RDONLY : 0, &txn);
        if (rc)
            return storage__lmdb_err(rc);
        rc = open_tables(st, txn, o);
        if (rc == 0)
            rc = storage__catalog_load(st, txn);
        else
            rc = storage__lmdb_err(rc);
        if (rc == 0)
            rc = storage__wal_replay(st, txn);
        if (rc == 0)
            rc = storage__lmdb_err(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        if (rc == -ENOSPC && !st->read_only) {
            storage__catalog_free(st);
            storage__head_free(st);
            if ((rc = storage__grow_map(st)))
                return rc;
            continue;
        }
        if (rc == -ENOENT && st->read_only)
            return -ENOENT; /* no store in this directory */
        return rc;
    }
}

int storage_open(const char *dir, const storage_options *opts, storage **out)
{
    *out = NULL;
    storage *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    int rc = 0;
    pthread_rwlock_init(&st->map_lock, NULL);
    pthread_rwlock_init(&st->cat_lock, NULL);
    pthread_mutex_init(&st->head_mu, NULL);
    pthread_mutex_init(&st->queue_mu, NULL);
    pthread_cond_init(&st->queue_cv, NULL);
    st->read_only = opts && opts->read_only;
    st->head_quiet_points = STORAGE_HEAD_MAX_POINTS;
    st->head_load_points = STORAGE_HEAD_LOAD_POINTS;
    st->commit_interval_us =
        1000u * (opts && opts->commit_interval_ms ? opts->commit_interval_ms : 2u);
    for (int i = 0; opts && opts->kv_tables && opts->kv_tables[i]; i++) {
        size_t l = strlen(opts->kv_tables[i]);
        if (i >= STORAGE_KV_MAX || l == 0 || l > 32) {
            rc = -EINVAL;
            goto fail;
        }
        memcpy(st->kv_names[i], opts->kv_tables[i], l + 1);
        st->nkv = i + 1;
    }
    if (!st->read_only && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    if ((rc = mdb_env_create(&st->env))) {
        st->env = NULL;
        rc = storage__lmdb_err(rc);
        goto fail;
    }
    st->map_size = opts && opts->map_size ? opts->map_size : STORAGE_DEFAULT_MAP;
    mdb_env_set_maxdbs(st->env, 4 + STORAGE_KV_MAX);
    mdb_env_set_maxreaders(st->env, 1022);
    mdb_env_set_mapsize(st->env, (size_t)st->map_size);
    rc = mdb_env_open(st->env, dir, MDB_NOTLS | (st->read_only ? MDB_RDONLY : 0), 0644);
    if (rc) {
        rc = storage__lmdb_err(rc);
        goto fail;
    }
    int dead;
    mdb_reader_check(st->env, &dead); /* free the slots of readers that died */
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    st->map_size = info.me_mapsize;
    if ((rc = open_txn(st, opts)))
        goto fail;
    if (!st->read_only && (rc = storage__writer_start(st)))
        goto fail;
    *out = st;
    return 0;
fail:
    if (st->env)
        mdb_env_close(st->env);
    storage__catalog_free(st);
    storage__head_free(st);
    free(st);
    return rc;
}

void storage_close(storage *st)
{
    if (!st)
        return;
    if (st->writer_started)
        storage__writer_stop(st); /* drains the queue and seals the head */
    mdb_env_close(st->env);
    storage__catalog_free(st);
    storage__head_free(st);
    pthread_rwlock_destroy(&st->map_lock);
    pthread_rwlock_destroy(&st->cat_lock);
    pthread_mutex_destroy(&st->head_mu);
    pthread_mutex_destroy(&st->queue_mu);
    pthread_cond_destroy(&st->queue_cv);
    free(st);
}

static uint64_t file_blocks(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512u : 0;
}

/* Counts the head points of sid (*n) and those of them whose timestamp chunks also hold
 * (*dup): points written again and not sealed yet. */
static int head_overlap(storage_reader *r, storage_sid sid, storage_point **buf, size_t *cap,
                        uint64_t *n, uint64_t *dup)
{
    MDB_txn *txn;
    bool own;
    storage_point *hp;
    size_t hn;
    *n = *dup = 0;
    int rc = storage__view(r, sid, INT64_MIN, INT64_MAX, &txn, &own, &hp, &hn);
    if (rc)
        return rc;
    *n = hn;
    storage_walk w;
    MDB_val v;
    size_t h = 0;
    rc = hn ? storage__walk_open(&w, r->st, txn, sid, hp[0].ts, hp[hn - 1].ts) : 0;
    while (hn && rc == 0 && (rc = storage__walk_next(&w, &v)) == 1) {
        chunk_info info;
        size_t got;
        if ((rc = chunk_info_read(v.mv_data, v.mv_size, &info)))
            break;
        if (info.last_ts < hp[h].ts)
            continue;
        if (info.npoints > *cap) {
            storage_point *p = realloc(*buf, info.npoints * sizeof *p);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *buf = p;
            *cap = info.npoints;
        }
        if ((rc = chunk_decode(v.mv_data, v.mv_size, *buf, *cap, &got)))
            break;
        for (size_t i = 0; i < got && h < hn;) { /* both in time order */
            if ((*buf)[i].ts < hp[h].ts) {
                i++;
            } else {
                *dup += (*buf)[i].ts == hp[h].ts;
                h++;
            }
        }
        if (h == hn) {
            rc = 0;
            break;
        }
    }
    if (hn)
        storage__walk_close(&w);
    if (own)
        mdb_txn_abort(txn);
    free(hp);
    return rc < 0 ? rc : 0;
}

/* Distinct points not yet sealed (*head) and how many of them chunks hold too (*dup).
 * Finding them reads every series in the head; a head as large as a national fleet's (a
 * million series) would take seconds, and this is called from a daemon's loop thread for
 * its summary: past STATS_EXACT_SERIES the head's live point count stands in. */
#define STATS_EXACT_SERIES 100000

static int head_points(storage *st, uint64_t *head, uint64_t *dup)
{
    *head = *dup = 0;
    pthread_mutex_lock(&st->head_mu);
    uint32_t na = st->nactive;
    if (na > STATS_EXACT_SERIES) {
        *head = st->head_points;
        pthread_mutex_unlock(&st->head_mu);
        return 0;
    }
    uint32_t *sids = na ? malloc(na * sizeof *sids) : NULL;
    if (sids)
        memcpy(sids, st->head_active, na * sizeof *sids);
    pthread_mutex_unlock(&st->head_mu);
    if (na && !sids)
        return -ENOMEM;
    storage_reader *r = NULL;
    int rc = na ? storage_reader_open(st, &r) : 0;
    storage_point *buf = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; rc == 0 && i < na; i++) {
        uint64_t n, d;
        rc = head_overlap(r, sids[i], &buf, &cap, &n, &d);
        *head += n;
        *dup += d;
    }
    storage_reader_close(r);
    free(buf);
    free(sids);
    return rc;
}

/* Points counts come from the durable counters of the chunks plus the head, less the head
 * points the chunks also hold: a point written again (a resend, a re-import through the log)
 * is one point, not two, until it is sealed. */
int storage_get_stats(storage *st, storage_stats *out)
{
    memset(out, 0, sizeof *out);
    const char *dir;
    if (mdb_env_get_path(st->env, &dir) == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        out->file_bytes = file_blocks(path);
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        out->file_bytes += file_blocks(path);
    }
    MDB_envinfo info;
    MDB_stat ms;
    pthread_rwlock_rdlock(&st->map_lock);
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &ms);
    pthread_rwlock_unlock(&st->map_lock);
    out->map_size = info.me_mapsize;
    out->map_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    out->series = storage_series_count(st);
    uint64_t head, dup;
    int rc = head_points(st, &head, &dup);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->head_mu); /* the writer updates the counters under head_mu */
    out->chunks = st->n_chunks;
    out->wal_points = head;
    out->points = st->n_points + head - dup;
    out->commits = st->commits;
    out->commit_us_total = st->commit_us;
    pthread_mutex_unlock(&st->head_mu);
    return 0;
}

int storage_set_retention(storage *st, int iv, int64_t keep_s)
{
    if (iv < 0 || iv >= STORAGE_NIV || keep_s < 0)
        return -EINVAL;
    pthread_mutex_lock(&st->head_mu);
    st->retention[iv] = keep_s;
    pthread_mutex_unlock(&st->head_mu);
    return 0;
}
