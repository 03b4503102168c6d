/* pass.h: the state of one pass, shared by reconcile.c (read, checks, plan,
 * record, report), execute.c (the actions on the event loop, retries, group
 * commit, the drain, the write-backs) and agent.c (which forwards its
 * signals to the pass running). What outlives a pass is in the agent
 * (agent.h); a pass borrows its state store, loop and journal.
 */
#ifndef OB_PASS_H
#define OB_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"
#include "config.h"
#include "directory.h"
#include "journal.h"
#include "loop.h"
#include "plan.h"
#include "reconcile.h"
#include "report.h"
#include "state.h"

#define OB_PUTS_PER_TXN 1000
/* Accounts whose actions run at once: a full queue is back-pressure (the
 * next account waits for one to finish), never a failed request. */
#define OB_EXEC_WINDOW 256
/* Accounts planned, carried out, written back, recorded and reported
 * together, then let go: memory follows this window, never the directory or
 * everything owed. Between the read and their window, accounts that owe
 * something wait in a spill file (struct cand_ref). */
#define OB_PASS_WINDOW 2048
/* A directory session idle this long is opened again rather than reused. */
#define OB_DIR_IDLE_MS (60 * 1000)
#define OB_UNREADABLE_LISTED 200 /* unreadable entries named in the report; all are logged */
#define OB_ATTR_META_PREFIX "attribute-presence:"

struct attr_stat {
        char *name;
        size_t present; /* entries (readable ones) holding at least one value */
};

/* An account that owes something (or whose status changed), from the read
 * to its window: its entry (or, when deleted, its snapshot) is in the spill
 * file at off; its record is read again from the store. */
struct cand_ref {
        uint64_t off;
        uint32_t len;
        bool deleted;
        bool have_record;
};

/* An account of the window being worked on. */
struct cand {
        struct ob_account *account;
        bool deleted;
        bool have_record;
        struct ob_record rec;
        struct ob_action_record *acts;
        size_t nacts;
        struct ob_account_plan *plan; /* planned without a transfer target (prefetch), or NULL */
};

struct ob_agent;

struct run {
        struct ob_agent *ag; /* the agent the pass runs on */
        const struct ob_config *c;
        const struct ob_run_options *o;
        struct ob_state *state;
        struct ob_index *ix;
        struct ob_dir *dir; /* the agent's session (whole passes), else the pass's own */
        bool dir_failed;    /* the pass ended on a directory problem: do not keep the session */
        int64_t now;
        struct ob_policy_values *policy; /* read after the directory opened (policy.h) */
        struct ob_guards *guards;        /* the guards' reads of this pass (guard.h), made when first wanted */
        int deleted_recorded; /* whether the store holds deleted accounts: 0 not asked yet, 1 no, 2 yes */
        const char *skip[6]; /* attributes left out of the digest: our own write-back */
        struct cand_ref *refs; /* every candidate, in the order read */
        size_t nrefs, refs_cap;
        int spill_fd;           /* unlinked temporary file holding their entries */
        int spill_err;          /* why writing it failed (an errno), or 0 */
        uint64_t spill_size;    /* bytes written to it (buffered ones included) */
        struct ob_buf spill_buf;
        struct cand *cands; /* the window: cands[i] goes with the window's items[i] */
        size_t ncands;
        size_t window; /* accounts per window: OB_PASS_WINDOW, or $OFFBOARD_PASS_WINDOW */
        size_t txn_puts;
        bool txn_open;
        struct ob_report_summary sum;
        struct ob_progress progress; /* a line on a terminal during a long pass (report.h) */
        /* What the pass could not read. */
        struct ob_dir_search_info info;
        bool read_done; /* the search of the accounts ended, with read_result */
        size_t changes_in_flight; /* a pass over changes: reads of their entries not answered yet */
        bool incomplete;          /* ob_pass_result.incomplete */
        bool acting;              /* past the circuit breaker, carrying out what is owed */
        int64_t next_change; /* ob_pass_result.next_change, over the entries read */
        int read_result;
        struct ob_report_unreadable *unreadable; /* the first OB_UNREADABLE_LISTED, for the report */
        size_t nunreadable;
        char **unreadable_dns; /* every unreadable entry's DN, lower-cased, sorted after the read */
        size_t nunreadable_dns;
        size_t spared_unreadable, spared_referral;
        /* Presence of each attribute the mapping rules read. */
        struct attr_stat *astats;
        size_t nastats;
        /* Status changes per transition, for the circuit breaker. */
        struct ob_report_count *counts;
        size_t ncounts;
        /* An acting pass: the agent's loop (which owns SIGTERM and SIGINT)
         * and journal, its executor, and how it was asked to stop. */
        struct ob_loop *loop;
        struct exec *x;
        struct ob_journal *journal; /* the audit journal (acting passes) */
        int signo;     /* the first SIGTERM/SIGINT: drain */
        bool stop_now; /* a second one: abandon what is in flight */
        /* Transfer targets already read in this pass, by lower-cased DN (open
         * addressing): ten thousand leavers with a hundred managers cost a
         * hundred reads, and the managers are read many at once. */
        struct target_memo *memo;
        size_t nmemo, memo_cap;
        /* The next window's managers, read while this one's actions run. */
        char **la_dns;
        size_t la_n, la_next, la_inflight;
};

struct target_memo {
        char *dn;                  /* lower-cased */
        int result;                /* read_active's */
        struct ob_account *target; /* when result is 1 */
        char *why;                 /* when result < 0 */
};


struct exec;

/* Runs every owed step of items[0..n) (one window) on the pass's loop,
 * OB_EXEC_WINDOW accounts at a time, recording intents and outcomes in group commits.
 * Returns 0, or the error that made it stop acting (the state store or the
 * journal failed). */
int ob_execute_run(struct run *r, struct ob_report_item *items, size_t n);
/* The executor of an acting pass, kept from one window to the next (its
 * connections, which connectors are paused): open before the first window,
 * close after the last. */
int ob_execute_open(struct run *r);
void ob_execute_close(struct run *r);
/* Writes back what items owe, up to 16 modifies in flight. */
void ob_execute_write_backs(struct run *r, struct ob_report_item *items, size_t n);
/* SIGTERM/SIGINT: drain, then stop at once (the agent forwards them); poll
 * delivers those, and SIGHUP, that came while the loop was not running. */
void ob_execute_on_signal(struct ob_loop *l, int signo, void *ud);
void ob_execute_poll_signals(struct run *r);
const char *ob_execute_signal_name(int signo);

#endif
