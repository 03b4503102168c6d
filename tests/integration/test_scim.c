/* test_scim.c: `offboard reconcile` against the real slapd of the harness
 * and a real SCIM 2.0 server (scimmy, tests/harness/scim). Both run once for
 * the executable; the SCIM server keeps its users between tests, so each
 * test maps directory uids to downstream userNames with a prefix of its own.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "loop.h"
#include "plan.h"
#include "recorder.h"
#include "run.h"
#include "scim.h"
#include "scim_server.h"
#include "slapd.h"

#define MALLORY "mal lory/?#%\"\\*()\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac" /* gen_fixture.py's MALLORY */

static struct ob_test_slapd srv;
static struct ob_test_scim scim;
static struct ob_test_manifest *man;
static char dir[256];
static char cfgpath[300];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(0) < 0)
                fprintf(stderr, "could not start slapd\n");
        if (ob_test_scim_share() < 0)
                fprintf(stderr, "could not start the SCIM server\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_scim_unshare();
        ob_test_slapd_unshare();
}

static void setup(void)
{
        ob_test_case_begin(&srv, &man, "scim-e2e", dir, sizeof(dir));
        cr_assert_eq(ob_test_scim_attach(&scim), 0, "the SCIM server is not running");
}

static void teardown(void)
{
        ob_test_case_end(man, dir);
}

TestSuite(scim_e2e, .init = setup, .fini = teardown, .timeout = 120);

/* Downstream userNames are prefix + uid; choose (YAML, may be "") is added
 * to the remove_groups action's keys, such as ", groups: [a, b]". */
static void write_config_choosing(const char *prefix, const char *choose)
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
                "  filter: \"(objectClass=inetOrgPerson)\"\n"
                "  timeout: 10s\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "state:\n"
                "  path: state.db\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  idp:\n"
                "    type: scim\n"
                "    base_url: %s\n"
                "    auth: {type: bearer, token_file: %s}\n"
                "    allow_insecure: true\n" /* plain http on loopback */
                "    timeout: 5s\n"
                "    concurrency: 2\n"
                "    retry: {attempts: 3, backoff: 50ms, max_backoff: 3s}\n"
                "actions:\n"
                "  scim-disable: {connector: idp, operation: disable, value: \"%s{{ account.uid }}\"}\n"
                "  scim-groups: {connector: idp, operation: remove_groups, value: \"%s{{ account.uid }}\","
                " after: [scim-disable]%s}\n"
                "  scim-enable: {connector: idp, operation: enable, value: \"%s{{ account.uid }}\"}\n"
                "  scim-delete: {connector: idp, operation: delete, value: \"%s{{ account.uid }}\"}\n"
                "transitions:\n"
                "  deactivate: {to: inactive, actions: [scim-disable, scim-groups]}\n"
                "  end: {to: ended, actions: [scim-delete]}\n"
                "  reactivate: {from: [inactive], to: active, actions: [scim-enable]}\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, scim.base_url, scim.token_file,
                prefix, prefix, choose, prefix, prefix);
        fclose(f);
}

static void write_config(const char *prefix)
{
        write_config_choosing(prefix, "");
}

static void offboard(const char *cmd, char **ret_out)
{
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", cfgpath, NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "offboard %s: exit %d\nstdout: %.3000s\nstderr: %.3000s", cmd, rc, out, err);
        if (ret_out)
                *ret_out = out;
        else
                free(out);
        free(err);
}

static void add_user(const char *name, char id[64])
{
        int r = ob_test_scim_add_user(&scim, name, NULL, id);
        cr_assert_eq(r, 0, "seeding %s: %d", name, r);
}

static void add_group_id(const char *name, const char *const *members, char id[64])
{
        int r = ob_test_scim_add_group(&scim, name, members, id);
        cr_assert_eq(r, 0, "seeding %s: %d", name, r);
}

static void add_group(const char *name, const char *const *members)
{
        char id[64];
        add_group_id(name, members, id);
}

