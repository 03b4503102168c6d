/* The business rules of the seeds (../shared/seeds/, issue 14), each tested
 * by name against a real slapd holding a small directory built for them:
 * the fixture's fixed people plus the leavers, leaders and teams below.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static char dir[256];
static char cfgpath[300];

#define PEOPLE "ou=people,dc=example,dc=org"
#define TEAMS "ou=teams,dc=example,dc=org"

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
        "member: uid=lars," PEOPLE "\n";

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        struct ob_test_slapd s;
        if (ob_test_slapd_share(0) < 0 || ob_test_slapd_attach(&s) < 0) {
                fprintf(stderr, "could not start slapd\n");
                return;
        }
        if (ob_test_ldapmodify(&s, rules_ldif) != 0)
                fprintf(stderr, "could not add the rules' entries\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        cr_assert_eq(ob_test_slapd_attach(&srv), 0, "slapd is not running");
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        snprintf(dir, sizeof(dir), "/tmp/ob-rules-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        char now[64];
        snprintf(now, sizeof(now), "%lld", man->today_days * 86400 + 43200);
        setenv("OFFBOARD_NOW", now, 1);
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

static void teardown(void)
{
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 60);

/* The configuration, with `transfer:` as given. Nothing is sent: the tests
 * plan. */
static void write_config(const char *transfer)
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
                "  filter: (objectClass=inetOrgPerson)\n"
                "  teams:\n"
                "    base: " TEAMS "\n"
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
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, transfer);
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
