/* fuzz_registry_json.c: the registry JSON import on arbitrary bytes, and the registry
 * decoder on the same bytes (it must refuse or accept, never crash). */
#include <stdint.h>

#include "fuzz_registry_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    engine_registry *r = fuzz_registry_base();
    engine_import_report rep = {0, 0, fuzz_on_error, NULL};
    int rc = engine_registry_load_json(r, (const char *)data, size, "fuzz.json", &rep);
    if (rc != 0 && rc != -EINVAL)
        abort();
    fuzz_registry_check(r, &rep);
    engine_registry_destroy(r);

    engine_registry *d = NULL;
    rc = engine_registry_decode(data, size, &d);
    if (rc == 0)
        engine_registry_destroy(d);
    else if (rc != -EBADMSG)
        abort();
    return 0;
}
