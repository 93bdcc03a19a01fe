/* timefmt.c: calendar arithmetic and ISO 8601 parsing/formatting without the C library's
 * time zone machinery: plume's zones are fixed offsets (HJ 212 local time is UTC+08:00),
 * and tm/mktime depend on the process's TZ, which a server must not. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine.h"

/* Civil date <-> day number by the era method (400-year cycles of 146097 days). */
int64_t engine_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void engine_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at *p (bounded by end); false if they are not all digits. */
static bool digits(const char **p, const char *end, int n, int64_t *out)
{
    int64_t v = 0;
    if (end - *p < n)
        return false;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int parse_unix(const char *s, const char *end, int64_t *out)
{
    bool neg = s < end && *s == '-';
    const char *p = s + neg;
    if (p == end || end - p > 18)
        return -EINVAL;
    int64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

int engine_time_parse(const char *s, size_t len, int64_t default_offset_s, int64_t *out)
{
    const char *p = s, *end = s + len;
    /* Unix seconds: no '-' after the first four characters' worth of digits. */
    if (len < 10 || s[4] != '-')
        return parse_unix(s, end, out);

    int64_t y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits(&p, end, 4, &y) || p == end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p == end || *p++ != '-' || !digits(&p, end, 2, &d))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo))
        return -EINVAL;
    if (p < end && (*p == 'T' || *p == ' ')) {
        p++;
        if (!digits(&p, end, 2, &h) || p == end || *p++ != ':' || !digits(&p, end, 2, &mi))
            return -EINVAL;
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &sec))
                return -EINVAL;
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                if (p == end || *p < '0' || *p > '9')
                    return -EINVAL;
                while (p < end && *p >= '0' && *p <= '9')
                    p++;
            }
        }
        /* 24:00:00 is the end of the day; 60 seconds a leap second we fold into the next. */
        if (h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi || sec)))
            return -EINVAL;
    }
    int64_t off = default_offset_s;
    if (p < end) {
        if (*p == 'Z' || *p == 'z') {
            off = 0;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int64_t oh, om = 0;
            if (!digits(&p, end, 2, &oh))
                return -EINVAL;
            if (p < end && *p == ':')
                p++;
            if (p < end && !digits(&p, end, 2, &om))
                return -EINVAL;
            if (oh > 14 || om > 59)
                return -EINVAL;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (p != end)
        return -EINVAL;
    *out = engine_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
           sec - off;
    return 0;
}

int engine_time_format(int64_t t, int64_t offset_s, char *buf, size_t len)
{
    int64_t local = t + offset_s;
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t rem = local - days * 86400;
    int64_t y;
    unsigned m, d;
    engine_civil_from_days(days, &y, &m, &d);
    char zone[8] = "Z";
    if (offset_s != 0) {
        int64_t a = offset_s < 0 ? -offset_s : offset_s;
        snprintf(zone, sizeof zone, "%c%02d:%02d", offset_s < 0 ? '-' : '+',
                 (int)(a / 3600), (int)(a % 3600 / 60));
    }
    return snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d%s", (long long)y, m, d,
                    (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60), zone);
}

int engine_day_parse(const char *s, size_t len, int64_t *day)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return -EINVAL;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -EINVAL;
    return engine_time_parse(s, len, ENGINE_CST_OFFSET_S, day);
}
