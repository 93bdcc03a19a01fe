/* Subscriptions: the CSV upload (good rows load, bad rows are reported with file:line,
 * counted and skipped; quotes, BOM, CRLF), and matching by each kind with one delivery per
 * destination however many rows match. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "tap.h"

static char errs[16][256];
static int nerrs;

static void on_error(void *arg, const char *msg)
{
    if (nerrs < 16)
        snprintf(errs[nerrs], sizeof errs[0], "%s", msg);
    nerrs++;
}

static bool has_url(const engine_sub_dest *d, size_t n, const char *url)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].url, url) == 0)
            return true;
    return false;
}

static void test_parse(void)
{
    const char *csv =
        "\xEF\xBB\xBFsubscriber,match_kind,match_value,url,format,header\r\n"
        "city-nj,region,3201,http://a.example/hook,json,Authorization: Bearer t0k\r\n"
        "plant-watch,facility,F001,https://oapi.dingtalk.com/robot/send?access_token=x,dingtalk\r\n"
        "\r\n"
        "# a comment\r\n"
        "\"power, desk\",industry,\"4411\",https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k,wecom,\r\n"
        "credit,uscc,91320100MA1XXXXX0X,http://b.example/x,,\r\n"
        "bad1,color,red,http://c.example/,json\r\n"          /* line 8: kind */
        "bad2,region,32a1,http://c.example/,json\r\n"        /* line 9: digits */
        "bad3,facility,F9,ftp://c.example/,json\r\n"         /* line 10: url */
        "bad4,facility,F9,http://c.example/,xml\r\n"         /* line 11: format */
        "bad5,facility,F9\r\n"                               /* line 12: columns */
        "bad6,facility,F9,http://c.example/,json,NoColon\r\n" /* line 13: header */
        "\"bad7,facility,F9,http://c.example/,json\r\n"       /* line 14: unterminated */
        ;
    engine_subs *s;
    size_t nbad = 99;
    CHECK_EQ_INT(engine_subs_create(&s), 0);
    CHECK_EQ_INT(engine_subs_parse_csv(s, "subs.csv", csv, strlen(csv), on_error, NULL, &nbad),
                 0);
    CHECK_EQ_INT(engine_subs_count(s), 4);
    CHECK_EQ_INT(nbad, 7);
    CHECK_EQ_INT(nerrs, 7);
    CHECK(strncmp(errs[0], "subs.csv:8: match_kind", 22) == 0);
    CHECK(strncmp(errs[1], "subs.csv:9: a region prefix", 27) == 0);
    CHECK(strncmp(errs[2], "subs.csv:10: url", 16) == 0);
    CHECK(strncmp(errs[3], "subs.csv:11: format", 19) == 0);
    CHECK(strncmp(errs[4], "subs.csv:12: expected 5 or 6", 28) == 0);
    CHECK(strncmp(errs[5], "subs.csv:13: header", 19) == 0);
    CHECK(strncmp(errs[6], "subs.csv:14: unterminated", 25) == 0);

    engine_sub_dest d[8];
    size_t n;
    engine_alert a = {.id = "x", .revision = 1, .region = "320102", .facility_id = "F001",
                      .industry = "4411", .uscc = "91320100MA1XXXXX0X"};
    CHECK_EQ_INT(engine_subs_match(s, &a, d, 8, &n), 0);
    CHECK_EQ_INT(n, 4);
    CHECK(has_url(d, n, "http://a.example/hook"));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(d[i].url, "http://a.example/hook") == 0) {
            CHECK_EQ_STR(d[i].header, "Authorization: Bearer t0k");
            CHECK_EQ_INT(d[i].format, ENGINE_ALERT_FMT_JSON);
        }
        if (strstr(d[i].url, "dingtalk"))
            CHECK_EQ_INT(d[i].format, ENGINE_ALERT_FMT_DINGTALK);
        if (strstr(d[i].url, "weixin")) {
            CHECK_EQ_INT(d[i].format, ENGINE_ALERT_FMT_WECOM);
            CHECK(d[i].header == NULL);
        }
        if (strstr(d[i].url, "b.example"))
            CHECK_EQ_INT(d[i].format, ENGINE_ALERT_FMT_JSON); /* empty format: json */
    }
    engine_subs_destroy(s);
}

