/* scim_kind.c: the scim connector kind without the network: its keys and
 * their rules, rendering the user's filter and describing what a step will
 * send. Running a step is scim.c's. See scim.h and connector.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "plan.h"
#include "report.h"
#include "scim.h"
#include "template.h"
#include "util.h"

/* ---- keys ------------------------------------------------------------------ */

#define C(x) offsetof(struct ob_scim_connector, http.x)
#define A(x) offsetof(struct ob_scim_action, x)

static const struct ob_key_spec ob_scim_auth_keys[] = {
        {.name = "type", .type = OB_KEY_STRING, .offset = C(auth.type), .required = true},
        {.name = "username", .type = OB_KEY_STRING, .offset = C(auth.username)},
        {.name = "token_file", .type = OB_KEY_PATH, .offset = C(auth.token_file)},
        {.name = "password_file", .type = OB_KEY_PATH, .offset = C(auth.password_file)},
        {.name = "encoding", .type = OB_KEY_CHOICE, .offset = C(auth.encoding), .choices = ob_http_auth_encodings},
        {.name = "token", .type = OB_KEY_SECRET},
        {.name = "password", .type = OB_KEY_SECRET},
        {NULL},
};

static const struct ob_key_spec ob_scim_connector_keys[] = {
        {.name = "base_url", .type = OB_KEY_STRING, .offset = C(base_url), .required = true},
        {.name = "auth", .type = OB_KEY_SECTION, .sub = ob_scim_auth_keys},
        {.name = "ca_file", .type = OB_KEY_PATH, .offset = C(ca_file)},
        {.name = "tls_verify", .type = OB_KEY_BOOL, .offset = C(tls_verify), .def = "true"},
        {.name = "allow_insecure", .type = OB_KEY_BOOL, .offset = C(allow_insecure), .def = "false"},
        {NULL},
};

/* In the order of enum ob_scim_op. */
static const char *const ob_scim_ops[] = {"disable", "enable", "remove_groups", "delete", NULL};
static const char *const ob_scim_matches[] = {"userName", "externalId", NULL};

static const struct ob_key_spec ob_scim_action_keys[] = {
        {.name = "operation", .type = OB_KEY_CHOICE, .offset = A(operation), .required = true, .choices = ob_scim_ops},
        {.name = "match", .type = OB_KEY_CHOICE, .offset = A(match), .def = "userName", .choices = ob_scim_matches},
        {.name = "value", .type = OB_KEY_TEMPLATE, .offset = A(value), .tpl = OB_TPL_TEXT},
        {.name = "groups",
         .type = OB_KEY_TEMPLATE_LIST,
         .offset = A(groups),
         .max = OB_SCIM_MAX_CONFIGURED_GROUPS,
         .tpl = OB_TPL_TEXT},
        {.name = "group_ids",
         .type = OB_KEY_TEMPLATE_LIST,
         .offset = A(group_ids),
         .max = OB_SCIM_MAX_CONFIGURED_GROUPS,
         .tpl = OB_TPL_TEXT},
        {NULL},
};

#undef C
#undef A

const char *ob_scim_op_name(enum ob_scim_op op)
{
        return op <= OB_SCIM_DELETE ? ob_scim_ops[op] : "?";
}

/* ---- rules across keys ------------------------------------------------------ */

static int ob_scim_check_connector(struct ob_config_check *ck, struct ob_connector *c)
{
        /* The http part comes first in our settings: the http kind's rules
         * for base_url and auth are ours, word for word. */
        return ob_http_kind.check_connector(ck, c);
}

