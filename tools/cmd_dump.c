/* cmd_dump.c: `plume dump`, a store's points back out as points CSV.
 *
 * The output is what `plume import` reads (series,unix_seconds,value,flag), sorted by series
 * key and then time, each value printed as the shortest text that reads back to the same
 * double, so an import followed by a dump reproduces the input value for value. It is also
 * how a store is checked by eye, diffed, or moved. The store is opened read-only, from one
 * snapshot, so a running server keeps writing meanwhile. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "storage.h"

#define OUT_BUF_LEN (1u << 20)

typedef struct dump_series {
    storage_sid sid;
    char key[ENGINE_SERIES_KEY_MAX + 1];
} dump_series;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const dump_series *)a)->key, ((const dump_series *)b)->key);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume dump --db DIR [--from T] [--to T] [--column NAME] [SERIES...]\n\n"
            "Writes the points of the store in DIR as points CSV on standard output:\n\n"
            "  series,unix_seconds,value,flag\n\n"
            "sorted by series key, then time; values in their shortest exact form. Without\n"
            "SERIES every series is dumped. --from/--to bound the time (inclusive; Unix\n"
            "seconds or ISO 8601, China local time without a zone). --column picks the value\n"
            "column (avg by default; min, max, cou, zsavg, zsmin, zsmax); points without it\n"
            "are left out. A point without a flag is written with N.\n");
}

/* The series to dump, sorted by key; *n is their count. */
static int collect(storage *st, char **names, int nnames, dump_series **out, size_t *n)
{
    size_t count = nnames ? (size_t)nnames : storage_series_count(st);
    dump_series *ds = calloc(count ? count : 1, sizeof *ds);
    if (!ds)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        int rc = 0;
        if (nnames) {
            rc = storage_series_lookup(st, names[i], &ds[i].sid);
            if (rc == -ENOENT)
                fprintf(stderr, "plume dump: no series '%s'\n", names[i]);
        } else {
            ds[i].sid = (storage_sid)(i + 1);
        }
        if (rc == 0 || !nnames)
            rc = storage_series_key(st, ds[i].sid, ds[i].key, sizeof ds[i].key);
        if (rc != 0) {
            free(ds);
            return rc;
        }
    }
    qsort(ds, count, sizeof *ds, by_key);
    *out = ds;
    *n = count;
    return 0;
}

static int dump_one(storage_reader *r, const dump_series *s, int col, int64_t from, int64_t to,
                    char *out, size_t *used)
{
    storage_iter *it;
    int rc = storage_iter_open(r, s->sid, from, to, &it);
    if (rc != 0)
        return rc;
    size_t klen = strlen(s->key);
    storage_point p;
    while ((rc = storage_iter_next(it, &p)) == 1) {
        if (!(p.mask & (1u << col)))
            continue;
        if (*used + klen + 64 > OUT_BUF_LEN) {
            if (fwrite(out, 1, *used, stdout) != *used) {
                rc = -errno;
                break;
            }
            *used = 0;
        }
        *used += engine_points_csv_format(s->key, klen, p.ts, p.v[col], p.flag, out + *used);
    }
    storage_iter_close(it);
    return rc < 0 ? rc : 0;
}

static int dump(const char *db, int col, int64_t from, int64_t to, char **names, int nnames)
{
    storage *st = NULL;
    storage_reader *r = NULL;
    dump_series *ds = NULL;
    size_t n = 0, used = 0;
    char *out = malloc(OUT_BUF_LEN);
    storage_options opts = {.read_only = true};
    int rc = -ENOMEM;
    if (!out)
        goto fail;
    if ((rc = storage_open(db, &opts, &st)) != 0) {
        fprintf(stderr, "plume dump: cannot open store %s: %s\n", db, storage_strerror(rc));
        goto fail;
    }
    if ((rc = collect(st, names, nnames, &ds, &n)) != 0)
        goto fail;
    if ((rc = storage_reader_open(st, &r)) != 0)
        goto fail;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = dump_one(r, &ds[i], col, from, to, out, &used);
    if (rc == 0 && (fwrite(out, 1, used, stdout) != used || fflush(stdout) != 0))
        rc = -EIO;
fail:
    if (rc != 0 && rc != -ENOENT)
        fprintf(stderr, "plume dump: %s\n", storage_strerror(rc));
    storage_reader_close(r);
    storage_close(st);
    free(ds);
    free(out);
    return rc;
}

int cmd_dump(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},   {"column", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    int64_t from = INT64_MIN, to = INT64_MAX;
    int col = STORAGE_COL_AVG, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f': from = cli_time_arg("--from", optarg); break;
        case 't': to = cli_time_arg("--to", optarg); break;
        case 'c':
            if ((col = storage_col_parse(optarg)) < 0) {
                fprintf(stderr, "plume dump: --column: unknown column '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db) {
        usage(stderr);
        return 2;
    }
    return dump(db, col, from, to, argv + optind, argc - optind) == 0 ? 0 : 1;
}
