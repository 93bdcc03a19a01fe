/* mb_config.c: the Modbus configuration file: device templates (what a model of analyzer
 * keeps in which registers), and gateways (TCP) or serial lines (RTU) with the devices behind
 * them, each naming its MN, unit id and template. A site has hundreds of identical analyzers,
 * so registers are described once per template. The file is JSON (cJSON); the first problem
 * found refuses the whole file with its line and JSON path, so a typo never silently drops a
 * device. The format is documented in README.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb.h"

#define MAX_REGS 1024       /* registers per template */
#define MAX_DEVICES 65536   /* devices per file */

typedef struct pctx {
    const char *source;
    char *err;
    size_t errlen;
    const char *text;   /* the file, to find the line of a path */
    size_t len;
} pctx;

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The end of the JSON value at s[i] (the text parsed, so it is well formed). */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    int depth = 0;
    bool in_str = false;
    for (; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
            if (!in_str && depth == 0)
                return i + 1;
            continue;
        }
        if (ch == '"')
            in_str = true;
        else if (ch == '{' || ch == '[')
            depth++;
        else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return i; /* the end of an enclosing container: a scalar ended before it */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (ch == ',' || ch == ' ' || ch == '\n' || ch == '\r' ||
                                  ch == '\t'))
            return i;
    }
    return n;
}

/* From the value at s[i] to the next member or element (past the comma), or the close. */
static size_t next_item(const char *s, size_t n, size_t i)
{
    i = skip_ws(s, n, skip_value(s, n, i));
    return skip_ws(s, n, i + (i < n && s[i] == ','));
}

/* The offset of the value a path such as $.gateways[2].devices[5] names, as far as it can
 * be followed (the first key of a name, as cJSON finds it). */
static size_t locate(const char *s, size_t n, const char *path)
{
    size_t at = skip_ws(s, n, 0);
    const char *p = path[0] == '$' ? path + 1 : path;
    while (*p && at < n) {
        if (*p == '.' && s[at] == '{') {
            size_t klen = strcspn(p + 1, ".[");
            size_t i = skip_ws(s, n, at + 1), found = SIZE_MAX;
            while (i < n && s[i] == '"' && found == SIZE_MAX) {
                size_t kend = skip_value(s, n, i);
                bool match = kend - i - 2 == klen && memcmp(s + i + 1, p + 1, klen) == 0;
                i = skip_ws(s, n, kend);
                i = skip_ws(s, n, i + (i < n && s[i] == ':'));
                if (match)
                    found = i;
                else
                    i = next_item(s, n, i);
            }
            if (found == SIZE_MAX)
                break;
            at = found;
            p += 1 + klen;
        } else if (*p == '[' && s[at] == '[') {
            long k = strtol(p + 1, NULL, 10);
            size_t i = skip_ws(s, n, at + 1);
            for (long j = 0; j < k && i < n && s[i] != ']'; j++)
                i = next_item(s, n, i);
            if (i >= n || s[i] == ']')
                break;
            at = i;
            p = strchr(p, ']') ? strchr(p, ']') + 1 : p + strlen(p);
        } else {
            break;
        }
    }
    return at;
}

__attribute__((format(printf, 3, 4))) static int fail(pctx *c, const char *path,
                                                      const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t line = 1, at = c->text ? locate(c->text, c->len, path) : 0;
    for (size_t i = 0; i < at; i++)
        line += c->text[i] == '\n';
    snprintf(c->err, c->errlen, "%s:%zu: %s: %s", c->source, line, path, what);
    return -EINVAL;
}

/* An optional string member: NULL when absent; -EINVAL when present but not a string. */
static int get_str(pctx *c, const cJSON *obj, const char *key, const char *path,
                   const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return fail(c, path, "\"%s\" must be a string", key);
    *out = v->valuestring;
    return 0;
}

