/* test_mb_codec.c: Modbus register decoding in every type and byte order against byte
 * layouts written out by hand, encode/decode round trips, scale and offset, and read plans
 * (merging adjacent registers, gaps, tables, the 125-register limit). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "mb.h"
#include "tap.h"

/* Registers from bytes as they travel on the wire (each register big-endian). */
static void regs_from_bytes(const uint8_t *b, int nwords, uint16_t *w)
{
    for (int i = 0; i < nwords; i++)
        w[i] = (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
}

/* The wire bytes of a value whose big-endian bytes are be[0..n) in the given order. */
static void layout(const uint8_t *be, int nbytes, int order, uint8_t *out)
{
    int nw = nbytes / 2;
    for (int i = 0; i < nw; i++) {
        int src = (order == MB_CDAB || order == MB_DCBA) ? nw - 1 - i : i;
        uint8_t hi = be[2 * src], lo = be[2 * src + 1];
        if (order == MB_BADC || order == MB_DCBA) {
            out[2 * i] = lo;
            out[2 * i + 1] = hi;
        } else {
            out[2 * i] = hi;
            out[2 * i + 1] = lo;
        }
    }
}

static void check_value(int type, int order, const uint8_t *be, int nbytes, double want)
{
    uint8_t wire[8];
    uint16_t w[4];
    layout(be, nbytes, order, wire);
    regs_from_bytes(wire, nbytes / 2, w);
    double got = NAN;
    int rc = mb_decode_raw(w, type, order, &got);
    CHECK_EQ_INT(rc, 0);
    tap_ok(got == want, "decoded value", __FILE__, __LINE__);
    if (got != want)
        printf("#   %s %s: got %.17g want %.17g\n", mb_type_name(type), mb_order_name(order),
               got, want);
    uint16_t back[4] = {0};
    mb_encode_raw(want, type, order, back);
    CHECK(memcmp(back, w, (size_t)nbytes) == 0);
}

static void test_orders(void)
{
    /* Spelled out once: 0x41 0x20 0x00 0x00 (float 10.0) as registers in each order. */
    uint16_t abcd[2] = {0x4120, 0x0000}, cdab[2] = {0x0000, 0x4120};
    uint16_t badc[2] = {0x2041, 0x0000}, dcba[2] = {0x0000, 0x2041};
    double v;
    CHECK(mb_decode_raw(abcd, MB_FLOAT32, MB_ABCD, &v) == 0 && v == 10.0);
    CHECK(mb_decode_raw(cdab, MB_FLOAT32, MB_CDAB, &v) == 0 && v == 10.0);
    CHECK(mb_decode_raw(badc, MB_FLOAT32, MB_BADC, &v) == 0 && v == 10.0);
    CHECK(mb_decode_raw(dcba, MB_FLOAT32, MB_DCBA, &v) == 0 && v == 10.0);
    /* The same registers read in a wrong order give another number. */
    CHECK(mb_decode_raw(abcd, MB_FLOAT32, MB_CDAB, &v) == 0 && v != 10.0);

    for (int order = 0; order < MB_NORDERS; order++) {
        uint8_t i16[2] = {0xff, 0x38};                 /* -200 */
        check_value(MB_INT16, order, i16, 2, -200);
        uint8_t u16[2] = {0xfd, 0xe8};                 /* 65000 */
        check_value(MB_UINT16, order, u16, 2, 65000);
        uint8_t i32[4] = {0xff, 0xfe, 0x1d, 0xc0};     /* -123456 */
        check_value(MB_INT32, order, i32, 4, -123456);
        uint8_t u32[4] = {0xf0, 0x00, 0x00, 0x01};     /* 4026531841 */
        check_value(MB_UINT32, order, u32, 4, 4026531841.0);
        uint8_t f32[4] = {0x41, 0xbb, 0x99, 0x9a};     /* 23.45f */
        check_value(MB_FLOAT32, order, f32, 4, (double)23.45f);
        uint8_t f64[8] = {0x40, 0x37, 0x73, 0x33, 0x33, 0x33, 0x33, 0x33}; /* 23.45 */
        check_value(MB_FLOAT64, order, f64, 8, 23.45);
        uint8_t neg64[8] = {0xc0, 0x8f, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00}; /* -1000 */
        check_value(MB_FLOAT64, order, neg64, 8, -1000.0);
    }
}

static void test_bad(void)
{
    uint16_t nan32[2] = {0x7fc0, 0x0000}, inf32[2] = {0x7f80, 0x0000};
    double v;
    CHECK_EQ_INT(mb_decode_raw(nan32, MB_FLOAT32, MB_ABCD, &v), -ERANGE);
    CHECK_EQ_INT(mb_decode_raw(inf32, MB_FLOAT32, MB_ABCD, &v), -ERANGE);
    CHECK_EQ_INT(mb_decode_raw(nan32, 99, MB_ABCD, &v), -EINVAL);
    CHECK_EQ_INT(mb_decode_raw(nan32, MB_INT16, 7, &v), -EINVAL);
    CHECK_EQ_INT(mb_type_words(MB_FLOAT64), 4);
    CHECK_EQ_INT(mb_type_parse("Float32"), MB_FLOAT32);
    CHECK_EQ_INT(mb_order_parse("cdab"), MB_CDAB);
    CHECK_EQ_INT(mb_table_parse("coil"), -1);
    CHECK_EQ_STR(mb_order_name(MB_BADC), "BADC");
}

static void test_register_value(void)
{
    mb_register r = {.code = "a21026", .type = MB_INT16, .order = MB_ABCD, .address = 12,
                     .scale = 0.1, .offset = -5};
    uint16_t block[4] = {0, 0, 300, 0}; /* block starts at 10: register 12 holds 300 */
    double v;
    CHECK_EQ_INT(mb_register_value(&r, block, 10, 4, &v), 0);
    CHECK(fabs(v - 25.0) < 1e-12);
    r.type = MB_FLOAT32;
    r.address = 13; /* needs 13 and 14: past the block */
    CHECK_EQ_INT(mb_register_value(&r, block, 10, 4, &v), -ERANGE);
    r.address = 9;
    CHECK_EQ_INT(mb_register_value(&r, block, 10, 4, &v), -ERANGE);
}

static mb_register reg(int table, int address, int type)
{
    mb_register r = {.table = (uint8_t)table, .type = (uint8_t)type, .address = (uint16_t)address,
                     .scale = 1};
    snprintf(r.code, sizeof r.code, "c%d_%d", table, address);
    return r;
}

static void test_plan(void)
{
    mb_block b[16];
    size_t n;
    /* Out of order, adjacent floats and an int16 right after: one request of 7 registers. */
    mb_register r1[] = {reg(0, 4, MB_FLOAT32), reg(0, 0, MB_FLOAT32), reg(0, 2, MB_FLOAT32),
                        reg(0, 6, MB_INT16)};
    CHECK_EQ_INT(mb_plan(r1, 4, MB_MAX_READ, 0, b, 16, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(b[0].start, 0);
    CHECK_EQ_INT(b[0].count, 7);
    CHECK_EQ_INT(b[0].first, 0);
    CHECK_EQ_INT(b[0].n, 4);
    CHECK_EQ_INT(r1[0].address, 0); /* sorted */
    CHECK_EQ_INT(r1[3].address, 6);

    /* A gap of 3 registers splits, unless max_gap allows it; tables never merge. */
    mb_register r2[] = {reg(0, 0, MB_FLOAT32), reg(0, 5, MB_FLOAT32), reg(1, 7, MB_UINT16)};
    CHECK_EQ_INT(mb_plan(r2, 3, MB_MAX_READ, 0, b, 16, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(mb_plan(r2, 3, MB_MAX_READ, 3, b, 16, &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(b[0].count, 7);
    CHECK_EQ_INT(b[1].table, MB_INPUT);
    CHECK_EQ_INT(b[1].start, 7);

    /* Overlapping registers (the same words read as two types) share the request. */
    mb_register r3[] = {reg(0, 10, MB_FLOAT64), reg(0, 12, MB_FLOAT32)};
    CHECK_EQ_INT(mb_plan(r3, 2, MB_MAX_READ, 0, b, 16, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(b[0].count, 4);

    /* 100 adjacent float32 (200 registers): 125 at most per request, no value cut. */
    mb_register r4[100];
    for (int i = 0; i < 100; i++)
        r4[i] = reg(0, 2 * i, MB_FLOAT32);
    CHECK_EQ_INT(mb_plan(r4, 100, MB_MAX_READ, 0, b, 16, &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(b[0].count, 124);
    CHECK_EQ_INT(b[0].n, 62);
    CHECK_EQ_INT(b[1].start, 124);
    CHECK_EQ_INT(b[1].count, 76);
    /* A smaller cap, and too few blocks. */
    CHECK_EQ_INT(mb_plan(r4, 100, 10, 0, b, 16, &n), -ERANGE);
    CHECK_EQ_INT(mb_plan(r4, 10, 10, 0, b, 16, &n), 0);
    CHECK_EQ_INT(n, 2);
    /* A value past the last address. */
    mb_register r5[] = {reg(0, 65535, MB_FLOAT32)};
    CHECK_EQ_INT(mb_plan(r5, 1, MB_MAX_READ, 0, b, 16, &n), -EINVAL);
}

int main(void)
{
    test_orders();
    test_bad();
    test_register_value();
    test_plan();
    return tap_done();
}
