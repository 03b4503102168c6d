/* config.h: the parsed, immutable configuration.
 *
 * ob_config_load() reads the YAML file and every mapping file it names and
 * returns a struct ob_config that nothing modifies afterwards; everything in
 * it lives until ob_config_free(). On error it returns -OB_ECONFIG and fills
 * an ob_config_error with "file:line:col: message", the offending line and a
 * caret. It never exits and never returns a partial configuration.
 *
 * The loader does not stop at the first error: it goes on to the next key,
 * section, connector, action, rule or transition, and skips only the checks
 * that depend on what failed (a key whose value was refused, an action whose
 * connector was refused), so that each independent mistake is reported once
 * and none is a consequence of another. ob_config_load() gives the first of
 * them; ob_config_load_all() (validate) gives them all, in the order found.
 */
#ifndef OB_CONFIG_H
#define OB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cond.h"
#include "template.h"

enum ob_status {
        OB_STATUS_NONE = 0, /* never recorded */
        OB_STATUS_ACTIVE,
        OB_STATUS_LOCKED,
        OB_STATUS_INACTIVE,
        OB_STATUS_ENDED,
        OB_STATUS_DELETED,
        _OB_STATUS_MAX,
};

const char *ob_status_name(enum ob_status s);
/* Returns 0 and sets *ret, or -EINVAL for an unknown name. */
int ob_status_from_name(const char *name, enum ob_status *ret);

enum ob_scope { OB_SCOPE_BASE, OB_SCOPE_ONE, OB_SCOPE_SUB };

/* service.feed: auto (syncrepl where the server offers it), or forced. */
enum ob_feed { OB_FEED_AUTO, OB_FEED_SYNCREPL, OB_FEED_POLL, OB_FEED_DIRSYNC, OB_FEED_NONE };
/* service.changelog: whether the feed reads 389-DS's Retro Changelog for
 * deletions (auto: where readable; require: its absence stops the feed). */
enum ob_changelog { OB_CHANGELOG_AUTO, OB_CHANGELOG_OFF, OB_CHANGELOG_REQUIRE };

struct ob_directory_config {
        char *uri;                /* ldap://, ldaps:// or ldapi:// */
        bool starttls;            /* for ldap://; default true */
        bool tls_verify;          /* default true */
        char *ca_file;            /* NULL: the system store */
        bool allow_insecure;      /* plain ldap:// without StartTLS (else a config error) */
        char *bind_dn;            /* NULL: anonymous, or SASL EXTERNAL over ldapi */
        char *bind_password_file; /* never the password itself */
        bool sasl_external;       /* ldapi:// peer credentials */
        char *base;
        enum ob_scope scope;
        char *filter;
        int page_size;       /* RFC 2696 page size, default 500 */
        int64_t timeout_ms;  /* network and per-operation timeout */
        int64_t search_deadline_ms; /* a whole paged search, every page included (default 30m) */
        size_t max_pages;           /* pages one search may take (default 10000); more is an error */
        size_t min_accounts; /* fewer is an error, never "everyone left" (default 1) */
        char *id_attribute;  /* entryUUID | objectGUID | nsUniqueId */
        char *username_attribute;
        char *mail_attribute;
        char *name_attribute;
        char *manager_attribute;
        char **attributes; /* NULL-terminated: every attribute to request */
        /* Team groups: for the transfer target. */
        char *teams_base; /* NULL: no teams */
        char *teams_filter;
        char *teams_member_attribute;
        char *teams_owner_attribute;
        /* Borrowed from writeback (NULL when write-back is off), for
         * ob_dir_open's checks of what the server supports and for the
         * syntax of the time it writes. */
        const char *writeback_time_attribute;
        const char *writeback_assertion_attribute;
};

struct ob_writeback_config {
        bool enabled;             /* default true */
        char *object_class;       /* added if missing; NULL for mapped attributes */
        bool no_object_class;     /* object_class: null (the class is on every entry already) */
        char *status_attribute;   /* offboardStatus */
        char *time_attribute;     /* offboardStatusTime */
        char *reason_attribute;   /* offboardReason */
        char *actions_attribute;  /* offboardAction, one value per action */
        char *assertion_attribute; /* entryCSN: write only if unchanged since read; NULL: none */
};

/* A mapping rule: first match wins. */
struct ob_rule {
        char *name;
        char *source; /* "file:line" for reports */
        enum ob_status status;
        struct ob_cond *when;
        char *reason;           /* literal, may be NULL */
        char *reason_attribute; /* read from the entry, may be NULL */
};

/* A header: a template, or (value_file:) a secret read from a file by the
 * connector, never rendered, masked as *** in reports. */
