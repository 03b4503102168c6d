/* test_status.c: `offboard status` and `offboard retry` on stores built in a
 * temporary directory; JSON documents are checked by Python's strict parser. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "run.h"
#include "state.h"
#include "status.h"
#include "util.h"

#define FUTURE 4102444800LL /* 2100-01-01T00:00:00Z */
#define FUTURE_TEXT "2100-01-01T00:00:00Z"
#define PAST 1000000000LL

static char tmpdir[256];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static void setup(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/ob-test-status-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
        if (tmpdir[0])
                nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
}

TestSuite(status, .init = setup, .fini = teardown, .timeout = 60);

static const char *path_in(const char *name)
{
        static char p[4][512];
        static int k;
        k = (k + 1) % 4;
        snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
        return p[k];
}

static struct ob_state *open_store(const char *path, bool readonly)
{
        struct ob_state *s = NULL;
        int r = ob_state_open(path, readonly, &s);
        cr_assert_eq(r, 0, "open %s: %s (%s)", path, ob_strerror(r), ob_state_open_errmsg());
        return s;
}

/* A configuration that knows two connectors and three actions. */
static struct ob_connector connectors[] = {
        {.name = (char *)"mail"},
        {.name = (char *)"hr"},
};
static struct ob_action actions[] = {
        {.name = (char *)"disable-mail", .connector = &connectors[0]},
        {.name = (char *)"forward-mail", .connector = &connectors[0]},
        {.name = (char *)"notify-hr", .connector = &connectors[1]},
};
static const struct ob_config config = {
        .nconnectors = 2,
        .connectors = connectors,
        .nactions = 3,
        .actions = actions,
};

static void put(struct ob_state *s, const char *id, const char *username, const char *dn, int status, int from,
                int to, int64_t generation, bool writeback_owed)
{
        struct ob_record r = {
                .id = (char *)id,
                .dn = (char *)dn,
                .username = (char *)username,
                .status = status,
                .generation = generation,
                .pending_from = from,
                .pending_to = to,
                .writeback_owed = writeback_owed,
        };
        cr_assert_eq(ob_state_put(s, &r, NULL), 0, "%s", ob_state_errmsg(s));
}

/* An account changing from active to locked in generation 1. */
static void put_locking(struct ob_state *s, const char *id, const char *username)
{
        char dn[128];
        snprintf(dn, sizeof(dn), "uid=%s,ou=people,dc=example,dc=org", username);
        put(s, id, username, dn, OB_STATUS_ACTIVE, OB_STATUS_ACTIVE, OB_STATUS_LOCKED, 1, false);
}

static void intent(struct ob_state *s, const char *id, int64_t gen, const char *action)
{
        cr_assert_eq(ob_state_action_intent(s, id, gen, action, "key", 1700000000), 0, "%s", ob_state_errmsg(s));
}

static void outcome(struct ob_state *s, const char *id, int64_t gen, const char *action, enum ob_outcome o,
                    long http, const char *error)
{
        cr_assert_eq(ob_state_action_outcome(s, id, gen, action, o, http, error, 1700000001), 0, "%s",
                     ob_state_errmsg(s));
}

static void defer(struct ob_state *s, const char *id, int64_t gen, const char *action, int64_t not_before,
                  bool parked)
{
        cr_assert_eq(ob_state_action_defer(s, id, gen, action, not_before, parked), 0, "%s", ob_state_errmsg(s));
}

/* Tried three times, failed for good. */
static void park(struct ob_state *s, const char *id, int64_t gen, const char *action)
{
        for (int i = 0; i < 3; i++)
                intent(s, id, gen, action);
        outcome(s, id, gen, action, OB_OUTCOME_FAILED, 503, "Service Unavailable");
        defer(s, id, gen, action, 0, true);
}

static char *report_svc(struct ob_state *s, const struct ob_config *c, const struct ob_status_service *svc,
                        bool json, bool *ret_needs_human)
{
        char *doc = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&doc, &len);
        cr_assert_not_null(f);
        bool needs = !*ret_needs_human;
        int r = ob_status_report(s, c, svc, json, f, &needs);
        cr_assert_eq(r, 0, "report: %s (%s)", ob_strerror(r), ob_state_errmsg(s));
        cr_assert_eq(fclose(f), 0);
        *ret_needs_human = needs;
        return doc;
}

