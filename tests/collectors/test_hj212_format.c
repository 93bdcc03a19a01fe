/* test_hj212_format.c: the packets the platform and the simulator write, byte for byte
 * where the standard shows them, and format -> frame -> parse round trips in 2017 and 2005
 * form that give back every value exactly. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hj212.h"
#include "tap.h"

static hj212_packet P, Q;
static char out[4096];
static size_t n;

/* Frames out[0, n) and parses it into *p; the CRC must be the standard's. */
static int reparse(hj212_packet *p)
{
    hj212_framer *f;
    hj212_frame fr;
    int rc = -1;
    hj212_framer_create(NULL, &f);
    hj212_framer_feed(f, out, n);
    if (hj212_framer_next(f, &fr) == 1 && fr.crc_kind == HJ212_CRC_OK &&
        !(fr.flags & HJ212_FRAME_LEN_MISMATCH) && fr.seg_len == n - 12)
        rc = hj212_parse(out + 6, n - 12, NULL, p, NULL);
    hj212_framer_destroy(f);
    return rc;
}

static void test_replies(void)
{
    const char *up = "QN=20160801085857223;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;"
                     "Flag=5;CP=&&DataTime=20160801080000;w01018-Avg=40.1&&";
    CHECK_EQ_INT(hj212_parse(up, strlen(up), NULL, &P, NULL), 0);
    CHECK_EQ_INT(hj212_format_data_ack(&P, out, sizeof out, &n), 0);
    CHECK_EQ_STR(out, "##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=4;CP=&&&&3240\r\n");
    CHECK_EQ_INT(n, strlen(out));
    CHECK_EQ_INT(hj212_format_qn_rtn(&P, 1, out, sizeof out, &n), 0);
    CHECK_EQ_STR(out, "##0094QN=20160801085857223;ST=91;CN=9011;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&1B00\r\n");
    CHECK_EQ_INT(hj212_format_exe_rtn(&P, 1, out, sizeof out, &n), 0);
    CHECK_EQ_STR(out, "##0095QN=20160801085857223;ST=91;CN=9012;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=4;CP=&&ExeRtn=1&&6240\r\n");
    CHECK_EQ_INT(hj212_format_notify_ack(&P, out, sizeof out, &n), 0);
    CHECK_EQ_INT(reparse(&Q), 0);
    CHECK_EQ_INT(Q.cn, 9013);
    CHECK_EQ_INT(Q.st, 91);
    CHECK_EQ_INT(Q.flag, 4);

    /* A 2005 upload without QN: the ack leaves QN out too. */
    const char *old = "ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&B01-Rtd=1&&";
    CHECK_EQ_INT(hj212_parse(old, strlen(old), NULL, &P, NULL), 0);
    CHECK_EQ_INT(hj212_format_data_ack(&P, out, sizeof out, &n), 0);
    CHECK(strncmp(out + 6, "ST=91;CN=9014;PW=123456;MN=88888880000001;Flag=4;CP=&&&&", 56) == 0);

    /* Too small a buffer: an error, never a cut packet. */
    CHECK_EQ_INT(hj212_format_data_ack(&P, out, 40, &n), HJ212_ERANGE);
    CHECK_EQ_INT(hj212_format_data_ack(&P, out, 5, &n), HJ212_ERANGE);
}

