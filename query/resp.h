/* resp.h: the RESP (Redis serialization protocol) codec, internal to query/.
 *
 * Two halves. The request parser turns bytes from a client into argument vectors: RESP
 * arrays of bulk strings, as every Redis client sends, and inline commands (a line of words),
 * as telnet and redis-cli's pipe mode send. It is incremental (call it again with more bytes;
 * it resumes where it stopped), zero-copy for arrays (arguments point into the caller's
 * buffer), and refuses a request that breaks a limit as soon as the violating header is seen,
 * so a client announcing a 10 GB string costs nothing. The reply writer appends RESP2 or RESP3
 * replies to a growable buffer, degrading RESP3 types to their RESP2 shapes as Redis does.
 *
 * Nothing here does I/O or knows about connections; the server (server.c) owns both.
 */
#ifndef PLUME_QUERY_RESP_H
#define PLUME_QUERY_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One argument of a request: len bytes at ptr, not NUL-terminated. */
typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg;

/* ---- Request parser ------------------------------------------------------------------ */

typedef struct resp_limits {
    size_t max_args;        /* arguments in one request; default 65536 */
    size_t max_bulk_len;    /* bytes of one argument; default 4 MiB */
    size_t max_inline_len;  /* bytes of one inline command line; default 64 KiB */
    size_t max_request_len; /* bytes of one whole request on the wire; default 16 MiB */
} resp_limits;

enum {
    RESP_MORE = 0,  /* the request is incomplete: call again with more bytes */
    RESP_DONE = 1,  /* a request is complete: argc/argv are set */
    RESP_EPROTO = -1, /* the bytes break the protocol or a limit: err says how */
    RESP_ENOMEM = -2,
};

typedef struct resp_req_slot { size_t off, len; } resp_req_slot;

/* Parser state. Fields are private except argc, argv and err, as documented below. */
typedef struct resp_parser {
    resp_limits lim;
    int state;              /* where in a request the parser stands (resp.c) */
    size_t pos;             /* bytes of the current request already examined */
    int64_t elems_left;     /* array elements still to come */
    int64_t bulk_len;       /* length of the bulk string being read, or -1 */
    resp_req_slot *slots;   /* owned: argument offsets from the request start */
    resp_arg *argv_buf;     /* owned: argv handed out on RESP_DONE */
    size_t slots_cap;
    char *inline_buf;       /* owned: unescaped words of an inline command */
    size_t inline_cap;

    size_t argc;            /* after RESP_DONE: number of arguments (>= 1) */
    const resp_arg *argv;   /* after RESP_DONE: the arguments; they point into the buffer
                               given to resp_parse (array requests) or into the parser
                               (inline requests), and stay valid until the next call to
                               resp_parse or resp_parser_free, and while that buffer lives */
    bool is_inline;         /* after RESP_DONE: the request was an inline command */
    char err[160];          /* after RESP_EPROTO: "Protocol error: ..." (no "ERR" prefix) */
} resp_parser;

/* Fills lim with the defaults named above. */
void resp_limits_default(resp_limits *lim);

/* Prepares p with limits lim (NULL: defaults). Allocates nothing yet. */
void resp_parser_init(resp_parser *p, const resp_limits *lim);
void resp_parser_free(resp_parser *p);

/* Forgets any partial request (after an error, or to reuse the parser). */
void resp_parser_reset(resp_parser *p);

/* Parses the request that starts at buf[0]; len bytes are available. Between a RESP_MORE
 * return and the next call the caller may move the bytes (buf may differ) but must keep them
 * and only append. Returns:
 *   RESP_DONE  a request of *consumed bytes is complete (argc, argv); the next request
 *              starts at buf + *consumed.
 *   RESP_MORE  more bytes are needed; *consumed is set to bytes that may be dropped (empty
 *              lines and empty arrays, which Redis skips); the partial request starts
 *              after them. *need (may be NULL) gets a lower bound on the bytes the request
 *              needs in all, counted from buf + *consumed, so a caller can size its buffer.
 *   RESP_EPROTO / RESP_ENOMEM  the request cannot be parsed; err names the problem. The
 *              parser must be reset before reuse; the stream has no reliable resync point,
 *              so a server answers with err and closes. */
