/* judge.c: exceedance judgement at ingest. Every reported hourly (2061) or daily (2031) value
 * of a pollutant that has a limit in force is fed to the episode detector of its outlet,
 * pollutant and period kind; the episode events become alert states staged into the very
 * batch that stores the values, so an alert is durable exactly when the data that raised it
 * is, and is sent only after that commit.
 *
 * Detectors live in memory. After a restart a detector is primed from the store the first
 * time its series is seen again: the stored periods within its horizon are fed with no
 * events, so a device resending an hour it had already sent does not raise the episode
 * again, and episode ids (derived from series, pollutant and start) come out the same.
 *
 * Which states are sent: an episode that opens (or reopens after late data) fires; one that
 * closes, merges into another or is retracted by corrected data resolves. Growth and peak
 * changes of a firing episode are not sent: the regulator hears of an episode once when it
 * starts and once when it ends. The revision is 2 x periods (+1 when resolved), so it grows
 * with every state sent and is the same for the same data after a restart. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "strmap.h"

#define O2_CODE "a19001"
#define HORIZON 168 /* periods a detector keeps: a week of hours, 24 weeks of days */
#define LATE_WAIT_HOURS 24
#define LATE_WAIT_DAYS 3

struct judge {
    strmap *detectors; /* "MN|code|kind" -> engine_detector */
    storage_reader *rd;  /* priming's reader, open until judge_end_batch */
    storage_point *pts;  /* priming's scratch: 2 x HORIZON points */
    judge_stats st;
};

int judge_create(judge **out)
{
    judge *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    if (strmap_create(&j->detectors) != 0) {
        free(j);
        return -ENOMEM;
    }
    *out = j;
    return 0;
}

static void free_detector(void *d)
{
    engine_detector_destroy(d);
}

void judge_destroy(judge *j)
{
    if (!j)
        return;
    strmap_destroy(j->detectors, free_detector);
    storage_reader_close(j->rd);
    free(j->pts);
    free(j);
}

void judge_get_stats(const judge *j, judge_stats *out)
{
    *out = j->st;
    out->detectors = strmap_count(j->detectors);
}

/* The value a limit applies to: the oxygen-corrected average for a ZS limit (as sent, or
 * corrected here from the outlet's reference O2 and the measured O2), else the measured one.
 * NaN when it cannot be known (no ZS value and no O2 to correct with). */
static double judged_value(const storage_point *p, const engine_limit *lim,
                           const engine_outlet *o, double o2)
{
    if (lim->basis == ENGINE_BASIS_MEASURED)
        return (p->mask & (1u << STORAGE_COL_AVG)) ? p->v[STORAGE_COL_AVG] : NAN;
    if (p->mask & (1u << STORAGE_COL_ZSAVG))
        return p->v[STORAGE_COL_ZSAVG];
    if (!(p->mask & (1u << STORAGE_COL_AVG)))
        return NAN;
    if (isnan(o->o2_ref))
        return p->v[STORAGE_COL_AVG]; /* the outlet is not corrected: measured is what counts */
    double zs;
    if (isnan(o2) || engine_o2_correct(p->v[STORAGE_COL_AVG], o2, o->o2_ref, NULL, &zs) < 0)
        return NAN;
    return zs;
}

static int iv_of_kind(int kind)
{
    return kind == ENGINE_PERIOD_DAY ? STORAGE_IV_DAY : STORAGE_IV_HOUR;
}

/* Reads the stored periods of one series before `before`, within the horizon. */
static size_t read_series(storage *st, storage_reader *rd, const char *key, int64_t from,
                          int64_t before, storage_point *out, size_t cap)
{
    storage_sid sid;
    storage_iter *it;
    if (storage_series_lookup(st, key, &sid) != 0 ||
        storage_iter_open(rd, sid, from, before - 1, &it) != 0)
        return 0;
    size_t n = 0;
    while (n < cap && storage_iter_next(it, &out[n]) == 1)
        n++;
    storage_iter_close(it);
    return n;
}

static double o2_at(const storage_point *o2, size_t n, int64_t ts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o2[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && o2[lo].ts == ts && (o2[lo].mask & (1u << STORAGE_COL_AVG)))
        return o2[lo].v[STORAGE_COL_AVG];
    return NAN;
}

void judge_end_batch(judge *j)
{
    storage_reader_close(j->rd);
    j->rd = NULL;
}

/* Feeds a new detector what the store already holds, silently. After a restart the first
 * top-of-hour creates every detector of the fleet (~260,000): they share one reader and one
 * scratch array per batch. */
static void prime(judge *j, const judge_ctx *c, engine_detector *d, const engine_outlet *o,
                  const char *code, int kind, int64_t before)
{
    int64_t step = kind == ENGINE_PERIOD_DAY ? 86400 : 3600;
    int64_t from = before - (int64_t)HORIZON * step;
    if (!j->pts && !(j->pts = malloc(2 * HORIZON * sizeof *j->pts)))
        return;
    if (!j->rd && storage_reader_open(c->st, &j->rd) != 0) {
        j->rd = NULL;
        return;
    }
    storage_point *pts = j->pts;
    storage_reader *rd = j->rd;
    char key[160];
    engine_series_key(o->mn, code, iv_of_kind(kind), key, sizeof key);
    size_t n = read_series(c->st, rd, key, from, before, pts, HORIZON);
    engine_series_key(o->mn, O2_CODE, iv_of_kind(kind), key, sizeof key);
    size_t no2 = read_series(c->st, rd, key, from, before, pts + HORIZON, HORIZON);
    for (size_t i = 0; i < n; i++) {
        const engine_limit *lim = engine_registry_limit_find(c->reg, o, code, kind, pts[i].ts);
        if (!lim)
            continue;
        double v = judged_value(&pts[i], lim, o, o2_at(pts + HORIZON, no2, pts[i].ts));
        engine_period p = {.ts = pts[i].ts, .value = v, .limit = lim->value,
                           .flag = pts[i].flag, .valid = !isnan(v)};
        engine_detector_feed(d, &p, NULL, NULL);
    }
}

