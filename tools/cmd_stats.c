/* cmd_stats.c: `plume stats`, what a store holds and what it costs, as one JSON object.
 * Benchmarks and monitoring read it (bytes_per_point is the storage efficiency figure), so
 * the field names are stable. The store is opened read-only. */
#include <stdio.h>

#include "cli.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume stats --db DIR\n\n"
            "Prints one JSON object about the store in DIR:\n"
            "  series, points (distinct: sealed in chunks or still in the write-ahead log),\n"
            "  chunks, wal_points (points not yet sealed),\n"
            "  file_bytes (disk space of the database files, as du counts),\n"
            "  bytes_per_point (file_bytes / points), map_size and map_used (bytes).\n");
}

int cmd_stats(int argc, char **argv)
{
    storage *st;
    int rc = cli_open_db_only("stats", argc, argv, usage, &st, NULL);
    if (rc >= 0)
        return rc;
    storage_stats s;
    rc = storage_get_stats(st, &s);
    storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "plume stats: %s\n", storage_strerror(rc));
        return 1;
    }
    printf("{\"series\":%llu,\"points\":%llu,\"chunks\":%llu,\"wal_points\":%llu,"
           "\"file_bytes\":%llu,\"bytes_per_point\":%.4f,\"map_size\":%llu,\"map_used\":%llu}\n",
           (unsigned long long)s.series, (unsigned long long)s.points,
           (unsigned long long)s.chunks, (unsigned long long)s.wal_points,
           (unsigned long long)s.file_bytes,
           s.points ? (double)s.file_bytes / (double)s.points : 0.0,
           (unsigned long long)s.map_size, (unsigned long long)s.map_used);
    return 0;
}
