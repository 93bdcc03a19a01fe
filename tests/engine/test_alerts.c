/* Alerts: the three wire formats and the JSON round trip; delivery against stub receivers on
 * the same loop: delivered once with the right JSON and idempotency key; a receiver that is
 * down and comes back gets everything; one that fails every other request gets everything,
 * repeats only under the same key; dead and hanging receivers do not delay a healthy one;
 * 4xx refusals, robot errcodes, Retry-After, giving up; the states of one alert reach a
 * receiver in order even when the first must be retried; the outbox records written with
 * the batch, deleted when done, and resumed by a new instance. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "http_stub.h"
#include "tap.h"

static uv_loop_t loop;

static engine_alert sample(const char *id, int state, uint32_t rev)
{
    engine_alert a = {
        .id = id, .state = state, .revision = rev, .severity = ENGINE_SEVERITY_CRITICAL,
        .facility_id = "F001", .facility_name = "南京热电有限公司", .uscc = "91320100MA1XXXXX0X",
        .region = "320102", .industry = "4411", .outlet = "DA001", .mn = "010000A8900016F000169DC0",
        .pollutant = "a21026", .unit = "mg/m3", .limit = 35, .value = 52.5, .multiple = 0.5,
        .start = 1795968000, /* 2026-11-30T00:00:00+08:00 */
        .end = state == ENGINE_ALERT_RESOLVED ? 1795975200 : 0,
    };
    return a;
}

/* ---- Formats ------------------------------------------------------------------------------ */

static void test_formats(void)
{
    engine_alert a = sample("ep-1", ENGINE_ALERT_FIRING, 1);
    char key[64];
    CHECK_EQ_INT(engine_alert_key(&a, key, sizeof key), 13);
    CHECK_EQ_STR(key, "ep-1:firing:1");
    char *s;
    size_t len;
    CHECK_EQ_INT(engine_alert_format(&a, ENGINE_ALERT_FMT_JSON, &s, &len), 0);
    cJSON *o = cJSON_Parse(s);
    CHECK(o != NULL);
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "schema")->valuestring, "plume.alert/1");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "id")->valuestring, "ep-1");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "idempotency_key")->valuestring, "ep-1:firing:1");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "state")->valuestring, "firing");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "severity")->valuestring, "critical");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "kind")->valuestring, "exceedance");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "facility_name")->valuestring, "南京热电有限公司");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "uscc")->valuestring, "91320100MA1XXXXX0X");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "region")->valuestring, "320102");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "pollutant")->valuestring, "a21026");
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "pollutant_name")->valuestring, "SO2");
    CHECK(cJSON_GetObjectItem(o, "limit")->valuedouble == 35);
    CHECK(cJSON_GetObjectItem(o, "value")->valuedouble == 52.5);
    CHECK(cJSON_GetObjectItem(o, "multiple")->valuedouble == 0.5);
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "start")->valuestring, "2026-11-30T00:00:00+08:00");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "end")));
    cJSON_Delete(o);

    engine_alert *back;
    CHECK_EQ_INT(engine_alert_parse_json(s, len, &back), 0);
    CHECK_EQ_STR(back->id, "ep-1");
    CHECK_EQ_STR(back->facility_name, "南京热电有限公司");
    CHECK_EQ_STR(back->unit, "mg/m3");
    CHECK_EQ_INT(back->start, a.start);
    CHECK_EQ_INT(back->end, 0);
    CHECK_EQ_INT(back->severity, ENGINE_SEVERITY_CRITICAL);
    CHECK(back->value == 52.5);
    free(back);
    free(s);

    engine_alert r = sample("ep-1", ENGINE_ALERT_RESOLVED, 2);
    CHECK_EQ_INT(engine_alert_format(&r, ENGINE_ALERT_FMT_DINGTALK, &s, &len), 0);
    o = cJSON_Parse(s);
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "msgtype")->valuestring, "markdown");
    cJSON *md = cJSON_GetObjectItem(o, "markdown");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(md, "title")));
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(md, "text"));
    CHECK(text && strstr(text, "超标解除") && strstr(text, "二氧化硫") &&
          strstr(text, "52.5 mg/m3") && strstr(text, "2026-11-30T02:00:00+08:00") &&
          strstr(text, "ep-1"));
    cJSON_Delete(o);
    free(s);

    CHECK_EQ_INT(engine_alert_format(&a, ENGINE_ALERT_FMT_WECOM, &s, &len), 0);
    o = cJSON_Parse(s);
    CHECK_EQ_STR(cJSON_GetObjectItem(o, "msgtype")->valuestring, "markdown");
    md = cJSON_GetObjectItem(o, "markdown");
    const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(md, "content"));
    CHECK(content && strstr(content, "<font color=\"warning\">超标报警</font>") &&
          strstr(content, "DA001") && strlen(content) < 4096);
    CHECK(cJSON_GetObjectItem(md, "title") == NULL);
    cJSON_Delete(o);
    free(s);

    engine_alert bad = a;
    bad.revision = 0;
    CHECK_EQ_INT(engine_alert_format(&bad, 0, &s, &len), -EINVAL);
    bad = a;
    bad.id = "";
    CHECK_EQ_INT(engine_alert_check(&bad), -EINVAL);
    CHECK_EQ_INT(engine_alert_parse_json("[1]", 3, &back), -EINVAL);
    CHECK_EQ_INT(engine_alert_format_parse("wecom"), ENGINE_ALERT_FMT_WECOM);
    CHECK_EQ_INT(engine_alert_format_parse("slack"), -1);
}

