/* test_chunk.c: the chunk codec keeps every point bit for bit (values, timestamps, columns,
 * flags), its header tells the truth about what it holds, and damaged bytes are refused
 * with STORAGE_ECORRUPT rather than misread. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "tap.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* 1 if the two point arrays are identical in every field the mask says is meaningful. */
static int same_points(const storage_point *a, const storage_point *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].ts != b[i].ts || a[i].mask != b[i].mask || a[i].flag != b[i].flag) {
            printf("# point %zu differs: ts %lld/%lld mask %u/%u flag %u/%u\n", i,
                   (long long)a[i].ts, (long long)b[i].ts, a[i].mask, b[i].mask, a[i].flag,
                   b[i].flag);
            return 0;
        }
        for (int c = 0; c < STORAGE_NCOLS; c++)
            if ((a[i].mask & (1u << c)) && !same_bits(a[i].v[c], b[i].v[c])) {
                printf("# point %zu col %d: %.17g != %.17g\n", i, c, a[i].v[c], b[i].v[c]);
                return 0;
            }
    }
    return 1;
}

static int same_agg(const chunk_agg *a, const chunk_agg *b)
{
    return a->count == b->count && same_bits(a->sum, b->sum) &&
           same_bits(a->sumsq, b->sumsq) && same_bits(a->min, b->min) &&
           same_bits(a->max, b->max) && same_bits(a->first, b->first) &&
           same_bits(a->last, b->last) && a->min_ts == b->min_ts && a->max_ts == b->max_ts &&
           a->first_ts == b->first_ts && a->last_ts == b->last_ts;
}

/* Encodes, decodes whole points and every column alone, and checks everything matches.
 * Returns 1 when all is well; the encoded bytes stay in *buf. */
static int round_trip(const storage_point *pts, size_t n, chunk_buf *buf)
{
    int ok = 1;
    buf->len = 0;
    if (chunk_encode(pts, n, buf) != 0)
        return 0;
    chunk_info info;
    if (chunk_info_read(buf->data, buf->len, &info) != 0)
        return 0;
    chunk_agg want;
    chunk_agg_compute(pts, n, &want);
    uint8_t colmask = 0;
    for (size_t i = 0; i < n; i++)
        colmask |= pts[i].mask;
    ok &= info.npoints == n && info.first_ts == pts[0].ts && info.last_ts == pts[n - 1].ts &&
          info.colmask == colmask && same_agg(&info.agg, &want);

    storage_point *got = calloc(n, sizeof *got);
    size_t m = 0;
    ok &= chunk_decode(buf->data, buf->len, got, n, &m) == 0 && m == n;
    ok &= same_points(pts, got, n);
    free(got);

    int64_t *ts = malloc(n * sizeof *ts);
    double *v = malloc(n * sizeof *v);
    uint8_t *fl = malloc(n);
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        ok &= chunk_decode_col(buf->data, buf->len, c, ts, v, fl, n, &m) == 0;
        size_t k = 0;
        for (size_t i = 0; i < n && ok; i++) {
            if (!(pts[i].mask & (1u << c)))
                continue;
            ok &= k < m && ts[k] == pts[i].ts && same_bits(v[k], pts[i].v[c]) &&
                  fl[k] == pts[i].flag;
            k++;
        }
        ok &= k == m;
    }
    free(ts);
    free(v);
    free(fl);
    return ok;
}

static void fill_hourly(storage_point *p, size_t n, int64_t t0, int decimals)
{
    double scale = pow(10, decimals);
    long level = 500;
    for (size_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].ts = t0 + (int64_t)i * 3600;
        level += (long)(rnd() % 41) - 20;
        p[i].v[STORAGE_COL_AVG] = (double)level / scale;
        p[i].mask = 1u << STORAGE_COL_AVG;
        p[i].flag = 'N';
    }
}

