/* test_schedule.c: the pollers' scheduler on a clock the test moves: slots spread evenly
 * over the interval and kept across cycles, the concurrency bound, catch-up spread over its
 * period after an outage, retries capped at the next slot, and the backoff's bounds. */
#include <stdlib.h>

#include "schedule.h"
#include "tap.h"

#define HOUR_MS 3600000LL
#define T0 (1795000000LL / 3600 * 3600 * 1000) /* an hour boundary, ms */

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

typedef struct rec {
    coll_sched *s;
    uint32_t n;
    uint32_t *fires;      /* per source */
    int64_t *last_slot;
    uint32_t per_bucket[3600];
    int64_t bucket_ms, origin;
    uint32_t max_inflight_seen;
    bool finish_now;      /* call done from inside fire */
    uint32_t *running;    /* ids fired and not done (when !finish_now) */
    uint32_t nrunning;
} rec;

static void on_fire(void *arg, uint32_t id, int64_t slot)
{
    rec *r = arg;
    r->fires[id]++;
    r->last_slot[id] = slot;
    int64_t b = r->bucket_ms ? (fake_now - r->origin) / r->bucket_ms : -1;
    if (b >= 0 && b < 3600)
        r->per_bucket[b]++;
    if (coll_sched_inflight(r->s) > r->max_inflight_seen)
        r->max_inflight_seen = coll_sched_inflight(r->s);
    if (r->finish_now)
        coll_sched_done(r->s, id, 0);
    else
        r->running[r->nrunning++] = id;
}

static rec *rec_new(uint32_t n, const coll_sched_options *base, bool behind, int64_t interval)
{
    rec *r = calloc(1, sizeof *r);
    r->n = n;
    r->fires = calloc(n, sizeof *r->fires);
    r->last_slot = calloc(n, sizeof *r->last_slot);
    r->running = calloc(n, sizeof *r->running);
    coll_sched_options o = *base;
    o.fire = on_fire;
    o.arg = r;
    o.now_ms = fake_clock;
    coll_sched_create(&o, &r->s);
    /* the clock callback gets o.arg: the rec, which fake_clock ignores */
    for (uint32_t i = 0; i < n; i++) {
        coll_sched_entry e = {.interval_ms = interval, .behind = behind};
        coll_sched_add(r->s, &e, NULL);
    }
    return r;
}

static void rec_free(rec *r)
{
    coll_sched_destroy(r->s);
    free(r->fires);
    free(r->last_slot);
    free(r->running);
    free(r);
}

/* 3,600 hourly sources: one a second, each at the same offset every hour. */
static void test_spread(void)
{
    coll_sched_options o = {.jitter = 0.5, .seed = 7};
    fake_now = T0;
    rec *r = rec_new(3600, &o, false, HOUR_MS);
    r->finish_now = true;
    r->bucket_ms = 60000;
    r->origin = T0;
    CHECK_EQ_INT(coll_sched_start(r->s), 0);
    for (fake_now = T0; fake_now < T0 + HOUR_MS; fake_now += 250)
        coll_sched_run(r->s, fake_now);
    uint32_t once = 0, lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < 3600; i++)
        once += r->fires[i] == 1;
    for (int m = 0; m < 60; m++) {
        lo = r->per_bucket[m] < lo ? r->per_bucket[m] : lo;
        hi = r->per_bucket[m] > hi ? r->per_bucket[m] : hi;
    }
    CHECK_EQ_INT(once, 3600);
    CHECK(lo >= 59 && hi <= 61);
    /* The same slot next hour: phases are fixed, a cycle apart. */
    int64_t slot0 = r->last_slot[100], slot1 = r->last_slot[2000];
    for (; fake_now < T0 + 2 * HOUR_MS; fake_now += 250)
        coll_sched_run(r->s, fake_now);
    CHECK_EQ_INT(r->last_slot[100] - slot0, HOUR_MS);
    CHECK_EQ_INT(r->last_slot[2000] - slot1, HOUR_MS);
    CHECK_EQ_INT(r->fires[100], 2);
    /* Phases follow the order added, one spacing (1 s) apart give or take the jitter. */
    int64_t d = coll_sched_phase_ms(r->s, 1001) - coll_sched_phase_ms(r->s, 1000);
    CHECK(d >= 500 && d <= 1500);
    CHECK(coll_sched_phase_ms(r->s, 0) >= 0 && coll_sched_phase_ms(r->s, 3599) < HOUR_MS);
    rec_free(r);
}

/* A shorter spread packs the slots into the start of each interval. */
static void test_spread_short(void)
{
    coll_sched_options o = {.jitter = 0.0};
    rec *r = rec_new(0, &o, false, HOUR_MS);
    for (int i = 0; i < 100; i++) {
        coll_sched_entry e = {.interval_ms = HOUR_MS, .spread_ms = 600000};
        coll_sched_add(r->s, &e, NULL);
    }
    coll_sched_entry e = {.interval_ms = 60000}; /* another group: spread on its own */
    coll_sched_add(r->s, &e, NULL);
    fake_now = T0;
    coll_sched_start(r->s);
    CHECK_EQ_INT(coll_sched_phase_ms(r->s, 0), 3000);
    CHECK_EQ_INT(coll_sched_phase_ms(r->s, 99), 597000);
    CHECK_EQ_INT(coll_sched_phase_ms(r->s, 100), 30000);
    CHECK_EQ_INT(coll_sched_due_ms(r->s, 100), T0 + 30000);
    rec_free(r);
}

