/* test_scim.c: the scim kind without a network: its keys and rules, the
 * filter it renders for a hostile userName, and what a dry run shows. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "connector.h"
#include "plan.h"
#include "report.h"
#include "scim.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */

static char token_path[] = "/tmp/ob-test-scim-token-XXXXXX";

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        int fd = mkstemp(token_path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "t0ken\n", 6), 6);
        close(fd);
}

static void teardown(void)
{
        unlink(token_path);
}

TestSuite(scim, .init = setup, .fini = teardown);

/* Loads the head, then tail with every %s replaced by the token file. */
static int load(const char *tail, struct ob_config **ret, struct ob_config_error *err)
{
        char path[] = "/tmp/ob-test-scim-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs("directory:\n"
              "  uri: ldaps://127.0.0.1\n"
              "  base: dc=x\n"
              "mappings: [openldap]\n",
              f);
        for (const char *p = tail; *p; p++) {
                if (p[0] == '%' && p[1] == 's') {
                        fputs(token_path, f);
                        p++;
                } else {
                        fputc(*p, f);
                }
        }
        fclose(f);
        *ret = NULL;
        int r = ob_config_load(path, ret, err);
        unlink(path);
        return r;
}

static const char good[] = "connectors:\n"
                           "  idp:\n"
                           "    type: scim\n"
                           "    base_url: https://scim.example.org/scim/v2/\n"
                           "    auth: {type: bearer, token_file: %s}\n"
                           "actions:\n"
                           "  scim_disable: {connector: idp, operation: disable}\n"
                           "  scim_groups: {connector: idp, operation: remove_groups, match: externalId,"
                           " value: \"{{ account.dn }}\"}\n"
                           "  scim_enable: {connector: idp, operation: enable}\n"
                           "transitions:\n"
                           "  deactivate:\n"
                           "    to: inactive\n"
                           "    actions: [scim_disable, scim_groups]\n"
                           "  reactivate:\n"
                           "    from: [inactive]\n"
                           "    to: active\n"
                           "    actions: [scim_enable]\n";

Test(scim, the_connector_table_knows_the_scim_type)
{
        cr_assert_eq(ob_connector_kind_find("scim"), &ob_scim_kind);
}

Test(scim, a_filter_value_is_a_json_string_so_a_quote_or_backslash_cannot_end_it)
{
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_scim_filter(&b, "userName", "o\"brien\\x\" or userName pr or userName eq \""), 0);
        cr_assert_str_eq(b.data, "userName eq \"o\\\"brien\\\\x\\\" or userName pr or userName eq \\\"\"");
        ob_buf_reset(&b);
        cr_assert_eq(ob_scim_filter(&b, "externalId", "a\nb\x01"), 0);
        cr_assert_str_eq(b.data, "externalId eq \"a\\nb\\u0001\"");
        ob_buf_reset(&b);
        cr_assert_eq(ob_scim_filter(&b, "userName", "\xff"), -OB_ETEMPLATE);
        ob_buf_free(&b);
}

Test(scim, the_loader_reads_the_keys_and_defaults_the_match_to_the_uid)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        const struct ob_scim_connector *k = c->connectors[0].settings;
        cr_assert_eq(c->connectors[0].kind, &ob_scim_kind);
        cr_assert_str_eq(k->http.base_url, "https://scim.example.org/scim/v2", "the trailing slash stays");
        cr_assert(k->http.tls_verify);
        const struct ob_scim_action *d = c->actions[0].settings, *g = c->actions[1].settings;
        cr_assert_eq(d->op, OB_SCIM_DISABLE);
        cr_assert_str_eq(d->match, "userName");
        cr_assert_str_eq(ob_tpl_source(d->value), "{{ account.uid }}");
        cr_assert_eq(g->op, OB_SCIM_REMOVE_GROUPS);
        cr_assert_str_eq(g->match, "externalId");
        cr_assert_eq(((const struct ob_scim_action *)c->actions[2].settings)->op, OB_SCIM_ENABLE);
        ob_config_free(c);
}

