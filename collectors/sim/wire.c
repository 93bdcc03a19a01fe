/* wire.c: the simulated fleet on the network: DAQ units speaking HJ 212 over TCP.
 *
 * One libuv loop drives every unit. A unit sends, at the end of each period (plus its own
 * few seconds of delay), the records that period completes: real-time (2011, optional),
 * minute (2051), hourly (2061) and daily (2031) records. Units that ask for answers (Flag=5)
 * wait for the 9014 before their next upload, as real units do; the answers are counted
 * and timed. Units also answer what platforms send them: history requests (2061/2051/2031
 * with BeginTime/EndTime: 9011, the records from the deterministic model, 9012), clock
 * requests (1011/1012), and they reconnect after their connection drops. During a GAP event
 * a unit sends nothing and a unit on its own connection hangs up.
 *
 * By default each unit has its own connection. With a number of direct units, the others are
 * carried by a few forwarding connections (as provincial platforms forward to the national
 * one), each with a window of unanswered uploads.
 *
 * Simulated time runs at `speed` simulated seconds per real second, or, at speed 0, jumps to
 * the next period's end as soon as every upload of the current one is answered (or given
 * up). Nothing is allocated per packet: each connection formats packets straight into its
 * own output buffer, which is written once per loop iteration (before the loop polls) with
 * uv_try_write and, for what the socket does not take at once, one uv_write at a time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hj212.h"
#include "sim_int.h"

enum { C_DOWN = 0, C_CONNECTING, C_UP, C_CLOSING };

#define MAX_JOBS 4
#define HIST_MAX_RECORDS 744 /* a month of hours per history request */
#define LAT_BUCKETS 4096

typedef struct inflight {
    char qn[18];
    uint32_t daq;
    uint64_t sent_ns;
} inflight;

/* A history request being answered. */
typedef struct job {
    uint32_t daq;
    int cn;
    int64_t next, last; /* data times still to send: [next, last] */
    int64_t step;
    uint32_t sent;
    char qn[18];
} job;

typedef struct daq {
    uint32_t conn;
    int64_t next_tick; /* end of the next period to send */
    uint8_t stage;     /* which record of that tick comes next */
    bool queued;       /* in its connection's wake queue */
} daq;

typedef struct conn {
    uv_tcp_t tcp; /* first: the handle's data points back here */
    uv_connect_t creq;
    uv_write_t wreq;
    struct wire *w;
    uint32_t id;
    uint8_t state;
    bool writing;
    bool wait_connect; /* in the list of connections to open */
    bool dropped;      /* closed on purpose (a gap): reconnect without delay */
    bool dirty;        /* in the list of connections to write before the loop polls */
    uint32_t *daqs, ndaq; /* borrowed from wire.members */
    uint32_t *q, qhead, qlen; /* wake queue (room for ndaq) */
    char *out;
    uint32_t out_len, out_cap, wr_len;
    hj212_framer *fr;
    inflight *fl;
    uint32_t nfl, window;
    job jobs[MAX_JOBS];
    uint32_t njobs;
    uint64_t reconnect_at_ns;
} conn;

typedef struct wire {
    const sim_fleet *f;
    sim_wire_options o;
    uv_loop_t loop;
    uv_timer_t tick;  /* clock, timeouts, reconnects */
    uv_check_t check; /* speed 0: advance when idle */
    uv_prepare_t prep; /* writes what this iteration formatted, one call per connection */
    uint32_t *dirty, ndirty;
    struct sockaddr_storage addr;
    conn *conns;
    uint32_t nconns;
    daq *daqs;
    sim_day_acc *acc; /* per unit: the day so far */
    uint32_t ndaq;
    uint32_t *members, *queues;
    uint32_t *order; /* units by jitter */
    int64_t step, now, end;
    int64_t cur_tick;
    uint32_t wake_pos;
    uint32_t nconnecting, nqueued, ninflight, njobs, ndone;
    uint32_t *pending_connect, npending, pending_pos;
    int next_port;
    uint64_t tick_t0_ns; /* speed 0: when the current period's uploads began */
    bool in_burst;       /* speed 0: the current period is a top-of-hour one */
    int64_t paused_tick; /* speed 0: the top-of-hour period last paused before */
    uint64_t pause_until_ns;
    uint64_t burst_sent; /* st.sent when it began */
    int64_t burst_tick, burst_began_ms;
    uint64_t last_housekeeping_ns;
    bool started, finished, stopping;
    uint64_t t0_ns, last_progress_ns, linger_until_ns;
    hj212_packet pkt;
    uint64_t lat[LAT_BUCKETS];
    uint64_t lat_n;
    double lat_max_ms;
    uint64_t burst_lat[LAT_BUCKETS]; /* the same, for the current top-of-hour period only */
    uint64_t burst_lat_n;
    sim_wire_stats st;
} wire;

void sim_wire_options_defaults(sim_wire_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 2120;
    o->speed = 0;
    o->direct = -1;
    o->forwarders = 4;
    o->window = 32;
    o->ack_timeout_ms = 5000;
    o->max_connecting = 256;
}

