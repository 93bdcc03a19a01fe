/* test_live_state.c: the live state of devices survives a stop that loses the engine's
 * memory (live_state.c through a real engine and store). A first engine sees a flat line
 * fire, an outlet fall silent, a second flat run grow to 20 hours, and minute data of two
 * hours whose roll-ups it never gets to run; it is then dropped the way a crash drops it
 * (what is committed stays, pending work is lost). A second engine on the same store goes
 * on: the flat line resolves under the id it fired with, the silence resolves under its id
 * when the outlet resumes, the 20-hour run fires at its 24th hour with its first start, and
 * the hours due at the crash are computed from the stored minutes. The record itself round-
 * trips, and damaged records are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bytebuf.h"
#include "live.h"
#include "tap.h"

#define T0 1793462400 /* 2026-11-01T00:00:00+08:00, a local midnight */
#define FLAT "FLAT01"
#define SILENT "SILENT01"
#define GROW "GROW01"
#define MINS "MIN01"

static storage *st;
static engine *eng;
static engine_alerts *alerts;
static engine_registry *reg;
static uv_loop_t loop;

typedef struct caught {
    char kind[16], state[16], id[24], mn[32];
    int64_t start, end;
} caught;
static caught got[64];
static int ngot;

static void on_fire(void *arg, const engine_alert *al, const char *json, size_t len)
{
    (void)arg;
    (void)json;
    (void)len;
    if (ngot == 64)
        return;
    caught *c = &got[ngot++];
    snprintf(c->kind, sizeof c->kind, "%s", al->kind);
    snprintf(c->state, sizeof c->state, "%s", engine_alert_state_name(al->state));
    snprintf(c->id, sizeof c->id, "%s", al->id);
    snprintf(c->mn, sizeof c->mn, "%s", al->mn);
    c->start = al->start;
    c->end = al->end;
}

/* The alerts of kind for mn, in order: how many, and the first two. */
static int of(const char *kind, const char *mn, const caught **a, const caught **b)
{
    int n = 0;
    *a = *b = NULL;
    for (int i = 0; i < ngot; i++)
        if (strcmp(got[i].kind, kind) == 0 && strcmp(got[i].mn, mn) == 0) {
            if (n == 0)
                *a = &got[i];
            else if (n == 1)
                *b = &got[i];
            n++;
        }
    return n;
}

static void add_outlet(const char *code, const char *mn)
{
    char why[128];
    engine_outlet o = {.facility_id = "F1", .medium = ENGINE_MEDIUM_GAS, .o2_ref = 6};
    snprintf(o.code, sizeof o.code, "%s", code);
    snprintf(o.mn, sizeof o.mn, "%s", mn);
    CHECK_EQ_INT(engine_registry_add_outlet(reg, &o, why, sizeof why), 0);
    engine_limit l = {.facility_id = "F1", .pollutant = "a21026", .value = 100,
                      .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                      .basis = ENGINE_BASIS_MEASURED, .valid_from = INT64_MIN,
                      .valid_to = INT64_MAX};
    snprintf(l.outlet, sizeof l.outlet, "%s", code);
    CHECK_EQ_INT(engine_registry_add_limit(reg, &l, why, sizeof why), 0);
}

static void setup_registry(void)
{
    char why[128];
    engine_registry_create(&reg);
    engine_facility f = {.id = "F1", .name = "Plant", .region = "320102", .lat = NAN,
                         .lon = NAN};
    CHECK_EQ_INT(engine_registry_add_facility(reg, &f, why, sizeof why), 0);
    add_outlet("DA001", FLAT);
    add_outlet("DA002", SILENT);
    add_outlet("DA003", GROW);
    add_outlet("DA004", MINS);
}

static void start_engine(void)
{
    engine_options eo = {.st = st, .loop = &loop};
    CHECK_EQ_INT(engine_create(&eo, &eng), 0);
    engine_set_registry(eng, reg);
    engine_set_alerts(eng, alerts);
}

/* Lets commits and live work finish: the loop turns until nothing is pending. */
static void settle(void)
{
    for (int i = 0; i < 500; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        storage_sync(st);
        uv_run(&loop, UV_RUN_NOWAIT);
        engine_stats es;
        engine_get_stats(eng, &es);
        if (es.live.jobs_pending == 0 && es.commits_pending == 0)
            return;
        uv_sleep(10);
    }
}

