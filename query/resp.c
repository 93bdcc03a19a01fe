/* resp.c: the RESP request parser and reply writer (see resp.h for the contract).
 *
 * The parser is a small state machine over one request at a time. Offsets, not pointers, are
 * kept between calls, so the caller may move or grow its buffer while a request is partial;
 * pointers are made only when the request is complete. Every length a client announces is
 * checked against the limits before any byte of it is awaited, which is what lets the server
 * refuse a request too large without ever buffering it.
 */
#include "resp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START = 0,   /* at the first byte of a request */
    ST_ARRAY_HDR,   /* at "*<count>\r\n" */
    ST_BULK_HDR,    /* at "$<len>\r\n" */
    ST_BULK_DATA,   /* at the bytes of a bulk string and their CRLF */
    ST_INLINE,      /* inside an inline command line */
};

enum { SKIP = 2 };        /* internal: an empty request was consumed */
#define MAX_HDR_LEN 32    /* "*" or "$", an int64 and CR: anything longer is bad */

void resp_limits_default(resp_limits *lim)
{
    lim->max_args = 65536;
    lim->max_bulk_len = 4u << 20;
    lim->max_inline_len = 64u << 10;
    lim->max_request_len = 16u << 20;
}

void resp_parser_init(resp_parser *p, const resp_limits *lim)
{
    memset(p, 0, sizeof *p);
    if (lim)
        p->lim = *lim;
    else
        resp_limits_default(&p->lim);
    p->bulk_len = -1;
}

void resp_parser_free(resp_parser *p)
{
    free(p->slots);
    free(p->argv_buf);
    free(p->inline_buf);
    p->slots = NULL;
    p->argv_buf = NULL;
    p->inline_buf = NULL;
    p->slots_cap = p->inline_cap = 0;
}

void resp_parser_reset(resp_parser *p)
{
    p->state = ST_START;
    p->pos = 0;
    p->elems_left = 0;
    p->bulk_len = -1;
    p->argc = 0;
}

static int fail(resp_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return RESP_EPROTO;
}

/* Adds an argument slot, growing the arrays geometrically: memory follows the bytes that
 * actually arrived, never the count a header announced. */
static int push_slot(resp_parser *p, size_t off, size_t len)
{
    if (p->argc == p->slots_cap) {
        size_t cap = p->slots_cap ? p->slots_cap * 2 : 8;
        resp_req_slot *s = realloc(p->slots, cap * sizeof *s);
        if (!s)
            return RESP_ENOMEM;
        p->slots = s;
        resp_arg *a = realloc(p->argv_buf, cap * sizeof *a);
        if (!a)
            return RESP_ENOMEM;
        p->argv_buf = a;
        p->slots_cap = cap;
    }
    p->slots[p->argc].off = off;
    p->slots[p->argc].len = len;
    p->argc++;
    return 0;
}

static void finish(resp_parser *p, const char *base)
{
    for (size_t i = 0; i < p->argc; i++) {
        p->argv_buf[i].ptr = base + p->slots[i].off;
        p->argv_buf[i].len = p->slots[i].len;
    }
    p->argv = p->argv_buf;
}

/* Strict decimal int64 of s[0..len): optional '-', digits, no overflow. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len == 0)
        return false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Reads the header line at b[pos]: a type byte, an integer and CRLF. Returns 1 with *v and
 * *end (offset after the LF), 0 when incomplete, RESP_EPROTO when malformed. */
static int read_header(resp_parser *p, const char *b, size_t n, const char *what, int64_t *v,
                       size_t *end)
{
    size_t avail = n - p->pos;
    size_t scan = avail < MAX_HDR_LEN ? avail : MAX_HDR_LEN;
    const char *cr = memchr(b + p->pos, '\r', scan);
    if (!cr) {
        if (avail >= MAX_HDR_LEN)
            return fail(p, "Protocol error: invalid %s", what);
        return 0;
    }
    size_t at = (size_t)(cr - b);
    if (at + 1 >= n)
        return 0;
    if (b[at + 1] != '\n' || !parse_i64(b + p->pos + 1, at - p->pos - 1, v))
        return fail(p, "Protocol error: invalid %s", what);
    *end = at + 2;
    return 1;
}

