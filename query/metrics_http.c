/* metrics_http.c: the metrics page, `GET /metrics` over HTTP/1.x, for Prometheus-style
 * scrapers. A scrape is a handful of requests a minute, so this is deliberately the smallest
 * honest HTTP server: one request per connection (answered, then closed), the request head
 * read into a fixed buffer (too large: 431), a deadline per connection (a client that stalls
 * is closed), and a cap on connections at once. The body is Prometheus text unless the
 * client's Accept header asks for OpenMetrics. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "query.h"

#define HEAD_MAX 8192
#define DEADLINE_MS 10000
#define MAX_CONNS 64

struct query_metrics_page {
    uv_loop_t *loop;
    uv_tcp_t listener;
    query_metrics_fn fn;
    void *arg;
    int port;
    int conns;
    bool closing, listener_closed;
    uint64_t scrapes, bad_requests;
};

typedef struct page_conn {
    uv_tcp_t tcp;
    uv_timer_t deadline;
    query_metrics_page *page;
    size_t used;
    bool answered;
    int handles;          /* handles still open: freed when both are closed */
    char head[HEAD_MAX];
} page_conn;

typedef struct page_write {
    uv_write_t req;
    uv_shutdown_t shutdown;
    page_conn *conn;
    char *buf;            /* response head and body, malloc'd */
} page_write;

/* The page is freed once its listener and every connection are closed. */
static void maybe_free_page(query_metrics_page *p)
{
    if (p->listener_closed && p->conns == 0)
        free(p);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    page_conn *c = h->data;
    if (--c->handles == 0) {
        query_metrics_page *p = c->page;
        p->conns--;
        free(c);
        maybe_free_page(p);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    query_metrics_page *p = h->data;
    p->listener_closed = true;
    maybe_free_page(p);
}

static void conn_close(page_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->deadline))
        uv_close((uv_handle_t *)&c->deadline, on_conn_handle_closed);
}

static void on_shut(uv_shutdown_t *req, int status)
{
    page_write *w = req->data;
    if (status != 0)
        conn_close(w->conn);
    free(w->buf);
    free(w);
}

/* The answer is out: send FIN and read on until the client closes (or the deadline), so
 * that request bytes still unread never turn the close into a reset that could destroy
 * the answer before the client has read it. */
static void on_written(uv_write_t *req, int status)
{
    page_write *w = (page_write *)req;
    w->shutdown.data = w;
    if (status != 0 ||
        uv_shutdown(&w->shutdown, (uv_stream_t *)&w->conn->tcp, on_shut) != 0) {
        conn_close(w->conn);
        free(w->buf);
        free(w);
    }
}

static void respond(page_conn *c, const char *status, const char *ctype, const char *body,
                    size_t body_len, bool head_only)
{
    c->answered = true;
    c->used = 0; /* the buffer now only receives what is discarded */
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n", status, ctype, body_len);
    size_t total = (size_t)hl + (head_only ? 0 : body_len);
    page_write *w = malloc(sizeof *w);
    char *buf = malloc(total ? total : 1);
    if (!w || !buf) {
        free(w);
        free(buf);
        conn_close(c);
        return;
    }
    memcpy(buf, head, (size_t)hl);
    if (!head_only && body_len)
        memcpy(buf + hl, body, body_len);
    w->conn = c;
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)total);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(buf);
        free(w);
        conn_close(c);
    }
}

static void respond_text(page_conn *c, const char *status, const char *msg)
{
    c->page->bad_requests++;
    respond(c, status, "text/plain; charset=utf-8", msg, strlen(msg), false);
}

/* Does the Accept header (anywhere in the head, case-insensitive) ask for OpenMetrics? */
static bool wants_openmetrics(const char *head)
{
    for (const char *p = head; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (strncasecmp(p, "accept:", 7) == 0) {
            const char *end = strchr(p, '\n');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            for (size_t i = 7; i + 28 <= n; i++)
                if (strncasecmp(p + i, "application/openmetrics-text", 28) == 0)
                    return true;
        }
    }
    return false;
}

static void handle_request(page_conn *c)
{
    const char *h = c->head;
    bool head_only = false;
    const char *path;
    if (strncmp(h, "GET ", 4) == 0) {
        path = h + 4;
    } else if (strncmp(h, "HEAD ", 5) == 0) {
        path = h + 5;
        head_only = true;
    } else {
        respond_text(c, "405 Method Not Allowed", "only GET /metrics is served\n");
        return;
    }
    size_t plen = strcspn(path, " ?\r\n");
    if (!((plen == 8 && strncmp(path, "/metrics", 8) == 0) || (plen == 1 && path[0] == '/'))) {
        respond_text(c, "404 Not Found", "the metrics are at /metrics\n");
        return;
    }
    bool om = wants_openmetrics(h);
    char *text;
    size_t len;
    int rc = query_metrics_render(c->page->fn, c->page->arg,
                                  om ? QUERY_METRICS_OPENMETRICS : QUERY_METRICS_PROMETHEUS,
                                  &text, &len);
    if (rc != 0) {
        respond_text(c, "500 Internal Server Error", "out of memory\n");
        return;
    }
    c->page->scrapes++;
    respond(c, "200 OK",
            om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
               : "text/plain; version=0.0.4; charset=utf-8",
            text, len, head_only);
    free(text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    page_conn *c = h->data;
    size_t room = HEAD_MAX - 1 - c->used;
    *buf = uv_buf_init(c->head + c->used, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    page_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->answered) { /* the rest of a request already answered: discarded */
        c->used = 0;
        return;
    }
    c->used += (size_t)n;
    c->head[c->used] = '\0';
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        handle_request(c);
    else if (c->used >= HEAD_MAX - 1)
        respond_text(c, "431 Request Header Fields Too Large", "request head too large\n");
}

static void on_deadline(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    query_metrics_page *p = server->data;
    if (status < 0 || p->closing)
        return;
    page_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->page = p;
    uv_tcp_init(p->loop, &c->tcp);
    uv_timer_init(p->loop, &c->deadline);
    c->tcp.data = c->deadline.data = c;
    c->handles = 2;
    p->conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || p->conns > MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->deadline, on_deadline, DEADLINE_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

int query_metrics_page_start(struct uv_loop_s *loop, const char *host, int port,
                             query_metrics_fn fn, void *arg, query_metrics_page **out)
{
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
        return -EINVAL;
    query_metrics_page *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->fn = fn;
    p->arg = arg;
    uv_tcp_init(loop, &p->listener);
    p->listener.data = p;
    int rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&p->listener, 64, on_connection);
    if (rc != 0) {
        p->closing = true;
        uv_close((uv_handle_t *)&p->listener, on_listener_closed);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&p->listener, (struct sockaddr *)&bound, &blen);
    p->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    *out = p;
    return 0;
}

int query_metrics_page_port(const query_metrics_page *p)
{
    return p ? p->port : -1;
}

/* Connections still open finish their write or hit their deadline; the page stays
 * allocated until the last of them is closed. */
void query_metrics_page_close(query_metrics_page *p)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    uv_close((uv_handle_t *)&p->listener, on_listener_closed);
}
