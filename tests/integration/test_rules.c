/* The business rules of the seeds (../shared/seeds/, issue 14), each tested
 * by name against a real slapd holding a small directory built for them:
 * the fixture's fixed people plus the leavers, leaders and teams below.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static char dir[256];
static char cfgpath[300];

#define PEOPLE "ou=people,dc=example,dc=org"
#define TEAMS "ou=teams,dc=example,dc=org"
#define GROUPS "ou=services,dc=example,dc=org"

/* olga leaves without a manager. Her teams, in DN order: r-a (she owns it,
 * under another spelling of her DN), r-b (no owner), r-c (owned by ina, who
 * left), r-d (owned by dora). ina and pete leave too: ina leads lead-x;
 * lars leads lead-y. */
static const char rules_ldif[] =
        "dn: uid=olga," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: olga\ncn: Olga Owner\nsn: Owner\n"
        "employeeType: Inactive\n\n"
        "dn: uid=ina," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ina\ncn: Ina Inactive\nsn: Inactive\n"
        "employeeType: Inactive\n\n"
        "dn: uid=pete," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: pete\ncn: Pete Plain\nsn: Plain\n"
        "employeeType: Inactive\nmanager: uid=ina," PEOPLE "\n\n"
        "dn: uid=dora," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: dora\ncn: Dora Owner\nsn: Owner\n"
        "employeeType: employee\n\n"
        "dn: uid=lars," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: lars\ncn: Lars Leader\nsn: Leader\n"
        "employeeType: employee\n\n"
        "dn: cn=r-a," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: r-a\nowner: UID=Olga,OU=People,DC=example,DC=org\n"
        "member: uid=olga," PEOPLE "\nmember: uid=dora," PEOPLE "\n\n"
        "dn: cn=r-b," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: r-b\nmember: uid=olga," PEOPLE "\n\n"
        "dn: cn=r-c," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: r-c\nowner: uid=ina," PEOPLE "\n"
        "member: uid=olga," PEOPLE "\n\n"
        "dn: cn=r-d," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: r-d\nowner: uid=dora," PEOPLE "\n"
        "member: uid=olga," PEOPLE "\n\n"
        "dn: cn=lead-x," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: lead-x\nowner: uid=ina," PEOPLE "\n"
        "member: uid=ina," PEOPLE "\n\n"
        "dn: cn=lead-y," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: lead-y\nowner: uid=lars," PEOPLE "\n"
        "member: uid=lars," PEOPLE "\n\n"
        /* The guards' people (seeds 001, 004): gus owns g-owned, which has
         * dora too, and g-solo, which has only him; vic is a vice
         * president; pam administers the portal; sol alone receives the
         * workflow's alerts; wes shares them with dora. */
        "dn: uid=gus," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: gus\ncn: Gus Guarded\nsn: Guarded\n"
        "employeeType: Inactive\nmanager: uid=dora," PEOPLE "\n\n"
        "dn: cn=g-owned," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: g-owned\nowner: uid=gus," PEOPLE "\n"
        "member: uid=gus," PEOPLE "\nmember: uid=dora," PEOPLE "\n\n"
        "dn: cn=g-solo," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: g-solo\nowner: uid=gus," PEOPLE "\n"
        "member: uid=gus," PEOPLE "\n\n"
        "dn: uid=vic," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: vic\ncn: Vic President\nsn: President\n"
        "employeeType: Inactive\ntitle: VP\nmanager: uid=dora," PEOPLE "\n\n"
        "dn: uid=pam," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: pam\ncn: Pam Portal\nsn: Portal\n"
        "employeeType: Inactive\ntitle: manager\nmanager: uid=dora," PEOPLE "\n\n"
        "dn: uid=sol," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: sol\ncn: Sol Alone\nsn: Alone\n"
        "employeeType: Inactive\nmanager: uid=dora," PEOPLE "\n\n"
        "dn: uid=wes," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: wes\ncn: Wes Shared\nsn: Shared\n"
        "employeeType: Inactive\nmanager: uid=dora," PEOPLE "\n\n"
        "dn: cn=portal-admins," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\ncn: portal-admins\n"
        "member: uid=pam," PEOPLE "\nmember: uid=lars," PEOPLE "\n\n"
        "dn: cn=alerts," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\ncn: alerts\nmember: uid=sol," PEOPLE "\n\n"
        "dn: cn=alerts-2," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\ncn: alerts-2\n"
        "member: uid=wes," PEOPLE "\nmember: uid=dora," PEOPLE "\n\n"
        /* The stages' people: stan and stu leave, del is active until
         * deleted. */
        "dn: uid=stan," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: stan\ncn: Stan Staged\nsn: Staged\n"
        "employeeType: Inactive\n\n"
        "dn: uid=stu," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: stu\ncn: Stu Staged\nsn: Staged\n"
        "employeeType: Inactive\n\n"
        "dn: uid=del," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: del\ncn: Del Deleted\nsn: Deleted\n"
        "employeeType: employee\n";

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_slapd_share_with(0, rules_ldif);
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        ob_test_case_begin(&srv, &man, "rules", dir, sizeof(dir));
}

static void teardown(void)
{
        ob_test_case_end(man, dir);
}

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 60);

/* Opens cfgpath and writes its directory section (the harness slapd over
 * StartTLS; the accounts filter matches; directory.teams if teams); the
 * caller writes the rest and closes it. */
static FILE *config_open(const char *filter, bool teams)
{
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  starttls: true\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  filter: '%s'\n"
                "%s",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, filter,
                teams ? "  teams: {base: '" TEAMS "'}\n" : "");
        return f;
}

/* The configuration, with `transfer:` as given. Nothing is sent: the tests
 * plan. */
static void write_config(const char *transfer)
{
        FILE *f = config_open("(objectClass=inetOrgPerson)", true);
        fprintf(f,
                "state:\n"
                "  path: state.db\n"
                "transfer:\n"
                "%s"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: 'http://127.0.0.1:9/api'}\n"
                "actions:\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    json: {to: \"{{ transfer_to.uid }}\", via: \"{{ transfer_to.via }}\"}\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [transfer-records]\n",
                transfer);
        fclose(f);
}

/* `plan --format json`, checked with Python expressions over its document d
 * and the helper t(uid) = (via, username) of that account's transfer target
 * (None when it has none). */
static void plan_check(const char *const *checks, size_t n)
{
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        const char *pre = "t = lambda u: next(((a['transfer_to'] or {}).get('via'), (a['transfer_to'] or {}).get("
                          "'username')) for a in d['accounts'] if a['username'] == u)";
        const char **all = calloc(n + 1, sizeof(*all));
        cr_assert_not_null(all);
        char *defs = NULL;
        cr_assert_gt(asprintf(&defs, "exec(%c%s%c) is None", '"', pre, '"'), 0);
        all[0] = defs;
        for (size_t i = 0; i < n; i++)
                all[i + 1] = checks[i];
        ob_test_json_check(dir, out, true, all, n + 1);
        free(defs);
        free(all);
        free(out);
        free(err);
}

Test(rules, transfer_skips_teams_the_leaver_owns_teams_without_owner_and_teams_whose_owner_left)
{
        char transfer[400];
        snprintf(transfer, sizeof(transfer), "  fallback: %s\n", man->fallback);
        write_config(transfer);
        const char *checks[] = {"t('olga') == ('team', 'dora')"};
        plan_check(checks, 1);
}

/* -v (issue 15): a debug line per decision, with its status, rule,
 * transition, what is owed and the transfer target; none without -v. */
