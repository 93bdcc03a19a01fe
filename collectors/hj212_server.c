/* hj212_server.c: the HJ 212 TCP server, where the country's data acquisition units (DAQ)
 * connect and push their readings.
 *
 * One libuv loop carries every connection (the target is ~150,000 devices), so a connection
 * must cost little: its libuv handle and this small struct. The framer (about 8 KiB) is taken
 * from a pool only while a packet is split across reads, and the read buffer is one per
 * server, because each read is framed and parsed before the callback returns.
 *
 * A packet goes: framer -> CRC policy -> parse -> device check (MN, PW) -> by command:
 * uploads (2011/2051/2061/2031) to engine_ingest, whose acknowledgement callback writes the
 * 9014 answer only once the points are committed; device events (2021/2041/2081/3020) to the
 * events table; the device's answers (9011/9012) to our history requests. Rejected packets
 * are counted by reason and never acknowledged.
 *
 * Gaps: when a device's hourly uploads skip hours, the missing range is requested back
 * (CN 2061 with BeginTime/EndTime), and so are the daily records (CN 2031) of days whose last
 * hour was missed. One request per connection at a time; across the server a token bucket
 * (max_pulls_per_s) lets a request go as soon as the gap is seen, so a device is asked before
 * its newer hours pile up, and spreads a crowd of returning devices over seconds. A range seen
 * while the device's request is in flight waits for it; one whose connection closes before the
 * answer is asked again when the device is back. Idle connections are closed by one sweep
 * timer over a list ordered by last activity, not a timer per connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "collectors.h"
#include "hj212.h"
#include "mn_table.h"

#define MAX_LISTENERS 8
#define READ_BUF_LEN (64 * 1024)
#define MAX_WRITE_QUEUE (64 * 1024)     /* a client not reading its answers is closed */
#define MAX_JUNK (16 * 1024)            /* garbage since the last valid packet: close */
#define MAX_AUTH_FAILURES 3
#define PULL_TIMEOUT_MS (120 * 1000)
#define PULL_MAX_HOURS (31 * 24)
#define PULL_MAX_DAYS 31
#define CLOCK_DRIFT_S 60
#define CLOCK_SET_EVERY_S 3600
#define ACK_MAX 160
#define HELD_QUIET_MS 300
#define LISTEN_BACKLOG 65535 /* a fleet reconnecting at once; the kernel caps it (somaxconn) */

typedef struct conn conn;

struct conn {
    uv_tcp_t tcp;              /* first: handle->data is not needed to find the conn */
    hj212_server *srv;
    hj212_framer *framer;      /* from the pool while a split packet is pending */
    hj212_framer_stats fstart; /* the framer's counters when it was taken */
    conn *prev, *next;         /* activity list, least recently active first */
    conn *hprev, *hnext;       /* list of connections holding a framer */
    uint64_t last_active_ms;
    uint64_t junk_mark;        /* framer junk bytes at the last valid packet */
    mn_state *device;          /* the first MN this connection authenticated */
    uint32_t slot, gen;        /* its entry in the server's connection table */
    uint32_t pending_acks;     /* acknowledgements waiting for a commit or for writing */
    struct pending_ack *ready, *ready_tail; /* committed, written at the iteration's end */
    conn *dnext;               /* list of connections with ready acknowledgements */
    uint16_t auth_failures;
    uint8_t closing, forwarding, pulling;
};

/* An acknowledgement to write once the upload is committed. */
typedef struct pending_ack {
    struct pending_ack *next;
    conn *c;
    uint16_t len;
    bool ack;     /* a 9014 (counted as such when written) */
    char buf[];
} pending_ack;

/* Devices refer to connections by slot and generation, never by pointer: a forwarding
 * connection carries thousands of devices, and when it closes they must not be visited. */
typedef struct conn_slot {
    conn *c;
    uint32_t gen; /* 0: free */
} conn_slot;

struct hj212_server {
    uv_loop_t *loop;
    conn_slot *slots;
    uint32_t nslots, cap_slots, next_gen;
    uint32_t *free_slots;
    uint32_t nfree;
    engine *eng;
    hj212_server_options opts;
    uv_tcp_t listeners[MAX_LISTENERS];
    int nlisteners;
    uv_timer_t sweep;           /* idle connections, history pulls, pull timeouts */
    uv_check_t ack_check;       /* writes the acknowledgements committed this iteration */
    conn *ack_dirty;            /* connections with acknowledgements to write */
    pending_ack *ack_free;      /* spare acknowledgement buffers */
    size_t nack_free;
    conn *active_head, *active_tail;
    conn *held;                 /* connections holding a framer (a packet in pieces) */
    hj212_framer **pool;        /* idle framers */
    size_t npool, cap_pool;
    mn_table *devices;
    mn_state **pullq;           /* devices with a gap to request, FIFO */
    mn_state **pulling;         /* devices with a request in flight */
    size_t npulling, cap_pulling;
    size_t pullq_head, pullq_len, pullq_cap;
    uint32_t pull_tokens;       /* requests that may go now (refilled by the sweep timer) */
    hj212_packet pkt;           /* scratch: one packet is parsed at a time */
    char readbuf[READ_BUF_LEN];
    int closing_handles;
    bool closing;
    hj212_server_stats st;
};

