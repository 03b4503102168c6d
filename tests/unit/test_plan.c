/* The planner: pure, so every rule is checked on accounts built here. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "http.h"
#include "mapping.h"
#include "plan.h"
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

TestSuite(plan, .init = setup, .fini = teardown);

static struct ob_account *person(const char *uid, ...)
{
        struct ob_account *a = ob_account_new();
        char buf[256];
        snprintf(buf, sizeof(buf), "id-%s", uid);
        a->id = strdup(buf);
        snprintf(buf, sizeof(buf), "uid=%s,ou=people,dc=example,dc=org", uid);
        a->dn = strdup(buf);
        ob_account_add(a, "uid", uid, strlen(uid));
        va_list ap;
        va_start(ap, uid);
        const char *k;
        while ((k = va_arg(ap, const char *))) {
                const char *v = va_arg(ap, const char *);
                ob_account_add(a, k, v, strlen(v));
        }
        va_end(ap);
        return a;
}

static struct ob_account_plan *plan_for(const struct ob_account *a, const struct ob_record *rec,
                                        const struct ob_action_record *acts, size_t nacts,
                                        const struct ob_account *target)
{
        struct ob_plan_input in = {.account = a, .record = rec, .actions = acts, .nactions = nacts, .now = NOW};
        in.transfer.target = target;
        in.transfer.via = target ? "manager" : NULL;
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        return p;
}

/* What the http kind rendered for a step. */
static const struct ob_http_rendered *req(const struct ob_step *s)
{
        cr_assert_not_null(s->rendered, "step %s has no request", s->action->name);
        return s->rendered;
}

static const struct ob_step *step(const struct ob_account_plan *p, const char *name)
{
        for (size_t i = 0; i < p->nsteps; i++)
                if (strcmp(p->steps[i].action->name, name) == 0)
                        return &p->steps[i];
        return NULL;
}

Test(plan, mapping_first_matching_rule_wins)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", "pwdAccountLockedTime", "000001010000Z",
                                      "description", "Left the company", NULL);
        struct ob_status_eval ev;
        ob_mapping_eval(cfg, a, NOW, NULL, &ev);
        cr_assert_eq(ev.status, OB_STATUS_INACTIVE);
        cr_assert_str_eq(ev.rule->name, "inactive");
        cr_assert_str_eq(ev.reason, "Left the company");
        ob_account_free(a);
}

Test(plan, mapping_covers_admin_lock_ppolicy_lock_end_date_and_active)
{
        struct {
                const char *attr, *value;
                enum ob_status want;
                const char *rule;
        } cases[] = {
                {"pwdAccountLockedTime", "000001010000Z", OB_STATUS_LOCKED, "admin-locked"},
                {"pwdAccountLockedTime", "20261101120000Z", OB_STATUS_LOCKED, "ppolicy-locked"},
                {"shadowExpire", "20000", OB_STATUS_ENDED, "ended"},          /* 2024-10-04: passed */
                {"shadowExpire", "30000", OB_STATUS_ACTIVE, NULL},            /* 2052: not yet */
                {"shadowExpire", "0", OB_STATUS_ACTIVE, NULL},                /* never */
                {"shadowExpire", "-1", OB_STATUS_ACTIVE, NULL},               /* never */
                {"employeeType", "locked", OB_STATUS_LOCKED, "status-locked"}, /* case-insensitive */
                {"employeeType", "Active", OB_STATUS_ACTIVE, NULL},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ob_account *a = person("x", cases[i].attr, cases[i].value, NULL);
                struct ob_status_eval ev;
                ob_mapping_eval(cfg, a, NOW, NULL, &ev);
                cr_assert_eq(ev.status, cases[i].want, "%s=%s gave %s", cases[i].attr, cases[i].value,
                             ob_status_name(ev.status));
                if (cases[i].rule)
                        cr_assert_str_eq(ev.rule->name, cases[i].rule);
                else
                        cr_assert_null(ev.rule);
                ob_account_free(a);
        }
}

