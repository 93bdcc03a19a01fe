/* http_src.h: internal to collectors/http/. What the HTTP poller's files share: a source's
 * definition as read from the sources file (sources.c), URL/header/body templates
 * (template.c), times in the formats platforms use (timefmt.c), and the JSON mapping from a
 * response body to points (mapping.c). README.md documents the sources file.
 *
 * Many sources share one definition (a provincial platform, one URL pattern): a source is
 * its name, its variables (facility, MN ...) and a pointer to a shared profile, so 72,000
 * sources cost their names and variables, not 72,000 copies of the mapping. */
#ifndef PLUME_COLLECTORS_HTTP_SRC_H
#define PLUME_COLLECTORS_HTTP_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

struct cJSON;

/* ---- Times (timefmt.c) ---------------------------------------------------------------- */

enum { HTTP_TIME_ISO = 0, HTTP_TIME_UNIX, HTTP_TIME_UNIX_MS, HTTP_TIME_PATTERN };

typedef struct http_timefmt {
    int kind;               /* HTTP_TIME_* */
    char pattern[48];       /* PATTERN: %Y %m %d %H %M %S %z and literal characters */
    int64_t offset_s;       /* zone of times written without one, east of UTC */
} http_timefmt;

/* Reads a format name: "iso", "unix", "unix_ms", or a pattern with '%'. 0 or -EINVAL. */
int http_timefmt_parse(const char *name, int64_t offset_s, http_timefmt *out);
/* Reads a zone "+08:00", "+0800", "-05:00", "Z" or "UTC". 0 or -EINVAL. */
int http_zone_parse(const char *s, int64_t *offset_s);
/* Formats UTC t; returns the length written into buf (>= 40 bytes), or -ERANGE. */
int http_time_format(const http_timefmt *f, int64_t t, char *buf, size_t len);
/* Parses len bytes of s into UTC seconds. 0 or -EINVAL. */
int http_time_parse(const http_timefmt *f, const char *s, size_t len, int64_t *out);

/* ---- Templates (template.c) ----------------------------------------------------------- */

/* The value of placeholder name (len bytes), or NULL when there is no such placeholder. */
typedef const char *(*http_var_fn)(void *arg, const char *name, size_t len);

/* Expands "{name}" placeholders (names of [a-z0-9_], case-insensitive letters) in tmpl; any
 * other brace is literal text, so JSON bodies need no escaping. url_encode percent-encodes
 * the substituted values (not the template). Writes a NUL-terminated string into out.
 * Returns its length, -ERANGE (out too small), or -ENOENT (an unknown placeholder, named in
 * err). */
int http_template_expand(const char *tmpl, bool url_encode, http_var_fn fn, void *arg,
                         char *out, size_t cap, char *err, size_t errlen);

/* ---- A source's definition (sources.c) ------------------------------------------------- */

typedef struct http_mapping {
    char *records;          /* path of the records array; "" when the body is the array */
    char *mn, *code;        /* paths in a record; NULL: the source's {mn} / {code} variable */
    char *time, *value, *flag;  /* flag may be NULL */
    char *cols[STORAGE_NCOLS];  /* further columns (min, max, cou, zsavg ...); [AVG] unused */
    http_timefmt time_fmt;
    bool time_is_end;       /* the payload stamps a period's end: store its start */
} http_mapping;

typedef struct http_paging {
    bool on;
    int64_t start;          /* first page number ({page}); {offset} starts at 0 */
    int64_t size;           /* records per page ({page_size}) */
    int64_t max_pages;      /* pages fetched per window at most */
    char *pages, *total;    /* paths of the page count / record count; NULL: stop on a
                               short page */
} http_paging;

typedef struct http_profile {
    char *url, *method, *body, *bearer_token;  /* body, bearer_token may be NULL */
    char **headers;         /* templates "Name: value" */
    size_t nheaders;
    int timeout_ms;
    int64_t interval_s, spread_s, lag_s, lookback_s, overlap_s, max_window_s;
    int64_t retry_base_s, retry_max_s;
    int series_iv;          /* STORAGE_IV_* of the series written */
    int64_t period_s;       /* length of one record's period; local days when 86400 */
    http_timefmt window_fmt;    /* of {from} and {to} */
    bool conditional;       /* If-None-Match / If-Modified-Since on a repeated request */
    http_mapping map;
    http_paging paging;
} http_profile;

typedef struct http_var {
    char *name, *value;
} http_var;

typedef struct http_source_def {
    char *name;
    const http_profile *prof;   /* borrowed from the set */
    http_var *vars;
    size_t nvars;
} http_source_def;

typedef struct http_source_set {
    http_source_def *src;
    size_t n;
    http_profile **prof;    /* owned */
    size_t nprof;
} http_source_set;

/* Parses a sources file's text (name for messages). On error err says where ("file:
 * sources[12].mapping.time: ...") and nothing is returned. 0, -EINVAL, -ENOMEM. */
int http_sources_parse(const char *text, size_t len, const char *name, http_source_set **out,
                       char *err, size_t errlen);
int http_sources_load(const char *path, http_source_set **out, char *err, size_t errlen);
void http_sources_free(http_source_set *set);
/* The value of a source's variable, or NULL. */
const char *http_source_var(const http_source_def *s, const char *name, size_t len);

/* ---- Mapping a response (mapping.c) ---------------------------------------------------- */

typedef struct http_record {
    const char *mn, *code;  /* borrowed from the page's JSON tree (or the source's vars) */
    int64_t ts;
    storage_point pt;       /* pt.ts == ts */
} http_record;

typedef struct http_page {
    struct cJSON *root;     /* owned */
    http_record *recs;      /* owned */
    size_t n;
    size_t nrecords;        /* elements of the records array, bad ones included */
    size_t bad;             /* records skipped */
    char why[200];          /* what was wrong with the first one skipped */
} http_page;

/* Maps a response body: the records array found by m->records, each element to a point.
 * An element missing its MN, code, time or value, or holding one that does not read, is
 * skipped and counted (why names the first). var_mn / var_code stand in for a mapping
 * without those paths (may be NULL). Returns 0, or -EINVAL when the body is not JSON or
 * has no records array where the mapping says (err says which, at which byte), -ENOMEM. */
int http_map_page(const http_mapping *m, const char *body, size_t len, const char *var_mn,
                  const char *var_code, http_page *out, char *err, size_t errlen);
void http_page_free(http_page *p);
/* A count (pages, total records) at path in the page's body; -1 when absent or not one. */
int64_t http_page_count(const http_page *p, const char *path);

/* The node at a dotted path ("data.records", "items.0.value"; "" is root), or NULL. */
struct cJSON *http_json_path(struct cJSON *root, const char *path);

#endif