static int copy_str(pctx *c, const char *path, const char *key, const char *s, char *dst,
                    size_t cap, bool required)
{
    if (!s || !*s) {
        if (required)
            return fail(c, path, "\"%s\" is required", key);
        dst[0] = 0;
        return 0;
    }
    if (strlen(s) >= cap)
        return fail(c, path, "\"%s\" is longer than %zu bytes", key, cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* An optional number member within [lo, hi]; *out keeps its default when absent. */
static int get_num(pctx *c, const cJSON *obj, const char *key, const char *path, double lo,
                   double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return fail(c, path, "\"%s\" must be a number from %g to %g", key, lo, hi);
    *out = v->valuedouble;
    return 0;
}

static int get_int(pctx *c, const cJSON *obj, const char *key, const char *path, int lo,
                   int hi, int *out)
{
    double d = *out;
    int rc = get_num(c, obj, key, path, lo, hi, &d);
    if (rc == 0 && d != (double)(int)d)
        return fail(c, path, "\"%s\" must be a whole number", key);
    *out = (int)d;
    return rc;
}

static int get_enum(pctx *c, const cJSON *obj, const char *key, const char *path,
                    int (*parse)(const char *), const char *choices, int *out)
{
    const char *s;
    int rc = get_str(c, obj, key, path, &s);
    if (rc != 0 || !s)
        return rc;
    int v = parse(s);
    if (v < 0)
        return fail(c, path, "\"%s\": '%s' is not one of %s", key, s, choices);
    *out = v;
    return 0;
}

static int parse_register(pctx *c, const cJSON *j, const char *path, int def_table,
                          int def_order, mb_register *r)
{
    if (!cJSON_IsObject(j))
        return fail(c, path, "a register must be an object");
    const char *code, *unit;
    int rc, table = def_table, order = def_order, type = -1, address = -1;
    if ((rc = get_str(c, j, "code", path, &code)) ||
        (rc = copy_str(c, path, "code", code, r->code, sizeof r->code, true)) ||
        (rc = get_str(c, j, "unit", path, &unit)) ||
        (rc = copy_str(c, path, "unit", unit, r->unit, sizeof r->unit, false)) ||
        (rc = get_enum(c, j, "table", path, mb_table_parse, "holding, input", &table)) ||
        (rc = get_enum(c, j, "order", path, mb_order_parse, "ABCD, CDAB, BADC, DCBA", &order)) ||
        (rc = get_enum(c, j, "type", path, mb_type_parse,
                       "int16, uint16, int32, uint32, float32, float64", &type)) ||
        (rc = get_int(c, j, "address", path, 0, 65535, &address)))
        return rc;
    if (type < 0)
        return fail(c, path, "\"type\" is required");
    if (address < 0)
        return fail(c, path, "\"address\" is required");
    if (address + mb_type_words(type) > 65536)
        return fail(c, path, "a %s at %d runs past register 65535", mb_type_name(type), address);
    r->table = (uint8_t)table;
    r->order = (uint8_t)order;
    r->type = (uint8_t)type;
    r->address = (uint16_t)address;
    r->scale = 1;
    r->offset = 0;
    if ((rc = get_num(c, j, "scale", path, -1e12, 1e12, &r->scale)) ||
        (rc = get_num(c, j, "offset", path, -1e12, 1e12, &r->offset)))
        return rc;
    if (r->scale == 0)
        return fail(c, path, "\"scale\" must not be 0");
    return 0;
}

static int parse_template(pctx *c, const cJSON *j, const char *path, mb_template *t)
{
    char p[160];
    const char *name;
    int rc, table = MB_HOLDING, order = MB_ABCD, max_gap = 0;
    if (!cJSON_IsObject(j))
        return fail(c, path, "a template must be an object");
    if ((rc = get_str(c, j, "name", path, &name)) ||
        (rc = copy_str(c, path, "name", name, t->name, sizeof t->name, true)) ||
        (rc = get_enum(c, j, "table", path, mb_table_parse, "holding, input", &table)) ||
        (rc = get_enum(c, j, "order", path, mb_order_parse, "ABCD, CDAB, BADC, DCBA", &order)) ||
        (rc = get_int(c, j, "max_gap", path, 0, MB_MAX_READ, &max_gap)))
        return rc;
    const cJSON *regs = cJSON_GetObjectItemCaseSensitive(j, "registers");
    int n = cJSON_GetArraySize(regs);
    if (!cJSON_IsArray(regs) || n == 0)
        return fail(c, path, "\"registers\" must be a non-empty array");
    if (n > MAX_REGS)
        return fail(c, path, "more than %d registers", MAX_REGS);
    t->regs = calloc((size_t)n, sizeof *t->regs);
    t->blocks = calloc((size_t)n, sizeof *t->blocks);
    if (!t->regs || !t->blocks)
        return -ENOMEM;
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, regs)
    {
        snprintf(p, sizeof p, "%s.registers[%d]", path, i);
        if ((rc = parse_register(c, r, p, table, order, &t->regs[i])) != 0)
            return rc;
        for (int k = 0; k < i; k++)
            if (strcmp(t->regs[k].code, t->regs[i].code) == 0)
                return fail(c, p, "code %s appears twice in the template", t->regs[i].code);
        i++;
    }
    t->nregs = (size_t)n;
    rc = mb_plan(t->regs, t->nregs, MB_MAX_READ, (unsigned)max_gap, t->blocks, t->nregs,
                 &t->nblocks);
    if (rc != 0)
        return fail(c, path, "the registers cannot be planned into reads");
    return 0;
}

/* "host:port" or "[v6]:port". */
static int parse_tcp(pctx *c, const char *path, const char *s, mb_endpoint *ep)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return fail(c, path, "\"tcp\": '%s' is not host:port", s);
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    if (hl == 0 || hl >= sizeof ep->host)
        return fail(c, path, "\"tcp\": bad host in '%s'", s);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 1 || port > 65535)
        return fail(c, path, "\"tcp\": bad port in '%s'", s);
    memcpy(ep->host, h, hl);
    ep->host[hl] = 0;
    ep->port = (int)port;
    ep->kind = MB_TCP;
    return 0;
}