/* Everyone behind, no catch-up period: only max_inflight run at once, and each source
 * runs exactly once as the others finish. */
static void test_bound(void)
{
    coll_sched_options o = {.max_inflight = 10};
    fake_now = T0 + 1000;
    rec *r = rec_new(1000, &o, true, HOUR_MS);
    r->bucket_ms = 1000;
    r->origin = T0;
    coll_sched_start(r->s);
    coll_sched_run(r->s, fake_now);
    CHECK_EQ_INT(r->nrunning, 10);
    CHECK_EQ_INT(coll_sched_inflight(r->s), 10);
    CHECK_EQ_INT(coll_sched_run(r->s, fake_now), INT64_MAX);
    CHECK_EQ_INT(r->nrunning, 10);
    uint32_t done = 0;
    while (done < r->nrunning) {
        coll_sched_done(r->s, r->running[done++], 0);
        coll_sched_run(r->s, fake_now);
    }
    uint32_t once = 0;
    for (uint32_t i = 0; i < 1000; i++)
        once += r->fires[i] == 1;
    CHECK_EQ_INT(once, 1000);
    CHECK_EQ_INT(r->max_inflight_seen, 10);
    CHECK_EQ_INT(coll_sched_inflight(r->s), 0);
    /* Each is next due at its regular slot, within the next hour. */
    CHECK(coll_sched_due_ms(r->s, 500) > fake_now &&
          coll_sched_due_ms(r->s, 500) <= fake_now + HOUR_MS);
    rec_free(r);
}

/* After an outage, 1,000 behind sources catch up over 60 s, evenly, not all at once. */
static void test_catchup(void)
{
    coll_sched_options o = {.catchup_ms = 60000, .jitter = 0.5};
    fake_now = T0 + 1800 * 1000;
    rec *r = rec_new(1000, &o, true, HOUR_MS);
    r->finish_now = true;
    r->bucket_ms = 6000;
    r->origin = fake_now;
    coll_sched_start(r->s);
    int64_t start = fake_now;
    for (; fake_now <= start + 60000; fake_now += 100)
        coll_sched_run(r->s, fake_now);
    uint32_t fired = 0, lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < 1000; i++)
        fired += r->fires[i] >= 1;
    for (int b = 0; b < 10; b++) {
        lo = r->per_bucket[b] < lo ? r->per_bucket[b] : lo;
        hi = r->per_bucket[b] > hi ? r->per_bucket[b] : hi;
    }
    CHECK_EQ_INT(fired, 1000);
    /* ~100 catch-ups per 6 s, plus the few whose regular slot also falls in that minute */
    CHECK(lo >= 90 && hi <= 125);
    /* Then each goes back to its own slot: within the next hour, every one once more. */
    for (; fake_now < start + 3600 * 1000 + 60000; fake_now += 1000)
        coll_sched_run(r->s, fake_now);
    uint32_t again = 0;
    for (uint32_t i = 0; i < 1000; i++)
        again += r->fires[i] >= 2 && r->fires[i] <= 3;
    CHECK_EQ_INT(again, 1000);
    CHECK_EQ_INT(r->last_slot[999] % HOUR_MS, coll_sched_phase_ms(r->s, 999));
    rec_free(r);
}

/* A retry comes after its delay, but never later than the next regular slot. */
static void test_retry(void)
{
    coll_sched_options o = {.jitter = 0};
    fake_now = T0;
    rec *r = rec_new(2, &o, false, HOUR_MS);
    coll_sched_start(r->s);
    int64_t slot = coll_sched_due_ms(r->s, 0);
    CHECK_EQ_INT(slot, T0 + 900000); /* two sources: a quarter and three quarters in */
    fake_now = slot;
    coll_sched_run(r->s, fake_now);
    CHECK_EQ_INT(r->fires[0], 1);
    CHECK_EQ_INT(coll_sched_due_ms(r->s, 0), INT64_MAX);
    fake_now += 200;
    coll_sched_done(r->s, 0, 30000);
    CHECK_EQ_INT(coll_sched_due_ms(r->s, 0), fake_now + 30000);
    fake_now += 30000;
    coll_sched_run(r->s, fake_now);
    CHECK_EQ_INT(r->fires[0], 2);
    coll_sched_done(r->s, 0, 10 * HOUR_MS);
    CHECK_EQ_INT(coll_sched_due_ms(r->s, 0), slot + HOUR_MS);
    /* done for a source that is not running changes nothing */
    coll_sched_done(r->s, 1, 5);
    CHECK_EQ_INT(coll_sched_due_ms(r->s, 1), T0 + 2700000);
    rec_free(r);
}

static void test_backoff(void)
{
    bool ok = true, spread = false;
    int64_t first = -1;
    for (uint32_t n = 1; n <= 20; n++)
        for (uint64_t k = 0; k < 200; k++) {
            int64_t cap = 1000LL << (n - 1 < 20 ? n - 1 : 19);
            if (cap > 300000)
                cap = 300000;
            int64_t d = coll_backoff_ms(1000, 300000, n, coll_mix64(k + n * 1000));
            ok &= d >= cap / 2 && d <= cap;
            if (n == 8) {
                if (first < 0)
                    first = d;
                else if (d != first)
                    spread = true;
            }
        }
    CHECK(ok);
    CHECK(spread);
    CHECK(coll_backoff_ms(1000, 300000, 1000, 0) >= 150000);
}

int main(void)
{
    test_spread();
    test_spread_short();
    test_bound();
    test_catchup();
    test_retry();
    test_backoff();
    return tap_done();
}
