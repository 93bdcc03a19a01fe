/* mn_table.h: internal to collectors/. What the HJ 212 server remembers of each device (MN):
 * its password once checked, its current connection, its newest hourly record (to see gaps),
 * and the state of a history request. A hash table keyed by MN; entries live as long as the
 * table, so pointers to them stay valid. */
#ifndef PLUME_COLLECTORS_MN_TABLE_H
#define PLUME_COLLECTORS_MN_TABLE_H

#include <stdint.h>

typedef struct mn_state {
    char mn[32];
    char pw[17];                /* as checked: at most 16 characters (REGISTRY.md) */
    uint32_t conn_slot;         /* the connection that last carried it, as a slot and */
    uint32_t conn_gen;          /* generation in the server's connection table; 0: none */
    int64_t last_hour;          /* newest hourly DataTime seen (UTC), 0: none */
    int64_t gap_begin, gap_end; /* hours still to request back, inclusive (if hour_gap) */
    int64_t day_begin, day_end; /* days still to request back, inclusive (if day_gap) */
    int64_t pull_begin, pull_end; /* the range of the request in flight */
    int64_t last_clock_set;     /* when we last sent it 1012 (UTC seconds) */
    int64_t pull_qn_ms;         /* the QN of the history request in flight */
    uint64_t pull_sent_ms;      /* loop time it was sent */
    int st;                     /* its system code (31 gas, 32 water ...) */
    uint16_t pull_cn;           /* 2061 or 2031: what the request in flight asks for */
    uint8_t pull_queued, pull_active;
    uint8_t hour_gap, day_gap;  /* ranges waiting to be requested */
} mn_state;

typedef struct mn_table mn_table;

int mn_table_create(mn_table **out);
void mn_table_destroy(mn_table *t);
/* The state of mn, or NULL. */
mn_state *mn_table_find(const mn_table *t, const char *mn);
/* Adds mn (zeroed state); NULL when out of memory or mn is 32 bytes or longer. */
mn_state *mn_table_insert(mn_table *t, const char *mn);
uint64_t mn_table_count(const mn_table *t);

#endif
