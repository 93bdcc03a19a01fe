/* rtd_rollup.c: real-time readings rolled up into minute records. A DAQ on HJ 212 computes
 * its own minutes (2051) from the readings it takes; a source that gives only readings (a
 * Modbus analyzer read every few seconds) has no one to do that, so the engine does it here,
 * the same way: each minute's valid readings averaged (min, max beside), the minute flagged N
 * when any reading was valid, else with the most frequent flag. The minute goes through
 * engine_ingest like a DAQ's 2051 (series MN:code:min), so everything that follows minutes
 * (hourly roll-ups, judging) treats it alike. Opt-in per source: DAQs that send both 2011
 * and 2051 keep their own minutes.
 *
 * A minute closes when a reading of a later minute arrives for the device, or grace seconds
 * after its end (a device that went silent). A reading older than the minute already closed
 * is stored as a reading but does not reopen the minute (counted as late). Loop thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "strmap.h"

#define SWEEP_MS 5000

typedef struct code_acc {
    char code[ENGINE_POLLUTANT_SIZE];
    uint32_t n, nvalid, nzs;
    double sum, min, max;         /* AVG column: over valid readings, or all when none is */
    double all_sum, all_min, all_max;
    double zsum, zmin, zmax;
    uint32_t flags[ENGINE_NFLAGS];
} code_acc;

typedef struct dev_acc {
    char mn[ENGINE_ID_SIZE];
    int64_t minute;               /* start of the open minute; INT64_MIN: none yet */
    int64_t closed;               /* start of the last minute emitted */
    size_t ncodes, cap;
    code_acc *codes;
    bool open;
} dev_acc;

struct engine_rtd_rollup {
    engine *e;                    /* borrowed */
    uv_timer_t sweep;
    strmap *by_mn;                /* MN -> dev_acc (owned through devs) */
    dev_acc **devs;               /* owned */
    size_t ndevs, capdevs;
    int64_t grace_s;
    engine_rtd_rollup_stats stats;
};

static void reset(dev_acc *d)
{
    d->ncodes = 0;
    d->open = false;
}

static uint8_t minute_flag(const code_acc *c)
{
    if (c->nvalid > 0)
        return 'N';
    static const char letters[] = "NFMSDCTB";
    int best = ENGINE_FLAG_D;
    for (int s = 0; s < ENGINE_FLAG_OTHER; s++)
        if (c->flags[s] > c->flags[best])
            best = s;
    return (uint8_t)letters[best];
}

static void emit(engine_rtd_rollup *r, dev_acc *d)
{
    if (!d->open || d->ncodes == 0) {
        reset(d);
        return;
    }
    engine_value vals[64];
    size_t n = 0;
    for (size_t i = 0; i < d->ncodes && n < 64; i++) {
        const code_acc *c = &d->codes[i];
        if (c->n == 0)
            continue;
        engine_value *v = &vals[n++];
        memset(v, 0, sizeof *v);
        v->code = c->code;
        bool valid = c->nvalid > 0;
        v->pt.v[STORAGE_COL_AVG] = valid ? c->sum / c->nvalid : c->all_sum / c->n;
        v->pt.v[STORAGE_COL_MIN] = valid ? c->min : c->all_min;
        v->pt.v[STORAGE_COL_MAX] = valid ? c->max : c->all_max;
        v->pt.mask = 1u << STORAGE_COL_AVG | 1u << STORAGE_COL_MIN | 1u << STORAGE_COL_MAX;
        if (c->nzs > 0) {
            v->pt.v[STORAGE_COL_ZSAVG] = c->zsum / c->nzs;
            v->pt.v[STORAGE_COL_ZSMIN] = c->zmin;
            v->pt.v[STORAGE_COL_ZSMAX] = c->zmax;
            v->pt.mask |= 1u << STORAGE_COL_ZSAVG | 1u << STORAGE_COL_ZSMIN |
                          1u << STORAGE_COL_ZSMAX;
        }
        v->pt.flag = minute_flag(c);
    }
    engine_upload u = {.mn = d->mn, .interval = STORAGE_IV_MIN, .ts = d->minute, .values = vals,
                       .nvalues = n};
    if (n > 0 && engine_ingest(r->e, &u, NULL, NULL) == 0)
        r->stats.minutes++;
    else if (n > 0)
        r->stats.errors++;
    d->closed = d->minute;
    reset(d);
}

static void on_sweep(uv_timer_t *t)
{
    engine_rtd_rollup *r = t->data;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    for (size_t i = 0; i < r->ndevs; i++) {
        dev_acc *d = r->devs[i];
        if (d->open && tv.tv_sec >= d->minute + 60 + r->grace_s)
            emit(r, d);
    }
}

