/* schedule.h: internal to collectors/. When each polled source runs: the scheduler the HTTP
 * and Modbus pollers share.
 *
 * Tens of thousands of sources that all poll "hourly" must not all poll at the top of the
 * hour. Each source gets a fixed slot in its interval: the sources of one interval are
 * spread evenly over it (or over a shorter spread) in the order they were added, each moved
 * by a deterministic jitter of up to a share of the spacing, so a source polls at the same
 * minute every cycle and a platform sees a steady trickle. At most max_inflight sources run
 * at once; sources due while that many run wait in due order. A source that is behind when
 * the scheduler starts (after an outage) is not fired at once with all the others: the
 * behind sources are spread over a catch-up period in their slot order, and the concurrency
 * bound still holds. After a failure the caller passes a retry delay (coll_backoff_ms gives
 * exponential backoff with full jitter); a source is never left waiting longer than its
 * next regular slot.
 *
 * Times are wall-clock milliseconds since the epoch (slots are aligned to the epoch, so an
 * hourly source keeps its minute across restarts). With a loop, a timer drives it; without
 * one (tests), coll_sched_run is called by hand with the time. Loop thread only. */
#ifndef PLUME_COLLECTORS_SCHEDULE_H
#define PLUME_COLLECTORS_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

struct uv_loop_s;

typedef struct coll_sched coll_sched; /* opaque */

/* Runs source id for the slot planned at slot_ms. The source must call coll_sched_done
 * exactly once afterwards (from this call or later). */
typedef void (*coll_sched_fire_fn)(void *arg, uint32_t id, int64_t slot_ms);

typedef struct coll_sched_options {
    struct uv_loop_s *loop;   /* NULL: no timer; call coll_sched_run yourself */
    coll_sched_fire_fn fire;
    void *arg;
    uint32_t max_inflight;    /* sources running at once; 0: 256 */
    double jitter;            /* share (0..1) of the spacing a slot moves by; default 0.5
                                 when negative */
    int64_t catchup_ms;       /* behind sources are spread over this long after start;
                                 0: fired as fast as max_inflight allows */
    uint64_t seed;            /* of the jitter */
    int64_t (*now_ms)(void *arg); /* the clock; NULL: CLOCK_REALTIME */
} coll_sched_options;

typedef struct coll_sched_entry {
    int64_t interval_ms;      /* > 0 */
    int64_t spread_ms;        /* slots lie in the first spread_ms of each interval;
                                 0 or > interval: the whole interval */
    bool behind;              /* missed at least one slot: catch up after start */
} coll_sched_entry;

int coll_sched_create(const coll_sched_options *o, coll_sched **out);
/* Adds a source before coll_sched_start; its id is the number of sources added before it.
 * 0, -EINVAL (interval <= 0, or already started), -ENOMEM. */
int coll_sched_add(coll_sched *s, const coll_sched_entry *e, uint32_t *id);
/* Plans every slot and starts: sources that are behind are due over the catch-up period
 * (in the order of their slots), the others at their next slot. 0 or -EINVAL (started already). */
int coll_sched_start(coll_sched *s);
/* Source id finished. retry_ms > 0: run again after that long (a failure, or more to catch
 * up), but no later than its next slot; 0: at its next slot. */
void coll_sched_done(coll_sched *s, uint32_t id, int64_t retry_ms);
/* Fires every source due at now_ms that the concurrency bound allows. Returns the time the
 * next source is due (INT64_MAX: none waiting, or the bound is reached). The timer calls
 * it; tests call it with their own time. */
int64_t coll_sched_run(coll_sched *s, int64_t now_ms);
/* The planned offset of source id's slot inside its interval, and when it is next due
 * (INT64_MAX while it runs). */
int64_t coll_sched_phase_ms(const coll_sched *s, uint32_t id);
int64_t coll_sched_due_ms(const coll_sched *s, uint32_t id);
uint32_t coll_sched_inflight(const coll_sched *s);
uint32_t coll_sched_count(const coll_sched *s);
/* Stops firing and frees the scheduler (its timer's memory once the loop closes it). Stop
 * the running sources first: coll_sched_done must not be called afterwards. */
void coll_sched_destroy(coll_sched *s);

/* Exponential backoff with jitter for the n-th consecutive failure (n >= 1): a delay uniform
 * in [cap/2, cap] where cap = min(max, base * 2^(n-1)), drawn from the random value r.
 * Half the cap at least, so a dead platform is not retried at once; the other half random,
 * so sources that failed together do not retry together. */
int64_t coll_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t failures, uint64_t r);

/* A 64-bit mix of x (splitmix64), for jitter and backoff randomness. */
uint64_t coll_mix64(uint64_t x);

#endif
