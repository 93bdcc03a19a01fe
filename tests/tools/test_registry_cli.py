#!/usr/bin/env python3
"""plume registry import/show: files in any order, bad records reported with file and line
and skipped, the registry kept in the store. usage: test_registry_cli.py PLUME"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, plume  # noqa: E402

pt.init(sys.argv[1])

with tempfile.TemporaryDirectory() as d:
    files = {
        "facilities.csv": "id,name,uscc,region\nF1,Plant One,913201000000000018,320102\n"
                          "F2,Plant Two,91320100000000001H,320102\n",
        "outlets.csv": "facility_id,code,medium,mn,pw,o2_ref\nF1,DA001,gas,MN0001,123456,6\n"
                       "F2,DA001,gas,MN0002,123456,6\n",
        "limits.csv": "facility_id,outlet,pollutant,value,unit,period,basis\n"
                      "F1,DA001,a21026,35,mg/m3,hour,zs\n",
    }
    for name, text in files.items():
        pt.write_text(os.path.join(d, name), text)
    db = os.path.join(d, "db")
    args = [os.path.join(d, x) for x in ("limits.csv", "outlets.csv", "facilities.csv")]
    r = plume("registry", "import", "--db", db, *args)
    check(r.returncode == 0, "import succeeds with a bad record among good ones")
    out = json.loads(r.stdout or "{}")
    check(out == {"facilities": 1, "outlets": 1, "limits": 1, "rejected": 2},
          "counts: the bad facility and its outlet are refused: %s" % out)
    check("facilities.csv: line 3: uscc: wrong check character" in r.stderr,
          "the bad record is named with file and line")
    r = plume("registry", "show", "--db", db)
    check(json.loads(r.stdout or "{}") == {"facilities": 1, "outlets": 1, "limits": 1},
          "show reads the registry back from the store")
    r = plume("registry", "show", "--db", db, "--mn", "MN0001")
    check("limit a21026 35 mg/m3 hour zs" in r.stdout, "show --mn lists the outlet's limits")
    r = plume("registry", "show", "--db", db, "--mn", "NOPE")
    check(r.returncode == 1 and "no outlet has MN NOPE" in r.stderr, "an unknown MN is an error")
pt.finish()