/* One reported hour of SO2 with the flow up and an O2 that moves. */
static void hour(const char *mn, int k, double so2)
{
    engine_value v[3] = {{.code = "a21026"}, {.code = "a00000"}, {.code = "a19001"}};
    double x[3] = {so2, 50.0, 8.0 + k % 3 / 10.0};
    for (int i = 0; i < 3; i++) {
        v[i].pt.v[STORAGE_COL_AVG] = x[i];
        v[i].pt.mask = 1u << STORAGE_COL_AVG;
        v[i].pt.flag = 'N';
    }
    engine_upload u = {.mn = mn, .interval = STORAGE_IV_HOUR, .ts = T0 + 3600 * (int64_t)k,
                       .values = v, .nvalues = 3};
    CHECK_EQ_INT(engine_ingest(eng, &u, NULL, NULL), 0);
}

static void minute(int64_t ts, double so2)
{
    engine_value v = {.code = "a21026"};
    v.pt.v[STORAGE_COL_AVG] = so2;
    v.pt.mask = 1u << STORAGE_COL_AVG;
    v.pt.flag = 'N';
    engine_upload u = {.mn = MINS, .interval = STORAGE_IV_MIN, .ts = ts, .values = &v,
                       .nvalues = 1};
    CHECK_EQ_INT(engine_ingest(eng, &u, NULL, NULL), 0);
}

static bool hour_calc(int64_t h, double *avg)
{
    storage_sid sid;
    storage_reader *r;
    storage_iter *it;
    storage_point p;
    bool found = false;
    if (storage_series_lookup(st, MINS ":a21026:hour.calc", &sid) == 0 &&
        storage_reader_open(st, &r) == 0) {
        if (storage_iter_open(r, sid, h, h, &it) == 0) {
            found = storage_iter_next(it, &p) == 1;
            storage_iter_close(it);
        }
        storage_reader_close(r);
    }
    if (found)
        *avg = p.v[STORAGE_COL_AVG];
    return found;
}

