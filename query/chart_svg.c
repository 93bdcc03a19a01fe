/* chart_svg.c: a trend chart as an SVG document, the picture a regulator reads: the series
 * (M4-reduced, so it looks exactly like the full line at this width), the limit as a dashed
 * red line, exceedances shaded red, periods of invalid data (flags other than N) shaded grey,
 * and axes in local time with the unit. SVG needs no library and opens in any browser.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query.h"
#include "series.h"

#define ML 72  /* margins: left, right, top, bottom */
#define MR 24
#define MT 56
#define MB 56

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0 || b->oom)
            return;
        if (b->p && (size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1 << 16) + (size_t)k;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

/* Text with XML's special characters escaped. */
static void put_text(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '&': put(b, "&amp;"); break;
        case '"': put(b, "&quot;"); break;
        default: put(b, "%c", *s);
        }
    }
}

typedef struct frame {
    int64_t t0, t1;
    double y0, y1;
    int w, h;
} frame;

static double fx(const frame *f, int64_t t)
{
    double span = f->t1 > f->t0 ? (double)(f->t1 - f->t0) : 1;
    return ML + (double)(t - f->t0) / span * (f->w - ML - MR);
}

static double fy(const frame *f, double v)
{
    return f->h - MB - (v - f->y0) / (f->y1 - f->y0) * (f->h - MT - MB);
}

