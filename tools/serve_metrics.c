/* serve_metrics.c: what `plume serve` tells its operator about itself. Only the daemon sees
 * every module, so the list of metrics lives here; the query module renders it as INFO
 * lines and as the metrics page. Each figure is read from a module's counters at the moment
 * of the scrape: nothing is kept or summed here. Names follow Prometheus' conventions
 * (plume_ prefix, base units, counters ending in _total). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "serve_metrics.h"

#define C QUERY_METRIC_COUNTER
#define G QUERY_METRIC_GAUGE

static void one(query_metrics *m, const char *name, query_metric_type t, const char *help,
                double v)
{
    query_metrics_family(m, name, t, help);
    query_metrics_add(m, NULL, NULL, v);
}

static void process_metrics(const serve_metrics *sm, query_metrics *m)
{
    query_metrics_family(m, "plume_build_info", G, "Version of the running plume.");
    query_metrics_add(m, "version", PLUME_VERSION, 1);
    one(m, "process_start_time_seconds", G, "Start time of the process, Unix seconds.",
        (double)sm->started_s);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    long psz = sysconf(_SC_PAGESIZE);
    one(m, "process_resident_memory_bytes", G, "Resident memory size in bytes.",
        (double)rss * (double)psz);
    one(m, "process_virtual_memory_bytes", G, "Virtual memory size in bytes.",
        (double)pages * (double)psz);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds--; /* the directory stream's own descriptor */
    }
    one(m, "process_open_fds", G, "Number of open file descriptors.", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        one(m, "process_max_fds", G, "Maximum number of open file descriptors.",
            (double)rl.rlim_cur);
}

static void hj212_metrics(const hj212_server_stats *h, query_metrics *m)
{
    query_metrics_family(m, "plume_hj212_connections", G, "Device connections open now.");
    query_metrics_add(m, "kind", "direct", (double)(h->conns_open - h->conns_forwarding));
    query_metrics_add(m, "kind", "forwarding", (double)h->conns_forwarding);
    one(m, "plume_hj212_connections_accepted_total", C, "Device connections accepted.",
        (double)h->conns_accepted);
    one(m, "plume_hj212_connections_refused_total", C,
        "Device connections refused at the connection limit.", (double)h->conns_refused);
    query_metrics_family(m, "plume_hj212_connections_closed_total", C,
                         "Device connections closed by the server or the peer, by reason.");
    query_metrics_add(m, "reason", "idle", (double)h->closed_idle);
    query_metrics_add(m, "reason", "garbage", (double)h->closed_garbage);
    query_metrics_add(m, "reason", "slow", (double)h->closed_slow);
    query_metrics_add(m, "reason", "auth", (double)h->closed_auth);
    query_metrics_add(m, "reason", "peer", (double)h->closed_peer);
    one(m, "plume_hj212_packets_total", C, "HJ 212 packets framed.", (double)h->packets);
    query_metrics_family(m, "plume_hj212_packet_results_total", C,
                         "HJ 212 packets by what became of them.");
    query_metrics_add(m, "result", "accepted", (double)h->packets_accepted);
    query_metrics_add(m, "result", "crc_bad", (double)h->crc_bad);
    query_metrics_add(m, "result", "crc_flagged", (double)h->crc_flagged);
    query_metrics_add(m, "result", "parse_error", (double)h->parse_errors);
    query_metrics_add(m, "result", "unknown_mn", (double)h->auth_unknown_mn);
    query_metrics_add(m, "result", "bad_password", (double)h->auth_bad_pw);
    query_metrics_add(m, "result", "unsupported_cn", (double)h->unsupported_cn);
    query_metrics_add(m, "result", "ingest_error", (double)h->ingest_errors);
    query_metrics_add(m, "result", "oversize", (double)h->oversize);
    query_metrics_add(m, "result", "length_mismatch", (double)h->len_mismatch);
    one(m, "plume_hj212_acks_total", C, "Acknowledgements (9014) sent after commit.",
        (double)h->acks_sent);
    one(m, "plume_hj212_received_bytes_total", C, "Bytes received from devices.",
        (double)h->bytes_in);
    one(m, "plume_hj212_junk_bytes_total", C, "Bytes skipped outside any packet.",
        (double)h->junk_bytes);
    one(m, "plume_hj212_events_total", C, "Device events kept (2021/2041/2081/3020).",
        (double)h->events);
    query_metrics_family(m, "plume_hj212_history_pulls_total", C,
                         "History requests (2061, 2031) for gaps, by outcome.");
    query_metrics_add(m, "result", "sent", (double)h->pulls_sent);
    query_metrics_add(m, "result", "done", (double)h->pulls_done);
    query_metrics_add(m, "result", "failed", (double)h->pulls_failed);
    query_metrics_add(m, "result", "timed_out", (double)h->pulls_timed_out);
    query_metrics_add(m, "result", "interrupted", (double)h->pulls_interrupted);
    query_metrics_family(m, "plume_hj212_history_records_total", C,
                         "Records received in answer to history requests, by period.");
    query_metrics_add(m, "period", "hour", (double)h->pulled_hours);
    query_metrics_add(m, "period", "day", (double)h->pulled_days);
    one(m, "plume_hj212_history_pulls_queued", G, "History requests waiting their turn.",
        (double)h->pulls_queued);
    one(m, "plume_hj212_clock_sets_total", C, "Device clocks set (1012).",
        (double)h->clock_sets);
}