static void test_special_values(chunk_buf *buf)
{
    static const double vals[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 0.1, 1e308, 5e-324,
                                  0.30000000000000004, 123.45678901234567, -17.25, 1e15,
                                  2.2250738585072014e-308, -NAN};
    size_t n = sizeof vals / sizeof vals[0];
    storage_point p[sizeof vals / sizeof vals[0]];
    for (size_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].ts = 1700000000 + (int64_t)i * 60;
        p[i].v[0] = vals[i];
        p[i].v[1] = -vals[i];
        p[i].mask = 3;
        p[i].flag = 'N';
    }
    CHECK(round_trip(p, n, buf));
    /* A NaN payload other than the default one keeps its bits too. */
    uint64_t bits = 0x7ff8dead0000beefull;
    memcpy(&p[3].v[0], &bits, 8);
    CHECK(round_trip(p, n, buf));
}

static void test_mixed_columns_and_flags(chunk_buf *buf)
{
    enum { N = 500 };
    storage_point *p = calloc(N, sizeof *p);
    int64_t t = 1600000000;
    for (size_t i = 0; i < N; i++) {
        t += 1 + (int64_t)(rnd() % 7200);
        p[i].ts = t;
        p[i].mask = (uint8_t)(1 + rnd() % 127);
        for (int c = 0; c < STORAGE_NCOLS; c++)
            p[i].v[c] = (double)(int64_t)(rnd() % 100000) / 100.0;
        p[i].flag = "NNNNFMDTB\0"[rnd() % 10];
    }
    CHECK(round_trip(p, N, buf));
    /* Only MAX and COU present, never AVG: the aggregates are empty. */
    for (size_t i = 0; i < N; i++)
        p[i].mask = (1u << STORAGE_COL_MAX) | (1u << STORAGE_COL_COU);
    CHECK(round_trip(p, N, buf));
    chunk_info info;
    CHECK(chunk_info_read(buf->data, buf->len, &info) == 0 && info.agg.count == 0);
    free(p);
}

static void test_values(chunk_buf *buf)
{
    enum { N = 1536 };
    storage_point *p = malloc(N * sizeof *p);
    for (int d = 0; d <= 5; d++) {
        fill_hourly(p, N, 1500000000 - 3600 * 24 * 400, d);
        CHECK(round_trip(p, N, buf));
    }
    /* 17-significant-digit readings among 1-decimal ones stay exact. */
    fill_hourly(p, N, 1500000000, 1);
    p[7].v[0] = 0.1234567890123456;
    p[100].v[0] = 98765.43210987654;
    p[101].v[0] = 1.0 / 3.0;
    CHECK(round_trip(p, N, buf));
    /* Random bit patterns: every double there is. */
    for (size_t i = 0; i < N; i++) {
        uint64_t u = rnd();
        memcpy(&p[i].v[0], &u, 8);
    }
    CHECK(round_trip(p, N, buf));
    /* Huge integers and big jumps. */
    for (size_t i = 0; i < N; i++)
        p[i].v[0] = (i & 1) ? 9007199254740992.0 : -9007199254740991.0;
    CHECK(round_trip(p, N, buf));
    /* Extreme timestamps. */
    fill_hourly(p, 3, 0, 0);
    p[0].ts = INT64_MIN;
    p[1].ts = 0;
    p[2].ts = INT64_MAX;
    CHECK(round_trip(p, 3, buf));
    free(p);
}

static void test_single_and_max(chunk_buf *buf)
{
    storage_point one;
    fill_hourly(&one, 1, 1700000000, 2);
    CHECK(round_trip(&one, 1, buf));
    size_t n = CHUNK_MAX_POINTS;
    storage_point *p = malloc(n * sizeof *p);
    fill_hourly(p, n, 1000000000, 1);
    for (size_t i = 0; i < n; i++)
        p[i].ts = 1000000000 + (int64_t)i;
    CHECK(round_trip(p, n, buf));
    free(p);
}

