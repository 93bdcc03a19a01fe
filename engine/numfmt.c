/* numfmt.c: decimal text <-> double, exactly and fast.
 *
 * Imports read millions of sensor values ("23.45", "-1.2", "1015.66666666667") and dumps and
 * queries print them back. strtod and printf("%.17g") are exact but slow (locale lookups,
 * big-number arithmetic) and %.17g prints 0.1 as 0.10000000000000001. Almost every reading
 * has at most 15 significant digits, and for those a single correctly rounded IEEE division
 * or multiplication by an exact power of ten gives the very double strtod returns (Clinger's
 * fast path). Anything else falls back to the C library, so results are always bit-exact.
 * Formatting prints the shortest plain decimal that reads back to the same double, falling
 * back to the shortest %.Ng that does. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Powers of ten that are exact doubles (10^22 is the largest). */
static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Longest text handed to strtod; longer numbers are refused rather than copied to the heap. */
#define SLOW_MAX 400

static int parse_slow(const char *s, size_t len, double *out)
{
    char buf[SLOW_MAX + 1];
    if (len > SLOW_MAX)
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len)
        return -EINVAL;
    if (errno == ERANGE && isinf(v))
        return -ERANGE;
    *out = v;
    return 0;
}

int engine_double_parse(const char *s, size_t len, double *out)
{
    const char *p = s, *end = s + len;
    bool neg = false, any = false, overflow = false;
    uint64_t m = 0;
    int nd = 0, exp10 = 0;

    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    for (; p < end && (unsigned)(*p - '0') < 10; p++, any = true) {
        if (m == 0 && *p == '0')
            continue;
        if (nd < 19) {
            m = m * 10 + (uint64_t)(*p - '0');
            nd++;
        } else {
            overflow = true;
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && (unsigned)(*p - '0') < 10; p++, any = true) {
            if (m == 0 && *p == '0') {
                exp10--;
            } else if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd++;
                exp10--;
            } else {
                overflow = true;
            }
        }
    }
    if (!any)
        return -EINVAL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int esign = 1, e = 0;
        if (p < end && (*p == '-' || *p == '+'))
            esign = *p++ == '-' ? -1 : 1;
        if (p == end || (unsigned)(*p - '0') >= 10)
            return -EINVAL;
        for (; p < end && (unsigned)(*p - '0') < 10; p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += esign * e;
    }
    if (p != end)
        return -EINVAL;
#if FLT_EVAL_METHOD == 0
    if (!overflow && m <= (1ull << 53)) {
        if (m == 0) {
            *out = neg ? -0.0 : 0.0;
            return 0;
        }
        if (exp10 >= -22 && exp10 <= 22) {
            double d = (double)m;
            d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
            *out = neg ? -d : d;
            return 0;
        }
    }
#endif
    return parse_slow(s, len, out);
}

/* Writes the decimal digits of u, returns their count. */
static int format_u64(uint64_t u, char *buf)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Plain decimal r * 10^-k into buf; returns the length. */
static int format_fixed(uint64_t r, int k, char *buf)
{
    char digits[24];
    int n = format_u64(r, digits), len = 0;
    if (k == 0) {
        memcpy(buf, digits, (size_t)n);
        return n;
    }
    if (n <= k) { /* 0.00ddd */
        buf[len++] = '0';
        buf[len++] = '.';
        for (int i = n; i < k; i++)
            buf[len++] = '0';
        memcpy(buf + len, digits, (size_t)n);
        return len + n;
    }
    memcpy(buf, digits, (size_t)(n - k));
    len = n - k;
    buf[len++] = '.';
    memcpy(buf + len, digits + n - k, (size_t)k);
    return len + k;
}

static bool reads_back(const char *text, double v)
{
    double w = strtod(text, NULL);
    return memcmp(&w, &v, sizeof v) == 0;
}

/* Powers of ten as long doubles: exact up to 10^27 (5^27 < 2^64). */
static const long double pow10_long[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L,
};

/* The n-significant-digit decimal nearest v (1e-4 <= v < 1e15, 15 <= n <= 17) as r / 10^k;
 * *e is v's decimal exponent, a guess (log10) corrected here. With a 64-bit mantissa,
 * v * 10^k is off by under 0.006 of a unit, so the rounding is certain unless the fraction
 * lies that close to one half: then false (the caller falls back to printf). */
