#!/usr/bin/env python3
"""test_cems.py: the multi-series (TS.MRANGE, TS.MREVRANGE, TS.MGET, TS.QUERYINDEX, TS.INFO)
and domain (CEMS.*) commands end to end, on the real daemon.

The store is made the way an operator makes it: `plume registry import` loads
tests/query/registry.json and `plume import` loads the points below. Then a real
`plume serve` (query and HJ 212 listeners on 127.0.0.1, port 0, a query token) answers every
command, in RESP2 and RESP3, over raw sockets (Python standard library) and through
redis-cli, which drives every command query/PROTOCOL.md lists. An HJ 212 device then sends
an hour over the limit: the alert must reach SUBSCRIBE/PSUBSCRIBE clients (raw and
redis-cli), and the cached chart of that series must show the new point.

The points: DEMO:a21026:hour (48 hourly points, value i), 010000A89000:a21026:hour (48
hourly points of 30 with exceedances at hours 5-7, 20 and 40-41 and an 80 flagged F at
hour 30; limit 50 until 2023-11-15 local time, 35 after) and Dongsi.no2 (24 points 10 + i,
a series imported under its own name). `plume chart` runs on the same store (opened
read-only while the server runs).
Usage: test_cems.py PLUME REGISTRY_JSON [REDIS_CLI]
"""
import os
import json
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, skip  # noqa: E402

PLUME, REGISTRY = pt.init(sys.argv[1]), sys.argv[2]
REDIS_CLI = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None

T0 = 1699920000 * 1000
H = 3600 * 1000
KEY = "010000A89000:a21026:hour"
TOKEN = "s3cret-token"
Err = pt.RespError


def Conn(port, proto=2):
    """A RESP connection with the query token: AUTH in RESP2, HELLO 3 AUTH in RESP3."""
    return pt.Resp(port, proto=proto, token=TOKEN)


def pairs(flat):
    """A RESP2 flat map as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


def seed(tmp):
    """A store made with the operator's tools: the registry, then the points as CSV."""
    db = os.path.join(tmp, "db")
    r = subprocess.run([PLUME, "registry", "import", "--db", db, REGISTRY],
                       capture_output=True, text=True)
    check(r.returncode == 0 and '"facilities":2' in r.stdout.replace(" ", ""),
          "plume registry import", r.stdout + r.stderr)
    rows = []
    for i in range(48):
        rows.append(f"DEMO:a21026:hour,{T0 // 1000 + i * 3600},{i},N")
        v = 60 if 5 <= i <= 7 else 40 if i == 20 else 80 if i == 30 else \
            45 if i in (40, 41) else 30
        rows.append(f"{KEY},{T0 // 1000 + i * 3600},{v},{'F' if i == 30 else 'N'}")
    for i in range(24):
        rows.append(f"Dongsi.no2,{T0 // 1000 + i * 3600},{10 + i}")
    csv = os.path.join(tmp, "points.csv")
    with open(csv, "w") as f:
        f.write("\n".join(rows) + "\n")
    r = subprocess.run([PLUME, "import", "--db", db, csv], capture_output=True, text=True)
    check(r.returncode == 0 and '"points":120' in r.stdout.replace(" ", ""), "plume import",
          r.stdout + r.stderr)
    return db


def serve(db, sock):
    """`plume serve` on 127.0.0.1 with port 0 for queries and HJ 212, a Unix socket and a
    query token."""
    return pt.Serve(db, "--query.unix", sock, "--query.token", TOKEN)