static int ob_scim_check_action(struct ob_config_check *ck, struct ob_action *a)
{
        struct ob_scim_action *s = a->settings;
        for (size_t i = 0; ob_scim_ops[i]; i++)
                if (strcmp(s->operation, ob_scim_ops[i]) == 0)
                        s->op = (enum ob_scim_op)i;
        /* Each key given to another operation is said, and the match: apart. */
        const char *const keys[] = {"groups", "group_ids"};
        const bool given[] = {s->groups.n > 0, s->group_ids.n > 0};
        int r, bad = 0;
        for (size_t i = 0; i < OB_ELEMENTSOF(keys); i++)
                if (given[i] && s->op != OB_SCIM_REMOVE_GROUPS &&
                    !ob_config_check_go_on(ck,
                                           r = ob_config_fail_action(ck, a, keys[i],
                                                                     "actions.%s: %s chooses the groups of "
                                                                     "remove_groups; operation %s has none",
                                                                     a->name, keys[i], s->operation),
                                           &bad))
                        return r;
        if (s->value)
                return bad;
        if (strcmp(s->match, "userName") != 0)
                return ob_config_fail_action(ck, a, "match",
                                             "actions.%s: match: %s needs a value: template (only userName has a "
                                             "default, {{ account.uid }})",
                                             a->name, s->match);
        if (bad)
                return bad;
        char err[256];
        size_t off;
        r = ob_tpl_parse("{{ account.uid }}", OB_TPL_TEXT, &s->value, err, sizeof(err), &off);
        return r == -OB_ETEMPLATE ? -EINVAL : r;
}

/* Credentials never travel over plain http:// unless allow_insecure says so. */
static int ob_scim_check_uses(struct ob_config_check *ck, const struct ob_config *cfg, const struct ob_connector *c)
{
        (void)cfg;
        const struct ob_http_connector *h = &((const struct ob_scim_connector *)c->settings)->http;
        if (h->auth.type && !h->allow_insecure && strncmp(h->base_url, "http://", 7) == 0)
                return ob_config_fail_connector(ck, c, "base_url",
                                                "connectors.%s.base_url: the connector sends credentials, which "
                                                "would cross the network in clear text over http://; use https:// "
                                                "or set allow_insecure: true",
                                                c->name);
        return 0;
}

static bool ob_scim_tls_unverified(const struct ob_connector *c)
{
        return !((const struct ob_scim_connector *)c->settings)->http.tls_verify;
}

/* ---- rendering -------------------------------------------------------------- */

int ob_scim_filter(struct ob_buf *b, const char *attribute, const char *value)
{
        int r = ob_buf_printf(b, "%s eq \"", attribute);
        if (r == 0)
                r = ob_escape_json(b, value, strlen(value));
        if (r == 0)
                r = ob_buf_addc(b, '"');
        return r;
}

static void ob_scim_free_rendered(void *p)
{
        struct ob_scim_rendered *q = p;
        if (!q)
                return;
        free(q->value);
        free(q->filter);
        free(q->lookup_url);
        for (size_t i = 0; i < q->ngroups; i++)
                free(q->groups[i]);
        free(q->groups);
        free(q);
}

/* One chosen group: ATTRIBUTE eq "VALUE" appended to q->groups. */
static int ob_scim_render_group(const struct ob_tpl *t, const char *key, size_t i, const char *attribute,
                                ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s, struct ob_scim_rendered *q)
{
        _cleanup_buf_ struct ob_buf v, f;
        ob_buf_init(&v);
        ob_buf_init(&f);
        int r = ob_tpl_render(t, lookup, ud, &v);
        if (r < 0)
                return r;
        if (!v.data || !v.data[0])
                return ob_step_render_error(s, "%s[%zu]: the value is empty", key, i);
        r = ob_scim_filter(&f, attribute, v.data);
        if (r == -OB_ETEMPLATE)
                return ob_step_render_error(s, "%s[%zu]: the value is not valid UTF-8", key, i);
        if (r == 0)
                r = ob_buf_steal(&f, &q->groups[q->ngroups]);
        if (r == 0)
                q->ngroups++;
        return r;
}

