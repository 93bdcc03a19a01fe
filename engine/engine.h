/* engine.h: the domain layer of plume, its one public header.
 *
 * The engine turns readings into stored, judged data: the registry of facilities, outlets and
 * limits; the ingest pipeline; roll-ups from minute to hour to day by the validity rules;
 * exceedance and data-quality detection; the alert outbox and its delivery; configuration,
 * logging and time. It sits on storage/ and knows nothing of the collectors or the query
 * server above it.
 *
 * Conventions as in storage.h: 0 or a negative code, results through out-parameters.
 */
#ifndef PLUME_ENGINE_H
#define PLUME_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Time (timefmt.c) -------------------------------------------------------------- */

/* China Standard Time, the local time of HJ 212 DataTime and of daily averages. */
#define ENGINE_CST_OFFSET_S (8 * 3600)

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t engine_days_from_civil(int64_t y, unsigned m, unsigned d);
void engine_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Parses a timestamp of len bytes: Unix seconds ("1700000000"), or ISO 8601
 * "YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|+hh:mm|+hhmm|-hh:mm]" (a space may stand for T).
 * Without a zone the time is local at default_offset_s east of UTC. Fractions of a second
 * are dropped. Returns 0, or -EINVAL for anything else (a date like 2026-02-30 too). */
int engine_time_parse(const char *s, size_t len, int64_t default_offset_s, int64_t *out);

/* Parses a local day "YYYY-MM-DD" (exactly that shape, a date that exists) into the Unix
 * time of its midnight at China Standard Time. 0 or -EINVAL. */
int engine_day_parse(const char *s, size_t len, int64_t *day);

/* Formats t as ISO 8601 at offset_s east of UTC: "2026-11-22T08:00:00+08:00", or with
 * "Z" when offset_s is 0. buf needs 26 bytes. Returns the length written. */
int engine_time_format(int64_t t, int64_t offset_s, char *buf, size_t len);

/* ---- Logging (log.c) ------------------------------------------------------------------ */

/* logfmt lines on stderr: `ts=... level=info msg="..." key=value ...`. Log state changes
 * and summaries, never once per packet. Safe from any thread. */
enum { ENGINE_LOG_DEBUG, ENGINE_LOG_INFO, ENGINE_LOG_WARN, ENGINE_LOG_ERROR };
void engine_log_set_level(int level);
int engine_log_level_parse(const char *name); /* -1 if unknown */
bool engine_log_enabled(int level);
/* Key/value pairs as strings, NULL-terminated: engine_log_kv(L, "msg", "k", "v", NULL).
 * Values are quoted and escaped as logfmt needs. */
