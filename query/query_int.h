/* query_int.h: what the server core (server.c) shares with the command files (cmd_*.c),
 * internal to query/.
 *
 * A command is one line in a table and one handler function. Each group of commands lives
 * in its own file and exports its table (query_cmds_server, ...); server.c lists the tables
 * it serves. A handler reads its arguments (borrowed: valid only during the call), writes
 * exactly one reply to c->out, and may set flags on the client (close after the reply).
 */
#ifndef PLUME_QUERY_INT_H
#define PLUME_QUERY_INT_H

#include <uv.h>

#include "query.h"
#include "resp.h"

typedef struct query_client query_client;

/* Handler of one command: argv[0] is the command name as the client sent it. */
typedef void (*query_cmd_fn)(query_client *c, size_t argc, const resp_arg *argv);

enum {
    QUERY_CMD_NOAUTH = 1 << 0,   /* allowed before authentication (AUTH, HELLO, QUIT) */
    QUERY_CMD_FAST = 1 << 1,     /* O(1) or close to it */
    QUERY_CMD_READONLY = 1 << 2, /* reads data */
    QUERY_CMD_STALE = 1 << 3,    /* about the connection or server, not data */
};

typedef struct query_cmd {
    const char *name;     /* lower case */
    int arity;            /* argc including the name: n exactly, or -n for at least n */
    unsigned flags;       /* QUERY_CMD_* */
    query_cmd_fn fn;
    const char *group;    /* for COMMAND DOCS: "connection", "server", "timeseries" ... */
    const char *summary;  /* one line, for COMMAND DOCS */
} query_cmd;

/* Command tables, each ended by an entry with name NULL. */
extern const query_cmd query_cmds_server[];
extern const query_cmd query_cmds_ts[];
extern const query_cmd query_cmds_multi[]; /* cmd_multi.c: TS.MGET, TS.MRANGE, ... */
extern const query_cmd query_cmds_cems[];  /* cmd_cems.c: CEMS.* */
extern const query_cmd query_cmds_pubsub[];
extern const query_cmd query_cmds_sources[]; /* cmd_sources.c: CEMS.SOURCES */
extern const query_cmd query_cmds_periods[]; /* cmd_periods.c: CEMS.DAILY, CEMS.EXCEEDANCES */ /* pubsub.c: (P)(UN)SUBSCRIBE */

struct query_labels;
void query_labels_free(struct query_labels *l);

/* ---- The reply cache (cache.c) -------------------------------------------------------- */

typedef struct query_cache query_cache;

/* The key of one request: its RESP version and arguments (the name case-folded). */
typedef struct query_cache_req {
    char buf[512];
    size_t len;
    uint64_t hash;
    bool ok;             /* false: too long to cache */
} query_cache_req;

/* A cache holding up to budget bytes of replies. Thread-safe after creation. */
int query_cache_create(size_t budget, query_cache **out);
void query_cache_destroy(query_cache *c);
void query_cache_key(query_cache_req *k, int proto, size_t argc, const resp_arg *argv);

/* A stored reply, reference-counted: valid until query_cache_release. */
typedef struct query_blob query_blob;
const char *query_blob_data(const query_blob *b, size_t *len);

/* The reply stored for k when it was stored with the same series version and registry
 * generation (a reference the caller releases), or NULL. c may be NULL (no cache). */
query_blob *query_cache_get(query_cache *c, const query_cache_req *k, uint64_t version,
                            uint64_t reg_gen);
void query_cache_release(query_cache *c, query_blob *b);

/* Keeps a copy of reply for k, computed from a reader opened after version was read. */
void query_cache_put(query_cache *c, const query_cache_req *k, uint64_t version,
                     uint64_t reg_gen, const char *reply, size_t rlen);
void query_cache_stats(query_cache *c, uint64_t *hits, uint64_t *misses, size_t *bytes);

/* For a command about one series (sid; reg_gen: the registry generation its reply depends
 * on, 0 if none): fills k and *version (read now, before the caller opens its reader) and,
 * when the cache holds the reply, appends it to c->out and returns true. */
bool query_cache_reply(query_client *c, size_t argc, const resp_arg *argv, uint32_t sid,
                       uint64_t reg_gen, query_cache_req *k, uint64_t *version);
/* After the caller wrote its reply to c->out from offset start: keeps it for k, unless it
 * was an error (c->out.errors grew past errors_before) or the writer ran out of memory. */
void query_cache_keep(query_client *c, const query_cache_req *k, uint64_t version,
                      uint64_t reg_gen, size_t start, uint64_t errors_before);

