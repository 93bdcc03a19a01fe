/* test_http_mapping.c: the HTTP poller's pure parts: times in platform formats, templates,
 * the JSON mapping from a body to points, the sources file (sharing, overrides, errors that
 * name the source), the poll window, and the state record's round trip. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http_poll.h"
#include "http_src.h"
#include "tap.h"

static void test_timefmt(void)
{
    http_timefmt f;
    char buf[64];
    int64_t t;
    CHECK_EQ_INT(http_timefmt_parse("%Y-%m-%d %H:%M:%S", 8 * 3600, &f), 0);
    CHECK_EQ_INT(http_time_parse(&f, "2026-11-22 08:00:00", 19, &t), 0);
    CHECK_EQ_INT(t, 1795305600); /* 2026-11-22T00:00:00Z */
    CHECK(http_time_format(&f, t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "2026-11-22 08:00:00");
    CHECK(http_time_parse(&f, "2026-02-30 08:00:00", 19, &t) != 0);
    CHECK(http_time_parse(&f, "2026-11-22 08:00", 16, &t) != 0);
    CHECK(http_time_parse(&f, "2026-11-22 08:00:00x", 20, &t) != 0);
    CHECK_EQ_INT(http_timefmt_parse("%Y%m%d%H%M%S%z", 0, &f), 0);
    CHECK_EQ_INT(http_time_parse(&f, "20261122080000+0800", 19, &t), 0);
    CHECK_EQ_INT(t, 1795305600);
    CHECK_EQ_INT(http_timefmt_parse("%Y-%m-%dT%H:%M:%S%:z", 8 * 3600, &f), 0);
    http_time_format(&f, 1795305600, buf, sizeof buf);
    CHECK_EQ_STR(buf, "2026-11-22T08:00:00+08:00");
    CHECK_EQ_INT(http_timefmt_parse("iso", 8 * 3600, &f), 0);
    CHECK_EQ_INT(http_time_parse(&f, "2026-11-22T00:00:00Z", 20, &t), 0);
    CHECK_EQ_INT(t, 1795305600);
    CHECK_EQ_INT(http_timefmt_parse("unix_ms", 0, &f), 0);
    CHECK_EQ_INT(http_time_parse(&f, "1795305600123", 13, &t), 0);
    CHECK_EQ_INT(t, 1795305600);
    CHECK(http_timefmt_parse("%Q", 0, &f) != 0);
    CHECK(http_timefmt_parse("hourly", 0, &f) != 0);
    int64_t off;
    CHECK(http_zone_parse("+08:00", &off) == 0 && off == 28800);
    CHECK(http_zone_parse("-0530", &off) == 0 && off == -19800);
    CHECK(http_zone_parse("8", &off) != 0);
}

static const char *test_var(void *arg, const char *name, size_t len)
{
    (void)arg;
    if (len == 4 && !memcmp(name, "from", 4))
        return "2026-11-22T08:00:00+08:00";
    if (len == 8 && !memcmp(name, "facility", 8))
        return "F000001";
    return NULL;
}

static void test_template(void)
{
    char out[256], err[100];
    int n = http_template_expand("http://h/f/{facility}?b={from}&x={}&y={-}", true, test_var, NULL,
                                 out, sizeof out, err, sizeof err);
    CHECK(n > 0);
    CHECK_EQ_STR(out, "http://h/f/F000001?b=2026-11-22T08%3A00%3A00%2B08%3A00&x={}&y={-}");
    n = http_template_expand("{\"mn\":\"{facility}\",\"t\":\"{from}\"}", false, test_var, NULL,
                             out, sizeof out, err, sizeof err);
    CHECK_EQ_STR(out, "{\"mn\":\"F000001\",\"t\":\"2026-11-22T08:00:00+08:00\"}");
    CHECK_EQ_INT(http_template_expand("a{nope}b", false, test_var, NULL, out, sizeof out, err,
                                      sizeof err), -ENOENT);
    CHECK_EQ_STR(err, "unknown placeholder {nope}");
    CHECK_EQ_INT(http_template_expand("{facility}{facility}", false, test_var, NULL, out, 10,
                                      err, sizeof err), -ERANGE);
}

