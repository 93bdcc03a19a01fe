/* test_lifecycle.c: the query server's life on a caller's loop: create and close without
 * starting, two servers on one loop (no globals), port 0, a port already in use, refusing a
 * public address without a token, a Unix socket, counters, and the close callback running
 * once every handle is closed (ASan checks nothing leaks). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "query.h"
#include "tap.h"

static int closed_count;

static void on_closed(void *arg)
{
    closed_count++;
    *(int *)arg = 1;
}

static void test_create_close(uv_loop_t *loop)
{
    query_server *s = NULL;
    int done = 0;
    CHECK_EQ_INT(query_server_create(loop, NULL, &s), 0);
    CHECK_EQ_INT(query_server_port(s), -1);
    query_server_close(s, on_closed, &done);
    CHECK_EQ_INT(done, 0); /* the callback never runs inside the call */
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(done, 1);
}

static void test_bad_options(uv_loop_t *loop)
{
    query_options o;
    query_server *s = NULL;
    query_options_default(&o);
    o.port = 70000;
    CHECK_EQ_INT(query_server_create(loop, &o, &s), -EINVAL);
    query_options_default(&o);
    o.host = NULL;
    CHECK_EQ_INT(query_server_create(loop, &o, &s), -EINVAL);
}

static void test_two_servers(uv_loop_t *loop)
{
    query_options o;
    query_options_default(&o);
    o.port = 0;
    query_server *a = NULL, *b = NULL, *c = NULL;
    CHECK_EQ_INT(query_server_create(loop, &o, &a), 0);
    CHECK_EQ_INT(query_server_create(loop, &o, &b), 0);
    CHECK_EQ_INT(query_server_start(a), 0);
    CHECK_EQ_INT(query_server_start(b), 0);
    int pa = query_server_port(a), pb = query_server_port(b);
    CHECK(pa > 0 && pb > 0 && pa != pb);

    /* The same port again is in use. */
    o.port = pa;
    CHECK_EQ_INT(query_server_create(loop, &o, &c), 0);
    CHECK_EQ_INT(query_server_start(c), -EADDRINUSE);
    CHECK_EQ_INT(query_server_port(c), -1);

    /* Stop, then start again once the listener has closed. */
    CHECK_EQ_INT(query_server_start(a), -EINVAL);
    query_server_stop(a);
    CHECK_EQ_INT(query_server_port(a), -1);
    CHECK_EQ_INT(query_server_start(a), -EINVAL);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(query_server_start(a), 0);
    CHECK(query_server_port(a) > 0);

    query_stats st;
    query_server_get_stats(a, &st);
    CHECK_EQ_INT(st.clients, 0);
    CHECK_EQ_INT(st.commands_processed, 0);

    int da = 0, db = 0, dc = 0;
    closed_count = 0;
    query_server_close(a, on_closed, &da);
    query_server_close(b, on_closed, &db);
    query_server_close(c, on_closed, &dc);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(da && db && dc);
    CHECK_EQ_INT(closed_count, 3);
}

static void test_public_needs_token(uv_loop_t *loop)
{
    query_options o;
    query_options_default(&o);
    o.host = "0.0.0.0";
    o.port = 0;
    query_server *s = NULL;
    CHECK_EQ_INT(query_server_create(loop, &o, &s), 0);
    CHECK_EQ_INT(query_server_start(s), -EACCES);
    query_server_close(s, NULL, NULL);

    o.host = "not-an-address";
    CHECK_EQ_INT(query_server_create(loop, &o, &s), 0);
    CHECK_EQ_INT(query_server_start(s), -EINVAL);
    query_server_close(s, NULL, NULL);

    o.host = "::1";
    CHECK_EQ_INT(query_server_create(loop, &o, &s), 0);
    int rc = query_server_start(s);
    CHECK(rc == 0 || rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT); /* no IPv6 here */
    query_server_close(s, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* A client thread-free exchange: connect a blocking Unix socket, send PING, run the loop
 * until the reply is there. */
typedef struct {
    int fd;
    char buf[64];
    size_t len;
} peer;

static void on_idle(uv_idle_t *h)
{
    peer *p = h->data;
    ssize_t n = recv(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len, MSG_DONTWAIT);
    if (n > 0)
        p->len += (size_t)n;
    if (p->len >= 7)
        uv_idle_stop(h);
}

static void test_unix_socket(uv_loop_t *loop)
{
    char dir[] = "/tmp/plume-query-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[96];
    snprintf(path, sizeof path, "%s/q.sock", dir);

    query_options o;
    query_options_default(&o);
    o.host = NULL;
    o.unix_path = path;
    o.unix_mode = 0600;
    query_server *s = NULL;
    CHECK_EQ_INT(query_server_create(loop, &o, &s), 0);
    CHECK_EQ_INT(query_server_start(s), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);

    peer p = {.fd = socket(AF_UNIX, SOCK_STREAM, 0)};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CHECK_EQ_INT(connect(p.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ_INT(send(p.fd, "PING\r\n", 6, 0), 6);
    uv_idle_t idle;
    uv_idle_init(loop, &idle);
    idle.data = &p;
    uv_idle_start(&idle, on_idle);
    for (int i = 0; i < 100000 && p.len < 7; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    p.buf[p.len] = 0;
    CHECK_EQ_STR(p.buf, "+PONG\r\n");

    query_stats qs;
    query_server_get_stats(s, &qs);
    CHECK_EQ_INT(qs.clients, 1);
    CHECK_EQ_INT(qs.commands_processed, 1);
    CHECK_EQ_INT(qs.bytes_in, 6);
    CHECK_EQ_INT(qs.bytes_out, 7);

    uv_close((uv_handle_t *)&idle, NULL);
    int done = 0;
    query_server_close(s, on_closed, &done); /* closes the connected client too */
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(done);
    CHECK(stat(path, &st) != 0); /* the socket file is gone */
    close(p.fd);
    rmdir(dir);
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    test_create_close(&loop);
    test_bad_options(&loop);
    test_two_servers(&loop);
    test_public_needs_token(&loop);
    test_unix_socket(&loop);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    return tap_done();
}
