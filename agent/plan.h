/* plan.h: the planner, a pure function
 *
 *     (account, recorded state, configuration, now, transfer target)
 *         -> status, transition, ordered steps with rendered requests
 *
 * `plan`, `reconcile` and `run` all call it, so a dry run cannot disagree with
 * a real one. It does no I/O: what it needs from the directory (the transfer
 * target) or the state store (the record and its action outcomes) is looked
 * up by the caller and passed in.
 *
 * Level-triggered: the plan compares the status the mapping rules derive now
 * with the status last fully applied. A transition in progress (some actions
 * done, others failed or interrupted) continues with the same generation and
 * idempotency keys until every action is done, whatever events were missed.
 */
#ifndef OB_PLAN_H
#define OB_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"
#include "config.h"
#include "connector.h"
#include "state.h"

enum ob_step_state {
        OB_STEP_OWED,    /* must run (again) */
        OB_STEP_DONE,    /* recorded done in this generation */
        OB_STEP_SKIPPED, /* its when: is false */
};

const char *ob_step_state_name(enum ob_step_state s);

struct ob_step {
        const struct ob_action *action;
        enum ob_step_state state;
        int attempts; /* recorded attempts in this generation */
        bool carried; /* done by an earlier transition since the account was last active: not repeated */
        char *last_error;
        /* An owed step's request, rendered by its connector's kind (render),
         * freed with the kind's free_rendered; NULL when not owed. */
        void *rendered;
        char *idempotency_key;
        char *render_error; /* a value could not be placed safely: the step fails without a request */
        /* What the step's intent keeps in the state store, set by a kind's
         * render (ob_state_action_memberships' JSON; restore_groups: the
         * list it puts back, so an attempt cut short by a crash finds it
         * among its own records); NULL: nothing. */
        char *intent_detail;
        char *hold_reason;  /* owed, but it must not run now (no transfer target, a lookup failed): why */
        /* actions.X.modules as they fall for this account, one per module in
         * the configuration's order: its records, NONE where its when: is
         * false. NULL when the action has none, or the step was not planned
         * to run (done, or its when: is false). */
        enum ob_records *modules;
        bool nothing_to_transfer; /* skipped: every module is none for this account */
        int64_t due;        /* a stage (actions.X.grace): not before this (0: none) */
};

struct ob_transfer {
        const char *via;                 /* "manager", "team", "fallback" */
        const struct ob_account *target; /* borrowed; NULL when there is none */
        const char *error;               /* the lookup failed (target NULL): why; never "no target" */
};

/* What a guard says of an account (guard.h reads it; the planner only uses it). */
struct ob_guard_verdict {
        const struct ob_guard *guard; /* borrowed from the configuration */
        char *reason;                 /* why it holds ("owns the team cn=sales,..., which has 3 other members") */
        bool block;                   /* false: a warning (warn: true), nothing held */
};

struct ob_plan_input {
        const struct ob_account *account; /* the entry, or the recorded snapshot when deleted */
        bool deleted;
        const struct ob_record *record;   /* NULL: never recorded */
        /* Recorded for record->generation: the transition in progress, or
         * the last one (what a deactivation already did, when the account
         * has not been active since). */
        const struct ob_action_record *actions;
        size_t nactions;
        struct ob_transfer transfer;
        int64_t now;
        const struct ob_policy_values *policy; /* the pass's policy entries (policy.h), or NULL */
        /* The guards that apply to the account (guard.h): a blocking one holds
         * every step of a transition to a status that cannot log in, except
         * the security ones. */
        const struct ob_guard_verdict *guards;
        size_t nguards;
        /* account.teams and account.teams_led (template.h's list form), read
         * when a template wants them; NULL: none. */
        const char *teams;
        const char *teams_led;
        const char *teams_error; /* the teams could not be read: why (steps that read them are held) */
};

/* A guard's verdict as the plan keeps it, for reports. */
struct ob_plan_guard {
        char *name;
        char *reason;
        bool block;
};

struct ob_account_plan {
        char *id;
        char *dn;
        char *username;
        enum ob_status status;   /* derived now */
        enum ob_status recorded; /* last fully applied, NONE if never */
        const struct ob_rule *rule;
        char *reason;
        const struct ob_transition *transition; /* NULL: nothing to run */
        enum ob_status from;
        int64_t generation;
        bool continuing; /* the transition was started before (same generation) */
        char *transfer_via;
        char *transfer_dn;
        char *transfer_uid;
        size_t nsteps;
        struct ob_step *steps; /* in execution order */
        size_t nguards; /* the guards that apply, blocking or warning */
        struct ob_plan_guard *guards;
        char *blocked; /* "guard NAME: reason" of the first blocking guard when it holds steps, else NULL */
        /* A reactivation: what the deactivation did that no action of this
         * transition puts back (restored_by), security actions aside; NULL-
         * terminated or NULL. */
        char **not_restored;
        bool writeback; /* the entry's status attributes must be (re)written */
        bool deleted;
};

int ob_plan_account(const struct ob_config *c, const struct ob_plan_input *in, struct ob_account_plan **ret);
/* For a kind's render: the first value that cannot be placed safely fails
 * the step (without a request) and says why; later ones are not kept.
 * Returns 0 or -ENOMEM. */
__attribute__((format(printf, 2, 3))) int ob_step_render_error(struct ob_step *s, const char *fmt, ...);
void ob_account_plan_free(struct ob_account_plan *p);

/* A step's modules (s->modules set) as transfer.modules sends them: JSON
 * (an array of {"module", "records": "all" or "matching", "is" or "is_not":
 * {FIELD: VALUE or [VALUE...]}}) or text ("cases: where status is open;
 * ..."). with_none: the modules left with the leaver too ("records":
 * "none", and "when_false": true where the module's when: is false), for
 * reports. Returns 0, -ENOMEM, or -OB_ETEMPLATE (a value is not UTF-8). */
int ob_step_modules_format(const struct ob_step *s, bool json, bool with_none, struct ob_buf *out);
/* One module's choice as text ("all", "where status is open", "none"). */
int ob_step_module_text(const struct ob_step *s, size_t i, struct ob_buf *out);

/* Steps still owed. */
size_t ob_account_plan_owed(const struct ob_account_plan *p);
/* A transition that takes an active (or new) account to a status where it can
 * no longer log in, started now. */
bool ob_account_plan_is_new_deactivation(const struct ob_account_plan *p);
/* What the circuit breaker counts: a recorded account whose status changes
 * now (reactivations, deletions and changes no transition acts on included;
 * a transition already under way was counted when it started), or a new
 * account that owes a deactivation. */
bool ob_account_plan_is_status_change(const struct ob_account_plan *p);
/* Whether guards must be checked: a transition to a status that cannot log
 * in still owes a step that is not a security one. */
bool ob_account_plan_wants_guards(const struct ob_account_plan *p);
/* Whether an owed step's templates read transfer_to.*. */
bool ob_account_plan_wants_transfer(const struct ob_account_plan *p);

/* A template's account.FIELD (or transfer_to.FIELD) of a, as the directory
 * configuration names its attributes: id, dn, uid, mail, name, manager or
 * attr.NAME; NULL when a has none or f is none of these. */
const char *ob_account_field(const struct ob_directory_config *d, const struct ob_account *a, const char *f);

#endif
