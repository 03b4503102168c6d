/* service.c: `offboard run` (service.h). */
#define _GNU_SOURCE
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "directory.h"
#include "feed_poll.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "state.h"
#include "util.h"

/* A pass that could not reach the directory is tried again after 1 s, 2 s,
 * 4 s ... up to this, with full jitter, and never later than the interval. */
#define OB_SERVICE_MAX_BACKOFF_MS (5 * 60 * 1000)
/* The feed is started again within a second of the server answering again
 * (its backlog must be cleared soon after): tries at most this (plus 100 ms
 * and jitter) apart, a connection attempt each, one log line per outage. */
#define OB_FEED_MAX_BACKOFF_MS 500
/* A deletion heard again within this (the changelog is read every
 * poll_interval, after the feed pushed it) is the same one. Deletions
 * remembered at most: more at once are each acted on (a pass that finds
 * nothing owed does nothing). */
#define OB_SERVICE_GONE 256
#define OB_SERVICE_GONE_MS (10 * 60 * 1000)

struct service {
        const char *config_path;
        struct ob_metrics *metrics; /* /healthz and /metrics (service.listen), or counters only */
        struct ob_config *cfg; /* in use; the agent borrows it */
        struct ob_agent *ag;
        FILE *devnull;         /* the per-pass report: the log line says what matters */
        struct ob_timer *pass_timer;
        struct ob_timer *watchdog_timer;
        int64_t watchdog_ms;
        bool pass_due;
        bool in_pass;    /* a pass runs (its loop turns dispatch the feed's events) */
        bool pass_again; /* a change came during the pass: pass again after it */
        bool stopping;
        unsigned failures; /* passes in a row that could not reach the directory */
        uint64_t passes;
        /* The change feed: its own connection, on the agent's loop; a
         * syncrepl search on it, or a poll. */
        struct ob_dir *feed;
        struct ob_poll *poll;
        /* Beside a syncrepl feed, on its connection: the deletions 389-DS's
         * Retro Changelog logs, a second source of those the feed pushes. */
        struct ob_poll *deletions;
        struct ob_timer *refuse_timer; /* service.changelog: require, and it cannot be read */
        /* The deletions acted on lately (ids), oldest overwritten: one heard
         * from both sources is acted on once. */
        struct gone {
                char *id;
                int64_t at; /* ob_loop_now_ms */
        } gone[OB_SERVICE_GONE];
        size_t gone_next;
        uint64_t feed_duplicates;
        bool feed_live;        /* the refresh stage ended: events are changes as they happen */
        char *cookie;          /* the newest the server gave, to resume from */
        size_t cookie_len;
        unsigned feed_failures; /* starts in a row that failed */
        struct ob_timer *feed_timer;
        uint64_t feed_events, feed_own; /* changes heard; of them, our own write-backs */
        /* Changes heard and not yet acted on: each is a pass over those
         * accounts alone, right away (the feed names them by entryUUID). */
        bool targeted;            /* the accounts' id is what the feed names (entryUUID, nsUniqueId) */
        bool nsuniqueid;          /* 389-DS: the feed's syncUUID is the nsUniqueId's bytes */
        struct ob_change *pending;
        size_t npending, pending_cap;
        uint64_t change_passes;
        size_t population;        /* accounts the last complete whole pass read */
        bool whole_done;          /* a whole pass completed: passes over changes may run */
        int64_t pass_at;          /* when pass_timer fires (ob_loop_now_ms) */
        /* The circuit breaker's sliding window: status changes let through,
         * oldest first, forgotten after safety.window. */
        struct window_entry *win;
        size_t nwin, win_cap;
        struct ob_report_count *win_counts; /* the window summed, for ob_breaker_prior */
};

struct window_entry {
        int64_t at; /* ob_loop_now_ms */
        char *transition;
        size_t n;
};

/* Changes waiting beyond this are not worth a pass each: one whole pass
 * covers them, and the memory stays bounded during an outage. */
#define OB_SERVICE_MAX_PENDING 1024

/* The feed's cookie in the state store: "<hash of the search>:<hex>". A
 * cookie is good only for the search it came from (RFC 4533 3.1: the same
 * server, base, scope, filter), so it is kept with a hash of those. */
#define OB_FEED_COOKIE_KEY "feed-cookie"

static uint64_t feed_search_hash(const struct ob_config *c)
{
        const struct ob_directory_config *d = &c->directory;
        /* A DirSync cookie is no syncrepl cookie. */
        const char *parts[] = {d->uri, d->base, d->filter, d->bind_dn ? d->bind_dn : "",
                               d->scope == OB_SCOPE_BASE ? "base" : d->scope == OB_SCOPE_ONE ? "one" : "sub",
                               c->feed == OB_FEED_DIRSYNC ? "dirsync" : ""};
        uint64_t h = 14695981039346656037ULL;
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
                for (const char *p = parts[i]; p && *p; p++)
                        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        return h;
}

/* Remembers cookie (len bytes) as covered: every change before it has
 * been read by a complete pass. Best effort: without it a restart refreshes
 * from the whole content, which costs time, not changes. */
