/* hj212.h: the HJ 212 codec, the one public header of collectors/hj212/.
 *
 * HJ 212 is how data acquisition units (DAQ) talk to monitoring platforms: text packets
 * "##" + 4-digit length + data segment + 4-hex CRC + CRLF over TCP. This module is pure
 * code with no sockets: a CRC (and the wrong CRCs devices send), a stream framer that cuts
 * packets out of arbitrary byte chunks, a parser that turns a data segment into fields, a
 * formatter for the packets a platform sends (acks, answers, requests) and a simulator
 * uploads, and the table of factor codes (2017 codes, their 2005 predecessors, names,
 * units). The wire format is described in PROTOCOL.md next to this header.
 *
 * Conventions as in storage.h: functions return 0 or a negative code (HJ212_E* or -errno),
 * results come back through out-parameters; nothing here logs, allocates per packet, or
 * keeps global state, so every function may be called from any thread on its own objects.
 */
#ifndef PLUME_HJ212_H
#define PLUME_HJ212_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    HJ212_ESYNTAX = -11001,  /* the data segment is not key=value;... with CP=&&...&& */
    HJ212_ETOOMANY = -11002, /* more factors or key/values than a hj212_packet holds */
    HJ212_ERANGE = -11003,   /* an output buffer is too small, or a length over 9999 */
};
const char *hj212_strerror(int code);

/* ---- CRC (hj212_crc.c) ------------------------------------------------------------- */

/* The CRC of the standard: R = 0xFFFF; per byte R = (R >> 8) ^ b, then 8 shifts with
 * 0xA001. "123456789" gives 0x2F80. */
uint16_t hj212_crc(const void *data, size_t len);

/* CRC-16/MODBUS (R ^= b; 8 shifts with 0xA001), which some devices send instead.
 * "123456789" gives 0x4B37. */
uint16_t hj212_crc_modbus(const void *data, size_t len);

/* What a packet's CRC field turned out to be. */
enum hj212_crc_kind {
    HJ212_CRC_OK = 0,          /* the standard CRC, upper-case hex (digits only count as upper) */
    HJ212_CRC_LOWER,           /* the standard CRC in lower-case hex */
    HJ212_CRC_MODBUS,          /* CRC-16/MODBUS, high byte first, upper case */
    HJ212_CRC_MODBUS_SWAPPED,  /* CRC-16/MODBUS, low byte first, upper case */
    HJ212_CRC_MODBUS_LOWER,    /* CRC-16/MODBUS in lower-case hex, either byte order */
    HJ212_CRC_WRONG,           /* four hex digits that match none of the above */
    HJ212_CRC_MISSING,         /* no CRC field, or not four hex digits */
    HJ212_CRC_NKINDS
};

/* Classifies the CRC field crc (crc_len bytes as sent) of the data segment seg. */
int hj212_crc_classify(const char *seg, size_t seg_len, const char *crc, size_t crc_len);

/* "ok", "lower", "modbus", "modbus_swapped", "modbus_lower", "wrong", "missing". */
const char *hj212_crc_kind_name(int kind);

/* ---- Framing (hj212_frame.c) ------------------------------------------------------- */

typedef struct hj212_framer hj212_framer; /* one per connection; opaque */

typedef struct hj212_framer_options {
    size_t max_segment_len; /* longest data segment accepted; 0: 8192, at most 9999. The
                               standard allows 1024; longer ones up to this cap are accepted
                               and counted. */
} hj212_framer_options;

/* hj212_frame.flags */
enum {
    HJ212_FRAME_LEN_MISMATCH = 1 << 0, /* the length field disagrees with the segment */
    HJ212_FRAME_NO_CR = 1 << 1,        /* the trailer ended in "\n" alone */
    HJ212_FRAME_NO_CRLF = 1 << 2,      /* no line end at all: the next "##" followed the CRC */
    HJ212_FRAME_OVER_1024 = 1 << 3,    /* the segment is longer than the standard's 1024 */
};

/* One packet cut from the stream. seg is borrowed from the framer: valid until the next
 * call of hj212_framer_feed(), hj212_framer_next() or hj212_framer_destroy(). */
