/* cmd_periods.c: CEMS.DAILY and CEMS.EXCEEDANCES, the two questions a regulator asks of the
 * stored hourly values: how did each outlet do on a given day, and when was each over its
 * limit. Both judge exactly as the engine does, by calling it: engine_rollup_day for a local
 * day (valid with at least 20 valid hours), engine_detector for exceedance episodes (runs of
 * consecutive valid hours over the limit in force), with the registry's limits and basis
 * (the oxygen-corrected column where the limit is on that basis and the series has it).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query_int.h"
#include "series.h"

#define MAX_HOURS_PER_DAY 48 /* a day holds 24 hourly points; room for odd timestamps */

/* The MN:code:hour series of the store, filtered: their outlet (NULL when the registry does
 * not know the MN) through the callback. */
typedef int (*each_fn)(void *arg, storage_sid sid, const char *key, const query_key *k,
                       const engine_outlet *o);

static int each_hourly(query_client *c, const qfilter *f, each_fn fn, void *arg)
{
    query_server *s = c->srv;
    storage *st = s->opts.storage;
    const engine_registry *reg = (const engine_registry *)s->registry;
    int rc = query_labels_refresh(&s->labels, st, reg);
    uint32_t n = storage_series_count(st);
    for (storage_sid sid = 1; rc == 0 && sid <= n; sid++) {
        const char *key = query_labels_key(s->labels, sid);
        query_key k;
        if (!key || !query_key_split(key, &k) || strcmp(k.interval, "hour") != 0 ||
            (f->nterms && !qfilter_match(f, query_labels_text(s->labels, sid))))
            continue;
        const engine_outlet *o = reg ? engine_registry_outlet_by_mn(reg, k.mn, strlen(k.mn))
                                     : NULL;
        rc = fn(arg, sid, key, &k, o);
    }
    return rc;
}

