#!/usr/bin/env python3
"""The HJ 212 server end to end: a real `plume serve` on 127.0.0.1 (port 0) and devices
written here with the standard library. Checks acknowledgements only after commit, CRC and
device checks, framing faults, history pulls for gaps, clock answers, garbage isolation,
and that every acknowledged reading survives kill -9.

usage: test_hj212_server.py PLUME"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import atexit

PLUME = os.path.abspath(sys.argv[1])
n_checks = 0
failed = 0


def check(cond, what):
    global n_checks, failed
    n_checks += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n_checks, what), flush=True)
    if not cond:
        failed += 1


def crc212(data: bytes) -> int:
    r = 0xFFFF
    for b in data:
        r = (r >> 8) ^ b
        for _ in range(8):
            r = (r >> 1) ^ 0xA001 if r & 1 else r >> 1
    return r


def frame(seg: str, crc=None) -> bytes:
    b = seg.encode()
    c = crc212(b) if crc is None else crc
    return b"##%04d" % len(b) + b + b"%04X\r\n" % c


def hour_local(t):
    """UTC seconds -> YYYYMMDDhhmmss at +08:00."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t + 8 * 3600))


QN_SEQ = [0]


def qn():
    QN_SEQ[0] += 1
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 8 * 3600)) + "%03d" % (QN_SEQ[0] % 1000)


def upload(mn, t, so2, flag=5, cn=2061, pw="123456", q=None):
    q = q or qn()
    seg = (f"QN={q};ST=31;CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&DataTime={hour_local(t)};"
           f"a21026-Avg={so2},a21026-Min={so2},a21026-Max={so2},a21026-Flag=N;"
           f"a19001-Avg=8.5,a19001-Flag=N&&")
    return q, frame(seg)


class Device:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def packets(self, timeout=2.0, want=1):
        """Reads until `want` packets arrived or timeout; returns data segments."""
        out = []
        end = time.time() + timeout
        while len(out) < want and time.time() < end:
            while b"\r\n" in self.buf and len(out) < want:
                line, self.buf = self.buf.split(b"\r\n", 1)
                i = line.find(b"##")
                if i >= 0:
                    out.append(line[i + 6:-4].decode())
            if len(out) >= want:
                break
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        return out

    def closed(self, timeout=2.0):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.s.close()


def fields(seg):
    return dict(kv.split("=", 1) for kv in seg.split("CP=")[0].strip(";").split(";") if "=" in kv)


class Server:
    def __init__(self, db, *args):
        self.log = open(os.path.join(db + ".log"), "ab")
        self.p = subprocess.Popen([PLUME, "serve", "--db", db, "--hj212.listen", "127.0.0.1:0",
                                   "--query.listen", "127.0.0.1:0", *args],
                                  stderr=subprocess.PIPE)
        atexit.register(self.p.kill)  # never leave a server behind a failing test
        self.port = None
        end = time.time() + 10
        while time.time() < end:
            line = self.p.stderr.readline().decode()
            if not line:
                break
            self.log.write(line.encode())
            m = re.search(r'msg="hj212 listening".* port=(\d+)', line)
            if m:
                self.port = int(m.group(1))
            m = re.search(r'msg="query listening".* port=(\d+)', line)
            if m:
                self.qport = int(m.group(1))
            if 'msg=ready' in line:
                break
        assert self.port, "server did not start"

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        rest = self.p.stderr.read()
        self.log.write(rest)
        self.p.wait(10)
        return rest.decode()


def resp_read(f):
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise ValueError("unexpected reply %r" % line)


def query(port, *args):
    """One command to the query server with a minimal RESP client."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        req = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        s.sendall(req)
        return resp_read(s.makefile("rb"))


def dump(db, series):
    """The series' points as [key, unix seconds, value], read back through TS.RANGE."""
    srv = Server(db, "--open")
    try:
        rows = query(srv.qport, "TS.RANGE", series, "-", "+")
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
    print("1..%d" % n_checks)
    sys.exit(1 if failed else 0)


def run(tmp):
    mn = "010000A8900016F000169DC0"
    t0 = 1700000000 // 3600 * 3600
    db = os.path.join(tmp, "open")
    srv = Server(db, "--open")

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
    with open(os.path.join(reg, "facilities.csv"), "w") as f:
        f.write("id,name\nF1,Test Power Plant\n")
    with open(os.path.join(reg, "outlets.csv"), "w") as f:
        f.write(f"facility_id,code,medium,mn,pw,o2_ref\nF1,DA001,gas,{mn},654321,6\n")
    files = ",".join(os.path.join(reg, x) for x in ("facilities.csv", "outlets.csv"))
    db2 = os.path.join(tmp, "reg-db")
    srv = Server(db2, "--registry.files", files)
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
        srv = Server(db3, "--open")
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
        srv.p.kill()
        srv.p.wait()
        d.close()
    rows = dump(db3, f"{mn}:a21026:hour")
    stored = {int(r[1]): r[2] for r in rows}
    missing = [t for t, v in acked.items() if t not in stored or float(stored[t]) != float(v)]
    check(len(acked) > 0 and not missing,
          "after kill -9, all %d acknowledged uploads are stored (%d missing)" % (len(acked), len(missing)))


if __name__ == "__main__":
    main()
