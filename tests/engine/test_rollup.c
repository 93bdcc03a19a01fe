/* Roll-ups by the validity rules, flag roll-up, oxygen correction and emission mass, on
 * crafted inputs at the edges of each rule. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

#define HOUR0 1470009600 /* 2016-08-01T08:00:00+08:00 */
#define DAY0 1469980800  /* 2016-08-01T00:00:00+08:00 */

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

/* 60 minutes of the hour, the first `valid` flagged N with value 10 + i, the rest `bad`. */
static void minutes(storage_point *m, int valid, uint8_t bad)
{
    for (int i = 0; i < 60; i++)
        m[i] = pt(HOUR0 + i * 60, 10 + i, i < valid ? 'N' : bad);
}

static void test_hour_validity(void)
{
    engine_rollup_opts o;
    engine_rollup_opts_init(&o);
    storage_point m[60];
    engine_period_result r;

    minutes(m, 45, 'C');
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK(r.valid);
    CHECK_EQ_INT(r.n_valid, 45);
    CHECK_EQ_INT(r.n_inputs, 60);
    CHECK_EQ_INT(r.p.ts, HOUR0);
    CHECK(near(r.p.v[STORAGE_COL_AVG], 10 + 22.0)); /* mean of 10..54 */
    CHECK(near(r.p.v[STORAGE_COL_MIN], 10)); /* from AVG: no MIN column */
    CHECK(near(r.p.v[STORAGE_COL_MAX], 54));
    CHECK_EQ_INT(r.flag_count[ENGINE_FLAG_N], 45);
    CHECK_EQ_INT(r.flag_count[ENGINE_FLAG_C], 15);
    CHECK_EQ_INT(r.flag_rollup, 'N'); /* 45/60 = 75%: N */
    CHECK_EQ_INT(r.p.flag, 'N');

    minutes(m, 44, 'C');
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK(!r.valid);
    CHECK_EQ_INT(r.n_valid, 44);
    CHECK_EQ_INT(r.flag_rollup, 'D'); /* 44/60 < 75% */
    CHECK_EQ_INT(r.p.flag, 'D');
    CHECK(r.p.mask & (1u << STORAGE_COL_AVG)); /* the mean is still there, marked invalid */

    /* 44 minutes arrived, all N: the flag roll-up says N but the hour is short: D. */
    CHECK_EQ_INT(engine_rollup_hour(m, 44, NULL, &o, &r), 0);
    CHECK(!r.valid);
    CHECK_EQ_INT(r.flag_rollup, 'N');
    CHECK_EQ_INT(r.p.flag, 'D');

    /* Flag roll-up at 75% exactly vs just below, with 48 inputs (36 = 75%). */
    for (int i = 0; i < 48; i++)
        m[i] = pt(HOUR0 + i * 60, 1, i < 36 ? 'N' : 'M');
    o.min_valid_hour = 30;
    CHECK_EQ_INT(engine_rollup_hour(m, 48, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.flag_rollup, 'N');
    m[35].flag = 'M';
    CHECK_EQ_INT(engine_rollup_hour(m, 48, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.flag_rollup, 'D');
    CHECK(r.valid); /* 35 >= 30 valid: validity and flag are separate judgements */
    CHECK_EQ_INT(r.p.flag, 'D');
    engine_rollup_opts_init(&o);

    /* T is valid by default, invalid by policy. */
    minutes(m, 45, 'T');
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.n_valid, 60);
    CHECK_EQ_INT(r.flag_count[ENGINE_FLAG_T], 15);
    o.t_valid = false;
    m[0].flag = 'T';
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.n_valid, 44);
    CHECK(!r.valid);
    engine_rollup_opts_init(&o);

    /* Every invalid flag is excluded. */
    const char *bad = "FMSDCBX";
    for (const char *b = bad; *b; b++) {
        minutes(m, 59, (uint8_t)*b);
        CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
        CHECK_EQ_INT(r.n_valid, 59);
    }
    /* No flag sent counts as N by default, not when told otherwise. */
    minutes(m, 60, 'N');
    m[3].flag = 0;
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.n_valid, 60);
    o.none_is_normal = false;
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.n_valid, 59);
    CHECK_EQ_INT(r.flag_count[ENGINE_FLAG_OTHER], 1);
    engine_rollup_opts_init(&o);

    /* Points of two hours, or none, are refused. */
    m[59].ts = HOUR0 + 3600;
    CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &r), -EINVAL);
    CHECK_EQ_INT(engine_rollup_hour(m, 0, NULL, &o, &r), -EINVAL);
}