Test(plan, an_active_account_already_recorded_active_owes_nothing)
{
        struct ob_account *a = person("alice", NULL);
        struct ob_record rec = {.id = "id-alice", .status = OB_STATUS_ACTIVE, .generation = 0};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_null(p->transition);
        cr_assert_eq(p->nsteps, 0);
        cr_assert_not(p->writeback);
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, deactivation_runs_session_revocation_first_then_follows_after_order)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", "description", "Left the company", NULL);
        struct ob_account *t = person("alice", NULL);
        struct ob_record rec = {.id = "id-bob", .status = OB_STATUS_ACTIVE, .generation = 4};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, t);
        cr_assert_str_eq(p->transition->name, "deactivate");
        cr_assert_eq(p->from, OB_STATUS_ACTIVE);
        cr_assert_eq(p->generation, 5);
        cr_assert_eq(p->nsteps, 3);
        cr_assert_str_eq(p->steps[0].action->name, "revoke-sessions");
        cr_assert_str_eq(p->steps[1].action->name, "transfer-records");
        cr_assert_str_eq(p->steps[2].action->name, "free-license");
        const struct ob_step *tr = &p->steps[1];
        cr_assert_str_eq(req(tr)->url, "https://apps.example.org/api/users/bob/transfer?to=alice");
        cr_assert_str_eq(req(tr)->body, "{\"to\":\"alice\",\"via\":\"manager\",\"count\":3}");
        cr_assert_str_eq(req(tr)->content_type, "application/json");
        cr_assert_str_eq(tr->idempotency_key, "offboard-id-bob-deactivate-5-transfer-records");
        cr_assert_str_eq(req(&p->steps[0])->headers[0], "X-Reason: Left the company");
        cr_assert_str_eq(p->transfer_uid, "alice");
        cr_assert(ob_account_plan_is_new_deactivation(p));
        cr_assert(p->writeback);
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(t);
}