static int parse_array(resp_parser *p, const char *b, size_t n, size_t *used, size_t *need)
{
    for (;;) {
        int64_t v;
        size_t end;
        int rc;
        switch (p->state) {
        case ST_ARRAY_HDR:
            rc = read_header(p, b, n, "multibulk length", &v, &end);
            if (rc <= 0)
                return rc;
            if (v <= 0) {               /* "*0" and "*-1" are empty requests: skipped */
                *used = end;
                return SKIP;
            }
            if ((uint64_t)v > p->lim.max_args)
                return fail(p, "Protocol error: %lld arguments exceed the limit of %zu",
                            (long long)v, p->lim.max_args);
            p->elems_left = v;
            p->pos = end;
            p->state = ST_BULK_HDR;
            break;
        case ST_BULK_HDR:
            if (p->pos >= n)
                return 0;
            if (b[p->pos] != '$')
                return fail(p, "Protocol error: expected '$', got '%c'",
                            b[p->pos] >= 32 && b[p->pos] < 127 ? b[p->pos] : '?');
            rc = read_header(p, b, n, "bulk length", &v, &end);
            if (rc <= 0)
                return rc;
            if (v < 0)
                return fail(p, "Protocol error: invalid bulk length");
            if ((uint64_t)v > p->lim.max_bulk_len)
                return fail(p, "Protocol error: a bulk string of %lld bytes exceeds the "
                            "limit of %zu", (long long)v, p->lim.max_bulk_len);
            if (end + (uint64_t)v + 2 > p->lim.max_request_len)
                return fail(p, "Protocol error: the request exceeds the limit of %zu bytes",
                            p->lim.max_request_len);
            p->bulk_len = v;
            p->pos = end;
            p->state = ST_BULK_DATA;
            break;
        case ST_BULK_DATA: {
            size_t blen = (size_t)p->bulk_len;
            if (n - p->pos < blen + 2) {
                *need = p->pos + blen + 2;
                return 0;
            }
            if (b[p->pos + blen] != '\r' || b[p->pos + blen + 1] != '\n')
                return fail(p, "Protocol error: expected CRLF after a bulk string of %zu "
                            "bytes", blen);
            if (push_slot(p, p->pos, blen) != 0)
                return RESP_ENOMEM;
            p->pos += blen + 2;
            p->bulk_len = -1;
            if (--p->elems_left == 0) {
                *used = p->pos;
                return RESP_DONE;
            }
            p->state = ST_BULK_HDR;
            break;
        }
        default:
            return fail(p, "Protocol error: parser state");
        }
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads one word of an inline line at s[*i] (not at a space) into out[*o]: bare bytes,
 * "double quoted" with C escapes (\n \r \t \b \a \xHH), or 'single quoted' with \' only,
 * as redis-cli and Redis split them. Returns 0, or RESP_EPROTO on an unbalanced quote. */
static int split_word(resp_parser *p, const char *s, size_t len, size_t *i, char *out,
                      size_t *o)
{
    char quote = 0;
    for (;;) {
        if (*i == len) {
            if (quote)
                return fail(p, "Protocol error: unbalanced quotes in request");
            return 0;
        }
        char c = s[*i];
        if (!quote) {
            if (is_space(c))
                return 0;
            if (c == '"' || c == '\'')
                quote = c;
            else
                out[(*o)++] = c;
            (*i)++;
        } else if (c == quote) {
            if (*i + 1 < len && !is_space(s[*i + 1]))
                return fail(p, "Protocol error: unbalanced quotes in request");
            (*i)++;
            return 0;
        } else if (c == '\\' && quote == '"' && *i + 3 < len && s[*i + 1] == 'x' &&
                   hex_val(s[*i + 2]) >= 0 && hex_val(s[*i + 3]) >= 0) {
            out[(*o)++] = (char)(hex_val(s[*i + 2]) * 16 + hex_val(s[*i + 3]));
            *i += 4;
        } else if (c == '\\' && *i + 1 < len && (quote == '"' || s[*i + 1] == '\'')) {
            char e = s[*i + 1];
            out[(*o)++] = quote == '\'' ? e : e == 'n' ? '\n' : e == 'r' ? '\r' :
                          e == 't' ? '\t' : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
            *i += 2;
        } else {
            out[(*o)++] = c;
            (*i)++;
        }
    }
}

static int parse_inline(resp_parser *p, const char *b, size_t n, size_t *used, size_t *need)
{
    const char *nl = memchr(b + p->pos, '\n', n - p->pos);
    if (!nl) {
        if (n > p->lim.max_inline_len)
            return fail(p, "Protocol error: too big inline request");
        p->pos = n;
        *need = n + 1;
        return 0;
    }
    size_t len = (size_t)(nl - b);
    if (len > p->lim.max_inline_len)
        return fail(p, "Protocol error: too big inline request");
    if (p->inline_cap < len + 1) {
        char *nb = realloc(p->inline_buf, len + 1);
        if (!nb)
            return RESP_ENOMEM;
        p->inline_buf = nb;
        p->inline_cap = len + 1;
    }
    size_t i = 0, o = 0;
    p->argc = 0;
    for (;;) {
        while (i < len && is_space(b[i]))
            i++;
        if (i == len)
            break;
        size_t start = o;
        int rc = split_word(p, b, len, &i, p->inline_buf, &o);
        if (rc != 0)
            return rc;
        if (p->argc == p->lim.max_args)
            return fail(p, "Protocol error: more than %zu arguments", p->lim.max_args);
        if (push_slot(p, start, o - start) != 0)
            return RESP_ENOMEM;
    }
    *used = len + 1;
    return p->argc ? RESP_DONE : SKIP;
}

int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *consumed, size_t *need)
{
    size_t base = 0, dummy;
    if (!need)
        need = &dummy;
    *consumed = 0;
    for (;;) {
        const char *b = buf + base;
        size_t n = len - base, used = 0;
        *need = 0;
        if (p->state == ST_START) {
            if (n == 0) {
                *consumed = base;
                return RESP_MORE;
            }
            p->state = b[0] == '*' ? ST_ARRAY_HDR : ST_INLINE;
            p->pos = 0;
            p->argc = 0;
            p->is_inline = p->state == ST_INLINE;
        }
        int rc = p->is_inline ? parse_inline(p, b, n, &used, need)
                              : parse_array(p, b, n, &used, need);
        if (rc == SKIP) {
            base += used;
            resp_parser_reset(p);
            continue;
        }
        if (rc == RESP_DONE) {
            finish(p, p->is_inline ? p->inline_buf : b);
            *consumed = base + used;
            p->state = ST_START;
            p->pos = 0;
            return RESP_DONE;
        }
        if (rc == RESP_MORE) {
            *consumed = base;
            if (*need < p->pos + 1)
                *need = p->pos + 1;
            return RESP_MORE;
        }
        if (rc == RESP_ENOMEM)
            snprintf(p->err, sizeof p->err, "Protocol error: out of memory");
        return rc;
    }
}

/* ---- Argument helpers -------------------------------------------------------------- */

bool resp_arg_ieq(const resp_arg *a, const char *word)
{
    size_t wl = strlen(word);
    if (a->len != wl)
        return false;
    for (size_t i = 0; i < wl; i++) {
        char x = a->ptr[i], y = word[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

int resp_arg_int64(const resp_arg *a, int64_t *out)
{
    if (a->len > 0 && a->ptr[0] == '+')
        return a->len > 1 && parse_i64(a->ptr + 1, a->len - 1, out) ? 0 : -EINVAL;
    return parse_i64(a->ptr, a->len, out) ? 0 : -EINVAL;
}

int resp_arg_double(const resp_arg *a, double *out)
{
    char tmp[64];
    if (a->len == 0 || a->len >= sizeof tmp || is_space(a->ptr[0]))
        return -EINVAL;
    memcpy(tmp, a->ptr, a->len);
    tmp[a->len] = 0;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + a->len || isnan(v) || (errno == ERANGE && isinf(v)))
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- Reply writer -------------------------------------------------------------------- */

void resp_writer_init(resp_writer *w, int proto)
{
    memset(w, 0, sizeof *w);
    w->proto = proto == 3 ? 3 : 2;
}

void resp_writer_free(resp_writer *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

static char *reserve(resp_writer *w, size_t extra)
{
    if (w->oom)
        return NULL;
    if (w->cap - w->len < extra) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < extra)
            cap *= 2;
        char *d = realloc(w->data, cap);
        if (!d) {
            w->oom = true;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    return w->data + w->len;
}

char *resp_writer_reserve(resp_writer *w, size_t n)
{
    return reserve(w, n);
}

void resp_writer_commit(resp_writer *w, size_t len)
{
    w->len += len;
}

void resp_write_raw(resp_writer *w, const void *p, size_t len)
{
    if (len == 0)
        return; /* p may be NULL (an empty writer's data) */
    char *d = reserve(w, len);
    if (!d)
        return;
    memcpy(d, p, len);
    w->len += len;
}

/* A type byte, an integer and CRLF: the header of most replies. */
static void write_hdr(resp_writer *w, char type, long long v)
{
    char *d = reserve(w, 24);
    if (!d)
        return;
    int n = 0;
    d[n++] = type;
    n += resp_format_i64(d + n, v);
    d[n++] = '\r';
    d[n++] = '\n';
    w->len += (size_t)n;
}

/* A line reply (simple string or error) with CR and LF replaced by spaces. */
static void write_line(resp_writer *w, char type, const char *prefix, const char *s)
{
    size_t pl = strlen(prefix), sl = strlen(s);
    char *d = reserve(w, 1 + pl + sl + 2);
    if (!d)
        return;
    d[0] = type;
    memcpy(d + 1, prefix, pl);
    for (size_t i = 0; i < sl; i++)
        d[1 + pl + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
    memcpy(d + 1 + pl + sl, "\r\n", 2);
    w->len += 1 + pl + sl + 2;
}

void resp_write_simple(resp_writer *w, const char *s)
{
    write_line(w, '+', "", s);
}

/* True when msg starts with an error code: a word of capitals and digits before a space. */
static bool has_code(const char *msg)
{
    size_t i = 0;
    while ((msg[i] >= 'A' && msg[i] <= 'Z') || (msg[i] >= '0' && msg[i] <= '9'))
        i++;
    return i >= 2 && (msg[i] == ' ' || msg[i] == 0);
}

void resp_write_error(resp_writer *w, const char *msg)
{
    write_line(w, '-', has_code(msg) ? "" : "ERR ", msg);
    w->errors++;
}

void resp_write_errorf(resp_writer *w, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_write_error(w, msg);
}

void resp_write_int(resp_writer *w, int64_t v)
{
    write_hdr(w, ':', (long long)v);
}

void resp_write_bulk(resp_writer *w, const void *p, size_t len)
{
    write_hdr(w, '$', (long long)len);
    char *d = reserve(w, len + 2);
    if (!d)
        return;
    if (len)
        memcpy(d, p, len);
    memcpy(d + len, "\r\n", 2);
    w->len += len + 2;
}

void resp_write_cstr(resp_writer *w, const char *s)
{
    resp_write_bulk(w, s, strlen(s));
}

void resp_write_bulkf(resp_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof small) {
        resp_write_bulk(w, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        w->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp_write_bulk(w, big, (size_t)n);
    free(big);
}

void resp_write_null(resp_writer *w)
{
    resp_write_raw(w, w->proto == 3 ? "_\r\n" : "$-1\r\n", w->proto == 3 ? 3 : 5);
}

void resp_write_null_array(resp_writer *w)
{
    resp_write_raw(w, w->proto == 3 ? "_\r\n" : "*-1\r\n", w->proto == 3 ? 3 : 5);
}

void resp_write_array(resp_writer *w, size_t n)
{
    write_hdr(w, '*', (long long)n);
}

void resp_write_map(resp_writer *w, size_t n)
{
    if (w->proto == 3)
        write_hdr(w, '%', (long long)n);
    else
        write_hdr(w, '*', (long long)(2 * n));
}

void resp_write_set(resp_writer *w, size_t n)
{
    write_hdr(w, w->proto == 3 ? '~' : '*', (long long)n);
}

void resp_write_push(resp_writer *w, size_t n)
{
    write_hdr(w, w->proto == 3 ? '>' : '*', (long long)n);
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};

/* The number of decimal digits of a: log2 scaled by 1233/4096 (~log10(2)), corrected by
 * one comparison. */
static inline int count_digits(uint64_t a)
{
    uint64_t b = a | 1; /* 0 has one digit, as 1 has */
    int t = (64 - __builtin_clzll(b)) * 1233 >> 12;
    return t - (b < pow10_u64[t]) + 1;
}

/* The 8 decimal digits of x (< 10^8, leading zeros included) as ASCII in a 64-bit word
 * whose lowest byte is the first digit (memory order on a little-endian machine). Each
 * step splits every lane into quotient and remainder by a multiply and a shift, all lanes
 * at once: x into two lanes of 4 digits, those into four of 2, those into eight of 1.
 * The multipliers round 2^40/10^4, 2^19/100 and 2^10/10 up; within the lanes' ranges
 * (< 10^8, < 10^4, < 100) the quotients come out exact. */
static inline uint64_t digits8(uint32_t x)
{
    uint64_t v = x;
    v += (((uint64_t)1 << 32) - 10000) * ((v * 109951163) >> 40);
    v += (((uint64_t)1 << 16) - 100) * (((v * 5243) >> 19) & 0x0000007f0000007fULL);
    v += (((uint64_t)1 << 8) - 10) * (((v * 103) >> 10) & 0x000f000f000f000fULL);
    /* The last digit is now the lowest byte: swap into reading order. */
    return __builtin_bswap64(v) | 0x3030303030303030ULL;
}

/* Stores the m last of the 8 digits of x at d (m 1 to 8); writes 8 bytes at d. */
static inline void put_tail(char *d, uint32_t x, int m)
{
    uint64_t w = digits8(x) >> (8 * (8 - m));
    memcpy(d, &w, 8);
}

/* Writes the digits of a (no NUL) at d; returns how many. Needs 20 bytes at d, whatever
 * the length: the digits go out eight at a time in whole words, the leading part first,
 * each store overwriting the spare bytes of the one before. Millisecond timestamps have 13
 * digits, and a chart has thousands of them. */
static inline int put_u64(char *d, uint64_t a)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    char tmp[24];
    int k = 24;
    do
        tmp[--k] = (char)('0' + a % 10);
    while ((a /= 10) > 0);
    memcpy(d, tmp + k, (size_t)(24 - k));
    return 24 - k;
#else
    int n = count_digits(a);
    if (n <= 8) {
        put_tail(d, (uint32_t)a, n);
    } else if (n <= 16) {
        uint64_t q = a / 100000000;
        put_tail(d, (uint32_t)q, n - 8);
        put_tail(d + n - 8, (uint32_t)(a - q * 100000000), 8);
    } else {
        uint64_t q = a / 100000000, qq = q / 100000000;
        put_tail(d, (uint32_t)qq, n - 16);
        put_tail(d + n - 16, (uint32_t)(q - qq * 100000000), 8);
        put_tail(d + n - 8, (uint32_t)(a - q * 100000000), 8);
    }
    return n;
#endif
}

int resp_format_double(double v, char *buf, size_t len)
{
    if (isnan(v))
        return snprintf(buf, len, "nan");
    if (isinf(v))
        return snprintf(buf, len, v > 0 ? "inf" : "-inf");
    /* Measured values carry a few decimals: when v is the double nearest to m / 1000 for an
     * integer m, the decimal m / 1000 reads back as v, and integer formatting is many times
     * faster than printf and strtod. Such an m is unique, so rounding v * 1000 to it half
     * away from zero finds it as well as any other rounding. */
    double x = v * 1000;
    if (fabs(x) < 1e15 && len >= 24) {
        long long i = (long long)(x < 0 ? x - 0.5 : x + 0.5);
        if (i > -1000000000000000LL && i < 1000000000000000LL && (double)i / 1000 == v) {
            unsigned long long a = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
            unsigned long long ip = a / 1000;
            unsigned frac = (unsigned)(a - ip * 1000), r = frac % 100;
            int n = 0;
            if (i < 0)
                buf[n++] = '-';
            if (ip < 100) { /* readings are mostly small: one table lookup */
                memcpy(buf + n, digit_pairs + ip * 2 + (ip < 10), 2);
                n += 1 + (ip >= 10);
            } else {
                n += put_u64(buf + n, ip);
            }
            /* ".ddd" in one store, then as many of its bytes as there are digits before
             * the trailing zeros. */
            char f[4] = {'.', (char)('0' + frac / 100), digit_pairs[2 * r],
                         digit_pairs[2 * r + 1]};
            memcpy(buf + n, f, 4);
            n += frac == 0 ? 0 : frac % 10 ? 4 : r ? 3 : 2;
            buf[n] = 0;
            return n;
        }
    }
    /* Otherwise the shortest of 15, 16 or 17 significant digits that reads back as v. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return n;
}

int resp_format_i64(char *d, int64_t v)
{
    if (v < 0) {
        d[0] = '-';
        return 1 + put_u64(d + 1, 0 - (uint64_t)v);
    }
    return put_u64(d, (uint64_t)v);
}

int resp_format_ms(char *d, int64_t s)
{
    /* Seconds of the years 2001 to 2286 have ten digits: two, eight, then "000". */
    if (s >= 1000000000 && s < 10000000000) {
        uint32_t q = (uint32_t)(s / 100000000);
        memcpy(d, digit_pairs + q * 2, 2);
        put_tail(d + 2, (uint32_t)(s - (int64_t)q * 100000000), 8);
        memcpy(d + 10, "000", 3);
        return 13;
    }
    return resp_format_i64(d, s * 1000);
}

void resp_write_sample(resp_writer *w, int64_t ts, double v)
{
    /* One reservation and no intermediate copies: replies of thousands of samples spend
     * most of their time here. */
    char *d = reserve(w, 4 + 1 + 22 + 1 + 40 + 2);
    if (!d)
        return;
    memcpy(d, "*2\r\n:", 5);
    int n = 5 + resp_format_i64(d + 5, ts);
    d[n++] = '\r';
    d[n++] = '\n';
    d[n++] = w->proto == 3 ? ',' : '+';
    n += resp_format_double(v, d + n, 40);
    d[n++] = '\r';
    d[n++] = '\n';
    w->len += (size_t)n;
}

void resp_write_double(resp_writer *w, double v)
{
    char tmp[40];
    int n = resp_format_double(v, tmp, sizeof tmp);
    if (w->proto == 3) {
        char *d = reserve(w, (size_t)n + 3);
        if (!d)
            return;
        d[0] = ',';
        memcpy(d + 1, tmp, (size_t)n);
        memcpy(d + 1 + n, "\r\n", 2);
        w->len += (size_t)n + 3;
    } else {
        resp_write_bulk(w, tmp, (size_t)n);
    }
}

void resp_write_bool(resp_writer *w, bool v)
{
    if (w->proto == 3)
        resp_write_raw(w, v ? "#t\r\n" : "#f\r\n", 4);
    else
        resp_write_int(w, v ? 1 : 0);
}

void resp_write_verbatim(resp_writer *w, const char *fmt, const void *p, size_t len)
{
    if (w->proto != 3) {
        resp_write_bulk(w, p, len);
        return;
    }
    write_hdr(w, '=', (long long)(len + 4));
    char *d = reserve(w, len + 6);
    if (!d)
        return;
    memcpy(d, fmt, 3);
    d[3] = ':';
    if (len)
        memcpy(d + 4, p, len);
    memcpy(d + 4 + len, "\r\n", 2);
    w->len += len + 6;
}