Test(scim, wrong_keys_are_errors_at_their_place)
{
        static const struct {
                const char *tail, *needle;
        } cases[] = {
                {"connectors:\n  idp: {type: scim}\n", "connectors.idp: missing required key 'base_url'"},
                {"connectors:\n  idp: {type: scim, base_url: ftp://x}\n",
                 "connectors.idp.base_url must start with http:// or https://"},
                {"connectors:\n  idp: {type: scim, base_url: \"http://x\", auth: {type: bearer, token_file: %s}}\n"
                 "actions:\n  a: {connector: idp, operation: disable}\n",
                 "would cross the network in clear text over http://"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\", auth: {type: bearer, token: abc}}\n",
                 "token"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n  a: {connector: idp}\n",
                 "actions.a: missing required key 'operation'"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: suspend}\n",
                 "suspend"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: disable, match: externalId}\n",
                 "actions.a: match: externalId needs a value: template"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: disable, match: email}\n",
                 "email"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: disable, url: /x}\n",
                 "unknown key 'url' in actions.a"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: disable, groups: [eng]}\n",
                 "actions.a: groups chooses the groups of remove_groups; operation disable has none"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: delete, group_ids: [\"1\"]}\n",
                 "actions.a: group_ids chooses the groups of remove_groups"},
                {"connectors:\n  idp: {type: scim, base_url: \"https://x\"}\nactions:\n"
                 "  a: {connector: idp, operation: remove_groups, groups: eng}\n",
                 "must be a list of strings"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ob_config *c;
                struct ob_config_error err;
                cr_assert_eq(load(cases[i].tail, &c, &err), -OB_ECONFIG, "case %zu loaded", i);
                cr_assert(strstr(err.message, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.message,
                          cases[i].needle);
                cr_assert_neq(err.column, 0, "case %zu: no position: %s", i, err.message);
        }
}

static struct ob_account *person(const char *uid)
{
        struct ob_account *a = ob_account_new();
        char buf[128];
        snprintf(buf, sizeof(buf), "id-%s", uid);
        a->id = strdup(buf);
        snprintf(buf, sizeof(buf), "uid=%s,dc=x", uid);
        a->dn = strdup(buf);
        ob_account_add(a, "uid", uid, strlen(uid));
        ob_account_add(a, "employeeType", "Inactive", 8);
        return a;
}

static char *report(const struct ob_config *c, struct ob_account_plan *p, bool json)
{
        struct ob_report_item item = {.plan = p, .writeback_result = 1};
        struct ob_report_summary sum = {.dry_run = true, .now = NOW, .accounts_read = 1};
        sum.steps_owed = ob_account_plan_owed(p);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (json)
                ob_report_json(f, &item, 1, &sum);
        else
                ob_report_text(f, c, &item, 1, &sum);
        fclose(f);
        return text;
}

Test(scim, a_dry_run_lists_the_requests_with_the_escaped_filter_and_a_masked_token)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_account *a = person("o\"b\\c");
        struct ob_plan_input in = {.account = a, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        cr_assert_eq(p->nsteps, 2);
        const struct ob_scim_rendered *q = p->steps[0].rendered;
        cr_assert_null(p->steps[0].render_error);
        cr_assert_str_eq(q->value, "o\"b\\c");
        cr_assert_str_eq(q->filter, "userName eq \"o\\\"b\\\\c\"");
        cr_assert_str_eq(q->lookup_url,
                         "https://scim.example.org/scim/v2/Users?filter=userName%20eq%20%22o%5C%22b%5C%5Cc%22");
        q = p->steps[1].rendered;
        cr_assert_str_eq(q->filter, "externalId eq \"uid=o\\\"b\\\\c,dc=x\"");

        char *text = report(c, p, false);
        cr_assert(strstr(text, "SCIM disable https://scim.example.org/scim/v2 (userName eq \"o\\\\\"b\\\\\\\\c\")\n"
                               "       Authorization: Bearer ***\n"
                               "       GET /Users?filter=userName eq \"o\\\\\"b\\\\\\\\c\"\n"
                               "       PATCH /Users/{id} replace active=false\n"),
                  "%s", text);
        cr_assert(strstr(text, "       GET /Groups?filter=members[value eq \"{id}\"]\n"
                               "       PATCH /Groups/{group} remove members[value eq \"{id}\"] (each group)\n"),
                  "%s", text);
        cr_assert_null(strstr(text, "t0ken"), "%s", text);
        free(text);
        char *json = report(c, p, true);
        cr_assert(strstr(json, "\"request\":{\"kind\":\"scim\",\"base_url\":\"https://scim.example.org/scim/v2\","
                               "\"operation\":\"disable\",\"filter\":\"userName eq \\\"o\\\\\\\"b\\\\\\\\c\\\"\","
                               "\"headers\":[\"Authorization: Bearer ***\"],"
                               "\"requests\":[\"GET /Users?filter=userName eq \\\"o\\\\\\\"b\\\\\\\\c\\\"\","
                               "\"PATCH /Users/{id} replace active=false\"]}"),
                  "%s", json);
        cr_assert_null(strstr(json, "t0ken"), "%s", json);
        free(json);
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_config_free(c);
}

