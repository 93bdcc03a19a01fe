/* subscriptions.c: who wants which alerts, and where. Regulators follow facilities by
 * facility id, unified social credit code (USCC), region code prefix (a city follows
 * "3201", a district "320102") or industry, and thousands of follow rows arrive at once as
 * a CSV upload. The rows are kept sorted by (kind, value) so that matching an alert costs a
 * binary search per key it carries (one per prefix length of its region code), whatever the
 * number of subscriptions; destinations (url, format, header) are interned so an alert that
 * several rows match is still sent once per destination.
 *
 * The CSV is RFC 4180 (quoted fields, "" inside quotes, CRLF or LF, optional UTF-8 BOM);
 * columns subscriber,match_kind,match_value,url,format[,header] (ALERTS.md). A bad row is
 * reported with file:line and what is wrong, counted and skipped; the rest still load. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define MAX_FIELDS 8
#define MAX_FIELD 2048

typedef struct row {
    int kind;
    char *value;       /* owned */
    char *subscriber;  /* owned */
    size_t dest;       /* index into dests */
} row;

typedef struct dest {
    char *url, *header; /* owned; header may be NULL */
    int format;
} dest;

struct engine_subs {
    row *rows;
    size_t nrows, cap_rows;
    dest *dests;
    size_t ndests, cap_dests;
};

static const char *const kind_names[] = {"facility", "uscc", "region", "industry", "all"};

int engine_subs_create(engine_subs **out)
{
    engine_subs *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

void engine_subs_destroy(engine_subs *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].value);
        free(s->rows[i].subscriber);
    }
    for (size_t i = 0; i < s->ndests; i++) {
        free(s->dests[i].url);
        free(s->dests[i].header);
    }
    free(s->rows);
    free(s->dests);
    free(s);
}

size_t engine_subs_count(const engine_subs *s)
{
    return s ? s->nrows : 0;
}

static bool streq_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The index of the destination, added if new; -ENOMEM. Linear: uploads are rare and
 * destinations few compared with rows. */
static int dest_intern(engine_subs *s, const char *url, int format, const char *header,
                       size_t *out)
{
    for (size_t i = 0; i < s->ndests; i++)
        if (s->dests[i].format == format && strcmp(s->dests[i].url, url) == 0 &&
            streq_null(s->dests[i].header, header)) {
            *out = i;
            return 0;
        }
    if (s->ndests == s->cap_dests) {
        size_t cap = s->cap_dests ? s->cap_dests * 2 : 16;
        dest *d = realloc(s->dests, cap * sizeof *d);
        if (!d)
            return -ENOMEM;
        s->dests = d;
        s->cap_dests = cap;
    }
    dest *d = &s->dests[s->ndests];
    d->url = strdup(url);
    d->header = header ? strdup(header) : NULL;
    d->format = format;
    if (!d->url || (header && !d->header)) {
        free(d->url);
        free(d->header);
        return -ENOMEM;
    }
    *out = s->ndests++;
    return 0;
}

static int row_add(engine_subs *s, const char *subscriber, int kind, const char *value,
                   size_t di)
{
    if (s->nrows == s->cap_rows) {
        size_t cap = s->cap_rows ? s->cap_rows * 2 : 64;
        row *r = realloc(s->rows, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        s->rows = r;
        s->cap_rows = cap;
    }
    row *r = &s->rows[s->nrows];
    r->kind = kind;
    r->value = strdup(value);
    r->subscriber = strdup(subscriber);
    r->dest = di;
    if (!r->value || !r->subscriber) {
        free(r->value);
        free(r->subscriber);
        return -ENOMEM;
    }
    s->nrows++;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->value, y->value);
}

/* ---- CSV ---------------------------------------------------------------------------- */

typedef struct csv_row {
    char *field[MAX_FIELDS];
    size_t nfields;
    char buf[MAX_FIELDS * (MAX_FIELD + 1)];
} csv_row;

/* Reads one record starting at *pos; advances *pos past its line end and *line past every
 * newline consumed. Returns 1 with a record, 0 at the end, or -1 with *err set (the rest of
 * the record is skipped). */
