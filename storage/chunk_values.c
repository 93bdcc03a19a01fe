/* chunk_values.c: one value column of a chunk (chunk_values.h), the part of the chunk codec
 * that decides its size and its decoding speed.
 *
 * CEMS readings are decimals with a few digits, so each column picks a decimal scale d and a
 * common factor g (Beijing CO comes in hundreds) with which value == (double)(q * g) / 10^d
 * holds bit for bit for an integer q. The integers go through a predictor chosen per column
 * (previous value plus a quarter-step fraction of the last slope), and the zigzagged
 * residuals through an adaptive Rice code whose parameter follows a running mean, with a
 * run mode for stretches of zero residuals (rain, flat readings). The encoder tries the
 * plausible scales and every predictor and keeps the smallest. A value no choice expresses
 * (NaN, -0.0, a 15-decimal mean among 1-decimal readings) is an exception: its stream slot
 * carries a nearby integer so the prediction stays smooth, and a side list holds either a
 * correction at a finer scale or the raw bits, so nothing is ever rounded.
 */
#include "chunk_values.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bitio.h"
#include "storage.h"

#define VAL_SHIFT 3            /* running mean of residuals, scaled by 2^3 */
#define VAL_M0 (4u << VAL_SHIFT)
#define RUN_SHIFT 2            /* running mean of zero-run lengths */
#define RUN_M0 (4u << RUN_SHIFT)
#define END_M0 (4u << RUN_SHIFT) /* running mean of the residuals that end a run */
#define RUN_T (1u << VAL_SHIFT) /* mean residual below 1: code zero runs */
#define EXACT (1ll << 53)      /* integers up to this convert to double exactly */
#define EXC_SHIFT 2            /* running means of exception gaps and corrections */
#define EXC_G0 (16u << EXC_SHIFT)
#define EXC_R0 (64u << EXC_SHIFT)
#define EXC_CODE_RAW 31
#define EXC_CODE_ALT 30

