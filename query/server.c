/* server.c: the query server core: listeners, connections, request dispatch, replies.
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
 * All of this runs on the loop thread. Memory of a client is freed only in its close
 * callback; the server's memory only when every handle it opened has closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "query_int.h"

#define READ_CHUNK (64u << 10)
#define LISTEN_BACKLOG 511

/* The command groups served: one line per cmd_*.c file. */
static const query_cmd *const cmd_tables[] = {
    query_cmds_server,
    query_cmds_ts,
};

void query_options_default(query_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = QUERY_DEFAULT_HOST;
    o->port = QUERY_DEFAULT_PORT;
    o->max_clients = 10000;
    resp_limits lim;
    resp_limits_default(&lim);
    o->max_args = lim.max_args;
    o->max_bulk_len = lim.max_bulk_len;
    o->max_inline_len = lim.max_inline_len;
    o->max_request_len = lim.max_request_len;
    o->max_output_len = 4u << 20;
}

/* ---- Command table ------------------------------------------------------------------- */

static int cmd_cmp(const void *a, const void *b)
{
    return strcmp((*(const query_cmd *const *)a)->name, (*(const query_cmd *const *)b)->name);
}

static int build_table(query_server *s)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++)
        for (const query_cmd *c = cmd_tables[t]; c->name; c++)
            n++;
    s->cmds = calloc(n, sizeof *s->cmds);
    if (!s->cmds)
        return -ENOMEM;
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++)
        for (const query_cmd *c = cmd_tables[t]; c->name; c++)
            s->cmds[s->ncmds++] = c;
    qsort(s->cmds, s->ncmds, sizeof *s->cmds, cmd_cmp);
    for (size_t i = 1; i < s->ncmds; i++)
        if (strcmp(s->cmds[i - 1]->name, s->cmds[i]->name) == 0)
            return -EINVAL; /* two tables define one command */
    return 0;
}

/* Compares argument a, folded to lower case, with the lower-case name, as strcmp would. */
static int name_cmp(const resp_arg *a, const char *name)
{
    size_t i = 0;
    for (; i < a->len && name[i]; i++) {
        int x = (unsigned char)a->ptr[i], y = (unsigned char)name[i];
        if (x >= 'A' && x <= 'Z')
            x += 'a' - 'A';
        if (x != y)
            return x - y;
    }
    if (i < a->len)
        return 1;
    return name[i] ? -1 : 0;
}

const query_cmd *query_cmd_lookup(const query_server *s, const resp_arg *a)
{
    size_t lo = 0, hi = s->ncmds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = name_cmp(a, s->cmds[mid]->name);
        if (r == 0)
            return s->cmds[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void query_reply_arity(query_client *c, const resp_arg *name)
{
    resp_write_errorf(&c->out, "ERR wrong number of arguments for '%.*s' command",
                      (int)(name->len > 64 ? 64 : name->len), name->ptr);
}

/* ---- Server lifecycle ---------------------------------------------------------------- */

static void maybe_finish(query_server *s);

static void on_handle_closed(uv_handle_t *h)
{
    query_server *s = h->data;
    s->open_handles--;
    maybe_finish(s);
}

static void close_handle(query_server *s, uv_handle_t *h)
{
    h->data = s;
    s->open_handles++;
    uv_close(h, on_handle_closed);
}

static char *dup_or_null(const char *p, bool *oom)
{
    if (!p)
        return NULL;
    char *d = strdup(p);
    if (!d)
        *oom = true;
    return d;
}

int query_server_create(uv_loop_t *loop, const query_options *opts, query_server **out)
{
    query_options def;
    if (!opts) {
        query_options_default(&def);
        opts = &def;
    }
    if (opts->port < 0 || opts->port > 65535 || (!opts->host && !opts->unix_path))
        return -EINVAL;
    query_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opts = *opts;
    bool oom = false;
    s->host = dup_or_null(opts->host, &oom);
    s->unix_path = dup_or_null(opts->unix_path, &oom);
    s->auth_token = opts->auth_token && *opts->auth_token ? dup_or_null(opts->auth_token, &oom)
                                                          : NULL;
    s->opts.host = s->host;
    s->opts.unix_path = s->unix_path;
    s->opts.auth_token = s->auth_token;
    query_options d;
    query_options_default(&d);
    if (!s->opts.max_clients)
        s->opts.max_clients = d.max_clients;
    if (!s->opts.max_args)
        s->opts.max_args = d.max_args;
    if (!s->opts.max_bulk_len)
        s->opts.max_bulk_len = d.max_bulk_len;
    if (!s->opts.max_inline_len)
        s->opts.max_inline_len = d.max_inline_len;
    if (!s->opts.max_request_len)
        s->opts.max_request_len = d.max_request_len;
    if (!s->opts.max_output_len)
        s->opts.max_output_len = d.max_output_len;
    if (!s->opts.unix_mode)
        s->opts.unix_mode = 0660;
    s->port = -1;
    s->next_client_id = 1;
    s->started_ms = uv_now(loop);
    int rc = oom ? -ENOMEM : build_table(s);
    if (rc == 0)
        rc = uv_timer_init(loop, &s->idle_timer);
    if (rc != 0) {
        free(s->cmds);
        free(s->host);
        free(s->unix_path);
        free(s->auth_token);
        free(s);
        return rc;
    }
    s->timer_open = true;
    *out = s;
    return 0;
}

/* ---- Connections --------------------------------------------------------------------- */

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
    resp_parser_free(&c->parser);
    resp_writer_free(&c->out);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    maybe_finish(s);
}

static void on_client_closed(uv_handle_t *h)
{
    query_client *c = h->data;
    c->handle_closed = true;
    if (!c->blocked) /* else a worker still reads its arguments: offload_done frees */
        free_client(c);
}

static void close_client(query_client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    uv_close(&c->h.handle, on_client_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    close_client(req->data);
}

/* Sends FIN after the last reply, then closes: the peer reads the reply before the end. */
static void finish_client(query_client *c)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = true;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, &c->h.stream, on_shutdown) != 0)
        close_client(c);
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
    if (c->closing)
        return;
    if (status < 0) {
        close_client(c);
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
        close_client(c);
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
        close_client(c);
        return;
    }
    c->writing = true;
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
            close_client(c);
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
        close_client(c);
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

