/* chunk.c: the encoding of one series' points in one time window (chunk.h, FORMAT.md).
 *
 * This first version favours obvious correctness over size: a header with the aggregates,
 * then timestamps as varint deltas, per-point column masks and flags only when they vary,
 * and each value column as raw IEEE doubles. The format carries a version byte so a denser
 * encoding can replace it. Decoding checks every length and count against the buffer, so
 * no input, however damaged, makes it read outside [data, data + len).
 */
#include "chunk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_VERSION 1

/* ---- Output buffer ------------------------------------------------------------------- */

static int buf_reserve(chunk_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static void put_u8(chunk_buf *b, uint8_t v)
{
    b->data[b->len++] = v;
}

static void put_varint(chunk_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void put_f64(chunk_buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        b->data[b->len++] = (uint8_t)(u >> (8 * i));
}

/* ---- Input cursor: every read is bounds-checked ---------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
    int err;
} rd;

static uint8_t get_u8(rd *r)
{
    if (r->p >= r->end) {
        r->err = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t get_varint(rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->err = 1;
            return 0;
        }
        uint8_t c = *r->p++;
        /* The tenth byte may only carry the top bit; an overlong zero byte is rejected so
         * that every value has one encoding. */
        if (shift == 63 && c > 1) {
            r->err = 1;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0)
                r->err = 1;
            return v;
        }
    }
    r->err = 1;
    return 0;
}

