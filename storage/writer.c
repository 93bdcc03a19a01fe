/* writer.c: the one thread that writes. LMDB allows a single write transaction at a time, so
 * every write goes through a queue to this thread, which turns what it finds there into as
 * few transactions as it can:
 *
 * - group commit: consecutive small batches become one transaction holding their key/value
 *   operations, new catalog records and one write-ahead-log record with all their points;
 *   submitted batches wait up to the commit interval (storage_options.commit_interval_ms)
 *   for more to join them, unless a caller is blocked on one; after the commit the points
 *   enter the head and the callbacks run (status 0);
 * - direct write: a large storage_write batch (imports) is sorted by series and time and
 *   written straight into chunks, bypassing the log;
 * - checkpoint: the head's points are sealed into chunks, a slice of series per transaction,
 *   and the log is emptied with the last slice; sealing is most of the writer's work, so it
 *   waits for a quiet moment (few points committed lately, nothing queued) unless the head
 *   grows past a cap, and never holds up the acknowledgements of a top-of-hour burst that
 *   fits under the cap (the log makes those points durable; sealing can wait); at close
 *   the whole head is sealed;
 * - retention: whole chunks past their class's retention are deleted.
 *
 * Every transaction is built from memory that stays unchanged until it commits, so on
 * MDB_MAP_FULL the writer aborts, doubles the map and builds it again: a full map is never
 * an error the caller sees.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
} waiter;

static void waiter_init(waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = false;
    w->status = 0;
}

static void waiter_signal(void *arg, int status)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int waiter_wait(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    return w->status;
}

/* Runs the callback and releases the job. A borrowed batch belongs to a waiting caller who
 * may reuse it as soon as the callback has run, so it is not touched afterwards. */
static void job_done(storage_batch *b, int status)
{
    storage_commit_cb cb = b->cb;
    void *arg = b->arg;
    if (b->borrowed) {
        if (cb)
            cb(arg, status);
        return;
    }
    if (cb)
        cb(arg, status);
    storage_batch_destroy(b);
}

/* LMDB codes (MDB_* negatives and positive errno values) become storage codes; ours pass. */
static int norm(int rc)
{
    if (rc > 0 || (rc <= MDB_KEYEXIST && rc >= MDB_LAST_ERRCODE))
        return storage__lmdb_err(rc);
    return rc;
}

typedef int (*build_fn)(storage *st, MDB_txn *txn, void *ctx);
typedef void (*post_fn)(storage *st, void *ctx);

/* Builds and commits one transaction, growing the map and retrying on MDB_MAP_FULL. post
 * runs after a successful commit; when locked, commit and post run under head_mu so that
 * readers see the LMDB state and the head change together. */
static int run_txn(storage *st, build_fn build, post_fn post, void (*reset)(void *), void *ctx,
                   bool locked)
{
    for (;;) {
        uint64_t t0 = storage__now_us();
        MDB_txn *txn;
        int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        if (rc)
            return norm(rc);
        rc = build(st, txn, ctx);
        if (rc == 0) {
            if (locked)
                pthread_mutex_lock(&st->head_mu);
            rc = mdb_txn_commit(txn);
            if (rc == 0) {
                if (!locked)
                    pthread_mutex_lock(&st->head_mu);
                st->commits++;
                st->commit_us += storage__now_us() - t0;
                if (post)
                    post(st, ctx);
                pthread_mutex_unlock(&st->head_mu);
                return 0;
            }
            if (locked)
                pthread_mutex_unlock(&st->head_mu);
        } else {
            mdb_txn_abort(txn);
        }
        if (reset)
            reset(ctx);
        if (rc != MDB_MAP_FULL)
            return norm(rc);
        if ((rc = storage__grow_map(st)))
            return rc;
    }
}

/* ---- key/value operations */

static int kv_dbi(storage *st, const char *t, size_t tlen, MDB_dbi *dbi)
{
    char name[33];
    memcpy(name, t, tlen);
    name[tlen] = 0;
    int i = storage__kv_index(st, name);
    if (i < 0)
        return i;
    *dbi = st->kv_dbi[i];
    return 0;
}

