/* sim.h: the fleet simulator, the one public header of collectors/sim/.
 *
 * The simulator stands in for a country's worth of data acquisition units (DAQ) in tests,
 * benchmarks and demos. Everything it does follows from a seed: the fleet (facilities, their
 * outlets and DAQ units, limits), every minute value of every factor, the events injected
 * into them (start-ups and shut-downs, calibration, faults, maintenance, exceedance
 * episodes, flat lines, gaps in sending), and so every packet it sends. The same seed gives
 * byte-identical packets and ground truth on any machine: randomness comes from a
 * counter-based generator (splitmix64 of a key), and values are computed in scaled integers,
 * never with libm, so no decimal can depend on the C library or the FPU.
 *
 * Three layers, three files: fleet.c builds the fleet and writes its registry; signal.c gives
 * the values (minute by minute, rolled up into the records DAQs upload) and writes the ground
 * truth; wire.c speaks HJ 212 over TCP on a libuv loop. record.c formats records as packets.
 *
 * Conventions: functions return 0 or a negative errno-style code; results through
 * out-parameters; nothing here logs. A fleet is read-only once created and may be shared.
 */
#ifndef PLUME_SIM_H
#define PLUME_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Options --------------------------------------------------------------------------- */

typedef struct sim_options {
    uint64_t seed;
    uint32_t nfacilities;
    int64_t start;          /* UTC seconds; rounded down to a local (UTC+8) midnight */
    uint32_t days;          /* simulated days from start */
    uint32_t hours;         /* when not 0 and shorter: the run ends after this many hours
                               (the fleet and its events still span the days) */
    uint32_t minute_interval; /* minutes per 2051 record (1-60, dividing 60); 0: no 2051 */
    uint32_t rtd_interval_s;  /* seconds between 2011 real-time uploads (dividing 60, or a
                                 multiple of 60 dividing 3600); 0: none */
    /* Shares of DAQ units (0..1) with these habits. */
    double share_2005;      /* the 2005 format: 14-char MN, 2005 factor codes */
    double share_modbus;    /* CRC-16/MODBUS instead of the standard CRC */
    double share_lower;     /* the standard CRC in lower-case hex */
    double share_noack;     /* 2017 units that send Flag=4 (no answer wanted) */
    /* Events per outlet and simulated day (expected counts; placed without overlap). */
    double rate_off;        /* shut-down periods: flag F, start-up and shut-down ramps */
    double rate_fault;      /* instrument faults: flag D */
    double rate_maint;      /* maintenance: flag M */
    double rate_exceed;     /* exceedance episodes */
    double rate_flat;       /* flat lines (>= 24 h of identical values while running) */
    double rate_gap;        /* hours the unit does not send (connection down) */
    double share_gap_exceed; /* share of exceedance episodes a further gap hides in part
                                (the only events that overlap another); 0: none */
    bool calibration;       /* nightly calibration of gas analyzers: flag C */
} sim_options;

/* Fills the defaults: seed 1, 10 facilities, 2026-11-01 local, 1 day, 2051 every 10 min, no
 * 2011, shares 5% / 5% / 1% / 5%, modest event rates, calibration on. */
void sim_options_defaults(sim_options *o);

/* ---- The fleet (fleet.c) --------------------------------------------------------------- */

enum sim_medium { SIM_GAS = 0, SIM_WATER = 1 };

enum sim_industry {
    SIM_IND_COAL_POWER = 0, /* ultra-low emission coal power, reference O2 6 */
    SIM_IND_COAL_BOILER,    /* GB 13223 coal boiler, 6 */
    SIM_IND_GAS_TURBINE,    /* 15 */
    SIM_IND_WASTE_INCIN,    /* GB 18485 waste incineration, 11, hourly and daily limits */
    SIM_IND_CEMENT,         /* cement kiln, 10 */
    SIM_IND_SINTER,         /* steel sintering, 16 */
    SIM_IND_CHEMICAL,       /* chemical plant: oil/gas boiler (3.5) and a wastewater outfall */
    SIM_IND_SEWAGE,         /* sewage plant, GB 18918 1A, water only */
    SIM_NINDUSTRIES
};

#define SIM_MAXF 6 /* factors per outlet */

/* Factor slots. Gas outlets use the SIM_F_* gas slots, water outlets the water ones. */
enum { SIM_F_SO2 = 0, SIM_F_NOX, SIM_F_PM, SIM_F_O2, SIM_F_GFLOW, SIM_F_TEMP, SIM_NGAS };
enum { SIM_F_COD = 0, SIM_F_NH3N, SIM_F_PH, SIM_F_WFLOW, SIM_NWATER };

