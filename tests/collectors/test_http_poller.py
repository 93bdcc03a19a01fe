#!/usr/bin/env python3
"""The HTTP poller end to end: `plume sim --http` serves a small fleet as JSON endpoints on
127.0.0.1 (port 0), a failing platform written here answers 500, never in time, or with bad
JSON, and `plume serve` polls both from a sources file. Checks that the stored points equal
what the simulator serves (every column and flag), that re-polling the same windows (paged
and conditional) stores nothing twice, that the failing sources are down with their errors
and cost the others nothing, that their state is read with redis-cli (CEMS.SOURCES), that a
SIGHUP reload keeps the states, and that a restart resumes from the stored cursor.

usage: test_http_poller.py PLUME"""
import atexit
import calendar
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check  # noqa: E402

PLUME = pt.init(sys.argv[1])
FACILITIES = 6


def redis(port, *args):
    return pt.redis_cli(port, *args).splitlines()


def sources_state(port, *args):
    """CEMS.SOURCES through redis-cli: {name: {field: value}}."""
    lines = redis(port, "CEMS.SOURCES", *args)
    out, cur = {}, None
    for k, v in zip(lines[0::2], lines[1::2]):
        if k == "name":
            cur = out.setdefault(v, {})
        elif cur is not None:
            cur[k] = v
    return out


