/* reconcile.c: one pass: read, fail-closed checks, plan, circuit breaker,
 * then execute.c carries out what is owed, then record and report. See
 * reconcile.h and pass.h. All side effects pass through here, in this order:
 *   1. the transition is recorded as pending (generation, from, to);
 *   2. each action's intent is recorded, then its request leaves;
 *   3. its outcome is recorded when the answer comes;
 *   4. when every action is done, the status is recorded as applied;
 *   5. the status and outcomes are written back onto the entry.
 * A crash between any two steps leaves a record from which the next pass
 * plans exactly what is still owed, with the same idempotency keys.
 */
#define _GNU_SOURCE
#include "reconcile.h"

#include "agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cond.h"
#include "escape.h"
#include "explain.h"
#include "guard.h"
#include "log.h"
#include "loop.h"
#include "mapping.h"
#include "pass.h"
#include "plan.h"
#include "policy.h"
#include "snapshot.h"
#include "template.h"
#include "util.h"

/* DNs and attribute names compare case-insensitively: keys are lower-cased. */
static char *lower_dup(const char *s)
{
        char *low = strdup(s);
        for (char *c = low; c && *c; c++)
                *c = (char)tolower((unsigned char)*c);
        return low;
}

static void cand_clear(struct cand *c)
{
        ob_account_plan_free(c->plan);
        ob_account_free(c->account);
        ob_record_clear(&c->rec);
        ob_action_records_free(c->acts, c->nacts);
}

/* ---- state writes during the read ------------------------------------------ */

static int txn_put(struct run *r, const struct ob_record *rec, const struct ob_account *snapshot)
{
        int k;
        if (!r->txn_open) {
                if ((k = ob_state_begin(r->state)) < 0)
                        return k;
                r->txn_open = true;
        }
        if ((k = ob_state_put(r->state, rec, snapshot)) < 0)
                return k;
        if (++r->txn_puts >= OB_PUTS_PER_TXN) {
                r->txn_puts = 0;
                r->txn_open = false;
                return ob_state_commit(r->state);
        }
        return 0;
}

static int txn_flush(struct run *r)
{
        if (!r->txn_open)
                return 0;
        r->txn_open = false;
        r->txn_puts = 0;
        return ob_state_commit(r->state);
}

/* Points rec's identity at the account (borrowed) and refreshes its digest. */
static void record_from(struct run *r, const struct ob_account *a, struct ob_record *rec)
{
        const struct ob_directory_config *d = &r->c->directory;
        rec->id = a->id;
        rec->dn = a->dn;
        rec->username = (char *)ob_account_get(a, d->username_attribute);
        rec->digest = ob_account_digest(a, r->skip);
}

/* Records what was read, keeping rec's status and progress; rec itself (and
 * the strings it owns) is left as it was. */
static int put_seen(struct run *r, const struct ob_record *rec, const struct ob_account *a)
{
        struct ob_record tmp = *rec;
        record_from(r, a, &tmp);
        return txn_put(r, &tmp, a);
}

/* Whether the entry does not show the status it should: a different value,
 * or none at all on an account that is not active (a write-back that failed,
 * or write-back attributes changed in the configuration). */
static bool writeback_mismatch(const struct run *r, const struct ob_account *a, enum ob_status s)
{
        if (!r->c->writeback.enabled)
                return false;
        const char *w = ob_account_get(a, r->c->writeback.status_attribute);
        return w ? strcmp(w, ob_status_name(s)) != 0 : s != OB_STATUS_ACTIVE;
}

/* Seed 000: a username a deleted account had, on a new entry, is a new
 * account (it gets nothing of the old one's, no reactivation): said aloud,
 * since the person behind it may not be the same. */
static int note_reused_username(struct run *r, const struct ob_account *a)
{
        const char *u = ob_account_get(a, r->c->directory.username_attribute);
        if (!u)
                return 0;
        if (r->deleted_recorded == 0) {
                int k = ob_state_has_status(r->state, OB_STATUS_DELETED);
                if (k < 0)
                        return k;
                r->deleted_recorded = k ? 2 : 1;
        }
        if (r->deleted_recorded == 1)
                return 0;
        char *old = NULL;
        int k = ob_state_deleted_username(r->state, u, a->id, OB_STATUS_DELETED, &old);
        if (k <= 0)
                return k;
        r->sum.usernames_reused++;
        ob_log(OB_LOG_WARNING,
               "event=username_reused username=%s id=%s dn=%s deleted_id=%s note=\"a new account, not the deleted "
               "one: it gets none of its records or reactivation\"",
               ob_log_quote(u), ob_log_quote(a->id), ob_log_quote(a->dn), ob_log_quote(old));
        free(old);
        return 0;
}

/* ---- candidates, from the read to their window ----------------------------- */

static int count_change(struct run *r, const struct ob_account_plan *p);

#define OB_SPILL_FLUSH (1u << 20)

/* The spill file: unlinked, readable by this user alone, next to the state
 * store when its directory allows, else in TMPDIR. */
static int spill_open(struct run *r)
{
        char *copy = strdup(r->c->state_path);
        if (!copy)
                return -ENOMEM;
        int fd = open(dirname(copy), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        free(copy);
        if (fd < 0) {
                FILE *f = tmpfile();
                if (!f)
                        return -errno;
                fd = dup(fileno(f));
                fclose(f);
                if (fd < 0)
                        return -errno;
        }
        r->spill_fd = fd;
        return 0;
}

static int spill_flush(struct run *r)
{
        const char *p = r->spill_buf.data;
        size_t n = r->spill_buf.len;
        uint64_t at = r->spill_size - n;
        while (n > 0) {
                ssize_t w = pwrite(r->spill_fd, p, n, (off_t)at);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                p += w;
                n -= (size_t)w;
                at += (uint64_t)w;
        }
        ob_buf_reset(&r->spill_buf);
        return 0;
}

static int spill_add(struct run *r, const struct ob_account *a, struct cand_ref *ref)
{
        int k;
        if (r->spill_fd < 0 && (k = spill_open(r)) < 0)
                return k;
        size_t before = r->spill_buf.len;
        if ((k = ob_snapshot_encode(a, &r->spill_buf)) < 0)
                return k;
        ref->off = r->spill_size;
        ref->len = (uint32_t)(r->spill_buf.len - before);
        r->spill_size += ref->len;
        if (r->spill_buf.len >= OB_SPILL_FLUSH)
                return spill_flush(r);
        return 0;
}

static int spill_read(struct run *r, const struct cand_ref *ref, struct ob_account **ret)
{
        char *blob = malloc(ref->len ? ref->len : 1);
        if (!blob)
                return -ENOMEM;
        size_t got = 0;
        while (got < ref->len) {
                ssize_t n = pread(r->spill_fd, blob + got, ref->len - got, (off_t)(ref->off + got));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? -errno : -EIO;
                        free(blob);
                        return e;
                }
                got += (size_t)n;
        }
        int k = ob_snapshot_decode(blob, ref->len, ret);
        free(blob);
        return k;
}

/* The actions of the last generation: to continue it, or, from a status that
 * is not active, to know what an earlier deactivation already did. */
static int cand_actions(struct run *r, struct cand *c)
{
        const struct ob_record *rec = &c->rec;
        if (c->have_record && (rec->pending_to || (rec->status != OB_STATUS_ACTIVE && rec->status != OB_STATUS_NONE &&
                                                   rec->generation > 0)))
                return ob_state_actions(r->state, rec->id, rec->generation, &c->acts, &c->nacts);
        return 0;
}

/* Keeps an account that owes something (or changes status) for its window;
 * unless the caller planned it and counted its status change already
 * (counted), plans it here and counts the change for the circuit breaker. */
static int add_cand(struct run *r, const struct ob_account *a, bool deleted, const struct ob_record *rec,
                    bool counted)
{
        if (r->nrefs == r->refs_cap) {
                size_t cap = r->refs_cap ? r->refs_cap * 2 : 256;
                struct cand_ref *n = realloc(r->refs, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->refs = n;
                r->refs_cap = cap;
        }
        struct cand_ref *ref = &r->refs[r->nrefs];
        *ref = (struct cand_ref){.deleted = deleted, .have_record = rec != NULL};
        int k = spill_add(r, a, ref);
        if (k < 0) {
                if (k != -ENOMEM && k != -OB_ELIMIT)
                        r->spill_err = k;
                return k;
        }
        r->nrefs++;
        if (!counted) {
                struct cand c = {.deleted = deleted, .have_record = rec != NULL};
                if (rec)
                        c.rec = *rec; /* borrowed */
                if ((k = cand_actions(r, &c)) < 0)
                        return k;
                struct ob_plan_input in = {.account = a,
                                           .deleted = deleted,
                                           .record = rec,
                                           .actions = c.acts,
                                           .nactions = c.nacts,
                                           .now = r->now,
                                           .policy = r->policy};
                struct ob_account_plan *p = NULL;
                k = ob_plan_account(r->c, &in, &p);
                ob_action_records_free(c.acts, c.nacts);
                if (k < 0)
                        return k;
                if (ob_account_plan_is_status_change(p))
                        k = count_change(r, p);
                ob_account_plan_free(p);
        }
        return k;
}

/* Reads the window's candidates back: entry, record, last actions. */
static int cands_load(struct run *r, size_t first, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct cand_ref *ref = &r->refs[first + i];
                struct cand *c = &r->cands[i];
                *c = (struct cand){.deleted = ref->deleted, .have_record = ref->have_record};
                r->ncands = i + 1;
                int k = spill_read(r, ref, &c->account);
                if (k == 0 && c->have_record && (k = ob_state_get(r->state, c->account->id, &c->rec)) == -OB_ENOTFOUND)
                        k = -OB_ESTATE; /* it was there at the read */
                if (k == 0)
                        k = cand_actions(r, c);
                if (k < 0)
                        return k;
        }
        return 0;
}

static void cands_clear(struct run *r)
{
        for (size_t i = 0; i < r->ncands; i++)
                cand_clear(&r->cands[i]);
        r->ncands = 0;
}

/* An entry that cannot be judged: neither active nor gone. It is held (no
 * status recorded, no action), spared by the deletion sweep (by id when its
 * id was read, else by DN) and reported. */
