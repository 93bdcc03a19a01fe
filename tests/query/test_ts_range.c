/* test_ts_range.c: the storage-free half of TS.RANGE: option grammar and its errors, bucket
 * alignment, every aggregator, EMPTY buckets, BUCKETTIMESTAMP, and the reply shape in RESP2
 * and RESP3. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ts_range.h"

/* Splits a command line on spaces into args (static storage, one call at a time). */
static size_t split(const char *line, resp_arg *argv, size_t max)
{
    static char buf[512];
    strncpy(buf, line, sizeof buf - 1);
    size_t n = 0;
    for (char *tok = strtok(buf, " "); tok && n < max; tok = strtok(NULL, " "))
        argv[n++] = (resp_arg){tok, strlen(tok)};
    return n;
}

static int parse(const char *line, ts_range_req *q, char *err)
{
    resp_arg argv[300];
    size_t argc = split(line, argv, 300);
    return ts_range_parse(argc, argv, q, err, 160);
}

static void test_parse(void)
{
    ts_range_req q;
    char err[160];
    CHECK_EQ_INT(parse("TS.RANGE k - +", &q, err), 0);
    CHECK(q.from_earliest && q.to_latest && q.agg == TS_AGG_NONE && q.count == -1);

    CHECK_EQ_INT(parse("TS.RANGE k 1000 2000 FILTER_BY_TS 1000 1500 FILTER_BY_VALUE 1 2.5 "
                       "COUNT 10 ALIGN start AGGREGATION std.s 60000 BUCKETTIMESTAMP mid EMPTY",
                       &q, err), 0);
    CHECK_EQ_INT(q.from_ms, 1000);
    CHECK_EQ_INT(q.to_ms, 2000);
    CHECK_EQ_INT(q.n_filter_ts, 2);
    CHECK_EQ_INT(q.filter_ts[1], 1500);
    CHECK(q.filter_value && q.vmin == 1 && q.vmax == 2.5);
    CHECK_EQ_INT(q.count, 10);
    CHECK_EQ_INT(q.align, TS_ALIGN_START);
    CHECK_EQ_INT(q.agg, TS_AGG_STD_S);
    CHECK_EQ_INT(q.bucket_ms, 60000);
    CHECK_EQ_INT(q.bucket_ts, TS_BT_MID);
    CHECK(q.empty);

    CHECK_EQ_INT(parse("ts.range k - + aggregation AVG 1000 align 500", &q, err), 0);
    CHECK(q.agg == TS_AGG_AVG && q.align == TS_ALIGN_VALUE && q.align_ms == 500);

    static const struct { const char *line, *err; } bad[] = {
        {"TS.RANGE k x +", "ERR TSDB: wrong fromTimestamp"},
        {"TS.RANGE k + +", "ERR TSDB: wrong fromTimestamp"},
        {"TS.RANGE k - -", "ERR TSDB: wrong toTimestamp"},
        {"TS.RANGE k -5 +", "ERR TSDB: wrong fromTimestamp"},
        {"TS.RANGE k - + AGGREGATION median 10", "ERR TSDB: Unknown aggregation type"},
        {"TS.RANGE k - + AGGREGATION avg 0", "ERR TSDB: bucketDuration must be greater than zero"},
        {"TS.RANGE k - + AGGREGATION avg", "ERR TSDB: missing AGGREGATION aggregator or bucketDuration"},
        {"TS.RANGE k - + COUNT x", "ERR TSDB: Couldn't parse COUNT"},
        {"TS.RANGE k - + ALIGN start", "ERR TSDB: ALIGN, BUCKETTIMESTAMP and EMPTY need AGGREGATION"},
        {"TS.RANGE k - + EMPTY", "ERR TSDB: ALIGN, BUCKETTIMESTAMP and EMPTY need AGGREGATION"},
        {"TS.RANGE k - + FILTER_BY_VALUE 1", "ERR TSDB: Couldn't parse MIN or MAX of FILTER_BY_VALUE"},
        {"TS.RANGE k - + FILTER_BY_TS", "ERR TSDB: FILTER_BY_TS needs at least one timestamp"},
        {"TS.RANGE k - + WITHLABELS", "ERR TSDB: unknown option 'WITHLABELS'"},
        {"TS.RANGE k - + AGGREGATION avg 9223372036854775807",
         "ERR TSDB: bucketDuration is too large"},
        {"TS.RANGE k - + ALIGN -9223372036854775808 AGGREGATION avg 1000",
         "ERR TSDB: unknown ALIGN parameter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK_EQ_INT(parse(bad[i].line, &q, err), -EINVAL);
        CHECK_EQ_STR(err, bad[i].err);
    }

    /* 129 timestamps are one too many. */
    char line[2048] = "TS.RANGE k - + FILTER_BY_TS";
    for (int i = 0; i < 129; i++)
        strcat(line, " 1");
    resp_arg argv[300];
    static char big[2048];
    strcpy(big, line);
    size_t argc = 0;
    for (char *tok = strtok(big, " "); tok; tok = strtok(NULL, " "))
        argv[argc++] = (resp_arg){tok, strlen(tok)};
    CHECK_EQ_INT(ts_range_parse(argc, argv, &q, err, sizeof err), -EINVAL);
}

static void test_buckets(void)
{
    CHECK_EQ_INT(ts_bucket_start(125, 60, 0), 120);
    CHECK_EQ_INT(ts_bucket_start(120, 60, 0), 120);
    CHECK_EQ_INT(ts_bucket_start(119, 60, 10), 70);
    CHECK_EQ_INT(ts_bucket_start(-5, 60, 0), -60);
    CHECK_EQ_INT(ts_bucket_start(5, 60, 1000), -20);

    storage_bucket b = {.count = 4, .sum = 20, .sumsq = 4 + 16 + 36 + 64, .min = 2, .max = 8,
                        .first = 2, .last = 8};
    CHECK(ts_agg_value(TS_AGG_AVG, &b) == 5);
    CHECK(ts_agg_value(TS_AGG_SUM, &b) == 20);
    CHECK(ts_agg_value(TS_AGG_RANGE, &b) == 6);
    CHECK(ts_agg_value(TS_AGG_COUNT, &b) == 4);
    CHECK(ts_agg_value(TS_AGG_FIRST, &b) == 2 && ts_agg_value(TS_AGG_LAST, &b) == 8);
    CHECK(ts_agg_value(TS_AGG_VAR_P, &b) == 5);           /* deviations 9,1,1,9 */
    CHECK(fabs(ts_agg_value(TS_AGG_VAR_S, &b) - 20.0 / 3) < 1e-12);
    CHECK(fabs(ts_agg_value(TS_AGG_STD_P, &b) - sqrt(5)) < 1e-12);
    CHECK(fabs(ts_agg_value(TS_AGG_STD_S, &b) - sqrt(20.0 / 3)) < 1e-12);
    storage_bucket none = {0};
    CHECK(ts_agg_value(TS_AGG_SUM, &none) == 0 && ts_agg_value(TS_AGG_COUNT, &none) == 0);
    CHECK(isnan(ts_agg_value(TS_AGG_AVG, &none)) && isnan(ts_agg_value(TS_AGG_MAX, &none)));
}

static void test_bucketer(void)
{
    ts_range_req q = {.agg = TS_AGG_LAST, .bucket_ms = 1000, .empty = true, .count = -1};
    ts_samples out = {0};
    ts_bucketer bk;
    ts_bucketer_init(&bk, &q, 0, &out);
    ts_bucketer_add(&bk, 100, 1);
    ts_bucketer_add(&bk, 900, 2);
    ts_bucketer_add(&bk, 3500, 3);
    ts_bucketer_finish(&bk);
    CHECK_EQ_INT(out.n, 4);
    CHECK(out.ts[0] == 0 && out.v[0] == 2);
    CHECK(out.ts[1] == 1000 && out.v[1] == 2);   /* EMPTY with last: the value before */
    CHECK(out.ts[2] == 2000 && out.v[2] == 2);
    CHECK(out.ts[3] == 3000 && out.v[3] == 3);
    ts_samples_free(&out);

    q = (ts_range_req){.agg = TS_AGG_AVG, .bucket_ms = 1000, .empty = true,
                       .bucket_ts = TS_BT_HIGH, .count = -1};
    ts_bucketer_init(&bk, &q, 500, &out);
    ts_bucketer_add(&bk, 400, 1);
    ts_bucketer_add(&bk, 600, 3);
    ts_bucketer_add(&bk, 1400, 5);
    storage_bucket whole = {.start = 3500, .count = 2, .sum = 10, .sumsq = 50, .min = 5,
                            .max = 5, .first = 5, .last = 5};
    ts_bucketer_add_bucket(&bk, &whole);
    ts_bucketer_finish(&bk);
    CHECK_EQ_INT(out.n, 5);
    CHECK(out.ts[0] == 500 && out.v[0] == 1);        /* [-500, 500) reported at its end */
    CHECK(out.ts[1] == 1500 && out.v[1] == 4);       /* [500, 1500) */
    CHECK(out.ts[2] == 2500 && isnan(out.v[2]));
    CHECK(out.ts[3] == 3500 && isnan(out.v[3]));
    CHECK(out.ts[4] == 4500 && out.v[4] == 5);
    ts_samples_free(&out);
}

static void test_reply(void)
{
    ts_samples s = {0};
    ts_samples_add(&s, 1000, 23.45);
    ts_samples_add(&s, 2000, 1);
    ts_samples_add(&s, 3000, NAN);
    resp_writer w;
    resp_writer_init(&w, 2);
    ts_write_samples(&w, &s, false, -1);
    resp_write_raw(&w, "", 1);
    CHECK_EQ_STR(w.data, "*3\r\n*2\r\n:1000\r\n+23.45\r\n*2\r\n:2000\r\n+1\r\n"
                         "*2\r\n:3000\r\n+nan\r\n");
    resp_writer_free(&w);
    resp_writer_init(&w, 3);
    ts_write_samples(&w, &s, true, 2);
    resp_write_raw(&w, "", 1);
    CHECK_EQ_STR(w.data, "*2\r\n*2\r\n:3000\r\n,nan\r\n*2\r\n:2000\r\n,1\r\n");
    resp_writer_free(&w);
    ts_samples_free(&s);
}

int main(void)
{
    test_parse();
    test_buckets();
    test_bucketer();
    test_reply();
    return tap_done();
}
