/* export_scan.c: walks a whole store for the batch export of daily rows and episodes.
 *
 * The series of a store are "MN:code:interval" keys. The export needs them per outlet: the
 * oxygen-corrected average of a pollutant needs the outlet's O2 series, its emission mass the
 * outlet's flow series. So the catalog is read once and grouped by MN (consecutive series
 * usually share an MN, so the hash is consulted only when it changes), each outlet's O2 and
 * flow hours are read once, and then each pollutant's hours and daily records are read and
 * handed to daily.c. Every read goes through the caller's one reader, so the whole export
 * sees one snapshot of the store. The work is split over two cores (see "Batches" below).
 * Batches are reused: nothing is allocated per row.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "strmap.h"

#define O2_CODE "a19001"
#define GAS_FLOW_CODE "a00000"
#define WATER_FLOW_CODE "w00000"
#define PROGRESS_EVERY 4096

/* ---- Filters ---------------------------------------------------------------------------- */

enum { FL_FACILITY, FL_USCC, FL_REGION, FL_INDUSTRY, FL_OUTLET, FL_MEDIUM, FL_MN, FL_POLLUTANT,
       FL_COUNT };
static const char *const label_names[FL_COUNT] = {
    "facility", "uscc", "region", "industry", "outlet", "medium", "mn", "pollutant",
};

int engine_export_filter_add(engine_export_filter *f, const char *expr, char *why,
                             size_t why_len)
{
    const char *eq = strchr(expr, '=');
    if (!eq || eq == expr) {
        snprintf(why, why_len, "filter '%s' is not label=value", expr);
        return -EINVAL;
    }
    size_t nl = (size_t)(eq - expr);
    int label = -1;
    for (int i = 0; i < FL_COUNT; i++)
        if (strlen(label_names[i]) == nl && memcmp(label_names[i], expr, nl) == 0)
            label = i;
    if (label < 0) {
        snprintf(why, why_len, "filter '%s': unknown label '%.*s' (known: facility, uscc, "
                 "region, industry, outlet, medium, mn, pollutant)", expr, (int)nl, expr);
        return -EINVAL;
    }
    const char *v = eq + 1;
    size_t vl = strlen(v);
    if (vl == 0 || v[0] == ',' || v[vl - 1] == ',' || strstr(v, ",,")) {
        snprintf(why, why_len, "filter '%s': empty value", expr);
        return -EINVAL;
    }
    if (vl >= sizeof f->terms[0].values) {
        snprintf(why, why_len, "filter '%s': value longer than %zu bytes", expr,
                 sizeof f->terms[0].values - 1);
        return -EINVAL;
    }
    if (f->nterms == ENGINE_FILTER_MAX_TERMS) {
        snprintf(why, why_len, "more than %d filters", ENGINE_FILTER_MAX_TERMS);
        return -ERANGE;
    }
    f->terms[f->nterms].label = label;
    memcpy(f->terms[f->nterms].values, v, vl + 1);
    f->nterms++;
    return 0;
}

/* Whether have matches one of the comma-separated values (a prefix of have for region). */
static bool value_match(const char *values, const char *have, bool prefix)
{
    size_t hl = strlen(have);
    for (const char *p = values;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (hl && (prefix ? n <= hl : n == hl) && memcmp(p, have, n) == 0)
            return true;
        if (!c)
            return false;
        p = c + 1;
    }
}

typedef struct group_labels {
    const char *v[FL_COUNT];
} group_labels;

/* Matches the terms about label `only` (-1: every label but pollutant). */
static bool filter_match(const engine_export_filter *f, const group_labels *g, int only)
{
    if (!f)
        return true;
    for (size_t i = 0; i < f->nterms; i++) {
        int l = f->terms[i].label;
        if (only < 0 ? l == FL_POLLUTANT : l != only)
            continue;
        if (!value_match(f->terms[i].values, g->v[l] ? g->v[l] : "", l == FL_REGION))
            return false;
    }
    return true;
}

/* ---- The catalog grouped by MN ---------------------------------------------------------- */

typedef struct entry {
    char code[ENGINE_POLLUTANT_SIZE];
    storage_sid hour, calc, day;
    uint32_t next;        /* index + 1 of the group's next entry; 0 ends */
} entry;

typedef struct group {
    char mn[ENGINE_ID_SIZE];
    uint32_t first, last; /* index + 1 of its entries */
    uint32_t count;
} group;

