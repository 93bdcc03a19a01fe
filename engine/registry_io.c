/* registry_io.c: importing the registry from CSV files and JSON documents.
 *
 * Registries come from regulators' spreadsheets and from other systems' exports, so the
 * input is whatever people type: columns in any order, a BOM, CRLF, quoted fields with
 * commas and line breaks, stray spaces, a bad credit code on line 4,012. Each record is
 * turned into a list of named text fields (a CSV row under its header, or a JSON object's
 * members), then into a record by one builder per kind, then added through the registry's
 * checked add functions. A bad record is reported with where it was (file and line, or JSON
 * path) and why, counted, and skipped; everything else loads.
 *
 * The columns are documented in REGISTRY.md; the JSON keys are the same names.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "engine.h"

#define MAXF 64   /* fields per record */
#define WHY 256

/* Named text fields of one record. */
typedef struct fields {
    const char *name[MAXF];
    const char *val[MAXF];
    int n;
} fields;

/* The value of field name; NULL when the record has no such field. */
static const char *get(const fields *fs, const char *name)
{
    for (int i = 0; i < fs->n; i++)
        if (strcmp(fs->name[i], name) == 0)
            return fs->val[i];
    return NULL;
}

static void report(engine_import_report *rep, const char *source, const char *where,
                   const char *what)
{
    if (!rep)
        return;
    rep->rejected++;
    if (rep->on_error)
        rep->on_error(rep->ud, source ? source : "-", where, what);
}

/* ---- From fields to records -------------------------------------------------------------- */