/* Drops the engine as a crash would: what is committed stays, work not yet run is lost. */
static void crash(void)
{
    engine_close(eng);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void before_the_crash(void)
{
    for (int k = 0; k < 3; k++)
        hour(SILENT, k, 20 + k);
    for (int k = 0; k < 26; k++) {
        hour(FLAT, k, 42.0);
        if (k >= 6)
            hour(GROW, k, 17.5);
    }
    settle();
    /* The silence check runs every second on the loop. */
    const caught *a, *b;
    for (int i = 0; i < 300 && of("silent", SILENT, &a, &b) == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(10);
    }
    CHECK_EQ_INT(of("flatline", FLAT, &a, &b), 1);
    CHECK(a && strcmp(a->state, "firing") == 0 && a->start == T0);
    CHECK_EQ_INT(of("silent", SILENT, &a, &b), 1);
    CHECK(a && a->start == T0 + 3 * 3600);
    CHECK_EQ_INT(of("flatline", GROW, &a, &b), 0);
    settle();

    /* Minutes: all of hour 0, and the first of hour 1 (hour 0 is now due twice over). The
     * engine stops before its roll-up runs. */
    for (int i = 0; i < 60; i++)
        minute(T0 + 60 * i, i < 30 ? 10.0 : 20.0);
    minute(T0 + 3600, 30.0);
    crash();
}

static void after_the_crash(void)
{
    const caught *a, *b;
    char fired[24];
    of("flatline", FLAT, &a, &b);
    snprintf(fired, sizeof fired, "%s", a ? a->id : "");
    hour(FLAT, 25, 42.0); /* resent */
    hour(GROW, 25, 17.5);
    for (int k = 26; k < 31; k++) {
        hour(FLAT, k, k < 28 ? 42.0 : 43.0);
        hour(GROW, k, k < 30 ? 17.5 : 18.0);
    }
    hour(SILENT, 28, 21.0);
    minute(T0 + 3600 + 60, 30.0);
    settle();

    CHECK_EQ_INT(of("flatline", FLAT, &a, &b), 2);
    CHECK(b && strcmp(b->state, "resolved") == 0 && strcmp(b->id, fired) == 0);
    CHECK(b && b->start == T0 && b->end == T0 + 28 * 3600);
    CHECK_EQ_INT(of("silent", SILENT, &a, &b), 2);
    CHECK(a && b && strcmp(b->state, "resolved") == 0 && strcmp(a->id, b->id) == 0);
    CHECK(b && b->start == T0 + 3 * 3600 && b->end == T0 + 28 * 3600);
    CHECK_EQ_INT(of("flatline", GROW, &a, &b), 2);
    CHECK(a && b && strcmp(a->state, "firing") == 0 && strcmp(b->state, "resolved") == 0);
    CHECK(a && b && a->start == T0 + 6 * 3600 && strcmp(a->id, b->id) == 0);

    double avg = NAN;
    CHECK(hour_calc(T0, &avg));
    CHECK(fabs(avg - 15.0) < 1e-9); /* the hour due at the crash, from its stored minutes */
}

/* The record round-trips; truncated and damaged records are refused. */
static void record(void)
{
    findings *f;
    CHECK_EQ_INT(findings_create(NULL, &f), 0);
    lout o, back;
    memset(&o, 0, sizeof o);
    strcpy(o.mn, "X1");
    o.newest_end = T0 + 7200;
    o.silent_start = INT64_MIN;
    o.open_hour = T0 + 3600;
    o.last_min_ts = T0 + 3660;
    o.min_step = 60;
    o.ncodes = 2;
    strcpy(o.codes[0], "a21026");
    strcpy(o.codes[1], "a19001");
    o.fw = fwatch_create();
    frun *m = fwatch_mismatch_run(o.fw, "a21026");
    *m = (frun){.start = T0, .last = T0 + 3600, .value = 15, .ref = 12.5, .count = 2,
                .fired = true, .gap_start = INT64_MIN};
    uint8_t *buf, *buf2;
    size_t len, len2;
    CHECK_EQ_INT(live_state_encode(&o, &buf, &len), 0);
    memset(&back, 0, sizeof back);
    CHECK_EQ_INT(live_state_decode(f, buf, len, &back), 0);
    CHECK(back.newest_end == o.newest_end && back.silent_start == INT64_MIN);
    CHECK(back.open_hour == o.open_hour && back.min_step == 60 && back.ncodes == 2);
    CHECK(strcmp(back.codes[1], "a19001") == 0 && back.restored);
    frun *bm = back.fw ? fwatch_mismatch_run(back.fw, "a21026") : NULL;
    CHECK(bm && bm->start == T0 && bm->last == T0 + 3600 && bm->count == 2 && bm->fired &&
          bm->value == 15 && bm->ref == 12.5);
    CHECK_EQ_INT(live_state_encode(&back, &buf2, &len2), 0);
    CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
    free(buf2);
    /* A run with hours missing inside it, one of them since filled. */
    *bm = (frun){.start = T0, .last = T0 + 5 * 3600, .value = 15, .ref = 12.5, .count = 2,
                 .gap_start = T0 + 2 * 3600, .gap_end = T0 + 4 * 3600, .filled = 1,
                 .post = 2, .post_value = 16, .post_ref = 12};
    CHECK_EQ_INT(live_state_encode(&back, &buf2, &len2), 0);
    lout g;
    memset(&g, 0, sizeof g);
    CHECK_EQ_INT(live_state_decode(f, buf2, len2, &g), 0);
    frun *gm = g.fw ? fwatch_mismatch_run(g.fw, "a21026") : NULL;
    CHECK(gm && gm->gap_start == T0 + 2 * 3600 && gm->gap_end == T0 + 4 * 3600 &&
          gm->filled == 1 && gm->post == 2 && gm->post_value == 16 && gm->post_ref == 12);
    fwatch_destroy(g.fw);
    int refused = 0, held = 0;
    for (size_t cut = 0; cut < len; cut++) {
        lout t;
        memset(&t, 0, sizeof t);
        refused += live_state_decode(f, buf, cut, &t) == -EBADMSG;
        held += t.fw != NULL; /* a refused record holds nothing */
    }
    CHECK_EQ_INT(refused, (int)len);
    CHECK_EQ_INT(held, 0);
    buf[4] = 99; /* an unknown version */
    lout t;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(live_state_decode(f, buf, len, &t), -EBADMSG);
    free(buf);
    free(buf2);
    fwatch_destroy(o.fw);
    fwatch_destroy(back.fw);
    findings_destroy(f);
}

int main(void)
{
    char dir[] = "/tmp/plume-live-state-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    storage_options so = {.kv_tables = engine_kv_tables};
    CHECK_EQ_INT(storage_open(dir, &so, &st), 0);
    uv_loop_init(&loop);
    setup_registry();
    engine_alerts_options ao = {.loop = &loop};
    CHECK_EQ_INT(engine_alerts_create(&ao, &alerts), 0);
    engine_subs *subs;
    engine_subs_create(&subs);
    engine_alerts_set_subs(alerts, subs);
    engine_alerts_on_fire(alerts, on_fire, NULL);

    start_engine();
    before_the_crash();
    start_engine();
    after_the_crash();
    record();

    engine_close(eng);
    engine_alerts_close(alerts);
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
