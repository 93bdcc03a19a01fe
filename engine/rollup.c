/* rollup.c: minute -> hour -> day -> month by the validity rules of HJ 75/76-2017 and the
 * flag roll-up of HJ 212 Annex C, plus the two formulas every consumer of averages needs:
 * oxygen correction (折算) and emission mass.
 *
 * Everything here works on plain arrays of storage_point, so live ingest (rolling up the
 * hour that just completed) and batch export (rolling up years of stored hours) share one
 * implementation and cannot disagree. Nothing allocates, nothing keeps state.
 *
 * Validity and the flag are two separate judgements: validity counts valid inputs against the
 * period's minimum (45 minutes, 20 hours, 25 days); the flag roll-up looks at the share of
 * valid inputs (gas: N if >= 75%, else D; water: abnormal if any input is). The result's
 * point carries the flag with validity folded in, so chaining roll-ups stays honest.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "engine.h"

static const char flag_letters[ENGINE_FLAG_OTHER] = {'N', 'F', 'M', 'S', 'D', 'C', 'T', 'B'};

int engine_flag_slot(uint8_t flag, bool none_is_normal)
{
    if (flag == 0)
        return none_is_normal ? ENGINE_FLAG_N : ENGINE_FLAG_OTHER;
    if (flag >= 'a' && flag <= 'z')
        flag = (uint8_t)(flag - 'a' + 'A');
    for (int i = 0; i < ENGINE_FLAG_OTHER; i++)
        if (flag_letters[i] == flag)
            return i;
    return ENGINE_FLAG_OTHER;
}

bool engine_flag_valid(uint8_t flag, bool t_valid, bool none_is_normal)
{
    int s = engine_flag_slot(flag, none_is_normal);
    return s == ENGINE_FLAG_N || (s == ENGINE_FLAG_T && t_valid);
}

void engine_rollup_opts_init(engine_rollup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->medium = ENGINE_MEDIUM_GAS;
    o->t_valid = true;
    o->none_is_normal = true;
    o->flow_weighted = false;
    o->min_valid_hour = 45;
    o->min_valid_day = 20;
    o->min_valid_month = 25;
    o->normal_share_gas = 0.75;
    o->normal_share_water = 1.0;
    o->offset_s = ENGINE_CST_OFFSET_S;
}

/* Floor division that rounds towards minus infinity, for times before 1970. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t engine_period_start(int kind, int64_t ts, int64_t offset_s)
{
    int64_t local = ts + offset_s;
    switch (kind) {
    case ENGINE_PERIOD_HOUR:
        return floor_div(local, 3600) * 3600 - offset_s;
    case ENGINE_PERIOD_DAY:
        return floor_div(local, 86400) * 86400 - offset_s;
    default: {
        int64_t y;
        unsigned m, d;
        engine_civil_from_days(floor_div(local, 86400), &y, &m, &d);
        return engine_days_from_civil(y, m, 1) * 86400 - offset_s;
    }
    }
}

int64_t engine_period_next(int kind, int64_t start, int64_t offset_s)
{
    switch (kind) {
    case ENGINE_PERIOD_HOUR:
        return start + 3600;
    case ENGINE_PERIOD_DAY:
        return start + 86400;
    default: {
        int64_t y;
        unsigned m, d;
        engine_civil_from_days(floor_div(start + offset_s, 86400), &y, &m, &d);
        if (++m > 12) {
            m = 1;
            y++;
        }
        return engine_days_from_civil(y, m, 1) * 86400 - offset_s;
    }
    }
}

size_t engine_period_span(int kind, const storage_point *in, size_t n, int64_t offset_s)
{
    if (n == 0)
        return 0;
    int64_t start = engine_period_start(kind, in[0].ts, offset_s);
    int64_t next = engine_period_next(kind, start, offset_s);
    size_t i = 1;
    while (i < n && in[i].ts >= start && in[i].ts < next)
        i++;
    return i;
}

static uint32_t min_valid_of(int kind, const engine_rollup_opts *o)
{
    switch (kind) {
    case ENGINE_PERIOD_HOUR: return o->min_valid_hour;
    case ENGINE_PERIOD_DAY: return o->min_valid_day;
    default: return o->min_valid_month;
    }
}

/* Accumulators of one column pair (AVG with MIN/MAX, or ZSAVG with ZSMIN/ZSMAX). */
typedef struct acc {
    double sum, wsum, wtot, lo, hi;
    uint32_t n;
} acc;

