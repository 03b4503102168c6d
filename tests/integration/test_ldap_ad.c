/* The ldap connector against a real Samba AD DC (tests/harness/samba.sh):
 * a leaver whose DN needs escaping leaves an AD group (member), with the
 * connector's default attributes (member, uniqueMember, memberUid: AD's
 * schema knows all three), and a second run finds nothing to do.
 * The entries are this test's own, under OU=LdapConnector.
 * What the removal recorded is put back by restore_groups, and a group
 * deleted meanwhile is reported while the others are restored.
 *
 * Large groups (issues 13, 14). AD hands out at most MaxValRange values of
 * an attribute at once (1,500 by default): past that, a group's entry
 * carries member;range=0-1499 and no member, and the rest must be asked for
 * (MS-ADTS 3.1.1.3.1.3.3). Samba 4.17 never cuts an attribute short by
 * itself: its ranged_results module answers a range only when the client
 * asks for one (member;range=0-499 gives member;range=0-499, and the range
 * that reaches the last value comes back as member;range=N-*), and its LDAP
 * server does not read MaxValRange from lDAPAdminLimits. So these tests ask
 * for ranges from the first request (ob_dir_set_range_step), as an AD
 * whose MaxValRange is that step would hand them out, and everything after
 * the first answer (parsing the server's range names, asking for the next
 * range, the end in "*") is the code AD's answers go through. The group is
 * CN=crowd (CROWD contacts, added offline by samba.sh: over LDAP it would
 * take minutes). The connector does not read member at all (it asks which
 * groups list the DN and deletes that one value): it is tested on the
 * crowd too.
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
#include "directory.h"
#include "escape.h"
#include "guard.h"
#include "ldap_conn.h"
#include "loop.h"
#include "plan.h"
#include "run.h"
#include "samba.h"
#include "util.h"

#define NCONTACTS 20
#define CROWD 1600 /* members of CN=crowd,OU=Crowd: more than AD's default MaxValRange (1500) */

static struct ob_test_dirsrv srv;
static char dir[256];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_samba_share_crowd(CROWD);
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

/* ---- large groups (range retrieval) ------------------------------------------ */

static char crowd_dn[240], crowd_ou[200];

static void crowd_names(void)
{
        snprintf(crowd_ou, sizeof(crowd_ou), "OU=Crowd,%s", srv.suffix);
        snprintf(crowd_dn, sizeof(crowd_dn), "CN=crowd,%s", crowd_ou);
}

/* Writes text as dir/offboard.yaml and loads it. */
static struct ob_config *load_config(const char *text)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/offboard.yaml", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        struct ob_config *cfg;
        struct ob_config_error cerr;
        cr_assert_eq(ob_config_load(path, &cfg, &cerr), 0, "%s", cerr.message);
        return cfg;
}

/* The directory section of the tests below: the service account over
 * StartTLS, the crowd's OU as the teams' base; extra is added to it. */
static void directory_yaml(struct ob_buf *b, const char *base, const char *extra)
{
        cr_assert_eq(ob_buf_printf(b,
                                   "directory:\n"
                                   "  uri: %s\n"
                                   "  ca_file: %s\n"
                                   "  bind_dn: %s\n"
                                   "  bind_password_file: %s\n"
                                   "  base: %s\n"
                                   "  timeout: 20s\n"
                                   "  teams: {base: '%s'}\n"
                                   "%s"
                                   "mappings: [active-directory]\n",
                                   srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, base, crowd_ou, extra),
                     0);
}

/* The group's members as Samba lists them when asked for member alone
 * (every value at once): the administrator's view, independent of
 * directory.c. *ret_n values; malloc'd, NULL-terminated. */
