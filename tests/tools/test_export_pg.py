#!/usr/bin/env python3
"""test_export_pg.py: `plume export --format pg` into a throwaway PostgreSQL cluster.

Usage: test_export_pg.py PATH_TO_PLUME     (prints TAP)

A cluster is created with Debian's initdb in a temporary directory and started on a Unix
socket there (no TCP). initdb refuses to run as root, so as root the cluster runs as the
unprivileged user `nobody` (via runuser). The whole test is skipped (TAP skip) only when
the server binaries are absent or the cluster cannot start.

Checks: the DDL of `plume export schema` applies; an export lands the same rows as the CSV
export; running the same days again leaves exactly the same table; a corrected value
replaces its row; a constraint failing on one row aborts the whole load and leaves the
table as it was; an export killed with SIGKILL at random moments leaves either nothing of
itself or all of it; episodes load too.
"""
import csv
import datetime
import glob
import io
import os
import pwd
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
TZ = datetime.timezone(datetime.timedelta(hours=8))
skip_all = pt.skip_all


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on a Unix socket only."""

    def __init__(self, root):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            skip_all("PostgreSQL server binaries not found (Debian package postgresql)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = os.path.join(root, "pg")
        os.makedirs(self.dir)
        self.as_user = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as nobody
            nobody = pwd.getpwnam("nobody")
            os.chmod(root, 0o755)
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self.data = os.path.join(self.dir, "data")
        self.conninfo = "host=%s port=5433 user=plume dbname=postgres" % self.dir

    def run(self, *cmd, **kw):
        return subprocess.run(self.as_user + list(cmd), capture_output=True, text=True,
                              timeout=120, cwd=self.dir, **kw)

    def start(self):
        r = self.run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "plume",
                     "--auth=trust", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            skip_all("initdb failed: %s" % r.stderr.strip()[-300:])
        opts = "-k %s -c listen_addresses= -p 5433 -F -c shared_buffers=64MB" % self.dir
        r = self.run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", opts, "-w",
                     "-t", "60", "-l", os.path.join(self.dir, "log"), "start")
        if r.returncode != 0:
            log = ""
            try:
                log = open(os.path.join(self.dir, "log")).read()[-500:]
            except OSError:
                pass
            skip_all("the PostgreSQL server did not start: %s %s" % (r.stderr.strip(), log))

    def stop(self):
        self.run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w",
                 "stop")

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.bin, "psql"), self.conninfo, "-X", "-At",
                            "-v", "ON_ERROR_STOP=1", "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (sql, r.stderr))
        return r.stdout

    def table(self, name, order):
        """The whole table as text, sorted: what 'the same rows' means."""
        try:
            return self.psql("COPY (SELECT * FROM %s ORDER BY %s) TO STDOUT" % (name, order))
        except RuntimeError:
            return None


def make_store(tmp, nseries, hours, t0, seed):
    rng = random.Random(seed)
    path = os.path.join(tmp, "points-%d.csv" % seed)
    with open(path, "w") as f:
        for h in range(hours):
            for s in range(nseries):
                f.write("MN%05d:a21026:hour,%d,%.2f\n" % (s, t0 + 3600 * h,
                                                       rng.uniform(10, 60)))
    return path


def write_registry(tmp, nseries):
    """One facility, outlet and SO2 limit per series (names that need quoting)."""
    return pt.write_registry(
        tmp, [{"id": "F%05d" % s, "name": 'Plant %d, "unit"' % s, "region": "350100",
               "industry": "D4411"} for s in range(nseries)],
        [{"facility_id": "F%05d" % s, "code": "DA001", "medium": "gas", "mn": "MN%05d" % s}
         for s in range(nseries)],
        [{"facility_id": "F%05d" % s, "outlet": "DA001", "pollutant": "a21026", "value": 50,
          "unit": "mg/m3", "period": "hour", "basis": "measured"} for s in range(nseries)])


def main():
    tmp = tempfile.mkdtemp(prefix="plume-export-pg-")
    cl = Cluster(tmp)
    try:
        cl.start()
        run_tests(tmp, cl)
    finally:
        cl.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    pt.finish()


def run_tests(tmp, cl):
    t0 = int(datetime.datetime(2026, 3, 1, tzinfo=TZ).timestamp())
    db = os.path.join(tmp, "db")
    nseries = 200
    pts = make_store(tmp, nseries, 72, t0, 1)
    r = plume("import", "--db", db, pts)
    check(r.returncode == 0, "import 200 series x 3 days", r.stderr)
    r = plume("registry", "import", "--db", db, *write_registry(tmp, nseries))
    check(r.returncode == 0, "registry import", r.stderr)

    schema = plume("export", "schema").stdout
    try:
        cl.psql(schema)
        check(True, "the DDL of plume export schema applies")
    except RuntimeError as e:
        check(False, "the DDL of plume export schema applies", e)

    days = ["--from", "2026-03-01", "--to", "2026-03-03"]
    r = plume("export", "daily", "--db", db, *days, "--format", "pg", "--pg", cl.conninfo)
    check(r.returncode == 0 and "600 rows copied into plume_daily" in r.stderr,
          "export daily into PostgreSQL (new days: copied straight in)", r.stderr)
    order = "mn, pollutant, day"
    first = cl.table("plume_daily", order)
    csvr = plume("export", "daily", "--db", db, *days, "--quiet")
    rows = list(csv.DictReader(io.StringIO(csvr.stdout)))
    pg_rows = [line.split("\t") for line in first.splitlines()]
    cols = cl.psql("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                   "information_schema.columns WHERE table_name = 'plume_daily'").strip()
    check(cols.split(",") == list(rows[0].keys()), "the table's columns are the CSV's", cols)

    def norm(v, name):
        if v in ("\\N", ""):
            return None
        if name in ("valid", "exceeds"):
            return v in ("t", "true")
        try:
            return float(v)
        except ValueError:
            return v
    names = list(rows[0].keys())
    a = sorted(tuple(norm(x[n], n) for n in names) for x in rows)
    b = sorted(tuple(norm(v, n) for v, n in zip(x, names)) for x in pg_rows)
    check(len(a) == 600 and a == b, "PostgreSQL holds exactly the CSV export's rows",
          "%d vs %d\n%s\n%s" % (len(a), len(b), a[:1], b[:1]))

    r = plume("export", "daily", "--db", db, *days, "--format", "pg", "--pg", cl.conninfo)
    check(r.returncode == 0 and "600 rows upserted into plume_daily" in r.stderr and
          cl.table("plume_daily", order) == first,
          "exporting the same days again (an upsert) leaves the same rows", r.stderr)
    # Overlapping ranges: days 2-3 again, then 1-3, all through the upsert.
    r = plume("export", "daily", "--db", db, "--from", "2026-03-02", "--to", "2026-03-03",
              "--format", "pg", "--pg", cl.conninfo, "--quiet")
    check(r.returncode == 0 and cl.table("plume_daily", order) == first,
          "exporting part of the days again leaves the same rows", r.stderr)

    # A corrected value: the day's row is replaced, nothing is added.
    fix = os.path.join(tmp, "fix.csv")
    with open(fix, "w") as f:
        for h in range(24):
            f.write("MN00007:a21026:hour,%d,99\n" % (t0 + 3600 * h))
    plume("import", "--db", db, fix)
    r = plume("export", "daily", "--db", db, "--from", "2026-03-01", "--format", "pg", "--pg",
              cl.conninfo, "--quiet")
    got = cl.psql("SELECT count(*), max(avg) FILTER (WHERE mn = 'MN00007' AND day = "
                  "'2026-03-01') FROM plume_daily").strip()
    check(r.returncode == 0 and got == "600|99", "re-exporting a corrected day replaces its "
          "row", got + r.stderr)
    second = cl.table("plume_daily", order)

    # A failure in the middle of the load: a constraint that one row violates.
    cl.psql("ALTER TABLE plume_daily ADD CONSTRAINT avg_sane CHECK (avg < 90) NOT VALID")
    r = plume("export", "daily", "--db", db, *days, "--format", "pg", "--pg", cl.conninfo,
              "--quiet")
    check(r.returncode == 1 and "avg_sane" in r.stderr,
          "a row the database refuses fails the export with PostgreSQL's message", r.stderr)
    check(cl.table("plume_daily", order) == second,
          "a failed export leaves nothing half-written (the table is as it was)")
    cl.psql("ALTER TABLE plume_daily DROP CONSTRAINT avg_sane")

    # Killed at random moments: the table holds all of an export or none of it.
    big = os.path.join(tmp, "big.db")
    nbig = 20000
    r = plume("import", "--db", big, make_store(tmp, nbig, 48, t0, 2))
    r2 = plume("registry", "import", "--db", big, *write_registry(tmp, nbig))
    check(r.returncode == 0 and r2.returncode == 0, "import 20,000 series x 2 days",
          r.stderr + r2.stderr)
    cl.psql("TRUNCATE plume_daily")
    rng = random.Random(7)
    outcomes = []
    for i in range(4):
        p = subprocess.Popen([PLUME, "export", "daily", "--db", big, "--from", "2026-03-01",
                              "--to", "2026-03-02", "--format", "pg", "--pg", cl.conninfo,
                              "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.02, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        deadline = time.time() + 60
        n = None
        while time.time() < deadline:  # the server aborts the killed transaction
            n = int(cl.psql("SELECT count(*) FROM plume_daily").strip())
            active = int(cl.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE "
                                 "'idle in transaction%' OR (state = 'active' AND query "
                                 "LIKE 'COPY%')").strip())
            if active == 0:
                break
            time.sleep(0.2)
        outcomes.append(n)
    check(all(n in (0, 2 * nbig) for n in outcomes),
          "an export killed with SIGKILL leaves all of it or nothing: %s" % outcomes)
    r = plume("export", "daily", "--db", big, "--from", "2026-03-01", "--to", "2026-03-02",
              "--format", "pg", "--pg", cl.conninfo, "--quiet")
    n = int(cl.psql("SELECT count(*) FROM plume_daily").strip())
    check(r.returncode == 0 and n == 2 * nbig, "then a whole export lands (%d rows)" % n,
          r.stderr)

    r = plume("export", "exceedances", "--db", db, *days, "--format", "pg", "--pg",
              cl.conninfo)
    csvr = plume("export", "exceedances", "--db", db, *days, "--quiet")
    want = len(list(csv.DictReader(io.StringIO(csvr.stdout))))
    got = int(cl.psql("SELECT count(*) FROM plume_exceedances").strip())
    check(r.returncode == 0 and want > 0 and got == want,
          "exceedance episodes load too (%d)" % want, r.stderr)

    # Rows the export no longer produces (an episode whose start moved when late data came)
    # are deleted from the range; a filtered export only touches its own MN and pollutant.
    mn_a, mn_b = cl.psql("SELECT min(mn), max(mn) FROM plume_exceedances").strip().split("|")
    for mn in (mn_a, mn_b):
        cl.psql("CREATE TEMP TABLE moved AS SELECT * FROM plume_exceedances WHERE mn = '%s' "
                "ORDER BY start_time LIMIT 1; UPDATE moved SET start_time = start_time - "
                "interval '1 hour'; INSERT INTO plume_exceedances SELECT * FROM moved" % mn)
    stale = "SELECT count(*) FROM plume_exceedances WHERE mn = '%s'"
    before = [int(cl.psql(stale % m).strip()) for m in (mn_a, mn_b)]
    r = plume("export", "exceedances", "--db", db, *days, "--filter", "mn=" + mn_a,
              "--format", "pg", "--pg", cl.conninfo)
    after = [int(cl.psql(stale % m).strip()) for m in (mn_a, mn_b)]
    check(r.returncode == 0 and "1 no longer exported deleted" in r.stderr and
          after == [before[0] - 1, before[1]],
          "a filtered re-export deletes its own stale episode row only (%s -> %s)" %
          (before, after), r.stderr)
    r = plume("export", "exceedances", "--db", db, *days, "--format", "pg", "--pg",
              cl.conninfo, "--quiet")
    got = int(cl.psql("SELECT count(*) FROM plume_exceedances").strip())
    check(r.returncode == 0 and got == want,
          "a whole re-export leaves exactly the episodes the store has (%d)" % got, r.stderr)
    r = plume("export", "daily", "--db", db, "--from", "2026-03-01", "--format", "pg", "--pg",
              "host=%s port=1 user=plume" % tmp)
    check(r.returncode == 1 and "cannot connect" in r.stderr,
          "a server that cannot be reached is reported", r.stderr)


main()
