/* The ldap connector against a real slapd: `offboard reconcile` removes the
 * leavers from groupOfNames member, groupOfUniqueNames uniqueMember and
 * posixGroup memberUid, sets and clears attributes and moves the entries
 * to another OU; the leavers' DNs need every RFC 4514 escape. The entries
 * are this test's own (tests/fixtures/ldap/connector.ldif), selected by the
 * filter, so the generated fixture's people play no part.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "directory.h"
#include "ldap_conn.h"
#include "loop.h"
#include "plan.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static char dir[256];
static char cfgpath[300];

#define PEOPLE "ou=people,dc=example,dc=org"
#define GROUPS "ou=lcgroups,dc=example,dc=org"
#define DISABLED "ou=disabled," PEOPLE
/* cn=" #Zoë, "Q"+\x" and cn="#2 Ünal" as slapd writes them (hex pairs),
 * and as the text report shows them (a backslash doubled). */
#define ZOE_RDN "cn=\\20#Zoë\\2C \\22Q\\22\\2B\\5Cx"
#define ZOE_TXT "cn=\\\\20#Zoë\\\\2C \\\\22Q\\\\22\\\\2B\\\\5Cx"
#define UNAL_TXT "cn=\\\\232 Ünal"

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(2) < 0) {
                fprintf(stderr, "could not start slapd\n");
                return;
        }
        struct ob_test_slapd s;
        char *ldif = ob_test_read_file(OB_SOURCE_DIR "/tests/fixtures/ldap/connector.ldif");
        if (ob_test_slapd_attach(&s) < 0 || !ldif || ob_test_ldapmodify(&s, ldif) != 0)
                fprintf(stderr, "could not load tests/fixtures/ldap/connector.ldif\n");
        free(ldif);
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        cr_assert_eq(ob_test_slapd_attach(&srv), 0, "slapd is not running");
        snprintf(dir, sizeof(dir), "/tmp/ob-ldapc-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

static void teardown(void)
{
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(ldap_connector, .init = setup, .fini = teardown, .timeout = 120);

/* filter: the accounts; admin: the connector binds as the administrator
 * (else as the service account, which may not write groups); retry: the
 * connector's retry: mapping. */
static void write_config_with(const char *filter, bool admin, const char *retry)
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
                "  base: " PEOPLE "\n"
                "  filter: \"%s\"\n"
                "  timeout: 10s\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "  assertion_attribute: entryCSN\n"
                "state:\n"
                "  path: state.db\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  dir:\n"
                "    type: ldap\n"
                /* The service account may write only the status attributes. */
                "%s%s%s%s%s"
                "    groups_base: " GROUPS "\n"
                "    timeout: 10s\n"
                "    retry: %s\n"
                "actions:\n"
                "  leave-groups:\n"
                "    connector: dir\n"
                "    operation: remove_from_groups\n"
                "    attributes: [member, uniqueMember, memberUid]\n"
                "  mark:\n"
                "    connector: dir\n"
                "    operation: modify\n"
                "    set: {title: \"left: {{ status.reason }}\"}\n"
                "    clear: [telephoneNumber]\n"
                "  park:\n"
                "    connector: dir\n"
                "    operation: move\n"
                "    new_parent: " DISABLED "\n"
                "    after: [leave-groups, mark]\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [leave-groups, mark, park]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, filter, admin ? "    bind_dn: " : "",
                admin ? srv.admin_dn : "", admin ? "\n    bind_password_file: " : "", admin ? srv.admin_pw_file : "",
                admin ? "\n" : "", retry);
        fclose(f);
}

static void write_config(void)
{
        write_config_with("(&(objectClass=inetOrgPerson)(uid=lc-*))", true, "{attempts: 1}");
}

static int offboard(const char *cmd, const char *extra1, const char *extra2, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", cfgpath, extra1, extra2, NULL};
        return ob_test_run(argv, 60, out, err);
}

