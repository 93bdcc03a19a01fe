/* chunk.c: the encoding of one series' points in one time window (chunk.h; the byte layout
 * is in FORMAT.md, "Chunk encoding").
 *
 * A chunk is the unit a range query decodes and the unit the store pays per-key overhead
 * for, so it is built to be small and quick to read. The header holds everything a query
 * may need without decoding: the count, the time span, the columns present and the AVG
 * aggregates, the latter written as small integers at the column's decimal scale whenever
 * they are exact there. Timestamps cost nothing when regular (a time step and a span),
 * otherwise a list of the gaps or adaptive Rice-coded steps; per-point column masks and
 * flags are runs, absent when they never change. Each value column is its own section
 * (chunk_values.c), so a query for one column reads only that one.
 *
 * Decoding checks every length, count and sum against the buffer and the header, so no
 * input, however damaged, makes it read outside [data, data + len) or return points that
 * break the header's promises (increasing timestamps, non-empty masks).
 */
#include "chunk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bitio.h"
#include "chunk_values.h"

#define CHUNK_VERSION 2
#define HDR_MAX 512 /* the largest header */

enum { TS_REGULAR = 0, TS_GAPS = 1, TS_DENSE = 2 };
#define LAYOUT_MASKS 1u  /* per-point masks vary: a mask section follows */
#define LAYOUT_FLAGS 2u  /* flags vary: a flag section follows */
#define LAYOUT_TS_SHIFT 2
#define TS_SHIFT 2       /* running means of the timestamp codes, scaled by 2^2 */

/* ---- Bytes in and out ------------------------------------------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint8_t *put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(u >> (8 * i));
    return p;
}

/* A bounds-checked cursor: a read past the end sets err and yields zeros. */
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

/* Unsigned LEB128, shortest form only, so each value has one encoding. */
static uint64_t get_varint(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            break;
        uint8_t c = *r->p++;
        if (shift == 63 && c > 1)
            break;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0)
                break;
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

/* ---- Aggregates ---------------------------------------------------------------------------- */

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

/* ---- The parsed header ------------------------------------------------------------------- */

typedef struct hdr {
    chunk_info info;
    uint64_t tgcd, span;     /* time unit (gcd of the steps) and span in units */
    unsigned layout, tsmode;
    uint8_t flag;            /* the flag of every point, unless flags vary */
    size_t ts_len, mask_len, flag_len;
    val_params col[STORAGE_NCOLS];
    int sum_int, sumsq_int;  /* the sums have an integer form (encoder only) */
    int64_t qsum;            /* sum of the AVG integers */
    uint64_t qsumsq;         /* sum of their squares */
    const uint8_t *body;     /* the first section */
    const uint8_t *end;
} hdr;

/* ---- Timestamps -------------------------------------------------------------------------- */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The most frequent step: exact for steps below 256 (all real series), else a majority
 * vote, which only has to be good, not exact. */
static uint64_t common_step(const uint64_t *s, size_t n)
{
    uint32_t hist[256] = {0};
    uint64_t cand = s[0], votes = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 256)
            hist[s[i]]++;
        if (votes == 0)
            cand = s[i];
        votes += s[i] == cand ? 1 : (uint64_t)-1;
    }
    uint64_t best = 0, at = cand;
    for (unsigned i = 1; i < 256; i++)
        if (hist[i] > best) {
            best = hist[i];
            at = i;
        }
    return best * 2 >= n ? at : cand;
}

/* The code of an irregular step s != b in the gap list. */
static uint64_t gap_code(uint64_t s, uint64_t b)
{
    return s - 1 - (s > b);
}

/* Writes the timestamp section for steps s[0..n-2] (in units), or with w == NULL counts its
 * bits, in mode TS_GAPS or TS_DENSE. */
static uint64_t ts_code(const uint64_t *s, size_t ns, uint64_t b, unsigned mode,
                        bit_writer *w)
{
    uint64_t bits = 0, ma = 4u << TS_SHIFT, mb = 4u << TS_SHIFT, run = 0;
    for (size_t i = 0; i < ns; i++) {
        if (mode == TS_DENSE) {
            uint64_t u = zigzag((int64_t)(s[i] - b));
            unsigned k = rice_k(ma, TS_SHIFT);
            bits += rice_cost(u, k);
            if (w)
                rice_put(w, u, k);
            ma = rice_update(ma, u, TS_SHIFT);
            continue;
        }
        if (s[i] == b) {
            run++;
            continue;
        }
        uint64_t u = gap_code(s[i], b);
        unsigned ka = rice_k(ma, TS_SHIFT), kb = rice_k(mb, TS_SHIFT);
        bits += rice_cost(run, ka) + rice_cost(u, kb);
        if (w) {
            rice_put(w, run, ka);
            rice_put(w, u, kb);
        }
        ma = rice_update(ma, run, TS_SHIFT);
        mb = rice_update(mb, u, TS_SHIFT);
        run = 0;
    }
    return bits;
}

