/* feed_poll.c: a change feed by polling (feed_poll.h). */
#define _GNU_SOURCE
#include "feed_poll.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "account.h"
#include "log.h"
#include "timeparse.h"
#include "util.h"

/* An account seen changed at a time still inside the overlap window: the
 * next questions return it again, and it is not a change again. */
struct seen {
        char *id;
        int64_t at; /* its modifyTimestamp, seconds */
};

struct ob_poll {
        struct ob_dir *d;
        struct ob_loop *loop;
        int64_t interval_ms;
        struct ob_poll_ops ops;
        void *ud;
        bool usn;     /* Active Directory: uSNChanged; else modifyTimestamp */
        bool dirsync; /* Active Directory: DirSync, with its cookie */
        char *cookie; /* DirSync's, or NULL before the first answer */
        size_t cookie_len;
        bool resuming; /* from a stored cookie: the first answer is changes too */
        bool started; /* the first answer came: live */
        bool dead;    /* freed by its owner while a question was in flight */
        unsigned in_flight;
        struct ob_timer *timer;
        /* uSNChanged */
        uint64_t last_usn, next_usn;
        char *invocation; /* the DC's invocationId, hex, or "" */
        char *naming_context; /* the domain's Deleted Objects container: tombstones */
        char usn_filter[96];  /* this question's USNs */
        bool deleted_pending; /* the changed accounts are asked; the deleted ones next */
        /* modifyTimestamp */
        int64_t newest; /* seconds; INT64_MIN: none seen yet */
        struct seen *seen; /* [0, nsorted) sorted by (id, at) */
        size_t nseen, nsorted, seen_cap;
        int err; /* the question's failure, reported when it ends */
};

static void poll_cycle(struct ob_poll *p);

static void seen_clear(struct ob_poll *p)
{
        for (size_t i = 0; i < p->nseen; i++)
                free(p->seen[i].id);
        free(p->seen);
        p->seen = NULL;
        p->nseen = p->nsorted = p->seen_cap = 0;
}

static void poll_destroy(struct ob_poll *p)
{
        seen_clear(p);
        free(p->invocation);
        free(p->naming_context);
        free(p->cookie);
        free(p);
}

/* One more answer came for p; false when p is gone (freed meanwhile). */
static bool answered(struct ob_poll *p)
{
        p->in_flight--;
        if (p->dead) {
                if (p->in_flight == 0)
                        poll_destroy(p);
                return false;
        }
        return true;
}

static void on_tick(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct ob_poll *p = ud;
        p->timer = NULL;
        poll_cycle(p);
}

/* The question ended well: the next one after the interval. */
static void cycle_done(struct ob_poll *p)
{
        if (ob_loop_timer(p->loop, p->interval_ms, on_tick, p, &p->timer) < 0) {
                p->timer = NULL;
                p->ops.failed(-ENOMEM, p->ud);
        }
}

static void cycle_failed(struct ob_poll *p, int err)
{
        ob_log(OB_LOG_DEBUG, "event=poll_failed kind=%s error=%s", ob_poll_kind(p), ob_log_quote(ob_strerror(err)));
        p->ops.failed(err < 0 ? err : -OB_EDIRECTORY, p->ud);
}

/* A question was sent (k == 0: one more answer to wait for) or not. */
static void asked(struct ob_poll *p, int k)
{
        if (k < 0)
                cycle_failed(p, k);
        else
                p->in_flight++;
}

/* An answer came: whether to go on with it (p is still there and the
 * question did not fail; a failure ends the cycle). */
static bool answer_ok(struct ob_poll *p, int result)
{
        if (!answered(p))
                return false;
        if (result < 0) {
                cycle_failed(p, result);
                return false;
        }
        return true;
}

static void went_live(struct ob_poll *p)
{
        if (!p->started) {
                p->started = true;
                p->ops.live(ob_poll_kind(p), p->ud);
        }
}

/* ---- modifyTimestamp ----------------------------------------------------- */

static int cmp_seen(const void *x, const void *y)
{
        const struct seen *a = x, *b = y;
        int c = strcmp(a->id, b->id);
        return c ? c : (a->at > b->at) - (a->at < b->at);
}

