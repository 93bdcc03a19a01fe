/* hj212_factors_table.h: internal to collectors/hj212/. The factor table that the build
 * generates from factor_codes.csv (gen_factors.py), sorted by code, and an index of the
 * entries that have a 2005 code, sorted by that code. */
#ifndef PLUME_HJ212_FACTORS_TABLE_H
#define PLUME_HJ212_FACTORS_TABLE_H

#include "hj212.h"

extern const hj212_factor_info hj212__factor_table[];
extern const size_t hj212__factor_table_len;
extern const uint16_t hj212__factor_by_2005[];
extern const size_t hj212__factor_by_2005_len;

#endif
