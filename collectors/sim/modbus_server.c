/* modbus_server.c: the fleet as Modbus TCP gateways on one libuv loop, so the Modbus poller
 * can be tested and benchmarked against a thousand devices without a thousand processes.
 * It speaks just what analyzers behind a gateway speak: MBAP frames, functions 3 and 4 on
 * each device's register map (sim_modbus.h), exceptions for what a real device refuses, and
 * the two faults a poller must survive: a gateway that never answers and a device whose
 * configuration does not match its map. Values are the fleet's minute values of the current
 * wall-clock minute, so what plume stores can be checked against sim_record_compute. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "mb.h"
#include "sim_modbus.h"

#define MAP_REGS 12 /* 6 float32 values (gas); water uses the first 8 */

typedef struct gateway {
    uv_tcp_t tcp;
    struct sim_modbus *s;
    uint32_t index;
    int port;
    int order;
} gateway;

typedef struct conn {
    uv_tcp_t tcp;
    gateway *g;
    struct conn *prev, *next;  /* the server's list of open connections */
    size_t len;
    uint8_t buf[2 * SIM_MODBUS_FRAME_MAX];
} conn;

typedef struct cache {
    int64_t minute;            /* INT64_MIN: not computed */
    uint16_t regs[MAP_REGS];
} cache;

struct sim_modbus {
    const sim_fleet *f;        /* borrowed */
    sim_modbus_options o;
    uint32_t ndevices, ngateways;
    gateway *gws;              /* owned */
    cache *cache;              /* per device; owned */
    conn *conns;               /* open connections; each owned until its close callback */
    sim_modbus_stats stats;
    int closing;
};

void sim_modbus_options_defaults(sim_modbus_options *o)
{
    *o = (sim_modbus_options){.host = "127.0.0.1", .units = 50, .order = -1,
                              .dead_gateway = -1, .misconfigured = -1};
}

static uint32_t map_regs(const sim_outlet *o)
{
    return (uint32_t)o->nf * 2;
}

/* The device's registers for the minute holding t. */
static const uint16_t *device_regs(sim_modbus *s, uint32_t i, int order, int64_t t)
{
    cache *c = &s->cache[i];
    int64_t minute = t - ((t % 60) + 60) % 60;
    if (c->minute == minute)
        return c->regs;
    const sim_outlet *o = sim_fleet_outlet(s->f, i);
    sim_record r;
    memset(c->regs, 0, sizeof c->regs);
    if (sim_record_compute(s->f, i, SIM_CN_RTD, minute, &r) == 0)
        for (int k = 0; k < o->nf && k < MAP_REGS / 2; k++) {
            double scale = 1;
            for (int d = 0; d < o->f[k].dec; d++)
                scale *= 10;
            mb_encode_raw((double)r.v[k].avg / scale, MB_FLOAT32, order, &c->regs[2 * k]);
        }
    c->minute = minute;
    return c->regs;
}

int sim_modbus_registers(const sim_modbus *s, uint32_t outlet, int64_t t, uint16_t start,
                         uint16_t count, uint16_t *words)
{
    if (outlet >= s->ndevices)
        return -ERANGE;
    const sim_outlet *o = sim_fleet_outlet(s->f, outlet);
    if ((uint32_t)start + count > map_regs(o))
        return -ERANGE;
    uint32_t g = outlet / s->o.units;
    const uint16_t *regs = device_regs((sim_modbus *)s, outlet, s->gws[g].order, t);
    memcpy(words, regs + start, count * sizeof *words);
    return 0;
}

static void on_closed_conn(uv_handle_t *h)
{
    conn *c = h->data;
    sim_modbus *s = c->g->s;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    if (--s->closing == 0) {
        free(s->gws);
        free(s->cache);
        free(s);
    }
}

static void on_written(uv_write_t *w, int status)
{
    free(w);
}

/* The reply frame of req (header copied, then pdu) into out; its length. */
static size_t reply(const uint8_t *req, const uint8_t *pdu, size_t pdu_len, uint8_t *out)
{
    memcpy(out, req, 4);                 /* transaction and protocol ids */
    out[4] = (uint8_t)((pdu_len + 1) >> 8);
    out[5] = (uint8_t)(pdu_len + 1);
    out[6] = req[6];                     /* unit id */
    memcpy(out + 7, pdu, pdu_len);
    return 7 + pdu_len;
}

