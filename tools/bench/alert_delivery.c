/* alert_delivery: how fast alerts leave plume, measured against in-process receivers
 * on the same loop (tests/engine/http_stub.h), so the figures are plume's and libcurl's
 * cost, not a slow receiver's.
 *   latency     alerts submitted one at a time: submit to receipt, p50 / p99 / max
 *   throughput  N alerts to one JSON receiver (4 in flight)
 *   fan-out     alerts to 20 receivers each
 *   isolation   the latency of a healthy receiver beside 50 hanging and 50 refusing ones
 * Usage: build/tools/bench/alert_delivery [N]   (default 10000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "http_stub.h"

static uv_loop_t loop;
static engine_alerts *alerts;
static uint64_t arrivals, last_arrival_ns;

static void on_request(http_stub *s, const stub_request *req, stub_reply *rep)
{
    if (s->data) { /* the hanging ones */
        rep->mode = STUB_HANG;
        return;
    }
    arrivals++;
    last_arrival_ns = uv_hrtime();
}

static engine_alerts *start(const char *csv)
{
    engine_alerts_options o = {.loop = &loop, .timeout_ms = 2000};
    engine_alerts *a;
    if (engine_alerts_create(&o, &a) != 0)
        exit(1);
    engine_subs *s;
    engine_subs_create(&s);
    engine_subs_parse_csv(s, "bench.csv", csv, strlen(csv), NULL, NULL, NULL);
    engine_alerts_set_subs(a, s);
    return a;
}

static void submit(int i)
{
    char id[32];
    snprintf(id, sizeof id, "bench-%d", i);
    engine_alert a = {.id = id, .state = ENGINE_ALERT_FIRING, .revision = 1,
                      .severity = ENGINE_SEVERITY_WARNING, .facility_id = "F1",
                      .facility_name = "bench plant", .region = "320102", .pollutant = "a21026",
                      .unit = "mg/m3", .limit = 35, .value = 40 + i % 10, .multiple = 0.2,
                      .start = 1795968000};
    engine_alerts_submit(alerts, &a);
}

static void wait_arrivals(http_stub *stubs, int nstubs, uint64_t n)
{
    while (arrivals < n) {
        uv_run(&loop, UV_RUN_ONCE);
        for (int i = 0; i < nstubs; i++) /* the bench sends more than a stub records */
            if (stubs[i].nreqs > STUB_MAX_REQUESTS / 2)
                stub_free_requests(&stubs[i]);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void latency(const char *label, http_stub *stub, int n)
{
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    for (int i = 0; i < n; i++) {
        uint64_t before = arrivals, t0 = uv_hrtime();
        submit(i);
        wait_arrivals(stub, 1, before + 1);
        lat[i] = last_arrival_ns - t0;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    printf("%-11s %d alerts one at a time: p50 %.0f us, p99 %.0f us, max %.0f us\n", label, n,
           lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3, lat[n - 1] / 1e3);
    free(lat);
}

static void stop(void)
{
    engine_alerts_close(alerts);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    size_t cap = 1 << 20, len = 0;
    char *csv = malloc(cap);
    static http_stub recv[21], hang[50];
    uv_loop_init(&loop);
    engine_log_set_level(ENGINE_LOG_ERROR);
    for (int i = 0; i < 21; i++) {
        recv[i].respond = on_request;
        stub_start(&recv[i], &loop, 0);
    }

    snprintf(csv, cap, "s,all,,http://127.0.0.1:%d/hook,json\n", recv[0].port);
    alerts = start(csv);
    latency("latency", &recv[0], n / 10 > 100 ? n / 10 : 100);
    arrivals = 0;
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < n; i++)
        submit(i);
    wait_arrivals(recv, 1, (uint64_t)n);
    double s = (uv_hrtime() - t0) / 1e9;
    printf("throughput  %d alerts to 1 receiver: %.2f s, %.0f alerts/s\n", n, s, n / s);
    stop();

    for (int i = 1; i <= 20; i++)
        len += (size_t)snprintf(csv + len, cap - len, "s%d,all,,http://127.0.0.1:%d/h,json\n", i,
                                recv[i].port);
    alerts = start(csv);
    arrivals = 0;
    int m = n / 10;
    t0 = uv_hrtime();
    for (int i = 0; i < m; i++)
        submit(i);
    wait_arrivals(recv + 1, 20, (uint64_t)m * 20);
    s = (uv_hrtime() - t0) / 1e9;
    printf("fan-out     %d alerts x 20 receivers: %.2f s, %.0f deliveries/s\n", m, s,
           m * 20 / s);
    stop();

    /* 50 hanging receivers (listening, never answering) and 50 refusing ones. */
    len = (size_t)snprintf(csv, cap, "ok,all,,http://127.0.0.1:%d/h,json\n", recv[0].port);
    for (int i = 0; i < 50; i++) {
        hang[i].respond = on_request;
        hang[i].data = &hang[i];
        stub_start(&hang[i], &loop, 0);
        len += (size_t)snprintf(csv + len, cap - len,
                                "h%d,all,,http://127.0.0.1:%d/h,json\n"
                                "d%d,all,,http://127.0.0.1:%d/h,json\n",
                                i, hang[i].port, i, stub_dead_port(&loop));
    }
    alerts = start(csv);
    latency("isolation", &recv[0], 200);
    stop();

    for (int i = 0; i < 50; i++)
        stub_shutdown(&hang[i]);
    for (int i = 0; i < 21; i++)
        stub_shutdown(&recv[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(csv);
    return 0;
}
