/* test_chart.c: a chart's data (query_chart_compute) against the plain computation from
 * every point the iterator returns: per pixel column first, min (earliest on ties), max
 * (earliest on ties) and last; exceedances as runs of consecutive points with a valid flag
 * strictly above the limit in force at their time, with their peak; runs of invalid flags.
 * Random hourly and minute series with random flags, values near the limits, points lacking
 * the column, later writes still in the head, and limits that change over the range (a gap
 * without a limit included), for widths on both sides of a chunk window per pixel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "tap.h"
#include "../storage/st_util.h"

#define T0 1672502400

static uint64_t rng = 88172645463325252u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct pts {
    int64_t *ts;
    double *v;
    uint8_t *fl;
    size_t n;
} pts;

/* The points of col in [from, to], through the iterator. */
static void read_points(storage_reader *r, storage_sid sid, int col, int64_t from, int64_t to,
                        pts *p, size_t cap)
{
    storage_iter *it;
    storage_point q;
    p->n = 0;
    if (storage_iter_open(r, sid, from, to, &it) != 0)
        return;
    while (storage_iter_next(it, &q) == 1 && p->n < cap) {
        if (!(q.mask >> col & 1))
            continue;
        p->ts[p->n] = q.ts;
        p->v[p->n] = q.v[col];
        p->fl[p->n++] = q.flag;
    }
    storage_iter_close(it);
}

/* The M4 points of buckets of width w starting at align + k * w. */
static size_t m4_plain(const pts *p, int64_t align, int64_t w, int64_t *ts, double *v)
{
    size_t out = 0;
    for (size_t i = 0; i < p->n;) {
        int64_t b = align + (p->ts[i] - align) / w * w;
        size_t j = i, mi = i, ma = i;
        for (; j < p->n && p->ts[j] < b + w; j++) {
            if (p->v[j] < p->v[mi])
                mi = j;
            if (p->v[j] > p->v[ma])
                ma = j;
        }
        size_t idx[4] = {i, mi < ma ? mi : ma, mi < ma ? ma : mi, j - 1};
        for (int k = 0; k < 4; k++) {
            if (out && ts[out - 1] == p->ts[idx[k]])
                continue;
            ts[out] = p->ts[idx[k]];
            v[out++] = p->v[idx[k]];
        }
        i = j;
    }
    return out;
}

/* Exceedance runs (over = 1) or invalid-flag runs (over = 0) of the points. */
static size_t runs_plain(const pts *p, const query_limits *lim, int over, query_run *out)
{
    size_t n = 0;
    bool open = false;
    for (size_t i = 0; i < p->n; i++) {
        bool valid = p->fl[i] == 0 || p->fl[i] == 'N';
        bool in = over ? valid && p->v[i] > query_limit_at(lim, p->ts[i]) : !valid;
        if (!in) {
            open = false;
        } else if (open) {
            out[n - 1].end = p->ts[i];
            if (p->v[i] > out[n - 1].peak)
                out[n - 1].peak = p->v[i];
        } else {
            out[n++] = (query_run){p->ts[i], p->ts[i], over ? p->v[i] : NAN};
            open = true;
        }
    }
    return n;
}

static int same_runs(const query_run *a, size_t na, const query_run *b, size_t nb, int peak)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].start != b[i].start || a[i].end != b[i].end ||
            (peak && a[i].peak != b[i].peak))
            return 0;
    return 1;
}

static engine_registry *make_registry(void)
{
    engine_registry *reg;
    if (engine_registry_create(&reg) != 0)
        return NULL;
    engine_facility f = {.id = "F1", .name = "Plant", .lat = NAN, .lon = NAN};
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "M1", .o2_ref = NAN};
    int rc = engine_registry_add_facility(reg, &f, NULL, 0);
    rc |= engine_registry_add_outlet(reg, &o, NULL, 0);
    /* Hourly: 50 until day 100, none for ten days, then 35. Minute series are judged on
     * their hourly limit only for display: they get the hourly one too. */
    const struct { int period; double v; int64_t a, b; } ls[] = {
        {ENGINE_PERIOD_HOUR, 50, INT64_MIN, T0 + 100 * 86400},
        {ENGINE_PERIOD_HOUR, 35, T0 + 110 * 86400, INT64_MAX},
        {ENGINE_PERIOD_DAY, 40, INT64_MIN, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
        engine_limit l = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21026",
                          .value = ls[i].v, .unit = "mg/m3", .period = ls[i].period,
                          .basis = ENGINE_BASIS_MEASURED, .valid_from = ls[i].a,
                          .valid_to = ls[i].b};
        rc |= engine_registry_add_limit(reg, &l, NULL, 0);
    }
    if (rc) {
        engine_registry_destroy(reg);
        return NULL;
    }
    return reg;
}

