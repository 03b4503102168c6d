#!/usr/bin/env python3
"""gen_fixture.py: the test directory as LDIF for slapadd, and a manifest of what
offboard must conclude about every person in it.

  gen_fixture.py --users N [--seed S] [--manifest FILE]
                 [--service-password-file F] [--limited-password-file F]

Prints LDIF on stdout: dc=example,dc=org with ou=people, ou=teams, ou=services
(cn=offboard, cn=limited) and ou=policies (cn=default, the ppolicy default).
People are inetOrgPerson + shadowAccount, plus a random binary objectGUID
(test-only class offboardTestADObject, defined by slapd.sh) for AD-style ids. Fixed accounts (alice ... trent) are
always there; N generated users user000001... are spread over every status rule
(about 70% active), deterministically for a given seed. The date of "today" is
the UTC date the generator runs; the manifest records it as today_days (days
since 1970-01-01), so tests can set the agent's clock to the same day.

The status rules the manifest predicts (first match wins):
  1. employeeType Inactive or Terminated (any case)   -> inactive  (rule inactive, reason = description)
  2. shadowExpire > 0 and <= today                    -> ended     (rule ended)
  3. pwdAccountLockedTime = 000001010000Z             -> locked    (rule admin-locked)
  4. pwdAccountLockedTime, any other value            -> locked    (rule ppolicy-locked)
  5. employeeType Locked (any case)                   -> locked    (rule status-locked)
  6. otherwise                                        -> active    (rule active)

Manifest (JSON, UTF-8):
  {"today_days": D, "base": ..., "suffix": ..., "fallback": DN of trent,
   "counts": {status: n}, "rules": {rule: n},
   "people": [{"uid", "dn", "status", "rule", "reason", "manager",
               "team", "team_owner", "guid"}, ...],   (in LDIF order)
   "teams": [{"dn", "cn", "owner", "members": [...]}, ...]}
reason is the description for rule inactive (null without one), null otherwise;
team is the person's first team by DN (byte order), null if none. guid is the
person's test-only objectGUID as AD prints it (first three fields little-endian),
null with --no-object-guid.

Only the standard library is used.
"""

import argparse
import base64
import datetime
import hashlib
import json
import random
import sys
import uuid

SUFFIX = "dc=example,dc=org"
PEOPLE = "ou=people," + SUFFIX
TEAMS = "ou=teams," + SUFFIX
SERVICES = "ou=services," + SUFFIX
POLICIES = "ou=policies," + SUFFIX
ADMIN_LOCK = "000001010000Z"
MALLORY = 'mal lory/?#%"\\*()é日本'  # a uid with every character that breaks a naive DN, URL or filter

# ---------------------------------------------------------------------------
# Escaping


def dn_escape(value):
    """An attribute value in a DN, RFC 4514 section 2.4 (UTF-8 kept as is)."""
    out = []
    n = len(value)
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=':
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        elif ch == " " and (i == 0 or i == n - 1):
            out.append("\\ ")
        elif ch == "#" and i == 0:
            out.append("\\#")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


SAFE_INIT = set(range(0x01, 0x80)) - {0x0A, 0x0D, 0x20, 0x3A, 0x3C}
SAFE_CHAR = set(range(0x01, 0x80)) - {0x0A, 0x0D}


def ldif_safe(data):
    """RFC 2849 SAFE-STRING, and no trailing space (which tools strip)."""
    if not data:
        return True
    if data[0] not in SAFE_INIT or data[-1] == 0x20:
        return False
    return all(b in SAFE_CHAR for b in data)


def ldif_line(attr, value):
    data = value.encode("utf-8") if isinstance(value, str) else value
    if ldif_safe(data):
        line = "%s: %s" % (attr, data.decode("ascii"))
    else:
        line = "%s:: %s" % (attr, base64.b64encode(data).decode("ascii"))
    # Fold at 76 columns; continuation lines start with one space.
    out = [line[:76]]
    rest = line[76:]
    while rest:
        out.append(" " + rest[:75])
        rest = rest[75:]
    return "\n".join(out)


def ldif_entry(dn, attrs):
    lines = [ldif_line("dn", dn)]
    for name, values in attrs:
        if values is None:
            continue
        if not isinstance(values, (list, tuple)):
            values = [values]
        for v in values:
            lines.append(ldif_line(name, v))
    return "\n".join(lines) + "\n\n"


