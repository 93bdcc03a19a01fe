/* cmd_periods.c: CEMS.DAILY and CEMS.EXCEEDANCES, the two questions a regulator asks of the
 * stored hourly values: how did each outlet do on a given day, and when was each over its
 * limit. The rows are the engine's (engine/daily.c), the same `plume export` writes: a local
 * day rolled up by the validity rules (valid with at least 20 valid hours), episodes from
 * engine_detector (runs of consecutive valid hours over the limit in force), judged on the
 * registry's limits and basis (oxygen-corrected as sent, or corrected from the outlet's O2).
 * This file only selects the series and writes the replies.
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

/* Reads the points of key's series in [from, to] into a growable array (*pts, *cap); the
 * count, or a negative code. A series that does not exist has no points. */
static long read_points(query_server *s, storage_reader *r, const char *key, int64_t from,
                        int64_t to, storage_point **pts, size_t *cap)
{
    storage_sid sid;
    storage_iter *it = NULL;
    if (storage_series_lookup(s->opts.storage, key, &sid) != 0)
        return 0;
    int rc = storage_iter_open(r, sid, from, to, &it);
    size_t n = 0;
    while (rc == 0) {
        if (n == *cap) {
            size_t c = *cap ? 2 * *cap : 64;
            storage_point *p = realloc(*pts, c * sizeof *p);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *pts = p;
            *cap = c;
        }
        if ((rc = storage_iter_next(it, &(*pts)[n])) == 1) {
            rc = 0;
            n++;
        } else if (rc == 0) {
            break;
        }
    }
    storage_iter_close(it);
    return rc < 0 ? rc : (long)n;
}

/* The outlet's hourly O2 over [from, to] when its pollutants are corrected (engine daily.c
 * corrects with it, as ingest does); 0 points otherwise. */
static long read_o2(query_server *s, storage_reader *r, const engine_outlet *o, int64_t from,
                    int64_t to, storage_point **pts, size_t *cap)
{
    char key[160];
    if (!o || isnan(o->o2_ref) ||
        engine_series_key(o->mn, "a19001", STORAGE_IV_HOUR, key, sizeof key) < 0)
        return 0;
    return read_points(s, r, key, from, to, pts, cap);
}

/* ---- CEMS.DAILY ----------------------------------------------------------------------- */

typedef struct daily_ctx {
    query_client *c;
    storage_reader *r;
    const engine_registry *reg;
    int64_t day;                 /* local day start, UTC seconds */
    resp_writer body;
    size_t rows;
    const char *key;
    storage_point *o2;           /* scratch for the outlet's O2 */
    size_t o2_cap;
} daily_ctx;

/* One row as the engine computes it (engine_daily_rows); CEMS.DAILY shows the daily limit. */
static int daily_write(void *arg, const engine_daily_row *row)
{
    daily_ctx *x = arg;
    const engine_limit *l = row->limit && row->limit->period == ENGINE_PERIOD_DAY ? row->limit
                                                                                 : NULL;
    const storage_point *p = &row->r.p;
    double v = l ? row->judged : (p->mask & 1u << STORAGE_COL_AVG) ? p->v[STORAGE_COL_AVG] : NAN;
    resp_writer *w = &x->body;
    w->proto == 3 ? resp_write_map(w, 8) : resp_write_array(w, 16);
    resp_write_cstr(w, "key");
    resp_write_cstr(w, x->key);
    resp_write_cstr(w, "value");
    isnan(v) ? resp_write_null(w) : resp_write_double(w, v);
    resp_write_cstr(w, "valid");
    resp_write_bool(w, row->r.valid);
    resp_write_cstr(w, "valid_hours");
    resp_write_int(w, row->r.n_valid);
    resp_write_cstr(w, "hours");
    resp_write_int(w, row->r.n_inputs);
    resp_write_cstr(w, "flag");
    char flag[2] = {(char)p->flag, 0};
    resp_write_cstr(w, flag);
    resp_write_cstr(w, "limit");
    l ? resp_write_double(w, l->value) : resp_write_null(w);
    resp_write_cstr(w, "exceeds");
    resp_write_bool(w, l && row->exceeds);
    x->rows++;
    return 0;
}

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
    long no2 = read_o2(x->c->srv, x->r, o, x->day, x->day + 86399, &x->o2, &x->o2_cap);
    if (no2 < 0)
        return (int)no2;
    engine_daily_input in = {
        .mn = k->mn, .pollutant = k->code, .outlet = o,
        .facility = o ? engine_registry_facility(x->reg, o->facility_id) : NULL,
        .hours = pts, .nhours = n, .o2 = x->o2, .no2 = (size_t)no2,
        .from_day = x->day, .to_day = x->day,
    };
    x->key = key;
    return engine_daily_rows(x->reg, &in, NULL, daily_write, x);
}

