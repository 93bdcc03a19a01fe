/* chunk_values.h: internal to storage/. One value column of a chunk, coded losslessly:
 * the doubles become exact integers at a decimal scale and a common factor, a predictor
 * takes out the trend, and the residuals go through the adaptive Rice code of bitio.h with
 * a run mode for stretches of zeros. Values the scale cannot express exactly are
 * exceptions, kept in a side list as a finer-scale correction or as raw bits. chunk.c
 * frames the columns; FORMAT.md has the byte layout. */
#ifndef PLUME_STORAGE_CHUNK_VALUES_H
#define PLUME_STORAGE_CHUNK_VALUES_H

#include <stddef.h>
#include <stdint.h>

#define VAL_DMAX 22   /* largest decimal scale: 10^22 is the last exact double power of 10 */
#define VAL_PREDS 5   /* predictors 0..4: q[i-1] + (q[i-1] - q[i-2]) * p / 4 */
#define VAL_EXC_RAW 0xff
#define VAL_EXC_ALT 0xfe

/* How a column is coded (the column's entry in the chunk header). */
typedef struct val_params {
    uint8_t d;          /* decimal scale: value = q * g / 10^d */
    uint8_t pred;       /* predictor, 0..VAL_PREDS-1 */
    uint64_t g;         /* common factor, >= 1 */
    int64_t q0;         /* the first value's integer (an exception's substitute if it is one) */
    uint32_t nexc;      /* exceptions */
    uint8_t d2;         /* with nexc: the exceptions' alternate scale, value = j * g2 / 10^d2 */
    uint64_t g2;        /* its factor; 1: no alternate scale */
    size_t stream_len;  /* bytes of the Rice stream */
    size_t exc_len;     /* bytes of the exception list */
} val_params;

/* Worst-case bytes val_encode writes for m values. */
size_t val_bound(size_t m);

/* Encodes m >= 1 values into out (room for val_bound(m) bytes): the stream, then the
 * exception list. Fills *vp. Returns 0 or -ENOMEM (scratch memory). */
int val_encode(const double *v, size_t m, uint8_t *out, val_params *vp);

/* Decodes m values from stream and exception bytes laid out as val_encode wrote them, into
 * out[k * stride_bytes] (doubles). Returns 0 or STORAGE_ECORRUPT. Never reads outside the
 * two given ranges. */
int val_decode(const val_params *vp, const uint8_t *stream, const uint8_t *exc, size_t m,
               double *out, size_t stride);

/* For the header's aggregates: a value as a small integer at the column's scale when it is
 * exactly one (returns 1 and sets *q), else 0. */
int val_to_q(const val_params *vp, double v, int64_t *q);
/* The inverse; 0, or -1 if q is out of the scale's exact range. */
int val_from_q(const val_params *vp, int64_t q, double *v);

/* Checks params read from a header: 0 if usable. */
int val_params_check(const val_params *vp);

#endif
