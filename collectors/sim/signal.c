/* signal.c: the values the simulated analyzers read, minute by minute, and the records DAQ
 * units roll them up into.
 *
 * A minute value is a pure function of (outlet, factor, minute): a daily load curve, a
 * day-to-day factor, an hourly wander and sensor noise, all from the counter-based generator,
 * in integers scaled to the decimals the unit writes. Events then take over where they
 * apply: a stopped plant (F: concentrations and flow near 0, O2 near 21%, with 30-minute
 * shut-down and start-up ramps), faults (D), maintenance (M), nightly calibration (C, span
 * gas on SO2 and NOx, air on O2), exceedance episodes (the oxygen-corrected value driven to a
 * multiple of the limit), flat lines (the same value for a day and more).
 *
 * Records follow the validity rules of HJ 75/76 and HJ 212 Annex C: a gas period is N when at
 * least 75% of its minutes (or 20 of its 24 hours) are N and then averages only those; a
 * water period is N only when all its inputs are. Otherwise the period takes the most frequent
 * invalid flag and averages everything. Because records are computed, not stored, a history
 * request for any past period gets exactly what the live upload carried.
 */
#include <errno.h>
#include <string.h>

#include "sim_int.h"

/* Load in permille by local hour: a power or industrial plant, and a sewage plant's inflow. */
static const int16_t gas_load[24] = {780, 760, 750, 745, 750, 780, 830, 880,
                                     920, 950, 970, 980, 975, 970, 975, 980,
                                     985, 990, 995, 990, 960, 920, 870, 820};
static const int16_t water_load[24] = {600, 550, 520, 500, 520, 600, 750, 900,
                                       1000, 1050, 1020, 980, 950, 930, 920, 940,
                                       980, 1040, 1080, 1060, 1000, 900, 780, 680};

#define CAL_MINUTES 15
#define RAMP_S 1800

bool sim_factor_has_cou(int medium, int slot)
{
    return medium == SIM_GAS ? slot <= SIM_F_PM || slot == SIM_F_GFLOW
                             : slot == SIM_F_COD || slot == SIM_F_NH3N || slot == SIM_F_WFLOW;
}

bool sim_factor_has_zs(int medium, int slot)
{
    return medium == SIM_GAS && slot <= SIM_F_PM;
}

int sim_cou_decimals(int medium, int slot)
{
    return (medium == SIM_GAS && slot == SIM_F_GFLOW) ||
                   (medium == SIM_WATER && slot == SIM_F_WFLOW)
               ? 1
               : 3;
}

/* What minutes of one outlet share: the day's load factor, the hour's wander end points,
 * the water analyzers' cycle, and the minute's random bits. Rolling a period up computes these
 * once per day, hour or cycle instead of once per minute. */
typedef struct sig {
    const sim_fleet *f;
    const sim_outlet *o;
    int64_t day, hour, cyc;
    int64_t dayf;              /* permille */
    int64_t wa[SIM_MAXF], wb[SIM_MAXF]; /* wander at this hour's start and the next's */
    int64_t cw[2];             /* water: wander of COD and NH3-N at the cycle start */
    uint64_t rc;               /* water: the cycle's random bits */
    uint64_t r[2];             /* the minute's random bits: 8 values of 16 bits */
} sig;

static void sig_init(sig *c, const sim_fleet *f, const sim_outlet *o)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->o = o;
    c->day = c->hour = c->cyc = INT64_MIN;
}

static int64_t wander_point(const sim_outlet *o, int64_t hour, int slot)
{
    return sim_range(sim_rand3(o->key, (uint64_t)hour, 100 + (uint64_t)slot), -30, 30);
}

