/* test_hj212_parse.c: the data segment parser on what devices really send: fields in any
 * order, QN missing or as an epoch, 2005 packets, Flag bits, every suffix, text values that
 * hold delimiters, spaces, trailing ';', duplicates, long decimals, vendor codes, and the
 * errors and warnings for what cannot be read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"
#include "tap.h"

static hj212_packet P;
static hj212_error E;

static int parse(const char *s)
{
    memset(&E, 0, sizeof E);
    return hj212_parse(s, strlen(s), NULL, &P, &E);
}

static bool str_is(hj212_str s, const char *z)
{
    return s.p && s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

static double col(const char *code, int c)
{
    const hj212_factor *f = hj212_packet_factor(&P, code);
    return f && (f->mask & (1u << c)) ? f->v[c] : -999999;
}

static void test_header(void)
{
    /* Order varies; MN before ST, CP in the middle is not allowed but Flag after CN is. */
    CHECK_EQ_INT(parse("MN=010000A8900016F000169DC0;CN=2061;Flag=5;QN=20160801085857223;"
                       "ST=31;PW=123456;CP=&&DataTime=20160801080000&&"), 0);
    CHECK(str_is(P.mn, "010000A8900016F000169DC0"));
    CHECK(str_is(P.pw, "123456"));
    CHECK(str_is(P.qn, "20160801085857223"));
    CHECK_EQ_INT(P.st, 31);
    CHECK_EQ_INT(P.cn, 2061);
    CHECK_EQ_INT(P.flag, 5);
    CHECK_EQ_INT(P.version, HJ212_V2017);
    CHECK_EQ_INT(P.pnum, -1);
    CHECK(P.has_data_time);
    CHECK_EQ_INT(P.data_time, 1470009600); /* 2016-08-01 08:00 +08:00 = 00:00 UTC */

    /* 2005: no QN, no Flag, 14-character MN. */
    CHECK_EQ_INT(parse("ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&DataTime="
                       "20040516020111;B01-Rtd=50.5;011-Rtd=23.1&&"), 0);
    CHECK(P.qn.p == NULL);
    CHECK_EQ_INT(P.qn_ms, 0);
    CHECK_EQ_INT(P.flag, -1);
    CHECK_EQ_INT(P.version, HJ212_V2005);
    CHECK(col("w00000", STORAGE_COL_AVG) == 50.5);
    CHECK(col("w01018", STORAGE_COL_AVG) == 23.1);
    CHECK_EQ_STR(hj212_packet_factor(&P, "w01018")->orig, "011");
    CHECK(hj212_packet_factor(&P, "w01018")->has & HJ212_HAS_MAPPED);

    /* QN as a 13-digit epoch in ms; Flag versions. */
    CHECK_EQ_INT(parse("QN=1470013137223;ST=32;CN=2011;Flag=9;MN=X;CP=&&&&"), 0);
    CHECK_EQ_INT(P.qn_ms, 1470013137223LL);
    CHECK_EQ_INT(P.version, HJ212_V2025);
    CHECK_EQ_INT(P.flag & HJ212_FLAG_A, 1);
    CHECK_EQ_INT(parse("QN=20160801085857223;CN=2061;Flag=7;PNUM=12;PNO=3;CP=&&&&"), 0);
    CHECK_EQ_INT(P.flag & HJ212_FLAG_D, 2);
    CHECK_EQ_INT(P.pnum, 12);
    CHECK_EQ_INT(P.pno, 3);
    CHECK_EQ_INT(parse("CN=2011;Flag=1;CP=&&&&"), 0);
    CHECK_EQ_INT(P.version, HJ212_V2005);
    CHECK_EQ_INT(P.nfactors, 0);

    /* Spaces, trailing ';', no CP at all. */
    CHECK_EQ_INT(parse(" QN = 20160801085857223 ; CN=9014 ;;"), 0);
    CHECK(str_is(P.qn, "20160801085857223"));
    CHECK_EQ_INT(P.cn, 9014);
    CHECK(!P.has_cp);

    /* A QN that is no time is kept as text. */
    CHECK_EQ_INT(parse("QN=ABC;CN=9014;CP=&&&&"), 0);
    CHECK(str_is(P.qn, "ABC"));
    CHECK_EQ_INT(P.qn_ms, 0);
}