def ssha(password, rng):
    salt = bytes(rng.getrandbits(8) for _ in range(8))
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def read_password(path):
    if not path:
        return None
    with open(path, "r", encoding="utf-8") as f:
        return f.read().rstrip("\r\n")


# ---------------------------------------------------------------------------
# Status rules (what the agent's default mapping must conclude)


def evaluate(p, today):
    et = (p.get("employeeType") or "").lower()
    if et in ("inactive", "terminated"):
        return "inactive", "inactive", p.get("description")
    se = p.get("shadowExpire")
    if se is not None and 0 < se <= today:
        return "ended", "ended", None
    locked = p.get("pwdAccountLockedTime")
    if locked == ADMIN_LOCK:
        return "locked", "admin-locked", None
    if locked is not None:
        return "locked", "ppolicy-locked", None
    if et == "locked":
        return "locked", "status-locked", None
    return "active", "active", None


def gen_time(today, days_ago, rng):
    """A moment before today 00:00 UTC: the same output all day for a seed."""
    t = datetime.datetime.fromtimestamp((today - days_ago) * 86400 - 1 - rng.randrange(86400),
                                        datetime.timezone.utc)
    return t.strftime("%Y%m%d%H%M%SZ")


# ---------------------------------------------------------------------------
# People

HOSTILE_CN = [
    'Zoë "Zed" O\'Brien, Jr. <zed@example.org>',
    "Robert'); DROP TABLE students;-- (Bobby)",
    " leading and trailing space ",
    ":starts with a colon",
    "<starts with less-than",
    "back\\slash * star (paren) \"quote\" &amp; %2F ../..",
    "日本語の名前 Ünïcödé",
    "#hash first, semi; colon: plus+ equals=",
]
HOSTILE_DESCRIPTION = [
    "line one\nline two\r\nline three",
    "tab\there {{ template }} ${shell} $(cmd) `cmd`",
    "json \"breaker\": {\"x\": [1, 2]}, \\u0000 \\n",
    "url /../../admin?x=1&y=2#frag %00 %0d%0a",
    "Kündigung zum 31.12. — «fin» 终止",
]


def person(uid, cn, sn, **kw):
    p = {"uid": uid, "cn": cn, "sn": sn}
    p.update(kw)
    p["dn"] = "uid=%s,%s" % (dn_escape(uid), PEOPLE)
    return p


def fixed_people(today, rng):
    def dn(uid):
        return "uid=%s,%s" % (dn_escape(uid), PEOPLE)

    people = [
        person("alice", "Alice Active", "Active", mail="alice@example.org",
               manager=dn("dave"), employeeType="employee"),
        person("bob", "Bob Inactive", "Inactive", mail="bob@example.org",
               manager=dn("alice"), employeeType="Inactive",
               description="Left the company"),
        person("carol", "Carol Adminlocked", "Adminlocked", mail="carol@example.org",
               manager=dn("alice"), employeeType="employee",
               pwdAccountLockedTime=ADMIN_LOCK),
        person("dave", "Dave Teamowner", "Teamowner", mail="dave@example.org",
               employeeType="Active"),
        person("erin", "Erin Ended", "Ended", mail="erin@example.org",
               manager=dn("dave"), employeeType="contractor",
               shadowExpire=today - 3),
        person("frank", "Frank Ppolicylocked", "Ppolicylocked", mail="frank@example.org",
               manager=dn("dave"), employeeType="employee",
               pwdAccountLockedTime=gen_time(today, 1, rng)),
        person("grace", "Grace Statuslocked", "Statuslocked", mail="grace@example.org",
               manager=dn("dave"), employeeType="Locked"),
        person("heidi", "Heidi Teamonly", "Teamonly", mail="heidi@example.org",
               employeeType="Terminated", description="Contract not renewed"),
        person("ivan", "Ivan Nobody", "Nobody", mail="ivan@example.org",
               employeeType="inactive", description="Moved to a subsidiary"),
        person("judy", "Judy Futureexpiry", "Futureexpiry", mail="judy@example.org",
               manager=dn("alice"), employeeType="employee",
               shadowExpire=today + 3650),
        person(MALLORY, "Mallory " + "M" * 1992, "Mallory",
               mail="mal+lory@example.org", manager=dn("alice"),
               employeeType="INACTIVE",
               description='Escalation: "quotes", \\backslash\\, *star*, (parens), é日本'),
        person("trent", "Trent Fallback", "Fallback", mail="trent@example.org",
               employeeType="employee"),
    ]
    return people


