/* template.c: `{{ field }}` templates, escaped by where the value lands. */
#define _GNU_SOURCE
#include "template.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

enum ob_tpl_part_kind { PART_LITERAL, PART_FIELD };

struct ob_tpl_part {
        enum ob_tpl_part_kind kind;
        char *text; /* literal text, or the field name */
        enum ob_tpl_context ctx; /* for fields: how to escape (URL split into path/query) */
        bool in_query;
};

struct ob_tpl {
        char *source;
        enum ob_tpl_context ctx;
        size_t nparts;
        struct ob_tpl_part *parts;
};

static const char *const ob_tpl_fields[] = {
        "account.id", "account.dn", "account.uid", "account.mail", "account.name", "account.manager",
        "status.name", "status.reason", "status.rule", "status.previous", "transition.name",
        "transfer_to.uid", "transfer_to.mail", "transfer_to.name", "transfer_to.dn", "transfer_to.id",
        "transfer_to.via", "action.name", "idempotency_key", "account.teams", "account.teams_led",
        "account.groups", "transfer.modules", NULL,
};

/* Fields whose value is a list, its items separated by OB_TPL_LIST_SEP: in
 * text they read "a, b"; a JSON string that is the field alone becomes an
 * array of strings. */
static bool list_field(const char *f)
{
        return strcmp(f, "account.teams") == 0 || strcmp(f, "account.teams_led") == 0 ||
               strcmp(f, "account.groups") == 0;
}

/* Fields with a JSON form (template.h): a JSON string that is the field
 * alone becomes what the lookup of NAME OB_TPL_JSON_FORM returns. */
static bool json_field(const char *f)
{
        return strcmp(f, "transfer.modules") == 0;
}

static bool field_known(const char *f)
{
        for (size_t i = 0; ob_tpl_fields[i]; i++)
                if (strcmp(f, ob_tpl_fields[i]) == 0)
                        return true;
        if (strncmp(f, "account.attr.", 13) == 0) {
                const char *n = f + 13;
                if (!isalpha((unsigned char)*n))
                        return false;
                for (; *n; n++)
                        if (!isalnum((unsigned char)*n) && *n != '-' && *n != ';')
                                return false;
                return true;
        }
        return false;
}

void ob_tpl_free(struct ob_tpl *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->nparts; i++)
                free(t->parts[i].text);
        free(t->parts);
        free(t->source);
        free(t);
}

const char *ob_tpl_source(const struct ob_tpl *t)
{
        return t ? t->source : "";
}