static char *report(struct ob_state *s, const struct ob_config *c, bool json, bool *ret_needs_human)
{
        return report_svc(s, c, NULL, json, ret_needs_human);
}

static char *retry(struct ob_state *s, const char *target, int expect)
{
        char *doc = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&doc, &len);
        cr_assert_not_null(f);
        int r = ob_status_retry(s, target, f);
        cr_assert_eq(r, expect, "retry %s: %d %s (%s)", target ? target : "(all)", r, ob_strerror(r),
                     ob_state_errmsg(s));
        cr_assert_eq(fclose(f), 0);
        return doc;
}

/* Python's strict JSON parser on doc (one line), then each assertion. */
static void json_check(const char *doc, const char *const *asserts, size_t n)
{
        ob_test_json_check(tmpdir, doc, true, asserts, n);
}

static struct ob_action_record find_action(struct ob_state *s, const char *id, int64_t gen, const char *action)
{
        struct ob_action_record *list = NULL, found = {0};
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, id, gen, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].action, action) == 0) {
                        found = list[i];
                        list[i] = (struct ob_action_record){0};
                }
        ob_action_records_free(list, n);
        cr_assert_not_null(found.action, "no action %s for %s", action, id);
        return found;
}

static void assert_held_back(struct ob_state *s, const char *id, int64_t gen, const char *action, bool parked,
                             int64_t not_before)
{
        struct ob_action_record a = find_action(s, id, gen, action);
        cr_assert_eq(a.parked, parked, "%s/%s parked %d", id, action, a.parked);
        cr_assert_eq(a.not_before, not_before, "%s/%s not_before %lld", id, action, (long long)a.not_before);
        ob_action_record_clear(&a);
}

#define CONTAINS(hay, needle) cr_assert_not_null(strstr(hay, needle), "no \"%s\" in:\n%s", needle, hay)
#define LACKS(hay, needle) cr_assert_null(strstr(hay, needle), "unexpected \"%s\" in:\n%s", needle, hay)

/* ---- the report ---- */

Test(status, an_empty_store_reports_nothing_and_needs_no_human)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        bool needs = true;
        char *text = report(s, &config, false, &needs);
        cr_assert_not(needs);
        cr_assert_str_eq(text, "nothing needs attention\n");
        free(text);

        needs = true;
        char *doc = report(s, &config, true, &needs);
        cr_assert_not(needs);
        const char *checks[] = {
                "d['version'] == 1 and d['kind'] == 'status' and d['accounts'] == []",
                "d['summary']['accounts'] == 0 and d['summary']['needs_human'] is False",
                "d['summary']['parked'] == 0 and d['summary']['failed'] == 0",
                "sorted(d['summary']['connectors']) == ['hr', 'mail']",
                "d['time'].endswith('Z')",
        };
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
}

/* The service's own word comes first: a service that says it is failing
 * (a parked plan, the directory unusable) or does not answer needs a human
 * even when the store holds nothing back; its body is escaped. */
Test(status, a_running_service_that_is_failing_or_silent_needs_a_human)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_status_service svc = {.running = true,
                                        .pid = 4242,
                                        .listen = "unix:/run/offboard/metrics.sock",
                                        .http_status = 503,
                                        .health = "{\"status\":\"failing\",\"reason\":\"parked\x1b[2J\"}\n"};
        bool needs = false;
        char *text = report_svc(s, &config, &svc, false, &needs);
        cr_assert(needs);
        cr_assert_str_eq(text, "service: offboard run (pid 4242) holds the state store; /healthz at "
                               "unix:/run/offboard/metrics.sock: 503 {\"status\":\"failing\",\"reason\":\"parked\\x1b[2J\"}\n"
                               "nothing needs attention\n");
        free(text);
        char *doc = report_svc(s, &config, &svc, true, &needs);
        const char *checks[] = {
                "d['service'] == {'running': True, 'pid': 4242, 'listen': 'unix:/run/offboard/metrics.sock', "
                "'http_status': 503, 'health': '{\"status\":\"failing\",\"reason\":\"parked\\x1b[2J\"}\\n'}",
                "d['summary']['needs_human'] is True",
        };
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);

        svc = (struct ob_status_service){.running = true, .pid = 1, .listen = "127.0.0.1:9464", .error = "timed out"};
        needs = false;
        text = report_svc(s, &config, &svc, false, &needs);
        cr_assert(needs);
        cr_assert(strstr(text, "/healthz at 127.0.0.1:9464 did not answer: timed out\n"), "%s", text);
        free(text);

        svc = (struct ob_status_service){.running = true, .pid = 1, .listen = "127.0.0.1:9464", .http_status = 200,
                                         .health = "{}"};
        needs = true;
        text = report_svc(s, &config, &svc, false, &needs);
        cr_assert_not(needs);
        free(text);
        svc = (struct ob_status_service){0};
        needs = true;
        text = report_svc(s, &config, &svc, false, &needs);
        cr_assert_not(needs);
        cr_assert_str_eq(text, "service: not running (no `offboard run` holds the state store)\nnothing needs attention\n");
        free(text);
        ob_state_free(s);
}

