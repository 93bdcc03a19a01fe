/* Live data-quality findings (findings.c): hourly uploads of one registered outlet are fed
 * as ingest feeds them, and the alerts raised are caught as they commit. Flat lines fire
 * after flat_hours identical hours and resolve at the first change, under one stable id;
 * zeros count only while the flow says the plant runs; dilution is O2 above the outlet's
 * own recent normal; a day with too many C/M/D/B hours is reported once the day is over;
 * late hours change nothing; a bare run (findings_feed) fires at its minimum length. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "live.h"
#include "tap.h"

#define MN "320102A0000000000000EE01"
#define T0 1793462400 /* 2026-11-01T00:00:00+08:00 */

static uv_loop_t loop;
static engine_registry *reg;
static engine_alerts *alerts;
static storage_batch *batch;
static findings *fnd;

typedef struct caught {
    char kind[16], state[16], id[24], pollutant[16], start[32], end[32];
    double value, limit;
} caught;
static caught got[64];
static int ngot;

static void on_fire(void *arg, const engine_alert *al, const char *json, size_t len)
{
    (void)arg;
    (void)len;
    (void)json;
    if (ngot == 64)
        return;
    caught *c = &got[ngot++];
    memset(c, 0, sizeof *c);
    snprintf(c->kind, sizeof c->kind, "%s", al->kind);
    snprintf(c->state, sizeof c->state, "%s", engine_alert_state_name(al->state));
    snprintf(c->id, sizeof c->id, "%s", al->id);
    snprintf(c->pollutant, sizeof c->pollutant, "%s", al->pollutant ? al->pollutant : "");
    engine_time_format(al->start, ENGINE_CST_OFFSET_S, c->start, sizeof c->start);
    if (al->end)
        engine_time_format(al->end, ENGINE_CST_OFFSET_S, c->end, sizeof c->end);
    c->value = al->value;
    c->limit = al->limit;
}

/* The batch "commits" at once: alert tickets are released as a commit would. */
static void add_ack(void *arg, engine_ack_fn fn, void *ack_arg)
{
    (void)arg;
    fn(ack_arg, 0);
}

static judge_ctx ctx(void)
{
    return (judge_ctx){.reg = reg, .alerts = alerts, .st = NULL, .batch = batch,
                       .add_ack = add_ack, .add_ack_arg = NULL};
}

static void setup(void)
{
    uv_loop_init(&loop);
    char why[128];
    engine_registry_create(&reg);
    engine_facility f = {.id = "F1", .name = "Plant", .region = "320102", .lat = NAN, .lon = NAN};
    CHECK_EQ_INT(engine_registry_add_facility(reg, &f, why, sizeof why), 0);
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = MN, .o2_ref = 6};
    CHECK_EQ_INT(engine_registry_add_outlet(reg, &o, why, sizeof why), 0);
    engine_limit l = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21026",
                      .value = 100, .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                      .basis = ENGINE_BASIS_ZS, .valid_from = INT64_MIN,
                      .valid_to = INT64_MAX};
    CHECK_EQ_INT(engine_registry_add_limit(reg, &l, why, sizeof why), 0);
    engine_alerts_options ao = {.loop = &loop};
    CHECK_EQ_INT(engine_alerts_create(&ao, &alerts), 0);
    engine_subs *subs;
    engine_subs_create(&subs);
    engine_alerts_set_subs(alerts, subs);
    engine_alerts_on_fire(alerts, on_fire, NULL);
    batch = storage_batch_create();
    CHECK_EQ_INT(findings_create(NULL, &fnd), 0);
}

static void teardown(void)
{
    findings_destroy(fnd);
    storage_batch_destroy(batch);
    engine_alerts_close(alerts);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    engine_registry_destroy(reg);
}

/* One reported hour: SO2, O2 and flow (NaN: not sent), each flagged. */
static void hour(fwatch *w, int64_t ts, double so2, char so2_flag, double o2, double flow)
{
    engine_value v[3];
    size_t n = 0;
    v[n++] = (engine_value){"a21026", {.mask = 1u << STORAGE_COL_AVG, .flag = (uint8_t)so2_flag}};
    v[0].pt.v[STORAGE_COL_AVG] = so2;
    if (!isnan(o2)) {
        v[n] = (engine_value){"a19001", {.mask = 1u << STORAGE_COL_AVG, .flag = 'N'}};
        v[n++].pt.v[STORAGE_COL_AVG] = o2;
    }
    if (!isnan(flow)) {
        v[n] = (engine_value){"a00000", {.mask = 1u << STORAGE_COL_AVG, .flag = 'N'}};
        v[n++].pt.v[STORAGE_COL_AVG] = flow;
    }
    engine_upload u = {.mn = MN, .interval = STORAGE_IV_HOUR, .ts = ts, .values = v,
                       .nvalues = n};
    judge_ctx c = ctx();
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, MN, strlen(MN));
    findings_hour(fnd, &c, w, o, &u);
}

