/* wal.c: the write-ahead log. Each group commit appends one record to the wal table under
 * the next sequence number (big-endian, so MDB_APPEND applies) holding every point of the
 * group; a checkpoint seals the head into chunks and empties the table in the same
 * transaction. At open the records are replayed, in order, into the head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

#define WAL_REC_FIXED 14 /* u32 sid | i64 ts | u8 mask | u8 flag, then the present values */

int storage__wal_append(storage *st, MDB_txn *txn, storage_batch *const *jobs, size_t njobs,
                        uint64_t *seq, uint64_t *npoints)
{
    size_t len = 0, np = 0;
    for (size_t j = 0; j < njobs; j++) {
        len += jobs[j]->n * WAL_REC_FIXED + jobs[j]->nv * 8;
        np += jobs[j]->n;
    }
    *npoints = np;
    if (np == 0)
        return 0;
    uint8_t kb[8];
    uint64_t s = st->wal_seq + 1;
    for (int i = 0; i < 8; i++)
        kb[i] = (uint8_t)(s >> (56 - 8 * i));
    MDB_val k = {8, kb}, v = {len, NULL};
    int rc = mdb_put(txn, st->dbi_wal, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc)
        return rc;
    uint8_t *p = v.mv_data;
    for (size_t j = 0; j < njobs; j++) {
        const storage_batch *b = jobs[j];
        for (size_t i = 0; i < b->n; i++) {
            const storage_bpoint *bp = &b->pts[i];
            memcpy(p, &bp->sid, 4);
            memcpy(p + 4, &bp->ts, 8);
            p[12] = bp->mask;
            p[13] = bp->flag;
            p += WAL_REC_FIXED;
            size_t nv = (size_t)__builtin_popcount(bp->mask);
            memcpy(p, b->vals + bp->voff, nv * 8);
            p += nv * 8;
        }
    }
    *seq = s;
    return 0;
}

static int replay_record(storage *st, const uint8_t *p, size_t len, uint64_t *np)
{
    const uint8_t *end = p + len;
    while (p < end) {
        if ((size_t)(end - p) < WAL_REC_FIXED)
            return STORAGE_ECORRUPT;
        uint32_t sid;
        int64_t ts;
        double vals[STORAGE_NCOLS];
        memcpy(&sid, p, 4);
        memcpy(&ts, p + 4, 8);
        uint8_t mask = p[12], flag = p[13];
        p += WAL_REC_FIXED;
        size_t nv = (size_t)__builtin_popcount(mask);
        if (sid == 0 || sid > st->nseries || (size_t)(end - p) < nv * 8 ||
            mask >= 1u << STORAGE_NCOLS)
            return STORAGE_ECORRUPT;
        memcpy(vals, p, nv * 8);
        p += nv * 8;
        int rc = storage__head_append(st, sid, ts, mask, flag, vals);
        if (rc)
            return rc;
        (*np)++;
    }
    return 0;
}

/* Called at open, before any other thread can see the store. */
int storage__wal_replay(storage *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->dbi_wal, &cur);
    if (rc)
        return storage__lmdb_err(rc);
    MDB_val k, v;
    uint64_t np = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = STORAGE_ECORRUPT;
            goto done;
        }
        uint64_t s = 0;
        for (int i = 0; i < 8; i++)
            s = s << 8 | ((const uint8_t *)k.mv_data)[i];
        st->wal_seq = s;
        if ((rc = replay_record(st, v.mv_data, v.mv_size, &np)))
            goto done;
    }
    rc = rc == MDB_NOTFOUND ? 0 : storage__lmdb_err(rc);
done:
    mdb_cursor_close(cur);
    st->wal_points = np;
    return rc;
}