static int parse_link(pctx *c, const cJSON *j, const char *path, mb_endpoint *ep)
{
    const char *tcp, *rtu, *parity = NULL, *name;
    int rc;
    if ((rc = get_str(c, j, "name", path, &name)) ||
        (rc = copy_str(c, path, "name", name, ep->name, sizeof ep->name, true)) ||
        (rc = get_str(c, j, "tcp", path, &tcp)) || (rc = get_str(c, j, "rtu", path, &rtu)))
        return rc;
    if (!!tcp == !!rtu)
        return fail(c, path, "give exactly one of \"tcp\" (host:port) and \"rtu\" (a serial device)");
    if (tcp)
        return parse_tcp(c, path, tcp, ep);
    ep->kind = MB_RTU;
    ep->baud = 9600, ep->parity = 'N', ep->data_bits = 8, ep->stop_bits = 1;
    if ((rc = copy_str(c, path, "rtu", rtu, ep->serial, sizeof ep->serial, true)) ||
        (rc = get_int(c, j, "baud", path, 300, 4000000, &ep->baud)) ||
        (rc = get_int(c, j, "data_bits", path, 5, 8, &ep->data_bits)) ||
        (rc = get_int(c, j, "stop_bits", path, 1, 2, &ep->stop_bits)) ||
        (rc = get_str(c, j, "parity", path, &parity)))
        return rc;
    if (parity) {
        if (strlen(parity) != 1 || !strchr("NEO", parity[0]))
            return fail(c, path, "\"parity\": '%s' is not N, E or O", parity);
        ep->parity = parity[0];
    }
    return 0;
}

static const mb_template *find_template(const mb_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ntemplates; i++)
        if (strcmp(cfg->templates[i].name, name) == 0)
            return &cfg->templates[i];
    return NULL;
}

