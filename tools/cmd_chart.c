/* cmd_chart.c: `plume chart`, a trend chart of one series as an SVG file, for a report or a
 * quick look without a dashboard. Wiring only: the store is opened read-only (the daemon may
 * be running), the registry comes from the store (or --registry files), and query/ draws. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "query.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume chart KEY --db DIR --out FILE.svg [OPTIONS]\n\n"
            "Draws a trend chart of one series: the values (M4-reduced to the width), the\n"
            "limit in force, exceedances shaded red, invalid data shaded grey, local time.\n\n"
            "  KEY               MN:code:interval[:column], or an imported series' name\n"
            "  --db DIR          the store\n"
            "  --out FILE        the SVG file to write ('-': standard output)\n"
            "  --from T, --to T  Unix seconds or ISO 8601 (local China time without a zone);\n"
            "                    default: the series' first and last points\n"
            "  --width PX        default 1000; --height PX default 400\n"
            "  --registry FILES  registry files (comma-separated) instead of the store's\n");
}

int cmd_chart(int argc, char **argv)
{
    enum { O_DB = 1, O_OUT, O_FROM, O_TO, O_WIDTH, O_HEIGHT, O_REG };
    static const struct option opts[] = {
        {"db", required_argument, NULL, O_DB},       {"out", required_argument, NULL, O_OUT},
        {"from", required_argument, NULL, O_FROM},   {"to", required_argument, NULL, O_TO},
        {"width", required_argument, NULL, O_WIDTH}, {"height", required_argument, NULL, O_HEIGHT},
        {"registry", required_argument, NULL, O_REG}, {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *out = NULL, *reg_files = NULL;
    int64_t from = INT64_MIN, to = INT64_MAX;
    int width = 1000, height = 400, o;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_DB: db = optarg; break;
        case O_OUT: out = optarg; break;
        case O_FROM: from = cli_time_arg("--from", optarg); break;
        case O_TO: to = cli_time_arg("--to", optarg); break;
        case O_WIDTH: width = atoi(optarg); break;
        case O_HEIGHT: height = atoi(optarg); break;
        case O_REG: reg_files = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || !db || !out) {
        usage(stderr);
        return 2;
    }
    const char *key = argv[optind];
    storage *st = NULL;
    engine_registry *reg = NULL;
    char *svg = NULL, err[512];
    size_t len = 0;
    int status = 1;
    storage_options so = {.kv_tables = engine_kv_tables, .read_only = true};
    int rc = storage_open(db, &so, &st);
    if (rc != 0) {
        fprintf(stderr, "plume chart: %s: %s\n", db, storage_strerror(rc));
        return 1;
    }
    if (reg_files) {
        if ((rc = engine_registry_create(&reg)) == 0 &&
            (rc = engine_registry_load_files(reg, reg_files, NULL, err, sizeof err)) != 0)
            fprintf(stderr, "plume chart: registry: %s\n", err);
    } else if (engine_registry_restore(st, &reg) != 0) {
        reg = NULL; /* no registry kept: a chart without limits */
    }
    rc = query_chart_svg(st, reg, key, from, to, width, height, &svg, &len);
    if (rc == -ENOENT)
        fprintf(stderr, "plume chart: %s: no such series\n", key);
    else if (rc == -EINVAL)
        fprintf(stderr, "plume chart: width must be 200-10000 and height 150-5000\n");
    else if (rc != 0)
        fprintf(stderr, "plume chart: %s\n", storage_strerror(rc));
    else {
        FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
        if (f && fwrite(svg, 1, len, f) == len && (f == stdout || fclose(f) == 0))
            status = 0;
        else
            fprintf(stderr, "plume chart: %s: %s\n", out, strerror(errno));
    }
    free(svg);
    engine_registry_destroy(reg);
    storage_close(st);
    return status;
}
