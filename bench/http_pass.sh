#!/usr/bin/env bash
# http_pass.sh: the HTTP pass benchmark (issue "One engine for every pass").
#
#   http_pass.sh [--accounts N] [--owing M] [--quick] [--build DIR | --rev REV]
#                [--wrk-seconds S] [--time-limit S] [--keep] [--info] [--perf]
#
# A private slapd (tests/harness/slapd.sh) holds N generated accounts
# (default 100,000; bench/gen_accounts.py) of which exactly M (default 10,000)
# are inactive, so a first pass on a fresh state store owes 3 requests each
# (revoke-sessions, transfer-records, free-license). nginx on 127.0.0.1 answers
# every request under /api/ with 200 and {"ok":true}, keep-alive on, one
# worker, logging "$msec method status" to a file (buffered) so every pass's
# requests are counted and its HTTP phase (first to last request) is timed.
# Printed, one line each:
#   - wrk POST at concurrency 16 (-t 2) and 1 (-t 1) against the same server
#     (and, for reference, at 16 against a second server block without log);
#   - libcurl's multi interface alone (bench/curl_floor.c) sending the same
#     requests at concurrency 16: the ceiling for a libcurl client here;
#   - offboard reconcile, first pass (all owed) and second pass (nothing owed):
#     wall time, requests, requests/s over the pass and over its HTTP phase,
#     time before the first and after the last request, user/system CPU, peak
#     RSS; then fsync+fdatasync per request from a separate run of each under
#     strace -f -c (the first-pass run on a restored directory and a new store);
#   - bench/sequential.py (python-ldap, paged search, then the same 3 requests
#     per inactive account in sequence over one keep-alive connection);
#   - the ratios against the targets: HTTP-phase rate >= 0.70 x wrk c=16,
#     whole-pass rate >= 3 x sequential, peak RSS < 64 MB.
# --quick: 10,000 accounts, 1,000 owing, wrk 2 s: well under a minute.
# offboard is built (RelWithDebInfo) from the work tree into --build DIR
# (default build-bench), or with --rev REV from that commit alone (git archive
# into the temporary directory), which is what to measure while others have
# uncommitted edits in agent/. --keep keeps the temporary directory; with
# --info offboard logs at info (not --quiet), so its NAME.err there shows
# where each window's time went (event=window). --perf also runs the first
# pass once more under perf record (99 Hz per CPU, no call graph) and prints
# where offboard's own CPU went, by library and by function (perf.data kept
# in the temporary directory, with --keep).
# Traffic only to 127.0.0.1. Every process it starts is stopped on exit
# (and after --time-limit seconds, default 1800, or 300 with --quick).
# Run as root on Debian 12 (apt-get installs what is missing). Not a test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
accounts=100000
owing=10000
wrk_s=5
limit=''
build=$root/build-bench
keep=false
perf=false
quiet=--quiet
rev=''
usage() {
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
}
while [ $# -gt 0 ]; do
        case $1 in
        --accounts) accounts=$2; shift 2 ;;
        --owing) owing=$2; shift 2 ;;
        --quick) accounts=10000 owing=1000 wrk_s=2 limit=${limit:-300}; shift ;;
        --build) build=$2; shift 2 ;;
        --rev) rev=$2; shift 2 ;;
        --wrk-seconds) wrk_s=$2; shift 2 ;;
        --time-limit) limit=$2; shift 2 ;;
        --keep) keep=true; shift ;;
        --info) quiet=''; shift ;;
        --perf) perf=true; shift ;;
        -h | --help) usage ;;
        *) echo "http_pass.sh: unknown argument '$1'" >&2; usage ;;
        esac
done
limit=${limit:-1800}
py=/usr/bin/python3
harness=$root/tests/harness

# --- 1. packages ------------------------------------------------------------
"$root/scripts/install-deps.sh"
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q "install ok installed"; }
candidate() { apt-cache policy "$1" 2> /dev/null | sed -n 's/^ *Candidate: //p' | grep -vx '(none)' > /dev/null; }
if ! command -v nginx > /dev/null && ! [ -x /usr/sbin/nginx ]; then
        if candidate nginx-light; then need+=(nginx-light); else need+=(nginx); fi
