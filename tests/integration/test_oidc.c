/* test_oidc.c: the oauth-revoke preset (connectors/oauth-revoke.yaml, RFC
 * 7009) run by `offboard reconcile` against the real slapd of the harness and
 * a real authorization server (oidc-provider 9.13.3, tests/harness/oidc).
 * Both run once for the executable.
 *
 * The preset is used as an administrator would: its file read from the source
 * tree, its ${NAMES} filled in, its revocation path set to the server's
 * (oidc-provider's default /token/revocation) and, for loopback only, http://
 * with allow_insecure. The tokens are the server's own, issued in each test
 * (client_credentials, or a user's refresh token of a grant) and written into
 * the entry's oauthRefreshToken, the attribute the preset reads (a test-only
 * schema adds it). Introspection (RFC
 * 7662) tells whether a token is still active; the server's log tells what
 * it received. Each test has accounts of its own (uid oidc-tN-*).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oidc_server.h"
#include "run.h"
#include "slapd.h"

#define PEOPLE "ou=people,dc=example,dc=org"
#define WRONG_SECRET "wrong-secret-Zq81pX"

/* Test only: the preset's attribute, on an auxiliary class. */
#define SCHEMA                                                                                                         \
        "dn: cn=offboard-oidc-test,cn=schema,cn=config\nchangetype: add\nobjectClass: olcSchemaConfig\n"               \
        "cn: offboard-oidc-test\n"                                                                                     \
        "olcAttributeTypes: {0}( 2.25.164740859301629766612515487383781397944.9.2 NAME 'oauthRefreshToken'\n"          \
        "  DESC 'test only: a token to revoke (connectors/oauth-revoke.yaml)'\n"                                       \
        "  EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n"                                           \
        "olcObjectClasses: {0}( 2.25.164740859301629766612515487383781397944.9.3\n"                                    \
        "  NAME 'offboardTestOAuthHolder' DESC 'test only: carries oauthRefreshToken'\n"                               \
        "  SUP top AUXILIARY MAY oauthRefreshToken )\n\n"

/* Each test's accounts, with the aux class; tokens come in the tests. */
static const struct {
        const char *uid, *type;
} people[] = {
        {"oidc-t1-leaver", "Inactive"}, {"oidc-t2-revoked", "Inactive"}, {"oidc-t2-unknown", "Inactive"},
        {"oidc-t3-leaver", "Inactive"}, {"oidc-t4-leaver", "Inactive"},  {"oidc-t4-stays", "Active"},
        {"oidc-t5-form", "Inactive"},   {"oidc-t5-plain", "Inactive"},   {"oidc-t5-legacy", "Inactive"},
        {"oidc-t6-leaver", "Inactive"}, {"oidc-t7-leaver", "Inactive"},  {"oidc-t8-leaver", "Inactive"},
};

static struct ob_test_slapd srv;
static struct ob_test_oidc oidc;
static struct ob_test_manifest *man;
static char dir[256];
static char cfgpath[300];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (!ob_test_oidc_have_node())
                return; /* the tests skip, saying why */
        char *ldif = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&ldif, &n);
        if (!f)
                return;
        fputs(SCHEMA, f);
        for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++)
                fprintf(f,
                        "dn: uid=%s," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
                        "objectClass: offboardTestOAuthHolder\nuid: %s\ncn: %s\nsn: %s\nemployeeType: %s\n\n",
                        people[i].uid, people[i].uid, people[i].uid, people[i].uid, people[i].type);
        fclose(f);
        ob_test_slapd_share_with(0, ldif);
        free(ldif);
        if (ob_test_oidc_share() < 0)
                fprintf(stderr, "could not start the OAuth server\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_oidc_unshare();
        ob_test_slapd_unshare();
}

static void setup(void)
{
        if (!ob_test_oidc_have_node())
                cr_skip_test("node is not installed: no OAuth server (tests/harness/oidc needs node and npm)");
        ob_test_case_begin(&srv, &man, "oidc", dir, sizeof(dir));
        cr_assert_eq(ob_test_oidc_attach(&oidc), 0, "the OAuth server is not running");
}

static void teardown(void)
{
        if (man)
                ob_test_case_end(man, dir);
}

TestSuite(oidc, .init = setup, .fini = teardown, .timeout = 120);

