/* cmd_multi.c: the RedisTimeSeries commands over many series or about one: TS.MRANGE,
 * TS.MREVRANGE, TS.MGET, TS.QUERYINDEX and TS.INFO.
 *
 * Series are selected by FILTER expressions over their labels (labels.c derives them from
 * the key and the registry). Each selected series is read as TS.RANGE reads one (cmd_ts.c's
 * query_ts_collect) under one read snapshot, so a multi-series reply is consistent. Replies
 * follow RedisTimeSeries: in RESP2 an array of [key, labels, samples]; in RESP3 a map from
 * key to [labels, samples]. GROUPBY label REDUCE r merges the series of each label value
 * timestamp by timestamp, as RedisTimeSeries does.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "series.h"

#define MAX_SELECTED 32

typedef struct mopts {
    bool withlabels;
    const resp_arg *selected[MAX_SELECTED];
    size_t nselected;
    qfilter filter;
    const resp_arg *groupby;      /* NULL: none */
    int reduce;                   /* enum ts_agg */
    const char *reduce_name;
    const resp_arg *rest[64];     /* the TS.RANGE options, passed on */
    size_t nrest;
} mopts;

static const char *const range_words[] = {
    "LATEST", "FILTER_BY_TS", "FILTER_BY_VALUE", "COUNT", "ALIGN", "AGGREGATION",
    "BUCKETTIMESTAMP", "EMPTY", "WITHLABELS", "SELECTED_LABELS", "FILTER", NULL,
};

static bool is_word(const resp_arg *a)
{
    for (int i = 0; range_words[i]; i++)
        if (resp_arg_ieq(a, range_words[i]))
            return true;
    return false;
}

static const struct { const char *name; int agg; } reducers[] = {
    {"avg", TS_AGG_AVG}, {"sum", TS_AGG_SUM}, {"min", TS_AGG_MIN}, {"max", TS_AGG_MAX},
    {"range", TS_AGG_RANGE}, {"count", TS_AGG_COUNT}, {"std.p", TS_AGG_STD_P},
    {"std.s", TS_AGG_STD_S}, {"var.p", TS_AGG_VAR_P}, {"var.s", TS_AGG_VAR_S},
};

/* Splits argv[first..argc) into the label options, FILTER, GROUPBY, and the rest. */
static int mopts_parse(size_t argc, const resp_arg *argv, size_t first, bool allow_group,
                       mopts *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    size_t i = first, fstart = 0, fend = 0;
    for (; i < argc; i++) {
        if (resp_arg_ieq(&argv[i], "WITHLABELS")) {
            m->withlabels = true;
        } else if (resp_arg_ieq(&argv[i], "SELECTED_LABELS")) {
            while (i + 1 < argc && !is_word(&argv[i + 1]) && m->nselected < MAX_SELECTED)
                m->selected[m->nselected++] = &argv[++i];
            if (m->nselected == 0)
                goto syntax;
        } else if (resp_arg_ieq(&argv[i], "FILTER")) {
            fstart = ++i;
            while (i < argc && !resp_arg_ieq(&argv[i], "GROUPBY"))
                i++;
            fend = i;
            if (i < argc) {
                if (!allow_group || i + 4 != argc || !resp_arg_ieq(&argv[i + 2], "REDUCE"))
                    goto syntax;
                m->groupby = &argv[i + 1];
                m->reduce = -1;
                for (size_t r = 0; r < sizeof reducers / sizeof reducers[0]; r++)
                    if (resp_arg_ieq(&argv[i + 3], reducers[r].name)) {
                        m->reduce = reducers[r].agg;
                        m->reduce_name = reducers[r].name;
                    }
                if (m->reduce < 0) {
                    snprintf(err, errlen, "ERR TSDB: unknown REDUCE reducer");
                    return -EINVAL;
                }
            }
            break;
        } else if (m->nrest < sizeof m->rest / sizeof m->rest[0]) {
            m->rest[m->nrest++] = &argv[i];
        } else {
            goto syntax;
        }
    }
    if (m->withlabels && m->nselected) {
        snprintf(err, errlen, "ERR TSDB: WITHLABELS and SELECTED_LABELS are mutually "
                 "exclusive");
        return -EINVAL;
    }
    if (fstart == 0) {
        snprintf(err, errlen, "ERR TSDB: missing FILTER argument");
        return -EINVAL;
    }
    return qfilter_parse(fend - fstart, argv + fstart, &m->filter, err, errlen);
syntax:
    snprintf(err, errlen, "ERR TSDB: wrong arguments; see PROTOCOL.md for the syntax");
    return -EINVAL;
}

