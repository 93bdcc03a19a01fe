/* ts_range.c: TS.RANGE argument parsing, bucketing and reply writing (see ts_range.h).
 *
 * Kept apart from storage access so that the parts where RedisTimeSeries compatibility lives
 * (option grammar, bucket alignment, what an empty bucket reports, the reply shape) can be
 * tested without a store.
 */
#include "ts_range.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; int agg; } agg_names[] = {
    {"avg", TS_AGG_AVG},     {"sum", TS_AGG_SUM},     {"min", TS_AGG_MIN},
    {"max", TS_AGG_MAX},     {"range", TS_AGG_RANGE}, {"count", TS_AGG_COUNT},
    {"first", TS_AGG_FIRST}, {"last", TS_AGG_LAST},   {"std.p", TS_AGG_STD_P},
    {"std.s", TS_AGG_STD_S}, {"var.p", TS_AGG_VAR_P}, {"var.s", TS_AGG_VAR_S},
};

static int bad(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "ERR TSDB: %s", msg);
    return -EINVAL;
}

/* A timestamp argument: '-', '+' or a non-negative integer of milliseconds. */
static int parse_ts(const resp_arg *a, int64_t *ms, bool *earliest, bool *latest)
{
    *earliest = *latest = false;
    if (a->len == 1 && a->ptr[0] == '-') {
        *earliest = true;
        *ms = 0;
        return 0;
    }
    if (a->len == 1 && a->ptr[0] == '+') {
        *latest = true;
        *ms = INT64_MAX;
        return 0;
    }
    return resp_arg_int64(a, ms) == 0 && *ms >= 0 ? 0 : -EINVAL;
}

static int parse_aggregation(size_t argc, const resp_arg *argv, size_t *i, ts_range_req *r,
                             char *err, size_t errlen)
{
    if (*i + 2 >= argc)
        return bad(err, errlen, "missing AGGREGATION aggregator or bucketDuration");
    const resp_arg *name = &argv[*i + 1];
    r->agg = TS_AGG_NONE;
    for (size_t k = 0; k < sizeof agg_names / sizeof agg_names[0]; k++)
        if (resp_arg_ieq(name, agg_names[k].name))
            r->agg = agg_names[k].agg;
    if (r->agg == TS_AGG_NONE)
        return bad(err, errlen, "Unknown aggregation type");
    if (resp_arg_int64(&argv[*i + 2], &r->bucket_ms) != 0 || r->bucket_ms <= 0)
        return bad(err, errlen, "bucketDuration must be greater than zero");
    if (r->bucket_ms > TS_MAX_MS)
        return bad(err, errlen, "bucketDuration is too large");
    *i += 2;
    return 0;
}

