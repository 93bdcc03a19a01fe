/* mb.h: the Modbus poller, the one public header of collectors/modbus/ (prefix `mb_`, since
 * libmodbus owns `modbus_`).
 *
 * Analyzers and data loggers on site answer Modbus: over TCP (often many unit ids behind one
 * gateway) or over a serial line (RTU). plume polls them on a schedule and turns what the
 * registers hold into real-time points `MN:code:rtd`, rolled up to minutes as a DAQ would.
 * Three layers, one file each:
 * - mb_codec.c: what a register means (type, byte order, scale) and how a template's
 *   registers are read in as few requests as possible (the read plan). Pure functions.
 * - mb_config.c: the configuration file (JSON): templates, gateways and their devices.
 * - mb_link.c: one thread per endpoint owning its libmodbus context (blocking, not
 *   thread-safe), polling its devices spread over the interval; mb_poller.c takes the
 *   readings on the loop thread into the engine and keeps every device's state as data.
 *
 * Conventions as in storage.h: 0 or a negative code, results through out-parameters; nothing
 * here logs except mb_poller.c, which reports state changes through engine_log. The file
 * format is documented in collectors/modbus/README.md.
 */
#ifndef PLUME_MB_H
#define PLUME_MB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Registers and their meaning (mb_codec.c) ---------------------------------------- */

enum mb_table { MB_HOLDING = 0, MB_INPUT = 1 };
enum mb_type { MB_INT16 = 0, MB_UINT16, MB_INT32, MB_UINT32, MB_FLOAT32, MB_FLOAT64, MB_NTYPES };
/* Byte orders of a multi-register value whose bytes are A B C D (A most significant):
 * ABCD big-endian; CDAB words swapped; BADC bytes swapped within each word; DCBA
 * little-endian. For 64-bit values the same rule extends to four words; for 16-bit values
 * only the byte swap (BADC, DCBA) matters. */
enum mb_order { MB_ABCD = 0, MB_CDAB, MB_BADC, MB_DCBA, MB_NORDERS };

/* Most registers one read request may ask for (the protocol's limit for function 3 and 4). */
#define MB_MAX_READ 125

/* One value of a template: where it lives and what it means. */
typedef struct mb_register {
    char code[ENGINE_POLLUTANT_SIZE]; /* HJ 212 factor code, e.g. a21026 */
    char unit[ENGINE_CODE_SIZE];      /* e.g. mg/m3; documentation only */
    uint8_t table;                    /* enum mb_table */
    uint8_t type;                     /* enum mb_type */
    uint8_t order;                    /* enum mb_order */
    uint16_t address;                 /* 0-based register address */
    double scale, offset;             /* value = raw * scale + offset */
} mb_register;

/* Names as written in the configuration: "holding", "input"; "int16" ... "float64";
 * "ABCD" ... "DCBA". parse returns the enum value or -1. */
const char *mb_table_name(int table);
const char *mb_type_name(int type);
const char *mb_order_name(int order);
int mb_table_parse(const char *s);
int mb_type_parse(const char *s);
int mb_order_parse(const char *s);

/* Registers a value of this type occupies: 1, 2 or 4 (0 for an unknown type). */
int mb_type_words(int type);

/* Decodes the raw value of type from words (mb_type_words(type) registers as read, in the
 * given byte order) into *out, before scale and offset. Returns 0, or -EINVAL for an unknown
 * type or order, or -ERANGE for a float that is NaN or infinite (a sensor fault, not data). */
int mb_decode_raw(const uint16_t *words, int type, int order, double *out);

/* Encodes v as type in the byte order into words (the inverse of mb_decode_raw; integers
 * are rounded and clamped to the type's range). For simulators and tests. */
void mb_encode_raw(double v, int type, int order, uint16_t *words);

/* The register's engineering value from the words of a read starting at block_start:
 * raw * scale + offset. 0, -ERANGE (the register is not inside the block, or the float is
 * not finite), -EINVAL. */
int mb_register_value(const mb_register *r, const uint16_t *block, uint16_t block_start,
                      uint16_t block_count, double *out);

/* One read request of a plan: count registers of table from start; it carries the registers
 * [first, first + n) of the sorted template. */
typedef struct mb_block {
    uint8_t table;
    uint16_t start, count;
    uint16_t first, n;
} mb_block;

/* Sorts regs by (table, address) in place, and plans the reads: registers of one table
 * whose spans overlap, touch, or are at most max_gap registers apart share one request of at
 * most max_count (<= MB_MAX_READ) registers. Writes at most cap blocks and sets *nblocks.
 * Returns 0, -EINVAL (a register that does not fit in 65,536 addresses or in max_count,
 * an unknown type), -ERANGE (more than cap blocks needed). */
int mb_plan(mb_register *regs, size_t n, unsigned max_count, unsigned max_gap, mb_block *out,
            size_t cap, size_t *nblocks);

/* ---- The configuration (mb_config.c) ---------------------------------------------- */

typedef struct mb_template {
    char name[64];
    mb_register *regs;   /* sorted by (table, address); owned by the config */
    size_t nregs;
    mb_block *blocks;    /* the read plan; owned by the config */
    size_t nblocks;
} mb_template;

typedef struct mb_device {
    char mn[ENGINE_ID_SIZE];
    int unit_id;                 /* 0-255 (1-247 on a serial line) */
    const mb_template *tpl;      /* borrowed from the config */
} mb_device;

enum mb_link_kind { MB_TCP = 0, MB_RTU = 1 };

