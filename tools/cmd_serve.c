/* cmd_serve.c: `plume serve`, the daemon. It wires the modules together and owns the
 * process-level concerns: settings (defaults, INI file, flags), signals (SIGTERM/SIGINT stop
 * cleanly, SIGHUP reloads), systemd readiness and watchdog notifications, and a summary
 * line in the log every minute. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "collectors.h"
#include "engine.h"
#include "mb.h"
#include "query.h"
#include "serve_metrics.h"
#include "storage.h"

#define SUMMARY_EVERY_MS (60 * 1000)
#define RETENTION_EVERY_MS (3600 * 1000)

typedef struct serve {
    engine_config cfg;
    uv_loop_t *loop;
    storage *st;
    engine *eng;
    engine_registry *registry;  /* owned; replaced whole on reload */
    engine_alerts *alerts;
    hj212_server *hj212;
    http_poller *http;          /* NULL without http.sources */
    query_server *query;
    query_metrics_page *metrics_page;
    serve_metrics metrics;      /* what the metrics page and INFO read */
    mb_config *modbus_cfg;      /* owned */
    mb_poller *modbus;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t summary, retention, watchdog;
    int stopping;
} serve;

/* systemd's notification protocol: a datagram to $NOTIFY_SOCKET. Without systemd, nothing. */
static void sd_notify_text(const char *text)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plume serve [--db DIR] [--config FILE] [--SECTION.NAME=VALUE ...]\n"
            "                   [--check-config] [--print-config]\n\n"
            "Runs the engine: the HJ 212 server devices connect to, ingest, and the query\n"
            "server. Settings come from their defaults, then the INI file, then flags.\n\n"
            "  --db DIR          the store's directory (same as --storage.dir)\n"
            "  --config FILE     an INI file of settings ([section] name = value)\n"
            "  --open            accept devices missing from the registry (--hj212.open)\n"
            "  --check-config    check the settings, print the effective ones, and exit\n"
            "  --print-config    print the effective settings as INI and exit\n\n"
            "settings:\n");
    engine_config_print_help(f, false);
}

static int split_host_port(const char *text, char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= hlen)
        return -EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '[') { /* [::1]:6390 */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

static void on_registry_error(void *ud, const char *source, const char *where,
                              const char *what)
{
    engine_log_kv(ENGINE_LOG_WARN, "registry record refused", "file", source, "where", where,
                  "error", what, NULL);
}

/* Loads the registry files named in the settings (kept in the store), or, without files,
 * the registry the store kept last time. On failure the current registry stays. */
static int load_registry(serve *sv)
{
    engine_registry *r = NULL;
    char err[512], n[3][24];
    int rc;
    if (sv->cfg.registry_files[0]) {
        engine_import_report rep = {.on_error = on_registry_error};
        if ((rc = engine_registry_create(&r)) != 0)
            return rc;
        rc = engine_registry_load_files(r, sv->cfg.registry_files, &rep, err, sizeof err);
        if (rc == 0)
            rc = engine_registry_save(sv->st, r);
        else
            engine_log_kv(ENGINE_LOG_ERROR, "registry not loaded", "error", err, NULL);
    } else {
        rc = engine_registry_restore(sv->st, &r);
        if (rc == -ENOENT)
            return 0; /* a new store and no files: no registry */
    }
    if (rc != 0) {
        engine_registry_destroy(r);
        return rc;
    }
    if (sv->query)
        query_server_set_registry(sv->query, r);
    engine_registry_destroy(sv->registry);
    sv->registry = r;
    snprintf(n[0], sizeof n[0], "%zu", engine_registry_facility_count(r));
    snprintf(n[1], sizeof n[1], "%zu", engine_registry_outlet_count(r));
    snprintf(n[2], sizeof n[2], "%zu", engine_registry_limit_count(r));
    engine_log_kv(ENGINE_LOG_INFO, "registry loaded", "facilities", n[0], "outlets", n[1],
                  "limits", n[2], NULL);
    return 0;
}

static void on_subs_error(void *arg, const char *msg)
{
    engine_log_kv(ENGINE_LOG_WARN, "subscription row refused", "error", msg, NULL);
}

/* Stores the follow-list files named in the settings (each replaces the upload of the same
 * name), then loads every stored upload into the alerts. */
static void load_subscriptions(serve *sv)
{
    const char *p = sv->cfg.alerts_subscriptions;
    storage_batch *b = storage_batch_create();
    while (b && *p) {
        size_t len = strcspn(p, ",");
        char path[1024];
        snprintf(path, sizeof path, "%.*s", (int)(len < sizeof path ? len : sizeof path - 1), p);
        p += len + (p[len] == ',');
        FILE *f = fopen(path, "rb");
        char *text = NULL;
        size_t n = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fseek(f, 0, SEEK_SET);
            text = size >= 0 ? malloc((size_t)size + 1) : NULL;
            n = text ? fread(text, 1, (size_t)size, f) : 0;
            fclose(f);
        }
        if (!text) {
            engine_log_kv(ENGINE_LOG_ERROR, "cannot read subscriptions", "file", path, "error",
                          strerror(errno), NULL);
            continue;
        }
        const char *base = strrchr(path, '/');
        engine_subs_store_put(b, base ? base + 1 : path, text, n);
        free(text);
    }
    if (b && storage_batch_points(b) == 0)
        storage_write(sv->st, b);
    storage_batch_destroy(b);
    engine_subs *subs;
    size_t nbad = 0;
    if (engine_subs_create(&subs) != 0)
        return;
    if (engine_subs_store_load(sv->st, subs, on_subs_error, sv, &nbad) != 0) {
        engine_subs_destroy(subs);
        return;
    }
    char count[24];
    snprintf(count, sizeof count, "%zu", engine_subs_count(subs));
    engine_alerts_set_subs(sv->alerts, subs);
    engine_log_kv(ENGINE_LOG_INFO, "subscriptions loaded", "subscriptions", count, NULL);
}