/* In text, the one occurrence of from becomes to (asserted: a preset that no
 * longer reads as the test expects fails here, not downstream). */
static char *replace_once(char *text, const char *from, const char *to)
{
        char *at = strstr(text, from);
        cr_assert_not_null(at, "oauth-revoke.yaml has no '%s'", from);
        cr_assert_null(strstr(at + 1, from), "oauth-revoke.yaml has '%s' twice", from);
        char *out = NULL;
        cr_assert_geq(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)), 0);
        free(text);
        return out;
}

/* offboard.yaml: the harness directory (accounts uid=oidc-PREFIX*), the state
 * store state_name, the preset as the administrator fills it in (client and
 * secret file as given, auth encoding as encoding says: "form" as the preset
 * has it, NULL without the line), and the transition its header suggests. */
static void write_config_encoding(const char *prefix, const char *state_name, const char *client,
                                  const char *secret_file, const char *encoding)
{
        char *file = ob_test_read_file(OB_SOURCE_DIR "/connectors/oauth-revoke.yaml");
        cr_assert_not_null(file);
        /* What is copied: the sections after the header's comments. */
        char *body = strstr(file, "\nconnectors:\n");
        cr_assert_not_null(body, "oauth-revoke.yaml has no connectors: section");
        char *preset = strdup(body + 1);
        cr_assert_not_null(preset);
        free(file);
        preset = replace_once(preset, "${AUTH_HOST}", oidc.host);
        preset = replace_once(preset, "${CLIENT_ID}", client);
        preset = replace_once(preset, "${CREDENTIALS_DIRECTORY}/oauth-client-secret", secret_file);
        preset = replace_once(preset, "url: /revoke\n", "url: /token/revocation\n"); /* the server's endpoint */
        if (!encoding)
                preset = replace_once(preset, "      encoding: form\n", "");
        else
                cr_assert_str_eq(encoding, "form", "the preset's encoding is form");
        /* Loopback only: no TLS. */
        preset = replace_once(preset, "base_url: https://", "base_url: http://");
        preset = replace_once(preset, "    timeout: 10s\n", "    timeout: 10s\n    allow_insecure: true\n");
        cr_assert_null(strstr(preset, "${"), "a placeholder the test does not fill:\n%s", preset);

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
                "  filter: \"(&(objectClass=inetOrgPerson)(uid=oidc-%s*))\"\n"
                "  timeout: 10s\n"
                "state:\n"
                "  path: %s\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "%s\n"
                "transitions:\n"
                "  deactivate: {to: [inactive, ended, deleted], actions: [oauth-revoke-token]}\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, prefix, state_name, preset);
        fclose(f);
        free(preset);
}

static void write_config(const char *prefix, const char *state_name, const char *client, const char *secret_file)
{
        write_config_encoding(prefix, state_name, client, secret_file, "form");
}

/* Runs `offboard reconcile --format json`; returns its exit code, the report
 * in *ret_report and everything it printed in *ret_all (both malloc'd). */
static int reconcile(json_t **ret_report, char **ret_all)
{
        char *out = NULL, *err = NULL;
        const char *argv[] = {OB_OFFBOARD_BIN, "reconcile", "--format", "json", "--config", cfgpath, NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        json_error_t je;
        json_t *report = json_loads(out ? out : "", 0, &je);
        cr_assert_not_null(report, "exit %d, no JSON report (%s)\nstdout: %.3000s\nstderr: %.3000s", rc, je.text, out,
                           err);
        *ret_report = report;
        cr_assert_geq(asprintf(ret_all, "%s\n%s", out, err ? err : ""), 0);
        free(out);
        free(err);
        return rc;
}

/* The report's oauth-revoke-token action of account uid (NULL: none). */
static json_t *action_of(json_t *report, const char *uid)
{
        size_t i, k;
        json_t *a, *s;
        json_array_foreach(json_object_get(report, "accounts"), i, a)
        {
                if (strcmp(json_string_value(json_object_get(a, "username")) ?: "", uid) != 0)
                        continue;
                json_array_foreach(json_object_get(a, "actions"), k, s)
                {
                        if (strcmp(json_string_value(json_object_get(s, "name")) ?: "", "oauth-revoke-token") == 0)
                                return s;
                }
        }
        return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
        const char *v = json_string_value(json_object_get(o, key));
        return v ? v : "";
}

static void give_token(const char *uid, const char *token)
{
        char *ldif = NULL;
        cr_assert_geq(asprintf(&ldif,
                               "dn: uid=%s," PEOPLE "\nchangetype: modify\nreplace: oauthRefreshToken\n"
                               "oauthRefreshToken: %s\n",
                               uid, token),
                      0);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0, "could not give %s its token", uid);
        free(ldif);
}

