/* cmd_ts.c: the RedisTimeSeries-style series commands: TS.GET, TS.RANGE, TS.REVRANGE, and
 * DBSIZE (the number of series).
 *
 * A key names a stored series, optionally with a column: "MN:code:interval[:column]", e.g.
 * "010000A89000:a21026:hour:zsavg"; without a column the average (or real-time value) is
 * read. The whole key is looked up first, so a series whose own key ends in a column-like
 * word still resolves. Each command opens a storage read snapshot and closes it before
 * replying, so no snapshot outlives a command. Timestamps are milliseconds on the wire and
 * seconds in storage. A range that may scan more than LOOP_MAX_POINTS points runs on a
 * worker thread (query_client_offload), so one long chart query does not stall every other
 * client of the loop.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "storage.h"
#include "series.h"
#include "ts_range.h"

#define AGG_FIRST_BATCH 4096 /* buckets asked of storage_aggregate at first */
#define LOOP_MAX_POINTS 10000 /* a query that may scan more runs on a worker thread */

static storage *store_of(query_client *c)
{
    storage *st = c->srv->opts.storage;
    if (!st)
        resp_write_error(&c->out, "ERR TSDB: this server has no store open");
    return st;
}

static void reply_storage_error(query_client *c, int rc)
{
    if (rc == -ENOENT)
        resp_write_error(&c->out, "ERR TSDB: the key does not exist");
    else
        resp_write_errorf(&c->out, "ERR TSDB: storage error: %s", storage_strerror(rc));
}

/* Finds the series and column a key names. -ENOENT when neither reading works. */
int query_resolve_key(storage *st, const char *key, size_t len, storage_sid *sid, int *col)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf || memchr(key, 0, len))
        return -ENOENT;
    memcpy(buf, key, len);
    buf[len] = 0;
    *col = STORAGE_COL_AVG;
    int rc = storage_series_lookup(st, buf, sid);
    if (rc != -ENOENT)
        return rc;
    char *colon = strrchr(buf, ':');
    int c = colon ? storage_col_parse(colon + 1) : -1;
    if (c < 0)
        return -ENOENT;
    *colon = 0;
    rc = storage_series_lookup(st, buf, sid);
    if (rc == 0)
        *col = c;
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void cmd_ts_get(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = store_of(c);
    if (!st)
        return;
    if (argc > 3 || (argc == 3 && !resp_arg_ieq(&argv[2], "LATEST"))) {
        resp_write_error(&c->out, "ERR TSDB: wrong arguments: TS.GET key [LATEST]");
        return;
    }
    storage_sid sid;
    int col;
    int rc = query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col);
    if (rc != 0) {
        reply_storage_error(c, rc);
        return;
    }
    storage_reader *r = NULL;
    storage_point p;
    if ((rc = storage_reader_open(st, &r)) == 0)
        rc = storage_latest(r, sid, &p);
    storage_reader_close(r);
    if (rc == -ENOENT || (rc == 0 && !(p.mask & (1u << col))))
        resp_write_array(&c->out, 0); /* a series without samples: [] as RedisTimeSeries */
    else if (rc != 0)
        reply_storage_error(c, rc);
    else
        ts_write_sample(&c->out, p.ts * 1000, p.v[col]);
}

static bool point_passes(const ts_range_req *q, int64_t ts_ms, double v)
{
    if (q->filter_value && (v < q->vmin || v > q->vmax))
        return false;
    if (q->n_filter_ts == 0)
        return true;
    for (size_t i = 0; i < q->n_filter_ts; i++)
        if (q->filter_ts[i] == ts_ms)
            return true;
    return false;
}

/* Reads points one by one: raw samples, or buckets built here (filters, odd widths). */
static int scan_points(storage_reader *r, storage_sid sid, int col, int64_t from_s,
                       int64_t to_s, const ts_range_req *q, ts_bucketer *bk, ts_samples *out,
                       size_t stop_after)
{
    storage_iter *it = NULL;
    storage_point p;
    int rc = storage_iter_open(r, sid, from_s, to_s, &it);
    if (rc != 0)
        return rc;
    while ((rc = storage_iter_next(it, &p)) == 1) {
        if (!(p.mask & (1u << col)))
            continue;
        int64_t ts_ms = p.ts * 1000;
        if (!point_passes(q, ts_ms, p.v[col]))
            continue;
        if (bk) {
            ts_bucketer_add(bk, ts_ms, p.v[col]);
        } else {
            ts_samples_add(out, ts_ms, p.v[col]);
            if (stop_after && out->n >= stop_after)
                break; /* forward with COUNT needs no more */
        }
        if (out->too_many || out->oom)
            break;
    }
    storage_iter_close(it);
    return rc < 0 ? rc : 0;
}

