/* names.c: the names storage gives its codes, columns and interval classes, so that every
 * layer above prints and parses them the same way. */
#include <string.h>

#include "storage.h"

static const char *const col_names[STORAGE_NCOLS] = {
    "avg", "min", "max", "cou", "zsavg", "zsmin", "zsmax",
};

static const char *const iv_names[STORAGE_NIV] = {"rtd", "min", "hour", "day"};

const char *storage_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case STORAGE_ECORRUPT: return "corrupt chunk or record";
    case STORAGE_EFORMAT: return "incompatible on-disk format version";
    case STORAGE_ELMDB: return "LMDB error";
    case STORAGE_ECLOSED: return "store is closing";
    default: break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

const char *storage_col_name(int col)
{
    return col >= 0 && col < STORAGE_NCOLS ? col_names[col] : "?";
}

int storage_col_parse(const char *name)
{
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if (strcmp(name, col_names[c]) == 0)
            return c;
    if (strcmp(name, "rtd") == 0)
        return STORAGE_COL_AVG;
    if (strcmp(name, "zsrtd") == 0)
        return STORAGE_COL_ZSAVG;
    return -1;
}

const char *storage_interval_name(int iv)
{
    return iv >= 0 && iv < STORAGE_NIV ? iv_names[iv] : "?";
}
