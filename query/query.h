/* query.h: plume's query server, the one public header of query/.
 *
 * The server speaks RESP (the Redis protocol, versions 2 and 3) over TCP and a Unix socket,
 * so redis-cli and every Redis client library can query plume. It runs on a libuv loop the
 * caller owns and keeps no global state: several servers may run on one loop. The commands
 * and their replies are written down in query/PROTOCOL.md.
 *
 * Conventions: functions return 0 or a negative errno-style code (libuv's codes are negative
 * errno values on Unix); results come back through out-parameters. Every function must be
 * called on the loop's thread. This layer never logs.
 */
#ifndef PLUME_QUERY_H
#define PLUME_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* uv_loop_t, from <uv.h> */
struct storage;   /* from storage.h */
struct engine_registry; /* from engine.h */

typedef struct query_server query_server; /* opaque */

#define QUERY_DEFAULT_HOST "127.0.0.1"
#define QUERY_DEFAULT_PORT 6390

typedef struct query_options {
    const char *host;          /* TCP address to bind; NULL: no TCP listener. Copied. */
    int port;                  /* TCP port; 0: any free port (see query_server_port) */
    const char *unix_path;     /* Unix socket path; NULL: none. A stale socket file at the
                                  path is replaced. Copied. */
    int unix_mode;             /* permissions of the Unix socket file; 0: 0660 */
    const char *auth_token;    /* when set, clients must AUTH (or HELLO ... AUTH) with it
                                  before any other command. Copied. Required when host is
                                  not a loopback address. */
    uint32_t max_clients;      /* connections served at once; more are refused with an
                                  error; default 10000 */
    uint32_t idle_timeout_ms;  /* close a client silent this long; 0: never (default) */
    size_t max_args;           /* arguments of one request; default 65536 */
    size_t max_bulk_len;       /* bytes of one argument; default 4 MiB */
    size_t max_inline_len;     /* bytes of one inline command line; default 64 KiB */
    size_t max_request_len;    /* bytes of one request; default 16 MiB */
    size_t max_output_len;     /* a client's unsent replies above this stop reading from it
                                  until they drain; default 4 MiB */
    size_t cache_bytes;        /* replies of CEMS.CHART and TS.RANGE kept for repeated
                                  requests (until their series changes); default 64 MiB,
                                  SIZE_MAX: no cache */
    struct storage *storage;   /* the store the TS.* and CEMS.* commands read; may be NULL
                                  (they then answer with an error). Borrowed: it must
                                  outlive the server. */
} query_options;

/* Fills opts with the defaults: host 127.0.0.1, port 6390, no Unix socket, no token, and
 * the limits above. */
void query_options_default(query_options *opts);

/* Counters since the server was created, for INFO and for metrics. */
typedef struct query_stats {
    uint64_t connections_received; /* accepted connections, refused ones included */
    uint64_t connections_rejected; /* refused for max_clients */
    uint64_t clients;              /* connected now */
    uint64_t commands_processed;
    uint64_t error_replies;        /* replies that were errors, protocol errors included */
    uint64_t protocol_errors;      /* malformed or over-limit requests (connection closed) */
    uint64_t idle_closed;          /* clients closed by the idle timeout */
    uint64_t bytes_in, bytes_out;
    uint64_t output_paused;        /* times a client's reading stopped for back-pressure */
    uint64_t commands_offloaded;   /* commands run on a worker thread (long scans) */
} query_stats;

/* Creates a server on loop with opts (NULL: defaults); nothing is bound yet. On success *out
 * owns the server until query_server_close() completes. -EINVAL for inconsistent options,
 * -ENOMEM. */
int query_server_create(struct uv_loop_s *loop, const query_options *opts,
                        query_server **out);

/* Binds and listens on the configured addresses. Returns 0; -EACCES when the TCP host is
 * not a loopback address and no auth_token is set; -EINVAL when already started (a stopped
 * server may start again once the loop has run its listeners' close callbacks); or the
 * bind/listen error (-EADDRINUSE, ...), in which case nothing is left listening. */
int query_server_start(query_server *s);

/* The TCP port bound (useful with port 0), or -1 when not listening on TCP. */
int query_server_port(const query_server *s);

