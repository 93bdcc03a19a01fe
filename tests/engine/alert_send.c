/* alert_send: the delivery side of test_webhook_delivery.py. It loads a subscriptions CSV,
 * submits N alerts (ids "it-0" .. "it-N-1", facilities F0..F2, regions 320101..320103,
 * industry 4411 for even ids) to the real delivery on a libuv loop, runs until every
 * delivery has finished or the time is up, and prints one line the test parses:
 *   submitted_ms=<wall clock ms> deliveries=.. delivered=.. failed=.. given_up=.. retries=..
 *   attempts=.. pending=..
 * Usage: alert_send SUBS.CSV N TIMEOUT_MS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <uv.h>

#include "engine.h"

static engine_alerts *alerts;
static uv_timer_t check_timer, deadline;
static int expired;

static void on_bad_row(void *arg, const char *msg)
{
    fprintf(stderr, "alert_send: %s\n", msg);
}

static void on_check(uv_timer_t *t)
{
    engine_alerts_stats st;
    engine_alerts_get_stats(alerts, &st);
    if (st.pending == 0 || expired) {
        uv_timer_stop(&check_timer);
        uv_timer_stop(&deadline);
        uv_stop(t->loop);
    }
}

static void on_deadline(uv_timer_t *t)
{
    expired = 1;
    on_check(t);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: alert_send SUBS.CSV N TIMEOUT_MS\n");
        return 2;
    }
    int n = atoi(argv[2]), timeout_ms = atoi(argv[3]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    engine_subs *subs;
    size_t nbad;
    engine_subs_create(&subs);
    if (engine_subs_load_file(subs, argv[1], on_bad_row, NULL, &nbad) != 0) {
        fprintf(stderr, "alert_send: cannot read %s\n", argv[1]);
        return 1;
    }
    engine_alerts_options o = {.loop = &loop, .timeout_ms = 500, .backoff_base_ms = 100,
                               .backoff_max_ms = 400};
    if (engine_alerts_create(&o, &alerts) != 0)
        return 1;
    engine_alerts_set_subs(alerts, subs);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long submitted_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    static const char *const facilities[] = {"F0", "F1", "F2"};
    static const char *const regions[] = {"320101", "320102", "320103"};
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "it-%d", i);
        engine_alert a = {
            .id = id, .state = ENGINE_ALERT_FIRING, .revision = 1,
            .severity = ENGINE_SEVERITY_WARNING, .facility_id = facilities[i % 3],
            .facility_name = "测试电厂", .uscc = "91320100MA1XXXXX0X", .region = regions[i % 3],
            .industry = i % 2 == 0 ? "4411" : "2511", .outlet = "DA001", .mn = "MN0001",
            .pollutant = "a21002", .unit = "mg/m3", .limit = 50, .value = 75 + i,
            .multiple = (25.0 + i) / 50, .start = 1795968000 + 3600 * (int64_t)i,
        };
        if (engine_alerts_submit(alerts, &a) != 0)
            return 1;
    }
    uv_timer_init(&loop, &check_timer);
    uv_timer_init(&loop, &deadline);
    uv_timer_start(&check_timer, on_check, 10, 10);
    uv_timer_start(&deadline, on_deadline, (uint64_t)timeout_ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);

    engine_alerts_stats st;
    engine_alerts_get_stats(alerts, &st);
    printf("submitted_ms=%lld deliveries=%llu delivered=%llu failed=%llu given_up=%llu "
           "retries=%llu attempts=%llu pending=%llu\n",
           submitted_ms, (unsigned long long)st.deliveries, (unsigned long long)st.delivered,
           (unsigned long long)st.failed_permanent, (unsigned long long)st.given_up,
           (unsigned long long)st.retries, (unsigned long long)st.attempts,
           (unsigned long long)st.pending);
    engine_alerts_close(alerts);
    uv_close((uv_handle_t *)&check_timer, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
