#!/usr/bin/env python3
"""docs/CONFIG.md lists every setting as `plume serve --config-doc` does: the documentation
cannot drift from the code. usage: test_config_doc.py PLUME CONFIG.md"""
import subprocess
import sys

plume, doc = sys.argv[1], sys.argv[2]
table = subprocess.run([plume, "serve", "--config-doc"], capture_output=True, text=True,
                       check=True).stdout
text = open(doc, encoding="utf-8").read()
ok = text.rstrip("\n").endswith(table.rstrip("\n"))
print("ok 1 - docs/CONFIG.md ends with the generated settings table" if ok else
      "not ok 1 - docs/CONFIG.md is out of date: regenerate its table with plume serve --config-doc")
print("1..1")
sys.exit(0 if ok else 1)
