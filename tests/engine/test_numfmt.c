/* test_numfmt.c: engine_double_parse agrees with strtod bit for bit, and
 * engine_double_format prints the shortest text that reads back exactly. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "tap.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* engine_double_parse(s) equals strtod(s) and accepts s. */
static bool parses_like_strtod(const char *s)
{
    double a, b = strtod(s, NULL);
    return engine_double_parse(s, strlen(s), &a) == 0 && same_bits(a, b);
}

static bool rejects(const char *s)
{
    double a;
    return engine_double_parse(s, strlen(s), &a) == -EINVAL;
}

static void test_parse_known(void)
{
    const char *ok[] = {
        "0", "-0", "+0", "4", "-1.2", "23.45", "1015.66666666667", "4.66666666666667",
        "0.1", "0.30000000000000004", "9007199254740993", "9007199254740992",
        "123456789012345678901234567890", "1e10", "1E-5", "2.5e+3", "-7.25e-310",
        "4.9e-324", "1.7976931348623157e308", ".5", "5.", "000123.4500", "0.0000000001",
        "1e22", "1e23", "123456789012345e-22", "0.000000000000000000000000000001",
        "3.141592653589793238462643383279", "1e-400",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bool good = parses_like_strtod(ok[i]);
        CHECK(good);
        if (!good)
            printf("#   text %s\n", ok[i]);
    }
    const char *bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", " 1", "1 ", "0x10",
                         "nan", "inf", "1,5", "--1", "1e5x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(rejects(bad[i]));
    double v;
    CHECK_EQ_INT(engine_double_parse("1e400", 5, &v), -ERANGE);
    CHECK_EQ_INT(engine_double_parse("-2e308", 6, &v), -ERANGE);
    /* Exactly len bytes are read, whatever follows. */
    CHECK(engine_double_parse("12.5,N", 4, &v) == 0 && v == 12.5);
}

/* Random decimals in the shapes sensors send (1-17 digits, 0-8 decimals, exponents). */
static void test_parse_random(void)
{
    int bad = 0;
    char s[64];
    for (int i = 0; i < 60000; i++) {
        uint64_t r = next_rand();
        int digits = 1 + (int)(r % 17), dec = (int)((r >> 8) % 9);
        uint64_t m = next_rand() % 100000000000000000ull;
        int n = snprintf(s, sizeof s, "%s%.*llu", (r >> 20) & 1 ? "-" : "", digits,
                         (unsigned long long)(m % (uint64_t)pow(10, digits)));
        if (dec > 0 && dec < n - 1) { /* insert a decimal point */
            memmove(s + n - dec + 1, s + n - dec, (size_t)dec + 1);
            s[n - dec] = '.';
        }
        if ((r >> 24) % 8 == 0)
            snprintf(s + strlen(s), 16, "e%d", (int)((r >> 32) % 60) - 30);
        if (!parses_like_strtod(s) && bad++ < 5)
            printf("# mismatch on %s\n", s);
    }
    CHECK_EQ_INT(bad, 0);
}

static void check_format(double v, const char *want)
{
    char buf[ENGINE_DOUBLE_FMT_LEN];
    int n = engine_double_format(v, buf);
    CHECK_EQ_STR(buf, want);
    CHECK_EQ_INT(n, (long long)strlen(want));
}

static void test_format_known(void)
{
    check_format(0.0, "0");
    check_format(-0.0, "-0");
    check_format(4, "4");
    check_format(-1.2, "-1.2");
    check_format(23.45, "23.45");
    check_format(0.1, "0.1");
    check_format(0.1 + 0.2, "0.30000000000000004");
    check_format(1015.66666666667, "1015.66666666667");
    check_format(4500, "4500");
    check_format(0.001, "0.001");
    check_format(-0.000000001, "-0.000000001");
    check_format(1e-10, "1e-10");
    check_format(1e20, "1e+20");
    check_format(123456789012345.0, "123456789012345");
    check_format(1.0 / 3, "0.3333333333333333");
    check_format(5e-324, "5e-324");
    check_format(1.7976931348623157e308, "1.7976931348623157e+308");
    check_format(NAN, "nan");
    check_format(INFINITY, "inf");
    check_format(-INFINITY, "-inf");
}

