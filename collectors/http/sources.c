/* sources.c: the sources file of the HTTP poller (README.md documents it). JSON, because a
 * mapping is nested and JSON says so plainly: "defaults" holds a whole source definition,
 * each entry of "sources" names a source, gives its variables and overrides what differs.
 * Definitions are shared: sources that override nothing point at the defaults' profile, and
 * sources with the same overrides at one profile built for them, so a national fleet costs
 * its names and variables. Every template is expanded once at load with the source's
 * variables, so a typo in a placeholder is an error naming the source, not a failed poll at
 * 3 a.m. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http_src.h"

#define MAX_FILE (256u << 20)

typedef struct ctx {
    char *err;
    size_t errlen;
    const char *file;
    char where[96];
} ctx;

static int fail(ctx *c, const char *field, const char *what)
{
    snprintf(c->err, c->errlen, "%s: %s%s%s: %s", c->file, c->where, *c->where ? "." : "",
             field, what);
    return -EINVAL;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* "30s", "5m", "1h", "1d", "250ms", or a JSON number of seconds, into milliseconds. */
static int read_duration_ms(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble < 1e10))
            return -EINVAL;
        *out = (int64_t)(v->valuedouble * 1000);
        return 0;
    }
    if (!cJSON_IsString(v))
        return -EINVAL;
    char *end;
    const char *s = v->valuestring;
    long long n = strtoll(s, &end, 10);
    if (end == s || n < 0 || n > 1000000000)
        return -EINVAL;
    int64_t mul = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") || !*end ? 1000
                : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000
                : !strcmp(end, "d") ? 86400000 : -1;
    if (mul < 0)
        return -EINVAL;
    *out = n * mul;
    return 0;
}

static int get_duration_s(ctx *c, const cJSON *o, const char *key, int64_t def, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int64_t ms;
    if (!v) {
        *out = def;
        return 0;
    }
    if (read_duration_ms(v, &ms) != 0)
        return fail(c, key, "expected a duration such as \"30s\", \"10m\", \"1h\", \"1d\"");
    *out = ms / 1000;
    return 0;
}

static int get_string(ctx *c, const cJSON *o, const char *key, const char *def, bool required,
                      char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required && !def)
            return fail(c, key, "missing");
        *out = dup_str(def);
        return def && !*out ? -ENOMEM : 0;
    }
    if (!cJSON_IsString(v))
        return fail(c, key, "expected a string");
    *out = strdup(v->valuestring);
    return *out ? 0 : -ENOMEM;
}