struct ob_header_tpl {
        char *name;
        struct ob_tpl *value; /* NULL when secret_file is set */
        char *secret_file;    /* absolute path, or NULL */
};

/* ---- a connector kind's keys ---------------------------------------------
 *
 * A connector kind (connector.h) declares the keys of its connectors and of
 * the actions that use them as a table of typed rows; the loader reads them
 * into the kind's own struct at each row's offset, applies each row's
 * default, and frees what it read. So the YAML stays in config.c, and a kind
 * never sees a node.
 */
enum ob_key_type {
        OB_KEY_STRING,   /* char *, not empty */
        OB_KEY_PATH,     /* char *, a file; relative to the configuration, stored absolute */
        OB_KEY_BOOL,     /* bool */
        OB_KEY_DURATION, /* int64_t milliseconds, from 30s, 5m, 2h or 1d */
        OB_KEY_INT,      /* int in [min, max] */
        OB_KEY_CHOICE,   /* char *, one of choices */
        OB_KEY_TEMPLATE, /* struct ob_tpl *, parsed for tpl */
        OB_KEY_HEADERS,  /* struct ob_header_list; a header named reject is refused with hint */
        OB_KEY_INT_LIST, /* struct ob_int_list in [min, max]; hint says what (for "must be a list of ...") */
        OB_KEY_BODY,     /* struct ob_body_tpl parsed for tpl (OB_TPL_JSON or OB_TPL_FORM); rows that
                          * share an offset are alternatives: one of them at most */
        OB_KEY_SECTION,  /* a mapping of the rows in sub, stored in the same struct */
        OB_KEY_TEMPLATE_LIST, /* struct ob_tpl_list: a list of at most max templates (0: 256), parsed for tpl */
        OB_KEY_SECRET,   /* refused: a secret written inline (hint: KEY_file) */
};

struct ob_key_spec {
        const char *name; /* NULL ends a table */
        enum ob_key_type type;
        size_t offset;
        bool required;
        const char *def;             /* default, as its YAML scalar would be (STRING, PATH taken as written,
                                      * BOOL, DURATION, INT, CHOICE); a section's rows get theirs when it is absent */
        int64_t min, max;            /* INT, INT_LIST */
        const char *const *choices;  /* CHOICE, NULL-terminated */
        enum ob_tpl_context tpl;     /* TEMPLATE, BODY */
        const struct ob_key_spec *sub; /* SECTION */
        const char *reject;          /* HEADERS: a header name that is refused */
        const char *hint;            /* HEADERS: why reject is refused; INT_LIST: what the list holds */
};

struct ob_header_list {
        struct ob_header_tpl *v;
        size_t n;
};

struct ob_int_list {
        long *v;
        size_t n;
};

struct ob_tpl_list {
        struct ob_tpl **v;
        size_t n;
};

struct ob_json_tpl; /* a YAML tree whose string leaves are templates */

struct ob_body_tpl {
        struct ob_json_tpl *tree;    /* NULL: no body */
        enum ob_tpl_context context; /* OB_TPL_JSON or OB_TPL_FORM */
};

struct ob_connector_kind;
struct ob_config;
struct ob_connector;
struct ob_action;

/* For a kind's check hooks (connector.h): fail the load at one key of a
 * connector or an action being read ("file:line:col: message", the line and
 * a caret), or at its mapping when the key is absent. _at points offset bytes
 * into the key's scalar value. Each returns -OB_ECONFIG. */
struct ob_config_check;
__attribute__((format(printf, 4, 5))) int ob_config_fail_connector(struct ob_config_check *ck,
                                                                   const struct ob_connector *c, const char *key,
                                                                   const char *fmt, ...);
__attribute__((format(printf, 4, 5))) int ob_config_fail_action(struct ob_config_check *ck, const struct ob_action *a,
                                                                const char *key, const char *fmt, ...);
__attribute__((format(printf, 5, 6))) int ob_config_fail_action_at(struct ob_config_check *ck,
                                                                   const struct ob_action *a, const char *key,
                                                                   size_t offset, const char *fmt, ...);
/* After a check failed with r (< 0): true to go on to the next check that
 * does not depend on what failed, *bad remembering the failure (a hook
 * returns *bad at its end); false to return r at once (out of memory, or
 * the list of errors is full). */
bool ob_config_check_go_on(struct ob_config_check *ck, int r, int *bad);

/* How a connector retries (connectors.X.retry). */
struct ob_retry_policy {
        int attempts;           /* tries of one action within a pass (1: no retry in the pass) */
        int64_t backoff_ms;     /* first delay; doubles each time, full jitter */
        int64_t max_backoff_ms; /* cap of one delay; a longer Retry-After waits for a later pass */
        int park_after;         /* failed attempts over all passes after which the action is parked (0: never) */
        int pause_after;        /* consecutive failures without an answer that pause the connector for the pass */
};