static int parse_device(pctx *c, const mb_config *cfg, const cJSON *j, const char *path,
                        const mb_endpoint *ep, mb_device *d)
{
    const char *mn, *tpl;
    int rc, unit = -1;
    if (!cJSON_IsObject(j))
        return fail(c, path, "a device must be an object");
    if ((rc = get_str(c, j, "mn", path, &mn)) ||
        (rc = copy_str(c, path, "mn", mn, d->mn, sizeof d->mn, true)) ||
        (rc = get_int(c, j, "unit", path, 0, ep->kind == MB_RTU ? 247 : 255, &unit)) ||
        (rc = get_str(c, j, "template", path, &tpl)))
        return rc;
    for (const char *s = d->mn; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == '"' || *s == '\\' || *s == 0x7f)
            return fail(c, path, "\"mn\": '%s' holds a character an MN cannot have", d->mn);
    if (unit < 0)
        return fail(c, path, "\"unit\" (the unit id) is required");
    if (!tpl)
        return fail(c, path, "\"template\" is required");
    d->tpl = find_template(cfg, tpl);
    if (!d->tpl)
        return fail(c, path, "\"template\": no template named '%s'", tpl);
    d->unit_id = unit;
    return 0;
}

static int parse_endpoint(pctx *c, mb_config *cfg, const cJSON *j, const char *path,
                          mb_endpoint *ep)
{
    char p[192];
    int rc;
    if (!cJSON_IsObject(j))
        return fail(c, path, "a gateway must be an object");
    if ((rc = parse_link(c, j, path, ep)) != 0)
        return rc;
    ep->interval_ms = 10000;
    ep->response_timeout_ms = 1000;
    ep->byte_timeout_ms = 500;
    ep->connect_timeout_ms = 3000;
    ep->fail_threshold = 3;
    ep->backoff_max_ms = 300000;
    const cJSON *cac = cJSON_GetObjectItemCaseSensitive(j, "close_after_cycle");
    if (cac && !cJSON_IsBool(cac))
        return fail(c, path, "\"close_after_cycle\" must be true or false");
    ep->close_after_cycle = cJSON_IsTrue(cac);
    if ((rc = get_int(c, j, "interval_ms", path, 100, 86400000, &ep->interval_ms)) ||
        (rc = get_int(c, j, "response_timeout_ms", path, 1, 60000, &ep->response_timeout_ms)) ||
        (rc = get_int(c, j, "byte_timeout_ms", path, 1, 60000, &ep->byte_timeout_ms)) ||
        (rc = get_int(c, j, "connect_timeout_ms", path, 1, 60000, &ep->connect_timeout_ms)) ||
        (rc = get_int(c, j, "fail_threshold", path, 1, 1000, &ep->fail_threshold)) ||
        (rc = get_int(c, j, "backoff_max_ms", path, 100, 86400000, &ep->backoff_max_ms)))
        return rc;
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    int n = cJSON_GetArraySize(devs);
    if (!cJSON_IsArray(devs) || n == 0)
        return fail(c, path, "\"devices\" must be a non-empty array");
    if (cfg->ndevices + (size_t)n > MAX_DEVICES)
        return fail(c, path, "more than %d devices in the file", MAX_DEVICES);
    ep->devices = calloc((size_t)n, sizeof *ep->devices);
    if (!ep->devices)
        return -ENOMEM;
    const cJSON *d;
    cJSON_ArrayForEach(d, devs)
    {
        mb_device *dev = &ep->devices[ep->ndevices];
        snprintf(p, sizeof p, "%s.devices[%zu]", path, ep->ndevices);
        if ((rc = parse_device(c, cfg, d, p, ep, dev)) != 0)
            return rc;
        for (size_t k = 0; k < ep->ndevices; k++)
            if (ep->devices[k].unit_id == dev->unit_id)
                return fail(c, p, "unit id %d is already used by %s on this gateway",
                            dev->unit_id, ep->devices[k].mn);
        ep->ndevices++;
    }
    cfg->ndevices += ep->ndevices;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every MN once in the file: two devices writing one series would interleave readings. */
static int check_unique(pctx *c, const mb_config *cfg)
{
    const char **mns = malloc((cfg->ndevices + 1) * sizeof *mns);
    if (!mns)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < cfg->nendpoints; i++)
        for (size_t d = 0; d < cfg->endpoints[i].ndevices; d++)
            mns[k++] = cfg->endpoints[i].devices[d].mn;
    qsort(mns, k, sizeof *mns, cmp_str);
    int rc = 0;
    for (size_t i = 1; i < k && rc == 0; i++)
        if (strcmp(mns[i - 1], mns[i]) == 0)
            rc = fail(c, "$.gateways", "MN %s is configured twice", mns[i]);
    for (size_t i = 1; i < cfg->nendpoints && rc == 0; i++)
        for (size_t j = 0; j < i && rc == 0; j++)
            if (strcmp(cfg->endpoints[i].name, cfg->endpoints[j].name) == 0)
                rc = fail(c, "$.gateways", "gateway name '%s' is used twice",
                          cfg->endpoints[i].name);
    free(mns);
    return rc;
}

