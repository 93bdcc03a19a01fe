/* alerts.c: getting every alert to every receiver that wants it, exactly once as far as the
 * receiver can tell, through receiver outages and our own restarts. The detector stages an
 * alert state into the batch that commits the data raising it (engine_alerts_stage): the
 * subscriptions are matched then and one outbox record is written per (alert, destination).
 * Once that commit is durable the in-process hooks run and every delivery is queued on its
 * destination and sent at once. Each destination has its own queue, in-flight limit and
 * backoff, so a dead or hanging receiver only ever holds up itself; retries use exponential
 * backoff with full jitter, honour a 429's Retry-After, and stop after a day. Every request
 * carries Idempotency-Key "id:state:revision", the same on every retry, so receivers can
 * drop repeats. A finished record (delivered, refused for good, given up) is deleted in a
 * later commit; what is still in the outbox at start is resumed.
 *
 * Everything here runs on the loop thread. Persistence goes through engine_outbox_ops, so
 * this file has no storage dependency of its own (outbox.c binds it to the store). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "engine.h"

#define NBUCKETS 1024
#define MAX_HOOKS 8
#define MAX_MATCHES 256
/* DingTalk and WeCom robots take at most 20 messages a minute each: pace them. */
#define ROBOT_PER_MINUTE 20

/* One committed alert state; shared by its deliveries (refcounted). */
typedef struct alert_rec {
    int refs;
    engine_alert *al;  /* owned: one allocation (engine_alert_parse_json) */
    char *json;        /* owned: its webhook JSON */
    size_t json_len;
    char key[256];     /* idempotency key */
} alert_rec;

typedef struct dest dest;

/* One (alert, destination) pair until it is delivered or dropped. */
typedef struct delivery {
    struct delivery *next;
    alert_rec *rec;    /* counted reference */
    dest *d;
    int64_t created;   /* wall clock, Unix milliseconds */
    int64_t next_at;   /* wall clock, Unix milliseconds; when the next attempt is due */
    uint32_t attempts;
    char last_error[160];
} delivery;

struct dest {
    dest *next_hash, *next_all;
    engine_alerts *a;
    char id[17];       /* hex FNV-1a of format, url and header: the record key's suffix */
    char *url, *header; /* owned; header may be NULL */
    char *log_url;     /* owned: url without its query, which may hold a robot's token */
    int format;
    uint64_t robot_sent[ROBOT_PER_MINUTE]; /* loop times of the last sends, a ring */
    unsigned robot_n;  /* sends so far */
    delivery *head, *tail; /* waiting, in order */
    delivery *flying;  /* sent, awaiting their response (linked through next) */
    size_t queued, inflight;
    int streak;        /* consecutive failures; 0 while healthy */
    uint64_t paused_until; /* loop time, ms */
    uv_timer_t timer;
};

typedef struct hook {
    engine_alert_fn fn;
    void *arg;
} hook;

struct engine_alerts {
    uv_loop_t *loop;
    engine_outbox_ops ops;
    engine_http *http;
    bool own_http, closing;
    int refs;          /* open handles, requests in flight, tickets out, and 1 until closed */
    int timeout_ms, max_inflight, base_ms, max_ms;
    int64_t give_up_s;
    engine_subs *subs; /* owned */
    dest *buckets[NBUCKETS];
    dest *dests;
    hook hooks[MAX_HOOKS];
    int nhooks;
    uint64_t rng;
    engine_alerts_stats stats;
};

typedef struct ticket {
    engine_alerts *a;
    alert_rec *rec;
    delivery *list;
} ticket;

static void pump(dest *d);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Bookkeeping --------------------------------------------------------------------- */

static void unref(engine_alerts *a)
{
    if (--a->refs > 0)
        return;
    engine_subs_destroy(a->subs);
    while (a->dests) {
        dest *d = a->dests;
        a->dests = d->next_all;
        free(d->url);
        free(d->header);
        free(d->log_url);
        free(d);
    }
    free(a);
}

static void rec_unref(alert_rec *r)
{
    if (!r || --r->refs > 0)
        return;
    free(r->al);
    free(r->json);
    free(r);
}