/* ---- A fake outbox: records in an array, batches applied on "commit" ------------------ */

#define MAXREC 256
typedef struct rec {
    char *key, *val;
} rec;
static rec store[MAXREC], staged[MAXREC];
static int nstore, nstaged;

static void rec_set(rec *tab, int *n, const void *k, size_t klen, const void *v, size_t vlen)
{
    for (int i = 0; i < *n; i++)
        if (strlen(tab[i].key) == klen && memcmp(tab[i].key, k, klen) == 0) {
            free(tab[i].val);
            tab[i].val = strndup(v, vlen);
            return;
        }
    tab[*n].key = strndup(k, klen);
    tab[*n].val = strndup(v, vlen);
    (*n)++;
}

static int fake_batch_put(void *ctx, storage_batch *b, const void *k, size_t kl, const void *v,
                          size_t vl)
{
    rec_set(staged, &nstaged, k, kl, v, vl);
    return 0;
}
static int fake_put(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    rec_set(store, &nstore, k, kl, v, vl);
    return 0;
}
static int fake_del(void *ctx, const void *k, size_t kl)
{
    for (int i = 0; i < nstore; i++)
        if (strlen(store[i].key) == kl && memcmp(store[i].key, k, kl) == 0) {
            free(store[i].key);
            free(store[i].val);
            store[i] = store[--nstore];
            return 0;
        }
    return -ENOENT;
}
static int fake_scan(void *ctx, engine_outbox_scan_fn fn, void *arg)
{
    for (int i = 0; i < nstore; i++)
        fn(arg, store[i].key, strlen(store[i].key), store[i].val, strlen(store[i].val));
    return 0;
}
static void fake_commit(void)
{
    for (int i = 0; i < nstaged; i++) {
        rec_set(store, &nstore, staged[i].key, strlen(staged[i].key), staged[i].val,
                strlen(staged[i].val));
        free(staged[i].key);
        free(staged[i].val);
    }
    nstaged = 0;
}
static void fake_clear(void)
{
    for (int i = 0; i < nstore; i++) {
        free(store[i].key);
        free(store[i].val);
    }
    nstore = 0;
}
static const engine_outbox_ops fake_ops = {NULL, fake_batch_put, fake_put, fake_del, fake_scan};

/* ---- Helpers ---------------------------------------------------------------------------- */

