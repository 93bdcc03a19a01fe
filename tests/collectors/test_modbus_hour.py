#!/usr/bin/env python3
"""Modbus readings through to a computed hour, on the real daemon: a Modbus TCP server that
is not ours (Debian's python3-pymodbus) serves an SO2 value the test changes several times a
second; `plume serve` reads it every second (MN:a21026:rtd, stamped in whole seconds, so one
reading a second keeps every reading in the store), rolls the readings up into
minutes (engine/rtd_rollup.c: MN:a21026:min) and the minutes into MN:a21026:hour.calc
(engine/rollup_live.c). The hour.calc value must equal the mean of the minutes it is computed
from, and each minute the mean of its readings.

Time is real (neither the poller nor the roll-ups take another clock), so the test waits for
one minute to close, which takes up to a minute. Rather than wait for the hour to end, it
uses what the roll-up does when the device reports its own hour: the same MN sends an
hourly record (HJ 212 CN=2061) for the hour, and the hour is computed from the minutes
stored so far, as it is again when the hour ends.

usage: test_modbus_hour.py PLUME"""
import os
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, wait_until  # noqa: E402

pt.require_pymodbus()

MN = "MBHOUR0001"
SERVED = [10.0, 20.5, 33.25, 17.75, 26.0, 41.5, 12.25]  # cycled through, float32-exact


def words(f):
    return list(struct.unpack(">HH", struct.pack(">f", f)))


def points(port, key, start="-", end="+"):
    """[(unix seconds, value)] of a series through TS.RANGE."""
    r = pt.query(port, "TS.RANGE", key, str(start), str(end))
    return [(int(ts) // 1000, float(v)) for ts, v in r] if isinstance(r, list) else []


def run(tmp):
    mb = pt.ModbusServer({1: {"hr": words(SERVED[0])}})
    check(mb.up, "pymodbus server listens")
    stop = threading.Event()

    def change():  # a new value every 350 ms, so minutes average different readings
        k = 0
        while not stop.wait(0.35):
            k += 1
            mb.set(1, "hr", 0, words(SERVED[k % len(SERVED)]))
    changer = threading.Thread(target=change, daemon=True)
    changer.start()
    cfg = {"templates": [{"name": "so2", "registers": [
               {"code": "a21026", "address": 0, "type": "float32", "unit": "mg/m3"}]}],
           "gateways": [{"name": "gw", "tcp": "127.0.0.1:%d" % mb.port, "interval_ms": 1000,
                         "devices": [{"mn": MN, "unit": 1, "template": "so2"}]}]}
    cpath = pt.write_json(os.path.join(tmp, "modbus.json"), cfg)
    srv = pt.Serve(os.path.join(tmp, "db"), "--open", "--modbus.config", cpath)
    q = srv.qport
    key = MN + ":a21026"

    # The first minute closes when a reading of the next minute arrives (within 60 s).
    mins = wait_until(lambda: points(q, key + ":min"), 90, 0.25)
    check(len(mins) >= 1, "readings roll up into a minute record (%d)" % len(mins))
    if not mins:
        srv.stop()
        return
    m0 = mins[0][0]
    rtd = [v for t, v in points(q, key + ":rtd") if m0 <= t < m0 + 60]
    check(len(set(rtd)) > 1 and all(v in SERVED for v in rtd),
          "the minute's readings are the served values, several of them (%d readings)" % len(rtd))
    check(rtd and abs(mins[0][1] - sum(rtd) / len(rtd)) < 1e-9,
          "the minute is the mean of its readings (%r)" % mins[0][1])

    # The device reports its hour: the hour is computed from the minutes stored.
    hour = m0 - m0 % 3600
    dev = pt.Device(srv.port)
    q_, pkt = pt.upload(MN, hour, 25.0)
    dev.send(pkt)
    acks = dev.packets(timeout=10)
    check(len(acks) == 1 and pt.fields(acks[0]).get("QN") == q_,
          "the device's reported hour is acknowledged")
    dev.close()

    def agreed():
        calc = dict(points(q, key + ":hour.calc")).get(hour)
        used = [v for t, v in points(q, key + ":min") if hour <= t < hour + 3600]
        if calc is not None and used and abs(calc - sum(used) / len(used)) < 1e-9:
            return calc, used
        return None
    got = wait_until(agreed, 30, 0.2)
    calc = dict(points(q, key + ":hour.calc")).get(hour)
    check(got is not None, "hour.calc (%r) is the mean of the hour's minute records%s" %
          (calc, " (%d minutes)" % len(got[1]) if got else ""))
    stop.set()
    changer.join(5)
    check(srv.stop() == 0, "plume serve stops cleanly")
    mb.stop()


def main():
    pt.init(sys.argv[1])
    pt.run_in_tmp(run, "plume-modbus-hour-")


if __name__ == "__main__":
    main()
