#!/usr/bin/env bash
# demo.sh: build offboard, start a demo directory (a private slapd on
# 127.0.0.1 with sample accounts) and a demo HTTP API that records requests,
# then show `offboard plan` on it. `demo.sh stop` stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=$root/demo/run
if [ "${1:-}" = stop ]; then
        [ -f "$run/recorder.pid" ] && kill "$(cat "$run/recorder.pid")" 2>/dev/null || true
        [ -d "$run/slapd" ] && "$root/tests/harness/slapd.sh" stop "$run/slapd" || true
        rm -rf "$run"
        echo "demo stopped"
        exit 0
fi
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
"$0" stop >/dev/null 2>&1 || true
mkdir -p "$run"

# The directory: 40 generated accounts plus named ones covering every status rule.
"$root/tests/harness/slapd.sh" passwords "$run/slapd"
/usr/bin/python3 "$root/tests/harness/gen_fixture.py" --users 40 --manifest "$run/manifest.json" \
        --service-password-file "$run/slapd/offboard.pw" --limited-password-file "$run/slapd/limited.pw" \
        > "$run/people.ldif"
"$root/tests/harness/slapd.sh" start "$run/slapd" "$run/people.ldif" >/dev/null
# shellcheck disable=SC1091
. "$run/slapd/env"

# The "applications": an HTTP server that answers 200 and records each request.
/usr/bin/python3 "$root/tests/harness/recorder.py" --log "$run/requests.jsonl" --portfile "$run/recorder.port" \
        >/dev/null 2>&1 &
echo $! > "$run/recorder.pid"
for _ in $(seq 100); do [ -s "$run/recorder.port" ] && break; sleep 0.05; done
port=$(cat "$run/recorder.port")
(umask 077 && echo "demo-token" > "$run/apps.token")

sed -e "s|@LDAP_URI@|$OB_LDAP_URI|" -e "s|@CA_FILE@|$OB_CA_FILE|" -e "s|@BIND_DN@|$OB_BIND_DN|" \
    -e "s|@BIND_PW_FILE@|$OB_BIND_PW_FILE|" -e "s|@BASE@|$OB_BASE|" -e "s|@API@|http://127.0.0.1:$port|" \
    "$root/demo/offboard.yaml.in" > "$run/offboard.yaml"

export OFFBOARD_MAPPINGS_DIR=$root/mappings
echo "== offboard validate"
"$root/build/offboard" validate --config "$run/offboard.yaml"
echo
echo "== offboard plan (dry run: nothing is changed)"
"$root/build/offboard" plan --config "$run/offboard.yaml"
cat <<MSG

The demo directory and API are still running:
  plan as JSON:  OFFBOARD_MAPPINGS_DIR=$root/mappings $root/build/offboard plan --config $run/offboard.yaml --format json
  carry it out:  OFFBOARD_MAPPINGS_DIR=$root/mappings $root/build/offboard reconcile --config $run/offboard.yaml
  requests seen: $run/requests.jsonl
  stop the demo: $0 stop
MSG