int engine_rtd_rollup_create(engine *e, struct uv_loop_s *loop, int grace_s,
                             engine_rtd_rollup **out)
{
    engine_rtd_rollup *r = calloc(1, sizeof *r);
    if (!r || strmap_create(&r->by_mn) != 0) {
        free(r);
        return -ENOMEM;
    }
    r->e = e;
    r->grace_s = grace_s > 0 ? grace_s : 30;
    uv_timer_init(loop, &r->sweep);
    r->sweep.data = r;
    uv_timer_start(&r->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&r->sweep);
    *out = r;
    return 0;
}

static dev_acc *device(engine_rtd_rollup *r, const char *mn)
{
    dev_acc *d = strmap_get(r->by_mn, mn);
    if (d)
        return d;
    if (strlen(mn) >= ENGINE_ID_SIZE)
        return NULL;
    if (r->ndevs == r->capdevs) {
        size_t cap = r->capdevs ? r->capdevs * 2 : 64;
        dev_acc **v = realloc(r->devs, cap * sizeof *v);
        if (!v)
            return NULL;
        r->devs = v;
        r->capdevs = cap;
    }
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    strcpy(d->mn, mn);
    d->closed = INT64_MIN;
    if (strmap_put(r->by_mn, mn, d, NULL) != 0) {
        free(d);
        return NULL;
    }
    r->devs[r->ndevs++] = d;
    return d;
}

static code_acc *code(dev_acc *d, const char *name)
{
    for (size_t i = 0; i < d->ncodes; i++)
        if (strcmp(d->codes[i].code, name) == 0)
            return &d->codes[i];
    if (strlen(name) >= ENGINE_POLLUTANT_SIZE)
        return NULL;
    if (d->ncodes == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        code_acc *v = realloc(d->codes, cap * sizeof *v);
        if (!v)
            return NULL;
        d->codes = v;
        d->cap = cap;
    }
    code_acc *c = &d->codes[d->ncodes++];
    memset(c, 0, sizeof *c);
    strcpy(c->code, name);
    return c;
}

static void add_value(code_acc *c, const storage_point *p)
{
    double v = p->v[STORAGE_COL_AVG];
    bool valid = engine_flag_valid(p->flag, true, true);
    c->flags[engine_flag_slot(p->flag, true)]++;
    if (c->n++ == 0)
        c->all_min = c->all_max = v;
    c->all_sum += v;
    c->all_min = v < c->all_min ? v : c->all_min;
    c->all_max = v > c->all_max ? v : c->all_max;
    if (!valid)
        return;
    if (c->nvalid++ == 0)
        c->min = c->max = v;
    c->sum += v;
    c->min = v < c->min ? v : c->min;
    c->max = v > c->max ? v : c->max;
    if (p->mask & (1u << STORAGE_COL_ZSAVG)) {
        double z = p->v[STORAGE_COL_ZSAVG];
        if (c->nzs++ == 0)
            c->zmin = c->zmax = z;
        c->zsum += z;
        c->zmin = z < c->zmin ? z : c->zmin;
        c->zmax = z > c->zmax ? z : c->zmax;
    }
}

int engine_rtd_rollup_add(engine_rtd_rollup *r, const engine_upload *u)
{
    if (!u->mn || !*u->mn || u->interval != STORAGE_IV_RTD)
        return -EINVAL;
    dev_acc *d = device(r, u->mn);
    if (!d)
        return -ENOMEM;
    int64_t minute = u->ts - ((u->ts % 60) + 60) % 60;
    if (minute <= d->closed || (d->open && minute < d->minute)) {
        r->stats.late_readings++;
        return 0;
    }
    if (d->open && minute > d->minute)
        emit(r, d);
    d->minute = minute;
    d->open = true;
    for (size_t i = 0; i < u->nvalues; i++) {
        const engine_value *v = &u->values[i];
        if (!(v->pt.mask & (1u << STORAGE_COL_AVG)))
            continue;
        code_acc *c = code(d, v->code);
        if (!c)
            return -ENOMEM;
        add_value(c, &v->pt);
    }
    r->stats.readings++;
    return 0;
}

void engine_rtd_rollup_flush(engine_rtd_rollup *r)
{
    for (size_t i = 0; i < r->ndevs; i++)
        emit(r, r->devs[i]);
}

void engine_rtd_rollup_get_stats(const engine_rtd_rollup *r, engine_rtd_rollup_stats *out)
{
    *out = r->stats;
}

static void on_closed(uv_handle_t *h)
{
    engine_rtd_rollup *r = h->data;
    for (size_t i = 0; i < r->ndevs; i++) {
        free(r->devs[i]->codes);
        free(r->devs[i]);
    }
    free(r->devs);
    strmap_destroy(r->by_mn, NULL);
    free(r);
}

void engine_rtd_rollup_close(engine_rtd_rollup *r)
{
    if (!r)
        return;
    engine_rtd_rollup_flush(r);
    uv_close((uv_handle_t *)&r->sweep, on_closed);
}
