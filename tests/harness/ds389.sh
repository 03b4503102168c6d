#!/usr/bin/env bash
# ds389.sh: a private 389 Directory Server (2.3.1) for tests, on 127.0.0.1.
#
#   ds389.sh start DIR     dscreate an instance under DIR, add offboard's schema,
#                          a password policy and the fixture
#                          (gen_dirsrv_fixture.py 389), start, wait
#   ds389.sh stop DIR      SIGTERM, up to 10 s, then SIGKILL
#
# dscreate wants systemd (defaults.inf: with_systemd = 1); lib389 reads its
# defaults from $PREFIX/share/dirsrv/inf/defaults.inf when PREFIX is set, so
# DIR/prefix gets a copy with with_systemd = 0 and every writable path moved
# under DIR/prefix (../../shared/notes/test-servers.md, section 4). ns-slapd
# runs as dirsrv: the directories on the way are 755, the instance's own are
# dirsrv's.
#
# start writes DIR/env (KEY=value lines):
#   OB_LDAP_URI (ldap://127.0.0.1:PORT, StartTLS) OB_LDAPS_URI OB_LDAP_PORT
#   OB_CA_FILE OB_OTHER_CA_FILE OB_BASE OB_IPA_BASE OB_SUFFIX
#   OB_BIND_DN OB_BIND_PW_FILE OB_ADMIN_DN OB_ADMIN_PW_FILE OB_DS389_PID
# and DIR/manifest.json, DIR/ipa-manifest.json (what 389ds.yaml and
# freeipa.yaml must conclude of each person).
# If OB_SLAPD_WATCH_PID is set, the server is stopped when that process ends.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
SUFFIX=dc=example,dc=org
INST=ob
LOCKOUT_DAYS=10 # gen_dirsrv_fixture.py's
# shellcheck source=tests/harness/common.sh
. "$here/common.sh"

make_password() {
        local f=$1
        [ -s "$f" ] && return 0
        (umask 077 && printf 'Ob1%s' "$(head -c 18 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_')" > "$f")
}