static char *search(const char *base, const char *filter, const char *attrs)
{
        char *s = ob_test_ldapsearch(&srv, base, filter, attrs);
        cr_assert_not_null(s, "ldapsearch %s %s failed", base, filter);
        return s;
}

Test(ldap_connector, leavers_leave_every_group_are_marked_and_moved_once)
{
        write_config();
        char *out, *err;

        int rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);

        /* The plan says what each step will do, with the DNs as the server has them. */
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "LDAP remove_from_groups " UNAL_TXT "," PEOPLE), "%s", out);
        cr_assert(strstr(out, "memberUid: lc-unal"), "%s", out);
        cr_assert(strstr(out, "new DN: " ZOE_TXT "," DISABLED), "%s", out);
        cr_assert(strstr(out, "set title: left: marked inactive in the directory"), "%s", out);
        cr_assert(strstr(out, "clear telephoneNumber"), "%s", out);
        free(out);
        free(err);
        rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        const char *checks[] = {
                "len(d['accounts']) == 2",
                "all([s['request']['operation'] for s in a['actions']] == ['remove_from_groups', 'modify', 'move'] "
                "for a in d['accounts'])",
                "any(s['request'].get('new_dn') == 'cn=\\\\232 \\u00dcnal," DISABLED "' for a in d['accounts'] for s "
                "in a['actions'])",
                "any('memberUid: lc-zoe' in s['request'].get('remove', []) for a in d['accounts'] for s in "
                "a['actions'])",
        };
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);

        /* First pass: every step runs. The write-back meets the entries at
         * their old DNs, gone: the next pass writes them where they are. */
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "the write-backs failed: stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "actions: 6 done, 0 failed"), "%s", out);
        cr_assert_eq(ob_test_count(err, "event=ldap_group_removed"), 5, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_count(err, "event=ldap_moved"), 2, "%s", err);
        cr_assert_eq(ob_test_count(err, "event=ldap_modified"), 2, "%s", err);
        cr_assert(strstr(err, "attribute=memberUid group=\"cn=posix," GROUPS "\""), "%s", err);
        cr_assert_eq(ob_test_count(err, "event=writeback_failed"), 2, "%s", err);
        free(out);
        free(err);

        char *g = search(GROUPS, "(cn=names)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 1, "%s", g);
        cr_assert(strstr(g, "member: uid=lc-keep," PEOPLE), "%s", g);
        free(g);
        g = search(GROUPS, "(cn=unique)", "uniqueMember");
        cr_assert_eq(ob_test_count(g, "uniqueMember:"), 1, "%s", g);
        cr_assert(strstr(g, "uniqueMember: uid=lc-keep," PEOPLE), "%s", g);
        free(g);
        g = search(GROUPS, "(cn=posix)", "memberUid");
        cr_assert_eq(ob_test_count(g, "memberUid:"), 1, "%s", g);
        cr_assert(strstr(g, "memberUid: lc-keep"), "%s", g);
        free(g);
        /* Outside groups_base: left alone. */
        g = search("ou=lcother,dc=example,dc=org", "(cn=outside)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 1, "%s", g);
        free(g);

        /* Moved, RDN intact, title set, telephone cleared. */
        char *e = search(DISABLED, "(uid=lc-zoe)", "cn title telephoneNumber");
        cr_assert(strstr(e, "cn:: ICNab8OrLCAiUSIrXHg="), "the RDN value changed: %s", e); /* " #Zoë, "Q"+\x" */
        cr_assert(strstr(e, "title: left: marked inactive in the directory"), "%s", e);
        cr_assert_null(strstr(e, "telephoneNumber"), "%s", e);
        free(e);
        e = search(DISABLED, "(uid=lc-unal)", "cn");
        cr_assert(strstr(e, "uid=lc-unal") || strstr(e, "cn::"), "%s", e);
        free(e);
        e = ob_test_ldapsearch_scope(&srv, PEOPLE, "one", "(uid=lc-*)", "uid");
        cr_assert_not_null(e);
        cr_assert_null(strstr(e, "lc-zoe"), "%s", e);
        cr_assert_null(strstr(e, "lc-unal"), "%s", e);
        free(e);

        /* Second pass: nothing runs again; the write-back lands at the new DNs. */
        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_null(strstr(err, "event=ldap_"), "%s", err);
        cr_assert_null(strstr(err, "event=writeback_failed"), "%s", err);
        const char *second[] = {
                "d['summary']['actions_owed'] == 0",
                "len(d['accounts']) == 2",
                "all(a['writeback_result'] == 'written' and '," DISABLED "' in a['dn'] for a in d['accounts'])",
        };
        ob_test_json_check(dir, out, true, second, sizeof(second) / sizeof(second[0]));
        free(out);
        free(err);
        e = search(DISABLED, "(uid=lc-*)", "offboardStatus");
        cr_assert_eq(ob_test_count(e, "offboardStatus: inactive"), 2, "%s", e);
        free(e);

        /* A third pass has nothing left to do. */
        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        cr_assert_null(strstr(err, "event=ldap_"), "%s", err);
        cr_assert_null(strstr(err, "event=writeback"), "%s", err);
        free(out);
        free(err);
}

/* ---- the connector on its own, on a loop ---- */

struct outcome {
        int calls;
        struct ob_response resp;
        char detail[OB_STATE_DETAIL_MAX + 1]; /* resp.detail, which dies with the call */
};

static void on_done(const struct ob_response *resp, void *ud)
{
        struct outcome *o = ud;
        o->calls++;
        o->resp = *resp;
        snprintf(o->detail, sizeof(o->detail), "%s", resp->detail ? resp->detail : "");
        o->resp.detail = resp->detail ? o->detail : NULL;
}

static struct outcome *run_step_p(const struct ob_config *cfg, const char *action, struct ob_ldap_rendered *q)
{
        const struct ob_action *a = NULL;
        for (size_t i = 0; i < cfg->nactions; i++)
                if (strcmp(cfg->actions[i].name, action) == 0)
                        a = &cfg->actions[i];
        cr_assert_not_null(a);
        struct ob_loop *loop;
        cr_assert_eq(ob_loop_new(&loop), 0);
        void *c = NULL;
        cr_assert_eq(ob_connector_new(loop, a->connector, &c), 0);
        struct ob_step s = {.action = a, .state = OB_STEP_OWED, .rendered = q};
        static struct outcome o;
        memset(&o, 0, sizeof(o));
        cr_assert_eq(ob_connector_start(a->connector, c, &s, on_done, &o), 0);
        cr_assert_eq(o.calls, 0, "the outcome came inside start");
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(o.calls, 1);
        ob_connector_free(a->connector, c);
        ob_loop_free(loop);
        return &o;
}

/* The response by value (its detail in the static outcome, valid until the next step). */
static struct outcome run_step(const struct ob_config *cfg, const char *action, struct ob_ldap_rendered *q)
{
        struct outcome o = *run_step_p(cfg, action, q);
        return o;
}

Test(ldap_connector, the_outcome_says_what_was_removed_and_a_second_run_removes_nothing)
{
        write_config();
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(cfgpath, &cfg, &cerr), 0, "%s", cerr.message);
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = (char *)"uid=lc-cora," PEOPLE,
                .uid = (char *)"lc-cora",
                .groups_base = GROUPS,
                .group_attrs = OB_LDAP_MEMBER | OB_LDAP_UNIQUE_MEMBER | OB_LDAP_MEMBER_UID,
        };
        struct outcome o = run_step(cfg, "leave-groups", &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert_str_eq(o.resp.excerpt, "removed member from cn=cora," GROUPS);
        char *g = search(GROUPS, "(cn=cora)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 1, "%s", g);
        cr_assert(strstr(g, "member: uid=lc-keep," PEOPLE), "%s", g);
        free(g);

        o = run_step(cfg, "leave-groups", &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert_str_eq(o.resp.excerpt, "listed in no group under " GROUPS);

        /* A groupOfNames must keep a member: the last one cannot go, and
         * the step fails with the server's word, after what it did remove. */
        cr_assert_eq(ob_test_ldapmodify(&srv,
                                        "dn: cn=duo," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                        "cn: duo\nmember: uid=solo-sam," PEOPLE "\nmember: uid=lc-keep," PEOPLE "\n\n"
                                        "dn: cn=solo," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                        "cn: solo\nmember: uid=solo-sam," PEOPLE "\n"),
                     0);
        struct ob_ldap_rendered solo = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = (char *)"uid=solo-sam," PEOPLE,
                .groups_base = GROUPS,
                .group_attrs = OB_LDAP_MEMBER,
        };
        o = run_step(cfg, "leave-groups", &solo);
        cr_assert_eq(o.resp.result, -OB_EDIRECTORY);
        cr_assert(strstr(o.resp.error, "removing member from cn=solo," GROUPS), "%s", o.resp.error);
        cr_assert_str_eq(o.resp.excerpt, "removed member from cn=duo," GROUPS,
                         "slapd sends the groups in the order they were added");

        /* A groups_base that is not there is no "listed nowhere". */
        q.groups_base = "ou=nowhere,dc=example,dc=org";
        o = run_step(cfg, "leave-groups", &q);
        cr_assert_neq(o.resp.result, 0, "%s", o.resp.excerpt);
        cr_assert(strstr(o.resp.error, "ou=nowhere,dc=example,dc=org"), "%s", o.resp.error);

        /* A move whose entry is gone and not at the new DN either fails. */
        struct ob_ldap_rendered m = {
                .op = OB_LDAP_MOVE,
                .dn = (char *)"uid=lc-nobody," PEOPLE,
                .new_parent = DISABLED,
        };
        o = run_step(cfg, "park", &m);
        cr_assert_eq(o.resp.result, -OB_EDIRECTORY);
        cr_assert(strstr(o.resp.error, "neither there nor at uid=lc-nobody," DISABLED), "%s", o.resp.error);
        cr_assert(!o.resp.transport, "a missing entry is not worth a retry");
        ob_config_free(cfg);
}

/* ---- recorded memberships, and restoring them ---- */

/* Deactivation removes from groups (leave-groups); reactivation puts back
 * what it recorded (regain-groups, restore_groups from leave-groups). */
static void write_restore_config_as(const char *filter, bool admin)
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
                "  base: " PEOPLE "\n"
                "  filter: \"%s\"\n"
                "  timeout: 10s\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "  assertion_attribute: entryCSN\n"
                "state:\n"
                "  path: %s/state.db\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  dir:\n"
                "    type: ldap\n"
                "    bind_dn: %s\n"
                "    bind_password_file: %s\n"
                "    groups_base: " GROUPS "\n"
                "    timeout: 10s\n"
                "    retry: {attempts: 1}\n"
                "actions:\n"
                "  leave-groups:\n"
                "    connector: dir\n"
                "    operation: remove_from_groups\n"
                "  regain-groups:\n"
                "    connector: dir\n"
                "    operation: restore_groups\n"
                "    from: leave-groups\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [leave-groups]\n"
                "  reactivate:\n"
                "    from: [locked, inactive, ended]\n"
                "    to: [active]\n"
                "    actions: [regain-groups]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, filter, dir,
                admin ? srv.admin_dn : srv.bind_dn, admin ? srv.admin_pw_file : srv.bind_pw_file);
        fclose(f);
}