/* CRC habits. */
enum { SIM_CRC_STD = 0, SIM_CRC_MODBUS, SIM_CRC_LOWER };

/* HJ 212 version of a unit. */
enum { SIM_V2017 = 0, SIM_V2005 = 1 };

typedef struct sim_facility {
    char id[16];            /* F000001 ... */
    char name[96];          /* UTF-8 */
    char uscc[19];          /* GB 32100 code with a valid check character */
    char region[7];         /* 6-digit administrative region code */
    uint8_t industry;       /* enum sim_industry */
    int32_t lat_e6, lon_e6; /* micro-degrees (WGS 84) */
    uint32_t first_outlet, noutlets;
} sim_facility;

/* One factor of an outlet: how it is written and where it normally sits. Values are scaled
 * integers: value * 10^dec. */
typedef struct sim_factor {
    uint8_t dec;            /* decimals the unit writes */
    int32_t base;           /* normal level at full load (scaled) */
    int32_t zs_base;        /* gas pollutants: oxygen-corrected normal level (scaled) */
    int32_t noise;          /* noise amplitude (scaled), uniform in [-noise, noise] */
    int32_t limit_hour_milli; /* limit * 1000 for hourly values; 0: none */
    int32_t limit_day_milli;  /* limit * 1000 for daily values; 0: none */
} sim_factor;

typedef struct sim_outlet {
    uint32_t facility;
    uint8_t medium;         /* enum sim_medium */
    uint8_t nf;             /* factors: SIM_NGAS or SIM_NWATER */
    uint8_t version;        /* SIM_V2017 or SIM_V2005 */
    uint8_t crc;            /* SIM_CRC_* */
    uint8_t flag;           /* the Flag field sent: 5 (ack wanted), 4, 1 (2005 ack); -1 none */
    bool ack;               /* uploads ask for a 9014 answer */
    bool has_flag;          /* the Flag field is sent at all */
    char code[16];          /* DA001, DW001 ... */
    char mn[25];            /* 24 hex chars (2017) or 14 (2005), unique */
    char pw[7];
    int32_t o2_ref_h;       /* reference O2 in hundredths of a percent; 0 for water */
    int32_t o2_base_h;      /* normal measured O2 (hundredths) */
    uint16_t cal_minute;    /* local minute of day when gas analyzers calibrate */
    uint16_t jitter_s;      /* seconds after a period's end when the unit sends */
    uint64_t key;           /* per-outlet random key */
    uint32_t first_event, nevents;
    sim_factor f[SIM_MAXF];
} sim_outlet;

/* Injected events. Times are UTC seconds, [start, end). */
enum sim_event_type {
    SIM_EV_OFF = 0,  /* plant stopped: F, with shut-down and start-up ramps */
    SIM_EV_FAULT,    /* instrument fault: D, values 0 */
    SIM_EV_MAINT,    /* maintenance: M */
    SIM_EV_EXCEED,   /* exceedance episode of one factor (hourly or daily limit) */
    SIM_EV_FLAT,     /* identical values of one factor while running, flag N */
    SIM_EV_GAP,      /* the unit sends nothing due in [start, end) (connection down) */
    SIM_NEVENT_TYPES
};

typedef struct sim_event {
    int64_t start, end;
    uint8_t type;        /* enum sim_event_type */
    uint8_t factor;      /* EXCEED, FLAT: the factor slot */
    uint8_t daily;       /* EXCEED: judged on the daily limit (whole local days) */
    int32_t peak_permille; /* EXCEED: peak level as a multiple of the limit (x1000) */
} sim_event;

typedef struct sim_fleet sim_fleet; /* opaque; read-only once created */

/* Builds the fleet of opts (copied). Returns 0, -EINVAL (an option out of range, e.g. no
 * facilities or a minute interval that does not divide 60), -ENOMEM. */
int sim_fleet_create(const sim_options *opts, sim_fleet **out);
void sim_fleet_destroy(sim_fleet *f); /* NULL is a no-op */

const sim_options *sim_fleet_options(const sim_fleet *f);
uint32_t sim_fleet_facility_count(const sim_fleet *f);
uint32_t sim_fleet_outlet_count(const sim_fleet *f);
const sim_facility *sim_fleet_facility(const sim_fleet *f, uint32_t i);
const sim_outlet *sim_fleet_outlet(const sim_fleet *f, uint32_t i);
const sim_event *sim_fleet_event(const sim_fleet *f, uint32_t i);
int64_t sim_fleet_end(const sim_fleet *f); /* start + days (or hours) */

