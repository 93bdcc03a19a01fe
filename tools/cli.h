/* cli.h: what the plume subcommands share: their entry points, and small helpers for
 * parsing arguments the same way everywhere. Each subcommand lives in its own cmd_*.c. */
#ifndef PLUME_TOOLS_CLI_H
#define PLUME_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "storage.h"

/* A subcommand: argv[0] is its name. Returns the process exit status. */
typedef int (*cli_main_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    const char *summary;
    cli_main_fn main;
} cli_command;

/* True if argv holds "-h" or "--help". */
bool cli_wants_help(int argc, char **argv);

/* Parses a time argument (Unix seconds or ISO 8601; local China time without a zone);
 * prints an error naming the option and exits with status 2 on failure. */
int64_t cli_time_arg(const char *opt, const char *val);

/* For subcommands whose only argument is `--db DIR` (cli_store.c): parses the arguments
 * and opens the store read-only. Returns -1 with *st open (and *db set if db is not NULL),
 * or the exit status to return at once (0 after --help, 2 for bad arguments, 1 when the
 * store cannot be opened, with a message naming it). */
int cli_open_db_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *),
                     storage **st, const char **db);

/* `plume sim --http HOST:PORT` (sim_http_serve.c): serves the fleet until a stop signal.
 * Returns 0, or a negative code after printing why. */
struct sim_fleet;
int cli_sim_serve_http(const struct sim_fleet *f, const char *addr);

/* The subcommands (one cmd_*.c each). */
int cmd_serve(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_chart(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_sources(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
