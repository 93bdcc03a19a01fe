/* detector.c: exceedance episodes (超标) of one series, judged period by period, with late
 * and corrected data.
 *
 * A regulator must hear about an exceedance episode exactly once, and then about its growth,
 * its end, and any correction, always under the same id. Data does not cooperate: hours
 * arrive late (a DAQ backfills after an outage), twice, or corrected (a value re-flagged as
 * calibration). So the detector keeps the periods it has seen within a horizon, recomputes
 * the episodes from them after every feed (cheap: a few hundred periods), and compares the
 * new episodes with the old ones to say what happened: opened, extended, changed, closed,
 * reopened, merged into another, retracted. Matching old to new by overlap keeps ids stable
 * across all of these; engine_episode_id documents how an id is chosen.
 *
 * Missing periods that may still come (late_wait): a device back from an outage sends its
 * current hour at once, and the hours it missed only when the platform asks for them. Until
 * they come, an exceedance on both sides of the hole is one episode (not a second alert that
 * a merge retracts), and an episode with a hole inside it or right before its start is not
 * reported closed (its start, end and peak may still change), so it resolves once, complete.
 *
 * Memory per detector is a few hundred bytes plus 32 bytes per period in the horizon.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "engine.h"

enum { REC_EXCEED = 1, REC_BELOW, REC_INVALID };

typedef struct rec {
    int64_t ts;
    double value, limit;
    uint8_t state;
} rec;

struct engine_detector {
    char series[64], pollutant[64];
    int kind;
    int64_t step;
    engine_detector_opts o;
    rec *recs;                 /* sorted by ts, unique */
    size_t nrec, caprec;
    engine_episode *eps, *next; /* current episodes; scratch for the recomputed ones */
    uint8_t *claimed;          /* per current episode, during a comparison */
    size_t nep, capep;
    bool any;
    int64_t newest, cutoff;    /* records before cutoff are gone */
    uint64_t too_late;
};

void engine_detector_opts_init(engine_detector_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_bridge = 0;
    o->t_valid = true;
    o->none_is_normal = true;
    o->horizon = 744;
}

