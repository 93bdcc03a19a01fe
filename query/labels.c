/* labels.c: label filters and the labels of series, for the commands that select series
 * by label (TS.MRANGE, TS.MGET, TS.QUERYINDEX, CEMS.LATEST ...).
 *
 * A CEMS series key says most of what one filters on: "MN:code:interval" names the DAQ unit,
 * the pollutant and the interval, and the registry, looked up by MN, adds the facility, its
 * credit code, region and industry, the outlet and its medium. Deriving labels instead of
 * storing them keeps them right when the registry changes. Series imported under other names
 * carry the labels stored with them. The cache holds each series' key and labels and an
 * index label=value -> ascending series ids, so a filter with a label=value expression
 * visits only the series that have that pair; it is rebuilt whole when the registry is
 * replaced or series are added (both rare next to queries).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

/* ---- Filter parsing --------------------------------------------------------------------- */

static int copy_text(char *dst, const char *p, size_t n)
{
    if (n >= QF_MAX_TEXT || memchr(p, 0, n) || memchr(p, '\n', n) || memchr(p, '=', n))
        return -EINVAL;
    memcpy(dst, p, n);
    dst[n] = 0;
    return 0;
}

static int parse_values(qf_term *t, const char *p, size_t n)
{
    t->nvalues = 0;
    if (n >= 2 && p[0] == '(' && p[n - 1] == ')') {
        p++;
        n -= 2;
        for (;;) {
            const char *comma = memchr(p, ',', n);
            size_t k = comma ? (size_t)(comma - p) : n;
            if (t->nvalues == QF_MAX_VALUES || copy_text(t->values[t->nvalues], p, k) != 0)
                return -EINVAL;
            t->nvalues++;
            if (!comma)
                return 0;
            p += k + 1;
            n -= k + 1;
        }
    }
    if (memchr(p, '(', n) || memchr(p, ')', n) || memchr(p, ',', n))
        return -EINVAL;
    if (copy_text(t->values[0], p, n) != 0)
        return -EINVAL;
    t->nvalues = 1;
    return 0;
}

int qfilter_parse(size_t argc, const resp_arg *argv, qfilter *f, char *err, size_t errlen)
{
    f->nterms = 0;
    bool positive = false;
    if (argc == 0) {
        snprintf(err, errlen, "ERR TSDB: FILTER needs at least one label=value expression");
        return -EINVAL;
    }
    for (size_t i = 0; i < argc; i++) {
        const char *p = argv[i].ptr;
        size_t n = argv[i].len;
        const char *eq = memchr(p, '=', n);
        if (f->nterms == QF_MAX_TERMS) {
            snprintf(err, errlen, "ERR TSDB: FILTER has more than %d expressions",
                     QF_MAX_TERMS);
            return -EINVAL;
        }
        qf_term *t = &f->terms[f->nterms];
        size_t nl = eq ? (size_t)(eq - p) : 0;
        t->negate = eq && nl > 0 && p[nl - 1] == '!';
        if (t->negate)
            nl--;
        if (!eq || nl == 0 || copy_text(t->name, p, nl) != 0 ||
            memchr(p, '(', nl) || memchr(p, ',', nl) ||
            parse_values(t, eq + 1, n - (size_t)(eq + 1 - p)) != 0) {
            snprintf(err, errlen, "ERR TSDB: FILTER expression %zu is not label=value, "
                     "label!=value, label=(a,b) or label!=(a,b): '%.*s'", i + 1,
                     (int)(n > 60 ? 60 : n), p);
            return -EINVAL;
        }
        if (!t->negate && (t->nvalues > 1 || t->values[0][0]))
            positive = true;
        f->nterms++;
    }
    if (!positive) {
        snprintf(err, errlen, "ERR TSDB: FILTER needs at least one label=value expression");
        return -EINVAL;
    }
    return 0;
}

/* ---- Matching ------------------------------------------------------------------------- */