/* The ids of the members of group id, in a string "[id1][id2]...". */
static void group_members(const char *id, char *out, size_t n)
{
        char path[128], *body = NULL;
        snprintf(path, sizeof(path), "/Groups/%s", id);
        int st = ob_test_scim_request(&scim, "GET", path, NULL, &body);
        cr_assert_eq(st, 200, "GET %s: %d %s", path, st, body);
        json_t *g = json_loads(body, 0, NULL);
        cr_assert_not_null(g, "%s", body);
        size_t i, k = 0;
        json_t *m;
        out[0] = '\0';
        json_array_foreach(json_object_get(g, "members"), i, m)
        {
                int w = snprintf(out + k, n - k, "[%s]", json_string_value(json_object_get(m, "value")));
                cr_assert(w > 0 && (size_t)w < n - k);
                k += (size_t)w;
        }
        json_decref(g);
        free(body);
}

static void expect_user(const char *id, int active, int ngroups)
{
        int a = -1, g = -1;
        int r = ob_test_scim_user_state(&scim, id, &a, &g);
        cr_assert_eq(r, 0, "user %s: %d", id, r);
        cr_assert_eq(a, active, "user %s: active %d, expected %d", id, a, active);
        if (ngroups >= 0)
                cr_assert_eq(g, ngroups, "user %s: in %d groups, expected %d", id, g, ngroups);
}

/* ---- the server's request log ---- */

struct entry {
        char method[16];
        char url[1024]; /* percent-decoded */
        char if_match[64];
        char body[1024];
        double time;
};

static void decode(char *out, size_t n, const char *in)
{
        size_t k = 0;
        for (; *in && k + 1 < n; in++) {
                unsigned v;
                if (in[0] == '%' && in[1] && in[2] && sscanf(in + 1, "%2x", &v) == 1) {
                        out[k++] = (char)v;
                        in += 2;
                } else {
                        out[k++] = *in;
                }
        }
        out[k] = '\0';
}

/* The log from line `from` on; returns how many entries. */
static size_t read_log(size_t from, struct entry **ret)
{
        char *log = ob_test_scim_log(&scim);
        cr_assert_not_null(log);
        size_t n = 0, line = 0;
        struct entry *v = NULL;
        for (char *save = NULL, *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
                if (line < from)
                        continue;
                json_t *j = json_loads(l, 0, NULL);
                cr_assert_not_null(j, "log line: %s", l);
                v = realloc(v, (n + 1) * sizeof(*v));
                cr_assert_not_null(v);
                struct entry *e = &v[n++];
                memset(e, 0, sizeof(*e));
                snprintf(e->method, sizeof(e->method), "%s", json_string_value(json_object_get(j, "method")));
                decode(e->url, sizeof(e->url), json_string_value(json_object_get(j, "url")));
                const char *im = json_string_value(json_object_get(j, "if_match"));
                snprintf(e->if_match, sizeof(e->if_match), "%s", im ? im : "");
                snprintf(e->body, sizeof(e->body), "%s", json_string_value(json_object_get(j, "body")));
                e->time = json_number_value(json_object_get(j, "time"));
                json_decref(j);
        }
        free(log);
        *ret = v;
        return n;
}

static size_t log_lines(void)
{
        struct entry *v;
        size_t n = read_log(0, &v);
        free(v);
        return n;
}

static const struct entry *find(const struct entry *v, size_t n, const char *method, const char *url_part)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].method, method) == 0 && strstr(v[i].url, url_part))
                        return &v[i];
        return NULL;
}

/* ---- tests ---- */