static int check_job(storage *st, const storage_batch *b)
{
    uint32_t ns = storage_series_count(st);
    for (size_t i = 0; i < b->n; i++)
        if (b->pts[i].sid == 0 || b->pts[i].sid > ns)
            return -EINVAL;
    bool del;
    const char *t;
    const void *k, *v;
    size_t tl, kl, vl;
    MDB_dbi dbi;
    for (size_t off = 0; (off = storage__batch_kv_next(b, off, &del, &t, &tl, &k, &kl, &v, &vl));)
        if (kv_dbi(st, t, tl, &dbi))
            return -ENOENT;
    return 0;
}

static int apply_kv(storage *st, MDB_txn *txn, const storage_batch *b)
{
    bool del;
    const char *t;
    const void *k, *v;
    size_t tl, kl, vl;
    for (size_t off = 0; (off = storage__batch_kv_next(b, off, &del, &t, &tl, &k, &kl, &v, &vl));) {
        MDB_dbi dbi;
        int rc = kv_dbi(st, t, tl, &dbi);
        if (rc)
            return rc;
        MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
        rc = del ? mdb_del(txn, dbi, &key, NULL) : mdb_put(txn, dbi, &key, &val, 0);
        if (rc && !(del && rc == MDB_NOTFOUND))
            return rc;
    }
    return 0;
}

/* ---- ingest load, as the writer sees it */

/* Halves recent_points once per STORAGE_QUIET_HALF_US gone by. Writer thread only. */
static void load_decay(storage *st, uint64_t now)
{
    uint64_t halves = (now - st->recent_us) / STORAGE_QUIET_HALF_US;
    if (halves == 0)
        return;
    st->recent_points = halves >= 64 ? 0 : st->recent_points >> halves;
    st->recent_us = halves >= 64 ? now : st->recent_us + halves * STORAGE_QUIET_HALF_US;
}

static void load_note(storage *st, uint64_t npoints)
{
    load_decay(st, storage__now_us());
    st->recent_points += npoints;
}

/* ---- group commit */

/* Batches per group commit: a loop thread under load submits one small batch per loop
 * iteration, thousands per second, and every commit costs two disk flushes whatever its
 * size, so a backlog must fold into few commits. */
#define GROUP_MAX_JOBS 4096

typedef struct group {
    storage_batch **jobs;
    size_t n;
    uint32_t taken;
    uint64_t seq, npoints;
} group;

static int group_build(storage *st, MDB_txn *txn, void *ctx)
{
    group *g = ctx;
    int rc;
    for (size_t i = 0; i < g->n; i++)
        if ((rc = apply_kv(st, txn, g->jobs[i])))
            return rc;
    if ((rc = storage__wal_append(st, txn, g->jobs, g->n, &g->seq, &g->npoints)))
        return rc;
    return storage__catalog_flush(st, txn, &g->taken);
}

static void group_post(storage *st, void *ctx)
{
    group *g = ctx;
    if (g->npoints)
        st->wal_seq = g->seq;
    st->wal_points += g->npoints;
    for (size_t j = 0; j < g->n; j++) {
        const storage_batch *b = g->jobs[j];
        for (size_t i = 0; i < b->n; i++) { /* ENOMEM: the point stays in the log */
            const storage_bpoint *bp = &b->pts[i];
            storage__head_append(st, bp->sid, bp->ts, bp->mask, bp->flag, b->vals + bp->voff);
            storage__touch(st, bp->sid);
        }
    }
}

static void group_commit(storage *st, storage_batch **jobs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) { /* refuse invalid batches alone */
        int rc = check_job(st, jobs[i]);
        if (rc)
            job_done(jobs[i], rc);
        else
            jobs[k++] = jobs[i];
    }
    if (k == 0 && n > 0)
        return;
    group g = {jobs, k, 0, 0, 0};
    int rc = run_txn(st, group_build, group_post, NULL, &g, false);
    if (rc == 0) {
        storage__catalog_saved(st, g.taken);
        load_note(st, g.npoints);
    }
    for (size_t i = 0; i < k; i++)
        job_done(jobs[i], rc);
}

/* ---- checkpoint */

