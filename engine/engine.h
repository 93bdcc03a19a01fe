/* engine.h: the domain layer of plume, its one public header.
 *
 * The engine turns readings into stored, judged data: the registry of facilities, outlets and
 * limits; the ingest pipeline; roll-ups from minute to hour to day by the validity rules;
 * exceedance and data-quality detection; the alert outbox and its delivery; configuration,
 * logging and time. It sits on storage/ and knows nothing of the collectors or the query
 * server above it.
 *
 * Conventions as in storage.h: 0 or a negative code, results through out-parameters.
 */
#ifndef PLUME_ENGINE_H
#define PLUME_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Time (timefmt.c) -------------------------------------------------------------- */

/* China Standard Time, the local time of HJ 212 DataTime and of daily averages. */
#define ENGINE_CST_OFFSET_S (8 * 3600)

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t engine_days_from_civil(int64_t y, unsigned m, unsigned d);
void engine_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Parses a timestamp of len bytes: Unix seconds ("1700000000"), or ISO 8601
 * "YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|+hh:mm|+hhmm|-hh:mm]" (a space may stand for T).
 * Without a zone the time is local at default_offset_s east of UTC. Fractions of a second
 * are dropped. Returns 0, or -EINVAL for anything else (a date like 2026-02-30 too). */
int engine_time_parse(const char *s, size_t len, int64_t default_offset_s, int64_t *out);

/* Formats t as ISO 8601 at offset_s east of UTC: "2026-11-22T08:00:00+08:00", or with
 * "Z" when offset_s is 0. buf needs 26 bytes. Returns the length written. */
int engine_time_format(int64_t t, int64_t offset_s, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
