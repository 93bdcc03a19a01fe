/* storage_check: a healthy store has no faults; a chunk damaged behind the engine's back is
 * found and reported with its series key and window. */
#include <errno.h>
#include <lmdb.h>

#include "st_util.h"
#include "tap.h"

static char fault_series[256];
static int64_t fault_window;
static int nfaults;
static void on_fault(void *arg, const char *series, int64_t window, const char *msg)
{
    (void)arg;
    printf("# fault: %s @%lld: %s\n", series, (long long)window, msg);
    if (nfaults++ == 0) { /* remember the first, in key order */
        snprintf(fault_series, sizeof fault_series, "%s", series);
        fault_window = window;
    }
}

/* Damages the chunk record with the given index (in key order) of the store in dir. */
static int damage(const char *dir, int which, int how)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 32);
    if (!rc)
        rc = mdb_env_open(env, dir, 0, 0644);
    if (!rc)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "chunks", 0, &dbi);
    if (!rc)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (int i = 0; i < which && rc == 0; i++)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (rc == 0) {
        uint8_t buf[65536];
        size_t len = v.mv_size;
        memcpy(buf, v.mv_data, len);
        if (how == 0)
            buf[len - 1] ^= 0x40; /* the last byte: a value */
        else
            len /= 2; /* truncated */
        MDB_val nv = {len, buf};
        rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid a, b2;
    storage_series_ensure(st, "MN:a21026:hour", STORAGE_IV_AUTO, &a);
    storage_series_ensure(st, "MN:a21002:hour", STORAGE_IV_AUTO, &b2);
    storage_batch *b = storage_batch_create();
    const int64_t t0 = 5529600 * 300;
    for (int i = 0; i < 100; i++) { /* one window, one part each */
        storage_point p = st_pt(t0 + 3600 * (int64_t)i, 10 + i % 17 * 0.5);
        storage_batch_add(b, a, &p);
        p.v[0] += 1;
        storage_batch_add(b, b2, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    CHECK_EQ_INT(storage_check(st, on_fault, NULL), 0);
    CHECK_EQ_INT(nfaults, 0);
    storage_close(st);

    /* Chunk 0 is series a's window, chunk 1 series b2's. */
    CHECK_EQ_INT(damage(dir, 1, 0), 0);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    int n = storage_check(st, on_fault, NULL);
    CHECK(n >= 1);
    CHECK_EQ_INT(nfaults, n);
    CHECK_EQ_STR(fault_series, "MN:a21002:hour");
    CHECK_EQ_INT(fault_window, t0);
    storage_close(st);

    CHECK_EQ_INT(damage(dir, 0, 1), 0);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    nfaults = 0;
    n = storage_check(st, on_fault, NULL);
    CHECK(n >= 2);
    CHECK_EQ_STR(fault_series, "MN:a21026:hour");
    CHECK_EQ_INT(fault_window, t0);
    storage_point *got;
    CHECK_EQ_INT(st_read_all(st, a, INT64_MIN, INT64_MAX, &got), -1); /* reading says so */
    free(got);
    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