/* An endpoint: one TCP gateway (host:port) or one serial line, and the devices behind it. */
typedef struct mb_endpoint {
    char name[64];
    int kind;                    /* enum mb_link_kind */
    char host[256];              /* TCP */
    int port;
    char serial[256];            /* RTU: the device path */
    int baud;
    char parity;                 /* 'N', 'E', 'O' */
    int data_bits, stop_bits;
    int interval_ms;             /* each device is read once per interval */
    int response_timeout_ms, byte_timeout_ms, connect_timeout_ms;
    bool close_after_cycle;      /* single-connection gateways: disconnect after each cycle */
    int fail_threshold;          /* failures in a row that mark a device (or link) down */
    int backoff_max_ms;          /* a down device is retried at most this far apart */
    mb_device *devices;          /* owned by the config */
    size_t ndevices;
} mb_endpoint;

typedef struct mb_config {
    mb_template *templates;
    size_t ntemplates;
    mb_endpoint *endpoints;
    size_t nendpoints;
    size_t ndevices;             /* over all endpoints */
} mb_config;

/* Parses the JSON configuration of len bytes (format in README.md). source names the text
 * in messages. On error err holds "source: $.gateways[2].devices[5].unit: ..." and the
 * result is -EINVAL (or -ENOMEM); nothing is returned. On success *out is owned by the
 * caller (mb_config_free). */
int mb_config_parse(const char *text, size_t len, const char *source, mb_config **out,
                    char *err, size_t errlen);
int mb_config_load_file(const char *path, mb_config **out, char *err, size_t errlen);
void mb_config_free(mb_config *c); /* NULL is a no-op */

/* ---- The poller (mb_link.c, mb_poller.c) ------------------------------------------ */

typedef struct mb_poller mb_poller;

/* A device's state as kept in the "sources" table (key "modbus:MN") and in memory. */
enum mb_state { MB_STATE_UNKNOWN = 0, MB_STATE_UP, MB_STATE_DOWN, MB_STATE_MISCONFIGURED };
const char *mb_state_name(int state);

typedef struct mb_poller_stats {
    uint64_t endpoints, devices;
    uint64_t polls;              /* device reads attempted */
    uint64_t polls_ok;           /* every block of the device read */
    uint64_t requests, request_errors, timeouts, exceptions, config_errors;
    uint64_t connects, connect_failures, disconnects;
    uint64_t values, values_bad; /* decoded; not finite or not decodable */
    uint64_t uploads, ingest_errors;
    uint64_t skipped;            /* device reads skipped: circuit open or misconfigured */
    uint64_t late_cycles;        /* reads started more than one interval after they were due */
    uint64_t devices_up, devices_down, devices_misconfigured;
    double lateness_p50_ms, lateness_p99_ms, lateness_max_ms; /* start vs due, up devices */
} mb_poller_stats;

typedef struct mb_poller_options {
    const mb_config *config;     /* borrowed until mb_poller_close returns (also when a
                                  * reload replaced it: links may still use it) */
    storage *st;                 /* borrowed: device states go to its "sources" table */
    bool rollup_minutes;         /* roll readings up to MN:code:min (default on: true) */
    uint64_t seed;               /* jitter; 0: from the clock */
} mb_poller_options;

/* Reserves a low file descriptor for every endpoint (libmodbus 3.1.6 waits with select(),
 * which corrupts memory for fds >= 1024: see README.md), then starts one thread per
 * endpoint. Call it before opening the many other sockets of the process. Runs on the loop
 * thread; readings are ingested there. Returns 0, -EMFILE (no fd below 1024 left), -ENOMEM. */
int mb_poller_start(struct uv_loop_s *loop, engine *e, const mb_poller_options *opts,
                    mb_poller **out);
void mb_poller_get_stats(mb_poller *p, mb_poller_stats *out);

/* What a reload changed. An endpoint is known by its name: kept (nothing about it, its
 * devices or their templates changed), changed (restarted with its new settings and read
 * plans), removed, added. Devices by MN. */
typedef struct mb_reload_report {
    size_t endpoints_kept, endpoints_changed, endpoints_removed, endpoints_added;
    size_t devices, devices_added, devices_removed;
} mb_reload_report;

/* Applies a new configuration while polling goes on; the poller owns cfg from the call on,
 * whatever it returns. Kept endpoints go on untouched (thread, connection, breakers);
 * changed and removed ones are told to stop after their current request; changed and added
 * ones start once every stopped one has (a little later, on the loop: one thread owns an
 * endpoint at a time). Devices keep their states and counts by MN; the records of devices
 * no longer configured are deleted. A new endpoint needs a free reserved fd below 1024
 * (32 spares are kept at start; see README.md); without one it is logged and not
 * started. Returns 0 with *rep filled, -EBUSY while the previous reload is still completing
 * (err says so), -ENOMEM. Loop thread. */
int mb_poller_reload(mb_poller *p, mb_config *cfg, mb_reload_report *rep, char *err,
                     size_t errlen);
/* Stops the threads (each finishes its current request, bounded by its timeouts), ingests
 * what they read, writes the final states, and closes the loop handles; the memory goes
 * when the loop runs their close callbacks. */
void mb_poller_close(mb_poller *p);

/* The kv table the device states live in (beside HTTP sources, "http:..."): key
 * "modbus:MN", value a flat JSON object (README.md): kind, mn, gateway, unit, state, polls,
 * failures, consecutive_failures, last_error, and since, last_success, last_error_at as
 * ISO 8601 UTC when known. */
#define MB_STATE_TABLE "sources"

#ifdef __cplusplus
}
#endif
#endif
