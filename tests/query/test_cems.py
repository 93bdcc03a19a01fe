#!/usr/bin/env python3
"""test_cems.py: the multi-series (TS.MRANGE, TS.MREVRANGE, TS.MGET, TS.QUERYINDEX, TS.INFO)
and domain (CEMS.*) commands end to end.

Starts tests/query/resp_echo_server with a fresh store seeded by --cems and the registry
tests/query/registry.json, then checks every command's reply, in RESP2 and RESP3, over raw
sockets (Python standard library) and, when installed, through redis-cli. The seeded data:
DEMO:a21026:hour (48 hourly points, value i), 010000A89000:a21026:hour (48 hourly points of
30 with exceedances at hours 5-7, 20 and 40-41 and a flagged 80 at hour 30; limit 50 until
2023-11-15 local time, 35 after) and Dongsi.no2 (24 points 10 + i, stored labels).
`plume chart` is run on the same store (opened read-only while the server runs).
Usage: test_cems.py SERVER REGISTRY_JSON PLUME [REDIS_CLI]
"""
import os
import socket
import subprocess
import sys
import tempfile

SERVER, REGISTRY, PLUME = sys.argv[1], sys.argv[2], sys.argv[3]
REDIS_CLI = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
T0 = 1699920000 * 1000
H = 3600 * 1000
KEY = "010000A89000:a21026:hour"

n_checks = n_failed = 0


def check(cond, name, detail=None):
    global n_checks, n_failed
    n_checks += 1
    print(("ok" if cond else "not ok") + f" {n_checks} - {name}")
    if not cond:
        n_failed += 1
        if detail is not None:
            print(f"#   {detail!r}")
    sys.stdout.flush()


class Err(str):
    pass


class Conn:
    def __init__(self, port, proto=2):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(10)
        self.buf = b""
        if proto == 3:
            self.cmd("HELLO", "3")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.reply()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self.line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b",":
            return float(rest)
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(1 << 16)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if t == b"%":
            return {self.reply(): self.reply() for _ in range(int(rest))}
        raise ValueError(line)


