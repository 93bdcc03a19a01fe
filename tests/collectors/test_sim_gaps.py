#!/usr/bin/env python3
"""Gaps end to end: `plume sim` units that stop sending for hours, a real `plume serve` that
notices the missing hours and pulls them back (CN=2061, and 2031 for a day whose record fell
in the gap), and the alerts that the late hours give.

Run 1 is the fleet that once stopped the simulator after its first history pull (100
facilities, 3 days, a minute record per hour): it must run to its end, and every hour (and
daily record) a unit did not send during a gap must be stored. Run 2 hides hours of every
exceedance episode in a gap (plume sim --gap-exceed 1): each episode must still be alerted
once, firing then resolved under one id, the resolved state with the start, end and peak of
the ground truth, and no other exceedance alert. Queries go through redis-cli and curl.

usage: test_sim_gaps.py PLUME"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402

PLUME = pt.init(sys.argv[1])
check = pt.check


def ts(iso):
    return int(datetime.fromisoformat(iso).timestamp())


def serve(tmp, reg, hook):
    subs = os.path.join(tmp, "subs.csv")
    pt.write_text(subs, "subscriber,match_kind,match_value,url,format\n"
                        f"t,all,,{hook.url()},json\n")
    files = ",".join(os.path.join(reg, n) for n in ("facilities.csv", "outlets.csv",
                                                     "limits.csv"))
    return pt.Serve(os.path.join(tmp, "db"), "--metrics.listen", "127.0.0.1:0",
                    "--hj212.crc_policy", "flag", "--registry.files", files,
                    "--alerts.subscriptions", subs)


def run(tmp, simargs, hook, deadline_s):
    """Writes the registry and truth, starts plume serve, runs the fleet into it.
    Returns (the daemon, truth lines, sim summary or None, sim seconds)."""
    reg = os.path.join(tmp, "reg")
    os.makedirs(reg)
    truth_path = os.path.join(tmp, "truth.jsonl")
    subprocess.run([PLUME, "sim", *simargs, "--registry-out", reg, "--truth-out", truth_path],
                   check=True)
    truth = [json.loads(line) for line in open(truth_path)]
    srv = serve(tmp, reg, hook)
    t0 = time.time()
    try:
        out = subprocess.run([PLUME, "sim", *simargs, "--connect", "127.0.0.1:%d" % srv.port,
                              "--speed", "0", "--quiet", "--linger", "2"],
                             capture_output=True, text=True,
                             timeout=deadline_s)
        summary = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except subprocess.TimeoutExpired:
        summary = None
    return srv, truth, summary, time.time() - t0


def stored(port, key, t_from, t_to):
    """Timestamps (s) of key's samples in [t_from, t_to], through redis-cli."""
    vals = pt.redis_cli(port, "TS.RANGE", key, t_from * 1000, t_to * 1000).split()
    return {int(v) // 1000 for v in vals[0::2] if v.isdigit()}


def metric(port, name, label):
    out = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" % port],
                         capture_output=True, text=True, timeout=30).stdout
    m = re.search(r'^%s\{\w+="%s"\} (\S+)$' % (re.escape(name), label), out, re.M)
    return int(float(m.group(1))) if m else None


def wait_quiet(hook, quiet_s=2.0, limit_s=30):
    end = time.time() + limit_s
    last, since = -1, time.time()
    while time.time() < end:
        with hook.lock:
            n = len(hook.requests)
        if n != last:
            last, since = n, time.time()
        elif time.time() - since > quiet_s:
            return
        time.sleep(0.1)


def series_code(ev):
    return "w01018" if ev["outlet"].startswith("DW") else "a21026"


def gaps_stored(port, truth):
    want = have = want_d = have_d = 0
    for ev in truth:
        if ev.get("type") != "gap":
            continue
        hf, ht = ts(ev["hours_from"]), ts(ev["hours_to"])
        got = stored(port, "%s:%s:hour" % (ev["mn"], series_code(ev)), hf, ht)
        want += (ht - hf) // 3600 + 1
        have += len(got)
        if "missing_day" in ev:
            d = ts(ev["missing_day"])
            want_d += 1
            have_d += len(stored(port, "%s:%s:day" % (ev["mn"], series_code(ev)), d, d))
    return want, have, want_d, have_d


