/* st_util.h: what the storage tests share: a fresh temporary directory per test, its
 * removal, and building points. */
#ifndef PLUME_TESTS_ST_UTIL_H
#define PLUME_TESTS_ST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

/* Creates a temporary directory; the path is static until the next call. */
static inline const char *st_tmpdir(void)
{
    static char path[256];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/plume-st-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}

/* Removes a directory made by st_tmpdir and its files (no subdirectories). */
static inline void st_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static inline storage_point st_pt(int64_t ts, double avg)
{
    storage_point p;
    memset(&p, 0, sizeof p);
    p.ts = ts;
    p.v[STORAGE_COL_AVG] = avg;
    p.mask = 1u << STORAGE_COL_AVG;
    p.flag = 'N';
    return p;
}

static inline int st_pt_equal(const storage_point *a, const storage_point *b)
{
    if (a->ts != b->ts || a->mask != b->mask || a->flag != b->flag)
        return 0;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if ((a->mask >> c & 1) && memcmp(&a->v[c], &b->v[c], sizeof(double)) != 0)
            return 0;
    return 1;
}

/* Reads every point of sid in [from, to] into a malloc'd array; returns the count or -1. */
static inline long st_read_all(storage *st, storage_sid sid, int64_t from, int64_t to,
                               storage_point **out)
{
    storage_reader *r;
    storage_iter *it;
    *out = NULL;
    if (storage_reader_open(st, &r))
        return -1;
    if (storage_iter_open(r, sid, from, to, &it)) {
        storage_reader_close(r);
        return -1;
    }
    size_t n = 0, cap = 0;
    storage_point p;
    int rc;
    while ((rc = storage_iter_next(it, &p)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            *out = realloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = p;
    }
    storage_iter_close(it);
    storage_reader_close(r);
    return rc < 0 ? -1 : (long)n;
}

#endif
