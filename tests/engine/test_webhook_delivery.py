#!/usr/bin/env python3
"""Alert delivery end to end, with receivers written in the Python standard library.

alert_send (a small C program on the real delivery code) loads a subscriptions CSV and
submits alerts; the receivers here are http.server instances on 127.0.0.1, port 0, each
with a behaviour: healthy, failing every other request, down for a while then up, hanging.
Checks: the JSON and robot bodies have the documented shape, subscriptions route by kind,
everything arrives, repeats carry the same idempotency key and body, and a hanging or
refusing receiver does not delay a healthy one. Output is TAP.

Usage: test_webhook_delivery.py --tool path/to/alert_send
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import Receiver, check, free_port  # noqa: E402


def run(tool, csv_text, n, timeout_ms=8000):
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write(csv_text)
        path = f.name
    try:
        out = subprocess.run([tool, path, str(n), str(timeout_ms)], capture_output=True,
                             text=True, timeout=timeout_ms / 1000 + 20)
    finally:
        os.unlink(path)
    fields = dict(kv.split("=") for kv in out.stdout.split())
    return {k: int(v) for k, v in fields.items()}, out.stderr


def test_shapes_and_routing(tool):
    hook, ding, wecom = Receiver(), Receiver(), Receiver()
    csv_text = (
        "subscriber,match_kind,match_value,url,format,header\n"
        f"all-json,all,,{hook.url()},json,Authorization: Bearer t0k\n"
        f"f1-ding,facility,F1,{ding.url('/robot/send?access_token=x')},dingtalk,\n"
        f"r320103,region,320103,{wecom.url('/cgi-bin/webhook/send?key=k')},wecom,\n"
        f"ind,industry,4411,{wecom.url('/cgi-bin/webhook/send?key=k')},wecom,\n"
        "broken,region,32x,http://127.0.0.1:1/,json\n"
    )
    stats, err = run(tool, csv_text, 6)
    check(":6: a region prefix is digits only" in err,
          "a bad subscriptions row is reported with its line")
    check(stats["pending"] == 0 and stats["failed"] == 0, "every delivery finished")
    check(len(hook.requests) == 6, "the all-json subscriber got all 6 alerts")
    bodies = [json.loads(r[3]) for r in hook.requests]
    ids = sorted(b["id"] for b in bodies)
    check(ids == sorted(f"it-{i}" for i in range(6)), "each alert once, by id")
    b0 = next(b for b in bodies if b["id"] == "it-0")
    check(b0["schema"] == "plume.alert/1" and b0["state"] == "firing" and b0["revision"] == 1,
          "JSON: schema, state, revision")
    check(b0["facility_id"] == "F0" and b0["region"] == "320101" and b0["pollutant"] == "a21002"
          and b0["limit"] == 50 and b0["value"] == 75 and b0["unit"] == "mg/m3",
          "JSON: facility, region, pollutant, limit, value, unit")
    check(b0["start"] == "2026-11-30T00:00:00+08:00" and b0["end"] is None, "JSON: times at +08:00")
    h0 = next(r[2] for r in hook.requests if json.loads(r[3])["id"] == "it-0")
    check(h0.get("Idempotency-Key") == "it-0:firing:1", "Idempotency-Key header")
    check(h0.get("Authorization") == "Bearer t0k", "the subscription's header is sent")
    check(h0.get("Content-Type", "").startswith("application/json"), "Content-Type is JSON")

    # F1 are ids 1 and 4; the DingTalk robot gets exactly those, as markdown.
    ding_ids = sorted(r[2]["Idempotency-Key"] for r in ding.requests)
    check(ding_ids == ["it-1:firing:1", "it-4:firing:1"], "facility subscription routes F1 only")
    d = json.loads(ding.requests[0][3]) if ding.requests else {}
    check(d.get("msgtype") == "markdown" and "title" in d.get("markdown", {})
          and "超标报警" in d["markdown"].get("text", ""), "DingTalk body shape")

    # Region 320103 is ids 2, 5; industry 4411 is ids 0, 2, 4: one destination, id 2 once.
    wecom_ids = sorted(r[2]["Idempotency-Key"] for r in wecom.requests)
    check(wecom_ids == sorted(f"it-{i}:firing:1" for i in (0, 2, 4, 5)),
          "region and industry subscriptions to one destination deliver once each")
    w = json.loads(wecom.requests[0][3]) if wecom.requests else {}
    check(w.get("msgtype") == "markdown" and "content" in w.get("markdown", {})
          and "氮氧化物" in w["markdown"]["content"], "WeCom body shape")
    for r in (hook, ding, wecom):
        r.stop()


def test_flaky(tool):
    r = Receiver("flaky")
    stats, _ = run(tool, f"s,all,,{r.url()},json\n", 10)
    keys = r.keys()
    check(stats["delivered"] == 10 and stats["pending"] == 0, "flaky receiver: all delivered")
    check(set(keys) == {f"it-{i}:firing:1" for i in range(10)}, "flaky receiver: every key")
    check(len(keys) > 10 and stats["retries"] >= 5, "flaky receiver: failures were retried")
    same = True
    by_key = {}
    for _, _, h, body in r.requests:
        k = h["Idempotency-Key"]
        same &= by_key.setdefault(k, body) == body
    check(same, "flaky receiver: a repeat has the same key and the same body")
    r.stop()


def test_down_then_up(tool):
    port = free_port()
    r = Receiver(port=port, start=False)
    timer = threading.Timer(1.0, r.start)
    timer.start()
    stats, _ = run(tool, f"s,all,,http://127.0.0.1:{port}/hook,json\n", 5)
    timer.join()
    check(stats["delivered"] == 5 and stats["retries"] >= 2,
          "receiver down for a second then up: all delivered after backoff")
    check(sorted(set(r.keys())) == sorted(f"it-{i}:firing:1" for i in range(5)),
          "down then up: every key arrived")
    r.stop()


def test_isolation(tool):
    healthy, hanging = Receiver(), Receiver("hang")
    dead = free_port()
    csv_text = (f"a,all,,{hanging.url()},json\n"
                f"b,all,,http://127.0.0.1:{dead}/hook,json\n"
                f"c,all,,{healthy.url()},json\n")
    stats, _ = run(tool, csv_text, 20, timeout_ms=1500)
    check(len(healthy.requests) == 20, "healthy receiver got all 20 beside dead and hanging ones")
    t0 = stats["submitted_ms"] / 1000
    if healthy.requests:
        first = (min(r[0] for r in healthy.requests) - t0) * 1000
        last = (max(r[0] for r in healthy.requests) - t0) * 1000
        print(f"# healthy receiver: first alert after {first:.0f} ms, all 20 after {last:.0f} ms")
        # Held behind the hanging receiver, it would wait for the 500 ms request timeout.
        # (The figures on a quiet machine: tools/bench/alert_delivery.)
        check(first < 400, "healthy receiver gets its first alert before any timeout")
        check(last < 1000, "healthy receiver is not held up by the dead and hanging ones")
    # Before the first 500 ms timeout, the hanging receiver holds at most max_inflight.
    early = [r for r in hanging.requests if r[0] - t0 < 0.45]
    check(len(early) <= 4, "a hanging receiver holds at most 4 requests at once")
    check(stats["pending"] == 40, "deliveries to dead and hanging receivers still pending")
    healthy.stop()
    hanging.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    test_shapes_and_routing(args.tool)
    test_flaky(args.tool)
    test_down_then_up(args.tool)
    test_isolation(args.tool)
    pt.finish()


if __name__ == "__main__":
    main()