/* ---- Latency histogram: 64 linear sub-buckets per power of two of microseconds ---------- */

static unsigned lat_bucket(uint64_t us)
{
    if (us < 64)
        return (unsigned)us;
    unsigned e = 63 - (unsigned)__builtin_clzll(us); /* >= 6 */
    unsigned b = 64 * (e - 5) + (unsigned)((us >> (e - 6)) & 63);
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

static double lat_value_ms(unsigned b)
{
    if (b < 64)
        return b / 1000.0;
    unsigned e = b / 64 + 5, m = b % 64;
    return (double)(((uint64_t)1 << e) + ((uint64_t)m << (e - 6))) / 1000.0;
}

static double hist_quantile(const uint64_t *h, uint64_t n, double q, double max_ms)
{
    if (!n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)n), acc = 0;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        acc += h[b];
        if (acc > want)
            return lat_value_ms(b);
    }
    return max_ms;
}

static double lat_quantile(const wire *w, double q)
{
    return hist_quantile(w->lat, w->lat_n, q, w->lat_max_ms);
}

/* ---- Output ------------------------------------------------------------------------------ */

static void conn_close(conn *c);
static void pump(conn *c);

static void on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->writing = false;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->w->st.bytes += c->wr_len;
    memmove(c->out, c->out + c->wr_len, c->out_len - c->wr_len);
    c->out_len -= c->wr_len;
    c->wr_len = 0;
    pump(c);
}

