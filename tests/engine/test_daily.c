/* The rows of the export (daily.c) on crafted arrays: validity at 19 and 20 valid hours,
 * hours per flag, oxygen correction from the outlet's O2, emission mass from flow, water
 * flow-weighting, reported daily records, the limit in force (daily before hourly, changing
 * mid-range), exceedance multiples, episodes with the ids ingest gives them, and the export
 * filters. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

#define DAY0 1767542400 /* 2026-01-05T00:00:00+08:00 */
#define MAXROWS 16

static storage_point pt(int64_t ts, double avg, uint8_t flag)
{
    storage_point p;
    memset(&p, 0, sizeof p);
    p.ts = ts;
    p.v[STORAGE_COL_AVG] = avg;
    p.mask = 1u << STORAGE_COL_AVG;
    p.flag = flag;
    return p;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

typedef struct rows {
    engine_daily_row d[MAXROWS];
    engine_episode_row e[MAXROWS];
    size_t nd, ne;
} rows;

static int on_daily(void *ud, const engine_daily_row *r)
{
    rows *x = ud;
    if (x->nd < MAXROWS)
        x->d[x->nd++] = *r;
    return 0;
}

static int on_episode(void *ud, const engine_episode_row *r)
{
    rows *x = ud;
    if (x->ne < MAXROWS)
        x->e[x->ne++] = *r;
    return 0;
}

static int stop_at_first(void *ud, const engine_daily_row *r)
{
    (void)ud;
    (void)r;
    return 7;
}

static engine_registry *make_registry(void)
{
    engine_registry *reg;
    engine_registry_create(&reg);
    engine_facility f = {.id = "F1", .name = "Plant", .region = "350100", .lat = NAN,
                         .lon = NAN};
    engine_registry_add_facility(reg, &f, NULL, 0);
    engine_outlet gas = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                         .mn = "MNGAS", .o2_ref = 6};
    engine_outlet water = {.facility_id = "F1", .code = "DW001", .medium = ENGINE_MEDIUM_WATER,
                           .mn = "MNWATER", .o2_ref = NAN, .flow_weighted = true};
    engine_registry_add_outlet(reg, &gas, NULL, 0);
    engine_registry_add_outlet(reg, &water, NULL, 0);
    /* SO2: hourly 50 until the third day, 35 from then on; NOx: a daily limit of 100 and an
     * hourly one of 200 (the daily one applies to daily rows). COD on water: daily 50. */
    engine_limit l = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21026",
                      .value = 50, .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                      .basis = ENGINE_BASIS_MEASURED, .valid_from = INT64_MIN,
                      .valid_to = DAY0 + 2 * 86400};
    engine_registry_add_limit(reg, &l, NULL, 0);
    l.value = 35;
    l.valid_from = DAY0 + 2 * 86400;
    l.valid_to = INT64_MAX;
    engine_registry_add_limit(reg, &l, NULL, 0);
    engine_limit nox = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21002",
                        .value = 100, .unit = "mg/m3", .period = ENGINE_PERIOD_DAY,
                        .basis = ENGINE_BASIS_ZS, .valid_from = INT64_MIN,
                        .valid_to = INT64_MAX};
    engine_registry_add_limit(reg, &nox, NULL, 0);
    nox.period = ENGINE_PERIOD_HOUR;
    nox.value = 200;
    engine_registry_add_limit(reg, &nox, NULL, 0);
    engine_limit cod = {.facility_id = "F1", .outlet = "DW001", .pollutant = "w01018",
                        .value = 50, .unit = "mg/L", .period = ENGINE_PERIOD_DAY,
                        .basis = ENGINE_BASIS_MEASURED, .valid_from = INT64_MIN,
                        .valid_to = INT64_MAX};
    engine_registry_add_limit(reg, &cod, NULL, 0);
    CHECK_EQ_INT(engine_registry_limit_count(reg), 5);
    return reg;
}

