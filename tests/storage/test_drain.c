/* Draining the head in slices: a head past STORAGE_HEAD_MAX_POINTS, fed by group commits,
 * is sealed a slice of series at a time once they pause (test_seal.c has when). Every point stays readable
 * with its value throughout, the newest of a resent timestamp wins, the log is emptied once
 * the head is, and a store closed without sealing (the log still holding sealed points)
 * reopens with exactly the same points. */
#include "st_util.h"
#include "storage_int.h" /* STORAGE_HEAD_MAX_POINTS, test_no_seal, the head */
#include "tap.h"

#define NSERIES 20000
#define ROUNDS 60 /* NSERIES x ROUNDS > STORAGE_HEAD_MAX_POINTS */

static const int64_t t0 = 1700000000;

static double value_of(uint32_t s, int r)
{
    return (double)(s % 977) + r * 0.25;
}

static void cb(void *arg, int status)
{
    int *failed = arg;
    if (status != 0)
        (*failed)++;
}

/* Every series holds ROUNDS points with the expected values (round 7 resent as -1). */
static int check_all(storage *st, const storage_sid *sid)
{
    storage_reader *r;
    if (storage_reader_open(st, &r) != 0)
        return 0;
    int ok = 1;
    for (uint32_t s = 0; s < NSERIES && ok; s++) {
        storage_iter *it;
        if (storage_iter_open(r, sid[s], t0, t0 + 3600 * (ROUNDS - 1), &it) != 0) {
            ok = 0;
            break;
        }
        storage_point p;
        int n = 0;
        while (ok && storage_iter_next(it, &p) == 1) {
            double want = n == 7 ? -1.0 : value_of(s, n);
            ok = p.ts == t0 + 3600 * n && p.v[STORAGE_COL_AVG] == want;
            n++;
        }
        storage_iter_close(it);
        ok = ok && n == ROUNDS;
        if (!ok)
            fprintf(stderr, "# series %u: %d points\n", s, n);
    }
    storage_reader_close(r);
    return ok;
}

/* Polls (generously) until the writer has sealed the whole head. */
static int wait_drained(storage *st)
{
    for (int i = 0; i < 600; i++) {
        pthread_mutex_lock(&st->head_mu);
        int empty = st->nactive == 0 && !st->draining;
        pthread_mutex_unlock(&st->head_mu);
        if (empty)
            return 1;
        usleep(100000);
    }
    return 0;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    static storage_sid sid[NSERIES];
    for (uint32_t s = 0; s < NSERIES; s++) {
        char key[64];
        snprintf(key, sizeof key, "MN%05u:a21026:hour", s);
        storage_series_ensure(st, key, STORAGE_IV_HOUR, &sid[s]);
    }
    int failed = 0;
    int saw_draining = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int half = 0; half < 2; half++) { /* two commits per round, series interleaved */
            storage_batch *b = storage_batch_create();
            for (uint32_t s = (uint32_t)half; s < NSERIES; s += 2) {
                storage_point p = st_pt(t0 + 3600 * (int64_t)r, value_of(s, r));
                storage_batch_add(b, sid[s], &p);
            }
            if (r == 20) /* a resend of round 7 with new values, after it was sealed */
                for (uint32_t s = (uint32_t)half; s < NSERIES; s += 2) {
                    storage_point p = st_pt(t0 + 3600 * 7, -1.0);
                    storage_batch_add(b, sid[s], &p);
                }
            CHECK_EQ_INT(storage_submit(st, b, cb, &failed), 0);
        }
        pthread_mutex_lock(&st->head_mu);
        saw_draining |= st->draining;
        pthread_mutex_unlock(&st->head_mu);
    }
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(failed, 0);
    /* The writer keeps draining until the head is empty; wait for it (generously). */
    int empty = 0;
    for (int i = 0; i < 600 && !empty; i++) {
        pthread_mutex_lock(&st->head_mu);
        empty = st->nactive == 0 && !st->draining;
        saw_draining |= st->draining;
        pthread_mutex_unlock(&st->head_mu);
        if (!empty)
            usleep(100000);
    }
    CHECK(saw_draining);
    CHECK(empty);
    CHECK(check_all(st, sid));
    storage_stats ss;
    CHECK_EQ_INT(storage_get_stats(st, &ss), 0);
    CHECK_EQ_INT(ss.wal_points, 0);
    CHECK_EQ_INT(ss.points, (uint64_t)NSERIES * ROUNDS);

    /* Part of a drain, then a close without sealing: the log holds points that chunks also
     * hold; the reopened store has each point once, with its newest value. */
    for (int r = ROUNDS; r < ROUNDS + 60; r++) {
        storage_batch *b = storage_batch_create();
        for (uint32_t s = 0; s < NSERIES; s++) {
            storage_point p = st_pt(t0 + 3600 * (int64_t)r, r == ROUNDS + 3 ? 5.5 : 1.0);
            storage_batch_add(b, sid[s], &p);
        }
        CHECK_EQ_INT(storage_submit(st, b, cb, &failed), 0);
    }
    CHECK_EQ_INT(storage_sync(st), 0);
    st->test_no_seal = true;
    storage_close(st);
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    /* The replayed head is past the quiet threshold: the writer seals it at once, nothing
     * being queued; let it finish (the counts below are exact only without a seal running). */
    CHECK(wait_drained(st));
    storage_reader *r;
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    int ok = 1;
    for (uint32_t s = 0; s < NSERIES && ok; s += 97) {
        storage_iter *it;
        CHECK_EQ_INT(storage_iter_open(r, sid[s], t0 + 3600 * ROUNDS, t0 + 3600 * (ROUNDS + 60),
                                       &it), 0);
        storage_point p;
        int n = 0;
        while (storage_iter_next(it, &p) == 1) {
            ok = ok && p.ts == t0 + 3600 * (ROUNDS + n) &&
                 p.v[STORAGE_COL_AVG] == (n == 3 ? 5.5 : 1.0);
            n++;
        }
        storage_iter_close(it);
        ok = ok && n == 60;
    }
    storage_reader_close(r);
    CHECK(ok);
    CHECK(check_all(st, sid));
    CHECK_EQ_INT(storage_get_stats(st, &ss), 0);
    CHECK_EQ_INT(ss.points, (uint64_t)NSERIES * (ROUNDS + 60));
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
