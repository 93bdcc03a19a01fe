/* test_sim_signal.c: the values and records of the simulated fleet tell the truth about what
 * was injected. Over several days of a busy fleet: an hourly (or daily) value over its limit,
 * on the oxygen-corrected value for gas, occurs exactly in the injected exceedance episodes;
 * flags follow the events (F while stopped, D faults, M maintenance, C at nightly
 * calibration); flat lines are flat for a day and more; records are consistent (Min <= Avg <=
 * Max, ZsAvg agrees with Avg and O2, flow amounts with flow); the ground truth names every
 * episode with a peak over the limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tap.h"

static const sim_event *event_at(const sim_fleet *f, const sim_outlet *o, int64_t t)
{
    for (uint32_t i = 0; i < o->nevents; i++) {
        const sim_event *e = sim_fleet_event(f, o->first_event + i);
        if (t >= e->start && t < e->end)
            return e;
    }
    return NULL;
}

static int64_t p10(int d)
{
    int64_t p = 1;
    while (d-- > 0)
        p *= 10;
    return p;
}

/* value (scaled at dec) > limit (milli)? */
static bool over(int64_t v, int dec, int32_t limit_milli)
{
    return limit_milli > 0 && v * 1000 > (int64_t)limit_milli * p10(dec);
}

