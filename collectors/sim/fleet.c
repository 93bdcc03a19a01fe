/* fleet.c: the simulated fleet: who exists and how each DAQ unit behaves.
 *
 * From the seed alone it draws N facilities (a name, a USCC with a valid GB 32100 check
 * character, a region code and coordinates from a fixed set of real cities, an industry),
 * their 1-3 outlets (gas stacks, wastewater outfalls), one DAQ unit per outlet (MN, PW, HJ 212
 * version, CRC and Flag habits), the limits of its industry, and the events injected into its
 * data over the simulated days. The registry writer at the end turns it into the CSV files
 * the engine loads (engine/REGISTRY.md), so the engine and the simulator agree on limits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

void sim_options_defaults(sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->nfacilities = 10;
    o->start = 1793462400; /* 2026-11-01T00:00:00+08:00 */
    o->days = 1;
    o->minute_interval = 10;
    o->share_2005 = 0.05;
    o->share_modbus = 0.05;
    o->share_lower = 0.01;
    o->share_noack = 0.05;
    o->rate_off = 0.03;
    o->rate_fault = 0.03;
    o->rate_maint = 0.03;
    o->rate_exceed = 0.05;
    o->rate_flat = 0.01;
    o->rate_gap = 0.05;
    o->calibration = true;
}

/* ---- Tables ------------------------------------------------------------------------------ */

typedef struct industry_def {
    const char *name, *zh;
    int weight;
    int o2_ref_h, o2_min_h, o2_max_h; /* reference and normal measured O2, hundredths */
    int gas_min, gas_max, water;      /* outlets */
    int lim_h[3], lim_d[3];           /* SO2, NOx, PM mg/m3 at reference O2; 0: none */
    int flow_min, flow_max;           /* m3/s (gas) */
    int temp_min, temp_max;           /* C */
    int cod, nh3n_milli;              /* daily water limits, mg/L (NH3-N x1000) */
    int wflow_min, wflow_max;         /* L/s */
} industry_def;

/* Limits from DOMAIN.md "Typical limits"; where it names none (gas turbine PM and SO2,
 * cement, sintering, gas boilers, GB 8978 discharges) the values of the usual standards. */
static const industry_def industries[SIM_NINDUSTRIES] = {
    {"coal_power", "发电", 15, 600, 550, 750, 1, 3, 0, {35, 50, 10}, {0, 0, 0}, 150, 600, 45,
     60, 0, 0, 0, 0},
    {"coal_boiler", "热电", 20, 600, 600, 900, 1, 2, 0, {100, 100, 30}, {0, 0, 0}, 20, 120,
     50, 120, 0, 0, 0, 0},
    {"gas_turbine", "燃机发电", 5, 1500, 1400, 1600, 1, 2, 0, {35, 50, 5}, {0, 0, 0}, 200, 700,
     80, 110, 0, 0, 0, 0},
    {"waste_incineration", "环保能源", 8, 1100, 900, 1200, 1, 2, 0, {100, 300, 30},
     {80, 250, 20}, 30, 100, 130, 160, 0, 0, 0, 0},
    {"cement", "水泥", 10, 1000, 900, 1300, 1, 2, 0, {200, 400, 30}, {0, 0, 0}, 100, 300, 90,
     140, 0, 0, 0, 0},
    {"steel_sintering", "钢铁", 7, 1600, 1450, 1700, 1, 2, 0, {35, 50, 10}, {0, 0, 0}, 200,
     600, 80, 140, 0, 0, 0, 0},
    {"chemical", "化工", 15, 350, 300, 600, 1, 1, 1, {50, 200, 20}, {0, 0, 0}, 10, 60, 60, 150,
     100, 15000, 5, 80},
    {"sewage", "污水处理", 20, 0, 0, 0, 0, 0, 1, {0, 0, 0}, {0, 0, 0}, 0, 0, 0, 0, 50, 5000, 20,
     600},
};

typedef struct region_def {
    const char *code, *city;
    int lat_e4, lon_e4;
} region_def;

