/* domain.c: timings of the engine's domain core at national scale: a registry of 72,000
 * facilities with 3 outlets and 6 limits each (built from CSV text, encoded, decoded), MN
 * lookups (the ingest hot path), hourly roll-ups of minute data, daily roll-ups, and
 * detector feeds.
 *
 *   build/tools/bench/domain [facilities]     (default 72000)
 *
 * Times are CPU time of this process, so other load on the machine does not inflate them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); /* CPU time: the machine is shared */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A text buffer that grows. */
typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (t->p && (size_t)k < t->cap - t->n) {
            t->n += (size_t)k;
            return;
        }
        t->cap = t->cap ? t->cap * 2 : 1 << 20;
        t->p = realloc(t->p, t->cap);
    }
}

static void mn_of(int f, int o, char *buf)
{
    snprintf(buf, 32, "%08dA89%06d%07d", f * 7 + 1, o * 131, f);
}

int main(int argc, char **argv)
{
    int nf = argc > 1 ? atoi(argv[1]) : 72000;
    text fac = {0}, out = {0}, lim = {0};
    add(&fac, "id,name,uscc,region,industry,lat,lon\n");
    add(&out, "facility_id,code,medium,mn,o2_ref\n");
    add(&lim, "facility_id,outlet,pollutant,value,period,valid_from,valid_to\n");
    char uscc[19], mn[32];
    for (int f = 0; f < nf; f++) {
        snprintf(uscc, sizeof uscc, "91%06d%09d", 110000 + f % 800000, f * 13);
        uscc[17] = engine_uscc_check_char(uscc);
        uscc[18] = 0;
        add(&fac, "F%06d,Facility %d,%s,%06d,D4411,%.4f,%.4f\n", f, f, uscc, 110000 + f % 900,
            30 + f % 10 * 0.5, 110 + f % 20 * 0.5);
        for (int o = 0; o < 3; o++) {
            mn_of(f, o, mn);
            add(&out, "F%06d,DA00%d,gas,%s,6\n", f, o + 1, mn);
            add(&lim, "F%06d,DA00%d,a21026,100,hour,,2025-01-01\n", f, o + 1);
            add(&lim, "F%06d,DA00%d,a21026,35,hour,2025-01-01,\n", f, o + 1);
        }
    }

    engine_registry *r;
    engine_registry_create(&r);
    engine_import_report rep = {0};
    double t0 = now_s();
    engine_registry_load_csv(r, ENGINE_REG_FACILITIES, fac.p, fac.n, "facilities", &rep);
    engine_registry_load_csv(r, ENGINE_REG_OUTLETS, out.p, out.n, "outlets", &rep);
    engine_registry_load_csv(r, ENGINE_REG_LIMITS, lim.p, lim.n, "limits", &rep);
    double t1 = now_s();
    printf("registry import (CSV, %.1f MB): %zu records, %zu refused, %.3f s, %.0f records/s\n",
           (double)(fac.n + out.n + lim.n) / 1e6, rep.loaded, rep.rejected, t1 - t0,
           (double)rep.loaded / (t1 - t0));

    uint8_t *buf;
    size_t len;
    t0 = now_s();
    engine_registry_encode(r, &buf, &len);
    t1 = now_s();
    engine_registry *r2;
    engine_registry_decode(buf, len, &r2);
    double t2 = now_s();
    printf("registry encode: %.1f MB in %.3f s; decode (every record re-checked): %.3f s\n",
           (double)len / 1e6, t1 - t0, t2 - t1);

    /* MN lookups in a scattered order, and the limit in force for each. */
    int nlook = 2000000;
    char (*mns)[32] = malloc((size_t)nlook * 32);
    uint64_t rng = 1;
    for (int i = 0; i < nlook; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        mn_of((int)((rng >> 33) % (uint64_t)nf), (int)((rng >> 20) % 3), mns[i]);
    }
    size_t hit = 0;
    t0 = now_s();
    for (int i = 0; i < nlook; i++)
        hit += engine_registry_outlet_by_mn(r2, mns[i], 24) != NULL;
    t1 = now_s();
    size_t lims = 0;
    for (int i = 0; i < nlook; i++) {
        const engine_outlet *o = engine_registry_outlet_by_mn(r2, mns[i], 24);
        lims += engine_registry_limit_find(r2, o, "a21026", ENGINE_PERIOD_HOUR,
                                           1735660800 + i % 2 * 7200 - 3600) != NULL;
    }
    t2 = now_s();
    printf("MN lookup: %.0f ns/op (%zu/%d found); with the limit in force: %.0f ns/op (%zu)\n",
           (t1 - t0) / nlook * 1e9, hit, nlook, (t2 - t1) / nlook * 1e9, lims);

    /* Hourly roll-ups of 60 minutes, and daily roll-ups of 24 hours. */
    storage_point m[60];
    for (int i = 0; i < 60; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].ts = 1735660800 + i * 60;
        m[i].v[STORAGE_COL_AVG] = 30 + i % 7;
        m[i].v[STORAGE_COL_ZSAVG] = 40 + i % 5;
        m[i].mask = (1u << STORAGE_COL_AVG) | (1u << STORAGE_COL_ZSAVG);
        m[i].flag = i % 13 ? 'N' : 'C';
    }
    engine_rollup_opts ro;
    engine_rollup_opts_init(&ro);
    engine_period_result res;
    int nroll = 1000000;
    double sink = 0;
    t0 = now_s();
    for (int i = 0; i < nroll; i++) {
        m[i % 60].v[STORAGE_COL_AVG] += 1e-9;
        engine_rollup_hour(m, 60, NULL, &ro, &res);
        sink += res.p.v[STORAGE_COL_AVG];
    }
    t1 = now_s();
    printf("hourly roll-up of 60 minutes: %.0f ns/hour (%.1f ns/minute)\n",
           (t1 - t0) / nroll * 1e9, (t1 - t0) / nroll / 60 * 1e9);

    /* Detector: a year of hours per series, values around the limit. */
    int nser = 200, nh = 8760;
    size_t events = 0;
    t0 = now_s();
    for (int s = 0; s < nser; s++) {
        engine_detector *d;
        char key[32];
        snprintf(key, sizeof key, "MN%d", s);
        engine_detector_create(key, "a21026", ENGINE_PERIOD_HOUR, NULL, &d);
        for (int h = 0; h < nh; h++) {
            engine_period p = {1735660800 + (int64_t)h * 3600,
                               30 + 8 * sin(h * 0.3 + s) + (h % 97 == 0 ? 20 : 0), 35, 'N',
                               true};
            engine_detector_feed(d, &p, NULL, NULL);
        }
        const engine_episode *e;
        events += engine_detector_episodes(d, &e);
        engine_detector_destroy(d);
    }
    t1 = now_s();
    printf("detector: %.0f ns per hourly period in order (%d series x %d hours)\n",
           (t1 - t0) / ((double)nser * nh) * 1e9, nser, nh);

    free(mns);
    free(buf);
    free(fac.p);
    free(out.p);
    free(lim.p);
    engine_registry_destroy(r);
    engine_registry_destroy(r2);
    return sink == 0 && events == (size_t)-1;
}