static uint64_t now_ms(hj212_server *s)
{
    return uv_now(s->loop);
}

/* ---- Connection table -------------------------------------------------------------- */

static bool slot_take(hj212_server *s, conn *c)
{
    if (s->nfree == 0) {
        if (s->nslots == s->cap_slots) {
            uint32_t cap = s->cap_slots ? s->cap_slots * 2 : 1024;
            conn_slot *sl = realloc(s->slots, cap * sizeof *sl);
            uint32_t *fr = realloc(s->free_slots, cap * sizeof *fr);
            if (sl)
                s->slots = sl;
            if (fr)
                s->free_slots = fr;
            if (!sl || !fr)
                return false;
            s->cap_slots = cap;
        }
        s->free_slots[s->nfree++] = s->nslots++;
    }
    c->slot = s->free_slots[--s->nfree];
    if (++s->next_gen == 0)
        s->next_gen = 1;
    c->gen = s->next_gen;
    s->slots[c->slot] = (conn_slot){c, c->gen};
    return true;
}

static void slot_release(hj212_server *s, conn *c)
{
    s->slots[c->slot].gen = 0;
    s->slots[c->slot].c = NULL;
    s->free_slots[s->nfree++] = c->slot;
}

/* The connection that last carried device d, or NULL if it has closed. */
static conn *device_conn(hj212_server *s, const mn_state *d)
{
    if (d->conn_gen == 0 || d->conn_slot >= s->nslots || s->slots[d->conn_slot].gen != d->conn_gen)
        return NULL;
    return s->slots[d->conn_slot].c;
}

/* ---- Activity list ----------------------------------------------------------------- */

static void list_remove(hj212_server *s, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (s->active_head == c)
        s->active_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else if (s->active_tail == c)
        s->active_tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_touch(hj212_server *s, conn *c)
{
    c->last_active_ms = now_ms(s);
    if (s->active_tail == c)
        return;
    list_remove(s, c);
    c->prev = s->active_tail;
    if (s->active_tail)
        s->active_tail->next = c;
    else
        s->active_head = c;
    s->active_tail = c;
}

/* ---- Framer pool ----------------------------------------------------------------------- */

static void add_framer_stats(hj212_server *s, const hj212_framer_stats *now,
                             const hj212_framer_stats *start)
{
    s->st.bytes_in += now->bytes - start->bytes;
    s->st.junk_bytes += now->junk_bytes - start->junk_bytes;
    s->st.oversize += now->oversize - start->oversize + now->truncated - start->truncated;
    s->st.len_mismatch += now->len_mismatch - start->len_mismatch;
}

static hj212_framer *framer_take(hj212_server *s, conn *c)
{
    hj212_framer *f = NULL;
    if (s->npool > 0) {
        f = s->pool[--s->npool];
    } else {
        hj212_framer_options fo = {.max_segment_len = s->opts.max_segment};
        if (hj212_framer_create(&fo, &f) != 0)
            return NULL;
    }
    c->fstart = *hj212_framer_get_stats(f);
    s->st.framers_in_use++;
    c->hprev = NULL;
    c->hnext = s->held;
    if (s->held)
        s->held->hprev = c;
    s->held = c;
    return f;
}

/* Returns c's framer to the pool; only a framer holding no bytes can be shared. */
static void framer_give(hj212_server *s, conn *c, bool force)
{
    hj212_framer *f = c->framer;
    if (!f || (!force && hj212_framer_pending(f) > 0))
        return;
    add_framer_stats(s, hj212_framer_get_stats(f), &c->fstart);
    c->framer = NULL;
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else
        s->held = c->hnext;
    if (c->hnext)
        c->hnext->hprev = c->hprev;
    c->hprev = c->hnext = NULL;
    s->st.framers_in_use--;
    if (hj212_framer_pending(f) > 0 || s->closing) {
        hj212_framer_destroy(f);
        return;
    }
    if (s->npool == s->cap_pool) {
        size_t cap = s->cap_pool ? s->cap_pool * 2 : 64;
        hj212_framer **p = realloc(s->pool, cap * sizeof *p);
        if (!p) {
            hj212_framer_destroy(f);
            return;
        }
        s->pool = p;
        s->cap_pool = cap;
    }
    s->pool[s->npool++] = f;
}

/* ---- Connections --------------------------------------------------------------------- */

static void pulls_interrupt(hj212_server *s, conn *c);
static void pulls_run(hj212_server *s);

static void conn_free_if_done(conn *c)
{
    if (c->closing == 2 && c->pending_acks == 0)
        free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    c->closing = 2;
    conn_free_if_done(c);
}

static void conn_close(conn *c, uint64_t *reason)
{
    if (c->closing)
        return;
    hj212_server *s = c->srv;
    pulls_interrupt(s, c);
    c->closing = 1;
    if (reason)
        (*reason)++;
    s->st.conns_open--;
    if (c->forwarding)
        s->st.conns_forwarding--;
    slot_release(s, c);
    framer_give(s, c, true);
    list_remove(s, c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
    free(req);
}

/* Writes a small answer: straight to the socket when it takes it, else queued (copied). */
static void conn_send(conn *c, const char *data, size_t len)
{
    if (c->closing)
        return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len)
        return;
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
        conn_close(c, &c->srv->st.closed_peer);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_WRITE_QUEUE) {
        conn_close(c, &c->srv->st.closed_slow);
        return;
    }
    uv_write_t *req = malloc(sizeof *req + len - done);
    if (!req) {
        conn_close(c, &c->srv->st.closed_slow);
        return;
    }
    char *copy = (char *)(req + 1);
    memcpy(copy, data + done, len - done);
    b = uv_buf_init(copy, (unsigned)(len - done));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(req);
        conn_close(c, &c->srv->st.closed_peer);
    }
}