/* Stops accepting new connections (the listeners close, the Unix socket file is removed);
 * connected clients are served on. Idempotent. */
void query_server_stop(query_server *s);

/* Stops the server, closes every client, and frees the server once all its handles are
 * closed; then calls cb(arg) (cb may be NULL). s must not be used after this call. */
typedef void (*query_close_cb)(void *arg);
void query_server_close(query_server *s, query_close_cb cb, void *arg);

/* Sets the registry (facilities, outlets, limits) the label filters and CEMS.* commands
 * read; NULL: none. Borrowed: call again with the new one before the old one is destroyed
 * (on each reload). Series labels are derived afresh after each call. */
void query_server_set_registry(query_server *s, const struct engine_registry *reg);

/* Sends msg (len bytes) to every client subscribed to channel, or to a pattern matching it
 * (SUBSCRIBE / PSUBSCRIBE), as a Redis message (RESP2) or push (RESP3). Returns how many
 * messages were queued. The daemon publishes alerts on "alerts" and "alerts.<region>". */
size_t query_server_publish(query_server *s, const char *channel, const void *msg,
                            size_t len);

/* A trend chart of one series as an SVG document (query/chart_svg.c): the series reduced with
 * M4 to the chart's width, the limits in force (from reg, may be NULL), exceedances shaded
 * red, periods of invalid data shaded grey, axes in China local time (UTC+8) with the unit.
 * key is as in TS.RANGE (an optional :column); from_s / to_s in Unix seconds, INT64_MIN /
 * INT64_MAX for the series' first / last point; width 200-10000 and height 150-5000 pixels.
 * On success *svg is malloc'd (the caller frees it), *len its length. Returns 0, -EINVAL,
 * -ENOENT (no such series) or a storage error. */
int query_chart_svg(struct storage *st, const struct engine_registry *reg, const char *key,
                    int64_t from_s, int64_t to_s, int width, int height, char **svg,
                    size_t *len);

void query_server_get_stats(const query_server *s, query_stats *out);

/* ---- The daemon's metrics (metrics.c, metrics_http.c) ------------------------------- */

/* The daemon knows every module's counters; it hands them over through a provider that
 * calls query_metrics_family() once per family and query_metrics_add() once per sample. */
typedef struct query_metrics query_metrics;
typedef enum query_metric_type { QUERY_METRIC_COUNTER, QUERY_METRIC_GAUGE } query_metric_type;
typedef void (*query_metrics_fn)(void *arg, query_metrics *m);

/* Starts a family. name is a Prometheus metric name; a counter's ends in "_total". */
void query_metrics_family(query_metrics *m, const char *name, query_metric_type type,
                          const char *help);
/* A sample of the current family, with one label (label NULL: none). */
void query_metrics_add(query_metrics *m, const char *label, const char *label_value,
                       double value);

enum { QUERY_METRICS_PROMETHEUS, QUERY_METRICS_OPENMETRICS, QUERY_METRICS_INFO };
/* Runs fn (may be NULL) and renders what it adds as Prometheus text 0.0.4, OpenMetrics
 * 1.0.0 or INFO lines. On success *text is malloc'd (the caller frees it). 0, -EINVAL (no
 * such format), -ENOMEM. */
int query_metrics_render(query_metrics_fn fn, void *arg, int format, char **text,
                         size_t *len);

/* INFO's "metrics" section shows what fn provides (NULL: no section). Loop thread. */
void query_server_set_metrics(query_server *s, query_metrics_fn fn, void *arg);

/* The metrics page: HTTP GET /metrics on host:port (port 0: any free port), answered with
 * what fn provides, Prometheus text or OpenMetrics if the Accept header asks for it. Runs on
 * loop; 0, -EINVAL (bad address) or the bind error. */
typedef struct query_metrics_page query_metrics_page;
int query_metrics_page_start(struct uv_loop_s *loop, const char *host, int port,
                             query_metrics_fn fn, void *arg, query_metrics_page **out);
int query_metrics_page_port(const query_metrics_page *p);
/* Stops listening; memory is freed once the loop has closed every connection. */
void query_metrics_page_close(query_metrics_page *p);

#ifdef __cplusplus
}
#endif
#endif
