#!/usr/bin/env python3
"""Live roll-ups and data-quality findings end to end: a device sends minute, hourly and
late data over HJ 212 to a real `plume serve`; the computed hours and days are read back
through the query server, and the findings arrive at a webhook receiver written here.

- minutes roll up into MN:code:hour.calc (mean of the valid minutes, flag, oxygen-corrected
  with the outlet's reference O2 when the minutes carry no corrected value), and a day of
  hours into MN:code:day.calc;
- minutes arriving late recompute their hour (and its day);
- a reported hour its minutes do not support raises a `mismatch` alert;
- 24 identical hours raise `flatline`, which resolves at the first different hour;
- three zero hours while the flow says the plant runs raise `zeros`;
- an outlet silent for more than 4 h raises `silent` (fired and resolved when it resumes).

usage: test_serve_rollup.py PLUME"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check  # noqa: E402

pt.init(sys.argv[1])
MN = "320102A0000000000000CD01"  # minutes, hours, mismatch, late data
MN2 = "320102A0000000000000CD02"  # flat line, zeros, silence
T0 = 1793462400  # 2026-11-01T00:00:00+08:00
RCV = pt.Receiver(keep_alive=False)  # the webhook receiver of every finding


def alerts(kind, mn=None, timeout=10.0, want=1, pollutant=None):
    """The alerts of a kind received so far, in the order plume issued them (episode start,
    then revision): it sends up to four requests at once to one receiver, so a firing and
    its resolution sent together may arrive in either order."""
    end = time.time() + timeout
    while True:
        got = [a for a in RCV.bodies() if a.get("kind") == kind and (mn is None or a["mn"] == mn)
               and (pollutant is None or a["pollutant"] == pollutant)]
        if len(got) >= want or time.time() > end:
            return sorted(got, key=lambda a: (a.get("start") or "", a.get("revision", 0)))
        time.sleep(0.05)


def send(dev, mn, cn, t, values):
    """One upload of `values` {code: (avg, flag)} or {code: (avg, flag, zsavg)}; waits for its
    acknowledgement."""
    q = pt.qn()
    cp = ";".join(f"{c}-Avg={v[0]}," + (f"{c}-ZsAvg={v[2]}," if len(v) > 2 else "") +
                  f"{c}-Flag={v[1]}" for c, v in values.items())
    seg = (f"QN={q};ST=31;CN={cn};PW=pw0001;MN={mn};Flag=5;CP=&&DataTime={pt.hour_local(t)};"
           f"{cp}&&")
    dev.send(pt.frame(seg))
    got = dev.packets(timeout=10)
    return len(got) == 1 and pt.fields(got[0]).get("QN") == q


def series(srv, key):
    """[(unix seconds, value)] of a series (or 'key:column') through TS.RANGE."""
    end = time.time() + 10
    while True:
        rows = pt.query(srv.qport, "TS.RANGE", key, "-", "+")
        if isinstance(rows, list) and rows or time.time() > end:
            return [(int(ts) // 1000, float(v)) for ts, v in rows] if isinstance(rows, list) else []
        time.sleep(0.05)


def wait_value(srv, key, ts, want, timeout=10.0):
    end = time.time() + timeout
    while True:
        got = dict(series(srv, key)).get(ts)
        if got is not None and abs(got - want) < 1e-9 or time.time() > end:
            return got
        time.sleep(0.05)


def main():
    with RCV:
        pt.run_in_tmp(run, "plume-rollup-")


def run(tmp):
    outlet = {"facility_id": "F1", "medium": "gas", "pw": "pw0001", "o2_ref": 6}
    limit = {"facility_id": "F1", "pollutant": "a21026", "value": 100, "unit": "mg/m3",
             "period": "hour", "basis": "zs"}
    reg = ",".join(pt.write_registry(
        tmp, [{"id": "F1", "name": "南京热电有限公司", "uscc": "913201000000000018",
               "region": "320102", "industry": "D4411"}],
        [dict(outlet, code="DA001", mn=MN), dict(outlet, code="DA002", mn=MN2)],
        [dict(limit, outlet="DA001"), dict(limit, outlet="DA002")]))
    subs = pt.write_subscriptions(os.path.join(tmp, "subs.csv"),
                                  [("all", "all", "", RCV.url(), "json")])
    srv = pt.Serve(os.path.join(tmp, "db"), "--registry.files", reg,
                   "--alerts.subscriptions", subs)
    dev = pt.Device(srv.port)

    # Hour 0: 60 minutes of SO2 = 10 + i/10 and O2 = 11 (no ZsAvg sent: corrected here);
    # minutes 50-59 flagged C, so 50 valid minutes: mean 10 + 2.45 = 12.45.
    ok = True
    for i in range(60):
        t = T0 + 60 * i
        ok &= send(dev, MN, 2051, t, {"a21026": (round(10 + i / 10, 1), "C" if i >= 50 else "N"),
                                      "a19001": (11.0, "N")})
    check(ok, "60 minute records are acknowledged")
    key = f"{MN}:a21026:hour.calc"
    got = wait_value(srv, key, T0, 12.45)
    check(got is not None and abs(got - 12.45) < 1e-9, "the hour is the mean of its 50 valid minutes (%s)" % got)
    zs = wait_value(srv, key + ":zsavg", T0, 12.45 * 15 / 10)
    check(zs is not None and abs(zs - 12.45 * 1.5) < 1e-9,
          "oxygen-corrected with the outlet's reference O2: x (21-6)/(21-11) (%s)" % zs)

    # Hour 1: only 40 valid minutes (20 flagged M): the hour is computed but invalid.
    for i in range(60):
        send(dev, MN, 2051, T0 + 3600 + 60 * i, {"a21026": (20.0, "M" if i < 20 else "N"),
                                                 "a19001": (11.0, "N")})
    got = wait_value(srv, key, T0 + 3600, 20.0)
    check(got == 20.0, "a short hour keeps its mean")
    # The reported hour 0 disagrees with its minutes (15 against 12.45): a mismatch.
    send(dev, MN, 2061, T0, {"a21026": (15.0, "N"), "a19001": (11.0, "N")})
    mm = alerts("mismatch", MN)
    check(len(mm) == 1 and mm[0]["state"] == "firing" and mm[0]["pollutant"] == "a21026",
          "a reported hour its minutes do not support raises a mismatch alert")
    if mm:
        check(mm[0]["value"] == 15.0 and abs(mm[0]["limit"] - 12.45) < 1e-9,
              "it carries the reported (15) and computed (12.45) averages")

    # Late minutes: hour 0's minute 5 corrected from 10.5 to 70.5: hour 0 recomputed.
    send(dev, MN, 2051, T0 + 300, {"a21026": (70.5, "N"), "a19001": (11.0, "N")})
    got = wait_value(srv, key, T0, 12.45 + 60 / 50)
    check(got is not None and abs(got - (12.45 + 1.2)) < 1e-9, "late minutes recompute their hour (%s)" % got)

    # Hours 2..23 of day 0 from 15-minute records: each stands for 15 minutes.
    for hr in range(2, 24):
        for i in range(0, 60, 15):  # 15-minute records: 4 per hour, 45 valid minutes = 3
            send(dev, MN, 2051, T0 + hr * 3600 + 60 * i, {"a21026": (30.0, "N"), "a19001": (11.0, "N")})
    rows = series(srv, f"{MN}:a21026:day.calc")
    check(len(rows) == 1 and rows[0][0] == T0, "the day is rolled up from its computed hours")
    if rows:
        # valid hours: hour 0 (13.65) and hours 2-23 (30): 23 hours >= 20
        want = (13.65 + 22 * 30) / 23
        check(abs(rows[0][1] - want) < 1e-9, "the day is the mean of its valid hours (%s, want %s)" % (rows[0][1], want))

    # Flat line on the second outlet: 24 identical hours while the flow is up, then a change.
    dev2 = pt.Device(srv.port)
    t1 = T0 + 2 * 86400
    for k in range(26):
        v = 42.0 if k < 25 else 43.0
        send(dev2, MN2, 2061, t1 + k * 3600, {"a21026": (v, "N"), "a00000": (50.0, "N"),
                                              "a19001": (8.0 + k % 3 / 10, "N")})
    fl = alerts("flatline", MN2, want=2, pollutant="a21026")
    check([a["state"] for a in fl] == ["firing", "resolved"] and len({a["id"] for a in fl}) == 1,
          "24 identical hours fire a flat line, resolved under one id at the first change")
    if len(fl) == 2:
        check(pt.hour_local(t1) == fl[0]["start"].replace("-", "").replace("T", "").replace(":", "")[:14]
              and fl[1]["end"] is not None, "it starts at the first flat hour")
        check(fl[1]["value"] == 42.0, "it carries the flat value")

    # Zeros while flow says the plant runs: 3 hours.
    t2 = t1 + 26 * 3600
    for k in range(4):
        send(dev2, MN2, 2061, t2 + k * 3600, {"a21026": (0 if k < 3 else 5.0, "N"),
                                              "a00000": (50.0, "N"), "a19001": (8.0 + k % 3 / 10, "N")})
    zs = alerts("zeros", MN2, want=2)
    o2flat = [a for a in RCV.bodies() if a["kind"] == "flatline" and a["pollutant"] == "a19001"]
    check(not o2flat, "an O2 that moves is no flat line")
    check([a["state"] for a in zs] == ["firing", "resolved"], "three zero hours while running fire and resolve")

    # Silence: the outlet sends nothing for 6 hours, then resumes.
    t3 = t2 + 4 * 3600
    send(dev2, MN2, 2061, t3 + 6 * 3600, {"a21026": (5.2, "N"), "a00000": (50.0, "N"), "a19001": (8.0, "N")})
    si = alerts("silent", MN2, want=2)
    check([a["state"] for a in si] == ["firing", "resolved"], "a 6-hour silence is reported when data resumes")
    if len(si) == 2:
        check(si[0]["start"] == "2026-11-04T06:00:00+08:00" and si[1]["end"] == "2026-11-04T12:00:00+08:00",
              "from the end of the last data to the resumed hour (%s - %s)" % (si[0]["start"], si[1]["end"]))
    unexpected = [a for a in RCV.bodies() if a["kind"] == "exceedance"]
    check(not unexpected, "no exceedance was raised")
    dev.close()
    dev2.close()
    srv.stop()


if __name__ == "__main__":
    main()