int main(void)
{
    sim_options o;
    sim_options_defaults(&o);
    o.nfacilities = 60;
    o.days = 4;
    o.seed = 2024;
    o.minute_interval = 1;
    o.rate_exceed = 0.4;
    o.rate_flat = 0.15;
    o.rate_gap = 0.2;
    o.rate_off = 0.1;
    o.rate_fault = 0.1;
    o.rate_maint = 0.1;
    sim_fleet *f;
    CHECK(sim_fleet_create(&o, &f) == 0);
    const sim_options *op = sim_fleet_options(f);
    int64_t start = op->start, end = sim_fleet_end(f);
    CHECK(start % 86400 == 57600); /* local midnight: 16:00 UTC */

    long hours = 0, hour_exceed = 0, day_exceed = 0, false_pos = 0, false_neg = 0;
    long bad_flag = 0, bad_order = 0, bad_zs = 0, bad_cou = 0, bad_off = 0, bad_flat = 0;
    long bad_cal = 0, bad_gap = 0, flat_hours = 0, cal_minutes = 0, bad_call = 0;
    long nev[SIM_NEVENT_TYPES] = {0};
    for (uint32_t oi = 0; oi < sim_fleet_outlet_count(f); oi++) {
        const sim_outlet *x = sim_fleet_outlet(f, oi);
        bool gas = x->medium == SIM_GAS;
        for (uint32_t i = 0; i < x->nevents; i++)
            nev[sim_fleet_event(f, x->first_event + i)->type]++;
        int64_t flat_val[SIM_MAXF];
        for (int64_t h = start; h < end; h += 3600) {
            sim_record r;
            bad_call += sim_record_compute(f, oi, SIM_CN_HOUR, h, &r) != 0;
            hours++;
            const sim_event *e = event_at(f, x, h);
            char want = 'N';
            if (e && e->type == SIM_EV_OFF)
                want = 'F';
            else if (e && e->type == SIM_EV_FAULT)
                want = 'D';
            else if (e && e->type == SIM_EV_MAINT)
                want = 'M';
            bad_gap += sim_outlet_offline(f, oi, h) != (e && e->type == SIM_EV_GAP);
            for (int s = 0; s < x->nf; s++) {
                const sim_value *v = &r.v[s];
                bad_flag += v->flag != want;
                bad_order += v->min > v->avg || v->avg > v->max;
                if (sim_factor_has_zs(x->medium, s))
                    bad_order += v->zsmin > v->zsavg || v->zsavg > v->zsmax;
                if (s > (gas ? SIM_F_PM : SIM_F_NH3N) || v->flag != 'N')
                    continue;
                /* Hourly limits: gas only, on the oxygen-corrected value. */
                bool ex = over(gas ? v->zsavg : v->avg, x->f[s].dec, x->f[s].limit_hour_milli);
                bool injected = e && e->type == SIM_EV_EXCEED && e->factor == s && !e->daily;
                hour_exceed += ex;
                false_pos += ex && !injected;
                false_neg += injected && !ex;
            }
            if (gas && want == 'N') {
                /* ZsAvg against Avg corrected with the hour's O2 (minute-level correction and
                 * rounding make it approximate). */
                int64_t o2 = r.v[SIM_F_O2].avg * (x->f[SIM_F_O2].dec == 1 ? 10 : 1);
                for (int s = 0; s <= SIM_F_PM; s++) {
                    if (e && e->type == SIM_EV_FLAT && e->factor == s)
                        continue;
                    double want_zs = (double)r.v[s].avg * (2100 - x->o2_ref_h) / (2100 - o2);
                    double d = (double)r.v[s].zsavg - want_zs;
                    bad_zs += d > 0.03 * want_zs + 2 || d < -0.03 * want_zs - 2;
                }
                /* The hour's flow volume is about Avg * 3600 (m3, one decimal). */
                double vol = (double)r.v[SIM_F_GFLOW].avg / p10(x->f[SIM_F_GFLOW].dec) * 3600;
                double cou = (double)r.v[SIM_F_GFLOW].cou / 10;
                bad_cou += cou < vol * 0.98 - 1 || cou > vol * 1.02 + 1;
            }
            if (gas && e && e->type == SIM_EV_OFF && h >= e->start + 3600 &&
                h + 3600 <= e->end - 1800) {
                int64_t o2 = r.v[SIM_F_O2].avg * (x->f[SIM_F_O2].dec == 1 ? 10 : 1);
                bad_off += o2 < 2000 || r.v[SIM_F_GFLOW].avg * 20 > x->f[SIM_F_GFLOW].base;
            }
            if (e && e->type == SIM_EV_FLAT) {
                const sim_value *v = &r.v[e->factor];
                if (h == e->start)
                    flat_val[e->factor] = v->avg;
                bad_flat += v->flag != 'N' || v->min != v->avg || v->max != v->avg ||
                            v->avg != flat_val[e->factor];
                flat_hours++;
                if (h == e->start)
                    bad_flat += e->end - e->start < 24 * 3600;
            }
        }
        for (int64_t d = start; d < end; d += 86400) {
            sim_record r;
            bad_call += sim_record_compute(f, oi, SIM_CN_DAY, d, &r) != 0;
            for (int s = 0; s <= (gas ? SIM_F_PM : SIM_F_NH3N); s++) {
                const sim_value *v = &r.v[s];
                if (v->flag != 'N')
                    continue;
                bool ex = over(gas ? v->zsavg : v->avg, x->f[s].dec, x->f[s].limit_day_milli);
                const sim_event *e = NULL;
                for (uint32_t i = 0; i < x->nevents; i++) {
                    const sim_event *y = sim_fleet_event(f, x->first_event + i);
                    if (y->type == SIM_EV_EXCEED && y->daily && y->factor == s && y->start == d)
                        e = y;
                }
                day_exceed += ex;
                false_pos += ex && !e;
                false_neg += e && !ex;
            }
        }
        /* Calibration: the 15 minutes from cal_minute each night are C on SO2, NOx, O2. */
        if (gas) {
            for (int64_t d = start; d < end; d += 86400) {
                int64_t t = d + 60 * (int64_t)x->cal_minute;
                for (int k = -1; k <= 15; k++) {
                    const sim_event *e = event_at(f, x, t + 60 * k);
                    if (e && (e->type == SIM_EV_OFF || e->type == SIM_EV_FAULT ||
                              e->type == SIM_EV_MAINT))
                        continue; /* those flags win over calibration */
                    sim_record r;
                    sim_record_compute(f, oi, SIM_CN_MIN, t + 60 * k, &r);
                    char w = k >= 0 && k < 15 ? 'C' : 'N';
                    bad_cal += r.v[SIM_F_SO2].flag != w || r.v[SIM_F_NOX].flag != w ||
                               r.v[SIM_F_O2].flag != w || r.v[SIM_F_PM].flag != 'N';
                    cal_minutes += w == 'C';
                }
            }
        }
    }
    printf("# %ld outlet-hours; exceedance hours %ld, days %ld; events off %ld fault %ld "
           "maint %ld exceed %ld flat %ld gap %ld\n",
           hours, hour_exceed, day_exceed, nev[0], nev[1], nev[2], nev[3], nev[4], nev[5]);
    CHECK_EQ_INT(bad_call, 0);
    for (int k = 0; k < SIM_NEVENT_TYPES; k++)
        CHECK(nev[k] > 0);
    CHECK(hour_exceed > 10);
    CHECK(day_exceed > 0);
    CHECK_EQ_INT(false_pos, 0);
    CHECK_EQ_INT(false_neg, 0);
    CHECK_EQ_INT(bad_flag, 0);
    CHECK_EQ_INT(bad_order, 0);
    CHECK_EQ_INT(bad_zs, 0);
    CHECK_EQ_INT(bad_cou, 0);
    CHECK_EQ_INT(bad_off, 0);
    CHECK_EQ_INT(bad_flat, 0);
    CHECK(flat_hours >= 24);
    CHECK_EQ_INT(bad_cal, 0);
    CHECK(cal_minutes > 0);
    CHECK_EQ_INT(bad_gap, 0);

    /* The truth lists every exceedance with its peak over its limit. */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(sim_truth_write(f, m) == 0);
    fclose(m);
    long lines = 0, episodes = 0, peaks_over = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        if (!strstr(line, "\"type\":\"exceedance\""))
            continue;
        episodes++;
        const char *lim = strstr(line, "\"limit\":");
        const char *pk = strstr(line, "\"peak_zs\":");
        if (!pk)
            pk = strstr(line, "\"peak\":");
        if (lim && pk && atof(strchr(pk, ':') + 1) > atof(lim + 8))
            peaks_over++;
    }
    free(buf);
    CHECK_EQ_INT(episodes, nev[SIM_EV_EXCEED]);
    CHECK_EQ_INT(peaks_over, episodes);
    CHECK(lines > episodes);

    /* Bad arguments. */
    sim_record r;
    CHECK(sim_record_compute(f, 0, SIM_CN_HOUR, start + 60, &r) < 0);
    CHECK(sim_record_compute(f, 0, SIM_CN_DAY, start + 3600, &r) < 0);
    CHECK(sim_record_compute(f, 0, 9999, start, &r) < 0);
    CHECK(sim_record_compute(f, sim_fleet_outlet_count(f), SIM_CN_HOUR, start, &r) < 0);
    sim_fleet_destroy(f);
    return tap_done();
}