static void flush(conn *c)
{
    if (c->writing || !c->out_len || c->state != C_UP)
        return;
    uv_buf_t b = uv_buf_init(c->out, c->out_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->w->st.bytes += (uint64_t)n;
    if ((uint32_t)n == c->out_len) {
        c->out_len = 0;
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (uint32_t)n);
    c->out_len -= (uint32_t)n;
    c->wr_len = c->out_len;
    c->writing = true;
    c->wreq.data = c;
    b = uv_buf_init(c->out, c->wr_len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        c->writing = false;
        conn_close(c);
    }
}

static bool room(const conn *c) { return c->out_cap - c->out_len >= SIM_PACKET_MAX; }

/* A unit's answer to a platform request: 9011 (QnRtn), 9012 (ExeRtn) or the 1011 time. */
static void put_answer(conn *c, uint32_t d, const char *qn, int cn, const char *cp)
{
    if (!room(c))
        flush(c); /* several requests in one read: make room rather than drop an answer */
    if (!room(c)) {
        c->w->st.answers_dropped++;
        return;
    }
    const sim_outlet *o = sim_fleet_outlet(c->w->f, d);
    char *seg = c->out + c->out_len + 6;
    int n = snprintf(seg, SIM_PACKET_MAX - 16, "QN=%s;ST=91;CN=%d;PW=%s;MN=%s;Flag=4;CP=&&%s&&",
                     qn, cn, o->pw, o->mn, cp);
    int len = sim_frame(o, seg, (size_t)n, c->out + c->out_len, SIM_PACKET_MAX);
    if (len > 0)
        c->out_len += (uint32_t)len;
}

/* ---- Uploads ------------------------------------------------------------------------------ */

/* Formats record r of unit d as an upload with QN qn_ms; tracks the answer. */
static void put_record(conn *c, uint32_t d, const sim_record *r, int64_t qn_ms)
{
    wire *w = c->w;
    const sim_outlet *o = sim_fleet_outlet(w->f, d);
    int n = sim_packet_format(w->f, r, qn_ms, c->out + c->out_len, c->out_cap - c->out_len);
    if (n <= 0)
        return;
    w->st.sent++;
    if (o->ack) {
        inflight *x = &c->fl[c->nfl++];
        /* The QN is at a fixed place: right after "##dddd" "QN=". */
        memcpy(x->qn, c->out + c->out_len + 9, 17);
        x->qn[17] = 0;
        x->daq = d;
        x->sent_ns = uv_hrtime();
        w->ninflight++;
    } else {
        w->st.noack++;
    }
    c->out_len += (uint32_t)n;
}

static void put_upload(conn *c, uint32_t d, int cn, int64_t data_time, int64_t qn_ms)
{
    sim_record r;
    if (sim_record_compute(c->w->f, d, cn, data_time, &r) == 0)
        put_record(c, d, &r, qn_ms);
}

/* What the tick at t holds for a unit, in order: 2011, 2051, 2061, 2031. Returns the CN of
 * stage s, and the period's start through *dt; 0 when that stage has nothing. */
static int stage_record(const wire *w, int64_t t, int s, int64_t *dt)
{
    const sim_options *op = sim_fleet_options(w->f);
    int64_t period = 0;
    int cn = 0;
    switch (s) {
    case 0:
        if (op->rtd_interval_s && t % op->rtd_interval_s == 0) {
            *dt = t;
            return t < w->end ? SIM_CN_RTD : 0;
        }
        return 0;
    case 1:
        if (op->minute_interval && t % (op->minute_interval * 60) == 0)
            period = op->minute_interval * 60, cn = SIM_CN_MIN;
        break;
    case 2:
        if (t % 3600 == 0)
            period = 3600, cn = SIM_CN_HOUR;
        break;
    case 3:
        if (sim_local_day(t) == t)
            period = 86400, cn = SIM_CN_DAY;
        break;
    }
    if (!cn || t - period < op->start)
        return 0;
    *dt = t - period;
    return cn;
}

static void queue_pop(conn *c)
{
    wire *w = c->w;
    w->daqs[c->q[c->qhead]].queued = false;
    c->qhead = (c->qhead + 1) % c->ndaq;
    c->qlen--;
    w->nqueued--;
}

/* Moves unit d on by one record (formatting it when there is one). Returns false when d has
 * nothing more due now. */
static bool daq_step(conn *c, uint32_t d)
{
    wire *w = c->w;
    daq *x = &w->daqs[d];
    const sim_outlet *o = sim_fleet_outlet(w->f, d);
    if (x->next_tick > w->end || x->next_tick + o->jitter_s > w->now)
        return false;
    int64_t t = x->next_tick, dt;
    bool offline = sim_outlet_offline(w->f, d, t);
    if (offline && c->ndaq == 1 && c->state == C_UP) {
        /* A unit on its own connection hangs up for the gap. */
        w->st.drops++;
        c->dropped = true;
        conn_close(c);
    }
    while (x->stage < 4) {
        int s = x->stage++;
        int cn = stage_record(w, t, s, &dt);
        if (!cn)
            continue;
        sim_record r;
        r.outlet = d;
        /* Hours go into the unit's day (also those it does not send), so the daily record
         * at midnight needs no recomputation. */
        if (cn == SIM_CN_HOUR) {
            sim_record_compute(w->f, d, cn, dt, &r);
            sim_day_acc_add(&w->acc[d], &r);
        } else if (cn != SIM_CN_DAY || !sim_day_acc_record(w->f, &w->acc[d], dt, &r)) {
            if (offline) {
                w->st.unsent++;
                continue;
            }
            sim_record_compute(w->f, d, cn, dt, &r);
        }
        if (offline) {
            w->st.unsent++;
            continue;
        }
        put_record(c, d, &r, (t + o->jitter_s) * 1000 + s);
        return true;
    }
    x->stage = 0;
    x->next_tick += w->step;
    if (x->next_tick > w->end)
        w->ndone++;
    return true;
}

/* One step of history job j: the next record, or the closing 9012. */
static void job_step(conn *c, uint32_t j)
{
    job *b = &c->jobs[j];
    if (b->next <= b->last && b->sent < HIST_MAX_RECORDS) {
        const sim_outlet *o = sim_fleet_outlet(c->w->f, b->daq);
        int64_t qn_ms = (b->next + b->step) * 1000 + 500 + b->sent % 500;
        (void)o;
        put_upload(c, b->daq, b->cn, b->next, qn_ms);
        c->w->st.history_records++;
        b->next += b->step;
        b->sent++;
        return;
    }
    put_answer(c, b->daq, b->qn, 9012, b->sent ? "ExeRtn=1" : "ExeRtn=100");
    c->jobs[j] = c->jobs[--c->njobs];
    c->w->njobs--;
}

/* Formatting is cheap and a write to a socket is not (on loopback it also runs the
 * receiver's side): what a loop iteration formats for a connection leaves in one write,
 * just before the loop polls again. */
static void mark_dirty(conn *c)
{
    if (c->dirty || !c->out_len || c->writing)
        return;
    c->dirty = true;
    c->w->dirty[c->w->ndirty++] = c->id;
}

static void on_prepare(uv_prepare_t *h)
{
    wire *w = h->data;
    uint32_t n = w->ndirty;
    w->ndirty = 0;
    for (uint32_t i = 0; i < n; i++) {
        conn *c = &w->conns[w->dirty[i]];
        c->dirty = false;
        flush(c);
    }
}

/* Sends what is due on c while its window and buffer allow. */
static void pump(conn *c)
{
    wire *w = c->w;
    if (c->state != C_UP)
        return;
    for (;;) {
        if (!room(c)) {
            flush(c); /* the buffer is full: write it now */
            if (!room(c))
                break;
        }
        if (c->state != C_UP || c->nfl >= c->window)
            break;
        if (c->qlen) {
            uint32_t d = c->q[c->qhead];
            if (!daq_step(c, d))
                queue_pop(c);
            continue;
        }
        if (c->njobs) {
            job_step(c, 0);
            continue;
        }
        break;
    }
    mark_dirty(c);
    (void)w;
}

/* Puts unit d in its connection's queue; a unit on its own connection also (re)connects or,
 * inside a gap, hangs up. */
static void start_connect(conn *c);

static void wake(wire *w, uint32_t d)
{
    daq *x = &w->daqs[d];
    conn *c = &w->conns[x->conn];
    if (c->ndaq == 1) {
        bool off = sim_outlet_offline(w->f, d, x->next_tick);
        if (!off && c->state == C_DOWN && uv_hrtime() >= c->reconnect_at_ns) {
            start_connect(c);
        }
    }
    if (!x->queued && x->next_tick <= w->end) {
        x->queued = true;
        c->q[(c->qhead + c->qlen) % c->ndaq] = d;
        c->qlen++;
        w->nqueued++;
    }
    pump(c);
    if (c->ndaq == 1 && c->state == C_DOWN && x->queued &&
        sim_outlet_offline(w->f, d, x->next_tick)) {
        /* Nobody sends during a gap: step through it without a connection. */
        while (x->next_tick + sim_fleet_outlet(w->f, d)->jitter_s <= w->now &&
               x->next_tick <= w->end && sim_outlet_offline(w->f, d, x->next_tick))
            daq_step(c, d);
        if (x->next_tick > w->end || x->next_tick + sim_fleet_outlet(w->f, d)->jitter_s > w->now) {
            x->queued = false;
            c->qhead = (c->qhead + 1) % c->ndaq;
            c->qlen--;
            w->nqueued--;
        }
    }
}

/* ---- Connections ------------------------------------------------------------------------ */

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    wire *w = c->w;
    c->state = C_DOWN;
    c->out_len = c->wr_len = 0;
    c->writing = false;
    w->st.failed += c->nfl; /* uploads that will never be answered now */
    w->ninflight -= c->nfl;
    c->nfl = 0;
    w->njobs -= c->njobs;
    c->njobs = 0;
    hj212_framer_destroy(c->fr);
    c->fr = NULL;
    c->reconnect_at_ns = c->dropped ? 0 : uv_hrtime() + 1000000000ull;
    c->dropped = false;
    if (w->stopping)
        return;
    if (c->ndaq == 1 && c->qlen)
        wake(w, c->daqs[0]); /* inside a gap it walks on; otherwise it reconnects */
}

