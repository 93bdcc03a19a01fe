/* Exceedance episodes: the limit edge, invalid flags, invalid hours inside an episode (both
 * policies), late data that extends, merges, splits and retracts episodes with stable ids,
 * hours missed in an outage and pulled back later (late_wait), limits that change over time
 * (from the registry), daily periods, the horizon, and the state as bytes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

#define H0 1735660800 /* 2025-01-01T00:00:00+08:00 */
#define HR(i) ((int64_t)H0 + (int64_t)(i) * 3600)

/* Events of the last feed as letters: O opened, E extended, G changed, C closed, R reopened,
 * M merged, X retracted; and the events themselves. */
typedef struct log {
    char s[32];
    engine_episode_event ev[16];
    int n;
} log_t;

static void on_event(void *ud, const engine_episode_event *ev)
{
    log_t *l = ud;
    if (l->n < 16) {
        l->s[l->n] = "OEGCRMX"[ev->type];
        l->ev[l->n++] = *ev;
        l->s[l->n] = 0;
    }
}

static log_t lg;

static const char *feed(engine_detector *d, int64_t ts, double v, double limit, uint8_t flag,
                        bool valid)
{
    memset(&lg, 0, sizeof lg);
    engine_period p = {ts, v, limit, flag, valid};
    int rc = engine_detector_feed(d, &p, on_event, &lg);
    if (rc < 0)
        snprintf(lg.s, sizeof lg.s, "error %d", rc);
    return lg.s;
}

static const char *hour(engine_detector *d, int i, double v)
{
    return feed(d, HR(i), v, 100, 'N', true);
}

static engine_detector *mk(uint32_t bridge)
{
    engine_detector_opts o;
    engine_detector_opts_init(&o);
    o.max_bridge = bridge;
    engine_detector *d = NULL;
    engine_detector_create("010000A8900016F000169DC0", "a21026", ENGINE_PERIOD_HOUR, &o, &d);
    return d;
}

static uint64_t idof(int64_t anchor, uint32_t gen)
{
    return engine_episode_id("010000A8900016F000169DC0", "a21026", ENGINE_PERIOD_HOUR, anchor,
                             gen);
}

static void test_basic(void)
{
    engine_detector *d = mk(0);
    const engine_episode *e;
    CHECK_EQ_STR(hour(d, 0, 90), "");
    CHECK_EQ_STR(hour(d, 1, 100), ""); /* exactly at the limit complies */
    CHECK_EQ_STR(hour(d, 2, 100.0001), "O");
    CHECK_EQ_INT(lg.ev[0].ep.id, idof(HR(2), 0));
    CHECK_EQ_INT(lg.ev[0].ep.count, 1);
    CHECK(!lg.ev[0].ep.closed);
    CHECK_EQ_STR(hour(d, 3, 150), "E");
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(3));
    CHECK_EQ_INT(lg.ev[0].ep.peak_ts, HR(3));
    CHECK(fabs(lg.ev[0].ep.peak_multiple - 0.5) < 1e-12);
    CHECK_EQ_STR(hour(d, 3, 150), ""); /* the same period again: nothing new */
    CHECK_EQ_STR(hour(d, 4, 120), "E");
    CHECK_EQ_INT(lg.ev[0].ep.peak_ts, HR(3)); /* the peak stays */
    CHECK_EQ_STR(hour(d, 5, 100), "C");
    CHECK(lg.ev[0].ep.closed);
    CHECK_EQ_INT(lg.ev[0].ep.count, 3);
    CHECK_EQ_INT(lg.ev[0].ep.start, HR(2));
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(4));
    CHECK_EQ_STR(hour(d, 6, 300), "O");
    CHECK_EQ_INT(lg.ev[0].ep.id, idof(HR(6), 0));
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 2);
    CHECK_EQ_INT(e[0].id, idof(HR(2), 0));
    CHECK_EQ_INT(e[1].start, HR(6));

    /* Invalid flags and invalid periods never count; no limit means no exceedance. */
    const char *bad = "FMSDCB?";
    int quiet = 0;
    for (int i = 0; bad[i]; i++)
        quiet += feed(d, HR(20 + 2 * i), 500, 100, (uint8_t)bad[i], true)[0] == 0;
    CHECK_EQ_INT(quiet, 7);
    CHECK_EQ_STR(feed(d, HR(40), 500, 100, 'N', false), "");
    CHECK_EQ_STR(feed(d, HR(42), 500, NAN, 'N', true), "");
    CHECK_EQ_STR(feed(d, HR(44), 500, 100, 'T', true), "O"); /* T valid by default */
    CHECK_EQ_STR(feed(d, HR(46), 500, 100, 0, true), "O");   /* no flag: N by default */
    engine_detector_destroy(d);

    engine_detector_opts o;
    engine_detector_opts_init(&o);
    o.t_valid = false;
    engine_detector_create("s", "a21026", ENGINE_PERIOD_HOUR, &o, &d);
    CHECK_EQ_STR(feed(d, HR(0), 500, 100, 'T', true), "");
    engine_detector_destroy(d);
}

