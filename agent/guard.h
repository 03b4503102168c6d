/* guard.h: the guards that block a deactivation (issue 14, seeds 001, 004).
 *
 * A guard is read from the directory on every pass that wants it (a team the
 * account owns and that has other members, a group it belongs to or is the
 * only member of) or judged on the entry (its role's rank). What a guard
 * says goes to the planner as input: the planner holds every step of the
 * transition except the security ones (session and token revocation are
 * never held), and the report, the write-back and the journal say why.
 *
 * A connector guard (seed 002) asks an application's endpoint whether the
 * account still has open records (guard_http.h).
 *
 * Fail closed: a guard that cannot be checked (its group cannot be read,
 * its endpoint does not answer or answers an error) blocks, and says so.
 * It is never "not guarded".
 */
#ifndef OB_GUARD_H
#define OB_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "account.h"
#include "config.h"
#include "directory.h"
#include "loop.h"
#include "plan.h"

/* A pass's guards: the groups they read, read once per pass, and what the
 * connector guards' endpoints said of the window's accounts. */
struct ob_guards;

/* The connector guards ask on loop (the pass's, which d may share) and stop
 * waiting when *stop (the pass's first signal) is set; both may be NULL
 * when no guard asks an endpoint (ob_guards_ask_endpoints). */
int ob_guards_new(const struct ob_config *c, struct ob_dir *d, struct ob_loop *loop, const int *stop,
                  struct ob_guards **ret);
void ob_guards_free(struct ob_guards *g);

/* Whether some guard asks an endpoint (guards.X.connector, seed 002). */
bool ob_guards_ask_endpoints(const struct ob_config *c);
/* A window's accounts that want guards (ob_account_plan_wants_guards),
 * before they are planned: every connector guard's endpoint is asked about
 * each, all at once on the loop, at most each connector's concurrency in
 * flight (guard_http.h). The answers replace the last window's; an account
 * not asked here is asked when checked. 0 or -ENOMEM; an endpoint that
 * cannot be asked is a blocking verdict, not an error. */
int ob_guards_ask(struct ob_guards *g, const struct ob_account *const *accounts, size_t n);

/* The guards that apply to a (its DN and username as read), into *ret (*n
 * of them, none: NULL and 0). 0 or -ENOMEM; a failed read is a blocking
 * verdict, not an error. */
int ob_guards_check(struct ob_guards *g, const struct ob_account *a, struct ob_guard_verdict **ret, size_t *n);
void ob_guard_verdicts_free(struct ob_guard_verdict *v, size_t n);

/* The role guard's judgement, without the directory (for tests too): 1 if a
 * value of its attribute ranks above the limit (*rank: that value), else 0. */
int ob_guard_role_above(const struct ob_guard *g, const struct ob_account *a, const char **rank);

#endif