static void test_invalid_input(chunk_buf *buf)
{
    storage_point p[3];
    fill_hourly(p, 3, 1700000000, 1);
    buf->len = 0;
    CHECK_EQ_INT(chunk_encode(p, 0, buf), -EINVAL);
    p[1].ts = p[0].ts;
    CHECK_EQ_INT(chunk_encode(p, 3, buf), -EINVAL);
    fill_hourly(p, 3, 1700000000, 1);
    p[2].mask = 0;
    CHECK_EQ_INT(chunk_encode(p, 3, buf), -EINVAL);
    p[2].mask = 0x80;
    CHECK_EQ_INT(chunk_encode(p, 3, buf), -EINVAL);
    CHECK_EQ_INT(buf->len, 0);
}

static void test_corrupt(chunk_buf *buf)
{
    enum { N = 200 };
    storage_point p[N], got[N];
    fill_hourly(p, N, 1700000000, 1);
    p[50].v[0] = NAN;
    p[60].flag = 'F';
    buf->len = 0;
    CHECK(chunk_encode(p, N, buf) == 0);
    size_t n, len = buf->len;
    chunk_info info;
    int64_t ts[N];
    double v[N];

    CHECK_EQ_INT(chunk_info_read(buf->data, 0, &info), STORAGE_ECORRUPT);
    CHECK_EQ_INT(chunk_decode(buf->data, 0, got, N, &n), STORAGE_ECORRUPT);
    CHECK_EQ_INT(chunk_decode(NULL, 0, got, N, &n), STORAGE_ECORRUPT);
    CHECK_EQ_INT(chunk_decode(buf->data, len, got, N - 1, &n), -ERANGE);
    CHECK_EQ_INT(chunk_decode_col(buf->data, len, 0, ts, v, NULL, N - 1, &n), -ERANGE);
    CHECK_EQ_INT(chunk_decode_col(buf->data, len, 7, ts, v, NULL, N, &n), -EINVAL);

    /* Every truncation is refused. */
    int all = 1;
    for (size_t cut = 0; cut < len; cut++)
        all &= chunk_decode(buf->data, cut, got, N, &n) == STORAGE_ECORRUPT;
    CHECK(all);
    /* Trailing garbage is refused. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf->data, len);
    longer[len] = 0;
    CHECK_EQ_INT(chunk_decode(longer, len + 1, got, N, &n), STORAGE_ECORRUPT);
    free(longer);
    /* An unknown version is refused. */
    buf->data[0] ^= 0x40;
    CHECK_EQ_INT(chunk_info_read(buf->data, len, &info), STORAGE_ECORRUPT);
    CHECK_EQ_INT(chunk_decode(buf->data, len, got, N, &n), STORAGE_ECORRUPT);
    buf->data[0] ^= 0x40;
    /* Single-byte damage anywhere either is refused or decodes to well-formed points. */
    int sane = 1;
    for (size_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit++) {
            buf->data[at] ^= (uint8_t)(1u << bit);
            int rc = chunk_decode(buf->data, len, got, N, &n);
            if (rc == 0) {
                for (size_t i = 0; i < n; i++)
                    sane &= got[i].mask != 0 && (i == 0 || got[i].ts > got[i - 1].ts);
            } else {
                sane &= rc == STORAGE_ECORRUPT || rc == -ERANGE; /* a larger count */
            }
            buf->data[at] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK(sane);
    CHECK(chunk_decode(buf->data, len, got, N, &n) == 0 && same_points(p, got, N));
}

static void test_timestamps_and_scales(chunk_buf *buf)
{
    enum { N = 1536 };
    storage_point *p = malloc(N * sizeof *p);
    /* Hourly with a few gaps (the gap list), then jittered seconds (dense steps). */
    fill_hourly(p, N, 1700000000, 1);
    for (size_t i = 100; i < N; i++)
        p[i].ts += 3600 * (i > 500 ? 7 : 1) + (i > 900 ? 86400 : 0);
    CHECK(round_trip(p, N, buf));
    int64_t t = 1700000000;
    for (size_t i = 0; i < N; i++)
        p[i].ts = t += 28 + (int64_t)(rnd() % 5);
    CHECK(round_trip(p, N, buf));
    /* Hundreds with a few odd values (a common factor with corrections), and a value
     * scale the chunk mostly does not need (kind-e exceptions). */
    fill_hourly(p, N, 1700000000, 0);
    for (size_t i = 0; i < N; i++) {
        p[i].v[0] = 100.0 * (double)(3 + rnd() % 30);
        if (i % 97 == 5)
            p[i].v[0] -= 1;
        if (i % 101 == 7)
            p[i].v[0] += 0.4252;
    }
    CHECK(round_trip(p, N, buf));
    /* Integer readings with converted ones among them (ppb x 2.856: 4 decimals, all
     * multiples of 0.2856): the alternate scale keeps them exact and cheap. */
    size_t plain_len = 0;
    for (int conv = 0; conv < 2; conv++) {
        for (size_t i = 0; i < N; i++) {
            p[i].v[0] = (double)(50 + (int64_t)(rnd() % 9) - 4 + (int64_t)(i % 24));
            if (conv && i % 10 == 3)
                p[i].v[0] = (double)(int64_t)(p[i].v[0] / 0.2856 + 0.5) * 2856 / 1e4;
        }
        CHECK(round_trip(p, N, buf));
        if (!conv)
            plain_len = buf->len;
    }
    printf("# %zu bytes plain, %zu with 10%% converted readings\n", plain_len, buf->len);
    CHECK(buf->len < plain_len + N / 10 * 2);
    /* A regular hourly series of 1-decimal readings costs about a byte a point or less. */
    fill_hourly(p, N, 1700000000, 1);
    CHECK(round_trip(p, N, buf));
    CHECK(buf->len < N);
    printf("# %zu bytes for %d hourly points\n", buf->len, N);
    /* Constant values and a constant zero: next to nothing. */
    for (size_t i = 0; i < N; i++)
        p[i].v[0] = 0;
    CHECK(round_trip(p, N, buf));
    CHECK(buf->len < 64);
    /* Every column at its own scale. */
    for (size_t i = 0; i < N; i++) {
        p[i].mask = 0x7f;
        for (int c = 0; c < STORAGE_NCOLS; c++)
            p[i].v[c] = (double)(int64_t)(rnd() % 2000) / pow(10, c);
    }
    CHECK(round_trip(p, N, buf));
    free(p);
}

static void test_appends(chunk_buf *buf)
{
    /* chunk_encode appends: two chunks in one buffer decode separately. */
    storage_point a[10], b[20], got[20];
    fill_hourly(a, 10, 1700000000, 0);
    fill_hourly(b, 20, 1800000000, 3);
    buf->len = 0;
    CHECK(chunk_encode(a, 10, buf) == 0);
    size_t la = buf->len, n;
    CHECK(chunk_encode(b, 20, buf) == 0);
    CHECK(chunk_decode(buf->data, la, got, 20, &n) == 0 && n == 10 && same_points(a, got, 10));
    CHECK(chunk_decode(buf->data + la, buf->len - la, got, 20, &n) == 0 && n == 20 &&
          same_points(b, got, 20));
}

int main(void)
{
    chunk_buf buf = {0};
    test_special_values(&buf);
    test_mixed_columns_and_flags(&buf);
    test_values(&buf);
    test_single_and_max(&buf);
    test_invalid_input(&buf);
    test_corrupt(&buf);
    test_timestamps_and_scales(&buf);
    test_appends(&buf);
    chunk_buf_free(&buf);
    CHECK(buf.data == NULL && buf.len == 0 && buf.cap == 0);
    return tap_done();
}
