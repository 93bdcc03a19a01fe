#!/usr/bin/env python3
"""test_export.py: `plume export daily|exceedances|schema` end to end, on the real Beijing
hourly air-quality data and on a small hand-made store.

Usage: test_export.py PATH_TO_PLUME DATA_DIR     (prints TAP)

- Beijing: every station becomes an outlet (MN BJAQ0001 ...) and every column a pollutant
  series "MN:code:hour"; the points are imported with `plume import`. The daily rows of all
  four years are computed here independently, by the rules (a local day is valid with >= 20
  valid hours; the average, min and max of the valid hours; flag N when valid, else D), and
  must equal the exported ones row for row, in CSV and in JSON Lines.
- Formats: CSV quoting of a facility name with a comma and quotes, empty fields
  for nulls, the header; --excel's BOM, CRLF and ="..." codes; JSON Lines nulls.
- Exceedances: a hand-made outlet with known episodes, their hours, peaks and multiples.
- Snapshots: exports while another process imports into the same store.
- Arguments: a day like 2026-02-30, an unknown filter label, a missing --from are refused
  before any work with a message naming them; filters select outlets.
"""
import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, plume  # noqa: E402

PLUME = pt.init(sys.argv[1])
DATA = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else ""
TZ = datetime.timezone(datetime.timedelta(hours=8))


COLS = {"PM2.5": "a34004", "PM10": "a34002", "SO2": "a21026", "NO2": "a21004", "CO": "a21005",
        "O3": "a05024", "TEMP": "a01001", "PRES": "a01006", "DEWP": "a01003", "RAIN": "a06001",
        "WSPM": "a01007"}


def beijing(tmp):
    """Imports the Beijing data; returns the expected daily rows {(mn, code, day): row}."""
    files = sorted(f for f in os.listdir(DATA) if f.startswith("PRSA_Data_"))
    expected = {}
    facilities, outlets = [], []
    with open(os.path.join(tmp, "bj.csv"), "w") as out:
        for i, name in enumerate(files):
            mn = "BJAQ%04d" % (i + 1)
            per_day = {}
            with open(os.path.join(DATA, name), newline="") as f:
                for r in csv.DictReader(f):
                    t = datetime.datetime(int(r["year"]), int(r["month"]), int(r["day"]),
                                          int(r["hour"]), tzinfo=TZ)
                    ts = int(t.timestamp())
                    day = t.strftime("%Y-%m-%d")
                    for col, code in COLS.items():
                        v = r[col].strip()
                        if v in ("NA", ""):
                            continue
                        out.write("%s:%s:hour,%d,%s\n" % (mn, code, ts, v))
                        per_day.setdefault((mn, code, day), []).append(float(v))
                    station = r["station"]
            facilities.append({"id": "BJ%02d" % (i + 1), "name": "Beijing station " + station,
                               "region": "110000", "industry": "air quality"})
            outlets.append({"facility_id": "BJ%02d" % (i + 1), "code": "AQ001",
                            "medium": "gas", "mn": mn})
            for key, vals in per_day.items():
                s = 0.0
                for v in vals:
                    s += v
                valid = len(vals) >= 20
                expected[key] = {"avg": s / len(vals), "min": min(vals), "max": max(vals),
                                 "valid_hours": len(vals), "hours": len(vals),
                                 "valid": valid, "flag": "N" if valid else "D",
                                 "facility_id": "BJ%02d" % (i + 1)}
    reg = {"facilities": facilities, "outlets": outlets, "limits": []}
    with open(os.path.join(tmp, "bj.json"), "w") as f:
        json.dump(reg, f)
    return expected


def compare_daily(rows, expected, what):
    got = {}
    bad = []
    for r in rows:
        got[(r["mn"], r["pollutant"], r["day"])] = r
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    for k, e in expected.items():
        g = got.get(k)
        if g is None:
            continue
        for f in ("avg", "min", "max"):
            if g[f] is None or float(g[f]) != e[f]:
                bad.append("%s %s: %r != %r" % (k, f, g[f], e[f]))
        for f in ("valid_hours", "hours"):
            if int(g[f]) != e[f]:
                bad.append("%s %s: %r != %r" % (k, f, g[f], e[f]))
        gv = g["valid"] if isinstance(g["valid"], bool) else g["valid"] == "true"
        if gv != e["valid"] or g["flag"] != e["flag"] or g["facility_id"] != e["facility_id"]:
            bad.append("%s valid/flag/facility: %r %r %r" % (k, g["valid"], g["flag"],
                                                            g["facility_id"]))
        if g["source"] != "computed" or int(g["hours_n"]) != e["hours"]:
            bad.append("%s source/hours_n: %r %r" % (k, g["source"], g["hours_n"]))
    check(not missing and not extra and not bad and len(rows) == len(got),
          "%s: %d daily rows equal the independent computation row for row" % (what,
                                                                               len(rows)),
          "missing %d %s\nextra %d %s\n%s" % (len(missing), missing[:3], len(extra), extra[:3],
                                               "\n".join(bad[:10])))