Test(status, a_missing_store_opened_read_only_reports_nothing_needs_no_human_and_creates_no_file)
{
        const char *p = path_in("missing.db");
        struct ob_state *s = open_store(p, true);
        bool needs = true;
        char *text = report(s, NULL, false, &needs);
        cr_assert_not(needs);
        cr_assert_str_eq(text, "nothing needs attention\n");
        free(text);
        needs = true;
        char *doc = report(s, NULL, true, &needs);
        cr_assert_not(needs);
        const char *checks[] = {"d['accounts'] == [] and d['summary']['connectors'] == {}"};
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
        cr_assert_eq(access(p, F_OK), -1);
}

Test(status, accounts_whose_status_is_fully_applied_are_not_listed)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put(s, "id-1", "alice", "uid=alice,dc=example", OB_STATUS_LOCKED, 0, 0, 1, false);
        outcome(s, "id-1", 1, "disable-mail", OB_OUTCOME_DONE, 204, NULL);
        bool needs = true;
        char *text = report(s, &config, false, &needs);
        cr_assert_not(needs);
        cr_assert_str_eq(text, "nothing needs attention\n");
        free(text);
        ob_state_free(s);
}

Test(status, a_parked_action_is_listed_with_its_account_attempts_and_error_and_needs_a_human)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        park(s, "id-1", 1, "disable-mail");
        outcome(s, "id-1", 1, "notify-hr", OB_OUTCOME_DONE, 200, NULL);
        ob_state_free(s);

        s = open_store(path_in("state.db"), true); /* the report reads only */
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        cr_assert(needs);
        CONTAINS(text, "alice (id id-1)\n");
        CONTAINS(text, "  dn: uid=alice,ou=people,dc=example,dc=org\n");
        CONTAINS(text, "  status: active, changing active -> locked (generation 1)\n");
        CONTAINS(text, "    disable-mail [mail]: failed, 3 attempts, last HTTP 503, parked\n");
        CONTAINS(text, "      error: Service Unavailable\n");
        CONTAINS(text, "    notify-hr [hr]: done, 0 attempts, last HTTP 200\n");
        CONTAINS(text, "summary: 1 account needs attention (1 transition in progress, 0 write-backs owed)\n");
        CONTAINS(text, "  actions: 1 parked, 0 failed, 0 waiting, 0 in flight or interrupted, 0 held\n");
        CONTAINS(text, "  connector mail: 1 parked,");
        LACKS(text, "connector hr");
        CONTAINS(text, "offboard retry");
        free(text);
        ob_state_free(s);
}

Test(status, a_failed_action_needs_a_human_and_shows_when_it_may_be_tried_again)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        intent(s, "id-1", 1, "disable-mail");
        outcome(s, "id-1", 1, "disable-mail", OB_OUTCOME_FAILED, 429, "Too Many Requests");
        defer(s, "id-1", 1, "disable-mail", FUTURE, false);
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        cr_assert(needs);
        CONTAINS(text, "    disable-mail [mail]: failed, 1 attempt, last HTTP 429, not before " FUTURE_TEXT "\n");
        CONTAINS(text, "  actions: 0 parked, 1 failed,");
        free(text);
        ob_state_free(s);
}

