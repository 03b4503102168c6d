/* reconcile.h: one pass over the directory, for `plan` (dry run) and
 * `reconcile` (executed). Both read every account in scope, derive its
 * status, compare it with the state store and ask the planner what is owed;
 * only `reconcile` then runs the owed actions on the event loop, records each
 * intent before and each outcome after its request, and writes the result
 * back onto the entry.
 *
 * Safety: a failed, truncated or too-small search stops the pass before any
 * side effect (exit 3); a plan that would deactivate more accounts than the
 * configured threshold is parked unless forced (exit 4).
 */
#ifndef OB_RECONCILE_H
#define OB_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "report.h"

enum ob_exit {
        OB_EXIT_OK = 0,        /* all done (or nothing owed) */
        OB_EXIT_FAILED = 1,    /* some actions failed or are held; plan --check: something is owed */
        OB_EXIT_CONFIG = 2,    /* bad configuration or usage, unusable state store */
        OB_EXIT_DIRECTORY = 3, /* directory unreachable, search failed or implausible */
        OB_EXIT_SAFETY = 4,    /* circuit breaker: plan parked */
        OB_EXIT_INTERRUPTED = 5, /* SIGTERM/SIGINT: drained; what did not run is still owed */
};

/* What a pass did, for `run` to log and tell systemd (the report has it all). */
struct ob_pass_result {
        int64_t next_change; /* the earliest instant (seconds) a status changes by time alone, or INT64_MAX */
        size_t accounts_read;
        size_t steps_owed;
        size_t steps_done;
        size_t steps_failed;
        size_t steps_held;
        size_t writebacks_failed;
        size_t unreadable;
        bool parked;
        /* A pass over changes: some could not be judged from their entries
         * alone (gone from the search, unreadable): a whole pass decides. */
        bool incomplete;
        /* Status changes this pass let through (not parked), per transition
         * (names borrowed from the configuration); free() counts. */
        size_t status_changes;
        struct ob_report_count *counts;
        size_t ncounts;
};

/* A change a feed heard of: the entry dn, or (dn NULL) the deletion of the
 * account whose id is id. */
struct ob_change {
        const char *dn;
        const char *id;
};

/* What the service's sliding window already let through: the circuit breaker
 * of each pass adds it to its own count, so that a mass change arriving a few
 * accounts at a time is parked as a big one-shot plan is. */
struct ob_breaker_prior {
        size_t status_changes;
        const struct ob_report_count *counts;
        size_t ncounts;
        size_t population; /* passes over changes: the accounts the last whole pass saw */
};

struct ob_run_options {
        bool dry_run;
        bool force;         /* release a plan the circuit breaker would park */
        bool check;         /* plan --check: exit 1 when anything is owed */
        bool summary;       /* --summary: the text report's summary and verdict, no account */
        bool wait;          /* reconcile: queue behind a pass that holds the state store */
        bool adopt;         /* record every account's current status as applied, running nothing */
        const char *account; /* only this username (no deletion sweep) */
        /* explain: the account is planned and reported even when nothing is
         * owed, and what the pass read of it is kept here (explain.h) */
        struct ob_explain *explain;
        /* only these accounts (`run`: what a change feed heard of; distinct
         * ids), no deletion sweep but of the deletions named */
        const struct ob_change *changes;
        size_t nchanges;
        const struct ob_breaker_prior *prior; /* may be NULL */
        enum ob_format format;
        FILE *out;
        int64_t now;        /* plan only ("what if", OFFBOARD_NOW); 0: the real clock */
        struct ob_pass_result *result; /* filled at the end of the pass, if not NULL */
};

/* A pass runs on an agent: ob_agent_pass (agent.h). */

#endif