static void write_restore_config(const char *filter)
{
        write_restore_config_as(filter, true);
}

/* The rows of memberships_named for action, "attribute value group" each,
 * in order, read with SQLite as an administrator would. */
static char *recorded_rows(const char *action)
{
        char path[400], *out = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/state.db", dir);
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_prepare_v2(db,
                                        "SELECT attribute, value, group_dn FROM memberships_named WHERE action = ?1 "
                                        "ORDER BY group_dn, attribute",
                                        -1, &st, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        sqlite3_bind_text(st, 1, action, -1, SQLITE_STATIC);
        FILE *f = open_memstream(&out, &len);
        while (sqlite3_step(st) == SQLITE_ROW)
                fprintf(f, "%s %s %s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                        sqlite3_column_text(st, 2));
        fclose(f);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return out;
}

Test(ldap_connector, reactivation_restores_exactly_the_memberships_the_removal_recorded)
{
        cr_assert_eq(ob_test_ldapmodify(
                             &srv,
                             "dn: uid=rs-rita," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
                             "cn: Rita\nsn: Rita\nuid: rs-rita\n\n"
                             "dn: cn=rs-names," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                             "cn: rs-names\nmember: uid=rs-rita," PEOPLE "\nmember: uid=lc-keep," PEOPLE "\n\n"
                             "dn: cn=rs-posix," GROUPS "\nchangetype: add\nobjectClass: posixGroup\n"
                             "cn: rs-posix\ngidNumber: 7001\nmemberUid: rs-rita\nmemberUid: lc-keep\n\n"
                             "dn: cn=rs-byhand," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                             "cn: rs-byhand\nmember: uid=rs-rita," PEOPLE "\nmember: uid=lc-keep," PEOPLE "\n\n"
                             "dn: cn=rs-never," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                             "cn: rs-never\nmember: uid=lc-keep," PEOPLE "\n"),
                     0);
        write_restore_config("(uid=rs-rita)");
        char *out, *err;
        /* First sighting, active: nothing to do. */
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        /* An administrator takes her out of one group by hand, then she leaves. */
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: cn=rs-byhand," GROUPS "\nchangetype: modify\ndelete: member\n"
                                              "member: uid=rs-rita," PEOPLE "\n\n"
                                              "dn: uid=rs-rita," PEOPLE "\nchangetype: modify\n"
                                              "replace: employeeType\nemployeeType: Inactive\n"),
                     0);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_count(err, "event=ldap_group_removed"), 2, "%s", err);
        free(out);
        free(err);
        /* The store says what was removed, by name, after the process is gone. */
        char *rows = recorded_rows("leave-groups");
        cr_assert_str_eq(rows, "member uid=rs-rita," PEOPLE " cn=rs-names," GROUPS "\n"
                               "memberUid rs-rita cn=rs-posix," GROUPS "\n");
        free(rows);
        /* explain shows them with the step's record. */
        rc = offboard("explain", "rs-rita", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "    leave-groups: done, 1 attempt"), "%s", out);
        cr_assert(strstr(out, "      memberships: 2\n"
                              "        member: uid=rs-rita," PEOPLE " in cn=rs-names," GROUPS "\n"
                              "        memberUid: rs-rita in cn=rs-posix," GROUPS "\n"),
                  "%s", out);
        free(out);
        free(err);

        /* She comes back: the plan (another process) shows what will be put back,
         * and lists no lost memberships. */
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=rs-rita," PEOPLE "\nchangetype: modify\n"
                                              "delete: employeeType\n"),
                     0);
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "LDAP restore_groups uid=rs-rita," PEOPLE), "%s", out);
        cr_assert(strstr(out, "memberships to restore: 2 (recorded by leave-groups)"), "%s", out);
        cr_assert(strstr(out, "member: uid=rs-rita," PEOPLE " in cn=rs-names," GROUPS), "%s", out);
        cr_assert(strstr(out, "memberUid: rs-rita in cn=rs-posix," GROUPS), "%s", out);
        cr_assert_null(strstr(out, "not restored"), "%s", out);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_count(err, "event=ldap_group_restored"), 2, "%s", err);
        free(out);
        free(err);
        char *g = search(GROUPS, "(cn=rs-names)", "member");
        cr_assert(strstr(g, "member: uid=rs-rita," PEOPLE), "%s", g);
        free(g);
        g = search(GROUPS, "(cn=rs-posix)", "memberUid");
        cr_assert(strstr(g, "memberUid: rs-rita"), "%s", g);
        free(g);
        /* Not what an administrator removed before offboard ran, nor a group
         * she was never in. */
        g = search(GROUPS, "(cn=rs-byhand)", "member");
        cr_assert_null(strstr(g, "rs-rita"), "%s", g);
        free(g);
        g = search(GROUPS, "(cn=rs-never)", "member");
        cr_assert_null(strstr(g, "rs-rita"), "%s", g);
        free(g);
        /* Nothing more to do. */
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        cr_assert_null(strstr(err, "event=ldap_"), "%s", err);
        free(out);
        free(err);
}