static void test_validity_and_flags(const engine_registry *reg)
{
    storage_point h[48];
    /* Day 1: 20 N hours of 10, 4 C hours of 99. Day 2: 19 N hours of 20, 5 M hours. */
    for (int i = 0; i < 24; i++)
        h[i] = pt(DAY0 + i * 3600, i < 20 ? 10 : 99, i < 20 ? 'N' : 'C');
    for (int i = 0; i < 24; i++)
        h[24 + i] = pt(DAY0 + 86400 + i * 3600, i < 19 ? 20 : 99, i < 19 ? 'N' : 'M');
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, "MNGAS", 5);
    engine_daily_input in = {.mn = "MNGAS", .pollutant = "a21026", .outlet = o,
                             .facility = engine_registry_facility(reg, "F1"), .hours = h,
                             .nhours = 48, .from_day = DAY0, .to_day = DAY0 + 86400};
    rows x = {0};
    CHECK_EQ_INT(engine_daily_rows(reg, &in, NULL, on_daily, &x), 0);
    CHECK_EQ_INT(x.nd, 2);
    CHECK_EQ_INT(x.d[0].day, DAY0);
    CHECK(x.d[0].r.valid);
    CHECK_EQ_INT(x.d[0].r.n_valid, 20);
    CHECK_EQ_INT(x.d[0].r.n_inputs, 24);
    CHECK_EQ_INT(x.d[0].r.flag_count[ENGINE_FLAG_C], 4);
    CHECK_EQ_INT(x.d[0].r.p.flag, 'N'); /* 20/24 >= 75% */
    CHECK(near(x.d[0].r.p.v[STORAGE_COL_AVG], 10));
    CHECK_EQ_INT(x.d[0].source, ENGINE_SOURCE_COMPUTED);
    CHECK(x.d[0].limit && x.d[0].limit->value == 50);
    CHECK(near(x.d[0].multiple, -0.8));
    CHECK(!x.d[0].exceeds);
    CHECK_EQ_STR(x.d[0].unit, "mg/m3");
    CHECK(isnan(x.d[0].mass_kg)); /* no flow */
    CHECK(!x.d[1].r.valid);
    CHECK_EQ_INT(x.d[1].r.n_valid, 19);
    CHECK_EQ_INT(x.d[1].r.flag_count[ENGINE_FLAG_M], 5);
    CHECK_EQ_INT(x.d[1].r.p.flag, 'D');
    CHECK(isnan(x.d[1].multiple)); /* an invalid day is not judged */

    /* The range cuts: only the second day; a callback's value stops the walk. */
    in.from_day = DAY0 + 86400;
    x.nd = 0;
    CHECK_EQ_INT(engine_daily_rows(reg, &in, NULL, on_daily, &x), 0);
    CHECK_EQ_INT(x.nd, 1);
    CHECK_EQ_INT(x.d[0].day, DAY0 + 86400);
    CHECK_EQ_INT(engine_daily_rows(reg, &in, NULL, stop_at_first, NULL), 7);
}

static void test_o2_and_mass(const engine_registry *reg)
{
    storage_point nox[24], o2[24], flow[24];
    for (int i = 0; i < 24; i++) {
        nox[i] = pt(DAY0 + i * 3600, 90 + i % 2 * 20, 'N'); /* 90, 110, ... mean 100 */
        o2[i] = pt(DAY0 + i * 3600, i == 5 ? 20.5 : 11, 'N'); /* hour 5 trips the guard */
        flow[i] = pt(DAY0 + i * 3600, 100, i == 7 ? 'F' : 'N'); /* m3/s; hour 7 invalid */
    }
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, "MNGAS", 5);
    engine_daily_input in = {.mn = "MNGAS", .pollutant = "a21002", .outlet = o,
                             .hours = nox, .nhours = 24, .o2 = o2, .no2 = 24, .flow = flow,
                             .nflow = 24, .flow_unit = ENGINE_FLOW_M3_S, .from_day = DAY0,
                             .to_day = DAY0};
    rows x = {0};
    CHECK_EQ_INT(engine_daily_rows(reg, &in, NULL, on_daily, &x), 0);
    CHECK_EQ_INT(x.nd, 1);
    const engine_daily_row *r = &x.d[0];
    /* ZS: every hour but hour 5 corrected by (21 - 6) / (21 - 11) = 1.5. */
    double zs = 0;
    for (int i = 0; i < 24; i++)
        zs += i == 5 ? 0 : (90 + i % 2 * 20) * 1.5;
    CHECK(r->r.p.mask & (1u << STORAGE_COL_ZSAVG));
    CHECK(near(r->r.p.v[STORAGE_COL_ZSAVG], zs / 23));
    CHECK(near(r->r.p.v[STORAGE_COL_AVG], 100)); /* the measured mean is untouched */
    CHECK_EQ_INT(r->r.n_valid, 24);
    /* Mass: the hours with a valid flow, C x 100 m3/s x 3600 s x 1e-6. */
    double mass = 0;
    for (int i = 0; i < 24; i++)
        mass += i == 7 ? 0 : (90 + i % 2 * 20) * 100 * 3600 * 1e-6;
    CHECK(near(r->mass_kg, mass));
    /* The daily limit (100, on ZS) applies, not the hourly 200. */
    CHECK(r->limit && r->limit->period == ENGINE_PERIOD_DAY);
    CHECK(near(r->judged, zs / 23));
    CHECK(near(r->multiple, (zs / 23 - 100) / 100));
    CHECK(r->exceeds);
}

