/* test_format.c: the reply writer's number formatting, which every series reply goes through
 * thousands of times: doubles must read back exactly (the short path for values with up to
 * three decimals and the printf path alike), and integer headers must match printf's. */
#include <math.h>
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