def test_beijing(tmp):
    if not DATA or not os.path.isdir(DATA):
        pt.skip("Beijing daily export", "Beijing data not found at %r" % DATA)
        return
    expected = beijing(tmp)
    db = os.path.join(tmp, "bj.db")
    r = plume("import", "--db", db, os.path.join(tmp, "bj.csv"))
    check(r.returncode == 0, "Beijing points import", r.stderr)
    r = plume("registry", "import", "--db", db, os.path.join(tmp, "bj.json"))
    check(r.returncode == 0, "Beijing registry import", r.stderr)
    out = os.path.join(tmp, "bj_daily.csv")
    r = plume("export", "daily", "--db", db, "--from", "2013-03-01", "--to", "2017-02-28",
              "--out", out)
    check(r.returncode == 0 and os.path.exists(out) and not os.path.exists(out + ".part"),
          "export daily to CSV", r.stderr)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    compare_daily(rows, expected, "CSV")
    r = plume("export", "daily", "--db", db, "--from", "2013-03-01", "--to", "2017-02-28",
              "--format", "jsonl", "--quiet")
    check(r.returncode == 0 and r.stderr == "", "export daily as JSON Lines, --quiet", r.stderr)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    compare_daily(rows, expected, "JSON Lines")
    # A filter: one station, one pollutant, one month.
    r = plume("export", "daily", "--db", db, "--from", "2016-01-01", "--to", "2016-01-31",
              "--filter", "facility=BJ03", "--filter", "pollutant=a21026,a21004", "--quiet")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    want = sorted(k for k in expected if k[0] == "BJAQ0003" and k[1] in ("a21026", "a21004")
                  and "2016-01-01" <= k[2] <= "2016-01-31")
    check(r.returncode == 0 and sorted((x["mn"], x["pollutant"], x["day"]) for x in rows) == want,
          "filters select one facility's two pollutants (%d rows)" % len(want), r.stderr)
    r = plume("export", "daily", "--db", db, "--from", "2016-01-01", "--filter",
              "region=11", "--filter", "mn=BJAQ0001", "--quiet")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    check(r.returncode == 0 and len(rows) == 11 and all(x["region"] == "110000" for x in rows),
          "region filters by prefix", r.stdout[:500])