static void engine_metrics(const engine_stats *e, query_metrics *m)
{
    query_metrics_family(m, "plume_ingest_uploads_total", C, "Uploads handed to the engine, by outcome.");
    query_metrics_add(m, "result", "committed", (double)e->uploads_committed);
    query_metrics_add(m, "result", "failed", (double)e->uploads_failed);
    one(m, "plume_ingest_uploads_pending", G, "Uploads waiting for their commit.",
        (double)(e->uploads - e->uploads_committed - e->uploads_failed));
    one(m, "plume_ingest_points_total", C, "Points accepted into the store.", (double)e->points);
    one(m, "plume_ingest_values_rejected_total", C, "Values refused (bad number, bad key).",
        (double)e->values_rejected);
    one(m, "plume_ingest_commits_pending", G, "Batches submitted and not yet committed.",
        (double)e->commits_pending);
    one(m, "plume_judge_detectors", G, "Outlet, pollutant and period kinds being judged.",
        (double)e->judge.detectors);
    one(m, "plume_judge_periods_total", C, "Reported periods judged against a limit.",
        (double)e->judge.periods);
    query_metrics_family(m, "plume_judge_episodes_total", C, "Exceedance episodes.");
    query_metrics_add(m, "state", "opened", (double)e->judge.episodes_opened);
    query_metrics_add(m, "state", "closed", (double)e->judge.episodes_closed);
    one(m, "plume_judge_alert_states_total", C, "Alert states raised.", (double)e->judge.alerts);
    one(m, "plume_judge_alert_states_failed_total", C, "Alert states that could not be staged.",
        (double)e->judge.alerts_failed);
}

static void alerts_metrics(const engine_alerts_stats *a, query_metrics *m)
{
    query_metrics_family(m, "plume_alert_deliveries_total", C,
                         "Webhook delivery records, by what became of them.");
    query_metrics_add(m, "result", "created", (double)a->deliveries);
    query_metrics_add(m, "result", "delivered", (double)a->delivered);
    query_metrics_add(m, "result", "refused", (double)a->failed_permanent);
    query_metrics_add(m, "result", "given_up", (double)a->given_up);
    one(m, "plume_alert_delivery_attempts_total", C, "Webhook requests made, retries included.",
        (double)a->attempts);
    one(m, "plume_alert_delivery_retries_total", C, "Webhook requests that were retries.",
        (double)a->retries);
    one(m, "plume_alert_deliveries_pending", G, "Delivery records not yet delivered.",
        (double)a->pending);
}

static void storage_metrics(const storage_stats *s, query_metrics *m)
{
    one(m, "plume_storage_series", G, "Series in the catalog.", (double)s->series);
    one(m, "plume_storage_points", G, "Points stored.", (double)s->points);
    one(m, "plume_storage_chunks", G, "Sealed chunks.", (double)s->chunks);
    one(m, "plume_storage_wal_points", G, "Points in the write-ahead log, not yet in chunks.",
        (double)s->wal_points);
    one(m, "plume_storage_file_bytes", G, "Bytes the database files occupy on disk.",
        (double)s->file_bytes);
    one(m, "plume_storage_map_size_bytes", G, "Size of the LMDB map.", (double)s->map_size);
    one(m, "plume_storage_map_used_bytes", G, "Bytes of the LMDB map in use.",
        (double)s->map_used);
    one(m, "plume_storage_commits_total", C, "Write transactions committed.",
        (double)s->commits);
    one(m, "plume_storage_commit_seconds_total", C,
        "Time spent in write transactions; divided by commits, the mean commit latency.",
        (double)s->commit_us_total / 1e6);
}

