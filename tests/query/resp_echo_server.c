/* resp_echo_server.c: a minimal daemon around the query server for test_server.py, which
 * exercises the connection layer with limits `plume serve` does not expose (output and bulk
 * limits, idle timeout); the series and CEMS.* commands are tested on the real daemon
 * (test_cems.py). It listens on 127.0.0.1 on a free port (and optionally a Unix socket),
 * prints the port on stdout, and runs until
 * SIGTERM or SIGINT, after which it closes the server cleanly (so ASan sees no leak).
 *
 *   resp_echo_server [--token T] [--idle-ms N] [--max-clients N] [--max-bulk N]
 *                    [--max-output N] [--unix PATH] [--host H] [--store DIR]
 *                    [--demo-points N] [--registry FILE.json] [--cems] [--no-cache]
 *
 * With --store, a store is opened (created) in DIR for the series commands, and when it holds
 * no series it is seeded with "DEMO:a21026:hour": 48 hourly points (or --demo-points N) from
 * 2023-11-14T00:00:00Z, the value of point i being i. --cems adds the series the CEMS.*
 * tests read (seed_cems below); --registry loads a registry (JSON) for labels and limits.
 * SIGUSR1 publishes an example alert, as the daemon does when one fires: its webhook JSON
 * on "alerts" and on "alerts.350100".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "query.h"
#include "storage.h"

static uv_signal_t sig_term, sig_int, sig_usr1;
static query_server *srv;

#define DEMO_T0 1699920000

static int seed(storage *st, int npoints)
{
    storage_sid sid;
    if (storage_series_count(st) > 0)
        return 0;
    int rc = storage_series_ensure(st, "DEMO:a21026:hour", STORAGE_IV_AUTO, &sid);
    storage_batch *b = storage_batch_create();
    for (int i = 0; rc == 0 && i < npoints; i++) {
        storage_point p = {.ts = DEMO_T0 + i * 3600, .mask = 1u << STORAGE_COL_AVG,
                           .flag = 'N'};
        p.v[STORAGE_COL_AVG] = i;
        rc = storage_batch_add(b, sid, &p);
    }
    if (rc == 0)
        rc = storage_write(st, b);
    storage_batch_destroy(b);
    return rc;
}

/* Two days of hourly NOx at the registry's outlet 010000A89000 from DEMO_T0: 30 mg/m3,
 * except hours 5-7 (60), 20 (40), 30 (80 but flagged F: not an exceedance) and 40-41 (45);
 * its zsavg column is the value plus 1. And "Dongsi.no2", imported under its own name with
 * stored labels, 24 hourly points of value 10 + i. */
static int seed_cems(storage *st)
{
    storage_sid sid, s2;
    if (storage_series_lookup(st, "010000A89000:a21026:hour", &sid) == 0)
        return 0;
    int rc = storage_series_ensure(st, "010000A89000:a21026:hour", STORAGE_IV_AUTO, &sid);
    if (rc == 0)
        rc = storage_series_ensure(st, "Dongsi.no2", STORAGE_IV_HOUR, &s2);
    if (rc == 0)
        rc = storage_series_set_labels(st, s2, "station=Dongsi\npollutant=no2\ncity=beijing");
    storage_batch *b = storage_batch_create();
    for (int i = 0; rc == 0 && i < 48; i++) {
        double v = 30;
        if (i >= 5 && i <= 7)
            v = 60;
        else if (i == 20)
            v = 40;
        else if (i == 30)
            v = 80;
        else if (i == 40 || i == 41)
            v = 45;
        storage_point p = {.ts = DEMO_T0 + i * 3600,
                           .mask = 1u << STORAGE_COL_AVG | 1u << STORAGE_COL_ZSAVG,
                           .flag = i == 30 ? 'F' : 'N'};
        p.v[STORAGE_COL_AVG] = v;
        p.v[STORAGE_COL_ZSAVG] = v + 1;
        rc = storage_batch_add(b, sid, &p);
        if (rc == 0 && i < 24) {
            storage_point q = {.ts = DEMO_T0 + i * 3600, .mask = 1u << STORAGE_COL_AVG};
            q.v[STORAGE_COL_AVG] = 10 + i;
            rc = storage_batch_add(b, s2, &q);
        }
    }
    if (rc == 0)
        rc = storage_write(st, b);
    storage_batch_destroy(b);
    return rc;
}