static void feed_cookie_store(struct service *s, const char *cookie, size_t len)
{
        char *v = malloc(17 + 2 * len + 1);
        if (!v)
                return;
        int n = snprintf(v, 18, "%016llx:", (unsigned long long)feed_search_hash(s->cfg));
        for (size_t i = 0; i < len; i++)
                snprintf(v + n + 2 * i, 3, "%02x", (unsigned char)cookie[i]);
        if (ob_state_meta_put(s->ag->state, OB_FEED_COOKIE_KEY, v) < 0)
                ob_log(OB_LOG_WARNING, "event=feed_cookie_not_stored error=%s",
                       ob_log_quote(ob_state_errmsg(s->ag->state)));
        free(v);
}

/* The stored cookie, when it belongs to the search configured now. */
static void feed_cookie_load(struct service *s)
{
        char *v = NULL;
        if (ob_state_meta_get(s->ag->state, OB_FEED_COOKIE_KEY, &v) < 0 || !v)
                return;
        char want[18];
        snprintf(want, sizeof(want), "%016llx:", (unsigned long long)feed_search_hash(s->cfg));
        size_t hex = strlen(v) > 17 ? strlen(v) - 17 : 0;
        if (strncmp(v, want, 17) != 0 || hex % 2 != 0 || hex == 0) {
                free(v);
                return; /* another search's, or none: a full refresh */
        }
        char *c = malloc(hex / 2);
        for (size_t i = 0; c && i < hex / 2; i++) {
                unsigned x;
                if (sscanf(v + 17 + 2 * i, "%2x", &x) != 1) {
                        free(c);
                        c = NULL;
                        break;
                }
                c[i] = (char)x;
        }
        free(v);
        if (!c)
                return;
        free(s->cookie);
        s->cookie = c;
        s->cookie_len = hex / 2;
        ob_log(OB_LOG_INFO, "event=feed_cookie_loaded note=\"the feed resumes from where the last complete pass "
                            "left it\"");
}

/* A change must be acted on soon: the next pass starts within this. The
 * short wait gathers the modifies of one admin operation into one pass. */
#define OB_FEED_DEBOUNCE_MS 20

static void on_pass_due(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct service *s = ud;
        s->pass_timer = NULL;
        s->pass_due = true;
        /* During a pass the loop is the pass's: stopping it would cut the
         * pass short; the main loop takes pass_due once the pass is over. */
        if (!s->in_pass)
                ob_loop_stop(l);
}

/* Fed from the loop: a loop that no longer turns is a hung service. */
static void on_watchdog(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct service *s = ud;
        ob_notify("WATCHDOG=1");
        if (ob_loop_timer(l, s->watchdog_ms, on_watchdog, s, &s->watchdog_timer) < 0)
                s->watchdog_timer = NULL;
}

static void schedule_pass(struct service *s, int64_t delay_ms)
{
        if (s->pass_timer)
                ob_loop_timer_cancel(s->ag->loop, s->pass_timer);
        s->pass_timer = NULL;
        s->pass_at = ob_loop_now_ms() + delay_ms;
        if (ob_loop_timer(s->ag->loop, delay_ms, on_pass_due, s, &s->pass_timer) < 0) {
                /* No timer: pass again at once rather than never. */
                s->pass_timer = NULL;
                s->pass_due = true;
        }
}

/* The delay before try number failures (1, 2, ...) of something that keeps
 * failing: 1 s, 2 s, 4 s ... up to max, with full jitter and at least 100 ms,
 * so that many agents do not all come back at once. */
static int64_t backoff(unsigned failures, int64_t max)
{
        int64_t cap = 1000;
        for (unsigned i = 1; i < failures && cap < max; i++)
                cap *= 2;
        if (cap > max)
                cap = max;
        return 100 + (int64_t)(((uint64_t)rand() << 16 ^ (uint64_t)rand()) % (uint64_t)(cap > 0 ? cap : 1));
}

/* The delay after a pass that ended with code: the interval, or a backoff
 * while the directory cannot be reached. */
static int64_t next_delay(struct service *s, int code)
{
        int64_t interval = s->cfg->full_pass_interval_ms;
        if (code != OB_EXIT_DIRECTORY) {
                if (s->failures)
                        ob_log(OB_LOG_INFO, "event=directory_back failed_passes=%u", s->failures);
                s->failures = 0;
                return interval;
        }
        if (s->failures++ == 0)
                ob_log(OB_LOG_ERROR,
                       "event=directory_unusable note=\"passes are tried again with a growing delay; one line per "
                       "outage\"");
        int64_t d = backoff(s->failures, OB_SERVICE_MAX_BACKOFF_MS < interval ? OB_SERVICE_MAX_BACKOFF_MS : interval);
        return d < interval ? d : interval;
}

/* A pass as soon as possible (a change came): now if none runs, else right
 * after the one running. */
static void pass_soon(struct service *s)
{
        if (s->in_pass) {
                s->pass_again = true;
                return;
        }
        schedule_pass(s, OB_FEED_DEBOUNCE_MS);
}

/* Whether dn (the modifiersName of a change) is the service account: its
 * own write-back coming back through the feed triggers nothing. */
static bool is_own(const struct service *s, const char *dn)
{
        const char *me = s->cfg->directory.bind_dn;
        return me && dn && ob_dn_in_subtree(dn, me) == 1 && ob_dn_in_subtree(me, dn) == 1;
}

static void pending_clear(struct service *s)
{
        for (size_t i = 0; i < s->npending; i++) {
                free((char *)s->pending[i].dn);
                free((char *)s->pending[i].id);
        }
        s->npending = 0;
}

