/* head.c: the in-memory head, the points committed to the write-ahead log but not yet
 * sealed into chunks. The writer thread inserts (after each group commit) and clears (after
 * each checkpoint) under head_mu; readers copy the points of one series under head_mu, so
 * readers on any thread see a consistent head.
 *
 * The head of a national fleet holds a point or a few for each of ~1.3 M series, so it is
 * kept compact and allocation-free per point: every point goes to the end of one array in
 * arrival order (a timestamp, its mask and flag, a link, and only its present values in a
 * second array), and each series chains its own points through `next`. Inserting is an
 * append; clearing keeps both arrays for the next round, so a steady stream of commits
 * neither allocates nor touches fresh pages. The cost moves to reading a series, which
 * walks its chain and sorts it (late points, duplicates: the later arrival wins); that
 * happens once per series at a checkpoint and for each read of a series with head points. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

#define HEAD_NONE UINT32_MAX

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Called with head_mu held. vals holds the values of the columns present in mask, in
 * column order. */
int storage__head_append(storage *st, storage_sid sid, int64_t ts, uint8_t mask, uint8_t flag,
                         const double *vals)
{
    if (sid > st->head_cap) {
        size_t cap = st->head_cap;
        storage_head_series *h = st->head;
        if (grow((void **)&h, &cap, sid, sizeof *h, 1024))
            return -ENOMEM;
        memset(h + st->head_cap, 0, (cap - st->head_cap) * sizeof *h);
        st->head = h;
        st->head_cap = (uint32_t)cap;
    }
    size_t nv = (size_t)__builtin_popcount(mask);
    if (st->head_npts >= HEAD_NONE - 1 || st->head_nvals + nv > UINT32_MAX)
        return -ENOMEM;
    if (grow((void **)&st->head_pts, &st->head_pts_cap, st->head_npts + 1, sizeof *st->head_pts,
             4096) ||
        grow((void **)&st->head_vals, &st->head_vals_cap, st->head_nvals + nv,
             sizeof *st->head_vals, 16384))
        return -ENOMEM;
    storage_head_series *h = &st->head[sid - 1];
    if (h->n == 0) {
        size_t cap = st->active_cap;
        if (grow((void **)&st->head_active, &cap, st->nactive + 1, sizeof *st->head_active,
                 1024))
            return -ENOMEM;
        st->active_cap = (uint32_t)cap;
        st->head_active[st->nactive++] = sid;
    }
    uint32_t idx = (uint32_t)st->head_npts++;
    storage_hpoint *hp = &st->head_pts[idx];
    hp->ts = ts;
    hp->next = HEAD_NONE;
    hp->voff = (uint32_t)st->head_nvals;
    hp->mask = mask;
    hp->flag = flag;
    memcpy(st->head_vals + st->head_nvals, vals, nv * sizeof *vals);
    st->head_nvals += nv;
    if (h->n == 0)
        h->first = idx;
    else
        st->head_pts[h->last].next = idx;
    h->last = idx;
    h->n++;
    st->head_points++;
    return 0;
}

/* Called with head_mu held. */
int storage__head_insert(storage *st, storage_sid sid, const storage_point *p)
{
    double vals[STORAGE_NCOLS];
    size_t nv = 0;
    uint8_t mask = p->mask & ((1u << STORAGE_NCOLS) - 1);
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if (mask >> c & 1)
            vals[nv++] = p->v[c];
    return storage__head_append(st, sid, p->ts, mask, p->flag, vals);
}

/* Called with head_mu held: forgets every head point (they are in chunks now). The arrays
 * stay allocated for the next round. */
void storage__head_clear(storage *st)
{
    for (uint32_t i = 0; i < st->nactive; i++)
        st->head[st->head_active[i] - 1].n = 0;
    st->nactive = 0;
    st->head_points = 0;
    st->head_npts = 0;
    st->head_nvals = 0;
}

void storage__touch(storage *st, storage_sid sid)
{
    uint64_t v = ++st->data_seq;
    if (sid > st->ver_cap) {
        uint32_t cap = st->ver_cap ? st->ver_cap : 1024;
        while (cap < sid)
            cap *= 2;
        uint64_t *a = realloc(st->ver, cap * sizeof *a);
        if (!a) {
            st->ver_floor = v; /* no room to say which: every series changed */
            return;
        }
        memset(a + st->ver_cap, 0, (cap - st->ver_cap) * sizeof *a);
        st->ver = a;
        st->ver_cap = cap;
    }
    if (sid == 0)
        st->ver_floor = v;
    else
        st->ver[sid - 1] = v;
}