/* A counted copy of an alert state, by way of its JSON (which the records keep anyway). */
static int rec_create(const engine_alert *al, alert_rec **out)
{
    alert_rec *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    int rc = engine_alert_format(al, ENGINE_ALERT_FMT_JSON, &r->json, &r->json_len);
    if (rc == 0)
        rc = engine_alert_parse_json(r->json, r->json_len, &r->al);
    if (rc == 0)
        rc = engine_alert_key(r->al, r->key, sizeof r->key) < 0 ? -EINVAL : 0;
    if (rc != 0) {
        free(r->json);
        free(r->al);
        free(r);
        return rc;
    }
    r->refs = 1;
    *out = r;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* a separator, so ("ab","c") != ("a","bc") */
}

static void on_dest_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* The destination for (url, format, header), created on first use. */
static dest *dest_get(engine_alerts *a, const char *url, int format, const char *header)
{
    uint64_t h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, engine_alert_format_name(format)),
                             url),
                       header ? header : "");
    char id[17];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)h);
    dest **b = &a->buckets[h % NBUCKETS];
    for (dest *d = *b; d; d = d->next_hash)
        if (strcmp(d->id, id) == 0)
            return d;
    dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->url = strdup(url);
    d->header = header ? strdup(header) : NULL;
    d->log_url = strndup(url, strcspn(url, "?"));
    if (!d->url || (header && !d->header) || !d->log_url) {
        free(d->url);
        free(d->header);
        free(d->log_url);
        free(d);
        return NULL;
    }
    memcpy(d->id, id, sizeof id);
    d->format = format;
    d->a = a;
    uv_timer_init(a->loop, &d->timer);
    d->timer.data = d;
    a->refs++;
    d->next_hash = *b;
    *b = d;
    d->next_all = a->dests;
    a->dests = d;
    return d;
}

/* ---- Outbox records -------------------------------------------------------------------- */

static int record_key(const delivery *dl, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s|%s", dl->rec->key, dl->d->id);
    return n < 0 || (size_t)n >= len ? -ERANGE : n;
}

/* The record's value: destination, progress, and the alert's JSON. malloc'd. */
static char *record_value(const delivery *dl)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *dst = o ? cJSON_AddObjectToObject(o, "dest") : NULL;
    char *s = NULL;
    if (dst) {
        cJSON_AddStringToObject(dst, "url", dl->d->url);
        cJSON_AddStringToObject(dst, "format", engine_alert_format_name(dl->d->format));
        if (dl->d->header)
            cJSON_AddStringToObject(dst, "header", dl->d->header);
        cJSON_AddNumberToObject(o, "created", (double)dl->created);
        cJSON_AddNumberToObject(o, "attempts", dl->attempts);
        cJSON_AddNumberToObject(o, "next_at", (double)dl->next_at);
        cJSON_AddStringToObject(o, "last_error", dl->last_error);
        cJSON_AddItemToObject(o, "alert", cJSON_ParseWithLength(dl->rec->json,
                                                                dl->rec->json_len));
        s = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    return s;
}

/* Writes the record in a commit of its own (progress, or a resumed one's new state). */
static void record_put(engine_alerts *a, const delivery *dl)
{
    char key[512];
    if (!a->ops.put || record_key(dl, key, sizeof key) < 0)
        return;
    char *v = record_value(dl);
    if (v)
        a->ops.put(a->ops.ctx, key, strlen(key), v, strlen(v));
    free(v);
}

static void record_del(engine_alerts *a, const delivery *dl)
{
    char key[512];
    if (a->ops.del && record_key(dl, key, sizeof key) > 0)
        a->ops.del(a->ops.ctx, key, strlen(key));
}

/* ---- Sending ----------------------------------------------------------------------------- */

static void delivery_free(delivery *dl)
{
    rec_unref(dl->rec);
    free(dl);
}

static void enqueue(dest *d, delivery *dl, bool front)
{
    if (front) {
        dl->next = d->head;
        d->head = dl;
        if (!d->tail)
            d->tail = dl;
    } else {
        dl->next = NULL;
        if (d->tail)
            d->tail->next = dl;
        else
            d->head = dl;
        d->tail = dl;
    }
    d->queued++;
}

static uint64_t rand64(engine_alerts *a)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return a->rng;
}

