/* scan.c: the points of one column of one series, handed to the caller a block of arrays
 * at a time. Charts and exceedance searches read every point of a year in one request; the
 * point iterator (reader.c) decodes every column into a structure per point and returns
 * them one call at a time, which costs more than the decoding itself. Here each chunk part
 * decodes only its timestamps, the one column and the flags (chunk_decode_col) into arrays
 * the caller reads in a tight loop. Head points are merged in time order and override
 * chunk points of the same timestamp, as everywhere else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "storage_int.h"

/* Decoding space: on the stack for parts of up to SCRATCH points (every window of hourly,
 * minute and daily data), malloc'd beyond, so a chart costs no allocation here. */
#define SCRATCH 2048

typedef struct scan {
    int col;
    int64_t from, to;
    storage_scan_fn fn;
    void *arg;
    const storage_point *hp; /* head points of [from, to], sorted; hi: next to hand out */
    size_t hn, hi;
    int64_t *ts;             /* decoding space, cap entries each */
    double *v;
    uint8_t *fl;
    size_t cap;
    bool heap;               /* the space is malloc'd */
} scan;

static int reserve(scan *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    if (s->heap) {
        free(s->ts);
        free(s->v);
        free(s->fl);
    }
    s->heap = true;
    s->ts = malloc(n * sizeof *s->ts);
    s->v = malloc(n * sizeof *s->v);
    s->fl = malloc(n);
    s->cap = s->ts && s->v && s->fl ? n : 0;
    return s->cap ? 0 : -ENOMEM;
}

/* Hands out the head points with the column and ts < end (all of them: end = INT64_MAX and
 * inclusive), a block of up to 64 at a time. */
static int emit_head(scan *s, int64_t end, bool inclusive)
{
    int64_t ts[64];
    double v[64];
    uint8_t fl[64];
    size_t k = 0;
    while (s->hi < s->hn && (s->hp[s->hi].ts < end || (inclusive && s->hp[s->hi].ts == end))) {
        const storage_point *p = &s->hp[s->hi++];
        if (!(p->mask >> s->col & 1))
            continue;
        ts[k] = p->ts;
        v[k] = p->v[s->col];
        fl[k++] = p->flag;
        if (k == 64) {
            int rc = s->fn(s->arg, ts, v, fl, k);
            if (rc)
                return rc;
            k = 0;
        }
    }
    return k ? s->fn(s->arg, ts, v, fl, k) : 0;
}

/* Merges the head points of [ts[lo], ts[hi - 1]] into the decoded part (rare: points of a
 * sealed part were written again) and hands out the result. */
static int emit_merged(scan *s, size_t lo, size_t hi)
{
    size_t hend = s->hi;
    while (hend < s->hn && s->hp[hend].ts <= s->ts[hi - 1])
        hend++;
    size_t cap = hi - lo + hend - s->hi;
    int64_t *ts = malloc(cap * sizeof *ts);
    double *v = malloc(cap * sizeof *v);
    uint8_t *fl = malloc(cap);
    size_t k = 0, i = lo;
    int rc = ts && v && fl ? 0 : -ENOMEM;
    while (rc == 0 && (i < hi || s->hi < hend)) {
        const storage_point *p = s->hi < hend ? &s->hp[s->hi] : NULL;
        if (p && (i == hi || p->ts <= s->ts[i])) {
            if (i < hi && p->ts == s->ts[i])
                i++; /* the head holds the newer write of this timestamp */
            s->hi++;
            if (p->mask >> s->col & 1) {
                ts[k] = p->ts;
                v[k] = p->v[s->col];
                fl[k++] = p->flag;
            }
        } else {
            ts[k] = s->ts[i];
            v[k] = s->v[i];
            fl[k++] = s->fl[i++];
        }
    }
    if (rc == 0 && k)
        rc = s->fn(s->arg, ts, v, fl, k);
    free(ts);
    free(v);
    free(fl);
    return rc;
}

static int scan_part(scan *s, const MDB_val *val)
{
    chunk_info info;
    int rc = chunk_info_read(val->mv_data, val->mv_size, &info);
    if (rc)
        return rc;
    if (info.last_ts < s->from || info.first_ts > s->to || !(info.colmask >> s->col & 1))
        return 0;
    if ((rc = reserve(s, info.npoints)))
        return rc;
    size_t n;
    if ((rc = chunk_decode_col(val->mv_data, val->mv_size, s->col, s->ts, s->v, s->fl, s->cap,
                               &n)))
        return rc;
    size_t lo = 0, hi = n;
    while (lo < hi && s->ts[lo] < s->from)
        lo++;
    while (hi > lo && s->ts[hi - 1] > s->to)
        hi--;
    if (lo == hi)
        return 0;
    if ((rc = emit_head(s, s->ts[lo], false)))
        return rc;
    if (s->hi < s->hn && s->hp[s->hi].ts <= s->ts[hi - 1])
        return emit_merged(s, lo, hi);
    return s->fn(s->arg, s->ts + lo, s->v + lo, s->fl + lo, hi - lo);
}

int storage_scan_col(storage_reader *r, storage_sid sid, int col, int64_t from, int64_t to,
                     storage_scan_fn fn, void *arg)
{
    if (col < 0 || col >= STORAGE_NCOLS)
        return -EINVAL;
    if (from > to)
        return 0;
    int64_t ts_space[SCRATCH];
    double v_space[SCRATCH];
    uint8_t fl_space[SCRATCH];
    scan s = {.col = col, .from = from, .to = to, .fn = fn, .arg = arg, .ts = ts_space,
              .v = v_space, .fl = fl_space, .cap = SCRATCH};
    MDB_txn *txn;
    bool own;
    storage_point *hp;
    int rc = storage__view(r, sid, from, to, &txn, &own, &hp, &s.hn);
    if (rc)
        return rc;
    s.hp = hp;
    storage_walk w;
    rc = storage__walk_open(&w, r->st, txn, sid, from, to);
    MDB_val v;
    while (rc == 0 && (rc = storage__walk_next(&w, &v)) == 1)
        rc = scan_part(&s, &v);
    storage__walk_close(&w);
    if (rc == 0)
        rc = emit_head(&s, INT64_MAX, true);
    if (own)
        mdb_txn_abort(txn);
    free(hp);
    if (s.heap) {
        free(s.ts);
        free(s.v);
        free(s.fl);
    }
    return rc;
}