def ts_range(port, key, start, end):
    lines = redis(port, "TS.RANGE", key, str(start * 1000), str(end * 1000 - 1))
    return [(int(a) // 1000, float(b)) for a, b in zip(lines[0::2], lines[1::2])]


def wait_for(what, fn, timeout=60):
    v = pt.wait_until(fn, timeout, 0.3)
    if not v:
        check(False, "in time: " + what)
        return None
    return v


class FailingPlatform(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/500"):
            body, code = b'{"code":500}', 500
        elif self.path.startswith("/slow"):
            time.sleep(4)
            body, code = b'{"data":{"records":[]}}', 200
        else:
            body, code = b'{"data":{"records":[{"mn":', 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *a):
        pass


def start_sim(tmp):
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600 - 86400))
    p = subprocess.Popen([PLUME, "sim", "--facilities", str(FACILITIES), "--start", day,
                          "--days", "3", "--registry-out", tmp, "--http", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, text=True)
    atexit.register(p.kill)
    port = json.loads(p.stdout.readline())["http_port"]
    return p, port


def serve(db, sources, *extra):
    """plume serve polling the HTTP sources file (no HJ 212 listener, no metrics page)."""
    return pt.Serve(db, "--metrics.listen=", "--http.sources", sources, "--http.catchup", "0",
                    *extra, hj212=False)


def fetch_window(port, fid, begin, end):
    """Every record the simulator serves for a facility's window, all pages."""
    recs, page = [], 1
    while True:
        q = "begin=%d&end=%d&page=%d&size=500" % (begin, end, page)
        with urllib.request.urlopen("http://127.0.0.1:%d/facilities/%s/hourly?%s" %
                                    (port, fid, q), timeout=10) as r:
            d = json.loads(r.read())["data"]
        recs += d["records"]
        if page >= d["pages"]:
            return recs
        page += 1


def main():
    tmp = tempfile.mkdtemp(prefix="plume-http-")
    atexit.register(shutil.rmtree, tmp, True)
    sim, sport = start_sim(tmp)
    fail_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailingPlatform)
    fail_srv.daemon_threads = True
    threading.Thread(target=fail_srv.serve_forever, daemon=True).start()
    fport = fail_srv.server_address[1]

    common = {
        "url": "http://127.0.0.1:%d/facilities/{facility}/hourly?begin={from}&end={to}"
               "&page={page}&size={page_size}" % sport,
        "interval": "3s", "lag": "0s", "lookback": "6h", "overlap": "3h",
        "window_format": "%Y-%m-%dT%H:%M:%S", "timeout": "10s", "retry_base": "1s",
        "retry_max": "2s",
        "mapping": {"records": "data.records", "mn": "mn", "code": "code", "time": "time",
                    "time_format": "%Y-%m-%d %H:%M:%S", "value": "avg", "flag": "flag",
                    "columns": {"min": "min", "max": "max", "zsavg": "zs_avg",
                                "zsmin": "zs_min", "zsmax": "zs_max", "cou": "cou"}},
        "paging": {"size": 500, "pages": "data.pages"},
    }
    fids = ["F%06d" % i for i in range(1, FACILITIES + 1)]
    sources = [{"name": f, "vars": {"facility": f}} for f in fids[:-2]]
    # two facilities through small pages: a window takes several requests
    sources += [{"name": f, "vars": {"facility": f}, "paging": {"size": 7}} for f in fids[-2:]]
    bad = {"fail500": "/500", "slow": "/slow", "badjson": "/bad"}
    for name, path in bad.items():
        sources.append({"name": name, "url": "http://127.0.0.1:%d%s?b={from}" % (fport, path),
                        "timeout": "1s"})
    sfile = os.path.join(tmp, "sources.json")
    pt.write_json(sfile, {"defaults": common, "sources": sources})
    db = os.path.join(tmp, "db")
    srv = serve(db, sfile)
    check(srv.qport is not None, "plume serve starts with an HTTP sources file")
    if not srv.qport:
        print(srv.text())
        return

    def settled():
        st = sources_state(srv.qport)
        ok = all(st.get(f, {}).get("state") == "up" and int(st[f].get("polls", 0)) >= 3
                 for f in fids)
        down = all(st.get(b, {}).get("state") == "down" for b in bad)
        return st if ok and down else None

    st = wait_for("every source polled three times", settled, 90)
    if not st:
        print("# " + "# ".join(srv.lines[-30:]))
        return
    check(len(st) == len(fids) + len(bad), "CEMS.SOURCES lists every source")
    check("HTTP 500" in st["fail500"]["last_error"], "a 500 is the source's error: " +
          st["fail500"]["last_error"])
    check("no answer within 1000 ms" in st["slow"]["last_error"],
          "a platform that never answers times out: " + st["slow"]["last_error"])
    check("bad JSON" in st["badjson"]["last_error"], "bad JSON is the source's error: " +
          st["badjson"]["last_error"])
    check(all(int(st[b]["consecutive_failures"]) >= 1 and "since" in st[b] for b in bad),
          "failing sources are down, with since and a failure count")
    check(all(int(st[f]["failures"]) == 0 for f in fids),
          "the failing sources cost the others nothing")
    down = sources_state(srv.qport, "*", "STATE", "down")
    check(sorted(down) == sorted(bad), "CEMS.SOURCES * STATE down names the failing ones")
    check(sorted(sources_state(srv.qport, "F00000[12]")) == ["F000001", "F000002"],
          "CEMS.SOURCES takes a glob")

    # What is stored equals what the simulator serves, column by column, once each.
    cursor = min(calendar.timegm(time.strptime(st[f]["cursor"], "%Y-%m-%dT%H:%M:%SZ"))
                 for f in fids)
    begin, end = cursor - 5 * 3600, cursor
    cols = {"avg": "", "min": ":min", "max": ":max", "zs_avg": ":zsavg", "zs_min": ":zsmin",
            "zs_max": ":zsmax", "cou": ":cou"}
    served = stored_ok = dup = 0
    mismatches = []
    for fid in fids:
        recs = fetch_window(sport, fid, begin, end)
        by_series = {}
        for r in recs:
            by_series.setdefault((r["mn"], r["code"]), []).append(r)
        for (mn, code), rs in by_series.items():
            key = "%s:%s:hour" % (mn, code)
            for col, suffix in cols.items():
                want = [(calendar.timegm(time.strptime(r["time"], "%Y-%m-%d %H:%M:%S"))
                         - 8 * 3600, float(r[col])) for r in rs if col in r]
                if not want:
                    continue
                got = ts_range(srv.qport, key + suffix, begin, end)
                served += len(want)
                if got == sorted(want):
                    stored_ok += len(want)
                else:
                    dup += len(got) > len(want)
                    mismatches.append((key + suffix, got[:3], sorted(want)[:3]))
    check(served > FACILITIES * 5 * 6 * 3 and stored_ok == served,
          "stored points equal the simulator's records (%d of %d values)" % (stored_ok, served))
    check(dup == 0, "nothing stored twice after %s polls of overlapping windows" %
          min(int(st[f]["polls"]) for f in fids))
    for m in mismatches[:3]:
        print("#   mismatch %s got %s want %s" % m)
    flags = redis(srv.qport, "TS.RANGE", "%s:%s:hour" % (recs[0]["mn"], recs[0]["code"]),
                  str(begin * 1000), str(end * 1000 - 1), "COUNT", "1")
    check(len(flags) == 2, "TS.RANGE reads a polled series")

    with urllib.request.urlopen("http://127.0.0.1:%d/stats" % sport, timeout=10) as r:
        sstats = json.loads(r.read())
    check(sstats["http_not_modified"] > 0,
          "repeated one-page windows are asked conditionally (%d answered 304)" %
          sstats["http_not_modified"])
    check(sstats["http_max_open"] <= 64, "connections stay within the cap (%d open at most)" %
          sstats["http_max_open"])

    # SIGHUP reload: a source added, states kept by name.
    before = sources_state(srv.qport, "F000001")["F000001"]
    sources.append({"name": "late", "vars": {"facility": fids[0]}})
    pt.write_json(sfile, {"defaults": common, "sources": sources})
    srv.p.send_signal(signal.SIGHUP)
    st2 = wait_for("the added source polled after SIGHUP",
                   lambda: (lambda s: s if s.get("late", {}).get("state") == "up" else None)(
                       sources_state(srv.qport)), 30)
    if st2:
        check(int(st2["F000001"]["polls"]) >= int(before["polls"]) and
              st2["F000001"]["since"] == before["since"],
              "a reload keeps each source's state")
    check(srv.stop() == 0, "plume serve stops cleanly")

    # A restart resumes from the stored cursor: the states come back from the store.
    srv = serve(db, sfile, "--http.catchup", "0")
    st3 = sources_state(srv.qport, "F000002")
    check(st3.get("F000002", {}).get("cursor") == st["F000002"]["cursor"] or
          st3.get("F000002", {}).get("cursor", "") > st["F000002"]["cursor"],
          "states survive a restart")
    check(int(st3.get("F000002", {}).get("records", 0)) >= int(st["F000002"]["records"]),
          "record counts survive a restart")
    check(srv.stop() == 0, "the restarted serve stops cleanly")
    sim.send_signal(signal.SIGTERM)
    out = sim.communicate(timeout=30)[0]
    check(sim.returncode == 0 and '"http_requests"' in out, "plume sim --http stops on SIGTERM")
    fail_srv.shutdown()


if __name__ == "__main__":
    try:
        main()
    finally:
        print("1..%d" % pt.n_checks)
    sys.exit(1 if pt.n_failed else 0)
