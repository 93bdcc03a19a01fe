/* cmd_cems.c: the domain commands a regulator's screen needs: CEMS.CHART (a trend line
 * reduced to what a chart of a given width can show, with its limit and exceedances),
 * CEMS.TABLE (the points with their limit and exceedance multiple), CEMS.LATEST (the
 * newest value of each series) and CEMS.FACILITY (finding a facility).
 *
 * Limits, exceedances and the M4 reduction are chart.c's (shared with `plume chart`). The
 * charted column is compared with the limit as it is, so chart the oxygen-corrected column
 * (":zsavg") where the limit is on a corrected basis.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "series.h"

#define CHART_MAX_PX 10000
typedef struct chart_ctx {
    storage *st;
    storage_reader *r;
    storage_sid sid;
    int col;
    int64_t from, to;            /* seconds, inclusive; INT64_MIN / INT64_MAX: open */
    query_limits lim;            /* CEMS.TABLE's (a chart finds its own) */
} chart_ctx;

static storage *store_of(query_client *c)
{
    storage *st = c->srv->opts.storage;
    if (!st)
        resp_write_error(&c->out, "ERR CEMS: this server has no store open");
    return st;
}

int query_parse_ms(const resp_arg *a, int64_t *ms, int *open)
{
    *open = 0;
    if (resp_arg_ieq(a, "-")) {
        *open = -1;
        return 0;
    }
    if (resp_arg_ieq(a, "+")) {
        *open = 1;
        return 0;
    }
    return resp_arg_int64(a, ms) == 0 && *ms > -(INT64_C(1) << 50) && *ms < INT64_C(1) << 50
               ? 0 : -EINVAL;
}

/* Opens key and its range ('-' / '+' stay open) and finds its limits. */
static int open_range(query_client *c, const resp_arg *argv, chart_ctx *x, char *key,
                      size_t klen)
{
    int64_t fms = 0, tms = 0;
    int fo, to;
    memset(x, 0, sizeof *x);
    if (!(x->st = store_of(c)))
        return -1;
    if (query_parse_ms(&argv[2], &fms, &fo) != 0 || query_parse_ms(&argv[3], &tms, &to) != 0) {
        resp_write_error(&c->out, "ERR CEMS: from and to must be Unix milliseconds, '-' or "
                         "'+'");
        return -1;
    }
    int rc = query_resolve_key(x->st, argv[1].ptr, argv[1].len, &x->sid, &x->col);
    if (rc == 0)
        rc = storage_series_key(x->st, x->sid, key, klen);
    if (rc == 0)
        rc = storage_reader_open(x->st, &x->r);
    if (rc != 0) {
        resp_write_error(&c->out, rc == -ENOENT ? "ERR CEMS: the key does not exist"
                                                : "ERR CEMS: storage error");
        return -1;
    }
    x->from = fo ? INT64_MIN : (fms >= 0 ? (fms + 999) / 1000 : -(-fms / 1000));
    x->to = to ? INT64_MAX : (tms >= 0 ? tms / 1000 : -((-tms + 999) / 1000));
    return 0;
}

/* ---- CEMS.CHART ---------------------------------------------------------------------- */

static void write_map_head(resp_writer *w, size_t n)
{
    w->proto == 3 ? resp_write_map(w, n) : resp_write_array(w, 2 * n);
}

static void write_num_or_null(resp_writer *w, double v)
{
    if (isnan(v))
        resp_write_null(w);
    else
        resp_write_double(w, v);
}

/* The chart as one JSON document in a bulk string (FORMAT JSON): what a web front-end
 * hands to its chart library as it is, and for any client one string to read instead of
 * thousands of nested replies (the main cost of a chart reply to a client).
 * {"key":..,"bucket":ms,"unit":..|null,"points":[[ms,v],..],"limits":[[from,to,v],..],
 *  "exceedances":[[first,last,peak],..]} */
static char *put_i64(char *p, int64_t v)
{
    return p + resp_format_i64(p, v);
}

static char *put_num(char *p, double v)
{
    if (!isfinite(v)) {
        memcpy(p, "null", 4);
        return p + 4;
    }
    return p + resp_format_double(v, p, 40);
}

/* A JSON string of s (keys and units: printable text; control bytes escaped). */
static char *put_str(char *p, const char *s)
{
    *p++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            *p++ = '\\';
            *p++ = (char)ch;
        } else if (ch < 0x20) {
            p += sprintf(p, "\\u%04x", ch);
        } else {
            *p++ = (char)ch;
        }
    }
    *p++ = '"';
    return p;
}

/* The decimal digits of n. */
static size_t digits(size_t n)
{
    size_t k = 1;
    while (n >= 10) {
        n /= 10;
        k++;
    }
    return k;
}

