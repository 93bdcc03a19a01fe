/* aggregate.c: range aggregates into time buckets, the query behind chart downsampling and
 * RedisTimeSeries aggregations. A chunk part that lies wholly inside one bucket and inside
 * the range contributes the aggregates stored in its header (AVG column) without being
 * decoded; other parts decode only the timestamps and the one column. Head points override
 * chunk points of the same timestamp, as everywhere else.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

/* The buckets filled so far, in time order. They live in the caller's array until more
 * than it holds are needed (then in a malloc'd copy, for the -ERANGE count). */
typedef struct acc {
    storage_bucket *b;
    size_t n, cap;
    int64_t width, align;
    storage_bucket *out; /* the caller's array; b == out until it overflows */
} acc;

static int64_t bucket_start(const acc *a, int64_t ts)
{
    int64_t d = ts - a->align, q = d / a->width;
    if (d % a->width != 0 && d < 0)
        q--;
    return a->align + q * a->width;
}

/* The bucket starting at s, created in order if needed; NULL on ENOMEM. */
static storage_bucket *bucket_get(acc *a, int64_t s)
{
    size_t pos = a->n;
    if (a->n && a->b[a->n - 1].start >= s) {
        size_t lo = 0, hi = a->n;
        while (lo < hi) {
            size_t m = (lo + hi) / 2;
            if (a->b[m].start < s)
                lo = m + 1;
            else
                hi = m;
        }
        if (a->b[lo].start == s)
            return &a->b[lo];
        pos = lo;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        storage_bucket *nb = realloc(a->b == a->out ? NULL : a->b, cap * sizeof *nb);
        if (!nb)
            return NULL;
        if (a->b == a->out && a->n)
            memcpy(nb, a->out, a->n * sizeof *nb);
        a->b = nb;
        a->cap = cap;
    }
    if (pos < a->n)
        memmove(a->b + pos + 1, a->b + pos, (a->n - pos) * sizeof *a->b);
    memset(&a->b[pos], 0, sizeof a->b[pos]);
    a->b[pos].start = s;
    a->n++;
    return &a->b[pos];
}

/* Folds a chunk_agg into the bucket starting at start. */
static int fold_at(acc *a, int64_t start, const chunk_agg *g)
{
    if (g->count == 0)
        return 0;
    storage_bucket *b = bucket_get(a, start);
    if (!b)
        return -ENOMEM;
    if (b->count == 0) {
        b->count = g->count;
        b->sum = g->sum;
        b->sumsq = g->sumsq;
        b->min = g->min;
        b->max = g->max;
        b->first = g->first;
        b->last = g->last;
        b->min_ts = g->min_ts;
        b->max_ts = g->max_ts;
        b->first_ts = g->first_ts;
        b->last_ts = g->last_ts;
        return 0;
    }
    b->count += g->count;
    b->sum += g->sum;
    b->sumsq += g->sumsq;
    if (!isnan(g->min) && (isnan(b->min) || g->min < b->min ||
                           (g->min == b->min && g->min_ts < b->min_ts))) {
        b->min = g->min;
        b->min_ts = g->min_ts;
    }
    if (!isnan(g->max) && (isnan(b->max) || g->max > b->max ||
                           (g->max == b->max && g->max_ts < b->max_ts))) {
        b->max = g->max;
        b->max_ts = g->max_ts;
    }
    if (g->first_ts < b->first_ts) {
        b->first = g->first;
        b->first_ts = g->first_ts;
    }
    if (g->last_ts > b->last_ts) {
        b->last = g->last;
        b->last_ts = g->last_ts;
    }
    return 0;
}

/* Folds a chunk_agg (or one value, as an aggregate of one) into its bucket. */
static int fold(acc *a, const chunk_agg *g)
{
    return fold_at(a, bucket_start(a, g->first_ts), g);
}

static int add(acc *a, int64_t ts, double v)
{
    chunk_agg g = {1, v, v * v, v, v, v, v, ts, ts, ts, ts};
    return fold(a, &g);
}

static bool head_has(const storage_point *hp, size_t hn, int64_t ts)
{
    size_t lo = 0, hi = hn;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (hp[m].ts < ts)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < hn && hp[lo].ts == ts;
}

static bool head_overlaps(const storage_point *hp, size_t hn, int64_t a, int64_t b)
{
    size_t lo = 0, hi = hn;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (hp[m].ts < a)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < hn && hp[lo].ts <= b;
}

/* Decoding space for one part: on the stack for parts of up to SCRATCH_POINTS points (every
 * window of hourly, minute and daily data), malloc'd beyond. */
#define SCRATCH_POINTS 2048
typedef struct scratch {
    int64_t *ts;
    double *v;
    size_t cap;
    bool heap;
} scratch;

