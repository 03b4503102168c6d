#!/usr/bin/env python3
"""sequential.py: the baseline of http_pass.sh, what a careful script would do.

  sequential.py --ldap-uri URI --ca-file F --bind-dn DN --bind-password-file F
                --base DN --api http://127.0.0.1:PORT/api --token-file F [--page-size 500]

Binds like offboard (StartTLS on ldap://, CA checked, simple bind), reads every
inetOrgPerson under the base with a paged search (RFC 2696), takes as inactive
those whose employeeType is Inactive or Terminated (rule 1 of
mappings/openldap.yaml, the only one the benchmark directory uses), and for
each, in sequence over one keep-alive connection (http.client), sends the same
three requests as offboard's configuration: POST users/UID/sessions/revoke,
POST users/UID/transfer (to the manager, if active), DELETE licenses/UID, with
the bearer token and an Idempotency-Key. No state store, no write-back.
Prints one JSON line: accounts read, inactive, requests, failures, seconds.
"""
import argparse
import http.client
import json
import sys
import time
import urllib.parse

import ldap
from ldap.controls import SimplePagedResultsControl

ATTRS = ["entryUUID", "uid", "mail", "cn", "manager", "employeeType", "description"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ldap-uri", required=True)
    ap.add_argument("--ca-file", required=True)
    ap.add_argument("--bind-dn", required=True)
    ap.add_argument("--bind-password-file", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--page-size", type=int, default=500)
    a = ap.parse_args()
    t0 = time.monotonic()
    with open(a.bind_password_file, encoding="utf-8") as f:
        pw = f.read().rstrip("\r\n")
    with open(a.token_file, encoding="utf-8") as f:
        token = f.read().strip()

    conn = ldap.initialize(a.ldap_uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 30)
    conn.set_option(ldap.OPT_TIMEOUT, 30)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, a.ca_file)
    conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn.start_tls_s()
    conn.simple_bind_s(a.bind_dn, pw)

    people = {}  # dn -> (uid, inactive, entryUUID, manager dn, reason)
    page = SimplePagedResultsControl(True, size=a.page_size, cookie=b"")
    while True:
        msgid = conn.search_ext(a.base, ldap.SCOPE_SUBTREE, "(objectClass=inetOrgPerson)", ATTRS,
                                serverctrls=[page])
        _, data, _, ctrls = conn.result3(msgid)
        for dn, at in data:
            if dn is None:  # a continuation reference
                continue
            et = at.get("employeeType", [b""])[0].decode().lower()
            people[dn.lower()] = (at["uid"][0].decode(), et in ("inactive", "terminated"),
                                  at.get("entryUUID", [b""])[0].decode(),
                                  at.get("manager", [b""])[0].decode(),
                                  at.get("description", [b""])[0].decode())
        cookie = next((c.cookie for c in ctrls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            break
        page.cookie = cookie
    conn.unbind_s()

    u = urllib.parse.urlsplit(a.api)
    http_conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    prefix = u.path.rstrip("/")
    requests = failed = inactive = 0

    def send(method, path, key, body=None):
        nonlocal requests, failed
        headers = {"Authorization": "Bearer " + token, "Idempotency-Key": key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        http_conn.request(method, prefix + path, body=data, headers=headers)
        r = http_conn.getresponse()
        r.read()
        requests += 1
        if not 200 <= r.status < 300:
            failed += 1
        return 200 <= r.status < 300

    for dn, (uid, is_inactive, uuid, manager, reason) in people.items():
        if not is_inactive:
            continue
        inactive += 1
        q = urllib.parse.quote(uid, safe="")
        key = "offboard-%s-deactivate-1-" % uuid
        if not send("POST", "/users/%s/sessions/revoke" % q, key + "revoke-sessions",
                    {"reason": reason, "status": "inactive"}):
            continue
        m = people.get(manager.lower())
        if m is None or m[1]:
            continue  # no active manager: held, as offboard would
        if not send("POST", "/users/%s/transfer" % q, key + "transfer-records", {"to": m[0], "via": "manager"}):
            continue
        send("DELETE", "/licenses/%s" % q, key + "free-license")
    http_conn.close()
    print(json.dumps({"accounts": len(people), "inactive": inactive, "requests": requests,
                      "failed": failed, "seconds": round(time.monotonic() - t0, 3)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