/* Moves the context to minute t. */
static void sig_at(sig *c, int64_t t)
{
    const sim_outlet *o = c->o;
    int64_t day = sim_local_day(t);
    if (day != c->day) {
        c->day = day;
        c->dayf = sim_range(sim_rand3(o->key, (uint64_t)((day + SIM_CST_S) / 86400), 77), 950,
                            1050);
    }
    int64_t hour = t - ((t % 3600) + 3600) % 3600;
    if (hour != c->hour) {
        c->hour = hour;
        for (int s = 0; s < o->nf; s++) {
            c->wa[s] = wander_point(o, hour / 3600, s);
            c->wb[s] = wander_point(o, hour / 3600 + 1, s);
        }
    }
    if (o->medium == SIM_WATER) {
        /* COD and ammonia analyzers run 2-hour cycles: their value holds for the cycle. */
        int64_t cyc = day + (t - day) / 7200 * 7200;
        if (cyc != c->cyc) {
            c->cyc = cyc;
            c->cw[0] = wander_point(o, cyc / 3600, 0);
            c->cw[1] = wander_point(o, cyc / 3600, 1);
            c->rc = sim_rand3(o->key, (uint64_t)cyc, 3);
        }
    }
    c->r[0] = sim_rand3(o->key, (uint64_t)t, 1);
    c->r[1] = sim_rand3(o->key, (uint64_t)t, 2);
}

/* Uniform noise in [-amp, amp] from 16 random bits. */
static int64_t noise16(uint64_t bits, int i, int64_t amp)
{
    uint64_t v = (bits >> (16 * (i & 3))) & 0xFFFF;
    return (int64_t)((v * (uint64_t)(2 * amp + 1)) >> 16) - amp;
}

static int64_t noise(const sig *c, int i, int64_t amp)
{
    return amp > 0 ? noise16(c->r[i >> 2], i, amp) : 0;
}

/* The plant's load (permille) at minute t: the daily curve, interpolated within the hour,
 * times the day's factor. */
static int64_t load_at(const sig *c, int64_t t)
{
    const int16_t *tbl = c->o->medium == SIM_GAS ? gas_load : water_load;
    int64_t mod = t + SIM_CST_S - (c->day + SIM_CST_S);
    int h = (int)(mod / 3600), m = (int)(mod % 3600 / 60);
    int64_t a = tbl[h], b = tbl[(h + 1) % 24];
    return (a + (b - a) * m / 60) * c->dayf / 1000;
}

/* A slow wander of a factor (permille, +-30), interpolated between random hourly points. */
static int64_t wander(const sig *c, int slot, int64_t t)
{
    return c->wa[slot] + (c->wb[slot] - c->wa[slot]) * (t - c->hour) / 3600;
}

/* The event in force at t of the gaps (gaps) or of the others, or NULL. Events of each
 * group never overlap; a gap may overlap an exceedance it hides. */
static const sim_event *event_at_of(const sim_fleet *f, const sim_outlet *o, int64_t t,
                                    bool gaps)
{
    for (uint32_t i = 0; i < o->nevents; i++) {
        const sim_event *e = &f->ev[o->first_event + i];
        if (t < e->start)
            break;
        if (t < e->end && (e->type == SIM_EV_GAP) == gaps)
            return e;
    }
    return NULL;
}

/* The event that shapes the values at t (gaps change what is sent, not the values). */
static const sim_event *event_at(const sim_fleet *f, const sim_outlet *o, int64_t t)
{
    return event_at_of(f, o, t, false);
}

bool sim_outlet_offline(const sim_fleet *f, uint32_t outlet, int64_t t)
{
    return event_at_of(f, &f->out[outlet], t, true) != NULL;
}

typedef struct minute {
    int64_t v[SIM_MAXF], zs[SIM_MAXF], mass[SIM_MAXF];
    char flag[SIM_MAXF];
} minute;

/* Hundredths of a percent of an O2 value scaled at dec decimals, and back. */
static int64_t o2_to_h(int64_t v, int dec) { return dec == 2 ? v : v * 10; }
static int64_t o2_from_h(int64_t h, int dec) { return dec == 2 ? h : sim_div_round(h, 10); }

