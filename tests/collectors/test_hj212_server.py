#!/usr/bin/env python3
"""The HJ 212 server end to end: a real `plume serve` on 127.0.0.1 (port 0) and devices
written here with the standard library. Checks acknowledgements only after commit, CRC and
device checks, framing faults, history pulls for gaps, clock answers, garbage isolation,
and that every acknowledged reading survives kill -9.

usage: test_hj212_server.py PLUME"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import Device, check, fields, frame, hour_local, upload  # noqa: E402

pt.init(sys.argv[1])


def dump(db, series):
    """The series' points as [key, unix seconds, value], read back through TS.RANGE."""
    srv = pt.Serve(db, "--open")
    try:
        rows = pt.query(srv.qport, "TS.RANGE", series, "-", "+")
    finally:
        srv.stop()
    if not isinstance(rows, list):
        return []
    return [[series, str(int(ts) // 1000), v] for ts, v in rows]


def main():
    tmp = tempfile.mkdtemp(prefix="plume-hj212-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pt.finish()


def run(tmp):
    mn = "010000A8900016F000169DC0"
    t0 = 1700000000 // 3600 * 3600
    db = os.path.join(tmp, "open")
    srv = pt.Serve(db, "--open")

    # An upload asking for an answer gets 9014 with its own QN.
    d = Device(srv.port)
    q, pkt = upload(mn, t0, 12.3)
    d.send(pkt)
    got = d.packets()
    check(len(got) == 1 and fields(got[0]).get("CN") == "9014" and fields(got[0]).get("QN") == q,
          "upload with Flag=5 is answered 9014 with its QN")
    # Flag=4: no answer.
    d.send(upload(mn, t0 + 3600, 13.0, flag=4)[1])
    check(d.packets(timeout=0.5) == [], "upload with Flag=4 gets no answer")

    # A wrong CRC is never acknowledged; a glued and split stream is.
    q_bad, pkt = upload(mn, t0 + 7200, 99.0)
    bad = pkt[:-6] + b"0000\r\n"
    d.send(bad)
    got = d.packets(timeout=0.5)
    # Only an answer to that packet matters: a slow machine may still be delivering requests
    # of the server's own (clock, history) from earlier packets.
    check(not any(fields(g).get("QN") == q_bad for g in got),
          "a packet with a wrong CRC is not acknowledged")
    if got:
        print("# got", got)
    stream = b"junk" + b"".join(upload(mn, t0 + 3600 * (3 + i), 20 + i)[1] for i in range(5))
    for i in range(0, len(stream), 7):
        d.send(stream[i:i + 7])
        time.sleep(0.001)
    got = d.packets(want=6, timeout=3)
    acks = [g for g in got if fields(g).get("CN") == "9014"]
    check(len(acks) == 5, "five glued packets split in 7-byte pieces after junk: 5 answers")
    # The hour whose packet had a bad CRC is missing: the server asks for it; refuse.
    req = [g for g in got if fields(g).get("CN") == "2061"]
    check(len(req) == 1 and f"BeginTime={hour_local(t0 + 7200)};EndTime={hour_local(t0 + 7200)}" in req[0],
          "the hour lost to a bad CRC is requested back")
    if req:
        d.send(frame(f"QN={fields(req[0])['QN']};ST=91;CN=9011;PW=123456;MN={mn};Flag=4;CP=&&QnRtn=2&&"))

    # A gap (hours 8..10 missing) makes the server ask for them back.
    d.send(upload(mn, t0 + 3600 * 11, 30.0)[1])
    got = d.packets(want=2, timeout=3)
    req = [g for g in got if fields(g).get("CN") == "2061"]
    check(len(req) == 1, "a gap in hourly uploads triggers a 2061 history request")
    if req:
        rq = fields(req[0])
        cp = req[0].split("CP=&&", 1)[1]
        check(f"BeginTime={hour_local(t0 + 3600 * 8)}" in cp and
              f"EndTime={hour_local(t0 + 3600 * 10)}" in cp, "it asks for exactly the missing hours")
        d.send(frame(f"QN={rq['QN']};ST=91;CN=9011;PW=123456;MN={mn};Flag=4;CP=&&QnRtn=1&&"))
        for h in (8, 9, 10):
            d.send(upload(mn, t0 + 3600 * h, 40 + h)[1])
        d.send(frame(f"QN={rq['QN']};ST=91;CN=9012;PW=123456;MN={mn};Flag=4;CP=&&ExeRtn=1&&"))
        check(len(d.packets(want=3)) == 3, "pulled hours are acknowledged")

    # A device that ends its packet with no line end still gets its answer.
    q, pkt = upload(mn, t0 + 3600 * 12, 33.0)
    d.send(pkt[:-2])
    got = d.packets(timeout=3)
    check(len(got) == 1 and fields(got[0]).get("QN") == q, "a packet with no line end is answered")

    # The device asks for the time: 9013, then 1012 since its clock is far off.
    d.send(frame(f"QN=20160801085857223;ST=31;CN=1013;PW=123456;MN={mn};Flag=5;CP=&&&&"))
    got = d.packets(want=2)
    cns = [fields(g).get("CN") for g in got]
    check(cns[:1] == ["9013"] and "1012" in cns, "1013 is answered 9013 then 1012 set time")

    # A flood of garbage closes that connection only.
    g = Device(srv.port)
    try:
        g.send(os.urandom(40000).replace(b"#", b"x"))
    except OSError:
        pass
    check(g.closed(), "a connection sending only garbage is closed")
    d.send(upload(mn, t0 + 3600 * 13, 31.0)[1])
    check(len(d.packets()) == 1, "the other connection keeps working")
    d.close()
    srv.stop()
    rows = dump(db, f"{mn}:a21026:hour")
    vals = {int(r[1]): r[2] for r in rows}
    check(vals.get(t0) == "12.3" and vals.get(t0 + 3600 * 9) == "49" and vals.get(t0 + 7200) is None
          and len(vals) == 13,
          "stored: acknowledged values, pulled hours; not the bad-CRC packet")

    # Registered devices only: unknown MN and wrong PW are refused and closed after 3.
    reg = os.path.join(tmp, "reg")
    os.makedirs(reg)
    files = ",".join(pt.write_registry(
        reg, [{"id": "F1", "name": "Test Power Plant"}],
        [{"facility_id": "F1", "code": "DA001", "medium": "gas", "mn": mn, "pw": "654321",
          "o2_ref": 6}]))
    db2 = os.path.join(tmp, "reg-db")
    srv = pt.Serve(db2, "--registry.files", files)
    d = Device(srv.port)
    d.send(upload(mn, t0, 1.0, pw="654321")[1])
    check(len(d.packets()) == 1 and True, "a registered device with its PW is acknowledged")
    d.send(upload(mn, t0 + 3600, 1.0, pw="000000")[1])
    got = d.packets()
    check(len(got) == 1 and fields(got[0]).get("CN") == "9011" and "QnRtn=3" in got[0],
          "a wrong PW is answered 9011 QnRtn=3")
    u = Device(srv.port)
    for i in range(3):
        u.send(upload("FFFF00000000000000000000", t0, 1.0)[1])
    got = u.packets(want=3)
    check(len(got) >= 1 and "QnRtn=4" in got[0], "an unknown MN is answered 9011 QnRtn=4")
    check(u.closed(), "and closed after repeated failures")
    d.close()
    srv.stop()

    # kill -9: every acknowledged upload is stored after a restart.
    db3 = os.path.join(tmp, "kill")
    acked = {}
    for rnd in range(3):
        srv = pt.Serve(db3, "--open")
        d = Device(srv.port)
        sent = {}
        base = t0 + rnd * 1000 * 3600
        for i in range(300):
            q, pkt = upload(mn, base + i * 3600, f"{rnd}.{i}", flag=5)
            sent[q] = (base + i * 3600, f"{rnd}.{i}")
            d.send(pkt)
        got = d.packets(want=300, timeout=0.3 + rnd * 0.2)
        for g in got:
            q = fields(g).get("QN")
            if q in sent:
                acked[sent[q][0]] = sent[q][1]
        srv.kill()
        d.close()
    rows = dump(db3, f"{mn}:a21026:hour")
    stored = {int(r[1]): r[2] for r in rows}
    missing = [t for t, v in acked.items() if t not in stored or float(stored[t]) != float(v)]
    check(len(acked) > 0 and not missing,
          "after kill -9, all %d acknowledged uploads are stored (%d missing)" % (len(acked), len(missing)))


if __name__ == "__main__":
    main()
