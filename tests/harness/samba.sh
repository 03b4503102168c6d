#!/usr/bin/env bash
# samba.sh: a private Samba AD DC (4.17) for tests, on its own 127.x address.
#
#   samba.sh start DIR     provision into DIR, load offboard's AD schema and the
#                          fixture (gen_dirsrv_fixture.py ad), start, wait
#   samba.sh stop DIR      SIGTERM, up to 10 s, then SIGKILL
#
# Samba's LDAP ports are fixed (389/636), so instances are kept apart by
# address: the first 127.0.0.N (N from 2) on which nothing listens on 389 or
# 636. No alias is needed on lo. Every path Samba writes (pid, sockets, locks,
# state, logs) is under DIR, so nothing of the system is touched.
# Only `server services = ldap` runs: no smbd, winbindd, KDC or DNS.
#
# start writes DIR/env (KEY=value lines):
#   OB_LDAP_URI OB_LDAPS_URI OB_CA_FILE OB_OTHER_CA_FILE OB_BASE OB_SUFFIX
#   OB_BIND_DN OB_BIND_PW_FILE OB_ADMIN_DN OB_ADMIN_PW_FILE OB_SAM_LDB
#   OB_SMB_CONF OB_SAMBA_PID OB_IP
# and DIR/manifest.json (what the AD mapping must conclude of each person).
# With OB_SAMBA_CROWD=N (N >= 1) set, start also adds, offline before the
# server starts, OU=Crowd holding N contacts (crowd-0000...) and the group
# CN=crowd,OU=Crowd listing them all: a group larger than AD hands out at
# once (MaxValRange, 1500). Samba adds ~40 contacts/s even offline, so only
# the tests that need it ask.
# If OB_SLAPD_WATCH_PID is set, Samba is stopped when that process ends.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
REALM=OFFBOARD.TEST
SUFFIX=DC=offboard,DC=test
LOCKOUT_DAYS=10 # gen_dirsrv_fixture.py's
# shellcheck source=tests/harness/common.sh
. "$here/common.sh"

# A password Samba's complexity rules accept: four classes, 28 characters.
make_password() {
        local f=$1
        [ -s "$f" ] && return 0
        (umask 077 && printf 'Ob1!%s' "$(head -c 18 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_')" > "$f")
}

# The first 127.0.0.N (2..254) where 389 and 636 are free.
pick_ip() {
        "$PYTHON" - "$$" <<'EOF'
import socket, sys
start = int(sys.argv[1]) % 200
for k in range(253):
    n = 2 + (start + k) % 253
    ip = f"127.0.0.{n}"
    socks, ok = [], True
    for port in (389, 636):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((ip, port))
            socks.append(s)
        except OSError:
            ok = False
            s.close()
            break
    for s in socks:
        s.close()
    if ok:
        print(ip)
        sys.exit(0)
sys.exit(1)
EOF
}

make_tls() {
        local d=$1 ip=$2
        mkdir -p "$d"
        (
                cd "$d"
                subj() { printf '/O=offboard tests/CN=%s' "$1"; }
                openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.pem -subj "$(subj 'AD test CA')" 2> /dev/null
                openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout other-ca.key -out other-ca.pem -subj "$(subj 'other CA')" 2> /dev/null
                openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "$(subj dc.offboard.test)" 2> /dev/null
                printf 'subjectAltName=IP:%s,DNS:dc.offboard.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$ip" > server.ext
                openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.pem 2> /dev/null
                chmod 600 server.key ca.key other-ca.key
                rm -f server.csr server.ext
        )
}