def main():
    tmp = tempfile.mkdtemp(prefix="plume-cems-")
    srv = None
    try:
        db = seed(tmp)
        srv = serve(db, os.path.join(tmp, "q.sock"))
        check(srv.qport and srv.port, "plume serve listens (query and HJ 212)", srv.text())
        c2, c3 = Conn(srv.qport), Conn(srv.qport, 3)
        run(srv.qport, c2, c3)
        chart(db)
        if REDIS_CLI:
            redis_cli_all(srv.qport, os.path.join(tmp, "q.sock"))
        else:
            skip("redis-cli drives every command", "redis-cli not installed")
        live(srv, c2, c3)
    finally:
        if srv:
            rc = srv.stop()
            check(rc == 0, "the server exits cleanly", "".join(srv.lines[-20:]))
        subprocess.run(["rm", "-rf", tmp])
    pt.finish()


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
    check(r == ["DEMO:a21026:hour"], "queryindex absent label", r)
    r = c2.cmd("TS.QUERYINDEX", "pollutant!=a21026")
    check(isinstance(r, Err) and "label=value" in r, "queryindex needs a positive matcher", r)
    r = c3.cmd("TS.QUERYINDEX", "mn=DEMO")
    check(r == ["DEMO:a21026:hour"], "queryindex RESP3 set", r)

    # TS.MGET
    r = c2.cmd("TS.MGET", "FILTER", "pollutant=a21026")
    byk = {e[0]: e for e in r}
    check(byk[KEY][1] == [] and byk[KEY][2] == [T0 + 47 * H, "30"], "mget", r)
    check(byk["DEMO:a21026:hour"][2] == [T0 + 47 * H, "47"], "mget demo", r)
    r = c2.cmd("TS.MGET", "SELECTED_LABELS", "outlet", "uscc", "FILTER", "mn=010000A89000")
    check(r == [[KEY, [["outlet", "DA001"], ["uscc", "91350100M000100Y43"]],
                 [T0 + 47 * H, "30"]]], "mget selected labels", r)
    r = c3.cmd("TS.MGET", "WITHLABELS", "FILTER", "mn=DEMO")
    check(r == {"DEMO:a21026:hour": [{"mn": "DEMO", "registered": "no", "pollutant": "a21026",
                                      "interval": "hour", "column": "avg"},
                                     [T0 + 47 * H, 47.0]]}, "mget RESP3", r)
    r = c2.cmd("TS.QUERYINDEX", "registered=no")
    check(r == ["DEMO:a21026:hour"], "unregistered devices' series are labelled", r)
    r = c3.cmd("TS.GET", "Dongsi.no2")
    check(r == [T0 + 23 * H, 33.0], "ts.get of a series imported under its own name", r)
    r = c2.cmd("TS.MGET", "WITHLABELS", "SELECTED_LABELS", "a", "FILTER", "a=b")
    check(isinstance(r, Err), "mget WITHLABELS with SELECTED_LABELS refused", r)
    r = c2.cmd("TS.MGET", "FILTER")
    check(isinstance(r, Err), "mget without expressions refused", r)

    # TS.MRANGE / TS.MREVRANGE
    r = c2.cmd("TS.MRANGE", T0, T0 + 2 * H, "FILTER", "pollutant=(a21026,no2)")
    byk = {e[0]: e[2] for e in r}
    check(byk == {"DEMO:a21026:hour": [[T0, "0"], [T0 + H, "1"], [T0 + 2 * H, "2"]],
                  KEY: [[T0, "30"], [T0 + H, "30"], [T0 + 2 * H, "30"]]},
          "mrange raw", r)
    r = c2.cmd("TS.MREVRANGE", "-", "+", "COUNT", 2, "FILTER", "mn=DEMO")
    check(r == [["DEMO:a21026:hour", [], [[T0 + 47 * H, "47"], [T0 + 46 * H, "46"]]]],
          "mrevrange count", r)
    r = c2.cmd("TS.MRANGE", "-", "+", "AGGREGATION", "max", 24 * H, "FILTER", f"mn=010000A89000")
    check(r == [[KEY, [], [[T0, "60"], [T0 + 24 * H, "80"]]]], "mrange aggregation", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "WITHLABELS", "FILTER", "mn=DEMO")
    check(r[0][1][0] == ["mn", "DEMO"] and ["column", "avg"] in r[0][1], "mrange withlabels", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "FILTER", "pollutant=a21026", "GROUPBY", "pollutant",
               "REDUCE", "sum")
    check(len(r) == 1 and r[0][0] == "pollutant=a21026" and r[0][1] == [] and
          r[0][2] == [[T0, "30"], [T0 + H, "31"]], "mrange groupby sum", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "WITHLABELS", "FILTER", "pollutant=a21026", "GROUPBY",
               "pollutant", "REDUCE", "sum")
    lab = dict(tuple(p) for p in r[0][1])
    check(lab.get("pollutant") == "a21026" and lab.get("__reducer__") == "sum" and
          sorted(lab.get("__source__", "").split(",")) == [KEY, "DEMO:a21026:hour"],
          "groupby labels (WITHLABELS)", r)
    r = c3.cmd("TS.MRANGE", T0, T0 + H, "WITHLABELS", "FILTER", "pollutant=a21026", "GROUPBY",
               "pollutant", "REDUCE", "sum")
    g = r.get("pollutant=a21026", [])
    check(len(g) == 4 and g[0] == {"pollutant": "a21026"} and g[1] == {"reducers": ["sum"]} and
          sorted(g[2].get("sources", [])) == [KEY, "DEMO:a21026:hour"] and
          g[3] == [[T0, 30.0], [T0 + H, 31.0]],
          "groupby RESP3: labels, reducers, sources, samples", r)
    r = c2.cmd("TS.MRANGE", T0, T0 + H, "FILTER", "pollutant=a21026", "GROUPBY",
               "mn", "REDUCE", "max")
    check(sorted(g[0] for g in r) == ["mn=010000A89000", "mn=DEMO"], "groupby two groups", r)
    r = c3.cmd("TS.MRANGE", T0, T0, "FILTER", "mn=DEMO")
    check(r == {"DEMO:a21026:hour": [{}, {"aggregators": []}, [[T0, 0.0]]]}, "mrange RESP3", r)
    r = c3.cmd("TS.MREVRANGE", T0, T0 + 3 * H, "SELECTED_LABELS", "mn", "AGGREGATION", "max",
               2 * H, "FILTER", "mn=DEMO")
    check(r == {"DEMO:a21026:hour": [{"mn": "DEMO"}, {"aggregators": ["max"]},
                                     [[T0 + 2 * H, 3.0], [T0, 1.0]]]},
          "mrevrange RESP3 with aggregation and selected labels", r)
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
    check(r["totalSamples"] == 24 and r["labels"] == {} and r["lastTimestamp"] == T0 + 23 * H,
          "ts.info RESP3", r)
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
    r = c3.cmd("CEMS.CHART", KEY, "-", "+", 1000, "FORMAT", "JSON")
    j = json.loads(r) if isinstance(r, str) and not isinstance(r, Err) else {}
    check(j.get("key") == KEY and j.get("unit") == "mg/m3" and j.get("bucket") == 170000 and
          len(j.get("points", [])) == 48 and j["points"][5] == [T0 + 5 * H, 60] and
          j.get("limits") == [[T0, split, 50], [split, T0 + 47 * H + 1000, 35]] and
          j.get("exceedances") == [[T0 + 5 * H, T0 + 7 * H, 60], [T0 + 20 * H, T0 + 20 * H, 40],
                                   [T0 + 40 * H, T0 + 41 * H, 45]],
          "chart FORMAT JSON: the same chart as one JSON document", r)
    r = c2.cmd("CEMS.CHART", KEY, "-", "+", 1000, "FORMAT", "XML")
    check(isinstance(r, Err) and "FORMAT" in r, "chart unknown format refused", r)
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


