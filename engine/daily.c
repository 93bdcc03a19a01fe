/* daily.c: the rows the record database receives, computed from stored points: one per
 * outlet, pollutant and local day (average, extremes, oxygen-corrected average, valid hours,
 * hours per flag, emission mass, the limit in force and the exceedance multiple), and one
 * per exceedance episode.
 *
 * These functions take plain sorted arrays (the hours of one pollutant, its DAQ-reported
 * days, the outlet's O2 and flow) so that the batch export, the query server's CEMS.DAILY and
 * CEMS.EXCEEDANCES, and the tests share one implementation of the rules: days roll up with
 * engine_rollup_day (>= 20 valid hours), limits are judged as ingest judges them, and
 * episodes come from engine_detector with the same series names, so an exported episode
 * carries the id of the alerts it raised. Nothing here touches the store.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define DAY_S 86400
#define SCRATCH 64 /* points of a day handled without allocating (a day holds 24 hours) */

const char *engine_row_source_name(int source)
{
    return source == ENGINE_SOURCE_REPORTED ? "reported" : "computed";
}

/* Units of the factor codes DOMAIN.md lists; a limit's own unit takes precedence. */
static const struct {
    const char *code, *unit;
} units[] = {
    {"a00000", "m3/s"},  {"a01011", "m/s"},   {"a01012", "°C"},    {"a01013", "kPa"},
    {"a01014", "%"},     {"a19001", "%"},     {"a21001", "mg/m3"}, {"a21002", "mg/m3"},
    {"a21003", "mg/m3"}, {"a21004", "mg/m3"}, {"a21005", "mg/m3"}, {"a21024", "mg/m3"},
    {"a21026", "mg/m3"}, {"a24088", "mg/m3"}, {"a34013", "mg/m3"}, {"w00000", "L/s"},
    {"w01001", ""},      {"w01018", "mg/L"},  {"w21001", "mg/L"},  {"w21003", "mg/L"},
    {"w21011", "mg/L"},
};

const char *engine_factor_unit(const char *code)
{
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(units[i].code, code) == 0)
            return units[i].unit;
    return "";
}

static bool is_concentration(const char *unit)
{
    return strcmp(unit, "mg/m3") == 0 || strcmp(unit, "mg/L") == 0;
}

static bool has(const storage_point *p, int col)
{
    return p->mask & (1u << col);
}

double engine_limit_judged_value(const storage_point *p, const engine_limit *lim,
                                 const engine_outlet *o, double o2)
{
    if (!lim || lim->basis == ENGINE_BASIS_MEASURED)
        return has(p, STORAGE_COL_AVG) ? p->v[STORAGE_COL_AVG] : NAN;
    if (has(p, STORAGE_COL_ZSAVG))
        return p->v[STORAGE_COL_ZSAVG];
    if (!has(p, STORAGE_COL_AVG))
        return NAN;
    if (!o || isnan(o->o2_ref))
        return p->v[STORAGE_COL_AVG]; /* the outlet is not corrected: measured is what counts */
    double zs;
    if (isnan(o2) || engine_o2_correct(p->v[STORAGE_COL_AVG], o2, o->o2_ref, NULL, &zs) < 0)
        return NAN;
    return zs;
}