enum { OUT_OK, OUT_RETRY, OUT_PERMANENT };

/* What a response means for the delivery; err says why when it is not OUT_OK. */
static int judge(const dest *d, const engine_http_response *res, int64_t *retry_ms,
                 char *err, size_t errlen)
{
    *retry_ms = 0;
    if (res->status < 0) {
        snprintf(err, errlen, "%s", res->error);
        return OUT_RETRY;
    }
    long code = res->http_code;
    snprintf(err, errlen, "HTTP %ld", code);
    if (code == 429 || code == 503) {
        const char *ra = res->retry_after;
        if (ra && *ra >= '0' && *ra <= '9')
            *retry_ms = strtoll(ra, NULL, 10) * 1000;
        return OUT_RETRY;
    }
    if (code == 408)
        return OUT_RETRY;
    if (code >= 400 && code < 500)
        return OUT_PERMANENT;
    if (code < 200 || code >= 300)
        return OUT_RETRY;
    if (d->format == ENGINE_ALERT_FMT_JSON)
        return OUT_OK;
    /* The robots answer 200 with {"errcode":N,"errmsg":...}: only 0 is delivered. */
    cJSON *o = cJSON_ParseWithLength(res->body, res->body_len);
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(o, "errcode");
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(o, "errmsg");
    int out = OUT_OK;
    if (cJSON_IsNumber(ec) && ec->valueint != 0) {
        snprintf(err, errlen, "errcode %d: %s", ec->valueint,
                 cJSON_IsString(em) ? em->valuestring : "");
        /* 45009 (WeCom) and 130101 (DingTalk): over 20 messages a minute; wait a minute. */
        if (ec->valueint == 45009 || ec->valueint == 130101) {
            *retry_ms = 60000;
            out = OUT_RETRY;
        } else {
            out = OUT_PERMANENT;
        }
    }
    cJSON_Delete(o);
    return out;
}

static void finish(engine_alerts *a, delivery *dl, int outcome, const char *err)
{
    dest *d = dl->d;
    if (outcome == OUT_OK) {
        a->stats.delivered++;
    } else if (outcome == OUT_PERMANENT) {
        a->stats.failed_permanent++;
        engine_log_kv(ENGINE_LOG_WARN, "alert refused by receiver", "key", dl->rec->key,
                      "url", d->log_url, "error", err, NULL);
    } else {
        a->stats.given_up++;
        engine_log_kv(ENGINE_LOG_WARN, "alert delivery given up", "key", dl->rec->key, "url",
                      d->log_url, "error", err, NULL);
    }
    a->stats.pending--;
    record_del(a, dl);
    delivery_free(dl);
}

static void on_response(void *arg, const engine_http_response *res)
{
    delivery *dl = arg;
    dest *d = dl->d;
    engine_alerts *a = d->a;
    for (delivery **p = &d->flying; *p; p = &(*p)->next)
        if (*p == dl) {
            *p = dl->next;
            break;
        }
    d->inflight--;
    if (a->closing) { /* the record stays in the outbox for the next start */
        delivery_free(dl);
        unref(a);
        return;
    }
    char err[160];
    int64_t retry_ms;
    int outcome = judge(d, res, &retry_ms, err, sizeof err);
    int64_t now = wall_ms();
    if (outcome == OUT_OK || outcome == OUT_PERMANENT) {
        if (d->streak > 0)
            engine_log_kv(ENGINE_LOG_INFO, "alert receiver back", "url", d->log_url, NULL);
        d->streak = 0;
        finish(a, dl, outcome, err);
    } else if (now - dl->created >= a->give_up_s * 1000) {
        finish(a, dl, -1, err);
    } else {
        /* Back off the whole destination: the next attempt, of this or any other alert
         * for it, waits a random time up to base * 2^streak (full jitter), capped. */
        if (d->streak++ == 0)
            engine_log_kv(ENGINE_LOG_WARN, "alert receiver failing", "url", d->log_url, "error",
                          err, NULL);
        int shift = d->streak - 1 < 20 ? d->streak - 1 : 20;
        int64_t ceiling = (int64_t)a->base_ms << shift;
        if (ceiling > a->max_ms)
            ceiling = a->max_ms;
        int64_t delay = (int64_t)(rand64(a) % (uint64_t)(ceiling + 1));
        if (retry_ms > delay)
            delay = retry_ms;
        uint64_t until = uv_now(a->loop) + (uint64_t)delay;
        if (until > d->paused_until)
            d->paused_until = until;
        a->stats.retries++;
        dl->next_at = now + delay;
        snprintf(dl->last_error, sizeof dl->last_error, "%s", err);
        record_put(a, dl);
        enqueue(d, dl, true);
    }
    pump(d);
    unref(a);
}

