/* test_live_rollup.c: minute uploads rolled up live through a real engine and store
 * (rollup_live.c): an hour of minutes gives MN:code:hour.calc with the mean of its valid
 * minutes, oxygen-corrected with the outlet's reference O2; a short hour is kept but flagged
 * invalid; a late minute recomputes its hour; a finished day gives MN:code:day.calc over its
 * valid hours; a flow-weighted water outlet weighs its minutes by flow. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "tap.h"

#define T0 1793462400 /* 2026-11-01T00:00:00+08:00, a local midnight */

static storage *st;
static engine *eng;
static uv_loop_t loop;

static void minute(const char *mn, int64_t ts, const char *code, double v, uint8_t flag,
                   const char *code2, double v2)
{
    engine_value x[2] = {{.code = code}, {.code = code2}};
    x[0].pt.v[STORAGE_COL_AVG] = v;
    x[0].pt.mask = 1;
    x[0].pt.flag = flag;
    x[1].pt.v[STORAGE_COL_AVG] = v2;
    x[1].pt.mask = 1;
    x[1].pt.flag = 'N';
    engine_upload u = {.mn = mn, .interval = STORAGE_IV_MIN, .ts = ts, .values = x,
                       .nvalues = 2};
    CHECK_EQ_INT(engine_ingest(eng, &u, NULL, NULL), 0);
}

/* The point of key at ts once the engine has computed it (waits up to 5 s). */
static int point_at(const char *key, int64_t ts, storage_point *out)
{
    for (int i = 0; i < 500; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        storage_sync(st);
        uv_run(&loop, UV_RUN_NOWAIT);
        storage_sid sid;
        storage_reader *r;
        storage_iter *it;
        int found = 0;
        if (storage_series_lookup(st, key, &sid) == 0 && storage_reader_open(st, &r) == 0) {
            if (storage_iter_open(r, sid, ts, ts, &it) == 0) {
                found = storage_iter_next(it, out) == 1;
                storage_iter_close(it);
            }
            storage_reader_close(r);
        }
        engine_stats es;
        engine_get_stats(eng, &es);
        if (found && es.live.jobs_pending == 0 && es.commits_pending == 0)
            return 0;
        uv_sleep(10);
    }
    return -1;
}

static engine_registry *registry(void)
{
    engine_registry *r;
    char why[128];
    engine_registry_create(&r);
    engine_facility f = {.id = "F1", .name = "Plant", .lat = NAN, .lon = NAN};
    engine_registry_add_facility(r, &f, why, sizeof why);
    engine_outlet g = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "G1", .o2_ref = 6};
    engine_outlet w = {.facility_id = "F1", .code = "DW001", .medium = ENGINE_MEDIUM_WATER,
                       .mn = "W1", .o2_ref = NAN, .flow_weighted = true};
    CHECK_EQ_INT(engine_registry_add_outlet(r, &g, why, sizeof why), 0);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &w, why, sizeof why), 0);
    return r;
}

int main(void)
{
    char dir[] = "/tmp/plume-live-rollup-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    storage_options so = {.kv_tables = engine_kv_tables};
    CHECK_EQ_INT(storage_open(dir, &so, &st), 0);
    uv_loop_init(&loop);
    engine_options eo = {.st = st, .loop = &loop};
    CHECK_EQ_INT(engine_create(&eo, &eng), 0);
    engine_registry *reg = registry();
    engine_set_registry(eng, reg);

    /* Hour 0: SO2 = minute number, O2 = 11: mean 29.5, corrected x (21-6)/(21-11). */
    for (int i = 0; i < 60; i++)
        minute("G1", T0 + 60 * i, "a21026", i, 'N', "a19001", 11.0);
    storage_point p;
    CHECK_EQ_INT(point_at("G1:a21026:hour.calc", T0, &p), 0);
    CHECK(fabs(p.v[STORAGE_COL_AVG] - 29.5) < 1e-9);
    CHECK(fabs(p.v[STORAGE_COL_ZSAVG] - 29.5 * 1.5) < 1e-9);
    CHECK(p.v[STORAGE_COL_MIN] == 0 && p.v[STORAGE_COL_MAX] == 59);
    CHECK_EQ_INT(p.flag, 'N');
    CHECK_EQ_INT(point_at("G1:a19001:hour.calc", T0, &p), 0);
    CHECK(p.v[STORAGE_COL_AVG] == 11.0 && !(p.mask & (1u << STORAGE_COL_ZSAVG)));

    /* Hour 1: 30 valid minutes and 30 in calibration: kept, flagged invalid. */
    for (int i = 0; i < 60; i++)
        minute("G1", T0 + 3600 + 60 * i, "a21026", i < 30 ? 7.0 : 99.0, i < 30 ? 'N' : 'C',
               "a19001", 11.0);
    CHECK_EQ_INT(point_at("G1:a21026:hour.calc", T0 + 3600, &p), 0);
    CHECK(p.v[STORAGE_COL_AVG] == 7.0);
    CHECK(p.flag != 'N' && p.flag != 'T');

    /* A late minute of hour 0 (minute 0 corrected from 0 to 60): the hour is recomputed. */
    minute("G1", T0, "a21026", 60.0, 'N', "a19001", 11.0);
    int ok = -1;
    for (int i = 0; i < 50 && ok != 0; i++)
        if (point_at("G1:a21026:hour.calc", T0, &p) == 0 &&
            fabs(p.v[STORAGE_COL_AVG] - 30.5) < 1e-9)
            ok = 0;
    CHECK_EQ_INT(ok, 0);

    /* Hours 2..23 from one 60-minute record each (the device's interval is the spacing of
     * its last two records): the day closes with hour 23. */
    for (int h = 2; h < 24; h++)
        minute("G1", T0 + 3600 * h, "a21026", 5.0, 'N', "a19001", 11.0);
    CHECK_EQ_INT(point_at("G1:a21026:day.calc", T0, &p), 0);
    CHECK(fabs(p.v[STORAGE_COL_AVG] - (30.5 + 22 * 5.0) / 23) < 1e-9); /* hour 1 is invalid */
    CHECK_EQ_INT(p.flag, 'N');                                         /* 23 valid hours */

    /* Water, flow-weighted: COD 10 at 1 L/s for 30 minutes, 40 at 3 L/s for 30. */
    for (int i = 0; i < 60; i++)
        minute("W1", T0 + 60 * i, "w01018", i < 30 ? 10.0 : 40.0, 'N', "w00000",
               i < 30 ? 1.0 : 3.0);
    CHECK_EQ_INT(point_at("W1:w01018:hour.calc", T0, &p), 0);
    CHECK(fabs(p.v[STORAGE_COL_AVG] - 32.5) < 1e-9); /* arithmetic would be 25 */

    engine_stats es;
    engine_get_stats(eng, &es);
    CHECK(es.live.hours_computed >= 5 && es.live.days_computed >= 1);
    CHECK_EQ_INT(es.live.outlets, 2);

    engine_close(eng);
    storage_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    engine_registry_destroy(reg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
