/* The ldap connector kind without a server: its keys and their rules,
 * rendering a step and describing it, and the DN a move gives. The steps
 * themselves run against slapd in tests/integration/test_ldap_connector.c. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "directory.h"
#include "ldap_conn.h"
#include "plan.h"

static const char head[] = "directory:\n"
                           "  uri: ldaps://127.0.0.1\n"
                           "  base: ou=people,dc=example,dc=org\n"
                           "mappings: [openldap]\n";

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

TestSuite(ldap_kind, .init = setup);

/* Loads head + tail; returns the loader's result, *ret or err filled. */
static int load(const char *tail, struct ob_config **ret, struct ob_config_error *err)
{
        char path[] = "/tmp/ob-test-ldap-kind-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs(head, f);
        fputs(tail, f);
        fclose(f);
        *ret = NULL;
        int r = ob_config_load(path, ret, err);
        unlink(path);
        return r;
}

static const char good[] = "connectors:\n"
                           "  dir: {type: ldap}\n"
                           "  other:\n"
                           "    type: ldap\n"
                           "    groups_base: ou=groups,dc=example,dc=org\n"
                           "    uri: ldapi:///\n"
                           "    bind_dn: cn=admin,dc=example,dc=org\n"
                           "    bind_password_file: /etc/offboard/admin.pw\n"
                           "actions:\n"
                           "  leave:\n"
                           "    connector: dir\n"
                           "    operation: remove_from_groups\n"
                           "  leave-posix:\n"
                           "    connector: other\n"
                           "    operation: remove_from_groups\n"
                           "    attributes: [memberuid]\n"
                           "  mark:\n"
                           "    connector: dir\n"
                           "    operation: modify\n"
                           "    set:\n"
                           "      description: \"left: {{ status.reason }}\"\n"
                           "      businessCategory: [\"{{ account.attr.title }}\", gone]\n"
                           "    clear: [telephoneNumber, mobile]\n"
                           "  park:\n"
                           "    connector: dir\n"
                           "    operation: move\n"
                           "    new_parent: ou=disabled,dc=example,dc=org\n"
                           "    after: [leave, mark, leave-posix]\n"
                           "transitions:\n"
                           "  deactivate:\n"
                           "    to: inactive\n"
                           "    actions: [leave, leave-posix, mark, park]\n";

static const struct ob_action *action(const struct ob_config *c, const char *name)
{
        for (size_t i = 0; i < c->nactions; i++)
                if (strcmp(c->actions[i].name, name) == 0)
                        return &c->actions[i];
        cr_assert_fail("no action %s", name);
        return NULL;
}

Test(ldap_kind, the_loader_reads_the_keys_with_their_defaults)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        cr_assert_eq(c->connectors[0].kind, &ob_ldap_kind);
        const struct ob_ldap_connector *dir = c->connectors[0].settings, *other = c->connectors[1].settings;
        cr_assert_str_eq(dir->groups_base, "ou=people,dc=example,dc=org", "the default is directory.base");
        cr_assert_eq(dir->directory, &c->directory, "new reaches the directory: section through the settings");
        cr_assert_null(dir->uri);
        cr_assert_str_eq(other->groups_base, "ou=groups,dc=example,dc=org");
        cr_assert_str_eq(other->uri, "ldapi:///");
        cr_assert_str_eq(other->bind_password_file, "/etc/offboard/admin.pw");
        const struct ob_ldap_action *leave = action(c, "leave")->settings;
        cr_assert_eq(leave->op, OB_LDAP_REMOVE_FROM_GROUPS);
        cr_assert_eq(leave->group_attrs, OB_LDAP_MEMBER | OB_LDAP_UNIQUE_MEMBER | OB_LDAP_MEMBER_UID,
                     "all three by default");
        cr_assert_eq(((const struct ob_ldap_action *)action(c, "leave-posix")->settings)->group_attrs,
                     OB_LDAP_MEMBER_UID, "names are matched ignoring case");
        cr_assert_eq(((const struct ob_ldap_action *)action(c, "mark")->settings)->op, OB_LDAP_MODIFY);
        cr_assert_eq(((const struct ob_ldap_action *)action(c, "park")->settings)->op, OB_LDAP_MOVE);
        /* an attribute a set: template reads is requested with the accounts */
        bool title = false;
        for (size_t i = 0; c->directory.attributes[i]; i++)
                title = title || strcmp(c->directory.attributes[i], "title") == 0;
        cr_assert(title);
        ob_config_free(c);
}