Test(status, an_owed_write_back_alone_needs_a_human)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put(s, "id-1", "alice", "uid=alice,dc=example", OB_STATUS_LOCKED, 0, 0, 1, true);
        outcome(s, "id-1", 1, "disable-mail", OB_OUTCOME_DONE, 204, NULL);
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        cr_assert(needs);
        CONTAINS(text, "  status: locked\n");
        CONTAINS(text, "  write-back owed");
        CONTAINS(text, "(0 transitions in progress, 1 write-back owed)");
        free(text);
        needs = false;
        char *doc = report(s, &config, true, &needs);
        cr_assert(needs);
        const char *checks[] = {
                "d['accounts'][0]['writeback_owed'] is True and d['accounts'][0]['pending'] is None",
                "d['summary']['writebacks_owed'] == 1 and d['summary']['needs_human'] is True",
        };
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
}

Test(status, actions_in_flight_waiting_or_held_are_shown_but_need_no_human)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        intent(s, "id-1", 1, "disable-mail");                                 /* in flight */
        intent(s, "id-1", 1, "forward-mail");
        defer(s, "id-1", 1, "forward-mail", FUTURE, false);                   /* waiting */
        outcome(s, "id-1", 1, "notify-hr", OB_OUTCOME_NONE, 0, NULL);         /* held */
        outcome(s, "id-1", 1, "old-action", OB_OUTCOME_BLOCKED, 0, NULL);     /* held, unknown connector */
        outcome(s, "id-1", 1, "skipped-one", OB_OUTCOME_SKIPPED, 0, NULL);
        intent(s, "id-1", 1, "past-deferral");
        defer(s, "id-1", 1, "past-deferral", PAST, false);                    /* due: in flight */
        bool needs = true;
        char *text = report(s, &config, false, &needs);
        cr_assert_not(needs);
        CONTAINS(text, "    disable-mail [mail]: intent, 1 attempt, in flight or interrupted\n");
        CONTAINS(text, "    forward-mail [mail]: intent, 1 attempt, not before " FUTURE_TEXT "\n");
        CONTAINS(text, "    notify-hr [hr]: none, 0 attempts, held\n");
        CONTAINS(text, "    old-action [?]: blocked, 0 attempts, held\n");
        CONTAINS(text, "    skipped-one [?]: skipped, 0 attempts\n");
        CONTAINS(text, "    past-deferral [?]: intent, 1 attempt, in flight or interrupted\n");
        CONTAINS(text, "  actions: 0 parked, 0 failed, 1 waiting, 2 in flight or interrupted, 2 held\n");
        CONTAINS(text, "  connector mail: 0 parked, 0 failed, 1 waiting, 1 in flight or interrupted, 0 held\n");
        CONTAINS(text, "  connector hr: 0 parked, 0 failed, 0 waiting, 0 in flight or interrupted, 1 held\n");
        CONTAINS(text, "  connector ?: 0 parked, 0 failed, 0 waiting, 1 in flight or interrupted, 1 held\n");
        CONTAINS(text, "no human is needed");
        free(text);
        ob_state_free(s);
}

Test(status, only_the_actions_of_the_current_generation_are_reported)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put(s, "id-1", "alice", "uid=alice,dc=example", OB_STATUS_LOCKED, OB_STATUS_LOCKED, OB_STATUS_DELETED, 2,
            false);
        park(s, "id-1", 1, "disable-mail"); /* an older transition's */
        intent(s, "id-1", 2, "notify-hr");
        bool needs = true;
        char *text = report(s, &config, false, &needs);
        cr_assert_not(needs);
        LACKS(text, "disable-mail");
        CONTAINS(text, "notify-hr");
        free(text);
        ob_state_free(s);
}

