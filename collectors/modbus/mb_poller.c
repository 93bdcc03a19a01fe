/* mb_poller.c: the loop side of the Modbus poller. It reserves the low fds, starts one
 * thread per endpoint (mb_link.c), and takes their reads on the loop thread (woken by
 * uv_async_send): values become real-time points MN:code:rtd through engine_ingest and, when
 * asked, minutes through the engine's rtd roll-up. Every device's state (up, down,
 * misconfigured; since when; the last error; counts) is data: one JSON record per device in
 * the store's "sources" table, written when the state changes and refreshed every minute,
 * and a state change is logged once, not every failed read.
 *
 * Links come and go with reloads (mb_reload.c): each is allocated on its own, holds a
 * reference to the configuration its endpoint lives in, and is freed on the loop when its
 * thread's last message arrives, giving its reserved fd back for the next link. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_int.h"

#define FLUSH_EVERY_MS (60 * 1000)
#define FD_LIMIT 1024 /* select()'s FD_SETSIZE in libmodbus 3.1.6 */

const char *mb_state_name(int s)
{
    switch (s) {
    case MB_STATE_UP: return "up";
    case MB_STATE_DOWN: return "down";
    case MB_STATE_MISCONFIGURED: return "misconfigured";
    default: return "unknown";
    }
}

void mb_poller_post(mb_poller *p, mb_msg *m)
{
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    pthread_mutex_unlock(&p->lock);
    uv_async_send(&p->async);
}

/* Writes s with '"' and '\\' and control bytes replaced, so the record stays JSON. */
static void safe_copy(char *dst, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        dst[k++] = (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) ? '\'' : *s;
    dst[k] = 0;
}

/* ,"key":"ISO 8601 UTC" when t is set; nothing when it is not. */
static void put_time(char *buf, size_t cap, size_t *o, const char *key, int64_t t)
{
    char tb[32];
    if (!t || *o >= cap)
        return;
    engine_time_format(t, 0, tb, sizeof tb);
    int n = snprintf(buf + *o, cap - *o, ",\"%s\":\"%s\"", key, tb);
    if (n > 0)
        *o += (size_t)n;
}

void mb_poller_put_state(storage_batch *b, mb_devstate *s)
{
    char key[64], val[768], err[160], gw[64];
    int klen = snprintf(key, sizeof key, "modbus:%s", s->dev->mn);
    safe_copy(err, sizeof err, s->last_error);
    safe_copy(gw, sizeof gw, s->ep->name);
    int n = snprintf(val, sizeof val,
                     "{\"kind\":\"modbus\",\"mn\":\"%s\",\"gateway\":\"%s\",\"unit\":%d,"
                     "\"state\":\"%s\",\"polls\":%llu,\"failures\":%llu,"
                     "\"consecutive_failures\":%llu,\"last_error\":\"%s\"",
                     s->dev->mn, gw, s->dev->unit_id, mb_state_name(s->state),
                     (unsigned long long)s->polls, (unsigned long long)s->failures,
                     (unsigned long long)s->consecutive, err);
    if (n < 0 || (size_t)n >= sizeof val)
        return;
    size_t o = (size_t)n;
    put_time(val, sizeof val, &o, "since", s->since);
    put_time(val, sizeof val, &o, "last_success", s->last_ok);
    put_time(val, sizeof val, &o, "last_error_at", s->last_error_at);
    if (o + 2 > sizeof val)
        return;
    val[o++] = '}';
    storage_batch_kv_put(b, MB_STATE_TABLE, key, (size_t)klen, val, o);
    s->dirty = false;
}

static void submit(mb_poller *p, storage_batch *b)
{
    if (!b)
        return;
    if (storage_submit(p->st, b, NULL, NULL) != 0)
        return; /* the store is closing; the batch is gone */
}

static void log_change(const mb_devstate *s, int old)
{
    char unit[16];
    snprintf(unit, sizeof unit, "%d", s->dev->unit_id);
    engine_log_kv(s->state == MB_STATE_UP ? ENGINE_LOG_INFO : ENGINE_LOG_WARN,
                  "modbus device state", "mn", s->dev->mn, "gateway", s->ep->name, "unit", unit,
                  "state", mb_state_name(s->state), "was", mb_state_name(old), "error",
                  s->state == MB_STATE_UP ? "" : s->last_error, NULL);
}

static void link_exited(mb_poller *p, mb_link *L);