static char **members_of(const char *group, size_t *ret_n)
{
        char *out = ob_test_dirsrv_search(&srv, group, "(objectClass=group)", "member");
        cr_assert_not_null(out, "ldapsearch of %s failed", group);
        char **v = NULL;
        size_t n = 0;
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "member: ", 8) != 0)
                        continue;
                v = realloc(v, (n + 2) * sizeof(*v));
                cr_assert_not_null(v);
                v[n++] = strdup(line + 8);
                v[n] = NULL;
        }
        free(out);
        *ret_n = n;
        return v;
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

/* A user of the crowd's OU, member of the crowd; its index in the group's
 * member list (the order Samba keeps, and hands out ranges of) goes to
 * *ret_at. */
static void add_crowd_member(const char *cn, const char *extra_group_ldif, char *ret_dn, size_t len, size_t *ret_at)
{
        snprintf(ret_dn, len, "CN=%s,%s", cn, crowd_ou);
        char ldif[1200];
        snprintf(ldif, sizeof(ldif),
                 "dn: %s\nobjectClass: user\nsAMAccountName: %s\n\n"
                 "dn: %s\nchangetype: modify\nadd: member\nmember: %s\n-\n%s",
                 ret_dn, cn, crowd_dn, ret_dn, extra_group_ldif ? extra_group_ldif : "");
        admin_modify(ldif);
        size_t n;
        char **m = members_of(crowd_dn, &n);
        size_t at = n;
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(m[i], ret_dn) == 0)
                        at = i;
        strv_free(m);
        cr_assert_lt(at, n, "%s is not in %s", ret_dn, crowd_dn);
        *ret_at = at;
}

static void remove_crowd_member(const char *dn)
{
        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n-\n", crowd_dn, dn);
        admin_modify(ldif);
}

static const char *verdict_of(const struct ob_guard_verdict *v, size_t n, const char *guard)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].guard->name, guard) == 0)
                        return v[i].reason;
        return NULL;
}

Test(ldap_ad, guards_read_every_member_of_a_group_larger_than_ad_hands_out_at_once)
{
        crowd_names();
        char owner[300], managed[800];
        size_t at;
        snprintf(managed, sizeof(managed), "dn: %s\nchangetype: modify\nreplace: managedBy\nmanagedBy: CN=crowd-owner,%s\n-\n",
                 crowd_dn, crowd_ou);
        add_crowd_member("crowd-owner", NULL, owner, sizeof(owner), &at);
        admin_modify(managed);
        size_t n;
        char **all = members_of(crowd_dn, &n);
        strv_free(all);
        cr_assert_gt(n, 1500, "the crowd has %zu members", n);

        struct ob_buf y;
        ob_buf_init(&y);
        directory_yaml(&y, srv.base, "");
        cr_assert_eq(ob_buf_printf(&y,
                                   "guards:\n"
                                   "  team-owner: {owns_team_with_members: true}\n"
                                   "  crowd-member: {member_of: '%s'}\n"
                                   "  crowd-alone: {sole_member_of: '%s'}\n",
                                   crowd_dn, crowd_dn),
                     0);
        struct ob_config *cfg = load_config(y.data);
        ob_buf_free(&y);

        char want_team[400], want_member[400];
        snprintf(want_team, sizeof(want_team), "owns the team %s, which has %zu other members", crowd_dn, n - 1);
        snprintf(want_member, sizeof(want_member), "is a member of %s", crowd_dn);
        struct ob_account *a = ob_account_new();
        cr_assert_not_null(a);
        a->dn = strdup(owner);
        cr_assert_eq(ob_account_add(a, "sAMAccountName", "crowd-owner", 11), 0);
        /* Samba's own answer (no range: every value at once), AD's default
         * MaxValRange, and ranges that end just before the owner's value
         * (unless it is among the first hundred), so it comes in a range
         * after the first. */
        unsigned long steps[] = {0, 1500, 500, at > 100 ? at : 100};
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct ob_dir *d;
                cr_assert_eq(ob_dir_open(&cfg->directory, &d), 0);
                ob_dir_set_range_step(d, steps[i]);
                struct ob_guards *g;
                cr_assert_eq(ob_guards_new(cfg, d, NULL, NULL, &g), 0);
                struct ob_guard_verdict *v = NULL;
                size_t nv = 0;
                cr_assert_eq(ob_guards_check(g, a, &v, &nv), 0);
                const char *team = verdict_of(v, nv, "team-owner"), *member = verdict_of(v, nv, "crowd-member");
                cr_assert(team && strcmp(team, want_team) == 0, "step %lu (owner at %zu): team-owner says %s",
                          steps[i], at, team ? team : "nothing");
                cr_assert(member && strcmp(member, want_member) == 0, "step %lu (owner at %zu): crowd-member says %s",
                          steps[i], at, member ? member : "nothing");
                cr_assert_null(verdict_of(v, nv, "crowd-alone"), "step %lu: %s", steps[i],
                               verdict_of(v, nv, "crowd-alone"));
                cr_assert_eq(nv, 2);
                ob_guard_verdicts_free(v, nv);
                ob_guards_free(g);
                ob_dir_free(d);
        }
        ob_account_free(a);
        ob_config_free(cfg);
        snprintf(managed, sizeof(managed), "dn: %s\nchangetype: modify\ndelete: managedBy\n-\n", crowd_dn);
        admin_modify(managed);
        remove_crowd_member(owner);
}

