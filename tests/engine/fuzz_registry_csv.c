/* fuzz_registry_csv.c: the registry CSV import on arbitrary bytes. The first byte picks the
 * kind of records (mod 3: facilities, outlets, limits), the rest is the file. */
#include <stdint.h>

#include "fuzz_registry_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    engine_registry *r = fuzz_registry_base();
    engine_import_report rep = {0, 0, fuzz_on_error, NULL};
    int rc = engine_registry_load_csv(r, data[0] % 3, (const char *)data + 1, size - 1,
                                      "fuzz.csv", &rep);
    if (rc != 0 && rc != -EINVAL)
        abort();
    fuzz_registry_check(r, &rep);
    engine_registry_destroy(r);
    return 0;
}
