/* registry.c: the registry model: who the facilities are, which outlets (and DAQ units, by
 * their MN) they have, and which emission limits are in force on each outlet over time.
 *
 * Ingest resolves every upload's MN here, so that lookup is a hash probe; everything else
 * (facility by id or USCC, outlet by facility and code) is hashed too. Records live in three
 * growing arrays in the order they were added; limits of an outlet are chained so finding
 * the limit in force walks only that outlet's few limits. Every add checks its record fully
 * (fields, references, uniqueness, overlapping limits), so a registry is always consistent,
 * however it was built: by hand, from CSV or JSON (registry_io.c), or decoded from bytes.
 *
 * The byte encoding (REGISTRY.md) is a flat, versioned, little-endian list of the records;
 * decoding re-adds them one by one, so it inherits every check.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "engine.h"

/* ---- USCC (GB 32100-2015) ---------------------------------------------------------------- */

static const char uscc_set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY"; /* 31 characters */

static int uscc_value(char c)
{
    const char *p = c ? strchr(uscc_set, c) : NULL;
    return p ? (int)(p - uscc_set) : -1;
}

char engine_uscc_check_char(const char *first17)
{
    int sum = 0, w = 1;
    for (int i = 0; i < 17; i++) {
        int v = uscc_value(first17[i]);
        if (v < 0)
            return 0;
        sum += v * w;
        w = w * 3 % 31;
    }
    int c = 31 - sum % 31;
    return uscc_set[c == 31 ? 0 : c];
}

int engine_uscc_check(const char *s, size_t len)
{
    if (len != 18)
        return -EINVAL;
    char c = engine_uscc_check_char(s);
    return c && c == s[17] ? 0 : -EINVAL;
}

/* ---- A string-keyed hash index over record numbers ---------------------------------- */

/* Open addressing, linear probing; slots hold record number + 1 (0: empty). The key of a
 * record is read back through key_of, so the index stores no strings of its own. */
typedef struct strindex {
    uint32_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t n;
} strindex;

typedef const char *(*key_fn)(const engine_registry *r, uint32_t rec, char *buf);

