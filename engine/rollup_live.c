/* rollup_live.c: minute data rolled up into computed hours and days as it arrives, and the
 * live data-quality checks that need to know what each device sent when.
 *
 * Beside what a DAQ reports (MN:code:hour, MN:code:day) the engine keeps what its minutes
 * say (MN:code:hour.calc, MN:code:day.calc), by the validity rules of rollup.c, oxygen-
 * corrected with the outlet's reference O2 when the minutes carry no corrected value, and
 * flow-weighted for water outlets that say so. Both are needed: regulators compare them, and
 * a reported hour its minutes do not support is itself a finding.
 *
 * The ingest hot path only notes what is due: an hour is due when its last minute record
 * arrives, when the device's minutes move on to a later hour, when its reported hour
 * arrives, or when minutes of an earlier hour arrive late; a day is due once its last hour
 * is computed, or when a later hour of it is recomputed. Due work waits for the commit of
 * the batch holding its data (an acknowledgement on that batch), then runs on the loop in
 * slices of at most a few milliseconds, reading the committed minutes back from the store
 * and writing the computed points into the batch being built. So the cost per upload is one
 * hash lookup, and a top-of-hour burst of roll-ups never holds the loop for long.
 *
 * The same place keeps each device's newest data time for the silence check: an outlet
 * whose newest data is more than quality.silent_hours behind the fleet's clock (the newest
 * period end any device has sent, never ahead of the wall clock by more than an hour) is
 * silent; it resolves when the outlet's data resumes.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "live.h"
#include "strmap.h"

#define MAX_MIN_CODES LIVE_MAX_MIN_CODES
#define MAX_PER_HOUR 64    /* minute records read per hour (one a minute at most) */
#define SLICE_NS 2000000   /* longest a slice of roll-ups holds the loop */
#define BUSY_SLICE_NS 200000 /* the same while uploads pour in (a top-of-hour burst) */
#define BUSY_UPLOADS 32    /* uploads in one loop iteration that make it busy */
#define SILENT_CHECK_MS 1000
#define O2_CODE "a19001"

enum { JOB_HOUR = 0, JOB_DAY = 1 };


typedef struct job {
    lout *o;
    int64_t ts;
    int kind;
} job;

/* Jobs waiting for the commit of one batch. */
typedef struct group {
    live *l;
    storage_batch *batch; /* identity only, never dereferenced */
    size_t batch_points;
    job *jobs;
    size_t n, cap;
} group;

struct live {
    uv_loop_t *loop;
    uv_idle_t idle;
    uv_timer_t timer;
    int open_handles;
    bool closing;
    engine_live_opts o;
    live_ctx_fn ctx_fn;
    void *ctx_arg;
    strmap *by_mn;            /* MN -> lout */
    lout **outlets;           /* every lout, for the silence check */
    size_t noutlets, cap_outlets;
    group *cur;               /* jobs of the batch being built */
    size_t groups_pending;
    job *ready;               /* committed: to compute */
    size_t nready, cap_ready, ready_pos;
    findings *fnd;
    int64_t clock;            /* the fleet's data clock */
    live_log *log;            /* device states in the store (live_state.c); NULL: not kept */
    uint32_t uploads_seen;    /* uploads since the last slice of roll-ups */
    engine_live_stats st;
};

void engine_live_opts_init(engine_live_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rollup = true;
    o->findings = true;
    engine_quality_opts_init(&o->quality);
    engine_rollup_opts_init(&o->rollup_opts);
}

static void on_idle(uv_idle_t *h);
static void on_timer(uv_timer_t *h);
static lout *outlet_get(live *l, const char *mn);
static void restore(live *l);

