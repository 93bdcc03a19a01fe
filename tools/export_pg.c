/* export_pg.c: `plume export --format pg`, loading rows straight into PostgreSQL through
 * libpq, all or nothing.
 *
 * One transaction: create the table if it is missing (export_table.c's DDL), lock it against
 * other exports, create a temporary staging table like it, COPY every row into the staging
 * table (text format, sent in 1 MiB messages), then INSERT ... SELECT from it ON CONFLICT on
 * the table's key DO UPDATE, and commit. When the table holds no row of the exported range
 * (the daily run on new days), nothing can conflict: the rows are copied straight into the
 * table, in the same one transaction. Otherwise the rows of the range that the export no
 * longer produces are deleted after the upsert (an episode whose start moved when late data
 * arrived leaves no stale row behind). Re-running the same days therefore replaces them, and
 * any failure (a broken connection, a constraint, a killed export) rolls the whole
 * transaction back: the target table never holds half an export. COPY into an unindexed temporary table is the
 * fastest way in; the upsert is then one set operation inside the server.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "engine.h"
#include "export.h"

#define BUF_LEN (1u << 20)
#define ROW_MAX (64u << 10)

typedef struct pg_writer {
    export_writer base;
    PGconn *conn;
    char *buf;
    size_t len;
    uint64_t rows;
    bool quiet, failed;
    bool direct;         /* COPY straight into the table: it held nothing of the range */
    bool whole;          /* the export covers every outlet and pollutant of the range */
    char range[256];     /* SQL condition selecting the range's rows */
    uint64_t stale;      /* rows of the range deleted because the export no longer has them */
    double t_open, t_copied;
    int64_t last_day;
    char day_text[16];
} pg_writer;

static void pg_error(pg_writer *w, const char *what, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !msg[0])
        msg = PQerrorMessage(w->conn);
    fprintf(stderr, "plume export: PostgreSQL: %s: %s", what, msg);
    if (!msg[0] || msg[strlen(msg) - 1] != '\n')
        fputc('\n', stderr);
    w->failed = true;
}

