/* directory.h: the only module that talks LDAP (libldap).
 *
 * A struct ob_dir is one bound connection. It is opened with the directory
 * section of the configuration, which must outlive it. libldap error codes are
 * translated here and logged once, with the server's diagnostic message; the
 * caller gets a project code:
 *   -OB_EDIRECTORY  unreachable, TLS failure, bind refused, search failed
 *   -OB_ESIZELIMIT  a size or time limit cut a search short
 *   -OB_EINSECURE   a simple bind would go over plain ldap:// without StartTLS
 *   -OB_ENOTFOUND   the entry does not exist
 *   -OB_EASSERTION  a write was refused because the entry changed (RFC 4528)
 * A search never reports success after a partial result.
 */
#ifndef OB_DIRECTORY_H
#define OB_DIRECTORY_H

#include <stddef.h>

#include "account.h"
#include "config.h"

struct ob_dir;

/* Connects, sets LDAPv3, referrals off, timeouts and per-connection TLS
 * (verification on unless tls_verify is false; CA file if given; then
 * LDAP_OPT_X_TLS_NEWCTX), runs StartTLS for ldap:// when configured, and binds:
 * simple bind with the password read from bind_password_file, SASL EXTERNAL
 * when sasl_external, anonymous otherwise. Plain ldap:// without StartTLS
 * (anonymous included) is refused with -OB_EINSECURE unless allow_insecure. */
int ob_dir_open(const struct ob_directory_config *cfg, struct ob_dir **ret);
struct ob_loop;

/* The same, on a thread of its own while l turns (l NULL: ob_dir_open):
 * timers, signals and other fds are served until the connection is set up
 * or has failed. Callbacks that stop l meanwhile do not end the wait. */
int ob_dir_open_on(struct ob_loop *l, const struct ob_directory_config *cfg, struct ob_dir **ret);
void ob_dir_free(struct ob_dir *d);

/* What `validate --online` checks once ob_dir_open() succeeded (which
 * covered the connection, TLS and CA, the bind and the capabilities the
 * configuration needs): the base exists; the teams base exists and a search
 * of it with the teams filter works; fallback_dn (may be NULL) exists. Each
 * problem is logged with the setting that fixes it; returns 0 or the first
 * error (-OB_ENOTFOUND for a DN that does not exist, -OB_EDIRECTORY). */
int ob_dir_check(struct ob_dir *d, const char *fallback_dn);

/* Called once per entry; the account is borrowed and freed after the call.
 * A non-zero return stops the search and is returned by the search. An entry
 * that cannot be judged is still delivered, with a->unreadable saying why:
 * its id attribute is missing or malformed (a->id is then NULL), or a value
 * is over a limit (that value is left out). */
typedef int (*ob_dir_entry_fn)(const struct ob_account *a, void *userdata);

/* What one search of the accounts saw besides its entries. */
struct ob_dir_search_info {
        size_t entries;    /* delivered, unreadable ones included */
        size_t unreadable; /* delivered with a->unreadable set */
        /* Continuation references met in scope (parts of the tree another
         * server holds, which were not read): the DN each one's URL points
         * at, or "" when it names none. NULL-terminated, or NULL. */
        char **references;
        char *dirsync_cookie; /* DirSync: the cookie to resume from (may hold NUL bytes) */
        size_t dirsync_cookie_len;
};
void ob_dir_search_info_clear(struct ob_dir_search_info *info);

/* Paged search (RFC 2696, cfg->page_size) of base/scope/filter requesting
 * cfg->attributes plus the id attribute. Streams page by page: at most one
 * page is held in memory. The account id is the id attribute's value in text
 * form; a binary objectGUID becomes its canonical GUID string. The whole
 * search (every page) must end within cfg->search_deadline_ms and take at
 * most cfg->max_pages pages, else -OB_ESIZELIMIT. ret_info (may be NULL) is
 * filled on success; the caller clears it. */
int ob_dir_search_accounts(struct ob_dir *d, ob_dir_entry_fn fn, void *userdata, struct ob_dir_search_info *ret_info);