static void expire(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until pred() or ms pass; returns pred(). */
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

static engine_alerts *alerts;
static int delivered_at_least(uint64_t n)
{
    engine_alerts_stats st;
    engine_alerts_get_stats(alerts, &st);
    return st.delivered + st.failed_permanent + st.given_up >= n;
}
static uint64_t want_done;
static int done_pred(void)
{
    return delivered_at_least(want_done);
}
static engine_alerts_stats stats(void)
{
    engine_alerts_stats st;
    engine_alerts_get_stats(alerts, &st);
    return st;
}

static engine_subs *subs_of(const char *csv)
{
    engine_subs *s;
    engine_subs_create(&s);
    size_t nbad;
    engine_subs_parse_csv(s, "t.csv", csv, strlen(csv), NULL, NULL, &nbad);
    return s;
}

static engine_alerts *start(engine_outbox_ops ops, const char *csv)
{
    engine_alerts_options o = {.loop = &loop, .outbox = ops, .timeout_ms = 2000,
                               .backoff_base_ms = 50, .backoff_max_ms = 200};
    engine_alerts *a;
    if (engine_alerts_create(&o, &a) != 0)
        return NULL;
    if (csv)
        engine_alerts_set_subs(a, subs_of(csv));
    return a;
}

static void stop(engine_alerts *a)
{
    engine_alerts_close(a);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static char csvbuf[2048];
static const char *csv1(int port, const char *format)
{
    snprintf(csvbuf, sizeof csvbuf, "s,all,,http://127.0.0.1:%d/hook,%s\n", port, format);
    return csvbuf;
}

/* ---- Delivery ----------------------------------------------------------------------------- */

static int fired;
static char fired_json[1024];
static void on_fire(void *arg, const engine_alert *al, const char *json, size_t len)
{
    fired++;
    snprintf(fired_json, sizeof fired_json, "%.*s", (int)len, json);
}

static void test_once_and_outbox(void)
{
    http_stub s = {0};
    stub_start(&s, &loop, 0);
    alerts = start(fake_ops, csv1(s.port, "json"));
    engine_alerts_on_fire(alerts, on_fire, NULL);
    engine_alert a = sample("ep-once", ENGINE_ALERT_FIRING, 1);
    void *ticket;
    storage_batch *dummy = (storage_batch *)&s; /* the fake outbox never looks inside */
    CHECK_EQ_INT(engine_alerts_stage(alerts, dummy, &a, &ticket), 0);
    CHECK_EQ_INT(nstaged, 1); /* one record per (alert, destination), in the batch */
    CHECK(strstr(staged[0].key, "ep-once:firing:1|") == staged[0].key);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(s.nreqs, 0); /* nothing is sent before the commit */
    CHECK_EQ_INT(fired, 0);
    fake_commit();
    uint64_t t0 = uv_now(&loop);
    engine_alerts_committed(ticket, 0);
    CHECK_EQ_INT(fired, 1);
    CHECK(strstr(fired_json, "\"ep-once\""));
    want_done = 1;
    CHECK(run_until(done_pred, 3000));
    CHECK(s.nreqs == 1 && s.reqs[0].at_ms - t0 < 100);
    CHECK_EQ_INT(stats().delivered, 1);
    CHECK_EQ_INT(stats().attempts, 1);
    CHECK_EQ_INT(stats().pending, 0);
    CHECK_EQ_STR(s.reqs[0].method, "POST");
    CHECK_EQ_STR(s.reqs[0].path, "/hook");
    char v[128];
    CHECK_EQ_STR(stub_header(&s.reqs[0], "Idempotency-Key", v, sizeof v), "ep-once:firing:1");
    CHECK(strncmp(stub_header(&s.reqs[0], "Content-Type", v, sizeof v), "application/json", 16)
          == 0);
    cJSON *o = cJSON_Parse(s.reqs[0].body);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")), "ep-once");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "mn")), "010000A8900016F000169DC0");
    cJSON_Delete(o);
    CHECK_EQ_INT(nstore, 0); /* delivered: the record is deleted */

    /* A failed commit sends nothing. */
    engine_alert b = sample("ep-lost", ENGINE_ALERT_FIRING, 1);
    CHECK_EQ_INT(engine_alerts_stage(alerts, dummy, &b, &ticket), 0);
    nstaged = 0;
    free(staged[0].key);
    free(staged[0].val);
    engine_alerts_committed(ticket, -EIO);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(s.nreqs, 1);
    CHECK_EQ_INT(fired, 1);
    stop(alerts);
    stub_shutdown(&s);
}

static int fail_odd_count;
static void respond_fail_odd(http_stub *s, const stub_request *req, stub_reply *rep)
{
    if (fail_odd_count++ % 2 == 0) {
        rep->status = 500;
        strcpy(rep->body, "try again");
    }
}

static void test_flaky_receiver(void)
{
    http_stub s = {.respond = respond_fail_odd};
    stub_start(&s, &loop, 0);
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "json"));
    char ids[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof ids[i], "flaky-%d", i);
        engine_alert a = sample(ids[i], ENGINE_ALERT_FIRING, 1);
        CHECK_EQ_INT(engine_alerts_submit(alerts, &a), 0);
    }
    want_done = 10;
    CHECK(run_until(done_pred, 10000));
    CHECK_EQ_INT(stats().delivered, 10);
    CHECK(stats().retries >= 5);
    /* Every alert arrived; each was repeated only under its own key with the same body. */
    int ok = 1, got[10] = {0};
    for (int r = 0; r < s.nreqs; r++) {
        char k[128];
        stub_header(&s.reqs[r], "Idempotency-Key", k, sizeof k);
        int i = atoi(k + 6);
        char want[64];
        snprintf(want, sizeof want, "flaky-%d:firing:1", i);
        ok &= strcmp(k, want) == 0 && strstr(s.reqs[r].body, ids[i]) != NULL;
        got[i]++;
    }
    CHECK(ok);
    for (int i = 0; i < 10; i++)
        ok &= got[i] >= 1;
    CHECK(ok);
    CHECK_EQ_INT(s.nreqs, (int)stats().attempts);
    stop(alerts);
    stub_shutdown(&s);
}

