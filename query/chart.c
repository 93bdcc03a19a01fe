/* chart.c: what a trend chart of one series shows, computed once for CEMS.CHART and for
 * `plume chart`: the line reduced with M4 to what the chart's pixels can show, the limits in
 * force over the range, the exceedances, and (for the drawing) the periods of invalid data.
 *
 * The limit of a series comes from the registry: its key's MN names the outlet, its code the
 * pollutant, its interval the period. Only hourly and daily series are judged against it. A point exceeds when its flag is valid and its value is
 * strictly above the limit in force at its time; an exceedance is a run of consecutive
 * exceeding points. Only buckets whose maximum tops the limit are read point by point, so a
 * year of compliant data costs one pass over chunk summaries.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

void query_limits_find(const engine_registry *reg, const char *key, int64_t from, int64_t to,
                       query_limits *x)
{
    query_key k;
    x->n = 0;
    x->unit[0] = 0;
    if (!reg || !query_key_split(key, &k))
        return;
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, k.mn, strlen(k.mn));
    if (!o)
        return;
    int period = strcmp(k.interval, "day") == 0 ? ENGINE_PERIOD_DAY : ENGINE_PERIOD_HOUR;
    for (const engine_limit *l = engine_registry_limit_next(reg, o, NULL);
         l && x->n < QUERY_MAX_LIMITS; l = engine_registry_limit_next(reg, NULL, l)) {
        if (l->period != period || strcmp(l->pollutant, k.code) != 0)
            continue;
        int64_t a = l->valid_from > from ? l->valid_from : from;
        int64_t b = l->valid_to - 1 < to ? l->valid_to - 1 : to;
        if (a > b)
            continue;
        size_t j = x->n++;
        while (j > 0 && x->seg[j - 1].from > a) {
            x->seg[j] = x->seg[j - 1];
            j--;
        }
        x->seg[j] = (query_limit_seg){a, b == INT64_MAX ? b : b + 1, l->value};
        snprintf(x->unit, sizeof x->unit, "%s", l->unit);
    }
}

double query_limit_at(const query_limits *l, int64_t t)
{
    for (size_t i = 0; i < l->n; i++)
        if (t >= l->seg[i].from && t < l->seg[i].to)
            return l->seg[i].value;
    return NAN;
}

double query_limit_min(const query_limits *l, int64_t a, int64_t b)
{
    double m = NAN;
    for (size_t i = 0; i < l->n; i++)
        if (l->seg[i].from <= b && l->seg[i].to > a && !(l->seg[i].value >= m))
            m = l->seg[i].value;
    return m;
}

static int push_run(query_run **runs, size_t *n, size_t *cap, query_run r)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        query_run *nr = realloc(*runs, nc * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        *runs = nr;
        *cap = nc;
    }
    (*runs)[(*n)++] = r;
    return 0;
}

/* M4 over buckets of width w from `from`, a bucket at a time: the open bucket, and the
 * points of those closed so far (at most four each, in pts_ts / pts_v, room for 4 * max). */
typedef struct m4acc {
    storage_bucket cur;   /* the open bucket (when nb > 0) */
    size_t nb, max;       /* buckets opened so far, and the most there may be */
    int64_t from, w;
    int64_t end;          /* last second of the open bucket (points come in time order) */
    int64_t *pts_ts;
    double *pts_v;
    size_t npts;
} m4acc;

static void m4_close(m4acc *a)
{
    if (a->nb)
        a->npts += (size_t)query_m4_points(&a->cur, a->pts_ts + a->npts, a->pts_v + a->npts);
}

/* Folds a block of points into the M4 buckets: one bucket start computed per bucket, and
 * per point one comparison of its time and two of its value. */
static void m4_block(m4acc *a, const int64_t *ts, const double *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (!a->nb || ts[i] > a->end) {
            int64_t s = a->from + (ts[i] - a->from) / a->w * a->w;
            a->end = s > INT64_MAX - a->w ? INT64_MAX : s + a->w - 1;
            if (a->nb == a->max) { /* cannot happen: max covers [from, to] */
                i++;
                continue;
            }
            m4_close(a);
            a->nb++;
            a->cur = (storage_bucket){.start = s, .count = 1, .min = v[i], .max = v[i],
                                      .first = v[i], .last = v[i], .min_ts = ts[i],
                                      .max_ts = ts[i], .first_ts = ts[i], .last_ts = ts[i]};
            i++;
        }
        storage_bucket *b = &a->cur;
        double mn = b->min, mx = b->max;
        int64_t mnt = b->min_ts, mxt = b->max_ts, end = a->end;
        size_t j = i;
        /* Selects rather than branches: which way a noisy reading goes is unpredictable. */
        for (; j < n && ts[j] <= end; j++) {
            bool lo = v[j] < mn, hi = v[j] > mx;
            mn = lo ? v[j] : mn;
            mnt = lo ? ts[j] : mnt;
            mx = hi ? v[j] : mx;
            mxt = hi ? ts[j] : mxt;
        }
        if (j > i) {
            b->count += j - i;
            b->min = mn;
            b->min_ts = mnt;
            b->max = mx;
            b->max_ts = mxt;
            b->last = v[j - 1];
            b->last_ts = ts[j - 1];
        }
        i = j;
    }
}

