/* client.c: one connection of the query server: reading, parsing, dispatch, replies.
 *
 * Each connection owns a read buffer and a parser. A read appends to the buffer; every
 * complete request in it is parsed (arguments point into the buffer, no copy) and run, and
 * their replies gather in one output buffer that goes out in a single write once the batch
 * is done, so a pipeline of a thousand commands costs one write. While a write is in flight
 * new replies gather in a second buffer. When a client's unsent output passes
 * max_output_len the server stops reading from it (and stops running its buffered requests)
 * until the output drains: a client that does not read its replies cannot make the server
 * hold unbounded memory. The read buffer is capped at one request plus one read, and the
 * parser refuses over-limit requests from their headers.
 *
 * A malformed request gets a protocol error and the connection is closed once the error is
 * sent, as Redis does: after a framing error there is no reliable point to resume at.
 * An unknown command or a wrong argument count is an ordinary error reply; the connection
 * stays usable.
 *
 * All of this runs on the loop thread, except a command a handler hands to
 * query_client_offload. Memory of a client is freed only in its close callback, or after
 * its worker command when one is still running then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

#define READ_CHUNK (64u << 10)

static size_t pending_output(const query_client *c)
{
    return c->out.len + c->wlen;
}

static void free_client(query_client *c)
{
    query_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->stats.clients--;
    query_client_subs_free(c);
    resp_parser_free(&c->parser);
    resp_writer_free(&c->out);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    query_server_maybe_finish(s);
}

static void on_client_closed(uv_handle_t *h)
{
    query_client *c = h->data;
    c->handle_closed = true;
    if (!c->blocked) /* else a worker still reads its arguments: offload_done frees */
        free_client(c);
}

void query_client_close(query_client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    uv_close(&c->h.handle, on_client_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    query_client_close(req->data);
}

/* Sends FIN after the last reply, then closes: the peer reads the reply before the end. */
static void finish_client(query_client *c)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = true;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, &c->h.stream, on_shutdown) != 0)
        query_client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    query_client *c = h->data;
    if (c->rstart > 0) { /* parser state is relative to rstart, so moving is safe */
        memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
        c->rlen -= c->rstart;
        c->rstart = 0;
    }
    size_t limit = c->srv->opts.max_request_len + READ_CHUNK;
    size_t want = c->rlen + READ_CHUNK;
    if (want > limit)
        want = limit;
    if (c->rcap < want) {
        size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK;
        if (cap < want)
            cap = want;
        if (cap > limit)
            cap = limit;
        char *nb = realloc(c->rbuf, cap);
        if (nb) {
            c->rbuf = nb;
            c->rcap = cap;
        }
    }
    buf->base = c->rbuf ? c->rbuf + c->rlen : NULL;
    buf->len = c->rcap - c->rlen; /* 0 makes libuv report UV_ENOBUFS */
}

static void process(query_client *c);

static void on_write(uv_write_t *req, int status)
{
    query_client *c = req->data;
    c->writing = false;
    if (c->wblob) {
        query_cache_release(c->srv->cache, c->wblob);
        c->wblob = NULL;
    }
    if (c->closing)
        return;
    if (status < 0) {
        query_client_close(c);
        return;
    }
    c->srv->stats.bytes_out += c->wlen;
    c->wlen = 0;
    c->last_ms = uv_now(c->srv->loop); /* a client taking a long reply is not idle */
    if (c->wcap > (1u << 20)) { /* give back what one big reply needed */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    process(c);
}

/* Hands the gathered replies to one write, unless a write is already in flight. */
static void flush(query_client *c)
{
    if (c->closing || c->writing)
        return;
    if (c->out.oom) {
        query_client_close(c);
        return;
    }
    if (c->out.len == 0) {
        if (c->close_after_reply)
            finish_client(c);
        return;
    }
    char *d = c->wbuf;
    size_t cap = c->wcap;
    c->wbuf = c->out.data;
    c->wlen = c->out.len;
    c->wcap = c->out.cap;
    c->out.data = d;
    c->out.cap = cap;
    c->out.len = 0;
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)c->wlen);
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &b, 1, on_write) != 0) {
        query_client_close(c);
        return;
    }
    c->writing = true;
}

void query_client_flush(query_client *c)
{
    flush(c);
}

