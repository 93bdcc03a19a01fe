/* chunkstore.c: writing points into chunk records inside one write transaction.
 *
 * Chunk keys are time-major, (window start, series id, part), so sealing a window for many
 * series appends keys in order. A write context remembers the greatest key the table held
 * when the transaction began: a window whose first key lies beyond it cannot have an
 * existing chunk (no lookup needed) and its encoded parts are collected, sorted and appended
 * with MDB_APPEND at the end; any other window is read, merged with the new points (which
 * win on equal timestamps), and rewritten in place. A window whose encoding exceeds
 * STORAGE_PART_MAX bytes is split into parts, each a valid chunk, so that no value spills
 * into LMDB overflow pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

int storage__wctx_begin(storage_wctx *c, storage *st, MDB_txn *txn)
{
    memset(c, 0, sizeof *c);
    c->st = st;
    c->txn = txn;
    int rc = mdb_cursor_open(txn, st->dbi_chunks, &c->cur);
    if (rc)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(c->cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == STORAGE_CHUNK_KEY_LEN) {
        memcpy(c->last_key, k.mv_data, STORAGE_CHUNK_KEY_LEN);
        c->have_last = true;
    } else if (rc != MDB_NOTFOUND && rc != 0) {
        return rc;
    }
    return 0;
}

/* The cursor is not closed here: a write transaction's cursors are freed when it ends. */
void storage__wctx_free(storage_wctx *c)
{
    chunk_buf_free(&c->arena);
    chunk_buf_free(&c->pack);
    free(c->outs);
    free(c->tmp);
    free(c->old);
    memset(c, 0, sizeof *c);
}

static int reserve(storage_point **a, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    storage_point *p = realloc(*a, n * sizeof *p);
    if (!p)
        return -ENOMEM;
    *a = p;
    *cap = n;
    return 0;
}

static bool beyond_last(const storage_wctx *c, const uint8_t *key)
{
    return !c->have_last || memcmp(key, c->last_key, STORAGE_CHUNK_KEY_LEN) > 0;
}

/* Stores the chunk at arena[start, arena.len) under key: collected for the final append if
 * the key lies beyond the table's end, written now otherwise. */
static int emit(storage_wctx *c, const uint8_t *key, size_t start, uint32_t npoints)
{
    c->d_chunks++;
    c->d_points += npoints;
    size_t len = c->arena.len - start;
    if (!beyond_last(c, key)) {
        MDB_val k = {STORAGE_CHUNK_KEY_LEN, (void *)key}, v = {len, c->arena.data + start};
        int rc = mdb_put(c->txn, c->st->dbi_chunks, &k, &v, 0);
        c->arena.len = start;
        return rc;
    }
    if (c->nouts == c->outs_cap) {
        size_t cap = c->outs_cap ? c->outs_cap * 2 : 256;
        storage_out *o = realloc(c->outs, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        c->outs = o;
        c->outs_cap = cap;
    }
    storage_out *o = &c->outs[c->nouts++];
    memcpy(o->key, key, STORAGE_CHUNK_KEY_LEN);
    o->off = start;
    o->len = len;
    return 0;
}

/* Encodes pts as one part, or splits it in two halves while the encoding is too large. */
static int encode_parts(storage_wctx *c, storage_sid sid, int64_t w, const storage_point *pts,
                        size_t n, uint32_t *part)
{
    size_t start = c->arena.len;
    int rc;
    if (n <= CHUNK_MAX_POINTS) {
        if ((rc = chunk_encode(pts, n, &c->arena)))
            return rc;
        if (c->arena.len - start <= STORAGE_PART_MAX || n == 1) {
            if (*part > UINT16_MAX)
                return -E2BIG;
            uint8_t key[STORAGE_CHUNK_KEY_LEN];
            storage__chunk_key(key, w, sid, (uint16_t)(*part)++);
            return emit(c, key, start, (uint32_t)n);
        }
        /* Aim the split at parts of ~85% of the limit rather than halving blindly. */
        size_t len = c->arena.len - start;
        c->arena.len = start;
        size_t nparts = (len + STORAGE_PART_MAX * 85 / 100 - 1) / (STORAGE_PART_MAX * 85 / 100);
        if (nparts > 2) {
            size_t per = (n + nparts - 1) / nparts;
            for (size_t i = 0; i < n; i += per)
                if ((rc = encode_parts(c, sid, w, pts + i, n - i < per ? n - i : per, part)))
                    return rc;
            return 0;
        }
    }
    size_t h = n / 2;
    if ((rc = encode_parts(c, sid, w, pts, h, part)))
        return rc;
    return encode_parts(c, sid, w, pts + h, n - h, part);
}

/* Reads the existing parts of (w, sid), decoding them into c->old; *nparts counts them. */
static int read_existing(storage_wctx *c, storage_sid sid, int64_t w, size_t *nold,
                         size_t *nparts)
{
    uint8_t key[STORAGE_CHUNK_KEY_LEN];
    storage__chunk_key(key, w, sid, 0);
    *nold = *nparts = 0;
    if (beyond_last(c, key))
        return 0;
    MDB_val k = {STORAGE_CHUNK_KEY_LEN, key}, v;
    int rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == STORAGE_CHUNK_KEY_LEN && memcmp(k.mv_data, key, 12) == 0) {
        chunk_info info;
        if ((rc = chunk_info_read(v.mv_data, v.mv_size, &info)))
            return rc;
        if ((rc = reserve(&c->old, &c->old_cap, *nold + info.npoints)))
            return rc;
        size_t got;
        rc = chunk_decode(v.mv_data, v.mv_size, c->old + *nold, info.npoints, &got);
        if (rc)
            return rc;
        *nold += got;
        (*nparts)++;
        rc = mdb_cursor_get(c->cur, &k, &v, MDB_NEXT);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes the nparts parts of (w, sid), holding nold points. */
static int delete_existing(storage_wctx *c, storage_sid sid, int64_t w, size_t nold,
                           size_t nparts)
{
    uint8_t key[STORAGE_CHUNK_KEY_LEN];
    storage__chunk_key(key, w, sid, 0);
    MDB_val k = {STORAGE_CHUNK_KEY_LEN, key}, v;
    int rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE);
    for (size_t i = 0; rc == 0 && i < nparts; i++) {
        if ((rc = mdb_cursor_del(c->cur, 0)))
            return rc;
        if (i + 1 < nparts) { /* seek again: the next part */
            k.mv_size = STORAGE_CHUNK_KEY_LEN;
            k.mv_data = key;
            rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE);
        }
    }
    c->d_chunks -= (int64_t)nparts;
    c->d_points -= (int64_t)nold;
    return rc;
}