/* Remembers a change of the account id (its entry dn; NULL: deleted). The
 * newest change of an account wins. Fails when too many wait: a whole pass
 * then covers them. */
static int pending_add(struct service *s, const char *dn, const char *id)
{
        char *d = dn ? strdup(dn) : NULL;
        if (dn && !d)
                return -ENOMEM;
        for (size_t i = 0; i < s->npending; i++)
                if (strcasecmp(s->pending[i].id, id) == 0) {
                        free((char *)s->pending[i].dn);
                        s->pending[i].dn = d;
                        return 0;
                }
        char *i = strdup(id);
        if (!i || s->npending >= OB_SERVICE_MAX_PENDING) {
                free(d);
                free(i);
                return -OB_ELIMIT;
        }
        if (s->npending == s->pending_cap) {
                size_t cap = s->pending_cap ? 2 * s->pending_cap : 16;
                struct ob_change *n = realloc(s->pending, cap * sizeof(*n));
                if (!n) {
                        free(d);
                        free(i);
                        return -ENOMEM;
                }
                s->pending = n;
                s->pending_cap = cap;
        }
        s->pending[s->npending++] = (struct ob_change){.dn = d, .id = i};
        return 0;
}

/* Whether the deletion of id was heard lately (from the other source);
 * else it is remembered as heard now. */
static bool gone_before(struct service *s, const char *id)
{
        int64_t now = ob_loop_now_ms();
        for (size_t i = 0; i < OB_SERVICE_GONE; i++)
                if (s->gone[i].id && now - s->gone[i].at < OB_SERVICE_GONE_MS && strcasecmp(s->gone[i].id, id) == 0)
                        return true;
        struct gone *g = &s->gone[s->gone_next];
        char *c = strdup(id);
        if (!c)
                return false; /* acted on again: the pass finds nothing owed */
        free(g->id);
        *g = (struct gone){.id = c, .at = now};
        s->gone_next = (s->gone_next + 1) % OB_SERVICE_GONE;
        return false;
}

static void gone_free(struct service *s)
{
        for (size_t i = 0; i < OB_SERVICE_GONE; i++)
                free(s->gone[i].id);
}

/* The account id (entry dn; NULL: deleted) changed: a pass over it now, or
 * right after the pass running. A deletion heard from the feed and from
 * the changelog is acted on once. */
static void feed_change(struct service *s, const char *dn, const char *id)
{
        if (!dn && gone_before(s, id)) {
                s->feed_duplicates++;
                ob_log(OB_LOG_INFO,
                       "event=feed_duplicate_deletion id=%s note=\"heard from the feed and the changelog: acted on "
                       "once\"",
                       ob_log_quote(id));
                return;
        }
        if (pending_add(s, dn, id) < 0) {
                pass_soon(s); /* too many waiting: one whole pass covers them */
                return;
        }
        if (!s->in_pass)
                ob_loop_stop(s->ag->loop); /* the main loop runs a pass over it now */
}

static void feed_went_live(struct service *s, const char *feed)
{
        s->feed_live = true;
        ob_metrics_feed_state(s->metrics, s->poll ? "poll" : "syncrepl", OB_METRICS_FEED_LIVE);
        if (s->feed_failures)
                ob_log(OB_LOG_INFO, "event=feed_back feed=%s failed_starts=%u", feed, s->feed_failures);
        else
                ob_log(OB_LOG_INFO, "event=feed_live feed=%s", feed);
        s->feed_failures = 0;
        /* What changed while the feed was not live is found by a pass. */
        pass_soon(s);
}

/* 389-DS's syncUUID is the 16 bytes of the entry's nsUniqueId
 * (sync_nsuniqueid2uuid in its content sync plugin): the text the feed
 * gives, 8-4-4-4-12 hex digits, becomes nsUniqueId's 8-8-8-8. */
static void nsuniqueid_of(const char *uuid, char out[37])
{
        char hex[33];
        size_t n = 0;
        for (const char *p = uuid; *p && n < 32; p++)
                if (*p != '-')
                        hex[n++] = *p;
        hex[n] = '\0';
        if (n != 32) {
                snprintf(out, 37, "%s", uuid); /* not one: named as it came, found by no account */
                return;
        }
        snprintf(out, 37, "%.8s-%.8s-%.8s-%.8s", hex, hex + 8, hex + 16, hex + 24);
}

static void on_feed_event(const struct ob_sync_event *ev, void *ud)
{
        struct service *s = ud;
        if (s->refuse_timer)
                return; /* refused (service.changelog: require): stopped from the loop's next turn */
        if (ev->kind == OB_SYNC_REFRESH_DONE) {
                feed_went_live(s, "syncrepl");
                return;
        }
        if (ev->refreshing || ev->kind == OB_SYNC_PRESENT || ev->kind == OB_SYNC_IDSET_PRESENTS)
                return; /* the pass after the refresh reads every account anyway */
        s->feed_events++;
        bool own = (ev->kind == OB_SYNC_MODIFY || ev->kind == OB_SYNC_ADD) && is_own(s, ev->modifiers_name);
        ob_metrics_feed_event(s->metrics, own);
        if (own) {
                s->feed_own++;
                return;
        }
        ob_log(OB_LOG_DEBUG, "event=feed_change kind=%d dn=%s uuid=%s", (int)ev->kind,
               ob_log_quote(ev->dn ? ev->dn : ""), ev->uuid);
        bool named = ev->uuid[0] && (ev->kind == OB_SYNC_DELETE || ev->dn);
        if (!s->targeted || !named) {
                pass_soon(s);
                return;
        }
        char id[37];
        if (s->nsuniqueid)
                nsuniqueid_of(ev->uuid, id);
        else
                memcpy(id, ev->uuid, sizeof(id));
        feed_change(s, ev->kind == OB_SYNC_DELETE ? NULL : ev->dn, id);
}

