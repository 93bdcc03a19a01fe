"""plumetest: what the Python integration tests share, so that each test file holds only its
own scenario and checks. Standard library only (the Modbus part imports pymodbus when used).

A test puts tests/ on its path and imports this module:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import plumetest as pt

    pt.init(sys.argv[1])                  # the plume binary
    srv = pt.Serve(db, "--open")          # plume serve on 127.0.0.1, ports chosen at run time
    pt.check(cond, "what was checked", detail)
    pt.finish()                           # prints the TAP plan and exits 1 if a check failed

What is here, by part:
- TAP: check, skip, diag, finish, skip_all, run_in_tmp.
- Processes: init, plume (run a subcommand), Serve (the daemon), wait_until, free_port,
  wait_listening.
- RESP: Resp (a client for RESP2 and RESP3), RespError, resp_encode, query (one command),
  redis_cli.
- HJ 212: crc212, crc16_modbus, frame, fields, hour_local, qn, upload, Device.
- Webhooks: Receiver (an http.server in a thread recording what it is sent).
- Files: write_text, write_json, write_csv, write_registry, write_subscriptions.
- Modbus: require_pymodbus, ModbusServer (Debian's pymodbus serving given registers).
"""
import atexit
import csv
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# ---------------------------------------------------------------------------- TAP

n_checks = 0
n_failed = 0


def check(ok, what, detail=None):
    """One TAP line for `what`; on failure `detail` follows as comment lines. Returns ok."""
    global n_checks, n_failed
    n_checks += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (n_checks, what))
    if not ok:
        n_failed += 1
        if detail is not None:
            text = detail if isinstance(detail, str) else repr(detail)
            for line in text.splitlines()[:20]:
                print("#   " + line)
    sys.stdout.flush()
    return bool(ok)


def skip(what, why):
    """A check that cannot run here: counted, passed, marked SKIP."""
    global n_checks
    n_checks += 1
    print("ok %d - %s # SKIP %s" % (n_checks, what, why), flush=True)


def diag(text):
    """Comment lines in the TAP output."""
    for line in str(text).splitlines() or [""]:
        print("# " + line)
    sys.stdout.flush()


def finish():
    """Prints the plan and exits: 1 if any check failed, else 0."""
    print("1..%d" % n_checks, flush=True)
    sys.exit(1 if n_failed else 0)