/* Whether dn is base or lies below it (RDN by RDN, ASCII case ignored):
 * 1, 0, or -EINVAL when either does not parse. */
int ob_dn_in_subtree(const char *dn, const char *base);
/* Whether two DNs name the same entry (RDN by RDN, ASCII case ignored): 1, 0,
 * or -EINVAL when either does not parse. */
int ob_dn_equal(const char *a, const char *b);

/* Reads one entry by DN with the account attributes (for managers, fallback,
 * team owners). -OB_ENOTFOUND when it does not exist or is out of scope;
 * any other failure (a referral, a timeout, a refused read) is an error, never
 * "not found". The account may come back with a->unreadable set. */
int ob_dir_read_account(struct ob_dir *d, const char *dn, struct ob_account **ret);

/* Team groups under teams_base with teams_filter whose member attribute holds
 * member_dn (escaped into the filter), in DN order. Each group is delivered as
 * an account whose attributes include the owner attribute. A continuation
 * reference makes the list incomplete: -OB_EDIRECTORY. */
int ob_dir_search_teams(struct ob_dir *d, const char *member_dn, ob_dir_entry_fn fn, void *userdata);
/* The same for the teams whose owner attribute holds owner_dn; each comes
 * with its owner and member attributes. */
int ob_dir_search_teams_owned(struct ob_dir *d, const char *owner_dn, ob_dir_entry_fn fn, void *userdata);

struct ob_dir_mod {
        const char *attribute;
        const char *const *values; /* NULL-terminated; empty list deletes the attribute */
};

/* One modify of dn replacing each attribute with its values; object_class, if
 * not NULL, is added to objectClass when the entry lacks it. If assert_attr and
 * assert_value are set, the modify carries a critical assertion control
 * (assert_attr=assert_value), and -OB_EASSERTION means the entry changed. */
int ob_dir_replace(struct ob_dir *d, const char *dn, const char *object_class, const struct ob_dir_mod *mods,
                   size_t nmods, const char *assert_attr, const char *assert_value);

/* ---- on an event loop ----
 * After ob_dir_attach, the operations below run on the loop: each sends its
 * request and returns; the loop reads the answers (the connection's
 * descriptor is watched while any is in flight) and calls the operation's
 * callback exactly once, with its result, or with the error that ended it
 * (no answer within the timeout, the connection lost; -ECANCELED from
 * ob_dir_free). A start that fails returns the error and calls nothing. Callbacks may start operations. The
 * blocking calls above may still be used meanwhile: answers they meet for
 * the loop's operations are handed on. */
struct ob_loop;
int ob_dir_attach(struct ob_dir *d, struct ob_loop *l);
/* Operations in flight. */
size_t ob_dir_in_flight(const struct ob_dir *d);
/* Whether the connection failed (nothing more can be sent on it). */
bool ob_dir_lost(const struct ob_dir *d);
/* Reads every answer already come (the loop calls it when the descriptor is
 * readable). */
int ob_dir_pump(struct ob_dir *d);
/* Waits (blocking, at most a second) for answers to the operations in
 * flight, and fails those that got none within the timeout: for a caller
 * that must see them finish without running the loop. -EINVAL when nothing
 * is in flight. */
int ob_dir_wait(struct ob_dir *d);

/* ob_dir_search_accounts on the loop: fn gets each entry, then done the
 * result and (on success) the info, which it may move out of *info. */
typedef void (*ob_dir_search_done_fn)(int result, struct ob_dir_search_info *info, void *userdata);
int ob_dir_search_accounts_start(struct ob_dir *d, ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata);
/* The same search for the one entry dn (a change the feed heard of): it
 * delivers dn when it is in the base and scope and matches the filter, else
 * nothing. A dn outside the base and scope is -OB_ENOTFOUND at once; an
 * entry gone since is an error of the search (noSuchObject). */
int ob_dir_search_entry_start(struct ob_dir *d, const char *dn, ob_dir_entry_fn fn, ob_dir_search_done_fn done,
                              void *userdata);
