/* collectors.h: the public header of collectors/, the adapters that bring data in: the
 * HJ 212 server (devices push), and later the HTTP and Modbus pollers. Each takes the
 * caller's libuv loop and the engine, and hands readings to engine_ingest(). The HJ 212
 * codec itself is collectors/hj212/hj212.h.
 *
 * Conventions as in storage.h. Everything here runs on the loop thread. */
#ifndef PLUME_COLLECTORS_H
#define PLUME_COLLECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- HJ 212 server (hj212_server.c) ---------------------------------------------------- */

typedef struct hj212_server hj212_server;

/* What the registry says of a device's credentials. */
enum { HJ212_AUTH_OK = 0, HJ212_AUTH_UNKNOWN_MN = 1, HJ212_AUTH_BAD_PW = 2 };
typedef int (*hj212_auth_fn)(void *arg, const char *mn, const char *pw);

/* What to do with a packet whose CRC is not the standard one. */
enum { HJ212_CRC_REJECT = 0, HJ212_CRC_FLAG, HJ212_CRC_IGNORE };

typedef struct hj212_server_options {
    const char *listen;         /* "host:port[,host:port...]"; port 0 picks a free port */
    hj212_auth_fn auth;         /* may be NULL: every MN is unknown */
    void *auth_arg;
    bool open;                  /* accept unknown MNs (a wrong PW of a known MN is still
                                   refused) */
    int crc_policy;             /* HJ212_CRC_* */
    uint32_t max_connections;   /* 0: 200,000 */
    uint32_t max_segment;       /* longest data segment, bytes; 0: 8192 */
    uint32_t idle_timeout_s;    /* 0: 900 */
    uint32_t max_pulls_per_s;   /* history requests sent per second at most; 0: 50 */
    bool set_clock;             /* send 1012 to devices whose clock is off by > 60 s */
    int64_t tz_offset_s;        /* local time of DataTime; ENGINE_CST_OFFSET_S */
} hj212_server_options;

typedef struct hj212_server_stats {
    uint64_t conns_accepted, conns_refused, conns_open, conns_forwarding;
    uint64_t closed_idle, closed_garbage, closed_slow, closed_auth, closed_peer;
    uint64_t packets, packets_accepted, acks_sent, bytes_in;
    uint64_t crc_bad, crc_flagged, parse_errors, auth_unknown_mn, auth_bad_pw;
    uint64_t unsupported_cn, ingest_errors, events;
    uint64_t junk_bytes, oversize, len_mismatch;
    uint64_t pulls_sent, pulls_done, pulls_failed, pulls_timed_out, pulls_queued;
    uint64_t pulls_interrupted;       /* the connection closed first: asked again later */
    uint64_t pulled_hours, pulled_days; /* records received in answer to a request */
    uint64_t clock_sets;
    uint64_t framers_in_use;
} hj212_server_stats;

/* Creates the server and starts listening. On success *out owns it until
 * hj212_server_close(). Returns 0, -EINVAL (bad listen address) or the bind error. */
int hj212_server_start(struct uv_loop_s *loop, engine *e, const hj212_server_options *opts,
                       hj212_server **out);

/* The port of listener i (after binding, so port 0 resolves), or -1. */
int hj212_server_port(const hj212_server *s, int i);

void hj212_server_get_stats(const hj212_server *s, hj212_server_stats *out);

/* Stops listening and closes every connection; memory is freed as the loop runs the close
 * callbacks. Acknowledgements still pending are dropped with their connections. */
void hj212_server_close(hj212_server *s);


/* ---- HTTP poller (http/poller.c) ------------------------------------------------------- */

/* Polls platforms that publish monitoring data as JSON over HTTP: each source of a sources
 * file (collectors/http/README.md) on its schedule, its records stored through
 * engine_ingest as the HJ 212 uploads are, its state kept in the store's "sources" table
 * (one of engine_kv_tables). */
typedef struct http_poller http_poller;

typedef struct http_poller_options {
    const char *sources_file;      /* JSON; copied */
    storage *st;                   /* borrowed, for the states; NULL: kept in memory only */
    uint32_t max_connections;      /* connections (and polls) at once; 0: 256 */
    uint32_t max_host_connections; /* per host; 0: 64 */
    int64_t catchup_ms;            /* sources behind at start catch up over this; 0: as
                                      fast as the connections allow */
    uint64_t seed;                 /* of the jitter */
} http_poller_options;

typedef struct http_poller_stats {
    uint64_t sources, up, down;
    uint64_t polls, polls_ok, polls_failed, requests, not_modified;
    uint64_t records, records_bad, state_changes;
    uint64_t running, sockets, sockets_max;
} http_poller_stats;

/* Loads the sources (err says what is wrong, file and source) and starts polling. 0,
 * -EINVAL (bad sources file), -errno (cannot read it), -ENOMEM. */
int http_poller_start(struct uv_loop_s *loop, engine *e, const http_poller_options *o,
                      http_poller **out, char *err, size_t errlen);
/* Reads the sources file again; on error the sources polled so far stay. Sources keep their
 * state by name. */
int http_poller_reload(http_poller *p, char *err, size_t errlen);
void http_poller_get_stats(const http_poller *p, http_poller_stats *out);
/* Stops polling: transfers are cancelled, states written. Call before engine_close(); the
 * memory goes once the engine has acknowledged what was ingested. */
void http_poller_close(http_poller *p);

#ifdef __cplusplus
}
#endif
#endif
