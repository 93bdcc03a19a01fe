/* export_csv.c: the file formats of `plume export`: CSV (RFC 4180: a header row, fields
 * quoted when they hold a comma, quote, CR or LF, quotes doubled; ISO 8601 dates and times;
 * '.' decimals in the shortest form that reads back exactly; empty for null; UTF-8 without a
 * BOM, LF line ends) and JSON Lines (one object per row, the same names, null for null).
 *
 * --excel is for Excel on Chinese Windows, which reads CSV as the local code page unless it
 * starts with a UTF-8 BOM, expects CRLF, and turns digit strings such as credit codes and
 * region codes into numbers (losing digits): identifiers that look like numbers are written
 * as ="...", which Excel shows as text.
 *
 * Rows are formatted into one large buffer written with few system calls; a file is written
 * as PATH.part and renamed into place only when the export has finished.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "export.h"

#define BUF_LEN (1u << 20)
#define ROW_MAX (64u << 10) /* room always kept for one row */

typedef struct file_writer {
    export_writer base;
    export_file_opts o;
    FILE *f;
    char *path, *part;   /* owned; NULL for stdout */
    char *buf;
    size_t len;
    int64_t last_day;    /* the date text of the last day, cached */
    char day_text[16];
    bool failed;
} file_writer;

static int flush_buf(file_writer *w)
{
    if (w->len && fwrite(w->buf, 1, w->len, w->f) != w->len) {
        fprintf(stderr, "plume export: writing %s: %s\n", w->path ? w->part : "stdout",
                strerror(errno));
        w->failed = true;
        return -1;
    }
    w->len = 0;
    return 0;
}