static void conn_close(conn *c)
{
    if (c->state == C_UP || c->state == C_CONNECTING) {
        if (c->state == C_UP)
            c->w->st.disconnects++;
        else
            c->w->nconnecting--;
        c->state = C_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char rbuf[65536]; /* the loop is single-threaded: one read buffer for all */
    (void)h;
    (void)hint;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void handle_frame(void *ctx, const hj212_frame *fr);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n > 0 && c->fr)
        hj212_framer_push(c->fr, buf->base, (size_t)n, handle_frame, c);
    pump(c);
}

static void connect_next(wire *w);

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = req->data;
    wire *w = c->w;
    if (c->state != C_CONNECTING)
        return;
    if (status < 0) {
        w->st.connect_failures++;
        conn_close(c);
        if (status == UV_EADDRINUSE)
            c->dropped = true; /* our own local port was taken: retry at once on another */
        connect_next(w);
        return;
    }
    w->nconnecting--;
    w->st.connects++;
    c->state = C_UP;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    connect_next(w);
    pump(c);
}

/* With thousands of connections to one address, Linux's choice of a local port at connect
 * time scans the ports already used (it tries even ports first, so past ~14,000 connections
 * every connect walks half the range): measured at half the process's time for 19,000
 * connections. Large fleets therefore bind each connection to a port of their own below the
 * ephemeral range; a port found in use fails the connect with EADDRINUSE and is retried on
 * the next port at once. */
#define LOCAL_PORT_FIRST 10000
#define LOCAL_PORT_LAST 32000

static void bind_local_port(wire *w, conn *c)
{
    if (w->nconns < 1000)
        return;
    struct sockaddr_storage a;
    memset(&a, 0, sizeof a);
    a.ss_family = w->addr.ss_family;
    for (int tries = 0; tries < 4; tries++) {
        int port = w->next_port++;
        if (w->next_port > LOCAL_PORT_LAST)
            w->next_port = LOCAL_PORT_FIRST;
        if (port == w->o.port)
            continue;
        if (a.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
        if (uv_tcp_bind(&c->tcp, (const struct sockaddr *)&a, 0) == 0)
            return;
    }
}

static void do_connect(conn *c)
{
    wire *w = c->w;
    hj212_framer_options fo = {2048};
    if (hj212_framer_create(&fo, &c->fr) != 0 || uv_tcp_init(&w->loop, &c->tcp) != 0) {
        hj212_framer_destroy(c->fr);
        c->fr = NULL;
        w->st.connect_failures++;
        return;
    }
    c->tcp.data = c;
    c->creq.data = c;
    c->state = C_CONNECTING;
    w->nconnecting++;
    bind_local_port(w, c);
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&w->addr, on_connect) != 0) {
        w->st.connect_failures++;
        conn_close(c);
    }
}