/* Parses an optional "FILTER expr..." tail at argv[at]. */
static int parse_filter_tail(query_client *c, size_t argc, const resp_arg *argv, size_t at,
                             qfilter *f)
{
    char err[200];
    f->nterms = 0;
    if (argc == at)
        return 0;
    if (!resp_arg_ieq(&argv[at], "FILTER")) {
        resp_write_error(&c->out, "ERR CEMS: expected FILTER expr... after the arguments");
        return -EINVAL;
    }
    if (qfilter_parse(argc - at - 1, argv + at + 1, f, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return -EINVAL;
    }
    return 0;
}

/* The value a limit judges: the oxygen-corrected column for a ZS-basis limit when present. */
static bool judged_value(const storage_point *p, const engine_limit *l, double *v)
{
    if (l && l->basis == ENGINE_BASIS_ZS && (p->mask & 1u << STORAGE_COL_ZSAVG)) {
        *v = p->v[STORAGE_COL_ZSAVG];
        return true;
    }
    if (p->mask & 1u << STORAGE_COL_AVG) {
        *v = p->v[STORAGE_COL_AVG];
        return true;
    }
    return false;
}

/* ---- CEMS.DAILY ----------------------------------------------------------------------- */

typedef struct daily_ctx {
    query_client *c;
    storage_reader *r;
    const engine_registry *reg;
    int64_t day;                 /* local day start, UTC seconds */
    resp_writer body;
    size_t rows;
} daily_ctx;

static int daily_one(void *arg, storage_sid sid, const char *key, const query_key *k,
                     const engine_outlet *o)
{
    daily_ctx *x = arg;
    storage_point pts[MAX_HOURS_PER_DAY];
    size_t n = 0;
    storage_iter *it = NULL;
    int rc = storage_iter_open(x->r, sid, x->day, x->day + 86399, &it);
    while (rc == 0 && n < MAX_HOURS_PER_DAY && (rc = storage_iter_next(it, &pts[n])) == 1) {
        rc = 0;
        n++;
    }
    storage_iter_close(it);
    if (rc < 0)
        return rc;
    if (n == 0)
        return 0;
    engine_rollup_opts ro;
    engine_rollup_opts_init(&ro);
    if (o)
        ro.medium = o->medium;
    engine_period_result res;
    if ((rc = engine_rollup_day(pts, n, NULL, &ro, &res)) != 0)
        return rc == -EINVAL ? 0 : rc;
    const engine_limit *l = o ? engine_registry_limit_find(x->reg, o, k->code,
                                                           ENGINE_PERIOD_DAY, x->day) : NULL;
    double v = NAN;
    bool have = judged_value(&res.p, l, &v);
    bool over = have && res.valid && l && v > l->value;
    resp_writer *w = &x->body;
    w->proto == 3 ? resp_write_map(w, 8) : resp_write_array(w, 16);
    resp_write_cstr(w, "key");
    resp_write_cstr(w, key);
    resp_write_cstr(w, "value");
    have ? resp_write_double(w, v) : resp_write_null(w);
    resp_write_cstr(w, "valid");
    resp_write_bool(w, res.valid);
    resp_write_cstr(w, "valid_hours");
    resp_write_int(w, res.n_valid);
    resp_write_cstr(w, "hours");
    resp_write_int(w, res.n_inputs);
    resp_write_cstr(w, "flag");
    char flag[2] = {(char)res.p.flag, 0};
    resp_write_cstr(w, flag);
    resp_write_cstr(w, "limit");
    l ? resp_write_double(w, l->value) : resp_write_null(w);
    resp_write_cstr(w, "exceeds");
    resp_write_bool(w, over);
    x->rows++;
    return 0;
}

/* A local day: "YYYY-MM-DD", or any Unix ms inside it. */
static int parse_day(const resp_arg *a, int64_t *day)
{
    int y, m, d;
    char buf[16];
    int64_t ms;
    if (a->len == 10 && a->len < sizeof buf) {
        memcpy(buf, a->ptr, a->len);
        buf[a->len] = 0;
        if (sscanf(buf, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
            return -EINVAL;
        struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
        *day = (int64_t)timegm(&tm) - ENGINE_CST_OFFSET_S;
        return 0;
    }
    if (resp_arg_int64(a, &ms) != 0 || ms < 0 || ms > (INT64_C(1) << 50))
        return -EINVAL;
    *day = engine_period_start(ENGINE_PERIOD_DAY, ms / 1000, ENGINE_CST_OFFSET_S);
    return 0;
}

static void cmd_cems_daily(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    qfilter f;
    daily_ctx x = {.c = c, .reg = (const engine_registry *)c->srv->registry};
    if (!st) {
        resp_write_error(&c->out, "ERR CEMS: this server has no store open");
        return;
    }
    if (parse_day(&argv[1], &x.day) != 0) {
        resp_write_error(&c->out, "ERR CEMS: day must be YYYY-MM-DD (local) or Unix ms");
        return;
    }
    if (parse_filter_tail(c, argc, argv, 2, &f) != 0)
        return;
    resp_writer_init(&x.body, c->out.proto);
    int rc = storage_reader_open(st, &x.r);
    if (rc == 0)
        rc = each_hourly(c, &f, daily_one, &x);
    storage_reader_close(x.r);
    if (x.body.oom || rc == -ENOMEM)
        c->out.oom = true;
    else if (rc != 0)
        resp_write_errorf(&c->out, "ERR CEMS: storage error: %s", storage_strerror(rc));
    else {
        resp_write_array(&c->out, x.rows);
        resp_write_raw(&c->out, x.body.data, x.body.len);
    }
    resp_writer_free(&x.body);
}

/* ---- CEMS.EXCEEDANCES ----------------------------------------------------------------- */

typedef struct exc_ctx {
    storage_reader *r;
    const engine_registry *reg;
    int64_t from, to;
    resp_writer body;
    size_t rows;
} exc_ctx;

static int exc_one(void *arg, storage_sid sid, const char *key, const query_key *k,
                   const engine_outlet *o)
{
    exc_ctx *x = arg;
    if (!o)
        return 0; /* no outlet, no limit */
    engine_detector_opts dopt;
    engine_detector_opts_init(&dopt);
    int64_t hours = (x->to - x->from) / 3600 + 2;
    dopt.horizon = hours > 1000000 ? 1000000 : (uint32_t)hours;
    engine_detector *d = NULL;
    storage_iter *it = NULL;
    storage_point p;
    int rc = engine_detector_create(key, k->code, ENGINE_PERIOD_HOUR, &dopt, &d);
    if (rc == 0)
        rc = storage_iter_open(x->r, sid, x->from, x->to, &it);
    while (rc == 0 && (rc = storage_iter_next(it, &p)) == 1) {
        const engine_limit *l = engine_registry_limit_find(x->reg, o, k->code,
                                                           ENGINE_PERIOD_HOUR, p.ts);
        engine_period per = {.ts = p.ts, .limit = l ? l->value : NAN, .flag = p.flag,
                             .valid = true};
        if (!judged_value(&p, l, &per.value))
            continue;
        rc = engine_detector_feed(d, &per, NULL, NULL);
        rc = rc == 1 ? 0 : rc;
    }
    storage_iter_close(it);
    if (rc < 0) {
        engine_detector_destroy(d);
        return rc;
    }
    const engine_episode *eps;
    size_t n = engine_detector_episodes(d, &eps);
    resp_writer *w = &x->body;
    for (size_t i = 0; i < n; i++) {
        char id[17];
        engine_episode_id_format(eps[i].id, id);
        w->proto == 3 ? resp_write_map(w, 8) : resp_write_array(w, 16);
        resp_write_cstr(w, "key");
        resp_write_cstr(w, key);
        resp_write_cstr(w, "id");
        resp_write_cstr(w, id);
        resp_write_cstr(w, "start");
        resp_write_int(w, eps[i].start * 1000);
        resp_write_cstr(w, "end");
        resp_write_int(w, eps[i].end * 1000);
        resp_write_cstr(w, "hours");
        resp_write_int(w, eps[i].count);
        resp_write_cstr(w, "peak");
        resp_write_double(w, eps[i].peak_value);
        resp_write_cstr(w, "limit");
        resp_write_double(w, eps[i].peak_limit);
        resp_write_cstr(w, "multiple");
        resp_write_double(w, eps[i].peak_multiple);
        x->rows++;
    }
    engine_detector_destroy(d);
    return 0;
}

static int parse_ms_bound(const resp_arg *a, int64_t open_value, int64_t *s)
{
    int64_t ms;
    if (resp_arg_ieq(a, "-") || resp_arg_ieq(a, "+")) {
        *s = open_value;
        return 0;
    }
    if (resp_arg_int64(a, &ms) != 0 || ms < 0 || ms > (INT64_C(1) << 50))
        return -EINVAL;
    *s = ms / 1000;
    return 0;
}

static void cmd_cems_exceedances(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    qfilter f;
    exc_ctx x = {.reg = (const engine_registry *)c->srv->registry};
    if (!st) {
        resp_write_error(&c->out, "ERR CEMS: this server has no store open");
        return;
    }
    if (parse_ms_bound(&argv[1], 0, &x.from) != 0 ||
        parse_ms_bound(&argv[2], (int64_t)time(NULL), &x.to) != 0 || x.from > x.to) {
        resp_write_error(&c->out, "ERR CEMS: from and to must be Unix ms (or - / +), from <= "
                         "to");
        return;
    }
    if (parse_filter_tail(c, argc, argv, 3, &f) != 0)
        return;
    if (!x.reg) {
        resp_write_array(&c->out, 0);
        return;
    }
    resp_writer_init(&x.body, c->out.proto);
    int rc = storage_reader_open(st, &x.r);
    if (rc == 0)
        rc = each_hourly(c, &f, exc_one, &x);
    storage_reader_close(x.r);
    if (x.body.oom || rc == -ENOMEM)
        c->out.oom = true;
    else if (rc != 0)
        resp_write_errorf(&c->out, "ERR CEMS: storage error: %s", storage_strerror(rc));
    else {
        resp_write_array(&c->out, x.rows);
        resp_write_raw(&c->out, x.body.data, x.body.len);
    }
    resp_writer_free(&x.body);
}

const query_cmd query_cmds_periods[] = {
    {"cems.daily", -2, QUERY_CMD_READONLY, cmd_cems_daily, "cems",
     "Daily average and validity of each hourly series for a local day."},
    {"cems.exceedances", -3, QUERY_CMD_READONLY, cmd_cems_exceedances, "cems",
     "Exceedance episodes of the hourly series in a range."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