/* A checkpoint seals the head points of head_active[0..nseries) into chunks. Sealing all of
 * them also empties the log in the same transaction. Sealing some (a slice) leaves the log
 * as it is: its records still hold the sealed points, which a replay after a crash would put
 * back into the head, harmlessly (the same values at the same times, and the log's order
 * keeps the latest arrival last); the log is emptied by the slice that empties the head. */
typedef struct ckpt {
    storage_wctx w;
    uint32_t taken;
    uint32_t nseries;   /* how many of head_active this transaction seals */
    uint64_t npoints;   /* their head points */
    storage_point *pts; /* one series' head points */
    size_t cap;
} ckpt;

static int ckpt_build(storage *st, MDB_txn *txn, void *ctx)
{
    ckpt *c = ctx;
    int rc = storage__wctx_begin(&c->w, st, txn);
    for (uint32_t i = 0; rc == 0 && i < c->nseries; i++) {
        storage_sid sid = st->head_active[i];
        size_t n;
        rc = storage__head_series(st, sid, &c->pts, &c->cap, &n);
        if (rc == 0 && n > 0)
            rc = storage__write_series(&c->w, sid, c->pts, n);
    }
    if (rc == 0)
        rc = storage__wctx_finish(&c->w);
    if (rc == 0 && c->nseries == st->nactive)
        rc = mdb_drop(txn, st->dbi_wal, 0);
    if (rc == 0)
        rc = storage__catalog_flush(st, txn, &c->taken);
    return rc;
}

static void ckpt_post(storage *st, void *ctx)
{
    ckpt *c = ctx;
    storage__wctx_after_commit(&c->w);
    if (c->nseries == st->nactive) {
        storage__head_clear(st);
        st->wal_points = 0;
    } else {
        storage__head_forget(st, c->nseries);
        st->wal_points -= c->npoints < st->wal_points ? c->npoints : st->wal_points;
    }
    st->ckpt_gen++;
}

static void ckpt_reset(void *ctx)
{
    ckpt *c = ctx;
    storage__wctx_free(&c->w);
}

static int cmp_sid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Chunk keys are (window, series id): sealing series in id order writes each window's keys
 * in order, so that a transaction dirties each leaf page once, not once per series. Called
 * with head_mu held. */
static void sort_active(storage *st)
{
    qsort(st->head_active, st->nactive, sizeof *st->head_active, cmp_sid);
}

/* Seals the series at the front of head_active: all of them (max_points 0), or as many as
 * hold about max_points points. */
static int checkpoint(storage *st, uint64_t max_points)
{
    if (st->nactive == 0)
        return 0;
    ckpt c;
    memset(&c, 0, sizeof c);
    c.nseries = st->nactive;
    if (!max_points || !st->draining) {
        pthread_mutex_lock(&st->head_mu);
        sort_active(st);
        pthread_mutex_unlock(&st->head_mu);
    }
    if (max_points) {
        uint32_t k = 0;
        while (k < st->nactive && c.npoints < max_points)
            c.npoints += st->head[st->head_active[k++] - 1].n;
        c.nseries = k;
    }
    /* Not under head_mu while committing: until ckpt_post removes the sealed points from the
     * head, a reader sees them in the head (and perhaps in chunks too, where the head wins
     * with the same values), so nothing is hidden, and the loop thread's readers do not
     * wait for the commit's disk flushes. */
    int rc = run_txn(st, ckpt_build, ckpt_post, ckpt_reset, &c, false);
    if (rc == 0)
        storage__catalog_saved(st, c.taken);
    storage__wctx_free(&c.w);
    free(c.pts);
    return rc;
}

int storage__checkpoint(storage *st)
{
    return checkpoint(st, 0);
}

/* ---- direct write */

typedef struct direct {
    storage_batch *b;
    uint32_t s_lo, s_hi; /* the series this transaction writes */
    uint32_t *idx;      /* point indexes ordered by (sid, ts, batch order) */
    size_t *sid_start;  /* idx range of sid s: [sid_start[s], sid_start[s + 1]) */
    uint32_t nsid;
    storage_point *pts; /* scratch for one series */
    size_t pts_cap;
    storage_wctx w;
    uint32_t taken;
} direct;

