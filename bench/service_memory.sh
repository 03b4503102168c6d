#!/usr/bin/env bash
# service_memory.sh: does `offboard run` hold its memory while changes flow?
# (issue "offboard run": a service runs for months).
#
#   service_memory.sh [--minutes M] [--accounts N] [--rate R] [--interval D] [--sample S]
#
# A private slapd (tests/harness/slapd.sh, syncprov on) holds N generated
# accounts (default 1,000; bench/gen_accounts.py, all active employees). The
# recorder of the test suite answers every request with 200. `offboard run`
# (built RelWithDebInfo from the work tree) runs with the syncrepl feed and
# a whole pass every D (default 1m, so that whole passes and passes over
# changes both run many times). For M minutes (default 10), one long-lived
# ldapmodify over ldapi writes R changes a second (default 5), going through
# the accounts in turn and flipping each between employeeType: Inactive
# (offboard owes a revoke-sessions request: a new transition, a new key)
# and its original type (active again: a status change, no request). Every
# S seconds (default 10) it samples the service's VmRSS (/proc/PID/status)
# and prints it with the changes written and the requests received so far;
# at the end: min and max RSS, the growth from the 2nd minute (the first
# sample at or after 120 s, once the caches, the SQLite page cache and the
# connections are warm) to the end, and per minute; VmHWM; the passes run.
# It asserts nothing. The circuit breaker's sliding window (safety.window,
# 1h) keeps every status change of the last hour, so a run shorter than an
# hour may grow by that much (a few tens of bytes a change). Traffic only to
# 127.0.0.1; stops by itself (and after M + 10 minutes). Run as root on
# Debian 12. Not a test. OB_BENCH_BUILD=DIR builds there instead of
# build-bench; MEMORY_LOG=PATH keeps the service's log there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=10
accounts=1000
rate=5
interval=1m
sample=10
while [ $# -gt 0 ]; do
        case $1 in
        --minutes) minutes=$2; shift 2 ;;
        --accounts) accounts=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
        esac
done
case $minutes$accounts$sample in *[!0-9]*) echo "service_memory.sh: --minutes, --accounts and --sample take whole numbers" >&2; exit 2 ;; esac
if [ "$minutes" -lt 1 ] || [ "$accounts" -lt 2 ] || [ "$sample" -lt 1 ]; then
        echo "service_memory.sh: --minutes >= 1, --accounts >= 2, --sample >= 1" >&2
        exit 2
fi
py=/usr/bin/python3
harness=$root/tests/harness
"$root/scripts/install-deps.sh"

