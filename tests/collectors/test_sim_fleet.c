/* test_sim_fleet.c: the simulated fleet is what it claims: the same seed gives the same fleet,
 * truth and packets byte for byte (and the same as on the machine that wrote this test);
 * USCCs carry valid GB 32100 and GB 11714 check characters; MNs are unique and well formed;
 * the habits (2005 format, MODBUS CRC, no answer) come in the configured shares; limits and
 * reference O2 follow the industry; the registry files are written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "sim.h"
#include "tap.h"

static uint64_t fnv(const char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    return h;
}

/* Everything a fleet produces, as bytes: truth, then every packet of the run. */
static char *run_bytes(const sim_options *o, size_t *len)
{
    sim_fleet *f = NULL;
    char *buf = NULL;
    if (sim_fleet_create(o, &f) != 0)
        return NULL;
    FILE *m = open_memstream(&buf, len);
    sim_truth_write(f, m);
    sim_packets_write(f, m);
    fclose(m);
    sim_fleet_destroy(f);
    return buf;
}

static void test_determinism(void)
{
    sim_options o;
    sim_options_defaults(&o);
    o.nfacilities = 25;
    o.days = 2;
    o.seed = 42;
    o.rate_exceed = o.rate_gap = o.rate_flat = 0.3;
    size_t la, lb, lc;
    char *a = run_bytes(&o, &la), *b = run_bytes(&o, &lb);
    CHECK(a && b && la > 100000);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    /* The digest fixes the output across machines and C libraries: integer arithmetic only. */
    uint64_t h = fnv(a, la, 0xcbf29ce484222325ull);
    printf("# %zu bytes, digest %016llx\n", la, (unsigned long long)h);
    CHECK(h == 0xd1f0550070e83cdaull); /* a gap's hours_to: the last hour not sent */
    o.seed = 43;
    char *c = run_bytes(&o, &lc);
    CHECK(c && (lc != la || memcmp(a, c, la) != 0));
    free(a);
    free(b);
    free(c);

    /* Adding facilities leaves the first ones as they were. */
    sim_fleet *f1, *f2;
    o.seed = 42;
    CHECK(sim_fleet_create(&o, &f1) == 0);
    o.nfacilities = 50;
    CHECK(sim_fleet_create(&o, &f2) == 0);
    bool same = true;
    for (uint32_t i = 0; i < sim_fleet_facility_count(f1); i++)
        same &= memcmp(sim_fleet_facility(f1, i), sim_fleet_facility(f2, i),
                       sizeof(sim_facility)) == 0;
    for (uint32_t i = 0; i < sim_fleet_outlet_count(f1); i++)
        same &= strcmp(sim_fleet_outlet(f1, i)->mn, sim_fleet_outlet(f2, i)->mn) == 0;
    CHECK(same);
    sim_fleet_destroy(f1);
    sim_fleet_destroy(f2);
}

/* GB 32100: 18 characters from the set, check character over the first 17 with weights
 * 3^i mod 31; the embedded organization code (GB 11714) has its own check character. */