/* Encodes the timestamps: fills h's time fields and writes the section (if any) at out. */
static int ts_encode(const storage_point *pts, size_t n, hdr *h, uint8_t *out, size_t *len)
{
    *len = 0;
    h->tgcd = 1;
    h->span = 0;
    h->tsmode = TS_REGULAR;
    if (n == 1)
        return 0;
    uint64_t g = 0;
    for (size_t i = 1; i < n; i++)
        g = gcd64((uint64_t)pts[i].ts - (uint64_t)pts[i - 1].ts, g);
    h->tgcd = g;
    h->span = ((uint64_t)pts[n - 1].ts - (uint64_t)pts[0].ts) / g;
    if (h->span == n - 1)
        return 0;
    uint64_t *s = malloc((n - 1) * sizeof *s);
    if (!s)
        return -ENOMEM;
    size_t nirr = 0;
    for (size_t i = 1; i < n; i++)
        s[i - 1] = ((uint64_t)pts[i].ts - (uint64_t)pts[i - 1].ts) / g;
    uint64_t b = common_step(s, n - 1);
    for (size_t i = 0; i < n - 1; i++)
        nirr += s[i] != b;
    unsigned mode = ts_code(s, n - 1, b, TS_GAPS, NULL) <= ts_code(s, n - 1, b, TS_DENSE, NULL)
                        ? TS_GAPS
                        : TS_DENSE;
    uint8_t *p = put_varint(out, b);
    if (mode == TS_GAPS)
        p = put_varint(p, nirr);
    bit_writer w = {p, 0, 0};
    ts_code(s, n - 1, b, mode, &w);
    *len = (size_t)(bit_flush(&w) - out);
    h->tsmode = mode;
    free(s);
    return 0;
}

/* Runs of equal bytes (masks or flags): (length - 1) as a varint, then the byte. */
static size_t runs_encode(const storage_point *pts, size_t n, int of_flags, uint8_t *out)
{
    uint8_t *p = out;
    for (size_t i = 0; i < n;) {
        uint8_t b = of_flags ? pts[i].flag : pts[i].mask;
        size_t j = i + 1;
        while (j < n && (of_flags ? pts[j].flag : pts[j].mask) == b)
            j++;
        p = put_varint(p, j - i - 1);
        *p++ = b;
        i = j;
    }
    return (size_t)(p - out);
}

/* ---- Header ------------------------------------------------------------------------------- */

/* An AVG aggregate value: 2 * zigzag(q - ref) when it is exact at the column's scale, else
 * 1 and the raw double. */
static uint8_t *put_aggval(uint8_t *p, const val_params *vp, double v, int64_t ref)
{
    int64_t q;
    if (val_to_q(vp, v, &q))
        return put_varint(p, zigzag((int64_t)((uint64_t)q - (uint64_t)ref)) << 1);
    p = put_varint(p, 1);
    return put_f64(p, v);
}

static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The double that the integer form of a sum stands for: (double)(x * f) / 10^e, or -1 if
 * that is not exact (the product beyond 2^53, or 10^e beyond 10^22). */
static int sum_approx(uint64_t mag, int neg, uint64_t f, unsigned e, double *out)
{
    uint64_t x;
    if (e > 22 || __builtin_mul_overflow(mag, f, &x) || x > (1ull << 53))
        return -1;
    *out = (neg ? -(double)x : (double)x) / p10[e];
    return 0;
}

static int64_t bits_diff(double a, double b)
{
    uint64_t ua, ub;
    memcpy(&ua, &a, 8);
    memcpy(&ub, &b, 8);
    return (int64_t)(ua - ub);
}

/* A sum in the header: 2 * x (x its integer form: zigzag of the sum of the column's
 * integers, or the sum of their squares) and the distance in bit patterns from that
 * form's double to the actual sum; or 1 and the raw double. */
