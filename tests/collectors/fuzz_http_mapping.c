/* fuzz_http_mapping.c: the HTTP poller's JSON mapping and its time formats on arbitrary
 * bytes. The first byte picks the mapping's time format (pattern, ISO, Unix seconds or
 * milliseconds); the rest is the body. Nothing may crash or read out of bounds; every
 * record kept must have an MN, a code, a value in its AVG column, and a timestamp equal to
 * its point's; the counts must add up. Each kept time is formatted and parsed back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_src.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const fmts[] = {"%Y-%m-%d %H:%M:%S", "iso", "unix", "unix_ms",
                                       "%Y%m%d%H%M%S%z"};
    http_mapping m = {.records = "data.records", .mn = "mn", .code = "code", .time = "time",
                      .value = "avg", .flag = "flag"};
    m.cols[1] = "min";
    m.cols[2] = "max";
    m.cols[4] = "zs_avg";
    if (data[0] & 0x80)
        m.records = "";
    if (http_timefmt_parse(fmts[data[0] % 5], 8 * 3600, &m.time_fmt) != 0)
        abort();
    http_page pg;
    char err[160];
    if (http_map_page(&m, (const char *)data + 1, size - 1, "MNX", NULL, &pg, err,
                      sizeof err) != 0)
        return 0;
    if (pg.n + pg.bad != pg.nrecords)
        abort();
    for (size_t i = 0; i < pg.n; i++) {
        const http_record *r = &pg.recs[i];
        if (!r->mn || !r->code || !(r->pt.mask & 1) || r->pt.ts != r->ts)
            abort();
        char buf[64];
        int64_t back;
        int n = http_time_format(&m.time_fmt, r->ts, buf, sizeof buf);
        if (n > 0 && r->ts > -62135596800 && r->ts < 253402300799 &&
            (http_time_parse(&m.time_fmt, buf, (size_t)n, &back) != 0 || back != r->ts))
            abort();
    }
    (void)http_page_count(&pg, "data.pages");
    http_page_free(&pg);
    return 0;
}
