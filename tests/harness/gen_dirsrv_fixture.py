#!/usr/bin/env python3
"""gen_dirsrv_fixture.py: small fixtures for the Samba AD and 389-DS tests.

    gen_dirsrv_fixture.py ad   --now UNIX --manifest M.json --service-password-file F > fixture.ldif
    gen_dirsrv_fixture.py 389  --now UNIX --manifest M.json --service-password-file F > fixture.ldif

Each fixture holds one person per rule of the shipped mapping (and per way a
rule must *not* fire: "never" values, a future end date, a lockout that the
policy's duration has already ended), a hostile DN, and a few active people
the tests change the way an administrator would (disable, lock, delete).

Times are relative to --now, with days of margin, so the manifest stays right
for as long as a test run lasts. The manifest has the shape
tests/support/slapd.c's ob_test_manifest_load reads:
  {"today_days": D, "fallback": null,
   "people": [{"uid", "dn", "status", "rule", "reason", "manager", "team", "team_owner", "guid"}]}
rule is the mapping rule that must match, or "active" when none does.

AD (Samba): base OU=People,DC=offboard,DC=test; the domain's lockoutDuration
is set to LOCKOUT_DAYS days by samba.sh, so a lockoutTime 1 day old is a lock
and one 20 days old is not. 389-DS: base ou=people,dc=example,dc=org;
ds389.sh sets the global password policy (lockout after 3 failures, unlock
after LOCKOUT_DAYS days).
"""
import argparse
import base64
import json
import sys

LOCKOUT_DAYS = 10
DAY = 86400
FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01
NEVER_MAX = 9223372036854775807


def filetime(t):
    return str((int(t) + FILETIME_EPOCH) * 10_000_000)


def gtime(t):
    import time
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(int(t)))


def ldif_value(name, value):
    """One attribute line, base64 when LDIF requires it ("name:" = value is base64 already)."""
    if name.endswith(":"):
        return f"{name}: {value}"
    v = value.encode("utf-8")
    safe = v and v[0:1] not in (b" ", b":", b"<") and v[-1:] != b" " and all(32 <= c < 127 for c in v)
    if safe:
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(v).decode()}"


def entry(dn, attrs):
    lines = [ldif_value("dn", dn)]
    for name, vals in attrs:
        for v in vals if isinstance(vals, list) else [vals]:
            lines.append(ldif_value(name, str(v)))
    return "\n".join(lines) + "\n"


def person(uid, dn, status, rule, reason=None, manager=None, team=None, team_owner=None):
    return {"uid": uid, "dn": dn, "status": status, "rule": rule, "reason": reason,
            "manager": manager, "team": team, "team_owner": team_owner, "guid": None}


