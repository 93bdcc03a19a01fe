/* test_filter.c: the FILTER expression parser and matcher, the labels derived from keys and
 * the registry, and the label index, against a real temporary store: every selection the
 * index makes must equal testing every series' labels one by one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "tap.h"
#include "../storage/st_util.h"

static int parse(qfilter *f, const char *line)
{
    char buf[512], *w[40];
    resp_arg a[40];
    size_t n = 0;
    char err[200];
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && n < 40; t = strtok(NULL, " "))
        w[n++] = t;
    for (size_t i = 0; i < n; i++)
        a[i] = (resp_arg){w[i], strlen(w[i])};
    return qfilter_parse(n, a, f, err, sizeof err);
}

static bool matches(const char *expr, const char *labels)
{
    qfilter f;
    return parse(&f, expr) == 0 && qfilter_match(&f, labels);
}

static void test_parse(void)
{
    qfilter f;
    CHECK(parse(&f, "a=b") == 0 && f.nterms == 1 && !f.terms[0].negate);
    CHECK_EQ_STR(f.terms[0].name, "a");
    CHECK_EQ_STR(f.terms[0].values[0], "b");
    CHECK(parse(&f, "a=(x,y,z) b!=c") == 0 && f.nterms == 2);
    CHECK(f.terms[0].nvalues == 3 && strcmp(f.terms[0].values[2], "z") == 0);
    CHECK(f.terms[1].negate && strcmp(f.terms[1].values[0], "c") == 0);
    CHECK(parse(&f, "a=b c=") == 0 && f.terms[1].values[0][0] == 0);
    CHECK(parse(&f, "a=b c!=(p,q)") == 0 && f.terms[1].negate && f.terms[1].nvalues == 2);
    /* At least one positive matcher; malformed expressions. */
    CHECK(parse(&f, "a!=b") == -EINVAL);
    CHECK(parse(&f, "a=") == -EINVAL);
    CHECK(parse(&f, "") == -EINVAL);
    CHECK(parse(&f, "ab") == -EINVAL);
    CHECK(parse(&f, "=b") == -EINVAL);
    CHECK(parse(&f, "!=b a=c") == -EINVAL);
    CHECK(parse(&f, "a=(b") == -EINVAL);
    CHECK(parse(&f, "a=b)") == -EINVAL);
    CHECK(parse(&f, "a=b,c") == -EINVAL);
    CHECK(parse(&f, "a=b=c") == -EINVAL);
    CHECK(parse(&f, "a(=b") == -EINVAL);
    char many[600] = "";
    for (int i = 0; i <= QF_MAX_TERMS; i++)
        strcat(many, "a=b ");
    CHECK(parse(&f, many) == -EINVAL);
    char err[200];
    resp_arg bad = {"x!", 2};
    CHECK(qfilter_parse(1, &bad, &f, err, sizeof err) == -EINVAL && strstr(err, "x!"));
}

static void test_match(void)
{
    const char *l = "mn=M1\npollutant=a21026\nregion=350100";
    CHECK(matches("mn=M1", l));
    CHECK(!matches("mn=M2", l));
    CHECK(matches("mn=(M2,M1)", l));
    CHECK(!matches("mn=(M2,M3)", l));
    CHECK(matches("mn=M1 pollutant!=a34013", l));
    CHECK(!matches("mn=M1 pollutant!=a21026", l));
    CHECK(matches("mn=M1 pollutant!=(a34013,a21002)", l));
    CHECK(!matches("mn=M1 pollutant!=(a34013,a21026)", l));
    CHECK(matches("mn=M1 outlet=", l));   /* absent */
    CHECK(!matches("mn=M1 region=", l));
    CHECK(matches("mn=M1 region!=", l));  /* present */
    CHECK(!matches("mn=M1 outlet!=", l));
    CHECK(!matches("mn=M", l));           /* whole values only */
    CHECK(!matches("m=M1", l));           /* whole names only */
    char v[32];
    CHECK(query_label_get(l, "region", v, sizeof v) && strcmp(v, "350100") == 0);
    CHECK(!query_label_get(l, "regio", v, sizeof v));
}

static engine_registry *make_registry(void)
{
    engine_registry *r;
    engine_facility fa = {.id = "F1", .name = "Plant", .uscc = "91350100M000100Y43",
                          .region = "350100", .industry = "D4411"};
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "M1"};
    o.o2_ref = 6;
    fa.lat = fa.lon = 0;
    if (engine_registry_create(&r) != 0 || engine_registry_add_facility(r, &fa, NULL, 0) ||
        engine_registry_add_outlet(r, &o, NULL, 0))
        abort();
    return r;
}