/* A polling feed's question: the accounts that also match extra (a filter
 * the caller built from server values, such as "(uSNChanged>=1234)"), with
 * only attrs (at most OB_DIR_CHANGED_MAX_ATTRS; the id attribute is added). */
#define OB_DIR_CHANGED_MAX_ATTRS 8
int ob_dir_search_changed_start(struct ob_dir *d, const char *extra, char **attrs, ob_dir_entry_fn fn,
                                ob_dir_search_done_fn done, void *userdata);
/* Active Directory: the tombstones right under base (the domain's Deleted
 * Objects container, read with the show-deleted control) that match extra,
 * with their id alone. */
int ob_dir_search_deleted_start(struct ob_dir *d, const char *base, const char *extra, ob_dir_entry_fn fn,
                                ob_dir_search_done_fn done, void *userdata);
/* A change log's records (389-DS's Retro Changelog, cn=changelog): the
 * entries right under base that match filter (the caller's, built from
 * server values), with only attrs (at most OB_DIR_CHANGED_MAX_ATTRS), each
 * delivered with its DN as its id. Records the account cannot read are not
 * returned by the server: finding nothing proves nothing about rights. */
int ob_dir_search_changelog_start(struct ob_dir *d, const char *base, const char *filter, char **attrs,
                                  ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata);
/* Active Directory's DirSync (MS-ADTS 3.1.1.3.4.1.3, with object security:
 * no replication right needed): what changed in the naming context nc since
 * cookie (NULL: everything, once), accounts and tombstones (isDeleted),
 * with their id; done's info carries the new cookie. */
int ob_dir_dirsync_start(struct ob_dir *d, const char *nc, const char *cookie, size_t cookie_len,
                         ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata);
/* Whether dn lies in the accounts' base and scope. */
bool ob_dir_in_scope(const struct ob_dir *d, const char *dn);
/* The attribute whose value is an account's id (the configuration's
 * id_attribute; entryUUID when unset), for a feed that names accounts by
 * another attribute (a change log: the changelog uses nsUniqueId). */
const char *ob_dir_id_attribute(const struct ob_dir *d);
/* Whether the server says it is Active Directory (or Samba AD). */
bool ob_dir_is_ad(const struct ob_dir *d);

/* ob_dir_read_account on the loop: done gets the account (borrowed), or NULL
 * and -OB_ENOTFOUND or another error. A DN outside the base and scope is
 * -OB_ENOTFOUND at once. */
typedef void (*ob_dir_read_done_fn)(const char *dn, const struct ob_account *a, int err, void *userdata);
int ob_dir_read_account_start(struct ob_dir *d, const char *dn, ob_dir_read_done_fn done, void *userdata);
/* Reads attrs of the entry dn ("" : the root DSE) on the loop, wherever it
 * is; done gets it (its id is its DN), or NULL and -OB_ENOTFOUND or an error. */
int ob_dir_read_start(struct ob_dir *d, const char *dn, char **attrs, ob_dir_read_done_fn done, void *userdata);

/* ob_dir_replace on the loop, for several write-backs in flight: the caller
 * says whether objectClass must be added (it read objectClass with the
 * entry). Returns 1 (and calls nothing) when there was nothing to write. */
typedef void (*ob_dir_modify_done_fn)(int result, void *userdata);
int ob_dir_replace_start(struct ob_dir *d, const char *dn, bool add_object_class, const char *object_class,
                         const struct ob_dir_mod *mods, size_t nmods, const char *assert_attr,
                         const char *assert_value, ob_dir_modify_done_fn done, void *userdata);

/* ---- RFC 4533 content synchronization (OpenLDAP syncprov) on the loop ----
 * A refreshAndPersist search of the accounts (base, scope, filter as
 * configured; attrs as given): the refresh stage sends what changed since
 * the cookie (everything without one), then the search stays open and the
 * server pushes each change as it happens. */
