/* hj212_parse.c: an HJ 212 data segment into fields.
 *
 * A data segment is "key=value" fields separated by ';' with the payload in CP=&&...&&,
 * itself items separated by ';' whose fields are separated by ','. Devices disagree on
 * everything the standard leaves loose (field order, QN form, spaces, trailing ';', text
 * values holding delimiters, 2005 factor codes), so the parser goes by key and is tolerant
 * of what carries no ambiguity. It runs once per packet on the loop thread at tens of
 * thousands of packets a second: it allocates nothing, keeps strings as pointers into the
 * segment, and converts the usual short decimals without strtod (exactly as strtod would).
 * Structural faults are errors; a bad value of one field drops that field with a warning,
 * so one broken reading does not cost the rest of the packet. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hj212.h"

typedef struct parser {
    const char *s;
    size_t len;
    hj212_parse_options opt;
    hj212_packet *p;
    hj212_error *err;
    hj212_factor *last; /* the factor of the previous field: fields of one factor are adjacent */
} parser;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool key_is(hj212_str k, const char *z)
{
    size_t n = strlen(z);
    return k.len == n && memcmp(k.p, z, n) == 0;
}

static void copy_key(char *dst, size_t cap, hj212_str key)
{
    size_t n = key.len < cap - 1 ? key.len : cap - 1;
    memcpy(dst, key.p, n);
    dst[n] = 0;
}