def pairs(flat):
    """A RESP2 flat map as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


def main():
    store = tempfile.mkdtemp(prefix="plume-cems-")
    global PROC
    proc = PROC = subprocess.Popen([SERVER, "--store", store, "--cems", "--registry", REGISTRY],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    c2, c3 = Conn(port), Conn(port, 3)
    try:
        run(port, c2, c3)
        chart(store)
    finally:
        proc.terminate()
        rc = proc.wait(timeout=20)
        check(rc == 0, "the server exits cleanly", proc.stderr.read())
        subprocess.run(["rm", "-rf", store])
    print(f"1..{n_checks}")
    sys.exit(1 if n_failed else 0)


def pubsub(port):
    """SUBSCRIBE / PSUBSCRIBE: alerts pushed when the daemon publishes (SIGUSR1 here)."""
    global PROC
    s2, s3, p2 = Conn(port), Conn(port, 3), Conn(port)
    r = s2.cmd("SUBSCRIBE", "alerts", "alerts.110105")
    check(r == ["subscribe", "alerts", 1] and s2.reply() == ["subscribe", "alerts.110105", 2],
          "subscribe acks", r)
    r = s3.cmd("SUBSCRIBE", "alerts")
    check(r == ["subscribe", "alerts", 1], "subscribe RESP3 ack (push)", r)
    r = p2.cmd("PSUBSCRIBE", "alerts.3501*")
    check(r == ["psubscribe", "alerts.3501*", 1], "psubscribe ack", r)
    r = s2.cmd("TS.GET", KEY)
    check(isinstance(r, Err) and "only (P)SUBSCRIBE" in r, "RESP2 subscriber limited", r)
    check(s2.cmd("PING") == ["pong", ""], "PING while subscribed (RESP2)")
    check(s3.cmd("PING") == "PONG", "RESP3 subscriber may run any command")
    check(isinstance(s3.cmd("TS.GET", KEY), list), "RESP3 subscriber queries")
    PROC.send_signal(10)  # SIGUSR1
    m = s2.reply()
    check(m[:2] == ["message", "alerts"] and '"mn":"010000A89000"' in m[2].replace(" ", ""),
          "message on alerts", m)
    m = s3.reply()
    check(m[:2] == ["message", "alerts"], "push on alerts (RESP3)", m)
    m = p2.reply()
    check(m[:3] == ["pmessage", "alerts.3501*", "alerts.350100"], "pmessage by region", m)
    r = s2.cmd("UNSUBSCRIBE", "alerts")
    check(r == ["unsubscribe", "alerts", 1], "unsubscribe one", r)
    r = s2.cmd("UNSUBSCRIBE")
    check(r == ["unsubscribe", "alerts.110105", 0], "unsubscribe all", r)
    check(isinstance(s2.cmd("TS.GET", KEY), list), "commands again after unsubscribing")
    r = p2.cmd("PUNSUBSCRIBE")
    check(r == ["punsubscribe", "alerts.3501*", 0], "punsubscribe all", r)
    r = p2.cmd("PUNSUBSCRIBE")
    check(r == ["punsubscribe", None, 0], "punsubscribe with none", r)


def chart(store):
    """plume chart writes an SVG with the line, the limits and the shaded periods."""
    out = os.path.join(store, "chart.svg")
    r = subprocess.run([PLUME, "chart", KEY, "--db", store, "--registry", REGISTRY, "--out", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, "plume chart runs", r.stderr)
    svg = open(out).read() if r.returncode == 0 else ""
    check(svg.startswith("<?xml") and svg.rstrip().endswith("</svg>"), "an SVG document")
    check("limit 50" in svg and "limit 35" in svg, "both limits drawn")
    check("exceedance (3)" in svg and "invalid data (1)" in svg, "periods shaded and counted")
    check("Example Power Plant No. 1" in svg and "mg/m3" in svg and "UTC+8" in svg,
          "title, unit and local time")
    check(svg.count("fill='#e5393540'/>") == 4, "three exceedance areas and the legend's")
    r = subprocess.run([PLUME, "chart", "nope:x:hour", "--db", store, "--out", out],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "no such series" in r.stderr, "plume chart unknown key", r.stderr)
    r = subprocess.run([PLUME, "chart", KEY, "--db", store, "--out", "-", "--from",
                        "2023-11-15T00:00:00", "--to", "2023-11-15T12:00:00", "--width", "400"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "width='400'" in r.stdout and "limit" not in r.stdout.split(
          "</text>")[0], "plume chart range, width, stdout, registry from the store", r.stderr)


def run(port, c2, c3):
    # TS.QUERYINDEX
    r = c2.cmd("TS.QUERYINDEX", "pollutant=a21026")
    check(sorted(r) == ["010000A89000:a21026:hour", "DEMO:a21026:hour"], "queryindex", r)
    r = c2.cmd("TS.QUERYINDEX", "region=350100")
    check(r == [KEY], "queryindex by a registry label", r)
    r = c2.cmd("TS.QUERYINDEX", "pollutant=(no2,a21026)", "facility=")
    check(sorted(r) == ["DEMO:a21026:hour", "Dongsi.no2"], "queryindex absent label", r)
    r = c2.cmd("TS.QUERYINDEX", "pollutant!=a21026")
    check(isinstance(r, Err) and "label=value" in r, "queryindex needs a positive matcher", r)
    r = c3.cmd("TS.QUERYINDEX", "station=Dongsi")
    check(r == ["Dongsi.no2"], "queryindex RESP3 set", r)

    # TS.MGET
    r = c2.cmd("TS.MGET", "FILTER", "pollutant=a21026")
    byk = {e[0]: e for e in r}
    check(byk[KEY][1] == [] and byk[KEY][2] == [T0 + 47 * H, "30"], "mget", r)
    check(byk["DEMO:a21026:hour"][2] == [T0 + 47 * H, "47"], "mget demo", r)
    r = c2.cmd("TS.MGET", "SELECTED_LABELS", "outlet", "uscc", "FILTER", "mn=010000A89000")
    check(r == [[KEY, [["outlet", "DA001"], ["uscc", "91350100M000100Y43"]],
                 [T0 + 47 * H, "30"]]], "mget selected labels", r)
    r = c3.cmd("TS.MGET", "WITHLABELS", "FILTER", "station=Dongsi")
    check(r == {"Dongsi.no2": [{"station": "Dongsi", "pollutant": "no2", "city": "beijing"},
                               [T0 + 23 * H, 33.0]]}, "mget RESP3", r)
    r = c2.cmd("TS.MGET", "WITHLABELS", "SELECTED_LABELS", "a", "FILTER", "a=b")
    check(isinstance(r, Err), "mget WITHLABELS with SELECTED_LABELS refused", r)
    r = c2.cmd("TS.MGET", "FILTER")
    check(isinstance(r, Err), "mget without expressions refused", r)

    # TS.MRANGE / TS.MREVRANGE
    r = c2.cmd("TS.MRANGE", T0, T0 + 2 * H, "FILTER", "pollutant=(a21026,no2)")
    byk = {e[0]: e[2] for e in r}
    check(byk == {"DEMO:a21026:hour": [[T0, "0"], [T0 + H, "1"], [T0 + 2 * H, "2"]],
                  KEY: [[T0, "30"], [T0 + H, "30"], [T0 + 2 * H, "30"]],
                  "Dongsi.no2": [[T0, "10"], [T0 + H, "11"], [T0 + 2 * H, "12"]]},
          "mrange raw", r)
    r = c2.cmd("TS.MREVRANGE", "-", "+", "COUNT", 2, "FILTER", "station=Dongsi")
    check(r == [["Dongsi.no2", [], [[T0 + 23 * H, "33"], [T0 + 22 * H, "32"]]]],
          "mrevrange count", r)
    r = c2.cmd("TS.MRANGE", "-", "+", "AGGREGATION", "max", 24 * H, "FILTER", f"mn=010000A89000")
    check(r == [[KEY, [], [[T0, "60"], [T0 + 24 * H, "80"]]]], "mrange aggregation", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "WITHLABELS", "FILTER", "mn=DEMO")
    check(r[0][1][0] == ["mn", "DEMO"] and ["column", "avg"] in r[0][1], "mrange withlabels", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "FILTER", "pollutant=a21026", "GROUPBY", "pollutant",
               "REDUCE", "sum")
    check(len(r) == 1 and r[0][0] == "pollutant=a21026" and r[0][2] == [[T0, "30"],
          [T0 + H, "31"]], "mrange groupby sum", r)
    lab = dict(tuple(p) for p in r[0][1])
    check(lab.get("__reducer__") == "sum" and
          sorted(lab.get("__source__", "").split(",")) == [KEY, "DEMO:a21026:hour"],
          "groupby labels", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "FILTER", "pollutant=(a21026,no2)", "GROUPBY",
               "pollutant", "REDUCE", "max")
    check(len(r) == 2, "groupby two groups", r)
    r = c3.cmd("TS.MRANGE", T0, T0, "FILTER", "mn=DEMO")
    check(r == {"DEMO:a21026:hour": [{}, [[T0, 0.0]]]}, "mrange RESP3", r)
    r = c2.cmd("TS.MRANGE", T0, T0, "FILTER", "mn=DEMO", "GROUPBY", "mn", "REDUCE", "median")
    check(isinstance(r, Err), "unknown reducer refused", r)
    r = c2.cmd("TS.MRANGE", T0, T0, "FILTER", "mn=DEMO", "GROUPBY", "mn")
    check(isinstance(r, Err), "GROUPBY without REDUCE refused", r)
    r = c2.cmd("TS.MRANGE", T0, T0, "AGGREGATION", "foo", 10, "FILTER", "mn=DEMO")
    check(isinstance(r, Err), "bad range option refused", r)

    # TS.INFO
    r = pairs(c2.cmd("TS.INFO", KEY))
    check(r["totalSamples"] == 48 and r["firstTimestamp"] == T0 and
          r["lastTimestamp"] == T0 + 47 * H, "ts.info", r)
    check(["outlet", "DA001"] in r["labels"], "ts.info labels", r)
    r = c3.cmd("TS.INFO", "Dongsi.no2")
    check(r["totalSamples"] == 24 and r["labels"]["city"] == "beijing", "ts.info RESP3", r)
    check(isinstance(c2.cmd("TS.INFO", "nope"), Err), "ts.info unknown key", None)

    # CEMS.CHART
    r = pairs(c2.cmd("CEMS.CHART", KEY, "-", "+", 1000))
    check(r["key"] == KEY and r["unit"] == "mg/m3" and r["bucket"] == 170000,
          "chart head", r)
    check(len(r["points"]) == 48 and r["points"][5] == [T0 + 5 * H, "60"], "chart points",
          r["points"][:6])
    split = 1699977600 * 1000  # 2023-11-15T00:00 in UTC+8
    check(r["limits"] == [[T0, split, "50"], [split, T0 + 47 * H + 1000, "35"]],
          "chart limits", r["limits"])
    check(r["exceedances"] == [[T0 + 5 * H, T0 + 7 * H, "60"], [T0 + 20 * H, T0 + 20 * H, "40"],
                               [T0 + 40 * H, T0 + 41 * H, "45"]], "chart exceedances",
          r["exceedances"])
    r = c3.cmd("CEMS.CHART", KEY, T0, T0 + 47 * H, 4)
    pts = r["points"]
    check(r["bucket"] == 42301000 and len(pts) <= 16 and [T0 + 30 * H, 80.0] in pts and
          [T0 + 5 * H, 60.0] in pts and pts[0] == [T0, 30.0] and pts[-1] == [T0 + 47 * H, 30.0],
          "chart M4 at 4 px (RESP3)", r)
    check(len(r["exceedances"]) == 3, "exceedances independent of width", r["exceedances"])
    r = pairs(c2.cmd("CEMS.CHART", "DEMO:a21026:hour", T0, T0 + 3 * H, 2))
    check(r["unit"] is None and r["limits"] == [] and r["exceedances"] == [] and
          r["points"] == [[T0, "0"], [T0 + H, "1"], [T0 + 2 * H, "2"], [T0 + 3 * H, "3"]],
          "chart without a limit", r)
    check(isinstance(c2.cmd("CEMS.CHART", KEY, "-", "+", 0), Err), "chart width 0 refused")
    check(isinstance(c2.cmd("CEMS.CHART", KEY, "x", "+", 10), Err), "chart bad time refused")
    check(isinstance(c2.cmd("CEMS.CHART", "nope", "-", "+", 10), Err), "chart unknown key")

    # CEMS.TABLE
    r = c2.cmd("CEMS.TABLE", KEY, T0 + 4 * H, T0 + 5 * H)
    check(r == [[T0 + 4 * H, "30", "50", "N", None], [T0 + 5 * H, "60", "50", "N", "0.2"]],
          "table rows", r)
    r = c3.cmd("CEMS.TABLE", KEY, T0 + 30 * H, T0 + 30 * H)
    check(r == [[T0 + 30 * H, 80.0, 35.0, "F", None]], "table flagged row (RESP3)", r)
    r = c2.cmd("CEMS.TABLE", KEY, "-", "+")
    check(len(r) == 48, "table whole range", len(r))

    # CEMS.LATEST
    r = c2.cmd("CEMS.LATEST", "FILTER", "facility=F001")
    check(r == [[KEY, T0 + 47 * H, "30", "N", "35", "mg/m3"]], "latest filtered", r)
    r = c2.cmd("CEMS.LATEST")
    check(len(r) == 2, "latest all registered-pattern series", r)
    check(isinstance(c2.cmd("CEMS.LATEST", "mn=x"), Err), "latest without FILTER word")

    # CEMS.FACILITY
    for q, want in [("Paper", ["F002"]), ("91350100M000100Y43", ["F001"]),
                    ("010000A89000", ["F001"]), ("3501", ["F001"]), ("11", ["F002"]),
                    ("Example", ["F001", "F002"]), ("nothing", [])]:
        r = c2.cmd("CEMS.FACILITY", q)
        got = sorted(pairs(e)["id"] for e in r)
        check(got == want, f"facility search {q}", r)
    r = c3.cmd("CEMS.FACILITY", "Power")
    check(r[0]["outlets"] == [["DA001", "010000A89000", "gas"]] and r[0]["region"] == "350100",
          "facility RESP3", r)

    # CEMS.DAILY: 2023-11-14 local holds the first 16 hours (16 valid: invalid day);
    # 2023-11-15 holds 24 hours, one flagged F: 23 valid, valid day.
    r = c2.cmd("CEMS.DAILY", "2023-11-15", "FILTER", "mn=010000A89000")
    d = pairs(r[0]) if len(r) == 1 else {}
    vals = [30] * 24
    vals[20 - 16] = 40
    del vals[30 - 16]
    check(d.get("valid") == 1 and d.get("valid_hours") == 23 and d.get("hours") == 24 and
          abs(float(d.get("value", 0)) - sum(vals) / 23) < 1e-9 and d.get("flag") == "N",
          "daily valid day (limit basis measured: avg; no day limit)", r)
    r = c3.cmd("CEMS.DAILY", str(T0), "FILTER", "mn=010000A89000")
    check(len(r) == 1 and r[0]["valid"] is False and r[0]["valid_hours"] == 16 and
          r[0]["limit"] is None and r[0]["exceeds"] is False, "daily short day (RESP3)", r)
    r = c2.cmd("CEMS.DAILY", "2023-11-15")
    check(len(r) == 2, "daily of every hourly series", r)
    check(isinstance(c2.cmd("CEMS.DAILY", "2023-13-01"), Err), "daily bad day refused")
    check(isinstance(c2.cmd("CEMS.DAILY", "2023-11-15", "mn=x"), Err), "daily without FILTER")

    # CEMS.EXCEEDANCES: the engine's detector over the stored hours.
    r = [pairs(e) for e in c2.cmd("CEMS.EXCEEDANCES", "-", "+")]
    got = [(e["start"], e["end"], e["hours"], e["peak"], e["limit"]) for e in r]
    check(got == [(T0 + 5 * H, T0 + 7 * H, 3, "60", "50"), (T0 + 20 * H, T0 + 20 * H, 1, "40", "35"),
                  (T0 + 40 * H, T0 + 41 * H, 2, "45", "35")], "exceedance episodes", got)
    check(all(len(e["id"]) == 16 for e in r) and r[0]["multiple"] == "0.2", "episode ids", r)
    r = c3.cmd("CEMS.EXCEEDANCES", T0, T0 + 10 * H, "FILTER", "region=350100")
    check(len(r) == 1 and r[0]["hours"] == 3 and r[0]["peak"] == 60.0, "exceedances RESP3", r)
    r = c2.cmd("CEMS.EXCEEDANCES", T0, T0 + 10 * H, "FILTER", "region=110105")
    check(r == [], "exceedances elsewhere: none", r)
    check(isinstance(c2.cmd("CEMS.EXCEEDANCES", T0 + H, T0), Err), "exceedances from > to")

    pubsub(port)

    # redis-cli, as PROTOCOL.md's examples are run.
    if REDIS_CLI:
        out = subprocess.run([REDIS_CLI, "-p", str(port), "CEMS.CHART", KEY, "-", "+", "1000"],
                             capture_output=True, text=True).stdout.split("\n")
        check(out[:2] == ["key", KEY] and "exceedances" in out, "redis-cli CEMS.CHART", out[:8])
        out = subprocess.run([REDIS_CLI, "-p", str(port), "TS.QUERYINDEX", "outlet=DA001"],
                             capture_output=True, text=True).stdout.split()
        check(out == [KEY], "redis-cli TS.QUERYINDEX", out)
    else:
        global n_checks
        n_checks += 1
        print(f"ok {n_checks} - redis-cli # SKIP not installed")


main()