/* The multiple of the limit (permille) an exceedance episode asks for at t. */
static int64_t episode_level(const sim_event *e, int64_t t)
{
    if (e->daily)
        return e->peak_permille;
    int64_t hours = (e->end - e->start) / 3600, k = (t - e->start) / 3600;
    int64_t dist2 = 2 * k - (hours - 1);
    if (dist2 < 0)
        dist2 = -dist2;
    return e->peak_permille - (e->peak_permille - 1200) * dist2 / hours;
}

static void gas_minute(const sig *c, const sim_event *e, int64_t t, minute *m)
{
    const sim_fleet *f = c->f;
    const sim_outlet *o = c->o;
    int64_t load = load_at(c, t);
    const sim_factor *fo2 = &o->f[SIM_F_O2];
    int64_t o2h = o->o2_base_h + (900 - load) / 5 + wander(c, SIM_F_O2, t) / 3 +
                  noise(c, SIM_F_O2, 15);
    for (int s = 0; s <= SIM_F_PM; s++) {
        const sim_factor *x = &o->f[s];
        m->v[s] = x->base * load / 1000 * (1000 + wander(c, s, t)) / 1000 +
                  noise(c, s, x->noise);
    }
    const sim_factor *fq = &o->f[SIM_F_GFLOW];
    m->v[SIM_F_GFLOW] = fq->base * load / 1000 * (1000 + wander(c, SIM_F_GFLOW, t)) / 1000 +
                        noise(c, SIM_F_GFLOW, fq->noise);
    m->v[SIM_F_TEMP] = o->f[SIM_F_TEMP].base + (load - 900) / 5 +
                       noise(c, SIM_F_TEMP, o->f[SIM_F_TEMP].noise);
    for (int s = 0; s < SIM_NGAS; s++)
        m->flag[s] = 'N';
    if (e && e->type == SIM_EV_OFF) {
        /* Running fraction: ramps down over the first 30 minutes, up over the last 30. */
        int64_t r = 0;
        if (t - e->start < RAMP_S)
            r = 1000 - (t - e->start) * 1000 / RAMP_S;
        else if (e->end - t <= RAMP_S)
            r = 1000 - (e->end - t) * 1000 / RAMP_S;
        for (int s = 0; s <= SIM_F_PM; s++)
            m->v[s] = (m->v[s] * r + o->f[s].base / 50 * (1000 - r)) / 1000;
        o2h = (o2h * r + (2080 + noise(c, 6, 15)) * (1000 - r)) / 1000;
        m->v[SIM_F_GFLOW] = (m->v[SIM_F_GFLOW] * r + fq->base / 100 * (1000 - r)) / 1000;
        m->v[SIM_F_TEMP] = (m->v[SIM_F_TEMP] * r + 300 * (1000 - r)) / 1000;
        for (int s = 0; s < SIM_NGAS; s++)
            m->flag[s] = 'F';
    } else if (e && e->type == SIM_EV_FAULT) {
        for (int s = 0; s <= SIM_F_PM; s++)
            m->v[s] = 0;
        o2h = 0;
        for (int s = 0; s < SIM_NGAS; s++)
            m->flag[s] = 'D';
    } else if (e && e->type == SIM_EV_MAINT) {
        for (int s = 0; s < SIM_NGAS; s++)
            m->flag[s] = 'M';
    } else if (f->opt.calibration) {
        int64_t lm = ((t + SIM_CST_S) % 86400 + 86400) % 86400 / 60;
        if (lm >= o->cal_minute && lm < o->cal_minute + CAL_MINUTES) {
            for (int s = 0; s <= SIM_F_NOX; s++) {
                const sim_factor *x = &o->f[s];
                int64_t lim = x->limit_hour_milli ? x->limit_hour_milli : x->limit_day_milli;
                m->v[s] = lim * 3 / 2 * sim_pow10(x->dec) / 1000;
                m->flag[s] = 'C';
            }
            o2h = 2090;
            m->flag[SIM_F_O2] = 'C';
        }
    }
    if (o2h < 0)
        o2h = 0;
    m->v[SIM_F_O2] = o2_from_h(o2h, fo2->dec);
    /* Oxygen correction with the O2 the unit reports, or its normal O2 while the O2 reading
     * is not valid (as DAQ units hold the last good value); never near 21%. */
    int64_t o2z = m->flag[SIM_F_O2] == 'N' ? o2_to_h(m->v[SIM_F_O2], fo2->dec) : o->o2_base_h;
    if (o2z > 1900)
        o2z = 1900;
    if (e && e->type == SIM_EV_EXCEED && m->flag[e->factor] == 'N') {
        const sim_factor *x = &o->f[e->factor];
        int64_t lim = e->daily ? x->limit_day_milli : x->limit_hour_milli;
        int64_t zs = lim * episode_level(e, t) / 1000 * sim_pow10(x->dec) / 1000;
        zs = zs * (1000 + noise(c, 7, 10)) / 1000;
        m->v[e->factor] = sim_div_round(zs * (2100 - o2z), 2100 - o->o2_ref_h);
    }
    for (int s = 0; s <= SIM_F_PM; s++) {
        if (m->v[s] < 0)
            m->v[s] = 0;
        m->zs[s] = sim_div_round(m->v[s] * (2100 - o->o2_ref_h), 2100 - o2z);
    }
    if (e && e->type == SIM_EV_FLAT) {
        m->v[e->factor] = o->f[e->factor].base;
        m->zs[e->factor] = o->f[e->factor].zs_base;
    }
    if (m->v[SIM_F_GFLOW] < 0)
        m->v[SIM_F_GFLOW] = 0;
    for (int s = 0; s <= SIM_F_PM; s++)
        m->mass[s] = m->v[s] * m->v[SIM_F_GFLOW] * 60;
    m->mass[SIM_F_GFLOW] = m->v[SIM_F_GFLOW] * 60;
}