uint64_t storage_series_version(storage *st, storage_sid sid)
{
    pthread_mutex_lock(&st->head_mu);
    uint64_t v = st->ver_floor;
    if (sid > 0 && sid <= st->ver_cap && st->ver[sid - 1] > v)
        v = st->ver[sid - 1];
    pthread_mutex_unlock(&st->head_mu);
    return v;
}

/* Called with head_mu held. Their points stay in the arrays until the head is cleared. */
void storage__head_forget(storage *st, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        storage_head_series *h = &st->head[st->head_active[i] - 1];
        st->head_points -= h->n;
        h->n = 0;
    }
    memmove(st->head_active, st->head_active + k, (st->nactive - k) * sizeof *st->head_active);
    st->nactive -= k;
}

void storage__head_free(storage *st)
{
    free(st->ver);
    st->ver = NULL;
    st->ver_cap = 0;
    free(st->head);
    free(st->head_active);
    free(st->head_pts);
    free(st->head_vals);
    st->head = NULL;
    st->head_active = NULL;
    st->head_pts = NULL;
    st->head_vals = NULL;
    st->head_cap = st->nactive = st->active_cap = 0;
    st->head_npts = st->head_pts_cap = st->head_nvals = st->head_vals_cap = 0;
    st->head_points = 0;
}

static void expand(const storage *st, uint32_t idx, storage_point *p)
{
    const storage_hpoint *hp = &st->head_pts[idx];
    const double *v = st->head_vals + hp->voff;
    p->ts = hp->ts;
    p->mask = hp->mask;
    p->flag = hp->flag;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        p->v[c] = hp->mask >> c & 1 ? *v++ : 0.0;
}

typedef struct order {
    int64_t ts;
    uint32_t pos; /* arrival order: among equal timestamps the last one wins */
} order;

static int cmp_order(const void *a, const void *b)
{
    const order *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorts pts[0..n) by time, keeping the last arrival of each timestamp; returns the count. */
static int sort_unique(storage_point *pts, size_t n, size_t *out_n)
{
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = pts[i - 1].ts < pts[i].ts;
    if (sorted) {
        *out_n = n;
        return 0;
    }
    order *o = malloc(n * sizeof *o);
    storage_point *tmp = malloc(n * sizeof *tmp);
    if (!o || !tmp) {
        free(o);
        free(tmp);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        o[i] = (order){pts[i].ts, (uint32_t)i};
    qsort(o, n, sizeof *o, cmp_order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && o[i + 1].ts == o[i].ts)
            continue; /* a later arrival of the same timestamp follows */
        tmp[k++] = pts[o[i].pos];
    }
    memcpy(pts, tmp, k * sizeof *pts);
    free(o);
    free(tmp);
    *out_n = k;
    return 0;
}

/* Called with head_mu held. */
int storage__head_series(storage *st, storage_sid sid, storage_point **buf, size_t *cap,
                         size_t *n)
{
    *n = 0;
    if (sid == 0 || sid > st->head_cap || st->head[sid - 1].n == 0)
        return 0;
    const storage_head_series *h = &st->head[sid - 1];
    if (grow((void **)buf, cap, h->n, sizeof **buf, 64))
        return -ENOMEM;
    size_t k = 0;
    for (uint32_t i = h->first; i != HEAD_NONE; i = st->head_pts[i].next)
        expand(st, i, &(*buf)[k++]);
    return sort_unique(*buf, k, n);
}

/* Called with head_mu held. */
int storage__head_copy(storage *st, storage_sid sid, int64_t from, int64_t to,
                       storage_point **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (sid == 0 || sid > st->head_cap || st->head[sid - 1].n == 0)
        return 0;
    const storage_head_series *h = &st->head[sid - 1];
    storage_point *pts = malloc(h->n * sizeof *pts);
    if (!pts)
        return -ENOMEM;
    size_t k = 0;
    for (uint32_t i = h->first; i != HEAD_NONE; i = st->head_pts[i].next)
        if (st->head_pts[i].ts >= from && st->head_pts[i].ts <= to)
            expand(st, i, &pts[k++]);
    int rc = sort_unique(pts, k, n);
    if (rc || *n == 0) {
        free(pts);
        *n = 0;
        return rc;
    }
    *out = pts;
    return 0;
}