/* Opens connections waiting their turn while fewer than max_connecting are in progress. */
static void connect_next(wire *w)
{
    while (w->npending && w->nconnecting < w->o.max_connecting && !w->stopping) {
        conn *c = &w->conns[w->pending_connect[w->pending_pos]];
        w->pending_pos = (w->pending_pos + 1) % w->nconns;
        w->npending--;
        c->wait_connect = false;
        if (c->state == C_DOWN)
            do_connect(c);
    }
}

static void start_connect(conn *c)
{
    wire *w = c->w;
    if (c->wait_connect || c->state != C_DOWN)
        return;
    c->wait_connect = true;
    w->pending_connect[(w->pending_pos + w->npending) % w->nconns] = c->id;
    w->npending++;
    connect_next(w);
}

/* ---- What the platform sends --------------------------------------------------------------- */

static void on_ack(conn *c, const hj212_packet *p)
{
    wire *w = c->w;
    for (uint32_t i = 0; i < c->nfl; i++) {
        inflight *x = &c->fl[i];
        if (p->qn.len != 17 || memcmp(x->qn, p->qn.p, 17) != 0)
            continue;
        const sim_outlet *o = sim_fleet_outlet(w->f, x->daq);
        if (p->mn.p && (p->mn.len != strlen(o->mn) || memcmp(p->mn.p, o->mn, p->mn.len)))
            continue;
        uint64_t us = (uv_hrtime() - x->sent_ns) / 1000;
        w->lat[lat_bucket(us)]++;
        w->lat_n++;
        if (w->in_burst) {
            w->burst_lat[lat_bucket(us)]++;
            w->burst_lat_n++;
        }
        if (us / 1000.0 > w->lat_max_ms)
            w->lat_max_ms = us / 1000.0;
        w->st.acked++;
        *x = c->fl[--c->nfl];
        w->ninflight--;
        return;
    }
    w->st.late_acks++;
}

static void on_history(conn *c, uint32_t d, const hj212_packet *p, const char *qn)
{
    wire *w = c->w;
    int64_t step = p->cn == SIM_CN_HOUR ? 3600
                   : p->cn == SIM_CN_DAY ? 86400
                                         : (int64_t)sim_fleet_options(w->f)->minute_interval * 60;
    if (!p->has_begin_time || !p->has_end_time || step == 0 || c->njobs == MAX_JOBS) {
        put_answer(c, d, qn, 9011, "QnRtn=2");
        return;
    }
    w->st.history_requests++;
    put_answer(c, d, qn, 9011, "QnRtn=1");
    job *b = &c->jobs[c->njobs++];
    w->njobs++;
    memset(b, 0, sizeof *b);
    b->daq = d;
    b->cn = p->cn;
    b->step = step;
    memcpy(b->qn, qn, 18);
    /* Periods that lie in the simulation and have ended by now, aligned to the period. */
    int64_t first = p->begin_time, start = sim_fleet_options(w->f)->start;
    if (first < start)
        first = start;
    int64_t base = step == 86400 ? start : 0;
    first = base + (first - base + step - 1) / step * step;
    int64_t last = p->end_time;
    if (last > w->now - step)
        last = w->now - step;
    if (last > w->end - step)
        last = w->end - step;
    b->next = first;
    b->last = last;
}

static void handle_frame(void *ctx, const hj212_frame *fr)
{
    conn *c = ctx;
    wire *w = c->w;
    hj212_packet *p = &w->pkt;
    if (fr->crc_kind == HJ212_CRC_WRONG || fr->crc_kind == HJ212_CRC_MISSING ||
        hj212_parse(fr->seg, fr->seg_len, NULL, p, NULL) != 0) {
        w->st.bad_frames++;
        return;
    }
    if (p->cn == 9014) {
        on_ack(c, p);
        return;
    }
    if (p->cn == 9011 || p->cn == 9012 || p->cn == 9013)
        return;
    int64_t d = p->mn.p ? sim_fleet_find_mn(w->f, p->mn.p, p->mn.len) : -1;
    if (d < 0 || w->daqs[d].conn != c->id) {
        w->st.unknown_requests++;
        return;
    }
    char qn[18] = "";
    if (p->qn.p && p->qn.len == 17)
        memcpy(qn, p->qn.p, 17);
    switch (p->cn) {
    case SIM_CN_HOUR:
    case SIM_CN_MIN:
    case SIM_CN_DAY:
        on_history(c, (uint32_t)d, p, qn);
        break;
    case 1011: {
        w->st.clock_requests++;
        put_answer(c, (uint32_t)d, qn, 9011, "QnRtn=1");
        char cp[40] = "SystemTime=", *q = cp + 11;
        sim_qn_format(w->now * 1000, q);
        q[14] = 0;
        put_answer(c, (uint32_t)d, qn, 1011, cp);
        put_answer(c, (uint32_t)d, qn, 9012, "ExeRtn=1");
        break;
    }
    case 1012:
        w->st.clock_requests++;
        put_answer(c, (uint32_t)d, qn, 9011, "QnRtn=1");
        put_answer(c, (uint32_t)d, qn, 9012, "ExeRtn=1");
        break;
    default:
        w->st.unknown_requests++;
        put_answer(c, (uint32_t)d, qn, 9011, "QnRtn=8");
        break;
    }
}

