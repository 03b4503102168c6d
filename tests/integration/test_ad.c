/* test_ad.c: mappings/active-directory.yaml and agent/directory.c against a
 * real Samba 4.17 AD DC (tests/harness/samba.sh), through the offboard binary.
 *
 * One DC for the executable, started by the runner. Its fixture
 * (gen_dirsrv_fixture.py ad) holds a person for every rule of the mapping and
 * for every way a rule must not fire, and its manifest says what the mapping
 * must conclude of each. Tests that change entries use people no other test
 * judges (kim, leo, mia; sam, tom, una, val for the service), or only add
 * offboard's own attributes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "directory.h"
#include "dirsrv_case.h"
#include "run.h"
#include "samba.h"
#include "util.h"

static struct ob_test_dirsrv srv;
static struct ob_test_manifest *man;
static struct ob_test_case tc;

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_samba_share();
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_samba_unshare();
}

static void setup(void)
{
        int r = ob_test_samba_attach(&srv);
        cr_assert_eq(r, 0, "no test Samba DC (see the runner's output above): %s", strerror(-r));
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        ob_test_case_open(&tc, &srv, "ad");
}

/* The people the write-back test (kim, leo, mia) and the service's (sam,
 * tom, una, val) change: other tests do not judge them. */
static const char *const changed_by_tests[] = {"kim", "leo", "mia", "sam", "tom", "una", "val", NULL};
static bool service_changed; /* the service test changed sam, tom, una and val: put them back */

static void put_back_service_people(void);

static void teardown(void)
{
        ob_test_case_close(&tc);
        if (service_changed)
                put_back_service_people();
        ob_test_manifest_free(man);
        man = NULL;
}

TestSuite(ad, .init = setup, .fini = teardown, .timeout = 180);

/* The configuration (dirsrv_case.h): the AD mapping's own directory
 * defaults (filter, ids, teams), StartTLS with ca_file (NULL: the DC's CA);
 * extra (writeback:, policies:) is added at the top level. */
static void write_config(const char *uri, const char *ca_file, const char *extra)
{
        char teams[200], fallback[200];
        snprintf(teams, sizeof(teams), "  teams:\n    base: OU=Teams,%s\n", srv.suffix);
        snprintf(fallback, sizeof(fallback), "CN=alice,%s", srv.base);
        struct ob_test_config c = {.uri = uri,
                                   .ca_file = ca_file,
                                   .mappings = "active-directory",
                                   .fallback = fallback,
                                   .directory_extra = teams,
                                   .extra = extra};
        ob_test_case_write_config(&tc, &c);
}

static int offboard(const char *cmd, const char *a1, const char *a2, char **out, char **err)
{
        return ob_test_case_offboard(&tc, cmd, a1, a2, out, err);
}

/* The JSON object of one account in a report (from its "id" to the next
 * account's), malloc'd; fails the test when absent. */
static char *account_json(const char *out, const char *username)
{
        char key[160];
        snprintf(key, sizeof(key), "\"username\":\"%s\"", username);
        const char *p = strstr(out, key);
        cr_assert_not_null(p, "%s is not in the report: %.3000s", username, out);
        const char *start = p;
        while (start > out && strncmp(start, "{\"id\":", 6) != 0)
                start--;
        const char *end = strstr(p, "{\"id\":");
        size_t n = end ? (size_t)(end - start) : strlen(start);
        char *s = strndup(start, n);
        cr_assert_not_null(s);
        return s;
}

static void assert_statuses(const char *out, const char *const *skip)
{
        ob_test_assert_statuses(man, out, skip);
}

static char *admin_search(const char *filter, const char *attrs)
{
        char *out = ob_test_dirsrv_search(&srv, srv.base, filter, attrs);
        cr_assert_not_null(out, "ldapsearch %s failed", filter);
        return out;
}

static void admin_modify(const char *ldif)
{
        char *err = NULL;
        int rc = ob_test_dirsrv_modify(&srv, ldif, &err);
        cr_assert_eq(rc, 0, "ldapmodify failed (%d): %s\n%s", rc, err, ldif);
        free(err);
}

/* ---- reading ------------------------------------------------------------------ */

