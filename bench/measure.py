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
    med = statistics.median(walls)
    ratio = ""
    base = os.environ.get("MEASURE_BASELINE")
    if base:
        ratio = f"   {med / float(base):4.2f}x baseline"
    print(f"{label:<40} wall {med:6.2f} s (runs: " + ", ".join(f"{w:.2f}" for w in walls)
          + f")   peak RSS {max(rss):6.1f} MB{ratio}")
    out = os.environ.get("MEASURE_OUT")
    if out:
        with open(out, "w") as f:
            f.write(f"{med}\n")
    return med


if __name__ == "__main__":
    main()
