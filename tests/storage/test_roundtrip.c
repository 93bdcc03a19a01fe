/* Writing and reading points: every column and flag round-trips exactly, through the head,
 * through sealed chunks and through direct (import) writes; late and out-of-order points
 * merge into sealed chunks; a point with the timestamp of a stored one replaces it. */
#include <errno.h>
#include <math.h>

#include "st_util.h"
#include "tap.h"

static storage_point full_pt(int64_t ts, int i)
{
    storage_point p;
    memset(&p, 0, sizeof p);
    p.ts = ts;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if ((i + c) % 3 != 0 || c == 0) {
            p.mask |= (uint8_t)(1u << c);
            p.v[c] = (i * 7 + c) * 0.01 + (c == 3 ? 1e9 : 0);
        }
    if (i % 5 == 0)
        p.v[0] = 0.1 + 0.2; /* a value no decimal scale holds */
    if (i % 11 == 0)
        p.v[0] = -0.0;
    p.flag = "NFMSDCT"[i % 7];
    if (i % 13 == 0)
        p.flag = 0;
    return p;
}

static int count_cb_calls, count_cb_bad;
static void cb(void *arg, int status)
{
    (void)arg;
    count_cb_calls++;
    count_cb_bad += status != 0;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid h, m, r;
    storage_series_ensure(st, "MN:a21026:hour", STORAGE_IV_AUTO, &h);
    storage_series_ensure(st, "MN:a21026:min", STORAGE_IV_AUTO, &m);
    storage_series_ensure(st, "MN:a21026:rtd", STORAGE_IV_AUTO, &r);

    /* 1: small batches through the log, all columns, in a shuffled order. */
    const int N = 3000;
    const int64_t t0 = 1700000000 - 1700000000 % 3600;
    storage_point *want = calloc(N, sizeof *want);
    for (int i = 0; i < N; i++)
        want[i] = full_pt(t0 + 3600 * (int64_t)i, i);
    for (int k = 0; k < 10; k++) {
        storage_batch *b = storage_batch_create();
        for (int i = k; i < N; i += 10)
            CHECK(k > 0 || storage_batch_add(b, h, &want[N - 1 - i]) == 0);
        if (k > 0)
            for (int i = k; i < N; i += 10)
                storage_batch_add(b, h, &want[N - 1 - i]);
        CHECK_EQ_INT(storage_submit(st, b, cb, NULL), 0);
    }
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(count_cb_calls, 10);
    CHECK_EQ_INT(count_cb_bad, 0);

    storage_point *got;
    long n = st_read_all(st, h, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, N);
    int bad = 0;
    for (long i = 0; i < n && i < N; i++)
        bad += !st_pt_equal(&got[i], &want[i]);
    CHECK_EQ_INT(bad, 0);
    free(got);

    /* Sub-ranges: inclusive bounds. */
    n = st_read_all(st, h, t0 + 3600 * 10, t0 + 3600 * 20, &got);
    CHECK_EQ_INT(n, 11);
    CHECK(n > 0 && got[0].ts == t0 + 3600 * 10);
    free(got);

    /* 2: reopen (the head is sealed at close): same points, from chunks now. */
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_stats ss;
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.wal_points, 0);
    CHECK_EQ_INT(ss.points, N);
    CHECK(ss.chunks >= 2);
    n = st_read_all(st, h, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, N);
    bad = 0;
    for (long i = 0; i < n && i < N; i++)
        bad += !st_pt_equal(&got[i], &want[i]);
    CHECK_EQ_INT(bad, 0);
    free(got);

    /* 3: late points into sealed windows, and replacements of stored timestamps. */
    storage_batch *b = storage_batch_create();
    storage_point late = st_pt(t0 + 3600 * 5 + 1800, 42.5);    /* between two points */
    storage_point repl = st_pt(t0 + 3600 * 7, 99.25);          /* replaces one */
    storage_point early = st_pt(t0 - 86400 * 400, 1.5);        /* a window of its own */
    storage_batch_add(b, h, &late);
    storage_batch_add(b, h, &repl);
    storage_batch_add(b, h, &early);
    CHECK_EQ_INT(storage_write(st, b), 0);
    CHECK_EQ_INT(storage_batch_points(b), 0);
    for (int round = 0; round < 2; round++) {
        n = st_read_all(st, h, INT64_MIN, INT64_MAX, &got);
        CHECK_EQ_INT(n, N + 2);
        CHECK(n > 8 && st_pt_equal(&got[0], &early));
        CHECK(n > 8 && st_pt_equal(&got[7], &late));
        CHECK(n > 9 && st_pt_equal(&got[9], &repl));
        CHECK(n > 10 && st_pt_equal(&got[10], &want[8]));
        free(got);
        storage_close(st); /* seal, and read again from chunks */
        CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    }
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);

    /* 4: a direct write (import size) into the minute series, shuffled, with duplicates:
     * the later duplicate wins. */
    const int M = 50000;
    storage_point *mw = calloc(M, sizeof *mw);
    for (int i = 0; i < M; i++)
        mw[i] = full_pt(t0 + 60 * (int64_t)i, i);
    for (int i = 0; i < M; i++) {
        int j = (int)((i * 7919L) % M);
        storage_batch_add(b, m, &mw[j]);
    }
    storage_point dup = st_pt(t0 + 60 * 100, -5.5);
    storage_batch_add(b, m, &dup);
    mw[100] = dup;
    CHECK(storage_batch_points(b) >= 20000);
    CHECK_EQ_INT(storage_write(st, b), 0);
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.wal_points, 0);
    n = st_read_all(st, m, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, M);
    bad = 0;
    for (long i = 0; i < n && i < M; i++)
        bad += !st_pt_equal(&got[i], &mw[i]);
    CHECK_EQ_INT(bad, 0);
    free(got);

    /* A second direct write over the same range merges into the chunks it finds. */
    for (int i = 0; i < M; i += 2) {
        mw[i] = st_pt(mw[i].ts, i * 0.5);
        storage_batch_add(b, m, &mw[i]);
    }
    for (int i = 0; i < 20000; i++) {
        storage_point p = st_pt(t0 + 60 * (int64_t)(M + i), i);
        storage_batch_add(b, m, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    n = st_read_all(st, m, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, M + 20000);
    bad = 0;
    for (long i = 0; i < n && i < M; i++)
        bad += !st_pt_equal(&got[i], &mw[i]);
    CHECK_EQ_INT(bad, 0);
    free(got);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.points, N + 2 + M + 20000);

    /* 5: real-time series: one point a second over a day, windows of 6 h split into parts. */
    for (int i = 0; i < 86400; i++) {
        storage_point p = st_pt(t0 + i, 20 + (i % 1000) * 0.01);
        storage_batch_add(b, r, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    n = st_read_all(st, r, t0 + 100, t0 + 80000, &got);
    CHECK_EQ_INT(n, 80000 - 100 + 1);
    CHECK(n > 0 && got[0].ts == t0 + 100 && got[n - 1].ts == t0 + 80000);
    free(got);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);

    /* Invalid input. */
    storage_point none = st_pt(1, 1);
    none.mask = 0;
    CHECK_EQ_INT(storage_batch_add(b, h, &none), -EINVAL);
    CHECK_EQ_INT(storage_batch_add(b, 0, &late), -EINVAL);
    CHECK_EQ_INT(storage_batch_add(b, 999, &late), 0);
    CHECK_EQ_INT(storage_write(st, b), -EINVAL); /* unknown series: nothing stored */
    storage_batch_destroy(b);
    storage_close(st);
    free(want);
    free(mw);
    st_rmdir(dir);
    return tap_done();
}