def part_stall(tmp, hook):
    simargs = ["--facilities", "100", "--days", "3", "--minute-interval", "60", "--seed", "1"]
    srv, truth, summary, secs = run(tmp, simargs, hook, 120)
    try:
        gaps = [e for e in truth if e.get("type") == "gap"]
        check(len(gaps) >= 10, "%d gaps injected" % len(gaps))
        check(summary is not None, "the fleet with gaps runs to its end (%.1f s)" % secs)
        if summary:
            check(summary["history_requests"] >= len(gaps),
                  "history requests %d >= gaps %d" % (summary["history_requests"], len(gaps)))
            check(summary["missing"] == 0 and summary["failed"] == 0,
                  "every upload answered (missing %d, failed %d)" % (summary["missing"],
                                                                     summary["failed"]))
        want, have, want_d, have_d = gaps_stored(srv.qport, truth)
        check(want > 0 and have == want, "gap hours stored: %d of %d" % (have, want))
        check(have_d == want_d, "daily records that fell in a gap stored: %d of %d"
              % (have_d, want_d))
        pulled = metric(srv.mport, "plume_hj212_history_records_total", "hour")
        check(pulled is not None and pulled >= want,
              "the server counts %s hours received by pulls (>= %d)" % (pulled, want))
        check(metric(srv.mport, "plume_hj212_history_pulls_total", "timed_out") == 0,
              "no history request timed out")
    finally:
        srv.stop()


def part_hidden(tmp, hook):
    simargs = ["--facilities", "30", "--days", "6", "--minute-interval", "60", "--seed", "7",
               "--rate-exceed", "0.3", "--gap-exceed", "1"]
    srv, truth, summary, secs = run(tmp, simargs, hook, 120)
    try:
        check(summary is not None, "the fleet with hidden exceedances runs to its end (%.1f s)"
              % secs)
        wait_quiet(hook)
        want, have, want_d, have_d = gaps_stored(srv.qport, truth)
        check(have == want and have_d == want_d,
              "hidden hours and days stored: %d of %d, %d of %d" % (have, want, have_d, want_d))
        if os.environ.get("KEEP"):
            subprocess.run("curl -s http://127.0.0.1:%d/metrics > %s/metrics.txt"
                           % (srv.mport, tmp), shell=True)
    finally:
        srv.stop()
    got = list(zip(hook.keys(), hook.bodies()))
    if os.environ.get("KEEP"):
        with open(os.path.join(tmp, "alerts.jsonl"), "w") as f:
            for _, a in got:
                f.write(json.dumps(a, ensure_ascii=False) + "\n")
    keys = [k for k, _ in got]
    check(len(keys) == len(set(keys)), "no delivery repeated (%d)" % len(keys))
    by_id = {}
    for _, a in got:
        if a["kind"] == "exceedance":
            by_id.setdefault(a["id"], []).append(a)
    for states in by_id.values():  # deliveries run in parallel: order by revision
        states.sort(key=lambda a: a["revision"])
    run_end = truth[0]["start_ts"] + 86400 * truth[0]["days"]
    exc = [e for e in truth if e.get("type") == "exceedance"]
    gaps = [e for e in truth if e.get("type") == "gap"]
    hidden = [e for e in exc if any(
        g["mn"] == e["mn"] and g["start_ts"] <= e["end_ts"] and
        (e["start_ts"] + 3600 < g["end_ts"] if e["period"] == "hour" else e["end_ts"] < g["end_ts"])
        for g in gaps)]
    check(len(hidden) >= 5, "%d of %d exceedance episodes have records hidden by a gap"
          % (len(hidden), len(exc)))
    used = set()
    bad = []
    for e in exc:
        peak = e.get("peak_zs", e["peak"]) if e["basis"] == "zs" else e["peak"]
        found = None
        for i, states in by_id.items():
            last = states[-1]
            if i in used or last["mn"] != e["mn"] or last["pollutant"] != e["pollutant"]:
                continue
            if ts(last["start"]) == e["start_ts"]:
                found = i
                break
        if not found:
            bad.append(("missed", e["mn"], e["pollutant"], e["start"]))
            continue
        used.add(found)
        states = [a["state"] for a in by_id[found]]
        last = by_id[found][-1]
        if e["end_ts"] >= run_end and states == ["firing"]:
            continue  # lasts to the end of the run: stays open
        if states != ["firing", "resolved"] or ts(last["end"]) != e["end_ts"] or \
                abs(last["value"] - peak) > 1e-6 * max(1, abs(peak)):
            bad.append(("wrong", e["mn"], e["pollutant"], e["start"], states, last["end"],
                        last["value"], peak))
    extra = [i for i in by_id if i not in used]
    check(not bad, "every episode once, firing then resolved, with the truth's start, end and "
          "peak (%d episodes)%s" % (len(exc), "" if not bad else ": %s" % bad[:5]))
    check(not extra, "no exceedance alert the truth does not explain%s"
          % ("" if not extra else ": %s" % [by_id[i][-1] for i in extra[:5]]))


def main():
    if not shutil.which("redis-cli") or not shutil.which("curl"):
        pt.skip_all("redis-cli or curl missing")
    tmp = tempfile.mkdtemp(prefix="plume-test-gaps-")
    try:
        for part, name in ((part_stall, "1"), (part_hidden, "2")):
            os.makedirs(os.path.join(tmp, name))
            with pt.Receiver() as hook:
                part(os.path.join(tmp, name), hook)
    finally:
        if os.environ.get("KEEP"):
            pt.diag("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    pt.finish()


if __name__ == "__main__":
    main()