def cli(port, *args, proto=2, stdin=None, sock=None):
    """redis-cli with the token; its output (one value per line, as when piped)."""
    return pt.redis_cli(port, *args, proto=proto, token=TOKEN, sock=sock, stdin=stdin,
                        exe=REDIS_CLI)


def redis_cli_all(port, sock):
    """redis-cli drives every command PROTOCOL.md lists, as its examples are pasted."""
    out = cli(port, "PING")
    check(out == "PONG\n", "redis-cli PING", out)
    out = cli(port, "ECHO", "hello plume")
    check(out == "hello plume\n", "redis-cli ECHO", out)
    out = cli(port, "HELLO", "3", "SETNAME", "chart-app", proto=3)
    check("server plume\n" in out and "proto 3\n" in out, "redis-cli -3 HELLO", out)
    out = cli(port, stdin=f"AUTH default {TOKEN}\nSELECT 0\nCLIENT SETNAME chart-app\n"
                          "CLIENT GETNAME\nCLIENT SETINFO LIB-NAME plume-test\nCLIENT ID\n"
                          "CLIENT INFO\nCLIENT LIST\n")
    lines = out.split("\n")
    check(lines[:4] == ["OK", "OK", "OK", "chart-app"] and lines[4] == "OK" and
          lines[5].isdigit() and "name=chart-app" in lines[6] and "lib-name=plume-test" in out
          and out.count("name=chart-app") == 2,
          "redis-cli AUTH, SELECT, CLIENT SETNAME/GETNAME/SETINFO/ID/INFO/LIST", out)
    out = cli(port, "QUIT")
    check(out == "OK\n", "redis-cli QUIT", out)
    out = cli(port, "INFO", "stats")
    check("total_commands_processed:" in out and "reply_cache_hits:" in out, "redis-cli INFO",
          out)
    out = cli(port, "COMMAND", "COUNT")
    check(out.strip().isdigit() and int(out) >= 25, "redis-cli COMMAND COUNT", out)
    out = cli(port, "COMMAND", "LIST")
    check("cems.chart" in out.split() and "ts.mrange" in out.split(), "redis-cli COMMAND LIST",
          out)
    out = cli(port, "COMMAND", "INFO", "ts.range")
    check(out.startswith("ts.range\n"), "redis-cli COMMAND INFO", out)
    out = cli(port, "COMMAND", "DOCS", "cems.chart")
    check("summary" in out and "M4" in out, "redis-cli COMMAND DOCS", out)
    out = cli(port, "COMMAND")
    check("cems.table" in out, "redis-cli COMMAND", out[:200])
    out = cli(port, "DBSIZE")
    check(out == "3\n", "redis-cli DBSIZE", out)
    out = cli(port, "TS.GET", KEY, sock=sock)
    check(out == f"{T0 + 47 * H}\n30\n", "redis-cli TS.GET over the Unix socket", out)
    out = cli(port, "TS.RANGE", KEY, T0, T0 + 47 * H, "AGGREGATION", "max", 24 * H)
    check(out.split() == [str(T0), "60", str(T0 + 24 * H), "80"], "redis-cli TS.RANGE", out)
    out = cli(port, "TS.REVRANGE", "Dongsi.no2", "-", "+", "COUNT", 1)
    check(out.split() == [str(T0 + 23 * H), "33"], "redis-cli TS.REVRANGE", out)
    out = cli(port, "TS.MRANGE", T0, T0, "FILTER", "mn=DEMO")
    check(out.split() == ["DEMO:a21026:hour", str(T0), "0"], "redis-cli TS.MRANGE", out)
    out = cli(port, "TS.MREVRANGE", "-", "+", "COUNT", 1, "FILTER", "mn=DEMO")
    check(out.split() == ["DEMO:a21026:hour", str(T0 + 47 * H), "47"],
          "redis-cli TS.MREVRANGE", out)
    out = cli(port, "TS.MGET", "FILTER", "mn=DEMO")
    check(out.split() == ["DEMO:a21026:hour", str(T0 + 47 * H), "47"], "redis-cli TS.MGET",
          out)
    out = cli(port, "TS.QUERYINDEX", "outlet=DA001")
    check(out.split() == [KEY], "redis-cli TS.QUERYINDEX", out)
    out = cli(port, "TS.INFO", KEY)
    check("totalSamples\n48\n" in out and "DA001" in out, "redis-cli TS.INFO", out)
    out = cli(port, "CEMS.CHART", KEY, "-", "+", 1000).split("\n")
    check(out[:2] == ["key", KEY] and "exceedances" in out, "redis-cli CEMS.CHART", out[:8])
    out = cli(port, "CEMS.CHART", KEY, "-", "+", 1000, "FORMAT", "JSON")
    check(out.startswith('{"key":"010000A89000:a21026:hour"'), "redis-cli CEMS.CHART FORMAT JSON",
          out[:80])
    out = cli(port, "CEMS.TABLE", KEY, T0 + 5 * H, T0 + 5 * H)
    check(out.split() == [str(T0 + 5 * H), "60", "50", "N", "0.2"], "redis-cli CEMS.TABLE", out)
    out = cli(port, "CEMS.LATEST", "FILTER", "facility=F001")
    check(out.split() == [KEY, str(T0 + 47 * H), "30", "N", "35", "mg/m3"],
          "redis-cli CEMS.LATEST", out)
    out = cli(port, "CEMS.FACILITY", "Paper")
    check("F002" in out.split() and "Example Paper Mill" in out, "redis-cli CEMS.FACILITY", out)
    out = cli(port, "CEMS.DAILY", "2023-11-15", "FILTER", "mn=010000A89000")
    check("valid_hours\n23\n" in out, "redis-cli CEMS.DAILY", out)
    out = cli(port, "CEMS.EXCEEDANCES", "-", "+", "FILTER", "region=350100")
    check(out.count("\nstart\n") + out.startswith("start\n") == 3 or out.count("start") == 3,
          "redis-cli CEMS.EXCEEDANCES", out)
    out = cli(port, "UNSUBSCRIBE")
    check(out.split() == ["unsubscribe", "0"], "redis-cli UNSUBSCRIBE (none)", out)
    out = cli(port, "PUNSUBSCRIBE")
    check(out.split() == ["punsubscribe", "0"], "redis-cli PUNSUBSCRIBE (none)", out)


