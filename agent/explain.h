/* explain.h: `offboard explain ACCOUNT`, one account from every side.
 *
 * The plan of that account, as `plan --account` computes it (status, rule,
 * transition, each action with its request or why it is held, guards, the
 * transfer target, stages, what a reactivation does not restore), even when
 * nothing is owed; the values of every attribute the mapping rules read, as
 * the pass read them; and what the state store records: the status last
 * applied and the actions of every transition, with attempts, results and
 * idempotency keys. It reads and changes nothing but what a plan reads.
 */
#ifndef OB_EXPLAIN_H
#define OB_EXPLAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "account.h"
#include "config.h"
#include "plan.h"
#include "state.h"

struct ob_explain {
        char *id;       /* the account's id, once the pass saw it */
        char **names;   /* the rules' attributes, NULL-terminated */
        char **values;  /* their values as read, "; "-joined, NULL when absent */
        size_t n;
};

/* What the pass saw of the account (its entry and plan). 0 or -ENOMEM. */
int ob_explain_note(struct ob_explain *x, const struct ob_config *c, const struct ob_account *a,
                    const struct ob_account_plan *p);
/* Prints the explanation: report is the pass's report of the account (text,
 * or the JSON document); username names it when the pass did not see it.
 * The state store s may be NULL (none yet). 0 or -EIO. */
int ob_explain_print(FILE *f, bool json, const char *report, const struct ob_explain *x, const char *username,
                     struct ob_state *s);
void ob_explain_clear(struct ob_explain *x);

#endif
