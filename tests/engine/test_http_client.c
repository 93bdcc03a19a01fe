/* The HTTP client against a stub server on the same loop: responses with their status,
 * headers and body; errors (refused, timeout, closed connection) reported, including the
 * last transfer ending by timeout; body caps; many transfers at once; cancellation on close
 * with every handle freed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "http_stub.h"
#include "tap.h"

static uv_loop_t loop;
static http_stub stub;

typedef struct result {
    int done;
    int status;
    long code;
    char body[256];
    size_t body_len;
    int truncated;
    char etag[64], last_modified[64], custom[64];
    char error[256];
} result;

static void on_done(void *arg, const engine_http_response *res)
{
    result *r = arg;
    r->done++;
    r->status = res->status;
    r->code = res->http_code;
    snprintf(r->body, sizeof r->body, "%s", res->body);
    r->body_len = res->body_len;
    r->truncated = res->truncated;
    snprintf(r->etag, sizeof r->etag, "%s", res->etag ? res->etag : "");
    snprintf(r->last_modified, sizeof r->last_modified, "%s",
             res->last_modified ? res->last_modified : "");
    const char *x = engine_http_response_header(res, "x-custom");
    snprintf(r->custom, sizeof r->custom, "%s", x ? x : "");
    snprintf(r->error, sizeof r->error, "%s", res->error);
}

static void respond(http_stub *s, const stub_request *req, stub_reply *rep)
{
    if (strcmp(req->path, "/etag") == 0) {
        strcpy(rep->headers, "ETag: \"abc123\"\r\nLast-Modified: Sun, 22 Nov 2026 08:00:00 GMT\r\n"
                             "X-Custom:  spaced value  \r\n");
        strcpy(rep->body, "{\"data\":[1,2,3]}");
    } else if (strcmp(req->path, "/missing") == 0) {
        rep->status = 404;
        strcpy(rep->body, "no such thing");
    } else if (strcmp(req->path, "/hang") == 0) {
        rep->mode = STUB_HANG;
    } else if (strcmp(req->path, "/close") == 0) {
        rep->mode = STUB_CLOSE;
    } else if (strcmp(req->path, "/long") == 0) {
        memset(rep->body, 'x', 1000);
        rep->body[1000] = '\0';
    } else if (strcmp(req->path, "/echo") == 0) {
        snprintf(rep->body, sizeof rep->body, "%s %s", req->method, req->body);
    }
}

static char url[256];
static const char *u(const char *path)
{
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", stub.port, path);
    return url;
}

static void test_get_headers(engine_http *c)
{
    result r = {0};
    engine_http_req req = {.url = u("/etag")};
    CHECK_EQ_INT(engine_http_request(c, &req, on_done, &r), 0);
    CHECK_EQ_INT(engine_http_pending(c), 1);
    CHECK(stub_run_until(&loop, &r.done, 5000));
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.code, 200);
    CHECK_EQ_STR(r.body, "{\"data\":[1,2,3]}");
    CHECK_EQ_STR(r.etag, "\"abc123\"");
    CHECK_EQ_STR(r.last_modified, "Sun, 22 Nov 2026 08:00:00 GMT");
    CHECK_EQ_STR(r.custom, "spaced value");
    CHECK_EQ_INT(engine_http_pending(c), 0);
}

static void test_post(engine_http *c)
{
    result r = {0};
    const char *hdrs[] = {"Content-Type: application/json", "Idempotency-Key: k1", NULL};
    const char *body = "{\"a\":1}";
    engine_http_req req = {.url = u("/echo"), .headers = hdrs, .body = body,
                               .body_len = strlen(body)};
    int before = stub.nreqs;
    CHECK_EQ_INT(engine_http_request(c, &req, on_done, &r), 0);
    CHECK(stub_run_until(&loop, &r.done, 5000));
    CHECK_EQ_INT(r.code, 200);
    CHECK_EQ_STR(r.body, "POST {\"a\":1}");
    CHECK_EQ_INT(stub.nreqs, before + 1);
    char v[64];
    CHECK_EQ_STR(stub_header(&stub.reqs[before], "Idempotency-Key", v, sizeof v), "k1");
    CHECK(stub_header(&stub.reqs[before], "Expect", v, sizeof v) == NULL);

    result p = {0};
    engine_http_req put = {.method = "PUT", .url = u("/echo"), .body = "zz", .body_len = 2};
    CHECK_EQ_INT(engine_http_request(c, &put, on_done, &p), 0);
    CHECK(stub_run_until(&loop, &p.done, 5000));
    CHECK_EQ_STR(p.body, "PUT zz");
}

static void test_errors(engine_http *c)
{
    result r404 = {0}, refused = {0}, closed = {0}, hang = {0};
    engine_http_req req = {.url = u("/missing")};
    CHECK_EQ_INT(engine_http_request(c, &req, on_done, &r404), 0);
    CHECK(stub_run_until(&loop, &r404.done, 5000));
    CHECK_EQ_INT(r404.status, 0);
    CHECK_EQ_INT(r404.code, 404);
    CHECK_EQ_STR(r404.body, "no such thing");

    char dead[128];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/x", stub_dead_port(&loop));
    engine_http_req dreq = {.url = dead};
    CHECK_EQ_INT(engine_http_request(c, &dreq, on_done, &refused), 0);
    CHECK(stub_run_until(&loop, &refused.done, 5000));
    CHECK_EQ_INT(refused.status, -ECONNREFUSED);
    CHECK_EQ_INT(refused.code, 0);
    CHECK(refused.error[0] != '\0');

    engine_http_req creq = {.url = u("/close")};
    CHECK_EQ_INT(engine_http_request(c, &creq, on_done, &closed), 0);
    CHECK(stub_run_until(&loop, &closed.done, 5000));
    CHECK(closed.status < 0);

    /* The only transfer, ending by timeout: it must still be reported. */
    uint64_t t0 = uv_now(&loop);
    engine_http_req hreq = {.url = u("/hang"), .timeout_ms = 300};
    CHECK_EQ_INT(engine_http_request(c, &hreq, on_done, &hang), 0);
    CHECK(stub_run_until(&loop, &hang.done, 5000));
    uint64_t took = uv_now(&loop) - t0;
    CHECK_EQ_INT(hang.status, -ETIMEDOUT);
    CHECK(took >= 250 && took < 2000);
    CHECK_EQ_INT(engine_http_pending(c), 0);

    CHECK_EQ_INT(engine_http_request(c, &(engine_http_req){.url = "ftp://x/"}, on_done,
                                     &hang),
                 -EINVAL);
    CHECK_EQ_INT(engine_http_request(c, &(engine_http_req){.url = NULL}, on_done, &hang),
                 -EINVAL);
}

