/* config.c: every setting of `plume serve` in one table: its INI section and name, type,
 * default and meaning. The same table reads the INI file (inih), applies command-line flags
 * (`--section.name=value`), prints the documentation (docs/CONFIG.md is generated from it),
 * and prints the effective configuration, so a setting cannot exist in one place and be
 * missing from another. */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

enum opt_type { T_STR, T_INT, T_BOOL, T_DURATION, T_DOUBLE };

typedef struct opt {
    const char *section, *name;
    enum opt_type type;
    size_t offset, size; /* size: capacity of a string field */
    const char *def;
    const char *help;
} opt;

#define S(sec, nm, field, def, help)                                                       \
    {sec, nm, T_STR, offsetof(engine_config, field), sizeof(((engine_config *)0)->field), def, help}
#define I(sec, nm, field, def, help) {sec, nm, T_INT, offsetof(engine_config, field), 0, def, help}
#define B(sec, nm, field, def, help) {sec, nm, T_BOOL, offsetof(engine_config, field), 0, def, help}
#define D(sec, nm, field, def, help)                                                       \
    {sec, nm, T_DURATION, offsetof(engine_config, field), 0, def, help}
#define F(sec, nm, field, def, help)                                                       \
    {sec, nm, T_DOUBLE, offsetof(engine_config, field), 0, def, help}

