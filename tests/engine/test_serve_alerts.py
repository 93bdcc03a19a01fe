#!/usr/bin/env python3
"""Exceedance alerts end to end: a device sends hourly SO2 over HJ 212 to a real
`plume serve`; the registry gives a limit; a follow list points at a webhook receiver
written here. An episode must fire once and resolve once under one id, survive kill -9 of
the server in its middle without a second firing, and reach the receiver quickly.

usage: test_serve_alerts.py PLUME"""
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "collectors"))
import test_hj212_server as h  # noqa: E402  (the device and server helpers)

PLUME = os.path.abspath(sys.argv[1])
h.PLUME = PLUME
MN = "320102A0000000000000AB01"


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Receiver.lock:
            Receiver.got.append((time.time(), self.headers.get("Idempotency-Key"), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def wait_for(n, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        with Receiver.lock:
            if len(Receiver.got) >= n:
                return True
        time.sleep(0.01)
    return False


def send_hour(dev, t, so2, o2=6.0):
    q = h.qn()
    seg = (f"QN={q};ST=31;CN=2061;PW=pw0001;MN={MN};Flag=5;CP=&&DataTime={h.hour_local(t)};"
           f"a21026-Avg={so2},a21026-ZsAvg={so2},a21026-Flag=N;a19001-Avg={o2},a19001-Flag=N&&")
    dev.send(h.frame(seg))
    got = dev.packets()
    return len(got) == 1 and h.fields(got[0]).get("QN") == q


def main():
    tmp = tempfile.mkdtemp(prefix="plume-alerts-")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        run(tmp, httpd.server_address[1])
    finally:
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % h.n_checks)
    sys.exit(1 if h.failed else 0)


def run(tmp, rport):
    check = h.check
    with open(os.path.join(tmp, "facilities.csv"), "w") as f:
        f.write("id,name,uscc,region,industry\n"
                "F1,南京热电有限公司,913201000000000018,320102,D4411\n")
    with open(os.path.join(tmp, "outlets.csv"), "w") as f:
        f.write(f"facility_id,code,medium,mn,pw,o2_ref\nF1,DA001,gas,{MN},pw0001,6\n")
    with open(os.path.join(tmp, "limits.csv"), "w") as f:
        f.write("facility_id,outlet,pollutant,value,unit,period,basis\n"
                "F1,DA001,a21026,35,mg/m3,hour,zs\n")
    with open(os.path.join(tmp, "subs.csv"), "w") as f:
        f.write(f"subscriber,match_kind,match_value,url,format\n"
                f"nanjing,region,3201,http://127.0.0.1:{rport}/hook,json\n")
    reg = ",".join(os.path.join(tmp, x) for x in ("facilities.csv", "outlets.csv", "limits.csv"))
    db = os.path.join(tmp, "db")
    args = ["--registry.files", reg, "--alerts.subscriptions", os.path.join(tmp, "subs.csv")]
    t0 = 1793462400  # 2026-11-01T00:00:00+08:00

    srv = h.Server(db, *args)
    dev = h.Device(srv.port)
    check(send_hour(dev, t0, 30) and send_hour(dev, t0 + 3600, 34.9),
          "the registered device's hours are acknowledged")
    check(not wait_for(1, 0.3), "values under the limit raise nothing")
    sent_at = time.time()
    send_hour(dev, t0 + 7200, 40)  # the first exceedance hour
    check(wait_for(1), "an exceedance hour fires an alert")
    with Receiver.lock:
        first = Receiver.got[0]
    check(first[2].get("state") == "firing" and first[2].get("pollutant") == "a21026",
          "the alert is firing, for SO2")
    check(abs(first[2].get("value", 0) - 40) < 1e-9 and first[2].get("limit") == 35,
          "it carries the value and the limit")
    check(first[0] - sent_at < 1.0, "it reaches the receiver within a second (%.3f s)" % (first[0] - sent_at))
    send_hour(dev, t0 + 3 * 3600, 80)  # the episode grows: nothing new is sent
    dev.close()
    srv.p.kill()  # kill -9 in the middle of the episode
    srv.p.wait()

    srv = h.Server(db, *args)
    dev = h.Device(srv.port)
    send_hour(dev, t0 + 3 * 3600, 80)  # resent after the crash: the episode is known
    send_hour(dev, t0 + 4 * 3600, 20)  # back under the limit: it resolves
    check(wait_for(2), "the episode resolves after the restart")
    time.sleep(0.3)
    with Receiver.lock:
        got = list(Receiver.got)
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