/* Formats straight into the reply: the bulk string's body goes where its header, sized for
 * the body's likely length, will end, and moves only when the guess was wrong. */
static void write_chart_json(resp_writer *o, const char *key, const query_chart_data *d)
{
    /* Bounds: a number is at most 40 bytes, a string 6 bytes a byte. */
    size_t cap = 128 + 6 * strlen(key) + 6 * sizeof d->limits.unit +
                 (d->n + d->limits.n + d->nexceed) * 3 * 44;
    size_t guess = 1 + digits(128 + strlen(key) + 24 * (d->n + d->limits.n + d->nexceed)) + 2;
    char *base = resp_writer_reserve(o, 1 + 20 + 2 + cap);
    if (!base)
        return;
    char *buf = base + guess, *p = buf;
    p += sprintf(p, "{\"key\":");
    p = put_str(p, key);
    p += sprintf(p, ",\"bucket\":");
    p = put_i64(p, d->bucket * 1000);
    p += sprintf(p, ",\"unit\":");
    if (d->limits.unit[0])
        p = put_str(p, d->limits.unit);
    else
        p += sprintf(p, "null");
    p += sprintf(p, ",\"points\":[");
    for (size_t i = 0; i < d->n; i++) {
        *p++ = i ? ',' : '[';
        if (i)
            *p++ = '[';
        p += resp_format_ms(p, d->ts[i]);
        *p++ = ',';
        p = put_num(p, d->v[i]);
        *p++ = ']';
    }
    p += sprintf(p, "],\"limits\":[");
    for (size_t i = 0; i < d->limits.n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '[';
        p = put_i64(p, d->limits.seg[i].from * 1000);
        *p++ = ',';
        p = put_i64(p, d->limits.seg[i].to == INT64_MAX ? INT64_MAX
                                                         : d->limits.seg[i].to * 1000);
        *p++ = ',';
        p = put_num(p, d->limits.seg[i].value);
        *p++ = ']';
    }
    p += sprintf(p, "],\"exceedances\":[");
    for (size_t i = 0; i < d->nexceed; i++) {
        if (i)
            *p++ = ',';
        *p++ = '[';
        p = put_i64(p, d->exceed[i].start * 1000);
        *p++ = ',';
        p = put_i64(p, d->exceed[i].end * 1000);
        *p++ = ',';
        p = put_num(p, d->exceed[i].peak);
        *p++ = ']';
    }
    p += sprintf(p, "]}");
    size_t len = (size_t)(p - buf);
    char hdr[24];
    size_t hl = (size_t)snprintf(hdr, sizeof hdr, "$%zu\r\n", len);
    if (hl != guess)
        memmove(base + hl, buf, len);
    memcpy(base, hdr, hl);
    memcpy(base + hl + len, "\r\n", 2);
    resp_writer_commit(o, hl + len + 2);
}

static void cmd_cems_chart(query_client *c, size_t argc, const resp_arg *argv)
{
    chart_ctx x;
    char key[256];
    int64_t px;
    if (resp_arg_int64(&argv[4], &px) != 0 || px < 1 || px > CHART_MAX_PX) {
        resp_write_errorf(&c->out, "ERR CEMS: width must be 1 to %d pixels", CHART_MAX_PX);
        return;
    }
    bool json = false;
    if (argc != 5 && (argc != 7 || !resp_arg_ieq(&argv[5], "FORMAT") ||
                      !((json = resp_arg_ieq(&argv[6], "JSON")) ||
                        resp_arg_ieq(&argv[6], "RESP")))) {
        resp_write_error(&c->out, "ERR CEMS: CEMS.CHART key from to width [FORMAT RESP|JSON]");
        return;
    }
    /* A chart of data that has not changed since it was last drawn is answered from the
     * reply cache; the stamp is read before the reader opens (cache.c). */
    storage *st = c->srv->opts.storage;
    storage_sid sid;
    int col;
    query_cache_req k;
    uint64_t ver = 0, gen = c->srv->registry_gen, errors = c->out.errors;
    bool cacheable = st && query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col) == 0;
    if (cacheable && query_cache_reply(c, argc, argv, sid, gen, &k, &ver))
        return;
    size_t start = c->out.len;
    if (open_range(c, argv, &x, key, sizeof key) != 0)
        return;
    query_chart_data d;
    int rc = query_chart_compute(x.r, (const engine_registry *)c->srv->registry, x.sid,
                                 storage_series_interval(x.st, x.sid), x.col,
                                 key, x.from, x.to, px, false, &d);
    storage_reader_close(x.r);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR CEMS: storage error: %s", storage_strerror(rc));
        return;
    }
    resp_writer *o = &c->out;
    if (json) {
        write_chart_json(o, key, &d);
        goto done;
    }
    write_map_head(o, 6);
    resp_write_cstr(o, "key");
    resp_write_cstr(o, key);
    resp_write_cstr(o, "bucket");
    resp_write_int(o, d.bucket * 1000);
    resp_write_cstr(o, "unit");
    d.limits.unit[0] ? resp_write_cstr(o, d.limits.unit) : resp_write_null(o);
    resp_write_cstr(o, "points");
    resp_write_array(o, d.n);
    for (size_t i = 0; i < d.n; i++)
        ts_write_sample(o, d.ts[i] * 1000, d.v[i]);
    resp_write_cstr(o, "limits");
    resp_write_array(o, d.limits.n);
    for (size_t i = 0; i < d.limits.n; i++) {
        resp_write_array(o, 3);
        resp_write_int(o, d.limits.seg[i].from * 1000);
        resp_write_int(o, d.limits.seg[i].to * 1000);
        resp_write_double(o, d.limits.seg[i].value);
    }
    resp_write_cstr(o, "exceedances");
    resp_write_array(o, d.nexceed);
    for (size_t i = 0; i < d.nexceed; i++) {
        resp_write_array(o, 3);
        resp_write_int(o, d.exceed[i].start * 1000);
        resp_write_int(o, d.exceed[i].end * 1000);
        resp_write_double(o, d.exceed[i].peak);
    }
