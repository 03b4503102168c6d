#!/usr/bin/env bash
# systemd-check.sh: offboard.service under a real systemd.
#
# No test in ctest can run the unit as systemd runs it: the test machine has
# no systemd as PID 1. This script gives it one: a Debian 12 tree (debootstrap,
# cached), offboard installed into it with `cmake --install`, and systemd as
# PID 1 of its own PID and mount namespaces, chrooted into that tree. The
# service talks to a private slapd and the request recorder on 127.0.0.1 (the
# network namespace is the host's). It checks:
#
#   1. `systemctl enable offboard.service` works offline ([Install]);
#   2. Type=notify: the unit becomes active, so READY=1 came; STATUS= is set;
#   3. DynamicUser=, StateDirectory=, LoadCredential=: it runs as a dynamic
#      uid, its state store is under /var/lib/private/offboard, and the
#      credentials it was given work (the first pass binds and sends);
#   4. the hardening leaves it able to work: the first pass's requests reach
#      the recorder, and a change made in slapd afterwards reaches it through
#      the feed without a restart;
#   5. journald: its lines carry fields (journalctl OFFBOARD_EVENT=pass_end);
#   6. the watchdog: with WatchdogSec=2s (a drop-in) it is not restarted over
#      10 s;
#   7. `systemctl reload`: a broken configuration is refused with its
#      file:line:col and the service goes on; a good one is taken;
#   8. `systemctl stop`: it stops cleanly (Result=success);
#   9. `systemd-analyze security` of the loaded unit: exposure 2.0 or lower.
#
# Root only, opt-in (it is not part of ./scripts/test.sh). The first run needs
# debootstrap and a Debian mirror (OFFBOARD_DEB_MIRROR, default
# deb.debian.org) and takes a few minutes; later runs reuse the tree.
#
#   scripts/systemd-check.sh [WORKDIR]     (default: build-systemd-check)
#
# Never boot systemd on the host's own root: its boot-time services clean /tmp
# and apply sysctl settings. Here it only ever sees the chroot, in which the
# units that would touch the host (udev, sysctl, modules, remount, getty) are
# masked, and everything it started dies with its PID namespace.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mkdir -p "${1:-$root/build-systemd-check}" && cd "${1:-$root/build-systemd-check}" && pwd)
base=$work/base # the debootstrapped tree, kept between runs
tree=$work/root # a fresh copy of it per run
deadline=$(($(date +%s) + ${OFFBOARD_SYSTEMD_CHECK_TIMEOUT:-900}))
failures=0
pid1=
boot=

say() { echo "systemd-check: $*"; }
ok() { say "ok: $*"; }
bad() {
        say "FAILED: $*"
        failures=$((failures + 1))
}
left() { echo $((deadline - $(date +%s))); }

[ "$(id -u)" = 0 ] || {
        say "run it as root (it creates namespaces and a chroot)"
        exit 2
}
for t in debootstrap unshare nsenter chroot curl ldapmodify; do
        command -v "$t" >/dev/null || {
                say "needs $t"
                exit 2
        }
done

