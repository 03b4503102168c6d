/* The text report: what an operator reads on a terminal. Values from the
 * directory and from downstream answers are hostile: none may drive the
 * terminal. Plans are made by the real planner from tests/fixtures/plan.yaml. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "config.h"
#include "escape.h"
#include "plan.h"
#include "report.h"
#include "state.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */

static struct ob_config *cfg;

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        struct ob_config_error err;
        int r = ob_config_load(OB_SOURCE_DIR "/tests/fixtures/plan.yaml", &cfg, &err);
        cr_assert_eq(r, 0, "%s", err.message);
}

static void teardown(void)
{
        ob_config_free(cfg);
}

TestSuite(report, .init = setup, .fini = teardown);

/* An account with uid and, pairwise, more attributes (NULL-terminated);
 * dn NULL: uid=UID,ou=people,dc=example,dc=org. */
static struct ob_account *person(const char *uid, const char *dn, ...)
{
        struct ob_account *a = ob_account_new();
        char buf[1024];
        snprintf(buf, sizeof(buf), "id-%s", uid);
        a->id = strdup(buf);
        snprintf(buf, sizeof(buf), "uid=%s,ou=people,dc=example,dc=org", uid);
        a->dn = strdup(dn ? dn : buf);
        ob_account_add(a, "uid", uid, strlen(uid));
        va_list ap;
        va_start(ap, dn);
        const char *k;
        while ((k = va_arg(ap, const char *))) {
                const char *v = va_arg(ap, const char *);
                ob_account_add(a, k, v, strlen(v));
        }
        va_end(ap);
        return a;
}

static struct ob_account_plan *plan_for(const struct ob_account *a, const struct ob_account *target)
{
        struct ob_plan_input in = {.account = a, .now = NOW};
        in.transfer.target = target;
        in.transfer.via = target ? "manager" : NULL;
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        return p;
}

/* The text report of items[0..n), as one string. */
static char *text_of(const struct ob_report_item *items, size_t n, const struct ob_report_summary *s)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_not_null(f);
        ob_report_text(f, cfg, items, n, s);
        fclose(f);
        return text;
}

/* What a terminal must never be sent: a control character other than the
 * newline, DEL, a C1 control, a bidi override or isolate, or bytes that are
 * not UTF-8. Returns the offending offset, or -1. */
static long first_unsafe(const char *s)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t n = strlen(s);
        for (size_t i = 0; i < n;) {
                size_t k = ob_utf8_sequence(u + i, n - i);
                if (k == 0)
                        return (long)i;
                if (k == 1 && ((u[i] < 0x20 && u[i] != '\n') || u[i] == 0x7f))
                        return (long)i;
                if (k == 2 && u[i] == 0xc2 && u[i + 1] <= 0x9f)
                        return (long)i;
                if (k == 3 && u[i] == 0xe2 && u[i + 1] == 0x80 && u[i + 2] >= 0xaa && u[i + 2] <= 0xae)
                        return (long)i;
                if (k == 3 && u[i] == 0xe2 && u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)
                        return (long)i;
                i += k;
        }
        return -1;
}

/* A window title, a screen clear, a carriage return and a forged line. */
#define HOSTILE "\x1b]0;pwned\x07\x1b[2J\r\nplan: 0 accounts read"