Test(ad, every_account_of_the_fixture_gets_the_status_its_rule_gives)
{
        write_config(NULL, NULL, "writeback:\n  enabled: true\n");
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stdout: %.3000s\nsummary: %s\nstderr: %s", rc, out, strstr(out, "\"summary\"") ? strstr(out, "\"summary\"") : "", err);
        /* The admin test (if it ran already) deleted mia, disabled kim and
         * locked leo out. */
        bool admin_ran = strstr(out, "\"username\":\"kim\",\"status\":\"inactive\"") != NULL;
        char want[64];
        snprintf(want, sizeof(want), "\"accounts_read\":%zu,", man->npeople - admin_ran);
        cr_assert_not_null(strstr(out, want), "the default filter must find every user and nothing else: %.500s",
                           strstr(out, "\"summary\""));
        size_t owing = man->npeople - ob_test_manifest_count(man, "active", 0) + 2 * admin_ran;
        snprintf(want, sizeof(want), "\"accounts_owing\":%zu,", owing);
        cr_expect_not_null(strstr(out, want), "%s in %s", want, strstr(out, "\"summary\""));
        assert_statuses(out, changed_by_tests);
        /* The id is the objectGUID, the DN of the hostile entry intact. */
        char *bob = account_json(out, "bob");
        cr_assert_not_null(strstr(bob, "\"id\":\""), "%s", bob);
        cr_assert_eq(strlen(strstr(bob, "\"id\":\"") + 6) > 36 && strstr(bob, "\"id\":\"")[6 + 36] == '"', 1,
                     "a GUID: %s", bob);
        free(bob);
        cr_assert_not_null(strstr(out, "\"dn\":\"CN=a\\\\+b\\\\3Dc\\\\3Bd\\\\<e\\\\>f,OU=People,"), "%.4000s", out);
        /* Teams are AD groups with managedBy: heidi has no manager, her
         * team's leader is alice. */
        char *heidi = account_json(out, "heidi");
        cr_assert_not_null(strstr(heidi, "\"via\":\"team\""), "%s", heidi);
        cr_assert_not_null(strstr(heidi, "\"username\":\"alice\""), "%s", heidi);
        free(heidi);
        char *b = account_json(out, "bob");
        cr_assert_not_null(strstr(b, "\"via\":\"manager\""), "%s", b);
        free(b);
        free(out);
        free(err);
}

/* Issue 14's rules on AD, configured as the shipped mapping does it: teams
 * are groups (objectClass=group) whose leader is managedBy. In OU=Chain, a
 * base of this test's own (the fixture's people stay as they are): rex's
 * manager max has left, so his records go to the owner of his first team
 * (by DN) that he does not own and whose owner is active: t-a is his own,
 * t-b's owner nia has left, t-c's is ola. sue has no manager and no team:
 * transfer.leader_of's first team with an active leader, t-c, gives ola
 * (via leader; t-b's leader has left). The guards: rex owns t-a,
 * which has another member (owns_team_with_members); pam is a member of
 * the portal's administrators (member_of). Accounts are enabled without a
 * password as an administrator may (userAccountControl 544: PASSWD_NOTREQD),
 * disabled with 546. */