static int send_one(engine_alerts *a, delivery *dl)
{
    dest *d = dl->d;
    char *body;
    size_t len;
    int rc = engine_alert_format(dl->rec->al, d->format, &body, &len);
    if (rc != 0)
        return rc;
    char idem[300];
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", dl->rec->key);
    const char *headers[] = {"Content-Type: application/json; charset=utf-8", idem, d->header,
                             NULL};
    engine_http_req req = {.method = "POST", .url = d->url, .headers = headers, .body = body,
                           .body_len = len, .timeout_ms = a->timeout_ms};
    rc = engine_http_request(a->http, &req, on_response, dl);
    free(body);
    if (rc == 0) {
        d->robot_sent[d->robot_n++ % ROBOT_PER_MINUTE] = uv_now(a->loop);
        dl->attempts++;
        a->stats.attempts++;
        dl->next = d->flying;
        d->flying = dl;
        d->inflight++;
        a->refs++;
    }
    return rc;
}

/* Whether a state of this alert is on its way to d: its next state must wait for the answer,
 * or a receiver could see "resolved" before the "firing" it closes. */
static bool alert_flying(const dest *d, const char *id)
{
    for (const delivery *f = d->flying; f; f = f->next)
        if (strcmp(f->rec->al->id, id) == 0)
            return true;
    return false;
}

/* Sends what the destination may send now, in order, except that the states of one alert go
 * one at a time; arms its timer while it is paused. */
static void pump(dest *d)
{
    engine_alerts *a = d->a;
    if (a->closing)
        return;
    uint64_t now = uv_now(a->loop);
    if (d->paused_until > now) {
        if (d->head && d->inflight == 0)
            uv_timer_start(&d->timer, on_dest_timer, d->paused_until - now, 0);
        return;
    }
    /* A failing destination gets one probe at a time: dead receivers must not fill the
     * client's connection cap that healthy ones need. */
    size_t limit = d->streak > 0 ? 1 : (size_t)a->max_inflight;
    while (d->head && d->inflight < limit) {
        if (d->format != ENGINE_ALERT_FMT_JSON && d->robot_n >= ROBOT_PER_MINUTE) {
            uint64_t oldest = d->robot_sent[d->robot_n % ROBOT_PER_MINUTE];
            if (now - oldest < 60000) {
                d->paused_until = oldest + 60000;
                if (d->inflight == 0)
                    uv_timer_start(&d->timer, on_dest_timer, d->paused_until - now, 0);
                return;
            }
        }
        delivery *prev = NULL, *dl = d->head;
        while (dl && d->inflight && alert_flying(d, dl->rec->al->id)) {
            prev = dl;
            dl = dl->next;
        }
        if (!dl)
            return; /* all that waits follows a state in flight: its answer pumps again */
        if (prev)
            prev->next = dl->next;
        else
            d->head = dl->next;
        if (d->tail == dl)
            d->tail = prev;
        d->queued--;
        int rc = send_one(a, dl);
        if (rc == -EINVAL) { /* a URL the client refuses will never work */
            finish(a, dl, OUT_PERMANENT, "invalid request");
        } else if (rc != 0) { /* out of memory: try again later */
            enqueue(d, dl, true);
            d->paused_until = now + (uint64_t)a->base_ms;
            uv_timer_start(&d->timer, on_dest_timer, (uint64_t)a->base_ms, 0);
            return;
        }
    }
}

/* ---- Staging and committing ---------------------------------------------------------------- */

