/* http_feed.c: the routes of the simulator's HTTP endpoints. Provincial platforms publish
 * each facility's monitoring records as JSON, one row per pollutant and period, paged; this
 * file answers such requests from the fleet: the records are those the units send in
 * HJ 212 (sim_record_compute), the values written at the unit's decimals, so what a poller
 * stores from here equals what the HJ 212 server would store from the same units.
 *
 *   GET /facilities/<id>/<hourly|daily|minute>?begin=T&end=T[&page=N][&size=M]
 *   GET /stats
 *
 * begin (inclusive) and end (exclusive) bound the records' DataTime (period start); they
 * are ISO 8601 (local China time without a zone) or Unix seconds. Answers carry an ETag
 * (FNV-1a of the body) and honour If-None-Match. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sim_http.h"
#include "sim_int.h"

#define DEFAULT_PAGE_SIZE 500
#define MAX_PAGE_SIZE 5000
#define MAX_GROUPS 200000 /* outlet-periods one request may span */

void sim_buf_put(sim_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sim_buf_puts(sim_buf *b, const char *s)
{
    sim_buf_put(b, s, strlen(s));
}

static void put_fixed(sim_buf *b, int64_t v, int dec)
{
    char tmp[32];
    sim_buf_put(b, tmp, (size_t)sim_fmt_fixed(tmp, v, dec));
}

static void put_u64(sim_buf *b, uint64_t v)
{
    char tmp[24];
    sim_buf_put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v));
}

static void error_answer(sim_http_answer *a, int status, const char *msg)
{
    a->status = status;
    a->body.len = 0;
    sim_buf_puts(&a->body, "{\"code\":");
    put_u64(&a->body, (uint64_t)status);
    sim_buf_puts(&a->body, ",\"message\":\"");
    sim_buf_puts(&a->body, msg);
    sim_buf_puts(&a->body, "\"}");
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of query parameter name in q (len bytes), percent-decoded into buf. */
static int query_param(const char *q, size_t len, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len;) {
        size_t amp = i;
        while (amp < len && q[amp] != '&')
            amp++;
        if (amp - i > nl && q[i + nl] == '=' && memcmp(q + i, name, nl) == 0) {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < amp; k++) {
                char c = q[k];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi = k + 2 < amp ? hex_value(q[k + 1]) : -1;
                    int lo = k + 2 < amp ? hex_value(q[k + 2]) : -1;
                    if (hi < 0 || lo < 0)
                        return -EINVAL;
                    c = (char)(hi * 16 + lo);
                    k += 2;
                }
                if (o + 1 >= cap)
                    return -ERANGE;
                buf[o++] = c;
            }
            buf[o] = '\0';
            return 0;
        }
        i = amp + 1;
    }
    return -ENOENT;
}

static int time_param(const char *q, size_t len, const char *name, int64_t *out)
{
    char v[64];
    int rc = query_param(q, len, name, v, sizeof v);
    if (rc != 0)
        return rc;
    return engine_time_parse(v, strlen(v), SIM_CST_S, out);
}

static int64_t num_param(const char *q, size_t len, const char *name, int64_t def, int64_t lo,
                         int64_t hi)
{
    char v[32], *end;
    if (query_param(q, len, name, v, sizeof v) != 0)
        return def;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < lo || n > hi)
        return -1;
    return n;
}

/* "YYYY-MM-DD hh:mm:ss" of UTC t in local time. */
static void put_local_time(sim_buf *b, int64_t t)
{
    int64_t l = t + SIM_CST_S;
    int64_t days = l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
    int64_t sec = l - days * 86400, y;
    unsigned m, d;
    engine_civil_from_days(days, &y, &m, &d);
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%04lld-%02u-%02u %02lld:%02lld:%02lld", (long long)y, m,
                     d, (long long)(sec / 3600), (long long)(sec / 60 % 60),
                     (long long)(sec % 60));
    sim_buf_put(b, tmp, (size_t)n);
}

static void put_num(sim_buf *b, const char *key, int64_t v, int dec)
{
    sim_buf_puts(b, ",\"");
    sim_buf_puts(b, key);
    sim_buf_puts(b, "\":");
    put_fixed(b, v, dec);
}