Test(ldap_ad, a_leaver_leaves_a_group_larger_than_ad_hands_out_at_once)
{
        crowd_names();
        char user[300];
        size_t at;
        add_crowd_member("crowd-leaver", NULL, user, sizeof(user), &at);
        size_t before;
        strv_free(members_of(crowd_dn, &before));

        struct ob_buf y;
        ob_buf_init(&y);
        directory_yaml(&y, srv.base, "");
        cr_assert_eq(ob_buf_printf(&y,
                                   "connectors:\n"
                                   "  ad: {type: ldap, bind_dn: '%s', bind_password_file: '%s', groups_base: '%s'}\n"
                                   "actions:\n"
                                   "  leave: {connector: ad, operation: remove_from_groups}\n"
                                   "transitions:\n"
                                   "  deactivate: {to: inactive, actions: [leave]}\n",
                                   srv.admin_dn, srv.admin_pw_file, crowd_ou),
                     0);
        struct ob_config *cfg = load_config(y.data);
        ob_buf_free(&y);
        const struct ob_action *a = &cfg->actions[0];
        const struct ob_ldap_action *la = a->settings;
        struct ob_ldap_rendered q = {
                .op = OB_LDAP_REMOVE_FROM_GROUPS,
                .dn = user,
                .uid = (char *)"crowd-leaver",
                .groups_base = crowd_ou,
                .group_attrs = la->group_attrs,
        };
        struct outcome o = run_step(a, &q);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        char want[400];
        snprintf(want, sizeof(want), "removed member from %s", crowd_dn);
        cr_assert_str_eq(o.resp.excerpt, want);

        /* Gone from the group, and no one else with it. */
        size_t after;
        char **m = members_of(crowd_dn, &after);
        for (size_t i = 0; i < after; i++)
                cr_assert_neq(strcasecmp(m[i], user), 0, "%s is still a member", user);
        strv_free(m);
        cr_assert_eq(after, before - 1);

        /* Restored: a member again, exactly once more. */
        struct ob_ldap_membership *rm = NULL;
        size_t nrm = 0;
        int64_t cut = 0;
        cr_assert_eq(ob_ldap_memberships_parse(o.detail, &rm, &nrm, &cut), 0, "%s", o.detail);
        cr_assert_eq(nrm, 1, "%s", o.detail);
        struct ob_ldap_rendered r = {
                .op = OB_LDAP_RESTORE_GROUPS,
                .dn = user,
                .from = "leave",
                .memberships = rm,
                .nmemberships = nrm,
                .recorded = true,
        };
        o = run_step(a, &r);
        cr_assert_eq(o.resp.result, 0, "%s", o.resp.error);
        snprintf(want, sizeof(want), "restored member to %s", crowd_dn);
        cr_assert(strstr(o.resp.excerpt, want), "%s", o.resp.excerpt);
        strv_free(members_of(crowd_dn, &after));
        cr_assert_eq(after, before);
        ob_ldap_memberships_free(rm, nrm);
        ob_config_free(cfg);
        remove_crowd_member(user);
}

