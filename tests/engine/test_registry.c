/* The registry: USCC check characters, checked adds, lookups, limits over time, CSV and JSON
 * import with bad rows reported and the rest loaded, and the byte encoding round trip. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "tap.h"

#define LEN(s) (sizeof(s) - 1)

typedef struct errs {
    int n;
    char last[512];
} errs;

static void on_error(void *ud, const char *source, const char *where, const char *what)
{
    errs *e = ud;
    e->n++;
    snprintf(e->last, sizeof e->last, "%s: %s: %s", source, where, what);
    printf("# %s\n", e->last);
}

static void test_uscc(void)
{
    CHECK_EQ_INT(engine_uscc_check("91350100M000100Y43", 18), 0);
    CHECK_EQ_INT(engine_uscc_check("91110000600037341L", 18), 0);
    CHECK_EQ_INT(engine_uscc_check("91440300708461136T", 18), 0);
    CHECK_EQ_INT(engine_uscc_check("91350100M000100Y4B", 18), -EINVAL);
    CHECK_EQ_INT(engine_uscc_check("91350100M000100Y44", 18), -EINVAL);
    CHECK_EQ_INT(engine_uscc_check("91350100M000100Y4", 17), -EINVAL);
    CHECK_EQ_INT(engine_uscc_check("91350100I000100Y43", 18), -EINVAL); /* I never occurs */
    CHECK_EQ_INT(engine_uscc_check("91350100m000100Y43", 18), -EINVAL); /* upper case only */
    CHECK_EQ_INT(engine_uscc_check_char("91350100M000100Y4"), '3');
    CHECK_EQ_INT(engine_uscc_check_char("91350100O000100Y4"), 0);
    /* Constructed codes: every check character value occurs, and each verifies; changing
     * any one character of a valid code is caught. */
    char code[19];
    int seen[128] = {0}, bad = 0, caught = 0, changed = 0;
    for (int k = 0; k < 2000; k++) {
        snprintf(code, sizeof code, "9%d%06d%09d", k % 9 + 1, 110000 + k * 37 % 900000,
                 k * 7919);
        code[17] = engine_uscc_check_char(code);
        code[18] = 0;
        seen[(int)code[17]] = 1;
        bad += engine_uscc_check(code, 18) != 0;
        int at = k % 17;
        char keep = code[at];
        code[at] = keep == '5' ? '6' : '5';
        changed++;
        caught += engine_uscc_check(code, 18) != 0;
        code[at] = keep;
    }
    int distinct = 0;
    for (int i = 0; i < 128; i++)
        distinct += seen[i];
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(caught, changed);
    CHECK_EQ_INT(distinct, 31);
}

static engine_facility fac(const char *id, const char *uscc)
{
    engine_facility f;
    memset(&f, 0, sizeof f);
    snprintf(f.id, sizeof f.id, "%s", id);
    snprintf(f.name, sizeof f.name, "电厂 %s", id);
    snprintf(f.uscc, sizeof f.uscc, "%s", uscc);
    snprintf(f.region, sizeof f.region, "110105");
    f.lat = 39.9;
    f.lon = 116.4;
    return f;
}

static engine_outlet outlet(const char *fid, const char *code, const char *mn, int medium)
{
    engine_outlet o;
    memset(&o, 0, sizeof o);
    snprintf(o.facility_id, sizeof o.facility_id, "%s", fid);
    snprintf(o.code, sizeof o.code, "%s", code);
    snprintf(o.mn, sizeof o.mn, "%s", mn);
    o.medium = medium;
    o.o2_ref = medium == ENGINE_MEDIUM_GAS ? 6 : NAN;
    return o;
}

static engine_limit limit(const char *fid, const char *out, const char *pol, double v, int period,
                          int64_t from, int64_t to)
{
    engine_limit l;
    memset(&l, 0, sizeof l);
    snprintf(l.facility_id, sizeof l.facility_id, "%s", fid);
    snprintf(l.outlet, sizeof l.outlet, "%s", out);
    snprintf(l.pollutant, sizeof l.pollutant, "%s", pol);
    snprintf(l.unit, sizeof l.unit, "mg/m3");
    l.value = v;
    l.period = period;
    l.valid_from = from;
    l.valid_to = to;
    return l;
}