static delivery *delivery_create(engine_alerts *a, alert_rec *rec, const char *url, int format,
                                 const char *header)
{
    dest *d = dest_get(a, url, format, header);
    delivery *dl = d ? calloc(1, sizeof *dl) : NULL;
    if (!dl)
        return NULL;
    dl->d = d;
    dl->rec = rec;
    rec->refs++;
    dl->created = wall_ms();
    dl->next_at = dl->created;
    return dl;
}

int engine_alerts_stage(engine_alerts *a, storage_batch *b, const engine_alert *al,
                        void **out)
{
    if (a->closing || engine_alert_check(al) != 0)
        return -EINVAL;
    ticket *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = rec_create(al, &t->rec);
    if (rc != 0) {
        free(t);
        return rc;
    }
    t->a = a;
    engine_sub_dest m[MAX_MATCHES];
    size_t n = 0;
    engine_subs_match(a->subs, t->rec->al, m, MAX_MATCHES, &n);
    if (n > MAX_MATCHES) {
        engine_log_kv(ENGINE_LOG_WARN, "alert matches too many destinations; extra ignored",
                      "key", t->rec->key, NULL);
        n = MAX_MATCHES;
    }
    for (size_t i = 0; i < n; i++) {
        delivery *dl = delivery_create(a, t->rec, m[i].url, m[i].format, m[i].header);
        if (!dl) {
            rc = -ENOMEM;
            break;
        }
        dl->next = t->list;
        t->list = dl;
        if (b ? !a->ops.batch_put : !a->ops.put)
            continue; /* the outbox is in memory only */
        char key[512];
        char *v = record_value(dl);
        if (!v || record_key(dl, key, sizeof key) < 0) {
            free(v);
            rc = -ENOMEM;
            break;
        }
        if (b && a->ops.batch_put)
            rc = a->ops.batch_put(a->ops.ctx, b, key, strlen(key), v, strlen(v));
        else if (!b && a->ops.put)
            rc = a->ops.put(a->ops.ctx, key, strlen(key), v, strlen(v));
        free(v);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        while (t->list) {
            delivery *dl = t->list;
            t->list = dl->next;
            delivery_free(dl);
        }
        rec_unref(t->rec);
        free(t);
        return rc;
    }
    a->refs++;
    *out = t;
    return 0;
}

void engine_alerts_committed(void *arg, int status)
{
    ticket *t = arg;
    engine_alerts *a = t->a;
    if (status != 0 || a->closing) {
        if (status != 0)
            engine_log_kv(ENGINE_LOG_ERROR, "alert not committed; not sent", "key",
                          t->rec->key, "error", storage_strerror(status), NULL);
        while (t->list) {
            delivery *dl = t->list;
            t->list = dl->next;
            delivery_free(dl);
        }
    } else {
        a->stats.alerts++;
        for (int i = 0; i < a->nhooks; i++)
            a->hooks[i].fn(a->hooks[i].arg, t->rec->al, t->rec->json, t->rec->json_len);
        /* The list was built in reverse; queue in match order, then send at once. */
        delivery *rev = NULL;
        while (t->list) {
            delivery *dl = t->list;
            t->list = dl->next;
            dl->next = rev;
            rev = dl;
        }
        while (rev) {
            delivery *dl = rev;
            rev = dl->next;
            a->stats.deliveries++;
            a->stats.pending++;
            enqueue(dl->d, dl, false);
            pump(dl->d);
        }
    }
    rec_unref(t->rec);
    free(t);
    unref(a);
}

int engine_alerts_submit(engine_alerts *a, const engine_alert *al)
{
    void *t;
    int rc = engine_alerts_stage(a, NULL, al, &t);
    if (rc == 0)
        engine_alerts_committed(t, 0);
    return rc;
}

int engine_alerts_on_fire(engine_alerts *a, engine_alert_fn fn, void *arg)
{
    if (a->nhooks == MAX_HOOKS)
        return -ENOSPC;
    a->hooks[a->nhooks++] = (hook){fn, arg};
    return 0;
}

