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
 * the first period that breaks it (the condition fails, or a period is missing). Hours
 * missing inside an hourly run wait a little for late data (FIND_GAP_WAIT, findings.c). */
typedef struct frun {
    int64_t start, last;  /* period starts of the run; last == INT64_MIN: no run */
    double value;         /* flat lines: the run's value; others: the run's peak */
    double ref;           /* the threshold or computed value of the run's first period */
    uint32_t count;       /* periods in the run (before its gap, while one is open) */
    bool fired;
    /* Hours missing inside an hourly run (gap_start <= t < gap_end; gap_start INT64_MIN:
     * none), which history pulled later may fill: `filled` has bit i for hour gap_start +
     * i h once it arrived holding the condition; `post` periods from gap_end to last hold
     * it too, with their peak and first reference. */
    int64_t gap_start, gap_end;
    uint64_t filled;
    uint32_t post;
    double post_value, post_ref;
} frun;

/* Periods after a gap that wait for late periods to fill it before the run splits there. */
#define FIND_GAP_WAIT 6

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
/* The checks' state as bytes, kept in the store (live_state.c): appended to b; read back
 * from b with f's thresholds (a changed O2 window keeps the newest values). Decoding gives
 * 0, -EBADMSG or -ENOMEM. */
struct wbuf;
struct rbuf;
void fwatch_encode(const fwatch *w, struct wbuf *b);
int fwatch_decode(const findings *f, struct rbuf *b, fwatch **out);
/* Whether a stored time is INT64_MIN (none) or one the engine can do arithmetic on. */
bool fwatch_time_ok(int64_t t);
/* The codes w judges (borrowed while w lives), at most cap of them. */
size_t fwatch_codes(const fwatch *w, const char **out, size_t cap);
/* Judges the values of a reported hourly upload of outlet o. */
void findings_hour(findings *f, const judge_ctx *c, fwatch *w, const engine_outlet *o,
                   const engine_upload *u);
/* The run of mismatches of one code of the outlet (reported vs computed hours). */
frun *fwatch_mismatch_run(fwatch *w, const char *code);

/* ---- rollup_live.c and live_state.c: what the engine keeps per device ------------------ */

#define LIVE_MAX_MIN_CODES 16 /* factor codes rolled up per device */

struct group;

typedef struct lout {
    char mn[ENGINE_ID_SIZE];
    char codes[LIVE_MAX_MIN_CODES][ENGINE_POLLUTANT_SIZE]; /* codes seen in minute data */
    uint32_t ncodes;
    int64_t open_hour;        /* newest hour with minute data; INT64_MIN: none yet */
    int64_t last_min_ts;      /* newest minute record */
    int64_t min_step;         /* seconds between its last two minute records; 0: unknown */
    int64_t newest_end;       /* end of the newest period of any data; INT64_MIN: none */
    int64_t silent_start;     /* the silence that fired, or INT64_MIN */
    struct group *last_group; /* the last job queued, to skip repeats in one batch */
    int64_t last_key;
    fwatch *fw;               /* checks on reported hours; NULL until needed */
    bool dirty;               /* changed since its state was last staged into a batch */
    bool restored;            /* read back from the store; no data from the device since */
    int64_t saved_hour;       /* hour of newest_end when the state was last staged */
    uint64_t saved_seq;       /* key of its newest record in the store; 0: none */
} lout;

/* The table of device states: records keyed by a sequence number, each staged into the
 * batch that holds the data (and alerts) that changed the device's state. */
#define LIVE_STATE_TABLE "live"

/* o's persisted fields (MN included) as bytes: *out malloc'd, the caller frees it. 0 or
 * -ENOMEM. */
int live_state_encode(const lout *o, uint8_t **out, size_t *len);
/* Reads a record into o (everything else reset), with its checks' state (f's thresholds).
 * 0, -EBADMSG or -ENOMEM; on failure o holds no allocation. */
int live_state_decode(const findings *f, const void *buf, size_t len, lout *o);

typedef struct live_log live_log;
/* The device for mn, created if new; NULL when out of memory. */
typedef lout *(*live_get_fn)(void *arg, const char *mn);
/* Reads every record of st's table back, newest last, into the devices get gives: counts
 * the devices restored and the records that could not be read (skipped). 0, -ENOENT when
 * the store has no such table (then nothing can be kept), -ENOMEM or a storage error. */
int live_log_open(storage *st, const findings *f, live_get_fn get, void *arg, live_log **out,
                  size_t *restored, size_t *unreadable);
void live_log_close(live_log *g);
/* Stages o's record into b (o->saved_seq is its key). 0 or a negative code. */
int live_log_save(live_log *g, storage_batch *b, lout *o);
/* One step of pruning (call it every second or so, with every device): carries forward a
 * slice of devices whose newest record is about to go, or deletes a slice of old keys. */
void live_log_prune_step(live_log *g, storage_batch *b, lout *const *outlets, size_t n);
/* Records in the table (stale ones included). */
uint64_t live_log_records(const live_log *g);

#endif
