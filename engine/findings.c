/* findings.c: data-quality findings as they happen, raised as alerts.
 *
 * quality.c judges sorted arrays after the fact; the live path cannot wait for an array. Here
 * each condition regulators watch for is a run over consecutive periods of one outlet (and
 * pollutant): a flat line is a run of identical judged hourly values, zeros a run of zero
 * values while the plant runs, dilution a run of hours whose O2 is above the outlet's own
 * recent normal, a flagged day a run of days with too many C/M/D/B hours, a mismatch a run of
 * hours whose reported average its minutes do not support. A run fires once it is long enough
 * and resolves at the first period that breaks it, exactly like an exceedance episode: one
 * alert id per run (derived from the outlet, code, kind and the run's start), first firing,
 * then resolved, staged into the batch that holds the data that decided it.
 *
 * Runs are fed in time order. Hours missing inside an hourly run wait for history pulled
 * later (a gap: FIND_GAP_WAIT), which makes the run whole again or splits it; any other
 * period older than the run's last one is not judged here: late data cannot rewrite a run
 * already reported. The batch check (engine_quality_check) sees everything. RULES.md, "Late
 * hours". The thresholds are engine_quality_opts, the same the batch check uses, set from
 * the [quality] settings.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "live.h"

#define O2_CODE "a19001"
#define MAX_CODES 8
#define DAY_HOURS 0xFFFFFFu /* the 24 hours of the day being counted, in the day masks */
_Static_assert(FIND_GAP_WAIT <= 8, "the next day's hours waited for fit in the day masks"); /* codes judged per outlet: its limited pollutants and O2 */

/* Memory per outlet: ~100 bytes, 130 per code judged (an outlet has 3-5), and 336 for the O2
 * baseline of a gas outlet: about 1 KiB; with the rest of a device's live state ~1.4 KiB,
 * 440 MB for 300,000 devices (tools/bench/live_state). */

struct findings {
    engine_quality_opts q;
    engine_live_stats st;
};

typedef struct fcode {
    char code[ENGINE_POLLUTANT_SIZE];
    frun flat, zeros, mismatch;
} fcode;

struct fwatch {
    fcode *codes;             /* grown one code at a time: outlets have few */
    uint32_t ncodes;
    /* the local day being counted: hours seen and hours flagged C/M/D/B, as bit masks (bit
     * i the day's hour i; bits 24-31 the next day's first hours, see judge_flagged) */
    int64_t day;
    uint32_t day_seen, day_bad;
    frun flagged;
    /* dilution: the outlet's last o2_window judged hourly O2 values (hundredths of %) */
    uint16_t *o2;             /* a ring of o2_cap values, NULL until the first */
    uint32_t o2_n, o2_pos, o2_cap;
    frun dilution;
};

void frun_init(frun *r)
{
    memset(r, 0, sizeof *r);
    r->last = INT64_MIN;
    r->gap_start = INT64_MIN;
}

int findings_create(const engine_quality_opts *o, findings **out)
{
    findings *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    if (o)
        f->q = *o;
    else
        engine_quality_opts_init(&f->q);
    *out = f;
    return 0;
}

void findings_destroy(findings *f)
{
    free(f);
}

void findings_get_stats(const findings *f, engine_live_stats *out)
{
    out->findings_fired = f->st.findings_fired;
    out->findings_resolved = f->st.findings_resolved;
    out->alerts_failed += f->st.alerts_failed;
}

static int severity_of(int kind)
{
    switch (kind) {
    case ENGINE_FIND_FLATLINE:
    case ENGINE_FIND_DILUTION: return ENGINE_SEVERITY_CRITICAL; /* signs of tampering */
    case ENGINE_FIND_FLAGGED_DAY: return ENGINE_SEVERITY_INFO;
    default: return ENGINE_SEVERITY_WARNING;
    }
}

static const char *unit_of(int kind)
{
    switch (kind) {
    case ENGINE_FIND_SILENT: return "h";
    case ENGINE_FIND_DILUTION: return "%";
    case ENGINE_FIND_FLAGGED_DAY: return "share";
    default: return NULL;
    }
}