/* ---- Uploads and their acknowledgements ---------------------------------------------- */

#define ACK_FREE_MAX 65536

static void ack_release(hj212_server *s, pending_ack *a)
{
    if (s->nack_free >= ACK_FREE_MAX || s->closing) {
        free(a);
        return;
    }
    a->next = s->ack_free;
    s->ack_free = a;
    s->nack_free++;
}

/* A commit completes a whole group of uploads at once, and a forwarding connection carries
 * thousands of devices: their answers are gathered per connection and written with one
 * system call each at the end of the loop iteration (ack_check), not one call per answer. */
static void ready_push(hj212_server *s, conn *c, pending_ack *a)
{
    a->next = NULL;
    if (c->ready_tail) {
        c->ready_tail->next = a;
    } else {
        c->ready = a;
        c->dnext = s->ack_dirty;
        s->ack_dirty = c;
    }
    c->ready_tail = a;
}

static pending_ack *ack_take(hj212_server *s)
{
    pending_ack *a = s->ack_free;
    if (a) {
        s->ack_free = a->next;
        s->nack_free--;
        return a;
    }
    return malloc(sizeof *a + ACK_MAX);
}

static void on_committed(void *arg, int status)
{
    pending_ack *a = arg;
    conn *c = a->c;
    hj212_server *s = c->srv;
    if (status == 0 && a->len > 0 && !c->closing && !s->closing) {
        ready_push(s, c, a);
        return; /* still counted in pending_acks until written */
    }
    c->pending_acks--;
    ack_release(s, a);
    conn_free_if_done(c);
}

static void write_ready(hj212_server *s, conn *c)
{
    char buf[16384];
    size_t len = 0;
    pending_ack *a = c->ready;
    c->ready = c->ready_tail = NULL;
    while (a) {
        pending_ack *next = a->next;
        if (!c->closing) {
            if (len + a->len > sizeof buf) {
                conn_send(c, buf, len);
                len = 0;
            }
            memcpy(buf + len, a->buf, a->len);
            len += a->len;
            s->st.acks_sent += a->ack;
        }
        c->pending_acks--;
        ack_release(s, a);
        a = next;
    }
    if (len > 0)
        conn_send(c, buf, len);
}

static void write_all_ready(hj212_server *s)
{
    while (s->ack_dirty) {
        conn *c = s->ack_dirty;
        s->ack_dirty = c->dnext;
        c->dnext = NULL;
        write_ready(s, c);
        conn_free_if_done(c);
    }
}

static void on_ack_check(uv_check_t *h)
{
    write_all_ready(h->data);
}

/* A small message that needs no commit (a clock setting, a notification answer) joins the
 * connection's acknowledgements and shares their write. */
static void conn_queue(conn *c, const char *data, size_t len)
{
    hj212_server *s = c->srv;
    if (c->closing)
        return;
    pending_ack *a = len <= ACK_MAX && !s->closing ? ack_take(s) : NULL;
    if (!a) {
        conn_send(c, data, len);
        return;
    }
    a->c = c;
    a->len = (uint16_t)len;
    a->ack = false;
    memcpy(a->buf, data, len);
    c->pending_acks++;
    ready_push(s, c, a);
}

/* Prepares the 9014 answer now, while the packet's fields are valid; it is written later. */
static pending_ack *ack_prepare(conn *c, const hj212_packet *p)
{
    pending_ack *a = ack_take(c->srv);
    if (!a)
        return NULL;
    a->c = c;
    a->len = 0;
    a->ack = true;
    size_t len;
    if (p->flag >= 0 && (p->flag & HJ212_FLAG_A) &&
        hj212_format_data_ack(p, a->buf, ACK_MAX, &len) == 0)
        a->len = (uint16_t)len;
    return a;
}

