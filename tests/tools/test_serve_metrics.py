#!/usr/bin/env python3
"""The daemon's own metrics: a real `plume serve` with its metrics page on a free port, a
device sending over HJ 212, then the page read over HTTP (Prometheus text, checked by
Debian's promtool, and OpenMetrics on request), INFO metrics through redis-cli, and the
page's answers to requests it does not serve.

usage: test_serve_metrics.py PLUME"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402

pt.init(sys.argv[1])
MN = "88888880000001"


def scrape(port, accept=None):
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def samples(text):
    """{'name{labels}': value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def wait_sample(port, key, want, timeout=30.0):
    end = time.time() + timeout
    got = None
    while time.time() < end:
        got = samples(scrape(port)[1]).get(key)
        if got == want:
            return True
        time.sleep(0.05)
    print("# %s = %r, wanted %r" % (key, got, want))
    return False


def raw_http(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out.decode(errors="replace")
            out += b


def run(tmp):
    db = os.path.join(tmp, "db")
    srv = pt.Serve(db, "--open", "--metrics.listen", "127.0.0.1:0")
    mport = srv.mport
    pt.check(mport is not None, "the daemon says where its metrics page listens")
    if not mport:
        srv.stop()
        return

    ctype, text = scrape(mport)
    pt.check(ctype.startswith("text/plain; version=0.0.4"), "Prometheus text by default")
    s = samples(text)
    pt.check(s.get('plume_hj212_packet_results_total{result="accepted"}') == 0,
            "no packets accepted before any device spoke")

    dev = pt.Device(srv.port)
    now = int(time.time()) // 3600 * 3600 - 3600
    for i in range(3):
        _, pkt = pt.upload(MN, now - i * 3600, 10 + i)
        dev.send(pkt)
    acks = dev.packets(timeout=10, want=3)
    pt.check(len(acks) == 3, "three uploads acknowledged")
    bad = bytearray(pt.upload(MN, now, 5)[1])
    bad[-4] = ord("0") if bad[-4] != ord("0") else ord("1")  # spoil the CRC
    dev.send(bytes(bad))
    pt.check(wait_sample(mport, 'plume_hj212_packet_results_total{result="crc_bad"}', 1),
            "a packet with a bad CRC is counted as crc_bad")
    s = samples(scrape(mport)[1])
    pt.check(s.get('plume_hj212_packet_results_total{result="accepted"}') == 3,
            "the three uploads are counted as accepted")
    pt.check(s.get("plume_hj212_acks_total") == 3, "three acknowledgements counted")
    pt.check(s.get('plume_hj212_connections{kind="direct"}') == 1, "one direct device connected")
    pt.check(s.get('plume_ingest_uploads_total{result="committed"}') == 3,
            "three uploads committed")
    pt.check(s.get("plume_ingest_points_total", 0) >= 6, "their points counted")
    pt.check(s.get("plume_storage_series", 0) >= 2, "the store's series shown")
    pt.check(s.get("plume_storage_commits_total", 0) >= 1 and
            s.get("plume_storage_commit_seconds_total", -1) >= 0, "commits and their time shown")
    pt.check(0 < s.get("plume_storage_map_used_bytes", 0) <= s.get("plume_storage_map_size_bytes", 0),
            "LMDB map use within the map size")
    pt.check(s.get("process_resident_memory_bytes", 0) > 1e6, "the process' memory shown")

    promtool = shutil.which("promtool")
    pt.check(promtool is not None, "promtool is installed (tools/deps)")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=scrape(mport)[1].encode(),
                           capture_output=True)
        pt.check(r.returncode == 0, "promtool check metrics accepts the page: %s" %
                (r.stdout + r.stderr).decode().strip().replace("\n", "; ")[:300])

    ctype, om = scrape(mport, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    pt.check(ctype.startswith("application/openmetrics-text; version=1.0.0"),
            "OpenMetrics when the scraper asks for it")
    pt.check(om.endswith("# EOF\n"), "the OpenMetrics page ends with # EOF")
    pt.check("# TYPE plume_hj212_acks counter" in om and "\nplume_hj212_acks_total 3\n" in om,
            "OpenMetrics counter families are named without _total, their samples with it")

    info = pt.redis_cli(srv.qport, "INFO", "metrics")
    pt.check("# Metrics" in info and "plume_hj212_acks_total:3" in info,
            "INFO metrics through redis-cli shows the same counters")
    pt.check(re.search(r"plume_hj212_packet_results_total:accepted=3,crc_bad=1,", info) is not None,
            "a labelled family is one INFO line of label=value pairs")

    r404 = raw_http(mport, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    pt.check(r404.startswith("HTTP/1.1 404"), "another path: 404")
    r405 = raw_http(mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    pt.check(r405.startswith("HTTP/1.1 405"), "another method: 405")
    r431 = raw_http(mport, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    pt.check(r431.startswith("HTTP/1.1 431"), "a request head too large: 431")
    rhead = raw_http(mport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    pt.check(rhead.startswith("HTTP/1.1 200") and rhead.endswith("\r\n\r\n"),
            "HEAD: the head without the body")

    # A second daemon whose metrics address is taken still collects data.
    db2 = os.path.join(tmp, "db2")
    srv2 = pt.Serve(db2, "--open", "--metrics.listen", "127.0.0.1:%d" % mport)
    pt.check("metrics page not started" in srv2.text(), "a taken metrics address is logged")
    dev2 = pt.Device(srv2.port)
    dev2.send(pt.upload(MN, now, 7)[1])
    pt.check(len(dev2.packets(timeout=10)) == 1, "and that daemon still acknowledges uploads")
    dev2.close()
    srv2.stop()
    dev.close()
    srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="plume-metrics-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pt.finish()


if __name__ == "__main__":
    main()
