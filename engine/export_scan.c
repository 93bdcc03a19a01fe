/* export_scan.c: walks a whole store for the batch export of daily rows and episodes.
 *
 * The series of a store are "MN:code:interval" keys. The export needs them per outlet: the
 * oxygen-corrected average of a pollutant needs the outlet's O2 series, its emission mass the
 * outlet's flow series. So the catalog is read once and grouped by MN (consecutive series
 * usually share an MN, so the hash is consulted only when it changes), each outlet's O2 and
 * flow hours are read once, and then each pollutant's hours and daily records are read and
 * handed to daily.c. Every read goes through the caller's one reader, so the whole export
 * sees one snapshot of the store. Buffers grow once and are reused: nothing is allocated per
 * row.
 */
#include <errno.h>
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

/* ---- Reading ---------------------------------------------------------------------------- */

typedef struct buf {
    storage_point *p;
    size_t n, cap;
} buf;

/* Reads the points of sid in [from, to] into b (emptied first; sid 0: none). */
static int read_series(storage_reader *r, storage_sid sid, int64_t from, int64_t to, buf *b)
{
    b->n = 0;
    if (!sid)
        return 0;
    storage_iter *it;
    int rc = storage_iter_open(r, sid, from, to, &it);
    if (rc)
        return rc;
    for (;;) {
        if (b->n == b->cap && grow((void **)&b->p, &b->cap, b->n + 1, sizeof *b->p)) {
            rc = -ENOMEM;
            break;
        }
        rc = storage_iter_next(it, &b->p[b->n]);
        if (rc <= 0)
            break;
        b->n++;
    }
    storage_iter_close(it);
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

typedef struct scan {
    storage_reader *r;
    const engine_export_opts *o;
    const catalog *c;
    buf hours, days, o2, flow;
    engine_export_progress prog;
    int64_t from, to;            /* seconds read: [from_day, to_day + 1 day) */
} scan;

static int count_rows_daily(void *ud, const engine_daily_row *row)
{
    scan *s = ud;
    s->prog.rows++;
    return s->o->on_daily(s->o->ud, row);
}

static int count_rows_episode(void *ud, const engine_episode_row *row)
{
    scan *s = ud;
    s->prog.rows++;
    return s->o->on_episode(s->o->ud, row);
}

static int scan_group(scan *s, const group *g)
{
    const engine_export_opts *o = s->o;
    const engine_outlet *out = o->reg ? engine_registry_outlet_by_mn(o->reg, g->mn,
                                                                    strlen(g->mn))
                                      : NULL;
    const engine_facility *fac = out ? engine_registry_facility(o->reg, out->facility_id)
                                     : NULL;
    group_labels gl;
    labels_of(g, out, fac, &gl);
    if (!filter_match(o->filter, &gl, -1))
        return 0;
    const entry *fe = NULL;
    int flow_unit = ENGINE_FLOW_M3_S;
    if (!out || out->medium == ENGINE_MEDIUM_GAS)
        fe = find_code(s->c, g, GAS_FLOW_CODE);
    if (!fe && (!out || out->medium == ENGINE_MEDIUM_WATER)) {
        fe = find_code(s->c, g, WATER_FLOW_CODE);
        flow_unit = ENGINE_FLOW_L_S;
    }
    int rc = read_series(s->r, hours_of(fe), s->from, s->to, &s->flow);
    if (rc == 0)
        rc = read_series(s->r, hours_of(find_code(s->c, g, O2_CODE)), s->from, s->to, &s->o2);
    for (uint32_t k = g->first; rc == 0 && k; k = s->c->e[k - 1].next) {
        const entry *e = &s->c->e[k - 1];
        gl.v[FL_POLLUTANT] = e->code;
        if (!filter_match(o->filter, &gl, FL_POLLUTANT))
            continue;
        if ((rc = read_series(s->r, hours_of(e), s->from, s->to, &s->hours)) ||
            (rc = read_series(s->r, e->day, s->from, s->to, &s->days)))
            break;
        engine_daily_input in = {
            .mn = g->mn, .pollutant = e->code, .outlet = out, .facility = fac,
            .hours = s->hours.p, .nhours = s->hours.n, .days = s->days.p, .ndays = s->days.n,
            .o2 = s->o2.p, .no2 = s->o2.n, .flow = s->flow.p, .nflow = s->flow.n,
            .flow_unit = flow_unit, .from_day = o->from_day, .to_day = o->to_day,
        };
        if (o->on_daily && (rc = engine_daily_rows(o->reg, &in, o->rollup, count_rows_daily, s)))
            break;
        if (o->on_episode &&
            (rc = engine_episode_rows(o->reg, &in, o->rollup, count_rows_episode, s)))
            break;
        if (++s->prog.series_done % PROGRESS_EVERY == 0 && o->on_progress)
            rc = o->on_progress(o->ud, &s->prog);
    }
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

int engine_export_scan(storage *st, storage_reader *r, const engine_export_opts *o)
{
    catalog c = {0};
    scan s = {.r = r, .o = o, .c = &c, .from = o->from_day, .to = o->to_day + 86399};
    int rc = catalog_load(st, &c);
    if (rc == 0) {
        s.prog.series_total = count_selected(o, &c);
        for (size_t i = 0; rc == 0 && i < c.ng; i++)
            rc = scan_group(&s, &c.g[i]);
    }
    if (rc == 0 && o->on_progress)
        rc = o->on_progress(o->ud, &s.prog);
    free(s.hours.p);
    free(s.days.p);
    free(s.o2.p);
    free(s.flow.p);
    free(c.g);
    free(c.e);
    return rc;
}
