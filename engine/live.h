/* live.h: internal to engine/: the live roll-ups and data-quality findings that ingest.c
 * hooks into (rollup_live.c, findings.c).
 *
 * ingest.c calls live_upload for every accepted upload, with the same context judge.c gets;
 * everything else (rolling minutes up once their hour is committed, checking for silent
 * outlets) runs later on the loop, and asks the engine for the batch being built through
 * the ctx_fn given at creation. */
#ifndef PLUME_ENGINE_LIVE_H
#define PLUME_ENGINE_LIVE_H

#include "engine_int.h"

typedef struct live live;

/* Fills *out with the registry, alerts, store and the batch being built now. */
typedef void (*live_ctx_fn)(void *arg, judge_ctx *out);

/* o may be NULL for defaults (copied). 0 or -ENOMEM. Loop thread. */
int live_create(struct uv_loop_s *loop, const engine_live_opts *o, live_ctx_fn ctx_fn,
                void *ctx_arg, live **out);
/* Drops work not yet done and closes the loop handles (memory freed in their callbacks). */
void live_close(live *l);
/* Cheap: a hash lookup, a few compares; roll-ups wait for the commit of the batch in c. */
void live_upload(live *l, const judge_ctx *c, const engine_upload *u);
void live_get_stats(const live *l, engine_live_stats *out);

/* ---- findings.c: run detection of findings per outlet, and their alerts ---------------- */

/* One condition tracked over consecutive periods of one outlet (and code): a run of
 * periods where it holds; it fires once the run is min_count periods long and resolves at
 * the first period that breaks it (the condition fails, or a period is missing). */
typedef struct frun {
    int64_t start, last;  /* period starts of the run; last == INT64_MIN: no run */
    double value;         /* flat lines: the run's value; others: the run's peak */
    double ref;           /* the threshold or computed value of the run's first period */
    uint32_t count;
    bool fired;
} frun;

void frun_init(frun *r);

/* What a finding alert is about: the outlet (registry), the pollutant code ("" for the
 * outlet as a whole), the finding kind (enum engine_finding_kind). */
typedef struct finding_key {
    const engine_outlet *outlet;
    const char *code;
    int kind;
} finding_key;

typedef struct findings findings;

int findings_create(const engine_quality_opts *o, findings **out);
void findings_destroy(findings *f);
void findings_get_stats(const findings *f, engine_live_stats *out);

/* Feeds one period to run r. cond: the condition holds at ts (flat lines: the period is
 * judged, and equal is then decided against the run's value). Raises the alerts through c
 * (staged into c->batch). */
void findings_feed(findings *f, const judge_ctx *c, const finding_key *k, frun *r, int64_t ts,
                   int64_t step, bool cond, double value, double ref, uint32_t min_count);

/* A finding known whole at once (a silence seen only when data resumes): fires and
 * resolves. */
void findings_raise(findings *f, const judge_ctx *c, const finding_key *k, int64_t start,
                    int64_t end, double value, double ref, bool resolved);

/* Per-outlet state of the checks on reported hours (flat lines, zeros, dilution, flagged
 * days); opaque, one per outlet. */
typedef struct fwatch fwatch;
fwatch *fwatch_create(void);
void fwatch_destroy(fwatch *w);
/* Judges the values of a reported hourly upload of outlet o. */
void findings_hour(findings *f, const judge_ctx *c, fwatch *w, const engine_outlet *o,
                   const engine_upload *u);
/* The run of mismatches of one code of the outlet (reported vs computed hours). */
frun *fwatch_mismatch_run(fwatch *w, const char *code);

#endif
