/* fuzz_mb_config.c: the Modbus configuration parser on arbitrary bytes, and, for every
 * configuration it accepts, the read plan's invariants and register decoding of arbitrary
 * words in every type and order. Must never crash or leak. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mb_config *c = NULL;
    char err[256];
    if (mb_config_parse((const char *)data, size, "fuzz", &c, err, sizeof err) == 0) {
        for (size_t i = 0; i < c->ntemplates; i++) {
            const mb_template *t = &c->templates[i];
            for (size_t b = 0; b < t->nblocks; b++) {
                const mb_block *bl = &t->blocks[b];
                if (bl->count == 0 || bl->count > MB_MAX_READ || bl->first + bl->n > t->nregs)
                    abort();
                uint16_t words[MB_MAX_READ];
                for (unsigned w = 0; w < bl->count; w++)
                    words[w] = (uint16_t)(w * 40503u + size);
                for (unsigned r = bl->first; r < (unsigned)bl->first + bl->n; r++) {
                    double v;
                    int rc = mb_register_value(&t->regs[r], words, bl->start, bl->count, &v);
                    if (rc == -EINVAL) /* every planned register lies inside its block */
                        abort();
                }
            }
        }
        mb_config_free(c);
    }
    /* The raw decoder on the input's first bytes, every type and order. */
    uint16_t w[4] = {0};
    memcpy(w, data, size < sizeof w ? size : sizeof w);
    for (int type = 0; type < MB_NTYPES; type++)
        for (int order = 0; order < MB_NORDERS; order++) {
            double v;
            uint16_t back[4] = {0};
            if (mb_decode_raw(w, type, order, &v) == 0) {
                mb_encode_raw(v, type, order, back);
                if (memcmp(back, w, (size_t)mb_type_words(type) * 2) != 0)
                    abort(); /* every finite value round-trips exactly */
            }
        }
    return 0;
}
