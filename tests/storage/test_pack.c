/* Packing: a large write into new windows appends its chunks in key order and fills the
 * chunk table's leaf pages (parts are cut to the room left on a page), and every point
 * still reads back exactly, the parts of a window in time order. */
#include <errno.h>
#include <math.h>

#include "st_util.h"
#include "storage_int.h"
#include "tap.h"

#define NSERIES 40
#define NHOURS 4608 /* three whole 64-day windows */

/* Decimal readings of varied size, so that chunk values vary in length. */
static double reading(int s, int i)
{
    double x = (double)((i * 7919 + s * 104729) % 1000);
    double wave = 50 + 40 * sin(i / (10.0 + s));
    if (s % 3 == 0)
        return round((wave + x / 100) * 10) / 10;
    if (s % 3 == 1)
        return round(wave);
    return round((wave + x / 7) * 100) / 100;
}

/* Sum of the leaf-node costs of every chunk value, and the leaf pages they occupy. */
static void table_fill(storage *st, double *payload, size_t *leaves)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_stat ms;
    MDB_val k, v;
    *payload = 0;
    mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    mdb_stat(txn, st->dbi_chunks, &ms);
    *leaves = ms.ms_leaf_pages;
    mdb_cursor_open(txn, st->dbi_chunks, &cur);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        *payload += (double)(((8 + k.mv_size + v.mv_size + 1) & ~(size_t)1) + 2);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid sid[NSERIES];
    for (int s = 0; s < NSERIES; s++) {
        char key[64];
        snprintf(key, sizeof key, "MN%02d:a21026:hour", s);
        storage_series_ensure(st, key, STORAGE_IV_AUTO, &sid[s]);
    }
    const int64_t t0 = 1600000000 - 1600000000 % 5529600; /* a window start */

    /* One write of everything, time-major as devices send it. */
    storage_batch *b = storage_batch_create();
    for (int i = 0; i < NHOURS; i++)
        for (int s = 0; s < NSERIES; s++) {
            storage_point p = st_pt(t0 + 3600 * (int64_t)i, reading(s, i));
            storage_batch_add(b, sid[s], &p);
        }
    CHECK_EQ_INT(storage_write(st, b), 0);

    double payload;
    size_t leaves;
    table_fill(st, &payload, &leaves);
    double fill = payload / ((double)leaves * 4080);
    printf("# one write: leaf pages %.1f%% full (%zu pages)\n", fill * 100, leaves);
    CHECK(fill > 0.96);

    storage_stats stats;
    storage_get_stats(st, &stats);
    CHECK_EQ_INT((long long)stats.points, (long long)NSERIES * NHOURS);

    int bad = 0;
    for (int s = 0; s < NSERIES; s++) {
        storage_point *got;
        long n = st_read_all(st, sid[s], INT64_MIN, INT64_MAX, &got);
        bad += n != NHOURS;
        for (long i = 0; i < n && i < NHOURS; i++) {
            storage_point want = st_pt(t0 + 3600 * (int64_t)i, reading(s, (int)i));
            bad += !st_pt_equal(&got[i], &want);
        }
        free(got);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);

    /* A second write of later windows appends after the first and packs as well. */
    for (int i = NHOURS; i < 2 * NHOURS; i++)
        for (int s = 0; s < NSERIES; s++) {
            storage_point p = st_pt(t0 + 3600 * (int64_t)i, reading(s, i));
            storage_batch_add(b, sid[s], &p);
        }
    CHECK_EQ_INT(storage_write(st, b), 0);
    table_fill(st, &payload, &leaves);
    fill = payload / ((double)leaves * 4080);
    printf("# after a second write: leaf pages %.1f%% full\n", fill * 100);
    CHECK(fill > 0.95);
    storage_point *got;
    CHECK_EQ_INT(st_read_all(st, sid[7], INT64_MIN, INT64_MAX, &got), 2 * NHOURS);
    free(got);
    CHECK_EQ_INT(storage_check(st, NULL, NULL), 0);

    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
