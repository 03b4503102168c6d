#!/usr/bin/env bash
# deb-check.sh: build offboard's Debian package from a snapshot of this tree and
# check it, without installing anything on this machine.
#
#   1. snapshot: the files git knows (tracked, and untracked but not ignored),
#      as they are in the work tree; outside git, the directory minus build trees
#   2. dpkg-buildpackage -us -uc (source and binary), parallel=2 nocheck
#   3. lintian on the .changes: any E: or W: without an override fails
#   4. dpkg-deb --info and --contents: the binary, units, mappings, connectors,
#      schemas, example, man pages and README, and nothing in /etc, /var or /usr/local
#   5. the units name the packaged paths; the maintainer scripts create no user
#      or directory, enable and start nothing, and purge the state
#   6. the binary runs and knows /usr/share/offboard/mappings; dpkg --dry-run and
#      apt-get --simulate accept the package (neither changes the system)
#   7. with OFFBOARD_DEB_CHROOT=1 (root, debootstrap, a Debian mirror): install it
#      into a fresh Debian 12 chroot, validate the example there, enable the
#      timer and fake a service's state as an administrator would, purge, and
#      compare the chroot's files with those from before the install.
#
# Exit 0: passed; 1: failed; 77: skipped (a tool is missing; install-deps.sh
# installs them). OFFBOARD_DEB_TIMEOUT bounds the whole run in seconds (600;
# 1500 with the chroot). OFFBOARD_DEB_MIRROR overrides the chroot's mirror.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
chroot_wanted=${OFFBOARD_DEB_CHROOT:-0}
if [ "$chroot_wanted" = 1 ]; then
        budget=${OFFBOARD_DEB_TIMEOUT:-1500}
else
        budget=${OFFBOARD_DEB_TIMEOUT:-600}
fi
deadline=$((SECONDS + budget))
failures=0

say() { printf 'deb-check: %s\n' "$*"; }
ok() { printf 'deb-check:   ok   %s\n' "$*"; }
bad() {
        printf 'deb-check:   FAIL %s\n' "$*"
        failures=$((failures + 1))
}
left() {
        local l=$((deadline - SECONDS))
        if [ "$l" -le 0 ]; then
                say "out of time (${budget}s)"
                exit 1
        fi
        echo "$l"
}
# check DESCRIPTION COMMAND...: ok or FAIL, and go on.
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else bad "$what"; fi
}
none() { ! "$@"; }
absent() {
        local p
        for p; do
                if [ -e "$p" ] || [ -L "$p" ]; then return 1; fi
        done
}
contains() { case $1 in *"$2"*) return 0 ;; esac; return 1; }

for tool in dpkg-buildpackage dh lintian dpkg-deb timeout; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                say "SKIP: $tool is missing (scripts/install-deps.sh installs dpkg-dev, debhelper, lintian)"
                exit 77
        fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/offboard-deb.XXXXXX")
