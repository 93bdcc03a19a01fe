/* quality.c: data-quality findings, what regulators look for besides exceedances.
 *
 * An outlet that goes silent, a reading that stays identical for a day, zeros while the
 * flue-gas flow says the plant runs, oxygen far above its usual level (air let in to dilute
 * the concentration), days mostly flagged calibration or maintenance, hourly averages the
 * DAQ reports that its own minutes do not support: each is a sign that monitoring is broken
 * or is being tampered with. Each check here is a pass over sorted arrays of points, so it
 * runs alike over a trailing window in the live path and over years in a batch report.
 * Thresholds are options with defaults chosen to be conservative; none of them is fixed by
 * the standards, so all are documented as configurable.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static const char *const finding_names[] = {"silent", "flatline", "zeros", "dilution",
                                            "flagged_day", "mismatch"};

const char *engine_finding_name(int kind)
{
    return kind >= 0 && kind <= ENGINE_FIND_MISMATCH ? finding_names[kind] : "unknown";
}

void engine_quality_opts_init(engine_quality_opts *o)
{
    memset(o, 0, sizeof *o);
    o->silent_hours = 4;
    o->flat_hours = 24;
    o->flat_tolerance = 0;
    o->zero_hours = 3;
    o->zero_eps = 0;
    o->running_flow = 0;
    o->o2_window = 168;
    o->o2_min_baseline = 24;
    o->o2_k = 5;
    o->o2_min_margin = 2;
    o->o2_abs_max = NAN;
    o->flagged_share = 0.25;
    o->mismatch_abs = 0.1;
    o->mismatch_rel = 0.02;
    o->offset_s = ENGINE_CST_OFFSET_S;
    o->rollup = NULL;
}

typedef struct sink {
    engine_finding_fn cb;
    void *ud;
    int n;
} sink;

static void found(sink *k, int kind, int64_t start, int64_t end, uint32_t count, double value,
                  double reference)
{
    engine_finding f = {kind, start, end, count, value, reference};
    k->n++;
    if (k->cb)
        k->cb(k->ud, &f);
}

static bool has_avg(const storage_point *p)
{
    return (p->mask & (1u << STORAGE_COL_AVG)) && isfinite(p->v[STORAGE_COL_AVG]);
}

static bool judged(const engine_quality_series *s, size_t i, const engine_quality_opts *o)
{
    const storage_point *p = &s->p[i];
    if (!has_avg(p) || !engine_flag_valid(p->flag, true, true))
        return false;
    if (!s->flow)
        return true;
    return isfinite(s->flow[i]) && s->flow[i] > o->running_flow;
}

/* ---- Silence --------------------------------------------------------------------------- */

static void check_silent(const engine_quality_series *s, const engine_quality_opts *o, sink *k)
{
    int64_t limit = (int64_t)(o->silent_hours * 3600);
    int64_t from = s->from; /* the first second not covered by data */
    for (size_t i = 0; i <= s->n; i++) {
        int64_t next = i < s->n ? s->p[i].ts : s->to;
        if (next > s->to)
            next = s->to;
        if (next - from > limit)
            found(k, ENGINE_FIND_SILENT, from, next - 1, (uint32_t)((next - from) / s->step_s),
                  (double)(next - from) / 3600.0, o->silent_hours);
        if (i < s->n && s->p[i].ts + s->step_s > from)
            from = s->p[i].ts + s->step_s;
    }
}

/* ---- Runs: flat lines and zeros ------------------------------------------------------------ */

/* Walks runs of consecutive judged points that satisfy `same` with the run's first point,
 * and reports each run of at least min_periods periods. */
static void check_runs(const engine_quality_series *s, const engine_quality_opts *o, sink *k,
                       int kind, double hours)
{
    uint32_t min_periods = (uint32_t)ceil(hours * 3600.0 / (double)s->step_s);
    if (min_periods < 2)
        min_periods = 2;
    size_t i = 0;
    while (i < s->n) {
        if (!judged(s, i, o)) {
            i++;
            continue;
        }
        double v0 = s->p[i].v[STORAGE_COL_AVG];
        bool zero = fabs(v0) <= o->zero_eps;
        if (zero != (kind == ENGINE_FIND_ZEROS)) { /* zeros are not reported as flat lines */
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < s->n && judged(s, j, o) && s->p[j].ts - s->p[j - 1].ts == s->step_s) {
            double v = s->p[j].v[STORAGE_COL_AVG];
            if (kind == ENGINE_FIND_ZEROS ? fabs(v) > o->zero_eps
                                          : fabs(v - v0) > o->flat_tolerance)
                break;
            j++;
        }
        uint32_t len = (uint32_t)(j - i);
        if (len >= min_periods)
            found(k, kind, s->p[i].ts, s->p[j - 1].ts, len, v0, hours);
        i = j;
    }
}

/* ---- Dilution ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The threshold over the baseline of up to o2_window judged O2 values before i; NaN when
 * the baseline is too short. tmp holds o2_window doubles. */
static double o2_threshold(const engine_quality_series *s, size_t i,
                           const engine_quality_opts *o, double *tmp)
{
    size_t m = 0;
    for (size_t j = i; j-- > 0 && m < o->o2_window;)
        if (judged(s, j, o) && isfinite(s->o2[j]))
            tmp[m++] = s->o2[j];
    if (m < o->o2_min_baseline || m == 0)
        return NAN;
    qsort(tmp, m, sizeof *tmp, cmp_double);
    double med = median_sorted(tmp, m);
    for (size_t j = 0; j < m; j++)
        tmp[j] = fabs(tmp[j] - med);
    qsort(tmp, m, sizeof *tmp, cmp_double);
    double mad = median_sorted(tmp, m);
    double margin = o->o2_k * mad;
    return med + (margin > o->o2_min_margin ? margin : o->o2_min_margin);
}