static int cmp_ts(const void *a, const void *b, void *arg)
{
    const storage_bpoint *p = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (p[x].ts != p[y].ts)
        return p[x].ts < p[y].ts ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Counting sort by series, then each series by time (stable: a later duplicate wins). */
static int direct_sort(direct *d)
{
    storage_batch *b = d->b;
    d->nsid = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->pts[i].sid > d->nsid)
            d->nsid = b->pts[i].sid;
    d->idx = malloc(b->n * sizeof *d->idx);
    d->sid_start = calloc((size_t)d->nsid + 2, sizeof *d->sid_start);
    if (!d->idx || !d->sid_start)
        return -ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        d->sid_start[b->pts[i].sid + 1]++;
    for (uint32_t s = 1; s <= d->nsid + 1; s++)
        d->sid_start[s] += d->sid_start[s - 1];
    size_t *pos = malloc(((size_t)d->nsid + 1) * sizeof *pos);
    if (!pos)
        return -ENOMEM;
    memcpy(pos, d->sid_start, ((size_t)d->nsid + 1) * sizeof *pos);
    for (size_t i = 0; i < b->n; i++)
        d->idx[pos[b->pts[i].sid]++] = (uint32_t)i;
    free(pos);
    for (uint32_t s = 1; s <= d->nsid; s++) {
        uint32_t *a = d->idx + d->sid_start[s];
        size_t n = d->sid_start[s + 1] - d->sid_start[s];
        bool sorted = true;
        for (size_t i = 1; i < n && sorted; i++)
            sorted = b->pts[a[i - 1]].ts < b->pts[a[i]].ts;
        if (!sorted)
            qsort_r(a, n, sizeof *a, cmp_ts, b->pts);
    }
    return 0;
}

static int direct_build(storage *st, MDB_txn *txn, void *ctx)
{
    direct *d = ctx;
    storage_batch *b = d->b;
    storage__wctx_free(&d->w); /* what the previous range's transaction left */
    int rc = d->s_lo == 1 ? apply_kv(st, txn, b) : 0;
    if (rc == 0)
        rc = storage__wctx_begin(&d->w, st, txn);
    for (uint32_t s = d->s_lo; rc == 0 && s <= d->s_hi; s++) {
        const uint32_t *a = d->idx + d->sid_start[s];
        size_t n = d->sid_start[s + 1] - d->sid_start[s], k = 0;
        if (n == 0)
            continue;
        if (n > d->pts_cap) {
            free(d->pts);
            d->pts_cap = n;
            if (!(d->pts = malloc(n * sizeof *d->pts)))
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            if (k && d->pts[k - 1].ts == b->pts[a[i]].ts)
                k--; /* same timestamp: the later point replaces it */
            storage__batch_point(b, a[i], &d->pts[k++]);
        }
        rc = storage__write_series(&d->w, s, d->pts, k);
    }
    if (rc == 0)
        rc = storage__wctx_finish(&d->w);
    if (rc == 0)
        rc = storage__catalog_flush(st, txn, &d->taken);
    return rc;
}

static void direct_post(storage *st, void *ctx)
{
    direct *d = ctx;
    storage__wctx_after_commit(&d->w);
    st->ckpt_gen++; /* readers holding older snapshots must renew them */
    for (uint32_t s = d->s_lo; s <= d->s_hi; s++)
        if (d->sid_start[s + 1] > d->sid_start[s])
            storage__touch(st, s);
}

static void direct_reset(void *ctx)
{
    direct *d = ctx;
    storage__wctx_free(&d->w);
}

static void direct_write(storage *st, storage_batch *b)
{
    int rc = check_job(st, b);
    if (rc == 0)
        rc = storage__checkpoint(st); /* the head must not shadow the newer points */
    direct d;
    memset(&d, 0, sizeof d);
    d.b = b;
    if (rc == 0)
        rc = direct_sort(&d);
    /* One transaction, unless it would dirty more pages than LMDB allows (MDB_TXN_FULL,
     * ~512 MiB): then the series are split into ranges, each its own transaction. */
    uint32_t span = d.nsid;
    d.s_lo = 1;
    while (rc == 0 && d.s_lo <= d.nsid) {
        d.s_hi = d.nsid - d.s_lo < span ? d.nsid : d.s_lo + span - 1;
        rc = run_txn(st, direct_build, direct_post, direct_reset, &d, true);
        if (rc == -E2BIG && span > 1) {
            span /= 2;
            rc = 0;
            continue;
        }
        if (rc == 0) {
            storage__catalog_saved(st, d.taken);
            d.s_lo = d.s_hi + 1;
        }
    }
    storage__wctx_free(&d.w);
    free(d.idx);
    free(d.sid_start);
    free(d.pts);
    job_done(b, rc);
}

