/* test_resp.c: the RESP request parser (whole, split and pipelined input, inline commands,
 * limits, malformed input) and the reply writer in RESP2 and RESP3. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "tap.h"

static int arg_is(const resp_arg *a, const char *s)
{
    return a->len == strlen(s) && memcmp(a->ptr, s, a->len) == 0;
}

/* Parses all of s at once; returns the parse result. */
static int parse_all(resp_parser *p, const char *s, size_t len, size_t *used)
{
    return resp_parse(p, s, len, used, NULL);
}

static void test_array(void)
{
    resp_parser p;
    resp_parser_init(&p, NULL);
    const char *s = "*2\r\n$4\r\nPING\r\n$3\r\nf\0o\r\n";
    size_t len = 23, used = 0;
    CHECK_EQ_INT(parse_all(&p, s, len, &used), RESP_DONE);
    CHECK_EQ_INT(used, len);
    CHECK_EQ_INT(p.argc, 2);
    CHECK(arg_is(&p.argv[0], "PING"));
    CHECK(p.argv[1].len == 3 && memcmp(p.argv[1].ptr, "f\0o", 3) == 0);
    CHECK(p.argv[0].ptr == s + 8); /* zero-copy: points into the input */
    CHECK(!p.is_inline);
    resp_parser_free(&p);
}

/* Feeding one byte more each time must give MORE until the last byte, then the request. */
static void test_split(void)
{
    resp_parser p;
    resp_parser_init(&p, NULL);
    const char *s = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n";
    size_t len = strlen(s), used = 0;
    int more = 0;
    for (size_t n = 1; n < len; n++)
        more += resp_parse(&p, s, n, &used, NULL) == RESP_MORE && used == 0;
    CHECK_EQ_INT(more, (long long)len - 1);
    /* The caller may move the bytes between calls. */
    char *copy = strdup(s);
    CHECK_EQ_INT(resp_parse(&p, copy, len, &used, NULL), RESP_DONE);
    CHECK_EQ_INT(used, len);
    CHECK_EQ_INT(p.argc, 3);
    CHECK(arg_is(&p.argv[2], "0123456789"));
    CHECK(p.argv[2].ptr == copy + len - 12);
    free(copy);
    resp_parser_free(&p);
}

static void test_need_hint(void)
{
    resp_parser p;
    resp_parser_init(&p, NULL);
    size_t used, need = 0;
    const char *s = "*1\r\n$1000\r\nabc";
    CHECK_EQ_INT(resp_parse(&p, s, strlen(s), &used, &need), RESP_MORE);
    CHECK_EQ_INT(need, 11 + 1000 + 2);
    resp_parser_free(&p);
}

static void test_pipeline(void)
{
    resp_parser p;
    resp_parser_init(&p, NULL);
    const char *s = "*1\r\n$4\r\nPING\r\n\r\n*0\r\nECHO hi\r\n*1\r\n$4\r\nPI";
    size_t len = strlen(s), off = 0, used;
    CHECK_EQ_INT(resp_parse(&p, s, len, &used, NULL), RESP_DONE);
    CHECK(arg_is(&p.argv[0], "PING"));
    off += used;
    CHECK_EQ_INT(resp_parse(&p, s + off, len - off, &used, NULL), RESP_DONE);
    CHECK(p.is_inline);
    CHECK_EQ_INT(p.argc, 2);
    CHECK(arg_is(&p.argv[0], "ECHO") && arg_is(&p.argv[1], "hi"));
    off += used;
    CHECK_EQ_INT(resp_parse(&p, s + off, len - off, &used, NULL), RESP_MORE);
    CHECK_EQ_INT(used, 0);
    resp_parser_free(&p);
}