bool query_client_send_blob(query_client *c, query_blob *b)
{
    if (c->is_shadow || c->closing || c->writing || c->out.len > 0 || c->out.oom)
        return false;
    size_t len;
    const char *data = query_blob_data(b, &len);
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &buf, 1, on_write) != 0)
        return false;
    c->writing = true;
    c->wblob = b;
    c->wlen = len; /* counts as unsent output until the write is done */
    return true;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Reads while the client may send more and its output is below the limit. */
static void update_reading(query_client *c)
{
    query_server *s = c->srv;
    if (c->closing)
        return;
    bool over = pending_output(c) > s->opts.max_output_len;
    bool want = !c->close_after_reply && !s->closing && !over && !c->blocked;
    if (want && !c->reading) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0) {
            query_client_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
        if (over)
            s->stats.output_paused++;
    }
}

static void reply_unknown(query_client *c, size_t argc, const resp_arg *argv)
{
    char args[200];
    size_t n = 0;
    args[0] = 0;
    for (size_t i = 1; i < argc && n < 128; i++) {
        int room = (int)(128 - n);
        int len = argv[i].len > (size_t)room ? room : (int)argv[i].len;
        n += (size_t)snprintf(args + n, sizeof args - n, "'%.*s' ", len, argv[i].ptr);
        if (n >= sizeof args)
            n = sizeof args - 1;
    }
    resp_write_errorf(&c->out, "ERR unknown command '%.*s', with args beginning with: %s",
                      (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].ptr, args);
}

static void dispatch(query_client *c, size_t argc, const resp_arg *argv)
{
    query_server *s = c->srv;
    uint64_t errors = c->out.errors;
    const query_cmd *cmd = query_cmd_lookup(s, &argv[0]);
    if (!cmd)
        reply_unknown(c, argc, argv);
    else if (cmd->arity > 0 ? argc != (size_t)cmd->arity : argc < (size_t)-cmd->arity)
        query_reply_arity(c, &(resp_arg){cmd->name, strlen(cmd->name)});
    else if (s->auth_token && !c->authed && !(cmd->flags & QUERY_CMD_NOAUTH))
        resp_write_error(&c->out, "NOAUTH Authentication required.");
    else if (c->out.proto == 2 && query_client_nsubs(c) && strcmp(cmd->group, "pubsub") != 0 &&
             strcmp(cmd->name, "ping") != 0 && strcmp(cmd->name, "quit") != 0)
        resp_write_errorf(&c->out, "ERR Can't execute '%s': only (P)SUBSCRIBE / "
                          "(P)UNSUBSCRIBE / PING / QUIT are allowed in this context", cmd->name);
    else {
        c->last_cmd = cmd->name;
        cmd->fn(c, argc, argv);
    }
    s->stats.commands_processed++;
    s->stats.error_replies += c->out.errors - errors;
}

/* Runs every complete request in the read buffer, as long as output stays under the limit,
 * then writes the replies and decides whether to keep reading. */
static void process(query_client *c)
{
    query_server *s = c->srv;
    while (!c->closing && !c->close_after_reply && !c->blocked && c->rstart < c->rlen &&
           pending_output(c) <= s->opts.max_output_len) {
        size_t used = 0;
        int rc = resp_parse(&c->parser, c->rbuf + c->rstart, c->rlen - c->rstart, &used, NULL);
        c->rstart += used;
        if (rc == RESP_MORE)
            break;
        if (rc < 0) {
            resp_write_error(&c->out, c->parser.err);
            s->stats.protocol_errors++;
            s->stats.error_replies++;
            c->close_after_reply = true;
            break;
        }
        dispatch(c, c->parser.argc, c->parser.argv);
    }
    if (c->rstart == c->rlen && !c->blocked) {
        c->rstart = c->rlen = 0;
        if (c->rcap > 4 * READ_CHUNK && c->parser.state == 0) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
    flush(c);
    update_reading(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    query_client *c = st->data;
    if (c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && pending_output(c) > 0) {
            c->close_after_reply = true; /* the peer closed its side: answer, then close */
            update_reading(c);
            return;
        }
        query_client_close(c);
        return;
    }
    c->rlen += (size_t)nread;
    c->srv->stats.bytes_in += (uint64_t)nread;
    c->last_ms = uv_now(c->srv->loop);
    process(c);
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, len, "%s:%d", ip, port);
}

