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
        bool deletions; /* the changelog alone, beside an RFC 4533 feed */
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
        /* 389-DS's Retro Changelog (modifyTimestamp polling sees no
         * deletion): after each modifyTimestamp question, the deletions
         * logged since cl_next, by the nsUniqueId of the entry. */
        enum { CL_UNKNOWN, CL_NONE, CL_READY } cl;
        char *cl_dn;                /* the root DSE's changelog: "cn=changelog" */
        uint64_t cl_next;           /* the first changeNumber not read yet */
        uint64_t cl_upto;           /* this question's last */
        uint64_t cl_first, cl_last; /* the root DSE's, while the changelog's entry is read */
        uint64_t cl_resume;         /* from a stored position (ob_poll_cookie), or 0 */
        bool cl_named;              /* the accounts' id is the nsUniqueId the records carry */
        bool cl_unnamed;            /* a record in scope named no account: a whole pass */
        int err; /* the question's failure, reported when it ends */
};

static void poll_cycle(struct ob_poll *p);
static void ask_changelog_root(struct ob_poll *p);

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
        free(p->cl_dn);
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
        if (p->cl == CL_NONE) {
                went_live(p);
                cycle_done(p);
                return;
        }
        ask_changelog_root(p);
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

/* ---- 389-DS's Retro Changelog: deletions --------------------------------- */

/* The changelog is not used (why says it): deletions are left to the whole
 * passes, as before; said once, when the feed starts. */
static void changelog_none(struct ob_poll *p, int level, const char *why)
{
        p->cl = CL_NONE;
        ob_log(level, "event=feed_changelog state=unused reason=%s note=\"deletions are found by the whole passes "
                      "only\"",
               ob_log_quote(why));
        if (p->ops.changelog_unusable)
                p->ops.changelog_unusable(why, p->ud);
}

/* The position to resume from, as ob_poll_cookie keeps it. */
static void changelog_position(struct ob_poll *p)
{
        free(p->cookie);
        p->cookie = NULL;
        p->cookie_len = 0;
        if (p->cl == CL_READY && asprintf(&p->cookie, "changelog:%" PRIu64, p->cl_next) >= 0)
                p->cookie_len = strlen(p->cookie);
        else
                p->cookie = NULL;
}

static int on_changelog_record(const struct ob_account *a, void *ud)
{
        struct ob_poll *p = ud;
        const char *id = ob_account_get(a, "targetUniqueId");
        const char *target = ob_account_get(a, "targetDn");
        if (target && !ob_dir_in_scope(p->d, target))
                return 0; /* not an account offboard judges (a group, another subtree) */
        if (!p->cl_named || !id || !*id) {
                /* An account deleted that cannot be named (another id, or
                 * the plugin maps no nsuniqueid:targetUniqueId): a whole
                 * pass finds it. */
                p->cl_unnamed = true;
                return 0;
        }
        p->ops.change(NULL, id, NULL, p->ud);
        return p->dead ? -ECANCELED : 0;
}

static void on_changelog_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct ob_poll *p = ud;
        (void)info;
        if (!answer_ok(p, result))
                return;
        p->cl_next = p->cl_upto + 1;
        changelog_position(p);
        if (p->cl_unnamed) {
                p->cl_unnamed = false;
                p->ops.resync(p->cl_named ? "the changelog logged a deletion without targetUniqueId (the Retro "
                                            "Changelog Plugin needs nsslapd-attribute: nsuniqueid:targetUniqueId)"
                                          : "the changelog logged a deletion, and the accounts' id is not nsUniqueId",
                              p->ud);
        }
        cycle_done(p);
}

/* What the root DSE says of the changelog (first and last changeNumber):
 * the deletions since cl_next, at most OB_POLL_CHANGELOG_BATCH a question. */
static void ask_changelog(struct ob_poll *p, uint64_t first, uint64_t last)
{
        if (!p->started) {
                /* From now on; or from a stored position the changelog
                 * still holds (what it no longer holds, the whole pass that
                 * going live asks for finds). */
                p->cl_next = last + 1;
                if (p->cl_resume && p->cl_resume >= first && p->cl_resume <= last + 1)
                        p->cl_next = p->cl_resume;
                changelog_position(p);
                went_live(p);
                cycle_done(p);
                return;
        }
        const char *why = NULL;
        if (last + 1 < p->cl_next)
                why = "the changelog's lastchangenumber went back (a new changelog)";
        else if (first > p->cl_next && p->cl_next <= last)
                why = "the changelog was trimmed past records not read yet";
        if (why) {
                ob_log(OB_LOG_WARNING, "event=feed_resync feed=poll kind=timestamp reason=%s", ob_log_quote(why));
                p->cl_next = last + 1;
                changelog_position(p);
                p->ops.resync(why, p->ud);
                cycle_done(p);
                return;
        }
        if (last < p->cl_next) {
                cycle_done(p); /* nothing logged since */
                return;
        }
        p->cl_upto = last - p->cl_next >= OB_POLL_CHANGELOG_BATCH ? p->cl_next + OB_POLL_CHANGELOG_BATCH - 1 : last;
        char filter[128];
        snprintf(filter, sizeof(filter), "(&(changeType=delete)(changeNumber>=%" PRIu64 ")(changeNumber<=%" PRIu64 "))",
                 p->cl_next, p->cl_upto);
        char *attrs[] = {"targetUniqueId", "targetDn", "changeNumber", NULL};
        asked(p, ob_dir_search_changelog_start(p->d, p->cl_dn, filter, attrs, on_changelog_record,
                                                on_changelog_done, p));
}

/* The changelog's entry itself, read once: whether the service account may
 * read it (389-DS lets only Directory Manager by default, and a record it
 * cannot read is not returned at all: no answer would ever say so). */