static int interval_of_cn(int cn)
{
    switch (cn) {
    case 2011: return STORAGE_IV_RTD;
    case 2051: return STORAGE_IV_MIN;
    case 2061: return STORAGE_IV_HOUR;
    case 2031: return STORAGE_IV_DAY;
    default: return -1;
    }
}

static void queue_pull(hj212_server *s, mn_state *d)
{
    if (d->pull_queued)
        return;
    if (s->pullq_len == s->pullq_cap) {
        size_t cap = s->pullq_cap ? s->pullq_cap * 2 : 256;
        mn_state **q = malloc(cap * sizeof *q);
        if (!q)
            return;
        for (size_t i = 0; i < s->pullq_len; i++)
            q[i] = s->pullq[(s->pullq_head + i) % (s->pullq_cap ? s->pullq_cap : 1)];
        free(s->pullq);
        s->pullq = q;
        s->pullq_cap = cap;
        s->pullq_head = 0;
    }
    s->pullq[(s->pullq_head + s->pullq_len) % s->pullq_cap] = d;
    s->pullq_len++;
    d->pull_queued = 1;
    s->st.pulls_queued++;
}

/* Adds [begin, end] to a range still to request (one range: what lies between two gaps is
 * asked again, which costs a few records and no harm), keeping its newest `cap` periods. */
static void range_add(uint8_t *has, int64_t *rb, int64_t *re, int64_t begin, int64_t end,
                      int64_t cap)
{
    if (*has) {
        if (*rb < begin)
            begin = *rb;
        if (*re > end)
            end = *re;
    }
    if (end - begin > cap)
        begin = end - cap;
    *rb = begin;
    *re = end;
    *has = 1;
}

/* The missing hours [begin, end] (DataTimes): request them, and the daily records of the days
 * whose last hour is among them, since a unit that was away at midnight did not send its
 * day either (one that keeps no days answers ExeRtn=100). */
static void note_gap(hj212_server *s, mn_state *d, int64_t begin, int64_t end)
{
    range_add(&d->hour_gap, &d->gap_begin, &d->gap_end, begin, end,
              (int64_t)PULL_MAX_HOURS * 3600);
    int64_t tz = s->opts.tz_offset_s;
    int64_t first_end = ((begin + tz) / 86400 + 1) * 86400 - tz; /* next local midnight */
    int64_t last_end = (end + 3600 + tz) / 86400 * 86400 - tz;    /* last one <= end + 1 h */
    if (first_end <= last_end)
        range_add(&d->day_gap, &d->day_begin, &d->day_end, first_end - 86400,
                  last_end - 86400, (int64_t)PULL_MAX_DAYS * 86400);
}

/* An hourly upload: remember the newest hour; note any hours skipped and queue a request
 * (also for ranges left over from an earlier request cut short). */
static void note_hour(hj212_server *s, mn_state *d, int64_t t)
{
    if (d->last_hour != 0 && t > d->last_hour + 3600)
        note_gap(s, d, d->last_hour + 3600, t - 3600);
    if (t > d->last_hour)
        d->last_hour = t;
    if ((d->hour_gap || d->day_gap) && !d->pull_active)
        queue_pull(s, d);
}

/* Counts an upload that answers the history request in flight. */
static void note_pulled(hj212_server *s, mn_state *d, int iv, int64_t t)
{
    if (!d->pull_active || t < d->pull_begin || t > d->pull_end)
        return;
    if (iv == STORAGE_IV_HOUR && d->pull_cn == 2061)
        s->st.pulled_hours++;
    else if (iv == STORAGE_IV_DAY && d->pull_cn == 2031)
        s->st.pulled_days++;
}

static void handle_upload(conn *c, mn_state *d, const hj212_packet *p, int iv)
{
    hj212_server *s = c->srv;
    if (!p->has_data_time) {
        s->st.parse_errors++;
        return;
    }
    engine_value vals[HJ212_MAX_FACTORS];
    size_t n = 0;
    for (unsigned i = 0; i < p->nfactors; i++) {
        const hj212_factor *f = &p->factors[i];
        if (f->mask == 0)
            continue;
        vals[n].code = f->code;
        memset(&vals[n].pt, 0, sizeof vals[n].pt);
        memcpy(vals[n].pt.v, f->v, sizeof f->v);
        vals[n].pt.mask = f->mask;
        vals[n].pt.flag = (f->has & HJ212_HAS_FLAG) ? (uint8_t)f->flag : 0;
        n++;
    }
    pending_ack *a = ack_prepare(c, p);
    if (!a) {
        s->st.ingest_errors++;
        return;
    }
    engine_upload u = {.mn = d->mn, .interval = iv, .ts = p->data_time, .values = vals,
                       .nvalues = n};
    if (engine_ingest(s->eng, &u, on_committed, a) != 0) {
        ack_release(s, a);
        s->st.ingest_errors++;
        return;
    }
    c->pending_acks++;
    s->st.packets_accepted++;
    note_pulled(s, d, iv, p->data_time);
    if (iv == STORAGE_IV_HOUR) {
        note_hour(s, d, p->data_time);
        if (d->pull_queued)
            pulls_run(s);
    }
}