static int get_bool(ctx *c, const cJSON *o, const char *key, bool def, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return fail(c, key, "expected true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_int(ctx *c, const cJSON *o, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        char what[80];
        snprintf(what, sizeof what, "expected a whole number from %lld to %lld", (long long)lo,
                 (long long)hi);
        return fail(c, key, what);
    }
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_zone(ctx *c, const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = ENGINE_CST_OFFSET_S;
    if (v && (!cJSON_IsString(v) || http_zone_parse(v->valuestring, out) != 0))
        return fail(c, key, "expected a zone such as \"+08:00\" or \"Z\"");
    return 0;
}

static int get_timefmt(ctx *c, const cJSON *o, const char *key, const char *zkey,
                       http_timefmt *out)
{
    int64_t off;
    int rc = get_zone(c, o, zkey, &off);
    if (rc)
        return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *name = v && cJSON_IsString(v) ? v->valuestring : v ? "" : "iso";
    if (http_timefmt_parse(name, off, out) != 0)
        return fail(c, key, "expected iso, unix, unix_ms, or a pattern of %Y %m %d %H %M %S %z");
    return 0;
}


static int parse_mapping(ctx *c, const cJSON *o, http_mapping *m)
{
    int rc;
    if (!cJSON_IsObject(o))
        return fail(c, "mapping", "missing, or not an object");
    char saved[96];
    snprintf(saved, sizeof saved, "%s", c->where);
    snprintf(c->where + strlen(c->where), sizeof c->where - strlen(c->where), "%smapping",
             *saved ? "." : "");
    if ((rc = get_string(c, o, "records", "", false, &m->records)) ||
        (rc = get_string(c, o, "mn", NULL, false, &m->mn)) ||
        (rc = get_string(c, o, "code", NULL, false, &m->code)) ||
        (rc = get_string(c, o, "time", NULL, true, &m->time)) ||
        (rc = get_string(c, o, "value", NULL, true, &m->value)) ||
        (rc = get_string(c, o, "flag", NULL, false, &m->flag)) ||
        (rc = get_timefmt(c, o, "time_format", "time_zone", &m->time_fmt)))
        goto out;
    const cJSON *marks = cJSON_GetObjectItemCaseSensitive(o, "time_marks");
    if (marks && (!cJSON_IsString(marks) || (strcmp(marks->valuestring, "start") != 0 &&
                                              strcmp(marks->valuestring, "end") != 0))) {
        rc = fail(c, "time_marks", "expected \"start\" or \"end\" (of the period)");
        goto out;
    }
    m->time_is_end = marks && !strcmp(marks->valuestring, "end");
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(o, "columns"), *col;
    if (cols && !cJSON_IsObject(cols)) {
        rc = fail(c, "columns", "expected an object of column: path");
        goto out;
    }
    cJSON_ArrayForEach(col, cols)
    {
        int k = storage_col_parse(col->string);
        if (k < 0 || k == STORAGE_COL_AVG || !cJSON_IsString(col)) {
            rc = fail(c, "columns", "expected min, max, cou, zsavg, zsmin, zsmax: \"path\"");
            goto out;
        }
        free(m->cols[k]);
        if (!(m->cols[k] = strdup(col->valuestring))) {
            rc = -ENOMEM;
            goto out;
        }
    }
out:
    snprintf(c->where, sizeof c->where, "%s", saved);
    return rc;
}

static int parse_paging(ctx *c, const cJSON *o, http_paging *p)
{
    int rc;
    p->on = o != NULL;
    if (!o)
        return 0;
    if (!cJSON_IsObject(o))
        return fail(c, "paging", "expected an object");
    if ((rc = get_int(c, o, "start", 1, 0, 1000000, &p->start)) ||
        (rc = get_int(c, o, "size", 100, 1, 100000, &p->size)) ||
        (rc = get_int(c, o, "max_pages", 1000, 1, 1000000, &p->max_pages)) ||
        (rc = get_string(c, o, "pages", NULL, false, &p->pages)) ||
        (rc = get_string(c, o, "total", NULL, false, &p->total)))
        return rc;
    return 0;
}

static void profile_free(http_profile *p)
{
    if (!p)
        return;
    free(p->url);
    free(p->method);
    free(p->body);
    free(p->bearer_token);
    for (size_t i = 0; i < p->nheaders; i++)
        free(p->headers[i]);
    free(p->headers);
    http_mapping *m = &p->map;
    free(m->records);
    free(m->mn);
    free(m->code);
    free(m->time);
    free(m->value);
    free(m->flag);
    for (int i = 0; i < STORAGE_NCOLS; i++)
        free(m->cols[i]);
    free(p->paging.pages);
    free(p->paging.total);
    free(p);
}

static int parse_interval(ctx *c, const cJSON *o, http_profile *p)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "series_interval");
    const char *name = v && cJSON_IsString(v) ? v->valuestring : v ? "" : "hour";
    static const char *const names[STORAGE_NIV] = {"rtd", "min", "hour", "day"};
    static const int64_t periods[STORAGE_NIV] = {60, 600, 3600, 86400};
    p->series_iv = -1;
    for (int i = 0; i < STORAGE_NIV; i++)
        if (!strcmp(name, names[i]))
            p->series_iv = i;
    if (p->series_iv < 0)
        return fail(c, "series_interval", "expected rtd, min, hour or day");
    int rc = get_duration_s(c, o, "period", periods[p->series_iv], &p->period_s);
    if (rc == 0 && (p->period_s < 1 || (p->period_s < 86400 ? 86400 % p->period_s != 0
                                                             : p->period_s != 86400)))
        return fail(c, "period", "must divide a day, or be one day");
    return rc;
}

