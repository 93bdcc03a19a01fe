/* cache.c: the reply cache. A chart front-end asks the same question again and again (every
 * dashboard that shows a plant's year, every refresh), and the answer changes only when the
 * series does. So the encoded reply of a range command is kept, keyed by the request (the
 * command's arguments and the RESP version) and stamped with the series' storage version
 * and the registry generation it was computed at; a request whose stamp still matches gets
 * the stored bytes, which costs a copy instead of decoding thousands of points.
 *
 * Correctness rests on the stamp: storage_series_version changes with every commit that
 * touches the series, and is read before the reader that computes the reply is opened, so
 * a reply is never stored under a stamp newer than the data it shows (at worst under an
 * older one, which only costs a miss). The registry generation covers limits and labels.
 *
 * The table is direct-mapped (a new entry replaces the one in its slot) with a byte budget:
 * past it, entries are dropped in slot order from a moving hand. One mutex guards it; the
 * loop thread and worker threads both use it. A hit takes a reference to the stored bytes
 * and, when the client has nothing else to send, hands them to the socket without copying
 * (the copy was a quarter of a hit's cost with 50 clients).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "storage.h"

#define CACHE_SLOTS 4096 /* power of two */

/* A stored reply. An entry holds one reference, and so does a write in flight that sends
 * it without a copy (query_client_send_blob); the last one frees it. refs is guarded by the
 * cache's mutex. */
struct query_blob {
    size_t refs;
    size_t len;
    char data[];
};

typedef struct cache_entry {
    uint64_t hash;
    uint64_t version, reg_gen;
    char *key;           /* owned: the request bytes */
    size_t klen;
    query_blob *reply;   /* one reference */
    size_t rlen;
} cache_entry;

struct query_cache {
    pthread_mutex_t mu;
    size_t budget, used;
    size_t hand;
    uint64_t hits, misses;
    cache_entry slot[CACHE_SLOTS];
};

int query_cache_create(size_t budget, query_cache **out)
{
    query_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->budget = budget;
    *out = c;
    return 0;
}

static void drop(query_cache *c, cache_entry *e)
{
    if (!e->key)
        return;
    c->used -= e->klen + e->rlen;
    free(e->key);
    if (--e->reply->refs == 0)
        free(e->reply);
    memset(e, 0, sizeof *e);
}

void query_cache_destroy(query_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        drop(c, &c->slot[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* FNV-1a over the request: its protocol and each argument with its length (the command
 * name case-folded), so no two different requests share a key. */
void query_cache_key(query_cache_req *k, int proto, size_t argc, const resp_arg *argv)
{
    uint64_t h = 1469598103934665603ULL;
    size_t n = 0;
    k->len = 0;
    k->ok = true;
    char head[2] = {(char)proto, (char)argc};
    for (size_t i = 0; i < 2; i++)
        k->buf[n++] = head[i];
    for (size_t i = 0; i < argc && k->ok; i++) {
        uint32_t len = (uint32_t)argv[i].len;
        if (n + 4 + len > sizeof k->buf) {
            k->ok = false; /* too long to be worth keeping */
            break;
        }
        memcpy(k->buf + n, &len, 4);
        n += 4;
        for (size_t j = 0; j < len; j++) {
            char ch = argv[i].ptr[j];
            k->buf[n++] = i == 0 && ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
    }
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k->buf[i];
        h *= 1099511628211ULL;
    }
    k->len = n;
    k->hash = h;
}

query_blob *query_cache_get(query_cache *c, const query_cache_req *k, uint64_t version,
                           uint64_t reg_gen)
{
    if (!c || !k->ok)
        return NULL;
    query_blob *b = NULL;
    pthread_mutex_lock(&c->mu);
    cache_entry *e = &c->slot[k->hash & (CACHE_SLOTS - 1)];
    if (e->key && e->hash == k->hash && e->klen == k->len && e->version == version &&
        e->reg_gen == reg_gen && memcmp(e->key, k->buf, k->len) == 0) {
        b = e->reply;
        b->refs++;
        c->hits++;
    }
    pthread_mutex_unlock(&c->mu);
    return b;
}

void query_cache_release(query_cache *c, query_blob *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&c->mu);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free(b);
}

const char *query_blob_data(const query_blob *b, size_t *len)
{
    *len = b->len;
    return b->data;
}

void query_cache_put(query_cache *c, const query_cache_req *k, uint64_t version,
                     uint64_t reg_gen, const char *reply, size_t rlen)
{
    if (!c || !k->ok)
        return;
    pthread_mutex_lock(&c->mu);
    c->misses++; /* counted here: a command may look up twice (before a thread hop) */
    pthread_mutex_unlock(&c->mu);
    if (k->len + rlen > c->budget / 8)
        return; /* one entry may take an eighth of the budget at most */
    char *key = malloc(k->len);
    query_blob *copy = malloc(sizeof *copy + rlen);
    if (!key || !copy) {
        free(key);
        free(copy);
        return;
    }
    memcpy(key, k->buf, k->len);
    copy->refs = 1;
    copy->len = rlen;
    memcpy(copy->data, reply, rlen);
    pthread_mutex_lock(&c->mu);
    cache_entry *e = &c->slot[k->hash & (CACHE_SLOTS - 1)];
    drop(c, e);
    while (c->used + k->len + rlen > c->budget) {
        cache_entry *v = &c->slot[c->hand];
        c->hand = (c->hand + 1) & (CACHE_SLOTS - 1);
        if (v != e)
            drop(c, v);
    }
    *e = (cache_entry){k->hash, version, reg_gen, key, k->len, copy, rlen};
    c->used += k->len + rlen;
    pthread_mutex_unlock(&c->mu);
}

void query_cache_stats(query_cache *c, uint64_t *hits, uint64_t *misses, size_t *bytes)
{
    *hits = *misses = 0;
    *bytes = 0;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    *bytes = c->used;
    pthread_mutex_unlock(&c->mu);
}

bool query_cache_reply(query_client *c, size_t argc, const resp_arg *argv, storage_sid sid,
                       uint64_t reg_gen, query_cache_req *k, uint64_t *version)
{
    *version = storage_series_version(c->srv->opts.storage, sid);
    query_cache_key(k, c->out.proto, argc, argv);
    query_blob *b = query_cache_get(c->srv->cache, k, *version, reg_gen);
    if (!b)
        return false;
    /* Sent as it is when nothing else waits to go out (the usual request and reply);
     * otherwise copied behind what does. */
    if (!query_client_send_blob(c, b)) {
        resp_write_raw(&c->out, b->data, b->len);
        query_cache_release(c->srv->cache, b);
    }
    return true;
}

void query_cache_keep(query_client *c, const query_cache_req *k, uint64_t version,
                      uint64_t reg_gen, size_t start, uint64_t errors_before)
{
    if (c->out.oom || c->out.errors != errors_before || c->out.len < start)
        return;
    query_cache_put(c->srv->cache, k, version, reg_gen, c->out.data + start,
                    c->out.len - start);
}