#define T2025 1735660800 /* 2025-01-01T00:00:00+08:00 */

static void test_model(void)
{
    engine_registry *r;
    char why[256];
    CHECK_EQ_INT(engine_registry_create(&r), 0);
    engine_facility f = fac("F001", "91350100M000100Y43");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), 0);
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EEXIST);
    f = fac("F002", "91350100M000100Y43");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EEXIST);
    CHECK(strstr(why, "uscc") != NULL);
    f = fac("F002", "91350100M000100Y4B");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EINVAL);
    CHECK_EQ_STR(why, "uscc: wrong check character 'B' (want '3')");
    f = fac("F002", "");
    strcpy(f.region, "11010");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EINVAL);
    CHECK_EQ_STR(why, "region: want 6 digits");
    f = fac("F002", "");
    f.lat = 91;
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EINVAL);
    f = fac("F 2", "");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), -EINVAL);
    f = fac("F002", "91110000600037341L");
    CHECK_EQ_INT(engine_registry_add_facility(r, &f, why, sizeof why), 0);

    engine_outlet o = outlet("F001", "DA001", "010000A8900016F000169DC0", ENGINE_MEDIUM_GAS);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), 0);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), -EEXIST);
    o = outlet("F002", "DA001", "010000A8900016F000169DC0", ENGINE_MEDIUM_GAS);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), -EEXIST); /* MN taken */
    o = outlet("F009", "DA001", "X1", ENGINE_MEDIUM_GAS);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), -ENOENT);
    o = outlet("F002", "DW001", "88888880000001", ENGINE_MEDIUM_WATER);
    o.flow_weighted = true;
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), 0);
    o = outlet("F002", "DA002", "MN;3", ENGINE_MEDIUM_GAS);
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), -EINVAL);
    o = outlet("F002", "DA002", "MN3", ENGINE_MEDIUM_GAS);
    o.o2_ref = 21;
    CHECK_EQ_INT(engine_registry_add_outlet(r, &o, why, sizeof why), -EINVAL);

    /* SO2 100 until 2025, then 35; NOx daily. */
    engine_limit l = limit("F001", "DA001", "a21026", 100, ENGINE_PERIOD_HOUR, INT64_MIN, T2025);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), 0);
    l = limit("F001", "DA001", "a21026", 35, ENGINE_PERIOD_HOUR, T2025, INT64_MAX);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), 0);
    l = limit("F001", "DA001", "a21026", 50, ENGINE_PERIOD_HOUR, T2025 + 86400, INT64_MAX);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), -EEXIST); /* overlaps */
    l = limit("F001", "DA001", "a21026", 80, ENGINE_PERIOD_DAY, INT64_MIN, INT64_MAX);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), 0); /* other period */
    l = limit("F001", "DA009", "a21026", 80, ENGINE_PERIOD_DAY, INT64_MIN, INT64_MAX);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), -ENOENT);
    l = limit("F001", "DA001", "a21002", 0, ENGINE_PERIOD_DAY, INT64_MIN, INT64_MAX);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), -EINVAL);
    l = limit("F001", "DA001", "a21002", 50, ENGINE_PERIOD_DAY, T2025, T2025);
    CHECK_EQ_INT(engine_registry_add_limit(r, &l, why, sizeof why), -EINVAL);

    const engine_outlet *po = engine_registry_outlet_by_mn(r, "010000A8900016F000169DC0", 24);
    CHECK(po != NULL && strcmp(po->code, "DA001") == 0);
    CHECK(engine_registry_outlet_by_mn(r, "010000A8900016F000169DC0;", 24) == po);
    CHECK(engine_registry_outlet_by_mn(r, "010000A8900016F000169DC", 23) == NULL);
    CHECK(engine_registry_outlet_by_mn(r, "88888880000001", 14) != NULL);
    CHECK(engine_registry_outlet(r, "F002", "DW001")->flow_weighted);
    CHECK(engine_registry_outlet(r, "F002", "DA001") == NULL);
    CHECK_EQ_STR(engine_registry_facility(r, "F002")->uscc, "91110000600037341L");
    CHECK_EQ_STR(engine_registry_facility_by_uscc(r, "91350100M000100Y43")->id, "F001");
    CHECK(engine_registry_facility_by_uscc(r, "") == NULL);
    CHECK(engine_registry_facility(r, "F003") == NULL);

    const engine_limit *pl;
    pl = engine_registry_limit_find(r, po, "a21026", ENGINE_PERIOD_HOUR, T2025 - 3600);
    CHECK(pl && pl->value == 100);
    pl = engine_registry_limit_find(r, po, "a21026", ENGINE_PERIOD_HOUR, T2025);
    CHECK(pl && pl->value == 35);
    pl = engine_registry_limit_find(r, po, "a21026", ENGINE_PERIOD_DAY, T2025);
    CHECK(pl && pl->value == 80);
    CHECK(engine_registry_limit_find(r, po, "a21002", ENGINE_PERIOD_HOUR, T2025) == NULL);
    CHECK_EQ_INT(engine_registry_facility_count(r), 2);
    CHECK_EQ_INT(engine_registry_outlet_count(r), 2);
    CHECK_EQ_INT(engine_registry_limit_count(r), 3);

    /* Encode, decode, encode again: the same bytes and the same answers. */
    uint8_t *buf, *buf2;
    size_t len, len2;
    CHECK_EQ_INT(engine_registry_encode(r, &buf, &len), 0);
    engine_registry *r2;
    CHECK_EQ_INT(engine_registry_decode(buf, len, &r2), 0);
    CHECK_EQ_INT(engine_registry_encode(r2, &buf2, &len2), 0);
    CHECK(len == len2 && memcmp(buf, buf2, len) == 0);
    po = engine_registry_outlet_by_mn(r2, "010000A8900016F000169DC0", 24);
    pl = engine_registry_limit_find(r2, po, "a21026", ENGINE_PERIOD_HOUR, T2025 + 1);
    CHECK(pl && pl->value == 35);
    CHECK_EQ_STR(engine_registry_facility(r2, "F001")->name, "电厂 F001");
    CHECK(isnan(engine_registry_outlet(r2, "F002", "DW001")->o2_ref));
    /* Truncations, a flipped magic and a trailing byte are refused. */
    int refused = 0;
    for (size_t cut = 0; cut < len; cut += 7) {
        engine_registry *bad = NULL;
        refused += engine_registry_decode(buf, cut, &bad) == -EBADMSG;
    }
    CHECK_EQ_INT(refused, (len + 6) / 7);
    buf2 = realloc(buf2, len + 1);
    buf2[len] = 0;
    engine_registry *bad = NULL;
    CHECK_EQ_INT(engine_registry_decode(buf2, len + 1, &bad), -EBADMSG);
    buf2[0] = 'X';
    CHECK_EQ_INT(engine_registry_decode(buf2, len, &bad), -EBADMSG);
    free(buf);
    free(buf2);
    engine_registry_destroy(r2);
    engine_registry_destroy(r);
}

