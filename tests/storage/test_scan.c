/* storage_scan_col against the point iterator over the same store: random data (gaps,
 * points lacking some columns, random flags, a long run written straight into chunks, then
 * later writes still in the head that replace chunk points, add new ones between them and
 * after them), random ranges, every column. The blocks must hold, in order, exactly the
 * points the iterator returns that have the column, with their values and flags. */
#include <errno.h>

#include "st_util.h"
#include "tap.h"

static uint64_t rng = 2463534242u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct got {
    int64_t *ts;
    double *v;
    uint8_t *fl;
    size_t n, cap, blocks;
    int ordered;      /* blocks non-empty and in time order */
    size_t stop_after; /* return 7 after this many blocks (0: never) */
} got;

static int collect(void *arg, const int64_t *ts, const double *v, const uint8_t *fl, size_t n)
{
    got *g = arg;
    if (n == 0 || (g->n && ts[0] <= g->ts[g->n - 1]))
        g->ordered = 0;
    for (size_t i = 0; i < n; i++) {
        if (g->n == g->cap)
            return -ENOMEM;
        if (i && ts[i] <= ts[i - 1])
            g->ordered = 0;
        g->ts[g->n] = ts[i];
        g->v[g->n] = v[i];
        g->fl[g->n++] = fl[i];
    }
    g->blocks++;
    return g->stop_after && g->blocks == g->stop_after ? 7 : 0;
}

static storage_point random_point(int64_t ts)
{
    storage_point p;
    memset(&p, 0, sizeof p);
    p.ts = ts;
    p.mask = (uint8_t)(1u << STORAGE_COL_AVG);
    if (rnd() % 3 == 0)
        p.mask = (uint8_t)(rnd() % 127 + 1); /* some points lack the average */
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if (p.mask >> c & 1)
            p.v[c] = (double)(int64_t)(rnd() % 100000) / 1000;
    static const char flags[] = "NNNNNNNNFMDCTB";
    p.flag = rnd() % 20 == 0 ? 0 : (uint8_t)flags[rnd() % (sizeof flags - 1)];
    return p;
}