typedef struct event_ctx {
    judge *j;
    const judge_ctx *c;
    const engine_outlet *o;
    const engine_limit *lim;
    int kind;
} event_ctx;

static void on_event(void *ud, const engine_episode_event *ev)
{
    event_ctx *x = ud;
    int state;
    switch (ev->type) {
    case ENGINE_EP_OPENED:
    case ENGINE_EP_REOPENED:
        state = ENGINE_ALERT_FIRING;
        x->j->st.episodes_opened += ev->type == ENGINE_EP_OPENED;
        break;
    case ENGINE_EP_CLOSED:
    case ENGINE_EP_MERGED:
    case ENGINE_EP_RETRACTED:
        state = ENGINE_ALERT_RESOLVED;
        x->j->st.episodes_closed++;
        break;
    default:
        return;
    }
    const engine_facility *f = engine_registry_facility(x->c->reg, x->o->facility_id);
    int64_t step = x->kind == ENGINE_PERIOD_DAY ? 86400 : 3600;
    char id[17];
    engine_episode_id_format(ev->ep.id, id);
    engine_alert al = {
        .id = id,
        .state = state,
        .revision = 2 * ev->ep.count + (state == ENGINE_ALERT_RESOLVED),
        .severity = ev->ep.peak_multiple >= 1.0 ? ENGINE_SEVERITY_CRITICAL
                                                : ENGINE_SEVERITY_WARNING,
        .kind = "exceedance",
        .facility_id = x->o->facility_id,
        .facility_name = f ? f->name : NULL,
        .uscc = f && f->uscc[0] ? f->uscc : NULL,
        .region = f && f->region[0] ? f->region : NULL,
        .industry = f && f->industry[0] ? f->industry : NULL,
        .outlet = x->o->code,
        .mn = x->o->mn,
        .pollutant = x->lim->pollutant,
        .unit = x->lim->unit,
        .limit = ev->ep.peak_limit,
        .value = ev->ep.peak_value,
        .multiple = ev->ep.peak_multiple,
        .start = ev->ep.start,
        .end = state == ENGINE_ALERT_RESOLVED ? ev->ep.end + step : 0,
    };
    x->j->st.alerts++;
    if (!x->c->alerts)
        return;
    void *ticket;
    if (engine_alerts_stage(x->c->alerts, x->c->batch, &al, &ticket) == 0)
        x->c->add_ack(x->c->add_ack_arg, engine_alerts_committed, ticket);
    else
        x->j->st.alerts_failed++;
}

static engine_detector *detector_for(judge *j, const judge_ctx *c, const engine_outlet *o,
                                     const char *code, int kind, int64_t ts)
{
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%d", o->mn, code, kind);
    engine_detector *d = strmap_get(j->detectors, key);
    if (d)
        return d;
    engine_detector_opts opts;
    engine_detector_opts_init(&opts);
    opts.horizon = HORIZON;
    /* Hours a unit missed come back when the HJ 212 server asks for them, within seconds
     * of its return; wait a day of hours (3 days of days) before taking them as lost. */
    opts.late_wait = kind == ENGINE_PERIOD_DAY ? LATE_WAIT_DAYS : LATE_WAIT_HOURS;
    char series[160];
    engine_series_key(o->mn, code, iv_of_kind(kind), series, sizeof series);
    if (engine_detector_create(series, code, kind, &opts, &d) != 0)
        return NULL;
    if (strmap_put(j->detectors, key, d, NULL) != 0) {
        engine_detector_destroy(d);
        return NULL;
    }
    prime(j, c, d, o, code, kind, ts);
    return d;
}

void judge_upload(judge *j, const judge_ctx *c, const engine_upload *u)
{
    int kind = u->interval == STORAGE_IV_HOUR  ? ENGINE_PERIOD_HOUR
               : u->interval == STORAGE_IV_DAY ? ENGINE_PERIOD_DAY
                                               : -1;
    if (kind < 0 || !c->reg)
        return;
    const engine_outlet *o = engine_registry_outlet_by_mn(c->reg, u->mn, strlen(u->mn));
    if (!o)
        return;
    double o2 = NAN;
    for (size_t i = 0; i < u->nvalues; i++)
        if (strcmp(u->values[i].code, O2_CODE) == 0 &&
            (u->values[i].pt.mask & (1u << STORAGE_COL_AVG)))
            o2 = u->values[i].pt.v[STORAGE_COL_AVG];
    for (size_t i = 0; i < u->nvalues; i++) {
        const engine_value *v = &u->values[i];
        const engine_limit *lim = engine_registry_limit_find(c->reg, o, v->code, kind, u->ts);
        if (!lim)
            continue;
        engine_detector *d = detector_for(j, c, o, v->code, kind, u->ts);
        if (!d)
            continue;
        double val = judged_value(&v->pt, lim, o, o2);
        engine_period p = {.ts = u->ts, .value = val, .limit = lim->value, .flag = v->pt.flag,
                           .valid = !isnan(val)};
        event_ctx x = {j, c, o, lim, kind};
        engine_detector_feed(d, &p, on_event, &x);
        j->st.periods++;
    }
}
