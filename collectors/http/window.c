/* window.c: which time window a poll asks for. A platform publishes a period's records some
 * minutes after the period ends (the lag); asking too early and moving on would lose them,
 * so a poll asks only for periods complete lag seconds ago, from where the last stored window
 * ended (the cursor), optionally overlapping it to pick up late corrections (stored records
 * are replaced, never duplicated). After an outage the gap is fetched in windows of at most
 * max_window, one after the other, rather than in one request no platform would answer. */
#include "engine.h"
#include "http_poll.h"

bool http_window(const http_profile *p, int64_t cursor, int64_t now, int64_t *from,
                 int64_t *to, bool *more)
{
    int64_t t = now - p->lag_s;
    int64_t end = p->period_s == 86400
                      ? engine_period_start(ENGINE_PERIOD_DAY, t, ENGINE_CST_OFFSET_S)
                      : (t >= 0 ? t / p->period_s : -((-t + p->period_s - 1) / p->period_s)) *
                            p->period_s;
    int64_t start = cursor ? cursor - p->overlap_s : end - p->lookback_s;
    *more = false;
    if (start >= end)
        return false;
    if (end - start > p->max_window_s) {
        end = start + p->max_window_s;
        *more = true;
    }
    *from = start;
    *to = end;
    return true;
}
