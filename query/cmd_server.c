/* cmd_server.c: the connection and server commands: PING, ECHO, HELLO, AUTH, QUIT, CLIENT,
 * SELECT, INFO and COMMAND.
 *
 * These are what Redis clients send on their own when they connect (HELLO, AUTH, CLIENT
 * SETINFO, SELECT 0, COMMAND DOCS) and what operators type first, so their replies follow
 * Redis closely enough that unmodified clients accept them. plume has one keyspace, so
 * SELECT accepts only database 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query_int.h"

#ifndef PLUME_VERSION
#define PLUME_VERSION "0.0.0"
#endif

static void cmd_ping(query_client *c, size_t argc, const resp_arg *argv)
{
    if (argc > 2) {
        query_reply_arity(c, &argv[0]);
    } else if (c->out.proto == 2 && query_client_nsubs(c)) {
        resp_write_array(&c->out, 2); /* as Redis answers a subscribed RESP2 client */
        resp_write_cstr(&c->out, "pong");
        resp_write_bulk(&c->out, argc == 2 ? argv[1].ptr : "", argc == 2 ? argv[1].len : 0);
    } else if (argc == 2) {
        resp_write_bulk(&c->out, argv[1].ptr, argv[1].len);
    } else {
        resp_write_simple(&c->out, "PONG");
    }
}

static void cmd_echo(query_client *c, size_t argc, const resp_arg *argv)
{
    resp_write_bulk(&c->out, argv[1].ptr, argv[1].len);
}

/* Compares without an early exit, so the time taken does not reveal the matching prefix. */
static bool token_matches(const query_server *s, const resp_arg *user, const resp_arg *pass)
{
    const char *tok = s->auth_token;
    size_t tl = strlen(tok);
    unsigned diff = (unsigned)(pass->len ^ tl);
    for (size_t i = 0; i < pass->len; i++)
        diff |= (unsigned char)pass->ptr[i] ^ (unsigned char)tok[tl ? i % tl : 0];
    return diff == 0 && (!user || resp_arg_ieq(user, "default"));
}

static void cmd_auth(query_client *c, size_t argc, const resp_arg *argv)
{
    if (argc > 3) {
        resp_write_error(&c->out, "ERR syntax error");
        return;
    }
    if (!c->srv->auth_token) {
        resp_write_error(&c->out, "ERR AUTH <password> called without any password "
                         "configured for the default user. Are you sure your configuration "
                         "is correct?");
        return;
    }
    if (!token_matches(c->srv, argc == 3 ? &argv[1] : NULL, &argv[argc - 1])) {
        resp_write_error(&c->out, "WRONGPASS invalid username-password pair or user is "
                         "disabled.");
        return;
    }
    c->authed = true;
    resp_write_simple(&c->out, "OK");
}

/* Client names: printable ASCII without spaces, as Redis requires. */
static bool set_name(query_client *c, const resp_arg *name)
{
    if (name->len >= sizeof c->name) {
        resp_write_error(&c->out, "ERR Client names are limited to 63 bytes");
        return false;
    }
    for (size_t i = 0; i < name->len; i++)
        if (name->ptr[i] < '!' || name->ptr[i] > '~') {
            resp_write_error(&c->out, "ERR Client names cannot contain spaces, newlines or "
                             "special characters.");
            return false;
        }
    memcpy(c->name, name->ptr, name->len);
    c->name[name->len] = 0;
    return true;
}