Test(rules, verbose_says_each_decision_with_its_rule_transition_and_transfer_target)
{
        char transfer[400];
        snprintf(transfer, sizeof(transfer), "  fallback: %s\n", man->fallback);
        write_config(transfer);
        char *out = NULL, *err = NULL;
        const char *quiet[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, NULL};
        int rc = ob_test_run(quiet, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_null(strstr(err, "event=decision"), "without -v: %s", err);
        free(out);
        free(err);
        const char *verbose[] = {OB_OFFBOARD_BIN, "plan", "-v", "--config", cfgpath, NULL};
        rc = ob_test_run(verbose, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        const char *line = strstr(err, "level=debug event=decision account=\"olga\" ");
        cr_assert_not_null(line, "%s", err);
        char one[600];
        snprintf(one, sizeof(one), "%.*s", (int)strcspn(line, "\n"), line);
        cr_assert_not_null(strstr(one, " transfer_to=\"dora\" via=team"), "%s", one);
        cr_assert_not_null(strstr(one, " rule=\""), "%s", one);
        cr_assert_null(strstr(one, " transition=\"\""), "olga owes a transition: %s", one);
        free(out);
        free(err);
}

Test(rules, transfer_goes_to_the_leader_of_the_first_configured_team_with_an_active_leader)
{
        /* pete's manager ina left and he has no team: lead-x's leader (ina)
         * left, lead-z does not exist, lead-y's lars is there. ina herself
         * leads lead-x, so hers go to lars as well. */
        char transfer[600];
        snprintf(transfer, sizeof(transfer),
                 "  fallback: %s\n"
                 "  leader_of:\n    - cn=lead-x," TEAMS "\n    - cn=lead-z," TEAMS "\n    - cn=lead-y," TEAMS "\n",
                 man->fallback);
        write_config(transfer);
        const char *checks[] = {"t('pete') == ('leader', 'lars')", "t('ina') == ('leader', 'lars')",
                                "t('olga') == ('team', 'dora')"};
        plan_check(checks, 3);
}

Test(rules, transfer_falls_back_when_no_manager_team_or_leader_is_active)
{
        char transfer[600];
        snprintf(transfer, sizeof(transfer), "  fallback: %s\n  leader_of: ['cn=lead-x," TEAMS "']\n", man->fallback);
        write_config(transfer);
        const char *checks[] = {"t('pete') == ('fallback', 'trent')", "t('ina') == ('fallback', 'trent')"};
        plan_check(checks, 2);
}

Test(rules, transfer_without_any_active_target_is_held_not_sent_empty)
{
        write_config("  leader_of: ['cn=lead-x," TEAMS "']\n");
        const char *checks[] = {
                "t('pete') == (None, None)",
                "all('no transfer target' in (s.get('hold_reason') or '') for a in d['accounts'] "
                "if a['username'] == 'pete' for s in a['actions'])",
        };
        plan_check(checks, 2);
}

/* ---- guards (seeds 001, 004) ------------------------------------------------- */

static const char guards_yaml[] =
        "guards:\n"
        "  team-owner: {owns_team_with_members: true}\n"
        "  executives:\n"
        "    role: {attribute: title, ranks: [staff, manager, director, vp], above: manager}\n"
        "  portal-admins: {member_of: 'cn=portal-admins," GROUPS "'}\n"
        "  alert-recipient: {sole_member_of: 'cn=alerts," GROUPS "'}\n"
        "  shared-alerts: {sole_member_of: 'cn=alerts-2," GROUPS "'}\n";

/* The configuration of the guard tests: revocation (security), a transfer
 * and a license, sent to the recorder, with write-back, for the accounts
 * filter matches and with guards as given; apps_extra ends the apps
 * connector's mapping and more_connectors follows it. */
static void write_guards_config(const struct ob_test_recorder *rec, const char *filter, const char *guards,
                                const char *apps_extra, const char *more_connectors)
{
        FILE *f = config_open(filter, true);
        fprintf(f,
                "writeback: {object_class: offboardAccount}\n"
                "state:\n"
                "  path: state.db\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "%s"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s%s}\n"
                "%s"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    after: [revoke-sessions]\n"
                "    json: {to: \"{{ transfer_to.uid }}\", via: \"{{ transfer_to.via }}\"}\n"
                "  free-license:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /licenses/{{ account.uid }}\n"
                "    after: [transfer-records]\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, transfer-records, free-license]\n",
                man->fallback, guards, rec->base_url, apps_extra, more_connectors);
        fclose(f);
}

static void write_guard_config(const struct ob_test_recorder *rec, const char *guards)
{
        write_guards_config(rec, "(objectClass=inetOrgPerson)", guards, "", "");
}

/* How many requests the recorder saw for method and path. */
static int count_req(const struct ob_test_recorder *rec, const char *method, const char *path)
{
        struct ob_test_request *q = NULL;
        size_t n = 0;
        cr_assert_eq(ob_test_recorder_requests(rec, &q, &n), 0);
        int c = 0;
        for (size_t i = 0; i < n; i++)
                c += strcmp(q[i].method, method) == 0 && strcmp(q[i].path, path) == 0;
        ob_test_requests_free(q, n);
        return c;
}

static const char *body_of(const struct ob_test_recorder *rec, const char *path, char *buf, size_t len)
{
        struct ob_test_request *q = NULL;
        size_t n = 0;
        cr_assert_eq(ob_test_recorder_requests(rec, &q, &n), 0);
        buf[0] = '\0';
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].path, path) == 0)
                        snprintf(buf, len, "%s", q[i].body);
        ob_test_requests_free(q, n);
        return buf;
}

static int offboard(const char *verb, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, verb, "--config", cfgpath, "--format", "json", NULL};
        return ob_test_run(argv, 60, out, err);
}

Test(rules, guards_hold_all_but_revocation_and_say_why_in_the_plan)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_guard_config(&rec, guards_yaml);
        const char *checks[] = {
                /* g(u): {action: hold_reason} and the names of the blocking guards */
                "exec(\"def g(u):\\n a = next(a for a in d['accounts'] if a['username'] == u)\\n return "
                "({s['name']: s['hold_reason'] for s in a['actions']}, sorted(x['name'] for x in a['guards'] if "
                "x['block']))\") is None",
                "g('gus')[1] == ['team-owner'] and g('vic')[1] == ['executives']",
                "g('pam')[1] == ['portal-admins'] and g('sol')[1] == ['alert-recipient']",
                "g('wes')[1] == [] and g('pete')[1] == [] and g('olga')[1] == ['team-owner']",
                "all(g(u)[0]['revoke-sessions'] is None for u in ('gus', 'vic', 'pam', 'sol', 'wes'))",
                "all(g(u)[0][a].startswith('guard ') for u in ('gus', 'vic', 'pam', 'sol') "
                "for a in ('transfer-records', 'free-license'))",
                "'g-owned' in g('gus')[0]['transfer-records'] and 'g-solo' not in g('gus')[0]['transfer-records']",
                "'title vp ranks above manager' in g('vic')[0]['free-license'].lower()",
                "g('wes')[0]['transfer-records'] is None",
                "next(a for a in d['accounts'] if a['username'] == 'gus')['blocked'].startswith('guard team-owner')",
        };
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "a plan sends nothing");
        ob_test_recorder_stop(&rec);
}

/* h34 found it: a team over the directory's limits (16 MiB an entry) came
 * back without the values past them, so g-owned, its other member dropped,
 * looked like a team of one and the guard let gus go. Read in part, a team
 * holds: it is not a smaller team. */
static void team_padding(const char *op)
{
        /* cn values, before owner and member in the entry, that bring what
         * is read of it (cn, owner) to 56 bytes under the limit, so that
         * member (uid=dora,..., 36 bytes) is past it: 16 values of a million
         * bytes and one of the rest, one modify each (a request over 4 MiB
         * would be refused). cn "g-owned" and owner uid=gus,... are 7 and 36. */
        const size_t limit = 16u << 20, cn = limit - 36 - 56, pads = cn - 7;
        char *ldif = malloc(1000000 + 512);
        cr_assert_not_null(ldif);
        for (int i = 0; i < 17; i++) {
                size_t len = i < 16 ? 1000000 : pads - 16 * 1000000;
                int n = sprintf(ldif, "dn: cn=g-owned," TEAMS "\nchangetype: modify\n%s: cn\ncn: pad%02d-", op, i);
                memset(ldif + n, 'x', len - 6);
                strcpy(ldif + n + len - 6, "\n");
                cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0, "could not %s padding %d", op, i);
        }
        free(ldif);
}