/* What every connector has; the rest is its kind's (settings, read with the
 * kind's connector_keys). */
struct ob_connector {
        char *name;
        const struct ob_connector_kind *kind; /* from type: */
        void *settings;                       /* the kind's struct; NULL only in a failed load */
        int64_t timeout_ms;
        int concurrency;
        struct ob_retry_policy retry;
};

/* actions.X.modules (seed 000's transfer screen): per module of a
 * downstream application, which of the leaver's records go to the transfer
 * target. offboard cannot see those records: the criteria are data for the
 * downstream API, sent as written (template.h: transfer.modules). */
enum ob_records {
        OB_RECORDS_NONE,     /* none: they stay with the leaver */
        OB_RECORDS_ALL,      /* all: every record of the module assigned to the leaver */
        OB_RECORDS_MATCHING, /* is / is_not: only those that meet the criteria */
};

struct ob_module_criterion {
        char *field;
        char **values; /* NULL-terminated, as written */
        bool list;     /* written as a list (one of them): sent as an array */
};

struct ob_transfer_module {
        char *name;
        enum ob_records records;
        bool is_not; /* MATCHING: the records `is` with the same criteria leaves out */
        size_t ncriteria;
        struct ob_module_criterion *criteria; /* MATCHING: at least one; every one must hold */
        struct ob_cond *when;                 /* NULL: always; false for an account: none */
};

/* What every action has; the rest is its connector kind's (settings, read
 * with the kind's action_keys). */
struct ob_action {
        char *name;
        char *source;
        struct ob_connector *connector;
        void *settings;       /* the kind's struct; NULL only in a failed load */
        struct ob_cond *when; /* NULL: always */
        size_t nafter;
        struct ob_action **after;
        bool security;      /* revokes sessions or tokens: runs first */
        bool uses_transfer; /* a template reads transfer_to.* */
        bool uses_teams;    /* a template reads account.teams or account.teams_led */
        /* grace: a stage (delete after a grace period). Not before this long
         * after its transition began; the due time is recorded then, kept
         * across restarts and never moved (0: at once). */
        int64_t grace_ms;
        /* restored_by: the actions (of a reactivation) that put back what
         * this one takes away; a reactivation reports the others as not
         * restored (seed 001). */
        size_t nrestored_by;
        struct ob_action **restored_by;
        /* modules: the per-module choice a template sends as transfer.modules,
         * in the configuration's order (0: none configured). */
        size_t nmodules;
        struct ob_transfer_module *modules;
};

struct ob_transition {
        char *name;
        char *source;
        unsigned from_mask; /* bits of enum ob_status; 0 = any */
        unsigned to_mask;
        struct ob_cond *when;
        size_t nactions;
        struct ob_action **actions;
        /* safety.transitions.NAME: a limit of its own on the accounts this
         * transition may take in one pass (0: none). */
        size_t max_accounts;
        unsigned max_percent;
};

struct ob_safety {
        size_t max_accounts; /* 0: no count limit */
        unsigned max_percent; /* 0: no percentage limit */
        /* `run`: the limits hold over any span this long, not only per pass
         * (a mass disable arrives through the feed a few accounts at a time) */
        int64_t window_ms;
};

struct ob_config {
        char *path;
        struct ob_directory_config directory;
        struct ob_writeback_config writeback;
        char *state_path;
        char *journal_path; /* state.journal: the audit journal (default: journal.jsonl beside the store) */
        /* transfer.leader_of: teams whose leader (owner) takes over when the
         * account has no active manager and none of its own teams has an
         * active owner; the first with one wins. NULL-terminated or NULL. */
        char **transfer_leader_of;
        char *transfer_fallback; /* DN of the fallback account, may be NULL */
        struct ob_safety safety;
        int64_t drain_timeout_ms; /* service.drain_timeout: SIGTERM/SIGINT let in-flight requests finish this long */
        int64_t full_pass_interval_ms; /* service.full_pass_interval: `run` passes over every account this often */
        enum ob_feed feed;             /* service.feed: how `run` hears of changes between passes */
        int64_t poll_interval_ms;      /* service.poll_interval: how often a polling feed asks what changed */
        enum ob_changelog changelog;   /* service.changelog: deletions from the Retro Changelog */
        char *listen;                  /* service.listen: health and metrics endpoint (NULL: none) */
        size_t nrules;
        struct ob_rule *rules;
        size_t nconnectors;
        struct ob_connector *connectors;
        size_t nactions;
        struct ob_action *actions;
        size_t ntransitions;
        struct ob_transition *transitions;
        char **mapping_files;
        /* Mapping files' required_attributes: an entry that lacks one is
         * unreadable (held, never evaluated); NULL-terminated or NULL. */
        char **required_attributes;
        bool uses_transfer; /* some template reads transfer_to.* */
        bool uses_teams;    /* some template reads account.teams or account.teams_led */
        size_t nguards; /* guards:, in the configuration's order */
        struct ob_guard *guards;
        size_t npolicies; /* policies: (configuration and mappings) */
        struct ob_policy *policies;
};