static size_t exception(sim_modbus *s, const uint8_t *req, uint8_t fc, uint8_t code,
                        uint8_t *out)
{
    uint8_t pdu[2] = {(uint8_t)(fc | 0x80), code};
    s->stats.exceptions++;
    return reply(req, pdu, 2, out);
}

/* The reply to one request (7-byte header, then the PDU of pdu_len bytes) at time t; 0
 * when there is none (a dead gateway). */
static size_t answer(sim_modbus *s, uint32_t g, const uint8_t *req, size_t pdu_len, int64_t t,
                     uint8_t *out)
{
    s->stats.requests++;
    if ((int64_t)g == s->o.dead_gateway) {
        s->stats.ignored++;
        return 0;
    }
    const uint8_t *pdu = req + 7;
    uint8_t fc = pdu[0], unit = req[6];
    if (fc != 3 && fc != 4)
        return exception(s, req, fc, 1, out); /* illegal function */
    if (pdu_len != 5)
        return exception(s, req, fc, 3, out); /* illegal data value */
    uint16_t start = (uint16_t)(pdu[1] << 8 | pdu[2]), count = (uint16_t)(pdu[3] << 8 | pdu[4]);
    uint64_t dev = (uint64_t)g * s->o.units + unit - 1;
    if (unit == 0 || unit > s->o.units || dev >= s->ndevices)
        return exception(s, req, fc, 11, out); /* gateway target device failed to respond */
    if (count == 0 || count > MB_MAX_READ)
        return exception(s, req, fc, 3, out);
    const sim_outlet *o = sim_fleet_outlet(s->f, (uint32_t)dev);
    if ((int64_t)dev == s->o.misconfigured || (uint32_t)start + count > map_regs(o))
        return exception(s, req, fc, 2, out); /* illegal data address */
    const uint16_t *regs = device_regs(s, (uint32_t)dev, s->gws[g].order, t);
    uint8_t data[2 + 2 * MB_MAX_READ];
    data[0] = fc;
    data[1] = (uint8_t)(2 * count);
    for (unsigned k = 0; k < count; k++) {
        data[2 + 2 * k] = (uint8_t)(regs[start + k] >> 8);
        data[3 + 2 * k] = (uint8_t)regs[start + k];
    }
    s->stats.answered++;
    return reply(req, data, 2 + 2 * (size_t)count, out);
}

