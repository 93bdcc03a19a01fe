#!/usr/bin/env python3
"""The Modbus poller end to end through `plume serve` (127.0.0.1, ports chosen at run time).

1. A Modbus TCP server that is not ours (Debian's python3-pymodbus) serves known values of
   every type in all four byte orders, one unit id per order, in the holding and the input
   table; the values plume stores (read back with TS.GET over RESP) equal them exactly.
2. `plume sim --modbus` with one dead gateway (it accepts and never answers) and one
   misconfigured device (it answers exception 2): the other devices are read on schedule, the
   states in the store say down and misconfigured (`plume sources`), and the readings roll up
   into minute records equal to the mean of the minute's readings (`plume dump`).
3. A serial line (RTU) over a pseudo-terminal, with devices written here answering two unit
   ids and a third unit id nobody answers.

usage: test_modbus_poll.py PLUME"""
import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty

try:
    from pymodbus.constants import Endian
    from pymodbus.payload import BinaryPayloadBuilder
except ImportError:
    # pymodbus is a Debian package: use the system interpreter if this one lacks it.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("1..0 # SKIP python3-pymodbus is not installed (tools/deps installs it)")
    sys.exit(0)

n_checks = 0
failed = 0


def check(cond, what):
    global n_checks, failed
    n_checks += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n_checks, what), flush=True)
    if not cond:
        failed += 1


ORDERS = {  # name: (byteorder, wordorder) as pymodbus says it
    "ABCD": (Endian.Big, Endian.Big),
    "CDAB": (Endian.Big, Endian.Little),
    "BADC": (Endian.Little, Endian.Big),
    "DCBA": (Endian.Little, Endian.Little),
}
F32 = 23.45
F64 = -1234.5678
F32_INPUT = 20.9
# (code, address, type, value as the register holds it)
LAYOUT = [("i16", 0, "int16", -1234), ("u16", 1, "uint16", 54321),
          ("i32", 2, "int32", -123456789), ("u32", 4, "uint32", 3000000000),
          ("f32", 6, "float32", F32), ("f64", 8, "float64", F64)]


def as_float32(v):
    return struct.unpack(">f", struct.pack(">f", v))[0]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SERVER = r'''
import sys
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext
from pymodbus.payload import BinaryPayloadBuilder
from pymodbus.constants import Endian
port = int(sys.argv[1])
orders = [(Endian.Big, Endian.Big), (Endian.Big, Endian.Little), (Endian.Little, Endian.Big),
          (Endian.Little, Endian.Little)]
slaves = {}
for unit, (bo, wo) in enumerate(orders, start=1):
    b = BinaryPayloadBuilder(byteorder=bo, wordorder=wo)
    b.add_16bit_int(-1234)
    b.add_16bit_uint(54321)
    b.add_32bit_int(-123456789)
    b.add_32bit_uint(3000000000)
    b.add_32bit_float(23.45)
    b.add_64bit_float(-1234.5678)
    hr = b.to_registers()
    i = BinaryPayloadBuilder(byteorder=bo, wordorder=wo)
    i.add_32bit_float(20.9)
    ir = [0] * 20 + i.to_registers()
    slaves[unit] = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, hr),
                                      ir=ModbusSequentialDataBlock(0, ir), zero_mode=True)
StartTcpServer(context=ModbusServerContext(slaves=slaves, single=False),
               address=("127.0.0.1", port))
'''