static double nice_step(double range, int ticks)
{
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

static void y_axis(sbuf *b, const frame *f, const char *unit)
{
    double step = nice_step(f->y1 - f->y0, 6);
    for (double v = ceil(f->y0 / step) * step; v <= f->y1 + step * 1e-9; v += step) {
        double y = fy(f, v);
        put(b, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#e0e0e0'/>\n", ML, y,
            f->w - MR, y);
        put(b, "<text x='%d' y='%.1f' text-anchor='end' font-size='12'>%g</text>\n", ML - 6,
            y + 4, fabs(v) < step * 1e-9 ? 0 : v);
    }
    put(b, "<text transform='translate(16,%d) rotate(-90)' text-anchor='middle' "
        "font-size='13'>", (f->h - MB + MT) / 2);
    put_text(b, unit && unit[0] ? unit : "value");
    put(b, "</text>\n");
}

static void x_axis(sbuf *b, const frame *f, int tz)
{
    static const int64_t steps[] = {60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                                    86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400,
                                    91 * 86400, 182 * 86400, 365 * 86400, 730 * 86400,
                                    1826 * 86400};
    int64_t span = f->t1 - f->t0, step = steps[sizeof steps / sizeof steps[0] - 1];
    int maxticks = (f->w - ML - MR) / 90;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / steps[i] <= maxticks) {
            step = steps[i];
            break;
        }
    /* Ticks on local boundaries: whole steps of local time (months and years approximately,
     * then snapped to the first of the month). */
    int64_t t = ((f->t0 + tz) / step) * step - tz;
    for (; t <= f->t1; t += step) {
        int64_t tt = t;
        struct tm tm;
        time_t lt = (time_t)(tt + tz);
        gmtime_r(&lt, &tm);
        if (step >= 30 * 86400) { /* snap to the first of the month, local midnight */
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tt = (int64_t)timegm(&tm) - tz;
        }
        if (tt < f->t0)
            continue;
        char label[32];
        if (step >= 365 * 86400)
            strftime(label, sizeof label, "%Y", &tm);
        else if (step >= 30 * 86400)
            strftime(label, sizeof label, "%Y-%m", &tm);
        else if (step >= 86400)
            strftime(label, sizeof label, "%m-%d", &tm);
        else
            strftime(label, sizeof label, "%m-%d %H:%M", &tm);
        double x = fx(f, tt);
        put(b, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#e0e0e0'/>\n", x, MT, x,
            f->h - MB);
        put(b, "<text x='%.1f' y='%d' text-anchor='middle' font-size='12'>%s</text>\n", x,
            f->h - MB + 18, label);
    }
    put(b, "<text x='%d' y='%d' text-anchor='middle' font-size='13'>local time (UTC%+d)"
        "</text>\n", (f->w + ML - MR) / 2, f->h - 12, tz / 3600);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The typical spacing of the points: gaps much longer break the line. */
static int64_t typical_gap(const query_chart_data *d)
{
    if (d->n < 3)
        return INT64_MAX;
    int64_t *g = malloc((d->n - 1) * sizeof *g);
    if (!g)
        return INT64_MAX;
    for (size_t i = 1; i < d->n; i++)
        g[i - 1] = d->ts[i] - d->ts[i - 1];
    qsort(g, d->n - 1, sizeof *g, cmp_i64);
    int64_t m = g[(d->n - 1) / 2];
    free(g);
    return m;
}

static void shade(sbuf *b, const frame *f, const query_run *r, size_t n, int64_t pad,
                  const char *fill)
{
    for (size_t i = 0; i < n; i++) {
        double x0 = fx(f, r[i].start), x1 = fx(f, r[i].end + pad);
        if (x1 - x0 < 1.5)
            x1 = x0 + 1.5; /* one point still shows */
        put(b, "<rect x='%.1f' y='%d' width='%.1f' height='%d' fill='%s'/>\n", x0, MT, x1 - x0,
            f->h - MT - MB, fill);
    }
}

int query_chart_svg_render(const query_chart_data *d, const char *title, const char *unit,
                           int width, int height, int tz, char **out, size_t *len)
{
    sbuf b = {0};
    frame f = {d->from, d->to > d->from ? d->to : d->from + 1, 0, 1, width, height};
    double vmax = 0, vmin = 0;
    for (size_t i = 0; i < d->n; i++) {
        vmax = d->v[i] > vmax ? d->v[i] : vmax;
        vmin = d->v[i] < vmin ? d->v[i] : vmin;
    }
    for (size_t i = 0; i < d->limits.n; i++)
        vmax = d->limits.seg[i].value > vmax ? d->limits.seg[i].value : vmax;
    f.y0 = vmin;
    f.y1 = vmax > vmin ? vmax + (vmax - vmin) * 0.08 : vmin + 1;
    int64_t gap = typical_gap(d), pad = gap == INT64_MAX ? d->bucket : gap;
    put(&b, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
        "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n", width,
        height, width, height);
    put(&b, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%d' y='22' "
        "font-size='15' font-weight='bold'>", ML);
    put_text(&b, title);
    put(&b, "</text>\n");
    shade(&b, &f, d->invalid, d->ninvalid, pad, "#9e9e9e55");
    shade(&b, &f, d->exceed, d->nexceed, pad, "#e5393540");
    y_axis(&b, &f, unit);
    x_axis(&b, &f, tz);
    put(&b, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n", ML, MT,
        width - ML - MR, height - MT - MB);
    /* The series: one path, broken where the data has a gap. */
    put(&b, "<path fill='none' stroke='#1565c0' stroke-width='1.2' stroke-linejoin='round' d='");
    for (size_t i = 0; i < d->n; i++) {
        bool brk = i == 0 || (gap != INT64_MAX && d->ts[i] - d->ts[i - 1] > 3 * gap &&
                              d->ts[i] - d->ts[i - 1] > 2 * d->bucket);
        put(&b, "%s%.1f %.1f", brk ? (i ? " M" : "M") : " L", fx(&f, d->ts[i]),
            fy(&f, d->v[i]));
        if (brk && (i + 1 == d->n || (d->ts[i + 1] - d->ts[i] > 3 * gap &&
                                      d->ts[i + 1] - d->ts[i] > 2 * d->bucket)))
            put(&b, " h1"); /* an isolated point still shows */
    }
    put(&b, "'/>\n");
    for (size_t i = 0; i < d->limits.n; i++) {
        const query_limit_seg *s = &d->limits.seg[i];
        double y = fy(&f, s->value);
        double x0 = fx(&f, s->from), x1 = fx(&f, s->to < f.t1 ? s->to : f.t1);
        put(&b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#d32f2f' "
            "stroke-width='1.5' stroke-dasharray='6 4'/>\n", x0, y, x1, y);
        put(&b, "<text x='%.1f' y='%.1f' font-size='12' fill='#d32f2f'>limit %g</text>\n",
            x0 + 4, y - 4, s->value);
    }
    /* Legend. */
    int lx = width - MR - 420;
    put(&b, "<g font-size='12'><line x1='%d' y1='40' x2='%d' y2='40' stroke='#1565c0' "
        "stroke-width='2'/><text x='%d' y='44'>value</text>", lx, lx + 20, lx + 24);
    put(&b, "<line x1='%d' y1='40' x2='%d' y2='40' stroke='#d32f2f' stroke-dasharray='6 4' "
        "stroke-width='1.5'/><text x='%d' y='44'>limit</text>", lx + 70, lx + 90, lx + 94);
    put(&b, "<rect x='%d' y='34' width='14' height='12' fill='#e5393540'/><text x='%d' y='44'>"
        "exceedance (%zu)</text>", lx + 140, lx + 158, d->nexceed);
    put(&b, "<rect x='%d' y='34' width='14' height='12' fill='#9e9e9e55'/><text x='%d' y='44'>"
        "invalid data (%zu)</text></g>\n</svg>\n", lx + 270, lx + 288, d->ninvalid);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int query_chart_svg(struct storage *st, const struct engine_registry *reg, const char *key,
                    int64_t from_s, int64_t to_s, int width, int height, char **svg,
                    size_t *len)
{
    storage_sid sid;
    int col;
    char skey[256], title[600];
    query_chart_data d;
    storage_reader *r = NULL;
    if (width < 200 || width > 10000 || height < 150 || height > 5000)
        return -EINVAL;
    int rc = query_resolve_key(st, key, strlen(key), &sid, &col);
    if (rc == 0)
        rc = storage_series_key(st, sid, skey, sizeof skey);
    if (rc == 0)
        rc = storage_reader_open(st, &r);
    if (rc == 0)
        rc = query_chart_compute(r, reg, sid, storage_series_interval(st, sid), col, skey,
                                 from_s, to_s, width - ML - MR, true, &d);
    storage_reader_close(r);
    if (rc != 0)
        return rc;
    query_key k;
    const engine_outlet *o = NULL;
    const engine_facility *fa = NULL;
    if (reg && query_key_split(skey, &k) &&
        (o = engine_registry_outlet_by_mn(reg, k.mn, strlen(k.mn))))
        fa = engine_registry_facility(reg, o->facility_id);
    if (fa)
        snprintf(title, sizeof title, "%s %s: %s (%s)", fa->name, o->code, key,
                 storage_col_name(col));
    else
        snprintf(title, sizeof title, "%s (%s)", key, storage_col_name(col));
    rc = query_chart_svg_render(&d, title, d.limits.unit, width, height, 8 * 3600, svg, len);
    query_chart_data_free(&d);
    return rc;
}