static void feed_start(struct service *s);

static void on_feed_retry(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct service *s = ud;
        s->feed_timer = NULL;
        feed_start(s);
}

/* The feed failed or ended: start it again after a jittered backoff (one
 * log line per outage), resuming from the newest cookie. */
static void feed_retry(struct service *s, int err)
{
        s->feed_live = false;
        ob_metrics_feed_state(s->metrics, s->poll ? "poll" : "syncrepl", OB_METRICS_FEED_DOWN);
        /* The search and the changelog's questions share the connection:
         * both end with it. A refused feed is not started again. */
        if (s->stopping || s->feed_timer || s->refuse_timer)
                return;
        if (s->feed_failures++ == 0)
                ob_log(OB_LOG_WARNING,
                       "event=feed_down error=%s note=\"passes go on at their interval; the feed is tried again "
                       "every half second or so; one line per outage\"",
                       ob_log_quote(ob_strerror(err)));
        /* The passes' session to the same server is most likely gone too:
         * the next pass connects afresh rather than failing on it first. */
        if (!s->in_pass)
                ob_agent_drop_dir(s->ag);
        int64_t d = backoff(s->feed_failures, OB_FEED_MAX_BACKOFF_MS);
        if (ob_loop_timer(s->ag->loop, d, on_feed_retry, s, &s->feed_timer) < 0)
                s->feed_timer = NULL;
}

static void on_feed_end(int result, const char *cookie, size_t cookie_len, void *ud)
{
        struct service *s = ud;
        free(s->cookie);
        s->cookie = NULL;
        s->cookie_len = 0;
        /* A feed that ended before its refresh was done may have ended on
         * its cookie: a server refuses one it cannot resume from with
         * e-syncRefreshRequired, but also with other codes (slapd: 53 for a
         * cookie ahead of it). The next start then refreshes from the whole
         * content rather than trying the same cookie for ever. */
        bool refused = result == -OB_ESYNCREFRESH || (!s->feed_live && result != -ECANCELED);
        if (cookie && !refused && (s->cookie = malloc(cookie_len ? cookie_len : 1))) {
                memcpy(s->cookie, cookie, cookie_len);
                s->cookie_len = cookie_len;
        }
        if (result == -ECANCELED)
                return; /* let go by the service itself */
        if (refused)
                ob_log(OB_LOG_INFO, "event=feed_refresh_required note=\"starting again from the full content\"");
        /* The connection is let go from the retry timer, not from inside its
         * own callback. */
        feed_retry(s, result);
}

static void on_poll_change(const char *dn, const char *id, const char *modifiers_name, void *ud)
{
        struct service *s = ud;
        if (s->refuse_timer)
                return;
        s->feed_events++;
        bool own = is_own(s, modifiers_name);
        ob_metrics_feed_event(s->metrics, own);
        if (own) {
                s->feed_own++;
                return;
        }
        feed_change(s, dn, id);
}

static void on_poll_live(const char *kind, void *ud)
{
        struct service *s = ud;
        if (s->refuse_timer)
                return;
        char feed[32];
        snprintf(feed, sizeof(feed), "poll kind=%s", kind);
        feed_went_live(s, feed);
}

static void on_poll_resync(const char *why, void *ud)
{
        (void)why;
        pass_soon(ud);
}

static void on_poll_failed(int err, void *ud)
{
        struct service *s = ud;
        if (!s->feed_live && s->cookie) {
                /* The DirSync cookie it resumed from may be what the server
                 * refuses: the next start begins afresh (the whole pass after
                 * going live covers the gap). */
                free(s->cookie);
                s->cookie = NULL;
                s->cookie_len = 0;
                ob_log(OB_LOG_INFO, "event=feed_refresh_required note=\"starting again without the stored cookie\"");
        }
        feed_retry(s, err);
}

static void feed_stop(struct service *s)
{
        ob_poll_free(s->poll); /* first: the connection's end cancels its questions */
        s->poll = NULL;
        ob_poll_free(s->deletions);
        s->deletions = NULL;
        if (s->refuse_timer)
                ob_loop_timer_cancel(s->ag->loop, s->refuse_timer);
        s->refuse_timer = NULL;
        ob_dir_free(s->feed);
        s->feed = NULL;
}

/* service.changelog: require, and the feed cannot read it: the feed stops
 * (from the loop, not inside its own callback) rather than go on as if
 * deletions were heard; the passes go on at their interval. */
static void on_changelog_refused(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct service *s = ud;
        s->refuse_timer = NULL;
        feed_stop(s);
        s->feed_live = false;
        ob_metrics_feed_state(s->metrics, "none", OB_METRICS_FEED_NONE);
}

static void changelog_refuse(struct service *s, const char *why)
{
        ob_log(OB_LOG_ERROR,
               "event=feed_unavailable feed=changelog reason=%s note=\"service.changelog is require: the feed "
               "stops (deletions are not heard); passes go on at their interval\"",
               ob_log_quote(why));
        if (!s->refuse_timer && ob_loop_timer(s->ag->loop, 0, on_changelog_refused, s, &s->refuse_timer) < 0)
                s->refuse_timer = NULL;
}

