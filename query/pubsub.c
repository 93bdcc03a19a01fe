/* pubsub.c: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE and query_server_publish, so
 * a screen or a bot learns of an alert the moment it fires instead of polling.
 *
 * The daemon publishes each alert on "alerts" and on "alerts.<region code>", so a regional
 * office subscribes to `PSUBSCRIBE alerts.3201*`. Messages have Redis' shapes: in RESP2
 * arrays ["message", channel, payload] and ["pmessage", pattern, channel, payload]; in RESP3
 * the same as push frames, which may arrive between replies. As in Redis, a RESP2 client with
 * a subscription may only send (P)(UN)SUBSCRIBE, PING and QUIT (client.c enforces it).
 * Subscriptions are few per client (a short list each); publishing walks the clients, which
 * is fine for alerts (a few per minute). A subscriber that stops reading is disconnected once
 * its unsent messages pass four times max_output_len, so it cannot hold memory without bound.
 */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

#define MAX_SUBS 256 /* channels plus patterns of one client */

struct query_subs {
    char *names[MAX_SUBS];
    bool is_pattern[MAX_SUBS];
    size_t n;
};

size_t query_client_nsubs(const query_client *c)
{
    return c->subs ? c->subs->n : 0;
}

void query_client_subs_free(query_client *c)
{
    if (!c->subs)
        return;
    for (size_t i = 0; i < c->subs->n; i++)
        free(c->subs->names[i]);
    free(c->subs);
    c->subs = NULL;
}

/* Glob matching as Redis' PSUBSCRIBE: '*', '?', "[abc]", "[a-z]", "[^a]", '\' escapes. */
static bool glob(const char *p, size_t pl, const char *s, size_t sl)
{
    while (pl) {
        switch (*p) {
        case '*':
            while (pl > 1 && p[1] == '*')
                p++, pl--;
            if (pl == 1)
                return true;
            for (size_t i = 0; i <= sl; i++)
                if (glob(p + 1, pl - 1, s + i, sl - i))
                    return true;
            return false;
        case '?':
            if (!sl)
                return false;
            break;
        case '[': {
            if (!sl)
                return false;
            size_t i = 1;
            bool neg = i < pl && p[i] == '^', hit = false;
            i += neg;
            for (; i < pl && p[i] != ']'; i++) {
                if (p[i] == '\\' && i + 1 < pl)
                    hit |= p[++i] == *s;
                else if (i + 2 < pl && p[i + 1] == '-' && p[i + 2] != ']') {
                    char lo = p[i], hi = p[i + 2];
                    hit |= (lo <= hi ? *s >= lo && *s <= hi : *s >= hi && *s <= lo);
                    i += 2;
                } else
                    hit |= p[i] == *s;
            }
            if (hit == neg)
                return false;
            if (i == pl)
                i--; /* an unclosed class ends the pattern */
            p += i;
            pl -= i;
            break;
        }
        case '\\':
            if (pl > 1)
                p++, pl--;
            /* fall through */
        default:
            if (!sl || *p != *s)
                return false;
        }
        p++, pl--;
        s++, sl--;
    }
    return sl == 0;
}

bool query_glob_match(const char *pattern, size_t plen, const char *s, size_t slen)
{
    return glob(pattern, plen, s, slen);
}

static void write_ack(query_client *c, const char *kind, const char *name, size_t len)
{
    c->out.proto == 3 ? resp_write_push(&c->out, 3) : resp_write_array(&c->out, 3);
    resp_write_cstr(&c->out, kind);
    if (name)
        resp_write_bulk(&c->out, name, len);
    else
        resp_write_null(&c->out);
    resp_write_int(&c->out, (int64_t)query_client_nsubs(c));
}

static ssize_t find(const query_client *c, const resp_arg *a, bool pattern)
{
    for (size_t i = 0; c->subs && i < c->subs->n; i++)
        if (c->subs->is_pattern[i] == pattern && strlen(c->subs->names[i]) == a->len &&
            memcmp(c->subs->names[i], a->ptr, a->len) == 0)
            return (ssize_t)i;
    return -1;
}