static void handle_event(conn *c, const hj212_packet *p, const char *seg, size_t seg_len)
{
    hj212_server *s = c->srv;
    pending_ack *a = ack_prepare(c, p);
    if (!a)
        return;
    /* The CP part as sent is the event's text. */
    const char *cp = memmem(seg, seg_len, "CP=&&", 5);
    char text[2048];
    snprintf(text, sizeof text, "%.*s", cp ? (int)(seg + seg_len - cp) : 0, cp ? cp : "");
    char mn[64];
    snprintf(mn, sizeof mn, "%.*s", (int)p->mn.len, p->mn.p);
    int64_t t = p->has_data_time ? p->data_time : (int64_t)(p->qn_ms / 1000);
    if (engine_ingest_event(s->eng, mn, p->cn, t, text, on_committed, a) != 0) {
        ack_release(s, a);
        s->st.ingest_errors++;
        return;
    }
    c->pending_acks++;
    s->st.events++;
    s->st.packets_accepted++;
}

/* ---- Device dialogue: clock and history --------------------------------------------- */

static void send_set_time(conn *c, const hj212_packet *p, mn_state *d)
{
    hj212_server *s = c->srv;
    char qn[18], mn[64], pw[16], out[256];
    size_t len;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    int64_t now = tv.tv_sec;
    hj212_qn_format(now * 1000 + tv.tv_usec / 1000, s->opts.tz_offset_s, qn);
    snprintf(mn, sizeof mn, "%.*s", (int)p->mn.len, p->mn.p);
    snprintf(pw, sizeof pw, "%.*s", (int)p->pw.len, p->pw.p ? p->pw.p : "");
    hj212_head h = {.qn = qn, .st = p->st >= 0 ? p->st : 32, .cn = 1012, .pw = pw, .mn = mn,
                    .flag = (p->version == HJ212_V2005 ? 0 : 4) | HJ212_FLAG_A};
    if (hj212_format_set_time(&h, NULL, now, s->opts.tz_offset_s, out, sizeof out, &len) == 0) {
        conn_queue(c, out, len);
        s->st.clock_sets++;
        d->last_clock_set = now;
    }
}

static void check_clock(conn *c, const hj212_packet *p, mn_state *d, bool asked)
{
    if (!c->srv->opts.set_clock && !asked)
        return;
    if (p->qn_ms <= 0)
        return;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    int64_t drift = p->qn_ms / 1000 - tv.tv_sec;
    if (drift < 0)
        drift = -drift;
    if (drift <= CLOCK_DRIFT_S)
        return;
    if (!asked && tv.tv_sec - d->last_clock_set < CLOCK_SET_EVERY_S)
        return;
    send_set_time(c, p, d);
}

/* The request in flight is over; a range noted meanwhile (or left over) goes next. */
static void pull_finish(hj212_server *s, mn_state *d, uint64_t *counter)
{
    (*counter)++;
    d->pull_active = 0;
    conn *c = device_conn(s, d);
    if (c)
        c->pulling = 0;
    for (size_t i = 0; i < s->npulling; i++)
        if (s->pulling[i] == d) {
            s->pulling[i] = s->pulling[--s->npulling];
            break;
        }
    if (c && !c->closing && (d->hour_gap || d->day_gap))
        queue_pull(s, d);
}

/* Connection c is closing: requests in flight on it will get no answer. Their ranges are
 * asked again once the device is back (its next hourly upload queues them). */
static void pulls_interrupt(hj212_server *s, conn *c)
{
    if (!c->pulling)
        return;
    for (size_t i = s->npulling; i > 0; i--) {
        mn_state *d = s->pulling[i - 1];
        if (device_conn(s, d) != c)
            continue;
        if (d->pull_cn == 2031)
            range_add(&d->day_gap, &d->day_begin, &d->day_end, d->pull_begin, d->pull_end,
                      (int64_t)PULL_MAX_DAYS * 86400);
        else
            range_add(&d->hour_gap, &d->gap_begin, &d->gap_end, d->pull_begin, d->pull_end,
                      (int64_t)PULL_MAX_HOURS * 3600);
        c->closing = 1; /* so pull_finish does not queue it on this connection */
        pull_finish(s, d, &s->st.pulls_interrupted);
        c->closing = 0;
    }
}

static bool pull_track(hj212_server *s, mn_state *d)
{
    if (s->npulling == s->cap_pulling) {
        size_t cap = s->cap_pulling ? s->cap_pulling * 2 : 64;
        mn_state **p = realloc(s->pulling, cap * sizeof *p);
        if (!p)
            return false;
        s->pulling = p;
        s->cap_pulling = cap;
    }
    s->pulling[s->npulling++] = d;
    return true;
}

