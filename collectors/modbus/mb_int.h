/* mb_int.h: internal to collectors/modbus/: what the endpoint threads (mb_link.c), the loop
 * side (mb_poller.c) and the configuration swap (mb_reload.c) share. A thread owns its
 * endpoint's libmodbus context, socket and device schedule; it hands each device read to the
 * loop as one message, and a last message when it stops. Counters are per thread, written
 * with relaxed atomics, summed on demand. */
#ifndef PLUME_MB_INT_H
#define PLUME_MB_INT_H

#include <pthread.h>
#include <uv.h>

#include "mb.h"

/* Lateness histogram: 0.1 ms steps to 100 ms, then 10 ms steps to 10.1 s, then overflow. */
#define MB_HIST_FINE 1000
#define MB_HIST_N 2001

/* Reserved fds kept beyond one per endpoint, for endpoints a reload adds. */
#define MB_SPARE_FDS 32

/* One device read, from its thread to the loop; owned by the queue, then by the loop. The
 * link's last message (exited) is allocated with the link, so it is never lost. */
typedef struct mb_msg {
    struct mb_msg *next;
    struct mb_link *link;      /* the link that read it */
    bool exited;               /* the link's thread has stopped; nothing else set */
    uint32_t dev;              /* index into link->ep->devices */
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

/* One loaded configuration. Links point into it, so it lives while any link uses it. */
typedef struct mb_gen {
    const mb_config *cfg;
    mb_config *owned;          /* cfg when a reload gave it; NULL for the one given at start
                                * (its caller frees it after mb_poller_close) */
    size_t refs;               /* links using it, +1 while it is the poller's current one */
} mb_gen;

typedef struct mb_devstate {   /* loop side, per device */
    const mb_device *dev;      /* borrowed from the link's configuration */
    const mb_endpoint *ep;
    int state;
    int64_t since, last_ok, last_error_at;
    uint64_t polls, failures, consecutive;
    char last_error[160];
    bool dirty;
} mb_devstate;

/* A device's state kept across a reload, by MN (its old configuration may be gone). */
typedef struct mb_carry {
    char mn[ENGINE_ID_SIZE];
    mb_devstate s;             /* dev and ep are not valid */
} mb_carry;

typedef struct mb_link {
    struct mb_link *next;      /* the poller's list of links not yet freed; loop thread */
    struct mb_poller *p;
    mb_gen *gen;               /* holds a reference: ep points into gen->cfg */
    const mb_endpoint *ep;
    int slot_fd;               /* the reserved fd below 1024 this link's socket lives on */
    pthread_t thread;
    bool started, joined;      /* loop side */
    bool retiring;             /* loop side: told to quit by a reload, not yet stopped */
    bool quit;                 /* this thread stops (written under p->lock, read atomically) */
    mb_msg *exit_msg;          /* posted by the thread as it stops; owned until then */
    mb_devstate *states;       /* loop side, one per device; owned */
    bool mark;                 /* loop side: scratch for a reload's plan */
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

struct mb_reload;

struct mb_poller {
    uv_loop_t *loop;
    engine *e;
    storage *st;
    mb_gen *cur;               /* the configuration in force */
    uv_async_t async;
    uv_timer_t flush_timer;
    pthread_mutex_t lock;      /* guards the queue and the quit flags; threads sleep on cond */
    pthread_cond_t cond;
    mb_msg *head, *tail;
    bool stopping;             /* every thread stops (written under lock, read atomically) */
    mb_link *links;            /* every link not yet freed, retiring ones included */
    int devnull_fd;
    int *spare;                /* reserved fds below 1024 no link uses; owned */
    size_t nspare, capspare;
    struct mb_reload *pending; /* a swap waiting for retiring links to stop; NULL */
    uint64_t seed;
    mb_counters gone;          /* counters of the links freed so far */
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

/* mb_poller.c, for mb_reload.c (loop thread): a new link for endpoint ep of gen on the
 * reserved fd slot_fd, its device states taken from carry (sorted by MN, NULL: none) or
 * fresh, its thread started; NULL (slot_fd not taken) without memory or thread. */
mb_link *mb_poller_link_start(struct mb_poller *p, mb_gen *gen, const mb_endpoint *ep,
                              int slot_fd, const mb_carry *carry, size_t ncarry);
/* Puts a reserved fd back among the spares (closes it if it cannot be kept). */
void mb_poller_slot_give(struct mb_poller *p, int fd);
/* Tells a link's thread to stop after its current request (its exit message follows). */
void mb_poller_link_quit(struct mb_poller *p, mb_link *L);
/* A reserved fd below 1024 for a new link, or -EMFILE. */
int mb_poller_slot_take(struct mb_poller *p);
/* Drops one reference to gen, freeing it with the last. */
void mb_gen_unref(mb_gen *g);
/* Writes the record of a device state into b (the "sources" table). */
void mb_poller_put_state(storage_batch *b, mb_devstate *s);

/* mb_reload.c: a retiring link of the pending swap has stopped: its device states are
 * kept (called before the link is freed). */
void mb_reload_link_stopped(struct mb_poller *p, mb_link *L);
/* Completes the pending swap once no retiring link runs: the new links start. */
void mb_reload_try_complete(struct mb_poller *p);
/* Frees a swap that will not complete (the poller closes). */
void mb_reload_abandon(struct mb_poller *p);

#endif
