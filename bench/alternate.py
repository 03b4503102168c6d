#!/usr/bin/env python3
"""alternate.py RUNS LABEL_A CMD_A LABEL_B CMD_B: runs the two shell commands
one after the other, A B A B ..., RUNS times each (stdout to /dev/null), so
that both see the same load on a shared machine; prints each one's median
wall time and peak RSS (from wait4: the command's own process tree's largest),
and B's median over A's. Exits 1 when a command fails."""
import os
import statistics
import subprocess
import sys
import time


def run(cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"alternate.py: exit status {code}: {cmd}", file=sys.stderr)
        sys.exit(1)
    return wall, usage.ru_maxrss / 1024.0


def main():
    runs = int(sys.argv[1])
    (la, ca), (lb, cb) = (sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])
    res = {la: ([], []), lb: ([], [])}
    for _ in range(runs):
        for label, cmd in ((la, ca), (lb, cb)):
            w, r = run(cmd)
            res[label][0].append(w)
            res[label][1].append(r)
    for label in (la, lb):
        walls, rss = res[label]
        print(f"{label:<44} wall {statistics.median(walls):6.2f} s (runs: "
              + ", ".join(f"{w:.2f}" for w in walls) + f")   peak RSS {max(rss):6.1f} MB")
    ratio = statistics.median(res[lb][0]) / statistics.median(res[la][0])
    print(f"{'ratio ' + lb + ' / ' + la:<44} {ratio:4.2f}x (medians of {runs} alternate runs)")


if __name__ == "__main__":
    main()