static uint8_t *put_sum(uint8_t *p, double sum, int ok, uint64_t x, uint64_t mag, int neg,
                        uint64_t f, unsigned e)
{
    double approx;
    if (ok && x < (1ull << 62) && sum_approx(mag, neg, f, e, &approx) == 0) {
        int64_t diff = bits_diff(sum, approx);
        if (diff > -(1ll << 40) && diff < (1ll << 40)) {
            p = put_varint(p, x << 1);
            return put_varint(p, zigzag(diff));
        }
    }
    p = put_varint(p, 1);
    return put_f64(p, sum);
}

static uint64_t ts_units(const hdr *h, int64_t ts)
{
    return ((uint64_t)ts - (uint64_t)h->info.first_ts) / h->tgcd;
}

static size_t header_write(const hdr *h, uint8_t *out)
{
    const chunk_info *in = &h->info;
    uint8_t *p = out;
    *p++ = CHUNK_VERSION;
    p = put_varint(p, in->npoints);
    p = put_varint(p, zigzag(in->first_ts));
    if (in->npoints > 1) {
        p = put_varint(p, h->tgcd);
        p = put_varint(p, h->span);
    }
    *p++ = in->colmask;
    *p++ = (uint8_t)(h->layout | h->tsmode << LAYOUT_TS_SHIFT);
    if (!(h->layout & LAYOUT_FLAGS))
        *p++ = h->flag;
    if (h->tsmode != TS_REGULAR)
        p = put_varint(p, h->ts_len);
    if (h->layout & LAYOUT_MASKS)
        p = put_varint(p, h->mask_len);
    if (h->layout & LAYOUT_FLAGS)
        p = put_varint(p, h->flag_len);
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (!(in->colmask & (1u << c)))
            continue;
        const val_params *vp = &h->col[c];
        *p++ = (uint8_t)(vp->pred << 5 | vp->d);
        p = put_varint(p, vp->g);
        p = put_varint(p, zigzag(vp->q0));
        p = put_varint(p, vp->nexc);
        if (vp->nexc) {
            *p++ = vp->d2;
            p = put_varint(p, vp->g2);
        }
        p = put_varint(p, vp->stream_len);
        p = put_varint(p, vp->exc_len);
    }
    if (in->colmask & 1u) {
        const chunk_agg *a = &in->agg;
        const val_params *vp = &h->col[STORAGE_COL_AVG];
        if (h->layout & LAYOUT_MASKS) {
            p = put_varint(p, a->count);
            p = put_varint(p, ts_units(h, a->first_ts));
            p = put_varint(p, ts_units(h, a->last_ts));
        }
        int64_t ref = 0;
        p = put_aggval(p, vp, a->first, 0);
        val_to_q(vp, a->first, &ref);
        p = put_aggval(p, vp, a->last, ref);
        p = put_aggval(p, vp, a->min, ref);
        p = put_aggval(p, vp, a->max, ref);
        p = put_varint(p, ts_units(h, a->min_ts));
        p = put_varint(p, ts_units(h, a->max_ts));
        uint64_t mag = h->qsum < 0 ? (uint64_t)0 - (uint64_t)h->qsum : (uint64_t)h->qsum;
        p = put_sum(p, a->sum, h->sum_int, zigzag(h->qsum), mag, h->qsum < 0, vp->g, vp->d);
        p = put_sum(p, a->sumsq, h->sumsq_int && vp->g <= UINT32_MAX, h->qsumsq, h->qsumsq, 0,
                    vp->g * vp->g, 2u * vp->d);
    }
    return (size_t)(p - out);
}

/* ---- Encoding ------------------------------------------------------------------------------ */

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

static int check_points(const storage_point *pts, size_t n, uint8_t *colmask)
{
    if (!pts || n == 0 || n > CHUNK_MAX_POINTS)
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

/* The AVG column's integer sums, for the header's compact form of sum and sumsq. */
static void int_sums(const storage_point *pts, size_t n, hdr *h)
{
    const val_params *vp = &h->col[STORAGE_COL_AVG];
    int64_t s = 0;
    uint64_t ss = 0;
    h->sum_int = h->sumsq_int = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t q, q2;
        if (!(pts[i].mask & 1u))
            continue;
        if (!val_to_q(vp, pts[i].v[STORAGE_COL_AVG], &q)) {
            h->sum_int = h->sumsq_int = 0;
            return;
        }
        if (__builtin_add_overflow(s, q, &s))
            h->sum_int = 0;
        if (__builtin_mul_overflow(q, q, &q2) || __builtin_add_overflow(ss, (uint64_t)q2, &ss))
            h->sumsq_int = 0;
    }
    h->qsum = s;
    h->qsumsq = ss;
}