static void test_match_kinds(void)
{
    const char *csv = "s1,facility,F1,http://h/f1,json\n"
                      "s2,uscc,U1,http://h/u1,json\n"
                      "s3,region,32,http://h/r32,json\n"
                      "s4,region,320102,http://h/r320102,json\n"
                      "s5,region,3202,http://h/r3202,json\n"
                      "s6,industry,4411,http://h/i4411,json\n"
                      "s7,facility,F1,http://h/shared,json\n"
                      "s8,region,3201,http://h/shared,json\n"
                      "s9,all,,http://h/all,json";
    engine_subs *s;
    engine_subs_create(&s);
    size_t nbad;
    engine_subs_parse_csv(s, "m.csv", csv, strlen(csv), NULL, NULL, &nbad);
    CHECK_EQ_INT(nbad, 0);
    engine_sub_dest d[16];
    size_t n;

    engine_alert a = {.id = "a", .revision = 1, .facility_id = "F1"};
    engine_subs_match(s, &a, d, 16, &n);
    CHECK_EQ_INT(n, 3); /* f1, shared, all */
    CHECK(has_url(d, n, "http://h/f1") && has_url(d, n, "http://h/shared") &&
          has_url(d, n, "http://h/all"));

    engine_alert b = {.id = "b", .revision = 1, .uscc = "U1"};
    engine_subs_match(s, &b, d, 16, &n);
    CHECK_EQ_INT(n, 2);
    CHECK(has_url(d, n, "http://h/u1"));

    /* Region 320102 matches prefixes 32, 3201 (shared) and 320102, not 3202. */
    engine_alert c = {.id = "c", .revision = 1, .region = "320102"};
    engine_subs_match(s, &c, d, 16, &n);
    CHECK_EQ_INT(n, 4);
    CHECK(has_url(d, n, "http://h/r32") && has_url(d, n, "http://h/r320102") &&
          has_url(d, n, "http://h/shared") && !has_url(d, n, "http://h/r3202"));

    /* Facility F1 in region 3201: "shared" is matched twice, delivered once. */
    engine_alert e = {.id = "e", .revision = 1, .facility_id = "F1", .region = "320105",
                      .industry = "4411"};
    engine_subs_match(s, &e, d, 16, &n);
    CHECK_EQ_INT(n, 5); /* f1, shared, all, r32, i4411 */
    CHECK(has_url(d, n, "http://h/i4411"));

    engine_alert none = {.id = "n", .revision = 1, .facility_id = "F2", .region = "11"};
    engine_subs_match(s, &none, d, 16, &n);
    CHECK_EQ_INT(n, 1); /* only "all" */
    engine_subs_destroy(s);
}

static void test_many(void)
{
    /* 20,000 facility rows and 2,000 region rows: a match finds exactly its own. */
    size_t cap = 4 << 20, len = 0;
    char *csv = malloc(cap);
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(csv + len, cap - len, "s%d,facility,F%05d,http://h/%d,json\n",
                                i, i, i % 500);
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(csv + len, cap - len, "r%d,region,%d,http://r/%d,wecom\n", i,
                                320000 + i, i);
    engine_subs *s;
    engine_subs_create(&s);
    size_t nbad;
    CHECK_EQ_INT(engine_subs_parse_csv(s, "big.csv", csv, len, NULL, NULL, &nbad), 0);
    CHECK_EQ_INT(engine_subs_count(s), 22000);
    engine_sub_dest d[4];
    size_t n;
    int ok = 1;
    for (int i = 0; i < 20000; i += 7) {
        char fid[16], url[32];
        snprintf(fid, sizeof fid, "F%05d", i);
        snprintf(url, sizeof url, "http://h/%d", i % 500);
        engine_alert a = {.id = "a", .revision = 1, .facility_id = fid, .region = "320017"};
        engine_subs_match(s, &a, d, 4, &n);
        ok &= n == 2 && has_url(d, n, url) && has_url(d, n, "http://r/17");
    }
    CHECK(ok);
    engine_subs_destroy(s);
    free(csv);
}

static void test_file(void)
{
    char path[] = "/tmp/plume-subs-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("subscriber,match_kind,match_value,url,format\nx,all,,http://h/,json\nbad\n", f);
    fclose(f);
    engine_subs *s;
    engine_subs_create(&s);
    size_t nbad;
    nerrs = 0;
    CHECK_EQ_INT(engine_subs_load_file(s, path, on_error, NULL, &nbad), 0);
    CHECK_EQ_INT(engine_subs_count(s), 1);
    CHECK_EQ_INT(nbad, 1);
    char want[64];
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK(strncmp(errs[0], want, strlen(want)) == 0);
    CHECK_EQ_INT(engine_subs_load_file(s, "/nonexistent/subs.csv", NULL, NULL, NULL), -ENOENT);
    engine_subs_destroy(s);
    unlink(path);
}

int main(void)
{
    test_parse();
    test_match_kinds();
    test_many();
    test_file();
    return tap_done();
}
