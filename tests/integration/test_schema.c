/* The JSON documents offboard prints (plan, reconcile, status, explain)
 * against the schemas it ships (schemas/NAME.schema.json), on real output: a
 * real slapd, a real HTTP server that fails one request, a guard that holds
 * a leaver's actions, a stage (grace:) and a transfer, so that the members
 * only some documents have are there to be checked. The validator is
 * tests/harness/validate_json.py with python3-jsonschema.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];

#define PEOPLE "ou=people,dc=example,dc=org"
#define TEAMS "ou=teams,dc=example,dc=org"

/* gwen leaves and owns a team that ada (active) is in: the team-owner guard
 * holds her actions. fay leaves too; her license is the request that fails. */
static const char schema_ldif[] =
        "dn: uid=gwen," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: gwen\ncn: Gwen Guarded\n"
        "sn: Guarded\nemployeeType: Inactive\n\n"
        "dn: uid=fay," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: fay\ncn: Fay Failed\nsn: Failed\n"
        "employeeType: Inactive\n\n"
        "dn: uid=ada," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Active\nsn: Active\n"
        "employeeType: employee\n\n"
        "dn: cn=s-owned," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: s-owned\nowner: uid=gwen," PEOPLE
        "\nmember: uid=gwen," PEOPLE "\nmember: uid=ada," PEOPLE "\n";

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_slapd_share_with(0, schema_ldif);
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        ob_test_case_begin(&srv, &man, "schema", dir, sizeof(dir));
}

static void teardown(void)
{
        ob_test_recorder_stop(&rec);
        ob_test_case_end(man, dir);
}

TestSuite(schema, .init = setup, .fini = teardown, .timeout = 120);

/* Revocation (security), a transfer, a license and a stage 30 days on,
 * with the team-owner guard, sent to the recorder, which answers 500 for
 * fay's license. */
static void start(void)
{
        cr_assert_eq(ob_test_recorder_start(&rec, "[{\"match\": \"/licenses/fay$\", \"status\": 500}]", false), 0);
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
                "writeback: {object_class: offboardAccount}\n"
                "state:\n"
                "  path: state.db\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "guards:\n"
                "  team-owner: {owns_team_with_members: true}\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s, retry: {attempts: 1}}\n"
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
                "    json: {to: \"{{ transfer_to.uid }}\", via: \"{{ transfer_to.via }}\", modules: "
                "\"{{ transfer.modules }}\"}\n"
                "    modules: {opportunities: all, tasks: none, cases: {is: {status: open}},\n"
                "              contacts: {is_not: {region: [EMEA, APAC]}},\n"
                "              quotes: {records: all, when: {status: deleted}}}\n"
                "  free-license:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /licenses/{{ account.uid }}\n"
                "    after: [transfer-records]\n"
                "  delete-user:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /users/{{ account.uid }}\n"
                "    after: [revoke-sessions]\n"
                "    grace: 30d\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, transfer-records, free-license, delete-user]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, man->fallback, rec.base_url);
        fclose(f);
}

/* offboard VERB [ARG] --format json; its stdout, which must be one document. */
static char *offboard_json(const char *verb, const char *arg)
{
        const char *argv[8] = {OB_OFFBOARD_BIN, verb, "--config", cfgpath, "--format", "json", NULL, NULL};
        if (arg)
                argv[6] = arg;
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        /* 1: something needs a human (the failure, the held actions). */
        cr_assert(rc == 0 || rc == 1, "offboard %s: rc %d\nstdout: %s\nstderr: %s", verb, rc, out, err);
        cr_assert(out && out[0] == '{', "offboard %s printed no document\nstderr: %s", verb, err);
        free(err);
        return out;
}

/* Runs the validator on doc against schema (a file in schemas/); its exit
 * status: 0 valid, 1 invalid, 2 the check itself failed. */
static int validate(const char *name, const char *doc, const char *schema)
{
        char path[400];
        snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s", path);
        fputs(doc, f);
        fclose(f);
        /* OB_TEST_PYTHON, else Debian's python3 (CI's jsonschema), else
         * whichever python3 is on PATH. */
        const char *py = getenv("OB_TEST_PYTHON");
        if (!py || !*py)
                py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
        const char *argv[7];
        size_t n = 0;
        if (!py) {
                argv[n++] = "/usr/bin/env";
                argv[n++] = "python3";
        } else {
                argv[n++] = py;
        }
        argv[n++] = OB_SOURCE_DIR "/tests/harness/validate_json.py";
        argv[n++] = OB_SOURCE_DIR "/schemas";
        argv[n++] = schema;
        argv[n++] = path;
        argv[n] = NULL;
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        if (rc != 0)
                fprintf(stderr, "%s against %s: rc %d\n%s%s", name, schema, rc, out ? out : "", err ? err : "");
        free(out);
        free(err);
        return rc;
}

static void assert_valid(const char *name, const char *doc, const char *schema)
{
        int rc = validate(name, doc, schema);
        cr_assert_eq(rc, 0, "%s does not match schemas/%s (rc %d; the errors are on stderr): %.2000s", name, schema, rc,
                     doc);
}

#define CHECK(doc, ...)                                                                                                \
        do {                                                                                                           \
                const char *c_[] = {__VA_ARGS__};                                                                      \
                ob_test_json_check(dir, doc, true, c_, sizeof(c_) / sizeof(c_[0]));                                    \
        } while (0)