Test(ldap_connector, a_restore_that_failed_puts_back_the_same_memberships_when_the_reactivation_continues)
{
        cr_assert_eq(ob_test_ldapmodify(&srv,
                                        "dn: uid=rs-otto," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
                                        "cn: Otto\nsn: Otto\nuid: rs-otto\nemployeeType: Inactive\n\n"
                                        "dn: cn=rs-otto," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                        "cn: rs-otto\nmember: uid=rs-otto," PEOPLE
                                        "\nmember: uid=lc-keep," PEOPLE "\n"),
                     0);
        write_restore_config("(uid=rs-otto)");
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_count(err, "event=ldap_group_removed"), 1, "%s", err);
        free(out);
        free(err);
        /* Back, but the connector now binds as the service account, which
         * may not write groups: the restore fails. */
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=rs-otto," PEOPLE "\nchangetype: modify\n"
                                              "delete: employeeType\n"),
                     0);
        write_restore_config_as("(uid=rs-otto)", false);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_neq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "restoring member to cn=rs-otto," GROUPS), "%s", err);
        free(out);
        free(err);
        /* The reactivation continues (its own records, not the deactivation's,
         * are at hand now): the restore still knows what to put back. */
        write_restore_config("(uid=rs-otto)");
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "memberships to restore: 1 (recorded by leave-groups)"), "%s", out);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_count(err, "event=ldap_group_restored"), 1, "%s", err);
        free(out);
        free(err);
        char *g = search(GROUPS, "(cn=rs-otto)", "member");
        cr_assert(strstr(g, "member: uid=rs-otto," PEOPLE), "%s", g);
        free(g);
}

