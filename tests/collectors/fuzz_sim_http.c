/* fuzz_sim_http.c: the simulator's HTTP routes on arbitrary request targets (path and query:
 * facility ids, percent-encoded times, pages). Nothing may crash or read out of bounds; an
 * answer is one of the statuses the server knows, a 200 carries the JSON envelope and as
 * many rows as it counts, and asking again with its ETag gives 304. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sim_fleet *fleet;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fleet) {
        sim_options o;
        sim_options_defaults(&o);
        o.nfacilities = 3;
        o.days = 2;
        if (sim_fleet_create(&o, &fleet) != 0)
            abort();
    }
    if (size > 4096)
        return 0;
    sim_http_stats st = {0};
    sim_http_answer a = {0};
    const char *method = size && (data[0] & 1) ? "HEAD" : "GET";
    sim_http_route(fleet, method, (const char *)data, size, NULL, &st, &a);
    if (a.status != 200 && a.status != 400 && a.status != 404 && a.status != 405 &&
        a.status != 500)
        abort();
    if (a.status == 200 && a.etag[0]) {
        size_t rows = 0;
        for (const char *p = a.body.p; (p = strstr(p, "{\"mn\":")); p++)
            rows++;
        if (rows != a.records || strncmp(a.body.p, "{\"code\":0,", 10) != 0)
            abort();
        char etag[sizeof a.etag];
        memcpy(etag, a.etag, sizeof etag);
        sim_http_answer b = {0};
        sim_http_route(fleet, method, (const char *)data, size, etag, &st, &b);
        if (b.status != 304)
            abort();
        free(b.body.p);
    }
    free(a.body.p);
    return 0;
}