cleanup() {
        set +e
        # To look inside before it goes: nsenter -t PID -m -p -r -w (PID is in WORKDIR/pid1).
        [ -n "$pid1" ] && [ -n "${OFFBOARD_SYSTEMD_CHECK_PAUSE:-}" ] && sleep "$OFFBOARD_SYSTEMD_CHECK_PAUSE"
        # PID 1 of a namespace ignores SIGTERM; SIGKILL ends it and, with it,
        # every process and mount of its namespaces.
        [ -n "$pid1" ] && kill -KILL "$pid1" 2>/dev/null
        [ -n "$boot" ] && wait "$boot" 2>/dev/null
        [ -f "$work/recorder.pid" ] && kill "$(cat "$work/recorder.pid")" 2>/dev/null
        [ -d "$work/slapd" ] && "$root/tests/harness/slapd.sh" stop "$work/slapd" >/dev/null 2>&1
        rm -f "$work/recorder.pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the tree ---------------------------------------------------------------
if [ ! -x "$base/lib/systemd/systemd" ]; then
        mirror=${OFFBOARD_DEB_MIRROR:-http://deb.debian.org/debian}
        say "debootstrap bookworm into $base from $mirror (once; at most $(left) s)"
        rm -rf "$base"
        timeout -k 10 "$(left)" debootstrap --variant=minbase \
                --include=systemd,libldap-2.5-0,libyaml-0-2,libcurl4,libsqlite3-0,libjansson4,ca-certificates \
                bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1 || {
                tail -n 20 "$work/debootstrap.log"
                say "debootstrap failed"
                exit 1
        }
fi
rm -rf "$tree"
cp -a "$base" "$tree"

say "build and install offboard into the tree"
# A build directory configured from another checkout: CMake refuses it.
if [ -f "$work/build/CMakeCache.txt" ] &&
        ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$work/build/CMakeCache.txt"; then
        rm -rf "$work/build"
fi
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
        -DCMAKE_INSTALL_PREFIX=/usr -DOFFBOARD_SYSTEMD_UNITDIR=/usr/lib/systemd/system >"$work/cmake.log" 2>&1 ||
        {
                tail -n 20 "$work/cmake.log"
                exit 1
        }
cmake --build "$work/build" -j"$(nproc)" >>"$work/cmake.log" 2>&1 || {
        tail -n 20 "$work/cmake.log"
        exit 1
}
DESTDIR=$tree cmake --install "$work/build" >>"$work/cmake.log" 2>&1 || {
        tail -n 20 "$work/cmake.log"
        exit 1
}

# ---- the directory and the applications, on the host's loopback ----------------
rm -rf "$work/slapd" "$work/requests.jsonl" "$work/recorder.port"
"$root/tests/harness/slapd.sh" passwords "$work/slapd"
python3 "$root/tests/harness/gen_fixture.py" --users 20 --manifest "$work/manifest.json" \
        --service-password-file "$work/slapd/offboard.pw" --limited-password-file "$work/slapd/limited.pw" \
        >"$work/people.ldif"
"$root/tests/harness/slapd.sh" start "$work/slapd" "$work/people.ldif" >/dev/null
# shellcheck disable=SC1091
. "$work/slapd/env"
python3 "$root/tests/harness/recorder.py" --log "$work/requests.jsonl" --portfile "$work/recorder.port" \
        >"$work/recorder.log" 2>&1 &
echo $! >"$work/recorder.pid"
for _ in $(seq 100); do
        [ -s "$work/recorder.port" ] && break
        sleep 0.05
done
api=$(cat "$work/recorder.port")
listen=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# ---- the administrator's part: configuration, credentials, enable --------------
etc=$tree/etc/offboard
mkdir -p "$etc/credentials"
cp "$OB_CA_FILE" "$etc/ca.pem"
(
        umask 077
        cp "$OB_BIND_PW_FILE" "$etc/credentials/ldap-password"
        echo "check-token" >"$etc/credentials/apps-token"
        echo "check-key" >"$etc/credentials/apps-key"
)
write_config() {
        sed -e "s|@LDAP_URI@|$OB_LDAP_URI|" -e "s|@CA_FILE@|/etc/offboard/ca.pem|" -e "s|@BIND_DN@|$OB_BIND_DN|" \
                -e "s|@BIND_PW_FILE@|\${CREDENTIALS_DIRECTORY}/ldap-password|" -e "s|@BASE@|$OB_BASE|" \
                -e "s|@API@|http://127.0.0.1:$api|" \
                -e "s|token_file: apps.token|token_file: \"\${CREDENTIALS_DIRECTORY}/apps-token\"|" \
                -e "s|path: state.db|path: /var/lib/offboard/state.db|" \
                "$root/demo/offboard.yaml.in" >"$etc/offboard.yaml.new"
        printf 'service:\n  listen: 127.0.0.1:%s\n  feed: syncrepl\n' "$listen" >>"$etc/offboard.yaml.new"
        mv "$etc/offboard.yaml.new" "$etc/offboard.yaml"
}
write_config
in_tree() { chroot "$tree" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
if in_tree env CREDENTIALS_DIRECTORY=/etc/offboard/credentials OFFBOARD_MAPPINGS_DIR=/usr/share/offboard/mappings \
        offboard validate --config /etc/offboard/offboard.yaml >"$work/validate.log" 2>&1; then
        ok "offboard validate in the tree"
else
        cat "$work/validate.log"
        bad "offboard validate in the tree"
fi
if in_tree systemctl enable offboard.service >"$work/enable.log" 2>&1 &&
        [ -L "$tree/etc/systemd/system/multi-user.target.wants/offboard.service" ]; then
        ok "systemctl enable offboard.service"
else
        cat "$work/enable.log"
        bad "systemctl enable offboard.service"
fi
# What would reach outside the tree, or wait for hardware that is not there.
in_tree systemctl mask systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
        systemd-sysctl.service systemd-modules-load.service systemd-remount-fs.service systemd-firstboot.service \
        getty@tty1.service console-getty.service systemd-logind.service >/dev/null 2>&1
# The watchdog's check: a short interval, which a loop that pings would keep.
mkdir -p "$tree/etc/systemd/system/offboard.service.d"
printf '[Service]\nWatchdogSec=2s\n' >"$tree/etc/systemd/system/offboard.service.d/watchdog.conf"

# ---- boot ---------------------------------------------------------------------------
say "boot systemd in the tree (PID 1 of new PID and mount namespaces)"
# shellcheck disable=SC2016 # the inner script expands its own $1
unshare --pid --fork --mount --propagation private /bin/sh -c '
        set -e
        t=$1
        mount --bind "$t" "$t"
        mount -t proc proc "$t/proc"
        mount --rbind /sys "$t/sys"
        mount --rbind /dev "$t/dev"
        # The tree becomes the root of the namespace (pivot_root, not chroot: in
        # a chroot the kernel refuses the user namespace PrivateUsers= needs).
        cd "$t"
        mkdir -p .oldroot
        pivot_root . .oldroot
        umount -l /.oldroot
        exec /usr/bin/env -i container=offboard-check /lib/systemd/systemd --log-target=journal
' sh "$tree" >"$work/boot.log" 2>&1 &
boot=$!
for _ in $(seq 100); do
        pid1=$(pgrep -P "$boot" -x systemd || true)
        [ -n "$pid1" ] && break
        sleep 0.1
done
[ -n "$pid1" ] || {
        cat "$work/boot.log"
        say "systemd did not start"
        exit 1
}
echo "$pid1" >"$work/pid1"
sd() { nsenter -t "$pid1" -m -p -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
state=
for _ in $(seq 300); do
        state=$(sd systemctl is-system-running 2>/dev/null || true)
        case $state in running | degraded) break ;; esac
        sleep 0.2
done
say "system state: ${state:-unknown}"
[ "$state" = degraded ] && sd systemctl --failed --no-legend | sed 's/^/systemd-check:   failed unit: /'

show() { sd systemctl show -p "$1" --value offboard.service; }

# Credentials. In some nested set-ups (systemd 252 as PID 1 of a namespace
# inside a VM, as on the machine this was written on) systemd hands every
# unit an empty credentials directory, even for SetCredential= and root,
# and logs nothing. Probe it: where it works, LoadCredential= is checked as
# shipped; where it does not, say so and give the service its files by a
# drop-in, so that the other checks still mean something.
sd systemd-run -q -u ob-credential-probe -p SetCredential=probe:works -p StandardOutput=file:/root/probe.out \
        /bin/sh -c 'cat "$CREDENTIALS_DIRECTORY/probe"' >/dev/null 2>&1 || true
for _ in $(seq 50); do
        [ -s "$tree/root/probe.out" ] && break
        sleep 0.1
done
if grep -q works "$tree/root/probe.out" 2>/dev/null; then
        credentials=systemd
        ok "this systemd passes credentials (SetCredential= probe)"
else
        credentials=dropin
        say "NOTE: this systemd gives units an empty credentials directory (SetCredential= probe: $(head -c 200 "$tree/root/probe.out" 2>/dev/null)); LoadCredential= cannot be checked here, the service gets its files through a drop-in"
        chmod 0755 "$etc/credentials"
        chmod 0644 "$etc/credentials/"*
        printf '[Service]\nLoadCredential=\nEnvironment=CREDENTIALS_DIRECTORY=/etc/offboard/credentials\n' \
                >"$tree/etc/systemd/system/offboard.service.d/credentials.conf"
        sd systemctl daemon-reload
        sd systemctl restart offboard.service || true
fi
for _ in $(seq 100); do
        [ "$(show ActiveState)" = active ] && break
        sleep 0.1
done
if [ "$(show ActiveState)" = active ] && [ "$(show Type)" = notify ]; then
        ok "Type=notify and active: READY=1 came"
else
        sd systemctl status offboard.service --no-pager || true
        sd journalctl -u offboard.service --no-pager | tail -n 30 || true
        bad "the unit is not active"
fi
status=$(show StatusText)
[ -n "$status" ] && ok "STATUS=: $status" || bad "no STATUS="

uid=$(sd sh -c 'stat -c %u /proc/$(systemctl show -p MainPID --value offboard.service)' 2>/dev/null || echo 0)
if [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ]; then
        ok "DynamicUser=: it runs as uid $uid"
else
        bad "DynamicUser=: uid is '$uid', not in 61184-65519"
fi

# The first pass sends what the fixture's departed accounts are owed.
for _ in $(seq 150); do
        [ -s "$work/requests.jsonl" ] && break
        sleep 0.1
done
first=$(wc -l <"$work/requests.jsonl" 2>/dev/null || echo 0)
[ "$first" -gt 0 ] && ok "the first pass sent $first requests (credentials and hardening let it work)" ||
        bad "no request from the first pass"
if grep -q 'Bearer check-token' "$work/requests.jsonl" 2>/dev/null; then
        ok "the bearer token was read from the credentials directory ($credentials)"
else
        bad "the requests do not carry the credential's token"
fi
if [ -f "$tree/var/lib/private/offboard/state.db" ] && [ -L "$tree/var/lib/offboard" ]; then
        ok "StateDirectory= with DynamicUser=: /var/lib/private/offboard/state.db"
else
        ls -la "$tree/var/lib" "$tree/var/lib/private" 2>/dev/null || true
        bad "no state store under /var/lib/private/offboard"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$listen/healthz" || true)
[ "$code" = 200 ] && ok "/healthz answers 200 from inside the unit" || bad "/healthz: '$code'"

# A change made now reaches it through the feed: an active account is disabled.
victim=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(next(p["dn"] for p in m["people"] if p["status"]=="active" and p["uid"].startswith("user")))' "$work/manifest.json")
vuid=$(python3 -c 'import sys; print(sys.argv[1].split(",")[0].split("=")[1])' "$victim")
before=$(grep -c "/users/$vuid/" "$work/requests.jsonl" || true)
ldapmodify -H "$OB_LDAPI_URI" -Y EXTERNAL -Q >/dev/null <<LDIF
dn: $victim
changetype: modify
replace: employeeType
employeeType: Inactive
LDIF
for _ in $(seq 100); do
        [ "$(grep -c "/users/$vuid/" "$work/requests.jsonl" || true)" -gt "$before" ] && break
        sleep 0.1
done
if [ "$(grep -c "/users/$vuid/" "$work/requests.jsonl" || true)" -gt "$before" ]; then
        ok "a change made in slapd reached the service through the feed ($vuid)"
else
        bad "the change to $vuid did not reach the service"
fi

fields=no
for _ in $(seq 100); do
        if sd journalctl -u offboard.service OFFBOARD_EVENT=pass_end -o verbose --no-pager 2>/dev/null |
                grep -q 'OFFBOARD_EXIT=0' ; then
                fields=yes
                break
        fi
        sleep 0.2
done
if [ "$fields" = yes ]; then
        ok "journald has the structured fields (journalctl OFFBOARD_EVENT=pass_end)"
else
        sd journalctl -u offboard.service -o verbose --no-pager | head -n 40 || true
        bad "no OFFBOARD_EVENT=pass_end entry with fields in the journal"
fi

# The watchdog: 2 s, and 10 s later it has not been restarted.
restarts=$(show NRestarts)
sleep 10
if [ "$(show ActiveState)" = active ] && [ "$(show NRestarts)" = "$restarts" ] && [ "$(show WatchdogUSec)" = 2s ]; then
        ok "WatchdogSec=2s: still active after 10 s, not restarted"
else
        bad "watchdog: $(show ActiveState), restarts $(show NRestarts) (was $restarts), WatchdogUSec $(show WatchdogUSec)"
fi

# Reload: a broken configuration is refused where it is broken; a good one is taken.
journal_has() { # $1: a pattern a line of the unit's journal has within 20 s
        for _ in $(seq 100); do
                sd journalctl -u offboard.service --no-pager 2>/dev/null | grep -q "$1" && return 0
                sleep 0.2
        done
        return 1
}
pid=$(show MainPID)
cp "$etc/offboard.yaml" "$work/good.yaml"
printf 'bogus_section: 1\n' >>"$etc/offboard.yaml"
sd systemctl reload offboard.service || true
if journal_has 'event=reload_refused.*offboard.yaml:[0-9]*:[0-9]*' &&
        [ "$(show ActiveState)" = active ] && [ "$(show MainPID)" = "$pid" ]; then
        ok "systemctl reload of a broken configuration: refused with file:line:col, the service goes on"
else
        sd journalctl -u offboard.service --no-pager | tail -n 10
        bad "reload of a broken configuration"
fi
cp "$work/good.yaml" "$etc/offboard.yaml"
sd systemctl reload offboard.service || true
if journal_has 'event=reloaded' && [ "$(show MainPID)" = "$pid" ]; then
        ok "systemctl reload of a good configuration: taken, same process"
else
        bad "reload of a good configuration"
fi

exposure=$(sd systemd-analyze security offboard.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for offboard.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
        ok "systemd-analyze security of the loaded unit: $exposure"
else
        bad "systemd-analyze security: '${exposure:-no answer}'"
fi

sd systemctl stop offboard.service || true
if [ "$(show ActiveState)" = inactive ] && [ "$(show Result)" = success ] && journal_has 'event=service_stopped'; then
        ok "systemctl stop: stopped cleanly (Result=success, event=service_stopped)"
else
        sd journalctl -u offboard.service --no-pager | tail -n 10
        bad "stop: $(show ActiveState), Result=$(show Result)"
fi
sd journalctl -u offboard.service --no-pager >"$work/journal.txt" 2>&1 || true

if [ "$failures" -gt 0 ]; then
        say "$failures check(s) failed; the journal is in $work/journal.txt"
        exit 1
fi
say "all checks passed; the journal is in $work/journal.txt"