static int copy_text(char *dst, size_t size, const fields *fs, const char *name, char *why)
{
    const char *v = get(fs, name);
    if (!v)
        v = "";
    size_t n = strlen(v);
    if (n >= size) {
        snprintf(why, WHY, "%s: longer than %zu bytes", name, size - 1);
        return -EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* An optional number: empty or absent gives NaN. */
static int get_number(const fields *fs, const char *name, double *out, char *why)
{
    const char *v = get(fs, name);
    *out = NAN;
    if (!v || !*v)
        return 0;
    if (engine_double_parse(v, strlen(v), out) != 0) {
        snprintf(why, WHY, "%s: not a number: \"%.40s\"", name, v);
        return -EINVAL;
    }
    return 0;
}

/* One of the words of a NULL-terminated list, case-insensitive; the index or -1. */
static int get_word(const fields *fs, const char *name, const char *const *words, int dflt,
                    char *why)
{
    const char *v = get(fs, name);
    if (!v || !*v) {
        if (dflt >= 0)
            return dflt;
        snprintf(why, WHY, "%s: missing", name);
        return -1;
    }
    for (int i = 0; words[i]; i++)
        if (strcasecmp(v, words[i]) == 0)
            return i;
    snprintf(why, WHY, "%s: \"%.40s\" is none of %s", name, v, words[0]);
    size_t at = strlen(why);
    for (int i = 1; words[i] && at < WHY - 40; i++)
        at += (size_t)snprintf(why + at, WHY - at, "|%s", words[i]);
    return -1;
}

static int get_time(const fields *fs, const char *name, int64_t open, int64_t *out, char *why)
{
    const char *v = get(fs, name);
    *out = open;
    if (!v || !*v)
        return 0;
    if (engine_time_parse(v, strlen(v), ENGINE_CST_OFFSET_S, out) != 0) {
        snprintf(why, WHY, "%s: not a time (ISO 8601 or Unix seconds): \"%.40s\"", name, v);
        return -EINVAL;
    }
    return 0;
}

static int add_facility(engine_registry *r, const fields *fs, char *why)
{
    engine_facility f;
    memset(&f, 0, sizeof f);
    if (copy_text(f.id, sizeof f.id, fs, "id", why) ||
        copy_text(f.name, sizeof f.name, fs, "name", why) ||
        copy_text(f.uscc, sizeof f.uscc, fs, "uscc", why) ||
        copy_text(f.region, sizeof f.region, fs, "region", why) ||
        copy_text(f.industry, sizeof f.industry, fs, "industry", why) ||
        get_number(fs, "lat", &f.lat, why) || get_number(fs, "lon", &f.lon, why))
        return -EINVAL;
    for (char *c = f.uscc; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return engine_registry_add_facility(r, &f, why, WHY);
}

static const char *const medium_words[] = {"gas", "water", NULL};
static const char *const bool_words[] = {"false", "true", "0", "1", "no", "yes", NULL};
static const char *const period_words[] = {"hour", "day", NULL};
static const char *const basis_words[] = {"zs", "measured", NULL};

static int add_outlet(engine_registry *r, const fields *fs, char *why)
{
    engine_outlet o;
    memset(&o, 0, sizeof o);
    if (copy_text(o.facility_id, sizeof o.facility_id, fs, "facility_id", why) ||
        copy_text(o.code, sizeof o.code, fs, "code", why) ||
        copy_text(o.mn, sizeof o.mn, fs, "mn", why) ||
        copy_text(o.pw, sizeof o.pw, fs, "pw", why) ||
        get_number(fs, "o2_ref", &o.o2_ref, why))
        return -EINVAL;
    o.medium = get_word(fs, "medium", medium_words, -1, why);
    int fw = get_word(fs, "flow_weighted", bool_words, 0, why);
    if (o.medium < 0 || fw < 0)
        return -EINVAL;
    o.flow_weighted = fw & 1;
    return engine_registry_add_outlet(r, &o, why, WHY);
}

static int add_limit(engine_registry *r, const fields *fs, char *why)
{
    engine_limit l;
    memset(&l, 0, sizeof l);
    if (copy_text(l.facility_id, sizeof l.facility_id, fs, "facility_id", why) ||
        copy_text(l.outlet, sizeof l.outlet, fs, "outlet", why) ||
        copy_text(l.pollutant, sizeof l.pollutant, fs, "pollutant", why) ||
        copy_text(l.unit, sizeof l.unit, fs, "unit", why) ||
        get_number(fs, "value", &l.value, why) ||
        get_time(fs, "valid_from", INT64_MIN, &l.valid_from, why) ||
        get_time(fs, "valid_to", INT64_MAX, &l.valid_to, why))
        return -EINVAL;
    l.period = get_word(fs, "period", period_words, -1, why);
    if (l.period < 0)
        return -EINVAL;
    /* Without a basis, gas limits apply to the corrected value, water limits as measured. */
    const engine_outlet *o = engine_registry_outlet(r, l.facility_id, l.outlet);
    int dflt = o && o->medium == ENGINE_MEDIUM_GAS ? ENGINE_BASIS_ZS : ENGINE_BASIS_MEASURED;
    l.basis = get_word(fs, "basis", basis_words, dflt, why);
    if (l.basis < 0)
        return -EINVAL;
    if (!l.unit[0])
        snprintf(l.unit, sizeof l.unit, "%s",
                 o && o->medium == ENGINE_MEDIUM_WATER ? "mg/L" : "mg/m3");
    return engine_registry_add_limit(r, &l, why, WHY);
}

static int add_record(engine_registry *r, int kind, const fields *fs, char *why)
{
    switch (kind) {
    case ENGINE_REG_FACILITIES: return add_facility(r, fs, why);
    case ENGINE_REG_OUTLETS: return add_outlet(r, fs, why);
    default: return add_limit(r, fs, why);
    }
}

static const char *const required[][6] = {
    {"id", "name", NULL},
    {"facility_id", "code", "medium", "mn", NULL},
    {"facility_id", "outlet", "pollutant", "value", "period", NULL},
};

/* ---- CSV ---------------------------------------------------------------------------------- */

typedef struct csv {
    const char *p, *end;
    size_t line;    /* line of p, from 1 */
    char *scratch;  /* field text of the current record */
    size_t used;
} csv;

static void trim(char **s)
{
    char *b = *s, *e = b + strlen(b);
    while (*b == ' ' || *b == '\t')
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *e = 0;
    *s = b;
}

/* Reads one record into fs. Returns 1 for a record, 0 at the end of the input, or -1 for a
 * malformed record (*err says why), which has then been skipped entirely. */
static int csv_next(csv *c, fields *fs, const char **err)
{
    *err = NULL;
    fs->n = 0;
    if (c->p >= c->end)
        return 0;
    c->used = 0;
    for (;;) { /* one field per turn */
        char *f = c->scratch + c->used;
        size_t n = 0;
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    *err = "a quoted field is not closed";
                    break;
                }
                char ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"')
                        c->p++;
                    else
                        break;
                } else if (ch == '\n') {
                    c->line++;
                }
                f[n++] = ch;
            }
            while (c->p < c->end && *c->p != ',' && *c->p != '\n') {
                if (*c->p != '\r' && *c->p != ' ' && !*err)
                    *err = "text after a closing quote";
                c->p++;
            }
        } else {
            while (c->p < c->end && *c->p != ',' && *c->p != '\n')
                f[n++] = *c->p++;
        }
        f[n] = 0;
        c->used += n + 1;
        if (fs->n < MAXF) {
            char *v = f;
            trim(&v);
            fs->val[fs->n++] = v;
        } else if (!*err) {
            *err = "more than 64 fields";
        }
        if (c->p >= c->end)
            break;
        if (*c->p++ == '\n') {
            c->line++;
            break;
        }
    }
    return *err ? -1 : 1;
}