Test(report, a_hostile_uid_cn_reason_and_error_body_never_reach_the_terminal)
{
        struct ob_account *a = person("ev\x1b]0;title\x07il\x1b[2J\r\nmallory  forged", "cn=x\x1b[2J" HOSTILE
                                      ",ou=people,dc=example,dc=org",
                                      "employeeType", "Inactive", "description", "Left\r\n" HOSTILE, NULL);
        struct ob_account *t = person("alice", NULL, NULL);
        struct ob_account_plan *p = plan_for(a, t);
        cr_assert_geq(p->nsteps, 1);
        struct ob_step_result *res = calloc(p->nsteps, sizeof(*res));
        for (size_t i = 0; i < p->nsteps; i++)
                res[i] = (struct ob_step_result){.outcome = OB_OUTCOME_FAILED,
                                                 .http_status = 500,
                                                 .error = "HTTP 500: " HOSTILE "\xc2\x9b" "31m\xe2\x80\xae" "txt\xff"};
        struct ob_report_summary sum = {.now = NOW, .accounts_read = 2, .steps_owed = p->nsteps,
                                        .steps_failed = p->nsteps};
        for (int reconciled = 0; reconciled <= 1; reconciled++) {
                struct ob_report_item it = {.plan = p, .results = reconciled ? res : NULL, .writeback_result = 1};
                sum.dry_run = !reconciled;
                char *out = text_of(&it, 1, &sum);
                long bad = first_unsafe(out);
                cr_assert_eq(bad, -1, "an unescaped byte at %ld: %s", bad, out + (bad < 0 ? 0 : bad));
                cr_assert_null(strstr(out, "\nplan: 0 accounts read"), "a forged report line:\n%s", out);
                cr_assert_null(strstr(out, "\nmallory  forged"), "a forged report line:\n%s", out);
                cr_assert(strstr(out, "ev\\x1b]0;title\\x07il\\x1b[2J\\x0d\\x0amallory  forged"), "%s", out);
                cr_assert(strstr(out, "cn=x\\x1b[2J\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0aplan: 0 accounts read"), "%s",
                          out);
                cr_assert(strstr(out, "reason: Left\\x0d\\x0a\\x1b]0;pwned"), "%s", out);
                if (reconciled)
                        cr_assert(strstr(out, "error: HTTP 500: \\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0aplan: 0 accounts "
                                              "read\\x9b31m\\u202Etxt\\xff\n"),
                                  "%s", out);
                free(out);
        }
        free(res);
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(t);
}

Test(report, a_long_cjk_uid_is_printed_whole_and_as_it_is)
{
        char uid[541];
        for (size_t i = 0; i < 180; i++)
                memcpy(uid + 3 * i, "\xe6\xbc\xa2", 3); /* U+6F22 */
        uid[540] = '\0';
        struct ob_account *a = person(uid, NULL, "employeeType", "Inactive", NULL);
        struct ob_account_plan *p = plan_for(a, NULL);
        struct ob_report_item it = {.plan = p, .writeback_result = 1};
        struct ob_report_summary sum = {.dry_run = true, .now = NOW, .accounts_read = 1};
        char *out = text_of(&it, 1, &sum);
        cr_assert_eq(first_unsafe(out), -1, "%s", out);
        char line[1200];
        snprintf(line, sizeof(line), "%s  uid=%s,ou=people,dc=example,dc=org\n", uid, uid);
        const char *at = strstr(out, line);
        cr_assert(at && (at == out || at[-1] == '\n'), "the uid is cut or escaped:\n%s", out);
        free(out);
        ob_account_plan_free(p);
        ob_account_free(a);
}

/* What ob_report_printf wrote to f, which is closed. */
static char *written(FILE *f, char **text)
{
        fclose(f);
        return *text;
}