def make_small(tmp):
    """An outlet with a name that needs quoting, an SO2 limit of 50 and known episodes."""
    db = os.path.join(tmp, "small.db")
    reg = {
        "facilities": [{"id": "F1", "name": "Plant \"East\", unit 1",
                        "uscc": "91350100M000100Y43", "region": "350100", "industry": "D4411"}],
        "outlets": [{"facility_id": "F1", "code": "DA001", "medium": "gas", "mn": "0100001234",
                     "o2_ref": 6}],
        "limits": [{"facility_id": "F1", "outlet": "DA001", "pollutant": "a21026",
                    "value": 50, "unit": "mg/m3", "period": "hour", "basis": "measured"}],
    }
    with open(os.path.join(tmp, "small.json"), "w") as f:
        json.dump(reg, f)
    t0 = int(datetime.datetime(2026, 1, 5, tzinfo=TZ).timestamp())
    lines = []
    so2 = [30.0] * 48
    for h in (3, 4, 5):              # an episode of 3 hours, peak 80 at 04:00
        so2[h] = {3: 60.0, 4: 80.0, 5: 55.0}[h]
    so2[30] = 75.0                   # one hour on the second day
    flags = ["N"] * 48
    flags[31] = "C"                  # a calibration hour: not valid, ends nothing already ended
    for h in range(48):
        lines.append("0100001234:a21026:hour,%d,%s,%s" % (t0 + 3600 * h, so2[h], flags[h]))
        if h < 24:
            lines.append("0100001234:a19001:hour,%d,9,N" % (t0 + 3600 * h))
            lines.append("0100001234:a00000:hour,%d,10,N" % (t0 + 3600 * h))
    # An MN the registry does not know, with a day of only 12 hours: an invalid day.
    for h in range(12):
        lines.append("UNKNOWN01:a21002:hour,%d,%d" % (t0 + 3600 * h, 100 + h))
    with open(os.path.join(tmp, "small.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    r = plume("import", "--db", db, os.path.join(tmp, "small.csv"))
    check(r.returncode == 0, "small store import", r.stderr)
    r = plume("registry", "import", "--db", db, os.path.join(tmp, "small.json"))
    check(r.returncode == 0, "small registry import", r.stderr)
    return db, t0, so2


def test_formats(tmp, db, so2):
    r = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--to", "2026-01-06",
              "--quiet", binary=True)
    data = r.stdout
    check(r.returncode == 0 and not data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data,
          "CSV: no BOM, LF line ends", data[:200])
    text = data.decode("utf-8")
    header = text.split("\n", 1)[0]
    check(header.startswith("day,facility_id,facility_name,uscc,region,industry,outlet,mn,"
                            "pollutant,unit,avg,min,max,zs_avg,valid_hours,hours,valid,flag"),
          "CSV header names the fields", header)
    check('"Plant ""East"", unit 1"' in text,
          "CSV quotes a field with a comma and quotes (RFC 4180)", text[:600])
    rows = list(csv.DictReader(io.StringIO(text)))
    by = {(x["mn"], x["pollutant"], x["day"]): x for x in rows}
    s1 = by.get(("0100001234", "a21026", "2026-01-05"), {})
    mean1 = sum(so2[:24]) / 24
    zs1 = mean1 * (21 - 6) / (21 - 9)
    check(s1.get("avg") and abs(float(s1["avg"]) - mean1) < 1e-9 and
          abs(float(s1["zs_avg"]) - zs1) < 1e-9 and s1["valid"] == "true" and
          s1["valid_hours"] == "24" and s1["limit_value"] == "50" and
          s1["limit_period"] == "hour" and s1["unit"] == "mg/m3",
          "daily row: average, O2-corrected average, validity, limit", s1)
    mass = sum(c * 10 * 3600 * 1e-6 for c in so2[:24])
    check(s1.get("mass_kg") and abs(float(s1["mass_kg"]) - mass) < 1e-9,
          "daily row: emission mass from flow (kg)", s1.get("mass_kg"))
    s2 = by.get(("0100001234", "a21026", "2026-01-06"), {})
    check(s2.get("valid_hours") == "23" and s2.get("hours_c") == "1" and
          s2.get("hours_n") == "23" and s2.get("zs_avg") == "" and s2.get("mass_kg") == "",
          "second day: a C hour counted, no O2 or flow: empty fields", s2)
    u = by.get(("UNKNOWN01", "a21002", "2026-01-05"), {})
    check(u.get("facility_id") == "" and u.get("valid") == "false" and u.get("flag") == "D" and
          u.get("valid_hours") == "12" and u.get("limit_value") == "" and
          u.get("exceeds") == "" and u.get("multiple") == "",
          "unregistered MN: empty facility, an invalid day, null limit", u)
    r = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--excel", "--quiet",
              binary=True)
    data = r.stdout
    check(data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == data.count(b"\n") and
          b'"=""0100001234"""' in data and b'"=""350100"""' in data,
          "--excel: BOM, CRLF, numeric-looking codes as =\"...\" text", data[:300])
    r = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--format", "jsonl",
              "--quiet")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    u = [x for x in rows if x["mn"] == "UNKNOWN01"]
    check(len(u) == 1 and u[0]["facility_id"] is None and u[0]["limit_value"] is None and
          u[0]["valid"] is False and u[0]["avg"] == 105.5 and u[0]["day"] == "2026-01-05",
          "JSON Lines: the same fields, null for null, numbers and booleans typed", u)


