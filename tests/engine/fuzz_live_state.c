/* fuzz_live_state.c: a device's stored live state (engine/live_state.c) decoded from
 * arbitrary bytes. Whatever the decoder accepts must encode to a record that decodes to the
 * same bytes again, and go on judging hours and being saved without trouble. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static engine_registry *reg;
static findings *fnd;

static void setup(void)
{
    char why[128];
    engine_registry_create(&reg);
    engine_facility f = {.id = "F1", .name = "Plant", .lat = NAN, .lon = NAN};
    engine_registry_add_facility(reg, &f, why, sizeof why);
    engine_outlet o = {.facility_id = "F1", .code = "DA001", .medium = ENGINE_MEDIUM_GAS,
                       .mn = "M1", .o2_ref = 6};
    engine_registry_add_outlet(reg, &o, why, sizeof why);
    engine_limit l = {.facility_id = "F1", .outlet = "DA001", .pollutant = "a21026",
                      .value = 100, .unit = "mg/m3", .period = ENGINE_PERIOD_HOUR,
                      .basis = ENGINE_BASIS_MEASURED, .valid_from = INT64_MIN,
                      .valid_to = INT64_MAX};
    engine_registry_add_limit(reg, &l, why, sizeof why);
    findings_create(NULL, &fnd);
}

/* Three reported hours around the device's newest data, judged with no alerts sent. */
static void judge_some(lout *o)
{
    if (!o->fw)
        return;
    storage_batch *b = storage_batch_create();
    judge_ctx c = {.reg = reg, .batch = b};
    const engine_outlet *eo = engine_registry_outlet_by_mn(reg, "M1", 2);
    int64_t base = o->newest_end == INT64_MIN ? 0 : o->newest_end / 3600 * 3600;
    for (int i = -1; i < 2; i++) {
        engine_value v[2] = {{.code = "a21026"}, {.code = "a19001"}};
        for (int k = 0; k < 2; k++) {
            v[k].pt.mask = 1u << STORAGE_COL_AVG;
            v[k].pt.flag = i ? 'N' : 'C';
            v[k].pt.v[STORAGE_COL_AVG] = k ? 8.5 + i : 0.0;
        }
        engine_upload u = {.mn = "M1", .interval = STORAGE_IV_HOUR, .ts = base + 3600 * i,
                           .values = v, .nvalues = 2};
        findings_hour(fnd, &c, o->fw, eo, &u);
    }
    storage_batch_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reg)
        setup();
    lout o, back;
    memset(&o, 0, sizeof o);
    int rc = live_state_decode(fnd, data, size, &o);
    if (rc == -EBADMSG || rc == -ENOMEM) {
        if (o.fw)
            abort(); /* a refused record holds nothing */
        return 0;
    }
    if (rc != 0)
        abort();
    uint8_t *a, *b;
    size_t alen, blen;
    if (live_state_encode(&o, &a, &alen) != 0)
        abort();
    memset(&back, 0, sizeof back);
    if (live_state_decode(fnd, a, alen, &back) != 0 || live_state_encode(&back, &b, &blen) != 0 ||
        blen != alen || memcmp(a, b, alen) != 0 || strcmp(back.mn, o.mn) != 0)
        abort();
    free(a);
    free(b);
    judge_some(&o);
    if (live_state_encode(&o, &a, &alen) != 0)
        abort();
    free(a);
    fwatch_destroy(o.fw);
    fwatch_destroy(back.fw);
    return 0;
}
