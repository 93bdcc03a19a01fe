/* Readers on other threads while the writer commits, checkpoints and grows the map: every
 * read sees a sorted, duplicate-free series that holds at least every point acknowledged
 * before the read began (the head and the chunks never hide a point between them). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "st_util.h"
#include "tap.h"

#define NSERIES 8
static storage *st;
static storage_sid sids[NSERIES];
static atomic_long acked[NSERIES]; /* points 0..acked-1 of each series are durable */
static atomic_int stop;
static atomic_long reads, bad_reads;
static const int64_t t0 = 1700000000 - 1700000000 % 86400;

static void *reader_main(void *arg)
{
    (void)arg;
    storage_point *pts = malloc(200000 * sizeof *pts);
    while (!atomic_load(&stop)) {
        int s = (int)(atomic_load(&reads) % NSERIES);
        long before = atomic_load(&acked[s]);
        storage_reader *r;
        storage_iter *it;
        if (storage_reader_open(st, &r) || storage_iter_open(r, sids[s], INT64_MIN, INT64_MAX, &it)) {
            atomic_fetch_add(&bad_reads, 1);
            break;
        }
        long n = 0;
        int rc;
        while ((rc = storage_iter_next(it, &pts[n])) == 1 && n < 199999)
            n++;
        storage_point last;
        int lrc = storage_latest(r, sids[s], &last);
        storage_iter_close(it);
        storage_reader_close(r);
        int ok = rc == 0 && n >= before;
        for (long i = 0; ok && i < n; i++)
            ok = pts[i].ts == t0 + 60 * i && pts[i].v[0] == (double)i;
        if (before > 0)
            ok = ok && lrc == 0 && last.ts >= t0 + 60 * (before - 1);
        if (!ok) {
            printf("# series %d: rc %d n %ld before %ld\n", s, rc, n, before);
            atomic_fetch_add(&bad_reads, 1);
        }
        atomic_fetch_add(&reads, 1);
    }
    free(pts);
    return NULL;
}

typedef struct ack {
    int s;
    long upto;
} ack;

static void on_commit(void *arg, int status)
{
    ack *a = arg;
    if (status == 0 && a->upto > atomic_load(&acked[a->s]))
        atomic_store(&acked[a->s], a->upto);
    free(a);
}

int main(void)
{
    const char *dir = st_tmpdir();
    storage_options o = {.map_size = 256 * 1024};
    CHECK_EQ_INT(storage_open(dir, &o, &st), 0);
    for (int i = 0; i < NSERIES; i++) {
        char k[32];
        snprintf(k, sizeof k, "MN%d:a21026:min", i);
        storage_series_ensure(st, k, STORAGE_IV_AUTO, &sids[i]);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader_main, NULL);
    long next[NSERIES] = {0};
    int failed = 0;
    for (int round = 0; round < 400; round++) {
        int s = round % NSERIES;
        storage_batch *b = storage_batch_create();
        int cnt = round % 50 == 49 ? 25000 : 1 + round % 40; /* now and then a direct write */
        for (int i = 0; i < cnt; i++) {
            storage_point p = st_pt(t0 + 60 * next[s], (double)next[s]);
            next[s]++;
            storage_batch_add(b, sids[s], &p);
        }
        if (cnt >= 20000) {
            failed += storage_write(st, b) != 0;
            atomic_store(&acked[s], next[s]);
            storage_batch_destroy(b);
        } else {
            ack *a = malloc(sizeof *a);
            a->s = s;
            a->upto = next[s];
            failed += storage_submit(st, b, on_commit, a) != 0;
        }
    }
    storage_sync(st);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(failed, 0);
    CHECK(atomic_load(&reads) > 10);
    CHECK_EQ_INT(atomic_load(&bad_reads), 0);
    printf("# %ld reads\n", atomic_load(&reads));
    storage_close(st);
    st_rmdir(dir);
    return tap_done();
}
