/* live_state.c: what the engine knows about each device's live data, as records in the store.
 *
 * Finding alerts must reach a regulator exactly once per run, across a kill -9 too. Their
 * ids come from the run's start, and a run's start, length and whether it fired live in
 * memory (findings.c), as does the silence state and the hour the device's minutes are in
 * (rollup_live.c). So each device's state is written to the "live" table in the same commit
 * as the data that changed it, beside the alerts that change raised: after a crash the store
 * holds exactly the state the committed data and alerts gave, and devices resend what was
 * not acknowledged. A record is a few hundred bytes (the O2 baseline is most of it) and is
 * written at most a few times per device and hour: when its minutes move to a new hour,
 * when a reported hour is judged, when a computed hour is compared, when a silence fires or
 * ends.
 *
 * Keys are a sequence number, so every write appends. Keyed by device, each top-of-hour
 * burst would rewrite ~300,000 records in random key order, dirtying a page per record per
 * commit: measured 12 s of writer time per hour for the national fleet, against 1.1 s for
 * appends (tools/bench/live_state). A device's older records are not deleted one by one
 * (random again) but in ranges: once as many records were written as there are devices,
 * the devices whose newest record lies before the previous such point are written again
 * (the silent ones, mostly), then that whole range of keys is deleted, a slice a second.
 * The table holds two to three records per device; a start reads it all and keeps each
 * device's newest.
 *
 * Key: the sequence number, 8 bytes big-endian. Value (little-endian): "PLLS", version byte,
 * MN (length byte and bytes), newest_end, silent_start, open_hour, last_min_ts, min_step
 * (int64 each), the minute codes (count byte, length-prefixed strings), a byte saying
 * whether the checks' state follows, then fwatch_encode's bytes.
 */
#include <errno.h>
#include <string.h>

#include "bytebuf.h"
#include "live.h"

#define MAGIC "PLLS"
#define VERSION 1

int live_state_encode(const lout *o, uint8_t **out, size_t *len)
{
    wbuf w = {0};
    put(&w, MAGIC, 4);
    put_u8(&w, VERSION);
    put_str(&w, o->mn);
    put_u64(&w, (uint64_t)o->newest_end);
    put_u64(&w, (uint64_t)o->silent_start);
    put_u64(&w, (uint64_t)o->open_hour);
    put_u64(&w, (uint64_t)o->last_min_ts);
    put_u64(&w, (uint64_t)o->min_step);
    put_u8(&w, (uint8_t)o->ncodes);
    for (uint32_t i = 0; i < o->ncodes; i++)
        put_str(&w, o->codes[i]);
    put_u8(&w, o->fw != NULL);
    if (o->fw)
        fwatch_encode(o->fw, &w);
    if (w.oom) {
        free(w.p);
        return -ENOMEM;
    }
    *out = w.p;
    *len = w.n;
    return 0;
}

int live_state_decode(const findings *f, const void *buf, size_t len, lout *o)
{
    rbuf b = {buf, len, 0, false};
    const uint8_t *magic = take(&b, 4);
    o->fw = NULL;
    if (!magic || memcmp(magic, MAGIC, 4) != 0 || get_u8(&b) != VERSION)
        return -EBADMSG;
    get_str(&b, o->mn, sizeof o->mn);
    if (b.bad || !o->mn[0])
        return -EBADMSG;
    o->newest_end = (int64_t)get_u64(&b);
    o->silent_start = (int64_t)get_u64(&b);
    o->open_hour = (int64_t)get_u64(&b);
    o->last_min_ts = (int64_t)get_u64(&b);
    o->min_step = (int64_t)get_u64(&b);
    o->ncodes = get_u8(&b);
    if (o->ncodes > LIVE_MAX_MIN_CODES || o->min_step < 0 || o->min_step > 3600 ||
        !fwatch_time_ok(o->newest_end) || !fwatch_time_ok(o->silent_start) ||
        !fwatch_time_ok(o->open_hour) || !fwatch_time_ok(o->last_min_ts))
        return -EBADMSG;
    for (uint32_t i = 0; i < o->ncodes; i++)
        get_str(&b, o->codes[i], sizeof o->codes[i]);
    uint8_t has_fw = get_u8(&b);
    if (b.bad || has_fw > 1)
        return -EBADMSG;
    if (has_fw) {
        int rc = fwatch_decode(f, &b, &o->fw);
        if (rc != 0)
            return rc;
    }
    if (b.at != b.n) {
        fwatch_destroy(o->fw);
        o->fw = NULL;
        return -EBADMSG;
    }
    o->last_group = NULL;
    o->last_key = 0;
    o->dirty = false;
    o->restored = true;
    o->saved_hour = o->newest_end == INT64_MIN ? INT64_MIN : o->newest_end / 3600;
    return 0;
}