static void water_minute(const sig *c, const sim_event *e, int64_t t, minute *m)
{
    const sim_outlet *o = c->o;
    int64_t lc = load_at(c, c->cyc);
    for (int s = SIM_F_COD; s <= SIM_F_NH3N; s++) {
        const sim_factor *x = &o->f[s];
        m->v[s] = x->base * (800 + lc / 5) / 1000 * (1000 + c->cw[s]) / 1000 +
                  (x->noise > 0 ? noise16(c->rc, s, x->noise) : 0);
    }
    m->v[SIM_F_PH] = o->f[SIM_F_PH].base + wander(c, SIM_F_PH, t) / 6 +
                     noise(c, SIM_F_PH, o->f[SIM_F_PH].noise);
    const sim_factor *fq = &o->f[SIM_F_WFLOW];
    int64_t load = load_at(c, t);
    m->v[SIM_F_WFLOW] = fq->base * load / 1000 * (1000 + wander(c, SIM_F_WFLOW, t)) / 1000 +
                        noise(c, SIM_F_WFLOW, fq->noise);
    for (int s = 0; s < SIM_NWATER; s++)
        m->flag[s] = 'N';
    if (e && e->type == SIM_EV_OFF) {
        m->v[SIM_F_WFLOW] = fq->base / 100;
        for (int s = 0; s < SIM_NWATER; s++)
            m->flag[s] = 'F';
    } else if (e && e->type == SIM_EV_FAULT) {
        m->v[SIM_F_COD] = m->v[SIM_F_NH3N] = 0;
        for (int s = 0; s < SIM_NWATER; s++)
            m->flag[s] = 'D';
    } else if (e && e->type == SIM_EV_MAINT) {
        for (int s = 0; s < SIM_NWATER; s++)
            m->flag[s] = 'M';
    } else if (e && e->type == SIM_EV_EXCEED) {
        const sim_factor *x = &o->f[e->factor];
        int64_t lim = (int64_t)x->limit_day_milli * episode_level(e, t) / 1000 *
                      sim_pow10(x->dec) / 1000;
        m->v[e->factor] = lim * (1000 + noise16(c->rc, 2, 10)) / 1000;
    } else if (e && e->type == SIM_EV_FLAT) {
        m->v[e->factor] = o->f[e->factor].base;
    }
    for (int s = 0; s < SIM_NWATER; s++) {
        if (m->v[s] < 0)
            m->v[s] = 0;
        m->zs[s] = 0;
    }
    for (int s = SIM_F_COD; s <= SIM_F_NH3N; s++)
        m->mass[s] = m->v[s] * m->v[SIM_F_WFLOW] * 60;
    m->mass[SIM_F_WFLOW] = m->v[SIM_F_WFLOW] * 60;
}