static void query_server_metrics(const query_stats *q, query_metrics *m)
{
    one(m, "plume_query_clients", G, "Query connections open now.", (double)q->clients);
    one(m, "plume_query_connections_total", C, "Query connections accepted.",
        (double)q->connections_received);
    one(m, "plume_query_connections_rejected_total", C, "Query connections refused at the limit.",
        (double)q->connections_rejected);
    one(m, "plume_query_commands_total", C, "Commands processed.", (double)q->commands_processed);
    one(m, "plume_query_error_replies_total", C, "Error replies sent.",
        (double)q->error_replies);
    one(m, "plume_query_protocol_errors_total", C, "Malformed or oversized requests.",
        (double)q->protocol_errors);
    query_metrics_family(m, "plume_query_network_bytes_total", C, "Bytes on query connections.");
    query_metrics_add(m, "direction", "in", (double)q->bytes_in);
    query_metrics_add(m, "direction", "out", (double)q->bytes_out);
}

static void modbus_metrics(const mb_poller_stats *s, query_metrics *m)
{
    query_metrics_family(m, "plume_modbus_devices", G, "Modbus devices by state.");
    query_metrics_add(m, "state", "up", (double)s->devices_up);
    query_metrics_add(m, "state", "down", (double)s->devices_down);
    query_metrics_add(m, "state", "misconfigured", (double)s->devices_misconfigured);
    query_metrics_add(m, "state", "unknown",
                      (double)(s->devices - s->devices_up - s->devices_down -
                               s->devices_misconfigured));
    one(m, "plume_modbus_polls_total", C, "Modbus device reads attempted.", (double)s->polls);
    one(m, "plume_modbus_polls_ok_total", C, "Modbus device reads with every request answered.",
        (double)s->polls_ok);
    one(m, "plume_modbus_requests_total", C, "Modbus read requests sent.", (double)s->requests);
    query_metrics_family(m, "plume_modbus_request_errors_total", C,
                         "Modbus requests that failed, by kind.");
    query_metrics_add(m, "kind", "timeout", (double)s->timeouts);
    query_metrics_add(m, "kind", "exception", (double)s->exceptions);
    query_metrics_add(m, "kind", "config", (double)s->config_errors);
    query_metrics_add(m, "kind", "other",
                      (double)(s->request_errors - s->timeouts - s->exceptions));
    one(m, "plume_modbus_connects_total", C, "Modbus connections made.", (double)s->connects);
    one(m, "plume_modbus_connect_failures_total", C, "Modbus connections that failed.",
        (double)s->connect_failures);
    one(m, "plume_modbus_values_total", C, "Register values decoded and ingested.",
        (double)s->values);
    one(m, "plume_modbus_skipped_total", C,
        "Device reads skipped: circuit open or every request refused.", (double)s->skipped);
    one(m, "plume_modbus_late_cycles_total", C, "Device slots missed by more than an interval.",
        (double)s->late_cycles);
    query_metrics_family(m, "plume_modbus_lateness_seconds", G,
                         "How late reads of healthy devices started, since start.");
    query_metrics_add(m, "quantile", "0.5", s->lateness_p50_ms / 1000.0);
    query_metrics_add(m, "quantile", "0.99", s->lateness_p99_ms / 1000.0);
}

void serve_metrics_collect(void *arg, query_metrics *m)
{
    const serve_metrics *sm = arg;
    process_metrics(sm, m);
    if (sm->hj212) {
        hj212_server_stats hs;
        hj212_server_get_stats(sm->hj212, &hs);
        hj212_metrics(&hs, m);
    }
    if (sm->eng) {
        engine_stats es;
        engine_get_stats(sm->eng, &es);
        engine_metrics(&es, m);
    }
    if (sm->alerts) {
        engine_alerts_stats as;
        engine_alerts_get_stats(sm->alerts, &as);
        alerts_metrics(&as, m);
    }
    if (sm->st) {
        storage_stats ss;
        if (storage_get_stats(sm->st, &ss) == 0)
            storage_metrics(&ss, m);
    }
    if (sm->modbus) {
        mb_poller_stats ms;
        mb_poller_get_stats(sm->modbus, &ms);
        modbus_metrics(&ms, m);
    }
    if (sm->query) {
        query_stats qs;
        query_server_get_stats(sm->query, &qs);
        query_server_metrics(&qs, m);
    }
}
