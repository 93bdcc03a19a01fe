/* cmd_sources.c: `plume sources`, the state of every polled source (Modbus devices, HTTP
 * sources) as the pollers keep it in the store's "sources" table: one JSON object per line,
 * filtered by kind or state. Operators ask "which devices are down, since when, and why"; the
 * answer is data, read here without disturbing the running server (read-only). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume sources --db DIR [--kind KIND] [--state STATE]\n\n"
            "Prints the state of each polled source, one JSON object per line, e.g.\n"
            "  {\"kind\":\"modbus\",\"mn\":\"...\",\"gateway\":\"plant-1\",\"unit\":3,\n"
            "   \"state\":\"down\",\"polls\":1234,\"failures\":7,\"consecutive_failures\":3,\n"
            "   \"last_error\":\"...\",\"since\":\"2026-11-22T13:25:25Z\",...}\n"
            "HTTP sources keep \"field=value\" lines; they are printed as they are.\n"
            "The query server answers the same with CEMS.SOURCES when it has it.\n\n"
            "  --kind KIND    only this kind (modbus, http)\n"
            "  --state STATE  only sources in this state (up, down, misconfigured, ...)\n");
}

typedef struct filter {
    const char *kind, *state;
    size_t shown;
} filter;

/* Whether the record's "field":"value" member is there (the records are ours: compact JSON). */
static bool has_member(const char *val, size_t len, const char *field, const char *want)
{
    char pat[128];
    int n = snprintf(pat, sizeof pat, "\"%s\":\"%s\"", field, want);
    return n > 0 && (size_t)n < sizeof pat && memmem(val, len, pat, (size_t)n) != NULL;
}

static int on_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    filter *f = arg;
    if (f->kind && !has_member(val, vlen, "kind", f->kind))
        return 0;
    if (f->state && !has_member(val, vlen, "state", f->state))
        return 0;
    fwrite(val, 1, vlen, stdout);
    fputc('\n', stdout);
    f->shown++;
    return 0;
}

int cmd_sources(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"kind", required_argument, NULL, 'k'},
        {"state", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    filter f = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'k': f.kind = optarg; break;
        case 's': f.state = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db || optind != argc) {
        usage(stderr);
        return 2;
    }
    storage *st;
    storage_options so = {.read_only = true, .kv_tables = engine_kv_tables};
    int rc = storage_open(db, &so, &st);
    if (rc != 0) {
        fprintf(stderr, "plume sources: cannot open store %s: %s\n", db, storage_strerror(rc));
        return 1;
    }
    storage_reader *r;
    rc = storage_reader_open(st, &r);
    if (rc == 0) {
        rc = storage_kv_scan(r, "sources", NULL, 0, on_record, &f);
        storage_reader_close(r);
    }
    storage_close(st);
    if (rc != 0 && rc != -ENOENT) {
        fprintf(stderr, "plume sources: %s\n", storage_strerror(rc));
        return 1;
    }
    return 0;
}
