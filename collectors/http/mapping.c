/* mapping.c: a platform's JSON response to points. Every platform shapes its JSON its own
 * way; a mapping says where the records array is and, in each record, where the MN,
 * pollutant code, time, value, flag and any further columns are, as dotted paths. Numbers
 * may come as JSON numbers or as strings ("12.30"); both read to the same double the HJ 212
 * path would store. Times are taken from the payload, never from the arrival. A record that
 * lacks a field or holds one that does not read is skipped and counted, with the first
 * reason kept: one bad row must not cost the page. 2005 factor codes are mapped to 2017. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hj212.h"
#include "http_src.h"

#define MAX_RECORDS 1000000

cJSON *http_json_path(cJSON *node, const char *path)
{
    const char *p = path;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[128];
        if (n == 0 || n >= sizeof key)
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        if (cJSON_IsArray(node)) {
            char *end;
            long i = strtol(key, &end, 10);
            node = *end || i < 0 ? NULL : cJSON_GetArrayItem(node, (int)i);
        } else {
            node = cJSON_GetObjectItemCaseSensitive(node, key);
        }
        p += n + (dot != NULL);
    }
    return node;
}

/* A number from a JSON number or a numeric string. */
static int read_number(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' '))
            n--;
        while (n && *s == ' ')
            s++, n--;
        return engine_double_parse(s, n, out);
    }
    return -EINVAL;
}

static int read_time(const http_mapping *m, const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v) && (m->time_fmt.kind == HTTP_TIME_UNIX ||
                              m->time_fmt.kind == HTTP_TIME_UNIX_MS)) {
        double d = v->valuedouble;
        if (m->time_fmt.kind == HTTP_TIME_UNIX_MS)
            d /= 1000.0;
        if (!(d > -1e12 && d < 1e12))
            return -EINVAL;
        *out = (int64_t)d;
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return -EINVAL;
    return http_time_parse(&m->time_fmt, v->valuestring, strlen(v->valuestring), out);
}

static const char *read_string(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

/* One element to a record; returns NULL on success or why it was skipped. */
static const char *map_record(const http_mapping *m, cJSON *el, const char *var_mn,
                              const char *var_code, http_record *r)
{
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(el))
        return "not an object";
    r->mn = m->mn ? read_string(http_json_path(el, m->mn)) : var_mn;
    if (!r->mn)
        return "no MN";
    if (strlen(r->mn) > 64)
        return "MN longer than 64 characters";
    r->code = m->code ? read_string(http_json_path(el, m->code)) : var_code;
    if (!r->code)
        return "no pollutant code";
    size_t clen = strlen(r->code);
    if (clen > 32 || strchr(r->code, ':'))
        return "pollutant code too long or holding ':'";
    if (!hj212_factor_find(r->code, clen)) {
        const hj212_factor_info *fi = hj212_factor_find_2005(r->code, clen);
        if (fi)
            r->code = fi->code;
    }
    cJSON *t = http_json_path(el, m->time);
    if (!t)
        return "no time";
    if (read_time(m, t, &r->ts) != 0)
        return "time does not read in the mapping's format";
    double v;
    cJSON *val = http_json_path(el, m->value);
    if (!val || cJSON_IsNull(val))
        return "no value";
    if (read_number(val, &v) != 0)
        return "value is not a number";
    r->pt.v[STORAGE_COL_AVG] = v;
    r->pt.mask = 1u << STORAGE_COL_AVG;
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (c == STORAGE_COL_AVG || !m->cols[c])
            continue;
        cJSON *x = http_json_path(el, m->cols[c]);
        if (!x || cJSON_IsNull(x))
            continue; /* absent columns cost nothing */
        if (read_number(x, &v) != 0)
            return "a column is not a number";
        r->pt.v[c] = v;
        r->pt.mask |= (uint8_t)(1u << c);
    }
    if (m->flag) {
        const char *f = read_string(http_json_path(el, m->flag));
        if (f) {
            char c = f[0];
            r->pt.flag = (uint8_t)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        }
    }
    return NULL;
}

int64_t http_page_count(const http_page *p, const char *path)
{
    double v;
    if (!path || !p->root || read_number(http_json_path(p->root, path), &v) != 0 ||
        !(v >= 0 && v < 1e15))
        return -1;
    return (int64_t)v;
}

int http_map_page(const http_mapping *m, const char *body, size_t len, const char *var_mn,
                  const char *var_code, http_page *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    out->root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!out->root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        snprintf(err, errlen, "bad JSON at byte %zu", at);
        return -EINVAL;
    }
    cJSON *arr = http_json_path(out->root, m->records);
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "no records array at '%s'", m->records[0] ? m->records : "(body)");
        http_page_free(out);
        return -EINVAL;
    }
    int n = cJSON_GetArraySize(arr);
    if (n > MAX_RECORDS) {
        snprintf(err, errlen, "%d records in one page, more than %d", n, MAX_RECORDS);
        http_page_free(out);
        return -EINVAL;
    }
    out->recs = calloc(n ? (size_t)n : 1, sizeof *out->recs);
    if (!out->recs) {
        http_page_free(out);
        return -ENOMEM;
    }
    cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        out->nrecords++;
        const char *why = map_record(m, el, var_mn, var_code, &out->recs[out->n]);
        if (!why) {
            out->recs[out->n].pt.ts = out->recs[out->n].ts;
            out->n++;
        } else if (out->bad++ == 0) {
            snprintf(out->why, sizeof out->why, "record %zu: %s", out->nrecords - 1, why);
        }
    }
    return 0;
}

void http_page_free(http_page *p)
{
    cJSON_Delete(p->root);
    free(p->recs);
    p->root = NULL;
    p->recs = NULL;
    p->n = 0;
}