static int note_unreadable(struct run *r, const struct ob_account *a, const char *missing)
{
        char *why = NULL;
        if (missing) {
                if (asprintf(&why, "the required attribute %s cannot be read (access rights or schema?)", missing) <
                    0)
                        return -ENOMEM;
        } else if (!(why = strdup(a->unreadable))) {
                return -ENOMEM;
        }
        r->sum.unreadable++;
        if (missing)
                ob_log(OB_LOG_WARNING, "event=account_unreadable dn=%s reason=%s", ob_log_quote(a->dn),
                       ob_log_quote(why));
        struct ob_index_entry *e = a->id ? ob_index_find(r->ix, a->id) : NULL;
        if (e && !e->seen) {
                e->seen = true;
                r->spared_unreadable++;
        }
        int k = 0;
        if (!a->id) {
                /* NULL-terminated: ob_strv_free releases it. */
                char *dn = lower_dup(a->dn ? a->dn : "");
                char **v = dn ? realloc(r->unreadable_dns, (r->nunreadable_dns + 2) * sizeof(char *)) : NULL;
                if (!v) {
                        free(dn);
                        k = -ENOMEM;
                } else {
                        r->unreadable_dns = v;
                        v[r->nunreadable_dns++] = dn;
                        v[r->nunreadable_dns] = NULL;
                }
        }
        if (k == 0 && r->nunreadable < OB_UNREADABLE_LISTED) {
                struct ob_report_unreadable *v = realloc(r->unreadable, (r->nunreadable + 1) * sizeof(*v));
                char *dn = strdup(a->dn ? a->dn : "");
                if (!v || !dn) {
                        free(dn);
                        if (v)
                                r->unreadable = v;
                        k = -ENOMEM;
                } else {
                        r->unreadable = v;
                        v[r->nunreadable++] = (struct ob_report_unreadable){.dn = dn, .reason = TAKE_PTR(why)};
                }
        }
        free(why);
        return k;
}

