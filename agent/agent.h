/* agent.h: the long-lived agent. main.c opens one for a command; `offboard
 * run` (service.c) keeps one for the life of the service and runs a pass on
 * it again and again (a change event starts one; one account per change is
 * the next step).
 *
 * The agent owns what outlives a pass: the configuration, the state store,
 * and for an acting agent the exclusive lock on the store (one acting
 * offboard per store), the event loop with SIGTERM, SIGINT and SIGHUP, and
 * the audit journal. A pass (ob_agent_pass) owns what it reads and plans and
 * returns an exit code (enum ob_exit).
 */
#ifndef OB_AGENT_H
#define OB_AGENT_H

#include <stdbool.h>

#include "config.h"
#include "journal.h"
#include "loop.h"
#include "reconcile.h"
#include "state.h"

struct run;
struct ob_metrics;

struct ob_agent {
        const struct ob_config *c;
        bool acting;
        struct ob_state *state;
        struct ob_loop *loop;       /* signals (SIGTERM, SIGINT, SIGHUP) on it: acting only */
        struct ob_journal *journal; /* acting only */
        int lock_fd;                /* acting only, else -1 */
        struct run *pass;           /* the pass running, if any: it drains on a signal */
        struct ob_dir *dir;         /* the directory session whole passes share, or NULL */
        int64_t dir_used_ms;        /* when a pass last ended on it (ob_loop_now_ms) */
        int stop_signal;            /* the first SIGTERM/SIGINT, or 0 */
        bool reload;                /* SIGHUP came: `run` reloads its configuration */
        struct ob_metrics *metrics; /* `run`'s counters (metrics.h), borrowed; NULL: none */
};

/* Opens the agent: acting (reconcile) takes the lock on the state store
 * (wait: queue behind the process that holds it, else fail at once), sets up
 * the loop and its signals and opens the journal; a dry run (plan) opens the
 * store read-only and takes nothing. Says on stderr what failed and returns
 * an exit code; *ret is set on OB_EXIT_OK. */
int ob_agent_open(const struct ob_config *c, bool acting, bool wait, struct ob_agent **ret);
void ob_agent_free(struct ob_agent *ag);
/* Whether the process pid is `offboard run` (its second argument is run). */
bool ob_agent_pid_is_service(long pid);
/* Lets the directory session go: the next pass connects again (a reloaded
 * configuration may name another server). */
void ob_agent_drop_dir(struct ob_agent *ag);
/* SIGHUP: logrotate moved the journal away; the agent writes to a new one. */
void ob_agent_reopen_journal(struct ob_agent *ag);

/* One pass over the directory (reconcile.c): o->dry_run must match how the
 * agent was opened. Returns an exit code. */
int ob_agent_pass(struct ob_agent *ag, const struct ob_run_options *o);

#endif