Test(ad, records_go_down_the_chain_through_managed_by_teams_and_guards_hold_on_ad_groups)
{
        char chain[200], teams[200], ldif[6000];
        snprintf(chain, sizeof(chain), "OU=Chain,%s", srv.suffix);
        snprintf(teams, sizeof(teams), "OU=ChainTeams,%s", srv.suffix);
        struct {
                const char *cn, *uac, *manager;
        } people[] = {/* a manager before whom it manages: AD checks the reference */
                      {"max", "546", NULL}, {"rex", "546", "max"}, {"nia", "546", NULL}, {"ola", "544", NULL},
                      {"sue", "546", NULL}, {"pam", "546", NULL},  {"ted", "544", NULL}};
        size_t len = (size_t)snprintf(ldif, sizeof(ldif), "dn: %s\nobjectClass: organizationalUnit\n\n"
                                                          "dn: %s\nobjectClass: organizationalUnit\n\n",
                                      chain, teams);
        for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
                len += (size_t)snprintf(ldif + len, sizeof(ldif) - len,
                                        "dn: CN=%s,%s\nobjectClass: user\nsAMAccountName: chain-%s\n"
                                        "userAccountControl: %s\n",
                                        people[i].cn, chain, people[i].cn, people[i].uac);
                if (people[i].manager)
                        len += (size_t)snprintf(ldif + len, sizeof(ldif) - len, "manager: CN=%s,%s\n",
                                                people[i].manager, chain);
                len += (size_t)snprintf(ldif + len, sizeof(ldif) - len, "\n");
        }
        static const char *const groups[][3] = {{"t-a", "rex", "rex ola"}, {"t-b", "nia", "rex"}, {"t-c", "ola", "rex"}};
        for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
                len += (size_t)snprintf(ldif + len, sizeof(ldif) - len,
                                        "dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: chain-%s\n"
                                        "managedBy: CN=%s,%s\n",
                                        groups[i][0], teams, groups[i][0], groups[i][1], chain);
                char members[32];
                snprintf(members, sizeof(members), "%s", groups[i][2]);
                for (char *m = strtok(members, " "); m; m = strtok(NULL, " "))
                        len += (size_t)snprintf(ldif + len, sizeof(ldif) - len, "member: CN=%s,%s\n", m, chain);
                len += (size_t)snprintf(ldif + len, sizeof(ldif) - len, "\n");
        }
        len += (size_t)snprintf(ldif + len, sizeof(ldif) - len,
                                "dn: CN=portal-admins,%s\nobjectClass: group\nsAMAccountName: chain-portal-admins\n"
                                "member: CN=pam,%s\n\n",
                                chain, chain);
        cr_assert_lt(len, sizeof(ldif));
        admin_modify(ldif);

        char teams_yaml[300], fallback[300], guards[600], from[400], to[1000];
        snprintf(teams_yaml, sizeof(teams_yaml), "  teams:\n    base: %s\n", teams);
        snprintf(fallback, sizeof(fallback), "CN=ted,%s", chain);
        snprintf(guards, sizeof(guards),
                 "guards:\n"
                 "  team-owner: {owns_team_with_members: true}\n"
                 "  portal-admins: {member_of: 'CN=portal-admins,%s'}\n",
                 chain);
        struct ob_test_config c = {.base = chain,
                                   .mappings = "active-directory",
                                   .fallback = fallback,
                                   .directory_extra = teams_yaml,
                                   .extra = guards};
        ob_test_case_write_config(&tc, &c);
        snprintf(from, sizeof(from), "  fallback: %s\n", fallback);
        snprintf(to, sizeof(to), "  fallback: %s\n  leader_of: ['CN=t-b,%s', 'CN=t-c,%s']\n", fallback, teams, teams);
        ob_test_case_edit_config(&tc, from, to);

        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.3000s\nstderr: %s", out, err);
        const char *checks[] = {
                "exec(\"def t(u):\\n a = next(a for a in d['accounts'] if a['username'] == 'chain-' + u)\\n x = "
                "a['transfer_to'] or {}\\n return (x.get('via'), x.get('username'))\") is None",
                "exec(\"def g(u):\\n a = next(a for a in d['accounts'] if a['username'] == 'chain-' + u)\\n return "
                "({s['name']: s['hold_reason'] for s in a['actions']}, sorted(x['name'] for x in a['guards'] if "
                "x['block']))\") is None",
                "t('rex') == ('team', 'chain-ola')",
                "t('sue') == ('leader', 'chain-ola')",
                "g('rex')[1] == ['team-owner'] and g('pam')[1] == ['portal-admins']",
                "g('sue')[1] == []",
                "g('rex')[0]['revoke-sessions'] is None and g('pam')[0]['revoke-sessions'] is None",
                "'owns the team CN=t-a,OU=ChainTeams,DC=offboard,DC=test, which has 1 other member' in "
                "g('rex')[0]['transfer-records']",
                "'is a member of CN=portal-admins,OU=Chain,DC=offboard,DC=test' in g('pam')[0]['transfer-records']",
                "g('sue')[0]['transfer-records'] is None",
        };
        ob_test_json_check(tc.dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
}

/* The optional password-expiry mapping, after the AD one: the fixture's
 * people have no password (pwdLastSet 0: must change it at next logon),
 * except leo; the rules of active-directory still come first. */
Test(ad, the_optional_password_expiry_rule_locks_who_must_change_the_password)
{
        write_config(NULL, NULL, NULL);
        ob_test_case_edit_config(&tc, "mappings: [active-directory]\n",
                                 "mappings: [active-directory, active-directory-password-expiry]\n");
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stderr: %s", rc, err);
        for (size_t i = 0; i < man->npeople; i++) {
                const struct ob_test_person *p = &man->people[i];
                char want[300];
                bool changed = false;
                for (size_t k = 0; changed_by_tests[k]; k++)
                        changed = changed || strcmp(p->uid, changed_by_tests[k]) == 0;
                if (changed)
                        continue; /* another test may have changed them */
                if (strcmp(p->rule, "active") == 0)
                        snprintf(want, sizeof(want),
                                 "\"username\":\"%s\",\"status\":\"locked\",\"rule\":\"password-expired\"",
                                 p->uid);
                else
                        snprintf(want, sizeof(want), "\"username\":\"%s\",\"status\":\"%s\",\"rule\":\"%s\"",
                                 p->uid, p->status, p->rule);
                cr_expect_not_null(strstr(out, want), "%s: expected %s", p->uid, want);
        }
        /* leo has a password: unless locked out meanwhile, not expired. */
        cr_assert_null(strstr(out, "\"username\":\"leo\",\"status\":\"locked\",\"rule\":\"password-expired\""),
                       "%.3000s", out);
        free(out);
        free(err);
}

