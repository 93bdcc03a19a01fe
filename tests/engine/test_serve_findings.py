#!/usr/bin/env python3
"""Data-quality finding alerts across kill -9: devices send hourly data over HJ 212 to a real
`plume serve`; a follow list points at a webhook receiver written here. One outlet's SO2
stays flat long enough to fire a flat line, another falls silent and fires `silent`, a third
is flat for 20 hours when the server is killed with SIGKILL. After the restart the devices
resend their last hour and go on: the flat line resolves under the id it fired with, the
silence resolves when its outlet resumes, and the third run fires with the start it had
before the crash. Every finding id is delivered firing once and resolved once, and a repeat
of any state would carry the same idempotency key.

usage: test_serve_findings.py PLUME"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check  # noqa: E402

pt.init(sys.argv[1])
FLAT = "320102A0000000000000FA01"    # flat for 26 hours: fires before the crash
SILENT = "320102A0000000000000FA02"  # three hours, then silent until after the restart
LATE = "320102A0000000000000FA03"    # flat for 20 hours at the crash, 24 after it
T1 = 1793462400  # 2026-11-01T00:00:00+08:00


def received(rcv):
    """Every delivery so far: [(idempotency key, alert)], in arrival order."""
    with rcv.lock:
        return [(r[2].get("Idempotency-Key"), json.loads(r[3])) for r in rcv.requests]


def findings(rcv, kind, mn):
    """The distinct alert states of kind for mn, in order of arrival. A delivery may come
    again with the same idempotency key (sent before the crash, its outbox record not yet
    deleted): receivers drop such repeats, and so does this."""
    seen, out = set(), []
    for k, a in received(rcv):
        if a.get("kind") == kind and a.get("mn") == mn and k not in seen:
            seen.add(k)
            out.append(a)
    return out


def wait_findings(rcv, kind, mn, want, timeout=20.0):
    end = time.time() + timeout
    while True:
        got = findings(rcv, kind, mn)
        if len(got) >= want or time.time() > end:
            return got
        time.sleep(0.05)


def send_hour(dev, mn, t, so2, k):
    """One reported hour: SO2 (flagged N), flow up, an O2 that moves; waits for the ack."""
    q = pt.qn()
    seg = (f"QN={q};ST=31;CN=2061;PW=pw0001;MN={mn};Flag=5;CP=&&DataTime={pt.hour_local(t)};"
           f"a21026-Avg={so2},a21026-Flag=N;a00000-Avg=50.0,a00000-Flag=N;"
           f"a19001-Avg={8.0 + k % 3 / 10},a19001-Flag=N&&")
    dev.send(pt.frame(seg))
    got = dev.packets(timeout=10)
    return len(got) == 1 and pt.fields(got[0]).get("QN") == q


def local(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(t + 8 * 3600))


def main():
    def with_receiver(tmp):
        with pt.Receiver() as rcv:
            run(tmp, rcv)
    pt.run_in_tmp(with_receiver, "plume-findings-")


def run(tmp, rcv):
    reg = ",".join(pt.write_registry(
        tmp, [{"id": "F1", "name": "南京热电有限公司", "uscc": "913201000000000018",
               "region": "320102", "industry": "D4411"}],
        [{"facility_id": "F1", "code": f"DA00{i + 1}", "medium": "gas", "mn": mn,
          "pw": "pw0001", "o2_ref": 6} for i, mn in enumerate((FLAT, SILENT, LATE))],
        [{"facility_id": "F1", "outlet": f"DA00{i + 1}", "pollutant": "a21026", "value": 100,
          "unit": "mg/m3", "period": "hour", "basis": "measured"} for i in range(3)]))
    subs = pt.write_subscriptions(os.path.join(tmp, "subs.csv"),
                                  [("all", "all", "", rcv.url(), "json")])
    db = os.path.join(tmp, "db")
    args = ["--registry.files", reg, "--alerts.subscriptions", subs]

    srv = pt.Serve(db, *args)
    flat, silent, late = (pt.Device(srv.port) for _ in range(3))
    ok = all(send_hour(silent, SILENT, T1 + k * 3600, 20 + k, k) for k in range(3))
    for k in range(26):  # hours 0..25: the flat outlet drives the fleet's clock
        ok &= send_hour(flat, FLAT, T1 + k * 3600, 42.0, k)
        if k >= 6:
            ok &= send_hour(late, LATE, T1 + k * 3600, 17.5, k)
    check(ok, "every hour before the crash is acknowledged")
    fl = wait_findings(rcv, "flatline", FLAT, 1)
    si = wait_findings(rcv, "silent", SILENT, 1)
    check([a["state"] for a in fl] == ["firing"], "24 identical hours fire a flat line")
    check([a["state"] for a in si] == ["firing"] and si[0]["start"] == local(T1 + 3 * 3600),
          "the outlet silent since hour 3 fires `silent` from then")
    check(not findings(rcv, "flatline", LATE), "20 identical hours fire nothing yet")
    for d in (flat, silent, late):
        d.close()
    srv.kill()  # kill -9 in the middle of the runs

    srv = pt.Serve(db, *args)
    flat, silent, late = (pt.Device(srv.port) for _ in range(3))
    # Devices resend what they are not sure was received, then go on.
    ok = (send_hour(flat, FLAT, T1 + 25 * 3600, 42.0, 25) and
          send_hour(late, LATE, T1 + 25 * 3600, 17.5, 25))
    for k in range(26, 31):
        ok &= send_hour(flat, FLAT, T1 + k * 3600, 42.0 if k < 28 else 43.0, k)
        ok &= send_hour(late, LATE, T1 + k * 3600, 17.5 if k < 30 else 18.0, k)
    ok &= send_hour(silent, SILENT, T1 + 28 * 3600, 21.0, 28)
    check(ok, "every hour after the restart is acknowledged")

    fl = wait_findings(rcv, "flatline", FLAT, 2)
    check([a["state"] for a in fl] == ["firing", "resolved"] and len({a["id"] for a in fl}) == 1,
          "the flat line resolves after the restart under the id it fired with: %s" %
          [(a["id"], a["state"]) for a in fl])
    if len(fl) == 2:
        check(fl[1]["start"] == local(T1) and fl[1]["end"] == local(T1 + 28 * 3600),
              "from its first flat hour to the first hour that differs (%s - %s)" %
              (fl[1]["start"], fl[1]["end"]))
    si = wait_findings(rcv, "silent", SILENT, 2)
    check([a["state"] for a in si] == ["firing", "resolved"] and len({a["id"] for a in si}) == 1,
          "the silence resolves when its outlet resumes, under its id: %s" %
          [(a["id"], a["state"]) for a in si])
    if len(si) == 2:
        check(si[1]["end"] == local(T1 + 28 * 3600), "at the resumed hour (%s)" % si[1]["end"])
    lf = wait_findings(rcv, "flatline", LATE, 2)
    check([a["state"] for a in lf] == ["firing", "resolved"] and len({a["id"] for a in lf}) == 1,
          "the run flat for 20 hours at the crash fires at its 24th hour and resolves: %s" %
          [(a["id"], a["state"]) for a in lf])
    if lf:
        check(lf[0]["start"] == local(T1 + 6 * 3600),
              "with the start it had before the crash (%s)" % lf[0]["start"])

    time.sleep(1.5)  # the silence check runs every second: room for a stray alert
    got = received(rcv)
    per_state = {}
    for key, a in got:
        per_state.setdefault((a["id"], a["state"]), set()).add(key)
    ids = {a["id"] for _, a in got}
    check(all(len(keys) == 1 for keys in per_state.values()),
          "a repeated state always carries the same idempotency key")
    check(all({s for i, s in per_state if i == x} == {"firing", "resolved"} for x in ids),
          "every finding id was delivered firing and resolved: %s" % sorted(per_state))
    kinds = sorted({(a["kind"], a["mn"][-4:], a.get("pollutant")) for _, a in got})
    keys = {k for k, _ in got}
    check(len(ids) == 3 and len(keys) == 6,
          "three findings, each firing once and resolved once: %d keys of %s" % (len(keys), kinds))
    for d in (flat, silent, late):
        d.close()
    srv.stop()


if __name__ == "__main__":
    main()
