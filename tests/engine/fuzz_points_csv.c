/* fuzz_points_csv.c: the points CSV parser on arbitrary bytes. Every line must either be
 * rejected with a reason, be blank, or parse to a point that formats and parses back to
 * itself; the number parser must agree with strtod on whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static void check_line(const char *line, size_t len)
{
    engine_csv_point p;
    const char *why = NULL;
    int rc = engine_points_csv_parse(line, len, &p, &why);
    if (rc < 0) {
        if (!why || !*why)
            abort();
        return;
    }
    if (rc == 1)
        return;
    if (rc != 0 || p.series_len == 0 || p.series_len > ENGINE_SERIES_KEY_MAX ||
        p.series != line || !memchr("NFMSDCTB", p.flag, 8))
        abort();
    char buf[ENGINE_SERIES_KEY_MAX + 64];
    size_t n = engine_points_csv_format(p.series, p.series_len, p.ts, p.value, p.flag, buf);
    engine_csv_point q;
    if (engine_points_csv_parse(buf, n - 1, &q, &why) != 0 || q.series_len != p.series_len ||
        memcmp(q.series, p.series, p.series_len) != 0 || q.ts != p.ts || q.flag != p.flag ||
        memcmp(&q.value, &p.value, sizeof p.value) != 0)
        abort();
}

static void check_number(const uint8_t *data, size_t size)
{
    double v;
    if (size > 64 || engine_double_parse((const char *)data, size, &v) != 0)
        return;
    char text[65];
    memcpy(text, data, size);
    text[size] = '\0';
    double w = strtod(text, NULL);
    if (memcmp(&v, &w, sizeof v) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    check_number(data, size);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        check_line(p, len);
        p += len + (nl != NULL);
    }
    return 0;
}