done:
    query_chart_data_free(&d);
    if (cacheable)
        query_cache_keep(c, &k, ver, gen, start, errors);
}

/* ---- CEMS.TABLE ---------------------------------------------------------------------- */

static void cmd_cems_table(query_client *c, size_t argc, const resp_arg *argv)
{
    chart_ctx x;
    char key[256];
    if (open_range(c, argv, &x, key, sizeof key) != 0)
        return;
    query_limits_find((const engine_registry *)c->srv->registry, key, x.from, x.to, &x.lim);
    resp_writer body;
    resp_writer_init(&body, c->out.proto);
    storage_iter *it = NULL;
    storage_point p;
    size_t n = 0;
    int rc = x.from <= x.to ? storage_iter_open(x.r, x.sid, x.from, x.to, &it) : 0;
    while (rc == 0 && it && (rc = storage_iter_next(it, &p)) == 1) {
        rc = 0;
        if (!(p.mask & 1u << x.col))
            continue;
        if (++n > TS_MAX_REPLY_SAMPLES) {
            rc = -E2BIG;
            break;
        }
        double v = p.v[x.col], lim = query_limit_at(&x.lim, p.ts);
        char flag[2] = {(char)p.flag, 0};
        resp_write_array(&body, 5);
        resp_write_int(&body, p.ts * 1000);
        resp_write_double(&body, v);
        write_num_or_null(&body, lim);
        resp_write_cstr(&body, flag);
        bool over = query_flag_valid(p.flag) && v > lim;
        write_num_or_null(&body, over ? (v - lim) / lim : NAN);
    }
    storage_iter_close(it);
    storage_reader_close(x.r);
    if (body.oom)
        c->out.oom = true;
    else if (rc == -E2BIG)
        resp_write_error(&c->out, "ERR CEMS: the table would be too long; narrow the range");
    else if (rc < 0)
        resp_write_errorf(&c->out, "ERR CEMS: storage error: %s", storage_strerror(rc));
    else {
        resp_write_array(&c->out, n);
        resp_write_raw(&c->out, body.data, body.len);
    }
    resp_writer_free(&body);
}

/* ---- CEMS.LATEST ------------------------------------------------------------------------ */

static void cmd_cems_latest(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = store_of(c);
    if (!st)
        return;
    qfilter f;
    char err[200];
    f.nterms = 0;
    if (argc > 1 && (!resp_arg_ieq(&argv[1], "FILTER") ||
                     qfilter_parse(argc - 2, argv + 2, &f, err, sizeof err) != 0)) {
        resp_write_error(&c->out, resp_arg_ieq(&argv[1], "FILTER")
                                      ? err : "ERR CEMS: CEMS.LATEST [FILTER expr...]");
        return;
    }
    query_server *s = c->srv;
    const engine_registry *reg = (const engine_registry *)s->registry;
    storage_reader *r = NULL;
    int rc = query_labels_refresh(&s->labels, st, reg);
    if (rc == 0)
        rc = storage_reader_open(st, &r);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR CEMS: storage error: %s", storage_strerror(rc));
        return;
    }
    resp_writer body;
    resp_writer_init(&body, c->out.proto);
    size_t n = 0;
    uint32_t count = storage_series_count(st);
    for (storage_sid sid = 1; sid <= count; sid++) {
        const char *key = query_labels_key(s->labels, sid);
        query_key k;
        storage_point p;
        if (!key || !query_key_split(key, &k) ||
            (f.nterms && !qfilter_match(&f, query_labels_text(s->labels, sid))) ||
            storage_latest(r, sid, &p) != 0 || !(p.mask & 1u << STORAGE_COL_AVG))
            continue;
        query_limits lim;
        query_limits_find(reg, key, p.ts, p.ts, &lim);
        double v = p.v[STORAGE_COL_AVG];
        char flag[2] = {(char)p.flag, 0};
        resp_write_array(&body, 6);
        resp_write_cstr(&body, key);
        resp_write_int(&body, p.ts * 1000);
        resp_write_double(&body, v);
        resp_write_cstr(&body, flag);
        write_num_or_null(&body, query_limit_at(&lim, p.ts));
        lim.unit[0] ? resp_write_cstr(&body, lim.unit) : resp_write_null(&body);
        n++;
    }
    storage_reader_close(r);
    if (body.oom) {
        c->out.oom = true;
    } else {
        resp_write_array(&c->out, n);
        resp_write_raw(&c->out, body.data, body.len);
    }
    resp_writer_free(&body);
}