static void test_water_and_reported(const engine_registry *reg)
{
    storage_point cod[24], flow[24], day[2];
    double num = 0, den = 0;
    for (int i = 0; i < 24; i++) {
        cod[i] = pt(DAY0 + i * 3600, 40 + i, 'N');
        flow[i] = pt(DAY0 + i * 3600, 1 + i % 3, 'N'); /* L/s */
        num += (40 + i) * (1 + i % 3);
        den += 1 + i % 3;
    }
    day[0] = pt(DAY0 + 86400, 61.5, 'N'); /* a day the DAQ reported, with no hours stored */
    day[0].v[STORAGE_COL_COU] = 12;
    day[0].mask |= 1u << STORAGE_COL_COU;
    day[1] = pt(DAY0 + 2 * 86400, 30, 'D');
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, "MNWATER", 7);
    engine_daily_input in = {.mn = "MNWATER", .pollutant = "w01018", .outlet = o,
                             .hours = cod, .nhours = 24, .days = day, .ndays = 2,
                             .flow = flow, .nflow = 24, .flow_unit = ENGINE_FLOW_L_S,
                             .from_day = DAY0, .to_day = DAY0 + 2 * 86400};
    rows x = {0};
    CHECK_EQ_INT(engine_daily_rows(reg, &in, NULL, on_daily, &x), 0);
    CHECK_EQ_INT(x.nd, 3);
    CHECK(x.d[0].r.weighted);
    CHECK(near(x.d[0].r.p.v[STORAGE_COL_AVG], num / den));
    CHECK(near(x.d[0].mass_kg, num * 3.6e-3));
    CHECK_EQ_STR(x.d[0].unit, "mg/L");
    CHECK_EQ_INT(x.d[1].source, ENGINE_SOURCE_REPORTED);
    CHECK_EQ_INT(x.d[1].day, DAY0 + 86400);
    CHECK(x.d[1].r.valid);
    CHECK_EQ_INT(x.d[1].r.n_inputs, 0);
    CHECK(near(x.d[1].r.p.v[STORAGE_COL_AVG], 61.5));
    CHECK(near(x.d[1].mass_kg, 12));
    CHECK(x.d[1].exceeds);
    CHECK(near(x.d[1].multiple, 0.23));
    CHECK(!x.d[2].r.valid); /* reported with flag D */
    CHECK(!x.d[2].exceeds);

    /* Daily limits make daily episodes: day 1 (weighted mean > 50) and day 2 (61.5). */
    CHECK_EQ_INT(engine_episode_rows(reg, &in, NULL, on_episode, &x), 0);
    CHECK_EQ_INT(x.ne, 1);
    CHECK_EQ_INT(x.e[0].kind, ENGINE_PERIOD_DAY);
    CHECK_EQ_INT(x.e[0].ep.start, DAY0);
    CHECK_EQ_INT(x.e[0].ep.count, 2);
    CHECK_EQ_INT(x.e[0].end_excl, DAY0 + 2 * 86400);
    CHECK_EQ_INT(x.e[0].state, ENGINE_ALERT_RESOLVED); /* the invalid day 3 closes it */
}