/* Runs a command that returns no rows; 0 or -1 (message printed). */
static int exec(pg_writer *w, const char *sql, const char *what)
{
    PGresult *res = PQexec(w->conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        pg_error(w, what, res);
    PQclear(res);
    return ok ? 0 : -1;
}

static int send_buf(pg_writer *w)
{
    if (w->len && PQputCopyData(w->conn, w->buf, (int)w->len) != 1) {
        pg_error(w, "COPY", NULL);
        return -1;
    }
    w->len = 0;
    return 0;
}

static void put(pg_writer *w, const char *s, size_t n)
{
    if (w->len + n > BUF_LEN && send_buf(w) != 0)
        return;
    if (n > BUF_LEN) { /* a huge text field: send it on its own */
        if (PQputCopyData(w->conn, s, (int)n) != 1)
            pg_error(w, "COPY", NULL);
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_escaped(pg_writer *w, const char *s)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        char c = *p;
        if (c && c != '\\' && c != '\t' && c != '\n' && c != '\r')
            continue;
        put(w, run, (size_t)(p - run));
        if (!c)
            return;
        char e[2] = {'\\', c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : 'r'};
        put(w, e, 2);
        run = p + 1;
    }
}

static int pg_row(export_writer *base, const export_value *v)
{
    pg_writer *w = (pg_writer *)base;
    const export_table *t = base->t;
    char tmp[64];
    if (w->len + ROW_MAX > BUF_LEN && send_buf(w) != 0)
        return -1;
    for (size_t i = 0; i < t->ncols; i++) {
        if (i)
            put(w, "\t", 1);
        if (v[i].is_null) {
            put(w, "\\N", 2);
            continue;
        }
        int n = 0;
        switch (t->cols[i].type) {
        case EXPORT_TEXT:
        case EXPORT_ID:
            put_escaped(w, v[i].s);
            continue;
        case EXPORT_NUM:
            if (!isfinite(v[i].d)) {
                put(w, "\\N", 2);
                continue;
            }
            n = engine_double_format(v[i].d, tmp);
            break;
        case EXPORT_INT:
            n = snprintf(tmp, sizeof tmp, "%lld", (long long)v[i].i);
            break;
        case EXPORT_BOOL:
            put(w, v[i].b ? "t" : "f", 1);
            continue;
        case EXPORT_DATE:
            if (v[i].i != w->last_day) {
                export_format_date(v[i].i, w->day_text);
                w->last_day = v[i].i;
            }
            put(w, w->day_text, 10);
            continue;
        case EXPORT_TIME:
            n = export_format_time(v[i].i, tmp);
            break;
        }
        put(w, tmp, (size_t)n);
    }
    put(w, "\n", 1);
    w->rows++;
    return w->failed ? -1 : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pg_free(pg_writer *w)
{
    PQfinish(w->conn);
    free(w->buf);
    free(w);
}

/* "INSERT INTO t SELECT * FROM stage ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ..." */
static char *upsert_sql(const export_table *t)
{
    size_t cap = 8192, at = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    at += (size_t)snprintf(s + at, cap - at, "INSERT INTO %s SELECT * FROM plume_stage "
                           "ON CONFLICT (", t->sql_name);
    for (size_t i = 0, n = 0; i < t->ncols; i++)
        if (t->cols[i].key)
            at += (size_t)snprintf(s + at, cap - at, "%s%s", n++ ? ", " : "", t->cols[i].name);
    at += (size_t)snprintf(s + at, cap - at, ") DO UPDATE SET ");
    for (size_t i = 0, n = 0; i < t->ncols; i++)
        if (!t->cols[i].key)
            at += (size_t)snprintf(s + at, cap - at, "%s%s = EXCLUDED.%s", n++ ? ", " : "",
                                   t->cols[i].name, t->cols[i].name);
    return s;
}

/* "DELETE FROM t AS d WHERE range AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.key = d.key
 * ...)", limited to the exported MN and pollutant pairs when a filter chose the rows. */
static char *stale_sql(const pg_writer *w)
{
    const export_table *t = w->base.t;
    size_t cap = 4096, at = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    at += (size_t)snprintf(s + at, cap - at, "DELETE FROM %s AS d WHERE (%s) AND NOT EXISTS "
                           "(SELECT 1 FROM plume_stage s WHERE ", t->sql_name, w->range);
    for (size_t i = 0, n = 0; i < t->ncols; i++)
        if (t->cols[i].key)
            at += (size_t)snprintf(s + at, cap - at, "%ss.%s = d.%s", n++ ? " AND " : "",
                                   t->cols[i].name, t->cols[i].name);
    at += (size_t)snprintf(s + at, cap - at, ")");
    if (!w->whole)
        at += (size_t)snprintf(s + at, cap - at, " AND (d.mn, d.pollutant) IN "
                               "(SELECT mn, pollutant FROM plume_stage)");
    return s;
}

static int delete_stale(pg_writer *w)
{
    char *sql = stale_sql(w);
    if (!sql) {
        fprintf(stderr, "plume export: out of memory\n");
        return -1;
    }
    PGresult *res = PQexec(w->conn, sql);
    free(sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (ok)
        w->stale = strtoull(PQcmdTuples(res), NULL, 10);
    else
        pg_error(w, "deleting rows the export no longer has", res);
    PQclear(res);
    return ok ? 0 : -1;
}

static int pg_finish(export_writer *base)
{
    pg_writer *w = (pg_writer *)base;
    int rc = w->failed ? -1 : send_buf(w);
    if (rc == 0 && PQputCopyEnd(w->conn, NULL) != 1) {
        pg_error(w, "COPY end", NULL);
        rc = -1;
    }
    PGresult *res;
    while (rc == 0 && (res = PQgetResult(w->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            pg_error(w, "COPY into the staging table", res);
            rc = -1;
        }
        PQclear(res);
    }
    double t0 = now_s();
    char *sql = rc == 0 && !w->direct ? upsert_sql(base->t) : NULL;
    if (rc == 0 && !w->direct && (!sql || exec(w, sql, "upsert from the staging table") != 0))
        rc = -1;
    free(sql);
    if (rc == 0 && !w->direct)
        rc = delete_stale(w);
    double t1 = now_s();
    if (rc == 0)
        rc = exec(w, "COMMIT", "COMMIT");
    if (rc != 0)
        PQclear(PQexec(w->conn, "ROLLBACK")); /* nothing of the export remains */
    else if (!w->quiet && w->direct)
        fprintf(stderr, "plume export: %llu rows copied into %s (COPY %.2f s, commit %.2f s)\n",
                (unsigned long long)w->rows, base->t->sql_name, t0 - w->t_open, now_s() - t1);
    else if (!w->quiet)
        fprintf(stderr, "plume export: %llu rows upserted into %s, %llu no longer exported "
                "deleted (COPY into staging %.2f s, upsert %.2f s, commit %.2f s)\n",
                (unsigned long long)w->rows, base->t->sql_name, (unsigned long long)w->stale,
                t0 - w->t_open, t1 - t0, now_s() - t1);
    pg_free(w);
    return rc;
}

static void pg_abort(export_writer *base)
{
    pg_writer *w = (pg_writer *)base;
    if (PQisBusy(w->conn) || !w->failed)
        PQputCopyEnd(w->conn, "plume export aborted");
    PGresult *res;
    while ((res = PQgetResult(w->conn)) != NULL)
        PQclear(res);
    PQclear(PQexec(w->conn, "ROLLBACK"));
    pg_free(w);
}

static const export_writer_ops pg_ops = {pg_row, pg_finish, pg_abort};

/* Whether the table holds any row in range (an SQL condition); 1, 0, or -1 on error. */
static int holds_rows(pg_writer *w, const char *table, const char *range)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM %s WHERE %s)", table, range);
    PGresult *res = PQexec(w->conn, sql);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    else
        pg_error(w, "reading the table", res);
    PQclear(res);
    return rc;
}

export_writer *export_pg_open(const export_table *t, const char *conninfo, const char *range,
                              bool whole, bool quiet)
{
    pg_writer *w = calloc(1, sizeof *w);
    char sql[4096];
    if (!w || !(w->buf = malloc(BUF_LEN))) {
        fprintf(stderr, "plume export: out of memory\n");
        free(w);
        return NULL;
    }
    w->base.ops = &pg_ops;
    w->base.t = t;
    w->quiet = quiet;
    w->whole = whole;
    snprintf(w->range, sizeof w->range, "%s", range);
    w->last_day = INT64_MIN;
    w->t_open = now_s();
    w->conn = PQconnectdb(conninfo);
    if (PQstatus(w->conn) != CONNECTION_OK) {
        fprintf(stderr, "plume export: cannot connect to PostgreSQL (%s): %s", conninfo,
                PQerrorMessage(w->conn));
        pg_free(w);
        return NULL;
    }
    if (export_table_ddl(t, sql, sizeof sql) < 0 ||
        exec(w, "SET client_min_messages = warning", "settings") != 0 ||
        exec(w, "BEGIN", "BEGIN") != 0 || exec(w, sql, "creating the table") != 0)
        goto fail;
    /* One export into a table at a time (readers go on); then, when the table holds nothing
     * of the range, nothing can conflict and the rows are copied straight in. */
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", t->sql_name);
    if (exec(w, sql, "locking the table") != 0)
        goto fail;
    int held = holds_rows(w, t->sql_name, range);
    if (held < 0)
        goto fail;
    w->direct = held == 0;
    const char *into = w->direct ? t->sql_name : "plume_stage";
    if (!w->direct) {
        snprintf(sql, sizeof sql, "CREATE TEMP TABLE plume_stage (LIKE %s) ON COMMIT DROP",
                 t->sql_name);
        if (exec(w, sql, "creating the staging table") != 0)
            goto fail;
    }
    size_t at = (size_t)snprintf(sql, sizeof sql, "COPY %s (", into);
    for (size_t i = 0; i < t->ncols; i++)
        at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s", i ? ", " : "",
                               t->cols[i].name);
    snprintf(sql + at, sizeof sql - at, ") FROM STDIN");
    PGresult *res = PQexec(w->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pg_error(w, "COPY", res);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    return &w->base;
fail:
    PQclear(PQexec(w->conn, "ROLLBACK"));
    pg_free(w);
    return NULL;
}