static int fail(parser *ps, int code, size_t off, hj212_str key, const char *fmt, ...)
{
    if (ps->err) {
        va_list ap;
        ps->err->code = code;
        ps->err->offset = off;
        ps->err->key[0] = 0;
        if (key.p)
            copy_key(ps->err->key, sizeof ps->err->key, key);
        va_start(ap, fmt);
        vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void warn(parser *ps, size_t off, hj212_str key, const char *what)
{
    hj212_packet *p = ps->p;
    if (p->nwarnings++ == 0) {
        char k[24];
        copy_key(k, sizeof k, key);
        p->warn_offset = off;
        snprintf(p->warn_msg, sizeof p->warn_msg, "%s: %s at byte %zu", k, what, off);
    }
}

/* ---- Values ---------------------------------------------------------------------------- */

static const double pow10_exact[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A decimal number as strtod reads it, refusing hex, inf, nan and trailing bytes. The fast
 * path is exact: an integer mantissa below 2^53 divided by an exact power of ten is
 * correctly rounded, which is what strtod returns. */
static bool parse_number(const char *s, size_t len, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 19)
                break;
            m = m * 10 + (uint64_t)(c - '0');
            if (frac >= 0)
                frac++;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (i == len && digits > 0 && m <= (1ull << 53) && frac <= 22) {
        double v = (double)m / pow10_exact[frac > 0 ? frac : 0];
        *out = neg ? -v : v;
        return true;
    }
    /* Slow path: exponents, long mantissas. */
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return false;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            return false;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Non-negative decimal integer of at most 9 digits. */
static bool parse_uint(const char *s, size_t len, int *out)
{
    if (len == 0 || len > 9)
        return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int64_t digits_at(const char *s, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int hj212_time_parse(const char *s, size_t len, int64_t tz_offset_s, int64_t *out)
{
    static const unsigned dm[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 14)
        return -EINVAL;
    for (int i = 0; i < 14; i++)
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
    int64_t y = digits_at(s, 4), mo = digits_at(s + 4, 2), d = digits_at(s + 6, 2);
    int64_t h = digits_at(s + 8, 2), mi = digits_at(s + 10, 2), sec = digits_at(s + 12, 2);
    if (mo < 1 || mo > 12 || d < 1 || d > dm[mo - 1] || h > 23 || mi > 59 || sec > 59)
        return -EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -EINVAL;
    int64_t days = engine_days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = days * 86400 + h * 3600 + mi * 60 + sec - tz_offset_s;
    return 0;
}

/* QN: 17-digit local time with milliseconds, or a 13-digit epoch in milliseconds. */
static int64_t parse_qn(hj212_str qn, int64_t tz_offset_s)
{
    int64_t t;
    for (uint32_t i = 0; i < qn.len; i++)
        if (qn.p[i] < '0' || qn.p[i] > '9')
            return 0;
    if (qn.len == 17 && hj212_time_parse(qn.p, 14, tz_offset_s, &t) == 0)
        return t * 1000 + digits_at(qn.p + 14, 3);
    if (qn.len == 13)
        return digits_at(qn.p, 13);
    return 0;
}

/* ---- CP fields ------------------------------------------------------------------------- */

enum { SUF_COL, SUF_FLAG, SUF_EFLAG, SUF_SAMPLE_TIME, SUF_RS, SUF_RT };

/* Suffix names in lower case: devices vary the case ("-avg", "-ZsRtd", "-ZSRTD"). */
static const struct suffix {
    const char *name;
    uint8_t len;
    uint8_t kind, col;
} suffixes[] = {
    {"rtd", 3, SUF_COL, STORAGE_COL_AVG},     {"avg", 3, SUF_COL, STORAGE_COL_AVG},
    {"min", 3, SUF_COL, STORAGE_COL_MIN},     {"max", 3, SUF_COL, STORAGE_COL_MAX},
    {"cou", 3, SUF_COL, STORAGE_COL_COU},     {"flag", 4, SUF_FLAG, 0},
    {"zsrtd", 5, SUF_COL, STORAGE_COL_ZSAVG}, {"zsavg", 5, SUF_COL, STORAGE_COL_ZSAVG},
    {"zsmin", 5, SUF_COL, STORAGE_COL_ZSMIN}, {"zsmax", 5, SUF_COL, STORAGE_COL_ZSMAX},
    {"eflag", 5, SUF_EFLAG, 0},               {"sampletime", 10, SUF_SAMPLE_TIME, 0},
    {"rs", 2, SUF_RS, 0},                     {"rt", 2, SUF_RT, 0},
};

static const struct suffix *find_suffix(const char *s, size_t len)
{
    char low[10];
    if (len < 2 || len > sizeof low)
        return NULL;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)(s[i] | 0x20); /* lower case for letters; no name has other bytes */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (suffixes[i].len == len && suffixes[i].name[0] == low[0] &&
            memcmp(low, suffixes[i].name, len) == 0)
            return &suffixes[i];
    return NULL;
}

static int find_factor(parser *ps, const char *code, size_t len, hj212_factor **out)
{
    hj212_packet *p = ps->p;
    hj212_factor *f = ps->last;
    if (f && f->orig[len] == 0 && memcmp(f->orig, code, len) == 0) {
        *out = f;
        return 0;
    }
    for (unsigned i = 0; i < p->nfactors; i++) {
        f = &p->factors[i];
        if (memcmp(f->orig, code, len) == 0 && f->orig[len] == 0) {
            *out = ps->last = f;
            return 0;
        }
    }
    if (p->nfactors == HJ212_MAX_FACTORS)
        return HJ212_ETOOMANY;
    f = &p->factors[p->nfactors++];
    memcpy(f->orig, code, len);
    f->orig[len] = 0;
    memcpy(f->code, f->orig, len + 1);
    f->mask = f->has = 0;
    f->flag = 0;
    f->eflag = (hj212_str){NULL, 0};
    const hj212_factor_info *fi;
    if (!ps->opt.keep_2005_codes && len <= 3 && (fi = hj212_factor_find_2005(code, len))) {
        strcpy(f->code, fi->code);
        f->has |= HJ212_HAS_MAPPED;
    }
    *out = ps->last = f;
    return 0;
}

static int add_kv(parser *ps, hj212_str key, hj212_str val, bool text, size_t off)
{
    hj212_packet *p = ps->p;
    for (unsigned i = 0; i < p->nkvs; i++) {
        hj212_kv *kv = &p->kvs[i];
        if (kv->key.len == key.len && memcmp(kv->key.p, key.p, key.len) == 0) {
            kv->val = val; /* duplicate key: the last one wins */
            kv->text = text;
            return 0;
        }
    }
    if (p->nkvs == HJ212_MAX_KVS)
        return fail(ps, HJ212_ETOOMANY, off, key, "more than %d key/values", HJ212_MAX_KVS);
    p->kvs[p->nkvs++] = (hj212_kv){key, val, text};
    return 0;
}

static void time_field(parser *ps, hj212_str key, hj212_str val, size_t off, int64_t *t,
                       bool *has)
{
    if (hj212_time_parse(val.p, val.len, ps->opt.tz_offset_s, t) == 0)
        *has = true;
    else
        warn(ps, off, key, "not a time YYYYMMDDhhmmss");
}

/* A CP key without a factor suffix: DataTime and friends, kept as key/values. */
static int plain_field(parser *ps, hj212_str key, hj212_str val, bool text, size_t off)
{
    hj212_packet *p = ps->p;
    if (key_is(key, "DataTime")) {
        time_field(ps, key, val, off, &p->data_time, &p->has_data_time);
        return 0;
    }
    if (key_is(key, "BeginTime"))
        time_field(ps, key, val, off, &p->begin_time, &p->has_begin_time);
    else if (key_is(key, "EndTime"))
        time_field(ps, key, val, off, &p->end_time, &p->has_end_time);
    else if (key_is(key, "SystemTime"))
        time_field(ps, key, val, off, &p->system_time, &p->has_system_time);
    else if (key_is(key, "QnRtn") && !parse_uint(val.p, val.len, &p->qn_rtn))
        warn(ps, off, key, "not a number");
    else if (key_is(key, "ExeRtn") && !parse_uint(val.p, val.len, &p->exe_rtn))
        warn(ps, off, key, "not a number");
    return add_kv(ps, key, val, text, off);
}

static int factor_field(parser *ps, hj212_str key, size_t dash, const struct suffix *sx,
                        hj212_str val, size_t off)
{
    hj212_factor *f;
    int rc = find_factor(ps, key.p, dash, &f);
    if (rc)
        return fail(ps, rc, off, key, "more than %d factors", HJ212_MAX_FACTORS);
    if (val.len == 0)
        return 0; /* an empty value: the device had nothing to send */
    double v;
    switch (sx->kind) {
    case SUF_COL:
        if (!parse_number(val.p, val.len, &v))
            break;
        f->v[sx->col] = v;
        f->mask |= (uint8_t)(1u << sx->col);
        return 0;
    case SUF_FLAG:
        f->flag = val.p[0];
        f->has |= HJ212_HAS_FLAG;
        return 0;
    case SUF_EFLAG:
        f->eflag = val;
        f->has |= HJ212_HAS_EFLAG;
        return 0;
    case SUF_SAMPLE_TIME:
        if (hj212_time_parse(val.p, val.len, ps->opt.tz_offset_s, &f->sample_time) != 0) {
            warn(ps, off, key, "not a time YYYYMMDDhhmmss");
            return 0;
        }
        f->has |= HJ212_HAS_SAMPLE_TIME;
        return 0;
    case SUF_RS:
    case SUF_RT:
        if (!parse_number(val.p, val.len, &v))
            break;
        if (sx->kind == SUF_RS)
            f->rs = v;
        else
            f->rt = v;
        f->has |= sx->kind == SUF_RS ? HJ212_HAS_RS : HJ212_HAS_RT;
        return 0;
    }
    warn(ps, off, key, "not a number");
    return 0;
}

/* Factor codes become parts of series keys downstream: letters, digits, '_', '.', '-'. */
static bool code_ok(const char *s, size_t len)
{
    if (len == 0 || len > HJ212_CODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static int cp_field(parser *ps, hj212_str key, hj212_str val, bool text, size_t off)
{
    const char *dash = memrchr(key.p, '-', key.len);
    if (dash && !text) {
        size_t clen = (size_t)(dash - key.p);
        const struct suffix *sx = find_suffix(dash + 1, key.len - clen - 1);
        if (sx && clen > 0) {
            if (code_ok(key.p, clen))
                return factor_field(ps, key, clen, sx, val, off);
            warn(ps, off, key, "bad factor code");
            return 0;
        }
    }
    return plain_field(ps, key, val, text, off);
}

/* The end of a //text// value starting at v (just after the opening //): the first "//"
 * followed, after spaces, by a delimiter or the end of CP. */
static size_t text_end(const char *s, size_t v, size_t end)
{
    for (size_t i = v; i + 1 < end; i++) {
        if (s[i] != '/' || s[i + 1] != '/')
            continue;
        size_t j = i + 2;
        while (j < end && is_space(s[j]))
            j++;
        if (j == end || s[j] == ';' || s[j] == ',')
            return i;
    }
    return end;
}

/* Parses the inside of CP=&&...&&, bytes [i, end). */
static int parse_cp(parser *ps, size_t i, size_t end)
{
    const char *s = ps->s;
    while (i < end) {
        while (i < end && (is_space(s[i]) || s[i] == ';' || s[i] == ','))
            i++;
        if (i == end)
            break;
        size_t k0 = i;
        while (i < end && s[i] != '=' && s[i] != ';' && s[i] != ',')
            i++;
        size_t k1 = i;
        while (k1 > k0 && is_space(s[k1 - 1]))
            k1--;
        hj212_str key = {s + k0, (uint32_t)(k1 - k0)};
        if (i == end || s[i] != '=' || k1 == k0) {
            warn(ps, k0, key, k1 == k0 ? "empty key" : "field without '='");
            while (i < end && s[i] != ';' && s[i] != ',')
                i++; /* past the value of an empty key */
            continue;
        }
        i++;
        while (i < end && is_space(s[i]))
            i++;
        bool text = false;
        size_t v0 = i, v1;
        if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
            text = true;
            v0 = i + 2;
            v1 = text_end(s, v0, end);
            if (v1 == end)
                warn(ps, i, key, "text without closing //");
            i = v1 == end ? end : v1 + 2;
        } else {
            while (i < end && s[i] != ';' && s[i] != ',')
                i++;
            v1 = i;
            while (v1 > v0 && is_space(s[v1 - 1]))
                v1--;
        }
        int rc = cp_field(ps, key, (hj212_str){s + v0, (uint32_t)(v1 - v0)}, text, k0);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- Header fields --------------------------------------------------------------------- */

static int header_int(parser *ps, hj212_str key, hj212_str val, size_t off, int *out)
{
    if (!parse_uint(val.p, val.len, out)) {
        *out = -1;
        warn(ps, off, key, "not a number");
    }
    return 0;
}

static int header_field(parser *ps, hj212_str key, hj212_str val, size_t off)
{
    hj212_packet *p = ps->p;
    switch (key.len) {
    case 2:
        if (key_is(key, "QN")) {
            p->qn = val;
            p->qn_ms = parse_qn(val, ps->opt.tz_offset_s);
            return 0;
        }
        if (key_is(key, "ST")) {
            p->st_text = val;
            return header_int(ps, key, val, off, &p->st);
        }
        if (key_is(key, "CN")) {
            p->cn_text = val;
            return header_int(ps, key, val, off, &p->cn);
        }
        if (key_is(key, "PW")) {
            p->pw = val;
            return 0;
        }
        if (key_is(key, "MN")) {
            p->mn = val;
            return 0;
        }
        break;
    case 3:
        if (key_is(key, "PNO"))
            return header_int(ps, key, val, off, &p->pno);
        break;
    case 4:
        if (key_is(key, "Flag"))
            return header_int(ps, key, val, off, &p->flag);
        if (key_is(key, "PNUM"))
            return header_int(ps, key, val, off, &p->pnum);
        break;
    }
    return add_kv(ps, key, val, false, off);
}

/* The CP value starting at i (just after "CP="): "&&" ... the last "&&" of the segment. */
static int header_cp(parser *ps, size_t *pos, hj212_str key)
{
    const char *s = ps->s;
    size_t i = *pos;
    while (i < ps->len && is_space(s[i]))
        i++;
    if (ps->len - i < 2 || s[i] != '&' || s[i + 1] != '&')
        return fail(ps, HJ212_ESYNTAX, i, key, "CP does not start with &&");
    size_t c0 = i + 2, c1 = ps->len;
    while (c1 >= c0 + 2 && !(s[c1 - 1] == '&' && s[c1 - 2] == '&'))
        c1--;
    if (c1 < c0 + 2)
        return fail(ps, HJ212_ESYNTAX, i, key, "CP not closed by &&");
    ps->p->has_cp = true;
    *pos = c1;
    return parse_cp(ps, c0, c1 - 2);
}

static void packet_reset(hj212_packet *p)
{
    memset(p, 0, offsetof(hj212_packet, factors));
    p->st = p->cn = p->flag = p->pnum = p->pno = p->version = -1;
    p->qn_rtn = p->exe_rtn = -1;
    p->nwarnings = 0;
    p->warn_offset = 0;
    p->warn_msg[0] = 0;
}

int hj212_parse(const char *seg, size_t len, const hj212_parse_options *opts,
                hj212_packet *p, hj212_error *err)
{
    static const hj212_parse_options defaults = HJ212_PARSE_DEFAULTS;
    parser ps = {seg, len, opts ? *opts : defaults, p, err, NULL};
    packet_reset(p);
    if (len > UINT32_MAX)
        return fail(&ps, HJ212_ESYNTAX, 0, (hj212_str){NULL, 0}, "segment over 4 GiB");
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_space(seg[i]) || seg[i] == ';'))
            i++;
        if (i == len)
            break;
        size_t k0 = i;
        while (i < len && seg[i] != '=' && seg[i] != ';')
            i++;
        size_t k1 = i;
        while (k1 > k0 && is_space(seg[k1 - 1]))
            k1--;
        hj212_str key = {seg + k0, (uint32_t)(k1 - k0)};
        if (i == len || seg[i] != '=')
            return fail(&ps, HJ212_ESYNTAX, k0, key, "field without '='");
        if (k1 == k0)
            return fail(&ps, HJ212_ESYNTAX, k0, key, "empty key");
        i++;
        int rc;
        if (key_is(key, "CP")) {
            if (p->has_cp)
                return fail(&ps, HJ212_ESYNTAX, k0, key, "second CP");
            rc = header_cp(&ps, &i, key);
        } else {
            while (i < len && is_space(seg[i]))
                i++;
            size_t v0 = i;
            while (i < len && seg[i] != ';')
                i++;
            size_t v1 = i;
            while (v1 > v0 && is_space(seg[v1 - 1]))
                v1--;
            rc = header_field(&ps, key, (hj212_str){seg + v0, (uint32_t)(v1 - v0)}, k0);
        }
        if (rc)
            return rc;
    }
    if (p->flag >= 0)
        p->version = p->flag >> 2;
    else
        p->version = p->mn.len == 24 ? HJ212_V2017 : HJ212_V2005;
    return 0;
}

const hj212_factor *hj212_packet_factor(const hj212_packet *p, const char *code)
{
    for (unsigned i = 0; i < p->nfactors; i++)
        if (strcmp(p->factors[i].code, code) == 0)
            return &p->factors[i];
    return NULL;
}

const hj212_kv *hj212_packet_kv(const hj212_packet *p, const char *key)
{
    hj212_str k = {key, (uint32_t)strlen(key)};
    for (unsigned i = 0; i < p->nkvs; i++)
        if (p->kvs[i].key.len == k.len && memcmp(p->kvs[i].key.p, key, k.len) == 0)
            return &p->kvs[i];
    return NULL;
}
