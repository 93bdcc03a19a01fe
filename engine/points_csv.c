/* points_csv.c: the points CSV, plume's plain interchange format for imports and dumps.
 *
 * One point per line: series,timestamp,value[,flag]. Bulk loads and re-imports run through
 * millions of such lines, so a line is parsed in place with no allocation and no copy: the
 * fields are found with memchr, the value is read by engine_double_parse (exact, fast for
 * ordinary readings) and the timestamp by engine_time_parse. Each rejection carries a short
 * reason that the caller prints with its file name and line number. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "engine.h"

/* Data flags of HJ 212 (2005 and 2017): N normal, F stopped, M maintenance, S manual value,
 * D fault, C calibration, T over the measuring range, B communication lost. */
static const char valid_flags[] = "NFMSDCTB";

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* Finds the comma that ends the series field, checking the key's bytes on the way.
 * Returns the comma, or NULL with *why set. */
static const char *scan_series(const char *s, const char *end, const char **why)
{
    const char *p = s;
    for (; p < end && *p != ','; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '"') {
            *why = "series holds a control character or a quote";
            return NULL;
        }
    }
    if (p == end)
        *why = "expected series,timestamp,value[,flag]";
    else if (p == s)
        *why = "empty series";
    else if (p - s > ENGINE_SERIES_KEY_MAX)
        *why = "series longer than 255 bytes";
    else
        return p;
    return NULL;
}

/* Reads the timestamp field starting at s up to its comma; returns the comma or NULL.
 * Plain Unix seconds (the common case) are read here; anything else goes to
 * engine_time_parse. */
static const char *scan_time(const char *s, const char *end, int64_t *ts, const char **why)
{
    const char *p = s;
    int64_t v = 0;
    while (p < end && (unsigned)(*p - '0') < 10 && p - s < 18)
        v = v * 10 + (*p++ - '0');
    if (p < end && *p == ',' && p > s) {
        *ts = v;
        return p;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (!comma) {
        *why = "expected series,timestamp,value[,flag]: no value";
        return NULL;
    }
    if (engine_time_parse(s, (size_t)(comma - s), ENGINE_CST_OFFSET_S, ts) != 0) {
        *why = "bad timestamp (Unix seconds or ISO 8601)";
        return NULL;
    }
    return comma;
}

int engine_points_csv_parse(const char *line, size_t len, engine_csv_point *out,
                            const char **why)
{
    const char *end = line + len;
    if (len > 0 && end[-1] == '\r')
        end--;
    if (is_blank(line, (size_t)(end - line)))
        return 1;

    const char *c1 = scan_series(line, end, why);
    if (!c1)
        return -EINVAL;
    out->series = line;
    out->series_len = (size_t)(c1 - line);
    const char *c2 = scan_time(c1 + 1, end, &out->ts, why);
    if (!c2)
        return -EINVAL;

    const char *vend = memchr(c2 + 1, ',', (size_t)(end - c2 - 1));
    const char *fl = vend ? vend + 1 : end;
    if (!vend)
        vend = end;
    int rc = engine_double_parse(c2 + 1, (size_t)(vend - c2 - 1), &out->value);
    if (rc != 0) {
        *why = rc == -ERANGE ? "value out of range" : "bad value (a decimal number)";
        return -EINVAL;
    }
    out->flag = 'N';
    if (vend != end) {
        if (end - fl != 1 || !memchr(valid_flags, *fl, sizeof valid_flags - 1)) {
            *why = memchr(fl, ',', (size_t)(end - fl)) ? "more than four fields"
                                                        : "bad flag (one of N F M S D C T B)";
            return -EINVAL;
        }
        out->flag = (uint8_t)*fl;
    }
    return 0;
}

/* Decimal text of v into buf; returns its length. */
static size_t format_i64(int64_t v, char *buf)
{
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

size_t engine_points_csv_format(const char *series, size_t series_len, int64_t ts, double value,
                                uint8_t flag, char *buf)
{
    size_t len = series_len;
    memcpy(buf, series, series_len);
    buf[len++] = ',';
    len += format_i64(ts, buf + len);
    buf[len++] = ',';
    len += (size_t)engine_double_format(value, buf + len);
    buf[len++] = ',';
    buf[len++] = (char)(flag ? flag : 'N');
    buf[len++] = '\n';
    return len;
}