/* Stages one alert state of a finding into c->batch. */
static void emit(findings *f, const judge_ctx *c, const finding_key *k, int state, int64_t start,
                 int64_t end, double value, double ref)
{
    const engine_outlet *o = k->outlet;
    const engine_facility *fac = c->reg ? engine_registry_facility(c->reg, o->facility_id) : NULL;
    char id[17];
    engine_episode_id_format(engine_episode_id(o->mn, k->code, 32 + k->kind, start, 0), id);
    bool rel = (k->kind == ENGINE_FIND_DILUTION || k->kind == ENGINE_FIND_MISMATCH) && ref != 0;
    engine_alert al = {
        .id = id,
        .state = state,
        .revision = state == ENGINE_ALERT_RESOLVED ? 2 : 1,
        .severity = severity_of(k->kind),
        .kind = engine_finding_name(k->kind),
        .facility_id = o->facility_id,
        .facility_name = fac ? fac->name : NULL,
        .uscc = fac && fac->uscc[0] ? fac->uscc : NULL,
        .region = fac && fac->region[0] ? fac->region : NULL,
        .industry = fac && fac->industry[0] ? fac->industry : NULL,
        .outlet = o->code,
        .mn = o->mn,
        .pollutant = k->code[0] ? k->code : NULL,
        .unit = unit_of(k->kind),
        .limit = isfinite(ref) ? ref : 0,
        .value = isfinite(value) ? value : 0,
        .multiple = rel && isfinite(value) ? (value - ref) / ref : 0,
        .start = start,
        .end = state == ENGINE_ALERT_RESOLVED ? end : 0,
    };
    if (state == ENGINE_ALERT_FIRING)
        f->st.findings_fired++;
    else
        f->st.findings_resolved++;
    if (!c->alerts)
        return;
    void *ticket;
    if (engine_alerts_stage(c->alerts, c->batch, &al, &ticket) == 0)
        c->add_ack(c->add_ack_arg, engine_alerts_committed, ticket);
    else
        f->st.alerts_failed++;
}

void findings_raise(findings *f, const judge_ctx *c, const finding_key *k, int64_t start,
                    int64_t end, double value, double ref, bool resolved)
{
    emit(f, c, k, resolved ? ENGINE_ALERT_RESOLVED : ENGINE_ALERT_FIRING, start, end, value,
         ref);
}

/* Ends the run: a run that fired resolves, with its end the end of its last period. */
static void run_close(findings *f, const judge_ctx *c, const finding_key *k, frun *r,
                      int64_t step)
{
    if (r->fired)
        emit(f, c, k, ENGINE_ALERT_RESOLVED, r->start, r->last + step, r->value, r->ref);
    frun_init(r);
}

static void run_fire(findings *f, const judge_ctx *c, const finding_key *k, frun *r,
                     uint32_t min_count)
{
    if (!r->fired && r->count >= (min_count ? min_count : 1)) {
        r->fired = true;
        emit(f, c, k, ENGINE_ALERT_FIRING, r->start, 0, r->value, r->ref);
    }
}

/* Periods of the gap filled from its first on. */
static uint32_t gap_filled_front(const frun *r)
{
    uint32_t n = 0;
    while (n < 64 && (r->filled >> n & 1))
        n++;
    return n;
}

/* The gap stays open: the run before it ends where its periods stop (resolving if it fired)
 * and the periods after it are the run from now on, a new one with its own start. */
static void gap_split(findings *f, const judge_ctx *c, const finding_key *k, frun *r,
                      int64_t step, uint32_t min_count)
{
    int64_t end = r->gap_start + (int64_t)gap_filled_front(r) * step;
    if (r->fired)
        emit(f, c, k, ENGINE_ALERT_RESOLVED, r->start, end, r->value, r->ref);
    r->start = r->gap_end;
    r->count = r->post;
    r->value = r->post_value;
    r->ref = r->post_ref;
    r->fired = false;
    r->gap_start = INT64_MIN;
    run_fire(f, c, k, r, min_count);
}

/* Whether value continues run r (flat lines: equal to its value; others: any). */
static bool continues(const findings *f, const finding_key *k, const frun *r, double value)
{
    return k->kind != ENGINE_FIND_FLATLINE || fabs(value - r->value) <= f->q.flat_tolerance;
}

/* A late period inside the run's gap: it fills it, or breaks the run there. */
static void gap_late(findings *f, const judge_ctx *c, const finding_key *k, frun *r,
                     int64_t ts, int64_t step, bool cond, double value, uint32_t min_count)
{
    uint32_t bit = (uint32_t)((ts - r->gap_start) / step);
    if (!cond || !continues(f, k, r, value)) {
        r->filled &= bit ? (UINT64_C(1) << bit) - 1 : 0; /* the run before stops here */
        gap_split(f, c, k, r, step, min_count);
        return;
    }
    r->filled |= UINT64_C(1) << bit;
    uint32_t len = (uint32_t)((r->gap_end - r->gap_start) / step);
    if (gap_filled_front(r) < len)
        return;
    r->count += len + r->post; /* whole again: one run, under its first start */
    if (k->kind != ENGINE_FIND_FLATLINE && r->post_value > r->value)
        r->value = r->post_value;
    r->gap_start = INT64_MIN;
    run_fire(f, c, k, r, min_count);
}

