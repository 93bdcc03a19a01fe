/* timefmt.c: times as HTTP platforms write them. Chinese platforms mostly write local time
 * without a zone ("2026-11-22 08:00:00"), some ISO 8601 with one, some Unix seconds or
 * milliseconds; query parameters want the same variety. A format is one of those kinds or a
 * pattern of %Y %m %d %H %M %S %z %:z and literal characters, and a zone for times written
 * without one. Timestamps stay integers: no libc time functions, no locale. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "http_src.h"

int http_zone_parse(const char *s, int64_t *offset_s)
{
    if (!strcmp(s, "Z") || !strcmp(s, "UTC") || !strcmp(s, "utc")) {
        *offset_s = 0;
        return 0;
    }
    size_t n = strlen(s);
    int h, m;
    if ((s[0] != '+' && s[0] != '-') || (n != 6 && n != 5))
        return -EINVAL;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] >= '0' && s[i] <= '9') && !(n == 6 && i == 3 && s[i] == ':'))
            return -EINVAL;
    h = (s[1] - '0') * 10 + (s[2] - '0');
    m = n == 6 ? (s[4] - '0') * 10 + (s[5] - '0') : (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 14 || m > 59)
        return -EINVAL;
    *offset_s = (s[0] == '-' ? -1 : 1) * (int64_t)(h * 3600 + m * 60);
    return 0;
}

int http_timefmt_parse(const char *name, int64_t offset_s, http_timefmt *out)
{
    memset(out, 0, sizeof *out);
    out->offset_s = offset_s;
    if (!strcmp(name, "iso")) {
        out->kind = HTTP_TIME_ISO;
    } else if (!strcmp(name, "unix")) {
        out->kind = HTTP_TIME_UNIX;
    } else if (!strcmp(name, "unix_ms")) {
        out->kind = HTTP_TIME_UNIX_MS;
    } else if (strchr(name, '%') && strlen(name) < sizeof out->pattern) {
        for (const char *p = name; *p; p++)
            if (*p == '%') {
                p++;
                if (*p == ':' && p[1] == 'z')
                    p++;
                else if (!*p || !strchr("YmdHMSz%", *p))
                    return -EINVAL;
            }
        out->kind = HTTP_TIME_PATTERN;
        memcpy(out->pattern, name, strlen(name) + 1);
    } else {
        return -EINVAL;
    }
    return 0;
}

static int format_pattern(const http_timefmt *f, int64_t t, char *buf, size_t len)
{
    int64_t l = t + f->offset_s;
    int64_t days = l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
    int64_t sec = l - days * 86400, y;
    unsigned mo, d;
    engine_civil_from_days(days, &y, &mo, &d);
    size_t o = 0;
    for (const char *p = f->pattern; *p; p++) {
        char tmp[16];
        int n;
        if (*p != '%') {
            tmp[0] = *p;
            n = 1;
        } else {
            p++;
            int64_t off = f->offset_s < 0 ? -f->offset_s : f->offset_s;
            char sign = f->offset_s < 0 ? '-' : '+';
            switch (*p) {
            case 'Y': n = snprintf(tmp, sizeof tmp, "%04lld", (long long)y); break;
            case 'm': n = snprintf(tmp, sizeof tmp, "%02u", mo); break;
            case 'd': n = snprintf(tmp, sizeof tmp, "%02u", d); break;
            case 'H': n = snprintf(tmp, sizeof tmp, "%02lld", (long long)(sec / 3600)); break;
            case 'M': n = snprintf(tmp, sizeof tmp, "%02lld", (long long)(sec / 60 % 60)); break;
            case 'S': n = snprintf(tmp, sizeof tmp, "%02lld", (long long)(sec % 60)); break;
            case 'z':
                n = snprintf(tmp, sizeof tmp, "%c%02lld%02lld", sign, (long long)(off / 3600),
                             (long long)(off / 60 % 60));
                break;
            case ':':
                p++;
                n = snprintf(tmp, sizeof tmp, "%c%02lld:%02lld", sign, (long long)(off / 3600),
                             (long long)(off / 60 % 60));
                break;
            default: tmp[0] = '%'; n = 1; break;
            }
        }
        if (o + (size_t)n + 1 > len)
            return -ERANGE;
        memcpy(buf + o, tmp, (size_t)n);
        o += (size_t)n;
    }
    buf[o] = '\0';
    return (int)o;
}

int http_time_format(const http_timefmt *f, int64_t t, char *buf, size_t len)
{
    int n;
    switch (f->kind) {
    case HTTP_TIME_ISO:
        if (len < 26)
            return -ERANGE;
        return engine_time_format(t, f->offset_s, buf, len);
    case HTTP_TIME_UNIX:
        n = snprintf(buf, len, "%lld", (long long)t);
        break;
    case HTTP_TIME_UNIX_MS:
        n = snprintf(buf, len, "%lld000", (long long)t);
        break;
    default:
        return format_pattern(f, t, buf, len);
    }
    return n < 0 || (size_t)n >= len ? -ERANGE : n;
}

/* Reads exactly w digits (1 to w when loose) at *p. */
static int digits(const char **p, const char *end, int w, int64_t *out)
{
    int64_t v = 0;
    int i = 0;
    for (; i < w && *p < end && **p >= '0' && **p <= '9'; i++, (*p)++)
        v = v * 10 + (**p - '0');
    if (i == 0 || (w == 4 && i != 4))
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_pattern(const http_timefmt *f, const char *s, size_t len, int64_t *out)
{
    const char *p = s, *end = s + len;
    int64_t y = 1970, mo = 1, d = 1, h = 0, mi = 0, se = 0, off = f->offset_s;
    for (const char *q = f->pattern; *q; q++) {
        if (*q != '%') {
            if (p >= end || *p != *q)
                return -EINVAL;
            p++;
            continue;
        }
        q++;
        int rc = 0;
        switch (*q) {
        case 'Y': rc = digits(&p, end, 4, &y); break;
        case 'm': rc = digits(&p, end, 2, &mo); break;
        case 'd': rc = digits(&p, end, 2, &d); break;
        case 'H': rc = digits(&p, end, 2, &h); break;
        case 'M': rc = digits(&p, end, 2, &mi); break;
        case 'S': rc = digits(&p, end, 2, &se); break;
        case '%':
            rc = p < end && *p == '%' ? (p++, 0) : -EINVAL;
            break;
        case ':':
            q++; /* %:z reads like %z */
            /* fall through */
        case 'z': {
            char z[8] = {0};
            size_t n = 0;
            if (p < end && *p == 'Z') {
                p++;
                off = 0;
                break;
            }
            while (p < end && n < 6 && (n == 0 ? (*p == '+' || *p == '-')
                                               : ((*p >= '0' && *p <= '9') || *p == ':')))
                z[n++] = *p++;
            rc = http_zone_parse(z, &off);
            break;
        }
        default: rc = -EINVAL;
        }
        if (rc)
            return rc;
    }
    if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    int64_t days = engine_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t y2;
    unsigned m2, d2;
    engine_civil_from_days(days, &y2, &m2, &d2);
    if (m2 != (unsigned)mo || d2 != (unsigned)d) /* 2026-02-30 */
        return -EINVAL;
    *out = days * 86400 + h * 3600 + mi * 60 + se - off;
    return 0;
}

int http_time_parse(const http_timefmt *f, const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 64)
        return -EINVAL;
    if (f->kind == HTTP_TIME_ISO)
        return engine_time_parse(s, len, f->offset_s, out);
    if (f->kind == HTTP_TIME_PATTERN)
        return parse_pattern(f, s, len, out);
    int64_t v = 0;
    size_t i = s[0] == '-';
    if (i == len)
        return -EINVAL;
    for (; i < len; i++) {
        if (s[i] == '.' && f->kind == HTTP_TIME_UNIX_MS)
            break; /* fractions of a millisecond */
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (s[0] == '-')
        v = -v;
    *out = f->kind == HTTP_TIME_UNIX_MS ? (v >= 0 ? v / 1000 : -((-v + 999) / 1000)) : v;
    return 0;
}
