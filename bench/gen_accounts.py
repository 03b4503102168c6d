#!/usr/bin/env python3
"""gen_accounts.py: a benchmark directory as LDIF for slapadd (used by http_pass.sh).

  gen_accounts.py --accounts N --owing M --service-password-file F --limited-password-file F

Prints dc=example,dc=org with ou=people, ou=teams (empty), ou=services
(cn=offboard and cn=limited, with the passwords of the files, as slapd.sh
expects) and ou=policies (cn=default, the ppolicy default slapd.sh names), and
exactly N people user000001... of which exactly M, spread evenly, have
employeeType Inactive (offboard's openldap mapping: inactive, so 3 actions
each with the benchmark's configuration); the others are active employees.
Every inactive account's manager is the nearest active account before it
(user000001 is always active), so each one has a transfer target.
Deterministic: the same arguments give the same bytes.
"""
import argparse
import base64
import hashlib
import sys

SUFFIX = "dc=example,dc=org"
PEOPLE = "ou=people," + SUFFIX


def entry(dn, attrs):
    lines = ["dn: " + dn]
    for name, values in attrs:
        if not isinstance(values, (list, tuple)):
            values = [values]
        lines.extend("%s: %s" % (name, v) for v in values)
    return "\n".join(lines) + "\n\n"


def ssha(password, salt):
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def read_password(path):
    with open(path, "r", encoding="utf-8") as f:
        return f.read().rstrip("\r\n")


def inactive(i, n, m):
    """Exactly m of 1..n, evenly spread; never 1 while m < n."""
    return (i * m) // n != ((i - 1) * m) // n if i > 1 or m == n else False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, required=True)
    ap.add_argument("--owing", type=int, required=True)
    ap.add_argument("--service-password-file", required=True)
    ap.add_argument("--limited-password-file", required=True)
    a = ap.parse_args()
    if a.accounts < 1 or not 0 <= a.owing < a.accounts:
        ap.error("need 1 <= accounts and 0 <= owing < accounts")
    n, m = a.accounts, a.owing
    out = sys.stdout
    out.write("# offboard benchmark directory: %d accounts, %d inactive\n\n" % (n, m))
    out.write(entry(SUFFIX, [("objectClass", ["top", "dcObject", "organization"]),
                             ("dc", "example"), ("o", "Example Org")]))
    for ou in ("people", "teams", "services", "policies"):
        out.write(entry("ou=%s,%s" % (ou, SUFFIX),
                        [("objectClass", ["top", "organizationalUnit"]), ("ou", ou)]))
    for k, (cn, path) in enumerate((("offboard", a.service_password_file),
                                    ("limited", a.limited_password_file))):
        out.write(entry("cn=%s,ou=services,%s" % (cn, SUFFIX), [
            ("objectClass", ["top", "organizationalRole", "simpleSecurityObject"]),
            ("cn", cn), ("description", "offboard benchmark service account"),
            ("userPassword", ssha(read_password(path), bytes([k + 1] * 8)))]))
    out.write(entry("cn=default,ou=policies," + SUFFIX, [
        ("objectClass", ["top", "device", "pwdPolicy"]), ("cn", "default"),
        ("pwdAttribute", "userPassword")]))
    last_active = 1
    written = 0
    for i in range(1, n + 1):
        uid = "user%06d" % i
        attrs = [("objectClass", ["top", "inetOrgPerson"]), ("uid", uid),
                 ("cn", "User %06d" % i), ("sn", "User%06d" % i),
                 ("mail", uid + "@example.org")]
        if inactive(i, n, m):
            attrs += [("employeeType", "Inactive"), ("description", "Left the company"),
                      ("manager", "uid=user%06d,%s" % (last_active, PEOPLE))]
            written += 1
        else:
            attrs.append(("employeeType", "employee"))
            if i > 1:
                attrs.append(("manager", "uid=user%06d,%s" % (last_active, PEOPLE)))
            last_active = i
        out.write(entry("uid=%s,%s" % (uid, PEOPLE), attrs))
    assert written == m, (written, m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
