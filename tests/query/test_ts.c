/* test_ts.c: TS.GET, TS.RANGE, TS.REVRANGE and DBSIZE against a real store. Two days of
 * hourly points (with a three-hour gap) are written to a temporary store; commands go to a
 * server on 127.0.0.1 over real connections (RESP2 and RESP3; long scans take the worker
 * thread path), and the replies are decoded and compared with values computed here from the
 * same points. Aggregations are checked both through
 * storage's bucket path and through the point-by-point path (forced by a pass-all value
 * filter), which must agree. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <uv.h>

#include "query_int.h"
#include "tap.h"
#include "../storage/st_util.h"

#define T0 1699920000 /* 2023-11-14T00:00:00Z: a whole day */
#define NPTS 48
#define KEY "010000A89000:a21026:hour"

static query_server *srv;
static int64_t pts_ts[NPTS];
static double pts_v[NPTS];
static size_t npts;

static uv_loop_t loop;
static int conn[4]; /* conn[2]: a RESP2 connection, conn[3]: a RESP3 one */

/* Length of the complete reply at s[0..len), or 0 if it is not complete yet. */
static size_t reply_len(const char *s, size_t len)
{
    const char *nl = memchr(s, '\n', len);
    if (!nl)
        return 0;
    size_t head = (size_t)(nl - s) + 1;
    long long n = strtoll(s + 1, NULL, 10);
    if (*s == '$' || *s == '=')
        return n < 0 ? head : head + (size_t)n + 2 <= len ? head + (size_t)n + 2 : 0;
    if (*s != '*' && *s != '%' && *s != '~')
        return head;
    size_t at = head;
    for (long long i = 0; i < (*s == '%' ? 2 * n : n); i++) {
        size_t k = reply_len(s + at, len - at);
        if (!k)
            return 0;
        at += k;
    }
    return at;
}

/* Sends one command line (words split on spaces) over a real connection, runs the loop until
 * the whole reply is back, and returns it (malloc'd, NUL-terminated). */
static char *run(int proto, const char *line)
{
    char buf[512], req[1024];
    int argc = 0, n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    char *words[64];
    for (char *t = strtok(buf, " "); t && argc < 64; t = strtok(NULL, " "))
        words[argc++] = t;
    n = snprintf(req, sizeof req, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "$%zu\r\n%s\r\n", strlen(words[i]),
                      words[i]);
    send(conn[proto], req, (size_t)n, 0);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    for (int spins = 0; spins < 2000000; spins++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t got = recv(conn[proto], out + len, cap - 1 - len, MSG_DONTWAIT);
        if (got > 0)
            len += (size_t)got;
        if (len && reply_len(out, len) == len)
            break;
        if (len + 1 == cap)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    return out;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, (struct sockaddr *)&a, sizeof a);
    return fd;
}

/* Decodes a RESP2 or RESP3 array of [ts, value] pairs; returns the count or -1. */
static int decode(const char *s, int64_t *ts, double *v, int max)
{
    char *end;
    if (*s != '*')
        return -1;
    int n = (int)strtol(s + 1, &end, 10);
    s = end + 2;
    for (int i = 0; i < n && i < max; i++) {
        if (strncmp(s, "*2\r\n:", 5) != 0)
            return -1;
        ts[i] = strtoll(s + 5, &end, 10);
        s = end + 2;
        if (*s != '+' && *s != ',')
            return -1;
        v[i] = strtod(s + 1, &end);
        s = end + 2;
    }
    return n;
}

static int run_decode(const char *line, int64_t *ts, double *v, int max)
{
    char *r = run(2, line);
    int n = decode(r, ts, v, max);
    if (n < 0)
        printf("# reply: %s\n", r);
    free(r);
    return n;
}