chroot_dir=$tmp/chroot
cleanup() {
        # A chroot may hold a mount (debootstrap's /proc if it was cut short):
        # never delete through one.
        if [ -d "$chroot_dir" ]; then
                for m in proc sys dev/pts dev; do
                        if mountpoint -q "$chroot_dir/$m" 2>/dev/null; then umount -l "$chroot_dir/$m" || true; fi
                done
        fi
        rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# 1. The snapshot.
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree=$tmp/offboard-$version
mkdir -p "$tree"
if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
        say "snapshot of $src: git ls-files (tracked and untracked, not ignored), work-tree versions"
        git -C "$src" ls-files -z --cached --others --exclude-standard |
                (cd "$src" && while IFS= read -r -d '' f; do
                        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
                done) |
                tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -
else
        say "snapshot of $src: not a git checkout, the directory minus build trees"
        tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' --exclude=./demo/run \
                --exclude=./debian/offboard --exclude=./debian/.debhelper --exclude=./debian/files \
                --exclude='./debian/*.substvars' --exclude='./debian/*.debhelper.log' \
                --exclude=./debian/debhelper-build-stamp -cf - . | tar -C "$tree" -xf -
fi
say "snapshot: $(find "$tree" -type f | wc -l) files in $tree"

# 2. The build.
say "dpkg-buildpackage -us -uc (DEB_BUILD_OPTIONS=parallel=2 nocheck), at most $(left)s"
build_start=$SECONDS
if ! (cd "$tree" && DEB_BUILD_OPTIONS="parallel=2 nocheck" timeout -k 10 "$(left)" \
        dpkg-buildpackage -us -uc >"$tmp/build.log" 2>&1); then
        tail -n 60 "$tmp/build.log"
        say "FAIL: dpkg-buildpackage (last 60 lines above)"
        exit 1
fi
say "built in $((SECONDS - build_start))s: $(cd "$tmp" && echo ./*.deb ./*.dsc ./*.changes)"
deb=$tmp/offboard_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
changes=$tmp/offboard_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).changes

# 3. lintian. Informational tags are shown, not counted.
say "lintian --display-info on the .changes (source, binary, dbgsym)"
lint_rc=0
timeout -k 10 "$(left)" lintian --fail-on none --display-info "$changes" >"$tmp/lintian.log" 2>&1 || lint_rc=$?
grep -v '^running with root privileges' "$tmp/lintian.log" | sed 's/^/deb-check:   lintian: /' || true
check "lintian ran (exit $lint_rc)" test "$lint_rc" -eq 0
lint_bad=$(grep -c '^[EW]: ' "$tmp/lintian.log" || true)
check "lintian: no E: or W: tag without an override ($lint_bad)" test "$lint_bad" -eq 0

# 4. What the package holds.
say "dpkg-deb --info"
dpkg-deb --info "$deb" | sed 's/^/deb-check:   /'
dpkg-deb --contents "$deb" | awk '{print $NF}' | sed 's,^\./,/,; s,/$,,' >"$tmp/contents"
has() { grep -qxF "$1" "$tmp/contents"; }
say "dpkg-deb --contents: $(wc -l <"$tmp/contents") entries"
check "/usr/bin/offboard" has /usr/bin/offboard
for f in "$tree"/systemd/*; do
        check "/lib/systemd/system/${f##*/}" has "/lib/systemd/system/${f##*/}"
done
for d in mappings connectors schemas; do
        for f in "$tree/$d"/*; do
                check "/usr/share/offboard/$d/${f##*/}" has "/usr/share/offboard/$d/${f##*/}"
        done
done
for f in "$tree"/examples/*; do
        check "/usr/share/doc/offboard/examples/${f##*/}" has "/usr/share/doc/offboard/examples/${f##*/}"
done
# The man pages docs/ holds now, whatever their sections.
for f in "$tree"/docs/*.[1-9]; do
        [ -e "$f" ] || continue
        m=${f##*/}
        check "/usr/share/man/man${m##*.}/$m.gz" has "/usr/share/man/man${m##*.}/$m.gz"
done
for f in README.md copyright changelog.gz; do
        check "/usr/share/doc/offboard/$f" has "/usr/share/doc/offboard/$f"
done
check "nothing under /etc, /var or /usr/local (the configuration is the administrator's)" \
        none grep -qE '^/(etc|var|usr/local)(/|$)' "$tmp/contents"
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$tmp/control.list"
check "no conffiles" none grep -q conffiles "$tmp/control.list"
check "no second copy of the license (debian/copyright has it)" none grep -q '/LICENSE$' "$tmp/contents"

# 5. The units and the maintainer scripts.
root=$tmp/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/control"
say "the units"
for u in "$root"/lib/systemd/system/*; do
        n=${u##*/}
        check "$n: no /usr/local path" none grep -q /usr/local "$u"
        while read -r path; do
                check "$n: ExecStart= $path is in the package" has "$path"
        done < <(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$u")
        # shellcheck disable=SC2013 # Documentation= holds URIs separated by spaces
        for doc in $(sed -n 's/^Documentation=//p' "$u"); do
                case $doc in
                file://*) path=${doc#file://} ;;
                man:*\(*\)) # man:NAME(SECTION)
                        m=${doc#man:} sect=${doc##*\(}
                        sect=${sect%\)}
                        path=/usr/share/man/man${sect:0:1}/${m%%\(*}.$sect.gz
                        ;;
                *) continue ;;
                esac
                check "$n: Documentation= $doc is in the package ($path)" has "$path"
        done
done
say "the maintainer scripts"
install_scripts=() all_scripts=()
for f in preinst postinst prerm postrm; do
        [ -e "$tmp/control/$f" ] || continue
        all_scripts+=("$tmp/control/$f")
        case $f in preinst | postinst) install_scripts+=("$tmp/control/$f") ;; esac