int engine_registry_load_csv(engine_registry *r, int kind, const char *data, size_t len,
                             const char *source, engine_import_report *rep)
{
    if (kind < ENGINE_REG_FACILITIES || kind > ENGINE_REG_LIMITS)
        return -EINVAL;
    csv c = {data, data + len, 1, malloc(len + MAXF + 1), 0};
    if (!c.scratch)
        return -ENOMEM;
    char where[48], why[WHY];
    char names[MAXF][32];
    fields hdr, row;
    const char *err = NULL;
    int rc = -EINVAL, got;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;

    got = csv_next(&c, &hdr, &err);
    if (got <= 0) {
        snprintf(why, WHY, "no header row%s%s", err ? ": " : "", err ? err : "");
        goto bad_header;
    }
    for (int i = 0; i < hdr.n; i++) {
        snprintf(names[i], sizeof names[i], "%s", hdr.val[i]);
        for (char *s = names[i]; *s; s++)
            *s = (char)tolower((unsigned char)*s);
        row.name[i] = names[i];
        row.val[i] = "";
        for (int j = 0; j < i; j++)
            if (names[i][0] && strcmp(names[i], names[j]) == 0) {
                snprintf(why, WHY, "header: column %.31s appears twice", names[i]);
                goto bad_header;
            }
    }
    row.n = hdr.n;
    for (int k = 0; required[kind][k]; k++)
        if (!get(&row, required[kind][k])) {
            snprintf(why, WHY, "header: required column %s is missing", required[kind][k]);
            goto bad_header;
        }

    for (;;) {
        size_t line = c.line;
        got = csv_next(&c, &row, &err);
        if (got == 0)
            break;
        snprintf(where, sizeof where, "line %zu", line);
        if (got < 0) {
            report(rep, source, where, err);
            continue;
        }
        if (row.n == 1 && !row.val[0][0])
            continue; /* a blank line */
        if (row.n != hdr.n) {
            snprintf(why, WHY, "%d fields, the header has %d", row.n, hdr.n);
            report(rep, source, where, why);
            continue;
        }
        int arc = add_record(r, kind, &row, why);
        if (arc == -ENOMEM) {
            rc = arc;
            goto done;
        }
        if (arc)
            report(rep, source, where, why);
        else if (rep)
            rep->loaded++;
    }
    rc = 0;
    goto done;
bad_header:
    report(rep, source, "line 1", why);
done:
    free(c.scratch);
    return rc;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static const char *const known[3][10] = {
    {"id", "name", "uscc", "region", "industry", "lat", "lon", NULL},
    {"facility_id", "code", "medium", "mn", "pw", "o2_ref", "flow_weighted", NULL},
    {"facility_id", "outlet", "pollutant", "value", "unit", "period", "basis", "valid_from",
     "valid_to", NULL},
};

static bool is_known(int kind, const char *name)
{
    for (int i = 0; known[kind][i]; i++)
        if (strcmp(known[kind][i], name) == 0)
            return true;
    return false;
}

/* Turns one JSON object into fields; numbers are formatted into nums. Members of other names
 * are ignored, whatever their type. */
static int json_fields(const cJSON *obj, int kind, fields *fs,
                       char (*nums)[ENGINE_DOUBLE_FMT_LEN], char *why)
{
    fs->n = 0;
    if (!cJSON_IsObject(obj)) {
        snprintf(why, WHY, "not an object");
        return -EINVAL;
    }
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (!m->string || !is_known(kind, m->string))
            continue;
        if (fs->n == MAXF) {
            snprintf(why, WHY, "more than %d members", MAXF);
            return -EINVAL;
        }
        const char *v;
        if (cJSON_IsString(m)) {
            v = m->valuestring;
        } else if (cJSON_IsNumber(m)) {
            engine_double_format(m->valuedouble, nums[fs->n]);
            v = nums[fs->n];
        } else if (cJSON_IsBool(m)) {
            v = cJSON_IsTrue(m) ? "true" : "false";
        } else if (cJSON_IsNull(m)) {
            v = "";
        } else {
            snprintf(why, WHY, "%s: want a string, number, boolean or null", m->string);
            return -EINVAL;
        }
        fs->name[fs->n] = m->string;
        fs->val[fs->n++] = v;
    }
    return 0;
}