uint64_t engine_episode_id(const char *series, const char *pollutant, int kind, int64_t anchor,
                           uint32_t gen)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const char *parts[2] = {series, pollutant};
    for (int k = 0; k < 2; k++) {
        for (const char *s = parts[k]; *s; s++)
            h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull; /* separator: no byte of text is 0xff in UTF-8 */
    }
    uint8_t b[13];
    b[0] = (uint8_t)kind;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)((uint64_t)anchor >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[9 + i] = (uint8_t)(gen >> (8 * i));
    for (int i = 0; i < 13; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

void engine_episode_id_format(uint64_t id, char *buf)
{
    snprintf(buf, 17, "%016llx", (unsigned long long)id);
}

int engine_detector_create(const char *series, const char *pollutant, int kind,
                           const engine_detector_opts *o, engine_detector **out)
{
    if (!series || !pollutant || strlen(series) >= 64 || strlen(pollutant) >= 64 ||
        (kind != ENGINE_PERIOD_HOUR && kind != ENGINE_PERIOD_DAY))
        return -EINVAL;
    engine_detector *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    strcpy(d->series, series);
    strcpy(d->pollutant, pollutant);
    d->kind = kind;
    d->step = kind == ENGINE_PERIOD_HOUR ? 3600 : 86400;
    if (o)
        d->o = *o;
    else
        engine_detector_opts_init(&d->o);
    if (d->o.horizon == 0)
        d->o.horizon = 1;
    *out = d;
    return 0;
}

void engine_detector_destroy(engine_detector *d)
{
    if (!d)
        return;
    free(d->recs);
    free(d->eps);
    free(d->next);
    free(d->claimed);
    free(d);
}

size_t engine_detector_episodes(const engine_detector *d, const engine_episode **out)
{
    *out = d->eps;
    return d->nep;
}

uint64_t engine_detector_too_late(const engine_detector *d)
{
    return d->too_late;
}

/* Room for one more record, and for as many episodes as there can be after it: no more
 * than the exceedance records, counting the new one. A national fleet has ~260,000 hourly
 * detectors, most of which never see an exceedance, so both grow from small. */
static int reserve(engine_detector *d)
{
    size_t need = d->nrec + 1;
    if (need > d->caprec) {
        size_t cap = d->caprec ? d->caprec * 2 : 4;
        rec *r = realloc(d->recs, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        d->recs = r;
        d->caprec = cap;
    }
    size_t need_ep = 1;
    for (size_t i = 0; i < d->nrec; i++)
        need_ep += d->recs[i].state == REC_EXCEED;
    if (need_ep > d->capep || !d->eps) {
        size_t cap = d->capep ? d->capep : 2;
        while (cap < need_ep)
            cap *= 2;
        engine_episode *a = realloc(d->eps, cap * sizeof *a);
        if (a)
            d->eps = a;
        engine_episode *b = realloc(d->next, cap * sizeof *b);
        if (b)
            d->next = b;
        uint8_t *c = realloc(d->claimed, cap);
        if (c)
            d->claimed = c;
        if (!a || !b || !c)
            return -ENOMEM;
        d->capep = cap;
    }
    return 0;
}

/* Index of the first record with ts >= t. */
static size_t lower_bound(const engine_detector *d, int64_t t)
{
    size_t lo = 0, hi = d->nrec;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->recs[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint8_t judge(const engine_detector *d, const engine_period *p)
{
    if (!p->valid || !engine_flag_valid(p->flag, d->o.t_valid, d->o.none_is_normal) ||
        !isfinite(p->value))
        return REC_INVALID;
    if (isfinite(p->limit) && p->limit > 0 && p->value > p->limit)
        return REC_EXCEED;
    return REC_BELOW;
}

/* Whether the periods after end close the episode: a valid period at or under the limit
 * within the bridge window, or every period of the window seen (none exceeding, or it would
 * belong to the episode), or, with late_wait, the window given up for missing (newer
 * periods have come and the wait for the window's last period is over). */
static bool closed_after(const engine_detector *d, int64_t end)
{
    int64_t window = (int64_t)(d->o.max_bridge + 1) * d->step;
    uint32_t seen = 0;
    for (size_t i = lower_bound(d, end + 1); i < d->nrec && d->recs[i].ts <= end + window; i++) {
        if (d->recs[i].state == REC_BELOW)
            return true;
        seen++;
    }
    if (seen >= d->o.max_bridge + 1)
        return true;
    return d->o.late_wait > 0 &&
           d->newest >= end + window + (int64_t)d->o.late_wait * d->step;
}

/* Whether record i follows a hole (periods with no record after the record before it) that
 * late data may still fill: its last missing period is less than late_wait periods behind
 * the newest period seen. */
static bool hole_before(const engine_detector *d, size_t i)
{
    if (d->o.late_wait == 0 || i == 0)
        return false;
    int64_t last_missing = d->recs[i].ts - d->step;
    return d->recs[i - 1].ts < last_missing &&
           d->newest < last_missing + (int64_t)d->o.late_wait * d->step;
}

/* Recomputes the episodes from the records into d->next; returns their number. */
static size_t segment(const engine_detector *d)
{
    int64_t window = (int64_t)(d->o.max_bridge + 1) * d->step;
    size_t n = 0;
    bool broken = true; /* a valid period under the limit since the last exceedance */
    bool unsure = false; /* the current episode has a hole inside or right before it */
    for (size_t i = 0; i < d->nrec; i++) {
        const rec *r = &d->recs[i];
        if (r->state == REC_BELOW)
            broken = true;
        if (r->state != REC_EXCEED)
            continue;
        engine_episode *e = n ? &d->next[n - 1] : NULL;
        bool hole = hole_before(d, i);
        /* Across nothing but a hole, the episode goes on (until the hole is given up). */
        bool bridged = e && !broken && hole && d->recs[i - 1].ts == e->end;
        if (!e || broken || (r->ts - e->end > window && !bridged)) {
            if (e)
                e->closed = !unsure && closed_after(d, e->end);
            e = &d->next[n++];
            memset(e, 0, sizeof *e);
            e->start = r->ts;
            e->peak_multiple = -INFINITY;
            unsure = hole;
        } else if (bridged) {
            unsure = true;
        }
        double m = (r->value - r->limit) / r->limit;
        if (m > e->peak_multiple) {
            e->peak_multiple = m;
            e->peak_ts = r->ts;
            e->peak_value = r->value;
            e->peak_limit = r->limit;
        }
        e->end = r->ts;
        e->count++;
        broken = false;
    }
    if (n)
        d->next[n - 1].closed = !unsure && closed_after(d, d->next[n - 1].end);
    return n;
}

static void emit(engine_episode_fn cb, void *ud, int type, const engine_episode *ep,
                 uint64_t into)
{
    if (!cb)
        return;
    engine_episode_event ev = {type, *ep, into};
    cb(ud, &ev);
}

static bool id_taken(const engine_detector *d, size_t nnew, uint64_t id)
{
    for (size_t i = 0; i < d->nep; i++)
        if (d->eps[i].id == id)
            return true;
    for (size_t i = 0; i < nnew; i++)
        if (d->next[i].id == id)
            return true;
    return false;
}

static bool same_shape(const engine_episode *a, const engine_episode *b)
{
    return a->start == b->start && a->end == b->end && a->count == b->count &&
           a->peak_ts == b->peak_ts && a->peak_value == b->peak_value &&
           a->peak_limit == b->peak_limit;
}

/* An old episode lives on as the new one n: report how it changed. */
static void report_change(const engine_episode *old, const engine_episode *n,
                          engine_episode_fn cb, void *ud)
{
    if (old->closed && !n->closed)
        emit(cb, ud, ENGINE_EP_REOPENED, n, 0);
    else if (!same_shape(old, n))
        emit(cb, ud, n->start == old->start && n->end > old->end ? ENGINE_EP_EXTENDED
                                                                 : ENGINE_EP_CHANGED,
             n, 0);
    if (!old->closed && n->closed)
        emit(cb, ud, ENGINE_EP_CLOSED, n, 0);
}

/* Matches the recomputed episodes (d->next[0..nn)) with the current ones, carries ids over,
 * reports events, and makes the recomputed list current. */
static void compare(engine_detector *d, size_t nn, engine_episode_fn cb, void *ud)
{
    memset(d->claimed, 0, d->nep);
    for (size_t k = 0; k < nn; k++) {
        engine_episode *n = &d->next[k];
        long survivor = -1;
        for (size_t i = 0; i < d->nep; i++) {
            const engine_episode *o = &d->eps[i];
            if (d->claimed[i] || o->start > n->end || n->start > o->end)
                continue;
            d->claimed[i] = survivor < 0 ? 1 : 2; /* 2: merged into the survivor */
            if (survivor < 0)
                survivor = (long)i;
        }
        if (survivor >= 0) {
            n->id = d->eps[survivor].id;
            n->anchor = d->eps[survivor].anchor;
            report_change(&d->eps[survivor], n, cb, ud);
        } else {
            n->id = 0;
            n->anchor = n->start;
            uint32_t gen = 0;
            uint64_t id;
            do
                id = engine_episode_id(d->series, d->pollutant, d->kind, n->start, gen++);
            while (id_taken(d, k, id));
            n->id = id;
            emit(cb, ud, ENGINE_EP_OPENED, n, 0);
            if (n->closed)
                emit(cb, ud, ENGINE_EP_CLOSED, n, 0);
        }
        for (size_t i = 0; i < d->nep; i++)
            if (d->claimed[i] == 2) {
                emit(cb, ud, ENGINE_EP_MERGED, &d->eps[i], n->id);
                d->claimed[i] = 3;
            }
    }
    for (size_t i = 0; i < d->nep; i++)
        if (!d->claimed[i])
            emit(cb, ud, ENGINE_EP_RETRACTED, &d->eps[i], 0);
    engine_episode *t = d->eps;
    d->eps = d->next;
    d->next = t;
    d->nep = nn;
}

/* Forgets what lies wholly before the horizon: records, and episodes that can no longer
 * change (an episode still open at that point is reported closed first). */
static void prune(engine_detector *d, engine_episode_fn cb, void *ud)
{
    int64_t window = (int64_t)(d->o.max_bridge + 1) * d->step;
    int64_t cut = d->newest - (int64_t)d->o.horizon * d->step;
    if (cut <= d->cutoff)
        return;
    for (size_t i = 0; i < d->nep; i++) /* never cut into an episode that may still grow */
        if (d->eps[i].end + window >= cut && d->eps[i].start < cut)
            cut = d->eps[i].start;
    size_t drop = 0;
    while (drop < d->nep && d->eps[drop].end + window < cut) {
        if (!d->eps[drop].closed) {
            d->eps[drop].closed = true;
            emit(cb, ud, ENGINE_EP_CLOSED, &d->eps[drop], 0);
        }
        drop++;
    }
    memmove(d->eps, d->eps + drop, (d->nep - drop) * sizeof *d->eps);
    d->nep -= drop;
    size_t r = lower_bound(d, cut);
    memmove(d->recs, d->recs + r, (d->nrec - r) * sizeof *d->recs);
    d->nrec -= r;
    if (cut > d->cutoff)
        d->cutoff = cut;
}

int engine_detector_feed(engine_detector *d, const engine_period *p, engine_episode_fn cb,
                         void *ud)
{
    if (d->any && p->ts < d->cutoff) {
        d->too_late++;
        return 1;
    }
    if (reserve(d))
        return -ENOMEM;
    rec r = {p->ts, p->value, p->limit, judge(d, p)};
    size_t i = lower_bound(d, p->ts);
    if (i < d->nrec && d->recs[i].ts == p->ts) {
        d->recs[i] = r;
    } else {
        memmove(d->recs + i + 1, d->recs + i, (d->nrec - i) * sizeof *d->recs);
        d->recs[i] = r;
        d->nrec++;
    }
    if (!d->any || p->ts > d->newest)
        d->newest = p->ts;
    if (!d->any)
        d->cutoff = p->ts - (int64_t)d->o.horizon * d->step;
    d->any = true;
    compare(d, segment(d), cb, ud);
    prune(d, cb, ud);
    return 0;
}

/* ---- State as bytes --------------------------------------------------------------------- */

#define DET_MAGIC "PLDT"
#define DET_VERSION 1u      /* late_wait 0 */
#define DET_VERSION_LATE 2u /* adds late_wait after the horizon */

int engine_detector_encode(const engine_detector *d, uint8_t **out, size_t *len)
{
    wbuf w = {0};
    put(&w, DET_MAGIC, 4);
    put_u64(&w, d->o.late_wait ? DET_VERSION_LATE : DET_VERSION);
    put_str(&w, d->series);
    put_str(&w, d->pollutant);
    uint8_t head[4] = {(uint8_t)d->kind, d->any, d->o.t_valid, d->o.none_is_normal};
    put(&w, head, 4);
    put_u64(&w, d->o.max_bridge);
    put_u64(&w, d->o.horizon);
    if (d->o.late_wait)
        put_u64(&w, d->o.late_wait);
    put_u64(&w, (uint64_t)d->newest);
    put_u64(&w, (uint64_t)d->cutoff);
    put_u64(&w, d->too_late);
    put_u64(&w, d->nrec);
    for (size_t i = 0; i < d->nrec; i++) {
        put_u64(&w, (uint64_t)d->recs[i].ts);
        put_f64(&w, d->recs[i].value);
        put_f64(&w, d->recs[i].limit);
        put(&w, &d->recs[i].state, 1);
    }
    put_u64(&w, d->nep);
    for (size_t i = 0; i < d->nep; i++) {
        const engine_episode *e = &d->eps[i];
        put_u64(&w, e->id);
        put_u64(&w, (uint64_t)e->anchor);
        put_u64(&w, (uint64_t)e->start);
        put_u64(&w, e->closed);
    }
    if (w.oom) {
        free(w.p);
        return -ENOMEM;
    }
    *out = w.p;
    *len = w.n;
    return 0;
}

/* Reads the records and episodes; the episodes must be exactly those the records give. */
static int decode_state(rbuf *b, engine_detector *d)
{
    uint64_t nrec = get_u64(b);
    if (b->bad || nrec > (b->n - b->at) / 25)
        return -EBADMSG;
    for (uint64_t i = 0; i < nrec; i++) {
        if (reserve(d))
            return -ENOMEM;
        rec *r = &d->recs[d->nrec];
        r->ts = (int64_t)get_u64(b);
        r->value = get_f64(b);
        r->limit = get_f64(b);
        const uint8_t *st = take(b, 1);
        if (b->bad || *st < REC_EXCEED || *st > REC_INVALID ||
            (d->nrec && r->ts <= d->recs[d->nrec - 1].ts) || r->ts < d->cutoff)
            return -EBADMSG;
        r->state = *st;
        d->nrec++;
    }
    if (reserve(d))
        return -ENOMEM;
    size_t nn = segment(d);
    uint64_t nep = get_u64(b);
    if (b->bad || nep != nn)
        return -EBADMSG;
    for (size_t i = 0; i < nn; i++) {
        engine_episode *e = &d->next[i];
        e->id = get_u64(b);
        e->anchor = (int64_t)get_u64(b);
        int64_t start = (int64_t)get_u64(b);
        uint64_t closed = get_u64(b);
        if (b->bad || start != e->start || closed != (uint64_t)e->closed || e->id == 0)
            return -EBADMSG;
        for (size_t j = 0; j < i; j++)
            if (d->next[j].id == e->id)
                return -EBADMSG;
    }
    engine_episode *t = d->eps;
    d->eps = d->next;
    d->next = t;
    d->nep = nn;
    return b->at == b->n ? 0 : -EBADMSG;
}

int engine_detector_decode(const uint8_t *buf, size_t len, engine_detector **out)
{
    rbuf b = {buf, len, 0, false};
    char series[64], pollutant[64];
    engine_detector *d = NULL;
    int rc = -EBADMSG;
    const uint8_t *magic = take(&b, 4);
    uint64_t version = magic ? get_u64(&b) : 0;
    if (!magic || memcmp(magic, DET_MAGIC, 4) != 0 ||
        (version != DET_VERSION && version != DET_VERSION_LATE))
        goto fail;
    get_str(&b, series, 64);
    get_str(&b, pollutant, 64);
    const uint8_t *head = take(&b, 4);
    engine_detector_opts o;
    engine_detector_opts_init(&o);
    uint64_t bridge = get_u64(&b), horizon = get_u64(&b);
    uint64_t late_wait = version == DET_VERSION_LATE ? get_u64(&b) : 0;
    if (b.bad || head[1] > 1 || head[2] > 1 || head[3] > 1 || bridge > UINT32_MAX ||
        horizon == 0 || horizon > UINT32_MAX ||
        (version == DET_VERSION_LATE && (late_wait == 0 || late_wait > UINT32_MAX)))
        goto fail;
    o.late_wait = (uint32_t)late_wait;
    o.t_valid = head[2];
    o.none_is_normal = head[3];
    o.max_bridge = (uint32_t)bridge;
    o.horizon = (uint32_t)horizon;
    rc = engine_detector_create(series, pollutant, head[0], &o, &d);
    if (rc) {
        rc = rc == -ENOMEM ? rc : -EBADMSG;
        goto fail;
    }
    d->any = head[1];
    d->newest = (int64_t)get_u64(&b);
    d->cutoff = (int64_t)get_u64(&b);
    d->too_late = get_u64(&b);
    rc = decode_state(&b, d);
    if (rc)
        goto fail;
    *out = d;
    return 0;
fail:
    engine_detector_destroy(d);
    return rc == -ENOMEM ? rc : -EBADMSG;
}
