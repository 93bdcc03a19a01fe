/* catalog.c: the series catalog. Every series has a key ("MN:a21026:hour"), an interval
 * class, labels, and a dense id. The whole catalog lives in memory (an array by id and an
 * open-addressing hash from key to id) so that ingest and queries resolve keys without
 * touching LMDB; the series table holds one record per id and is loaded at open (1 M series
 * in well under a second). New series and label changes are written by the writer thread
 * with its next commit (storage__catalog_flush).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

#define REC_FIXED 18u /* the series record's fixed header */

/* 8 bytes at a time, then a final avalanche: the low bits index the table, the high 32
 * are kept in the slot as a tag so that a probe rarely touches the series array. */
static uint64_t hash_key(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 33);
}

#define SLOT_SID(e) ((uint32_t)(e))
#define SLOT_TAG(h) ((h) >> 32)

/* Finds key in the hash: the slot holding its sid, or the empty slot where it would go. */
static uint32_t hash_slot(const storage *st, const char *key, size_t klen, uint64_t h)
{
    uint32_t mask = st->hash_cap - 1;
    uint32_t i = (uint32_t)h & mask;
    for (;;) {
        uint64_t e = st->hash[i];
        if (e == 0)
            return i;
        if (SLOT_TAG(e) == SLOT_TAG(h)) {
            const storage_series_rec *s = &st->series[SLOT_SID(e) - 1];
            if (s->klen == klen && memcmp(s->key, key, klen) == 0)
                return i;
        }
        i = (i + 1) & mask;
    }
}

/* Inserts a key known to be absent: no comparisons. */
static void hash_put_new(storage *st, uint64_t h, storage_sid sid)
{
    uint32_t mask = st->hash_cap - 1;
    uint32_t i = (uint32_t)h & mask;
    while (st->hash[i])
        i = (i + 1) & mask;
    st->hash[i] = (h & 0xffffffff00000000u) | sid;
}

/* Makes room for n series at a load of at most one half. */
static int hash_reserve(storage *st, uint64_t n)
{
    if (n * 2 <= st->hash_cap)
        return 0;
    uint32_t cap = st->hash_cap ? st->hash_cap : 1024;
    while ((uint64_t)cap < n * 2)
        cap *= 2;
    uint64_t *h = calloc(cap, sizeof *h);
    if (!h)
        return -ENOMEM;
    free(st->hash);
    st->hash = h;
    st->hash_cap = cap;
    for (uint32_t sid = 1; sid <= st->nseries; sid++) {
        storage_series_rec *s = &st->series[sid - 1];
        hash_put_new(st, hash_key(s->key, s->klen), sid);
    }
    return 0;
}

