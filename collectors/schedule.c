/* schedule.c: slots, catch-up, retries and the concurrency bound of polled sources (see
 * schedule.h for the policy). The waiting sources sit in a binary heap ordered by due time;
 * one timer is armed for the earliest. Firing pops from the heap while fewer than
 * max_inflight sources run, so a backlog drains in due order at the rate the sources finish
 * and never as a burst. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "schedule.h"

#define DEFAULT_INFLIGHT 256
#define NOT_QUEUED UINT32_MAX

typedef struct entry {
    int64_t interval_ms, spread_ms, phase_ms;
    int64_t due_ms;     /* when queued */
    int64_t slot_ms;    /* the slot it was fired for (while running) or is queued for */
    uint32_t heap_pos;  /* NOT_QUEUED while running or not yet planned */
    bool behind, running;
} entry;

struct coll_sched {
    coll_sched_options o;
    entry *e;
    uint32_t n, cap;
    uint32_t *heap;     /* ids by due_ms */
    uint32_t nheap;
    uint32_t inflight;
    bool started, firing;
    uv_timer_t *timer;  /* owned; freed in its close callback */
};

uint64_t coll_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int64_t coll_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t failures, uint64_t r)
{
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t cap = base_ms;
    for (uint32_t i = 1; i < failures && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (cap > max_ms)
        cap = max_ms;
    int64_t half = cap / 2;
    return half + (int64_t)((r >> 11) % (uint64_t)(cap - half + 1));
}

static int64_t clock_realtime_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const coll_sched *s)
{
    return s->o.now_ms(s->o.arg);
}

/* ---- The heap ------------------------------------------------------------------------- */

static bool before(const coll_sched *s, uint32_t a, uint32_t b)
{
    const entry *x = &s->e[a], *y = &s->e[b];
    return x->due_ms < y->due_ms || (x->due_ms == y->due_ms && a < b);
}

static void heap_set(coll_sched *s, uint32_t pos, uint32_t id)
{
    s->heap[pos] = id;
    s->e[id].heap_pos = pos;
}

static void heap_up(coll_sched *s, uint32_t pos)
{
    uint32_t id = s->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(s, id, s->heap[parent]))
            break;
        heap_set(s, pos, s->heap[parent]);
        pos = parent;
    }
    heap_set(s, pos, id);
}

static void heap_down(coll_sched *s, uint32_t pos)
{
    uint32_t id = s->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && before(s, s->heap[c + 1], s->heap[c]))
            c++;
        if (!before(s, s->heap[c], id))
            break;
        heap_set(s, pos, s->heap[c]);
        pos = c;
    }
    heap_set(s, pos, id);
}

static void heap_push(coll_sched *s, uint32_t id)
{
    s->heap[s->nheap] = id;
    s->e[id].heap_pos = s->nheap;
    s->nheap++;
    heap_up(s, s->nheap - 1);
}

static uint32_t heap_pop(coll_sched *s)
{
    uint32_t id = s->heap[0];
    s->e[id].heap_pos = NOT_QUEUED;
    if (--s->nheap > 0) {
        heap_set(s, 0, s->heap[s->nheap]);
        heap_down(s, 0);
    }
    return id;
}

/* ---- Slots ---------------------------------------------------------------------------- */

/* The first slot of e at or after t. */
static int64_t slot_at_or_after(const entry *e, int64_t t)
{
    int64_t d = t - e->phase_ms;
    int64_t k = d >= 0 ? d / e->interval_ms : -((-d + e->interval_ms - 1) / e->interval_ms);
    int64_t slot = k * e->interval_ms + e->phase_ms;
    return slot < t ? slot + e->interval_ms : slot;
}

/* Gives every source its phase: the sources of one (interval, spread) evenly over the
 * spread, in the order added, each moved by up to jitter/2 of the spacing either way. */
static void plan_phases(coll_sched *s)
{
    uint32_t *rank = calloc(s->n ? s->n : 1, sizeof *rank);
    uint32_t *count = calloc(s->n ? s->n : 1, sizeof *count);
    uint32_t *group = calloc(s->n ? s->n : 1, sizeof *group);
    if (!rank || !count || !group) { /* fall back to phases from the hash alone */
        for (uint32_t i = 0; i < s->n; i++)
            s->e[i].phase_ms = (int64_t)(coll_mix64(s->o.seed ^ i) % (uint64_t)s->e[i].spread_ms);
        goto done;
    }
    /* group[i]: the first source with i's interval and spread (few distinct ones). */
    uint32_t *firsts = group; /* reuse: firsts of groups seen so far, then lookups */
    uint32_t ngroups = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t g = 0;
        for (; g < ngroups; g++) {
            const entry *f = &s->e[firsts[g]];
            if (f->interval_ms == s->e[i].interval_ms && f->spread_ms == s->e[i].spread_ms)
                break;
        }
        if (g == ngroups)
            firsts[ngroups++] = i;
        rank[i] = count[g]++;
        s->e[i].heap_pos = g; /* group number, until queued */
    }
    for (uint32_t i = 0; i < s->n; i++) {
        entry *e = &s->e[i];
        double spacing = (double)e->spread_ms / count[e->heap_pos];
        double u = (double)(coll_mix64(s->o.seed * 0x100000001b3ull ^ i) >> 11) /
                   9007199254740992.0;
        double p = (rank[i] + 0.5) * spacing + (u - 0.5) * s->o.jitter * spacing;
        int64_t ph = (int64_t)p;
        e->phase_ms = ph < 0 ? 0 : ph >= e->spread_ms ? e->spread_ms - 1 : ph;
        e->heap_pos = NOT_QUEUED;
    }
