/* test_version.c: storage_series_version, the stamp reply caches above storage rely on:
 * it must change with every commit that changes a series' points (small writes through the
 * log, large direct writes, retention) and only then, and a reader opened after reading it
 * must see the points it stands for. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

static int put(storage *st, storage_sid sid, int64_t t0, int n, double v)
{
    storage_batch *b = storage_batch_create();
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        storage_point p = {.ts = t0 + i * 60, .mask = 1u << STORAGE_COL_AVG, .flag = 'N'};
        p.v[STORAGE_COL_AVG] = v;
        rc = storage_batch_add(b, sid, &p);
    }
    if (rc == 0)
        rc = storage_write(st, b);
    storage_batch_destroy(b);
    return rc;
}

static int count_points(storage *st, storage_sid sid)
{
    storage_reader *r;
    storage_iter *it;
    storage_point p;
    int n = 0;
    if (storage_reader_open(st, &r) != 0)
        return -1;
    if (storage_iter_open(r, sid, INT64_MIN, INT64_MAX, &it) == 0) {
        while (storage_iter_next(it, &p) == 1)
            n++;
        storage_iter_close(it);
    }
    storage_reader_close(r);
    return n;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    storage_sid a, b;
    const int64_t t0 = 1700000000 / 86400 * 86400;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    CHECK_EQ_INT(storage_series_ensure(st, "A:a21026:min", STORAGE_IV_AUTO, &a), 0);
    CHECK_EQ_INT(storage_series_ensure(st, "B:a21026:min", STORAGE_IV_AUTO, &b), 0);
    uint64_t va = storage_series_version(st, a), vb = storage_series_version(st, b);
    CHECK(storage_series_version(st, 999) == va); /* unknown and untouched: equal */

    /* A small write goes through the log and the head. */
    CHECK_EQ_INT(put(st, a, t0, 10, 1.0), 0);
    uint64_t va1 = storage_series_version(st, a);
    CHECK(va1 != va);
    CHECK(storage_series_version(st, b) == vb); /* another series: unchanged */
    CHECK_EQ_INT(count_points(st, a), 10);
    CHECK(storage_series_version(st, a) == va1); /* reading changes nothing */

    /* Rewriting a point with the same timestamp is a change too. */
    CHECK_EQ_INT(put(st, a, t0, 1, 2.0), 0);
    uint64_t va2 = storage_series_version(st, a);
    CHECK(va2 != va1);

    /* A large write goes straight into chunks. */
    CHECK_EQ_INT(put(st, b, t0 - 30 * 86400, 25000, 3.0), 0);
    uint64_t vb1 = storage_series_version(st, b);
    CHECK(vb1 != vb);
    CHECK(storage_series_version(st, a) == va2);
    CHECK_EQ_INT(count_points(st, b), 25000);

    /* Retention dropping chunks changes what the series hold. */
    CHECK_EQ_INT(storage_set_retention(st, STORAGE_IV_MIN, 10 * 86400), 0);
    CHECK(storage_retention_run(st, t0) > 0);
    CHECK(storage_series_version(st, b) != vb1);
    CHECK(count_points(st, b) < 25000);

    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
