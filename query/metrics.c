/* metrics.c: the daemon's own metrics as text. The daemon (tools/) knows every module's
 * counters; the query module knows how operators read them. So the daemon supplies a provider
 * that walks its counters through query_metrics_family/_add, and this file renders that walk
 * in three forms without building any intermediate list:
 *   - Prometheus text 0.0.4, what `promtool check metrics` and most scrapers read;
 *   - OpenMetrics 1.0.0 (counter families named without `_total`, `# EOF` at the end), for
 *     scrapers that ask for it;
 *   - INFO lines for redis-cli: `name:value`, or `name:label=value,label=value` for a
 *     labelled family, the way Redis prints its keyspace lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "query.h"

struct query_metrics {
    FILE *f;
    int format;
    char family[128];       /* current family's name as given (counters end in _total) */
    query_metric_type type;
    int samples;            /* samples so far in the current family */
};

/* Ends the INFO line of a labelled family. */
static void end_family(query_metrics *m)
{
    if (m->format == QUERY_METRICS_INFO && m->samples > 0 && m->family[0])
        fputs("\r\n", m->f);
    m->samples = 0;
}

static void write_help(FILE *f, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
}

void query_metrics_family(query_metrics *m, const char *name, query_metric_type type,
                          const char *help)
{
    end_family(m);
    snprintf(m->family, sizeof m->family, "%s", name);
    m->type = type;
    if (m->format == QUERY_METRICS_INFO)
        return;
    const char *tname = type == QUERY_METRIC_COUNTER ? "counter" : "gauge";
    size_t n = strlen(name);
    int cut = m->format == QUERY_METRICS_OPENMETRICS && type == QUERY_METRIC_COUNTER &&
              n > 6 && strcmp(name + n - 6, "_total") == 0;
    int len = cut ? (int)(n - 6) : (int)n;
    fprintf(m->f, "# HELP %.*s ", len, name);
    write_help(m->f, help);
    fprintf(m->f, "\n# TYPE %.*s %s\n", len, name, tname);
}

static void write_label_value(FILE *f, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', f), fputc(*p, f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
}

void query_metrics_add(query_metrics *m, const char *label, const char *label_value,
                       double value)
{
    char num[ENGINE_DOUBLE_FMT_LEN];
    engine_double_format(value, num);
    if (!strcmp(num, "nan"))
        strcpy(num, "NaN");
    else if (!strcmp(num, "inf"))
        strcpy(num, "+Inf");
    else if (!strcmp(num, "-inf"))
        strcpy(num, "-Inf");
    if (m->format == QUERY_METRICS_INFO) {
        if (!label) {
            fprintf(m->f, "%s:%s\r\n", m->family, num);
            return;
        }
        /* INFO values are split on ',' and '=' by readers: keep those out of the label. */
        fprintf(m->f, "%s%s", m->samples ? "," : "", m->samples ? "" : m->family);
        if (!m->samples)
            fputc(':', m->f);
        for (const char *p = label_value; *p; p++)
            fputc(*p == ',' || *p == '=' || *p == '\r' || *p == '\n' ? '_' : *p, m->f);
        fprintf(m->f, "=%s", num);
        m->samples++;
        return;
    }
    fputs(m->family, m->f);
    if (label) {
        fprintf(m->f, "{%s=\"", label);
        write_label_value(m->f, label_value);
        fputs("\"}", m->f);
    }
    fprintf(m->f, " %s\n", num);
    m->samples++;
}

int query_metrics_render(query_metrics_fn fn, void *arg, int format, char **text, size_t *len)
{
    if (format != QUERY_METRICS_PROMETHEUS && format != QUERY_METRICS_OPENMETRICS &&
        format != QUERY_METRICS_INFO)
        return -EINVAL;
    query_metrics m = {.format = format};
    *text = NULL;
    *len = 0;
    m.f = open_memstream(text, len);
    if (!m.f)
        return -ENOMEM;
    if (fn)
        fn(arg, &m);
    end_family(&m);
    if (format == QUERY_METRICS_OPENMETRICS)
        fputs("# EOF\n", m.f);
    if (fclose(m.f) != 0 || !*text) {
        free(*text);
        *text = NULL;
        return -ENOMEM;
    }
    return 0;
}
