/* wal_snapshot.c: what a read-only store sees of the write-ahead log.
 *
 * A store opened read-only (plume export, stats, dump beside a running plume serve) has no
 * head of its own: the points the server has committed to its log but not yet sealed into
 * chunks live only in the server's memory and in the wal table. Checkpoints come only once a
 * million points have gathered, so for a small fleet that can be days of data. Each reader
 * of a read-only store therefore decodes the log as its own transaction sees it, into an
 * array sorted by series and time (a later record of the same series and timestamp wins, as
 * in the head), and merges it with the chunks of the same transaction: one snapshot, chunks
 * and log taken at the same instant. A checkpoint that commits later is not seen, and is not
 * needed: the transaction still sees the log it emptied.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

#define WAL_REC_FIXED 14 /* u32 sid | i64 ts | u8 mask | u8 flag, then the present values */

typedef struct wal_pt {
    storage_sid sid;
    uint64_t order;          /* position in the log: a later write wins */
    storage_point p;
} wal_pt;

static int wal_pt_cmp(const void *a, const void *b)
{
    const wal_pt *x = a, *y = b;
    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    if (x->p.ts != y->p.ts)
        return x->p.ts < y->p.ts ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static int push(wal_pt **v, size_t *n, size_t *cap, const wal_pt *p)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 4096;
        wal_pt *t = realloc(*v, c * sizeof *t);
        if (!t)
            return -ENOMEM;
        *v = t;
        *cap = c;
    }
    (*v)[(*n)++] = *p;
    return 0;
}

/* Decodes one log record; points of series this handle does not know (created after it
 * opened the store) are skipped. */
static int decode_record(storage *st, const uint8_t *p, size_t len, wal_pt **v, size_t *n,
                         size_t *cap)
{
    const uint8_t *end = p + len;
    while (p < end) {
        if ((size_t)(end - p) < WAL_REC_FIXED)
            return STORAGE_ECORRUPT;
        wal_pt w;
        memset(&w, 0, sizeof w);
        memcpy(&w.sid, p, 4);
        memcpy(&w.p.ts, p + 4, 8);
        w.p.mask = p[12];
        w.p.flag = p[13];
        p += WAL_REC_FIXED;
        size_t nv = (size_t)__builtin_popcount(w.p.mask);
        if (w.sid == 0 || (size_t)(end - p) < nv * 8 || w.p.mask >= 1u << STORAGE_NCOLS)
            return STORAGE_ECORRUPT;
        for (int c = 0; c < STORAGE_NCOLS; c++)
            if (w.p.mask >> c & 1) {
                memcpy(&w.p.v[c], p, 8);
                p += 8;
            }
        w.order = *n;
        if (w.sid <= st->nseries) {
            int rc = push(v, n, cap, &w);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int storage__wal_snapshot(storage *st, MDB_txn *txn, storage_sid **sids, storage_point **pts,
                          size_t *npts)
{
    *sids = NULL;
    *pts = NULL;
    *npts = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->dbi_wal, &cur);
    if (rc)
        return storage__lmdb_err(rc);
    wal_pt *v = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, val;
    int mrc; /* LMDB's codes and ours are kept apart */
    for (mrc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        if (k.mv_size != 8)
            rc = STORAGE_ECORRUPT;
        else
            rc = decode_record(st, val.mv_data, val.mv_size, &v, &n, &cap);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = storage__lmdb_err(mrc);
    if (rc == 0 && n) {
        qsort(v, n, sizeof *v, wal_pt_cmp);
        size_t m = 0; /* keep the last write of each series and timestamp */
        for (size_t i = 0; i < n; i++) {
            if (m && v[m - 1].sid == v[i].sid && v[m - 1].p.ts == v[i].p.ts)
                m--;
            v[m++] = v[i];
        }
        *sids = malloc(m * sizeof **sids);
        *pts = malloc(m * sizeof **pts);
        if (!*sids || !*pts) {
            free(*sids);
            free(*pts);
            *sids = NULL;
            *pts = NULL;
            rc = -ENOMEM;
        } else {
            for (size_t i = 0; i < m; i++) {
                (*sids)[i] = v[i].sid;
                (*pts)[i] = v[i].p;
            }
            *npts = m;
        }
    }
    free(v);
    return rc;
}

int storage__wal_snapshot_copy(const storage_sid *sids, const storage_point *pts, size_t n,
                               storage_sid sid, int64_t from, int64_t to, storage_point **out,
                               size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first point of sid with ts >= from */
        size_t mid = lo + (hi - lo) / 2;
        if (sids[mid] < sid || (sids[mid] == sid && pts[mid].ts < from))
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t e = lo;
    while (e < n && sids[e] == sid && pts[e].ts <= to)
        e++;
    if (e == lo)
        return 0;
    if (!(*out = malloc((e - lo) * sizeof **out)))
        return -ENOMEM;
    memcpy(*out, pts + lo, (e - lo) * sizeof **out);
    *nout = e - lo;
    return 0;
}
