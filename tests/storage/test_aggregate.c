/* storage_aggregate against a brute-force computation over the same points: random data
 * (with gaps, late points still in the head, replaced timestamps, points lacking the
 * column), random bucket widths and alignments, every column. */
#include <errno.h>
#include <math.h>

#include "st_util.h"
#include "tap.h"

static uint64_t rng = 88172645463325252u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t bstart(int64_t ts, int64_t w, int64_t al)
{
    int64_t d = ts - al, q = d / w;
    if (d % w && d < 0)
        q--;
    return al + q * w;
}

static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (1 + fabs(a) + fabs(b));
}

/* Compares the buckets for (col, from, to, w, al) with the reference points ref[0..n). */
static int compare(storage *st, storage_sid sid, const storage_point *ref, long n, int col,
                   int64_t from, int64_t to, int64_t w, int64_t al)
{
    enum { CAP = 100000 }; /* > 2.7e6 s / 60 s */
    static storage_bucket out[CAP], want[CAP];
    size_t nw = 0;
    for (long i = 0; i < n; i++) {
        const storage_point *p = &ref[i];
        if (p->ts < from || p->ts > to || !(p->mask >> col & 1))
            continue;
        int64_t s = bstart(p->ts, w, al);
        double v = p->v[col];
        if (nw == 0 || want[nw - 1].start != s) {
            if (nw == CAP)
                return 0;
            storage_bucket *b = &want[nw++];
            memset(b, 0, sizeof *b);
            b->start = s;
            b->min = b->max = b->first = v;
            b->min_ts = b->max_ts = b->first_ts = p->ts;
        }
        storage_bucket *b = &want[nw - 1];
        b->count++;
        b->sum += v;
        b->sumsq += v * v;
        if (v < b->min) {
            b->min = v;
            b->min_ts = p->ts;
        }
        if (v > b->max) {
            b->max = v;
            b->max_ts = p->ts;
        }
        b->last = v;
        b->last_ts = p->ts;
    }
    storage_reader *r;
    if (storage_reader_open(st, &r))
        return 0;
    size_t got;
    int rc = storage_aggregate(r, sid, col, from, to, w, al, out, CAP, &got);
    storage_reader_close(r);
    if (rc || got != nw) {
        printf("# rc %d got %zu want %zu (col %d w %lld)\n", rc, got, nw, col, (long long)w);
        return 0;
    }
    for (size_t i = 0; i < nw; i++) {
        const storage_bucket *a = &out[i], *b = &want[i];
        if (a->start != b->start || a->count != b->count || !close_to(a->sum, b->sum) ||
            !close_to(a->sumsq, b->sumsq) || a->min != b->min || a->max != b->max ||
            a->first != b->first || a->last != b->last || a->first_ts != b->first_ts ||
            a->last_ts != b->last_ts || a->min_ts != b->min_ts || a->max_ts != b->max_ts) {
            printf("# bucket %zu differs (start %lld count %llu vs %llu)\n", i,
                   (long long)a->start, (unsigned long long)a->count,
                   (unsigned long long)b->count);
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    storage_sid sid;
    storage_series_ensure(st, "MN:a34013:min", STORAGE_IV_AUTO, &sid);
    const int64_t t0 = 1650000000 - 1650000000 % 60;

    /* Bulk: 40,000 minutes with gaps, values with 1-2 decimals, some points without avg. */
    storage_batch *b = storage_batch_create();
    for (int64_t i = 0; i < 40000; i++) {
        if (rnd() % 10 == 0)
            continue;
        storage_point p = st_pt(t0 + 60 * i, (double)(rnd() % 10000) / 100);
        p.mask |= 1u << STORAGE_COL_MAX;
        p.v[STORAGE_COL_MAX] = p.v[0] + (double)(rnd() % 500) / 10;
        if (rnd() % 20 == 0)
            p.mask = 1u << STORAGE_COL_MAX;
        storage_batch_add(b, sid, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);
    /* Then late points and replacements through the log (they stay in the head). */
    for (int k = 0; k < 300; k++) {
        int64_t i = (int64_t)(rnd() % 42000);
        storage_point p = st_pt(t0 + 60 * i + (rnd() % 3 == 0 ? 17 : 0), -(double)(rnd() % 1000));
        storage_batch_add(b, sid, &p);
    }
    CHECK_EQ_INT(storage_write(st, b), 0);

    storage_point *ref;
    long n = st_read_all(st, sid, INT64_MIN, INT64_MAX, &ref);
    CHECK(n > 35000);

    static const int64_t widths[] = {60, 300, 3600, 86400, 7 * 86400, 3600 * 5 + 7, 1};
    int ok = 0, total = 0;
    for (int round = 0; round < 60; round++) {
        int64_t w = widths[rnd() % 7];
        if (w == 1)
            w = 1 + (int64_t)(rnd() % 200000);
        int64_t al = (int64_t)(rnd() % 100000) - 50000;
        int64_t from = t0 + (int64_t)(rnd() % 2600000) - 100000;
        int64_t to = from + (int64_t)(rnd() % 2700000);
        if (round == 0) {
            from = INT64_MIN;
            to = INT64_MAX;
            w = 86400;
            al = 0;
        }
        int col = round % 4 == 3 ? STORAGE_COL_MAX : STORAGE_COL_AVG;
        total++;
        ok += compare(st, sid, ref, n, col, from, to, w, al);
    }
    CHECK_EQ_INT(ok, total);

    /* After sealing, the same answers (now mostly from chunk aggregates). */
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    ok = total = 0;
    for (int round = 0; round < 60; round++) {
        int64_t w = widths[rnd() % 7];
        if (w == 1)
            w = 1 + (int64_t)(rnd() % 200000);
        int64_t al = (int64_t)(rnd() % 100000) - 50000;
        int64_t from = t0 + (int64_t)(rnd() % 2600000) - 100000;
        int64_t to = from + (int64_t)(rnd() % 2700000);
        int col = round % 4 == 3 ? STORAGE_COL_MAX : STORAGE_COL_AVG;
        total++;
        ok += compare(st, sid, ref, n, col, from, to, w, al);
    }
    CHECK_EQ_INT(ok, total);

    /* Too many buckets: the first max are filled. */
    storage_reader *r;
    storage_bucket few[3];
    size_t got = 99;
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    CHECK_EQ_INT(storage_aggregate(r, sid, 0, t0, t0 + 86400, 60, 0, few, 3, &got), -ERANGE);
    CHECK_EQ_INT(got, 3);
    CHECK(few[0].start < few[1].start && few[1].start < few[2].start);
    CHECK_EQ_INT(storage_aggregate(r, sid, 0, t0, t0 + 86400, 0, 0, few, 3, &got), -EINVAL);
    CHECK_EQ_INT(storage_aggregate(r, sid, 0, t0 + 86400, t0, 60, 0, few, 3, &got), 0);
    CHECK_EQ_INT(got, 0);
    storage_reader_close(r);
    free(ref);
    storage_batch_destroy(b);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