static void cmd_hello(query_client *c, size_t argc, const resp_arg *argv)
{
    int64_t proto = c->out.proto;
    const resp_arg *user = NULL, *pass = NULL, *name = NULL;
    size_t i = 1;
    if (argc >= 2) {
        if (resp_arg_int64(&argv[1], &proto) != 0) {
            resp_write_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (proto < 2 || proto > 3) {
            resp_write_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    for (; i < argc; i++) {
        if (resp_arg_ieq(&argv[i], "AUTH") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (resp_arg_ieq(&argv[i], "SETNAME") && i + 1 < argc) {
            name = &argv[++i];
        } else {
            resp_write_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'",
                              (int)(argv[i].len > 64 ? 64 : argv[i].len), argv[i].ptr);
            return;
        }
    }
    if (user) {
        if (!c->srv->auth_token) {
            resp_write_error(&c->out, "ERR AUTH <password> called without any password "
                             "configured for the default user.");
            return;
        }
        if (!token_matches(c->srv, user, pass)) {
            resp_write_error(&c->out, "WRONGPASS invalid username-password pair or user is "
                             "disabled.");
            return;
        }
        c->authed = true;
    }
    if (!c->authed) {
        resp_write_error(&c->out, "NOAUTH HELLO must be called with the client already "
                         "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                         "option can be used to authenticate the client and select the RESP "
                         "protocol version at the same time");
        return;
    }
    if (name && !set_name(c, name))
        return;
    c->out.proto = (int)proto;
    resp_writer *w = &c->out;
    resp_write_map(w, 7);
    resp_write_cstr(w, "server");
    resp_write_cstr(w, "plume");
    resp_write_cstr(w, "version");
    resp_write_cstr(w, PLUME_VERSION);
    resp_write_cstr(w, "proto");
    resp_write_int(w, proto);
    resp_write_cstr(w, "id");
    resp_write_int(w, (int64_t)c->id);
    resp_write_cstr(w, "mode");
    resp_write_cstr(w, "standalone");
    resp_write_cstr(w, "role");
    resp_write_cstr(w, "master");
    resp_write_cstr(w, "modules");
    resp_write_array(w, 0);
}

static void cmd_quit(query_client *c, size_t argc, const resp_arg *argv)
{
    resp_write_simple(&c->out, "OK");
    c->close_after_reply = true;
}

static void cmd_select(query_client *c, size_t argc, const resp_arg *argv)
{
    int64_t db;
    if (resp_arg_int64(&argv[1], &db) != 0)
        resp_write_error(&c->out, "ERR value is not an integer or out of range");
    else if (db != 0)
        resp_write_error(&c->out, "ERR DB index is out of range");
    else
        resp_write_simple(&c->out, "OK");
}

/* ---- CLIENT -------------------------------------------------------------------------- */

static void client_list(query_client *c)
{
    char line[512];
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        c->out.oom = true;
        return;
    }
    for (const query_client *o = c->srv->clients; o; o = o->next) {
        if (o->closing)
            continue;
        query_client_info(o, line, sizeof line);
        fprintf(f, "%s\n", line);
    }
    fclose(f);
    resp_write_verbatim(&c->out, "txt", text, len);
    free(text);
}

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "LIST", "    Return information about client connections.",
    "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "HELP", "    Print this help.",
};

static void cmd_client(query_client *c, size_t argc, const resp_arg *argv)
{
    const resp_arg *sub = &argv[1];
    resp_writer *w = &c->out;
    if (resp_arg_ieq(sub, "SETNAME") && argc == 3) {
        if (set_name(c, &argv[2]))
            resp_write_simple(w, "OK");
    } else if (resp_arg_ieq(sub, "GETNAME") && argc == 2) {
        if (c->name[0])
            resp_write_cstr(w, c->name);
        else
            resp_write_null(w);
    } else if (resp_arg_ieq(sub, "ID") && argc == 2) {
        resp_write_int(w, (int64_t)c->id);
    } else if (resp_arg_ieq(sub, "INFO") && argc == 2) {
        char line[512];
        int n = query_client_info(c, line, sizeof line - 1);
        line[n++] = '\n';
        resp_write_verbatim(w, "txt", line, (size_t)n);
    } else if (resp_arg_ieq(sub, "LIST")) {
        client_list(c);
    } else if (resp_arg_ieq(sub, "SETINFO") && argc == 4) {
        char *dst = resp_arg_ieq(&argv[2], "LIB-NAME") ? c->lib_name
                  : resp_arg_ieq(&argv[2], "LIB-VER") ? c->lib_ver : NULL;
        if (!dst) {
            resp_write_errorf(w, "ERR Unrecognized option '%.*s'",
                              (int)(argv[2].len > 64 ? 64 : argv[2].len), argv[2].ptr);
            return;
        }
        size_t n = argv[3].len < 31 ? argv[3].len : 31;
        memcpy(dst, argv[3].ptr, n);
        dst[n] = 0;
        resp_write_simple(w, "OK");
    } else if ((resp_arg_ieq(sub, "NO-EVICT") || resp_arg_ieq(sub, "NO-TOUCH")) &&
               argc == 3) {
        resp_write_simple(w, "OK"); /* plume evicts and touches nothing */
    } else if (resp_arg_ieq(sub, "HELP") && argc == 2) {
        size_t n = sizeof client_help / sizeof client_help[0];
        resp_write_array(w, n);
        for (size_t i = 0; i < n; i++)
            resp_write_simple(w, client_help[i]);
    } else {
        resp_write_errorf(w, "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try CLIENT HELP.",
                          (int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
    }
}

/* ---- INFO ---------------------------------------------------------------------------- */

static bool want_section(size_t argc, const resp_arg *argv, const char *name)
{
    if (argc < 2)
        return true;
    for (size_t i = 1; i < argc; i++)
        if (resp_arg_ieq(&argv[i], name) || resp_arg_ieq(&argv[i], "all") ||
            resp_arg_ieq(&argv[i], "default") || resp_arg_ieq(&argv[i], "everything"))
            return true;
    return false;
}

static void cmd_info(query_client *c, size_t argc, const resp_arg *argv)
{
    const query_server *s = c->srv;
    const query_stats *st = &s->stats;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        c->out.oom = true;
        return;
    }
    const char *sep = "";
    if (want_section(argc, argv, "server")) {
        uint64_t up = (uv_now(s->loop) - s->started_ms) / 1000;
        fprintf(f, "# Server\r\nplume_version:%s\r\nredis_mode:standalone\r\n"
                "multiplexing_api:libuv\r\nlibuv_version:%s\r\nprocess_id:%ld\r\n"
                "tcp_port:%d\r\nunix_socket:%s\r\nuptime_in_seconds:%llu\r\n"
                "uptime_in_days:%llu\r\n",
                PLUME_VERSION, uv_version_string(), (long)getpid(), s->port,
                s->unix_path ? s->unix_path : "", (unsigned long long)up,
                (unsigned long long)(up / 86400));
        sep = "\r\n";
    }
    if (want_section(argc, argv, "clients")) {
        fprintf(f, "%s# Clients\r\nconnected_clients:%llu\r\nmaxclients:%u\r\n"
                "blocked_clients:0\r\n", sep, (unsigned long long)st->clients,
                s->opts.max_clients);
        sep = "\r\n";
    }
    if (want_section(argc, argv, "stats")) {
        fprintf(f, "%s# Stats\r\ntotal_connections_received:%llu\r\n"
                "total_commands_processed:%llu\r\ntotal_net_input_bytes:%llu\r\n"
                "total_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
                "total_error_replies:%llu\r\ntotal_protocol_errors:%llu\r\n"
                "idle_closed_connections:%llu\r\noutput_paused:%llu\r\n"
                "commands_offloaded:%llu\r\n", sep,
                (unsigned long long)st->connections_received,
                (unsigned long long)st->commands_processed,
                (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
                (unsigned long long)st->connections_rejected,
                (unsigned long long)st->error_replies,
                (unsigned long long)st->protocol_errors,
                (unsigned long long)st->idle_closed, (unsigned long long)st->output_paused,
                (unsigned long long)st->commands_offloaded);
        uint64_t hits, misses;
        size_t bytes;
        query_cache_stats(s->cache, &hits, &misses, &bytes);
        fprintf(f, "reply_cache_hits:%llu\r\nreply_cache_misses:%llu\r\n"
                "reply_cache_bytes:%zu\r\n", (unsigned long long)hits,
                (unsigned long long)misses, bytes);
        sep = "\r\n";
    }
    /* The daemon's metrics: what the metrics page shows, as INFO lines. */
    if (s->metrics_fn && want_section(argc, argv, "metrics")) {
        char *mt;
        size_t ml;
        if (query_metrics_render(s->metrics_fn, s->metrics_arg, QUERY_METRICS_INFO, &mt,
                                 &ml) == 0) {
            fprintf(f, "%s# Metrics\r\n", sep);
            fwrite(mt, 1, ml, f);
            free(mt);
        }
    }
    fclose(f);
    resp_write_verbatim(&c->out, "txt", text, len);
    free(text);
}

/* ---- COMMAND ------------------------------------------------------------------------- */

static const struct { unsigned bit; const char *name; } flag_names[] = {
    {QUERY_CMD_NOAUTH, "no_auth"},
    {QUERY_CMD_FAST, "fast"},
    {QUERY_CMD_READONLY, "readonly"},
    {QUERY_CMD_STALE, "stale"},
};
#define NFLAGS (sizeof flag_names / sizeof flag_names[0])

/* One command in the 10-element shape of Redis 7's COMMAND INFO. No command of plume takes
 * keys in a fixed position that a cluster client would route by, so key fields are 0. */
static void write_cmd_info(resp_writer *w, const query_cmd *cmd)
{
    size_t nf = 0;
    for (size_t i = 0; i < NFLAGS; i++)
        nf += (cmd->flags & flag_names[i].bit) != 0;
    resp_write_array(w, 10);
    resp_write_cstr(w, cmd->name);
    resp_write_int(w, cmd->arity);
    resp_write_set(w, nf);
    for (size_t i = 0; i < NFLAGS; i++)
        if (cmd->flags & flag_names[i].bit)
            resp_write_simple(w, flag_names[i].name);
    resp_write_int(w, 0);
    resp_write_int(w, 0);
    resp_write_int(w, 0);
    resp_write_set(w, 0);   /* ACL categories */
    resp_write_set(w, 0);   /* tips */
    resp_write_array(w, 0); /* key specifications */
    resp_write_array(w, 0); /* subcommands */
}

static void write_cmd_docs(resp_writer *w, const query_cmd *cmd)
{
    resp_write_cstr(w, cmd->name);
    resp_write_map(w, 3);
    resp_write_cstr(w, "summary");
    resp_write_cstr(w, cmd->summary ? cmd->summary : "");
    resp_write_cstr(w, "since");
    resp_write_cstr(w, "0.1.0");
    resp_write_cstr(w, "group");
    resp_write_cstr(w, cmd->group ? cmd->group : "generic");
}

static void cmd_command(query_client *c, size_t argc, const resp_arg *argv)
{
    const query_server *s = c->srv;
    resp_writer *w = &c->out;
    if (argc == 1) {
        resp_write_array(w, s->ncmds);
        for (size_t i = 0; i < s->ncmds; i++)
            write_cmd_info(w, s->cmds[i]);
    } else if (resp_arg_ieq(&argv[1], "COUNT") && argc == 2) {
        resp_write_int(w, (int64_t)s->ncmds);
    } else if (resp_arg_ieq(&argv[1], "LIST") && argc == 2) {
        resp_write_array(w, s->ncmds);
        for (size_t i = 0; i < s->ncmds; i++)
            resp_write_cstr(w, s->cmds[i]->name);
    } else if (resp_arg_ieq(&argv[1], "INFO")) {
        size_t n = argc == 2 ? s->ncmds : argc - 2;
        resp_write_array(w, n);
        for (size_t i = 0; i < n; i++) {
            const query_cmd *cmd = argc == 2 ? s->cmds[i] : query_cmd_lookup(s, &argv[i + 2]);
            if (cmd)
                write_cmd_info(w, cmd);
            else
                resp_write_null_array(w);
        }
    } else if (resp_arg_ieq(&argv[1], "DOCS")) {
        size_t found = 0;
        for (size_t i = 2; i < argc; i++)
            found += query_cmd_lookup(s, &argv[i]) != NULL;
        resp_write_map(w, argc == 2 ? s->ncmds : found);
        for (size_t i = 0; i < (argc == 2 ? s->ncmds : argc - 2); i++) {
            const query_cmd *cmd = argc == 2 ? s->cmds[i] : query_cmd_lookup(s, &argv[i + 2]);
            if (cmd)
                write_cmd_docs(w, cmd);
        }
    } else {
        resp_write_errorf(w, "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try COMMAND HELP.",
                          (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].ptr);
    }
}

const query_cmd query_cmds_server[] = {
    {"auth", -2, QUERY_CMD_NOAUTH | QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_auth, "connection",
     "Authenticate the connection with the server's token."},
    {"client", -2, QUERY_CMD_STALE, cmd_client, "connection",
     "Name, identify and list client connections."},
    {"command", -1, QUERY_CMD_STALE, cmd_command, "server",
     "Describe the commands the server knows."},
    {"echo", 2, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_echo, "connection",
     "Return the given string."},
    {"hello", -1, QUERY_CMD_NOAUTH | QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_hello, "connection",
     "Handshake: choose RESP2 or RESP3, optionally authenticate and name the connection."},
    {"info", -1, QUERY_CMD_STALE, cmd_info, "server",
     "Server, client and traffic statistics in INFO text format."},
    {"ping", -1, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_ping, "connection",
     "Return PONG, or the given message."},
    {"quit", -1, QUERY_CMD_NOAUTH | QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_quit, "connection",
     "Close the connection after the reply."},
    {"select", 2, QUERY_CMD_FAST | QUERY_CMD_STALE, cmd_select, "connection",
     "Accept database 0, the only one."},
    {NULL, 0, 0, NULL, NULL, NULL},
};