static const opt opts[] = {
    S("storage", "dir", db_dir, "./plume-data", "directory of the LMDB store (created if absent)"),
    I("storage", "commit_interval_ms", commit_interval_ms, "2",
      "longest an accepted reading waits for its group commit"),
    D("storage", "retention_rtd", retention_s[STORAGE_IV_RTD], "30d",
      "how long real-time values are kept (0 = forever)"),
    D("storage", "retention_min", retention_s[STORAGE_IV_MIN], "366d",
      "how long minute records are kept (0 = forever)"),
    D("storage", "retention_hour", retention_s[STORAGE_IV_HOUR], "0",
      "how long hourly records are kept (0 = forever)"),
    D("storage", "retention_day", retention_s[STORAGE_IV_DAY], "0",
      "how long daily records are kept (0 = forever)"),
    S("log", "level", log_level, "info", "least level logged: debug, info, warn, error"),
    S("hj212", "listen", hj212_listen, "127.0.0.1:9212",
      "addresses the HJ 212 server listens on, comma-separated host:port; empty = off"),
    B("hj212", "open", hj212_open, "false",
      "accept devices missing from the registry (their series are labelled unregistered)"),
    I("hj212", "max_connections", hj212_max_connections, "200000",
      "most device connections at once"),
    I("hj212", "max_segment", hj212_max_segment, "8192",
      "largest data segment accepted, bytes (the standard says 1024; devices send more)"),
    D("hj212", "idle_timeout", hj212_idle_timeout_s, "15m",
      "a device connection silent this long is closed"),
    S("hj212", "crc_policy", hj212_crc_policy, "reject",
      "packets whose CRC is not the standard one: reject, flag (accept and count), ignore"),
    S("query", "listen", query_listen, "127.0.0.1:6390",
      "address of the RESP query server, host:port; empty = off"),
    S("query", "unix", query_unix, "", "path of a Unix socket for queries; empty = none"),
    S("query", "token", query_token, "",
      "token clients must AUTH with; required when query.listen is not loopback"),
    I("query", "max_clients", query_max_clients, "10000", "most query connections at once"),
    I("query", "cache_mb", query_cache_mb, "64",
      "MiB of CEMS.CHART and TS.RANGE replies kept until their series changes; 0 = no cache"),
    I("query", "idle_timeout_ms", query_idle_timeout_ms, "0",
      "a query connection silent this long (milliseconds) is closed; 0 = never"),
    I("query", "max_bulk", query_max_bulk, "4194304",
      "largest argument of a query request, bytes (larger ones are refused unread)"),
    I("query", "max_output", query_max_output, "4194304",
      "bytes of unsent replies above which the server stops reading a query client"),
    S("metrics", "listen", metrics_listen, "127.0.0.1:9290",
      "address of the metrics page (HTTP GET /metrics, Prometheus text or OpenMetrics), "
      "host:port; empty = off; if it cannot bind, the daemon logs it and runs without"),
    S("registry", "files", registry_files, "",
      "registry files (CSV or JSON) loaded at start and on SIGHUP, comma-separated"),
    S("alerts", "subscriptions", alerts_subscriptions, "",
      "follow-list CSV files (engine/ALERTS.md) loaded at start and on SIGHUP, comma-separated; "
      "kept in the store"),
    I("alerts", "timeout_ms", alerts_timeout_ms, "10000", "time limit of one webhook request"),
    D("alerts", "give_up", alerts_give_up_s, "24h",
      "a delivery still failing after this long is given up (counted and logged)"),
    S("modbus", "config", modbus_config, "",
      "Modbus devices to poll: a JSON file of templates, gateways and devices "
      "(collectors/modbus/README.md), reloaded on SIGHUP; empty = off"),
    B("modbus", "minutes", modbus_minutes, "true",
      "roll Modbus readings up into minute records (MN:code:min), as a DAQ does"),
    B("rollup", "live", rollup_live, "true",
      "roll minute data up as it arrives into computed hours and days (series "
      "MN:code:hour.calc, MN:code:day.calc), again when late data touches them"),
    B("quality", "findings", quality_findings, "true",
      "raise data-quality findings (engine/RULES.md) as alerts through the outbox"),
    F("quality", "silent_hours", quality_silent_hours, "4",
      "an outlet with no data for longer than this many hours is silent"),
    F("quality", "flat_hours", quality_flat_hours, "24",
      "identical hourly values of a pollutant or O2 for this many hours while the plant "
      "runs are a flat line"),
    F("quality", "zero_hours", quality_zero_hours, "3",
      "hourly values of 0 for this many hours while the plant runs are a finding"),
    F("quality", "running_flow", quality_running_flow, "0",
      "the plant runs while the hour's flow is above this (no flow sent: taken as running)"),
    F("quality", "o2_k", quality_o2_k, "5",
      "dilution: O2 above the median of the last week's hours plus this many MADs ..."),
    F("quality", "o2_margin", quality_o2_margin, "2",
      "... or plus this many percentage points, whichever is more"),
    F("quality", "o2_max", quality_o2_max, "0",
      "dilution: O2 (%) above this whatever the outlet's normal; 0 = off"),
    F("quality", "flagged_share", quality_flagged_share, "0.25",
      "a local day with more than this share of hours flagged C, M, D or B is a finding"),
    F("quality", "mismatch_abs", quality_mismatch_abs, "0.1",
      "a reported hourly average disagrees with the one computed from its minutes when they "
      "differ by more than this ..."),
    F("quality", "mismatch_rel", quality_mismatch_rel, "0.02",
      "... or more than this share of the computed one, whichever is more"),
    S("http", "sources", http_sources, "",
      "sources file of the HTTP poller (JSON, collectors/http/README.md), reloaded on SIGHUP; "
      "empty = off"),
    I("http", "max_connections", http_max_connections, "256",
      "HTTP connections (and polls running) at once over all platforms"),
    I("http", "max_host_connections", http_max_host_connections, "64",
      "HTTP connections at once to one platform (scheme, host and port)"),
    D("http", "catchup", http_catchup_s, "10m",
      "sources behind at start (after an outage) catch up spread over this long; 0 = as fast "
      "as the connections allow"),
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const opt *find(const char *section, const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

/* Durations: a number with an optional unit s, m, h, d (seconds without one). */
static int parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -EINVAL;
    int64_t mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    else if (*end == 'd')
        mul = 86400, end++;
    if (*end)
        return -EINVAL;
    *out = v * mul;
    return 0;
}

static int set_value(engine_config *cfg, const opt *o, const char *value, char *err,
                     size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case T_STR:
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "%s.%s: value longer than %zu bytes", o->section, o->name,
                     o->size - 1);
            return -EINVAL;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case T_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > 1000000000) {
            snprintf(err, errlen, "%s.%s: '%s' is not a whole number from 0 to 1e9",
                     o->section, o->name, value);
            return -EINVAL;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
            !strcmp(value, "on")) {
            *(bool *)field = true;
        } else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0") ||
                   !strcmp(value, "off")) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s.%s: '%s' is not true or false", o->section, o->name,
                     value);
            return -EINVAL;
        }
        return 0;
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < 0) {
            snprintf(err, errlen, "%s.%s: '%s' is not a number >= 0", o->section, o->name,
                     value);
            return -EINVAL;
        }
        *(double *)field = v;
        return 0;
    }
    case T_DURATION:
        if (parse_duration(value, (int64_t *)field) != 0) {
            snprintf(err, errlen, "%s.%s: '%s' is not a duration (e.g. 90s, 15m, 2h, 30d)",
                     o->section, o->name, value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

void engine_config_defaults(engine_config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        set_value(cfg, &opts[i], opts[i].def, err, sizeof err);
}

int engine_config_set(engine_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    char section[32], name[64];
    const char *dot = strchr(key, '.');
    if (!dot || (size_t)(dot - key) >= sizeof section || strlen(dot + 1) >= sizeof name) {
        snprintf(err, errlen, "'%s' is not a setting (section.name)", key);
        return -ENOENT;
    }
    memcpy(section, key, (size_t)(dot - key));
    section[dot - key] = '\0';
    strcpy(name, dot + 1);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    const opt *o = find(section, name);
    if (!o) {
        snprintf(err, errlen, "unknown setting '%s' (see 'plume serve --help')", key);
        return -ENOENT;
    }
    return set_value(cfg, o, value, err, errlen);
}

typedef struct load_ctx {
    engine_config *cfg;
    char *err;
    size_t errlen;
    int failed;
} load_ctx;

static int on_ini(void *arg, const char *section, const char *name, const char *value)
{
    load_ctx *c = arg;
    char key[128], err[256];
    snprintf(key, sizeof key, "%s.%s", section, name);
    if (engine_config_set(c->cfg, key, value, err, sizeof err) != 0) {
        if (!c->failed)
            snprintf(c->err, c->errlen, "%s", err);
        c->failed++;
        return 0;
    }
    return 1;
}

int engine_config_load(engine_config *cfg, const char *path, char *err, size_t errlen)
{
    load_ctx c = {cfg, err, errlen, 0};
    int line = ini_parse(path, on_ini, &c);
    if (line == -1) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -errno ? -errno : -EIO;
    }
    if (line != 0) {
        /* inih stops at the first error and returns its line. */
        char what[256];
        snprintf(what, sizeof what, "%s", c.failed ? err : "syntax error");
        snprintf(err, errlen, "%s:%d: %s", path, line, what);
        return -EINVAL;
    }
    return 0;
}

int engine_config_check(const engine_config *cfg, char *err, size_t errlen)
{
    if (engine_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "log.level: '%s' is not debug, info, warn or error",
                 cfg->log_level);
        return -EINVAL;
    }
    if (strcmp(cfg->hj212_crc_policy, "reject") && strcmp(cfg->hj212_crc_policy, "flag") &&
        strcmp(cfg->hj212_crc_policy, "ignore")) {
        snprintf(err, errlen, "hj212.crc_policy: '%s' is not reject, flag or ignore",
                 cfg->hj212_crc_policy);
        return -EINVAL;
    }
    if (!cfg->db_dir[0]) {
        snprintf(err, errlen, "storage.dir: empty");
        return -EINVAL;
    }
    if (cfg->query_listen[0] && !cfg->query_token[0] &&
        strncmp(cfg->query_listen, "127.", 4) && strncmp(cfg->query_listen, "localhost:", 10) &&
        strncmp(cfg->query_listen, "[::1]:", 6)) {
        snprintf(err, errlen, "query.listen: '%s' is beyond loopback: set query.token",
                 cfg->query_listen);
        return -EINVAL;
    }
    return 0;
}