bool query_label_get(const char *labels, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = labels; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t ll = end ? (size_t)(end - p) : strlen(p);
        if (ll > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
            size_t vl = ll - nl - 1;
            if (vl >= len)
                vl = len - 1;
            memcpy(buf, p + nl + 1, vl);
            buf[vl] = 0;
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static bool term_match(const qf_term *t, const char *labels)
{
    char v[QF_MAX_TEXT + 1];
    bool have = query_label_get(labels, t->name, v, sizeof v) && v[0];
    bool in = false;
    for (size_t i = 0; i < t->nvalues && !in; i++)
        in = t->values[i][0] ? have && strcmp(v, t->values[i]) == 0 : !have;
    return t->negate ? !in : in;
}

bool qfilter_match(const qfilter *f, const char *labels)
{
    for (size_t i = 0; i < f->nterms; i++)
        if (!term_match(&f->terms[i], labels))
            return false;
    return true;
}

/* ---- Labels of a series ----------------------------------------------------------------- */

bool query_key_split(const char *key, query_key *out)
{
    const char *a = strchr(key, ':');
    const char *b = a ? strchr(a + 1, ':') : NULL;
    if (!a || !b || strchr(b + 1, ':'))
        return false;
    size_t nm = (size_t)(a - key), nc = (size_t)(b - a - 1), ni = strlen(b + 1);
    if (nm == 0 || nm >= sizeof out->mn || nc == 0 || nc >= sizeof out->code ||
        ni == 0 || ni >= sizeof out->interval)
        return false;
    memcpy(out->mn, key, nm);
    out->mn[nm] = 0;
    memcpy(out->code, a + 1, nc);
    out->code[nc] = 0;
    memcpy(out->interval, b + 1, ni + 1);
    return true;
}

static int put(char *buf, size_t len, size_t *at, const char *name, const char *v)
{
    if (!v || !v[0] || strchr(v, '\n'))
        return 0;
    int k = snprintf(buf + *at, len - *at, "%s%s=%s", *at ? "\n" : "", name, v);
    if (k < 0 || (size_t)k >= len - *at)
        return -ERANGE;
    *at += (size_t)k;
    return 0;
}

int query_labels_format(const char *key, const engine_registry *reg, const char *stored,
                        char *buf, size_t len)
{
    query_key k;
    size_t at = 0;
    buf[0] = 0;
    if (!query_key_split(key, &k)) {
        if (stored && strlen(stored) >= len)
            return -ERANGE;
        snprintf(buf, len, "%s", stored ? stored : "");
        return (int)strlen(buf);
    }
    const engine_outlet *o = reg ? engine_registry_outlet_by_mn(reg, k.mn, strlen(k.mn)) : NULL;
    const engine_facility *fa = o ? engine_registry_facility(reg, o->facility_id) : NULL;
    int rc = put(buf, len, &at, "mn", k.mn);
    if (rc == 0 && fa) {
        rc |= put(buf, len, &at, "facility", fa->id);
        rc |= put(buf, len, &at, "uscc", fa->uscc);
        rc |= put(buf, len, &at, "region", fa->region);
        rc |= put(buf, len, &at, "industry", fa->industry);
    }
    if (rc == 0 && o) {
        rc |= put(buf, len, &at, "outlet", o->code);
        rc |= put(buf, len, &at, "medium", o->medium == ENGINE_MEDIUM_WATER ? "water" : "gas");
    }
    if (rc == 0 && !o) /* a device accepted without registration (open mode) */
        rc |= put(buf, len, &at, "registered", "no");
    rc |= put(buf, len, &at, "pollutant", k.code);
    rc |= put(buf, len, &at, "interval", k.interval);
    rc |= put(buf, len, &at, "column", strcmp(k.interval, "rtd") == 0 ? "rtd" : "avg");
    return rc ? -ERANGE : (int)at;
}

/* ---- The cache and its index ----------------------------------------------------------- */

typedef struct posting {
    char *pair;          /* "name=value" (points into a series' label text) */
    size_t plen;
    storage_sid sid;
} posting;

struct query_labels {
    const engine_registry *reg;
    uint32_t n;          /* series 1..n are cached */
    char **keys, **text; /* [sid], index 0 unused */
    posting *post;       /* sorted by pair, then sid */
    size_t npost;
};

void query_labels_free(query_labels *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i <= l->n; i++) {
        if (l->keys)
            free(l->keys[i]);
        if (l->text)
            free(l->text[i]);
    }
    free(l->keys);
    free(l->text);
    free(l->post);
    free(l);
}

static int pair_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int post_cmp(const void *x, const void *y)
{
    const posting *a = x, *b = y;
    int c = pair_cmp(a->pair, a->plen, b->pair, b->plen);
    return c ? c : (a->sid > b->sid) - (a->sid < b->sid);
}

static int build(query_labels *l, storage *st)
{
    char key[256], stored[2048], text[4096];
    size_t cap = 0;
    for (uint32_t sid = 1; sid <= l->n; sid++) {
        int rc = storage_series_key(st, sid, key, sizeof key);
        if (rc != 0)
            return rc;
        if (storage_series_labels(st, sid, stored, sizeof stored) != 0)
            stored[0] = 0;
        if (query_labels_format(key, l->reg, stored, text, sizeof text) < 0)
            text[0] = 0;
        if (!(l->keys[sid] = strdup(key)) || !(l->text[sid] = strdup(text)))
            return -ENOMEM;
        for (char *p = l->text[sid]; *p;) {
            char *end = strchr(p, '\n');
            size_t pl = end ? (size_t)(end - p) : strlen(p);
            if (l->npost == cap) {
                cap = cap ? 2 * cap : 1024;
                posting *np = realloc(l->post, cap * sizeof *np);
                if (!np)
                    return -ENOMEM;
                l->post = np;
            }
            l->post[l->npost++] = (posting){p, pl, sid};
            p = end ? end + 1 : p + pl;
        }
    }
    qsort(l->post, l->npost, sizeof *l->post, post_cmp);
    return 0;
}

int query_labels_refresh(query_labels **lp, storage *st, const engine_registry *reg)
{
    uint32_t n = storage_series_count(st);
    query_labels *l = *lp;
    if (l && l->n == n && l->reg == reg)
        return 0;
    query_labels *nl = calloc(1, sizeof *nl);
    if (!nl)
        return -ENOMEM;
    nl->reg = reg;
    nl->n = n;
    nl->keys = calloc((size_t)n + 1, sizeof *nl->keys);
    nl->text = calloc((size_t)n + 1, sizeof *nl->text);
    int rc = nl->keys && nl->text ? build(nl, st) : -ENOMEM;
    if (rc != 0) {
        query_labels_free(nl);
        return rc;
    }
    query_labels_free(l);
    *lp = nl;
    return 0;
}

const char *query_labels_key(const query_labels *l, storage_sid sid)
{
    return l && sid >= 1 && sid <= l->n ? l->keys[sid] : NULL;
}

const char *query_labels_text(const query_labels *l, storage_sid sid)
{
    return l && sid >= 1 && sid <= l->n ? l->text[sid] : NULL;
}

/* The postings of "name=value": [*lo, *hi). */
static void post_range(const query_labels *l, const char *name, const char *value, size_t *lo,
                       size_t *hi)
{
    char pair[2 * QF_MAX_TEXT + 2];
    size_t pl = (size_t)snprintf(pair, sizeof pair, "%s=%s", name, value);
    size_t a = 0, b = l->npost;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (pair_cmp(l->post[m].pair, l->post[m].plen, pair, pl) < 0)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (a < l->npost && pair_cmp(l->post[a].pair, l->post[a].plen, pair, pl) == 0)
        a++;
    *hi = a;
}

static int sid_cmp(const void *x, const void *y)
{
    storage_sid a = *(const storage_sid *)x, b = *(const storage_sid *)y;
    return (a > b) - (a < b);
}

/* Every series tested in turn, for filters whose only positive terms also accept absence. */
static int scan_all(const query_labels *l, const qfilter *f, storage_sid **out, size_t *n)
{
    storage_sid *ids = malloc(((size_t)l->n + 1) * sizeof *ids);
    if (!ids)
        return -ENOMEM;
    size_t k = 0;
    for (storage_sid sid = 1; sid <= l->n; sid++)
        if (qfilter_match(f, l->text[sid]))
            ids[k++] = sid;
    *out = ids;
    *n = k;
    return 0;
}

int query_labels_select(const query_labels *l, const qfilter *f, storage_sid **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* Candidates: the postings of the first positive term's values (a few sorted runs). */
    const qf_term *t = NULL;
    for (size_t i = 0; i < f->nterms && !t; i++) {
        bool all = !f->terms[i].negate;
        for (size_t v = 0; v < f->terms[i].nvalues && all; v++)
            all = f->terms[i].values[v][0] != 0;
        if (all)
            t = &f->terms[i];
    }
    if (!l)
        return 0;
    if (!t)
        return scan_all(l, f, out, n);
    size_t cap = 0;
    for (size_t v = 0; v < t->nvalues; v++) {
        size_t lo, hi;
        if (!t->values[v][0])
            continue;
        post_range(l, t->name, t->values[v], &lo, &hi);
        cap += hi - lo;
    }
    if (cap == 0)
        return 0;
    storage_sid *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return -ENOMEM;
    size_t k = 0;
    for (size_t v = 0; v < t->nvalues; v++) {
        size_t lo, hi;
        if (!t->values[v][0])
            continue;
        post_range(l, t->name, t->values[v], &lo, &hi);
        for (size_t i = lo; i < hi; i++)
            if (qfilter_match(f, l->text[l->post[i].sid]))
                ids[k++] = l->post[i].sid;
    }
    if (t->nvalues > 1)
        qsort(ids, k, sizeof *ids, sid_cmp);
    *out = ids;
    *n = k;
    return 0;
}