Test(report, a_kinds_request_lines_are_escaped_by_ob_report_printf)
{
        /* A header or a body rendered from the directory, as a kind's
         * describe_text prints it. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ob_report_printf(f, "       %s %s\n", "X-Reason:", "a\x1b]0;t\x07\r\n\x9b\xc2\x9b\xe2\x81\xa6\x7f");
        char *out = written(f, &text);
        cr_assert_str_eq(out, "       X-Reason: a\\x1b]0;t\\x07\\x0d\\x0a\\x9b\\x9b\\u2066\\x7f\n");
        free(out);
        f = open_memstream(&text, &len);
        ob_report_printf(f, "%s|%s\n", "\xe4\xb8\xad\xe6\x96\x87 ok", "back\\slash");
        out = written(f, &text);
        cr_assert_str_eq(out, "\xe4\xb8\xad\xe6\x96\x87 ok|back\\\\slash\n", "valid UTF-8 is printed as is");
        free(out);
}

Test(report, ob_report_printf_pads_escaped_values_and_numbers_by_columns)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ob_report_printf(f, "[%-6s][%4s][%-4zu][%3d][%lld][%x][%c]", "\xc3\xa9t\xc3\xa9", "\x1b", (size_t)7, -5,
                         (long long)-1234567890123LL, 255u, '\x07');
        /* Not understood: shown as written, and no argument is read. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
        ob_report_printf(f, "[%q][%s]", "next");
#pragma GCC diagnostic pop
        fclose(f);
        cr_assert_str_eq(text, "[\xc3\xa9t\xc3\xa9   ][\\x1b][7   ][ -5][-1234567890123][ff][\\x07][%q][next]");
        free(text);
}

/* ---- order: the summary and the verdict first, then the groups ----------- */

struct pass {
        struct ob_account *accounts[8];
        struct ob_account_plan *plans[8];
        struct ob_report_item items[8];
        size_t n;
        struct ob_account *target;
        struct ob_report_summary sum;
};

/* Plans for a pass in directory order, not sorted: zed and bob leave
 * (deactivate), carol is locked out (lock), amy has no one to take her
 * records (held), eve's reason cannot go in a header (failed). */
static void pass_make(struct pass *ps)
{
        *ps = (struct pass){.target = person("alice", NULL, NULL)};
        struct {
                const char *uid;
                const char *k1, *v1, *k2, *v2;
                bool target;
        } who[] = {
                {"zed", "employeeType", "Inactive", NULL, NULL, true},
                {"carol", "pwdAccountLockedTime", "000001010000Z", NULL, NULL, true},
                {"eve", "employeeType", "Inactive", "description", "gone\r\nX-Admin: yes", true},
                {"bob", "employeeType", "Inactive", NULL, NULL, true},
                {"amy", "employeeType", "Inactive", NULL, NULL, false},
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(who); i++) {
                struct ob_account *a = who[i].k2 ? person(who[i].uid, NULL, who[i].k1, who[i].v1, who[i].k2,
                                                          who[i].v2, NULL)
                                                 : person(who[i].uid, NULL, who[i].k1, who[i].v1, NULL);
                ps->accounts[ps->n] = a;
                ps->plans[ps->n] = plan_for(a, who[i].target ? ps->target : NULL);
                ps->items[ps->n] = (struct ob_report_item){.plan = ps->plans[ps->n], .writeback_result = 1};
                ps->sum.steps_owed += ob_account_plan_owed(ps->plans[ps->n]);
                ps->n++;
        }
        ps->sum.dry_run = true;
        ps->sum.now = NOW;
        ps->sum.accounts_read = 7;
        ps->sum.accounts_new = 7;
        ps->sum.status_changes = 5;
        static const struct ob_report_count counts[] = {{"deactivate", 4}, {"lock", 1}};
        ps->sum.per_transition = counts;
        ps->sum.nper_transition = 2;
}

static void pass_free(struct pass *ps)
{
        for (size_t i = 0; i < ps->n; i++) {
                ob_account_plan_free(ps->plans[i]);
                ob_account_free(ps->accounts[i]);
        }
        ob_account_free(ps->target);
}

/* Where needle starts a line of s, or NULL. */
static const char *line_at(const char *s, const char *needle)
{
        for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
                if (p == s || p[-1] == '\n')
                        return p;
        return NULL;
}

static int count_lines(const char *s, const char *needle)
{
        int n = 0;
        for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
                n += p == s || p[-1] == '\n';
        return n;
}

/* Asserts that the lines (each starting a line of out) come in this order. */
static void in_order(const char *out, const char *const *lines, size_t n)
{
        const char *prev = NULL;
        for (size_t i = 0; i < n; i++) {
                const char *at = line_at(out, lines[i]);
                cr_assert_not_null(at, "no line starts with '%s':\n%s", lines[i], out);
                cr_assert(!prev || at > prev, "'%s' is not after '%s':\n%s", lines[i], i ? lines[i - 1] : "", out);
                prev = at;
        }
}

Test(report, the_summary_and_the_verdict_come_first_then_the_accounts_grouped_and_sorted)
{
        struct pass ps;
        pass_make(&ps);
        char *out = text_of(ps.items, ps.n, &ps.sum);
        const char *head = "plan: 7 accounts read (7 new), 0 recorded before, 0 deleted; 5 accounts owe actions, 13 "
                           "actions would run.\n"
                           "Safety: not parked; 5 accounts change status (deactivate 4, lock 1).\n"
                           "Accounts: failed 1, held 1, deactivate 2, lock 1.\n"
                           "Rules: admin-locked 1, inactive 4.\n"
                           "Actions: free-license: 4 would run; revoke-sessions: 4 would run, 1 would fail; "
                           "transfer-records: 3 would run, 1 held.\n"
                           "\n"
                           "== failed: 1 account ==\n"
                           "\n"
                           "eve  uid=eve,";
        cr_assert_eq(strncmp(out, head, strlen(head)), 0, "expected:\n%s\ngot:\n%s", head, out);
        const char *order[] = {
                "== failed: 1 account ==", "eve  uid=eve,",  "== held: 1 account ==", "amy  uid=amy,",
                "== deactivate: 2 accounts ==", "bob  uid=bob,", "zed  uid=zed,", "== lock: 1 account ==",
                "carol  uid=carol,",
        };
        in_order(out, order, OB_ELEMENTSOF(order));
        cr_assert_eq(count_lines(out, "  1. revoke-sessions "), 5, "each account once:\n%s", out);
        free(out);
        pass_free(&ps);
}

Test(report, summary_only_prints_the_summary_and_the_verdict_and_no_account)
{
        struct pass ps;
        pass_make(&ps);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        struct ob_report_writer w;
        ob_report_start(&w, f, false, cfg, &ps.sum);
        w.summary_only = true;
        for (size_t i = 0; i < ps.n; i++)
                ob_report_add(&w, &ps.items[i], &ps.sum);
        ob_report_finish(&w, &ps.sum);
        fclose(f);
        cr_assert_eq(w.n, ps.n, "every account is counted");
        cr_assert(line_at(text, "plan: 7 accounts read"), "%s", text);
        cr_assert(line_at(text, "Safety: not parked;"), "%s", text);
        cr_assert(line_at(text, "Accounts: failed 1, held 1, deactivate 2, lock 1.\n"), "%s", text);
        cr_assert(line_at(text, "Actions: free-license: 4 would run;"), "%s", text);
        cr_assert_null(strstr(text, "uid="), "an account in a summary:\n%s", text);
        cr_assert_null(strstr(text, "=="), "a group in a summary:\n%s", text);
        free(text);
        pass_free(&ps);
}

Test(report, a_parked_plan_says_so_on_its_second_line)
{
        struct pass ps;
        pass_make(&ps);
        ps.sum.parked = true;
        snprintf(ps.sum.parked_reason, sizeof(ps.sum.parked_reason),
                 "SAFETY: 5 of 7 accounts would change status (reactivations included), above the threshold.");
        char *out = text_of(ps.items, ps.n, &ps.sum);
        const char *nl = strchr(out, '\n');
        cr_assert(nl && strncmp(nl + 1, "SAFETY: 5 of 7 accounts", 23) == 0, "%s", out);
        cr_assert_null(strstr(out, "Safety: not parked"), "%s", out);
        free(out);
        pass_free(&ps);
}

Test(report, after_a_reconcile_an_account_with_a_failed_action_is_listed_under_failed_with_the_counts)
{
        struct pass ps;
        pass_make(&ps);
        /* carol (lock) and bob (deactivate) only: bob's first request fails,
         * which holds the two that run after it. */
        struct ob_report_item items[2] = {ps.items[1], ps.items[3]};
        struct ob_step_result carol[1] = {{.outcome = OB_OUTCOME_DONE, .http_status = 204}};
        struct ob_step_result bob[3] = {{.outcome = OB_OUTCOME_FAILED, .http_status = 503, .error = "Unavailable"},
                                        {.outcome = OB_OUTCOME_NONE},
                                        {.outcome = OB_OUTCOME_NONE}};
        cr_assert_eq(items[0].plan->nsteps, 1);
        cr_assert_eq(items[1].plan->nsteps, 3);
        items[0].results = carol;
        items[0].writeback_result = 0;
        items[1].results = bob;
        struct ob_report_summary sum = {.now = NOW, .accounts_read = 2, .steps_owed = 4, .steps_done = 1,
                                        .steps_failed = 1, .steps_held = 2};
        char *out = text_of(items, 2, &sum);
        cr_assert(line_at(out, "reconcile: 2 accounts read (0 new), 0 recorded before, 0 deleted; 2 accounts owe "
                               "actions; actions: 1 done, 1 failed, 2 held.\n"),
                  "%s", out);
        cr_assert(line_at(out, "Safety: not parked; no account changes status.\n"), "%s", out);
        cr_assert(line_at(out, "Accounts: failed 1, lock 1.\n"), "%s", out);
        cr_assert(line_at(out, "Actions: free-license: 1 held; revoke-sessions: 1 done, 1 failed; transfer-records: "
                               "1 held.\n"),
                  "%s", out);
        const char *order[] = {"== failed: 1 account ==", "bob  uid=bob,", "       error: Unavailable",
                               "== lock: 1 account ==", "carol  uid=carol,"};
        in_order(out, order, OB_ELEMENTSOF(order));
        free(out);
        pass_free(&ps);
}

Test(report, one_account_and_one_action_are_singular)
{
        struct pass ps;
        pass_make(&ps);
        struct ob_report_summary sum = {.dry_run = true, .now = NOW, .accounts_read = 1, .steps_owed = 1,
                                        .status_changes = 1};
        static const struct ob_report_count lock[] = {{"lock", 1}};
        sum.per_transition = lock;
        sum.nper_transition = 1;
        char *out = text_of(&ps.items[1], 1, &sum);
        cr_assert(line_at(out, "plan: 1 account read (0 new), 0 recorded before, 0 deleted; 1 account owes actions, 1 "
                               "action would run.\n"
                               "Safety: not parked; 1 account changes status (lock 1).\n"),
                  "%s", out);
        cr_assert_null(strstr(out, "1 accounts"), "%s", out);
        cr_assert_null(strstr(out, "1 actions"), "%s", out);
        free(out);
        pass_free(&ps);
}

/* ---- progress on a terminal ---------------------------------------------- */

Test(report, progress_shows_nothing_when_stderr_is_not_a_terminal)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        struct ob_progress p;
        ob_progress_init(&p, f, false, "plan", 1000);
        for (int64_t t = 1000; t < 1000 + 60 * 1000; t += 100)
                ob_progress_note(&p, t, "reading", (size_t)t, 0);
        ob_progress_clear(&p);
        fclose(f);
        cr_assert_eq(len, 0, "%s", text);
        free(text);
}