static int auth_device(void *arg, const char *mn, const char *pw)
{
    serve *sv = arg;
    const engine_outlet *o =
        sv->registry ? engine_registry_outlet_by_mn(sv->registry, mn, strlen(mn)) : NULL;
    if (!o)
        return HJ212_AUTH_UNKNOWN_MN;
    return strcmp(o->pw, pw) == 0 ? HJ212_AUTH_OK : HJ212_AUTH_BAD_PW;
}

static void on_query_closed(void *arg)
{
    (void)arg;
}

/* Alerts reach query clients subscribed to "alerts" or "alerts.<region>" as they fire. */
static void publish_alert(void *arg, const engine_alert *al, const char *json, size_t len)
{
    serve *sv = arg;
    char channel[32];
    if (!sv->query)
        return;
    query_server_publish(sv->query, "alerts", json, len);
    if (al->region && al->region[0]) {
        snprintf(channel, sizeof channel, "alerts.%s", al->region);
        query_server_publish(sv->query, channel, json, len);
    }
}

static void modbus_summary(serve *sv)
{
    if (!sv->modbus)
        return;
    mb_poller_stats ms;
    mb_poller_get_stats(sv->modbus, &ms);
    engine_logf(ENGINE_LOG_INFO, "modbus summary",
                "devices=%llu up=%llu down=%llu misconfigured=%llu polls=%llu polls_ok=%llu "
                "values=%llu timeouts=%llu exceptions=%llu connects=%llu connect_failures=%llu "
                "skipped=%llu late_cycles=%llu lateness_p50_ms=%.1f lateness_p99_ms=%.1f",
                (unsigned long long)ms.devices, (unsigned long long)ms.devices_up,
                (unsigned long long)ms.devices_down,
                (unsigned long long)ms.devices_misconfigured, (unsigned long long)ms.polls,
                (unsigned long long)ms.polls_ok, (unsigned long long)ms.values,
                (unsigned long long)ms.timeouts, (unsigned long long)ms.exceptions,
                (unsigned long long)ms.connects, (unsigned long long)ms.connect_failures,
                (unsigned long long)ms.skipped, (unsigned long long)ms.late_cycles,
                ms.lateness_p50_ms, ms.lateness_p99_ms);
}