/* ---- the same reads on the event loop ---- */

struct loop_reads {
        struct ob_loop *loop;
        int pending;
        /* ob_dir_read_start's */
        int read_err;
        size_t read_members;
        /* ob_dir_search_accounts_start's */
        int search_result;
        size_t entries;
        size_t crowd_members;
        char unreadable[400];
        int modify_result;
};

static void loop_one_done(struct loop_reads *lr)
{
        if (--lr->pending == 0)
                ob_loop_stop(lr->loop);
}

static size_t nmembers(const struct ob_account *a)
{
        const struct ob_attr *m = a ? ob_account_attr(a, "member") : NULL;
        return m ? m->nvals : 0;
}

static void on_group_read(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct loop_reads *lr = ud;
        lr->read_err = err;
        lr->read_members = nmembers(a);
        loop_one_done(lr);
}

static int on_group_entry(const struct ob_account *a, void *ud)
{
        struct loop_reads *lr = ud;
        lr->entries++;
        if (strcasecmp(a->dn, crowd_dn) == 0)
                lr->crowd_members = nmembers(a);
        if (a->unreadable)
                snprintf(lr->unreadable, sizeof(lr->unreadable), "%s: %s", a->dn, a->unreadable);
        return 0;
}

static void on_group_search_done(int result, struct ob_dir_search_info *info, void *ud)
{
        (void)info;
        struct loop_reads *lr = ud;
        lr->search_result = result;
        loop_one_done(lr);
}

static void on_members_deleted(int result, void *ud)
{
        struct loop_reads *lr = ud;
        lr->modify_result = result;
        loop_one_done(lr);
}

/* The directory of the loop tests: the crowd's OU as the accounts' base,
 * its groups as the accounts, member as their attribute. */
static struct ob_config *groups_as_accounts(void)
{
        struct ob_buf y;
        ob_buf_init(&y);
        directory_yaml(&y, crowd_ou, "  filter: '(objectClass=group)'\n  attributes: [member]\n");
        struct ob_config *cfg = load_config(y.data);
        ob_buf_free(&y);
        return cfg;
}

Test(ldap_ad, the_loop_reads_every_range_of_a_large_group_before_it_hands_the_entry_out)
{
        crowd_names();
        size_t n;
        strv_free(members_of(crowd_dn, &n));
        struct ob_config *cfg = groups_as_accounts();
        unsigned long steps[] = {0, 1500, 400};
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct loop_reads lr = {.pending = 2, .read_err = 4242, .search_result = 4242};
                cr_assert_eq(ob_loop_new(&lr.loop), 0);
                struct ob_dir *d;
                cr_assert_eq(ob_dir_open(&cfg->directory, &d), 0);
                ob_dir_set_range_step(d, steps[i]);
                cr_assert_eq(ob_dir_attach(d, lr.loop), 0);
                char *attrs[] = {"member", NULL};
                cr_assert_eq(ob_dir_read_start(d, crowd_dn, attrs, on_group_read, &lr), 0);
                cr_assert_eq(ob_dir_search_accounts_start(d, on_group_entry, on_group_search_done, &lr), 0);
                cr_assert_eq(ob_loop_run(lr.loop), 0);
                cr_assert_eq(lr.pending, 0);
                cr_assert_eq(lr.read_err, 0, "step %lu: %s", steps[i], ob_strerror(lr.read_err));
                cr_assert_eq(lr.read_members, n, "step %lu: the read gave %zu of %zu members", steps[i],
                             lr.read_members, n);
                cr_assert_eq(lr.search_result, 0, "step %lu: %s", steps[i], ob_strerror(lr.search_result));
                cr_assert_eq(lr.crowd_members, n, "step %lu: the search gave %zu of %zu members", steps[i],
                             lr.crowd_members, n);
                cr_assert_str_empty(lr.unreadable, "step %lu: %s", steps[i], lr.unreadable);
                ob_dir_free(d);
                ob_loop_free(lr.loop);
        }
        ob_config_free(cfg);
}