int chunk_encode(const storage_point *pts, size_t n, chunk_buf *out)
{
    hdr h;
    memset(&h, 0, sizeof h);
    int rc = check_points(pts, n, &h.info.colmask);
    if (rc < 0)
        return rc;
    h.info.npoints = (uint32_t)n;
    h.info.first_ts = pts[0].ts;
    h.info.last_ts = pts[n - 1].ts;
    chunk_agg_compute(pts, n, &h.info.agg);
    h.flag = pts[0].flag;
    for (size_t i = 0; i < n; i++) {
        if (pts[i].mask != h.info.colmask)
            h.layout |= LAYOUT_MASKS;
        if (pts[i].flag != h.flag)
            h.layout |= LAYOUT_FLAGS;
    }
    size_t bound = HDR_MAX + 32 + n * 24 + 2 * n * 11;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if (h.info.colmask & (1u << c))
            bound += val_bound(n);
    double *vals = malloc(n * sizeof *vals);
    if (!vals || buf_reserve(out, bound) < 0) {
        free(vals);
        return -ENOMEM;
    }
    /* Sections go after room for the header; the header is written last, once their
     * lengths are known, and the sections moved up against it. */
    uint8_t *sec = out->data + out->len + HDR_MAX, *p = sec;
    rc = ts_encode(pts, n, &h, p, &h.ts_len);
    if (rc < 0)
        goto fail;
    p += h.ts_len;
    if (h.layout & LAYOUT_MASKS) {
        h.mask_len = runs_encode(pts, n, 0, p);
        p += h.mask_len;
    }
    if (h.layout & LAYOUT_FLAGS) {
        h.flag_len = runs_encode(pts, n, 1, p);
        p += h.flag_len;
    }
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (!(h.info.colmask & (1u << c)))
            continue;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (pts[i].mask & (1u << c))
                vals[m++] = pts[i].v[c];
        rc = val_encode(vals, m, p, &h.col[c]);
        if (rc < 0)
            goto fail;
        p += h.col[c].stream_len + h.col[c].exc_len;
    }
    if (h.info.colmask & 1u)
        int_sums(pts, n, &h);
    uint8_t head[HDR_MAX];
    size_t hlen = header_write(&h, head);
    uint8_t *dst = out->data + out->len;
    memmove(dst + hlen, sec, (size_t)(p - sec));
    memcpy(dst, head, hlen);
    out->len += hlen + (size_t)(p - sec);
    rc = 0;
fail:
    free(vals);
    return rc;
}

/* ---- Decoding the header ------------------------------------------------------------------ */

static int get_aggval(rd *r, const val_params *vp, int64_t ref, double *v, int64_t *q)
{
    uint64_t x = get_varint(r);
    if (x == 1) {
        *v = get_f64(r);
        return 0;
    }
    if (x & 1)
        return -1;
    *q = (int64_t)((uint64_t)ref + (uint64_t)unzigzag(x >> 1));
    return val_from_q(vp, *q, v);
}

static int64_t ts_at(const hdr *h, uint64_t units)
{
    return (int64_t)((uint64_t)h->info.first_ts + units * h->tgcd);
}

/* Reads a sum written by put_sum; squares: the sum of squares. 0 or -1. */
static int get_sum(rd *r, const val_params *vp, int squares, double *out)
{
    uint64_t x = get_varint(r);
    if (x == 1) {
        *out = get_f64(r);
        return 0;
    }
    if (x & 1)
        return -1;
    x >>= 1;
    double approx;
    int bad = squares ? vp->g > UINT32_MAX ||
                            sum_approx(x, 0, vp->g * vp->g, 2u * vp->d, &approx) < 0
                      : sum_approx(unzigzag(x) < 0 ? (uint64_t)0 - (uint64_t)unzigzag(x)
                                                   : (uint64_t)unzigzag(x),
                                   unzigzag(x) < 0, vp->g, vp->d, &approx) < 0;
    int64_t diff = unzigzag(get_varint(r));
    if (bad || r->err)
        return -1;
    uint64_t u;
    memcpy(&u, &approx, 8);
    u += (uint64_t)diff;
    memcpy(out, &u, 8);
    return 0;
}