static void acc_add(acc *a, const storage_point *p, int cavg, int cmin, int cmax, double w)
{
    if (!(p->mask & (1u << cavg)))
        return;
    double v = p->v[cavg];
    double lo = (p->mask & (1u << cmin)) ? p->v[cmin] : v;
    double hi = (p->mask & (1u << cmax)) ? p->v[cmax] : v;
    if (a->n == 0 || lo < a->lo)
        a->lo = lo;
    if (a->n == 0 || hi > a->hi)
        a->hi = hi;
    a->sum += v;
    if (isfinite(w) && w >= 0) {
        a->wsum += v * w;
        a->wtot += w;
    }
    a->n++;
}

/* Writes the accumulated columns; returns whether the mean is flow-weighted. */
static bool acc_store(const acc *a, storage_point *p, int cavg, int cmin, int cmax,
                      bool weigh)
{
    if (a->n == 0)
        return false;
    bool w = weigh && a->wtot > 0;
    p->v[cavg] = w ? a->wsum / a->wtot : a->sum / a->n;
    p->v[cmin] = a->lo;
    p->v[cmax] = a->hi;
    p->mask |= (uint8_t)((1u << cavg) | (1u << cmin) | (1u << cmax));
    return w;
}

/* The most frequent invalid flag of the inputs (ties: the order of flag_letters), for a
 * water period that is abnormal because some input is. */
static uint8_t dominant_invalid(const uint32_t *count, bool t_valid)
{
    int best = -1;
    for (int i = 1; i < ENGINE_FLAG_OTHER; i++) {
        if (i == ENGINE_FLAG_T && t_valid)
            continue;
        if (count[i] > 0 && (best < 0 || count[i] > count[best]))
            best = i;
    }
    return best < 0 ? 'D' : (uint8_t)flag_letters[best];
}

int engine_rollup_period(int kind, const storage_point *in, size_t n, const double *flow,
                         const engine_rollup_opts *o, engine_period_result *out)
{
    engine_rollup_opts def;
    if (!o) {
        engine_rollup_opts_init(&def);
        o = &def;
    }
    if (!in || n == 0 || !out || kind < ENGINE_PERIOD_HOUR || kind > ENGINE_PERIOD_MONTH)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    int64_t start = engine_period_start(kind, in[0].ts, o->offset_s);
    int64_t next = engine_period_next(kind, start, o->offset_s);
    bool water = o->medium == ENGINE_MEDIUM_WATER;
    bool weigh = water && o->flow_weighted && flow;
    acc a = {0}, z = {0};
    double cou = 0;
    bool has_cou = false;
    uint32_t n_flag_valid = 0;

    for (size_t i = 0; i < n; i++) {
        const storage_point *p = &in[i];
        if (p->ts < start || p->ts >= next)
            return -EINVAL;
        out->flag_count[engine_flag_slot(p->flag, o->none_is_normal)]++;
        if (!engine_flag_valid(p->flag, o->t_valid, o->none_is_normal))
            continue;
        n_flag_valid++;
        double w = weigh ? flow[i] : NAN;
        acc_add(&a, p, STORAGE_COL_AVG, STORAGE_COL_MIN, STORAGE_COL_MAX, w);
        acc_add(&z, p, STORAGE_COL_ZSAVG, STORAGE_COL_ZSMIN, STORAGE_COL_ZSMAX, w);
        if (p->mask & (1u << STORAGE_COL_COU)) {
            cou += p->v[STORAGE_COL_COU];
            has_cou = true;
        }
    }

    out->kind = kind;
    out->n_inputs = (uint32_t)n;
    out->n_valid = a.n;
    out->p.ts = start;
    out->weighted = acc_store(&a, &out->p, STORAGE_COL_AVG, STORAGE_COL_MIN, STORAGE_COL_MAX,
                              weigh);
    acc_store(&z, &out->p, STORAGE_COL_ZSAVG, STORAGE_COL_ZSMIN, STORAGE_COL_ZSMAX, weigh);
    if (has_cou) {
        out->p.v[STORAGE_COL_COU] = cou;
        out->p.mask |= 1u << STORAGE_COL_COU;
    }

    /* The share counts inputs with a valid flag, whether or not they carried a value. */
    double share = (double)n_flag_valid / (double)n;
    double need = water ? o->normal_share_water : o->normal_share_gas;
    if (share >= need)
        out->flag_rollup = 'N';
    else
        out->flag_rollup = water ? dominant_invalid(out->flag_count, o->t_valid) : 'D';
    out->valid = a.n >= min_valid_of(kind, o) && a.n > 0;
    out->p.flag = out->flag_rollup;
    if (!out->valid && out->p.flag == 'N')
        out->p.flag = 'D';
    return 0;
}

