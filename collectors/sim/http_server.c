/* http_server.c: the simulator's HTTP/1.1 server, so a poller has a platform to poll. One
 * libuv loop; connections stay open between requests (keep-alive, the default of HTTP/1.1)
 * because a poller of tens of thousands of sources must reuse a few hundred connections;
 * requests on one connection are answered in order. It reads only what a GET needs: the
 * request line, If-None-Match and Connection; a request body (Content-Length) is skipped.
 * Malformed requests get 400 and the connection is closed. Routes live in http_feed.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "sim_http.h"

#define MAX_HEAD 16384
#define DEFAULT_MAX_CONNECTIONS 4096

struct sim_http {
    uv_loop_t *loop;
    const sim_fleet *f;
    uv_tcp_t listener;
    int port;
    uint32_t max_connections;
    sim_http_stats st;
    struct conn *conns;
    int handles;        /* the listener and every connection not yet closed */
    bool closing;
};

typedef struct conn {
    uv_tcp_t tcp;
    sim_http *srv;
    struct conn *prev, *next;
    char buf[MAX_HEAD];
    size_t len;
    uint64_t skip;      /* body bytes of the current request still to discard */
    bool closing;
} conn;

typedef struct wreq {
    uv_write_t req;
    conn *c;
    char *data;         /* owned: head and body */
    bool close_after;
} wreq;

static void maybe_free(sim_http *s)
{
    if (s->closing && s->handles == 0)
        free(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    sim_http *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->st.open--;
    s->handles--;
    free(c);
    maybe_free(s);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    if (status < 0 || w->close_after)
        conn_close(w->c);
    free(w->data);
    free(w);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Internal Server Error";
    }
}

/* Sends one answer; the body is taken over (freed after the write). */
static void send_answer(conn *c, sim_http_answer *a, bool head_only, bool close_after)
{
    sim_http *s = c->srv;
    char head[512];
    size_t blen = a->status == 304 || head_only ? 0 : a->body.len;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s%s%s%s\r\n",
                     a->status, reason(a->status), a->status == 304 ? 0 : a->body.len,
                     a->etag[0] ? "ETag: " : "", a->etag, a->etag[0] ? "\r\n" : "",
                     close_after ? "Connection: close\r\n" : "");
    wreq *w = calloc(1, sizeof *w);
    char *data = malloc((size_t)n + blen + 1);
    if (!w || !data || a->body.failed) {
        free(w);
        free(data);
        conn_close(c);
        return;
    }
    memcpy(data, head, (size_t)n);
    if (blen)
        memcpy(data + n, a->body.p, blen);
    w->c = c;
    w->data = data;
    w->close_after = close_after;
    uv_buf_t b = uv_buf_init(data, (unsigned)((size_t)n + blen));
    if (a->status == 200) {
        s->st.ok++;
        s->st.records += a->records;
        s->st.bytes += blen;
    } else if (a->status == 304) {
        s->st.not_modified++;
    } else {
        s->st.errors++;
    }
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(data);
        free(w);
        conn_close(c);
    }
}

/* The trimmed value of header name in the head block [p, end), copied into buf. */
static bool header_value(const char *p, const char *end, const char *name, char *buf,
                         size_t cap)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return true;
        }
        p = eol + 1;
    }
    return false;
}

/* Handles the request whose head is buf[0, head_len) (the blank line included). Returns
 * false when the connection is to be closed. */
static bool handle(conn *c, size_t head_len)
{
    sim_http *s = c->srv;
    const char *p = c->buf, *end = c->buf + head_len;
    const char *eol = memchr(p, '\n', head_len);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    sim_http_answer a = {0};
    s->st.requests++;
    if (!sp1 || !sp2 || sp1 - p > 15 || sp2 - sp1 < 2 || eol - sp2 < 9 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        a.status = 400;
        sim_buf_puts(&a.body, "{\"code\":400,\"message\":\"bad request line\"}");
        send_answer(c, &a, false, true);
        free(a.body.p);
        return false;
    }
    char method[16], inm[64], connection[32], clen[24];
    memcpy(method, p, (size_t)(sp1 - p));
    method[sp1 - p] = '\0';
    bool http10 = sp2[8] == '0';
    bool has_inm = header_value(eol + 1, end, "If-None-Match", inm, sizeof inm);
    bool close_after = http10;
    if (header_value(eol + 1, end, "Connection", connection, sizeof connection))
        close_after = strcasecmp(connection, "close") == 0 ||
                      (http10 && strcasecmp(connection, "keep-alive") != 0);
    if (header_value(eol + 1, end, "Content-Length", clen, sizeof clen))
        c->skip = strtoull(clen, NULL, 10);
    sim_http_route(s->f, method, sp1 + 1, (size_t)(sp2 - sp1 - 1), has_inm ? inm : NULL,
                   &s->st, &a);
    send_answer(c, &a, strcmp(method, "HEAD") == 0, close_after);
    free(a.body.p);
    return !close_after;
}

/* Answers every complete request in the buffer. */
static void process(conn *c)
{
    for (;;) {
        if (c->skip) {
            size_t n = c->skip < c->len ? (size_t)c->skip : c->len;
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            c->skip -= n;
            if (c->skip)
                return;
        }
        char *blank = NULL;
        for (size_t i = 0; i + 1 < c->len; i++)
            if (c->buf[i] == '\n' && (c->buf[i + 1] == '\n' ||
                                      (c->buf[i + 1] == '\r' && i + 2 < c->len &&
                                       c->buf[i + 2] == '\n'))) {
                blank = c->buf + i + (c->buf[i + 1] == '\n' ? 2 : 3);
                break;
            }
        if (!blank) {
            if (c->len == sizeof c->buf) /* a head longer than we take */
                conn_close(c);
            return;
        }
        size_t head = (size_t)(blank - c->buf);
        bool keep = handle(c, head);
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        if (!keep) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            return;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->closing)
        return;
    c->len += (size_t)n;
    process(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    sim_http *s = l->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    s->handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->st.connections++;
    if (++s->st.open > s->st.max_open)
        s->st.max_open = s->st.open;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || s->st.open > s->max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_listener_closed(uv_handle_t *h)
{
    sim_http *s = h->data;
    s->handles--;
    maybe_free(s);
}

int sim_http_start(uv_loop_t *loop, const sim_fleet *f, const sim_http_options *o,
                   sim_http **out)
{
    struct sockaddr_storage sa;
    if (!o || !o->host || (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&sa) != 0 &&
                           uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&sa) != 0))
        return -EINVAL;
    sim_http *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->f = f;
    s->max_connections = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles = 1;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
}

int sim_http_port(const sim_http *s)
{
    return s->port;
}

void sim_http_get_stats(const sim_http *s, sim_http_stats *out)
{
    *out = s->st;
}

int sim_http_stats_format(const sim_http_stats *s, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "{\"http_connections\":%llu,\"http_open\":%llu,\"http_max_open\":%llu,"
                     "\"http_requests\":%llu,\"http_ok\":%llu,\"http_not_modified\":%llu,"
                     "\"http_errors\":%llu,\"http_records\":%llu,\"http_bytes\":%llu}",
                     (unsigned long long)s->connections, (unsigned long long)s->open,
                     (unsigned long long)s->max_open, (unsigned long long)s->requests,
                     (unsigned long long)s->ok, (unsigned long long)s->not_modified,
                     (unsigned long long)s->errors, (unsigned long long)s->records,
                     (unsigned long long)s->bytes);
    return n < 0 || (size_t)n >= cap ? -ERANGE : n;
}


void sim_http_close(sim_http *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
