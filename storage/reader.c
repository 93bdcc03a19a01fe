/* reader.c: reading. A reader is an LMDB read transaction plus the live head: reading a
 * series copies that series' head points (under head_mu) and walks its chunk windows with a
 * cursor, merging the two streams in time order; on equal timestamps the head wins, since it
 * holds the newer write. When a checkpoint has moved head points into chunks since the
 * reader's transaction began, the transaction is renewed (or, while the reader has open
 * iterators, the new iterator takes a fresh transaction of its own), so no point is ever
 * missed between the two.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"


int storage_reader_open(storage *st, storage_reader **out)
{
    *out = NULL;
    storage_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->st = st;
    pthread_rwlock_rdlock(&st->map_lock);
    pthread_mutex_lock(&st->head_mu);
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
    r->gen = st->ckpt_gen;
    pthread_mutex_unlock(&st->head_mu);
    if (rc) {
        pthread_rwlock_unlock(&st->map_lock);
        free(r);
        return storage__lmdb_err(rc);
    }
    /* Read-only beside a writing process: its log is part of this snapshot. */
    if (st->read_only &&
        (rc = storage__wal_snapshot(st, r->txn, &r->wal_sids, &r->wal_pts, &r->wal_n))) {
        storage_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void storage_reader_close(storage_reader *r)
{
    if (!r)
        return;
    mdb_txn_abort(r->txn);
    pthread_rwlock_unlock(&r->st->map_lock);
    free(r->wal_sids);
    free(r->wal_pts);
    free(r);
}

int storage__view(storage_reader *r, storage_sid sid, int64_t from, int64_t to, MDB_txn **txn,
                bool *own, storage_point **hp, size_t *hn)
{
    storage *st = r->st;
    int rc = 0;
    *own = false;
    *txn = r->txn;
    pthread_mutex_lock(&st->head_mu);
    if (r->gen != st->ckpt_gen) {
        if (r->open_iters == 0) {
            mdb_txn_reset(r->txn);
            rc = mdb_txn_renew(r->txn);
            r->gen = st->ckpt_gen;
        } else {
            rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
            *own = rc == 0;
        }
    }
    if (rc == 0 && st->read_only)
        rc = storage__wal_snapshot_copy(r->wal_sids, r->wal_pts, r->wal_n, sid, from, to, hp,
                                        hn);
    else if (rc == 0)
        rc = storage__head_copy(st, sid, from, to, hp, hn);
    else
        rc = storage__lmdb_err(rc);
    pthread_mutex_unlock(&st->head_mu);
    if (rc && *own)
        mdb_txn_abort(*txn);
    return rc;
}

/* ---- walking the chunk parts of one series */

int storage__walk_open(storage_walk *w, storage *st, MDB_txn *txn, storage_sid sid, int64_t from,
                     int64_t to)
{
    memset(w, 0, sizeof *w);
    int iv = storage__series_iv(st, sid);
    if (iv < 0)
        return iv;
    int64_t fw, lw;
    storage__series_windows(st, sid, &fw, &lw);
    w->sid = sid;
    w->wl = storage__window_len(iv);
    /* Clamp to the series' windows first: window arithmetic near INT64_MIN/MAX overflows. */
    w->win = from <= fw ? fw : storage__window_start(iv, from);
    w->last_win = lw == INT64_MIN || to >= lw ? lw : storage__window_start(iv, to);
    int rc = mdb_cursor_open(txn, st->dbi_chunks, &w->cur);
    return rc ? storage__lmdb_err(rc) : 0;
}

void storage__walk_close(storage_walk *w)
{
    if (w->cur)
        mdb_cursor_close(w->cur);
    w->cur = NULL;
}

int storage__walk_next(storage_walk *w, MDB_val *v)
{
    for (;;) {
        MDB_val k;
        int rc;
        uint8_t key[STORAGE_CHUNK_KEY_LEN];
        if (!w->in_window) {
            if (w->win > w->last_win)
                return 0;
            storage__chunk_key(key, w->win, w->sid, 0);
            k.mv_size = sizeof key;
            k.mv_data = key;
            rc = mdb_cursor_get(w->cur, &k, v, MDB_SET_RANGE);
            w->in_window = true;
        } else {
            rc = mdb_cursor_get(w->cur, &k, v, MDB_NEXT);
        }
        if (rc && rc != MDB_NOTFOUND)
            return storage__lmdb_err(rc);
        storage__chunk_key(key, w->win, w->sid, 0);
        if (rc == 0 && k.mv_size == STORAGE_CHUNK_KEY_LEN && memcmp(k.mv_data, key, 12) == 0)
            return 1;
        w->in_window = false;
        if (w->win > INT64_MAX - w->wl)
            return 0;
        w->win += w->wl;
    }
}

/* ---- iterators */

struct storage_iter {
    storage_reader *r;
    MDB_txn *txn;
    bool own_txn;
    storage_walk w;
    int64_t from, to;
    storage_point *cp; /* the current part's points within [from, to] */
    size_t cn, ci, ccap;
    storage_point *hp; /* head points within [from, to] */
    size_t hn, hi;
    bool chunks_done;
};

int storage_iter_open(storage_reader *r, storage_sid sid, int64_t from, int64_t to,
                      storage_iter **out)
{
    *out = NULL;
    storage_iter *it = calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    it->r = r;
    it->from = from;
    it->to = to;
    int rc = storage__view(r, sid, from, to, &it->txn, &it->own_txn, &it->hp, &it->hn);
    if (rc) {
        free(it);
        return rc;
    }
    if ((rc = storage__walk_open(&it->w, r->st, it->txn, sid, from, to))) {
        storage_iter_close(it);
        return rc;
    }
    r->open_iters++;
    *out = it;
    return 0;
}

void storage_iter_close(storage_iter *it)
{
    if (!it)
        return;
    if (it->w.cur)
        it->r->open_iters--;
    storage__walk_close(&it->w);
    if (it->own_txn)
        mdb_txn_abort(it->txn);
    free(it->cp);
    free(it->hp);
    free(it);
}

/* Loads the next part holding points of [from, to]: 1, 0 at the end, or a negative code. */
static int load_part(storage_iter *it)
{
    for (;;) {
        MDB_val v;
        int rc = storage__walk_next(&it->w, &v);
        if (rc <= 0)
            return rc;
        chunk_info info;
        if ((rc = chunk_info_read(v.mv_data, v.mv_size, &info)))
            return rc;
        if (info.last_ts < it->from || info.first_ts > it->to)
            continue;
        if (info.npoints > it->ccap) {
            free(it->cp);
            it->ccap = info.npoints;
            if (!(it->cp = malloc(it->ccap * sizeof *it->cp)))
                return -ENOMEM;
        }
        size_t n;
        if ((rc = chunk_decode(v.mv_data, v.mv_size, it->cp, it->ccap, &n)))
            return rc;
        size_t a = 0;
        while (a < n && it->cp[a].ts < it->from)
            a++;
        size_t e = n;
        while (e > a && it->cp[e - 1].ts > it->to)
            e--;
        if (a == e)
            continue;
        it->ci = a;
        it->cn = e;
        return 1;
    }
}

int storage_iter_next(storage_iter *it, storage_point *out)
{
    if (it->ci >= it->cn && !it->chunks_done) {
        int rc = load_part(it);
        if (rc < 0)
            return rc;
        if (rc == 0)
            it->chunks_done = true;
    }
    bool have_c = it->ci < it->cn, have_h = it->hi < it->hn;
    if (!have_c && !have_h)
        return 0;
    if (have_c && (!have_h || it->cp[it->ci].ts < it->hp[it->hi].ts)) {
        *out = it->cp[it->ci++];
        return 1;
    }
    if (have_c && it->cp[it->ci].ts == it->hp[it->hi].ts)
        it->ci++; /* the head holds the newer write of this timestamp */
    *out = it->hp[it->hi++];
    return 1;
}

/* ---- latest */

int storage_latest(storage_reader *r, storage_sid sid, storage_point *out)
{
    MDB_txn *txn;
    bool own;
    storage_point *hp;
    size_t hn;
    int rc = storage__view(r, sid, INT64_MIN, INT64_MAX, &txn, &own, &hp, &hn);
    if (rc)
        return rc;
    int iv = storage__series_iv(r->st, sid);
    int64_t fw, lw;
    storage__series_windows(r->st, sid, &fw, &lw);
    bool found = false;
    /* The newest window with a chunk; look a few windows back in case the newest was never
     * committed (the catalog is widened before its transaction commits). */
    for (int64_t w = lw, tries = 0; iv >= 0 && !found && w >= fw && tries < 64;
         w -= storage__window_len(iv), tries++) {
        storage_walk wk;
        if ((rc = storage__walk_open(&wk, r->st, txn, sid, w, w)))
            break;
        MDB_val v, last = {0, NULL};
        while ((rc = storage__walk_next(&wk, &v)) == 1)
            last = v;
        if (rc == 0 && last.mv_data) {
            chunk_info info;
            size_t n;
            storage_point *pts = NULL;
            rc = chunk_info_read(last.mv_data, last.mv_size, &info);
            if (rc == 0 && !(pts = malloc(info.npoints * sizeof *pts)))
                rc = -ENOMEM;
            if (rc == 0)
                rc = chunk_decode(last.mv_data, last.mv_size, pts, info.npoints, &n);
            if (rc == 0 && n > 0) {
                *out = pts[n - 1];
                found = true;
            }
            free(pts);
        }
        storage__walk_close(&wk);
        if (rc < 0)
            break;
    }
    if (rc >= 0 && hn && (!found || hp[hn - 1].ts >= out->ts)) {
        *out = hp[hn - 1];
        found = true;
    }
    if (own)
        mdb_txn_abort(txn);
    free(hp);
    if (rc < 0)
        return rc;
    return found ? 0 : -ENOENT;
}

/* ---- key/value tables */

int storage_kv_get(storage_reader *r, const char *table, const void *key, size_t klen,
                   void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    int i = storage__kv_index(r->st, table);
    if (i < 0)
        return i;
    if (klen == 0 || klen > 511)
        return -EINVAL;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(r->txn, r->st->kv_dbi[i], &k, &v);
    if (rc)
        return storage__lmdb_err(rc);
    *val = malloc(v.mv_size ? v.mv_size : 1);
    if (!*val)
        return -ENOMEM;
    memcpy(*val, v.mv_data, v.mv_size);
    *vlen = v.mv_size;
    return 0;
}

int storage_kv_scan(storage_reader *r, const char *table, const void *from, size_t flen,
                    storage_kv_fn fn, void *arg)
{
    int i = storage__kv_index(r->st, table);
    if (i < 0)
        return i;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->st->kv_dbi[i], &cur);
    if (rc)
        return storage__lmdb_err(rc);
    MDB_val k = {flen, (void *)from}, v;
    if (from && flen)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    else
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    int ret = 0;
    while (rc == 0) {
        if ((ret = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : storage__lmdb_err(rc);
}