/* A directory entry that conditions compare with (a password policy:
 * {policy: NAME.attribute}), read once at the start of each pass; a pass
 * that cannot read it, or an attribute of it, does not start. */
struct ob_policy {
        char *name;
        char *dn;          /* may hold ${base} and ${naming_context} */
        char **attributes; /* NULL-terminated: read, and required to be there */
        char *source;      /* "file:line" where it was first named */
};

/* guards: NAME (issue 14, seeds 001 and 004): a condition that blocks a
 * deactivation. A guarded account's security actions still run at once;
 * the rest of its transition waits, with the guard's reason, until a pass
 * finds the condition cleared. Exactly one kind per guard. */
enum ob_guard_kind {
        OB_GUARD_OWNS_TEAM,      /* owns a team (directory.teams) that has other members */
        OB_GUARD_ROLE,           /* its role ranks above a limit */
        OB_GUARD_MEMBER_OF,      /* is a member of a group (a portal's administrators) */
        OB_GUARD_SOLE_MEMBER_OF, /* is the only member of a group (the one recipient of an alert) */
        OB_GUARD_CONNECTOR,      /* an application's endpoint reports open records (seed 002) */
};

struct ob_guard {
        char *name;
        char *source; /* "file:line" */
        enum ob_guard_kind kind;
        bool warn;              /* reported, never holds anything */
        char *group;            /* member_of, sole_member_of: the group's DN */
        char *member_attribute; /* member_of, sole_member_of (member): memberUid holds usernames, others DNs */
        char *role_attribute;   /* role */
        char **ranks;           /* role: values from the lowest rank up, NULL-terminated */
        size_t above;           /* role: a rank past ranks[above] blocks */
        /* connector (seed 002): GET the http connector's base_url + url (its
         * auth, TLS, headers, timeout and concurrency), a read: no
         * idempotency key, nothing recorded, not an action. */
        struct ob_connector *connector;
        struct ob_tpl *url;            /* starts with '/'; account.* fields, escaped by position */
        char *json;                    /* blocks_when.json: a dotted member path in a 2xx answer; NULL: by status */
        int64_t json_above;            /* blocks_when.above: the number there (an array: its length) blocks past it */
        struct ob_int_list block_status; /* blocks_when.status: answers that mean "has open records" */
        struct ob_int_list clear_status; /* answers outside 2xx that mean "nothing open" (404: not a user there) */
        /* parsing only */
        bool owns_team;
        char *role_above;
        char *sole_member_of;
};

struct ob_config_error {
        char message[1024]; /* "file:line:col: message" */
        char line[512];     /* the offending line, "" when unknown */
        int column;         /* 1-based, for the caret; 0 when unknown */
};

/* More errors than this, and the load stops (truncated). */
#define OB_CONFIG_MAX_ERRORS 100

/* Every error of one load, in the order found. The caller owns it; it lives
 * until ob_config_errors_clear(). */
struct ob_config_errors {
        struct ob_config_error *v;
        size_t n;
        bool truncated; /* there were more than OB_CONFIG_MAX_ERRORS: the load stopped there */
};

int ob_config_load(const char *path, struct ob_config **ret, struct ob_config_error *err);
/* As ob_config_load(), with every error in *errs (written, also on success:
 * then empty). On failure there is at least one. */
int ob_config_load_all(const char *path, struct ob_config **ret, struct ob_config_errors *errs);
void ob_config_errors_clear(struct ob_config_errors *errs);
/* One line "file:line:col: message" per error, then "too many errors,
 * stopping" if truncated. */
void ob_config_errors_print(const struct ob_config_errors *errs, FILE *f);
/* Calls fn for every file the configuration names (what: its key, such as
 * "connectors.apps.auth.token_file"; secret: it holds a credential), until
 * fn returns non-zero, which is returned. */
typedef int (*ob_config_file_fn)(const char *what, const char *path, bool secret, void *ud);
int ob_config_foreach_file(const struct ob_config *c, ob_config_file_fn fn, void *ud);
void ob_config_free(struct ob_config *c);
/* Prints the error as "message\n  line\n  ^" to f. */
void ob_config_error_print(const struct ob_config_error *err, FILE *f);

#endif
