/* End to end: the offboard binary against a real slapd and a real HTTP
 * server that records every request. The fixture's manifest says what each
 * person's status must be, so the expected numbers are derived, not typed in.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(40) < 0)
                fprintf(stderr, "could not start slapd\n");
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
        snprintf(dir, sizeof(dir), "/tmp/ob-e2e-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        char now[64];
        snprintf(now, sizeof(now), "%lld", man->today_days * 86400 + 43200);
        setenv("OFFBOARD_NOW", now, 1);
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        /* Several windows per pass: the pass must carry work from one to the next. */
        setenv("OFFBOARD_PASS_WINDOW", "5", 1);
}

static bool mounted;
static char mountpoint[300];

static void teardown(void)
{
        if (mounted) {
                char um[400];
                snprintf(um, sizeof(um), "umount '%s'", mountpoint);
                if (system(um) != 0)
                        fprintf(stderr, "could not unmount %s\n", mountpoint);
                mounted = false;
        }
        ob_test_recorder_stop(&rec);
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 120);

struct opts {
        const char *uri;
        const char *bind_dn;
        const char *bind_pw_file;
        const char *filter;
        bool starttls;
        int max_accounts;
        const char *state; /* state.path, default state.db */
};

/* Writes the configuration for this test into dir/offboard.yaml. */
static void write_config(const struct opts *o)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/apps.token", dir);
        FILE *f = fopen(path, "w");
        fputs("s3cr3t-t0ken\n", f);
        fclose(f);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  starttls: %s\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  filter: \"%s\"\n"
                "  page_size: 7\n"
                "  timeout: 10s\n"
                "  teams:\n"
                "    base: ou=teams,dc=example,dc=org\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "  assertion_attribute: entryCSN\n"
                "state:\n"
                "  path: %s\n"
                "transfer:\n"
                "  fallback: %s\n"
                "safety:\n"
                "  max_accounts: %d\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: %s/api\n"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    allow_insecure: true\n" /* the recorder is plain http on loopback */
                "    timeout: 5s\n"
                "    concurrency: 4\n"
                "    retry: {attempts: 3, backoff: 50ms, max_backoff: 3s, park_after: 6, pause_after: 4}\n"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "    json: {reason: \"{{ status.reason }}\", status: \"{{ status.name }}\"}\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    after: [revoke-sessions]\n"
                "    json: {to: \"{{ transfer_to.uid }}\", via: \"{{ transfer_to.via }}\"}\n"
                "    when: {status: [inactive, ended, deleted]}\n"
                "  free-license:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /licenses/{{ account.uid }}\n"
                "    after: [transfer-records]\n"
                "    when: {status: [inactive, deleted]}\n"
                "    ok_status: [404, 410]\n"
                "  reactivate:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/reactivate\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, transfer-records, free-license]\n"
                "  lock:\n"
                "    to: locked\n"
                "    actions: [revoke-sessions]\n"
                "  reactivate:\n"
                "    from: [locked, inactive, ended]\n"
                "    to: active\n"
                "    actions: [reactivate]\n",
                o->uri ? o->uri : srv.ldap_uri, o->starttls ? "true" : "false", srv.ca_file,
                o->bind_dn ? o->bind_dn : srv.bind_dn, o->bind_pw_file ? o->bind_pw_file : srv.bind_pw_file, srv.base,
                o->filter ? o->filter : "(objectClass=inetOrgPerson)", o->state ? o->state : "state.db", man->fallback,
                o->max_accounts, rec.base_url);
        fclose(f);
}

static void start(const char *rules, const struct opts *o)
{
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        struct opts d = {.starttls = true, .max_accounts = 0};
        write_config(o ? o : &d);
}

static int offboard(const char *cmd, const char *extra1, const char *extra2, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", cfgpath, extra1, extra2, NULL};
        return ob_test_run(argv, 60, out, err);
}

static size_t expected_requests(void)
{
        return 3 * ob_test_manifest_count(man, "inactive", 0) + 2 * ob_test_manifest_count(man, "ended", 0) +
               ob_test_manifest_count(man, "locked", 0);
}

static size_t non_active(void)
{
        return man->npeople - ob_test_manifest_count(man, "active", 0);
}

static const struct ob_test_request *find_req(const struct ob_test_request *q, size_t n, const char *method,
                                              const char *path)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].method, method) == 0 && strcmp(q[i].path, path) == 0)
                        return &q[i];
        return NULL;
}

Test(e2e, validate_accepts_the_configuration)
{
        start(NULL, NULL);
        char *out, *err;
        int rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "valid"), "%s", out);
        free(out);
        free(err);
}

/* The tests run passes in windows of 5 accounts (OFFBOARD_PASS_WINDOW): the
 * report, written window after window, is still one JSON document that
 * lists every account that owes something once, with the summary last. */
