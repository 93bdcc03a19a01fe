/* sim_http.h: internal to collectors/sim/. What the simulator's HTTP server (http_server.c:
 * connections, request framing, keep-alive) asks of its routes (http_feed.c: the fleet's
 * records as a provincial platform publishes them, in JSON, paged). */
#ifndef PLUME_SIM_HTTP_H
#define PLUME_SIM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "sim.h"

/* A growing buffer; p is malloc'd, owned by whoever holds the struct. */
typedef struct sim_buf {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the content is cut */
} sim_buf;

void sim_buf_put(sim_buf *b, const char *s, size_t n);
void sim_buf_puts(sim_buf *b, const char *s);

/* One answer: status, its body (JSON), and an entity tag of the body. */
typedef struct sim_http_answer {
    int status;         /* 200, 304, 400, 404, 405, 500 */
    sim_buf body;
    char etag[24];      /* "\"<16 hex>\"" or "" */
    uint64_t records;   /* records in the body */
} sim_http_answer;

/* Answers a request for target (path and query, len bytes) with method; if_none_match is
 * the header's value or NULL. st counts what was served (requests are counted by the
 * caller). */
void sim_http_route(const sim_fleet *f, const char *method, const char *target, size_t len,
                    const char *if_none_match, const sim_http_stats *st,
                    sim_http_answer *out);

#endif