static int series_reserve(storage *st, uint64_t n)
{
    if (n <= st->series_cap)
        return 0;
    uint32_t cap = st->series_cap ? st->series_cap : 1024;
    while (cap < n)
        cap *= 2;
    storage_series_rec *a = realloc(st->series, cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    st->series = a;
    st->series_cap = cap;
    return 0;
}

/* Appends a series (catalog write-locked). key and labels are copied into mem when given
 * (the load arena), else into one new allocation. h is hash_key(key). */
static int series_add(storage *st, const char *key, size_t klen, int iv, const char *labels,
                      size_t llen, uint64_t h, char *mem, storage_sid *out)
{
    if (st->nseries == UINT32_MAX - 1)
        return -ENOSPC;
    int rc = series_reserve(st, (uint64_t)st->nseries + 1);
    if (rc == 0)
        rc = hash_reserve(st, (uint64_t)st->nseries + 1);
    if (rc)
        return rc;
    char *k = mem ? mem : malloc(klen + 1 + llen + 1);
    if (!k)
        return -ENOMEM;
    memcpy(k, key, klen);
    k[klen] = 0;
    char *l = k + klen + 1;
    memcpy(l, labels, llen);
    l[llen] = 0;
    storage_series_rec *s = &st->series[st->nseries];
    s->key = k;
    s->labels = l;
    s->klen = (uint8_t)klen;
    s->iv = (uint8_t)iv;
    s->in_arena = mem != NULL;
    s->rev = s->saved_rev = s->flushed_rev = 0;
    s->first_window = INT64_MAX;
    s->last_window = INT64_MIN;
    *out = ++st->nseries;
    hash_put_new(st, h, *out);
    return 0;
}

static bool labels_inline(const storage_series_rec *s)
{
    return s->labels == s->key + s->klen + 1;
}

/* The catalog load puts every key and label in one arena (one allocation, not a million). */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

static char *arena_alloc(storage *st, size_t n)
{
    arena_block *b = st->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > (1u << 22) ? n : (1u << 22);
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->next = st->arena;
        b->used = 0;
        b->cap = cap;
        st->arena = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

/* Record: u8 iv | u8 klen | i64 first_window | i64 last_window (LE) | key | labels. */
int storage__catalog_load(storage *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->dbi_series, &cur);
    if (rc)
        return storage__lmdb_err(rc);
    MDB_val k, v;
    uint32_t expect = 1;
    MDB_stat ms;
    if (mdb_stat(txn, st->dbi_series, &ms) == 0 && ms.ms_entries > 0 &&
        ((rc = series_reserve(st, ms.ms_entries)) || (rc = hash_reserve(st, ms.ms_entries)))) {
        mdb_cursor_close(cur);
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data, *vb = v.mv_data;
        if (k.mv_size != 4 || v.mv_size < REC_FIXED || v.mv_size < REC_FIXED + vb[1]) {
            rc = STORAGE_ECORRUPT;
            goto done;
        }
        uint32_t sid = (uint32_t)kb[0] << 24 | kb[1] << 16 | kb[2] << 8 | kb[3];
        if (sid != expect++) {
            rc = STORAGE_ECORRUPT; /* ids are dense from 1 */
            goto done;
        }
        int64_t fw, lw;
        memcpy(&fw, vb + 2, 8);
        memcpy(&lw, vb + 10, 8);
        storage_sid got;
        size_t klen = vb[1], llen = v.mv_size - REC_FIXED - klen;
        char *mem = arena_alloc(st, klen + llen + 2);
        if (!mem) {
            rc = -ENOMEM;
            goto done;
        }
        const char *key = (const char *)vb + REC_FIXED;
        rc = series_add(st, key, klen, vb[0], key + klen, llen, hash_key(key, klen), mem, &got);
        if (rc)
            goto done;
        st->series[got - 1].first_window = fw;
        st->series[got - 1].last_window = lw;
        if (rc)
            goto done;
    }
    rc = rc == MDB_NOTFOUND ? 0 : storage__lmdb_err(rc);
done:
    mdb_cursor_close(cur);
    return rc;
}

void storage__catalog_free(storage *st)
{
    for (uint32_t i = 0; i < st->nseries; i++) {
        if (!labels_inline(&st->series[i]))
            free(st->series[i].labels);
        if (!st->series[i].in_arena)
            free(st->series[i].key);
    }
    while (st->arena) {
        arena_block *b = st->arena;
        st->arena = b->next;
        free(b);
    }
    free(st->series);
    free(st->hash);
    free(st->dirty);
    st->series = NULL;
    st->hash = NULL;
    st->dirty = NULL;
    st->nseries = st->series_cap = st->hash_cap = st->ndirty = st->dirty_cap = 0;
}

static int mark_dirty(storage *st, storage_sid sid)
{
    storage_series_rec *s = &st->series[sid - 1];
    if (s->rev++ == s->saved_rev) { /* not yet in the list */
        if (st->ndirty == st->dirty_cap) {
            uint32_t cap = st->dirty_cap ? st->dirty_cap * 2 : 256;
            uint32_t *d = realloc(st->dirty, cap * sizeof *d);
            if (!d) {
                s->rev--;
                return -ENOMEM;
            }
            st->dirty = d;
            st->dirty_cap = cap;
        }
        st->dirty[st->ndirty++] = sid;
    }
    return 0;
}

int storage__catalog_flush(storage *st, MDB_txn *txn, uint32_t *taken)
{
    int rc = 0;
    uint8_t buf[REC_FIXED + 255 + 4096];
    pthread_rwlock_rdlock(&st->cat_lock);
    uint32_t n = st->ndirty;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        storage_sid sid = st->dirty[i];
        const storage_series_rec *s = &st->series[sid - 1];
        size_t llen = strlen(s->labels);
        size_t vlen = REC_FIXED + s->klen + llen;
        uint8_t *vb = vlen <= sizeof buf ? buf : malloc(vlen);
        if (!vb) {
            rc = -ENOMEM;
            break;
        }
        vb[0] = s->iv;
        vb[1] = s->klen;
        memcpy(vb + 2, &s->first_window, 8);
        memcpy(vb + 10, &s->last_window, 8);
        memcpy(vb + REC_FIXED, s->key, s->klen);
        memcpy(vb + REC_FIXED + s->klen, s->labels, llen);
        uint8_t kb[4] = {(uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                         (uint8_t)sid};
        MDB_val k = {4, kb}, v = {vlen, vb};
        st->series[sid - 1].flushed_rev = s->rev;
        int lrc = mdb_put(txn, st->dbi_series, &k, &v, 0);
        if (vb != buf)
            free(vb);
        if (lrc)
            rc = lrc; /* raw LMDB code: the caller recognises MDB_MAP_FULL */
    }
    pthread_rwlock_unlock(&st->cat_lock);
    *taken = n;
    return rc;
}

/* After the commit: the first `taken` dirty entries are durable at the revision they had
 * when written; those changed since stay dirty. Only the writer removes entries and others
 * only append, so the first `taken` are the ones it wrote. */
void storage__catalog_saved(storage *st, uint32_t taken)
{
    pthread_rwlock_wrlock(&st->cat_lock);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < st->ndirty; i++) {
        storage_sid sid = st->dirty[i];
        storage_series_rec *s = &st->series[sid - 1];
        if (i < taken)
            s->saved_rev = s->flushed_rev;
        if (s->rev != s->saved_rev)
            st->dirty[keep++] = sid;
    }
    st->ndirty = keep;
    pthread_rwlock_unlock(&st->cat_lock);
}