cmd_start() {
        local dir=$1
        case $dir in *[[:space:]]*) die "DIR must not contain white space: '$dir'" ;; esac
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        if [ -f "$dir/samba.pid" ] && alive "$(cat "$dir/samba.pid")"; then
                die "a samba already runs for $dir (pid $(cat "$dir/samba.pid"))"
        fi
        local ip
        ip=$(pick_ip) || die "no free 127.0.0.N address for LDAP ports 389/636"
        make_password "$dir/admin.pw"
        make_password "$dir/svc.pw"
        make_tls "$dir/tls" "$ip"
        mkdir -p "$dir/run" "$dir/log"
        local t0=$SECONDS
        samba-tool domain provision --targetdir="$dir/dc" --realm=$REALM --domain=OFFBOARD \
                --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$(cat "$dir/admin.pw")" \
                --host-ip="$ip" --option="interfaces = $ip/8" --option="bind interfaces only = yes" \
                --option="pid directory = $dir/run" --option="ncalrpc dir = $dir/run/ncalrpc" \
                --option="winbindd socket directory = $dir/run/winbindd" \
                --option="ntp signd socket directory = $dir/run/ntp" \
                --option="log file = $dir/log/log.%m" > "$dir/provision.out" 2>&1 ||
                { tail -20 "$dir/provision.out" >&2; die "provision failed"; }
        local conf=$dir/dc/etc/smb.conf sam=$dir/dc/private/sam.ldb
        # Options provision does not write: TLS with our CA, LDAP only.
        sed -i -e '/^[[:space:]]*server services = /d' -e "s#^\[global\]#[global]\n\
\ttls enabled = yes\n\ttls keyfile = $dir/tls/server.key\n\ttls certfile = $dir/tls/server.pem\n\
\ttls cafile = $dir/tls/ca.pem\n\tserver services = ldap\n#" "$conf"

        # offboard's schema, as schemas/README.md says: the attributes first
        # (and a schema reload), then the class that names them; in one file
        # ldb rolls everything back, the class being checked before the
        # attributes are known.
        sed -e "s/DC=X/$SUFFIX/g" -e 's/^changetype: ntdsSchemaAdd/changetype: add/' \
                "$root/schemas/offboard-ad.ldf" > "$dir/schema.ldif"
        awk -v a="$dir/schema-attributes.ldif" -v c="$dir/schema-class.ldif" \
                '/^dn: CN=offboard-Account,/ { f = 1 } { print > (f ? c : a) }' "$dir/schema.ldif"
        local f
        for f in schema-attributes schema-class; do
                ldbmodify -H "$sam" --option="dsdb:schema update allowed"=true "$dir/$f.ldif" \
                        > "$dir/$f.out" 2>&1 || { cat "$dir/$f.out" >&2; die "ldbmodify $f.ldif failed"; }
        done

        # The fixture, offline, in one ldbadd (Samba adds ~70 users/s over LDAP).
        "$PYTHON" "$here/gen_dirsrv_fixture.py" ad --now "$(date +%s)" --manifest "$dir/manifest.json" \
                --service-password-file "$dir/svc.pw" > "$dir/fixture.ldif"
        ldbadd -H "$sam" "$dir/fixture.ldif" > "$dir/fixture.out" 2>&1 ||
                { cat "$dir/fixture.out" >&2; die "ldbadd of the fixture failed"; }
        if [ -n "${OB_SAMBA_CROWD:-}" ]; then
                case $OB_SAMBA_CROWD in *[!0-9]* | 0*) die "OB_SAMBA_CROWD must be a count: '$OB_SAMBA_CROWD'" ;; esac
                {
                        printf 'dn: OU=Crowd,%s\nobjectClass: organizationalUnit\n\n' "$SUFFIX"
                        for ((i = 0; i < OB_SAMBA_CROWD; i++)); do
                                printf 'dn: CN=crowd-%04d,OU=Crowd,%s\nobjectClass: contact\n\n' "$i" "$SUFFIX"
                        done
                        printf 'dn: CN=crowd,OU=Crowd,%s\nobjectClass: group\nsAMAccountName: crowd\n' "$SUFFIX"
                        for ((i = 0; i < OB_SAMBA_CROWD; i++)); do
                                printf 'member: CN=crowd-%04d,OU=Crowd,%s\n' "$i" "$SUFFIX"
                        done
                } > "$dir/crowd.ldif"
                ldbadd -H "$sam" "$dir/crowd.ldif" > "$dir/crowd.out" 2>&1 ||
                        { cat "$dir/crowd.out" >&2; die "ldbadd of the crowd failed"; }
        fi
        # The domain's lockout policy as an administrator sets it: 3 bad
        # passwords lock for LOCKOUT_DAYS days (minutes here; lockoutDuration
        # becomes minus that many 100 ns intervals). The service account
        # writes the write-back (Domain Admins: a test shortcut,
        # schemas/README.md shows the narrow grant).
        samba-tool domain passwordsettings set -s "$conf" -H "$sam" --account-lockout-threshold=3 \
                --account-lockout-duration=$((LOCKOUT_DAYS * 1440)) --reset-account-lockout-after=30 \
                > "$dir/passwordsettings.out" 2>&1 ||
                { cat "$dir/passwordsettings.out" >&2; die "samba-tool domain passwordsettings set failed"; }
        ldbmodify -H "$sam" > "$dir/domain.out" 2>&1 <<EOF || { cat "$dir/domain.out" >&2; die "domain settings failed"; }