/* Asks storage for whole-second buckets, which it can answer from chunk aggregates. It
 * computes every bucket of the range in one pass, so a too-small buffer is retried larger
 * (doubling) rather than continued. */
static int scan_buckets(storage_reader *r, storage_sid sid, int col, int64_t from_s,
                        int64_t to_s, int64_t width_s, int64_t align_s, ts_bucketer *bk,
                        ts_samples *out)
{
    size_t max = AGG_FIRST_BATCH, n = 0;
    storage_bucket *buf = NULL;
    int rc;
    for (;;) {
        storage_bucket *nb = realloc(buf, max * sizeof *nb);
        if (!nb) {
            rc = -ENOMEM;
            goto done;
        }
        buf = nb;
        rc = storage_aggregate(r, sid, col, from_s, to_s, width_s, align_s, buf, max, &n);
        if (rc != -ERANGE)
            break;
        if (max > TS_MAX_REPLY_SAMPLES) {
            out->too_many = true;
            rc = 0;
            goto done;
        }
        max *= 2;
    }
    for (size_t i = 0; rc == 0 && i < n && !out->too_many && !out->oom; i++) {
        storage_bucket b = buf[i];
        b.start *= 1000;
        ts_bucketer_add_bucket(bk, &b);
    }
done:
    free(buf);
    return rc;
}

/* Seconds between points of a series' interval class, for estimates. */
static int64_t step_of(storage *st, storage_sid sid)
{
    switch (storage_series_interval(st, sid)) {
    case STORAGE_IV_RTD: return 1;
    case STORAGE_IV_MIN: return 60;
    case STORAGE_IV_DAY: return 86400;
    default: return 3600;
    }
}

/* The newest q->count samples (TS.REVRANGE ... COUNT n): windows reaching back from the
 * end, four times longer each time, instead of the whole history. */
static int scan_newest(storage_reader *r, storage_sid sid, int col, int64_t from_s,
                       int64_t to_s, int64_t step, const ts_range_req *q, ts_samples *out)
{
    int64_t hi = to_s, lo, span = step * (q->count < 8 ? 16 : 2 * q->count);
    if (hi == INT64_MAX) {
        storage_point p;
        int rc = storage_latest(r, sid, &p);
        if (rc != 0)
            return rc == -ENOENT ? 0 : rc;
        hi = p.ts;
    }
    for (;;) {
        if (__builtin_sub_overflow(hi, span, &lo) || lo < from_s)
            lo = from_s;
        out->n = 0;
        int rc = scan_points(r, sid, col, lo, hi, q, NULL, out, 0);
        if (rc != 0 || out->n >= (uint64_t)q->count || lo == from_s || out->too_many ||
            out->oom)
            return rc;
        span = span > INT64_MAX / 4 ? INT64_MAX : span * 4;
    }
}

int query_ts_collect(storage *st, storage_reader *r, storage_sid sid, int col,
                     const ts_range_req *qp, bool reverse, ts_samples *out)
{
    ts_range_req q = *qp;
    int64_t from_s = q.from_earliest ? INT64_MIN : -floor_div(-q.from_ms, 1000);
    int64_t to_s = q.to_latest ? INT64_MAX : floor_div(q.to_ms, 1000);
    int rc = 0;
    if (from_s > to_s)
        return 0;
    if (q.agg == TS_AGG_NONE && reverse && q.count > 0) {
        rc = scan_newest(r, sid, col, from_s, to_s, step_of(st, sid), &q, out);
    } else if (q.agg == TS_AGG_NONE) {
        rc = scan_points(r, sid, col, from_s, to_s, &q, NULL, out,
                         !reverse && q.count > 0 ? (size_t)q.count : 0);
    } else {
        int64_t align = q.align_ms;
        if (q.align == TS_ALIGN_START)
            align = q.from_earliest ? 0 : q.from_ms;
        else if (q.align == TS_ALIGN_END)
            align = q.to_latest ? 0 : q.to_ms;
        ts_bucketer bk;
        ts_bucketer_init(&bk, &q, align, out);
        bool whole = q.bucket_ms % 1000 == 0 && align % 1000 == 0;
        if (whole && !q.filter_value && q.n_filter_ts == 0)
            rc = scan_buckets(r, sid, col, from_s, to_s, q.bucket_ms / 1000, align / 1000,
                              &bk, out);
        else
            rc = scan_points(r, sid, col, from_s, to_s, &q, &bk, out, 0);
        ts_bucketer_finish(&bk);
    }
    return rc;
}

