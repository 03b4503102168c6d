/* scim.h: the scim connector kind, SCIM 2.0 (RFC 7643, RFC 7644).
 *
 * An action finds one user by a filter on userName or externalId and then
 * acts on it:
 *
 *   disable        PATCH /Users/{id}  replace active false
 *   enable         PATCH /Users/{id}  replace active true
 *   remove_groups  GET /Groups?filter=members[value eq "{id}"], then for
 *                  each group PATCH /Groups/{g}  remove members[value eq "{id}"]
 *                  With groups: (displayNames) or group_ids: (ids), only
 *                  those: for each, GET /Groups?filter=displayName eq "NAME"
 *                  and members[value eq "{id}"] (or id eq "ID" and ...),
 *                  then the same PATCH for each group found
 *   delete         DELETE /Users/{id}
 *
 * A user that is not there downstream is done for disable, remove_groups
 * and delete (nothing to take away), and a failure for enable. A
 * configured group that is not there, or does not list the user, is
 * nothing to take away either; one that cannot be read fails the step. A user
 * that carries meta.version is changed or deleted with If-Match: that
 * version; a 412 (it changed in between) looks it up again, twice at most.
 * A group is not: removing one member by a value filter overwrites nothing,
 * and many leavers leaving one group at once would only 412 each other.
 *
 * scim_kind.c holds what needs no network (keys, checks, rendering, reports);
 * scim.c runs a step: a few requests one after another through http.c
 * (libcurl stays there) and the answers read with jansson (only there). A
 * failed request ends the step with that request's response, so the
 * executor retries a 429 or a 5xx (Retry-After included) exactly as it does
 * for the http kind; the retried step starts over with the lookup.
 */
#ifndef OB_SCIM_H
#define OB_SCIM_H

#include "config.h"
#include "connector.h"
#include "http.h"
#include "loop.h"

enum ob_scim_op { OB_SCIM_DISABLE, OB_SCIM_ENABLE, OB_SCIM_REMOVE_GROUPS, OB_SCIM_DELETE };

/* connectors.X for type: scim (ob_connector.settings). The http part comes
 * first: http.c reads it as an http connector's settings (base_url, auth,
 * ca_file, tls_verify, allow_insecure; no headers). */
struct ob_scim_connector {
        struct ob_http_connector http;
};

/* actions.X of a scim connector (ob_action.settings) */
struct ob_scim_action {
        char *operation;      /* disable | enable | remove_groups | delete */
        char *match;          /* userName | externalId */
        struct ob_tpl *value; /* default {{ account.uid }} for userName */
        struct ob_tpl_list groups;    /* remove_groups: only the groups of these displayNames */
        struct ob_tpl_list group_ids; /* remove_groups: only the groups of these ids */
        enum ob_scim_op op;   /* from operation, set by the check */
};

#define OB_SCIM_MAX_CONFIGURED_GROUPS 100 /* in groups:, and in group_ids: */

/* An action rendered for one account (ob_step.rendered). */
struct ob_scim_rendered {
        enum ob_scim_op op;
        const char *attribute; /* "userName" or "externalId" (static) */
        char *value;           /* as rendered, for reports */
        char *filter;          /* attribute eq "value", the value escaped as a JSON string (RFC 7644 3.4.2.2) */
        char *lookup_url;      /* base_url/Users?filter=..., the filter query-escaped */
        /* remove_groups with groups: or group_ids: the chosen groups, each
         * displayName eq "NAME" or id eq "ID" (values escaped as in filter),
         * the names first; NULL and 0: every group that lists the user. */
        char **groups;
        size_t ngroups;
};

const char *ob_scim_op_name(enum ob_scim_op op);

/* Appends ATTRIBUTE eq "VALUE" with VALUE escaped as a JSON string, as
 * RFC 7644 section 3.4.2.2 wants a filter's string: 0, -ENOMEM, or
 * -OB_ETEMPLATE for invalid UTF-8. */
int ob_scim_filter(struct ob_buf *b, const char *attribute, const char *value);

/* scim.c */
int ob_scim_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
int ob_scim_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata);
void ob_scim_free(void *c);

#endif
