#!/usr/bin/env bash
# feed_latency.sh: how soon `offboard run` acts on a change (issue "offboard run").
#
#   feed_latency.sh [--accounts N] [--changes K] [--burst B] [--rate R]
#
# A private slapd (tests/harness/slapd.sh, syncprov on) holds N generated
# accounts (default 1,000; bench/gen_accounts.py, none owing). The recorder
# of the test suite answers every request with 200 and logs its arrival time.
# `offboard run` (built RelWithDebInfo from the work tree) runs with an hourly
# full pass, so only the syncrepl feed can start a pass. Then:
#   - K changes (default 200) at a steady R per second (default 10), each an
#     admin setting employeeType: Inactive on one active account;
#   - a burst of B (default 50) such changes written at once;
#   - slapd stopped and started again 3 times, 20 changes written right
#     after each start: none lost, and when the last was acted on after
#     slapd answered again;
#   - 10 end dates, each a few seconds ahead (a mapping rule of the
#     benchmark's reads description as a GeneralizedTime end date), which
#     no change marks when they pass: how late after its second each fires.
# For each change, the latency from the moment the modify was handed to
# ldapmodify (one long-lived ldapmodify over ldapi, fed record by record) to
# the arrival of the account's first request (revoke-sessions) at the HTTP
# server; printed: median, p90, p99 and max, and how many never arrived.
# Targets (issue): steady median under 10 ms and p99 under 50 ms, burst p99
# under 250 ms. Today each change costs a full pass over the N accounts, so
# the figures grow with N. Traffic only to 127.0.0.1; stops by itself (and
# after 600 s). Run as root on Debian 12. Not a test. FEED_LOG=PATH keeps
# the service's log there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
accounts=1000
changes=200
burst=50
rate=10
while [ $# -gt 0 ]; do
        case $1 in
        --accounts) accounts=$2; shift 2 ;;
        --changes) changes=$2; shift 2 ;;
        --burst) burst=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
        esac
done
py=/usr/bin/python3
harness=$root/tests/harness
"$root/scripts/install-deps.sh"