static const region_def regions[] = {
    {"110105", "北京", 399219, 1164431}, {"120116", "天津", 390032, 1177108},
    {"130102", "石家庄", 380425, 1145147}, {"130203", "唐山", 396309, 1181802},
    {"140105", "太原", 378497, 1125490}, {"150202", "包头", 406576, 1099402},
    {"210202", "大连", 389140, 1216147}, {"220102", "长春", 438171, 1253235},
    {"230102", "哈尔滨", 457567, 1266424}, {"310115", "上海", 312210, 1215447},
    {"320102", "南京", 320415, 1187969}, {"320205", "无锡", 315906, 1203583},
    {"320506", "苏州", 312706, 1206187}, {"330106", "杭州", 302594, 1201305},
    {"330203", "宁波", 298739, 1215500}, {"340104", "合肥", 318474, 1172591},
    {"350102", "福州", 260822, 1193064}, {"360102", "南昌", 286829, 1159178},
    {"370102", "济南", 366512, 1170209}, {"370202", "青岛", 360671, 1203826},
    {"410105", "郑州", 347578, 1136486}, {"420106", "武汉", 305375, 1143414},
    {"430104", "长沙", 282282, 1129387}, {"440106", "广州", 231250, 1133612},
    {"440305", "深圳", 225333, 1139303}, {"450103", "南宁", 228180, 1083660},
    {"500103", "重庆", 295531, 1065774}, {"510104", "成都", 306571, 1040817},
    {"520102", "贵阳", 265780, 1067131}, {"530102", "昆明", 250389, 1027187},
    {"610113", "西安", 342227, 1089509}, {"620102", "兰州", 360594, 1038343},
    {"640104", "银川", 384871, 1062780}, {"650102", "乌鲁木齐", 437930, 875901},
};
#define NREGIONS (sizeof regions / sizeof regions[0])

static const char *const trade_chars[] = {"华", "能", "国", "恒", "源", "泰", "盛", "新",
                                          "宏", "达", "嘉", "瑞", "鑫", "丰", "永", "安",
                                          "中", "科", "立", "信", "海", "明", "金", "远"};
#define NTRADE (sizeof trade_chars / sizeof trade_chars[0])

static const char *const gas_codes[SIM_NGAS] = {"a21026", "a21002", "a34013",
                                                "a19001", "a00000", "a01012"};
static const char *const gas_codes_2005[SIM_NGAS] = {"02", "03", "01", "S01", "B02", "S03"};
static const char *const water_codes[SIM_NWATER] = {"w01018", "w21003", "w01001", "w00000"};
static const char *const water_codes_2005[SIM_NWATER] = {"011", "060", "001", "B01"};

const char *sim_factor_code(int medium, int slot)
{
    if (medium == SIM_GAS)
        return slot >= 0 && slot < SIM_NGAS ? gas_codes[slot] : NULL;
    return slot >= 0 && slot < SIM_NWATER ? water_codes[slot] : NULL;
}

const char *sim_factor_code_2005(int medium, int slot)
{
    if (medium == SIM_GAS)
        return slot >= 0 && slot < SIM_NGAS ? gas_codes_2005[slot] : NULL;
    return slot >= 0 && slot < SIM_NWATER ? water_codes_2005[slot] : NULL;
}

const char *sim_industry_name(int industry)
{
    return industry >= 0 && industry < SIM_NINDUSTRIES ? industries[industry].name : "?";
}

/* ---- Identifiers ------------------------------------------------------------------------- */

static const char uscc_set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* A USCC: "91" (market regulation, enterprise), the region, a GB 11714 organization code
 * (8 digits and its check character), the GB 32100 check character. The organization code's
 * digits come from a bijection of the facility number, so codes never repeat in a fleet. */
