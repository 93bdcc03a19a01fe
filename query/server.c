/* server.c: the query server's lifecycle: options, the command table, listeners (TCP and
 * a Unix socket), the idle sweep, and closing everything in order.
 *
 * Connections themselves (reading, parsing, dispatch, replies, back-pressure, commands on
 * worker threads) live in client.c. The server refuses to listen beyond loopback without an
 * auth token. Its memory is freed only when every handle it opened has closed and every
 * client is gone, and only then does the caller's close callback run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "query_int.h"

#define LISTEN_BACKLOG 511

/* The command groups served: one line per cmd_*.c file. */
static const query_cmd *const cmd_tables[] = {
    query_cmds_server,
    query_cmds_ts,
    query_cmds_multi,
    query_cmds_cems,
    query_cmds_pubsub,
    query_cmds_periods,
    query_cmds_sources,
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
    o->cache_bytes = 64u << 20;
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


static void on_handle_closed(uv_handle_t *h)
{
    query_server *s = h->data;
    s->open_handles--;
    query_server_maybe_finish(s);
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
    if (!s->opts.cache_bytes)
        s->opts.cache_bytes = d.cache_bytes;
    if (s->opts.cache_bytes != SIZE_MAX && query_cache_create(s->opts.cache_bytes, &s->cache))
        oom = true;
    s->port = -1;
    s->next_client_id = 1;
    s->started_ms = uv_now(loop);
    int rc = oom ? -ENOMEM : build_table(s);
    if (rc == 0)
        rc = uv_timer_init(loop, &s->idle_timer);
    if (rc != 0) {
        query_cache_destroy(s->cache);
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

/* ---- Listening and the idle sweep ---------------------------------------------------- */

static void on_idle_timer(uv_timer_t *t)
{
    query_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (query_client *c = s->clients; c; c = c->next)
        if (!c->closing && !c->blocked && now - c->last_ms >= s->opts.idle_timeout_ms) {
            s->stats.idle_closed++;
            query_client_close(c);
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
        (rc = uv_listen((uv_stream_t *)&s->tcp, LISTEN_BACKLOG, query_client_accept)) != 0)
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
    return uv_listen((uv_stream_t *)&s->pipe, LISTEN_BACKLOG, query_client_accept);
}

int query_server_start(query_server *s)
{
    int rc = 0;
    if (s->closing || s->tcp_open || s->pipe_open || s->open_handles > 0)
        return -EINVAL; /* running, or listeners of an earlier start still closing */
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
        s->port = -1;
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
        query_client_close(c);
}

void query_server_maybe_finish(query_server *s)
{
    if (!s->closing || s->open_handles > 0 || s->clients)
        return;
    query_close_cb cb = s->close_cb;
    void *arg = s->close_arg;
    query_labels_free(s->labels);
    query_cache_destroy(s->cache);
    free(s->cmds);
    free(s->host);
    free(s->unix_path);
    free(s->auth_token);
    free(s);
    if (cb)
        cb(arg);
}

void query_server_set_registry(query_server *s, const struct engine_registry *reg)
{
    s->registry = reg; /* the label cache notices the change on its next use */
    s->registry_gen++; /* cached replies show the old limits */
}

void query_server_set_metrics(query_server *s, query_metrics_fn fn, void *arg)
{
    s->metrics_fn = fn;
    s->metrics_arg = arg;
}

void query_server_get_stats(const query_server *s, query_stats *out)
{
    *out = s->stats;
}