int live_create(uv_loop_t *loop, const engine_live_opts *o, live_ctx_fn ctx_fn, void *ctx_arg,
                live **out)
{
    live *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    if (o)
        l->o = *o;
    else
        engine_live_opts_init(&l->o);
    l->o.quality.rollup = NULL; /* not kept: the caller's pointer */
    l->loop = loop;
    l->ctx_fn = ctx_fn;
    l->ctx_arg = ctx_arg;
    l->clock = INT64_MIN;
    if (strmap_create(&l->by_mn) != 0 || findings_create(&l->o.quality, &l->fnd) != 0) {
        if (l->by_mn)
            strmap_destroy(l->by_mn, NULL);
        free(l);
        return -ENOMEM;
    }
    restore(l);
    uv_idle_init(loop, &l->idle);
    l->idle.data = l;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    if (l->o.findings || l->log) {
        uv_timer_start(&l->timer, on_timer, SILENT_CHECK_MS, SILENT_CHECK_MS);
        uv_unref((uv_handle_t *)&l->timer);
    }
    *out = l;
    return 0;
}

static void free_lout(void *p)
{
    lout *o = p;
    fwatch_destroy(o->fw);
    free(o);
}

/* Frees l once its handles are closed and no batch's acknowledgement still holds it. */
static void maybe_free(live *l)
{
    if (!l->closing || l->open_handles > 0 || l->groups_pending > 0)
        return;
    strmap_destroy(l->by_mn, free_lout);
    findings_destroy(l->fnd);
    live_log_close(l->log);
    free(l->outlets);
    free(l->ready);
    free(l);
}

static void on_closed(uv_handle_t *h)
{
    live *l = h->data;
    l->open_handles--;
    maybe_free(l);
}

void live_close(live *l)
{
    if (!l)
        return;
    l->closing = true;
    l->nready = l->ready_pos = 0;
    l->open_handles = 2;
    uv_close((uv_handle_t *)&l->idle, on_closed);
    uv_close((uv_handle_t *)&l->timer, on_closed);
}

void live_get_stats(const live *l, engine_live_stats *out)
{
    *out = l->st;
    out->outlets = l->noutlets;
    out->jobs_pending = l->nready - l->ready_pos;
    findings_get_stats(l->fnd, out);
}

static lout *outlet_get(live *l, const char *mn)
{
    lout *o = strmap_get(l->by_mn, mn);
    if (o || strlen(mn) >= ENGINE_ID_SIZE)
        return o;
    if (l->noutlets == l->cap_outlets) {
        size_t cap = l->cap_outlets ? 2 * l->cap_outlets : 1024;
        lout **a = realloc(l->outlets, cap * sizeof *a);
        if (!a)
            return NULL;
        l->outlets = a;
        l->cap_outlets = cap;
    }
    if (!(o = calloc(1, sizeof *o)))
        return NULL;
    strcpy(o->mn, mn);
    o->open_hour = o->last_min_ts = o->newest_end = o->silent_start = INT64_MIN;
    o->saved_hour = INT64_MIN;
    if (strmap_put(l->by_mn, mn, o, NULL) != 0) {
        free(o);
        return NULL;
    }
    l->outlets[l->noutlets++] = o;
    return o;
}

/* ---- Device state in the store (live_state.c) ------------------------------------------ */

static lout *get_for_restore(void *arg, const char *mn)
{
    return strlen(mn) < ENGINE_ID_SIZE ? outlet_get(arg, mn) : NULL;
}

/* Reads back every device's state at creation: runs continue where the last committed
 * data left them, a silence that fired resolves under its id, and devices silent since
 * before the restart are still watched. */
static void restore(live *l)
{
    judge_ctx c;
    size_t n, bad;
    if (!l->o.rollup && !l->o.findings)
        return;
    l->ctx_fn(l->ctx_arg, &c);
    if (!c.st)
        return;
    int rc = live_log_open(c.st, l->fnd, get_for_restore, l, &l->log, &n, &bad);
    if (rc != 0 && rc != -ENOENT) /* -ENOENT: a store opened without the table */
        engine_log_kv(ENGINE_LOG_ERROR, "device states could not be read; not kept",
                      "error", storage_strerror(rc), NULL);
    if (n || bad)
        engine_logf(ENGINE_LOG_INFO, "device states restored", "count=%zu unreadable=%zu", n,
                    bad);
}

/* Stages o's state into the batch being built, if it changed: the batch that also holds the
 * data and alerts that changed it. */