static int add_part(struct ob_tpl *t, enum ob_tpl_part_kind kind, const char *s, size_t n, bool in_query)
{
        struct ob_tpl_part *p = realloc(t->parts, (t->nparts + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        t->parts = p;
        char *text = strndup(s, n);
        if (!text)
                return -ENOMEM;
        t->parts[t->nparts++] = (struct ob_tpl_part){.kind = kind, .text = text, .ctx = t->ctx, .in_query = in_query};
        return 0;
}

int ob_tpl_parse_each(const char *src, enum ob_tpl_context ctx, struct ob_tpl **ret, ob_tpl_problem_fn fn,
                      void *ud)
{
        struct ob_tpl *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ctx = ctx;
        t->source = strdup(src);
        if (!t->source) {
                ob_tpl_free(t);
                return -ENOMEM;
        }
        bool in_query = false, fragment_said = false, bad = false;
        const char *p = src;
        char msg[640]; /* the longest: an unknown field of 127 bytes */
        int r = 0;
        while (*p && r == 0) {
                const char *open = strstr(p, "{{");
                const char *lit_end = open ? open : p + strlen(p);
                if (lit_end > p) {
                        const char *hash = ctx == OB_TPL_URL ? memchr(p, '#', (size_t)(lit_end - p)) : NULL;
                        if (hash && !fragment_said) {
                                /* Said once: the rest of the URL is the same fragment. */
                                fragment_said = bad = true;
                                snprintf(msg, sizeof(msg), "a URL template cannot have a fragment ('#')");
                                if ((r = fn(msg, (size_t)(hash - src), ud)) < 0)
                                        break;
                        }
                        if ((r = add_part(t, PART_LITERAL, p, (size_t)(lit_end - p), in_query)) < 0)
                                break;
                        if (ctx == OB_TPL_URL && memchr(p, '?', (size_t)(lit_end - p)))
                                in_query = true;
                }
                if (!open)
                        break;
                const char *close = strstr(open + 2, "}}");
                if (!close) {
                        /* The rest is not read: where its fields end is unknown. */
                        bad = true;
                        snprintf(msg, sizeof(msg), "unclosed '{{' in template");
                        r = fn(msg, (size_t)(open - src), ud);
                        break;
                }
                p = close + 2;
                const char *f = open + 2, *fe = close;
                while (f < fe && isspace((unsigned char)*f))
                        f++;
                while (fe > f && isspace((unsigned char)fe[-1]))
                        fe--;
                char name[128];
                size_t n = (size_t)(fe - f);
                if (n == 0 || n >= sizeof(name)) {
                        bad = true;
                        snprintf(msg, sizeof(msg), "empty or overlong field name in template");
                        r = fn(msg, (size_t)(open - src), ud);
                        continue;
                }
                memcpy(name, f, n);
                name[n] = '\0';
                if (!field_known(name)) {
                        bad = true;
                        snprintf(msg, sizeof(msg),
                                 "unknown template field '%s' (known: account.uid, account.mail, account.name, "
                                 "account.dn, account.id, account.manager, account.attr.NAME, status.name, "
                                 "status.reason, status.rule, status.previous, transition.name, transfer_to.uid, "
                                 "transfer_to.mail, transfer_to.name, transfer_to.dn, transfer_to.id, "
                                 "transfer_to.via, action.name, idempotency_key, account.teams, "
                                 "account.teams_led, account.groups, transfer.modules)",
                                 name);
                        r = fn(msg, (size_t)(f - src), ud);
                        continue;
                }
                r = add_part(t, PART_FIELD, name, n, in_query);
        }
        if (r < 0 || bad) {
                ob_tpl_free(t);
                return r < 0 ? r : -OB_ETEMPLATE;
        }
        *ret = t;
        return 0;
}

struct ob_tpl_first {
        char *buf;
        size_t len;
        size_t *offset;
};

/* The first problem, and stop. */
static int ob_tpl_first_problem(const char *message, size_t offset, void *ud)
{
        struct ob_tpl_first *f = ud;
        snprintf(f->buf, f->len, "%s", message);
        *f->offset = offset;
        return -OB_ETEMPLATE;
}

int ob_tpl_parse(const char *src, enum ob_tpl_context ctx, struct ob_tpl **ret, char *errbuf, size_t errlen,
                 size_t *ret_offset)
{
        struct ob_tpl_first f = {errbuf, errlen, ret_offset};
        return ob_tpl_parse_each(src, ctx, ret, ob_tpl_first_problem, &f);
}

int ob_tpl_render(const struct ob_tpl *t, ob_tpl_lookup_fn lookup, void *userdata, struct ob_buf *out)
{
        for (size_t i = 0; i < t->nparts; i++) {
                const struct ob_tpl_part *p = &t->parts[i];
                int r;
                if (p->kind == PART_LITERAL) {
                        /* The configuration's text around a field is data in
                         * a JSON string or a form value, not syntax. */
                        size_t n = strlen(p->text);
                        r = p->ctx == OB_TPL_JSON   ? ob_escape_json(out, p->text, n)
                            : p->ctx == OB_TPL_FORM ? ob_escape_query(out, p->text, n)
                                                    : ob_buf_add(out, p->text, n);
                } else {
                        const char *v = lookup(p->text, userdata);
                        if (!v)
                                v = "";
                        struct ob_buf items;
                        ob_buf_init(&items);
                        if (list_field(p->text) && strchr(v, OB_TPL_LIST_SEP)) {
                                for (const char *c = v; *c; c++)
                                        if ((r = *c == OB_TPL_LIST_SEP ? ob_buf_adds(&items, ", ")
                                                                       : ob_buf_addc(&items, *c)) < 0) {
                                                ob_buf_free(&items);
                                                return r;
                                        }
                                v = items.data;
                        }
                        size_t n = strlen(v);
                        switch (p->ctx) {
                        case OB_TPL_URL:
                                r = p->in_query ? ob_escape_query(out, v, n) : ob_escape_path_segment(out, v, n);
                                break;
                        case OB_TPL_HEADER: r = ob_escape_header(out, v, n); break;
                        case OB_TPL_JSON: r = ob_escape_json(out, v, n); break;
                        case OB_TPL_FORM: r = ob_escape_query(out, v, n); break;
                        case OB_TPL_TEXT:
                        default: r = ob_buf_add(out, v, n); break;
                        }
                        ob_buf_free(&items);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int ob_tpl_attributes(const struct ob_tpl *t, int (*fn)(const char *attr, void *ud), void *ud)
{
        for (size_t i = 0; t && i < t->nparts; i++)
                if (t->parts[i].kind == PART_FIELD && strncmp(t->parts[i].text, "account.attr.", 13) == 0) {
                        int r = fn(t->parts[i].text + 13, ud);
                        if (r < 0)
                                return r;
                }
        return 0;
}

bool ob_tpl_uses_prefix(const struct ob_tpl *t, const char *prefix)
{
        size_t n = strlen(prefix);
        for (size_t i = 0; t && i < t->nparts; i++)
                if (t->parts[i].kind == PART_FIELD && strncmp(t->parts[i].text, prefix, n) == 0)
                        return true;
        return false;
}

void ob_json_tpl_free(struct ob_json_tpl *j)
{
        if (!j)
                return;
        for (size_t i = 0; i < j->nchildren; i++)
                ob_json_tpl_free(j->children[i]);
        free(j->children);
        free(j->key);
        ob_tpl_free(j->tpl);
        free(j->literal);
        free(j);
}

int ob_json_tpl_render(const struct ob_json_tpl *j, ob_tpl_lookup_fn lookup, void *userdata, struct ob_buf *out)
{
        int r = 0;
        switch (j->kind) {
        case OB_JSON_LITERAL:
                return ob_buf_adds(out, j->literal);
        case OB_JSON_STRING:
                if (j->tpl->nparts == 1 && j->tpl->parts[0].kind == PART_FIELD && json_field(j->tpl->parts[0].text)) {
                        /* "{{ transfer.modules }}" alone: its JSON form, made
                         * (and escaped) by the caller. None is an error, never
                         * an empty list. */
                        char name[160];
                        snprintf(name, sizeof(name), "%s%s", j->tpl->parts[0].text, OB_TPL_JSON_FORM);
                        const char *v = lookup(name, userdata);
                        return v && *v ? ob_buf_adds(out, v) : -OB_ETEMPLATE;
                }
                if (j->tpl->nparts == 1 && j->tpl->parts[0].kind == PART_FIELD && list_field(j->tpl->parts[0].text)) {
                        /* "{{ account.teams }}" alone: an array of its items. */
                        const char *v = lookup(j->tpl->parts[0].text, userdata);
                        r = ob_buf_addc(out, '[');
                        for (const char *it = v && *v ? v : NULL; r == 0 && it;) {
                                const char *end = strchr(it, OB_TPL_LIST_SEP);
                                size_t n = end ? (size_t)(end - it) : strlen(it);
                                if (it != v)
                                        r = ob_buf_addc(out, ',');
                                if (r == 0)
                                        r = ob_buf_addc(out, '"');
                                if (r == 0)
                                        r = ob_escape_json(out, it, n);
                                if (r == 0)
                                        r = ob_buf_addc(out, '"');
                                it = end ? end + 1 : NULL;
                        }
                        return r == 0 ? ob_buf_addc(out, ']') : r;
                }
                r = ob_buf_addc(out, '"');
                if (r == 0)
                        r = ob_tpl_render(j->tpl, lookup, userdata, out);
                if (r == 0)
                        r = ob_buf_addc(out, '"');
                return r;
        case OB_JSON_OBJECT:
        case OB_JSON_ARRAY:
                r = ob_buf_addc(out, j->kind == OB_JSON_OBJECT ? '{' : '[');
                for (size_t i = 0; r == 0 && i < j->nchildren; i++) {
                        const struct ob_json_tpl *c = j->children[i];
                        if (i > 0)
                                r = ob_buf_addc(out, ',');
                        if (r == 0 && j->kind == OB_JSON_OBJECT) {
                                r = ob_buf_addc(out, '"');
                                if (r == 0)
                                        r = ob_escape_json(out, c->key, strlen(c->key));
                                if (r == 0)
                                        r = ob_buf_adds(out, "\":");
                        }
                        if (r == 0)
                                r = ob_json_tpl_render(c, lookup, userdata, out);
                }
                if (r == 0)
                        r = ob_buf_addc(out, j->kind == OB_JSON_OBJECT ? '}' : ']');
                return r;
        }
        return -EINVAL;
}

int ob_json_tpl_render_form(const struct ob_json_tpl *j, ob_tpl_lookup_fn lookup, void *userdata,
                            struct ob_buf *out)
{
        for (size_t i = 0; i < j->nchildren; i++) {
                const struct ob_json_tpl *c = j->children[i];
                int r = 0;
                if (i > 0)
                        r = ob_buf_addc(out, '&');
                if (r == 0)
                        r = ob_escape_query(out, c->key, strlen(c->key));
                if (r == 0)
                        r = ob_buf_addc(out, '=');
                if (r == 0 && c->tpl)
                        r = ob_tpl_render(c->tpl, lookup, userdata, out);
                else if (r == 0 && c->literal)
                        r = ob_escape_query(out, c->literal, strlen(c->literal));
                if (r < 0)
                        return r;
        }
        return 0;
}

int ob_json_tpl_foreach(const struct ob_json_tpl *j, int (*fn)(const struct ob_tpl *t, void *ud), void *ud)
{
        if (!j)
                return 0;
        if (j->tpl) {
                int r = fn(j->tpl, ud);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < j->nchildren; i++) {
                int r = ob_json_tpl_foreach(j->children[i], fn, ud);
                if (r < 0)
                        return r;
        }
        return 0;
}