/* ---- retention */

typedef struct retain {
    int64_t now;
    int64_t keep[STORAGE_NIV];
    int64_t d_chunks, d_points;
} retain;

static int retain_build(storage *st, MDB_txn *txn, void *ctx)
{
    retain *r = ctx;
    r->d_chunks = r->d_points = 0;
    int64_t horizon = INT64_MIN; /* no window at or past this can be dropped */
    for (int iv = 0; iv < STORAGE_NIV; iv++)
        if (r->keep[iv] > 0 && r->now - r->keep[iv] > horizon)
            horizon = r->now - r->keep[iv];
    if (horizon == INT64_MIN)
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->dbi_chunks, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
        int64_t w;
        storage_sid sid;
        uint16_t part;
        if (k.mv_size != STORAGE_CHUNK_KEY_LEN) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        storage__chunk_key_parse(k.mv_data, &w, &sid, &part);
        if (w >= horizon)
            break;
        int iv = storage__series_iv(st, sid);
        if (iv >= 0 && r->keep[iv] > 0 && w + storage__window_len(iv) <= r->now - r->keep[iv]) {
            chunk_info info;
            if (chunk_info_read(v.mv_data, v.mv_size, &info) == 0)
                r->d_points -= info.npoints;
            r->d_chunks--;
            uint8_t key[STORAGE_CHUNK_KEY_LEN];
            memcpy(key, k.mv_data, sizeof key);
            if ((rc = mdb_cursor_del(cur, 0)))
                break;
            k.mv_size = sizeof key; /* seek again from the deleted key: its successor */
            k.mv_data = key;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            continue;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (r->d_chunks == 0)
        return 0;
    return storage__put_counts(st, txn, st->n_chunks + (uint64_t)r->d_chunks,
                               st->n_points + (uint64_t)r->d_points);
}

static void retain_post(storage *st, void *ctx)
{
    retain *r = ctx;
    st->n_chunks += (uint64_t)r->d_chunks;
    st->n_points += (uint64_t)r->d_points;
    st->ckpt_gen++;
    if (r->d_chunks != 0)
        storage__touch(st, 0);
}

static void retention(storage *st, storage_batch *job)
{
    retain r;
    memset(&r, 0, sizeof r);
    r.now = job->now;
    pthread_mutex_lock(&st->head_mu);
    memcpy(r.keep, st->retention, sizeof r.keep);
    pthread_mutex_unlock(&st->head_mu);
    int rc = run_txn(st, retain_build, retain_post, NULL, &r, true);
    job_done(job, rc == 0 ? (int)(-r.d_chunks > INT32_MAX ? INT32_MAX : -r.d_chunks) : rc);
}

/* ---- the thread */

/* A group of submitted batches may wait for more to join it (fewer, larger commits under
 * load) while none of them has a caller blocked on it and it has room. */
static bool group_may_wait(const storage *st, storage_batch *const *jobs, size_t n,
                           size_t npoints)
{
    if (n == 0 || n >= GROUP_MAX_JOBS || npoints >= STORAGE_GROUP_MAX_POINTS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->cb == waiter_signal) /* storage_write, storage_sync */
            return false;
    return true;
}

/* Waits on queue_cv (queue_mu held) for at most us microseconds. */
static void queue_wait_us(storage *st, uint64_t us)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
    uint64_t ns = (uint64_t)until.tv_nsec + us * 1000u;
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&st->queue_cv, &st->queue_mu, &until);
}

/* Waits until commit_interval after the group's first batch was queued for more batches;
 * returns them, or NULL when the time is up (or the store closes) with none queued. */