static void save(live *l, const judge_ctx *c, lout *o)
{
    if (!o->dirty || !l->log || !c->batch)
        return;
    if (live_log_save(l->log, c->batch, o) == 0) { /* else it stays dirty: tried again */
        o->dirty = false;
        o->saved_hour = o->newest_end == INT64_MIN ? INT64_MIN : o->newest_end / 3600;
        l->st.states_saved++;
    }
}

/* ---- Jobs: queued against the batch holding their data, run once it is committed ------- */

static void on_committed(void *arg, int status)
{
    group *g = arg;
    live *l = g->l;
    if (l->cur == g)
        l->cur = NULL;
    l->groups_pending--;
    if (status == 0 && !l->closing) {
        if (l->nready + g->n > l->cap_ready) {
            size_t cap = l->cap_ready ? l->cap_ready : 1024;
            while (cap < l->nready + g->n)
                cap *= 2;
            job *r = realloc(l->ready, cap * sizeof *r);
            if (r) {
                l->ready = r;
                l->cap_ready = cap;
            }
        }
        if (l->nready + g->n <= l->cap_ready) {
            memcpy(l->ready + l->nready, g->jobs, g->n * sizeof *g->jobs);
            l->nready += g->n;
            uv_idle_start(&l->idle, on_idle);
        }
    }
    free(g->jobs);
    free(g);
    maybe_free(l);
}

/* The group of the batch c is building: the same until that batch is flushed. */
static group *group_for(live *l, const judge_ctx *c)
{
    group *g = l->cur;
    size_t pts = storage_batch_points(c->batch);
    if (g && g->batch == c->batch && pts >= g->batch_points) {
        g->batch_points = pts;
        return g;
    }
    if (!(g = calloc(1, sizeof *g)))
        return NULL;
    g->l = l;
    g->batch = c->batch;
    g->batch_points = pts;
    l->cur = g;
    l->groups_pending++;
    c->add_ack(c->add_ack_arg, on_committed, g);
    return l->cur == g ? g : NULL; /* add_ack fails by running the callback at once */
}

static void queue(live *l, const judge_ctx *c, lout *o, int64_t ts, int kind)
{
    group *g = group_for(l, c);
    int64_t key = ts * 2 + kind;
    if (!g || (o->last_group == g && o->last_key == key))
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        job *j = realloc(g->jobs, cap * sizeof *j);
        if (!j)
            return;
        g->jobs = j;
        g->cap = cap;
    }
    g->jobs[g->n++] = (job){o, ts, kind};
    o->last_group = g;
    o->last_key = key;
}

/* ---- Reading back and rolling up ----------------------------------------------------- */

static size_t read_range(storage *st, storage_reader *rd, const char *mn, const char *code,
                         const char *iv, int64_t from, int64_t to, storage_point *out,
                         size_t cap)
{
    char key[ENGINE_SERIES_KEY_MAX + 1];
    storage_sid sid;
    storage_iter *it;
    snprintf(key, sizeof key, "%s:%s:%s", mn, code, iv);
    if (storage_series_lookup(st, key, &sid) != 0 ||
        storage_iter_open(rd, sid, from, to, &it) != 0)
        return 0;
    size_t n = 0;
    while (n < cap && storage_iter_next(it, &out[n]) == 1)
        n++;
    storage_iter_close(it);
    return n;
}

/* The AVG of the point at ts with a valid flag, else NaN. */
static double value_at(const storage_point *p, size_t n, int64_t ts)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].ts == ts)
            return (p[i].mask & (1u << STORAGE_COL_AVG)) &&
                           engine_flag_valid(p[i].flag, true, true)
                       ? p[i].v[STORAGE_COL_AVG]
                       : NAN;
    return NAN;
}

static void put_point(live *l, const judge_ctx *c, const lout *o, const char *code,
                      const char *iv, int siv, const storage_point *p)
{
    char key[ENGINE_SERIES_KEY_MAX + 1];
    storage_sid sid;
    snprintf(key, sizeof key, "%s:%s:%s", o->mn, code, iv);
    if (storage_series_ensure(c->st, key, siv, &sid) == 0)
        storage_batch_add(c->batch, sid, p);
    (void)l;
}