static void test_invalid_inside(void)
{
    /* Default (HJ practice): an invalid hour between two exceedance hours ends the episode. */
    engine_detector *d = mk(0);
    CHECK_EQ_STR(hour(d, 0, 150), "O");
    CHECK_EQ_STR(feed(d, HR(1), 150, 100, 'C', true), "C");
    CHECK_EQ_STR(hour(d, 2, 150), "O");
    const engine_episode *e;
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 2);
    /* A missing hour ends it too. */
    CHECK_EQ_STR(hour(d, 4, 150), "O");
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 3);
    CHECK(!e[1].closed); /* hour 3 not seen yet */
    engine_detector_destroy(d);

    /* Bridging one invalid or missing hour: one episode of two exceedance hours. */
    d = mk(1);
    CHECK_EQ_STR(hour(d, 0, 150), "O");
    CHECK_EQ_STR(feed(d, HR(1), 150, 100, 'C', true), "");
    CHECK_EQ_STR(hour(d, 2, 150), "E");
    CHECK_EQ_INT(lg.ev[0].ep.count, 2);
    CHECK_EQ_STR(hour(d, 4, 170), "E"); /* hour 3 missing: bridged */
    CHECK_EQ_INT(lg.ev[0].ep.count, 3);
    CHECK_EQ_STR(feed(d, HR(5), 0, 100, 'M', true), "");
    CHECK_EQ_STR(feed(d, HR(6), 0, 100, 'M', true), "C"); /* two invalid hours: closed */
    CHECK_EQ_STR(hour(d, 7, 150), "O");
    CHECK_EQ_STR(hour(d, 8, 50), "C"); /* a valid hour under the limit always ends it */
    CHECK_EQ_STR(hour(d, 9, 150), "O");
    CHECK(lg.ev[0].ep.id != idof(HR(7), 0));
    /* An hour under the limit inside a bridged gap splits the episode. */
    CHECK_EQ_STR(hour(d, 3, 10), "GOC"); /* the tail is closed by hours 5 and 6 */
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(2));
    CHECK(lg.ev[0].ep.closed);
    CHECK_EQ_INT(lg.ev[1].ep.start, HR(4));
    CHECK_EQ_INT(lg.ev[1].ep.id, idof(HR(4), 0));
    engine_detector_destroy(d);
}