struct query_client {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    query_server *srv;
    query_client *prev, *next;   /* the server's list of clients */
    uint64_t id;
    bool is_unix;
    bool authed;
    bool closing;                /* uv_close called or pending */
    bool close_after_reply;      /* stop reading; close once the output is flushed */
    bool reading;                /* uv_read_start active */
    bool writing;                /* a uv_write in flight */
    bool shutting;               /* uv_shutdown started: closing after the FIN */
    bool blocked;                /* a command runs on a worker thread: no reading, no
                                    parsing (its arguments live in rbuf and the parser) */
    bool handle_closed;          /* the close callback ran; memory waits for the worker */
    bool is_shadow;              /* the stand-in a worker thread writes to (no socket) */
    query_blob *wblob;           /* the cached reply the write in flight sends, or NULL */
    struct query_subs *subs;     /* owned: channels and patterns subscribed (pubsub.c) */
    char name[64];               /* CLIENT SETNAME; "" when unset */
    char lib_name[32], lib_ver[32];
    char addr[64], laddr[64];    /* "ip:port" of the peer and of our end */
    uint64_t created_ms, last_ms;
    const char *last_cmd;        /* name of the last command run (static storage) */

    resp_parser parser;
    char *rbuf;                  /* owned: bytes read, not yet parsed */
    size_t rstart, rlen, rcap;   /* unparsed bytes are rbuf[rstart, rlen) */
    resp_writer out;             /* replies not yet handed to a write */
    char *wbuf;                  /* owned: the bytes of the write in flight */
    size_t wlen, wcap;
    uv_write_t wreq;
    uv_shutdown_t sreq;
};

struct query_server {
    uv_loop_t *loop;
    query_options opts;          /* strings point into the copies below */
    char *host, *unix_path, *auth_token; /* owned copies */
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_timer_t idle_timer;
    bool tcp_open, pipe_open, timer_open;
    bool tcp_listening, pipe_listening;
    bool closing;
    int port;                    /* bound TCP port, or -1 */
    int open_handles;            /* handles whose close callback is pending */
    query_close_cb close_cb;
    void *close_arg;
    query_client *clients;       /* list head */
    uint64_t next_client_id;
    uint64_t started_ms;
    query_stats stats;
    const query_cmd **cmds;      /* owned: every command, sorted by name */
    const struct engine_registry *registry; /* borrowed (query_server_set_registry); NULL */
    query_metrics_fn metrics_fn;            /* the daemon's metrics for INFO; NULL: none */
    void *metrics_arg;
    struct query_labels *labels; /* owned: label cache (series.h), built on first use */
    query_cache *cache;          /* owned: replies of range commands; NULL when disabled */
    uint64_t registry_gen;       /* bumped by query_server_set_registry */
    size_t ncmds;
};

/* Runs fn(c', argc, argv) on libuv's thread pool instead of the loop, for a command that
 * may take long (a scan of many points). Call it from a handler in place of replying: the
 * client reads and parses nothing more until fn is done; then the reply fn wrote goes out in
 * order and the client carries on. c' is a stand-in for c with srv, id, authed and a fresh
 * writer in c's protocol; fn must touch nothing else of c or of the server but what is
 * immutable (srv->opts). When the thread pool refuses the work, fn runs inline. */
void query_client_offload(query_client *c, query_cmd_fn fn, size_t argc, const resp_arg *argv);

/* client.c: accepts a connection on a listener (the uv_connection_cb of both listeners);
 * closes a client (idempotent; its memory goes in the close callback). */
void query_client_accept(uv_stream_t *listener, int status);
void query_client_close(query_client *c);

/* client.c: hands c's gathered output to a write (for messages pushed between requests). */
void query_client_flush(query_client *c);

/* client.c: when c has nothing else to send (no write in flight, no reply gathered) and is a
 * connection of the loop thread, writes b's bytes straight from b, keeps the reference until
 * the write is done, and returns true; otherwise false and b stays the caller's. */
bool query_client_send_blob(query_client *c, query_blob *b);

/* pubsub.c: subscriptions of a client (channels plus patterns); freeing them; glob
 * matching as Redis' PSUBSCRIBE patterns. */
size_t query_client_nsubs(const query_client *c);
void query_client_subs_free(query_client *c);
bool query_glob_match(const char *pattern, size_t plen, const char *s, size_t slen);

/* server.c: frees a closing server once its handles and clients are gone (then calls the
 * close callback); a no-op otherwise. */
void query_server_maybe_finish(query_server *s);

/* The command named by a (case-insensitive), or NULL. */
const query_cmd *query_cmd_lookup(const query_server *s, const resp_arg *a);

/* Replies "wrong number of arguments" for the command argv[0]. */
void query_reply_arity(query_client *c, const resp_arg *name);

/* Appends the CLIENT INFO line of c (no trailing newline) to w as part of a bulk. Returns
 * the number of bytes written into buf (at most len - 1). */
int query_client_info(const query_client *c, char *buf, size_t len);

#endif
