/* Statistics count points once: a point written again through the log (a resend, a
 * re-import of a small file) while chunks hold it is one point, before and after it is
 * sealed, and after a crash that left it in the log. */
#include <errno.h>

#include "st_util.h"
#include "storage_int.h"
#include "tap.h"

#define SEALED 30000

static void stats_of(storage *st, storage_stats *s)
{
    memset(s, 0, sizeof *s);
    CHECK_EQ_INT(storage_get_stats(st, s), 0);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid a, b2;
    storage_series_ensure(st, "MN:a21026:hour", STORAGE_IV_AUTO, &a);
    storage_series_ensure(st, "MN:a21002:hour", STORAGE_IV_AUTO, &b2);
    const int64_t t0 = 1500000000 - 1500000000 % 3600;

    storage_batch *b = storage_batch_create();
    for (int i = 0; i < SEALED; i++) {
        storage_point p = st_pt(t0 + 3600 * (int64_t)i, i % 100);
        storage_batch_add(b, a, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0); /* straight into chunks */

    /* Through the log: 1,000 points chunks hold (half of them with new values), 500 new
     * points of another series, and 200 of those sent twice. */
    for (int i = 0; i < 1000; i++) {
        storage_point p = st_pt(t0 + 3600 * (int64_t)(i * 7), i % 2 ? i % 100 : -1);
        storage_batch_add(b, a, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    for (int i = 0; i < 500; i++) {
        storage_point p = st_pt(t0 + 3600 * (int64_t)i, 5);
        storage_batch_add(b, b2, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    for (int i = 0; i < 200; i++) {
        storage_point p = st_pt(t0 + 3600 * (int64_t)i, 6);
        storage_batch_add(b, b2, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);

    storage_stats s;
    stats_of(st, &s);
    CHECK_EQ_INT((long long)s.points, SEALED + 500);
    CHECK_EQ_INT((long long)s.wal_points, 1500);

    /* A crash: the log stays unsealed; a read-only open replays it. */
    st->test_no_seal = true;
    storage_close(st);
    storage_options ro = {.read_only = true};
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    stats_of(st, &s);
    CHECK_EQ_INT((long long)s.points, SEALED + 500);
    CHECK_EQ_INT((long long)s.wal_points, 1500);
    storage_close(st);

    /* Sealed at the next close. */
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    stats_of(st, &s);
    CHECK_EQ_INT((long long)s.points, SEALED + 500);
    CHECK_EQ_INT((long long)s.wal_points, 0);
    CHECK_EQ_INT((long long)s.chunks > 0, 1);
    storage_close(st);

    storage_batch_destroy(b);
    st_rmdir(dir);
    return tap_done();
}
