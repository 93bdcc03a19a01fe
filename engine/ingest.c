/* ingest.c: the path from a reading to an acknowledgement. Collectors hand uploads (one
 * device's values for one period) to engine_ingest on the loop thread; everything accepted
 * in one loop iteration is coalesced into one storage batch (fewer, larger group commits),
 * submitted to the storage writer thread, and each upload's acknowledgement callback runs
 * back on the loop thread only after the commit that holds it is durable. That ordering is
 * the contract HJ 212 needs: a device gets its 9014 answer only for committed data. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine_int.h"
#include "strmap.h"
#include "live.h"

/* Flush before a loop iteration ends once this many points are waiting. */
#define FLUSH_POINTS 65536

typedef struct ack {
    engine_ack_fn fn;
    void *arg;
} ack;

/* The series ids of one device's values, so that an upload costs one hash lookup of its MN
 * instead of one catalog lookup per value (a key to format and hash, and a lock shared with
 * the writer thread). Series ids never change, so entries never go stale. Loop thread only. */
#define DEV_CODE_LEN 15

typedef struct dev_sid {
    char code[DEV_CODE_LEN]; /* NUL-padded; longer codes are not cached */
    uint8_t iv;
    storage_sid sid;
} dev_sid;

typedef struct dev_sids {
    uint32_t n, cap;
    dev_sid s[];
} dev_sids;

/* One submitted batch's acknowledgements, owned by the writer callback until it is queued
 * on the done list, then by the loop thread. */
typedef struct commit {
    struct commit *next;
    engine *e;
    int status;
    size_t nacks;
    ack acks[];
} commit;

struct engine {
    storage *st;              /* borrowed */
    uv_loop_t *loop;          /* borrowed */
    uv_check_t flush_check;   /* flushes the batch at the end of each loop iteration */
    uv_async_t done_async;    /* woken by the writer thread after a commit */
    storage_batch *batch;     /* what this iteration accepted; owned */
    ack *acks;                /* their acknowledgements; owned */
    size_t nacks, cap_acks;
    pthread_mutex_t done_lock; /* guards done_head/done_tail */
    commit *done_head, *done_tail;
    int closing_handles;
    const engine_registry *registry; /* borrowed */
    engine_alerts *alerts;           /* borrowed */
    judge *judge;                    /* owned */
    strmap *devs;                    /* MN -> dev_sids, owned */
    live *live;                      /* owned: live roll-ups and findings (rollup_live.c) */
    engine_stats stats;
};

const char *const engine_kv_tables[] = {
    "events", "registry", "outbox", "episodes", "subscriptions", "sources", LIVE_STATE_TABLE,
    NULL,
};

static void flush(engine *e);

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

/* Writer thread: queue the finished commit for the loop thread. */
static void on_commit(void *arg, int status)
{
    commit *c = arg;
    engine *e = c->e;
    c->status = status;
    pthread_mutex_lock(&e->done_lock);
    if (e->done_tail)
        e->done_tail->next = c;
    else
        e->done_head = c;
    e->done_tail = c;
    pthread_mutex_unlock(&e->done_lock);
    uv_async_send(&e->done_async);
}

static void on_done(uv_async_t *h)
{
    engine *e = h->data;
    pthread_mutex_lock(&e->done_lock);
    commit *c = e->done_head;
    e->done_head = e->done_tail = NULL;
    pthread_mutex_unlock(&e->done_lock);
    while (c) {
        commit *next = c->next;
        if (c->status == 0)
            e->stats.uploads_committed += c->nacks;
        else
            e->stats.uploads_failed += c->nacks;
        e->stats.commits_pending--;
        for (size_t i = 0; i < c->nacks; i++)
            if (c->acks[i].fn)
                c->acks[i].fn(c->acks[i].arg, c->status);
        free(c);
        c = next;
    }
}

