/* test_hj212_crc.c: the two CRCs against their check values and the standard's worked
 * example, and the classification of every CRC variant devices send. */
#include <stdio.h>
#include <string.h>

#include "hj212.h"
#include "tap.h"

static const char annex_a[] = "QN=20160801085857223;ST=32;CN=1062;PW=100000;"
                              "MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";

/* The definitions, bit by bit, to check the table-driven code against. */
static uint16_t crc_bitwise(const uint8_t *p, size_t len, bool modbus)
{
    uint16_t r = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        r = modbus ? (uint16_t)(r ^ p[i]) : (uint16_t)((r >> 8) ^ p[i]);
        for (int k = 0; k < 8; k++)
            r = r & 1 ? (uint16_t)((r >> 1) ^ 0xA001) : (uint16_t)(r >> 1);
    }
    return r;
}

static void test_against_definition(void)
{
    uint8_t buf[300] = {0};
    uint32_t x = 12345;
    bool same = true;
    for (size_t len = 0; len <= sizeof buf; len++) {
        for (size_t i = 0; i < len; i++) {
            x = x * 1664525 + 1013904223;
            buf[i] = (uint8_t)(x >> 24);
        }
        /* every length, and every alignment of the eight-byte rounds */
        size_t off = len % 8 < len ? len % 8 : 0;
        same = same && hj212_crc(buf, len) == crc_bitwise(buf, len, false) &&
               hj212_crc(buf + off, len - off) == crc_bitwise(buf + off, len - off, false) &&
               hj212_crc_modbus(buf, len) == crc_bitwise(buf, len, true);
    }
    CHECK(same);
}

static int classify(const char *seg, const char *crc)
{
    return hj212_crc_classify(seg, strlen(seg), crc, crc ? strlen(crc) : 0);
}

int main(void)
{
    test_against_definition();
    CHECK_EQ_INT(hj212_crc("123456789", 9), 0x2F80);
    CHECK_EQ_INT(hj212_crc_modbus("123456789", 9), 0x4B37);
    CHECK_EQ_INT(hj212_crc("", 0), 0xFFFF);
    CHECK_EQ_INT(hj212_crc(annex_a, strlen(annex_a)), 0x1C80);
    CHECK_EQ_INT(strlen(annex_a), 101);

    /* The Annex A segment's MODBUS CRC is all digits; "CN=1" has letters in both halves. */
    CHECK_EQ_INT(classify(annex_a, "1C80"), HJ212_CRC_OK);
    CHECK_EQ_INT(classify(annex_a, "1c80"), HJ212_CRC_LOWER);
    const char *seg = "CN=1";
    uint16_t mb = hj212_crc_modbus(seg, strlen(seg));
    CHECK_EQ_INT(mb, 0xF3A4);
    char up[5], sw[5], lo[5], swlo[5];
    snprintf(up, sizeof up, "%04X", mb);
    snprintf(sw, sizeof sw, "%02X%02X", mb & 0xFF, mb >> 8);
    snprintf(lo, sizeof lo, "%04x", mb);
    snprintf(swlo, sizeof swlo, "%02x%02x", mb & 0xFF, mb >> 8);

    CHECK_EQ_INT(classify(seg, up), HJ212_CRC_MODBUS);
    CHECK_EQ_INT(classify(seg, sw), HJ212_CRC_MODBUS_SWAPPED);
    CHECK_EQ_INT(classify(seg, lo), HJ212_CRC_MODBUS_LOWER);
    CHECK_EQ_INT(classify(seg, swlo), HJ212_CRC_MODBUS_LOWER);
    CHECK_EQ_INT(classify(annex_a, "0C25"), HJ212_CRC_WRONG);
    CHECK_EQ_INT(classify(annex_a, "1C08"), HJ212_CRC_WRONG); /* the typo in the prose */
    CHECK_EQ_INT(classify(annex_a, "801C"), HJ212_CRC_WRONG); /* standard CRC swapped */
    CHECK_EQ_INT(classify(annex_a, NULL), HJ212_CRC_MISSING);
    CHECK_EQ_INT(classify(annex_a, ""), HJ212_CRC_MISSING);
    CHECK_EQ_INT(classify(annex_a, "1C8"), HJ212_CRC_MISSING);
    CHECK_EQ_INT(classify(annex_a, "1C8G"), HJ212_CRC_MISSING);
    CHECK_EQ_INT(classify(annex_a, "1C800"), HJ212_CRC_MISSING);

    /* A CRC of digits only is upper case: 3240 is the 9014 example's. */
    const char *ack = "QN=20160801085857223;ST=91;CN=9014;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=4;CP=&&&&";
    CHECK_EQ_INT(classify(ack, "3240"), HJ212_CRC_OK);

    CHECK_EQ_STR(hj212_crc_kind_name(HJ212_CRC_OK), "ok");
    CHECK_EQ_STR(hj212_crc_kind_name(HJ212_CRC_MODBUS_SWAPPED), "modbus_swapped");
    CHECK_EQ_STR(hj212_crc_kind_name(HJ212_CRC_MISSING), "missing");
    CHECK_EQ_STR(hj212_crc_kind_name(99), "unknown");
    return tap_done();
}