/* Many outlets: the MN index survives growth. */
static void test_many(void)
{
    engine_registry *r;
    engine_registry_create(&r);
    char id[16], mn[32];
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "F%05d", i);
        engine_facility f = fac(id, "");
        bad += engine_registry_add_facility(r, &f, NULL, 0) != 0;
        snprintf(mn, sizeof mn, "MN%022d", i * 31);
        engine_outlet o = outlet(id, "DA001", mn, ENGINE_MEDIUM_GAS);
        bad += engine_registry_add_outlet(r, &o, NULL, 0) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    int miss = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(mn, sizeof mn, "MN%022d", i * 31);
        const engine_outlet *o = engine_registry_outlet_by_mn(r, mn, strlen(mn));
        snprintf(id, sizeof id, "F%05d", i);
        miss += !o || strcmp(o->facility_id, id) != 0;
    }
    CHECK_EQ_INT(miss, 0);
    /* Outlet i gets i % 4 limits, added interleaved with other outlets' limits: walking an
     * outlet's limits yields exactly its own. */
    static const char *pols[] = {"a21026", "a21002", "a34013"};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 5000; i++) {
            if (i % 4 <= round)
                continue;
            snprintf(id, sizeof id, "F%05d", i);
            engine_limit l = limit(id, "DA001", pols[round], 10 * (round + 1) + i,
                                   ENGINE_PERIOD_HOUR, INT64_MIN, INT64_MAX);
            bad += engine_registry_add_limit(r, &l, NULL, 0) != 0;
        }
    CHECK_EQ_INT(bad, 0);
    int wrong = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "F%05d", i);
        const engine_outlet *o = engine_registry_outlet(r, id, "DA001");
        int n = 0, seen = 0;
        for (const engine_limit *l = engine_registry_limit_next(r, o, NULL); l;
             l = engine_registry_limit_next(r, NULL, l)) {
            n++;
            for (int k = 0; k < 3; k++)
                if (strcmp(l->pollutant, pols[k]) == 0 && l->value == 10 * (k + 1) + i)
                    seen |= 1 << k;
            wrong += strcmp(l->facility_id, id) != 0 || strcmp(l->outlet, "DA001") != 0;
        }
        wrong += n != i % 4 || seen != (1 << (i % 4)) - 1;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(engine_registry_limit_next(r, NULL, NULL) == NULL);
    engine_registry_destroy(r);
}