static int cmp_str(const void *x, const void *y)
{
        return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Why a recorded account that was not seen is not gone: its entry was
 * unreadable (matched by DN), or it lies under a subtree another server
 * holds. NULL: it really is gone. */
static const char *sweep_spares(struct run *r, const char *dn)
{
        if (!dn)
                return r->info.references ? "a referral was met and the account's DN is not recorded" : NULL;
        if (r->nunreadable_dns) {
                char *low = lower_dup(dn);
                if (!low)
                        return "out of memory";
                bool hit = bsearch(&low, r->unreadable_dns, r->nunreadable_dns, sizeof(char *), cmp_str) != NULL;
                free(low);
                if (hit)
                        return "its entry could not be read";
        }
        for (size_t i = 0; r->info.references && r->info.references[i]; i++)
                if (!r->info.references[i][0] || ob_dn_in_subtree(dn, r->info.references[i]) != 0)
                        return "it lies under a referral to another server";
        return NULL;
}

/* Whether a pass over changes names the account with id. */
static bool change_named(const struct ob_run_options *o, const char *id)
{
        for (size_t i = 0; id && i < o->nchanges; i++)
                if (o->changes[i].id && strcasecmp(o->changes[i].id, id) == 0)
                        return true;
        return false;
}

static int on_entry(const struct ob_account *a, void *ud)
{
        struct run *r = ud;
        const struct ob_config *c = r->c;
        r->sum.accounts_read++;
        if (r->progress.f)
                ob_progress_note(&r->progress, ob_loop_now_ms(), "reading", r->sum.accounts_read, 0);
        if (r->signo)
                return -EINTR; /* heard on the loop; nothing has been done yet: stop reading */
        if (r->o->changes && !change_named(r->o, a->id)) {
                /* Not the account the feed named (another id attribute?):
                 * without its record it would look new. A whole pass decides. */
                r->incomplete = true;
                return 0;
        }
        const char *missing = NULL;
        for (size_t i = 0; !a->unreadable && !missing && c->required_attributes && c->required_attributes[i]; i++)
                if (!ob_account_get(a, c->required_attributes[i]))
                        missing = c->required_attributes[i];
        if (a->unreadable || missing)
                return note_unreadable(r, a, missing);
        for (size_t i = 0; i < r->nastats; i++)
                r->astats[i].present += ob_account_get(a, r->astats[i].name) != NULL;
        struct ob_status_eval ev;
        ob_mapping_eval(c, a, r->now, r->policy, &ev);
        if (r->o->result) {
                /* For `run`: when an end date or a lockout changes a status
                 * next, with nobody touching the entry. */
                int64_t n = ob_mapping_next_change(c, a, r->now, r->policy);
                if (n < r->next_change)
                        r->next_change = n;
        }
        struct ob_index_entry *e = ob_index_find(r->ix, a->id);
        if (e) {
                if (e->seen) {
                        ob_log(OB_LOG_WARNING, "event=duplicate_id id=%s dn=%s", ob_log_quote(a->id),
                               ob_log_quote(a->dn));
                        return 0;
                }
                e->seen = true;
        }
        bool mismatch = writeback_mismatch(r, a, ev.status);
        bool keep = r->o->explain != NULL; /* explain plans the account whatever it owes */
        if (e && !e->pending && !e->writeback_owed && e->status == (int)ev.status && !mismatch && !keep) {
                /* Nothing owed. Keep the snapshot fresh for a later deletion. */
                if (r->o->dry_run || e->digest == ob_account_digest(a, r->skip))
                        return 0;
                struct ob_record rec = {0};
                int k = ob_state_get(r->state, a->id, &rec);
                if (k < 0)
                        return k;
                k = put_seen(r, &rec, a);
                ob_record_clear(&rec);
                return k;
        }
        if (!e) {
                int k = note_reused_username(r, a);
                if (k < 0)
                        return k;
        }
        if (!e && ev.status == OB_STATUS_ACTIVE && !mismatch && !keep) {
                /* First sighting of an active account: nothing to do but remember it. */
                r->sum.accounts_new++;
                if (r->o->dry_run)
                        return 0;
                struct ob_record rec = {.status = OB_STATUS_ACTIVE, .status_since = r->now};
                return put_seen(r, &rec, a);
        }
        if (!e)
                r->sum.accounts_new++;
        struct ob_record rec = {0};
        if (e) {
                int k = ob_state_get(r->state, a->id, &rec);
                if (k < 0)
                        return k;
        }
        /* A status change that no transition acts on (and that needs no
         * write-back) is only recorded: only accounts that owe something
         * are kept for after the read, so memory follows the work owed. */
        bool counted = false; /* planned here, and its status change counted */
        if (!e || !e->pending) {
                struct ob_plan_input in = {.account = a, .record = e ? &rec : NULL, .now = r->now, .policy = r->policy};
                struct ob_account_plan *p = NULL;
                int k = ob_plan_account(c, &in, &p);
                if (k < 0) {
                        ob_record_clear(&rec);
                        return k;
                }
                /* A status change of a recorded account waits for the
                 * circuit breaker even when no transition acts on it: lost
                 * read access must not quietly record everyone as active. */
                bool idle = !p->transition && !p->writeback && (!e || p->status == (enum ob_status)rec.status);
                enum ob_status st = p->status;
                /* The transition does not depend on the last actions: count
                 * the change with this plan. */
                if (!idle && ob_account_plan_is_status_change(p) && (k = count_change(r, p)) < 0) {
                        ob_account_plan_free(p);
                        ob_record_clear(&rec);
                        return k;
                }
                counted = true;
                ob_account_plan_free(p);
                if (idle && !keep) {
                        if (!r->o->dry_run) {
                                if (rec.status != (int)st)
                                        rec.status_since = r->now;
                                rec.status = st;
                                k = put_seen(r, &rec, a);
                        }
                        ob_record_clear(&rec);
                        return k;
                }
        }
        int k = add_cand(r, a, false, e ? &rec : NULL, counted);
        ob_record_clear(&rec);
        return k;
}

static int on_unseen(struct ob_index_entry *e, const char *id, void *ud)
{
        struct run *r = ud;
        if (e->status == OB_STATUS_DELETED && !e->pending)
                return 0;
        struct ob_record rec = {0};
        int k = ob_state_get(r->state, id, &rec);
        if (k < 0)
                return k;
        const char *why = sweep_spares(r, rec.dn);
        if (why) {
                if (strstr(why, "referral"))
                        r->spared_referral++;
                else
                        r->spared_unreadable++;
                ob_log(OB_LOG_WARNING, "event=sweep_spared account=%s dn=%s reason=%s",
                       ob_log_quote(rec.username ? rec.username : rec.id), ob_log_quote(rec.dn ? rec.dn : ""),
                       ob_log_quote(why));
                ob_record_clear(&rec);
                return 0;
        }
        r->sum.deleted += e->status != OB_STATUS_DELETED;
        struct ob_account *snap = NULL;
        k = ob_state_get_snapshot(r->state, id, &snap);
        if (k == -OB_ENOTFOUND || (k == 0 && !snap)) {
                snap = ob_account_new();
                if (!snap || !(snap->id = strdup(rec.id)) || (rec.dn && !(snap->dn = strdup(rec.dn)))) {
                        ob_account_free(snap);
                        ob_record_clear(&rec);
                        return -ENOMEM;
                }
                k = 0;
        }
        if (k < 0) {
                ob_record_clear(&rec);
                return k;
        }
        k = add_cand(r, snap, true, &rec, false);
        ob_account_free(snap);
        ob_record_clear(&rec);
        return k;
}

/* ---- transfer target ------------------------------------------------------- */

/* At most this many owners are tried for one account, over all its teams: a
 * bound on the lookups one leaver can cost. */
#define OB_TEAM_OWNERS_MAX 64

/* The owners of an account's teams, in the order they are tried: teams by DN,
 * owners in the order the server gives them. A team the account owns is
 * skipped whole: its owner is the leaver (seed 000: the records go to
 * someone who stays). */
struct team_ctx {
        const char *owner_attr;
        const char *account_dn;
        char **owners; /* NULL-terminated */
        size_t n;
};

static int team_owners_add(struct team_ctx *t, const struct ob_account *g)
{
        const struct ob_attr *o = ob_account_attr(g, t->owner_attr);
        for (size_t i = 0; o && i < o->nvals; i++)
                if (ob_dn_equal(o->vals[i].data, t->account_dn) == 1)
                        return 0;
        for (size_t i = 0; o && i < o->nvals && t->n < OB_TEAM_OWNERS_MAX; i++) {
                char **n = realloc(t->owners, (t->n + 2) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                t->owners = n;
                if (!(n[t->n] = strdup(o->vals[i].data)))
                        return -ENOMEM;
                n[++t->n] = NULL;
        }
        return 0;
}

static int team_cb(const struct ob_account *g, void *ud)
{
        return team_owners_add(ud, g);
}

static int read_active(struct run *r, const char *dn, const char *role, struct ob_account **ret, char *why,
                       size_t whylen);

/* The first owner in t that is an active account: 1 with *ret, 0 for none,
 * < 0 (with why) when a read failed: never "no owner" because one could not
 * be read. */
static int first_active_owner(struct run *r, const struct team_ctx *t, const char *role, struct ob_account **ret,
                              char *why, size_t whylen)
{
        for (size_t i = 0; i < t->n; i++) {
                int k = read_active(r, t->owners[i], role, ret, why, whylen);
                if (k != 0)
                        return k;
        }
        return 0;
}

/* 1 and *ret: dn is an active account; 0: it names no usable account (absent,
 * out of scope, not active); < 0: the lookup failed, and *ret_why says how.
 * A failed read is never "no such account": records must not go to the
 * fallback because a manager could not be read. */
static int read_active_uncached(struct run *r, const char *dn, const char *role, struct ob_account **ret,
                                char *why, size_t whylen);
static int judge_target(struct run *r, const char *dn, const char *role, struct ob_account *a, int k,
                        struct ob_account **ret, char *why, size_t whylen);

static uint64_t memo_hash(const char *s)
{
        uint64_t h = 14695981039346656037ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

/* The slot of low (a lower-cased DN) in the open-addressing memo: its entry,
 * or the empty slot where it would go. */
static struct target_memo *memo_slot(struct run *r, const char *low)
{
        size_t mask = r->memo_cap - 1;
        for (size_t i = memo_hash(low) & mask;; i = (i + 1) & mask)
                if (!r->memo[i].dn || strcmp(r->memo[i].dn, low) == 0)
                        return &r->memo[i];
}


/* Remembers what a lookup of dn gave (takes target and why). Bounded: past
 * OB_MEMO_MAX DNs, lookups are not remembered until the end of the window,
 * which forgets them all. */
#define OB_MEMO_MAX 4096

static void memo_clear(struct run *r)
{
        for (size_t i = 0; i < r->memo_cap; i++) {
                free(r->memo[i].dn);
                ob_account_free(r->memo[i].target);
                free(r->memo[i].why);
                r->memo[i] = (struct target_memo){0};
        }
        r->nmemo = 0;
}

static void memo_put(struct run *r, const char *dn, int result, struct ob_account *target, const char *why)
{
        if (r->nmemo >= OB_MEMO_MAX || (r->nmemo + 1) * 2 > r->memo_cap) {
                size_t cap = r->memo_cap ? r->memo_cap * 2 : 256;
                struct target_memo *old = r->memo;
                size_t oldcap = r->memo_cap;
                struct target_memo *n = r->nmemo < OB_MEMO_MAX ? calloc(cap, sizeof(*n)) : NULL;
                if (!n) {
                        ob_account_free(target);
                        return;
                }
                r->memo = n;
                r->memo_cap = cap;
                for (size_t i = 0; i < oldcap; i++)
                        if (old[i].dn)
                                *memo_slot(r, old[i].dn) = old[i];
                free(old);
        }
        char *low = lower_dup(dn);
        if (!low) {
                ob_account_free(target);
                return;
        }
        struct target_memo *m = memo_slot(r, low);
        if (m->dn) {
                free(low);
                ob_account_free(target);
                return;
        }
        *m = (struct target_memo){.dn = low, .result = result, .target = target, .why = why ? strdup(why) : NULL};
        r->nmemo++;
}

/* What the memo keeps of a target: what templates read of it (id, DN,
 * username, mail, name), not the whole entry. */
static int target_dup(struct run *r, const struct ob_account *a, struct ob_account **ret)
{
        const struct ob_directory_config *d = &r->c->directory;
        const char *keep[] = {d->username_attribute, d->mail_attribute, d->name_attribute};
        struct ob_account *c = ob_account_new();
        if (!c || !(c->id = strdup(a->id)) || !(c->dn = strdup(a->dn))) {
                ob_account_free(c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < OB_ELEMENTSOF(keep); i++) {
                const struct ob_attr *at = ob_account_attr(a, keep[i]);
                for (size_t j = 0; at && j < at->nvals; j++)
                        if (ob_account_add(c, at->name, at->vals[j].data, at->vals[j].len) < 0) {
                                ob_account_free(c);
                                return -ENOMEM;
                        }
        }
        *ret = c;
        return 0;
}

/* read_active through the pass's memo. */
static int read_active(struct run *r, const char *dn, const char *role, struct ob_account **ret, char *why,
                       size_t whylen)
{
        if (!dn)
                return 0;
        if (r->memo_cap) {
                char *low = lower_dup(dn);
                if (!low)
                        return -ENOMEM;
                struct target_memo *m = memo_slot(r, low);
                free(low);
                if (m->dn) {
                        if (m->result < 0)
                                snprintf(why, whylen, "%s", m->why ? m->why : "");
                        if (m->result == 1 && ob_account_dup(m->target, ret) < 0)
                                return -ENOMEM;
                        return m->result;
                }
        }
        struct ob_account *a = NULL;
        int k = read_active_uncached(r, dn, role, &a, why, whylen);
        struct ob_account *copy = NULL;
        if (k != 1 || target_dup(r, a, &copy) == 0)
                memo_put(r, dn, k, copy, k < 0 ? why : NULL);
        if (k == 1)
                *ret = a;
        return k;
}

static bool memo_has(struct run *r, const char *dn)
{
        if (!r->memo_cap)
                return false;
        char *low = lower_dup(dn);
        bool has = low && memo_slot(r, low)->dn;
        free(low);
        return has;
}

/* What a read of dn (a, or err) says about it as a transfer target, into
 * the memo, as read_active would remember it. */
static void memo_read(struct run *r, const char *dn, const struct ob_account *a, int err)
{
        char why[512] = "";
        struct ob_account *own = NULL, *target = NULL, *copy = NULL;
        if (a && ob_account_dup(a, &own) < 0)
                return;
        int k = judge_target(r, dn, "manager", own, a ? 0 : err, &target, why, sizeof(why));
        if (k != 1 || target_dup(r, target, &copy) == 0)
                memo_put(r, dn, k, copy, k < 0 ? why : NULL);
        ob_account_free(target);
}

/* Look-ahead: while a window's actions run, the managers of the next
 * window's accounts are read on the loop, OB_LOOKAHEAD_IN_FLIGHT at a time,
 * into the memo; the next window then plans without waiting for them. */
#define OB_LOOKAHEAD_IN_FLIGHT 32

static void lookahead_pump(struct run *r);

static void on_lookahead(const char *dn, const struct ob_account *a, int err, void *ud)
{
        struct run *r = ud;
        r->la_inflight--;
        memo_read(r, dn, a, err);
        lookahead_pump(r);
}

static void lookahead_pump(struct run *r)
{
        while (r->la_inflight < OB_LOOKAHEAD_IN_FLIGHT && r->la_next < r->la_n) {
                const char *dn = r->la_dns[r->la_next++];
                int k = ob_dir_read_account_start(r->dir, dn, on_lookahead, r);
                if (k == 0)
                        r->la_inflight++;
                else if (k == -OB_ENOTFOUND)
                        memo_read(r, dn, NULL, k);
                else
                        r->la_next = r->la_n; /* the window reads them itself */
        }
}

static void lookahead_clear(struct run *r)
{
        for (size_t i = 0; i < r->la_n; i++)
                free(r->la_dns[i]);
        free(r->la_dns);
        r->la_dns = NULL;
        r->la_n = r->la_next = 0;
}

static int cmp_str_ci(const void *x, const void *y)
{
        return strcasecmp(*(char *const *)x, *(char *const *)y);
}

/* Starts reading the managers of refs[first..first+n) that the memo does
 * not hold (each DN once). Best effort: what it does not read, the window
 * reads itself. */
static void lookahead_start(struct run *r, size_t first, size_t n)
{
        const char *manager_attr = r->c->directory.manager_attribute;
        lookahead_clear(r);
        if (!manager_attr || !(r->la_dns = calloc(n ? n : 1, sizeof(char *))))
                return;
        for (size_t i = first; i < first + n; i++) {
                struct ob_account *a = NULL;
                if (r->refs[i].deleted || spill_read(r, &r->refs[i], &a) < 0)
                        continue;
                const char *m = ob_account_get(a, manager_attr);
                if (m && !memo_has(r, m) && (r->la_dns[r->la_n] = strdup(m)))
                        r->la_n++;
                ob_account_free(a);
        }
        if (r->la_n > 1)
                qsort(r->la_dns, r->la_n, sizeof(char *), cmp_str_ci);
        size_t u = 0;
        for (size_t i = 0; i < r->la_n; i++) {
                if (u > 0 && strcasecmp(r->la_dns[u - 1], r->la_dns[i]) == 0)
                        free(r->la_dns[i]);
                else
                        r->la_dns[u++] = r->la_dns[i];
        }
        r->la_n = u;
        lookahead_pump(r);
}

/* The window about to plan needs what the look-ahead still reads. */
static void lookahead_finish(struct run *r)
{
        while (r->la_inflight > 0 && ob_dir_wait(r->dir) != -EINVAL)
                ;
        r->la_inflight = 0;
        lookahead_clear(r);
}

/* What one prefetched read says about a DN, as read_active would. */
struct prefetch {
        struct run *r;
        const char *const *dns;
};

static void on_prefetched(size_t i, const struct ob_account *a, int err, void *ud)
{
        struct prefetch *pf = ud;
        memo_read(pf->r, pf->dns[i], a, err);
}

/* Reads the managers of every account that will want a transfer target,
 * many at once, before the accounts are planned one by one. */
static int prefetch_managers(struct run *r)
{
        const char *manager_attr = r->c->directory.manager_attribute;
        const char **dns = calloc(r->ncands ? r->ncands : 1, sizeof(*dns));
        size_t n = 0;
        if (!dns)
                return -ENOMEM;
        for (size_t i = 0; i < r->ncands; i++) {
                struct cand *cd = &r->cands[i];
                const char *m = ob_account_get(cd->account, manager_attr);
                if (!m)
                        continue;
                struct ob_plan_input in = {.account = cd->account,
                                           .deleted = cd->deleted,
                                           .record = cd->have_record ? &cd->rec : NULL,
                                           .actions = cd->acts,
                                           .nactions = cd->nacts,
                                           .now = r->now,
                                           .policy = r->policy};
                struct ob_account_plan *p = NULL;
                if (ob_plan_account(r->c, &in, &p) < 0)
                        continue;
                if (ob_account_plan_wants_transfer(p) && !memo_has(r, m))
                        dns[n++] = m;
                cd->plan = p; /* plan_cand starts from it */
        }
        struct prefetch pf = {.r = r, .dns = dns};
        int k = n ? ob_dir_read_many(r->dir, dns, n, on_prefetched, &pf) : 0;
        free(dns);
        return k == -ENOMEM ? k : 0; /* a failed prefetch leaves the lookups to read_active */
}

/* Asks the connector guards' endpoints (seed 002) about the window's
 * accounts that want guards, many at once, before they are planned one by
 * one: an account that stays active, or owes only its revocation, costs
 * no request. */
static int prefetch_guards(struct run *r)
{
        const struct ob_account **want = calloc(r->ncands ? r->ncands : 1, sizeof(*want));
        size_t n = 0;
        int k = want ? 0 : -ENOMEM;
        if (k == 0 && !r->guards)
                k = ob_guards_new(r->c, r->dir, r->loop, &r->signo, &r->guards);
        for (size_t i = 0; k == 0 && i < r->ncands; i++) {
                struct cand *cd = &r->cands[i];
                if (!cd->plan) {
                        struct ob_plan_input in = {.account = cd->account,
                                                   .deleted = cd->deleted,
                                                   .record = cd->have_record ? &cd->rec : NULL,
                                                   .actions = cd->acts,
                                                   .nactions = cd->nacts,
                                                   .now = r->now,
                                                   .policy = r->policy};
                        if (ob_plan_account(r->c, &in, &cd->plan) < 0)
                                continue; /* plan_cand says why */
                }
                if (ob_account_plan_wants_guards(cd->plan))
                        want[n++] = cd->account;
        }
        if (k == 0)
                k = ob_guards_ask(r->guards, want, n);
        free(want);
        return k;
}

/* What one read of dn (a, or the error k) says about it as a transfer
 * target, as read_active returns it; takes a. */
static int judge_target(struct run *r, const char *dn, const char *role, struct ob_account *a, int k,
                        struct ob_account **ret, char *why, size_t whylen)
{
        if (k == -OB_ENOTFOUND)
                return 0;
        if (k < 0) {
                snprintf(why, whylen, "reading the %s %s: %s", role, dn, ob_strerror(k));
                return k;
        }
        if (a->unreadable) {
                snprintf(why, whylen, "the %s %s cannot be judged: %s", role, dn, a->unreadable);
                ob_account_free(a);
                return -OB_ELIMIT;
        }
        struct ob_status_eval ev;
        ob_mapping_eval(r->c, a, r->now, r->policy, &ev);
        if (ev.status != OB_STATUS_ACTIVE) {
                ob_account_free(a);
                return 0;
        }
        *ret = a;
        return 1;
}

static int read_active_uncached(struct run *r, const char *dn, const char *role, struct ob_account **ret,
                                char *why, size_t whylen)
{
        struct ob_account *a = NULL;
        if (!dn)
                return 0;
        int k = ob_dir_read_account(r->dir, dn, &a);
        return judge_target(r, dn, role, k == 0 ? a : NULL, k, ret, why, whylen);
}

/* account.teams and account.teams_led: the names (cn, else the DN) of the
 * teams found, as a template list (template.h). */
static int team_name_cb(const struct ob_account *g, void *ud)
{
        struct ob_buf *b = ud;
        const char *name = ob_account_get(g, "cn");
        if (!name)
                name = g->dn ? g->dn : "";
        int r = b->len ? ob_buf_addc(b, OB_TPL_LIST_SEP) : 0;
        for (const char *c = name; r == 0 && *c; c++)
                r = ob_buf_addc(b, *c == OB_TPL_LIST_SEP ? '?' : *c);
        return r;
}

static int read_team_lists(struct run *r, const struct ob_account *a, char **teams, char **led, char *why,
                           size_t whylen)
{
        struct ob_buf t, l;
        ob_buf_init(&t);
        ob_buf_init(&l);
        int k = ob_dir_search_teams(r->dir, a->dn, team_name_cb, &t);
        if (k == 0)
                k = ob_dir_search_teams_owned(r->dir, a->dn, team_name_cb, &l);
        if (k < 0 && k != -ENOMEM)
                snprintf(why, whylen, "searching the teams of %s: %s", a->dn, ob_strerror(k));
        if (k == 0)
                k = ob_buf_adds(&t, "");
        if (k == 0)
                k = ob_buf_adds(&l, "");
        if (k == 0)
                k = ob_buf_steal(&t, teams);
        if (k == 0)
                k = ob_buf_steal(&l, led);
        ob_buf_free(&t);
        ob_buf_free(&l);
        return k;
}

/* The owners of transfer.leader_of's teams, read for an account that got this far. */
static int leader_owners(struct run *r, const char *account_dn, struct team_ctx *t, char *why, size_t whylen)
{
        const struct ob_directory_config *d = &r->c->directory;
        const char *owner_attr = d->teams_owner_attribute ? d->teams_owner_attribute : "owner";
        const char *const attrs[] = {owner_attr, NULL};
        *t = (struct team_ctx){.owner_attr = owner_attr, .account_dn = account_dn};
        for (char **dn = r->c->transfer_leader_of; dn && *dn; dn++) {
                struct ob_account *g = NULL;
                int k = ob_dir_read_entry(r->dir, *dn, attrs, &g);
                if (k == -OB_ENOTFOUND)
                        continue;
                if (k < 0) {
                        snprintf(why, whylen, "reading the team %s (transfer.leader_of): %s", *dn, ob_strerror(k));
                        return k;
                }
                /* A team the leaver leads is skipped, as its own teams are. */
                k = team_owners_add(t, g);
                ob_account_free(g);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* The rule (seed 000, issue 14): the manager if active; else the owner of the
 * first team (by DN) the account is a member of, skipping teams it owns,
 * teams without an owner and teams whose owner is not active; else the
 * leader of the first team in transfer.leader_of with an active one; else
 * the fallback if active. Records never go to someone who left too. Returns 1
 * with a target, 0 when there is none, < 0 (with why) when a lookup failed:
 * a failed read never moves the records further down the chain. */
static int resolve_transfer(struct run *r, const struct ob_account *a, struct ob_account **ret, const char **via,
                            char *why, size_t whylen)
{
        const struct ob_directory_config *d = &r->c->directory;
        *ret = NULL;
        int k = read_active(r, ob_account_get(a, d->manager_attribute), "manager", ret, why, whylen);
        if (k != 0) {
                *via = "manager";
                return k;
        }
        if (d->teams_base && a->dn) {
                struct team_ctx t = {.owner_attr = d->teams_owner_attribute, .account_dn = a->dn};
                k = ob_dir_search_teams(r->dir, a->dn, team_cb, &t);
                if (k < 0)
                        snprintf(why, whylen, "searching the teams of %s: %s", a->dn, ob_strerror(k));
                else
                        k = first_active_owner(r, &t, "team owner", ret, why, whylen);
                ob_strv_free(t.owners);
                if (k != 0) {
                        *via = "team";
                        return k;
                }
        }
        if (r->c->transfer_leader_of && a->dn) {
                struct team_ctx t;
                k = leader_owners(r, a->dn, &t, why, whylen);
                if (k == 0)
                        k = first_active_owner(r, &t, "team leader", ret, why, whylen);
                ob_strv_free(t.owners);
                if (k != 0) {
                        *via = "leader";
                        return k;
                }
        }
        k = read_active(r, r->c->transfer_fallback, "fallback", ret, why, whylen);
        if (k != 0)
                *via = "fallback";
        return k;
}

/* ---- the pass --------------------------------------------------------------- */

static void free_items(struct ob_report_item *items, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                for (size_t s = 0; items[i].results && s < items[i].plan->nsteps; s++)
                        free(items[i].results[s].error);
                free(items[i].results);
                ob_account_plan_free(items[i].plan);
        }
        free(items);
}

static int plan_cand(struct run *r, struct cand *cd, struct ob_report_item *it)
{
        struct ob_plan_input in = {
                .account = cd->account,
                .deleted = cd->deleted,
                .record = cd->have_record ? &cd->rec : NULL,
                .actions = cd->acts,
                .nactions = cd->nacts,
                .now = r->now,
                .policy = r->policy,
        };
        struct ob_account_plan *p = TAKE_PTR(cd->plan);
        int k = p ? 0 : ob_plan_account(r->c, &in, &p);
        if (k < 0)
                return k;
        struct ob_account *target = NULL;
        char why[512] = "";
        bool again = false;
        char *teams = NULL, *teams_led = NULL;
        struct ob_guard_verdict *verdicts = NULL;
        if (ob_account_plan_wants_transfer(p)) {
                if (resolve_transfer(r, cd->account, &target, &in.transfer.via, why, sizeof(why)) < 0) {
                        ob_log(OB_LOG_WARNING, "event=transfer_lookup_failed account=%s error=%s",
                               ob_log_quote(p->username ? p->username : p->id), ob_log_quote(why));
                        in.transfer.error = why;
                }
                in.transfer.target = target;
                again = true;
        }
        if (r->c->uses_teams && ob_account_plan_owed(p) > 0 && cd->account->dn) {
                char twhy[512] = "";
                if ((k = read_team_lists(r, cd->account, &teams, &teams_led, twhy, sizeof(twhy))) == -ENOMEM)
                        goto out;
                if (k < 0) {
                        /* Not "no teams": what cannot be read holds the steps that read it. */
                        ob_log(OB_LOG_WARNING, "event=teams_lookup_failed account=%s error=%s",
                               ob_log_quote(p->username ? p->username : p->id), ob_log_quote(twhy));
                        in.teams_error = twhy;
                        k = 0;
                }
                in.teams = teams;
                in.teams_led = teams_led;
                again = true;
        }
        if (r->c->nguards > 0 && ob_account_plan_wants_guards(p)) {
                if (!r->guards && (k = ob_guards_new(r->c, r->dir, r->loop, &r->signo, &r->guards)) < 0)
                        goto out;
                if ((k = ob_guards_check(r->guards, cd->account, &verdicts, &in.nguards)) < 0)
                        goto out;
                in.guards = verdicts;
                again = again || in.nguards > 0;
        }
        if (again) {
                ob_account_plan_free(p);
                p = NULL;
                k = ob_plan_account(r->c, &in, &p);
        }
        /* `run` passes again when a stage falls due. */
        for (size_t i = 0; k == 0 && i < p->nsteps; i++)
                if (p->steps[i].due > r->now && p->steps[i].due < r->next_change)
                        r->next_change = p->steps[i].due;
        if (k == 0 && p->blocked)
                ob_log(OB_LOG_INFO, "event=guarded account=%s guard=%s", ob_log_quote(p->username ? p->username : p->id),
                       ob_log_quote(p->blocked));
        /* -v: each decision, with what it rests on (`explain` says more);
         * its values are not worked out unless the line is written. */
        if (k == 0 && ob_log_enabled(OB_LOG_DEBUG))
                ob_log(OB_LOG_DEBUG,
                       "event=decision account=%s status=%s rule=%s recorded=%s transition=%s owed=%zu steps=%zu "
                       "transfer_to=%s via=%s",
                       ob_log_quote(p->username ? p->username : p->id), ob_status_name(p->status),
                       ob_log_quote(p->rule ? p->rule->name : ""), ob_status_name(p->recorded),
                       ob_log_quote(p->transition ? p->transition->name : ""), ob_account_plan_owed(p), p->nsteps,
                       ob_log_quote(p->transfer_uid ? p->transfer_uid : ""), p->transfer_via ? p->transfer_via : "none");
out:
        ob_account_free(target);
        free(teams);
        free(teams_led);
        ob_guard_verdicts_free(verdicts, in.nguards);
        if (k < 0) {
                ob_account_plan_free(p);
                return k;
        }
        it->plan = p;
        it->writeback_result = 1;
        return 0;
}

/* A candidate's record as read now (identity borrowed from the entry); a
 * deleted account keeps what was recorded about it. */
static struct ob_record cand_record(struct run *r, const struct cand *cd, const struct ob_account_plan *p)
{
        struct ob_record rec = cd->have_record ? cd->rec : (struct ob_record){0};
        if (!cd->deleted)
                record_from(r, cd->account, &rec);
        rec.generation = p->generation;
        return rec;
}

static int record_after(struct run *r, struct cand *cd, struct ob_report_item *it)
{
        struct ob_account_plan *p = it->plan;
        bool all_ok = true;
        for (size_t i = 0; i < p->nsteps; i++)
                if (p->steps[i].state == OB_STEP_OWED &&
                    (!it->results || (it->results[i].outcome != OB_OUTCOME_DONE &&
                                      it->results[i].outcome != OB_OUTCOME_SKIPPED)))
                        all_ok = false;
        /* Skipped steps are recorded so a continuing plan does not re-evaluate
         * them; steps an earlier generation did are recorded done in this one,
         * so the next transition knows them too. */
        for (size_t i = 0; p->transition && i < p->nsteps; i++)
                if (p->steps[i].state == OB_STEP_SKIPPED || p->steps[i].carried) {
                        enum ob_outcome o = p->steps[i].carried ? OB_OUTCOME_DONE : OB_OUTCOME_SKIPPED;
                        int k = ob_state_action_outcome(r->state, p->id, p->generation, p->steps[i].action->name, o,
                                                        0, NULL, r->now);
                        if (k < 0)
                                return k;
                }
        /* A stage's due time, recorded once, when its transition begins. */
        for (size_t i = 0; p->transition && i < p->nsteps; i++)
                if (p->steps[i].state == OB_STEP_OWED && p->steps[i].due > r->now) {
                        int k = ob_state_action_due(r->state, p->id, p->generation, p->steps[i].action->name,
                                                    p->steps[i].due, r->now);
                        if (k < 0)
                                return k;
                }
        struct ob_record rec = cand_record(r, cd, p);
        if (all_ok) {
                if (rec.status != (int)p->status)
                        rec.status_since = r->now;
                rec.status = p->status;
                rec.pending_from = rec.pending_to = OB_STATUS_NONE;
        } else {
                rec.pending_from = p->from;
                rec.pending_to = p->status;
        }
        rec.writeback_owed = p->writeback && it->writeback_result != 0;
        return ob_state_put(r->state, &rec, cd->deleted ? NULL : cd->account);
}

static int mark_pending(struct run *r, struct cand *cd, struct ob_account_plan *p)
{
        struct ob_record rec = cand_record(r, cd, p);
        rec.pending_from = p->from;
        rec.pending_to = p->status;
        return ob_state_put(r->state, &rec, cd->deleted ? NULL : cd->account);
}

/* A directory that cannot be used because of the configuration (a feature
 * the server lacks, credentials in clear text) is a configuration problem,
 * 2; one that cannot be reached or answered badly is 3. */
static int dir_exit(int k)
{
        return k == -ENOMEM                                ? OB_EXIT_FAILED
               : k == -OB_ECONFIG || k == -OB_EINSECURE ? OB_EXIT_CONFIG
                                                          : OB_EXIT_DIRECTORY;
}

static int astats_store(struct run *r);

/* ---- adopting what the directory already shows -------------------------------- */

/* A first deployment on a directory with years of leavers: records each
 * account's status as applied, runs no action and writes nothing to the
 * directory (the next pass writes the status attributes of the accounts
 * that are not active). The pass holds one transaction around every window:
 * all or nothing. */
static int adopt(struct run *r, struct ob_report_item *items, size_t n)
{
        int k = 0;
        for (size_t i = 0; k == 0 && i < n; i++) {
                struct ob_account_plan *p = items[i].plan;
                struct cand *cd = &r->cands[i];
                struct ob_record rec = cd->have_record ? cd->rec : (struct ob_record){0};
                if (!cd->deleted)
                        record_from(r, cd->account, &rec);
                if (rec.status != (int)p->status)
                        rec.status_since = r->now;
                rec.status = p->status;
                rec.pending_from = rec.pending_to = OB_STATUS_NONE;
                rec.writeback_owed = false;
                k = ob_state_put(r->state, &rec, cd->deleted ? NULL : cd->account);
                r->sum.adopted++;
        }
        return k;
}

/* ---- what the rules read ------------------------------------------------- */

/* The state store's key for what the passes read of an attribute. */
static void astats_key(const char *attr, char *key, size_t len)
{
        snprintf(key, len, OB_ATTR_META_PREFIX "%s", attr);
        for (char *c = key; *c; c++)
                *c = (char)tolower((unsigned char)*c);
}

static int astats_init(struct run *r)
{
        char **names = NULL;
        int k = 0;
        for (size_t i = 0; k == 0 && i < r->c->nrules; i++)
                k = ob_cond_attributes(r->c->rules[i].when, &names);
        size_t n = 0;
        while (names && names[n])
                n++;
        if (k == 0 && n && !(r->astats = calloc(n, sizeof(*r->astats))))
                k = -ENOMEM;
        for (size_t i = 0; k == 0 && i < n; i++)
                r->astats[r->nastats++].name = TAKE_PTR(names[i]);
        ob_strv_free(names);
        return k;
}

/* Compares what this pass read of each attribute the rules use with the last
 * complete pass: an attribute that vanished from every entry, or from most
 * of them, was hidden (access rights, schema) far more often than it was
 * cleared, and reading it as absent would reactivate the locked and the
 * inactive. Returns 0, or -OB_EDIRECTORY with the message in why. */
static int astats_check(struct run *r, char *why, size_t whylen)
{
        size_t readable = r->sum.accounts_read - r->sum.unreadable;
        for (size_t i = 0; i < r->nastats; i++) {
                char key[300], *v = NULL;
                astats_key(r->astats[i].name, key, sizeof(key));
                int k = ob_state_meta_get(r->state, key, &v);
                if (k < 0)
                        return k;
                unsigned long long last = 0, last_of = 0;
                bool have = v && sscanf(v, "%llu/%llu", &last, &last_of) == 2;
                free(v);
                size_t now = r->astats[i].present;
                /* Sparse attributes come and go (one unlock clears the only
                 * pwdAccountLockedTime): it takes three entries vanishing at
                 * once, or more than half of ten or more. */
                if (!have || last < 3)
                        continue;
                if (now == 0 || (last >= 10 && now * 2 < last)) {
                        snprintf(why, whylen,
                                 "the attribute %s, which the mapping rules read, was present on %llu of %llu entries "
                                 "in the last complete pass and on %zu of %zu now. The service account has probably "
                                 "lost the right to read it (an access rule), or the schema changed; read as absent, "
                                 "it would change the status of those accounts (reactivating the locked and the "
                                 "inactive). Nothing was changed. Check the access rights of the service account; if "
                                 "the change is real, run `offboard reconcile --force` once.",
                                 r->astats[i].name, last, last_of, now, readable);
                        return -OB_EDIRECTORY;
                }
        }
        return 0;
}

static int astats_store(struct run *r)
{
        size_t readable = r->sum.accounts_read - r->sum.unreadable;
        int k = 0;
        for (size_t i = 0; k == 0 && i < r->nastats; i++) {
                char key[300], val[64];
                astats_key(r->astats[i].name, key, sizeof(key));
                snprintf(val, sizeof(val), "%zu/%zu", r->astats[i].present, readable);
                k = ob_state_meta_put(r->state, key, val);
        }
        return k;
}

static void astats_free(struct run *r)
{
        for (size_t i = 0; i < r->nastats; i++)
                free(r->astats[i].name);
        free(r->astats);
}

/* ---- the circuit breaker ----------------------------------------------------- */

static int count_change(struct run *r, const struct ob_account_plan *p)
{
        const char *name = p->transition ? p->transition->name : "";
        r->sum.status_changes++;
        for (size_t i = 0; i < r->ncounts; i++)
                if (strcmp(r->counts[i].transition, name) == 0) {
                        r->counts[i].n++;
                        return 0;
                }
        struct ob_report_count *n = realloc(r->counts, (r->ncounts + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        r->counts = n;
        n[r->ncounts++] = (struct ob_report_count){.transition = name, .n = 1};
        return 0;
}

static bool over(size_t n, size_t max_accounts, unsigned max_percent, size_t population)
{
        return (max_accounts && n > max_accounts) || (max_percent && n * 100 > (size_t)max_percent * population);
}

/* Parks the plan (sets sum.parked_reason) when the status changes are above
 * a threshold, overall or for one transition. */
static void breaker(struct run *r)
{
        const struct ob_safety *sf = &r->c->safety;
        const struct ob_run_options *o = r->o;
        /* `run`: what its sliding window let through already counts too. */
        const struct ob_breaker_prior *pr = o->prior;
        size_t population = o->changes && pr ? pr->population : r->sum.accounts_read + r->sum.deleted;
        const char *what = NULL;
        size_t n = 0, before = pr ? pr->status_changes : 0, max_accounts = 0;
        unsigned max_percent = 0;
        if (r->sum.status_changes == 0)
                return; /* nothing would change: nothing to park */
        if (over(r->sum.status_changes + before, sf->max_accounts, sf->max_percent, population)) {
                what = "accounts would change status";
                n = r->sum.status_changes;
                max_accounts = sf->max_accounts;
                max_percent = sf->max_percent;
        }
        for (size_t i = 0; !what && i < r->c->ntransitions; i++) {
                const struct ob_transition *t = &r->c->transitions[i];
                for (size_t j = 0; j < r->ncounts; j++) {
                        size_t b = 0;
                        for (size_t q = 0; pr && q < pr->ncounts; q++)
                                if (strcmp(pr->counts[q].transition, t->name) == 0)
                                        b = pr->counts[q].n;
                        if (strcmp(r->counts[j].transition, t->name) == 0 &&
                            over(r->counts[j].n + b, t->max_accounts, t->max_percent, population)) {
                                what = t->name;
                                n = r->counts[j].n;
                                before = b;
                                max_accounts = t->max_accounts;
                                max_percent = t->max_percent;
                        }
                }
        }
        if (!what)
                return;
        struct ob_buf head;
        ob_buf_init(&head);
        if (strcmp(what, "accounts would change status") == 0)
                ob_buf_printf(&head, "%zu of %zu accounts would change status (reactivations included)", n,
                              population);
        else
                ob_buf_printf(&head, "%zu of %zu accounts would go through the transition %s", n, population, what);
        if (before)
                ob_buf_printf(&head, ", after %zu let through in the last %lld s", before,
                              (long long)(r->c->safety.window_ms / 1000));
        snprintf(r->sum.parked_reason, sizeof(r->sum.parked_reason),
                 "SAFETY: %s, above the threshold (%zu accounts, %u%%; 0 = no limit). %s",
                 head.len ? head.data : "too many status changes", max_accounts,
                 max_percent,
                 o->force     ? "Released by --force."
                 : o->dry_run ? "`offboard reconcile` would park this plan and do nothing until it is run with --force."
                              : "The plan is parked and nothing was done: check the filter, the access rights and the "
                                "mapping rules with `offboard plan`, then run `offboard reconcile --force`.");
        ob_buf_free(&head);
        r->sum.parked = !o->force;
}

static void warn_tls(const struct ob_config *c)
{
        if (!c->directory.tls_verify)
                ob_log(OB_LOG_WARNING,
                       "event=tls_verify_off target=directory uri=%s note=\"tls_verify is false: the directory's "
                       "certificate is not checked, anyone on the path can answer for it\"",
                       ob_log_quote(c->directory.uri));
        for (size_t i = 0; i < c->nconnectors; i++)
                if (ob_connector_tls_unverified(&c->connectors[i]))
                        ob_log(OB_LOG_WARNING,
                               "event=tls_verify_off target=connector connector=%s note=\"tls_verify is false: the "
                               "server's certificate is not checked\"",
                               c->connectors[i].name);
}

static void run_free(struct run *r)
{
        /* The executor and the directory first: what is still in flight
         * calls back (cancelled) into the memo and the window. */
        ob_execute_close(r);
        if (r->ag && r->dir == r->ag->dir) {
                /* The agent's session, kept for the next pass while it is
                 * sound: nothing in flight, the connection not lost, and
                 * the pass did not end on a directory problem. */
                if (r->dir_failed || ob_dir_in_flight(r->dir) > 0 || ob_dir_lost(r->dir)) {
                        ob_dir_free(r->dir);
                        r->ag->dir = NULL;
                }
        } else {
                ob_dir_free(r->dir);
        }
        r->dir = NULL;
        lookahead_clear(r);
        cands_clear(r);
        free(r->cands);
        free(r->refs);
        if (r->spill_fd >= 0)
                close(r->spill_fd);
        ob_buf_free(&r->spill_buf);
        for (size_t i = 0; i < r->nunreadable; i++) {
                free(r->unreadable[i].dn);
                free(r->unreadable[i].reason);
        }
        free(r->unreadable);
        ob_strv_free(r->unreadable_dns);
        ob_dir_search_info_clear(&r->info);
        memo_clear(r);
        free(r->memo);
        astats_free(r);
        free(r->counts);
        ob_policy_values_free(r->policy);
        ob_guards_free(r->guards);
        ob_index_free(r->ix);
        if (r->ag)
                r->ag->pass = NULL;
}

static void report_finish(struct run *r, struct ob_report_writer *w)
{
        r->sum.per_transition = r->counts;
        r->sum.nper_transition = r->ncounts;
        r->sum.unreadable_list = r->unreadable;
        r->sum.nunreadable_list = r->nunreadable;
        r->sum.spared = r->spared_unreadable + r->spared_referral;
        r->sum.references = r->info.references;
        ob_report_finish(w, &r->sum);
}

/* Reports what of the window owes something or did something. */
static void report_window(struct run *r, struct ob_report_writer *w, struct ob_report_item *items, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (ob_account_plan_owed(items[i].plan) || items[i].plan->writeback || items[i].plan->transition ||
                    r->o->explain)
                        ob_report_add(w, &items[i], &r->sum);
}

/* One window of candidates, refs[first..first+n): returns OB_EXIT_OK, or the
 * exit code that stops the pass (the window is then reported as far as it
 * went). */
static int pass_window(struct run *r, size_t first, size_t n, bool acting, struct ob_report_writer *w)
{
        const struct ob_run_options *o = r->o;
        struct ob_report_item *items = calloc(n, sizeof(*items));
        size_t nitems = 0;
        int ret = OB_EXIT_OK;
        int64_t t0 = ob_loop_now_ms(), t_plan = 0, t_exec = 0, t_wb = 0;
        int k = items ? cands_load(r, first, n) : -ENOMEM;
        if (k < 0) {
                fprintf(stderr, "offboard: reading back the accounts that owe something: %s\n",
                        k == -OB_ESTATE ? ob_state_errmsg(r->state) : ob_strerror(k));
                ret = OB_EXIT_FAILED;
                goto out;
        }
        lookahead_finish(r);
        if (r->c->uses_transfer && prefetch_managers(r) < 0) {
                ret = OB_EXIT_FAILED;
                goto out;
        }
        if (ob_guards_ask_endpoints(r->c) && prefetch_guards(r) < 0) {
                ret = OB_EXIT_FAILED;
                goto out;
        }
        for (size_t i = 0; i < r->ncands; i++) {
                k = plan_cand(r, &r->cands[i], &items[nitems]);
                if (k == 0 && r->o->explain && !r->cands[i].deleted &&
                    (k = ob_explain_note(r->o->explain, r->c, r->cands[i].account, items[nitems].plan)) < 0)
                        nitems++; /* freed with the others */
                if (k < 0) {
                        ob_log(OB_LOG_ERROR, "event=plan_failed account=%s error=%s", ob_log_quote(r->cands[i].account->id),
                               ob_log_quote(ob_strerror(k)));
                        ret = OB_EXIT_FAILED;
                        goto out;
                }
                struct ob_account_plan *p = items[nitems++].plan;
                r->sum.steps_owed += ob_account_plan_owed(p);
                r->sum.new_deactivations += ob_account_plan_is_new_deactivation(p);
        }
        if (o->adopt && !o->dry_run && (k = adopt(r, items, nitems)) < 0) {
                fprintf(stderr, "offboard: %s; nothing was recorded\n",
                        k == -ENOMEM ? "out of memory" : ob_state_errmsg(r->state));
                ret = OB_EXIT_CONFIG;
                goto out;
        }
        if (!acting) {
                report_window(r, w, items, nitems);
                goto out;
        }

        /* Write-ahead: every transition about to run is recorded as pending. */
        k = ob_state_begin(r->state);
        for (size_t i = 0; k == 0 && i < nitems; i++) {
                items[i].results = calloc(items[i].plan->nsteps ? items[i].plan->nsteps : 1, sizeof(struct ob_step_result));
                if (!items[i].results)
                        k = -ENOMEM;
                else if (ob_account_plan_owed(items[i].plan))
                        k = mark_pending(r, &r->cands[i], items[i].plan);
        }
        if (k == 0)
                k = ob_state_commit(r->state);
        else
                ob_state_rollback(r->state);
        if (k < 0) {
                fprintf(stderr, "offboard: %s; nothing more was done\n",
                        k == -ENOMEM ? "out of memory" : ob_state_errmsg(r->state));
                ret = OB_EXIT_CONFIG;
                for (size_t i = 0; i < nitems; i++) {
                        free(items[i].results);
                        items[i].results = NULL;
                }
                goto out;
        }

        /* Targets are remembered for a few windows, not for the whole pass;
         * this window has its own. */
        if (r->nmemo >= OB_MEMO_MAX)
                memo_clear(r);
        if (r->c->uses_transfer && first + n < r->nrefs)
                lookahead_start(r, first + n, r->nrefs - first - n < r->window ? r->nrefs - first - n : r->window);
        t_plan = ob_loop_now_ms();
        k = ob_execute_run(r, items, nitems);
        t_exec = ob_loop_now_ms();
        if (k < 0) {
                fprintf(stderr, "offboard: stopped acting: %s\n",
                        k == -OB_ESTATE || k == -ENOSPC ? ob_state_errmsg(r->state) : ob_strerror(k));
                ret = OB_EXIT_CONFIG;
        }

        /* A second signal skips the write-back: the next pass rewrites what
         * the entry lacks. */
        if (k == 0 && !r->stop_now)
                ob_execute_write_backs(r, items, nitems);
        t_wb = ob_loop_now_ms();
        /* The records after the window go in batches of one transaction (one
         * fsync for OB_PUTS_PER_TXN accounts): the outcomes they sum up are
         * already durable, so a crash here only leaves the next pass to
         * finish the records, sending nothing. */
        for (size_t i = 0; i < nitems; i++) {
                int e = 0;
                if (!r->txn_open && (e = ob_state_begin(r->state)) == 0)
                        r->txn_open = true;
                if (e == 0)
                        e = record_after(r, &r->cands[i], &items[i]);
                if (e == 0 && ++r->txn_puts >= OB_PUTS_PER_TXN)
                        e = txn_flush(r);
                if (e < 0) {
                        if (r->txn_open)
                                ob_state_rollback(r->state);
                        r->txn_open = false;
                        r->txn_puts = 0;
                        if (ret == OB_EXIT_OK) {
                                fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r->state));
                                ret = OB_EXIT_CONFIG;
                        }
                        break;
                }
        }
        if (ret == OB_EXIT_OK && txn_flush(r) < 0) {
                fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r->state));
                ret = OB_EXIT_CONFIG;
        }
        report_window(r, w, items, nitems);
        /* Where a window's time goes: reading back and planning (managers
         * read), the actions, the write-backs, the records. */
        ob_log(OB_LOG_INFO,
               "event=window first=%zu accounts=%zu plan_ms=%lld actions_ms=%lld writeback_ms=%lld record_ms=%lld",
               first, nitems, (long long)(t_plan - t0), (long long)(t_exec - t_plan), (long long)(t_wb - t_exec),
               (long long)(ob_loop_now_ms() - t_wb));
out:
        free_items(items, nitems);
        cands_clear(r);
        return ret;
}

static void on_read_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct run *r = ud;
        r->read_result = result;
        r->read_done = true;
        if (result == 0) {
                r->info = *info;
                *info = (struct ob_dir_search_info){0};
        }
        ob_loop_stop(r->loop);
}

/* One changed entry's read ended. An error is left to a whole pass; so is
 * a recorded account whose entry is not there as an account any more (gone,
 * moved out of the base, no longer matching): a whole pass alone can tell a
 * departure from a directory problem (see read_changes). */
static void on_change_read(int result, struct ob_dir_search_info *info, void *ud)
{
        struct run *r = ud;
        if (result == -EINTR || (result < 0 && result != -OB_ENOTFOUND && result != -OB_EDIRECTORY &&
                                 !r->read_result))
                r->read_result = result; /* a signal, memory, the state store */
        else if (result < 0 && result != -OB_ENOTFOUND)
                r->incomplete = true;
        if (result == 0) {
                r->info.entries += info->entries;
                ob_dir_search_info_clear(info);
        }
        if (--r->changes_in_flight == 0) {
                r->read_done = true;
                ob_loop_stop(r->loop);
        }
}

/* A pass over changes: the entries named are read (all at once, on the
 * loop), and the deletions named are swept. */
static int read_changes(struct run *r)
{
        const struct ob_run_options *o = r->o;
        int k = ob_dir_attach(r->dir, r->loop);
        for (size_t i = 0; k == 0 && i < o->nchanges; i++) {
                if (!o->changes[i].dn)
                        continue;
                int q = ob_dir_search_entry_start(r->dir, o->changes[i].dn, on_entry, on_change_read, r);
                if (q == -OB_ENOTFOUND)
                        continue; /* outside the base and scope: see below */
                if (q < 0)
                        k = q;
                else
                        r->changes_in_flight++;
        }
        r->read_done = r->changes_in_flight == 0;
        while (k == 0 && !r->read_done && !r->signo)
                k = ob_loop_run(r->loop);
        if (k == 0 && !r->read_done)
                k = -EINTR;
        if (k == 0)
                k = r->read_result;
        /* A recorded account whose changed entry was not read as an
         * account: a whole pass decides. An entry never recorded that is no
         * account (a group, a computer, someone outside the filter) is
         * nothing to offboard. */
        for (size_t i = 0; k == 0 && i < o->nchanges; i++) {
                struct ob_index_entry *e = o->changes[i].dn && o->changes[i].id
                                                   ? ob_index_find(r->ix, o->changes[i].id)
                                                   : NULL;
                if (e && !e->seen && e->status != OB_STATUS_DELETED)
                        r->incomplete = true;
        }
        /* A deletion is the account's own (the feed names it by its id):
         * swept as a whole pass sweeps an account it no longer sees. */
        for (size_t i = 0; k == 0 && i < o->nchanges; i++) {
                if (o->changes[i].dn || !o->changes[i].id)
                        continue;
                struct ob_index_entry *e = ob_index_find(r->ix, o->changes[i].id);
                if (e && !e->seen) {
                        e->seen = true;
                        k = on_unseen(e, o->changes[i].id, r);
                }
        }
        return k;
}

/* The search of every account, on the loop: the agent's signals are heard
 * while it runs (on_entry stops reading at the first). */
static int read_accounts(struct run *r)
{
        if (r->o->changes)
                return read_changes(r);
        int k = ob_dir_attach(r->dir, r->loop);
        if (k == 0)
                k = ob_dir_search_accounts_start(r->dir, on_entry, on_read_done, r);
        while (k == 0 && !r->read_done && !r->signo)
                k = ob_loop_run(r->loop);
        /* A signal ends the read at once, whatever the server is doing (the
         * search is abandoned with the connection). */
        return k < 0 ? k : !r->read_done ? -EINTR : r->read_result;
}

int ob_agent_pass(struct ob_agent *ag, const struct ob_run_options *o)
{
        const struct ob_config *c = ag->c;
        struct run r = {.c = c, .o = o, .now = o->dry_run && o->now ? o->now : ob_now(), .next_change = INT64_MAX};
        r.skip[0] = c->writeback.status_attribute;
        r.skip[1] = c->writeback.time_attribute;
        r.skip[2] = c->writeback.reason_attribute;
        r.skip[3] = c->writeback.actions_attribute;
        r.skip[4] = c->writeback.assertion_attribute;
        r.sum.dry_run = o->dry_run;
        r.sum.adopt = o->adopt;
        r.sum.now = r.now;
        int ret = OB_EXIT_OK;
        int k;

        /* A pass's first and last log lines: what ran, and what came of it. */
        const char *kind = o->explain ? "explain" : o->dry_run ? "plan" : "reconcile";
        const char *scope = o->changes ? "changes" : o->account ? "account" : "whole";
        int64_t t_start = ob_loop_now_ms();
        ob_log(OB_LOG_INFO, "event=pass_start kind=%s scope=%s", kind, scope);

        r.spill_fd = -1;
        r.window = OB_PASS_WINDOW;
        const char *wenv = getenv("OFFBOARD_PASS_WINDOW");
        if (wenv && *wenv) {
                char *end;
                unsigned long v = strtoul(wenv, &end, 10);
                if (*end || v < 1 || v > 65536) {
                        fprintf(stderr, "offboard: OFFBOARD_PASS_WINDOW must be a number from 1 to 65536, not '%s'\n",
                                wenv);
                        return OB_EXIT_CONFIG;
                }
                r.window = v;
        }
        if (ag->acting == o->dry_run) {
                fprintf(stderr, "offboard: a %s pass on an agent opened for %s\n", o->dry_run ? "dry-run" : "acting",
                        ag->acting ? "acting" : "a dry run");
                return OB_EXIT_FAILED;
        }
        ob_buf_init(&r.spill_buf);
        r.ag = ag;
        r.state = ag->state;
        r.loop = ag->loop;
        r.journal = ag->journal;
        ag->pass = &r;
        /* A person at a terminal sees a long pass move; the service's
         * passes, and stderr that is not a terminal, show nothing. */
        if (!o->result)
                ob_progress_init(&r.progress, stderr, isatty(STDERR_FILENO), o->dry_run ? "plan" : "reconcile",
                                 ob_loop_now_ms());
        if (!o->changes)
                warn_tls(c); /* once per whole pass, not per change */
        if (astats_init(&r) < 0) {
                ret = OB_EXIT_FAILED;
                goto out;
        }
        if (o->changes) {
                const char **ids = calloc(o->nchanges ? o->nchanges : 1, sizeof(*ids));
                size_t n = 0;
                for (size_t i = 0; ids && i < o->nchanges; i++)
                        if (o->changes[i].id)
                                ids[n++] = o->changes[i].id;
                k = ids ? ob_state_load_index_ids(r.state, ids, n, &r.ix) : -ENOMEM;
                free(ids);
        } else {
                k = ob_state_load_index(r.state, &r.ix);
        }
        if (k == -ENOMEM) {
                ret = OB_EXIT_FAILED;
                goto out;
        }
        if (k < 0) {
                fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r.state));
                ret = OB_EXIT_CONFIG;
                goto out;
        }
        r.sum.accounts_recorded = ob_index_size(r.ix);

        struct ob_directory_config dcfg = c->directory;
        char *filter = NULL;
        if (o->account) {
                struct ob_buf b;
                ob_buf_init(&b);
                ob_buf_printf(&b, "(&%s(%s=", c->directory.filter, c->directory.username_attribute);
                ob_escape_ldap_filter(&b, o->account, strlen(o->account));
                ob_buf_adds(&b, "))");
                if (ob_buf_steal(&b, &filter) < 0) {
                        ob_buf_free(&b);
                        ret = OB_EXIT_FAILED;
                        goto out;
                }
                dcfg.filter = filter;
        }
        /* A whole pass reuses the agent's session (`run` passes again and
         * again: no new TLS handshake and bind each time); one account's
         * pass has a filter of its own. */
        /* A session idle for a minute is let go rather than trusted: servers
         * drop idle connections (AD after 15 minutes), and a pass must not
         * fail on one that died quietly. */
        if (ag->dir && ob_loop_now_ms() - ag->dir_used_ms > OB_DIR_IDLE_MS)
                ob_agent_drop_dir(ag);
        if (!o->account && ag->dir) {
                r.dir = ag->dir;
                k = 0;
        } else {
                /* On the loop when there is one: `run` keeps feeding its
                 * watchdog and answering /healthz while a server is slow. */
                k = ob_dir_open_on(ag->loop, &dcfg, &r.dir);
                if (k == 0 && !o->account)
                        ag->dir = r.dir;
        }
        if (k < 0) {
                fprintf(stderr, "offboard: cannot use the directory %s: %s\n", c->directory.uri, ob_strerror(k));
                free(filter);
                ret = dir_exit(k);
                goto out;
        }
        char pwhy[768] = "";
        if ((k = ob_policy_read(r.dir, c, &r.policy, pwhy, sizeof(pwhy))) < 0) {
                /* Lockout rules are never judged against a policy that could not be read. */
                fprintf(stderr, "offboard: %s\n", pwhy[0] ? pwhy : ob_strerror(k));
                free(filter);
                ret = k == -ENOMEM ? OB_EXIT_FAILED : OB_EXIT_DIRECTORY;
                goto out;
        }
        if (c->transfer_fallback) {
                /* A fallback that does not exist or has left makes every
                 * transfer without a manager or team wait: say so up front. */
                struct ob_account *fb = NULL;
                char why[512] = "";
                int f = read_active(&r, c->transfer_fallback, "fallback", &fb, why, sizeof(why));
                ob_account_free(fb);
                if (f <= 0)
                        snprintf(r.sum.fallback_problem, sizeof(r.sum.fallback_problem),
                                 "transfer.fallback %s %s: transfers with no active manager, team owner or leader are held",
                                 c->transfer_fallback,
                                 f < 0 ? why : "does not exist, is outside the base, or is not active");
                if (f <= 0)
                        ob_log(OB_LOG_WARNING, "event=fallback_unusable note=%s", ob_log_quote(r.sum.fallback_problem));
        }
        k = read_accounts(&r);
        free(filter);
        if (k == 0)
                k = txn_flush(&r);
        else if (r.txn_open) {
                /* Only snapshots and first sightings were written; keep them. */
                txn_flush(&r);
        }
        if (k == -EINTR && r.signo) {
                fprintf(stderr, "offboard: stopped by %s while reading the directory; nothing was done\n",
                        ob_execute_signal_name(r.signo));
                ret = OB_EXIT_INTERRUPTED;
                goto out;
        }
        if (k < 0) {
                if (r.spill_err) {
                        fprintf(stderr,
                                "offboard: cannot write the accounts that owe something to a temporary file (in the "
                                "state store's directory, else $TMPDIR): %s; nothing was done\n",
                                strerror(-r.spill_err));
                        ret = OB_EXIT_CONFIG;
                } else if (k == -OB_ESTATE || k == -ENOSPC) {
                        fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r.state));
                        ret = OB_EXIT_CONFIG;
                } else {
                        fprintf(stderr,
                                "offboard: reading accounts from %s failed (%s); nothing was changed: an error is "
                                "never taken for an empty directory\n",
                                c->directory.uri, ob_strerror(k));
                        ret = dir_exit(k);
                }
                goto out;
        }
        size_t count = r.info.entries;
        if (r.nunreadable_dns > 1)
                qsort(r.unreadable_dns, r.nunreadable_dns, sizeof(char *), cmp_str);
        if (count > 0 && r.sum.unreadable == count) {
                fprintf(stderr,
                        "offboard: none of the %zu entries read from %s could be judged (the first: %s: %s); nothing "
                        "was changed. Check the service account's access rights and the id_attribute.\n",
                        count, c->directory.base, r.unreadable ? r.unreadable[0].dn : "",
                        r.unreadable ? r.unreadable[0].reason : "");
                ret = OB_EXIT_DIRECTORY;
                goto out;
        }
        if (o->changes) {
                /* Only the accounts named: no sweep, and nothing to compare
                 * with a complete pass. */
        } else if (o->account) {
                /* explain goes on: it says what the store records of the name. */
                if (count == 0 && !o->explain) {
                        fprintf(stderr, "offboard: no account with %s=%s in %s %s\n", c->directory.username_attribute,
                                o->account, c->directory.base, c->directory.filter);
                        ret = OB_EXIT_DIRECTORY;
                        goto out;
                }
        } else {
                if (count < c->directory.min_accounts) {
                        fprintf(stderr,
                                "offboard: the search of %s %s returned %zu accounts, fewer than min_accounts (%zu); "
                                "refusing to treat that as everyone having left. Nothing was changed.\n",
                                c->directory.base, c->directory.filter, count, c->directory.min_accounts);
                        ret = OB_EXIT_DIRECTORY;
                        goto out;
                }
                char why[1024];
                k = astats_check(&r, why, sizeof(why));
                if (k == -OB_EDIRECTORY && !o->force) {
                        fprintf(stderr, "offboard: %s\n", why);
                        ret = OB_EXIT_DIRECTORY;
                        goto out;
                } else if (k == -OB_EDIRECTORY) {
                        ob_log(OB_LOG_WARNING, "event=attribute_vanished forced=true note=%s", ob_log_quote(why));
                } else if (k < 0) {
                        fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r.state));
                        ret = OB_EXIT_CONFIG;
                        goto out;
                }
                k = ob_index_foreach_unseen(r.ix, on_unseen, &r);
                if (k < 0) {
                        fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r.state));
                        ret = OB_EXIT_CONFIG;
                        goto out;
                }
        }

        /* Circuit breaker: before any side effect, and before any status
         * change is recorded. The changes were counted during the read.
         * --adopt runs nothing downstream: no breaker to pass. */
        if (!o->account && !o->adopt)
                breaker(&r);
        if (r.spill_fd >= 0 && (k = spill_flush(&r)) < 0) {
                fprintf(stderr,
                        "offboard: cannot write the accounts that owe something to a temporary file (in the state "
                        "store's directory, else $TMPDIR): %s; nothing was done\n",
                        strerror(-k));
                ret = OB_EXIT_CONFIG;
                goto out;
        }
        bool acting = !o->dry_run && !r.sum.parked && !o->adopt;
        r.acting = acting;
        if (acting) {
                ob_execute_poll_signals(&r);
                if (r.signo) {
                        fprintf(stderr, "offboard: stopped by %s before acting; nothing was done\n",
                                ob_execute_signal_name(r.signo));
                        ret = OB_EXIT_INTERRUPTED;
                        goto out;
                }
                if ((k = ob_execute_open(&r)) < 0) {
                        ret = OB_EXIT_FAILED;
                        goto out;
                }
        }
        r.cands = calloc(r.nrefs < r.window ? (r.nrefs ? r.nrefs : 1) : r.window, sizeof(*r.cands));
        if (!r.cands) {
                ret = OB_EXIT_FAILED;
                goto out;
        }
        if (o->adopt && !o->dry_run && (k = ob_state_begin(r.state)) < 0) {
                fprintf(stderr, "offboard: %s; nothing was recorded\n", ob_state_errmsg(r.state));
                ret = OB_EXIT_CONFIG;
                goto out;
        }

        /* Window after window: plan (the managers read many at once), carry
         * out, write back, record, report; then let the window go. */
        struct ob_report_writer w;
        ob_report_start(&w, o->out, o->format, c, &r.sum);
        w.summary_only = o->summary;
        for (size_t first = 0; first < r.nrefs && ret == OB_EXIT_OK;) {
                size_t n = r.nrefs - first < r.window ? r.nrefs - first : r.window;
                if (acting && r.signo) {
                        r.sum.not_reached += r.nrefs - first;
                        break;
                }
                if (r.progress.f)
                        ob_progress_note(&r.progress, ob_loop_now_ms(), acting ? "carrying out" : "planning", first,
                                         r.nrefs);
                ret = pass_window(&r, first, n, acting, &w);
                first += n;
                if (ret != OB_EXIT_OK)
                        r.sum.not_reached += r.nrefs - first;
        }
        if (o->adopt && !o->dry_run) {
                k = ret == OB_EXIT_OK ? astats_store(&r) : -OB_ESTATE;
                if (k == 0)
                        k = ob_state_commit(r.state);
                if (k < 0) {
                        ob_state_rollback(r.state);
                        if (ret == OB_EXIT_OK) {
                                fprintf(stderr, "offboard: %s; nothing was recorded\n",
                                        k == -ENOMEM ? "out of memory" : ob_state_errmsg(r.state));
                                ret = OB_EXIT_CONFIG;
                        }
                        r.sum.adopted = 0;
                }
        }
        if (o->adopt && o->dry_run)
                r.sum.adopted = w.n;
        /* What this complete pass read becomes the reference for the next. */
        if (acting && !o->account && !o->changes && ret == OB_EXIT_OK && !r.signo && astats_store(&r) < 0) {
                fprintf(stderr, "offboard: %s\n", ob_state_errmsg(r.state));
                ret = OB_EXIT_CONFIG;
        }
        ob_progress_clear(&r.progress);
        report_finish(&r, &w);
        if (!acting) {
                if (ret == OB_EXIT_OK && r.sum.parked && !o->dry_run)
                        ret = OB_EXIT_SAFETY;
                else if (ret == OB_EXIT_OK && o->check && (r.sum.steps_owed > 0 || w.n > 0 || r.sum.unreadable))
                        ret = OB_EXIT_FAILED;
                else if (ret == OB_EXIT_OK && r.spared_referral)
                        ret = OB_EXIT_DIRECTORY;
                goto out;
        }
        if (ret == OB_EXIT_OK && r.signo)
                ret = OB_EXIT_INTERRUPTED;
        if (ret == OB_EXIT_OK && r.spared_referral)
                ret = OB_EXIT_DIRECTORY;
        if (ret == OB_EXIT_OK &&
            (r.sum.steps_failed || r.sum.steps_held || r.sum.writebacks_failed || r.sum.unreadable))
                ret = OB_EXIT_FAILED;