static void ts_range(query_client *c, size_t argc, const resp_arg *argv, bool reverse)
{
    storage *st = store_of(c);
    if (!st)
        return;
    ts_range_req q;
    char err[160];
    if (ts_range_parse(argc, argv, &q, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return;
    }
    storage_sid sid;
    int col;
    int rc = query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col);
    if (rc != 0) {
        reply_storage_error(c, rc);
        return;
    }
    /* A range of a series that has not changed since the same request is answered from the
     * reply cache (cache.c); on a worker thread too. */
    query_cache_req k;
    uint64_t ver, errors = c->out.errors;
    if (query_cache_reply(c, argc, argv, sid, 0, &k, &ver))
        return;
    size_t start = c->out.len;
    /* Milliseconds to whole seconds inside [from, to]. */
    int64_t from_s = q.from_earliest ? INT64_MIN : -floor_div(-q.from_ms, 1000);
    int64_t to_s = q.to_latest ? INT64_MAX : floor_div(q.to_ms, 1000);
    ts_samples out = {0};
    storage_reader *r = NULL;
    if (from_s > to_s)
        goto reply;
    if ((rc = storage_reader_open(st, &r)) != 0)
        goto fail;
    rc = query_ts_collect(st, r, sid, col, &q, reverse, &out);
    storage_reader_close(r);
    if (rc != 0)
        goto fail;
reply:
    if (out.oom)
        c->out.oom = true;
    else if (out.too_many)
        resp_write_errorf(&c->out, "ERR TSDB: the reply would hold more than %d samples; "
                          "narrow the range or use COUNT or AGGREGATION", TS_MAX_REPLY_SAMPLES);
    else
        ts_write_samples(&c->out, &out, reverse, q.count);
    ts_samples_free(&out);
    query_cache_keep(c, &k, ver, 0, start, errors);
    return;
fail:
    ts_samples_free(&out);
    reply_storage_error(c, rc);
}

static void ts_range_fwd(query_client *c, size_t argc, const resp_arg *argv)
{
    ts_range(c, argc, argv, false);
}

static void ts_range_rev(query_client *c, size_t argc, const resp_arg *argv)
{
    ts_range(c, argc, argv, true);
}

/* Whether a range query may scan more points than the loop thread should (it must not stall
 * other clients for more than about a millisecond). Bad arguments are answered inline. */
static bool is_long_scan(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    ts_range_req q;
    char err[160];
    storage_sid sid;
    int col;
    if (!st || ts_range_parse(argc, argv, &q, err, sizeof err) != 0 ||
        query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col) != 0)
        return false;
    if (q.agg == TS_AGG_NONE && q.count >= 0 && q.count <= LOOP_MAX_POINTS &&
        !q.filter_value && q.n_filter_ts == 0)
        return false; /* COUNT bounds the scan */
    if (q.from_earliest || q.to_latest)
        return true;
    return q.to_ms > q.from_ms && (q.to_ms - q.from_ms) / 1000 / step_of(st, sid) >
           LOOP_MAX_POINTS;
}

/* Answers from the reply cache when it can (before a thread hop costs more than the copy). */
static bool cached(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    storage_sid sid;
    int col;
    query_cache_req k;
    uint64_t ver;
    return st && query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col) == 0 &&
           query_cache_reply(c, argc, argv, sid, 0, &k, &ver);
}

static void cmd_ts_range(query_client *c, size_t argc, const resp_arg *argv)
{
    if (cached(c, argc, argv))
        return;
    if (is_long_scan(c, argc, argv))
        query_client_offload(c, ts_range_fwd, argc, argv);
    else
        ts_range_fwd(c, argc, argv);
}

static void cmd_ts_revrange(query_client *c, size_t argc, const resp_arg *argv)
{
    if (cached(c, argc, argv))
        return;
    if (is_long_scan(c, argc, argv))
        query_client_offload(c, ts_range_rev, argc, argv);
    else
        ts_range_rev(c, argc, argv);
}

static void cmd_dbsize(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    resp_write_int(&c->out, st ? (int64_t)storage_series_count(st) : 0);
}

const query_cmd query_cmds_ts[] = {
    {"dbsize", 1, QUERY_CMD_FAST | QUERY_CMD_READONLY, cmd_dbsize, "server",
     "Return the number of series."},
    {"ts.get", -2, QUERY_CMD_FAST | QUERY_CMD_READONLY, cmd_ts_get, "timeseries",
     "Get the newest sample of a series."},
    {"ts.range", -4, QUERY_CMD_READONLY, cmd_ts_range, "timeseries",
     "Query a range of a series, raw or aggregated into buckets."},
    {"ts.revrange", -4, QUERY_CMD_READONLY, cmd_ts_revrange, "timeseries",
     "Query a range of a series in reverse order."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