Test(plan, a_locked_account_keeps_its_license)
{
        struct ob_account *a = person("carol", "pwdAccountLockedTime", "000001010000Z", NULL);
        struct ob_record rec = {.id = "id-carol", .status = OB_STATUS_ACTIVE};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_str_eq(p->transition->name, "lock");
        cr_assert_eq(p->nsteps, 1);
        cr_assert_null(step(p, "free-license"));
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, an_ended_account_keeps_its_license_the_step_is_skipped)
{
        struct ob_account *a = person("erin", "shadowExpire", "20000", NULL);
        struct ob_record rec = {.id = "id-erin", .status = OB_STATUS_ACTIVE};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_eq(p->status, OB_STATUS_ENDED);
        cr_assert_eq(step(p, "free-license")->state, OB_STEP_SKIPPED);
        cr_assert_eq(step(p, "revoke-sessions")->state, OB_STEP_OWED);
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, hostile_values_are_escaped_for_where_they_land)
{
        struct ob_account *a = person("mal lory/?#%\"\\*()é", "employeeType", "Inactive", "description",
                                      "quote \" backslash \\ newline\nend", NULL);
        struct ob_record rec = {.id = "id-m", .status = OB_STATUS_ACTIVE};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        const struct ob_step *rv = step(p, "revoke-sessions");
        cr_assert_str_eq(req(rv)->url,
                         "https://apps.example.org/api/users/mal%20lory%2F%3F%23%25%22%5C%2A%28%29%C3%A9/sessions/revoke");
        cr_assert_str_eq(req(rv)->body, "{\"reason\":\"quote \\\" backslash \\\\ newline\\nend\"}");
        /* The reason holds a line break: it cannot go into a header, so the step cannot run. */
        cr_assert_not_null(rv->render_error);
        cr_assert(strstr(rv->render_error, "X-Reason"), "%s", rv->render_error);
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_continuing_transition_keeps_its_generation_and_skips_what_is_done)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_record rec = {.id = "id-bob",
                                .status = OB_STATUS_ACTIVE,
                                .generation = 7,
                                .pending_from = OB_STATUS_ACTIVE,
                                .pending_to = OB_STATUS_INACTIVE};
        struct ob_action_record acts[] = {
                {.action = "revoke-sessions", .outcome = OB_OUTCOME_DONE, .attempts = 1},
                {.action = "transfer-records", .outcome = OB_OUTCOME_FAILED, .attempts = 2, .error = "HTTP 500"},
        };
        struct ob_account_plan *p = plan_for(a, &rec, acts, 2, NULL);
        cr_assert(p->continuing);
        cr_assert_eq(p->generation, 7);
        cr_assert_eq(step(p, "revoke-sessions")->state, OB_STEP_DONE);
        cr_assert_eq(step(p, "transfer-records")->state, OB_STEP_OWED);
        cr_assert_eq(step(p, "transfer-records")->attempts, 2);
        cr_assert_str_eq(step(p, "transfer-records")->idempotency_key, "offboard-id-bob-deactivate-7-transfer-records");
        cr_assert_eq(ob_account_plan_owed(p), 2);
        cr_assert_not(ob_account_plan_is_new_deactivation(p), "a continuing transition was already counted");
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_deleted_account_is_deactivated_from_its_snapshot)
{
        struct ob_account *a = person("dan", NULL);
        struct ob_record rec = {.id = "id-dan", .status = OB_STATUS_ACTIVE, .generation = 1};
        struct ob_plan_input in = {.account = a, .deleted = true, .record = &rec, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        cr_assert_eq(p->status, OB_STATUS_DELETED);
        cr_assert_str_eq(p->transition->name, "deactivate");
        cr_assert_eq(step(p, "free-license")->state, OB_STEP_OWED);
        cr_assert_str_eq(req(step(p, "free-license"))->url, "https://apps.example.org/api/licenses/dan");
        cr_assert_not(p->writeback, "a deleted entry cannot be written back");
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, reactivation_runs_the_reactivate_set)
{
        struct ob_account *a = person("grace", NULL);
        struct ob_record rec = {.id = "id-grace", .status = OB_STATUS_LOCKED, .generation = 2};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_str_eq(p->transition->name, "reactivate");
        cr_assert_eq(p->nsteps, 1);
        cr_assert_not(ob_account_plan_is_new_deactivation(p));
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_missing_path_value_fails_the_step_instead_of_hitting_a_collection)
{
        struct ob_account *a = ob_account_new();
        a->id = strdup("id-nouid");
        a->dn = strdup("cn=nouid,dc=example,dc=org");
        ob_account_add(a, "employeeType", "Inactive", 8);
        struct ob_record rec = {.id = "id-nouid", .status = OB_STATUS_ACTIVE};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_not_null(step(p, "free-license")->render_error);
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, the_same_input_gives_the_same_plan)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_record rec = {.id = "id-bob", .status = OB_STATUS_ACTIVE};
        struct ob_account_plan *p1 = plan_for(a, &rec, NULL, 0, NULL);
        struct ob_account_plan *p2 = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_eq(p1->nsteps, p2->nsteps);
        for (size_t i = 0; i < p1->nsteps; i++) {
                cr_assert_str_eq(req(&p1->steps[i])->url, req(&p2->steps[i])->url);
                cr_assert_str_eq(p1->steps[i].idempotency_key, p2->steps[i].idempotency_key);
        }
        ob_account_plan_free(p1);
        ob_account_plan_free(p2);
        ob_account_free(a);
}

