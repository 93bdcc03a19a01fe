/* poller.c: the HTTP poller at run time. The scheduler (../schedule.c) says when each source
 * polls; a poll asks its window (window.c) page by page through the engine's HTTP client
 * (libcurl multi on the loop), maps each page (mapping.c), and hands the records to
 * engine_ingest exactly as HJ 212 uploads are handed, so roll-ups and judging apply. The poll
 * counts as done only once the engine has committed every record: then the cursor moves and
 * the state is written. A failure (no answer in time, HTTP status, bad JSON, a store error)
 * costs only that source: it is marked down with its error, and retried with backoff.
 *
 * Connections: at most max_connections polls run at once (the scheduler's bound) and at most
 * max_host_connections against one host (a queue per host), and curl is held to the same
 * caps, so a transfer never waits inside curl with its timeout running.
 *
 * A reload builds a new generation of sources (states carried over by name) and retires the
 * old one: its polls finish, nothing new starts there, and it is freed when the last ends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "collectors.h"
#include "http_poll.h"
#include "schedule.h"

#define STATE_FLUSH_MS 1000
#define URL_MAX 8192
#define BODY_MAX 65536
#define VALUES_PER_UPLOAD 64
#define LOG_CHANGES_PER_MIN 50

typedef struct host {
    char key[256];          /* scheme://authority */
    uint32_t inflight;
    uint32_t head, tail;    /* sources waiting for a connection: ids + 1, 0 = none */
} host;

typedef struct gen gen;

typedef struct src {
    gen *g;
    const http_source_def *def;
    http_state s;
    uint32_t id, host, next_wait;
    bool running;
    bool cycled;                /* has ended a poll (or had nothing to ask) in this generation */
    /* the poll under way */
    int64_t from, to, page;     /* page: 0-based index */
    uint64_t fetched, stored, bad;
    uint32_t pending;           /* ingests not yet acknowledged */
    bool more, req_done, ok, store_failed;
    bool cancelled;             /* stopped by a reload or the close: not the source's fault */
    int64_t retry_after_s;
    char err[160];
} src;

struct gen {
    http_poller *p;
    http_source_set *set;       /* owned */
    src *src;
    size_t n;
    host *hosts;
    uint32_t nhosts;
    coll_sched *sched;          /* NULL once retired */
    uint32_t running;
    uint32_t cycled;            /* sources that have cycled */
    uint32_t cycled_failed;
    int64_t started_ms;         /* when the generation started, for its first cycle's time */
    bool retired;
    bool retiring;              /* gen_retire is walking it: it frees, not maybe_finish */
};

struct http_poller {
    uv_loop_t *loop;
    engine *e;
    http_poller_options o;
    char *path;                 /* owned copy of the sources file's path */
    engine_http *http;
    gen *cur;
    uv_timer_t *flush;          /* owned; freed in its close callback */
    storage_batch *states;      /* state records not yet submitted */
    size_t nstates;             /* records in it */
    http_poller_stats st;
    uint32_t gens;              /* generations alive */
    uint64_t pending_acks;      /* over all generations */
    int64_t log_minute;
    uint32_t logged_this_minute;
    bool closing;
};

static int64_t wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

/* dst = a followed by b, cut to cap - 1 bytes. */
static void set_text(char *dst, size_t cap, const char *a, const char *b)
{
    size_t n = 0;
    for (const char *s = a ? a : ""; *s && n + 1 < cap; s++)
        dst[n++] = *s;
    for (const char *s = b ? b : ""; *s && n + 1 < cap; s++)
        dst[n++] = *s;
    dst[n] = '\0';
}

static void maybe_free_poller(http_poller *p)
{
    if (p->closing && p->gens == 0 && p->pending_acks == 0 && !p->flush) {
        storage_batch_destroy(p->states);
        free(p->path);
        free(p);
    }
}

static void gen_free(gen *g)
{
    http_poller *p = g->p;
    coll_sched_destroy(g->sched);
    http_sources_free(g->set);
    free(g->src);
    free(g->hosts);
    free(g);
    p->gens--;
    maybe_free_poller(p);
}

/* ---- State ---------------------------------------------------------------------------- */