Test(ldap_connector, without_a_restore_the_reactivation_lists_the_removed_memberships_as_not_restored)
{
        cr_assert_eq(ob_test_ldapmodify(&srv,
                                        "dn: uid=rs-nora," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
                                        "cn: Nora\nsn: Nora\nuid: rs-nora\nemployeeType: Inactive\n\n"
                                        "dn: cn=rs-nora," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                        "cn: rs-nora\nmember: uid=rs-nora," PEOPLE
                                        "\nmember: uid=lc-keep," PEOPLE "\n"),
                     0);
        write_restore_config("(uid=rs-nora)");
        /* The same configuration, the reactivation without regain-groups. */
        char *cfg = ob_test_read_file(cfgpath);
        cr_assert_not_null(cfg);
        char *at = strstr(cfg, "    actions: [regain-groups]\n");
        cr_assert_not_null(at);
        memcpy(at, "    actions: []             \n", strlen("    actions: []             \n"));
        FILE *f = fopen(cfgpath, "w");
        fputs(cfg, f);
        fclose(f);
        free(cfg);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=rs-nora," PEOPLE "\nchangetype: modify\n"
                                              "delete: employeeType\n"),
                     0);
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "not restored: leave-groups"), "%s", out);
        free(out);
        free(err);
}