static void on_changelog_base(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        (void)a;
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        if (err == -OB_ENOTFOUND) {
                changelog_none(p, OB_LOG_WARNING,
                               "the server has a changelog the service account cannot read (an ACI on it "
                               "allowing read and search is needed)");
                went_live(p);
                cycle_done(p);
                return;
        }
        if (err < 0) {
                cycle_failed(p, err); /* an error is an error: never "no changelog" */
                return;
        }
        p->cl = CL_READY;
        ob_log(OB_LOG_INFO, "event=feed_changelog state=used base=%s named=%s note=\"deletions are read from it "
                            "after each poll\"",
               ob_log_quote(p->cl_dn), p->cl_named ? "yes" : "no");
        ask_changelog(p, p->cl_first, p->cl_last);
}

static void on_changelog_root(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_poll *p = ud;
        if (!answered(p))
                return;
        if (err < 0 && err != -OB_ENOTFOUND) {
                cycle_failed(p, err);
                return;
        }
        /* A root DSE the account cannot read names no changelog. */
        const char *cl = a ? ob_account_get(a, "changelog") : NULL;
        const char *f = a ? ob_account_get(a, "firstchangenumber") : NULL;
        const char *l = a ? ob_account_get(a, "lastchangenumber") : NULL;
        uint64_t first = 0, last = 0;
        if (!cl || !*cl) {
                if (p->cl == CL_READY) {
                        /* Turned off meanwhile: what it may have missed, a
                         * whole pass finds. */
                        changelog_none(p, OB_LOG_WARNING, "the root DSE no longer names a changelog");
                        changelog_position(p);
                        p->ops.resync("the changelog went away", p->ud);
                } else {
                        changelog_none(p, OB_LOG_INFO, "the root DSE names no changelog (389-DS: the Retro "
                                                       "Changelog Plugin is off)");
                        went_live(p);
                }
                cycle_done(p);
                return;
        }
        if ((f && ob_parse_u64(f, &first) < 0) || (l && ob_parse_u64(l, &last) < 0)) {
                ob_log(OB_LOG_ERROR, "event=poll_failed kind=timestamp note=\"the root DSE's first or "
                                     "lastchangenumber is not a number\"");
                cycle_failed(p, -OB_EDIRECTORY);
                return;
        }
        if (p->cl == CL_UNKNOWN) {
                free(p->cl_dn);
                if (!(p->cl_dn = strdup(cl))) {
                        cycle_failed(p, -ENOMEM);
                        return;
                }
                p->cl_first = first;
                p->cl_last = last;
                char *attrs[] = {"objectClass", NULL};
                asked(p, ob_dir_read_start(p->d, p->cl_dn, attrs, on_changelog_base, p));
                return;
        }
        ask_changelog(p, first, last);
}

static void ask_changelog_root(struct ob_poll *p)
{
        char *attrs[] = {"changelog", "firstchangenumber", "lastchangenumber", NULL};
        asked(p, ob_dir_read_start(p->d, "", attrs, on_changelog_root, p));
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
        if (p->deletions) {
                if (p->cl != CL_NONE) /* none: the whole passes find deletions */
                        ask_changelog_root(p);
                return;
        }
        if (!p->usn) {
                ask_stamped(p);
                return;
        }
        char *attrs[] = {"highestCommittedUSN", "dsServiceName", "defaultNamingContext", NULL};
        asked(p, ob_dir_read_start(p->d, "", attrs, on_root, p));
}

int ob_poll_start(struct ob_dir *d, struct ob_loop *l, int64_t interval_ms, enum ob_poll_mode mode, bool changelog,
                  const char *cookie, size_t cookie_len, const struct ob_poll_ops *ops, void *ud,
                  struct ob_poll **ret)
{
        bool dirsync = mode == OB_POLL_DIRSYNC, deletions = mode == OB_POLL_DELETIONS;
        if (!d || !l || !ops || interval_ms <= 0 || (dirsync && !ob_dir_is_ad(d)) ||
            (deletions && (ob_dir_is_ad(d) || !changelog)))
                return -EINVAL;
        if (deletions)
                cookie = NULL; /* from now on: the whole pass after going live covers the rest */
        struct ob_poll *p = calloc(1, sizeof(*p));
        char *c = dirsync && cookie && cookie_len ? malloc(cookie_len) : NULL;
        /* modifyTimestamp polling's changelog position ("changelog:N"). */
        uint64_t resume = 0;
        char pos[32];
        if (!dirsync && !ob_dir_is_ad(d) && cookie && cookie_len > 10 && cookie_len < sizeof(pos) &&
            memcmp(cookie, "changelog:", 10) == 0) {
                memcpy(pos, cookie + 10, cookie_len - 10);
                pos[cookie_len - 10] = '\0';
                if (ob_parse_u64(pos, &resume) < 0)
                        resume = 0;
        }
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
                              .deletions = deletions,
                              .cl = changelog ? CL_UNKNOWN : CL_NONE,
                              .cookie = c,
                              .cookie_len = c ? cookie_len : 0,
                              .resuming = c != NULL,
                              .newest = INT64_MIN,
                              .cl_resume = resume,
                              .cl_named = strcasecmp(ob_dir_id_attribute(d), "nsUniqueId") == 0};
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
        return p->dirsync ? "dirsync" : p->usn ? "usn" : p->deletions ? "changelog" : "timestamp";
}

const char *ob_poll_cookie(const struct ob_poll *p, size_t *ret_len)
{
        *ret_len = p && p->cookie ? p->cookie_len : 0;
        return p && p->cookie ? p->cookie : NULL;
}
