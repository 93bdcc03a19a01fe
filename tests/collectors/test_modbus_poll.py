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
import select
import signal
import struct
import subprocess
import sys
import tempfile
import shutil
import threading
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, wait_until  # noqa: E402

pt.require_pymodbus()
from pymodbus.constants import Endian  # noqa: E402
from pymodbus.payload import BinaryPayloadBuilder  # noqa: E402

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


def served_registers(order):
    """The holding and input registers of one unit, encoded by pymodbus in byte order
    `order` (the layout above; the input float32 at address 20)."""
    bo, wo = ORDERS[order]
    b = BinaryPayloadBuilder(byteorder=bo, wordorder=wo)
    b.add_16bit_int(-1234)
    b.add_16bit_uint(54321)
    b.add_32bit_int(-123456789)
    b.add_32bit_uint(3000000000)
    b.add_32bit_float(F32)
    b.add_64bit_float(F64)
    i = BinaryPayloadBuilder(byteorder=bo, wordorder=wo)
    i.add_32bit_float(F32_INPUT)
    return {"hr": b.to_registers(), "ir": [0] * 20 + i.to_registers()}


def serve(db, config):
    """plume serve polling the Modbus configuration `config` (no HJ 212 listener)."""
    return pt.Serve(db, "--modbus.config", config, hj212=False)


def sources(db, *args):
    """`plume sources` of the store: {mn: state record}."""
    out = pt.plume("sources", "--db", db, *args).stdout
    return {j["mn"]: j for j in map(json.loads, out.splitlines())}


def value_of(reply):
    """TS.GET's [ts, value] -> float, or None."""
    if isinstance(reply, list) and len(reply) == 2:
        return float(reply[1])
    return None


def part_pymodbus(plume, tmp):
    srv = pt.ModbusServer({unit: served_registers(name)
                           for unit, name in enumerate(ORDERS, start=1)})
    check(srv.up, "pymodbus server listens")
    templates, devices = [], []
    for unit, name in enumerate(ORDERS, start=1):
        regs = [{"code": c, "address": a, "type": t} for c, a, t, _ in LAYOUT]
        regs.append({"code": "in32", "table": "input", "address": 20, "type": "float32"})
        templates.append({"name": "t-" + name, "order": name, "registers": regs})
        devices.append({"mn": "PYMB-" + name, "unit": unit, "template": "t-" + name})
    cfg = {"templates": templates,
           "gateways": [{"name": "pymodbus", "tcp": "127.0.0.1:%d" % srv.port,
                         "interval_ms": 1000, "devices": devices}]}
    cpath = os.path.join(tmp, "pymodbus.json")
    pt.write_json(cpath, cfg)
    sv = serve(os.path.join(tmp, "db1"), cpath)
    r = pt.Resp(sv.qport)
    for name in ORDERS:
        mn = "PYMB-" + name
        got = wait_until(lambda: value_of(r.cmd("TS.GET", mn + ":f64:rtd")))
        check(got is not None, f"{name}: readings stored")
        for code, _, typ, want in LAYOUT:
            v = value_of(r.cmd("TS.GET", f"{mn}:{code}:rtd"))
            if typ == "float32":
                want = as_float32(want)
            check(v == want, f"{name} {typ}: stored {v!r} == served {want!r}")
        v = value_of(r.cmd("TS.GET", mn + ":in32:rtd"))
        check(v == as_float32(F32_INPUT), f"{name} input register float32: {v!r}")
    states = sources(os.path.join(tmp, "db1"), "--kind", "modbus")
    sv.stop()
    srv.stop()
    check(len(states) == 4 and all(x["state"] == "up" for x in states.values()),
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
    check(wait_until(lambda: os.path.exists(cpath)), "plume sim writes the configuration")
    cfg = json.load(open(cpath))
    gws = cfg["gateways"]
    check(len(gws) == 3 and sum(len(g["devices"]) for g in gws) == 24,
          "3 gateways of 8 devices")
    db = os.path.join(tmp, "db2")
    sv = serve(db, cpath)
    t0 = time.time()
    dead = {d["mn"] for d in gws[1]["devices"]}
    misconf = gws[0]["devices"][2]["mn"]
    healthy = [d for g in (gws[0], gws[2]) for d in g["devices"] if d["mn"] != misconf]

    def states():
        return sources(db)

    st = wait_until(lambda: (lambda s: s if all(s.get(m, {}).get("state") == "down"
                                              for m in dead) else None)(states()), 60)
    check(st is not None, "every device of the dead gateway is down")
    st = states()
    check(st.get(misconf, {}).get("state") == "misconfigured",
          "the misconfigured device is misconfigured")
    check("Illegal data address" in st.get(misconf, {}).get("last_error", ""),
          "its last error names the exception")
    check(all(st.get(d["mn"], {}).get("state") == "up" for d in healthy),
          "every other device is up")
    r = pt.Resp(sv.qport)
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
        return pdu + struct.pack("<H", pt.crc16_modbus(pdu))

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
                if pt.crc16_modbus(frame[:6]) != struct.unpack("<H", frame[6:8])[0]:
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
    pt.write_json(cpath, cfg)
    db = os.path.join(tmp, "db3")
    sv = serve(db, cpath)
    r = pt.Resp(sv.qport)
    v = wait_until(lambda: value_of(r.cmd("TS.GET", "RTU-5:f32:rtd")))
    check(v == 12.5, f"RTU: float32 CDAB read over the serial line: {v!r}")
    v = value_of(r.cmd("TS.GET", "RTU-5:i16:rtd"))
    check(v is not None and abs(v - -0.7) < 1e-12, f"RTU: int16 with scale 0.1: {v!r}")
    v = wait_until(lambda: value_of(r.cmd("TS.GET", "RTU-6:i16:rtd")))
    check(v is not None and abs(v - 123.4) < 1e-9, f"RTU: second unit id: {v!r}")
    states = wait_until(lambda: (lambda s: s if s.get("RTU-9", {}).get("state") == "down" else None)(
        sources(db)))
    check(states is not None, "RTU: a unit id nobody answers is down")
    sv.stop()
    dev.stop = True


def main():
    plume = pt.init(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="plume-modbus-")
    atexit.register(shutil.rmtree, tmp, True)
    part_pymodbus(plume, tmp)
    part_sim(plume, tmp)
    part_rtu(plume, tmp)
    pt.finish()


if __name__ == "__main__":
    main()
