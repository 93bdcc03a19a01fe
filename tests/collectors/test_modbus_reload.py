#!/usr/bin/env python3
"""The Modbus configuration reloaded on SIGHUP while `plume serve` polls (127.0.0.1, ports
chosen at run time), against a Modbus TCP server that is not ours (Debian's python3-pymodbus)
serving four unit ids with known float32 values.

- A device added to a gateway starts polling; a gateway added starts; a gateway whose
  devices changed is restarted, its devices keeping their state (same `since`); a gateway
  that did not change keeps its connection (no new connect).
- A template changed (another register address) is planned anew: the readings follow.
- A device removed stops being read and leaves CEMS.SOURCES.
- A file with a mistake is refused with its file and line, and the configuration in force
  stays: the same devices go on being read.
- The counters of the metrics page never go back across reloads; SIGTERM still stops
  cleanly.

usage: test_modbus_reload.py PLUME"""
import json
import os
import re
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, wait_until  # noqa: E402

pt.require_pymodbus()

# unit id -> the float32 values at addresses 0 and 2 (ABCD)
VALUES = {1: (11.5, 12.5), 2: (21.5, 22.5), 3: (31.5, 32.5), 4: (41.5, 42.5)}


def words(*floats):
    out = []
    for f in floats:
        hi, lo = struct.unpack(">HH", struct.pack(">f", f))
        out += [hi, lo]
    return out


def config(port, gateways, address=0):
    """gateways: {name: [(mn, unit), ...]}; every device reads SO2 at `address`."""
    return {"templates": [{"name": "so2", "registers": [
                {"code": "a21026", "address": address, "type": "float32"}]}],
            "gateways": [{"name": name, "tcp": "127.0.0.1:%d" % port, "interval_ms": 300,
                          "devices": [{"mn": mn, "unit": unit, "template": "so2"}
                                      for mn, unit in devs]}
                         for name, devs in gateways.items()]}


def sources(port):
    """CEMS.SOURCES modbus:*: {mn: {field: value}}."""
    rows = pt.query(port, "CEMS.SOURCES", "modbus:*")
    out = {}
    for row in rows if isinstance(rows, list) else []:
        rec = dict(zip(row[0::2], row[1::2]))
        out[rec.get("name", "").split(":", 1)[-1]] = rec
    return out