static int parse_option(size_t argc, const resp_arg *argv, size_t *i, ts_range_req *r,
                        bool *have_align, char *err, size_t errlen)
{
    const resp_arg *a = &argv[*i];
    if (resp_arg_ieq(a, "LATEST")) {
        r->latest = true;
    } else if (resp_arg_ieq(a, "FILTER_BY_TS")) {
        int64_t t;
        while (*i + 1 < argc && resp_arg_int64(&argv[*i + 1], &t) == 0) {
            if (r->n_filter_ts == TS_MAX_FILTER_TS)
                return bad(err, errlen, "FILTER_BY_TS takes at most 128 timestamps");
            r->filter_ts[r->n_filter_ts++] = t;
            (*i)++;
        }
        if (r->n_filter_ts == 0)
            return bad(err, errlen, "FILTER_BY_TS needs at least one timestamp");
    } else if (resp_arg_ieq(a, "FILTER_BY_VALUE")) {
        if (*i + 2 >= argc || resp_arg_double(&argv[*i + 1], &r->vmin) != 0 ||
            resp_arg_double(&argv[*i + 2], &r->vmax) != 0)
            return bad(err, errlen, "Couldn't parse MIN or MAX of FILTER_BY_VALUE");
        r->filter_value = true;
        *i += 2;
    } else if (resp_arg_ieq(a, "COUNT")) {
        if (*i + 1 >= argc || resp_arg_int64(&argv[*i + 1], &r->count) != 0 || r->count < 0)
            return bad(err, errlen, "Couldn't parse COUNT");
        (*i)++;
    } else if (resp_arg_ieq(a, "ALIGN")) {
        if (*i + 1 >= argc)
            return bad(err, errlen, "missing ALIGN value");
        const resp_arg *v = &argv[++*i];
        if (resp_arg_ieq(v, "start") || (v->len == 1 && v->ptr[0] == '-'))
            r->align = TS_ALIGN_START;
        else if (resp_arg_ieq(v, "end") || (v->len == 1 && v->ptr[0] == '+'))
            r->align = TS_ALIGN_END;
        else if (resp_arg_int64(v, &r->align_ms) != 0 || r->align_ms > TS_MAX_MS ||
                 r->align_ms < -TS_MAX_MS)
            return bad(err, errlen, "unknown ALIGN parameter");
        *have_align = true;
    } else if (resp_arg_ieq(a, "AGGREGATION")) {
        return parse_aggregation(argc, argv, i, r, err, errlen);
    } else if (resp_arg_ieq(a, "BUCKETTIMESTAMP")) {
        if (*i + 1 >= argc)
            return bad(err, errlen, "missing BUCKETTIMESTAMP value");
        const resp_arg *v = &argv[++*i];
        if (resp_arg_ieq(v, "-") || resp_arg_ieq(v, "low") || resp_arg_ieq(v, "start"))
            r->bucket_ts = TS_BT_LOW;
        else if (resp_arg_ieq(v, "+") || resp_arg_ieq(v, "high") || resp_arg_ieq(v, "end"))
            r->bucket_ts = TS_BT_HIGH;
        else if (resp_arg_ieq(v, "~") || resp_arg_ieq(v, "mid"))
            r->bucket_ts = TS_BT_MID;
        else
            return bad(err, errlen, "unknown BUCKETTIMESTAMP parameter");
    } else if (resp_arg_ieq(a, "EMPTY")) {
        r->empty = true;
    } else {
        snprintf(err, errlen, "ERR TSDB: unknown option '%.*s'",
                 (int)(a->len > 32 ? 32 : a->len), a->ptr);
        return -EINVAL;
    }
    return 0;
}

int ts_range_parse(size_t argc, const resp_arg *argv, ts_range_req *r, char *err,
                   size_t errlen)
{
    bool e, l, have_align = false;
    memset(r, 0, sizeof *r);
    r->count = -1;
    if (argc < 4)
        return bad(err, errlen, "wrong number of arguments");
    if (parse_ts(&argv[2], &r->from_ms, &r->from_earliest, &l) != 0 || l)
        return bad(err, errlen, "wrong fromTimestamp");
    if (parse_ts(&argv[3], &r->to_ms, &e, &r->to_latest) != 0 || e)
        return bad(err, errlen, "wrong toTimestamp");
    for (size_t i = 4; i < argc; i++)
        if (parse_option(argc, argv, &i, r, &have_align, err, errlen) != 0)
            return -EINVAL;
    if (r->agg == TS_AGG_NONE && (have_align || r->empty || r->bucket_ts != TS_BT_LOW))
        return bad(err, errlen, "ALIGN, BUCKETTIMESTAMP and EMPTY need AGGREGATION");
    return 0;
}

int64_t ts_bucket_start(int64_t t, int64_t width, int64_t align)
{
    int64_t m = (t - align) % width;
    if (m < 0)
        m += width;
    return t - m;
}

double ts_agg_value(int agg, const storage_bucket *b)
{
    double n = (double)b->count;
    if (b->count == 0)
        return agg == TS_AGG_SUM || agg == TS_AGG_COUNT ? 0 : NAN;
    double mean = b->sum / n;
    double m2 = b->sumsq - b->sum * mean; /* sum of squared deviations */
    if (m2 < 0)
        m2 = 0;
    switch (agg) {
    case TS_AGG_AVG: return mean;
    case TS_AGG_SUM: return b->sum;
    case TS_AGG_MIN: return b->min;
    case TS_AGG_MAX: return b->max;
    case TS_AGG_RANGE: return b->max - b->min;
    case TS_AGG_COUNT: return n;
    case TS_AGG_FIRST: return b->first;
    case TS_AGG_LAST: return b->last;
    case TS_AGG_VAR_P: return m2 / n;
    case TS_AGG_VAR_S: return b->count > 1 ? m2 / (n - 1) : 0;
    case TS_AGG_STD_P: return sqrt(m2 / n);
    case TS_AGG_STD_S: return b->count > 1 ? sqrt(m2 / (n - 1)) : 0;
    default: return NAN;
    }
}