void findings_feed(findings *f, const judge_ctx *c, const finding_key *k, frun *r, int64_t ts,
                   int64_t step, bool cond, double value, double ref, uint32_t min_count)
{
    bool flat = k->kind == ENGINE_FIND_FLATLINE;
    if (r->last != INT64_MIN && ts <= r->last) {
        if (r->gap_start != INT64_MIN && ts >= r->gap_start && ts < r->gap_end)
            gap_late(f, c, k, r, ts, step, cond, value, min_count);
        return; /* else late: this run has moved on */
    }
    if (r->gap_start != INT64_MIN) {
        /* Periods after a gap: the gap waits for late periods while they go on, up to
         * FIND_GAP_WAIT of them, and never long enough for them to fire on their own. */
        if (cond && ts == r->last + step && continues(f, k, r, value) &&
            r->post < FIND_GAP_WAIT && r->post + 1 < (min_count ? min_count : 1)) {
            r->last = ts;
            r->post++;
            if (!flat && value > r->post_value)
                r->post_value = value;
            return;
        }
        gap_split(f, c, k, r, step, min_count);
        if (cond && ts == r->last + step && continues(f, k, r, value)) {
            r->last = ts; /* the periods after the gap go on as the run */
            r->count++;
            if (!flat && value > r->value)
                r->value = value;
            run_fire(f, c, k, r, min_count);
            return;
        }
    }
    if (r->last != INT64_MIN && cond && step == 3600 && ts > r->last + step &&
        ts - r->last - step <= 64 * step && continues(f, k, r, value) && min_count > 1) {
        /* Hours missing inside the run: history pulled later may fill them. */
        r->gap_start = r->last + step;
        r->gap_end = ts;
        r->filled = 0;
        r->post = 1;
        r->post_value = value;
        r->post_ref = ref;
        r->last = ts;
        return;
    }
    if (r->last != INT64_MIN && (!cond || ts != r->last + step || !continues(f, k, r, value)))
        run_close(f, c, k, r, step);
    if (!cond)
        return;
    if (r->last == INT64_MIN) {
        r->start = ts;
        r->value = value;
        r->ref = ref;
        r->count = 0;
        r->fired = false;
    } else if (!flat && value > r->value) {
        r->value = value;
    }
    r->last = ts;
    r->count++;
    run_fire(f, c, k, r, min_count);
}

/* ---- Per-outlet checks on reported hours ------------------------------------------------- */

fwatch *fwatch_create(void)
{
    fwatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->day = INT64_MIN;
    frun_init(&w->flagged);
    frun_init(&w->dilution);
    return w;
}

void fwatch_destroy(fwatch *w)
{
    if (!w)
        return;
    free(w->o2);
    free(w->codes);
    free(w);
}

static fcode *code_slot(fwatch *w, const char *code)
{
    for (uint32_t i = 0; i < w->ncodes; i++)
        if (strcmp(w->codes[i].code, code) == 0)
            return &w->codes[i];
    if (w->ncodes == MAX_CODES || strlen(code) >= ENGINE_POLLUTANT_SIZE)
        return NULL;
    fcode *a = realloc(w->codes, (w->ncodes + 1) * sizeof *a);
    if (!a)
        return NULL;
    w->codes = a;
    fcode *s = &w->codes[w->ncodes++];
    strcpy(s->code, code);
    frun_init(&s->flat);
    frun_init(&s->zeros);
    frun_init(&s->mismatch);
    return s;
}

frun *fwatch_mismatch_run(fwatch *w, const char *code)
{
    fcode *s = code_slot(w, code);
    return s ? &s->mismatch : NULL;
}

static bool has_avg(const storage_point *p)
{
    return (p->mask & (1u << STORAGE_COL_AVG)) && isfinite(p->v[STORAGE_COL_AVG]);
}

/* Whether the plant runs in this hour: by its flow when the upload carries one (a flow of
 * unknown validity: not known, NaN), else taken as running. */