static int csv_next(const char *t, size_t len, size_t *pos, size_t *line, csv_row *r,
                    const char **err)
{
    size_t p = *pos, used = 0, flen = 0;
    bool quoted = false, in_quotes = false, after_quote = false;
    *err = NULL;
    if (p >= len)
        return 0;
    r->nfields = 1;
    r->field[0] = r->buf;
    for (;; p++) {
        char c = p < len ? t[p] : '\n';
        if (in_quotes) {
            if (p >= len) {
                *err = "unterminated quoted field";
                break;
            }
            if (c == '"') {
                if (p + 1 < len && t[p + 1] == '"') {
                    p++;
                } else {
                    in_quotes = false;
                    after_quote = true;
                    continue;
                }
            } else if (c == '\n') {
                (*line)++;
            }
        } else if (c == ',' || c == '\n' || (c == '\r' && (p + 1 >= len || t[p + 1] == '\n'))) {
            r->buf[used++] = '\0';
            if (c == '\r')
                p++;
            if (c == ',') {
                if (r->nfields == MAX_FIELDS) {
                    *err = "too many columns";
                    break;
                }
                r->field[r->nfields++] = r->buf + used;
                flen = 0;
                quoted = after_quote = false;
                continue;
            }
            p++;
            break;
        } else if (c == '"' && flen == 0 && !quoted) {
            quoted = in_quotes = true;
            continue;
        } else if (after_quote || c == '"') {
            *err = "stray quote in field";
            break;
        }
        if (flen == MAX_FIELD) {
            *err = "field longer than 2048 bytes";
            break;
        }
        if (c == '\0') {
            *err = "NUL byte in field";
            break;
        }
        r->buf[used++] = c;
        flen++;
    }
    if (*err) { /* skip to the end of the physical line */
        while (p < len && t[p] != '\n')
            p++;
        if (p < len)
            p++;
    }
    *pos = p;
    (*line)++;
    return *err ? -1 : 1;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    size_t k = 0;
    while (s[k] == ' ' || s[k] == '\t')
        k++;
    memmove(s, s + k, n - k + 1);
}

/* Checks a parsed row; NULL if good, else what is wrong. */
static const char *row_check(csv_row *r, int *kind, int *format)
{
    for (size_t i = 0; i < r->nfields; i++)
        trim(r->field[i]);
    if (r->nfields < 5)
        return "expected 5 or 6 columns: subscriber,match_kind,match_value,url,format[,header]";
    if (r->nfields > 6)
        return "too many columns";
    if (!r->field[0][0] || strlen(r->field[0]) > 128)
        return "subscriber must be 1 to 128 bytes";
    *kind = -1;
    for (int k = 0; k < 5; k++)
        if (strcmp(r->field[1], kind_names[k]) == 0)
            *kind = k;
    if (*kind < 0)
        return "match_kind must be facility, uscc, region, industry or all";
    const char *v = r->field[2];
    if (*kind != ENGINE_MATCH_ALL && !*v)
        return "match_value is empty";
    if (*kind == ENGINE_MATCH_REGION)
        for (const char *p = v; *p; p++)
            if (!isdigit((unsigned char)*p))
                return "a region prefix is digits only";
    const char *url = r->field[3];
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return "url must start with http:// or https://";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20)
            return "url contains a space or control character";
    *format = engine_alert_format_parse(r->field[4][0] ? r->field[4] : "json");
    if (*format < 0)
        return "format must be json, dingtalk or wecom";
    if (r->nfields == 6 && r->field[5][0]) {
        const char *h = r->field[5], *colon = strchr(h, ':');
        if (!colon || colon == h)
            return "header must look like 'Name: value'";
        for (const char *p = h; *p; p++)
            if ((unsigned char)*p < 0x20 && *p != '\t')
                return "header contains a control character";
        for (const char *p = h; p < colon; p++)
            if (*p == ' ' || *p == '\t')
                return "header name contains a space";
    }
    return NULL;
}

static void report(engine_subs_error_fn fn, void *arg, const char *name, size_t line,
                   const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s:%zu: %s", name, line, what);
    if (fn)
        fn(arg, msg);
}

