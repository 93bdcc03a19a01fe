/* fuzz_hj212.c: the framer and the parser on arbitrary bytes. The input is fed to a framer
 * in chunks whose sizes come from the input itself, every frame is parsed, replies are
 * formatted from what parsed, and the whole input is also parsed as one segment. Nothing
 * may crash, read out of bounds, or leave the framer holding more than its cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hj212.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hj212_packet packet;

static void on_frame(void *ctx, const hj212_frame *fr)
{
    (void)ctx;
    char out[2048];
    size_t n;
    if (hj212_parse(fr->seg, fr->seg_len, NULL, &packet, NULL) == 0) {
        hj212_format_data_ack(&packet, out, sizeof out, &n);
        hj212_format_qn_rtn(&packet, 1, out, sizeof out, &n);
        for (unsigned i = 0; i < packet.nfactors; i++)
            hj212_packet_factor(&packet, packet.factors[i].code);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Some inputs run against a small cap, so oversize paths get exercised too. */
    hj212_framer_options o = {size % 7 == 0 ? 256 : 0};
    hj212_framer *f;
    if (hj212_framer_create(&o, &f) != 0)
        return 0;
    size_t i = 0, step = 1;
    while (i < size) {
        size_t n = step < size - i ? step : size - i;
        hj212_framer_push(f, data + i, n, on_frame, NULL);
        if (hj212_framer_pending(f) > (o.max_segment_len ? o.max_segment_len : 8192) + 64)
            abort();
        i += n;
        step = step * 3 % 257 + 1;
    }
    hj212_framer_destroy(f);

    hj212_error err;
    hj212_parse((const char *)data, size, NULL, &packet, &err);
    hj212_crc_classify((const char *)data, size, (const char *)data, size < 4 ? size : 4);
    return 0;
}