/* One row: a factor of an outlet's record. */
static void put_row(sim_buf *b, const sim_outlet *o, const sim_record *r, int s, bool first)
{
    const sim_value *v = &r->v[s];
    int dec = o->f[s].dec;
    sim_buf_puts(b, first ? "{\"mn\":\"" : ",{\"mn\":\"");
    sim_buf_puts(b, o->mn);
    sim_buf_puts(b, "\",\"outlet\":\"");
    sim_buf_puts(b, o->code);
    sim_buf_puts(b, "\",\"code\":\"");
    sim_buf_puts(b, sim_factor_code(o->medium, s));
    sim_buf_puts(b, "\",\"time\":\"");
    put_local_time(b, r->data_time);
    sim_buf_puts(b, "\"");
    put_num(b, "avg", v->avg, dec);
    put_num(b, "min", v->min, dec);
    put_num(b, "max", v->max, dec);
    if (sim_factor_has_zs(o->medium, s)) {
        put_num(b, "zs_avg", v->zsavg, dec);
        put_num(b, "zs_min", v->zsmin, dec);
        put_num(b, "zs_max", v->zsmax, dec);
    }
    if (sim_factor_has_cou(o->medium, s))
        put_num(b, "cou", v->cou, sim_cou_decimals(o->medium, s));
    sim_buf_puts(b, ",\"flag\":\"");
    sim_buf_put(b, &v->flag, 1);
    sim_buf_puts(b, "\"}");
}

static int64_t facility_index(const sim_fleet *f, const char *id, size_t len)
{
    if (len < 2 || len > 12 || id[0] != 'F')
        return -1;
    int64_t n = 0;
    for (size_t i = 1; i < len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        n = n * 10 + (id[i] - '0');
    }
    if (n < 1 || n > sim_fleet_facility_count(f) || strlen(f->fac[n - 1].id) != len ||
        memcmp(f->fac[n - 1].id, id, len) != 0)
        return -1;
    return n - 1;
}

/* The records of facility fi, kind cn, periods starting in [begin, end), page of size. */
static void records_answer(const sim_fleet *f, int64_t fi, int cn, int64_t begin, int64_t end,
                           int64_t page, int64_t size, sim_http_answer *a)
{
    const sim_facility *fa = &f->fac[fi];
    int64_t period = cn == SIM_CN_HOUR ? 3600 : cn == SIM_CN_DAY ? 86400
                                                                 : f->opt.minute_interval * 60;
    int64_t t0 = begin > f->opt.start ? begin : f->opt.start;
    int64_t t1 = end < sim_fleet_end(f) ? end : sim_fleet_end(f);
    /* the first period start at or after t0: days are local, the others aligned in UTC */
    int64_t first = cn == SIM_CN_DAY ? sim_local_day(t0 + 86399)
                                     : (t0 + period - 1) / period * period;
    uint64_t per_period = 0;
    for (uint32_t k = 0; k < fa->noutlets; k++)
        per_period += f->out[fa->first_outlet + k].nf;
    uint64_t nperiods = first < t1 ? (uint64_t)((t1 - first + period - 1) / period) : 0;
    if (nperiods * fa->noutlets > MAX_GROUPS) {
        error_answer(a, 400, "window too long");
        return;
    }
    uint64_t total = nperiods * per_period;
    uint64_t pages = total ? (total + (uint64_t)size - 1) / (uint64_t)size : 0;
    uint64_t from = (uint64_t)(page - 1) * (uint64_t)size, to = from + (uint64_t)size;
    sim_buf *b = &a->body;
    sim_buf_puts(b, "{\"code\":0,\"message\":\"ok\",\"data\":{\"facility\":\"");
    sim_buf_puts(b, fa->id);
    sim_buf_puts(b, "\",\"page\":");
    put_u64(b, (uint64_t)page);
    sim_buf_puts(b, ",\"size\":");
    put_u64(b, (uint64_t)size);
    sim_buf_puts(b, ",\"pages\":");
    put_u64(b, pages);
    sim_buf_puts(b, ",\"total\":");
    put_u64(b, total);
    sim_buf_puts(b, ",\"records\":[");
    uint64_t idx = 0;
    for (uint64_t p = 0; p < nperiods && idx < to; p++) {
        int64_t t = first + (int64_t)p * period;
        for (uint32_t k = 0; k < fa->noutlets && idx < to; k++) {
            uint32_t oi = fa->first_outlet + k;
            const sim_outlet *o = &f->out[oi];
            if (idx + o->nf <= from) {
                idx += o->nf;
                continue;
            }
            sim_record r;
            if (sim_record_compute(f, oi, cn, t, &r) != 0) {
                error_answer(a, 500, "record not computed");
                return;
            }
            for (int s = 0; s < o->nf; s++, idx++)
                if (idx >= from && idx < to) {
                    put_row(b, o, &r, s, a->records == 0);
                    a->records++;
                }
        }
    }
    sim_buf_puts(b, "]}}");
    a->status = 200;
}