static void test_cp(void)
{
    CHECK_EQ_INT(parse("QN=20160801085857223;ST=31;CN=2061;PW=123456;MN=010000A8900016F000169DC0;"
                       "Flag=5;CP=&&DataTime=20160801080000;"
                       "a21026-Avg=12.3,a21026-Min=10.1,a21026-Max=14.0,a21026-ZsAvg=15.2,"
                       "a21026-ZsMin=11,a21026-ZsMax=16.5,a21026-Cou=0.41,a21026-Flag=N;"
                       "a19001-Rtd=-3.5,a19001-ZsRtd=7,a19001-EFlag=A01,"
                       "a19001-SampleTime=20160801075500;"
                       "SB1-RS=1;SB1-RT=23.5;"
                       "a34013-Avg=1.123456789012345678,a34013-Flag=T;&&"), 0);
    CHECK_EQ_INT(P.nfactors, 4);
    CHECK(col("a21026", STORAGE_COL_AVG) == 12.3);
    CHECK(col("a21026", STORAGE_COL_MIN) == 10.1);
    CHECK(col("a21026", STORAGE_COL_MAX) == 14.0);
    CHECK(col("a21026", STORAGE_COL_ZSAVG) == 15.2);
    CHECK(col("a21026", STORAGE_COL_ZSMIN) == 11);
    CHECK(col("a21026", STORAGE_COL_ZSMAX) == 16.5);
    CHECK(col("a21026", STORAGE_COL_COU) == 0.41);
    CHECK_EQ_INT(hj212_packet_factor(&P, "a21026")->flag, 'N');
    CHECK_EQ_INT(hj212_packet_factor(&P, "a21026")->mask, 0x7F);
    const hj212_factor *o2 = hj212_packet_factor(&P, "a19001");
    CHECK(col("a19001", STORAGE_COL_AVG) == -3.5);
    CHECK(col("a19001", STORAGE_COL_ZSAVG) == 7);
    CHECK(o2->has & HJ212_HAS_EFLAG && str_is(o2->eflag, "A01"));
    CHECK(o2->has & HJ212_HAS_SAMPLE_TIME && o2->sample_time == 1470009600 - 300);
    CHECK(!(o2->has & HJ212_HAS_FLAG));
    const hj212_factor *sb = hj212_packet_factor(&P, "SB1");
    CHECK(sb && sb->has & HJ212_HAS_RS && sb->rs == 1);
    CHECK(sb && sb->has & HJ212_HAS_RT && sb->rt == 23.5);
    CHECK(sb && sb->mask == 0);
    CHECK(col("a34013", STORAGE_COL_AVG) == strtod("1.123456789012345678", NULL));
    CHECK_EQ_INT(P.nwarnings, 0);
}

static void test_numbers(void)
{
    static const char *const nums[] = {
        "0", "-0", "12.3", "-12.30", "+5", "0.000000000001", "123456789.123456789012",
        "9007199254740993", "1e3", "-1.5E-3", "0.1", "33.33333333333333333333333333", "5.",
        ".5", "100000000000000000000000", "4503599627370497.5",
    };
    char seg[256];
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        snprintf(seg, sizeof seg, "CN=2011;CP=&&a21026-Rtd=%s&&", nums[i]);
        CHECK_EQ_INT(parse(seg), 0);
        double want = strtod(nums[i], NULL);
        double got = col("a21026", STORAGE_COL_AVG);
        CHECK(memcmp(&got, &want, sizeof got) == 0); /* bit for bit, -0 included */
        if (memcmp(&got, &want, sizeof got) != 0)
            printf("#   %s: got %.17g want %.17g\n", nums[i], got, want);
    }
    /* What is no number is dropped with a warning; the rest of the packet stays. */
    static const char *const bad[] = {"abc", "0x10", "inf", "nan", "1.2.3", "--1", "1e999",
                                      "12,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(seg, sizeof seg, "CN=2011;CP=&&a21026-Rtd=%s;a21002-Rtd=7&&", bad[i]);
        CHECK_EQ_INT(parse(seg), 0);
        /* "12,5" reads as 12 and a field "5" without '=': also one warning */
        bool is_comma = strchr(bad[i], ',') != NULL;
        CHECK_EQ_INT(P.nwarnings, 1);
        CHECK(col("a21002", STORAGE_COL_AVG) == 7);
        CHECK(col("a21026", STORAGE_COL_AVG) == (is_comma ? 12 : -999999));
    }
    CHECK_EQ_INT(parse("CN=2011;CP=&&a21026-Rtd=zz&&"), 0);
    CHECK(strstr(P.warn_msg, "a21026-Rtd") != NULL);
    CHECK_EQ_INT(P.warn_offset, 13);
    /* Empty values: absent, no warning. */
    CHECK_EQ_INT(parse("CN=2011;CP=&&a21026-Rtd=,a21026-Flag=;a21002-Rtd= &&"), 0);
    CHECK_EQ_INT(P.nwarnings, 0);
    CHECK_EQ_INT(P.nfactors, 2);
    CHECK_EQ_INT(hj212_packet_factor(&P, "a21026")->mask, 0);
}

