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


def main():
    exe = sys.argv[1]
    rounds = int(os.environ.get("KILL9_ROUNDS", "30"))
    rng = random.Random(int(os.environ.get("KILL9_SEED", str(os.getpid()))))
    d = tempfile.mkdtemp(prefix="plume-kill9-")
    acks = []
    print("1..%d" % (rounds + 1))
    failed = 0
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
            ok = v.returncode == 0
            failed += not ok
            print("%s %d - kill %d: %d acknowledged lines so far" %
                  ("ok" if ok else "not ok", n, n, len(acks)))
            for l in v.stdout.decode().splitlines():
                print("# " + l)
            sys.stdout.flush()
        ok = len(acks) > rounds * 4
        failed += not ok
        print("%s %d - the writer acknowledged batches" % ("ok" if ok else "not ok", rounds + 1))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