static void on_summary(uv_timer_t *t)
{
    serve *sv = t->data;
    engine_stats es;
    engine_get_stats(sv->eng, &es);
    hj212_server_stats hs = {0};
    if (sv->hj212)
        hj212_server_get_stats(sv->hj212, &hs);
    storage_stats ss;
    storage_get_stats(sv->st, &ss);
    engine_logf(ENGINE_LOG_INFO, "summary",
                "devices_connected=%llu packets=%llu accepted=%llu crc_bad=%llu "
                "parse_errors=%llu auth_refused=%llu uploads_committed=%llu points=%llu "
                "series=%llu file_bytes=%llu commits=%llu commit_ms_avg=%.2f "
                "episodes_opened=%llu alerts=%llu hours_computed=%llu mismatches=%llu "
                "findings=%llu",
                (unsigned long long)hs.conns_open, (unsigned long long)hs.packets,
                (unsigned long long)hs.packets_accepted, (unsigned long long)hs.crc_bad,
                (unsigned long long)hs.parse_errors,
                (unsigned long long)(hs.auth_unknown_mn + hs.auth_bad_pw),
                (unsigned long long)es.uploads_committed, (unsigned long long)es.points,
                (unsigned long long)ss.series, (unsigned long long)ss.file_bytes,
                (unsigned long long)ss.commits,
                ss.commits ? (double)ss.commit_us_total / (double)ss.commits / 1000.0 : 0.0,
                (unsigned long long)es.judge.episodes_opened,
                (unsigned long long)es.judge.alerts,
                (unsigned long long)es.live.hours_computed,
                (unsigned long long)es.live.mismatches,
                (unsigned long long)es.live.findings_fired);
    if (sv->http) {
        http_poller_stats h;
        http_poller_get_stats(sv->http, &h);
        engine_logf(ENGINE_LOG_INFO, "http summary",
                    "sources=%llu up=%llu down=%llu polls=%llu polls_failed=%llu "
                    "requests=%llu not_modified=%llu records=%llu records_bad=%llu "
                    "running=%llu connections=%llu",
                    (unsigned long long)h.sources, (unsigned long long)h.up,
                    (unsigned long long)h.down, (unsigned long long)h.polls,
                    (unsigned long long)h.polls_failed, (unsigned long long)h.requests,
                    (unsigned long long)h.not_modified, (unsigned long long)h.records,
                    (unsigned long long)h.records_bad, (unsigned long long)h.running,
                    (unsigned long long)h.sockets);
    }
    modbus_summary(sv);
}

/* Loads the Modbus configuration and starts the poller before any other socket is open, so
 * the fds it reserves for libmodbus are low (mb.h). */
static int start_modbus(serve *sv)
{
    char err[512], n[2][24];
    if (!sv->cfg.modbus_config[0])
        return 0;
    int rc = mb_config_load_file(sv->cfg.modbus_config, &sv->modbus_cfg, err, sizeof err);
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "modbus configuration refused", "error", err, NULL);
        return rc;
    }
    mb_poller_options mo = {.config = sv->modbus_cfg, .st = sv->st,
                            .rollup_minutes = sv->cfg.modbus_minutes};
    rc = mb_poller_start(sv->loop, sv->eng, &mo, &sv->modbus);
    sv->metrics.modbus = sv->modbus;
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "modbus poller failed to start", "error",
                      strerror(-rc), NULL);
        return rc;
    }
    snprintf(n[0], sizeof n[0], "%zu", sv->modbus_cfg->nendpoints);
    snprintf(n[1], sizeof n[1], "%zu", sv->modbus_cfg->ndevices);
    engine_log_kv(ENGINE_LOG_INFO, "modbus polling", "config", sv->cfg.modbus_config,
                  "endpoints", n[0], "devices", n[1], NULL);
    return 0;
}

