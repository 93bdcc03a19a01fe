/* cmd_check.c: `plume check`, a full verification of a store: every chunk decoded and its
 * stored aggregates and ordering compared with its points. Run after a crash, a copy or a
 * restore; scripts use the exit status (0 healthy, 1 faults or the check could not run). */
#include <stdio.h>

#include "cli.h"
#include "engine.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume check --db DIR\n\n"
            "Decodes every chunk of the store in DIR and verifies its aggregates and time\n"
            "order. Prints each fault (series, window, what is wrong) and exits with 1 if there\n"
            "is any, 0 when the store is healthy.\n");
}

static void print_fault(void *arg, const char *series, int64_t window_start, const char *msg)
{
    char when[32];
    engine_time_format(window_start, 0, when, sizeof when);
    printf("fault: series %s window %s (%lld): %s\n", series, when, (long long)window_start,
           msg);
    (void)arg;
}

int cmd_check(int argc, char **argv)
{
    storage *st;
    const char *db;
    int rc = cli_open_db_only("check", argc, argv, usage, &st, &db);
    if (rc >= 0)
        return rc;
    int faults = storage_check(st, print_fault, NULL);
    storage_close(st);
    if (faults < 0) {
        fprintf(stderr, "plume check: %s\n", storage_strerror(faults));
        return 1;
    }
    if (faults > 0) {
        printf("%s: %d faults\n", db, faults);
        return 1;
    }
    printf("%s: healthy\n", db);
    return 0;
}