static void take(mb_poller *p, mb_msg *m, storage_batch **batch)
{
    if (m->exited) {
        submit(p, *batch); /* its states first: a reload may delete some records now */
        *batch = NULL;
        link_exited(p, m->link);
        return;
    }
    mb_devstate *s = &m->link->states[m->dev];
    s->polls++;
    s->dirty = true;
    if (m->ok) {
        s->last_ok = m->ts;
        s->consecutive = 0;
    } else {
        s->failures++;
        s->consecutive++;
        s->last_error_at = m->ts;
        snprintf(s->last_error, sizeof s->last_error, "%s", m->error);
    }
    if (m->nvalues > 0) {
        engine_upload u = {.mn = s->dev->mn, .interval = STORAGE_IV_RTD, .ts = m->ts,
                           .values = m->values, .nvalues = m->nvalues};
        if (engine_ingest(p->e, &u, NULL, NULL) == 0) {
            p->uploads++;
            if (p->rollup)
                engine_rtd_rollup_add(p->rollup, &u);
        } else {
            p->ingest_errors++;
        }
    }
    if (m->state != s->state) {
        int old = s->state;
        s->state = m->state;
        s->since = m->ts;
        log_change(s, old);
        if (!*batch)
            *batch = storage_batch_create();
        if (*batch)
            mb_poller_put_state(*batch, s);
    }
}

static void drain(mb_poller *p)
{
    pthread_mutex_lock(&p->lock);
    mb_msg *m = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    storage_batch *b = NULL;
    while (m) {
        mb_msg *next = m->next;
        take(p, m, &b);
        free(m);
        m = next;
    }
    submit(p, b);
}

static void on_async(uv_async_t *h)
{
    drain(h->data);
}

/* Refreshes the records of devices read since their last write (counts, last_ok). */
static void flush_states(mb_poller *p)
{
    storage_batch *b = storage_batch_create();
    if (!b)
        return;
    for (mb_link *L = p->links; L; L = L->next)
        for (size_t i = 0; i < L->ep->ndevices; i++)
            if (L->states[i].dirty)
                mb_poller_put_state(b, &L->states[i]);
    submit(p, b);
}

static void on_flush(uv_timer_t *t)
{
    flush_states(t->data);
}

/* A /dev/null placeholder on the lowest free number, or -EMFILE when that is >= FD_LIMIT. */
static int new_slot(mb_poller *p)
{
    int fd = fcntl(p->devnull_fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    if (fd >= FD_LIMIT) {
        close(fd);
        return -EMFILE;
    }
    return fd;
}

void mb_poller_slot_give(mb_poller *p, int fd)
{
    if (fd < 0)
        return;
    if (p->nspare == p->capspare) {
        size_t cap = p->capspare ? p->capspare * 2 : 16;
        int *v = realloc(p->spare, cap * sizeof *v);
        if (!v) {
            close(fd);
            return;
        }
        p->spare = v;
        p->capspare = cap;
    }
    p->spare[p->nspare++] = fd;
}

int mb_poller_slot_take(mb_poller *p)
{
    if (p->nspare > 0)
        return p->spare[--p->nspare];
    return new_slot(p); /* the spares are used up: the lowest free number may still do */
}

/* One placeholder per endpoint and MB_SPARE_FDS more, on the lowest free numbers, taken
 * before the process opens its many other sockets; -EMFILE when the endpoints' do not fit
 * below FD_LIMIT (spares that do not are simply not kept). */
static int reserve_fds(mb_poller *p, size_t nendpoints)
{
    p->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (p->devnull_fd < 0)
        return -errno;
    for (size_t i = 0; i < nendpoints + MB_SPARE_FDS; i++) {
        int fd = new_slot(p);
        if (fd < 0 && i < nendpoints)
            return fd;
        if (fd < 0)
            break;
        mb_poller_slot_give(p, fd);
    }
    /* The lowest numbers first: links take from the end. */
    for (size_t i = 0, j = p->nspare; i < j / 2; i++) {
        int t = p->spare[i];
        p->spare[i] = p->spare[j - 1 - i];
        p->spare[j - 1 - i] = t;
    }
    return p->nspare >= nendpoints ? 0 : -ENOMEM;
}

void mb_gen_unref(mb_gen *g)
{
    if (g && --g->refs == 0) {
        mb_config_free(g->owned);
        free(g);
    }
}

static int carry_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const mb_carry *)elem)->mn);
}

