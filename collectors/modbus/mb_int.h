/* mb_int.h: internal to collectors/modbus/: what the endpoint threads (mb_link.c) and the
 * loop side (mb_poller.c) share. A thread owns its endpoint's libmodbus context, socket and
 * device schedule; it hands each device read to the loop as one message. Counters are
 * per thread, written with relaxed atomics, summed on demand. */
#ifndef PLUME_MB_INT_H
#define PLUME_MB_INT_H

#include <pthread.h>
#include <uv.h>

#include "mb.h"

/* Lateness histogram: 0.1 ms steps to 100 ms, then 10 ms steps to 10.1 s, then overflow. */
#define MB_HIST_FINE 1000
#define MB_HIST_N 2001

/* One device read, from its thread to the loop; owned by the queue, then by the loop. */
typedef struct mb_msg {
    struct mb_msg *next;
    uint32_t dev;              /* index into the poller's device table */
    int64_t ts;                /* wall-clock seconds the read started */
    int state;                 /* enum mb_state after this read */
    bool ok;                   /* every planned block read */
    char error[160];           /* what failed ("" when ok) */
    uint32_t nvalues;
    engine_value values[];     /* codes borrowed from the config */
} mb_msg;

typedef struct mb_counters {
    uint64_t polls, polls_ok, requests, request_errors, timeouts, exceptions, config_errors;
    uint64_t connects, connect_failures, disconnects, values, values_bad, skipped, late_cycles;
    uint64_t hist[MB_HIST_N];
} mb_counters;

typedef struct mb_devrt mb_devrt;

typedef struct mb_link {
    struct mb_poller *p;
    const mb_endpoint *ep;     /* borrowed from the config */
    uint32_t first_dev;        /* device table index of ep->devices[0] */
    int slot_fd;               /* the reserved fd below 1024 this link's socket lives on */
    pthread_t thread;
    bool started;
    void *ctx;                 /* modbus_t *, owned by the thread */
    bool connected;
    int link_fails;            /* connection failures in a row */
    int link_timeouts;         /* requests in a row without an answer */
    int64_t link_retry_ms;     /* monotonic time before which no connect is tried */
    char link_error[128];
    mb_devrt *devs;            /* per device breaker; owned */
    struct coll_sched *sched;  /* when each device is read (collectors/schedule.h); owned */
    uint64_t rng;
    mb_counters c;
} mb_link;

typedef struct mb_devstate {   /* loop side, per device */
    const mb_device *dev;      /* borrowed from the config */
    const mb_endpoint *ep;
    int state;
    int64_t since, last_ok, last_error_at;
    uint64_t polls, failures, consecutive;
    char last_error[160];
    bool dirty;
} mb_devstate;

struct mb_poller {
    uv_loop_t *loop;
    engine *e;
    storage *st;
    const mb_config *cfg;
    uv_async_t async;
    uv_timer_t flush_timer;
    pthread_mutex_t lock;      /* guards the queue and stopping; the threads sleep on cond */
    pthread_cond_t cond;
    mb_msg *head, *tail;
    bool stopping;
    mb_link *links;
    size_t nlinks;
    int devnull_fd;
    mb_devstate *devs;
    size_t ndevs;
    engine_rtd_rollup *rollup; /* NULL when minutes are not rolled up */
    uint64_t uploads, ingest_errors;
    int closing;
};

int64_t mb_mono_ms(void);
/* Allocates a link's device schedule and its libmodbus context (before its thread runs),
 * and frees them (after it stopped). */
int mb_link_init(mb_link *L);
void mb_link_free(mb_link *L);
/* Thread body of one endpoint. */
void *mb_link_main(void *arg);
/* Hands a finished read to the loop (thread side). */
void mb_poller_post(struct mb_poller *p, mb_msg *m);

#endif