/* ---- CEMS.FACILITY ---------------------------------------------------------------------- */

static bool facility_matches(const engine_registry *reg, const engine_facility *fa,
                             const char *q)
{
    size_t ql = strlen(q);
    if (strstr(fa->name, q) || strcmp(fa->uscc, q) == 0 || strcmp(fa->id, q) == 0 ||
        (fa->region[0] && strncmp(fa->region, q, ql) == 0))
        return true;
    size_t n = engine_registry_outlet_count(reg);
    for (size_t i = 0; i < n; i++) {
        const engine_outlet *o = engine_registry_outlet_at(reg, i);
        if (strcmp(o->facility_id, fa->id) == 0 && strcmp(o->mn, q) == 0)
            return true;
    }
    return false;
}

static void write_facility(resp_writer *w, const engine_registry *reg,
                           const engine_facility *fa)
{
    size_t n = engine_registry_outlet_count(reg), no = 0;
    for (size_t i = 0; i < n; i++)
        no += strcmp(engine_registry_outlet_at(reg, i)->facility_id, fa->id) == 0;
    write_map_head(w, 6);
    resp_write_cstr(w, "id");
    resp_write_cstr(w, fa->id);
    resp_write_cstr(w, "name");
    resp_write_cstr(w, fa->name);
    resp_write_cstr(w, "uscc");
    resp_write_cstr(w, fa->uscc);
    resp_write_cstr(w, "region");
    resp_write_cstr(w, fa->region);
    resp_write_cstr(w, "industry");
    resp_write_cstr(w, fa->industry);
    resp_write_cstr(w, "outlets");
    resp_write_array(w, no);
    for (size_t i = 0; i < n; i++) {
        const engine_outlet *o = engine_registry_outlet_at(reg, i);
        if (strcmp(o->facility_id, fa->id) != 0)
            continue;
        resp_write_array(w, 3);
        resp_write_cstr(w, o->code);
        resp_write_cstr(w, o->mn);
        resp_write_cstr(w, o->medium == ENGINE_MEDIUM_WATER ? "water" : "gas");
    }
}

static void cmd_cems_facility(query_client *c, size_t argc, const resp_arg *argv)
{
    const engine_registry *reg = (const engine_registry *)c->srv->registry;
    char q[ENGINE_NAME_SIZE];
    if (argv[1].len == 0 || argv[1].len >= sizeof q || memchr(argv[1].ptr, 0, argv[1].len)) {
        resp_write_error(&c->out, "ERR CEMS: the search text must be 1 to 255 bytes");
        return;
    }
    memcpy(q, argv[1].ptr, argv[1].len);
    q[argv[1].len] = 0;
    size_t n = reg ? engine_registry_facility_count(reg) : 0, hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += facility_matches(reg, engine_registry_facility_at(reg, i), q);
    resp_write_array(&c->out, hits);
    for (size_t i = 0; i < n; i++) {
        const engine_facility *fa = engine_registry_facility_at(reg, i);
        if (facility_matches(reg, fa, q))
            write_facility(&c->out, reg, fa);
    }
}

const query_cmd query_cmds_cems[] = {
    {"cems.chart", -5, QUERY_CMD_READONLY, cmd_cems_chart, "cems",
     "A series reduced for a chart of the given width (M4), its limit and exceedances; "
     "FORMAT JSON: as one JSON document."},
    {"cems.facility", 2, QUERY_CMD_READONLY, cmd_cems_facility, "cems",
     "Find facilities by name, credit code, MN or region prefix."},
    {"cems.latest", -1, QUERY_CMD_READONLY, cmd_cems_latest, "cems",
     "The newest value of every series, or of those matching a filter."},
    {"cems.table", 4, QUERY_CMD_READONLY, cmd_cems_table, "cems",
     "The points of a range with their limit, flag and exceedance multiple."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
