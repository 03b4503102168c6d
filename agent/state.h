/* state.h: the embedded state store (SQLite, one file, WAL, synchronous=FULL).
 *
 * It records, per account, the last status whose side effects were all carried
 * out, the transition in progress, and per action of that transition its
 * progress: an intent is written (and synced) before a request leaves, the
 * outcome after it returns. A snapshot of the account's attributes is kept so a
 * deleted account can still be rendered into requests.
 *
 * A store opened read-only never writes, never creates the file, and treats a
 * missing file as an empty store (a first `offboard plan`). A file that is not
 * a offboard store, is truncated or is corrupt gives -OB_ESTATE and a message
 * naming the file and what to do; it is never silently replaced.
 */
#ifndef OB_STATE_H
#define OB_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"

struct ob_state;

int ob_state_open(const char *path, bool readonly, struct ob_state **ret);

/* One acting pass per store: an exclusive lock on "<path>.lock" (an open file
 * description lock, released when the returned descriptor is closed or the
 * process dies, even by SIGKILL). The file holds the holder's pid. With wait,
 * blocks until the lock is free; else -EBUSY and *ret_holder (0 if unknown).
 * Other failures: -errno. `plan` never takes it. */
int ob_state_lock(const char *path, bool wait, int *ret_fd, long *ret_holder);
/* Whether an acting offboard holds path's lock, without taking it: 1 (and
 * its pid, as it wrote it), 0, or -errno. */
int ob_state_lock_holder(const char *path, long *ret_pid);
void ob_state_free(struct ob_state *s);
/* The last error message (names the file), for main.c to print. */
const char *ob_state_errmsg(const struct ob_state *s);
/* Set by ob_state_open on failure when no store could be returned. */
const char *ob_state_open_errmsg(void);

/* One account's record. Strings are owned by the record. */
struct ob_record {
        char *id;
        char *dn;
        char *username;
        int status;           /* enum ob_status last fully applied; 0: never recorded */
        int64_t status_since; /* when it was recorded */
        uint64_t digest;      /* ob_account_digest of the last snapshot */
        int64_t generation;   /* increases with every transition started */
        int pending_from;     /* transition in progress: from/to statuses, 0 if none */
        int pending_to;
        bool writeback_owed;  /* outcome not yet written onto the entry */
};

void ob_record_clear(struct ob_record *r);

/* Compact in-memory index of every record for one pass: O(accounts) small
 * entries, used to compare each entry read with what is recorded without a
 * query per entry, and to find recorded accounts that were not seen. */
struct ob_index;
struct ob_index_entry {
        uint64_t digest;
        uint32_t id_at; /* where the id is kept: ob_index_id */
        uint8_t status;
        bool pending;
        bool writeback_owed;
        bool seen;
};

/* The longest id an index keeps packed (a UUID), written out. */
#define OB_INDEX_ID_PACKED_LEN 36

int ob_state_load_index(struct ob_state *s, struct ob_index **ret);
/* The index of the records of ids[0..n) only (distinct; those that exist):
 * a pass over the few accounts a change feed named. */
int ob_state_load_index_ids(struct ob_state *s, const char *const *ids, size_t n, struct ob_index **ret);
void ob_index_free(struct ob_index *ix);
struct ob_index_entry *ob_index_find(struct ob_index *ix, const char *id);
size_t ob_index_size(const struct ob_index *ix);
/* e's id: in the index itself, or written out in buf for a packed UUID. */
const char *ob_index_id(const struct ob_index *ix, const struct ob_index_entry *e,
                        char buf[OB_INDEX_ID_PACKED_LEN + 1]);
/* Calls fn for every entry with seen == false, in id order, with its id. */
int ob_index_foreach_unseen(struct ob_index *ix, int (*fn)(struct ob_index_entry *e, const char *id, void *ud),
                            void *ud);

/* Small named values kept with the store (for example what the last complete
 * pass read of each attribute the rules use). get sets *ret to NULL when the
 * key is absent (or the read-only store does not exist yet); put writes in
 * the current transaction, or on its own. Keys starting with "format" and
 * "version" belong to the store itself. */
int ob_state_meta_get(struct ob_state *s, const char *key, char **ret);
int ob_state_meta_put(struct ob_state *s, const char *key, const char *value);

/* -OB_ENOTFOUND when there is no record. */
int ob_state_get(struct ob_state *s, const char *id, struct ob_record *ret);
/* The attribute snapshot recorded with the account (id and dn set). */
int ob_state_get_snapshot(struct ob_state *s, const char *id, struct ob_account **ret);

/* Transactions group many puts (one per page), and the intents and outcomes
 * of one loop turn (group commit); outside a transaction each intent and
 * outcome is committed on its own, immediately. */
int ob_state_begin(struct ob_state *s);
int ob_state_commit(struct ob_state *s);
int ob_state_rollback(struct ob_state *s);

/* Insert or replace the record; snapshot may be NULL to keep the old one. */
int ob_state_put(struct ob_state *s, const struct ob_record *r, const struct ob_account *snapshot);

enum ob_outcome {
        OB_OUTCOME_NONE = 0,
        OB_OUTCOME_INTENT,  /* started, outcome unknown (crash or in flight) */
        OB_OUTCOME_DONE,
        OB_OUTCOME_FAILED,
        OB_OUTCOME_SKIPPED, /* its condition was false */
        OB_OUTCOME_BLOCKED,
        _OB_OUTCOME_MAX,
};

const char *ob_outcome_name(enum ob_outcome o);