/* A profile from a full definition (the defaults merged with a source's overrides). */
static int parse_profile(ctx *c, const cJSON *o, http_profile **out)
{
    http_profile *p = calloc(1, sizeof *p);
    int64_t timeout_s = 0;
    int rc = p ? 0 : -ENOMEM;
    if (rc == 0 && !cJSON_IsObject(o))
        rc = fail(c, "defaults", "expected an object");
    if (rc || (rc = get_string(c, o, "url", NULL, true, &p->url)) ||
        (rc = get_string(c, o, "body", NULL, false, &p->body)) ||
        (rc = get_string(c, o, "method", p->body ? "POST" : "GET", false, &p->method)) ||
        (rc = get_string(c, o, "bearer_token", NULL, false, &p->bearer_token)) ||
        (rc = get_duration_s(c, o, "timeout", 30, &timeout_s)) ||
        (rc = get_duration_s(c, o, "interval", 3600, &p->interval_s)) ||
        (rc = get_duration_s(c, o, "spread", p->interval_s, &p->spread_s)) ||
        (rc = get_duration_s(c, o, "lag", 600, &p->lag_s)) ||
        (rc = get_duration_s(c, o, "lookback", p->interval_s, &p->lookback_s)) ||
        (rc = get_duration_s(c, o, "overlap", 0, &p->overlap_s)) ||
        (rc = get_duration_s(c, o, "max_window", 86400, &p->max_window_s)) ||
        (rc = get_duration_s(c, o, "retry_base", 30, &p->retry_base_s)) ||
        (rc = get_duration_s(c, o, "retry_max", p->interval_s, &p->retry_max_s)) ||
        (rc = get_bool(c, o, "conditional", true, &p->conditional)) ||
        (rc = get_timefmt(c, o, "window_format", "window_zone", &p->window_fmt)) ||
        (rc = parse_interval(c, o, p)) ||
        (rc = parse_mapping(c, cJSON_GetObjectItemCaseSensitive(o, "mapping"), &p->map)) ||
        (rc = parse_paging(c, cJSON_GetObjectItemCaseSensitive(o, "paging"), &p->paging)))
        goto fail;
    if (strncmp(p->url, "http://", 7) != 0 && strncmp(p->url, "https://", 8) != 0) {
        rc = fail(c, "url", "must start with http:// or https://");
        goto fail;
    }
    if (p->interval_s < 1 || timeout_s < 1 || p->max_window_s < p->period_s) {
        rc = fail(c, "interval", "interval and timeout must be >= 1s, max_window >= period");
        goto fail;
    }
    p->timeout_ms = timeout_s > 86400 ? 86400000 : (int)(timeout_s * 1000);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(o, "headers"), *h;
    if (hs && !cJSON_IsArray(hs)) {
        rc = fail(c, "headers", "expected an array of \"Name: value\" strings");
        goto fail;
    }
    p->headers = calloc((size_t)cJSON_GetArraySize(hs) + 1, sizeof *p->headers);
    if (!p->headers) {
        rc = -ENOMEM;
        goto fail;
    }
    cJSON_ArrayForEach(h, hs)
    {
        if (!cJSON_IsString(h) || !strchr(h->valuestring, ':') ||
            strpbrk(h->valuestring, "\r\n")) {
            rc = fail(c, "headers", "expected \"Name: value\" strings on one line");
            goto fail;
        }
        if (!(p->headers[p->nheaders++] = strdup(h->valuestring))) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    *out = p;
    return 0;
fail:
    profile_free(p);
    return rc;
}

/* ---- Placeholders checked at load -------------------------------------------------------- */

static const char *const builtins[] = {"from", "to", "from_s", "to_s", "page", "page_size",
                                       "offset", "name", NULL};

static bool is_builtin(const char *n, size_t len)
{
    for (int i = 0; builtins[i]; i++)
        if (strlen(builtins[i]) == len && !strncmp(builtins[i], n, len))
            return true;
    return false;
}

const char *http_source_var(const http_source_def *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nvars; i++)
        if (strlen(s->vars[i].name) == len && !strncmp(s->vars[i].name, name, len))
            return s->vars[i].value;
    return NULL;
}

