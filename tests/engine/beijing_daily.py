#!/usr/bin/env python3
"""Daily averages and validity of the real Beijing hourly air-quality data, computed
independently of the engine (standard library only), compared row by row with the output of
the C program that computes them with engine_rollup_day.

Rule: every numeric column of every station file is one series; present hours (not `NA`) are
valid (flag N); a local day is valid with >= 20 valid hours; its mean is the arithmetic mean
of the valid hours in file order; its flag is N when >= 75% of the present hours are valid and
the day is valid, else D.

Usage: beijing_daily.py DATADIR                 print the rows
       beijing_daily.py --tool EXE DATADIR      compare with EXE's rows, TAP output
"""
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402


def days_rows(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        cols = [i for i, h in enumerate(header) if i >= 5 and h not in ("wd", "station")]
        st = header.index("station")
        days = {}  # (y, m, d) -> {col: [values]}
        order = []
        station = ""
        for row in r:
            key = (int(row[1]), int(row[2]), int(row[3]))
            if key not in days:
                days[key] = {c: [] for c in cols}
                order.append(key)
            station = row[st]
            for c in cols:
                v = row[c].strip()
                if v != "NA" and v != "":  # the real data has one blank field
                    days[key][c].append(float(v))
    out = []
    for key in order:
        for c in cols:
            vals = days[key][c][:24]
            date = "%04d-%02d-%02d" % key
            if not vals:
                out.append("%s,%s,%s,0,0,0,," % (station, header[c], date))
                continue
            s = 0.0
            for v in vals:
                s += v
            mean = s / len(vals)
            valid = len(vals) >= 20
            flag = "N" if valid else "D"
            out.append("%s,%s,%s,%d,%d,%d,%s,%s" % (station, header[c], date, len(vals),
                                                    len(vals), 1 if valid else 0, flag,
                                                    "%.17g" % mean))
    return out


def main(argv):
    tool = None
    if len(argv) >= 2 and argv[0] == "--tool":
        tool, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[0]
    if not os.path.isdir(d):
        pt.skip_all("no data at %s" % d)
    files = [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".csv")]
    if tool is None:
        for p in files:
            print("\n".join(days_rows(p)))
        return 0
    total = valid_days = 0
    for p in files:
        want = days_rows(p)
        got = subprocess.run([tool, p], check=False, capture_output=True, text=True)
        rows = got.stdout.splitlines()
        same = got.returncode == 0 and rows == want
        total += len(want)
        valid_days += sum(1 for w in want if w.split(",")[5] == "1")
        pt.check(same, "%s: %d rows equal" % (os.path.basename(p), len(want)))
        if not same:
            pt.diag("exit %d, %d rows vs %d wanted" % (got.returncode, len(rows), len(want)))
            for i, (a, b) in enumerate(zip(rows, want)):
                if a != b:
                    pt.diag("first difference at row %d:\n  got  %s\n  want %s" % (i, a, b))
                    break
    pt.diag("%d rows compared, %d valid series-days" % (total, valid_days))
    pt.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