static void stop(serve *sv, const char *why)
{
    if (sv->stopping++)
        return;
    engine_log_kv(ENGINE_LOG_INFO, "stopping", "reason", why, NULL);
    on_summary(&sv->summary);
    sd_notify_text("STOPPING=1");
    if (sv->modbus) {
        sv->metrics.modbus = NULL;
        mb_poller_close(sv->modbus); /* its last readings are ingested before the engine closes */
        sv->modbus = NULL;
    }
    if (sv->hj212)
        hj212_server_close(sv->hj212);
    http_poller_close(sv->http); /* before the engine: it acknowledges what the polls gave */
    sv->http = NULL;
    query_metrics_page_close(sv->metrics_page);
    sv->metrics_page = NULL;
    if (sv->query)
        query_server_close(sv->query, on_query_closed, NULL);
    sv->query = NULL; /* freed once closed: alerts still committing publish nowhere */
    sv->metrics.query = NULL;
    sv->metrics.hj212 = NULL;
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sighup, NULL);
    uv_close((uv_handle_t *)&sv->summary, NULL);
    uv_close((uv_handle_t *)&sv->retention, NULL);
    uv_close((uv_handle_t *)&sv->watchdog, NULL);
    /* Everything accepted is committed and acknowledged before the store closes; alerts
     * not yet delivered stay in the outbox for the next start. */
    engine_close(sv->eng);
    engine_alerts_close(sv->alerts);
}

/* The HTTP poller, when a sources file is set. A bad file stops the start (the operator
 * asked for those sources), but only a log line on reload (the old sources poll on). */
static int start_http(serve *sv)
{
    const engine_config *cfg = &sv->cfg;
    char err[512], n[24];
    if (!cfg->http_sources[0])
        return 0;
    http_poller_options o = {.sources_file = cfg->http_sources, .st = sv->st,
                             .max_connections = (uint32_t)cfg->http_max_connections,
                             .max_host_connections = (uint32_t)cfg->http_max_host_connections,
                             .catchup_ms = cfg->http_catchup_s * 1000,
                             .seed = (uint64_t)getpid()};
    int rc = http_poller_start(sv->loop, sv->eng, &o, &sv->http, err, sizeof err);
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "http sources not loaded", "error", err, NULL);
        return rc;
    }
    http_poller_stats st;
    http_poller_get_stats(sv->http, &st);
    snprintf(n, sizeof n, "%llu", (unsigned long long)st.sources);
    engine_log_kv(ENGINE_LOG_INFO, "http polling", "sources", n, "file", cfg->http_sources, NULL);
    return 0;
}

/* A new Modbus configuration file while polling goes on. A file with a mistake changes
 * nothing: the error names the file and the line. */
static void reload_modbus(serve *sv)
{
    char err[512];
    char n[7][24];
    mb_config *cfg;
    mb_reload_report r;
    if (!sv->modbus)
        return;
    int rc = mb_config_load_file(sv->cfg.modbus_config, &cfg, err, sizeof err);
    if (rc == 0)
        rc = mb_poller_reload(sv->modbus, cfg, &r, err, sizeof err);
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "modbus configuration not reloaded", "error", err,
                      "hint", "the configuration in force stays", NULL);
        return;
    }
    size_t v[7] = {r.endpoints_kept, r.endpoints_changed, r.endpoints_added,
                   r.endpoints_removed, r.devices, r.devices_added, r.devices_removed};
    for (int i = 0; i < 7; i++)
        snprintf(n[i], sizeof n[i], "%zu", v[i]);
    engine_log_kv(ENGINE_LOG_INFO, "modbus configuration reloaded", "config",
                  sv->cfg.modbus_config, "gateways_kept", n[0], "gateways_changed", n[1],
                  "gateways_added", n[2], "gateways_removed", n[3], "devices", n[4],
                  "devices_added", n[5], "devices_removed", n[6], NULL);
}

