/* live_state.c: what keeping every device's live state in the store costs at national scale
 * (engine/live_state.c): the size of one record, the writer's time to stage one hour of
 * state writes for the whole fleet (each device's record is rewritten about once an hour),
 * and the start of an engine that reads every record back.
 *
 *   build/tools/bench/live_state [DEVICES [DIR]]     (default 300000, a directory in /tmp)
 *
 * The record is a realistic one: a gas outlet judged on three limited pollutants, O2 and
 * flow for 200 hours (a full O2 baseline, runs under way), with eight minute codes. Every
 * device gets a copy under its own MN. Four rounds write one record per device, devices in
 * a random order, in commits of 5,000 records (about what a top-of-hour burst puts in one
 * group commit), each followed by the pruning the engine's timer does a slice a second
 * (here back to back); then the engine restarts on a table holding two records per device.
 * Times are wall clock: they include the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "live.h"

#define PER_COMMIT 5000

static double wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Anonymous resident memory now (kB): the store's mapped file pages are not counted, and
 * the peak would hide what a restart adds. */
static long rss_kb(void)
{
    char line[256];
    long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void mn_of(uint32_t i, char *buf)
{
    snprintf(buf, ENGINE_ID_SIZE, "%08uA89%06u%07u", i * 7 + 1, i % 3 * 131, i);
}

static void noop_ack(void *arg, engine_ack_fn fn, void *ack_arg)
{
    (void)arg;
    fn(ack_arg, 0);
}

/* The template device: 200 judged hours of a gas outlet, eight minute codes. */
static int template_device(lout *lo)
{
    engine_registry *reg;
    char why[128];
    engine_registry_create(&reg);
    engine_facility f = {.id = "F1", .name = "Plant", .lat = 0, .lon = 0};
    engine_registry_add_facility(reg, &f, why, sizeof why);
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "T1", .o2_ref = 6};
    engine_registry_add_outlet(reg, &o, why, sizeof why);
    const char *codes[] = {"a21026", "a21002", "a34013", "a19001", "a00000"};
    for (int i = 0; i < 3; i++) {
        engine_limit l = {.facility_id = "F1", .outlet = "DA001", .value = 100,
                          .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                          .basis = ENGINE_BASIS_MEASURED, .valid_from = INT64_MIN,
                          .valid_to = INT64_MAX};
        snprintf(l.pollutant, sizeof l.pollutant, "%s", codes[i]);
        engine_registry_add_limit(reg, &l, why, sizeof why);
    }
    findings *fnd;
    findings_create(NULL, &fnd);
    storage_batch *b = storage_batch_create();
    judge_ctx c = {.reg = reg, .batch = b, .add_ack = noop_ack};
    const engine_outlet *eo = engine_registry_outlet_by_mn(reg, "T1", 2);
    memset(lo, 0, sizeof *lo);
    strcpy(lo->mn, "T1");
    lo->fw = fwatch_create();
    for (int h = 0; h < 200; h++) {
        engine_value v[5];
        for (int i = 0; i < 5; i++) {
            v[i] = (engine_value){.code = codes[i]};
            v[i].pt.mask = 1u << STORAGE_COL_AVG;
            v[i].pt.flag = 'N';
            v[i].pt.v[STORAGE_COL_AVG] = i == 3 ? 8.0 + h % 7 / 10.0 : 20.0 + (h * 7 + i) % 13;
        }
        engine_upload u = {.mn = "T1", .interval = STORAGE_IV_HOUR,
                           .ts = 1793462400 + 3600 * (int64_t)h, .values = v, .nvalues = 5};
        findings_hour(fnd, &c, lo->fw, eo, &u);
    }
    const char *mins[] = {"a21026", "a21002", "a34013", "a19001", "a00000", "a01011",
                          "a01012", "a01013"};
    for (int i = 0; i < 8; i++)
        strcpy(lo->codes[lo->ncodes++], mins[i]);
    lo->newest_end = lo->open_hour = 1793462400 + 200 * 3600;
    lo->silent_start = INT64_MIN;
    lo->last_min_ts = lo->open_hour - 60;
    lo->min_step = 60;
    findings_destroy(fnd);
    storage_batch_destroy(b);
    engine_registry_destroy(reg);
    return lo->fw ? 0 : -1;
}

static long long dir_kb(const char *dir)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &sb) == 0 ? (long long)sb.st_blocks / 2 : -1;
}