Test(report, progress_waits_for_a_long_pass_then_rewrites_one_line_and_clears_it)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        struct ob_progress p;
        ob_progress_init(&p, f, true, "reconcile", 50000);
        /* A short pass: nothing, not even when it ends. */
        ob_progress_note(&p, 50000 + OB_PROGRESS_AFTER_MS - 1, "reading", 10, 0);
        fflush(f);
        cr_assert_eq(len, 0, "a short pass drew: %s", text);
        ob_progress_note(&p, 50000 + OB_PROGRESS_AFTER_MS, "reading", 12, 0);
        /* Not again before OB_PROGRESS_EVERY_MS. */
        ob_progress_note(&p, 50000 + OB_PROGRESS_AFTER_MS + 1, "reading", 13, 0);
        ob_progress_note(&p, 50000 + OB_PROGRESS_AFTER_MS + OB_PROGRESS_EVERY_MS, "carrying out", 4, 9);
        ob_progress_clear(&p);
        ob_progress_clear(&p);
        fclose(f);
        cr_assert_str_eq(text, "\roffboard reconcile: reading: 12 accounts (3 s)\x1b[K\r"
                               "\roffboard reconcile: carrying out: 4 of 9 accounts (3 s)\x1b[K\r"
                               "\r\x1b[K");
        cr_assert_null(strchr(text, '\n'), "the progress line never scrolls the terminal");
        free(text);
}