static void on_changelog_unusable(const char *why, void *ud)
{
        struct service *s = ud;
        if (s->cfg->changelog == OB_CHANGELOG_REQUIRE)
                changelog_refuse(s, why);
}

static void on_deletions_live(const char *kind, void *ud)
{
        (void)kind;
        (void)ud; /* the syncrepl feed's refresh says when changes are heard */
}

static void on_deletions_failed(int err, void *ud)
{
        feed_retry(ud, err); /* from the newest cookie: the connection is most likely gone */
}

static void feed_start(struct service *s)
{
        feed_stop(s);
        if (s->cfg->feed == OB_FEED_NONE || s->stopping) {
                ob_metrics_feed_state(s->metrics, "none", OB_METRICS_FEED_NONE);
                return;
        }
        /* During an outage each try would say again what its first said. */
        ob_log_set_quiet(s->feed_failures > 0);
        int k = ob_dir_open_on(s->ag->loop, &s->cfg->directory, &s->feed);
        ob_log_set_quiet(false);
        if (k == 0)
                k = ob_dir_attach(s->feed, s->ag->loop);
        if (k == 0 && s->cfg->changelog == OB_CHANGELOG_REQUIRE && ob_dir_is_ad(s->feed)) {
                ob_log(OB_LOG_ERROR, "event=feed_unavailable feed=changelog reason=\"Active Directory has no Retro "
                                     "Changelog\" note=\"service.changelog is require: no feed; passes go on at "
                                     "their interval\"");
                feed_stop(s);
                ob_metrics_feed_state(s->metrics, "none", OB_METRICS_FEED_NONE);
                return;
        }
        if (k == 0 && s->cfg->feed == OB_FEED_DIRSYNC && !ob_dir_is_ad(s->feed)) {
                ob_log(OB_LOG_ERROR, "event=feed_unavailable feed=dirsync note=\"DirSync is Active Directory's; "
                                     "passes go on at their interval\"");
                feed_stop(s);
                ob_metrics_feed_state(s->metrics, "none", OB_METRICS_FEED_NONE);
                return;
        }
        if (k == 0 && (!ob_dir_has_sync(s->feed) || s->cfg->feed == OB_FEED_POLL || s->cfg->feed == OB_FEED_DIRSYNC)) {
                if (s->cfg->feed == OB_FEED_SYNCREPL) {
                        ob_log(OB_LOG_ERROR,
                               "event=feed_unavailable feed=syncrepl note=\"the server does not offer RFC 4533 "
                               "content synchronization (OpenLDAP: overlay syncprov); passes go on at their "
                               "interval\"");
                        feed_stop(s);
                        ob_metrics_feed_state(s->metrics, "none", OB_METRICS_FEED_NONE);
                        return;
                }
                /* Active Directory by uSNChanged, any other server by
                 * modifyTimestamp, every poll_interval. */
                static const struct ob_poll_ops ops = {.change = on_poll_change,
                                                       .live = on_poll_live,
                                                       .resync = on_poll_resync,
                                                       .failed = on_poll_failed,
                                                       .changelog_unusable = on_changelog_unusable};
                bool dirsync = s->cfg->feed == OB_FEED_DIRSYNC;
                /* DirSync's cookie, or where 389-DS's changelog was read to. */
                k = ob_poll_start(s->feed, s->ag->loop, s->cfg->poll_interval_ms,
                                  dirsync ? OB_POLL_DIRSYNC : OB_POLL_CHANGES, s->cfg->changelog != OB_CHANGELOG_OFF,
                                  s->cookie, s->cookie_len, &ops, s, &s->poll);
                if (k < 0)
                        feed_retry(s, k);
                else
                        ob_metrics_feed_state(s->metrics, "poll", OB_METRICS_FEED_STARTING);
                return;
        }
        /* Only what tells a change from our own write-back: the pass reads
         * the accounts themselves. */
        char *attrs[] = {"modifiersName", NULL};
        if (k == 0)
                k = ob_dir_sync_start(s->feed, s->cookie, s->cookie_len, attrs, on_feed_event, on_feed_end, s);
        /* Deletions have a second source where the server keeps a Retro
         * Changelog (389-DS): its questions on the same connection. A
         * server that names none (OpenLDAP) is asked once. */
        if (k == 0 && s->cfg->changelog != OB_CHANGELOG_OFF) {
                static const struct ob_poll_ops dops = {.change = on_poll_change,
                                                        .live = on_deletions_live,
                                                        .resync = on_poll_resync,
                                                        .failed = on_deletions_failed,
                                                        .changelog_unusable = on_changelog_unusable};
                k = ob_poll_start(s->feed, s->ag->loop, s->cfg->poll_interval_ms, OB_POLL_DELETIONS, true, NULL, 0,
                                  &dops, s, &s->deletions);
        }
        if (k < 0)
                feed_retry(s, k);
        else
                ob_metrics_feed_state(s->metrics, "syncrepl", OB_METRICS_FEED_STARTING);
}

/* ---- the circuit breaker's sliding window --------------------------------- */