/* The limit in force at t (as query_limit_at) and the first time after t at which it may
 * change (*until): it holds over [t, *until). */
static double limit_span(const query_limits *l, int64_t t, int64_t *until)
{
    double v = NAN;
    bool found = false;
    int64_t u = INT64_MAX;
    for (size_t i = 0; i < l->n; i++) {
        const query_limit_seg *s = &l->seg[i];
        if (!found && t >= s->from && t < s->to) {
            v = s->value;
            found = true;
        }
        if (s->from > t && s->from < u)
            u = s->from;
        if (s->to > t && s->to < u)
            u = s->to;
    }
    *until = u;
    return v;
}

/* What one scan gathers, with the state of the runs open at the end of the last block. */
typedef struct scanner {
    query_chart_data *d;
    const query_limits *lim;  /* NULL: no exceedances */
    bool inv;                 /* gather invalid-flag runs */
    m4acc *m4;                /* NULL: no buckets */
    size_t *ecap, *icap;
    bool eopen, iopen;
    double cur;               /* the limit over [cur_from, cur_until) */
    int64_t cur_from, cur_until;
} scanner;

static int scan_block(void *arg, const int64_t *ts, const double *v, const uint8_t *fl,
                      size_t n)
{
    scanner *s = arg;
    query_chart_data *d = s->d;
    if (s->m4)
        m4_block(s->m4, ts, v, n);
    for (size_t i = 0; s->inv && i < n; i++) {
        if (query_flag_valid(fl[i])) {
            s->iopen = false;
        } else if (s->iopen) {
            d->invalid[d->ninvalid - 1].end = ts[i];
        } else {
            int rc = push_run(&d->invalid, &d->ninvalid, s->icap,
                              (query_run){ts[i], ts[i], NAN});
            if (rc)
                return rc;
            s->iopen = true;
        }
    }
    for (size_t i = 0; s->lim && i < n;) {
        if (ts[i] < s->cur_from || ts[i] >= s->cur_until) {
            s->cur_from = ts[i];
            s->cur = limit_span(s->lim, ts[i], &s->cur_until);
        }
        /* Over the stretch where the limit holds: nearly every point is under it. */
        double lim = s->cur;
        int64_t until = s->cur_until;
        for (; i < n && ts[i] < until; i++) {
            if (!(v[i] > lim && query_flag_valid(fl[i]))) {
                s->eopen = false;
            } else if (s->eopen) {
                query_run *e = &d->exceed[d->nexceed - 1];
                e->end = ts[i];
                e->peak = v[i] > e->peak ? v[i] : e->peak;
            } else {
                int rc = push_run(&d->exceed, &d->nexceed, s->ecap,
                                  (query_run){ts[i], ts[i], v[i]});
                if (rc)
                    return rc;
                s->eopen = true;
            }
        }
    }
    return 0;
}

/* Exceedances (and, with inv, invalid-flag runs; with m4, the M4 buckets) among the points
 * of [a, b], in one pass over blocks of decoded arrays. */
static int scan(storage_reader *r, storage_sid sid, int col, const query_limits *lim,
                int64_t a, int64_t b, query_chart_data *d, size_t *ecap, bool inv,
                size_t *icap, m4acc *m4)
{
    scanner s = {.d = d, .lim = lim && lim->n ? lim : NULL, .inv = inv, .m4 = m4,
                 .ecap = ecap, .icap = icap, .cur = NAN, .cur_from = INT64_MAX,
                 .cur_until = INT64_MIN};
    int rc = storage_scan_col(r, sid, col, a, b, scan_block, &s);
    return rc < 0 ? rc : 0;
}

/* Resolves open bounds to the series' first and last points; false when it has none. */
static bool resolve_bounds(storage_reader *r, storage_sid sid, int64_t *from, int64_t *to)
{
    storage_point p;
    if (*from != INT64_MIN && *to != INT64_MAX)
        return true;
    if (storage_latest(r, sid, &p) != 0)
        return false;
    if (*to == INT64_MAX)
        *to = p.ts;
    storage_iter *it = NULL;
    if (*from == INT64_MIN && storage_iter_open(r, sid, INT64_MIN, INT64_MAX, &it) == 0 &&
        storage_iter_next(it, &p) == 1)
        *from = p.ts;
    storage_iter_close(it);
    return *from != INT64_MIN;
}

