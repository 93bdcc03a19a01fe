/* hj212_frame.c: cutting HJ 212 packets out of a TCP byte stream.
 *
 * TCP delivers bytes, not packets: reads glue packets together and split them anywhere,
 * and DAQ units add their own faults (junk before "##", no "\r", a length field counting
 * characters instead of bytes, segments longer than the standard's 1024 bytes). The framer
 * trusts the length field when the trailer (4 hex digits and a line end) sits where it
 * says, and otherwise searches for the trailer. Everything it skips is counted by reason.
 * Its buffer is allocated once (segment cap + a few bytes), so no input, however hostile,
 * makes it grow: a candidate with no trailer within the cap is dropped and the framer
 * resynchronises on the next "##". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"

#define HEAD_LEN 6    /* "##" + 4 digits */
#define TRAILER_MAX 6 /* 4 hex + "\r\n" */
#define SLACK 24      /* room to look at a following "##dddd" past the longest packet */

struct hj212_framer {
    size_t max_seg; /* longest segment accepted */
    size_t limit;   /* a trailer must end before this offset from a candidate's "##" */
    size_t cap;     /* bytes of buf */
    size_t start;   /* buf[start, end) holds bytes not yet framed or skipped */
    size_t end;
    size_t scan;    /* offset from start where the trailer search resumes (0: not begun) */
    hj212_framer_stats st;
    char buf[];
};

int hj212_framer_create(const hj212_framer_options *opts, hj212_framer **out)
{
    size_t max_seg = opts && opts->max_segment_len ? opts->max_segment_len : 8192;
    if (max_seg > 9999)
        max_seg = 9999; /* the length field has four digits */
    size_t cap = HEAD_LEN + max_seg + TRAILER_MAX + SLACK;
    hj212_framer *f = calloc(1, sizeof *f + cap);
    if (!f)
        return -ENOMEM;
    f->max_seg = max_seg;
    f->limit = HEAD_LEN + max_seg + TRAILER_MAX;
    f->cap = cap;
    *out = f;
    return 0;
}

void hj212_framer_destroy(hj212_framer *f)
{
    free(f);
}