void engine_log_kv(int level, const char *msg, ...);
/* fmt formats the key=value part itself (values must not need quoting). */
void engine_logf(int level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Configuration (config.c) --------------------------------------------------------- */

/* Every setting of `plume serve`; docs/CONFIG.md lists them (engine_config_print_help). */
typedef struct engine_config {
    char db_dir[512];
    int commit_interval_ms;
    int64_t retention_s[STORAGE_NIV];
    char log_level[16];
    char hj212_listen[512];
    bool hj212_open;
    int hj212_max_connections;
    int hj212_max_segment;
    int64_t hj212_idle_timeout_s;
    char hj212_crc_policy[16];
    char query_listen[256];
    char query_unix[256];
    char query_token[256];
    int query_max_clients;
    int query_cache_mb;
    int query_idle_timeout_ms;
    int query_max_bulk;
    int query_max_output;
    char metrics_listen[256];
    char registry_files[1024];
    char alerts_subscriptions[1024];
    int alerts_timeout_ms;
    int64_t alerts_give_up_s;
    char modbus_config[512];
    bool modbus_minutes;
    bool rollup_live;
    bool quality_findings;
    double quality_silent_hours, quality_flat_hours, quality_zero_hours, quality_running_flow;
    double quality_o2_k, quality_o2_margin, quality_o2_max;
    double quality_flagged_share, quality_mismatch_abs, quality_mismatch_rel;
    char http_sources[1024];
    int http_max_connections;
    int http_max_host_connections;
    int64_t http_catchup_s;
} engine_config;

void engine_config_defaults(engine_config *cfg);
/* Reads an INI file over cfg. On error err says file:line and what; -EINVAL or -errno. */
int engine_config_load(engine_config *cfg, const char *path, char *err, size_t errlen);
/* Sets one setting by "section.name" (a '-' in the name stands for '_'); -ENOENT if there
 * is no such setting, -EINVAL if the value does not fit it. */
int engine_config_set(engine_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen);
/* Checks the settings together (e.g. a token when listening beyond loopback). */
int engine_config_check(const engine_config *cfg, char *err, size_t errlen);
/* The effective configuration as INI, and the documentation of every setting. */
void engine_config_print(const engine_config *cfg, FILE *f);
void engine_config_print_help(FILE *f, bool markdown);
/* The live roll-up and finding options the settings give (engine_live_opts below). */
struct engine_live_opts;
void engine_config_live_opts(const engine_config *cfg, struct engine_live_opts *out);

/* ---- Ingest (ingest.c) -------------------------------------------------------------- */

typedef struct engine engine; /* the running engine: one per store and loop; opaque */
struct uv_loop_s;

/* The key/value tables the engine keeps in the store; pass to storage_options.kv_tables. */
extern const char *const engine_kv_tables[];

typedef struct engine_options {
    storage *st;             /* borrowed; open until after engine_close */
    struct uv_loop_s *loop;  /* borrowed: acknowledgements are delivered on it */
    const struct engine_live_opts *live; /* live roll-ups and findings; NULL: defaults */
} engine_options;

/* Exceedance judgement at ingest (judge.c). */
typedef struct judge_stats {
    uint64_t detectors;        /* outlet x pollutant x period kind judged so far */
    uint64_t periods;          /* reported periods judged against a limit */
    uint64_t episodes_opened, episodes_closed;
    uint64_t alerts;           /* alert states raised */
    uint64_t alerts_failed;    /* could not be staged */
} judge_stats;

/* Live roll-ups of minute data and data-quality findings (rollup_live.c, findings.c). */
typedef struct engine_live_stats {
    uint64_t outlets;          /* devices (MN) tracked */
    uint64_t hours_computed;   /* hour.calc points written (recomputations included) */
    uint64_t days_computed;    /* day.calc points written */
    uint64_t jobs_pending;     /* hours and days waiting to be (re)computed */
    uint64_t compared;         /* computed hours compared with a reported one */
    uint64_t mismatches;       /* of those, hours that disagreed */
    uint64_t findings_fired, findings_resolved; /* finding alert states raised */
    uint64_t alerts_failed;    /* could not be staged */
    uint64_t states_saved;     /* device states staged into the store (live_state.c) */
} engine_live_stats;

typedef struct engine_stats {
    uint64_t uploads, uploads_committed, uploads_failed;
    uint64_t points, values_rejected, events;
    uint64_t commits_pending;
    judge_stats judge;
    engine_live_stats live;
} engine_stats;

int engine_create(const engine_options *opts, engine **out);
/* Submits what is pending, delivers the acknowledgements already committed, and closes
 * the engine's loop handles (its memory is freed when the loop runs their close callbacks).
 * Call storage_close() after this and before running the loop again. */
void engine_close(engine *e);
void engine_get_stats(const engine *e, engine_stats *out);

/* The registry uploads are judged against (borrowed: keep it alive until replaced or the
 * engine closes; NULL: nothing is judged), and where alerts go (borrowed; NULL: episodes
 * are judged but nothing is sent). Loop thread. */
struct engine_registry;
struct engine_alerts;
void engine_set_registry(engine *e, const struct engine_registry *reg);
void engine_set_alerts(engine *e, struct engine_alerts *alerts);

/* The series key of a device's pollutant and interval: "MN:code:interval". Returns its
 * length or -ERANGE. */
int engine_series_key(const char *mn, const char *code, int interval, char *buf, size_t len);

/* One pollutant's values in an upload: the factor code (2017 form) and the point (its ts is
 * ignored: the upload's ts is used). */
typedef struct engine_value {
    const char *code;
    storage_point pt;
} engine_value;

/* One device's values for one period: what an HJ 212 2011/2051/2061/2031 packet carries. */
typedef struct engine_upload {
    const char *mn;
    int interval;            /* STORAGE_IV_RTD .. STORAGE_IV_DAY */
    int64_t ts;              /* period start, UTC */
    const engine_value *values;
    size_t nvalues;
} engine_upload;

/* Called on the loop thread once the upload is durable (status 0) or failed (< 0). */
typedef void (*engine_ack_fn)(void *arg, int status);

/* Accepts an upload (loop thread only). Every value becomes a point of its series, created
 * on first sight; fn runs after the group commit holding them. Returns 0 (fn will run) or
 * -EINVAL / -ENOMEM (fn will not run). The upload's memory is not kept. */
int engine_ingest(engine *e, const engine_upload *u, engine_ack_fn fn, void *arg);

/* Keeps a device event (running state, restart time, site information: HJ 212 CN 2021,
 * 2041, 2081, 3020) as text in the events table, acknowledged like an upload. */
int engine_ingest_event(engine *e, const char *mn, int cn, int64_t ts, const char *text,
                        engine_ack_fn fn, void *arg);

/* ---- Real-time readings rolled up into minutes (rtd_rollup.c) ------------------------ */

/* For sources that give only readings (Modbus): each device's readings of a minute become
 * one minute record (series MN:code:min) ingested like a DAQ's 2051: AVG/MIN/MAX over the
 * valid readings (over all of them, with the most frequent flag, when none is valid), flag N
 * when any is valid. A minute closes when a later minute's reading arrives for the device,
 * or grace_s (0: 30) after its end. Loop thread only. */
typedef struct engine_rtd_rollup engine_rtd_rollup; /* opaque */
typedef struct engine_rtd_rollup_stats {
    uint64_t readings;       /* uploads added */
    uint64_t minutes;        /* minute uploads ingested */
    uint64_t late_readings;  /* readings of a minute already closed: stored, not rolled up */
    uint64_t errors;         /* minute uploads the engine refused */
} engine_rtd_rollup_stats;

int engine_rtd_rollup_create(engine *e, struct uv_loop_s *loop, int grace_s,
                             engine_rtd_rollup **out);
/* Adds an upload of interval STORAGE_IV_RTD already given to engine_ingest (its values'
 * AVG columns, ZSAVG too). 0, -EINVAL (not rtd, no MN), -ENOMEM. */
int engine_rtd_rollup_add(engine_rtd_rollup *r, const engine_upload *u);
/* Closes every open minute now. */
void engine_rtd_rollup_flush(engine_rtd_rollup *r);
void engine_rtd_rollup_get_stats(const engine_rtd_rollup *r, engine_rtd_rollup_stats *out);
/* Flushes, then closes the timer; memory goes when the loop runs its close callback. Call
 * before engine_close. */
void engine_rtd_rollup_close(engine_rtd_rollup *r);
/* ---- Numbers (numfmt.c) ------------------------------------------------------------ */

/* Bytes engine_double_format may write, the terminating NUL included. */
#define ENGINE_DOUBLE_FMT_LEN 32

/* Parses exactly len bytes as a decimal number: [+-]digits[.digits][(e|E)[+-]digits], at
 * least one digit before the exponent. The result is bit-for-bit the double strtod returns
 * for the same text (a fast exact path for up to ~15 significant digits, strtod beyond).
 * No locale, no spaces, no hex, no inf/nan. Returns 0, -EINVAL (not such a number, or longer
 * than 400 bytes), or -ERANGE (its magnitude overflows a double). */
int engine_double_parse(const char *s, size_t len, double *out);

/* Formats v as the shortest text that engine_double_parse and strtod read back to exactly v:
 * a plain decimal ("23.45", "-0.001", "4500") when one of at most 9 decimals does, otherwise
 * the shortest "%.Ng" (N <= 17). "nan", "inf", "-inf" for those. Writes a NUL-terminated
 * string of at most ENGINE_DOUBLE_FMT_LEN bytes into buf; returns its length. */
int engine_double_format(double v, char *buf);

/* ---- Points CSV (points_csv.c) ----------------------------------------------------- */

/* The longest series key (storage_series_ensure's limit). */
#define ENGINE_SERIES_KEY_MAX 255

/* One line of a points CSV: series,timestamp,value[,flag]. */
typedef struct engine_csv_point {
    const char *series;  /* borrowed from the line: not NUL-terminated, series_len bytes */
    size_t series_len;   /* 1 to ENGINE_SERIES_KEY_MAX */
    int64_t ts;          /* seconds since the epoch, UTC */
    double value;
    uint8_t flag;        /* one of N F M S D C T B; 'N' when the line has none */
} engine_csv_point;

/* Parses one line of len bytes without its '\n' (a trailing '\r' is dropped). The series
 * holds no control character or quote; the timestamp is anything engine_time_parse takes
 * (local China time when an ISO 8601 time has no zone); the value as engine_double_parse.
 * Returns 0 with *out filled, 1 for a blank line (nothing to import), or -EINVAL with *why
 * set to a static message naming what was wrong. Allocates nothing; any thread. */
int engine_points_csv_parse(const char *line, size_t len, engine_csv_point *out,
                            const char **why);

/* Formats one line "series,unix_seconds,value,flag\n" (flag 0 is written as N) into buf,
 * which needs series_len + 64 bytes. Returns the bytes written (no NUL). */
size_t engine_points_csv_format(const char *series, size_t series_len, int64_t ts, double value,
                                uint8_t flag, char *buf);

/* ---- Data flags, roll-ups, oxygen correction, emission mass (rollup.c) --------------- */

/* Media of an outlet: flue gas and wastewater follow different roll-up rules. */
enum engine_medium { ENGINE_MEDIUM_GAS = 0, ENGINE_MEDIUM_WATER = 1 };

/* Periods a roll-up produces. Days and months are local (offset_s east of UTC). */
enum engine_period_kind { ENGINE_PERIOD_HOUR = 0, ENGINE_PERIOD_DAY, ENGINE_PERIOD_MONTH };

/* Slots of the per-flag counters of a roll-up: the HJ 212 data flags, and OTHER for any
 * byte that is none of them. A point with no flag (0) counts under N when the options say
 * so (the default), under OTHER otherwise. */
enum engine_flag_slot {
    ENGINE_FLAG_N = 0, ENGINE_FLAG_F, ENGINE_FLAG_M, ENGINE_FLAG_S, ENGINE_FLAG_D,
    ENGINE_FLAG_C, ENGINE_FLAG_T, ENGINE_FLAG_B, ENGINE_FLAG_OTHER, ENGINE_NFLAGS
};

/* The slot of a flag byte (lower case letters count as upper case). */
int engine_flag_slot(uint8_t flag, bool none_is_normal);

/* Whether a flag makes a value valid for averages and exceedance: N always, T when t_valid
 * (a value above the measuring range is a lower bound; unconfirmed in the standard, hence
 * the switch), 0 (none sent) when none_is_normal; F M S D C B and anything else never. */
bool engine_flag_valid(uint8_t flag, bool t_valid, bool none_is_normal);

/* How roll-ups judge and average. engine_rollup_opts_init() sets the defaults shown. */
typedef struct engine_rollup_opts {
    int medium;                 /* ENGINE_MEDIUM_GAS (default) or ENGINE_MEDIUM_WATER */
    bool t_valid;               /* T counts as valid (default true) */
    bool none_is_normal;        /* a point with no flag counts as N (default true) */
    bool flow_weighted;         /* water: AVG/ZSAVG weighted by flow when flows are given
                                   (default false: arithmetic) */
    uint32_t min_valid_hour;    /* valid inputs an hour needs (default 45: minutes) */
    uint32_t min_valid_day;     /* valid inputs a day needs (default 20: hours) */
    uint32_t min_valid_month;   /* valid inputs a month needs (default 25: days) */
    double normal_share_gas;    /* gas: a period is N if >= this share of its inputs are
                                   valid, else D (default 0.75, HJ 212 Annex C) */
    double normal_share_water;  /* water: the same; default 1.0 (abnormal if any input is) */
    int64_t offset_s;           /* local time east of UTC for days/months (default CST) */
} engine_rollup_opts;

void engine_rollup_opts_init(engine_rollup_opts *o);

/* What one period rolled up to.
 * - p.ts is the period start; p.v/p.mask the rolled-up columns (see engine_rollup_period);
 *   p.flag the period's flag with validity folded in: an invalid period never carries a
 *   valid flag (a period short of valid inputs whose flag roll-up says N gets 'D'), so a
 *   day rolled up from computed hours counts exactly the valid hours.
 * - flag_rollup is the pure flag roll-up (HJ 212 Annex C) before validity is folded in. */
typedef struct engine_period_result {
    storage_point p;
    int kind;                          /* enum engine_period_kind */
    uint32_t n_inputs;                 /* inputs given */
    uint32_t n_valid;                  /* inputs with a valid flag and an AVG value */
    uint32_t flag_count[ENGINE_NFLAGS];
    uint8_t flag_rollup;
    bool valid;                        /* n_valid >= the period's minimum */
    bool weighted;                     /* AVG is flow-weighted (water, flows given, sum > 0) */
} engine_period_result;

/* Start of the period of kind containing ts (local days and months at offset_s). */
int64_t engine_period_start(int kind, int64_t ts, int64_t offset_s);
/* Start of the period after the one starting at start. */
int64_t engine_period_next(int kind, int64_t start, int64_t offset_s);

/* Number of leading points of in[0..n) in the same period as in[0] (in sorted by ts):
 * how a caller walks a sorted series period by period. 0 when n is 0. */
size_t engine_period_span(int kind, const storage_point *in, size_t n, int64_t offset_s);

/* Rolls the n points of one period up (points of minutes for an hour, of hours for a day, of
 * days for a month; any order). Only inputs with a valid flag (engine_flag_valid) count:
 * - AVG: their mean; for water with o->flow_weighted and flow != NULL, sum(C_i*Q_i)/sum(Q_i)
 *   over inputs with a finite flow >= 0 (arithmetic when that sum is 0; see `weighted`).
 *   ZSAVG likewise.
 * - MIN/MAX (ZSMIN/ZSMAX): the least/greatest of the inputs' MIN (MAX), or of their AVG
 *   when an input has no MIN (MAX).
 * - COU: the sum of the valid inputs' cumulative amounts.
 * A column is present in the result when at least one valid input had it. flow is NULL or
 * n flows aligned with in (NaN: unknown). Returns 0, or -EINVAL when n is 0 or the points
 * span more than one period. */
int engine_rollup_period(int kind, const storage_point *in, size_t n, const double *flow,
                         const engine_rollup_opts *o, engine_period_result *out);

/* engine_rollup_period for an hour of minute points and a day of hourly points. */
int engine_rollup_hour(const storage_point *minutes, size_t n, const double *flow,
                       const engine_rollup_opts *o, engine_period_result *out);
int engine_rollup_day(const storage_point *hours, size_t n, const double *flow,
                      const engine_rollup_opts *o, engine_period_result *out);

/* Oxygen correction guard. Near 21% O2 (stopped plant, purge air) the factor
 * (21 - ref) / (21 - O2) explodes; at or above max_o2 the value is either marked invalid
 * (default) or computed with O2 clamped to max_o2. */
typedef struct engine_o2_opts {
    double max_o2;   /* default 19.5 (%) */
    bool clamp;      /* default false: invalid */
} engine_o2_opts;

void engine_o2_opts_init(engine_o2_opts *o);

/* C_zs = c * (21 - o2_ref) / (21 - o2). Returns 0 with *out set; 1 when o2 was clamped
 * (then *out uses max_o2); -ERANGE when o2 >= max_o2 and the guard marks it invalid;
 * -EINVAL when an argument is not finite, o2 < 0 or o2_ref is outside [0, 21). *out is NaN
 * on error. o may be NULL for defaults. */
int engine_o2_correct(double c, double o2, double o2_ref, const engine_o2_opts *o,
                      double *out);

/* Fills ZSAVG/ZSMIN/ZSMAX of n points from their AVG/MIN/MAX and the aligned o2 values
 * (NaN: unknown, left alone). A point whose O2 trips the guard gets no ZS columns and flag
 * 'D' under the invalid policy. Returns the number of points the guard touched. */
size_t engine_o2_correct_points(storage_point *p, const double *o2, size_t n, double o2_ref,
                                const engine_o2_opts *o);

/* Flow units for emission rates. */
enum engine_flow_unit {
    ENGINE_FLOW_M3_H = 0, /* gas, standard dry m3/h */
    ENGINE_FLOW_M3_S,     /* gas, m3/s (a00000) */
    ENGINE_FLOW_L_S,      /* water, L/s (w00000); concentration then in mg/L */
};

/* Emission rate in kg/h of concentration c at flow q: gas G = c (mg/m3) * Q (m3/h) * 1e-6,
 * with m3/s converted (x 3600); water c in mg/L at L/s: G = c * q * 3.6e-3. NaN for an
 * unknown unit. */
double engine_emission_rate_kg_h(double c, double q, int flow_unit);


/* ---- Registry: facilities, outlets, limits (registry.c, registry_io.c; REGISTRY.md) --- */

/* The Unified Social Credit Code (统一社会信用代码, GB 32100-2015): 18 characters of
 * 0-9 A-H J-N P-R T-U W-Y; the last is a check character over the first 17 (weights 3^i mod
 * 31). engine_uscc_check returns 0 for a valid code of len bytes (upper case only), -EINVAL
 * otherwise. engine_uscc_check_char computes the check character of 17 characters, or 0 if
 * one of them is outside the set. */
int engine_uscc_check(const char *s, size_t len);
char engine_uscc_check_char(const char *first17);

/* Field sizes, the NUL included. */
#define ENGINE_ID_SIZE 33       /* facility id, MN: 1-32 bytes */
#define ENGINE_NAME_SIZE 256    /* facility name, UTF-8 */
#define ENGINE_CODE_SIZE 17     /* outlet code (DA001), PW, unit, industry code */
#define ENGINE_POLLUTANT_SIZE 16 /* factor code (a21026) */

typedef struct engine_facility {
    char id[ENGINE_ID_SIZE];
    char name[ENGINE_NAME_SIZE];
    char uscc[19];              /* "" when unknown */
    char region[7];             /* 6-digit administrative region code; "" when unknown */
    char industry[64];          /* industry classification (GB/T 4754 code or text) */
    double lat, lon;            /* degrees (WGS 84); NaN when unknown */
} engine_facility;

typedef struct engine_outlet {
    char facility_id[ENGINE_ID_SIZE];
    char code[ENGINE_CODE_SIZE]; /* DA001 (gas), DW001 (water) ... unique per facility */
    int medium;                  /* enum engine_medium */
    char mn[ENGINE_ID_SIZE];     /* the DAQ unit's MN: unique in the registry */
    char pw[ENGINE_CODE_SIZE];   /* the HJ 212 password; "" when none */
    double o2_ref;               /* reference O2 (%) for correction; NaN: none */
    bool flow_weighted;          /* water: hourly/daily means weighted by flow */
} engine_outlet;

/* What a limit is judged on: the oxygen-corrected (折算) or the measured concentration. */
enum engine_limit_basis { ENGINE_BASIS_ZS = 0, ENGINE_BASIS_MEASURED = 1 };

/* A limit in force on [valid_from, valid_to). Limits of one outlet, pollutant and period
 * never overlap in time, so at most one is in force at any moment. */
typedef struct engine_limit {
    char facility_id[ENGINE_ID_SIZE];
    char outlet[ENGINE_CODE_SIZE];
    char pollutant[ENGINE_POLLUTANT_SIZE];
    double value;                 /* > 0 */
    char unit[ENGINE_CODE_SIZE];  /* mg/m3, mg/L ... */
    int period;                   /* ENGINE_PERIOD_HOUR or ENGINE_PERIOD_DAY */
    int basis;                    /* enum engine_limit_basis */
    int64_t valid_from;           /* INT64_MIN: since always */
    int64_t valid_to;             /* INT64_MAX: until further notice */
} engine_limit;

/* A registry in memory; one owner, not thread-safe for writes (build one, then share it
 * read-only: lookups from many threads are safe while nobody adds). */
typedef struct engine_registry engine_registry;

int engine_registry_create(engine_registry **out);
void engine_registry_destroy(engine_registry *r);

/* Adds a record after checking every field and its references (an outlet's facility, a
 * limit's outlet) and uniqueness (facility id, USCC, outlet code per facility, MN, limits not
 * overlapping). Returns 0; -EINVAL (a field is wrong), -ENOENT (the referenced record is
 * missing), -EEXIST (a duplicate or overlap), -ENOMEM; on error *why (if why is not NULL)
 * holds a message naming the field, e.g. "uscc: wrong check character". Pointers returned by
 * lookups stay valid until the next add or the destroy. */
int engine_registry_add_facility(engine_registry *r, const engine_facility *f, char *why,
                                 size_t why_len);
int engine_registry_add_outlet(engine_registry *r, const engine_outlet *o, char *why,
                               size_t why_len);
int engine_registry_add_limit(engine_registry *r, const engine_limit *l, char *why,
                              size_t why_len);

/* Lookups; NULL when absent. By MN is the hot path of ingest (a hash lookup). */
const engine_outlet *engine_registry_outlet_by_mn(const engine_registry *r, const char *mn,
                                                  size_t len);
const engine_outlet *engine_registry_outlet(const engine_registry *r, const char *facility_id,
                                            const char *code);
const engine_facility *engine_registry_facility(const engine_registry *r, const char *id);
const engine_facility *engine_registry_facility_by_uscc(const engine_registry *r,
                                                        const char *uscc);
/* The limit in force for the outlet's pollutant on periods of kind period at time t (the
 * period start), or NULL when none is. */
const engine_limit *engine_registry_limit_find(const engine_registry *r,
                                               const engine_outlet *o, const char *pollutant,
                                               int period, int64_t t);

/* The outlet's limits, every pollutant, period and validity: the first when prev is NULL,
 * else the one after prev; NULL after the last. Costs the outlet's limits, not the
 * registry's. */
const engine_limit *engine_registry_limit_next(const engine_registry *r,
                                               const engine_outlet *o,
                                               const engine_limit *prev);

/* Record counts and records by index [0, count), in the order they were added. */
size_t engine_registry_facility_count(const engine_registry *r);
size_t engine_registry_outlet_count(const engine_registry *r);
size_t engine_registry_limit_count(const engine_registry *r);
const engine_facility *engine_registry_facility_at(const engine_registry *r, size_t i);
const engine_outlet *engine_registry_outlet_at(const engine_registry *r, size_t i);
const engine_limit *engine_registry_limit_at(const engine_registry *r, size_t i);

/* Import. Bad records are reported (file and line, or JSON path, and what is wrong),
 * counted, and skipped: the rest still loads. */
enum engine_registry_kind { ENGINE_REG_FACILITIES = 0, ENGINE_REG_OUTLETS, ENGINE_REG_LIMITS };

typedef struct engine_import_report {
    size_t loaded;     /* records added */
    size_t rejected;   /* records refused */
    /* Called once per refused record (may be NULL): source is the file name given, where
     * "line 12" or "$.outlets[3]", what the reason. The strings live only during the call. */
    void (*on_error)(void *ud, const char *source, const char *where, const char *what);
    void *ud;
} engine_import_report;

/* Loads records of one kind from CSV text (RFC 4180; a header row names the columns, in any
 * order; UTF-8, an optional BOM; CRLF or LF). Columns are listed in REGISTRY.md. Returns 0
 * (rep says how many records loaded and were refused), -EINVAL when the header lacks a
 * required column or names one twice, -ENOMEM. rep may be NULL. */
int engine_registry_load_csv(engine_registry *r, int kind, const char *data, size_t len,
                             const char *source, engine_import_report *rep);
/* Loads the JSON object {"facilities": [...], "outlets": [...], "limits": [...]} (each array
 * optional; facilities load first, then outlets, then limits). Returns 0, -EINVAL when the
 * text is not such an object, -ENOMEM. */
int engine_registry_load_json(engine_registry *r, const char *data, size_t len,
                              const char *source, engine_import_report *rep);
/* The same from a file (kind is ignored for JSON); -errno when it cannot be read. */
int engine_registry_load_csv_file(engine_registry *r, int kind, const char *path,
                                  engine_import_report *rep);
int engine_registry_load_json_file(engine_registry *r, const char *path,
                                   engine_import_report *rep);

/* Serializes the whole registry into bytes for a storage kv table (format in REGISTRY.md).
 * On success *out is a malloc'd buffer of *len bytes the caller frees. */
int engine_registry_encode(const engine_registry *r, uint8_t **out, size_t *len);
/* Builds a registry from encoded bytes; every record is checked as by the add functions.
 * Returns 0 with *out owned by the caller, -EBADMSG for anything malformed, -ENOMEM. */
int engine_registry_decode(const uint8_t *buf, size_t len, engine_registry **out);

/* ---- Exceedance episodes (detector.c) ------------------------------------------------- */

/* One completed period of one series, as the detector judges it. */
typedef struct engine_period {
    int64_t ts;     /* period start; periods of a detector are one step (hour or day) apart */
    double value;   /* the value the limit applies to (corrected or measured, per the limit) */
    double limit;   /* the limit in force for this period (engine_registry_limit_find); NaN:
                       none, never an exceedance */
    uint8_t flag;   /* the period's data flag */
    bool valid;     /* the period met its validity rule (engine_period_result.valid) */
} engine_period;

/* A period exceeds when it is valid, its flag is valid (N; T per t_valid; none per
 * none_is_normal; F M S D C B never), it has a limit, and value > limit (strictly: a value
 * at exactly the limit complies). */
typedef struct engine_detector_opts {
    uint32_t max_bridge;   /* invalid or missing periods an episode may span without
                              breaking (they never count as exceedance). Default 0, the HJ
                              practice: an episode is consecutive valid exceedance periods,
                              and an invalid or missing period ends it. A valid period at or
                              under the limit always ends it. */
    bool t_valid;          /* default true */
    bool none_is_normal;   /* default true */
    uint32_t horizon;      /* periods kept behind the newest period seen (default 744: 31
                              days of hours); data older than that is ignored and counted,
                              episodes ending before it are final and forgotten */
    uint32_t late_wait;    /* periods to wait for missing periods to arrive late (a history
                              pull), counted from the last missing one; default 0: never.
                              While waited for, a hole (periods with nothing received, between
                              two received ones) inside an episode's run of exceedance periods
                              does not break it, and one right before its first period or
                              inside it keeps it from being reported closed, so the episode
                              closes once, with the start, end and peak the late periods give.
                              Once the wait is over a hole counts as missing (see max_bridge). */
} engine_detector_opts;

void engine_detector_opts_init(engine_detector_opts *o);

/* An episode: a run of exceedance periods. Its id is stable (see engine_episode_id). */
typedef struct engine_episode {
    uint64_t id;
    int64_t anchor;        /* the start when the episode was first seen; the id derives from it */
    int64_t start, end;    /* first and last exceedance period (period starts) */
    int64_t peak_ts;       /* the period with the greatest exceedance multiple (earliest if tied) */
    double peak_value, peak_limit;
    double peak_multiple;  /* (value - limit) / limit at the peak */
    uint32_t count;        /* exceedance periods in the episode */
    bool closed;           /* the period after it (or after max_bridge more) has been seen and
                              ends it; late data may still reopen it */
} engine_episode;

enum engine_episode_event_type {
    ENGINE_EP_OPENED = 0,  /* a new episode */
    ENGINE_EP_EXTENDED,    /* it grew at its end (new periods after the last one) */
    ENGINE_EP_CHANGED,     /* anything else changed: start moved (late data before it), it
                              shrank (a corrected value), its peak changed */
    ENGINE_EP_CLOSED,      /* it was closed (emitted after any change of the same feed) */
    ENGINE_EP_REOPENED,    /* a closed episode is open again (late data after its end) */
    ENGINE_EP_MERGED,      /* late data joined it to an earlier episode: it no longer exists,
                              `into` is the id that lives on */
    ENGINE_EP_RETRACTED,   /* corrected data removed all of its periods: it no longer exists */
};

typedef struct engine_episode_event {
    int type;              /* enum engine_episode_event_type */
    engine_episode ep;     /* the episode after the change (as it was, for MERGED/RETRACTED) */
    uint64_t into;         /* MERGED: the surviving episode's id; 0 otherwise */
} engine_episode_event;

typedef void (*engine_episode_fn)(void *ud, const engine_episode_event *ev);

/* The id of an episode: a 64-bit hash (FNV-1a) of series, pollutant, period kind, anchor
 * and gen, never 0. The anchor is the episode's start when first seen; when late data moves
 * the start, the id stays (a CHANGED event). An episode split by a correction keeps its id on
 * the part that starts at its start; the other part gets the id of its own start. gen is 0
 * unless that id is taken by another live episode (then 1, 2, ...), so two live episodes
 * never share an id, and the same sequence of feeds always gives the same ids. */
uint64_t engine_episode_id(const char *series, const char *pollutant, int kind, int64_t anchor,
                           uint32_t gen);

/* Writes the id as 16 lower-case hex digits and a NUL into buf (17 bytes). */
void engine_episode_id_format(uint64_t id, char *buf);

/* The detector of one series (an outlet's MN, or any key) and pollutant, for hourly or daily
 * periods. Periods may be fed in any order and fed again (a corrected value replaces the
 * earlier one); every feed reports what changed through the callback, in order. One thread
 * at a time. */
typedef struct engine_detector engine_detector;

/* series and pollutant are copied (each up to 63 bytes). kind is ENGINE_PERIOD_HOUR or
 * ENGINE_PERIOD_DAY. o may be NULL for defaults. Returns 0, -EINVAL, -ENOMEM. */
int engine_detector_create(const char *series, const char *pollutant, int kind,
                           const engine_detector_opts *o, engine_detector **out);
void engine_detector_destroy(engine_detector *d);

/* Judges one period and reports every episode event it causes to cb (may be NULL) before
 * returning; cb must not call into this detector. Cost: O(periods in the horizon) per feed
 * (the episodes are recomputed and compared), about 5 us at the default horizon. Returns 0;
 * 1 when the period is older than the horizon and was ignored; -ENOMEM (nothing changed). */
int engine_detector_feed(engine_detector *d, const engine_period *p, engine_episode_fn cb,
                         void *ud);

/* The episodes the detector knows (within the horizon), by start; valid until the next
 * feed. Returns their number. */
size_t engine_detector_episodes(const engine_detector *d, const engine_episode **out);

/* Periods ignored because they were older than the horizon. */
uint64_t engine_detector_too_late(const engine_detector *d);

/* The detector's whole state as bytes (a storage kv value), so episodes and their ids
 * survive a restart: the periods in the horizon and each episode's id, anchor and state.
 * Format: magic "PLDT", version, then little-endian fields (see detector.c). *out is
 * malloc'd, owned by the caller. Returns 0 or -ENOMEM. */
int engine_detector_encode(const engine_detector *d, uint8_t **out, size_t *len);
/* A detector from encoded bytes, checked: records sorted and unique, episodes exactly those
 * the records give, ids distinct. Returns 0 with *out owned by the caller, -EBADMSG, or
 * -ENOMEM. */
int engine_detector_decode(const uint8_t *buf, size_t len, engine_detector **out);

/* ---- Daily rows and episodes of stored data, for export and queries (daily.c) --------- */

/* What the record database receives per outlet, pollutant and local day, and per exceedance
 * episode: computed here, from plain arrays of stored points, so `plume export`, CEMS.DAILY
 * and CEMS.EXCEEDANCES cannot disagree. engine_export_scan (export_scan.c) feeds these
 * functions from one read snapshot of a store. */

enum engine_row_source {
    ENGINE_SOURCE_COMPUTED = 0, /* rolled up from the hourly values */
    ENGINE_SOURCE_REPORTED = 1, /* the DAQ's own daily record (HJ 212 2031); no hours stored */
};
const char *engine_row_source_name(int source); /* "computed", "reported" */

/* The unit of a factor code when no limit names one ("mg/m3", "%", "m3/s", "mg/L" ...);
 * "" when unknown. */
const char *engine_factor_unit(const char *code);

/* The value a limit is judged on for period point p (the same rule as ingest's judgement):
 * a measured-basis limit takes AVG; a ZS-basis limit takes ZSAVG when present, else AVG
 * corrected with o2 (NaN: unknown) at the outlet's reference O2, else AVG when the outlet
 * has no reference O2. NaN when it cannot be known. o may be NULL (no correction). */
double engine_limit_judged_value(const storage_point *p, const engine_limit *lim,
                                 const engine_outlet *o, double o2);

/* The stored data of one pollutant of one outlet (or of an MN the registry does not know)
 * over whole local days [from_day, to_day]. Arrays are sorted by ts, borrowed for the
 * call; any may be empty. */
typedef struct engine_daily_input {
    const char *mn;                  /* the DAQ's MN */
    const char *pollutant;           /* factor code, e.g. a21026 */
    const engine_outlet *outlet;     /* NULL: not registered */
    const engine_facility *facility; /* NULL: not registered */
    const storage_point *hours;      /* the hourly series (reported, or hour.calc) */
    size_t nhours;
    const storage_point *days;       /* the DAQ's daily records */
    size_t ndays;
    const storage_point *o2;         /* the outlet's hourly O2 (a19001), for correction */
    size_t no2;
    const storage_point *flow;       /* the outlet's hourly flow (a00000 m3/s, w00000 L/s) */
    size_t nflow;
    int flow_unit;                   /* enum engine_flow_unit of flow */
    int64_t from_day, to_day;        /* local day starts (UTC seconds), inclusive */
} engine_daily_input;

/* One outlet, pollutant and local day. Pointers are borrowed for the callback only. */
typedef struct engine_daily_row {
    int64_t day;                     /* local day start, UTC seconds */
    const char *mn, *pollutant;
    const engine_outlet *outlet;     /* NULL: not registered */
    const engine_facility *facility; /* NULL: not registered */
    const char *unit;                /* the limit's unit, else engine_factor_unit; "" */
    int source;                      /* enum engine_row_source */
    /* The roll-up: r.p.v/mask hold AVG MIN MAX COU and ZSAVG ZSMIN ZSMAX (ZS as sent, or
     * corrected here from O2 at the outlet's reference); r.n_valid the valid hours;
     * r.n_inputs the hours present; r.flag_count the hours per flag; r.valid the >= 20
     * valid hours rule; r.p.flag the day's flag. For a reported row n_inputs and n_valid
     * are 0, flag_count is empty and valid follows the record's flag. */
    engine_period_result r;
    double mass_kg;                  /* emission over the day's valid hours from flow (or
                                        the sum of COU); NaN: unknown */
    const engine_limit *limit;       /* the daily limit in force that day, else the hourly
                                        one; NULL: none */
    double judged;                   /* the day's value the limit applies to; NaN */
    double multiple;                 /* (judged - limit) / limit for a valid day; NaN */
    bool exceeds;                    /* valid, and judged > limit */
} engine_daily_row;

typedef int (*engine_daily_fn)(void *ud, const engine_daily_row *row);

/* Calls fn for each local day of in's range that has hourly values (a computed row) or,
 * failing that, a daily record (a reported row), in day order. reg may be NULL; ro NULL for
 * the defaults (its medium and flow weighting are taken from the outlet). Allocates nothing
 * for days of up to 64 points. Returns 0, the first non-zero value of fn, or -ENOMEM. */
int engine_daily_rows(const engine_registry *reg, const engine_daily_input *in,
                      const engine_rollup_opts *ro, engine_daily_fn fn, void *ud);

/* One exceedance episode of an outlet's pollutant, judged on hours (kind HOUR, with the
 * hourly limits) or on daily averages (kind DAY, with the daily limits). */
typedef struct engine_episode_row {
    const char *mn, *pollutant;
    const engine_outlet *outlet;
    const engine_facility *facility;
    int kind;                        /* ENGINE_PERIOD_HOUR or ENGINE_PERIOD_DAY */
    engine_episode ep;               /* start, end (last period start), count, peak ... */
    int64_t end_excl;                /* the end of its last period */
    const engine_limit *limit;       /* the limit at the peak */
    uint8_t peak_flag;               /* the data flag of the peak period */
    int state;                       /* ENGINE_ALERT_FIRING (may still grow: the data ends
                                        with it) or ENGINE_ALERT_RESOLVED */
    char alert_id[17];               /* the id alerts of this episode carry */
} engine_episode_row;

typedef int (*engine_episode_row_fn)(void *ud, const engine_episode_row *row);

/* Judges in's hours (and its days, where daily limits are in force) with engine_detector,
 * exactly as ingest does, and calls fn once per episode, by kind then start. Episodes are
 * those of the data in the range: one that began before from_day starts at from_day here.
 * Returns 0, the first non-zero value of fn, or -ENOMEM. */
int engine_episode_rows(const engine_registry *reg, const engine_daily_input *in,
                        const engine_rollup_opts *ro, engine_episode_row_fn fn, void *ud);

/* ---- Scanning a store for export (export_scan.c) -------------------------------------- */

/* Filters on the labels of an outlet and pollutant: facility, uscc, region, industry,
 * outlet, medium, mn, pollutant. Terms are ANDed; a term "label=a,b" matches either value;
 * "region" matches a prefix of the region code ("32" matches 320102). */
#define ENGINE_FILTER_MAX_TERMS 16
typedef struct engine_export_filter {
    size_t nterms;
    struct {
        int label;
        char values[256];   /* comma-separated alternatives */
    } terms[ENGINE_FILTER_MAX_TERMS];
} engine_export_filter;

/* Adds "label=value[,value...]". -EINVAL with why naming the problem (an unknown label,
 * no '=', an empty value), -ERANGE when full. */
int engine_export_filter_add(engine_export_filter *f, const char *expr, char *why,
                             size_t why_len);

typedef struct engine_export_progress {
    uint64_t series_done, series_total; /* pollutant series of the selected outlets */
    uint64_t rows;
} engine_export_progress;

typedef struct engine_export_opts {
    const engine_registry *reg;        /* may be NULL: MNs are then unregistered */
    const engine_export_filter *filter; /* may be NULL */
    int64_t from_day, to_day;          /* local day starts, inclusive */
    const engine_rollup_opts *rollup;  /* NULL: defaults */
    engine_daily_fn on_daily;          /* either or both may be set */
    engine_episode_row_fn on_episode;
    void *ud;
    /* Called every 4,096 series and at the end; a non-zero return stops the scan. */
    int (*on_progress)(void *ud, const engine_export_progress *p);
} engine_export_opts;

/* Walks every hourly series "MN:code:hour" (or "MN:code:hour.calc" when the DAQ's hourly
 * series is absent) and daily series "MN:code:day" of the store, grouped by MN, through one
 * reader r (one snapshot; the caller opens and closes it, and r is used on the calling
 * thread only), and calls the callbacks per row, in catalog order. The callbacks run on a
 * worker thread the scan starts (one at a time, never concurrently), while the calling
 * thread reads ahead. Returns 0, the first non-zero callback value, -ENOMEM or a storage
 * error. */
int engine_export_scan(storage *st, storage_reader *r, const engine_export_opts *o);

/* ---- Data-quality findings (quality.c) ------------------------------------------------ */

/* What regulators watch for besides exceedances: signs that monitoring is broken or
 * tampered with. Checks run over sorted arrays of points (batch or a trailing window). */
enum engine_finding_kind {
    ENGINE_FIND_SILENT = 0,    /* no data for longer than silent_hours */
    ENGINE_FIND_FLATLINE,      /* identical values for >= flat_hours while the plant runs */
    ENGINE_FIND_ZEROS,         /* zeros for >= zero_hours while the plant runs */
    ENGINE_FIND_DILUTION,      /* O2 far above the outlet's normal (air added) */
    ENGINE_FIND_FLAGGED_DAY,   /* a day with too large a share of C/M/D/B periods */
    ENGINE_FIND_MISMATCH,      /* a reported hourly average disagrees with its minutes */
};

const char *engine_finding_name(int kind); /* "silent", "flatline", ... */

typedef struct engine_finding {
    int kind;           /* enum engine_finding_kind */
    int64_t start, end; /* SILENT: the first and last second without data; others: first and
                           last period start concerned (a day's start for FLAGGED_DAY) */
    uint32_t count;     /* periods concerned (SILENT: missing periods) */
    double value;       /* FLATLINE: the value; DILUTION: highest O2; FLAGGED_DAY: the share;
                           MISMATCH: the reported average; SILENT: hours without data */
    double reference;   /* DILUTION: the threshold; FLAGGED_DAY: the allowed share;
                           MISMATCH: the average computed from minutes */
} engine_finding;

typedef void (*engine_finding_fn)(void *ud, const engine_finding *f);

/* Thresholds; engine_quality_opts_init() sets the defaults shown. */
typedef struct engine_quality_opts {
    double silent_hours;     /* default 4 */
    double flat_hours;       /* default 24 */
    double flat_tolerance;   /* values within this of the run's first are identical (0) */
    double zero_hours;       /* default 3 */
    double zero_eps;         /* |value| <= this is zero (default 0) */
    double running_flow;     /* the plant runs while flow > this (default 0); without a
                                flow series it is taken as running; unknown flow (NaN) at a
                                point: not judged there */
    uint32_t o2_window;      /* trailing periods of the O2 baseline (default 168) */
    uint32_t o2_min_baseline;/* fewer baseline points: not judged (default 24) */
    double o2_k;             /* threshold = median + max(k * MAD, o2_min_margin) (5) */
    double o2_min_margin;    /* percentage points (default 2) */
    double o2_abs_max;       /* O2 above this is dilution whatever the baseline; NaN: off
                                (default) */
    double flagged_share;    /* a day with a share of C/M/D/B periods above this (0.25) */
    double mismatch_abs;     /* reported and computed hourly averages disagree when they */
    double mismatch_rel;     /* differ by more than max(abs, rel * |computed|): 0.1, 0.02 */
    int64_t offset_s;        /* local days (default China, UTC+8) */
    const engine_rollup_opts *rollup; /* how minutes roll up (MISMATCH); NULL: defaults */
} engine_quality_opts;

void engine_quality_opts_init(engine_quality_opts *o);

/* What the engine does live with the data it ingests (engine_options.live). */
typedef struct engine_live_opts {
    bool rollup;                 /* roll minute data up into MN:code:hour.calc and
                                    MN:code:day.calc as it arrives (default true) */
    bool findings;               /* raise data-quality findings as alerts (default true) */
    engine_quality_opts quality; /* their thresholds (engine_quality_opts_init) */
    engine_rollup_opts rollup_opts; /* validity rules (engine_rollup_opts_init); medium and
                                    flow weighting come from each outlet's registry entry */
} engine_live_opts;

void engine_live_opts_init(engine_live_opts *o);

/* One series to check: the pollutant's points (AVG column and flag), sorted by ts. */
typedef struct engine_quality_series {
    const storage_point *p;
    size_t n;
    int64_t step_s;      /* the data interval: 60 (minutes), 3600 (hours) ... */
    const double *flow;  /* NULL, or n flows aligned with p (NaN: unknown) */
    const double *o2;    /* NULL, or n O2 values (%) aligned with p (NaN: unknown) */
    int64_t from, to;    /* the time range judged, [from, to): silence at either end counts */
} engine_quality_series;

/* Runs the silence, flat-line, zero, dilution (when o2 is given) and flagged-day checks and
 * calls cb once per finding, in that order of checks, each by time. Only points with a valid
 * flag (N, T) are judged for flat lines, zeros and dilution; an invalid point or a gap in
 * time ends a run. Returns the number of findings, or -EINVAL. */
int engine_quality_check(const engine_quality_series *s, const engine_quality_opts *o,
                         engine_finding_fn cb, void *ud);

/* Rolls each reported hour's minutes up (engine_rollup_hour) and reports every hour whose
 * reported AVG disagrees with a valid computed one. Both series sorted by ts. Returns the
 * number of findings, or -EINVAL. */
int engine_quality_compare_hours(const engine_quality_series *reported,
                                 const engine_quality_series *minutes,
                                 const engine_quality_opts *o, engine_finding_fn cb, void *ud);
/* ---- The running registry (registry_store.c) ------------------------------------------ */

/* Loads the files of a comma-separated list into r: *.json, or CSV named for its kind
 * (facilities*.csv, outlets*.csv, limits*.csv), facilities first whatever the order.
 * Returns 0, or a negative code with err naming the file. Bad records go to rep. */
int engine_registry_load_files(engine_registry *r, const char *files, engine_import_report *rep,
                               char *err, size_t errlen);
/* Keeps r in the store's "registry" table (committed when this returns), and reads it back;
 * restore returns -ENOENT when none was saved. */
int engine_registry_save(storage *st, const engine_registry *r);
int engine_registry_restore(storage *st, engine_registry **out);
/* restore through the caller's reader, so the registry comes from the same snapshot as the
 * data read with it. */
int engine_registry_read(storage_reader *rd, engine_registry **out);

/* ---- HTTP client (http_client.c) ------------------------------------------------------ */

/* An asynchronous HTTP client on the caller's libuv loop (libcurl's multi socket interface).
 * Every function runs on the loop thread; callbacks run on it too. Creating a client
 * ignores SIGPIPE process-wide (a peer closing a TLS connection must not kill us). */
typedef struct engine_http engine_http; /* opaque */

typedef struct engine_http_options {
    long max_total_connections; /* 0: 64. Transfers beyond it wait for a free connection */
    long max_host_connections;  /* 0: 8 per host */
    size_t max_body_len;        /* response bodies are cut after this many bytes; 0: 1 MiB */
    const char *user_agent;     /* NULL: "plume" */
} engine_http_options;

typedef struct engine_http_req {
    const char *method;        /* "GET", "POST", "PUT", "HEAD", ...; NULL: GET, or POST if body */
    const char *url;           /* http:// or https:// only */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const void *body;          /* copied; may be NULL */
    size_t body_len;
    int timeout_ms;            /* whole transfer, connect included; 0: 10000 */
    int connect_timeout_ms;    /* 0: the same as timeout_ms */
} engine_http_req;

/* What a transfer ended with. status is 0 when an HTTP response arrived (whatever its code:
 * a 404 or 500 is for the caller to judge), else a negative code: -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH (name not resolved), -ECANCELED (client closed), -EIO (anything else; error
 * says what). Everything is borrowed for the duration of the callback only. */
typedef struct engine_http_response {
    int status;
    long http_code;            /* 0 when no response arrived */
    const char *body;          /* NUL-terminated; "" when none */
    size_t body_len;
    bool truncated;            /* the body was longer than max_body_len */
    const char *etag;          /* response headers, NULL when absent */
    const char *last_modified;
    const char *retry_after;
    const char *error;         /* a message when status < 0; "" otherwise */
    const char *raw_headers;   /* the final response's header lines, CRLF-separated */
    double total_s;            /* duration of the transfer */
} engine_http_response;

typedef void (*engine_http_done_fn)(void *arg, const engine_http_response *res);

int engine_http_create(struct uv_loop_s *loop, const engine_http_options *opts,
                       engine_http **out);
/* Starts a transfer. fn runs exactly once, on a later loop iteration, unless this returns
 * an error (-EINVAL: bad request, -ENOMEM). */
int engine_http_request(engine_http *c, const engine_http_req *req,
                        engine_http_done_fn fn, void *arg);
/* The value of any response header (case-insensitive name), valid during the callback
 * only; NULL if absent. */
const char *engine_http_response_header(const engine_http_response *res, const char *name);
/* Transfers in flight. */
size_t engine_http_pending(const engine_http *c);
/* Sockets open now (connections in use or kept alive), and the most open at once so far. */
size_t engine_http_sockets(const engine_http *c, size_t *peak);
/* Cancels every transfer (their callbacks run now with -ECANCELED) and closes the client;
 * memory is freed when the loop runs the handles' close callbacks. Not from a callback. */
void engine_http_close(engine_http *c);

/* ---- Alerts: model and formats (alert_format.c) --------------------------------------- */

/* An alert is one exceedance episode (or another condition) in one state. Its id is stable:
 * the same episode always gives the same id (the detector derives it from the episode), so
 * a receiver sees "firing" then "resolved" for one id. revision grows with every new state
 * or content of the alert; (id, state, revision) is the idempotency key of a delivery.
 * engine/ALERTS.md documents the JSON schema and the robot formats. */
enum { ENGINE_ALERT_FIRING = 0, ENGINE_ALERT_RESOLVED = 1 };
enum { ENGINE_SEVERITY_INFO = 0, ENGINE_SEVERITY_WARNING = 1, ENGINE_SEVERITY_CRITICAL = 2 };
enum { ENGINE_ALERT_FMT_JSON = 0, ENGINE_ALERT_FMT_DINGTALK = 1, ENGINE_ALERT_FMT_WECOM = 2 };

typedef struct engine_alert {
    const char *id;            /* stable per episode, 1..200 bytes, no control characters */
    int state;                 /* ENGINE_ALERT_FIRING / RESOLVED */
    uint32_t revision;         /* >= 1 */
    int severity;              /* ENGINE_SEVERITY_* */
    const char *kind;          /* "exceedance" (NULL), or another condition's name */
    const char *facility_id, *facility_name, *uscc, *region, *industry; /* NULL: unknown */
    const char *outlet, *mn, *pollutant; /* pollutant: HJ 212 factor code (a21026) */
    const char *unit;          /* of limit and value, e.g. "mg/m3" */
    double limit, value;       /* the limit and the (oxygen-corrected) average judged */
    double multiple;           /* (value - limit) / limit */
    int64_t start, end;        /* episode start; end (0 while firing); UTC seconds */
} engine_alert;

const char *engine_alert_state_name(int state);       /* "firing", "resolved" */
const char *engine_alert_severity_name(int severity); /* "info", "warning", "critical" */
const char *engine_alert_format_name(int format);     /* "json", "dingtalk", "wecom" */
int engine_alert_format_parse(const char *name);      /* -1 if unknown */
int engine_alert_severity_parse(const char *name);    /* -1 if unknown */

/* "id:state:revision" into buf; its length, or -ERANGE. */
int engine_alert_key(const engine_alert *a, char *buf, size_t len);

/* Checks the fields an alert must have (id, state, revision, severity); -EINVAL if not. */
int engine_alert_check(const engine_alert *a);

/* The body of a delivery in format fmt (JSON for every format): *out is malloc'd, owned by
 * the caller, NUL-terminated; *len its length. 0, -EINVAL or -ENOMEM. */
int engine_alert_format(const engine_alert *a, int fmt, char **out, size_t *len);

/* An alert decoded from its webhook JSON (engine_alert_format with FMT_JSON): one
 * allocation that owns its strings; free with free(). 0, -EINVAL (says nothing more: the
 * text is ours, written by format) or -ENOMEM. */
int engine_alert_parse_json(const char *text, size_t len, engine_alert **out);

/* ---- Alerts: subscriptions (subscriptions.c) ----------------------------------------- */

/* Follow lists: a subscriber follows facilities by facility id, USCC, region code prefix
 * ("3201" matches 320102), industry, or all of them, and names where its alerts go (a
 * webhook URL, a format, an optional header such as a token). Loaded in bulk from CSV
 * (columns in ALERTS.md); matching an alert costs a few binary searches however many
 * subscriptions there are. */
typedef struct engine_subs engine_subs; /* opaque */
enum { ENGINE_MATCH_FACILITY, ENGINE_MATCH_USCC, ENGINE_MATCH_REGION, ENGINE_MATCH_INDUSTRY,
       ENGINE_MATCH_ALL };

typedef struct engine_sub_dest {
    const char *url;
    int format;                /* ENGINE_ALERT_FMT_* */
    const char *header;        /* "Name: value" or NULL */
} engine_sub_dest;

/* Called once per rejected row with "name:line: what"; the row is skipped. */
typedef void (*engine_subs_error_fn)(void *arg, const char *msg);

int engine_subs_create(engine_subs **out);
void engine_subs_destroy(engine_subs *s);
/* Adds the rows of CSV text (name is for messages). A header row is recognised and
 * skipped. *nbad (may be NULL) gets the number of rejected rows. 0 or -ENOMEM. */
int engine_subs_parse_csv(engine_subs *s, const char *name, const char *text, size_t len,
                          engine_subs_error_fn fn, void *arg, size_t *nbad);
/* The same from a file; -errno if it cannot be read. */
int engine_subs_load_file(engine_subs *s, const char *path, engine_subs_error_fn fn,
                          void *arg, size_t *nbad);
size_t engine_subs_count(const engine_subs *s);
/* The distinct destinations whose subscriptions match a: up to max into out (pointers
 * borrowed until the subs are destroyed); *n gets how many match in all. */
int engine_subs_match(const engine_subs *s, const engine_alert *a, engine_sub_dest *out,
                      size_t max, size_t *n);

/* ---- Alerts: outbox and delivery (alerts.c, outbox.c) ------------------------------- */

/* Alerts are written to the outbox in the same commit as the data that raised them, one
 * delivery record per (alert, destination); after the commit each is sent at once, retried
 * with exponential backoff and full jitter per destination (a dead receiver delays no
 * other), and deleted once delivered, refused for good, or given up after a day. On start,
 * undelivered records are loaded and resumed. Everything runs on the loop thread. */
typedef struct engine_alerts engine_alerts; /* opaque */

/* Where the outbox lives. engine_outbox_storage() fills it for the store's "outbox" table;
 * a zeroed one keeps the outbox in memory only (lost on restart). */
typedef int (*engine_outbox_scan_fn)(void *arg, const void *key, size_t klen, const void *val,
                                     size_t vlen);
typedef struct engine_outbox_ops {
    void *ctx;
    /* adds a record to the caller's batch (committed with its data) */
    int (*batch_put)(void *ctx, storage_batch *b, const void *key, size_t klen,
                     const void *val, size_t vlen);
    /* writes or deletes a record in a commit of its own, soon */
    int (*put)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
    int (*del)(void *ctx, const void *key, size_t klen);
    /* calls fn for every record */
    int (*scan)(void *ctx, engine_outbox_scan_fn fn, void *arg);
} engine_outbox_ops;

typedef struct engine_alerts_options {
    struct uv_loop_s *loop;    /* borrowed */
    engine_outbox_ops outbox;  /* zeroed: in memory */
    engine_http *http;         /* borrowed; NULL: the alerts create their own */
    int timeout_ms;            /* per request; 0: 10000 */
    int max_inflight;          /* per destination; 0: 4 */
    int backoff_base_ms;       /* first retry within this; 0: 1000 */
    int backoff_max_ms;        /* retries at most this far apart; 0: 300000 */
    int64_t give_up_s;         /* give a delivery up after this long; 0: 86400 */
} engine_alerts_options;

typedef struct engine_alerts_stats {
    uint64_t alerts;           /* alert states committed */
    uint64_t deliveries;       /* delivery records created */
    uint64_t delivered, attempts, retries;
    uint64_t failed_permanent; /* refused by the receiver (4xx) */
    uint64_t given_up;         /* still failing after give_up_s */
    uint64_t pending;          /* records not yet delivered */
    uint64_t resumed;          /* records loaded at start */
} engine_alerts_stats;

/* Creates the delivery and resumes the records the outbox holds. 0 or a negative code. */
int engine_alerts_create(const engine_alerts_options *opts, engine_alerts **out);
/* Stops delivering (records stay in the outbox for the next start) and closes the loop
 * handles; memory is freed when the loop runs their close callbacks. */
void engine_alerts_close(engine_alerts *a);
/* Replaces the subscriptions (ownership passes to the alerts; NULL: none). Deliveries
 * already created keep their destination. */
void engine_alerts_set_subs(engine_alerts *a, engine_subs *s);

/* Stages a new alert state: matches the subscriptions and adds the outbox records to b (the
 * caller's batch, committed with the data that raised it). *ticket is then passed to
 * engine_alerts_committed (an engine_ack_fn) once that commit is durable or failed; only
 * then is anything sent. 0, -EINVAL (engine_alert_check), -ENOMEM. */
int engine_alerts_stage(engine_alerts *a, storage_batch *b, const engine_alert *al,
                        void **ticket);
void engine_alerts_committed(void *ticket, int status);
/* Stages with records written in a commit of their own, and sends at once. */
int engine_alerts_submit(engine_alerts *a, const engine_alert *al);

/* In-process fan-out (e.g. the query server's SUBSCRIBE): fn runs on the loop thread for
 * every alert state once committed, with its webhook JSON. Up to 8 hooks. */
typedef void (*engine_alert_fn)(void *arg, const engine_alert *al, const char *json,
                                size_t len);
int engine_alerts_on_fire(engine_alerts *a, engine_alert_fn fn, void *arg);

void engine_alerts_get_stats(const engine_alerts *a, engine_alerts_stats *out);

/* ---- Alerts: in the store (alert_store.c) -------------------------------------------- */

/* Fills ops for the store's "outbox" table (st borrowed; open while the alerts run). */
void engine_outbox_storage(storage *st, engine_outbox_ops *out);

/* Subscription uploads are kept as sent, one CSV text per name (1-255 bytes) in the
 * "subscriptions" table: put replaces an upload of the same name, with batch b. */
int engine_subs_store_put(storage_batch *b, const char *name, const char *csv, size_t len);
int engine_subs_store_del(storage_batch *b, const char *name);
/* Parses every stored upload into s, as engine_subs_parse_csv (names in messages are the
 * upload names). 0, a storage error, or -ENOMEM. */
int engine_subs_store_load(storage *st, engine_subs *s, engine_subs_error_fn fn, void *arg,
                           size_t *nbad);

#ifdef __cplusplus
}
#endif
#endif
