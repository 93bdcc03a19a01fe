/* When the writer seals the head: not while ingest is busy and the head is under its load
 * cap (a top-of-hour burst is acknowledged from the log, without waiting for chunk
 * encoding), as soon as ingest pauses once the head is past its quiet threshold, and under
 * load too once the head passes the cap, so that it stays bounded. The thresholds are
 * lowered through the store's test fields; every point stays readable throughout. */
#include <pthread.h>

#include "st_util.h"
#include "storage_int.h" /* head_quiet_points, head_load_points, the seal counters */
#include "tap.h"

#define NSERIES 5000

static const int64_t t0 = 1700000000;

static void cb(void *arg, int status)
{
    int *failed = arg;
    if (status != 0)
        (*failed)++;
}

typedef struct seen {
    uint64_t quiet, load, head;
    uint32_t active;
    bool draining;
} seen;

static seen look(storage *st)
{
    pthread_mutex_lock(&st->head_mu);
    seen s = {st->quiet_seals, st->load_seals, st->head_points, st->nactive, st->draining};
    pthread_mutex_unlock(&st->head_mu);
    return s;
}

/* Rounds [from, to) of one point per series, one batch per round, submitted back to back. */
static void feed(storage *st, const storage_sid *sid, int from, int to, int *failed)
{
    for (int r = from; r < to; r++) {
        storage_batch *b = storage_batch_create();
        for (uint32_t s = 0; s < NSERIES; s++) {
            storage_point p = st_pt(t0 + 60 * (int64_t)r, (double)s + r * 0.5);
            storage_batch_add(b, sid[s], &p);
        }
        storage_submit(st, b, cb, failed);
    }
}

/* Polls (generously: the machine may be busy) until the head is sealed and empty. */
static int wait_empty(storage *st)
{
    for (int i = 0; i < 600; i++) {
        seen s = look(st);
        if (s.active == 0 && !s.draining)
            return 1;
        usleep(100000);
    }
    return 0;
}

static int all_there(storage *st, const storage_sid *sid, int rounds)
{
    storage_reader *r;
    if (storage_reader_open(st, &r) != 0)
        return 0;
    int ok = 1;
    for (uint32_t s = 0; s < NSERIES && ok; s += 7) {
        storage_iter *it;
        if (storage_iter_open(r, sid[s], t0, t0 + 60 * (int64_t)rounds, &it) != 0) {
            ok = 0;
            break;
        }
        storage_point p;
        int n = 0;
        while (ok && storage_iter_next(it, &p) == 1) {
            ok = p.ts == t0 + 60 * n && p.v[STORAGE_COL_AVG] == (double)s + n * 0.5;
            n++;
        }
        storage_iter_close(it);
        ok = ok && n == rounds;
    }
    storage_reader_close(r);
    return ok;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    CHECK_EQ_INT(st->head_quiet_points, STORAGE_HEAD_MAX_POINTS);
    CHECK_EQ_INT(st->head_load_points, STORAGE_HEAD_LOAD_POINTS);
    static storage_sid sid[NSERIES];
    for (uint32_t s = 0; s < NSERIES; s++) {
        char key[64];
        snprintf(key, sizeof key, "MN%05u:a21026:min", s);
        CHECK_EQ_INT(storage_series_ensure(st, key, STORAGE_IV_MIN, &sid[s]), 0);
    }
    pthread_mutex_lock(&st->head_mu);
    st->head_quiet_points = 20 * NSERIES;
    st->head_load_points = 60 * NSERIES;
    pthread_mutex_unlock(&st->head_mu);
    int failed = 0;

    /* 40 rounds: past the quiet threshold, under the load cap. Nothing is sealed under
     * load; every point is committed (acknowledged) from the log. */
    feed(st, sid, 0, 40, &failed);
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(look(st).load, 0);
    CHECK(all_there(st, sid, 40));

    /* Then ingest pauses: the writer seals the whole head, slice by slice. */
    CHECK(wait_empty(st));
    seen s = look(st);
    CHECK(s.quiet > 0);
    CHECK_EQ_INT(s.load, 0);
    CHECK_EQ_INT(s.head, 0);
    CHECK(all_there(st, sid, 40));

    /* 100 rounds back to back: the head passes its load cap and is sealed under load. */
    uint64_t quiet_before = s.quiet;
    feed(st, sid, 40, 140, &failed);
    CHECK_EQ_INT(storage_sync(st), 0);
    CHECK_EQ_INT(failed, 0);
    int loaded = 0;
    for (int i = 0; i < 600 && !loaded; i++) {
        loaded = look(st).load > 0;
        if (!loaded)
            usleep(100000);
    }
    CHECK(loaded);
    CHECK(wait_empty(st));
    s = look(st);
    CHECK(s.quiet >= quiet_before);
    CHECK(all_there(st, sid, 140));
    storage_stats ss;
    CHECK_EQ_INT(storage_get_stats(st, &ss), 0);
    CHECK_EQ_INT(ss.points, (uint64_t)NSERIES * 140);
    CHECK_EQ_INT(ss.wal_points, 0);

    /* A small head under the quiet threshold stays in the head (and the log) while quiet. */
    feed(st, sid, 140, 142, &failed);
    CHECK_EQ_INT(storage_sync(st), 0);
    usleep(300000);
    s = look(st);
    CHECK_EQ_INT(s.head, 2 * NSERIES);
    CHECK(all_there(st, sid, 142));
    storage_close(st);

    /* Reopened, the log gives the head back, and every point is there. */
    CHECK_EQ_INT(storage_open(dir, NULL, &st), 0);
    CHECK(all_there(st, sid, 142));
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