static void issue(const char *client, char token[256])
{
        int r = ob_test_oidc_issue(&oidc, client, token);
        cr_assert_eq(r, 0, "the OAuth server issued no token: %d", r);
}

static int active(const char *client, const char *token)
{
        int r = ob_test_oidc_active(&oidc, client, token);
        cr_assert_geq(r, 0, "introspection failed: %d", r);
        return r;
}

/* The server's log from line from on, as a JSON array. */
static json_t *server_log(size_t from)
{
        char *text = ob_test_oidc_log(&oidc);
        cr_assert_not_null(text);
        json_t *v = json_array();
        size_t line = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
                if (line < from)
                        continue;
                json_t *e = json_loads(l, 0, NULL);
                cr_assert_not_null(e, "log line: %s", l);
                json_array_append_new(v, e);
        }
        free(text);
        return v;
}

static size_t log_lines(void)
{
        json_t *v = server_log(0);
        size_t n = json_array_size(v);
        json_decref(v);
        return n;
}

/* The logged requests that named token. */
static size_t requests_naming(json_t *log, const char *token, json_t **ret_last)
{
        size_t i, n = 0;
        json_t *e;
        json_array_foreach(log, i, e)
        {
                if (strcmp(str_of(e, "token"), token) == 0) {
                        n++;
                        if (ret_last)
                                *ret_last = e;
                }
        }
        return n;
}

static void assert_action(json_t *report, const char *uid, const char *state, int status)
{
        json_t *a = action_of(report, uid);
        cr_assert_not_null(a, "no oauth-revoke-token for %s in the report", uid);
        cr_assert_str_eq(str_of(a, "state"), state, "%s: %s, error %s", uid, str_of(a, "state"), str_of(a, "error"));
        cr_assert_eq(json_integer_value(json_object_get(a, "http_status")), status, "%s: HTTP status", uid);
}

Test(oidc, a_leavers_token_is_active_before_the_pass_and_revoked_by_it)
{
        char token[256];
        issue(OB_TEST_OIDC_CLIENT, token);
        give_token("oidc-t1-leaver", token);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, token), 1, "a new token is not active");
        write_config("t1-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        size_t before = log_lines();

        /* The token is valid until the request: the dry run shows its
         * request with the body masked (the preset's secret_body). */
        char *pout = NULL, *perr = NULL;
        const char *plan[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, NULL};
        int prc = ob_test_run(plan, 60, &pout, &perr);
        cr_assert_eq(prc, 0, "plan exit %d\n%s%s", prc, pout, perr);
        cr_assert_not_null(strstr(pout, "oauth-revoke-token"), "%s", pout);
        cr_assert_not_null(strstr(pout, "body: *** (secret_body:"), "%s", pout);
        cr_assert_null(strstr(pout, token), "plan printed the leaver's valid token:\n%s", pout);
        cr_assert_null(strstr(perr, token), "plan logged the leaver's valid token:\n%s", perr);
        free(pout);
        free(perr);

        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        cr_assert_null(strstr(all, token), "the report or the log shows the token:\n%.4000s", all);
        assert_action(report, "oidc-t1-leaver", "done", 200);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, token), 0, "the server still holds the token active");

        /* What the server received: one RFC 7009 request naming the token,
         * the client authenticated with its secret in HTTP Basic. */
        json_t *log = server_log(before), *e = NULL;
        cr_assert_eq(json_array_size(log), 1, "%zu requests", json_array_size(log));
        cr_assert_eq(requests_naming(log, token, &e), 1, "the request did not name the token");
        cr_assert_str_eq(str_of(e, "method"), "POST");
        cr_assert_str_eq(str_of(e, "path"), "/token/revocation");
        cr_assert(strncmp(str_of(e, "content_type"), "application/x-www-form-urlencoded", 33) == 0, "%s",
                  str_of(e, "content_type"));
        cr_assert_str_eq(str_of(e, "token_type_hint"), "refresh_token");
        json_t *basic = json_object_get(e, "authorization");
        cr_assert_str_eq(str_of(basic, "id"), OB_TEST_OIDC_CLIENT, "HTTP Basic");
        cr_assert_eq(json_integer_value(json_object_get(basic, "secret_length")), strlen(OB_TEST_OIDC_SECRET));
        cr_assert_str_eq(str_of(e, "client_id"), OB_TEST_OIDC_CLIENT);
        cr_assert_eq(json_integer_value(json_object_get(e, "status")), 200);
        cr_assert_null(strstr(all, OB_TEST_OIDC_SECRET), "the client secret was printed");
        json_decref(log);
        json_decref(report);
        free(all);
}