int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *consumed, size_t *need);

/* ---- Argument helpers -------------------------------------------------------------- */

/* Case-insensitive comparison of an argument with a NUL-terminated word. */
bool resp_arg_ieq(const resp_arg *a, const char *word);

/* Parses a whole argument as a decimal int64 ("-12"), or a double ("1.5", "-inf", "1e3").
 * Returns 0 or -EINVAL (empty, trailing bytes, overflow, NaN). */
int resp_arg_int64(const resp_arg *a, int64_t *out);
int resp_arg_double(const resp_arg *a, double *out);

/* ---- Reply writer -------------------------------------------------------------------- */

/* A growable buffer of encoded replies, in RESP version proto (2 or 3). On allocation
 * failure the writer stops appending and sets oom; the owner should drop the connection. */
typedef struct resp_writer {
    char *data;         /* owned */
    size_t len, cap;
    int proto;          /* 2 or 3 */
    bool oom;
    uint64_t errors;    /* error replies written so far (for statistics) */
} resp_writer;

void resp_writer_init(resp_writer *w, int proto);
void resp_writer_free(resp_writer *w);

/* Raw bytes, already encoded. */
void resp_write_raw(resp_writer *w, const void *p, size_t len);

/* For replies formatted in place: resp_writer_reserve returns room for n more bytes at the
 * end of the data (NULL on allocation failure, with oom set), valid until the next call on
 * w; resp_writer_commit then appends the first len <= n of them. */
char *resp_writer_reserve(resp_writer *w, size_t n);
void resp_writer_commit(resp_writer *w, size_t len);

/* +OK style status. s must not contain CR or LF (they are replaced by spaces). */
void resp_write_simple(resp_writer *w, const char *s);

/* An error reply. The message should start with an error code in capitals ("ERR ...",
 * "WRONGTYPE ..."); when it does not, "ERR " is prepended. CR and LF become spaces. */
void resp_write_error(resp_writer *w, const char *msg);
void resp_write_errorf(resp_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void resp_write_int(resp_writer *w, int64_t v);
void resp_write_bulk(resp_writer *w, const void *p, size_t len);
void resp_write_cstr(resp_writer *w, const char *s);      /* bulk string of s */
void resp_write_bulkf(resp_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The null bulk string ($-1 in RESP2) and the null array (*-1 in RESP2); both are _ in
 * RESP3. */
void resp_write_null(resp_writer *w);
void resp_write_null_array(resp_writer *w);

/* Aggregate headers: the caller then writes n elements (2n for a map: key, value, ...).
 * RESP2 has only arrays: a map becomes a flat array of 2n, a set or push an array. */
void resp_write_array(resp_writer *w, size_t n);
void resp_write_map(resp_writer *w, size_t n);
void resp_write_set(resp_writer *w, size_t n);
void resp_write_push(resp_writer *w, size_t n);

/* A double: ",1.5" in RESP3, the bulk string "1.5" in RESP2. Written with the fewest
 * digits that read back exactly; inf, -inf and nan as such. */
void resp_write_double(resp_writer *w, double v);

/* A sample as RedisTimeSeries replies it: [timestamp integer, value], the value a simple
 * string in RESP2 and a double in RESP3, formatted as resp_write_double does. */
void resp_write_sample(resp_writer *w, int64_t ts, double v);

/* A boolean: "#t"/"#f" in RESP3, the integers 1/0 in RESP2. */
void resp_write_bool(resp_writer *w, bool v);

/* Verbatim text ("=len\r\ntxt:..." in RESP3; a plain bulk string in RESP2). fmt is the
 * three-letter format: "txt" or "mkd". */
void resp_write_verbatim(resp_writer *w, const char *fmt, const void *p, size_t len);

/* Writes the decimal digits of v (with a '-' when negative, no NUL) at d, which needs 20
 * bytes. Returns how many. */
int resp_format_i64(char *d, int64_t v);

/* Writes seconds s as milliseconds (s * 1000, which must not overflow) as resp_format_i64
 * does; d needs 20 bytes. */
int resp_format_ms(char *d, int64_t s);

/* Formats v as resp_write_double does; buf needs 32 bytes. Returns the length. */
int resp_format_double(double v, char *buf, size_t len);

#endif
