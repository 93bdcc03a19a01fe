/* record.c: records as HJ 212 packets, written the way each simulated unit writes them.
 *
 * Units differ, so the packets do: 2017 units send QN, Flag=5 (or 4), 24-char MNs and 2017
 * factor codes; 2005 units send 14-char MNs, 2005 codes (02 for SO2 ...) and either no QN
 * and no Flag or Flag=1; a share of units compute CRC-16/MODBUS or write the CRC in lower
 * case. Values go out at the decimals the unit keeps (12.30 stays "12.30"). Formatting
 * writes straight into the caller's buffer: no allocation, no stdio, no floating point.
 */
#include <errno.h>
#include <string.h>

#include "hj212.h"
#include "sim_int.h"

typedef struct wbuf {
    char *p, *end;
    bool over;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->over = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static void puts_(wbuf *w, const char *s) { put(w, s, strlen(s)); }

static void put_fixed(wbuf *w, int64_t v, int dec)
{
    char tmp[32];
    put(w, tmp, (size_t)sim_fmt_fixed(tmp, v, dec));
}

static void put_uint(wbuf *w, uint64_t v) { put_fixed(w, (int64_t)v, 0); }

/* YYYYMMDDhhmmss of UTC t in local time into buf[14]. */
static void local_digits(int64_t t, char *buf)
{
    int64_t l = t + SIM_CST_S;
    int64_t days = l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
    int64_t sec = l - days * 86400;
    /* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int64_t parts[6] = {y, m, d, sec / 3600, sec / 60 % 60, sec % 60};
    int width[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0, k = 0; i < 6; i++)
        for (int j = width[i] - 1; j >= 0; j--, k++) {
            int64_t v = parts[i];
            for (int q = 0; q < j; q++)
                v /= 10;
            buf[k] = (char)('0' + v % 10);
        }
}

void sim_qn_format(int64_t qn_ms, char *buf)
{
    int64_t s = qn_ms >= 0 ? qn_ms / 1000 : -((-qn_ms + 999) / 1000);
    int64_t ms = qn_ms - s * 1000;
    local_digits(s, buf);
    buf[14] = (char)('0' + ms / 100);
    buf[15] = (char)('0' + ms / 10 % 10);
    buf[16] = (char)('0' + ms % 10);
    buf[17] = 0;
}

int sim_frame(const sim_outlet *o, const char *seg, size_t seg_len, char *out, size_t cap)
{
    if (seg_len > 9999 || cap < seg_len + 12)
        return -ERANGE;
    uint16_t crc = o->crc == SIM_CRC_MODBUS ? hj212_crc_modbus(seg, seg_len)
                                            : hj212_crc(seg, seg_len);
    const char *hex = o->crc == SIM_CRC_LOWER ? "0123456789abcdef" : "0123456789ABCDEF";
    out[0] = out[1] = '#';
    for (int i = 0; i < 4; i++) {
        size_t v = seg_len;
        for (int q = 0; q < 3 - i; q++)
            v /= 10;
        out[2 + i] = (char)('0' + v % 10);
    }
    if (out + 6 != seg)
        memmove(out + 6, seg, seg_len);
    char *p = out + 6 + seg_len;
    for (int i = 0; i < 4; i++)
        p[i] = hex[(crc >> (12 - 4 * i)) & 15];
    p[4] = '\r';
    p[5] = '\n';
    return (int)(seg_len + 12);
}

/* The header fields up to and including "CP=&&". */
static void put_head(wbuf *w, const sim_outlet *o, int cn, int64_t qn_ms)
{
    bool qn = o->version == SIM_V2017 || o->has_flag;
    if (qn) {
        char q[18];
        sim_qn_format(qn_ms, q);
        puts_(w, "QN=");
        put(w, q, 17);
        puts_(w, ";");
    }
    puts_(w, o->medium == SIM_GAS ? "ST=31;CN=" : "ST=32;CN=");
    put_uint(w, (uint64_t)cn);
    puts_(w, ";PW=");
    puts_(w, o->pw);
    puts_(w, ";MN=");
    puts_(w, o->mn);
    if (o->has_flag) {
        puts_(w, ";Flag=");
        put_uint(w, o->flag);
    }
    puts_(w, ";CP=&&");
}

/* ",code-Suffix=value" (sep first: ',' within a factor, ';' before a new one). */
static void put_kv(wbuf *w, char sep, const char *code, const char *suffix, int64_t v, int dec)
{
    put(w, &sep, 1);
    puts_(w, code);
    puts_(w, suffix);
    put_fixed(w, v, dec);
}

int sim_packet_format(const sim_fleet *f, const sim_record *r, int64_t qn_ms, char *out,
                      size_t cap)
{
    if (cap < 16 || r->outlet >= f->nout)
        return -ERANGE;
    const sim_outlet *o = &f->out[r->outlet];
    wbuf w = {out + 6, out + cap - 6, false};
    put_head(&w, o, r->cn, qn_ms);
    char dt[14];
    local_digits(r->data_time, dt);
    puts_(&w, "DataTime=");
    put(&w, dt, 14);
    bool rtd = r->cn == SIM_CN_RTD;
    for (int s = 0; s < o->nf; s++) {
        const char *code = o->version == SIM_V2005 ? sim_factor_code_2005(o->medium, s)
                                                   : sim_factor_code(o->medium, s);
        const sim_value *v = &r->v[s];
        int dec = o->f[s].dec;
        bool zs = sim_factor_has_zs(o->medium, s);
        if (rtd) {
            put_kv(&w, ';', code, "-Rtd=", v->avg, dec);
            if (zs)
                put_kv(&w, ',', code, "-ZsRtd=", v->zsavg, dec);
        } else {
            put_kv(&w, ';', code, "-Avg=", v->avg, dec);
            put_kv(&w, ',', code, "-Min=", v->min, dec);
            put_kv(&w, ',', code, "-Max=", v->max, dec);
            if (zs) {
                put_kv(&w, ',', code, "-ZsAvg=", v->zsavg, dec);
                put_kv(&w, ',', code, "-ZsMin=", v->zsmin, dec);
                put_kv(&w, ',', code, "-ZsMax=", v->zsmax, dec);
            }
            if (sim_factor_has_cou(o->medium, s))
                put_kv(&w, ',', code, "-Cou=", v->cou, sim_cou_decimals(o->medium, s));
        }
        puts_(&w, ",");
        puts_(&w, code);
        puts_(&w, "-Flag=");
        put(&w, &v->flag, 1);
    }
    puts_(&w, "&&");
    if (w.over)
        return -ERANGE;
    return sim_frame(o, out + 6, (size_t)(w.p - (out + 6)), out, cap);
}

/* Writes every upload of the run in the order the wire sends them when every answer comes
 * at once: tick by tick, units by send delay then number, records by CN 2011, 2051, 2061,
 * 2031; nothing from units inside a gap. The QNs are those the wire uses. */
int sim_packets_write(const sim_fleet *f, FILE *out)
{
    const sim_options *op = &f->opt;
    int64_t step = 3600;
    if (op->minute_interval)
        step = op->minute_interval * 60 < step ? op->minute_interval * 60 : step;
    if (op->rtd_interval_s) {
        int64_t a = step, b = op->rtd_interval_s;
        while (b) {
            int64_t t = a % b;
            a = b;
            b = t;
        }
        step = a;
    }
    int64_t end = sim_fleet_end(f);
    char buf[SIM_PACKET_MAX];
    for (int64_t t = op->start + step; t <= end; t += step)
        for (int j = 0; j < 30; j++)
            for (uint32_t d = 0; d < f->nout; d++) {
                const sim_outlet *o = &f->out[d];
                if (o->jitter_s != j || sim_outlet_offline(f, d, t))
                    continue;
                for (int s = 0; s < 4; s++) {
                    int cn = 0;
                    int64_t period = 0;
                    if (s == 0 && op->rtd_interval_s && t % op->rtd_interval_s == 0 && t < end)
                        cn = SIM_CN_RTD;
                    else if (s == 1 && op->minute_interval &&
                             t % (op->minute_interval * 60) == 0)
                        cn = SIM_CN_MIN, period = op->minute_interval * 60;
                    else if (s == 2 && t % 3600 == 0)
                        cn = SIM_CN_HOUR, period = 3600;
                    else if (s == 3 && sim_local_day(t) == t)
                        cn = SIM_CN_DAY, period = 86400;
                    if (!cn || t - period < op->start)
                        continue;
                    sim_record r;
                    if (sim_record_compute(f, d, cn, t - period, &r) != 0)
                        return -EINVAL;
                    int n = sim_packet_format(f, &r, (t + o->jitter_s) * 1000 + s, buf,
                                              sizeof buf);
                    if (n < 0)
                        return n;
                    fwrite(buf, 1, (size_t)n, out);
                }
            }
    return ferror(out) ? -EIO : 0;
}