Test(e2e, a_report_written_window_after_window_is_one_document_listing_each_account_once)
{
        start(NULL, NULL);
        char expect[160];
        snprintf(expect, sizeof(expect), "len(d['accounts']) == d['summary']['accounts_owing'] == %zu", non_active());
        const char *checks[] = {
                "list(d) == ['version', 'kind', 'time', 'accounts', 'unreadable_accounts', 'summary']",
                expect,
                "len({a['id'] for a in d['accounts']}) == len(d['accounts'])",
                "d['summary']['not_reached'] == 0",
        };
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        ob_test_json_check(dir, out, true, checks, sizeof(checks) / sizeof(checks[0]));
        free(out);
        free(err);
        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        const char *done[] = {
                checks[0],
                expect,
                checks[2],
                "d['kind'] == 'reconcile' and d['summary']['actions_failed'] == 0",
                "d['summary']['actions_done'] == d['summary']['actions_owed'] > 0",
                "all(a['writeback_result'] == 'written' for a in d['accounts'] if a['writeback'] and "
                "a['status'] != 'deleted')",
        };
        ob_test_json_check(dir, out, true, done, sizeof(done) / sizeof(done[0]));
        free(out);
        free(err);
}

Test(e2e, plan_reports_every_owed_account_and_changes_nothing)
{
        start(NULL, NULL);
        char *before = ob_test_ldapsearch(&srv, srv.base, "(uid=bob)", "entryCSN");
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        char summary[128];
        snprintf(summary, sizeof(summary), "\"accounts_owing\":%zu,", non_active());
        cr_assert(strstr(out, summary), "expected %s in %.2000s", summary, out);
        snprintf(summary, sizeof(summary), "\"accounts_read\":%zu,", man->npeople);
        cr_assert(strstr(out, summary), "expected %s", summary);
        cr_assert(strstr(out, "\"username\":\"bob\""));
        cr_assert_eq(ob_test_count(out, "\"transition\":\"deactivate\""),
                     (int)(ob_test_manifest_count(man, "inactive", 0) + ob_test_manifest_count(man, "ended", 0)));
        /* The plan names the rule, the transfer target and how it was chosen. */
        cr_assert(strstr(out, "\"rule\":\"admin-locked\""));
        cr_assert(strstr(out, "\"via\":\"team\""), "heidi's records go to her team's owner");
        cr_assert(strstr(out, "\"via\":\"fallback\""), "ivan's records go to the fallback");
        cr_assert(strstr(out, "\"Authorization: Bearer ***\""));
        cr_assert_null(strstr(out, "s3cr3t"), "the token must never be printed");
        /* Nothing changed: no request, no state file, no directory write. */
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
        char st[300];
        snprintf(st, sizeof(st), "%s/state.db", dir);
        cr_assert_neq(access(st, F_OK), 0, "plan created the state store");
        char *after = ob_test_ldapsearch(&srv, srv.base, "(uid=bob)", "entryCSN");
        cr_assert_str_eq(before, after, "plan wrote to the directory");
        free(before);
        free(after);
        free(out);
        free(err);
}

Test(e2e, plan_text_explains_status_rule_and_transfer)
{
        start(NULL, NULL);
        char *out, *err;
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--config", cfgpath, "--account", "bob", NULL};
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        cr_assert(strstr(out, "status:     inactive (rule inactive"), "%s", out);
        cr_assert(strstr(out, "reason: Left the company"), "%s", out);
        cr_assert(strstr(out, "transfer:   alice"), "%s", out);
        cr_assert(strstr(out, "via manager"), "%s", out);
        cr_assert(strstr(out, "1. revoke-sessions"), "security first:\n%s", out);
        cr_assert(strstr(out, "1 account owes actions"), "%s", out);
        free(out);
        free(err);
}

/* The text report opens with its summary and verdict, then the accounts by
 * group; --summary prints the summary and the verdict alone (a timer's
 * journal), with the same exit status. */
Test(e2e, the_text_report_starts_with_its_summary_and_summary_prints_nothing_else)
{
        start(NULL, NULL);
        char *out, *err;
        char head[128];
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        snprintf(head, sizeof(head), "plan: %zu accounts read", man->npeople);
        cr_assert_eq(strncmp(out, head, strlen(head)), 0, "%.3000s", out);
        cr_assert(strstr(out, "\nSafety: not parked; "), "%.3000s", out);
        const char *group = strstr(out, "\n== deactivate: "), *bob = strstr(out, "\nbob  uid=bob,");
        cr_assert(group && bob && group < bob, "%.3000s", out);
        free(out);
        free(err);
        for (int acting = 0; acting <= 1; acting++) {
                rc = offboard(acting ? "reconcile" : "plan", "--summary", NULL, &out, &err);
                cr_assert_eq(rc, 0, "stderr: %s", err);
                snprintf(head, sizeof(head), "%s: %zu accounts read", acting ? "reconcile" : "plan", man->npeople);
                cr_assert_eq(strncmp(out, head, strlen(head)), 0, "%.3000s", out);
                cr_assert(strstr(out, "\nSafety: not parked; "), "%.3000s", out);
                cr_assert(strstr(out, "\nActions: "), "%.3000s", out);
                cr_assert_null(strstr(out, "uid="), "an account in a summary:\n%.3000s", out);
                cr_assert_null(strstr(out, "\n== "), "a group in a summary:\n%.3000s", out);
                free(out);
                free(err);
        }
        cr_assert_eq(ob_test_recorder_count(&rec), expected_requests(), "reconcile --summary acted all the same");
}