Test(status, the_json_summary_counts_per_state_and_per_connector_and_unknown_actions_fall_under_a_question_mark)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        put_locking(s, "id-2", "bob");
        put(s, "id-3", "carol", "uid=carol,dc=example", OB_STATUS_LOCKED, 0, 0, 1, true);
        park(s, "id-1", 1, "disable-mail");
        park(s, "id-2", 1, "disable-mail");
        outcome(s, "id-2", 1, "notify-hr", OB_OUTCOME_FAILED, 500, "boom");
        intent(s, "id-2", 1, "gone-action");
        bool needs = false;
        char *doc = report(s, &config, true, &needs);
        cr_assert(needs);
        const char *checks[] = {
                "[a['id'] for a in d['accounts']] == ['id-1', 'id-2', 'id-3']",
                "d['accounts'][0]['username'] == 'alice' and d['accounts'][0]['status'] == 'active'",
                "d['accounts'][0]['pending'] == {'from': 'active', 'to': 'locked'}",
                "d['accounts'][0]['generation'] == 1",
                "d['accounts'][0]['actions'][0] == {'action': 'disable-mail', 'connector': 'mail', 'state': "
                "'parked', 'outcome': 'failed', 'attempts': 3, 'http_status': 503, 'error': 'Service "
                "Unavailable', 'parked': True, 'not_before': None, 'due': None, 'updated': '2023-11-14T22:13:21Z'}",
                "[a['state'] for a in d['accounts'][1]['actions']] == ['parked', 'in_flight', 'failed']",
                "[a['connector'] for a in d['accounts'][1]['actions']] == ['mail', '?', 'hr']",
                "d['summary']['accounts'] == 3 and d['summary']['in_progress'] == 2",
                "d['summary']['writebacks_owed'] == 1",
                "(d['summary']['parked'], d['summary']['failed'], d['summary']['in_flight']) == (2, 1, 1)",
                "d['summary']['connectors']['mail'] == {'parked': 2, 'failed': 0, 'waiting': 0, 'in_flight': 0, "
                "'held': 0}",
                "d['summary']['connectors']['hr']['failed'] == 1",
                "d['summary']['connectors']['?']['in_flight'] == 1",
                "d['summary']['needs_human'] is True",
        };
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
}

Test(status, without_a_configuration_every_connector_is_a_question_mark)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        park(s, "id-1", 1, "disable-mail");
        bool needs = false;
        char *text = report(s, NULL, false, &needs);
        cr_assert(needs);
        CONTAINS(text, "    disable-mail [?]: failed");
        CONTAINS(text, "  connector ?: 1 parked");
        free(text);
        char *doc = report(s, NULL, true, &needs);
        const char *checks[] = {"list(d['summary']['connectors']) == ['?']"};
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
}

Test(status, control_characters_in_directory_values_and_errors_are_escaped_in_the_text)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put(s, "id-\x07", "ev\x1b[31mil", "uid=ev\nil,dc=example", OB_STATUS_ACTIVE, OB_STATUS_ACTIVE,
            OB_STATUS_LOCKED, 1, false);
        intent(s, "id-\x07", 1, "act\x1b]0;x\x07");
        outcome(s, "id-\x07", 1, "act\x1b]0;x\x07", OB_OUTCOME_FAILED, 400, "bad\r\nfake: line\xe2\x80\xae\xff");
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        cr_assert(needs);
        for (const char *c = text; *c; c++)
                cr_assert((unsigned char)*c >= 0x20 || *c == '\n', "raw control 0x%02x in:\n%s", *c, text);
        LACKS(text, "\xe2\x80\xae");
        LACKS(text, "\xff");
        CONTAINS(text, "ev\\x1b[31mil (id id-\\x07)\n");
        CONTAINS(text, "  dn: uid=ev\\x0ail,dc=example\n");
        CONTAINS(text, "    act\\x1b]0;x\\x07 [?]: failed");
        CONTAINS(text, "      error: bad\\x0d\\x0afake: line\\u202E\\xff\n");
        free(text);
        ob_state_free(s);
}

Test(status, json_is_valid_and_keeps_control_characters_and_odd_bytes_escaped)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put(s, "id-1", "ev\x1b[31m\"il\\", "uid=ev\nil,dc=example", OB_STATUS_ACTIVE, OB_STATUS_ACTIVE,
            OB_STATUS_LOCKED, 1, false);
        intent(s, "id-1", 1, "disable-mail");
        outcome(s, "id-1", 1, "disable-mail", OB_OUTCOME_FAILED, 400, "bad\r\n\xff</script>");
        bool needs = false;
        char *doc = report(s, &config, true, &needs);
        cr_assert(needs);
        for (const char *c = doc; *c; c++)
                cr_assert((unsigned char)*c >= 0x20 || (*c == '\n' && c[1] == '\0'), "raw control in %s", doc);
        const char *checks[] = {
                "d['accounts'][0]['username'] == 'ev\\x1b[31m\"il\\\\'",
                "d['accounts'][0]['dn'] == 'uid=ev\\nil,dc=example'",
                "d['accounts'][0]['actions'][0]['error'].startswith('bad\\r\\n')",
                "d['accounts'][0]['actions'][0]['error'].endswith('</script>')",
        };
        json_check(doc, checks, OB_ELEMENTSOF(checks));
        free(doc);
        ob_state_free(s);
}