static void save_state(src *r)
{
    http_poller *p = r->g->p;
    if (!p->o.st || !p->states)
        return;
    char key[256], val[2048];
    int kl = snprintf(key, sizeof key, "http:%s", r->def->name);
    int64_t next = r->g->sched ? coll_sched_due_ms(r->g->sched, r->id) : INT64_MAX;
    size_t vl = http_state_format(&r->s, r->g->hosts[r->host].key,
                                  next == INT64_MAX ? 0 : next / 1000, val, sizeof val);
    if (kl > 0 && (size_t)kl < sizeof key &&
        storage_batch_kv_put(p->states, "sources", key, (size_t)kl, val, vl) == 0)
        p->nstates++;
}

static void flush_states(http_poller *p)
{
    if (!p->o.st || !p->states || p->nstates == 0)
        return;
    storage_batch *b = storage_batch_create();
    if (!b)
        return;
    storage_submit(p->o.st, p->states, NULL, NULL); /* takes the batch */
    p->states = b;
    p->nstates = 0;
}

static void on_flush(uv_timer_t *t)
{
    flush_states(t->data);
}

static void log_change(http_poller *p, const src *r, bool up)
{
    int64_t minute = wall_s() / 60;
    p->st.state_changes++;
    if (minute != p->log_minute) {
        if (p->logged_this_minute > LOG_CHANGES_PER_MIN) {
            char n[24];
            snprintf(n, sizeof n, "%u", p->logged_this_minute - LOG_CHANGES_PER_MIN);
            engine_log_kv(ENGINE_LOG_WARN, "http source changes not logged", "count", n, NULL);
        }
        p->log_minute = minute;
        p->logged_this_minute = 0;
    }
    if (++p->logged_this_minute > LOG_CHANGES_PER_MIN)
        return;
    if (up)
        engine_log_kv(ENGINE_LOG_INFO, "http source up", "source", r->def->name, NULL);
    else
        engine_log_kv(ENGINE_LOG_WARN, "http source down", "source", r->def->name, "error",
                      r->s.last_error, NULL);
}

/* ---- A poll ----------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts a source's first poll of the generation; logs once when every source has had one:
 * how long a whole cycle takes is the figure an operator sizes connections by. */
static void mark_cycled(src *r, bool failed)
{
    gen *g = r->g;
    if (r->cycled || g->retired)
        return;
    r->cycled = true;
    g->cycled++;
    g->cycled_failed += failed;
    if (g->cycled == g->n) {
        char secs[32], n[24], ok[24], bad[24];
        snprintf(secs, sizeof secs, "%.3f", (double)(mono_ms() - g->started_ms) / 1000.0);
        snprintf(n, sizeof n, "%zu", g->n);
        snprintf(ok, sizeof ok, "%u", g->cycled - g->cycled_failed);
        snprintf(bad, sizeof bad, "%u", g->cycled_failed);
        engine_log_kv(ENGINE_LOG_INFO, "http first cycle done", "seconds", secs, "sources", n,
                      "ok", ok, "failed", bad, NULL);
    }
}

static void request(src *r);

/* Ends the poll once its requests are over and its records acknowledged. */
static void maybe_finish(src *r)
{
    if (!r->req_done || r->pending)
        return;
    gen *g = r->g;
    http_poller *p = g->p;
    int64_t now = wall_s();
    bool cancelled = r->cancelled || (p->closing && !r->ok);
    r->running = false;
    g->running--;
    if (!cancelled) {
        http_state *s = &r->s;
        s->polls++;
        s->last_attempt = now;
        s->records_bad += r->bad;
        if (r->ok && !r->store_failed) {
            p->st.polls_ok++;
            s->records += r->stored;
            p->st.records += r->stored;
            s->last_records = r->stored;
            s->window_from = r->from;
            s->cursor = r->to;
            s->last_success = now;
            s->consecutive = 0;
            if (s->up != 1) {
                if (s->up == 0)
                    log_change(p, r, true);
                s->up = 1;
                s->since = now;
            }
        } else {
            p->st.polls_failed++;
            if (r->store_failed)
                snprintf(r->err, sizeof r->err, "the store refused the records");
            s->failures++;
            s->consecutive++;
            s->last_error_at = now;
            set_text(s->last_error, sizeof s->last_error, r->err, NULL);
            if (s->up != 0) {
                s->up = 0;
                s->since = now;
                log_change(p, r, false);
            }
        }
    }
    if (g->sched && !p->closing) {
        int64_t retry = 0;
        if (!r->ok || r->store_failed) {
            const http_profile *pr = r->def->prof;
            retry = coll_backoff_ms(pr->retry_base_s * 1000, pr->retry_max_s * 1000,
                                    r->s.consecutive, coll_mix64((uint64_t)now ^ r->id));
            if (r->retry_after_s * 1000 > retry)
                retry = r->retry_after_s * 1000;
        } else if (r->more) {
            retry = 1; /* more of the gap to fetch: again as soon as a connection is free */
        }
        coll_sched_done(g->sched, r->id, retry);
    }
    if (!cancelled) {
        save_state(r);
        mark_cycled(r, !r->ok || r->store_failed);
    }
    if (g->retired && !g->retiring && g->running == 0)
        gen_free(g);
}