/* The outlet whose MN is mn (len bytes), or -1. */
int64_t sim_fleet_find_mn(const sim_fleet *f, const char *mn, size_t len);

/* Factor codes of a slot: 2017 and 2005. */
const char *sim_factor_code(int medium, int slot);
const char *sim_factor_code_2005(int medium, int slot);
const char *sim_industry_name(int industry);

/* Writes the registry as CSV files facilities.csv, outlets.csv, limits.csv in dir (which must
 * exist). Returns 0 or -errno. */
int sim_registry_write(const sim_fleet *f, const char *dir);

/* ---- Values and records (signal.c) ---------------------------------------------------- */

/* One factor of a record. Values are scaled by the factor's decimals; cou by 10^cou_dec. */
typedef struct sim_value {
    int64_t avg, min, max, zsavg, zsmin, zsmax, cou;
    char flag;
} sim_value;

enum { SIM_CN_RTD = 2011, SIM_CN_MIN = 2051, SIM_CN_HOUR = 2061, SIM_CN_DAY = 2031 };

typedef struct sim_record {
    uint32_t outlet;
    int cn;              /* SIM_CN_* */
    int64_t data_time;   /* period start, UTC seconds */
    uint8_t nf;
    sim_value v[SIM_MAXF];
} sim_record;

/* Decimals of -Cou: 3 for pollutant masses (kg), 1 for flow volumes (m3). */
int sim_cou_decimals(int medium, int slot);
/* Whether the factor carries -Cou and -Zs* values. */
bool sim_factor_has_cou(int medium, int slot);
bool sim_factor_has_zs(int medium, int slot);

/* Computes the record of kind cn for the period starting at data_time (aligned to the
 * period: the minute interval, the hour, the local day; any second for 2011). The same
 * arguments always give the same record. Returns 0 or -EINVAL (unaligned, unknown cn). */
int sim_record_compute(const sim_fleet *f, uint32_t outlet, int cn, int64_t data_time,
                       sim_record *out);

/* Whether the unit is off the air at sim time t (inside a GAP event). */
bool sim_outlet_offline(const sim_fleet *f, uint32_t outlet, int64_t t);

/* Writes the ground truth as JSON Lines: one line per injected event (exceedance episodes
 * with their peak hourly or daily values, flat lines, gaps with the records not sent, faults,
 * maintenance, shut-downs) and per calibration rule. Returns 0 or -EIO. */
int sim_truth_write(const sim_fleet *f, FILE *out);

/* ---- Packets (record.c) --------------------------------------------------------------- */

#define SIM_PACKET_MAX 1400 /* a record packet always fits */

/* Formats record r as an HJ 212 upload packet of its outlet's habits (version, Flag, CRC)
 * into out (cap bytes, >= SIM_PACKET_MAX), with QN from qn_ms (UTC milliseconds; ignored by
 * units that send none). Returns the packet length, or -ERANGE. */
int sim_packet_format(const sim_fleet *f, const sim_record *r, int64_t qn_ms, char *out,
                      size_t cap);

/* Formats a packet around a data segment with the outlet's CRC habit. Returns the length or
 * -ERANGE. */
int sim_frame(const sim_outlet *o, const char *seg, size_t seg_len, char *out, size_t cap);

/* Writes every upload of the run to out, in the order and with the QNs the wire uses when
 * every answer comes at once (units inside a gap send nothing). Returns 0, -EIO. */
int sim_packets_write(const sim_fleet *f, FILE *out);

/* Writes QN text (YYYYMMDDhhmmsszzz, local time) of qn_ms into buf[18]. */
void sim_qn_format(int64_t qn_ms, char *buf);

/* ---- The wire (wire.c) ---------------------------------------------------------------- */

typedef struct sim_wire_stats sim_wire_stats;

/* Speed 0: one top-of-hour period, from its first upload until every upload due is answered
 * (or given up): the hourly (and minute, daily) records of the whole fleet at once. */
typedef struct sim_wire_burst {
    int64_t tick;            /* the period end, Unix seconds */
    int64_t began_ms;        /* when its first upload went out, real Unix milliseconds */
    uint64_t uploads;        /* uploads sent in it */
    double s;                /* real seconds until the last answer */
    double ack_p50_ms, ack_p99_ms;
} sim_wire_burst;