static const double p10[VAL_DMAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static uint64_t zz(int64_t x)
{
    return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

static int64_t unzz(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* The predictor: prev + (prev - prev2) * p / 4, in wrapping arithmetic so that damaged
 * input cannot overflow a signed integer. */
static inline int64_t predict(int64_t prev, int64_t prev2, unsigned p)
{
    int64_t slope = (int64_t)(((uint64_t)prev - (uint64_t)prev2) * p);
    return (int64_t)((uint64_t)prev + (uint64_t)(slope >> 2));
}

/* i with v == (double)i / 10^d bit for bit and |i| <= 2^53, if there is one. */
static int exact_at(double v, unsigned d, int64_t *i)
{
    double x = v * p10[d];
    if (!(fabs(x) <= (double)EXACT))
        return 0;
    int64_t n = llrint(x);
    if (!same_bits((double)n / p10[d], v))
        return 0;
    *i = n;
    return 1;
}

/* The smallest scale that expresses v exactly, or -1. */
static int min_scale(double v)
{
    int64_t i;
    for (unsigned d = 0; d <= VAL_DMAX; d++)
        if (exact_at(v, d, &i))
            return (int)d;
    return -1;
}

int val_to_q(const val_params *vp, double v, int64_t *q)
{
    int64_t i;
    if (!exact_at(v, vp->d, &i) || i % (int64_t)vp->g != 0)
        return 0;
    *q = i / (int64_t)vp->g;
    return 1;
}

int val_from_q(const val_params *vp, int64_t q, double *v)
{
    int64_t lim = EXACT / (int64_t)vp->g;
    if (q < -lim || q > lim)
        return -1;
    *v = (double)(q * (int64_t)vp->g) / p10[vp->d];
    return 0;
}

int val_params_check(const val_params *vp)
{
    if (vp->d > VAL_DMAX || vp->pred >= VAL_PREDS || vp->g == 0 || vp->g > (uint64_t)EXACT ||
        vp->d2 > VAL_DMAX || vp->d2 < vp->d || vp->g2 == 0 || vp->g2 > (uint64_t)EXACT)
        return -1;
    int64_t lim = EXACT / (int64_t)vp->g;
    return vp->q0 < -lim || vp->q0 > lim ? -1 : 0;
}

size_t val_bound(size_t m)
{
    /* Stream: at most RICE_QMAX + 6 + 64 bits a value, plus a zero-run code per value.
     * Exceptions: gap, kind and 8 bytes (or a varint of at most 10). */
    return m * (2 * (RICE_QMAX + 6 + 64) / 8 + 2) + m * 26 + 16;
}

/* ---- Encoding ---------------------------------------------------------------------- */

/* Codes q[1..m-1] with predictor p into w, or (w == NULL) only counts the bits. */
static uint64_t code_stream(const int64_t *q, size_t m, unsigned p, bit_writer *w)
{
    uint64_t bits = 0, ms = VAL_M0, rm = RUN_M0, me = END_M0;
    int64_t prev = q[0], prev2 = q[0];
    size_t k = 1;
    while (k < m) {
        int64_t res = (int64_t)((uint64_t)q[k] - (uint64_t)predict(prev, prev2, p));
        if (ms < RUN_T) {
            uint64_t run = 0;
            while (res == 0) {
                run++;
                prev2 = prev;
                prev = q[k++];
                if (k == m)
                    break;
                res = (int64_t)((uint64_t)q[k] - (uint64_t)predict(prev, prev2, p));
            }
            unsigned rk = rice_k(rm, RUN_SHIFT);
            if (w)
                rice_put(w, run, rk);
            bits += rice_cost(run, rk);
            rm = rice_update(rm, run, RUN_SHIFT);
            if (k == m)
                break;
            uint64_t u = zz(res);
            unsigned ke = rice_k(me, RUN_SHIFT);
            if (w)
                rice_put(w, u - 1, ke);
            bits += rice_cost(u - 1, ke);
            me = rice_update(me, u - 1, RUN_SHIFT);
            ms = rice_update(ms, u, VAL_SHIFT);
        } else {
            uint64_t u = zz(res);
            unsigned kk = rice_k(ms, VAL_SHIFT);
            if (w)
                rice_put(w, u, kk);
            bits += rice_cost(u, kk);
            ms = rice_update(ms, u, VAL_SHIFT);
        }
        prev2 = prev;
        prev = q[k++];
    }
    return bits;
}

/* The exception of v at scale (d, g) whose stream slot holds q: a kind e and a correction
 * r with v == (double)(q * g * 10^e + r) / 10^(d + e), or VAL_EXC_RAW. */
/* The alternate-scale integer j nearest to the stream integer q: round(q * g * 10^(d2 - d)
 * / g2). -1 if it overflows. */
static int alt_guess(const val_params *vp, int64_t q, int64_t *j)
{
    int64_t num;
    if (vp->d2 < vp->d || vp->d2 - vp->d > 18 || __builtin_mul_overflow(q, (int64_t)vp->g, &num) ||
        __builtin_mul_overflow(num, (int64_t)p10[vp->d2 - vp->d], &num) || num == INT64_MIN)
        return -1;
    int64_t g2 = (int64_t)vp->g2, a = num < 0 ? -num : num;
    int64_t r = a / g2 + (a % g2 >= g2 - a % g2 ? 1 : 0);
    *j = num < 0 ? -r : r;
    return 0;
}

/* The exception of v at scale (d, g) whose stream slot holds q: VAL_EXC_ALT with r = j - the
 * guess when v = j * g2 / 10^d2; else a kind e and a correction r with v == (double)(q * g *
 * 10^e + r) / 10^(d + e); else VAL_EXC_RAW. */
static unsigned exc_kind(double v, const val_params *vp, int64_t q, int64_t *r)
{
    int64_t a, j;
    if (vp->g2 > 1 && exact_at(v, vp->d2, &a) && a % (int64_t)vp->g2 == 0 &&
        alt_guess(vp, q, &j) == 0 && !__builtin_sub_overflow(a / (int64_t)vp->g2, j, r))
        return VAL_EXC_ALT;
    for (unsigned e = 0; e <= 18 && vp->d + e <= VAL_DMAX; e++) {
        int64_t i, base;
        if (!exact_at(v, vp->d + e, &i))
            continue;
        if (__builtin_mul_overflow(q, (int64_t)vp->g, &base) ||
            __builtin_mul_overflow(base, (int64_t)p10[e], &base) ||
            __builtin_sub_overflow(i, base, r))
            return VAL_EXC_RAW;
        return e;
    }
    return VAL_EXC_RAW;
}

/* Scratch for one trial: the stream integers and which values are exceptions. */
typedef struct trial {
    int64_t *q;
    uint8_t *exc;
    uint32_t nexc;
    uint64_t exc_bits;
    uint64_t bits;
    unsigned pred;
} trial;

/* Codes the exception list of a trial into w, or (w == NULL) counts its bits. Per
 * exception: the gap since the previous one (Rice, adaptive), its kind (one bit when it
 * repeats the previous kind, else a zero bit and 5 bits: e, or 31 for raw), then the
 * correction r (zigzag, Rice, adaptive) or the 64 raw bits. */
static uint64_t exc_code(const double *v, size_t m, const val_params *vp, const trial *t,
                         bit_writer *w)
{
    uint64_t bits = 0, mg = EXC_G0, mr = EXC_R0;
    unsigned last = 0;
    size_t prev = SIZE_MAX;
    for (size_t k = 0; k < m; k++) {
        if (!t->exc[k])
            continue;
        uint64_t gap = prev == SIZE_MAX ? k : k - prev - 1;
        unsigned kg = rice_k(mg, EXC_SHIFT);
        bits += rice_cost(gap, kg);
        if (w)
            rice_put(w, gap, kg);
        mg = rice_update(mg, gap, EXC_SHIFT);
        prev = k;
        int64_t r = 0;
        unsigned kind = exc_kind(v[k], vp, t->q[k], &r);
        unsigned code = kind == VAL_EXC_RAW ? EXC_CODE_RAW : kind == VAL_EXC_ALT ? EXC_CODE_ALT : kind;
        bits += code == last ? 1 : 6;
        if (w)
            bit_put(w, code == last ? 1 : (uint64_t)code << 1, code == last ? 1 : 6);
        last = code;
        if (kind == VAL_EXC_RAW) {
            uint64_t u;
            memcpy(&u, &v[k], 8);
            bits += 64;
            if (w) {
                bit_put(w, u, 32);
                bit_put(w, u >> 32, 32);
            }
            continue;
        }
        uint64_t u = zz(r);
        unsigned kr = rice_k(mr, EXC_SHIFT);
        bits += rice_cost(u, kr);
        if (w)
            rice_put(w, u, kr);
        mr = rice_update(mr, u, EXC_SHIFT);
    }
    return bits;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The alternate scale of the exceptions: converted readings (ppb times 2.856, say) that a
 * decimal scale cannot express are often all multiples of one factor at a finer scale. d2
 * is the scale most exceptions need (up to d + 8), g2 the gcd of their integers there;
 * a g2 of 1 (no common factor) leaves the alternate scale unused. */
static void pick_alt(const double *v, size_t m, val_params *vp, const trial *t)
{
    size_t hist[9] = {0}, best = 0;
    vp->d2 = vp->d;
    vp->g2 = 1;
    for (size_t k = 0; k < m; k++) {
        int s = t->exc[k] ? min_scale(v[k]) : -1;
        if (s >= (int)vp->d && s <= vp->d + 8)
            hist[s - vp->d]++;
    }
    int d2 = -1;
    for (int e = 0; e <= 8; e++)
        if (hist[e] > best) {
            best = hist[e];
            d2 = vp->d + e;
        }
    if (d2 < 0)
        return;
    uint64_t g2 = 0;
    for (size_t k = 0; k < m; k++) {
        int64_t i;
        if (!t->exc[k] || !exact_at(v[k], (unsigned)d2, &i) || i == 0)
            continue;
        g2 = gcd64(i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i, g2);
    }
    if (g2 > 1) {
        vp->d2 = (uint8_t)d2;
        vp->g2 = g2;
    }
}

/* Fills t for scale (d, g) and picks the best predictor. */
static void try_scale(const double *v, size_t m, val_params *vp, trial *t)
{
    int64_t lim = EXACT / (int64_t)vp->g, last = 0;
    t->nexc = 0;
    for (size_t k = 0; k < m; k++) {
        int64_t q;
        if (val_to_q(vp, v[k], &q)) {
            t->q[k] = last = q;
            t->exc[k] = 0;
            continue;
        }
        /* A nearby integer keeps the prediction smooth; NaN and the like repeat the last. */
        double x = v[k] * p10[vp->d] / (double)vp->g;
        q = fabs(x) < (double)lim ? llrint(x) : last;
        t->q[k] = last = q;
        t->exc[k] = 1;
        t->nexc++;
    }
    pick_alt(v, m, vp, t);
    t->exc_bits = t->nexc ? exc_code(v, m, vp, t, NULL) : 0;
    t->bits = UINT64_MAX;
    for (unsigned p = 0; p < VAL_PREDS; p++) {
        uint64_t b = code_stream(t->q, m, p, NULL);
        if (b < t->bits) {
            t->bits = b;
            t->pred = p;
        }
    }
}

/* The common factor at scale d: the gcd of the non-zero values that fit, or a round factor
 * most of them share when a few odd values would otherwise spoil it. */
static uint64_t pick_factor(const double *v, size_t m, unsigned d)
{
    static const uint64_t cands[] = {10, 100, 1000, 2, 5, 20, 50};
    static const double cand_bits[] = {3.321928094887362, 6.643856189774724, 9.965784284662087,
                                       1.0, 2.321928094887362, 4.321928094887363,
                                       5.643856189774724}; /* log2 of each */
    uint64_t g = 0, cover[sizeof cands / sizeof cands[0]] = {0}, fit = 0;
    for (size_t k = 0; k < m; k++) {
        int64_t i;
        if (!exact_at(v[k], d, &i))
            continue;
        uint64_t a = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        if (a == 0)
            continue; /* zero is a multiple of anything and gains nothing */
        g = gcd64(a, g);
        fit++;
        for (size_t c = 0; c < sizeof cands / sizeof cands[0]; c++)
            cover[c] += a % cands[c] == 0;
    }
    if (g > 1)
        return g;
    double best = 0;
    uint64_t pick = 1;
    for (size_t c = 0; c < sizeof cands / sizeof cands[0]; c++) {
        double gain = (double)fit * cand_bits[c] - (double)(fit - cover[c]) * 32;
        if (gain > best) {
            best = gain;
            pick = cands[c];
        }
    }
    return pick;
}

/* Trials of columns up to this many values use the stack: sealing the head encodes one
 * small column after another, and four allocations each cost more than the encoding. */
#define VAL_STACK 512

int val_encode(const double *v, size_t m, uint8_t *out, val_params *vp)
{
    trial t[2];
    memset(t, 0, sizeof t);
    int rc = -ENOMEM;
    int64_t q_stack[2][VAL_STACK];
    uint8_t exc_stack[2][VAL_STACK];
    bool heap = m > VAL_STACK;
    for (int i = 0; i < 2; i++) {
        t[i].q = heap ? malloc(m * sizeof *t[i].q) : q_stack[i];
        t[i].exc = heap ? malloc(m) : exc_stack[i];
        if (!t[i].q || !t[i].exc)
            goto fail;
    }
    /* Candidate scales: the cheapest by a rough cost (3.3 bits a value per decimal, 32
     * bits an exception) and the smallest that needs no exception; both are tried. */
    size_t hist[VAL_DMAX + 1] = {0};
    for (size_t k = 0; k < m; k++) {
        int d = min_scale(v[k]);
        if (d >= 0)
            hist[d]++;
    }
    size_t fit = 0;
    int rough = 0, full = -1;
    double best = INFINITY;
    for (int d = 0; d <= VAL_DMAX; d++) {
        fit += hist[d];
        double cost = 3.3 * d * (double)m + 32.0 * (double)(m - fit);
        if (cost < best) {
            best = cost;
            rough = d;
        }
        if (fit == m && full < 0)
            full = d;
    }
    val_params cand[2];
    int ncand = full >= 0 && full != rough ? 2 : 1;
    int dd[2] = {rough, full};
    int pick = 0;
    for (int i = 0; i < ncand; i++) {
        memset(&cand[i], 0, sizeof cand[i]);
        cand[i].d = (uint8_t)dd[i];
        cand[i].g = pick_factor(v, m, (unsigned)dd[i]);
        try_scale(v, m, &cand[i], &t[i]);
        if (i > 0 && t[i].bits + t[i].exc_bits < t[pick].bits + t[pick].exc_bits)
            pick = i;
    }
    *vp = cand[pick];
    vp->pred = (uint8_t)t[pick].pred;
    vp->q0 = t[pick].q[0];
    vp->nexc = t[pick].nexc;
    bit_writer w = {out, 0, 0};
    code_stream(t[pick].q, m, vp->pred, &w);
    vp->stream_len = (size_t)(bit_flush(&w) - out);
    w = (bit_writer){out + vp->stream_len, 0, 0};
    if (vp->nexc)
        exc_code(v, m, vp, &t[pick], &w);
    vp->exc_len = (size_t)(bit_flush(&w) - (out + vp->stream_len));
    rc = 0;
fail:
    for (int i = 0; heap && i < 2; i++) {
        free(t[i].q);
        free(t[i].exc);
    }
    return rc;
}

/* ---- Decoding ---------------------------------------------------------------------- */

/* The cursor over an exception list: the next exception's position and payload. */
typedef struct exc_cursor {
    bit_reader r;
    uint64_t mg, mr;
    unsigned code;  /* kind of the next exception: e, or EXC_CODE_RAW */
    uint32_t left;  /* exceptions not yet read */
    size_t next;    /* position of the next exception, SIZE_MAX when none */
    int64_t corr;   /* its correction */
    uint64_t raw;   /* or its bits */
    int err;
} exc_cursor;

/* Reads the next exception, the one after position from (SIZE_MAX: the first). */
static void exc_advance(exc_cursor *c, size_t from, size_t m)
{
    c->next = SIZE_MAX;
    if (c->left == 0)
        return;
    c->left--;
    uint64_t gap = rice_get(&c->r, rice_k(c->mg, EXC_SHIFT));
    c->mg = rice_update(c->mg, gap, EXC_SHIFT);
    size_t base = from == SIZE_MAX ? 0 : from + 1;
    if (base >= m || gap >= m - base) {
        c->err = 1;
        return;
    }
    bit_refill(&c->r);
    if (!bit_take(&c->r, 1))
        c->code = (unsigned)bit_take(&c->r, 5);
    if (c->code == EXC_CODE_RAW) {
        bit_refill(&c->r);
        c->raw = bit_take(&c->r, 32);
        bit_refill(&c->r);
        c->raw |= bit_take(&c->r, 32) << 32;
    } else if (c->code > 18 && c->code != EXC_CODE_ALT) {
        c->err = 1;
        return;
    } else {
        uint64_t u = rice_get(&c->r, rice_k(c->mr, EXC_SHIFT));
        c->mr = rice_update(c->mr, u, EXC_SHIFT);
        c->corr = unzz(u);
    }
    c->next = base + (size_t)gap;
}

/* The value of the exception at the cursor, whose stream slot holds q. */
static double exc_value(exc_cursor *c, const val_params *vp, int64_t q)
{
    double v;
    if (c->code == EXC_CODE_RAW) {
        memcpy(&v, &c->raw, 8);
        return v;
    }
    int64_t i;
    if (c->code == EXC_CODE_ALT) {
        if (vp->g2 < 2 || alt_guess(vp, q, &i) < 0 || __builtin_add_overflow(i, c->corr, &i) ||
            __builtin_mul_overflow(i, (int64_t)vp->g2, &i) || i < -EXACT || i > EXACT) {
            c->err = 1;
            return 0;
        }
        return (double)i / p10[vp->d2];
    }
    unsigned e = c->code;
    if (e + vp->d > VAL_DMAX || __builtin_mul_overflow(q, (int64_t)vp->g, &i) ||
        __builtin_mul_overflow(i, (int64_t)p10[e], &i) ||
        __builtin_add_overflow(i, c->corr, &i) || i < -EXACT || i > EXACT) {
        c->err = 1;
        return 0;
    }
    return (double)i / p10[vp->d + e];
}

/* Stores integer k of the stream (at out + k * stride, where its double will go). */
#define PUT_Q(k, q) memcpy(o + (k) * stride, &(q), sizeof(int64_t))

/* The stream decoder, specialised by inlining for each predictor (P) so that the common
 * "previous value" predictor costs no arithmetic. It keeps the bit reader in locals (the
 * hot loop is a few dozen instructions a value, so spills show) and leaves the rare paths
 * (the last bytes of the stream, escapes) to the out-of-line bitio.h code. Writes the m
 * integers as int64 into the output slots; returns nonzero if a run overshoots the end. */
#define RD_SAVE() (r->bits = bits, r->n = n, r->p = p)
#define RD_LOAD() (bits = r->bits, n = r->n, p = r->p)

static inline __attribute__((always_inline)) int
stream_decode(bit_reader *r, int64_t q0, size_t m, char *o, size_t stride, const unsigned P)
{
    uint64_t ms = VAL_M0, rm = RUN_M0, me = END_M0, bits = r->bits;
    unsigned n = r->n;
    const uint8_t *p = r->p, *const fast_end = r->end - 8;
    int64_t prev = q0, prev2 = q0, q;
    PUT_Q(0, prev);
    size_t k = 1;
    while (k < m) {
        if (ms < RUN_T) {
            RD_SAVE();
            uint64_t run = rice_get(r, rice_k(rm, RUN_SHIFT));
            rm = rice_update(rm, run, RUN_SHIFT);
            if (run > m - k)
                return -1;
            size_t end = k + (size_t)run;
            if (P == 0) {
                for (; k < end; k++)
                    PUT_Q(k, prev);
                prev2 = prev;
            } else {
                for (; k < end; k++) {
                    q = predict(prev, prev2, P);
                    PUT_Q(k, q);
                    prev2 = prev;
                    prev = q;
                }
            }
            if (k == m) {
                RD_LOAD();
                break;
            }
            uint64_t u = rice_get(r, rice_k(me, RUN_SHIFT));
            me = rice_update(me, u, RUN_SHIFT);
            u++;
            RD_LOAD();
            ms = rice_update(ms, u, VAL_SHIFT);
            q = (int64_t)((uint64_t)predict(prev, prev2, P) + (uint64_t)unzz(u));
        } else {
            unsigned kk = rice_k(ms, VAL_SHIFT);
            uint64_t u;
            if (__builtin_expect(p <= fast_end, 1)) {
                uint64_t v;
                memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                v = __builtin_bswap64(v);
#endif
                bits |= v << n;
                p += (63 - n) >> 3;
                n |= 56;
                unsigned qq = (unsigned)__builtin_ctzll(bits | (1ull << 63));
                if (__builtin_expect(qq < RICE_QMAX, 1)) {
                    bits >>= qq + 1;
                    u = (uint64_t)qq << kk | (bits & ((1ull << kk) - 1));
                    bits >>= kk;
                    n -= qq + 1 + kk;
                } else {
                    RD_SAVE();
                    u = rice_get(r, kk);
                    RD_LOAD();
                }
            } else {
                RD_SAVE();
                u = rice_get(r, kk);
                RD_LOAD();
            }
            ms = rice_update(ms, u, VAL_SHIFT);
            q = (int64_t)((uint64_t)predict(prev, prev2, P) + (uint64_t)unzz(u));
        }
        PUT_Q(k, q);
        prev2 = prev;
        prev = q;
        k++;
    }
    RD_SAVE();
    return 0;
}

/* Turns the integers in slots [from, to) into doubles; nonzero if one is out of range. */
static inline __attribute__((always_inline)) uint64_t
convert(char *o, size_t stride, size_t from, size_t to, int64_t g, int64_t lim, double scale,
        const int scaled)
{
    uint64_t bad = 0;
    for (size_t k = from; k < to; k++) {
        int64_t q;
        memcpy(&q, o + k * stride, sizeof q);
        bad |= (uint64_t)q + (uint64_t)lim > 2 * (uint64_t)lim;
        double x = (double)(int64_t)((uint64_t)q * (uint64_t)g);
        if (scaled)
            x /= scale;
        memcpy(o + k * stride, &x, sizeof x);
    }
    return bad;
}

int val_decode(const val_params *vp, const uint8_t *stream, const uint8_t *exc, size_t m,
               double *out, size_t stride)
{
    if (val_params_check(vp) != 0 || m == 0)
        return STORAGE_ECORRUPT;
    bit_reader r;
    bit_reader_init(&r, stream, vp->stream_len);
    char *o = (char *)out;
    int rc;
    switch (vp->pred) {
    case 0: rc = stream_decode(&r, vp->q0, m, o, stride, 0); break;
    case 1: rc = stream_decode(&r, vp->q0, m, o, stride, 1); break;
    case 2: rc = stream_decode(&r, vp->q0, m, o, stride, 2); break;
    case 3: rc = stream_decode(&r, vp->q0, m, o, stride, 3); break;
    default: rc = stream_decode(&r, vp->q0, m, o, stride, 4); break;
    }
    uint64_t left_bits = (uint64_t)(r.end - r.p) * 8 + r.n - (r.phantom < r.n ? r.phantom : r.n);
    if (rc != 0 || bit_overrun(&r) || left_bits >= 8)
        return STORAGE_ECORRUPT;

    /* Integers to doubles, a stretch at a time between exceptions. */
    exc_cursor c;
    memset(&c, 0, sizeof c);
    bit_reader_init(&c.r, exc, vp->exc_len);
    c.mg = EXC_G0;
    c.mr = EXC_R0;
    c.left = vp->nexc;
    exc_advance(&c, SIZE_MAX, m);
    const int64_t g = (int64_t)vp->g, lim = EXACT / g;
    const double scale = p10[vp->d];
    uint64_t bad = 0;
    size_t k = 0;
    while (k < m && !c.err) {
        size_t to = c.next < m ? c.next : m;
        bad |= vp->d ? convert(o, stride, k, to, g, lim, scale, 1)
                     : convert(o, stride, k, to, g, lim, scale, 0);
        k = to;
        if (k == m)
            break;
        int64_t q;
        memcpy(&q, o + k * stride, sizeof q);
        bad |= (uint64_t)q + (uint64_t)lim > 2 * (uint64_t)lim;
        double x = exc_value(&c, vp, q);
        memcpy(o + k * stride, &x, sizeof x);
        exc_advance(&c, k, m);
        k++;
    }
    /* Every bit and byte accounted for: no overrun, at most the zero padding of the last
     * byte left over, every exception used. */
    uint64_t exc_left = (uint64_t)(c.r.end - c.r.p) * 8 + c.r.n -
                        (c.r.phantom < c.r.n ? c.r.phantom : c.r.n);
    if (bad || c.err || c.left || c.next != SIZE_MAX || bit_overrun(&c.r) || exc_left >= 8)
        return STORAGE_ECORRUPT;
    return 0;
}