static void test_requests(void)
{
    hj212_head h = {"20160801085857223", 32, 2051, "123456", "010000A8900016F000169DC0", 5, 0, 0};
    CHECK_EQ_INT(hj212_format_history_request(&h, 1470012000, 1470012000, 8 * 3600, out,
                                              sizeof out, &n), 0);
    CHECK_EQ_STR(out, "##0134QN=20160801085857223;ST=32;CN=2051;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=5;CP=&&BeginTime=20160801084000;"
                      "EndTime=20160801084000&&56C0\r\n");
    h.cn = 2061;
    CHECK_EQ_INT(hj212_format_history_request(&h, 1470009600, 1470096000, 8 * 3600, out,
                                              sizeof out, &n), 0);
    CHECK_EQ_INT(reparse(&Q), 0);
    CHECK_EQ_INT(Q.cn, 2061);
    CHECK(Q.has_begin_time && Q.begin_time == 1470009600);
    CHECK(Q.has_end_time && Q.end_time == 1470096000);

    h.cn = 1012;
    CHECK_EQ_INT(hj212_format_set_time(&h, NULL, 1470013137, 8 * 3600, out, sizeof out, &n), 0);
    CHECK(strstr(out, "CN=1012;") && strstr(out, "CP=&&SystemTime=20160801085857&&"));
    CHECK_EQ_INT(reparse(&Q), 0);
    CHECK(Q.has_system_time && Q.system_time == 1470013137);
    CHECK_EQ_INT(hj212_format_set_time(&h, "w01018", 1470013137, 8 * 3600, out, sizeof out, &n),
                 0);
    CHECK(strstr(out, "CP=&&PolId=w01018;SystemTime=20160801085857&&") != NULL);

    /* Annex C table C.1 example, from a header and a CP. */
    h.cn = 1000;
    CHECK_EQ_INT(hj212_format_packet(&h, "OverTime=5;ReCount=3", 20, out, sizeof out, &n), 0);
    CHECK_EQ_STR(out, "##0107QN=20160801085857223;ST=32;CN=1000;PW=123456;"
                      "MN=010000A8900016F000169DC0;Flag=5;CP=&&OverTime=5;ReCount=3&&CAC1\r\n");
    hj212_head sub = h;
    sub.cn = 2061;
    sub.flag = 7;
    sub.pnum = 2;
    sub.pno = 1;
    CHECK_EQ_INT(hj212_format_packet(&sub, "", 0, out, sizeof out, &n), 0);
    CHECK(strstr(out, ";Flag=7;PNUM=2;PNO=1;CP=&&&&") != NULL);
}

static const double awkward[] = {12.3, 0.1, -3.25, 1e-12, 123456.789012345678, 1.0 / 3,
                                 0, -0.0, 98765432109.5, 2.5e20};

static void round_trip(int version, int cn)
{
    static hj212_factor fs[4];
    memset(fs, 0, sizeof fs);
    const char *codes[] = {"a21026", "a19001", "w01018", "XV0001"};
    int k = 0;
    for (int i = 0; i < 4; i++) {
        strcpy(fs[i].code, codes[i]);
        for (int c = 0; c < STORAGE_NCOLS; c++) {
            fs[i].v[c] = awkward[k++ % 10];
            fs[i].mask |= (uint8_t)(1u << c);
        }
        fs[i].flag = "NTDF"[i];
        fs[i].has = HJ212_HAS_FLAG;
    }
    hj212_upload u = {
        {version == HJ212_V2017 ? "20160801085857223" : NULL, 31, cn, "123456",
         version == HJ212_V2017 ? "010000A8900016F000169DC0" : "88888880000001",
         version == HJ212_V2017 ? 5 : -1, 0, 0},
        version, 1470009600, 8 * 3600, fs, 4,
    };
    CHECK_EQ_INT(hj212_format_upload(&u, out, sizeof out, &n), 0);
    if (version == HJ212_V2005) {
        CHECK(strstr(out, ";02-") != NULL);   /* SO2 as its 2005 code */
        CHECK(strstr(out, ";S01-") != NULL);  /* O2 */
        CHECK(strstr(out, ";011-") != NULL);  /* COD */
        CHECK(strstr(out, "Flag=") == NULL || strstr(out, ";Flag=") == NULL);
    }
    CHECK_EQ_INT(reparse(&Q), 0);
    CHECK_EQ_INT(Q.cn, cn);
    CHECK_EQ_INT(Q.version, version);
    CHECK(Q.has_data_time && Q.data_time == 1470009600);
    CHECK_EQ_INT(Q.nfactors, 4);
    CHECK_EQ_INT(Q.nwarnings, 0);
    bool exact = true;
    for (int i = 0; i < 4; i++) {
        const hj212_factor *f = hj212_packet_factor(&Q, codes[i]);
        if (!f) {
            exact = false;
            continue;
        }
        uint8_t want = cn == 2011 ? (1u << STORAGE_COL_AVG | 1u << STORAGE_COL_ZSAVG) : 0x7F;
        exact = exact && f->mask == want && f->flag == fs[i].flag;
        for (int c = 0; c < STORAGE_NCOLS; c++)
            if (want & (1u << c))
                exact = exact && memcmp(&f->v[c], &fs[i].v[c], sizeof(double)) == 0;
    }
    CHECK(exact);
}

int main(void)
{
    test_replies();
    test_requests();
    round_trip(HJ212_V2017, 2061);
    round_trip(HJ212_V2017, 2011);
    round_trip(HJ212_V2017, 2051);
    round_trip(HJ212_V2005, 2031);
    round_trip(HJ212_V2005, 2011);
    return tap_done();
}