/* The store and an up-to-date label cache, or an error reply. */
static storage *ready(query_client *c)
{
    query_server *s = c->srv;
    storage *st = s->opts.storage;
    if (!st) {
        resp_write_error(&c->out, "ERR TSDB: this server has no store open");
        return NULL;
    }
    int rc = query_labels_refresh(&s->labels, st, (const engine_registry *)s->registry);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR TSDB: cannot read the series labels: %s",
                          storage_strerror(rc));
        return NULL;
    }
    return st;
}

static void write_pair(resp_writer *w, const char *name, size_t nl, const char *v)
{
    resp_write_array(w, 2);
    resp_write_bulk(w, name, nl);
    if (v)
        resp_write_cstr(w, v);
    else
        resp_write_null(w);
}

/* The labels part of a reply: all (WITHLABELS), the selected, or none. */
static void write_labels(resp_writer *w, const mopts *m, const char *text)
{
    char name[QF_MAX_TEXT], v[512];
    if (m->nselected) {
        if (w->proto == 3)
            resp_write_map(w, m->nselected);
        else
            resp_write_array(w, m->nselected);
        for (size_t i = 0; i < m->nselected; i++) {
            size_t nl = m->selected[i]->len < sizeof name ? m->selected[i]->len
                                                          : sizeof name - 1;
            memcpy(name, m->selected[i]->ptr, nl);
            name[nl] = 0;
            bool have = query_label_get(text, name, v, sizeof v);
            if (w->proto == 3) {
                resp_write_bulk(w, name, nl);
                have ? resp_write_cstr(w, v) : resp_write_null(w);
            } else {
                write_pair(w, name, nl, have ? v : NULL);
            }
        }
        return;
    }
    size_t n = 0;
    if (m->withlabels && text[0]) {
        n = 1;
        for (const char *p = text; *p; p++)
            n += *p == '\n';
    }
    if (w->proto == 3)
        resp_write_map(w, n);
    else
        resp_write_array(w, n);
    for (const char *p = text; n && *p;) {
        const char *end = strchr(p, '\n');
        size_t ll = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', ll);
        size_t nl = eq ? (size_t)(eq - p) : ll;
        size_t vl = eq ? ll - nl - 1 : 0;
        if (w->proto == 3) {
            resp_write_bulk(w, p, nl);
            resp_write_bulk(w, eq ? eq + 1 : "", vl);
        } else {
            resp_write_array(w, 2);
            resp_write_bulk(w, p, nl);
            resp_write_bulk(w, eq ? eq + 1 : "", vl);
        }
        p = end ? end + 1 : p + ll;
    }
}

static void write_series_head(resp_writer *w, const char *key)
{
    if (w->proto == 3) {
        resp_write_cstr(w, key);
        resp_write_array(w, 2);
    } else {
        resp_write_array(w, 3);
        resp_write_cstr(w, key);
    }
}

/* ---- TS.MRANGE / TS.MREVRANGE ------------------------------------------------------------ */

/* One series of an MRANGE reply as RedisTimeSeries writes it: RESP2 [key, labels, samples];
 * RESP3 key => [labels, {aggregators: [name...]}, samples], or for a GROUPBY group
 * key => [labels, {reducers: [name]}, {sources: [key...]}, samples]. */
static void write_mrange_head(resp_writer *w, const char *key, bool grouped)
{
    if (w->proto == 3) {
        resp_write_cstr(w, key);
        resp_write_array(w, grouped ? 4 : 3);
    } else {
        resp_write_array(w, 3);
        resp_write_cstr(w, key);
    }
}

static const char *const agg_names[] = {
    [TS_AGG_AVG] = "avg",     [TS_AGG_SUM] = "sum",     [TS_AGG_MIN] = "min",
    [TS_AGG_MAX] = "max",     [TS_AGG_RANGE] = "range", [TS_AGG_COUNT] = "count",
    [TS_AGG_FIRST] = "first", [TS_AGG_LAST] = "last",   [TS_AGG_STD_P] = "std.p",
    [TS_AGG_STD_S] = "std.s", [TS_AGG_VAR_P] = "var.p", [TS_AGG_VAR_S] = "var.s",
};