static void test_late(void)
{
    engine_detector *d = mk(0);
    const engine_episode *e;
    /* Two episodes, 10-11 and 13; hour 12 arrives late over the limit: one episode. */
    hour(d, 10, 150);
    hour(d, 11, 150);
    CHECK_EQ_STR(hour(d, 13, 200), "O");
    uint64_t a = idof(HR(10), 0), b = idof(HR(13), 0);
    CHECK(a != b);
    CHECK_EQ_STR(hour(d, 12, 150), "EM");
    CHECK_EQ_INT(lg.ev[0].ep.id, a);
    CHECK_EQ_INT(lg.ev[0].ep.count, 4);
    CHECK_EQ_INT(lg.ev[0].ep.peak_ts, HR(13));
    CHECK_EQ_INT(lg.ev[1].ep.id, b);
    CHECK_EQ_INT(lg.ev[1].into, a);
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 1);

    /* Late data before the start: the id keeps its first-seen start. */
    CHECK_EQ_STR(hour(d, 9, 150), "G");
    CHECK_EQ_INT(lg.ev[0].ep.id, a);
    CHECK_EQ_INT(lg.ev[0].ep.start, HR(9));
    CHECK_EQ_INT(lg.ev[0].ep.anchor, HR(10));

    /* A correction under the limit splits it: the part with the start keeps the id (and is
     * closed by the corrected hour), the rest is a new episode with its own start's id. */
    CHECK_EQ_STR(hour(d, 11, 80), "GCO");
    CHECK_EQ_INT(lg.ev[0].ep.id, a);
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(10));
    CHECK_EQ_INT(lg.ev[2].ep.id, idof(HR(12), 0));
    CHECK_EQ_INT(lg.ev[2].ep.start, HR(12));
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 2);
    CHECK(e[0].id != e[1].id);

    /* Corrected back: they merge again, the earlier id survives and reopens. */
    CHECK_EQ_STR(hour(d, 11, 150), "RM");
    CHECK_EQ_INT(lg.ev[0].ep.id, a);
    CHECK_EQ_INT(lg.ev[0].ep.count, 5);
    CHECK_EQ_INT(lg.ev[1].into, a);

    /* Close it, then a late exceedance after the end reopens and extends it. */
    CHECK_EQ_STR(feed(d, HR(14), 0, 100, 'D', true), "C");
    CHECK_EQ_STR(hour(d, 14, 130), "R");
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(14));

    /* Corrections that remove every hour retract it. */
    engine_detector_destroy(d);
    d = mk(0);
    CHECK_EQ_STR(hour(d, 5, 150), "O");
    uint64_t id = lg.ev[0].ep.id;
    CHECK_EQ_STR(feed(d, HR(5), 150, 100, 'C', true), "X");
    CHECK_EQ_INT(lg.ev[0].ep.id, id);
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 0);
    /* A late isolated exceedance whose next hour is known opens closed. */
    hour(d, 21, 10);
    CHECK_EQ_STR(hour(d, 20, 150), "OC");
    engine_detector_destroy(d);
}

/* A new episode that would take the id of a live one (whose start moved away from its
 * anchor) gets the next generation of that id. */
static engine_detector *mk_late(uint32_t late_wait)
{
    engine_detector_opts o;
    engine_detector_opts_init(&o);
    o.late_wait = late_wait;
    engine_detector *d = NULL;
    engine_detector_create("010000A8900016F000169DC0", "a21026", ENGINE_PERIOD_HOUR, &o, &d);
    return d;
}

/* A unit away for some hours sends its current hour when it is back, and the missed hours
 * only when asked: the episode they belong to must open once and close once, complete. */