/* remove_groups with groups: or group_ids: the chosen groups' filters. */
static int ob_scim_render_groups(const struct ob_scim_action *sa, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s,
                                 struct ob_scim_rendered *q)
{
        size_t n = sa->groups.n + sa->group_ids.n;
        if (q->op != OB_SCIM_REMOVE_GROUPS || n == 0)
                return 0;
        if (!(q->groups = calloc(n, sizeof(*q->groups))))
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; r == 0 && !s->render_error && i < sa->groups.n; i++)
                r = ob_scim_render_group(sa->groups.v[i], "groups", i, "displayName", lookup, ud, s, q);
        for (size_t i = 0; r == 0 && !s->render_error && i < sa->group_ids.n; i++)
                r = ob_scim_render_group(sa->group_ids.v[i], "group_ids", i, "id", lookup, ud, s, q);
        return r;
}

static int ob_scim_render(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s)
{
        const struct ob_scim_action *sa = a->settings;
        const struct ob_scim_connector *sc = a->connector->settings;
        struct ob_scim_rendered *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->rendered = q;
        q->op = sa->op;
        q->attribute = strcmp(sa->match, "externalId") == 0 ? "externalId" : "userName";

        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_tpl_render(sa->value, lookup, ud, &b);
        if (r == 0)
                r = ob_buf_steal(&b, &q->value);
        if (r < 0)
                return r;
        if (!q->value[0])
                return ob_step_render_error(s, "%s: the value is empty", q->attribute);

        r = ob_scim_filter(&b, q->attribute, q->value);
        if (r == 0)
                r = ob_buf_steal(&b, &q->filter);
        if (r == -OB_ETEMPLATE)
                return ob_step_render_error(s, "%s: the value is not valid UTF-8", q->attribute);
        if (r < 0)
                return r;

        r = ob_buf_printf(&b, "%s/Users?filter=", sc->http.base_url);
        if (r == 0)
                r = ob_escape_query(&b, q->filter, strlen(q->filter));
        if (r == 0)
                r = ob_buf_steal(&b, &q->lookup_url);
        if (r == 0)
                r = ob_scim_render_groups(sa, lookup, ud, s, q);
        return r;
}

/* ---- reports ---------------------------------------------------------------- */

static const char *ob_scim_auth_display(const struct ob_connector *k)
{
        const struct ob_scim_connector *c = k->settings;
        if (!c->http.auth.type)
                return NULL;
        return strcmp(c->http.auth.type, "bearer") == 0 ? "Bearer " OB_MASK : "Basic " OB_MASK;
}

/* The requests a step sends, {id} and {group} being what the answers say,
 * one line at a time to emit (NULL: out of memory, the line is left out). */
typedef void (*ob_scim_line_fn)(const char *line, void *ud);

static void ob_scim_plan_lines(const struct ob_scim_rendered *q, ob_scim_line_fn emit, void *ud)
{
        switch (q->op) {
        case OB_SCIM_DISABLE: emit("PATCH /Users/{id} replace active=false", ud); break;
        case OB_SCIM_ENABLE: emit("PATCH /Users/{id} replace active=true", ud); break;
        case OB_SCIM_REMOVE_GROUPS:
                if (q->ngroups == 0) {
                        emit("GET /Groups?filter=members[value eq \"{id}\"]", ud);
                        emit("PATCH /Groups/{group} remove members[value eq \"{id}\"] (each group)", ud);
                        break;
                }
                for (size_t i = 0; i < q->ngroups; i++) {
                        _cleanup_buf_ struct ob_buf b;
                        ob_buf_init(&b);
                        if (ob_buf_printf(&b, "GET /Groups?filter=%s and members[value eq \"{id}\"]", q->groups[i]) ==
                            0)
                                emit(b.data, ud);
                }
                emit("PATCH /Groups/{group} remove members[value eq \"{id}\"] (each group found)", ud);
                break;
        case OB_SCIM_DELETE: emit("DELETE /Users/{id}", ud); break;
        }
}