static const char fac_csv[] =
    "\xEF\xBB\xBFid,name,USCC,region,industry,lat,lon,comment\r\n"
    "F001,\"华能 电厂, 一期\",91350100m000100y43,350100,D4411,26.07,119.3,x\r\n"
    "F002,Bad check,91350100M000100Y4B,350100,D4411,,,\r\n"
    "F003,\"Quoted \"\"name\"\"\nover two lines\",,110105,,,,\r\n"
    "F004,Short row\r\n"
    "\r\n"
    "F005,Bad lat,,110105,,north,116,\r\n"
    "F006, Spaces ,91110000600037341L, 110105 ,C3011,40,116.5,\r\n"
    "F008,\"say \"\"hi\"\"\",,,,,,\r\n"
    "F007,\"unterminated,,110105,,,,\r\n";

static const char out_csv[] =
    "facility_id,code,medium,mn,pw,o2_ref,flow_weighted\n"
    "F001,DA001,gas,010000A8900016F000169DC0,123456,6,\n"
    "F001,DW001,Water,88888880000001,,,yes\n"
    "F009,DA001,gas,MN9,,,\n"
    "F001,DA002,air,MN10,,,\n"
    "F006,DA001,gas,010000A8900016F000169DC0,,,\n"
    "F006,DA001,gas,MN11,,11,maybe\n";

static const char lim_csv[] =
    "facility_id,outlet,pollutant,value,period,basis,valid_from,valid_to\n"
    "F001,DA001,a21026,100,hour,,,2025-01-01\n"
    "F001,DA001,a21026,35,hour,zs,2025-01-01T00:00:00+08:00,\n"
    "F001,DA001,a21026,50,hour,zs,2025-06-01,\n"
    "F001,DW001,w01018,50,day,,,\n"
    "F001,DW001,w21003,5,week,,,\n"
    "F001,DA001,a21002,50,hour,zs,2026-02-30,\n";

