/* bytebuf.h: internal to engine/. A growable byte writer and a bounds-checked reader for
 * the engine's own binary records (the registry kept in the store, saved detector state):
 * little-endian integers, IEEE doubles by their bits, strings as a length byte and bytes.
 * A writer that runs out of memory and a reader that runs past its end or meets a malformed
 * string set a flag instead of failing each call, so encoders and decoders check once. */
#ifndef PLUME_ENGINE_BYTEBUF_H
#define PLUME_ENGINE_BYTEBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static inline void put(wbuf *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

static inline void put_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

static inline void put_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static inline void put_u8(wbuf *w, uint8_t v) { put(w, &v, 1); }

static inline void put_str(wbuf *w, const char *s)
{
    size_t n = strlen(s); /* every field is < 256 bytes */
    put_u8(w, (uint8_t)n);
    put(w, s, n);
}

static inline void put_f64(wbuf *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(w, v);
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n, at;
    bool bad;
} rbuf;

static inline const uint8_t *take(rbuf *b, size_t n)
{
    if (b->bad || b->n - b->at < n) {
        b->bad = true;
        return NULL;
    }
    const uint8_t *p = b->p + b->at;
    b->at += n;
    return p;
}

static inline uint64_t get_u64(rbuf *b)
{
    const uint8_t *p = take(b, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint32_t get_u32(rbuf *b)
{
    const uint8_t *p = take(b, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24
             : 0;
}

static inline uint8_t get_u8(rbuf *b)
{
    const uint8_t *p = take(b, 1);
    return p ? *p : 0;
}

static inline double get_f64(rbuf *b)
{
    uint64_t v = get_u64(b);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* Copies a length-prefixed string into dst of size bytes; a string that does not fit, or
 * holds a NUL, makes the buffer bad. */
static inline void get_str(rbuf *b, char *dst, size_t size)
{
    size_t n = get_u8(b);
    const uint8_t *p = take(b, n);
    if (!p || n >= size || memchr(p, 0, n)) {
        b->bad = true;
        dst[0] = 0;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = 0;
}

#endif
