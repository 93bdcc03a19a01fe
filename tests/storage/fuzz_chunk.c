/* fuzz_chunk.c: chunk decoding of arbitrary bytes. Whatever the input, decoding must stay
 * inside the buffer and either refuse it or yield well-formed points (increasing
 * timestamps, non-empty masks) that agree with the header; and points that decode must
 * survive a second encode/decode unchanged, bit for bit, through both decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"

#define FUZZ_MAX_POINTS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same_point(const storage_point *a, const storage_point *b)
{
    if (a->ts != b->ts || a->mask != b->mask || a->flag != b->flag)
        return 0;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if ((a->mask & (1u << c)) && memcmp(&a->v[c], &b->v[c], sizeof(double)) != 0)
            return 0;
    return 1;
}

static void check_cols(const uint8_t *data, size_t size, const storage_point *pts, size_t n)
{
    int64_t *ts = malloc(n * sizeof *ts);
    double *v = malloc(n * sizeof *v);
    uint8_t *fl = malloc(n);
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        size_t m = 0, k = 0;
        check(chunk_decode_col(data, size, c, ts, v, fl, n, &m) == 0);
        for (size_t i = 0; i < n; i++) {
            if (!(pts[i].mask & (1u << c)))
                continue;
            check(k < m && ts[k] == pts[i].ts && fl[k] == pts[i].flag &&
                  memcmp(&v[k], &pts[i].v[c], sizeof(double)) == 0);
            k++;
        }
        check(k == m);
    }
    free(ts);
    free(v);
    free(fl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chunk_info info;
    if (chunk_info_read(data, size, &info) != 0)
        return 0;
    if (info.npoints > FUZZ_MAX_POINTS)
        return 0;
    storage_point *pts = calloc(info.npoints, sizeof *pts);
    size_t n = 0;
    int rc = chunk_decode(data, size, pts, info.npoints, &n);
    if (rc != 0) {
        check(rc == STORAGE_ECORRUPT);
        free(pts);
        return 0;
    }
    check(n == info.npoints && pts[0].ts == info.first_ts && pts[n - 1].ts == info.last_ts);
    uint8_t colmask = 0;
    for (size_t i = 0; i < n; i++) {
        check(pts[i].mask != 0 && (i == 0 || pts[i].ts > pts[i - 1].ts));
        colmask |= pts[i].mask;
    }
    check(colmask == info.colmask);
    check_cols(data, size, pts, n);

    chunk_buf buf = {0};
    check(chunk_encode(pts, n, &buf) == 0);
    storage_point *again = calloc(n, sizeof *again);
    size_t m = 0;
    check(chunk_decode(buf.data, buf.len, again, n, &m) == 0 && m == n);
    for (size_t i = 0; i < n; i++)
        check(same_point(&pts[i], &again[i]));
    chunk_info info2;
    chunk_agg want;
    chunk_agg_compute(pts, n, &want);
    check(chunk_info_read(buf.data, buf.len, &info2) == 0 && info2.npoints == n &&
          info2.agg.count == want.count && info2.agg.min_ts == want.min_ts &&
          info2.agg.max_ts == want.max_ts);
    check_cols(buf.data, buf.len, pts, n);
    chunk_buf_free(&buf);
    free(again);
    free(pts);
    return 0;
}