static void minute_at(sig *c, int64_t t, minute *m)
{
    memset(m, 0, sizeof *m);
    sig_at(c, t);
    const sim_event *e = event_at(c->f, c->o, t);
    if (c->o->medium == SIM_GAS)
        gas_minute(c, e, t, m);
    else
        water_minute(c, e, t, m);
}

/* ---- Roll-ups ---------------------------------------------------------------------------- */

static const char flag_chars[] = "NFMSDCTB";

static int flag_index(char flag)
{
    switch (flag) {
    case 'N': return 0;
    case 'F': return 1;
    case 'M': return 2;
    case 'S': return 3;
    case 'C': return 5;
    case 'T': return 6;
    case 'B': return 7;
    default: return 4; /* D */
    }
}

static void agg_add(agg *a, int64_t avg, int64_t mn, int64_t mx, int64_t zs, int64_t zmn,
                    int64_t zmx, int64_t cou, char flag)
{
    bool valid = flag == 'N';
    for (int k = valid ? 0 : 1; k < 2; k++) {
        bool first = k == 0 ? a->nvalid == 0 : a->n == 0;
        a->sum[k] += avg;
        a->zsum[k] += zs;
        if (first || mn < a->min[k])
            a->min[k] = mn;
        if (first || mx > a->max[k])
            a->max[k] = mx;
        if (first || zmn < a->zmin[k])
            a->zmin[k] = zmn;
        if (first || zmx > a->zmax[k])
            a->zmax[k] = zmx;
    }
    a->n++;
    a->nvalid += valid;
    a->cou += cou;
    a->nflag[flag_index(flag)]++;
}

/* need: valid inputs for a valid gas period; water periods need all. cou_div: divides the
 * summed amounts into the -Cou unit. */
static void agg_finish(const agg *a, bool water, int need, int64_t cou_div, sim_value *out)
{
    bool ok = water ? a->nvalid == a->n : a->nvalid >= need;
    int k = ok ? 0 : 1;
    int64_t cnt = ok ? a->nvalid : a->n;
    out->avg = sim_div_round(a->sum[k], cnt);
    out->zsavg = sim_div_round(a->zsum[k], cnt);
    out->min = a->min[k];
    out->max = a->max[k];
    out->zsmin = a->zmin[k];
    out->zsmax = a->zmax[k];
    out->cou = sim_div_round(a->cou, cou_div);
    out->flag = 'N';
    if (!ok) {
        int best = 1;
        for (int i = 2; i < 8; i++)
            if (a->nflag[i] > a->nflag[best])
                best = i;
        out->flag = flag_chars[best];
    }
}

static int64_t cou_divisor(const sim_outlet *o, int s)
{
    if (s == (o->medium == SIM_GAS ? SIM_F_GFLOW : SIM_F_WFLOW))
        return sim_pow10(o->f[s].dec) * (o->medium == SIM_GAS ? 1 : 1000) / 10;
    int q = o->medium == SIM_GAS ? SIM_F_GFLOW : SIM_F_WFLOW;
    return sim_pow10(o->f[s].dec + o->f[q].dec) * 1000;
}