static int count(const char *kind, const char *state)
{
    int n = 0;
    for (int i = 0; i < ngot; i++)
        n += !strcmp(got[i].kind, kind) && (!state || !strcmp(got[i].state, state));
    return n;
}

static const caught *find(const char *kind, const char *state)
{
    for (int i = 0; i < ngot; i++)
        if (!strcmp(got[i].kind, kind) && !strcmp(got[i].state, state))
            return &got[i];
    return NULL;
}

static double o2_of(int k)
{
    return 8.0 + (k % 5) * 0.1; /* a plant's O2 moves a little */
}

static void test_flatline(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 23; k++)
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flatline", NULL), 0); /* 23 hours: not yet */
    hour(w, T0 + 23 * 3600, 42.5, 'N', o2_of(23), 50);
    CHECK_EQ_INT(count("flatline", "firing"), 1); /* the 24th identical hour */
    const caught *f = find("flatline", "firing");
    CHECK(f && !strcmp(f->start, "2026-11-01T00:00:00+08:00") && f->value == 42.5 &&
          !strcmp(f->pollutant, "a21026"));
    hour(w, T0 + 3 * 3600, 42.5, 'N', o2_of(3), 50); /* late: changes nothing */
    hour(w, T0 + 24 * 3600, 42.5, 'N', o2_of(24), 50);
    CHECK_EQ_INT(ngot, 1);
    hour(w, T0 + 25 * 3600, 42.6, 'N', o2_of(25), 50);
    const caught *r = find("flatline", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-02T01:00:00+08:00"));
    CHECK(r && f && !strcmp(r->id, f->id)); /* one episode, one id */
    char id[17];
    engine_episode_id_format(engine_episode_id(MN, "a21026", 32 + ENGINE_FIND_FLATLINE, T0, 0),
                             id);
    CHECK(f && !strcmp(f->id, id)); /* stable: derived from outlet, code, kind and start */
    CHECK_EQ_INT(count("flatline", NULL), 2);
    fwatch_destroy(w);
}

/* Hours missing inside a run, then pulled late from the device's history: the run goes on
 * under its id. Left missing, or arriving with another value, they split it. */
static void test_gap_filled_late(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 25; k++)
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flatline", "firing"), 1);
    hour(w, T0 + 27 * 3600, 42.5, 'N', o2_of(27), 50); /* 25 and 26 missing */
    hour(w, T0 + 28 * 3600, 42.5, 'N', o2_of(28), 50);
    CHECK_EQ_INT(ngot, 1);
    hour(w, T0 + 26 * 3600, 42.5, 'N', o2_of(26), 50); /* history, out of order */
    hour(w, T0 + 25 * 3600, 42.5, 'N', o2_of(25), 50);
    CHECK_EQ_INT(ngot, 1);
    for (int k = 29; k < 40; k++) /* longer than a gap waits: it was filled */
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    CHECK_EQ_INT(ngot, 1);
    hour(w, T0 + 40 * 3600, 43.0, 'N', o2_of(40), 50);
    CHECK_EQ_INT(count("flatline", "resolved"), 1);
    const caught *r = find("flatline", "resolved");
    CHECK(r && !strcmp(r->start, "2026-11-01T00:00:00+08:00") &&
          !strcmp(r->end, "2026-11-02T16:00:00+08:00") && !strcmp(r->id, got[0].id));
    fwatch_destroy(w);

    /* Never filled: the run ends at the gap once FIND_GAP_WAIT hours followed it. */
    w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 25; k++)
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    for (int k = 26; k < 26 + FIND_GAP_WAIT; k++)
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    CHECK_EQ_INT(ngot, 1);
    hour(w, T0 + (26 + FIND_GAP_WAIT) * 3600, 42.5, 'N', o2_of(0), 50);
    r = find("flatline", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-02T01:00:00+08:00") && !strcmp(r->id, got[0].id));
    hour(w, T0 + 25 * 3600, 42.5, 'N', o2_of(25), 50); /* too late: changes nothing */
    CHECK_EQ_INT(ngot, 2);
    fwatch_destroy(w);

    /* Filled with another value: the run ends there at once. */
    w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 25; k++)
        hour(w, T0 + k * 3600, 42.5, 'N', o2_of(k), 50);
    hour(w, T0 + 28 * 3600, 42.5, 'N', o2_of(28), 50); /* 25, 26, 27 missing */
    hour(w, T0 + 25 * 3600, 42.5, 'N', o2_of(25), 50);
    hour(w, T0 + 26 * 3600, 41.0, 'N', o2_of(26), 50);
    r = find("flatline", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-02T02:00:00+08:00"));
    CHECK_EQ_INT(ngot, 2);
    fwatch_destroy(w);
}