/* Sends device d's next request on c: its missing hours first, then its missing days. */
static bool pull_send(hj212_server *s, conn *c, mn_state *d)
{
    char qn[18], out[512];
    size_t len;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    int64_t ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (ms <= d->pull_qn_ms)
        ms = d->pull_qn_ms + 1;
    hj212_qn_format(ms, s->opts.tz_offset_s, qn);
    bool hours = d->hour_gap;
    int64_t begin = hours ? d->gap_begin : d->day_begin, end = hours ? d->gap_end : d->day_end;
    hj212_head h = {.qn = qn, .st = d->st, .cn = hours ? 2061 : 2031, .pw = d->pw,
                    .mn = d->mn, .flag = 4 | HJ212_FLAG_A};
    if (hj212_format_history_request(&h, begin, end, s->opts.tz_offset_s, out, sizeof out,
                                     &len) != 0 ||
        !pull_track(s, d))
        return false;
    if (hours)
        d->hour_gap = 0;
    else
        d->day_gap = 0;
    d->pull_cn = (uint16_t)h.cn;
    d->pull_begin = begin;
    d->pull_end = end;
    d->pull_qn_ms = ms;
    d->pull_active = 1;
    d->pull_sent_ms = now_ms(s);
    c->pulling = 1;
    conn_send(c, out, len);
    s->st.pulls_sent++;
    return true;
}

/* Sends the next queued history requests while tokens last (the rate limit), one in flight
 * per connection: a device whose connection is busy with another device's request waits in
 * the queue without holding up the others. Called when a request is queued (so a device back
 * from an outage is asked at once, before its newer hours pile up) and by the timer, which
 * refills the tokens. */
static void pulls_run(hj212_server *s)
{
    for (size_t n = s->pullq_len; n > 0 && s->pull_tokens > 0 && s->pullq_len > 0; n--) {
        mn_state *d = s->pullq[s->pullq_head];
        s->pullq_head = (s->pullq_head + 1) % s->pullq_cap;
        s->pullq_len--;
        d->pull_queued = 0;
        conn *c = device_conn(s, d);
        if (!c || c->closing || d->pull_active || !(d->hour_gap || d->day_gap))
            continue; /* gone (asked again when back), busy, or nothing left */
        if (c->pulling) {
            queue_pull(s, d); /* its connection carries another device's request: later */
            continue;
        }
        if (pull_send(s, c, d))
            s->pull_tokens--;
    }
}

/* 9011/9012 from a device: the answers to our history request. */
static void handle_answer(hj212_server *s, mn_state *d, const hj212_packet *p)
{
    if (!d->pull_active || p->qn_ms != d->pull_qn_ms)
        return;
    if (p->cn == 9011 && p->qn_rtn != 1)
        pull_finish(s, d, &s->st.pulls_failed);
    else if (p->cn == 9012)
        pull_finish(s, d, p->exe_rtn == 1 || p->exe_rtn == 100 ? &s->st.pulls_done
                                                                 : &s->st.pulls_failed);
    if (s->pullq_len)
        pulls_run(s); /* the next range of this device, or another device's turn */
}

/* ---- Packets ----------------------------------------------------------------------------- */

static void refuse(conn *c, const hj212_packet *p, int qn_rtn, uint64_t *counter)
{
    char out[256];
    size_t len;
    (*counter)++;
    if (p->flag >= 0 && (p->flag & HJ212_FLAG_A) &&
        hj212_format_qn_rtn(p, qn_rtn, out, sizeof out, &len) == 0)
        conn_send(c, out, len);
    if (++c->auth_failures >= MAX_AUTH_FAILURES)
        conn_close(c, &c->srv->st.closed_auth);
}

/* The device's state, after checking its credentials; NULL if refused. */
static mn_state *authenticate(conn *c, const hj212_packet *p)
{
    hj212_server *s = c->srv;
    char mn[64], pw[17];
    if (!p->mn.p || p->mn.len == 0 || p->mn.len >= sizeof mn || p->pw.len >= sizeof pw) {
        refuse(c, p, 4, &s->st.auth_unknown_mn);
        return NULL;
    }
    memcpy(mn, p->mn.p, p->mn.len);
    mn[p->mn.len] = '\0';
    size_t pwlen = p->pw.p ? p->pw.len : 0;
    if (pwlen)
        memcpy(pw, p->pw.p, pwlen);
    pw[pwlen] = '\0';
    /* A direct connection carries one device: skip the table for it. */
    mn_state *d = c->device && strcmp(c->device->mn, mn) == 0 ? c->device
                                                                : mn_table_find(s->devices, mn);
    if (!d || strcmp(d->pw, pw) != 0) {
        int verdict = s->opts.auth ? s->opts.auth(s->opts.auth_arg, mn, pw)
                                   : HJ212_AUTH_UNKNOWN_MN;
        if (verdict == HJ212_AUTH_BAD_PW ||
            (verdict == HJ212_AUTH_UNKNOWN_MN && !s->opts.open)) {
            refuse(c, p, verdict == HJ212_AUTH_BAD_PW ? 3 : 4,
                   verdict == HJ212_AUTH_BAD_PW ? &s->st.auth_bad_pw
                                                : &s->st.auth_unknown_mn);
            return NULL;
        }
        if (!d && !(d = mn_table_insert(s->devices, mn)))
            return NULL;
        memcpy(d->pw, pw, sizeof pw);
    }
    d->st = p->st >= 0 ? p->st : 32;
    if (device_conn(s, d) != c) {
        d->conn_slot = c->slot;
        d->conn_gen = c->gen;
        if (!c->device) {
            c->device = d;
        } else if (!c->forwarding) {
            c->forwarding = 1; /* a platform forwarding many devices */
            s->st.conns_forwarding++;
        }
    }
    c->auth_failures = 0;
    return d;
}

