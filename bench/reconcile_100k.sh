#!/usr/bin/env bash
# reconcile_100k.sh [--rev REV] [USERS] [RUNS]: streaming and memory benchmark (issue 2).
# Generates USERS accounts (default 100,000) into a private slapd and prints,
# side by side from one run: an ldapsearch paged dump of the attributes
# offboard reads, `offboard plan` with nothing owed and `offboard reconcile`
# with nothing owed (median wall time, peak RSS), then ldapsearch and
# `offboard reconcile` with nothing owed run alternately (A B A B ...), so that
# both see the same load. Targets: within 1.1x of ldapsearch (issue "One
# engine for every pass"), peak RSS under 64 MB. --rev REV builds that commit
# alone (git archive), else the work tree. Not a test; stops by itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rev=''
if [ "${1:-}" = --rev ]; then
        rev=$2
        shift 2
fi
users=${1:-100000}
runs=${2:-5}
py=/usr/bin/python3
"$root/scripts/install-deps.sh"
work=$(mktemp -d /tmp/ob-bench-XXXXXX)
trap '"$root/tests/harness/slapd.sh" stop "$work/slapd" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
src=$root
build=$root/build-bench
commit=$(git -C "$root" rev-parse --short=12 HEAD)
if [ -n "$rev" ]; then
        commit=$(git -C "$root" rev-parse --short=12 "$rev^{commit}")
        mkdir "$work/src"
        git -C "$root" archive "$commit" | tar -x -C "$work/src"
        src=$work/src build=$work/build
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "reconcile_100k: $(date -u +%FT%RZ), commit $commit, $(nproc) cores, $users accounts, load average $(cut -d' ' -f1-3 /proc/loadavg)"

"$root/tests/harness/slapd.sh" passwords "$work/slapd"
t0=$(date +%s.%N)
$py "$root/tests/harness/gen_fixture.py" --users "$users" --service-password-file "$work/slapd/offboard.pw" \
        --limited-password-file "$work/slapd/limited.pw" > "$work/people.ldif"
"$root/tests/harness/slapd.sh" start "$work/slapd" "$work/people.ldif" >/dev/null
t1=$(date +%s.%N)
# shellcheck disable=SC1091
. "$work/slapd/env"
printf 'directory: %s accounts generated and loaded in %.1f s (slapd %s)\n' "$users" "$($py -c "print($t1 - $t0)")" \
        "$(/usr/sbin/slapd -VV 2>&1 | head -1 | sed 's/.*slapd //')"

cat > "$work/offboard.yaml" <<YAML
directory:
  uri: $OB_LDAP_URI
  ca_file: $OB_CA_FILE
  bind_dn: $OB_BIND_DN
  bind_password_file: $OB_BIND_PW_FILE
  base: $OB_BASE
  page_size: 500
  min_accounts: 1000
  teams:
    base: ou=teams,dc=example,dc=org
writeback: {assertion_attribute: entryCSN}
state: {path: state.db}
safety: {max_accounts: 0, max_percent: 0}
mappings: [openldap]
YAML
export OFFBOARD_MAPPINGS_DIR=$root/mappings
ob=$build/offboard
attrs=$("$ob" validate --config "$work/offboard.yaml" | sed -n 's/^attributes requested: //p')
echo "attributes read: $attrs"
# The first reconcile records every account (no transitions configured): afterwards nothing is owed.
$py "$root/bench/measure.py" "offboard reconcile (first: records all)" 1 -- "$ob" reconcile --quiet --config "$work/offboard.yaml"
echo
dump() {
        # shellcheck disable=SC2086
        LDAPTLS_CACERT=$OB_CA_FILE ldapsearch -LLL -ZZ -H "$OB_LDAP_URI" -D "$OB_BIND_DN" -y "$OB_BIND_PW_FILE" \
                -b "$OB_BASE" -E pr=500/noprompt "(objectClass=inetOrgPerson)" $attrs
}
export -f dump
export OB_CA_FILE OB_LDAP_URI OB_BIND_DN OB_BIND_PW_FILE OB_BASE attrs
dump > /dev/null # warm slapd's caches so every contender reads from memory
MEASURE_OUT=$work/base $py "$root/bench/measure.py" "ldapsearch -ZZ paged dump (pr=500)" "$runs" -- bash -c dump
export MEASURE_BASELINE=$(cat "$work/base")
$py "$root/bench/measure.py" "offboard plan (nothing owed)" "$runs" -- "$ob" plan --quiet --config "$work/offboard.yaml"
$py "$root/bench/measure.py" "offboard reconcile (nothing owed)" "$runs" -- "$ob" reconcile --quiet --config "$work/offboard.yaml"
echo
$py "$root/bench/alternate.py" "$runs" "ldapsearch paged dump" dump \
        "offboard reconcile (nothing owed)" "\"$ob\" reconcile --quiet --config \"$work/offboard.yaml\""
ls -l "$work/state.db" | awk '{printf "state store: %.1f MB\n", $5/1048576}'