typedef struct hj212_frame {
    const char *seg;      /* the data segment, not NUL-terminated */
    size_t seg_len;
    int declared_len;     /* the length field as sent */
    char crc_text[4];     /* the CRC field as sent (meaningful unless crc_kind is MISSING) */
    int crc_kind;         /* enum hj212_crc_kind */
    unsigned flags;       /* HJ212_FRAME_* */
    const char *raw;      /* the whole packet as received, from "##" to its line end */
    size_t raw_len;
} hj212_frame;

/* Counters of everything the framer saw, for monitoring. */
typedef struct hj212_framer_stats {
    uint64_t bytes;          /* bytes fed */
    uint64_t packets;        /* frames returned */
    uint64_t junk_bytes;     /* bytes skipped outside any packet */
    uint64_t bad_header;     /* "##" not followed by four digits */
    uint64_t len_mismatch;   /* frames whose length field was wrong (tolerated) */
    uint64_t no_cr;          /* frames ending in "\n" without "\r" */
    uint64_t no_crlf;        /* frames followed directly by the next "##" */
    uint64_t over_1024;      /* frames with a segment over 1024 bytes (accepted) */
    uint64_t oversize;       /* candidates dropped: no trailer within the segment cap */
    uint64_t truncated;      /* candidates dropped: a new "##dddd" began before a trailer */
    uint64_t no_trailer;     /* lines ending in "\n" with neither CRC nor "&&" before it */
    uint64_t crc[HJ212_CRC_NKINDS]; /* frames by CRC kind */
} hj212_framer_stats;

/* Creates a framer; opts may be NULL. Its memory is fixed at creation (about the segment cap
 * plus a few bytes) and never grows. Returns 0 or -ENOMEM. */
int hj212_framer_create(const hj212_framer_options *opts, hj212_framer **out);
void hj212_framer_destroy(hj212_framer *f); /* NULL is a no-op */

/* Copies bytes in and returns how many were taken: all of them unless the buffer is full,
 * in which case the caller must take frames with hj212_framer_next() until it returns 0 and
 * feed the rest. */
size_t hj212_framer_feed(hj212_framer *f, const void *data, size_t len);

/* Takes the next complete frame: 1 with *out filled, 0 when more input is needed. */
int hj212_framer_next(hj212_framer *f, hj212_frame *out);

/* Takes a packet the framer holds back for want of what follows it: a buffer ending in
 * 4 hex digits (perhaps with "\r") right after the segment the length field announces or
 * right after a closing "&&" (a device that sends no line end), or ending in a line end
 * before the announced end (a length field too long, and a CRC that does not vouch for
 * the cut). Call it when the connection has been quiet for a while (a few hundred ms),
 * since such devices wait for their answer. 1 with *out filled, else 0. */
int hj212_framer_flush(hj212_framer *f, hj212_frame *out);

/* Feeds all len bytes, calling cb for each frame (the frame is valid during the call). */
typedef void hj212_frame_cb(void *ctx, const hj212_frame *frame);
void hj212_framer_push(hj212_framer *f, const void *data, size_t len, hj212_frame_cb *cb,
                       void *ctx);

/* Bytes buffered and not yet returned as a frame or skipped as junk. */
size_t hj212_framer_pending(const hj212_framer *f);
const hj212_framer_stats *hj212_framer_get_stats(const hj212_framer *f);

/* Formats a complete packet around a data segment: "##" + length + seg + CRC + "\r\n".
 * Writes a NUL after it when there is room. Returns 0 with *out_len set, HJ212_ERANGE. */
int hj212_frame_format(const char *seg, size_t seg_len, char *out, size_t cap,
                       size_t *out_len);

/* ---- Parsing (hj212_parse.c) ------------------------------------------------------- */

#define HJ212_MAX_FACTORS 96
#define HJ212_MAX_KVS 48
#define HJ212_CODE_MAX 15

/* A string borrowed from the data segment the packet was parsed from. */
typedef struct hj212_str {
    const char *p; /* NULL when absent */
    uint32_t len;
} hj212_str;

/* Versions, from the Flag field's bits 2-7. */
enum { HJ212_V2005 = 0, HJ212_V2017 = 1, HJ212_V2025 = 2 };

/* Flag bits. */
enum { HJ212_FLAG_A = 1, HJ212_FLAG_D = 2 };

