/* fuzz_detector_state.c: the detector's state decoder on arbitrary bytes. Whatever it
 * accepts must encode back to the same bytes and go on judging periods without trouble. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_event(void *ud, const engine_episode_event *ev)
{
    (void)ud;
    if (ev->ep.id == 0 || ev->ep.count == 0 || ev->ep.start > ev->ep.end)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    engine_detector *d = NULL;
    int rc = engine_detector_decode(data, size, &d);
    if (rc == -EBADMSG)
        return 0;
    if (rc != 0)
        abort();
    uint8_t *out;
    size_t len;
    if (engine_detector_encode(d, &out, &len) != 0 || len != size || memcmp(out, data, size))
        abort();
    free(out);
    const engine_episode *e;
    size_t n = engine_detector_episodes(d, &e);
    int64_t t = n ? e[n - 1].end : 0;
    for (int i = -3; i < 4; i++) {
        engine_period p = {t + i * 3600, i % 2 ? 150 : 50, 100, 'N', true};
        if (engine_detector_feed(d, &p, on_event, NULL) < 0)
            abort();
    }
    engine_detector_destroy(d);
    return 0;
}
