/* head.c: the in-memory head, the points committed to the write-ahead log but not yet
 * sealed into chunks. One sorted array per series; the writer thread inserts (after each
 * group commit) and clears (after each checkpoint) under head_mu, readers copy the points
 * of one series under head_mu, so readers on any thread see a consistent head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

/* Called with head_mu held. */
int storage__head_insert(storage *st, storage_sid sid, const storage_point *p)
{
    if (sid > st->head_cap) {
        uint32_t cap = st->head_cap ? st->head_cap : 1024;
        while (cap < sid)
            cap *= 2;
        storage_head_series *h = realloc(st->head, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        memset(h + st->head_cap, 0, (cap - st->head_cap) * sizeof *h);
        st->head = h;
        st->head_cap = cap;
    }
    storage_head_series *h = &st->head[sid - 1];
    size_t lo = h->n;
    if (h->n && h->pts[h->n - 1].ts >= p->ts) { /* late: find its place */
        size_t a = 0, b = h->n;
        while (a < b) {
            size_t m = (a + b) / 2;
            if (h->pts[m].ts < p->ts)
                a = m + 1;
            else
                b = m;
        }
        lo = a;
        if (h->pts[lo].ts == p->ts) {
            h->pts[lo] = *p; /* same timestamp: the newer point replaces it */
            return 0;
        }
    }
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 4;
        storage_point *a = realloc(h->pts, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        h->pts = a;
        h->cap = cap;
    }
    if (h->n == 0) {
        if (st->nactive == st->active_cap) {
            uint32_t cap = st->active_cap ? st->active_cap * 2 : 1024;
            uint32_t *a = realloc(st->head_active, cap * sizeof *a);
            if (!a)
                return -ENOMEM;
            st->head_active = a;
            st->active_cap = cap;
        }
        st->head_active[st->nactive++] = sid;
    }
    memmove(h->pts + lo + 1, h->pts + lo, (h->n - lo) * sizeof *h->pts);
    h->pts[lo] = *p;
    h->n++;
    st->head_points++;
    return 0;
}

/* Called with head_mu held: forgets every head point (they are in chunks now). Small
 * arrays keep their memory for the next round. */
void storage__head_clear(storage *st)
{
    for (uint32_t i = 0; i < st->nactive; i++) {
        storage_head_series *h = &st->head[st->head_active[i] - 1];
        if (h->cap > 64) {
            free(h->pts);
            h->pts = NULL;
            h->cap = 0;
        }
        h->n = 0;
    }
    st->nactive = 0;
    st->head_points = 0;
}

void storage__head_free(storage *st)
{
    for (uint32_t i = 0; i < st->head_cap; i++)
        free(st->head[i].pts);
    free(st->head);
    free(st->head_active);
    st->head = NULL;
    st->head_active = NULL;
    st->head_cap = st->nactive = st->active_cap = 0;
    st->head_points = 0;
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
    size_t a = 0, b = h->n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (h->pts[m].ts < from)
            a = m + 1;
        else
            b = m;
    }
    size_t e = a;
    while (e < h->n && h->pts[e].ts <= to)
        e++;
    if (e == a)
        return 0;
    *out = malloc((e - a) * sizeof **out);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, h->pts + a, (e - a) * sizeof **out);
    *n = e - a;
    return 0;
}