/* hj212_factor.has */
enum {
    HJ212_HAS_FLAG = 1 << 0,
    HJ212_HAS_EFLAG = 1 << 1,
    HJ212_HAS_SAMPLE_TIME = 1 << 2,
    HJ212_HAS_RS = 1 << 3,
    HJ212_HAS_RT = 1 << 4,
    HJ212_HAS_MAPPED = 1 << 5, /* code was mapped from a 2005 code; orig holds that */
};

/* The fields of one factor (pollutant or parameter) code in a CP. */
typedef struct hj212_factor {
    char code[HJ212_CODE_MAX + 1]; /* 2017 code when mapped, else as sent; NUL-terminated */
    char orig[HJ212_CODE_MAX + 1]; /* the code as sent */
    double v[STORAGE_NCOLS];       /* by STORAGE_COL_*: Rtd/Avg -> AVG, ZsRtd/ZsAvg -> ZSAVG */
    uint8_t mask;                  /* bit c: v[c] present */
    uint8_t has;                   /* HJ212_HAS_* */
    char flag;                     /* -Flag, first byte ('N', 'F', ...) */
    hj212_str eflag;               /* -EFlag as sent */
    int64_t sample_time;           /* -SampleTime, UTC seconds */
    double rs, rt;                 /* SBxxx-RS running state, SBxxx-RT running hours */
} hj212_factor;

/* A key/value pair kept as sent (CP keys that are not factor fields, unknown suffixes). */
typedef struct hj212_kv {
    hj212_str key;
    hj212_str val;  /* without the // // of a text value */
    bool text;      /* the value was a //text// */
} hj212_kv;

/* A parsed data segment. Strings are borrowed from the segment: the packet is valid only as
 * long as the segment it was parsed from. Integers are -1 when the field was absent. */
typedef struct hj212_packet {
    hj212_str qn, pw, mn, st_text, cn_text;
    int64_t qn_ms;      /* QN as UTC milliseconds (17-digit local time or 13-digit epoch); 0 */
    int st, cn, flag, pnum, pno;
    int version;        /* HJ212_V*: from Flag; without a Flag, 2017 if MN has 24 chars */
    bool has_cp;
    int64_t data_time;  /* DataTime as UTC seconds; valid when has_data_time */
    bool has_data_time;
    int64_t begin_time, end_time, system_time; /* valid when the matching has_ bit is set */
    bool has_begin_time, has_end_time, has_system_time;
    int qn_rtn, exe_rtn; /* QnRtn, ExeRtn; -1 when absent */
    unsigned nfactors, nkvs;
    hj212_factor factors[HJ212_MAX_FACTORS];
    hj212_kv kvs[HJ212_MAX_KVS];
    /* Field-level problems that did not stop the parse (the field was dropped): how many,
     * and the first one. */
    unsigned nwarnings;
    size_t warn_offset;
    char warn_msg[96];
} hj212_packet;

typedef struct hj212_parse_options {
    int64_t tz_offset_s;  /* local time of DataTime/QN east of UTC */
    bool keep_2005_codes; /* don't map 2005 factor codes to 2017 ones */
} hj212_parse_options;

/* The defaults: +08:00, 2005 codes mapped. */
#define HJ212_PARSE_DEFAULTS {8 * 3600, false}

/* An error: the code, the byte offset in the segment, the key concerned, a sentence. */
typedef struct hj212_error {
    int code;
    size_t offset;
    char key[24];
    char msg[96];
} hj212_error;

/* Parses data segment seg of len bytes into *p (which the caller owns; no allocation).
 * opts may be NULL for the defaults; err may be NULL. Returns 0, HJ212_ESYNTAX or
 * HJ212_ETOOMANY (err says what and where). Bad values of single fields are not errors:
 * the field is dropped and counted in p->nwarnings. */
int hj212_parse(const char *seg, size_t len, const hj212_parse_options *opts,
                hj212_packet *p, hj212_error *err);

/* The factor of p with this code (2017 code after mapping), or NULL. */
const hj212_factor *hj212_packet_factor(const hj212_packet *p, const char *code);

/* The CP value kept for key (exact match), or NULL. */
const hj212_kv *hj212_packet_kv(const hj212_packet *p, const char *key);

/* Parses YYYYMMDDhhmmss local time at tz_offset_s into UTC seconds; -EINVAL if malformed. */
int hj212_time_parse(const char *s, size_t len, int64_t tz_offset_s, int64_t *out);