static void test_inline(void)
{
    resp_parser p;
    resp_parser_init(&p, NULL);
    size_t used;
    const char *s = "  set  \"a b\\x41\\n\" 'it\\'s'  x\"y z\"\r\n";
    CHECK_EQ_INT(resp_parse(&p, s, strlen(s), &used, NULL), RESP_DONE);
    CHECK_EQ_INT(used, strlen(s));
    CHECK_EQ_INT(p.argc, 4);
    CHECK(arg_is(&p.argv[0], "set"));
    CHECK(arg_is(&p.argv[1], "a bA\n"));
    CHECK(arg_is(&p.argv[2], "it's"));
    CHECK(arg_is(&p.argv[3], "xy z"));

    /* Blank lines are skipped and reported as consumed. */
    CHECK_EQ_INT(resp_parse(&p, "\r\n\n  \r\n", 7, &used, NULL), RESP_MORE);
    CHECK_EQ_INT(used, 7);

    resp_parser_reset(&p);
    CHECK_EQ_INT(resp_parse(&p, "echo \"abc\r\n", 11, &used, NULL), RESP_EPROTO);
    CHECK_EQ_STR(p.err, "Protocol error: unbalanced quotes in request");
    resp_parser_reset(&p);
    CHECK_EQ_INT(resp_parse(&p, "echo \"abc\"d\n", 12, &used, NULL), RESP_EPROTO);
    resp_parser_free(&p);
}

static void test_limits(void)
{
    resp_limits lim = {.max_args = 4, .max_bulk_len = 100, .max_inline_len = 50,
                       .max_request_len = 150};
    resp_parser p;
    size_t used;
    resp_parser_init(&p, &lim);

    const char *s = "*5\r\n";
    CHECK_EQ_INT(resp_parse(&p, s, strlen(s), &used, NULL), RESP_EPROTO);
    CHECK(strstr(p.err, "5 arguments exceed the limit of 4") != NULL);

    /* A huge bulk is refused from its header alone. */
    resp_parser_reset(&p);
    s = "*1\r\n$999999999999\r\n";
    CHECK_EQ_INT(resp_parse(&p, s, strlen(s), &used, NULL), RESP_EPROTO);
    CHECK(strstr(p.err, "999999999999 bytes exceeds the limit of 100") != NULL);

    resp_parser_reset(&p);
    s = "*3\r\n$90\r\n";
    char big[300];
    int n = snprintf(big, sizeof big, "%s%090d\r\n$90\r\n", s, 0);
    CHECK_EQ_INT(resp_parse(&p, big, (size_t)n, &used, NULL), RESP_EPROTO);
    CHECK(strstr(p.err, "request exceeds the limit of 150 bytes") != NULL);

    resp_parser_reset(&p);
    memset(big, 'a', 60);
    CHECK_EQ_INT(resp_parse(&p, big, 40, &used, NULL), RESP_MORE);
    CHECK_EQ_INT(resp_parse(&p, big, 60, &used, NULL), RESP_EPROTO);
    CHECK_EQ_STR(p.err, "Protocol error: too big inline request");

    resp_parser_reset(&p);
    s = "a b c d e\n";
    CHECK_EQ_INT(resp_parse(&p, s, strlen(s), &used, NULL), RESP_EPROTO);
    resp_parser_free(&p);
}

