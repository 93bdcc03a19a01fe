/* alert_format.c: what an alert looks like on the wire. Receivers are programs (a webhook
 * that stores JSON) and people (a regulator's DingTalk or WeCom group), so one alert has three
 * renderings: the documented JSON of ALERTS.md, and the two robots' "markdown" messages in
 * Chinese. The JSON is also what the outbox keeps, so it decodes back into an alert
 * (engine_alert_parse_json) when undelivered records are resumed after a restart. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static const char *const state_names[] = {"firing", "resolved"};
static const char *const severity_names[] = {"info", "warning", "critical"};
static const char *const format_names[] = {"json", "dingtalk", "wecom"};

const char *engine_alert_state_name(int state)
{
    return state >= 0 && state < 2 ? state_names[state] : "unknown";
}

const char *engine_alert_severity_name(int severity)
{
    return severity >= 0 && severity < 3 ? severity_names[severity] : "unknown";
}

const char *engine_alert_format_name(int format)
{
    return format >= 0 && format < 3 ? format_names[format] : "unknown";
}

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int engine_alert_format_parse(const char *name)
{
    return lookup(format_names, 3, name);
}

int engine_alert_severity_parse(const char *name)
{
    return lookup(severity_names, 3, name);
}

/* Names for people: the HJ 212 factor codes alerts are mostly about. */
static const struct {
    const char *code, *en, *zh;
} pollutants[] = {
    {"a21026", "SO2", "二氧化硫"},      {"a21002", "NOx", "氮氧化物"},
    {"a34013", "particulate", "颗粒物"}, {"a21005", "CO", "一氧化碳"},
    {"a21024", "HCl", "氯化氢"},        {"a24088", "NMHC", "非甲烷总烃"},
    {"a21001", "NH3", "氨"},             {"a19001", "O2", "氧含量"},
    {"w01018", "COD", "化学需氧量"},     {"w21003", "NH3-N", "氨氮"},
    {"w21011", "TP", "总磷"},            {"w21001", "TN", "总氮"},
    {"w01001", "pH", "pH值"},
};

static const char *pollutant_name(const char *code, bool zh)
{
    for (size_t i = 0; code && i < sizeof pollutants / sizeof pollutants[0]; i++)
        if (strcmp(pollutants[i].code, code) == 0)
            return zh ? pollutants[i].zh : pollutants[i].en;
    return code ? code : "";
}

int engine_alert_key(const engine_alert *a, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:%u", a->id ? a->id : "", engine_alert_state_name(a->state),
                     a->revision);
    return n < 0 || (size_t)n >= len ? -ERANGE : n;
}

int engine_alert_check(const engine_alert *a)
{
    if (!a || !a->id || !*a->id || strlen(a->id) > 200 || a->revision == 0)
        return -EINVAL;
    for (const char *p = a->id; *p; p++)
        if ((unsigned char)*p < 0x20)
            return -EINVAL;
    if (a->state < 0 || a->state > 1 || a->severity < 0 || a->severity > 2)
        return -EINVAL;
    return 0;
}