dn: CN=Domain Admins,CN=Users,$SUFFIX
changetype: modify
add: member
member: CN=svc-offboard,CN=Users,$SUFFIX
-
EOF

        # A session of its own, so no terminal signal reaches it.
        setsid samba -s "$conf" -i -M single -d 1 < /dev/null > "$dir/samba.out" 2>&1 &
        local pid=$!
        echo "$pid" > "$dir/samba.pid"
        # Ready when a StartTLS simple bind as the service account works:
        # every 50 ms, 30 s at most.
        local i
        for ((i = 0; i < 600; i++)); do
                if ! alive "$pid"; then
                        tail -20 "$dir/samba.out" >&2
                        die "samba exited during start-up (see $dir/samba.out)"
                fi
                if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -x -ZZ -H "ldap://$ip" -D "svc-offboard@$REALM" \
                        -y "$dir/svc.pw" -s base -b "" -LLL -o nettimeout=2 -l 2 namingContexts > /dev/null 2>&1; then
                        break
                fi
                sleep 0.05
        done
        if ((i == 600)); then
                tail -20 "$dir/samba.out" >&2
                kill -KILL "$pid" 2> /dev/null || true
                die "samba did not answer within 30 s"
        fi
        cat > "$dir/env.tmp" <<EOF
OB_IP=$ip
OB_LDAP_URI=ldap://$ip
OB_LDAPS_URI=ldaps://$ip
OB_CA_FILE=$dir/tls/ca.pem
OB_OTHER_CA_FILE=$dir/tls/other-ca.pem
OB_SUFFIX=$SUFFIX
OB_BASE=OU=People,$SUFFIX
OB_BIND_DN=CN=svc-offboard,CN=Users,$SUFFIX
OB_BIND_PW_FILE=$dir/svc.pw
OB_ADMIN_DN=CN=Administrator,CN=Users,$SUFFIX
OB_ADMIN_PW_FILE=$dir/admin.pw
OB_SAM_LDB=$sam
OB_SMB_CONF=$conf
OB_SAMBA_PID=$pid
EOF
        mv "$dir/env.tmp" "$dir/env"
        echo "samba.sh: $ip ready in $((SECONDS - t0)) s" >&2

        watch_runner "$pid" "$dir"
}

cmd_stop() {
        local dir=$1 pid i
        [ -f "$dir/samba.pid" ] || return 0
        pid=$(cat "$dir/samba.pid")
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
                        echo "samba.sh: samba $pid ignored SIGTERM for 10 s, killing it" >&2
                        kill -KILL "$pid" 2> /dev/null || true
                fi
        fi
        rm -f "$dir/samba.pid"
}

[ $# -eq 2 ] || { echo "usage: samba.sh start|stop DIR" >&2; exit 2; }
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) echo "usage: samba.sh start|stop DIR" >&2; exit 2 ;;
esac