static lout *no_get(void *arg, const char *mn)
{
    (void)arg;
    (void)mn;
    return NULL;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)atol(argv[1]) : 300000;
    char tmpl[] = "/tmp/plume-bench-live-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    lout *devs = calloc(n, sizeof *devs);
    uint32_t *order = malloc(n * sizeof *order);
    findings *fnd;
    size_t restored, bad, len;
    if (!dir || !devs || !order || template_device(&devs[0]) != 0 ||
        findings_create(NULL, &fnd) != 0)
        return 1;
    uint8_t *rec;
    live_state_encode(&devs[0], &rec, &len);
    free(rec);
    printf("{\"devices\": %u, \"record_bytes\": %zu}\n", n, len);
    lout **ptrs = malloc(n * sizeof *ptrs);
    for (uint32_t i = 0; i < n; i++) {
        devs[i] = devs[0]; /* the same checks' state, shared: encoding only reads it */
        mn_of(i, devs[i].mn);
        ptrs[i] = &devs[i];
        order[i] = i;
    }
    srand(7);
    for (uint32_t i = n; i > 1; i--) { /* devices report in no particular order */
        uint32_t j = (uint32_t)rand() % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }

    storage *st;
    storage_options so = {.kv_tables = engine_kv_tables};
    live_log *g;
    if (storage_open(dir, &so, &st) != 0 ||
        live_log_open(st, fnd, no_get, NULL, &g, &restored, &bad) != 0)
        return 1;
    for (int round = 0; round < 4; round++) {
        double t0 = wall_s(), c0 = cpu_s();
        storage_batch *b = storage_batch_create();
        for (uint32_t i = 0; i < n; i++) {
            live_log_save(g, b, &devs[order[i]]);
            if ((i + 1) % PER_COMMIT == 0 || i + 1 == n) {
                if (storage_write(st, b) != 0)
                    return 1;
                storage_batch_clear(b);
            }
        }
        double t1 = wall_s(), c1 = cpu_s();
        /* Pruning, as the engine's timer does it a slice a second, here back to back. */
        unsigned steps = 0;
        uint64_t before = live_log_records(g);
        do {
            live_log_prune_step(g, b, ptrs, n);
            if (storage_write(st, b) != 0)
                return 1;
            storage_batch_clear(b);
            steps++;
        } while (live_log_records(g) == before && steps < 4 + 2 * (n / 8192 + 1));
        storage_batch_destroy(b);
        printf("{\"round\": %d, \"what\": \"%s\", \"wall_s\": %.3f, \"cpu_s\": %.3f, "
               "\"commits\": %u, \"prune_wall_s\": %.3f, \"prune_steps\": %u, "
               "\"records_after\": %llu, \"file_kb\": %lld}\n",
               round, round ? "every device again" : "every device's first record", t1 - t0,
               c1 - c0, (n + PER_COMMIT - 1) / PER_COMMIT, wall_s() - t1, steps,
               (unsigned long long)live_log_records(g), dir_kb(dir));
        (void)c1;
    }
    /* Leave two records per device, as a running engine's table holds between prunes. */
    storage_batch *b = storage_batch_create();
    for (uint32_t i = 0; i < n; i++)
        live_log_save(g, b, &devs[order[i]]);
    if (storage_write(st, b) != 0)
        return 1;
    storage_batch_destroy(b);
    uint64_t records = live_log_records(g);
    live_log_close(g);
    storage_close(st);

    /* A restart: open the store, create an engine (which reads every record back). */
    long rss0 = rss_kb();
    double t0 = wall_s(), c0 = cpu_s();
    if (storage_open(dir, &so, &st) != 0)
        return 1;
    double t1 = wall_s();
    uv_loop_t loop;
    uv_loop_init(&loop);
    engine *e;
    engine_options eo = {.st = st, .loop = &loop};
    if (engine_create(&eo, &e) != 0)
        return 1;
    double t2 = wall_s(), c2 = cpu_s();
    engine_stats es;
    engine_get_stats(e, &es);
    printf("{\"restart\": true, \"records\": %llu, \"devices_restored\": %llu, "
           "\"store_open_s\": %.3f, \"engine_create_s\": %.3f, \"cpu_s\": %.3f, "
           "\"anon_memory_growth_mb\": %.1f}\n",
           (unsigned long long)records, (unsigned long long)es.live.outlets, t1 - t0, t2 - t1,
           c2 - c0, (double)(rss_kb() - rss0) / 1024.0);
    engine_close(e);
    storage_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fwatch_destroy(devs[0].fw);
    findings_destroy(fnd);
    free(devs);
    free(ptrs);
    free(order);
    if (argc <= 2) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
