/* fuzz_registry_common.h: what both registry fuzz targets check after an import: every
 * refusal names where and why, the counts add up, and the registry encodes, decodes and
 * encodes again to the same bytes (so whatever the parsers let in passes every check of the
 * model a second time). */
#ifndef PLUME_FUZZ_REGISTRY_COMMON_H
#define PLUME_FUZZ_REGISTRY_COMMON_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static void fuzz_on_error(void *ud, const char *source, const char *where, const char *what)
{
    (void)ud;
    if (!source || !where || !*where || !what || !*what)
        abort();
}

/* A registry with two facilities and their outlets, so outlet and limit records can load. */
static engine_registry *fuzz_registry_base(void)
{
    engine_registry *r;
    if (engine_registry_create(&r))
        abort();
    static const char base[] =
        "{\"facilities\": [{\"id\": \"F001\", \"name\": \"A\", \"uscc\": \"91350100M000100Y43\"},"
        " {\"id\": \"F002\", \"name\": \"B\"}],"
        " \"outlets\": [{\"facility_id\": \"F001\", \"code\": \"DA001\", \"medium\": \"gas\","
        " \"mn\": \"MN1\", \"o2_ref\": 6}, {\"facility_id\": \"F002\", \"code\": \"DW001\","
        " \"medium\": \"water\", \"mn\": \"MN2\"}]}";
    engine_import_report rep = {0, 0, fuzz_on_error, NULL};
    if (engine_registry_load_json(r, base, sizeof base - 1, "base", &rep) || rep.loaded != 4)
        abort();
    return r;
}

static void fuzz_registry_check(engine_registry *r, const engine_import_report *rep)
{
    size_t total = engine_registry_facility_count(r) + engine_registry_outlet_count(r) +
                   engine_registry_limit_count(r);
    if (total != rep->loaded + 4)
        abort();
    uint8_t *a, *b;
    size_t alen, blen;
    engine_registry *r2;
    if (engine_registry_encode(r, &a, &alen) || engine_registry_decode(a, alen, &r2) ||
        engine_registry_encode(r2, &b, &blen) || alen != blen || memcmp(a, b, alen) != 0)
        abort();
    free(a);
    free(b);
    engine_registry_destroy(r2);
}

#endif