typedef struct catalog {
    group *g;
    size_t ng, capg;
    entry *e;
    size_t ne, cape;
} catalog;

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 1024;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * size);
    if (!n)
        return -ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

/* Splits "MN:code:interval"; false for any other key or an interval the export ignores. */
static bool split_key(char *key, char **mn, char **code, int *kind)
{
    char *a = strchr(key, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!a || !b || strchr(b + 1, ':') || a == key || b == a + 1 ||
        (size_t)(a - key) >= ENGINE_ID_SIZE || (size_t)(b - a - 1) >= ENGINE_POLLUTANT_SIZE)
        return false;
    *a = *b = 0;
    *mn = key;
    *code = a + 1;
    if (strcmp(b + 1, "hour") == 0)
        *kind = 0;
    else if (strcmp(b + 1, "hour.calc") == 0)
        *kind = 1;
    else if (strcmp(b + 1, "day") == 0)
        *kind = 2;
    else
        return false;
    return true;
}

static int catalog_add(catalog *c, strmap *by_mn, size_t *last_g, const char *mn,
                       const char *code, int kind, storage_sid sid)
{
    size_t gi = *last_g;
    if (gi >= c->ng || strcmp(c->g[gi].mn, mn) != 0) {
        void *v = strmap_get(by_mn, mn);
        if (v) {
            gi = (size_t)(uintptr_t)v - 1;
        } else {
            if (grow((void **)&c->g, &c->capg, c->ng + 1, sizeof *c->g))
                return -ENOMEM;
            gi = c->ng++;
            memset(&c->g[gi], 0, sizeof c->g[gi]);
            memcpy(c->g[gi].mn, mn, strlen(mn) + 1); /* split_key checked its length */
            if (strmap_put(by_mn, mn, (void *)(uintptr_t)(gi + 1), NULL))
                return -ENOMEM;
        }
        *last_g = gi;
    }
    group *g = &c->g[gi];
    entry *e = NULL;
    for (uint32_t k = g->first; k; k = c->e[k - 1].next)
        if (strcmp(c->e[k - 1].code, code) == 0) {
            e = &c->e[k - 1];
            break;
        }
    if (!e) {
        if (grow((void **)&c->e, &c->cape, c->ne + 1, sizeof *c->e))
            return -ENOMEM;
        e = &c->e[c->ne++];
        memset(e, 0, sizeof *e);
        memcpy(e->code, code, strlen(code) + 1);
        uint32_t idx = (uint32_t)c->ne;
        if (g->last)
            c->e[g->last - 1].next = idx;
        else
            g->first = idx;
        g->last = idx;
        g->count++;
    }
    if (kind == 0)
        e->hour = sid;
    else if (kind == 1)
        e->calc = sid;
    else
        e->day = sid;
    return 0;
}

static int catalog_load(storage *st, catalog *c)
{
    strmap *by_mn;
    if (strmap_create(&by_mn))
        return -ENOMEM;
    uint32_t n = storage_series_count(st);
    size_t last_g = SIZE_MAX;
    int rc = 0;
    char key[ENGINE_SERIES_KEY_MAX + 1];
    for (storage_sid sid = 1; rc == 0 && sid <= n; sid++) {
        char *mn, *code;
        int kind;
        if (storage_series_key(st, sid, key, sizeof key) != 0 ||
            !split_key(key, &mn, &code, &kind))
            continue;
        rc = catalog_add(c, by_mn, &last_g, mn, code, kind, sid);
    }
    strmap_destroy(by_mn, NULL);
    return rc;
}

/* ---- Batches ---------------------------------------------------------------------------- */

/* The work splits over two threads. The caller's thread reads the store (one reader, one
 * snapshot: an LMDB read transaction belongs to the thread that opened it) into a batch of
 * points, grouped by MN. A worker thread takes batches and hands rows to the callbacks
 * (formatting and writing them). Who rolls the points up depends on who has time: when the
 * worker is free as a batch fills (a day of many series: reading dominates), it gets the
 * points and rolls them up itself; when it is still busy (a year of few series: rows
 * dominate), the reading thread rolls the batch up into rows before handing it over. Every
 * pointer in a row stays valid for the whole scan (catalog, registry, static text), so rows
 * are copied as they are. */

typedef struct work_entry {
    const entry *e;
    size_t h_off, h_n, d_off, d_n;
} work_entry;

typedef struct work_group {
    const group *g;
    const engine_outlet *out;
    const engine_facility *fac;
    int flow_unit;
    size_t o2_off, o2_n, fl_off, fl_n;
    size_t first, n;             /* its entries */
} work_group;

