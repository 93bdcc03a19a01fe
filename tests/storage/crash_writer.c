/* crash_writer: the victim of test_kill9.py.
 *
 *   crash_writer write DIR     writes batches until killed; after each commit prints one line
 *                              "A <series> <k_from> <k_to>" per series of the batch
 *   crash_writer verify DIR    opens the store read-only, reads acknowledged ranges "A s from to" on stdin and checks that
 *                              every point is stored with its value, then runs storage_check;
 *                              exit status 0 when all is well
 *
 * Point k of series s has timestamp T0 + 60 k and value s * 1e6 + k, so any point can be
 * checked without remembering it. Writes mix small submitted batches, late rewrites of
 * earlier points (same values), and now and then a direct write large enough to bypass the
 * log, so a kill can land in a group commit, a checkpoint or a direct write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

#define NS 4
#define T0 1700000000

typedef struct ack {
    int k_from, k_to;
} ack;

static void on_commit(void *arg, int status)
{
    ack *a = arg;
    if (status == 0) {
        for (int s = 0; s < NS; s++)
            printf("A %d %d %d\n", s, a->k_from, a->k_to);
        fflush(stdout);
    }
    free(a);
}

static storage_point point(int s, int k)
{
    storage_point p;
    memset(&p, 0, sizeof p);
    p.ts = T0 + 60 * (int64_t)k;
    p.v[0] = s * 1e6 + k;
    p.v[2] = k % 7;
    p.mask = 1 | 4;
    p.flag = 'N';
    return p;
}

static int open_series(const char *dir, bool ro, storage **st, storage_sid *sids)
{
    storage_options o = {.read_only = ro};
    int rc = storage_open(dir, &o, st);
    for (int s = 0; rc == 0 && s < NS; s++) {
        char key[32];
        snprintf(key, sizeof key, "CRASH%d:a21026:min", s);
        rc = storage_series_ensure(*st, key, STORAGE_IV_AUTO, &sids[s]);
        if (rc) { /* read-only and never created */
            storage_close(*st);
            *st = NULL;
        }
    }
    return rc;
}

static int do_write(const char *dir)
{
    storage *st;
    storage_sid sids[NS];
    if (open_series(dir, false, &st, sids))
        return 2;
    /* Continue after the newest point of series 0 (acknowledged or not). */
    int k = 0;
    storage_reader *r;
    storage_point last;
    if (storage_reader_open(st, &r) == 0) {
        if (storage_latest(r, sids[0], &last) == 0)
            k = (int)((last.ts - T0) / 60) + 1;
        storage_reader_close(r);
    }
    for (unsigned round = 0;; round++) {
        storage_batch *b = storage_batch_create();
        int n = round % 40 == 39 ? 6000 : 10;
        for (int s = 0; s < NS; s++)
            for (int i = 0; i < n; i++) {
                storage_point p = point(s, k + i);
                storage_batch_add(b, sids[s], &p);
            }
        if (round % 7 == 3 && k > 3000) /* late rewrites of sealed or logged points */
            for (int i = 0; i < 5; i++) {
                storage_point p = point(1, k - 2500 + i * 300);
                storage_batch_add(b, sids[1], &p);
            }
        if (n >= 6000) {
            if (storage_write(st, b) == 0) {
                for (int s = 0; s < NS; s++)
                    printf("A %d %d %d\n", s, k, k + n - 1);
                fflush(stdout);
            }
            storage_batch_destroy(b);
        } else {
            ack *a = malloc(sizeof *a);
            a->k_from = k;
            a->k_to = k + n - 1;
            if (storage_submit(st, b, on_commit, a) != 0)
                return 3;
        }
        k += n;
        if (round % 64 == 63)
            storage_sync(st); /* keep the queue short */
    }
}

static int do_verify(const char *dir)
{
    storage *st;
    storage_sid sids[NS];
    /* Read-only, so that the log stays for the next writer to replay. */
    if (open_series(dir, true, &st, sids)) {
        int c = getchar(); /* killed before its first commit: fine if nothing was acknowledged */
        printf("verify: cannot open %s%s\n", dir, c == EOF ? " (nothing acknowledged)" : "");
        return c == EOF ? 0 : 2;
    }
    storage_reader *r;
    if (storage_reader_open(st, &r))
        return 2;
    int s, from, to;
    long missing = 0, checked = 0;
    char line[128];
    while (fgets(line, sizeof line, stdin))
        if (sscanf(line, "A %d %d %d", &s, &from, &to) == 3 && s >= 0 && s < NS) {
            storage_iter *it;
            if (storage_iter_open(r, sids[s], T0 + 60 * (int64_t)from, T0 + 60 * (int64_t)to, &it))
                return 2;
            storage_point p;
            int k = from;
            while (storage_iter_next(it, &p) == 1) {
                storage_point want = point(s, k);
                if (p.ts != want.ts || p.v[0] != want.v[0] || p.v[2] != want.v[2])
                    break;
                k++;
            }
            storage_iter_close(it);
            checked += to - from + 1;
            if (k != to + 1) {
                if (missing < 5)
                    printf("verify: series %d: acknowledged %d..%d, found up to %d\n", s, from,
                           to, k - 1);
                missing += to + 1 - k;
            }
        }
    storage_reader_close(r);
    int faults = storage_check(st, NULL, NULL);
    storage_close(st);
    printf("verify: %ld points checked, %ld missing, check %d\n", checked, missing, faults);
    return missing == 0 && faults == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        return do_write(argv[2]);
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return do_verify(argv[2]);
    fprintf(stderr, "usage: crash_writer write|verify DIR\n");
    return 2;
}