static void put(file_writer *w, const char *s, size_t n)
{
    if (w->len + n > BUF_LEN) { /* only a huge text field gets here */
        if (flush_buf(w) != 0)
            return;
        if (n > BUF_LEN) {
            if (fwrite(s, 1, n, w->f) != n)
                w->failed = true;
            return;
        }
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void putc_(file_writer *w, char c)
{
    if (w->len == BUF_LEN && flush_buf(w) != 0)
        return;
    w->buf[w->len++] = c;
}

/* Whether Excel would read s as a number. */
static bool looks_numeric(const char *s)
{
    const char *p = s;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E' || *p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

static void csv_text(file_writer *w, const char *s, bool id)
{
    if (id && w->o.excel && looks_numeric(s)) {
        put(w, "\"=\"\"", 4);
        put(w, s, strlen(s));
        put(w, "\"\"\"", 3);
        return;
    }
    size_t n = strcspn(s, ",\"\r\n");
    if (s[n] == 0) {
        put(w, s, n);
        return;
    }
    putc_(w, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            putc_(w, '"');
        putc_(w, *p);
    }
    putc_(w, '"');
}

static void json_text(file_writer *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    putc_(w, '"');
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(p - run));
        if (c == 0)
            break;
        if (c == '"' || c == '\\') {
            putc_(w, '\\');
            putc_(w, (char)c);
        } else if (c == '\n') {
            put(w, "\\n", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, e, 6);
        }
        run = p + 1;
    }
    putc_(w, '"');
}

/* The text of a non-text value (NULL for null); buf holds at least 32 bytes. */
static const char *scalar(file_writer *w, const export_column *c, const export_value *v,
                          char *buf, size_t *n)
{
    if (v->is_null)
        return NULL;
    switch (c->type) {
    case EXPORT_NUM:
        if (!isfinite(v->d))
            return NULL;
        *n = (size_t)engine_double_format(v->d, buf);
        return buf;
    case EXPORT_INT: {
        char t[24];
        size_t k = 0;
        uint64_t u = v->i < 0 ? (uint64_t)0 - (uint64_t)v->i : (uint64_t)v->i;
        do
            t[k++] = (char)('0' + u % 10);
        while (u /= 10);
        size_t at = 0;
        if (v->i < 0)
            buf[at++] = '-';
        while (k)
            buf[at++] = t[--k];
        *n = at;
        return buf;
    }
    case EXPORT_BOOL:
        *n = v->b ? 4 : 5;
        return v->b ? "true" : "false";
    case EXPORT_DATE:
        if (v->i != w->last_day) {
            export_format_date(v->i, w->day_text);
            w->last_day = v->i;
        }
        *n = 10;
        return w->day_text;
    case EXPORT_TIME:
        *n = (size_t)export_format_time(v->i, buf);
        return buf;
    default:
        return NULL;
    }
}

static int file_row(export_writer *base, const export_value *v)
{
    file_writer *w = (file_writer *)base;
    const export_table *t = base->t;
    char num[ENGINE_DOUBLE_FMT_LEN + 8];
    if (w->len + ROW_MAX > BUF_LEN && flush_buf(w) != 0)
        return -1;
    if (w->o.jsonl)
        putc_(w, '{');
    for (size_t i = 0; i < t->ncols; i++) {
        const export_column *c = &t->cols[i];
        bool text = c->type == EXPORT_TEXT || c->type == EXPORT_ID;
        if (w->o.jsonl) {
            if (i)
                putc_(w, ',');
            putc_(w, '"');
            put(w, c->name, strlen(c->name));
            put(w, "\":", 2);
            if (text && !v[i].is_null) {
                json_text(w, v[i].s);
                continue;
            }
            size_t n = 0;
            const char *s = text ? NULL : scalar(w, c, &v[i], num, &n);
            bool quote = s && (c->type == EXPORT_DATE || c->type == EXPORT_TIME);
            if (quote)
                putc_(w, '"');
            s ? put(w, s, n) : put(w, "null", 4);
            if (quote)
                putc_(w, '"');
            continue;
        }
        if (i)
            putc_(w, ',');
        if (text) {
            if (!v[i].is_null)
                csv_text(w, v[i].s, c->type == EXPORT_ID);
            continue;
        }
        size_t n = 0;
        const char *s = scalar(w, c, &v[i], num, &n);
        if (s)
            put(w, s, n);
    }
    if (w->o.jsonl)
        putc_(w, '}');
    if (w->o.excel && !w->o.jsonl)
        putc_(w, '\r');
    putc_(w, '\n');
    return w->failed ? -1 : 0;
}

static void file_free(file_writer *w)
{
    free(w->buf);
    free(w->path);
    free(w->part);
    free(w);
}

static int file_finish(export_writer *base)
{
    file_writer *w = (file_writer *)base;
    int rc = flush_buf(w);
    if (w->path) {
        if (fclose(w->f) != 0 && rc == 0) {
            fprintf(stderr, "plume export: writing %s: %s\n", w->part, strerror(errno));
            rc = -1;
        }
        if (rc == 0 && rename(w->part, w->path) != 0) {
            fprintf(stderr, "plume export: renaming %s to %s: %s\n", w->part, w->path,
                    strerror(errno));
            rc = -1;
        }
        if (rc != 0)
            unlink(w->part);
    } else if (fflush(w->f) != 0 && rc == 0) {
        fprintf(stderr, "plume export: writing stdout: %s\n", strerror(errno));
        rc = -1;
    }
    file_free(w);
    return rc;
}

static void file_abort(export_writer *base)
{
    file_writer *w = (file_writer *)base;
    if (w->path) {
        fclose(w->f);
        unlink(w->part);
    } else {
        flush_buf(w); /* stdout: what was written is already out; keep it whole lines */
        fflush(w->f);
    }
    file_free(w);
}

static const export_writer_ops file_ops = {file_row, file_finish, file_abort};

export_writer *export_file_open(const export_table *t, const export_file_opts *o)
{
    file_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(BUF_LEN))) {
        fprintf(stderr, "plume export: out of memory\n");
        if (w)
            free(w);
        return NULL;
    }
    w->base.ops = &file_ops;
    w->base.t = t;
    w->o = *o;
    w->last_day = INT64_MIN;
    if (o->path && strcmp(o->path, "-") != 0) {
        size_t n = strlen(o->path);
        w->path = strdup(o->path);
        w->part = malloc(n + 6);
        if (!w->path || !w->part) {
            fprintf(stderr, "plume export: out of memory\n");
            file_free(w);
            return NULL;
        }
        memcpy(w->part, o->path, n);
        memcpy(w->part + n, ".part", 6);
        if (!(w->f = fopen(w->part, "w"))) {
            fprintf(stderr, "plume export: cannot create %s: %s\n", w->part, strerror(errno));
            file_free(w);
            return NULL;
        }
    } else {
        w->f = stdout;
    }
    w->o.path = NULL;
    if (o->excel && !o->jsonl)
        put(w, "\xEF\xBB\xBF", 3);
    if (!o->jsonl) {
        for (size_t i = 0; i < t->ncols; i++) {
            if (i)
                putc_(w, ',');
            put(w, t->cols[i].name, strlen(t->cols[i].name));
        }
        if (o->excel)
            putc_(w, '\r');
        putc_(w, '\n');
    }
    return &w->base;
}