Test(plan, a_step_that_needs_a_transfer_target_is_held_when_there_is_none)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_account_plan *p = plan_for(a, NULL, NULL, 0, NULL);
        const struct ob_step *t = step(p, "transfer-records");
        cr_assert_not_null(t);
        cr_assert_eq(t->state, OB_STEP_OWED, "still owed: it runs once a target exists");
        cr_assert_not_null(t->hold_reason, "a transfer to nobody must not be sent");
        cr_assert(strstr(t->hold_reason, "no transfer target"), "%s", t->hold_reason);
        cr_assert_null(step(p, "revoke-sessions")->hold_reason, "revocation never waits for a target");
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_failed_target_lookup_holds_the_step_with_the_error)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_plan_input in = {.account = a, .now = NOW};
        in.transfer.error = "reading the manager uid=alice: directory unreachable";
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        const struct ob_step *t = step(p, "transfer-records");
        cr_assert_not_null(t->hold_reason);
        cr_assert(strstr(t->hold_reason, "transfer target lookup failed: reading the manager"), "%s", t->hold_reason);
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_step_with_a_target_is_not_held)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_account *alice = person("alice", NULL);
        struct ob_account_plan *p = plan_for(a, NULL, NULL, 0, alice);
        cr_assert_null(step(p, "transfer-records")->hold_reason);
        ob_account_plan_free(p);
        ob_account_free(alice);
        ob_account_free(a);
}

Test(plan, every_status_change_of_a_recorded_account_counts_for_the_breaker)
{
        /* A reactivation counts: lost read access looks like one. */
        struct ob_account *a = person("grace", NULL);
        struct ob_record rec = {.id = "id-grace", .status = OB_STATUS_LOCKED, .generation = 1};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_eq(p->status, OB_STATUS_ACTIVE);
        cr_assert(ob_account_plan_is_status_change(p));
        cr_assert_not(ob_account_plan_is_new_deactivation(p));
        ob_account_plan_free(p);
        /* So does a change no transition acts on (ended -> locked). */
        struct ob_account *b = person("carol", "pwdAccountLockedTime", "000001010000Z", NULL);
        rec.status = OB_STATUS_ENDED;
        p = plan_for(b, &rec, NULL, 0, NULL);
        cr_assert_eq(p->status, OB_STATUS_LOCKED);
        cr_assert(ob_account_plan_is_status_change(p));
        ob_account_plan_free(p);
        /* No change: nothing counted. */
        rec.status = OB_STATUS_LOCKED;
        p = plan_for(b, &rec, NULL, 0, NULL);
        cr_assert_not(ob_account_plan_is_status_change(p));
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(b);
}

Test(plan, a_continuing_transition_was_counted_when_it_started)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_record rec = {.id = "id-bob",
                                .status = OB_STATUS_ACTIVE,
                                .generation = 1,
                                .pending_from = OB_STATUS_ACTIVE,
                                .pending_to = OB_STATUS_INACTIVE};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert(p->continuing);
        cr_assert_not(ob_account_plan_is_status_change(p));
        ob_account_plan_free(p);
        ob_account_free(a);
}

Test(plan, a_new_active_account_is_not_a_status_change_but_a_new_leaver_is)
{
        struct ob_account *a = person("newbie", NULL);
        struct ob_account_plan *p = plan_for(a, NULL, NULL, 0, NULL);
        cr_assert_not(ob_account_plan_is_status_change(p));
        ob_account_plan_free(p);
        struct ob_account *b = person("gone", "employeeType", "Inactive", NULL);
        p = plan_for(b, NULL, NULL, 0, NULL);
        cr_assert(ob_account_plan_is_status_change(p));
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(b);
}

/* What the last transition recorded, for planning the next one. */
struct done_case {
        const char *from_attrs[4]; /* attribute, value pairs that give the new status */
        int recorded;
        const char *done[3];    /* actions recorded done in the last generation */
        const char *skipped[3]; /* recorded skipped */
        int status;
        const char *owed[3];    /* expected owed steps */
        const char *carried[3]; /* expected carried (not repeated) */
};