static void test_columns(void)
{
    engine_rollup_opts o;
    engine_rollup_opts_init(&o);
    storage_point m[3];
    engine_period_result r;
    for (int i = 0; i < 3; i++) {
        m[i] = pt(HOUR0 + i * 60, 10 * (i + 1), 'N');
        m[i].v[STORAGE_COL_MIN] = 5 * (i + 1);
        m[i].v[STORAGE_COL_MAX] = 20 * (i + 1);
        m[i].v[STORAGE_COL_COU] = 0.5;
        m[i].v[STORAGE_COL_ZSAVG] = 12 * (i + 1);
        m[i].mask |= (1u << STORAGE_COL_MIN) | (1u << STORAGE_COL_MAX) |
                     (1u << STORAGE_COL_COU) | (1u << STORAGE_COL_ZSAVG);
    }
    m[2].flag = 'C';
    o.min_valid_hour = 1;
    CHECK_EQ_INT(engine_rollup_hour(m, 3, NULL, &o, &r), 0);
    CHECK(near(r.p.v[STORAGE_COL_AVG], 15));
    CHECK(near(r.p.v[STORAGE_COL_MIN], 5));
    CHECK(near(r.p.v[STORAGE_COL_MAX], 40));
    CHECK(near(r.p.v[STORAGE_COL_COU], 1.0)); /* the C minute's amount is not summed */
    CHECK(near(r.p.v[STORAGE_COL_ZSAVG], 18));
    CHECK(near(r.p.v[STORAGE_COL_ZSMIN], 12));
    CHECK(near(r.p.v[STORAGE_COL_ZSMAX], 24));
    CHECK_EQ_INT(r.p.mask, 0x7f);
}

