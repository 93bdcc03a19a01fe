/* bench_read.c: the CPU cost of the query behind a trend chart: one series, one year,
 * aggregated into 1,000 buckets (count/sum/min/max/first/last per bucket), warm.
 *
 * Wall time on a shared two-core machine drifts with the neighbours; the process's CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) over many repetitions does much less, so that is the figure.
 * Each repetition opens a read snapshot, aggregates and closes it, as a query would.
 *
 *   bench_read DBDIR [SERIES [REPETITIONS]]      prints one JSON line
 *
 * Without SERIES the first series (by id) is used. The year ends at the series' newest point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage.h"

#define BUCKETS 1000
#define YEAR_S (365 * 86400LL)

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int aggregate_once(storage *st, storage_sid sid, int64_t from, int64_t to,
                          storage_bucket *out, size_t *n)
{
    storage_reader *r;
    int rc = storage_reader_open(st, &r);
    if (rc != 0)
        return rc;
    rc = storage_aggregate(r, sid, STORAGE_COL_AVG, from, to, YEAR_S / BUCKETS, from, out,
                           BUCKETS + 1, n);
    storage_reader_close(r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_read DBDIR [SERIES [REPETITIONS]]\n");
        return 2;
    }
    long reps = argc > 3 ? strtol(argv[3], NULL, 10) : 2000;
    storage_options opts = {.read_only = true};
    storage *st;
    int rc = storage_open(argv[1], &opts, &st);
    if (rc != 0) {
        fprintf(stderr, "bench_read: %s: %s\n", argv[1], storage_strerror(rc));
        return 1;
    }
    storage_sid sid = 1;
    char key[256] = "";
    if (argc > 2 && (rc = storage_series_lookup(st, argv[2], &sid)) != 0) {
        fprintf(stderr, "bench_read: no series '%s'\n", argv[2]);
        goto fail;
    }
    storage_series_key(st, sid, key, sizeof key);

    storage_reader *r;
    storage_point last;
    if ((rc = storage_reader_open(st, &r)) != 0)
        goto fail;
    rc = storage_latest(r, sid, &last);
    storage_reader_close(r);
    if (rc != 0) {
        fprintf(stderr, "bench_read: series '%s' has no points\n", key);
        goto fail;
    }
    int64_t to = last.ts, from = to - YEAR_S + 1;

    enum { ROUNDS = 5 };
    static storage_bucket buckets[BUCKETS + 1];
    size_t n = 0;
    if ((rc = aggregate_once(st, sid, from, to, buckets, &n)) != 0) /* warm the cache */
        goto fail;
    uint64_t points = 0;
    for (size_t i = 0; i < n; i++)
        points += buckets[i].count;

    /* Five rounds, the median reported: one round disturbed by the machine (a cache
     * flushed by a neighbour, a frequency step) does not decide the figure. */
    double round_ms[ROUNDS];
    for (int k = 0; k < ROUNDS && rc == 0; k++) {
        double t0 = cpu_s();
        for (long i = 0; i < reps && rc == 0; i++)
            rc = aggregate_once(st, sid, from, to, buckets, &n);
        round_ms[k] = (cpu_s() - t0) / (double)reps * 1e3;
    }
    if (rc != 0)
        goto fail;
    for (int a = 1; a < ROUNDS; a++) /* insertion sort of five */
        for (int b = a; b > 0 && round_ms[b - 1] > round_ms[b]; b--) {
            double t = round_ms[b];
            round_ms[b] = round_ms[b - 1];
            round_ms[b - 1] = t;
        }
    printf("{\"bench\":\"aggregate_1y_1000\",\"series\":\"%s\",\"points\":%llu,"
           "\"buckets\":%zu,\"repetitions\":%ld,\"rounds\":%d,\"cpu_ms\":%.4f,"
           "\"cpu_ms_min\":%.4f,\"cpu_ms_max\":%.4f}\n",
           key, (unsigned long long)points, n, reps, ROUNDS, round_ms[ROUNDS / 2], round_ms[0],
           round_ms[ROUNDS - 1]);
    storage_close(st);
    return 0;
fail:
    if (rc != 0)
        fprintf(stderr, "bench_read: %s\n", storage_strerror(rc));
    storage_close(st);
    return 1;
}