/* Reads the AVG aggregates; 0 or -1. */
static int agg_read(rd *r, hdr *h)
{
    chunk_agg *a = &h->info.agg;
    const val_params *vp = &h->col[STORAGE_COL_AVG];
    uint64_t first_u = 0, last_u = h->span;
    a->count = h->info.npoints;
    if (h->layout & LAYOUT_MASKS) {
        uint64_t count = get_varint(r);
        first_u = get_varint(r);
        last_u = get_varint(r);
        if (count == 0 || count > h->info.npoints || first_u > last_u || last_u > h->span ||
            (count == 1) != (first_u == last_u))
            return -1;
        a->count = (uint32_t)count;
    }
    int64_t ref = 0, q = 0;
    if (get_aggval(r, vp, 0, &a->first, &ref) < 0 || get_aggval(r, vp, ref, &a->last, &q) < 0 ||
        get_aggval(r, vp, ref, &a->min, &q) < 0 || get_aggval(r, vp, ref, &a->max, &q) < 0)
        return -1;
    uint64_t min_u = get_varint(r), max_u = get_varint(r);
    if (min_u < first_u || min_u > last_u || max_u < first_u || max_u > last_u)
        return -1;
    if (get_sum(r, vp, 0, &a->sum) < 0 || get_sum(r, vp, 1, &a->sumsq) < 0)
        return -1;
    a->first_ts = ts_at(h, first_u);
    a->last_ts = ts_at(h, last_u);
    a->min_ts = ts_at(h, min_u);
    a->max_ts = ts_at(h, max_u);
    return r->err ? -1 : 0;
}

static int col_read(rd *r, val_params *vp, uint32_t n)
{
    uint8_t b = get_u8(r);
    vp->d = b & 31;
    vp->pred = b >> 5;
    vp->g = get_varint(r);
    vp->q0 = unzigzag(get_varint(r));
    uint64_t nexc = get_varint(r);
    vp->d2 = vp->d;
    vp->g2 = 1;
    if (nexc) {
        vp->d2 = get_u8(r);
        vp->g2 = get_varint(r);
    }
    uint64_t slen = get_varint(r), elen = get_varint(r);
    if (r->err || nexc > n || slen > SIZE_MAX / 4 || elen > SIZE_MAX / 4 ||
        val_params_check(vp) != 0)
        return -1;
    vp->nexc = (uint32_t)nexc;
    vp->stream_len = (size_t)slen;
    vp->exc_len = (size_t)elen;
    return 0;
}

static int header_read(const void *data, size_t len, hdr *h)
{
    memset(h, 0, sizeof *h);
    if (!data)
        return STORAGE_ECORRUPT;
    rd r = {data, (const uint8_t *)data + len, 0};
    chunk_info *in = &h->info;
    if (get_u8(&r) != CHUNK_VERSION)
        return STORAGE_ECORRUPT;
    uint64_t n = get_varint(&r);
    in->first_ts = unzigzag(get_varint(&r));
    h->tgcd = 1;
    if (n > 1) {
        h->tgcd = get_varint(&r);
        h->span = get_varint(&r);
    }
    uint64_t width;
    if (r.err || n == 0 || n > CHUNK_MAX_POINTS || h->tgcd == 0 || h->span < n - 1 ||
        __builtin_mul_overflow(h->span, h->tgcd, &width) ||
        width > (uint64_t)INT64_MAX - (uint64_t)in->first_ts)
        return STORAGE_ECORRUPT;
    in->npoints = (uint32_t)n;
    in->last_ts = ts_at(h, h->span);
    in->colmask = get_u8(&r);
    uint8_t layout = get_u8(&r);
    h->layout = layout & 3u;
    h->tsmode = layout >> LAYOUT_TS_SHIFT;
    if (in->colmask == 0 || in->colmask >> STORAGE_NCOLS || h->tsmode > TS_DENSE ||
        (h->tsmode == TS_REGULAR) != (h->span == n - 1) || (n == 1 && h->layout))
        return STORAGE_ECORRUPT;
    if (!(h->layout & LAYOUT_FLAGS))
        h->flag = get_u8(&r);
    uint64_t lens[3] = {0, 0, 0};
    if (h->tsmode != TS_REGULAR)
        lens[0] = get_varint(&r);
    if (h->layout & LAYOUT_MASKS)
        lens[1] = get_varint(&r);
    if (h->layout & LAYOUT_FLAGS)
        lens[2] = get_varint(&r);
    uint64_t total = 0;
    for (int i = 0; i < 3; i++)
        total += lens[i] > len ? len + 1 : lens[i];
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (!(in->colmask & (1u << c)))
            continue;
        if (col_read(&r, &h->col[c], in->npoints) < 0)
            return STORAGE_ECORRUPT;
        total += h->col[c].stream_len + h->col[c].exc_len;
    }
    if ((in->colmask & 1u) && agg_read(&r, h) < 0)
        return STORAGE_ECORRUPT;
    if (r.err || total != (uint64_t)(r.end - r.p))
        return STORAGE_ECORRUPT;
    h->ts_len = (size_t)lens[0];
    h->mask_len = (size_t)lens[1];
    h->flag_len = (size_t)lens[2];
    h->body = r.p;
    h->end = r.end;
    return 0;
}

