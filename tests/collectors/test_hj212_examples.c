/* test_hj212_examples.c: every packet of the standard's examples (shared data file
 * standard_examples.tsv, path given by meson) frames, has the CRC variant the file states,
 * and parses to the fields its data segment shows. The expected fields are read off the
 * segment by a deliberately naive split, so the parser is checked against a second reading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"
#include "tap.h"

static int variant_kind(const char *v)
{
    if (strcmp(v, "HJ212") == 0)
        return HJ212_CRC_OK;
    if (strcmp(v, "MODBUS") == 0)
        return HJ212_CRC_MODBUS;
    if (strcmp(v, "MODBUS_SWAPPED") == 0)
        return HJ212_CRC_MODBUS_SWAPPED;
    if (strcmp(v, "WRONG") == 0)
        return HJ212_CRC_WRONG;
    return -1;
}

/* Splits a line at tabs into at most n fields (in place). */
static int split_tabs(char *line, char **f, int n)
{
    int k = 0;
    f[k++] = line;
    for (char *p = line; *p && k < n; p++)
        if (*p == '\t') {
            *p = 0;
            f[k++] = p + 1;
        }
    return k;
}

static bool str_eq(hj212_str s, const char *z, size_t n)
{
    return s.p && s.len == n && memcmp(s.p, z, n) == 0;
}

/* Checks one "key=value" of the header against the parsed packet. */
static void check_header_field(const hj212_packet *p, const char *k, size_t kl, const char *v,
                               size_t vl)
{
    char key[16] = {0};
    memcpy(key, k, kl < 15 ? kl : 15);
    int num = atoi(v);
    if (strcmp(key, "QN") == 0)
        CHECK(str_eq(p->qn, v, vl));
    else if (strcmp(key, "PW") == 0)
        CHECK(str_eq(p->pw, v, vl));
    else if (strcmp(key, "MN") == 0)
        CHECK(str_eq(p->mn, v, vl));
    else if (strcmp(key, "ST") == 0)
        CHECK_EQ_INT(p->st, num);
    else if (strcmp(key, "CN") == 0)
        CHECK_EQ_INT(p->cn, num);
    else if (strcmp(key, "Flag") == 0)
        CHECK_EQ_INT(p->flag, num);
    else if (strcmp(key, "PNUM") == 0)
        CHECK_EQ_INT(p->pnum, num);
    else if (strcmp(key, "PNO") == 0)
        CHECK_EQ_INT(p->pno, num);
    else
        CHECK(!"unexpected header key");
}

/* Checks one CP "key=value" against the parsed packet. */
static void check_cp_field(const hj212_packet *p, const char *k, size_t kl, const char *v,
                           size_t vl)
{
    char key[64] = {0}, val[64] = {0};
    memcpy(key, k, kl < 63 ? kl : 63);
    memcpy(val, v, vl < 63 ? vl : 63);
    char *dash = strrchr(key, '-');
    if (strcmp(key, "DataTime") == 0) {
        int64_t t;
        CHECK(p->has_data_time && hj212_time_parse(val, vl, 8 * 3600, &t) == 0 &&
              t == p->data_time);
        return;
    }
    if (dash && (strcmp(dash, "-Avg") == 0 || strcmp(dash, "-Min") == 0 ||
                 strcmp(dash, "-Max") == 0 || strcmp(dash, "-Cou") == 0 ||
                 strcmp(dash, "-Flag") == 0)) {
        *dash = 0;
        const hj212_factor *f = hj212_packet_factor(p, key);
        CHECK(f != NULL);
        if (!f)
            return;
        const char *s = dash + 1;
        if (strcmp(s, "Flag") == 0) {
            CHECK(f->has & HJ212_HAS_FLAG && f->flag == val[0]);
            return;
        }
        int c = strcmp(s, "Avg") == 0 ? STORAGE_COL_AVG
              : strcmp(s, "Min") == 0 ? STORAGE_COL_MIN
              : strcmp(s, "Max") == 0 ? STORAGE_COL_MAX : STORAGE_COL_COU;
        CHECK(f->mask & (1u << c) && f->v[c] == strtod(val, NULL));
        return;
    }
    const hj212_kv *kv = hj212_packet_kv(p, key);
    CHECK(kv != NULL);
    if (!kv)
        return;
    if (vl >= 4 && memcmp(v, "//", 2) == 0) {
        CHECK(kv->text && str_eq(kv->val, v + 2, vl - 4));
    } else {
        CHECK(!kv->text && str_eq(kv->val, v, vl));
    }
}

/* Naive reading of a segment: header fields up to CP=&&, then CP items split at ';' and
 * ',' (the examples' text values hold neither). */
static void check_fields(const char *seg, size_t len, const hj212_packet *p)
{
    const char *cp = strstr(seg, "CP=&&");
    CHECK(cp != NULL && p->has_cp);
    if (!cp)
        return;
    for (const char *s = seg; s < cp;) {
        const char *semi = memchr(s, ';', (size_t)(cp - s));
        const char *eq = memchr(s, '=', (size_t)(semi - s));
        check_header_field(p, s, (size_t)(eq - s), eq + 1, (size_t)(semi - eq - 1));
        s = semi + 1;
    }
    const char *c0 = cp + 5, *c1 = seg + len - 2;
    unsigned items = 0;
    for (const char *s = c0; s < c1;) {
        const char *e = s;
        while (e < c1 && *e != ';' && *e != ',')
            e++;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        CHECK(eq != NULL);
        if (eq)
            check_cp_field(p, s, (size_t)(eq - s), eq + 1, (size_t)(e - eq - 1));
        items++;
        s = e + 1;
    }
    CHECK_EQ_INT(p->nwarnings, 0);
    (void)items;
}