static void flush(engine *e)
{
    judge_end_batch(e->judge); /* a reader must not outlive the loop iteration */
    if (e->nacks == 0 && storage_batch_points(e->batch) == 0)
        return;
    commit *c = malloc(sizeof *c + e->nacks * sizeof(ack));
    storage_batch *next = storage_batch_create();
    if (!c || !next) {
        /* Out of memory: fail these uploads rather than acknowledge what is not stored. */
        free(c);
        storage_batch_destroy(next);
        for (size_t i = 0; i < e->nacks; i++)
            if (e->acks[i].fn)
                e->acks[i].fn(e->acks[i].arg, -ENOMEM);
        storage_batch_clear(e->batch);
        e->nacks = 0;
        return;
    }
    c->next = NULL;
    c->e = e;
    c->status = 0;
    c->nacks = e->nacks;
    memcpy(c->acks, e->acks, e->nacks * sizeof(ack));
    e->nacks = 0;
    storage_batch *b = e->batch;
    e->batch = next;
    e->stats.commits_pending++;
    int rc = storage_submit(e->st, b, on_commit, c);
    if (rc != 0) /* the store is closing: the batch is gone, the callback will not run */
        on_commit(c, rc);
}

static void add_ack(void *arg, engine_ack_fn fn, void *ack_arg);

/* What live work needs from the engine now: the batch being built (live.h). */
static void live_ctx(void *arg, judge_ctx *out)
{
    engine *e = arg;
    *out = (judge_ctx){.reg = e->registry, .alerts = e->alerts, .st = e->st,
                       .batch = e->batch, .add_ack = add_ack, .add_ack_arg = e};
}

int engine_create(const engine_options *opts, engine **out)
{
    engine *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->st = opts->st;
    e->loop = opts->loop;
    e->batch = storage_batch_create();
    if (!e->batch) {
        free(e);
        return -ENOMEM;
    }
    if (judge_create(&e->judge) != 0 || strmap_create(&e->devs) != 0) {
        judge_destroy(e->judge);
        storage_batch_destroy(e->batch);
        free(e);
        return -ENOMEM;
    }
    if (live_create(opts->loop, opts->live, live_ctx, e, &e->live) != 0) {
        strmap_destroy(e->devs, free);
        judge_destroy(e->judge);
        storage_batch_destroy(e->batch);
        free(e);
        return -ENOMEM;
    }
    pthread_mutex_init(&e->done_lock, NULL);
    uv_check_init(e->loop, &e->flush_check);
    e->flush_check.data = e;
    uv_check_start(&e->flush_check, on_check);
    uv_unref((uv_handle_t *)&e->flush_check);
    uv_async_init(e->loop, &e->done_async, on_done);
    e->done_async.data = e;
    *out = e;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    engine *e = h->data;
    if (--e->closing_handles > 0)
        return;
    storage_batch_destroy(e->batch);
    judge_destroy(e->judge);
    strmap_destroy(e->devs, free);
    free(e->acks);
    pthread_mutex_destroy(&e->done_lock);
    free(e);
}

void engine_close(engine *e)
{
    if (!e)
        return;
    flush(e);
    /* Deliver what is committed; the store's close waits for the rest, whose callbacks
     * then find no loop handle to wake: close the store before running the loop again. */
    storage_sync(e->st);
    on_done(&e->done_async);
    live_close(e->live);
    e->closing_handles = 2;
    uv_close((uv_handle_t *)&e->flush_check, on_handle_closed);
    uv_close((uv_handle_t *)&e->done_async, on_handle_closed);
}

