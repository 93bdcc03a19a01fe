/* fuzz_sim_modbus.c: the simulator's Modbus TCP frame handling on arbitrary bytes: frames
 * taken one after another as a connection would, every reply a well-formed MBAP frame
 * answering its request's transaction and unit. Must never crash or read out of bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_modbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sim_fleet *fleet;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fleet) {
        sim_options o;
        sim_options_defaults(&o);
        o.nfacilities = 3;
        if (sim_fleet_create(&o, &fleet) != 0)
            abort();
    }
    sim_modbus_options mo;
    sim_modbus_options_defaults(&mo);
    mo.units = 2;
    mo.dead_gateway = 1;
    mo.misconfigured = 0;
    sim_modbus *s;
    if (sim_modbus_create(fleet, &mo, &s) != 0)
        abort();
    uint32_t g = size ? data[0] % (sim_modbus_gateways(s) + 1) : 0; /* one past: -EINVAL */
    size_t off = size ? 1 : 0;
    for (;;) {
        uint8_t out[SIM_MODBUS_FRAME_MAX];
        size_t olen = 0;
        int used = sim_modbus_frame(s, g, data + off, size - off, 1795353600, out, &olen);
        if (used <= 0)
            break;
        if ((size_t)used > size - off || olen > SIM_MODBUS_FRAME_MAX)
            abort();
        if (olen) {
            const uint8_t *req = data + off;
            size_t flen = (size_t)(out[4] << 8 | out[5]);
            if (olen < 9 || flen + 6 != olen || memcmp(out, req, 4) != 0 || out[6] != req[6])
                abort();
        }
        off += (size_t)used;
    }
    sim_modbus_destroy(s);
    return 0;
}