/* ---- Life cycle -------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* One outbox record back into a queued delivery. */
static int resume_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    engine_alerts *a = arg;
    cJSON *o = cJSON_ParseWithLength(val, vlen);
    const cJSON *dst = cJSON_GetObjectItemCaseSensitive(o, "dest");
    const cJSON *alj = cJSON_GetObjectItemCaseSensitive(o, "alert");
    char *text = alj ? cJSON_PrintUnformatted(alj) : NULL;
    engine_alert *al = NULL;
    alert_rec *rec = NULL;
    delivery *dl = NULL;
    int format = engine_alert_format_parse(jstr(dst, "format"));
    if (!text || format < 0 || !jstr(dst, "url") ||
        engine_alert_parse_json(text, strlen(text), &al) != 0 || rec_create(al, &rec) != 0 ||
        !(dl = delivery_create(a, rec, jstr(dst, "url"), format, jstr(dst, "header")))) {
        engine_log_kv(ENGINE_LOG_WARN, "outbox record unreadable; skipped", NULL);
    } else {
        dl->created = (int64_t)jnum(o, "created");
        dl->attempts = (uint32_t)jnum(o, "attempts");
        dl->next_at = (int64_t)jnum(o, "next_at");
        snprintf(dl->last_error, sizeof dl->last_error, "%s",
                 jstr(o, "last_error") ? jstr(o, "last_error") : "");
        /* A key written by an older layout would never be deleted: rewrite it as ours. */
        char k[512];
        if (record_key(dl, k, sizeof k) != (int)klen || memcmp(k, key, klen) != 0) {
            if (a->ops.del)
                a->ops.del(a->ops.ctx, key, klen);
            record_put(a, dl);
        }
        int64_t wait_ms = dl->next_at - wall_ms();
        if (wait_ms > 0) {
            uint64_t until = uv_now(a->loop) + (uint64_t)wait_ms;
            if (until > dl->d->paused_until)
                dl->d->paused_until = until;
        }
        a->stats.resumed++;
        a->stats.pending++;
        enqueue(dl->d, dl, false);
    }
    rec_unref(rec);
    free(al);
    free(text);
    cJSON_Delete(o);
    return 0;
}

int engine_alerts_create(const engine_alerts_options *opts, engine_alerts **out)
{
    engine_alerts *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->loop = opts->loop;
    a->ops = opts->outbox;
    a->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    a->max_inflight = opts->max_inflight > 0 ? opts->max_inflight : 4;
    a->base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : 1000;
    a->max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 300000;
    a->give_up_s = opts->give_up_s > 0 ? opts->give_up_s : 86400;
    a->rng = uv_hrtime() | 1;
    a->refs = 1;
    a->http = opts->http;
    if (!a->http) {
        /* Room for many receivers at once: a hanging one holds a connection until its
         * timeout, and a wait for a free connection would delay the others. */
        engine_http_options ho = {.max_total_connections = 512, .max_host_connections = 16};
        int rc = engine_http_create(a->loop, &ho, &a->http);
        if (rc != 0) {
            free(a);
            return rc;
        }
        a->own_http = true;
    }
    if (a->ops.scan) {
        int rc = a->ops.scan(a->ops.ctx, resume_one, a);
        if (rc != 0)
            engine_log_kv(ENGINE_LOG_ERROR, "outbox could not be read", "error",
                          storage_strerror(rc), NULL);
        if (a->stats.resumed)
            engine_logf(ENGINE_LOG_INFO, "alert deliveries resumed", "count=%llu",
                        (unsigned long long)a->stats.resumed);
    }
    for (dest *d = a->dests; d; d = d->next_all)
        pump(d);
    *out = a;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    dest *d = h->data;
    unref(d->a);
}

void engine_alerts_close(engine_alerts *a)
{
    if (!a || a->closing)
        return;
    a->closing = true;
    if (a->own_http)
        engine_http_close(a->http); /* in-flight callbacks run now, with -ECANCELED */
    for (dest *d = a->dests; d; d = d->next_all) {
        while (d->head) {
            delivery *dl = d->head;
            d->head = dl->next;
            delivery_free(dl);
        }
        d->tail = NULL;
        uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    }
    unref(a);
}

void engine_alerts_set_subs(engine_alerts *a, engine_subs *s)
{
    engine_subs_destroy(a->subs);
    a->subs = s;
}

void engine_alerts_get_stats(const engine_alerts *a, engine_alerts_stats *out)
{
    *out = a->stats;
}