def run_in_tmp(run, prefix="plume-test-"):
    """run(tmp) in a fresh temporary directory, removed afterwards whatever happens; then
    finish()."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


def skip_all(why):
    """The whole test cannot run here (a missing package): a TAP skip, exit 0."""
    print("1..0 # SKIP %s" % why, flush=True)
    sys.exit(0)


# ---------------------------------------------------------------------------- processes

PLUME = None  # the plume binary, set by init()


def init(plume_path):
    """Sets the plume binary the helpers run; returns its absolute path."""
    global PLUME
    PLUME = os.path.abspath(plume_path)
    return PLUME


def plume(*args, stdin=None, binary=False, timeout=600):
    """Runs `plume ARGS...` to its end; the CompletedProcess (text unless binary)."""
    return subprocess.run([PLUME, *args], input=stdin, capture_output=True, text=not binary,
                          timeout=timeout)


class Serve:
    """`plume serve --db DB` with the query server (and, with hj212=True, the HJ 212 server)
    on 127.0.0.1 port 0, then ARGS. Waits until the daemon logs `ready`; raises RuntimeError
    with its log if it exits or does not get there within `timeout` seconds. Its stderr is
    read all along into `lines` (so the daemon never blocks on a full pipe).

    port, qport, mport: the HJ 212, query and metrics ports it logged (None if off)."""

    def __init__(self, db, *args, hj212=True, timeout=30, plume=None):
        cmd = [plume or PLUME, "serve", "--db", db,
               "--hj212.listen", "127.0.0.1:0" if hj212 else "",
               "--query.listen", "127.0.0.1:0", *args]
        self.p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace")
        atexit.register(self.p.kill)  # never leave a daemon behind a failing test
        self.port = self.qport = self.mport = None
        self.lines = []
        self._cond = threading.Condition()
        self._ready = False
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self.p.poll() is not None, timeout)
        if not self._ready:
            raise RuntimeError("plume serve did not start:\n" + self.text())

    def _drain(self):
        for line in self.p.stderr:
            with self._cond:
                self.lines.append(line)
                for attr, name in (("port", "hj212"), ("qport", "query"), ("mport", "metrics")):
                    m = re.search(r'msg="%s listening".* port=(\d+)' % name, line)
                    if m:
                        setattr(self, attr, int(m.group(1)))
                if "msg=ready" in line:
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def text(self):
        """The daemon's log so far."""
        with self._cond:
            return "".join(self.lines)

    def count(self, needle):
        """How many log lines so far contain `needle`."""
        with self._cond:
            return sum(needle in line for line in self.lines)

    def wait_log(self, needle, count=1, timeout=30.0):
        """Waits until `count` log lines contain `needle`; True if they did in time."""
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(needle in line for line in self.lines) >= count, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` (SIGTERM: a clean stop) and waits; the exit code (-9 if it had to be
        killed after `timeout` seconds)."""
        self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = -9
        self._reader.join(10)
        return rc

    def kill(self):
        """kill -9, as a crash would."""
        self.p.kill()
        self.p.wait()
        self._reader.join(10)


def wait_until(fn, timeout=30.0, interval=0.2):
    """Calls fn until it returns something true or `timeout` seconds pass; its last result."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()


def free_port():
    """A TCP port free on 127.0.0.1 right now (for servers that cannot take port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=15.0):
    """True once something accepts connections on 127.0.0.1:port."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------- RESP


class RespError(str):
    """An error reply (-ERR ...): a str, told apart by its type."""


def resp_encode(*args):
    """A command as a RESP array of bulk strings (str, bytes or numbers)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A RESP2/RESP3 connection to 127.0.0.1:port (or a Unix socket). Bulk strings come back
    as str (bytes with raw=True), errors as RespError. proto=3 sends HELLO 3 first (with
    AUTH default TOKEN when a token is given); a token with proto 2 sends AUTH TOKEN."""

    def __init__(self, port=None, unix=None, proto=2, token=None, raw=False, timeout=10):
        if unix:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(unix)
        else:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.settimeout(timeout)
        self.buf = b""
        self.raw = raw
        if proto == 3:
            self.cmd("HELLO", "3", *(["AUTH", "default", token] if token else []))
        elif token:
            r = self.cmd("AUTH", token)
            assert r == "OK", r

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, *args):
        self.send(resp_encode(*args))
        return self.reply()

    def _fill(self):
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data if self.raw else data.decode()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b",":
            return float(rest)
        if t == b"#":
            return rest == b"t"
        if t == b"_":
            return None
        if t in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._bytes(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if t == b"%":
            return {self.reply(): self.reply() for _ in range(int(rest))}
        raise ValueError("bad reply line %r" % line)

    def closed(self):
        """True when the server closed the connection (after any buffered replies)."""
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.s.close()


def query(port, *args):
    """One command on a connection of its own; the reply."""
    c = Resp(port)
    try:
        return c.cmd(*args)
    finally:
        c.close()


REDIS_CLI = "redis-cli"


def redis_cli(port, *args, proto=2, token=None, sock=None, stdin=None, exe=None):
    """redis-cli -p PORT ARGS... (or -s SOCK); its output, one value per line as when piped."""
    where = ["-s", sock] if sock else ["-p", str(port)]
    auth = ["-a", token, "--no-auth-warning"] if token else []
    r = subprocess.run([exe or REDIS_CLI, *where, *auth, *(["-3"] if proto == 3 else []),
                        *map(str, args)], input=stdin, capture_output=True, text=True,
                       timeout=30)
    return r.stdout


# ---------------------------------------------------------------------------- HJ 212


def crc212(data: bytes) -> int:
    """The CRC of HJ 212 (DOMAIN.md), not CRC-16/MODBUS: '123456789' gives 0x2F80."""
    r = 0xFFFF
    for b in data:
        r = (r >> 8) ^ b
        for _ in range(8):
            r = (r >> 1) ^ 0xA001 if r & 1 else r >> 1
    return r


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (Modbus RTU frames; some HJ 212 devices use it too)."""
    r = 0xFFFF
    for b in data:
        r ^= b
        for _ in range(8):
            r = (r >> 1) ^ 0xA001 if r & 1 else r >> 1
    return r


def frame(seg, crc=None) -> bytes:
    """An HJ 212 packet around the data segment `seg` (str or bytes), with its CRC unless
    `crc` is given."""
    b = seg.encode() if isinstance(seg, str) else seg
    c = crc212(b) if crc is None else crc
    return b"##%04d" % len(b) + b + b"%04X\r\n" % c


def fields(seg):
    """A data segment's fields {QN, ST, CN, ...}; 'CP' holds what stands between CP=&& and
    the closing &&."""
    if isinstance(seg, bytes):
        seg = seg.decode()
    head, _, cp = seg.partition("CP=&&")
    out = dict(kv.split("=", 1) for kv in head.strip(";").split(";") if "=" in kv)
    out["CP"] = cp[:-2] if cp.endswith("&&") else cp
    return out


def hour_local(t):
    """UTC seconds -> YYYYMMDDhhmmss at +08:00 (HJ 212's DataTime)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t + 8 * 3600))


_qn_seq = [0]


def qn():
    """A fresh request id: now at +08:00 with a counter for the milliseconds."""
    _qn_seq[0] += 1
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 8 * 3600)) + \
        "%03d" % (_qn_seq[0] % 1000)


def upload(mn, t, so2, flag=5, cn=2061, pw="123456", q=None):
    """An hourly (CN 2061) upload of SO2 (avg, min, max) and O2 for hour t: (QN, packet)."""
    q = q or qn()
    seg = (f"QN={q};ST=31;CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&DataTime={hour_local(t)};"
           f"a21026-Avg={so2},a21026-Min={so2},a21026-Max={so2},a21026-Flag=N;"
           f"a19001-Avg=8.5,a19001-Flag=N&&")
    return q, frame(seg)


class Device:
    """A DAQ unit: a TCP connection to the HJ 212 port."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def packets(self, timeout=2.0, want=1):
        """Reads until `want` packets arrived or timeout; returns their data segments."""
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
        """True when the server closed this connection within `timeout` seconds."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.s.close()


# ---------------------------------------------------------------------------- webhooks


class Receiver:
    """A webhook receiver: an HTTP server on 127.0.0.1 in a thread that records every POST
    as (arrival time, path, headers dict, body bytes) in `requests` (under `lock`) and
    answers per its mode: "ok" 200, "flaky" 500 on every other request, "hang" never.
    With start=False it listens only once start() is called (a receiver that is down).
    keep_alive=False answers in HTTP/1.0, closing each connection: the sender opens one per
    request, as to most robot and webhook endpoints."""

    def __init__(self, mode="ok", port=0, start=True, keep_alive=True):
        self.mode = mode
        self.keep_alive = keep_alive
        self.requests = []
        self.lock = threading.Lock()
        self.count = 0
        self.port = port
        self.server = None
        if start:
            self.start()

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.count += 1
                    n = receiver.count
                    receiver.requests.append((time.time(), self.path, dict(self.headers), body))
                if receiver.mode == "hang":
                    time.sleep(3)
                    return
                status = 500 if receiver.mode == "flaky" and n % 2 == 1 else 200
                reply = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def keys(self):
        """The Idempotency-Key of every request so far, in arrival order."""
        with self.lock:
            return [r[2].get("Idempotency-Key") for r in self.requests]

    def bodies(self):
        """The JSON body of every request so far, in arrival order."""
        with self.lock:
            return [json.loads(r[3]) for r in self.requests]

    def wait(self, n, timeout=5.0):
        """True once at least n requests arrived, False after `timeout` seconds."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.requests) >= n:
                    return True
            time.sleep(0.01)
        return False


# ---------------------------------------------------------------------------- files


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return path


def write_csv(path, rows):
    """A CSV file (RFC 4180 quoting, LF line ends) of rows: dicts (their first's keys are
    the header) or sequences whose first is the header."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        rows = list(rows)
        if rows and isinstance(rows[0], dict):
            w.writerow(rows[0].keys())
            w.writerows([r[k] for k in rows[0]] for r in rows)
        else:
            w.writerows(rows)
    return path


def write_registry(dir, facilities, outlets, limits=None):
    """facilities.csv, outlets.csv and (given limits) limits.csv in dir, each from a list of
    dicts (their keys are the header, so a test picks the columns). Returns the paths, in
    that order; ",".join(them) is the value of --registry.files."""
    paths = [write_csv(os.path.join(dir, "facilities.csv"), facilities),
             write_csv(os.path.join(dir, "outlets.csv"), outlets)]
    if limits is not None:
        paths.append(write_csv(os.path.join(dir, "limits.csv"), limits))
    return paths


def write_subscriptions(path, rows):
    """A follow list (--alerts.subscriptions): rows of (subscriber, match_kind, match_value,
    url, format)."""
    return write_csv(path, [("subscriber", "match_kind", "match_value", "url", "format"),
                            *rows])


# ---------------------------------------------------------------------------- Modbus


def require_pymodbus():
    """Makes sure pymodbus imports: re-runs the test with Debian's interpreter if this one
    lacks it, or skips the whole test when it is not installed."""
    try:
        import pymodbus  # noqa: F401
    except ImportError:
        if os.path.exists("/usr/bin/python3") and \
                os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        skip_all("python3-pymodbus is not installed (tools/deps installs it)")


_MODBUS_SERVER = r'''
import json, sys, threading
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext
port, units = int(sys.argv[1]), json.loads(sys.argv[2])
slaves = {int(u): ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, t.get("hr", [0]) or [0]),
                                     ir=ModbusSequentialDataBlock(0, t.get("ir", [0]) or [0]),
                                     zero_mode=True) for u, t in units.items()}
def commands():
    # {"unit": U, "table": "hr"|"ir", "address": A, "words": [...]} per line: new values
    for line in sys.stdin:
        c = json.loads(line)
        fc = 3 if c["table"] == "hr" else 4
        slaves[c["unit"]].setValues(fc, c["address"], c["words"])
        print("set", flush=True)
threading.Thread(target=commands, daemon=True).start()
StartTcpServer(context=ModbusServerContext(slaves=slaves, single=False),
               address=("127.0.0.1", port))
'''


class ModbusServer:
    """A Modbus TCP server that is not ours: pymodbus in a child process on 127.0.0.1.
    units: {unit id: {"hr": [holding register words], "ir": [input register words]}}.
    set() changes registers while it serves. Call require_pymodbus() first."""

    def __init__(self, units):
        self.port = free_port()
        self.p = subprocess.Popen([sys.executable, "-c", _MODBUS_SERVER, str(self.port),
                                   json.dumps(units)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        atexit.register(self.p.kill)
        self.up = wait_listening(self.port)

    def set(self, unit, table, address, words):
        """Writes words into table "hr" or "ir" of unit from address on; returns once the
        server holds them."""
        self.p.stdin.write(json.dumps({"unit": unit, "table": table, "address": address,
                                       "words": list(words)}) + "\n")
        self.p.stdin.flush()
        self.p.stdout.readline()

    def stop(self):
        self.p.terminate()
        self.p.wait(10)