static void stats_answer(const sim_http_stats *st, sim_http_answer *a)
{
    char line[512];
    int n = sim_http_stats_format(st, line, sizeof line);
    if (n < 0) {
        error_answer(a, 500, "stats");
        return;
    }
    sim_buf_put(&a->body, line, (size_t)n);
    a->status = 200;
}

static void set_etag(sim_http_answer *a)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < a->body.len; i++)
        h = (h ^ (unsigned char)a->body.p[i]) * 0x100000001b3ull;
    snprintf(a->etag, sizeof a->etag, "\"%016llx\"", (unsigned long long)h);
}

void sim_http_route(const sim_fleet *f, const char *method, const char *target, size_t len,
                    const char *if_none_match, const sim_http_stats *st,
                    sim_http_answer *a)
{
    a->status = 500;
    a->etag[0] = '\0';
    a->records = 0;
    a->body.len = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        error_answer(a, 405, "only GET");
        return;
    }
    const char *q = memchr(target, '?', len);
    size_t plen = q ? (size_t)(q - target) : len;
    size_t qlen = q ? len - plen - 1 : 0;
    q = q ? q + 1 : "";
    if (plen == 6 && memcmp(target, "/stats", 6) == 0) {
        stats_answer(st, a);
        return;
    }
    static const char prefix[] = "/facilities/";
    const char *slash = plen > sizeof prefix - 1 && memcmp(target, prefix, sizeof prefix - 1) == 0
                            ? memchr(target + sizeof prefix - 1, '/', plen - (sizeof prefix - 1))
                            : NULL;
    if (!slash) {
        error_answer(a, 404, "no such route");
        return;
    }
    const char *id = target + sizeof prefix - 1, *kind = slash + 1;
    size_t klen = (size_t)(target + plen - kind);
    int cn = klen == 6 && !memcmp(kind, "hourly", 6)   ? SIM_CN_HOUR
             : klen == 5 && !memcmp(kind, "daily", 5)  ? SIM_CN_DAY
             : klen == 6 && !memcmp(kind, "minute", 6) ? SIM_CN_MIN
                                                       : 0;
    int64_t fi = facility_index(f, id, (size_t)(slash - id));
    if (fi < 0 || !cn || (cn == SIM_CN_MIN && !f->opt.minute_interval)) {
        error_answer(a, 404, fi < 0 ? "unknown facility" : "no such record kind");
        return;
    }
    int64_t begin, end;
    if (time_param(q, qlen, "begin", &begin) != 0 || time_param(q, qlen, "end", &end) != 0) {
        error_answer(a, 400, "begin and end must be ISO 8601 times or Unix seconds");
        return;
    }
    int64_t page = num_param(q, qlen, "page", 1, 1, 1000000);
    int64_t size = num_param(q, qlen, "size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE);
    if (page < 0 || size < 0) {
        error_answer(a, 400, "page must be >= 1 and size 1-5000");
        return;
    }
    records_answer(f, fi, cn, begin, end, page, size, a);
    if (a->status != 200)
        return;
    set_etag(a);
    if (if_none_match && strcmp(if_none_match, a->etag) == 0) {
        a->status = 304;
        a->body.len = 0;
        a->records = 0;
    }
}
