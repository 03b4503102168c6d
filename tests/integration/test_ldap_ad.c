/* The ldap connector against a real Samba AD DC (tests/harness/samba.sh):
 * a leaver whose DN needs escaping leaves an AD group (member), with the
 * connector's default attributes (member, uniqueMember, memberUid: AD's
 * schema knows all three), and a second run finds nothing to do.
 *
 * The connector never reads a group's member attribute, which AD hands out
 * in ranges past 1,500 values (member;range=0-1499): it asks the server
 * which groups under groups_base list the DN and deletes that one value, so
 * a group's size plays no part. (Samba returns every value at once, and
 * adding thousands of members takes it minutes: the test keeps the group
 * small.) The entries are this test's own, under OU=LdapConnector.
 * What the removal recorded is put back by restore_groups, and a group
 * deleted meanwhile is reported while the others are restored.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "escape.h"
#include "ldap_conn.h"
#include "loop.h"
#include "plan.h"
#include "run.h"
#include "samba.h"
#include "util.h"

#define NCONTACTS 20

static struct ob_test_dirsrv srv;
static char dir[256];

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
        snprintf(dir, sizeof(dir), "/tmp/ob-ldapad-XXXXXX");
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

TestSuite(ldap_ad, .init = setup, .fini = teardown, .timeout = 300);

static void admin_modify(const char *ldif)
{
        char *err = NULL;
        int rc = ob_test_dirsrv_modify(&srv, ldif, &err);
        cr_assert_eq(rc, 0, "ldapmodify failed (%d): %s", rc, err);
        free(err);
}

struct outcome {
        int calls;
        struct ob_response resp;
        char detail[8192]; /* resp.detail's start (it dies with the call); "" if none */
};

static void on_done(const struct ob_response *resp, void *ud)
{
        struct outcome *o = ud;
        o->calls++;
        o->resp = *resp;
        o->resp.detail = NULL;
        snprintf(o->detail, sizeof(o->detail), "%s", resp->detail ? resp->detail : "");
}

