/* engine_int.h: internal to engine/: what ingest.c and judge.c share. */
#ifndef PLUME_ENGINE_INT_H
#define PLUME_ENGINE_INT_H

#include "engine.h"

typedef struct judge judge;

/* What judging one upload needs from the engine: the registry and alerts in force, the
 * store (to prime detectors), the batch the upload's points went into, and a way to add an
 * acknowledgement to that batch's commit. */
typedef struct judge_ctx {
    const engine_registry *reg;
    engine_alerts *alerts;       /* NULL: episodes are judged, nothing is sent */
    storage *st;
    storage_batch *batch;
    void (*add_ack)(void *arg, engine_ack_fn fn, void *ack_arg);
    void *add_ack_arg;
} judge_ctx;

int judge_create(judge **out);
void judge_destroy(judge *j);
/* Judges the values of an hourly or daily upload that have a limit in force. */
void judge_upload(judge *j, const judge_ctx *c, const engine_upload *u);
/* Ends what judge_upload may keep open across the uploads of one batch (a reader of the
 * store): called when the batch is submitted. */
void judge_end_batch(judge *j);
void judge_get_stats(const judge *j, judge_stats *out);

#endif