work=$(mktemp -d /tmp/ob-feedlat-XXXXXX)
svc=''
rec=''
watchdog=''
cleanup() {
        set +e
        [ -n "$svc" ] && kill -TERM "$svc" 2> /dev/null && wait "$svc" 2> /dev/null
        [ -n "$rec" ] && kill -TERM "$rec" 2> /dev/null && wait "$rec" 2> /dev/null
        "$harness/slapd.sh" stop "$work/slapd" > /dev/null 2>&1
        [ -n "$watchdog" ] && kill -TERM "$watchdog" 2> /dev/null
        [ -n "${FEED_LOG:-}" ] && cp "$work/run.err" "$FEED_LOG"
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'echo "feed_latency.sh: stopped (time limit or SIGTERM)" >&2; exit 124' TERM
(sleep 600 && kill -TERM $$) > /dev/null 2>&1 &
watchdog=$!

build=$root/build-bench
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
service: {full_pass_interval: 1h, feed: syncrepl}
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
mappings: [openldap, enddate.yaml]
connectors:
  apps: {type: http, base_url: "$api", allow_insecure: true, auth: {type: bearer, token_file: apps.token}}
actions:
  revoke-sessions: {connector: apps, security: true, method: POST, url: "/users/{{ account.uid }}/sessions/revoke"}
transitions:
  deactivate: {to: [locked, inactive, ended, deleted], actions: [revoke-sessions]}
EOF
printf 'rules:\n  - {name: end-date, status: ended, when: {attribute: description, passed: generalized}}\n' \
        > "$work/enddate.yaml"
export OFFBOARD_MAPPINGS_DIR=$root/mappings
"$ob" run --config "$work/offboard.yaml" 2> "$work/run.err" &
svc=$!
for _ in $(seq 600); do grep -q "event=pass number=1 " "$work/run.err" && grep -q "event=feed_live" "$work/run.err" && break; sleep 0.05; done
grep -q "event=feed_live" "$work/run.err" || { echo "feed_latency.sh: the feed never went live" >&2; tail "$work/run.err" >&2; exit 1; }
sleep 1 # the pass the refresh asked for

echo "feed_latency: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$root" rev-parse --short=12 HEAD 2> /dev/null || echo '?'), $(nproc) cores, $accounts accounts, load average $(cut -d' ' -f1-3 /proc/loadavg)"
$py - "$work" "$OB_LDAPI_URI" "$OB_BASE" "$harness" "$accounts" "$changes" "$burst" "$rate" << 'EOF'
import json, os, subprocess, sys, time
work, uri, base, harness = sys.argv[1:5]
n, changes, burst, rate = map(float, sys.argv[5:])
n, changes, burst = int(n), int(changes), int(burst)
log = os.path.join(work, "requests.jsonl")
def modifier():
    return subprocess.Popen(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", uri], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

mod = modifier()
pos = 0
arrived = {}

def poll():
    global pos
    with open(log) as f:
        f.seek(pos)
        for line in f:
            if not line.endswith("\n"):
                break
            pos += len(line)
            e = json.loads(line)
            uid = e["path"].split("/")[3]
            arrived.setdefault(uid, e["time"])

def disable(uid):
    t = time.time()
    mod.stdin.write("dn: uid=%s,%s\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n\n"
                    % (uid, base))
    mod.stdin.flush()
    return t

def wait(uids, limit):
    end = time.time() + limit
    while time.time() < end and not all(u in arrived for u in uids):
        poll()
        time.sleep(0.001)

def report(label, sent):
    lat = sorted((arrived[u] - t) * 1000 for u, t in sent.items() if u in arrived)
    lost = len(sent) - len(lat)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    print("%-34s %4d changes: median %6.1f ms, p90 %6.1f ms, p99 %6.1f ms, max %6.1f ms; %d never acted on"
          % (label, len(sent), q(0.5), q(0.9), q(0.99), lat[-1] if lat else float("nan"), lost))

users = ["user%06d" % i for i in range(2, n + 1)]
steady, bursty = users[:changes], users[changes:changes + burst]
poll()
sent = {}
for u in steady:
    t0 = time.time()
    sent[u] = disable(u)
    wait([u], 5)
    time.sleep(max(0, 1 / rate - (time.time() - t0)))
report("steady (%g/s):" % rate, sent)
sent = {u: disable(u) for u in bursty}
wait(bursty, 30)
report("burst (all at once):", sent)

# slapd stopped and started again three times; right after each start, 20
# changes at once: none may be lost, and each must be acted on soon after
# slapd answers again (the feed reconnects, its refresh and a pass follow).
after = users[changes + burst + 10:changes + burst + 70]
sent, cleared = {}, []
for r in range(3):
    mod.stdin.close()
    mod.wait()
    subprocess.run([os.path.join(harness, "slapd.sh"), "stop", os.path.join(work, "slapd")],
                   stdout=subprocess.DEVNULL, check=True)
    time.sleep(0.5)
    subprocess.run([os.path.join(harness, "slapd.sh"), "start", os.path.join(work, "slapd")],
                   stdout=subprocess.DEVNULL, check=True)
    up = time.time()  # slapd.sh start returns once slapd answers
    mod = modifier()
    batch = after[20 * r:20 * r + 20]
    for u in batch:
        sent[u] = disable(u)
    wait(batch, 30)
    done = [arrived[u] for u in batch if u in arrived]
    cleared.append((max(done) - up) * 1000 if len(done) == len(batch) else float("nan"))
    time.sleep(1)
report("after each of 3 slapd restarts:", sent)
print("%-34s %s ms after slapd answered again" % ("backlog cleared:", ", ".join("%.0f" % c for c in cleared)))

# End dates: each account gets one a few seconds ahead, a second apart.
ending = users[changes + burst:changes + burst + 10]
start = int(time.time()) + 3
sent = {}
for k, u in enumerate(ending):
    at = start + k
    mod.stdin.write("dn: uid=%s,%s\nchangetype: modify\nreplace: description\ndescription: %s\n\n"
                    % (u, base, time.strftime("%Y%m%d%H%M%SZ", time.gmtime(at))))
    sent[u] = float(at)
mod.stdin.flush()
wait(ending, 30)
report("end dates (after their second):", sent)
mod.stdin.close()
mod.wait()
EOF
sleep 1 # the last pass's log line
passes=$(grep -c "event=pass " "$work/run.err" || true)
echo "whole passes run by the service: $passes (the first, the one after the feed's refresh, and one per end date)"
grep "event=change_pass " "$work/run.err" | sed 's/.* changes=\([0-9]*\) .*duration_ms=\([0-9]*\) .*/\1 \2/' |
        awk '{n++; c += $1; if ($1 > 1) { b++; bc += $1; bd += $2 } else { d += $2 }}
             END { printf "passes over changes: %d for %d changes; of one change: %d, mean %.1f ms; of several: %d for %d changes, mean %.1f ms\n",
                   n, c, n - b, (n - b) ? d / (n - b) : 0, b, bc, b ? bd / b : 0 }'