def resp_encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Resp:
    """Just enough of a RESP client for TS.GET and TS.RANGE."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        self.s.sendall(resp_encode(*args))
        return self.reply()

    def reply(self):
        line = self.f.readline().rstrip(b"\r\n")
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return rest.decode() if t == b"+" else RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:n]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("reply %r" % line)


class Serve:
    def __init__(self, plume, db, config, *extra):
        self.logpath = db + ".log"
        self.log = open(self.logpath, "wb")
        self.p = subprocess.Popen([plume, "serve", "--db", db, "--hj212.listen=",
                                   "--query.listen", "127.0.0.1:0", "--modbus.config", config,
                                   *extra], stderr=self.log)
        atexit.register(self.p.kill)
        self.qport = None
        end = time.time() + 30
        while time.time() < end and self.qport is None and self.p.poll() is None:
            m = re.search(r'msg="query listening".* port=(\d+)', self.text())
            if m:
                self.qport = int(m.group(1))
            time.sleep(0.05)
        if self.qport is None:
            raise RuntimeError("plume serve did not start:\n" + self.text())

    def text(self):
        with open(self.logpath, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(30)


def wait_for(fn, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return fn()


def value_of(reply):
    """TS.GET's [ts, value] -> float, or None."""
    if isinstance(reply, list) and len(reply) == 2:
        return float(reply[1])
    return None


def part_pymodbus(plume, tmp):
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(port)],
                           stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    atexit.register(srv.kill)
    # Wait for the server to listen.
    up = False
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            up = True
            break
        except OSError:
            time.sleep(0.1)
    check(up, "pymodbus server listens")
    templates, devices = [], []
    for unit, name in enumerate(ORDERS, start=1):
        regs = [{"code": c, "address": a, "type": t} for c, a, t, _ in LAYOUT]
        regs.append({"code": "in32", "table": "input", "address": 20, "type": "float32"})
        templates.append({"name": "t-" + name, "order": name, "registers": regs})
        devices.append({"mn": "PYMB-" + name, "unit": unit, "template": "t-" + name})
    cfg = {"templates": templates,
           "gateways": [{"name": "pymodbus", "tcp": "127.0.0.1:%d" % port,
                         "interval_ms": 1000, "devices": devices}]}
    cpath = os.path.join(tmp, "pymodbus.json")
    with open(cpath, "w") as f:
        json.dump(cfg, f)
    sv = Serve(plume, os.path.join(tmp, "db1"), cpath)
    r = Resp(sv.qport)
    for name in ORDERS:
        mn = "PYMB-" + name
        got = wait_for(lambda: value_of(r.cmd("TS.GET", mn + ":f64:rtd")))
        check(got is not None, f"{name}: readings stored")
        for code, _, typ, want in LAYOUT:
            v = value_of(r.cmd("TS.GET", f"{mn}:{code}:rtd"))
            if typ == "float32":
                want = as_float32(want)
            check(v == want, f"{name} {typ}: stored {v!r} == served {want!r}")
        v = value_of(r.cmd("TS.GET", mn + ":in32:rtd"))
        check(v == as_float32(F32_INPUT), f"{name} input register float32: {v!r}")
    states = subprocess.run([plume, "sources", "--db", os.path.join(tmp, "db1"), "--kind",
                             "modbus"], capture_output=True, text=True)
    sv.stop()
    srv.terminate()
    srv.wait(10)
    recs = [json.loads(l) for l in states.stdout.splitlines()]
    check(len(recs) == 4 and all(x["state"] == "up" for x in recs),
          "plume sources: the four devices are up")


def dump_points(plume, db):
    out = subprocess.run([plume, "dump", "--db", db], capture_output=True, text=True,
                         check=True).stdout
    pts = {}
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(",")
        pts.setdefault(parts[0], []).append((int(parts[1]), float(parts[2])))
    return pts