static void window_prune(struct service *s, int64_t now)
{
        size_t drop = 0;
        while (drop < s->nwin && now - s->win[drop].at >= s->cfg->safety.window_ms)
                free(s->win[drop++].transition);
        if (drop) {
                memmove(s->win, s->win + drop, (s->nwin - drop) * sizeof(*s->win));
                s->nwin -= drop;
        }
}

/* What the window let through, for the next pass's circuit breaker (valid
 * until the window changes). */
static void window_prior(struct service *s, struct ob_breaker_prior *p)
{
        window_prune(s, ob_loop_now_ms());
        *p = (struct ob_breaker_prior){.population = s->population};
        free(s->win_counts);
        s->win_counts = s->nwin ? calloc(s->nwin, sizeof(*s->win_counts)) : NULL;
        for (size_t i = 0; i < s->nwin; i++) {
                const struct window_entry *w = &s->win[i];
                p->status_changes += w->n;
                if (!s->win_counts || !w->transition)
                        continue; /* out of memory: the total still counts */
                size_t j = 0;
                while (j < p->ncounts && strcmp(s->win_counts[j].transition, w->transition) != 0)
                        j++;
                if (j == p->ncounts)
                        s->win_counts[p->ncounts++].transition = w->transition;
                s->win_counts[j].n += w->n;
        }
        p->counts = s->win_counts;
}

/* The status changes a pass let through enter the window. */
static void window_add(struct service *s, const struct ob_pass_result *res)
{
        int64_t now = ob_loop_now_ms();
        for (size_t i = 0; i < res->ncounts; i++) {
                /* Changes of one transition within a second are one entry:
                 * the window's memory follows the seconds, not the changes. */
                struct window_entry *last = s->nwin ? &s->win[s->nwin - 1] : NULL;
                if (last && now - last->at < 1000 && last->transition &&
                    strcmp(last->transition, res->counts[i].transition) == 0) {
                        last->n += res->counts[i].n;
                        continue;
                }
                if (s->nwin == s->win_cap) {
                        size_t cap = s->win_cap ? 2 * s->win_cap : 64;
                        struct window_entry *n = realloc(s->win, cap * sizeof(*n));
                        if (!n)
                                return;
                        s->win = n;
                        s->win_cap = cap;
                }
                s->win[s->nwin++] = (struct window_entry){
                        .at = now, .transition = strdup(res->counts[i].transition), .n = res->counts[i].n};
        }
}

static void window_free(struct service *s)
{
        for (size_t i = 0; i < s->nwin; i++)
                free(s->win[i].transition);
        free(s->win);
        free(s->win_counts);
}

/* ---- passes ------------------------------------------------------------------ */

static void notify_status(struct service *s, const struct ob_pass_result *res, int code, int64_t ms)
{
        ob_notify("STATUS=pass %llu: exit %d in %lld ms, %zu accounts, %zu actions done, %zu failed, %zu held%s; "
                  "feed %s (%llu changes heard, %llu of them our own write-backs, %llu passes over changes, %zu "
                  "changes waiting); next pass in %lld s",
                  (unsigned long long)s->passes, code, (long long)ms, res->accounts_read, res->steps_done,
                  res->steps_failed, res->steps_held, res->parked ? ", plan PARKED (safety threshold)" : "",
                  s->feed_live ? "live" : s->feed || s->feed_timer ? "starting" : "none",
                  (unsigned long long)s->feed_events, (unsigned long long)s->feed_own,
                  (unsigned long long)s->change_passes, s->npending,
                  (long long)(s->pass_at - ob_loop_now_ms() + 999) / 1000);
}

/* Time fires on time: an end date or the end of a lockout changes a status
 * with nobody touching the entry, and no feed says so. The whole pass comes
 * just after that second when that is sooner than planned. */
static void pass_at_next_change(struct service *s, int64_t next_change)
{
        if (next_change == INT64_MAX)
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int64_t at = next_change > INT64_MAX / 1000 - 1 ? INT64_MAX : next_change * 1000 + 10;
        int64_t delay = at > now_ms ? at - now_ms : 0;
        if (s->pass_timer && ob_loop_now_ms() + delay >= s->pass_at)
                return;
        ob_log(OB_LOG_INFO, "event=pass_at_next_change at=%lld in_ms=%lld", (long long)next_change,
               (long long)delay);
        schedule_pass(s, delay);
}

/* A pass over the changes heard (each account the feed named, read and
 * carried out alone: milliseconds, whatever the size of the directory). */