fi
command -v wrk > /dev/null || need+=(wrk)
$py -c 'import ldap' 2> /dev/null || need+=(python3-ldap)
command -v strace > /dev/null || need+=(strace)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || { echo "http_pass.sh: run as root to install: ${need[*]}" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        for p in "${need[@]}"; do
                candidate "$p" || apt-get update -q > /dev/null
                candidate "$p" || { echo "http_pass.sh: no installation candidate for $p" >&2; exit 1; }
        done
        echo "installing: ${need[*]}"
        # nginx's postinst would start the system nginx where systemd runs; ours is private.
        apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- processes and clean-up ------------------------------------------------
work=$(mktemp -d /tmp/ob-http-XXXXXX)
nginx_pid='' watchdog=''
stop_pid() { # PID: SIGTERM (SIGQUIT for nginx), up to 5 s, then SIGKILL
        local pid=$1 sig=${2:-TERM} i
        kill -"$sig" "$pid" 2> /dev/null || return 0
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2> /dev/null || break
                sleep 0.05
        done
        kill -KILL "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
}
cleanup() {
        set +e
        if [ -n "$nginx_pid" ]; then
                local workers
                workers=$(pgrep -P "$nginx_pid")
                stop_pid "$nginx_pid" QUIT
                for w in $workers; do kill -KILL "$w" 2> /dev/null; done
        fi
        "$harness/slapd.sh" stop "$work/slapd" > /dev/null 2>&1
        if [ -n "$watchdog" ]; then
                pkill -TERM -P "$watchdog" 2> /dev/null
                kill -TERM "$watchdog" 2> /dev/null
                wait "$watchdog" 2> /dev/null
        fi
        if $keep; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'echo "http_pass.sh: stopped (time limit ${limit}s or SIGTERM)" >&2; exit 124' TERM
# The watchdog: after LIMIT seconds, SIGTERM to this script and to its children
# (each long step also has a timeout of its own); the EXIT trap cleans up.
main_pid=$$
(
        trap 'exit 0' TERM
        sleep "$limit" &
        wait $! || exit 0
        for c in $(pgrep -P "$main_pid"); do [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2> /dev/null; done
        kill -TERM "$main_pid" 2> /dev/null
) < /dev/null > /dev/null 2>&1 &
watchdog=$!

# --- build --------------------------------------------------------------------
if [ -n "$rev" ]; then
        commit=$(git -C "$root" rev-parse --short=12 "$rev^{commit}")
        mkdir "$work/src"
        git -C "$root" archive "$commit" | tar -x -C "$work/src"
        src=$work/src build=$work/build
else
        src=$root
        commit=$(git -C "$root" rev-parse --short=12 HEAD)
        if [ -n "$(git -C "$root" status --porcelain -- agent CMakeLists.txt cmake 2> /dev/null)" ]; then
                commit="$commit + uncommitted changes in agent/"
        fi
fi
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF &&
        cmake --build "$build" -j"$(nproc)"; } > "$work/build.log" 2>&1; then
        tail -20 "$work/build.log" >&2
        echo "http_pass.sh: the build failed (try --rev HEAD)" >&2
        exit 1
fi
ob=$build/offboard

now() { date +%s.%N; }
calc() { $py -c "import sys; print(eval(sys.argv[1]))" "$1"; }
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "http_pass: $(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) cores, $accounts accounts, $owing owing 3 actions, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 2. directory ------------------------------------------------------------
t0=$(now)
"$harness/slapd.sh" passwords "$work/slapd"
$py "$root/bench/gen_accounts.py" --accounts "$accounts" --owing "$owing" \
        --service-password-file "$work/slapd/offboard.pw" --limited-password-file "$work/slapd/limited.pw" \
        > "$work/people.ldif"
timeout 600 "$harness/slapd.sh" start "$work/slapd" "$work/people.ldif" > /dev/null
# A copy of the loaded database, to give the strace'd first pass the same start.
"$harness/slapd.sh" stop "$work/slapd"
cp -a --sparse=always "$work/slapd/data" "$work/data.orig"
timeout 60 "$harness/slapd.sh" start "$work/slapd" > /dev/null
# shellcheck disable=SC1091
. "$work/slapd/env"
printf 'directory: %d accounts generated and loaded in %.1f s (slapd %s)\n' "$accounts" "$(calc "$(now) - $t0")" \
        "$(/usr/sbin/slapd -VV 2>&1 | head -1 | sed 's/.*slapd //; s/ .*//')"

# --- 3. nginx --------------------------------------------------------------
port=$(free_port)
port_nolog=$(free_port)
while [ "$port_nolog" = "$port" ]; do port_nolog=$(free_port); done
# nginx's worker (nobody) reopens the log after SIGUSR1: it must reach it.
chmod 711 "$work"
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" << NGINX
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    log_format bench '\$msec \$request_method \$status';
    server {
        listen 127.0.0.1:$port;
        access_log $work/nginx/access.log bench buffer=256k flush=1s;
        location /api/ { default_type application/json; return 200 '{"ok":true}'; }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$port_nolog;
        location /api/ { default_type application/json; return 200 '{"ok":true}'; }
        location / { return 404; }
    }
}
NGINX
"$nginx_bin" -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log"
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" < /dev/null > /dev/null 2>&1 &
nginx_pid=$!
for ((i = 0; i < 100; i++)); do
        curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/api/ping" && break
        kill -0 "$nginx_pid" 2> /dev/null || { cat "$work/nginx/error.log" >&2; exit 1; }
        sleep 0.05
done
api=http://127.0.0.1:$port/api
echo "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///'): $api, 1 worker, keep-alive, 200 {\"ok\":true}"

# Moves the access log to DIR/NAME.log and has nginx flush and reopen it.
rotate() {
        local i n1 n2
        mv "$work/nginx/access.log" "$work/$1.log"
        kill -USR1 "$nginx_pid"
        for ((i = 0; i < 100; i++)); do
                [ -e "$work/nginx/access.log" ] && break
                sleep 0.05
        done
        # The worker flushes its buffer into the old file after the master reopened.
        n1=-1 n2=$(wc -l < "$work/$1.log")
        for ((i = 0; i < 40 && n1 != n2; i++)); do
                sleep 0.1
                n1=$n2 n2=$(wc -l < "$work/$1.log")
        done
}
# LOG START END: "requests first last non2xx" (times from $msec, the same clock as date +%s.%N).
analyse() {
        $py - "$1" << 'EOF'
import sys
n = bad = 0
first = last = None
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 3:
        continue
    t = float(f[0])
    n += 1
    bad += not f[2].startswith("2")
    first = t if first is None else min(first, t)
    last = t if last is None else max(last, t)
print(n, first or 0, last or 0, bad)
EOF
}

# --- 4a. wrk ----------------------------------------------------------------
cat > "$work/post.lua" << 'LUA'
wrk.method = "POST"
wrk.body = '{"reason":"Left the company","status":"inactive"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
LUA
wrk_rate() { # CONNECTIONS THREADS PORT
        timeout $((wrk_s + 30)) wrk -c "$1" -t "$2" -d "${wrk_s}s" -s "$work/post.lua" \
                "http://127.0.0.1:$3/api/users/user000001/sessions/revoke" | awk '/^Requests\/sec:/ {print $2}'
}
wrk16=$(wrk_rate 16 2 "$port")
printf '%-58s %9.0f req/s\n' "wrk POST c=16 t=2 ${wrk_s}s (same server, access log):" "$wrk16"
wrk1=$(wrk_rate 1 1 "$port")
printf '%-58s %9.0f req/s\n' "wrk POST c=1 t=1 ${wrk_s}s (same server, access log):" "$wrk1"
wrk16n=$(wrk_rate 16 2 "$port_nolog")
printf '%-58s %9.0f req/s\n' "wrk POST c=16 t=2 ${wrk_s}s (server without log):" "$wrk16n"
rotate wrk
rm -f "$work/wrk.log"
# libcurl's multi interface alone, the same request mix, nothing else: the
# ceiling for a client built on it (bench/curl_floor.c).
cc -O2 -o "$work/curl_floor" "$root/bench/curl_floor.c" -lcurl
floor16=$(timeout 150 "$work/curl_floor" "$api" "$((owing * 3))" 16 | awk '{print $(NF-4)}')
printf '%-58s %9.0f req/s\n' "libcurl multi alone c=16, $((owing * 3)) requests (curl_floor):" "$floor16"
rotate floor
rm -f "$work/floor.log"

# --- 4b. offboard --------------------------------------------------------------
umask 077
printf 'bench-token\n' > "$work/apps.token"
cat > "$work/offboard.yaml" << YAML
directory:
  uri: $OB_LDAP_URI
  ca_file: $OB_CA_FILE
  bind_dn: $OB_BIND_DN
  bind_password_file: $OB_BIND_PW_FILE
  base: $OB_BASE
  page_size: 500
  timeout: 30s
  min_accounts: 1
writeback:
  object_class: offboardAccount
  assertion_attribute: entryCSN
state: {path: state.db}
transfer:
  fallback: uid=user000001,$OB_BASE
safety: {max_accounts: 0, max_percent: 0}
mappings: [openldap]
connectors:
  apps:
    type: http
    base_url: $api
    auth: {type: bearer, token_file: apps.token}
    allow_insecure: true
    timeout: 30s
    concurrency: 16
actions:
  revoke-sessions:
    connector: apps
    security: true
    method: POST
    url: /users/{{ account.uid }}/sessions/revoke
    json: {reason: "{{ status.reason }}", status: "{{ status.name }}"}
  transfer-records:
    connector: apps
    method: POST
    url: /users/{{ account.uid }}/transfer
    after: [revoke-sessions]
    json: {to: "{{ transfer_to.uid }}", via: "{{ transfer_to.via }}"}
    when: {status: [inactive, ended, deleted]}
  free-license:
    connector: apps
    method: DELETE
    url: /licenses/{{ account.uid }}
    after: [transfer-records]
    when: {status: [inactive, deleted]}
transitions:
  deactivate:
    to: [inactive, ended, deleted]
    actions: [revoke-sessions, transfer-records, free-license]
  lock:
    to: locked
    actions: [revoke-sessions]
YAML
umask 022
export OFFBOARD_MAPPINGS_DIR=$src/mappings
"$ob" validate --config "$work/offboard.yaml" > /dev/null
# Warm slapd's caches so every contender reads from memory.
LDAPTLS_CACERT=$OB_CA_FILE timeout 300 ldapsearch -LLL -ZZ -H "$OB_LDAP_URI" -D "$OB_BIND_DN" -y "$OB_BIND_PW_FILE" \
        -b "$OB_BASE" -E pr=500/noprompt "(objectClass=inetOrgPerson)" > /dev/null

# run_pass NAME LABEL: one timed reconcile; sets wall, nreq, rate, hrate, peak, http.
run_pass() {
        local name=$1 label=$2 rc=0 start end first last bad user sys
        start=$(now)
        /usr/bin/time -f '%U %S %M' -o "$work/$name.time" timeout 900 \
                "$ob" reconcile $quiet --config "$work/offboard.yaml" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
        end=$(now)
        rotate "$name"
        if [ "$rc" -ne 0 ]; then
                echo "http_pass.sh: offboard reconcile ($label) exited $rc" >&2
                tail -5 "$work/$name.err" "$work/$name.out" >&2
                exit 1
        fi
        read -r user sys peak < <(tail -1 "$work/$name.time")
        peak=$(calc "$peak / 1024")
        read -r nreq first last bad < <(analyse "$work/$name.log")
        [ "$bad" -eq 0 ] || { echo "http_pass.sh: $bad answers were not 2xx" >&2; exit 1; }
        wall=$(calc "$end - $start")
        rate=$(calc "$nreq / $wall")
        if [ "$nreq" -gt 1 ]; then
                http=$(calc "$last - $first")
                hrate=$(calc "$nreq / max($http, 1e-3)")
                printf '%-58s wall %6.2f s, %6d requests, %7.0f req/s whole pass, %7.0f req/s HTTP phase (%.2f s; %.2f s before the first request, %.2f s after the last), user %.2f s, sys %.2f s, peak RSS %.1f MB\n' \
                        "offboard reconcile, $label:" "$wall" "$nreq" "$rate" "$hrate" "$http" \
                        "$(calc "$first - $start")" "$(calc "$end - $last")" "$user" "$sys" "$peak"
        else
                http=0 hrate=0
                printf '%-58s wall %6.2f s, %6d requests, user %.2f s, sys %.2f s, peak RSS %.1f MB\n' \
                        "offboard reconcile, $label:" "$wall" "$nreq" "$user" "$sys" "$peak"
        fi
}
# fsyncs NAME LABEL: one reconcile under strace -f -ttt -T -e trace=fsync,fdatasync;
# counts the calls, their summed wall latency, and when they happened relative
# to the HTTP phase of that run (from its access log).
fsyncs() {
        local name=$1 label=$2 rc=0 start end
        start=$(now)
        timeout 900 strace -f --seccomp-bpf -ttt -T -e trace=fsync,fdatasync -o "$work/$name.strace" \
                "$ob" reconcile $quiet --config "$work/offboard.yaml" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
        end=$(now)
        rotate "$name"
        [ "$rc" -eq 0 ] || { echo "http_pass.sh: offboard reconcile ($label, strace) exited $rc" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
        $py - "$work/$name.strace" "$work/$name.log" "$label" "$(calc "$end - $start")" << 'EOF'
import re, sys
trace, log, label, wall = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
times = [float(l.split()[0]) for l in open(log) if len(l.split()) >= 3]
nreq = len(times)
first, last = (min(times), max(times)) if times else (0.0, 0.0)
calls = {"fsync": 0, "fdatasync": 0}
phase = [0, 0, 0]
latency = 0.0
for line in open(trace):
    m = re.match(r"\s*\d+\s+(\d+\.\d+)\s+(fsync|fdatasync)\(", line)
    if m:
        calls[m.group(2)] += 1
        t = float(m.group(1))
        phase[0 if not nreq or t < first else 1 if t <= last else 2] += 1
    m = re.search(r"(fsync|fdatasync)\b.*<(\d+\.\d+)>\s*$", line)
    if m:
        latency += float(m.group(2))
n = calls["fsync"] + calls["fdatasync"]
head = "%-58s %6d fsync + %6d fdatasync = %d" % ("offboard reconcile, %s, strace:" % label,
                                                 calls["fsync"], calls["fdatasync"], n)
if nreq:
    print("%s for %d requests: %.2f per request; %d before the first request, %d during the HTTP phase, "
          "%d after the last; %.2f s inside them (summed over threads); wall under strace %.2f s"
          % (head, nreq, n / nreq, phase[0], phase[1], phase[2], latency, wall))
else:
    print("%s, no request; %.2f s inside them; wall under strace %.2f s" % (head, latency, wall))
EOF
}

run_pass first "first pass ($((owing * 3)) owed)"
first_nreq=$nreq first_rate=$rate first_hrate=$hrate first_peak=$peak
[ "$first_nreq" -eq $((owing * 3)) ] || echo "note: $first_nreq requests, expected $((owing * 3))"
run_pass second "second pass (nothing owed)"
second_peak=$peak
fsyncs second-strace "second pass (nothing owed)"

# --- 4c. the sequential baseline -------------------------------------------------
start=$(now)
timeout 1200 $py "$root/bench/sequential.py" --ldap-uri "$OB_LDAP_URI" --ca-file "$OB_CA_FILE" \
        --bind-dn "$OB_BIND_DN" --bind-password-file "$OB_BIND_PW_FILE" --base "$OB_BASE" \
        --api "$api" --token-file "$work/apps.token" > "$work/sequential.out"
end=$(now)
rotate sequential
read -r seq_nreq first last bad < <(analyse "$work/sequential.log")
seq_wall=$(calc "$end - $start")
seq_rate=$(calc "$seq_nreq / $seq_wall")
printf '%-58s wall %6.2f s, %6d requests, %7.0f req/s whole pass, %7.0f req/s HTTP phase (%.2f s)\n' \
        "sequential python-ldap + http.client:" "$seq_wall" "$seq_nreq" "$seq_rate" \
        "$(calc "$seq_nreq / max($last - $first, 1e-3)")" "$(calc "$last - $first")"

# --- 4d. first pass again under strace, from the same start -------------------------
"$harness/slapd.sh" stop "$work/slapd"
rm -rf "$work/slapd/data" "$work"/state.db*
cp -a --sparse=always "$work/data.orig" "$work/slapd/data"
timeout 60 "$harness/slapd.sh" start "$work/slapd" > /dev/null
fsyncs first-strace "first pass ($((owing * 3)) owed)"

# --- 4e. first pass again under perf (--perf) --------------------------------------
if $perf; then
        command -v perf > /dev/null || apt-get install -y -q --no-install-recommends linux-perf > /dev/null
        "$harness/slapd.sh" stop "$work/slapd"
        rm -rf "$work/slapd/data" "$work"/state.db*
        cp -a --sparse=always "$work/data.orig" "$work/slapd/data"
        timeout 60 "$harness/slapd.sh" start "$work/slapd" > /dev/null
        timeout 900 perf record -q -F 999 -o "$work/perf.data" -- \
                "$ob" reconcile $quiet --config "$work/offboard.yaml" > "$work/perf.out" 2> "$work/perf.err" ||
                { echo "http_pass.sh: offboard reconcile under perf failed" >&2; tail -5 "$work/perf.err" >&2; exit 1; }
        rotate perf
        # Into files first: head closing a pipe would fail the script (pipefail).
        perf report -q -i "$work/perf.data" --stdio --no-children --sort dso > "$work/perf.dso" 2> /dev/null
        perf report -q -i "$work/perf.data" --stdio --no-children --sort dso,sym > "$work/perf.sym" 2> /dev/null
        echo "first pass under perf, offboard's samples by library:"
        sed -n '1,8s/^/    /p' "$work/perf.dso"
        echo "and by function (top 20):"
        sed -n '1,20s/^/    /p' "$work/perf.sym"
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- ratios ------------------------------------------------------------------------
verdict() { if [ "$(calc "$1")" = True ]; then echo met; else echo "NOT met"; fi; }
r1=$(calc "$first_hrate / $wrk16")
r2=$(calc "$first_rate / $seq_rate")
peak=$(calc "max($first_peak, $second_peak)")
printf '%-58s %5.2f (target >= 0.70: %s)\n' "ratio offboard HTTP-phase rate / wrk c=16:" "$r1" "$(verdict "$r1 >= 0.70")"
printf '%-58s %5.2f (and libcurl alone / wrk c=16: %.2f)\n' "ratio offboard HTTP-phase rate / libcurl alone c=16:" \
        "$(calc "$first_hrate / $floor16")" "$(calc "$floor16 / $wrk16")"
printf '%-58s %5.2f (target >= 3: %s)\n' "ratio offboard whole-pass rate / sequential:" "$r2" "$(verdict "$r2 >= 3")"
printf '%-58s %5.1f MB (target < 64 MB: %s)\n' "offboard peak RSS (both passes):" "$peak" "$(verdict "$peak < 64")"