Test(oidc, revoking_a_token_already_revoked_or_never_issued_is_done_and_a_second_pass_sends_nothing)
{
        char token[256];
        issue(OB_TEST_OIDC_CLIENT, token);
        cr_assert_eq(ob_test_oidc_revoke(&oidc, OB_TEST_OIDC_CLIENT, token), 200);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, token), 0);
        give_token("oidc-t2-revoked", token);
        give_token("oidc-t2-unknown", "never-issued-by-this-server-4f1c");
        write_config("t2-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        size_t before = log_lines();

        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        /* RFC 7009 section 2.2: 200 whether or not the server knew it. */
        assert_action(report, "oidc-t2-revoked", "done", 200);
        assert_action(report, "oidc-t2-unknown", "done", 200);
        json_t *log = server_log(before);
        cr_assert_eq(requests_naming(log, token, NULL), 1);
        cr_assert_eq(requests_naming(log, "never-issued-by-this-server-4f1c", NULL), 1);
        json_decref(log);
        json_decref(report);
        free(all);

        /* Done is done: the next pass owes nothing and asks nothing. */
        before = log_lines();
        rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        cr_assert_eq(log_lines(), before, "a second pass sent the revocation again");
        json_decref(report);
        free(all);
}

Test(oidc, wrong_client_credentials_fail_with_the_servers_status_and_reason_and_never_show_the_secret)
{
        char token[256], wrong[300];
        issue(OB_TEST_OIDC_CLIENT, token);
        give_token("oidc-t3-leaver", token);
        snprintf(wrong, sizeof(wrong), "%s/wrong-secret", dir);
        FILE *f = fopen(wrong, "w");
        cr_assert_not_null(f);
        fputs(WRONG_SECRET "\n", f);
        fclose(f);
        write_config("t3-", "state.db", OB_TEST_OIDC_CLIENT, wrong);
        size_t before = log_lines();

        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 1, "exit %d (1: an action failed)\n%.4000s", rc, all);
        json_t *a = action_of(report, "oidc-t3-leaver");
        cr_assert_not_null(a);
        cr_assert_str_neq(str_of(a, "state"), "done");
        /* oidc-provider: 401 invalid_client for a wrong client_secret_basic. */
        cr_assert_eq(json_integer_value(json_object_get(a, "http_status")), 401, "%s", str_of(a, "error"));
        cr_assert(strstr(str_of(a, "error"), "invalid_client"), "the reason is not shown: %s", str_of(a, "error"));
        cr_assert(strstr(all, "invalid_client"), "the output does not say why:\n%.4000s", all);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, token), 1, "the token was revoked anyway");

        json_t *log = server_log(before), *e = NULL;
        cr_assert_eq(requests_naming(log, token, &e), 1, "401 is not retried within the pass");
        cr_assert_eq(json_integer_value(json_object_get(json_object_get(e, "authorization"), "secret_length")),
                     strlen(WRONG_SECRET), "the secret file's content was not what was sent");

        /* Neither the secret offboard holds nor the right one, anywhere. */
        char journal[300];
        snprintf(journal, sizeof(journal), "%s/journal.jsonl", dir);
        char *j = ob_test_read_file(journal);
        cr_assert_not_null(j, "no journal at %s", journal);
        cr_assert(strstr(j, "401"), "the journal does not record the failure:\n%.3000s", j);
        const char *secrets[] = {WRONG_SECRET, OB_TEST_OIDC_SECRET};
        for (size_t i = 0; i < 2; i++) {
                cr_assert_null(strstr(all, secrets[i]), "the output shows a secret:\n%.4000s", all);
                cr_assert_null(strstr(j, secrets[i]), "the journal shows a secret:\n%.4000s", j);
        }
        free(j);
        json_decref(log);
        json_decref(report);
        free(all);
}