/* Index of the first point with ts >= t. */
static size_t lower_bound(const storage_point *p, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The AVG of the point of aux at ts, NaN when there is none or (ro not NULL) its flag is not
 * valid. O2 is taken whatever its flag, as ingest corrects with any O2 sent; flows count only
 * when valid. *at walks aux forward (callers ask in increasing ts). */
static double aligned(const storage_point *aux, size_t n, size_t *at, int64_t ts,
                      const engine_rollup_opts *ro)
{
    while (*at < n && aux[*at].ts < ts)
        (*at)++;
    if (*at >= n || aux[*at].ts != ts || !has(&aux[*at], STORAGE_COL_AVG) ||
        (ro && !engine_flag_valid(aux[*at].flag, ro->t_valid, ro->none_is_normal)))
        return NAN;
    return aux[*at].v[STORAGE_COL_AVG];
}

/* Adds ZS columns corrected from O2 to the points that lack them (flags untouched: a point
 * whose O2 trips the guard simply has no corrected value). */
static void correct_o2(storage_point *p, const double *o2, size_t n, double ref)
{
    static const int from[3] = {STORAGE_COL_AVG, STORAGE_COL_MIN, STORAGE_COL_MAX};
    for (size_t i = 0; i < n; i++) {
        if (has(&p[i], STORAGE_COL_ZSAVG) || isnan(o2[i]))
            continue;
        for (int k = 0; k < 3; k++) {
            double zs;
            if (!has(&p[i], from[k]) ||
                engine_o2_correct(p[i].v[from[k]], o2[i], ref, NULL, &zs) < 0)
                continue;
            p[i].v[STORAGE_COL_ZSAVG + k] = zs;
            p[i].mask |= (uint8_t)(1u << (STORAGE_COL_ZSAVG + k));
        }
    }
}

static void judge_row(const engine_registry *reg, const engine_daily_input *in,
                      engine_daily_row *row)
{
    const engine_limit *l = NULL;
    if (reg && in->outlet) {
        l = engine_registry_limit_find(reg, in->outlet, in->pollutant, ENGINE_PERIOD_DAY,
                                       row->day);
        if (!l)
            l = engine_registry_limit_find(reg, in->outlet, in->pollutant, ENGINE_PERIOD_HOUR,
                                           row->day);
    }
    row->limit = l;
    row->unit = l && l->unit[0] ? l->unit : engine_factor_unit(in->pollutant);
    row->judged = l ? engine_limit_judged_value(&row->r.p, l, in->outlet, NAN) : NAN;
    row->multiple = NAN;
    row->exceeds = false;
    if (l && row->r.valid && isfinite(row->judged)) {
        row->multiple = (row->judged - l->value) / l->value;
        row->exceeds = row->judged > l->value;
    }
}

/* Rolls up the n hours of one day into row. */
static int computed_row(const engine_daily_input *in, const engine_rollup_opts *ro,
                        const storage_point *h, size_t n, size_t *at_o2, size_t *at_flow,
                        engine_daily_row *row)
{
    storage_point sp[SCRATCH];
    double so2[SCRATCH], sflow[SCRATCH];
    storage_point *p = sp;
    double *o2 = so2, *flow = sflow;
    void *heap = NULL;
    if (n > SCRATCH) {
        heap = malloc(n * (sizeof *p + 2 * sizeof(double)));
        if (!heap)
            return -ENOMEM;
        p = heap;
        o2 = (double *)(p + n);
        flow = o2 + n;
    }
    const char *unit = engine_factor_unit(in->pollutant);
    bool correct = in->no2 && in->outlet && isfinite(in->outlet->o2_ref) &&
                   strcmp(unit, "mg/m3") == 0;
    memcpy(p, h, n * sizeof *p);
    bool any_flow = false;
    for (size_t i = 0; i < n; i++) {
        o2[i] = correct ? aligned(in->o2, in->no2, at_o2, p[i].ts, NULL) : NAN;
        flow[i] = in->nflow ? aligned(in->flow, in->nflow, at_flow, p[i].ts, ro) : NAN;
        any_flow |= !isnan(flow[i]);
    }
    if (correct)
        correct_o2(p, o2, n, in->outlet->o2_ref);
    int rc = engine_rollup_day(p, n, any_flow ? flow : NULL, ro, &row->r);
    row->mass_kg = NAN;
    if (rc == 0 && is_concentration(unit)) {
        double mass = 0;
        bool known = false;
        for (size_t i = 0; i < n && any_flow; i++) {
            if (isnan(flow[i]) || !has(&p[i], STORAGE_COL_AVG) ||
                !engine_flag_valid(p[i].flag, ro->t_valid, ro->none_is_normal))
                continue;
            mass += engine_emission_rate_kg_h(p[i].v[STORAGE_COL_AVG], flow[i], in->flow_unit);
            known = true;
        }
        if (known)
            row->mass_kg = mass;
        else if (has(&row->r.p, STORAGE_COL_COU))
            row->mass_kg = row->r.p.v[STORAGE_COL_COU];
    }
    free(heap);
    return rc;
}

/* A row from the DAQ's daily record d. */
static void reported_row(const engine_daily_input *in, const engine_rollup_opts *ro,
                         const storage_point *d, engine_daily_row *row)
{
    memset(&row->r, 0, sizeof row->r);
    row->r.p = *d;
    row->r.p.ts = row->day;
    row->r.kind = ENGINE_PERIOD_DAY;
    row->r.flag_rollup = d->flag ? d->flag : 'N';
    row->r.valid = has(d, STORAGE_COL_AVG) &&
                   engine_flag_valid(d->flag, ro->t_valid, ro->none_is_normal);
    row->mass_kg = has(d, STORAGE_COL_COU) && is_concentration(engine_factor_unit(in->pollutant))
                       ? d->v[STORAGE_COL_COU]
                       : NAN;
}

int engine_daily_rows(const engine_registry *reg, const engine_daily_input *in,
                      const engine_rollup_opts *ro_in, engine_daily_fn fn, void *ud)
{
    engine_rollup_opts ro;
    if (ro_in)
        ro = *ro_in;
    else
        engine_rollup_opts_init(&ro);
    if (in->outlet) {
        ro.medium = in->outlet->medium;
        ro.flow_weighted = in->outlet->flow_weighted;
    }
    int64_t end = in->to_day + DAY_S; /* exclusive */
    size_t ih = lower_bound(in->hours, in->nhours, in->from_day);
    size_t id = lower_bound(in->days, in->ndays, in->from_day);
    size_t at_o2 = 0, at_flow = 0;
    engine_daily_row row;
    memset(&row, 0, sizeof row);
    row.mn = in->mn;
    row.pollutant = in->pollutant;
    row.outlet = in->outlet;
    row.facility = in->facility;
    for (;;) {
        int64_t th = ih < in->nhours ? in->hours[ih].ts : INT64_MAX;
        int64_t td = id < in->ndays ? in->days[id].ts : INT64_MAX;
        int64_t t = th < td ? th : td;
        if (t >= end)
            return 0;
        row.day = engine_period_start(ENGINE_PERIOD_DAY, t, ro.offset_s);
        int64_t next = engine_period_next(ENGINE_PERIOD_DAY, row.day, ro.offset_s);
        size_t n = 0;
        while (ih + n < in->nhours && in->hours[ih + n].ts < next)
            n++;
        const storage_point *rep = NULL;
        while (id < in->ndays && in->days[id].ts < next)
            rep = &in->days[id++]; /* the last record of the day, should there be several */
        int rc = 0;
        if (n) {
            row.source = ENGINE_SOURCE_COMPUTED;
            rc = computed_row(in, &ro, in->hours + ih, n, &at_o2, &at_flow, &row);
            ih += n;
        } else {
            row.source = ENGINE_SOURCE_REPORTED;
            reported_row(in, &ro, rep, &row);
        }
        if (rc == -EINVAL)
            continue; /* cannot happen for points of one day; skip rather than stop */
        if (rc != 0)
            return rc;
        judge_row(reg, in, &row);
        if ((rc = fn(ud, &row)) != 0)
            return rc;
    }
}

/* ---- Episodes --------------------------------------------------------------------------- */

/* The episodes a detector reported, by id, as their last event left them. */
typedef struct ep_list {
    engine_episode *v;
    size_t n, cap;
    int err;
} ep_list;

static void on_event(void *ud, const engine_episode_event *ev)
{
    ep_list *l = ud;
    size_t i = 0;
    while (i < l->n && l->v[i].id != ev->ep.id)
        i++;
    if (ev->type == ENGINE_EP_MERGED || ev->type == ENGINE_EP_RETRACTED) {
        if (i < l->n)
            l->v[i] = l->v[--l->n];
        return;
    }
    if (i == l->n) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 8;
            engine_episode *v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                l->err = -ENOMEM;
                return;
            }
            l->v = v;
            l->cap = cap;
        }
        l->n++;
    }
    l->v[i] = ev->ep;
}