Test(ldap_connector, a_group_deleted_meanwhile_is_reported_and_the_others_are_restored)
{
        write_config();
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(cfgpath, &cfg, &cerr), 0, "%s", cerr.message);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: cn=rs-back," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                              "cn: rs-back\nmember: uid=lc-keep," PEOPLE "\n\n"
                                              "dn: cn=rs-there," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                              "cn: rs-there\nmember: uid=rs-gus," PEOPLE "\n"),
                     0);
        struct ob_ldap_membership m[] = {
                {.group = (char *)"cn=rs-gone," GROUPS, .attr = 0, .value = (char *)"uid=rs-gus," PEOPLE},
                {.group = (char *)"cn=rs-back," GROUPS, .attr = 0, .value = (char *)"uid=rs-gus," PEOPLE},
                /* already there again (an administrator was quicker): done */
                {.group = (char *)"cn=rs-there," GROUPS, .attr = 0, .value = (char *)"uid=rs-gus," PEOPLE},
        };
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_RESTORE_GROUPS,
                .dn = (char *)"uid=rs-gus," PEOPLE,
                .from = "leave-groups",
                .memberships = m,
                .nmemberships = 3,
                .recorded = true,
        };
        const struct ob_action *a = NULL;
        for (size_t i = 0; i < cfg->nactions; i++)
                if (strcmp(cfg->actions[i].name, "leave-groups") == 0)
                        a = &cfg->actions[i];
        struct outcome *o = run_step_p(cfg, "leave-groups", &q); /* any action of the connector will do */
        (void)a;
        cr_assert_eq(o->resp.result, 0, "%s", o->resp.error);
        cr_assert(strstr(o->resp.excerpt, "not restored: cn=rs-gone," GROUPS " no longer exists"), "%s",
                  o->resp.excerpt);
        cr_assert(strstr(o->resp.excerpt, "restored member to cn=rs-back," GROUPS), "%s", o->resp.excerpt);
        cr_assert(strstr(o->resp.excerpt, "restored member to cn=rs-there," GROUPS), "%s", o->resp.excerpt);
        /* The step keeps its list, for a later attempt. */
        cr_assert_not_null(o->resp.detail);
        cr_assert(strstr(o->resp.detail, "cn=rs-back," GROUPS), "%s", o->resp.detail);
        char *g = search(GROUPS, "(cn=rs-back)", "member");
        cr_assert(strstr(g, "member: uid=rs-gus," PEOPLE), "%s", g);
        free(g);
        g = search(GROUPS, "(cn=rs-there)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 1, "%s", g);
        free(g);
        ob_config_free(cfg);
}