static int running_of(const findings *f, const engine_outlet *o, const engine_upload *u)
{
    const char *flow = o->medium == ENGINE_MEDIUM_WATER ? "w00000" : "a00000";
    for (size_t i = 0; i < u->nvalues; i++) {
        const engine_value *v = &u->values[i];
        if (strcmp(v->code, flow) != 0)
            continue;
        if (!has_avg(&v->pt) || !engine_flag_valid(v->pt.flag, true, true))
            return -1;
        return v->pt.v[STORAGE_COL_AVG] > f->q.running_flow;
    }
    return 1;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* The dilution threshold from the outlet's recent O2 (hundredths of %): median + max(k *
 * MAD, margin), or the absolute maximum when set and lower; NaN while the baseline is short. */
static double o2_threshold(const findings *f, const fwatch *w)
{
    const engine_quality_opts *q = &f->q;
    double thr = NAN;
    if (w->o2_n >= q->o2_min_baseline && w->o2_n > 0) {
        uint16_t s[w->o2_n];
        int32_t dev[w->o2_n];
        memcpy(s, w->o2, w->o2_n * sizeof *s);
        qsort(s, w->o2_n, sizeof *s, cmp_u16);
        uint32_t n = w->o2_n;
        double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
        for (uint32_t i = 0; i < n; i++)
            dev[i] = (int32_t)fabs(2.0 * s[i] - 2.0 * med); /* doubled: stays integral */
        uint16_t d[n];
        for (uint32_t i = 0; i < n; i++)
            d[i] = (uint16_t)(dev[i] > 65535 ? 65535 : dev[i]);
        qsort(d, n, sizeof *d, cmp_u16);
        double mad = (n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2.0) / 2.0;
        double margin = q->o2_k * mad / 100.0;
        thr = med / 100.0 + (margin > q->o2_min_margin ? margin : q->o2_min_margin);
    }
    if (isfinite(q->o2_abs_max) && (!isfinite(thr) || q->o2_abs_max < thr))
        thr = q->o2_abs_max;
    return thr;
}

static void o2_push(const findings *f, fwatch *w, double o2)
{
    uint32_t cap = f->q.o2_window;
    if (cap == 0)
        return;
    if (!w->o2) {
        if (!(w->o2 = calloc(cap, sizeof *w->o2)))
            return;
        w->o2_cap = cap;
    }
    if (cap != w->o2_cap)
        return; /* cannot happen: the window is fixed for the process */
    double h = round(o2 * 100.0);
    w->o2[w->o2_pos] = (uint16_t)(h < 0 ? 0 : h > 65535 ? 65535 : h);
    w->o2_pos = (w->o2_pos + 1) % cap;
    if (w->o2_n < cap)
        w->o2_n++;
}

static void judge_dilution(findings *f, const judge_ctx *c, fwatch *w, const finding_key *k,
                           int64_t ts, bool judged, double o2)
{
    double thr = judged ? o2_threshold(f, w) : NAN;
    bool cond = judged && isfinite(thr) && o2 > thr;
    findings_feed(f, c, k, &w->dilution, ts, 3600, cond, o2, thr, 1);
    if (judged)
        o2_push(f, w, o2);
}

/* Judges the day being counted on its share of flagged hours, then counts the next one: its
 * first hours, already seen, move down to their place. */
static void next_day(findings *f, const judge_ctx *c, fwatch *w, const engine_outlet *o)
{
    uint32_t seen = w->day_seen & DAY_HOURS, bad = w->day_bad & DAY_HOURS;
    if (seen) {
        double share = (double)__builtin_popcount(bad) / (double)__builtin_popcount(seen);
        finding_key k = {o, "", ENGINE_FIND_FLAGGED_DAY};
        findings_feed(f, c, &k, &w->flagged, w->day, 86400, share > f->q.flagged_share, share,
                      f->q.flagged_share, 1);
    }
    w->day += 86400;
    w->day_seen >>= 24;
    w->day_bad >>= 24;
}

/* Counts the hour into the local day being counted (bits 0-23 of the masks) or into the
 * first hours of the next one (bits 24-31). A day is judged when all its hours are in, or
 * once the next day is FIND_GAP_WAIT hours old: hours of a gap over midnight, pulled back
 * after the next day's first hours, still count in their own day. */
