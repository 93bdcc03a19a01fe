/* Writing points the store already holds: a re-import of the same points (direct writes)
 * or a resend through the log leaves the chunks as they are, so the file does not grow;
 * a changed value in a window is still written and read back. storage_write_direct writes
 * small batches straight into chunks too. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

#define NSERIES 20
#define NHOURS 3000

static void add_all(storage_batch *b, const storage_sid *sid, int64_t t0, int from, int to)
{
    for (int i = from; i < to; i++)
        for (int s = 0; s < NSERIES; s++) {
            storage_point p = st_pt(t0 + 3600 * (int64_t)i, (double)((i * 31 + s) % 977) / 10);
            storage_batch_add(b, sid[s], &p);
        }
}

static uint64_t used(storage *st)
{
    storage_stats s;
    storage_get_stats(st, &s);
    return s.map_used;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid sid[NSERIES];
    for (int s = 0; s < NSERIES; s++) {
        char key[64];
        snprintf(key, sizeof key, "MN%02d:a34004:hour", s);
        storage_series_ensure(st, key, STORAGE_IV_AUTO, &sid[s]);
    }
    const int64_t t0 = 1600000000 - 1600000000 % 3600;
    storage_batch *b = storage_batch_create();
    add_all(b, sid, t0, 0, NHOURS);
    CHECK_EQ_INT(storage_write(st, b), 0);
    uint64_t first = used(st);

    /* The same points again, three times, as an import would write them. */
    for (int k = 0; k < 3; k++) {
        add_all(b, sid, t0, 0, NHOURS);
        CHECK_EQ_INT(storage_write(st, b), 0);
    }
    printf("# map used: %llu bytes after the first write, %llu after three more\n",
           (unsigned long long)first, (unsigned long long)used(st));
    CHECK(used(st) == first);

    /* The same points in small batches, through the log, sealed at close: the chunks stay
     * as they are (the log's own pages come and go). */
    storage_stats s0, s1;
    storage_get_stats(st, &s0);
    for (int k = 0; k < 3; k++) {
        for (int h = 0; h < 1000; h += 100) {
            add_all(b, sid, t0, h, h + 100);
            CHECK(storage_write(st, b) == 0);
        }
        storage_close(st);
        CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    }
    storage_get_stats(st, &s1);
    CHECK_EQ_INT((long long)s1.chunks, (long long)s0.chunks);

    /* storage_write_direct takes even a small batch straight into chunks: no log pages. */
    for (int k = 0; k < 3; k++) {
        add_all(b, sid, t0, 500, 600);
        CHECK_EQ_INT(storage_write_direct(st, b), 0);
        if (k == 0)
            first = used(st);
    }
    CHECK(used(st) == first);
    storage_get_stats(st, &s1);
    CHECK_EQ_INT((long long)s1.wal_points, 0);

    storage_stats ss;
    storage_get_stats(st, &ss);
    CHECK_EQ_INT((long long)ss.points, (long long)NSERIES * NHOURS);

    /* A changed value is written. */
    storage_point p = st_pt(t0 + 3600 * 10, 1234.5);
    storage_batch_add(b, sid[3], &p);
    for (int i = 0; i < 20000; i++) { /* enough to be a direct write */
        storage_point q = st_pt(t0 + 3600 * (int64_t)(NHOURS + i), 1);
        storage_batch_add(b, sid[4], &q);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    storage_point *got;
    long n = st_read_all(st, sid[3], t0 + 3600 * 10, t0 + 3600 * 10, &got);
    CHECK(n == 1 && got[0].v[STORAGE_COL_AVG] == 1234.5);
    free(got);
    storage_get_stats(st, &ss);
    CHECK_EQ_INT((long long)ss.points, (long long)NSERIES * NHOURS + 20000);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);

    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
