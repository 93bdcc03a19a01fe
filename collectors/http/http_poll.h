/* http_poll.h: internal to collectors/http/. The state the poller keeps of each source
 * (state.c encodes it for the "sources" table) and the window a poll asks for (window.c). */
#ifndef PLUME_COLLECTORS_HTTP_POLL_H
#define PLUME_COLLECTORS_HTTP_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "http_src.h"

typedef struct http_state {
    int up;                 /* -1 unknown (never polled), 0 down, 1 up */
    int64_t since;          /* when it last changed (UTC seconds) */
    int64_t last_success, last_attempt, last_error_at;
    int64_t window_from;    /* start of the last window stored */
    int64_t cursor;         /* end of the last window stored; 0: none yet */
    uint64_t records, last_records, records_bad, polls, failures;
    uint32_t consecutive;   /* failures since the last success */
    char last_error[160];
    char etag[128], last_modified[64];
    uint64_t cond_key;      /* hash of the first-page URL the validators belong to */
} http_state;

/* The state as "field=value" lines into buf (cap bytes, NUL-terminated); its length. host and
 * next_poll (0: unknown) are shown, not read back. */
size_t http_state_format(const http_state *s, const char *host, int64_t next_poll, char *buf,
                         size_t cap);
/* Reads what http_state_format wrote; unknown fields are ignored. */
void http_state_parse(const char *text, size_t len, http_state *s);

/* The window [from, to) a poll at now asks for: to is the end of the last period complete
 * lag seconds ago, from the cursor (less the overlap) or to - lookback without one, and the
 * window is cut to max_window (*more tells there is more to catch up). Returns false when
 * there is nothing new to ask. */
bool http_window(const http_profile *p, int64_t cursor, int64_t now, int64_t *from,
                 int64_t *to, bool *more);

#endif