/* A mapping file: the shipped active-directory.yaml without its locked-out
 * rule and without the fallback's test that the computed attribute is
 * absent, so nothing requests msDS-User-Account-Control-Computed (a
 * constructed attribute: Samba returns it whenever it is asked for), as on
 * a DC that does not compute it. The rest of the fallback rule is the
 * shipped text. */
static void write_fallback_mapping(char *path, size_t size)
{
        char *text = ob_test_read_file(OB_SOURCE_DIR "/mappings/active-directory.yaml");
        cr_assert_not_null(text);
        char *from = strstr(text, "  - name: locked-out\n");
        cr_assert_not_null(from);
        const char *to = strstr(from + 1, "  - name: ");
        cr_assert_not_null(to);
        /* the rule's leading comment goes with it */
        while (from > text && strncmp(from - 1, "\n\n", 2) != 0)
                from--;
        snprintf(path, size, "%s/ad-fallback.yaml", tc.dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        const char *absent = "        - attribute: msDS-User-Account-Control-Computed\n"
                             "          present: false\n";
        const char *cut = strstr(to, absent);
        cr_assert_not_null(cut);
        fprintf(f, "%.*s%.*s%s", (int)(from - text), text, (int)(cut - to), to, cut + strlen(absent));
        fclose(f);
        free(text);
        char *check = ob_test_read_file(path);
        cr_assert_null(strstr(check, "msDS-User-Account-Control-Computed\n"), "%s", check);
        cr_assert_not_null(strstr(check, "name: lockout-time"), "%s", check);
        free(check);
}

/* Where msDS-User-Account-Control-Computed is missing, lockoutTime is
 * judged against the domain's lockoutDuration, read from the domain head
 * (the root DSE's defaultNamingContext): carol's lockout (1 day old) is a
 * lock, erin's (20 days, duration 10 days: samba-tool domain
 * passwordsettings in samba.sh) is not, and lara, locked out by three bad
 * passwords now, is. */
Test(ad, without_the_computed_attribute_lockout_time_is_judged_against_the_domains_lockout_duration)
{
        char lara[300];
        snprintf(lara, sizeof(lara), "CN=lara,OU=Lockout,%s", srv.suffix);
        for (int i = 0; i < 3; i++) {
                char *berr = NULL;
                int rc = ob_test_dirsrv_bind(&srv, lara, "not-laras-password", &berr);
                cr_assert_eq(rc, 49, "a bad password is refused: %d %s", rc, berr);
                free(berr);
        }
        char *berr = NULL;
        int rc = ob_test_dirsrv_bind(&srv, lara, "Lara!Passw0rd7", &berr);
        cr_assert_eq(rc, 49, "lara is locked out now: %d", rc);
        cr_assert_not_null(strstr(berr, "data 775"), "%s", berr);
        free(berr);

        char mapping[300], m[400];
        write_fallback_mapping(mapping, sizeof(mapping));
        snprintf(m, sizeof(m), "mappings: [%s]\n", mapping);
        write_config(NULL, NULL, NULL);
        ob_test_case_edit_config(&tc, "mappings: [active-directory]\n", m);
        char *out, *err;
        rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stderr: %s", rc, err);
        cr_assert_null(strstr(out, "\"rule\":\"locked-out\""), "%.3000s", out);
        cr_assert_not_null(strstr(out, "\"username\":\"carol\",\"status\":\"locked\",\"rule\":\"lockout-time\""),
                           "%.3000s", out);
        /* Everyone else as the shipped mapping has it (leo: the admin test
         * may have locked him out). */
        const char *skip[] = {"carol", "kim", "leo", "mia", "sam", "tom", "una", "val", NULL};
        assert_statuses(out, skip);
        free(out);
        free(err);

        char base[200];
        snprintf(base, sizeof(base), "  base: OU=Lockout,%s\n", srv.suffix);
        char old[200];
        snprintf(old, sizeof(old), "  base: %s\n", srv.base);
        ob_test_case_edit_config(&tc, old, base);
        rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stderr: %s", rc, err);
        cr_assert_not_null(strstr(out, "\"username\":\"lara\",\"status\":\"locked\",\"rule\":\"lockout-time\""),
                           "%.3000s", out);
        free(out);
        free(err);
}

/* Fail closed: an entry that has no lockoutDuration as the domain policy
 * stops the pass before any account is judged, naming what is missing. */
Test(ad, a_domain_policy_without_lockout_duration_stops_the_pass)
{
        write_config(NULL, NULL, NULL);
        char tail[300];
        snprintf(tail, sizeof(tail), "policies:\n  domain:\n    dn: \"%s\"\nstate:\n", srv.base);
        ob_test_case_edit_config(&tc, "state:\n", tail);
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 3, "rc %d; stdout %s\nstderr %s", rc, out, err);
        cr_assert_not_null(strstr(err, "has no lockoutDuration"), "%s", err);
        cr_assert_not_null(strstr(err, srv.base), "the DN is named: %s", err);
        cr_assert_null(strstr(out, "\"username\""), "no account was judged: %s", out);
        free(out);
        free(err);
}

