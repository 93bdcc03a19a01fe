/* state.c: what the HTTP poller knows of each source, kept as data. An operator asks "which
 * sources are down, since when, and why" of the store (CEMS.SOURCES), not of the log, so
 * each source's state is a record in the "sources" table, key "http:<name>", written after
 * every poll. The value is text, one "field=value" per line, so the query side can show it
 * without knowing this file; times are ISO 8601 UTC. The same record gives the poller its
 * cursor back after a restart: the end of the last window stored, from which it catches up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http_poll.h"

static const char *const state_names[] = {"unknown", "down", "up"};

/* A text value on one line: control characters become spaces. */
static void put_text(char *buf, size_t cap, size_t *o, const char *k, const char *v)
{
    int n = snprintf(buf + *o, *o < cap ? cap - *o : 0, "%s=", k);
    if (n < 0)
        return;
    *o += (size_t)n;
    for (; *v && *o + 2 < cap; v++)
        buf[(*o)++] = (unsigned char)*v < 0x20 ? ' ' : *v;
    if (*o + 1 < cap) {
        buf[(*o)++] = '\n';
        buf[*o] = '\0';
    }
}

static void put_time(char *buf, size_t cap, size_t *o, const char *k, int64_t t)
{
    char tb[32];
    if (!t)
        return;
    engine_time_format(t, 0, tb, sizeof tb);
    put_text(buf, cap, o, k, tb);
}

static void put_u64(char *buf, size_t cap, size_t *o, const char *k, uint64_t v)
{
    char nb[24];
    snprintf(nb, sizeof nb, "%llu", (unsigned long long)v);
    put_text(buf, cap, o, k, nb);
}

size_t http_state_format(const http_state *s, const char *host, int64_t next_poll, char *buf,
                         size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    put_text(buf, cap, &o, "kind", "http");
    put_text(buf, cap, &o, "state", state_names[s->up + 1]);
    put_time(buf, cap, &o, "since", s->since);
    put_text(buf, cap, &o, "host", host ? host : "");
    put_time(buf, cap, &o, "last_success", s->last_success);
    put_time(buf, cap, &o, "last_attempt", s->last_attempt);
    put_time(buf, cap, &o, "last_error_at", s->last_error_at);
    if (s->last_error[0])
        put_text(buf, cap, &o, "last_error", s->last_error);
    put_time(buf, cap, &o, "window_from", s->window_from);
    put_time(buf, cap, &o, "cursor", s->cursor);
    put_time(buf, cap, &o, "next_poll", next_poll);
    put_u64(buf, cap, &o, "records", s->records);
    put_u64(buf, cap, &o, "last_records", s->last_records);
    put_u64(buf, cap, &o, "records_bad", s->records_bad);
    put_u64(buf, cap, &o, "polls", s->polls);
    put_u64(buf, cap, &o, "failures", s->failures);
    put_u64(buf, cap, &o, "consecutive_failures", s->consecutive);
    if (s->etag[0])
        put_text(buf, cap, &o, "etag", s->etag);
    if (s->last_modified[0])
        put_text(buf, cap, &o, "last_modified", s->last_modified);
    if (s->cond_key) {
        char kb[24];
        snprintf(kb, sizeof kb, "%016llx", (unsigned long long)s->cond_key);
        put_text(buf, cap, &o, "cond_key", kb);
    }
    return o;
}

static int64_t read_time(const char *v, size_t n)
{
    int64_t t;
    return engine_time_parse(v, n, 0, &t) == 0 ? t : 0;
}

static void read_str(char *dst, size_t cap, const char *v, size_t n)
{
    n = n < cap - 1 ? n : cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

void http_state_parse(const char *text, size_t len, http_state *s)
{
    memset(s, 0, sizeof *s);
    s->up = -1;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *eq = memchr(p, '=', (size_t)(eol - p));
        if (eq) {
            size_t kl = (size_t)(eq - p), vl = (size_t)(eol - eq - 1);
            const char *v = eq + 1;
            char num[24];
            read_str(num, sizeof num, v, vl);
#define KEY(name) (kl == sizeof(name) - 1 && memcmp(p, name, kl) == 0)
            if (KEY("state"))
                s->up = vl == 2 && !memcmp(v, "up", 2) ? 1 : vl == 4 && !memcmp(v, "down", 4) ? 0 : -1;
            else if (KEY("since"))
                s->since = read_time(v, vl);
            else if (KEY("last_success"))
                s->last_success = read_time(v, vl);
            else if (KEY("last_attempt"))
                s->last_attempt = read_time(v, vl);
            else if (KEY("last_error_at"))
                s->last_error_at = read_time(v, vl);
            else if (KEY("last_error"))
                read_str(s->last_error, sizeof s->last_error, v, vl);
            else if (KEY("window_from"))
                s->window_from = read_time(v, vl);
            else if (KEY("cursor"))
                s->cursor = read_time(v, vl);
            else if (KEY("records"))
                s->records = strtoull(num, NULL, 10);
            else if (KEY("last_records"))
                s->last_records = strtoull(num, NULL, 10);
            else if (KEY("records_bad"))
                s->records_bad = strtoull(num, NULL, 10);
            else if (KEY("polls"))
                s->polls = strtoull(num, NULL, 10);
            else if (KEY("failures"))
                s->failures = strtoull(num, NULL, 10);
            else if (KEY("consecutive_failures"))
                s->consecutive = (uint32_t)strtoul(num, NULL, 10);
            else if (KEY("etag"))
                read_str(s->etag, sizeof s->etag, v, vl);
            else if (KEY("last_modified"))
                read_str(s->last_modified, sizeof s->last_modified, v, vl);
            else if (KEY("cond_key"))
                s->cond_key = strtoull(num, NULL, 16);
#undef KEY
        }
        p = eol + 1;
    }
}