static int ep_cmp(const void *a, const void *b)
{
    const engine_episode *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Feeds periods to a detector of kind over the data; the day kind feeds daily rows. */
typedef struct day_feed {
    engine_detector *d;
    ep_list *l;
    bool any_limit;
} day_feed;

static int feed_day(void *ud, const engine_daily_row *row)
{
    day_feed *f = ud;
    if (!row->limit || row->limit->period != ENGINE_PERIOD_DAY)
        return 0;
    f->any_limit = true;
    engine_period p = {.ts = row->day, .value = row->judged, .limit = row->limit->value,
                       .flag = row->r.p.flag, .valid = row->r.valid && !isnan(row->judged)};
    return engine_detector_feed(f->d, &p, on_event, f->l) < 0 ? -ENOMEM : 0;
}

static int feed_hours(const engine_registry *reg, const engine_daily_input *in,
                      const engine_rollup_opts *ro, engine_detector *d, ep_list *l)
{
    size_t i = lower_bound(in->hours, in->nhours, in->from_day), at_o2 = 0;
    int64_t end = in->to_day + DAY_S;
    for (; i < in->nhours && in->hours[i].ts < end; i++) {
        const storage_point *h = &in->hours[i];
        const engine_limit *lim = engine_registry_limit_find(reg, in->outlet, in->pollutant,
                                                             ENGINE_PERIOD_HOUR, h->ts);
        if (!lim)
            continue;
        double o2 = in->no2 ? aligned(in->o2, in->no2, &at_o2, h->ts, NULL) : NAN;
        double v = engine_limit_judged_value(h, lim, in->outlet, o2);
        engine_period p = {.ts = h->ts, .value = v, .limit = lim->value, .flag = h->flag,
                           .valid = !isnan(v)};
        if (engine_detector_feed(d, &p, on_event, l) < 0)
            return -ENOMEM;
    }
    return 0;
}

static uint8_t flag_at(const storage_point *p, size_t n, int64_t ts)
{
    size_t i = lower_bound(p, n, ts);
    return i < n && p[i].ts == ts ? p[i].flag : 0;
}

static int emit_episodes(const engine_registry *reg, const engine_daily_input *in, int kind,
                         ep_list *l, engine_episode_row_fn fn, void *ud)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, ep_cmp);
    int64_t step = kind == ENGINE_PERIOD_DAY ? DAY_S : 3600;
    for (size_t i = 0; i < l->n; i++) {
        engine_episode_row row = {
            .mn = in->mn, .pollutant = in->pollutant, .outlet = in->outlet,
            .facility = in->facility, .kind = kind, .ep = l->v[i],
            .end_excl = l->v[i].end + step,
            .state = l->v[i].closed ? ENGINE_ALERT_RESOLVED : ENGINE_ALERT_FIRING,
        };
        row.limit = engine_registry_limit_find(reg, in->outlet, in->pollutant, kind,
                                               row.ep.peak_ts);
        row.peak_flag = kind == ENGINE_PERIOD_HOUR ? flag_at(in->hours, in->nhours,
                                                             row.ep.peak_ts)
                                                   : 0;
        engine_episode_id_format(row.ep.id, row.alert_id);
        int rc = fn(ud, &row);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One kind: a detector named as ingest names it, fed in time order. A short horizon keeps
 * each feed cheap: in time order, episodes that end before it are final. */
static int episodes_of_kind(const engine_registry *reg, const engine_daily_input *in,
                            const engine_rollup_opts *ro, int kind, engine_episode_row_fn fn,
                            void *ud)
{
    char series[160];
    int iv = kind == ENGINE_PERIOD_DAY ? STORAGE_IV_DAY : STORAGE_IV_HOUR;
    if (engine_series_key(in->mn, in->pollutant, iv, series, sizeof series) < 0)
        return 0;
    engine_detector_opts dopt;
    engine_detector_opts_init(&dopt);
    dopt.t_valid = ro->t_valid;
    dopt.none_is_normal = ro->none_is_normal;
    dopt.horizon = 48;
    engine_detector *d = NULL;
    ep_list l = {0};
    int rc = engine_detector_create(series, in->pollutant, kind, &dopt, &d);
    if (rc == 0 && kind == ENGINE_PERIOD_HOUR)
        rc = feed_hours(reg, in, ro, d, &l);
    if (rc == 0 && kind == ENGINE_PERIOD_DAY) {
        day_feed f = {d, &l, false};
        rc = engine_daily_rows(reg, in, ro, feed_day, &f);
    }
    if (rc == 0)
        rc = l.err;
    if (rc == 0)
        rc = emit_episodes(reg, in, kind, &l, fn, ud);
    engine_detector_destroy(d);
    free(l.v);
    return rc;
}

int engine_episode_rows(const engine_registry *reg, const engine_daily_input *in,
                        const engine_rollup_opts *ro_in, engine_episode_row_fn fn, void *ud)
{
    if (!reg || !in->outlet)
        return 0; /* no outlet, no limit */
    engine_rollup_opts ro;
    if (ro_in)
        ro = *ro_in;
    else
        engine_rollup_opts_init(&ro);
    ro.medium = in->outlet->medium;
    ro.flow_weighted = in->outlet->flow_weighted;
    /* Daily limits are rare (incineration, wastewater): look for one in force on some day
     * of the range before rolling the days up a second time. */
    bool day = false;
    for (int64_t t = in->from_day; t <= in->to_day && !day; t += DAY_S)
        day = engine_registry_limit_find(reg, in->outlet, in->pollutant, ENGINE_PERIOD_DAY, t);
    int rc = episodes_of_kind(reg, in, &ro, ENGINE_PERIOD_HOUR, fn, ud);
    if (rc == 0 && day)
        rc = episodes_of_kind(reg, in, &ro, ENGINE_PERIOD_DAY, fn, ud);
    return rc;
}
