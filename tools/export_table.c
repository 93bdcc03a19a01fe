/* export_table.c: the columns of the two tables `plume export` produces, with their
 * PostgreSQL types and upsert keys, and the DDL `plume export schema` prints. CSV headers,
 * JSON Lines members and PostgreSQL columns all come from these lists.
 *
 * An outlet is keyed by its DAQ's MN: the registry keeps MNs unique per outlet, and data
 * from a DAQ the registry does not know has no other identity. */
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "export.h"

#define DBL "double precision"

static const export_column daily_cols[] = {
    {"day", EXPORT_DATE, "date", true},
    {"facility_id", EXPORT_TEXT, "text", false},
    {"facility_name", EXPORT_TEXT, "text", false},
    {"uscc", EXPORT_ID, "text", false},
    {"region", EXPORT_ID, "text", false},
    {"industry", EXPORT_TEXT, "text", false},
    {"outlet", EXPORT_TEXT, "text", false},
    {"mn", EXPORT_ID, "text", true},
    {"pollutant", EXPORT_TEXT, "text", true},
    {"unit", EXPORT_TEXT, "text", false},
    {"avg", EXPORT_NUM, DBL, false},
    {"min", EXPORT_NUM, DBL, false},
    {"max", EXPORT_NUM, DBL, false},
    {"zs_avg", EXPORT_NUM, DBL, false},
    {"valid_hours", EXPORT_INT, "integer", false},
    {"hours", EXPORT_INT, "integer", false},
    {"valid", EXPORT_BOOL, "boolean", false},
    {"flag", EXPORT_TEXT, "text", false},
    {"hours_n", EXPORT_INT, "integer", false},
    {"hours_f", EXPORT_INT, "integer", false},
    {"hours_m", EXPORT_INT, "integer", false},
    {"hours_s", EXPORT_INT, "integer", false},
    {"hours_d", EXPORT_INT, "integer", false},
    {"hours_c", EXPORT_INT, "integer", false},
    {"hours_t", EXPORT_INT, "integer", false},
    {"hours_b", EXPORT_INT, "integer", false},
    {"source", EXPORT_TEXT, "text", false},
    {"mass_kg", EXPORT_NUM, DBL, false},
    {"limit_value", EXPORT_NUM, DBL, false},
    {"limit_period", EXPORT_TEXT, "text", false},
    {"multiple", EXPORT_NUM, DBL, false},
    {"exceeds", EXPORT_BOOL, "boolean", false},
};

static const export_column episode_cols[] = {
    {"facility_id", EXPORT_TEXT, "text", false},
    {"facility_name", EXPORT_TEXT, "text", false},
    {"uscc", EXPORT_ID, "text", false},
    {"region", EXPORT_ID, "text", false},
    {"industry", EXPORT_TEXT, "text", false},
    {"outlet", EXPORT_TEXT, "text", false},
    {"mn", EXPORT_ID, "text", true},
    {"pollutant", EXPORT_TEXT, "text", true},
    {"unit", EXPORT_TEXT, "text", false},
    {"period", EXPORT_TEXT, "text", true},
    {"start_time", EXPORT_TIME, "timestamptz", true},
    {"end_time", EXPORT_TIME, "timestamptz", false},
    {"hours", EXPORT_INT, "integer", false},
    {"peak", EXPORT_NUM, DBL, false},
    {"peak_time", EXPORT_TIME, "timestamptz", false},
    {"limit_value", EXPORT_NUM, DBL, false},
    {"multiple", EXPORT_NUM, DBL, false},
    {"peak_flag", EXPORT_TEXT, "text", false},
    {"state", EXPORT_TEXT, "text", false},
    {"alert_id", EXPORT_TEXT, "text", false},
};

const export_table export_daily_table = {"daily", "plume_daily", daily_cols,
                                         sizeof daily_cols / sizeof daily_cols[0]};
const export_table export_episode_table = {"exceedances", "plume_exceedances", episode_cols,
                                           sizeof episode_cols / sizeof episode_cols[0]};

int export_table_ddl(const export_table *t, char *buf, size_t len)
{
    size_t at = 0;
    int k = snprintf(buf, len, "CREATE TABLE IF NOT EXISTS %s (\n", t->sql_name);
    for (size_t i = 0; k >= 0 && (size_t)k < len - at && i < t->ncols; i++) {
        at += (size_t)k;
        k = snprintf(buf + at, len - at, "    %s %s%s,\n", t->cols[i].name, t->cols[i].sql,
                     t->cols[i].key ? " NOT NULL" : "");
    }
    if (k < 0 || (size_t)k >= len - at)
        return -1;
    at += (size_t)k;
    k = snprintf(buf + at, len - at, "    PRIMARY KEY (");
    for (size_t i = 0, n = 0; k >= 0 && (size_t)k < len - at && i < t->ncols; i++) {
        if (!t->cols[i].key)
            continue;
        at += (size_t)k;
        k = snprintf(buf + at, len - at, "%s%s", n++ ? ", " : "", t->cols[i].name);
    }
    if (k < 0 || (size_t)k >= len - at)
        return -1;
    at += (size_t)k;
    k = snprintf(buf + at, len - at, ")\n);\n");
    if (k < 0 || (size_t)k >= len - at)
        return -1;
    return (int)(at + (size_t)k);
}

void export_schema_print(FILE *f)
{
    char ddl[4096];
    fprintf(f, "-- plume export: daily averages (one row per outlet MN, pollutant and local "
               "day)\n-- and exceedance episodes. `plume export --format pg` creates these "
               "tables\n-- when missing and upserts on their primary keys.\n");
    if (export_table_ddl(&export_daily_table, ddl, sizeof ddl) > 0)
        fputs(ddl, f);
    if (export_table_ddl(&export_episode_table, ddl, sizeof ddl) > 0)
        fputs(ddl, f);
}

int export_format_date(int64_t day, char *buf)
{
    int64_t y;
    unsigned m, d;
    int64_t local = day + ENGINE_CST_OFFSET_S;
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    engine_civil_from_days(days, &y, &m, &d);
    return snprintf(buf, 11, "%04lld-%02u-%02u", (long long)y, m, d);
}

int export_format_time(int64_t t, char *buf)
{
    return engine_time_format(t, ENGINE_CST_OFFSET_S, buf, 26);
}