out:
        ob_progress_clear(&r.progress);
        ob_log(OB_LOG_INFO,
               "event=pass_end kind=%s scope=%s exit=%d duration_ms=%lld accounts_read=%zu candidates=%zu owed=%zu "
               "done=%zu failed=%zu held=%zu writebacks_failed=%zu unreadable=%zu parked=%s",
               kind, scope, ret, (long long)(ob_loop_now_ms() - t_start), r.sum.accounts_read, r.nrefs,
               r.sum.steps_owed, r.sum.steps_done, r.sum.steps_failed, r.sum.steps_held, r.sum.writebacks_failed,
               r.sum.unreadable, r.sum.parked ? "yes" : "no");
        r.dir_failed = ret == OB_EXIT_DIRECTORY;
        ag->dir_used_ms = ob_loop_now_ms();
        if (o->result)
                *o->result = (struct ob_pass_result){.next_change = r.next_change,
                                                     .accounts_read = r.sum.accounts_read,
                                                     .steps_owed = r.sum.steps_owed,
                                                     .steps_done = r.sum.steps_done,
                                                     .steps_failed = r.sum.steps_failed,
                                                     .steps_held = r.sum.steps_held,
                                                     .writebacks_failed = r.sum.writebacks_failed,
                                                     .unreadable = r.sum.unreadable,
                                                     .parked = r.sum.parked,
                                                     .incomplete = r.incomplete || r.sum.unreadable > 0};
        if (o->result && r.acting && r.ncounts) {
                o->result->status_changes = r.sum.status_changes;
                o->result->counts = TAKE_PTR(r.counts);
                o->result->ncounts = r.ncounts;
                r.ncounts = 0;
        }
        run_free(&r);
        return ret;
}
