/* chunk.h: internal to storage/. The encoding of one series' points in one time window.
 *
 * A chunk is the unit LMDB stores: the points of one series whose timestamps fall in one
 * window, as compressed columns (timestamps, each present value column, the data flag) with
 * a header of aggregates over the AVG column so that range aggregates and chart downsampling
 * can skip decoding chunks that lie wholly inside a bucket. Values are lossless: each double
 * decodes to the very bits it was encoded from. The byte layout is in FORMAT.md.
 *
 * Everything here is pure computation on memory: no LMDB, no threads, no allocation except
 * growing the caller's chunk_buf.
 */
#ifndef PLUME_STORAGE_CHUNK_H
#define PLUME_STORAGE_CHUNK_H

#include "storage.h"

/* The most points one chunk may hold. */
#define CHUNK_MAX_POINTS (1u << 20)

/* A growable byte buffer; owned by the caller, freed with free(data). */
typedef struct chunk_buf {
    uint8_t *data;
    size_t len, cap;
} chunk_buf;

/* Aggregates over the AVG column of a chunk (points without AVG are not counted). */
typedef struct chunk_agg {
    uint32_t count;
    double sum, sumsq, min, max, first, last;
    int64_t min_ts, max_ts, first_ts, last_ts;
} chunk_agg;

/* What the header tells without decoding the columns. */
typedef struct chunk_info {
    uint32_t npoints;     /* points in the chunk */
    int64_t first_ts;     /* first and last timestamp of any point */
    int64_t last_ts;
    uint8_t colmask;      /* union of the columns present */
    chunk_agg agg;        /* over the AVG column */
} chunk_info;

/* Encodes n points, sorted by strictly increasing ts, 1 <= n <= CHUNK_MAX_POINTS, appending
 * the chunk to out (out->len grows). Returns 0, -EINVAL (unsorted, empty, too many, a point
 * with mask 0), or -ENOMEM. */
int chunk_encode(const storage_point *pts, size_t n, chunk_buf *out);

/* Reads the header of a chunk. STORAGE_ECORRUPT if it is malformed. Cheap: O(1). */
int chunk_info_read(const void *data, size_t len, chunk_info *info);

/* Decodes every point into pts (capacity cap >= info.npoints) and sets *n.
 * STORAGE_ECORRUPT if the chunk is malformed, -ERANGE if cap is too small. Never reads
 * outside [data, data + len) whatever the bytes. */
int chunk_decode(const void *data, size_t len, storage_point *pts, size_t cap, size_t *n);

/* Decodes only timestamps, one column and the flags: the fast path for charts and
 * aggregates. Points lacking col are skipped. ts and v (and flags, if not NULL) must hold
 * cap entries. */
int chunk_decode_col(const void *data, size_t len, int col, int64_t *ts, double *v,
                     uint8_t *flags, size_t cap, size_t *n);

/* The aggregates exactly as the encoder computes them, for checks that compare a decoded
 * chunk with its header. count counts points with AVG; sum and sumsq add every AVG value in
 * time order (a NaN makes them NaN); min and max ignore NaN (NaN only when every value is
 * NaN) and their _ts is the first point reaching them; first and last are the first and
 * last AVG values, whatever they are. chunk_agg_add folds in one value after
 * chunk_agg_init. */
void chunk_agg_init(chunk_agg *a);
void chunk_agg_add(chunk_agg *a, int64_t ts, double v);
int chunk_agg_compute(const storage_point *pts, size_t n, chunk_agg *a);

/* Frees the buffer's memory and zeroes it. */
void chunk_buf_free(chunk_buf *b);

#endif