/* Pollutant concentrations are oxygen-corrected; O2, flow, temperature... are not. */
static bool corrected_code(const char *code)
{
    return code[0] == 'a' && (code[1] == '2' || code[1] == '3');
}

static void compare_reported(live *l, const judge_ctx *c, storage_reader *rd, lout *o,
                             const engine_outlet *eo, const char *code,
                             const engine_period_result *r, bool complete)
{
    storage_point rep;
    int64_t h = r->p.ts;
    if (!eo || !l->o.findings || !complete || !r->valid ||
        read_range(c->st, rd, o->mn, code, "hour", h, h, &rep, 1) != 1 ||
        !(rep.mask & (1u << STORAGE_COL_AVG)) || !(r->p.mask & (1u << STORAGE_COL_AVG)) ||
        !engine_flag_valid(rep.flag, true, true))
        return;
    const engine_quality_opts *q = &l->o.quality;
    double rv = rep.v[STORAGE_COL_AVG], cv = r->p.v[STORAGE_COL_AVG];
    double tol = q->mismatch_rel * fabs(cv);
    if (tol < q->mismatch_abs)
        tol = q->mismatch_abs;
    bool bad = fabs(rv - cv) > tol;
    l->st.compared++;
    l->st.mismatches += bad;
    if (!o->fw && !(o->fw = fwatch_create()))
        return;
    frun *run = fwatch_mismatch_run(o->fw, code);
    finding_key k = {eo, code, ENGINE_FIND_MISMATCH};
    if (run) {
        findings_feed(l->fnd, c, &k, run, h, 3600, bad, rv, cv, 1);
        o->dirty = true;
    }
}

static void compute_hour(live *l, const judge_ctx *c, storage_reader *rd, lout *o, int64_t h)
{
    const engine_outlet *eo = c->reg ? engine_registry_outlet_by_mn(c->reg, o->mn,
                                                                    strlen(o->mn))
                                     : NULL;
    engine_rollup_opts ro = l->o.rollup_opts;
    ro.medium = eo ? eo->medium : ENGINE_MEDIUM_GAS;
    ro.flow_weighted = eo && eo->flow_weighted;
    uint32_t min_minutes = ro.min_valid_hour;
    double o2_ref = eo ? eo->o2_ref : NAN;
    bool correct = ro.medium == ENGINE_MEDIUM_GAS && isfinite(o2_ref);
    storage_point o2p[MAX_PER_HOUR], flp[MAX_PER_HOUR], pts[MAX_PER_HOUR];
    size_t no2 = correct ? read_range(c->st, rd, o->mn, O2_CODE, "min", h, h + 3599, o2p,
                                      MAX_PER_HOUR)
                         : 0;
    size_t nfl = ro.flow_weighted ? read_range(c->st, rd, o->mn, "w00000", "min", h, h + 3599,
                                               flp, MAX_PER_HOUR)
                                  : 0;
    for (uint32_t i = 0; i < o->ncodes; i++) {
        const char *code = o->codes[i];
        size_t n = read_range(c->st, rd, o->mn, code, "min", h, h + 3599, pts, MAX_PER_HOUR);
        if (n == 0)
            continue;
        /* Each record stands for `step` minutes: the hour's spacing, else the device's. */
        int64_t step = 0;
        for (size_t j = 1; j < n; j++)
            if (step == 0 || pts[j].ts - pts[j - 1].ts < step)
                step = pts[j].ts - pts[j - 1].ts;
        if (step <= 0 || 3600 % step != 0)
            step = o->min_step > 0 ? o->min_step : 60;
        ro.min_valid_hour = (uint32_t)(((int64_t)min_minutes * 60 + step - 1) / step);
        double aux[MAX_PER_HOUR];
        if (correct && corrected_code(code)) {
            for (size_t j = 0; j < n; j++)
                aux[j] = (pts[j].mask & (1u << STORAGE_COL_ZSAVG))
                             ? NAN
                             : value_at(o2p, no2, pts[j].ts);
            engine_o2_correct_points(pts, aux, n, o2_ref, NULL);
        }
        for (size_t j = 0; j < n && nfl; j++)
            aux[j] = value_at(flp, nfl, pts[j].ts);
        engine_period_result r;
        if (engine_rollup_hour(pts, n, nfl ? aux : NULL, &ro, &r) != 0)
            continue;
        r.p.ts = h;
        put_point(l, c, o, code, "hour.calc", STORAGE_IV_HOUR, &r.p);
        l->st.hours_computed++;
        compare_reported(l, c, rd, o, eo, code, &r, (int64_t)n * step >= 3600);
    }
    int64_t day = engine_period_start(ENGINE_PERIOD_DAY, h, ro.offset_s);
    int64_t open_day = engine_period_start(ENGINE_PERIOD_DAY, o->open_hour, ro.offset_s);
    if (h + 3600 == day + 86400 || day < open_day)
        queue(l, c, o, day, JOB_DAY);
    save(l, c, o);
}