static void reload_http(serve *sv)
{
    char err[512];
    if (sv->http && http_poller_reload(sv->http, err, sizeof err) != 0)
        engine_log_kv(ENGINE_LOG_ERROR, "http sources not reloaded", "error", err, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve *sv = h->data;
    if (signum == SIGHUP) {
        engine_log_kv(ENGINE_LOG_INFO, "reload requested", NULL);
        if (load_registry(sv) == 0)
            engine_set_registry(sv->eng, sv->registry);
        load_subscriptions(sv);
        reload_http(sv);
        reload_modbus(sv);
        return;
    }
    stop(sv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_retention(uv_timer_t *t)
{
    serve *sv = t->data;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    int rc = storage_retention_run(sv->st, tv.tv_sec);
    if (rc < 0)
        engine_log_kv(ENGINE_LOG_WARN, "retention failed", "error", storage_strerror(rc),
                      NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    sd_notify_text("WATCHDOG=1");
}

static void start_timer(serve *sv, uv_timer_t *t, uv_timer_cb cb, uint64_t every_ms)
{
    uv_timer_init(sv->loop, t);
    t->data = sv;
    uv_timer_start(t, cb, every_ms, every_ms);
    uv_unref((uv_handle_t *)t);
}

/* The metrics page is for operators, not for data: if its address is taken the daemon says
 * so and runs on without it rather than refusing to collect data. */
static void start_metrics_page(serve *sv)
{
    const char *listen = sv->cfg.metrics_listen;
    if (!listen[0])
        return;
    char host[256], port[16];
    int p;
    if (split_host_port(listen, host, sizeof host, &p) != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "bad metrics.listen", "value", listen, NULL);
        return;
    }
    int rc = query_metrics_page_start(sv->loop, host, p, serve_metrics_collect, &sv->metrics,
                                      &sv->metrics_page);
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "metrics page not started", "listen", listen, "error",
                      uv_strerror(rc), NULL);
        return;
    }
    snprintf(port, sizeof port, "%d", query_metrics_page_port(sv->metrics_page));
    engine_log_kv(ENGINE_LOG_INFO, "metrics listening", "listen", listen, "port", port, NULL);
}

static int start_servers(serve *sv)
{
    const engine_config *cfg = &sv->cfg;
    char port[16];
    if (cfg->hj212_listen[0]) {
        hj212_server_options ho = {
            .listen = cfg->hj212_listen,
            .auth = auth_device,
            .auth_arg = sv,
            .open = cfg->hj212_open,
            .crc_policy = !strcmp(cfg->hj212_crc_policy, "flag")     ? HJ212_CRC_FLAG
                          : !strcmp(cfg->hj212_crc_policy, "ignore") ? HJ212_CRC_IGNORE
                                                                     : HJ212_CRC_REJECT,
            .max_connections = (uint32_t)cfg->hj212_max_connections,
            .max_segment = (uint32_t)cfg->hj212_max_segment,
            .idle_timeout_s = (uint32_t)cfg->hj212_idle_timeout_s,
            .set_clock = true,
            .tz_offset_s = ENGINE_CST_OFFSET_S,
        };
        int rc = hj212_server_start(sv->loop, sv->eng, &ho, &sv->hj212);
        if (rc != 0) {
            engine_log_kv(ENGINE_LOG_ERROR, "hj212 server failed to start", "listen",
                          cfg->hj212_listen, "error", uv_strerror(rc), NULL);
            return rc;
        }
        sv->metrics.hj212 = sv->hj212;
        snprintf(port, sizeof port, "%d", hj212_server_port(sv->hj212, 0));
        engine_log_kv(ENGINE_LOG_INFO, "hj212 listening", "listen", cfg->hj212_listen, "port",
                      port, "open", cfg->hj212_open ? "true" : "false", NULL);
    }
    if (cfg->query_listen[0] || cfg->query_unix[0]) {
        query_options qo;
        query_options_default(&qo);
        char host[256];
        if (cfg->query_listen[0]) {
            if (split_host_port(cfg->query_listen, host, sizeof host, &qo.port) != 0) {
                engine_log_kv(ENGINE_LOG_ERROR, "bad query.listen", "value", cfg->query_listen,
                              NULL);
                return -EINVAL;
            }
            qo.host = host;
        } else {
            qo.host = NULL;
        }
        qo.unix_path = cfg->query_unix[0] ? cfg->query_unix : NULL;
        qo.auth_token = cfg->query_token[0] ? cfg->query_token : NULL;
        qo.max_clients = (uint32_t)cfg->query_max_clients;
        qo.idle_timeout_ms = (uint32_t)cfg->query_idle_timeout_ms;
        qo.max_bulk_len = (size_t)cfg->query_max_bulk;
        qo.max_output_len = (size_t)cfg->query_max_output;
        qo.cache_bytes = cfg->query_cache_mb > 0 ? (size_t)cfg->query_cache_mb << 20 : SIZE_MAX;
        qo.storage = sv->st;
        int rc = query_server_create(sv->loop, &qo, &sv->query);
        if (rc == 0) {
            query_server_set_registry(sv->query, sv->registry);
            rc = query_server_start(sv->query);
        }
        if (rc != 0) {
            engine_log_kv(ENGINE_LOG_ERROR, "query server failed to start", "listen",
                          cfg->query_listen, "error", uv_strerror(rc), NULL);
            return rc;
        }
        snprintf(port, sizeof port, "%d", query_server_port(sv->query));
        engine_log_kv(ENGINE_LOG_INFO, "query listening", "listen", cfg->query_listen, "port",
                      port, "unix", cfg->query_unix, NULL);
        sv->metrics.query = sv->query;
        query_server_set_metrics(sv->query, serve_metrics_collect, &sv->metrics);
    }
    start_metrics_page(sv);
    return start_http(sv);
}

/* Settings: defaults, then --config FILE, then the other flags in order. Exits on error. */
static void load_settings(serve *sv, int argc, char **argv, bool *check_only, bool *print)
{
    char err[512];
    engine_config_defaults(&sv->cfg);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            if (engine_config_load(&sv->cfg, argv[i + 1], err, sizeof err) != 0) {
                fprintf(stderr, "plume serve: %s\n", err);
                exit(2);
            }
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strcmp(a, "--check-config")) {
            *check_only = true;
            continue;
        }
        if (!strcmp(a, "--print-config")) {
            *print = true;
            continue;
        }
        int rc;
        if (!strcmp(a, "--open")) {
            rc = engine_config_set(&sv->cfg, "hj212.open", "true", err, sizeof err);
        } else if (!strcmp(a, "--db") && i + 1 < argc) {
            rc = engine_config_set(&sv->cfg, "storage.dir", argv[++i], err, sizeof err);
        } else if (!strncmp(a, "--", 2) && strchr(a, '.')) {
            char key[128];
            const char *eq = strchr(a, '=');
            const char *val;
            size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (klen >= sizeof key)
                klen = sizeof key - 1;
            memcpy(key, a + 2, klen);
            key[klen] = '\0';
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "plume serve: %s needs a value\n", a);
                exit(2);
            }
            rc = engine_config_set(&sv->cfg, key, val, err, sizeof err);
        } else {
            snprintf(err, sizeof err, "unknown argument '%s' (see plume serve --help)", a);
            rc = -EINVAL;
        }
        if (rc != 0) {
            fprintf(stderr, "plume serve: %s\n", err);
            exit(2);
        }
    }
    if (engine_config_check(&sv->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "plume serve: %s\n", err);
        exit(2);
    }
}