Test(ldap_kind, key_errors_say_what_is_wrong_and_where)
{
        static const char conn[] = "connectors:\n  dir: {type: ldap}\nactions:\n";
        static const struct {
                const char *tail, *needle;
                int line;
        } cases[] = {
                {"connectors:\n  dir: {type: ldap, groups_base: groups}\n", "connectors.dir.groups_base is not a DN",
                 6},
                {"connectors:\n  dir: {type: ldap, bind_dn: \"cn=a,dc=b\"}\n",
                 "connectors.dir: bind_dn and bind_password_file go together", 6},
                {"connectors:\n  dir: {type: ldap, uri: \"http://x\"}\n",
                 "connectors.dir.uri must start with ldap://, ldaps:// or ldapi://", 6},
                {"connectors:\n  dir: {type: ldap, bind_password: s3cr3t}\n", "bind_password", 6},
                {"  a: {connector: dir}\n", "actions.a: missing required key 'operation'", 8},
                {"  a: {connector: dir, operation: delete}\n", "actions.a.operation", 8},
                {"  a: {connector: dir, operation: remove_from_groups, attributes: [owner]}\n",
                 "actions.a.attributes: 'owner' is not one of member, uniqueMember or memberUid", 8},
                {"  a: {connector: dir, operation: remove_from_groups, attributes: member}\n",
                 "actions.a.attributes must be a list of member, uniqueMember or memberUid", 8},
                {"  a: {connector: dir, operation: remove_from_groups, attributes: [\"{{ account.uid }}\"]}\n",
                 "is not one of member", 8},
                {"  a: {connector: dir, operation: move}\n", "actions.a: move needs new_parent:", 8},
                {"  a: {connector: dir, operation: move, new_parent: disabled}\n", "actions.a.new_parent is not a DN",
                 8},
                {"  a: {connector: dir, operation: modify, new_parent: \"ou=x,dc=y\"}\n",
                 "actions.a.new_parent does not apply to modify", 8},
                {"  a: {connector: dir, operation: modify}\n", "actions.a: modify takes set:, clear: or both", 8},
                {"  a: {connector: dir, operation: modify, set: [title]}\n",
                 "actions.a.set must be a mapping of attribute: value", 8},
                {"  a: {connector: dir, operation: modify, set: {\"bad name\": x}}\n",
                 "actions.a.set: 'bad name' is not an attribute name", 8},
                {"  a: {connector: dir, operation: modify, set: {title: {x: y}}}\n",
                 "actions.a.set.title must be a value or a list of values", 8},
                {"  a: {connector: dir, operation: modify, set: {title: x}, clear: [Title]}\n",
                 "actions.a: Title is both set and cleared", 8},
                {"  a: {connector: dir, operation: modify, clear: title}\n",
                 "actions.a.clear must be a list of attribute names", 8},
                {"  a: {connector: dir, operation: remove_from_groups, clear: [title]}\n",
                 "actions.a.clear does not apply to remove_from_groups", 8},
                /* a move must come after every other ldap action */
                {"  a: {connector: dir, operation: remove_from_groups}\n"
                 "  b: {connector: dir, operation: move, new_parent: \"ou=x,dc=y\"}\n",
                 "actions.b moves the entry, which changes the DN that action a acts on: list a in its after:", 9},
                {"  a: {connector: dir, operation: remove_from_groups}\n"
                 "  c: {connector: dir, operation: modify, clear: [title], after: [a]}\n"
                 "  b: {connector: dir, operation: move, new_parent: \"ou=x,dc=y\", after: [c]}\n"
                 "  d: {connector: dir, operation: move, new_parent: \"ou=z,dc=y\", after: [b]}\n",
                 "actions.b moves the entry, which changes the DN that action d acts on", 10},
                /* restore_groups */
                {"  a: {connector: dir, operation: restore_groups}\n",
                 "actions.a: restore_groups needs from: (the remove_from_groups action whose records it puts back)",
                 8},
                {"  a: {connector: dir, operation: remove_from_groups, from: b}\n",
                 "actions.a.from does not apply to remove_from_groups", 8},
                {"  a: {connector: dir, operation: modify, clear: [title]}\n"
                 "  b: {connector: dir, operation: restore_groups, from: a}\n",
                 "actions.b.from: 'a' is not a remove_from_groups action of an ldap connector", 9},
                {"  b: {connector: dir, operation: restore_groups, from: nobody}\n",
                 "actions.b.from: 'nobody' is not a remove_from_groups action of an ldap connector", 8},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char tail[1024];
                snprintf(tail, sizeof(tail), "%s%s", strncmp(cases[i].tail, "connectors", 10) == 0 ? "" : conn,
                         cases[i].tail);
                struct ob_config *c;
                struct ob_config_error err;
                cr_assert_eq(load(tail, &c, &err), -OB_ECONFIG, "case %zu loaded", i);
                cr_assert(strstr(err.message, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.message,
                          cases[i].needle);
                char pos[32];
                snprintf(pos, sizeof(pos), ":%d:", cases[i].line);
                cr_assert(strstr(err.message, pos), "case %zu: '%s' is not on line %d", i, err.message, cases[i].line);
        }
}

Test(ldap_kind, a_move_after_every_other_ldap_action_loads)
{
        struct ob_config *c;
        struct ob_config_error err;
        /* through another action's after: counts too */
        cr_assert_eq(load("connectors:\n  dir: {type: ldap}\nactions:\n"
                          "  a: {connector: dir, operation: remove_from_groups}\n"
                          "  c: {connector: dir, operation: modify, clear: [title], after: [a]}\n"
                          "  b: {connector: dir, operation: move, new_parent: \"ou=x,dc=y\", after: [c]}\n",
                          &c, &err),
                     0, "%s", err.message);
        ob_config_free(c);
}

Test(ldap_kind, a_restore_from_a_removal_loads_and_puts_that_removal_back)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load("connectors:\n  dir: {type: ldap}\n  other: {type: ldap}\nactions:\n"
                          "  leave: {connector: dir, operation: remove_from_groups}\n"
                          "  other-leave: {connector: dir, operation: remove_from_groups}\n"
                          "  back: {connector: other, operation: restore_groups, from: leave}\n",
                          &c, &err),
                     0, "%s", err.message);
        const struct ob_action *back = action(c, "back");
        const struct ob_ldap_action *l = back->settings;
        cr_assert_eq(l->op, OB_LDAP_RESTORE_GROUPS);
        cr_assert_str_eq(l->from, "leave");
        cr_assert_not_null(ob_ldap_kind.restores);
        cr_assert(ob_ldap_kind.restores(back, action(c, "leave")));
        cr_assert_not(ob_ldap_kind.restores(back, action(c, "other-leave")));
        cr_assert_not(ob_ldap_kind.restores(action(c, "leave"), action(c, "leave")), "a removal restores nothing");
        ob_config_free(c);
}