static void test_day_month(void)
{
    engine_rollup_opts o;
    engine_rollup_opts_init(&o);
    storage_point h[24];
    engine_period_result r;
    for (int i = 0; i < 24; i++)
        h[i] = pt(DAY0 + i * 3600, i, i < 20 ? 'N' : 'D');
    CHECK_EQ_INT(engine_rollup_day(h, 24, NULL, &o, &r), 0);
    CHECK(r.valid);
    CHECK_EQ_INT(r.n_valid, 20);
    CHECK_EQ_INT(r.p.ts, DAY0);
    CHECK(near(r.p.v[STORAGE_COL_AVG], 9.5));
    CHECK_EQ_INT(r.p.flag, 'N'); /* 20/24 = 83% */
    h[19].flag = 'D';
    CHECK_EQ_INT(engine_rollup_day(h, 24, NULL, &o, &r), 0);
    CHECK(!r.valid);
    CHECK_EQ_INT(r.n_valid, 19);
    CHECK_EQ_INT(r.p.flag, 'D');

    /* Chaining: hours computed from minutes carry their validity into the day. */
    storage_point m[60];
    int ok_hours = 0;
    for (int hr = 0; hr < 24; hr++) {
        for (int i = 0; i < 60; i++)
            m[i] = pt(DAY0 + hr * 3600 + i * 60, 1, i < (hr < 20 ? 45 : 44) ? 'N' : 'C');
        engine_period_result hr_r;
        CHECK_EQ_INT(engine_rollup_hour(m, 60, NULL, &o, &hr_r), 0);
        h[hr] = hr_r.p;
        ok_hours += hr_r.valid;
    }
    CHECK_EQ_INT(ok_hours, 20);
    CHECK_EQ_INT(engine_rollup_day(h, 24, NULL, &o, &r), 0);
    CHECK_EQ_INT(r.n_valid, 20);
    CHECK(r.valid);

    /* The local day: 2016-08-01T00:00+08:00 starts at 16:00 UTC the day before. */
    CHECK_EQ_INT(engine_period_start(ENGINE_PERIOD_DAY, DAY0 + 86399, o.offset_s), DAY0);
    CHECK_EQ_INT(engine_period_start(ENGINE_PERIOD_DAY, DAY0 - 1, o.offset_s), DAY0 - 86400);
    CHECK_EQ_INT(engine_period_start(ENGINE_PERIOD_HOUR, HOUR0 + 3599, o.offset_s), HOUR0);
    CHECK_EQ_INT(engine_period_start(ENGINE_PERIOD_HOUR, -1, o.offset_s), -3600);

    /* Months: 25 valid days; August has 31, February 2016 29. */
    storage_point d[31];
    for (int i = 0; i < 31; i++)
        d[i] = pt(DAY0 + i * 86400, 2, i < 25 ? 'N' : 'F');
    CHECK_EQ_INT(engine_rollup_period(ENGINE_PERIOD_MONTH, d, 31, NULL, &o, &r), 0);
    CHECK(r.valid);
    CHECK_EQ_INT(r.p.ts, DAY0);
    d[0].flag = 'F';
    CHECK_EQ_INT(engine_rollup_period(ENGINE_PERIOD_MONTH, d, 31, NULL, &o, &r), 0);
    CHECK(!r.valid);
    CHECK_EQ_INT(engine_period_next(ENGINE_PERIOD_MONTH, DAY0, o.offset_s), DAY0 + 31 * 86400);
    int64_t feb = engine_days_from_civil(2016, 2, 1) * 86400 - o.offset_s;
    CHECK_EQ_INT(engine_period_next(ENGINE_PERIOD_MONTH, feb, o.offset_s), feb + 29 * 86400);
    int64_t dec = engine_days_from_civil(2016, 12, 1) * 86400 - o.offset_s;
    CHECK_EQ_INT(engine_period_next(ENGINE_PERIOD_MONTH, dec, o.offset_s),
                 engine_days_from_civil(2017, 1, 1) * 86400 - o.offset_s);
    d[1].ts = DAY0 + 31 * 86400; /* September */
    CHECK_EQ_INT(engine_rollup_period(ENGINE_PERIOD_MONTH, d, 31, NULL, &o, &r), -EINVAL);

    /* Walking a sorted series period by period. */
    storage_point s[5] = {pt(HOUR0, 1, 'N'), pt(HOUR0 + 3599, 1, 'N'), pt(HOUR0 + 3600, 1, 'N'),
                          pt(HOUR0 + 7300, 1, 'N'), pt(HOUR0 + 7400, 1, 'N')};
    CHECK_EQ_INT(engine_period_span(ENGINE_PERIOD_HOUR, s, 5, o.offset_s), 2);
    CHECK_EQ_INT(engine_period_span(ENGINE_PERIOD_HOUR, s + 2, 3, o.offset_s), 1);
    CHECK_EQ_INT(engine_period_span(ENGINE_PERIOD_HOUR, s + 3, 2, o.offset_s), 2);
    CHECK_EQ_INT(engine_period_span(ENGINE_PERIOD_DAY, s, 5, o.offset_s), 5);
    CHECK_EQ_INT(engine_period_span(ENGINE_PERIOD_DAY, s, 0, o.offset_s), 0);
}

static void test_water(void)
{
    engine_rollup_opts o;
    engine_rollup_opts_init(&o);
    o.medium = ENGINE_MEDIUM_WATER;
    o.min_valid_hour = 1;
    o.min_valid_day = 2;
    /* Two-hourly COD: 40 mg/L at 10 L/s, 60 mg/L at 30 L/s, 100 at no known flow. */
    storage_point h[3] = {pt(DAY0, 40, 'N'), pt(DAY0 + 7200, 60, 'N'), pt(DAY0 + 14400, 100, 'N')};
    double q[3] = {10, 30, NAN};
    engine_period_result r;
    CHECK_EQ_INT(engine_rollup_day(h, 2, q, &o, &r), 0);
    CHECK(!r.weighted); /* arithmetic unless asked */
    CHECK(near(r.p.v[STORAGE_COL_AVG], 50));
    o.flow_weighted = true;
    CHECK_EQ_INT(engine_rollup_day(h, 2, q, &o, &r), 0);
    CHECK(r.weighted);
    CHECK(near(r.p.v[STORAGE_COL_AVG], (40.0 * 10 + 60.0 * 30) / 40));
    CHECK_EQ_INT(engine_rollup_day(h, 3, q, &o, &r), 0); /* unknown flow: weight 0 */
    CHECK(near(r.p.v[STORAGE_COL_AVG], 55));
    CHECK(near(r.p.v[STORAGE_COL_MAX], 100));
    double q0[2] = {0, 0};
    CHECK_EQ_INT(engine_rollup_day(h, 2, q0, &o, &r), 0);
    CHECK(!r.weighted);
    CHECK(near(r.p.v[STORAGE_COL_AVG], 50));
    CHECK_EQ_INT(r.p.flag, 'N');
    /* Water: one abnormal input makes the period abnormal, with the dominant flag. */
    h[2].flag = 'M';
    CHECK_EQ_INT(engine_rollup_day(h, 3, q, &o, &r), 0);
    CHECK(r.valid);
    CHECK_EQ_INT(r.flag_rollup, 'M');
    CHECK_EQ_INT(r.p.flag, 'M');
    /* Gas flow weighting is never applied. */
    o.medium = ENGINE_MEDIUM_GAS;
    CHECK_EQ_INT(engine_rollup_day(h, 2, q, &o, &r), 0);
    CHECK(!r.weighted);
}