/* Whether an earlier question returned id at this time already: the
 * entries before this question are sorted (one answer never returns an
 * entry twice). */
static bool seen_has(const struct ob_poll *p, const char *id, int64_t at)
{
        struct seen key = {.id = (char *)id, .at = at};
        return p->nsorted && bsearch(&key, p->seen, p->nsorted, sizeof(*p->seen), cmp_seen) != NULL;
}

static int seen_add(struct ob_poll *p, const char *id, int64_t at)
{
        if (p->nseen == p->seen_cap) {
                size_t cap = p->seen_cap ? 2 * p->seen_cap : 64;
                struct seen *n = realloc(p->seen, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                p->seen = n;
                p->seen_cap = cap;
        }
        char *c = strdup(id);
        if (!c)
                return -ENOMEM;
        p->seen[p->nseen++] = (struct seen){.id = c, .at = at};
        return 0;
}

/* Forgets what fell out of the overlap window; sorts the rest. */
static void seen_prune(struct ob_poll *p)
{
        size_t k = 0;
        for (size_t i = 0; i < p->nseen; i++) {
                if (p->seen[i].at >= p->newest - OB_POLL_OVERLAP_S)
                        p->seen[k++] = p->seen[i];
                else
                        free(p->seen[i].id);
        }
        p->nseen = k;
        if (k > 1)
                qsort(p->seen, k, sizeof(*p->seen), cmp_seen);
        p->nsorted = k;
}

static int on_stamped(const struct ob_account *a, void *ud)
{
        struct ob_poll *p = ud;
        const char *ts = ob_account_get(a, "modifyTimestamp");
        int64_t at;
        if (!a->id || !ts || ob_time_parse_generalized(ts, &at) < 0)
                return 0; /* an entry that cannot be judged: the whole passes hold it */
        if (at > p->newest)
                p->newest = at;
        if (at < p->newest - OB_POLL_OVERLAP_S || seen_has(p, a->id, at))
                return 0;
        int k = seen_add(p, a->id, at);
        if (k < 0)
                return k;
        /* The first question only finds where the server's clock is, and
         * what the overlap will return again. */
        if (!p->started)
                return 0;
        p->ops.change(a->dn, a->id, ob_account_get(a, "modifiersName"), p->ud);
        return p->dead ? -ECANCELED : 0;
}

static void on_stamped_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct ob_poll *p = ud;
        (void)info;
        if (!answer_ok(p, result))
                return;
        if (!p->started && p->newest == INT64_MIN) {
                /* No account has a modifyTimestamp: the server does not keep
                 * it, or the service account cannot read it. */
                p->ops.resync("no account read carries a modifyTimestamp (operational attribute not kept, or not "
                              "readable by the service account): changes are found by the whole passes only",
                              p->ud);
                cycle_failed(p, -OB_EDIRECTORY);
                return;
        }
        seen_prune(p);
        went_live(p);
        cycle_done(p);
}

static void ask_stamped(struct ob_poll *p)
{
        char filter[64];
        if (p->newest == INT64_MIN) {
                snprintf(filter, sizeof(filter), "(modifyTimestamp>=19700101000000Z)");
        } else {
                time_t since = (time_t)(p->newest - OB_POLL_OVERLAP_S);
                struct tm tm;
                gmtime_r(&since, &tm);
                strftime(filter, sizeof(filter), "(modifyTimestamp>=%Y%m%d%H%M%SZ)", &tm);
        }
        char *attrs[] = {"modifyTimestamp", "modifiersName", NULL};
        int k = ob_dir_search_changed_start(p->d, filter, attrs, on_stamped, on_stamped_done, p);
        asked(p, k);
}

/* ---- uSNChanged ------------------------------------------------------------ */

static int on_usn_entry(const struct ob_account *a, void *ud)
{
        struct ob_poll *p = ud;
        if (a->id)
                p->ops.change(a->dn, a->id, NULL, p->ud);
        return p->dead ? -ECANCELED : 0;
}

static int on_tombstone(const struct ob_account *a, void *ud)
{
        struct ob_poll *p = ud;
        if (a->id && !a->unreadable)
                p->ops.change(NULL, a->id, NULL, p->ud);
        return p->dead ? -ECANCELED : 0;
}