/* The chunk window of an interval class (storage/FORMAT.md). */
static int64_t chunk_window(int iv)
{
    switch (iv) {
    case STORAGE_IV_RTD: return 21600;
    case STORAGE_IV_MIN: return 86400;
    case STORAGE_IV_DAY: return 88473600;
    default: return 5529600;
    }
}

int query_chart_compute(storage_reader *r, const engine_registry *reg, storage_sid sid,
                        int iv, int col, const char *key, int64_t from, int64_t to, int64_t px,
                        bool want_invalid, query_chart_data *d)
{
    memset(d, 0, sizeof *d);
    d->bucket = 1;
    if (!resolve_bounds(r, sid, &from, &to) || from > to) {
        d->from = from == INT64_MIN ? 0 : from;
        d->to = to == INT64_MAX ? 0 : to;
        query_limits_find(reg, key, d->from, d->to, &d->limits);
        return 0;
    }
    d->from = from;
    d->to = to;
    query_limits_find(reg, key, from, to, &d->limits);
    /* When a pixel spans more than a chunk window, buckets of whole windows aligned on
     * window boundaries never cut a chunk, so storage answers every bucket from chunk
     * summaries and decodes nothing but the range's two edges. */
    int64_t w = query_m4_width(from, to, px), align = from, win = chunk_window(iv);
    if (w > win) {
        w = (w / win + (w % win != 0)) * win;
        align = from - (from % win + win) % win;
    }
    d->bucket = w;
    size_t max = (size_t)px + 2;
    storage_bucket *b = NULL;
    size_t nb = 0, ecap = 0, icap = 0;
    int rc = 0;
    if (!(d->ts = malloc(4 * max * sizeof *d->ts)) || !(d->v = malloc(4 * max * sizeof *d->v)))
        rc = -ENOMEM;
    /* Limits apply to hourly and daily values: minute and real-time series show the limit
     * for reference but are not judged (and need not be read point by point). */
    const query_limits *judge = iv == STORAGE_IV_HOUR || iv == STORAGE_IV_DAY ? &d->limits
                                                                              : NULL;
    /* Pixels narrower than a chunk window: every chunk is decoded anyway, so one pass over
     * the points builds the M4 points, the exceedances and the invalid runs together,
     * bucket by bucket. */
    if (w < win) {
        m4acc m4 = {.max = max, .from = from, .w = w, .pts_ts = d->ts, .pts_v = d->v};
        if (rc == 0)
            rc = scan(r, sid, col, judge, from, to, d, &ecap, want_invalid, &icap, &m4);
        m4_close(&m4);
        d->n = m4.npts;
        goto done;
    }
    if (rc == 0 && !(b = malloc(max * sizeof *b)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = storage_aggregate(r, sid, col, from, to, w, align, b, max, &nb);
    for (size_t i = 0; rc == 0 && i < nb; i++)
        d->n += (size_t)query_m4_points(&b[i], d->ts + d->n, d->v + d->n);
    if (rc == 0 && want_invalid) {
        rc = scan(r, sid, col, judge, from, to, d, &ecap, true, &icap, NULL);
        goto done;
    }
    if (!judge)
        goto done;
    /* Storage returns only buckets with points, so neighbours in b hold consecutive points:
     * neighbours over the limit are scanned together and runs across their edge stay
     * whole. */
    for (size_t i = 0; rc == 0 && i < nb;) {
        if (!(b[i].max > query_limit_min(&d->limits, b[i].start, b[i].start + w - 1))) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < nb && b[j].max > query_limit_min(&d->limits, b[j].start, b[j].start + w - 1))
            j++;
        int64_t end = b[j - 1].start > INT64_MAX - w ? INT64_MAX : b[j - 1].start + w - 1;
        rc = scan(r, sid, col, &d->limits, b[i].start, end, d, &ecap, false, &icap, NULL);
        i = j;
    }
done:
    free(b);
    if (rc != 0)
        query_chart_data_free(d);
    return rc;
}

void query_chart_data_free(query_chart_data *d)
{
    free(d->ts);
    free(d->v);
    free(d->exceed);
    free(d->invalid);
    d->ts = NULL;
    d->v = NULL;
    d->exceed = d->invalid = NULL;
    d->n = d->nexceed = d->ninvalid = 0;
}
