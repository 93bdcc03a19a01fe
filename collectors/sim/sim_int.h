/* sim_int.h: what the simulator's files share and nobody else needs: the random generator,
 * the fleet's layout, and integer helpers. Randomness is counter-based: a value is
 * splitmix64 of a key made from what it is about (outlet, factor, minute, purpose), so any
 * value can be recomputed alone, in any order, and comes out the same everywhere. */
#ifndef PLUME_SIM_INT_H
#define PLUME_SIM_INT_H

#include <stdint.h>

#include "sim.h"

#define SIM_CST_S (8 * 3600) /* HJ 212 local time: UTC+08:00 */

struct sim_fleet {
    sim_options opt;
    sim_facility *fac;
    sim_outlet *out;
    sim_event *ev;
    uint32_t nfac, nout, nev;
    uint32_t *mn_index; /* open addressing over outlet numbers + 1, mn_cap slots */
    uint32_t mn_cap;
};

/* The splitmix64 finalizer: a bijection on 64 bits with good mixing. */
static inline uint64_t sim_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A random 64-bit value for (key, a, b). */
static inline uint64_t sim_rand3(uint64_t key, uint64_t a, uint64_t b)
{
    return sim_mix64(key ^ sim_mix64(a * 0x9e3779b97f4a7c15ull + b));
}

/* Uniform integer in [lo, hi] from a random value (hi - lo < 2^32). */
static inline int64_t sim_range(uint64_t r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)((r >> 32) * (uint64_t)(hi - lo + 1) >> 32);
}

/* A sequential stream, for building the fleet. */
typedef struct sim_rng {
    uint64_t s;
} sim_rng;

static inline uint64_t sim_next(sim_rng *g)
{
    g->s += 0x9e3779b97f4a7c15ull;
    uint64_t z = g->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline int64_t sim_between(sim_rng *g, int64_t lo, int64_t hi)
{
    return sim_range(sim_next(g), lo, hi);
}

/* True with probability p (0..1), decided by 53 random bits. */
static inline bool sim_chance(uint64_t r, double p)
{
    return (double)(r >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* Integer division rounding half away from zero (d > 0). */
static inline int64_t sim_div_round(int64_t n, int64_t d)
{
    return n >= 0 ? (n + d / 2) / d : -((-n + d / 2) / d);
}

static inline int64_t sim_pow10(int e)
{
    int64_t p = 1;
    while (e-- > 0)
        p *= 10;
    return p;
}

/* Local (UTC+8) day start of t. */
static inline int64_t sim_local_day(int64_t t)
{
    int64_t l = t + SIM_CST_S;
    int64_t d = l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
    return d * 86400 - SIM_CST_S;
}

/* What a period collects of one factor: over its valid inputs ([0]) and over all ([1]). */
typedef struct agg {
    int n, nvalid;
    int64_t sum[2], zsum[2], min[2], max[2], zmin[2], zmax[2];
    int64_t cou;
    uint16_t nflag[8];
} agg;

/* A day being collected from its hourly records, in order: the wire keeps one per unit so
 * that the daily record at midnight costs nothing more than the hours it already sent. */
typedef struct sim_day_acc {
    int64_t day;
    int hours; /* hours added in order from the day's start; -1: out of order */
    agg a[SIM_MAXF];
} sim_day_acc;

void sim_day_acc_add(sim_day_acc *acc, const sim_record *hour);
/* The daily record of day from acc when it holds that day's 24 hours (r->outlet must be set
 * on entry); false otherwise. */
bool sim_day_acc_record(const sim_fleet *f, const sim_day_acc *acc, int64_t day,
                        sim_record *r);

/* Formats a scaled integer v / 10^dec into p; returns the length. */
int sim_fmt_fixed(char *p, int64_t v, int dec);

#endif