static void test_mapping(void)
{
    http_mapping m = {0};
    m.records = "data.list";
    m.mn = "dev.mn";
    m.code = "polId";
    m.time = "dt";
    m.value = "avg";
    m.flag = "flag";
    m.cols[STORAGE_COL_MAX] = "max";
    m.cols[STORAGE_COL_ZSAVG] = "zs";
    http_timefmt_parse("%Y-%m-%d %H:%M:%S", 8 * 3600, &m.time_fmt);
    const char *body =
        "{\"data\":{\"pages\":3,\"total\":\"250\",\"list\":["
        "{\"dev\":{\"mn\":\"MN1\"},\"polId\":\"a21026\",\"dt\":\"2026-11-22 08:00:00\","
        "\"avg\":12.30,\"max\":\"14.5\",\"zs\":null,\"flag\":\"n\"},"
        "{\"dev\":{\"mn\":\"MN1\"},\"polId\":\"02\",\"dt\":\"2026-11-22 08:00:00\",\"avg\":\"0.1\"},"
        "{\"dev\":{\"mn\":\"MN1\"},\"polId\":\"a21002\",\"dt\":\"2026-11-22 08:00\",\"avg\":1},"
        "{\"polId\":\"a21002\",\"dt\":\"2026-11-22 08:00:00\",\"avg\":1},"
        "{\"dev\":{\"mn\":\"MN1\"},\"polId\":\"a21002\",\"dt\":\"2026-11-22 08:00:00\",\"avg\":\"x\"},"
        "7]}}";
    http_page pg;
    char err[160];
    CHECK_EQ_INT(http_map_page(&m, body, strlen(body), NULL, NULL, &pg, err, sizeof err), 0);
    CHECK_EQ_INT(pg.nrecords, 6);
    CHECK_EQ_INT(pg.n, 2);
    CHECK_EQ_INT(pg.bad, 4);
    CHECK_EQ_STR(pg.why, "record 2: time does not read in the mapping's format");
    CHECK_EQ_STR(pg.recs[0].mn, "MN1");
    CHECK_EQ_STR(pg.recs[0].code, "a21026");
    CHECK_EQ_INT(pg.recs[0].ts, 1795305600);
    CHECK(pg.recs[0].pt.v[STORAGE_COL_AVG] == 12.3);
    CHECK(pg.recs[0].pt.v[STORAGE_COL_MAX] == 14.5);
    CHECK_EQ_INT(pg.recs[0].pt.mask, (1 << STORAGE_COL_AVG) | (1 << STORAGE_COL_MAX));
    CHECK_EQ_INT(pg.recs[0].pt.flag, 'N');
    CHECK_EQ_STR(pg.recs[1].code, "a21026"); /* 2005 code 02 mapped */
    CHECK_EQ_INT(pg.recs[1].pt.flag, 0);
    CHECK_EQ_INT(http_page_count(&pg, "data.pages"), 3);
    CHECK_EQ_INT(http_page_count(&pg, "data.total"), 250);
    CHECK_EQ_INT(http_page_count(&pg, "data.nope"), -1);
    http_page_free(&pg);
    CHECK_EQ_INT(http_map_page(&m, "{\"data\":", 8, NULL, NULL, &pg, err, sizeof err), -EINVAL);
    CHECK(strncmp(err, "bad JSON at byte", 16) == 0);
    CHECK_EQ_INT(http_map_page(&m, "{\"data\":{}}", 11, NULL, NULL, &pg, err, sizeof err),
                 -EINVAL);
    CHECK_EQ_STR(err, "no records array at 'data.list'");
    /* A per-device endpoint: MN and code from the source's variables, the body an array. */
    http_mapping d = {.records = "", .time = "t", .value = "v"};
    http_timefmt_parse("unix", 0, &d.time_fmt);
    CHECK_EQ_INT(http_map_page(&d, "[{\"t\":1795305600,\"v\":3}]", 25, "MN9", "a19001", &pg, err,
                               sizeof err), 0);
    CHECK(pg.n == 1 && !strcmp(pg.recs[0].mn, "MN9") && !strcmp(pg.recs[0].code, "a19001"));
    http_page_free(&pg);
}

static const char *sources_json =
    "{\"defaults\": {\"url\": \"http://p/f/{facility}?b={from}&e={to}&p={page}\","
    " \"interval\": \"1h\", \"lag\": \"10m\", \"lookback\": \"3h\", \"max_window\": \"6h\","
    " \"mapping\": {\"records\": \"rows\", \"mn\": \"mn\", \"code\": \"code\", \"time\": \"t\","
    "   \"value\": \"v\", \"columns\": {\"min\": \"lo\"}},"
    " \"paging\": {\"size\": 10, \"pages\": \"pages\"}},"
    " \"sources\": ["
    "  {\"name\": \"a\", \"vars\": {\"facility\": \"F1\"}},"
    "  {\"name\": \"b\", \"vars\": {\"facility\": 2}},"
    "  {\"name\": \"c\", \"vars\": {\"facility\": \"F3\"}, \"interval\": \"10m\","
    "   \"mapping\": {\"value\": \"avg\"}},"
    "  {\"name\": \"d\", \"vars\": {\"facility\": \"F4\"}, \"interval\": \"10m\","
    "   \"mapping\": {\"value\": \"avg\"}}"
    " ]}";