Test(scim_e2e, deactivation_disables_the_user_and_removes_it_from_every_group_and_only_it)
{
        char bob[64], alice[64], mal[64];
        add_user("t1-bob", bob);
        add_user("t1-alice", alice);
        add_user("t1-" MALLORY, mal);
        add_group("t1-engineering", (const char *const[]){bob, alice, mal, NULL});
        add_group("t1-ops", (const char *const[]){bob, NULL});
        add_group("t1-sales", (const char *const[]){alice, NULL});
        write_config("t1-");
        size_t before = log_lines();

        offboard("reconcile", NULL);
        expect_user(bob, 0, 0);
        expect_user(mal, 0, 0);
        expect_user(alice, 1, 2); /* active in the directory: untouched */

        struct entry *v;
        size_t n = read_log(before, &v);
        char url[128];
        snprintf(url, sizeof(url), "/scim/v2/Users/%s", bob);
        const struct entry *patch = find(v, n, "PATCH", url);
        cr_assert_not_null(patch, "no PATCH %s", url);
        cr_assert_str_eq(patch->body, "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
                                      "\"Operations\":[{\"op\":\"replace\",\"path\":\"active\",\"value\":false}]}");
        cr_assert_str_eq(patch->if_match, "W/\"1\"", "the version the lookup read");
        const struct entry *g = find(v, n, "GET", "/scim/v2/Groups?filter=members[value eq \"");
        cr_assert_not_null(g);
        /* Each group PATCHed once, without If-Match (a remove by value
         * overwrites nothing; mallory leaves engineering at the same time). */
        const char *groups[8];
        size_t ngroups = 0;
        char path[128];
        snprintf(path, sizeof(path), "\"path\":\"members[value eq \\\"%s\\\"]\"", bob);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(v[i].method, "PATCH") != 0 || !strstr(v[i].url, "/Groups/") || !strstr(v[i].body, path))
                        continue;
                cr_assert_str_eq(v[i].if_match, "", "%s: If-Match '%s'", v[i].url, v[i].if_match);
                for (size_t k = 0; k < ngroups; k++)
                        cr_assert_str_neq(groups[k], v[i].url, "bob was removed from %s twice", v[i].url);
                cr_assert_lt(ngroups, 8);
                groups[ngroups++] = v[i].url;
        }
        cr_assert_eq(ngroups, 2, "bob was removed from %zu groups", ngroups);
        free(v);

        /* Done is done: a second pass sends nothing. */
        before = log_lines();
        offboard("reconcile", NULL);
        cr_assert_eq(log_lines(), before, "a second reconcile sent requests again");
}

Test(scim_e2e, a_user_name_with_a_quote_and_a_backslash_is_escaped_in_the_filter)
{
        char mal[64], decoy[64];
        add_user("t2-" MALLORY, mal);
        /* What a filter cut at the unescaped quote would name. */
        add_user("t2-mal lory/?#%", decoy);
        write_config("t2-");
        size_t before = log_lines();
        offboard("reconcile", NULL);
        expect_user(mal, 0, 0);
        expect_user(decoy, 1, 0);
        struct entry *v;
        size_t n = read_log(before, &v);
        const struct entry *e =
                find(v, n, "GET", "/scim/v2/Users?filter=userName eq \"t2-mal lory/?#%\\\"\\\\*()\xc3\xa9\xe6\x97\xa5"
                                  "\xe6\x9c\xac\"");
        cr_assert_not_null(e, "the filter was not escaped as a JSON string");
        free(v);
}

/* Runs `offboard plan --format json --account uid`; the scim-groups step's
 * request as the report describes it (a new reference). */
static json_t *planned_groups_request(const char *uid)
{
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--format", "json", "--account", uid, "--config", cfgpath, NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        json_t *report = json_loads(out ? out : "", 0, NULL);
        cr_assert_not_null(report, "plan: exit %d\nstdout: %.3000s\nstderr: %.3000s", rc, out, err);
        json_t *req = NULL, *a, *s;
        size_t i, k;
        json_array_foreach(json_object_get(report, "accounts"), i, a)
        {
                json_array_foreach(json_object_get(a, "actions"), k, s)
                {
                        if (strcmp(json_string_value(json_object_get(s, "name")) ?: "", "scim-groups") == 0)
                                req = json_incref(json_object_get(s, "request"));
                }
        }
        cr_assert_not_null(req, "no scim-groups step in the plan:\n%.4000s", out);
        json_decref(report);
        free(out);
        free(err);
        return req;
}

/* The i-th string of list key of o, "" past its end. */
static const char *item(json_t *o, const char *key, size_t i)
{
        const char *v = json_string_value(json_array_get(json_object_get(o, key), i));
        return v ? v : "";
}