done:
    free(rank);
    free(count);
    free(group);
}

/* ---- The timer ------------------------------------------------------------------------ */

static void arm(coll_sched *s, int64_t next, int64_t now);

static void on_timer(uv_timer_t *t)
{
    coll_sched *s = t->data;
    int64_t now = now_ms(s);
    arm(s, coll_sched_run(s, now), now);
}

static void arm(coll_sched *s, int64_t next, int64_t now)
{
    if (!s->timer)
        return;
    if (next == INT64_MAX) {
        uv_timer_stop(s->timer);
        return;
    }
    uv_timer_start(s->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* ---- Interface ------------------------------------------------------------------------ */

int coll_sched_create(const coll_sched_options *o, coll_sched **out)
{
    if (!o || !o->fire)
        return -EINVAL;
    coll_sched *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->o = *o;
    if (s->o.max_inflight == 0)
        s->o.max_inflight = DEFAULT_INFLIGHT;
    if (s->o.jitter < 0)
        s->o.jitter = 0.5;
    if (s->o.jitter > 1)
        s->o.jitter = 1;
    if (s->o.catchup_ms < 0)
        s->o.catchup_ms = 0;
    if (!s->o.now_ms)
        s->o.now_ms = clock_realtime_ms;
    if (o->loop) {
        s->timer = malloc(sizeof *s->timer);
        if (!s->timer) {
            free(s);
            return -ENOMEM;
        }
        uv_timer_init(o->loop, s->timer);
        s->timer->data = s;
    }
    *out = s;
    return 0;
}

int coll_sched_add(coll_sched *s, const coll_sched_entry *e, uint32_t *id)
{
    if (s->started || !e || e->interval_ms <= 0 || s->n == UINT32_MAX - 1)
        return -EINVAL;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 64;
        entry *ne = realloc(s->e, cap * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        s->e = ne;
        s->cap = cap;
    }
    entry *x = &s->e[s->n];
    memset(x, 0, sizeof *x);
    x->interval_ms = e->interval_ms;
    x->spread_ms = e->spread_ms > 0 && e->spread_ms < e->interval_ms ? e->spread_ms
                                                                      : e->interval_ms;
    x->behind = e->behind;
    x->heap_pos = NOT_QUEUED;
    if (id)
        *id = s->n;
    s->n++;
    return 0;
}

int coll_sched_start(coll_sched *s)
{
    if (s->started)
        return -EINVAL;
    s->heap = malloc((s->n ? s->n : 1) * sizeof *s->heap);
    if (!s->heap)
        return -ENOMEM;
    s->started = true;
    plan_phases(s);
    int64_t now = now_ms(s);
    for (uint32_t i = 0; i < s->n; i++) {
        entry *e = &s->e[i];
        int64_t next = slot_at_or_after(e, now);
        if (e->behind) /* in slot order over the catch-up period, then back to the slot */
            next = now + (int64_t)((double)e->phase_ms / (double)e->spread_ms *
                                   (double)s->o.catchup_ms);
        e->due_ms = e->slot_ms = next;
        heap_push(s, i);
    }
    if (s->timer)
        arm(s, s->nheap ? s->e[s->heap[0]].due_ms : INT64_MAX, now);
    return 0;
}

int64_t coll_sched_run(coll_sched *s, int64_t now)
{
    if (s->firing) /* a source finished from inside fire: the outer loop carries on */
        return INT64_MAX;
    s->firing = true;
    while (s->nheap && s->inflight < s->o.max_inflight && s->e[s->heap[0]].due_ms <= now) {
        uint32_t id = heap_pop(s);
        entry *e = &s->e[id];
        e->running = true;
        s->inflight++;
        s->o.fire(s->o.arg, id, e->slot_ms);
    }
    s->firing = false;
    if (!s->nheap || s->inflight >= s->o.max_inflight)
        return INT64_MAX;
    return s->e[s->heap[0]].due_ms;
}

void coll_sched_done(coll_sched *s, uint32_t id, int64_t retry_ms)
{
    if (id >= s->n || !s->e[id].running)
        return;
    entry *e = &s->e[id];
    int64_t now = now_ms(s);
    int64_t after = e->slot_ms + 1 > now ? e->slot_ms + 1 : now;
    int64_t next = slot_at_or_after(e, after);
    e->slot_ms = next;
    if (retry_ms > 0 && now + retry_ms < next)
        e->slot_ms = next = now + retry_ms;
    e->due_ms = next;
    e->running = false;
    e->behind = false;
    s->inflight--;
    heap_push(s, id);
    if (s->timer && !s->firing) /* fire from the loop, never from inside a source */
        arm(s, s->e[s->heap[0]].due_ms, now);
}

int64_t coll_sched_phase_ms(const coll_sched *s, uint32_t id)
{
    return id < s->n ? s->e[id].phase_ms : -1;
}

int64_t coll_sched_due_ms(const coll_sched *s, uint32_t id)
{
    return id < s->n && !s->e[id].running ? s->e[id].due_ms : INT64_MAX;
}

uint32_t coll_sched_inflight(const coll_sched *s)
{
    return s->inflight;
}

uint32_t coll_sched_count(const coll_sched *s)
{
    return s->n;
}

void coll_sched_destroy(coll_sched *s)
{
    if (!s)
        return;
    if (s->timer)
        uv_close((uv_handle_t *)s->timer, on_timer_closed);
    free(s->e);
    free(s->heap);
    free(s);
}