static void make_uscc(uint64_t seed, uint32_t i, const char *region, char out[19])
{
    static const int ow[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    uint64_t body = ((uint64_t)i * 48271u + (seed % 100000000u)) % 100000000u;
    char org[9];
    int sum = 0;
    for (int k = 7; k >= 0; k--) {
        org[k] = (char)('0' + body % 10);
        body /= 10;
    }
    for (int k = 0; k < 8; k++)
        sum += (org[k] - '0') * ow[k];
    int c9 = 11 - sum % 11;
    org[8] = c9 == 10 ? 'X' : c9 == 11 ? '0' : (char)('0' + c9);
    memcpy(out, "91", 2);
    memcpy(out + 2, region, 6);
    memcpy(out + 8, org, 9);
    int s = 0, w = 1;
    for (int k = 0; k < 17; k++) {
        s += (int)(strchr(uscc_set, out[k]) - uscc_set) * w;
        w = w * 3 % 31;
    }
    int c = 31 - s % 31;
    out[17] = uscc_set[c == 31 ? 0 : c];
    out[18] = 0;
}

static const char hexd[] = "0123456789ABCDEF";

/* MNs: the region code, then hex digits of a bijective mix of the outlet number, so MNs are
 * unique: 18 for 2017 units (24 chars), 8 for 2005 units (14 chars). */
static void make_mn(uint64_t seed, uint32_t n, const char *region, bool v2005, char out[25])
{
    memcpy(out, region, 6);
    if (v2005) {
        uint32_t x = n ^ (uint32_t)seed; /* murmur3 fmix32: a bijection on 32 bits */
        x ^= x >> 16;
        x *= 0x85ebca6bu;
        x ^= x >> 13;
        x *= 0xc2b2ae35u;
        x ^= x >> 16;
        for (int k = 0; k < 8; k++)
            out[6 + k] = hexd[(x >> (28 - 4 * k)) & 15];
        out[14] = 0;
        return;
    }
    uint64_t x = sim_mix64(n ^ seed * 0x9e3779b97f4a7c15ull) ; /* bijective in n */
    out[6] = 'A';
    out[7] = hexd[seed & 15];
    for (int k = 0; k < 16; k++)
        out[8 + k] = hexd[(x >> (60 - 4 * k)) & 15];
    out[24] = 0;
}

/* ---- Outlets ----------------------------------------------------------------------------- */

static int pick_industry(sim_rng *g)
{
    int total = 0;
    for (int i = 0; i < SIM_NINDUSTRIES; i++)
        total += industries[i].weight;
    int r = (int)sim_between(g, 0, total - 1);
    for (int i = 0; i < SIM_NINDUSTRIES; i++) {
        if (r < industries[i].weight)
            return i;
        r -= industries[i].weight;
    }
    return 0;
}

/* A scaled level: value (in milli-units) at dec decimals. */
static int32_t scaled(int64_t milli, int dec)
{
    return (int32_t)sim_div_round(milli * sim_pow10(dec), 1000);
}

static void setup_gas(const industry_def *d, sim_rng *g, sim_outlet *o)
{
    o->o2_ref_h = d->o2_ref_h;
    o->o2_base_h = (int32_t)sim_between(g, d->o2_min_h, d->o2_max_h);
    for (int s = 0; s < 3; s++) { /* SO2, NOx, PM */
        sim_factor *f = &o->f[s];
        f->dec = (uint8_t)(s == SIM_F_PM ? sim_between(g, 1, 2) + (sim_between(g, 0, 2) > 0)
                                         : sim_between(g, 1, 2));
        if (f->dec > 2)
            f->dec = 2;
        f->limit_hour_milli = d->lim_h[s] * 1000;
        f->limit_day_milli = d->lim_d[s] * 1000;
        int lim = d->lim_d[s] ? d->lim_d[s] : d->lim_h[s];
        /* Normal levels sit at 25-50% of the strictest limit, so noise, load and O2 swings
         * never reach it: only injected episodes do. */
        int64_t zs_milli = (int64_t)lim * sim_between(g, 250, 500);
        f->zs_base = scaled(zs_milli, f->dec);
        f->base = (int32_t)sim_div_round((int64_t)f->zs_base * (2100 - o->o2_base_h),
                                         2100 - o->o2_ref_h);
        f->noise = (int32_t)sim_div_round((int64_t)f->base * 4, 100);
    }
    sim_factor *f = &o->f[SIM_F_O2];
    f->dec = (uint8_t)sim_between(g, 1, 2);
    f->base = scaled((int64_t)o->o2_base_h * 10, f->dec);
    f->noise = scaled(150, f->dec);
    f = &o->f[SIM_F_GFLOW];
    f->dec = (uint8_t)sim_between(g, 1, 2);
    f->base = scaled(sim_between(g, d->flow_min, d->flow_max) * 1000, f->dec);
    f->noise = (int32_t)sim_div_round((int64_t)f->base * 15, 1000);
    f = &o->f[SIM_F_TEMP];
    f->dec = 1;
    f->base = scaled(sim_between(g, d->temp_min * 10, d->temp_max * 10) * 100, 1);
    f->noise = 5;
}

static void setup_water(const industry_def *d, sim_rng *g, sim_outlet *o)
{
    sim_factor *f = &o->f[SIM_F_COD];
    f->dec = (uint8_t)sim_between(g, 1, 2);
    f->limit_day_milli = d->cod * 1000;
    f->base = scaled((int64_t)d->cod * sim_between(g, 300, 500), f->dec);
    f->noise = (int32_t)sim_div_round((int64_t)f->base * 5, 100);
    f = &o->f[SIM_F_NH3N];
    f->dec = (uint8_t)sim_between(g, 2, 3);
    f->limit_day_milli = d->nh3n_milli;
    f->base = scaled((int64_t)d->nh3n_milli * sim_between(g, 100, 400) / 1000, f->dec);
    f->noise = (int32_t)sim_div_round((int64_t)f->base * 8, 100);
    f = &o->f[SIM_F_PH];
    f->dec = 2;
    f->base = (int32_t)sim_between(g, 680, 760);
    f->noise = 5;
    f = &o->f[SIM_F_WFLOW];
    f->dec = (uint8_t)sim_between(g, 1, 2);
    f->base = scaled(sim_between(g, d->wflow_min, d->wflow_max) * 1000, f->dec);
    f->noise = (int32_t)sim_div_round((int64_t)f->base * 3, 100);
}

static void setup_habits(const sim_options *opt, sim_rng *g, sim_outlet *o)
{
    o->version = sim_chance(sim_next(g), opt->share_2005) ? SIM_V2005 : SIM_V2017;
    uint64_t r = sim_next(g);
    o->crc = sim_chance(r, opt->share_modbus)                     ? SIM_CRC_MODBUS
             : sim_chance(r, opt->share_modbus + opt->share_lower) ? SIM_CRC_LOWER
                                                                   : SIM_CRC_STD;
    bool noack = sim_chance(sim_next(g), opt->share_noack);
    if (o->version == SIM_V2005) {
        /* Half the 2005 units send no Flag (and no QN), half Flag=1 (2005, answer wanted). */
        o->has_flag = sim_next(g) & 1;
        o->flag = 1;
        o->ack = o->has_flag;
    } else {
        o->has_flag = true;
        o->flag = noack ? 4 : 5;
        o->ack = !noack;
    }
    for (int k = 0; k < 6; k++)
        o->pw[k] = (char)('0' + sim_between(g, 0, 9));
    o->pw[6] = 0;
    o->cal_minute = (uint16_t)sim_between(g, 60, 4 * 60 + 30);
    o->jitter_s = (uint16_t)sim_between(g, 0, 29);
    o->key = sim_next(g);
}

/* ---- Events ------------------------------------------------------------------------------ */

/* How many events of a rate over days: the whole part, and one more by chance. */
static int event_count(sim_rng *g, double rate, uint32_t days)
{
    double x = rate * days;
    int n = (int)x;
    if (sim_chance(sim_next(g), x - n))
        n++;
    return n;
}

#define EV_MARGIN (2 * 3600)

static bool overlaps(const sim_event *ev, uint32_t n, int64_t s, int64_t e)
{
    for (uint32_t i = 0; i < n; i++)
        if (s < ev[i].end + EV_MARGIN && ev[i].start < e + EV_MARGIN)
            return true;
    return false;
}

/* Places an event of whole hours (or a whole local day) that overlaps none of the outlet's
 * events so far; gives up after a few tries (the fleet is then simply calmer). */
static bool place(sim_rng *g, const sim_options *opt, sim_event *ev, uint32_t n, int type,
                  int hours_min, int hours_max, bool whole_day, sim_event *out)
{
    int64_t end = opt->start + (int64_t)opt->days * 86400;
    for (int tries = 0; tries < 12; tries++) {
        int64_t s, e;
        if (whole_day) {
            s = opt->start + 86400 * sim_between(g, 0, opt->days - 1);
            e = s + 86400;
        } else {
            int64_t h = sim_between(g, hours_min, hours_max);
            int64_t last = (end - opt->start - EV_MARGIN) / 3600 - h;
            if (last < 2)
                return false;
            s = opt->start + 3600 * sim_between(g, 2, last);
            e = s + 3600 * h;
        }
        if (e > end || overlaps(ev, n, s, e))
            continue;
        memset(out, 0, sizeof *out);
        out->start = s;
        out->end = e;
        out->type = (uint8_t)type;
        return true;
    }
    return false;
}

/* Whether [s, e) comes within the margin of one of the gaps among ev[0..n). */
static bool near_gap(const sim_event *ev, uint32_t n, int64_t s, int64_t e)
{
    for (uint32_t i = 0; i < n; i++)
        if (ev[i].type == SIM_EV_GAP && s < ev[i].end + EV_MARGIN && ev[i].start < e + EV_MARGIN)
            return true;
    return false;
}

/* Gaps that hide part of an exceedance episode (a share of them, drawn from a stream of its
 * own so the other events stay as they were): the hours (or the day's record) arrive only
 * when the platform asks for them back. An hourly episode loses a run of its hours, with up
 * to 2 h either side, so the gap can hide its start, its middle, its end or all of it; a daily
 * one loses the day's record (due at the next midnight) and up to 3 h of hours before it.
 * Hidden gaps overlap only the episode they hide (the margin keeps them clear of other
 * events), and end 2 h before the run does, so the unit is back to be asked. */
static uint32_t hide_exceedances(const sim_options *opt, const sim_outlet *o, sim_event *ev,
                                 uint32_t n, uint32_t cap)
{
    if (opt->share_gap_exceed <= 0)
        return n;
    sim_rng g = {o->key ^ 0x6a95c0ffeeull};
    int64_t run_end = opt->start + (int64_t)opt->days * 86400;
    uint32_t nev = n;
    for (uint32_t i = 0; i < nev && n < cap; i++) {
        const sim_event *x = &ev[i];
        if (x->type != SIM_EV_EXCEED || !sim_chance(sim_next(&g), opt->share_gap_exceed))
            continue;
        int64_t s, e;
        if (x->daily) {
            s = x->end - 3600 * sim_between(&g, 0, 3);
            e = x->end + 3600 * sim_between(&g, 1, 2);
        } else {
            /* Hours of the episode are due at start + 1 h ... end: hide due ticks a..b. */
            int64_t h = (x->end - x->start) / 3600;
            int64_t a = sim_between(&g, 1, h), b = sim_between(&g, a, h);
            s = x->start + 3600 * (a - sim_between(&g, 0, 2));
            e = x->start + 3600 * (b + 1 + sim_between(&g, 0, 1));
        }
        if (s < opt->start + 2 * 3600 || e > run_end - EV_MARGIN || near_gap(ev, n, s, e))
            continue;
        sim_event *gap = &ev[n++];
        memset(gap, 0, sizeof *gap);
        gap->start = s;
        gap->end = e;
        gap->type = SIM_EV_GAP;
    }
    return n;
}

static int cmp_event(const void *a, const void *b)
{
    const sim_event *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Draws the events of outlet o into ev (room for cap). */
static uint32_t make_events(const sim_options *opt, const sim_outlet *o, sim_event *ev,
                            uint32_t cap)
{
    sim_rng g = {o->key ^ 0x5eedull};
    uint32_t n = 0;
    const double rates[SIM_NEVENT_TYPES] = {opt->rate_off, opt->rate_fault, opt->rate_maint,
                                            opt->rate_exceed, opt->rate_flat, opt->rate_gap};
    for (int type = 0; type < SIM_NEVENT_TYPES; type++) {
        int count = event_count(&g, rates[type], opt->days);
        for (int k = 0; k < count && n < cap; k++) {
            sim_event e;
            bool ok = false;
            switch (type) {
            case SIM_EV_OFF: ok = place(&g, opt, ev, n, type, 6, 36, false, &e); break;
            case SIM_EV_FAULT: ok = place(&g, opt, ev, n, type, 1, 5, false, &e); break;
            case SIM_EV_MAINT: ok = place(&g, opt, ev, n, type, 2, 5, false, &e); break;
            case SIM_EV_GAP: ok = place(&g, opt, ev, n, type, 1, 6, false, &e); break;
            case SIM_EV_FLAT: {
                ok = place(&g, opt, ev, n, type, 24, 36, false, &e);
                e.factor = (uint8_t)(o->medium == SIM_GAS ? sim_between(&g, 0, 2)
                                                          : sim_between(&g, 0, 1));
                break;
            }
            case SIM_EV_EXCEED: {
                int slot = (int)(o->medium == SIM_GAS ? sim_between(&g, 0, 2)
                                                      : sim_between(&g, 0, 1));
                const sim_factor *f = &o->f[slot];
                bool daily = f->limit_hour_milli == 0 ||
                             (f->limit_day_milli > 0 && (sim_next(&g) & 1));
                ok = place(&g, opt, ev, n, type, 2, 5, daily, &e);
                e.factor = (uint8_t)slot;
                e.daily = daily;
                if (daily && f->limit_hour_milli > 0) {
                    /* A daily episode under an hourly limit too stays under the hourly one. */
                    int64_t cap_pm = (int64_t)f->limit_hour_milli * 1000 /
                                     f->limit_day_milli * 100 / 110;
                    e.peak_permille = (int32_t)sim_between(&g, 1080, 1150);
                    if (e.peak_permille > cap_pm)
                        e.peak_permille = (int32_t)cap_pm;
                } else if (daily) {
                    e.peak_permille = (int32_t)sim_between(&g, 1150, 1600);
                } else {
                    e.peak_permille = (int32_t)sim_between(&g, 1300,
                                                           f->limit_day_milli ? 1800 : 2500);
                }
                break;
            }
            }
            if (ok)
                ev[n++] = e;
        }
    }
    n = hide_exceedances(opt, o, ev, n, cap);
    qsort(ev, n, sizeof *ev, cmp_event);
    return n;
}

/* ---- The fleet --------------------------------------------------------------------------- */

static void make_facility(const sim_options *opt, uint32_t i, sim_facility *fa)
{
    sim_rng g = {sim_mix64(opt->seed) ^ sim_mix64(i + 1)};
    const region_def *rg = &regions[sim_between(&g, 0, NREGIONS - 1)];
    fa->industry = (uint8_t)pick_industry(&g);
    const industry_def *d = &industries[fa->industry];
    snprintf(fa->id, sizeof fa->id, "F%06u", i + 1);
    snprintf(fa->name, sizeof fa->name, "%s%s%s%s有限公司", rg->city,
             trade_chars[sim_between(&g, 0, NTRADE - 1)],
             trade_chars[sim_between(&g, 0, NTRADE - 1)], d->zh);
    memcpy(fa->region, rg->code, 7);
    make_uscc(opt->seed, i, rg->code, fa->uscc);
    fa->lat_e6 = rg->lat_e4 * 100 + (int32_t)sim_between(&g, -150000, 150000);
    fa->lon_e6 = rg->lon_e4 * 100 + (int32_t)sim_between(&g, -150000, 150000);
}

static uint32_t mn_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t k = 0; k < len; k++)
        h = (h ^ (uint8_t)s[k]) * 16777619u;
    return h ^ (h >> 15);
}

