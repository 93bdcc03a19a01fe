#!/usr/bin/env python3
"""test_import_cli.py: the plume import, dump, stats and check commands end to end, and the
durability of an import killed with SIGKILL part-way.

Usage: test_import_cli.py PATH_TO_PLUME     (prints TAP)

A generated points CSV with a few bad lines is imported; the JSON summary, the error
messages (file:line), the dump (sorted, value for value), the stats and the check are
verified. Then an import of a larger file is killed with SIGKILL at random moments, over
and over on the same store: each time the store must open, pass `plume check`, and hold
exactly the leading whole batches of that file that were committed, nothing in between."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, plume  # noqa: E402

PLUME = pt.init(sys.argv[1])


def fmt_value(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randrange(0, 1000))
    if kind == 1:
        return "%.1f" % rng.uniform(-30, 40)
    if kind == 2:
        return "%.2f" % rng.uniform(0, 500)
    if kind == 3:
        return "%.4f" % rng.uniform(0, 10)
    if kind == 4:
        return repr(rng.uniform(0, 2000) / 3)          # up to 17 significant digits
    if kind == 5:
        return "%.3e" % rng.uniform(-1e-3, 1e-3)       # exponents
    if kind == 6:
        return "-" + str(rng.randrange(1, 100))
    return "%.15g" % (rng.uniform(900, 1100) * 1.0000001)


def make_points(rng, nseries, hours, t0=1700000000):
    """Time-major points like real data: (series, ts, value_text, flag or None)."""
    names = ["%014d:a%05d:hour" % (rng.randrange(10**13), 21000 + i) for i in range(nseries)]
    names[0] = "Dongsi.pm25"  # a key without an interval field
    pts = []
    for h in range(hours):
        for s in names:
            if rng.random() < 0.05:
                continue  # gaps
            flag = rng.choice("NFMSDCTB") if rng.random() < 0.3 else None
            pts.append((s, t0 + 3600 * h, fmt_value(rng), flag))
    return pts


def csv_line(p, rng=None):
    s, ts, v, flag = p
    tstext = str(ts)
    if rng and rng.random() < 0.05:  # ISO 8601 in China local time, with an offset
        tstext = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(ts + 8 * 3600))
    line = "%s,%s,%s" % (s, tstext, v) + ("," + flag if flag else "")
    if rng and rng.random() < 0.05:
        line += "\r"
    return line


BAD = ["no commas here", "x,notatime,1", "x,1700000000,NA", "x,1700000000,1,Q",
       ",1700000000,1", "x,1700000000", "x,2026-02-30T00:00:00Z,1", "x,1,1,N,extra",
       "x,1700000000,1e999", "x,1700000000,1.2.3", "x,1700000000,", "x\t,1,1", "y,1,--2"]


def parse_dump(text):
    out = []
    for line in text.splitlines():
        s, ts, v, flag = line.split(",")
        out.append((s, int(ts), float(v), flag, v))
    return out


def sig_digits(text):
    mant = text.lower().split("e")[0].lstrip("+-").replace(".", "").strip("0")
    return max(1, len(mant))


def expected_rows(pts):
    rows = [(s, ts, float(v), flag or "N") for s, ts, v, flag in pts]
    rows.sort(key=lambda r: (r[0].encode(), r[1]))
    return rows


def same_rows(got, want):
    if len(got) != len(want):
        return False, "got %d rows, want %d" % (len(got), len(want))
    for g, w in zip(got, want):
        if g[:4] != w:
            return False, "got %r, want %r" % (g[:4], w)
    return True, ""


def test_import_dump(work):
    rng = random.Random(212)
    pts = make_points(rng, 12, 600)
    lines = [csv_line(p, rng) for p in pts]
    # Bad lines at known places, blank lines that are no error, a header line.
    bad_at = sorted(rng.sample(range(10, len(lines)), len(BAD)))
    for k, i in enumerate(bad_at):
        lines.insert(i + k, BAD[k])
    lines.insert(200, "")
    lines.insert(0, "series,timestamp,value,flag")
    path = os.path.join(work, "points.csv")
    with open(path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")
    bad_lines = [i + 1 for i, l in enumerate(lines) if l in BAD]
    db = os.path.join(work, "db")

    r = plume("import", "--db", db, path)
    check(r.returncode == 0, "import exits 0", r.stderr)
    try:
        summary = json.loads(r.stdout)
    except ValueError:
        summary = {}
    check(r.stdout.count("\n") == 1, "import prints one line", r.stdout)
    check(summary.get("points") == len(pts), "points counted", r.stdout)
    check(summary.get("series") == 12, "series counted", r.stdout)
    check(summary.get("rejected") == len(BAD), "bad lines counted", r.stdout)
    check(isinstance(summary.get("seconds"), (int, float)), "seconds reported", r.stdout)
    errs = r.stderr.splitlines()
    want = ["%s:%d:" % (path, n) for n in bad_lines[:10]]
    got = [e for e in errs if path + ":" in e]
    check(len(got) == 10 and all(w in g for w, g in zip(want, got)),
          "the first ten bad lines are reported with file:line", r.stderr)
    check(any("%d more bad lines" % (len(BAD) - 10) in e for e in errs),
          "the rest are summarized", r.stderr)

    r = plume("dump", "--db", db)
    check(r.returncode == 0, "dump exits 0", r.stderr)
    got = parse_dump(r.stdout)
    ok, why = same_rows(got, expected_rows(pts))
    check(ok, "dump equals the input, sorted, value for value", why)
    long_texts = [t for *_, t in got if sig_digits(t) > sig_digits(repr(float(t)))]
    check(not long_texts, "dumped values are shortest", long_texts[:5])

    s0 = pts[0][0]
    lo, hi = 1700000000 + 3600 * 100, 1700000000 + 3600 * 199
    r = plume("dump", "--db", db, "--from", str(lo), "--to",
              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hi)), s0)
    sub = [w for w in expected_rows(pts) if w[0] == s0 and lo <= w[1] <= hi]
    ok, why = same_rows(parse_dump(r.stdout), sub)
    check(r.returncode == 0 and ok and len(sub) > 50, "dump of one series and a time range",
          why + r.stderr)
    r = plume("dump", "--db", db, "no-such-series")
    check(r.returncode == 1 and "no-such-series" in r.stderr, "dump of an unknown series fails",
          r.stderr)

    r = plume("import", "--db", db, "-", stdin="stdin.series,1700000000,1.5\n\nbad\n")
    summary = json.loads(r.stdout or "{}")
    check(r.returncode == 0 and summary.get("points") == 1 and summary.get("rejected") == 1
          and "<stdin>:3:" in r.stderr, "import from standard input", r.stdout + r.stderr)

    r = plume("stats", "--db", db)
    try:
        st = json.loads(r.stdout)
    except ValueError:
        st = {}
    fields = ["series", "points", "chunks", "wal_points", "file_bytes", "bytes_per_point",
              "map_size", "map_used"]
    check(r.returncode == 0 and all(k in st for k in fields), "stats has every field",
          r.stdout + r.stderr)
    check(st.get("points") == len(pts) + 1 and st.get("series") == 13,
          "stats counts points and series", r.stdout)
    check(st.get("file_bytes", 0) > 0 and st.get("map_used", 0) > 0
          and abs(st.get("bytes_per_point", 0) - st.get("file_bytes", 0) / max(1, st.get("points", 1))) < 0.01,
          "stats sizes are consistent", r.stdout)

    r = plume("check", "--db", db)
    check(r.returncode == 0, "check passes on a healthy store", r.stdout + r.stderr)

    # Importing the same file again changes nothing, the file's size included.
    sizes = [(st.get("points"), st.get("file_bytes"))]
    for _ in range(4):
        r = plume("import", "--db", db, path)
        s = json.loads(plume("stats", "--db", db).stdout or "{}")
        sizes.append((s.get("points"), s.get("file_bytes")))
    check(r.returncode == 0 and all(z == sizes[0] for z in sizes)
          and sizes[0][0] == len(pts) + 1, "re-importing the same points leaves the store as "
          "it was", sizes)

    for cmd in ["import", "dump", "stats", "check"]:
        r = plume(cmd, "--help")
        check(r.returncode == 0 and "usage: plume " + cmd in r.stdout, cmd + " --help")
    r = plume("stats", "--db", os.path.join(work, "nothing-here"))
    check(r.returncode != 0 and "nothing-here" in r.stderr, "stats of a missing store fails",
          r.stderr)


def test_kill_9(work):
    rng = random.Random(9)
    pts = make_points(rng, 40, 5000)
    lines = [csv_line(p) for p in pts]
    path = os.path.join(work, "big.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    batch = 10000
    db = os.path.join(work, "killed")

    t0 = time.monotonic()
    r = plume("import", "--db", os.path.join(work, "full"), "--batch", str(batch), path)
    full_s = time.monotonic() - t0
    check(r.returncode == 0, "the large import runs to the end", r.stderr)
    shutil.rmtree(os.path.join(work, "full"), ignore_errors=True)

    for i in range(10):
        # A fresh store each time (created empty first, so the kill never races its
        # creation), except that the last kills hit a store already killed once: recovery
        # must leave it importable again.
        if i < 7:
            shutil.rmtree(db, ignore_errors=True)
            r = plume("import", "--db", db, "/dev/null")
            if i == 0:
                check(r.returncode == 0 and json.loads(r.stdout or "{}").get("points") == 0,
                      "an empty import creates the store", r.stdout + r.stderr)
        before = held if i >= 7 else 0
        proc = subprocess.Popen([PLUME, "import", "--db", db, "--batch", str(batch), path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.95) * full_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        r = plume("stats", "--db", db)
        ok = check(r.returncode == 0 and '"points"' in r.stdout, "kill %d: the store opens" % i,
                   r.stdout + r.stderr)
        d = plume("dump", "--db", db)
        rows = parse_dump(d.stdout) if d.returncode == 0 else []
        held = len(rows)
        c = plume("check", "--db", db)
        check(c.returncode == 0, "kill %d: check passes" % i, c.stdout + c.stderr)
        # The import commits the file's points in order, batch by batch, so the store holds
        # a prefix of the file: whole batches, or the whole file (and never less than an
        # earlier run left, for the same points are imported again).
        whole = held % batch == 0 or held == len(pts)
        check(ok and whole and held >= before,
              "kill %d: the store holds whole batches (%d of %d points)" % (i, held, len(pts)),
              "held %d, batch %d, before %d" % (held, batch, before))
        same, why = same_rows(rows, expected_rows(pts[:held]))
        check(d.returncode == 0 and same, "kill %d: the store holds exactly the leading points "
              "of the file" % i, why)
    r = plume("import", "--db", db, "--batch", str(batch), path)
    d = plume("dump", "--db", db)
    same, why = same_rows(parse_dump(d.stdout), expected_rows(pts))
    check(r.returncode == 0 and same, "a complete import after the kills holds the whole file",
          why + r.stderr)


def main():
    work = tempfile.mkdtemp(prefix="plume-test-import-")
    try:
        test_import_dump(work)
        test_kill_9(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pt.finish()


if __name__ == "__main__":
    main()