def generated_people(n, today, rng, fixed_dns):
    people = []
    # Rule mix: 70% active, 6% each of the five other rules (cumulative).
    plan = [(0.70, "active"), (0.76, "inactive"), (0.82, "ended"), (0.88, "admin-locked"),
            (0.94, "ppolicy-locked"), (1.00, "status-locked")]
    for i in range(1, n + 1):
        uid = "user%06d" % i
        x = rng.random()
        intended = next(r for bound, r in plan if x < bound)
        p = person(uid, "User %06d" % i, "User%06d" % i, mail="%s@example.org" % uid)
        p["employeeType"] = rng.choice(["employee", "employee", "contractor", "Active", "intern"])
        if intended == "active":
            extra = rng.random()
            if extra < 0.10:
                p["shadowExpire"] = today + rng.randrange(1, 2000)  # future end date
            elif extra < 0.13:
                p["shadowExpire"] = rng.choice([0, -1])              # "never"
            elif extra < 0.15:
                p["shadowExpire"] = today + 1                        # ends tomorrow
        elif intended == "inactive":
            p["employeeType"] = rng.choice(["Inactive", "inactive", "Terminated", "TERMINATED"])
            if rng.random() < 0.8:
                p["description"] = rng.choice(["Left the company", "Retired", "Contract ended",
                                               "Dismissed", "Moved abroad"])
            if rng.random() < 0.2:  # first rule wins over a lock or an end date
                p["pwdAccountLockedTime"] = ADMIN_LOCK
                p["shadowExpire"] = today - rng.randrange(0, 100)
        elif intended == "ended":
            p["shadowExpire"] = today - rng.randrange(0, 400)  # 0: ends today
            if rng.random() < 0.2:
                p["pwdAccountLockedTime"] = ADMIN_LOCK
        elif intended == "admin-locked":
            p["pwdAccountLockedTime"] = ADMIN_LOCK
            if rng.random() < 0.2:
                p["employeeType"] = "Locked"
        elif intended == "ppolicy-locked":
            p["pwdAccountLockedTime"] = gen_time(today, rng.randrange(0, 30), rng)
        else:
            p["employeeType"] = rng.choice(["Locked", "locked", "LOCKED"])
        # Managers: a fixed account or an earlier generated user.
        r = rng.random()
        if r < 0.3 and people:
            p["manager"] = rng.choice(people)["dn"]
        elif r < 0.4:
            p["manager"] = rng.choice(fixed_dns)
        # A few hostile values.
        if rng.random() < 0.03:
            p["cn"] = rng.choice(HOSTILE_CN) + " %06d" % i
        if rng.random() < 0.03:
            p["description"] = rng.choice(HOSTILE_DESCRIPTION)
        people.append(p)
    return people