/* ---- Simulated time ------------------------------------------------------------------------ */

/* Wakes every unit whose send time (tick + jitter) has come. */
static void advance(wire *w)
{
    while (w->cur_tick <= w->end) {
        while (w->wake_pos < w->ndaq) {
            uint32_t d = w->order[w->wake_pos];
            if (w->cur_tick + sim_fleet_outlet(w->f, d)->jitter_s > w->now)
                return;
            wake(w, d);
            w->wake_pos++;
        }
        w->wake_pos = 0;
        w->cur_tick += w->step;
    }
}

static bool idle(const wire *w)
{
    return !w->nqueued && !w->ninflight && !w->nconnecting && !w->npending && !w->njobs;
}

static void stop_all(wire *w)
{
    w->stopping = true;
    for (uint32_t i = 0; i < w->nconns; i++)
        conn_close(&w->conns[i]);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->check, NULL);
    uv_close((uv_handle_t *)&w->prep, NULL);
}

static void fill_stats(wire *w)
{
    w->st.ack_p50_ms = lat_quantile(w, 0.50);
    w->st.ack_p99_ms = lat_quantile(w, 0.99);
    w->st.ack_max_ms = w->lat_max_ms;
    w->st.elapsed_s = (double)(uv_hrtime() - w->t0_ns) / 1e9;
    double active = w->st.elapsed_s - w->st.paused_s;
    w->st.rate = active > 0 ? (double)w->st.sent / active : 0;
    w->st.sim_end = w->now;
}

/* Gives up on uploads unanswered for too long; reopens connections after their delay. */
static void housekeeping(wire *w, uint64_t now_ns)
{
    uint64_t limit = (uint64_t)w->o.ack_timeout_ms * 1000000ull;
    for (uint32_t i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        bool expired = false;
        for (uint32_t k = 0; k < c->nfl;) {
            if (now_ns > c->fl[k].sent_ns && now_ns - c->fl[k].sent_ns > limit) {
                w->st.missing++;
                c->fl[k] = c->fl[--c->nfl];
                w->ninflight--;
                expired = true;
            } else {
                k++;
            }
        }
        if (expired)
            pump(c);
        if (c->state == C_DOWN && !c->wait_connect && now_ns >= c->reconnect_at_ns &&
            (c->ndaq > 1 || (c->qlen && !sim_outlet_offline(w->f, c->daqs[0],
                                                            w->daqs[c->daqs[0]].next_tick))))
            start_connect(c);
    }
}

static void burst_end(wire *w, double secs);

static void check_done(wire *w, uint64_t now_ns)
{
    if (!w->finished && w->cur_tick > w->end && w->ndone == w->ndaq && !w->ninflight &&
        !w->njobs) {
        w->finished = true;
        if (w->tick_t0_ns && w->in_burst) /* answered, though a connection is still down */
            burst_end(w, (double)(now_ns - w->tick_t0_ns) / 1e9);
        fill_stats(w);
        w->linger_until_ns = now_ns + (uint64_t)(w->o.linger_s * 1e9);
    }
    if (w->finished && now_ns >= w->linger_until_ns && !w->stopping)
        stop_all(w);
}

static void on_tick(uv_timer_t *t)
{
    wire *w = t->data;
    uint64_t now_ns = uv_hrtime();
    if (!w->started) {
        if (w->nconnecting || w->npending)
            return;
        w->started = true; /* every first connection attempt is done: the clock starts */
        w->st.connect_s = (double)(now_ns - w->t0_ns) / 1e9;
        w->t0_ns = now_ns;
    }
    if (w->o.speed > 0) {
        int64_t now = sim_fleet_options(w->f)->start +
                      (int64_t)((double)(now_ns - w->t0_ns) / 1e9 * w->o.speed);
        w->now = now < w->end + 60 ? now : w->end + 60;
        advance(w);
    }
    if (now_ns - w->last_housekeeping_ns >= 100000000ull) {
        w->last_housekeeping_ns = now_ns;
        housekeeping(w, now_ns);
    }
    if (w->o.progress && now_ns - w->last_progress_ns >= 1000000000ull) {
        w->last_progress_ns = now_ns;
        fill_stats(w);
        w->o.progress(w->o.progress_ud, &w->st);
    }
    check_done(w, now_ns);
}

/* Speed 0: true while the silence before a top-of-hour period lasts. */
static bool hour_pause(wire *w)
{
    if (w->o.hour_pause_s <= 0 || w->cur_tick % 3600 != 0)
        return false;
    uint64_t now = uv_hrtime();
    if (w->paused_tick != w->cur_tick) {
        w->paused_tick = w->cur_tick;
        w->pause_until_ns = now + (uint64_t)(w->o.hour_pause_s * 1e9);
        w->st.paused_s += w->o.hour_pause_s;
        return true;
    }
    return now < w->pause_until_ns;
}

