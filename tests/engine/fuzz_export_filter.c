/* fuzz_export_filter.c: the export's --filter expressions (engine_export_filter_add) on
 * arbitrary bytes, one expression per line. Each is either refused with a message, or
 * accepted as a known label with a value that is no longer than the filter's room, has no
 * empty alternative, and is stored exactly as given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(engine_export_filter *f, const char *expr)
{
    char why[400] = "";
    size_t before = f->nterms;
    int rc = engine_export_filter_add(f, expr, why, sizeof why);
    if (rc != 0) {
        if (!why[0] || f->nterms != before)
            abort();
        return;
    }
    const char *eq = strchr(expr, '=');
    const char *v = f->terms[before].values;
    if (f->nterms != before + 1 || !eq || strcmp(v, eq + 1) != 0 || !v[0] ||
        v[0] == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    engine_export_filter f = {0};
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        check(&f, line);
    }
    free(text);
    return 0;
}