static void index_mn(sim_fleet *f)
{
    for (uint32_t i = 0; i < f->nout; i++) {
        const char *mn = f->out[i].mn;
        for (uint32_t s = mn_hash(mn, strlen(mn)) & (f->mn_cap - 1);;
             s = (s + 1) & (f->mn_cap - 1))
            if (!f->mn_index[s]) {
                f->mn_index[s] = i + 1;
                break;
            }
    }
}

int64_t sim_fleet_find_mn(const sim_fleet *f, const char *mn, size_t len)
{
    for (uint32_t s = mn_hash(mn, len) & (f->mn_cap - 1); f->mn_index[s];
         s = (s + 1) & (f->mn_cap - 1)) {
        const char *x = f->out[f->mn_index[s] - 1].mn;
        if (strlen(x) == len && memcmp(x, mn, len) == 0)
            return f->mn_index[s] - 1;
    }
    return -1;
}

int sim_fleet_create(const sim_options *opts, sim_fleet **out)
{
    *out = NULL;
    const sim_options *o = opts;
    if (o->nfacilities == 0 || o->nfacilities > 10000000 || o->days == 0 || o->days > 3660 ||
        (o->minute_interval && (o->minute_interval > 60 || 60 % o->minute_interval)) ||
        (o->rtd_interval_s && (o->rtd_interval_s > 3600 ||
                               (o->rtd_interval_s <= 60 ? 60 % o->rtd_interval_s
                                                        : o->rtd_interval_s % 60 ||
                                                              3600 % o->rtd_interval_s))))
        return -EINVAL;
    sim_fleet *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->opt = *o;
    f->opt.start = sim_local_day(o->start);
    uint32_t evcap = 64;
    f->fac = calloc(o->nfacilities, sizeof *f->fac);
    f->out = calloc((size_t)o->nfacilities * 3, sizeof *f->out);
    sim_event *tmp = malloc(evcap * sizeof *tmp);
    size_t evalloc = 1024;
    f->ev = malloc(evalloc * sizeof *f->ev);
    if (!f->fac || !f->out || !tmp || !f->ev)
        goto fail;
    for (uint32_t i = 0; i < o->nfacilities; i++) {
        sim_facility *fa = &f->fac[i];
        make_facility(&f->opt, i, fa);
        const industry_def *d = &industries[fa->industry];
        sim_rng g = {sim_mix64(o->seed ^ 0xfac1u) ^ sim_mix64(i + 1)};
        int ngas = d->gas_max ? (int)sim_between(&g, d->gas_min, d->gas_max) : 0;
        int nwater = d->water;
        if (fa->industry == SIM_IND_SEWAGE)
            nwater = sim_between(&g, 0, 4) == 0 ? 2 : 1;
        fa->first_outlet = f->nout;
        for (int k = 0; k < ngas + nwater; k++) {
            sim_outlet *ot = &f->out[f->nout];
            bool gas = k < ngas;
            ot->facility = i;
            ot->medium = gas ? SIM_GAS : SIM_WATER;
            ot->nf = gas ? SIM_NGAS : SIM_NWATER;
            snprintf(ot->code, sizeof ot->code, gas ? "DA%03d" : "DW%03d",
                     gas ? k + 1 : k - ngas + 1);
            if (gas)
                setup_gas(d, &g, ot);
            else
                setup_water(d, &g, ot);
            setup_habits(&f->opt, &g, ot);
            make_mn(o->seed, f->nout, fa->region, ot->version == SIM_V2005, ot->mn);
            uint32_t n = make_events(&f->opt, ot, tmp, evcap);
            if (f->nev + n > evalloc) {
                evalloc = (evalloc + n) * 2;
                sim_event *ne = realloc(f->ev, evalloc * sizeof *ne);
                if (!ne)
                    goto fail;
                f->ev = ne;
            }
            memcpy(f->ev + f->nev, tmp, n * sizeof *tmp);
            ot->first_event = f->nev;
            ot->nevents = n;
            f->nev += n;
            f->nout++;
        }
        fa->noutlets = f->nout - fa->first_outlet;
    }
    f->mn_cap = 16;
    while (f->mn_cap < f->nout * 2)
        f->mn_cap <<= 1;
    f->mn_index = calloc(f->mn_cap, sizeof *f->mn_index);
    if (!f->mn_index)
        goto fail;
    index_mn(f);
    free(tmp);
    *out = f;
    return 0;
fail:
    free(tmp);
    sim_fleet_destroy(f);
    return -ENOMEM;
}