Test(rules, a_team_read_only_in_part_holds_the_guard_instead_of_counting_fewer_members)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_guard_config(&rec, "guards:\n  team-owner: {owns_team_with_members: true}\n");
        team_padding("add");
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        ob_test_run(argv, 120, &out, &err);
        team_padding("delete");
        const char *checks[] = {
                "(next(a for a in d['accounts'] if a['username'] == 'gus')['blocked'] or '').startswith('guard "
                "team-owner: cannot check the teams it owns')",
        };
        char *gus = strstr(out ? out : "", "\"username\":\"gus\"");
        cr_assert(strstr(err, "event=team_unreadable dn=\"cn=g-owned,"), "%s\n%.2000s", err, gus ? gus : "");
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        ob_test_recorder_stop(&rec);
}

Test(rules, a_guarded_account_is_revoked_at_once_written_back_as_blocked_and_released_when_the_guard_clears)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_guard_config(&rec, "guards:\n  team-owner: {owns_team_with_members: true}\n");
        char *out = NULL, *err = NULL;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "held actions need a human: exit 1\nstdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/sessions/revoke"), 1, "revocation is never held");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 0, "the transfer waits for the guard");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/gus"), 0);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/vic/transfer"), 1, "no guard of vic's is configured");
        char *e = ob_test_ldapsearch(&srv, PEOPLE, "(uid=gus)", "offboardStatus offboardReason");
        cr_assert_not_null(e);
        cr_assert(strstr(e, "offboardStatus: blocked"), "%s", e);
        cr_assert(strstr(e, "offboardReason: blocked by guard team-owner: owns the team cn=g-owned"), "%s", e);
        free(e);

        /* A second pass while the guard holds: nothing more is sent. */
        rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "held actions need a human: exit 1\nstdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/sessions/revoke"), 1, "revoked once");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 0);
        /* Between passes, `offboard status` shows the held steps and why. */
        const char *status_argv[] = {OB_OFFBOARD_BIN, "status", "--config", cfgpath, NULL};
        rc = ob_test_run(status_argv, 60, &out, &err);
        char *gus = out ? strstr(out, "gus") : NULL;
        cr_assert_not_null(gus, "gus is not in status:\n%s%s", out, err);
        cr_assert(strstr(gus, "transfer-records [apps]: blocked, 0 attempts, held\n"
                              "      why: guard team-owner: owns the team cn=g-owned"),
                  "status does not show gus's held transfer and why:\n%s", out);
        free(out);
        free(err);

        /* olga's team r-a keeps its other member: she stays guarded, and
         * the passes keep exiting 1. The team is handed over: dora leaves it, and gus's manager is now
         * lars. The held actions go out, naming the target as it is now. */
        const char change[] = "dn: cn=g-owned," TEAMS "\nchangetype: modify\ndelete: member\nmember: uid=dora," PEOPLE
                              "\n\ndn: uid=gus," PEOPLE "\nchangetype: modify\nreplace: manager\nmanager: uid=lars," PEOPLE
                              "\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, change), 0);
        rc = offboard("reconcile", &out, &err);
        const char back[] = "dn: cn=g-owned," TEAMS "\nchangetype: modify\nadd: member\nmember: uid=dora," PEOPLE
                            "\n\ndn: uid=gus," PEOPLE "\nchangetype: modify\nreplace: manager\nmanager: uid=dora," PEOPLE
                            "\n";
        int put_back = ob_test_ldapmodify(&srv, back);
        cr_assert_eq(rc, 1, "held actions need a human: exit 1\nstdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(put_back, 0);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/sessions/revoke"), 1, "not revoked again");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 1);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/gus"), 1);
        char body[512];
        cr_assert_str_eq(body_of(&rec, "/api/users/gus/transfer", body, sizeof(body)), "{\"to\":\"lars\",\"via\":\"manager\"}");
        e = ob_test_ldapsearch(&srv, PEOPLE, "(uid=gus)", "offboardStatus offboardReason");
        cr_assert(strstr(e, "offboardStatus: inactive"), "%s", e);
        free(e);
        ob_test_recorder_stop(&rec);
}

/* ---- stages ------------------------------------------------------------------- */

/* revoke-sessions at once; delete-user a grace period (3 s) after the
 * transition began. Only stan, stu and del are read. */
static void write_config_for(const struct ob_test_recorder *rec, const char *filter, const char *reactivate_from)
{
        FILE *f = config_open(filter, false);
        fprintf(f,
                "writeback: {enabled: false}\n"
                "state:\n"
                "  path: state.db\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s}\n"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "  delete-user:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /users/{{ account.uid }}\n"
                "    after: [revoke-sessions]\n"
                "    grace: 3s\n"
                "  reactivate:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/reactivate\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, delete-user]\n"
                "  reactivate:\n"
                "    from: [%s]\n"
                "    to: active\n"
                "    actions: [reactivate]\n",
                rec->base_url,
                reactivate_from);
        fclose(f);
}

static void write_stage_config(const struct ob_test_recorder *rec)
{
        write_config_for(rec, "(|(uid=stan)(uid=stu)(uid=del))", "locked, inactive, ended");
}

static void reconcile_ok(void)
{
        char *out = NULL, *err = NULL;
        int rc = offboard("reconcile", &out, &err);
        cr_assert(rc == 0 || rc == 1, "rc %d\nstdout: %s\nstderr: %s", rc, out, err);
        /* Issue 15: a pass's first and last lines say what ran and what came of it. */
        char end[80];
        snprintf(end, sizeof(end), "level=info event=pass_end kind=reconcile scope=whole exit=%d duration_ms=", rc);
        cr_assert(strstr(err, "level=info event=pass_start kind=reconcile scope=whole\n") && strstr(err, end), "%s",
                  err);
        free(out);
        free(err);
}

/* The latest stage due time `offboard status` shows for user, 0 if none. */
static long long due_of(const char *user)
{
        const char *argv[] = {OB_OFFBOARD_BIN, "status", "--config", cfgpath, "--format", "json", NULL};
        char *out = NULL, *err = NULL;
        ob_test_run(argv, 60, &out, &err);
        char path[300], cmd[700];
        snprintf(path, sizeof(path), "%s/status.json", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(out ? out : "", f);
        fclose(f);
        free(out);
        free(err);
        snprintf(cmd, sizeof(cmd),
                 "python3 -c \"import json,sys,datetime; d=json.load(open('%s')); print(max([int(datetime.datetime."
                 "fromisoformat(x['due'].replace('Z','+00:00')).timestamp()) for a in d['accounts'] if a['username'] "
                 "== '%s' for x in a['actions'] if x.get('due')] or [0]))\"",
                 path, user);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        long long due = 0;
        cr_assert_eq(fscanf(p, "%lld", &due), 1);
        pclose(p);
        return due;
}

/* Sleeps until the clock has passed t (seconds since 1970). */
static void wait_past(long long t)
{
        while ((long long)time(NULL) <= t)
                usleep(100 * 1000);
}

Test(rules, a_stage_waits_for_its_grace_period_recorded_when_the_transition_began_and_never_runs_early)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_stage_config(&rec);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/stan/sessions/revoke"), 1, "revoked at once");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/stan"), 0, "the delete waits for its grace period");
        long long due = due_of("stan");
        cr_assert_gt(due, 0, "the due time is recorded when the transition begins");
        /* Another pass (a restart): the due time stays (unless the stage
         * ran, when it is no longer shown) and nothing runs early. */
        reconcile_ok();
        long long again = due_of("stan");
        cr_assert(again == due || (again == 0 && count_req(&rec, "DELETE", "/api/users/stan") == 1),
                  "the due time is never moved: %lld, then %lld", due, again);
        wait_past(due);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/stan"), 1, "due: sent once");
        struct ob_test_request *q = NULL;
        size_t n = 0;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].path, "/api/users/stan") == 0)
                        cr_assert_geq(q[i].time, (double)due, "never early: sent at %.3f, due at %lld", q[i].time, due);
        ob_test_requests_free(q, n);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/stan"), 1, "and only once");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/stan/sessions/revoke"), 1);
        ob_test_recorder_stop(&rec);
}

