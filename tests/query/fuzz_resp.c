/* fuzz_resp.c: the RESP request parser on arbitrary bytes, and TS.RANGE's option parser on
 * every request it yields. The input is parsed twice, all at
 * once and fed in growing pieces (as reads arrive), and both ways must agree on every
 * request; every argument must lie inside the input or the parser's own buffer. Tight
 * limits make the limit paths reachable from small inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "ts_range.h"

#define MAX_REQS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t argc, total_len, end;
} summary;

static void check_args(const resp_parser *p, const uint8_t *base, size_t len)
{
    for (size_t i = 0; i < p->argc; i++) {
        const char *a = p->argv[i].ptr;
        int inside = a >= (const char *)base && a + p->argv[i].len <= (const char *)base + len;
        if (!p->is_inline && !inside)
            abort();
        if (p->is_inline && p->argv[i].len > len)
            abort();
    }
}

/* Runs a few points through the bucketer of a parsed request. */
static void bucket_some(const ts_range_req *q)
{
    static const int64_t ts[] = {0, 999, 1000, 86400000, 3 * 86400000 + 1};
    ts_samples out = {0};
    ts_bucketer bk;
    ts_bucketer_init(&bk, q, q->align_ms, &out);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        ts_bucketer_add(&bk, ts[i], (double)i - 1.5);
    ts_bucketer_finish(&bk);
    resp_writer w;
    resp_writer_init(&w, 3);
    ts_write_samples(&w, &out, true, q->count);
    resp_writer_free(&w);
    ts_samples_free(&out);
}

/* Parses data with reads of `step` bytes (0: all at once); fills out, returns the count,
 * or -1 after an error. */
static int run(const uint8_t *data, size_t size, size_t step, summary *out)
{
    resp_limits lim = {.max_args = 16, .max_bulk_len = 256, .max_inline_len = 128,
                       .max_request_len = 1024};
    resp_parser p;
    resp_parser_init(&p, &lim);
    size_t start = 0, avail = step ? 0 : size;
    int n = 0, rc = 0;
    while (n < MAX_REQS) {
        size_t used = 0, need = 0;
        rc = resp_parse(&p, (const char *)data + start, avail - start, &used, &need);
        if (used > avail - start)
            abort();
        start += used;
        if (rc == RESP_DONE) {
            if (p.argc == 0 || p.argc > lim.max_args)
                abort();
            check_args(&p, data, size);
            size_t total = 0;
            for (size_t i = 0; i < p.argc; i++)
                total += p.argv[i].len;
            out[n++] = (summary){p.argc, total, start};
            if (step == 0) {
                ts_range_req q;
                char err[160];
                if (ts_range_parse(p.argc, p.argv, &q, err, sizeof err) == 0) {
                    if (q.n_filter_ts > TS_MAX_FILTER_TS || (q.agg && q.bucket_ms <= 0))
                        abort();
                    if (q.agg && q.bucket_ms >= 1000) /* bucket arithmetic, under UBSan */
                        bucket_some(&q);
                }
            }
            continue;
        }
        if (rc != RESP_MORE)
            break;
        if (avail == size)
            break;
        avail = avail + step > size ? size : avail + step;
    }
    resp_parser_free(&p);
    return rc < 0 ? -1 - n : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static summary whole[MAX_REQS], pieces[MAX_REQS];
    int a = run(data, size, 0, whole);
    size_t step = size ? (size_t)data[0] % 7 + 1 : 1;
    int b = run(data, size, step, pieces);
    if (a != b)
        abort();
    int n = a < 0 ? -1 - a : a;
    for (int i = 0; i < n; i++)
        if (memcmp(&whole[i], &pieces[i], sizeof whole[i]) != 0)
            abort();

    /* The writer on the same bytes: a bulk, an error and a double must not misbehave. */
    resp_writer w;
    resp_writer_init(&w, size && data[0] & 1 ? 3 : 2);
    resp_write_bulk(&w, data, size);
    resp_write_errorf(&w, "ERR %.*s", (int)(size > 64 ? 64 : size), (const char *)data);
    double d = 0;
    if (size >= sizeof d)
        memcpy(&d, data, sizeof d);
    resp_write_double(&w, d);
    resp_writer_free(&w);
    return 0;
}
