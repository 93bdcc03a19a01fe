/* Calendar arithmetic and ISO 8601 parsing/formatting at fixed offsets. */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

static int64_t parse(const char *s, int64_t *t)
{
    return engine_time_parse(s, strlen(s), ENGINE_CST_OFFSET_S, t);
}

int main(void)
{
    int64_t t = 0;

    CHECK_EQ_INT(engine_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ_INT(engine_days_from_civil(2000, 3, 1), 11017);
    CHECK_EQ_INT(engine_days_from_civil(1969, 12, 31), -1);
    /* Round trip over 800 years, leap days included. */
    int bad = 0;
    for (int64_t d = -200000; d < 100000; d += 7) {
        int64_t y;
        unsigned m, dd;
        engine_civil_from_days(d, &y, &m, &dd);
        bad += engine_days_from_civil(y, m, dd) != d;
    }
    CHECK_EQ_INT(bad, 0);

    CHECK_EQ_INT(parse("1700000000", &t), 0);
    CHECK_EQ_INT(t, 1700000000);
    CHECK_EQ_INT(parse("-86400", &t), 0);
    CHECK_EQ_INT(t, -86400);
    CHECK_EQ_INT(parse("2016-08-01T08:00:00+08:00", &t), 0);
    CHECK_EQ_INT(t, 1470009600);
    CHECK_EQ_INT(parse("2016-08-01T00:00:00Z", &t), 0);
    CHECK_EQ_INT(t, 1470009600);
    CHECK_EQ_INT(parse("2016-08-01 08:00:00", &t), 0); /* local China time */
    CHECK_EQ_INT(t, 1470009600);
    CHECK_EQ_INT(parse("2016-08-01T08:00+0800", &t), 0);
    CHECK_EQ_INT(t, 1470009600);
    CHECK_EQ_INT(parse("2016-08-01T03:30:00.250-01:30", &t), 0);
    CHECK_EQ_INT(t, 1470027600);
    CHECK_EQ_INT(parse("2016-08-01", &t), 0);
    CHECK_EQ_INT(t, 1469980800);
    CHECK_EQ_INT(parse("2024-02-29T00:00:00Z", &t), 0);

    CHECK_EQ_INT(parse("2026-02-30", &t), -EINVAL);
    CHECK_EQ_INT(parse("2023-02-29T00:00:00Z", &t), -EINVAL);
    CHECK_EQ_INT(parse("2016-13-01T00:00:00Z", &t), -EINVAL);
    CHECK_EQ_INT(parse("2016-08-01T25:00:00Z", &t), -EINVAL);
    CHECK_EQ_INT(parse("2016-08-01T08:00:00+08:00x", &t), -EINVAL);
    CHECK_EQ_INT(parse("12a4", &t), -EINVAL);
    CHECK_EQ_INT(parse("", &t), -EINVAL);

    /* A local day: exactly YYYY-MM-DD, a date that exists, midnight at +08:00. */
    CHECK_EQ_INT(engine_day_parse("2016-08-01", 10, &t), 0);
    CHECK_EQ_INT(t, 1469980800);
    CHECK_EQ_INT(engine_day_parse("2026-02-30", 10, &t), -EINVAL);
    CHECK_EQ_INT(engine_day_parse("2016-08-01T00", 13, &t), -EINVAL);
    CHECK_EQ_INT(engine_day_parse("1470009600", 10, &t), -EINVAL);
    CHECK_EQ_INT(engine_day_parse("2016-8-011", 10, &t), -EINVAL);

    char buf[32];
    engine_time_format(1470009600, ENGINE_CST_OFFSET_S, buf, sizeof buf);
    CHECK_EQ_STR(buf, "2016-08-01T08:00:00+08:00");
    engine_time_format(1470009600, 0, buf, sizeof buf);
    CHECK_EQ_STR(buf, "2016-08-01T00:00:00Z");
    engine_time_format(-1, 0, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1969-12-31T23:59:59Z");
    return tap_done();
}