Test(rules, a_stage_is_cancelled_when_the_account_is_reactivated_in_time)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_stage_config(&rec);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/stu/sessions/revoke"), 1);
        long long due = due_of("stu");
        cr_assert_gt(due, 0);
        const char back[] = "dn: uid=stu," PEOPLE "\nchangetype: modify\nreplace: employeeType\nemployeeType: employee\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, back), 0);
        reconcile_ok();
        const char gone[] = "dn: uid=stu," PEOPLE "\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n";
        cr_assert_eq(count_req(&rec, "POST", "/api/users/stu/reactivate"), 1);
        wait_past(due);
        reconcile_ok();
        int put_back = ob_test_ldapmodify(&srv, gone);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/stu"), 0, "reactivated in time: no delete");
        cr_assert_eq(put_back, 0);
        ob_test_recorder_stop(&rec);
}

Test(rules, an_account_deleted_straight_from_active_gets_every_stage_in_order)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_stage_config(&rec);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/del/sessions/revoke"), 0, "del is active");
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=del," PEOPLE "\nchangetype: delete\n"), 0);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/del/sessions/revoke"), 1, "deleted: revoked at once");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/del"), 0, "then the grace period");
        long long due = due_of("del");
        cr_assert_gt(due, 0);
        wait_past(due);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "DELETE", "/api/users/del"), 1);
        ob_test_recorder_stop(&rec);
}

/* ---- deleted usernames (seed 000) ------------------------------------------------ */

Test(rules, a_deleted_username_seen_again_on_a_new_entry_is_a_new_account_reported_and_never_reactivated)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        /* Reactivation from deleted is configured: were the new entry taken
         * for the old account, it would be reactivated. */
        write_config_for(&rec, "(|(uid=reu)(uid=stan))", "locked, inactive, ended, deleted");
        const char add[] = "dn: uid=reu," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: reu\n"
                           "cn: Reu Reused\nsn: Reused\nemployeeType: employee\n";
        const char del[] = "dn: uid=reu," PEOPLE "\nchangetype: delete\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0);
        reconcile_ok();
        cr_assert_eq(ob_test_ldapmodify(&srv, del), 0);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/reu/sessions/revoke"), 1, "the deleted account was revoked");
        /* The same username on a new entry (a new entryUUID). */
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0);
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "event=username_reused username=\"reu\""), "%s", err);
        const char *checks[] = {"d['summary']['usernames_reused'] == 1", "all(a['status'] == 'deleted' for a in d['accounts'] if a['username'] == 'reu')"};
        ob_test_json_check(dir, out, true, checks, 2);
        free(out);
        free(err);
        const char *text[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, NULL};
        rc = ob_test_run(text, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "Warning: 1 new account has a username a deleted account had"), "%s", out);
        free(out);
        free(err);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/reu/reactivate"), 0, "never the old account's reactivation");
        /* Recorded now: said once, not on every pass. */
        rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_null(strstr(err, "username_reused"), "%s", err);
        free(out);
        free(err);
        cr_assert_eq(ob_test_ldapmodify(&srv, del), 0);
        ob_test_recorder_stop(&rec);
}

/* ---- locked, ended, then deleted (seeds 000, 002) -------------------------------- */

Test(rules, a_locked_or_ended_account_then_deleted_gets_what_it_still_owes_as_deleted)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        FILE *f = config_open("(|(uid=lok)(uid=endy)(uid=stan))", false);
        fprintf(f,
                "writeback: {enabled: false}\n"
                "state: {path: state.db}\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s}\n"
                "actions:\n"
                "  revoke-sessions: {connector: apps, security: true, method: POST, url: '/users/{{ account.uid }}/revoke'}\n"
                "  transfer-records:\n"
                "    {connector: apps, method: POST, url: '/users/{{ account.uid }}/transfer', after: [revoke-sessions],\n"
                "     json: {to: '{{ transfer_to.uid }}'}}\n"
                "  free-license:\n"
                "    {connector: apps, method: DELETE, url: '/licenses/{{ account.uid }}', after: [revoke-sessions],\n"
                "     when: {status: [inactive, deleted]}}\n"
                "transitions:\n"
                "  lock: {to: locked, actions: [revoke-sessions]}\n"
                "  end: {to: ended, actions: [revoke-sessions, transfer-records]}\n"
                "  deactivate: {to: [inactive, deleted], actions: [revoke-sessions, transfer-records, free-license]}\n",
                man->fallback, rec.base_url);
        fclose(f);
        const char add[] = "dn: uid=lok," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: lok\ncn: Lok Locked\n"
                           "sn: Locked\nemployeeType: Locked\n\n"
                           "dn: uid=endy," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
                           "objectClass: shadowAccount\nuid: endy\ncn: Endy Ended\nsn: Ended\n"
                           "employeeType: contractor\nshadowExpire: 1000\n";
        const char del[] = "dn: uid=lok," PEOPLE "\nchangetype: delete\n\ndn: uid=endy," PEOPLE "\nchangetype: delete\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0);
        reconcile_ok();
        /* Locked keeps the license and the records; ended keeps the license. */
        cr_assert_eq(count_req(&rec, "POST", "/api/users/lok/revoke"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/lok/transfer"), 0);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/endy/revoke"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/endy/transfer"), 1);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/lok") + count_req(&rec, "DELETE", "/api/licenses/endy"), 0);
        cr_assert_eq(ob_test_ldapmodify(&srv, del), 0);
        reconcile_ok();
        /* Deleted: what each still owes, once; nothing done again. */
        cr_assert_eq(count_req(&rec, "POST", "/api/users/lok/revoke"), 1, "not revoked again");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/lok/transfer"), 1);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/lok"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/endy/revoke"), 1, "not revoked again");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/endy/transfer"), 1, "not transferred again");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/endy"), 1);
        ob_test_recorder_stop(&rec);
}

/* ---- reactivation (seed 001) ------------------------------------------------------ */

Test(rules, a_reactivation_runs_once_and_reports_what_it_does_not_restore)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        FILE *f = config_open("(uid=rea)", false);
        fprintf(f,
                "writeback: {enabled: false}\n"
                "state: {path: state.db}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s}\n"
                "actions:\n"
                "  revoke: {connector: apps, security: true, method: POST, url: '/users/{{ account.uid }}/revoke'}\n"
                "  cancel-subscriptions: {connector: apps, method: DELETE, url: '/users/{{ account.uid }}/subs'}\n"
                "  remove-groups:\n"
                "    {connector: apps, method: POST, url: '/users/{{ account.uid }}/groups/remove',\n"
                "     restored_by: [restore-groups]}\n"
                "  free-license: {connector: apps, method: DELETE, url: '/licenses/{{ account.uid }}'}\n"
                "  reactivate: {connector: apps, method: POST, url: '/users/{{ account.uid }}/reactivate'}\n"
                "  restore-groups: {connector: apps, method: POST, url: '/users/{{ account.uid }}/groups/restore'}\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, deleted]\n"
                "    actions: [revoke, cancel-subscriptions, remove-groups, free-license]\n"
                "  reactivate:\n"
                "    from: [inactive]\n"
                "    to: active\n"
                "    actions: [reactivate, restore-groups]\n",
                rec.base_url);
        fclose(f);
        const char add[] = "dn: uid=rea," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: rea\ncn: Rea Back\n"
                           "sn: Back\nemployeeType: Inactive\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/rea"), 1);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=rea," PEOPLE "\nchangetype: modify\nreplace: employeeType\n"
                                              "employeeType: employee\n"),
                     0);
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        const char *checks[] = {
                "[a['transition'] for a in d['accounts']] == ['reactivate']",
                "d['accounts'][0]['not_restored'] == ['cancel-subscriptions', 'free-license']",
        };
        ob_test_json_check(dir, out, true, checks, 2);
        free(out);
        free(err);
        const char *text[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, NULL};
        rc = ob_test_run(text, 60, &out, &err);
        cr_assert(strstr(out, "not restored: cancel-subscriptions, free-license"), "%s", out);
        free(out);
        free(err);
        reconcile_ok();
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/rea/reactivate"), 1, "the reactivate set runs once");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/rea/groups/restore"), 1);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=rea," PEOPLE "\nchangetype: delete\n"), 0);
        ob_test_recorder_stop(&rec);
}

/* ---- explain ------------------------------------------------------------------------ */

