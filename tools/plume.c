/* plume.c: the plume command. It only dispatches to subcommands (one cmd_*.c each), which
 * wire the modules together; no logic lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

static const cli_command commands[] = {
    {"serve", "run the engine: HJ 212 server, ingest, query server", cmd_serve},
    {"version", "print the version", cmd_version},
    {"sim", "simulate a fleet of HJ 212 data acquisition units", cmd_sim},
    {"chart", "draw a trend chart of one series as SVG", cmd_chart},
    {"import", "import points CSV files into a store", cmd_import},
    {"dump", "write a store's points as points CSV", cmd_dump},
    {"stats", "print what a store holds, as JSON", cmd_stats},
    {"check", "verify every chunk of a store", cmd_check},
    {"sources", "print the state of every polled source (Modbus, HTTP), as JSON lines", cmd_sources},
    {"registry", "import or show the registry of facilities, outlets and limits", cmd_registry},
    {"export", "export daily averages or exceedance episodes: CSV, JSON Lines, PostgreSQL",
     cmd_export},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: plume COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'plume COMMAND --help' describes a command.\n");
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

int64_t cli_time_arg(const char *opt, const char *val)
{
    int64_t t;
    if (engine_time_parse(val, strlen(val), ENGINE_CST_OFFSET_S, &t) != 0) {
        fprintf(stderr, "plume: %s: not a time: '%s' (Unix seconds or ISO 8601, e.g. "
                "2026-11-22T08:00:00+08:00)\n", opt, val);
        exit(2);
    }
    return t;
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("plume %s\n", PLUME_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "plume: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
