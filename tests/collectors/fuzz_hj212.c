/* fuzz_hj212.c: the framer and the parser on arbitrary bytes. The input is fed to a framer
 * in chunks whose sizes come from the input itself, every frame is parsed, replies are
 * formatted from what parsed, and the whole input is also parsed as one segment. Nothing
 * may crash, read out of bounds, or leave the framer holding more than its cap, and the
 * frames must not depend on how the stream was cut into reads.
 * Every parsed packet's factors are also formatted as an upload and parsed again: the
 * values, columns and flags must come back bit for bit (abort otherwise). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hj212_packet packet, again;
static char out[65536];

/* The upload of p's factors parses back to the same factors. */
static void check_round_trip(const hj212_packet *p)
{
    for (unsigned i = 0; i < p->nfactors; i++)
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->factors[i].code, p->factors[j].code) == 0)
                return; /* "01" and "a34013" in one packet: both are a34013 */
    hj212_upload u = {{"20260801090000000", 31, 2061, "123456", "010000A8900016F000169DC0",
                       5, 0, 0},
                      HJ212_V2017, 1785546000, 8 * 3600, p->factors, p->nfactors};
    size_t n;
    if (hj212_format_upload(&u, out, sizeof out, &n) != 0)
        return;
    if (hj212_parse(out + 6, n - 12, NULL, &again, NULL) != 0)
        abort();
    for (unsigned i = 0; i < p->nfactors; i++) {
        const hj212_factor *a = &p->factors[i];
        if (!a->mask && !(a->has & HJ212_HAS_FLAG))
            continue;
        const hj212_factor *b = hj212_packet_factor(&again, a->code);
        if (!b || a->mask != b->mask || (a->has & HJ212_HAS_FLAG) != (b->has & HJ212_HAS_FLAG) ||
            ((a->has & HJ212_HAS_FLAG) && a->flag != b->flag))
            abort();
        for (int c = 0; c < STORAGE_NCOLS; c++)
            if ((a->mask & (1u << c)) && memcmp(&a->v[c], &b->v[c], sizeof(double)) != 0)
                abort();
    }
}

/* What a stream framed into: a running digest of every frame, to compare two feedings. */
typedef struct trace {
    uint64_t digest;
    unsigned frames;
} trace;

static void trace_add(trace *t, const hj212_frame *fr)
{
    uint64_t h = t->digest ^ (fr->seg_len * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)fr->crc_kind << 40) ^ ((uint64_t)fr->flags << 48);
    for (size_t i = 0; i < fr->seg_len; i++)
        h = (h ^ (uint8_t)fr->seg[i]) * 0x100000001B3ull;
    t->digest = h;
    t->frames++;
}

static void on_whole(void *ctx, const hj212_frame *fr)
{
    trace_add(ctx, fr);
}

static void on_frame(void *ctx, const hj212_frame *fr)
{
    trace_add(ctx, fr);
    size_t n;
    if (fr->raw + 6 != fr->seg || fr->raw_len < fr->seg_len + 6)
        abort();
    if (hj212_parse(fr->seg, fr->seg_len, NULL, &packet, NULL) == 0) {
        hj212_format_data_ack(&packet, out, sizeof out, &n);
        hj212_format_qn_rtn(&packet, 1, out, sizeof out, &n);
        check_round_trip(&packet);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Some inputs run against a small cap, so oversize paths get exercised too. */
    hj212_framer_options o = {size % 7 == 0 ? 256 : 0};
    hj212_framer *f;
    trace whole = {0, 0}, stepped = {0, 0};
    if (hj212_framer_create(&o, &f) != 0)
        return 0;
    hj212_framer_push(f, data, size, on_whole, &whole);
    hj212_framer_destroy(f);
    if (hj212_framer_create(&o, &f) != 0)
        return 0;
    size_t i = 0, step = 1;
    while (i < size) {
        size_t n = step < size - i ? step : size - i;
        hj212_framer_push(f, data + i, n, on_frame, &stepped);
        if (hj212_framer_pending(f) > (o.max_segment_len ? o.max_segment_len : 8192) + 64)
            abort();
        i += n;
        step = step * 3 % 257 + 1;
    }
    /* However the bytes are cut, the same frames come out. */
    if (whole.frames != stepped.frames || whole.digest != stepped.digest)
        abort();
    hj212_frame fr;
    while (hj212_framer_flush(f, &fr) == 1)
        on_frame(&stepped, &fr);
    hj212_framer_destroy(f);

    hj212_error err;
    if (hj212_parse((const char *)data, size, NULL, &packet, &err) == 0)
        check_round_trip(&packet);
    hj212_crc_classify((const char *)data, size, (const char *)data, size < 4 ? size : 4);
    return 0;
}