typedef struct qrow {
    bool episode;
    union {
        engine_daily_row d;
        engine_episode_row e;
    } u;
} qrow;

typedef struct batch {
    storage_point *pts;
    size_t npts, cappts;
    work_group *groups;
    size_t ng, capg;
    work_entry *ents;
    size_t ne, cape;
    qrow *rows;                  /* the rows, once rolled up on the reading thread */
    size_t nrows, caprows;
    bool rolled;
    uint64_t series_done;        /* series read when the batch was handed over */
} batch;

#define BATCH_POINTS (1u << 16)
#define BATCH_GROUPS 1024

typedef struct scan {
    const engine_export_opts *o;
    const catalog *c;
    storage_reader *r;
    int64_t from, to;            /* seconds read: [from_day, to_day + 1 day) */
    batch b[2];
    int cur;                     /* the batch being filled */
    int full[2];                 /* 1: handed to the worker; 2: the last one */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int rc;                      /* the first error of either side */
    uint64_t series_done, series_total;
    engine_export_progress prog; /* the worker's */
} scan;

static void batch_free(batch *b)
{
    free(b->pts);
    free(b->groups);
    free(b->ents);
    free(b->rows);
}

/* ---- Reading: the caller's thread ------------------------------------------------------- */

/* Appends the points of sid in [from, to] to b; *off and *n say where (sid 0: none). */
static int read_series(storage_reader *r, storage_sid sid, int64_t from, int64_t to, batch *b,
                       size_t *off, size_t *n)
{
    *off = b->npts;
    *n = 0;
    if (!sid)
        return 0;
    storage_iter *it;
    int rc = storage_iter_open(r, sid, from, to, &it);
    if (rc)
        return rc;
    for (;;) {
        if (b->npts == b->cappts &&
            grow((void **)&b->pts, &b->cappts, b->npts + 1, sizeof *b->pts)) {
            rc = -ENOMEM;
            break;
        }
        rc = storage_iter_next(it, &b->pts[b->npts]);
        if (rc <= 0)
            break;
        b->npts++;
    }
    storage_iter_close(it);
    *n = b->npts - *off;
    return rc;
}

static const entry *find_code(const catalog *c, const group *g, const char *code)
{
    for (uint32_t k = g->first; k; k = c->e[k - 1].next)
        if (strcmp(c->e[k - 1].code, code) == 0)
            return &c->e[k - 1];
    return NULL;
}

static storage_sid hours_of(const entry *e)
{
    return !e ? 0 : e->hour ? e->hour : e->calc;
}

static void labels_of(const group *g, const engine_outlet *o, const engine_facility *f,
                      group_labels *l)
{
    memset(l, 0, sizeof *l);
    l->v[FL_MN] = g->mn;
    if (o) {
        l->v[FL_OUTLET] = o->code;
        l->v[FL_MEDIUM] = o->medium == ENGINE_MEDIUM_WATER ? "water" : "gas";
    }
    if (f) {
        l->v[FL_FACILITY] = f->id;
        l->v[FL_USCC] = f->uscc;
        l->v[FL_REGION] = f->region;
        l->v[FL_INDUSTRY] = f->industry;
    }
}

