/* bitio.h: internal to storage/. The bit streams under the chunk codec: a writer into a
 * caller's byte buffer and a reader that never touches a byte outside its [p, end) range,
 * plus the adaptive Golomb-Rice code both sides share.
 *
 * Bits go least significant first (byte 0 bit 0 is the first bit). The reader keeps a
 * 64-bit container topped up to at least 56 bits; near the end of its range it tops up with
 * zero bits it did not read and counts them, so a stream that needs more bits than it has
 * is detected (bit_overrun) instead of read past its end.
 *
 * The Rice code of an unsigned u with parameter k: q = u >> k in unary (q zero bits, then a
 * one), then the low k bits of u. A quotient of RICE_QMAX or more escapes: RICE_QMAX zero
 * bits, then 6 bits holding L = the bit length of u (0..63), then u in L bits. The parameter
 * follows a running mean of the coded values (LOCO-I style), so the code adapts to the
 * local spread of the data with no side information.
 */
#ifndef PLUME_STORAGE_BITIO_H
#define PLUME_STORAGE_BITIO_H

#include <stdint.h>
#include <string.h>

#define RICE_QMAX 24
#define RICE_KMAX 30
#define RICE_UCAP (1ull << 30) /* a value counts at most this much toward the mean, which
                                  keeps the mean, and so k, at most 2^30 */

/* ---- Writer ------------------------------------------------------------------------- */

typedef struct bit_writer {
    uint8_t *p;   /* next byte to write; the caller guarantees room */
    uint64_t acc; /* pending bits, low first */
    unsigned n;   /* pending bit count, < 32 between calls */
} bit_writer;

/* Appends the low c bits of v (c <= 32). */
static inline void bit_put(bit_writer *w, uint64_t v, unsigned c)
{
    w->acc |= (v & ((1ull << c) - 1)) << w->n;
    w->n += c;
    if (w->n >= 32) {
        uint32_t lo = (uint32_t)w->acc;
        w->p[0] = (uint8_t)lo;
        w->p[1] = (uint8_t)(lo >> 8);
        w->p[2] = (uint8_t)(lo >> 16);
        w->p[3] = (uint8_t)(lo >> 24);
        w->p += 4;
        w->acc >>= 32;
        w->n -= 32;
    }
}

/* Writes the pending bits, zero-padded to a byte; returns the end of the stream. */
static inline uint8_t *bit_flush(bit_writer *w)
{
    while (w->n > 0) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
    w->acc = 0;
    return w->p;
}

static inline unsigned bit_len64(uint64_t u)
{
    return u ? 64u - (unsigned)__builtin_clzll(u) : 0;
}

static inline void rice_put(bit_writer *w, uint64_t u, unsigned k)
{
    uint64_t q = u >> k;
    if (q < RICE_QMAX) {
        bit_put(w, 1ull << q, (unsigned)q + 1);
        if (k)
            bit_put(w, u, k);
        return;
    }
    unsigned l = bit_len64(u);
    bit_put(w, 0, RICE_QMAX);
    bit_put(w, l, 6);
    if (l > 32) {
        bit_put(w, u, 32);
        bit_put(w, u >> 32, l - 32);
    } else {
        bit_put(w, u, l);
    }
}

/* Bits rice_put would write. */
static inline unsigned rice_cost(uint64_t u, unsigned k)
{
    uint64_t q = u >> k;
    return q < RICE_QMAX ? (unsigned)q + 1 + k : RICE_QMAX + 6 + bit_len64(u);
}

/* ---- Adaptive parameter ------------------------------------------------------------ */

/* m is the running mean scaled by 2^shift; k = floor(log2(mean)), 0 for a mean below 1.
 * Since no value counts for more than RICE_UCAP, k <= RICE_KMAX. */
static inline unsigned rice_k(uint64_t m, unsigned shift)
{
    return 63u - (unsigned)__builtin_clzll((m >> shift) | 1);
}

static inline uint64_t rice_update(uint64_t m, uint64_t u, unsigned shift)
{
    return m + (u < RICE_UCAP ? u : RICE_UCAP) - (m >> shift);
}

/* ---- Reader ------------------------------------------------------------------------- */

typedef struct bit_reader {
    const uint8_t *p, *end;
    uint64_t bits;    /* valid bits, low first */
    unsigned n;       /* valid bit count */
    uint64_t phantom; /* zero bits added past end (they sit at the top of bits) */
} bit_reader;

static inline void bit_reader_init(bit_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
    r->bits = 0;
    r->n = 0;
    r->phantom = 0;
}

static inline void bit_refill_slow(bit_reader *r)
{
    while (r->n <= 56) {
        if (r->p < r->end) {
            r->bits |= (uint64_t)*r->p++ << r->n;
        } else {
            r->phantom += 8;
        }
        r->n += 8;
    }
}

/* Ensures at least 56 valid bits. */
static inline void bit_refill(bit_reader *r)
{
    if (r->end - r->p >= 8) {
        uint64_t v;
        memcpy(&v, r->p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        r->bits |= v << r->n;
        r->p += (63 - r->n) >> 3;
        r->n |= 56;
    } else {
        bit_refill_slow(r);
    }
}

/* Takes c bits (c <= 56, after a refill). */
static inline uint64_t bit_take(bit_reader *r, unsigned c)
{
    uint64_t v = c ? r->bits & (~0ull >> (64 - c)) : 0;
    r->bits = c < 64 ? r->bits >> c : 0;
    r->n -= c;
    return v;
}

/* Nonzero if more bits were taken than the stream holds. */
static inline int bit_overrun(const bit_reader *r)
{
    return r->phantom > r->n;
}

static uint64_t rice_get_escape(bit_reader *r)
{
    bit_take(r, RICE_QMAX);
    bit_refill(r);
    unsigned l = (unsigned)bit_take(r, 6);
    bit_refill(r);
    if (l <= 32)
        return bit_take(r, l);
    uint64_t lo = bit_take(r, 32);
    bit_refill(r);
    return lo | bit_take(r, l - 32) << 32;
}

/* Reads one Rice-coded value (k <= RICE_KMAX). */
static inline uint64_t rice_get(bit_reader *r, unsigned k)
{
    bit_refill(r);
    unsigned q = r->bits ? (unsigned)__builtin_ctzll(r->bits) : 64;
    if (q >= RICE_QMAX)
        return rice_get_escape(r);
    r->bits >>= q + 1;
    r->n -= q + 1;
    uint64_t lo = r->bits & ((1ull << k) - 1);
    r->bits >>= k;
    r->n -= k;
    return ((uint64_t)q << k) | lo;
}

#endif