Test(e2e, reconcile_runs_owed_actions_writes_back_and_a_second_run_does_nothing)
{
        start(NULL, NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.3000s\nstderr: %.3000s", out, err);
        free(out);
        free(err);

        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        cr_assert_eq(n, expected_requests(), "requests: %zu, expected %zu", n, expected_requests());

        /* bob: revoke first, transfer to his manager alice, license freed. */
        const struct ob_test_request *r = find_req(q, n, "POST", "/api/users/bob/sessions/revoke");
        cr_assert_not_null(r);
        cr_assert_str_eq(r->body, "{\"reason\":\"Left the company\",\"status\":\"inactive\"}");
        cr_assert_str_eq(ob_test_request_header(r, "Authorization"), "Bearer s3cr3t-t0ken");
        cr_assert_str_eq(ob_test_request_header(r, "Content-Type"), "application/json");
        const char *key = ob_test_request_header(r, "Idempotency-Key");
        cr_assert(key && strstr(key, "-deactivate-1-revoke-sessions"), "key %s", key ? key : "(none)");
        const struct ob_test_request *t = find_req(q, n, "POST", "/api/users/bob/transfer");
        cr_assert_not_null(t);
        cr_assert_str_eq(t->body, "{\"to\":\"alice\",\"via\":\"manager\"}");
        cr_assert_gt(t->seq, r->seq, "transfer ran before revocation");
        const struct ob_test_request *lic = find_req(q, n, "DELETE", "/api/licenses/bob");
        cr_assert_not_null(lic);
        cr_assert_gt(lic->seq, t->seq);

        /* Transfer targets: team owner, then the fallback. */
        cr_assert_str_eq(find_req(q, n, "POST", "/api/users/heidi/transfer")->body,
                         "{\"to\":\"dave\",\"via\":\"team\"}");
        cr_assert_str_eq(find_req(q, n, "POST", "/api/users/ivan/transfer")->body,
                         "{\"to\":\"trent\",\"via\":\"fallback\"}");
        /* Locked keeps its license; ended too. */
        cr_assert_null(find_req(q, n, "DELETE", "/api/licenses/carol"));
        cr_assert_not_null(find_req(q, n, "POST", "/api/users/carol/sessions/revoke"));
        cr_assert_null(find_req(q, n, "DELETE", "/api/licenses/erin"));
        cr_assert_not_null(find_req(q, n, "POST", "/api/users/erin/transfer"));
        /* Active accounts are left alone. */
        cr_assert_null(find_req(q, n, "POST", "/api/users/alice/sessions/revoke"));
        /* The hostile uid lands as one escaped path segment. */
        cr_assert_not_null(
                find_req(q, n, "POST",
                         "/api/users/mal%20lory%2F%3F%23%25%22%5C%2A%28%29%C3%A9%E6%97%A5%E6%9C%AC/sessions/revoke"));
        ob_test_requests_free(q, n);

        /* Write-back onto the entry. */
        char *e = ob_test_ldapsearch(&srv, srv.base, "(uid=bob)",
                                     "offboardStatus offboardReason offboardAction offboardStatusTime objectClass");
        cr_assert(strstr(e, "offboardStatus: inactive"), "%s", e);
        cr_assert(strstr(e, "offboardReason: Left the company"), "%s", e);
        cr_assert(strstr(e, "offboardAction: revoke-sessions done "), "%s", e);
        cr_assert(strstr(e, "offboardAction: free-license done "), "%s", e);
        cr_assert(strstr(e, "objectClass: offboardAccount"), "%s", e);
        free(e);
        e = ob_test_ldapsearch(&srv, srv.base, "(uid=alice)", "offboardStatus");
        cr_assert_null(strstr(e, "offboardStatus"), "an active account without history is not written: %s", e);
        free(e);

        /* Level-triggered and idempotent: a second pass owes nothing. */
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "0 accounts owe actions"), "%s", out);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), expected_requests(), "the second run sent requests");
        free(out);
        free(err);
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "plan --check after a full reconcile: %s", out);
        free(out);
        free(err);
}

Test(e2e, a_failed_action_is_retried_with_the_same_idempotency_key_and_nothing_else_repeats)
{
        /* Three 500s: every attempt of this pass fails; the next pass wins. */
        start("[{\"match\": \"^/api/licenses/ivan$\", \"status\": 500, \"body\": \"license server down\", "
              "\"times\": 3}]",
              NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "a failed action exits 1; stdout: %.2000s", out);
        cr_assert(strstr(out, "HTTP 500: license server down"), "%s", out);
        free(out);
        free(err);
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 1, "the failed action is still owed");
        cr_assert(strstr(out, "free-license"), "%s", out);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);

        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        cr_assert_eq(n, expected_requests() + 3, "only the failed request was sent again");
        const char *first = NULL;
        int tries = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].path, "/api/licenses/ivan") == 0) {
                        const char *key = ob_test_request_header(&q[i], "Idempotency-Key");
                        tries++;
                        if (!first)
                                first = key;
                        cr_assert_str_eq(first, key, "every attempt carries the same key");
                }
        cr_assert_eq(tries, 4, "three attempts in the first pass, one in the second");
        ob_test_requests_free(q, n);
}

Test(e2e, a_plan_above_the_safety_threshold_is_parked_until_forced)
{
        struct opts o = {.starttls = true, .max_accounts = 3};
        start(NULL, &o);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 4, "stdout: %s", out);
        cr_assert(strstr(out, "SAFETY"), "%s", out);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "a parked plan sent requests");
        free(out);
        free(err);
        rc = offboard("reconcile", "--force", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), expected_requests());
        free(out);
        free(err);
}

