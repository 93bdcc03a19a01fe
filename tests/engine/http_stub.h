/* http_stub.h: a tiny HTTP/1.1 server on the test's own libuv loop, for tests of the HTTP
 * client and of alert delivery. It listens on 127.0.0.1 (port 0 unless told), records every
 * request (method, path, headers, body) and answers as the test's respond callback says:
 * a status with headers and body, no answer at all (a hanging receiver), or a closed
 * connection. Keep-alive and several requests per connection work, as curl reuses them. */
#ifndef PLUME_TESTS_HTTP_STUB_H
#define PLUME_TESTS_HTTP_STUB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define STUB_MAX_REQUESTS 256

typedef struct stub_request {
    char method[16];
    char path[256];
    char headers[2048];
    char *body;     /* NUL-terminated, owned by the stub */
    size_t body_len;
    uint64_t at_ms; /* uv_now when it arrived */
} stub_request;

enum { STUB_REPLY, STUB_HANG, STUB_CLOSE };

typedef struct stub_reply {
    int mode;
    int status;
    char headers[512]; /* extra header lines, each ending in \r\n */
    char body[4096];
} stub_reply;

typedef struct http_stub http_stub;
typedef void (*stub_respond_fn)(http_stub *s, const stub_request *req, stub_reply *rep);

struct http_stub {
    int magic; /* 0 */
    uv_loop_t *loop;
    uv_tcp_t server;
    int port;
    stub_respond_fn respond; /* NULL: 200 with body "ok" */
    void *data;
    stub_request reqs[STUB_MAX_REQUESTS];
    int nreqs;
    int nconns_open;
    int listening;
};

#define STUB_CONN_MAGIC 0x57c0 /* tells a connection's handle data from a server's */

typedef struct stub_conn {
    int magic;
    uv_tcp_t tcp;
    http_stub *s;
    char *buf;
    size_t len, cap;
    int hanging;
} stub_conn;

static inline void stub_conn_closed(uv_handle_t *h)
{
    stub_conn *c = h->data;
    c->s->nconns_open--;
    free(c->buf);
    free(c);
}

static inline void stub_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    stub_conn *c = h->data;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len - 1));
}

static inline void stub_written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static inline void stub_send(stub_conn *c, const char *text, size_t len)
{
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(len);
    memcpy(copy, text, len);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, stub_written);
}

/* Handles every complete request in the buffer; 0 to keep going, -1 when closed. */
static inline int stub_process(stub_conn *c)
{
    http_stub *s = c->s;
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return 0;
        size_t hlen = (size_t)(end - c->buf) + 4;
        size_t blen = 0;
        for (char *p = c->buf; p < end; p++)
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
                blen = strtoul(p + 15, NULL, 10);
        if (c->len < hlen + blen)
            return 0;
        stub_request tmp = {0}, *r = s->nreqs < STUB_MAX_REQUESTS ? &s->reqs[s->nreqs++] : &tmp;
        memset(r, 0, sizeof *r);
        sscanf(c->buf, "%15s %255s", r->method, r->path);
        char *hstart = strstr(c->buf, "\r\n") + 2;
        size_t hl = (size_t)(end - hstart);
        if (hl >= sizeof r->headers)
            hl = sizeof r->headers - 1;
        memcpy(r->headers, hstart, hl);
        r->body = malloc(blen + 1);
        memcpy(r->body, c->buf + hlen, blen);
        r->body[blen] = '\0';
        r->body_len = blen;
        r->at_ms = uv_now(s->loop);
        stub_reply rep = {.mode = STUB_REPLY, .status = 200};
        strcpy(rep.body, "ok");
        if (s->respond)
            s->respond(s, r, &rep);
        if (r == &tmp)
            free(tmp.body);
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        if (rep.mode == STUB_HANG) {
            c->hanging = 1;
            return 0;
        }
        if (rep.mode == STUB_CLOSE) {
            uv_close((uv_handle_t *)&c->tcp, stub_conn_closed);
            return -1;
        }
        char head[1024];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: "
                         "application/json\r\n%s\r\n",
                         rep.status, strlen(rep.body), rep.headers);
        stub_send(c, head, (size_t)n);
        if (rep.body[0])
            stub_send(c, rep.body, strlen(rep.body));
    }
}

static inline void stub_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    stub_conn *c = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)st, stub_conn_closed);
        return;
    }
    c->len += (size_t)n;
    if (!c->hanging)
        stub_process(c);
}

static inline void stub_accept(uv_stream_t *server, int status)
{
    http_stub *s = server->data;
    if (status < 0)
        return;
    stub_conn *c = calloc(1, sizeof *c);
    c->magic = STUB_CONN_MAGIC;
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, stub_conn_closed);
        s->nconns_open++;
        return;
    }
    s->nconns_open++;
    uv_tcp_nodelay(&c->tcp, 1); /* no Nagle delay between the head and the body */
    uv_read_start((uv_stream_t *)&c->tcp, stub_alloc, stub_read);
}

/* Starts listening on 127.0.0.1:port (0: any free port); 0 or a libuv error. */
static inline int stub_start(http_stub *s, uv_loop_t *loop, int port)
{
    struct sockaddr_in a;
    s->loop = loop;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(loop, &s->server);
    s->server.data = s;
    int rc = uv_tcp_bind(&s->server, (const struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->server, 128, stub_accept);
    if (rc != 0)
        return rc;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->server, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->listening = 1;
    return 0;
}

/* Stops listening (open connections stay). */
static inline void stub_stop(http_stub *s)
{
    if (s->listening)
        uv_close((uv_handle_t *)&s->server, NULL);
    s->listening = 0;
}

static inline void stub_free_requests(http_stub *s)
{
    for (int i = 0; i < s->nreqs && i < STUB_MAX_REQUESTS; i++)
        free(s->reqs[i].body);
    s->nreqs = 0;
}

/* A header's value in a recorded request (copied into buf), or NULL. */
static inline const char *stub_header(const stub_request *r, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *p = r->headers; *p;) {
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= len)
                n = len - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        p = eol + 2;
    }
    return NULL;
}

/* Runs the loop until *flag is set or ms pass; returns whether the flag was set. */
static inline void stub_timeout_cb(uv_timer_t *t)
{
    *(int *)t->data = 1;
}
static inline int stub_run_until(uv_loop_t *loop, volatile int *flag, int ms)
{
    uv_timer_t t;
    int expired = 0;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, stub_timeout_cb, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* A port with nothing listening (bound, then closed): connections are refused. */
static inline int stub_dead_port(uv_loop_t *loop)
{
    http_stub tmp = {0};
    stub_start(&tmp, loop, 0);
    int port = tmp.port;
    stub_stop(&tmp);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

static inline void stub_walk_close(uv_handle_t *h, void *arg)
{
    http_stub *s = arg;
    if (uv_is_closing(h) || h->type != UV_TCP)
        return;
    if (h == (uv_handle_t *)&s->server)
        uv_close(h, NULL);
    else if (*(int *)h->data == STUB_CONN_MAGIC && ((stub_conn *)h->data)->s == s)
        uv_close(h, stub_conn_closed);
}

/* Closes the server and every connection to it. */
static inline void stub_shutdown(http_stub *s)
{
    uv_walk(s->loop, stub_walk_close, s);
    s->listening = 0;
    uv_run(s->loop, UV_RUN_NOWAIT);
    stub_free_requests(s);
}

#endif