static int reserve_ack(engine *e)
{
    if (e->nacks < e->cap_acks)
        return 0;
    size_t cap = e->cap_acks ? e->cap_acks * 2 : 256;
    ack *a = realloc(e->acks, cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    e->acks = a;
    e->cap_acks = cap;
    return 0;
}

/* Adds an acknowledgement to the batch being built (judge.c adds alert tickets). */
static void add_ack(void *arg, engine_ack_fn fn, void *ack_arg)
{
    engine *e = arg;
    if (reserve_ack(e) != 0) {
        fn(ack_arg, -ENOMEM); /* the ticket must be released; nothing was sent */
        return;
    }
    e->acks[e->nacks++] = (ack){fn, ack_arg};
}

void engine_set_registry(engine *e, const engine_registry *reg)
{
    e->registry = reg;
}

void engine_set_alerts(engine *e, engine_alerts *alerts)
{
    e->alerts = alerts;
}

int engine_series_key(const char *mn, const char *code, int interval, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:%s", mn, code, storage_interval_name(interval));
    return n < 0 || (size_t)n >= len ? -ERANGE : n;
}

/* The series id of (mn, code, interval), created on first sight: 0 or a negative code. */
static int series_of(engine *e, const char *mn, dev_sids **devp, const char *code, int iv,
                     storage_sid *sid)
{
    dev_sids *d = *devp;
    char padded[DEV_CODE_LEN];
    size_t clen = strlen(code);
    bool cacheable = clen < DEV_CODE_LEN;
    if (cacheable) {
        memset(padded, 0, sizeof padded);
        memcpy(padded, code, clen);
        for (uint32_t i = 0; d && i < d->n; i++)
            if (d->s[i].iv == iv && memcmp(d->s[i].code, padded, DEV_CODE_LEN) == 0) {
                *sid = d->s[i].sid;
                return 0;
            }
    }
    char key[256];
    int rc = engine_series_key(mn, code, iv, key, sizeof key);
    if (rc < 0 || (rc = storage_series_ensure(e->st, key, iv, sid)) != 0)
        return rc;
    if (!cacheable)
        return 0;
    if (!d || d->n == d->cap) {
        uint32_t cap = d ? d->cap * 2 : 8;
        dev_sids *g = realloc(d, sizeof *g + cap * sizeof g->s[0]);
        if (!g)
            return 0; /* not cached: found again through the catalog next time */
        if (!d)
            g->n = 0;
        g->cap = cap;
        if (strmap_put(e->devs, mn, g, NULL) != 0) { /* only a new key can fail */
            free(g);
            return 0;
        }
        *devp = d = g;
    }
    memcpy(d->s[d->n].code, padded, DEV_CODE_LEN);
    d->s[d->n].iv = (uint8_t)iv;
    d->s[d->n].sid = *sid;
    d->n++;
    return 0;
}

int engine_ingest(engine *e, const engine_upload *u, engine_ack_fn fn, void *arg)
{
    if (!u->mn || !*u->mn || u->interval < 0 || u->interval >= STORAGE_NIV)
        return -EINVAL;
    if (reserve_ack(e) != 0)
        return -ENOMEM;
    dev_sids *dev = strmap_get(e->devs, u->mn);
    for (size_t i = 0; i < u->nvalues; i++) {
        const engine_value *v = &u->values[i];
        storage_sid sid;
        if (v->pt.mask == 0)
            continue;
        if (series_of(e, u->mn, &dev, v->code, u->interval, &sid) != 0) {
            e->stats.values_rejected++;
            continue;
        }
        storage_point p = v->pt;
        p.ts = u->ts;
        if (storage_batch_add(e->batch, sid, &p) == 0)
            e->stats.points++;
        else
            e->stats.values_rejected++;
    }
    e->acks[e->nacks++] = (ack){fn, arg};
    e->stats.uploads++;
    if (e->registry) {
        judge_ctx jc = {.reg = e->registry, .alerts = e->alerts, .st = e->st,
                        .batch = e->batch, .add_ack = add_ack, .add_ack_arg = e};
        judge_upload(e->judge, &jc, u);
    }
    judge_ctx lc;
    live_ctx(e, &lc);
    live_upload(e->live, &lc, u);
    if (storage_batch_points(e->batch) >= FLUSH_POINTS)
        flush(e);
    return 0;
}

int engine_ingest_event(engine *e, const char *mn, int cn, int64_t ts, const char *text,
                        engine_ack_fn fn, void *arg)
{
    /* Key: MN, NUL, big-endian time and a sequence number, so a device's events sort in
     * time and two events of one second do not overwrite each other. */
    uint8_t key[128];
    size_t mlen = strlen(mn);
    if (mlen == 0 || mlen + 1 + 12 > sizeof key)
        return -EINVAL;
    memcpy(key, mn, mlen + 1);
    uint64_t t = (uint64_t)ts ^ (1ull << 63);
    for (int i = 0; i < 8; i++)
        key[mlen + 1 + i] = (uint8_t)(t >> (56 - 8 * i));
    uint32_t seq = (uint32_t)e->stats.events++;
    for (int i = 0; i < 4; i++)
        key[mlen + 9 + i] = (uint8_t)(seq >> (24 - 8 * i));
    char val[4096];
    int n = snprintf(val, sizeof val, "CN=%d;%s", cn, text ? text : "");
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof val)
        n = sizeof val - 1;
    if (reserve_ack(e) != 0)
        return -ENOMEM;
    int rc = storage_batch_kv_put(e->batch, "events", key, mlen + 13, val, (size_t)n);
    if (rc != 0)
        return rc;
    e->acks[e->nacks++] = (ack){fn, arg};
    return 0;
}

void engine_get_stats(const engine *e, engine_stats *out)
{
    *out = e->stats;
    judge_get_stats(e->judge, &out->judge);
    live_get_stats(e->live, &out->live);
}