static storage_batch *wait_for_more(storage *st, const storage_batch *first)
{
    uint64_t deadline = first->queued_us + st->commit_interval_us;
    pthread_mutex_lock(&st->queue_mu);
    for (;;) {
        uint64_t now = storage__now_us();
        if (st->qhead || st->closing || now >= deadline)
            break;
        queue_wait_us(st, deadline - now);
    }
    storage_batch *list = st->qhead;
    st->qhead = st->qtail = NULL;
    pthread_mutex_unlock(&st->queue_mu);
    return list;
}

static void process(storage *st, storage_batch *list)
{
    storage_batch *jobs[GROUP_MAX_JOBS];
    size_t n = 0, npoints = 0;
again:
    while (list) {
        storage_batch *b = list;
        list = b->next;
        b->next = NULL;
        bool plain = b->kind == STORAGE_JOB_BATCH && !b->direct;
        if (plain && n < GROUP_MAX_JOBS && npoints < STORAGE_GROUP_MAX_POINTS) {
            jobs[n++] = b;
            npoints += b->n;
            continue;
        }
        if (n) {
            group_commit(st, jobs, n);
            n = npoints = 0;
        }
        if (plain) {
            jobs[n++] = b;
            npoints += b->n;
        } else if (b->kind == STORAGE_JOB_RETENTION) {
            retention(st, b);
        } else {
            direct_write(st, b);
        }
    }
    if (group_may_wait(st, jobs, n, npoints) && (list = wait_for_more(st, jobs[0])))
        goto again;
    if (n)
        group_commit(st, jobs, n);
}

enum { SEAL_NONE, SEAL_LATER, SEAL_NOW };

/* Whether to seal a slice of the head now. Sealing encodes chunks, most of the writer's
 * work: under load (batches queued, or many points committed lately, as at the top of the
 * hour) the writer commits and acknowledges first, and seals only a head past
 * head_load_points; once ingest is quiet it seals a head past head_quiet_points, and goes
 * on slice by slice (draining) until the head is empty, pausing whenever load returns.
 * A trickle of small commits (roll-ups, late records) is quiet: it would otherwise keep the
 * head unsealed for as long as it lasts. SEAL_LATER: a seal is wanted once it is quiet.
 * queued: whether batches wait in the queue. Writer thread only. */
static int seal_due(storage *st, bool queued)
{
    if (st->nactive == 0) {
        st->draining = false;
        return SEAL_NONE;
    }
    uint64_t now = storage__now_us();
    if (now < st->seal_retry_us)
        return SEAL_LATER; /* the last seal failed: not again at once */
    if (st->head_points >= st->head_load_points || st->head_npts >= STORAGE_HEAD_HARD_POINTS)
        return SEAL_NOW;
    if (!st->draining && st->head_points < st->head_quiet_points)
        return SEAL_NONE;
    if (queued)
        return SEAL_LATER;
    load_decay(st, now);
    return st->recent_points < STORAGE_QUIET_POINTS ? SEAL_NOW : SEAL_LATER;
}

/* Seals one slice of the head (the whole head at its hard limit). */
static void seal_slice(storage *st)
{
    bool quiet = st->head_points < st->head_load_points;
    /* Sealing the whole head in one transaction would hold up every commit queued behind
     * it for seconds (a national fleet's head holds millions of points): it is drained in
     * slices; only a head at its hard limit is sealed at once. */
    int rc = checkpoint(st, st->head_npts >= STORAGE_HEAD_HARD_POINTS ? 0 : STORAGE_SLICE_POINTS);
    pthread_mutex_lock(&st->head_mu); /* tests read these */
    if (quiet)
        st->quiet_seals++;
    else
        st->load_seals++;
    st->draining = rc == 0 && st->nactive > 0; /* on failure the log still holds the points */
    pthread_mutex_unlock(&st->head_mu);
    if (rc != 0)
        st->seal_retry_us = storage__now_us() + STORAGE_SEAL_RETRY_US;
    if (!st->draining) {
        int dead;
        mdb_reader_check(st->env, &dead); /* slots of reader processes that died */
    }
}