def test_exceedances(tmp, db, t0):
    r = plume("export", "exceedances", "--db", db, "--from", "2026-01-05", "--to",
              "2026-01-06", "--quiet")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    got = [(x["start_time"], x["end_time"], x["hours"], x["peak"], x["multiple"], x["state"])
           for x in rows]

    def iso(ts):
        return datetime.datetime.fromtimestamp(ts, TZ).isoformat()
    want = [(iso(t0 + 3 * 3600), iso(t0 + 6 * 3600), "3", "80", "0.6", "resolved"),
            (iso(t0 + 30 * 3600), iso(t0 + 31 * 3600), "1", "75", "0.5", "resolved")]
    check(r.returncode == 0 and got == want, "exceedance episodes: start, end, hours, peak, "
          "multiple, state", "%s\n%s\n%s" % (got, want, r.stderr))
    check(all(len(x["alert_id"]) == 16 and x["limit_value"] == "50" and x["peak_flag"] == "N"
              and x["facility_name"].startswith("Plant") for x in rows),
          "episodes carry limit, flag, facility and the alert id", rows[:1])


def test_arguments(tmp, db):
    cases = [
        (["--from", "2026-02-30"], "2026-02-30"),
        (["--from", "2026-1-5"], "2026-1-5"),
        (["--from", "2026-01-05", "--to", "2026-01-04"], "before"),
        (["--from", "2026-01-05", "--filter", "colour=red"], "unknown label 'colour'"),
        (["--from", "2026-01-05", "--filter", "region"], "not label=value"),
        (["--from", "2026-01-05", "--format", "xml"], "--format"),
        (["--from", "2026-01-05", "--format", "pg"], "--pg"),
        (["--from", "2026-01-05", "--format", "jsonl", "--excel"], "--excel"),
        ([], "--from"),
    ]
    for extra, needle in cases:
        r = plume("export", "daily", "--db", db, *extra)
        check(r.returncode == 2 and needle in r.stderr and r.stdout == "",
              "refused before any work: %s" % " ".join(extra or ["(no --from)"]), r.stderr)
    r = plume("export", "daily", "--db", os.path.join(tmp, "nonexistent"), "--from",
              "2026-01-05")
    check(r.returncode == 1 and "nonexistent" in r.stderr, "a missing store is named",
          r.stderr)
    r = plume("export", "--help")
    check(r.returncode == 0 and "plume export daily" in r.stdout and "--pg" in r.stdout,
          "--help describes the command", r.stdout[:200])
    r = plume("export", "schema")
    check(r.returncode == 0 and "CREATE TABLE IF NOT EXISTS plume_daily" in r.stdout and
          "PRIMARY KEY (day, mn, pollutant)" in r.stdout and
          "CREATE TABLE IF NOT EXISTS plume_exceedances" in r.stdout,
          "schema prints the DDL", r.stdout)
    out = os.path.join(tmp, "progress.csv")
    r = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--out", out)
    check(r.returncode == 0 and "series" in r.stderr and "rows" in r.stderr and
          r.stderr.count("\r") == 0, "progress on stderr as plain lines when not a terminal",
          r.stderr)


def test_during_ingest(tmp, db):
    """An export reads one snapshot and never blocks a writer: while another process imports
    into the same store, exports keep succeeding with the same rows for the days untouched."""
    base = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--to", "2026-01-06",
                 "--quiet")
    big = os.path.join(tmp, "ingest.csv")
    t1 = int(datetime.datetime(2026, 2, 1, tzinfo=TZ).timestamp())
    with open(big, "w") as f:
        for h in range(24 * 20):
            for s in range(2000):
                f.write("ING%05d:a21026:hour,%d,%d.5\n" % (s, t1 + 3600 * h, s % 90))
    p = subprocess.Popen([PLUME, "import", "--db", db, "--batch", "100000", big],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs, same = 0, 0
    while p.poll() is None or runs == 0:
        r = plume("export", "daily", "--db", db, "--from", "2026-01-05", "--to",
                  "2026-01-06", "--quiet")
        runs += 1
        same += r.returncode == 0 and r.stdout == base.stdout
    out, err = p.communicate()
    check(p.returncode == 0 and runs == same,
          "%d exports during an import of 960,000 points: all the same rows" % runs,
          "import: %s %s; %d of %d the same" % (out, err, same, runs))
    r = plume("export", "daily", "--db", db, "--from", "2026-02-01", "--to", "2026-02-20",
              "--filter", "mn=ING00007", "--quiet")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    check(len(rows) == 20 and all(x["avg"] == "7.5" for x in rows),
          "after the import its days export", r.stdout[:300])


def main():
    tmp = tempfile.mkdtemp(prefix="plume-export-")
    try:
        db, t0, so2 = make_small(tmp)
        test_formats(tmp, db, so2)
        test_exceedances(tmp, db, t0)
        test_arguments(tmp, db)
        test_during_ingest(tmp, db)
        test_beijing(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pt.finish()


main()
