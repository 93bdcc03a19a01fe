#!/usr/bin/env python3
"""Kills crash_writer with SIGKILL at random moments, about 30 times, reopening the same
store each time, and checks that every batch it acknowledged is stored and that
storage_check finds nothing wrong. TAP output; usage: test_kill9.py CRASH_WRITER."""
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


def main():
    exe = sys.argv[1]
    rounds = int(os.environ.get("KILL9_ROUNDS", "30"))
    rng = random.Random(int(os.environ.get("KILL9_SEED", str(os.getpid()))))
    d = tempfile.mkdtemp(prefix="plume-kill9-")
    acks = []
    try:
        for n in range(1, rounds + 1):
            p = subprocess.Popen([exe, "write", d], stdout=subprocess.PIPE)
            time.sleep(rng.uniform(0.02, 0.4))
            p.send_signal(signal.SIGKILL)
            out, _ = p.communicate()
            lines = out.decode().split("\n")
            got = [l for l in lines[:-1] if l.startswith("A ")]  # the last may be cut
            acks.extend(got)
            v = subprocess.run([exe, "verify", d], input="\n".join(acks).encode(),
                               stdout=subprocess.PIPE)
            pt.check(v.returncode == 0, "kill %d: %d acknowledged lines so far" % (n, len(acks)))
            if v.stdout:
                pt.diag(v.stdout.decode())
        pt.check(len(acks) > rounds * 4, "the writer acknowledged batches")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    pt.finish()


if __name__ == "__main__":
    main()