/* RESP3 only: the map naming the series' aggregator (none: an empty array). */
static void write_aggregators(resp_writer *w, int agg)
{
    if (w->proto != 3)
        return;
    bool named = agg > TS_AGG_NONE && agg <= TS_AGG_VAR_S;
    resp_write_map(w, 1);
    resp_write_cstr(w, "aggregators");
    resp_write_array(w, named);
    if (named)
        resp_write_cstr(w, agg_names[agg]);
}

typedef struct tv { int64_t ts; double v; } tv;

static int tv_cmp(const void *x, const void *y)
{
    const tv *a = x, *b = y;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

/* Merges the samples of a group timestamp by timestamp with the reducer. */
static int reduce_group(ts_samples *in, size_t n, int agg, ts_samples *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += in[i].n;
    tv *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < in[i].n; j++)
            all[k++] = (tv){in[i].ts[j], in[i].v[j]};
    qsort(all, k, sizeof *all, tv_cmp);
    for (size_t i = 0; i < k;) {
        storage_bucket b = {.start = all[i].ts, .min = all[i].v, .max = all[i].v};
        size_t j = i;
        for (; j < k && all[j].ts == all[i].ts; j++) {
            double v = all[j].v;
            b.count++;
            b.sum += v;
            b.sumsq += v * v;
            b.min = v < b.min ? v : b.min;
            b.max = v > b.max ? v : b.max;
        }
        ts_samples_add(out, all[i].ts, ts_agg_value(agg, &b));
        i = j;
    }
    free(all);
    return out->oom ? -ENOMEM : 0;
}

static void write_groups(query_client *c, const mopts *m, const query_labels *l,
                         const storage_sid *ids, ts_samples *res, size_t n, bool reverse,
                         int64_t count)
{
    char gname[QF_MAX_TEXT];
    size_t gl = m->groupby->len < sizeof gname ? m->groupby->len : sizeof gname - 1;
    memcpy(gname, m->groupby->ptr, gl);
    gname[gl] = 0;
    /* Group values in order of first appearance; series without the label are left out. */
    char (*vals)[512] = calloc(n ? n : 1, sizeof *vals);
    size_t *gi = calloc(n ? n : 1, sizeof *gi);
    size_t ng = 0;
    if (!vals || !gi)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        char v[512];
        gi[i] = SIZE_MAX;
        if (!query_label_get(query_labels_text(l, ids[i]), gname, v, sizeof v) || !v[0])
            continue;
        size_t g = 0;
        while (g < ng && strcmp(vals[g], v) != 0)
            g++;
        if (g == ng)
            memcpy(vals[ng++], v, sizeof v);
        gi[i] = g;
    }
    resp_writer *w = &c->out;
    w->proto == 3 ? resp_write_map(w, ng) : resp_write_array(w, ng);
    for (size_t g = 0; g < ng; g++) {
        ts_samples *members = calloc(n, sizeof *members), out = {0};
        char src[4096];
        size_t nm = 0, sl = 0;
        if (!members)
            goto oom;
        src[0] = 0;
        for (size_t i = 0; i < n; i++)
            if (gi[i] == g) {
                members[nm++] = res[i];
                int k = snprintf(src + sl, sizeof src - sl, "%s%s", sl ? "," : "",
                                 query_labels_key(l, ids[i]));
                if (k > 0 && (size_t)k < sizeof src - sl)
                    sl += (size_t)k;
            }
        int rc = reduce_group(members, nm, m->reduce, &out);
        free(members);
        if (rc != 0) {
            ts_samples_free(&out);
            goto oom;
        }
        char key[700];
        snprintf(key, sizeof key, "%s=%s", gname, vals[g]);
        write_mrange_head(w, key, true);
        /* The group's labels: its own, with (RESP2) __reducer__ and __source__; RESP3
         * gives those two as maps of their own. */
        char text[5000];
        int tl = snprintf(text, sizeof text, "%s=%s", gname, vals[g]);
        if (w->proto != 3 || m->nselected)
            snprintf(text + tl, sizeof text - (size_t)tl, "\n__reducer__=%s\n__source__=%s",
                     m->reduce_name, src);
        write_labels(w, m, text);
        if (w->proto == 3) {
            resp_write_map(w, 1);
            resp_write_cstr(w, "reducers");
            resp_write_array(w, 1);
            resp_write_cstr(w, m->reduce_name);
            resp_write_map(w, 1);
            resp_write_cstr(w, "sources");
            resp_write_array(w, nm);
            for (size_t i = 0; i < n; i++)
                if (gi[i] == g)
                    resp_write_cstr(w, query_labels_key(l, ids[i]));
        }
        ts_write_samples(w, &out, reverse, count);
        ts_samples_free(&out);
    }
    free(vals);
    free(gi);
    return;