struct ob_action_record {
        char *action;
        int outcome;
        int attempts;
        long http_status;
        char *error; /* bounded excerpt, may be NULL */
        char *idempotency_key;
        int64_t updated;
        int64_t not_before; /* not to be tried before (seconds since 1970; 0: any time) */
        bool parked;        /* failed for good (attempts or age): waits for `offboard retry` */
        int64_t due;        /* a stage (actions.X.grace): not before this, whatever happens (0: none) */
        /* The memberships the step removed (remove_from_groups) or is to put
         * back (restore_groups), as JSON: {"memberships": [[group DN,
         * attribute, value], ...], "cut": N}, N the number not kept (beyond
         * the store's cap); NULL when the step recorded none. A step
         * recorded done by a later transition without doing it again
         * (carried) shows those of its last record. */
        char *detail;
};

void ob_action_record_clear(struct ob_action_record *a);

/* Every action recorded for (id, generation), ordered by action name. */
int ob_state_actions(struct ob_state *s, const char *id, int64_t generation, struct ob_action_record **ret,
                     size_t *ret_n);
void ob_action_records_free(struct ob_action_record *a, size_t n);

/* Records the intent (attempts + 1, outcome INTENT); durable when it returns,
 * or, inside a transaction, when ob_state_commit() returns. */
int ob_state_action_intent(struct ob_state *s, const char *id, int64_t generation, const char *action,
                           const char *idempotency_key, int64_t now);
/* When the action may be tried again (Retry-After or backoff: the next pass
 * holds it until then) and whether it is parked as failed. A new intent
 * clears not_before. */
int ob_state_action_defer(struct ob_state *s, const char *id, int64_t generation, const char *action,
                          int64_t not_before, bool parked);
/* Records when a stage is due (actions.X.grace): the first time recorded
 * for (id, generation, action) stays. 0 or a negative code. */
int ob_state_action_due(struct ob_state *s, const char *id, int64_t generation, const char *action, int64_t due,
                        int64_t now);

/* Whether some account is recorded with status, or on its way to it: 1, 0,
 * or a negative code. */
int ob_state_has_status(struct ob_state *s, int status);
/* The id of the account recorded with username (without ASCII case; the
 * latest status change first): 1 and *ret_id (free it), 0, or a negative
 * code. */
int ob_state_id_of(struct ob_state *s, const char *username, char **ret_id);
/* A recorded account other than id, with deleted_status (or on its way to
 * it), that had username (compared without ASCII case): 1 and its id in
 * *ret_id (free it), 0, or a negative code. */
int ob_state_deleted_username(struct ob_state *s, const char *username, const char *id, int deleted_status,
                              char **ret_id);

/* Records the outcome (durable as intents are). error may be NULL. */
int ob_state_action_outcome(struct ob_state *s, const char *id, int64_t generation, const char *action,
                            enum ob_outcome outcome, long http_status, const char *error, int64_t now);

/* The longest detail an outcome takes (bytes); a longer one is -EINVAL. */
#define OB_STATE_DETAIL_MAX 65536
/* ob_state_action_outcome with the memberships the attempt removed or is
 * to put back (detail: the JSON of ob_action_record.detail, or NULL). They
 * are added to those of the step's earlier attempts in this generation, 256
 * at most per step (each field at most 1 KiB): the rest are counted in
 * "cut" (the most any attempt left out: at least that many are missing). A
 * detail that is not JSON fails (-OB_ESTATE). Without a detail, a step
 * recorded done with no status (carried: done by the transition before)
 * stands for what its record in the generation before stood for. */
int ob_state_action_outcome_detail(struct ob_state *s, const char *id, int64_t generation, const char *action,
                                   enum ob_outcome outcome, long http_status, const char *error, const char *detail,
                                   int64_t now);
/* Adds detail's memberships (as ob_state_action_outcome_detail does) to
 * those recorded for (id, generation, action), whose record must exist (an
 * intent was recorded): a step keeps them before its request leaves. */
int ob_state_action_memberships(struct ob_state *s, const char *id, int64_t generation, const char *action,
                                const char *detail);

/* ---- what needs a human: `offboard status` and `offboard retry` ---- */

/* One account that needs attention: a transition in progress (pending_to !=
 * 0) or a write-back owed. Everything is borrowed from the store and valid
 * only during the callback. */
struct ob_attention {
        const char *id;
        const char *username; /* may be NULL */
        const char *dn;       /* may be NULL */
        int status;           /* enum ob_status last fully applied */
        int pending_from;     /* transition in progress, 0 if none */
        int pending_to;
        int64_t generation;
        bool writeback_owed;
        const struct ob_action_record *actions; /* of this generation, by action name */
        size_t nactions;
};

/* Calls fn for every account that needs attention, in id order, one at a
 * time (one account's records in memory at once), all within one read
 * snapshot. Stops at the first negative return of fn and returns it. A
 * read-only store, and one whose file does not exist yet (nothing to
 * report), work. */
int ob_state_foreach_attention(struct ob_state *s, int (*fn)(const struct ob_attention *a, void *ud), void *ud);

/* Releases the actions held back for a human or a timer: in one transaction,
 * clears parked and not_before on the actions of transitions in progress
 * (their current generation) that are not done (outcome neither DONE nor
 * SKIPPED) and are parked or deferred, so the next pass runs them.
 * account: a username or an id, NULL for every account; action: an action
 * name, NULL for every action. *ret_n is the number of actions released,
 * *ret_accounts (may be NULL) the number of accounts they belong to.
 * -OB_ENOTFOUND (and a message) when account names no recorded account or
 * action no action ever recorded; -EROFS on a read-only store; -EBUSY inside
 * an open transaction. */
int ob_state_release(struct ob_state *s, const char *account, const char *action, size_t *ret_n,
                     size_t *ret_accounts);

#endif
