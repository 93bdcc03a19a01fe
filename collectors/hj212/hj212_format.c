/* hj212_format.c: writing HJ 212 packets.
 *
 * The platform talks back to devices (acknowledge uploads with 9014, answer requests with
 * 9011/9012/9013, set the clock with 1012, ask for history with 2061/2031/2051), and the
 * fleet simulator plays devices that upload data in 2017 or 2005 form. Every packet is
 * written straight into the caller's buffer: the segment first, at the place it will have
 * in the frame, then the "##" length, CRC and line end around it. Replies echo QN, PW and
 * MN byte for byte, as the standard requires. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hj212.h"

#define HEAD_LEN 6

/* The header fields, with strings as counted slices (from a parsed packet or a C string). */
typedef struct head {
    hj212_str qn, pw, mn;
    int st, cn, flag, pnum, pno;
} head;

typedef struct wbuf {
    char *p;
    size_t cap, len;
    bool over;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (w->over || w->cap - w->len < n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_z(wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_f(wbuf *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->over = true; /* never write a cut field */
        return;
    }
    put(w, tmp, (size_t)n);
}

static hj212_str str_z(const char *s)
{
    return (hj212_str){s, s ? (uint32_t)strlen(s) : 0};
}

static head head_from(const hj212_head *h)
{
    return (head){str_z(h->qn), str_z(h->pw), str_z(h->mn), h->st, h->cn, h->flag, h->pnum,
                  h->pno};
}

/* Starts the segment in out (after room for "##dddd") with the header and "CP=&&". */
static wbuf begin(const head *h, char *out, size_t cap)
{
    wbuf w = {out + HEAD_LEN, cap > HEAD_LEN + 6 ? cap - HEAD_LEN - 6 : 0, 0, cap <= HEAD_LEN + 6};
    if (h->qn.p) {
        put_z(&w, "QN=");
        put(&w, h->qn.p, h->qn.len);
        put_z(&w, ";");
    }
    if (h->st >= 0)
        put_f(&w, "ST=%d;", h->st);
    put_f(&w, "CN=%d;", h->cn);
    if (h->pw.p) {
        put_z(&w, "PW=");
        put(&w, h->pw.p, h->pw.len);
        put_z(&w, ";");
    }
    if (h->mn.p) {
        put_z(&w, "MN=");
        put(&w, h->mn.p, h->mn.len);
        put_z(&w, ";");
    }
    if (h->flag >= 0)
        put_f(&w, "Flag=%d;", h->flag);
    if (h->pnum > 0)
        put_f(&w, "PNUM=%d;PNO=%d;", h->pnum, h->pno);
    put_z(&w, "CP=&&");
    return w;
}

/* Closes CP and frames the segment. */
static int finish(wbuf *w, char *out, size_t cap, size_t *out_len)
{
    put_z(w, "&&");
    if (w->over)
        return HJ212_ERANGE;
    return hj212_frame_format(out + HEAD_LEN, w->len, out, cap, out_len);
}

int hj212_format_packet(const hj212_head *h, const char *cp, size_t cp_len, char *out,
                        size_t cap, size_t *out_len)
{
    head hd = head_from(h);
    wbuf w = begin(&hd, out, cap);
    put(&w, cp, cp_len);
    return finish(&w, out, cap, out_len);
}

/* A reply to req: its QN, PW and MN, ST=91, Flag=4, command cn, CP from key=value or empty. */
static int reply(const hj212_packet *req, int cn, const char *key, int value, char *out,
                 size_t cap, size_t *out_len)
{
    head hd = {req->qn, req->pw, req->mn, 91, cn, 4, 0, 0};
    wbuf w = begin(&hd, out, cap);
    if (key)
        put_f(&w, "%s=%d", key, value);
    return finish(&w, out, cap, out_len);
}

int hj212_format_data_ack(const hj212_packet *req, char *out, size_t cap, size_t *out_len)
{
    return reply(req, 9014, NULL, 0, out, cap, out_len);
}

int hj212_format_notify_ack(const hj212_packet *req, char *out, size_t cap, size_t *out_len)
{
    return reply(req, 9013, NULL, 0, out, cap, out_len);
}

int hj212_format_qn_rtn(const hj212_packet *req, int qn_rtn, char *out, size_t cap,
                        size_t *out_len)
{
    return reply(req, 9011, "QnRtn", qn_rtn, out, cap, out_len);
}

int hj212_format_exe_rtn(const hj212_packet *req, int exe_rtn, char *out, size_t cap,
                         size_t *out_len)
{
    return reply(req, 9012, "ExeRtn", exe_rtn, out, cap, out_len);
}

/* Local civil time of t: y, mo, d, h, mi, s. */
static void civil(int64_t t, int64_t tz_offset_s, int64_t *y, unsigned f[5])
{
    int64_t local = t + tz_offset_s;
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t sec = local - days * 86400;
    engine_civil_from_days(days, y, &f[0], &f[1]);
    f[2] = (unsigned)(sec / 3600);
    f[3] = (unsigned)(sec / 60 % 60);
    f[4] = (unsigned)(sec % 60);
}

void hj212_time_format(int64_t t, int64_t tz_offset_s, char *buf)
{
    int64_t y;
    unsigned f[5];
    civil(t, tz_offset_s, &y, f);
    snprintf(buf, 15, "%04u%02u%02u%02u%02u%02u", (unsigned)(y % 10000), f[0], f[1], f[2], f[3],
             f[4]);
}

void hj212_qn_format(int64_t ms, int64_t tz_offset_s, char *buf)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    hj212_time_format(s, tz_offset_s, buf);
    snprintf(buf + 14, 4, "%03u", (unsigned)(ms - s * 1000));
}

int hj212_format_set_time(const hj212_head *h, const char *polid, int64_t t,
                          int64_t tz_offset_s, char *out, size_t cap, size_t *out_len)
{
    head hd = head_from(h);
    wbuf w = begin(&hd, out, cap);
    char ts[15];
    hj212_time_format(t, tz_offset_s, ts);
    if (polid) {
        put_z(&w, "PolId=");
        put_z(&w, polid);
        put_z(&w, ";");
    }
    put_z(&w, "SystemTime=");
    put(&w, ts, 14);
    return finish(&w, out, cap, out_len);
}

int hj212_format_history_request(const hj212_head *h, int64_t begin_t, int64_t end_t,
                                 int64_t tz_offset_s, char *out, size_t cap,
                                 size_t *out_len)
{
    head hd = head_from(h);
    wbuf w = begin(&hd, out, cap);
    char b[15], e[15];
    hj212_time_format(begin_t, tz_offset_s, b);
    hj212_time_format(end_t, tz_offset_s, e);
    put_z(&w, "BeginTime=");
    put(&w, b, 14);
    put_z(&w, ";EndTime=");
    put(&w, e, 14);
    return finish(&w, out, cap, out_len);
}

/* The shortest %g form that reads back as the same double. */
static void put_number(wbuf *w, double v)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    put_z(w, tmp);
}

