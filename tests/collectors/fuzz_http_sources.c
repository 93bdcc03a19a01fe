/* fuzz_http_sources.c: the HTTP poller's sources file on arbitrary bytes. Nothing may crash,
 * leak or read out of bounds; a failure must say why and return nothing; a success must give
 * every source a name and a profile with a URL, mapping paths for time and value, and
 * variables that expand in every template. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_src.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *any_var(void *arg, const char *name, size_t len)
{
    (void)arg;
    (void)name;
    (void)len;
    return "v";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_source_set *set = NULL;
    char err[300] = "";
    int rc = http_sources_parse((const char *)data, size, "fuzz", &set, err, sizeof err);
    if (rc != 0) {
        if (set || !err[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < set->n; i++) {
        const http_source_def *s = &set->src[i];
        const http_profile *p = s->prof;
        char out[512];
        if (!s->name || !s->name[0] || !p || !p->url || !p->map.time || !p->map.value ||
            p->interval_s < 1 || p->period_s < 1)
            abort();
        (void)http_template_expand(p->url, true, any_var, NULL, out, sizeof out, NULL, 0);
    }
    http_sources_free(set);
    return 0;
}