static void compute_day(live *l, const judge_ctx *c, storage_reader *rd, lout *o, int64_t d)
{
    const engine_outlet *eo = c->reg ? engine_registry_outlet_by_mn(c->reg, o->mn,
                                                                    strlen(o->mn))
                                     : NULL;
    engine_rollup_opts ro = l->o.rollup_opts;
    ro.medium = eo ? eo->medium : ENGINE_MEDIUM_GAS;
    ro.flow_weighted = eo && eo->flow_weighted;
    storage_point pts[32], flp[32];
    size_t nfl = ro.flow_weighted ? read_range(c->st, rd, o->mn, "w00000", "hour.calc", d,
                                               d + 86399, flp, 32)
                                  : 0;
    for (uint32_t i = 0; i < o->ncodes; i++) {
        size_t n = read_range(c->st, rd, o->mn, o->codes[i], "hour.calc", d, d + 86399, pts, 32);
        if (n == 0)
            continue;
        double flow[32];
        for (size_t j = 0; j < n && nfl; j++)
            flow[j] = value_at(flp, nfl, pts[j].ts);
        engine_period_result r;
        if (engine_rollup_day(pts, n, nfl ? flow : NULL, &ro, &r) != 0)
            continue;
        r.p.ts = d;
        put_point(l, c, o, o->codes[i], "day.calc", STORAGE_IV_DAY, &r.p);
        l->st.days_computed++;
    }
}

static void on_idle(uv_idle_t *h)
{
    live *l = h->data;
    judge_ctx c;
    storage_reader *rd;
    l->ctx_fn(l->ctx_arg, &c);
    if (storage_reader_open(c.st, &rd) != 0)
        return; /* try again on the next iteration */
    /* Roll-ups are acknowledged already and wait for nothing: while uploads pour in, they
     * take short slices, so that the loop's time goes to reading and acknowledging. */
    uint64_t t0 = uv_hrtime();
    bool busy = l->uploads_seen >= BUSY_UPLOADS;
    uint64_t budget = busy ? BUSY_SLICE_NS : SLICE_NS;
    unsigned every = busy ? 1 : 8;
    l->uploads_seen = 0;
    unsigned k = 0;
    while (l->ready_pos < l->nready) {
        job j = l->ready[l->ready_pos++];
        if (j.kind == JOB_HOUR)
            compute_hour(l, &c, rd, j.o, j.ts);
        else
            compute_day(l, &c, rd, j.o, j.ts);
        if (++k % every == 0 && uv_hrtime() - t0 > budget)
            break;
    }
    storage_reader_close(rd);
    if (l->ready_pos == l->nready) {
        l->nready = l->ready_pos = 0;
        uv_idle_stop(&l->idle);
    }
}

/* ---- Silence ---------------------------------------------------------------------------- */

/* The stored state keeps newest_end to the hour it was last saved in: before a restored
 * device is reported silent, its newest stored point says exactly when its data stopped.
 * Rare (a silence about to fire), so a few catalog lookups. Whether it moved. */