def latest(port, mn):
    r = pt.query(port, "TS.GET", mn + ":a21026:rtd")
    return (int(r[0]) // 1000, float(r[1])) if isinstance(r, list) and len(r) == 2 else None


def count(port, mn):
    r = pt.query(port, "TS.RANGE", mn + ":a21026:rtd", "-", "+")
    return len(r) if isinstance(r, list) else 0


def metric(port, name):
    m = re.search(r"^%s:(\d+)" % name, pt.redis_cli(port, "INFO", "metrics"), re.M)
    return int(m.group(1)) if m else None


def reload(srv, path, cfg, what):
    """Writes cfg (an object, or text as it is) and sends SIGHUP; the log line it answered."""
    done = srv.count("modbus configuration reloaded") + srv.count("not reloaded")
    if isinstance(cfg, str):
        pt.write_text(path, cfg)
    else:
        pt.write_json(path, cfg)
    srv.p.send_signal(signal.SIGHUP)
    ok = wait_until(lambda: srv.count("modbus configuration reloaded") +
                    srv.count("not reloaded") > done, 30, 0.05)
    check(ok, what + ": the reload is answered in the log")
    lines = [l for l in srv.lines if "modbus configuration" in l and "reload" in l]
    return lines[-1] if lines else ""


def fresh_reading(port, mn, after, timeout=30):
    """A reading of mn stamped after `after` (unix seconds), or None."""
    return wait_until(lambda: (lambda r: r if r and r[0] > after else None)(latest(port, mn)),
                      timeout, 0.1)


def run(tmp):
    mb = pt.ModbusServer({u: {"hr": words(*v)} for u, v in VALUES.items()})
    check(mb.up, "pymodbus server listens")
    cpath = os.path.join(tmp, "modbus.json")
    pt.write_json(cpath, config(mb.port, {"gw1": [("MB-A", 1), ("MB-B", 2)],
                                          "gw2": [("MB-D", 4)]}))
    srv = pt.Serve(os.path.join(tmp, "db"), "--modbus.config", cpath, hj212=False)
    q = srv.qport
    got = {mn: wait_until(lambda: latest(q, mn)) for mn in ("MB-A", "MB-B", "MB-D")}
    check(got["MB-A"] and got["MB-A"][1] == 11.5 and got["MB-B"] and got["MB-B"][1] == 21.5
          and got["MB-D"] and got["MB-D"][1] == 41.5, "the first configuration is polled")
    st0 = wait_until(lambda: (lambda s: s if s.get("MB-A", {}).get("state") == "up" else None)(
        sources(q)))
    check(st0 is not None, "MB-A is up")
    polls0, connects0 = metric(q, "plume_modbus_polls_total"), metric(q, "plume_modbus_connects_total")

    # 1. A device added to gw1 (gw1 changes: restarted), gw2 as it was, a gateway gw3 added.
    t1 = time.time()
    line = reload(srv, cpath, config(mb.port, {"gw1": [("MB-A", 1), ("MB-B", 2), ("MB-C", 3)],
                                               "gw2": [("MB-D", 4)],
                                               "gw3": [("MB-E", 3)]}), "adding")
    check("gateways_kept=1" in line and "gateways_changed=1" in line and
          "gateways_added=1" in line and "devices_added=2" in line and
          "devices_removed=0" in line, "the reload counts what changed", line)
    c = fresh_reading(q, "MB-C", t1)
    check(c is not None and c[1] == 31.5, "an added device starts polling (%r)" % (c,))
    e = fresh_reading(q, "MB-E", t1)
    check(e is not None and e[1] == 31.5, "an added gateway starts polling (%r)" % (e,))
    a = fresh_reading(q, "MB-A", time.time())
    check(a is not None and a[1] == 11.5, "a restarted gateway's devices go on being read")
    st1 = sources(q)
    check(st1.get("MB-A", {}).get("since") == st0["MB-A"].get("since") and
          st1.get("MB-A", {}).get("state") == "up",
          "a restarted gateway's device keeps its state and since",
          (st0.get("MB-A"), st1.get("MB-A")))
    connects1 = metric(q, "plume_modbus_connects_total")
    check(connects1 == connects0 + 2, "only the changed and the added gateway connect "
          "(connects %s -> %s)" % (connects0, connects1))
    check(metric(q, "plume_modbus_polls_total") >= polls0, "poll counters do not go back")

    # 2. The template changes (address 2) and MB-B is removed.
    t2 = time.time()
    line = reload(srv, cpath, config(mb.port, {"gw1": [("MB-A", 1), ("MB-C", 3)],
                                               "gw2": [("MB-D", 4)],
                                               "gw3": [("MB-E", 3)]}, address=2),
                  "re-planning")
    check("gateways_changed=3" in line and "devices_removed=1" in line,
          "every gateway using the template is restarted, one device removed", line)
    a = wait_until(lambda: (lambda r: r if r and r[0] > t2 and r[1] == 12.5 else None)(
        latest(q, "MB-A")))
    check(a is not None, "a changed template is planned anew: the register at address 2")
    d = wait_until(lambda: (lambda r: r if r and r[1] == 42.5 else None)(latest(q, "MB-D")))
    check(d is not None, "on every gateway that uses it")
    gone = wait_until(lambda: "MB-B" not in sources(q))
    check(gone, "a removed device leaves CEMS.SOURCES")
    n_b = count(q, "MB-B")
    time.sleep(1.5)  # five intervals
    check(count(q, "MB-B") == n_b, "a removed device is no longer read")

    # 3. Files with mistakes change nothing.
    bad = json.dumps(config(mb.port, {"gw1": [("MB-A", 1), ("MB-X", 300)]}), indent=1)
    bad_line = bad.split("\n").index(next(l for l in bad.split("\n") if "MB-X" in l)) + 1
    line = reload(srv, cpath, bad, "a unit id out of range")
    check("modbus configuration not reloaded" in line and ("%s:" % cpath) in line and
          "unit" in line, "a bad file is refused, naming the file", line)
    m = re.search(re.escape(cpath) + r":(\d+):", line)
    check(m is not None and abs(int(m.group(1)) - bad_line) <= 2,
          "and the line (%s, the device is on line %d)" % (m and m.group(1), bad_line))
    line = reload(srv, cpath, '{"templates": [\n  {"name": "so2",,}\n]}', "broken JSON")
    check(("%s:2:" % cpath) in line and "not valid JSON" in line,
          "broken JSON is refused with its line", line)
    t3 = time.time()
    a, c2 = fresh_reading(q, "MB-A", t3), fresh_reading(q, "MB-C", t3)
    check(a is not None and a[1] == 12.5 and c2 is not None and c2[1] == 32.5,
          "the configuration in force stays and is polled")
    check(sorted(sources(q)) == ["MB-A", "MB-C", "MB-D", "MB-E"],
          "the same devices as before the bad files")
    check(srv.stop() == 0, "plume serve stops cleanly after reloads")
    mb.stop()


def main():
    pt.init(sys.argv[1])
    pt.run_in_tmp(run, "plume-modbus-reload-")


if __name__ == "__main__":
    main()
