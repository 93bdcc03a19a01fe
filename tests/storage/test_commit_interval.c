/* The commit interval: submitted batches wait up to storage_options.commit_interval_ms for
 * more to join their group commit, so two batches submitted a moment apart commit in one
 * transaction; a caller blocked in storage_write or storage_sync does not wait for it. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "st_util.h"
#include "tap.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done, failed;

static void on_commit(void *arg, int status)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    done++;
    failed += status != 0;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void submit_one(storage *st, storage_sid sid, int64_t ts)
{
    storage_batch *b = storage_batch_create();
    storage_point p = st_pt(ts, 1.5);
    storage_batch_add(b, sid, &p);
    CHECK_EQ_INT(storage_submit(st, b, on_commit, NULL), 0);
}

static uint64_t commits(storage *st)
{
    storage_stats s;
    storage_get_stats(st, &s);
    return s.commits;
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    storage_options o = {.commit_interval_ms = 2000};
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    storage_sid sid;
    storage_series_ensure(st, "MN:a21026:min", STORAGE_IV_AUTO, &sid);
    CHECK_EQ_INT(storage_sync(st), 0); /* the series record, committed now */
    uint64_t c0 = commits(st);

    /* Two submits 50 ms apart: one group commit, after the first has waited a while. */
    double t0 = now_s();
    submit_one(st, sid, 1700000000);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    submit_one(st, sid, 1700000060);
    pthread_mutex_lock(&mu);
    while (done < 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    double waited = now_s() - t0;
    CHECK_EQ_INT(failed, 0);
    printf("# two submits committed after %.3f s in %llu commits\n", waited,
           (unsigned long long)(commits(st) - c0));
    CHECK_EQ_INT((long long)(commits(st) - c0), 1);
    CHECK(waited >= 1.5); /* the group waited for the interval */

    /* A blocked caller commits at once, whatever the interval. */
    t0 = now_s();
    storage_batch *b = storage_batch_create();
    storage_point p = st_pt(1700000120, 2.5);
    storage_batch_add(b, sid, &p);
    CHECK_EQ_INT(storage_write(st, b), 0);
    CHECK_EQ_INT(storage_sync(st), 0);
    double sync_s = now_s() - t0;
    printf("# storage_write and storage_sync took %.3f s\n", sync_s);
    CHECK(sync_s < 1.5);
    storage_batch_destroy(b);

    /* Closing does not wait for the interval either. */
    submit_one(st, sid, 1700000180);
    t0 = now_s();
    storage_close(st);
    CHECK(now_s() - t0 < 1.5);
    CHECK_EQ_INT(done, 3);

    storage_options ro = {.read_only = true};
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    storage_point *got;
    CHECK_EQ_INT(st_read_all(st, sid, INT64_MIN, INT64_MAX, &got), 4);
    free(got);
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