static void test_episodes(const engine_registry *reg)
{
    /* Three days of SO2: an episode 02:00-04:00 on day 1 (peak 80), one at 23:00 on day 2
     * running into 00:00-01:00 of day 3 where the limit drops to 35 (peak 40 / 35), and one
     * at the very end of the data (still firing). A calibration hour over the limit never
     * counts. */
    storage_point h[72];
    for (int i = 0; i < 72; i++)
        h[i] = pt(DAY0 + i * 3600, 30, 'N');
    h[2].v[0] = 60;
    h[3].v[0] = 80;
    h[4].v[0] = 55;
    h[10].v[0] = 90;
    h[10].flag = 'C';
    h[47].v[0] = 52;
    h[48].v[0] = 40;
    h[49].v[0] = 36;
    h[71].v[0] = 36;
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, "MNGAS", 5);
    engine_daily_input in = {.mn = "MNGAS", .pollutant = "a21026", .outlet = o, .hours = h,
                             .nhours = 72, .from_day = DAY0, .to_day = DAY0 + 2 * 86400};
    rows x = {0};
    CHECK_EQ_INT(engine_episode_rows(reg, &in, NULL, on_episode, &x), 0);
    CHECK_EQ_INT(x.ne, 3);
    CHECK_EQ_INT(x.e[0].ep.start, DAY0 + 2 * 3600);
    CHECK_EQ_INT(x.e[0].end_excl, DAY0 + 5 * 3600);
    CHECK_EQ_INT(x.e[0].ep.count, 3);
    CHECK(near(x.e[0].ep.peak_value, 80));
    CHECK(near(x.e[0].ep.peak_multiple, 0.6));
    CHECK_EQ_INT(x.e[0].peak_flag, 'N');
    CHECK_EQ_INT(x.e[0].state, ENGINE_ALERT_RESOLVED);
    uint64_t id = engine_episode_id("MNGAS:a21026:hour", "a21026", ENGINE_PERIOD_HOUR,
                                    DAY0 + 2 * 3600, 0);
    char want[17];
    engine_episode_id_format(id, want);
    CHECK_EQ_STR(x.e[0].alert_id, want);
    CHECK_EQ_INT(x.e[1].ep.start, DAY0 + 47 * 3600);
    CHECK_EQ_INT(x.e[1].ep.count, 3);
    CHECK(near(x.e[1].ep.peak_multiple, 5.0 / 35)); /* 40 against the new limit of 35 */
    CHECK(x.e[1].limit && near(x.e[1].limit->value, 35));
    CHECK_EQ_INT(x.e[2].ep.start, DAY0 + 71 * 3600);
    CHECK_EQ_INT(x.e[2].state, ENGINE_ALERT_FIRING);

    /* Cut at day 2: the episode crossing midnight ends with the data. */
    in.to_day = DAY0 + 86400;
    x.ne = 0;
    CHECK_EQ_INT(engine_episode_rows(reg, &in, NULL, on_episode, &x), 0);
    CHECK_EQ_INT(x.ne, 2);
    CHECK_EQ_INT(x.e[1].ep.count, 1);
    CHECK_EQ_INT(x.e[1].state, ENGINE_ALERT_FIRING);
    /* No registry or no outlet: nothing to judge. */
    CHECK_EQ_INT(engine_episode_rows(NULL, &in, NULL, on_episode, &x), 0);
    CHECK_EQ_INT(x.ne, 2);
}

static void test_long_day(void)
{
    /* 100 points in one day (odd timestamps): handled past the stack scratch. */
    storage_point h[100];
    for (int i = 0; i < 100; i++)
        h[i] = pt(DAY0 + i * 600, i, 'N');
    engine_daily_input in = {.mn = "X", .pollutant = "a21026", .hours = h, .nhours = 100,
                             .from_day = DAY0, .to_day = DAY0};
    rows x = {0};
    CHECK_EQ_INT(engine_daily_rows(NULL, &in, NULL, on_daily, &x), 0);
    CHECK_EQ_INT(x.nd, 1);
    CHECK_EQ_INT(x.d[0].r.n_valid, 100);
    CHECK(near(x.d[0].r.p.v[STORAGE_COL_AVG], 49.5));
    CHECK(x.d[0].limit == NULL);
    CHECK(isnan(x.d[0].multiple));
}

static void test_filters(void)
{
    engine_export_filter f = {0};
    char why[300];
    CHECK_EQ_INT(engine_export_filter_add(&f, "region=32", why, sizeof why), 0);
    CHECK_EQ_INT(engine_export_filter_add(&f, "pollutant=a21026,a21002", why, sizeof why), 0);
    CHECK_EQ_INT(f.nterms, 2);
    CHECK_EQ_INT(engine_export_filter_add(&f, "colour=red", why, sizeof why), -EINVAL);
    CHECK(strstr(why, "unknown label 'colour'") != NULL);
    CHECK_EQ_INT(engine_export_filter_add(&f, "region", why, sizeof why), -EINVAL);
    CHECK_EQ_INT(engine_export_filter_add(&f, "=x", why, sizeof why), -EINVAL);
    CHECK_EQ_INT(engine_export_filter_add(&f, "mn=", why, sizeof why), -EINVAL);
    CHECK_EQ_INT(engine_export_filter_add(&f, "mn=a,,b", why, sizeof why), -EINVAL);
    CHECK(strstr(why, "empty value") != NULL);
    for (int i = 2; i < ENGINE_FILTER_MAX_TERMS; i++)
        CHECK_EQ_INT(engine_export_filter_add(&f, "mn=a", why, sizeof why), 0);
    CHECK_EQ_INT(engine_export_filter_add(&f, "mn=a", why, sizeof why), -ERANGE);
    CHECK_EQ_STR(engine_factor_unit("a19001"), "%");
    CHECK_EQ_STR(engine_factor_unit("zzz"), "");
    CHECK_EQ_STR(engine_row_source_name(ENGINE_SOURCE_REPORTED), "reported");
}

int main(void)
{
    engine_registry *reg = make_registry();
    test_validity_and_flags(reg);
    test_o2_and_mass(reg);
    test_water_and_reported(reg);
    test_episodes(reg);
    test_long_day();
    test_filters();
    engine_registry_destroy(reg);
    return tap_done();
}