Test(status, a_report_that_cannot_be_written_is_eio)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        park(s, "id-1", 1, "disable-mail");
        FILE *f = fopen("/dev/full", "w");
        cr_assert_not_null(f);
        bool needs = false;
        cr_assert_eq(ob_status_report(s, &config, NULL, false, f, &needs), -EIO);
        fclose(f);
        ob_state_free(s);
}

Test(status, a_version_1_store_opened_read_only_is_reported_as_it_is)
{
        const char *p = path_in("state.db");
        struct ob_state *s = open_store(p, false);
        put_locking(s, "id-1", "alice");
        intent(s, "id-1", 1, "disable-mail");
        outcome(s, "id-1", 1, "disable-mail", OB_OUTCOME_FAILED, 502, NULL);
        ob_state_free(s);
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db,
                                  "DROP VIEW actions_named; DROP VIEW accounts_named; DROP INDEX accounts_username; "
                                  "ALTER TABLE actions DROP COLUMN due; "
                                  "ALTER TABLE actions DROP COLUMN parked; ALTER TABLE actions DROP COLUMN "
                                  "not_before; UPDATE meta SET value = '1' WHERE key = 'version'; "
                                  "PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
        sqlite3_close(db);
        s = open_store(p, true);
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        cr_assert(needs);
        CONTAINS(text, "    disable-mail [mail]: failed, 1 attempt, last HTTP 502\n");
        free(text);
        ob_state_free(s);
}

/* ---- the iterator ---- */

static int count_and_stop_at_second(const struct ob_attention *a, void *ud)
{
        size_t *n = ud;
        cr_assert_not_null(a->id);
        if (++*n == 2)
                return -ECANCELED;
        return 0;
}

Test(status, the_walk_stops_at_the_first_negative_return_and_returns_it)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-1", "alice");
        put_locking(s, "id-2", "bob");
        put_locking(s, "id-3", "carol");
        size_t n = 0;
        cr_assert_eq(ob_state_foreach_attention(s, count_and_stop_at_second, &n), -ECANCELED);
        cr_assert_eq(n, 2);
        ob_state_free(s);
}

/* ---- retry ---- */

/* alice: disable-mail parked, notify-hr waiting, forward-mail done;
 * bob: disable-mail parked, notify-hr failed (no deferral);
 * carol: disable-mail parked in an older generation, nothing in progress now. */
static struct ob_state *retry_fixture(void)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        put_locking(s, "id-a", "alice");
        put_locking(s, "id-b", "bob");
        put(s, "id-c", "carol", "uid=carol,dc=example", OB_STATUS_LOCKED, 0, 0, 1, false);
        park(s, "id-a", 1, "disable-mail");
        intent(s, "id-a", 1, "notify-hr");
        outcome(s, "id-a", 1, "notify-hr", OB_OUTCOME_FAILED, 503, NULL);
        defer(s, "id-a", 1, "notify-hr", FUTURE, false);
        outcome(s, "id-a", 1, "forward-mail", OB_OUTCOME_DONE, 200, NULL);
        defer(s, "id-a", 1, "forward-mail", FUTURE, true); /* done: never released */
        park(s, "id-b", 1, "disable-mail");
        outcome(s, "id-b", 1, "notify-hr", OB_OUTCOME_FAILED, 500, NULL);
        park(s, "id-c", 1, "disable-mail");
        return s;
}

Test(status, retry_of_an_account_by_username_releases_only_that_accounts_held_back_actions)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, "alice", 0);
        cr_assert_str_eq(out, "released 2 actions of 1 account (account alice); the next pass runs them\n");
        free(out);
        assert_held_back(s, "id-a", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-a", 1, "notify-hr", false, 0);
        assert_held_back(s, "id-a", 1, "forward-mail", true, FUTURE);
        assert_held_back(s, "id-b", 1, "disable-mail", true, 0);
        assert_held_back(s, "id-c", 1, "disable-mail", true, 0);
        ob_state_free(s);
}

