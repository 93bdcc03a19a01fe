#!/usr/bin/env python3
"""test_server.py: the query server end to end, over real sockets.

Starts the real daemon, `plume serve` on a store of its own with the query server on
127.0.0.1 port 0 (limits set through its query.* options), and talks to it with raw sockets
(Python standard library only) and, when installed, with redis-cli.
Prints TAP. Usage: test_server.py PLUME_BINARY [REDIS_CLI_PATH]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, skip  # noqa: E402

PLUME = pt.init(sys.argv[1])
REDIS_CLI = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
DEMO_KEY = "DEMO:a21026:hour"
DEMO_T0 = 1699920000  # 2023-11-14T00:00:00Z


class Server:
    """plume serve on a fresh store: the query server on 127.0.0.1 port 0, no HJ 212
    listener, no metrics page, then ARGS (daemon options). With points, the store first gets
    DEMO_KEY through plume import: `points` hourly values from DEMO_T0, point i of value i."""

    def __init__(self, *args, points=0):
        self.dir = tempfile.mkdtemp()
        db = os.path.join(self.dir, "db")
        if points:
            path = os.path.join(self.dir, "demo.csv")
            with open(path, "w") as f:
                f.writelines(f"{DEMO_KEY},{DEMO_T0 + 3600 * i},{i}\n" for i in range(points))
            r = pt.plume("import", "--db", db, path)
            if r.returncode != 0:
                raise RuntimeError("plume import failed: " + r.stderr)
        self.daemon = pt.Serve(db, "--metrics.listen", "", *args, hj212=False)
        self.port = self.daemon.qport

    def rss_kb(self):
        with open(f"/proc/{self.daemon.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        rc = self.daemon.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def Conn(port=None, unix=None):
    """A RESP connection whose bulk strings come back as bytes."""
    return pt.Resp(port, unix=unix, raw=True)


Error = pt.RespError
encode = pt.resp_encode


def info_field(conn, name):
    text = conn.cmd("INFO").decode()
    for line in text.split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return None


def test_basics(srv):
    c = Conn(srv.port)
    check(c.cmd("PING") == "PONG", "PING answers PONG")
    check(c.cmd("ping", "hi") == b"hi", "PING with a message echoes it")
    c.send(b"PING\r\n")
    check(c.reply() == "PONG", "an inline PING answers PONG")
    check(c.cmd("ECHO", b"a\x00b\r\n") == b"a\x00b\r\n", "ECHO returns binary data intact")
    r = c.cmd("NOSUCH", "a", "b")
    check(r == "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ",
          "an unknown command gets Redis' error", r)
    check(c.cmd("PING") == "PONG", "the connection stays usable after an unknown command")
    r = c.cmd("ECHO")
    check(r == "ERR wrong number of arguments for 'echo' command", "ECHO without args", r)
    check(c.cmd("SELECT", "0") == "OK", "SELECT 0 is accepted")
    check(isinstance(c.cmd("SELECT", "1"), Error), "SELECT 1 is refused")
    check(c.cmd("CLIENT", "SETNAME", "chart-app") == "OK", "CLIENT SETNAME")
    check(c.cmd("CLIENT", "GETNAME") == b"chart-app", "CLIENT GETNAME returns the name")
    check(isinstance(c.cmd("CLIENT", "SETNAME", "a b"), Error), "a name with a space is refused")
    cid = c.cmd("CLIENT", "ID")
    check(isinstance(cid, int) and cid > 0, "CLIENT ID is a positive integer")
    ci = c.cmd("CLIENT", "INFO").decode()
    check(f"id={cid} " in ci and "name=chart-app" in ci and "resp=2" in ci,
          "CLIENT INFO describes this client", ci)
    check(c.cmd("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK", "CLIENT SETINFO")
    check(isinstance(c.cmd("CLIENT", "BOGUS"), Error), "an unknown CLIENT subcommand errs")
    n = c.cmd("COMMAND", "COUNT")
    check(isinstance(n, int) and n >= 9, "COMMAND COUNT", n)
    docs = c.cmd("COMMAND", "DOCS")
    check(isinstance(docs, list) and len(docs) == 2 * n and b"ping" in docs,
          "COMMAND DOCS lists every command (a flat map in RESP2)")
    info = c.cmd("COMMAND", "INFO", "get", "ping")
    check(info[0] is None and info[1][0] == b"ping" and info[1][1] == -1, "COMMAND INFO", info)
    text = c.cmd("INFO").decode()
    check("# Server\r\n" in text and "# Clients\r\n" in text and "# Stats\r\n" in text,
          "INFO has the server, clients and stats sections")
    check(f"tcp_port:{srv.port}\r\n" in text, "INFO reports the bound port")
    only = c.cmd("INFO", "stats").decode()
    check(only.startswith("# Stats\r\n") and "# Server" not in only, "INFO stats alone")
    check(c.cmd("QUIT") == "OK" and c.closed(), "QUIT answers OK and closes")


def test_hello(srv):
    c = Conn(srv.port)
    r = c.cmd("HELLO", "3")
    check(isinstance(r, dict) and r.get(b"proto") == 3 and r.get(b"server") == b"plume",
          "HELLO 3 answers a map with proto 3", r)
    check(c.cmd("PING") == "PONG", "PING in RESP3")
    check(c.cmd("CLIENT", "GETNAME") is None, "a null in RESP3 is _")
    docs = c.cmd("COMMAND", "DOCS", "ping")
    check(isinstance(docs, dict) and b"summary" in docs.get(b"ping", {}),
          "COMMAND DOCS is a map in RESP3", docs)
    ci = c.cmd("CLIENT", "INFO").decode()
    check("resp=3" in ci, "CLIENT INFO shows resp=3")
    r = c.cmd("HELLO", "2", "SETNAME", "x")
    check(isinstance(r, list) and len(r) == 14 and r[5] == 2, "HELLO 2 goes back to RESP2", r)
    check(c.cmd("CLIENT", "GETNAME") == b"x", "HELLO SETNAME names the client")
    r = c.cmd("HELLO", "4")
    check(isinstance(r, Error) and r.startswith("NOPROTO"), "HELLO 4 is NOPROTO", r)
    c.close()


def test_pipeline(srv):
    c = Conn(srv.port)
    c.send(b"".join(encode("ECHO", f"m{i}") for i in range(1000)))
    got = [c.reply() for _ in range(1000)]
    check(got == [f"m{i}".encode() for i in range(1000)],
          "1,000 pipelined commands in one write get 1,000 replies in order")
    c.send(b"PING\r\n" * 300 + encode("ECHO", "end"))
    got = [c.reply() for _ in range(301)]
    check(got[:300] == ["PONG"] * 300 and got[300] == b"end", "a pipeline of inline commands")
    # A request split across many writes.
    data = encode("ECHO", "x" * 5000)
    for i in range(0, len(data), 7):
        c.send(data[i:i + 7])
    check(c.reply() == b"x" * 5000, "a request arriving in 7-byte pieces")
    c.close()


def test_malformed(srv):
    bystander = Conn(srv.port)
    bystander.cmd("PING")
    c = Conn(srv.port)
    c.send(b"*1\r\n+PING\r\n")
    r = c.reply()
    check(r == "ERR Protocol error: expected '$', got '+'", "a malformed request gets an error", r)
    check(c.closed(), "then the connection is closed")
    c = Conn(srv.port)
    c.send(b'ECHO "open\r\n')
    r = c.reply()
    check(isinstance(r, Error) and "unbalanced quotes" in r, "unbalanced quotes", r)
    check(bystander.cmd("PING") == "PONG", "other connections are unaffected")
    before = srv.rss_kb()
    t0 = time.monotonic()
    c = Conn(srv.port)
    c.send(b"*2\r\n$4\r\nECHO\r\n$999999999999\r\n")
    r = c.reply()
    took = time.monotonic() - t0
    check(isinstance(r, Error) and "exceeds the limit" in r, "a huge $ header is refused", r)
    check(took < 1.0, "the refusal is immediate", took)
    check(srv.rss_kb() - before < 8 * 1024, "the server did not allocate the announced size")
    c = Conn(srv.port)
    c.send(b"*100000000\r\n")
    r = c.reply()
    check(isinstance(r, Error) and "arguments exceed the limit" in r, "a huge * header", r)
    c = Conn(srv.port)
    c.send(b"A" * (70 * 1024))
    r = c.reply()
    check(r == "ERR Protocol error: too big inline request", "an endless inline line", r)
    errs = int(info_field(bystander, "total_protocol_errors"))
    check(errs >= 5, "protocol errors are counted", errs)
    bystander.close()


def test_garbage(srv):
    """Random bytes on many connections: the server answers or closes, and lives on."""
    import random
    rnd = random.Random(212)
    seeds = [b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n", b"PING\r\n", b'ECHO "a b" \'c\'\r\n']
    for i in range(100):
        base = bytearray(rnd.choice(seeds) * rnd.randint(1, 4))
        for _ in range(rnd.randint(1, 6)):
            at = rnd.randrange(len(base))
            base[at] = rnd.choice(b"*$\r\n-+:0123456789\"' \x00\xff") if i % 2 else rnd.randrange(256)
        if i % 5 == 0:
            base = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 300)))
        c = Conn(srv.port)
        c.s.settimeout(0.05)
        try:
            c.send(bytes(base))
            while c.s.recv(65536):
                pass
        except (socket.timeout, ConnectionError):
            pass
        c.close()
    c = Conn(srv.port)
    check(c.cmd("PING") == "PONG", "after 100 connections of mangled input the server answers")
    c.close()


def test_concurrency(srv):
    conns = [Conn(srv.port) for _ in range(200)]
    for i, c in enumerate(conns):
        c.send(encode("ECHO", str(i)))
    ok = all(c.reply() == str(i).encode() for i, c in enumerate(conns))
    check(ok, "200 concurrent clients each get their own reply")
    n = int(info_field(conns[0], "connected_clients"))
    check(n >= 200, "INFO counts the connected clients", n)
    for c in conns:
        c.close()


def test_backpressure():
    srv = Server("--query.max_output", "65536")
    c = Conn(srv.port)
    payload = b"y" * 65536
    count = 200  # 13 MB of replies, far beyond the socket buffers

    def writer():
        c.send(b"".join(encode("ECHO", payload) for _ in range(count)))

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)  # let the server fill its output and stop reading
    other = Conn(srv.port)
    paused = int(info_field(other, "output_paused"))
    check(paused >= 1, "a client that does not read its replies is paused", paused)
    got = sum(1 for _ in range(count) if c.reply() == payload)
    t.join()
    check(got == count, "after draining, every reply arrives", got)
    check(srv.rss_kb() < 64 * 1024, "the server held bounded memory", srv.rss_kb())
    c.close()
    other.close()
    check(srv.stop() == 0, "the server exits cleanly on SIGTERM")


def test_auth():
    srv = Server("--query.token", "s3cret")
    c = Conn(srv.port)
    r = c.cmd("PING")
    check(r == "NOAUTH Authentication required.", "commands need AUTH when a token is set", r)
    r = c.cmd("AUTH", "wrong")
    check(isinstance(r, Error) and r.startswith("WRONGPASS"), "a wrong token is refused", r)
    r = c.cmd("HELLO", "3")
    check(isinstance(r, Error) and r.startswith("NOAUTH"), "HELLO without AUTH is refused", r)
    check(c.cmd("AUTH", "s3cret") == "OK", "AUTH with the token")
    check(c.cmd("PING") == "PONG", "then commands run")
    d = Conn(srv.port)
    r = d.cmd("HELLO", "3", "AUTH", "default", "s3cret")
    check(isinstance(r, dict) and r[b"proto"] == 3, "HELLO 3 AUTH default <token>", r)
    check(d.cmd("PING") == "PONG", "HELLO AUTH authenticates")
    e = Conn(srv.port)
    check(e.cmd("AUTH", "other", "s3cret").startswith("WRONGPASS"), "only the default user")
    check(e.cmd("QUIT") == "OK", "QUIT needs no AUTH")
    if REDIS_CLI:
        out = subprocess.run([REDIS_CLI, "-p", str(srv.port), "-a", "s3cret",
                              "--no-auth-warning", "PING"], capture_output=True, text=True,
                             timeout=10)
        check(out.stdout.strip() == "PONG", "redis-cli -a <token> PING", out.stdout)
    else:
        skip("redis-cli -a <token> PING", "redis-cli not installed")
    for x in (c, d, e):
        x.close()
    srv.stop()

    db = tempfile.mkdtemp()
    p = subprocess.run([PLUME, "serve", "--db", db, "--hj212.listen", "", "--metrics.listen", "",
                        "--query.listen", "0.0.0.0:0"], capture_output=True, text=True,
                       timeout=30)
    check(p.returncode != 0 and "beyond loopback" in p.stderr,
          "binding beyond loopback without a token is refused", p.stderr)
    shutil.rmtree(db, ignore_errors=True)


def test_limits():
    srv = Server("--query.idle_timeout_ms", "300", "--query.max_clients", "3",
                 "--query.max_bulk", "1024")
    a = Conn(srv.port)
    a.cmd("PING")
    time.sleep(1.0)
    check(a.closed(), "an idle client is closed after the timeout")
    b = Conn(srv.port)
    c = Conn(srv.port)
    d = Conn(srv.port)
    e = Conn(srv.port)
    r = e.reply()
    check(r == "ERR max number of clients reached", "a client beyond max_clients is refused", r)
    check(e.closed(), "and disconnected")
    check(int(info_field(b, "rejected_connections")) == 1, "the refusal is counted")
    check(int(info_field(b, "idle_closed_connections")) >= 1, "idle closes are counted")
    b.send(encode("ECHO", "z" * 2000))
    r = b.reply()
    check(isinstance(r, Error) and "exceeds the limit of 1024" in r, "max bulk length", r)
    for x in (b, c, d, e):
        x.close()
    srv.stop()


def test_unix():
    path = os.path.join(tempfile.mkdtemp(), "plume.sock")
    srv = Server("--query.unix", path)
    c = Conn(unix=path)
    check(c.cmd("PING") == "PONG", "PING over the Unix socket")
    ci = c.cmd("CLIENT", "INFO").decode()
    check(path in ci, "CLIENT INFO names the socket", ci)
    c.close()
    check(srv.stop() == 0 and not os.path.exists(path), "the socket file is removed at exit")
    os.rmdir(os.path.dirname(path))


def test_redis_cli(srv):
    names = ["redis-cli PING", "redis-cli INFO", "redis-cli COMMAND DOCS",
             "redis-cli -3 HELLO", "redis-cli pipes inline commands"]
    if not REDIS_CLI:
        for n in names:
            skip(n, "redis-cli not installed")
        return

    def run(*args, stdin=None):
        return subprocess.run([REDIS_CLI, "-p", str(srv.port), *args], input=stdin,
                              capture_output=True, text=True, timeout=10)

    r = run("PING")
    check(r.returncode == 0 and r.stdout.strip() == "PONG", names[0], r.stdout + r.stderr)
    r = run("INFO")
    check(r.returncode == 0 and "# Server" in r.stdout and "connected_clients:" in r.stdout,
          names[1], r.stdout + r.stderr)
    r = run("COMMAND", "DOCS")
    check(r.returncode == 0 and "summary" in r.stdout and "ERR" not in r.stdout,
          names[2], r.stdout + r.stderr)
    r = run("-3", "HELLO", "3")
    check(r.returncode == 0 and "proto" in r.stdout, names[3], r.stdout + r.stderr)
    r = run(stdin="PING\nECHO hello\n")
    check(r.returncode == 0 and r.stdout.split() == ["PONG", "hello"], names[4],
          r.stdout + r.stderr)


def test_series():
    """TS.* over the wire, on an imported series (48 hourly points, value i)."""
    srv = Server(points=48)
    t0 = DEMO_T0 * 1000
    key = DEMO_KEY
    c = Conn(srv.port)
    check(c.cmd("TS.GET", key) == [t0 + 47 * 3600000, "47"], "TS.GET over the wire")
    r = c.cmd("TS.RANGE", key, "-", "+", "AGGREGATION", "avg", "86400000")
    check(r == [[t0, "11.5"], [t0 + 86400000, "35.5"]], "TS.RANGE with daily averages", r)
    c.cmd("HELLO", "3")
    r = c.cmd("TS.REVRANGE", key, "-", "+", "COUNT", "2")
    check(r == [[t0 + 47 * 3600000, 47.0], [t0 + 46 * 3600000, 46.0]],
          "TS.REVRANGE in RESP3 gives doubles, newest first", r)
    check(c.cmd("DBSIZE") == 1, "DBSIZE counts the series")
    r = c.cmd("TS.RANGE", "nosuch", "-", "+")
    check(r == "ERR TSDB: the key does not exist", "an unknown key", r)
    c.close()
    if REDIS_CLI:
        out = subprocess.run([REDIS_CLI, "-p", str(srv.port), "TS.RANGE", key, "-", "+",
                              "AGGREGATION", "max", "86400000"], capture_output=True,
                             text=True, timeout=10)
        check(out.returncode == 0 and out.stdout.split() ==
              [str(t0), "23", str(t0 + 86400000), "47"], "redis-cli TS.RANGE", out.stdout)
    else:
        skip("redis-cli TS.RANGE", "redis-cli not installed")
    check(srv.stop() == 0, "the server with a store exits cleanly")

    # Long scans run on worker threads: clients that leave mid-query, and a shutdown with
    # queries in flight, must neither crash nor leak (the sanitized build checks). Without
    # the reply cache, so that every repeat is computed again.
    srv = Server("--query.cache_mb", "0", points=50000)
    slow = encode("TS.RANGE", key, "-", "+", "FILTER_BY_VALUE", "-inf", "inf",
                  "AGGREGATION", "std.s", "3600000")
    for _ in range(20):
        c = Conn(srv.port)
        c.send(slow)
        c.close()
    c = Conn(srv.port)
    c.send(slow + encode("PING"))
    r = c.reply()
    check(isinstance(r, list) and len(r) == 50000 and c.reply() == "PONG",
          "a long scan answers, then the pipeline carries on in order")
    check(int(info_field(c, "commands_offloaded")) >= 21, "long scans ran on worker threads")
    busy = [Conn(srv.port) for _ in range(4)]
    for b in busy:
        b.send(slow * 3)
    check(srv.stop() == 0, "a shutdown with long scans in flight exits cleanly")
    for x in busy + [c]:
        x.close()


def main():
    srv = Server()
    try:
        test_basics(srv)
        test_hello(srv)
        test_pipeline(srv)
        test_malformed(srv)
        test_garbage(srv)
        test_concurrency(srv)
        test_redis_cli(srv)
    finally:
        code = srv.stop()
    check(code == 0, "the server exits cleanly on SIGTERM", code)
    test_backpressure()
    test_auth()
    test_limits()
    test_unix()
    test_series()
    pt.finish()


if __name__ == "__main__":
    main()