static void judge_flagged(findings *f, const judge_ctx *c, fwatch *w, const engine_outlet *o,
                          int64_t ts, bool bad)
{
    int64_t day = engine_period_start(ENGINE_PERIOD_DAY, ts, f->q.offset_s);
    if (w->day == INT64_MIN) {
        w->day = day;
        w->day_seen = w->day_bad = 0;
    }
    if (day < w->day)
        return; /* a late hour of a day already judged */
    if (day > w->day + 86400) { /* days later: the day and the next are as done as they get */
        next_day(f, c, w, o);
        next_day(f, c, w, o);
        w->day = day;
        w->day_seen = w->day_bad = 0;
    }
    while (ts - w->day >= (24 + FIND_GAP_WAIT) * 3600)
        next_day(f, c, w, o);
    uint32_t bit = 1u << ((ts - w->day) / 3600);
    w->day_seen |= bit;
    if (bad)
        w->day_bad |= bit;
    else
        w->day_bad &= ~bit;
    if ((w->day_seen & DAY_HOURS) == DAY_HOURS)
        next_day(f, c, w, o);
}

static bool limited(const judge_ctx *c, const engine_outlet *o, const char *code, int64_t ts)
{
    return engine_registry_limit_find(c->reg, o, code, ENGINE_PERIOD_HOUR, ts) ||
           engine_registry_limit_find(c->reg, o, code, ENGINE_PERIOD_DAY, ts);
}

void findings_hour(findings *f, const judge_ctx *c, fwatch *w, const engine_outlet *o,
                   const engine_upload *u)
{
    const engine_quality_opts *q = &f->q;
    int running = running_of(f, o, u);
    uint32_t flat_n = (uint32_t)ceil(q->flat_hours), zero_n = (uint32_t)ceil(q->zero_hours);
    bool bad = false;
    for (size_t i = 0; i < u->nvalues; i++) {
        const engine_value *v = &u->values[i];
        int slot = engine_flag_slot(v->pt.flag, true);
        bool is_o2 = strcmp(v->code, O2_CODE) == 0;
        if (!is_o2 && !limited(c, o, v->code, u->ts))
            continue;
        bad |= slot == ENGINE_FLAG_C || slot == ENGINE_FLAG_M || slot == ENGINE_FLAG_D ||
               slot == ENGINE_FLAG_B;
        fcode *s = code_slot(w, v->code);
        if (!s)
            continue;
        bool judged = running == 1 && has_avg(&v->pt) &&
                      engine_flag_valid(v->pt.flag, true, true);
        double val = judged ? v->pt.v[STORAGE_COL_AVG] : NAN;
        bool zero = judged && fabs(val) <= q->zero_eps;
        finding_key kf = {o, s->code, ENGINE_FIND_FLATLINE};
        findings_feed(f, c, &kf, &s->flat, u->ts, 3600, judged && !zero, val, q->flat_hours,
                      flat_n < 2 ? 2 : flat_n);
        finding_key kz = {o, s->code, ENGINE_FIND_ZEROS};
        findings_feed(f, c, &kz, &s->zeros, u->ts, 3600, zero, val, q->zero_hours,
                      zero_n < 1 ? 1 : zero_n);
        if (is_o2) {
            finding_key kd = {o, O2_CODE, ENGINE_FIND_DILUTION};
            judge_dilution(f, c, w, &kd, u->ts, judged, val);
        }
    }
    judge_flagged(f, c, w, o, u->ts, bad);
}

/* ---- State as bytes (kept in the store with the data that changed it) ------------------ */

/* A run: 0 (none), or 1 and its fields, or 2, its fields and its gap's. */
static void put_run(wbuf *b, const frun *r)
{
    put_u8(b, r->last == INT64_MIN ? 0 : r->gap_start == INT64_MIN ? 1 : 2);
    if (r->last == INT64_MIN)
        return;
    put_u64(b, (uint64_t)r->start);
    put_u64(b, (uint64_t)r->last);
    put_f64(b, r->value);
    put_f64(b, r->ref);
    put_u32(b, r->count);
    put_u8(b, r->fired);
    if (r->gap_start == INT64_MIN)
        return;
    put_u64(b, (uint64_t)r->gap_start);
    put_u64(b, (uint64_t)r->gap_end);
    put_u64(b, r->filled);
    put_u32(b, r->post);
    put_f64(b, r->post_value);
    put_f64(b, r->post_ref);
}

/* A stored time the engine can do arithmetic on: within +-34,000 years of 1970. */
static bool time_ok(int64_t t)
{
    return t > -(INT64_C(1) << 40) && t < (INT64_C(1) << 40);
}

