#!/usr/bin/env bash
# expired_tls.sh DIR: a CA (DIR/ca.pem) and a certificate for 127.0.0.1 it
# signed that expired on 2020-01-02 (DIR/server.pem, DIR/server.key), for
# "the certificate has expired" tests. `openssl ca` is the one tool here
# that backdates a certificate.
set -euo pipefail
dir=$1
mkdir -p "$dir/db"
cd "$dir"
[ -f server.pem ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.pem -subj "/O=offboard tests/CN=expiry CA" 2> /dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/O=offboard tests/CN=127.0.0.1" 2> /dev/null
: > db/index
echo 01 > db/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = c
[c]
database = db/index
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = p
x509_extensions = ext
[p]
commonName = supplied
[ext]
subjectAltName = IP:127.0.0.1
basicConstraints = CA:FALSE
CNF
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in server.csr -out server.pem \
        -startdate 20200101000000Z -enddate 20200102000000Z > /dev/null 2>&1
chmod 600 ca.key server.key
rm -f server.csr