void sim_fleet_destroy(sim_fleet *f)
{
    if (!f)
        return;
    free(f->fac);
    free(f->out);
    free(f->ev);
    free(f->mn_index);
    free(f);
}

const sim_options *sim_fleet_options(const sim_fleet *f) { return &f->opt; }
uint32_t sim_fleet_facility_count(const sim_fleet *f) { return f->opt.nfacilities; }
uint32_t sim_fleet_outlet_count(const sim_fleet *f) { return f->nout; }
const sim_facility *sim_fleet_facility(const sim_fleet *f, uint32_t i) { return &f->fac[i]; }
const sim_outlet *sim_fleet_outlet(const sim_fleet *f, uint32_t i) { return &f->out[i]; }
const sim_event *sim_fleet_event(const sim_fleet *f, uint32_t i) { return &f->ev[i]; }
int64_t sim_fleet_end(const sim_fleet *f)
{
    if (f->opt.hours && f->opt.hours < f->opt.days * 24)
        return f->opt.start + (int64_t)f->opt.hours * 3600;
    return f->opt.start + (int64_t)f->opt.days * 86400;
}

/* ---- Registry ---------------------------------------------------------------------------- */

/* A scaled value without trailing zeros ("35", "0.5", "116.4074"), NUL-terminated. */
static void fmt_trim(char *buf, int64_t v, int dec)
{
    int n = sim_fmt_fixed(buf, v, dec);
    if (dec > 0) {
        while (buf[n - 1] == '0')
            n--;
        if (buf[n - 1] == '.')
            n--;
    }
    buf[n] = 0;
}