/* Reads one MN's selected series into b (nothing when the filter leaves none). */
static int read_group(scan *s, const group *g, batch *b)
{
    const engine_export_opts *o = s->o;
    const catalog *c = s->c;
    const engine_outlet *out = o->reg ? engine_registry_outlet_by_mn(o->reg, g->mn,
                                                                    strlen(g->mn))
                                      : NULL;
    const engine_facility *fac = out ? engine_registry_facility(o->reg, out->facility_id)
                                     : NULL;
    group_labels gl;
    labels_of(g, out, fac, &gl);
    if (!filter_match(o->filter, &gl, -1))
        return 0;
    if (grow((void **)&b->groups, &b->capg, b->ng + 1, sizeof *b->groups))
        return -ENOMEM;
    work_group *w = &b->groups[b->ng];
    *w = (work_group){.g = g, .out = out, .fac = fac, .flow_unit = ENGINE_FLOW_M3_S,
                      .first = b->ne};
    const entry *fe = NULL;
    if (!out || out->medium == ENGINE_MEDIUM_GAS)
        fe = find_code(c, g, GAS_FLOW_CODE);
    if (!fe && (!out || out->medium == ENGINE_MEDIUM_WATER)) {
        fe = find_code(c, g, WATER_FLOW_CODE);
        w->flow_unit = ENGINE_FLOW_L_S;
    }
    const entry *oe = find_code(c, g, O2_CODE);
    int rc = read_series(s->r, hours_of(fe), s->from, s->to, b, &w->fl_off, &w->fl_n);
    if (rc == 0)
        rc = read_series(s->r, hours_of(oe), s->from, s->to, b, &w->o2_off, &w->o2_n);
    for (uint32_t k = g->first; rc == 0 && k; k = c->e[k - 1].next) {
        const entry *e = &c->e[k - 1];
        gl.v[FL_POLLUTANT] = e->code;
        if (!filter_match(o->filter, &gl, FL_POLLUTANT))
            continue;
        if (grow((void **)&b->ents, &b->cape, b->ne + 1, sizeof *b->ents))
            return -ENOMEM;
        work_entry *we = &b->ents[b->ne];
        we->e = e;
        if (e == fe || e == oe) { /* the flow and O2 hours are read already */
            we->h_off = e == fe ? w->fl_off : w->o2_off;
            we->h_n = e == fe ? w->fl_n : w->o2_n;
        } else if ((rc = read_series(s->r, hours_of(e), s->from, s->to, b, &we->h_off,
                                     &we->h_n))) {
            break;
        }
        if ((rc = read_series(s->r, e->day, s->from, s->to, b, &we->d_off, &we->d_n)))
            break;
        b->ne++;
        s->series_done++;
    }
    w->n = b->ne - w->first;
    b->ng++;
    return rc;
}

/* ---- Rolling up: on either thread ------------------------------------------------------- */

/* Where rows go: into the batch (reading thread) or straight to the callbacks (worker). */
typedef struct sink {
    scan *s;
    batch *b;                    /* NULL: to the callbacks */
} sink;

static qrow *queue(batch *b)
{
    if (grow((void **)&b->rows, &b->caprows, b->nrows + 1, sizeof *b->rows))
        return NULL;
    return &b->rows[b->nrows++];
}

static int to_daily(void *ud, const engine_daily_row *row)
{
    sink *k = ud;
    if (!k->b) {
        k->s->prog.rows++;
        return k->s->o->on_daily(k->s->o->ud, row);
    }
    qrow *q = queue(k->b);
    if (!q)
        return -ENOMEM;
    q->episode = false;
    q->u.d = *row;
    return 0;
}

static int to_episode(void *ud, const engine_episode_row *row)
{
    sink *k = ud;
    if (!k->b) {
        k->s->prog.rows++;
        return k->s->o->on_episode(k->s->o->ud, row);
    }
    qrow *q = queue(k->b);
    if (!q)
        return -ENOMEM;
    q->episode = true;
    q->u.e = *row;
    return 0;
}

/* Rolls every series of b up; rows go to k. */
static int roll_up(const engine_export_opts *o, const batch *b, sink *k)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->ng; i++) {
        const work_group *w = &b->groups[i];
        for (size_t j = w->first; rc == 0 && j < w->first + w->n; j++) {
            const work_entry *we = &b->ents[j];
            engine_daily_input in = {
                .mn = w->g->mn, .pollutant = we->e->code, .outlet = w->out,
                .facility = w->fac, .hours = b->pts + we->h_off, .nhours = we->h_n,
                .days = b->pts + we->d_off, .ndays = we->d_n, .o2 = b->pts + w->o2_off,
                .no2 = w->o2_n, .flow = b->pts + w->fl_off, .nflow = w->fl_n,
                .flow_unit = w->flow_unit, .from_day = o->from_day, .to_day = o->to_day,
            };
            if (o->on_daily)
                rc = engine_daily_rows(o->reg, &in, o->rollup, to_daily, k);
            if (rc == 0 && o->on_episode)
                rc = engine_episode_rows(o->reg, &in, o->rollup, to_episode, k);
        }
    }
    return rc;
}

/* ---- Writing: the worker thread --------------------------------------------------------- */

static int deliver(scan *s, const batch *b)
{
    const engine_export_opts *o = s->o;
    int rc = 0;
    if (b->rolled) {
        for (size_t i = 0; rc == 0 && i < b->nrows; i++) {
            rc = b->rows[i].episode ? o->on_episode(o->ud, &b->rows[i].u.e)
                                    : o->on_daily(o->ud, &b->rows[i].u.d);
            s->prog.rows++;
        }
    } else {
        sink k = {s, NULL};
        rc = roll_up(o, b, &k);
    }
    uint64_t before = s->prog.series_done;
    s->prog.series_done = b->series_done;
    if (rc == 0 && o->on_progress &&
        before / PROGRESS_EVERY != s->prog.series_done / PROGRESS_EVERY)
        rc = o->on_progress(o->ud, &s->prog);
    return rc;
}