static void test_malformed(void)
{
    static const struct { const char *in, *err; } cases[] = {
        {"*x\r\n", "Protocol error: invalid multibulk length"},
        {"*1\r\n+OK\r\n", "Protocol error: expected '$', got '+'"},
        {"*1\r\n$-2\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$2x\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$2\r\nabcd", "Protocol error: expected CRLF after a bulk string of 2 bytes"},
        {"*1\rx", "Protocol error: invalid multibulk length"},
        {"*123456789012345678901234567890123\r\n", "Protocol error: invalid multibulk length"},
        {"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp_parser p;
        size_t used;
        resp_parser_init(&p, NULL);
        CHECK_EQ_INT(resp_parse(&p, cases[i].in, strlen(cases[i].in), &used, NULL),
                     RESP_EPROTO);
        CHECK_EQ_STR(p.err, cases[i].err);
        resp_parser_free(&p);
    }
}

static void test_args(void)
{
    int64_t v;
    double d;
    resp_arg a = {"-9223372036854775808", 20};
    CHECK(resp_arg_int64(&a, &v) == 0 && v == INT64_MIN);
    a = (resp_arg){"9223372036854775808", 19};
    CHECK_EQ_INT(resp_arg_int64(&a, &v), -EINVAL);
    a = (resp_arg){"12x", 3};
    CHECK_EQ_INT(resp_arg_int64(&a, &v), -EINVAL);
    a = (resp_arg){"+7", 2};
    CHECK(resp_arg_int64(&a, &v) == 0 && v == 7);
    a = (resp_arg){"1.5e1", 5};
    CHECK(resp_arg_double(&a, &d) == 0 && d == 15.0);
    a = (resp_arg){"-inf", 4};
    CHECK(resp_arg_double(&a, &d) == 0 && isinf(d) && d < 0);
    a = (resp_arg){"nan", 3};
    CHECK_EQ_INT(resp_arg_double(&a, &d), -EINVAL);
    a = (resp_arg){"1.5 ", 4};
    CHECK_EQ_INT(resp_arg_double(&a, &d), -EINVAL);
    a = (resp_arg){"PiNg", 4};
    CHECK(resp_arg_ieq(&a, "ping") && !resp_arg_ieq(&a, "pin"));
}

/* Writes the same reply sequence in one protocol version and returns it as a string. */
static char *write_all(int proto)
{
    resp_writer w;
    resp_writer_init(&w, proto);
    resp_write_simple(&w, "OK");
    resp_write_error(&w, "Protocol error: x\r\ny");
    resp_write_error(&w, "NOAUTH needed");
    resp_write_int(&w, -42);
    resp_write_bulk(&w, "ab", 2);
    resp_write_null(&w);
    resp_write_null_array(&w);
    resp_write_map(&w, 1);
    resp_write_cstr(&w, "k");
    resp_write_double(&w, 0.1);
    resp_write_set(&w, 1);
    resp_write_double(&w, -INFINITY);
    resp_write_push(&w, 0);
    resp_write_bool(&w, true);
    resp_write_verbatim(&w, "txt", "hi", 2);
    resp_write_array(&w, 0);
    CHECK_EQ_INT(w.errors, 2);
    resp_write_raw(&w, "", 1);
    char *s = w.data;
    return s;
}

static void test_writer(void)
{
    char *s2 = write_all(2), *s3 = write_all(3);
    CHECK_EQ_STR(s2, "+OK\r\n-ERR Protocol error: x  y\r\n-NOAUTH needed\r\n:-42\r\n$2\r\nab\r\n"
                     "$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n$3\r\n0.1\r\n*1\r\n$4\r\n-inf\r\n*0\r\n"
                     ":1\r\n$2\r\nhi\r\n*0\r\n");
    CHECK_EQ_STR(s3, "+OK\r\n-ERR Protocol error: x  y\r\n-NOAUTH needed\r\n:-42\r\n$2\r\nab\r\n"
                     "_\r\n_\r\n%1\r\n$1\r\nk\r\n,0.1\r\n~1\r\n,-inf\r\n>0\r\n#t\r\n"
                     "=6\r\ntxt:hi\r\n*0\r\n");
    free(s2);
    free(s3);

    char buf[40];
    resp_format_double(1.0, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1");
    resp_format_double(23.45, buf, sizeof buf);
    CHECK_EQ_STR(buf, "23.45");
    resp_format_double(1.0 / 3, buf, sizeof buf);
    CHECK(strtod(buf, NULL) == 1.0 / 3);
    resp_format_double(NAN, buf, sizeof buf);
    CHECK_EQ_STR(buf, "nan");

    /* A large bulk grows the buffer. */
    resp_writer w;
    resp_writer_init(&w, 2);
    char *big = malloc(100000);
    memset(big, 'z', 100000);
    resp_write_bulk(&w, big, 100000);
    CHECK_EQ_INT(w.len, 9 + 100000 + 2);
    CHECK(memcmp(w.data, "$100000\r\nzz", 11) == 0);
    free(big);
    resp_writer_free(&w);
}

int main(void)
{
    test_array();
    test_split();
    test_need_hint();
    test_pipeline();
    test_inline();
    test_limits();
    test_malformed();
    test_args();
    test_writer();
    return tap_done();
}
