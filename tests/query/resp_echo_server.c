/* resp_echo_server.c: a minimal daemon around the query server for the integration tests,
 * until `plume serve` wires the server into the real daemon. It listens on 127.0.0.1 on a
 * free port (and optionally a Unix socket), prints the port on stdout, and runs until
 * SIGTERM or SIGINT, after which it closes the server cleanly (so ASan sees no leak).
 *
 *   resp_echo_server [--token T] [--idle-ms N] [--max-clients N] [--max-bulk N]
 *                    [--max-output N] [--unix PATH] [--host H] [--store DIR]
 *                    [--demo-points N]
 *
 * With --store, a store is opened (created) in DIR for the series commands, and when it holds
 * no series it is seeded with "DEMO:a21026:hour": 48 hourly points (or --demo-points N) from
 * 2023-11-14T00:00:00Z, the value of point i being i.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "query.h"
#include "storage.h"

static uv_signal_t sig_term, sig_int;
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

static void on_closed(void *arg)
{
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
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
    storage *st = NULL;
    query_options_default(&o);
    o.port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--token") == 0)
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
        if (src != 0) {
            fprintf(stderr, "resp_echo_server: %s: %s\n", store_dir, storage_strerror(src));
            storage_close(st);
            return 1;
        }
        o.storage = st;
    }
    uv_loop_t *loop = uv_default_loop();
    int rc = query_server_create(loop, &o, &srv);
    if (rc == 0)
        rc = query_server_start(srv);
    if (rc != 0) {
        fprintf(stderr, "resp_echo_server: %s\n", uv_strerror(rc));
        if (srv) {
            query_server_close(srv, NULL, NULL);
            uv_run(loop, UV_RUN_DEFAULT);
        }
        storage_close(st);
        return 1;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    printf("%d\n", query_server_port(srv));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    storage_close(st);
    return 0;
}
