/* registry_store.c: where the running engine's registry comes from. Files named in the
 * settings (a comma-separated list: *.json, or CSV named for its kind: facilities*.csv,
 * outlets*.csv, limits*.csv) are loaded in the order facilities, outlets, limits, whatever
 * order they are listed in; the result is kept in the store's "registry" table so that a
 * restart without the files still knows every device. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define REGISTRY_KEY "current"

static int kind_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0)
        return 3;
    if (strncmp(base, "facilities", 10) == 0)
        return ENGINE_REG_FACILITIES;
    if (strncmp(base, "outlets", 7) == 0)
        return ENGINE_REG_OUTLETS;
    if (strncmp(base, "limits", 6) == 0)
        return ENGINE_REG_LIMITS;
    return -1;
}

int engine_registry_load_files(engine_registry *r, const char *files, engine_import_report *rep,
                               char *err, size_t errlen)
{
    /* Pass 0 loads facilities and JSON, pass 1 outlets, pass 2 limits. */
    for (int pass = 0; pass < 3; pass++) {
        const char *p = files;
        while (*p) {
            size_t len = strcspn(p, ",");
            char path[1024];
            if (len == 0 || len >= sizeof path) {
                snprintf(err, errlen, "registry file name empty or too long in '%s'", files);
                return -EINVAL;
            }
            memcpy(path, p, len);
            path[len] = '\0';
            p += len + (p[len] == ',');
            int kind = kind_of(path);
            if (kind < 0) {
                snprintf(err, errlen,
                         "%s: cannot tell what it holds: name CSV files facilities*.csv, "
                         "outlets*.csv or limits*.csv, or use JSON",
                         path);
                return -EINVAL;
            }
            if ((kind == 3 ? 0 : kind) != pass)
                continue;
            int rc = kind == 3 ? engine_registry_load_json_file(r, path, rep)
                               : engine_registry_load_csv_file(r, kind, path, rep);
            if (rc != 0) {
                snprintf(err, errlen, "%s: %s", path, strerror(-rc));
                return rc;
            }
        }
    }
    return 0;
}

int engine_registry_save(storage *st, const engine_registry *r)
{
    uint8_t *buf;
    size_t len;
    int rc = engine_registry_encode(r, &buf, &len);
    if (rc != 0)
        return rc;
    storage_batch *b = storage_batch_create();
    if (!b) {
        free(buf);
        return -ENOMEM;
    }
    rc = storage_batch_kv_put(b, "registry", REGISTRY_KEY, strlen(REGISTRY_KEY), buf, len);
    if (rc == 0)
        rc = storage_write(st, b);
    storage_batch_destroy(b);
    free(buf);
    return rc;
}

int engine_registry_read(storage_reader *rd, engine_registry **out)
{
    void *val;
    size_t len;
    int rc = storage_kv_get(rd, "registry", REGISTRY_KEY, strlen(REGISTRY_KEY), &val, &len);
    if (rc != 0)
        return rc;
    rc = engine_registry_decode(val, len, out);
    free(val);
    return rc;
}

int engine_registry_restore(storage *st, engine_registry **out)
{
    storage_reader *rd;
    int rc = storage_reader_open(st, &rd);
    if (rc != 0)
        return rc;
    rc = engine_registry_read(rd, out);
    storage_reader_close(rd);
    return rc;
}
