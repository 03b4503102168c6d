#!/usr/bin/env bash
# slapd.sh: a private OpenLDAP server for tests, demos and benchmarks.
#
#   slapd.sh passwords DIR           create DIR/{admin,offboard,limited}.pw if missing
#   slapd.sh fixture DIR N [SEED]    passwords, then gen_fixture.py: DIR/fixture.ldif, DIR/manifest.json
#   slapd.sh start DIR [LDIF ...]    build (or reuse) DIR/slapd.d, load the LDIFs, start, wait
#   slapd.sh stop DIR                SIGTERM, up to 5 s, then SIGKILL
#
# start writes DIR/env, a file of KEY=value lines a shell can source:
#   OB_LDAP_URI OB_LDAPS_URI OB_LDAPI_URI OB_LDAP_PORT OB_LDAPS_PORT OB_CA_FILE
#   OB_BASE OB_BIND_DN OB_BIND_PW_FILE OB_LIMITED_DN OB_LIMITED_PW_FILE
#   OB_ADMIN_DN OB_ADMIN_PW_FILE OB_SLAPD_PID OB_SLAPD_DIR
#
# The server: cn=config (root over ldapi with SASL EXTERNAL manages it), back_mdb
# for dc=example,dc=org, schemas core/cosine/nis/inetorgperson plus offboard's
# (schemas/offboard.ldif) and a test-only objectGUID (class offboardTestADObject,
# so AD-style ids can be tested), syncprov, ppolicy, TLS from tls.sh, and two service
# accounts: cn=offboard,ou=services (reads everything; under ou=people it may
# add objectClass offboardAccount and write the offboard* attributes) and cn=limited,ou=services (reads
# everything, size limit 5, to provoke sizeLimitExceeded). Passwords are random,
# one line without a newline, in DIR/*.pw (mode 600); the LDIFs must give the
# service entries those passwords (gen_fixture.py --service-password-file ...).
#
# The usual sequence (what tests/support/slapd.c does):
#   slapd.sh fixture DIR 1000 && slapd.sh start DIR DIR/fixture.ldif && . DIR/env
#   ...
#   slapd.sh stop DIR
# A second start on the same DIR reuses its database, passwords and ports.
# If OB_SLAPD_WATCH_PID is set, slapd is also stopped when that process ends
# (tests pass their own pid, so a crashed test leaves no server behind).
# DIR must not contain spaces.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
SUFFIX=dc=example,dc=org
ADMIN_DN=cn=admin,$SUFFIX
BIND_DN=cn=offboard,ou=services,$SUFFIX
LIMITED_DN=cn=limited,ou=services,$SUFFIX
PEERCRED_ROOT=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth
SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
SLAPPASSWD=${SLAPPASSWD:-/usr/sbin/slappasswd}
MODULE_DIR=${OB_SLAPD_MODULE_DIR:-/usr/lib/ldap}
SCHEMA_DIR=${OB_SLAPD_SCHEMA_DIR:-/etc/ldap/schema}
# The system interpreter starts in milliseconds; a version manager's shim in
# PATH can take a second or more. Only the standard library is used.
# shellcheck source=tests/harness/common.sh
. "$here/common.sh"

usage() {
        echo "usage: slapd.sh passwords DIR | fixture DIR N [SEED] | start DIR [LDIF ...] | stop DIR" >&2
        exit 2
}

absdir() {
        mkdir -p "$1"
        (cd "$1" && pwd)
}

make_password() {
        local f=$1
        [ -s "$f" ] && return 0
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_' > "$f")
        chmod 600 "$f"
}

cmd_passwords() {
        local dir
        dir=$(absdir "$1")
        make_password "$dir/admin.pw"
        make_password "$dir/offboard.pw"
        make_password "$dir/limited.pw"
}

cmd_fixture() {
        local dir=$1 n=$2 seed=${3:-1}
        cmd_passwords "$dir"
        dir=$(absdir "$dir")
        "$PYTHON" "$here/gen_fixture.py" --users "$n" --seed "$seed" --manifest "$dir/manifest.json" \
                --service-password-file "$dir/offboard.pw" --limited-password-file "$dir/limited.pw" \
                > "$dir/fixture.ldif.tmp"
        mv "$dir/fixture.ldif.tmp" "$dir/fixture.ldif"
}

# {SSHA} of the contents of a password file (as slapd compares it).
ssha() {
        "$SLAPPASSWD" -n -h '{SSHA}' -T "$1"
}

