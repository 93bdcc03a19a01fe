/* test_hj212_frame.c: the stream framer under torture: a glued stream of many packets cut
 * at every split point and fed byte by byte, junk before and between packets, missing
 * "\r" or line ends, wrong length fields, missing and wrong CRCs, oversize segments, and a
 * flood of garbage that must not grow memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"
#include "tap.h"

static const char *const segs[] = {
    "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&RtdInterval=30&&",
    "QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&",
    "QN=20160801085857223;ST=32;CN=3020;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&DataTime=20100301145000;PolId=w01018;i11001-Info=//清洗管路//&&",
    "QN=20160801085857534;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=7;PNUM=2;"
    "PNO=1;CP=&&DataTime=20160801080000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,"
    "w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,"
    "w01001-Flag=N&&",
    "ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&DataTime=20040516020111;B01-Rtd=50.5&&",
};
#define NSEGS (sizeof segs / sizeof segs[0])

/* Collects frames: their segments (copied), kinds and flags. */
typedef struct got {
    int n;
    char seg[64][2400];
    size_t len[64];
    int kind[64];
    unsigned flags[64];
    size_t raw_len[64];
} got;

static void on_frame(void *ctx, const hj212_frame *fr)
{
    got *g = ctx;
    if (g->n < 64 && fr->seg_len < sizeof g->seg[0]) {
        memcpy(g->seg[g->n], fr->seg, fr->seg_len);
        g->len[g->n] = fr->seg_len;
        g->kind[g->n] = fr->crc_kind;
        g->flags[g->n] = fr->flags;
        g->raw_len[g->n] = fr->raw_len;
        if (fr->raw + 6 != fr->seg || memcmp(fr->raw, "##", 2) != 0)
            g->raw_len[g->n] = 0;
    }
    g->n++;
}

static size_t wire(char *out, size_t cap, const char *seg)
{
    size_t n;
    return hj212_frame_format(seg, strlen(seg), out, cap, &n) == 0 ? n : 0;
}

static bool got_is(const got *g, int i, const char *seg)
{
    return i < g->n && g->len[i] == strlen(seg) && memcmp(g->seg[i], seg, g->len[i]) == 0;
}

static got G;

/* The glued stream: every segment three times, with junk between some of them. */
static size_t build_stream(char *s, size_t cap, int *expect, int *nexpect)
{
    static const char *const junk[] = {"", "garbage", "#", "\r\n", "##xx", "#0101", ""};
    size_t n = 0;
    *nexpect = 0;
    for (int r = 0; r < 3; r++)
        for (size_t i = 0; i < NSEGS; i++) {
            const char *j = junk[(r * NSEGS + i) % 7];
            memcpy(s + n, j, strlen(j));
            n += strlen(j);
            n += wire(s + n, cap - n, segs[i]);
            expect[(*nexpect)++] = (int)i;
        }
    return n;
}

static void test_split_points(void)
{
    static char stream[16384];
    int expect[64], nexpect;
    size_t n = build_stream(stream, sizeof stream, expect, &nexpect);
    hj212_framer *f;
    CHECK(hj212_framer_create(NULL, &f) == 0);
    int bad = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&G, 0, sizeof G.n);
        G.n = 0;
        hj212_framer_push(f, stream, cut, on_frame, &G);
        hj212_framer_push(f, stream + cut, n - cut, on_frame, &G);
        bool ok = G.n == nexpect && hj212_framer_pending(f) == 0;
        for (int i = 0; ok && i < nexpect; i++)
            ok = got_is(&G, i, segs[expect[i]]) && G.kind[i] == HJ212_CRC_OK && G.flags[i] == 0;
        bad += !ok;
    }
    CHECK_EQ_INT(bad, 0);
    const hj212_framer_stats *st = hj212_framer_get_stats(f);
    CHECK_EQ_INT(st->packets, (uint64_t)nexpect * (n + 1));
    CHECK_EQ_INT(st->crc[HJ212_CRC_OK], st->packets);
    CHECK(st->junk_bytes > 0);
    CHECK(st->bad_header > 0);
    hj212_framer_destroy(f);

    /* Byte by byte, with the pull API. */
    CHECK(hj212_framer_create(NULL, &f) == 0);
    G.n = 0;
    hj212_frame fr;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(hj212_framer_feed(f, stream + i, 1), 1);
        while (hj212_framer_next(f, &fr) == 1)
            on_frame(&G, &fr);
    }
    CHECK_EQ_INT(G.n, nexpect);
    bool ok = true;
    for (int i = 0; i < nexpect; i++)
        ok = ok && got_is(&G, i, segs[expect[i]]);
    CHECK(ok);
    hj212_framer_destroy(f);
}