/* The helpers of the checks below: every account, every action. */
#define ACTIONS "[s for a in d['accounts'] for s in a['actions']]"

Test(schema, every_json_document_offboard_prints_matches_its_schema_with_its_optional_members)
{
        start();

        char *plan = offboard_json("plan", NULL);
        assert_valid("plan", plan, "report.schema.json");
        /* What the plan must show for the schema to have been tried on it. */
        CHECK(plan, "d['kind'] == 'plan'", "any(x['block'] for a in d['accounts'] for x in a['guards'])",
              "any(a['blocked'] for a in d['accounts'])", "any(a['transfer_to'] for a in d['accounts'])",
              "any('due' in s for s in " ACTIONS ")", "any(s.get('hold_reason') for s in " ACTIONS ")",
              "any(s['request'].get('idempotency_key') for s in " ACTIONS " if 'request' in s)",
              "any(m.get('when_false') for s in " ACTIONS " for m in s.get('modules', []))",
              "any('is_not' in m for s in " ACTIONS " for m in s.get('modules', []))");
        free(plan);

        char *reconcile = offboard_json("reconcile", NULL);
        assert_valid("reconcile", reconcile, "report.schema.json");
        CHECK(reconcile, "d['kind'] == 'reconcile'", "all('writeback_result' in a for a in d['accounts'])",
              "any(s['state'] == 'failed' and s['http_status'] == 500 and s['error'] for s in " ACTIONS ")",
              "any(s['state'] == 'done' and 'duration_ms' in s for s in " ACTIONS ")",
              "any(s['state'] == 'held' and 'due' in s for s in " ACTIONS ")",
              "any(s['state'] == 'held' and (s['hold_reason'] or '').startswith('guard ') for s in " ACTIONS ")");
        free(reconcile);

        char *status = offboard_json("status", NULL);
        assert_valid("status", status, "status.schema.json");
        CHECK(status, "d['kind'] == 'status' and d['summary']['needs_human']",
              "any(x['state'] == 'failed' and x['http_status'] == 500 for a in d['accounts'] for x in a['actions'])",
              "any(x['due'] for a in d['accounts'] for x in a['actions'])",
              "d['summary']['connectors']['apps']['failed'] >= 1");
        free(status);

        char *gwen = offboard_json("explain", "gwen");
        assert_valid("explain", gwen, "explain.schema.json");
        CHECK(gwen, "d['kind'] == 'explain' and d['seen'] and d['plan']['kind'] == 'plan'",
              "d['plan']['accounts'][0]['blocked'] and d['record'] and d['history']",
              "'employeeType' in {k for k in d['attributes']}");
        free(gwen);

        /* Someone the directory does not have: no id, no record. */
        char *nobody = offboard_json("explain", "nobody-here");
        assert_valid("explain-nobody", nobody, "explain.schema.json");
        CHECK(nobody, "not d['seen'] and d['id'] is None and d['record'] is None and d['history'] == []");
        free(nobody);
}

/* Replaces the first `from` in doc with `to`, into a new string. */
static char *replaced(const char *doc, const char *from, const char *to)
{
        const char *at = strstr(doc, from);
        cr_assert_not_null(at, "no %s in %.1000s", from, doc);
        char *s = NULL;
        cr_assert(asprintf(&s, "%.*s%s%s", (int)(at - doc), doc, to, at + strlen(from)) > 0);
        return s;
}

Test(schema, a_document_with_an_unknown_member_or_a_wrong_type_or_another_version_is_rejected)
{
        start();
        char *plan = offboard_json("plan", NULL);
        assert_valid("plan", plan, "report.schema.json");
        struct {
                const char *from, *to;
                int rc; /* 1 rejected, 0 accepted */
        } edits[] = {
                {"{\"version\":1,", "{\"version\":1,\"surprise\":true,", 1}, /* a member the schema does not know */
                {"\"continuing\":false", "\"continuing\":\"no\"", 1},        /* a wrong type, in an account */
                {"\"security\":true", "\"security\":true,\"extra\":1", 1},   /* an unknown member of an action */
                {"\"state\":\"owed\"", "\"state\":\"pending\"", 1},          /* a state that does not exist */
                {"{\"version\":1,", "{\"version\":2,", 1},                   /* another version */
                {"\"kind\":\"plan\"", "\"kind\":null", 1},                   /* null where a name must be */
                {"\"usernames_reused\":0", "\"usernames_reused\":-1", 1},    /* a negative count */
                {"\"url\":\"", "\"url\":7,\"url_was\":\"", 1},               /* a request member of the wrong type */
                {"\"request\":{", "\"request\":{\"new_member\":\"x\",", 0},  /* but a kind may add members */
        };
        for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
                char *doc = replaced(plan, edits[i].from, edits[i].to);
                int rc = validate("edited", doc, "report.schema.json");
                cr_expect_eq(rc, edits[i].rc, "rc %d (0 valid, 1 invalid, 2 not checked) with %s", rc, edits[i].to);
                free(doc);
        }
        /* A plan report is not a status document. */
        cr_expect_eq(validate("plan-as-status", plan, "status.schema.json"), 1);
        free(plan);
}