static void test_format(void)
{
    engine_registry *reg = make_registry();
    char buf[1024];
    CHECK(query_labels_format("M1:a21026:hour", reg, NULL, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "mn=M1\nfacility=F1\nuscc=91350100M000100Y43\nregion=350100\n"
                      "industry=D4411\noutlet=DA001\nmedium=gas\npollutant=a21026\n"
                      "interval=hour\ncolumn=avg");
    CHECK(query_labels_format("M9:a34013:rtd", reg, NULL, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "mn=M9\nregistered=no\npollutant=a34013\ninterval=rtd\ncolumn=rtd");
    CHECK(query_labels_format("Dongsi.no2", reg, "station=Dongsi", buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "station=Dongsi");
    CHECK(query_labels_format("M1:a21026:hour", reg, NULL, buf, 20) == -ERANGE);
    query_key k;
    CHECK(query_key_split("M1:a21026:hour", &k) && strcmp(k.code, "a21026") == 0);
    CHECK(!query_key_split("M1:a21026", &k));
    CHECK(!query_key_split("M1:a:b:c", &k));
    CHECK(!query_key_split("::hour", &k));
    engine_registry_destroy(reg);
}

/* The index against a brute-force scan, over series of several MNs and pollutants. */
static void test_index(void)
{
    const char *dir = st_tmpdir();
    storage *st;
    CHECK(storage_open(dir, NULL, &st) == 0);
    const char *mns[] = {"M1", "M2", "M3"}, *codes[] = {"a21026", "a21002", "a34013"};
    const char *ivs[] = {"hour", "day", "rtd"};
    char key[64];
    storage_sid sid;
    for (int i = 0; i < 27; i++) {
        snprintf(key, sizeof key, "%s:%s:%s", mns[i % 3], codes[i / 3 % 3], ivs[i / 9]);
        CHECK(storage_series_ensure(st, key, STORAGE_IV_AUTO, &sid) == 0);
    }
    CHECK(storage_series_ensure(st, "Dongsi.no2", STORAGE_IV_HOUR, &sid) == 0);
    CHECK(storage_series_set_labels(st, sid, "station=Dongsi\npollutant=a21002") == 0);
    engine_registry *reg = make_registry();
    query_labels *l = NULL;
    CHECK(query_labels_refresh(&l, st, reg) == 0);
    const char *filters[] = {
        "mn=M1", "pollutant=a21002", "pollutant=(a21002,a34013) interval!=rtd",
        "facility=F1 interval=day", "region=350100 pollutant!=(a21026)", "station=Dongsi",
        "pollutant=a21002 mn=", "mn=(M2,M3) pollutant=a21026 column=avg", "mn=(M4)",
        "station=(Dongsi,) pollutant=a21002", "interval=hour facility!=",
    };
    int all_ok = 1;
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        qfilter f;
        storage_sid *ids;
        size_t n, k = 0;
        CHECK(parse(&f, filters[i]) == 0);
        CHECK(query_labels_select(l, &f, &ids, &n) == 0);
        for (storage_sid s = 1; s <= storage_series_count(st); s++)
            if (qfilter_match(&f, query_labels_text(l, s))) {
                if (k >= n || ids[k] != s)
                    all_ok = 0;
                k++;
            }
        if (k != n) {
            all_ok = 0;
            printf("# %s: index %zu, scan %zu\n", filters[i], n, k);
        }
        free(ids);
    }
    CHECK(all_ok);
    /* Cache refresh: a new series and a new registry are both noticed. */
    const query_labels *before = l;
    CHECK(query_labels_refresh(&l, st, reg) == 0 && l == before);
    CHECK(storage_series_ensure(st, "M2:a05002:hour", STORAGE_IV_AUTO, &sid) == 0);
    CHECK(query_labels_refresh(&l, st, reg) == 0);
    CHECK_EQ_STR(query_labels_key(l, sid), "M2:a05002:hour");
    CHECK(query_labels_refresh(&l, st, NULL) == 0);
    CHECK_EQ_STR(query_labels_text(l, 1),
                 "mn=M1\nregistered=no\npollutant=a21026\ninterval=hour\ncolumn=avg");
    CHECK(query_labels_key(l, 0) == NULL && query_labels_key(l, 9999) == NULL);
    query_labels_free(l);
    engine_registry_destroy(reg);
    storage_close(st);
    st_rmdir(dir);
}

int main(void)
{
    test_parse();
    test_match();
    test_format();
    test_index();
    return tap_done();
}