static FILE *open_in(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fopen(path, "w");
}

int sim_registry_write(const sim_fleet *f, const char *dir)
{
    int rc = 0;
    FILE *fa = open_in(dir, "facilities.csv"), *ou = open_in(dir, "outlets.csv"),
         *li = open_in(dir, "limits.csv");
    if (!fa || !ou || !li) {
        rc = -errno;
        goto done;
    }
    fprintf(fa, "id,name,uscc,region,industry,lat,lon\r\n");
    fprintf(ou, "facility_id,code,medium,mn,pw,o2_ref,flow_weighted\r\n");
    fprintf(li, "facility_id,outlet,pollutant,value,unit,period,basis,valid_from,valid_to\r\n");
    for (uint32_t i = 0; i < f->opt.nfacilities; i++) {
        const sim_facility *x = &f->fac[i];
        char lat[24], lon[24];
        fmt_trim(lat, x->lat_e6, 6);
        fmt_trim(lon, x->lon_e6, 6);
        fprintf(fa, "%s,%s,%s,%s,%s,%s,%s\r\n", x->id, x->name, x->uscc, x->region,
                industries[x->industry].name, lat, lon);
        for (uint32_t k = x->first_outlet; k < x->first_outlet + x->noutlets; k++) {
            const sim_outlet *o = &f->out[k];
            char ref[16] = "";
            if (o->medium == SIM_GAS)
                fmt_trim(ref, o->o2_ref_h, 2);
            fprintf(ou, "%s,%s,%s,%s,%s,%s,%s\r\n", x->id, o->code,
                    o->medium == SIM_GAS ? "gas" : "water", o->mn, o->pw, ref,
                    o->medium == SIM_GAS ? "" : "false");
            for (int s = 0; s < o->nf; s++) {
                const sim_factor *sf = &o->f[s];
                for (int per = 0; per < 2; per++) {
                    int32_t lm = per ? sf->limit_day_milli : sf->limit_hour_milli;
                    if (!lm)
                        continue;
                    char v[24];
                    fmt_trim(v, lm, 3);
                    fprintf(li, "%s,%s,%s,%s,%s,%s,%s,,\r\n", x->id, o->code,
                            sim_factor_code(o->medium, s), v,
                            o->medium == SIM_GAS ? "mg/m3" : "mg/L", per ? "day" : "hour",
                            o->medium == SIM_GAS ? "zs" : "measured");
                }
            }
        }
    }
    if (ferror(fa) || ferror(ou) || ferror(li))
        rc = -EIO;
done:
    if (fa && fclose(fa) != 0 && !rc)
        rc = -EIO;
    if (ou && fclose(ou) != 0 && !rc)
        rc = -EIO;
    if (li && fclose(li) != 0 && !rc)
        rc = -EIO;
    return rc;
}