static void ob_scim_headline_text(const struct ob_step *s, FILE *f)
{
        const struct ob_scim_rendered *q = s->rendered;
        const struct ob_scim_connector *c = s->action->connector->settings;
        if (q)
                ob_report_printf(f, "  SCIM %s %s (%s)", ob_scim_op_name(q->op), c->http.base_url,
                                 q->filter ? q->filter : "");
}

static void ob_scim_text_line(const char *line, void *ud)
{
        ob_report_printf(ud, "       %s\n", line);
}

static void ob_scim_describe_text(const struct ob_step *s, FILE *f)
{
        const struct ob_scim_rendered *q = s->rendered;
        const char *auth = ob_scim_auth_display(s->action->connector);
        if (auth)
                ob_report_printf(f, "       Authorization: %s\n", auth);
        if (!q || !q->filter)
                return;
        if (q->op == OB_SCIM_REMOVE_GROUPS) {
                ob_report_printf(f, "       groups:%s\n", q->ngroups ? "" : " every group that lists the user");
                for (size_t i = 0; i < q->ngroups; i++)
                        ob_report_printf(f, "         %s\n", q->groups[i]);
        }
        ob_report_printf(f, "       GET /Users?filter=%s\n", q->filter);
        ob_scim_plan_lines(q, ob_scim_text_line, f);
        if (q->op != OB_SCIM_REMOVE_GROUPS)
                ob_report_printf(f, "       If-Match: the user's meta.version, where it has one\n");
}

static void ob_scim_json_line(const char *line, void *ud)
{
        ob_report_json_list_item(ud, line);
}

static void ob_scim_describe_json(const struct ob_step *s, struct ob_report_json *j)
{
        const struct ob_scim_rendered *q = s->rendered;
        const struct ob_scim_connector *c = s->action->connector->settings;
        ob_report_json_string(j, "kind", "scim");
        ob_report_json_string(j, "base_url", c->http.base_url);
        ob_report_json_string(j, "operation", q ? ob_scim_op_name(q->op) : NULL);
        ob_report_json_string(j, "filter", q ? q->filter : NULL);
        if (q && q->op == OB_SCIM_REMOVE_GROUPS) {
                /* The chosen groups' filters; empty: every group that lists the user. */
                ob_report_json_list_begin(j, "groups");
                for (size_t i = 0; i < q->ngroups; i++)
                        ob_report_json_list_item(j, q->groups[i]);
                ob_report_json_list_end(j);
        }
        ob_report_json_list_begin(j, "headers");
        const char *auth = ob_scim_auth_display(s->action->connector);
        if (auth) {
                char line[64];
                snprintf(line, sizeof(line), "Authorization: %s", auth);
                ob_report_json_list_item(j, line);
        }
        ob_report_json_list_end(j);
        ob_report_json_list_begin(j, "requests");
        if (q && q->filter) {
                _cleanup_buf_ struct ob_buf b;
                ob_buf_init(&b);
                if (ob_buf_printf(&b, "GET /Users?filter=%s", q->filter) == 0)
                        ob_report_json_list_item(j, b.data);
                ob_scim_plan_lines(q, ob_scim_json_line, j);
        }
        ob_report_json_list_end(j);
}

const struct ob_connector_kind ob_scim_kind = {
        .name = "scim",
        .connector_keys = ob_scim_connector_keys,
        .connector_size = sizeof(struct ob_scim_connector),
        .action_keys = ob_scim_action_keys,
        .action_size = sizeof(struct ob_scim_action),
        .check_connector = ob_scim_check_connector,
        .check_action = ob_scim_check_action,
        .check_uses = ob_scim_check_uses,
        .tls_unverified = ob_scim_tls_unverified,
        .render = ob_scim_render,
        .free_rendered = ob_scim_free_rendered,
        .headline_text = ob_scim_headline_text,
        .describe_text = ob_scim_describe_text,
        .describe_json = ob_scim_describe_json,
        .new = ob_scim_new,
        .start = ob_scim_start,
        .free = ob_scim_free,
};
