#!/usr/bin/env python3
"""docs/CONFIG.md lists every setting as `plume serve --config-doc` does: the documentation
cannot drift from the code. usage: test_config_doc.py PLUME CONFIG.md"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402

pt.init(sys.argv[1])
doc = sys.argv[2]
r = pt.plume("serve", "--config-doc")
table = r.stdout if r.returncode == 0 else None
text = open(doc, encoding="utf-8").read()
ok = table is not None and text.rstrip("\n").endswith(table.rstrip("\n"))
pt.check(ok, "docs/CONFIG.md ends with the generated settings table",
         "plume serve --config-doc failed: " + r.stderr if table is None else
         "docs/CONFIG.md is out of date: regenerate its table with plume serve --config-doc")
pt.finish()