Test(oidc, an_active_accounts_token_stays_active_while_a_leavers_is_revoked)
{
        char stays[256], leaves[256];
        issue(OB_TEST_OIDC_CLIENT, stays);
        issue(OB_TEST_OIDC_CLIENT, leaves);
        give_token("oidc-t4-stays", stays);
        give_token("oidc-t4-leaver", leaves);
        write_config("t4-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        size_t before = log_lines();

        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        assert_action(report, "oidc-t4-leaver", "done", 200);
        cr_assert_null(action_of(report, "oidc-t4-stays"), "an action for an active account");
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, leaves), 0);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, stays), 1, "the active account's token was revoked");
        json_t *log = server_log(before);
        cr_assert_eq(requests_naming(log, stays, NULL), 0, "the active account's token was sent");
        json_decref(log);
        json_decref(report);
        free(all);
}

/* Neither the reserved client's secret (as it is, or form-encoded: both
 * start with OB_TEST_OIDC_SECRET) in what offboard printed nor in its
 * journal. */
static void assert_secret_never_shown(const char *all)
{
        char journal[300];
        snprintf(journal, sizeof(journal), "%s/journal.jsonl", dir);
        char *j = ob_test_read_file(journal);
        cr_assert_not_null(j, "no journal at %s", journal);
        cr_assert_null(strstr(all, OB_TEST_OIDC_SECRET), "the output shows the secret:\n%.4000s", all);
        cr_assert_null(strstr(j, OB_TEST_OIDC_SECRET), "the journal shows the secret:\n%.4000s", j);
        cr_assert_null(strstr(all, OB_TEST_OIDC_RESERVED_ENCODED), "the output shows the secret:\n%.4000s", all);
        cr_assert_null(strstr(j, OB_TEST_OIDC_RESERVED_ENCODED), "the journal shows the secret:\n%.4000s", j);
        free(j);
}

/* RFC 6749 section 2.3.1: client_id and secret are form-encoded before HTTP
 * Basic, and oidc-provider decodes them. The preset's auth encoding: form
 * does that to the secret as the file holds it; without it the server
 * decodes what was sent as written into another secret (401). A file that
 * holds the secret encoded by hand still works without the option. */
Test(oidc, a_secret_with_reserved_characters_works_with_form_encoding_and_is_refused_without_it)
{
        char form_token[256], plain_token[256], legacy_token[256];
        issue(OB_TEST_OIDC_RESERVED_CLIENT, form_token);
        issue(OB_TEST_OIDC_RESERVED_CLIENT, plain_token);
        issue(OB_TEST_OIDC_RESERVED_CLIENT, legacy_token);
        give_token("oidc-t5-form", form_token);
        give_token("oidc-t5-plain", plain_token);
        give_token("oidc-t5-legacy", legacy_token);

        /* The preset as it ships, the file holding the secret as it is. */
        write_config("t5-form", "form.db", OB_TEST_OIDC_RESERVED_CLIENT, oidc.reserved_raw_secret_file);
        size_t before = log_lines();
        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        assert_action(report, "oidc-t5-form", "done", 200);
        cr_assert_eq(active(OB_TEST_OIDC_RESERVED_CLIENT, form_token), 0);
        json_t *log = server_log(before), *e = NULL;
        cr_assert_eq(requests_naming(log, form_token, &e), 1);
        json_t *basic = json_object_get(e, "authorization");
        cr_assert_str_eq(str_of(basic, "id"), OB_TEST_OIDC_RESERVED_CLIENT);
        cr_assert_eq(json_integer_value(json_object_get(basic, "secret_length")),
                     strlen(OB_TEST_OIDC_SECRET OB_TEST_OIDC_RESERVED_ENCODED), "the secret was not sent form-encoded");
        assert_secret_never_shown(all);
        json_decref(log);
        json_decref(report);
        free(all);

        /* Without the option: sent as written, decoded into another secret. */
        write_config_encoding("t5-plain", "plain.db", OB_TEST_OIDC_RESERVED_CLIENT, oidc.reserved_raw_secret_file,
                              NULL);
        rc = reconcile(&report, &all);
        cr_assert_eq(rc, 1, "exit %d: the secret as written worked?\n%.4000s", rc, all);
        json_t *a = action_of(report, "oidc-t5-plain");
        cr_assert_not_null(a);
        cr_assert_eq(json_integer_value(json_object_get(a, "http_status")), 401, "%s", str_of(a, "error"));
        cr_assert(strstr(str_of(a, "error"), "invalid_client"), "%s", str_of(a, "error"));
        cr_assert_eq(active(OB_TEST_OIDC_RESERVED_CLIENT, plain_token), 1);
        assert_secret_never_shown(all);
        json_decref(report);
        free(all);

        /* Without the option, the file holding it encoded by hand (as the
         * preset told administrators before): still works. */
        write_config_encoding("t5-legacy", "legacy.db", OB_TEST_OIDC_RESERVED_CLIENT, oidc.reserved_secret_file, NULL);
        rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        assert_action(report, "oidc-t5-legacy", "done", 200);
        cr_assert_eq(active(OB_TEST_OIDC_RESERVED_CLIENT, legacy_token), 0);
        json_decref(report);
        free(all);
}