static void write_series(storage *st, storage_sid sid, int64_t step, size_t n)
{
    storage_batch *b = storage_batch_create();
    static const char flags[] = "NNNNNNNNNNNNNNFMDCTB";
    int64_t t = T0;
    for (size_t i = 0; i < n; i++) {
        t += step * (rnd() % 16 == 0 ? 1 + (int64_t)(rnd() % 12) : 1);
        storage_point p = {.ts = t, .mask = 1u << STORAGE_COL_AVG};
        if (rnd() % 40 == 0)
            p.mask = 1u << STORAGE_COL_ZSAVG; /* a point lacking the charted column */
        double x = 30 + (double)(rnd() % 2400) / 100; /* 30 to 54: around both limits */
        p.v[STORAGE_COL_AVG] = p.v[STORAGE_COL_ZSAVG] = x;
        p.flag = (uint8_t)flags[rnd() % (sizeof flags - 1)];
        storage_batch_add(b, sid, &p);
    }
    storage_write(st, b);
    /* Later writes, kept in the head: replacements and new points. */
    for (int i = 0; i < 300; i++) {
        int64_t ts = T0 + step * (int64_t)(rnd() % (n + n / 4));
        storage_point p = st_pt(ts, 49.5 + (double)(rnd() % 3));
        p.flag = rnd() % 5 ? 'N' : 'D';
        storage_batch_add(b, sid, &p);
    }
    storage_write(st, b);
    storage_batch_destroy(b);
}

static void run_case(storage *st, const engine_registry *reg, const char *key, int iv,
                     int64_t step, size_t n)
{
    storage_sid sid;
    CHECK(storage_series_ensure(st, key, iv, &sid) == 0);
    write_series(st, sid, step, n);
    storage_reader *r;
    CHECK(storage_reader_open(st, &r) == 0);
    size_t cap = n + 1000;
    pts p = {malloc(cap * sizeof *p.ts), malloc(cap * sizeof *p.v), malloc(cap), 0};
    int64_t *ets = malloc(4 * cap * sizeof *ets);
    double *ev = malloc(4 * cap * sizeof *ev);
    query_run *er = malloc(cap * sizeof *er);
    const int64_t widths[] = {1, 7, 300, 1000, 4000, 20000};
    int m4_ok = 1, ex_ok = 1, inv_ok = 1, cases = 0, exceedances = 0;
    for (int k = 0; k < 24; k++) {
        int64_t px = widths[k % 6];
        int64_t from = k < 6 ? INT64_MIN : T0 + (int64_t)(rnd() % (n * (uint64_t)step));
        int64_t to = k < 6 ? INT64_MAX : from + (int64_t)(rnd() % (n * (uint64_t)step));
        bool inv = k % 2;
        query_chart_data d;
        CHECK(query_chart_compute(r, reg, sid, iv, STORAGE_COL_AVG, key, from, to, px, inv,
                                  &d) == 0);
        read_points(r, sid, STORAGE_COL_AVG, d.from, d.to, &p, cap);
        int64_t align = d.from, win = iv == STORAGE_IV_MIN ? 86400 : 5529600; /* FORMAT.md */
        if (d.bucket > query_m4_width(d.from, d.to, px))
            align = d.from - (d.from % win + win) % win;
        size_t ne = m4_plain(&p, align, d.bucket, ets, ev);
        bool same = ne == d.n;
        for (size_t i = 0; same && i < ne; i++)
            same = ets[i] == d.ts[i] && ev[i] == d.v[i];
        if (!same)
            printf("# %s width %lld: %zu M4 points expected, %zu got\n", key, (long long)px,
                   ne, d.n);
        m4_ok &= same;
        /* Minute series show their limit but are not judged. */
        size_t nx = iv == STORAGE_IV_HOUR ? runs_plain(&p, &d.limits, 1, er) : 0;
        if (!same_runs(er, nx, d.exceed, d.nexceed, 1)) {
            printf("# %s width %lld: %zu exceedances expected, %zu got\n", key,
                   (long long)px, nx, d.nexceed);
            ex_ok = 0;
        }
        exceedances += (int)nx;
        size_t ni = inv ? runs_plain(&p, &d.limits, 0, er) : 0;
        if (!same_runs(er, ni, d.invalid, d.ninvalid, 0)) {
            printf("# %s width %lld: %zu invalid runs expected, %zu got\n", key,
                   (long long)px, ni, d.ninvalid);
            inv_ok = 0;
        }
        cases++;
        query_chart_data_free(&d);
    }
    CHECK(m4_ok);
    CHECK(ex_ok);
    CHECK(inv_ok);
    CHECK(cases == 24 && (iv != STORAGE_IV_HOUR || exceedances > 0));
    storage_reader_close(r);
    free(p.ts);
    free(p.v);
    free(p.fl);
    free(ets);
    free(ev);
    free(er);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK(storage_open(dir, NULL, &st) == 0);
    engine_registry *reg = make_registry();
    CHECK(reg != NULL);
    run_case(st, reg, "M1:a21026:hour", STORAGE_IV_HOUR, 3600, 9000);
    run_case(st, reg, "M1:a21026:min", STORAGE_IV_MIN, 60, 60000);
    engine_registry_destroy(reg);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
