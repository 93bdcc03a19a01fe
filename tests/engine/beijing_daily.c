/* beijing_daily.c: daily averages and validity of the real Beijing hourly air-quality data,
 * computed with engine_rollup_day. beijing_daily.py computes the same rows independently
 * (Python standard library) and compares them with this program's output, row by row.
 *
 * Usage: beijing_daily FILE.csv...   Each station file has a header row; every numeric column
 * is one series, its present hours flagged N, `NA` missing; hours are local (UTC+8).
 * Output, one row per station, column and local day that appears in the file:
 *   station,column,YYYY-MM-DD,present,valid_hours,valid(0|1),flag,mean(%.17g; empty if none)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define MAXCOL 32

typedef struct series {
    char name[32];
    storage_point pts[24];
    size_t n;
} series;

static void strip_quotes(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = 0;
    }
}

static int split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    for (int i = 0; i < n; i++)
        strip_quotes(f[i]);
    return n;
}

static void flush_day(const char *station, series *s, int ncol, int64_t day,
                      const engine_rollup_opts *o)
{
    int64_t y;
    unsigned m, d;
    engine_civil_from_days(day, &y, &m, &d);
    for (int c = 0; c < ncol; c++) {
        if (!s[c].name[0])
            continue;
        printf("%s,%s,%04lld-%02u-%02u,", station, s[c].name, (long long)y, m, d);
        engine_period_result r;
        if (s[c].n == 0 || engine_rollup_day(s[c].pts, s[c].n, NULL, o, &r) != 0) {
            printf("0,0,0,,\n");
        } else {
            printf("%zu,%u,%d,%c,%.17g\n", s[c].n, r.n_valid, r.valid ? 1 : 0, r.p.flag,
                   r.p.v[STORAGE_COL_AVG]);
        }
        s[c].n = 0;
    }
}

static int run_file(const char *path, const engine_rollup_opts *o)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    static series s[MAXCOL];
    char line[1024], *fld[MAXCOL];
    int ncol = 0, station_col = -1, bad = 0;
    int64_t cur_day = INT64_MIN;
    char station[64] = "";
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 1;
    }
    ncol = split(line, fld, MAXCOL);
    for (int c = 0; c < ncol; c++) {
        s[c].name[0] = 0;
        s[c].n = 0;
        if (strcmp(fld[c], "station") == 0)
            station_col = c;
        else if (c >= 5 && strcmp(fld[c], "wd") != 0)
            snprintf(s[c].name, sizeof s[c].name, "%s", fld[c]);
    }
    while (fgets(line, sizeof line, f)) {
        int n = split(line, fld, MAXCOL);
        if (n != ncol || station_col < 0) {
            bad++;
            continue;
        }
        int64_t day = engine_days_from_civil(atoi(fld[1]), (unsigned)atoi(fld[2]),
                                             (unsigned)atoi(fld[3]));
        if (day != cur_day) {
            if (cur_day != INT64_MIN)
                flush_day(station, s, ncol, cur_day, o);
            cur_day = day;
        }
        snprintf(station, sizeof station, "%s", fld[station_col]);
        int64_t ts = day * 86400 + atoi(fld[4]) * 3600 - ENGINE_CST_OFFSET_S;
        for (int c = 0; c < ncol; c++) {
            const char *v = fld[c];
            while (*v == ' ')
                v++;
            if (!s[c].name[0] || strcmp(v, "NA") == 0 || !*v || s[c].n >= 24)
                continue; /* missing: `NA`, and one blank field in the real data */
            char *end;
            double x = strtod(v, &end);
            if (*end) {
                bad++;
                continue;
            }
            storage_point *p = &s[c].pts[s[c].n++];
            memset(p, 0, sizeof *p);
            p->ts = ts;
            p->v[STORAGE_COL_AVG] = x;
            p->mask = 1u << STORAGE_COL_AVG;
            p->flag = 'N';
        }
    }
    if (cur_day != INT64_MIN)
        flush_day(station, s, ncol, cur_day, o);
    fclose(f);
    if (bad)
        fprintf(stderr, "%s: %d malformed rows\n", path, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    engine_rollup_opts o;
    engine_rollup_opts_init(&o);
    int rc = 0;
    for (int i = 1; i < argc; i++)
        rc |= run_file(argv[i], &o);
    return rc;
}