int engine_subs_parse_csv(engine_subs *s, const char *name, const char *text, size_t len,
                          engine_subs_error_fn fn, void *arg, size_t *nbad)
{
    csv_row *r = malloc(sizeof *r);
    size_t pos = 0, line = 1, bad = 0;
    int rc = 0;
    if (!r)
        return -ENOMEM;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    for (;;) {
        size_t at = line;
        const char *err;
        int got = csv_next(text, len, &pos, &line, r, &err);
        if (got == 0)
            break;
        if (got < 0) {
            report(fn, arg, name, at, err);
            bad++;
            continue;
        }
        if (r->nfields == 1 && r->field[0][strspn(r->field[0], " \t")] == '\0')
            continue; /* blank line */
        if (r->field[0][0] == '#')
            continue; /* comment */
        if (at == 1 && strcmp(r->field[0], "subscriber") == 0)
            continue; /* header row */
        int kind, format;
        const char *what = row_check(r, &kind, &format);
        if (what) {
            report(fn, arg, name, at, what);
            bad++;
            continue;
        }
        size_t d;
        const char *hdr = r->nfields == 6 && r->field[5][0] ? r->field[5] : NULL;
        if ((rc = dest_intern(s, r->field[3], format, hdr, &d)) != 0 ||
            (rc = row_add(s, r->field[0], kind, kind == ENGINE_MATCH_ALL ? "" : r->field[2],
                          d)) != 0)
            break;
    }
    free(r);
    if (s->nrows > 1) /* matching binary-searches (kind, value) */
        qsort(s->rows, s->nrows, sizeof(row), row_cmp);
    if (nbad)
        *nbad = bad;
    return rc;
}

int engine_subs_load_file(engine_subs *s, const char *path, engine_subs_error_fn fn,
                          void *arg, size_t *nbad)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - len < 65536) {
            cap = cap * 2 + 65536;
            char *b = realloc(buf, cap);
            if (!b) {
                rc = -ENOMEM;
                break;
            }
            buf = b;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = engine_subs_parse_csv(s, path, buf, len, fn, arg, nbad);
    free(buf);
    return rc;
}

/* ---- Matching ------------------------------------------------------------------------ */

/* The first row of (kind, value), or nrows. */
static size_t lower_bound(const engine_subs *s, int kind, const char *value)
{
    size_t lo = 0, hi = s->nrows;
    row key = {.kind = kind, .value = (char *)value};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (row_cmp(&s->rows[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct matches {
    size_t *idx;
    size_t n, cap;
} matches;

static void collect(const engine_subs *s, int kind, const char *value, matches *m)
{
    for (size_t i = lower_bound(s, kind, value);
         i < s->nrows && s->rows[i].kind == kind && strcmp(s->rows[i].value, value) == 0; i++) {
        size_t d = s->rows[i].dest, k;
        for (k = 0; k < m->n && m->idx[k] != d; k++)
            ;
        if (k < m->n)
            continue;
        if (m->n == m->cap) {
            size_t cap = m->cap * 2 + 16;
            size_t *p = realloc(m->idx, cap * sizeof *p);
            if (!p)
                return;
            m->idx = p;
            m->cap = cap;
        }
        m->idx[m->n++] = d;
    }
}

int engine_subs_match(const engine_subs *s, const engine_alert *a, engine_sub_dest *out,
                      size_t max, size_t *n)
{
    *n = 0;
    if (!s || s->nrows == 0)
        return 0;
    matches m = {0};
    collect(s, ENGINE_MATCH_ALL, "", &m);
    if (a->facility_id && *a->facility_id)
        collect(s, ENGINE_MATCH_FACILITY, a->facility_id, &m);
    if (a->uscc && *a->uscc)
        collect(s, ENGINE_MATCH_USCC, a->uscc, &m);
    if (a->industry && *a->industry)
        collect(s, ENGINE_MATCH_INDUSTRY, a->industry, &m);
    if (a->region) {
        char prefix[64];
        size_t rl = strlen(a->region);
        for (size_t l = 1; l <= rl && l < sizeof prefix; l++) {
            memcpy(prefix, a->region, l);
            prefix[l] = '\0';
            collect(s, ENGINE_MATCH_REGION, prefix, &m);
        }
    }
    for (size_t i = 0; i < m.n && i < max; i++) {
        const dest *d = &s->dests[m.idx[i]];
        out[i] = (engine_sub_dest){d->url, d->format, d->header};
    }
    *n = m.n;
    free(m.idx);
    return 0;
}
