#!/usr/bin/env bash
# tls.sh DIR: a throw-away CA and a server certificate for 127.0.0.1/localhost.
# Writes DIR/ca.pem, DIR/server.pem, DIR/server.key, and DIR/other-ca.pem (a
# second CA that signed nothing we serve, for "verification fails" tests).
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
[ -f server.pem ] && exit 0
subj() { printf '/O=offboard tests/CN=%s' "$1"; }
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.pem -subj "$(subj 'test CA')" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout other-ca.key -out other-ca.pem -subj "$(subj 'other CA')" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "$(subj localhost)" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.pem 2>/dev/null
chmod 644 server.key
rm -f server.csr server.ext