def read_lines(proc, n, timeout=20.0):
    """n lines of a redis-cli subscriber's output, waiting up to timeout seconds."""
    got = []
    def reader():
        while len(got) < n:
            line = proc.stdout.readline()
            if not line:
                return
            got.append(line.rstrip("\n"))
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    return got


def info_field(conn, name):
    text = conn.cmd("INFO", "stats")
    m = re.search(name + r":(\d+)", text or "")
    return int(m.group(1)) if m else -1


def live(srv, c2, c3):
    """New data through the real ingest: a device's hour over the limit. Subscribers get the
    alert; the chart the cache holds for that series is computed afresh."""
    port = srv.qport
    chart_args = ("CEMS.CHART", KEY, "-", "+", 1000)
    first = c2.cmd(*chart_args)
    hits = info_field(c2, "reply_cache_hits")
    again = c2.cmd(*chart_args)
    check(again == first and info_field(c2, "reply_cache_hits") == hits + 1,
          "an unchanged chart is answered from the reply cache", (hits, again == first))
    rng = c2.cmd("TS.RANGE", KEY, "-", "+", "COUNT", 100)
    check(len(rng) == 48, "TS.RANGE before the new hour", len(rng))

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
    cli_sub = cli_psub = None
    if REDIS_CLI:
        base = [REDIS_CLI, "-p", str(port), "-a", TOKEN, "--no-auth-warning"]
        cli_sub = subprocess.Popen(base + ["SUBSCRIBE", "alerts"], stdout=subprocess.PIPE,
                                   text=True)
        cli_psub = subprocess.Popen(base + ["PSUBSCRIBE", "alerts.3501*"],
                                    stdout=subprocess.PIPE, text=True)
        check(read_lines(cli_sub, 3) == ["subscribe", "alerts", "1"], "redis-cli SUBSCRIBE")
        check(read_lines(cli_psub, 3) == ["psubscribe", "alerts.3501*", "1"],
              "redis-cli PSUBSCRIBE")

    # The device: the registry's outlet 010000A89000 (limit 35 now), an hour at 80.
    hour = int(time.time()) // 3600 * 3600 - 3600
    dev = pt.Device(srv.port)
    q, pkt = pt.upload("010000A89000", hour, 80, pw="123456")
    dev.send(pkt)
    acks = dev.packets(timeout=20)
    check(len(acks) == 1 and pt.fields(acks[0]).get("QN") == q, "the device's hour is "
          "acknowledged", acks)
    dev.close()
    s2.s.settimeout(30)
    m = s2.reply()
    check(m[:2] == ["message", "alerts"] and '"mn":"010000A89000"' in m[2].replace(" ", "") and
          '"state":"firing"' in m[2].replace(" ", ""), "message on alerts", m)
    m = s3.reply()
    check(m[:2] == ["message", "alerts"], "push on alerts (RESP3)", m)
    m = p2.reply()
    check(m[:3] == ["pmessage", "alerts.3501*", "alerts.350100"], "pmessage by region", m)
    if cli_sub:
        got = read_lines(cli_sub, 3)
        check(got[:2] == ["message", "alerts"] and "010000A89000" in "".join(got),
              "redis-cli SUBSCRIBE receives the alert", got)
        got = read_lines(cli_psub, 4)
        check(got[:3] == ["pmessage", "alerts.3501*", "alerts.350100"],
              "redis-cli PSUBSCRIBE receives the alert", got)
        for p in (cli_sub, cli_psub):
            p.terminate()
            p.wait(10)
    r = s2.cmd("UNSUBSCRIBE", "alerts")
    check(r == ["unsubscribe", "alerts", 1], "unsubscribe one", r)
    r = s2.cmd("UNSUBSCRIBE")
    check(r == ["unsubscribe", "alerts.110105", 0], "unsubscribe all", r)
    check(isinstance(s2.cmd("TS.GET", KEY), list), "commands again after unsubscribing")
    r = p2.cmd("PUNSUBSCRIBE")
    check(r == ["punsubscribe", "alerts.3501*", 0], "punsubscribe all", r)
    r = p2.cmd("PUNSUBSCRIBE")
    check(r == ["punsubscribe", None, 0], "punsubscribe with none", r)

    # The cached replies of that series are stale now: the new hour must show.
    after = pairs(c2.cmd(*chart_args))
    pts = after.get("points", [])
    check(pts and pts[-1] == [hour * 1000, "80"], "the chart after the new hour ends with it",
          pts[-3:])
    check(after.get("exceedances", [])[-1:] == [[hour * 1000, hour * 1000, "80"]],
          "and counts it as an exceedance", after.get("exceedances"))
    rng = c2.cmd("TS.RANGE", KEY, "-", "+", "COUNT", 100)
    check(len(rng) == 49 and rng[-1] == [hour * 1000, "80"], "TS.RANGE shows it too", rng[-2:])
    j = json.loads(c3.cmd("CEMS.CHART", KEY, "-", "+", 1000, "FORMAT", "JSON"))
    check(j["points"][-1] == [hour * 1000, 80], "and the JSON chart", j["points"][-2:])
    other = pairs(c2.cmd("CEMS.CHART", "DEMO:a21026:hour", "-", "+", 1000))
    check(len(other.get("points", [])) == 48, "other series' charts are unchanged", other)

    # A registry reload (SIGHUP) may change limits: charts are computed afresh after it.
    c2.cmd(*chart_args)
    hits, misses = info_field(c2, "reply_cache_hits"), info_field(c2, "reply_cache_misses")
    loaded = srv.count("registry loaded")
    srv.p.send_signal(1)  # SIGHUP
    srv.wait_log("registry loaded", loaded + 1)
    again = pairs(c2.cmd(*chart_args))
    check(again == after and info_field(c2, "reply_cache_hits") == hits and
          info_field(c2, "reply_cache_misses") == misses + 1,
          "after a registry reload the chart is computed afresh",
          (hits, misses, info_field(c2, "reply_cache_hits"), info_field(c2, "reply_cache_misses")))


main()