/* ---- writing back ---------------------------------------------------------------- */

/* The whole life of a pass on AD, in order: write-back with the shipped
 * schema (the class added in a modify of its own, the time with a
 * fraction), a second pass that does nothing, then an administrator's
 * disable, lockout (three bad passwords) and delete found by the next pass. */
Test(ad, write_back_lands_a_second_pass_does_nothing_and_admin_changes_are_found)
{
        write_config(NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stdout: %.3000s\nsummary: %s\nstderr: %s", rc, out, strstr(out, "\"summary\"") ? strstr(out, "\"summary\"") : "", err);
        cr_assert_not_null(strstr(out, "\"writebacks_failed\":0,"), "%.3000s\nstderr: %s", out, err);
        free(out);
        free(err);

        char *e = admin_search("(sAMAccountName=bob)", "objectClass offboardStatus offboardStatusTime "
                                                       "offboardReason offboardAction uSNChanged");
        cr_assert_not_null(strstr(e, "objectClass: offboardAccount\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardStatus: inactive\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardReason: disabled in Active Directory\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardAction: revoke-sessions done "), "%s", e);
        const char *t = strstr(e, "offboardStatusTime: ");
        cr_assert_not_null(t, "%s", e);
        t += strlen("offboardStatusTime: ");
        cr_assert(strspn(t, "0123456789") == 14 && strncmp(t + 14, ".0Z\n", 4) == 0, "%s", e);
        const char *usn = strstr(e, "uSNChanged: ");
        cr_assert_not_null(usn);
        char usn_before[64];
        snprintf(usn_before, sizeof(usn_before), "%.*s", (int)strcspn(usn, "\n"), usn);
        free(e);
        e = admin_search("(sAMAccountName=hostile)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: inactive\n"), "the hostile DN was written: %s", e);
        free(e);
        e = admin_search("(sAMAccountName=carol)", "offboardStatus offboardReason");
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "%s", e);
        free(e);
        e = admin_search("(sAMAccountName=erin)", "offboardStatus");
        cr_assert_null(strstr(e, "offboardStatus"), "an expired lockout is no lock: %s", e);
        free(e);

        /* A second pass: nothing owed, nothing sent, nothing written. */
        int sent = ob_test_recorder_count(&tc.rec);
        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stdout: %.3000s\nsummary: %s\nstderr: %s", rc, out, strstr(out, "\"summary\"") ? strstr(out, "\"summary\"") : "", err);
        cr_assert_not_null(strstr(out, "\"accounts_owing\":0,"), "%.3000s", out);
        cr_assert_eq(ob_test_recorder_count(&tc.rec), sent, "the second pass sent requests");
        free(out);
        free(err);
        e = admin_search("(sAMAccountName=bob)", "uSNChanged");
        cr_assert_not_null(strstr(e, usn_before), "the second pass wrote to bob: %s (was %s)", e, usn_before);
        free(e);

        /* An administrator disables kim, leo is locked out by three bad
         * passwords, mia is deleted. */
        char ldif[1024];
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=kim,%s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n-\n\n"
                 "dn: CN=mia,%s\nchangetype: delete\n",
                 srv.base, srv.base);
        admin_modify(ldif);
        char leo[300];
        snprintf(leo, sizeof(leo), "CN=leo,%s", srv.base);
        for (int i = 0; i < 3; i++) {
                char *berr = NULL;
                rc = ob_test_dirsrv_bind(&srv, leo, "not-leos-password", &berr);
                cr_assert_eq(rc, 49, "a bad password is refused: %d %s", rc, berr);
                free(berr);
        }
        char *berr = NULL;
        rc = ob_test_dirsrv_bind(&srv, leo, "Leo!Passw0rd7", &berr);
        cr_assert_eq(rc, 49, "leo is locked out now: %d", rc);
        cr_assert_not_null(strstr(berr, "data 775"), "%s", berr);
        free(berr);

        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stdout: %.3000s\nsummary: %s\nstderr: %s", rc, out, strstr(out, "\"summary\"") ? strstr(out, "\"summary\"") : "", err);
        cr_assert_not_null(strstr(out, "\"username\":\"kim\",\"status\":\"inactive\",\"rule\":\"disabled\""),
                           "%.4000s", out);
        cr_assert_not_null(strstr(out, "\"username\":\"leo\",\"status\":\"locked\",\"rule\":\"locked-out\""),
                           "%.4000s", out);
        char *mia = account_json(out, "mia");
        cr_assert_not_null(strstr(mia, "\"status\":\"deleted\""), "%s", mia);
        free(mia);
        free(out);
        free(err);
        e = admin_search("(sAMAccountName=kim)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: inactive\n"), "%s", e);
        free(e);
        e = admin_search("(sAMAccountName=leo)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "%s", e);
        free(e);

        /* And then nothing more. */
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.3000s", out);
        free(out);
        free(err);
}