/* ---- rendering and reports ---- */

static const char *lookup(const char *field, void *ud)
{
        (void)ud;
        static const char *const table[][2] = {
                {"account.dn", "cn=\\2C Ann\\+x,ou=people,dc=example,dc=org"},
                {"account.uid", "ann"},
                {"status.reason", "marked inactive"},
                {"account.attr.title", ""}, /* an empty value is left out */
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcmp(table[i][0], field) == 0)
                        return table[i][1];
        return NULL;
}

static char *describe(const struct ob_step *s)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cr_assert_not_null(f);
        ob_ldap_kind.headline_text(s, f);
        fputc('\n', f);
        ob_ldap_kind.describe_text(s, f);
        fclose(f);
        return buf;
}

static struct ob_step render(const struct ob_config *c, const char *name)
{
        struct ob_step s = {.action = action(c, name), .state = OB_STEP_OWED};
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup, NULL, &s), 0);
        cr_assert_null(s.render_error, "%s", s.render_error);
        return s;
}

Test(ldap_kind, steps_render_with_the_accounts_values_and_read_in_a_report)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);

        struct ob_step s = render(c, "leave");
        const struct ob_ldap_rendered *q = s.rendered;
        cr_assert_str_eq(q->dn, "cn=\\2C Ann\\+x,ou=people,dc=example,dc=org");
        cr_assert_str_eq(q->uid, "ann");
        cr_assert_str_eq(q->groups_base, "ou=people,dc=example,dc=org");
        char *d = describe(&s);
        cr_assert_str_eq(d, "  LDAP remove_from_groups cn=\\\\2C Ann\\\\+x,ou=people,dc=example,dc=org\n"
                            "       groups under: ou=people,dc=example,dc=org\n"
                            "       member: cn=\\\\2C Ann\\\\+x,ou=people,dc=example,dc=org\n"
                            "       uniqueMember: cn=\\\\2C Ann\\\\+x,ou=people,dc=example,dc=org\n"
                            "       memberUid: ann\n");
        free(d);
        ob_ldap_kind.free_rendered(s.rendered);

        s = render(c, "mark");
        q = s.rendered;
        cr_assert_eq(q->nset, 2);
        cr_assert_str_eq(q->set[0].attribute, "description");
        cr_assert_str_eq(q->set[0].values[0], "left: marked inactive");
        cr_assert_null(q->set[0].values[1]);
        cr_assert_str_eq(q->set[1].values[0], "gone", "the empty title was left out");
        cr_assert_null(q->set[1].values[1]);
        cr_assert_eq(q->nclear, 2);
        d = describe(&s);
        cr_assert(strstr(d, "       set description: left: marked inactive\n"
                            "       set businessCategory: gone\n"
                            "       clear telephoneNumber\n"
                            "       clear mobile\n"),
                  "%s", d);
        free(d);
        ob_ldap_kind.free_rendered(s.rendered);

        s = render(c, "park");
        q = s.rendered;
        cr_assert_str_eq(q->new_dn, "cn=\\2C Ann\\+x,ou=disabled,dc=example,dc=org", "the escaped ',' is no separator");
        d = describe(&s);
        cr_assert(strstr(d, "new DN: cn=\\\\2C Ann\\\\+x,ou=disabled,dc=example,dc=org\n"), "%s", d);
        free(d);
        ob_ldap_kind.free_rendered(s.rendered);
        ob_config_free(c);
}