int chunk_info_read(const void *data, size_t len, chunk_info *info)
{
    hdr h;
    int rc = header_read(data, len, &h);
    *info = h.info;
    return rc;
}

/* ---- Decoding the body ------------------------------------------------------------------- */

/* A cursor over a run section (masks or flags). */
typedef struct runs {
    rd r;
    uint64_t left;
    uint8_t cur;
} runs;

static void runs_init(runs *u, const uint8_t *p, size_t len)
{
    u->r = (rd){p, p + len, 0};
    u->left = 0;
    u->cur = 0;
}

static inline uint8_t runs_next(runs *u)
{
    if (u->left == 0) {
        u->left = get_varint(&u->r) + 1;
        u->cur = get_u8(&u->r);
        if (u->left == 0)
            u->r.err = 1;
    }
    u->left--;
    return u->cur;
}

/* 0 if the runs covered exactly the points and the section. */
static int runs_done(const runs *u)
{
    return u->r.err || u->left || u->r.p != u->r.end ? -1 : 0;
}

/* Checks the mask section and counts the points of each column. */
static int masks_scan(const hdr *h, const uint8_t *sec, uint32_t count[STORAGE_NCOLS])
{
    memset(count, 0, STORAGE_NCOLS * sizeof *count);
    if (!(h->layout & LAYOUT_MASKS)) {
        for (int c = 0; c < STORAGE_NCOLS; c++)
            count[c] = h->info.colmask & (1u << c) ? h->info.npoints : 0;
        return 0;
    }
    rd r = {sec, sec + h->mask_len, 0};
    uint8_t seen = 0;
    uint64_t done = 0;
    while (done < h->info.npoints && !r.err) {
        uint64_t len = get_varint(&r);
        uint8_t m = get_u8(&r);
        if (len >= h->info.npoints - done || m == 0 || (m & ~h->info.colmask))
            return -1;
        done += len + 1;
        seen |= m;
        for (int c = 0; c < STORAGE_NCOLS; c++)
            if (m & (1u << c))
                count[c] += (uint32_t)len + 1;
    }
    if (r.err || r.p != r.end || seen != h->info.colmask ||
        ((seen & 1u) && count[STORAGE_COL_AVG] != h->info.agg.count))
        return -1;
    return 0;
}

/* Where decoded timestamps go: every point's, or (filter != NULL) only those of points
 * whose mask has bit, at out + k * stride for the k-th kept point. */
typedef struct ts_sink {
    char *out;
    size_t stride;
    runs *filter;
    uint8_t bit;
} ts_sink;

/* Stores the timestamp t of the next point if it is kept. k is the kept count (a local of
 * the caller, so it stays in a register). */
#define TS_EMIT(t)                                                                         \
    do {                                                                                   \
        int64_t t_ = (t);                                                                  \
        if (!filter || (runs_next(filter) & bit)) {                                        \
            memcpy(o + k * stride, &t_, sizeof t_);                                        \
            k++;                                                                           \
        }                                                                                  \
    } while (0)

