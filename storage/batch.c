/* batch.c: batches, the unit of atomic writes. A batch holds points compactly (24 bytes
 * plus 8 per present value, since an import batch may hold millions of points) and
 * key/value operations serialised into one byte buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

storage_batch *storage_batch_create(void)
{
    return calloc(1, sizeof(storage_batch));
}

void storage_batch_destroy(storage_batch *b)
{
    if (!b)
        return;
    free(b->pts);
    free(b->vals);
    free(b->kv);
    free(b);
}

void storage_batch_clear(storage_batch *b)
{
    b->n = b->nv = b->kvlen = b->nkv = 0;
}

size_t storage_batch_points(const storage_batch *b)
{
    return b->n;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int storage_batch_add(storage_batch *b, storage_sid sid, const storage_point *p)
{
    uint8_t mask = p->mask & ((1u << STORAGE_NCOLS) - 1);
    if (sid == 0 || mask == 0)
        return -EINVAL;
    int nv = __builtin_popcount(mask);
    if (grow((void **)&b->pts, &b->cap, b->n + 1, sizeof *b->pts) ||
        grow((void **)&b->vals, &b->vcap, b->nv + (size_t)nv, sizeof *b->vals))
        return -ENOMEM;
    storage_bpoint *bp = &b->pts[b->n++];
    bp->ts = p->ts;
    bp->sid = sid;
    bp->voff = (uint32_t)b->nv;
    bp->mask = mask;
    bp->flag = p->flag;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        if (mask >> c & 1)
            b->vals[b->nv++] = p->v[c];
    return 0;
}

void storage__batch_point(const storage_batch *b, size_t i, storage_point *p)
{
    const storage_bpoint *bp = &b->pts[i];
    const double *v = b->vals + bp->voff;
    p->ts = bp->ts;
    p->mask = bp->mask;
    p->flag = bp->flag;
    for (int c = 0; c < STORAGE_NCOLS; c++)
        p->v[c] = bp->mask >> c & 1 ? *v++ : 0.0;
}

static int kv_add(storage_batch *b, bool del, const char *table, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    size_t tlen = table ? strlen(table) : 0;
    if (tlen == 0 || tlen > 32 || klen == 0 || klen > 511 || vlen > UINT32_MAX ||
        (vlen && !val))
        return -EINVAL;
    size_t need = 2 + tlen + 2 + klen + 4 + vlen;
    if (grow((void **)&b->kv, &b->kvcap, b->kvlen + need, 1))
        return -ENOMEM;
    uint8_t *p = b->kv + b->kvlen;
    *p++ = del;
    *p++ = (uint8_t)tlen;
    memcpy(p, table, tlen);
    p += tlen;
    uint16_t kl = (uint16_t)klen;
    memcpy(p, &kl, 2);
    p += 2;
    memcpy(p, key, klen);
    p += klen;
    uint32_t vl = (uint32_t)vlen;
    memcpy(p, &vl, 4);
    p += 4;
    if (vlen)
        memcpy(p, val, vlen);
    b->kvlen += need;
    b->nkv++;
    return 0;
}

int storage_batch_kv_put(storage_batch *b, const char *table, const void *key, size_t klen,
                         const void *val, size_t vlen)
{
    return kv_add(b, false, table, key, klen, val, vlen);
}

int storage_batch_kv_del(storage_batch *b, const char *table, const void *key, size_t klen)
{
    return kv_add(b, true, table, key, klen, NULL, 0);
}

size_t storage__batch_kv_next(const storage_batch *b, size_t off, bool *del, const char **table,
                              size_t *tlen, const void **key, size_t *klen, const void **val,
                              size_t *vlen)
{
    if (off >= b->kvlen)
        return 0;
    const uint8_t *p = b->kv + off;
    *del = p[0];
    *tlen = p[1];
    *table = (const char *)p + 2;
    p += 2 + *tlen;
    uint16_t kl;
    memcpy(&kl, p, 2);
    *klen = kl;
    *key = p + 2;
    p += 2 + kl;
    uint32_t vl;
    memcpy(&vl, p, 4);
    *vlen = vl;
    *val = p + 4;
    p += 4 + vl;
    return (size_t)(p - b->kv);
}