Test(ldap_ad, a_group_that_loses_its_members_between_two_ranges_is_an_error_not_a_shorter_list)
{
        crowd_names();
        /* A group of its own (this test empties it), read 10 values at a
         * time: the server answers the first range, then, on the same
         * connection, the write that deletes every member comes before the
         * read of the second range. */
        char group[300];
        snprintf(group, sizeof(group), "CN=shrinking,%s", crowd_ou);
        struct ob_buf l;
        ob_buf_init(&l);
        cr_assert_eq(ob_buf_printf(&l, "dn: %s\nobjectClass: group\nsAMAccountName: shrinking\n", group), 0);
        for (int i = 0; i < 30; i++)
                cr_assert_eq(ob_buf_printf(&l, "member: CN=crowd-%04d,%s\n", i, crowd_ou), 0);
        admin_modify(l.data);
        ob_buf_free(&l);

        struct ob_config *cfg = groups_as_accounts();
        struct loop_reads lr = {.pending = 2, .read_err = 4242, .modify_result = 4242};
        cr_assert_eq(ob_loop_new(&lr.loop), 0);
        struct ob_dir *d;
        cr_assert_eq(ob_dir_open(&cfg->directory, &d), 0);
        ob_dir_set_range_step(d, 10);
        cr_assert_eq(ob_dir_attach(d, lr.loop), 0);
        char *attrs[] = {"member", NULL};
        const char *none[] = {NULL};
        struct ob_dir_mod mod = {.attribute = "member", .values = none};
        cr_assert_eq(ob_dir_read_start(d, group, attrs, on_group_read, &lr), 0);
        cr_assert_eq(ob_dir_replace_start(d, group, false, NULL, &mod, 1, NULL, NULL, on_members_deleted, &lr), 0);
        cr_assert_eq(ob_loop_run(lr.loop), 0);
        cr_assert_eq(lr.modify_result, 0, "%s", ob_strerror(lr.modify_result));
        cr_assert_eq(lr.read_err, -OB_EDIRECTORY, "the read gave %s with %zu members", ob_strerror(lr.read_err),
                     lr.read_members);
        cr_assert_eq(lr.read_members, 0);

        /* The accounts' search delivers such an entry unreadable: it is
         * held, and the other entries are judged. */
        size_t i;
        for (i = 0; i < 30; i++) {
                char ldif[600];
                snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nadd: member\nmember: CN=crowd-%04d,%s\n-\n",
                         group, (int)i, crowd_ou);
                admin_modify(ldif);
        }
        lr = (struct loop_reads){.loop = lr.loop, .pending = 2, .search_result = 4242, .modify_result = 4242};
        cr_assert_eq(ob_dir_search_accounts_start(d, on_group_entry, on_group_search_done, &lr), 0);
        cr_assert_eq(ob_dir_replace_start(d, group, false, NULL, &mod, 1, NULL, NULL, on_members_deleted, &lr), 0);
        cr_assert_eq(ob_loop_run(lr.loop), 0);
        cr_assert_eq(lr.modify_result, 0, "%s", ob_strerror(lr.modify_result));
        cr_assert_eq(lr.search_result, 0, "%s", ob_strerror(lr.search_result));
        cr_assert(strstr(lr.unreadable, group) && strstr(lr.unreadable, "could not be read whole"), "%s",
                  lr.unreadable);
        ob_dir_free(d);
        ob_loop_free(lr.loop);
        ob_config_free(cfg);
}