static bool in_list(const char *const *l, size_t n, const char *s)
{
        for (size_t i = 0; i < n && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return true;
        return false;
}

Test(plan, a_move_between_statuses_that_cannot_log_in_owes_only_what_was_not_done)
{
        static const struct done_case cases[] = {
                /* locked (lock revoked sessions) -> inactive, deleted, ended */
                {{"employeeType", "Inactive"}, OB_STATUS_LOCKED, {"revoke-sessions"}, {NULL}, OB_STATUS_INACTIVE,
                 {"transfer-records", "free-license"}, {"revoke-sessions"}},
                {{NULL}, OB_STATUS_LOCKED, {"revoke-sessions"}, {NULL}, OB_STATUS_DELETED,
                 {"transfer-records", "free-license"}, {"revoke-sessions"}},
                {{"shadowExpire", "1"}, OB_STATUS_LOCKED, {"revoke-sessions"}, {NULL}, OB_STATUS_ENDED,
                 {"transfer-records"}, {"revoke-sessions"}},
                /* ended kept its license: deleted or inactive now frees it, nothing else */
                {{NULL}, OB_STATUS_ENDED, {"revoke-sessions", "transfer-records"}, {"free-license"}, OB_STATUS_DELETED,
                 {"free-license"}, {"revoke-sessions", "transfer-records"}},
                {{"employeeType", "Inactive"}, OB_STATUS_ENDED, {"revoke-sessions", "transfer-records"},
                 {"free-license"}, OB_STATUS_INACTIVE, {"free-license"}, {"revoke-sessions", "transfer-records"}},
                /* inactive did everything: deleted and ended owe nothing */
                {{NULL}, OB_STATUS_INACTIVE, {"revoke-sessions", "transfer-records", "free-license"}, {NULL},
                 OB_STATUS_DELETED, {NULL}, {"revoke-sessions", "transfer-records", "free-license"}},
                {{"shadowExpire", "1"}, OB_STATUS_INACTIVE, {"revoke-sessions", "transfer-records", "free-license"},
                 {NULL}, OB_STATUS_ENDED, {NULL}, {"revoke-sessions", "transfer-records", "free-license"}},
                /* inactive -> locked: revocation was done */
                {{"pwdAccountLockedTime", "000001010000Z"}, OB_STATUS_INACTIVE,
                 {"revoke-sessions", "transfer-records", "free-license"}, {NULL}, OB_STATUS_LOCKED, {NULL},
                 {"revoke-sessions"}},
        };
        struct ob_account *trent = person("trent", NULL);
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                const struct done_case *dc = &cases[c];
                struct ob_account *a = person("bob", dc->from_attrs[0], dc->from_attrs[1], NULL);
                struct ob_action_record acts[6];
                size_t n = 0;
                for (size_t i = 0; i < 3 && dc->done[i]; i++)
                        acts[n++] = (struct ob_action_record){.action = (char *)dc->done[i], .outcome = OB_OUTCOME_DONE};
                for (size_t i = 0; i < 3 && dc->skipped[i]; i++)
                        acts[n++] = (struct ob_action_record){.action = (char *)dc->skipped[i],
                                                              .outcome = OB_OUTCOME_SKIPPED};
                struct ob_record rec = {.id = "id-bob", .status = dc->recorded, .generation = 1};
                struct ob_plan_input in = {.account = a,
                                           .record = &rec,
                                           .actions = acts,
                                           .nactions = n,
                                           .deleted = dc->status == OB_STATUS_DELETED,
                                           .now = NOW};
                in.transfer.target = trent;
                in.transfer.via = "fallback";
                struct ob_account_plan *p = NULL;
                cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
                cr_assert_eq(p->status, (enum ob_status)dc->status, "case %zu: status %s", c,
                             ob_status_name(p->status));
                cr_assert_not_null(p->transition, "case %zu", c);
                cr_assert_eq(p->generation, 2, "case %zu: a new transition", c);
                for (size_t i = 0; i < p->nsteps; i++) {
                        const struct ob_step *s = &p->steps[i];
                        const char *name = s->action->name;
                        if (s->state == OB_STEP_OWED)
                                cr_assert(in_list(dc->owed, 3, name), "case %zu: %s is owed again", c, name);
                        else if (s->carried)
                                cr_assert(in_list(dc->carried, 3, name), "case %zu: %s carried", c, name);
                        else
                                cr_assert_eq(s->state, OB_STEP_SKIPPED, "case %zu: %s", c, name);
                }
                for (size_t i = 0; i < 3 && dc->owed[i]; i++)
                        cr_assert_eq(step(p, dc->owed[i])->state, OB_STEP_OWED, "case %zu: %s must be owed", c,
                                     dc->owed[i]);
                for (size_t i = 0; i < 3 && dc->carried[i]; i++)
                        cr_assert(step(p, dc->carried[i]) == NULL || step(p, dc->carried[i])->carried,
                                  "case %zu: %s must not run again", c, dc->carried[i]);
                ob_account_plan_free(p);
                ob_account_free(a);
        }
        ob_account_free(trent);
}