static void get_run(rbuf *b, frun *r)
{
    frun_init(r);
    uint8_t present = get_u8(b);
    if (present == 0)
        return;
    r->start = (int64_t)get_u64(b);
    r->last = (int64_t)get_u64(b);
    r->value = get_f64(b);
    r->ref = get_f64(b);
    r->count = get_u32(b);
    uint8_t fired = get_u8(b);
    if (present > 2 || fired > 1 || !time_ok(r->start) || !time_ok(r->last) ||
        r->start > r->last)
        b->bad = true;
    r->fired = fired;
    if (present != 2)
        return;
    r->gap_start = (int64_t)get_u64(b);
    r->gap_end = (int64_t)get_u64(b);
    r->filled = get_u64(b);
    r->post = get_u32(b);
    r->post_value = get_f64(b);
    r->post_ref = get_f64(b);
    /* Gaps are of hours, at most 64, between the run's start and its last period. */
    int64_t len = r->gap_end - r->gap_start;
    if (!time_ok(r->gap_start) || !time_ok(r->gap_end) || r->gap_start <= r->start ||
        r->gap_end > r->last || len <= 0 || len % 3600 || len > 64 * 3600 ||
        r->filled >> (len / 3600 - 1) >> 1 || r->post == 0)
        b->bad = true;
}

void fwatch_encode(const fwatch *w, wbuf *b)
{
    put_u64(b, (uint64_t)w->day);
    put_u32(b, w->day_seen);
    put_u32(b, w->day_bad);
    put_run(b, &w->flagged);
    put_run(b, &w->dilution);
    /* The O2 baseline oldest first, so a changed o2_window keeps the newest values. */
    put_u32(b, w->o2_n);
    if (w->o2_n) {
        /* A full ring's oldest value sits at o2_pos; a filling one starts at 0. */
        uint32_t ring = w->o2_cap;
        uint32_t first = w->o2_n == ring ? w->o2_pos : 0;
        for (uint32_t i = 0; i < w->o2_n; i++) {
            uint16_t v = w->o2[(first + i) % ring];
            uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
            put(b, le, 2);
        }
    }
    put_u8(b, (uint8_t)w->ncodes);
    for (uint32_t i = 0; i < w->ncodes; i++) {
        put_str(b, w->codes[i].code);
        put_run(b, &w->codes[i].flat);
        put_run(b, &w->codes[i].zeros);
        put_run(b, &w->codes[i].mismatch);
    }
}

int fwatch_decode(const findings *f, rbuf *b, fwatch **out)
{
    fwatch *w = fwatch_create();
    if (!w)
        return -ENOMEM;
    w->day = (int64_t)get_u64(b);
    if (w->day != INT64_MIN && !time_ok(w->day))
        b->bad = true;
    w->day_seen = get_u32(b);
    w->day_bad = get_u32(b);
    get_run(b, &w->flagged);
    get_run(b, &w->dilution);
    uint32_t n = get_u32(b);
    if (b->bad || n > (b->n - b->at) / 2)
        goto bad;
    uint32_t cap = f->q.o2_window;
    uint32_t skip = n > cap ? n - cap : 0; /* the window shrank: keep the newest */
    if (cap && n && !(w->o2 = calloc(cap, sizeof *w->o2)))
        goto oom;
    w->o2_cap = cap;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *le = take(b, 2);
        if (le && i >= skip)
            w->o2[w->o2_n++] = (uint16_t)(le[0] | le[1] << 8);
    }
    w->o2_pos = cap ? w->o2_n % cap : 0;
    uint8_t nc = get_u8(b);
    if (nc > MAX_CODES)
        goto bad;
    for (uint8_t i = 0; i < nc && !b->bad; i++) {
        char code[ENGINE_POLLUTANT_SIZE];
        get_str(b, code, sizeof code);
        uint32_t had = w->ncodes;
        fcode *s = b->bad ? NULL : code_slot(w, code);
        if (!s || w->ncodes != had + 1) /* a repeated code, or out of memory */
            goto bad;
        get_run(b, &s->flat);
        get_run(b, &s->zeros);
        get_run(b, &s->mismatch);
    }
    if (b->bad)
        goto bad;
    *out = w;
    return 0;
bad:
    fwatch_destroy(w);
    return -EBADMSG;
oom:
    fwatch_destroy(w);
    return -ENOMEM;
}

bool fwatch_time_ok(int64_t t)
{
    return t == INT64_MIN || time_ok(t);
}

size_t fwatch_codes(const fwatch *w, const char **out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < w->ncodes && n < cap; i++)
        out[n++] = w->codes[i].code;
    return n;
}
