/* Retention drops whole chunks whose window ended before now - keep, per interval class,
 * and nothing else. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid m, h;
    storage_series_ensure(st, "MN:a21026:min", STORAGE_IV_AUTO, &m);
    storage_series_ensure(st, "MN:a21026:hour", STORAGE_IV_AUTO, &h);
    const int64_t day = 86400, t0 = 1700006400 - 1700006400 % day; /* a window start */
    storage_batch *b = storage_batch_create();
    for (int64_t i = 0; i < 30 * 1440; i++) { /* 30 days of minutes */
        storage_point p = st_pt(t0 + 60 * i, (double)(i % 100));
        storage_batch_add(b, m, &p);
    }
    for (int64_t i = 0; i < 30 * 24; i++) {
        storage_point p = st_pt(t0 + 3600 * i, (double)i);
        storage_batch_add(b, h, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    int64_t now = t0 + 30 * day;
    CHECK_EQ_INT(storage_retention_run(st, now), 0); /* nothing set: keep everything */
    CHECK_EQ_INT(storage_set_retention(st, STORAGE_IV_MIN, 10 * day), 0);
    CHECK_EQ_INT(storage_set_retention(st, 9, day), -EINVAL);
    storage_stats s0, s1;
    storage_get_stats(st, &s0);
    int dropped = storage_retention_run(st, now);
    CHECK(dropped >= 20);
    storage_get_stats(st, &s1);
    CHECK_EQ_INT(s0.chunks - s1.chunks, dropped);
    CHECK_EQ_INT(s1.points, 10 * 1440 + 30 * 24);
    storage_point *got;
    long n = st_read_all(st, m, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, 10 * 1440);
    CHECK(n > 0 && got[0].ts == t0 + 20 * day);
    free(got);
    n = st_read_all(st, h, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, 30 * 24); /* the hour class keeps everything */
    free(got);
    CHECK_EQ_INT(storage_retention_run(st, now), 0);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_get_stats(st, &s1);
    CHECK_EQ_INT(s1.points, 10 * 1440 + 30 * 24);
    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