free_ports() {
        "$PYTHON" - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# offboard.ldif's definitions in 389's cn=schema form (schemas/README.md).
schema_389() {
        echo "dn: cn=schema"
        "$PYTHON" -c '
import re, sys
text = re.sub(r"\n ", "", sys.stdin.read())  # unfold
for line in text.splitlines():
    m = re.match(r"olc(AttributeTypes|ObjectClasses): \{\d+\}(.*)", line)
    if m:
        print(("attributeTypes: " if m.group(1) == "AttributeTypes" else "objectClasses: ") + m.group(2))
' < "$root/schemas/offboard.ldif"
}

cmd_start() {
        local dir=$1
        case $dir in *[[:space:]]*) die "DIR must not contain white space: '$dir'" ;; esac
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        local P=$dir/prefix pidf
        pidf=$P/run/dirsrv/slapd-$INST.pid
        if [ -f "$pidf" ] && alive "$(cat "$pidf")"; then
                die "a 389-DS already runs for $dir (pid $(cat "$pidf"))"
        fi
        local t0=$SECONDS
        make_password "$dir/dm.pw"
        make_password "$dir/svc.pw"
        chmod 755 "$dir"
        mkdir -p "$P/share/dirsrv/inf" "$P/etc/dirsrv" "$P/etc/default" "$P/run/dirsrv" "$P/lock" "$P/log" \
                "$P/db" "$P/var" "$P/tmpfiles.d"
        cp -r /etc/dirsrv/schema /etc/dirsrv/config "$P/etc/dirsrv/"
        sed -e 's/^with_systemd = 1/with_systemd = 0/' \
                -e "s#^sysconf_dir = .*#sysconf_dir = $P/etc#" \
                -e "s#^initconfig_dir = .*#initconfig_dir = $P/etc/default#" \
                -e "s#^config_dir = .*#config_dir = $P/etc/dirsrv/slapd-{instance_name}#" \
                -e "s#^local_state_dir = .*#local_state_dir = $P/var#" \
                -e "s#^run_dir = .*#run_dir = $P/run/dirsrv#" \
                -e "s#^ldapi = .*#ldapi = $P/run/slapd-{instance_name}.socket#" \
                -e "s#^pid_file = .*#pid_file = $P/run/dirsrv/slapd-{instance_name}.pid#" \
                -e "s#^tmpfiles_d = .*#tmpfiles_d = $P/tmpfiles.d#" \
                -e "s#^schema_dir = .*#schema_dir = $P/etc/dirsrv/slapd-{instance_name}/schema#" \
                -e "s#^cert_dir = .*#cert_dir = $P/etc/dirsrv/slapd-{instance_name}#" \
                -e "s#^lock_dir = .*#lock_dir = $P/lock/slapd-{instance_name}#" \
                -e "s#^log_dir = .*#log_dir = $P/log/slapd-{instance_name}#" \
                -e "s#^\(access\|audit\|error\|security\)_log = .*/\([a-z]*\)\$#\1_log = $P/log/slapd-{instance_name}/\2#" \
                -e "s#^db_dir = .*#db_dir = $P/db/slapd-{instance_name}/db#" \
                -e "s#^db_home_dir = .*#db_home_dir = $P/db/slapd-{instance_name}/dbhome#" \
                -e "s#^backup_dir = .*#backup_dir = $P/db/slapd-{instance_name}/bak#" \
                -e "s#^ldif_dir = .*#ldif_dir = $P/db/slapd-{instance_name}/ldif#" \
                /usr/share/dirsrv/inf/defaults.inf > "$P/share/dirsrv/inf/defaults.inf"
        chmod -R u+rwX,go+rX "$P"
        chown dirsrv:dirsrv "$P/run/dirsrv" "$P/lock" "$P/log" "$P/db"

        local P1 P2
        read -r P1 P2 < <(free_ports)
        cat > "$dir/instance.inf" <<EOF
[general]
full_machine_name = localhost
strict_host_checking = False
start = False
[slapd]
instance_name = $INST
port = $P1
secure_port = $P2
self_sign_cert = True
root_password = $(cat "$dir/dm.pw")
user = dirsrv
group = dirsrv
[backend-userroot]
suffix = $SUFFIX
create_suffix_entry = True
sample_entries = no
EOF
        chmod 600 "$dir/instance.inf"
        PREFIX=$P dscreate from-file "$dir/instance.inf" > "$dir/dscreate.out" 2>&1 ||
                { tail -20 "$dir/dscreate.out" >&2; die "dscreate failed"; }
        rm -f "$dir/instance.inf"
        local conf=$P/etc/dirsrv/slapd-$INST
        # Loopback only; the global password policy: 3 failures lock for
        # LOCKOUT_DAYS days.
        "$PYTHON" - "$conf/dse.ldif" "$((LOCKOUT_DAYS * 86400))" <<'EOF'
import sys
path, duration = sys.argv[1], sys.argv[2]
text = open(path).read()
head, sep, rest = text.partition("dn: cn=config\n")
block, sep2, tail = rest.partition("\n\n")
drop = ("nsslapd-listenhost:", "nsslapd-securelistenhost:", "passwordLockout:", "passwordMaxFailure:",
        "passwordLockoutDuration:", "passwordUnlock:")
lines = [l for l in block.split("\n") if not l.startswith(drop)]
lines += ["nsslapd-listenhost: 127.0.0.1", "nsslapd-securelistenhost: 127.0.0.1", "passwordLockout: on",
          "passwordMaxFailure: 3", f"passwordLockoutDuration: {duration}", "passwordUnlock: on"]
open(path, "w").write(head + sep + "\n".join(lines) + sep2 + tail)
EOF
        # The Retro Changelog (cn=changelog), where deletions are seen: each
        # record carries the deleted entry's nsUniqueId as targetUniqueId;
        # only the accounts' subtrees are logged, a week at most. Enabled
        # before the first start: no restart.
        "$PYTHON" - "$conf/dse.ldif" "ou=people,$SUFFIX" "ou=ipa,$SUFFIX" <<'EOF'
import sys
path, includes = sys.argv[1], sys.argv[2:]
text = open(path).read()
head, sep, rest = text.partition("dn: cn=Retro Changelog Plugin,cn=plugins,cn=config\n")
if not sep:
    sys.exit("ds389.sh: no Retro Changelog Plugin entry in dse.ldif")
block, sep2, tail = rest.partition("\n\n")
drop = ("nsslapd-pluginenabled:", "nsslapd-pluginEnabled:", "nsslapd-attribute:", "nsslapd-include-suffix:",
        "nsslapd-changelogmaxage:")
lines = [l for l in block.split("\n") if not l.startswith(drop)]
lines += ["nsslapd-pluginEnabled: on", "nsslapd-attribute: nsuniqueid:targetUniqueId",
          "nsslapd-changelogmaxage: 7d"] + [f"nsslapd-include-suffix: {s}" for s in includes]
open(path, "w").write(head + sep + "\n".join(lines) + sep2 + tail)
EOF
        # The Content Synchronization plugin (RFC 4533, on the Retro
        # Changelog), the feed service.feed: auto picks here. Enabled before
        # the first start too.
        "$PYTHON" - "$conf/dse.ldif" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
head, sep, rest = text.partition("dn: cn=Content Synchronization,cn=plugins,cn=config\n")
if not sep:
    sys.exit("ds389.sh: no Content Synchronization entry in dse.ldif")
block, sep2, tail = rest.partition("\n\n")
lines = [l for l in block.split("\n") if not l.lower().startswith("nsslapd-pluginenabled:")]
lines += ["nsslapd-pluginEnabled: on"]
open(path, "w").write(head + sep + "\n".join(lines) + sep2 + tail)
EOF
        # Our own CA and a certificate for 127.0.0.1 (tls.sh) in place of the
        # self-signed one dscreate made for "localhost", which libldap never
        # matches (it checks a localhost URI against the machine's name).
        "$here/tls.sh" "$dir/tls"
        openssl pkcs12 -export -in "$dir/tls/server.pem" -inkey "$dir/tls/server.key" -name Server-Cert \
                -out "$dir/tls/server.p12" -passout pass: 2> /dev/null
        certutil -D -d "sql:$conf" -f "$conf/pwdfile.txt" -n Server-Cert
        pk12util -i "$dir/tls/server.p12" -d "sql:$conf" -W '' -k "$conf/pwdfile.txt" > /dev/null
        certutil -A -d "sql:$conf" -f "$conf/pwdfile.txt" -n "offboard test CA" -t CT,, -a -i "$dir/tls/ca.pem"
        chown dirsrv "$conf"/*.db

        # offboard's schema, and FreeIPA's Kerberos attributes (test only:
        # the definitions FreeIPA's schema gives them).
        schema_389 > "$conf/schema/99offboard.ldif"
        cat > "$conf/schema/98ipa-test.ldif" <<'EOF'
dn: cn=schema
attributeTypes: ( 2.16.840.1.113719.1.301.4.1.1 NAME 'krbPrincipalName' EQUALITY caseExactIA5Match SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 2.16.840.1.113719.1.301.4.37.1 NAME 'krbPrincipalExpiration' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 2.16.840.1.113719.1.301.4.50.1 NAME 'krbLoginFailedCount' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 2.16.840.1.113719.1.301.4.49.1 NAME 'krbLastFailedAuth' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 1.3.6.1.4.1.5322.21.2.5 NAME 'krbLastAdminUnlock' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 1.3.6.1.4.1.5322.21.2.1 NAME 'krbPwdMaxFailure' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 1.3.6.1.4.1.5322.21.2.2 NAME 'krbPwdFailureCountInterval' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
attributeTypes: ( 1.3.6.1.4.1.5322.21.2.3 NAME 'krbPwdLockoutDuration' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE X-ORIGIN 'offboard tests: FreeIPA' )
objectClasses: ( 2.16.840.1.113719.1.301.6.8.1 NAME 'krbPrincipalAux' SUP top AUXILIARY MAY ( krbPrincipalName $ krbPrincipalExpiration $ krbLoginFailedCount $ krbLastFailedAuth $ krbLastAdminUnlock ) X-ORIGIN 'offboard tests: FreeIPA' )
objectClasses: ( 2.16.840.1.113719.1.301.6.14.1 NAME 'krbPwdPolicy' SUP top AUXILIARY MAY ( cn $ krbPwdMaxFailure $ krbPwdFailureCountInterval $ krbPwdLockoutDuration ) X-ORIGIN 'offboard tests: FreeIPA (structural there)' )
EOF
        chown dirsrv:dirsrv "$conf/schema/99offboard.ldif" "$conf/schema/98ipa-test.ldif"

        "$PYTHON" "$here/gen_dirsrv_fixture.py" 389 --now "$(date +%s)" --manifest "$dir/manifest.json" \
                --ipa-manifest "$dir/ipa-manifest.json" --service-password-file "$dir/svc.pw" > "$dir/fixture.ldif"

        rm -f "$pidf" # dscreate's run leaves its own
        /usr/sbin/ns-slapd -D "$conf" -i "$pidf" > "$dir/ns-slapd.out" 2>&1 ||
                { tail -20 "$dir/ns-slapd.out" >&2; die "ns-slapd did not start"; }
        local pid i
        for ((i = 0; i < 100; i++)); do
                [ -s "$pidf" ] && alive "$(cat "$pidf")" && break
                sleep 0.05
        done
        pid=$(cat "$pidf" 2> /dev/null) || die "ns-slapd wrote no pid file"
        # Ready when the rootDSE answers: every 50 ms, 30 s at most.
        for ((i = 0; i < 600; i++)); do
                alive "$pid" || { tail -20 "$P/log/slapd-$INST/errors" >&2; die "ns-slapd exited during start-up"; }
                if ldapsearch -x -H "ldap://127.0.0.1:$P1" -s base -b "" -LLL -o nettimeout=2 -l 2 \
                        namingContexts > /dev/null 2>&1; then
                        break
                fi
                sleep 0.05
        done
        ((i < 600)) || { kill -KILL "$pid" 2> /dev/null || true; die "ns-slapd did not answer within 30 s"; }

        # The fixture over LDAP as Directory Manager (the server writes the
        # password-policy attributes it would have set after failed binds),
        # and what the service account may do: read the accounts, and write
        # offboard's class and attributes under ou=people.
        ldapmodify -a -x -H "ldap://127.0.0.1:$P1" -D "cn=Directory Manager" -y "$dir/dm.pw" -c \
                -f "$dir/fixture.ldif" > "$dir/fixture.out" 2>&1 ||
                { tail -20 "$dir/fixture.out" >&2; kill -TERM "$pid"; die "loading the fixture failed"; }
        ldapmodify -x -H "ldap://127.0.0.1:$P1" -D "cn=Directory Manager" -y "$dir/dm.pw" > "$dir/aci.out" 2>&1 <<EOF || { cat "$dir/aci.out" >&2; kill -TERM "$pid"; die "ACIs failed"; }
dn: $SUFFIX
changetype: modify
add: aci
aci: (targetattr="* || nsAccountLock || nsUniqueId || nsRole || nsRoleDN || accountUnlockTime || passwordRetryCount || retryCountResetTime || modifyTimestamp || entryUUID")(version 3.0; acl "offboard reads"; allow (read, search, compare) userdn="ldap:///cn=offboard,ou=services,$SUFFIX";)
aci: (targetattr="objectClass || offboardStatus || offboardStatusTime || offboardReason || offboardAction")(version 3.0; acl "offboard writes back"; allow (write) userdn="ldap:///cn=offboard,ou=services,$SUFFIX";)
-

dn: cn=changelog
changetype: modify
add: aci
aci: (targetattr != "changes || aci")(version 3.0; acl "offboard reads deletions"; allow (read, search, compare) userdn="ldap:///cn=offboard,ou=services,$SUFFIX";)
-
EOF
        # Per-user password policies, the way an administrator sets them
        # (dsconf also turns nsslapd-pwpolicy-local on): lpat locks after 2
        # failures for a day, lpeg after 2 for 2 seconds (the global policy
        # needs 3). Each dsconf is a Python start-up, about a second.
        local u dur
        for u in lpat:86400 lpeg:2; do
                dur=${u#*:}
                u=${u%%:*}
                timeout 60 dsconf -D "cn=Directory Manager" -y "$dir/dm.pw" "ldap://127.0.0.1:$P1" localpwp adduser \
                        "uid=$u,ou=pwp,$SUFFIX" --pwdlockout on --pwdmaxfailures 2 --pwdlockoutduration "$dur" \
                        --pwdunlock on >> "$dir/localpwp.out" 2>&1 ||
                        { cat "$dir/localpwp.out" >&2; kill -TERM "$pid"; die "dsconf localpwp adduser $u failed"; }
        done
        cat > "$dir/env.tmp" <<EOF
OB_LDAP_URI=ldap://127.0.0.1:$P1
OB_LDAPS_URI=ldaps://127.0.0.1:$P2
OB_LDAP_PORT=$P1
OB_CA_FILE=$dir/tls/ca.pem
OB_OTHER_CA_FILE=$dir/tls/other-ca.pem
OB_SUFFIX=$SUFFIX
OB_BASE=ou=people,$SUFFIX
OB_IPA_BASE=ou=ipa,$SUFFIX
OB_BIND_DN=cn=offboard,ou=services,$SUFFIX
OB_BIND_PW_FILE=$dir/svc.pw
OB_ADMIN_DN=cn=Directory Manager
OB_ADMIN_PW_FILE=$dir/dm.pw
OB_DS389_PID=$pid
EOF
        mv "$dir/env.tmp" "$dir/env"
        echo "ds389.sh: ready on 127.0.0.1:$P1 in $((SECONDS - t0)) s" >&2

        watch_runner "$pid" "$dir"
}

cmd_stop() {
        local dir=$1 pid i pidf
        pidf=$dir/prefix/run/dirsrv/slapd-$INST.pid
        [ -f "$pidf" ] || return 0
        pid=$(cat "$pidf")
        if [ -f "$dir/watch.pid" ]; then
                kill -TERM "$(cat "$dir/watch.pid")" 2> /dev/null || true
                rm -f "$dir/watch.pid"
        fi
        if alive "$pid"; then
                kill -TERM "$pid" 2> /dev/null || true
                for ((i = 0; i < 500; i++)); do
                        alive "$pid" || break
                        sleep 0.02
                done
                if alive "$pid"; then
                        echo "ds389.sh: ns-slapd $pid ignored SIGTERM for 10 s, killing it" >&2
                        kill -KILL "$pid" 2> /dev/null || true
                fi
        fi
        rm -f "$pidf"
}

[ $# -eq 2 ] || { echo "usage: ds389.sh start|stop DIR" >&2; exit 2; }
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) echo "usage: ds389.sh start|stop DIR" >&2; exit 2 ;;
esac