static void on_usr1(uv_signal_t *h, int signum)
{
    engine_alert a = {.id = "010000A89000-a21026-hour-1699938000", .state = ENGINE_ALERT_FIRING,
                      .revision = 1, .severity = ENGINE_SEVERITY_WARNING, .facility_id = "F001",
                      .facility_name = "Example Power Plant No. 1", .region = "350100",
                      .outlet = "DA001", .mn = "010000A89000", .pollutant = "a21026",
                      .unit = "mg/m3", .limit = 50, .value = 60, .multiple = 0.2,
                      .start = 1699938000};
    char *json;
    size_t len;
    if (!srv || engine_alert_format(&a, ENGINE_ALERT_FMT_JSON, &json, &len) != 0)
        return;
    query_server_publish(srv, "alerts", json, len);
    query_server_publish(srv, "alerts.350100", json, len);
    free(json);
}

static void on_closed(void *arg)
{
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_usr1, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (!srv)
        return;
    query_server *s = srv;
    srv = NULL;
    query_server_close(s, on_closed, NULL);
}

int main(int argc, char **argv)
{
    query_options o;
    const char *store_dir = NULL;
    int demo_points = 48;
    const char *registry_file = NULL;
    bool cems = false;
    engine_registry *reg = NULL;
    storage *st = NULL;
    query_options_default(&o);
    o.port = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(k, "--cems") == 0) {
            cems = true;
            i--;
        } else if (strcmp(k, "--no-cache") == 0) {
            o.cache_bytes = SIZE_MAX;
            i--;
        } else if (strcmp(k, "--registry") == 0)
            registry_file = v;
        else if (strcmp(k, "--token") == 0)
            o.auth_token = v;
        else if (strcmp(k, "--idle-ms") == 0)
            o.idle_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-clients") == 0)
            o.max_clients = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-bulk") == 0)
            o.max_bulk_len = strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-output") == 0)
            o.max_output_len = strtoul(v, NULL, 10);
        else if (strcmp(k, "--unix") == 0)
            o.unix_path = v;
        else if (strcmp(k, "--host") == 0)
            o.host = v;
        else if (strcmp(k, "--store") == 0)
            store_dir = v;
        else if (strcmp(k, "--demo-points") == 0)
            demo_points = atoi(v);
        else {
            fprintf(stderr, "resp_echo_server: unknown option %s\n", k);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (store_dir) {
        int src = storage_open(store_dir, NULL, &st);
        if (src == 0)
            src = seed(st, demo_points);
        if (src == 0 && cems)
            src = seed_cems(st);
        if (src != 0) {
            fprintf(stderr, "resp_echo_server: %s: %s\n", store_dir, storage_strerror(src));
            storage_close(st);
            return 1;
        }
        o.storage = st;
    }
    if (registry_file) {
        engine_import_report rep = {0};
        int rrc = engine_registry_create(&reg);
        if (rrc == 0)
            rrc = engine_registry_load_json_file(reg, registry_file, &rep);
        if (rrc != 0 || rep.rejected) {
            fprintf(stderr, "resp_echo_server: %s: cannot load (%d, %zu refused)\n",
                    registry_file, rrc, rep.rejected);
            engine_registry_destroy(reg);
            storage_close(st);
            return 1;
        }
    }
    uv_loop_t *loop = uv_default_loop();
    int rc = query_server_create(loop, &o, &srv);
    if (rc == 0)
        query_server_set_registry(srv, reg);
    if (rc == 0)
        rc = query_server_start(srv);
    if (rc != 0) {
        fprintf(stderr, "resp_echo_server: %s\n", uv_strerror(rc));
        if (srv) {
            query_server_close(srv, NULL, NULL);
            uv_run(loop, UV_RUN_DEFAULT);
        }
        storage_close(st);
        engine_registry_destroy(reg);
        return 1;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_usr1);
    uv_signal_start(&sig_usr1, on_usr1, SIGUSR1);
    printf("%d\n", query_server_port(srv));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    storage_close(st);
    engine_registry_destroy(reg);
    return 0;
}
