/* ldap_conn.h: the ldap connector kind, which acts on the directory itself.
 *
 * An action of an ldap connector does one of three things to the account's
 * own entry or to the groups that list it:
 *
 *   remove_from_groups  deletes the account from every group under the
 *                       connector's groups_base that lists it: member and
 *                       uniqueMember hold its DN, memberUid its username.
 *                       Each group is found by a search (the value escaped
 *                       into the filter, RFC 4515) and loses exactly that
 *                       value (a modify deleting one value), so a second run
 *                       finds nothing and changes nothing. What it removed
 *                       (group DN, attribute, value) goes with its outcome
 *                       into the state store (ob_response.detail).
 *   restore_groups      puts back what a remove_from_groups action (from:)
 *                       recorded for the account in the transition before
 *                       (a reactivation's): each value added to its group
 *                       (a modify adding one value; one already there is
 *                       done); a group gone meanwhile is reported, and the
 *                       others are restored.
 *   move                moves the entry under new_parent, keeping its RDN.
 *   modify              replaces attributes with rendered values (set:) and
 *                       deletes others (clear:); an empty value is left out,
 *                       and an attribute left with none is deleted.
 *
 * ldap_kind.c holds what needs no network (keys, checks, rendering,
 * reports); ldap_conn.c runs a step on the loop through directory.h (libldap
 * stays in directory.c). Both are reached through ob_ldap_kind
 * (connector.h); the structs below are for them and for tests.
 *
 * Moving changes the DN that the pass's other steps and its write-back use.
 * So a move runs last: the configuration requires every other action of an
 * ldap connector to be in a move's after: (directly or through others), and
 * at most one move can then exist. The write-back of the pass that moved
 * the entry meets the old DN and fails; the next pass finds the account at
 * its new DN (by its id) and writes it there. A move whose entry is already
 * under new_parent, or already at the new DN, is done.
 */
#ifndef OB_LDAP_CONN_H
#define OB_LDAP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "connector.h"
#include "loop.h"

/* connectors.X for type: ldap (ob_connector.settings) */
struct ob_ldap_connector {
        char *groups_base; /* where remove_from_groups looks; default: directory.base */
        /* Optional: a session of its own instead of the directory: section's
         * uri and bind (TLS settings, timeouts and the rest are the section's). */
        char *uri;
        char *bind_dn;
        char *bind_password_file;
        /* The configuration's directory: section, set by the kind's
         * check_uses (the one hook that sees the whole configuration; new
         * gets only the connector). Borrowed: the configuration is
         * immutable and outlives every connector made from it. */
        const struct ob_directory_config *directory;
};

enum ob_ldap_operation {
        OB_LDAP_REMOVE_FROM_GROUPS,
        OB_LDAP_MOVE,
        OB_LDAP_MODIFY,
        OB_LDAP_RESTORE_GROUPS,
};

/* The membership attributes remove_from_groups knows, as bits. */
enum {
        OB_LDAP_MEMBER = 1u << 0,        /* member: the DN (groupOfNames, AD group) */
        OB_LDAP_UNIQUE_MEMBER = 1u << 1, /* uniqueMember: the DN (groupOfUniqueNames) */
        OB_LDAP_MEMBER_UID = 1u << 2,    /* memberUid: the username (posixGroup) */
};
#define OB_LDAP_GROUP_ATTRS 3
/* The name of bit i (0 .. OB_LDAP_GROUP_ATTRS - 1). */
const char *ob_ldap_group_attr_name(size_t i);

/* actions.X of an ldap connector (ob_action.settings) */
struct ob_ldap_action {
        char *operation;
        struct ob_body_tpl attributes; /* remove_from_groups: a list of names */
        char *new_parent;              /* move: a DN */
        struct ob_body_tpl set;        /* modify: NAME: template, or NAME: [templates] */
        struct ob_body_tpl clear;      /* modify: a list of names */
        char *from;                    /* restore_groups: a remove_from_groups action */
        /* Filled by the kind's check_action. */
        enum ob_ldap_operation op;
        unsigned group_attrs; /* OB_LDAP_MEMBER ... */
};

/* One membership a remove_from_groups step removed, as the state store
 * keeps it (ob_action_record.detail: {"memberships": [[group DN,
 * attribute, value], ...], "cut": N}). */
struct ob_ldap_membership {
        char *group;
        size_t attr; /* index of the membership attribute (ob_ldap_group_attr_name) */
        char *value;
};

/* A detail's memberships (entries whose attribute is not one of the three,
 * or that are not three strings, count in *ret_cut with the detail's own
 * cut). NULL detail: none. 0, -EINVAL (not such JSON) or -ENOMEM. */
int ob_ldap_memberships_parse(const char *detail, struct ob_ldap_membership **ret, size_t *ret_n, int64_t *ret_cut);
void ob_ldap_memberships_free(struct ob_ldap_membership *m, size_t n);

/* The same detail as it is built, written by ob_ldap_detail_dump (the
 * format lives beside its parser, in ldap_kind.c). Zeroed: empty. */
struct ob_ldap_detail {
        void *list;    /* the memberships so far (the JSON library's array), or NULL */
        int64_t cut;   /* memberships not kept */
        size_t bytes;  /* what the kept ones take written */
};

/* Keeps one membership, or counts it as cut beyond OB_LDAP_DETAIL_MEMBERSHIPS
 * or the size a detail may take in the store. */
void ob_ldap_detail_add(struct ob_ldap_detail *d, const char *group, const char *attr, const char *value);
/* {"memberships": [...], "cut": N}, malloc'd; NULL: no memory. */
char *ob_ldap_detail_dump(const struct ob_ldap_detail *d);
void ob_ldap_detail_clear(struct ob_ldap_detail *d);

/* One attribute that a modify replaces; values NULL-terminated (empty:
 * the attribute is deleted). */
struct ob_ldap_set {
        const char *attribute; /* borrowed from the configuration */
        char **values;
};

/* An action rendered for one account (ob_step.rendered). */
struct ob_ldap_rendered {
        enum ob_ldap_operation op;
        char *dn;
        char *uid;               /* NULL: the account has none (memberUid is then not searched) */
        const char *groups_base; /* remove_from_groups; borrowed */
        unsigned group_attrs;
        const char *new_parent;  /* move; borrowed */
        char *new_dn;            /* move: the DN it gets (for reports) */
        struct ob_ldap_set *set; /* modify */
        size_t nset;
        const char **clear; /* modify; borrowed names */
        size_t nclear;
        /* restore_groups: what from (borrowed name) recorded; records: whose
         * records they are (from, or the step's own earlier attempt). */
        const char *from;
        struct ob_ldap_membership *memberships;
        size_t nmemberships;
        int64_t cut; /* removed but not recorded: not restored */
        bool recorded; /* some record was found (false: nothing recorded to restore) */
};

/* Execution (ldap_conn.c). */
int ob_ldap_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
int ob_ldap_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata);
void ob_ldap_free(void *c);

#endif
