/* cmd_import.c: `plume import`, bulk loading of points CSV files into a store.
 *
 * Backfills and re-imports are large (years of hourly data for thousands of series), so the
 * import is a two-stage pipeline: this thread reads and parses lines into one batch while a
 * writer thread commits the previous batch with storage_write_direct (straight into chunks,
 * never through the write-ahead log, whatever the batch size). Batches are large
 * (DEFAULT_BATCH_POINTS) because one batch packs the store densest. Each batch commits
 * atomically and is durable when the write returns, so a crash leaves whole batches or nothing of them. Bad lines are counted and
 * skipped, the first few reported with file and line; the rest of the input imports. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "storage.h"

#define READ_BUF_LEN (8u << 20)       /* bytes read at a time; also the longest line */
/* Points per committed batch: 8 Mi points, ~256 MiB. The store writes a batch window by
 * window in key order, appending to the end of the chunk table where the windows are new
 * and packing its pages full; batches whose windows interleave with what an earlier batch
 * wrote must be merged into place instead, which leaves pages part empty. So a batch takes
 * as much of the input as memory allows, and typical imports commit in one. */
#define DEFAULT_BATCH_POINTS (8u << 20)
#define MAX_REPORTED 10               /* bad lines reported one by one */

/* Series key -> id, so each line costs a hash lookup rather than a catalog lookup. */
typedef struct series_slot {
    char *key; /* owned; NULL for an empty slot */
    size_t len;
    uint64_t hash;
    storage_sid sid;
} series_slot;

typedef struct importer {
    storage *st;
    series_slot *slots; /* open addressing, cap a power of two, at most half full */
    size_t cap, used;
    storage_batch *cur;  /* being filled by the parsing thread */
    size_t batch_points;
    uint64_t points, rejected;
    int err; /* first failure (storage or input), 0 if none */

    /* The hand-off to the writer thread, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    storage_batch *queued; /* handed to the writer, non-NULL until it is committed */
    storage_batch *spare;  /* an empty batch the writer gave back */
    bool done;
    int write_err;
} importer;

static uint64_t hash_key(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int cache_grow(importer *im)
{
    size_t cap = im->cap ? im->cap * 2 : 1024;
    series_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < im->cap; i++) {
        if (!im->slots[i].key)
            continue;
        size_t j = im->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = im->slots[i];
    }
    free(im->slots);
    im->slots = slots;
    im->cap = cap;
    return 0;
}

/* The id of series key (len bytes, not NUL-terminated), created in the store if new. */
static int series_id(importer *im, const char *key, size_t len, storage_sid *out)
{
    uint64_t h = hash_key(key, len);
    size_t j = h & (im->cap - 1);
    for (; im->slots[j].key; j = (j + 1) & (im->cap - 1)) {
        series_slot *s = &im->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            *out = s->sid;
            return 0;
        }
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, key, len);
    copy[len] = '\0';
    storage_sid sid;
    int rc = storage_series_ensure(im->st, copy, STORAGE_IV_AUTO, &sid);
    if (rc != 0) {
        free(copy);
        return rc;
    }
    im->slots[j] = (series_slot){copy, len, h, sid};
    *out = sid;
    if (++im->used * 2 > im->cap && (rc = cache_grow(im)) != 0)
        return rc;
    return 0;
}

static void *writer_main(void *arg)
{
    importer *im = arg;
    pthread_mutex_lock(&im->mu);
    for (;;) {
        while (!im->queued && !im->done)
            pthread_cond_wait(&im->cv, &im->mu);
        if (!im->queued)
            break;
        storage_batch *b = im->queued;
        pthread_mutex_unlock(&im->mu);
        int rc = storage_write_direct(im->st, b);
        storage_batch_clear(b);
        pthread_mutex_lock(&im->mu);
        if (rc != 0 && im->write_err == 0)
            im->write_err = rc;
        im->spare = b;
        im->queued = NULL;
        pthread_cond_broadcast(&im->cv);
    }
    pthread_mutex_unlock(&im->mu);
    return NULL;
}

/* Hands the current batch to the writer once it has committed the previous one. */
static int hand_off(importer *im)
{
    if (storage_batch_points(im->cur) == 0)
        return 0;
    pthread_mutex_lock(&im->mu);
    while (im->queued)
        pthread_cond_wait(&im->cv, &im->mu);
    int rc = im->write_err;
    if (rc == 0) {
        im->queued = im->cur;
        im->cur = im->spare;
        im->spare = NULL;
        pthread_cond_broadcast(&im->cv);
    }
    pthread_mutex_unlock(&im->mu);
    return rc;
}

static void report_bad(importer *im, const char *file, uint64_t lineno, const char *line,
                       size_t len, const char *why)
{
    if (++im->rejected > MAX_REPORTED)
        return;
    int shown = len > 80 ? 80 : (int)len;
    fprintf(stderr, "plume import: %s:%llu: %s: '%.*s%s'\n", file, (unsigned long long)lineno,
            why, shown, line, len > 80 ? "..." : "");
}

/* Parses one line and adds its point to the current batch. */
static int import_line(importer *im, const char *file, uint64_t lineno, const char *line,
                       size_t len, storage_point *pt)
{
    engine_csv_point p;
    const char *why;
    int rc = engine_points_csv_parse(line, len, &p, &why);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        /* A header line names the columns; it is no data and no error. */
        if (lineno == 1 && len >= 7 && memcmp(line, "series,", 7) == 0)
            return 0;
        report_bad(im, file, lineno, line, len, why);
        return 0;
    }
    storage_sid sid;
    if ((rc = series_id(im, p.series, p.series_len, &sid)) != 0) {
        report_bad(im, file, lineno, line, len, "series key refused by the store");
        return rc == -EINVAL ? 0 : rc;
    }
    pt->ts = p.ts;
    pt->v[STORAGE_COL_AVG] = p.value;
    pt->flag = p.flag;
    if ((rc = storage_batch_add(im->cur, sid, pt)) != 0)
        return rc;
    im->points++;
    if (storage_batch_points(im->cur) >= im->batch_points)
        return hand_off(im);
    return 0;
}

