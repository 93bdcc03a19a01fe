/* The write-ahead log and key/value tables: points acknowledged but never sealed come back
 * after a close without sealing; key/value operations commit atomically with points;
 * latest sees both head and chunks; a batch naming an unknown table fails alone. */
#include <errno.h>

#include "st_util.h"
#include "storage_int.h" /* test_no_seal */
#include "tap.h"

static int scan_count;
static int scan_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    scan_count++;
    if (arg && klen == 1 && memcmp(key, arg, 1) == 0)
        return 7;
    return 0;
}

static int statuses[8], nstat;
static void cb(void *arg, int status)
{
    (void)arg;
    statuses[nstat++ & 7] = status;
}

int main(void)
{
    const char *dir = st_tmpdir();
    const char *const tables[] = {"registry", "outbox", NULL};
    storage_options o = {.kv_tables = tables};
    storage *st;
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_sid s;
    storage_series_ensure(st, "MN:a21026:hour", STORAGE_IV_AUTO, &s);
    const int64_t t0 = 1600000000;
    for (int k = 0; k < 50; k++) {
        storage_batch *b = storage_batch_create();
        for (int i = 0; i < 20; i++) {
            storage_point p = st_pt(t0 + 3600 * (int64_t)(k * 20 + i), k + i * 0.5);
            storage_batch_add(b, s, &p);
        }
        char key[16];
        snprintf(key, sizeof key, "k%02d", k);
        storage_batch_kv_put(b, "registry", key, strlen(key), "value", 5);
        if (k == 49)
            storage_batch_kv_del(b, "registry", "k00", 3);
        CHECK_EQ_INT(storage_submit(st, b, cb, NULL), 0);
    }
    CHECK_EQ_INT(storage_sync(st), 0);
    storage_stats ss;
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.wal_points, 1000);
    CHECK_EQ_INT(ss.chunks, 0);

    storage_reader *r;
    storage_point p;
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    CHECK_EQ_INT(storage_latest(r, s, &p), 0);
    CHECK_EQ_INT(p.ts, t0 + 3600 * 999);
    void *v;
    size_t vl;
    CHECK_EQ_INT(storage_kv_get(r, "registry", "k07", 3, &v, &vl), 0);
    CHECK(vl == 5 && memcmp(v, "value", 5) == 0);
    free(v);
    CHECK_EQ_INT(storage_kv_get(r, "registry", "k00", 3, &v, &vl), -ENOENT);
    CHECK_EQ_INT(storage_kv_get(r, "nosuch", "k00", 3, &v, &vl), -ENOENT);
    scan_count = 0;
    CHECK_EQ_INT(storage_kv_scan(r, "registry", NULL, 0, scan_fn, NULL), 0);
    CHECK_EQ_INT(scan_count, 49);
    scan_count = 0;
    CHECK_EQ_INT(storage_kv_scan(r, "registry", "k40", 3, scan_fn, NULL), 0);
    CHECK_EQ_INT(scan_count, 10);
    scan_count = 0;
    CHECK_EQ_INT(storage_kv_scan(r, "outbox", NULL, 0, scan_fn, NULL), 0);
    CHECK_EQ_INT(scan_count, 0);
    storage_reader_close(r);

    /* A batch with an unknown table fails alone; the others of its group commit. */
    storage_batch *bad = storage_batch_create();
    storage_point q = st_pt(t0 - 3600, 1);
    storage_batch_add(bad, s, &q);
    storage_batch_kv_put(bad, "nosuch", "x", 1, "y", 1);
    storage_batch *good = storage_batch_create();
    storage_batch_kv_put(good, "outbox", "a", 1, "1", 1);
    nstat = 0;
    storage_submit(st, bad, cb, NULL);
    storage_submit(st, good, cb, NULL);
    storage_sync(st);
    CHECK_EQ_INT(nstat, 2);
    CHECK_EQ_INT(statuses[0], -ENOENT);
    CHECK_EQ_INT(statuses[1], 0);

    /* Close without sealing: everything is in the log only. */
    st->test_no_seal = true;
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.wal_points, 1000);
    storage_point *got;
    long n = st_read_all(st, s, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, 1000);
    int badv = 0;
    for (long i = 0; i < n; i++) {
        int k = (int)(i / 20), j = (int)(i % 20);
        badv += got[i].ts != t0 + 3600 * i || got[i].v[0] != k + j * 0.5;
    }
    CHECK_EQ_INT(badv, 0);
    free(got);
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    scan_count = 0;
    CHECK_EQ_INT(storage_kv_scan(r, "outbox", NULL, 0, scan_fn, NULL), 0);
    CHECK_EQ_INT(scan_count, 1);
    scan_count = 0;
    CHECK_EQ_INT(storage_kv_scan(r, "registry", NULL, 0, scan_fn, (void *)"k"), 0);
    storage_reader_close(r);

    /* Read-only sees the log too. */
    st->test_no_seal = true;
    storage_close(st);
    storage_options ro = {.kv_tables = tables, .read_only = true};
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    n = st_read_all(st, s, INT64_MIN, INT64_MAX, &got);
    CHECK_EQ_INT(n, 1000);
    free(got);
    storage_close(st);

    /* A normal close seals: the log is empty afterwards, and latest reads chunks. */
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_get_stats(st, &ss);
    CHECK_EQ_INT(ss.wal_points, 0);
    CHECK_EQ_INT(ss.points, 1000);
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    CHECK_EQ_INT(storage_latest(r, s, &p), 0);
    CHECK_EQ_INT(p.ts, t0 + 3600 * 999);
    storage_sid empty;
    storage_series_ensure(st, "MN:empty:hour", STORAGE_IV_AUTO, &empty);
    CHECK_EQ_INT(storage_latest(r, empty, &p), -ENOENT);
    storage_reader_close(r);
    /* A newer head point wins over the chunks; an older one does not. */
    storage_batch *b = storage_batch_create();
    q = st_pt(t0 - 7200, 3);
    storage_batch_add(b, s, &q);
    CHECK_EQ_INT(storage_write(st, b), 0);
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    CHECK_EQ_INT(storage_latest(r, s, &p), 0);
    CHECK_EQ_INT(p.ts, t0 + 3600 * 999);
    storage_reader_close(r);
    q = st_pt(t0 + 3600 * 5000, 4);
    storage_batch_add(b, s, &q);
    CHECK_EQ_INT(storage_write(st, b), 0);
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    CHECK_EQ_INT(storage_latest(r, s, &p), 0);
    CHECK_EQ_INT(p.ts, t0 + 3600 * 5000);
    storage_reader_close(r);
    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
