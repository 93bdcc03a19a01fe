/* query_seed.c: fills a store with the series tools/bench/query times, and writes the year
 * series as Influx line protocol for the VictoriaMetrics comparison.
 *
 *   query_seed DIR LINE_PROTOCOL_FILE
 *
 * BENCH:a21026:hour   one year of hourly values (8,760 points) from 2023-01-01
 * BENCH:a21026:min    ten years of minute values (5,256,000 points) from 2014-01-01
 * Mnnnn:a21026:hour   1,000 series of one week of hourly values each (M0000 ... M0999)
 *
 * Values are a random walk around 30 with occasional spikes over 50 (the limit the registry
 * of the benchmark sets), so charts carry exceedances, with three decimals as analysers send
 * them. A store that already holds the series
 * is left as it is.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

#define YEAR0 1672502400    /* 2023-01-01T00:00:00+08:00 */
#define DECADE0 1388505600  /* 2014-01-01T00:00:00+08:00 */

static double walk(double v)
{
    v += ((double)rand() / RAND_MAX - 0.5) * 4;
    if (v < 5)
        v = 5 + (5 - v);
    if (v > 45)
        v = 45 - (v - 45);
    return v;
}

static int fill(storage *st, const char *key, int iv, int64_t t0, int64_t step, size_t n,
                FILE *lp)
{
    storage_sid sid;
    int rc = storage_series_ensure(st, key, iv, &sid);
    storage_batch *b = storage_batch_create();
    double v = 30;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        v = walk(v);
        storage_point p = {.ts = t0 + (int64_t)i * step, .mask = 1u << STORAGE_COL_AVG,
                           .flag = rand() % 500 == 0 ? 'F' : 'N'};
        double x = rand() % 200 == 0 ? v + 30 : v;
        p.v[STORAGE_COL_AVG] = round(x * 1000) / 1000; /* three decimals, as analysers send */
        rc = storage_batch_add(b, sid, &p);
        if (lp)
            fprintf(lp, "bench,series=year value=%.3f %lld\n", p.v[STORAGE_COL_AVG],
                    (long long)p.ts * 1000000000LL);
        if (rc == 0 && storage_batch_points(b) >= 200000)
            rc = storage_write(st, b);
    }
    if (rc == 0)
        rc = storage_write(st, b);
    storage_batch_destroy(b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: query_seed DIR LINE_PROTOCOL_FILE\n");
        return 2;
    }
    storage *st;
    storage_sid sid;
    int rc = storage_open(argv[1], NULL, &st);
    if (rc != 0) {
        fprintf(stderr, "query_seed: %s: %s\n", argv[1], storage_strerror(rc));
        return 1;
    }
    srand(42);
    FILE *lp = fopen(argv[2], "w");
    if (!lp) {
        perror(argv[2]);
        storage_close(st);
        return 1;
    }
    if (storage_series_lookup(st, "BENCH:a21026:hour", &sid) != 0) {
        rc = fill(st, "BENCH:a21026:hour", STORAGE_IV_HOUR, YEAR0, 3600, 8760, lp);
        if (rc == 0)
            rc = fill(st, "BENCH:a21026:min", STORAGE_IV_MIN, DECADE0, 60, 5256000, NULL);
        char key[64];
        for (int i = 0; rc == 0 && i < 1000; i++) {
            snprintf(key, sizeof key, "M%04d:a21026:hour", i);
            rc = fill(st, key, STORAGE_IV_HOUR, YEAR0, 3600, 168, NULL);
        }
    } else {
        srand(42);
        double v = 30;
        for (int i = 0; i < 8760; i++) { /* the same year again, for the line protocol */
            v = walk(v);
            (void)(rand() % 500);
            double x = round((rand() % 200 == 0 ? v + 30 : v) * 1000) / 1000;
            fprintf(lp, "bench,series=year value=%.3f %lld\n", x,
                    (long long)(YEAR0 + (int64_t)i * 3600) * 1000000000LL);
        }
    }
    fclose(lp);
    storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "query_seed: %s\n", storage_strerror(rc));
        return 1;
    }
    return 0;
}
