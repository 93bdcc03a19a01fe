/* test_points_csv.c: lines of the points CSV parse to the right point or are rejected with
 * a reason, and formatted lines parse back to the same point. */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

static int parse(const char *line, engine_csv_point *p, const char **why)
{
    *why = NULL;
    return engine_points_csv_parse(line, strlen(line), p, why);
}

static void test_good_lines(void)
{
    engine_csv_point p;
    const char *why;

    CHECK_EQ_INT(parse("Dongsi.no2,1362067200,23.45", &p, &why), 0);
    CHECK_EQ_INT(p.series_len, 10);
    CHECK(memcmp(p.series, "Dongsi.no2", 10) == 0);
    CHECK_EQ_INT(p.ts, 1362067200);
    CHECK(p.value == 23.45);
    CHECK_EQ_INT(p.flag, 'N');

    CHECK_EQ_INT(parse("010000A8900016F000169DC0:a21026:hour,1700000000,-1.5e-3,D", &p, &why),
                 0);
    CHECK_EQ_INT(p.series_len, 36);
    CHECK(p.value == -1.5e-3);
    CHECK_EQ_INT(p.flag, 'D');

    /* CRLF, ISO 8601 with an offset, without one (China local time), and with Z. */
    CHECK_EQ_INT(parse("s,2026-11-22T08:00:00+08:00,1\r", &p, &why), 0);
    CHECK_EQ_INT(p.ts, 1795305600);
    CHECK_EQ_INT(parse("s,2026-11-22 08:00:00,1", &p, &why), 0);
    CHECK_EQ_INT(p.ts, 1795305600);
    CHECK_EQ_INT(parse("s,2026-11-22T00:00:00Z,1,T\r", &p, &why), 0);
    CHECK_EQ_INT(p.ts, 1795305600);
    CHECK_EQ_INT(p.flag, 'T');

    /* Many decimals keep every bit. */
    CHECK_EQ_INT(parse("s,0,1015.66666666667", &p, &why), 0);
    CHECK(p.value == 1015.66666666667);
    CHECK_EQ_INT(parse("s,0,0.30000000000000004", &p, &why), 0);
    CHECK(p.value == 0.1 + 0.2);

    const char *flags = "NFMSDCTB";
    int all = 1;
    for (const char *f = flags; *f; f++) {
        char line[32];
        snprintf(line, sizeof line, "s,1,2,%c", *f);
        all &= parse(line, &p, &why) == 0 && p.flag == *f;
    }
    CHECK(all);
}

static void test_blank_lines(void)
{
    engine_csv_point p;
    const char *why;
    CHECK_EQ_INT(parse("", &p, &why), 1);
    CHECK_EQ_INT(parse("\r", &p, &why), 1);
    CHECK_EQ_INT(parse("  \t", &p, &why), 1);
}

static void expect_bad(const char *line, const char *reason_part)
{
    engine_csv_point p;
    const char *why = NULL;
    int rc = parse(line, &p, &why);
    CHECK_EQ_INT(rc, -EINVAL);
    bool named = why && strstr(why, reason_part);
    CHECK(named);
    if (!named)
        printf("#   line \"%s\": reason \"%s\", want it to mention \"%s\"\n", line,
               why ? why : "(none)", reason_part);
}

static void test_bad_lines(void)
{
    expect_bad("just-a-series", "expected series,timestamp,value");
    expect_bad("s,1700000000", "no value");
    expect_bad(",1700000000,1", "empty series");
    expect_bad("s,17000x0000,1", "timestamp");
    expect_bad("s,2026-02-30T00:00:00Z,1", "timestamp");
    expect_bad("s,,1", "timestamp");
    expect_bad("s,1700000000,", "value");
    expect_bad("s,1700000000,abc", "value");
    expect_bad("s,1700000000,1.2.3", "value");
    expect_bad("s,1700000000,NA", "value");
    expect_bad("s,1700000000, 1", "value");
    expect_bad("s,1700000000,1e999", "out of range");
    expect_bad("s,1700000000,1,X", "flag");
    expect_bad("s,1700000000,1,", "flag");
    expect_bad("s,1700000000,1,NN", "flag");
    expect_bad("s,1700000000,1,N,extra", "more than four fields");
    expect_bad("s\tx,1700000000,1", "control character");
    expect_bad("\"s\",1700000000,1", "quote");
    char longkey[300];
    memset(longkey, 'k', 256);
    strcpy(longkey + 256, ",1,1");
    expect_bad(longkey, "longer than 255");
}

static void test_format_round_trip(void)
{
    char buf[320];
    size_t n = engine_points_csv_format("Dongsi.pm25", 11, 1362067200, 0.1 + 0.2, 'F', buf);
    buf[n] = '\0';
    CHECK_EQ_STR(buf, "Dongsi.pm25,1362067200,0.30000000000000004,F\n");
    n = engine_points_csv_format("a", 1, -5, -4500, 0, buf);
    buf[n] = '\0';
    CHECK_EQ_STR(buf, "a,-5,-4500,N\n");

    engine_csv_point p;
    const char *why;
    n = engine_points_csv_format("x:y:hour", 8, 1795305600, 1015.66666666667, 'M', buf);
    CHECK_EQ_INT(engine_points_csv_parse(buf, n - 1, &p, &why), 0);
    CHECK(p.series_len == 8 && p.ts == 1795305600 && p.value == 1015.66666666667 &&
          p.flag == 'M');
}

int main(void)
{
    test_good_lines();
    test_blank_lines();
    test_bad_lines();
    test_format_round_trip();
    return tap_done();
}