static char *explain(const char *user, bool json, int *rc)
{
        const char *argv[] = {OB_OFFBOARD_BIN, "explain", user, "--config", cfgpath, json ? "--format" : NULL, "json",
                              NULL};
        char *out = NULL, *err = NULL;
        *rc = ob_test_run(argv, 60, &out, &err);
        free(err);
        return out;
}

Test(rules, explain_shows_an_account_its_rule_inputs_and_its_recorded_history_even_when_nothing_is_owed)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config_for(&rec, "(|(uid=stan)(uid=dora))", "locked, inactive, ended");
        int rc;
        /* An active account nothing is owed for: still its status, rule inputs and record. */
        char *out = explain("dora", false, &rc);
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert(strstr(out, "dora"), "%s", out);
        cr_assert(strstr(out, "active"), "%s", out);
        cr_assert(strstr(out, "What the rules read:"), "%s", out);
        cr_assert(strstr(out, "  employeeType: employee\n"), "%s", out);
        cr_assert(strstr(out, "  pwdAccountLockedTime: (absent)\n"), "%s", out);
        cr_assert(strstr(out, "Recorded: nothing"), "%s", out);
        free(out);
        reconcile_ok();
        out = explain("stan", true, &rc);
        cr_assert_eq(rc, 0, "%s", out);
        const char *checks[] = {
                "d['kind'] == 'explain' and d['account'] == 'stan' and d['seen']",
                "[a['username'] for a in d['plan']['accounts']] == ['stan']",
                "d['attributes']['employeeType'] == 'Inactive'",
                "d['record']['pending_to'] == 'inactive' and d['record']['generation'] == 1",
                "{h['action']: h['outcome'] for h in d['history']} == {'revoke-sessions': 'done', 'delete-user': 'none'}",
                "all(h['idempotency_key'].endswith('-deactivate-1-revoke-sessions') for h in d['history'] "
                "if h['action'] == 'revoke-sessions')",
                "[h['due'] is not None for h in d['history'] if h['action'] == 'delete-user'] == [True]",
        };
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        out = explain("stan", false, &rc);
        cr_assert(strstr(out, "Recorded: no status fully applied yet, generation 1, on its way to inactive"), "%s",
                  out);
        cr_assert(strstr(out, "revoke-sessions: done, 1 attempt, HTTP 200"), "%s", out);
        cr_assert(strstr(out, "key: offboard-"), "%s", out);
        free(out);
        out = explain("nobody", false, &rc);
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert(strstr(out, "nobody: not in the directory's scope now"), "%s", out);
        free(out);
        ob_test_recorder_stop(&rec);
}

/* ---- validate (issue 15) ------------------------------------------------------------- */

Test(rules, validate_names_every_file_it_cannot_use_and_warns_of_a_credential_anyone_can_read)
{
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        char tok[300];
        snprintf(tok, sizeof(tok), "%s/apps.token", dir);
        FILE *f = fopen(tok, "w");
        cr_assert_not_null(f);
        fputs("t0ken\n", f);
        fclose(f);
        cr_assert_eq(chmod(tok, 0644), 0);
        f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  ca_file: /etc\n"
                "  bind_dn: %s\n"
                "  bind_password_file: missing-password\n"
                "  base: %s\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: https://apps.example.org\n"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    headers: {X-Key: {value_file: missing-key}}\n"
                "actions:\n"
                "  revoke: {connector: apps, url: '/users/{{ account.uid }}'}\n"
                "transitions:\n"
                "  deactivate: {to: inactive, actions: [revoke]}\n",
                srv.ldaps_uri, srv.bind_dn, srv.base);
        fclose(f);
        const char *argv[] = {OB_OFFBOARD_BIN, "validate", "--config", cfgpath, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert_null(strstr(out, "valid"), "nothing is called valid: %s", out);
        cr_assert(strstr(err, "directory.bind_password_file: ") && strstr(err, "missing-password: No such file"), "%s",
                  err);
        cr_assert(strstr(err, "directory.ca_file: /etc: not a regular file"), "%s", err);
        cr_assert(strstr(err, "connectors.apps.headers.X-Key: ") && strstr(err, "missing-key: No such file"), "%s",
                  err);
        cr_assert(strstr(err, "warning: connectors.apps.auth.token_file: "), "%s", err);
        cr_assert(strstr(err, "3 files the configuration names cannot be used"), "%s", err);
        free(out);
        free(err);
}

/* ---- "allow reactivation" (seed 001) ----------------------------------------------- */

Test(rules, an_account_not_allowed_back_has_its_mail_put_on_the_block_list_and_one_allowed_back_does_not)
{
        /* Seed 001: unless "allow reactivation" is chosen, the leaver's mail
         * goes on a block list. The choice is an attribute of the entry
         * (businessCategory here); the action's when: reads it. */
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        FILE *f = config_open("(|(uid=ally)(uid=bart))", false);
        fprintf(f,
                "writeback: {enabled: false}\n"
                "state: {path: state.db}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s}\n"
                "actions:\n"
                "  revoke: {connector: apps, security: true, method: POST, url: '/users/{{ account.uid }}/revoke'}\n"
                "  block-mail:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /blocklist\n"
                "    json: {email: '{{ account.mail }}'}\n"
                "    when: {not: {attribute: businessCategory, equals: allow-reactivation}}\n"
                "transitions:\n"
                "  deactivate: {to: [inactive, deleted], actions: [revoke, block-mail]}\n",
                rec.base_url);
        fclose(f);
        const char add[] = "dn: uid=ally," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ally\ncn: Ally\n"
                           "sn: Ally\nmail: ally@example.org\nemployeeType: Inactive\n"
                           "businessCategory: allow-reactivation\n\n"
                           "dn: uid=bart," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: bart\ncn: Bart\n"
                           "sn: Bart\nmail: bart@example.org\nemployeeType: Inactive\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0);
        reconcile_ok();
        cr_assert_eq(count_req(&rec, "POST", "/api/users/ally/revoke"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/bart/revoke"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/blocklist"), 1, "only bart's mail is blocked");
        char body[256];
        cr_assert_str_eq(body_of(&rec, "/api/blocklist", body, sizeof(body)), "{\"email\":\"bart@example.org\"}");
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=ally," PEOPLE "\nchangetype: delete\n\n"
                                              "dn: uid=bart," PEOPLE "\nchangetype: delete\n"),
                     0);
        ob_test_recorder_stop(&rec);
}

/* ---- account.teams in templates (issue 14) ------------------------------------------- */

Test(rules, templates_get_the_teams_an_account_is_a_member_of_and_those_it_leads)
{
        FILE *f = config_open("(|(uid=olga)(uid=pete))", true);
        fprintf(f,
                "state: {path: state.db}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: 'http://127.0.0.1:9/api'}\n"
                "actions:\n"
                "  notify-leads:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /notify\n"
                "    json: {teams: '{{ account.teams }}', led: '{{ account.teams_led }}',\n"
                "           text: '{{ account.uid }} left: {{ account.teams }}'}\n"
                "transitions:\n"
                "  deactivate: {to: [inactive, deleted], actions: [notify-leads]}\n");
        fclose(f);
        const char *checks[] = {
                "exec(\"b = lambda u: json.loads(next(a for a in d['accounts'] if a['username'] == u)"
                "['actions'][0]['request']['body'])\") is None",
                "b('olga') == {'teams': ['r-a', 'r-b', 'r-c', 'r-d'], 'led': ['r-a'], "
                "'text': 'olga left: r-a, r-b, r-c, r-d'}",
                "b('pete') == {'teams': [], 'led': [], 'text': 'pete left: '}",
        };
        plan_check(checks, 3);
        /* Without directory.teams there are no teams to read: a load error. */
        f = fopen(cfgpath, "r+");
        cr_assert_not_null(f);
        char *text = NULL;
        size_t len = 0;
        cr_assert_gt(getdelim(&text, &len, '\0', f), 0);
        fclose(f);
        char *t = strstr(text, "  teams: {base:");
        cr_assert_not_null(t);
        memmove(t, strchr(t, '\n') + 1, strlen(strchr(t, '\n') + 1) + 1);
        f = fopen(cfgpath, "w");
        fputs(text, f);
        fclose(f);
        free(text);
        const char *argv[] = {OB_OFFBOARD_BIN, "validate", "--config", cfgpath, NULL};
        char *out = NULL, *err = NULL;
        cr_assert_eq(ob_test_run(argv, 60, &out, &err), 2, "%s", out);
        cr_assert(strstr(err, "a template reads account.teams or account.teams_led, which need directory.teams"), "%s",
                  err);
        free(out);
        free(err);
}

