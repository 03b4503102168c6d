/* config.h: the parsed, immutable configuration.
 *
 * ob_config_load() reads the YAML file and every mapping file it names and
 * returns a struct ob_config that nothing modifies afterwards; everything in
 * it lives until ob_config_free(). On error it returns -OB_ECONFIG and fills
 * an ob_config_error with "file:line:col: message", the offending line and a
 * caret. It never exits and never returns a partial configuration.
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

enum ob_connector_type { OB_CONNECTOR_HTTP };

/* A header: a template, or (value_file:) a secret read from a file by the
 * connector, never rendered, masked as *** in reports. */
struct ob_header_tpl {
        char *name;
        struct ob_tpl *value; /* NULL when secret_file is set */
        char *secret_file;    /* absolute path, or NULL */
};

/* How a connector retries (connectors.X.retry). */
struct ob_retry_policy {
        int attempts;           /* tries of one action within a pass (1: no retry in the pass) */
        int64_t backoff_ms;     /* first delay; doubles each time, full jitter */
        int64_t max_backoff_ms; /* cap of one delay; a longer Retry-After waits for a later pass */
        int park_after;         /* failed attempts over all passes after which the action is parked (0: never) */
        int pause_after;        /* consecutive failures without an answer that pause the connector for the pass */
};

struct ob_connector {
        char *name;
        enum ob_connector_type type;
        char *base_url; /* prefix for action URLs; no templates */
        char *auth_type; /* NULL, "bearer", "basic" */
        char *auth_username;
        char *auth_secret_file;
        char *ca_file;
        bool tls_verify;
        bool allow_insecure; /* credentials (auth, value_file headers) over plain http:// */
        int64_t timeout_ms;
        int concurrency;
        struct ob_retry_policy retry;
        size_t nheaders;
        struct ob_header_tpl *headers;
};

enum ob_body_kind { OB_BODY_NONE, OB_BODY_JSON, OB_BODY_FORM };

struct ob_json_tpl; /* a YAML tree whose string leaves are templates */

struct ob_action {
        char *name;
        char *source;
        struct ob_connector *connector;
        char *method;
        struct ob_tpl *url; /* path segments and query escaped by position */
        size_t nheaders;
        struct ob_header_tpl *headers;
        enum ob_body_kind body_kind;
        struct ob_json_tpl *body;
        struct ob_cond *when; /* NULL: always */
        size_t nafter;
        struct ob_action **after;
        bool security; /* revokes sessions or tokens: runs first */
        long *ok_status; /* HTTP statuses outside 2xx that count as done (404, 410 on a delete) */
        size_t nok_status;
        bool uses_transfer; /* a template reads transfer_to.* */
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
};

struct ob_config {
        char *path;
        struct ob_directory_config directory;
        struct ob_writeback_config writeback;
        char *state_path;
        char *journal_path; /* state.journal: the audit journal (default: journal.jsonl beside the store) */
        char *transfer_fallback; /* DN of the fallback account, may be NULL */
        struct ob_safety safety;
        int64_t drain_timeout_ms; /* service.drain_timeout: SIGTERM/SIGINT let in-flight requests finish this long */
        int64_t full_pass_interval_ms; /* service.full_pass_interval: `run` passes over every account this often */
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

struct ob_config_error {
        char message[1024]; /* "file:line:col: message" */
        char line[512];     /* the offending line, "" when unknown */
        int column;         /* 1-based, for the caret; 0 when unknown */
};

int ob_config_load(const char *path, struct ob_config **ret, struct ob_config_error *err);
void ob_config_free(struct ob_config *c);
/* Prints the error as "message\n  line\n  ^" to f. */
void ob_config_error_print(const struct ob_config_error *err, FILE *f);

#endif
