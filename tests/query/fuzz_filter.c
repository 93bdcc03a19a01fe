/* fuzz_filter.c: the FILTER expression parser on arbitrary bytes. The input is split into
 * expressions at spaces (as redis-cli would send them); a parse must either fail or give
 * terms whose names and values are NUL-terminated, non-empty names without '=', and the
 * matcher must run on labels built from the input without reading out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    resp_arg argv[64];
    size_t argc = 0, start = 0;
    for (size_t i = 0; i <= size && argc < 64; i++)
        if (i == size || data[i] == ' ') {
            argv[argc++] = (resp_arg){(const char *)data + start, i - start};
            start = i + 1;
        }
    static qfilter f;
    char err[200];
    if (qfilter_parse(argc, argv, &f, err, sizeof err) != 0) {
        if (!strstr(err, "ERR TSDB"))
            abort();
        return 0;
    }
    if (f.nterms == 0 || f.nterms > QF_MAX_TERMS)
        abort();
    for (size_t i = 0; i < f.nterms; i++) {
        const qf_term *t = &f.terms[i];
        if (!t->name[0] || strchr(t->name, '=') || t->nvalues == 0 ||
            t->nvalues > QF_MAX_VALUES)
            abort();
        for (size_t v = 0; v < t->nvalues; v++)
            if (strlen(t->values[v]) >= QF_MAX_TEXT)
                abort();
    }
    /* Labels made of the input's own bytes, one expression per line. */
    char labels[4096];
    size_t n = size < sizeof labels - 1 ? size : sizeof labels - 1;
    for (size_t i = 0; i < n; i++)
        labels[i] = data[i] == ' ' ? '\n' : data[i] ? (char)data[i] : '_';
    labels[n] = 0;
    (void)qfilter_match(&f, labels);
    (void)qfilter_match(&f, "");
    return 0;
}