mb_link *mb_poller_link_start(mb_poller *p, mb_gen *gen, const mb_endpoint *ep, int slot_fd,
                              const mb_carry *carry, size_t ncarry)
{
    mb_link *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->p = p;
    L->gen = gen;
    gen->refs++;
    L->ep = ep;
    L->slot_fd = slot_fd;
    p->seed += 0x632be59bd9b4e019ull;
    L->rng = p->seed;
    L->states = calloc(ep->ndevices ? ep->ndevices : 1, sizeof *L->states);
    int rc = L->states ? mb_link_init(L) : -ENOMEM;
    for (size_t d = 0; rc == 0 && d < ep->ndevices; d++) {
        const mb_carry *c = ncarry ? bsearch(ep->devices[d].mn, carry, ncarry, sizeof *carry,
                                             carry_cmp)
                                   : NULL;
        if (c)
            L->states[d] = c->s; /* the device keeps its state and counts across a reload */
        L->states[d].dev = &ep->devices[d];
        L->states[d].ep = ep;
    }
    if (rc == 0 && pthread_create(&L->thread, NULL, mb_link_main, L) != 0)
        rc = -EAGAIN;
    if (rc != 0) {
        mb_link_free(L);
        free(L->states);
        mb_gen_unref(gen);
        free(L);
        return NULL;
    }
    L->started = true;
    L->next = p->links;
    p->links = L;
    return L;
}

void mb_poller_link_quit(mb_poller *p, mb_link *L)
{
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&L->quit, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    L->retiring = true;
}

static void add_counters(mb_counters *to, const mb_counters *c)
{
    to->polls += c->polls;
    to->polls_ok += c->polls_ok;
    to->requests += c->requests;
    to->request_errors += c->request_errors;
    to->timeouts += c->timeouts;
    to->exceptions += c->exceptions;
    to->config_errors += c->config_errors;
    to->connects += c->connects;
    to->connect_failures += c->connect_failures;
    to->disconnects += c->disconnects;
    to->values += c->values;
    to->values_bad += c->values_bad;
    to->skipped += c->skipped;
    to->late_cycles += c->late_cycles;
    for (int k = 0; k < MB_HIST_N; k++)
        to->hist[k] += c->hist[k];
}

/* Frees a link whose thread has been joined (or never ran): its counters stay in the
 * totals, its reserved fd goes back to the spares. */
static void link_free(mb_poller *p, mb_link *L)
{
    for (mb_link **pp = &p->links; *pp; pp = &(*pp)->next)
        if (*pp == L) {
            *pp = L->next;
            break;
        }
    add_counters(&p->gone, &L->c);
    mb_poller_slot_give(p, L->slot_fd);
    mb_link_free(L);
    free(L->states);
    mb_gen_unref(L->gen);
    free(L);
}

/* A link's thread posted its last message: every read it made has been taken. Its devices'
 * final states are written, unless a reload carries them on to the link replacing it. */
static void link_exited(mb_poller *p, mb_link *L)
{
    if (!L->joined)
        pthread_join(L->thread, NULL);
    L->joined = true;
    bool swap = L->retiring && p->pending;
    if (swap)
        mb_reload_link_stopped(p, L);
    if (!swap || p->stopping) {
        storage_batch *b = storage_batch_create();
        for (size_t i = 0; b && i < L->ep->ndevices; i++)
            mb_poller_put_state(b, &L->states[i]);
        submit(p, b);
    }
    link_free(p, L);
    if (swap)
        mb_reload_try_complete(p);
}