static void test_csv(void)
{
    engine_registry *r;
    engine_registry_create(&r);
    errs e = {0};
    engine_import_report rep = {0, 0, on_error, &e};
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_FACILITIES, fac_csv, LEN(fac_csv),
                                          "facilities.csv", &rep), 0);
    CHECK_EQ_INT(rep.loaded, 3);
    CHECK_EQ_INT(rep.rejected, 5);
    CHECK_EQ_INT(e.n, 5);
    /* Line numbers count the line break inside F003's quoted name. */
    CHECK_EQ_STR(e.last, "facilities.csv: line 11: a quoted field is not closed");
    const engine_facility *f = engine_registry_facility(r, "F001");
    CHECK(f && strcmp(f->name, "华能 电厂, 一期") == 0);
    CHECK(f && strcmp(f->uscc, "91350100M000100Y43") == 0);
    CHECK(f && f->lat == 26.07 && f->lon == 119.3);
    CHECK(engine_registry_facility(r, "F003") == NULL); /* a line break in a name */
    f = engine_registry_facility(r, "F008");
    CHECK(f && strcmp(f->name, "say \"hi\"") == 0);
    CHECK(f && isnan(f->lat));
    f = engine_registry_facility(r, "F006");
    CHECK(f && strcmp(f->name, "Spaces") == 0 && strcmp(f->region, "110105") == 0);

    memset(&rep, 0, sizeof rep);
    rep.on_error = on_error;
    rep.ud = &e;
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_OUTLETS, out_csv, LEN(out_csv),
                                          "outlets.csv", &rep), 0);
    CHECK_EQ_INT(rep.loaded, 2);
    CHECK_EQ_INT(rep.rejected, 4);
    CHECK_EQ_STR(e.last, "outlets.csv: line 7: flow_weighted: \"maybe\" is none of "
                         "false|true|0|1|no|yes");
    const engine_outlet *o = engine_registry_outlet_by_mn(r, "88888880000001", 14);
    CHECK(o && o->medium == ENGINE_MEDIUM_WATER && o->flow_weighted && isnan(o->o2_ref));
    o = engine_registry_outlet_by_mn(r, "010000A8900016F000169DC0", 24);
    CHECK(o && strcmp(o->pw, "123456") == 0 && o->o2_ref == 6 && !o->flow_weighted);

    memset(&rep, 0, sizeof rep);
    rep.on_error = on_error;
    rep.ud = &e;
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_LIMITS, lim_csv, LEN(lim_csv),
                                          "limits.csv", &rep), 0);
    CHECK_EQ_INT(rep.loaded, 3);
    CHECK_EQ_INT(rep.rejected, 3);
    CHECK(strstr(e.last, "line 7: valid_from: not a time") != NULL);
    const engine_limit *l = engine_registry_limit_find(r, o, "a21026", ENGINE_PERIOD_HOUR,
                                                       T2025 - 1);
    CHECK(l && l->value == 100 && l->basis == ENGINE_BASIS_ZS && !strcmp(l->unit, "mg/m3"));
    l = engine_registry_limit_find(r, o, "a21026", ENGINE_PERIOD_HOUR, T2025);
    CHECK(l && l->value == 35);
    o = engine_registry_outlet(r, "F001", "DW001");
    l = engine_registry_limit_find(r, o, "w01018", ENGINE_PERIOD_DAY, T2025);
    CHECK(l && l->basis == ENGINE_BASIS_MEASURED && !strcmp(l->unit, "mg/L"));

    /* A header without a required column refuses the file. */
    memset(&rep, 0, sizeof rep);
    static const char nohdr[] = "facility_id,code,medium\nF001,DA003,gas\n";
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_OUTLETS, nohdr, LEN(nohdr), "o.csv",
                                          &rep), -EINVAL);
    CHECK_EQ_INT(rep.rejected, 1);
    static const char dup[] = "id,name,id\n";
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_FACILITIES, dup, LEN(dup), "f.csv",
                                          NULL), -EINVAL);
    CHECK_EQ_INT(engine_registry_load_csv(r, ENGINE_REG_FACILITIES, "", 0, "f.csv", NULL),
                 -EINVAL);
    engine_registry_destroy(r);
}