Test(oidc, a_leaver_without_a_token_is_skipped_and_nothing_is_sent)
{
        write_config("t6-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        size_t before = log_lines();
        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        json_t *a = action_of(report, "oidc-t6-leaver");
        cr_assert_not_null(a, "the leaver has no oauth-revoke-token step");
        cr_assert_str_eq(str_of(a, "state"), "skipped");
        cr_assert_eq(log_lines(), before, "a request without a token was sent");
        json_decref(report);
        free(all);
}

/* oidc-provider's default policy lets a client revoke only its own tokens and
 * answers 400 invalid_request for another's: not RFC 7009's "200 for a token
 * it does not know", so it fails rather than reads as done. */
Test(oidc, a_token_issued_to_another_client_fails_with_400_and_stays_active)
{
        char token[256];
        issue(OB_TEST_OIDC_RESERVED_CLIENT, token);
        give_token("oidc-t7-leaver", token);
        write_config("t7-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 1, "exit %d\n%.4000s", rc, all);
        json_t *a = action_of(report, "oidc-t7-leaver");
        cr_assert_not_null(a);
        cr_assert_str_eq(str_of(a, "state"), "failed");
        cr_assert_eq(json_integer_value(json_object_get(a, "http_status")), 400, "%s", str_of(a, "error"));
        cr_assert(strstr(str_of(a, "error"), "not authorized to revoke"), "%s", str_of(a, "error"));
        cr_assert_eq(active(OB_TEST_OIDC_RESERVED_CLIENT, token), 1);
        json_decref(report);
        free(all);
}

/* The preset's case: a refresh token of the leaver's own grant (as an
 * authorization code flow leaves it). Revoking it ends the grant, so the
 * access token issued with it stops too. */
Test(oidc, revoking_a_leavers_refresh_token_also_ends_the_access_token_of_its_grant)
{
        char refresh[256], access[256];
        cr_assert_eq(ob_test_oidc_user_tokens(&oidc, "oidc-t8-leaver", refresh, access), 0);
        give_token("oidc-t8-leaver", refresh);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, refresh), 1);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, access), 1);
        write_config("t8-", "state.db", OB_TEST_OIDC_CLIENT, oidc.secret_file);
        size_t before = log_lines();

        json_t *report;
        char *all;
        int rc = reconcile(&report, &all);
        cr_assert_eq(rc, 0, "exit %d\n%.4000s", rc, all);
        assert_action(report, "oidc-t8-leaver", "done", 200);
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, refresh), 0, "the refresh token is still active");
        cr_assert_eq(active(OB_TEST_OIDC_CLIENT, access), 0, "the access token of its grant is still active");
        json_t *log = server_log(before), *e = NULL;
        cr_assert_eq(requests_naming(log, refresh, &e), 1);
        cr_assert_str_eq(str_of(e, "token_type_hint"), "refresh_token");
        json_decref(log);
        json_decref(report);
        free(all);
}