/* Without a schema extension: onto msDS-cloudExtensionAttribute1..3
 * (Windows Server 2012 schema; Samba 4.17 has them), no class added. */
Test(ad, write_back_onto_existing_attributes_needs_no_schema_extension)
{
        write_config(NULL, NULL,
                     "writeback:\n"
                     "  status_attribute: msDS-cloudExtensionAttribute1\n"
                     "  time_attribute: msDS-cloudExtensionAttribute2\n"
                     "  reason_attribute: msDS-cloudExtensionAttribute3\n");
        char *out, *err;
        int rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; stdout: %.3000s\nsummary: %s\nstderr: %s", rc, out, strstr(out, "\"summary\"") ? strstr(out, "\"summary\"") : "", err);
        cr_assert_not_null(strstr(out, "\"writebacks_failed\":0,"), "%.3000s", out);
        free(out);
        free(err);
        char *e = admin_search("(sAMAccountName=dave)", "msDS-cloudExtensionAttribute1 msDS-cloudExtensionAttribute2 "
                                                        "msDS-cloudExtensionAttribute3");
        cr_assert_not_null(strstr(e, "msDS-cloudExtensionAttribute1: ended\n"), "%s", e);
        cr_assert_not_null(strstr(e, "msDS-cloudExtensionAttribute2: "), "%s", e);
        cr_assert_not_null(strstr(e, "msDS-cloudExtensionAttribute3: account expiry date reached\n"), "%s", e);
        free(e);
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "nothing owed after the pass: %.3000s", out);
        free(out);
        free(err);
}

/* ---- what the server supports, and errors that say what failed ------------------- */

Test(ad, an_assertion_attribute_is_refused_at_the_start_because_ad_lacks_the_control)
{
        write_config(NULL, NULL, "writeback:\n  assertion_attribute: uSNChanged\n");
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_neq(rc, 0, "stdout: %s", out);
        cr_assert_eq(rc, 2, "a configuration problem, not a failure per entry: %d", rc);
        cr_assert_not_null(strstr(err, "assertion control"), "%s", err);
        cr_assert_not_null(strstr(err, "remove writeback.assertion_attribute"), "%s", err);
        cr_assert_null(strstr(out, "\"username\""), "no entry was judged: %s", out);
        free(out);
        free(err);
}

/* What `validate --online` will call (ob_dir_check), on the library. */
Test(ad, the_online_check_finds_a_missing_base_teams_base_fallback_and_a_bad_teams_filter)
{
        char teams[200], alice[200], nobody[200], noteams[200];
        snprintf(teams, sizeof(teams), "OU=Teams,%s", srv.suffix);
        snprintf(noteams, sizeof(noteams), "OU=NoTeams,%s", srv.suffix);
        snprintf(alice, sizeof(alice), "CN=alice,%s", srv.base);
        snprintf(nobody, sizeof(nobody), "CN=nobody,%s", srv.base);
        struct ob_directory_config c = {
                .uri = srv.ldap_uri,
                .starttls = true,
                .tls_verify = true,
                .ca_file = srv.ca_file,
                .bind_dn = srv.bind_dn,
                .bind_password_file = srv.bind_pw_file,
                .base = srv.base,
                .scope = OB_SCOPE_SUB,
                .filter = "(&(objectCategory=person)(objectClass=user))",
                .timeout_ms = 10000,
                .id_attribute = "objectGUID",
                .teams_base = teams,
                .teams_filter = "(objectClass=group)",
                .teams_member_attribute = "member",
                .teams_owner_attribute = "managedBy",
        };
        struct ob_dir *d = NULL;
        cr_assert_eq(ob_dir_open(&c, &d), 0);
        cr_assert_eq(ob_dir_check(d, alice), 0);
        cr_assert_eq(ob_dir_check(d, NULL), 0);
        cr_assert_eq(ob_dir_check(d, nobody), -OB_ENOTFOUND);
        ob_dir_free(d);

        c.teams_base = noteams;
        cr_assert_eq(ob_dir_open(&c, &d), 0);
        cr_assert_eq(ob_dir_check(d, alice), -OB_ENOTFOUND);
        ob_dir_free(d);

        c.teams_base = teams;
        c.teams_filter = "(objectClass=group"; /* unbalanced */
        cr_assert_eq(ob_dir_open(&c, &d), 0);
        cr_assert_lt(ob_dir_check(d, alice), 0);
        ob_dir_free(d);

        c.teams_filter = "(objectClass=group)";
        c.base = noteams;
        cr_assert_eq(ob_dir_open(&c, &d), 0);
        cr_assert_eq(ob_dir_check(d, alice), -OB_ENOTFOUND);
        ob_dir_free(d);
}

