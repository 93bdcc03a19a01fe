/* mb_link.c: one endpoint's thread. libmodbus blocks and a context must never be shared, so
 * each TCP gateway or serial line gets a thread that owns its context for life and reads its
 * devices one after another, spread evenly over the interval with jitter: device i of n is
 * due at i * interval / n plus a random part of its slot, every interval after that. What a
 * dead device or gateway costs stays on its own thread: a device that keeps failing is
 * marked down after fail_threshold reads and then retried with exponential backoff (its
 * circuit open), a link whose requests all time out is closed and reconnected with backoff,
 * and a request the device refuses as illegal (function, address, value) is a configuration
 * error: reported once and never sent again.
 *
 * Sockets: libmodbus 3.1.6 waits with select(), which writes past its fd_set for a socket
 * >= 1024. Each link therefore owns one fd number below 1024 reserved at start (a /dev/null
 * placeholder): a new connection is made here (libmodbus's own connect also uses select),
 * then moved onto the reserved number with dup3, and closing puts the placeholder back. The
 * socket libmodbus sees is always below 1024, whatever else the process has open. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus/modbus.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mb_int.h"
#include "schedule.h"

struct mb_devrt {
    int64_t retry_ms;         /* down: no read before this */
    int fails;                /* failed reads in a row */
    int state;
    uint32_t nbad;            /* blocks refused as illegal: never read again */
    uint8_t *bad;             /* per block */
};

#define ADD(field, n) __atomic_fetch_add(&L->c.field, (n), __ATOMIC_RELAXED)