static int ts_decode(const hdr *h, const uint8_t *sec, const ts_sink *s)
{
    char *o = s->out;
    const size_t stride = s->stride;
    runs *filter = s->filter;
    const uint8_t bit = s->bit;
    const uint64_t tgcd = h->tgcd;
    size_t k = 0;
    uint64_t n = h->info.npoints, span = h->span, cum = 0, steps = 0;
    int64_t t = h->info.first_ts;
    TS_EMIT(t);
    if (h->tsmode == TS_REGULAR) {
        for (uint64_t i = 1; i < n; i++)
            TS_EMIT(t = (int64_t)((uint64_t)t + tgcd));
        return 0;
    }
    rd r = {sec, sec + h->ts_len, 0};
    uint64_t b = get_varint(&r), nirr = h->tsmode == TS_GAPS ? get_varint(&r) : 0;
    if (r.err || b == 0 || b > span || nirr > n - 1)
        return -1;
    const uint64_t bstep = b * tgcd; /* b <= span, so this cannot overflow */
    bit_reader br;
    bit_reader_init(&br, r.p, (size_t)(r.end - r.p));
    uint64_t ma = 4u << TS_SHIFT, mb = 4u << TS_SHIFT;
    if (h->tsmode == TS_DENSE) {
        for (; steps < n - 1; steps++) {
            uint64_t u = rice_get(&br, rice_k(ma, TS_SHIFT));
            ma = rice_update(ma, u, TS_SHIFT);
            uint64_t st = b + (uint64_t)unzigzag(u);
            if (st == 0 || st > span - cum)
                return -1;
            cum += st;
            TS_EMIT(ts_at(h, cum));
        }
    } else {
        for (uint64_t j = 0; j <= nirr; j++) {
            uint64_t run = n - 1 - steps, st = 0;
            if (j < nirr) {
                run = rice_get(&br, rice_k(ma, TS_SHIFT));
                uint64_t u = rice_get(&br, rice_k(mb, TS_SHIFT));
                ma = rice_update(ma, run, TS_SHIFT);
                mb = rice_update(mb, u, TS_SHIFT);
                st = u + 1 + (u + 1 >= b);
                if (run >= n - 1 - steps || st < u)
                    return -1;
            }
            /* run < 2^20 regular steps of b units: check the room once. */
            if (run && (span - cum) / b < run)
                return -1;
            cum += run * b;
            steps += run;
            for (uint64_t i = 0; i < run; i++)
                TS_EMIT(t = (int64_t)((uint64_t)t + bstep));
            if (j == nirr)
                break;
            if (st > span - cum)
                return -1;
            cum += st;
            steps++;
            TS_EMIT(t = ts_at(h, cum));
        }
    }
    uint64_t left = (uint64_t)(br.end - br.p) * 8 + br.n - (br.phantom < br.n ? br.phantom : br.n);
    if (cum != span || steps != n - 1 || bit_overrun(&br) || left >= 8)
        return -1;
    return 0;
}

/* The sections of a parsed chunk. */
typedef struct sections {
    const uint8_t *ts, *masks, *flags, *col[STORAGE_NCOLS];
} sections;

static void sections_find(const hdr *h, sections *s)
{
    const uint8_t *p = h->body;
    s->ts = p;
    p += h->ts_len;
    s->masks = p;
    p += h->mask_len;
    s->flags = p;
    p += h->flag_len;
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        s->col[c] = p;
        if (h->info.colmask & (1u << c))
            p += h->col[c].stream_len + h->col[c].exc_len;
    }
}

/* Flags of the kept points (all, or those whose mask has bit). */
static int flags_decode(const hdr *h, const sections *sc, uint8_t *out, size_t stride,
                        int col)
{
    uint32_t n = h->info.npoints;
    runs mk, fl;
    runs_init(&mk, sc->masks, h->mask_len);
    runs_init(&fl, sc->flags, h->flag_len);
    int filter = col >= 0 && (h->layout & LAYOUT_MASKS);
    size_t k = 0;
    if (!filter && (h->layout & LAYOUT_FLAGS)) {
        /* Every point kept: a run at a time rather than a point at a time. */
        while (k < n) {
            uint64_t len = get_varint(&fl.r) + 1;
            uint8_t f = get_u8(&fl.r);
            if (fl.r.err || len == 0 || len > n - k)
                return -1;
            if (stride == 1)
                memset(out + k, f, len);
            else
                for (uint64_t j = 0; j < len; j++)
                    out[(k + j) * stride] = f;
            k += len;
        }
        return fl.r.p == fl.r.end ? 0 : -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t f = h->layout & LAYOUT_FLAGS ? runs_next(&fl) : h->flag;
        if (filter && !(runs_next(&mk) & (1u << col)))
            continue;
        out[k++ * stride] = f;
    }
    if ((h->layout & LAYOUT_FLAGS) && runs_done(&fl) < 0)
        return -1;
    return 0;
}