#define SIM_WIRE_BURSTS 48   /* top-of-hour periods kept, the first ones of the run */

typedef struct sim_wire_options {
    const char *host;       /* IPv4 or IPv6 literal */
    int port;
    double speed;           /* simulated seconds per real second; 0: as fast as acks allow */
    int64_t direct;         /* units with their own connection; < 0: all */
    uint32_t forwarders;    /* connections that carry the other units (default 4) */
    uint32_t window;        /* unanswered packets in flight per forwarding connection (32);
                               a unit on its own connection waits for each answer */
    uint32_t ack_timeout_ms; /* an upload not answered within this is missing (5000) */
    uint32_t max_connecting; /* connection attempts in progress at once (256) */
    double linger_s;        /* real seconds to stay connected after the end (answers
                               history requests meanwhile) */
    double hour_pause_s;    /* speed 0: real seconds of silence before each top-of-hour
                               period, as a real fleet is quiet for minutes before the hour */
    /* Called about once a real second with the running stats (may be NULL). */
    void (*progress)(void *ud, const sim_wire_stats *stats);
    void *progress_ud;
} sim_wire_options;

void sim_wire_options_defaults(sim_wire_options *o);

struct sim_wire_stats {
    uint64_t connects, connect_failures, disconnects, drops; /* drops: by GAP events */
    uint64_t sent, bytes, acked, noack, missing, failed, unsent, late_acks;
    uint64_t history_requests, history_records, clock_requests, unknown_requests;
    uint64_t bad_frames;
    uint64_t answers_dropped; /* answers to platform requests with no room to go out */
    double ack_p50_ms, ack_p99_ms, ack_max_ms;
    double connect_s;        /* real seconds to make the first connections (before the clock) */
    double tick_max_s;       /* speed 0: the longest a period's uploads took to be answered */
    double tick_last_s;      /* speed 0: the same for the last period (a top-of-hour burst) */
    double elapsed_s, rate;  /* real seconds from then, uploads per real second (outside
                                the pauses before the hours) */
    double paused_s;         /* real seconds of those pauses */
    int64_t sim_end;         /* simulated time reached */
    sim_wire_burst bursts[SIM_WIRE_BURSTS]; /* speed 0: the top-of-hour periods in order */
    uint32_t nbursts;
};

/* Runs the fleet against host:port until the simulated end (plus linger), on a libuv loop of
 * its own in the calling thread. Returns 0 with *stats filled (also when devices failed:
 * the stats say how), or a negative code when it could not start (bad address, no memory). */
int sim_wire_run(const sim_fleet *f, const sim_wire_options *o, sim_wire_stats *stats);

/* The stats as one JSON object line (no newline); returns the length or -ERANGE. */
int sim_wire_stats_format(const sim_wire_stats *s, char *buf, size_t cap);


/* ---- HTTP JSON endpoints (http_server.c, http_feed.c) --------------------------------- */

/* The fleet as a provincial disclosure platform publishes it: each facility's records of a
 * time window as JSON over HTTP/1.1 (keep-alive), paged; README.md has the routes and the
 * format. Values are those the units send in HJ 212, at the same decimals. Runs on the
 * caller's loop. */
typedef struct sim_http sim_http; /* opaque */
struct uv_loop_s;

typedef struct sim_http_options {
    const char *host;          /* IPv4 or IPv6 literal */
    int port;                  /* 0: any free port (sim_http_port) */
    uint32_t max_connections;  /* more are closed at once; 0: 4096 */
} sim_http_options;

typedef struct sim_http_stats {
    uint64_t connections, open, max_open; /* accepted; open now; most open at once */
    uint64_t requests, ok, not_modified, errors; /* errors: answers 4xx and 5xx */
    uint64_t records, bytes;   /* records and body bytes served in 200 answers */
} sim_http_stats;

/* Listens; 0, or the libuv error of the bind (-EADDRINUSE ...), -EINVAL, -ENOMEM. */
int sim_http_start(struct uv_loop_s *loop, const sim_fleet *f, const sim_http_options *o,
                   sim_http **out);
int sim_http_port(const sim_http *h);
void sim_http_get_stats(const sim_http *h, sim_http_stats *out);
/* The stats as one JSON object (no newline); the length or -ERANGE. */
int sim_http_stats_format(const sim_http_stats *s, char *buf, size_t cap);
/* Closes the listener and every connection; memory goes as the loop runs the callbacks. */
void sim_http_close(sim_http *h);

#ifdef __cplusplus
}
#endif
#endif