work=$(mktemp -d /tmp/ob-svcmem-XXXXXX)
svc=''
rec=''
watchdog=''
cleanup() {
        set +e
        [ -n "$svc" ] && kill -TERM "$svc" 2> /dev/null && wait "$svc" 2> /dev/null
        [ -n "$rec" ] && kill -TERM "$rec" 2> /dev/null && wait "$rec" 2> /dev/null
        "$harness/slapd.sh" stop "$work/slapd" > /dev/null 2>&1
        [ -n "$watchdog" ] && kill -TERM "$watchdog" 2> /dev/null
        [ -n "${MEMORY_LOG:-}" ] && cp "$work/run.err" "$MEMORY_LOG"
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'echo "service_memory.sh: stopped (time limit or SIGTERM)" >&2; exit 124' TERM
(sleep $((minutes * 60 + 600)) && kill -TERM $$) > /dev/null 2>&1 &
watchdog=$!

build=${OB_BENCH_BUILD:-$root/build-bench}
{ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF &&
        cmake --build "$build" -j"$(nproc)"; } > "$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
ob=$build/offboard

"$harness/slapd.sh" passwords "$work/slapd"
$py "$root/bench/gen_accounts.py" --accounts "$accounts" --owing 0 \
        --service-password-file "$work/slapd/offboard.pw" --limited-password-file "$work/slapd/limited.pw" \
        > "$work/people.ldif"
timeout 300 "$harness/slapd.sh" start "$work/slapd" "$work/people.ldif" > /dev/null
# shellcheck disable=SC1091
. "$work/slapd/env"

$py "$harness/recorder.py" --log "$work/requests.jsonl" --portfile "$work/port" 2> "$work/recorder.err" &
rec=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
api="http://127.0.0.1:$(cat "$work/port")/api"
echo "t0ken" > "$work/apps.token"
cat > "$work/offboard.yaml" << EOF
service: {full_pass_interval: $interval, feed: syncrepl}
directory:
  uri: $OB_LDAP_URI
  ca_file: $OB_CA_FILE
  bind_dn: $OB_BIND_DN
  bind_password_file: $OB_BIND_PW_FILE
  base: $OB_BASE
  filter: "(objectClass=inetOrgPerson)"
writeback: {object_class: offboardAccount}
state: {path: state.db}
safety: {max_accounts: 0, max_percent: 0}
mappings: [openldap]
connectors:
  apps: {type: http, base_url: "$api", allow_insecure: true, auth: {type: bearer, token_file: apps.token}}
actions:
  revoke-sessions: {connector: apps, security: true, method: POST, url: "/users/{{ account.uid }}/sessions/revoke"}
transitions:
  deactivate: {to: [locked, inactive, ended, deleted], actions: [revoke-sessions]}
EOF
export OFFBOARD_MAPPINGS_DIR=$root/mappings
"$ob" run --config "$work/offboard.yaml" 2> "$work/run.err" &
svc=$!
for _ in $(seq 600); do grep -q "event=pass number=2 " "$work/run.err" && grep -q "event=feed_live" "$work/run.err" && break; sleep 0.05; done
grep -q "event=feed_live" "$work/run.err" || { echo "service_memory.sh: the feed never went live" >&2; tail "$work/run.err" >&2; exit 1; }

rev=$(git -C "$root" rev-parse --short=12 HEAD 2> /dev/null) || rev='?'
if [ "$rev" != '?' ] && ! git -C "$root" diff --quiet HEAD -- agent 2> /dev/null; then
        rev="$rev (agent/ modified)"
fi
echo "service_memory: $(date -u +%Y-%m-%dT%H:%MZ), commit $rev, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "offboard run (RelWithDebInfo), $accounts accounts, $rate changes/s for $minutes min, whole pass every $interval, RSS every $sample s"
$py - "$work" "$OB_LDAPI_URI" "$OB_BASE" "$accounts" "$rate" "$minutes" "$sample" "$svc" << 'EOF'
import os, subprocess, sys, time
work, uri, base = sys.argv[1:4]
accounts, rate, minutes, sample, pid = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
log = os.path.join(work, "requests.jsonl")
runlog = os.path.join(work, "run.err")

def status(key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1

def count(path, needle):
    try:
        with open(path, "rb") as f:
            return f.read().count(needle)
    except FileNotFoundError:
        return 0

mod = subprocess.Popen(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", uri], stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
users = ["user%06d" % i for i in range(2, accounts + 1)]
inactive = set()
changes = 0
samples = []
t0 = time.monotonic()
end = t0 + minutes * 60
next_sample = t0
print("%7s %10s %8s %9s" % ("t (s)", "VmRSS kB", "changes", "requests"))
while True:
    now = time.monotonic()
    if now >= next_sample:
        rss = status("VmRSS")
        samples.append((now - t0, rss))
        print("%7.0f %10d %8d %9d" % (now - t0, rss, changes, count(log, b"\n")), flush=True)
        next_sample += sample
    if now >= end:
        break
    u = users[changes % len(users)]
    if u in inactive:
        inactive.discard(u)
        kind = "employee"
    else:
        inactive.add(u)
        kind = "Inactive"
    mod.stdin.write("dn: uid=%s,%s\nchangetype: modify\nreplace: employeeType\nemployeeType: %s\n\n"
                    % (u, base, kind))
    mod.stdin.flush()
    changes += 1
    time.sleep(max(0.0, t0 + changes / rate - time.monotonic()))
mod.stdin.close()
mod.wait()
if pid and os.path.exists("/proc/%d" % pid):
    hwm = status("VmHWM")
else:
    print("the service is gone (see its log)")
    sys.exit(1)
rss = [r for _, r in samples]
warm = next(((t, r) for t, r in samples if t >= 120), samples[0])
last = samples[-1]
span = (last[0] - warm[0]) / 60
print("RSS: min %d kB, max %d kB, VmHWM %d kB" % (min(rss), max(rss), hwm))
print("growth from %.0f s (%d kB) to %.0f s (%d kB): %+d kB%s"
      % (warm[0], warm[1], last[0], last[1], last[1] - warm[1],
         ", %+.1f kB/min" % ((last[1] - warm[1]) / span) if span > 0 else ""))
print("changes written: %d; requests received: %d; whole passes: %d; passes over changes: %d"
      % (changes, count(log, b"\n"), count(runlog, b"event=pass "), count(runlog, b"event=change_pass ")))
EOF
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