static void test_cap(void)
{
    engine_http *c;
    engine_http_options o = {.max_body_len = 10};
    CHECK_EQ_INT(engine_http_create(&loop, &o, &c), 0);
    result r = {0};
    CHECK_EQ_INT(engine_http_request(c, &(engine_http_req){.url = u("/long")}, on_done, &r),
                 0);
    CHECK(stub_run_until(&loop, &r.done, 5000));
    CHECK_EQ_INT(r.code, 200);
    CHECK_EQ_INT(r.body_len, 10);
    CHECK(r.truncated);
    CHECK_EQ_STR(r.body, "xxxxxxxxxx");
    engine_http_close(c);
}

static int many_done;
static void on_many(void *arg, const engine_http_response *res)
{
    if (res->status == 0 && res->http_code == 200)
        many_done++;
}

static void test_many(void)
{
    engine_http *c;
    engine_http_options o = {.max_total_connections = 4, .max_host_connections = 2};
    CHECK_EQ_INT(engine_http_create(&loop, &o, &c), 0);
    int before = stub.nreqs;
    for (int i = 0; i < 60; i++)
        engine_http_request(c, &(engine_http_req){.url = u("/echo"), .body = "b",
                                                      .body_len = 1},
                            on_many, NULL);
    uv_timer_t t;
    int expired = 0;
    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, stub_timeout_cb, 10000, 0);
    while (many_done < 60 && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(many_done, 60);
    CHECK_EQ_INT(stub.nreqs - before, 60);
    /* The connection cap holds: no more than 2 connections were ever opened to the host. */
    CHECK(stub.nconns_open <= 2);
    engine_http_close(c);
}

static void test_close_cancels(void)
{
    engine_http *c;
    CHECK_EQ_INT(engine_http_create(&loop, NULL, &c), 0);
    result a = {0}, b = {0};
    engine_http_req h = {.url = u("/hang"), .timeout_ms = 60000};
    CHECK_EQ_INT(engine_http_request(c, &h, on_done, &a), 0);
    CHECK_EQ_INT(engine_http_request(c, &h, on_done, &b), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* let them connect and send */
    engine_http_close(c);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(a.status, -ECANCELED);
    CHECK_EQ_INT(b.status, -ECANCELED);
}

int main(void)
{
    uv_loop_init(&loop);
    stub.respond = respond;
    CHECK_EQ_INT(stub_start(&stub, &loop, 0), 0);
    engine_http *c;
    CHECK_EQ_INT(engine_http_create(&loop, NULL, &c), 0);
    test_get_headers(c);
    test_post(c);
    test_errors(c);
    engine_http_close(c);
    test_cap();
    test_many();
    test_close_cancels();
    stub_shutdown(&stub);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    return tap_done();
}
