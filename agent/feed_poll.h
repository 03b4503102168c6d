/* feed_poll.h: a change feed for servers without RFC 4533 content
 * synchronization, asked every service.poll_interval on the feed's own
 * connection, on the agent's loop:
 *   - Active Directory (and Samba AD): the root DSE's highestCommittedUSN
 *     bounds each question, "(uSNChanged>=last+1)(uSNChanged<=highest)",
 *     with ordinary read rights; a new invocationId of the DC (restored
 *     from a backup, another DC behind the name) or a USN that went back
 *     cannot be followed and asks for a whole pass;
 *   - Active Directory by DirSync (service.feed: dirsync), asked with
 *     the object-security flag (no replication right needed) from the
 *     domain's naming context, accounts and tombstones alike;
 *   - any other server (389-DS, ...): "(modifyTimestamp>=last-overlap)",
 *     where last is the newest modifyTimestamp the server gave (its clock,
 *     not ours), with an overlap window and de-duplication by (id, time).
 * A change is an account's DN and id, as a pass reads them. On AD the
 * accounts deleted within the same USNs are read too, from their
 * tombstones (show-deleted control), by id. Elsewhere, when the root DSE
 * names a changelog the service account can read (389-DS's Retro Changelog
 * Plugin), each modifyTimestamp question is followed by one for the
 * deletions logged since the last changeNumber read, "(changeType=delete)"
 * between it and the root DSE's lastchangenumber, each named by its
 * targetUniqueId (the plugin's nsslapd-attribute: nsuniqueid:targetUniqueId),
 * which is the account's id when id_attribute is nsUniqueId (else, or
 * without targetUniqueId, a deletion in scope asks for a whole pass). A
 * changelog trimmed past records not read, or renumbered, asks for a whole
 * pass; an error reading it fails the poll (never "deleted"). Without one
 * (absent, or unreadable: said once) deletions are left to the whole passes.
 * Beside an RFC 4533 feed (389-DS's Content Synchronization plugin), the
 * same changelog questions alone (OB_POLL_DELETIONS) are a second source of
 * the deletions that feed pushes: never rely on one alone.
 */
#ifndef OB_FEED_POLL_H
#define OB_FEED_POLL_H

#include <stdbool.h>
#include <stdint.h>

#include "directory.h"
#include "loop.h"

/* How far back each modifyTimestamp question reaches beyond the newest
 * time seen: commits that came late, and clocks with a second's grain. */
#define OB_POLL_OVERLAP_S 10
/* At most this many changeNumbers of the changelog a question. */
#define OB_POLL_CHANGELOG_BATCH 1000

struct ob_poll;

enum ob_poll_mode {
        OB_POLL_CHANGES,   /* uSNChanged (AD), or modifyTimestamp and the changelog */
        OB_POLL_DIRSYNC,   /* AD's DirSync */
        OB_POLL_DELETIONS, /* the changelog's deletions only (beside RFC 4533) */
};

struct ob_poll_ops {
        /* An account changed: its DN and id; modifiers_name when the server
         * says who changed it (modifyTimestamp polling), else NULL. */
        void (*change)(const char *dn, const char *id, const char *modifiers_name, void *ud);
        /* The first answer came: changes are heard from now on (what came
         * before, a whole pass must find). */
        void (*live)(const char *kind, void *ud);
        /* What changed cannot be told (why says it): a whole pass is owed. */
        void (*resync)(const char *why, void *ud);
        /* A question failed (err): the poll has stopped; start another on a
         * new connection. */
        void (*failed)(int err, void *ud);
        /* The changelog cannot be used (why says it; may be NULL): called
         * once, when that is found (not with changelog off). Deletions are
         * then left to the whole passes (OB_POLL_DELETIONS asks nothing
         * more). */
        void (*changelog_unusable)(const char *why, void *ud);
};

/* Starts polling d (attached to l, which it must stay on) at once and then
 * every interval_ms; by uSNChanged when d is Active Directory, else by
 * modifyTimestamp; by DirSync in OB_POLL_DIRSYNC (Active Directory only),
 * from cookie (cookie_len bytes, a stored ob_poll_cookie) or, NULL, from an
 * answer of everything that only finds where to resume from. By
 * modifyTimestamp, cookie (a stored ob_poll_cookie, or NULL) is where the
 * changelog is read from, when it still holds it; anything else is ignored.
 * OB_POLL_DELETIONS reads the changelog's deletions alone, from now on (not
 * on Active Directory). Without changelog the changelog is never read. */
int ob_poll_start(struct ob_dir *d, struct ob_loop *l, int64_t interval_ms, enum ob_poll_mode mode, bool changelog,
                  const char *cookie, size_t cookie_len, const struct ob_poll_ops *ops, void *ud,
                  struct ob_poll **ret);
/* DirSync's newest cookie, or modifyTimestamp polling's changelog position
 * ("changelog:N", the first changeNumber not read) (borrowed), to resume
 * from after a restart; NULL for the USN kind, before the first answer, or
 * without a changelog. */
const char *ob_poll_cookie(const struct ob_poll *p, size_t *ret_len);
/* Stops polling (nothing is called after); the connection stays the
 * caller's. */
void ob_poll_free(struct ob_poll *p);
const char *ob_poll_kind(const struct ob_poll *p); /* "usn", "timestamp", "dirsync" or "changelog" */

#endif