done
check "no user, group or directory made at install (DynamicUser=, StateDirectory= do that)" \
        none grep -nE 'adduser|useradd|addgroup|groupadd|sysusers|mkdir|install -d|chown' /dev/null "${install_scripts[@]}"
check "nothing enabled or started by systemctl" none grep -nE 'systemctl .*(enable|start)' /dev/null "${all_scripts[@]}"
check "postinst enables the timer only where it was enabled before (dh_installsystemd --no-enable)" \
        grep -q "debian-installed 'offboard-reconcile.timer'" "$tmp/control/postinst"
check "postinst never starts the one-shot offboard-reconcile.service" \
        none grep -q 'deb-systemd-invoke.*offboard-reconcile\.service' "$tmp/control/postinst"
check "postinst starts or restarts offboard.service only through deb-systemd-invoke (enabled or running units only)" \
        grep -q "deb-systemd-invoke \$_dh_action.*'offboard.service'" "$tmp/control/postinst"
check "postrm purge removes the state (/var/lib/private/offboard)" \
        grep -q "rm -rf /var/lib/private/offboard" "$tmp/control/postrm"
check "postrm purge forgets the timer's enablement" \
        grep -q "deb-systemd-helper purge 'offboard-reconcile.timer'" "$tmp/control/postrm"

# 6. The binary and installability, without changing this machine.
say "the binary"
bin_version=$("$root/usr/bin/offboard" --version 2>&1 || true)
check "offboard --version says $version ($bin_version)" contains "$bin_version" "$version"
check "the binary looks for mappings in /usr/share/offboard/mappings" \
        grep -aqF /usr/share/offboard/mappings "$root/usr/bin/offboard"
say "dpkg --dry-run -i and apt-get --simulate install (neither changes the system)"
dry_run() { dpkg --dry-run -i "$deb" >"$tmp/dryrun.log" 2>&1; }
check "dpkg --dry-run -i" dry_run
if command -v apt-get >/dev/null 2>&1; then
        if timeout -k 10 "$(left)" apt-get -q -s -o Debug::NoLocking=1 install "$deb" >"$tmp/simulate.log" 2>&1; then
                ok "apt-get --simulate install: $(grep -c '^Inst ' "$tmp/simulate.log") package(s) would be installed"
        else
                sed 's/^/deb-check:   apt: /' "$tmp/simulate.log"
                bad "apt-get --simulate install"
        fi
fi

