/* hj212_crc.c: the checksum of HJ 212 packets, and the wrong checksums devices send.
 *
 * The standard's CRC looks like CRC-16/MODBUS (same reflected polynomial 0xA001, same start
 * 0xFFFF) but feeds each byte differently: R = (R >> 8) ^ b instead of R ^= b. Many DAQ
 * vendors implemented MODBUS instead, some print it byte-swapped or in lower case, some
 * send garbage. The server decides per device what to accept, so this file tells the
 * variants apart rather than answering only yes or no. Both CRCs use one table: after
 * R = (R >> 8) ^ b the register holds a single byte, whose eight shifts are table[byte].
 * The standard CRC runs on every packet, so it takes eight bytes per round (see
 * hj212_crc_table.h): a byte-wise table CRC is a chain of dependent loads, ~5x slower. */
#include "hj212.h"
#include "hj212_crc_table.h"

uint16_t hj212_crc(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint16_t r = 0xFFFF;
    for (; len >= 8; p += 8, len -= 8)
        r = crc_slice[7][(r >> 8) ^ p[0]] ^ crc_slice[6][p[1]] ^ crc_slice[5][p[2]] ^
            crc_slice[4][p[3]] ^ crc_slice[3][p[4]] ^ crc_slice[2][p[5]] ^
            crc_slice[1][p[6]] ^ crc_slice[0][p[7]];
    while (len--)
        r = crc_slice[0][(r >> 8) ^ *p++];
    return r;
}

uint16_t hj212_crc_modbus(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint16_t r = 0xFFFF;
    for (size_t i = 0; i < len; i++)
        r = (uint16_t)((r >> 8) ^ crc_slice[0][(r ^ p[i]) & 0xFF]);
    return r;
}

/* Value of one hex digit, or -1; *lower is set when the digit is a lower-case letter. */
static int hex_digit(char c, bool *lower)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') {
        *lower = true;
        return c - 'a' + 10;
    }
    return -1;
}

int hj212_crc_classify(const char *seg, size_t seg_len, const char *crc, size_t crc_len)
{
    if (!crc || crc_len != 4)
        return HJ212_CRC_MISSING;
    bool lower = false;
    unsigned sent = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(crc[i], &lower);
        if (d < 0)
            return HJ212_CRC_MISSING;
        sent = sent << 4 | (unsigned)d;
    }
    if (sent == hj212_crc(seg, seg_len))
        return lower ? HJ212_CRC_LOWER : HJ212_CRC_OK;
    uint16_t mb = hj212_crc_modbus(seg, seg_len);
    uint16_t swapped = (uint16_t)(mb << 8 | mb >> 8);
    if (sent == mb || sent == swapped) {
        if (lower)
            return HJ212_CRC_MODBUS_LOWER;
        return sent == mb ? HJ212_CRC_MODBUS : HJ212_CRC_MODBUS_SWAPPED;
    }
    return HJ212_CRC_WRONG;
}

const char *hj212_crc_kind_name(int kind)
{
    static const char *const names[HJ212_CRC_NKINDS] = {
        "ok", "lower", "modbus", "modbus_swapped", "modbus_lower", "wrong", "missing",
    };
    return kind >= 0 && kind < HJ212_CRC_NKINDS ? names[kind] : "unknown";
}

const char *hj212_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case HJ212_ESYNTAX: return "malformed HJ 212 data segment";
    case HJ212_ETOOMANY: return "too many fields in HJ 212 packet";
    case HJ212_ERANGE: return "HJ 212 output does not fit";
    default: return code < 0 && code > -4096 ? "system error" : "unknown error";
    }
}