static int scratch_reserve(scratch *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    if (s->heap) {
        free(s->ts);
        free(s->v);
    }
    s->ts = malloc(n * sizeof *s->ts);
    s->v = malloc(n * sizeof *s->v);
    s->heap = true;
    s->cap = s->ts && s->v ? n : 0;
    return s->cap ? 0 : -ENOMEM;
}

/* Folds decoded points ts[i, hi) (in time order, all inside the range) bucket by bucket: one
 * bucket lookup per bucket, not per point. */
static int fold_run(acc *a, const int64_t *ts, const double *v, size_t i, size_t hi)
{
    int64_t start = 0, end = INT64_MIN;
    while (i < hi) {
        /* The next bucket follows the last without a division, as a rule. */
        if (end != INT64_MIN && end <= INT64_MAX - a->width && ts[i] >= end &&
            ts[i] < end + a->width)
            start = end;
        else
            start = bucket_start(a, ts[i]);
        end = start > INT64_MAX - a->width ? INT64_MAX : start + a->width;
        double x = v[i];
        chunk_agg g = {1, x, x * x, x, x, x, x, ts[i], ts[i], ts[i], ts[i]};
        for (i++; i < hi && ts[i] < end; i++) {
            x = v[i];
            g.sum += x;
            g.sumsq += x * x;
            if (x < g.min || (isnan(g.min) && !isnan(x))) {
                g.min = x;
                g.min_ts = ts[i];
            }
            if (x > g.max || (isnan(g.max) && !isnan(x))) {
                g.max = x;
                g.max_ts = ts[i];
            }
            g.count++;
        }
        g.last = v[i - 1];
        g.last_ts = ts[i - 1];
        int rc = fold_at(a, start, &g);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_part(acc *a, scratch *s, const MDB_val *val, int col, int64_t from, int64_t to,
                    const storage_point *hp, size_t hn)
{
    chunk_info info;
    int rc = chunk_info_read(val->mv_data, val->mv_size, &info);
    if (rc)
        return rc;
    if (info.last_ts < from || info.first_ts > to || !(info.colmask >> col & 1))
        return 0;
    bool shadowed = head_overlaps(hp, hn, info.first_ts, info.last_ts);
    if (col == STORAGE_COL_AVG && !shadowed && info.first_ts >= from && info.last_ts <= to &&
        bucket_start(a, info.first_ts) == bucket_start(a, info.last_ts))
        return fold(a, &info.agg);
    if ((rc = scratch_reserve(s, info.npoints)))
        return rc;
    size_t n;
    rc = chunk_decode_col(val->mv_data, val->mv_size, col, s->ts, s->v, NULL, s->cap, &n);
    if (rc)
        return rc;
    if (shadowed) { /* rare: points of this part were rewritten since it was sealed */
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (s->ts[i] >= from && s->ts[i] <= to && !head_has(hp, hn, s->ts[i]))
                rc = add(a, s->ts[i], s->v[i]);
        return rc;
    }
    size_t lo = 0, hi = n;
    while (lo < hi && s->ts[lo] < from)
        lo++;
    while (hi > lo && s->ts[hi - 1] > to)
        hi--;
    return fold_run(a, s->ts, s->v, lo, hi);
}

int storage_aggregate(storage_reader *r, storage_sid sid, int col, int64_t from, int64_t to,
                      int64_t width_s, int64_t align, storage_bucket *out, size_t max,
                      size_t *n)
{
    *n = 0;
    if (col < 0 || col >= STORAGE_NCOLS || width_s <= 0)
        return -EINVAL;
    if (from > to)
        return 0;
    acc a = {out, 0, max, width_s, align, out};
    int64_t ts_space[SCRATCH_POINTS];
    double v_space[SCRATCH_POINTS];
    scratch s = {ts_space, v_space, SCRATCH_POINTS, false};
    MDB_txn *txn;
    bool own;
    storage_point *hp;
    size_t hn;
    int rc = storage__view(r, sid, from, to, &txn, &own, &hp, &hn);
    if (rc)
        return rc;
    storage_walk w;
    rc = storage__walk_open(&w, r->st, txn, sid, from, to);
    MDB_val v;
    while (rc == 0 && (rc = storage__walk_next(&w, &v)) == 1)
        rc = add_part(&a, &s, &v, col, from, to, hp, hn);
    storage__walk_close(&w);
    for (size_t i = 0; rc == 0 && i < hn; i++)
        if (hp[i].mask >> col & 1)
            rc = add(&a, hp[i].ts, hp[i].v[col]);
    if (rc == 0) {
        size_t k = a.n < max ? a.n : max;
        if (k && a.b != out)
            memcpy(out, a.b, k * sizeof *out);
        *n = k;
        rc = a.n > max ? -ERANGE : 0;
    }
    if (own)
        mdb_txn_abort(txn);
    free(hp);
    if (a.b != out)
        free(a.b);
    if (s.heap) {
        free(s.ts);
        free(s.v);
    }
    return rc;
}