Test(plan, a_deactivation_after_a_reactivation_does_everything_again)
{
        struct ob_account *a = person("bob", "employeeType", "Inactive", NULL);
        struct ob_account *trent = person("trent", NULL);
        struct ob_action_record acts[] = {{.action = "reactivate", .outcome = OB_OUTCOME_DONE}};
        struct ob_record rec = {.id = "id-bob", .status = OB_STATUS_ACTIVE, .generation = 2};
        struct ob_plan_input in = {.account = a, .record = &rec, .actions = acts, .nactions = 1, .now = NOW};
        in.transfer.target = trent;
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        cr_assert_eq(ob_account_plan_owed(p), 3);
        ob_account_plan_free(p);
        ob_account_free(trent);
        ob_account_free(a);
}

Test(plan, a_failed_write_back_is_owed_until_it_lands)
{
        struct ob_account *a = person("carol", "pwdAccountLockedTime", "000001010000Z", "offboardStatus", "locked",
                                      NULL);
        struct ob_record rec = {.id = "id-carol", .status = OB_STATUS_LOCKED, .generation = 1, .writeback_owed = true};
        struct ob_account_plan *p = plan_for(a, &rec, NULL, 0, NULL);
        cr_assert_null(p->transition);
        cr_assert(p->writeback, "the record says the last write-back did not land");
        ob_account_plan_free(p);
        /* Attributes changed in the configuration: the entry has none. */
        struct ob_account *b = person("carol", "pwdAccountLockedTime", "000001010000Z", NULL);
        rec.writeback_owed = false;
        p = plan_for(b, &rec, NULL, 0, NULL);
        cr_assert(p->writeback, "a locked account without its status attribute is backfilled");
        ob_account_plan_free(p);
        /* An active account without history is left alone. */
        struct ob_account *c = person("alice", NULL);
        struct ob_record arec = {.id = "id-alice", .status = OB_STATUS_ACTIVE};
        p = plan_for(c, &arec, NULL, 0, NULL);
        cr_assert_not(p->writeback);
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(b);
        ob_account_free(c);
}

/* ---- actions.X.modules (seed 000's transfer screen) ------------------------- */

static struct ob_config *modules_config(void)
{
        char path[] = "/tmp/ob-test-modules-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs("directory: {uri: 'ldaps://127.0.0.1', base: 'ou=people,dc=example,dc=org'}\n"
              "mappings: [openldap]\n"
              "connectors:\n  apps: {type: http, base_url: 'https://apps.example.org/api'}\n"
              "actions:\n"
              "  transfer-records:\n"
              "    connector: apps\n"
              "    method: POST\n"
              "    url: /users/{{ account.uid }}/transfer\n"
              "    json: {to: '{{ transfer_to.uid }}', modules: '{{ transfer.modules }}', note: 'm: "
              "{{ transfer.modules }}'}\n"
              "    modules:\n"
              "      opportunities: {records: all, when: {attribute: l, equals: Paris}}\n"
              "      tasks: none\n"
              "      cases: {is: {status: open, owner: ['a\"b', 'c\\d']}, when: {attribute: l, equals: Paris}}\n"
              "      contacts: {is_not: {region: EMEA}, when: {attribute: l, equals: Paris}}\n"
              "      quotes: {records: all, when: {status: deleted}}\n"
              "transitions:\n  deactivate: {to: [inactive, deleted], actions: [transfer-records]}\n",
              f);
        fclose(f);
        struct ob_config *c = NULL;
        struct ob_config_error err;
        int r = ob_config_load(path, &c, &err);
        unlink(path);
        cr_assert_eq(r, 0, "%s", err.message);
        return c;
}