int sim_modbus_frame(sim_modbus *s, uint32_t gw, const uint8_t *in, size_t len, int64_t t,
                     uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (gw >= s->ngateways)
        return -EINVAL;
    if (len < 7)
        return 0;
    size_t flen = (size_t)(in[4] << 8 | in[5]); /* unit id + PDU */
    if (in[2] != 0 || in[3] != 0 || flen < 2 || flen > SIM_MODBUS_FRAME_MAX - 6) {
        s->stats.bad_frames++;
        return -EBADMSG;
    }
    if (len < 6 + flen)
        return 0;
    *out_len = answer(s, gw, in, flen - 1, t, out);
    return (int)(6 + flen);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn *c = h->data;
    *b = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    conn *c = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)st, on_closed_conn);
        return;
    }
    c->len += (size_t)n;
    size_t off = 0;
    for (;;) {
        uint8_t out[SIM_MODBUS_FRAME_MAX];
        size_t olen;
        int used = sim_modbus_frame(c->g->s, c->g->index, c->buf + off, c->len - off,
                                    time(NULL), out, &olen);
        if (used < 0) {
            uv_close((uv_handle_t *)st, on_closed_conn);
            return;
        }
        if (used == 0)
            break;
        off += (size_t)used;
        uv_write_t *w = olen ? malloc(sizeof *w + olen) : NULL;
        if (!w)
            continue;
        memcpy(w + 1, out, olen);
        uv_buf_t ob = uv_buf_init((char *)(w + 1), (unsigned)olen);
        if (uv_write(w, (uv_stream_t *)&c->tcp, &ob, 1, on_written) != 0)
            free(w);
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static void on_connection(uv_stream_t *server, int status)
{
    gateway *g = server->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->g = g;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    c->next = g->s->conns;
    if (c->next)
        c->next->prev = c;
    g->s->conns = c;
    g->s->closing++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed_conn);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    g->s->stats.connections++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int listen_gateway(uv_loop_t *loop, sim_modbus *s, gateway *g)
{
    struct sockaddr_storage sa;
    int port = s->o.port ? s->o.port + (int)g->index : 0;
    int rc = strchr(s->o.host, ':')
                 ? uv_ip6_addr(s->o.host, port, (struct sockaddr_in6 *)&sa)
                 : uv_ip4_addr(s->o.host, port, (struct sockaddr_in *)&sa);
    if (rc != 0)
        return rc;
    uv_tcp_init(loop, &g->tcp);
    g->tcp.data = g;
    s->closing++;
    if ((rc = uv_tcp_bind(&g->tcp, (struct sockaddr *)&sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&g->tcp, 512, on_connection)) != 0)
        return rc;
    int len = sizeof sa;
    uv_tcp_getsockname(&g->tcp, (struct sockaddr *)&sa, &len);
    g->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    return 0;
}

int sim_modbus_create(const sim_fleet *f, const sim_modbus_options *o, sim_modbus **out)
{
    if (o->units < 1 || o->units > 247 || o->order < -1 || o->order >= MB_NORDERS || !o->host)
        return -EINVAL;
    sim_modbus *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->f = f;
    s->o = *o;
    uint32_t n = sim_fleet_outlet_count(f);
    s->ndevices = o->devices && o->devices < n ? o->devices : n;
    s->ngateways = (s->ndevices + o->units - 1) / o->units;
    s->gws = calloc(s->ngateways ? s->ngateways : 1, sizeof *s->gws);
    s->cache = calloc(s->ndevices ? s->ndevices : 1, sizeof *s->cache);
    if (!s->gws || !s->cache) {
        sim_modbus_destroy(s);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < s->ndevices; i++)
        s->cache[i].minute = INT64_MIN;
    for (uint32_t g = 0; g < s->ngateways; g++) {
        s->gws[g].s = s;
        s->gws[g].index = g;
        s->gws[g].order = o->order >= 0 ? o->order : (int)(g % MB_NORDERS);
    }
    *out = s;
    return 0;
}

void sim_modbus_destroy(sim_modbus *s)
{
    if (!s)
        return;
    free(s->gws);
    free(s->cache);
    free(s);
}

int sim_modbus_start(uv_loop_t *loop, const sim_fleet *f, const sim_modbus_options *o,
                     sim_modbus **out)
{
    sim_modbus *s;
    int rc = sim_modbus_create(f, o, &s);
    if (rc != 0)
        return rc;
    for (uint32_t g = 0; g < s->ngateways && rc == 0; g++)
        rc = listen_gateway(loop, s, &s->gws[g]);
    *out = s;
    if (rc != 0) {
        sim_modbus_close(s);
        *out = NULL;
    }
    return rc;
}

uint32_t sim_modbus_gateways(const sim_modbus *s)
{
    return s->ngateways;
}

int sim_modbus_port(const sim_modbus *s, uint32_t g)
{
    return g < s->ngateways ? s->gws[g].port : -1;
}

void sim_modbus_get_stats(const sim_modbus *s, sim_modbus_stats *out)
{
    *out = s->stats;
}

static void write_template(FILE *out, int medium, int order, bool *first)
{
    int nf = medium == SIM_GAS ? SIM_NGAS : SIM_NWATER;
    fprintf(out, "%s\n  {\"name\": \"%s-%s\", \"order\": \"%s\", \"registers\": [", *first ? "" : ",",
            medium == SIM_GAS ? "gas" : "water", mb_order_name(order), mb_order_name(order));
    for (int k = 0; k < nf; k++)
        fprintf(out, "%s\n    {\"code\": \"%s\", \"address\": %d, \"type\": \"float32\"}",
                k ? "," : "", sim_factor_code(medium, k), 2 * k);
    fprintf(out, "]}");
    *first = false;
}

int sim_modbus_config_write(const sim_modbus *s, FILE *out, int interval_ms)
{
    bool first = true;
    fprintf(out, "{\"templates\": [");
    for (int m = 0; m < 2; m++)
        for (int order = 0; order < MB_NORDERS; order++)
            write_template(out, m, order, &first);
    fprintf(out, "],\n \"gateways\": [");
    for (uint32_t g = 0; g < s->ngateways; g++) {
        const char *host = s->o.host;
        bool v6 = strchr(host, ':') != NULL;
        fprintf(out, "%s\n  {\"name\": \"sim-gw%u\", \"tcp\": \"%s%s%s:%d\", \"interval_ms\": %d, "
                     "\"devices\": [",
                g ? "," : "", g, v6 ? "[" : "", host, v6 ? "]" : "", s->gws[g].port,
                interval_ms);
        for (uint32_t u = 0; u < s->o.units; u++) {
            uint32_t i = g * s->o.units + u;
            if (i >= s->ndevices)
                break;
            const sim_outlet *o = sim_fleet_outlet(s->f, i);
            fprintf(out, "%s\n    {\"mn\": \"%s\", \"unit\": %u, \"template\": \"%s-%s\"}",
                    u ? "," : "", o->mn, u + 1, o->medium == SIM_GAS ? "gas" : "water",
                    mb_order_name(s->gws[g].order));
        }
        fprintf(out, "]}");
    }
    fprintf(out, "]}\n");
    return ferror(out) ? -EIO : 0;
}

static void on_closed_gw(uv_handle_t *h)
{
    gateway *g = h->data;
    sim_modbus *s = g->s;
    if (--s->closing == 0) {
        free(s->gws);
        free(s->cache);
        free(s);
    }
}

void sim_modbus_close(sim_modbus *s)
{
    if (!s)
        return;
    for (conn *c = s->conns; c; c = c->next)
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, on_closed_conn);
    if (s->closing == 0) {
        free(s->gws);
        free(s->cache);
        free(s);
        return;
    }
    for (uint32_t g = 0; g < s->ngateways; g++)
        if (s->gws[g].tcp.loop && !uv_is_closing((uv_handle_t *)&s->gws[g].tcp))
            uv_close((uv_handle_t *)&s->gws[g].tcp, on_closed_gw);
}