/* Compares scan and iterator over [from, to] for col; 1 when equal. */
static int compare(storage *st, storage_sid sid, int col, int64_t from, int64_t to, got *g)
{
    storage_reader *r;
    if (storage_reader_open(st, &r) != 0)
        return 0;
    g->n = g->blocks = 0;
    g->ordered = 1;
    int ok = storage_scan_col(r, sid, col, from, to, collect, g) == 0 && g->ordered;
    storage_iter *it = NULL;
    storage_point p;
    size_t k = 0;
    int rc = storage_iter_open(r, sid, from, to, &it);
    while (ok && rc == 0 && (rc = storage_iter_next(it, &p)) == 1) {
        rc = 0;
        if (!(p.mask >> col & 1))
            continue;
        ok = k < g->n && g->ts[k] == p.ts && memcmp(&g->v[k], &p.v[col], sizeof(double)) == 0 &&
             g->fl[k] == p.flag;
        k++;
    }
    storage_iter_close(it);
    storage_reader_close(r);
    if (!ok || rc < 0 || k != g->n) {
        printf("# col %d [%lld, %lld]: %zu points scanned, %zu iterated\n", col,
               (long long)from, (long long)to, g->n, k);
        return 0;
    }
    return 1;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK(storage_open(dir, NULL, &st) == 0);
    storage_sid sid;
    CHECK(storage_series_ensure(st, "M1:a21026:hour", STORAGE_IV_HOUR, &sid) == 0);
    const int64_t t0 = 1672502400;
    /* Two years of hours with gaps, straight into chunks (a batch this large bypasses the
     * log). */
    storage_batch *b = storage_batch_create();
    int add_ok = 1;
    int64_t t = t0, last = t0;
    for (int i = 0; i < 25000; i++) {
        t += 3600 * (rnd() % 8 == 0 ? 1 + (int64_t)(rnd() % 30) : 1);
        storage_point p = random_point(t);
        add_ok &= storage_batch_add(b, sid, &p) == 0;
        last = t;
    }
    CHECK(storage_write(st, b) == 0);
    /* Later writes: replacements of chunk points, points in the gaps, points after the end;
     * small batches go through the log into the head. */
    for (int i = 0; i < 400; i++) {
        int64_t ts = t0 + 3600 * (int64_t)(rnd() % (uint64_t)((last - t0) / 3600 + 200));
        storage_point p = random_point(ts);
        add_ok &= storage_batch_add(b, sid, &p) == 0;
    }
    CHECK(storage_write(st, b) == 0);
    CHECK(add_ok);
    storage_batch_destroy(b);
    storage_stats stats;
    CHECK(storage_get_stats(st, &stats) == 0 && stats.wal_points > 0); /* the head is used */

    got g = {.cap = 40000};
    g.ts = malloc(g.cap * sizeof *g.ts);
    g.v = malloc(g.cap * sizeof *g.v);
    g.fl = malloc(g.cap);
    int all = 1;
    for (int col = 0; col < STORAGE_NCOLS; col++)
        all &= compare(st, sid, col, INT64_MIN, INT64_MAX, &g);
    CHECK(all);
    CHECK(g.blocks > 1);
    int ranges = 1;
    for (int i = 0; i < 300 && ranges; i++) {
        int64_t a = t0 + (int64_t)(rnd() % (uint64_t)(last - t0 + 86400 * 10)) - 86400;
        int64_t z = a + (int64_t)(rnd() % (i % 3 ? 86400 * 40 : 86400 * 800));
        ranges = compare(st, sid, (int)(rnd() % STORAGE_NCOLS), a, z, &g);
    }
    CHECK(ranges);
    /* Empty and inverted ranges hand out nothing. */
    CHECK(compare(st, sid, STORAGE_COL_AVG, t0 - 86400 * 10, t0 - 1, &g) && g.n == 0);
    CHECK(compare(st, sid, STORAGE_COL_AVG, t0 + 7200, t0, &g) && g.n == 0 && g.blocks == 0);

    /* Real-time values every second: parts of more points than the decoding space on the
     * stack holds. */
    storage_sid rt;
    CHECK(storage_series_ensure(st, "M2:a21026:rtd", STORAGE_IV_RTD, &rt) == 0);
    b = storage_batch_create();
    for (int i = 0; i < 30000; i++) { /* steady values compress to long parts */
        storage_point p = st_pt(t0 + i, (double)(i / 7000));
        p.flag = i % 9000 < 50 ? 'M' : 'N';
        add_ok &= storage_batch_add(b, rt, &p) == 0;
    }
    CHECK(storage_write(st, b) == 0 && add_ok);
    storage_batch_destroy(b);
    CHECK(compare(st, rt, STORAGE_COL_AVG, INT64_MIN, INT64_MAX, &g) && g.n > 15000);
    CHECK(compare(st, rt, STORAGE_COL_AVG, t0 + 100, t0 + 25000, &g) && g.n == 24901);

    /* The callback's non-zero return stops the scan and is returned; a bad column is
     * refused. */
    storage_reader *r;
    CHECK(storage_reader_open(st, &r) == 0);
    g.n = g.blocks = 0;
    g.stop_after = 2;
    CHECK(storage_scan_col(r, sid, STORAGE_COL_AVG, INT64_MIN, INT64_MAX, collect, &g) == 7);
    CHECK(g.blocks == 2);
    CHECK(storage_scan_col(r, sid, STORAGE_NCOLS, 0, 1, collect, &g) == -EINVAL);
    CHECK(storage_scan_col(r, sid, -1, 0, 1, collect, &g) == -EINVAL);
    storage_reader_close(r);

    free(g.ts);
    free(g.v);
    free(g.fl);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