static const char reg_json[] =
    "{\"limits\": [\n"
    "  {\"facility_id\": \"F001\", \"outlet\": \"DA001\", \"pollutant\": \"a34013\",\n"
    "   \"value\": 10, \"period\": \"hour\", \"valid_from\": 1735660800},\n"
    "  {\"facility_id\": \"F001\", \"outlet\": \"DA001\", \"pollutant\": \"a34013\",\n"
    "   \"value\": \"ten\", \"period\": \"hour\"}\n"
    " ],\n"
    " \"facilities\": [\n"
    "  {\"id\": \"F001\", \"name\": \"Plant\", \"uscc\": \"91110000600037341L\", \"lat\": 40,\n"
    "   \"lon\": 116, \"extra\": {\"ignored\": false}},\n"
    "  {\"id\": \"F002\", \"name\": \"Plant 2\", \"lat\": null},\n"
    "  {\"id\": \"F003\"},\n"
    "  42\n"
    " ],\n"
    " \"outlets\": [\n"
    "  {\"facility_id\": \"F001\", \"code\": \"DA001\", \"medium\": \"gas\",\n"
    "   \"mn\": \"MN001\", \"o2_ref\": 6, \"flow_weighted\": false},\n"
    "  {\"facility_id\": \"F002\", \"code\": \"DW001\", \"medium\": \"water\", \"mn\": \"MN002\",\n"
    "   \"flow_weighted\": true}\n"
    " ]}\n";

static void test_json(void)
{
    engine_registry *r;
    engine_registry_create(&r);
    errs e = {0};
    engine_import_report rep = {0, 0, on_error, &e};
    CHECK_EQ_INT(engine_registry_load_json(r, reg_json, LEN(reg_json), "reg.json", &rep), 0);
    CHECK_EQ_INT(rep.loaded, 5);
    CHECK_EQ_INT(rep.rejected, 3);
    CHECK_EQ_STR(e.last, "reg.json: $.limits[1]: value: not a number: \"ten\"");
    const engine_outlet *o = engine_registry_outlet_by_mn(r, "MN001", 5);
    CHECK(o && o->o2_ref == 6);
    const engine_limit *l = engine_registry_limit_find(r, o, "a34013", ENGINE_PERIOD_HOUR,
                                                       T2025);
    CHECK(l && l->value == 10);
    CHECK(engine_registry_limit_find(r, o, "a34013", ENGINE_PERIOD_HOUR, T2025 - 1) == NULL);
    CHECK(engine_registry_outlet_by_mn(r, "MN002", 5)->flow_weighted);
    CHECK(engine_registry_facility(r, "F001")->lat == 40);
    static const char objlat[] = "{\"facilities\": [{\"id\": \"F7\", \"name\": \"n\", \"lat\": {}}]}";
    memset(&rep, 0, sizeof rep);
    rep.on_error = on_error;
    rep.ud = &e;
    CHECK_EQ_INT(engine_registry_load_json(r, objlat, LEN(objlat), "d.json", &rep), 0);
    CHECK_EQ_INT(rep.rejected, 1);
    CHECK_EQ_STR(e.last, "d.json: $.facilities[0]: lat: want a string, number, boolean or null");

    CHECK_EQ_INT(engine_registry_load_json(r, "[1,2]", 5, "a.json", NULL), -EINVAL);
    CHECK_EQ_INT(engine_registry_load_json(r, "{\"facilities\": [", 16, "b.json", NULL),
                 -EINVAL);
    memset(&rep, 0, sizeof rep);
    CHECK_EQ_INT(engine_registry_load_json(r, "{\"outlets\": 3}", 14, "c.json", &rep), 0);
    CHECK_EQ_INT(rep.rejected, 1);
    engine_registry_destroy(r);
}

static void test_files(void)
{
    char path[] = "/tmp/plume_registry_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(fac_csv, f);
    fclose(f);
    engine_registry *r;
    engine_registry_create(&r);
    engine_import_report rep = {0};
    CHECK_EQ_INT(engine_registry_load_csv_file(r, ENGINE_REG_FACILITIES, path, &rep), 0);
    CHECK_EQ_INT(rep.loaded, 3);
    unlink(path);
    CHECK_EQ_INT(engine_registry_load_csv_file(r, ENGINE_REG_FACILITIES, path, &rep), -ENOENT);
    CHECK_EQ_INT(engine_registry_load_json_file(r, path, &rep), -ENOENT);
    engine_registry_destroy(r);
}

int main(void)
{
    test_uscc();
    test_model();
    test_many();
    test_csv();
    test_json();
    test_files();
    return tap_done();
}