Test(scim, an_empty_value_fails_the_step_without_a_request)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load("connectors:\n  idp: {type: scim, base_url: \"https://x\"}\n"
                          "actions:\n  a: {connector: idp, operation: delete, match: externalId,"
                          " value: \"{{ account.attr.employeeNumber }}\"}\n"
                          "transitions:\n  deactivate: {to: inactive, actions: [a]}\n",
                          &c, &err),
                     0, "%s", err.message);
        struct ob_account *a = person("bob");
        struct ob_plan_input in = {.account = a, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        cr_assert_eq(p->nsteps, 1);
        cr_assert_str_eq(p->steps[0].render_error, "externalId: the value is empty");
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_config_free(c);
}

Test(scim, chosen_groups_are_rendered_escaped_and_listed_in_the_dry_run)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load("connectors:\n  idp: {type: scim, base_url: \"https://x\"}\n"
                          "actions:\n  a: {connector: idp, operation: remove_groups,"
                          " groups: ['ops \"night\" \\ crew', \"{{ account.uid }}-team\"], group_ids: [\"g/1\"]}\n"
                          "  b: {connector: idp, operation: remove_groups,"
                          " groups: [eng, \"{{ account.attr.employeeNumber }}\"]}\n"
                          "transitions:\n  deactivate: {to: inactive, actions: [a, b]}\n",
                          &c, &err),
                     0, "%s", err.message);
        struct ob_account *a = person("o\"b");
        struct ob_plan_input in = {.account = a, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        cr_assert_eq(p->nsteps, 2);
        cr_assert_null(p->steps[0].render_error);
        const struct ob_scim_rendered *q = p->steps[0].rendered;
        cr_assert_eq(q->ngroups, 3);
        cr_assert_str_eq(q->groups[0], "displayName eq \"ops \\\"night\\\" \\\\ crew\"");
        cr_assert_str_eq(q->groups[1], "displayName eq \"o\\\"b-team\"");
        cr_assert_str_eq(q->groups[2], "id eq \"g/1\"");
        /* An empty name is not "every group": the step fails. */
        cr_assert_str_eq(p->steps[1].render_error, "groups[1]: the value is empty");

        char *text = report(c, p, false);
        cr_assert(strstr(text, "       groups:\n"
                               "         displayName eq \"ops \\\\\"night\\\\\" \\\\\\\\ crew\"\n"
                               "         displayName eq \"o\\\\\"b-team\"\n"
                               "         id eq \"g/1\"\n"),
                  "%s", text);
        cr_assert(strstr(text, "       GET /Groups?filter=id eq \"g/1\" and members[value eq \"{id}\"]\n"
                               "       PATCH /Groups/{group} remove members[value eq \"{id}\"] (each group found)\n"),
                  "%s", text);
        free(text);
        char *json = report(c, p, true);
        cr_assert(strstr(json, "\"groups\":[\"displayName eq \\\"ops \\\\\\\"night\\\\\\\" \\\\\\\\ crew\\\"\","
                               "\"displayName eq \\\"o\\\\\\\"b-team\\\"\",\"id eq \\\"g/1\\\"\"]"),
                  "%s", json);
        free(json);
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_config_free(c);
}