def ad(now, svc_password):
    suffix = "DC=offboard,DC=test"
    people = f"OU=People,{suffix}"
    teams = f"OU=Teams,{suffix}"
    out, man = [], []
    out.append(entry(people, [("objectClass", "organizationalUnit"), ("ou", "People")]))
    out.append(entry(teams, [("objectClass", "organizationalUnit"), ("ou", "Teams")]))
    pw = base64.b64encode(f'"{svc_password}"'.encode("utf-16-le")).decode()
    out.append(entry(f"CN=svc-offboard,CN=Users,{suffix}",
                     [("objectClass", "user"), ("sAMAccountName", "svc-offboard"),
                      ("userAccountControl", "66048"), ("unicodePwd:", pw)]))

    def user(cn, sam, status, rule, reason=None, uac=512, manager=None, extra=(), rdn_escaped=None):
        dn = f"CN={rdn_escaped or cn},{people}"
        attrs = [("objectClass", "user"), ("sAMAccountName", sam), ("userAccountControl", str(uac)),
                 ("mail", f"{sam}@offboard.test"), ("displayName", cn)]
        if manager:
            attrs.append(("manager", f"CN={manager},{people}"))
        attrs.extend(extra)
        out.append(entry(dn, attrs))
        man.append(person(sam, dn, status, rule, reason, f"CN={manager},{people}" if manager else None))
        return dn

    user("alice", "alice", "active", "active", extra=[("accountExpires", "0")])
    user("amy", "amy", "active", "active", extra=[("accountExpires", str(NEVER_MAX))])
    user("frank", "frank", "active", "active", extra=[("accountExpires", filetime(now + 365 * DAY))])
    user("bob", "bob", "inactive", "disabled", "disabled in Active Directory", uac=514, manager="alice")
    user("ivan", "ivan", "inactive", "disabled", "disabled in Active Directory", uac=514,
         extra=[("accountExpires", filetime(now - 30 * DAY))])  # first rule wins
    user("dave", "dave", "ended", "expired", "account expiry date reached", manager="alice",
         extra=[("accountExpires", filetime(now - 30 * DAY))])
    user("carol", "carol", "locked", "locked-out", "locked out after failed logins",
         extra=[("lockoutTime", filetime(now - 1 * DAY))])
    user("erin", "erin", "active", "active", extra=[("lockoutTime", filetime(now - 2 * LOCKOUT_DAYS * DAY))])
    user("gina", "gina", "active", "active", extra=[("lockoutTime", "0")])
    heidi = user("heidi", "heidi", "inactive", "disabled", "disabled in Active Directory", uac=514)
    man[-1]["team"] = f"CN=eng,{teams}"
    man[-1]["team_owner"] = f"CN=alice,{people}"
    user("a+b=c;d<e>f", "hostile", "inactive", "disabled", "disabled in Active Directory", uac=66050,
         rdn_escaped=r"a\+b\3Dc\3Bd\<e\>f")
    # Active now; the tests disable, lock (failed binds) and delete them.
    # kim, leo, mia: changed by the write-back test; sam, tom, una, val: by
    # the service's (una locked out by bad passwords, val's end date set).
    for sam in ("kim", "leo", "mia", "sam", "tom", "una", "val"):
        extra = []
        if sam in ("leo", "una"):
            lpw = base64.b64encode('"Leo!Passw0rd7"'.encode("utf-16-le")).decode()
            extra.append(("unicodePwd:", lpw))
        user(sam, sam, "active", "active", extra=extra)
    out.append(entry(f"CN=eng,{teams}", [("objectClass", "group"), ("sAMAccountName", "eng"),
                                         ("managedBy", f"CN=alice,{people}"), ("member", heidi)]))
    # Locked out for real (bad binds) by one test, which alone reads this OU.
    lockout = f"OU=Lockout,{suffix}"
    out.append(entry(lockout, [("objectClass", "organizationalUnit"), ("ou", "Lockout")]))
    lpw = base64.b64encode('"Lara!Passw0rd7"'.encode("utf-16-le")).decode()
    out.append(entry(f"CN=lara,{lockout}", [("objectClass", "user"), ("sAMAccountName", "lara"),
                                            ("userAccountControl", "512"), ("unicodePwd:", lpw)]))
    return out, man


