/* export_seed.c: fills the stores tools/bench/export times `plume export` on, quickly: points
 * go straight into chunks through large direct writes, and the registry to match is built in
 * memory and saved into the store.
 *
 *   export_seed DIR SERIES DAYS FIRST_DAY
 *
 * SERIES hourly series (rounded up to whole facilities), DAYS days of hourly values from the
 * local day FIRST_DAY (YYYY-MM-DD). Each facility has 3 gas outlets (DA001-DA003) with 6
 * series each: SO2, NOx and particulate (avg, min, max, oxygen-corrected avg), O2, flow and
 * temperature (avg, min, max); so 72,000 facilities make the national 1.3 M series. Values
 * have two decimals, as analysers send them; about one hour in 400 is flagged C. Limits:
 * SO2 35, NOx 50, particulate 10 mg/m3 (ultra-low emission), judged hourly on the corrected
 * value. A store that already holds series is left as it is.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "storage.h"

#define OUTLETS 3
#define BATCH_POINTS 4000000

static const struct {
    const char *code;
    double base, spread;
    bool zs;
} params[] = {
    {"a21026", 20, 10, true}, {"a21002", 35, 15, true}, {"a34013", 5, 3, true},
    {"a19001", 9, 1.5, false}, {"a00000", 80, 20, false}, {"a01012", 120, 10, false},
};
#define NPARAMS (sizeof params / sizeof params[0])

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double two_decimals(double v)
{
    return round(v * 100) / 100;
}

/* Adds a facility with its outlets and limits. */
static int add_facility(engine_registry *reg, size_t f)
{
    engine_facility fa = {.lat = NAN, .lon = NAN};
    char why[200];
    snprintf(fa.id, sizeof fa.id, "F%06zu", f);
    snprintf(fa.name, sizeof fa.name, "Facility %zu power plant", f);
    char first[40];
    snprintf(first, sizeof first, "91%06zu%09zu", 110000 + f % 800000, f % 1000000000);
    memcpy(fa.uscc, first, 17);
    fa.uscc[17] = engine_uscc_check_char(first);
    snprintf(fa.region, sizeof fa.region, "%06zu", 110000 + (f % 31) * 10000 + f % 100);
    snprintf(fa.industry, sizeof fa.industry, "D4411");
    int rc = engine_registry_add_facility(reg, &fa, why, sizeof why);
    for (int o = 0; rc == 0 && o < OUTLETS; o++) {
        engine_outlet out = {.medium = ENGINE_MEDIUM_GAS, .o2_ref = 6};
        memcpy(out.facility_id, fa.id, sizeof fa.id);
        snprintf(out.code, sizeof out.code, "DA%03d", o + 1);
        snprintf(out.mn, sizeof out.mn, "M%06zuO%d", f, o + 1);
        rc = engine_registry_add_outlet(reg, &out, why, sizeof why);
        static const double lim[3] = {35, 50, 10};
        for (int p = 0; rc == 0 && p < 3; p++) {
            engine_limit l = {.value = lim[p], .period = ENGINE_PERIOD_HOUR,
                              .basis = ENGINE_BASIS_ZS, .valid_from = INT64_MIN,
                              .valid_to = INT64_MAX};
            memcpy(l.facility_id, fa.id, sizeof fa.id);
            memcpy(l.outlet, out.code, sizeof out.code);
            snprintf(l.pollutant, sizeof l.pollutant, "%s", params[p].code);
            snprintf(l.unit, sizeof l.unit, "mg/m3");
            rc = engine_registry_add_limit(reg, &l, why, sizeof why);
        }
    }
    if (rc != 0)
        fprintf(stderr, "export_seed: facility %zu: %s\n", f, why);
    return rc;
}

/* Adds every point of one series over the days. */
static int add_series(storage *st, storage_batch *b, const char *mn, size_t p, int64_t t0,
                      int days)
{
    char key[64];
    storage_sid sid;
    snprintf(key, sizeof key, "%s:%s:hour", mn, params[p].code);
    int rc = storage_series_ensure(st, key, STORAGE_IV_HOUR, &sid);
    double v = params[p].base;
    for (int h = 0; rc == 0 && h < days * 24; h++) {
        v += (uniform() - 0.5) * params[p].spread * 0.2;
        if (v < params[p].base - params[p].spread || v > params[p].base + params[p].spread)
            v = params[p].base;
        storage_point pt = {.ts = t0 + (int64_t)h * 3600, .flag = uniform() < 0.0025 ? 'C' : 'N'};
        double spike = uniform() < 0.002 ? params[p].spread * 3 : 0;
        pt.v[STORAGE_COL_AVG] = two_decimals(v + spike);
        pt.v[STORAGE_COL_MIN] = two_decimals(v * 0.9);
        pt.v[STORAGE_COL_MAX] = two_decimals(v * 1.1 + spike);
        pt.mask = 1u << STORAGE_COL_AVG | 1u << STORAGE_COL_MIN | 1u << STORAGE_COL_MAX;
        if (params[p].zs) {
            pt.v[STORAGE_COL_ZSAVG] = two_decimals((v + spike) * 1.25);
            pt.mask |= 1u << STORAGE_COL_ZSAVG;
        }
        rc = storage_batch_add(b, sid, &pt);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: export_seed DIR SERIES DAYS FIRST_DAY\n");
        return 2;
    }
    size_t nseries = strtoull(argv[2], NULL, 10);
    int days = atoi(argv[3]);
    int64_t t0;
    if (days < 1 || engine_time_parse(argv[4], strlen(argv[4]), ENGINE_CST_OFFSET_S, &t0)) {
        fprintf(stderr, "export_seed: bad DAYS or FIRST_DAY\n");
        return 2;
    }
    size_t nfac = (nseries + OUTLETS * NPARAMS - 1) / (OUTLETS * NPARAMS);
    storage_options so = {.kv_tables = engine_kv_tables};
    storage *st;
    int rc = storage_open(argv[1], &so, &st);
    if (rc != 0) {
        fprintf(stderr, "export_seed: %s: %s\n", argv[1], storage_strerror(rc));
        return 1;
    }
    if (storage_series_count(st) > 0) {
        storage_close(st);
        return 0;
    }
    engine_registry *reg;
    storage_batch *b = storage_batch_create();
    rc = engine_registry_create(&reg);
    for (size_t f = 0; rc == 0 && f < nfac; f++) {
        rc = add_facility(reg, f);
        for (int o = 0; rc == 0 && o < OUTLETS; o++) {
            char mn[32];
            snprintf(mn, sizeof mn, "M%06zuO%d", f, o + 1);
            for (size_t p = 0; rc == 0 && p < NPARAMS; p++)
                rc = add_series(st, b, mn, p, t0, days);
        }
        if (rc == 0 && storage_batch_points(b) >= BATCH_POINTS)
            rc = storage_write(st, b);
    }
    if (rc == 0)
        rc = storage_write(st, b);
    if (rc == 0)
        rc = engine_registry_save(st, reg);
    storage_batch_destroy(b);
    engine_registry_destroy(reg);
    storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "export_seed: %s\n", storage_strerror(rc));
        return 1;
    }
    printf("{\"facilities\":%zu,\"series\":%zu,\"days\":%d}\n", nfac, nfac * OUTLETS * NPARAMS,
           days);
    return 0;
}