Test(status, retry_of_an_account_by_id_releases_its_actions)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, "id-b", 0);
        cr_assert_str_eq(out, "released 1 action of 1 account (account id-b); the next pass runs them\n");
        free(out);
        assert_held_back(s, "id-b", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-a", 1, "disable-mail", true, 0);
        ob_state_free(s);
}

Test(status, retry_of_an_action_releases_that_action_for_every_account_in_progress)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, "disable-mail", 0);
        cr_assert_str_eq(out, "released 2 actions of 2 accounts (action disable-mail); the next pass runs them\n");
        free(out);
        assert_held_back(s, "id-a", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-b", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-a", 1, "notify-hr", false, FUTURE);
        assert_held_back(s, "id-c", 1, "disable-mail", true, 0);
        ob_state_free(s);
}

Test(status, retry_of_everything_releases_every_held_back_action_but_not_done_ones_or_settled_accounts)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, NULL, 0);
        cr_assert_str_eq(out, "released 3 actions of 2 accounts; the next pass runs them\n");
        free(out);
        assert_held_back(s, "id-a", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-a", 1, "notify-hr", false, 0);
        assert_held_back(s, "id-b", 1, "disable-mail", false, 0);
        assert_held_back(s, "id-a", 1, "forward-mail", true, FUTURE);
        assert_held_back(s, "id-c", 1, "disable-mail", true, 0);

        /* The report then sees nothing parked; a second retry has nothing to do. */
        bool needs = false;
        char *text = report(s, &config, false, &needs);
        CONTAINS(text, "  actions: 0 parked, 4 failed, 0 waiting, 0 in flight or interrupted, 0 held\n");
        free(text);
        out = retry(s, NULL, 0);
        cr_assert_str_eq(out, "nothing to release: no action of a transition in progress is parked or waiting\n");
        free(out);
        ob_state_free(s);
}

Test(status, retry_of_an_account_with_nothing_held_back_says_so_and_succeeds)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, "carol", 0);
        cr_assert_str_eq(out, "nothing to release for account carol: no action of a transition in progress is "
                              "parked or waiting\n");
        free(out);
        assert_held_back(s, "id-c", 1, "disable-mail", true, 0);
        ob_state_free(s);
}

Test(status, retry_of_a_name_that_is_neither_an_action_nor_an_account_is_enotfound_and_changes_nothing)
{
        struct ob_state *s = retry_fixture();
        char *out = retry(s, "nobody", -OB_ENOTFOUND);
        cr_assert_str_eq(out, "");
        free(out);
        CONTAINS(ob_state_errmsg(s), "nobody");
        assert_held_back(s, "id-a", 1, "disable-mail", true, 0);
        assert_held_back(s, "id-b", 1, "disable-mail", true, 0);
        ob_state_free(s);
}

Test(status, retry_on_a_read_only_store_fails_with_erofs_and_changes_nothing)
{
        struct ob_state *s = retry_fixture();
        ob_state_free(s);
        s = open_store(path_in("state.db"), true);
        char *out = retry(s, NULL, -EROFS);
        cr_assert_str_eq(out, "");
        free(out);
        CONTAINS(ob_state_errmsg(s), "read-only");
        out = retry(s, "alice", -EROFS);
        free(out);
        assert_held_back(s, "id-a", 1, "disable-mail", true, 0);
        ob_state_free(s);

        /* A store that does not exist yet, opened read-only. */
        s = open_store(path_in("missing.db"), true);
        out = retry(s, NULL, -EROFS);
        free(out);
        ob_state_free(s);
        cr_assert_eq(access(path_in("missing.db"), F_OK), -1);
}

Test(status, release_inside_an_open_transaction_is_ebusy_and_leaves_it_open)
{
        struct ob_state *s = retry_fixture();
        cr_assert_eq(ob_state_begin(s), 0);
        size_t n = 99;
        cr_assert_eq(ob_state_release(s, NULL, NULL, &n, NULL), -EBUSY);
        cr_assert_eq(n, 99);
        cr_assert_eq(ob_state_rollback(s), 0);
        cr_assert_eq(ob_state_release(s, NULL, "disable-mail", &n, NULL), 0);
        cr_assert_eq(n, 2);
        ob_state_free(s);
}