static int check_dilution(const engine_quality_series *s, const engine_quality_opts *o,
                          sink *k)
{
    double *tmp = malloc((o->o2_window ? o->o2_window : 1) * sizeof *tmp);
    if (!tmp)
        return -ENOMEM;
    bool open = false;
    int64_t start = 0, last = 0;
    uint32_t count = 0;
    double peak = 0, thr0 = 0;
    for (size_t i = 0; i <= s->n; i++) {
        bool dil = false;
        double thr = NAN;
        if (i < s->n && judged(s, i, o) && isfinite(s->o2[i])) {
            thr = o2_threshold(s, i, o, tmp);
            if (isfinite(o->o2_abs_max) && (!isfinite(thr) || o->o2_abs_max < thr))
                thr = o->o2_abs_max;
            dil = isfinite(thr) && s->o2[i] > thr;
        }
        if (open && (!dil || s->p[i].ts - last != s->step_s)) {
            found(k, ENGINE_FIND_DILUTION, start, last, count, peak, thr0);
            open = false;
        }
        if (!dil)
            continue;
        if (!open) {
            open = true;
            start = s->p[i].ts;
            count = 0;
            peak = s->o2[i];
            thr0 = thr;
        }
        last = s->p[i].ts;
        count++;
        if (s->o2[i] > peak)
            peak = s->o2[i];
    }
    free(tmp);
    return 0;
}

/* ---- Flagged days ---------------------------------------------------------------------------- */

static void check_flagged(const engine_quality_series *s, const engine_quality_opts *o, sink *k)
{
    size_t i = 0;
    while (i < s->n) {
        size_t span = engine_period_span(ENGINE_PERIOD_DAY, s->p + i, s->n - i, o->offset_s);
        uint32_t bad = 0;
        for (size_t j = i; j < i + span; j++) {
            int f = engine_flag_slot(s->p[j].flag, true);
            bad += f == ENGINE_FLAG_C || f == ENGINE_FLAG_M || f == ENGINE_FLAG_D ||
                   f == ENGINE_FLAG_B;
        }
        double share = (double)bad / (double)span;
        if (share > o->flagged_share) {
            int64_t day = engine_period_start(ENGINE_PERIOD_DAY, s->p[i].ts, o->offset_s);
            found(k, ENGINE_FIND_FLAGGED_DAY, day, day, bad, share, o->flagged_share);
        }
        i += span;
    }
}

int engine_quality_check(const engine_quality_series *s, const engine_quality_opts *o,
                         engine_finding_fn cb, void *ud)
{
    engine_quality_opts def;
    if (!o) {
        engine_quality_opts_init(&def);
        o = &def;
    }
    if (!s || (s->n && !s->p) || s->step_s <= 0 || s->to < s->from)
        return -EINVAL;
    sink k = {cb, ud, 0};
    check_silent(s, o, &k);
    check_runs(s, o, &k, ENGINE_FIND_FLATLINE, o->flat_hours);
    check_runs(s, o, &k, ENGINE_FIND_ZEROS, o->zero_hours);
    if (s->o2) {
        int rc = check_dilution(s, o, &k);
        if (rc)
            return rc;
    }
    check_flagged(s, o, &k);
    return k.n;
}

/* ---- Reported vs computed hours ------------------------------------------------------------ */

int engine_quality_compare_hours(const engine_quality_series *reported,
                                 const engine_quality_series *minutes,
                                 const engine_quality_opts *o, engine_finding_fn cb, void *ud)
{
    engine_quality_opts def;
    if (!o) {
        engine_quality_opts_init(&def);
        o = &def;
    }
    if (!reported || !minutes || (reported->n && !reported->p) || (minutes->n && !minutes->p))
        return -EINVAL;
    engine_rollup_opts rdef;
    const engine_rollup_opts *ro = o->rollup;
    if (!ro) {
        engine_rollup_opts_init(&rdef);
        ro = &rdef;
    }
    sink k = {cb, ud, 0};
    size_t m = 0;
    for (size_t i = 0; i < reported->n; i++) {
        const storage_point *h = &reported->p[i];
        int64_t start = engine_period_start(ENGINE_PERIOD_HOUR, h->ts, ro->offset_s);
        while (m < minutes->n && minutes->p[m].ts < start)
            m++;
        size_t span = m < minutes->n && minutes->p[m].ts < start + 3600
                          ? engine_period_span(ENGINE_PERIOD_HOUR, minutes->p + m,
                                               minutes->n - m, ro->offset_s)
                          : 0;
        engine_period_result r;
        if (!has_avg(h) || span == 0 ||
            engine_rollup_hour(minutes->p + m, span, minutes->flow ? minutes->flow + m : NULL,
                               ro, &r) != 0 || !r.valid)
            continue;
        double rep = h->v[STORAGE_COL_AVG], comp = r.p.v[STORAGE_COL_AVG];
        double tol = o->mismatch_rel * fabs(comp);
        if (tol < o->mismatch_abs)
            tol = o->mismatch_abs;
        if (fabs(rep - comp) > tol)
            found(&k, ENGINE_FIND_MISMATCH, start, start, r.n_valid, rep, comp);
    }
    return k.n;
}