static const char *probe_var(void *arg, const char *name, size_t len)
{
    const http_source_def *s = arg;
    return is_builtin(name, len) ? "x" : http_source_var(s, name, len);
}

static int check_templates(ctx *c, const http_source_def *s)
{
    char buf[8192], e[160];
    const http_profile *p = s->prof;
    const char *fields[3] = {p->url, p->body, p->bearer_token};
    static const char *const names[3] = {"url", "body", "bearer_token"};
    for (int i = 0; i < 3; i++)
        if (fields[i] && http_template_expand(fields[i], false, probe_var, (void *)s, buf,
                                              sizeof buf, e, sizeof e) == -ENOENT)
            return fail(c, names[i], e);
    for (size_t i = 0; i < p->nheaders; i++)
        if (http_template_expand(p->headers[i], false, probe_var, (void *)s, buf, sizeof buf, e,
                                 sizeof e) == -ENOENT)
            return fail(c, "headers", e);
    return 0;
}

/* ---- Sources ------------------------------------------------------------------------- */

/* Open addressing over strings: profiles by their overrides' text, and names seen. */
typedef struct strset {
    char **keys;
    void **vals;
    size_t cap, n;
} strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The slot of key: its own, or the empty one where it goes. */
static size_t strset_slot(const strset *t, const char *key)
{
    size_t i = hash_str(key) & (t->cap - 1);
    while (t->keys[i] && strcmp(t->keys[i], key) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

static int strset_init(strset *t, size_t n)
{
    t->cap = 16;
    while (t->cap < n * 2 + 16)
        t->cap *= 2;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->vals = calloc(t->cap, sizeof *t->vals);
    t->n = 0;
    return t->keys && t->vals ? 0 : -ENOMEM;
}

static void strset_free(strset *t, bool free_keys)
{
    for (size_t i = 0; free_keys && t->keys && i < t->cap; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->vals);
}

static bool reserved_key(const char *k)
{
    return !strcmp(k, "name") || !strcmp(k, "vars");
}

/* The defaults with a source's overrides on top (mapping and paging merged key by key). */
static cJSON *merge(const cJSON *defaults, const cJSON *src)
{
    cJSON *m = defaults ? cJSON_Duplicate(defaults, true) : cJSON_CreateObject();
    const cJSON *k;
    if (!m)
        return NULL;
    cJSON_ArrayForEach(k, src)
    {
        if (reserved_key(k->string))
            continue;
        cJSON *old = cJSON_GetObjectItemCaseSensitive(m, k->string);
        if (old && cJSON_IsObject(old) && cJSON_IsObject(k) &&
            (!strcmp(k->string, "mapping") || !strcmp(k->string, "paging"))) {
            const cJSON *kk;
            cJSON_ArrayForEach(kk, k)
            {
                cJSON *d = cJSON_Duplicate(kk, true);
                if (!d || !cJSON_ReplaceItemInObjectCaseSensitive(old, kk->string, d)) {
                    if (d && !cJSON_AddItemToObject(old, kk->string, d))
                        cJSON_Delete(d);
                }
            }
            continue;
        }
        cJSON *d = cJSON_Duplicate(k, true);
        if (!d || (old ? !cJSON_ReplaceItemInObjectCaseSensitive(m, k->string, d)
                       : !cJSON_AddItemToObject(m, k->string, d))) {
            cJSON_Delete(d);
            cJSON_Delete(m);
            return NULL;
        }
    }
    return m;
}

static int add_profile(http_source_set *set, http_profile *p)
{
    http_profile **np = realloc(set->prof, (set->nprof + 1) * sizeof *np);
    if (!np)
        return -ENOMEM;
    set->prof = np;
    set->prof[set->nprof++] = p;
    return 0;
}

/* The profile of a source: the defaults' one, or one shared by the same overrides. */
static int source_profile(ctx *c, http_source_set *set, const cJSON *defaults,
                          http_profile **dflt, strset *cache, const cJSON *src,
                          const http_profile **out)
{
    bool own = false;
    const cJSON *k;
    cJSON_ArrayForEach(k, src) own |= !reserved_key(k->string);
    int rc;
    if (!own) {
        if (!*dflt) {
            char saved[sizeof c->where];
            memcpy(saved, c->where, sizeof saved);
            if (defaults)
                snprintf(c->where, sizeof c->where, "defaults");
            rc = parse_profile(c, defaults ? defaults : src, dflt);
            memcpy(c->where, saved, sizeof saved);
            if (rc != 0)
                return rc;
            if ((rc = add_profile(set, *dflt)) != 0) {
                profile_free(*dflt);
                *dflt = NULL;
                return rc;
            }
        }
        *out = *dflt;
        return 0;
    }
    cJSON *over = cJSON_CreateObject();
    cJSON_ArrayForEach(k, src) if (!reserved_key(k->string) && over)
        cJSON_AddItemToObject(over, k->string, cJSON_Duplicate(k, true));
    char *text = over ? cJSON_PrintUnformatted(over) : NULL;
    cJSON_Delete(over);
    if (!text)
        return -ENOMEM;
    size_t slot = strset_slot(cache, text);
    if (cache->keys[slot]) {
        free(text);
        *out = cache->vals[slot];
        return 0;
    }
    cJSON *merged = merge(defaults, src);
    http_profile *p = NULL;
    rc = merged ? parse_profile(c, merged, &p) : -ENOMEM;
    cJSON_Delete(merged);
    if (rc == 0 && (rc = add_profile(set, p)) != 0)
        profile_free(p);
    if (rc != 0 || cache->n * 2 >= cache->cap) { /* the cache is only a saving: when full, stop */
        free(text);
        *out = p;
        return rc;
    }
    cache->keys[slot] = text;
    cache->vals[slot] = p;
    cache->n++;
    *out = p;
    return 0;
}

static int parse_vars(ctx *c, const cJSON *v, http_source_def *s)
{
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return fail(c, "vars", "expected an object of name: value");
    s->vars = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *s->vars);
    if (!s->vars)
        return -ENOMEM;
    const cJSON *k;
    cJSON_ArrayForEach(k, v)
    {
        char num[32];
        const char *val = cJSON_IsString(k) ? k->valuestring : NULL;
        size_t nl = strlen(k->string);
        bool ok_name = nl > 0 && nl <= 32;
        for (size_t i = 0; i < nl; i++)
            ok_name &= (k->string[i] >= 'a' && k->string[i] <= 'z') ||
                       (k->string[i] >= '0' && k->string[i] <= '9') || k->string[i] == '_';
        if (!ok_name || is_builtin(k->string, nl))
            return fail(c, "vars", "names are 1-32 of [a-z0-9_] and not a built-in placeholder");
        if (cJSON_IsNumber(k)) {
            snprintf(num, sizeof num, "%.15g", k->valuedouble);
            val = num;
        }
        if (!val)
            return fail(c, "vars", "values are strings or numbers");
        http_var *x = &s->vars[s->nvars++];
        if (!(x->name = strdup(k->string)) || !(x->value = strdup(val)))
            return -ENOMEM;
    }
    return 0;
}

static int parse_source(ctx *c, http_source_set *set, const cJSON *defaults, http_profile **dflt,
                        strset *cache, strset *names, const cJSON *src, http_source_def *s)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(src, "name");
    if (!cJSON_IsObject(src))
        return fail(c, "", "expected an object");
    if (!cJSON_IsString(n) || !n->valuestring[0] || strlen(n->valuestring) > 200)
        return fail(c, "name", "missing, or not a string of 1-200 bytes");
    for (const char *p = n->valuestring; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail(c, "name", "holds a control character");
    size_t slot = strset_slot(names, n->valuestring);
    if (names->keys[slot])
        return fail(c, "name", "used by another source");
    if (!(s->name = strdup(n->valuestring)))
        return -ENOMEM;
    names->keys[slot] = s->name; /* borrowed: the set owns the names */
    names->n++;
    int rc = parse_vars(c, cJSON_GetObjectItemCaseSensitive(src, "vars"), s);
    if (rc == 0)
        rc = source_profile(c, set, defaults, dflt, cache, src, &s->prof);
    if (rc == 0)
        rc = check_templates(c, s);
    return rc;
}

int http_sources_parse(const char *text, size_t len, const char *name, http_source_set **out,
                       char *err, size_t errlen)
{
    ctx c = {.err = err, .errlen = errlen, .file = name};
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    http_source_set *set = calloc(1, sizeof *set);
    strset cache = {0}, names = {0};
    http_profile *dflt = NULL;
    int rc = set ? 0 : -ENOMEM;
    if (rc == 0 && !root) {
        snprintf(err, errlen, "%s: not JSON (at byte %zu)", name,
                 end && end >= text ? (size_t)(end - text) : 0);
        rc = -EINVAL;
    }
    const cJSON *defaults = cJSON_IsArray(root) ? NULL
                                                : cJSON_GetObjectItemCaseSensitive(root, "defaults");
    const cJSON *list = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "sources");
    if (rc == 0 && (!cJSON_IsArray(list) || (defaults && !cJSON_IsObject(defaults)))) {
        snprintf(err, errlen, "%s: expected {\"defaults\": {...}, \"sources\": [...]}", name);
        rc = -EINVAL;
    }
    size_t n = rc == 0 ? (size_t)cJSON_GetArraySize(list) : 0;
    if (rc == 0 && ((rc = strset_init(&cache, 64)) != 0 || (rc = strset_init(&names, n)) != 0))
        goto done;
    if (rc == 0 && !(set->src = calloc(n ? n : 1, sizeof *set->src)))
        rc = -ENOMEM;
    const cJSON *src, *items = rc == 0 ? list : NULL;
    size_t i = 0;
    cJSON_ArrayForEach(src, items)
    {
        snprintf(c.where, sizeof c.where, "sources[%zu]", i);
        rc = parse_source(&c, set, defaults, &dflt, &cache, &names, src, &set->src[i]);
        set->n = ++i;
        if (rc)
            break;
    }
done:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", name);
    cJSON_Delete(root);
    strset_free(&cache, true);
    strset_free(&names, false);
    if (rc != 0) {
        http_sources_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

int http_sources_load(const char *path, http_source_set **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *text = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    int rc = 0;
    if (size < 0 || (unsigned long)size > MAX_FILE || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot be read, or larger than 256 MiB", path);
        rc = -EINVAL;
    } else if (!(text = malloc((size_t)size + 1))) {
        rc = -ENOMEM;
    } else if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    }
    fclose(f);
    if (rc == 0)
        rc = http_sources_parse(text, (size_t)size, path, out, err, errlen);
    free(text);
    return rc;
}

void http_sources_free(http_source_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        http_source_def *s = &set->src[i];
        free(s->name);
        for (size_t k = 0; k < s->nvars; k++) {
            free(s->vars[k].name);
            free(s->vars[k].value);
        }
        free(s->vars);
    }
    free(set->src);
    for (size_t i = 0; i < set->nprof; i++)
        profile_free(set->prof[i]);
    free(set->prof);
    free(set);
}
