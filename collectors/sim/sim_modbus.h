/* sim_modbus.h: the simulated fleet as Modbus TCP servers (modbus_server.c), part of
 * collectors/sim/ (prefix sim_modbus_).
 *
 * Each outlet of the fleet becomes a Modbus device (an analyzer's register map) behind a
 * gateway: gateway g listens on its own port and answers unit ids 1..units for outlets
 * g * units ... g * units + units - 1. The registers hold the outlet's real-time values
 * (the same minute values its HJ 212 2011 records carry) as float32 in the gateway's byte
 * order, in both the holding and the input table:
 *
 *   gas outlet:   0-1 SO2 a21026, 2-3 NOx a21002, 4-5 PM a34013, 6-7 O2 a19001,
 *                 8-9 flow a00000, 10-11 temperature a01012
 *   water outlet: 0-1 COD w01018, 2-3 NH3-N w21003, 4-5 pH w01001, 6-7 flow w00000
 *
 * Faults on demand: a dead gateway accepts connections and never answers; a misconfigured
 * device answers every read with exception 2 (illegal data address); a unit id with no
 * device behind it gets exception 11 (gateway target failed to respond).
 * Everything runs on the caller's libuv loop. */
#ifndef PLUME_SIM_MODBUS_H
#define PLUME_SIM_MODBUS_H

#include <stdint.h>
#include <stdio.h>

#include "sim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;
typedef struct sim_modbus sim_modbus;

typedef struct sim_modbus_options {
    const char *host;          /* IPv4 or IPv6 literal to listen on */
    int port;                  /* gateway g listens on port + g; 0: each on a free port */
    uint32_t devices;          /* outlets served, from the first; 0: all */
    uint32_t units;            /* devices per gateway, 1-247 (default 50) */
    int order;                 /* mb byte order of every gateway (0 ABCD .. 3 DCBA); -1:
                                  gateway g uses order g % 4 (default) */
    int64_t dead_gateway;      /* this gateway never answers; -1: none */
    int64_t misconfigured;     /* this device (outlet index) refuses every read; -1: none */
} sim_modbus_options;

void sim_modbus_options_defaults(sim_modbus_options *o);

typedef struct sim_modbus_stats {
    uint64_t connections, requests, answered, exceptions, ignored, bad_frames;
} sim_modbus_stats;

/* The longest MBAP frame: 7 header bytes and a PDU of at most 253. */
#define SIM_MODBUS_FRAME_MAX 260

/* The gateways without sockets (for tests and fuzzing): free with sim_modbus_destroy. */
int sim_modbus_create(const sim_fleet *f, const sim_modbus_options *o, sim_modbus **out);
void sim_modbus_destroy(sim_modbus *s);

/* Answers the request frame at the start of in[0..len) as gateway would at time t: returns
 * the frame's length with its reply in out (SIM_MODBUS_FRAME_MAX bytes; *out_len 0 when there
 * is none: a dead gateway), 0 when the frame is not complete yet, -EBADMSG when the bytes are
 * not an MBAP frame (the connection is closed), -EINVAL for an unknown gateway. */
int sim_modbus_frame(sim_modbus *s, uint32_t gateway, const uint8_t *in, size_t len, int64_t t,
                     uint8_t *out, size_t *out_len);

/* Listens on every gateway's port. The fleet is borrowed until close. Returns 0, -EINVAL,
 * or the listen error. */
int sim_modbus_start(struct uv_loop_s *loop, const sim_fleet *f, const sim_modbus_options *o,
                     sim_modbus **out);
uint32_t sim_modbus_gateways(const sim_modbus *s);
int sim_modbus_port(const sim_modbus *s, uint32_t gateway);
void sim_modbus_get_stats(const sim_modbus *s, sim_modbus_stats *out);

/* Writes the configuration plume serve reads (collectors/modbus/README.md) for every device
 * served: one gateway per port, one template per medium and byte order. Returns 0 or -EIO. */
int sim_modbus_config_write(const sim_modbus *s, FILE *out, int interval_ms);

/* The register words of device (outlet) i at time t: the words a read of count registers
 * from start would return. For tests. Returns 0, or -ERANGE outside the map. */
int sim_modbus_registers(const sim_modbus *s, uint32_t outlet, int64_t t, uint16_t start,
                         uint16_t count, uint16_t *words);

/* `plume sim --modbus`: serves on a loop of its own in the calling thread until SIGINT,
 * SIGTERM or for_s seconds, after writing the configuration to config_out (whole: written
 * aside, then renamed) when given. */
typedef struct sim_modbus_run_options {
    const char *listen;        /* HOST:PORT, [v6]:PORT */
    const char *config_out;    /* may be NULL */
    int interval_ms;           /* written into the configuration (10000) */
    double for_s;              /* 0: until a signal */
    sim_modbus_options o;      /* host and port come from listen */
} sim_modbus_run_options;

void sim_modbus_run_options_defaults(sim_modbus_run_options *r);
/* Returns 0 with *stats filled, -EINVAL (bad address), or the listen or write error. */
int sim_modbus_run(const sim_fleet *f, const sim_modbus_run_options *r, sim_modbus_stats *stats);

/* Stops listening and closes every connection; memory goes when the loop runs the close
 * callbacks. */
void sim_modbus_close(sim_modbus *s);

#ifdef __cplusplus
}
#endif
#endif
