/* check.c: storage_check, the integrity walk behind `plume check`. Every chunk record is
 * decoded and compared with its header (count, first and last timestamp, column mask, the
 * AVG aggregates), its timestamps must increase strictly and fall inside the record's
 * window, parts of one window must follow each other in time, and the key must name a
 * series of the catalog. Faults are reported with the series key and the window start.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

static bool same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static bool agg_equal(const chunk_agg *x, const chunk_agg *y)
{
    if (x->count != y->count)
        return false;
    if (x->count == 0)
        return true;
    return same(x->sum, y->sum) && same(x->sumsq, y->sumsq) && same(x->min, y->min) &&
           same(x->max, y->max) && same(x->first, y->first) && same(x->last, y->last) &&
           x->min_ts == y->min_ts && x->max_ts == y->max_ts && x->first_ts == y->first_ts &&
           x->last_ts == y->last_ts;
}

typedef struct checker {
    storage *st;
    storage_fault_fn fn;
    void *arg;
    int faults;
    storage_point *pts;
    size_t cap;
    /* the previous part, to check the order of parts within a window */
    int64_t prev_w, prev_last;
    storage_sid prev_sid;
    bool have_prev;
} checker;

static void fault(checker *c, storage_sid sid, int64_t w, const char *fmt, long long x)
{
    char key[256], msg[160];
    if (storage_series_key(c->st, sid, key, sizeof key) != 0)
        snprintf(key, sizeof key, "#%u", (unsigned)sid);
    snprintf(msg, sizeof msg, fmt, x);
    c->faults++;
    if (c->fn)
        c->fn(c->arg, key, w, msg);
}

/* Returns 0, or a negative code when the check itself cannot go on (ENOMEM). */
static int check_chunk(checker *c, const MDB_val *k, const MDB_val *v)
{
    int64_t w;
    storage_sid sid;
    uint16_t part;
    if (k->mv_size != STORAGE_CHUNK_KEY_LEN) {
        fault(c, 0, 0, "chunk key of %lld bytes", (long long)k->mv_size);
        return 0;
    }
    storage__chunk_key_parse(k->mv_data, &w, &sid, &part);
    int iv = storage__series_iv(c->st, sid);
    if (iv < 0) {
        fault(c, sid, w, "chunk of unknown series id %lld", (long long)sid);
        return 0;
    }
    if (storage__window_start(iv, w) != w)
        fault(c, sid, w, "window start not aligned to the class (part %lld)", part);
    chunk_info info;
    if (chunk_info_read(v->mv_data, v->mv_size, &info) != 0) {
        fault(c, sid, w, "unreadable chunk header (part %lld)", part);
        return 0;
    }
    if (info.npoints > c->cap) {
        storage_point *p = realloc(c->pts, info.npoints * sizeof *p);
        if (!p)
            return -ENOMEM;
        c->pts = p;
        c->cap = info.npoints;
    }
    size_t n;
    if (chunk_decode(v->mv_data, v->mv_size, c->pts, c->cap, &n) != 0) {
        fault(c, sid, w, "chunk fails to decode (part %lld)", part);
        return 0;
    }
    if (n != info.npoints || n == 0) {
        fault(c, sid, w, "decoded %lld points, header says otherwise", (long long)n);
        return 0;
    }
    uint8_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        mask |= c->pts[i].mask;
        if (i && c->pts[i].ts <= c->pts[i - 1].ts) {
            fault(c, sid, w, "timestamps out of order at point %lld", (long long)i);
            return 0;
        }
    }
    int64_t wl = storage__window_len(iv);
    if (c->pts[0].ts < w || c->pts[n - 1].ts - w >= wl)
        fault(c, sid, w, "point at %lld outside the window", (long long)c->pts[0].ts);
    if (info.first_ts != c->pts[0].ts || info.last_ts != c->pts[n - 1].ts)
        fault(c, sid, w, "header time range differs from the points (part %lld)", part);
    if (info.colmask != mask)
        fault(c, sid, w, "header column mask differs from the points (part %lld)", part);
    chunk_agg g;
    chunk_agg_compute(c->pts, n, &g);
    if (!agg_equal(&g, &info.agg))
        fault(c, sid, w, "header aggregates differ from the points (part %lld)", part);
    if (c->have_prev && c->prev_w == w && c->prev_sid == sid && c->prev_last >= info.first_ts)
        fault(c, sid, w, "part %lld overlaps the previous part", part);
    c->have_prev = true;
    c->prev_w = w;
    c->prev_sid = sid;
    c->prev_last = info.last_ts;
    return 0;
}

int storage_check(storage *st, storage_fault_fn fn, void *arg)
{
    storage_reader *r;
    int rc = storage_reader_open(st, &r);
    if (rc)
        return rc;
    checker c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.fn = fn;
    c.arg = arg;
    MDB_cursor *cur;
    rc = mdb_cursor_open(r->txn, st->dbi_chunks, &cur);
    if (rc) {
        storage_reader_close(r);
        return storage__lmdb_err(rc);
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int e = check_chunk(&c, &k, &v);
        if (e) {
            rc = e;
            break;
        }
    }
    mdb_cursor_close(cur);
    storage_reader_close(r);
    free(c.pts);
    if (rc != MDB_NOTFOUND)
        return rc == 0 ? c.faults : (rc < -20000 || rc > 0 ? storage__lmdb_err(rc) : rc);
    return c.faults;
}