Test(scim_e2e, only_the_configured_groups_lose_the_user_and_one_absent_or_not_listing_it_is_done)
{
        char bob[64], alice[64], eng[64], ops[64], sales[64], other[64];
        add_user("t8-bob", bob);
        add_user("t8-alice", alice);
        add_group_id("t8-engineering", (const char *const[]){bob, alice, NULL}, eng);
        add_group_id("t8-ops", (const char *const[]){bob, NULL}, ops);
        add_group_id("t8-sales", (const char *const[]){alice, bob, NULL}, sales);
        add_group_id("t8-other", (const char *const[]){alice, NULL}, other); /* configured, without bob */
        /* Two of bob's three groups, one by name and one by id; a name no
         * group has; a group that does not list him. */
        char choose[256];
        snprintf(choose, sizeof(choose), ", groups: [t8-engineering, t8-absent, t8-other], group_ids: [\"%s\"]", ops);
        write_config_choosing("t8-", choose);

        /* plan shows the chosen groups and the requests for each. */
        json_t *req = planned_groups_request("bob");
        cr_assert_str_eq(item(req, "groups", 0), "displayName eq \"t8-engineering\"");
        cr_assert_str_eq(item(req, "groups", 1), "displayName eq \"t8-absent\"");
        cr_assert_str_eq(item(req, "groups", 2), "displayName eq \"t8-other\"");
        char want[256];
        snprintf(want, sizeof(want), "id eq \"%s\"", ops);
        cr_assert_str_eq(item(req, "groups", 3), want);
        cr_assert_str_eq(item(req, "groups", 4), "");
        cr_assert_str_eq(item(req, "requests", 1),
                         "GET /Groups?filter=displayName eq \"t8-engineering\" and members[value eq \"{id}\"]");
        json_decref(req);
        char *text = NULL;
        offboard("plan", &text);
        cr_assert(strstr(text, "groups:\n") && strstr(text, "displayName eq \"t8-absent\""), "%s", text);
        free(text);

        size_t before = log_lines();
        offboard("reconcile", NULL);
        expect_user(bob, 0, 1);
        expect_user(alice, 1, 3);
        char m[512];
        group_members(sales, m, sizeof(m));
        char still[200];
        snprintf(still, sizeof(still), "[%s][%s]", alice, bob);
        cr_assert_str_eq(m, still, "the group not configured changed");
        group_members(eng, m, sizeof(m));
        snprintf(still, sizeof(still), "[%s]", alice);
        cr_assert_str_eq(m, still);
        group_members(ops, m, sizeof(m));
        cr_assert_str_eq(m, "");
        group_members(other, m, sizeof(m));
        cr_assert_str_eq(m, still);

        struct entry *v;
        size_t n = read_log(before, &v);
        cr_assert_null(find(v, n, "GET", "/scim/v2/Groups?filter=members[value eq"), "every group was listed");
        char url[256];
        size_t patches = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].method, "PATCH") == 0 && strstr(v[i].url, "/Groups/"))
                        patches++;
        cr_assert_eq(patches, 2, "%zu groups were changed", patches);
        snprintf(url, sizeof(url), "/scim/v2/Groups/%s", eng);
        cr_assert_not_null(find(v, n, "PATCH", url));
        snprintf(url, sizeof(url), "/scim/v2/Groups/%s", ops);
        cr_assert_not_null(find(v, n, "PATCH", url));
        snprintf(url, sizeof(url), "/scim/v2/Groups?filter=displayName eq \"t8-absent\" and members[value eq \"%s\"]",
                 bob);
        cr_assert_not_null(find(v, n, "GET", url), "the absent group was not looked for");
        free(v);

        /* Done, not failed: a second pass sends nothing. */
        before = log_lines();
        offboard("reconcile", NULL);
        cr_assert_eq(log_lines(), before, "a second reconcile sent requests again");
}

#define HOSTILE_GROUP "t9-ops \"night\" \\ crew"

Test(scim_e2e, a_configured_group_name_with_a_quote_and_a_backslash_is_escaped_in_the_filter)
{
        char bob[64], hostile[64], decoy[64];
        add_user("t9-bob", bob);
        add_group_id(HOSTILE_GROUP, (const char *const[]){bob, NULL}, hostile);
        /* What a filter cut at the unescaped quote would name. */
        add_group_id("t9-ops ", (const char *const[]){bob, NULL}, decoy);
        /* YAML single quotes: the quote and the backslash are literal. */
        write_config_choosing("t9-", ", groups: ['" HOSTILE_GROUP "']");
        json_t *req = planned_groups_request("bob");
        cr_assert_str_eq(item(req, "groups", 0), "displayName eq \"t9-ops \\\"night\\\" \\\\ crew\"");
        json_decref(req);

        size_t before = log_lines();
        offboard("reconcile", NULL);
        expect_user(bob, 0, 1);
        char m[200];
        group_members(hostile, m, sizeof(m));
        cr_assert_str_eq(m, "", "bob is still in the configured group");
        struct entry *v;
        size_t n = read_log(before, &v);
        char url[256];
        snprintf(
                url, sizeof(url),
                "/scim/v2/Groups?filter=displayName eq \"t9-ops \\\"night\\\" \\\\ crew\" and members[value eq \"%s\"]",
                bob);
        cr_assert_not_null(find(v, n, "GET", url), "the group's name was not escaped as a JSON string");
        snprintf(url, sizeof(url), "/scim/v2/Groups/%s", decoy);
        cr_assert_null(find(v, n, "PATCH", url), "the decoy group was changed");
        free(v);
}

