/* hj212_factors.c: lookups in the table of HJ 212 factor codes.
 *
 * The table itself is data (factor_codes.csv in this folder, generated into C at build
 * time), so adding a code is a CSV edit. Ingest uses the 2005 -> 2017 mapping so that old
 * DAQ units and new ones land in the same series; codes the table does not know are kept
 * as sent by the callers. */
#include <string.h>

#include "hj212_factors_table.h"

/* strcmp of a counted string against a NUL-terminated one. */
static int cmp_counted(const char *s, size_t len, const char *z)
{
    size_t zl = strlen(z);
    int c = memcmp(s, z, len < zl ? len : zl);
    if (c)
        return c;
    return len < zl ? -1 : len > zl;
}

const hj212_factor_info *hj212_factor_find(const char *code, size_t len)
{
    size_t lo = 0, hi = hj212__factor_table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_counted(code, len, hj212__factor_table[mid].code);
        if (c == 0)
            return &hj212__factor_table[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const hj212_factor_info *hj212_factor_find_2005(const char *code, size_t len)
{
    size_t lo = 0, hi = hj212__factor_by_2005_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const hj212_factor_info *e = &hj212__factor_table[hj212__factor_by_2005[mid]];
        int c = cmp_counted(code, len, e->code_2005);
        if (c == 0)
            return e;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t hj212_factor_count(void)
{
    return hj212__factor_table_len;
}

const hj212_factor_info *hj212_factor_at(size_t i)
{
    return i < hj212__factor_table_len ? &hj212__factor_table[i] : NULL;
}
