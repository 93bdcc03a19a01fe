/* hj212_parse.c: how fast the HJ 212 codec frames and parses a typical hourly upload.
 *
 * The server must take >= 50,000 packets/s on one core alongside everything else, so the
 * codec's share must be a few microseconds per packet at most. This program builds an
 * hourly 2061 packet with 6 factors x 5 fields (the common case), glues many copies into a
 * stream, and times: the CRC alone, framing alone (4 KiB reads), parsing alone, and framing
 * + parsing + formatting the 9014 ack, which is what a connection does per packet.
 * Times are this thread's CPU time, best of 5 rounds, so other load on the machine
 * inflates them less.
 *
 *   build/tools/bench/hj212_parse [packets]     (default 200000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hj212.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t hourly_segment(char *seg, size_t cap)
{
    static const char *const codes[] = {"a21026", "a21002", "a34013", "a19001", "a00000",
                                        "a01012"};
    static const double avg[] = {23.45, 41.7, 3.12, 8.6, 142.375, 48.9};
    int n = snprintf(seg, cap, "QN=20260801090012345;ST=31;CN=2061;PW=123456;"
                               "MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20260801080000");
    for (int i = 0; i < 6; i++)
        n += snprintf(seg + n, cap - (size_t)n,
                      ";%s-Avg=%.3f,%s-Min=%.3f,%s-Max=%.3f,%s-Cou=%.4f,%s-Flag=N", codes[i],
                      avg[i], codes[i], avg[i] * 0.8, codes[i], avg[i] * 1.3, codes[i],
                      avg[i] * 0.0123, codes[i]);
    n += snprintf(seg + n, cap - (size_t)n, "&&");
    return (size_t)n;
}

typedef struct run {
    hj212_packet *p;
    unsigned long frames, factors;
    bool parse, ack;
} run;

static void on_frame(void *ctx, const hj212_frame *fr)
{
    run *r = ctx;
    r->frames++;
    if (!r->parse)
        return;
    if (hj212_parse(fr->seg, fr->seg_len, NULL, r->p, NULL) == 0)
        r->factors += r->p->nfactors;
    if (r->ack) {
        char out[256];
        size_t n;
        hj212_format_data_ack(r->p, out, sizeof out, &n);
    }
}

static void report(const char *what, double secs, unsigned long count)
{
    printf("%-34s %9.0f ns/packet %12.0f packets/s\n", what, secs / count * 1e9, count / secs);
}

/* Frames (and parses, acks) a stream of count packets in 4 KiB reads; CPU seconds. */
static double stream_run(const char *what, const char *stream, size_t len, unsigned long count,
                         bool parse, bool ack, hj212_packet *p)
{
    hj212_framer *f;
    if (hj212_framer_create(NULL, &f) != 0)
        exit(1);
    run r = {p, 0, 0, parse, ack};
    double t0 = now();
    for (size_t i = 0; i < len; i += 4096)
        hj212_framer_push(f, stream + i, len - i < 4096 ? len - i : 4096, on_frame, &r);
    double t = now() - t0;
    if (r.frames != count || (parse && r.factors != count * 6)) {
        fprintf(stderr, "%s: %lu frames, %lu factors: wrong\n", what, r.frames, r.factors);
        exit(1);
    }
    hj212_framer_destroy(f);
    return t;
}

#define ROUNDS 5

int main(int argc, char **argv)
{
    unsigned long count = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    char seg[2048], pkt[2100];
    size_t seg_len = hourly_segment(seg, sizeof seg), pkt_len;
    if (count == 0 || hj212_frame_format(seg, seg_len, pkt, sizeof pkt, &pkt_len) != 0)
        return 1;
    char *stream = malloc(pkt_len * count);
    hj212_packet *p = malloc(sizeof *p);
    if (!stream || !p)
        return 1;
    for (unsigned long i = 0; i < count; i++)
        memcpy(stream + i * pkt_len, pkt, pkt_len);
    size_t len = pkt_len * count;
    printf("hourly packet: %zu bytes, 6 factors x 5 fields; %lu packets, best of %d rounds\n",
           pkt_len, count, ROUNDS);

    static const char *const what[] = {"crc", "parse", "frame (4 KiB reads)", "frame + parse",
                                       "frame + parse + 9014 ack"};
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    volatile unsigned sink = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double t[5], t0 = now();
        for (unsigned long i = 0; i < count; i++)
            sink += hj212_crc(seg, seg_len);
        t[0] = now() - t0;
        t0 = now();
        for (unsigned long i = 0; i < count; i++)
            sink += (unsigned)hj212_parse(seg, seg_len, NULL, p, NULL) + p->nfactors;
        t[1] = now() - t0;
        t[2] = stream_run(what[2], stream, len, count, false, false, p);
        t[3] = stream_run(what[3], stream, len, count, true, false, p);
        t[4] = stream_run(what[4], stream, len, count, true, true, p);
        for (int k = 0; k < 5; k++)
            best[k] = t[k] < best[k] ? t[k] : best[k];
    }
    for (int k = 0; k < 5; k++)
        report(what[k], best[k], count);
    (void)sink;
    free(stream);
    free(p);
    return 0;
}