static int run_line(char *line)
{
    char *f[6];
    if (split_tabs(line, f, 6) != 6)
        return 0;
    char *pkt = f[5];
    size_t n = strcspn(pkt, "\r\n");
    pkt[n] = 0;
    int want_kind = variant_kind(f[2]);
    bool crc_ok = f[1][0] == 'y', len_ok = f[3][0] == 'y';
    printf("# %s\n", f[4]);

    /* The file holds packets without their line end: add it, as a device sends it. */
    char wire[2048];
    snprintf(wire, sizeof wire, "%s\r\n", pkt);
    hj212_framer *fr;
    CHECK(hj212_framer_create(NULL, &fr) == 0);
    CHECK_EQ_INT(hj212_framer_feed(fr, wire, strlen(wire)), strlen(wire));
    hj212_frame frame;
    CHECK_EQ_INT(hj212_framer_next(fr, &frame), 1);
    CHECK_EQ_INT(frame.seg_len, n - 10);
    CHECK(memcmp(frame.seg, pkt + 6, frame.seg_len) == 0);
    CHECK_EQ_INT(frame.crc_kind, want_kind);
    CHECK_EQ_INT(frame.crc_kind == HJ212_CRC_OK, crc_ok);
    CHECK_EQ_INT(!(frame.flags & HJ212_FRAME_LEN_MISMATCH), len_ok);
    CHECK(memcmp(frame.crc_text, pkt + n - 4, 4) == 0);
    CHECK(frame.raw_len == n + 2 && memcmp(frame.raw, wire, n + 2) == 0);
    CHECK_EQ_INT(hj212_framer_next(fr, &frame), 0);
    CHECK_EQ_INT(hj212_framer_pending(fr), 0);

    char seg[2048];
    memcpy(seg, pkt + 6, n - 10);
    seg[n - 10] = 0;
    static hj212_packet p;
    hj212_error err;
    int rc = hj212_parse(seg, n - 10, NULL, &p, &err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        printf("# %s at %zu (%s)\n", err.msg, err.offset, err.key);
    else
        check_fields(seg, n - 10, &p);
    hj212_framer_destroy(fr);
    return 1;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "../shared/data/hj212/standard_examples.tsv";
    FILE *in = fopen(path, "r");
    CHECK(in != NULL);
    if (!in) {
        printf("# cannot open %s\n", path);
        return tap_done();
    }
    char line[4096];
    int packets = 0;
    CHECK(fgets(line, sizeof line, in) != NULL); /* header */
    while (fgets(line, sizeof line, in))
        packets += run_line(line);
    fclose(in);
    CHECK(packets >= 11);

    /* Specific values of a few examples, beyond the naive reading. */
    static hj212_packet p;
    const char *annex_a = "QN=20160801085857223;ST=32;CN=1062;PW=100000;"
                          "MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";
    CHECK(hj212_parse(annex_a, strlen(annex_a), NULL, &p, NULL) == 0);
    CHECK_EQ_INT(p.version, HJ212_V2017);
    CHECK_EQ_INT(p.flag & HJ212_FLAG_A, 1);
    CHECK_EQ_INT(p.qn_ms, 1470013137223LL); /* 2016-08-01 08:58:57.223 +08:00 */
    CHECK_EQ_INT(hj212_crc(annex_a, strlen(annex_a)), 0x1C80);

    /* The file's note on C.40: the same log in GBK is 148 bytes with CRC DEC1. Bytes are
     * bytes to the codec: it frames, checks and keeps the text as sent. */
    const char gbk[] = "##0148QN=20160801085857223;ST=32;CN=3020;PW=123456;"
                       "MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20100301145000;"
                       "PolId=w01018;i11001-Info=//\xC7\xE5\xCF\xB4\xB9\xDC\xC2\xB7//&&"
                       "DEC1\r\n";
    hj212_framer *fr;
    hj212_frame frame;
    CHECK(hj212_framer_create(NULL, &fr) == 0);
    hj212_framer_feed(fr, gbk, sizeof gbk - 1);
    CHECK_EQ_INT(hj212_framer_next(fr, &frame), 1);
    CHECK_EQ_INT(frame.seg_len, 148);
    CHECK_EQ_INT(frame.crc_kind, HJ212_CRC_OK);
    CHECK_EQ_INT(frame.flags, 0);
    CHECK(hj212_parse(frame.seg, frame.seg_len, NULL, &p, NULL) == 0);
    const hj212_kv *kv = hj212_packet_kv(&p, "i11001-Info");
    CHECK(kv && kv->text && kv->val.len == 8 && memcmp(kv->val.p, "\xC7\xE5", 2) == 0);
    hj212_framer_destroy(fr);
    return tap_done();
}