static void on_usn_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct ob_poll *p = ud;
        (void)info;
        if (!answer_ok(p, result))
                return;
        if (p->deleted_pending && p->naming_context) {
                /* Then the accounts deleted within the same USNs: their
                 * tombstones, by id. */
                p->deleted_pending = false;
                asked(p, ob_dir_search_deleted_start(p->d, p->naming_context, p->usn_filter, on_tombstone,
                                                     on_usn_done, p));
                return;
        }
        p->last_usn = p->next_usn;
        cycle_done(p);
}

/* The DC's highestCommittedUSN (and invocationId) are known: ask what
 * changed up to it. */
static void ask_usn(struct ob_poll *p, uint64_t highest, const char *invocation)
{
        if (!p->started) {
                p->last_usn = highest;
                free(p->invocation);
                p->invocation = strdup(invocation);
                went_live(p);
                cycle_done(p);
                return;
        }
        const char *why = NULL;
        if (p->invocation && strcmp(invocation, p->invocation) != 0)
                why = "the domain controller's invocationId changed (restored from a backup, or another DC answers "
                      "at this address): its USNs cannot be compared with the last ones";
        else if (highest < p->last_usn)
                why = "the domain controller's highestCommittedUSN went back";
        if (why) {
                ob_log(OB_LOG_WARNING, "event=feed_resync feed=poll kind=usn reason=%s", ob_log_quote(why));
                p->last_usn = highest;
                free(p->invocation);
                p->invocation = strdup(invocation);
                p->ops.resync(why, p->ud);
                cycle_done(p);
                return;
        }
        if (highest == p->last_usn) {
                cycle_done(p); /* nothing was committed since */
                return;
        }
        snprintf(p->usn_filter, sizeof(p->usn_filter), "(&(uSNChanged>=%" PRIu64 ")(uSNChanged<=%" PRIu64 "))",
                 p->last_usn + 1, highest);
        p->next_usn = highest;
        p->deleted_pending = true;
        char *attrs[] = {"uSNChanged", NULL};
        int k = ob_dir_search_changed_start(p->d, p->usn_filter, attrs, on_usn_entry, on_usn_done, p);
        asked(p, k);
}

static void on_invocation(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        if (err < 0 && err != -OB_ENOTFOUND) {
                cycle_failed(p, err);
                return;
        }
        char hex[65] = "";
        const struct ob_attr *inv = a ? ob_account_attr(a, "invocationId") : NULL;
        for (size_t i = 0; inv && inv->nvals && i < inv->vals[0].len && i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", (unsigned char)inv->vals[0].data[i]);
        ask_usn(p, p->next_usn, hex);
}

static void on_root(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        const char *h = a ? ob_account_get(a, "highestCommittedUSN") : NULL;
        uint64_t highest;
        if (err < 0 || !h || ob_parse_u64(h, &highest) < 0) {
                if (err == 0)
                        ob_log(OB_LOG_ERROR, "event=poll_failed kind=usn note=\"the root DSE has no usable "
                                             "highestCommittedUSN\"");
                cycle_failed(p, err < 0 ? err : -OB_EDIRECTORY);
                return;
        }
        const char *nc = ob_account_get(a, "defaultNamingContext");
        if (nc && !p->naming_context && asprintf(&p->naming_context, "CN=Deleted Objects,%s", nc) < 0)
                p->naming_context = NULL; /* no memory: deletions are left to whole passes */
        /* The DC's identity: its NTDS settings object's invocationId. */
        const char *service = ob_account_get(a, "dsServiceName");
        if (service && *service) {
                p->next_usn = highest;
                char *attrs[] = {"invocationId", NULL};
                asked(p, ob_dir_read_start(p->d, service, attrs, on_invocation, p));
                return;
        }
        ask_usn(p, highest, "");
}

/* ---- DirSync ---------------------------------------------------------------- */

static int on_dirsync_entry(const struct ob_account *a, void *ud)
{
        struct ob_poll *p = ud;
        if ((!p->started && !p->resuming) || !a->id || a->unreadable)
                return 0; /* the first answer is everything: where to resume from */
        const char *deleted = ob_account_get(a, "isDeleted");
        if (deleted && strcasecmp(deleted, "TRUE") == 0)
                p->ops.change(NULL, a->id, NULL, p->ud);
        else if (ob_dir_in_scope(p->d, a->dn))
                p->ops.change(a->dn, a->id, NULL, p->ud);
        return p->dead ? -ECANCELED : 0;
}

static void on_dirsync_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        if (result < 0 || !info->dirsync_cookie) {
                cycle_failed(p, result < 0 ? result : -OB_EDIRECTORY);
                return;
        }
        free(p->cookie);
        p->cookie = TAKE_PTR(info->dirsync_cookie);
        p->cookie_len = info->dirsync_cookie_len;
        went_live(p);
        cycle_done(p);
}