static bool same_point(const storage_point *a, const storage_point *b)
{
    if (a->ts != b->ts || a->mask != b->mask || a->flag != b->flag)
        return false;
    for (int col = 0; col < STORAGE_NCOLS; col++)
        if ((a->mask >> col & 1) && memcmp(&a->v[col], &b->v[col], sizeof(double)) != 0)
            return false;
    return true;
}

static int write_window(storage_wctx *c, storage_sid sid, int64_t w, const storage_point *pts,
                        size_t n)
{
    size_t nold, nparts;
    int rc = read_existing(c, sid, w, &nold, &nparts);
    if (rc)
        return rc;
    if (nold) { /* merge: the new points win on equal timestamps */
        if ((rc = reserve(&c->tmp, &c->tmp_cap, nold + n)))
            return rc;
        size_t i = 0, j = 0, k = 0;
        bool changed = false;
        while (i < nold || j < n) {
            if (j == n || (i < nold && c->old[i].ts < pts[j].ts)) {
                c->tmp[k++] = c->old[i++];
            } else {
                if (i < nold && c->old[i].ts == pts[j].ts)
                    changed |= !same_point(&c->old[i++], &pts[j]);
                else
                    changed = true;
                c->tmp[k++] = pts[j++];
            }
        }
        /* Points written again as they are (a re-import, a resend) leave the window as it
         * is: rewriting it would copy its pages for nothing, and the file would grow. */
        if (!changed)
            return 0;
        if ((rc = delete_existing(c, sid, w, nold, nparts)))
            return rc;
        pts = c->tmp;
        n = k;
    }
    uint32_t part = 0;
    return encode_parts(c, sid, w, pts, n, &part);
}

int storage__write_series(storage_wctx *c, storage_sid sid, const storage_point *pts, size_t n)
{
    int iv = storage__series_iv(c->st, sid);
    if (iv < 0)
        return iv;
    int64_t wl = storage__window_len(iv), first_w = INT64_MAX, last_w = INT64_MIN;
    size_t i = 0;
    while (i < n) {
        int64_t w = storage__window_start(iv, pts[i].ts);
        size_t j = i + 1;
        while (j < n && pts[j].ts - w < wl)
            j++;
        int rc = write_window(c, sid, w, pts + i, j - i);
        if (rc)
            return rc;
        if (first_w == INT64_MAX)
            first_w = w;
        last_w = w;
        i = j;
    }
    if (n) /* before the catalog flush of this transaction, which writes the record */
        storage__series_widen(c->st, sid, first_w, last_w);
    return 0;
}