static void test_down_then_up(void)
{
    int port = stub_dead_port(&loop);
    alerts = start((engine_outbox_ops){0}, csv1(port, "json"));
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "down-%d", i);
        engine_alert a = sample(id, ENGINE_ALERT_FIRING, 1);
        engine_alerts_submit(alerts, &a);
    }
    want_done = 1;
    CHECK(!run_until(done_pred, 400)); /* nothing can arrive */
    CHECK(stats().retries >= 2);
    http_stub s = {0};
    CHECK_EQ_INT(stub_start(&s, &loop, port), 0);
    want_done = 5;
    CHECK(run_until(done_pred, 5000));
    CHECK_EQ_INT(stats().delivered, 5);
    CHECK_EQ_INT(s.nreqs, 5);
    stop(alerts);
    stub_shutdown(&s);
}

/* Fails the first attempt of every "firing" state: its retry comes after a backoff, while
 * the "resolved" state behind it could be sent at once. */
static void respond_fail_first_firing(http_stub *s, const stub_request *req, stub_reply *rep)
{
    char k[128];
    stub_header(req, "Idempotency-Key", k, sizeof k);
    int seen = 0;
    for (const stub_request *r = s->reqs; r < req; r++) {
        char k2[128];
        seen += strcmp(stub_header(r, "Idempotency-Key", k2, sizeof k2), k) == 0;
    }
    if (strstr(k, ":firing:") && seen == 0)
        rep->status = 503;
}

static void test_states_in_order(void)
{
    http_stub s = {.respond = respond_fail_first_firing};
    stub_start(&s, &loop, 0);
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "json"));
    char ids[4][16];
    for (int i = 0; i < 4; i++) {
        snprintf(ids[i], sizeof ids[i], "order-%d", i);
        engine_alert f = sample(ids[i], ENGINE_ALERT_FIRING, 1);
        engine_alert r = sample(ids[i], ENGINE_ALERT_RESOLVED, 2);
        CHECK_EQ_INT(engine_alerts_submit(alerts, &f), 0);
        CHECK_EQ_INT(engine_alerts_submit(alerts, &r), 0);
    }
    want_done = 8;
    CHECK(run_until(done_pred, 10000));
    CHECK_EQ_INT(stats().delivered, 8);
    /* For each alert, "resolved" is first sent after the last attempt of "firing". */
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        int last_firing = -1, first_resolved = -1;
        for (int r = 0; r < s.nreqs; r++) {
            char k[128];
            stub_header(&s.reqs[r], "Idempotency-Key", k, sizeof k);
            if (strncmp(k, ids[i], strlen(ids[i])) != 0 || k[strlen(ids[i])] != ':')
                continue;
            if (strstr(k, ":firing:"))
                last_firing = r;
            else if (first_resolved < 0)
                first_resolved = r;
        }
        if (!(last_firing >= 0 && first_resolved > last_firing)) {
            printf("# %s: last firing request %d, first resolved %d\n", ids[i], last_firing,
                   first_resolved);
            ok = 0;
        }
    }
    CHECK(ok);
    stop(alerts);
    stub_shutdown(&s);
}

static void respond_hang(http_stub *s, const stub_request *req, stub_reply *rep)
{
    rep->mode = STUB_HANG;
}