/* ---- seed 000: per module, all, none, or the records that meet criteria ------ */

/* pete (a manager, who left) moves opportunities, open cases and contacts
 * outside EMEA and APAC; olga (no manager) her quotes alone; stan (neither)
 * nothing at all. tasks stay with every leaver. */
Test(rules, transfer_sends_each_module_as_configured_all_none_or_matching)
{
        struct ob_test_recorder rec = {0};
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        FILE *f = config_open("(|(uid=olga)(uid=pete)(uid=stan))", true);
        fprintf(f,
                "state: {path: state.db}\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s}\n"
                "actions:\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    json: {to: '{{ transfer_to.uid }}', modules: '{{ transfer.modules }}'}\n"
                "    modules:\n"
                "      opportunities: {records: all, when: {attribute: manager, present: true}}\n"
                "      tasks: none\n"
                "      cases: {is: {status: open}, when: {attribute: manager, present: true}}\n"
                "      contacts: {is_not: {region: [EMEA, APAC]}, when: {attribute: manager, present: true}}\n"
                "      quotes: {records: all, when: {attribute: cn, equals: Olga Owner}}\n"
                "transitions:\n"
                "  deactivate: {to: [inactive, deleted], actions: [transfer-records]}\n",
                man->fallback, rec.base_url);
        fclose(f);

        /* The plan shows the choice, per account and module. */
        const char *checks[] = {
                "exec(\"s = lambda u: next(a for a in d['accounts'] if a['username'] == u)['actions'][0]\") is None",
                "[m['records'] for m in s('pete')['modules']] == ['all', 'none', 'matching', 'matching', 'none']",
                "s('pete')['modules'][2] == {'module': 'cases', 'records': 'matching', 'is': {'status': 'open'}}",
                "s('pete')['modules'][3]['is_not'] == {'region': ['EMEA', 'APAC']}",
                "s('pete')['modules'][4] == {'module': 'quotes', 'records': 'none', 'when_false': True}",
                "s('pete')['state'] == 'owed' and not s('pete')['nothing_to_transfer']",
                "[m['records'] for m in s('olga')['modules']] == ['none', 'none', 'none', 'none', 'all']",
                "s('stan')['state'] == 'skipped' and s('stan')['nothing_to_transfer'] and 'request' not in s('stan')",
                "all(m['records'] == 'none' for m in s('stan')['modules'])",
        };
        plan_check(checks, sizeof(checks) / sizeof(checks[0]));
        const char *text_argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, NULL};
        char *out = NULL, *err = NULL;
        cr_assert_eq(ob_test_run(text_argv, 60, &out, &err), 0, "%s", err);
        cr_assert(strstr(out, "       module cases: where status is open\n") &&
                          strstr(out, "       module contacts: except where region is EMEA or APAC\n") &&
                          strstr(out, "       module tasks: none\n") &&
                          strstr(out, "       module quotes: none (its when: is false)\n"),
                  "%s", out);
        const char *stan = strstr(out, "stan  uid=stan");
        cr_assert(stan && strstr(stan, "skipped  apps\n       nothing to transfer: every module is none for this "
                                       "account\n"),
                  "%s", out);
        free(out);
        free(err);
        /* explain says it for one account. */
        int rc;
        out = explain("stan", false, &rc);
        cr_assert(out && strstr(out, "nothing to transfer: every module is none for this account\n"), "rc %d: %s", rc,
                  out);
        free(out);
        out = explain("pete", true, &rc);
        cr_assert(out && strstr(out, "{\"module\":\"cases\",\"records\":\"matching\",\"is\":{\"status\":\"open\"}}"),
                  "rc %d: %s", rc, out);
        free(out);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "a plan sends nothing");

        /* The requests carry exactly the modules that move; stan's is never sent. */
        reconcile_ok();
        char body[2048];
        cr_assert_str_eq(body_of(&rec, "/api/users/pete/transfer", body, sizeof(body)),
                         "{\"to\":\"trent\",\"modules\":[{\"module\":\"opportunities\",\"records\":\"all\"},"
                         "{\"module\":\"cases\",\"records\":\"matching\",\"is\":{\"status\":\"open\"}},"
                         "{\"module\":\"contacts\",\"records\":\"matching\",\"is_not\":{\"region\":"
                         "[\"EMEA\",\"APAC\"]}}]}");
        cr_assert_str_eq(body_of(&rec, "/api/users/olga/transfer", body, sizeof(body)),
                         "{\"to\":\"dora\",\"modules\":[{\"module\":\"quotes\",\"records\":\"all\"}]}");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/pete/transfer"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/stan/transfer"), 0, "nothing to transfer, nothing sent");
        cr_assert_eq(ob_test_recorder_count(&rec), 2);

        /* Recorded as skipped: a second pass owes stan nothing either. */
        reconcile_ok();
        cr_assert_eq(ob_test_recorder_count(&rec), 2);
        ob_test_recorder_stop(&rec);
}

/* ---- connector guards (seed 002) ---------------------------------------------- */

/* As write_guards_config, with "inbox", a second connector to the recorder
 * whose answers take at most a second, and "closed", to a closed port. */
static void write_connector_guard_config(const struct ob_test_recorder *rec, const char *filter, const char *guards)
{
        char more[512];
        snprintf(more, sizeof(more),
                 "  inbox: {type: http, base_url: '%s/inbox', timeout: 1s}\n"
                 "  closed: {type: http, base_url: 'http://127.0.0.1:9/api', timeout: 5s}\n",
                 rec->base_url);
        write_guards_config(rec, filter, guards, ", concurrency: 2", more);
}

static const char open_records_guard[] =
        "guards:\n"
        "  open-records:\n"
        "    connector: apps\n"
        "    url: /users/{{ account.uid }}/open-records\n"
        "    blocks_when: {json: open.count, above: 0}\n";

/* The recorder's answers: uid has n open records, everyone else none. */
static char *open_records_rules(const char *uid, int n)
{
        char *rules = NULL;
        cr_assert_gt(asprintf(&rules,
                              "[{\"match\": \"^/api/users/%s/open-records$\", \"method\": \"GET\", "
                              "\"body\": \"{\\\"open\\\": {\\\"count\\\": %d}}\"},"
                              " {\"match\": \"/open-records$\", \"method\": \"GET\", "
                              "\"body\": \"{\\\"open\\\": {\\\"count\\\": 0}}\"}]",
                              uid, n),
                     0);
        return rules;
}

/* The header of the first request to path, or NULL (the caller frees). */
static char *header_of(const struct ob_test_recorder *rec, const char *path, const char *name)
{
        struct ob_test_request *q = NULL;
        size_t n = 0;
        cr_assert_eq(ob_test_recorder_requests(rec, &q, &n), 0);
        char *v = NULL;
        for (size_t i = 0; i < n && !v; i++)
                if (strcmp(q[i].path, path) == 0 && ob_test_request_header(&q[i], name))
                        v = strdup(ob_test_request_header(&q[i], name));
        ob_test_requests_free(q, n);
        return v;
}