static int cmp_out(const void *a, const void *b)
{
    return memcmp(((const storage_out *)a)->key, ((const storage_out *)b)->key,
                  STORAGE_CHUNK_KEY_LEN);
}

/* ---- packing the final append
 *
 * Appended keys fill LMDB leaf pages in order: a value that does not fit in what is left of
 * the last page starts a new one (with MDB_APPEND the split moves nothing), and the rest of
 * the old page stays empty. Chunk values of ~1 KB would waste a tenth of every page that
 * way. So the append follows the page fill, and when a part would not fit but the room
 * left is worth a part of its own, it re-encodes the part's points as a prefix that fills
 * the room and a remainder that starts the next page. LMDB does not export its page
 * layout; the constants below are those of its format (lmdb.h documents the page size
 * only): a 16-byte page header, then per value a 2-byte index and an even-sized node of an
 * 8-byte header, the key and the value, values beyond nodemax going to overflow pages.
 * The fill is only a guess until the append starts a page of its own (the leaf page count
 * tells): a wrong guess costs space, never correctness. */
#define LMDB_PAGE_HDR 16
#define LMDB_NODE_HDR 8
#define PACK_MIN_ROOM 128 /* room below which a new part costs more than it fills */

static size_t node_cost(const storage_wctx *c, size_t vlen)
{
    size_t sz = LMDB_NODE_HDR + STORAGE_CHUNK_KEY_LEN + vlen;
    if (sz > c->node_max)
        sz = LMDB_NODE_HDR + STORAGE_CHUNK_KEY_LEN + 8; /* a page number to the overflow */
    return ((sz + 1) & ~(size_t)1) + 2;
}

static int pack_begin(storage_wctx *c)
{
    MDB_envinfo ei;
    MDB_stat es, ts;
    int rc = mdb_env_stat(c->st->env, &es);
    if (rc == 0)
        rc = mdb_env_info(c->st->env, &ei);
    if (rc == 0)
        rc = mdb_stat(c->txn, c->st->dbi_chunks, &ts);
    if (rc)
        return rc;
    c->page_usable = es.ms_psize - LMDB_PAGE_HDR;
    c->node_max = ((c->page_usable / 2) & ~(size_t)1) - 2;
    c->leaf_pages = ts.ms_leaf_pages;
    c->page_free = -1;
    return 0;
}

/* Appends one value and follows the last page's fill. */
static int pack_put(storage_wctx *c, const uint8_t *key, const void *data, size_t len)
{
    MDB_val k = {STORAGE_CHUNK_KEY_LEN, (void *)key}, v = {len, (void *)data};
    int rc = mdb_cursor_put(c->cur, &k, &v, MDB_APPEND);
    MDB_stat ts;
    if (rc == 0)
        rc = mdb_stat(c->txn, c->st->dbi_chunks, &ts);
    if (rc)
        return rc;
    long cost = (long)node_cost(c, len);
    if (ts.ms_leaf_pages != c->leaf_pages)
        c->page_free = (long)c->page_usable - cost; /* the value opened a page */
    else if (c->page_free >= 0)
        c->page_free -= cost;
    c->leaf_pages = ts.ms_leaf_pages;
    return 0;
}

/* Encodes pts[0, k) into c->pack; its node cost goes to *cost. */
static int pack_encode(storage_wctx *c, const storage_point *pts, size_t k, size_t *cost)
{
    c->pack.len = 0;
    int rc = chunk_encode(pts, k, &c->pack);
    *cost = rc ? 0 : node_cost(c, c->pack.len);
    return rc;
}

/* The longest prefix of pts (found in a few encodings) whose node fits in room bytes,
 * encoded into c->pack; *k = 0 when no prefix worth a part fits. */
