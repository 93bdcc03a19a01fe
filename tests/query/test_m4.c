/* test_m4.c: M4 downsampling. Random series (with gaps, duplicates of the extremes, and
 * chunks wholly inside one pixel) are written to a temporary store; for several widths the
 * points CEMS.CHART would draw (storage_aggregate buckets through query_m4_points) must
 * equal those computed here by brute force from the raw points: per pixel column the first,
 * the minimum (earliest on ties), the maximum (earliest on ties) and the last point, in time
 * order, each once. The chart's own path (query_chart_compute) must give the same points. */
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "tap.h"
#include "../storage/st_util.h"

#define T0 1699920000

typedef struct { int64_t ts; double v; } pt;

static size_t brute(const pt *p, size_t n, int64_t from, int64_t w, int64_t *ts, double *v)
{
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        int64_t b = from + (p[i].ts - from) / w * w;
        size_t j = i, mi = i, ma = i;
        for (; j < n && p[j].ts < b + w; j++) {
            if (p[j].v < p[mi].v)
                mi = j;
            if (p[j].v > p[ma].v)
                ma = j;
        }
        size_t idx[4] = {i, mi < ma ? mi : ma, mi < ma ? ma : mi, j - 1};
        for (int k = 0; k < 4; k++) {
            if (out && ts[out - 1] == p[idx[k]].ts)
                continue;
            ts[out] = p[idx[k]].ts;
            v[out++] = p[idx[k]].v;
        }
        i = j;
    }
    return out;
}

static void run_case(storage *st, const char *key, int iv, int64_t step, size_t n,
                     unsigned seed)
{
    storage_sid sid;
    CHECK(storage_series_ensure(st, key, iv, &sid) == 0);
    pt *p = malloc(n * sizeof *p);
    storage_batch *b = storage_batch_create();
    srand(seed);
    int64_t t = T0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        t += step * (rand() % 10 == 0 ? 1 + rand() % 20 : 1); /* gaps */
        double v = (double)(rand() % 50) / 4;                    /* many ties */
        p[m++] = (pt){t, v};
        storage_point sp = {.ts = t, .mask = 1u << STORAGE_COL_AVG, .flag = 'N'};
        sp.v[STORAGE_COL_AVG] = v;
        storage_batch_add(b, sid, &sp);
    }
    CHECK(storage_write(st, b) == 0);
    storage_batch_destroy(b);
    storage_reader *r;
    CHECK(storage_reader_open(st, &r) == 0);
    int64_t widths[] = {1, 7, 100, 1000, 3000};
    int all_ok = 1;
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        int64_t from = p[0].ts - step * 3, to = p[m - 1].ts + step;
        int64_t w = query_m4_width(from, to, widths[wi]);
        CHECK((to - from + 1 + w - 1) / w <= widths[wi]);
        storage_bucket *bk = malloc((size_t)widths[wi] * sizeof *bk);
        size_t nb = 0;
        CHECK(storage_aggregate(r, sid, STORAGE_COL_AVG, from, to, w, from, bk,
                                (size_t)widths[wi], &nb) == 0);
        int64_t *ets = malloc(4 * m * sizeof *ets), *gts = malloc(4 * m * sizeof *gts);
        double *ev = malloc(4 * m * sizeof *ev), *gv = malloc(4 * m * sizeof *gv);
        size_t ne = brute(p, m, from, w, ets, ev), ng = 0;
        for (size_t i = 0; i < nb; i++)
            ng += (size_t)query_m4_points(&bk[i], gts + ng, gv + ng);
        int same = ne == ng;
        for (size_t i = 0; same && i < ne; i++)
            same = ets[i] == gts[i] && ev[i] == gv[i];
        if (!same) {
            all_ok = 0;
            printf("# %s width %lld: %zu points expected, %zu got\n", key,
                   (long long)widths[wi], ne, ng);
        }
        free(bk);
        free(ets);
        free(gts);
        free(ev);
        free(gv);
    }
    CHECK(all_ok);
    /* The chart path: one pass over the points when pixels are narrower than a chunk window
     * (hourly series here), storage's buckets on window boundaries otherwise; either way
     * the M4 points of its own buckets. */
    int chart_ok = 1;
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        query_chart_data d;
        CHECK(query_chart_compute(r, NULL, sid, iv, STORAGE_COL_AVG, key, INT64_MIN, INT64_MAX,
                                  widths[wi], false, &d) == 0);
        int64_t align = d.from, win = iv == STORAGE_IV_MIN ? 86400 : 5529600; /* FORMAT.md */
        if (d.bucket > query_m4_width(d.from, d.to, widths[wi])) {
            CHECK(d.bucket % win == 0);
            align = d.from - (d.from % win + win) % win; /* window-aligned buckets */
        }
        int64_t *ets = malloc(4 * m * sizeof *ets);
        double *ev = malloc(4 * m * sizeof *ev);
        size_t ne = brute(p, m, align, d.bucket, ets, ev);
        int same = d.from == p[0].ts && d.to == p[m - 1].ts && ne == d.n &&
                   (size_t)((d.to - align) / d.bucket + 1) <= (size_t)widths[wi];
        for (size_t i = 0; same && i < ne; i++)
            same = ets[i] == d.ts[i] && ev[i] == d.v[i];
        if (!same) {
            chart_ok = 0;
            printf("# chart %s width %lld: %zu points expected, %zu got\n", key,
                   (long long)widths[wi], ne, d.n);
        }
        free(ets);
        free(ev);
        query_chart_data_free(&d);
    }
    CHECK(chart_ok);
    storage_reader_close(r);
    free(p);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK(storage_open(dir, NULL, &st) == 0);
    run_case(st, "M1:a21026:hour", STORAGE_IV_HOUR, 3600, 9000, 1);
    run_case(st, "M1:a21026:min", STORAGE_IV_MIN, 60, 50000, 2);
    run_case(st, "M3:a21026:min", STORAGE_IV_MIN, 60, 400000, 4); /* > 1 day per pixel */
    run_case(st, "M2:a21026:hour", STORAGE_IV_HOUR, 3600, 5, 3);
    /* One bucket: the whole range. */
    storage_bucket b = {.first_ts = 1, .first = 5, .min_ts = 1, .min = 5, .max_ts = 3,
                        .max = 9, .last_ts = 3, .last = 9};
    int64_t ts[4];
    double v[4];
    CHECK(query_m4_points(&b, ts, v) == 2 && ts[0] == 1 && ts[1] == 3 && v[1] == 9);
    b = (storage_bucket){.first_ts = 1, .first = 5, .min_ts = 4, .min = 1, .max_ts = 2,
                         .max = 9, .last_ts = 6, .last = 3};
    CHECK(query_m4_points(&b, ts, v) == 4 && ts[1] == 2 && v[1] == 9 && ts[2] == 4);
    CHECK(query_m4_width(0, 999, 1000) == 1 && query_m4_width(0, 1000, 1000) == 2);
    CHECK(query_m4_width(5, 4, 10) == 1 && query_m4_width(0, 9, 0) == 10);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