Test(rules, a_connector_guard_holds_all_but_revocation_while_the_endpoint_reports_open_records_and_releases_when_it_clears)
{
        struct ob_test_recorder rec = {0};
        char *rules = open_records_rules("gus", 2);
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        free(rules);
        write_connector_guard_config(&rec, "(|(uid=gus)(uid=wes)(uid=dora))", open_records_guard);
        char *out = NULL, *err = NULL;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "held actions need a human: exit 1\nstdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "open.count is 2, above 0"), "the report says why: %s", out);
        free(out);
        free(err);
        cr_assert_eq(count_req(&rec, "GET", "/api/users/gus/open-records"), 1);
        cr_assert_eq(count_req(&rec, "GET", "/api/users/wes/open-records"), 1);
        cr_assert_eq(count_req(&rec, "GET", "/api/users/dora/open-records"), 0, "an active account is not asked");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/sessions/revoke"), 1, "revocation is never held");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 0, "the transfer waits for the guard");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/gus"), 0);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/wes/transfer"), 1, "wes has nothing open");
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/wes"), 1);
        /* A read: no idempotency key, nothing recorded as an action. */
        char *key = header_of(&rec, "/api/users/gus/open-records", "Idempotency-Key");
        cr_assert_null(key, "a guard's question carries no idempotency key: %s", key);
        char *e = ob_test_ldapsearch(&srv, PEOPLE, "(uid=gus)", "offboardStatus offboardReason");
        cr_assert_not_null(e);
        cr_assert(strstr(e, "offboardStatus: blocked"), "%s", e);
        cr_assert(strstr(e, "blocked by guard open-records: GET "), "%s", e);
        cr_assert(strstr(e, "/api/users/gus/open-records: open.count is 2, above 0"), "%s", e);
        free(e);
        /* The records are handed over, and gus's manager is now lars: the
         * next pass sends the rest, naming the target as it is now. */
        rules = open_records_rules("gus", 0);
        cr_assert_eq(ob_test_recorder_set_rules(&rec, rules), 0);
        free(rules);
        const char change[] = "dn: uid=gus," PEOPLE "\nchangetype: modify\nreplace: manager\nmanager: uid=lars," PEOPLE
                              "\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, change), 0);
        rc = offboard("reconcile", &out, &err);
        const char back[] = "dn: uid=gus," PEOPLE "\nchangetype: modify\nreplace: manager\nmanager: uid=dora," PEOPLE
                            "\n";
        int put_back = ob_test_ldapmodify(&srv, back);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(put_back, 0);
        cr_assert_eq(count_req(&rec, "GET", "/api/users/gus/open-records"), 2);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/sessions/revoke"), 1, "not revoked again");
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 1);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/gus"), 1);
        char body[512];
        cr_assert_str_eq(body_of(&rec, "/api/users/gus/transfer", body, sizeof(body)),
                         "{\"to\":\"lars\",\"via\":\"manager\"}");
        e = ob_test_ldapsearch(&srv, PEOPLE, "(uid=gus)", "offboardStatus offboardReason");
        cr_assert(strstr(e, "offboardStatus: inactive"), "%s", e);
        free(e);

        /* Nothing owed, nothing asked; nor is wes, back at work (a status
         * change that deactivates nothing). */
        int before = ob_test_recorder_count(&rec);
        const char wes_back[] = "dn: uid=wes," PEOPLE "\nchangetype: modify\nreplace: employeeType\nemployeeType: employee\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, wes_back), 0);
        rc = offboard("reconcile", &out, &err);
        const char wes_gone[] = "dn: uid=wes," PEOPLE "\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n";
        put_back = ob_test_ldapmodify(&srv, wes_gone);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "\"username\": \"wes\"") || strstr(out, "\"username\":\"wes\""),
                  "wes's change is reported: %s", out);
        free(out);
        free(err);
        cr_assert_eq(put_back, 0);
        cr_assert_eq(ob_test_recorder_count(&rec), before, "no request for an account with nothing owed");
        ob_test_recorder_stop(&rec);
}

Test(rules, a_connector_guard_that_cannot_be_asked_holds_and_says_why)
{
        struct ob_test_recorder rec = {0};
        const char rules[] =
                "[{\"match\": \"^/api/users/gus/\", \"status\": 500, \"body\": \"{\\\"open\\\": {\\\"count\\\": 0}}\"},"
                " {\"match\": \"^/api/users/wes/\", \"status\": 401},"
                " {\"match\": \"^/api/users/vic/\", \"body\": \"<html>sign in</html>\", \"content_type\": \"text/html\"},"
                " {\"match\": \"^/api/users/sol/\", \"body\": \"{\\\"open\\\": {}}\"},"
                " {\"match\": \"^/inbox/users/pam/\", \"delay_ms\": 3000, \"body\": \"{\\\"count\\\": 0}\"},"
                " {\"match\": \"^/api/\", \"body\": \"{\\\"open\\\": {\\\"count\\\": 0}}\"},"
                " {\"match\": \"^/inbox/\", \"body\": \"{\\\"count\\\": 0}\"}]";
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        write_connector_guard_config(&rec, "(|(uid=gus)(uid=wes)(uid=vic)(uid=sol)(uid=pam)(uid=pete))",
                                     "guards:\n"
                                     "  open-records:\n"
                                     "    connector: apps\n"
                                     "    url: /users/{{ account.uid }}/open-records\n"
                                     "    blocks_when: {json: open.count}\n"
                                     "  inbox:\n"
                                     "    connector: inbox\n"
                                     "    url: /users/{{ account.uid }}/alerts\n"
                                     "    blocks_when: {json: count}\n");
        const char *checks[] = {
                /* g(u): {guard: (block, reason)}; h(u): the transfer's hold_reason */
                "exec(\"def g(u):\\n a = next(a for a in d['accounts'] if a['username'] == u)\\n return "
                "{x['name']: (x['block'], x['reason']) for x in a['guards']}\") is None",
                "exec(\"def h(u):\\n a = next(a for a in d['accounts'] if a['username'] == u)\\n return "
                "{s['name']: s['hold_reason'] for s in a['actions']}\") is None",
                "g('gus')['open-records'][0] and g('gus')['open-records'][1].startswith('cannot ask: GET http')",
                "g('gus')['open-records'][1].endswith('/api/users/gus/open-records answered HTTP 500')",
                "g('wes')['open-records'][1].endswith('/api/users/wes/open-records answered HTTP 401')",
                "g('vic')['open-records'][1].startswith('cannot read the answer to GET ') and "
                "g('vic')['open-records'][1].endswith(': not JSON')",
                "g('sol')['open-records'][1].endswith(': no number or list at open.count')",
                "g('pam')['inbox'][0] and g('pam')['inbox'][1].startswith('cannot ask: GET ') and 'timed out' in "
                "g('pam')['inbox'][1].lower()",
                "'open-records' not in g('pete') and 'inbox' not in g('pete')",
                "h('gus')['revoke-sessions'] is None and h('gus')['transfer-records'].startswith('guard open-records: "
                "cannot ask')",
                "h('pete')['transfer-records'] is None",
        };
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        /* plan asks (a read), and sends nothing else. */
        cr_assert_eq(count_req(&rec, "GET", "/api/users/gus/open-records"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/pete/sessions/revoke"), 0, "a plan sends nothing");

        /* A connector nobody listens on: closed port, no answer. */
        write_connector_guard_config(&rec, "(uid=gus)",
                                     "guards:\n"
                                     "  down:\n"
                                     "    connector: closed\n"
                                     "    url: /users/{{ account.uid }}/open-records\n"
                                     "    blocks_when: {status: [200]}\n"
                                     "    clear_status: [404]\n");
        const char *down[] = {
                "exec(\"a = next(a for a in d['accounts'] if a['username'] == 'gus')\") is None",
                "a['blocked'].startswith('guard down: cannot ask: GET http://127.0.0.1:9/api/users/gus/open-records: ')",
                "[s['hold_reason'] is None for s in a['actions']] == [True, False, False]",
        };
        rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        ob_test_json_check(dir, out, true, down, sizeof(down) / sizeof(down[0]));
        free(out);
        free(err);
        /* explain asks too, and says what the guard said and what it holds. */
        out = explain("gus", false, &rc);
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert(strstr(out, "guard:      down: cannot ask: GET http://127.0.0.1:9/api/users/gus/open-records: ") &&
                          strstr(out, "(holds all but security actions)"),
                  "%s", out);
        free(out);
        ob_test_recorder_stop(&rec);
}

Test(rules, a_warning_connector_guard_reports_but_does_not_hold)
{
        struct ob_test_recorder rec = {0};
        const char rules[] = "[{\"match\": \"^/api/users/gus/open-records$\", \"body\": \"{\\\"open\\\": "
                             "{\\\"count\\\": [\\\"task-1\\\", \\\"approval-7\\\"]}}\"},"
                             " {\"match\": \"^/api/users/wes/open-records$\", \"status\": 503}]";
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        write_connector_guard_config(&rec, "(|(uid=gus)(uid=wes))",
                                     "guards:\n"
                                     "  open-records:\n"
                                     "    connector: apps\n"
                                     "    url: /users/{{ account.uid }}/open-records\n"
                                     "    blocks_when: {json: open.count, above: 1}\n"
                                     "    warn: true\n");
        char *out = NULL, *err = NULL;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 0, "a warning holds nothing\nstdout: %s\nstderr: %s", out, err);
        const char *checks[] = {
                "exec(\"g = lambda u: next(a for a in d['accounts'] if a['username'] == u)\") is None",
                "[(x['name'], x['block']) for x in g('gus')['guards']] == [('open-records', False)]",
                "g('gus')['guards'][0]['reason'].endswith('/api/users/gus/open-records: open.count is 2, above 1')",
                "g('gus')['blocked'] is None and g('wes')['blocked'] is None",
                "g('wes')['guards'][0]['reason'].endswith('answered HTTP 503')",
        };
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/gus/transfer"), 1);
        cr_assert_eq(count_req(&rec, "DELETE", "/api/licenses/gus"), 1);
        cr_assert_eq(count_req(&rec, "POST", "/api/users/wes/transfer"), 1);
        char *e = ob_test_ldapsearch(&srv, PEOPLE, "(uid=gus)", "offboardStatus");
        cr_assert(strstr(e, "offboardStatus: inactive"), "%s", e);
        free(e);
        ob_test_recorder_stop(&rec);
}

/* The window's accounts are asked at once, never more at a time than the
 * connector's concurrency (2), and never an active one. */
Test(rules, connector_guards_ask_the_windows_accounts_at_once_within_the_connectors_concurrency)
{
        struct ob_test_recorder rec = {0};
        const char rules[] = "[{\"match\": \"/open-records$\", \"delay_ms\": 200, \"body\": \"{\\\"open\\\": "
                             "{\\\"count\\\": 0}}\"}]";
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        write_connector_guard_config(&rec, "(objectClass=inetOrgPerson)", open_records_guard);
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        const char *checks[] = {
                "exec(\"n = sum(1 for a in d['accounts'] if a['status'] != 'active' and a['actions'])\") is None",
                "n >= 5",
                "all(not a['guards'] for a in d['accounts'])",
        };
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        struct ob_test_request *q = NULL;
        size_t n = 0;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        cr_assert_geq(n, 5);
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(q[i].method, "GET");
                cr_assert_null(strstr(q[i].path, "/dora/"), "dora is active: %s", q[i].path);
                cr_assert_null(strstr(q[i].path, "/lars/"), "lars is active: %s", q[i].path);
        }
        ob_test_requests_free(q, n);
        cr_assert_eq(ob_test_recorder_max_inflight(&rec), 2, "two at a time, as the connector allows");
        ob_test_recorder_stop(&rec);
}