Test(ad, a_certificate_from_another_ca_names_ca_file)
{
        write_config(NULL, srv.other_ca_file, NULL);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "not signed by a CA this agent trusts"), "%s", err);
        cr_assert_not_null(strstr(err, "ca_file"), "%s", err);
        cr_assert_null(strstr(err, "Can't contact LDAP server\" problem"), "%s", err);
        free(out);
        free(err);

        write_config(srv.ldaps_uri, srv.other_ca_file, NULL);
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "not signed by a CA this agent trusts"), "ldaps://: %s", err);
        free(out);
        free(err);
}

Test(ad, a_wrong_password_says_so_and_never_shows_it)
{
        char pw[300];
        snprintf(pw, sizeof(pw), "%s/wrong.pw", tc.dir);
        FILE *f = fopen(pw, "w");
        fputs("Wr0ng!Password-x9\n", f);
        fclose(f);
        write_config(NULL, NULL, NULL);
        /* the same configuration with the wrong password file */
        ob_test_case_edit_config(&tc, srv.bind_pw_file, pw);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "does not match directory.bind_dn"), "%s", err);
        cr_assert_not_null(strstr(err, "data 52e"), "the server's own reason is kept: %s", err);
        cr_assert_null(strstr(err, "Wr0ng"), "the password was printed: %s", err);
        free(out);
        free(err);
}

/* ---- offboard run ------------------------------------------------------------- */

/* AD offers no RFC 4533 feed: the service asks, every poll_interval, what
 * changed between the last highestCommittedUSN and the new one. */
Test(ad, the_service_hears_a_disable_by_polling_usn_and_passes_over_that_account_alone)
{
        write_config(NULL, NULL, "service:\n  full_pass_interval: 1h\n  poll_interval: 200ms\n");
        service_changed = true;
        ob_test_case_start_service(&tc, "poll kind=usn");
        char *log = ob_test_case_service_log(&tc);
        int whole = ob_test_count(log, "event=pass ");
        free(log);

        char ldif[400];
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=sam,%s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n-\n",
                 srv.base);
        admin_modify(ldif);
        int n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 1, 30000);
        /* Its write-back comes back through the poll too (AD names no
         * modifier): a pass over sam that owes nothing, no second request. */
        usleep(1500000);
        n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 2, 20);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "sam's disable was acted on %d times:\n%s", n, log);
        /* The first pass's write-backs came back as changes first (passes
         * that owed nothing); sam's own did its two actions. */
        cr_assert(strstr(log, " owed=2 done=2 failed=0 held=0 parked=no whole_pass_needed=no"), "%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for one change:\n%s", log);
        free(log);
        char *e = admin_search("(sAMAccountName=sam)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: inactive\n"), "not written back: %s", e);
        free(e);

        /* A deletion: the poll reads the tombstones of the same USNs and the
         * pass finds the account by its objectGUID. */
        snprintf(ldif, sizeof(ldif), "dn: CN=tom,%s\nchangetype: delete\n", srv.base);
        admin_modify(ldif);
        n = ob_test_case_wait_requests(&tc, "/api/users/tom/sessions/revoke", 1, 30000);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "tom's deletion was not acted on:\n%s", log);
        cr_assert_null(strstr(log, "level=warning"), "polling is quiet:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for a deletion:\n%s", log);
        free(log);

        /* A lockout by bad passwords: the DC writes lockoutTime. */
        char una[300];
        snprintf(una, sizeof(una), "CN=una,%s", srv.base);
        for (int i = 0; i < 3; i++) {
                char *berr = NULL;
                int rc = ob_test_dirsrv_bind(&srv, una, "not-unas-password", &berr);
                cr_assert_eq(rc, 49, "a bad password is refused: %d %s", rc, berr);
                free(berr);
        }
        n = ob_test_case_wait_requests(&tc, "/api/users/una/sessions/revoke", 1, 30000);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "una's lockout was not acted on:\n%s", log);
        free(log);

        /* An end date a few seconds ahead: the change sets it, the clock
         * ends the account (a whole pass at that second). */
        time_t end = time(NULL) + 4;
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=val,%s\nchangetype: modify\nreplace: accountExpires\naccountExpires: %lld\n-\n", srv.base,
                 ((long long)end + 11644473600LL) * 10000000LL);
        admin_modify(ldif);
        n = ob_test_case_wait_requests(&tc, "/api/users/val/sessions/revoke", 1, 30000);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "val's end date was not acted on:\n%s", log);
        cr_assert(strstr(log, "event=pass_at_next_change"), "%s", log);
        free(log);
        struct ob_test_request *q;
        size_t nq;
        cr_assert_eq(ob_test_recorder_requests(&tc.rec, &q, &nq), 0);
        double at = 0;
        for (size_t i = 0; i < nq; i++)
                if (strcmp(q[i].path, "/api/users/val/sessions/revoke") == 0)
                        at = q[i].time;
        ob_test_requests_free(q, nq);
        cr_assert_geq(at, (double)end, "acted on at %.3f, before the end date %lld", at, (long long)end);
        ob_test_case_stop_service(&tc);
}