/* Gives the source's connection slot to the next source waiting for its host. */
static void release_host(src *r)
{
    gen *g = r->g;
    host *h = &g->hosts[r->host];
    h->inflight--;
    while (h->head && !g->p->closing) {
        src *w = &g->src[h->head - 1];
        h->head = w->next_wait;
        if (!h->head)
            h->tail = 0;
        w->next_wait = 0;
        h->inflight++;
        request(w);
        return;
    }
}

static void fail_poll(src *r, const char *what, const char *detail)
{
    r->ok = false;
    set_text(r->err, sizeof r->err, what, detail);
    r->req_done = true;
    release_host(r);
    maybe_finish(r);
}

static void on_ack(void *arg, int status)
{
    src *r = arg;
    http_poller *p = r->g->p;
    r->pending--;
    p->pending_acks--;
    if (status < 0)
        r->store_failed = true;
    maybe_finish(r);
}

static int cmp_records(const void *a, const void *b)
{
    const http_record *x = a, *y = b;
    int c = strcmp(x->mn, y->mn);
    if (c)
        return c;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Hands a page's records to the engine, one upload per MN and time. */
static void ingest_page(src *r, http_page *pg)
{
    const http_profile *pr = r->def->prof;
    http_poller *p = r->g->p;
    if (pr->map.time_is_end)
        for (size_t i = 0; i < pg->n; i++)
            pg->recs[i].pt.ts = pg->recs[i].ts -= pr->period_s;
    qsort(pg->recs, pg->n, sizeof *pg->recs, cmp_records);
    engine_value vals[VALUES_PER_UPLOAD];
    for (size_t i = 0; i < pg->n;) {
        size_t k = 0;
        const http_record *first = &pg->recs[i];
        while (i < pg->n && k < VALUES_PER_UPLOAD && pg->recs[i].ts == first->ts &&
               strcmp(pg->recs[i].mn, first->mn) == 0) {
            vals[k].code = pg->recs[i].code;
            vals[k].pt = pg->recs[i].pt;
            k++;
            i++;
        }
        engine_upload u = {.mn = first->mn, .interval = pr->series_iv, .ts = first->ts,
                           .values = vals, .nvalues = k};
        if (engine_ingest(p->e, &u, on_ack, r) == 0) {
            r->pending++;
            p->pending_acks++;
            r->stored += k;
        } else {
            r->bad += k;
        }
    }
}

/* Whether another page follows the one just read (n records of it, index page). */
static bool next_page(const src *r, const http_page *pg)
{
    const http_paging *pg_opt = &r->def->prof->paging;
    if (!pg_opt->on || r->page + 1 >= pg_opt->max_pages)
        return false;
    int64_t pages = http_page_count(pg, pg_opt->pages);
    int64_t total = http_page_count(pg, pg_opt->total);
    if (pages >= 0)
        return r->page + 1 < pages;
    if (total >= 0)
        return (int64_t)r->fetched < total;
    return (int64_t)pg->nrecords >= pg_opt->size;
}

static uint64_t hash_url(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ? h : 1;
}

typedef struct vars_ctx {
    const src *r;
    char from[48], to[48], from_s[24], to_s[24], page[24], size[24], offset[24];
} vars_ctx;

static const char *var_value(void *arg, const char *name, size_t len)
{
    vars_ctx *v = arg;
#define IS(x) (len == sizeof(x) - 1 && memcmp(name, x, len) == 0)
    if (IS("from"))
        return v->from;
    if (IS("to"))
        return v->to;
    if (IS("from_s"))
        return v->from_s;
    if (IS("to_s"))
        return v->to_s;
    if (IS("page"))
        return v->page;
    if (IS("page_size"))
        return v->size;
    if (IS("offset"))
        return v->offset;
    if (IS("name"))
        return v->r->def->name;
#undef IS
    return http_source_var(v->r->def, name, len);
}

static void vars_fill(vars_ctx *v, const src *r)
{
    const http_profile *pr = r->def->prof;
    v->r = r;
    http_time_format(&pr->window_fmt, r->from, v->from, sizeof v->from);
    http_time_format(&pr->window_fmt, r->to, v->to, sizeof v->to);
    snprintf(v->from_s, sizeof v->from_s, "%lld", (long long)r->from);
    snprintf(v->to_s, sizeof v->to_s, "%lld", (long long)r->to);
    int64_t size = pr->paging.on ? pr->paging.size : 0;
    snprintf(v->page, sizeof v->page, "%lld", (long long)(pr->paging.start + r->page));
    snprintf(v->size, sizeof v->size, "%lld", (long long)size);
    snprintf(v->offset, sizeof v->offset, "%lld", (long long)(r->page * size));
}

static void on_response(void *arg, const engine_http_response *res)
{
    src *r = arg;
    http_poller *p = r->g->p;
    const http_profile *pr = r->def->prof;
    char detail[160], err[160];
    if (res->status < 0) {
        if (res->status == -ETIMEDOUT)
            snprintf(detail, sizeof detail, "no answer within %d ms", pr->timeout_ms);
        else
            snprintf(detail, sizeof detail, "%s", res->error);
        fail_poll(r, "", detail);
        return;
    }
    if (res->http_code == 304 && r->page == 0) {
        p->st.not_modified++;
        r->ok = true;
        r->req_done = true;
        release_host(r);
        maybe_finish(r);
        return;
    }
    if (res->http_code < 200 || res->http_code > 299) {
        const char *ra = res->retry_after;
        r->retry_after_s = ra && (res->http_code == 429 || res->http_code == 503) ? atoll(ra) : 0;
        if (r->retry_after_s > 86400 || r->retry_after_s < 0)
            r->retry_after_s = 0;
        snprintf(detail, sizeof detail, "%ld", res->http_code);
        fail_poll(r, "HTTP ", detail);
        return;
    }
    if (res->truncated) {
        fail_poll(r, "response body larger than the client takes", NULL);
        return;
    }
    http_page pg;
    if (http_map_page(&pr->map, res->body, res->body_len, http_source_var(r->def, "mn", 2),
                      http_source_var(r->def, "code", 4), &pg, err, sizeof err) != 0) {
        fail_poll(r, "", err);
        return;
    }
    r->fetched += pg.nrecords;
    r->bad += pg.bad;
    p->st.records_bad += pg.bad;
    if (pg.bad && !r->s.last_error[0])
        set_text(r->s.last_error, sizeof r->s.last_error, pg.why, NULL);
    ingest_page(r, &pg);
    bool more = next_page(r, &pg);
    http_page_free(&pg);
    if (r->page == 0 && pr->conditional) {
        /* Validators of a window that fits one page: a 304 then says the whole window is
         * unchanged. A first page says nothing of the pages after it. */
        set_text(r->s.etag, sizeof r->s.etag, more ? NULL : res->etag, NULL);
        set_text(r->s.last_modified, sizeof r->s.last_modified,
                 more ? NULL : res->last_modified, NULL);
    }
    if (more && !p->closing) {
        r->page++;
        request(r);
        return;
    }
    r->ok = true;
    r->req_done = true;
    release_host(r);
    maybe_finish(r);
}

/* Sends the request for the current page; the source holds a connection slot. */
static void request(src *r)
{
    http_poller *p = r->g->p;
    const http_profile *pr = r->def->prof;
    vars_ctx v;
    char url[URL_MAX], err[160], *body = NULL;
    char hdrs[24][512];
    const char *hp[26];
    size_t nh = 0;
    vars_fill(&v, r);
    if (http_template_expand(pr->url, true, var_value, &v, url, sizeof url, err, sizeof err) < 0) {
        fail_poll(r, "url: ", err[0] ? err : "longer than 8 KiB");
        return;
    }
    for (size_t i = 0; i < pr->nheaders && nh < 18; i++)
        if (http_template_expand(pr->headers[i], false, var_value, &v, hdrs[nh], sizeof hdrs[nh],
                                 NULL, 0) >= 0)
            hp[nh] = hdrs[nh], nh++;
    if (pr->bearer_token) {
        char tok[400];
        if (http_template_expand(pr->bearer_token, false, var_value, &v, tok, sizeof tok, NULL,
                                 0) >= 0) {
            snprintf(hdrs[nh], sizeof hdrs[nh], "Authorization: Bearer %s", tok);
            hp[nh] = hdrs[nh], nh++;
        }
    }
    uint64_t key = hash_url(url);
    if (r->page == 0 && pr->conditional) {
        if (key == r->s.cond_key && r->s.etag[0]) {
            snprintf(hdrs[nh], sizeof hdrs[nh], "If-None-Match: %s", r->s.etag);
            hp[nh] = hdrs[nh], nh++;
        }
        if (key == r->s.cond_key && r->s.last_modified[0]) {
            snprintf(hdrs[nh], sizeof hdrs[nh], "If-Modified-Since: %s", r->s.last_modified);
            hp[nh] = hdrs[nh], nh++;
        }
        if (key != r->s.cond_key) {
            r->s.cond_key = key;
            r->s.etag[0] = r->s.last_modified[0] = '\0';
        }
    }
    hp[nh] = NULL;
    int blen = 0;
    if (pr->body) {
        body = malloc(BODY_MAX);
        blen = body ? http_template_expand(pr->body, false, var_value, &v, body, BODY_MAX, NULL, 0)
                    : -ENOMEM;
        if (blen < 0) {
            free(body);
            fail_poll(r, "body does not expand (longer than 64 KiB?)", NULL);
            return;
        }
    }
    engine_http_req req = {.method = pr->method, .url = url, .headers = hp, .body = body,
                           .body_len = body ? (size_t)blen : 0, .timeout_ms = pr->timeout_ms};
    int rc = engine_http_request(p->http, &req, on_response, r);
    free(body);
    if (rc != 0) {
        fail_poll(r, rc == -ENOMEM ? "out of memory" : "request refused by the client", NULL);
        return;
    }
    p->st.requests++;
}

/* The scheduler's call: start a poll of source id. */
static void on_fire(void *arg, uint32_t id, int64_t slot_ms)
{
    gen *g = arg;
    http_poller *p = g->p;
    src *r = &g->src[id];
    (void)slot_ms;
    int64_t now = wall_s();
    r->page = 0;
    r->fetched = r->stored = r->bad = 0;
    r->pending = 0;
    r->more = r->ok = r->store_failed = r->cancelled = false;
    r->req_done = false;
    r->retry_after_s = 0;
    r->err[0] = '\0';
    r->running = true;
    g->running++;
    if (!http_window(r->def->prof, r->s.cursor, now, &r->from, &r->to, &r->more)) {
        r->running = false; /* nothing new since the last window: not a poll */
        g->running--;
        mark_cycled(r, false);
        coll_sched_done(g->sched, id, 0);
        return;
    }
    p->st.polls++;
    host *h = &g->hosts[r->host];
    if (h->inflight >= p->o.max_host_connections) {
        r->next_wait = 0;
        if (h->tail)
            g->src[h->tail - 1].next_wait = id + 1;
        else
            h->head = id + 1;
        h->tail = id + 1;
        return;
    }
    h->inflight++;
    request(r);
}

/* ---- Generations ---------------------------------------------------------------------- */

static const char *probe_var(void *arg, const char *name, size_t len)
{
    const src *r = arg;
    const char *v = http_source_var(r->def, name, len);
    return v ? v : "0";
}

/* The host a source talks to: scheme and authority of its URL. */
static int find_host(gen *g, src *r)
{
    char url[URL_MAX];
    if (http_template_expand(r->def->prof->url, false, probe_var, r, url, sizeof url, NULL, 0) < 0)
        url[0] = '\0';
    const char *auth = strstr(url, "://");
    size_t len = auth ? strcspn(auth + 3, "/?#") + (size_t)(auth + 3 - url) : strlen(url);
    if (len >= sizeof g->hosts[0].key)
        len = sizeof g->hosts[0].key - 1;
    for (uint32_t i = 0; i < g->nhosts; i++)
        if (strlen(g->hosts[i].key) == len && !strncmp(g->hosts[i].key, url, len)) {
            r->host = i;
            return 0;
        }
    host *nh = realloc(g->hosts, (g->nhosts + 1) * sizeof *nh);
    if (!nh)
        return -ENOMEM;
    g->hosts = nh;
    memset(&nh[g->nhosts], 0, sizeof *nh);
    memcpy(nh[g->nhosts].key, url, len);
    nh[g->nhosts].key[len] = '\0';
    r->host = g->nhosts++;
    return 0;
}

static int cmp_src_name(const void *a, const void *b)
{
    return strcmp((*(src *const *)a)->def->name, (*(src *const *)b)->def->name);
}

/* Loads saved states into the sources of g, by name, from the "sources" table. */
typedef struct by_name {
    src **v;
    size_t n;
} by_name;

static int restore_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    by_name *b = arg;
    if (klen < 5 || memcmp(key, "http:", 5) != 0)
        return klen >= 5 && memcmp(key, "http:", 5) > 0; /* past the http: keys: stop */
    char name[256];
    size_t nl = klen - 5 < sizeof name - 1 ? klen - 5 : sizeof name - 1;
    memcpy(name, (const char *)key + 5, nl);
    name[nl] = '\0';
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(b->v[mid]->def->name, name);
        if (c == 0) {
            http_state_parse(val, vlen, &b->v[mid]->s);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static void restore_states(http_poller *p, gen *g, const gen *old)
{
    by_name b = {calloc(g->n ? g->n : 1, sizeof *b.v), g->n};
    if (!b.v)
        return;
    for (size_t i = 0; i < g->n; i++)
        b.v[i] = &g->src[i];
    qsort(b.v, b.n, sizeof *b.v, cmp_src_name);
    if (old) { /* a reload: the running generation knows best */
        by_name ob = {calloc(old->n ? old->n : 1, sizeof *ob.v), old->n};
        for (size_t i = 0; ob.v && i < old->n; i++)
            ob.v[i] = &old->src[i];
        if (ob.v)
            qsort(ob.v, ob.n, sizeof *ob.v, cmp_src_name);
        for (size_t i = 0, j = 0; ob.v && i < b.n && j < ob.n;) {
            int c = strcmp(b.v[i]->def->name, ob.v[j]->def->name);
            if (c == 0)
                b.v[i]->s = ob.v[j]->s;
            i += c <= 0;
            j += c >= 0;
        }
        free(ob.v);
    } else if (p->o.st) {
        storage_reader *rd;
        if (storage_reader_open(p->o.st, &rd) == 0) {
            storage_kv_scan(rd, "sources", "http:", 5, restore_one, &b);
            storage_reader_close(rd);
        }
    }
    free(b.v);
}

static int gen_create(http_poller *p, const gen *old, gen **out, char *err, size_t errlen)
{
    gen *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->p = p;
    int rc = http_sources_load(p->path, &g->set, err, errlen);
    if (rc == 0 && !(g->src = calloc(g->set->n ? g->set->n : 1, sizeof *g->src)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < g->set->n; i++) {
        src *r = &g->src[i];
        r->g = g;
        r->def = &g->set->src[i];
        r->id = (uint32_t)i;
        r->s.up = -1;
        g->n++;
        rc = find_host(g, r);
    }
    if (rc == 0) {
        restore_states(p, g, old);
        coll_sched_options so = {.loop = p->loop, .fire = on_fire, .arg = g,
                                 .max_inflight = p->o.max_connections, .jitter = 0.5,
                                 .catchup_ms = p->o.catchup_ms, .seed = p->o.seed};
        rc = coll_sched_create(&so, &g->sched);
    }
    int64_t now = wall_s();
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        src *r = &g->src[i];
        const http_profile *pr = r->def->prof;
        int64_t from, to;
        bool more;
        coll_sched_entry e = {.interval_ms = pr->interval_s * 1000,
                              .spread_ms = pr->spread_s * 1000,
                              .behind = http_window(pr, r->s.cursor, now, &from, &to, &more) &&
                                        (!r->s.cursor || now - r->s.last_attempt >= pr->interval_s)};
        rc = coll_sched_add(g->sched, &e, NULL);
    }
    if (rc == 0)
        rc = coll_sched_start(g->sched);
    if (rc != 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        coll_sched_destroy(g->sched);
        http_sources_free(g->set);
        free(g->src);
        free(g->hosts);
        free(g);
        return rc;
    }
    p->gens++;
    p->st.sources = g->n;
    g->started_ms = mono_ms();
    *out = g;
    return 0;
}

/* Stops scheduling g; it is freed when its last poll ends. */
static void gen_retire(gen *g)
{
    g->retired = true;
    g->retiring = true;
    coll_sched_destroy(g->sched);
    g->sched = NULL;
    for (uint32_t i = 0; i < g->nhosts; i++) { /* polls waiting for a connection: dropped */
        host *h = &g->hosts[i];
        while (h->head) {
            src *w = &g->src[h->head - 1];
            h->head = w->next_wait;
            w->req_done = true;
            w->cancelled = true;
            maybe_finish(w);
        }
        h->tail = 0;
    }
    g->retiring = false;
    if (g->running == 0)
        gen_free(g);
}

/* ---- Interface ------------------------------------------------------------------------ */

int http_poller_start(uv_loop_t *loop, engine *e, const http_poller_options *o,
                      http_poller **out, char *err, size_t errlen)
{
    http_poller *p = calloc(1, sizeof *p);
    if (!p || !o || !o->sources_file) {
        free(p);
        return p ? -EINVAL : -ENOMEM;
    }
    p->loop = loop;
    p->e = e;
    p->o = *o;
    if (!p->o.max_connections)
        p->o.max_connections = 256;
    if (!p->o.max_host_connections)
        p->o.max_host_connections = 64;
    p->path = strdup(o->sources_file);
    p->states = storage_batch_create();
    engine_http_options ho = {.max_total_connections = p->o.max_connections,
                              .max_host_connections = p->o.max_host_connections,
                              .max_body_len = 64u << 20};
    int rc = p->path && p->states ? engine_http_create(loop, &ho, &p->http) : -ENOMEM;
    if (rc == 0 && (rc = gen_create(p, NULL, &p->cur, err, errlen)) != 0) {
        engine_http_close(p->http);
    }
    if (rc != 0) {
        storage_batch_destroy(p->states);
        free(p->path);
        free(p);
        return rc;
    }
    p->flush = malloc(sizeof *p->flush);
    if (p->flush) {
        uv_timer_init(loop, p->flush);
        p->flush->data = p;
        uv_timer_start(p->flush, on_flush, STATE_FLUSH_MS, STATE_FLUSH_MS);
        uv_unref((uv_handle_t *)p->flush);
    }
    *out = p;
    return 0;
}

int http_poller_reload(http_poller *p, char *err, size_t errlen)
{
    gen *g;
    int rc = gen_create(p, p->cur, &g, err, errlen);
    if (rc != 0)
        return rc;
    gen *old = p->cur;
    p->cur = g;
    gen_retire(old);
    return 0;
}

void http_poller_get_stats(const http_poller *p, http_poller_stats *out)
{
    *out = p->st;
    out->up = out->down = 0;
    for (size_t i = 0; p->cur && i < p->cur->n; i++) {
        out->up += p->cur->src[i].s.up == 1;
        out->down += p->cur->src[i].s.up == 0;
    }
    out->running = p->cur ? p->cur->running : 0;
    size_t peak = 0;
    out->sockets = engine_http_sockets(p->http, &peak);
    out->sockets_max = peak;
}

static void on_flush_closed(uv_handle_t *h)
{
    http_poller *p = h->data;
    free(h);
    p->flush = NULL;
    maybe_free_poller(p);
}

void http_poller_close(http_poller *p)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    gen *g = p->cur;
    p->cur = NULL;
    if (g)
        gen_retire(g);
    /* Cancels every transfer: their polls end as cancelled, states untouched. */
    engine_http_close(p->http);
    flush_states(p);
    if (p->flush)
        uv_close((uv_handle_t *)p->flush, on_flush_closed);
    else
        maybe_free_poller(p);
}
