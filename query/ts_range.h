/* ts_range.h: the storage-free half of the TS.* commands, internal to query/: parsing the
 * arguments of TS.RANGE / TS.REVRANGE as RedisTimeSeries defines them, turning points into
 * aggregation buckets, and writing samples in RedisTimeSeries' reply shape. cmd_ts.c feeds it
 * from storage; tests feed it directly.
 *
 * Time on the wire is milliseconds since the epoch (RedisTimeSeries' unit); storage keeps
 * seconds. The conversion happens in cmd_ts.c.
 */
#ifndef PLUME_QUERY_TS_RANGE_H
#define PLUME_QUERY_TS_RANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "resp.h"
#include "storage.h"

#define TS_MAX_FILTER_TS 128        /* FILTER_BY_TS timestamps, as RedisTimeSeries allows */
#define TS_MAX_REPLY_SAMPLES 2000000 /* beyond this a reply is refused: use COUNT or buckets */
#define TS_MAX_MS (INT64_C(1) << 50) /* bucket widths and alignments beyond ~35,000 years are
                                        refused, so bucket arithmetic cannot overflow */

enum ts_agg {
    TS_AGG_NONE = 0,
    TS_AGG_AVG, TS_AGG_SUM, TS_AGG_MIN, TS_AGG_MAX, TS_AGG_RANGE, TS_AGG_COUNT,
    TS_AGG_FIRST, TS_AGG_LAST, TS_AGG_STD_P, TS_AGG_STD_S, TS_AGG_VAR_P, TS_AGG_VAR_S,
};

enum ts_align { TS_ALIGN_VALUE = 0, TS_ALIGN_START, TS_ALIGN_END };
enum ts_bucket_ts { TS_BT_LOW = 0, TS_BT_HIGH, TS_BT_MID };

typedef struct ts_range_req {
    int64_t from_ms, to_ms;       /* inclusive; '-' and '+' set the flags below */
    bool from_earliest, to_latest;
    bool latest;                  /* LATEST: accepted, no effect (no compaction rules) */
    int64_t filter_ts[TS_MAX_FILTER_TS];
    size_t n_filter_ts;           /* 0: no FILTER_BY_TS */
    bool filter_value;
    double vmin, vmax;
    int64_t count;                /* COUNT, or -1 */
    int agg;                      /* enum ts_agg */
    int64_t bucket_ms;
    int align;                    /* enum ts_align */
    int64_t align_ms;             /* with TS_ALIGN_VALUE */
    int bucket_ts;                /* enum ts_bucket_ts */
    bool empty;                   /* EMPTY: report empty buckets too */
} ts_range_req;

/* Parses argv[first..argc) (after key, from, to) and the from/to arguments at argv[2] and
 * argv[3]. Returns 0, or -EINVAL with a RedisTimeSeries-style message in err ("ERR TSDB:
 * ..."). */
int ts_range_parse(size_t argc, const resp_arg *argv, ts_range_req *req, char *err,
                   size_t errlen);

/* The start of the bucket holding t for buckets of width starting at align + k * width. */
int64_t ts_bucket_start(int64_t t, int64_t width, int64_t align);

/* The value of aggregator agg over bucket b (count > 0), or over an empty bucket (count 0)
 * as RedisTimeSeries' EMPTY reports it: 0 for sum and count, NaN otherwise ("last" is the
 * caller's business). */
double ts_agg_value(int agg, const storage_bucket *b);

/* Samples of a reply, in time order. */
typedef struct ts_samples {
    int64_t *ts;     /* owned; milliseconds */
    double *v;       /* owned */
    size_t n, cap;
    bool too_many;   /* more than TS_MAX_REPLY_SAMPLES were offered */
    bool oom;
} ts_samples;

void ts_samples_free(ts_samples *s);
void ts_samples_add(ts_samples *s, int64_t ts_ms, double v);

/* Builds buckets from points offered in time order, for one request. */
typedef struct ts_bucketer {
    const ts_range_req *req;
    int64_t align;                /* resolved alignment, ms */
    storage_bucket cur;           /* the open bucket (start in ms); count 0: none yet */
    bool have_prev;
    int64_t prev_start;           /* start of the last bucket emitted */
    double prev_last;             /* its last value, for EMPTY's "last" */
    ts_samples *out;
} ts_bucketer;

void ts_bucketer_init(ts_bucketer *bk, const ts_range_req *req, int64_t align_ms,
                      ts_samples *out);

/* Adds one point (time order). */
void ts_bucketer_add(ts_bucketer *bk, int64_t ts_ms, double v);

/* Adds a whole bucket computed elsewhere (storage_aggregate), start in ms; buckets must
 * come in time order and must not overlap a bucket built from points. */
void ts_bucketer_add_bucket(ts_bucketer *bk, const storage_bucket *b);

/* Emits the open bucket. */
void ts_bucketer_finish(ts_bucketer *bk);

/* Writes samples as RedisTimeSeries does: an array of [timestamp, value] pairs, the value
 * a simple string in RESP2 and a double in RESP3. reverse writes newest first; count >= 0
 * keeps only the first count written. */
void ts_write_samples(resp_writer *w, const ts_samples *s, bool reverse, int64_t count);

/* One [timestamp, value] pair. */
void ts_write_sample(resp_writer *w, int64_t ts_ms, double v);

#endif