static void *worker(void *arg)
{
    scan *s = arg;
    for (int i = 0;; i ^= 1) {
        pthread_mutex_lock(&s->mu);
        while (!s->full[i] && s->rc == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        int last = s->full[i] == 2;
        bool stop = s->rc != 0;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            return NULL;
        int rc = deliver(s, &s->b[i]);
        if (rc == 0 && last && s->o->on_progress)
            rc = s->o->on_progress(s->o->ud, &s->prog);
        pthread_mutex_lock(&s->mu);
        s->full[i] = 0;
        if (rc && !s->rc)
            s->rc = rc;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (last || rc)
            return NULL;
    }
}

/* Hands the current batch to the worker (last: no more follow), rolled up here first if the
 * worker is still busy with the other one, and waits until the other one is free. */
static int hand_over(scan *s, bool last)
{
    int i = s->cur;
    batch *b = &s->b[i];
    b->series_done = s->series_done;
    pthread_mutex_lock(&s->mu);
    bool busy = s->full[i ^ 1] != 0;
    pthread_mutex_unlock(&s->mu);
    b->rolled = busy;
    b->nrows = 0;
    if (busy) {
        sink k = {s, b};
        int rc = roll_up(s->o, b, &k);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&s->mu);
    s->full[i] = last ? 2 : 1;
    pthread_cond_broadcast(&s->cv);
    while (s->full[i ^ 1] && s->rc == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = s->rc;
    pthread_mutex_unlock(&s->mu);
    s->cur = i ^ 1;
    b = &s->b[s->cur];
    b->npts = b->ng = b->ne = b->nrows = 0;
    return rc;
}

/* Pollutant series of the outlets the filter selects, for the progress total. */
static uint64_t count_selected(const engine_export_opts *o, const catalog *c)
{
    uint64_t n = 0;
    for (size_t i = 0; i < c->ng; i++) {
        const group *g = &c->g[i];
        if (!o->filter || o->filter->nterms == 0) {
            n += g->count;
            continue;
        }
        const engine_outlet *out = o->reg ? engine_registry_outlet_by_mn(o->reg, g->mn,
                                                                        strlen(g->mn))
                                          : NULL;
        group_labels gl;
        labels_of(g, out, out ? engine_registry_facility(o->reg, out->facility_id) : NULL,
                  &gl);
        if (!filter_match(o->filter, &gl, -1))
            continue;
        for (uint32_t k = g->first; k; k = c->e[k - 1].next) {
            gl.v[FL_POLLUTANT] = c->e[k - 1].code;
            n += filter_match(o->filter, &gl, FL_POLLUTANT);
        }
    }
    return n;
}

static int read_all(scan *s)
{
    int rc = 0;
    for (size_t gi = 0; rc == 0 && gi < s->c->ng; gi++) {
        batch *b = &s->b[s->cur];
        rc = read_group(s, &s->c->g[gi], b);
        if (rc == 0 && (b->npts >= BATCH_POINTS || b->ng >= BATCH_GROUPS))
            rc = hand_over(s, false);
    }
    if (rc == 0)
        return hand_over(s, true);
    pthread_mutex_lock(&s->mu); /* stop the worker */
    if (!s->rc)
        s->rc = rc;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int engine_export_scan(storage *st, storage_reader *r, const engine_export_opts *o)
{
    catalog c = {0};
    scan s = {.o = o, .c = &c, .r = r, .from = o->from_day, .to = o->to_day + 86399};
    pthread_t th;
    int rc = catalog_load(st, &c);
    if (rc == 0) {
        s.series_total = s.prog.series_total = count_selected(o, &c);
        pthread_mutex_init(&s.mu, NULL);
        pthread_cond_init(&s.cv, NULL);
        if (pthread_create(&th, NULL, worker, &s) != 0) {
            rc = -EAGAIN;
        } else {
            int rrc = read_all(&s);
            pthread_join(th, NULL);
            rc = s.rc ? s.rc : rrc;
        }
        pthread_cond_destroy(&s.cv);
        pthread_mutex_destroy(&s.mu);
    }
    batch_free(&s.b[0]);
    batch_free(&s.b[1]);
    free(c.g);
    free(c.e);
    return rc;
}