/* Speed 0: a top-of-hour period begins (the period about to be sent is cur_tick). */
static void burst_begin(wire *w)
{
    w->in_burst = w->cur_tick % 3600 == 0;
    w->burst_tick = w->cur_tick;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    w->burst_began_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    w->burst_sent = w->st.sent;
    memset(w->burst_lat, 0, sizeof w->burst_lat);
    w->burst_lat_n = 0;
}

/* ... and every upload of it is answered or given up, secs after it began. */
static void burst_end(wire *w, double secs)
{
    w->in_burst = false;
    if (w->st.sent == w->burst_sent || w->st.nbursts >= SIM_WIRE_BURSTS)
        return;
    sim_wire_burst *b = &w->st.bursts[w->st.nbursts++];
    b->tick = w->burst_tick;
    b->began_ms = w->burst_began_ms;
    b->uploads = w->st.sent - w->burst_sent;
    b->s = secs;
    b->ack_p50_ms = hist_quantile(w->burst_lat, w->burst_lat_n, 0.50, secs * 1000);
    b->ack_p99_ms = hist_quantile(w->burst_lat, w->burst_lat_n, 0.99, secs * 1000);
}

/* Speed 0: when everything sent is answered, the clock jumps to the next tick. */
static void on_check(uv_check_t *h)
{
    wire *w = h->data;
    if (!w->started || w->o.speed > 0 || w->stopping)
        return;
    if (idle(w) && w->tick_t0_ns) {
        /* Everything due so far is answered: the period just sent took this long. */
        double secs = (double)(uv_hrtime() - w->tick_t0_ns) / 1e9;
        if (secs > w->st.tick_max_s)
            w->st.tick_max_s = secs;
        w->st.tick_last_s = secs;
        w->tick_t0_ns = 0;
        if (w->in_burst)
            burst_end(w, secs);
    }
    for (int rounds = 0; rounds < 64 && idle(w) && w->cur_tick <= w->end; rounds++) {
        if (hour_pause(w))
            break;
        w->tick_t0_ns = uv_hrtime();
        w->now = w->cur_tick + 30;
        burst_begin(w);
        advance(w);
    }
    check_done(w, uv_hrtime());
}

/* ---- Setup --------------------------------------------------------------------------------- */

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int cmp_jitter_ctx(const void *a, const void *b, void *ctx)
{
    const sim_fleet *f = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int jx = sim_fleet_outlet(f, x)->jitter_s, jy = sim_fleet_outlet(f, y)->jitter_s;
    return jx != jy ? jx - jy : (x > y) - (x < y);
}

static int wire_setup(wire *w)
{
    const sim_options *op = sim_fleet_options(w->f);
    w->ndaq = sim_fleet_outlet_count(w->f);
    uint32_t direct = w->o.direct < 0 || w->o.direct > (int64_t)w->ndaq ? w->ndaq
                                                                          : (uint32_t)w->o.direct;
    uint32_t nfw = direct < w->ndaq ? (w->o.forwarders ? w->o.forwarders : 1) : 0;
    if (nfw > w->ndaq - direct)
        nfw = w->ndaq - direct;
    w->nconns = direct + nfw;
    w->end = sim_fleet_end(w->f);
    w->step = 3600;
    if (op->minute_interval)
        w->step = gcd(w->step, op->minute_interval * 60);
    if (op->rtd_interval_s)
        w->step = gcd(w->step, op->rtd_interval_s);
    w->cur_tick = op->start + w->step;
    w->next_port = LOCAL_PORT_FIRST;
    w->now = op->start;
    w->conns = calloc(w->nconns, sizeof *w->conns);
    w->daqs = calloc(w->ndaq, sizeof *w->daqs);
    w->acc = calloc(w->ndaq, sizeof *w->acc);
    w->members = malloc(w->ndaq * sizeof *w->members);
    w->queues = malloc(w->ndaq * sizeof *w->queues);
    w->order = malloc(w->ndaq * sizeof *w->order);
    w->pending_connect = malloc(w->nconns * sizeof *w->pending_connect);
    w->dirty = malloc(w->nconns * sizeof *w->dirty);
    if (!w->conns || !w->daqs || !w->acc || !w->members || !w->queues || !w->order || !w->pending_connect ||
        !w->dirty)
        return -ENOMEM;
    for (uint32_t d = 0; d < w->ndaq; d++) {
        w->daqs[d].conn = d < direct ? d : direct + (d - direct) % nfw;
        w->daqs[d].next_tick = op->start + w->step;
        w->conns[w->daqs[d].conn].ndaq++;
        w->order[d] = d;
    }
    qsort_r(w->order, w->ndaq, sizeof *w->order, cmp_jitter_ctx, (void *)w->f);
    uint32_t off = 0;
    for (uint32_t i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        c->w = w;
        c->id = i;
        c->daqs = w->members + off;
        c->q = w->queues + off;
        off += c->ndaq;
        c->ndaq = 0;
        bool fw = i >= direct;
        c->window = fw ? (w->o.window ? w->o.window : 32) : 1;
        c->out_cap = fw ? 65536 : 3 * SIM_PACKET_MAX;
        c->out = malloc(c->out_cap);
        c->fl = malloc(c->window * sizeof *c->fl);
        if (!c->out || !c->fl)
            return -ENOMEM;
    }
    for (uint32_t d = 0; d < w->ndaq; d++) {
        conn *c = &w->conns[w->daqs[d].conn];
        c->daqs[c->ndaq++] = d;
    }
    return 0;
}