Test(ldap_connector, a_removal_from_more_groups_than_the_records_keep_says_its_list_was_cut)
{
        write_config();
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(cfgpath, &cfg, &cerr), 0, "%s", cerr.message);
        char *ldif = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&ldif, &len);
        for (int i = 0; i < 260; i++)
                fprintf(f, "dn: cn=rs-many-%03d," GROUPS "\nchangetype: add\nobjectClass: posixGroup\n"
                           "cn: rs-many-%03d\ngidNumber: %d\nmemberUid: rs-many\n\n",
                        i, i, 8000 + i);
        fclose(f);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        free(ldif);
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = (char *)"uid=rs-many," PEOPLE,
                .uid = (char *)"rs-many",
                .groups_base = GROUPS,
                .group_attrs = OB_LDAP_MEMBER_UID,
        };
        struct outcome *o = run_step_p(cfg, "leave-groups", &q);
        cr_assert_eq(o->resp.result, 0, "%s", o->resp.error);
        cr_assert_not_null(o->resp.detail);
        struct ob_ldap_membership *m = NULL;
        size_t n = 0;
        int64_t cut = 0;
        cr_assert_eq(ob_ldap_memberships_parse(o->resp.detail, &m, &n, &cut), 0);
        cr_assert_eq(n, 256);
        cr_assert_eq(cut, 4, "the 4 beyond the cap are counted");
        cr_assert_str_eq(m[0].value, "rs-many");
        ob_ldap_memberships_free(m, n);
        char *g = search(GROUPS, "(memberUid=rs-many)", "cn");
        cr_assert_eq(ob_test_count(g, "cn:"), 0, "all 260 removed all the same: %s", g);
        free(g);
        ob_config_free(cfg);
}