static void add_str(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static void add_time(cJSON *o, const char *name, int64_t t)
{
    char buf[32];
    if (t == 0) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    engine_time_format(t, ENGINE_CST_OFFSET_S, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static cJSON *to_json(const engine_alert *a)
{
    char key[256];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    engine_alert_key(a, key, sizeof key);
    cJSON_AddStringToObject(o, "schema", "plume.alert/1");
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "idempotency_key", key);
    cJSON_AddStringToObject(o, "state", engine_alert_state_name(a->state));
    cJSON_AddNumberToObject(o, "revision", a->revision);
    cJSON_AddStringToObject(o, "severity", engine_alert_severity_name(a->severity));
    cJSON_AddStringToObject(o, "kind", a->kind ? a->kind : "exceedance");
    add_str(o, "facility_id", a->facility_id);
    add_str(o, "facility_name", a->facility_name);
    add_str(o, "uscc", a->uscc);
    add_str(o, "region", a->region);
    add_str(o, "industry", a->industry);
    add_str(o, "outlet", a->outlet);
    add_str(o, "mn", a->mn);
    add_str(o, "pollutant", a->pollutant);
    add_str(o, "pollutant_name", a->pollutant ? pollutant_name(a->pollutant, false) : NULL);
    cJSON_AddNumberToObject(o, "limit", a->limit);
    cJSON_AddNumberToObject(o, "value", a->value);
    cJSON_AddNumberToObject(o, "multiple", a->multiple);
    add_str(o, "unit", a->unit);
    add_time(o, "start", a->start);
    add_time(o, "end", a->end);
    return o;
}

/* Appends printf output to a growing markdown text. */
typedef struct mdtext {
    char buf[4096];
    size_t len;
} mdtext;

static void put(mdtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(mdtext *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < sizeof t->buf - t->len ? (size_t)n : sizeof t->buf - 1 - t->len;
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* The markdown both robots render: a heading, the facts a regulator acts on, the id. */
static void markdown(const engine_alert *a, bool wecom, mdtext *t, char *title, size_t tlen)
{
    bool firing = a->state == ENGINE_ALERT_FIRING;
    bool exceed = !a->kind || strcmp(a->kind, "exceedance") == 0;
    const char *what = exceed ? (firing ? "超标报警" : "超标解除")
                              : (firing ? "数据异常告警" : "数据异常解除");
    const char *pname = pollutant_name(a->pollutant, true);
    char start[32] = "-", end[32] = "-";
    if (a->start)
        engine_time_format(a->start, ENGINE_CST_OFFSET_S, start, sizeof start);
    if (a->end)
        engine_time_format(a->end, ENGINE_CST_OFFSET_S, end, sizeof end);
    snprintf(title, tlen, "%s: %s %s", what, or_dash(a->facility_name), pname);
    if (wecom)
        put(t, "## <font color=\"%s\">%s</font>\n", firing ? "warning" : "info", what);
    else
        put(t, "## %s\n", what);
    put(t, "> **企业**: %s\n\n", or_dash(a->facility_name));
    put(t, "> **信用代码**: %s\n\n", or_dash(a->uscc));
    put(t, "> **排放口**: %s (MN %s)\n\n", or_dash(a->outlet), or_dash(a->mn));
    if (!exceed)
        put(t, "> **异常类型**: %s\n\n", a->kind);
    put(t, "> **污染物**: %s (%s)\n\n", pname, or_dash(a->pollutant));
    put(t, "> **监测值**: %.6g %s, **限值**: %.6g %s, **超标倍数**: %.2f\n\n", a->value,
        a->unit ? a->unit : "", a->limit, a->unit ? a->unit : "", a->multiple);
    put(t, "> **开始**: %s\n\n", start);
    if (!firing)
        put(t, "> **结束**: %s\n\n", end);
    put(t, "> **级别**: %s\n\n", engine_alert_severity_name(a->severity));
    put(t, "告警编号 %s (第 %u 版)\n", a->id, a->revision);
}

int engine_alert_format(const engine_alert *a, int fmt, char **out, size_t *len)
{
    if (engine_alert_check(a) != 0 || fmt < 0 || fmt > 2)
        return -EINVAL;
    cJSON *o = NULL;
    if (fmt == ENGINE_ALERT_FMT_JSON) {
        o = to_json(a);
    } else {
        mdtext *t = malloc(sizeof *t);
        char title[256];
        if (!t)
            return -ENOMEM;
        t->len = 0;
        t->buf[0] = '\0';
        markdown(a, fmt == ENGINE_ALERT_FMT_WECOM, t, title, sizeof title);
        o = cJSON_CreateObject();
        cJSON *md = o ? cJSON_AddObjectToObject(o, "markdown") : NULL;
        if (md) {
            cJSON_AddStringToObject(o, "msgtype", "markdown");
            if (fmt == ENGINE_ALERT_FMT_DINGTALK) {
                cJSON_AddStringToObject(md, "title", title);
                cJSON_AddStringToObject(md, "text", t->buf);
            } else {
                cJSON_AddStringToObject(md, "content", t->buf);
            }
        }
        free(t);
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s)
        return -ENOMEM;
    *out = s;
    *len = strlen(s);
    return 0;
}

/* ---- Decoding (outbox records) ------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int64_t time_of(const cJSON *o, const char *name)
{
    const char *s = str_of(o, name);
    int64_t t = 0;
    if (s && engine_time_parse(s, strlen(s), ENGINE_CST_OFFSET_S, &t) != 0)
        t = 0;
    return t;
}

/* The string fields, in the order they are packed after the struct. */
#define NSTR 10
static const char *const str_names[NSTR] = {"id", "kind", "facility_id", "facility_name",
                                            "uscc", "region", "industry", "outlet", "mn",
                                            "pollutant"};

int engine_alert_parse_json(const char *text, size_t len, engine_alert **out)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    const char *strs[NSTR + 1];
    size_t need = sizeof(engine_alert);
    for (int i = 0; i < NSTR; i++) {
        strs[i] = str_of(o, str_names[i]);
        need += strs[i] ? strlen(strs[i]) + 1 : 0;
    }
    strs[NSTR] = str_of(o, "unit");
    need += strs[NSTR] ? strlen(strs[NSTR]) + 1 : 0;
    engine_alert *a = calloc(1, need);
    if (!a) {
        cJSON_Delete(o);
        return -ENOMEM;
    }
    char *p = (char *)(a + 1);
    const char **dst[NSTR + 1] = {&a->id, &a->kind, &a->facility_id, &a->facility_name,
                                  &a->uscc, &a->region, &a->industry, &a->outlet, &a->mn,
                                  &a->pollutant, &a->unit};
    for (int i = 0; i <= NSTR; i++) {
        if (!strs[i])
            continue;
        size_t l = strlen(strs[i]) + 1;
        memcpy(p, strs[i], l);
        *dst[i] = p;
        p += l;
    }
    a->state = lookup(state_names, 2, str_of(o, "state"));
    a->severity = engine_alert_severity_parse(str_of(o, "severity"));
    a->revision = (uint32_t)num_of(o, "revision");
    a->limit = num_of(o, "limit");
    a->value = num_of(o, "value");
    a->multiple = num_of(o, "multiple");
    a->start = time_of(o, "start");
    a->end = time_of(o, "end");
    cJSON_Delete(o);
    if (engine_alert_check(a) != 0) {
        free(a);
        return -EINVAL;
    }
    *out = a;
    return 0;
}
