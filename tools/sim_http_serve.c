/* sim_http_serve.c: `plume sim --http HOST:PORT`, the simulated fleet served as a platform's
 * HTTP JSON endpoints (collectors/sim/http_*.c) until SIGTERM or SIGINT. Wiring only: it
 * prints the bound port as a JSON line first (so a script can start it on port 0 and read
 * where it listens), and the server's counters as a JSON line at the end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "sim.h"

static void on_stop_signal(uv_signal_t *h, int signum)
{
    sim_http *s = h->loop->data;
    sim_http_stats st;
    char line[512];
    (void)signum;
    sim_http_get_stats(s, &st);
    if (sim_http_stats_format(&st, line, sizeof line) > 0)
        printf("%s\n", line);
    fflush(stdout);
    sim_http_close(s);
    uv_close((uv_handle_t *)h, NULL);
    uv_signal_t *other = h->data;
    if (!uv_is_closing((uv_handle_t *)other))
        uv_close((uv_handle_t *)other, NULL);
}

int cli_sim_serve_http(const sim_fleet *f, const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hl == 0 || hl >= sizeof host) {
        fprintf(stderr, "plume sim: --http: expected HOST:PORT, got '%s'\n", addr);
        return -EINVAL;
    }
    bool br = addr[0] == '[' && hl >= 2;
    memcpy(host, br ? addr + 1 : addr, br ? hl - 2 : hl);
    host[br ? hl - 2 : hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "plume sim: --http: bad port in '%s'\n", addr);
        return -EINVAL;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sim_http_options o = {.host = host, .port = (int)port};
    sim_http *s = NULL;
    int rc = sim_http_start(&loop, f, &o, &s);
    if (rc != 0) {
        fprintf(stderr, "plume sim: --http %s: %s\n", addr, uv_strerror(rc));
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc;
    }
    loop.data = s;
    uv_signal_t term, intr;
    uv_signal_init(&loop, &term);
    uv_signal_init(&loop, &intr);
    term.data = &intr;
    intr.data = &term;
    uv_signal_start(&term, on_stop_signal, SIGTERM);
    uv_signal_start(&intr, on_stop_signal, SIGINT);
    printf("{\"http_port\":%d}\n", sim_http_port(s));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT); /* until a stop signal closes everything */
    uv_loop_close(&loop);
    return 0;
}