/* ---- The table: appends, and pruning in ranges ------------------------------------------ */

#define PRUNE_SLICE 8192 /* devices carried, or keys deleted, per prune step */

struct live_log {
    uint64_t seq;        /* the next record's key */
    uint64_t low;        /* no device's newest record lies below */
    uint64_t epoch;      /* where the current epoch of writes began */
    uint64_t cut;        /* while pruning: records below go, once carried forward */
    size_t carry_pos;    /* while carrying: the next device to look at */
    uint64_t del_pos;    /* while deleting: the next key */
    int phase;           /* 0 idle, 1 carrying forward, 2 deleting */
};

static void key_of(uint64_t seq, uint8_t k[8])
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(seq >> (56 - 8 * i));
}

typedef struct restore_ctx {
    live_log *g;
    const findings *f;
    live_get_fn get;
    void *arg;
    size_t n, bad;
    bool any;
} restore_ctx;

static int restore_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    restore_ctx *x = arg;
    lout tmp;
    if (klen != 8) {
        x->bad++;
        return 0;
    }
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq << 8 | ((const uint8_t *)key)[i];
    if (!x->any)
        x->g->low = seq;
    x->any = true;
    x->g->seq = seq + 1;
    memset(&tmp, 0, sizeof tmp);
    if (live_state_decode(x->f, val, vlen, &tmp) != 0) {
        x->bad++;
        return 0;
    }
    lout *o = x->get(x->arg, tmp.mn);
    if (!o) {
        fwatch_destroy(tmp.fw);
        return -ENOMEM;
    }
    if (o->saved_seq == 0)
        x->n++;
    fwatch_destroy(o->fw); /* an older record of the same device */
    *o = tmp;
    o->saved_seq = seq;
    return 0;
}

int live_log_open(storage *st, const findings *f, live_get_fn get, void *arg, live_log **out,
                  size_t *restored, size_t *unreadable)
{
    storage_reader *rd;
    live_log *g = calloc(1, sizeof *g);
    *restored = *unreadable = 0;
    if (!g)
        return -ENOMEM;
    g->seq = g->low = 1;
    int rc = storage_reader_open(st, &rd);
    if (rc != 0) {
        free(g);
        return rc;
    }
    restore_ctx x = {g, f, get, arg, 0, 0, false};
    rc = storage_kv_scan(rd, LIVE_STATE_TABLE, NULL, 0, restore_one, &x);
    storage_reader_close(rd);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->epoch = g->seq;
    *restored = x.n;
    *unreadable = x.bad;
    *out = g;
    return 0;
}

void live_log_close(live_log *g)
{
    free(g);
}

int live_log_save(live_log *g, storage_batch *b, lout *o)
{
    uint8_t *buf, k[8];
    size_t len;
    int rc = live_state_encode(o, &buf, &len);
    if (rc != 0)
        return rc;
    key_of(g->seq, k);
    rc = storage_batch_kv_put(b, LIVE_STATE_TABLE, k, 8, buf, len);
    free(buf);
    if (rc == 0)
        o->saved_seq = g->seq++;
    return rc;
}

void live_log_prune_step(live_log *g, storage_batch *b, lout *const *outlets, size_t n)
{
    uint64_t epoch_len = n > 1024 ? n : 1024;
    if (g->phase == 0) {
        if (g->seq - g->epoch < epoch_len)
            return;
        g->cut = g->epoch;
        g->epoch = g->seq;
        g->carry_pos = 0;
        g->phase = 1;
    }
    if (g->phase == 1) {
        size_t end = g->carry_pos + PRUNE_SLICE < n ? g->carry_pos + PRUNE_SLICE : n;
        for (; g->carry_pos < end; g->carry_pos++) {
            lout *o = outlets[g->carry_pos];
            if (o->saved_seq && o->saved_seq < g->cut && live_log_save(g, b, o) != 0)
                return; /* out of memory: the next step tries this device again */
        }
        if (g->carry_pos < n)
            return;
        g->del_pos = g->low;
        g->phase = 2;
        return; /* deletes go in a later batch than the records carried forward */
    }
    uint64_t end = g->del_pos + PRUNE_SLICE < g->cut ? g->del_pos + PRUNE_SLICE : g->cut;
    for (; g->del_pos < end; g->del_pos++) {
        uint8_t k[8];
        key_of(g->del_pos, k);
        if (storage_batch_kv_del(b, LIVE_STATE_TABLE, k, 8) != 0)
            return;
    }
    if (g->del_pos == g->cut) {
        g->low = g->cut;
        g->phase = 0;
    }
}

uint64_t live_log_records(const live_log *g)
{
    return g->seq - g->low;
}