/* validate's errors for a connector guard, each at its line and column. */
Test(rules, a_connector_guards_configuration_errors_name_file_line_and_column)
{
        struct {
                const char *guard;
                const char *want;
        } cases[] = {
                {"    connector: nowhere\n    url: /x\n    blocks_when: {status: [200]}\n",
                 ":3:16: guards.g.connector: unknown connector 'nowhere' (define it under connectors:)"},
                {"    connector: dir\n    url: /x\n    blocks_when: {status: [200]}\n",
                 ":3:16: guards.g.connector: 'dir' is a ldap connector; a guard asks an http connector"},
                {"    connector: apps\n    url: '/users/{{ transfer_to.uid }}/open'\n    blocks_when: {status: [200]}\n",
                 ":4:21: guards.g.url: a guard's url may use the account's own fields"},
                {"    connector: apps\n    url: /users/{{ account.nope }}/open\n    blocks_when: {status: [200]}\n",
                 ":4:20: guards.g.url: unknown template field 'account.nope'"},
                {"    connector: apps\n    url: users/{{ account.uid }}\n    blocks_when: {status: [200]}\n",
                 ":4:10: guards.g.url must start with '/'"},
                {"    connector: apps\n    url: /x\n    blocks_when: {json: count, status: [200]}\n",
                 ":5:18: guards.g.blocks_when: one test: json or status"},
                {"    connector: apps\n    url: /x\n",
                 ":3:5: guards.g: missing required key 'blocks_when'"},
                {"    member_of: 'cn=x," GROUPS "'\n    url: /x\n",
                 ":4:10: guards.g.url: only a connector: guard asks an endpoint"},
        };
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FILE *f = fopen(cfgpath, "w");
                cr_assert_not_null(f);
                fprintf(f,
                        "guards:\n"
                        "  g:\n"
                        "%s"
                        "directory:\n"
                        "  uri: %s\n"
                        "  ca_file: %s\n"
                        "  bind_dn: %s\n"
                        "  bind_password_file: %s\n"
                        "  base: %s\n"
                        "mappings: [openldap]\n"
                        "connectors:\n"
                        "  apps: {type: http, base_url: 'https://apps.example.org'}\n"
                        "  dir: {type: ldap, groups_base: '" GROUPS "'}\n"
                        "actions:\n"
                        "  revoke: {connector: apps, url: '/users/{{ account.uid }}'}\n"
                        "transitions:\n"
                        "  deactivate: {to: inactive, actions: [revoke]}\n",
                        cases[i].guard, srv.ldaps_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base);
                fclose(f);
                const char *argv[] = {OB_OFFBOARD_BIN, "validate", "--config", cfgpath, NULL};
                char *out = NULL, *err = NULL;
                int rc = ob_test_run(argv, 60, &out, &err);
                cr_assert_eq(rc, 2, "case %zu\nstdout: %s\nstderr: %s", i, out, err);
                char want[512];
                snprintf(want, sizeof(want), "%s%s", cfgpath, cases[i].want);
                cr_assert(strstr(err, want), "case %zu: want %s\nstderr: %s", i, want, err);
                free(out);
                free(err);
        }
}

/* The guard asks with the connector's credentials, and no output carries
 * them, even when the endpoint echoes them back. */
Test(rules, a_connector_guard_asks_with_the_connectors_auth_and_never_shows_it)
{
        struct ob_test_recorder rec = {0};
        const char rules[] = "[{\"match\": \"/open-records$\", \"echo_header\": \"Authorization\", "
                             "\"body\": \"{\\\"open\\\": {\\\"count\\\": \\\"{echo}\\\"}}\"}]";
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        char tok[300];
        snprintf(tok, sizeof(tok), "%s/apps.token", dir);
        FILE *t = fopen(tok, "w");
        cr_assert_not_null(t);
        fputs("s3cr3t-guard-token\n", t);
        fclose(t);
        cr_assert_eq(chmod(tok, 0600), 0);
        FILE *f = config_open("(uid=gus)", true);
        fprintf(f,
                "state: {path: state.db}\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "guards:\n"
                "  open-records:\n"
                "    connector: apps\n"
                "    url: /users/{{ account.uid }}/open-records\n"
                "    blocks_when: {json: open.count}\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: '%s/api'\n"
                "    allow_insecure: true\n"
                "    auth: {type: bearer, token_file: %s}\n"
                "    headers: {X-Asked-For: '{{ account.uid }}'}\n"
                "actions:\n"
                "  free-license: {connector: apps, method: DELETE, url: '/licenses/{{ account.uid }}'}\n"
                "transitions:\n"
                "  deactivate: {to: [inactive, ended, deleted], actions: [free-license]}\n",
                man->fallback, rec.base_url, tok);
        fclose(f);
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--format", "json", NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "no number or list at open.count"), "%s", out);
        cr_assert_null(strstr(out, "s3cr3t"), "%s", out);
        cr_assert_null(strstr(err, "s3cr3t"), "%s", err);
        free(out);
        free(err);
        char *auth = header_of(&rec, "/api/users/gus/open-records", "Authorization");
        cr_assert_str_eq(auth ? auth : "", "Bearer s3cr3t-guard-token");
        free(auth);
        char *mail = header_of(&rec, "/api/users/gus/open-records", "X-Asked-For");
        cr_assert_str_eq(mail ? mail : "", "gus", "the connector's headers go with the question");
        free(mail);
        ob_test_recorder_stop(&rec);
}