static void run_change_pass(struct service *s)
{
        struct ob_change *changes = s->pending;
        size_t n = s->npending;
        /* What the feed hears during this pass waits for the next one. */
        s->pending = NULL;
        s->npending = s->pending_cap = 0;
        struct ob_pass_result res = {0};
        struct ob_breaker_prior prior;
        window_prior(s, &prior);
        /* The report goes nowhere: only its summary, so that no pass
         * spools every account's text to a temporary file for nothing. */
        struct ob_run_options o = {.out = s->devnull,
                                   .format = OB_FORMAT_TEXT,
                                   .summary = true,
                                   .result = &res,
                                   .changes = changes,
                                   .nchanges = n,
                                   .prior = &prior};
        int64_t t0 = ob_loop_now_ms();
        s->in_pass = true;
        ob_metrics_pass_start(s->metrics);
        int code = ob_agent_pass(s->ag, &o);
        s->in_pass = false;
        s->change_passes++;
        ob_metrics_pass(s->metrics, false, code, ob_loop_now_ms() - t0, res.steps_held, res.parked);
        window_add(s, &res);
        free(res.counts);
        fflush(s->devnull);
        int64_t ms = ob_loop_now_ms() - t0;
        ob_log(code == OB_EXIT_OK ? OB_LOG_INFO : OB_LOG_WARNING,
               "event=change_pass number=%llu changes=%zu exit=%d duration_ms=%lld accounts=%zu owed=%zu done=%zu "
               "failed=%zu held=%zu parked=%s whole_pass_needed=%s",
               (unsigned long long)s->change_passes, n, code, (long long)ms, res.accounts_read, res.steps_owed,
               res.steps_done, res.steps_failed, res.steps_held, res.parked ? "yes" : "no",
               res.incomplete || code == OB_EXIT_DIRECTORY ? "yes" : "no");
        if (res.parked)
                ob_log(OB_LOG_WARNING,
                       "event=parked scope=changes note=\"more status changes within safety.window than the "
                       "safety limits allow: nothing was done for these accounts; they wait, unrecorded, for a "
                       "human (see `offboard plan`)\"");
        for (size_t i = 0; i < n; i++) {
                free((char *)changes[i].dn);
                free((char *)changes[i].id);
        }
        free(changes);
        if (s->ag->stop_signal)
                return;
        /* What a pass over changes cannot judge alone (an entry gone from
         * the search or unreadable, the directory failing) a whole pass
         * decides, with every check a whole pass makes. */
        if (res.incomplete || code == OB_EXIT_DIRECTORY || s->pass_again) {
                /* Also what asked for a whole pass while this one ran (the
                 * feed back from an outage, a change it could not name). */
                s->pass_again = false;
                pass_soon(s);
        }
        pass_at_next_change(s, res.next_change);
        notify_status(s, &res, code, ms);
}

static void run_pass(struct service *s)
{
        struct ob_pass_result res = {0};
        struct ob_breaker_prior prior;
        window_prior(s, &prior);
        struct ob_run_options o = {
                .out = s->devnull, .format = OB_FORMAT_TEXT, .summary = true, .result = &res, .prior = &prior};
        int64_t t0 = ob_loop_now_ms();
        /* What the feed had said before the pass began, the pass covers. */
        size_t clen = 0;
        const char *cur = !s->feed_live ? NULL
                          : s->poll     ? ob_poll_cookie(s->poll, &clen)
                                        : ob_dir_sync_cookie(s->feed, &clen);
        char *covered = cur ? malloc(clen ? clen : 1) : NULL;
        if (covered)
                memcpy(covered, cur, clen);
        pending_clear(s); /* the changes heard so far: this pass reads every account */
        s->in_pass = true;
        s->pass_again = false;
        ob_metrics_pass_start(s->metrics);
        int code = ob_agent_pass(s->ag, &o);
        s->in_pass = false;
        ob_metrics_pass(s->metrics, true, code, ob_loop_now_ms() - t0, res.steps_held, res.parked);
        if (covered && (code == OB_EXIT_OK || code == OB_EXIT_FAILED))
                feed_cookie_store(s, covered, clen);
        free(covered);
        if (code == OB_EXIT_OK || code == OB_EXIT_FAILED) {
                s->population = res.accounts_read;
                s->whole_done = true;
        }
        window_add(s, &res);
        free(res.counts);
        int64_t ms = ob_loop_now_ms() - t0;
        s->passes++;
        fflush(s->devnull);
        ob_log(code == OB_EXIT_OK ? OB_LOG_INFO : OB_LOG_WARNING,
               "event=pass number=%llu exit=%d duration_ms=%lld accounts=%zu owed=%zu done=%zu failed=%zu held=%zu "
               "writebacks_failed=%zu unreadable=%zu parked=%s",
               (unsigned long long)s->passes, code, (long long)ms, res.accounts_read, res.steps_owed, res.steps_done,
               res.steps_failed, res.steps_held, res.writebacks_failed, res.unreadable, res.parked ? "yes" : "no");
        if (s->ag->stop_signal)
                return;
        int64_t delay = next_delay(s, code);
        if (s->pass_again && code != OB_EXIT_DIRECTORY)
                delay = OB_FEED_DEBOUNCE_MS; /* a change came while it ran */
        s->pass_again = false; /* taken: the pass scheduled here is it */
        schedule_pass(s, delay);
        pass_at_next_change(s, res.next_change);
        notify_status(s, &res, code, ms);
}

/* SIGHUP: a new configuration, only if it is valid and keeps the state store
 * and journal (the agent holds them open). */
static bool reload(struct service *s)
{
        struct ob_config *n = NULL;
        struct ob_config_error err;
        if (ob_config_load(s->config_path, &n, &err) < 0) {
                ob_log(OB_LOG_ERROR, "event=reload_refused error=%s line=%s note=\"the running configuration stays\"",
                       ob_log_quote(err.message), ob_log_quote(err.line));
                ob_notify("STATUS=reload refused: %s", err.message);
                return false;
        }
        const char *why = strcmp(n->state_path, s->cfg->state_path) != 0 ? "state.path"
                          : strcmp(n->journal_path, s->cfg->journal_path) != 0 ? "state.journal"
                                                                               : NULL;
        if (why) {
                ob_log(OB_LOG_ERROR,
                       "event=reload_refused setting=%s note=\"a new state store or journal needs a restart; the "
                       "running configuration stays\"",
                       why);
                ob_config_free(n);
                return false;
        }
        if (ob_metrics_listen(s->metrics, n->listen) < 0) {
                ob_log(OB_LOG_ERROR,
                       "event=reload_refused setting=service.listen listen=%s note=\"cannot listen there; the "
                       "running configuration stays\"",
                       ob_log_quote(n->listen ? n->listen : ""));
                ob_config_free(n);
                return false;
        }
        ob_agent_drop_dir(s->ag); /* opened with the old directory settings */
        s->ag->c = n;
        ob_config_free(s->cfg);
        s->cfg = n;
        ob_log(OB_LOG_INFO, "event=reloaded path=%s", ob_log_quote(s->config_path));
        return true;
}