static struct outcome run_step(const struct ob_action *a, struct ob_ldap_rendered *q)
{
        struct ob_loop *loop;
        cr_assert_eq(ob_loop_new(&loop), 0);
        void *c = NULL;
        cr_assert_eq(ob_connector_new(loop, a->connector, &c), 0);
        struct ob_step s = {.action = a, .state = OB_STEP_OWED, .rendered = q};
        struct outcome o = {0};
        cr_assert_eq(ob_connector_start(a->connector, c, &s, on_done, &o), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(o.calls, 1);
        ob_connector_free(a->connector, c);
        ob_loop_free(loop);
        return o;
}

Test(ldap_ad, a_leaver_whose_dn_needs_escaping_leaves_an_ad_group_once)
{
        char ou[200], user[300];
        snprintf(ou, sizeof(ou), "OU=LdapConnector,%s", srv.suffix);
        /* " Zoë, "Q"+x": a leading space, ',' '"' '+' escaped, UTF-8 kept
         * (OpenLDAP's LDIF reader takes UTF-8 as it is) */
        snprintf(user, sizeof(user), "CN=\\ Zo\xc3\xab\\, \\\"Q\\\"\\+x,%s", ou);
        struct ob_buf l;
        ob_buf_init(&l);
        cr_assert_eq(ob_buf_printf(&l, "dn: %s\nobjectClass: organizationalUnit\n\n", ou), 0);
        cr_assert_eq(ob_buf_printf(&l, "dn: %s\nobjectClass: user\nsAMAccountName: lc-zoe\n\n", user), 0);
        cr_assert_eq(ob_buf_printf(&l, "dn: OU=Disabled,%s\nobjectClass: organizationalUnit\n\n", ou), 0);
        for (int i = 0; i < NCONTACTS; i++)
                cr_assert_eq(ob_buf_printf(&l, "dn: CN=c%04d,%s\nobjectClass: contact\n\n", i, ou), 0);
        cr_assert_eq(ob_buf_printf(&l, "dn: CN=big,%s\nobjectClass: group\nsAMAccountName: lc-big\n", ou), 0);
        for (int i = 0; i < NCONTACTS; i++)
                cr_assert_eq(ob_buf_printf(&l, "member: CN=c%04d,%s\n", i, ou), 0);
        cr_assert_eq(ob_buf_printf(&l, "member: %s\n\n", user), 0);
        admin_modify(l.data);
        ob_buf_free(&l);

        char cfgpath[300];
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  timeout: 20s\n"
                "mappings: [active-directory]\n"
                "connectors:\n"
                "  ad:\n"
                "    type: ldap\n"
                "    bind_dn: %s\n"
                "    bind_password_file: %s\n"
                "    groups_base: %s\n"
                "actions:\n"
                "  leave:\n"
                "    connector: ad\n"
                "    operation: remove_from_groups\n"
                "  park:\n"
                "    connector: ad\n"
                "    operation: move\n"
                "    new_parent: OU=Disabled,%s\n"
                "    after: [leave]\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: inactive\n"
                "    actions: [leave, park]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, srv.admin_dn, srv.admin_pw_file, ou,
                ou);
        fclose(f);
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(cfgpath, &cfg, &cerr), 0, "%s", cerr.message);
        const struct ob_action *a = &cfg->actions[0];
        const struct ob_ldap_action *la = a->settings;
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = user,
                .uid = (char *)"lc-zoe",
                .groups_base = ou,
                .group_attrs = la->group_attrs, /* member, uniqueMember and memberUid: AD knows all three */
        };
        struct outcome o = run_step(a, &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        char want[400];
        snprintf(want, sizeof(want), "removed member from CN=big,%s", ou);
        cr_assert_str_eq(o.resp.excerpt, want);
        /* What it removed, as the state store will keep it. */
        struct ob_ldap_membership *rm = NULL;
        size_t nrm = 0;
        int64_t cut = 0;
        cr_assert_eq(ob_ldap_memberships_parse(o.detail, &rm, &nrm, &cut), 0, "%s", o.detail);
        cr_assert_eq(nrm, 1, "%s", o.detail);
        cr_assert_eq(cut, 0);

        /* The group lists the leaver no more and everyone else still. */
        char filter[400];
        snprintf(filter, sizeof(filter), "(&(cn=big)(member=CN=c%04d,%s))", NCONTACTS - 1, ou);
        char *s = ob_test_dirsrv_search(&srv, ou, filter, "cn");
        cr_assert(s && strstr(s, "cn: big"), "%s", s);
        free(s);
        char *esc = NULL;
        {
                struct ob_buf b;
                ob_buf_init(&b);
                cr_assert_eq(ob_buf_adds(&b, "(&(cn=big)(member="), 0);
                cr_assert_eq(ob_escape_ldap_filter(&b, user, strlen(user)), 0);
                cr_assert_eq(ob_buf_adds(&b, "))"), 0);
                esc = b.data;
        }
        s = ob_test_dirsrv_search(&srv, ou, esc, "cn");
        cr_assert(s && !strstr(s, "cn: big"), "still a member: %s", s);
        free(s);

        /* Again: nothing lists it, nothing changes. */
        o = run_step(a, &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        snprintf(want, sizeof(want), "listed in no group under %s", ou);
        cr_assert_str_eq(o.resp.excerpt, want);

        /* Reactivated: restore_groups puts back exactly what was recorded;
         * a group deleted meanwhile is reported and the others restored. */
        struct ob_ldap_membership back[2] = {rm[0], rm[0]};
        char gone[300];
        snprintf(gone, sizeof(gone), "CN=gone,%s", ou);
        back[0].group = gone;
        struct ob_ldap_rendered r = {
                .op = OB_LDAP_RESTORE_GROUPS,
                .dn = user,
                .from = "leave",
                .memberships = back,
                .nmemberships = 2,
                .recorded = true,
        };
        o = run_step(a, &r);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert(strstr(o.resp.excerpt, "no longer exists"), "%s", o.resp.excerpt);
        snprintf(want, sizeof(want), "restored member to CN=big,%s", ou);
        cr_assert(strstr(o.resp.excerpt, want), "%s", o.resp.excerpt);
        s = ob_test_dirsrv_search(&srv, ou, esc, "cn");
        cr_assert(s && strstr(s, "cn: big"), "not a member again: %s", s);
        free(s);
        /* Again: a value already there is done. */
        o = run_step(a, &r);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        ob_ldap_memberships_free(rm, nrm);
        free(esc);

        /* The entry moves with its RDN as it was; moving it again is done. */
        char parent[300];
        snprintf(parent, sizeof(parent), "OU=Disabled,%s", ou);
        struct ob_ldap_rendered m = {.op = OB_LDAP_MOVE, .dn = user, .new_parent = parent};
        o = run_step(&cfg->actions[1], &m);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert(strstr(o.resp.excerpt, "moved to "), "%s", o.resp.excerpt);
        s = ob_test_dirsrv_search(&srv, parent, "(sAMAccountName=lc-zoe)", "cn");
        /* ldapsearch writes the non-ASCII cn base64: " Zoë, "Q"+x" */
        cr_assert(s && strstr(s, "cn:: IFpvw6ssICJRIit4"), "%s", s);
        free(s);
        o = run_step(&cfg->actions[1], &m);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        cr_assert(strstr(o.resp.excerpt, "already at "), "%s", o.resp.excerpt);
        ob_config_free(cfg);
}
