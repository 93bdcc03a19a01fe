/* A store opened with a tiny map grows it on demand: MDB_MAP_FULL is never an error the
 * caller sees, for group commits, direct writes and checkpoints alike. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

static int fails;
static void cb(void *arg, int status)
{
    (void)arg;
    fails += status != 0;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage_options o = {.map_size = 64 * 1024};
    storage *st;
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_stats s;
    storage_get_stats(st, &s);
    uint64_t first = s.map_size;
    storage_sid sids[50];
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof k, "MN%02d:a21026:min", i);
        storage_series_ensure(st, k, STORAGE_IV_AUTO, &sids[i]);
    }
    const int64_t t0 = 1700000000 - 1700000000 % 86400;
    for (int k = 0; k < 200; k++) { /* small batches through the log */
        storage_batch *b = storage_batch_create();
        for (int i = 0; i < 50; i++) {
            storage_point p = st_pt(t0 + 60 * k, i + k * 0.25);
            p.mask |= 0x7e;
            for (int c = 1; c < STORAGE_NCOLS; c++)
                p.v[c] = k * 1.5 + c;
            storage_batch_add(b, sids[i], &p);
        }
        storage_submit(st, b, cb, NULL);
    }
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(fails, 0);
    storage_batch *b = storage_batch_create(); /* a direct write of 100,000 points */
    for (int k = 200; k < 2200; k++)
        for (int i = 0; i < 50; i++) {
            storage_point p = st_pt(t0 + 60 * k, i * 1.0 + k);
            storage_batch_add(b, sids[i], &p);
        }
    CHECK_EQ_INT(storage_write(st, b), 0);
    storage_get_stats(st, &s);
    CHECK(s.map_size > first);
    CHECK(s.map_used <= s.map_size);
    CHECK_EQ_INT(s.points, 50 * 2200);
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_point *got;
    long n = st_read_all(st, sids[7], INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, 2200);
    CHECK(n == 2200 && got[0].v[0] == 7 && got[2199].v[0] == 7 + 2199);
    free(got);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);
    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
