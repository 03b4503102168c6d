#!/usr/bin/env python3
"""measure.py LABEL RUNS -- COMMAND...: run COMMAND RUNS times (stdout to
/dev/null) and print the median wall time and the peak RSS of that process
(from wait4, so only the command itself is counted)."""
import os
import statistics
import subprocess
import sys
import time


def main():
    label, runs = sys.argv[1], int(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    walls, rss = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        walls.append(time.monotonic() - t0)
        rss.append(usage.ru_maxrss / 1024.0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            print(f"{label}: exit status {code}", file=sys.stderr)
            sys.exit(1)
    print(f"{label:<44} wall {statistics.median(walls):7.2f} s (runs: "
          + ", ".join(f"{w:.2f}" for w in walls)
          + f")   peak RSS {max(rss):7.1f} MB")
    return statistics.median(walls)


if __name__ == "__main__":
    main()
