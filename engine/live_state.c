/* live_state.c: what the engine knows about each device's live data, as bytes in the store.
 *
 * Finding alerts must reach a regulator exactly once per run, across a kill -9 too. Their
 * ids come from the run's start, and a run's start, length and whether it fired live in
 * memory (findings.c), as does the silence state and the hour the device's minutes are in
 * (rollup_live.c). So each device's state is written to the "live" table in the same commit
 * as the data that changed it, beside the alerts that change raised: after a crash the store
 * holds exactly the state that the committed data and alerts gave, and the devices resend
 * what was not acknowledged. The record is small (a few hundred bytes; the O2 baseline is
 * most of it) and written at most a few times per device and hour: when its minutes move
 * to a new hour, when a reported hour is judged, when a computed hour is compared, and
 * when a silence fires or ends. See RULES.md, "Live findings across restarts".
 *
 * Record (little-endian): "PLLS", version byte, newest_end, silent_start, open_hour,
 * last_min_ts, min_step (int64 each), the minute codes (count byte, length-prefixed
 * strings), a byte saying whether the checks' state follows, then fwatch_encode's bytes.
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
    o->newest_end = (int64_t)get_u64(&b);
    o->silent_start = (int64_t)get_u64(&b);
    o->open_hour = (int64_t)get_u64(&b);
    o->last_min_ts = (int64_t)get_u64(&b);
    o->min_step = (int64_t)get_u64(&b);
    o->ncodes = get_u8(&b);
    if (o->ncodes > LIVE_MAX_MIN_CODES || o->min_step < 0 || o->min_step > 3600)
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