static void test_outage(void)
{
    /* The outage hides the episode's start: hours 3-5 missing, 5 exceeds. */
    engine_detector *d = mk_late(24);
    CHECK_EQ_STR(hour(d, 2, 50), "");
    CHECK_EQ_STR(hour(d, 6, 150), "O"); /* back: fires with what is known */
    uint64_t id = lg.ev[0].ep.id;
    CHECK_EQ_STR(hour(d, 7, 50), ""); /* under the limit, but hour 5 may still come */
    CHECK_EQ_STR(hour(d, 3, 50), "");
    CHECK_EQ_STR(hour(d, 4, 50), "");
    CHECK_EQ_STR(hour(d, 5, 180), "GC"); /* complete: start 5, peak 180, closed once */
    CHECK_EQ_INT(lg.ev[1].ep.id, id);
    CHECK_EQ_INT(lg.ev[1].ep.start, HR(5));
    CHECK_EQ_INT(lg.ev[1].ep.end, HR(6));
    CHECK(lg.ev[1].ep.peak_value == 180);
    engine_detector_destroy(d);

    /* The outage is inside the episode: one episode across it, never a second alert. */
    d = mk_late(24);
    CHECK_EQ_STR(hour(d, 0, 50), "");
    CHECK_EQ_STR(hour(d, 1, 150), "O");
    id = lg.ev[0].ep.id;
    CHECK_EQ_STR(hour(d, 2, 150), "E");
    CHECK_EQ_STR(hour(d, 5, 160), "E"); /* hours 3-4 missing: still the same episode */
    CHECK_EQ_STR(hour(d, 6, 50), "");   /* not closed while the hole may fill */
    CHECK_EQ_STR(hour(d, 3, 170), "G");
    CHECK_EQ_STR(hour(d, 4, 170), "GC");
    CHECK_EQ_INT(lg.ev[1].ep.id, id);
    CHECK_EQ_INT(lg.ev[1].ep.start, HR(1));
    CHECK_EQ_INT(lg.ev[1].ep.end, HR(5));
    CHECK_EQ_INT(lg.ev[1].ep.count, 5);
    engine_detector_destroy(d);

    /* The hole fills with hours under the limit: two episodes, each once. */
    d = mk_late(24);
    CHECK_EQ_STR(hour(d, 0, 50), "");
    CHECK_EQ_STR(hour(d, 1, 150), "O");
    id = lg.ev[0].ep.id;
    CHECK_EQ_STR(hour(d, 5, 160), "E");
    CHECK_EQ_STR(hour(d, 6, 50), "");
    CHECK_EQ_STR(hour(d, 2, 50), "GCO"); /* 1 closes; 5 is an episode of its own */
    CHECK_EQ_INT(lg.ev[0].ep.id, id);
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(1));
    CHECK_EQ_INT(lg.ev[2].ep.start, HR(5));
    CHECK(lg.ev[2].ep.id != id);
    CHECK(!lg.ev[2].ep.closed); /* hours 3-4 may still come */
    CHECK_EQ_STR(hour(d, 3, 50), "");
    CHECK_EQ_STR(hour(d, 4, 50), "C");
    engine_detector_destroy(d);

    /* The outage hides the episode's end: it stays open until the hours come. */
    d = mk_late(24);
    CHECK_EQ_STR(hour(d, 0, 150), "O");
    CHECK_EQ_STR(hour(d, 4, 50), "");
    CHECK_EQ_STR(hour(d, 1, 150), "E");
    CHECK_EQ_STR(hour(d, 2, 50), "C");
    CHECK_EQ_STR(hour(d, 3, 50), "");
    engine_detector_destroy(d);

    /* Hours that never come: after late_wait hours the hole counts as missing, which ends
     * an episode (max_bridge 0), so the part after it is an episode of its own. */
    d = mk_late(3);
    CHECK_EQ_STR(hour(d, 0, 50), "");
    CHECK_EQ_STR(hour(d, 1, 150), "O");
    id = lg.ev[0].ep.id;
    CHECK_EQ_STR(hour(d, 4, 150), "E");
    CHECK_EQ_STR(hour(d, 5, 50), "");
    CHECK_EQ_STR(hour(d, 6, 50), "GCOC"); /* hour 3 is now 3 hours behind: given up */
    CHECK_EQ_INT(lg.ev[0].ep.id, id);
    CHECK_EQ_INT(lg.ev[0].ep.end, HR(1));
    CHECK_EQ_INT(lg.ev[2].ep.start, HR(4));
    /* An episode followed by hours given up closes too. */
    CHECK_EQ_STR(hour(d, 7, 150), "O");
    CHECK_EQ_STR(hour(d, 9, 50), "");
    CHECK_EQ_STR(hour(d, 10, 50), "");
    CHECK_EQ_STR(hour(d, 11, 50), "C");
    engine_detector_destroy(d);

    /* Without late_wait a hole ends the episode at once, as before. */
    d = mk_late(0);
    CHECK_EQ_STR(hour(d, 1, 150), "O");
    CHECK_EQ_STR(hour(d, 4, 150), "O");
    CHECK_EQ_STR(hour(d, 5, 50), "C");
    engine_detector_destroy(d);

    /* The state as bytes keeps late_wait, so the same episodes come back. */
    d = mk_late(24);
    hour(d, 0, 50);
    hour(d, 1, 150);
    hour(d, 5, 160);
    hour(d, 6, 50);
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    engine_detector *d2 = NULL;
    CHECK_EQ_INT(engine_detector_encode(d, &a, &alen), 0);
    CHECK_EQ_INT(engine_detector_decode(a, alen, &d2), 0);
    CHECK_EQ_INT(engine_detector_encode(d2, &b, &blen), 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    CHECK_EQ_STR(hour(d2, 3, 150), "G");
    CHECK_EQ_STR(hour(d2, 4, 150), "G");
    CHECK_EQ_STR(hour(d2, 2, 150), "GC");
    free(a);
    free(b);
    engine_detector_destroy(d);
    engine_detector_destroy(d2);
}