/* The executor pauses a connector that keeps failing without an answer it
 * can use, and frees it from inside the step's callback, which the session
 * is still calling: the connector goes on the next loop turn, cleanly. */
Test(ldap_connector, a_connector_paused_by_its_failures_is_freed_safely)
{
        cr_assert_eq(ob_test_ldapmodify(&srv,
                                        "dn: uid=pause-pia," PEOPLE "\nchangetype: add\n"
                                        "objectClass: inetOrgPerson\ncn: Pia\nsn: Pia\nuid: pause-pia\n"
                                        "employeeType: Inactive\n\n"
                                        "dn: cn=pia," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                        "cn: pia\nmember: uid=pause-pia," PEOPLE "\nmember: uid=lc-keep," PEOPLE "\n"),
                     0);
        /* As the service account, which may read the groups but not change them. */
        write_config_with("(uid=pause-pia)", false, "{attempts: 1, pause_after: 1}");
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "event=connector_paused connector=dir"), "%s", err);
        cr_assert(strstr(err, "removing member from cn=pia," GROUPS), "%s", err);
        cr_assert_null(strstr(err, "Sanitizer"), "%s", err);
        cr_assert_null(strstr(err, "runtime error"), "%s", err);
        free(out);
        free(err);
        char *g = search(GROUPS, "(cn=pia)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 2, "%s", g);
        free(g);
}

/* One step on a connector that lives across steps. */
static struct outcome step_on(struct ob_loop *loop, const struct ob_action *a, void *c, struct ob_ldap_rendered *q)
{
        struct ob_step s = {.action = a, .state = OB_STEP_OWED, .rendered = q};
        struct outcome o = {0};
        cr_assert_eq(ob_connector_start(a->connector, c, &s, on_done, &o), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(o.calls, 1);
        return o;
}

/* Last: it restarts the shared server. */
Test(ldap_connector, zz_a_session_lost_with_the_server_is_opened_again_by_the_next_step)
{
        signal(SIGPIPE, SIG_IGN); /* as offboard does: a write to the dead connection is an error, not death */
        write_config();
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: cn=rst," GROUPS "\nchangetype: add\nobjectClass: groupOfNames\n"
                                              "cn: rst\nmember: uid=rst-1," PEOPLE "\nmember: uid=rst-2," PEOPLE
                                              "\nmember: uid=lc-keep," PEOPLE "\n"),
                     0);
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(cfgpath, &cfg, &cerr), 0, "%s", cerr.message);
        const struct ob_action *a = NULL;
        for (size_t i = 0; i < cfg->nactions; i++)
                if (strcmp(cfg->actions[i].name, "leave-groups") == 0)
                        a = &cfg->actions[i];
        cr_assert_not_null(a);
        struct ob_loop *loop;
        cr_assert_eq(ob_loop_new(&loop), 0);
        void *c = NULL;
        cr_assert_eq(ob_connector_new(loop, a->connector, &c), 0);
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = (char *)"uid=rst-1," PEOPLE,
                .groups_base = GROUPS,
                .group_attrs = OB_LDAP_MEMBER,
        };
        struct outcome o = step_on(loop, a, c, &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);

        cr_assert_eq(ob_test_slapd_restart(&srv), 0);
        /* The session learns of the loss from its next request, which fails
         * (or, if the request was already on its way, may not); either way
         * a step after it opens a new session and is done. */
        q.dn = (char *)"uid=rst-2," PEOPLE;
        o = step_on(loop, a, c, &q);
        if (o.resp.result != 0) {
                cr_assert(o.resp.transport, "a lost connection is worth a retry: %s", o.resp.error);
                o = step_on(loop, a, c, &q);
        }
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert_str_eq(o.resp.excerpt, "removed member from cn=rst," GROUPS);
        char *g = search(GROUPS, "(cn=rst)", "member");
        cr_assert_eq(ob_test_count(g, "member:"), 1, "%s", g);
        free(g);
        ob_connector_free(a->connector, c);
        ob_loop_free(loop);
        ob_config_free(cfg);
}