enum ob_sync_kind {
        OB_SYNC_PRESENT,        /* an entry unchanged since the cookie (refresh) */
        OB_SYNC_ADD,            /* an entry added, or new to the client */
        OB_SYNC_MODIFY,         /* an entry changed */
        OB_SYNC_DELETE,         /* an entry deleted, or no longer in scope (uuid only) */
        OB_SYNC_IDSET_DELETES,  /* entries deleted, by entryUUID (nuuids of them) */
        OB_SYNC_IDSET_PRESENTS, /* entries unchanged, by entryUUID */
        OB_SYNC_REFRESH_DONE,   /* the refresh stage ended: what follows happens now */
};

struct ob_sync_event {
        enum ob_sync_kind kind;
        bool refreshing;            /* before OB_SYNC_REFRESH_DONE */
        const char *dn;             /* entries (not deletes on every server) */
        const char *modifiers_name; /* the entry's modifiersName, when requested and present */
        char uuid[37];              /* entries: the syncUUID, lower-case text (OpenLDAP: the entryUUID;
                                     * 389-DS: the nsUniqueId's 16 bytes) */
        size_t nuuids;              /* id sets */
};
typedef void (*ob_dir_sync_fn)(const struct ob_sync_event *ev, void *userdata);
/* The feed ended: the connection was lost, the server ended it, or
 * -OB_ESYNCREFRESH (start again without a cookie: the server cannot resume
 * from the one given). cookie is the newest the server gave (NULL if none),
 * to resume from. */
typedef void (*ob_dir_sync_end_fn)(int result, const char *cookie, size_t cookie_len, void *userdata);
int ob_dir_sync_start(struct ob_dir *d, const char *cookie, size_t cookie_len, char **attrs, ob_dir_sync_fn fn,
                      ob_dir_sync_end_fn end, void *userdata);
/* Whether the root DSE lists the Sync Request control. */
bool ob_dir_has_sync(const struct ob_dir *d);
/* The newest cookie of the sync search in flight (borrowed), or NULL. */
const char *ob_dir_sync_cookie(const struct ob_dir *d, size_t *ret_len);

/* The parsers of the protocol's messages, for the tests and the fuzzer. */
enum ob_sync_info_kind {
        OB_SYNC_INFO_NEW_COOKIE,
        OB_SYNC_INFO_REFRESH_DELETE,
        OB_SYNC_INFO_REFRESH_PRESENT,
        OB_SYNC_INFO_ID_SET,
};
struct ob_sync_info {
        enum ob_sync_info_kind kind;
        const char *cookie; /* into the value parsed, or NULL */
        size_t cookie_len;
        bool refresh_done;    /* refreshDelete, refreshPresent (default TRUE) */
        bool refresh_deletes; /* syncIdSet (default FALSE) */
        size_t nuuids;        /* syncIdSet */
        const unsigned char *first_uuid;
};
/* A Sync Info intermediate response's value; -EBADMSG if it does not parse. */
int ob_dir_sync_parse_info(const void *buf, size_t len, struct ob_sync_info *ret);
/* A Sync State control's value: state (0 present .. 3 delete), the 16 bytes
 * of the entryUUID and the cookie (NULL if none), pointing into buf. */
int ob_dir_sync_parse_state(const void *buf, size_t len, int *ret_state, const unsigned char **ret_uuid,
                            const char **ret_cookie, size_t *ret_cookie_len);
/* AD's DirSync response control's value: whether more results follow (ask
 * again with this cookie) and the cookie (possibly empty), pointing into
 * buf. -EBADMSG if it does not parse, -ENOMEM. */
int ob_dir_dirsync_parse_reply(const void *buf, size_t len, bool *ret_more, const char **ret_cookie,
                               size_t *ret_cookie_len);

/* Active Directory's range retrieval (MS-ADTS 3.1.1.3.1.3.3): past
 * MaxValRange values (1500 by default) an attribute comes back as
 * NAME;range=0-1499 alone, and the rest must be asked for
 * (NAME;range=1500-*) until a range ends in "*". Every read and search
 * here does so before it hands out the entry, so an attribute is never
 * shorter than the directory holds: a range that cannot be read fails the
 * read (an account of the accounts' searches is delivered unreadable
 * instead). The parts of an attribute description: */