def part_sim(plume, tmp):
    cpath = os.path.join(tmp, "sim.json")
    sim = subprocess.Popen([plume, "sim", "--facilities", "30", "--modbus", "127.0.0.1:0",
                            "--modbus-devices", "24", "--modbus-units", "8",
                            "--modbus-dead-gateway", "1", "--modbus-misconfigured", "2",
                            "--modbus-interval-ms", "2000", "--modbus-config-out", cpath],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    atexit.register(sim.kill)
    check(wait_for(lambda: os.path.exists(cpath)), "plume sim writes the configuration")
    cfg = json.load(open(cpath))
    gws = cfg["gateways"]
    check(len(gws) == 3 and sum(len(g["devices"]) for g in gws) == 24,
          "3 gateways of 8 devices")
    db = os.path.join(tmp, "db2")
    sv = Serve(plume, db, cpath)
    t0 = time.time()
    dead = {d["mn"] for d in gws[1]["devices"]}
    misconf = gws[0]["devices"][2]["mn"]
    healthy = [d for g in (gws[0], gws[2]) for d in g["devices"] if d["mn"] != misconf]

    def states():
        out = subprocess.run([plume, "sources", "--db", db], capture_output=True,
                             text=True).stdout
        return {j["mn"]: j for j in map(json.loads, out.splitlines())}

    st = wait_for(lambda: (lambda s: s if all(s.get(m, {}).get("state") == "down"
                                              for m in dead) else None)(states()), 60)
    check(st is not None, "every device of the dead gateway is down")
    st = states()
    check(st.get(misconf, {}).get("state") == "misconfigured",
          "the misconfigured device is misconfigured")
    check("Illegal data address" in st.get(misconf, {}).get("last_error", ""),
          "its last error names the exception")
    check(all(st.get(d["mn"], {}).get("state") == "up" for d in healthy),
          "every other device is up")
    r = Resp(sv.qport)
    rows = r.cmd("CEMS.SOURCES", "modbus:*", "STATE", "misconfigured")
    names = [row[row.index("name") + 1] for row in rows] if isinstance(rows, list) else rows
    check(names == [misconf], f"CEMS.SOURCES ... STATE misconfigured: {names!r}")
    rows = r.cmd("CEMS.SOURCES", "modbus:*", "STATE", "down")
    names = sorted(row[row.index("name") + 1] for row in rows) if isinstance(rows, list) else rows
    check(names == sorted(dead), "CEMS.SOURCES ... STATE down: the dead gateway's devices")
    time.sleep(max(0.0, 12 - (time.time() - t0)))
    elapsed = time.time() - t0
    counts = []
    for d in healthy:
        pts = r.cmd("TS.RANGE", d["mn"] + ":a21026:rtd" if d["template"].startswith("gas")
                    else d["mn"] + ":w01018:rtd", "-", "+")
        counts.append(len(pts) if isinstance(pts, list) else 0)
    expected = elapsed / 2.0
    # Readings are on schedule: each healthy device read about every 2 s. A generous floor:
    # timing belongs to the benchmark, this checks that the dead gateway blocks nobody.
    check(min(counts) >= expected * 0.5,
          f"healthy devices read on schedule beside a dead gateway: min {min(counts)} "
          f"readings in {elapsed:.1f} s (interval 2 s)")
    sv.stop()
    sim.send_signal(signal.SIGTERM)
    sim.wait(10)
    pts = dump_points(plume, db)
    d0 = healthy[0]["mn"]
    code = "a21026" if healthy[0]["template"].startswith("gas") else "w01018"
    rtd = pts.get(f"{d0}:{code}:rtd", [])
    mins = pts.get(f"{d0}:{code}:min", [])
    check(len(rtd) > 0 and len(mins) > 0, f"{d0}: readings and minute records stored")
    ok = len(mins) > 0
    for ts, avg in mins:
        vals = [v for t, v in rtd if ts <= t < ts + 60]
        if not vals or abs(sum(vals) / len(vals) - avg) > 1e-9 * max(1.0, abs(avg)):
            ok = False
    check(ok, "each minute record is the mean of its minute's readings")
    check(not any(k.startswith(misconf + ":") for k in pts),
          "nothing stored for the misconfigured device")
    check(not any(k.split(":")[0] in dead for k in pts), "nothing stored for the dead gateway")


def crc16_modbus(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class RtuDevices(threading.Thread):
    """Modbus RTU devices written here (no library), on the master side of a pseudo-terminal
    whose slave path plume opens as its serial line."""

    def __init__(self, regs):
        super().__init__(daemon=True)
        self.regs = regs  # unit id -> list of holding register words
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.requests = 0
        self.stop = False

    def answer(self, frame):
        unit, fc, addr, count = frame[0], frame[1], *struct.unpack(">HH", frame[2:6])
        if unit not in self.regs:
            return None  # nobody there: the master times out
        words = self.regs[unit]
        if fc != 3:
            pdu = bytes([unit, fc | 0x80, 1])
        elif addr + count > len(words):
            pdu = bytes([unit, fc | 0x80, 2])
        else:
            data = b"".join(struct.pack(">H", w) for w in words[addr:addr + count])
            pdu = bytes([unit, fc, len(data)]) + data
        return pdu + struct.pack("<H", crc16_modbus(pdu))

    def run(self):
        buf = b""
        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if not r:
                buf = b""  # a silent gap ends a frame, as on a real line
                continue
            try:
                buf += os.read(self.master, 256)
            except OSError:
                return
            while len(buf) >= 8:
                frame, buf = buf[:8], buf[8:]
                if crc16_modbus(frame[:6]) != struct.unpack("<H", frame[6:8])[0]:
                    buf = b""
                    break
                self.requests += 1
                out = self.answer(frame)
                if out:
                    os.write(self.master, out)


def part_rtu(plume, tmp):
    """A serial line (RTU) with two devices behind it, over a pseudo-terminal."""
    f = struct.pack(">f", 12.5)
    cdab = [struct.unpack(">H", f[2:4])[0], struct.unpack(">H", f[0:2])[0]]
    dev = RtuDevices({5: cdab + [struct.unpack(">H", struct.pack(">h", -7))[0]],
                      6: [0, 0, 1234]})
    dev.start()
    cfg = {"templates": [{"name": "rtu", "order": "CDAB", "registers": [
               {"code": "f32", "address": 0, "type": "float32"},
               {"code": "i16", "address": 2, "type": "int16", "scale": 0.1}]}],
           "gateways": [{"name": "line", "rtu": dev.path, "baud": 19200, "parity": "E",
                         "interval_ms": 1000, "response_timeout_ms": 500,
                         "devices": [{"mn": "RTU-5", "unit": 5, "template": "rtu"},
                                     {"mn": "RTU-6", "unit": 6, "template": "rtu"},
                                     {"mn": "RTU-9", "unit": 9, "template": "rtu"}]}]}
    cpath = os.path.join(tmp, "rtu.json")
    with open(cpath, "w") as fh:
        json.dump(cfg, fh)
    db = os.path.join(tmp, "db3")
    sv = Serve(plume, db, cpath)
    r = Resp(sv.qport)
    v = wait_for(lambda: value_of(r.cmd("TS.GET", "RTU-5:f32:rtd")))
    check(v == 12.5, f"RTU: float32 CDAB read over the serial line: {v!r}")
    v = value_of(r.cmd("TS.GET", "RTU-5:i16:rtd"))
    check(v is not None and abs(v - -0.7) < 1e-12, f"RTU: int16 with scale 0.1: {v!r}")
    v = wait_for(lambda: value_of(r.cmd("TS.GET", "RTU-6:i16:rtd")))
    check(v is not None and abs(v - 123.4) < 1e-9, f"RTU: second unit id: {v!r}")
    states = wait_for(lambda: (lambda s: s if s.get("RTU-9", {}).get("state") == "down" else None)(
        {j["mn"]: j for j in map(json.loads, subprocess.run(
            [plume, "sources", "--db", db], capture_output=True, text=True).stdout.splitlines())}))
    check(states is not None, "RTU: a unit id nobody answers is down")
    sv.stop()
    dev.stop = True


def main():
    plume = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="plume-modbus-")
    atexit.register(shutil.rmtree, tmp, True)
    part_pymodbus(plume, tmp)
    part_sim(plume, tmp)
    part_rtu(plume, tmp)
    print("1..%d" % n_checks)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