static void describe_client(query_client *c)
{
    if (c->is_unix) {
        snprintf(c->addr, sizeof c->addr, "%s:0", c->srv->unix_path);
        snprintf(c->laddr, sizeof c->laddr, "%s:0", c->srv->unix_path);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->addr, sizeof c->addr);
    len = sizeof ss;
    if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->laddr, sizeof c->laddr);
}

void query_client_accept(uv_stream_t *listener, int status)
{
    query_server *s = listener->data;
    if (status < 0 || s->closing)
        return;
    query_client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    c->is_unix = listener == (uv_stream_t *)&s->pipe;
    int rc = c->is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->stats.clients++;
    if (uv_accept(listener, &c->h.stream) != 0) {
        query_client_close(c);
        return;
    }
    s->stats.connections_received++;
    c->id = s->next_client_id++;
    c->created_ms = c->last_ms = uv_now(s->loop);
    c->authed = s->auth_token == NULL;
    c->last_cmd = "NULL";
    resp_limits lim = {s->opts.max_args, s->opts.max_bulk_len, s->opts.max_inline_len,
                       s->opts.max_request_len};
    resp_parser_init(&c->parser, &lim);
    resp_writer_init(&c->out, 2);
    if (!c->is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    describe_client(c);
    if (s->stats.clients > s->opts.max_clients) {
        s->stats.connections_rejected++;
        s->stats.error_replies++;
        resp_write_error(&c->out, "ERR max number of clients reached");
        c->close_after_reply = true;
    }
    flush(c);
    update_reading(c);
}

/* ---- Commands on worker threads ------------------------------------------------------ */

typedef struct offload {
    uv_work_t req;
    query_client *c;
    query_client shadow;   /* what fn sees in place of c */
    query_cmd_fn fn;
    size_t argc;
    const resp_arg *argv;  /* borrowed from c's buffers, untouched while c is blocked */
} offload;

static void offload_work(uv_work_t *req)
{
    offload *o = req->data;
    o->fn(&o->shadow, o->argc, o->argv);
}

static void offload_done(uv_work_t *req, int status)
{
    offload *o = req->data;
    query_client *c = o->c;
    c->blocked = false;
    if (c->handle_closed) {
        free_client(c);
    } else if (!c->closing) {
        resp_write_raw(&c->out, o->shadow.out.data, o->shadow.out.len);
        if (o->shadow.out.oom)
            c->out.oom = true;
        c->srv->stats.error_replies += o->shadow.out.errors;
        c->last_ms = uv_now(c->srv->loop);
        process(c); /* send the reply, then run what came after the command */
    }
    resp_writer_free(&o->shadow.out);
    free(o);
}

void query_client_offload(query_client *c, query_cmd_fn fn, size_t argc, const resp_arg *argv)
{
    offload *o = calloc(1, sizeof *o);
    if (!o) {
        fn(c, argc, argv);
        return;
    }
    o->c = c;
    o->fn = fn;
    o->argc = argc;
    o->argv = argv;
    o->shadow.srv = c->srv;
    o->shadow.is_shadow = true;
    o->shadow.id = c->id;
    o->shadow.authed = c->authed;
    resp_writer_init(&o->shadow.out, c->out.proto);
    o->req.data = o;
    if (uv_queue_work(c->srv->loop, &o->req, offload_work, offload_done) != 0) {
        resp_writer_free(&o->shadow.out);
        free(o);
        fn(c, argc, argv);
        return;
    }
    c->blocked = true;
    c->srv->stats.commands_offloaded++;
}

int query_client_info(const query_client *c, char *buf, size_t len)
{
    uint64_t now = uv_now(c->srv->loop);
    uv_os_fd_t fd = -1;
    uv_fileno(&c->h.handle, &fd);
    int n = snprintf(buf, len,
                     "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=N db=0 "
                     "sub=0 psub=0 qbuf=%zu obl=%zu cmd=%s user=default lib-name=%s "
                     "lib-ver=%s resp=%d",
                     (unsigned long long)c->id, c->addr, c->laddr, (int)fd, c->name,
                     (unsigned long long)((now - c->created_ms) / 1000),
                     (unsigned long long)((now - c->last_ms) / 1000), c->rlen - c->rstart,
                     pending_output(c), c->last_cmd, c->lib_name, c->lib_ver, c->out.proto);
    if (n < 0)
        n = 0;
    return (size_t)n >= len ? (int)len - 1 : n;
}