int storage__series_iv(storage *st, storage_sid sid)
{
    int iv = -ENOENT;
    pthread_rwlock_rdlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries)
        iv = st->series[sid - 1].iv;
    pthread_rwlock_unlock(&st->cat_lock);
    return iv;
}

void storage__series_windows(storage *st, storage_sid sid, int64_t *first, int64_t *last)
{
    *first = INT64_MAX;
    *last = INT64_MIN;
    pthread_rwlock_rdlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries) {
        *first = st->series[sid - 1].first_window;
        *last = st->series[sid - 1].last_window;
    }
    pthread_rwlock_unlock(&st->cat_lock);
}

void storage__series_widen(storage *st, storage_sid sid, int64_t first, int64_t last)
{
    pthread_rwlock_wrlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries) {
        storage_series_rec *s = &st->series[sid - 1];
        if (first < s->first_window || last > s->last_window) {
            if (first < s->first_window)
                s->first_window = first;
            if (last > s->last_window)
                s->last_window = last;
            mark_dirty(st, sid);
        }
    }
    pthread_rwlock_unlock(&st->cat_lock);
}

static int iv_from_key(const char *key)
{
    static const char *const names[STORAGE_NIV] = {"rtd", "min", "hour", "day"};
    for (const char *p = strchr(key, ':'); p; p = strchr(p + 1, ':')) {
        const char *f = p + 1;
        size_t l = strcspn(f, ":.");
        for (int iv = 0; iv < STORAGE_NIV; iv++)
            if (strlen(names[iv]) == l && memcmp(f, names[iv], l) == 0)
                return iv;
    }
    return STORAGE_IV_HOUR;
}

int storage_series_ensure(storage *st, const char *key, int iv, storage_sid *out)
{
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > 255 || iv < STORAGE_IV_AUTO || iv >= STORAGE_NIV)
        return -EINVAL;
    if (st->read_only)
        return storage_series_lookup(st, key, out) == 0 ? 0 : -EROFS;
    if (storage_series_lookup(st, key, out) == 0)
        return 0;
    if (iv == STORAGE_IV_AUTO)
        iv = iv_from_key(key);
    int rc;
    uint64_t h = hash_key(key, klen);
    pthread_rwlock_wrlock(&st->cat_lock);
    uint64_t e = st->hash_cap ? st->hash[hash_slot(st, key, klen, h)] : 0;
    if (e) {
        *out = SLOT_SID(e); /* created meanwhile */
        rc = 0;
    } else if ((rc = series_add(st, key, klen, iv, "", 0, h, NULL, out)) == 0) {
        rc = mark_dirty(st, *out);
    }
    pthread_rwlock_unlock(&st->cat_lock);
    return rc;
}

int storage_series_lookup(storage *st, const char *key, storage_sid *out)
{
    size_t klen = strlen(key);
    int rc = -ENOENT;
    if (klen > 255)
        return rc;
    pthread_rwlock_rdlock(&st->cat_lock);
    if (st->hash_cap && klen <= 255) {
        uint64_t e = st->hash[hash_slot(st, key, klen, hash_key(key, klen))];
        if (e) {
            *out = SLOT_SID(e);
            rc = 0;
        }
    }
    pthread_rwlock_unlock(&st->cat_lock);
    return rc;
}

static int copy_out(const char *s, char *buf, size_t len)
{
    size_t l = strlen(s);
    if (l + 1 > len)
        return -ERANGE;
    memcpy(buf, s, l + 1);
    return 0;
}

int storage_series_key(storage *st, storage_sid sid, char *buf, size_t len)
{
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries)
        rc = copy_out(st->series[sid - 1].key, buf, len);
    pthread_rwlock_unlock(&st->cat_lock);
    return rc;
}

int storage_series_interval(storage *st, storage_sid sid)
{
    return storage__series_iv(st, sid);
}

uint32_t storage_series_count(storage *st)
{
    pthread_rwlock_rdlock(&st->cat_lock);
    uint32_t n = st->nseries;
    pthread_rwlock_unlock(&st->cat_lock);
    return n;
}

int storage_series_set_labels(storage *st, storage_sid sid, const char *labels)
{
    if (st->read_only)
        return -EROFS;
    size_t l = strlen(labels);
    if (l > 4096)
        return -EINVAL;
    char *copy = malloc(l + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, labels, l + 1);
    int rc = -ENOENT;
    pthread_rwlock_wrlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries) {
        storage_series_rec *s = &st->series[sid - 1];
        if (!labels_inline(s))
            free(s->labels);
        s->labels = copy;
        copy = NULL;
        rc = mark_dirty(st, sid);
    }
    pthread_rwlock_unlock(&st->cat_lock);
    free(copy);
    return rc;
}

int storage_series_labels(storage *st, storage_sid sid, char *buf, size_t len)
{
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&st->cat_lock);
    if (sid >= 1 && sid <= st->nseries)
        rc = copy_out(st->series[sid - 1].labels, buf, len);
    pthread_rwlock_unlock(&st->cat_lock);
    return rc;
}