static void test_text_and_kv(void)
{
    const char *s = "QN=20160801085857223;ST=32;CN=3020;PW=123456;MN=010000A8900016F000169DC0;"
                    "Flag=5;CP=&&DataTime=20100301145000;PolId=w01018;"
                    "i11001-Info=//a;b,c=d&&e//// ;i12001-Info=//x//,BeginTime=20100301000000,"
                    "EndTime=20100301235959;QnRtn=1;ExeRtn=100;SystemTime=20100301145000;"
                    "RtdInterval=30;PolId=w21003&&";
    CHECK_EQ_INT(parse(s), 0);
    const hj212_kv *kv = hj212_packet_kv(&P, "i11001-Info");
    CHECK(kv && kv->text && str_is(kv->val, "a;b,c=d&&e//"));
    kv = hj212_packet_kv(&P, "i12001-Info");
    CHECK(kv && kv->text && str_is(kv->val, "x"));
    kv = hj212_packet_kv(&P, "PolId");
    CHECK(kv && str_is(kv->val, "w21003")); /* duplicate: last wins */
    kv = hj212_packet_kv(&P, "RtdInterval");
    CHECK(kv && !kv->text && str_is(kv->val, "30"));
    CHECK(P.has_begin_time && P.begin_time == 1267401600 - 8 * 3600);
    CHECK(P.has_end_time && P.end_time == 1267401600 - 8 * 3600 + 86399);
    CHECK(P.has_system_time);
    CHECK_EQ_INT(P.qn_rtn, 1);
    CHECK_EQ_INT(P.exe_rtn, 100);
    CHECK(hj212_packet_kv(&P, "DataTime") == NULL);
    CHECK_EQ_INT(P.nwarnings, 0);

    /* Unterminated text runs to the end of CP, with a warning. */
    CHECK_EQ_INT(parse("CN=3020;CP=&&i11001-Info=//open;a21026-Rtd=1&&"), 0);
    kv = hj212_packet_kv(&P, "i11001-Info");
    CHECK(kv && str_is(kv->val, "open;a21026-Rtd=1"));
    CHECK_EQ_INT(P.nwarnings, 1);
}

static void test_duplicates_vendor_codes(void)
{
    CHECK_EQ_INT(parse("CN=2011;CP=&&a21026-Rtd=1,a21026-Rtd=2;XYZ01-Rtd=5;a21026-flag=D;"
                       "DataTime=20160801080000;DataTime=20160801090000;L5-Data=53.0&&"), 0);
    CHECK(col("a21026", STORAGE_COL_AVG) == 2);
    CHECK_EQ_INT(hj212_packet_factor(&P, "a21026")->flag, 'D'); /* suffixes: any case */
    CHECK(col("XYZ01", STORAGE_COL_AVG) == 5);
    CHECK_EQ_INT(P.data_time, 1470013200);
    const hj212_kv *kv = hj212_packet_kv(&P, "L5-Data");
    CHECK(kv && str_is(kv->val, "53.0"));

    /* Codes that could not be part of a series key are dropped with a warning. */
    CHECK_EQ_INT(parse("CN=2011;CP=&&a 21026-Rtd=1;averyveryverylongcode-Rtd=2;a_1.x-Rtd=3&&"),
                 0);
    CHECK_EQ_INT(P.nfactors, 1);
    CHECK(col("a_1.x", STORAGE_COL_AVG) == 3);
    CHECK_EQ_INT(P.nwarnings, 2);
    CHECK(strstr(P.warn_msg, "bad factor code") != NULL);

    /* 2005 codes kept when asked. */
    hj212_parse_options o = HJ212_PARSE_DEFAULTS;
    o.keep_2005_codes = true;
    const char *s = "CN=2011;CP=&&01-Rtd=3;S01-Rtd=8&&";
    CHECK_EQ_INT(hj212_parse(s, strlen(s), &o, &P, NULL), 0);
    CHECK(col("01", STORAGE_COL_AVG) == 3);
    CHECK_EQ_INT(parse(s), 0);
    CHECK(col("a34013", STORAGE_COL_AVG) == 3);
    CHECK(col("a19001", STORAGE_COL_AVG) == 8);

    /* The time zone offset is an option. */
    o = (hj212_parse_options)HJ212_PARSE_DEFAULTS;
    o.tz_offset_s = 0;
    s = "CN=2061;CP=&&DataTime=20160801080000&&";
    CHECK_EQ_INT(hj212_parse(s, strlen(s), &o, &P, NULL), 0);
    CHECK_EQ_INT(P.data_time, 1470038400);
}