static int parse_root(pctx *c, const cJSON *root, mb_config *cfg)
{
    char p[96];
    int rc;
    if (!cJSON_IsObject(root))
        return fail(c, "$", "the configuration must be a JSON object");
    const cJSON *tpls = cJSON_GetObjectItemCaseSensitive(root, "templates");
    const cJSON *gws = cJSON_GetObjectItemCaseSensitive(root, "gateways");
    int nt = cJSON_GetArraySize(tpls), ng = cJSON_GetArraySize(gws);
    if (!cJSON_IsArray(tpls) || nt == 0)
        return fail(c, "$.templates", "must be a non-empty array");
    if (!cJSON_IsArray(gws))
        return fail(c, "$.gateways", "must be an array");
    cfg->templates = calloc((size_t)nt, sizeof *cfg->templates);
    cfg->endpoints = calloc((size_t)ng + 1, sizeof *cfg->endpoints);
    if (!cfg->templates || !cfg->endpoints)
        return -ENOMEM;
    const cJSON *j;
    cJSON_ArrayForEach(j, tpls)
    {
        mb_template *t = &cfg->templates[cfg->ntemplates];
        snprintf(p, sizeof p, "$.templates[%zu]", cfg->ntemplates);
        if ((rc = parse_template(c, j, p, t)) != 0) {
            cfg->ntemplates++; /* its allocations are freed with the rest */
            return rc;
        }
        if (find_template(cfg, t->name))
            return fail(c, p, "template name '%s' is used twice", t->name);
        cfg->ntemplates++;
    }
    cJSON_ArrayForEach(j, gws)
    {
        snprintf(p, sizeof p, "$.gateways[%zu]", cfg->nendpoints);
        rc = parse_endpoint(c, cfg, j, p, &cfg->endpoints[cfg->nendpoints]);
        cfg->nendpoints++;
        if (rc != 0)
            return rc;
    }
    return check_unique(c, cfg);
}

int mb_config_parse(const char *text, size_t len, const char *source, mb_config **out,
                    char *err, size_t errlen)
{
    pctx c = {source ? source : "config", err, errlen, text, len};
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : len;
        size_t line = 1;
        for (size_t i = 0; i < off; i++)
            line += text[i] == '\n';
        snprintf(err, errlen, "%s:%zu: not valid JSON (near byte %zu)", c.source, line, off);
        return -EINVAL;
    }
    mb_config *cfg = calloc(1, sizeof *cfg);
    int rc = cfg ? parse_root(&c, root, cfg) : -ENOMEM;
    cJSON_Delete(root);
    if (rc != 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "%s: out of memory", c.source);
        mb_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int mb_config_load_file(const char *path, mb_config **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -ENOMEM;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return -EIO;
    }
    int rc = mb_config_parse(text, len, path, out, err, errlen);
    free(text);
    return rc;
}

void mb_config_free(mb_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntemplates; i++) {
        free(c->templates[i].regs);
        free(c->templates[i].blocks);
    }
    for (size_t i = 0; i < c->nendpoints; i++)
        free(c->endpoints[i].devices);
    free(c->templates);
    free(c->endpoints);
    free(c);
}