urlencode() {
        local LC_ALL=C s=$1 out='' c i
        for ((i = 0; i < ${#s}; i++)); do
                c=${s:i:1}
                case $c in
                [A-Za-z0-9._~-]) out+=$c ;;
                *) out+=$(printf '%%%02X' "'$c") ;;
                esac
        done
        echo "$out"
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

write_config() {
        local dir=$1 rootpw
        rootpw=$(ssha "$dir/admin.pw")
        cat > "$dir/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcArgsFile: $dir/slapd.args
olcTLSCACertificateFile: $dir/tls/ca.pem
olcTLSCertificateFile: $dir/tls/server.pem
olcTLSCertificateKeyFile: $dir/tls/server.key
olcLogLevel: none

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODULE_DIR
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}syncprov
olcModuleLoad: {2}ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMA_DIR/core.ldif

include: file://$SCHEMA_DIR/cosine.ldif

include: file://$SCHEMA_DIR/nis.ldif

include: file://$SCHEMA_DIR/inetorgperson.ldif

include: file://$root/schemas/offboard.ldif

# Test only: AD's objectGUID (its real OID, 16 binary bytes), so tests can run
# the objectGUID code paths against slapd. Never part of schemas/.
dn: cn=offboard-test,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: offboard-test
olcAttributeTypes: {0}( 1.2.840.113556.1.4.2 NAME 'objectGUID'
  DESC 'test only: Active Directory object GUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcObjectClasses: {0}( 2.25.164740859301629766612515487383781397944.9.1
  NAME 'offboardTestADObject' DESC 'test only: carries objectGUID'
  SUP top AUXILIARY MAY objectGUID )

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to dn.base="" by * read
olcAccess: {1}to dn.base="cn=Subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact="$PEERCRED_ROOT" manage by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $dir/data
olcSuffix: $SUFFIX
olcRootDN: $ADMIN_DN
olcRootPW: $rootpw
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcDbIndex: owner eq
olcDbIndex: manager eq
olcDbIndex: employeeType eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcDbIndex: mail eq
olcSizeLimit: 500
olcLimits: {0}dn.exact="$ADMIN_DN" size=unlimited time=unlimited
olcLimits: {1}dn.exact="$PEERCRED_ROOT" size=unlimited time=unlimited
olcLimits: {2}dn.exact="$BIND_DN" size=unlimited time=unlimited
olcLimits: {3}dn.exact="$LIMITED_DN" size.soft=5 size.hard=5 size.pr=5 size.prtotal=5
olcAccess: {0}to * by dn.exact="$PEERCRED_ROOT" manage by * break
olcAccess: {1}to attrs=userPassword by * auth
olcAccess: {2}to dn.subtree="ou=people,$SUFFIX" attrs=objectClass val=offboardAccount by dn.exact="$BIND_DN" write by users read
olcAccess: {3}to dn.subtree="ou=people,$SUFFIX" attrs=offboardStatus,offboardStatusTime,offboardReason,offboardAction by dn.exact="$BIND_DN" write by users read
olcAccess: {4}to * by users read by * none

dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 10000

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,$SUFFIX
olcPPolicyUseLockout: TRUE
EOF
}

# Sets P1 and P2 from an existing DIR/env, or picks two free ports.
pick_ports() {
        local dir=$1
        P1='' P2=''
        if [ -f "$dir/env" ]; then
                P1=$(sed -n 's/^OB_LDAP_PORT=//p' "$dir/env")
                P2=$(sed -n 's/^OB_LDAPS_PORT=//p' "$dir/env")
        fi
        if [ -z "$P1" ] || [ -z "$P2" ]; then
                read -r P1 P2 < <(free_ports)
        fi
}

cmd_start() {
        local dir=$1
        shift
        case $dir in *[[:space:]]*) die "DIR must not contain white space: '$dir'" ;; esac
        dir=$(absdir "$dir")
        if [ -f "$dir/slapd.pid" ] && alive "$(cat "$dir/slapd.pid")"; then
                die "a slapd already runs for $dir (pid $(cat "$dir/slapd.pid"))"
        fi
        cmd_passwords "$dir"
        "$here/tls.sh" "$dir/tls"
        if [ ! -f "$dir/slapd.d/cn=config.ldif" ]; then
                rm -rf "$dir/slapd.d" "$dir/data"
                mkdir -p "$dir/slapd.d" "$dir/data"
                write_config "$dir"
                "$SLAPADD" -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" > "$dir/slapadd.out" 2>&1 ||
                        { cat "$dir/slapadd.out" >&2; die "slapadd -n0 failed"; }
        fi
        local ldif
        for ldif in "$@"; do
                "$SLAPADD" -q -F "$dir/slapd.d" -b "$SUFFIX" -l "$ldif" > "$dir/slapadd.out" 2>&1 ||
                        { cat "$dir/slapadd.out" >&2; die "slapadd of $ldif failed"; }
        done

        pick_ports "$dir"
        local ldapi_path=$dir/ldapi ldapi_uri
        ldapi_uri=ldapi://$(urlencode "$ldapi_path")
        rm -f "$ldapi_path"
        local urls="ldap://127.0.0.1:$P1/ ldaps://127.0.0.1:$P2/ $ldapi_uri"
        # A session of its own: no terminal signal reaches it, and a test that
        # SIGSTOPs it is not undone by the kernel's SIGCONT to an orphaned
        # process group when some other process of the caller's group exits.
        setsid "$SLAPD" -F "$dir/slapd.d" -h "$urls" -d 0 < /dev/null > "$dir/slapd.out" 2>&1 &
        local pid=$!
        echo "$pid" > "$dir/slapd.pid"

        # Ready when an anonymous rootDSE read over ldapi answers: every 20 ms, 15 s at most.
        local i
        for ((i = 0; i < 750; i++)); do
                if ! alive "$pid"; then
                        cat "$dir/slapd.out" >&2
                        die "slapd exited during start-up (see $dir/slapd.out)"
                fi
                if ldapsearch -x -H "$ldapi_uri" -s base -b "" -LLL -o nettimeout=2 -l 2 \
                        namingContexts > /dev/null 2>&1; then
                        break
                fi
                sleep 0.02
        done
        if ((i == 750)); then
                cat "$dir/slapd.out" >&2
                kill -KILL "$pid" 2> /dev/null || true
                die "slapd did not answer within 15 s"
        fi

        cat > "$dir/env.tmp" <<EOF
OB_SLAPD_DIR=$dir
OB_LDAP_URI=ldap://127.0.0.1:$P1
OB_LDAPS_URI=ldaps://127.0.0.1:$P2
OB_LDAPI_URI=$ldapi_uri
OB_LDAP_PORT=$P1
OB_LDAPS_PORT=$P2
OB_CA_FILE=$dir/tls/ca.pem
OB_BASE=ou=people,$SUFFIX
OB_BIND_DN=$BIND_DN
OB_BIND_PW_FILE=$dir/offboard.pw
OB_LIMITED_DN=$LIMITED_DN
OB_LIMITED_PW_FILE=$dir/limited.pw
OB_ADMIN_DN=$ADMIN_DN
OB_ADMIN_PW_FILE=$dir/admin.pw
OB_SLAPD_PID=$pid
EOF
        mv "$dir/env.tmp" "$dir/env"

        watch_runner "$pid" "$dir"
}