static void format_value(const engine_config *cfg, const opt *o, char *buf, size_t len)
{
    const char *field = (const char *)cfg + o->offset;
    switch (o->type) {
    case T_STR: snprintf(buf, len, "%s", field); break;
    case T_INT: snprintf(buf, len, "%d", *(const int *)field); break;
    case T_BOOL: snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false"); break;
    case T_DURATION: snprintf(buf, len, "%llds", (long long)*(const int64_t *)field); break;
    case T_DOUBLE: {
        char num[ENGINE_DOUBLE_FMT_LEN];
        engine_double_format(*(const double *)field, num);
        snprintf(buf, len, "%s", num);
        break;
    }
    }
}

void engine_config_print(const engine_config *cfg, FILE *f)
{
    const char *section = "";
    for (size_t i = 0; i < NOPTS; i++) {
        char v[512];
        if (strcmp(section, opts[i].section)) {
            section = opts[i].section;
            fprintf(f, "%s[%s]\n", i ? "\n" : "", section);
        }
        format_value(cfg, &opts[i], v, sizeof v);
        fprintf(f, "%s = %s\n", opts[i].name, v);
    }
}

void engine_config_print_help(FILE *f, bool markdown)
{
    if (markdown)
        fprintf(f, "| setting | flag | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (markdown)
            fprintf(f, "| `[%s] %s` | `--%s.%s` | %s%s%s | %s |\n", o->section, o->name,
                    o->section, o->name, o->def[0] ? "`" : "", o->def[0] ? o->def : "(empty)",
                    o->def[0] ? "`" : "", o->help);
        else
            fprintf(f, "  --%s.%s=%s\n      %s\n", o->section, o->name,
                    o->def[0] ? o->def : "\"\"", o->help);
    }
}

void engine_config_live_opts(const engine_config *cfg, engine_live_opts *out)
{
    engine_live_opts_init(out);
    out->rollup = cfg->rollup_live;
    out->findings = cfg->quality_findings;
    engine_quality_opts *q = &out->quality;
    q->silent_hours = cfg->quality_silent_hours;
    q->flat_hours = cfg->quality_flat_hours;
    q->zero_hours = cfg->quality_zero_hours;
    q->running_flow = cfg->quality_running_flow;
    q->o2_k = cfg->quality_o2_k;
    q->o2_min_margin = cfg->quality_o2_margin;
    q->o2_abs_max = cfg->quality_o2_max > 0 ? cfg->quality_o2_max : NAN;
    q->flagged_share = cfg->quality_flagged_share;
    q->mismatch_abs = cfg->quality_mismatch_abs;
    q->mismatch_rel = cfg->quality_mismatch_rel;
}