static bool round_digits(double v, int n, int *e, uint64_t *r, int *k)
{
    for (int pass = 0; pass < 2; pass++) {
        *k = n - 1 - *e;
        if (*k < 0 || *k > 27)
            return false;
        long double x = (long double)v * pow10_long[*k];
        if (x < pow10_long[n - 1]) {
            (*e)--;
            continue;
        }
        if (x >= pow10_long[n]) {
            (*e)++;
            continue;
        }
        uint64_t i = (uint64_t)x; /* x < 10^17 < 2^63: truncation is floor */
        long double frac = x - (long double)i;
        if (frac > 0.49L && frac < 0.51L)
            return false;
        *r = i + (frac > 0.5L);
        if (*r == (uint64_t)pow10_long[n]) { /* 9.99..95 rounds up to 10.0..0 */
            *r /= 10;
            (*k)--;
        }
        return true;
    }
    return false;
}

/* Whether r / 10^k is exactly v: with r < 2^53 and k <= 22 one correctly rounded division
 * gives what strtod gives (Clinger). -1 when that cannot be decided this way. */
static int equals(uint64_t r, int k, double v)
{
    if (r >= (1ull << 53) || k < 0 || k > 22)
        return -1;
    return (double)r / pow10_exact[k] == v;
}

/* The shortest %.Ng for the values that need 16 or 17 digits (means, ratios: most of what
 * the export prints), without printf or strtod; -1 when the value is outside its range or
 * the slow search must decide (15 digits or fewer may do, or a tie is too close to call). */
static int format_general_fast(double v, char *buf)
{
    uint64_t r;
    int k, eq;
    if (!(v >= 1e-4 && v < 1e15))
        return -1;
    int e = (int)floor(log10(v));
    if (!round_digits(v, 15, &e, &r, &k) || equals(r, k, v) != 0)
        return -1;
    if (!round_digits(v, 16, &e, &r, &k) || (eq = equals(r, k, v)) < 0)
        return -1;
    if (!eq && !round_digits(v, 17, &e, &r, &k))
        return -1; /* 16 digits do not read back: the nearest 17 always do */
    int n = format_fixed(r, k, buf);
    while (k > 0 && buf[n - 1] == '0') /* %g drops trailing zeros */
        n--, k--;
    if (buf[n - 1] == '.')
        n--;
    buf[n] = '\0';
    return n;
}

/* The shortest %.Ng (1 <= N <= 17) that reads back to v, into buf of cap bytes; v is finite
 * and non-negative. Reading back is monotone in N, so search down from 15 (most values) or
 * up to 17. */
static int format_general(double v, char *buf, size_t cap)
{
    int fast = format_general_fast(v, buf);
    if (fast > 0)
        return fast;
    int n = snprintf(buf, cap, "%.15g", v);
    if (reads_back(buf, v)) {
        char tmp[ENGINE_DOUBLE_FMT_LEN];
        for (int prec = 14; prec >= 1; prec--) {
            int m = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (!reads_back(tmp, v))
                break;
            memcpy(buf, tmp, (size_t)m + 1);
            n = m;
        }
    } else {
        n = snprintf(buf, cap, "%.16g", v);
        if (!reads_back(buf, v))
            n = snprintf(buf, cap, "%.17g", v);
    }
    return n;
}

int engine_double_format(double v, char *buf)
{
    char *p = buf;
    if (isnan(v)) {
        memcpy(buf, "nan", 4);
        return 3;
    }
    if (signbit(v)) {
        *p++ = '-';
        v = -v;
    }
    if (isinf(v)) {
        memcpy(p, "inf", 4);
        return (int)(p - buf) + 3;
    }
    /* Below 2^50 the scaled value lies within a quarter of the integer a short decimal
     * names, so rounding finds that integer, and the first k that reads back is the
     * shortest plain decimal. */
    if (v < 0x1p50) {
        for (int k = 0; k <= 9; k++) {
            double s = v * pow10_exact[k];
            if (s >= 0x1p50)
                break;
            double r = nearbyint(s);
            if (r / pow10_exact[k] == v) {
                int n = format_fixed((uint64_t)r, k, p);
                p[n] = '\0';
                return (int)(p - buf) + n;
            }
        }
    }
    return (int)(p - buf) + format_general(v, p, ENGINE_DOUBLE_FMT_LEN - (size_t)(p - buf));
}
