/* truth.c: the ground truth of a simulated run, as JSON Lines.
 *
 * Whoever checks the engine against the simulator (tests, benchmarks, a demo) needs to know
 * what was injected, without re-deriving it: each exceedance episode with its limit and its
 * peak hourly (or daily) value as the packets carry it, each flat line, each gap with the
 * records that were not sent, each shut-down, fault and maintenance period, and the nightly
 * calibration rule of every gas unit. Peaks are computed with the same record code the wire
 * uses, so they match the packets exactly. The format is described in README.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "engine.h"
#include "sim_int.h"

int sim_fmt_fixed(char *p, int64_t v, int dec)
{
    char tmp[32];
    int n = 0, len = 0;
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u || n <= dec);
    if (neg)
        p[len++] = '-';
    while (n > 0) {
        if (n == dec)
            p[len++] = '.';
        p[len++] = tmp[--n];
    }
    return len;
}

static const char *const type_names[SIM_NEVENT_TYPES] = {
    "shutdown", "fault", "maintenance", "exceedance", "flat_line", "gap"};
static const char type_flags[SIM_NEVENT_TYPES] = {'F', 'D', 'M', 'N', 'N', 0};

static void put_time(FILE *out, const char *key, int64_t t)
{
    char buf[32];
    engine_time_format(t, SIM_CST_S, buf, sizeof buf);
    fprintf(out, ",\"%s\":\"%s\",\"%s_ts\":%" PRId64, key, buf, key, t);
}

static void put_num(FILE *out, const char *key, int64_t v, int dec)
{
    char buf[32];
    buf[sim_fmt_fixed(buf, v, dec)] = 0;
    fprintf(out, ",\"%s\":%s", key, buf);
}

static void put_head(FILE *out, const sim_fleet *f, const sim_outlet *o, const char *type)
{
    fprintf(out, "{\"type\":\"%s\",\"mn\":\"%s\",\"facility\":\"%s\",\"outlet\":\"%s\"", type,
            o->mn, f->fac[o->facility].id, o->code);
}

/* The peak of an episode: the highest judged value (ZsAvg for gas, Avg for water) among its
 * hourly records, or its daily record. */
static void put_episode(FILE *out, const sim_fleet *f, uint32_t oi, const sim_event *e)
{
    const sim_outlet *o = &f->out[oi];
    const sim_factor *x = &o->f[e->factor];
    bool gas = o->medium == SIM_GAS;
    int64_t peak = -1, peak_zs = -1, peak_t = e->start;
    int cn = e->daily ? SIM_CN_DAY : SIM_CN_HOUR;
    for (int64_t t = e->start; t < e->end; t += e->daily ? 86400 : 3600) {
        sim_record r;
        if (sim_record_compute(f, oi, cn, t, &r) != 0)
            continue;
        int64_t judged = gas ? r.v[e->factor].zsavg : r.v[e->factor].avg;
        if (judged > (gas ? peak_zs : peak)) {
            peak = r.v[e->factor].avg;
            peak_zs = r.v[e->factor].zsavg;
            peak_t = t;
        }
    }
    fprintf(out, ",\"pollutant\":\"%s\",\"period\":\"%s\"", sim_factor_code(o->medium, e->factor),
            e->daily ? "day" : "hour");
    put_time(out, "start", e->start);
    put_time(out, "end", e->end);
    put_num(out, "limit", e->daily ? x->limit_day_milli : x->limit_hour_milli, 3);
    fprintf(out, ",\"basis\":\"%s\"", gas ? "zs" : "measured");
    put_num(out, "peak", peak, x->dec);
    if (gas)
        put_num(out, "peak_zs", peak_zs, x->dec);
    put_time(out, "peak_time", peak_t);
}

/* Whether the hourly record at t carries the flat line's value, flagged N. */
static bool hour_is_flat(const sim_fleet *f, uint32_t oi, const sim_event *e, int64_t t)
{
    sim_record r;
    const sim_factor *x = &f->out[oi].f[e->factor];
    return t >= f->opt.start && t < sim_fleet_end(f) &&
           sim_record_compute(f, oi, SIM_CN_HOUR, t, &r) == 0 && r.v[e->factor].flag == 'N' &&
           r.v[e->factor].avg == x->base;
}

/* The run of hours the data shows: a neighbouring hour's average can equal the flat value by
 * chance (values have 1-3 decimals), and then the data is flat for longer than the event. */
static void put_flat_run(FILE *out, const sim_fleet *f, uint32_t oi, const sim_event *e)
{
    int64_t start = e->start, end = e->end;
    while (hour_is_flat(f, oi, e, start - 3600))
        start -= 3600;
    while (hour_is_flat(f, oi, e, end))
        end += 3600;
    put_time(out, "run_start", start);
    put_time(out, "run_end", end);
}

int sim_truth_write(const sim_fleet *f, FILE *out)
{
    char t0[32];
    engine_time_format(f->opt.start, SIM_CST_S, t0, sizeof t0);
    fprintf(out,
            "{\"type\":\"fleet\",\"seed\":%" PRIu64 ",\"facilities\":%u,\"outlets\":%u,"
            "\"start\":\"%s\",\"start_ts\":%" PRId64 ",\"days\":%u,\"minute_interval\":%u,"
            "\"events\":%u}\n",
            f->opt.seed, f->opt.nfacilities, f->nout, t0, f->opt.start, f->opt.days,
            f->opt.minute_interval, f->nev);
    for (uint32_t oi = 0; oi < f->nout; oi++) {
        const sim_outlet *o = &f->out[oi];
        if (o->medium == SIM_GAS && f->opt.calibration) {
            put_head(out, f, o, "calibration");
            fprintf(out, ",\"daily_at\":\"%02u:%02u\",\"minutes\":15,\"flag\":\"C\","
                         "\"pollutants\":[\"a21026\",\"a21002\",\"a19001\"]}\n",
                    o->cal_minute / 60, o->cal_minute % 60);
        }
        for (uint32_t i = 0; i < o->nevents; i++) {
            const sim_event *e = &f->ev[o->first_event + i];
            put_head(out, f, o, type_names[e->type]);
            switch (e->type) {
            case SIM_EV_EXCEED:
                put_episode(out, f, oi, e);
                break;
            case SIM_EV_FLAT: {
                const sim_factor *x = &o->f[e->factor];
                fprintf(out, ",\"pollutant\":\"%s\"", sim_factor_code(o->medium, e->factor));
                put_time(out, "start", e->start);
                put_time(out, "end", e->end);
                put_flat_run(out, f, oi, e);
                put_num(out, "value", x->base, x->dec);
                if (o->medium == SIM_GAS)
                    put_num(out, "zs_value", x->zs_base, x->dec);
                break;
            }
            case SIM_EV_GAP: {
                /* Records are due at the end of their period: those due in [start, end). */
                put_time(out, "start", e->start);
                put_time(out, "end", e->end);
                put_time(out, "hours_from", e->start - 3600);
                put_time(out, "hours_to", e->end - 7200);
                int64_t d = sim_local_day(e->end - 1);
                if (d >= e->start && d > f->opt.start)
                    put_time(out, "missing_day", d - 86400);
                break;
            }
            default:
                put_time(out, "start", e->start);
                put_time(out, "end", e->end);
                fprintf(out, ",\"flag\":\"%c\"", type_flags[e->type]);
                break;
            }
            fprintf(out, "}\n");
        }
    }
    return ferror(out) ? -EIO : 0;
}