/* Rolls n minutes from t0 into r. */
static void minutes_record(sig *c, int64_t t0, int n, sim_record *r)
{
    const sim_outlet *o = c->o;
    agg a[SIM_MAXF];
    memset(a, 0, sizeof a);
    for (int i = 0; i < n; i++) {
        minute m;
        minute_at(c, t0 + 60 * i, &m);
        for (int s = 0; s < o->nf; s++)
            agg_add(&a[s], m.v[s], m.v[s], m.v[s], m.zs[s], m.zs[s], m.zs[s], m.mass[s],
                    m.flag[s]);
    }
    for (int s = 0; s < o->nf; s++) {
        agg_finish(&a[s], o->medium == SIM_WATER, (3 * n + 3) / 4, cou_divisor(o, s), &r->v[s]);
        if (!sim_factor_has_cou(o->medium, s))
            r->v[s].cou = 0;
    }
}

int sim_record_compute(const sim_fleet *f, uint32_t outlet, int cn, int64_t data_time,
                       sim_record *r)
{
    if (outlet >= f->nout)
        return -EINVAL;
    const sim_outlet *o = &f->out[outlet];
    memset(r, 0, sizeof *r);
    r->outlet = outlet;
    r->cn = cn;
    r->data_time = data_time;
    r->nf = o->nf;
    sig c;
    sig_init(&c, f, o);
    switch (cn) {
    case SIM_CN_RTD: {
        minute m;
        minute_at(&c, data_time - ((data_time % 60) + 60) % 60, &m);
        for (int s = 0; s < o->nf; s++) {
            r->v[s].avg = r->v[s].min = r->v[s].max = m.v[s];
            r->v[s].zsavg = r->v[s].zsmin = r->v[s].zsmax = m.zs[s];
            r->v[s].flag = m.flag[s];
        }
        return 0;
    }
    case SIM_CN_MIN: {
        int iv = (int)f->opt.minute_interval;
        if (!iv || data_time % (iv * 60))
            return -EINVAL;
        minutes_record(&c, data_time, iv, r);
        return 0;
    }
    case SIM_CN_HOUR:
        if (data_time % 3600)
            return -EINVAL;
        minutes_record(&c, data_time, 60, r);
        return 0;
    case SIM_CN_DAY: {
        if (sim_local_day(data_time) != data_time)
            return -EINVAL;
        sim_day_acc acc;
        memset(&acc, 0, sizeof acc);
        for (int h = 0; h < 24; h++) {
            sim_record hr;
            minutes_record(&c, data_time + 3600 * h, 60, &hr);
            hr.outlet = outlet;
            hr.cn = SIM_CN_HOUR;
            hr.nf = o->nf;
            hr.data_time = data_time + 3600 * h;
            sim_day_acc_add(&acc, &hr);
        }
        return sim_day_acc_record(f, &acc, data_time, r) ? 0 : -EINVAL;
    }
    default:
        return -EINVAL;
    }
}

/* ---- Daily records from the hours the wire has computed anyway --------------------------- */

void sim_day_acc_add(sim_day_acc *acc, const sim_record *hour)
{
    int64_t day = sim_local_day(hour->data_time);
    if (acc->day != day || acc->hours == 0) {
        memset(acc, 0, sizeof *acc);
        acc->day = day;
    }
    if (hour->data_time != day + 3600 * (int64_t)acc->hours) {
        acc->hours = -1; /* not in order: of no use for this day */
        return;
    }
    for (int s = 0; s < hour->nf; s++) {
        const sim_value *v = &hour->v[s];
        agg_add(&acc->a[s], v->avg, v->min, v->max, v->zsavg, v->zsmin, v->zsmax, v->cou,
                v->flag);
    }
    acc->hours++;
}

bool sim_day_acc_record(const sim_fleet *f, const sim_day_acc *acc, int64_t day,
                        sim_record *r)
{
    if (acc->day != day || acc->hours != 24)
        return false;
    uint32_t outlet = r->outlet;
    const sim_outlet *o = &f->out[outlet];
    memset(r, 0, sizeof *r);
    r->outlet = outlet;
    r->cn = SIM_CN_DAY;
    r->data_time = day;
    r->nf = o->nf;
    for (int s = 0; s < o->nf; s++)
        agg_finish(&acc->a[s], o->medium == SIM_WATER, 20, 1, &r->v[s]);
    return true;
}
