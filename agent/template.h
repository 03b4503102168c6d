/* template.h: `{{ field }}` templates, escaped by where the value lands.
 *
 * A template is parsed once, at configuration load, for one context; unknown
 * fields are load errors, so rendering can only fail on values (a header value
 * with CR/LF, invalid UTF-8 for JSON). Rendering takes values through a lookup
 * callback and never evaluates anything else.
 *
 * Fields: account.id account.dn account.uid account.mail account.name
 * account.manager account.attr.NAME status.name status.reason status.rule
 * status.previous transition.name transfer_to.uid transfer_to.mail
 * transfer_to.name transfer_to.dn transfer_to.id transfer_to.via action.name
 * idempotency_key transfer.modules, and the lists account.teams (the teams
 * the account is a member of, by name), account.teams_led (those it owns)
 * and account.groups (the DNs in its memberOf). A list field's lookup returns its items
 * separated by OB_TPL_LIST_SEP (items never hold it); it reads "a, b" in
 * text, and a JSON string that is the field alone renders as an array.
 *
 * transfer.modules (actions.X.modules, seed 000) has a text form, what its
 * lookup returns, escaped like any value where it lands; and a JSON form: a
 * JSON string that is the field alone becomes, as it is, what the lookup of
 * "transfer.modules" OB_TPL_JSON_FORM returns. That text is JSON made by the
 * caller (plan.c), which escapes every string in it; NULL or "" fails the
 * render (-OB_ETEMPLATE), never an empty list.
 */
#ifndef OB_TEMPLATE_H
#define OB_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define OB_TPL_LIST_SEP '\x1f'
#define OB_TPL_JSON_FORM ":json"

enum ob_tpl_context {
        OB_TPL_TEXT,   /* reports, write-back: copied as is */
        OB_TPL_URL,    /* before '?': path segment escaping; after: query escaping */
        OB_TPL_HEADER, /* CR/LF and controls refused */
        OB_TPL_JSON,   /* contents of a JSON string */
        OB_TPL_FORM,   /* x-www-form-urlencoded value */
};

struct ob_tpl;

/* Returns 0, -ENOMEM, or -OB_ETEMPLATE with a message and the 0-based byte
 * offset of the problem in src. */
int ob_tpl_parse(const char *src, enum ob_tpl_context ctx, struct ob_tpl **ret, char *errbuf, size_t errlen,
                 size_t *ret_offset);
/* As ob_tpl_parse(), passing every problem of src to fn in order (each
 * unknown, empty or overlong field, a URL's fragment; an unclosed '{{' ends
 * the reading) with its 0-based byte offset. fn returns 0 to go on, or a
 * negative value that stops the parse and is returned. Else returns 0,
 * -ENOMEM, or -OB_ETEMPLATE after the problems. */
typedef int (*ob_tpl_problem_fn)(const char *message, size_t offset, void *ud);
int ob_tpl_parse_each(const char *src, enum ob_tpl_context ctx, struct ob_tpl **ret, ob_tpl_problem_fn fn,
                      void *ud);
void ob_tpl_free(struct ob_tpl *t);
const char *ob_tpl_source(const struct ob_tpl *t);

/* Returns the field's value (NUL-terminated, valid until the render returns)
 * or NULL when the account has none, which renders as "". */
typedef const char *(*ob_tpl_lookup_fn)(const char *field, void *userdata);

int ob_tpl_render(const struct ob_tpl *t, ob_tpl_lookup_fn lookup, void *userdata, struct ob_buf *out);

/* Calls fn for every account.attr.NAME the template uses (to request them). */
int ob_tpl_attributes(const struct ob_tpl *t, int (*fn)(const char *attr, void *ud), void *ud);

/* Whether any field of the template starts with prefix ("transfer_to."). */
bool ob_tpl_uses_prefix(const struct ob_tpl *t, const char *prefix);

/* A JSON (or form) body: a tree built from YAML whose string leaves are
 * templates rendered in OB_TPL_JSON (or OB_TPL_FORM) context. */
enum ob_json_kind { OB_JSON_OBJECT, OB_JSON_ARRAY, OB_JSON_STRING, OB_JSON_LITERAL };

struct ob_json_tpl {
        enum ob_json_kind kind;
        char *key;          /* member name inside an object, else NULL */
        struct ob_tpl *tpl; /* OB_JSON_STRING */
        char *literal;      /* OB_JSON_LITERAL: true, false, null or a number */
        size_t nchildren;
        struct ob_json_tpl **children;
};

void ob_json_tpl_free(struct ob_json_tpl *j);
int ob_json_tpl_render(const struct ob_json_tpl *j, ob_tpl_lookup_fn lookup, void *userdata, struct ob_buf *out);
/* Renders a flat object of strings as application/x-www-form-urlencoded. */
int ob_json_tpl_render_form(const struct ob_json_tpl *j, ob_tpl_lookup_fn lookup, void *userdata,
                            struct ob_buf *out);
/* Calls fn on every template in the tree. */
int ob_json_tpl_foreach(const struct ob_json_tpl *j, int (*fn)(const struct ob_tpl *t, void *ud), void *ud);

#endif
