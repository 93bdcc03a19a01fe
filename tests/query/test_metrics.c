/* test_metrics.c: the metrics text. One provider, rendered in the three forms, must give
 * exactly the text scrapers and INFO readers expect: HELP/TYPE lines, counters named with
 * _total in Prometheus text and without it on OpenMetrics' family lines, label values
 * escaped, special values spelled as the formats spell them, INFO's one line per labelled
 * family with the separators of its values kept out of the label. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "tap.h"

static void provider(void *arg, query_metrics *m)
{
    (void)arg;
    query_metrics_family(m, "plume_x_total", QUERY_METRIC_COUNTER, "Things\\done.\nTwice.");
    query_metrics_add(m, "result", "ok", 3);
    query_metrics_add(m, "result", "a\"b\\c,d=e", 0.5);
    query_metrics_family(m, "plume_level", QUERY_METRIC_GAUGE, "A level.");
    query_metrics_add(m, NULL, NULL, NAN);
    query_metrics_family(m, "plume_big", QUERY_METRIC_GAUGE, "Big.");
    query_metrics_add(m, NULL, NULL, 12345678901.0);
    query_metrics_family(m, "plume_inf", QUERY_METRIC_GAUGE, "Inf.");
    query_metrics_add(m, NULL, NULL, -INFINITY);
}

static char *render(int format)
{
    char *t;
    size_t n;
    CHECK_EQ_INT(query_metrics_render(provider, NULL, format, &t, &n), 0);
    CHECK_EQ_INT((long)strlen(t), (long)n);
    return t;
}

int main(void)
{
    char *p = render(QUERY_METRICS_PROMETHEUS);
    CHECK_EQ_STR(p, "# HELP plume_x_total Things\\\\done.\\nTwice.\n"
                    "# TYPE plume_x_total counter\n"
                    "plume_x_total{result=\"ok\"} 3\n"
                    "plume_x_total{result=\"a\\\"b\\\\c,d=e\"} 0.5\n"
                    "# HELP plume_level A level.\n# TYPE plume_level gauge\nplume_level NaN\n"
                    "# HELP plume_big Big.\n# TYPE plume_big gauge\nplume_big 12345678901\n"
                    "# HELP plume_inf Inf.\n# TYPE plume_inf gauge\nplume_inf -Inf\n");
    free(p);

    p = render(QUERY_METRICS_OPENMETRICS);
    CHECK(strstr(p, "# HELP plume_x Things") != NULL);
    CHECK(strstr(p, "# TYPE plume_x counter\nplume_x_total{result=\"ok\"} 3\n") != NULL);
    CHECK(strstr(p, "# TYPE plume_level gauge\n") != NULL);
    size_t n = strlen(p);
    CHECK(n > 6 && strcmp(p + n - 6, "# EOF\n") == 0);
    free(p);

    p = render(QUERY_METRICS_INFO);
    CHECK_EQ_STR(p, "plume_x_total:ok=3,a\"b\\c_d_e=0.5\r\n"
                    "plume_level:NaN\r\nplume_big:12345678901\r\nplume_inf:-Inf\r\n");
    free(p);

    char *t = (char *)1;
    size_t len = 1;
    CHECK_EQ_INT(query_metrics_render(provider, NULL, 7, &t, &len), -22);
    CHECK_EQ_INT(query_metrics_render(NULL, NULL, QUERY_METRICS_OPENMETRICS, &t, &len), 0);
    CHECK_EQ_STR(t, "# EOF\n");
    free(t);
    return tap_done();
}
