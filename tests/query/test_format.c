/* test_format.c: the reply writer's number formatting, which every series reply goes through
 * thousands of times: doubles must read back exactly (the short path for values with up to
 * three decimals and the printf path alike), and integer headers must match printf's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "tap.h"

static int roundtrips(double v)
{
    char buf[40];
    int n = resp_format_double(v, buf, sizeof buf);
    return n > 0 && (size_t)n == strlen(buf) && strtod(buf, NULL) == v;
}


/* The formatting the writer promises, written the plain way: the decimal m / 1000 when it
 * reads back as v (m = v * 1000 rounded to even, |m| < 10^15), trailing zeros dropped;
 * otherwise the shortest of %.15g to %.17g that reads back. */
static void reference_double(double v, char *buf, size_t len)
{
    double m = nearbyint(v * 1000);
    if (isnan(v) || isinf(v)) {
        snprintf(buf, len, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    } else if (fabs(m) < 1e15 && m / 1000 == v) {
        long long i = (long long)m;
        unsigned long long a = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
        int n = snprintf(buf, len, "%s%llu.%03u", i < 0 ? "-" : "", a / 1000,
                         (unsigned)(a % 1000));
        while (buf[n - 1] == '0')
            buf[--n] = 0;
        if (buf[n - 1] == '.')
            buf[--n] = 0;
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static uint64_t rnd64(void)
{
    return (uint64_t)rand() << 42 ^ (uint64_t)rand() << 21 ^ (uint64_t)rand();
}

int main(void)
{
    char buf[40];
    const struct { double v; const char *s; } exact[] = {
        {0, "0"}, {1, "1"}, {-1, "-1"}, {0.5, "0.5"}, {0.05, "0.05"}, {0.005, "0.005"},
        {12.345, "12.345"}, {-12.34, "-12.34"}, {100, "100"}, {-0.001, "-0.001"},
        {123456789.125, "123456789.125"}, {1e14, "100000000000000"}, {50.1, "50.1"},
        {1.5e-4, "0.00015"}, {1e300, "1e+300"}, {0.1 + 0.2,
        "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        resp_format_double(exact[i].v, buf, sizeof buf);
        CHECK_EQ_STR(buf, exact[i].s);
    }
    int ok = 1;
    srand(7);
    for (int i = 0; i < 200000; i++) {
        double v = (double)(rand() - RAND_MAX / 2) / (i % 4 == 0 ? 1 : i % 4 == 1 ? 10 : 1000);
        if (i % 7 == 0)
            v = ldexp((double)rand(), rand() % 200 - 100);
        if (!roundtrips(v) || !roundtrips(-v)) {
            ok = 0;
            printf("# %.17g does not read back\n", v);
            break;
        }
    }
    CHECK(ok);
    CHECK(roundtrips(1e15) && roundtrips(999999999999.999) && roundtrips(-0.0));
    /* Integer headers as printf writes them, the extremes included. */
    const long long ints[] = {0, 7, -7, 10, -10, 1234567890123LL, INT64_MAX, INT64_MIN,
                              99999999, 100000000, -100000000, 10000000000000000LL,
                              1672502400000LL, 9999999999999999LL};
    int iok = 1;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        resp_writer w;
        char want[32];
        resp_writer_init(&w, 2);
        resp_write_int(&w, ints[i]);
        resp_write_array(&w, 3);
        int n = snprintf(want, sizeof want, ":%lld\r\n*3\r\n", ints[i]);
        if (w.len != (size_t)n || memcmp(w.data, want, (size_t)n) != 0)
            iok = 0;
        resp_writer_free(&w);
    }
    CHECK(iok);
    /* Byte for byte as the plain way writes them: readings with up to three decimals of
     * every magnitude, both signs, values near the edges of the short path, and any bits. */
    int dok = 1;
    srand(11);
    for (int i = 0; i < 300000 && dok; i++) {
        double v;
        switch (i % 5) {
        case 0: v = (double)(int64_t)(rnd64() % 2000000000000000ULL) / 1000 - 1e12; break;
        case 1: v = (double)(rand() % 100000) / pow(10, rand() % 4); break;
        case 2: v = (1e12 - (double)(rand() % 1000) / 1000) * (rand() % 2 ? 1 : -1); break;
        case 3: v = nextafter((double)(rand() % 1000) / 1000, rand() % 2 ? 1e300 : -1e300);
                break;
        default: {
            uint64_t b = rnd64() ^ rnd64() << 1;
            memcpy(&v, &b, sizeof v);
        }
        }
        char want[48];
        reference_double(v, want, sizeof want);
        resp_format_double(v, buf, sizeof buf);
        if (strcmp(buf, want) != 0) {
            dok = 0;
            printf("# %.17g: '%s', expected '%s'\n", v, buf, want);
        }
    }
    CHECK(dok);
    /* Integers of every length as printf writes them. */
    int fok = 1;
    for (int i = 0; i < 300000 && fok; i++) {
        int64_t x = (int64_t)(rnd64() >> (rand() % 64)) * (i % 2 ? -1 : 1);
        char want[32], got[32];
        int n = snprintf(want, sizeof want, "%lld", (long long)x);
        int m = resp_format_i64(got, x);
        got[m] = 0;
        if (n != m || strcmp(want, got) != 0) {
            fok = 0;
            printf("# %s written as %s\n", want, got);
        }
    }
    CHECK(fok);
    /* Seconds written as milliseconds, the ten-digit years and beyond. */
    int mok = 1;
    for (int i = 0; i < 300000 && mok; i++) {
        int64_t x = (int64_t)(rnd64() >> (rand() % 64)) % 9000000000000000LL;
        if (i % 2)
            x = 999999990 + (int64_t)(rnd64() % 9000000020LL);
        x *= i % 3 ? 1 : -1;
        char want[32], got[32];
        int n = snprintf(want, sizeof want, "%lld", (long long)x * 1000);
        int m = resp_format_ms(got, x);
        got[m] = 0;
        if (n != m || strcmp(want, got) != 0) {
            mok = 0;
            printf("# %s written as %s\n", want, got);
        }
    }
    CHECK(mok);
    /* Samples: the timestamp and the value in one go, in both protocols. */
    resp_writer w2, w3;
    resp_writer_init(&w2, 2);
    resp_writer_init(&w3, 3);
    resp_write_sample(&w2, 1672502400000LL, 28.134);
    resp_write_sample(&w3, -1000, 0.5);
    CHECK(w2.len == 29 && memcmp(w2.data, "*2\r\n:1672502400000\r\n+28.134\r\n", 29) == 0);
    CHECK(w3.len == 18 && memcmp(w3.data, "*2\r\n:-1000\r\n,0.5\r\n", 18) == 0);
    resp_writer_free(&w2);
    resp_writer_free(&w3);
    return tap_done();
}