static void subscribe(query_client *c, size_t argc, const resp_arg *argv, bool pattern)
{
    for (size_t i = 1; i < argc; i++) {
        if (find(c, &argv[i], pattern) < 0) {
            if (!c->subs && !(c->subs = calloc(1, sizeof *c->subs))) {
                c->out.oom = true;
                return;
            }
            if (c->subs->n == MAX_SUBS) {
                resp_write_errorf(&c->out, "ERR a client may hold at most %d subscriptions",
                                  MAX_SUBS);
                return;
            }
            char *name = malloc(argv[i].len + 1);
            if (!name) {
                c->out.oom = true;
                return;
            }
            memcpy(name, argv[i].ptr, argv[i].len);
            name[argv[i].len] = 0;
            c->subs->is_pattern[c->subs->n] = pattern;
            c->subs->names[c->subs->n++] = name;
        }
        write_ack(c, pattern ? "psubscribe" : "subscribe", argv[i].ptr, argv[i].len);
    }
}

static void drop(query_client *c, size_t i)
{
    free(c->subs->names[i]);
    c->subs->n--;
    memmove(&c->subs->names[i], &c->subs->names[i + 1], (c->subs->n - i) * sizeof(char *));
    memmove(&c->subs->is_pattern[i], &c->subs->is_pattern[i + 1], c->subs->n - i);
}

static void unsubscribe(query_client *c, size_t argc, const resp_arg *argv, bool pattern)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    if (argc == 1) { /* all of this kind */
        bool any = false;
        for (size_t i = 0; c->subs && i < c->subs->n;) {
            if (c->subs->is_pattern[i] != pattern) {
                i++;
                continue;
            }
            char *name = c->subs->names[i];
            c->subs->names[i] = NULL;
            drop(c, i);
            write_ack(c, kind, name, strlen(name));
            free(name);
            any = true;
        }
        if (!any)
            write_ack(c, kind, NULL, 0);
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        ssize_t k = find(c, &argv[i], pattern);
        if (k >= 0)
            drop(c, (size_t)k);
        write_ack(c, kind, argv[i].ptr, argv[i].len);
    }
}

static void cmd_subscribe(query_client *c, size_t argc, const resp_arg *argv)
{
    subscribe(c, argc, argv, false);
}

static void cmd_psubscribe(query_client *c, size_t argc, const resp_arg *argv)
{
    subscribe(c, argc, argv, true);
}

static void cmd_unsubscribe(query_client *c, size_t argc, const resp_arg *argv)
{
    unsubscribe(c, argc, argv, false);
}

static void cmd_punsubscribe(query_client *c, size_t argc, const resp_arg *argv)
{
    unsubscribe(c, argc, argv, true);
}

size_t query_server_publish(query_server *s, const char *channel, const void *msg, size_t len)
{
    size_t cl = strlen(channel), sent = 0;
    for (query_client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (c->closing || !c->subs)
            continue;
        size_t before = sent;
        for (size_t i = 0; i < c->subs->n; i++) {
            const char *name = c->subs->names[i];
            bool pat = c->subs->is_pattern[i];
            if (pat ? !glob(name, strlen(name), channel, cl) : strcmp(name, channel) != 0)
                continue;
            resp_writer *w = &c->out;
            w->proto == 3 ? resp_write_push(w, pat ? 4 : 3) : resp_write_array(w, pat ? 4 : 3);
            resp_write_cstr(w, pat ? "pmessage" : "message");
            if (pat)
                resp_write_cstr(w, name);
            resp_write_bulk(w, channel, cl);
            resp_write_bulk(w, msg, len);
            sent++;
        }
        if (sent == before)
            continue;
        if (c->out.len + c->wlen > 4 * s->opts.max_output_len)
            query_client_close(c); /* a subscriber that does not read */
        else
            query_client_flush(c);
    }
    return sent;
}

const query_cmd query_cmds_pubsub[] = {
    {"psubscribe", -2, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_psubscribe, "pubsub",
     "Receive the messages of every channel matching the patterns (alerts.3201*)."},
    {"punsubscribe", -1, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_punsubscribe, "pubsub",
     "Stop receiving the patterns' messages (all patterns without arguments)."},
    {"subscribe", -2, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_subscribe, "pubsub",
     "Receive the messages of the channels (alerts, alerts.<region>)."},
    {"unsubscribe", -1, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_unsubscribe, "pubsub",
     "Stop receiving the channels' messages (all channels without arguments)."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