static void test_errors(void)
{
    CHECK_EQ_INT(parse("QN=1;ST;CN=2011;CP=&&&&"), HJ212_ESYNTAX);
    CHECK_EQ_INT(E.offset, 5);
    CHECK_EQ_STR(E.key, "ST");
    CHECK(strstr(E.msg, "without '='") != NULL);
    CHECK_EQ_INT(parse("CN=2011;CP=&&a21026-Rtd=1"), HJ212_ESYNTAX);
    CHECK(strstr(E.msg, "not closed") != NULL);
    CHECK_EQ_STR(E.key, "CP");
    CHECK_EQ_INT(parse("CN=2011;CP=a21026-Rtd=1&&"), HJ212_ESYNTAX);
    CHECK_EQ_INT(E.offset, 11);
    CHECK_EQ_INT(parse("CN=2011;CP=&&"), HJ212_ESYNTAX);
    CHECK_EQ_INT(parse("CN=2011;=5;CP=&&&&"), HJ212_ESYNTAX);
    CHECK_EQ_INT(parse("CN=2011;CP=&&&&;CP="), HJ212_ESYNTAX);
    CHECK(strstr(E.msg, "second CP") != NULL);
    /* CP runs to the last "&&": a second CP inside it is a CP field, with a warning. */
    CHECK_EQ_INT(parse("CN=2011;CP=&&&&;CP=&&&&"), 0);
    CHECK_EQ_INT(P.nwarnings, 1);
    CHECK_EQ_INT(parse(""), 0);

    /* Too many factors or key/values: an error, not a silent cut. */
    static char big[16384];
    size_t n = (size_t)snprintf(big, sizeof big, "CN=2011;CP=&&");
    for (int i = 0; i <= HJ212_MAX_FACTORS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "f%03d-Rtd=1;", i);
    snprintf(big + n, sizeof big - n, "&&");
    CHECK_EQ_INT(parse(big), HJ212_ETOOMANY);
    CHECK_EQ_STR(E.key, "f096-Rtd");
    n = (size_t)snprintf(big, sizeof big, "CN=2011;CP=&&");
    for (int i = 0; i <= HJ212_MAX_KVS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "K%d=1;", i);
    snprintf(big + n, sizeof big - n, "&&");
    CHECK_EQ_INT(parse(big), HJ212_ETOOMANY);

    /* Bad header numbers and times are warnings. */
    CHECK_EQ_INT(parse("ST=3x;CN=2011;Flag=;CP=&&DataTime=20160231000000&&"), 0);
    CHECK_EQ_INT(P.st, -1);
    CHECK_EQ_INT(P.flag, -1);
    CHECK(!P.has_data_time);
    CHECK_EQ_INT(P.nwarnings, 3);
    CHECK(strstr(hj212_strerror(HJ212_ESYNTAX), "malformed") != NULL);
}

static void test_time(void)
{
    int64_t t;
    CHECK_EQ_INT(hj212_time_parse("19700101080000", 14, 8 * 3600, &t), 0);
    CHECK_EQ_INT(t, 0);
    CHECK_EQ_INT(hj212_time_parse("20240229235959", 14, 0, &t), 0);
    CHECK_EQ_INT(t, 1709251199);
    CHECK(hj212_time_parse("20230229000000", 14, 0, &t) < 0);
    CHECK(hj212_time_parse("20231301000000", 14, 0, &t) < 0);
    CHECK(hj212_time_parse("20231201240000", 14, 0, &t) < 0);
    CHECK(hj212_time_parse("2023120100000", 13, 0, &t) < 0);
    CHECK(hj212_time_parse("2023120100000a", 14, 0, &t) < 0);
    char buf[18];
    hj212_time_format(1709251199, 0, buf);
    CHECK_EQ_STR(buf, "20240229235959");
    hj212_qn_format(1470013137223LL, 8 * 3600, buf);
    CHECK_EQ_STR(buf, "20160801085857223");
}

int main(void)
{
    test_header();
    test_cp();
    test_numbers();
    test_text_and_kv();
    test_duplicates_vendor_codes();
    test_errors();
    test_time();
    return tap_done();
}
