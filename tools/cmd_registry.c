/* cmd_registry.c: `plume registry import|show`, the registry kept in a store. import loads
 * CSV/JSON files (engine/REGISTRY.md) and keeps the result in the store, where `plume serve`
 * finds it at start; a running server picks it up on SIGHUP when its settings name the same
 * files. show prints what the store holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume registry import --db DIR FILE...\n"
            "       plume registry show --db DIR [--mn MN]\n\n"
            "import  loads facilities*.csv, outlets*.csv, limits*.csv or *.json (any order;\n"
            "        facilities load first) and keeps the registry in the store. Bad records\n"
            "        are reported with file and line and skipped; the rest loads. Prints one\n"
            "        JSON line: {\"facilities\":F,\"outlets\":O,\"limits\":L,\"rejected\":R}.\n"
            "show    prints the registry the store holds: counts as JSON, or with --mn the\n"
            "        outlet of that MN with its facility and limits.\n");
}

static void on_error(void *ud, const char *source, const char *where, const char *what)
{
    size_t *shown = ud;
    if ((*shown)++ < 20)
        fprintf(stderr, "plume registry: %s: %s: %s\n", source, where, what);
}

static int open_store(const char *db, storage **st)
{
    storage_options so = {.kv_tables = engine_kv_tables};
    int rc = storage_open(db, &so, st);
    if (rc != 0)
        fprintf(stderr, "plume registry: %s: %s\n", db, storage_strerror(rc));
    return rc;
}

static int do_import(const char *db, int nfiles, char **files)
{
    size_t len = 0;
    for (int i = 0; i < nfiles; i++)
        len += strlen(files[i]) + 1;
    char *list = calloc(1, len + 1);
    for (int i = 0; i < nfiles; i++) {
        strcat(list, files[i]);
        if (i + 1 < nfiles)
            strcat(list, ",");
    }
    engine_registry *r;
    size_t shown = 0;
    engine_import_report rep = {.on_error = on_error, .ud = &shown};
    char err[512];
    storage *st = NULL;
    int rc = engine_registry_create(&r);
    if (rc == 0 && (rc = engine_registry_load_files(r, list, &rep, err, sizeof err)) != 0)
        fprintf(stderr, "plume registry: %s\n", err);
    if (rc == 0 && (rc = open_store(db, &st)) == 0 && (rc = engine_registry_save(st, r)) != 0)
        fprintf(stderr, "plume registry: cannot save: %s\n", storage_strerror(rc));
    if (rc == 0)
        printf("{\"facilities\":%zu,\"outlets\":%zu,\"limits\":%zu,\"rejected\":%zu}\n",
               engine_registry_facility_count(r), engine_registry_outlet_count(r),
               engine_registry_limit_count(r), rep.rejected);
    storage_close(st);
    engine_registry_destroy(r);
    free(list);
    return rc == 0 ? 0 : 1;
}

static int do_show(const char *db, const char *mn)
{
    storage *st;
    engine_registry *r;
    if (open_store(db, &st) != 0)
        return 1;
    int rc = engine_registry_restore(st, &r);
    storage_close(st);
    if (rc == -ENOENT) {
        fprintf(stderr, "plume registry: %s holds no registry (plume registry import)\n", db);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "plume registry: cannot read the registry: %s\n", storage_strerror(rc));
        return 1;
    }
    if (!mn) {
        printf("{\"facilities\":%zu,\"outlets\":%zu,\"limits\":%zu}\n",
               engine_registry_facility_count(r), engine_registry_outlet_count(r),
               engine_registry_limit_count(r));
        engine_registry_destroy(r);
        return 0;
    }
    const engine_outlet *o = engine_registry_outlet_by_mn(r, mn, strlen(mn));
    if (!o) {
        fprintf(stderr, "plume registry: no outlet has MN %s\n", mn);
        engine_registry_destroy(r);
        return 1;
    }
    const engine_facility *f = engine_registry_facility(r, o->facility_id);
    printf("facility %s %s uscc=%s region=%s industry=%s\n", f->id, f->name, f->uscc,
           f->region, f->industry);
    printf("outlet %s %s mn=%s o2_ref=%g\n", o->code,
           o->medium == ENGINE_MEDIUM_GAS ? "gas" : "water", o->mn, o->o2_ref);
    for (size_t i = 0; i < engine_registry_limit_count(r); i++) {
        const engine_limit *l = engine_registry_limit_at(r, i);
        if (strcmp(l->facility_id, o->facility_id) || strcmp(l->outlet, o->code))
            continue;
        printf("limit %s %g %s %s %s\n", l->pollutant, l->value, l->unit,
               l->period == ENGINE_PERIOD_DAY ? "day" : "hour",
               l->basis == ENGINE_BASIS_MEASURED ? "measured" : "zs");
    }
    engine_registry_destroy(r);
    return 0;
}

int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *db = NULL, *mn = NULL;
    char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "--mn") && i + 1 < argc)
            mn = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "plume registry: unknown option '%s'\n", argv[i]);
            free(files);
            return 2;
        } else
            files[nfiles++] = argv[i];
    }
    int rc = 2;
    if (!db)
        fprintf(stderr, "plume registry: --db DIR is required\n");
    else if (!strcmp(argv[1], "import") && nfiles > 0)
        rc = do_import(db, nfiles, files);
    else if (!strcmp(argv[1], "show") && nfiles == 0)
        rc = do_show(db, mn);
    else
        usage(stderr);
    free(files);
    return rc;
}
