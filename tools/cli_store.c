/* cli_store.c: the argument handling of subcommands that take only `--db DIR` and read a
 * store (stats, check): one place that parses the options, reports a store that cannot be
 * opened, and opens it read-only so a running server is never disturbed. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

int cli_open_db_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *),
                     storage **st, const char **db_out)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db || optind != argc) {
        usage(stderr);
        return 2;
    }
    storage_options ro = {.read_only = true};
    int rc = storage_open(db, &ro, st);
    if (rc != 0) {
        fprintf(stderr, "plume %s: cannot open store %s: %s\n", cmd, db, storage_strerror(rc));
        return 1;
    }
    if (db_out)
        *db_out = db;
    return -1;
}