static void on_frame(void *arg, const hj212_frame *fr)
{
    conn *c = arg;
    hj212_server *s = c->srv;
    if (c->closing)
        return;
    s->st.packets++;
    if (fr->crc_kind != HJ212_CRC_OK) {
        if (s->opts.crc_policy == HJ212_CRC_REJECT) {
            s->st.crc_bad++;
            return;
        }
        if (s->opts.crc_policy == HJ212_CRC_FLAG)
            s->st.crc_flagged++;
    }
    hj212_packet *p = &s->pkt;
    hj212_parse_options po = {.tz_offset_s = s->opts.tz_offset_s};
    if (hj212_parse(fr->seg, fr->seg_len, &po, p, NULL) != 0) {
        s->st.parse_errors++;
        return;
    }
    c->junk_mark = s->st.junk_bytes + hj212_framer_get_stats(c->framer)->junk_bytes;
    mn_state *d = authenticate(c, p);
    if (!d)
        return;
    int iv = interval_of_cn(p->cn);
    if (iv >= 0) {
        handle_upload(c, d, p, iv);
        check_clock(c, p, d, false);
        return;
    }
    switch (p->cn) {
    case 2021: case 2041: case 2081: case 3020:
        handle_event(c, p, fr->seg, fr->seg_len);
        return;
    case 9011: case 9012:
        handle_answer(s, d, p);
        return;
    case 1013: { /* the device asks for the time */
        char out[256];
        size_t len;
        if (hj212_format_notify_ack(p, out, sizeof out, &len) == 0)
            conn_queue(c, out, len);
        check_clock(c, p, d, true);
        return;
    }
    case 9013: case 9014:
        return; /* answers to what we sent */
    default:
        s->st.unsupported_cn++;
        return;
    }
}

/* ---- Reading --------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h;
    buf->base = c->srv->readbuf;
    buf->len = sizeof c->srv->readbuf;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = (conn *)stream;
    hj212_server *s = c->srv;
    if (nread < 0) {
        conn_close(c, &s->st.closed_peer);
        return;
    }
    if (nread == 0)
        return;
    list_touch(s, c);
    if (!c->framer && !(c->framer = framer_take(s, c))) {
        conn_close(c, &s->st.closed_slow);
        return;
    }
    hj212_framer_push(c->framer, buf->base, (size_t)nread, on_frame, c);
    if (c->closing)
        return;
    uint64_t junk = s->st.junk_bytes + hj212_framer_get_stats(c->framer)->junk_bytes;
    if (junk - c->junk_mark > MAX_JUNK) {
        conn_close(c, &s->st.closed_garbage);
        return;
    }
    framer_give(s, c, false);
}

static void on_connection(uv_stream_t *server, int status)
{
    hj212_server *s = server->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (s->st.conns_open >= s->opts.max_connections) {
        s->st.conns_refused++;
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (!slot_take(s, c)) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    s->st.conns_accepted++;
    s->st.conns_open++;
    uv_tcp_nodelay(&c->tcp, 1);
    list_touch(s, c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- Timer: idle sweep, held packets, pulls --------------------------------------------- */

/* Devices that end a packet with no line end wait for an answer the framer cannot give
 * until it knows nothing follows: once such a connection has been quiet for a moment, take
 * the packet it holds. */
static void flush_held(hj212_server *s, uint64_t now)
{
    conn *c = s->held;
    while (c) {
        conn *next = c->hnext;
        hj212_frame fr;
        if (now - c->last_active_ms >= HELD_QUIET_MS) {
            while (!c->closing && c->framer && hj212_framer_flush(c->framer, &fr) == 1)
                on_frame(c, &fr);
            if (!c->closing)
                framer_give(s, c, false);
        }
        c = next;
    }
}

