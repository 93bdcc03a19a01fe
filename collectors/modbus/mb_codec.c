/* mb_codec.c: what Modbus registers mean. A register holds 16 bits; analyzers spread a
 * 32- or 64-bit value over two or four of them in whatever order their firmware chose, and
 * "the float reads as garbage" is the most common Modbus support question. The decoding
 * here is explicit and total: every type in every byte order, checked by unit tests and by
 * an independent server in the integration test. The read plan turns a template's
 * registers into the fewest requests the protocol allows, so a device with twelve values
 * costs one round trip, not twelve. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mb.h"

static const char *const table_names[] = {"holding", "input"};
static const char *const type_names[] = {"int16", "uint16", "int32", "uint32", "float32",
                                         "float64"};
static const char *const order_names[] = {"ABCD", "CDAB", "BADC", "DCBA"};

static int parse_name(const char *s, const char *const *names, int n)
{
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *mb_table_name(int t) { return t >= 0 && t < 2 ? table_names[t] : "?"; }
const char *mb_type_name(int t) { return t >= 0 && t < MB_NTYPES ? type_names[t] : "?"; }
const char *mb_order_name(int o) { return o >= 0 && o < MB_NORDERS ? order_names[o] : "?"; }
int mb_table_parse(const char *s) { return parse_name(s, table_names, 2); }
int mb_type_parse(const char *s) { return parse_name(s, type_names, MB_NTYPES); }
int mb_order_parse(const char *s) { return parse_name(s, order_names, MB_NORDERS); }

int mb_type_words(int type)
{
    switch (type) {
    case MB_INT16: case MB_UINT16: return 1;
    case MB_INT32: case MB_UINT32: case MB_FLOAT32: return 2;
    case MB_FLOAT64: return 4;
    default: return 0;
    }
}

/* The value's bytes, most significant first, from n words in the byte order: words are
 * taken last-first when the word order is swapped (CDAB, DCBA), and each word's two bytes
 * are swapped in BADC and DCBA. */
static uint64_t gather(const uint16_t *w, int n, int order)
{
    bool word_rev = order == MB_CDAB || order == MB_DCBA;
    bool byte_swap = order == MB_BADC || order == MB_DCBA;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        uint16_t x = w[word_rev ? n - 1 - i : i];
        if (byte_swap)
            x = (uint16_t)((x >> 8) | (x << 8));
        v = (v << 16) | x;
    }
    return v;
}

static void scatter(uint64_t v, int n, int order, uint16_t *w)
{
    bool word_rev = order == MB_CDAB || order == MB_DCBA;
    bool byte_swap = order == MB_BADC || order == MB_DCBA;
    for (int i = n - 1; i >= 0; i--) {
        uint16_t x = (uint16_t)(v & 0xffff);
        v >>= 16;
        if (byte_swap)
            x = (uint16_t)((x >> 8) | (x << 8));
        w[word_rev ? n - 1 - i : i] = x;
    }
}

int mb_decode_raw(const uint16_t *words, int type, int order, double *out)
{
    int n = mb_type_words(type);
    if (n == 0 || order < 0 || order >= MB_NORDERS)
        return -EINVAL;
    uint64_t v = gather(words, n, order);
    switch (type) {
    case MB_INT16: *out = (int16_t)(uint16_t)v; return 0;
    case MB_UINT16: *out = (uint16_t)v; return 0;
    case MB_INT32: *out = (int32_t)(uint32_t)v; return 0;
    case MB_UINT32: *out = (uint32_t)v; return 0;
    case MB_FLOAT32: {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, sizeof f);
        *out = f;
        break;
    }
    default: {
        double d;
        memcpy(&d, &v, sizeof d);
        *out = d;
        break;
    }
    }
    return isfinite(*out) ? 0 : -ERANGE;
}

static int64_t clamp_round(double v, double lo, double hi)
{
    if (!(v == v))
        return 0;
    v = v < lo ? lo : v > hi ? hi : v;
    return (int64_t)llround(v);
}

void mb_encode_raw(double v, int type, int order, uint16_t *words)
{
    uint64_t u = 0;
    switch (type) {
    case MB_INT16: u = (uint16_t)(int16_t)clamp_round(v, INT16_MIN, INT16_MAX); break;
    case MB_UINT16: u = (uint16_t)clamp_round(v, 0, UINT16_MAX); break;
    case MB_INT32: u = (uint32_t)(int32_t)clamp_round(v, INT32_MIN, INT32_MAX); break;
    case MB_UINT32: u = (uint32_t)clamp_round(v, 0, UINT32_MAX); break;
    case MB_FLOAT32: {
        float f = (float)v;
        uint32_t x;
        memcpy(&x, &f, sizeof x);
        u = x;
        break;
    }
    case MB_FLOAT64: memcpy(&u, &v, sizeof u); break;
    default: return;
    }
    scatter(u, mb_type_words(type), order, words);
}

int mb_register_value(const mb_register *r, const uint16_t *block, uint16_t block_start,
                      uint16_t block_count, double *out)
{
    int n = mb_type_words(r->type);
    if (n == 0)
        return -EINVAL;
    if (r->address < block_start || (unsigned)r->address + (unsigned)n >
                                         (unsigned)block_start + (unsigned)block_count)
        return -ERANGE;
    double raw;
    int rc = mb_decode_raw(block + (r->address - block_start), r->type, r->order, &raw);
    if (rc != 0)
        return rc;
    *out = raw * r->scale + r->offset;
    return isfinite(*out) ? 0 : -ERANGE;
}

static int cmp_reg(const void *a, const void *b)
{
    const mb_register *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    return 0;
}

int mb_plan(mb_register *regs, size_t n, unsigned max_count, unsigned max_gap, mb_block *out,
            size_t cap, size_t *nblocks)
{
    if (max_count == 0 || max_count > MB_MAX_READ)
        max_count = MB_MAX_READ;
    for (size_t i = 0; i < n; i++) {
        unsigned w = (unsigned)mb_type_words(regs[i].type);
        if (w == 0 || regs[i].address + w > 65536u || w > max_count || regs[i].table > 1)
            return -EINVAL;
    }
    qsort(regs, n, sizeof *regs, cmp_reg);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        const mb_register *r = &regs[i];
        unsigned end = r->address + (unsigned)mb_type_words(r->type); /* exclusive */
        if (nb > 0) {
            mb_block *b = &out[nb - 1];
            unsigned bend = (unsigned)b->start + b->count;
            unsigned new_end = end > bend ? end : bend;
            if (b->table == r->table && r->address <= bend + max_gap &&
                new_end - b->start <= max_count) {
                b->count = (uint16_t)(new_end - b->start);
                b->n++;
                continue;
            }
        }
        if (nb == cap)
            return -ERANGE;
        out[nb++] = (mb_block){.table = r->table, .start = r->address,
                               .count = (uint16_t)(end - r->address), .first = (uint16_t)i,
                               .n = 1};
    }
    *nblocks = nb;
    return 0;
}