Test(scim_e2e, a_user_missing_downstream_is_done_and_never_asked_for_again)
{
        write_config("t3-");
        char *out;
        offboard("plan", &out);
        cr_assert(strstr(out, "GET /Users?filter=userName eq \"t3-bob\""), "%s", out);
        cr_assert(strstr(out, "PATCH /Users/{id} replace active=false"), "%s", out);
        cr_assert_null(strstr(out, "scim-test-token"), "%s", out);
        free(out);
        size_t before = log_lines();
        offboard("reconcile", NULL);
        struct entry *v;
        size_t n = read_log(before, &v);
        cr_assert_not_null(find(v, n, "GET", "filter=userName eq \"t3-bob\""));
        cr_assert_null(find(v, n, "PATCH", "/Users/"), "something was changed downstream");
        free(v);
        before = log_lines();
        offboard("reconcile", NULL);
        cr_assert_eq(log_lines(), before, "a missing user was looked up again");
}

Test(scim_e2e, reactivation_sets_active_back_to_true)
{
        char bob[64];
        add_user("t4-bob", bob);
        write_config("t4-");
        offboard("reconcile", NULL);
        expect_user(bob, 0, -1);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\n"
                                              "replace: employeeType\nemployeeType: Active\n"),
                     0);
        offboard("reconcile", NULL);
        /* Put him back for the other tests before anything can fail. */
        int restored = ob_test_ldapmodify(&srv, "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\n"
                                                "replace: employeeType\nemployeeType: Inactive\n");
        expect_user(bob, 1, -1);
        cr_assert_eq(restored, 0);
}

Test(scim_e2e, a_429_with_retry_after_is_retried_no_sooner_and_the_step_completes)
{
        char bob[64], mal[64];
        add_user("t5-bob", bob);
        add_user("t5-" MALLORY, mal);
        write_config("t5-");
        size_t before = log_lines();
        cr_assert_eq(ob_test_scim_throttle(&scim, 1, 2), 0);
        offboard("reconcile", NULL);
        expect_user(bob, 0, 0);
        expect_user(mal, 0, 0);
        struct entry *v;
        size_t n = read_log(before, &v);
        cr_assert_geq(n, 1);
        /* The first request got the 429; the same request came again later. */
        const struct entry *again = NULL;
        for (size_t i = 1; i < n && !again; i++)
                if (strcmp(v[i].method, v[0].method) == 0 && strcmp(v[i].url, v[0].url) == 0)
                        again = &v[i];
        cr_assert_not_null(again, "%s %s was not sent again", v[0].method, v[0].url);
        cr_assert_geq(again->time - v[0].time, 1.95, "retried %.3f s after a Retry-After of 2 s",
                      again->time - v[0].time);
        free(v);
}

Test(scim_e2e, the_delete_stage_deletes_the_user_with_if_match)
{
        char erin[64];
        add_user("t6-erin", erin);
        write_config("t6-");
        size_t before = log_lines();
        offboard("reconcile", NULL);
        int a, g;
        cr_assert_eq(ob_test_scim_user_state(&scim, erin, &a, &g), -ENOENT, "erin is still there");
        struct entry *v;
        size_t n = read_log(before, &v);
        char url[128];
        snprintf(url, sizeof(url), "/scim/v2/Users/%s", erin);
        const struct entry *d = find(v, n, "DELETE", url);
        cr_assert_not_null(d);
        cr_assert_str_eq(d->if_match, "W/\"1\"");
        free(v);
}