static void ask_dirsync(struct ob_poll *p)
{
        int k = ob_dir_dirsync_start(p->d, p->naming_context, p->cookie, p->cookie_len, on_dirsync_entry,
                                     on_dirsync_done, p);
        asked(p, k);
}

static void on_dirsync_root(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        const char *nc = a ? ob_account_get(a, "defaultNamingContext") : NULL;
        if (err < 0 || !nc || !(p->naming_context = strdup(nc))) {
                cycle_failed(p, err < 0 ? err : nc ? -ENOMEM : -OB_EDIRECTORY);
                return;
        }
        ask_dirsync(p);
}

static void poll_cycle(struct ob_poll *p)
{
        if (p->dirsync && p->naming_context) {
                ask_dirsync(p);
                return;
        }
        if (p->dirsync) {
                char *attrs[] = {"defaultNamingContext", NULL};
                asked(p, ob_dir_read_start(p->d, "", attrs, on_dirsync_root, p));
                return;
        }
        if (!p->usn) {
                ask_stamped(p);
                return;
        }
        char *attrs[] = {"highestCommittedUSN", "dsServiceName", "defaultNamingContext", NULL};
        asked(p, ob_dir_read_start(p->d, "", attrs, on_root, p));
}

int ob_poll_start(struct ob_dir *d, struct ob_loop *l, int64_t interval_ms, bool dirsync, const char *cookie,
                  size_t cookie_len, const struct ob_poll_ops *ops, void *ud, struct ob_poll **ret)
{
        if (!d || !l || !ops || interval_ms <= 0 || (dirsync && !ob_dir_is_ad(d)))
                return -EINVAL;
        struct ob_poll *p = calloc(1, sizeof(*p));
        char *c = dirsync && cookie && cookie_len ? malloc(cookie_len) : NULL;
        if (!p || (dirsync && cookie && cookie_len && !c)) {
                free(p);
                free(c);
                return -ENOMEM;
        }
        if (c)
                memcpy(c, cookie, cookie_len);
        *p = (struct ob_poll){.d = d,
                              .loop = l,
                              .interval_ms = interval_ms,
                              .ops = *ops,
                              .ud = ud,
                              .usn = ob_dir_is_ad(d) && !dirsync,
                              .dirsync = dirsync,
                              .cookie = c,
                              .cookie_len = c ? cookie_len : 0,
                              .resuming = c != NULL,
                              .newest = INT64_MIN};
        *ret = p;
        /* The first question from the loop, not from inside the caller. */
        if (ob_loop_timer(l, 0, on_tick, p, &p->timer) < 0) {
                free(p->cookie);
                free(p);
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

void ob_poll_free(struct ob_poll *p)
{
        if (!p)
                return;
        if (p->timer)
                ob_loop_timer_cancel(p->loop, p->timer);
        p->timer = NULL;
        if (p->in_flight) {
                p->dead = true; /* freed by the last answer (the connection's end cancels them) */
                return;
        }
        poll_destroy(p);
}

const char *ob_poll_kind(const struct ob_poll *p)
{
        return p->dirsync ? "dirsync" : p->usn ? "usn" : "timestamp";
}

const char *ob_poll_cookie(const struct ob_poll *p, size_t *ret_len)
{
        *ret_len = p && p->cookie ? p->cookie_len : 0;
        return p && p->cookie ? p->cookie : NULL;
}