int engine_rollup_hour(const storage_point *minutes, size_t n, const double *flow,
                       const engine_rollup_opts *o, engine_period_result *out)
{
    return engine_rollup_period(ENGINE_PERIOD_HOUR, minutes, n, flow, o, out);
}

int engine_rollup_day(const storage_point *hours, size_t n, const double *flow,
                      const engine_rollup_opts *o, engine_period_result *out)
{
    return engine_rollup_period(ENGINE_PERIOD_DAY, hours, n, flow, o, out);
}

/* ---- Oxygen correction and emission mass ---------------------------------------------- */

void engine_o2_opts_init(engine_o2_opts *o)
{
    o->max_o2 = 19.5;
    o->clamp = false;
}

int engine_o2_correct(double c, double o2, double o2_ref, const engine_o2_opts *o,
                      double *out)
{
    engine_o2_opts def;
    if (!o) {
        engine_o2_opts_init(&def);
        o = &def;
    }
    *out = NAN;
    if (!isfinite(c) || !isfinite(o2) || !isfinite(o2_ref) || o2 < 0 || o2_ref < 0 ||
        o2_ref >= 21.0 || !(o->max_o2 < 21.0))
        return -EINVAL;
    int rc = 0;
    if (o2 >= o->max_o2) {
        if (!o->clamp)
            return -ERANGE;
        o2 = o->max_o2;
        rc = 1;
    }
    *out = c * (21.0 - o2_ref) / (21.0 - o2);
    return rc;
}

size_t engine_o2_correct_points(storage_point *p, const double *o2, size_t n, double o2_ref,
                                const engine_o2_opts *o)
{
    static const int from[3] = {STORAGE_COL_AVG, STORAGE_COL_MIN, STORAGE_COL_MAX};
    static const int to[3] = {STORAGE_COL_ZSAVG, STORAGE_COL_ZSMIN, STORAGE_COL_ZSMAX};
    size_t guarded = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(o2[i]))
            continue;
        bool tripped = false;
        for (int k = 0; k < 3; k++) {
            if (!(p[i].mask & (1u << from[k])))
                continue;
            double zs;
            int rc = engine_o2_correct(p[i].v[from[k]], o2[i], o2_ref, o, &zs);
            if (rc == 1)
                tripped = true;
            if (rc < 0) {
                tripped = rc == -ERANGE;
                p[i].mask &= (uint8_t)~((1u << to[0]) | (1u << to[1]) | (1u << to[2]));
                if (tripped)
                    p[i].flag = 'D';
                break;
            }
            p[i].v[to[k]] = zs;
            p[i].mask |= (uint8_t)(1u << to[k]);
        }
        guarded += tripped;
    }
    return guarded;
}

double engine_emission_rate_kg_h(double c, double q, int flow_unit)
{
    switch (flow_unit) {
    case ENGINE_FLOW_M3_H: return c * q * 1e-6;
    case ENGINE_FLOW_M3_S: return c * q * 3600.0 * 1e-6;
    case ENGINE_FLOW_L_S: return c * q * 3.6e-3; /* mg/L = 1e3 mg/m3, L/s = 3.6 m3/h */
    default: return NAN;
    }
}