/* The records a reactivation plans with: leave's detail, or the restore's own. */
static const char *records_own;
static const char *lookup_records(const char *field, void *ud)
{
        if (strcmp(field, "recorded.leave.detail") == 0)
                return "{\"memberships\":[[\"cn=a\\\\2C b,ou=groups,dc=x\",\"member\",\"uid=ann,dc=x\"],"
                       "[\"cn=p,ou=groups,dc=x\",\"memberUID\",\"ann\"],[\"cn=q,dc=x\",\"owner\",\"ann\"]],"
                       "\"cut\":2}";
        if (strcmp(field, "recorded.back.detail") == 0)
                return records_own;
        return lookup(field, ud);
}

Test(ldap_kind, a_restore_renders_the_memberships_its_removal_recorded_and_reads_them_in_a_report)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load("connectors:\n  dir: {type: ldap}\nactions:\n"
                          "  leave: {connector: dir, operation: remove_from_groups}\n"
                          "  back: {connector: dir, operation: restore_groups, from: leave}\n",
                          &c, &err),
                     0, "%s", err.message);
        struct ob_step s = {.action = action(c, "back"), .state = OB_STEP_OWED};
        records_own = NULL;
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup_records, NULL, &s), 0);
        cr_assert_null(s.render_error, "%s", s.render_error);
        const struct ob_ldap_rendered *q = s.rendered;
        cr_assert_eq(q->op, OB_LDAP_RESTORE_GROUPS);
        cr_assert_eq(q->nmemberships, 2, "an attribute not one of the three is not restored");
        cr_assert_eq(q->cut, 3, "the 2 the records cut and the one not restored");
        cr_assert_str_eq(q->memberships[0].group, "cn=a\\2C b,ou=groups,dc=x");
        cr_assert_eq(q->memberships[1].attr, 2, "memberUid, whatever its case");
        cr_assert_not_null(s.intent_detail, "the list goes with the intent");
        cr_assert(strstr(s.intent_detail, "cn=p,ou=groups,dc=x"), "%s", s.intent_detail);
        free(s.intent_detail);
        char *d = describe(&s);
        cr_assert_str_eq(d, "  LDAP restore_groups cn=\\\\2C Ann\\\\+x,ou=people,dc=example,dc=org\n"
                            "       memberships to restore: 2 (recorded by leave)\n"
                            "       member: uid=ann,dc=x in cn=a\\\\2C b,ou=groups,dc=x\n"
                            "       memberUid: ann in cn=p,ou=groups,dc=x\n"
                            "       not recorded (the list was cut), not restored: 3\n");
        free(d);
        ob_ldap_kind.free_rendered(s.rendered);

        /* A retry in the reactivation reads the restore's own records first. */
        records_own = "{\"memberships\":[[\"cn=z,dc=x\",\"uniqueMember\",\"uid=ann,dc=x\"]],\"cut\":0}";
        s = (struct ob_step){.action = action(c, "back"), .state = OB_STEP_OWED};
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup_records, NULL, &s), 0);
        q = s.rendered;
        cr_assert_eq(q->nmemberships, 1);
        cr_assert_str_eq(q->memberships[0].group, "cn=z,dc=x");
        free(s.intent_detail);
        ob_ldap_kind.free_rendered(s.rendered);

        /* Nothing recorded: nothing to restore, and the report says so. */
        s = (struct ob_step){.action = action(c, "back"), .state = OB_STEP_OWED};
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup, NULL, &s), 0);
        cr_assert_null(s.render_error);
        cr_assert_null(s.intent_detail);
        d = describe(&s);
        cr_assert(strstr(d, "memberships to restore: none recorded by leave\n"), "%s", d);
        free(d);
        ob_ldap_kind.free_rendered(s.rendered);

        /* Records that cannot be read fail the step without a request. */
        records_own = "{\"memberships\": 7}";
        s = (struct ob_step){.action = action(c, "back"), .state = OB_STEP_OWED};
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup_records, NULL, &s), 0);
        cr_assert_not_null(s.render_error);
        free(s.render_error);
        ob_ldap_kind.free_rendered(s.rendered);
        ob_config_free(c);
}

