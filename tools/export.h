/* export.h: internal to tools/: the tables `plume export` writes and the writers that write
 * them. cmd_export.c turns the engine's rows (engine_daily_row, engine_episode_row) into
 * rows of typed values; a writer formats them as CSV or JSON Lines (export_csv.c) or loads
 * them into PostgreSQL (export_pg.c). The column lists and the DDL live in export_table.c,
 * so every format carries the same fields under the same names. */
#ifndef PLUME_TOOLS_EXPORT_H
#define PLUME_TOOLS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Value types of a column. */
enum export_type {
    EXPORT_TEXT = 0, /* UTF-8 text */
    EXPORT_ID,       /* text that looks like a number but is not one (MN, USCC, region) */
    EXPORT_NUM,      /* double; NaN is null */
    EXPORT_INT,      /* int64 */
    EXPORT_BOOL,
    EXPORT_DATE,     /* a local day: int64 day start, written YYYY-MM-DD */
    EXPORT_TIME,     /* int64 UTC seconds, written ISO 8601 at +08:00 */
};

typedef struct export_column {
    const char *name;
    int type;            /* enum export_type */
    const char *sql;     /* its PostgreSQL type */
    bool key;            /* part of the upsert key */
} export_column;

typedef struct export_table {
    const char *name;    /* "daily", "exceedances" */
    const char *sql_name; /* the PostgreSQL table: plume_daily, plume_exceedances */
    const export_column *cols;
    size_t ncols;
} export_table;

extern const export_table export_daily_table;
extern const export_table export_episode_table;

/* One value; null when is_null. */
typedef struct export_value {
    bool is_null;
    const char *s;       /* TEXT, ID */
    double d;            /* NUM */
    int64_t i;           /* INT, DATE, TIME */
    bool b;              /* BOOL */
} export_value;

/* Prints the DDL of both tables (CREATE TABLE IF NOT EXISTS ...). */
void export_schema_print(FILE *f);
/* The DDL of one table into buf; its length, or -1 if len is too small. */
int export_table_ddl(const export_table *t, char *buf, size_t len);

/* A writer. row is called once per row with t->ncols values; finish once at the end
 * (commits what was written); abort on failure (leaves nothing behind). Each returns 0 or
 * -1 with a message already printed to stderr. */
typedef struct export_writer export_writer;
typedef struct export_writer_ops {
    int (*row)(export_writer *w, const export_value *v);
    int (*finish)(export_writer *w);
    void (*abort)(export_writer *w);
} export_writer_ops;

struct export_writer {
    const export_writer_ops *ops;
    const export_table *t;
};

typedef struct export_file_opts {
    const char *path;    /* NULL or "-": stdout */
    bool jsonl;          /* JSON Lines, else CSV */
    bool excel;          /* CSV for Excel: BOM, CRLF, identifiers as ="..." text */
} export_file_opts;

/* CSV / JSON Lines into a file (written as PATH.part and renamed when finished, so a failed
 * export leaves no partial file) or stdout. NULL (message printed) on failure. */
export_writer *export_file_open(const export_table *t, const export_file_opts *o);

/* PostgreSQL through libpq: one transaction that creates the table if missing, COPYs the
 * rows into a temporary staging table and upserts them on the table's key (or, when the
 * table holds no row where range, an SQL condition, holds, COPYs straight into it). The
 * export then replaces the range: rows of it that the export no longer produces (an
 * episode whose start moved, a series gone) are deleted; all of them when whole is true
 * (no filter), else only those of MN and pollutant pairs the export produced. */
export_writer *export_pg_open(const export_table *t, const char *conninfo, const char *range,
                              bool whole, bool quiet);

/* Formats a local day / a time at +08:00 (buf needs 11 / 26 bytes); the length. */
int export_format_date(int64_t day, char *buf);
int export_format_time(int64_t t, char *buf);

#endif