int ob_service_run(const char *config_path, struct ob_config *cfg)
{
        struct service s = {.config_path = config_path,
                            .cfg = cfg,
                            .targeted = strcasecmp(cfg->directory.id_attribute, "entryUUID") == 0 ||
                                        strcasecmp(cfg->directory.id_attribute, "nsUniqueId") == 0,
                            .nsuniqueid = strcasecmp(cfg->directory.id_attribute, "nsUniqueId") == 0};
        srand((unsigned)getpid() ^ (unsigned)ob_loop_now_ms());
        /* One service per store; a reconcile that holds it is waited for. */
        int ret = ob_agent_open(cfg, true, true, &s.ag);
        if (ret != OB_EXIT_OK) {
                ob_config_free(cfg);
                return ret;
        }
        if ((ret = ob_metrics_open(s.ag->loop, cfg->listen, &s.metrics)) < 0) {
                fprintf(stderr, "offboard: cannot serve health and metrics at service.listen %s: %s\n", cfg->listen,
                        ret == -EEXIST ? "the path exists and is not a socket" : strerror(-ret));
                ob_agent_free(s.ag);
                ob_config_free(cfg);
                return OB_EXIT_CONFIG;
        }
        ret = OB_EXIT_OK;
        s.ag->metrics = s.metrics;
        if (!(s.devnull = fopen("/dev/null", "w"))) {
                fprintf(stderr, "offboard: cannot open /dev/null: %s\n", strerror(errno));
                s.ag->metrics = NULL;
                ob_metrics_free(s.metrics);
                ob_agent_free(s.ag);
                ob_config_free(cfg);
                return OB_EXIT_FAILED;
        }
        struct ob_loop *l = s.ag->loop;
        s.watchdog_ms = ob_notify_watchdog_ms();
        if (s.watchdog_ms && ob_loop_timer(l, s.watchdog_ms, on_watchdog, &s, &s.watchdog_timer) < 0)
                s.watchdog_timer = NULL;
        ob_log(OB_LOG_INFO, "event=service_started config=%s full_pass_interval_ms=%lld watchdog_ms=%lld",
               ob_log_quote(config_path), (long long)cfg->full_pass_interval_ms, (long long)s.watchdog_ms);
        ob_notify("READY=1\nSTATUS=first pass");
        feed_cookie_load(&s);
        feed_start(&s);
        s.pass_due = true;
        while (!s.ag->stop_signal) {
                if (s.ag->reload) {
                        s.ag->reload = false;
                        if (reload(&s)) {
                                s.pass_due = true; /* the new rules apply now */
                                s.nsuniqueid = strcasecmp(s.cfg->directory.id_attribute, "nsUniqueId") == 0;
                                s.targeted = s.nsuniqueid ||
                                             strcasecmp(s.cfg->directory.id_attribute, "entryUUID") == 0;
                                /* The feed under the new directory settings; a
                                 * cookie is only good for the search it came from. */
                                feed_stop(&s);
                                s.feed_live = false;
                                free(s.cookie);
                                s.cookie = NULL;
                                s.cookie_len = 0;
                                if (s.feed_timer)
                                        ob_loop_timer_cancel(l, s.feed_timer);
                                s.feed_timer = NULL;
                                s.feed_failures = 0;
                                feed_start(&s);
                        }
                }
                if (s.pass_due) {
                        s.pass_due = false;
                        run_pass(&s);
                        continue;
                }
                if (s.npending && s.whole_done) {
                        run_change_pass(&s);
                        continue;
                }
                int k = ob_loop_run(l);
                if (k < 0) {
                        ob_log(OB_LOG_ERROR, "event=loop_failed error=%s", ob_log_quote(strerror(-k)));
                        ret = OB_EXIT_FAILED;
                        break;
                }
        }
        ob_notify("STOPPING=1");
        s.stopping = true;
        if (s.feed_timer)
                ob_loop_timer_cancel(l, s.feed_timer);
        feed_stop(&s);
        free(s.cookie);
        pending_clear(&s);
        free(s.pending);
        gone_free(&s);
        window_free(&s);
        if (s.ag->stop_signal)
                ob_log(OB_LOG_INFO, "event=service_stopped signal=%s", s.ag->stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        if (s.pass_timer)
                ob_loop_timer_cancel(l, s.pass_timer);
        if (s.watchdog_timer)
                ob_loop_timer_cancel(l, s.watchdog_timer);
        fclose(s.devnull);
        s.ag->metrics = NULL;
        ob_metrics_free(s.metrics); /* before the agent: the agent frees the loop */
        ob_agent_free(s.ag);
        ob_config_free(s.cfg);
        return ret;
}
