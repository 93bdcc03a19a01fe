/* series.h: what the multi-series and domain commands share, internal to query/: label
 * filters (the FILTER expressions of TS.MRANGE, TS.MGET, TS.QUERYINDEX and CEMS.*), the
 * labels of a series (derived from its key and the registry), the server's label cache,
 * M4 downsampling, and the single-series range scan of cmd_ts.c.
 *
 * Labels travel as text, "name=value" pairs one per line, as storage keeps them.
 */
#ifndef PLUME_QUERY_SERIES_H
#define PLUME_QUERY_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "resp.h"
#include "storage.h"
#include "ts_range.h"

/* ---- Filters ------------------------------------------------------------------------ */

#define QF_MAX_TERMS 32   /* expressions of one FILTER */
#define QF_MAX_VALUES 32  /* values of one label=(a,b,...) list */
#define QF_MAX_TEXT 128   /* bytes of a label name or value */

typedef struct qf_term {
    char name[QF_MAX_TEXT];
    bool negate;                          /* != */
    size_t nvalues;                       /* 1 for label=value; "" means absent */
    char values[QF_MAX_VALUES][QF_MAX_TEXT];
} qf_term;

typedef struct qfilter {
    qf_term terms[QF_MAX_TERMS];
    size_t nterms;
} qfilter;

/* Parses the expressions argv[0..argc) as RedisTimeSeries does: label=value, label!=value,
 * label= (the label is absent), label!= (present), label=(a,b), label!=(a,b). At least one
 * expression must be a label=value or label=(...) with a non-empty value. Returns 0 or
 * -EINVAL with a message in err naming the expression. */
/* A time argument of the CEMS commands: Unix ms (|ms| < 2^50), or '-' / '+', which set
 * *open to -1 / 1 (0 otherwise). 0 or -EINVAL. */
int query_parse_ms(const resp_arg *a, int64_t *ms, int *open);

int qfilter_parse(size_t argc, const resp_arg *argv, qfilter *f, char *err, size_t errlen);

/* Whether labels (text form) pass every expression of f. */
bool qfilter_match(const qfilter *f, const char *labels);

/* The value of label name in labels, copied into buf (NUL-terminated); false if absent. */
bool query_label_get(const char *labels, const char *name, char *buf, size_t len);

/* ---- Labels of a series -------------------------------------------------------------- */

/* A key "MN:code:interval" split into its parts; false for any other key. */
typedef struct query_key {
    char mn[ENGINE_ID_SIZE];
    char code[ENGINE_POLLUTANT_SIZE];
    char interval[8];
} query_key;
bool query_key_split(const char *key, query_key *out);

/* Writes the labels of series key into buf: for MN:code:interval keys mn, pollutant,
 * interval, column and, when the registry knows the MN, facility, uscc, region, industry,
 * outlet, medium; for other keys the labels stored with the series (stored, may be NULL).
 * Returns the length, or -ERANGE if buf is too small. */
int query_labels_format(const char *key, const engine_registry *reg, const char *stored,
                        char *buf, size_t len);

/* The server's cache of every series' key and labels, rebuilt when the registry or the
 * number of series changes, with an index label=value -> sorted series ids. */
typedef struct query_labels query_labels;

void query_labels_free(query_labels *l);

/* Brings the cache of *lp up to date with st and reg (creating it on first use). Returns 0,
 * -ENOMEM, or a storage error. */
int query_labels_refresh(query_labels **lp, storage *st, const engine_registry *reg);

/* Series ids (ascending) whose labels pass f, in a malloc'd array the caller frees. */
int query_labels_select(const query_labels *l, const qfilter *f, storage_sid **out, size_t *n);

/* Key and labels of sid from the cache (valid until the next refresh); NULL if unknown. */
const char *query_labels_key(const query_labels *l, storage_sid sid);
const char *query_labels_text(const query_labels *l, storage_sid sid);

/* ---- M4 ------------------------------------------------------------------------------ */

/* The M4 points of one bucket: first, min, max, last in time order with equal timestamps
 * written once. Returns how many (1 to 4) were written to ts/v. */
int query_m4_points(const storage_bucket *b, int64_t *ts, double *v);

/* Bucket width (seconds, >= 1) giving at most width_px buckets over [from, to]. */
int64_t query_m4_width(int64_t from, int64_t to, int64_t width_px);

/* ---- cmd_ts.c's scan, shared --------------------------------------------------------- */

/* Finds the series and column a key names; -ENOENT. */
int query_resolve_key(storage *st, const char *key, size_t len, storage_sid *sid, int *col);

/* Collects the samples of sid/col q asks for (raw or bucketed, as TS.RANGE). */
int query_ts_collect(storage *st, storage_reader *r, storage_sid sid, int col,
                     const ts_range_req *q, bool reverse, ts_samples *out);

/* ---- Chart data (chart.c) ------------------------------------------------------------ */

#define QUERY_MAX_LIMITS 64

typedef struct query_limit_seg {
    int64_t from, to;            /* [from, to) seconds, clipped to the range asked */
    double value;
} query_limit_seg;

typedef struct query_limits {
    query_limit_seg seg[QUERY_MAX_LIMITS]; /* in time order */
    size_t n;
    char unit[ENGINE_CODE_SIZE]; /* "" when no limit */
} query_limits;

/* The limits in force for series key over [from, to] (seconds): the outlet by the key's
 * MN, the pollutant by its code, day limits for ":day" series and hour limits otherwise.
 * None (n = 0) without a registry or for other keys. */
void query_limits_find(const engine_registry *reg, const char *key, int64_t from, int64_t to,
                       query_limits *out);
/* The limit in force at t, or NaN; the lowest in force anywhere in [a, b], or NaN. */
double query_limit_at(const query_limits *l, int64_t t);
double query_limit_min(const query_limits *l, int64_t a, int64_t b);

/* Whether a data flag counts as valid for exceedance (N, or none sent). Inline: charts ask
 * it of every point. */
static inline bool query_flag_valid(uint8_t flag)
{
    return flag == 0 || flag == 'N';
}

typedef struct query_run {
    int64_t start, end;          /* first and last point (seconds) */
    double peak;                 /* highest value (exceedances) */
} query_run;

/* What a chart of one series shows (CEMS.CHART, plume chart). */
typedef struct query_chart_data {
    int64_t from, to;            /* seconds, inclusive ('-' / '+' resolved) */
    int64_t bucket;              /* seconds */
    int64_t *ts;                 /* owned: M4 points (seconds), n of them */
    double *v;
    size_t n;
    query_limits limits;
    query_run *exceed;           /* owned: exceedances */
    size_t nexceed;
    query_run *invalid;          /* owned: runs of points with an invalid flag (only when
                                    asked: it reads every point) */
    size_t ninvalid;
} query_chart_data;

/* Computes the chart of column col of sid (interval class iv) over [from, to] (seconds;
 * INT64_MIN / INT64_MAX: the series' first / last point) for px pixel columns: buckets of
 * equal width from `from`, or, when a pixel spans more than one chunk window, of whole
 * windows aligned on them (a little fewer than px). 0, or a storage error. */
int query_chart_compute(storage_reader *r, const engine_registry *reg, storage_sid sid,
                        int iv, int col, const char *key, int64_t from, int64_t to, int64_t px,
                        bool want_invalid, query_chart_data *d);
void query_chart_data_free(query_chart_data *d);

/* Writes d as an SVG document (chart_svg.c) into a malloc'd buffer. */
int query_chart_svg_render(const query_chart_data *d, const char *title, const char *unit,
                           int width, int height, int tz_offset_s, char **out, size_t *len);

#endif