int64_t mb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t next_rand(mb_link *L)
{
    uint64_t z = (L->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static int64_t rand_below(mb_link *L, int64_t n)
{
    return n > 0 ? (int64_t)(next_rand(L) % (uint64_t)n) : 0;
}

/* base * 2^k capped at max, then +-25% jitter so devices and links that failed together do
 * not come back together. */
static int64_t backoff_ms(mb_link *L, int64_t base, int k, int64_t max)
{
    int64_t d = base;
    for (int i = 0; i < k && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    return d - d / 4 + rand_below(L, d / 2 + 1);
}

/* True once the poller closes or a reload retires this link. The flags are written under
 * p->lock; this read is atomic so a thread between reads needs no lock to see them. */
static bool should_stop(mb_link *L)
{
    return __atomic_load_n(&L->p->stopping, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&L->quit, __ATOMIC_ACQUIRE);
}

/* Sleeps until the monotonic time t or until the link must stop; false when stopping. */
static bool sleep_until(mb_link *L, int64_t t)
{
    struct mb_poller *p = L->p;
    struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000};
    pthread_mutex_lock(&p->lock);
    while (!should_stop(L) && mb_mono_ms() < t)
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    bool go = !should_stop(L);
    pthread_mutex_unlock(&p->lock);
    return go;
}

static void disconnect(mb_link *L)
{
    if (!L->connected)
        return;
    if (L->ep->kind == MB_TCP)
        shutdown(L->slot_fd, SHUT_RDWR);
    /* Put the placeholder back on the reserved number (closing the socket or tty). */
    dup3(L->p->devnull_fd, L->slot_fd, O_CLOEXEC);
    modbus_set_socket(L->ctx, -1);
    L->connected = false;
    ADD(disconnects, 1);
}

/* Moves fd onto the reserved number and hands it to libmodbus. */
static int adopt(mb_link *L, int fd)
{
    if (fd != L->slot_fd) {
        if (dup3(fd, L->slot_fd, O_CLOEXEC) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        close(fd);
    }
    modbus_set_socket(L->ctx, L->slot_fd);
    L->connected = true;
    return 0;
}

static int connect_tcp(mb_link *L, char *why, size_t wlen)
{
    const mb_endpoint *ep = L->ep;
    char port[16];
    snprintf(port, sizeof port, "%d", ep->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(ep->host, port, &hints, &res);
    if (g != 0) {
        snprintf(why, wlen, "resolve %.80s: %s", ep->host, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int err = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int n = poll(&pfd, 1, ep->connect_timeout_ms);
                socklen_t len = sizeof err;
                if (n == 0)
                    err = ETIMEDOUT;
                else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                    err = errno;
            }
        }
        if (err != 0) {
            close(fd);
            rc = -err;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        rc = adopt(L, fd);
        break;
    }
    freeaddrinfo(res);
    if (rc != 0)
        snprintf(why, wlen, "connect %.80s:%d: %s", ep->host, ep->port, strerror(-rc));
    return rc;
}

static int connect_rtu(mb_link *L, char *why, size_t wlen)
{
    /* Opening a serial line does not select(); the fd is moved low right after. */
    if (modbus_connect(L->ctx) != 0) {
        int e = errno;
        snprintf(why, wlen, "open %.80s: %s", L->ep->serial, modbus_strerror(e));
        return -(e ? e : EIO);
    }
    int rc = adopt(L, modbus_get_socket(L->ctx));
    if (rc != 0)
        snprintf(why, wlen, "open %.80s: %s", L->ep->serial, strerror(-rc));
    return rc;
}

/* Connects unless connected; while the link's backoff runs, fails at once with the last
 * error (the devices due meanwhile cost nothing). */
static int ensure_link(mb_link *L, int64_t now)
{
    if (L->connected)
        return 0;
    if (now < L->link_retry_ms)
        return -EAGAIN;
    char why[128];
    int rc = L->ep->kind == MB_TCP ? connect_tcp(L, why, sizeof why)
                                   : connect_rtu(L, why, sizeof why);
    if (rc == 0) {
        ADD(connects, 1);
        L->link_timeouts = 0;
        return 0;
    }
    ADD(connect_failures, 1);
    snprintf(L->link_error, sizeof L->link_error, "%s", why);
    L->link_retry_ms = mb_mono_ms() + backoff_ms(L, 1000, L->link_fails++, L->ep->backoff_max_ms);
    return rc;
}

/* The link gave up: closed now, reconnected after a backoff. */
static void link_failed(mb_link *L, const char *why)
{
    disconnect(L);
    snprintf(L->link_error, sizeof L->link_error, "%s", why);
    L->link_retry_ms = mb_mono_ms() + backoff_ms(L, 1000, L->link_fails++, L->ep->backoff_max_ms);
}

enum { RES_OK = 0, RES_CONFIG, RES_DEVICE, RES_LINK };

/* What an errno after a failed request means. */
static int classify(int e)
{
    if (e == EMBXILFUN || e == EMBXILADD || e == EMBXILVAL)
        return RES_CONFIG;
    if (e == ETIMEDOUT || (e > MODBUS_ENOBASE && e <= EMBMDATA + 1))
        return RES_DEVICE; /* exceptions, gateway target errors, bad replies, timeouts */
    return RES_LINK;       /* ECONNRESET, EPIPE, EBADF, ...: the connection is gone */
}

/* Reads one block into words; RES_* with why filled on failure. */
static int read_block(mb_link *L, const mb_block *b, uint16_t *words, char *why, size_t wlen)
{
    ADD(requests, 1);
    int n = b->table == MB_INPUT ? modbus_read_input_registers(L->ctx, b->start, b->count, words)
                                 : modbus_read_registers(L->ctx, b->start, b->count, words);
    if (n == b->count) {
        L->link_timeouts = 0;
        L->link_fails = 0;
        return RES_OK;
    }
    int e = n < 0 ? errno : EMBMDATA;
    ADD(request_errors, 1);
    int kind = classify(e);
    snprintf(why, wlen, "%s %s %u-%u (function %d): %s", n < 0 ? "read" : "short read",
             mb_table_name(b->table), b->start, b->start + b->count - 1,
             b->table == MB_INPUT ? 4 : 3, modbus_strerror(e));
    if (e == ETIMEDOUT) {
        ADD(timeouts, 1);
        L->link_timeouts++;
        modbus_flush(L->ctx); /* a late answer must not be read as the next one */
    } else if (e > MODBUS_ENOBASE && e <= EMBXGTAR) {
        ADD(exceptions, 1);
        L->link_timeouts = 0;
    } else if (kind == RES_DEVICE) {
        modbus_flush(L->ctx);
    }
    return kind;
}

static mb_msg *new_msg(const mb_device *d)
{
    mb_msg *m = calloc(1, sizeof *m + d->tpl->nregs * sizeof(engine_value));
    return m;
}

/* Reads every block of device i not refused before, decodes the values, decides the
 * device's state, and posts the result. */
static void poll_device(mb_link *L, uint32_t i, mb_devrt *d, int64_t now)
{
    const mb_device *dev = &L->ep->devices[i];
    const mb_template *t = dev->tpl;
    mb_msg *m = new_msg(dev);
    if (!m)
        return;
    m->link = L;
    m->dev = i;
    m->ts = time(NULL);
    ADD(polls, 1);
    int worst = RES_OK;
    int rc = ensure_link(L, now);
    if (rc != 0) {
        snprintf(m->error, sizeof m->error, "link down: %s", L->link_error);
        worst = RES_LINK;
    } else {
        modbus_set_slave(L->ctx, dev->unit_id);
        for (size_t b = 0; b < t->nblocks; b++) {
            if (d->bad[b])
                continue;
            const mb_block *bl = &t->blocks[b];
            uint16_t words[MB_MAX_READ];
            char why[160];
            int r = read_block(L, bl, words, why, sizeof why);
            if (r == RES_CONFIG) {
                d->bad[b] = 1;
                d->nbad++;
                ADD(config_errors, 1);
                snprintf(m->error, sizeof m->error, "%s", why);
                worst = worst > RES_CONFIG ? worst : RES_CONFIG;
                continue;
            }
            if (r != RES_OK) {
                snprintf(m->error, sizeof m->error, "%s", why);
                worst = r;
                if (r == RES_LINK)
                    link_failed(L, why);
                else if (L->link_timeouts >= 2 * L->ep->fail_threshold)
                    link_failed(L, "no answer from any device");
                break; /* the device (or link) is not answering: its other blocks would not */
            }
            for (unsigned k = bl->first; k < (unsigned)bl->first + bl->n; k++) {
                const mb_register *reg = &t->regs[k];
                double v;
                if (mb_register_value(reg, words, bl->start, bl->count, &v) != 0) {
                    ADD(values_bad, 1);
                    continue;
                }
                engine_value *ev = &m->values[m->nvalues++];
                ev->code = reg->code;
                ev->pt.v[STORAGE_COL_AVG] = v;
                ev->pt.mask = 1u << STORAGE_COL_AVG;
                ev->pt.flag = 'N';
                ADD(values, 1);
            }
        }
    }
    if (d->nbad > 0) {
        d->state = MB_STATE_MISCONFIGURED; /* stays: the rest of the device is still read */
        d->fails = worst == RES_DEVICE || worst == RES_LINK ? d->fails + 1 : 0;
    } else if (worst != RES_OK) {
        if (++d->fails >= L->ep->fail_threshold) {
            d->state = MB_STATE_DOWN;
            int64_t iv = L->ep->interval_ms;
            d->retry_ms = now + backoff_ms(L, iv, d->fails - L->ep->fail_threshold,
                                           L->ep->backoff_max_ms > iv ? L->ep->backoff_max_ms : iv);
        }
    } else {
        d->fails = 0;
        d->state = MB_STATE_UP;
    }
    m->ok = worst == RES_OK;
    if (m->ok)
        ADD(polls_ok, 1);
    m->state = d->state;
    mb_poller_post(L->p, m);
}

static void record_lateness(mb_link *L, int64_t late_us)
{
    int64_t k = late_us < 0 ? 0 : late_us / 100; /* 0.1 ms */
    if (k >= MB_HIST_FINE)
        k = MB_HIST_FINE + (late_us - 100000) / 10000; /* 10 ms steps */
    if (k >= MB_HIST_N)
        k = MB_HIST_N - 1;
    ADD(hist[k], 1);
}

static modbus_t *new_context(const mb_endpoint *ep)
{
    modbus_t *ctx;
    if (ep->kind == MB_TCP) {
        char port[16];
        snprintf(port, sizeof port, "%d", ep->port);
        ctx = modbus_new_tcp_pi(ep->host, port);
    } else {
        ctx = modbus_new_rtu(ep->serial, ep->baud, ep->parity, ep->data_bits, ep->stop_bits);
    }
    if (!ctx)
        return NULL;
    /* Recovery off: libmodbus's link recovery reconnects forever inside the call. */
    modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
    modbus_set_response_timeout(ctx, (uint32_t)ep->response_timeout_ms / 1000,
                                (uint32_t)(ep->response_timeout_ms % 1000) * 1000);
    modbus_set_byte_timeout(ctx, (uint32_t)ep->byte_timeout_ms / 1000,
                            (uint32_t)(ep->byte_timeout_ms % 1000) * 1000);
    return ctx;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The scheduler's fire callback: reads device id now (its slot was at slot_ms, wall clock),
 * unless its circuit is open or it refused everything; then schedules its next slot. */
static void on_fire(void *arg, uint32_t id, int64_t slot_ms)
{
    mb_link *L = arg;
    const mb_endpoint *ep = L->ep;
    mb_devrt *d = &L->devs[id];
    int64_t late_us = real_us() - slot_ms * 1000, now = mb_mono_ms();
    if (late_us > (int64_t)ep->interval_ms * 1000)
        ADD(late_cycles, 1); /* a slot or more was missed; the scheduler skips them */
    if (should_stop(L)) {
        /* stopping: the devices still due this round are not read (each could time out) */
    } else if (d->nbad == ep->devices[id].tpl->nblocks ||
               (d->state == MB_STATE_DOWN && now < d->retry_ms)) {
        ADD(skipped, 1); /* refused everything, or its circuit is open */
    } else {
        if (d->state == MB_STATE_UP) /* what a healthy device waited */
            record_lateness(L, late_us);
        poll_device(L, id, d, now);
    }
    coll_sched_done(L->sched, id, 0);
    if (ep->close_after_cycle && id == ep->ndevices - 1)
        disconnect(L);
}

void *mb_link_main(void *arg)
{
    mb_link *L = arg;
    while (true) {
        int64_t next = coll_sched_run(L->sched, real_ms());
        int64_t wait = next == INT64_MAX ? 1000 : next - real_ms();
        if (!sleep_until(L, mb_mono_ms() + (wait > 0 ? wait : 0)))
            break;
    }
    disconnect(L); /* the placeholder is back on the reserved number: it can be reused */
    mb_msg *m = L->exit_msg; /* the last message: the loop joins and frees this link */
    L->exit_msg = NULL;
    m->link = L;
    m->exited = true;
    mb_poller_post(L->p, m);
    return NULL;
}

int mb_link_init(mb_link *L)
{
    L->devs = calloc(L->ep->ndevices, sizeof *L->devs);
    L->exit_msg = calloc(1, sizeof *L->exit_msg);
    if (!L->devs || !L->exit_msg)
        return -ENOMEM;
    for (size_t i = 0; i < L->ep->ndevices; i++) {
        L->devs[i].bad = calloc(L->ep->devices[i].tpl->nblocks, 1);
        if (!L->devs[i].bad)
            return -ENOMEM;
    }
    L->ctx = new_context(L->ep);
    if (!L->ctx)
        return -ENOMEM;
    /* The shared scheduler, owned by this link's thread alone (no loop: the thread runs it).
     * One read at a time: the link is one connection. */
    coll_sched_options so = {.fire = on_fire, .arg = L, .max_inflight = 1, .jitter = 0.5,
                             .seed = next_rand(L)};
    int rc = coll_sched_create(&so, &L->sched);
    for (size_t i = 0; rc == 0 && i < L->ep->ndevices; i++) {
        coll_sched_entry e = {.interval_ms = L->ep->interval_ms};
        uint32_t id;
        rc = coll_sched_add(L->sched, &e, &id);
    }
    return rc == 0 ? coll_sched_start(L->sched) : rc;
}

void mb_link_free(mb_link *L)
{
    if (L->devs)
        for (size_t i = 0; i < L->ep->ndevices; i++)
            free(L->devs[i].bad);
    free(L->devs);
    if (L->ctx)
        modbus_free(L->ctx);
    coll_sched_destroy(L->sched);
    free(L->exit_msg); /* still here when the thread never ran */
    L->exit_msg = NULL;
    L->sched = NULL;
    L->ctx = NULL;
    L->devs = NULL;
}