static void test_no_duplicate_ids(void)
{
    engine_detector *d = mk(0);
    hour(d, 10, 150);
    hour(d, 11, 150);
    uint64_t a = idof(HR(10), 0);
    CHECK_EQ_STR(hour(d, 9, 150), "G");
    CHECK_EQ_STR(hour(d, 8, 150), "G");
    CHECK_EQ_STR(hour(d, 7, 150), "G");
    CHECK_EQ_STR(hour(d, 9, 50), "GCO");
    CHECK_EQ_INT(lg.ev[0].ep.id, a);
    CHECK_EQ_INT(lg.ev[0].ep.start, HR(7));
    CHECK_EQ_INT(lg.ev[2].ep.start, HR(10));
    CHECK_EQ_INT(lg.ev[2].ep.id, idof(HR(10), 1));
    CHECK(lg.ev[2].ep.id != a);

    /* Random feeds and corrections: live ids are always distinct. */
    engine_detector_destroy(d);
    d = mk(0);
    uint64_t rng = 42;
    int dup = 0;
    for (int k = 0; k < 3000; k++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int h = (int)((rng >> 33) % 60);
        double v = (rng >> 20) % 3 ? 150 : 50;
        hour(d, h, v);
        const engine_episode *e;
        size_t n = engine_detector_episodes(d, &e);
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                dup += e[i].id == e[j].id;
    }
    CHECK_EQ_INT(dup, 0);
    engine_detector_destroy(d);
}

/* Two detectors fed the same sequence give the same ids; the order of arrival decides the
 * anchor. */
static void test_deterministic(void)
{
    engine_detector *d1 = mk(0), *d2 = mk(0);
    const engine_episode *e1, *e2;
    for (int i = 5; i >= 0; i--) {
        hour(d1, i, 150);
        hour(d2, i, 150);
    }
    CHECK_EQ_INT(engine_detector_episodes(d1, &e1), 1);
    CHECK_EQ_INT(engine_detector_episodes(d2, &e2), 1);
    CHECK_EQ_INT(e1[0].id, e2[0].id);
    CHECK_EQ_INT(e1[0].id, idof(HR(5), 0)); /* first seen at hour 5 */
    CHECK_EQ_INT(e1[0].start, HR(0));
    char buf[17];
    engine_episode_id_format(0x00ab, buf);
    CHECK_EQ_STR(buf, "00000000000000ab");
    CHECK(idof(HR(5), 0) != engine_episode_id("010000A8900016F000169DC0", "a21002",
                                               ENGINE_PERIOD_HOUR, HR(5), 0));
    CHECK(idof(HR(5), 0) != engine_episode_id("010000A8900016F000169DC0", "a21026",
                                               ENGINE_PERIOD_DAY, HR(5), 0));
    engine_detector_destroy(d1);
    engine_detector_destroy(d2);
}

/* Limits from the registry, changing over time: SO2 100 until 2025-01-01T06:00, then 35. */
static void test_limit_changes(void)
{
    engine_registry *r;
    engine_registry_create(&r);
    engine_facility f = {.id = "F1", .name = "Plant", .lat = NAN, .lon = NAN};
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "MN1", .o2_ref = 6};
    engine_limit l1 = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21026",
                       .value = 100, .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                       .valid_from = INT64_MIN, .valid_to = HR(6)};
    engine_limit l2 = l1;
    l2.value = 35;
    l2.valid_from = HR(6);
    l2.valid_to = INT64_MAX;
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, NULL, 0), 0);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, NULL, 0), 0);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l1, NULL, 0), 0);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l2, NULL, 0), 0);
    const engine_outlet *po = engine_registry_outlet_by_mn(r, "MN1", 3);

    engine_detector *d = NULL;
    engine_detector_create("MN1", "a21026", ENGINE_PERIOD_HOUR, NULL, &d);
    char got[16] = "";
    for (int i = 0; i < 9; i++) {
        const engine_limit *l = engine_registry_limit_find(r, po, "a21026", ENGINE_PERIOD_HOUR,
                                                           HR(i));
        feed(d, HR(i), 50, l ? l->value : NAN, 'N', true);
        got[i] = lg.s[0] ? lg.s[0] : '.';
    }
    CHECK_EQ_STR(got, "......OEE"); /* 50 complies with 100, exceeds 35 */
    const engine_episode *e;
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 1);
    CHECK_EQ_INT(e[0].start, HR(6));
    CHECK(fabs(e[0].peak_multiple - 15.0 / 35) < 1e-12);
    CHECK_EQ_INT(e[0].peak_limit, 35);
    engine_detector_destroy(d);
    engine_registry_destroy(r);
}

