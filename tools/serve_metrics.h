/* serve_metrics.h: the daemon's metrics provider (serve_metrics.c) and what it reads. */
#ifndef PLUME_SERVE_METRICS_H
#define PLUME_SERVE_METRICS_H

#include <stdint.h>

#include "collectors.h"
#include "engine.h"
#include "mb.h"
#include "query.h"
#include "storage.h"

/* The modules whose counters are shown; any may be NULL (not running). Borrowed: the daemon
 * clears a pointer before it closes that module. */
typedef struct serve_metrics {
    int64_t started_s;
    storage *st;
    engine *eng;
    engine_alerts *alerts;
    hj212_server *hj212;
    query_server *query;
    mb_poller *modbus;
} serve_metrics;

/* A query_metrics_fn; arg is a serve_metrics. */
void serve_metrics_collect(void *arg, query_metrics *m);

#endif