static const char *lookup_none(const char *field, void *ud)
{
        (void)field;
        (void)ud;
        return NULL;
}

Test(ldap_kind, an_account_without_a_dn_fails_its_step_without_a_request)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_step s = {.action = action(c, "leave"), .state = OB_STEP_OWED};
        cr_assert_eq(ob_ldap_kind.render(s.action, lookup_none, NULL, &s), 0);
        cr_assert_not_null(s.render_error);
        cr_assert(strstr(s.render_error, "DN"), "%s", s.render_error);
        ob_ldap_kind.free_rendered(s.rendered);
        free(s.render_error);
        ob_config_free(c);
}

/* ---- the DN a move gives (directory.c, libldap's parser) ---- */

Test(ldap_kind, a_moved_dn_keeps_its_rdn_escaped_whatever_it_holds)
{
        static const struct {
                const char *dn, *same_as;
        } cases[] = {
                /* ' #Zoë, "Q"+\x': a leading space, ',' '"' '+' '\' and UTF-8 */
                {"cn=\\ #Zoë\\, \\\"Q\\\"\\+\\\\x,ou=people,dc=example,dc=org",
                 "cn=\\20#Zo\\C3\\AB\\2C \\22Q\\22\\2B\\5Cx,ou=disabled,dc=example,dc=org"},
                /* a leading '#', as slapd writes it (hex pairs) */
                {"cn=\\232 \\C3\\9Cnal,ou=people,dc=example,dc=org", "cn=\\#2 Ünal,ou=disabled,dc=example,dc=org"},
                /* a multi-valued RDN stays whole */
                {"cn=Ann+uid=ann,ou=people,dc=example,dc=org", "cn=Ann+uid=ann,ou=disabled,dc=example,dc=org"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *moved = NULL;
                cr_assert_eq(ob_dn_moved(cases[i].dn, "ou=disabled,dc=example,dc=org", &moved), 0, "case %zu", i);
                cr_assert_eq(ob_dn_equal(moved, cases[i].same_as), 1, "case %zu: %s is not %s", i, moved,
                             cases[i].same_as);
                free(moved);
        }
        char *moved = NULL;
        cr_assert_eq(ob_dn_moved("not a dn", "ou=x,dc=y", &moved), -EINVAL);
        cr_assert_eq(ob_dn_moved("cn=a,dc=y", "nope", &moved), -EINVAL);
        cr_assert_eq(ob_dn_moved("", "ou=x,dc=y", &moved), -EINVAL);
        cr_assert_null(moved);
}