Test(plan, transfer_modules_send_each_module_as_configured_and_all_none_sends_nothing)
{
        struct ob_config *saved = cfg;
        cfg = modules_config();
        struct ob_account *target = person("alice", NULL);

        /* In Paris: all, none, is and is_not; quotes only for a deleted account. */
        struct ob_account *bob = person("bob", "employeeType", "Inactive", "l", "Paris", NULL);
        struct ob_account_plan *p = plan_for(bob, NULL, NULL, 0, target);
        const struct ob_step *s = step(p, "transfer-records");
        cr_assert_eq(s->state, OB_STEP_OWED);
        cr_assert_not(s->nothing_to_transfer);
        cr_assert_str_eq(req(s)->body,
                         "{\"to\":\"alice\",\"modules\":["
                         "{\"module\":\"opportunities\",\"records\":\"all\"},"
                         "{\"module\":\"cases\",\"records\":\"matching\",\"is\":{\"status\":\"open\","
                         "\"owner\":[\"a\\\"b\",\"c\\\\d\"]}},"
                         "{\"module\":\"contacts\",\"records\":\"matching\",\"is_not\":{\"region\":\"EMEA\"}}],"
                         "\"note\":\"m: opportunities: all; cases: where status is open and owner is a\\\"b or "
                         "c\\\\d; contacts: except where region is EMEA\"}");
        /* Reports see every module, those left with the leaver too. */
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_step_modules_format(s, true, true, &b), 0);
        cr_assert(strstr(b.data, "{\"module\":\"tasks\",\"records\":\"none\"},"), "%s", b.data);
        cr_assert(strstr(b.data, "{\"module\":\"quotes\",\"records\":\"none\",\"when_false\":true}]"), "%s", b.data);
        ob_buf_free(&b);
        ob_account_plan_free(p);

        /* Elsewhere, inactive: every module is none, nothing is sent, and
         * no missing target holds what is not owed. */
        struct ob_account *carol = person("carol", "employeeType", "Inactive", "l", "Oslo", NULL);
        p = plan_for(carol, NULL, NULL, 0, NULL);
        s = step(p, "transfer-records");
        cr_assert_eq(s->state, OB_STEP_SKIPPED);
        cr_assert(s->nothing_to_transfer);
        cr_assert_null(s->rendered);
        cr_assert_null(s->hold_reason);
        cr_assert_eq(ob_account_plan_owed(p), 0);
        cr_assert_not(ob_account_plan_wants_transfer(p));
        ob_account_plan_free(p);

        /* Deleted: quotes' when: holds, so quotes alone go. */
        struct ob_plan_input in = {.account = carol, .deleted = true, .now = NOW};
        in.transfer.target = target;
        in.transfer.via = "manager";
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        s = step(p, "transfer-records");
        cr_assert_eq(s->state, OB_STEP_OWED);
        cr_assert(strstr(req(s)->body, "\"modules\":[{\"module\":\"quotes\",\"records\":\"all\"}],"), "%s",
                  req(s)->body);
        ob_account_plan_free(p);

        ob_account_free(carol);
        ob_account_free(bob);
        ob_account_free(target);
        ob_config_free(cfg);
        cfg = saved;
}