Test(scim_e2e, a_user_changed_between_lookup_and_patch_is_looked_up_again_and_patched_at_its_new_version)
{
        char bob[64];
        add_user("t7-bob", bob);
        write_config("t7-");
        size_t before = log_lines();
        cr_assert_eq(ob_test_scim_stale(&scim, 1), 0);
        offboard("reconcile", NULL);
        expect_user(bob, 0, 0);
        struct entry *v;
        size_t n = read_log(before, &v);
        char url[128];
        snprintf(url, sizeof(url), "/scim/v2/Users/%s", bob);
        const struct entry *first = NULL, *second = NULL;
        size_t lookups = 0;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(v[i].method, "GET") == 0 && strstr(v[i].url, "userName eq \"t7-bob\""))
                        lookups++;
                if (strcmp(v[i].method, "PATCH") == 0 && strcmp(v[i].url, url) == 0) {
                        if (!first)
                                first = &v[i];
                        else if (!second)
                                second = &v[i];
                }
        }
        cr_assert_not_null(second, "the PATCH that got 412 was not sent again");
        cr_assert_str_eq(first->if_match, "W/\"1\"");
        cr_assert_str_eq(second->if_match, "W/\"2\"", "the second PATCH did not use the version read again");
        /* disable: before and after the 412; remove_groups: once */
        cr_assert_eq(lookups, 3, "the user was looked up %zu times", lookups);
        free(v);
}

/* ---- one step against answers no SCIM server should give (recorder.py) ---- */

struct step_out {
        struct ob_loop *loop;
        int calls;
        struct ob_response resp;
};

static void on_step_done(const struct ob_response *resp, void *ud)
{
        struct step_out *o = ud;
        o->calls++;
        o->resp = *resp;
        ob_loop_stop(o->loop);
}

static void on_late(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        *(bool *)ud = true;
        ob_loop_stop(l);
}

/* Runs one step (q, or a disable of bob when NULL) against the recorder
 * with rules; its response. */