static void test_isolation(void)
{
    http_stub healthy = {0}, hanging = {.respond = respond_hang};
    stub_start(&healthy, &loop, 0);
    stub_start(&hanging, &loop, 0);
    int dead = stub_dead_port(&loop);
    char csv[512];
    snprintf(csv, sizeof csv,
             "a,all,,http://127.0.0.1:%d/hang,json\n"
             "b,all,,http://127.0.0.1:%d/dead,json\n"
             "c,all,,http://127.0.0.1:%d/ok,json\n",
             hanging.port, dead, healthy.port);
    alerts = start((engine_outbox_ops){0}, csv);
    /* Fill the dead and hanging destinations first, then measure a new alert's latency. */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "iso-%d", i);
        engine_alert a = sample(id, ENGINE_ALERT_FIRING, 1);
        engine_alerts_submit(alerts, &a);
    }
    want_done = 20;
    CHECK(run_until(done_pred, 3000)); /* the healthy one got all 20 */
    CHECK_EQ_INT(healthy.nreqs, 20);
    uint64_t t0 = uv_now(&loop);
    engine_alert a = sample("iso-late", ENGINE_ALERT_FIRING, 1);
    engine_alerts_submit(alerts, &a);
    want_done = 21;
    CHECK(run_until(done_pred, 3000));
    uint64_t took = healthy.reqs[20].at_ms - t0;
    printf("# healthy receiver got the alert after %llu ms\n", (unsigned long long)took);
    CHECK(took < 1000); /* well before the hanging receiver's 2 s timeout */
    CHECK(hanging.nreqs <= 4); /* at most max_inflight held by the hanging receiver */
    stop(alerts);
    stub_shutdown(&healthy);
    stub_shutdown(&hanging);
}

static int status_to_send;
static char body_to_send[256], headers_to_send[256];
static void respond_scripted(http_stub *s, const stub_request *req, stub_reply *rep)
{
    rep->status = status_to_send;
    strcpy(rep->body, body_to_send);
    strcpy(rep->headers, headers_to_send);
    if (s->nreqs > 1) { /* only the first answer is scripted */
        rep->status = 200;
        strcpy(rep->body, "{\"errcode\":0,\"errmsg\":\"ok\"}");
        rep->headers[0] = '\0';
    }
}

static void test_refusals(void)
{
    http_stub s = {.respond = respond_scripted};
    stub_start(&s, &loop, 0);

    /* 404: refused for good, not retried. */
    status_to_send = 404;
    strcpy(body_to_send, "no");
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "json"));
    engine_alert a = sample("ref-404", ENGINE_ALERT_FIRING, 1);
    engine_alerts_submit(alerts, &a);
    want_done = 1;
    CHECK(run_until(done_pred, 3000));
    CHECK_EQ_INT(stats().failed_permanent, 1);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(s.nreqs, 1);
    stop(alerts);

    /* A DingTalk robot answering 200 with an errcode: refused (keyword check failed). */
    stub_free_requests(&s);
    status_to_send = 200;
    strcpy(body_to_send, "{\"errcode\":310000,\"errmsg\":\"keywords not in content\"}");
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "dingtalk"));
    engine_alerts_submit(alerts, &a);
    CHECK(run_until(done_pred, 3000));
    CHECK_EQ_INT(stats().failed_permanent, 1);
    CHECK_EQ_INT(stats().delivered, 0);
    cJSON *o = cJSON_Parse(s.reqs[0].body);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "msgtype")), "markdown");
    cJSON_Delete(o);
    stop(alerts);

    /* 429 with Retry-After: 1: the second attempt waits a second, then succeeds. */
    stub_free_requests(&s);
    status_to_send = 429;
    strcpy(body_to_send, "slow down");
    strcpy(headers_to_send, "Retry-After: 1\r\n");
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "wecom"));
    engine_alerts_submit(alerts, &a);
    CHECK(run_until(done_pred, 5000));
    CHECK_EQ_INT(stats().delivered, 1);
    CHECK_EQ_INT(s.nreqs, 2);
    if (s.nreqs == 2)
        CHECK(s.reqs[1].at_ms - s.reqs[0].at_ms >= 950);
    stop(alerts);
    headers_to_send[0] = '\0';
    stub_shutdown(&s);
}