static void put_factor(wbuf *w, const hj212_factor *f, bool rtd, int version)
{
    static const char *const avg_names[STORAGE_NCOLS] = {
        "Avg", "Min", "Max", "Cou", "ZsAvg", "ZsMin", "ZsMax",
    };
    const char *code = f->code;
    if (version == HJ212_V2005) {
        const hj212_factor_info *fi = hj212_factor_find(code, strlen(code));
        if (fi && fi->code_2005[0])
            code = fi->code_2005;
    }
    bool first = true;
    for (int c = 0; c < STORAGE_NCOLS; c++) {
        if (!(f->mask & (1u << c)) || !isfinite(f->v[c]))
            continue;
        const char *suffix = avg_names[c];
        if (rtd && c != STORAGE_COL_AVG && c != STORAGE_COL_ZSAVG)
            continue;
        if (rtd)
            suffix = c == STORAGE_COL_AVG ? "Rtd" : "ZsRtd";
        put_f(w, "%s%s-%s=", first ? "" : ",", code, suffix);
        put_number(w, f->v[c]);
        first = false;
    }
    if (f->has & HJ212_HAS_FLAG)
        put_f(w, "%s%s-Flag=%c", first ? "" : ",", code, f->flag);
}

int hj212_format_upload(const hj212_upload *u, char *out, size_t cap, size_t *out_len)
{
    head hd = head_from(&u->head);
    wbuf w = begin(&hd, out, cap);
    char ts[15];
    hj212_time_format(u->data_time, u->tz_offset_s, ts);
    put_z(&w, "DataTime=");
    put(&w, ts, 14);
    for (size_t i = 0; i < u->nfactors; i++) {
        put_z(&w, ";");
        put_factor(&w, &u->factors[i], u->head.cn == 2011, u->version);
    }
    return finish(&w, out, cap, out_len);
}