size_t hj212_framer_feed(hj212_framer *f, const void *data, size_t len)
{
    if (f->start > 0) {
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    size_t n = f->cap - f->end;
    if (n > len)
        n = len;
    memcpy(f->buf + f->end, data, n);
    f->end += n;
    f->st.bytes += n;
    return n;
}

size_t hj212_framer_pending(const hj212_framer *f)
{
    return f->end - f->start;
}

const hj212_framer_stats *hj212_framer_get_stats(const hj212_framer *f)
{
    return &f->st;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static bool hex4(const char *p)
{
    return is_hex(p[0]) && is_hex(p[1]) && is_hex(p[2]) && is_hex(p[3]);
}

static bool digits4(const char *p)
{
    for (int i = 0; i < 4; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static void skip(hj212_framer *f, size_t n)
{
    f->start += n;
    f->st.junk_bytes += n;
    f->scan = 0;
}

/* Fills *out for a segment b[HEAD_LEN, seg_end) with crc_len CRC bytes after it, and
 * consumes the frame (total bytes from "##"). */
static void emit(hj212_framer *f, hj212_frame *out, int declared, size_t seg_end,
                 size_t crc_len, size_t total, unsigned flags)
{
    const char *b = f->buf + f->start;
    out->seg = b + HEAD_LEN;
    out->seg_len = seg_end - HEAD_LEN;
    out->declared_len = declared;
    memset(out->crc_text, 0, sizeof out->crc_text);
    memcpy(out->crc_text, b + seg_end, crc_len);
    out->crc_kind = hj212_crc_classify(out->seg, out->seg_len, b + seg_end, crc_len);
    if ((size_t)declared != out->seg_len)
        flags |= HJ212_FRAME_LEN_MISMATCH;
    if (out->seg_len > 1024)
        flags |= HJ212_FRAME_OVER_1024;
    out->flags = flags;
    out->raw = b;
    out->raw_len = total;
    f->st.packets++;
    f->st.crc[out->crc_kind]++;
    f->st.len_mismatch += !!(flags & HJ212_FRAME_LEN_MISMATCH);
    f->st.no_cr += !!(flags & HJ212_FRAME_NO_CR);
    f->st.no_crlf += !!(flags & HJ212_FRAME_NO_CRLF);
    f->st.over_1024 += !!(flags & HJ212_FRAME_OVER_1024);
    f->start += total;
    f->scan = 0;
}

/* Is there a trailer at offset t: 4 hex digits, then "\r\n", "\n" or the next "##dddd"?
 * 1 yes (*term: line-end bytes, *flags), 0 no, -1 cannot tell yet. */
static int trailer_at(const char *b, size_t avail, size_t t, size_t *term, unsigned *flags)
{
    if (avail < t + 5)
        return avail >= t + 4 && !hex4(b + t) ? 0 : -1;
    if (!hex4(b + t))
        return 0;
    char c = b[t + 4];
    if (c == '\n') {
        *term = 1;
        *flags = HJ212_FRAME_NO_CR;
        return 1;
    }
    if (c == '\r') {
        if (avail < t + 6)
            return -1;
        *term = 2;
        *flags = 0;
        return b[t + 5] == '\n';
    }
    if (c != '#')
        return 0;
    if (avail < t + 10)
        return -1;
    *term = 0;
    *flags = HJ212_FRAME_NO_CRLF;
    return b[t + 5] == '#' && digits4(b + t + 6);
}

/* Where a packet ending in the line end at q has its segment end and CRC: before 4 hex
 * digits, or right after a closing "&&" (no CRC, or 4 bytes that are no hex). */
static bool line_end(const char *b, size_t q, size_t *seg_end, size_t *crc_len,
                     unsigned *flags)
{
    size_t e = q;
    *flags = HJ212_FRAME_NO_CR;
    if (e > HEAD_LEN && b[e - 1] == '\r') {
        e--;
        *flags = 0;
    }
    if (e >= HEAD_LEN + 4 && hex4(b + e - 4)) {
        *seg_end = e - 4;
        *crc_len = 4;
    } else if (e >= HEAD_LEN + 2 && b[e - 1] == '&' && b[e - 2] == '&') {
        *seg_end = e;
        *crc_len = 0;
    } else if (e >= HEAD_LEN + 6 && b[e - 5] == '&' && b[e - 6] == '&') {
        *seg_end = e - 4;
        *crc_len = 4;
    } else {
        return false;
    }
    return true;
}

/* A line end before the announced end of the segment may lie inside a text value: it ends
 * the packet only if the segment before it closes with "&&" and its CRC is right (standard
 * or MODBUS). The decision rests on the bytes before q alone, so it is the same however
 * the stream was cut into reads. */
static bool inner_line_ends(const char *b, size_t q)
{
    size_t seg_end, crc_len;
    unsigned flags;
    if (!line_end(b, q, &seg_end, &crc_len, &flags) || crc_len != 4 ||
        b[seg_end - 1] != '&' || b[seg_end - 2] != '&')
        return false;
    int kind = hj212_crc_classify(b + HEAD_LEN, seg_end - HEAD_LEN, b + seg_end, 4);
    return kind != HJ212_CRC_WRONG && kind != HJ212_CRC_MISSING;
}

/* Frames the packet whose line end is at q (line_end() must hold). */
static void emit_line(hj212_framer *f, hj212_frame *out, int declared, size_t q)
{
    size_t seg_end, crc_len;
    unsigned flags;
    line_end(f->buf + f->start, q, &seg_end, &crc_len, &flags);
    emit(f, out, declared, seg_end, crc_len, q + 1, flags);
}

/* Searches the candidate at start for its trailer, for when the length field was wrong or
 * the segment holds a line end or '#'. The first of these ends it: a line end at or past
 * the announced end that follows a CRC or "&&" (else the line is dropped); a line end
 * before the announced end that inner_line_ends() accepts; the next "##dddd" (after a CRC,
 * or after a line end that follows one: else the candidate was cut short and is dropped).
 * 1 framed, 0 need more, 2 skipped some bytes (the caller loops). */
static int search(hj212_framer *f, hj212_frame *out, int declared)
{
    const char *b = f->buf + f->start;
    size_t avail = f->end - f->start;
    size_t lim = avail < f->limit ? avail : f->limit;
    size_t t = (size_t)declared <= f->max_seg ? HEAD_LEN + (size_t)declared : 0;
    size_t i = f->scan > HEAD_LEN ? f->scan : HEAD_LEN;
    size_t seg_end, crc_len;
    unsigned flags;
    for (; i < lim; i++) {
        if (b[i] == '\n') {
            if (i < t) {
                if (!inner_line_ends(b, i))
                    continue;
                emit_line(f, out, declared, i);
                return 1;
            }
            if (line_end(b, i, &seg_end, &crc_len, &flags)) {
                emit(f, out, declared, seg_end, crc_len, i + 1, flags);
                return 1;
            }
            f->st.no_trailer++;
            skip(f, i + 1);
            return 2;
        }
        if (b[i] != '#')
            continue;
        if (i + 1 < avail && b[i + 1] != '#')
            continue;
        if (i + HEAD_LEN > avail) {
            f->scan = i; /* a "##" we cannot judge yet */
            return 0;
        }
        if (!digits4(b + i + 2))
            continue;
        /* The next packet begins here: this one ended without a line end, or was cut. */
        if (i >= HEAD_LEN + 4 && hex4(b + i - 4)) {
            emit(f, out, declared, i - 4, 4, i, HJ212_FRAME_NO_CRLF);
            return 1;
        }
        if (b[i - 1] == '\n' && line_end(b, i - 1, &seg_end, &crc_len, &flags)) {
            emit_line(f, out, declared, i - 1); /* a line end inner_line_ends() passed over */
            return 1;
        }
        f->st.truncated++;
        skip(f, i);
        return 2;
    }
    if (avail >= f->limit) {
        f->st.oversize++;
        skip(f, f->limit - HEAD_LEN); /* keep the tail, it may begin a packet */
        return 2;
    }
    f->scan = i;
    return 0;
}

int hj212_framer_next(hj212_framer *f, hj212_frame *out)
{
    for (;;) {
        char *b = f->buf + f->start;
        size_t avail = f->end - f->start;
        if (avail < 2) {
            if (avail == 1 && b[0] != '#')
                skip(f, 1);
            return 0;
        }
        if (f->scan == 0) {
            char *h = memmem(b, avail, "##", 2);
            if (!h) {
                skip(f, avail - (b[avail - 1] == '#'));
                return 0;
            }
            if (h > b) {
                skip(f, (size_t)(h - b));
                continue;
            }
            if (avail < HEAD_LEN)
                return 0;
            if (!digits4(b + 2)) {
                f->st.bad_header++;
                skip(f, 1);
                continue;
            }
        }
        int declared = (b[2] - '0') * 1000 + (b[3] - '0') * 100 + (b[4] - '0') * 10 + (b[5] - '0');
        /* The common case: the trailer sits where the length field says, and the segment
         * holds nothing search() would act on first. */
        size_t t = HEAD_LEN + (size_t)declared;
        if ((size_t)declared <= f->max_seg && f->scan == 0) {
            size_t term;
            unsigned flags;
            if (trailer_at(b, avail, t, &term, &flags) == 1 &&
                !memchr(b + HEAD_LEN, '\n', (size_t)declared) &&
                !memchr(b + HEAD_LEN, '#', (size_t)declared)) {
                emit(f, out, declared, t, 4, t + 4 + term, flags);
                return 1;
            }
        }
        int r = search(f, out, declared);
        if (r != 2)
            return r;
    }
}

int hj212_framer_flush(hj212_framer *f, hj212_frame *out)
{
    hj212_frame fr;
    if (hj212_framer_next(f, &fr) == 1) { /* whatever is complete goes first */
        *out = fr;
        return 1;
    }
    const char *b = f->buf + f->start;
    size_t avail = f->end - f->start, e = avail;
    if (avail < HEAD_LEN + 4 || b[0] != '#' || b[1] != '#' || !digits4(b + 2))
        return 0;
    int declared = (b[2] - '0') * 1000 + (b[3] - '0') * 100 + (b[4] - '0') * 10 + (b[5] - '0');
    size_t seg_end, crc_len;
    unsigned flags;
    if (b[e - 1] == '\n') { /* a line end the search passed over, waiting for what follows */
        if (!line_end(b, e - 1, &seg_end, &crc_len, &flags))
            return 0;
        emit_line(f, out, declared, e - 1);
        return 1;
    }
    if (b[e - 1] == '\r')
        e--;
    if (e < HEAD_LEN + 4 || !hex4(b + e - 4))
        return 0;
    seg_end = e - 4;
    bool closed = seg_end >= HEAD_LEN + 2 && b[seg_end - 1] == '&' && b[seg_end - 2] == '&';
    if ((size_t)declared != seg_end - HEAD_LEN && !closed)
        return 0;
    emit(f, out, declared, seg_end, 4, avail, HJ212_FRAME_NO_CRLF);
    return 1;
}

void hj212_framer_push(hj212_framer *f, const void *data, size_t len, hj212_frame_cb *cb,
                       void *ctx)
{
    const char *p = data;
    hj212_frame fr;
    do {
        size_t n = hj212_framer_feed(f, p, len);
        p += n;
        len -= n;
        while (hj212_framer_next(f, &fr) == 1)
            cb(ctx, &fr);
    } while (len > 0);
}

int hj212_frame_format(const char *seg, size_t seg_len, char *out, size_t cap,
                       size_t *out_len)
{
    size_t total = HEAD_LEN + seg_len + TRAILER_MAX;
    if (seg_len > 9999 || cap < total)
        return HJ212_ERANGE;
    char head[8];
    snprintf(head, sizeof head, "##%04u", (unsigned)seg_len);
    memcpy(out, head, HEAD_LEN);
    memmove(out + HEAD_LEN, seg, seg_len); /* seg may already sit in out */
    static const char hex[] = "0123456789ABCDEF";
    uint16_t crc = hj212_crc(out + HEAD_LEN, seg_len);
    char *t = out + HEAD_LEN + seg_len;
    t[0] = hex[crc >> 12];
    t[1] = hex[(crc >> 8) & 15];
    t[2] = hex[(crc >> 4) & 15];
    t[3] = hex[crc & 15];
    t[4] = '\r';
    t[5] = '\n';
    if (cap > total)
        out[total] = 0;
    *out_len = total;
    return 0;
}