Test(e2e, an_unreachable_directory_exits_3_and_changes_nothing)
{
        struct opts o = {.uri = "ldap://127.0.0.1:1", .starttls = true};
        start(NULL, &o);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert(strstr(err, "ldap://127.0.0.1:1"), "%s", err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
        free(out);
        free(err);
}

Test(e2e, an_empty_result_is_never_taken_for_everyone_having_left)
{
        start(NULL, NULL);
        char *out, *err;
        cr_assert_eq(offboard("reconcile", NULL, NULL, &out, &err), 0);
        free(out);
        free(err);
        size_t sent = (size_t)ob_test_recorder_count(&rec);
        /* Now a wrong filter: the search succeeds and finds nobody. */
        struct opts o = {.starttls = true, .filter = "(uid=nobody-by-this-name)"};
        write_config(&o);
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "fewer than min_accounts"), "%s", err);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), sent, "an empty result caused requests");
        free(out);
        free(err);
}

Test(e2e, a_size_limited_search_exits_3_before_any_side_effect)
{
        struct opts o = {.starttls = true, .bind_dn = srv.limited_dn, .bind_pw_file = srv.limited_pw_file};
        start(NULL, &o);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
        free(out);
        free(err);
}

Test(e2e, plain_ldap_without_starttls_is_a_configuration_error)
{
        struct opts o = {.starttls = false};
        start(NULL, &o);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "offboard.yaml:3:"), "the error names the file and line: %s", err);
        cr_assert(strstr(err, "allow_insecure"), "%s", err);
        free(out);
        free(err);
}

Test(e2e, a_deleted_entry_gets_every_stage_it_owes)
{
        start(NULL, NULL);
        /* Left over from an earlier run of this test, if any. */
        ob_test_ldapmodify(&srv, "dn: uid=zed,ou=people,dc=example,dc=org\nchangetype: delete\n");
        const char *addop = "dn: uid=zed,ou=people,dc=example,dc=org\nchangetype: add\n"
                            "objectClass: inetOrgPerson\n"
                            "uid: zed\ncn: Zed\nsn: Zed\nmail: zed@example.org\n"
                            "manager: uid=alice,ou=people,dc=example,dc=org\n";
        cr_assert_eq(ob_test_ldapmodify(&srv, addop), 0);
        char *out, *err;
        cr_assert_eq(offboard("reconcile", NULL, NULL, &out, &err), 0, "%s", err);
        free(out);
        free(err);
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=zed,ou=people,dc=example,dc=org\nchangetype: delete\n"), 0);
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "1 deleted"), "%s", out);
        free(out);
        free(err);
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        const struct ob_test_request *r = find_req(q, n, "POST", "/api/users/zed/sessions/revoke");
        cr_assert_not_null(r, "the deleted account's sessions were not revoked");
        cr_assert_str_eq(r->body, "{\"reason\":\"\",\"status\":\"deleted\"}");
        cr_assert_str_eq(find_req(q, n, "POST", "/api/users/zed/transfer")->body,
                         "{\"to\":\"alice\",\"via\":\"manager\"}");
        cr_assert_not_null(find_req(q, n, "DELETE", "/api/licenses/zed"));
        ob_test_requests_free(q, n);
        size_t sent = (size_t)ob_test_recorder_count(&rec);
        cr_assert_eq(offboard("reconcile", NULL, NULL, &out, &err), 0);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), sent, "a deleted account was deactivated twice");
        free(out);
        free(err);
}

Test(e2e, reactivation_runs_the_reactivate_set_and_rewrites_the_status)
{
        start(NULL, NULL);
        char *out, *err;
        cr_assert_eq(offboard("reconcile", NULL, NULL, &out, &err), 0, "%s", err);
        free(out);
        free(err);
        /* grace was locked by status; unlock her. */
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=grace,ou=people,dc=example,dc=org\nchangetype: modify\n"
                                              "replace: employeeType\nemployeeType: Active\n"),
                     0);
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        cr_assert_not_null(find_req(q, n, "POST", "/api/users/grace/reactivate"));
        ob_test_requests_free(q, n);
        char *e = ob_test_ldapsearch(&srv, srv.base, "(uid=grace)", "offboardStatus");
        cr_assert(strstr(e, "offboardStatus: active"), "%s", e);
        free(e);
        /* Put her back for the other tests. */
        cr_assert_eq(ob_test_ldapmodify(&srv, "dn: uid=grace,ou=people,dc=example,dc=org\nchangetype: modify\n"
                                              "replace: employeeType\nemployeeType: Locked\n"),
                     0);
}

/* Write-ahead: kill -9 while a request is in flight. The intent was recorded
 * before the request left, so the next pass sends that request again with
 * the same Idempotency-Key, and repeats nothing that was recorded done. */