/* A local day: "YYYY-MM-DD", or any Unix ms inside it. */
static int parse_day(const resp_arg *a, int64_t *day)
{
    int64_t ms;
    if (a->len == 10 && a->ptr[4] == '-')
        return engine_day_parse(a->ptr, a->len, day);
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
    free(x.o2);
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
    query_client *c;
    storage_reader *r;
    const engine_registry *reg;
    int64_t from, to;
    resp_writer body;
    size_t rows;
    const char *key;
    storage_point *hours, *o2;   /* scratch, grown as needed */
    size_t hours_cap, o2_cap;
} exc_ctx;

/* One hourly episode as the engine judges it (engine_episode_rows). */
static int exc_write(void *arg, const engine_episode_row *row)
{
    exc_ctx *x = arg;
    if (row->kind != ENGINE_PERIOD_HOUR)
        return 0;
    resp_writer *w = &x->body;
    w->proto == 3 ? resp_write_map(w, 8) : resp_write_array(w, 16);
    resp_write_cstr(w, "key");
    resp_write_cstr(w, x->key);
    resp_write_cstr(w, "id");
    resp_write_cstr(w, row->alert_id);
    resp_write_cstr(w, "start");
    resp_write_int(w, row->ep.start * 1000);
    resp_write_cstr(w, "end");
    resp_write_int(w, row->ep.end * 1000);
    resp_write_cstr(w, "hours");
    resp_write_int(w, row->ep.count);
    resp_write_cstr(w, "peak");
    resp_write_double(w, row->ep.peak_value);
    resp_write_cstr(w, "limit");
    resp_write_double(w, row->ep.peak_limit);
    resp_write_cstr(w, "multiple");
    resp_write_double(w, row->ep.peak_multiple);
    x->rows++;
    return 0;
}

static int exc_one(void *arg, storage_sid sid, const char *key, const query_key *k,
                   const engine_outlet *o)
{
    exc_ctx *x = arg;
    if (!o)
        return 0; /* no outlet, no limit */
    (void)sid;
    long n = read_points(x->c->srv, x->r, key, x->from, x->to, &x->hours, &x->hours_cap);
    long no2 = n > 0 ? read_o2(x->c->srv, x->r, o, x->from, x->to, &x->o2, &x->o2_cap) : 0;
    if (n <= 0 || no2 < 0)
        return n < 0 ? (int)n : (int)no2;
    engine_daily_input in = {
        .mn = k->mn, .pollutant = k->code, .outlet = o,
        .facility = engine_registry_facility(x->reg, o->facility_id),
        .hours = x->hours, .nhours = (size_t)n, .o2 = x->o2, .no2 = (size_t)no2,
        .from_day = engine_period_start(ENGINE_PERIOD_DAY, x->from, ENGINE_CST_OFFSET_S),
        .to_day = engine_period_start(ENGINE_PERIOD_DAY, x->to, ENGINE_CST_OFFSET_S),
    };
    x->key = key;
    return engine_episode_rows(x->reg, &in, NULL, exc_write, x);
}

/* A range bound in seconds: '-' / '+' stand for open_value. */
static int parse_ms_bound(const resp_arg *a, int64_t open_value, int64_t *s)
{
    int64_t ms = 0;
    int open;
    if (query_parse_ms(a, &ms, &open) != 0)
        return -EINVAL;
    *s = open ? open_value : ms / 1000;
    return 0;
}

static void cmd_cems_exceedances(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    qfilter f;
    exc_ctx x = {.c = c, .reg = (const engine_registry *)c->srv->registry};
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
    free(x.hours);
    free(x.o2);
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