int cmd_serve(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--config-doc")) { /* docs/CONFIG.md's table */
        engine_config_print_help(stdout, true);
        return 0;
    }
    serve sv = {0};
    bool check_only = false, print = false;
    load_settings(&sv, argc, argv, &check_only, &print);
    if (check_only || print) {
        engine_config_print(&sv.cfg, stdout);
        if (check_only)
            fprintf(stderr, "plume serve: configuration ok\n");
        return 0;
    }
    engine_log_set_level(engine_log_level_parse(sv.cfg.log_level));
    signal(SIGPIPE, SIG_IGN);

    storage_options so = {.commit_interval_ms = (uint32_t)sv.cfg.commit_interval_ms,
                          .kv_tables = engine_kv_tables};
    int rc = storage_open(sv.cfg.db_dir, &so, &sv.st);
    if (rc != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "cannot open the store", "dir", sv.cfg.db_dir, "error",
                      storage_strerror(rc), NULL);
        return 1;
    }
    for (int iv = 0; iv < STORAGE_NIV; iv++)
        storage_set_retention(sv.st, iv, sv.cfg.retention_s[iv]);
    if (load_registry(&sv) != 0 && sv.cfg.registry_files[0]) {
        storage_close(sv.st);
        return 1;
    }
    if (!sv.registry && !sv.cfg.hj212_open)
        engine_log_kv(ENGINE_LOG_WARN, "no registry: every device will be refused",
                      "hint", "set registry.files, or --open to accept unregistered devices",
                      NULL);
    sv.loop = uv_default_loop();
    engine_live_opts lo;
    engine_config_live_opts(&sv.cfg, &lo);
    engine_options eo = {.st = sv.st, .loop = sv.loop, .live = &lo};
    if ((rc = engine_create(&eo, &sv.eng)) != 0) {
        storage_close(sv.st);
        return 1;
    }
    engine_alerts_options ao = {.loop = sv.loop, .timeout_ms = sv.cfg.alerts_timeout_ms,
                                .give_up_s = sv.cfg.alerts_give_up_s};
    engine_outbox_storage(sv.st, &ao.outbox);
    if ((rc = engine_alerts_create(&ao, &sv.alerts)) != 0) {
        engine_log_kv(ENGINE_LOG_ERROR, "cannot start alert delivery", "error",
                      storage_strerror(rc), NULL);
        engine_close(sv.eng);
        storage_close(sv.st);
        return 1;
    }
    load_subscriptions(&sv);
    engine_alerts_on_fire(sv.alerts, publish_alert, &sv);
    engine_set_registry(sv.eng, sv.registry);
    engine_set_alerts(sv.eng, sv.alerts);
    sv.metrics = (serve_metrics){.started_s = time(NULL), .st = sv.st, .eng = sv.eng,
                                 .alerts = sv.alerts};
    uv_signal_init(sv.loop, &sv.sigterm);
    uv_signal_init(sv.loop, &sv.sigint);
    uv_signal_init(sv.loop, &sv.sighup);
    sv.sigterm.data = sv.sigint.data = sv.sighup.data = &sv;
    uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&sv.sigint, on_signal, SIGINT);
    uv_signal_start(&sv.sighup, on_signal, SIGHUP);
    start_timer(&sv, &sv.summary, on_summary, SUMMARY_EVERY_MS);
    start_timer(&sv, &sv.retention, on_retention, RETENTION_EVERY_MS);
    const char *wd = getenv("WATCHDOG_USEC");
    uint64_t wd_ms = wd ? strtoull(wd, NULL, 10) / 2000 : 0;
    start_timer(&sv, &sv.watchdog, on_watchdog, wd_ms ? wd_ms : 3600 * 1000);

    int exit_code = 0;
    if (start_modbus(&sv) != 0 || start_servers(&sv) != 0) {
        exit_code = 1;
        stop(&sv, "startup failed");
    } else {
        storage_stats ss;
        storage_get_stats(sv.st, &ss);
        char series[32];
        snprintf(series, sizeof series, "%llu", (unsigned long long)ss.series);
        engine_log_kv(ENGINE_LOG_INFO, "ready", "db", sv.cfg.db_dir, "series", series, NULL);
        sd_notify_text("READY=1");
    }
    uv_run(sv.loop, UV_RUN_DEFAULT);
    storage_close(sv.st);
    uv_run(sv.loop, UV_RUN_DEFAULT); /* close callbacks of the engine's handles */
    uv_loop_close(sv.loop);
    engine_registry_destroy(sv.registry);
    mb_config_free(sv.modbus_cfg);
    engine_log_kv(ENGINE_LOG_INFO, "stopped", NULL);
    return exit_code;
}
