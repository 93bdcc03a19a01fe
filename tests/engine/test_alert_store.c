/* The alert tables in a real store: outbox records committed with the caller's batch,
 * rewritten after failed attempts, deleted once delivered, and resumed after the store is
 * closed and opened again (a restart); subscription uploads kept, replaced and loaded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "engine.h"
#include "http_stub.h"
#include "tap.h"

static uv_loop_t loop;
static char dir[] = "/tmp/plume-test-alert-store-XXXXXX";

typedef struct counter {
    int n;
    int has_attempts; /* a record shows a failed attempt */
} counter;

static int count_rec(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    counter *c = arg;
    c->n++;
    if (!memmem(val, vlen, "\"attempts\":0", 12))
        c->has_attempts = 1;
    return 0;
}

static counter outbox_records(storage *st)
{
    counter c = {0};
    storage_sync(st);
    storage_reader *r;
    if (storage_reader_open(st, &r) == 0) {
        storage_kv_scan(r, "outbox", NULL, 0, count_rec, &c);
        storage_reader_close(r);
    }
    return c;
}

static storage *open_store(void)
{
    storage_options o = {.kv_tables = engine_kv_tables};
    storage *st = NULL;
    int rc = storage_open(dir, &o, &st);
    if (rc != 0)
        printf("# storage_open: %s\n", storage_strerror(rc));
    return st;
}

static engine_alerts *alerts;
static uint64_t want;
static int done_pred(void)
{
    engine_alerts_stats s;
    engine_alerts_get_stats(alerts, &s);
    return s.delivered >= want;
}
static void expire(uv_timer_t *t)
{
    *(int *)t->data = 1;
}
static int run_until(int (*pred)(void), int ms)
{
    uv_timer_t t;
    int expired = 0;
    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, expire, (uint64_t)ms, 0);
    while (!pred() && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred();
}

static engine_alerts *start(storage *st, const char *csv)
{
    engine_alerts_options o = {.loop = &loop, .timeout_ms = 1000, .backoff_base_ms = 50,
                               .backoff_max_ms = 100};
    engine_outbox_storage(st, &o.outbox);
    engine_alerts *a = NULL;
    engine_alerts_create(&o, &a);
    if (csv) {
        engine_subs *s;
        engine_subs_create(&s);
        engine_subs_parse_csv(s, "t.csv", csv, strlen(csv), NULL, NULL, NULL);
        engine_alerts_set_subs(a, s);
    }
    return a;
}

static void stop(engine_alerts *a)
{
    engine_alerts_close(a);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static engine_alert sample(const char *id)
{
    return (engine_alert){.id = id, .state = ENGINE_ALERT_FIRING, .revision = 1,
                          .severity = ENGINE_SEVERITY_WARNING, .facility_id = "F1",
                          .region = "320102", .pollutant = "a21026", .unit = "mg/m3",
                          .limit = 35, .value = 40, .multiple = 5.0 / 35, .start = 1795968000};
}

static void test_outbox(void)
{
    int port = stub_dead_port(&loop);
    char csv[128];
    snprintf(csv, sizeof csv, "s,all,,http://127.0.0.1:%d/hook,json\n", port);

    storage *st = open_store();
    CHECK(st != NULL);
    alerts = start(st, csv);
    /* Staged with a batch: nothing in the table until that batch commits. */
    storage_batch *b = storage_batch_create();
    void *ticket;
    engine_alert a = sample("store-1"), a2 = sample("store-2");
    CHECK_EQ_INT(engine_alerts_stage(alerts, b, &a, &ticket), 0);
    void *ticket2;
    CHECK_EQ_INT(engine_alerts_stage(alerts, b, &a2, &ticket2), 0);
    CHECK_EQ_INT(outbox_records(st).n, 0);
    int rc = storage_write(st, b);
    CHECK_EQ_INT(rc, 0);
    storage_batch_destroy(b);
    engine_alerts_committed(ticket, rc);
    engine_alerts_committed(ticket2, rc);
    CHECK_EQ_INT(outbox_records(st).n, 2);
    /* The receiver is down: attempts are written back, records stay. */
    want = 1;
    CHECK(!run_until(done_pred, 300));
    counter c = outbox_records(st);
    CHECK_EQ_INT(c.n, 2);
    CHECK(c.has_attempts);
    stop(alerts);
    storage_close(st);

    /* Restart with the receiver up: both resumed from the store and delivered, deleted. */
    http_stub s = {0};
    CHECK_EQ_INT(stub_start(&s, &loop, port), 0);
    st = open_store();
    alerts = start(st, NULL);
    engine_alerts_stats stats;
    engine_alerts_get_stats(alerts, &stats);
    CHECK_EQ_INT(stats.resumed, 2);
    want = 2;
    CHECK(run_until(done_pred, 5000));
    CHECK_EQ_INT(s.nreqs, 2);
    CHECK_EQ_INT(outbox_records(st).n, 0);
    stop(alerts);
    storage_close(st);
    stub_shutdown(&s);
}

static int subs_errors;
static void on_err(void *arg, const char *msg)
{
    subs_errors++;
    printf("# %s\n", msg);
}

static void test_subscriptions(void)
{
    storage *st = open_store();
    storage_batch *b = storage_batch_create();
    const char *up1 = "s1,facility,F1,http://h/1,json\ns2,region,32,http://h/2,wecom\n";
    const char *up2 = "s3,industry,4411,http://h/3,json\nbad,row\n";
    CHECK_EQ_INT(engine_subs_store_put(b, "nanjing.csv", up1, strlen(up1)), 0);
    CHECK_EQ_INT(engine_subs_store_put(b, "power.csv", up2, strlen(up2)), 0);
    CHECK_EQ_INT(storage_write(st, b), 0);
    engine_subs *s;
    engine_subs_create(&s);
    size_t nbad;
    CHECK_EQ_INT(engine_subs_store_load(st, s, on_err, NULL, &nbad), 0);
    CHECK_EQ_INT(engine_subs_count(s), 3);
    CHECK_EQ_INT(nbad, 1);
    CHECK_EQ_INT(subs_errors, 1);
    engine_subs_destroy(s);

    /* A new upload of the same name replaces the old one. */
    const char *up1b = "s1,facility,F9,http://h/9,json\n";
    CHECK_EQ_INT(engine_subs_store_put(b, "nanjing.csv", up1b, strlen(up1b)), 0);
    CHECK_EQ_INT(engine_subs_store_del(b, "power.csv"), 0);
    CHECK_EQ_INT(storage_write(st, b), 0);
    engine_subs_create(&s);
    CHECK_EQ_INT(engine_subs_store_load(st, s, NULL, NULL, &nbad), 0);
    CHECK_EQ_INT(engine_subs_count(s), 1);
    engine_sub_dest d[2];
    size_t n;
    engine_alert a = sample("x");
    a.facility_id = "F9";
    engine_subs_match(s, &a, d, 2, &n);
    CHECK(n == 1 && strcmp(d[0].url, "http://h/9") == 0);
    engine_subs_destroy(s);
    CHECK_EQ_INT(engine_subs_store_put(b, "", "x", 1), -EINVAL);
    storage_batch_destroy(b);
    storage_close(st);
}

int main(void)
{
    uv_loop_init(&loop);
    if (!mkdtemp(dir))
        return 1;
    test_outbox();
    test_subscriptions();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