struct ob_dir_range {
        size_t name_len; /* the description before ";range=" */
        unsigned long low, high;
        bool last; /* HIGH was "*" (high is then 0) */
};
/* 1 and *ret when desc (len bytes) carries a range option (in any case),
 * 0 when it carries none, -EBADMSG when the option is malformed: not
 * LOW-HIGH or LOW-* in decimal, HIGH below LOW, more than 32 bits, not the
 * last option, or twice. */
int ob_dir_parse_range(const char *desc, size_t len, struct ob_dir_range *ret);
/* AD: ask for at most step values of an attribute at a time, from the first
 * request on, as an AD whose MaxValRange is step hands them out (0, the
 * default: as many as the server gives). Samba gives ranges only when asked
 * and never cuts an attribute short by itself: this is how tests reach the
 * range path on it. */
void ob_dir_set_range_step(struct ob_dir *d, unsigned long step);

/* Reads many entries by DN as ob_dir_read_account does, up to 32 on the wire
 * at once: fn gets each one's index, the account (borrowed), or NULL with
 * -OB_ENOTFOUND (absent, or outside the base and scope) or another error.
 * A lost connection ends it: the reads in flight get the error and it is
 * returned; those not sent get no call. */
typedef void (*ob_dir_read_fn)(size_t i, const struct ob_account *a, int err, void *userdata);
int ob_dir_read_many(struct ob_dir *d, const char *const *dns, size_t n, ob_dir_read_fn fn, void *userdata);

/* Reads one entry by DN ("" is the root DSE) with exactly the attributes
 * attrs (NULL-terminated), wherever it is: for policy entries, which lie
 * outside the account base. -OB_ENOTFOUND when it does not exist or the
 * account cannot see it; any other failure (a referral, a timeout, a refused
 * read) is an error, never "not found". */
int ob_dir_read_entry(struct ob_dir *d, const char *dn, const char *const *attrs, struct ob_account **ret);

/* ---- the ldap connector's operations (ldap_conn.c), on the loop ----
 * Each is one request whose answer goes to done (ob_dir_replace_start's
 * callback type) or, for the search, to fn and done as above. */

/* The entries under base (subtree) whose attribute attr holds value (escaped
 * into the filter, RFC 4515): fn gets each one with its DN alone. A
 * continuation reference (a part of the tree another server holds) is
 * noted in done's info->references: the list is then incomplete. Finding
 * nothing does not prove that base exists (389-DS answers a paged search of
 * a missing base with success): the caller reads it. */
int ob_dir_search_listing_start(struct ob_dir *d, const char *base, const char *attr, const char *value,
                                ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata);
/* One modify of dn deleting exactly one value of attr (LDAP_MOD_DELETE),
 * with the permissive modify control, not critical: where the server knows
 * it, a value already gone is success. */
int ob_dir_delete_value_start(struct ob_dir *d, const char *dn, const char *attr, const char *value,
                              ob_dir_modify_done_fn done, void *userdata);
/* The same adding exactly one value (LDAP_MOD_ADD): where the server knows
 * the control, a value already there is success. -OB_ENOTFOUND: dn (the
 * group) does not exist. */
int ob_dir_add_value_start(struct ob_dir *d, const char *dn, const char *attr, const char *value,
                           ob_dir_modify_done_fn done, void *userdata);
/* Moves dn under new_parent, keeping its RDN (a modify DN with a new
 * superior). -OB_ENOTFOUND: dn does not exist (moved already, perhaps:
 * ob_dn_moved says where it would be). -EINVAL when a DN does not parse. */
int ob_dir_move_start(struct ob_dir *d, const char *dn, const char *new_parent, ob_dir_modify_done_fn done,
                      void *userdata);
/* The DN dn gets when moved under new_parent: its first RDN, in RFC 4514
 * form (libldap's escaping, UTF-8 kept), then new_parent. -EINVAL when
 * either does not parse. */
int ob_dn_moved(const char *dn, const char *new_parent, char **ret);

#endif