/* Feeds text whole and then byte by byte; both must give the same frames. */
static void feed_both(const char *text, size_t len, got *whole, got *bytes,
                      const hj212_framer_options *o)
{
    hj212_framer *f;
    hj212_framer_create(o, &f);
    whole->n = 0;
    hj212_framer_push(f, text, len, on_frame, whole);
    hj212_framer_destroy(f);
    hj212_framer_create(o, &f);
    bytes->n = 0;
    for (size_t i = 0; i < len; i++)
        hj212_framer_push(f, text + i, 1, on_frame, bytes);
    hj212_framer_destroy(f);
}

static got W, B;

static bool same(const got *a, const got *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || memcmp(a->seg[i], b->seg[i], a->len[i]) ||
            a->kind[i] != b->kind[i] || a->flags[i] != b->flags[i])
            return false;
    return true;
}

static void test_faults(void)
{
    char s[8192], one[2048];
    size_t n = 0, k;

    /* Missing \r, then no line end at all, then normal. */
    k = wire(one, sizeof one, segs[0]);
    memcpy(s + n, one, k - 2);
    n += k - 2;
    s[n++] = '\n';
    k = wire(one, sizeof one, segs[1]);
    memcpy(s + n, one, k - 2);
    n += k - 2;
    n += wire(s + n, sizeof s - n, segs[4]);
    feed_both(s, n, &W, &B, NULL);
    CHECK(same(&W, &B));
    CHECK_EQ_INT(W.n, 3);
    CHECK(got_is(&W, 0, segs[0]) && W.flags[0] == HJ212_FRAME_NO_CR);
    CHECK(got_is(&W, 1, segs[1]) && W.flags[1] == HJ212_FRAME_NO_CRLF);
    CHECK_EQ_INT(W.raw_len[0], strlen(segs[0]) + 11);
    CHECK_EQ_INT(W.raw_len[1], strlen(segs[1]) + 10);
    CHECK_EQ_INT(W.raw_len[2], strlen(segs[4]) + 12);
    CHECK(got_is(&W, 2, segs[4]) && W.flags[2] == 0);

    /* Wrong length fields: counting characters (the Chinese text), too long, too short,
     * 9999; each framed by its trailer. */
    const char *lens[] = {"0144", "0500", "0010", "9999"};
    n = 0;
    for (int i = 0; i < 4; i++) {
        k = wire(one, sizeof one, segs[2]);
        memcpy(one + 2, lens[i], 4);
        memcpy(s + n, one, k);
        n += k;
    }
    n += wire(s + n, sizeof s - n, segs[1]);
    feed_both(s, n, &W, &B, NULL);
    CHECK(same(&W, &B));
    CHECK_EQ_INT(W.n, 5);
    for (int i = 0; i < 4; i++)
        CHECK(got_is(&W, i, segs[2]) && W.flags[i] == HJ212_FRAME_LEN_MISMATCH &&
              W.kind[i] == HJ212_CRC_OK);
    CHECK(got_is(&W, 4, segs[1]) && W.flags[4] == 0);

    /* CRC variants: lower case, MODBUS, wrong, missing, not hex. */
    const char *seg = segs[0];
    size_t sl = strlen(seg);
    uint16_t mb = hj212_crc_modbus(seg, sl);
    n = 0;
    n += (size_t)sprintf(s + n, "##%04zu%s1c80\r\n", sl, seg);
    n += (size_t)sprintf(s + n, "##%04zu%s%04X\r\n", sl, seg, mb);
    n += (size_t)sprintf(s + n, "##%04zu%s%02X%02X\r\n", sl, seg, mb & 0xFF, mb >> 8);
    n += (size_t)sprintf(s + n, "##%04zu%s1C08\r\n", sl, seg);
    n += (size_t)sprintf(s + n, "##%04zu%s\r\n", sl, seg);
    n += (size_t)sprintf(s + n, "##%04zu%sXYZW\r\n", sl, seg);
    feed_both(s, n, &W, &B, NULL);
    CHECK(same(&W, &B));
    CHECK_EQ_INT(W.n, 6);
    const int kinds[] = {HJ212_CRC_LOWER, HJ212_CRC_MODBUS, HJ212_CRC_MODBUS_SWAPPED,
                         HJ212_CRC_WRONG, HJ212_CRC_MISSING, HJ212_CRC_MISSING};
    for (int i = 0; i < 6; i++)
        CHECK(got_is(&W, i, seg) && W.kind[i] == kinds[i]);

    /* A packet cut short by the next one: dropped, the next one framed. */
    k = wire(one, sizeof one, segs[3]);
    n = 0;
    memcpy(s, one, 100);
    n = 100;
    n += wire(s + n, sizeof s - n, segs[0]);
    hj212_framer *f;
    hj212_framer_create(NULL, &f);
    G.n = 0;
    hj212_framer_push(f, s, n, on_frame, &G);
    CHECK_EQ_INT(G.n, 1);
    CHECK(got_is(&G, 0, segs[0]));
    CHECK_EQ_INT(hj212_framer_get_stats(f)->truncated, 1);
    CHECK_EQ_INT(hj212_framer_get_stats(f)->junk_bytes, 100);
    hj212_framer_destroy(f);

    /* A line that is no packet is skipped and counted: as cut short when the next packet
     * comes before its announced end, as a line without trailer when it ends past it. */
    hj212_framer_create(NULL, &f);
    G.n = 0;
    n = (size_t)sprintf(s, "##0010hello\r\n##0002hello\r\n");
    n += wire(s + n, sizeof s - n, segs[1]);
    hj212_framer_push(f, s, n, on_frame, &G);
    CHECK_EQ_INT(G.n, 1);
    CHECK(got_is(&G, 0, segs[1]));
    CHECK_EQ_INT(hj212_framer_get_stats(f)->truncated, 1);
    CHECK_EQ_INT(hj212_framer_get_stats(f)->no_trailer, 1);
    CHECK_EQ_INT(hj212_framer_get_stats(f)->junk_bytes, 26);
    hj212_framer_destroy(f);

    /* A device with a too long length field and a wrong CRC: each packet still framed
     * (its line end is followed by the next "##dddd"). */
    n = 0;
    for (int i = 0; i < 3; i++)
        n += (size_t)sprintf(s + n, "##0500%s0000\r\n", segs[0]);
    feed_both(s, n, &W, &B, NULL);
    CHECK(same(&W, &B));
    CHECK_EQ_INT(W.n, 2); /* the last waits for what follows it, or a flush */
    CHECK(got_is(&W, 0, segs[0]) && W.kind[0] == HJ212_CRC_WRONG &&
          W.flags[0] == HJ212_FRAME_LEN_MISMATCH);
    hj212_framer_create(NULL, &f);
    hj212_frame fr;
    hj212_framer_feed(f, s, n);
    CHECK_EQ_INT(hj212_framer_next(f, &fr), 1);
    CHECK_EQ_INT(hj212_framer_next(f, &fr), 1);
    CHECK_EQ_INT(hj212_framer_next(f, &fr), 0);
    CHECK_EQ_INT(hj212_framer_flush(f, &fr), 1);
    CHECK(fr.seg_len == strlen(segs[0]) && fr.flags == HJ212_FRAME_LEN_MISMATCH &&
          fr.crc_kind == HJ212_CRC_WRONG);
    CHECK_EQ_INT(hj212_framer_pending(f), 0);
    hj212_framer_destroy(f);
}