def person_ldif(p, rng, with_guid):
    classes = ["top", "inetOrgPerson", "shadowAccount"]
    if with_guid:
        classes.append("offboardTestADObject")
    attrs = [
        ("objectClass", classes),
        ("objectGUID", p["objectGUID"] if with_guid else None),
        ("uid", p["uid"]),
        ("cn", p["cn"]),
        ("sn", p["sn"]),
        ("mail", p.get("mail")),
        ("userPassword", ssha("pw-" + p["uid"], rng)),
        ("manager", p.get("manager")),
        ("employeeType", p.get("employeeType")),
        ("description", p.get("description")),
        ("shadowExpire", None if p.get("shadowExpire") is None else str(p["shadowExpire"])),
        ("pwdAccountLockedTime", p.get("pwdAccountLockedTime")),
    ]
    return ldif_entry(p["dn"], attrs)


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, required=True, help="number of generated users")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--manifest", help="write the JSON manifest here")
    ap.add_argument("--service-password-file", help="password of cn=offboard,ou=services")
    ap.add_argument("--limited-password-file", help="password of cn=limited,ou=services")
    ap.add_argument("--no-object-guid", action="store_true",
                    help="omit the test-only objectGUID (class offboardTestADObject of slapd.sh)")
    args = ap.parse_args()
    if args.users < 0:
        ap.error("--users must be >= 0")

    rng = random.Random(args.seed)
    today = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) // 86400

    fixed = fixed_people(today, rng)
    by_uid = {p["uid"]: p for p in fixed}
    fixed_dns = [by_uid[u]["dn"] for u in ("alice", "dave", "judy", "trent")]
    gen = generated_people(args.users, today, rng, fixed_dns)
    people = fixed + gen
    for p in people:  # AD-style binary ids; the manifest holds their canonical text
        p["objectGUID"] = bytes(rng.getrandbits(8) for _ in range(16))

    # Teams.
    def team_dn(cn):
        return "cn=%s,%s" % (dn_escape(cn), TEAMS)

    teams = [
        {"cn": "sales", "owner": by_uid["dave"]["dn"],
         "members": [by_uid["heidi"]["dn"], by_uid["alice"]["dn"]]},
        {"cn": "engineering", "owner": by_uid["alice"]["dn"],
         "members": [by_uid[MALLORY]["dn"],
                     by_uid["bob"]["dn"]]},
    ]
    nteams = max(1, args.users // 10) if gen else 0
    for t in range(1, nteams + 1):
        size = min(len(gen), rng.randrange(1, 8))
        members = rng.sample(gen, size)
        owner = rng.choice(gen)
        teams.append({"cn": "team%04d" % t, "owner": owner["dn"],
                      "members": [m["dn"] for m in members]})
    for t in teams:
        t["dn"] = team_dn(t["cn"])

    first_team = {}
    for t in sorted(teams, key=lambda t: t["dn"].encode("utf-8")):
        for m in t["members"]:
            first_team.setdefault(m, t)

    out = sys.stdout
    out.write("# offboard test fixture: %d generated users, seed %d, today_days %d\n\n"
              % (args.users, args.seed, today))
    out.write(ldif_entry(SUFFIX, [("objectClass", ["top", "dcObject", "organization"]),
                                  ("dc", "example"), ("o", "Example Org")]))
    for ou in ("people", "teams", "services", "policies"):
        out.write(ldif_entry("ou=%s,%s" % (ou, SUFFIX),
                             [("objectClass", ["top", "organizationalUnit"]), ("ou", ou)]))
    for cn, path in (("offboard", args.service_password_file),
                     ("limited", args.limited_password_file)):
        pw = read_password(path)
        value = ssha(pw, rng) if pw is not None else "secret"
        out.write(ldif_entry("cn=%s,%s" % (cn, SERVICES), [
            ("objectClass", ["top", "organizationalRole", "simpleSecurityObject"]),
            ("cn", cn), ("description", "offboard test service account"),
            ("userPassword", value)]))
    out.write(ldif_entry("cn=default,%s" % POLICIES, [
        ("objectClass", ["top", "device", "pwdPolicy"]),
        ("cn", "default"),
        ("pwdAttribute", "userPassword"),
        ("pwdLockout", "TRUE"),
        ("pwdMaxFailure", "5"),
        ("pwdLockoutDuration", "0"),
        ("pwdFailureCountInterval", "0")]))
    for p in people:
        out.write(person_ldif(p, rng, not args.no_object_guid))
    for t in teams:
        out.write(ldif_entry(t["dn"], [
            ("objectClass", ["top", "groupOfNames"]), ("cn", t["cn"]),
            ("owner", t["owner"]), ("member", t["members"])]))
    out.flush()

    if args.manifest:
        records = []
        counts = {}
        rules = {}
        for p in people:
            status, rule, reason = evaluate(p, today)
            counts[status] = counts.get(status, 0) + 1
            rules[rule] = rules.get(rule, 0) + 1
            t = first_team.get(p["dn"])
            records.append({
                "uid": p["uid"], "dn": p["dn"], "status": status, "rule": rule,
                "reason": reason, "manager": p.get("manager"),
                "team": t["dn"] if t else None, "team_owner": t["owner"] if t else None,
                "guid": None if args.no_object_guid else str(uuid.UUID(bytes_le=p["objectGUID"])),
            })
        manifest = {
            "today_days": today, "seed": args.seed, "suffix": SUFFIX, "base": PEOPLE,
            "teams_base": TEAMS, "fallback": by_uid["trent"]["dn"],
            "counts": counts, "rules": rules, "people": records,
            "teams": [{"dn": t["dn"], "cn": t["cn"], "owner": t["owner"],
                       "members": t["members"]} for t in teams],
        }
        with open(args.manifest, "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