static bool uscc_valid(const char *s)
{
    static const char set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static const int ow[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    if (strlen(s) != 18)
        return false;
    int sum = 0, w = 1;
    for (int i = 0; i < 17; i++) {
        const char *p = strchr(set, s[i]);
        if (!p || !s[i])
            return false;
        sum += (int)(p - set) * w;
        w = w * 3 % 31;
    }
    int c = (31 - sum % 31) % 31;
    if (s[17] != set[c])
        return false;
    int os = 0;
    for (int i = 0; i < 8; i++)
        os += (s[8 + i] - '0') * ow[i];
    int c9 = 11 - os % 11;
    char want = c9 == 10 ? 'X' : c9 == 11 ? '0' : (char)('0' + c9);
    return s[16] == want;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_identities(void)
{
    sim_options o;
    sim_options_defaults(&o);
    o.nfacilities = 3000;
    o.seed = 7;
    sim_fleet *f;
    CHECK(sim_fleet_create(&o, &f) == 0);
    uint32_t nf = sim_fleet_facility_count(f), no = sim_fleet_outlet_count(f);
    CHECK(nf == 3000);
    CHECK(no >= nf && no <= 3 * nf);
    int bad_uscc = 0, bad_region = 0, bad_outlets = 0;
    char **usccs = malloc(nf * sizeof *usccs);
    for (uint32_t i = 0; i < nf; i++) {
        const sim_facility *x = sim_fleet_facility(f, i);
        bad_uscc += !uscc_valid(x->uscc) || memcmp(x->uscc + 2, x->region, 6) != 0;
        bad_region += strlen(x->region) != 6 || strspn(x->region, "0123456789") != 6;
        bad_outlets += x->noutlets < 1 || x->noutlets > 3;
        usccs[i] = (char *)x->uscc;
    }
    CHECK_EQ_INT(bad_uscc, 0);
    CHECK_EQ_INT(bad_region, 0);
    CHECK_EQ_INT(bad_outlets, 0);
    qsort(usccs, nf, sizeof *usccs, cmp_str);
    int dup = 0;
    for (uint32_t i = 1; i < nf; i++)
        dup += strcmp(usccs[i - 1], usccs[i]) == 0;
    CHECK_EQ_INT(dup, 0);
    free(usccs);

    char **mns = malloc(no * sizeof *mns);
    int bad_mn = 0, n2005 = 0, nmodbus = 0, nlower = 0, nnoack = 0, n2017 = 0, bad_ref = 0;
    for (uint32_t i = 0; i < no; i++) {
        const sim_outlet *x = sim_fleet_outlet(f, i);
        size_t len = strlen(x->mn);
        bool hex = strspn(x->mn, "0123456789ABCDEF") == len;
        bad_mn += !hex || len != (x->version == SIM_V2005 ? 14u : 24u);
        bad_mn += sim_fleet_find_mn(f, x->mn, len) != (int64_t)i;
        mns[i] = (char *)x->mn;
        n2005 += x->version == SIM_V2005;
        nmodbus += x->crc == SIM_CRC_MODBUS;
        nlower += x->crc == SIM_CRC_LOWER;
        if (x->version == SIM_V2017) {
            n2017++;
            nnoack += !x->ack;
        }
        /* Reference O2 by industry; gas pollutants have limits, water ones daily limits. */
        int ind = sim_fleet_facility(f, x->facility)->industry;
        if (x->medium == SIM_GAS) {
            int want = ind == SIM_IND_COAL_POWER || ind == SIM_IND_COAL_BOILER ? 600
                       : ind == SIM_IND_WASTE_INCIN                            ? 1100
                       : ind == SIM_IND_CEMENT                                 ? 1000
                       : ind == SIM_IND_GAS_TURBINE                            ? 1500
                       : ind == SIM_IND_SINTER                                 ? 1600
                                                                               : 350;
            bad_ref += x->o2_ref_h != want || x->f[SIM_F_SO2].limit_hour_milli <= 0;
            if (ind == SIM_IND_COAL_POWER)
                bad_ref += x->f[SIM_F_SO2].limit_hour_milli != 35000 ||
                           x->f[SIM_F_NOX].limit_hour_milli != 50000 ||
                           x->f[SIM_F_PM].limit_hour_milli != 10000;
            if (ind == SIM_IND_WASTE_INCIN)
                bad_ref += x->f[SIM_F_SO2].limit_day_milli != 80000 ||
                           x->f[SIM_F_NOX].limit_hour_milli != 300000;
        } else {
            bad_ref += x->f[SIM_F_COD].limit_day_milli <= 0 || x->o2_ref_h != 0;
            if (ind == SIM_IND_SEWAGE)
                bad_ref += x->f[SIM_F_COD].limit_day_milli != 50000 ||
                           x->f[SIM_F_NH3N].limit_day_milli != 5000;
        }
    }
    CHECK_EQ_INT(bad_mn, 0);
    CHECK_EQ_INT(bad_ref, 0);
    qsort(mns, no, sizeof *mns, cmp_str);
    dup = 0;
    for (uint32_t i = 1; i < no; i++)
        dup += strcmp(mns[i - 1], mns[i]) == 0;
    CHECK_EQ_INT(dup, 0);
    free(mns);
    printf("# %u outlets: 2005 %d, modbus %d, lower %d, noack %d of %d\n", no, n2005, nmodbus,
           nlower, nnoack, n2017);
    /* Shares within a few standard deviations of 5%, 5%, 1%, 5%. */
    CHECK(n2005 > no * 0.03 && n2005 < no * 0.07);
    CHECK(nmodbus > no * 0.03 && nmodbus < no * 0.07);
    CHECK(nlower > 0 && nlower < no * 0.025);
    CHECK(nnoack > n2017 * 0.03 && nnoack < n2017 * 0.07);
    sim_fleet_destroy(f);

    /* Shares are options. */
    o.nfacilities = 200;
    o.share_2005 = 0;
    o.share_modbus = 1;
    CHECK(sim_fleet_create(&o, &f) == 0);
    int all = 1;
    for (uint32_t i = 0; i < sim_fleet_outlet_count(f); i++)
        all &= sim_fleet_outlet(f, i)->version == SIM_V2017 &&
               sim_fleet_outlet(f, i)->crc == SIM_CRC_MODBUS;
    CHECK(all);
    sim_fleet_destroy(f);
}

static void test_registry(void)
{
    char dir[] = "/tmp/plume-sim-reg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    sim_options o;
    sim_options_defaults(&o);
    o.nfacilities = 30;
    sim_fleet *f;
    CHECK(sim_fleet_create(&o, &f) == 0);
    CHECK(sim_registry_write(f, dir) == 0);
    const char *names[] = {"facilities.csv", "outlets.csv", "limits.csv"};
    size_t lines[3] = {0};
    /* The engine loads them without refusing a record (engine/REGISTRY.md). */
    engine_registry *reg;
    CHECK(engine_registry_create(&reg) == 0);
    size_t loaded = 0, rejected = 0;
    for (int k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        engine_import_report rep = {0};
        CHECK(engine_registry_load_csv_file(reg, k, path, &rep) == 0);
        loaded += rep.loaded;
        rejected += rep.rejected;
    }
    CHECK_EQ_INT(rejected, 0);
    CHECK_EQ_INT(engine_registry_facility_count(reg), 30);
    CHECK_EQ_INT(engine_registry_outlet_count(reg), sim_fleet_outlet_count(f));
    const sim_outlet *o0 = sim_fleet_outlet(f, 0);
    const engine_outlet *eo = engine_registry_outlet_by_mn(reg, o0->mn, strlen(o0->mn));
    CHECK(eo != NULL && strcmp(eo->code, o0->code) == 0);
    if (eo && o0->medium == SIM_GAS)
        CHECK(eo->o2_ref * 100 > o0->o2_ref_h - 0.5 && eo->o2_ref * 100 < o0->o2_ref_h + 0.5);
    if (eo) {
        const engine_limit *l = engine_registry_limit_find(reg, eo, sim_factor_code(o0->medium, 0),
                                                           o0->f[0].limit_hour_milli
                                                               ? ENGINE_PERIOD_HOUR
                                                               : ENGINE_PERIOD_DAY,
                                                           sim_fleet_options(f)->start);
        int32_t lm = o0->f[0].limit_hour_milli ? o0->f[0].limit_hour_milli
                                               : o0->f[0].limit_day_milli;
        CHECK(l != NULL && l->value * 1000 > lm - 0.5 && l->value * 1000 < lm + 0.5);
    }
    engine_registry_destroy(reg);
    for (int k = 0; k < 3; k++) {
        char path[256], line[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *fp = fopen(path, "r");
        CHECK(fp != NULL);
        while (fp && fgets(line, sizeof line, fp))
            lines[k]++;
        if (fp)
            fclose(fp);
        unlink(path);
    }
    rmdir(dir);
    CHECK_EQ_INT(lines[0], 31);
    CHECK_EQ_INT(lines[1], sim_fleet_outlet_count(f) + 1);
    CHECK(lines[2] > lines[1]);
    CHECK(sim_registry_write(f, "/nonexistent/dir") < 0);
    sim_fleet_destroy(f);

    /* Bad options are refused. */
    o.minute_interval = 7;
    CHECK(sim_fleet_create(&o, &f) < 0);
    o.minute_interval = 10;
    o.nfacilities = 0;
    CHECK(sim_fleet_create(&o, &f) < 0);
}

int main(void)
{
    test_determinism();
    test_identities();
    test_registry();
    return tap_done();
}