static void *writer_main(void *arg)
{
    storage *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->queue_mu);
        for (;;) {
            if (st->qhead || st->closing)
                break;
            int due = seal_due(st, false);
            if (due == SEAL_NOW)
                break;
            if (due == SEAL_NONE)
                pthread_cond_wait(&st->queue_cv, &st->queue_mu);
            else
                queue_wait_us(st, STORAGE_QUIET_HALF_US / 2); /* until it may be quiet */
        }
        storage_batch *list = st->qhead;
        st->qhead = st->qtail = NULL;
        bool closing = st->closing;
        pthread_mutex_unlock(&st->queue_mu);
        if (list)
            process(st, list);
        else if (closing)
            break;
        pthread_mutex_lock(&st->queue_mu);
        bool queued = st->qhead != NULL;
        pthread_mutex_unlock(&st->queue_mu);
        if (seal_due(st, queued) == SEAL_NOW)
            seal_slice(st);
    }
    if (!st->test_no_seal)
        storage__checkpoint(st);
    pthread_rwlock_rdlock(&st->cat_lock);
    bool dirty = st->ndirty > 0;
    pthread_rwlock_unlock(&st->cat_lock);
    if (dirty)
        group_commit(st, NULL, 0); /* catalog changes made since the last commit */
    return NULL;
}

int storage__writer_start(storage *st)
{
    int rc = pthread_create(&st->writer, NULL, writer_main, st);
    if (rc)
        return -rc;
    st->writer_started = true;
    return 0;
}

void storage__writer_stop(storage *st)
{
    pthread_mutex_lock(&st->queue_mu);
    st->closing = true;
    pthread_cond_signal(&st->queue_cv);
    pthread_mutex_unlock(&st->queue_mu);
    pthread_join(st->writer, NULL);
    st->writer_started = false;
}

int storage__enqueue(storage *st, storage_batch *b)
{
    b->next = NULL;
    b->queued_us = storage__now_us();
    pthread_mutex_lock(&st->queue_mu);
    if (st->closing) {
        pthread_mutex_unlock(&st->queue_mu);
        return STORAGE_ECLOSED;
    }
    if (st->qtail)
        st->qtail->next = b;
    else
        st->qhead = b;
    st->qtail = b;
    pthread_cond_signal(&st->queue_cv);
    pthread_mutex_unlock(&st->queue_mu);
    return 0;
}

/* ---- public entry points */

int storage_submit(storage *st, storage_batch *b, storage_commit_cb cb, void *arg)
{
    if (st->read_only) {
        storage_batch_destroy(b);
        return -EROFS;
    }
    b->cb = cb;
    b->arg = arg;
    b->borrowed = false;
    b->direct = false;
    b->kind = STORAGE_JOB_BATCH;
    int rc = storage__enqueue(st, b);
    if (rc)
        storage_batch_destroy(b);
    return rc;
}

static int write_wait(storage *st, storage_batch *b, bool into_chunks)
{
    if (st->read_only)
        return -EROFS;
    waiter w;
    waiter_init(&w);
    b->cb = waiter_signal;
    b->arg = &w;
    b->borrowed = true;
    b->direct = into_chunks;
    b->kind = STORAGE_JOB_BATCH;
    int rc = storage__enqueue(st, b);
    if (rc == 0)
        rc = waiter_wait(&w);
    else
        waiter_signal(&w, rc), waiter_wait(&w);
    storage_batch_clear(b);
    return rc;
}

int storage_write(storage *st, storage_batch *b)
{
    return write_wait(st, b, b->n >= STORAGE_DIRECT_MIN);
}

int storage_write_direct(storage *st, storage_batch *b)
{
    return write_wait(st, b, b->n > 0);
}

static int run_job(storage *st, int kind, int64_t now)
{
    storage_batch *b = storage_batch_create();
    if (!b)
        return -ENOMEM;
    waiter w;
    waiter_init(&w);
    b->cb = waiter_signal;
    b->arg = &w;
    b->kind = kind;
    b->now = now;
    int rc = storage__enqueue(st, b);
    if (rc) {
        storage_batch_destroy(b);
        waiter_signal(&w, rc);
    }
    return waiter_wait(&w);
}

int storage_sync(storage *st)
{
    if (st->read_only)
        return 0;
    return run_job(st, STORAGE_JOB_BATCH, 0);
}

int storage_retention_run(storage *st, int64_t now)
{
    if (st->read_only)
        return -EROFS;
    return run_job(st, STORAGE_JOB_RETENTION, now);
}