/* Reads fd to its end, line by line. */
static int import_fd(importer *im, int fd, const char *file, char *buf)
{
    storage_point pt;
    memset(&pt, 0, sizeof pt);
    pt.mask = 1u << STORAGE_COL_AVG;
    size_t have = 0;
    uint64_t lineno = 0;
    bool eof = false, skipping = false; /* skipping: the rest of an over-long line */
    while (!eof) {
        ssize_t n = read(fd, buf + have, READ_BUF_LEN - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "plume import: %s: %s\n", file, strerror(errno));
            return -errno;
        }
        eof = n == 0;
        have += (size_t)n;
        char *p = buf, *end = buf + have;
        for (;;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl && !(eof && p < end))
                break;
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            lineno++;
            int rc = skipping ? 0 : import_line(im, file, lineno, p, len, &pt);
            skipping = false;
            if (rc != 0)
                return rc;
            p += len + (nl != NULL);
        }
        have = (size_t)(end - p);
        if (have == READ_BUF_LEN) { /* no newline in a full buffer */
            if (!skipping)
                report_bad(im, file, lineno + 1, buf, have, "line longer than 8 MiB");
            skipping = true;
            have = 0;
        } else if (have) {
            memmove(buf, p, have);
        }
    }
    return 0;
}

static int import_file(importer *im, const char *path, char *buf)
{
    if (strcmp(path, "-") == 0)
        return import_fd(im, 0, "<stdin>", buf);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "plume import: %s: %s\n", path, strerror(e));
        return -e;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = import_fd(im, fd, path, buf);
    close(fd);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume import --db DIR [--batch N] FILE...\n\n"
            "Imports points CSV files (FILE '-' reads standard input) into the store in DIR,\n"
            "creating it if needed. One point per line:\n\n"
            "  series,timestamp,value[,flag]\n\n"
            "timestamp: Unix seconds or ISO 8601 (China local time without a zone);\n"
            "flag: one of N F M S D C T B (default N). Series are created as needed; their\n"
            "interval class comes from a :rtd, :min, :hour or :day field in the key (hour\n"
            "otherwise). Points commit in batches of N (default %d), each durable when\n"
            "committed; one batch packs the store densest. Bad lines are skipped and\n"
            "counted; the first %d are reported.\n"
            "Prints one JSON line: {\"points\":N,\"series\":S,\"rejected\":R,\"seconds\":T}.\n",
            (int)DEFAULT_BATCH_POINTS, MAX_REPORTED);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(importer *im, const char *db, char **files, int nfiles)
{
    char *buf = malloc(READ_BUF_LEN);
    pthread_t writer;
    bool started = false;
    int rc = -ENOMEM;
    im->cur = storage_batch_create();
    im->spare = storage_batch_create();
    if (!buf || !im->cur || !im->spare || cache_grow(im) != 0)
        goto fail;
    if ((rc = storage_open(db, NULL, &im->st)) != 0) {
        fprintf(stderr, "plume import: cannot open store %s: %s\n", db, storage_strerror(rc));
        goto fail;
    }
    if ((rc = -pthread_create(&writer, NULL, writer_main, im)) != 0)
        goto fail;
    started = true;
    for (int i = 0; i < nfiles && rc == 0; i++)
        rc = import_file(im, files[i], buf);
    if (rc == 0)
        rc = hand_off(im);
fail:
    if (started) {
        pthread_mutex_lock(&im->mu);
        im->done = true;
        pthread_cond_broadcast(&im->cv);
        pthread_mutex_unlock(&im->mu);
        pthread_join(writer, NULL);
        if (rc == 0)
            rc = im->write_err;
        if (im->write_err)
            fprintf(stderr, "plume import: commit failed: %s\n",
                    storage_strerror(im->write_err));
    }
    storage_close(im->st);
    storage_batch_destroy(im->cur);
    storage_batch_destroy(im->spare);
    free(buf);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    long batch = (long)DEFAULT_BATCH_POINTS;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'b':
            batch = strtol(optarg, NULL, 10);
            if (batch < 1) {
                fprintf(stderr, "plume import: --batch: not a positive number: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db || optind >= argc) {
        usage(stderr);
        return 2;
    }

    importer im = {.batch_points = (size_t)batch};
    pthread_mutex_init(&im.mu, NULL);
    pthread_cond_init(&im.cv, NULL);
    double t0 = now_s();
    int rc = run(&im, db, argv + optind, argc - optind);
    double secs = now_s() - t0;
    if (im.rejected > MAX_REPORTED)
        fprintf(stderr, "plume import: %llu more bad lines not shown\n",
                (unsigned long long)(im.rejected - MAX_REPORTED));
    if (rc == 0)
        printf("{\"points\":%llu,\"series\":%zu,\"rejected\":%llu,\"seconds\":%.3f}\n",
               (unsigned long long)im.points, im.used, (unsigned long long)im.rejected, secs);
    for (size_t i = 0; i < im.cap; i++)
        free(im.slots[i].key);
    free(im.slots);
    pthread_mutex_destroy(&im.mu);
    pthread_cond_destroy(&im.cv);
    return rc == 0 ? 0 : 1;
}