cmd_stop() {
        local dir=$1 pid i
        [ -f "$dir/slapd.pid" ] || return 0
        pid=$(cat "$dir/slapd.pid")
        if [ -f "$dir/watch.pid" ]; then
                kill -TERM "$(cat "$dir/watch.pid")" 2> /dev/null || true
                rm -f "$dir/watch.pid"
        fi
        if alive "$pid"; then
                kill -TERM "$pid" 2> /dev/null || true
                for ((i = 0; i < 250; i++)); do
                        alive "$pid" || break
                        sleep 0.02
                done
                if alive "$pid"; then
                        echo "slapd.sh: slapd $pid ignored SIGTERM for 5 s, killing it" >&2
                        kill -KILL "$pid" 2> /dev/null || true
                        for ((i = 0; i < 50; i++)); do
                                alive "$pid" || break
                                sleep 0.02
                        done
                fi
        fi
        rm -f "$dir/slapd.pid"
}

[ $# -ge 2 ] || usage
case $1 in
passwords) cmd_passwords "$2" ;;
fixture)
        [ $# -ge 3 ] || usage
        shift
        cmd_fixture "$@"
        ;;
start)
        shift
        cmd_start "$@"
        ;;
stop) cmd_stop "$2" ;;
*) usage ;;
esac