static void wire_free(wire *w)
{
    if (w->conns)
        for (uint32_t i = 0; i < w->nconns; i++) {
            free(w->conns[i].out);
            free(w->conns[i].fl);
            hj212_framer_destroy(w->conns[i].fr);
        }
    free(w->conns);
    free(w->daqs);
    free(w->acc);
    free(w->members);
    free(w->queues);
    free(w->order);
    free(w->pending_connect);
    free(w->dirty);
    free(w);
}

int sim_wire_run(const sim_fleet *f, const sim_wire_options *o, sim_wire_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    wire *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->f = f;
    w->o = *o;
    if (!w->o.ack_timeout_ms)
        w->o.ack_timeout_ms = 5000;
    if (!w->o.max_connecting)
        w->o.max_connecting = 256;
    int rc;
    if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&w->addr) != 0 &&
        uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&w->addr) != 0) {
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = wire_setup(w)) != 0)
        goto fail;
    if ((rc = uv_loop_init(&w->loop)) != 0)
        goto fail;
    uv_timer_init(&w->loop, &w->tick);
    uv_check_init(&w->loop, &w->check);
    w->tick.data = w->check.data = w;
    uv_timer_start(&w->tick, on_tick, 10, 10);
    uv_check_start(&w->check, on_check);
    uv_prepare_init(&w->loop, &w->prep);
    w->prep.data = w;
    uv_prepare_start(&w->prep, on_prepare);
    w->t0_ns = uv_hrtime();
    for (uint32_t i = 0; i < w->nconns; i++)
        start_connect(&w->conns[i]);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    if (!w->finished)
        fill_stats(w);
    *stats = w->st;
    wire_free(w);
    return 0;
fail:
    wire_free(w);
    return rc;
}

int sim_wire_stats_format(const sim_wire_stats *s, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "{\"sent\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"acked\":%" PRIu64
                     ",\"noack\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"failed\":%" PRIu64
                     ",\"late_acks\":%" PRIu64 ",\"unsent_gap\":%" PRIu64
                     ",\"connects\":%" PRIu64 ",\"connect_failures\":%" PRIu64
                     ",\"disconnects\":%" PRIu64 ",\"drops\":%" PRIu64
                     ",\"history_requests\":%" PRIu64 ",\"history_records\":%" PRIu64
                     ",\"clock_requests\":%" PRIu64 ",\"unknown_requests\":%" PRIu64
                     ",\"bad_frames\":%" PRIu64 ",\"answers_dropped\":%" PRIu64
                     ",\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f"
                     ",\"ack_max_ms\":%.3f,\"connect_s\":%.3f,\"tick_max_s\":%.3f"
                     ",\"tick_last_s\":%.3f,\"elapsed_s\":%.3f,\"paused_s\":%.3f"
                     ",\"rate\":%.1f"
                     ",\"sim_end\":%" PRId64 ",\"hour_bursts\":[",
                     s->sent, s->bytes, s->acked, s->noack, s->missing, s->failed, s->late_acks,
                     s->unsent, s->connects, s->connect_failures, s->disconnects, s->drops,
                     s->history_requests, s->history_records, s->clock_requests,
                     s->unknown_requests, s->bad_frames, s->answers_dropped, s->ack_p50_ms, s->ack_p99_ms,
                     s->ack_max_ms, s->connect_s, s->tick_max_s, s->tick_last_s, s->elapsed_s,
                     s->paused_s, s->rate, s->sim_end);
    for (uint32_t i = 0; n >= 0 && (size_t)n < cap && i < s->nbursts; i++) {
        const sim_wire_burst *b = &s->bursts[i];
        int k = snprintf(buf + n, cap - (size_t)n,
                         "%s{\"tick\":%" PRId64 ",\"began_ms\":%" PRId64 ",\"uploads\":%" PRIu64
                         ",\"s\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f}",
                         i ? "," : "", b->tick, b->began_ms, b->uploads, b->s, b->ack_p50_ms,
                         b->ack_p99_ms);
        n = k < 0 ? k : n + k;
    }
    if (n >= 0 && (size_t)n < cap) {
        int k = snprintf(buf + n, cap - (size_t)n, "]}");
        n = k < 0 ? k : n + k;
    }
    return n < 0 || (size_t)n >= cap ? -ERANGE : n;
}
