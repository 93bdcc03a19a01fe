/* alert_store.c: the alert tables in the store. alerts.c reaches persistence only through
 * engine_outbox_ops, so it can be tested with a fake and has no storage dependency of its
 * own; this file binds those operations to the store's "outbox" key/value table: records
 * staged with the caller's batch commit with the data that raised the alert, progress and
 * deletions go in small batches of their own (the writer groups them with everything else),
 * and the start-up scan reads a short-lived snapshot. It also keeps subscription uploads in
 * the "subscriptions" table: each upload's CSV text as sent, under its name, so a restart
 * loads exactly what was uploaded, and a new upload of the same name replaces it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define TABLE "outbox"

static int batch_put(void *ctx, storage_batch *b, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
    return storage_batch_kv_put(b, TABLE, key, klen, val, vlen);
}

/* One record change in a commit of its own; nobody waits for it: a crash before it is
 * durable only means one more attempt (same idempotency key) after the restart. */
static int submit_one(storage *st, const void *key, size_t klen, const void *val, size_t vlen,
                      bool del)
{
    storage_batch *b = storage_batch_create();
    if (!b)
        return -ENOMEM;
    int rc = del ? storage_batch_kv_del(b, TABLE, key, klen)
                 : storage_batch_kv_put(b, TABLE, key, klen, val, vlen);
    if (rc != 0) {
        storage_batch_destroy(b);
        return rc;
    }
    return storage_submit(st, b, NULL, NULL);
}

static int put(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    return submit_one(ctx, key, klen, val, vlen, false);
}

static int del(void *ctx, const void *key, size_t klen)
{
    return submit_one(ctx, key, klen, NULL, 0, true);
}

static int scan(void *ctx, engine_outbox_scan_fn fn, void *arg)
{
    storage_reader *r;
    int rc = storage_reader_open(ctx, &r);
    if (rc != 0)
        return rc;
    rc = storage_kv_scan(r, TABLE, NULL, 0, fn, arg);
    storage_reader_close(r);
    return rc;
}

void engine_outbox_storage(storage *st, engine_outbox_ops *out)
{
    *out = (engine_outbox_ops){st, batch_put, put, del, scan};
}

/* ---- Subscriptions ------------------------------------------------------------------- */

#define SUBS_TABLE "subscriptions"

int engine_subs_store_put(storage_batch *b, const char *name, const char *csv, size_t len)
{
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen > 255)
        return -EINVAL;
    return storage_batch_kv_put(b, SUBS_TABLE, name, nlen, csv, len);
}

int engine_subs_store_del(storage_batch *b, const char *name)
{
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen > 255)
        return -EINVAL;
    return storage_batch_kv_del(b, SUBS_TABLE, name, nlen);
}

typedef struct load_ctx {
    engine_subs *s;
    engine_subs_error_fn fn;
    void *arg;
    size_t nbad;
    int rc;
} load_ctx;

static int load_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    load_ctx *c = arg;
    char name[256];
    size_t n = klen < sizeof name - 1 ? klen : sizeof name - 1;
    memcpy(name, key, n);
    name[n] = '\0';
    size_t bad = 0;
    c->rc = engine_subs_parse_csv(c->s, name, val, vlen, c->fn, c->arg, &bad);
    c->nbad += bad;
    return c->rc;
}

int engine_subs_store_load(storage *st, engine_subs *s, engine_subs_error_fn fn, void *arg,
                           size_t *nbad)
{
    storage_reader *r;
    int rc = storage_reader_open(st, &r);
    if (rc != 0)
        return rc;
    load_ctx c = {s, fn, arg, 0, 0};
    rc = storage_kv_scan(r, SUBS_TABLE, NULL, 0, load_one, &c);
    storage_reader_close(r);
    if (nbad)
        *nbad = c.nbad;
    return rc < 0 ? rc : c.rc;
}