static void test_timeout_and_give_up(void)
{
    http_stub hanging = {.respond = respond_hang};
    stub_start(&hanging, &loop, 0);
    engine_alerts_options o = {.loop = &loop, .timeout_ms = 200, .backoff_base_ms = 50,
                               .backoff_max_ms = 100, .give_up_s = 1};
    CHECK_EQ_INT(engine_alerts_create(&o, &alerts), 0);
    engine_alerts_set_subs(alerts, subs_of(csv1(hanging.port, "json")));
    engine_alert a = sample("give-up", ENGINE_ALERT_FIRING, 1);
    engine_alerts_submit(alerts, &a);
    want_done = 1;
    CHECK(run_until(done_pred, 5000));
    CHECK_EQ_INT(stats().given_up, 1);
    CHECK(stats().attempts >= 2); /* timed out, retried, until the day (here 1 s) was over */
    CHECK_EQ_INT(stats().pending, 0);
    stop(alerts);
    stub_shutdown(&hanging);
}

static void respond_robot_ok(http_stub *s, const stub_request *req, stub_reply *rep)
{
    strcpy(rep->body, "{\"errcode\":0,\"errmsg\":\"ok\"}");
}

static void test_robot_pacing(void)
{
    /* A robot takes 20 messages a minute: the 21st waits instead of being refused. */
    http_stub s = {.respond = respond_robot_ok};
    stub_start(&s, &loop, 0);
    alerts = start((engine_outbox_ops){0}, csv1(s.port, "wecom"));
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "robot-%d", i);
        engine_alert a = sample(id, ENGINE_ALERT_FIRING, 1);
        engine_alerts_submit(alerts, &a);
    }
    want_done = 20;
    CHECK(run_until(done_pred, 3000));
    want_done = 21;
    CHECK(!run_until(done_pred, 300));
    CHECK_EQ_INT(stats().delivered, 20);
    CHECK_EQ_INT(stats().pending, 5);
    CHECK_EQ_INT(s.nreqs, 20);
    stop(alerts);
    stub_shutdown(&s);
}

static void test_resume(void)
{
    /* First run: the receiver is down; the record stays in the outbox across close. */
    int port = stub_dead_port(&loop);
    fake_clear();
    alerts = start(fake_ops, csv1(port, "json"));
    engine_alert a = sample("resume-1", ENGINE_ALERT_FIRING, 1);
    CHECK_EQ_INT(engine_alerts_submit(alerts, &a), 0);
    engine_alert b = sample("resume-1", ENGINE_ALERT_RESOLVED, 2);
    CHECK_EQ_INT(engine_alerts_submit(alerts, &b), 0);
    CHECK_EQ_INT(nstore, 2);
    want_done = 1;
    CHECK(!run_until(done_pred, 300));
    int progressed = 0;
    for (int i = 0; i < nstore; i++)
        progressed |= strstr(store[i].val, "\"attempts\":0") == NULL;
    CHECK(progressed); /* attempts and the last error were written back */
    stop(alerts);
    CHECK_EQ_INT(nstore, 2);

    /* Second run, receiver up: both resumed and delivered, in order, records deleted. */
    http_stub s = {0};
    CHECK_EQ_INT(stub_start(&s, &loop, port), 0);
    alerts = start(fake_ops, NULL); /* no subscriptions needed: records name their dest */
    CHECK_EQ_INT(stats().resumed, 2);
    want_done = 2;
    CHECK(run_until(done_pred, 5000));
    CHECK_EQ_INT(stats().delivered, 2);
    CHECK_EQ_INT(s.nreqs, 2);
    char k0[128] = "", k1[128] = "";
    stub_header(&s.reqs[0], "Idempotency-Key", k0, sizeof k0);
    stub_header(&s.reqs[1], "Idempotency-Key", k1, sizeof k1);
    CHECK((strcmp(k0, "resume-1:firing:1") == 0 && strcmp(k1, "resume-1:resolved:2") == 0) ||
          (strcmp(k1, "resume-1:firing:1") == 0 && strcmp(k0, "resume-1:resolved:2") == 0));
    CHECK_EQ_INT(nstore, 0);
    stop(alerts);
    stub_shutdown(&s);
}

int main(void)
{
    uv_loop_init(&loop);
    test_formats();
    test_once_and_outbox();
    test_flaky_receiver();
    test_down_then_up();
    test_states_in_order();
    test_isolation();
    test_refusals();
    test_timeout_and_give_up();
    test_robot_pacing();
    test_resume();
    fake_clear();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    return tap_done();
}