Test(e2e, a_reconcile_killed_mid_request_resumes_with_the_same_keys_and_repeats_nothing_done)
{
        start("[{\"match\": \"^/api/users/bob/transfer$\", \"delay_ms\": 20000, \"times\": 1}]", NULL);
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/killed.log", dir);
        pid_t pid = fork();
        if (pid == 0) {
                /* No cr_assert in the child: with --full-stats even a passing
                 * one talks to the runner over a socket the child shares. */
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "reconcile", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_neq(pid, -1);
        /* Wait (at most 30 s) until the slow request has reached the server. */
        bool seen = false;
        for (int i = 0; i < 3000 && !seen; i++) {
                char *log = ob_test_recorder_log(&rec);
                seen = log && strstr(log, "\"/api/users/bob/transfer\"");
                free(log);
                if (!seen)
                        usleep(10000);
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        char *killed = ob_test_read_file(logpath);
        cr_assert(seen, "the request never arrived (wait status %#x); offboard said:\n%s", status,
                  killed ? killed : "");
        cr_assert(WIFSIGNALED(status), "offboard finished before it was killed:\n%s", killed ? killed : "");
        free(killed);

        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0);
        cr_assert(strstr(out, "continuing"), "the interrupted transition must continue: %s", out);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.3000s\nstderr: %.3000s", out, err);
        free(out);
        free(err);

        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        const char *keys[2] = {NULL, NULL};
        int transfers = 0, revokes = 0;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(q[i].path, "/api/users/bob/transfer") == 0 && transfers < 2)
                        keys[transfers++] = ob_test_request_header(&q[i], "Idempotency-Key");
                if (strcmp(q[i].path, "/api/users/bob/sessions/revoke") == 0)
                        revokes++;
        }
        cr_assert_eq(transfers, 2, "the interrupted request is sent once more, no more");
        cr_assert_str_eq(keys[0], keys[1]);
        cr_assert_eq(revokes, 1, "bob's sessions were revoked and recorded done: not again");
        cr_assert_not_null(find_req(q, n, "DELETE", "/api/licenses/bob"), "the rest of the transition ran");
        ob_test_requests_free(q, n);
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "nothing is owed after the resumed pass: %s", out);
        free(out);
        free(err);
}

/* Starts `offboard reconcile` in the background with stdout and stderr in
 * dir/NAME.log; returns its pid. */
static pid_t start_background(const char *name)
{
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, name);
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "reconcile", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_neq(pid, -1);
        return pid;
}

/* Waits (at most 30 s) until the recorder has seen a request for path. */
static bool wait_for_request(const char *path)
{
        char needle[300];
        snprintf(needle, sizeof(needle), "\"%s\"", path);
        for (int i = 0; i < 3000; i++) {
                char *log = ob_test_recorder_log(&rec);
                bool seen = log && strstr(log, needle);
                free(log);
                if (seen)
                        return true;
                usleep(10000);
        }
        return false;
}

/* Waits for pid at most timeout_s seconds; returns its wait status, or -1
 * (after killing it) if it did not end. */
static int wait_bounded(pid_t pid, int timeout_s)
{
        int status;
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

/* Every request path in the log appears exactly once. */
static void assert_no_repeats(void)
{
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        cr_assert(strcmp(q[i].path, q[j].path) != 0 || strcmp(q[i].method, q[j].method) != 0,
                                  "%s %s was sent twice", q[i].method, q[i].path);
        cr_assert_eq(n, expected_requests(), "requests: %zu, expected %zu", n, expected_requests());
        ob_test_requests_free(q, n);
}

Test(e2e, a_second_reconcile_on_the_same_store_refuses_to_run_and_wait_queues_it)
{
        start("[{\"match\": \"^/api/users/bob/transfer$\", \"delay_ms\": 3000, \"times\": 1}]", NULL);
        pid_t first = start_background("first");
        bool seen = wait_for_request("/api/users/bob/transfer");
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        int status = seen ? 0 : wait_bounded(first, 1);
        cr_assert(seen, "the first pass never reached the slow request (status %#x)", status);
        cr_assert_eq(rc, 2, "a second pass must not act beside the first: stdout %s\nstderr %s", out, err);
        char pid[32];
        snprintf(pid, sizeof(pid), "pid %d", (int)first);
        cr_assert(strstr(err, pid), "the message names the pass that holds the store: %s", err);
        free(out);
        free(err);
        /* --wait queues behind it, then finds nothing owed. */
        rc = offboard("reconcile", "--wait", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        cr_assert(strstr(out, "0 accounts owe actions"), "%s", out);
        free(out);
        free(err);
        status = wait_bounded(first, 30);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "first pass: %#x", status);
        assert_no_repeats();
}

Test(e2e, sigterm_drains_the_pass_and_nothing_answered_is_sent_again)
{
        start("[{\"match\": \"^/api/users/bob/transfer$\", \"delay_ms\": 1500, \"times\": 1}]", NULL);
        pid_t pid = start_background("term");
        bool seen = wait_for_request("/api/users/bob/transfer");
        kill(pid, SIGTERM);
        int status = wait_bounded(pid, 30);
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/term.log", dir);
        char *log = ob_test_read_file(logpath);
        cr_assert(seen, "the slow request never arrived: %s", log ? log : "");
        cr_assert(status != -1 && WIFEXITED(status), "offboard did not exit after SIGTERM: %#x\n%s", status,
                  log ? log : "");
        cr_assert_eq(WEXITSTATUS(status), 5, "a drained pass exits 5:\n%s", log ? log : "");
        cr_assert(strstr(log, "event=draining"), "%s", log);
        cr_assert(strstr(log, "Stopped early by SIGTERM"), "the report is still printed:\n%s", log);
        free(log);
        /* The request in flight was answered during the drain and recorded:
         * the next pass does the rest and repeats nothing. */
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
        assert_no_repeats();
}

Test(e2e, a_second_signal_stops_at_once_and_the_next_pass_resends_with_the_same_key)
{
        start("[{\"match\": \"^/api/users/bob/transfer$\", \"delay_ms\": 25000, \"times\": 1}]", NULL);
        pid_t pid = start_background("twice");
        bool seen = wait_for_request("/api/users/bob/transfer");
        kill(pid, SIGTERM);
        usleep(200000);
        kill(pid, SIGINT);
        /* Well before the slow answer (25 s) would have come. */
        int status = wait_bounded(pid, 15);
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/twice.log", dir);
        char *log = ob_test_read_file(logpath);
        cr_assert(seen, "the slow request never arrived: %s", log ? log : "");
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 5, "status %#x:\n%s", status,
                  log ? log : "");
        cr_assert(strstr(log, "event=stopping"), "%s", log);
        cr_assert(strstr(log, "interrupted"), "%s", log);
        free(log);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        const char *keys[2] = {NULL, NULL};
        int transfers = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].path, "/api/users/bob/transfer") == 0 && transfers < 2)
                        keys[transfers++] = ob_test_request_header(&q[i], "Idempotency-Key");
        cr_assert_eq(transfers, 2, "the abandoned request is sent once more");
        cr_assert_str_eq(keys[0], keys[1]);
        ob_test_requests_free(q, n);
}