static void free_poller(mb_poller *p)
{
    while (p->links)
        link_free(p, p->links);
    for (size_t i = 0; i < p->nspare; i++)
        close(p->spare[i]);
    free(p->spare);
    if (p->devnull_fd >= 0)
        close(p->devnull_fd);
    mb_gen_unref(p->cur);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

static void stop_threads(mb_poller *p)
{
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (mb_link *L = p->links; L; L = L->next)
        if (L->started && !L->joined) {
            pthread_join(L->thread, NULL);
            L->joined = true;
        }
}

int mb_poller_start(uv_loop_t *loop, engine *e, const mb_poller_options *o, mb_poller **out)
{
    mb_poller *p = calloc(1, sizeof *p);
    mb_gen *g = calloc(1, sizeof *g);
    if (!p || !g) {
        free(p);
        free(g);
        return -ENOMEM;
    }
    p->loop = loop;
    p->e = e;
    p->st = o->st;
    g->cfg = o->config;
    g->refs = 1;
    p->cur = g;
    p->devnull_fd = -1;
    p->seed = o->seed ? o->seed : (uint64_t)mb_mono_ms() * 0x9e3779b97f4a7c15ull;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = reserve_fds(p, g->cfg->nendpoints);
    if (rc == 0 && o->rollup_minutes)
        rc = engine_rtd_rollup_create(e, loop, 0, &p->rollup);
    if (rc != 0) {
        free_poller(p);
        return rc;
    }
    uv_async_init(loop, &p->async, on_async);
    p->async.data = p;
    uv_timer_init(loop, &p->flush_timer);
    p->flush_timer.data = p;
    uv_timer_start(&p->flush_timer, on_flush, FLUSH_EVERY_MS, FLUSH_EVERY_MS);
    uv_unref((uv_handle_t *)&p->flush_timer);
    /* The async handle is ready before any thread may post. */
    for (size_t i = 0; i < g->cfg->nendpoints; i++) {
        int slot = mb_poller_slot_take(p);
        if (!mb_poller_link_start(p, g, &g->cfg->endpoints[i], slot, NULL, 0)) {
            mb_poller_slot_give(p, slot);
            mb_poller_close(p);
            return -ENOMEM;
        }
    }
    *out = p;
    return 0;
}

/* The middle of bucket k, in ms. */
static double bucket_ms(int k)
{
    return k < MB_HIST_FINE ? (k + 0.5) * 0.1 : 100.0 + (k - MB_HIST_FINE + 0.5) * 10.0;
}

static double hist_quantile(const uint64_t *h, uint64_t total, double q)
{
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (int k = 0; k < MB_HIST_N; k++) {
        seen += h[k];
        if (seen > want)
            return bucket_ms(k);
    }
    return bucket_ms(MB_HIST_N - 1);
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void mb_poller_get_stats(mb_poller *p, mb_poller_stats *s)
{
    memset(s, 0, sizeof *s);
    uint64_t *h = calloc(MB_HIST_N, sizeof *h), total = 0;
    for (mb_link *L = p->links; L; L = L->next) {
        if (L->retiring)
            continue; /* its devices are counted once, with the link that replaces it */
        s->endpoints++;
        s->devices += L->ep->ndevices;
        for (size_t i = 0; i < L->ep->ndevices; i++) {
            int st = L->states[i].state;
            s->devices_up += st == MB_STATE_UP;
            s->devices_down += st == MB_STATE_DOWN;
            s->devices_misconfigured += st == MB_STATE_MISCONFIGURED;
        }
    }
    for (mb_link *L = p->links;; L = L->next) {
        const mb_counters *c = L ? &L->c : &p->gone; /* the links gone count too */
        s->polls += LOAD(c->polls);
        s->polls_ok += LOAD(c->polls_ok);
        s->requests += LOAD(c->requests);
        s->request_errors += LOAD(c->request_errors);
        s->timeouts += LOAD(c->timeouts);
        s->exceptions += LOAD(c->exceptions);
        s->config_errors += LOAD(c->config_errors);
        s->connects += LOAD(c->connects);
        s->connect_failures += LOAD(c->connect_failures);
        s->disconnects += LOAD(c->disconnects);
        s->values += LOAD(c->values);
        s->values_bad += LOAD(c->values_bad);
        s->skipped += LOAD(c->skipped);
        s->late_cycles += LOAD(c->late_cycles);
        for (int k = 0; h && k < MB_HIST_N; k++) {
            uint64_t v = LOAD(c->hist[k]);
            h[k] += v;
            total += v;
        }
        if (!L)
            break;
    }
    if (h) {
        s->lateness_p50_ms = hist_quantile(h, total, 0.50);
        s->lateness_p99_ms = hist_quantile(h, total, 0.99);
        for (int k = MB_HIST_N - 1; k >= 0; k--)
            if (h[k]) {
                s->lateness_max_ms = bucket_ms(k);
                break;
            }
        free(h);
    }
    s->uploads = p->uploads;
    s->ingest_errors = p->ingest_errors;
}

static void on_closed(uv_handle_t *h)
{
    mb_poller *p = h->data;
    if (--p->closing == 0)
        free_poller(p);
}

void mb_poller_close(mb_poller *p)
{
    if (!p)
        return;
    stop_threads(p);
    drain(p); /* the reads and last messages of every thread: each link is freed, its
               * devices' final states written */
    mb_reload_abandon(p);
    if (p->rollup)
        engine_rtd_rollup_close(p->rollup);
    p->closing = 2;
    uv_close((uv_handle_t *)&p->async, on_closed);
    uv_close((uv_handle_t *)&p->flush_timer, on_closed);
}