static double get_f64(rd *r)
{
    if (r->end - r->p < 8) {
        r->err = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- Aggregates -------------------------------------------------------------------------- */

void chunk_agg_init(chunk_agg *a)
{
    memset(a, 0, sizeof *a);
}

void chunk_agg_add(chunk_agg *a, int64_t ts, double v)
{
    if (a->count == 0) {
        a->sum = v;
        a->sumsq = v * v;
        a->min = a->max = a->first = a->last = v;
        a->min_ts = a->max_ts = a->first_ts = a->last_ts = ts;
        a->count = 1;
        return;
    }
    a->count++;
    a->sum += v;
    a->sumsq += v * v;
    a->last = v;
    a->last_ts = ts;
    if (isnan(v))
        return;
    if (v < a->min || isnan(a->min)) {
        a->min = v;
        a->min_ts = ts;
    }
    if (v > a->max || isnan(a->max)) {
        a->max = v;
        a->max_ts = ts;
    }
}

int chunk_agg_compute(const storage_point *pts, size_t n, chunk_agg *a)
{
    chunk_agg_init(a);
    for (size_t i = 0; i < n; i++)
        if (pts[i].mask & (1u << STORAGE_COL_AVG))
            chunk_agg_add(a, pts[i].ts, pts[i].v[STORAGE_COL_AVG]);
    return 0;
}

/* ---- Encoding ------------------------------------------------------------------------------ */

static int check_points(const storage_point *pts, size_t n, uint8_t *colmask)
{
    if (n == 0 || n > CHUNK_MAX_POINTS)
        return -EINVAL;
    uint8_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (pts[i].mask == 0 || pts[i].mask >> STORAGE_NCOLS)
            return -EINVAL;
        if (i > 0 && pts[i].ts <= pts[i - 1].ts)
            return -EINVAL;
        m |= pts[i].mask;
    }
    *colmask = m;
    return 0;
}

int chunk_encode(const storage_point *pts, size_t n, chunk_buf *out)
{
    uint8_t colmask;
    int rc = check_points(pts, n, &colmask);
    if (rc < 0)
        return rc;
    chunk_agg a;
    chunk_agg_compute(pts, n, &a);

    /* Upper bound: header + ts + mask + flag + values. */
    size_t bound = 128 + n * (10 + 1 + 1 + 8 * STORAGE_NCOLS);
    rc = buf_reserve(out, bound);
    if (rc < 0)
        return rc;
    int64_t t0 = pts[0].ts;
    put_u8(out, CHUNK_VERSION);
    put_varint(out, n);
    put_varint(out, zigzag(t0));
    put_varint(out, (uint64_t)pts[n - 1].ts - (uint64_t)t0);
    put_u8(out, colmask);
    put_varint(out, a.count);
    if (a.count) {
        put_f64(out, a.sum);
        put_f64(out, a.sumsq);
        put_f64(out, a.min);
        put_f64(out, a.max);
        put_f64(out, a.first);
        put_f64(out, a.last);
        put_varint(out, (uint64_t)a.min_ts - (uint64_t)t0);
        put_varint(out, (uint64_t)a.max_ts - (uint64_t)t0);
        put_varint(out, (uint64_t)a.first_ts - (uint64_t)t0);
        put_varint(out, (uint64_t)a.last_ts - (uint64_t)t0);
    }
    for (size_t i = 1; i < n; i++)
        put_varint(out, (uint64_t)pts[i].ts - (uint64_t)pts[i - 1].ts);

    int uniform_mask = 1, uniform_flag = 1;
    for (size_t i = 0; i < n; i++) {
        uniform_mask &= pts[i].mask == colmask;
        uniform_flag &= pts[i].flag == pts[0].flag;
    }
    put_u8(out, uniform_mask ? 0 : 1);
    if (!uniform_mask)
        for (size_t i = 0; i < n; i++)
            put_u8(out, pts[i].mask);
    put_u8(out, uniform_flag ? 0 : 1);
    if (uniform_flag)
        put_u8(out, pts[0].flag);
    else
        for (size_t i = 0; i < n; i++)
            put_u8(out, pts[i].flag);
    for (int c = 0; c < STORAGE_NCOLS; c++)
        for (size_t i = 0; i < n; i++)
            if (pts[i].mask & (1u << c))
                put_f64(out, pts[i].v[c]);
    return 0;
}

/* ---- Decoding ------------------------------------------------------------------------------ */

/* Reads and checks the header; leaves r at the first byte after it. */
static int read_header(rd *r, chunk_info *info)
{
    memset(info, 0, sizeof *info);
    if (get_u8(r) != CHUNK_VERSION || r->err)
        return STORAGE_ECORRUPT;
    uint64_t n = get_varint(r);
    int64_t t0 = unzigzag(get_varint(r));
    uint64_t span = get_varint(r);
    uint8_t colmask = get_u8(r);
    uint64_t count = get_varint(r);
    if (r->err || n == 0 || n > CHUNK_MAX_POINTS || colmask == 0 || colmask >> STORAGE_NCOLS ||
        count > n || (n == 1 && span != 0) ||
        span > (uint64_t)INT64_MAX - (uint64_t)t0)
        return STORAGE_ECORRUPT;
    if (((colmask & 1u) != 0) != (count != 0))
        return STORAGE_ECORRUPT;
    info->npoints = (uint32_t)n;
    info->first_ts = t0;
    info->last_ts = (int64_t)((uint64_t)t0 + span);
    info->colmask = colmask;
    if (count) {
        chunk_agg *a = &info->agg;
        a->count = (uint32_t)count;
        a->sum = get_f64(r);
        a->sumsq = get_f64(r);
        a->min = get_f64(r);
        a->max = get_f64(r);
        a->first = get_f64(r);
        a->last = get_f64(r);
        int64_t *tsv[4] = {&a->min_ts, &a->max_ts, &a->first_ts, &a->last_ts};
        for (int i = 0; i < 4; i++) {
            uint64_t d = get_varint(r);
            if (d > span)
                return STORAGE_ECORRUPT;
            *tsv[i] = (int64_t)((uint64_t)t0 + d);
        }
        if (r->err)
            return STORAGE_ECORRUPT;
    }
    return 0;
}

int chunk_info_read(const void *data, size_t len, chunk_info *info)
{
    rd r = {data, (const uint8_t *)data + len, 0};
    if (!data)
        return STORAGE_ECORRUPT;
    return read_header(&r, info);
}

/* The body, decoded into the columns the caller wants. Either pts (every column) or the
 * column arrays (ts, v, flags for column col) are filled. */
typedef struct sink {
    storage_point *pts; /* whole points, or NULL */
    int col;            /* with pts == NULL: the column wanted */
    int64_t *ts;
    double *v;
    uint8_t *flags;
} sink;

static int decode_body(const void *data, size_t len, sink *s, size_t cap, size_t *nout)
{
    chunk_info info;
    rd r = {data, (const uint8_t *)data + len, 0};
    if (!data)
        return STORAGE_ECORRUPT;
    int rc = read_header(&r, &info);
    if (rc < 0)
        return rc;
    size_t n = info.npoints;
    if (s->pts && cap < n)
        return -ERANGE;
    /* Every point costs at least one byte of timestamp delta, so a count the buffer cannot
     * hold is rejected before any work. */
    if ((size_t)(r.end - r.p) < n - 1)
        return STORAGE_ECORRUPT;
    int rc_out = STORAGE_ECORRUPT;
    int64_t *ts = malloc(n * sizeof *ts);
    uint8_t *mask = malloc(n);
    uint8_t *flag = malloc(n);
    if (!ts || !mask || !flag) {
        rc_out = -ENOMEM;
        goto fail;
    }
    ts[0] = info.first_ts;
    for (size_t i = 1; i < n; i++) {
        uint64_t d = get_varint(&r);
        if (r.err || d == 0 || d > (uint64_t)info.last_ts - (uint64_t)ts[i - 1])
            goto fail;
        ts[i] = (int64_t)((uint64_t)ts[i - 1] + d);
    }
    if (ts[n - 1] != info.last_ts)
        goto fail;
    uint8_t mmode = get_u8(&r);
    uint8_t seen = 0;
    uint32_t navg = 0;
    for (size_t i = 0; i < n; i++) {
        mask[i] = mmode == 0 ? info.colmask : get_u8(&r);
        if (mask[i] == 0 || (mask[i] & ~info.colmask))
            goto fail;
        seen |= mask[i];
        navg += mask[i] & 1u;
    }
    if (r.err || mmode > 1 || seen != info.colmask || navg != info.agg.count)
        goto fail;
    uint8_t fmode = get_u8(&r);
    if (fmode > 1)
        goto fail;
    if (fmode == 0)
        memset(flag, get_u8(&r), n);
    else
        for (size_t i = 0; i < n; i++)
            flag[i] = get_u8(&r);
    if (r.err)
        goto fail;

    size_t k = 0;
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        for (size_t i = 0; i < n; i++) {
            if (!(mask[i] & (1u << c)))
                continue;
            double v = get_f64(&r);
            if (s->pts)
                s->pts[i].v[c] = v;
            else if (c == s->col) {
                if (k >= cap) {
                    rc_out = -ERANGE;
                    goto fail;
                }
                s->ts[k] = ts[i];
                s->v[k] = v;
                if (s->flags)
                    s->flags[k] = flag[i];
                k++;
            }
        }
    }
    if (r.err || r.p != r.end)
        goto fail;
    if (s->pts) {
        for (size_t i = 0; i < n; i++) {
            s->pts[i].ts = ts[i];
            s->pts[i].mask = mask[i];
            s->pts[i].flag = flag[i];
        }
        k = n;
    }
    *nout = k;
    rc_out = 0;
fail:
    free(ts);
    free(mask);
    free(flag);
    return rc_out;
}

int chunk_decode(const void *data, size_t len, storage_point *pts, size_t cap, size_t *n)
{
    sink s = {.pts = pts};
    return decode_body(data, len, &s, cap, n);
}

int chunk_decode_col(const void *data, size_t len, int col, int64_t *ts, double *v,
                     uint8_t *flags, size_t cap, size_t *n)
{
    if (col < 0 || col >= STORAGE_NCOLS)
        return -EINVAL;
    sink s = {.pts = NULL, .col = col, .ts = ts, .v = v, .flags = flags};
    return decode_body(data, len, &s, cap, n);
}

void chunk_buf_free(chunk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
