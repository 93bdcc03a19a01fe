/* Fuzz target for the subscriptions CSV: any bytes parse without crashing, every row is
 * either loaded or reported, and matching an alert against what loaded stays in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static size_t reported;

static void on_error(void *arg, const char *msg)
{
    reported += msg[0] != '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    engine_subs *s;
    if (engine_subs_create(&s) != 0)
        return 0;
    size_t nbad = 0;
    reported = 0;
    engine_subs_parse_csv(s, "fuzz.csv", (const char *)data, size, on_error, NULL, &nbad);
    if (nbad != reported)
        abort();
    engine_sub_dest d[8];
    size_t n;
    engine_alert a = {.id = "f", .revision = 1, .facility_id = "F1", .uscc = "U1",
                      .region = "320102", .industry = "4411"};
    engine_subs_match(s, &a, d, 8, &n);
    for (size_t i = 0; i < n && i < 8; i++)
        if (!d[i].url || strncmp(d[i].url, "http", 4) != 0)
            abort();
    engine_subs_destroy(s);
    return 0;
}