static void on_connection(uv_stream_t *listener, int status)
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
        close_client(c);
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

/* ---- Listening ----------------------------------------------------------------------- */

static void on_idle_timer(uv_timer_t *t)
{
    query_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (query_client *c = s->clients; c; c = c->next)
        if (!c->closing && !c->blocked && now - c->last_ms >= s->opts.idle_timeout_ms) {
            s->stats.idle_closed++;
            close_client(c);
        }
}

/* Parses host into addr and tells whether it is a loopback address. */
static int parse_host(const char *host, int port, struct sockaddr_storage *addr, bool *loopback)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (uv_ip4_addr(host, port, a4) == 0) {
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
        return 0;
    }
    if (uv_ip6_addr(host, port, a6) == 0) {
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        return 0;
    }
    return -EINVAL;
}

static int listen_tcp(query_server *s)
{
    struct sockaddr_storage addr;
    bool loopback = false;
    int rc = parse_host(s->host, s->opts.port, &addr, &loopback);
    if (rc != 0)
        return rc;
    if (!loopback && !s->auth_token)
        return -EACCES;
    if ((rc = uv_tcp_init(s->loop, &s->tcp)) != 0)
        return rc;
    s->tcp.data = s;
    s->tcp_open = true;
    if ((rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s->tcp, LISTEN_BACKLOG, on_connection)) != 0)
        return rc;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if ((rc = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len)) != 0)
        return rc;
    s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                : ((struct sockaddr_in6 *)&bound)->sin6_port);
    return 0;
}

static int listen_unix(query_server *s)
{
    struct stat st;
    if (lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(s->unix_path); /* left by a previous run */
    int rc = uv_pipe_init(s->loop, &s->pipe, 0);
    if (rc != 0)
        return rc;
    s->pipe.data = s;
    s->pipe_open = true;
    if ((rc = uv_pipe_bind(&s->pipe, s->unix_path)) != 0)
        return rc;
    s->pipe_listening = true; /* bound: the file exists and is ours to remove */
    if (chmod(s->unix_path, (mode_t)s->opts.unix_mode) != 0)
        return -errno;
    return uv_listen((uv_stream_t *)&s->pipe, LISTEN_BACKLOG, on_connection);
}

int query_server_start(query_server *s)
{
    int rc = 0;
    if (s->closing || s->tcp_open || s->pipe_open)
        return -EINVAL;
    if (s->host && (rc = listen_tcp(s)) != 0)
        goto fail;
    if (s->unix_path && (rc = listen_unix(s)) != 0)
        goto fail;
    if (s->opts.idle_timeout_ms) {
        uint64_t every = s->opts.idle_timeout_ms / 4;
        every = every < 10 ? 10 : every > 1000 ? 1000 : every;
        s->idle_timer.data = s;
        uv_timer_start(&s->idle_timer, on_idle_timer, every, every);
    }
    return 0;
fail:
    query_server_stop(s);
    s->port = -1;
    return rc;
}

int query_server_port(const query_server *s)
{
    return s->port;
}

void query_server_stop(query_server *s)
{
    if (s->tcp_open) {
        s->tcp_open = false;
        close_handle(s, (uv_handle_t *)&s->tcp);
    }
    if (s->pipe_open) {
        s->pipe_open = false;
        close_handle(s, (uv_handle_t *)&s->pipe);
        if (s->pipe_listening)
            unlink(s->unix_path);
        s->pipe_listening = false;
    }
}

void query_server_close(query_server *s, query_close_cb cb, void *arg)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    query_server_stop(s);
    if (s->timer_open) {
        s->timer_open = false;
        close_handle(s, (uv_handle_t *)&s->idle_timer);
    }
    for (query_client *c = s->clients; c; c = c->next)
        close_client(c);
}

static void maybe_finish(query_server *s)
{
    if (!s->closing || s->open_handles > 0 || s->clients)
        return;
    query_close_cb cb = s->close_cb;
    void *arg = s->close_arg;
    free(s->cmds);
    free(s->host);
    free(s->unix_path);
    free(s->auth_token);
    free(s);
    if (cb)
        cb(arg);
}

void query_server_get_stats(const query_server *s, query_stats *out)
{
    *out = s->stats;
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