void ts_samples_free(ts_samples *s)
{
    free(s->ts);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void ts_samples_add(ts_samples *s, int64_t ts_ms, double v)
{
    if (s->oom || s->too_many)
        return;
    if (s->n == TS_MAX_REPLY_SAMPLES) {
        s->too_many = true;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *t = realloc(s->ts, cap * sizeof *t);
        if (t)
            s->ts = t;
        double *d = realloc(s->v, cap * sizeof *d);
        if (d)
            s->v = d;
        if (!t || !d) {
            s->oom = true;
            return;
        }
        s->cap = cap;
    }
    s->ts[s->n] = ts_ms;
    s->v[s->n] = v;
    s->n++;
}

void ts_bucketer_init(ts_bucketer *bk, const ts_range_req *req, int64_t align_ms,
                      ts_samples *out)
{
    memset(bk, 0, sizeof *bk);
    bk->req = req;
    bk->align = align_ms;
    bk->out = out;
    bk->prev_last = NAN;
}

static int64_t reported_ts(const ts_bucketer *bk, int64_t start)
{
    switch (bk->req->bucket_ts) {
    case TS_BT_HIGH: return start + bk->req->bucket_ms;
    case TS_BT_MID: return start + bk->req->bucket_ms / 2;
    default: return start;
    }
}

/* Emits bucket b, preceded by the empty buckets since the previous one when EMPTY asks. */
static void emit(ts_bucketer *bk, const storage_bucket *b)
{
    const ts_range_req *r = bk->req;
    if (r->empty && bk->have_prev) {
        storage_bucket none = {0};
        for (int64_t s = bk->prev_start + r->bucket_ms; s < b->start && !bk->out->too_many &&
             !bk->out->oom; s += r->bucket_ms) {
            double v = r->agg == TS_AGG_LAST ? bk->prev_last : ts_agg_value(r->agg, &none);
            ts_samples_add(bk->out, reported_ts(bk, s), v);
        }
    }
    ts_samples_add(bk->out, reported_ts(bk, b->start), ts_agg_value(r->agg, b));
    bk->have_prev = true;
    bk->prev_start = b->start;
    bk->prev_last = b->last;
}

void ts_bucketer_add(ts_bucketer *bk, int64_t ts_ms, double v)
{
    storage_bucket *c = &bk->cur;
    int64_t start = ts_bucket_start(ts_ms, bk->req->bucket_ms, bk->align);
    if (c->count > 0 && start != c->start) {
        emit(bk, c);
        c->count = 0;
    }
    if (c->count == 0) {
        memset(c, 0, sizeof *c);
        c->start = start;
        c->min = c->max = c->first = v;
        c->first_ts = c->min_ts = c->max_ts = ts_ms;
    }
    c->count++;
    c->sum += v;
    c->sumsq += v * v;
    if (v < c->min) {
        c->min = v;
        c->min_ts = ts_ms;
    }
    if (v > c->max) {
        c->max = v;
        c->max_ts = ts_ms;
    }
    c->last = v;
    c->last_ts = ts_ms;
}

void ts_bucketer_add_bucket(ts_bucketer *bk, const storage_bucket *b)
{
    ts_bucketer_finish(bk);
    if (b->count > 0)
        emit(bk, b);
}

void ts_bucketer_finish(ts_bucketer *bk)
{
    if (bk->cur.count > 0) {
        emit(bk, &bk->cur);
        bk->cur.count = 0;
    }
}

void ts_write_sample(resp_writer *w, int64_t ts_ms, double v)
{
    resp_write_sample(w, ts_ms, v);
}

void ts_write_samples(resp_writer *w, const ts_samples *s, bool reverse, int64_t count)
{
    size_t n = s->n;
    if (count >= 0 && (uint64_t)count < n)
        n = (size_t)count;
    resp_write_array(w, n);
    for (size_t i = 0; i < n; i++) {
        size_t k = reverse ? s->n - 1 - i : i;
        ts_write_sample(w, s->ts[k], s->v[k]);
    }
}