static bool refine_newest(live *l, const judge_ctx *c, lout *o)
{
    storage_reader *rd;
    int64_t newest = o->newest_end;
    o->restored = false;
    if (storage_reader_open(c->st, &rd) != 0)
        return false;
    const char *hcodes[8];
    size_t nh = o->fw ? fwatch_codes(o->fw, hcodes, 8) : 0;
    for (size_t i = 0; i < o->ncodes + nh; i++) {
        bool min = i < o->ncodes;
        char key[ENGINE_SERIES_KEY_MAX + 1];
        storage_sid sid;
        storage_point p;
        snprintf(key, sizeof key, "%s:%s:%s", o->mn, min ? o->codes[i] : hcodes[i - o->ncodes],
                 min ? "min" : "hour");
        int64_t len = min ? (o->min_step > 0 ? o->min_step : 60) : 3600;
        if (storage_series_lookup(c->st, key, &sid) == 0 && storage_latest(rd, sid, &p) == 0 &&
            p.ts + len > newest)
            newest = p.ts + len;
    }
    storage_reader_close(rd);
    (void)l;
    if (newest == o->newest_end)
        return false;
    o->newest_end = newest;
    return true;
}

static void on_timer(uv_timer_t *h)
{
    live *l = h->data;
    judge_ctx c;
    l->ctx_fn(l->ctx_arg, &c);
    if (l->log && c.batch)
        live_log_prune_step(l->log, c.batch, l->outlets, l->noutlets);
    if (l->clock == INT64_MIN || !c.reg || !l->o.findings)
        return;
    int64_t limit = (int64_t)(l->o.quality.silent_hours * 3600);
    for (size_t i = 0; i < l->noutlets; i++) {
        lout *o = l->outlets[i];
        /* The device's record for the period that just ended may be in flight. */
        int64_t grace = o->last_min_ts != INT64_MIN && o->min_step > 0 ? o->min_step : 3600;
        if (o->silent_start != INT64_MIN || o->newest_end == INT64_MIN ||
            l->clock - o->newest_end <= limit + grace)
            continue;
        const engine_outlet *eo = engine_registry_outlet_by_mn(c.reg, o->mn, strlen(o->mn));
        if (!eo)
            continue;
        if (o->restored && refine_newest(l, &c, o) &&
            l->clock - o->newest_end <= limit + grace)
            continue;
        o->silent_start = o->newest_end;
        o->dirty = true;
        finding_key k = {eo, "", ENGINE_FIND_SILENT};
        findings_raise(l->fnd, &c, &k, o->newest_end, 0,
                       (double)(l->clock - o->newest_end) / 3600.0,
                       l->o.quality.silent_hours, false);
        save(l, &c, o);
    }
}

/* Data from o ending at end (period start ts): resolves a silence, or reports one seen only
 * now (the fleet clock never passed it, e.g. the only device). */
static void note_data(live *l, const judge_ctx *c, lout *o, int64_t ts, int64_t end)
{
    if (end > l->clock) {
        int64_t cap = (int64_t)time(NULL) + 3600; /* a device far ahead moves nothing */
        l->clock = end < cap ? end : (l->clock > cap ? l->clock : cap);
    }
    if (o->silent_start != INT64_MIN)
        o->dirty = true;
    if (o->newest_end != INT64_MIN && ts >= o->newest_end && l->o.findings && c->reg) {
        const engine_outlet *eo = engine_registry_outlet_by_mn(c->reg, o->mn, strlen(o->mn));
        double limit = l->o.quality.silent_hours;
        double hours = (double)(ts - o->newest_end) / 3600.0;
        finding_key k = {eo, "", ENGINE_FIND_SILENT};
        if (eo && o->silent_start != INT64_MIN) {
            findings_raise(l->fnd, c, &k, o->silent_start, ts,
                           (double)(ts - o->silent_start) / 3600.0, limit, true);
        } else if (eo && hours > limit) {
            findings_raise(l->fnd, c, &k, o->newest_end, 0, hours, limit, false);
            findings_raise(l->fnd, c, &k, o->newest_end, ts, hours, limit, true);
        }
        o->silent_start = INT64_MIN;
    }
    if (end > o->newest_end)
        o->newest_end = end;
    if (o->newest_end / 3600 != o->saved_hour)
        o->dirty = true; /* keep the stored newest data time within the hour */
}