static int count_path(const char *method, const char *path)
{
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        int c = 0;
        for (size_t i = 0; i < n; i++)
                c += strcmp(q[i].method, method) == 0 && strcmp(q[i].path, path) == 0;
        ob_test_requests_free(q, n);
        return c;
}

Test(e2e, an_account_deleted_after_it_was_locked_owes_only_what_the_lock_did_not_do)
{
        start(NULL, NULL);
        const char *dn = "dn: uid=yan,ou=people,dc=example,dc=org\n";
        char ldif[512];
        snprintf(ldif, sizeof(ldif), "%schangetype: delete\n", dn);
        ob_test_ldapmodify(&srv, ldif);
        snprintf(ldif, sizeof(ldif),
                 "%schangetype: add\nobjectClass: inetOrgPerson\nuid: yan\ncn: Yan\nsn: Yan\n"
                 "employeeType: Locked\nmanager: uid=alice,ou=people,dc=example,dc=org\n",
                 dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        char *out, *err;
        cr_assert_eq(offboard("reconcile", NULL, NULL, &out, &err), 0, "%s", err);
        free(out);
        free(err);
        cr_assert_eq(count_path("POST", "/api/users/yan/sessions/revoke"), 1);
        cr_assert_eq(count_path("POST", "/api/users/yan/transfer"), 0, "locked keeps its records");
        snprintf(ldif, sizeof(ldif), "%schangetype: delete\n", dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(count_path("POST", "/api/users/yan/sessions/revoke"), 1, "sessions were revoked by the lock");
        cr_assert_eq(count_path("POST", "/api/users/yan/transfer"), 1);
        cr_assert_eq(count_path("DELETE", "/api/licenses/yan"), 1);
}

Test(e2e, a_write_back_the_directory_refused_is_retried_by_the_next_pass_and_lands)
{
        start(NULL, NULL);
        const char *dn = "uid=wendy,ou=people,dc=example,dc=org";
        char ldif[1024];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: delete\n", dn);
        ob_test_ldapmodify(&srv, ldif);
        snprintf(ldif, sizeof(ldif),
                 "dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: wendy\ncn: Wendy\nsn: Wendy\n"
                 "employeeType: Locked\n",
                 dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        /* The service account may read wendy but not write her entry. */
        snprintf(ldif, sizeof(ldif),
                 "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nadd: olcAccess\n"
                 "olcAccess: {2}to dn.exact=\"%s\" by dn.exact=\"%s\" read by * break\n",
                 dn, srv.bind_dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        /* Restore the access rule before anything can fail. */
        int restored = ob_test_ldapmodify(&srv, "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
                                                "delete: olcAccess\nolcAccess: {2}\n");
        cr_assert_eq(restored, 0);
        cr_assert_eq(rc, 1, "a refused write-back exits 1: stdout %s\nstderr %s", out, err);
        cr_assert(strstr(err, "writeback_failed"), "%s", err);
        free(out);
        free(err);
        char *e = ob_test_ldapsearch(&srv, srv.base, "(uid=wendy)", "offboardStatus");
        cr_assert_null(strstr(e, "offboardStatus"), "%s", e);
        free(e);
        size_t sent = (size_t)ob_test_recorder_count(&rec);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
        e = ob_test_ldapsearch(&srv, srv.base, "(uid=wendy)", "offboardStatus");
        cr_assert(strstr(e, "offboardStatus: locked"), "the owed write-back landed: %s", e);
        free(e);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), sent, "only the write-back was owed");
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: delete\n", dn);
        ob_test_ldapmodify(&srv, ldif);
}

Test(e2e, adopt_records_every_current_status_and_runs_nothing)
{
        struct opts o = {.starttls = true, .max_accounts = 3}; /* a normal first pass would park */
        start(NULL, &o);
        char *out, *err;
        int rc = offboard("plan", "--adopt", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        cr_assert(strstr(out, "would be recorded as inactive; no action runs"), "%s", out);
        free(out);
        free(err);
        char st[300];
        snprintf(st, sizeof(st), "%s/state.db", dir);
        cr_assert_neq(access(st, F_OK), 0, "plan --adopt created the state store");
        rc = offboard("reconcile", "--adopt", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        char summary[64];
        snprintf(summary, sizeof(summary), "adopt: %zu recorded", non_active());
        cr_assert(strstr(out, summary), "expected '%s' in %s", summary, out);
        free(out);
        free(err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "adopt sent requests");
        /* The next pass owes nothing downstream (it may write statuses back). */
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "an adopted status was acted on");
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "%s", out);
        free(out);
        free(err);
}

/* The recorder's requests for one path, in order. */
static size_t requests_to(const char *method, const char *path, double *times, size_t max)
{
        struct ob_test_request *q;
        size_t n, k = 0;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].method, method) == 0 && strcmp(q[i].path, path) == 0 && k < max)
                        times[k++] = q[i].time;
        ob_test_requests_free(q, n);
        return k;
}