int engine_registry_load_json(engine_registry *r, const char *data, size_t len,
                              const char *source, engine_import_report *rep)
{
    static const char *const arrays[3] = {"facilities", "outlets", "limits"};
    char where[64], why[WHY];
    char nums[MAXF][ENGINE_DOUBLE_FMT_LEN];
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(root)) {
        report(rep, source, "$", root ? "not a JSON object" : "not valid JSON");
        cJSON_Delete(root);
        return -EINVAL;
    }
    int rc = 0;
    for (int kind = 0; kind < 3 && rc == 0; kind++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, arrays[kind]);
        if (!arr)
            continue;
        if (!cJSON_IsArray(arr)) {
            snprintf(where, sizeof where, "$.%s", arrays[kind]);
            report(rep, source, where, "not an array");
            continue;
        }
        int i = 0;
        for (const cJSON *e = arr->child; e; e = e->next, i++) {
            fields fs;
            snprintf(where, sizeof where, "$.%s[%d]", arrays[kind], i);
            int arc = json_fields(e, kind, &fs, nums, why);
            for (int k = 0; arc == 0 && required[kind][k]; k++)
                if (!get(&fs, required[kind][k])) {
                    snprintf(why, WHY, "%s: missing", required[kind][k]);
                    arc = -EINVAL;
                }
            if (arc == 0)
                arc = add_record(r, kind, &fs, why);
            if (arc == -ENOMEM) {
                rc = arc;
                break;
            }
            if (arc)
                report(rep, source, where, why);
            else if (rep)
                rep->loaded++;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- Files -------------------------------------------------------------------------------- */

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
    }
    if (!buf)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int engine_registry_load_csv_file(engine_registry *r, int kind, const char *path,
                                  engine_import_report *rep)
{
    char *buf;
    size_t len;
    int rc = read_all(path, &buf, &len);
    if (rc)
        return rc;
    rc = engine_registry_load_csv(r, kind, buf, len, path, rep);
    free(buf);
    return rc;
}

int engine_registry_load_json_file(engine_registry *r, const char *path,
                                   engine_import_report *rep)
{
    char *buf;
    size_t len;
    int rc = read_all(path, &buf, &len);
    if (rc)
        return rc;
    rc = engine_registry_load_json(r, buf, len, path, rep);
    free(buf);
    return rc;
}