/* DirSync (service.feed: dirsync) with the object-security flag: a
 * disable and a deletion, as the USN poll hears them. */
Test(ad, the_service_hears_a_disable_and_a_deletion_through_dirsync)
{
        write_config(NULL, NULL, "service:\n  full_pass_interval: 1h\n  poll_interval: 200ms\n  feed: dirsync\n");
        service_changed = true;
        ob_test_case_start_service(&tc, "poll kind=dirsync");
        char *log = ob_test_case_service_log(&tc);
        int whole = ob_test_count(log, "event=pass ");
        free(log);
        char ldif[400];
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=sam,%s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n-\n\n"
                 "dn: CN=tom,%s\nchangetype: delete\n",
                 srv.base, srv.base);
        admin_modify(ldif);
        int sam = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 1, 30000);
        int tom = ob_test_case_wait_requests(&tc, "/api/users/tom/sessions/revoke", 1, 30000);
        usleep(1000000);
        sam = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 2, 20);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(sam, 1, "sam's disable was acted on %d times:\n%s", sam, log);
        cr_assert_eq(tom, 1, "tom's deletion was not acted on:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for a change:\n%s", log);
        cr_assert_null(strstr(log, "level=warning"), "%s", log);
        free(log);
        ob_test_case_stop_service(&tc);

        /* A restart resumes DirSync from the cookie the last whole pass
         * covered: its first answer is changes (sam's, tom's, and val's,
         * disabled while the service was down), not everything again. */
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=val,%s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n-\n",
                 srv.base);
        admin_modify(ldif);
        ob_test_case_start_service(&tc, "poll kind=dirsync");
        int val = ob_test_case_wait_requests(&tc, "/api/users/val/sessions/revoke", 1, 30000);
        bool resumed = false;
        for (int i = 0; i < 200 && !resumed; i++) {
                log = ob_test_case_service_log(&tc);
                resumed = strstr(log, "event=change_pass ") != NULL;
                free(log);
                if (!resumed)
                        usleep(50000);
        }
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(val, 1, "val, disabled while the service was down, was not acted on:\n%s", log);
        cr_assert(strstr(log, "event=feed_cookie_loaded"), "%s", log);
        cr_assert_null(strstr(log, "event=feed_refresh_required"), "%s", log);
        cr_assert(resumed, "the resumed DirSync answered no change:\n%s", log);
        free(log);
        cr_assert_eq(ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 2, 20), 1,
                     "sam was acted on again after the restart");
        ob_test_case_stop_service(&tc);
}

/* sam, tom, una and val as the fixture had them, for the other tests (tom
 * as a new account: a new objectGUID). Best effort: it runs from the
 * teardown. */
static void put_back_service_people(void)
{
        service_changed = false;
        char dn[300], ldif[600], *err = NULL;
        snprintf(dn, sizeof(dn), "CN=sam,%s", srv.base);
        ob_test_dirsrv_put_back(&srv, dn, "replace: userAccountControl\nuserAccountControl: 512\n-\n");
        snprintf(dn, sizeof(dn), "CN=una,%s", srv.base);
        ob_test_dirsrv_put_back(&srv, dn, "replace: lockoutTime\nlockoutTime: 0\n-\n");
        snprintf(dn, sizeof(dn), "CN=val,%s", srv.base);
        ob_test_dirsrv_put_back(&srv, dn,
                                "replace: accountExpires\naccountExpires: 9223372036854775807\n-\n"
                                "replace: userAccountControl\nuserAccountControl: 512\n-\n");
        char *e = ob_test_dirsrv_search(&srv, srv.base, "(sAMAccountName=tom)", "sAMAccountName");
        bool there = e && strstr(e, "sAMAccountName: tom");
        free(e);
        snprintf(ldif, sizeof(ldif),
                 "dn: CN=tom,%s\nchangetype: add\nobjectClass: user\nsAMAccountName: tom\n"
                 "userAccountControl: 512\nmail: tom@offboard.test\ndisplayName: tom\n",
                 srv.base);
        if (!there && ob_test_dirsrv_modify(&srv, ldif, &err) != 0)
                fprintf(stderr, "could not put tom back: %s\n", err ? err : "");
        free(err);
}