static int pack_prefix(storage_wctx *c, const storage_point *pts, size_t n, size_t full_cost,
                       size_t room, size_t *k)
{
    size_t best = 0, last = 0, lo = 1, hi = n - 1, cost;
    size_t guess = (size_t)((double)n * (double)room / (double)full_cost);
    int rc;
    *k = 0;
    for (int tries = 0; tries < 8 && lo <= hi; tries++) {
        if (guess < lo)
            guess = lo;
        if (guess > hi)
            guess = hi;
        if ((rc = pack_encode(c, pts, guess, &cost)))
            return rc;
        last = guess;
        double per = (double)cost / (double)guess; /* bytes a point costs here */
        if (cost <= room) {
            best = guess;
            lo = guess + 1;
            if (room - cost < per * 4 + 8)
                break; /* within a few points of full */
            guess += (size_t)((double)(room - cost) / per * 0.9);
        } else {
            hi = guess - 1;
            size_t over = (size_t)((double)(cost - room) / per) + 1;
            guess = guess > over ? guess - over : 1;
        }
    }
    if (best == 0)
        return 0;
    if (last != best && (rc = pack_encode(c, pts, best, &cost)))
        return rc;
    *k = best;
    return 0;
}

/* Appends the points of one part (decoded from it), re-encoded to fill the room on the last
 * page before starting the next; *part numbers the parts written. */
static int pack_split(storage_wctx *c, uint8_t *key, const uint8_t *data, size_t len,
                      uint32_t *part)
{
    chunk_info info;
    int rc = chunk_info_read(data, len, &info);
    if (rc == 0)
        rc = reserve(&c->old, &c->old_cap, info.npoints);
    size_t n = 0;
    if (rc == 0)
        rc = chunk_decode(data, len, c->old, info.npoints, &n);
    const storage_point *pts = c->old;
    size_t cost = node_cost(c, len); /* of the whole part, as encoded in data */
    bool whole = true;               /* pts[0, n) is what data encodes */
    c->d_chunks--;                   /* the part taken apart */
    while (rc == 0 && n > 0) {
        size_t k = 0, limit = node_cost(c, STORAGE_PART_MAX);
        size_t room = c->page_free >= PACK_MIN_ROOM ? (size_t)c->page_free : limit;
        if (n > 1 && cost > room && (rc = pack_prefix(c, pts, n, cost, room, &k)))
            break;
        if (k == 0 && n > 1 && cost > limit) { /* no part of the limit fits: halve */
            k = n / 2;
            if ((rc = pack_encode(c, pts, k, &cost)))
                break;
        } else if (k == 0) {
            k = n;
        }
        if (*part > UINT16_MAX)
            return -E2BIG;
        key[12] = (uint8_t)(*part >> 8);
        key[13] = (uint8_t)*part;
        bool orig = whole && k == n; /* nothing re-encoded: data as it was */
        if ((rc = pack_put(c, key, orig ? data : c->pack.data, orig ? len : c->pack.len)))
            break;
        c->d_chunks++;
        (*part)++;
        pts += k;
        n -= k;
        whole = false;
        if (n && (rc = pack_encode(c, pts, n, &cost)))
            break;
    }
    return rc;
}

int storage__wctx_finish(storage_wctx *c)
{
    int rc = 0;
    if (c->nouts) {
        qsort(c->outs, c->nouts, sizeof *c->outs, cmp_out);
        rc = pack_begin(c);
    }
    uint32_t part = 0;
    for (size_t i = 0; rc == 0 && i < c->nouts; i++) {
        uint8_t *key = c->outs[i].key;
        const uint8_t *data = c->arena.data + c->outs[i].off;
        size_t len = c->outs[i].len;
        if (i == 0 || memcmp(key, c->outs[i - 1].key, 12) != 0)
            part = (uint32_t)(key[12] << 8 | key[13]); /* a new (window, series) */
        long cost = (long)node_cost(c, len);
        if (c->page_free >= PACK_MIN_ROOM && cost > c->page_free) {
            rc = pack_split(c, key, data, len, &part);
            continue;
        }
        if (part > UINT16_MAX)
            return -E2BIG;
        key[12] = (uint8_t)(part >> 8);
        key[13] = (uint8_t)part;
        part++;
        rc = pack_put(c, key, data, len);
    }
    if (rc)
        return rc;
    mdb_cursor_close(c->cur);
    c->cur = NULL;
    if (c->d_chunks == 0 && c->d_points == 0)
        return 0;
    return storage__put_counts(c->st, c->txn, c->st->n_chunks + (uint64_t)c->d_chunks,
                               c->st->n_points + (uint64_t)c->d_points);
}

/* Called with head_mu held (the counters are read under it). */
void storage__wctx_after_commit(storage_wctx *c)
{
    c->st->n_chunks += (uint64_t)c->d_chunks;
    c->st->n_points += (uint64_t)c->d_points;
}