static void test_flat_needs_running_plant(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 30; k++) /* flow 0: the plant is stopped, identical values are fine */
        hour(w, T0 + k * 3600, 3.0, 'N', o2_of(k), 0);
    CHECK_EQ_INT(count("flatline", NULL), 0);
    for (int k = 30; k < 60; k++) /* a flag other than N/T is never judged */
        hour(w, T0 + k * 3600, 3.0, 'M', o2_of(k), 50);
    CHECK_EQ_INT(count("flatline", NULL), 0);
    fwatch_destroy(w);
}

static void test_zeros(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    hour(w, T0, 20, 'N', o2_of(0), 50);
    hour(w, T0 + 3600, 0, 'N', o2_of(1), 50);
    hour(w, T0 + 7200, 0, 'N', o2_of(2), 50);
    CHECK_EQ_INT(count("zeros", NULL), 0);
    hour(w, T0 + 3 * 3600, 0, 'N', o2_of(3), 50);
    CHECK_EQ_INT(count("zeros", "firing"), 1);
    /* An hour missing: late data may still fill it, until the hours after it would fire on
     * their own; then the run ends where its hours stopped, and they are a run of their own. */
    hour(w, T0 + 5 * 3600, 0, 'N', o2_of(5), 50);
    hour(w, T0 + 6 * 3600, 0, 'N', o2_of(6), 50);
    CHECK_EQ_INT(count("zeros", NULL), 1);
    hour(w, T0 + 7 * 3600, 0, 'N', o2_of(7), 50);
    const caught *r = find("zeros", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-01T04:00:00+08:00"));
    CHECK_EQ_INT(count("zeros", "firing"), 2);
    CHECK(!strcmp(got[ngot - 1].state, "firing") &&
          !strcmp(got[ngot - 1].start, "2026-11-01T05:00:00+08:00"));
    CHECK_EQ_INT(count("flatline", NULL), 0); /* zeros are not flat lines */
    ngot = 0;
    for (int k = 10; k < 20; k++) /* zeros while the flow is 0: a stopped plant */
        hour(w, T0 + k * 3600, 0, 'N', o2_of(k), 0);
    CHECK_EQ_INT(count("zeros", "firing"), 0); /* (the run before resolves) */
    fwatch_destroy(w);
}

static void test_dilution(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    hour(w, T0, 20, 'N', 16, 50); /* no baseline yet: not judged */
    for (int k = 1; k < 30; k++)
        hour(w, T0 + k * 3600, 20 + k % 3, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("dilution", NULL), 0);
    hour(w, T0 + 30 * 3600, 20, 'N', 10.0, 50); /* 8.2 median + 2 = 10.2: not over */
    CHECK_EQ_INT(count("dilution", NULL), 0);
    hour(w, T0 + 31 * 3600, 20, 'N', 14.5, 50);
    hour(w, T0 + 32 * 3600, 21, 'N', 15.5, 50);
    CHECK_EQ_INT(count("dilution", "firing"), 1);
    hour(w, T0 + 33 * 3600, 20, 'N', 8.1, 50);
    const caught *r = find("dilution", "resolved");
    CHECK(r && r->value == 15.5 && !strcmp(r->pollutant, "a19001"));
    CHECK(r && fabs(r->limit - (8.2 + 2)) < 1e-9); /* the threshold of its first hour */
    CHECK(r && !strcmp(r->start, "2026-11-02T07:00:00+08:00") &&
          !strcmp(r->end, "2026-11-02T09:00:00+08:00"));
    fwatch_destroy(w);
}

static void test_flagged_day(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    for (int k = 0; k < 23; k++) /* day 1: 7 of 24 hours in maintenance (29%) */
        hour(w, T0 + k * 3600, 20 + k % 3, k >= 8 && k < 15 ? 'M' : 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flagged_day", NULL), 0); /* the day is not over yet */
    hour(w, T0 + 23 * 3600, 20, 'N', o2_of(23), 50); /* its last hour: judged at once */
    CHECK_EQ_INT(count("flagged_day", NULL), 1);
    hour(w, T0 + 24 * 3600, 20, 'N', o2_of(24), 50);
    const caught *f = find("flagged_day", "firing");
    CHECK(f && !strcmp(f->start, "2026-11-01T00:00:00+08:00") && fabs(f->value - 7.0 / 24) < 1e-9
          && f->limit == 0.25 && f->pollutant[0] == 0);
    for (int k = 25; k < 49; k++) /* day 2: 6 hours faulty (25%, not more): fine */
        hour(w, T0 + k * 3600, 20 + k % 3, k >= 30 && k < 36 ? 'D' : 'N', o2_of(k), 50);
    const caught *r = find("flagged_day", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-02T00:00:00+08:00"));
    CHECK_EQ_INT(count("flagged_day", NULL), 2);
    fwatch_destroy(w);
}

/* A gap over midnight: the day's missing hours come back after the next day's first hours
 * (history pulled later) and still count in their day; hours that never come back are
 * waited for FIND_GAP_WAIT hours of the next day. */
static void test_flagged_day_gap(void)
{
    fwatch *w = fwatch_create();
    ngot = 0;
    /* Day 1: hours 0-18 with 5 in maintenance; 19-23 missing (5 of 19 seen: 26%). */
    for (int k = 0; k < 19; k++)
        hour(w, T0 + k * 3600, 20 + k % 3, k >= 8 && k < 13 ? 'M' : 'N', o2_of(k), 50);
    for (int k = 24; k < 27; k++) /* day 2's first hours arrive first */
        hour(w, T0 + k * 3600, 20, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flagged_day", NULL), 0); /* day 1 waits for its gap */
    for (int k = 19; k < 24; k++) /* the gap, pulled back: 5 of 24 (21%) */
        hour(w, T0 + k * 3600, 20 + k % 3, 'N', o2_of(k), 50);
    for (int k = 27; k < 48; k++)
        hour(w, T0 + k * 3600, 20 + k % 3, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flagged_day", NULL), 0); /* neither day is over 25% */
    /* Day 3 the same, but its gap never comes back: judged on what came once day 4 is
     * FIND_GAP_WAIT hours old. */
    for (int k = 48; k < 67; k++)
        hour(w, T0 + k * 3600, 20 + k % 3, k >= 56 && k < 61 ? 'M' : 'N', o2_of(k), 50);
    for (int k = 72; k < 72 + FIND_GAP_WAIT; k++)
        hour(w, T0 + k * 3600, 20, 'N', o2_of(k), 50);
    CHECK_EQ_INT(count("flagged_day", NULL), 0);
    hour(w, T0 + (72 + FIND_GAP_WAIT) * 3600, 20, 'N', o2_of(0), 50);
    const caught *f = find("flagged_day", "firing");
    CHECK(f && !strcmp(f->start, "2026-11-03T00:00:00+08:00") && fabs(f->value - 5.0 / 19) < 1e-9);
    /* A late hour of day 3 after it was judged changes nothing. */
    hour(w, T0 + 70 * 3600, 20, 'N', o2_of(0), 50);
    CHECK_EQ_INT(count("flagged_day", NULL), 1);
    /* Days later: day 4 (not flagged) is judged, and the new day counts from scratch. */
    hour(w, T0 + 240 * 3600, 20, 'N', o2_of(0), 50);
    const caught *r = find("flagged_day", "resolved");
    CHECK(r && !strcmp(r->end, "2026-11-04T00:00:00+08:00"));
    CHECK_EQ_INT(count("flagged_day", NULL), 2);
    fwatch_destroy(w);
}

static void test_run(void)
{
    ngot = 0;
    frun r;
    frun_init(&r);
    const engine_outlet *o = engine_registry_outlet_by_mn(reg, MN, strlen(MN));
    finding_key k = {o, "a21026", ENGINE_FIND_MISMATCH};
    judge_ctx c = ctx();
    findings_feed(fnd, &c, &k, &r, T0, 3600, false, 10, 10, 1);
    findings_feed(fnd, &c, &k, &r, T0 + 3600, 3600, true, 15, 12.45, 1);
    CHECK_EQ_INT(count("mismatch", "firing"), 1);
    const caught *f = find("mismatch", "firing");
    CHECK(f && f->value == 15 && f->limit == 12.45);
    findings_feed(fnd, &c, &k, &r, T0 + 2 * 3600, 3600, true, 17, 12, 1);
    findings_feed(fnd, &c, &k, &r, T0 + 3600, 3600, false, 0, 0, 1); /* late: ignored */
    CHECK_EQ_INT(ngot, 1);
    findings_feed(fnd, &c, &k, &r, T0 + 3 * 3600, 3600, false, 12, 12, 1);
    const caught *e = find("mismatch", "resolved");
    CHECK(e && e->value == 17 && !strcmp(e->end, "2026-11-01T03:00:00+08:00"));
    engine_live_stats st = {0};
    findings_get_stats(fnd, &st);
    CHECK(st.findings_fired >= 1 && st.findings_resolved >= 1 && st.alerts_failed == 0);
}

int main(void)
{
    setup();
    test_flatline();
    test_gap_filled_late();
    test_flat_needs_running_plant();
    test_zeros();
    test_dilution();
    test_flagged_day();
    test_flagged_day_gap();
    test_run();
    teardown();
    return tap_done();
}
