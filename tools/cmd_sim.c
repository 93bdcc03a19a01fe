/* cmd_sim.c: `plume sim`, the fleet simulator. Wiring only: it turns options into a
 * sim_options and a sim_wire_options, builds the fleet (collectors/sim), writes the registry
 * and the ground truth when asked, then either prints the packet stream or runs the fleet
 * against a server and prints the run's summary as one JSON line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "engine.h"
#include "mb.h"
#include "sim.h"
#include "sim_modbus.h"

static void sim_usage(FILE *f)
{
    fprintf(f,
            "usage: plume sim [OPTIONS]\n\n"
            "Simulates a fleet of HJ 212 data acquisition units, deterministically from a seed.\n\n"
            "  --facilities N      facilities (1-3 outlets, one unit each; default 10)\n"
            "  --seed S            seed (default 1)\n"
            "  --start DATE        first simulated day, local (default 2026-11-01)\n"
            "  --days D            simulated days (default 1)\n"
            "  --hours H           end the run after H hours (the fleet still spans the days)\n"
            "  --minute-interval M minutes per 2051 record, 0 for none (default 10)\n"
            "  --rtd[=SECONDS]     also send 2011 real-time data (default every 60 s)\n"
            "  --connect HOST:PORT send to this HJ 212 server\n"
            "  --http HOST:PORT    serve the fleet's records as HTTP JSON endpoints until\n"
            "                      SIGTERM (port 0: any; the port is printed as JSON first)\n"
            "  --speed X           simulated seconds per real second; 0 = as fast as answers\n"
            "                      allow (default 0)\n"
            "  --direct N          only N units get their own connection; the others go over\n"
            "                      forwarding connections (default: all direct)\n"
            "  --forwarders K      forwarding connections (default 4)\n"
            "  --window W          unanswered uploads per forwarding connection (default 32)\n"
            "  --ack-timeout MS    an upload unanswered this long is missing (default 5000)\n"
            "  --linger S          stay connected S seconds after the end (default 0)\n"
            "  --hour-pause S      speed 0: S real seconds of silence before each top of the\n"
            "                      hour, as the fleet is quiet for minutes before it (default 0)\n"
            "  --registry-out DIR  write facilities.csv, outlets.csv, limits.csv to DIR\n"
            "  --truth-out FILE    write the ground truth (JSON Lines) to FILE\n"
            "  --print             write every upload to stdout instead of connecting\n"
            "  --share-2005 X, --share-modbus X, --share-noack X\n"
            "                      shares of units with those habits (0-1)\n"
            "  --rate-exceed X, --rate-flat X, --rate-gap X, --rate-off X, --rate-fault X,\n"
            "  --rate-maint X      events per outlet and day\n"
            "  --gap-exceed X      share of exceedance episodes a further gap hides in part\n"
            "                      (their hours come back by history request; default 0)\n"
            "  --no-calibration    no nightly calibration\n"
            "  --quiet             no progress lines on stderr\n\n"
            "Modbus TCP (instead of --connect): each outlet is a device behind a gateway\n"
            "  --modbus HOST:PORT  gateway g listens on PORT + g (PORT 0: free ports)\n"
            "  --modbus-devices N  serve the first N outlets (default all)\n"
            "  --modbus-units N    devices per gateway, unit ids 1..N (default 50)\n"
            "  --modbus-order O    byte order of every gateway: ABCD, CDAB, BADC, DCBA, or\n"
            "                      mixed (gateway g uses the g-th mod 4; default)\n"
            "  --modbus-dead-gateway G    gateway G accepts connections, never answers\n"
            "  --modbus-misconfigured I   device I answers every read with exception 2\n"
            "  --modbus-config-out FILE   write plume serve's modbus.config for the fleet\n"
            "  --modbus-interval-ms MS    poll interval written to that file (default 10000)\n"
            "  --modbus-for S      serve S seconds (default: until SIGINT or SIGTERM)\n");
}

static double num_arg(const char *opt, const char *val, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "plume sim: %s: expected a number in [%g, %g], got '%s'\n", opt, lo, hi,
                val);
        exit(2);
    }
    return v;
}

static void progress(void *ud, const sim_wire_stats *s)
{
    (void)ud;
    char t[32];
    engine_time_format(s->sim_end, ENGINE_CST_OFFSET_S, t, sizeof t);
    fprintf(stderr,
            "sim: at %s sent %llu acked %llu missing %llu failed %llu connects %llu "
            "(%.0f/s)\n",
            t, (unsigned long long)s->sent, (unsigned long long)s->acked,
            (unsigned long long)s->missing, (unsigned long long)s->failed,
            (unsigned long long)s->connects, s->rate);
}

/* Lets the process hold as many sockets as the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

enum {
    O_FAC = 1, O_SEED, O_START, O_DAYS, O_HOURS, O_MIN, O_RTD, O_CONNECT, O_SPEED, O_DIRECT, O_FW,
    O_WINDOW, O_ACKTO, O_LINGER, O_HPAUSE, O_REG, O_TRUTH, O_PRINT, O_S2005, O_SMODBUS, O_SNOACK,
    O_REXC, O_RFLAT, O_RGAP, O_ROFF, O_RFAULT, O_RMAINT, O_NOCAL, O_QUIET, O_MB, O_MBDEV,
    O_MBUNITS, O_MBORDER, O_MBDEAD, O_MBMIS, O_MBCFG, O_MBIV, O_MBFOR, O_HTTP, O_GAPEXC
};

int cmd_sim(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"facilities", 1, 0, O_FAC}, {"seed", 1, 0, O_SEED}, {"start", 1, 0, O_START},
        {"days", 1, 0, O_DAYS}, {"hours", 1, 0, O_HOURS}, {"minute-interval", 1, 0, O_MIN}, {"rtd", 2, 0, O_RTD},
        {"connect", 1, 0, O_CONNECT}, {"speed", 1, 0, O_SPEED}, {"direct", 1, 0, O_DIRECT},
        {"forwarders", 1, 0, O_FW}, {"window", 1, 0, O_WINDOW},
        {"ack-timeout", 1, 0, O_ACKTO}, {"linger", 1, 0, O_LINGER},
        {"hour-pause", 1, 0, O_HPAUSE},
        {"registry-out", 1, 0, O_REG}, {"truth-out", 1, 0, O_TRUTH}, {"print", 0, 0, O_PRINT},
        {"share-2005", 1, 0, O_S2005}, {"share-modbus", 1, 0, O_SMODBUS},
        {"share-noack", 1, 0, O_SNOACK}, {"rate-exceed", 1, 0, O_REXC},
        {"rate-flat", 1, 0, O_RFLAT}, {"rate-gap", 1, 0, O_RGAP}, {"rate-off", 1, 0, O_ROFF},
        {"rate-fault", 1, 0, O_RFAULT}, {"rate-maint", 1, 0, O_RMAINT},
        {"gap-exceed", 1, 0, O_GAPEXC},
        {"no-calibration", 0, 0, O_NOCAL}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {"modbus", 1, 0, O_MB}, {"modbus-devices", 1, 0, O_MBDEV},
        {"modbus-units", 1, 0, O_MBUNITS}, {"modbus-order", 1, 0, O_MBORDER},
        {"modbus-dead-gateway", 1, 0, O_MBDEAD}, {"modbus-misconfigured", 1, 0, O_MBMIS},
        {"modbus-config-out", 1, 0, O_MBCFG}, {"modbus-interval-ms", 1, 0, O_MBIV},
        {"modbus-for", 1, 0, O_MBFOR},
        {"http", 1, 0, O_HTTP},
        {0, 0, 0, 0}};
    sim_options so;
    sim_wire_options wo;
    sim_options_defaults(&so);
    sim_wire_options_defaults(&wo);
    const char *connect = NULL, *reg_dir = NULL, *truth = NULL, *http = NULL;
    bool print = false, quiet = false;
    char host[256] = "";
    sim_modbus_run_options mb;
    sim_modbus_run_options_defaults(&mb);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *o = argc > optind - 1 ? argv[optind - 1] : "";
        switch (c) {
        case O_FAC: so.nfacilities = (uint32_t)num_arg(o, optarg, 1, 1e7); break;
        case O_SEED: so.seed = strtoull(optarg, NULL, 0); break;
        case O_START: so.start = cli_time_arg("--start", optarg); break;
        case O_DAYS: so.days = (uint32_t)num_arg(o, optarg, 1, 3660); break;
        case O_HOURS: so.hours = (uint32_t)num_arg(o, optarg, 1, 87840); break;
        case O_MIN: so.minute_interval = (uint32_t)num_arg(o, optarg, 0, 60); break;
        case O_RTD: so.rtd_interval_s = optarg ? (uint32_t)num_arg("--rtd", optarg, 1, 3600) : 60;
            break;
        case O_CONNECT: connect = optarg; break;
        case O_SPEED: wo.speed = num_arg(o, optarg, 0, 1e9); break;
        case O_DIRECT: wo.direct = (int64_t)num_arg(o, optarg, 0, 1e8); break;
        case O_FW: wo.forwarders = (uint32_t)num_arg(o, optarg, 1, 1000); break;
        case O_WINDOW: wo.window = (uint32_t)num_arg(o, optarg, 1, 1000); break;
        case O_ACKTO: wo.ack_timeout_ms = (uint32_t)num_arg(o, optarg, 1, 3.6e6); break;
        case O_LINGER: wo.linger_s = num_arg(o, optarg, 0, 86400); break;
        case O_HPAUSE: wo.hour_pause_s = num_arg(o, optarg, 0, 3600); break;
        case O_REG: reg_dir = optarg; break;
        case O_TRUTH: truth = optarg; break;
        case O_PRINT: print = true; break;
        case O_S2005: so.share_2005 = num_arg(o, optarg, 0, 1); break;
        case O_SMODBUS: so.share_modbus = num_arg(o, optarg, 0, 1); break;
        case O_SNOACK: so.share_noack = num_arg(o, optarg, 0, 1); break;
        case O_REXC: so.rate_exceed = num_arg(o, optarg, 0, 10); break;
        case O_RFLAT: so.rate_flat = num_arg(o, optarg, 0, 10); break;
        case O_RGAP: so.rate_gap = num_arg(o, optarg, 0, 10); break;
        case O_GAPEXC: so.share_gap_exceed = num_arg(o, optarg, 0, 1); break;
        case O_ROFF: so.rate_off = num_arg(o, optarg, 0, 10); break;
        case O_RFAULT: so.rate_fault = num_arg(o, optarg, 0, 10); break;
        case O_RMAINT: so.rate_maint = num_arg(o, optarg, 0, 10); break;
        case O_NOCAL: so.calibration = false; break;
        case O_QUIET: quiet = true; break;
        case O_MB: mb.listen = optarg; break;
        case O_MBDEV: mb.o.devices = (uint32_t)num_arg(o, optarg, 1, 1e7); break;
        case O_MBUNITS: mb.o.units = (uint32_t)num_arg(o, optarg, 1, 247); break;
        case O_MBORDER:
            mb.o.order = strcmp(optarg, "mixed") == 0 ? -1 : mb_order_parse(optarg);
            if (mb.o.order < -1 || (mb.o.order == -1 && strcmp(optarg, "mixed"))) {
                fprintf(stderr, "plume sim: --modbus-order: ABCD, CDAB, BADC, DCBA or mixed\n");
                return 2;
            }
            break;
        case O_MBDEAD: mb.o.dead_gateway = (int64_t)num_arg(o, optarg, 0, 1e7); break;
        case O_MBMIS: mb.o.misconfigured = (int64_t)num_arg(o, optarg, 0, 1e7); break;
        case O_MBCFG: mb.config_out = optarg; break;
        case O_MBIV: mb.interval_ms = (int)num_arg(o, optarg, 100, 86400000); break;
        case O_MBFOR: mb.for_s = num_arg(o, optarg, 0, 1e9); break;
        case O_HTTP: http = optarg; break;
        case 'h': sim_usage(stdout); return 0;
        default: sim_usage(stderr); return 2;
        }
    }
    if (optind < argc || (!connect && !print && !reg_dir && !truth && !mb.listen && !http)) {
        fprintf(stderr, "plume sim: nothing to do: give --connect, --http, --modbus, --print, "
                        "--registry-out or --truth-out\n");
        return 2;
    }
    if (mb.listen && (connect || print)) {
        fprintf(stderr, "plume sim: --modbus runs on its own: not with --connect or --print\n");
        return 2;
    }
    if (connect) {
        const char *colon = strrchr(connect, ':');
        size_t hl = colon ? (size_t)(colon - connect) : 0;
        if (!colon || hl == 0 || hl >= sizeof host) {
            fprintf(stderr, "plume sim: --connect: expected HOST:PORT, got '%s'\n", connect);
            return 2;
        }
        memcpy(host, connect[0] == '[' ? connect + 1 : connect, hl);
        host[connect[0] == '[' ? hl - 2 : hl] = 0;
        wo.host = host;
        wo.port = (int)num_arg("--connect port", colon + 1, 1, 65535);
    }
    sim_fleet *f = NULL;
    int rc = sim_fleet_create(&so, &f);
    if (rc != 0) {
        fprintf(stderr, "plume sim: cannot build the fleet: %s\n", strerror(-rc));
        return 1;
    }
    if (reg_dir && (rc = sim_registry_write(f, reg_dir)) != 0) {
        fprintf(stderr, "plume sim: --registry-out %s: %s\n", reg_dir, strerror(-rc));
        goto done;
    }
    if (truth) {
        FILE *tf = fopen(truth, "w");
        rc = tf ? sim_truth_write(f, tf) : -errno;
        if (tf && fclose(tf) != 0 && !rc)
            rc = -EIO;
        if (rc) {
            fprintf(stderr, "plume sim: --truth-out %s: %s\n", truth, strerror(-rc));
            goto done;
        }
    }
    if (mb.listen) {
        sim_modbus_stats ms;
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        rc = sim_modbus_run(f, &mb, &ms);
        if (rc == 0)
            printf("{\"connections\":%llu,\"requests\":%llu,\"answered\":%llu,"
                   "\"exceptions\":%llu,\"ignored\":%llu,\"bad_frames\":%llu}\n",
                   (unsigned long long)ms.connections, (unsigned long long)ms.requests,
                   (unsigned long long)ms.answered, (unsigned long long)ms.exceptions,
                   (unsigned long long)ms.ignored, (unsigned long long)ms.bad_frames);
        else
            fprintf(stderr, "plume sim: --modbus %s: %s\n", mb.listen, strerror(-rc));
        goto done;
    }
    if (print) {
        rc = sim_packets_write(f, stdout);
        if (rc)
            fprintf(stderr, "plume sim: --print: %s\n", strerror(-rc));
        goto done;
    }
    if (connect) {
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        /* Each direct unit holds a socket: refuse a fleet that cannot fit in the process. */
        struct rlimit rl;
        uint32_t units = sim_fleet_outlet_count(f);
        uint64_t conns = wo.direct < 0 || (uint64_t)wo.direct >= units
                             ? units
                             : (uint64_t)wo.direct + wo.forwarders;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            conns + 64 > rl.rlim_cur) {
            fprintf(stderr, "plume sim: %llu connections for %u units exceed the open-file "
                            "limit %llu: give --direct N (units with their own connection; "
                            "the others are forwarded)\n",
                    (unsigned long long)conns, units, (unsigned long long)rl.rlim_cur);
            rc = -EMFILE;
            goto done;
        }
        if (!quiet)
            wo.progress = progress;
        sim_wire_stats st;
        rc = sim_wire_run(f, &wo, &st);
        if (rc) {
            fprintf(stderr, "plume sim: --connect %s: %s\n", connect, strerror(-rc));
            goto done;
        }
        char line[8192];
        if (sim_wire_stats_format(&st, line, sizeof line) > 0)
            printf("%s\n", line);
    }
    if (http)
        rc = cli_sim_serve_http(f, http);
done:
    sim_fleet_destroy(f);
    return rc ? 1 : 0;
}