static struct ob_response run_step_of(const char *rules, struct ob_test_recorder *rec,
                                      const struct ob_scim_rendered *rq)
{
        cr_assert_eq(ob_test_recorder_start(rec, rules, false), 0);
        struct ob_loop *loop;
        cr_assert_eq(ob_loop_new(&loop), 0);
        char base[200], lookup[300];
        snprintf(base, sizeof(base), "%s/scim/v2", rec->base_url);
        snprintf(lookup, sizeof(lookup), "%s/Users?filter=userName%%20eq%%20%%22bob%%22", base);
        struct ob_scim_connector sc = {.http = {.base_url = base, .tls_verify = true}};
        struct ob_connector k = {.name = "t", .kind = &ob_scim_kind, .settings = &sc, .timeout_ms = 5000,
                                 .concurrency = 1};
        void *c = NULL;
        cr_assert_eq(ob_scim_new(loop, &k, &c), 0);
        struct ob_scim_rendered q = {.op = OB_SCIM_DISABLE, .attribute = "userName", .value = "bob",
                                     .filter = "userName eq \"bob\"", .lookup_url = lookup};
        if (rq) {
                q.op = rq->op;
                q.groups = rq->groups;
                q.ngroups = rq->ngroups;
        }
        struct ob_step s = {.rendered = &q};
        struct step_out out = {.loop = loop};
        cr_assert_eq(ob_scim_start(c, &s, on_step_done, &out), 0);
        cr_assert_eq(out.calls, 0, "the callback ran inside start()");
        bool late = false;
        struct ob_timer *safety;
        cr_assert_eq(ob_loop_timer(loop, 20000, on_late, &late, &safety), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_not(late, "the step never finished");
        cr_assert_eq(out.calls, 1);
        ob_loop_timer_cancel(loop, safety);
        ob_scim_free(c);
        ob_loop_free(loop);
        return out.resp;
}

static struct ob_response run_step(const char *rules, struct ob_test_recorder *rec)
{
        return run_step_of(rules, rec, NULL);
}

Test(scim_e2e, an_answer_over_a_mebibyte_fails_the_step_and_nothing_is_changed)
{
        struct ob_buf rules;
        ob_buf_init(&rules);
        cr_assert_eq(ob_buf_adds(&rules, "[{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"pad\\\": \\\""), 0);
        /* One assertion, not one per byte: --full-stats records each. */
        size_t big = 1100 * 1024;
        cr_assert_eq(ob_buf_reserve(&rules, big), 0);
        memset(rules.data + rules.len, 'x', big);
        rules.len += big;
        rules.data[rules.len] = '\0';
        cr_assert_eq(ob_buf_adds(&rules, "\\\"}\"}]"), 0);
        struct ob_test_recorder rec = {0};
        struct ob_response r = run_step(rules.data, &rec);
        ob_buf_free(&rules);
        cr_assert_lt(r.result, 0);
        cr_assert_str_eq(r.error, "looking up the user: the answer is larger than 1 MiB");
        cr_assert_eq(ob_test_recorder_count(&rec), 1, "something was sent after the lookup");
        ob_test_recorder_stop(&rec);
}

Test(scim_e2e, a_filter_that_matches_two_users_fails_and_changes_neither)
{
        struct ob_test_recorder rec = {0};
        struct ob_response r = run_step(
                "[{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"totalResults\\\": 2, \\\"Resources\\\": "
                "[{\\\"id\\\": \\\"a\\\"}, {\\\"id\\\": \\\"b\\\"}]}\"}]",
                &rec);
        cr_assert_lt(r.result, 0);
        cr_assert_str_eq(r.error, "2 users match userName eq \"bob\" downstream; expected one");
        cr_assert_eq(ob_test_recorder_count(&rec), 1, "something was sent after the lookup");
        ob_test_recorder_stop(&rec);
}

Test(scim_e2e, an_id_from_the_server_stays_one_path_segment)
{
        struct ob_test_recorder rec = {0};
        struct ob_response r = run_step(
                "[{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"totalResults\\\": 1, \\\"Resources\\\": "
                "[{\\\"id\\\": \\\"../Groups/x?y\\\"}]}\"}]",
                &rec);
        cr_assert_eq(r.result, 0, "%s", r.error);
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(q[1].method, "PATCH");
        cr_assert_str_eq(q[1].path, "/scim/v2/Users/..%2FGroups%2Fx%3Fy");
        ob_test_requests_free(q, n);
        ob_test_recorder_stop(&rec);
}

/* A configured group that cannot be read is unknown: the step fails, it is
 * never "not a member", and nothing is removed. */
Test(scim_e2e, a_configured_group_that_cannot_be_read_fails_the_step_and_nothing_is_removed)
{
        char *groups[] = {"displayName eq \"eng\""};
        struct ob_scim_rendered q = {.op = OB_SCIM_REMOVE_GROUPS, .groups = groups, .ngroups = 1};
        static const char user[] = "{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"totalResults\\\": 1, "
                                   "\\\"Resources\\\": [{\\\"id\\\": \\\"u1\\\"}]}\"}";
        static const struct {
                const char *group_rule, *error;
                long status;
        } cases[] = {
                {"{\"match\": \"^/scim/v2/Groups\\\\?\", \"status\": 500, \"body\": \"down\", "
                 "\"content_type\": \"text/plain\"}",
                 "looking for a configured group: ", 500},
                {"{\"match\": \"^/scim/v2/Groups\\\\?\", \"body\": \"{\\\"detail\\\": \\\"no\\\"}\"}",
                 "looking for a configured group: the answer is not a SCIM ListResponse", 200},
                {"{\"match\": \"^/scim/v2/Groups\\\\?\", \"body\": \"{\\\"totalResults\\\": 1, "
                 "\\\"Resources\\\": []}\"}",
                 "looking for a configured group: the answer counts 1 groups and lists 0", 200},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char rules[1024];
                snprintf(rules, sizeof(rules), "[%s, %s]", user, cases[i].group_rule);
                struct ob_test_recorder rec = {0};
                struct ob_response r = run_step_of(rules, &rec, &q);
                cr_assert_lt(r.result, 0, "case %zu: done: %s", i, r.excerpt);
                cr_assert_eq(r.status, cases[i].status, "case %zu: %s", i, r.error);
                cr_assert(strncmp(r.error, cases[i].error, strlen(cases[i].error)) == 0, "case %zu: %s", i, r.error);
                struct ob_test_request *sent;
                size_t n;
                cr_assert_eq(ob_test_recorder_requests(&rec, &sent, &n), 0);
                cr_assert_eq(n, 2, "case %zu: %zu requests", i, n);
                cr_assert_str_eq(sent[1].method, "GET");
                cr_assert(strstr(sent[1].path, "/scim/v2/Groups?filter=displayName%20eq%20%22eng%22%20and%20members"),
                          "%s", sent[1].path);
                ob_test_requests_free(sent, n);
                ob_test_recorder_stop(&rec);
        }
}

/* Every group: a page that lists fewer groups than the answer counts
 * (none at all, or none after the first page) fails the step: the groups
 * not listed are unknown, and the user would keep them. */
Test(scim_e2e, groups_counted_but_not_listed_fail_the_step_instead_of_counting_as_none)
{
        struct ob_scim_rendered q = {.op = OB_SCIM_REMOVE_GROUPS};
        static const char user[] = "{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"totalResults\\\": 1, "
                                   "\\\"Resources\\\": [{\\\"id\\\": \\\"u1\\\"}]}\"}";
        static const struct {
                const char *group_rules, *error;
                size_t requests;
        } cases[] = {
                {"{\"match\": \"^/scim/v2/Groups\\\\?\", \"body\": \"{\\\"totalResults\\\": 2, "
                 "\\\"Resources\\\": []}\"}",
                 "listing the user's groups: the answer counts 2 groups and lists 0", 2},
                {"{\"match\": \"^/scim/v2/Groups\\\\?.*&startIndex=1&\", \"body\": \"{\\\"totalResults\\\": 2, "
                 "\\\"Resources\\\": [{\\\"id\\\": \\\"g1\\\"}]}\"}, "
                 "{\"match\": \"^/scim/v2/Groups\\\\?\", \"body\": \"{\\\"totalResults\\\": 2, "
                 "\\\"Resources\\\": []}\"}",
                 "listing the user's groups: the answer counts 2 groups and lists 1", 3},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char rules[1024];
                snprintf(rules, sizeof(rules), "[%s, %s]", user, cases[i].group_rules);
                struct ob_test_recorder rec = {0};
                struct ob_response r = run_step_of(rules, &rec, &q);
                cr_assert_lt(r.result, 0, "case %zu: done: %s", i, r.excerpt);
                cr_assert(strncmp(r.error, cases[i].error, strlen(cases[i].error)) == 0, "case %zu: %s", i, r.error);
                struct ob_test_request *sent;
                size_t n;
                cr_assert_eq(ob_test_recorder_requests(&rec, &sent, &n), 0);
                /* Nothing was removed: no PATCH went out. */
                cr_assert_eq(n, cases[i].requests, "case %zu: %zu requests", i, n);
                for (size_t k = 0; k < n; k++)
                        cr_assert_str_eq(sent[k].method, "GET", "case %zu: request %zu", i, k);
                ob_test_requests_free(sent, n);
                ob_test_recorder_stop(&rec);
        }
}

/* A group a server lists twice (paging that shifted under it) loses the
 * user once, and the next page starts after what was listed. */
Test(scim_e2e, a_group_listed_twice_is_patched_once_and_paging_goes_on_after_it)
{
        struct ob_scim_rendered q = {.op = OB_SCIM_REMOVE_GROUPS};
        struct ob_test_recorder rec = {0};
        struct ob_response r = run_step_of(
                "[{\"match\": \"^/scim/v2/Users\\\\?\", \"body\": \"{\\\"totalResults\\\": 1, "
                "\\\"Resources\\\": [{\\\"id\\\": \\\"u1\\\"}]}\"}, "
                "{\"match\": \"^/scim/v2/Groups\\\\?.*&startIndex=1&\", \"body\": \"{\\\"totalResults\\\": 3, "
                "\\\"Resources\\\": [{\\\"id\\\": \\\"g1\\\"}, {\\\"id\\\": \\\"g1\\\"}]}\"}, "
                "{\"match\": \"^/scim/v2/Groups\\\\?.*&startIndex=3&\", \"body\": \"{\\\"totalResults\\\": 3, "
                "\\\"Resources\\\": [{\\\"id\\\": \\\"g2\\\"}]}\"}]",
                &rec, &q);
        cr_assert_eq(r.result, 0, "%s", r.error);
        cr_assert_str_eq(r.excerpt, "removed from 2 of 2 groups");
        struct ob_test_request *sent;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &sent, &n), 0);
        cr_assert_eq(n, 5, "%zu requests", n);
        cr_assert_str_eq(sent[3].method, "PATCH");
        cr_assert_str_eq(sent[3].path, "/scim/v2/Groups/g1");
        cr_assert_str_eq(sent[4].method, "PATCH");
        cr_assert_str_eq(sent[4].path, "/scim/v2/Groups/g2");
        ob_test_requests_free(sent, n);
        ob_test_recorder_stop(&rec);
}