static uint64_t hash_str(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

struct engine_registry {
    engine_facility *fac;
    engine_outlet *out;
    engine_limit *lim;
    uint32_t *out_first_limit; /* per outlet: first limit + 1, 0 none */
    uint32_t *lim_next;        /* per limit: next limit of the same outlet + 1, 0 none */
    size_t nfac, nout, nlim, capfac, capout, caplim;
    strindex by_id, by_uscc, by_mn, by_code;
};

/* Finds the record whose key equals key[0..len); returns the record number or -1. */
static long index_find(const engine_registry *r, const strindex *ix, key_fn key_of,
                       const char *key, size_t len)
{
    if (ix->cap == 0)
        return -1;
    char buf[ENGINE_ID_SIZE + ENGINE_CODE_SIZE + 2];
    size_t mask = ix->cap - 1;
    for (size_t i = hash_str(key, len) & mask;; i = (i + 1) & mask) {
        uint32_t s = ix->slots[i];
        if (s == 0)
            return -1;
        const char *k = key_of(r, s - 1, buf);
        if (strlen(k) == len && memcmp(k, key, len) == 0)
            return (long)(s - 1);
    }
}

static int index_put(const engine_registry *r, strindex *ix, key_fn key_of, uint32_t rec)
{
    char buf[ENGINE_ID_SIZE + ENGINE_CODE_SIZE + 2];
    if ((ix->n + 1) * 4 > ix->cap * 3) { /* keep the load under 3/4 */
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (size_t j = 0; j < ix->cap; j++) {
            uint32_t s = ix->slots[j];
            if (!s)
                continue;
            const char *k = key_of(r, s - 1, buf);
            size_t i = hash_str(k, strlen(k)) & (cap - 1);
            while (slots[i])
                i = (i + 1) & (cap - 1);
            slots[i] = s;
        }
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
    }
    const char *k = key_of(r, rec, buf);
    size_t i = hash_str(k, strlen(k)) & (ix->cap - 1);
    while (ix->slots[i])
        i = (i + 1) & (ix->cap - 1);
    ix->slots[i] = rec + 1;
    ix->n++;
    return 0;
}

static const char *key_fac_id(const engine_registry *r, uint32_t i, char *buf)
{
    (void)buf;
    return r->fac[i].id;
}

static const char *key_fac_uscc(const engine_registry *r, uint32_t i, char *buf)
{
    (void)buf;
    return r->fac[i].uscc;
}

static const char *key_out_mn(const engine_registry *r, uint32_t i, char *buf)
{
    (void)buf;
    return r->out[i].mn;
}

/* facility id, a unit separator, outlet code: unique per outlet. */
static size_t code_key(char *buf, const char *facility_id, const char *code)
{
    size_t a = strlen(facility_id), b = strlen(code); /* no sprintf: a hot path of decode */
    memcpy(buf, facility_id, a);
    buf[a] = '\x1f';
    memcpy(buf + a + 1, code, b + 1);
    return a + 1 + b;
}

static const char *key_out_code(const engine_registry *r, uint32_t i, char *buf)
{
    code_key(buf, r->out[i].facility_id, r->out[i].code);
    return buf;
}

/* ---- Create, destroy, grow ------------------------------------------------------------ */

int engine_registry_create(engine_registry **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void engine_registry_destroy(engine_registry *r)
{
    if (!r)
        return;
    free(r->fac);
    free(r->out);
    free(r->lim);
    free(r->out_first_limit);
    free(r->lim_next);
    free(r->by_id.slots);
    free(r->by_uscc.slots);
    free(r->by_mn.slots);
    free(r->by_code.slots);
    free(r);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- Field checks ---------------------------------------------------------------------- */

static int fail(char *why, size_t why_len, int rc, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* A NUL-terminated text of min..size-1 bytes with no control character. */
static bool text_ok(const char *s, size_t size, size_t min)
{
    size_t n = strnlen(s, size);
    if (n >= size || n < min)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* An identifier: printable ASCII without space or the HJ 212 separators ; = & , */
static bool ident_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr(";=&,", c))
            return false;
    }
    return true;
}

static bool alnum_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

static int check_facility(const engine_facility *f, char *why, size_t wl)
{
    if (!ident_ok(f->id, sizeof f->id))
        return fail(why, wl, -EINVAL, "id: want 1-32 printable characters");
    if (!text_ok(f->name, sizeof f->name, 1))
        return fail(why, wl, -EINVAL, "name: want 1-255 bytes of text");
    size_t un = strnlen(f->uscc, sizeof f->uscc);
    if (un && engine_uscc_check(f->uscc, un) != 0) {
        char c = un == 18 ? engine_uscc_check_char(f->uscc) : 0;
        if (c)
            return fail(why, wl, -EINVAL, "uscc: wrong check character '%c' (want '%c')",
                        f->uscc[17], c);
        return fail(why, wl, -EINVAL,
                    "uscc: want 18 characters of 0-9 A-H J-N P-R T-U W-Y");
    }
    size_t rn = strnlen(f->region, sizeof f->region);
    if (rn && (rn != 6 || strspn(f->region, "0123456789") != 6))
        return fail(why, wl, -EINVAL, "region: want 6 digits");
    if (!text_ok(f->industry, sizeof f->industry, 0))
        return fail(why, wl, -EINVAL, "industry: want at most 63 bytes of text");
    if (!isnan(f->lat) && !(f->lat >= -90 && f->lat <= 90))
        return fail(why, wl, -EINVAL, "lat: want -90 to 90");
    if (!isnan(f->lon) && !(f->lon >= -180 && f->lon <= 180))
        return fail(why, wl, -EINVAL, "lon: want -180 to 180");
    return 0;
}

int engine_registry_add_facility(engine_registry *r, const engine_facility *f, char *why,
                                 size_t wl)
{
    int rc = check_facility(f, why, wl);
    if (rc)
        return rc;
    if (index_find(r, &r->by_id, key_fac_id, f->id, strlen(f->id)) >= 0)
        return fail(why, wl, -EEXIST, "id: facility %s exists", f->id);
    size_t un = strlen(f->uscc);
    if (un && index_find(r, &r->by_uscc, key_fac_uscc, f->uscc, un) >= 0)
        return fail(why, wl, -EEXIST, "uscc: %s belongs to another facility", f->uscc);
    if (grow((void **)&r->fac, &r->capfac, r->nfac, sizeof *r->fac))
        return -ENOMEM;
    uint32_t i = (uint32_t)r->nfac;
    r->fac[i] = *f;
    if (index_put(r, &r->by_id, key_fac_id, i) ||
        (un && index_put(r, &r->by_uscc, key_fac_uscc, i)))
        return -ENOMEM; /* the index may hold i; nfac not raised, so it is never returned */
    r->nfac++;
    return 0;
}

static int check_outlet(const engine_outlet *o, char *why, size_t wl)
{
    if (!ident_ok(o->facility_id, sizeof o->facility_id))
        return fail(why, wl, -EINVAL, "facility_id: want 1-32 printable characters");
    if (!alnum_ok(o->code, sizeof o->code))
        return fail(why, wl, -EINVAL, "code: want 1-16 letters and digits, e.g. DA001");
    if (o->medium != ENGINE_MEDIUM_GAS && o->medium != ENGINE_MEDIUM_WATER)
        return fail(why, wl, -EINVAL, "medium: want gas or water");
    if (!ident_ok(o->mn, sizeof o->mn))
        return fail(why, wl, -EINVAL, "mn: want 1-32 printable characters without ;=&,");
    if (o->pw[0] && !ident_ok(o->pw, sizeof o->pw))
        return fail(why, wl, -EINVAL, "pw: want at most 16 printable characters");
    if (!isnan(o->o2_ref) && !(o->o2_ref >= 0 && o->o2_ref < 21))
        return fail(why, wl, -EINVAL, "o2_ref: want 0 to 21 (%%)");
    return 0;
}

int engine_registry_add_outlet(engine_registry *r, const engine_outlet *o, char *why,
                               size_t wl)
{
    int rc = check_outlet(o, why, wl);
    if (rc)
        return rc;
    if (!engine_registry_facility(r, o->facility_id))
        return fail(why, wl, -ENOENT, "facility_id: no facility %s", o->facility_id);
    if (engine_registry_outlet(r, o->facility_id, o->code))
        return fail(why, wl, -EEXIST, "code: facility %s already has outlet %s",
                    o->facility_id, o->code);
    if (engine_registry_outlet_by_mn(r, o->mn, strlen(o->mn)))
        return fail(why, wl, -EEXIST, "mn: %s belongs to another outlet", o->mn);
    if (grow((void **)&r->out, &r->capout, r->nout, sizeof *r->out))
        return -ENOMEM;
    size_t cap = r->capout;
    uint32_t *first = realloc(r->out_first_limit, cap * sizeof *first);
    if (!first)
        return -ENOMEM;
    r->out_first_limit = first;
    uint32_t i = (uint32_t)r->nout;
    r->out[i] = *o;
    r->out_first_limit[i] = 0;
    if (index_put(r, &r->by_mn, key_out_mn, i) || index_put(r, &r->by_code, key_out_code, i))
        return -ENOMEM;
    r->nout++;
    return 0;
}

static const char *period_name(int p)
{
    return p == ENGINE_PERIOD_HOUR ? "hour" : "day";
}

int engine_registry_add_limit(engine_registry *r, const engine_limit *l, char *why, size_t wl)
{
    if (!ident_ok(l->facility_id, sizeof l->facility_id))
        return fail(why, wl, -EINVAL, "facility_id: want 1-32 printable characters");
    if (!alnum_ok(l->outlet, sizeof l->outlet))
        return fail(why, wl, -EINVAL, "outlet: want an outlet code such as DA001");
    if (!alnum_ok(l->pollutant, sizeof l->pollutant))
        return fail(why, wl, -EINVAL, "pollutant: want a factor code such as a21026");
    if (!(isfinite(l->value) && l->value > 0))
        return fail(why, wl, -EINVAL, "value: want a number > 0");
    if (!text_ok(l->unit, sizeof l->unit, 0))
        return fail(why, wl, -EINVAL, "unit: want at most 16 bytes of text");
    if (l->period != ENGINE_PERIOD_HOUR && l->period != ENGINE_PERIOD_DAY)
        return fail(why, wl, -EINVAL, "period: want hour or day");
    if (l->basis != ENGINE_BASIS_ZS && l->basis != ENGINE_BASIS_MEASURED)
        return fail(why, wl, -EINVAL, "basis: want zs or measured");
    if (l->valid_from >= l->valid_to)
        return fail(why, wl, -EINVAL, "valid_to: must be later than valid_from");
    const engine_outlet *o = engine_registry_outlet(r, l->facility_id, l->outlet);
    if (!o)
        return fail(why, wl, -ENOENT, "outlet: facility %s has no outlet %s", l->facility_id,
                    l->outlet);
    uint32_t oi = (uint32_t)(o - r->out);
    for (uint32_t k = r->out_first_limit[oi]; k; k = r->lim_next[k - 1]) {
        const engine_limit *e = &r->lim[k - 1];
        if (e->period == l->period && strcmp(e->pollutant, l->pollutant) == 0 &&
            e->valid_from < l->valid_to && l->valid_from < e->valid_to)
            return fail(why, wl, -EEXIST, "valid_from: overlaps another %s limit of %s on %s",
                        period_name(l->period), l->pollutant, l->outlet);
    }
    if (grow((void **)&r->lim, &r->caplim, r->nlim, sizeof *r->lim))
        return -ENOMEM;
    uint32_t *next = realloc(r->lim_next, r->caplim * sizeof *next);
    if (!next)
        return -ENOMEM;
    r->lim_next = next;
    uint32_t i = (uint32_t)r->nlim++;
    r->lim[i] = *l;
    r->lim_next[i] = r->out_first_limit[oi];
    r->out_first_limit[oi] = i + 1;
    return 0;
}

/* ---- Lookups --------------------------------------------------------------------------- */

const engine_outlet *engine_registry_outlet_by_mn(const engine_registry *r, const char *mn,
                                                  size_t len)
{
    long i = index_find(r, &r->by_mn, key_out_mn, mn, len);
    return i < 0 ? NULL : &r->out[i];
}

const engine_outlet *engine_registry_outlet(const engine_registry *r, const char *facility_id,
                                            const char *code)
{
    char buf[ENGINE_ID_SIZE + ENGINE_CODE_SIZE + 2];
    if (strlen(facility_id) >= ENGINE_ID_SIZE || strlen(code) >= ENGINE_CODE_SIZE)
        return NULL;
    size_t n = code_key(buf, facility_id, code);
    long i = index_find(r, &r->by_code, key_out_code, buf, n);
    return i < 0 ? NULL : &r->out[i];
}

const engine_facility *engine_registry_facility(const engine_registry *r, const char *id)
{
    long i = index_find(r, &r->by_id, key_fac_id, id, strlen(id));
    return i < 0 ? NULL : &r->fac[i];
}

const engine_facility *engine_registry_facility_by_uscc(const engine_registry *r,
                                                        const char *uscc)
{
    size_t n = strlen(uscc);
    long i = n ? index_find(r, &r->by_uscc, key_fac_uscc, uscc, n) : -1;
    return i < 0 ? NULL : &r->fac[i];
}

const engine_limit *engine_registry_limit_find(const engine_registry *r,
                                               const engine_outlet *o, const char *pollutant,
                                               int period, int64_t t)
{
    if (!o || o < r->out || o >= r->out + r->nout)
        return NULL;
    for (uint32_t k = r->out_first_limit[o - r->out]; k; k = r->lim_next[k - 1]) {
        const engine_limit *e = &r->lim[k - 1];
        if (e->period == period && e->valid_from <= t && t < e->valid_to &&
            strcmp(e->pollutant, pollutant) == 0)
            return e;
    }
    return NULL;
}

const engine_limit *engine_registry_limit_next(const engine_registry *r,
                                               const engine_outlet *o,
                                               const engine_limit *prev)
{
    uint32_t k;
    if (prev) {
        if (prev < r->lim || prev >= r->lim + r->nlim)
            return NULL;
        k = r->lim_next[prev - r->lim];
    } else {
        if (!o || o < r->out || o >= r->out + r->nout)
            return NULL;
        k = r->out_first_limit[o - r->out];
    }
    return k ? &r->lim[k - 1] : NULL;
}

size_t engine_registry_facility_count(const engine_registry *r) { return r->nfac; }
size_t engine_registry_outlet_count(const engine_registry *r) { return r->nout; }
size_t engine_registry_limit_count(const engine_registry *r) { return r->nlim; }

const engine_facility *engine_registry_facility_at(const engine_registry *r, size_t i)
{
    return i < r->nfac ? &r->fac[i] : NULL;
}

const engine_outlet *engine_registry_outlet_at(const engine_registry *r, size_t i)
{
    return i < r->nout ? &r->out[i] : NULL;
}

const engine_limit *engine_registry_limit_at(const engine_registry *r, size_t i)
{
    return i < r->nlim ? &r->lim[i] : NULL;
}

/* ---- Encode and decode ------------------------------------------------------------------ */

#define REG_MAGIC "PLRG"
#define REG_VERSION 1u


int engine_registry_encode(const engine_registry *r, uint8_t **out, size_t *len)
{
    wbuf w = {0};
    put(&w, REG_MAGIC, 4);
    put_u32(&w, REG_VERSION);
    put_u32(&w, (uint32_t)r->nfac);
    put_u32(&w, (uint32_t)r->nout);
    put_u32(&w, (uint32_t)r->nlim);
    for (size_t i = 0; i < r->nfac; i++) {
        const engine_facility *f = &r->fac[i];
        put_str(&w, f->id);
        put_str(&w, f->name);
        put_str(&w, f->uscc);
        put_str(&w, f->region);
        put_str(&w, f->industry);
        put_f64(&w, f->lat);
        put_f64(&w, f->lon);
    }
    for (size_t i = 0; i < r->nout; i++) {
        const engine_outlet *o = &r->out[i];
        put_str(&w, o->facility_id);
        put_str(&w, o->code);
        put_u8(&w, (uint8_t)o->medium);
        put_str(&w, o->mn);
        put_str(&w, o->pw);
        put_f64(&w, o->o2_ref);
        put_u8(&w, o->flow_weighted);
    }
    for (size_t i = 0; i < r->nlim; i++) {
        const engine_limit *l = &r->lim[i];
        put_str(&w, l->facility_id);
        put_str(&w, l->outlet);
        put_str(&w, l->pollutant);
        put_f64(&w, l->value);
        put_str(&w, l->unit);
        put_u8(&w, (uint8_t)l->period);
        put_u8(&w, (uint8_t)l->basis);
        put_u64(&w, (uint64_t)l->valid_from);
        put_u64(&w, (uint64_t)l->valid_to);
    }
    if (w.oom) {
        free(w.p);
        return -ENOMEM;
    }
    *out = w.p;
    *len = w.n;
    return 0;
}


static int decode_records(rbuf *b, engine_registry *r, uint32_t nf, uint32_t no, uint32_t nl)
{
    for (uint32_t i = 0; i < nf; i++) {
        engine_facility f;
        get_str(b, f.id, sizeof f.id);
        get_str(b, f.name, sizeof f.name);
        get_str(b, f.uscc, sizeof f.uscc);
        get_str(b, f.region, sizeof f.region);
        get_str(b, f.industry, sizeof f.industry);
        f.lat = get_f64(b);
        f.lon = get_f64(b);
        int rc = b->bad ? -EBADMSG : engine_registry_add_facility(r, &f, NULL, 0);
        if (rc)
            return rc == -ENOMEM ? rc : -EBADMSG;
    }
    for (uint32_t i = 0; i < no; i++) {
        engine_outlet o;
        get_str(b, o.facility_id, sizeof o.facility_id);
        get_str(b, o.code, sizeof o.code);
        o.medium = get_u8(b);
        get_str(b, o.mn, sizeof o.mn);
        get_str(b, o.pw, sizeof o.pw);
        o.o2_ref = get_f64(b);
        uint8_t fw = get_u8(b);
        o.flow_weighted = fw != 0;
        int rc = b->bad || fw > 1 ? -EBADMSG : engine_registry_add_outlet(r, &o, NULL, 0);
        if (rc)
            return rc == -ENOMEM ? rc : -EBADMSG;
    }
    for (uint32_t i = 0; i < nl; i++) {
        engine_limit l;
        get_str(b, l.facility_id, sizeof l.facility_id);
        get_str(b, l.outlet, sizeof l.outlet);
        get_str(b, l.pollutant, sizeof l.pollutant);
        l.value = get_f64(b);
        get_str(b, l.unit, sizeof l.unit);
        l.period = get_u8(b);
        l.basis = get_u8(b);
        l.valid_from = (int64_t)get_u64(b);
        l.valid_to = (int64_t)get_u64(b);
        int rc = b->bad ? -EBADMSG : engine_registry_add_limit(r, &l, NULL, 0);
        if (rc)
            return rc == -ENOMEM ? rc : -EBADMSG;
    }
    return b->at == b->n ? 0 : -EBADMSG;
}

int engine_registry_decode(const uint8_t *buf, size_t len, engine_registry **out)
{
    rbuf b = {buf, len, 0, false};
    engine_registry *r = NULL;
    int rc = -EBADMSG;
    const uint8_t *magic = take(&b, 4);
    if (!magic || memcmp(magic, REG_MAGIC, 4) != 0 || get_u32(&b) != REG_VERSION)
        goto fail;
    uint32_t nf = get_u32(&b), no = get_u32(&b), nl = get_u32(&b);
    if (b.bad)
        goto fail;
    rc = engine_registry_create(&r);
    if (rc)
        goto fail;
    rc = decode_records(&b, r, nf, no, nl);
    if (rc)
        goto fail;
    *out = r;
    return 0;
fail:
    engine_registry_destroy(r);
    return rc;
}