/* ---- Formatting (hj212_format.c) --------------------------------------------------- */

/* The header fields of a packet to format. Strings are NUL-terminated; NULL omits. */
typedef struct hj212_head {
    const char *qn;
    int st;          /* < 0: omit */
    int cn;
    const char *pw;
    const char *mn;
    int flag;        /* < 0: omit */
    int pnum, pno;   /* 0: omit */
} hj212_head;

/* Formats a whole packet from a header and the inside of CP (between "CP=&&" and "&&";
 * may be empty). Returns 0 with *out_len, or HJ212_ERANGE. */
int hj212_format_packet(const hj212_head *h, const char *cp, size_t cp_len, char *out,
                        size_t cap, size_t *out_len);

/* Replies to a parsed packet req, echoing its QN, PW and MN, ST=91, Flag=4:
 * 9014 data answer (CP=&&&&), 9013 notification answer, 9011 with QnRtn, 9012 with ExeRtn. */
int hj212_format_data_ack(const hj212_packet *req, char *out, size_t cap, size_t *out_len);
int hj212_format_notify_ack(const hj212_packet *req, char *out, size_t cap, size_t *out_len);
int hj212_format_qn_rtn(const hj212_packet *req, int qn_rtn, char *out, size_t cap,
                        size_t *out_len);
int hj212_format_exe_rtn(const hj212_packet *req, int exe_rtn, char *out, size_t cap,
                         size_t *out_len);

/* Formats t (UTC seconds) as YYYYMMDDhhmmss local time at tz_offset_s; buf needs 15 bytes. */
void hj212_time_format(int64_t t, int64_t tz_offset_s, char *buf);

/* Formats a QN (YYYYMMDDhhmmsszzz local time) from UTC milliseconds; buf needs 18 bytes. */
void hj212_qn_format(int64_t ms, int64_t tz_offset_s, char *buf);

/* 1012 set time: CP=&&SystemTime=...&& (with PolId=polid; first when polid is not NULL). */
int hj212_format_set_time(const hj212_head *h, const char *polid, int64_t t,
                          int64_t tz_offset_s, char *out, size_t cap, size_t *out_len);

/* A history request (h->cn 2061, 2031 or 2051 ...): CP=&&BeginTime=...;EndTime=...&&. */
int hj212_format_history_request(const hj212_head *h, int64_t begin, int64_t end,
                                 int64_t tz_offset_s, char *out, size_t cap,
                                 size_t *out_len);

/* An upload (CN 2011 real-time, 2051 minute, 2061 hour, 2031 day): DataTime, then per
 * factor its present columns (Rtd/ZsRtd for 2011, else Avg/Min/Max/Cou/ZsAvg/ZsMin/ZsMax)
 * and Flag. Version HJ212_V2005 writes 2005 factor codes where the table has one. Numbers
 * are written in the shortest form that reads back as the same double. */
typedef struct hj212_upload {
    hj212_head head;
    int version;               /* HJ212_V2017 or HJ212_V2005 */
    int64_t data_time;         /* UTC seconds */
    int64_t tz_offset_s;
    const hj212_factor *factors; /* code, v, mask, flag (has & HJ212_HAS_FLAG) are used */
    size_t nfactors;
} hj212_upload;
int hj212_format_upload(const hj212_upload *u, char *out, size_t cap, size_t *out_len);

/* ---- Factor table (hj212_factors.c, from factor_codes.csv) ----------------------- */

typedef struct hj212_factor_info {
    const char *code;        /* 2017 code */
    const char *name;        /* Chinese name, UTF-8 */
    const char *code_2005;   /* "" when none */
    const char *unit;        /* concentration unit, UTF-8; "" when none */
    const char *amount_unit; /* unit of the emitted amount (-Cou); "" when none */
    const char *type;        /* data type as in the standard, e.g. "N5.2" */
} hj212_factor_info;

/* The table entry for a 2017 code, or NULL. */
const hj212_factor_info *hj212_factor_find(const char *code, size_t len);

/* The table entry whose 2005 code is code, or NULL. */
const hj212_factor_info *hj212_factor_find_2005(const char *code, size_t len);

/* Number of table entries, and entry i. */
size_t hj212_factor_count(void);
const hj212_factor_info *hj212_factor_at(size_t i);

#ifdef __cplusplus
}
#endif
#endif
