/* The series catalog: ids are dense and stable, keys, classes and labels survive a reopen,
 * the class is derived from the key, bad keys are refused. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid a = 0, b = 0, c = 0, d = 0, again = 0;
    CHECK_EQ_INT(storage_series_ensure(st, "010000A8900016F000169DC0:a21026:hour", STORAGE_IV_AUTO, &a), 0);
    CHECK_EQ_INT(a, 1);
    CHECK_EQ_INT(storage_series_ensure(st, "MN1:a21002:min", STORAGE_IV_AUTO, &b), 0);
    CHECK_EQ_INT(storage_series_ensure(st, "MN1:a21002:rtd", STORAGE_IV_AUTO, &c), 0);
    CHECK_EQ_INT(storage_series_ensure(st, "MN1:a21002:day.calc", STORAGE_IV_AUTO, &d), 0);
    CHECK_EQ_INT(storage_series_ensure(st, "MN1:a21002:min", STORAGE_IV_AUTO, &again), 0);
    CHECK_EQ_INT(again, b);
    CHECK_EQ_INT(storage_series_interval(st, a), STORAGE_IV_HOUR);
    CHECK_EQ_INT(storage_series_interval(st, b), STORAGE_IV_MIN);
    CHECK_EQ_INT(storage_series_interval(st, c), STORAGE_IV_RTD);
    CHECK_EQ_INT(storage_series_interval(st, d), STORAGE_IV_DAY);
    storage_sid e;
    CHECK_EQ_INT(storage_series_ensure(st, "plain", STORAGE_IV_AUTO, &e), 0);
    CHECK_EQ_INT(storage_series_interval(st, e), STORAGE_IV_HOUR);
    storage_sid f;
    CHECK_EQ_INT(storage_series_ensure(st, "explicit:hour", STORAGE_IV_DAY, &f), 0);
    CHECK_EQ_INT(storage_series_interval(st, f), STORAGE_IV_DAY);
    CHECK_EQ_INT(storage_series_ensure(st, "", STORAGE_IV_AUTO, &e), -EINVAL);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    CHECK_EQ_INT(storage_series_ensure(st, longkey, STORAGE_IV_AUTO, &e), -EINVAL);
    CHECK_EQ_INT(storage_series_lookup(st, "nope", &e), -ENOENT);
    CHECK_EQ_INT(storage_series_set_labels(st, b, "mn=MN1\npollutant=a21002"), 0);
    CHECK_EQ_INT(storage_series_count(st), 6);

    char buf[256];
    CHECK_EQ_INT(storage_series_key(st, c, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "MN1:a21002:rtd");
    CHECK_EQ_INT(storage_series_key(st, c, buf, 4), -ERANGE);
    CHECK_EQ_INT(storage_series_key(st, 99, buf, sizeof buf), -ENOENT);
    CHECK_EQ_INT(storage_series_labels(st, a, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "");

    /* Many series, then a reopen: everything comes back with the same ids. */
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        char k[64];
        storage_sid s;
        snprintf(k, sizeof k, "MN%05d:a%05d:hour", i, i % 97);
        bad += storage_series_ensure(st, k, STORAGE_IV_AUTO, &s) != 0 || s != (storage_sid)(7 + i);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(storage_series_set_labels(st, a, "site=x"), 0); /* durable at close */
    storage_close(st);

    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    CHECK_EQ_INT(storage_series_count(st), 20006);
    CHECK_EQ_INT(storage_series_lookup(st, "MN1:a21002:min", &e), 0);
    CHECK_EQ_INT(e, b);
    CHECK_EQ_INT(storage_series_interval(st, d), STORAGE_IV_DAY);
    CHECK_EQ_INT(storage_series_interval(st, f), STORAGE_IV_DAY);
    CHECK_EQ_INT(storage_series_labels(st, b, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "mn=MN1\npollutant=a21002");
    CHECK_EQ_INT(storage_series_labels(st, a, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "site=x");
    bad = 0;
    for (int i = 0; i < 20000; i += 7) {
        char k[64];
        storage_sid s = 0;
        snprintf(k, sizeof k, "MN%05d:a%05d:hour", i, i % 97);
        bad += storage_series_lookup(st, k, &s) != 0 || s != (storage_sid)(7 + i);
    }
    CHECK_EQ_INT(bad, 0);
    storage_close(st);

    /* Read-only: the catalog is there, writes are refused. */
    storage_options ro = {.read_only = true};
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    CHECK_EQ_INT(storage_series_count(st), 20006);
    CHECK_EQ_INT(storage_series_ensure(st, "new:hour", STORAGE_IV_AUTO, &e), -EROFS);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
