#!/usr/bin/env python3
"""Exceedance alerts end to end: a device sends hourly SO2 over HJ 212 to a real
`plume serve`; the registry gives a limit; a follow list points at a webhook receiver
written here. An episode must fire once and resolve once under one id, survive kill -9 of
the server in its middle without a second firing, and reach the receiver quickly.

usage: test_serve_alerts.py PLUME"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check  # noqa: E402

pt.init(sys.argv[1])
MN = "320102A0000000000000AB01"


def received(rcv):
    """What reached the receiver: [(arrival time, idempotency key, alert)]."""
    with rcv.lock:
        return [(r[0], r[2].get("Idempotency-Key"), json.loads(r[3])) for r in rcv.requests]


def send_hour(dev, t, so2, o2=6.0):
    q = pt.qn()
    seg = (f"QN={q};ST=31;CN=2061;PW=pw0001;MN={MN};Flag=5;CP=&&DataTime={pt.hour_local(t)};"
           f"a21026-Avg={so2},a21026-ZsAvg={so2},a21026-Flag=N;a19001-Avg={o2},a19001-Flag=N&&")
    dev.send(pt.frame(seg))
    got = dev.packets()
    return len(got) == 1 and pt.fields(got[0]).get("QN") == q


def main():
    def with_receiver(tmp):
        with pt.Receiver(keep_alive=False) as rcv:
            run(tmp, rcv)
    pt.run_in_tmp(with_receiver, "plume-alerts-")


def run(tmp, rcv):
    reg = ",".join(pt.write_registry(
        tmp, [{"id": "F1", "name": "南京热电有限公司", "uscc": "913201000000000018",
               "region": "320102", "industry": "D4411"}],
        [{"facility_id": "F1", "code": "DA001", "medium": "gas", "mn": MN, "pw": "pw0001",
          "o2_ref": 6}],
        [{"facility_id": "F1", "outlet": "DA001", "pollutant": "a21026", "value": 35,
          "unit": "mg/m3", "period": "hour", "basis": "zs"}]))
    subs = pt.write_subscriptions(os.path.join(tmp, "subs.csv"),
                                  [("nanjing", "region", "3201", rcv.url(), "json")])
    db = os.path.join(tmp, "db")
    args = ["--registry.files", reg, "--alerts.subscriptions", subs]
    t0 = 1793462400  # 2026-11-01T00:00:00+08:00

    srv = pt.Serve(db, *args)
    dev = pt.Device(srv.port)
    check(send_hour(dev, t0, 30) and send_hour(dev, t0 + 3600, 34.9),
          "the registered device's hours are acknowledged")
    check(not rcv.wait(1, 0.3), "values under the limit raise nothing")
    sent_at = time.time()
    send_hour(dev, t0 + 7200, 40)  # the first exceedance hour
    check(rcv.wait(1), "an exceedance hour fires an alert")
    first = received(rcv)[0]
    check(first[2].get("state") == "firing" and first[2].get("pollutant") == "a21026",
          "the alert is firing, for SO2")
    check(abs(first[2].get("value", 0) - 40) < 1e-9 and first[2].get("limit") == 35,
          "it carries the value and the limit")
    check(first[0] - sent_at < 1.0, "it reaches the receiver within a second (%.3f s)" % (first[0] - sent_at))
    send_hour(dev, t0 + 3 * 3600, 80)  # the episode grows: nothing new is sent
    dev.close()
    srv.kill()  # kill -9 in the middle of the episode

    srv = pt.Serve(db, *args)
    dev = pt.Device(srv.port)
    send_hour(dev, t0 + 3 * 3600, 80)  # resent after the crash: the episode is known
    send_hour(dev, t0 + 4 * 3600, 20)  # back under the limit: it resolves
    check(rcv.wait(2), "the episode resolves after the restart")
    time.sleep(0.3)
    got = received(rcv)
    states = [g[2].get("state") for g in got]
    ids = {g[2].get("id") for g in got}
    check(states == ["firing", "resolved"], "exactly one firing and one resolved: %s" % states)
    check(len(ids) == 1, "under one id")
    if len(got) >= 2:
        r = got[1][2]
        check(r.get("value") == 80 and abs(r.get("multiple") - (80 - 35) / 35) < 1e-9,
              "the resolved alert carries the peak and its multiple")
        check(got[0][1] != got[1][1], "their idempotency keys differ")
    dev.close()
    srv.stop()


if __name__ == "__main__":
    main()
