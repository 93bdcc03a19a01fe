/* mb_poller.c: the loop side of the Modbus poller. It reserves the low fds, starts one
 * thread per endpoint (mb_link.c), and takes their reads on the loop thread (woken by
 * uv_async_send): values become real-time points MN:code:rtd through engine_ingest and, when
 * asked, minutes through the engine's rtd roll-up. Every device's state (up, down,
 * misconfigured; since when; the last error; counts) is data: one JSON record per device in
 * the store's "sources" table, written when the state changes and refreshed every minute,
 * and a state change is logged once, not every failed read. */
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

static void put_state(mb_poller *p, storage_batch *b, mb_devstate *s)
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

static void take(mb_poller *p, mb_msg *m, storage_batch **batch)
{
    mb_devstate *s = &p->devs[m->dev];
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
            put_state(p, *batch, s);
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
static void flush_states(mb_poller *p, bool all)
{
    storage_batch *b = storage_batch_create();
    if (!b)
        return;
    for (size_t i = 0; i < p->ndevs; i++)
        if (all || p->devs[i].dirty)
            put_state(p, b, &p->devs[i]);
    submit(p, b);
}

static void on_flush(uv_timer_t *t)
{
    flush_states(t->data, false);
}

/* One /dev/null placeholder per link on the lowest free numbers; -EMFILE when a number
 * below FD_LIMIT cannot be had. */
static int reserve_fds(mb_poller *p)
{
    p->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (p->devnull_fd < 0)
        return -errno;
    for (size_t i = 0; i < p->nlinks; i++) {
        int fd = fcntl(p->devnull_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return -errno;
        p->links[i].slot_fd = fd;
        if (fd >= FD_LIMIT)
            return -EMFILE;
    }
    return 0;
}

static void free_poller(mb_poller *p)
{
    for (size_t i = 0; i < p->nlinks; i++) {
        mb_link_free(&p->links[i]);
        if (p->links[i].slot_fd > 0)
            close(p->links[i].slot_fd);
    }
    if (p->devnull_fd >= 0)
        close(p->devnull_fd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->links);
    free(p->devs);
    free(p);
}

static void stop_threads(mb_poller *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->nlinks; i++)
        if (p->links[i].started)
            pthread_join(p->links[i].thread, NULL);
}

static int setup(mb_poller *p, const mb_poller_options *o)
{
    const mb_config *cfg = o->config;
    p->links = calloc(cfg->nendpoints ? cfg->nendpoints : 1, sizeof *p->links);
    p->devs = calloc(cfg->ndevices ? cfg->ndevices : 1, sizeof *p->devs);
    if (!p->links || !p->devs)
        return -ENOMEM;
    p->nlinks = cfg->nendpoints;
    uint64_t seed = o->seed ? o->seed : (uint64_t)mb_mono_ms() * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const mb_endpoint *ep = &cfg->endpoints[i];
        mb_link *L = &p->links[i];
        L->p = p;
        L->ep = ep;
        L->first_dev = (uint32_t)p->ndevs;
        L->rng = seed + i * 0x632be59bd9b4e019ull;
        for (size_t d = 0; d < ep->ndevices; d++)
            p->devs[p->ndevs++] = (mb_devstate){.dev = &ep->devices[d], .ep = ep};
    }
    int rc = reserve_fds(p);
    for (size_t i = 0; rc == 0 && i < p->nlinks; i++)
        rc = mb_link_init(&p->links[i]);
    return rc;
}

int mb_poller_start(uv_loop_t *loop, engine *e, const mb_poller_options *o, mb_poller **out)
{
    mb_poller *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->e = e;
    p->st = o->st;
    p->cfg = o->config;
    p->devnull_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = setup(p, o);
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
    for (size_t i = 0; i < p->nlinks; i++) {
        mb_link *L = &p->links[i];
        if (pthread_create(&L->thread, NULL, mb_link_main, L) == 0)
            L->started = true;
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
    s->endpoints = p->nlinks;
    s->devices = p->ndevs;
    for (size_t i = 0; i < p->nlinks; i++) {
        const mb_counters *c = &p->links[i].c;
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
    for (size_t i = 0; i < p->ndevs; i++) {
        int st = p->devs[i].state;
        s->devices_up += st == MB_STATE_UP;
        s->devices_down += st == MB_STATE_DOWN;
        s->devices_misconfigured += st == MB_STATE_MISCONFIGURED;
    }
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
    drain(p);
    flush_states(p, true);
    if (p->rollup)
        engine_rtd_rollup_close(p->rollup);
    p->closing = 2;
    uv_close((uv_handle_t *)&p->async, on_closed);
    uv_close((uv_handle_t *)&p->flush_timer, on_closed);
}
