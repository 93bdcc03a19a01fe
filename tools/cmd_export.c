/* cmd_export.c: `plume export daily|exceedances|schema`, the daily batch that feeds the
 * record database: daily averages with validity, limits and exceedance multiples, and
 * exceedance episodes, as CSV, JSON Lines or straight into PostgreSQL.
 *
 * Wiring only: arguments are checked before anything is opened; the store is opened
 * read-only and read through one reader (one LMDB snapshot, so a running `plume serve` keeps
 * ingesting and the export sees one consistent state, registry included); the engine
 * computes the rows (engine_export_scan); a writer (export_csv.c, export_pg.c) writes them.
 * Progress goes to stderr: live on a terminal, a line every few seconds otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "export.h"
#include "storage.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: plume export daily --db DIR --from DAY [--to DAY] [OPTIONS]\n"
        "       plume export exceedances --db DIR --from DAY [--to DAY] [OPTIONS]\n"
        "       plume export schema\n\n"
        "daily        one row per outlet, pollutant and local day (China time): facility,\n"
        "             credit code, region, industry, outlet, MN, pollutant, unit, average,\n"
        "             min, max, oxygen-corrected average, valid hours, validity (>= 20 valid\n"
        "             hours), hours by flag, source (computed from hours, or reported by the\n"
        "             DAQ), emission mass, the limit in force, exceedance multiple\n"
        "exceedances  one row per exceedance episode starting in the range: start, end,\n"
        "             hours, peak, multiple, limit, state, alert id\n"
        "schema       print the PostgreSQL tables (DDL)\n\n"
        "options:\n"
        "  --db DIR          the store (opened read-only; works while plume serve runs)\n"
        "  --from DAY        first local day, YYYY-MM-DD\n"
        "  --to DAY          last local day, YYYY-MM-DD (default: --from)\n"
        "  --format FMT      csv (default), jsonl or pg\n"
        "  --out FILE        write to FILE (default: stdout); written as FILE.part and\n"
        "                    renamed when complete\n"
        "  --excel           CSV for Excel: UTF-8 BOM, CRLF, numeric-looking codes as text\n"
        "  --pg CONNINFO     with --format pg: the libpq connection string; one transaction\n"
        "                    creates the table if missing, COPYs into a staging table and\n"
        "                    upserts on (day, mn, pollutant) / (mn, pollutant, period,\n"
        "                    start_time) (days the table does not hold yet are copied\n"
        "                    straight in): re-running days replaces them, a failure writes\n"
        "                    nothing\n"
        "  --filter L=V[,V]  only outlets/pollutants whose label L is one of the values;\n"
        "                    labels: facility uscc region (prefix) industry outlet medium mn\n"
        "                    pollutant; repeat to combine\n"
        "  --quiet           no progress on stderr\n");
}

typedef struct opts {
    const char *what, *db, *out, *pg, *format;
    int64_t from, to;
    bool excel, quiet;
    engine_export_filter filter;
} opts;

/* A local day YYYY-MM-DD, checked as a calendar date (2026-02-30 is refused). */
static int parse_day(const char *opt, const char *s, int64_t *day)
{
    if (engine_day_parse(s, strlen(s), day) != 0) {
        fprintf(stderr, "plume export: %s: '%s' is not a day: expected YYYY-MM-DD, a date "
                "that exists (e.g. 2026-02-28)\n", opt, s);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},     {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},     {"format", required_argument, NULL, 'F'},
        {"out", required_argument, NULL, 'o'},    {"pg", required_argument, NULL, 'p'},
        {"filter", required_argument, NULL, 'l'}, {"excel", no_argument, NULL, 'x'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL;
    char why[400];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o->db = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'F': o->format = optarg; break;
        case 'o': o->out = optarg; break;
        case 'p': o->pg = optarg; break;
        case 'x': o->excel = true; break;
        case 'q': o->quiet = true; break;
        case 'h': return 0;
        case 'l':
            if (engine_export_filter_add(&o->filter, optarg, why, sizeof why) != 0) {
                fprintf(stderr, "plume export: --filter: %s\n", why);
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "plume export: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->db || !from) {
        fprintf(stderr, "plume export %s: --db and --from are required (see --help)\n",
                o->what);
        return 2;
    }
    if (parse_day("--from", from, &o->from) != 0 ||
        parse_day("--to", to ? to : from, &o->to) != 0)
        return 2;
    if (o->to < o->from) {
        fprintf(stderr, "plume export: --to %s is before --from %s\n", to, from);
        return 2;
    }
    if (strcmp(o->format, "csv") != 0 && strcmp(o->format, "jsonl") != 0 &&
        strcmp(o->format, "pg") != 0) {
        fprintf(stderr, "plume export: --format must be csv, jsonl or pg, not '%s'\n",
                o->format);
        return 2;
    }
    bool pg = strcmp(o->format, "pg") == 0;
    if (pg != (o->pg != NULL)) {
        fprintf(stderr, "plume export: --pg CONNINFO goes with --format pg, and only with it\n");
        return 2;
    }
    if (pg && o->out) {
        fprintf(stderr, "plume export: --out does not apply to --format pg\n");
        return 2;
    }
    if (o->excel && strcmp(o->format, "csv") != 0) {
        fprintf(stderr, "plume export: --excel applies to --format csv only\n");
        return 2;
    }
    return -1;
}

/* ---- Progress --------------------------------------------------------------------------- */

typedef struct run {
    const opts *o;
    export_writer *w;
    export_value v[64];
    bool tty;
    double t0, last;
    int status;          /* a writer failed */
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_progress(void *ud, const engine_export_progress *p)
{
    run *r = ud;
    if (r->o->quiet)
        return 0;
    double t = now_s(), el = t - r->t0;
    bool done = p->series_done >= p->series_total;
    if (!done && t - r->last < (r->tty ? 0.25 : 5.0))
        return 0;
    r->last = t;
    double rate = el > 0 ? (double)p->rows / el : 0;
    double frac = p->series_total ? (double)p->series_done / (double)p->series_total : 1;
    double eta = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "%splume export: %llu rows, %llu/%llu series (%.0f%%), %.0f rows/s, "
            "ETA %.0f s%s", r->tty ? "\r\033[K" : "", (unsigned long long)p->rows,
            (unsigned long long)p->series_done, (unsigned long long)p->series_total,
            frac * 100, rate, eta, r->tty ? "" : "\n");
    return 0;
}

/* ---- Rows ------------------------------------------------------------------------------- */

static void text(export_value *v, const char *s)
{
    v->is_null = !s || !s[0];
    v->s = s;
}

static void num(export_value *v, double d)
{
    v->is_null = !isfinite(d);
    v->d = d;
}

static void integer(export_value *v, int64_t i)
{
    v->is_null = false;
    v->i = i;
}

static void boolean(export_value *v, bool b)
{
    v->is_null = false;
    v->b = b;
}

static void col(export_value *v, const storage_point *p, int c)
{
    num(v, (p->mask & (1u << c)) ? p->v[c] : NAN);
}

static void facility_values(export_value *v, const engine_facility *f, const engine_outlet *o)
{
    text(&v[0], f ? f->id : NULL);
    text(&v[1], f ? f->name : NULL);
    text(&v[2], f ? f->uscc : NULL);
    text(&v[3], f ? f->region : NULL);
    text(&v[4], f ? f->industry : NULL);
    text(&v[5], o ? o->code : NULL);
}

static const char *period_name(int kind)
{
    return kind == ENGINE_PERIOD_DAY ? "day" : "hour";
}

static int daily_row(void *ud, const engine_daily_row *row)
{
    run *r = ud;
    export_value *v = r->v;
    const engine_period_result *res = &row->r;
    bool computed = row->source == ENGINE_SOURCE_COMPUTED;
    char flag[2] = {(char)res->p.flag, 0};
    v[0].is_null = false;
    v[0].i = row->day;
    facility_values(&v[1], row->facility, row->outlet);
    text(&v[7], row->mn);
    text(&v[8], row->pollutant);
    text(&v[9], row->unit);
    col(&v[10], &res->p, STORAGE_COL_AVG);
    col(&v[11], &res->p, STORAGE_COL_MIN);
    col(&v[12], &res->p, STORAGE_COL_MAX);
    col(&v[13], &res->p, STORAGE_COL_ZSAVG);
    integer(&v[14], res->n_valid);
    integer(&v[15], res->n_inputs);
    v[14].is_null = v[15].is_null = !computed;
    boolean(&v[16], res->valid);
    text(&v[17], flag);
    for (int k = 0; k < ENGINE_FLAG_OTHER; k++) {
        integer(&v[18 + k], res->flag_count[k]);
        v[18 + k].is_null = !computed;
    }
    text(&v[26], engine_row_source_name(row->source));
    num(&v[27], row->mass_kg);
    num(&v[28], row->limit ? row->limit->value : NAN);
    text(&v[29], row->limit ? period_name(row->limit->period) : NULL);
    num(&v[30], row->multiple);
    boolean(&v[31], row->exceeds);
    v[31].is_null = !row->limit;
    return r->w->ops->row(r->w, v) == 0 ? 0 : (r->status = -EIO);
}

static int episode_row(void *ud, const engine_episode_row *row)
{
    run *r = ud;
    export_value *v = r->v;
    char flag[2] = {(char)row->peak_flag, 0};
    facility_values(&v[0], row->facility, row->outlet);
    text(&v[6], row->mn);
    text(&v[7], row->pollutant);
    text(&v[8], row->limit && row->limit->unit[0] ? row->limit->unit
                                                  : engine_factor_unit(row->pollutant));
    text(&v[9], period_name(row->kind));
    integer(&v[10], row->ep.start);
    integer(&v[11], row->end_excl);
    integer(&v[12], 0);
    v[12].i = row->kind == ENGINE_PERIOD_DAY ? (int64_t)row->ep.count * 24 : row->ep.count;
    num(&v[13], row->ep.peak_value);
    integer(&v[14], row->ep.peak_ts);
    num(&v[15], row->ep.peak_limit);
    num(&v[16], row->ep.peak_multiple);
    text(&v[17], flag);
    text(&v[18], engine_alert_state_name(row->state));
    text(&v[19], row->alert_id);
    return r->w->ops->row(r->w, v) == 0 ? 0 : (r->status = -EIO);
}

/* ---- Main ------------------------------------------------------------------------------- */

static int export_run(opts *o)
{
    bool daily = strcmp(o->what, "daily") == 0;
    const export_table *t = daily ? &export_daily_table : &export_episode_table;
    storage_options so = {.read_only = true, .kv_tables = engine_kv_tables};
    storage *st = NULL;
    storage_reader *rd = NULL;
    engine_registry *reg = NULL;
    run r = {.o = o, .tty = isatty(2), .t0 = now_s()};
    int rc = storage_open(o->db, &so, &st);
    if (rc != 0) {
        fprintf(stderr, "plume export: cannot open store %s: %s\n", o->db, storage_strerror(rc));
        return 1;
    }
    if ((rc = storage_reader_open(st, &rd)) != 0) {
        fprintf(stderr, "plume export: %s: %s\n", o->db, storage_strerror(rc));
        storage_close(st);
        return 1;
    }
    rc = engine_registry_read(rd, &reg);
    if (rc != 0 && rc != -ENOENT) {
        fprintf(stderr, "plume export: the registry in %s cannot be read: %s\n", o->db,
                storage_strerror(rc));
        goto fail;
    }
    if (rc == -ENOENT && !o->quiet)
        fprintf(stderr, "plume export: %s holds no registry (plume registry import): rows "
                "carry MNs only, and no limits\n", o->db);
    if (strcmp(o->format, "pg") == 0) {
        char range[256], a[16], b[16];
        export_format_date(o->from, a);
        export_format_date(o->to, b);
        if (daily)
            snprintf(range, sizeof range, "day BETWEEN '%s' AND '%s'", a, b);
        else
            snprintf(range, sizeof range, "start_time >= '%sT00:00:00+08:00' AND start_time "
                     "< '%sT00:00:00+08:00'::timestamptz + interval '1 day'", a, b);
        r.w = export_pg_open(t, o->pg, range, o->filter.nterms == 0, o->quiet);
    } else {
        export_file_opts fo = {.path = o->out, .jsonl = strcmp(o->format, "jsonl") == 0,
                               .excel = o->excel};
        r.w = export_file_open(t, &fo);
    }
    if (!r.w)
        goto fail;
    engine_export_opts eo = {
        .reg = reg, .filter = &o->filter, .from_day = o->from, .to_day = o->to,
        .on_daily = daily ? daily_row : NULL, .on_episode = daily ? NULL : episode_row,
        .ud = &r, .on_progress = on_progress,
    };
    rc = engine_export_scan(st, rd, &eo);
    if (r.tty && !o->quiet)
        fputc('\n', stderr);
    storage_reader_close(rd);
    rd = NULL;
    if (rc != 0) {
        if (r.status == 0)
            fprintf(stderr, "plume export: reading %s: %s\n", o->db, storage_strerror(rc));
        r.w->ops->abort(r.w);
        goto fail;
    }
    if (r.w->ops->finish(r.w) != 0)
        goto fail;
    if (!o->quiet)
        fprintf(stderr, "plume export: done in %.2f s\n", now_s() - r.t0);
    engine_registry_destroy(reg);
    storage_close(st);
    return 0;
fail:
    storage_reader_close(rd);
    engine_registry_destroy(reg);
    storage_close(st);
    return 1;
}

int cmd_export(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    opts o = {.what = argv[1], .format = "csv"};
    if (strcmp(o.what, "schema") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            usage(stdout);
            return 0;
        }
        export_schema_print(stdout);
        return 0;
    }
    if (strcmp(o.what, "daily") != 0 && strcmp(o.what, "exceedances") != 0) {
        fprintf(stderr, "plume export: unknown table '%s' (daily, exceedances or schema)\n",
                o.what);
        return 2;
    }
    int rc = parse_args(argc - 1, argv + 1, &o);
    if (rc >= 0) {
        if (rc == 0)
            usage(stdout);
        return rc;
    }
    return export_run(&o);
}