/* A stream of faulty packets cut at every split point, and at pairs of split points: the
 * frames must be the same as when the stream comes in one piece, and as expected. */
static void test_fault_stream_splits(void)
{
    static char s[16384], one[2048];
    size_t n = 0, k;
    /* 0: missing \r */
    k = wire(one, sizeof one, segs[0]);
    memcpy(s + n, one, k - 2);
    n += k - 2;
    s[n++] = '\n';
    /* 1: no line end before the next packet */
    k = wire(one, sizeof one, segs[1]);
    memcpy(s + n, one, k - 2);
    n += k - 2;
    /* 2: length counted in characters */
    k = wire(one, sizeof one, segs[2]);
    memcpy(one + 2, "0144", 4);
    memcpy(s + n, one, k);
    n += k;
    /* junk, a cut packet, then 3: length too long */
    n += (size_t)sprintf(s + n, "xx#\r\n##01");
    k = wire(one, sizeof one, segs[3]);
    memcpy(s + n, one, 80);
    n += 80;
    k = wire(one, sizeof one, segs[3]);
    memcpy(one + 2, "0999", 4);
    memcpy(s + n, one, k);
    n += k;
    /* 4: lower-case CRC; 1 again: no CRC at all */
    n += (size_t)sprintf(s + n, "##%04zu%s%04x\r\n", strlen(segs[4]), segs[4],
                         hj212_crc(segs[4], strlen(segs[4])));
    n += (size_t)sprintf(s + n, "##%04zu%s\r\n", strlen(segs[1]), segs[1]);
    /* an oversize candidate (cap 600 below), then 0 */
    n += (size_t)sprintf(s + n, "##0700QN=1;CP=&&");
    memset(s + n, 'a', 700);
    n += 700;
    n += (size_t)sprintf(s + n, "&&1234\r\n");
    n += wire(s + n, sizeof s - n, segs[0]);

    static const int want_seg[] = {0, 1, 2, 3, 4, 1, 0};
    static const unsigned want_flags[] = {HJ212_FRAME_NO_CR, HJ212_FRAME_NO_CRLF,
                                          HJ212_FRAME_LEN_MISMATCH, HJ212_FRAME_LEN_MISMATCH,
                                          0, 0, 0};
    static const int want_kind[] = {HJ212_CRC_OK, HJ212_CRC_OK, HJ212_CRC_OK, HJ212_CRC_OK,
                                    HJ212_CRC_LOWER, HJ212_CRC_MISSING, HJ212_CRC_OK};
    hj212_framer_options o = {600};
    hj212_framer *f;
    hj212_framer_create(&o, &f);
    W.n = 0;
    hj212_framer_push(f, s, n, on_frame, &W);
    CHECK_EQ_INT(W.n, 7);
    bool ok = W.n == 7;
    for (int i = 0; ok && i < 7; i++)
        ok = got_is(&W, i, segs[want_seg[i]]) && W.flags[i] == want_flags[i] &&
             W.kind[i] == want_kind[i];
    CHECK(ok);
    const hj212_framer_stats *st = hj212_framer_get_stats(f);
    CHECK_EQ_INT(st->truncated, 1);
    CHECK_EQ_INT(st->oversize, 1);
    CHECK_EQ_INT(st->bad_header, 1);
    hj212_framer_destroy(f);

    int bad = 0;
    uint32_t r = 7;
    for (size_t cut = 0; cut <= n; cut++) {
        r = r * 1103515245 + 12345;
        size_t cut2 = cut + (r >> 8) % (n - cut + 1);
        hj212_framer_create(&o, &f);
        B.n = 0;
        hj212_framer_push(f, s, cut, on_frame, &B);
        hj212_framer_push(f, s + cut, cut2 - cut, on_frame, &B);
        hj212_framer_push(f, s + cut2, n - cut2, on_frame, &B);
        bad += !same(&W, &B) || hj212_framer_pending(f) != 0;
        hj212_framer_destroy(f);
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_oversize(void)
{
    static char seg[12000], s[30000];
    hj212_framer *f;
    /* 2000 bytes: over the standard, under the default cap: accepted and counted. */
    int n = snprintf(seg, sizeof seg, "CN=2011;CP=&&");
    while (n < 1985)
        n += snprintf(seg + n, sizeof seg - (size_t)n, "a21026-Rtd=1.5;");
    n += snprintf(seg + n, sizeof seg - (size_t)n, "&&");
    size_t k = wire(s, sizeof s, seg);
    k += wire(s + k, sizeof s - k, segs[1]);
    hj212_framer_create(NULL, &f);
    G.n = 0;
    hj212_framer_push(f, s, k, on_frame, &G);
    CHECK_EQ_INT(G.n, 2);
    CHECK(got_is(&G, 0, seg) && G.flags[0] == HJ212_FRAME_OVER_1024);
    CHECK_EQ_INT(hj212_framer_get_stats(f)->over_1024, 1);
    hj212_framer_destroy(f);

    /* Over a cap of 1500: dropped, and the next packet still framed. */
    hj212_framer_options o = {1500};
    hj212_framer_create(&o, &f);
    G.n = 0;
    hj212_framer_push(f, s, k, on_frame, &G);
    CHECK_EQ_INT(G.n, 1);
    CHECK(got_is(&G, 0, segs[1]));
    CHECK_EQ_INT(hj212_framer_get_stats(f)->oversize, 1);
    hj212_framer_destroy(f);

    /* 9000 bytes with its true length against the default 8 KiB cap. */
    n = snprintf(seg, sizeof seg, "CN=2011;CP=&&");
    while (n < 8980)
        n += snprintf(seg + n, sizeof seg - (size_t)n, "a21026-Rtd=1.5;");
    n += snprintf(seg + n, sizeof seg - (size_t)n, "&&");
    k = wire(s, sizeof s, seg);
    k += wire(s + k, sizeof s - k, segs[0]);
    feed_both(s, k, &W, &B, NULL);
    CHECK(same(&W, &B));
    CHECK_EQ_INT(W.n, 1);
    CHECK(got_is(&W, 0, segs[0]));
}

static void test_flood(void)
{
    hj212_framer *f;
    hj212_framer_create(NULL, &f);
    static char junk[65536];
    uint32_t r = 1;
    for (size_t i = 0; i < sizeof junk; i++) {
        r = r * 1103515245 + 12345;
        char c = (char)(r >> 16);
        junk[i] = c == '#' ? '.' : c;
    }
    size_t max_pending = 0;
    G.n = 0;
    for (int i = 0; i < 160; i++) { /* 10 MiB */
        hj212_framer_push(f, junk, sizeof junk, on_frame, &G);
        if (hj212_framer_pending(f) > max_pending)
            max_pending = hj212_framer_pending(f);
    }
    CHECK_EQ_INT(G.n, 0);
    CHECK_EQ_INT(max_pending, 0);
    CHECK_EQ_INT(hj212_framer_get_stats(f)->junk_bytes, 160 * sizeof junk);

    /* A flood of "##0100" headers with no trailer stays bounded too. */
    static char heads[60000];
    for (size_t i = 0; i + 6 <= sizeof heads; i += 6)
        memcpy(heads + i, "##0100", 6);
    hj212_framer_push(f, heads, sizeof heads, on_frame, &G);
    CHECK(hj212_framer_pending(f) < 8192 + 64);
    /* ...and a packet after it is still framed. */
    char one[256];
    size_t k = wire(one, sizeof one, segs[1]);
    hj212_framer_push(f, "\r\n", 2, on_frame, &G);
    hj212_framer_push(f, one, k, on_frame, &G);
    CHECK(G.n >= 1 && got_is(&G, G.n - 1, segs[1]));

    /* feed takes only what fits; next drains. */
    hj212_framer_options o = {100};
    hj212_framer_destroy(f);
    hj212_framer_create(&o, &f);
    size_t took = hj212_framer_feed(f, junk, sizeof junk);
    CHECK(took < 200);
    hj212_frame fr;
    CHECK_EQ_INT(hj212_framer_next(f, &fr), 0);
    CHECK(hj212_framer_pending(f) <= 1);
    hj212_framer_destroy(f);
    hj212_framer_destroy(NULL);
}

static void test_flush(void)
{
    char one[512];
    hj212_frame fr;
    hj212_framer *f;
    hj212_framer_create(NULL, &f);
    size_t k = wire(one, sizeof one, segs[0]);
    /* No line end, nothing after: only flush frames it. */
    hj212_framer_feed(f, one, k - 2);
    CHECK_EQ_INT(hj212_framer_next(f, &fr), 0);
    CHECK_EQ_INT(hj212_framer_flush(f, &fr), 1);
    CHECK(fr.seg_len == strlen(segs[0]) && memcmp(fr.seg, segs[0], fr.seg_len) == 0);
    CHECK_EQ_INT(fr.flags, HJ212_FRAME_NO_CRLF);
    CHECK_EQ_INT(fr.crc_kind, HJ212_CRC_OK);
    CHECK_EQ_INT(hj212_framer_pending(f), 0);
    CHECK_EQ_INT(hj212_framer_flush(f, &fr), 0);
    /* With "\r" and a wrong length: the closing "&&" vouches for it. */
    memcpy(one + 2, "0999", 4);
    hj212_framer_feed(f, one, k - 1);
    CHECK_EQ_INT(hj212_framer_flush(f, &fr), 1);
    CHECK_EQ_INT(fr.flags, HJ212_FRAME_NO_CRLF | HJ212_FRAME_LEN_MISMATCH);
    CHECK_EQ_INT(fr.raw_len, k - 1);
    /* Half a packet is not flushed. */
    hj212_framer_feed(f, one, 40);
    CHECK_EQ_INT(hj212_framer_flush(f, &fr), 0);
    CHECK_EQ_INT(hj212_framer_pending(f), 40);
    hj212_framer_destroy(f);
}

/* A text value holding a line end: cut in front of the line end or not, the length field
 * and the CRC keep the packet whole. */
static void test_newline_in_text(void)
{
    const char *seg = "QN=20160801085857223;ST=32;CN=3020;PW=123456;MN=010000A8900016F000169DC0;"
                      "Flag=5;CP=&&i11001-Info=//line one 1C80\r\nline two ABCD\nend//&&";
    char one[512];
    size_t k = wire(one, sizeof one, seg), bad = 0;
    for (size_t cut = 0; cut <= k; cut++) {
        hj212_framer *f;
        hj212_framer_create(NULL, &f);
        G.n = 0;
        hj212_framer_push(f, one, cut, on_frame, &G);
        hj212_framer_push(f, one + cut, k - cut, on_frame, &G);
        bad += !(G.n == 1 && got_is(&G, 0, seg) && G.kind[0] == HJ212_CRC_OK &&
                 hj212_framer_pending(f) == 0);
        hj212_framer_destroy(f);
    }
    CHECK_EQ_INT(bad, 0);
    hj212_packet *p = malloc(sizeof *p);
    CHECK(hj212_parse(seg, strlen(seg), NULL, p, NULL) == 0);
    const hj212_kv *kv = hj212_packet_kv(p, "i11001-Info");
    CHECK(kv && kv->text && kv->val.len == 32);
    free(p);
}

static void test_format(void)
{
    char out[64];
    size_t n;
    CHECK_EQ_INT(hj212_frame_format("CN=1", 4, out, sizeof out, &n), 0);
    CHECK_EQ_INT(n, 16);
    char want[32];
    snprintf(want, sizeof want, "##0004CN=1%04X\r\n", hj212_crc("CN=1", 4));
    CHECK_EQ_STR(out, want);
    CHECK_EQ_INT(hj212_frame_format("CN=1", 4, out, 15, &n), HJ212_ERANGE);
}

int main(void)
{
    test_split_points();
    test_faults();
    test_fault_stream_splits();
    test_oversize();
    test_flood();
    test_flush();
    test_newline_in_text();
    test_format();
    return tap_done();
}