static void test_sources(void)
{
    http_source_set *set = NULL;
    char err[300];
    CHECK_EQ_INT(http_sources_parse(sources_json, strlen(sources_json), "s.json", &set, err,
                                    sizeof err), 0);
    if (!set)
        return;
    CHECK_EQ_INT(set->n, 4);
    CHECK_EQ_INT(set->nprof, 2); /* the defaults, and one shared by c and d */
    CHECK(set->src[0].prof == set->src[1].prof);
    CHECK(set->src[2].prof == set->src[3].prof);
    CHECK(set->src[0].prof != set->src[2].prof);
    const http_profile *p = set->src[2].prof;
    CHECK_EQ_INT(p->interval_s, 600);
    CHECK_EQ_STR(p->map.value, "avg");
    CHECK_EQ_STR(p->map.records, "rows"); /* merged, not replaced */
    CHECK_EQ_STR(p->map.cols[STORAGE_COL_MIN], "lo");
    CHECK_EQ_STR(http_source_var(&set->src[1], "facility", 8), "2");
    CHECK(p->paging.on && p->paging.size == 10 && p->paging.start == 1);
    /* The window: hours complete 10 minutes ago, from the cursor or 3 h back, cut at 6 h. */
    const http_profile *d = set->src[0].prof;
    int64_t from, to, now = 1795305600 + 3600 * 5 + 700; /* 05:11:40Z */
    bool more;
    CHECK(http_window(d, 0, now, &from, &to, &more));
    CHECK(from == 1795305600 + 3600 * 2 && to == 1795305600 + 3600 * 5 && !more);
    CHECK(!http_window(d, 1795305600 + 3600 * 5, now, &from, &to, &more));
    CHECK(http_window(d, 1795305600 - 86400, now, &from, &to, &more));
    CHECK(from == 1795305600 - 86400 && to == from + 6 * 3600 && more);
    http_sources_free(set);

    static const struct {
        const char *text, *err;
    } bad[] = {
        {"[{\"name\":\"x\"}]", "t: sources[0].url: missing"},
        {"{\"defaults\":{\"url\":\"ftp://x\",\"mapping\":{\"time\":\"t\",\"value\":\"v\"}},"
         "\"sources\":[{\"name\":\"x\"}]}",
         "t: defaults.url: must start with http:// or https://"},
        {"{\"defaults\":{\"url\":\"http://x/{fac}\",\"mapping\":{\"time\":\"t\",\"value\":\"v\"}},"
         "\"sources\":[{\"name\":\"x\"}]}",
         "t: sources[0].url: unknown placeholder {fac}"},
        {"{\"defaults\":{\"url\":\"http://x/\",\"mapping\":{\"time\":\"t\",\"value\":\"v\"}},"
         "\"sources\":[{\"name\":\"x\"},{\"name\":\"x\"}]}",
         "t: sources[1].name: used by another source"},
        {"{\"defaults\":{\"url\":\"http://x/\",\"interval\":\"1y\",\"mapping\":{\"time\":\"t\","
         "\"value\":\"v\"}},\"sources\":[{\"name\":\"x\"}]}",
         "t: defaults.interval: expected a duration such as \"30s\", \"10m\", \"1h\", \"1d\""},
        {"{\"defaults\":{\"url\":\"http://x/\",\"mapping\":{\"time\":\"t\"}},"
         "\"sources\":[{\"name\":\"x\"}]}",
         "t: defaults.mapping.value: missing"},
        {"{\"sources\": 3}", "t: expected {\"defaults\": {...}, \"sources\": [...]}"},
        {"{\"sources\": [", "t: not JSON (at byte 12)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set = NULL;
        err[0] = '\0';
        int rc = http_sources_parse(bad[i].text, strlen(bad[i].text), "t", &set, err, sizeof err);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_STR(err, bad[i].err);
        CHECK(set == NULL);
    }
}

static void test_state(void)
{
    http_state s = {.up = 0, .since = 1795305600, .last_success = 1795300000,
                    .last_attempt = 1795305600, .last_error_at = 1795305600,
                    .window_from = 1795290000, .cursor = 1795296000, .records = 12345,
                    .last_records = 18, .records_bad = 2, .polls = 40, .failures = 3,
                    .consecutive = 2, .cond_key = 0xabcdef0123456789ull};
    strcpy(s.last_error, "HTTP 500\nsecond line");
    strcpy(s.etag, "\"e1\"");
    char buf[2048];
    size_t n = http_state_format(&s, "http://p:80", 1795309200, buf, sizeof buf);
    CHECK(n > 0 && strstr(buf, "state=down\n") && strstr(buf, "last_error=HTTP 500 second line\n"));
    CHECK(strstr(buf, "since=2026-11-22T00:00:00Z\n") != NULL);
    CHECK(strstr(buf, "next_poll=2026-11-22T01:00:00Z\n") != NULL);
    http_state r;
    http_state_parse(buf, n, &r);
    CHECK_EQ_INT(r.up, 0);
    CHECK_EQ_INT(r.since, s.since);
    CHECK_EQ_INT(r.cursor, s.cursor);
    CHECK_EQ_INT(r.window_from, s.window_from);
    CHECK_EQ_INT(r.records, 12345);
    CHECK_EQ_INT(r.consecutive, 2);
    CHECK_EQ_STR(r.etag, "\"e1\"");
    CHECK(r.cond_key == s.cond_key);
    const char *odd = "state=up\ngarbage\n=x\nrecords=7";
    http_state_parse(odd, strlen(odd), &r);
    CHECK(r.up == 1 && r.records == 7 && r.cursor == 0);
}

int main(void)
{
    test_timefmt();
    test_template();
    test_mapping();
    test_sources();
    test_state();
    return tap_done();
}