void sim_modbus_run_options_defaults(sim_modbus_run_options *r)
{
    memset(r, 0, sizeof *r);
    r->interval_ms = 10000;
    sim_modbus_options_defaults(&r->o);
}

typedef struct run {
    sim_modbus *s;
    sim_modbus_stats *stats;
    uv_signal_t sigint, sigterm;
    uv_timer_t timer;
} run;

static void run_stop(run *r)
{
    if (!r->s)
        return;
    sim_modbus_get_stats(r->s, r->stats);
    sim_modbus_close(r->s);
    r->s = NULL;
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->timer, NULL);
}

static void on_run_signal(uv_signal_t *h, int signum)
{
    run_stop(h->data);
}

static void on_run_timer(uv_timer_t *t)
{
    run_stop(t->data);
}

static int write_config_file(const sim_modbus *s, const char *path, int interval_ms)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *cf = fopen(tmp, "w");
    if (!cf)
        return -errno;
    int rc = sim_modbus_config_write(s, cf, interval_ms);
    if (fclose(cf) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    return rc;
}

int sim_modbus_run(const sim_fleet *f, const sim_modbus_run_options *ro, sim_modbus_stats *stats)
{
    char host[256];
    const char *colon = ro->listen ? strrchr(ro->listen, ':') : NULL;
    size_t hl = colon ? (size_t)(colon - ro->listen) : 0;
    bool br = hl > 0 && ro->listen[0] == '[';
    if (!colon || hl <= 2u * br || hl >= sizeof host)
        return -EINVAL;
    memcpy(host, ro->listen + br, hl - 2 * br);
    host[hl - 2 * br] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -EINVAL;
    sim_modbus_options o = ro->o;
    o.host = host;
    o.port = (int)port;
    memset(stats, 0, sizeof *stats);
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc != 0)
        return rc;
    run r = {.stats = stats};
    rc = sim_modbus_start(&loop, f, &o, &r.s);
    if (rc == 0 && ro->config_out)
        rc = write_config_file(r.s, ro->config_out, ro->interval_ms);
    if (rc != 0) {
        sim_modbus_close(r.s);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc;
    }
    fprintf(stderr, "sim: modbus: %u gateways from port %d\n", sim_modbus_gateways(r.s),
            sim_modbus_port(r.s, 0));
    uv_signal_init(&loop, &r.sigint);
    uv_signal_init(&loop, &r.sigterm);
    uv_timer_init(&loop, &r.timer);
    r.sigint.data = r.sigterm.data = r.timer.data = &r;
    uv_signal_start(&r.sigint, on_run_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_run_signal, SIGTERM);
    if (ro->for_s > 0)
        uv_timer_start(&r.timer, on_run_timer, (uint64_t)(ro->for_s * 1000), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