int chunk_decode(const void *data, size_t len, storage_point *pts, size_t cap, size_t *n)
{
    hdr h;
    sections sc;
    uint32_t count[STORAGE_NCOLS];
    int rc = header_read(data, len, &h);
    if (rc < 0)
        return rc;
    uint32_t np = h.info.npoints;
    if (cap < np)
        return -ERANGE;
    sections_find(&h, &sc);
    if (masks_scan(&h, sc.masks, count) < 0)
        return STORAGE_ECORRUPT;
    ts_sink ts = {(char *)&pts[0].ts, sizeof *pts, NULL, 0};
    if (ts_decode(&h, sc.ts, &ts) < 0)
        return STORAGE_ECORRUPT;
    /* Masks, and zeros in the columns the chunk lacks, in one pass over the points (the
     * common series of averages alone gets a fixed-size clear the compiler inlines). */
    runs mk;
    runs_init(&mk, sc.masks, h.mask_len);
    unsigned absent = 0;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        absent |= (count[c] == 0) << c;
    bool vary = h.layout & LAYOUT_MASKS;
    if (absent == ((1u << STORAGE_NCOLS) - 1) - (1u << STORAGE_COL_AVG)) {
        for (uint32_t i = 0; i < np; i++) {
            pts[i].mask = vary ? runs_next(&mk) : h.info.colmask;
            memset(&pts[i].v[STORAGE_COL_AVG + 1], 0, sizeof(double) * (STORAGE_NCOLS - 1));
        }
    } else {
        for (uint32_t i = 0; i < np; i++) {
            pts[i].mask = vary ? runs_next(&mk) : h.info.colmask;
            for (int c = 0; c < STORAGE_NCOLS; c++)
                if (absent >> c & 1)
                    pts[i].v[c] = 0;
        }
    }
    if (flags_decode(&h, &sc, &pts[0].flag, sizeof *pts, -1) < 0)
        return STORAGE_ECORRUPT;
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (!count[c])
            continue;
        /* Decode the column packed at the front, then spread it out from the back: the
         * k-th value moves to a point at index >= k, so nothing unread is overwritten. */
        if (val_decode(&h.col[c], sc.col[c], sc.col[c] + h.col[c].stream_len, count[c],
                       &pts[0].v[c], sizeof *pts) < 0)
            return STORAGE_ECORRUPT;
        if (count[c] == np)
            continue;
        size_t k = count[c];
        for (uint32_t i = np; i-- > 0;)
            pts[i].v[c] = pts[i].mask & (1u << c) ? pts[--k].v[c] : 0;
    }
    *n = np;
    return 0;
}

int chunk_decode_col(const void *data, size_t len, int col, int64_t *ts, double *v,
                     uint8_t *flags, size_t cap, size_t *n)
{
    hdr h;
    sections sc;
    uint32_t count[STORAGE_NCOLS];
    if (col < 0 || col >= STORAGE_NCOLS)
        return -EINVAL;
    int rc = header_read(data, len, &h);
    if (rc < 0)
        return rc;
    sections_find(&h, &sc);
    if (masks_scan(&h, sc.masks, count) < 0)
        return STORAGE_ECORRUPT;
    *n = 0;
    if (count[col] == 0)
        return 0;
    if (cap < count[col])
        return -ERANGE;
    runs mk;
    runs_init(&mk, sc.masks, h.mask_len);
    ts_sink sink = {(char *)ts, sizeof *ts, h.layout & LAYOUT_MASKS ? &mk : NULL,
                    (uint8_t)(1u << col)};
    if (ts_decode(&h, sc.ts, &sink) < 0)
        return STORAGE_ECORRUPT;
    if (flags && flags_decode(&h, &sc, flags, 1, col) < 0)
        return STORAGE_ECORRUPT;
    if (val_decode(&h.col[col], sc.col[col], sc.col[col] + h.col[col].stream_len, count[col],
                   v, sizeof *v) < 0)
        return STORAGE_ECORRUPT;
    *n = count[col];
    return 0;
}

void chunk_buf_free(chunk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