Test(e2e, a_429_is_retried_in_the_pass_but_never_before_its_retry_after)
{
        start("[{\"match\": \"^/api/licenses/bob$\", \"status\": 429, \"times\": 1, "
              "\"headers\": {\"Retry-After\": \"2\"}}]",
              NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "the second attempt succeeds: stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        double t[4];
        size_t k = requests_to("DELETE", "/api/licenses/bob", t, 4);
        cr_assert_eq(k, 2);
        cr_assert_geq(t[1] - t[0], 1.95, "retried %.3f s after a Retry-After of 2 s", t[1] - t[0]);
}

Test(e2e, a_retry_after_longer_than_the_pass_waits_is_honoured_by_the_next_pass)
{
        start("[{\"match\": \"^/api/licenses/bob$\", \"status\": 503, \"times\": 1, "
              "\"headers\": {\"Retry-After\": \"120\"}}]",
              NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %.2000s\nstderr %.2000s", out, err);
        cr_assert(strstr(err, "event=action_deferred"), "%s", err);
        free(out);
        free(err);
        /* The next pass holds it: the server said two minutes. */
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %.2000s", out);
        cr_assert(strstr(out, "Retry-After"), "the report says why it waits: %s", out);
        free(out);
        free(err);
        double t[4];
        cr_assert_eq(requests_to("DELETE", "/api/licenses/bob", t, 4), 1, "no request before Retry-After expired");
}

Test(e2e, a_404_on_a_delete_listed_in_ok_status_counts_as_done)
{
        start("[{\"match\": \"^/api/licenses/bob$\", \"status\": 404, \"body\": \"no such license\"}]", NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0);
        free(out);
        free(err);
        double t[4];
        cr_assert_eq(requests_to("DELETE", "/api/licenses/bob", t, 4), 1, "already gone is done: not again");
}

Test(e2e, a_refusal_that_will_not_change_is_parked_until_a_human_releases_it)
{
        start("[{\"match\": \"^/api/users/ivan/transfer$\", \"status\": 403, \"body\": \"forbidden\", "
              "\"times\": 1}]",
              NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %.2000s\nstderr %.2000s", out, err);
        cr_assert(strstr(err, "event=action_parked"), "%s", err);
        free(out);
        free(err);
        double t[4];
        cr_assert_eq(requests_to("POST", "/api/users/ivan/transfer", t, 4), 1, "a 403 is not retried in the pass");
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1);
        cr_assert(strstr(out, "parked as failed"), "rc %d stdout [%s]\nstderr [%s]", rc, out, err);
        free(out);
        free(err);
        cr_assert_eq(requests_to("POST", "/api/users/ivan/transfer", t, 4), 1, "a parked action waits for a human");
        cr_assert_eq(requests_to("DELETE", "/api/licenses/ivan", t, 4), 0, "what runs after it is held");
        /* offboard status says it needs a human; retry releases it. */
        rc = offboard("status", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %s\nstderr %s", out, err);
        cr_assert(strstr(out, "ivan"), "%s", out);
        cr_assert(strstr(out, "parked"), "%s", out);
        free(out);
        free(err);
        const char *argv[] = {OB_OFFBOARD_BIN, "retry", "ivan", "--config", cfgpath, NULL};
        rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        cr_assert(strstr(out, "released 1 action"), "%s", out);
        free(out);
        free(err);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        cr_assert_eq(requests_to("POST", "/api/users/ivan/transfer", t, 4), 2);
        cr_assert_eq(requests_to("DELETE", "/api/licenses/ivan", t, 4), 1);
        rc = offboard("status", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "nothing needs a human now: %s", out);
        free(out);
        free(err);
}

Test(e2e, a_dead_connector_is_paused_after_a_few_failures_not_one_timeout_per_request)
{
        start("[{\"match\": \"^/api/\", \"reset\": true}]", NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %.2000s\nstderr %.2000s", out, err);
        cr_assert(strstr(err, "event=connector_paused"), "%s", err);
        free(out);
        free(err);
        /* pause_after 4, concurrency 4: a handful of requests, not one (and
         * three attempts) per owed action. */
        int sent = ob_test_recorder_count(&rec);
        cr_assert_leq(sent, 12, "%d requests reached a dead server", sent);
        cr_assert_lt((size_t)sent, expected_requests());
        /* Nothing was lost: the next pass against a live server does it all. */
        ob_test_recorder_stop(&rec);
        start(NULL, NULL);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), expected_requests());
}

Test(e2e, the_audit_journal_has_one_line_per_attempt_and_per_outcome_and_no_secret)
{
        start("[{\"match\": \"^/api/licenses/ivan$\", \"status\": 500, \"body\": \"license server down\", "
              "\"times\": 1}]",
              NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        char path[300];
        snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
        char *j = ob_test_read_file(path);
        cr_assert_not_null(j, "no journal beside the state store");
        int sent = ob_test_recorder_count(&rec);
        cr_assert_eq(ob_test_count(j, "{\"time\":\""), 2 * sent, "one attempt and one outcome per request:\n%.3000s", j);
        cr_assert_eq(ob_test_count(j, "\"event\":\"attempt\""), sent);
        cr_assert_eq(ob_test_count(j, "\"result\":\"failed\""), 1, "%.3000s", j);
        cr_assert(strstr(j, "\"action\":\"free-license\""), "%.2000s", j);
        cr_assert(strstr(j, "\"idempotency_key\":\"offboard-"), "%.2000s", j);
        cr_assert_null(strstr(j, "s3cr3t"), "the token reached the journal");
        /* Every line is JSON. */
        char cmd[400];
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' '%s'", path);
        cr_assert_eq(system(cmd), 0, "the journal is not JSON lines");
        free(j);
}

Test(e2e, a_full_disk_stops_the_pass_says_why_and_loses_nothing)
{
        char full[300];
        snprintf(full, sizeof(full), "%s/full", dir);
        cr_assert_eq(mkdir(full, 0700), 0);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=2m,mode=0700 offboard-test '%s' 2>/dev/null", full);
        if (system(cmd) != 0)
                cr_skip_test("cannot mount a tmpfs here (not root?)");
        mounted = true;
        snprintf(mountpoint, sizeof(mountpoint), "%s", full);
        char state[400];
        snprintf(state, sizeof(state), "%s/state.db", full);
        struct opts o = {.starttls = true, .state = state};
        start(NULL, &o);
        /* Leave the store and its journal 48 KiB. */
        char filler[400];
        snprintf(filler, sizeof(filler), "%s/filler", full);
        struct statvfs vfs;
        cr_assert_eq(statvfs(full, &vfs), 0);
        long long fill = (long long)vfs.f_bavail * (long long)vfs.f_frsize - 48 * 1024;
        snprintf(cmd, sizeof(cmd), "head -c %lld /dev/zero > '%s'", fill, filler);
        cr_assert_eq(system(cmd), 0);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        int sent = ob_test_recorder_count(&rec);
        bool said = strstr(err, "disk full") || strstr(err, "No space left");
        size_t el = strlen(err);
        cr_assert(rc == 2 && said, "rc %d (expected 2, the pass stops acting); stderr ends: %s", rc,
                  err + (el > 700 ? el - 700 : 0));
        free(out);
        free(err);
        cr_assert_leq((size_t)sent, expected_requests());
        /* Space again: the next pass does what is owed, nothing twice. */
        unlink(filler);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        struct ob_test_request *q;
        size_t n, distinct = 0;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        for (size_t i = 0; i < n; i++) {
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                        first = strcmp(q[j].path, q[i].path) != 0 || strcmp(q[j].method, q[i].method) != 0;
                distinct += first;
        }
        ob_test_requests_free(q, n);
        cr_assert_eq(distinct, expected_requests(), "every owed request reached the server once the disk had room");
}

Test(e2e, a_server_that_stalls_past_the_timeout_fails_and_is_retried_by_the_next_pass)
{
        /* timeout 5s: two stalls of 7 s on one action, then it answers. */
        start("[{\"match\": \"^/api/licenses/bob$\", \"delay_ms\": 7000, \"times\": 2}]", NULL);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "the third attempt answers in time: stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        double t[4];
        size_t k = requests_to("DELETE", "/api/licenses/bob", t, 4);
        cr_assert_eq(k, 3, "two timeouts and a success: %zu attempts", k);
        rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0);
        free(out);
        free(err);
        cr_assert_eq(requests_to("DELETE", "/api/licenses/bob", t, 4), 3, "done is done");
}

Test(e2e, a_tls_handshake_that_fails_is_a_failure_without_an_answer_and_the_connector_is_paused)
{
        start(NULL, NULL);
        /* The connector speaks https to a server that speaks plain http. */
        char *cfg = ob_test_read_file(cfgpath);
        cr_assert_not_null(cfg);
        char *at = strstr(cfg, "base_url: http://");
        cr_assert_not_null(at);
        FILE *f = fopen(cfgpath, "w");
        fprintf(f, "%.*shttps://%s", (int)(at - cfg + 10), cfg, at + 17);
        fclose(f);
        free(cfg);
        char *out, *err;
        int rc = offboard("reconcile", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 1, "stdout %.2000s\nstderr %.2000s", out, err);
        cr_assert(strstr(err, "event=connector_paused"), "%s", err);
        cr_assert(strstr(out, "SSL") || strstr(out, "TLS") || strstr(out, "ssl") || strstr(out, "wrong version"),
                  "the report says what failed: %.3000s", out);
        free(out);
        free(err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "nothing reached the application as a request");
}
