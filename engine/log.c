/* log.c: logfmt lines on stderr, one per state change. A server with tens of thousands of
 * devices must not log per packet: callers log transitions (connected, refused, down) and
 * periodic summaries, and this file keeps the format uniform so lines can be grepped and
 * parsed: `ts=2026-11-22T08:00:00.123Z level=info msg="device connected" mn=0100... peer=...`.
 * Writes are one fputs of a whole line, so lines from different threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static int log_level = ENGINE_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void engine_log_set_level(int level)
{
    log_level = level;
}

int engine_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

bool engine_log_enabled(int level)
{
    return level >= log_level;
}

/* Appends s to buf at *pos, quoted and escaped if logfmt needs it. */
static void put_value(char *buf, size_t cap, size_t *pos, const char *s)
{
    bool quote = *s == '\0';
    for (const char *p = s; *p && !quote; p++)
        quote = *p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20;
    if (*pos + 1 < cap && quote)
        buf[(*pos)++] = '"';
    for (const char *p = s; *p && *pos + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c == '\n') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'n';
        } else if (c < 0x20) {
            buf[(*pos)++] = '?';
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
    if (*pos + 1 < cap && quote)
        buf[(*pos)++] = '"';
}

static size_t put_head(char *buf, size_t cap, int level, const char *msg)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char ts[40];
    engine_time_format(now.tv_sec, 0, ts, sizeof ts);
    ts[19] = '\0'; /* drop the zone; milliseconds and Z follow */
    size_t pos = (size_t)snprintf(buf, cap, "ts=%s.%03ldZ level=%s msg=", ts,
                                  now.tv_nsec / 1000000, level_names[level & 3]);
    put_value(buf, cap, &pos, msg);
    return pos;
}

void engine_log_kv(int level, const char *msg, ...)
{
    if (level < log_level)
        return;
    char buf[2048];
    size_t pos = put_head(buf, sizeof buf - 2, level, msg);
    va_list ap;
    va_start(ap, msg);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (pos + strlen(k) + 3 >= sizeof buf - 2)
            break;
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, " %s=", k);
        put_value(buf, sizeof buf - 2, &pos, v ? v : "");
    }
    va_end(ap);
    buf[pos++] = '\n';
    buf[pos] = '\0';
    fputs(buf, stderr);
}

void engine_logf(int level, const char *msg, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char buf[2048];
    size_t pos = put_head(buf, sizeof buf - 2, level, msg);
    if (fmt && *fmt) {
        buf[pos++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + pos, sizeof buf - 2 - pos, fmt, ap);
        va_end(ap);
        if (n > 0)
            pos += (size_t)n < sizeof buf - 2 - pos ? (size_t)n : sizeof buf - 3 - pos;
    }
    buf[pos++] = '\n';
    buf[pos] = '\0';
    fputs(buf, stderr);
}
