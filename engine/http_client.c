/* http_client.c: HTTP requests that never block the loop. Alert webhooks and the HTTP poller
 * collector talk to many receivers at once, some of them dead or slow; a thread per request
 * or a blocking call would let one of them stall everything. libcurl's multi "socket"
 * interface lets the loop own the sockets: curl tells us (socket callback) which fd to watch
 * for what, and when to call it back (timer callback); we watch with one uv_poll_t per
 * socket and one uv_timer_t, and after every curl_multi_socket_action we drain
 * curl_multi_info_read, so a transfer that ends by timeout is reported as surely as one that
 * ends with a response. curl's own multi-uv example misses that, ignores poll errors and the
 * HTTP status: this file does not.
 *
 * Memory: a poll handle is freed only in its close callback; the client itself is freed
 * when its last handle has closed. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "engine.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY (1u << 20)
#define MAX_HEADER_BYTES 16384

/* One socket curl asked us to watch; assigned to it with curl_multi_assign. */
typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct engine_http *c;
    struct sock_ctx *prev, *next; /* the client's open polls, for close */
} sock_ctx;

/* One transfer in flight; CURLOPT_PRIVATE points here. Owned by the client's list. */
typedef struct xfer {
    struct xfer *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    engine_http_done_fn fn;
    void *arg;
    char *body;
    size_t body_len, body_cap, body_max; /* body grows up to body_max bytes */
    bool truncated;
    bool removed; /* out of the multi already */
    char hdr[MAX_HEADER_BYTES];
    size_t hdr_len;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

struct engine_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    size_t max_body;
    char user_agent[64];
    xfer *xfers;
    size_t nxfers;
    sock_ctx *socks;
    size_t nsocks, peak_socks; /* sockets curl has us watch: its open connections */
    int open_handles; /* the timer and every poll not yet closed */
    bool closing;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
}

static void maybe_free(engine_http *c)
{
    if (c->closing && c->open_handles == 0)
        free(c);
}

static void on_poll_closed(uv_handle_t *h)
{
    sock_ctx *s = h->data;
    engine_http *c = s->c;
    free(s);
    c->open_handles--;
    maybe_free(c);
}