/* The number of significant digits of a formatted number. */
static int sig_digits(const char *s)
{
    int n = 0, lead = 1, zeros = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (lead && *s == '0')
            continue;
        lead = 0;
        if (*s == '0') {
            zeros++;
        } else {
            n += zeros + 1;
            zeros = 0;
        }
    }
    return n ? n : 1;
}

/* The fewest significant digits of any %.Ng that reads back. */
static int shortest_g(double v)
{
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (same_bits(strtod(buf, NULL), v))
            return p;
    }
    return 17;
}

static void test_format_round_trip(void)
{
    int bad_trip = 0, not_short = 0;
    char buf[ENGINE_DOUBLE_FMT_LEN];
    for (int i = 0; i < 60000; i++) {
        double v;
        if (i % 2) { /* any bit pattern */
            uint64_t bits = next_rand();
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
        } else { /* a short decimal */
            v = (double)(int64_t)(next_rand() % 2000000000 - 1000000000) /
                pow(10, (double)(next_rand() % 7));
        }
        engine_double_format(v, buf);
        double back;
        if (engine_double_parse(buf, strlen(buf), &back) != 0 || !same_bits(back, v) ||
            !same_bits(strtod(buf, NULL), v)) {
            if (bad_trip++ < 5)
                printf("# %.17g printed as %s\n", v, buf);
        }
        if (sig_digits(buf) > shortest_g(v) && not_short++ < 5)
            printf("# %.17g printed as %s, %%g needs %d digits\n", v, buf, shortest_g(v));
    }
    CHECK_EQ_INT(bad_trip, 0);
    CHECK_EQ_INT(not_short, 0);
}

/* Values that need 16 or 17 digits (means of readings, ratios) take a fast path: it must
 * print exactly what printf's shortest %.Ng prints. */
static void test_format_long_values(void)
{
    int differ = 0, compared = 0;
    char buf[ENGINE_DOUBLE_FMT_LEN], want[40];
    for (int i = 0; i < 300000; i++) {
        double v;
        switch (i % 4) {
        case 0: /* a mean of two-decimal readings */
            v = (double)(int64_t)(next_rand() % 10000000) / 100 / (double)(1 + next_rand() % 48);
            break;
        case 1: /* a ratio */
            v = (double)(next_rand() % 100000) / (double)(1 + next_rand() % 99991) - 0.5;
            break;
        case 2: /* any magnitude the fast path covers, and beyond */
            v = ldexp((double)(next_rand() >> 11) / 9007199254740992.0, (int)(next_rand() % 70) - 20);
            break;
        default: /* near powers of ten and halfway digits */
            v = pow(10, (double)(int)(next_rand() % 20) - 5) * (1 - ldexp(1, -(int)(next_rand() % 53)));
            break;
        }
        engine_double_format(v, buf);
        double a = fabs(v);
        int n = 0;
        for (int prec = 1; prec <= 17; prec++) {
            n = snprintf(want, sizeof want, "%s%.*g", signbit(v) ? "-" : "", prec, a);
            if (strtod(want, NULL) == v)
                break;
        }
        /* engine_double_format prefers a plain decimal of <= 9 decimals when one reads
         * back; compare only where %g is what it prints. */
        if (strchr(want, 'e') || (strchr(want, '.') && strlen(strchr(want, '.')) - 1 <= 9))
            continue;
        compared++;
        if (strcmp(buf, want) != 0 && differ++ < 5)
            printf("# %.17g printed as %s, %%g: %s\n", v, buf, want);
        (void)n;
    }
    CHECK_EQ_INT(differ, 0);
    CHECK(compared > 150000);
}

int main(void)
{
    test_format_long_values();
    test_parse_known();
    test_parse_random();
    test_format_known();
    test_format_round_trip();
    return tap_done();
}
