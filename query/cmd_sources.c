/* cmd_sources.c: CEMS.SOURCES, the state of every polled source (HTTP platforms, Modbus
 * devices) as the pollers keep it in the store's "sources" table: up or down, since when,
 * the last error and the last success, records stored. The pollers write each record under
 * "<kind>:<name>", as "field=value" lines (HTTP) or a flat JSON object (Modbus); this file
 * shows those fields as they are, so a poller can add one without a change here.
 *
 *   CEMS.SOURCES [pattern] [STATE up|down|unknown|misconfigured]
 *
 * pattern is a glob (as PSUBSCRIBE's) on the source name or on "kind:name"; the reply is
 * one entry per source: a map (RESP3) or a flat array (RESP2) of "name", "key" and the
 * record's fields, in key order. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "query_int.h"
#include "storage.h"

#define MAX_FIELDS 64

typedef struct sources_ctx {
    const char *pattern;
    size_t plen;
    const char *state;     /* NULL: any */
    resp_writer body;
    size_t rows;
} sources_ctx;

/* The fields of a record: "field=value" lines, or a flat JSON object (nums holds the text of
 * its numbers). Returns how many, at most MAX_FIELDS. */
typedef struct fields {
    const char *k[MAX_FIELDS], *v[MAX_FIELDS];
    size_t kl[MAX_FIELDS], vl[MAX_FIELDS], n;
    char nums[MAX_FIELDS][32];
    cJSON *json;
} fields;

static void split_fields(const char *v, size_t vlen, fields *f)
{
    f->n = 0;
    f->json = vlen && v[0] == '{' ? cJSON_ParseWithLength(v, vlen) : NULL;
    if (f->json) {
        const cJSON *it;
        cJSON_ArrayForEach(it, f->json)
        {
            if (f->n == MAX_FIELDS || !it->string)
                break;
            const char *text = NULL;
            if (cJSON_IsString(it))
                text = it->valuestring;
            else if (cJSON_IsNumber(it)) {
                double d = it->valuedouble;
                bool whole = d == (double)(long long)d && d > -1e15 && d < 1e15;
                snprintf(f->nums[f->n], sizeof f->nums[0], whole ? "%.0f" : "%.15g", d);
                text = f->nums[f->n];
            }
            else if (cJSON_IsBool(it))
                text = cJSON_IsTrue(it) ? "true" : "false";
            else if (cJSON_IsNull(it))
                text = "";
            if (!text)
                continue;
            f->k[f->n] = it->string;
            f->kl[f->n] = strlen(it->string);
            f->v[f->n] = text;
            f->vl[f->n] = strlen(text);
            f->n++;
        }
        return;
    }
    for (const char *p = v, *end = v + vlen; p < end && f->n < MAX_FIELDS;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *eq = memchr(p, '=', (size_t)(eol - p));
        if (eq) {
            f->k[f->n] = p;
            f->kl[f->n] = (size_t)(eq - p);
            f->v[f->n] = eq + 1;
            f->vl[f->n] = (size_t)(eol - eq - 1);
            f->n++;
        }
        p = eol + 1;
    }
}

static int one_source(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    sources_ctx *x = arg;
    const char *k = key;
    const char *colon = memchr(k, ':', klen);
    const char *name = colon ? colon + 1 : k;
    size_t nlen = klen - (size_t)(name - k);
    if (x->pattern && !query_glob_match(x->pattern, x->plen, name, nlen) &&
        !query_glob_match(x->pattern, x->plen, k, klen))
        return 0;
    static __thread fields f;
    split_fields(val, vlen, &f);
    bool keep = !x->state;
    for (size_t i = 0; !keep && i < f.n; i++)
        keep = f.kl[i] == 5 && !memcmp(f.k[i], "state", 5) && f.vl[i] == strlen(x->state) &&
               !memcmp(f.v[i], x->state, f.vl[i]);
    if (keep) {
        resp_writer *w = &x->body;
        if (w->proto == 3)
            resp_write_map(w, f.n + 2);
        else
            resp_write_array(w, 2 * (f.n + 2));
        resp_write_cstr(w, "name");
        resp_write_bulk(w, name, nlen);
        resp_write_cstr(w, "key");
        resp_write_bulk(w, k, klen);
        for (size_t i = 0; i < f.n; i++) {
            resp_write_bulk(w, f.k[i], f.kl[i]);
            resp_write_bulk(w, f.v[i], f.vl[i]);
        }
        x->rows++;
    }
    cJSON_Delete(f.json);
    f.json = NULL;
    return 0;
}

static void cmd_sources(query_client *c, size_t argc, const resp_arg *argv)
{
    storage *st = c->srv->opts.storage;
    sources_ctx x = {0};
    size_t i = 1;
    if (i < argc && !resp_arg_ieq(&argv[i], "STATE")) {
        x.pattern = argv[i].ptr;
        x.plen = argv[i].len;
        i++;
    }
    if (i + 2 == argc && resp_arg_ieq(&argv[i], "STATE")) {
        /* misconfigured: a Modbus device refusing its template's requests as illegal */
        static const char *const states[] = {"up", "down", "unknown", "misconfigured"};
        for (int s = 0; s < 4; s++)
            if (resp_arg_ieq(&argv[i + 1], states[s]))
                x.state = states[s];
        if (!x.state) {
            resp_write_error(&c->out, "ERR CEMS.SOURCES: STATE is up, down, unknown or misconfigured");
            return;
        }
        i += 2;
    }
    if (i != argc) {
        resp_write_error(&c->out, "ERR CEMS.SOURCES [pattern] [STATE up|down|unknown|misconfigured]");
        return;
    }
    if (!st) {
        resp_write_error(&c->out, "ERR no store");
        return;
    }
    storage_reader *r;
    int rc = storage_reader_open(st, &r);
    if (rc != 0) {
        resp_write_errorf(&c->out, "ERR store: %s", storage_strerror(rc));
        return;
    }
    resp_writer_init(&x.body, c->out.proto);
    rc = storage_kv_scan(r, "sources", NULL, 0, one_source, &x);
    storage_reader_close(r);
    if (rc == -ENOENT) { /* a store opened without the table: no source was ever polled */
        rc = 0;
        x.rows = 0;
        x.body.len = 0;
    }
    if (rc != 0 || x.body.oom) {
        resp_write_errorf(&c->out, "ERR store: %s", storage_strerror(rc ? rc : -ENOMEM));
    } else {
        resp_write_array(&c->out, x.rows);
        resp_write_raw(&c->out, x.body.data, x.body.len);
    }
    resp_writer_free(&x.body);
}

const query_cmd query_cmds_sources[] = {
    {"cems.sources", -1, QUERY_CMD_READONLY, cmd_sources, "cems",
     "the state of polled sources: up or down, since, last error, records"},
    {NULL, 0, 0, NULL, NULL, NULL},
};