# 7. A fresh Debian 12 chroot.
chroot_check() {
        local mirror c=$chroot_dir
        mirror=${OFFBOARD_DEB_MIRROR:-http://deb.debian.org/debian}
        say "debootstrap --variant=minbase bookworm from $mirror, at most $(left)s"
        if ! timeout -k 10 "$(left)" debootstrap --variant=minbase bookworm "$c" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
                tail -n 20 "$tmp/debootstrap.log"
                bad "debootstrap"
                return
        fi
        # Nothing may start in the chroot.
        printf '#!/bin/sh\nexit 101\n' >"$c/usr/sbin/policy-rc.d"
        chmod 755 "$c/usr/sbin/policy-rc.d"
        in_c() { timeout -k 10 "$(left)" chroot "$c" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
        # What an install and a purge may leave changed: apt's and dpkg's records, logs, caches.
        c_files() {
                (cd "$c" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
                        -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \) -prune \
                        -o -print | sort)
        }
        cp "$deb" "$c/tmp/"
        # First systemd (systemctl enable works offline) and the package's
        # dependencies and recommendations: install it with apt, then purge it
        # alone. What the chroot holds then is the baseline a purge returns to.
        # /var/lib/private is systemd's, shared by every DynamicUser= unit.
        if ! in_c apt-get -q update >"$tmp/chroot-apt.log" 2>&1 ||
                ! in_c apt-get -q -y install systemd "/tmp/${deb##*/}" >>"$tmp/chroot-apt.log" 2>&1 ||
                ! in_c dpkg --purge offboard >>"$tmp/chroot-apt.log" 2>&1; then
                tail -n 30 "$tmp/chroot-apt.log"
                bad "chroot: apt-get install systemd ./${deb##*/} (for its dependencies), dpkg --purge offboard"
                return
        fi
        install -d -m 0700 "$c/var/lib/private"
        c_files >"$tmp/chroot.before"
        if ! in_c dpkg -i "/tmp/${deb##*/}" >"$tmp/chroot-dpkg.log" 2>&1; then
                tail -n 30 "$tmp/chroot-dpkg.log"
                bad "chroot: dpkg -i ${deb##*/}"
                return
        fi
        ok "chroot: dpkg -i ${deb##*/} (its dependencies installed)"
        check "chroot: the install created no user or group" \
                none grep -q offboard "$c/etc/passwd" "$c/etc/group"
        check "chroot: the install created no state (/var/lib/offboard, /var/lib/private/offboard)" \
                absent "$c/var/lib/offboard" "$c/var/lib/private/offboard"
        check "chroot: the timer is not enabled" \
                absent "$c/etc/systemd/system/timers.target.wants/offboard-reconcile.timer"
        check "chroot: offboard --version" in_c sh -c "/usr/bin/offboard --version >/dev/null"
        # The example validates once its credentials exist: the mapping it names
        # comes from the binary's compiled-in /usr/share/offboard/mappings.
        mkdir -p "$c/run/credentials/offboard.service"
        for s in ldap-password apps-token apps-key; do
                install -m 0600 /dev/null "$c/run/credentials/offboard.service/$s"
                echo secret >"$c/run/credentials/offboard.service/$s"
        done
        if in_c /usr/bin/offboard validate --config /usr/share/doc/offboard/examples/offboard.yaml \
                >"$tmp/chroot-validate.log" 2>&1; then
                ok "chroot: offboard validate the example (mapping 'openldap' from /usr/share/offboard/mappings)"
        else
                sed 's/^/deb-check:   validate: /' "$tmp/chroot-validate.log"
                bad "chroot: offboard validate the example"
        fi
        rm -rf "$c/run/credentials"
        # An administrator's life with it: the timer enabled, a configuration,
        # state as StateDirectory= and DynamicUser= leave it.
        in_c systemctl enable offboard-reconcile.timer >"$tmp/chroot-enable.log" 2>&1 || cat "$tmp/chroot-enable.log"
        check "chroot: the administrator enabled the timer (systemctl enable)" \
                test -L "$c/etc/systemd/system/timers.target.wants/offboard-reconcile.timer"
        mkdir -p "$c/etc/offboard/credentials" "$c/var/lib/private/offboard"
        cp "$c/usr/share/doc/offboard/examples/offboard.yaml" "$c/etc/offboard/offboard.yaml"
        echo pass >"$c/etc/offboard/credentials/ldap-password"
        echo state >"$c/var/lib/private/offboard/state.db"
        echo '{}' >"$c/var/lib/private/offboard/journal.jsonl"
        ln -s private/offboard "$c/var/lib/offboard"
        if ! in_c apt-get -q -y purge offboard >"$tmp/chroot-purge.log" 2>&1; then
                tail -n 30 "$tmp/chroot-purge.log"
                bad "chroot: apt-get purge offboard"
                return
        fi
        ok "chroot: apt-get purge offboard"
        check "chroot: purge removed the state" \
                absent "$c/var/lib/offboard" "$c/var/lib/private/offboard"
        check "chroot: purge removed the timer's enablement" \
                absent "$c/etc/systemd/system/timers.target.wants/offboard-reconcile.timer"
        check "chroot: purge kept the administrator's configuration and credentials" \
                test -f "$c/etc/offboard/offboard.yaml" -a -f "$c/etc/offboard/credentials/ldap-password"
        rm -rf "$c/etc/offboard"
        c_files >"$tmp/chroot.after"
        diff "$tmp/chroot.before" "$tmp/chroot.after" >"$tmp/chroot.diff" || true
        if [ -s "$tmp/chroot.diff" ]; then
                grep '^[<>]' "$tmp/chroot.diff" | sed 's/^</deb-check:   gone after purge: /; s/^>/deb-check:   left after purge: /'
                bad "chroot: after the purge the chroot holds the same files as before the install"
        else
                ok "chroot: after the purge the chroot holds the same files as before the install"
        fi
}
if [ "$chroot_wanted" = 1 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                bad "OFFBOARD_DEB_CHROOT=1 needs root"
        elif ! command -v debootstrap >/dev/null 2>&1; then
                bad "OFFBOARD_DEB_CHROOT=1 needs debootstrap"
        else
                chroot_check
        fi
else
        say "no chroot install (OFFBOARD_DEB_CHROOT=1 runs one: root, debootstrap and a Debian mirror, a few minutes)"
fi

if [ "$failures" -gt 0 ]; then
        say "$failures check(s) failed"
        exit 1
fi
say "all checks passed in ${SECONDS}s"