oom:
    free(vals);
    free(gi);
    c->out.oom = true;
}

static void mrange(query_client *c, size_t argc, const resp_arg *argv, bool reverse)
{
    storage *st = ready(c);
    if (!st)
        return;
    mopts m;
    char err[200];
    if (mopts_parse(argc, argv, 3, true, &m, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return;
    }
    /* TS.RANGE's parser reads argv[2], argv[3] as from and to, options from argv[4]. */
    resp_arg rargv[4 + 64];
    rargv[0] = argv[0];
    rargv[1] = argv[0];
    rargv[2] = argv[1];
    rargv[3] = argv[2];
    for (size_t i = 0; i < m.nrest; i++)
        rargv[4 + i] = *m.rest[i];
    ts_range_req q;
    if (ts_range_parse(4 + m.nrest, rargv, &q, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return;
    }
    storage_sid *ids = NULL;
    size_t n = 0;
    ts_samples *res = NULL;
    storage_reader *r = NULL;
    int rc = query_labels_select(c->srv->labels, &m.filter, &ids, &n);
    if (rc == 0 && !(res = calloc(n ? n : 1, sizeof *res)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = storage_reader_open(st, &r);
    uint64_t total = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = query_ts_collect(st, r, ids[i], STORAGE_COL_AVG, &q, reverse, &res[i]);
        total += res[i].n;
        if (res[i].oom)
            rc = -ENOMEM;
        else if (res[i].too_many || total > TS_MAX_REPLY_SAMPLES)
            rc = -E2BIG;
    }
    storage_reader_close(r);
    if (rc == -E2BIG) {
        resp_write_errorf(&c->out, "ERR TSDB: the reply would hold more than %d samples; "
                          "narrow the range or the filter, or aggregate", TS_MAX_REPLY_SAMPLES);
    } else if (rc != 0) {
        resp_write_errorf(&c->out, "ERR TSDB: storage error: %s", storage_strerror(rc));
    } else if (m.groupby) {
        write_groups(c, &m, c->srv->labels, ids, res, n, reverse, q.count);
    } else {
        resp_writer *w = &c->out;
        w->proto == 3 ? resp_write_map(w, n) : resp_write_array(w, n);
        for (size_t i = 0; i < n; i++) {
            write_mrange_head(w, query_labels_key(c->srv->labels, ids[i]), false);
            write_labels(w, &m, query_labels_text(c->srv->labels, ids[i]));
            write_aggregators(w, q.agg);
            ts_write_samples(w, &res[i], reverse, q.count);
        }
    }
    for (size_t i = 0; res && i < n; i++)
        ts_samples_free(&res[i]);
    free(res);
    free(ids);
}

static void cmd_ts_mrange(query_client *c, size_t argc, const resp_arg *argv)
{
    mrange(c, argc, argv, false);
}

static void cmd_ts_mrevrange(query_client *c, size_t argc, const resp_arg *argv)
{
    mrange(c, argc, argv, true);
}

/* ---- TS.MGET, TS.QUERYINDEX ------------------------------------------------------------- */

static void cmd_ts_mget(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = ready(c);
    if (!st)
        return;
    mopts m;
    char err[200];
    if (mopts_parse(argc, argv, 1, false, &m, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return;
    }
    for (size_t i = 0; i < m.nrest; i++)
        if (!resp_arg_ieq(m.rest[i], "LATEST")) {
            resp_write_error(&c->out, "ERR TSDB: wrong arguments: TS.MGET [LATEST] "
                             "[WITHLABELS | SELECTED_LABELS label...] FILTER expr...");
            return;
        }
    storage_sid *ids = NULL;
    size_t n = 0;
    storage_reader *r = NULL;
    int rc = query_labels_select(c->srv->labels, &m.filter, &ids, &n);
    if (rc == 0)
        rc = storage_reader_open(st, &r);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR TSDB: storage error: %s", storage_strerror(rc));
        free(ids);
        return;
    }
    resp_writer *w = &c->out;
    w->proto == 3 ? resp_write_map(w, n) : resp_write_array(w, n);
    for (size_t i = 0; i < n; i++) {
        write_series_head(w, query_labels_key(c->srv->labels, ids[i]));
        write_labels(w, &m, query_labels_text(c->srv->labels, ids[i]));
        storage_point p;
        if (storage_latest(r, ids[i], &p) == 0 && (p.mask & 1u << STORAGE_COL_AVG))
            ts_write_sample(w, p.ts * 1000, p.v[STORAGE_COL_AVG]);
        else
            resp_write_array(w, 0);
    }
    storage_reader_close(r);
    free(ids);
}

static void cmd_ts_queryindex(query_client *c, size_t argc, const resp_arg *argv)
{
    if (!ready(c))
        return;
    qfilter f;
    char err[200];
    if (qfilter_parse(argc - 1, argv + 1, &f, err, sizeof err) != 0) {
        resp_write_error(&c->out, err);
        return;
    }
    storage_sid *ids = NULL;
    size_t n = 0;
    if (query_labels_select(c->srv->labels, &f, &ids, &n) != 0) {
        c->out.oom = true;
        return;
    }
    c->out.proto == 3 ? resp_write_set(&c->out, n) : resp_write_array(&c->out, n);
    for (size_t i = 0; i < n; i++)
        resp_write_cstr(&c->out, query_labels_key(c->srv->labels, ids[i]));
    free(ids);
}

/* ---- TS.INFO --------------------------------------------------------------------------- */

static void cmd_ts_info(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = ready(c);
    if (!st)
        return;
    if (argc > 3 || (argc == 3 && !resp_arg_ieq(&argv[2], "DEBUG"))) {
        resp_write_error(&c->out, "ERR TSDB: wrong arguments: TS.INFO key [DEBUG]");
        return;
    }
    storage_sid sid;
    int col;
    int rc = query_resolve_key(st, argv[1].ptr, argv[1].len, &sid, &col);
    if (rc != 0) {
        resp_write_error(&c->out, rc == -ENOENT ? "ERR TSDB: the key does not exist"
                                                : "ERR TSDB: storage error");
        return;
    }
    storage_reader *r = NULL;
    storage_iter *it = NULL;
    storage_point first, last;
    storage_bucket b = {0};
    size_t nb = 0;
    bool any = false;
    if ((rc = storage_reader_open(st, &r)) == 0 && storage_latest(r, sid, &last) == 0 &&
        (rc = storage_iter_open(r, sid, INT64_MIN, INT64_MAX, &it)) == 0 &&
        storage_iter_next(it, &first) == 1) {
        any = true;
        storage_iter_close(it);
        it = NULL;
        rc = storage_aggregate(r, sid, col, first.ts, last.ts, last.ts - first.ts + 1,
                               first.ts, &b, 1, &nb);
    }
    storage_iter_close(it);
    storage_reader_close(r);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR TSDB: storage error: %s", storage_strerror(rc));
        return;
    }
    resp_writer *w = &c->out;
    resp_write_map(w, 9);
    resp_write_cstr(w, "totalSamples");
    resp_write_int(w, nb ? (int64_t)b.count : 0);
    resp_write_cstr(w, "firstTimestamp");
    resp_write_int(w, any && nb ? b.first_ts * 1000 : 0);
    resp_write_cstr(w, "lastTimestamp");
    resp_write_int(w, any && nb ? b.last_ts * 1000 : 0);
    resp_write_cstr(w, "retentionTime");
    resp_write_int(w, 0);
    resp_write_cstr(w, "chunkType");
    resp_write_cstr(w, "compressed");
    resp_write_cstr(w, "duplicatePolicy");
    resp_write_cstr(w, "last");
    resp_write_cstr(w, "labels");
    mopts all = {.withlabels = true};
    const char *text = query_labels_text(c->srv->labels, sid);
    write_labels(w, &all, text ? text : "");
    resp_write_cstr(w, "sourceKey");
    resp_write_null(w);
    resp_write_cstr(w, "rules");
    resp_write_array(w, 0);
}

const query_cmd query_cmds_multi[] = {
    {"ts.info", -2, QUERY_CMD_READONLY, cmd_ts_info, "timeseries",
     "Sample count, first and last timestamps and labels of a series."},
    {"ts.mget", -3, QUERY_CMD_READONLY, cmd_ts_mget, "timeseries",
     "Get the newest sample of every series matching a filter."},
    {"ts.mrange", -5, QUERY_CMD_READONLY, cmd_ts_mrange, "timeseries",
     "Query a range of every series matching a filter."},
    {"ts.mrevrange", -5, QUERY_CMD_READONLY, cmd_ts_mrevrange, "timeseries",
     "Query a range of every series matching a filter, newest first."},
    {"ts.queryindex", -2, QUERY_CMD_READONLY, cmd_ts_queryindex, "timeseries",
     "List the keys of the series matching a filter."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