static void sock_close(sock_ctx *s)
{
    engine_http *c = s->c;
    c->nsocks--;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static int map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* Finds a header of the final response in the raw block; copies its trimmed value. */
static const char *find_header(const char *raw, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *p = raw; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *end = p + llen;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t vlen = (size_t)(end - v) < len - 1 ? (size_t)(end - v) : len - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

const char *engine_http_response_header(const engine_http_response *res, const char *name)
{
    /* Valid during the callback only: one buffer per thread is enough for that. */
    static __thread char buf[1024];
    return find_header(res->raw_headers, name, buf, sizeof buf);
}

static void xfer_free(engine_http *c, xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->nxfers--;
    if (!x->removed)
        curl_multi_remove_handle(c->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

/* Reports one finished transfer and frees it. */
static void xfer_finish(engine_http *c, xfer *x, int status, const char *error)
{
    char etag[256], lm[128], ra[64];
    engine_http_response res = {0};
    res.status = status;
    if (status == 0)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.http_code);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &res.total_s);
    x->hdr[x->hdr_len] = '\0';
    res.raw_headers = x->hdr;
    res.body = x->body ? x->body : "";
    res.body_len = x->body_len;
    res.truncated = x->truncated;
    res.etag = find_header(x->hdr, "ETag", etag, sizeof etag);
    res.last_modified = find_header(x->hdr, "Last-Modified", lm, sizeof lm);
    res.retry_after = find_header(x->hdr, "Retry-After", ra, sizeof ra);
    res.error = error ? error : "";
    engine_http_done_fn fn = x->fn;
    void *arg = x->arg;
    /* Out of the multi before the callback, which may start new transfers: the connection
     * is back in curl's cache and the next transfer to that host reuses it (at the
     * connection cap curl would otherwise close an idle one and open another). Freed after
     * the callback, as the response points into the transfer. */
    x->fn = NULL;
    if (c->multi) {
        curl_multi_remove_handle(c->multi, x->easy);
        x->removed = true;
    }
    if (fn)
        fn(arg, &res);
    xfer_free(c, x);
}

/* Reports every transfer curl has finished. Called after every curl_multi_socket_action. */
static void drain(engine_http *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        int status = map_error(rc);
        const char *err = NULL;
        if (status != 0)
            err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        xfer_finish(c, x, status, err);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *s = h->data;
    engine_http *c = s->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    drain(c);
}

static void on_timer(uv_timer_t *h)
{
    engine_http *c = h->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
}

/* curl: watch fd for what, or stop watching it. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    engine_http *c = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        if (++c->nsocks > c->peak_socks)
            c->peak_socks = c->nsocks;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* curl: call me back in timeout_ms (-1: never). */
static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    engine_http *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    engine_http *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

int engine_http_create(uv_loop_t *loop, const engine_http_options *opts, engine_http **out)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return -EIO;
    engine_http *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return -ENOMEM;
    }
    long total = opts && opts->max_total_connections > 0 ? opts->max_total_connections : 64;
    long host = opts && opts->max_host_connections > 0 ? opts->max_host_connections : 8;
    c->max_body = opts && opts->max_body_len ? opts->max_body_len : DEFAULT_MAX_BODY;
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             opts && opts->user_agent ? opts->user_agent : "plume");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host);
    /* Keep as many idle connections as may be open, so a busy poller reuses them all. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (x->body_len + len + 1 > x->body_cap && x->body_cap < x->body_max + 1) {
        /* Grow by doubling up to the cap: most bodies are small, a few are large. */
        size_t cap = x->body_cap;
        while (cap < x->body_len + len + 1 && cap < x->body_max + 1)
            cap = cap * 2 < x->body_max + 1 ? cap * 2 : x->body_max + 1;
        char *nb = realloc(x->body, cap);
        if (nb) {
            x->body = nb;
            x->body_cap = cap;
        }
    }
    size_t room = x->body_cap - 1 - x->body_len;
    size_t take = len;
    if (take > room) {
        take = room;
        x->truncated = true;
    }
    memcpy(x->body + x->body_len, p, take);
    x->body_len += take;
    x->body[x->body_len] = '\0';
    return len; /* keep reading what is cut, so the connection stays reusable */
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    /* A new status line (after a 100 Continue or a redirect) starts a new header block. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        x->hdr_len = 0;
    if (x->hdr_len + len < sizeof x->hdr) {
        memcpy(x->hdr + x->hdr_len, p, len);
        x->hdr_len += len;
    }
    return len;
}

static int xfer_setup(engine_http *c, xfer *x, const engine_http_req *req)
{
    CURL *e = x->easy;
    int timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    int ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : timeout;
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    bool ok = true;
    ok &= curl_easy_setopt(e, CURLOPT_URL, req->url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) == CURLE_OK;
    if (strcmp(method, "GET") == 0) {
        ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else if (strcmp(method, "HEAD") == 0) {
        ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else {
        if (strcmp(method, "POST") != 0)
            ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)(req->body ? req->body_len : 0)) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") ==
              CURLE_OK;
    }
    /* No "Expect: 100-continue": it costs a round trip (or a second) on every POST. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; l && req->headers && req->headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(l, req->headers[i]);
        if (!n) {
            curl_slist_free_all(l);
            l = NULL;
        }
        l = n;
    }
    if (!l)
        return -ENOMEM;
    x->headers = l;
    ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, l) == CURLE_OK;
    return ok ? 0 : -EINVAL;
}

int engine_http_request(engine_http *c, const engine_http_req *req,
                        engine_http_done_fn fn, void *arg)
{
    if (c->closing || !req || !req->url || (strncmp(req->url, "http://", 7) != 0 &&
                                            strncmp(req->url, "https://", 8) != 0))
        return -EINVAL;
    xfer *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->fn = fn;
    x->arg = arg;
    x->body_max = c->max_body;
    x->body_cap = c->max_body + 1 < 16384 ? c->max_body + 1 : 16384;
    x->body = malloc(x->body_cap);
    x->easy = curl_easy_init();
    int rc = -ENOMEM;
    if (!x->body || !x->easy)
        goto fail;
    x->body[0] = '\0';
    rc = xfer_setup(c, x, req);
    if (rc != 0)
        goto fail;
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
        rc = -ENOMEM;
        goto fail;
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->nxfers++;
    return 0; /* adding armed the timer: curl starts the transfer on the next iteration */
fail:
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
    return rc;
}

size_t engine_http_pending(const engine_http *c)
{
    return c->nxfers;
}

size_t engine_http_sockets(const engine_http *c, size_t *peak)
{
    if (peak)
        *peak = c->peak_socks;
    return c->nsocks;
}

void engine_http_close(engine_http *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    while (c->xfers)
        xfer_finish(c, c->xfers, -ECANCELED, "client closed");
    /* Cleanup closes the cached connections; their sockets' polls close below. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