static void on_sweep(uv_timer_t *t)
{
    hj212_server *s = t->data;
    uint64_t now = now_ms(s), idle = (uint64_t)s->opts.idle_timeout_s * 1000;
    while (s->active_head && now - s->active_head->last_active_ms > idle)
        conn_close(s->active_head, &s->st.closed_idle);
    flush_held(s, now);
    /* Pull timeouts: devices that never answered. */
    for (size_t i = s->npulling; i > 0; i--)
        if (now - s->pulling[i - 1]->pull_sent_ms > PULL_TIMEOUT_MS)
            pull_finish(s, s->pulling[i - 1], &s->st.pulls_timed_out);
    /* A token bucket: max_pulls_per_s a second on average (a tenth every 100 ms), and as
     * many at once after a quiet second, for a burst of devices back from one outage. */
    uint32_t refill = s->opts.max_pulls_per_s / 10 ? s->opts.max_pulls_per_s / 10 : 1;
    s->pull_tokens = s->pull_tokens + refill < s->opts.max_pulls_per_s
                         ? s->pull_tokens + refill
                         : s->opts.max_pulls_per_s;
    pulls_run(s);
}

/* ---- Life cycle ------------------------------------------------------------------------ */

static int parse_addr(const char *text, size_t len, struct sockaddr_storage *out)
{
    char host[128];
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == ':') {
            colon = text + i - 1;
            break;
        }
    if (!colon || (size_t)(colon - text) >= sizeof host || colon == text)
        return -EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != text + len || end == colon + 1 || port < 0 || port > 65535)
        return -EINVAL;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out) ? -EINVAL : 0;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) ? -EINVAL : 0;
}

int hj212_server_start(uv_loop_t *loop, engine *e, const hj212_server_options *opts,
                       hj212_server **out)
{
    hj212_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->eng = e;
    s->opts = *opts;
    if (!s->opts.max_connections)
        s->opts.max_connections = 200000;
    if (!s->opts.idle_timeout_s)
        s->opts.idle_timeout_s = 900;
    if (!s->opts.max_pulls_per_s)
        s->opts.max_pulls_per_s = 50;
    s->pull_tokens = s->opts.max_pulls_per_s;
    int rc = mn_table_create(&s->devices);
    if (rc != 0) {
        free(s);
        return rc;
    }
    const char *p = opts->listen ? opts->listen : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        struct sockaddr_storage addr;
        if (s->nlisteners == MAX_LISTENERS || (rc = parse_addr(p, len, &addr)) != 0) {
            rc = -EINVAL;
            goto fail;
        }
        uv_tcp_t *l = &s->listeners[s->nlisteners];
        uv_tcp_init(loop, l);
        l->data = s;
        s->nlisteners++;
        if ((rc = uv_tcp_bind(l, (struct sockaddr *)&addr, 0)) != 0 ||
            (rc = uv_listen((uv_stream_t *)l, LISTEN_BACKLOG, on_connection)) != 0)
            goto fail;
        p += len;
        if (*p == ',')
            p++;
    }
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, on_sweep, 100, 100);
    uv_unref((uv_handle_t *)&s->sweep);
    uv_check_init(loop, &s->ack_check);
    s->ack_check.data = s;
    uv_check_start(&s->ack_check, on_ack_check);
    uv_unref((uv_handle_t *)&s->ack_check);
    *out = s;
    return 0;
fail:
    s->closing = true;
    /* The listeners already initialised must be closed by the loop before s is freed. */
    uv_timer_init(loop, &s->sweep);
    uv_check_init(loop, &s->ack_check);
    hj212_server_close(s);
    return rc;
}

int hj212_server_port(const hj212_server *s, int i)
{
    struct sockaddr_storage addr;
    int len = sizeof addr;
    if (i < 0 || i >= s->nlisteners ||
        uv_tcp_getsockname(&s->listeners[i], (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

void hj212_server_get_stats(const hj212_server *s, hj212_server_stats *out)
{
    *out = s->st;
    out->pulls_queued = s->pullq_len;
    /* Counters of framers still held by connections are added when they are returned. */
}

static void on_server_handle_closed(uv_handle_t *h)
{
    hj212_server *s = h->data;
    if (--s->closing_handles > 0)
        return;
    for (size_t i = 0; i < s->npool; i++)
        hj212_framer_destroy(s->pool[i]);
    while (s->ack_free) {
        pending_ack *a = s->ack_free;
        s->ack_free = a->next;
        free(a);
    }
    free(s->pool);
    free(s->pullq);
    free(s->pulling);
    free(s->slots);
    free(s->free_slots);
    mn_table_destroy(s->devices);
    free(s);
}

void hj212_server_close(hj212_server *s)
{
    if (!s)
        return;
    write_all_ready(s); /* answers already committed go out */
    s->closing = true;
    while (s->active_head)
        conn_close(s->active_head, NULL);
    s->closing_handles = s->nlisteners + 2;
    for (int i = 0; i < s->nlisteners; i++)
        uv_close((uv_handle_t *)&s->listeners[i], on_server_handle_closed);
    s->sweep.data = s;
    uv_close((uv_handle_t *)&s->sweep, on_server_handle_closed);
    s->ack_check.data = s;
    uv_close((uv_handle_t *)&s->ack_check, on_server_handle_closed);
}