static void write_data(storage *st)
{
    storage_sid sid, other;
    storage_series_ensure(st, KEY, STORAGE_IV_AUTO, &sid);
    storage_series_ensure(st, "010000A89000:a34013:hour", STORAGE_IV_AUTO, &other);
    storage_batch *b = storage_batch_create();
    for (int i = 0; i < NPTS; i++) {
        if (i >= 10 && i < 13)
            continue; /* a three-hour gap */
        storage_point p = st_pt(T0 + i * 3600, i * 1.5 + (i % 5) * 0.25);
        p.v[STORAGE_COL_ZSAVG] = i * 2.0;
        p.mask |= 1u << STORAGE_COL_ZSAVG;
        storage_batch_add(b, sid, &p);
        pts_ts[npts] = (int64_t)(T0 + i * 3600) * 1000;
        pts_v[npts++] = p.v[STORAGE_COL_AVG];
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    storage_batch_destroy(b);
}

static void test_get(void)
{
    char *r = run(2, "TS.GET " KEY);
    char want[128];
    snprintf(want, sizeof want, "*2\r\n:%lld\r\n+71\r\n", (long long)pts_ts[npts - 1]);
    CHECK_EQ_STR(r, want);
    free(r);
    r = run(3, "TS.GET " KEY ":zsavg");
    snprintf(want, sizeof want, "*2\r\n:%lld\r\n,94\r\n", (long long)pts_ts[npts - 1]);
    CHECK_EQ_STR(r, want);
    free(r);
    r = run(2, "TS.GET nosuch:a21026:hour");
    CHECK_EQ_STR(r, "-ERR TSDB: the key does not exist\r\n");
    free(r);
    r = run(2, "TS.GET 010000A89000:a34013:hour");
    CHECK_EQ_STR(r, "*0\r\n"); /* a series without samples */
    free(r);
    r = run(2, "TS.GET " KEY ":max");
    CHECK_EQ_STR(r, "*0\r\n"); /* a column the series never had */
    free(r);
    r = run(2, "DBSIZE");
    CHECK_EQ_STR(r, ":2\r\n");
    free(r);
}

static void test_raw(void)
{
    int64_t ts[100];
    double v[100];
    char line[256];
    int n = run_decode("TS.RANGE " KEY " - +", ts, v, 100);
    CHECK_EQ_INT(n, (long long)npts);
    int same = 1;
    for (int i = 0; i < n; i++)
        same &= ts[i] == pts_ts[i] && v[i] == pts_v[i];
    CHECK(same);

    n = run_decode("TS.RANGE " KEY " - + COUNT 3", ts, v, 100);
    CHECK(n == 3 && ts[0] == pts_ts[0] && ts[2] == pts_ts[2]);
    n = run_decode("TS.REVRANGE " KEY " - + COUNT 2", ts, v, 100);
    CHECK(n == 2 && ts[0] == pts_ts[npts - 1] && ts[1] == pts_ts[npts - 2]);

    /* Millisecond bounds: one past the first point excludes it; to is inclusive. */
    snprintf(line, sizeof line, "TS.RANGE " KEY " %lld %lld", (long long)pts_ts[0] + 1,
             (long long)pts_ts[3]);
    n = run_decode(line, ts, v, 100);
    CHECK(n == 3 && ts[0] == pts_ts[1] && ts[2] == pts_ts[3]);

    snprintf(line, sizeof line, "TS.RANGE " KEY " - + FILTER_BY_TS %lld %lld 5",
             (long long)pts_ts[4], (long long)pts_ts[7]);
    n = run_decode(line, ts, v, 100);
    CHECK(n == 2 && ts[0] == pts_ts[4] && ts[1] == pts_ts[7]);

    n = run_decode("TS.RANGE " KEY " - + FILTER_BY_VALUE 10 20", ts, v, 100);
    int expect = 0, ok = 1;
    for (size_t i = 0; i < npts; i++)
        if (pts_v[i] >= 10 && pts_v[i] <= 20)
            ok &= expect < n && ts[expect++] == pts_ts[i];
    CHECK(n == expect && ok);

    char *r = run(2, "TS.RANGE " KEY " 5000 4000");
    CHECK_EQ_STR(r, "*0\r\n");
    free(r);
    r = run(2, "TS.RANGE " KEY " - + AGGREGATION median 1000");
    CHECK_EQ_STR(r, "-ERR TSDB: Unknown aggregation type\r\n");
    free(r);
    r = run(2, "TS.RANGE nosuch - +");
    CHECK_EQ_STR(r, "-ERR TSDB: the key does not exist\r\n");
    free(r);
}

/* Expected buckets of width w (ms) aligned to 0, computed here. */
static int expect_buckets(const char *agg, int64_t w, int64_t *bts, double *bv)
{
    int nb = 0;
    for (size_t i = 0; i < npts;) {
        int64_t start = pts_ts[i] - pts_ts[i] % w;
        double sum = 0, sumsq = 0, mn = INFINITY, mx = -INFINITY, first = pts_v[i], last = 0;
        int cnt = 0;
        for (; i < npts && pts_ts[i] - pts_ts[i] % w == start; i++) {
            double x = pts_v[i];
            sum += x;
            sumsq += x * x;
            mn = fmin(mn, x);
            mx = fmax(mx, x);
            last = x;
            cnt++;
        }
        double mean = sum / cnt, m2 = fmax(0, sumsq - sum * mean), val;
        if (!strcmp(agg, "avg")) val = mean;
        else if (!strcmp(agg, "sum")) val = sum;
        else if (!strcmp(agg, "min")) val = mn;
        else if (!strcmp(agg, "max")) val = mx;
        else if (!strcmp(agg, "range")) val = mx - mn;
        else if (!strcmp(agg, "count")) val = cnt;
        else if (!strcmp(agg, "first")) val = first;
        else if (!strcmp(agg, "last")) val = last;
        else if (!strcmp(agg, "var.p")) val = m2 / cnt;
        else if (!strcmp(agg, "var.s")) val = cnt > 1 ? m2 / (cnt - 1) : 0;
        else if (!strcmp(agg, "std.p")) val = sqrt(m2 / cnt);
        else val = cnt > 1 ? sqrt(m2 / (cnt - 1)) : 0;
        bts[nb] = start;
        bv[nb++] = val;
    }
    return nb;
}

static void test_aggregations(void)
{
    static const char *aggs[] = {"avg", "sum", "min", "max", "range", "count", "first",
                                 "last", "std.p", "std.s", "var.p", "var.s"};
    static const int64_t widths[] = {86400000, 6 * 3600000, 3600000};
    int64_t ts[100], ets[100];
    double v[100], ev[100];
    char line[256];
    for (size_t a = 0; a < sizeof aggs / sizeof aggs[0]; a++) {
        for (size_t k = 0; k < 3; k++) {
            int en = expect_buckets(aggs[a], widths[k], ets, ev);
            for (int path = 0; path < 2; path++) {
                snprintf(line, sizeof line, "TS.RANGE " KEY " - + %sAGGREGATION %s %lld",
                         path ? "FILTER_BY_VALUE -inf inf " : "", aggs[a],
                         (long long)widths[k]);
                int n = run_decode(line, ts, v, 100);
                int ok = n == en;
                for (int i = 0; ok && i < n; i++)
                    ok = ts[i] == ets[i] && fabs(v[i] - ev[i]) <= 1e-9 * fmax(1, fabs(ev[i]));
                tap_ok(ok, line, __FILE__, __LINE__);
            }
        }
    }
}

static void test_bucket_options(void)
{
    int64_t ts[100];
    double v[100];
    /* Hourly counts with EMPTY: the gap shows as three zero buckets. */
    int n = run_decode("TS.RANGE " KEY " - + AGGREGATION count 3600000 EMPTY", ts, v, 100);
    CHECK_EQ_INT(n, NPTS);
    CHECK(v[10] == 0 && v[11] == 0 && v[12] == 0 && v[13] == 1);
    n = run_decode("TS.RANGE " KEY " - + AGGREGATION count 3600000", ts, v, 100);
    CHECK_EQ_INT(n, (long long)npts);

    /* Odd widths and alignments go point by point. */
    n = run_decode("TS.RANGE " KEY " - + AGGREGATION count 5400000 ALIGN 1800000", ts, v, 100);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += v[i];
    CHECK(n > 0 && total == (double)npts && (ts[0] - 1800000) % 5400000 == 0);

    /* BUCKETTIMESTAMP + reports bucket ends; REVRANGE reverses buckets; COUNT limits them. */
    n = run_decode("TS.REVRANGE " KEY " - + AGGREGATION max 86400000 BUCKETTIMESTAMP + "
                   "COUNT 1", ts, v, 100);
    CHECK(n == 1 && ts[0] == ((int64_t)T0 + 86400) * 1000 + 86400000 && v[0] == pts_v[npts - 1]);

    /* ALIGN start with an explicit from. */
    char line[200];
    snprintf(line, sizeof line, "TS.RANGE " KEY " %lld + ALIGN start AGGREGATION count "
             "86400000", (long long)pts_ts[0] + 1800000);
    n = run_decode(line, ts, v, 100);
    CHECK(n == 2 && ts[0] == pts_ts[0] + 1800000 && v[0] + v[1] == (double)npts - 1);

    char *r = run(3, "TS.RANGE " KEY " - + COUNT 1 AGGREGATION avg 86400000");
    char want[128];
    snprintf(want, sizeof want, "*1\r\n*2\r\n:%lld\r\n,", (long long)pts_ts[0]);
    CHECK(strncmp(r, want, strlen(want)) == 0);
    free(r);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st = NULL;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    write_data(st);

    uv_loop_init(&loop);
    query_options o;
    query_options_default(&o);
    o.port = 0;
    o.storage = st;
    CHECK_EQ_INT(query_server_create(&loop, &o, &srv), 0);
    CHECK_EQ_INT(query_server_start(srv), 0);
    conn[2] = connect_to(query_server_port(srv));
    conn[3] = connect_to(query_server_port(srv));
    char *r = run(3, "HELLO 3");
    CHECK(r[0] == '%');
    free(r);
    test_get();
    test_raw();
    test_aggregations();
    test_bucket_options();
    query_stats qs;
    query_server_get_stats(srv, &qs);
    CHECK(qs.commands_offloaded > 10); /* the '- +' ranges ran on worker threads */
    CHECK(qs.commands_offloaded < qs.commands_processed);
    close(conn[2]);
    close(conn[3]);

    /* A server without a store answers series commands with an error. */
    query_server_close(srv, NULL, NULL);
    o.storage = NULL;
    CHECK_EQ_INT(query_server_create(&loop, &o, &srv), 0);
    CHECK_EQ_INT(query_server_start(srv), 0);
    conn[2] = connect_to(query_server_port(srv));
    r = run(2, "TS.GET " KEY);
    CHECK_EQ_STR(r, "-ERR TSDB: this server has no store open\r\n");
    free(r);
    close(conn[2]);
    query_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);

    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