static void test_o2(void)
{
    engine_o2_opts o;
    engine_o2_opts_init(&o);
    double zs;
    CHECK_EQ_INT(engine_o2_correct(30, 6, 6, &o, &zs), 0);
    CHECK(near(zs, 30));
    CHECK_EQ_INT(engine_o2_correct(30, 11, 6, &o, &zs), 0);
    CHECK(near(zs, 30 * 15.0 / 10.0));
    CHECK_EQ_INT(engine_o2_correct(30, 19.49, 6, &o, &zs), 0);
    CHECK(near(zs, 30 * 15.0 / (21 - 19.49)));
    CHECK_EQ_INT(engine_o2_correct(30, 19.5, 6, &o, &zs), -ERANGE);
    CHECK(isnan(zs));
    CHECK_EQ_INT(engine_o2_correct(30, 20.95, 6, &o, &zs), -ERANGE);
    CHECK_EQ_INT(engine_o2_correct(30, 21, 6, &o, &zs), -ERANGE); /* never divides by 0 */
    CHECK_EQ_INT(engine_o2_correct(30, 25, 6, NULL, &zs), -ERANGE);
    o.clamp = true;
    CHECK_EQ_INT(engine_o2_correct(30, 20.95, 6, &o, &zs), 1);
    CHECK(near(zs, 30 * 15.0 / 1.5));
    o.max_o2 = 20;
    CHECK_EQ_INT(engine_o2_correct(30, 20.95, 6, &o, &zs), 1);
    CHECK(near(zs, 30 * 15.0));
    CHECK_EQ_INT(engine_o2_correct(30, NAN, 6, &o, &zs), -EINVAL);
    CHECK_EQ_INT(engine_o2_correct(30, -1, 6, &o, &zs), -EINVAL);
    CHECK_EQ_INT(engine_o2_correct(30, 10, 21, &o, &zs), -EINVAL);
    o.max_o2 = 21;
    CHECK_EQ_INT(engine_o2_correct(30, 10, 6, &o, &zs), -EINVAL);

    engine_o2_opts_init(&o);
    storage_point p[3] = {pt(HOUR0, 20, 'N'), pt(HOUR0 + 60, 20, 'N'), pt(HOUR0 + 120, 20, 'N')};
    p[0].v[STORAGE_COL_MAX] = 40;
    p[0].mask |= 1u << STORAGE_COL_MAX;
    double o2[3] = {11, 20.5, NAN};
    CHECK_EQ_INT(engine_o2_correct_points(p, o2, 3, 6, &o), 1);
    CHECK(near(p[0].v[STORAGE_COL_ZSAVG], 30));
    CHECK(near(p[0].v[STORAGE_COL_ZSMAX], 60));
    CHECK(!(p[0].mask & (1u << STORAGE_COL_ZSMIN)));
    CHECK(!(p[1].mask & (1u << STORAGE_COL_ZSAVG)));
    CHECK_EQ_INT(p[1].flag, 'D');
    CHECK(!(p[2].mask & (1u << STORAGE_COL_ZSAVG)));
    CHECK_EQ_INT(p[2].flag, 'N');
}

static void test_mass(void)
{
    CHECK(near(engine_emission_rate_kg_h(35, 1e6, ENGINE_FLOW_M3_H), 35));
    CHECK(near(engine_emission_rate_kg_h(35, 100, ENGINE_FLOW_M3_S), 35 * 0.36));
    CHECK(near(engine_emission_rate_kg_h(50, 10, ENGINE_FLOW_L_S), 1.8));
    CHECK(isnan(engine_emission_rate_kg_h(1, 1, 99)));
}

int main(void)
{
    test_hour_validity();
    test_columns();
    test_day_month();
    test_water();
    test_o2();
    test_mass();
    return tap_done();
}
