/* A store opened read-only beside a writing process sees what that process has committed to
 * its write-ahead log but not sealed into chunks, merged with the chunks, in one snapshot:
 * the writer (a child process) commits points through the log and keeps the store open; the
 * reader (this process) opens it read-only and must read every point, the later write of a
 * timestamp winning, and nothing of series it does not know. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st_util.h"
#include "tap.h"

#define T0 1767542400

static storage_point pt(int64_t ts, double v)
{
    storage_point p = {.ts = ts, .mask = 1u << STORAGE_COL_AVG, .flag = 'N'};
    p.v[STORAGE_COL_AVG] = v;
    return p;
}

/* The child: sealed chunks first (a direct write), then points through the log. */
static int writer(const char *dir, int ready_fd, int done_fd)
{
    storage *st;
    storage_sid a, b;
    if (storage_open(dir, NULL, &st) || storage_series_ensure(st, "A:a21026:hour", -1, &a) ||
        storage_series_ensure(st, "B:a21026:hour", -1, &b))
        return 1;
    storage_batch *bt = storage_batch_create();
    for (int i = 0; i < 30000; i++) { /* >= 20,000 points: straight into chunks */
        storage_point p = pt(T0 + (int64_t)(i % 100) * 3600, i % 100);
        storage_batch_add(bt, i < 15000 ? a : b, &p);
    }
    if (storage_write(st, bt))
        return 1;
    for (int i = 100; i < 110; i++) { /* ten more hours of A through the log */
        storage_point p = pt(T0 + (int64_t)i * 3600, i);
        storage_batch_add(bt, a, &p);
    }
    storage_point p = pt(T0 + 5 * 3600, 555); /* a correction of a sealed hour */
    storage_batch_add(bt, a, &p);
    p = pt(T0 + 105 * 3600, 1050); /* and of a logged one, later in the log */
    if (storage_write(st, bt))
        return 1;
    storage_batch_add(bt, a, &p);
    storage_sid c;
    storage_series_ensure(st, "C:a21026:hour", -1, &c); /* created after the reader opens */
    if (storage_write(st, bt))
        return 1;
    storage_batch_destroy(bt);
    char x = 1;
    if (write(ready_fd, &x, 1) != 1 || read(done_fd, &x, 1) != 1)
        return 1;
    storage_close(st);
    return 0;
}

int main(void)
{
    const char *dir = st_tmpdir();
    int ready[2], done[2];
    if (pipe(ready) || pipe(done))
        return 2;
    pid_t pid = fork();
    if (pid == 0)
        _exit(writer(dir, ready[1], done[0]));
    char x;
    CHECK(read(ready[0], &x, 1) == 1);
    storage_options ro = {.read_only = true};
    storage *st;
    CHECK_EQ_INT(storage_open(dir, &ro, &st), 0);
    storage_sid a, b;
    CHECK_EQ_INT(storage_series_lookup(st, "A:a21026:hour", &a), 0);
    CHECK_EQ_INT(storage_series_lookup(st, "B:a21026:hour", &b), 0);
    storage_reader *r;
    CHECK_EQ_INT(storage_reader_open(st, &r), 0);
    storage_iter *it;
    storage_point p;
    int n = 0, wrong = 0;
    CHECK_EQ_INT(storage_iter_open(r, a, T0, T0 + 200 * 3600, &it), 0);
    while (storage_iter_next(it, &p) == 1) {
        double want = n == 5 ? 555 : n == 105 ? 1050 : n;
        wrong += p.ts != T0 + (int64_t)n * 3600 || p.v[STORAGE_COL_AVG] != want;
        n++;
    }
    storage_iter_close(it);
    CHECK_EQ_INT(n, 110);  /* 100 sealed hours and 10 from the log */
    CHECK_EQ_INT(wrong, 0); /* in order, later writes winning */
    CHECK_EQ_INT(storage_latest(r, a, &p), 0);
    CHECK_EQ_INT(p.ts, T0 + 109 * 3600);
    n = 0;
    CHECK_EQ_INT(storage_iter_open(r, b, T0 + 10 * 3600, T0 + 19 * 3600, &it), 0);
    while (storage_iter_next(it, &p) == 1)
        n++;
    storage_iter_close(it);
    CHECK_EQ_INT(n, 10);
    storage_reader_close(r);
    storage_close(st);
    CHECK(write(done[1], &x, 1) == 1);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    st_rmdir(dir);
    return tap_done();
}
