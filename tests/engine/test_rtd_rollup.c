/* test_rtd_rollup.c: real-time readings rolled up into minute records through a real engine
 * and store: the mean, min and max of a minute's valid readings, invalid readings left out,
 * a minute of only invalid readings flagged with their flag, minutes closed by a later
 * reading or by a flush, late readings counted and not rolled up. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "tap.h"

static storage *st;
static engine *eng;
static engine_rtd_rollup *rr;
static uv_loop_t loop;

static void reading(const char *mn, int64_t ts, double so2, uint8_t so2_flag, double o2)
{
    engine_value v[2] = {{.code = "a21026"}, {.code = "a19001"}};
    v[0].pt.v[STORAGE_COL_AVG] = so2;
    v[0].pt.mask = 1;
    v[0].pt.flag = so2_flag;
    v[1].pt.v[STORAGE_COL_AVG] = o2;
    v[1].pt.mask = 1;
    v[1].pt.flag = 'D';
    engine_upload u = {.mn = mn, .interval = STORAGE_IV_RTD, .ts = ts, .values = v,
                       .nvalues = 2};
    CHECK_EQ_INT(engine_ingest(eng, &u, NULL, NULL), 0);
    CHECK_EQ_INT(engine_rtd_rollup_add(rr, &u), 0);
}

/* The points of key, into out (at most max); their number. */
static int points(const char *key, storage_point *out, int max)
{
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* the engine submits at the end of an iteration */
    storage_sync(st);
    storage_sid sid;
    if (storage_series_lookup(st, key, &sid) != 0)
        return 0;
    storage_reader *r;
    storage_iter *it;
    int n = 0;
    if (storage_reader_open(st, &r) != 0)
        return -1;
    if (storage_iter_open(r, sid, INT64_MIN, INT64_MAX, &it) == 0) {
        while (n < max && storage_iter_next(it, &out[n]) == 1)
            n++;
        storage_iter_close(it);
    }
    storage_reader_close(r);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/plume-rtd-rollup-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    uv_loop_init(&loop);
    engine_options eo = {.st = st, .loop = &loop};
    CHECK_EQ_INT(engine_create(&eo, &eng), 0);
    CHECK_EQ_INT(engine_rtd_rollup_create(eng, &loop, 30, &rr), 0);

    int64_t m0 = 1795353600; /* a minute start */
    reading("M1", m0 + 0, 10, 'N', 20.0);
    reading("M1", m0 + 10, 20, 'N', 20.5);
    reading("M1", m0 + 20, 99, 'C', 21.0); /* calibration: not in the minute's average */
    reading("M1", m0 + 30, 30, 0, 20.5);   /* no flag counts as N */
    storage_point p[8];
    CHECK_EQ_INT(points("M1:a21026:min", p, 8), 0); /* the minute is still open */
    reading("M1", m0 + 60, 40, 'N', 20.0); /* a later minute closes it */
    CHECK_EQ_INT(points("M1:a21026:min", p, 8), 1);
    CHECK_EQ_INT(p[0].ts, m0);
    CHECK(p[0].v[STORAGE_COL_AVG] == 20.0);
    CHECK(p[0].v[STORAGE_COL_MIN] == 10.0);
    CHECK(p[0].v[STORAGE_COL_MAX] == 30.0);
    CHECK_EQ_INT(p[0].flag, 'N');
    /* Only invalid O2 readings: averaged over all of them, flagged D. */
    CHECK_EQ_INT(points("M1:a19001:min", p, 8), 1);
    CHECK(p[0].v[STORAGE_COL_AVG] == 20.5);
    CHECK(p[0].v[STORAGE_COL_MAX] == 21.0);
    CHECK_EQ_INT(p[0].flag, 'D');
    /* The readings themselves are stored as sent. */
    CHECK_EQ_INT(points("M1:a21026:rtd", p, 8), 5);

    reading("M1", m0 + 45, 1000, 'N', 20.0); /* late: its minute is closed */
    reading("M2", m0 + 61, 7, 'N', 20.0);    /* another device, its own minute */
    engine_rtd_rollup_stats s;
    engine_rtd_rollup_get_stats(rr, &s);
    CHECK_EQ_INT(s.late_readings, 1);
    CHECK_EQ_INT(s.minutes, 1);
    engine_rtd_rollup_flush(rr);
    CHECK_EQ_INT(points("M1:a21026:min", p, 8), 2);
    CHECK(p[0].v[STORAGE_COL_AVG] == 20.0); /* the late reading changed nothing */
    CHECK_EQ_INT(p[1].ts, m0 + 60);
    CHECK(p[1].v[STORAGE_COL_AVG] == 40.0);
    CHECK_EQ_INT(points("M2:a21026:min", p, 8), 1);
    CHECK(p[0].v[STORAGE_COL_AVG] == 7.0);
    engine_rtd_rollup_get_stats(rr, &s);
    CHECK_EQ_INT(s.minutes, 3);
    CHECK_EQ_INT(s.errors, 0);
    /* Not a real-time upload. */
    engine_upload bad = {.mn = "M1", .interval = STORAGE_IV_MIN, .ts = m0};
    CHECK_EQ_INT(engine_rtd_rollup_add(rr, &bad), -EINVAL);

    engine_rtd_rollup_close(rr);
    engine_close(eng);
    storage_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