def ds389(now, svc_password):
    suffix = "dc=example,dc=org"
    people = f"ou=people,{suffix}"
    out, man = [], []
    out.append(entry(people, [("objectClass", ["top", "organizationalUnit"]), ("ou", "people")]))
    out.append(entry(f"ou=services,{suffix}", [("objectClass", ["top", "organizationalUnit"]), ("ou", "services")]))
    out.append(entry(f"cn=offboard,ou=services,{suffix}",
                     [("objectClass", ["top", "person"]), ("cn", "offboard"), ("sn", "offboard"),
                      ("userPassword", svc_password)]))
    # What `dsidm role lock` sets up: a managed role whose members are
    # inactivated through a classic CoS on nsRole (nsAccountLock: true).
    out.append(entry(f"cn=nsManagedDisabledRole,{suffix}",
                     [("objectClass", ["top", "LDAPsubentry", "nsRoleDefinition", "nsSimpleRoleDefinition",
                                       "nsManagedRoleDefinition"]), ("cn", "nsManagedDisabledRole")]))
    out.append(entry(f"cn=nsDisabledRole,{suffix}",
                     [("objectClass", ["top", "LDAPsubentry", "nsRoleDefinition", "nsComplexRoleDefinition",
                                       "nsNestedRoleDefinition"]), ("cn", "nsDisabledRole"),
                      ("nsRoleDN", f"cn=nsManagedDisabledRole,{suffix}")]))
    out.append(entry(f"cn=nsAccountInactivationTmp,{suffix}",
                     [("objectClass", ["top", "nsContainer"]), ("cn", "nsAccountInactivationTmp")]))
    out.append(entry(f'cn="cn=nsDisabledRole,{suffix}",cn=nsAccountInactivationTmp,{suffix}',
                     [("objectClass", ["top", "extensibleObject", "costemplate", "ldapsubentry"]),
                      ("cosPriority", "1"), ("nsAccountLock", "true")]))
    out.append(entry(f"cn=nsAccountInactivation_cos,{suffix}",
                     [("objectClass", ["top", "LDAPsubentry", "cosSuperDefinition", "cosClassicDefinition"]),
                      ("cosTemplateDn", f"cn=nsAccountInactivationTmp,{suffix}"), ("cosSpecifier", "nsRole"),
                      ("cosAttribute", "nsAccountLock operational")]))
    today = now // DAY

    def user(uid, status, rule, reason=None, extra=(), classes=(), rdn=None, manager=None):
        dn = f"uid={rdn or uid},{people}"
        attrs = [("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson", *classes]),
                 ("uid", uid), ("cn", uid), ("sn", uid), ("mail", f"{uid}@example.org")]
        if manager:
            attrs.append(("manager", f"uid={manager},{people}"))
        attrs.extend(extra)
        out.append(entry(dn, attrs))
        man.append(person(uid, dn, status, rule, reason, f"uid={manager},{people}" if manager else None))

    shadow = ["shadowAccount"]
    user("alice", "active", "active")
    # bob's manager has ended: the transfer must not go to dave.
    user("bob", "inactive", "inactive", "Left the company", manager="dave",
         extra=[("employeeType", "Terminated"), ("description", "Left the company")])
    user("dave", "ended", "ended", "end date reached", classes=shadow,
         extra=[("shadowExpire", str(today - 30))])
    user("frank", "active", "active", classes=shadow, extra=[("shadowExpire", str(today + 365))])
    user("gus", "active", "active", classes=shadow, extra=[("shadowExpire", "-1")])
    user("carl", "locked", "account-lock", "nsAccountLock is set", extra=[("nsAccountLock", "true")])
    user("rory", "locked", "account-lock", "nsAccountLock is set",
         extra=[("nsRoleDN", f"cn=nsManagedDisabledRole,{suffix}")])
    # Password-policy lockouts: the server sets these after failed binds;
    # the fixture writes what it would have written.
    user("pat", "locked", "password-lockout", "locked out after failed logins",
         extra=[("passwordRetryCount", "3"), ("accountUnlockTime", gtime(now + (LOCKOUT_DAYS - 1) * DAY))])
    user("paula", "locked", "password-lockout-forever", "locked out until an administrator resets the password",
         extra=[("passwordRetryCount", "3"), ("accountUnlockTime", "19700101000000Z")])
    user("peg", "active", "active",
         extra=[("passwordRetryCount", "3"), ("accountUnlockTime", gtime(now - DAY))])
    # Has offboard's class already (writeback.object_class: null).
    user("olga", "inactive", "inactive", "Contract ended", classes=["offboardAccount"],
         extra=[("employeeType", "Inactive"), ("description", "Contract ended")])
    user("a+b=c;d<e>f", "inactive", "inactive", "marked inactive in the directory", rdn=r"a\+b\3Dc\3Bd\<e\>f",
         extra=[("employeeType", "Inactive")])
    man[-1]["uid"] = "a+b=c;d<e>f"
    for uid in ("kim", "leo", "mia", "sam"):
        extra = [("userPassword", "Leo!Passw0rd7")] if uid == "leo" else []
        user(uid, "active", "active", extra=extra)
    # The service test ends tom's account (shadowExpire) through the feed.
    user("tom", "active", "active", classes=shadow, extra=[("shadowExpire", str(today + 365))])
    # Under a per-user password policy (ds389.sh: dsconf localpwp adduser),
    # in an OU of their own that only that test reads: lpat locks after 2
    # failures for a day, lpeg after 2 for 2 seconds.
    out.append(entry(f"ou=pwp,{suffix}", [("objectClass", ["top", "organizationalUnit"]), ("ou", "pwp")]))
    for uid in ("lpat", "lpeg"):
        out.append(entry(f"uid={uid},ou=pwp,{suffix}",
                         [("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
                          ("uid", uid), ("cn", uid), ("sn", uid), ("userPassword", "Leo!Passw0rd7")]))
    return out, man


IPA_MAX_FAILURE = 3
IPA_LOCKOUT_DAYS = 1


def freeipa(now, svc_password):
    """389-DS with FreeIPA's attributes (test-only schema: ds389.sh)."""
    out, man = ds389(now, svc_password)
    suffix = "dc=example,dc=org"
    people = f"ou=ipa,{suffix}"
    out.append(entry(people, [("objectClass", ["top", "organizationalUnit"]), ("ou", "ipa")]))
    # FreeIPA's global password policy where FreeIPA keeps it:
    # cn=global_policy,cn=REALM,cn=kerberos,SUFFIX (ipa pwpolicy-show).
    out.append(entry(f"cn=kerberos,{suffix}", [("objectClass", ["top", "nsContainer"]), ("cn", "kerberos")]))
    out.append(entry(f"cn=EXAMPLE.ORG,cn=kerberos,{suffix}",
                     [("objectClass", ["top", "nsContainer"]), ("cn", "EXAMPLE.ORG")]))
    out.append(entry(f"cn=global_policy,cn=EXAMPLE.ORG,cn=kerberos,{suffix}",
                     [("objectClass", ["top", "nsContainer", "krbPwdPolicy"]), ("cn", "global_policy"),
                      ("krbPwdMaxFailure", str(IPA_MAX_FAILURE)),
                      ("krbPwdLockoutDuration", str(IPA_LOCKOUT_DAYS * DAY)),
                      ("krbPwdFailureCountInterval", "60")]))
    # A policy that lacks krbPwdLockoutDuration: the pass must refuse it.
    out.append(entry(f"cn=broken_policy,cn=EXAMPLE.ORG,cn=kerberos,{suffix}",
                     [("objectClass", ["top", "nsContainer", "krbPwdPolicy"]), ("cn", "broken_policy"),
                      ("krbPwdMaxFailure", "3")]))
    ipa = []

    def user(uid, status, rule, reason=None, extra=()):
        dn = f"uid={uid},{people}"
        out.append(entry(dn, [("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson",
                                               "krbPrincipalAux"]),
                              ("uid", uid), ("cn", uid), ("sn", uid), ("mail", f"{uid}@ipa.example.org"),
                              ("krbPrincipalName", f"{uid}@EXAMPLE.ORG"), *extra]))
        ipa.append(person(uid, dn, status, rule, reason))

    user("ialice", "active", "active")
    user("ibob", "inactive", "disabled", "disabled in FreeIPA", extra=[("nsAccountLock", "TRUE")])
    user("icarl", "active", "active", extra=[("nsAccountLock", "FALSE")])
    user("idave", "ended", "principal-expired", "Kerberos principal expired",
         extra=[("krbPrincipalExpiration", gtime(now - 30 * DAY))])
    user("ifrank", "active", "active", extra=[("krbPrincipalExpiration", gtime(now + 365 * DAY))])
    # Kerberos lockouts, as FreeIPA's KDC writes them (days of margin):
    L = ("locked", "kerberos-lockout", "locked out after failed Kerberos logins")
    n = str(IPA_MAX_FAILURE)
    user("iliz", *L, extra=[("krbLoginFailedCount", n), ("krbLastFailedAuth", gtime(now - 3600))])
    user("ilou", "active", "active",  # below the count
         extra=[("krbLoginFailedCount", str(IPA_MAX_FAILURE - 1)), ("krbLastFailedAuth", gtime(now - 3600))])
    user("iles", "active", "active",  # the lockout duration has ended
         extra=[("krbLoginFailedCount", n),
                ("krbLastFailedAuth", gtime(now - (IPA_LOCKOUT_DAYS + 2) * DAY))])
    user("ilia", "active", "active",  # ipa user-unlock after the last failure
         extra=[("krbLoginFailedCount", n), ("krbLastFailedAuth", gtime(now - 7200)),
                ("krbLastAdminUnlock", gtime(now - 3600))])
    user("ilse", *L,  # failed again after an unlock
         extra=[("krbLoginFailedCount", n), ("krbLastFailedAuth", gtime(now - 3600)),
                ("krbLastAdminUnlock", gtime(now - 7200))])
    user("ilya", "inactive", "disabled", "disabled in FreeIPA",  # disabled wins over a lockout
         extra=[("nsAccountLock", "TRUE"), ("krbLoginFailedCount", n), ("krbLastFailedAuth", gtime(now - 3600))])
    return out, ipa


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flavor", choices=["ad", "389"])
    ap.add_argument("--now", type=int, required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--ipa-manifest")
    ap.add_argument("--service-password-file", required=True)
    a = ap.parse_args()
    with open(a.service_password_file) as f:
        svc = f.read().strip()
    ipa = []
    if a.flavor == "ad":
        out, man = ad(a.now, svc)
    else:
        out, ipa = freeipa(a.now, svc)
        man = ds389(a.now, svc)[1]
    sys.stdout.write("\n".join(out))
    with open(a.manifest, "w") as f:
        json.dump({"today_days": a.now // DAY, "fallback": None, "people": man}, f, indent=1)
    if a.ipa_manifest:
        with open(a.ipa_manifest, "w") as f:
            json.dump({"today_days": a.now // DAY, "fallback": None, "people": ipa}, f, indent=1)


if __name__ == "__main__":
    main()