/* ---- The hook --------------------------------------------------------------------------- */

static void note_codes(lout *o, const engine_upload *u)
{
    for (size_t i = 0; i < u->nvalues; i++) {
        const char *code = u->values[i].code;
        uint32_t k = 0;
        while (k < o->ncodes && strcmp(o->codes[k], code) != 0)
            k++;
        if (k == o->ncodes && k < MAX_MIN_CODES && strlen(code) < ENGINE_POLLUTANT_SIZE &&
            u->values[i].pt.mask) {
            strcpy(o->codes[o->ncodes++], code);
            o->dirty = true;
        }
    }
}

static void minute_upload(live *l, const judge_ctx *c, lout *o, const engine_upload *u)
{
    if (o->last_min_ts != INT64_MIN && u->ts > o->last_min_ts) {
        int64_t d = u->ts - o->last_min_ts;
        if (d >= 60 && d <= 3600 && 3600 % d == 0 && d != o->min_step) {
            o->min_step = d; /* the device's current interval: it may change */
            o->dirty = true;
        }
    }
    if (u->ts > o->last_min_ts)
        o->last_min_ts = u->ts;
    note_codes(o, u);
    if (!l->o.rollup)
        return;
    int64_t hour = engine_period_start(ENGINE_PERIOD_HOUR, u->ts, 0);
    int64_t step = o->min_step > 0 ? o->min_step : 60;
    if (o->open_hour == INT64_MIN || hour > o->open_hour) {
        if (o->open_hour != INT64_MIN)
            queue(l, c, o, o->open_hour, JOB_HOUR); /* the device moved on */
        o->open_hour = hour;
        o->dirty = true;
    } else if (hour < o->open_hour) {
        queue(l, c, o, hour, JOB_HOUR); /* late minutes */
        return;
    }
    if (u->ts + step >= hour + 3600)
        queue(l, c, o, hour, JOB_HOUR); /* the hour's last record */
}

/* A reported hour: compared once its minutes are computed (again if they were), and
 * judged for findings. */
static void reported_hour(live *l, const judge_ctx *c, lout *o, const engine_upload *u)
{
    if (l->o.rollup && o->open_hour != INT64_MIN && u->ts <= o->open_hour &&
        u->ts > o->open_hour - 48 * 3600)
        queue(l, c, o, u->ts, JOB_HOUR);
    const engine_outlet *eo =
        c->reg ? engine_registry_outlet_by_mn(c->reg, u->mn, strlen(u->mn)) : NULL;
    if (!eo || !l->o.findings)
        return;
    if (!o->fw && !(o->fw = fwatch_create()))
        return;
    findings_hour(l->fnd, c, o->fw, eo, u);
    o->dirty = true;
}

void live_upload(live *l, const judge_ctx *c, const engine_upload *u)
{
    if ((!l->o.rollup && !l->o.findings) || u->interval == STORAGE_IV_RTD)
        return;
    l->uploads_seen++;
    lout *o = outlet_get(l, u->mn);
    if (!o)
        return;
    if (o->restored) {
        o->restored = false;
        /* The hour before the one the device was in when the engine stopped may have been
         * due and not yet computed: compute it again (the same result if it was). */
        if (l->o.rollup && u->interval == STORAGE_IV_MIN && o->open_hour != INT64_MIN)
            queue(l, c, o, o->open_hour - 3600, JOB_HOUR);
    }
    int64_t len = u->interval == STORAGE_IV_MIN    ? (o->min_step > 0 ? o->min_step : 60)
                  : u->interval == STORAGE_IV_HOUR ? 3600
                                                   : 86400;
    note_data(l, c, o, u->ts, u->ts + len);
    if (u->interval == STORAGE_IV_MIN)
        minute_upload(l, c, o, u);
    else if (u->interval == STORAGE_IV_HOUR)
        reported_hour(l, c, o, u);
    save(l, c, o);
}