static void test_daily_and_horizon(void)
{
    engine_detector_opts o;
    engine_detector_opts_init(&o);
    o.horizon = 10;
    engine_detector *d = NULL;
    CHECK_EQ_INT(engine_detector_create("MN2", "w01018", ENGINE_PERIOD_DAY, &o, &d), 0);
    const int64_t D = 86400;
    CHECK_EQ_STR(feed(d, H0, 60, 50, 'N', true), "O");
    CHECK_EQ_STR(feed(d, H0 + D, 55, 50, 'N', true), "E");
    CHECK_EQ_STR(feed(d, H0 + 2 * D, 40, 50, 'N', true), "C");
    CHECK_EQ_STR(feed(d, H0 + 3 * D, 70, 50, 'N', true), "O");
    /* Far later data: the open episode is reported closed and forgotten, old data ignored. */
    CHECK_EQ_STR(feed(d, H0 + 30 * D, 10, 50, 'N', true), "C");
    CHECK_EQ_INT(lg.ev[0].ep.start, H0 + 3 * D);
    const engine_episode *e;
    CHECK_EQ_INT(engine_detector_episodes(d, &e), 0);
    memset(&lg, 0, sizeof lg);
    engine_period p = {H0 + 4 * D, 90, 50, 'N', true};
    CHECK_EQ_INT(engine_detector_feed(d, &p, on_event, &lg), 1);
    CHECK_EQ_INT(lg.n, 0);
    CHECK_EQ_INT(engine_detector_too_late(d), 1);
    CHECK_EQ_STR(feed(d, H0 + 21 * D, 90, 50, 'N', true), "O"); /* within the horizon */
    CHECK_EQ_STR(feed(d, H0 + 22 * D, 50, 50, 'N', true), "C");
    engine_detector_destroy(d);

    CHECK_EQ_INT(engine_detector_create("MN2", "w01018", ENGINE_PERIOD_MONTH, &o, &d), -EINVAL);
}

/* The state survives a round trip through bytes: same bytes again, same events after. */
static void test_state(void)
{
    engine_detector *d = mk(1);
    hour(d, 10, 150);
    hour(d, 11, 150);
    hour(d, 13, 150);
    hour(d, 9, 150);
    feed(d, HR(14), 0, 100, 'C', true);
    hour(d, 16, 20);
    hour(d, 18, 300);
    uint8_t *a, *b;
    size_t alen, blen;
    CHECK_EQ_INT(engine_detector_encode(d, &a, &alen), 0);
    engine_detector *d2 = NULL;
    CHECK_EQ_INT(engine_detector_decode(a, alen, &d2), 0);
    CHECK_EQ_INT(engine_detector_encode(d2, &b, &blen), 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    const engine_episode *e1, *e2;
    CHECK_EQ_INT(engine_detector_episodes(d, &e1), 2);
    CHECK_EQ_INT(engine_detector_episodes(d2, &e2), 2);
    CHECK(memcmp(e1, e2, 2 * sizeof *e1) == 0);
    /* Both go on alike. */
    char s1[32], s2[32];
    int same = 1;
    for (int i = 0; i < 40; i++) {
        int h = (i * 7) % 30;
        double v = i % 3 ? 150 : 40;
        snprintf(s1, sizeof s1, "%s", hour(d, h, v));
        uint64_t id1 = lg.n ? lg.ev[0].ep.id : 0;
        snprintf(s2, sizeof s2, "%s", hour(d2, h, v));
        uint64_t id2 = lg.n ? lg.ev[0].ep.id : 0;
        same &= strcmp(s1, s2) == 0 && id1 == id2;
    }
    CHECK(same);
    /* Every truncation, a changed episode start and a trailing byte are refused. */
    int refused = 0;
    for (size_t cut = 0; cut < alen; cut++) {
        engine_detector *x = NULL;
        refused += engine_detector_decode(a, cut, &x) == -EBADMSG;
    }
    CHECK_EQ_INT(refused, alen);
    engine_detector *x = NULL;
    b = realloc(b, alen + 1);
    b[alen] = 0;
    CHECK_EQ_INT(engine_detector_decode(b, alen + 1, &x), -EBADMSG);
    b[alen - 9] ^= 1; /* the last episode's start */
    CHECK_EQ_INT(engine_detector_decode(b, alen, &x), -EBADMSG);
    free(a);
    free(b);
    engine_detector_destroy(d);
    engine_detector_destroy(d2);
}

int main(void)
{
    test_basic();
    test_invalid_inside();
    test_late();
    test_outage();
    test_no_duplicate_ids();
    test_deterministic();
    test_limit_changes();
    test_daily_and_horizon();
    test_state();
    return tap_done();
}
