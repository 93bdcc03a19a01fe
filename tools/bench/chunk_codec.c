/* chunk_codec.c: measures the chunk codec on a points file, the way the store will cut it.
 *
 *   chunk_codec POINTS.csv [--class rtd|min|hour|day] [--repeat N]
 *
 * POINTS.csv has lines "series,unix_seconds,value". Points are grouped by series and cut
 * into the windows of the interval class (hour: 64 days, min: 1 day, rtd: 6 h, day: 1,024
 * days; a duplicate timestamp keeps the last value). Every chunk is encoded, decoded whole
 * and decoded as its AVG column, and checked bit for bit; the figures come out as one JSON
 * line: sizes in bytes per point and CPU times in nanoseconds per point (the decode times
 * are the best of --repeat runs). Exit status 1 if any chunk fails to round-trip. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk.h"

typedef struct rec {
    uint32_t sid;
    int64_t ts;
    double v;
} rec;

typedef struct names {
    char **key;
    uint32_t *id;
    size_t cap, n;
} names;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static uint32_t name_id(names *t, const char *s)
{
    if (t->n * 2 >= t->cap) {
        names big = {calloc(t->cap * 2 + 64, sizeof(char *)),
                     calloc(t->cap * 2 + 64, sizeof(uint32_t)), t->cap * 2 + 64, 0};
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->key[i])
                continue;
            size_t j = hash_str(t->key[i]) % big.cap;
            while (big.key[j])
                j = (j + 1) % big.cap;
            big.key[j] = t->key[i];
            big.id[j] = t->id[i];
        }
        big.n = t->n;
        free(t->key);
        free(t->id);
        *t = big;
    }
    size_t j = hash_str(s) % t->cap;
    while (t->key[j]) {
        if (strcmp(t->key[j], s) == 0)
            return t->id[j];
        j = (j + 1) % t->cap;
    }
    t->key[j] = strdup(s);
    t->id[j] = (uint32_t)t->n++;
    return t->id[j];
}

static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int same_point(const storage_point *a, const storage_point *b)
{
    return a->ts == b->ts && a->mask == b->mask && a->flag == b->flag &&
           memcmp(&a->v[0], &b->v[0], sizeof(double)) == 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *cls = "hour";
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--class") == 0 && i + 1 < argc)
            cls = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else
            path = argv[i];
    }
    int64_t window = strcmp(cls, "rtd") == 0   ? 6 * 3600
                     : strcmp(cls, "min") == 0 ? 86400
                     : strcmp(cls, "day") == 0 ? 1024 * 86400
                                               : 64 * 86400;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "usage: chunk_codec POINTS.csv [--class rtd|min|hour|day] [--repeat N]\n");
        return 2;
    }
    names tab = {0};
    size_t n = 0, cap = 1 << 20;
    rec *r = malloc(cap * sizeof *r);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2)
            continue;
        *c1 = 0;
        if (n == cap)
            r = realloc(r, (cap *= 2) * sizeof *r);
        r[n].sid = name_id(&tab, line);
        r[n].ts = strtoll(c1 + 1, NULL, 10);
        r[n].v = strtod(c2 + 1, NULL);
        n++;
    }
    fclose(f);
    qsort(r, n, sizeof *r, rec_cmp);
    /* Keep the last of equal timestamps, as the store does. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && r[m - 1].sid == r[i].sid && r[m - 1].ts == r[i].ts)
            m--;
        r[m++] = r[i];
    }
    n = m;

    storage_point *pts = calloc(n, sizeof *pts), *back = calloc(n, sizeof *pts);
    for (size_t i = 0; i < n; i++) {
        pts[i].ts = r[i].ts;
        pts[i].v[STORAGE_COL_AVG] = r[i].v;
        pts[i].mask = 1u << STORAGE_COL_AVG;
        pts[i].flag = 'N';
    }
    /* Chunk boundaries: a new chunk at each change of series or window. */
    size_t nchunks = 0, *start = malloc((n + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || r[i].sid != r[i - 1].sid ||
            floor_div(r[i].ts, window) != floor_div(r[i - 1].ts, window))
            start[nchunks++] = i;
    start[nchunks] = n;

    chunk_buf buf = {0};
    size_t *off = malloc((nchunks + 1) * sizeof *off);
    double t0 = now_ns();
    for (size_t c = 0; c < nchunks; c++) {
        off[c] = buf.len;
        if (chunk_encode(pts + start[c], start[c + 1] - start[c], &buf) != 0) {
            fprintf(stderr, "chunk %zu: encode failed\n", c);
            return 1;
        }
    }
    off[nchunks] = buf.len;
    double t_enc = now_ns() - t0;

    /* Timed passes decode every chunk into one reused buffer, as a query does, so the
     * figures are the codec's CPU time and not the memory traffic of a 4 M point array;
     * a last pass decodes into place and is compared with the input. */
    size_t maxn = 0;
    for (size_t c = 0; c < nchunks; c++)
        if (start[c + 1] - start[c] > maxn)
            maxn = start[c + 1] - start[c];
    int64_t *ts = malloc(n * sizeof *ts);
    double *v = malloc(n * sizeof *v);
    storage_point *scratch = malloc(maxn * sizeof *scratch);
    double t_dec = 1e300, t_col = 1e300;
    size_t bad = 0, got;
    for (int rep = 0; rep < repeat; rep++) {
        t0 = now_ns();
        for (size_t c = 0; c < nchunks; c++)
            bad += chunk_decode(buf.data + off[c], off[c + 1] - off[c], scratch, maxn, &got) != 0;
        double t = now_ns() - t0;
        t_dec = t < t_dec ? t : t_dec;
        t0 = now_ns();
        for (size_t c = 0; c < nchunks; c++)
            bad += chunk_decode_col(buf.data + off[c], off[c + 1] - off[c], STORAGE_COL_AVG,
                                    ts, v, NULL, maxn, &got) != 0;
        t = now_ns() - t0;
        t_col = t < t_col ? t : t_col;
    }
    for (size_t c = 0; c < nchunks; c++) {
        size_t cn = start[c + 1] - start[c];
        bad += chunk_decode(buf.data + off[c], off[c + 1] - off[c], back + start[c], cn,
                            &got) != 0 || got != cn;
        bad += chunk_decode_col(buf.data + off[c], off[c + 1] - off[c], STORAGE_COL_AVG,
                                ts + start[c], v + start[c], NULL, cn, &got) != 0 || got != cn;
    }
    for (size_t i = 0; i < n; i++)
        if (!same_point(&pts[i], &back[i]) || ts[i] != pts[i].ts ||
            memcmp(&v[i], &pts[i].v[0], sizeof(double)) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "point %zu: ts %lld value %.17g decoded as %lld %.17g\n", i,
                        (long long)pts[i].ts, pts[i].v[0], (long long)back[i].ts, back[i].v[0]);
        }
    printf("{\"points\":%zu,\"series\":%zu,\"class\":\"%s\",\"chunks\":%zu,"
           "\"payload_bytes\":%zu,\"bytes_per_point\":%.4f,\"encode_ns_per_point\":%.1f,"
           "\"decode_ns_per_point\":%.2f,\"decode_col_ns_per_point\":%.2f,\"mismatches\":%zu}\n",
           n, tab.n, cls, nchunks, buf.len, (double)buf.len / (double)n, t_enc / (double)n,
           t_dec / (double)n, t_col / (double)n, bad);
    return bad ? 1 : 0;
}
