/* config.c: YAML configuration, walked with handler tables (netplan's
 * parse.c is the model, minus its globals). Every error names the file, line
 * and column, and quotes the line. Nothing is kept from a failed load.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "connector.h"
#include "escape.h"
#include "metrics.h"
#include "util.h"

#ifndef OFFBOARD_DATADIR
#define OFFBOARD_DATADIR "/usr/share/offboard"
#endif

#define OB_CONFIG_MAX_BYTES (1024 * 1024)
#define OB_CONFIG_MAX_DEPTH 64     /* nested collections */
#define OB_CONFIG_MAX_NODES 100000 /* scalars, lists and mappings in one file */
#define OB_CONFIG_MAX_LIST 1000    /* entries in a list of names */

static const char *const ob_status_names[_OB_STATUS_MAX] = {
        [OB_STATUS_NONE] = "none",         [OB_STATUS_ACTIVE] = "active", [OB_STATUS_LOCKED] = "locked",
        [OB_STATUS_INACTIVE] = "inactive", [OB_STATUS_ENDED] = "ended",   [OB_STATUS_DELETED] = "deleted",
};

const char *ob_status_name(enum ob_status s)
{
        return s >= 0 && s < _OB_STATUS_MAX ? ob_status_names[s] : "?";
}

int ob_status_from_name(const char *name, enum ob_status *ret)
{
        for (int i = OB_STATUS_ACTIVE; i < _OB_STATUS_MAX; i++)
                if (strcmp(name, ob_status_names[i]) == 0) {
                        *ret = (enum ob_status)i;
                        return 0;
                }
        return -EINVAL;
}

/* ---- parse context and errors ------------------------------------------ */

/* One load, across the configuration and its mapping files: the errors, and
 * which parts failed, so that the checks that depend on them are skipped
 * rather than reporting a consequence as another mistake. */
struct loader {
        struct ob_config_errors *errs;
        bool full;             /* errs reached its cap: every walker stops */
        bool unknown_section;  /* a misspelt section: what it would define may be missing */
        bool directory_failed; /* directory: absent or refused */
        bool policies_failed;  /* a policies: entry, or a mapping file that may hold some, was refused */
        bool connectors_unknowable; /* no usable connectors: section, and a reason for it */
        bool actions_unknowable;
        bool transitions_unknowable;
};

struct pctx {
        const char *file;
        char *dir; /* directory of file, for relative paths */
        char *text;
        yaml_document_t doc;
        bool have_doc;
        struct loader *ld;
        size_t unknown_keys; /* said so far: a missing key may be the one misspelt */
        struct ob_config *cfg;
        yaml_node_t *safety_transitions; /* safety.transitions, resolved after transitions: */
        struct keyed *conn_keyed;        /* per connector */
        size_t nconn_keyed;
        struct keyed *action_keyed; /* per action */
        size_t naction_keyed;
};

/* Where a connector's or an action's keys were, for its kind's checks. */
struct keyed {
        yaml_node_t *map;
        yaml_node_t **nodes; /* per row of the kind's table; NULL: absent */
        bool failed;         /* an error was reported in it: the checks across it are skipped */
};

struct ob_config_check {
        struct pctx *p;
};

static bool is_word_char(char c)
{
        return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* An error quotes its line; a line that sets bind_password:, token: or
 * password: shows *** instead of the value, whatever the error is about. */
static void mask_secrets(char *line, size_t size)
{
        static const char *const keys[] = {"bind_password", "token", "password", NULL};
        for (char *s = line; *s; s++) {
                if (s > line && (is_word_char(s[-1]) || s[-1] == '\''))
                        continue;
                char *w = s;
                if (*w == '"' || *w == '\'')
                        w++;
                size_t n = 0;
                while (is_word_char(w[n]))
                        n++;
                bool secret = false;
                for (size_t i = 0; keys[i]; i++)
                        secret = secret || (strlen(keys[i]) == n && strncmp(w, keys[i], n) == 0);
                if (!secret)
                        continue;
                char *c = w + n;
                if (w != s && *c == *s)
                        c++;
                while (*c == ' ')
                        c++;
                if (*c != ':')
                        continue;
                c++;
                while (*c == ' ')
                        c++;
                if (*c) {
                        if ((size_t)(c - line) + 4 > size)
                                c = line + size - 4;
                        strcpy(c, "***");
                        return;
                }
        }
}

static void copy_line(struct pctx *p, size_t line0, struct ob_config_error *err)
{
        err->line[0] = '\0';
        if (!p->text)
                return;
        const char *s = p->text;
        for (size_t i = 0; i < line0 && s; i++) {
                s = strchr(s, '\n');
                if (s)
                        s++;
        }
        if (!s)
                return;
        size_t n = strcspn(s, "\n");
        if (n >= sizeof(err->line))
                n = sizeof(err->line) - 1;
        memcpy(err->line, s, n);
        err->line[n] = '\0';
        for (char *c = err->line; *c; c++)
                if (*c == '\t')
                        *c = ' ';
        mask_secrets(err->line, sizeof(err->line));
}

/* A new entry at the end of the list: 0 and *ret, 0 and NULL when the list
 * is full (then truncated: the load stops), or -ENOMEM. */
static int new_error(struct loader *ld, struct ob_config_error **ret)
{
        struct ob_config_errors *e = ld->errs;
        *ret = NULL;
        if (e->n >= OB_CONFIG_MAX_ERRORS) {
                e->truncated = true;
                ld->full = true;
                return 0;
        }
        if ((e->n & (e->n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
                struct ob_config_error *v = realloc(e->v, (e->n ? e->n * 2 : 1) * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                e->v = v;
        }
        *ret = &e->v[e->n++];
        **ret = (struct ob_config_error){0};
        return 0;
}

/* An error without a position: "message" as it is. */
__attribute__((format(printf, 2, 3))) static int fail_loader(struct loader *ld, const char *fmt, ...)
{
        struct ob_config_error *e;
        int r = new_error(ld, &e);
        if (r < 0)
                return r;
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return -OB_ECONFIG;
}

/* The error just reported, to amend; NULL if it was not kept (too many). */
static struct ob_config_error *last_error(struct pctx *p)
{
        return p->ld->full || p->ld->errs->n == 0 ? NULL : &p->ld->errs->v[p->ld->errs->n - 1];
}

static int failv(struct pctx *p, size_t line0, size_t col0, const char *fmt, va_list ap)
{
        struct ob_config_error *e;
        int r = new_error(p->ld, &e);
        if (r < 0)
                return r;
        if (!e)
                return -OB_ECONFIG;
        char msg[768];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        snprintf(e->message, sizeof(e->message), "%s:%zu:%zu: %s", p->file, line0 + 1, col0 + 1, msg);
        copy_line(p, line0, e);
        e->column = (int)col0 + 1;
        return -OB_ECONFIG;
}

/* After a failed key, item or section (r < 0): true to go on to the next
 * one, *bad remembering the failure; false to stop (out of memory, or the
 * list of errors is full). */
static bool go_on(const struct pctx *p, int r, int *bad)
{
        if (r != -OB_ECONFIG || p->ld->full)
                return false;
        *bad = r;
        return true;
}

__attribute__((format(printf, 3, 4))) static int fail(struct pctx *p, const yaml_node_t *n, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = failv(p, n ? n->start_mark.line : 0, n ? n->start_mark.column : 0, fmt, ap);
        va_end(ap);
        return r;
}

__attribute__((format(printf, 4, 5))) static int fail_off(struct pctx *p, const yaml_node_t *n, size_t off,
                                                          const char *fmt, ...)
{
        size_t extra = (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                               ? 1
                               : 0;
        va_list ap;
        va_start(ap, fmt);
        int r = failv(p, n->start_mark.line, n->start_mark.column + extra + off, fmt, ap);
        va_end(ap);
        return r;
}

__attribute__((format(printf, 2, 3))) static int fail_plain(struct pctx *p, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char msg[768];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return fail_loader(p->ld, "%s: %s", p->file, msg);
}

static const char *node_type_name(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_SCALAR_NODE: return "a scalar";
        case YAML_SEQUENCE_NODE: return "a list";
        case YAML_MAPPING_NODE: return "a mapping";
        default: return "nothing";
        }
}

static yaml_node_t *node(struct pctx *p, int id)
{
        return yaml_document_get_node(&p->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
        return (const char *)n->data.scalar.value;
}

static bool is_quoted(const yaml_node_t *n)
{
        return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
               n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
               n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE || n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
}

static int expect(struct pctx *p, const yaml_node_t *n, yaml_node_type_t type, const char *what)
{
        if (n->type != type)
                return fail(p, n, "%s must be %s, not %s", what,
                            type == YAML_SCALAR_NODE     ? "a scalar"
                            : type == YAML_SEQUENCE_NODE ? "a list"
                                                         : "a mapping",
                            node_type_name(n));
        if (type == YAML_SCALAR_NODE && strlen(scalar(n)) != n->data.scalar.length)
                return fail(p, n, "%s contains a NUL byte", what);
        return 0;
}

/* ---- scalar handlers ---------------------------------------------------- */

struct field;
typedef int (*handler_fn)(struct pctx *p, const char *key, yaml_node_t *v, void *dst);

struct field {
        const char *key;
        handler_fn fn;
        size_t offset;
        bool required;
};

static int h_str(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        char **s = dst;
        free(*s);
        *s = strdup(scalar(v));
        return *s ? 0 : -ENOMEM;
}

static int h_nonempty(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_str(p, key, v, dst);
        if (r == 0 && !**(char **)dst)
                return fail(p, v, "%s must not be empty", key);
        return r;
}

static int resolve_path(struct pctx *p, const char *path, char **ret)
{
        char *s;
        if (path[0] == '/' || !p->dir)
                s = strdup(path);
        else if (asprintf(&s, "%s/%s", p->dir, path) < 0)
                s = NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

#define OB_CREDENTIALS_PREFIX "${CREDENTIALS_DIRECTORY}/"

static int h_path(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r < 0)
                return r;
        char **s = dst;
        char *abs;
        /* systemd's LoadCredential= puts the secrets in a directory of the
         * unit's own (/run/credentials/UNIT/) and names it in the
         * environment: one configuration serves offboard.service,
         * offboard-reconcile.service and a run by hand. */
        if (strncmp(*s, OB_CREDENTIALS_PREFIX, strlen(OB_CREDENTIALS_PREFIX)) == 0) {
                const char *dir = getenv("CREDENTIALS_DIRECTORY");
                if (!dir || dir[0] != '/')
                        return fail(p, v,
                                    "%s names ${CREDENTIALS_DIRECTORY}, which is not set: systemd sets it for a "
                                    "unit with LoadCredential=; by hand, set it to the directory holding the "
                                    "credentials (CREDENTIALS_DIRECTORY=/etc/offboard/credentials)",
                                    key);
                if (asprintf(&abs, "%s/%s", dir, *s + strlen(OB_CREDENTIALS_PREFIX)) < 0)
                        return -ENOMEM;
                free(*s);
                *s = abs;
                return 0;
        }
        r = resolve_path(p, *s, &abs);
        if (r < 0)
                return r;
        free(*s);
        *s = abs;
        return 0;
}

static int h_bool(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        if (strcmp(scalar(v), "true") == 0)
                *(bool *)dst = true;
        else if (strcmp(scalar(v), "false") == 0)
                *(bool *)dst = false;
        else
                return fail(p, v, "%s must be true or false, not '%s'", key, scalar(v));
        return 0;
}

static int parse_int(struct pctx *p, const char *key, yaml_node_t *v, int64_t min, int64_t max, int64_t *ret)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        int64_t n = 0;
        if (ob_parse_i64(scalar(v), &n) < 0 || n < min || n > max)
                return fail(p, v, "%s must be a whole number from %lld to %lld, not '%s'", key, (long long)min,
                            (long long)max, scalar(v));
        *ret = n;
        return 0;
}

/* Handlers for whole numbers in a range, stored as the field's own type. */
#define INT_HANDLER(name, type, min, max)                                                  \
        static int name(struct pctx *p, const char *key, yaml_node_t *v, void *dst)        \
        {                                                                                  \
                int64_t n = 0;                                                             \
                int r = parse_int(p, key, v, (min), (max), &n);                            \
                if (r == 0)                                                                \
                        *(type *)dst = (type)n;                                            \
                return r;                                                                  \
        }

INT_HANDLER(h_page_size, int, 1, 10000)
INT_HANDLER(h_concurrency, int, 1, 256)
INT_HANDLER(h_size, size_t, 0, 100000000)
INT_HANDLER(h_percent, unsigned, 0, 100)
INT_HANDLER(h_max_pages, size_t, 1, 10000000)
INT_HANDLER(h_attempts, int, 1, 100)
INT_HANDLER(h_count, int, 0, 1000000)

static int h_duration(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        int64_t ms;
        if (ob_parse_duration_ms(scalar(v), &ms) < 0 || ms <= 0 || ms > 86400000LL * 365)
                return fail(p, v, "%s must be a duration such as 30s, 5m, 2h or 1d, not '%s'", key, scalar(v));
        *(int64_t *)dst = ms;
        return 0;
}

/* A scalar that must be one of names (NULL-terminated): *dst (an enum)
 * gets the value of the one it is. */
static int h_one_of(struct pctx *p, const char *key, yaml_node_t *v, int *dst, const char *const names[],
                    const int values[])
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        const char *s = scalar(v);
        char list[200] = "";
        size_t n = 0;
        for (size_t i = 0; names[i]; i++, n++)
                if (strcmp(s, names[i]) == 0) {
                        *dst = values[i];
                        return 0;
                }
        for (size_t i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", names[i],
                         i + 2 < n ? ", " : i + 2 == n ? " or " : "");
        return fail(p, v, "%s must be %s, not '%s'", key, list, s);
}

static int h_scope(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        static const char *const names[] = {"base", "one", "sub", NULL};
        static const int values[] = {OB_SCOPE_BASE, OB_SCOPE_ONE, OB_SCOPE_SUB};
        int x = 0;
        int r = h_one_of(p, key, v, &x, names, values);
        if (r == 0)
                *(enum ob_scope *)dst = (enum ob_scope)x;
        return r;
}

static bool attr_name_ok(const char *s)
{
        if (!isalpha((unsigned char)*s) && !isdigit((unsigned char)*s))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != ';')
                        return false;
        return true;
}

static int h_attr(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r == 0 && !attr_name_ok(*(char **)dst))
                return fail(p, v, "%s: '%s' is not an LDAP attribute name", key, *(char **)dst);
        return r;
}

/* writeback.object_class: an attribute name, or YAML's null (null, Null,
 * NULL, ~ or no value, unquoted): no class is ever added, the offboard*
 * attributes are allowed already (an AD schema that made offboardAccount an
 * auxiliary class of user). */
static int h_object_class(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        const char *s = v->type == YAML_SCALAR_NODE ? scalar(v) : "x";
        if (v->type == YAML_SCALAR_NODE && !is_quoted(v) &&
            (strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0 || strcmp(s, "~") == 0 ||
             !*s)) {
                free(*(char **)dst);
                *(char **)dst = NULL;
                p->cfg->writeback.no_object_class = true;
                return 0;
        }
        return h_attr(p, key, v, dst);
}

/* A distinguished name (RFC 4514 syntax; libldap stays in directory.c). */
static int h_dn(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r < 0)
                return r;
        if (!ob_dn_syntax_ok(*(char **)dst))
                return fail(p, v, "%s: '%s' is not a DN (for example uid=admin,ou=people,dc=example,dc=org)", key,
                            *(char **)dst);
        return 0;
}

/* A name to bind as: a DN, or what Active Directory also takes for a simple
 * bind (user@domain, DOMAIN\\user). Anything with '=' must be a DN. */
static int h_bind_name(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r < 0)
                return r;
        const char *s = *(char **)dst;
        if (strchr(s, '=') ? ob_dn_syntax_ok(s) : strchr(s, '@') || strchr(s, '\\'))
                return 0;
        return fail(p, v,
                    "%s: '%s' is not a DN (cn=offboard,ou=services,dc=example,dc=org), nor, for Active Directory, "
                    "user@domain or DOMAIN\\user",
                    key, s);
}

static int h_filter(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r < 0)
                return r;
        const char *s = *(char **)dst;
        int depth = 0;
        for (const char *c = s; *c; c++) {
                if (*c == '(')
                        depth++;
                else if (*c == ')' && --depth < 0)
                        break;
        }
        if (s[0] != '(' || depth != 0)
                return fail(p, v, "%s must be an LDAP filter in parentheses, such as (objectClass=person)", key);
        return 0;
}

/* A check of one entry of a list: 0, or its error. */
typedef int (*item_check_fn)(struct pctx *p, const char *key, yaml_node_t *e);

static int attr_item(struct pctx *p, const char *key, yaml_node_t *e)
{
        return attr_name_ok(scalar(e)) ? 0 : fail(p, e, "%s: '%s' is not an LDAP attribute name", key, scalar(e));
}

/* A list of scalars, or a single scalar. check (if any) vets each entry of
 * a list; every bad entry is reported. */
static int get_strlist(struct pctx *p, const char *key, yaml_node_t *v, char ***ret, item_check_fn check)
{
        char **list = NULL;
        int r;
        if (v->type == YAML_SCALAR_NODE) {
                r = ob_strv_add_unique_ci(&list, scalar(v));
                if (r < 0)
                        return r;
        } else if (v->type == YAML_SEQUENCE_NODE) {
                /* Entries are checked for duplicates one by one: a cap keeps that cheap. */
                if (v->data.sequence.items.top - v->data.sequence.items.start > OB_CONFIG_MAX_LIST)
                        return fail(p, v, "%s: more than %d entries", key, OB_CONFIG_MAX_LIST);
                int bad = 0;
                for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                        yaml_node_t *e = node(p, *i);
                        r = expect(p, e, YAML_SCALAR_NODE, key);
                        if (r == 0 && check)
                                r = check(p, key, e);
                        if (r == 0 && !bad)
                                r = ob_strv_add_unique_ci(&list, scalar(e));
                        if (r < 0 && !go_on(p, r, &bad)) {
                                ob_strv_free(list);
                                return r;
                        }
                }
                if (bad) {
                        ob_strv_free(list);
                        return bad;
                }
        } else {
                return fail(p, v, "%s must be a list", key);
        }
        *ret = list;
        return 0;
}

static int h_attrlist(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        char **l = NULL;
        int r = get_strlist(p, key, v, &l, attr_item);
        if (r < 0)
                return r;
        char ***d = dst;
        for (size_t i = 0; l && l[i]; i++)
                if ((r = ob_strv_add_unique_ci(d, l[i])) < 0)
                        break;
        ob_strv_free(l);
        return r;
}

/* The error names the key only; the quoted line shows *** from the value's
 * column on, so the secret never reaches a log. */
static int h_reject_secret(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        (void)dst;
        int r = fail(p, v,
                     "%s: secrets are never written in the configuration; put it in a file (mode 0600, or a "
                     "systemd credential) and name the file with %s_file",
                     key, key);
        struct ob_config_error *e = r == -OB_ECONFIG ? last_error(p) : NULL;
        if (!e)
                return r;
        size_t col = e->column > 0 ? (size_t)e->column - 1 : 0;
        if (col + 4 > sizeof(e->line))
                col = sizeof(e->line) - 4;
        if (col <= strlen(e->line))
                strcpy(e->line + col, "***");
        return r;
}

/* Walks a mapping with a handler table. Unknown keys, duplicates and missing
 * required keys are errors; each is reported, and the walk goes on to the
 * next key. A key whose value was refused counts as present; a missing one
 * is not said when an unknown key (perhaps it, misspelt) was. */
static int walk(struct pctx *p, yaml_node_t *map, const char *section, const struct field *fields, void *base)
{
        int r = expect(p, map, YAML_MAPPING_NODE, section);
        if (r < 0)
                return r;
        size_t nfields = 0;
        while (fields[nfields].key)
                nfields++;
        bool seen[64] = {0}, unknown = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                size_t i;
                for (i = 0; i < nfields; i++)
                        if (strcmp(fields[i].key, scalar(k)) == 0)
                                break;
                if (i == nfields) {
                        char known[512] = "";
                        for (size_t j = 0; j < nfields; j++) {
                                if (fields[j].fn == h_reject_secret)
                                        continue;
                                strncat(known, j ? ", " : "", sizeof(known) - strlen(known) - 1);
                                strncat(known, fields[j].key, sizeof(known) - strlen(known) - 1);
                        }
                        r = fail(p, k, "unknown key '%s' in %s (expected one of: %s)", scalar(k), section, known);
                        p->unknown_keys++;
                        unknown = true;
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                if (seen[i]) {
                        r = fail(p, k, "duplicate key '%s' in %s", scalar(k), section);
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                seen[i] = true;
                char what[160];
                snprintf(what, sizeof(what), "%s.%s", section, scalar(k));
                r = fields[i].fn(p, what, v, (char *)base + fields[i].offset);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        for (size_t i = 0; i < nfields; i++)
                if (fields[i].required && !seen[i]) {
                        r = unknown ? -OB_ECONFIG
                                    : fail(p, map, "%s: missing required key '%s'", section, fields[i].key);
                        if (!go_on(p, r, &bad))
                                return r;
                }
        return bad;
}

/* ---- conditions ---------------------------------------------------------- */

static int parse_status_list(struct pctx *p, const char *key, yaml_node_t *v, unsigned *ret, bool allow_none)
{
        unsigned mask = 0;
        yaml_node_t *one[1] = {v};
        yaml_node_t **items = one;
        size_t n = 1;
        yaml_node_t *buf[16];
        if (v->type == YAML_SEQUENCE_NODE) {
                n = 0;
                for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                        if (n == OB_ELEMENTSOF(buf))
                                return fail(p, v, "%s: too many statuses", key);
                        buf[n++] = node(p, *i);
                }
                items = buf;
        }
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
                int r = expect(p, items[i], YAML_SCALAR_NODE, key);
                enum ob_status s = OB_STATUS_NONE;
                if (r == 0 && allow_none && strcmp(scalar(items[i]), "none") == 0)
                        s = OB_STATUS_NONE;
                else if (r == 0 && ob_status_from_name(scalar(items[i]), &s) < 0)
                        r = fail(p, items[i],
                                 "%s: unknown status '%s' (expected active, locked, inactive, ended or deleted%s)", key,
                                 scalar(items[i]), allow_none ? ", or none for a first sighting" : "");
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
                if (r == 0)
                        mask |= 1u << s;
        }
        if (bad)
                return bad;
        *ret = mask;
        return 0;
}

static int parse_cond(struct pctx *p, yaml_node_t *v, bool allow_status, struct ob_cond **ret);

static int parse_timefmt(struct pctx *p, const char *key, yaml_node_t *v, enum ob_time_format *ret)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        const char *f = scalar(v);
        if (strcmp(f, "generalized") == 0)
                *ret = OB_TIMEFMT_GENERALIZED;
        else if (strcmp(f, "filetime") == 0)
                *ret = OB_TIMEFMT_FILETIME;
        else if (strcmp(f, "days") == 0)
                *ret = OB_TIMEFMT_DAYS;
        else
                return fail(p, v, "%s must name the time format: generalized, filetime or days, not '%s'", key, f);
        return 0;
}

static bool policy_name_ok(const char *s, size_t n)
{
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
                        return false;
        return true;
}

/* policy: NAME.attribute, resolved against the policies once every file is
 * read (a mapping's rules may come before the policies they use). */
static int parse_policy_ref(struct pctx *p, const char *key, yaml_node_t *v, struct ob_bound *b)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        const char *s = scalar(v), *dot = strchr(s, '.');
        if (!dot || dot == s || !policy_name_ok(s, (size_t)(dot - s)) || !attr_name_ok(dot + 1))
                return fail(p, v, "%s must be NAME.attribute (a policy of the policies: section and one of its "
                                  "entry's attributes), not '%s'",
                            key, s);
        b->kind = OB_BOUND_POLICY;
        b->policy = strndup(s, (size_t)(dot - s));
        b->attribute = strdup(dot + 1);
        if (asprintf(&b->where, "%s:%zu:%zu", p->file, v->start_mark.line + 1, v->start_mark.column + 1) < 0)
                b->where = NULL;
        return b->policy && b->attribute && b->where ? 0 : -ENOMEM;
}

/* at_least: / below: a whole number, or {policy: NAME.attr, zero: never}.
 * Each bad key is reported; a missing policy: is not said when an unknown
 * key (perhaps it, misspelt) was. */
static int parse_count_bound(struct pctx *p, const char *key, yaml_node_t *v, struct ob_bound *b)
{
        if (v->type == YAML_SCALAR_NODE) {
                if (ob_parse_i64(scalar(v), &b->number) < 0)
                        return fail(p, v, "%s must be a whole number or {policy: NAME.attribute}, not '%s'", key,
                                    scalar(v));
                b->kind = OB_BOUND_NUMBER;
                return 0;
        }
        int r = expect(p, v, YAML_MAPPING_NODE, key);
        if (r < 0)
                return r;
        yaml_node_t *pol = NULL;
        bool unknown = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0)
                        unknown = true;
                else if (strcmp(scalar(k), "policy") == 0)
                        pol = val;
                else if (strcmp(scalar(k), "zero") == 0) {
                        if ((r = expect(p, val, YAML_SCALAR_NODE, "zero")) == 0 && strcmp(scalar(val), "never") != 0)
                                r = fail(p, val, "%s.zero can only be never (a limit of 0 matches nothing)", key);
                        b->zero_never = r == 0;
                } else {
                        r = fail(p, k, "unknown key '%s' in %s (expected policy, zero)", scalar(k), key);
                        unknown = true;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if (!pol)
                r = unknown ? -OB_ECONFIG : fail(p, v, "%s needs policy: NAME.attribute", key);
        else
                r = parse_policy_ref(p, key, pol, b);
        return r < 0 ? r : bad;
}

/* The duration of within: a duration, or {policy: NAME.attr, unit: seconds|interval, zero: forever}. */
static int parse_within_duration(struct pctx *p, yaml_node_t *dur, struct ob_bound *b)
{
        if (dur->type == YAML_SCALAR_NODE) {
                int64_t ms;
                if (ob_parse_duration_ms(scalar(dur), &ms) < 0 || ms <= 0)
                        return fail(p, dur,
                                    "within.duration must be a duration such as 30m or 1d, or {policy: "
                                    "NAME.attribute, unit: seconds}, not '%s'",
                                    scalar(dur));
                b->kind = OB_BOUND_NUMBER;
                b->number = ms / 1000;
                return 0;
        }
        int r = expect(p, dur, YAML_MAPPING_NODE, "within.duration");
        if (r < 0)
                return r;
        yaml_node_t *pol = NULL, *unit = NULL;
        bool unknown = false, zero_bad = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = dur->data.mapping.pairs.start; pr < dur->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        unknown = true;
                } else if (strcmp(scalar(k), "policy") == 0) {
                        pol = val;
                } else if (strcmp(scalar(k), "unit") == 0) {
                        unit = val;
                } else if (strcmp(scalar(k), "zero") == 0) {
                        if ((r = expect(p, val, YAML_SCALAR_NODE, "zero")) == 0 && strcmp(scalar(val), "forever") != 0)
                                r = fail(p, val, "within.duration.zero can only be forever");
                        b->zero_forever = r == 0;
                        zero_bad = r < 0;
                } else {
                        r = fail(p, k, "unknown key '%s' in within.duration (expected policy, unit, zero)",
                                 scalar(k));
                        unknown = true;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if (!pol || !unit)
                return unknown ? -OB_ECONFIG
                               : fail(p, dur,
                                      "within.duration needs policy: NAME.attribute and unit: (seconds or interval)");
        if ((r = expect(p, unit, YAML_SCALAR_NODE, "unit")) == 0) {
                if (strcmp(scalar(unit), "seconds") == 0)
                        b->unit = OB_UNIT_SECONDS;
                else if (strcmp(scalar(unit), "interval") == 0)
                        b->unit = OB_UNIT_INTERVAL;
                else
                        r = fail(p, unit,
                                 "unit must be seconds or interval (AD: minus the count of 100 ns intervals), not "
                                 "'%s'",
                                 scalar(unit));
        }
        /* Said only of a unit and a zero: that were both read. */
        if (r == 0 && !zero_bad && b->unit == OB_UNIT_INTERVAL && b->zero_forever)
                r = fail(p, dur, "zero: forever is implied by unit: interval (0 and -9223372036854775808 are "
                                 "\"until an administrator unlocks\")");
        if (r < 0 && !go_on(p, r, &bad))
                return r;
        r = parse_policy_ref(p, "within.duration.policy", pol, b);
        return r < 0 ? r : bad;
}

/* within: {time: FORMAT, duration: 30m | {policy: NAME.attr, unit: seconds|interval, zero: forever}} */
static int parse_within(struct pctx *p, yaml_node_t *v, struct ob_cond *c)
{
        int r = expect(p, v, YAML_MAPPING_NODE, "within");
        if (r < 0)
                return r;
        yaml_node_t *time = NULL, *dur = NULL;
        bool unknown = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        unknown = true;
                } else if (strcmp(scalar(k), "time") == 0) {
                        time = val;
                } else if (strcmp(scalar(k), "duration") == 0) {
                        dur = val;
                } else {
                        r = fail(p, k, "unknown key '%s' in within (expected time, duration)", scalar(k));
                        unknown = true;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if ((!time || !dur) && !unknown &&
            !go_on(p, r = fail(p, v, "within needs time: (generalized, filetime or days) and duration:"), &bad))
                return r;
        if (time && (r = parse_timefmt(p, "within.time", time, &c->timefmt)) < 0 && !go_on(p, r, &bad))
                return r;
        if (dur && (r = parse_within_duration(p, dur, &c->bound)) < 0 && !go_on(p, r, &bad))
                return r;
        return bad;
}

/* at_or_after: {attribute: OTHER, time: FORMAT} */
static int parse_at_or_after(struct pctx *p, yaml_node_t *v, struct ob_cond *c)
{
        int r = expect(p, v, YAML_MAPPING_NODE, "at_or_after");
        if (r < 0)
                return r;
        yaml_node_t *time = NULL, *attr = NULL;
        bool unknown = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        unknown = true;
                } else if (strcmp(scalar(k), "time") == 0) {
                        time = val;
                } else if (strcmp(scalar(k), "attribute") == 0 && !attr) {
                        attr = val;
                        r = h_attr(p, "at_or_after.attribute", val, &c->bound.attribute);
                } else {
                        r = fail(p, k, "unknown key '%s' in at_or_after (expected attribute, time)", scalar(k));
                        unknown = true;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if ((!time || !attr) && !unknown &&
            !go_on(p, r = fail(p, v, "at_or_after needs attribute: (the other time) and time: (its format)"), &bad))
                return r;
        c->bound.kind = OB_BOUND_ATTRIBUTE;
        if (time && (r = parse_timefmt(p, "at_or_after.time", time, &c->timefmt)) < 0 && !go_on(p, r, &bad))
                return r;
        return bad;
}

/* all: / any: every condition of the list, each one's mistakes reported. */
static int parse_cond_list(struct pctx *p, yaml_node_t *v, bool allow_status, struct ob_cond *c, const char *key)
{
        if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
                return fail(p, v, "%s must be a non-empty list of conditions", key);
        int bad = 0;
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                struct ob_cond **s = realloc(c->sub, (c->nsub + 1) * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                c->sub = s;
                int r = parse_cond(p, node(p, *i), allow_status, &c->sub[c->nsub]);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
                if (r == 0)
                        c->nsub++;
        }
        return bad;
}

static const char ob_cond_tests[] = "present, equals, bits, passed, at_least, below, within, at_or_after, status, "
                                    "all, any or not";

/* The value of one test of a condition (ks, known) into c. */
static int parse_cond_test(struct pctx *p, yaml_node_t *k, yaml_node_t *val, bool allow_status, struct ob_cond *c)
{
        const char *ks = scalar(k);
        int r;
        if (strcmp(ks, "present") == 0) {
                bool b = false;
                r = h_bool(p, "present", val, &b);
                c->kind = b ? OB_COND_PRESENT : OB_COND_ABSENT;
                return r;
        }
        if (strcmp(ks, "equals") == 0) {
                c->kind = OB_COND_EQUALS;
                return get_strlist(p, "equals", val, &c->values, NULL);
        }
        if (strcmp(ks, "bits") == 0) {
                c->kind = OB_COND_BITS;
                if ((r = expect(p, val, YAML_SCALAR_NODE, "bits")) < 0)
                        return r;
                if (ob_parse_u64(scalar(val), &c->bits) < 0 || c->bits == 0)
                        return fail(p, val, "bits must be a non-zero number such as 0x2, not '%s'", scalar(val));
                return 0;
        }
        if (strcmp(ks, "passed") == 0) {
                c->kind = OB_COND_PASSED;
                if ((r = expect(p, val, YAML_SCALAR_NODE, "passed")) < 0)
                        return r;
                const char *f = scalar(val);
                if (strcmp(f, "generalized") == 0)
                        c->timefmt = OB_TIMEFMT_GENERALIZED;
                else if (strcmp(f, "filetime") == 0)
                        c->timefmt = OB_TIMEFMT_FILETIME;
                else if (strcmp(f, "days") == 0)
                        c->timefmt = OB_TIMEFMT_DAYS;
                else
                        return fail(p, val, "passed must name the time format: generalized, filetime or days, not '%s'",
                                    f);
                return 0;
        }
        if (strcmp(ks, "at_least") == 0 || strcmp(ks, "below") == 0) {
                c->kind = ks[0] == 'a' ? OB_COND_AT_LEAST : OB_COND_BELOW;
                return parse_count_bound(p, ks, val, &c->bound);
        }
        if (strcmp(ks, "within") == 0) {
                c->kind = OB_COND_WITHIN;
                return parse_within(p, val, c);
        }
        if (strcmp(ks, "at_or_after") == 0) {
                c->kind = OB_COND_AT_OR_AFTER;
                return parse_at_or_after(p, val, c);
        }
        if (strcmp(ks, "status") == 0) {
                c->kind = OB_COND_STATUS;
                return parse_status_list(p, "status", val, &c->status_mask, false);
        }
        if (strcmp(ks, "all") == 0 || strcmp(ks, "any") == 0) {
                c->kind = ks[1] == 'l' ? OB_COND_ALL : OB_COND_ANY;
                return parse_cond_list(p, val, allow_status, c, ks);
        }
        c->kind = OB_COND_NOT;
        if (!(c->sub = calloc(1, sizeof(*c->sub))))
                return -ENOMEM;
        if ((r = parse_cond(p, val, allow_status, &c->sub[0])) == 0)
                c->nsub = 1;
        return r;
}

static bool cond_test_known(const char *ks)
{
        static const char *const tests[] = {"present", "equals", "bits",   "passed", "at_least", "below", "within",
                                            "at_or_after", "status", "all", "any", "not", NULL};
        for (size_t i = 0; tests[i]; i++)
                if (strcmp(ks, tests[i]) == 0)
                        return true;
        return false;
}

/* A condition: each of its keys is checked, and each nested condition.
 * What the keys must be together (one test; an attribute: with the tests
 * that read one) is not said when an unknown key, perhaps the missing one
 * misspelt, was. */
static int parse_cond(struct pctx *p, yaml_node_t *v, bool allow_status, struct ob_cond **ret)
{
        int r = expect(p, v, YAML_MAPPING_NODE, "a condition (when)");
        if (r < 0)
                return r;
        struct ob_cond *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        yaml_node_t *attr = NULL, *pred = NULL;
        const char *pred_key = NULL;
        bool unknown = false;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        unknown = true;
                } else if (strcmp(scalar(k), "attribute") == 0) {
                        attr = val;
                        r = h_attr(p, "attribute", val, &c->attribute);
                } else if (!allow_status && strcmp(scalar(k), "status") == 0) {
                        /* Out of place as an unknown key is: what goes with it is not said. */
                        r = fail(p, k, "a mapping rule cannot test the status it derives");
                        unknown = true;
                } else if (!cond_test_known(scalar(k))) {
                        r = fail(p, k,
                                 "unknown key '%s' in a condition (expected attribute with present, equals, bits, "
                                 "passed, at_least, below, within or at_or_after; or status, all, any, not)",
                                 scalar(k));
                        unknown = true;
                } else if (pred) {
                        /* One test per condition; the second one's value is checked all the same. */
                        r = fail(p, k, "a condition takes one test (%s); combine several with all: or any:",
                                 ob_cond_tests);
                        if (r == -OB_ECONFIG && !p->ld->full) {
                                struct ob_cond *extra = calloc(1, sizeof(*extra));
                                int e = extra ? parse_cond_test(p, k, val, allow_status, extra) : -ENOMEM;
                                ob_cond_free(extra);
                                r = e < 0 && e != -OB_ECONFIG ? e : r;
                        }
                } else {
                        pred = val;
                        pred_key = scalar(k);
                        r = parse_cond_test(p, k, val, allow_status, c);
                }
                if (r < 0 && !go_on(p, r, &bad))
                        goto out;
        }
        if (!pred) {
                r = unknown ? -OB_ECONFIG : fail(p, v, "a condition needs a test: %s", ob_cond_tests);
                goto out;
        }
        bool needs_attr = c->kind == OB_COND_PRESENT || c->kind == OB_COND_ABSENT || c->kind == OB_COND_EQUALS ||
                          c->kind == OB_COND_BITS || c->kind == OB_COND_PASSED || c->kind == OB_COND_AT_LEAST ||
                          c->kind == OB_COND_BELOW || c->kind == OB_COND_WITHIN || c->kind == OB_COND_AT_OR_AFTER;
        r = 0;
        if (needs_attr && !attr && !unknown)
                r = fail(p, v, "the test '%s' needs an attribute: key", pred_key);
        if (!needs_attr && attr)
                r = fail(p, attr, "attribute: has no meaning with '%s'", pred_key);
        if (r < 0 && !go_on(p, r, &bad))
                goto out;
        if (bad) {
                r = bad;
                goto out;
        }
        *ret = c;
        return 0;
out:
        ob_cond_free(c);
        return r;
}

/* ---- policies ------------------------------------------------------------ */

static int set_source(struct pctx *p, const yaml_node_t *n, char **ret);

/* A policy's DN may name ${base} (directory.base) and ${naming_context}
 * (the root DSE's defaultNamingContext, read at the start of the pass: AD's
 * domain head); policy.c replaces them. */
static int h_policy_dn(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_nonempty(p, key, v, dst);
        if (r < 0)
                return r;
        char *dn = strdup(*(char **)dst), *at;
        if (!dn)
                return -ENOMEM;
        static const char *const names[] = {"${base}", "${naming_context}"};
        for (size_t i = 0; i < OB_ELEMENTSOF(names); i++)
                while ((at = strstr(dn, names[i]))) {
                        /* Stand-in of the same shape: the rest must be a DN around it. */
                        memmove(at + 4, at + strlen(names[i]), strlen(at + strlen(names[i])) + 1);
                        memcpy(at, "dc=x", 4);
                }
        bool ok = !strstr(dn, "${") && ob_dn_syntax_ok(dn);
        free(dn);
        if (!ok)
                return fail(p, v,
                            "%s: '%s' is not a DN (placeholders: ${base}, ${naming_context}; for example "
                            "cn=global_policy,cn=EXAMPLE.ORG,cn=kerberos,dc=example,dc=org)",
                            key, *(char **)dst);
        return 0;
}

/* policies: NAME: {dn: DN, attributes: [..]}, in the configuration and in
 * mapping files. The same name in several files is one policy: the
 * configuration (read first) gives its dn where a mapping gives a default
 * (FreeIPA's realm is the site's own); attributes add up. */
static int parse_policies(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int r = expect(p, v, YAML_MAPPING_NODE, "policies");
        if (r < 0)
                return r;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a policy name")) < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                const char *name = scalar(k);
                if (!policy_name_ok(name, strlen(name))) {
                        r = fail(p, k, "policy names use letters, digits, '-' and '_': '%s'", name);
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                struct ob_policy *pol = NULL;
                for (size_t i = 0; i < c->npolicies && !pol; i++)
                        if (strcmp(c->policies[i].name, name) == 0)
                                pol = &c->policies[i];
                if (!pol) {
                        if (c->npolicies >= 64)
                                return fail(p, k, "too many policies (at most 64)");
                        struct ob_policy *n = realloc(c->policies, (c->npolicies + 1) * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        c->policies = n;
                        pol = &c->policies[c->npolicies++];
                        *pol = (struct ob_policy){.name = strdup(name)};
                        if (!pol->name || (r = set_source(p, k, &pol->source)) < 0)
                                return r < 0 ? r : -ENOMEM;
                }
                struct ob_policy t = {0};
                const struct field f[] = {
                        {"dn", h_policy_dn, offsetof(struct ob_policy, dn), false},
                        {"attributes", h_attrlist, offsetof(struct ob_policy, attributes), false},
                        {NULL},
                };
                char section[100];
                snprintf(section, sizeof(section), "policies.%s", name);
                r = walk(p, val, section, f, &t);
                if (r == 0 && !pol->dn) {
                        pol->dn = t.dn;
                        t.dn = NULL;
                }
                for (size_t i = 0; r == 0 && t.attributes && t.attributes[i]; i++)
                        r = ob_strv_add_unique_ci(&pol->attributes, t.attributes[i]);
                free(t.dn);
                ob_strv_free(t.attributes);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

struct bound_check {
        struct ob_config *c;
        struct loader *ld;
        bool no_dn_said[64]; /* per policy (at most 64): its missing dn is reported once */
        int bad;
};

/* After a failed bound: 0 to go on to the next, or r to stop. */
static int bound_go_on(struct bound_check *bc, int r)
{
        if (r != -OB_ECONFIG || bc->ld->full)
                return r;
        bc->bad = r;
        return 0;
}

/* Every policy a condition names exists and has a DN; its attribute is
 * added to what the pass reads (and requires) of that policy's entry. Each
 * unknown name is reported where it is written, and each policy without a
 * dn once. */
static int resolve_bound(struct ob_bound *b, void *ud)
{
        struct bound_check *bc = ud;
        for (size_t i = 0; i < bc->c->npolicies; i++) {
                struct ob_policy *pol = &bc->c->policies[i];
                if (strcmp(pol->name, b->policy) != 0)
                        continue;
                if (!pol->dn) {
                        if (i < OB_ELEMENTSOF(bc->no_dn_said) && bc->no_dn_said[i])
                                return bound_go_on(bc, -OB_ECONFIG);
                        if (i < OB_ELEMENTSOF(bc->no_dn_said))
                                bc->no_dn_said[i] = true;
                        return bound_go_on(bc, fail_loader(bc->ld,
                                                           "%s: policy '%s' has no dn: set policies.%s.dn in the "
                                                           "configuration",
                                                           pol->source, pol->name, pol->name));
                }
                b->policy_index = i;
                return ob_strv_add_unique_ci(&pol->attributes, b->attribute);
        }
        char known[400] = "";
        for (size_t i = 0; i < bc->c->npolicies; i++) {
                strncat(known, i ? ", " : "", sizeof(known) - strlen(known) - 1);
                strncat(known, bc->c->policies[i].name, sizeof(known) - strlen(known) - 1);
        }
        return bound_go_on(bc, fail_loader(bc->ld, "%s: unknown policy '%s' (%s%s)", b->where, b->policy,
                                           bc->c->npolicies ? "policies: " : "no policies: section defines one",
                                           bc->c->npolicies ? known : ""));
}

static int resolve_policies(struct ob_config *c, struct loader *ld)
{
        struct bound_check bc = {.c = c, .ld = ld};
        int r = 0;
        for (size_t i = 0; r == 0 && i < c->nrules; i++)
                r = ob_cond_foreach_bound(c->rules[i].when, resolve_bound, &bc);
        for (size_t i = 0; r == 0 && i < c->nactions; i++) {
                r = ob_cond_foreach_bound(c->actions[i].when, resolve_bound, &bc);
                for (size_t m = 0; r == 0 && m < c->actions[i].nmodules; m++)
                        r = ob_cond_foreach_bound(c->actions[i].modules[m].when, resolve_bound, &bc);
        }
        for (size_t i = 0; r == 0 && i < c->ntransitions; i++)
                r = ob_cond_foreach_bound(c->transitions[i].when, resolve_bound, &bc);
        for (size_t i = 0; r == 0 && i < c->npolicies; i++)
                if (!c->policies[i].dn && !(i < OB_ELEMENTSOF(bc.no_dn_said) && bc.no_dn_said[i]))
                        r = bound_go_on(&bc,
                                        fail_loader(ld,
                                                    "%s: policy '%s' has no dn: set policies.%s.dn in the "
                                                    "configuration",
                                                    c->policies[i].source, c->policies[i].name, c->policies[i].name));
        return r < 0 ? r : bc.bad;
}

/* ---- templates ------------------------------------------------------------ */

struct tpl_problems {
        struct pctx *p;
        yaml_node_t *v;
        const char *key;
        int bad;
};

/* One problem of a template, said where it is in the scalar; 0 to go on. */
static int tpl_problem(const char *message, size_t offset, void *ud)
{
        struct tpl_problems *t = ud;
        int r = fail_off(t->p, t->v, offset, "%s: %s", t->key, message);
        return go_on(t->p, r, &t->bad) ? 0 : r;
}

/* A template: each of its problems is said. */
static int parse_tpl(struct pctx *p, yaml_node_t *v, enum ob_tpl_context ctx, const char *key, struct ob_tpl **ret)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        struct tpl_problems tp = {.p = p, .v = v, .key = key};
        r = ob_tpl_parse_each(scalar(v), ctx, ret, tpl_problem, &tp);
        return r == -OB_ETEMPLATE ? tp.bad : r;
}

static int parse_json_tpl(struct pctx *p, yaml_node_t *v, const char *key, enum ob_tpl_context ctx, int depth,
                          struct ob_json_tpl **ret)
{
        if (depth > 32)
                return fail(p, v, "%s is nested too deeply", key);
        struct ob_json_tpl *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        int r = 0;
        if (v->type == YAML_SCALAR_NODE) {
                const char *s = scalar(v);
                bool word = false, number = false;
                int64_t n = 0;
                if (!is_quoted(v) && ctx == OB_TPL_JSON) {
                        word = strcmp(s, "true") == 0 || strcmp(s, "false") == 0 || strcmp(s, "null") == 0;
                        number = !word && ob_parse_i64(s, &n) == 0;
                }
                if (word) {
                        j->kind = OB_JSON_LITERAL;
                        j->literal = strdup(s);
                        r = j->literal ? 0 : -ENOMEM;
                } else if (number) {
                        /* Written from its value: +5, 007 and -0 are not JSON; 5, 7 and 0 are. */
                        j->kind = OB_JSON_LITERAL;
                        if (asprintf(&j->literal, "%lld", (long long)n) < 0)
                                j->literal = NULL;
                        r = j->literal ? 0 : -ENOMEM;
                } else {
                        j->kind = OB_JSON_STRING;
                        r = parse_tpl(p, v, ctx, key, &j->tpl);
                }
        } else if (v->type == YAML_SEQUENCE_NODE) {
                j->kind = OB_JSON_ARRAY;
                /* A form's list: its items are not read, being out of place. */
                if (ctx == OB_TPL_FORM)
                        r = fail(p, v, "%s: a form body holds only name: value pairs", key);
                int bad = 0;
                for (yaml_node_item_t *i = v->data.sequence.items.start; r == 0 && i < v->data.sequence.items.top;
                     i++) {
                        struct ob_json_tpl **c = realloc(j->children, (j->nchildren + 1) * sizeof(*c));
                        if (!c) {
                                r = -ENOMEM;
                                break;
                        }
                        j->children = c;
                        r = parse_json_tpl(p, node(p, *i), key, ctx, depth + 1, &j->children[j->nchildren]);
                        if (r == 0)
                                j->nchildren++;
                        else if (go_on(p, r, &bad))
                                r = 0;
                }
                r = r < 0 ? r : bad;
        } else if (v->type == YAML_MAPPING_NODE) {
                j->kind = OB_JSON_OBJECT;
                int bad = 0;
                for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; r == 0 && pr < v->data.mapping.pairs.top;
                     pr++) {
                        yaml_node_t *k = node(p, pr->key);
                        r = expect(p, k, YAML_SCALAR_NODE, "a key");
                        if (r == 0 && ctx == OB_TPL_FORM && node(p, pr->value)->type != YAML_SCALAR_NODE)
                                r = fail(p, node(p, pr->value), "%s: a form value must be a scalar", key);
                        if (r < 0) {
                                if (go_on(p, r, &bad))
                                        r = 0;
                                continue;
                        }
                        struct ob_json_tpl **c = realloc(j->children, (j->nchildren + 1) * sizeof(*c));
                        if (!c) {
                                r = -ENOMEM;
                                break;
                        }
                        j->children = c;
                        r = parse_json_tpl(p, node(p, pr->value), key, ctx, depth + 1, &j->children[j->nchildren]);
                        if (r == 0) {
                                j->children[j->nchildren]->key = strdup(scalar(k));
                                j->nchildren++;
                                if (!j->children[j->nchildren - 1]->key)
                                        r = -ENOMEM;
                        } else if (go_on(p, r, &bad)) {
                                r = 0;
                        }
                }
                r = r < 0 ? r : bad;
        } else {
                r = fail(p, v, "%s: unsupported value", key);
        }
        if (r < 0) {
                ob_json_tpl_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

static void free_headers(struct ob_header_tpl *h, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(h[i].name);
                ob_tpl_free(h[i].value);
                free(h[i].secret_file);
        }
        free(h);
}

static bool header_name_ok(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                        return false;
        return true;
}

/* Each header is checked, whatever the others: its name, then its value. */
static int parse_headers(struct pctx *p, yaml_node_t *v, const char *key, const struct ob_key_spec *spec,
                         struct ob_header_tpl **ret, size_t *ret_n)
{
        int r = expect(p, v, YAML_MAPPING_NODE, key);
        if (r < 0)
                return r;
        size_t n = 0;
        struct ob_header_tpl *h = NULL;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                r = expect(p, k, YAML_SCALAR_NODE, "a header name");
                if (r == 0 && !header_name_ok(scalar(k)))
                        r = fail(p, k, "%s: '%s' is not a valid header name", key, scalar(k));
                if (r == 0 && spec->reject && strcasecmp(scalar(k), spec->reject) == 0)
                        r = fail(p, k, "%s: %s", key, spec->hint ? spec->hint : "not allowed here");
                if (r < 0) {
                        if (!go_on(p, r, &bad))
                                break;
                        continue;
                }
                struct ob_header_tpl *nh = realloc(h, (n + 1) * sizeof(*nh));
                if (!nh) {
                        r = -ENOMEM;
                        break;
                }
                h = nh;
                h[n] = (struct ob_header_tpl){0};
                h[n].name = strdup(scalar(k));
                n++;
                if (!h[n - 1].name) {
                        r = -ENOMEM;
                        break;
                }
                yaml_node_t *vv = node(p, pr->value);
                if (vv->type == YAML_MAPPING_NODE) {
                        /* {value_file: PATH}: a secret, read by the connector. */
                        char what[200];
                        /* Only a name for messages: a long one is cut. */
                        if (snprintf(what, sizeof(what), "%s.%s", key, scalar(k)) >= (int)sizeof(what))
                                what[sizeof(what) - 1] = '\0';
                        const struct field f[] = {
                                {"value_file", h_path, offsetof(struct ob_header_tpl, secret_file), true},
                                {NULL},
                        };
                        r = walk(p, vv, what, f, &h[n - 1]);
                } else {
                        r = parse_tpl(p, vv, OB_TPL_HEADER, key, &h[n - 1].value);
                }
                if (r < 0 && !go_on(p, r, &bad))
                        break;
                r = 0;
        }
        if (r < 0 || bad) {
                free_headers(h, n);
                return r < 0 ? r : bad;
        }
        *ret = h;
        *ret_n = n;
        return 0;
}

/* ---- sections ------------------------------------------------------------- */

/* The value of key in mapping m (already walked), or m itself. */
static yaml_node_t *find_value(struct pctx *p, yaml_node_t *m, const char *key)
{
        for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++)
                if (strcmp(scalar(node(p, pr->key)), key) == 0)
                        return node(p, pr->value);
        return m;
}

static int h_teams(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        struct ob_directory_config *d = dst;
        const struct field f[] = {
                {"base", h_dn, offsetof(struct ob_directory_config, teams_base), true},
                {"filter", h_filter, offsetof(struct ob_directory_config, teams_filter), false},
                {"member_attribute", h_attr, offsetof(struct ob_directory_config, teams_member_attribute), false},
                {"owner_attribute", h_attr, offsetof(struct ob_directory_config, teams_owner_attribute), false},
                {NULL},
        };
        return walk(p, v, key, f, d);
}

static int parse_directory(struct pctx *p, yaml_node_t *v)
{
        struct ob_directory_config *d = &p->cfg->directory;
#define D(x) offsetof(struct ob_directory_config, x)
        const struct field f[] = {
                {"uri", h_nonempty, D(uri), true},
                {"starttls", h_bool, D(starttls), false},
                {"tls_verify", h_bool, D(tls_verify), false},
                {"ca_file", h_path, D(ca_file), false},
                {"allow_insecure", h_bool, D(allow_insecure), false},
                {"bind_dn", h_bind_name, D(bind_dn), false},
                {"bind_password_file", h_path, D(bind_password_file), false},
                {"bind_password", h_reject_secret, 0, false},
                {"sasl_external", h_bool, D(sasl_external), false},
                {"base", h_dn, D(base), true},
                {"scope", h_scope, D(scope), false},
                {"filter", h_filter, D(filter), false},
                {"page_size", h_page_size, D(page_size), false},
                {"timeout", h_duration, D(timeout_ms), false},
                {"search_deadline", h_duration, D(search_deadline_ms), false},
                {"max_pages", h_max_pages, D(max_pages), false},
                {"min_accounts", h_size, D(min_accounts), false},
                {"id_attribute", h_attr, D(id_attribute), false},
                {"username_attribute", h_attr, D(username_attribute), false},
                {"mail_attribute", h_attr, D(mail_attribute), false},
                {"name_attribute", h_attr, D(name_attribute), false},
                {"manager_attribute", h_attr, D(manager_attribute), false},
                {"attributes", h_attrlist, D(attributes), false},
                {"teams", h_teams, 0, false},
                {NULL},
        };
#undef D
        int r = walk(p, v, "directory", f, d);
        if (r < 0)
                return r;
        /* Each rule across keys is said; one that rests on a bad uri is not. */
        int bad = 0;
        yaml_node_t *urin = find_value(p, v, "uri");
        bool uri_ok = strncmp(d->uri, "ldap://", 7) == 0 || strncmp(d->uri, "ldaps://", 8) == 0 ||
                      strncmp(d->uri, "ldapi://", 8) == 0;
        if (!uri_ok &&
            !go_on(p, r = fail(p, urin, "directory.uri must start with ldap://, ldaps:// or ldapi://"), &bad))
                return r;
        if (uri_ok && strncmp(d->uri, "ldap://", 7) == 0 && !d->starttls && !d->allow_insecure &&
            !go_on(p,
                   r = fail(p, find_value(p, v, "starttls"),
                            "directory.starttls: plain ldap:// without StartTLS sends every search and any bind in "
                            "clear text; use ldaps://, ldapi:// or starttls: true, or set allow_insecure: true"),
                   &bad))
                return r;
        if (d->bind_dn && !d->bind_password_file && !d->sasl_external &&
            !go_on(p,
                   r = fail(p, v, "directory: bind_dn needs bind_password_file (the password is read from a file)"),
                   &bad))
                return r;
        if (uri_ok && d->sasl_external && strncmp(d->uri, "ldapi://", 8) != 0 &&
            !go_on(p, r = fail(p, urin, "directory: sasl_external works over ldapi:// only"), &bad))
                return r;
        return bad;
}

static int parse_writeback(struct pctx *p, yaml_node_t *v)
{
        struct ob_writeback_config *w = &p->cfg->writeback;
#define W(x) offsetof(struct ob_writeback_config, x)
        const struct field f[] = {
                {"enabled", h_bool, W(enabled), false},
                {"object_class", h_object_class, W(object_class), false},
                {"status_attribute", h_attr, W(status_attribute), false},
                {"time_attribute", h_attr, W(time_attribute), false},
                {"reason_attribute", h_attr, W(reason_attribute), false},
                {"actions_attribute", h_attr, W(actions_attribute), false},
                {"assertion_attribute", h_attr, W(assertion_attribute), false},
                {NULL},
        };
#undef W
        return walk(p, v, "writeback", f, w);
}

static int parse_state(struct pctx *p, yaml_node_t *v)
{
        const struct field f[] = {
                {"path", h_path, offsetof(struct ob_config, state_path), true},
                {"journal", h_path, offsetof(struct ob_config, journal_path), false},
                {NULL},
        };
        return walk(p, v, "state", f, p->cfg);
}

static int h_feed(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        static const char *const names[] = {"auto", "syncrepl", "poll", "dirsync", "none", NULL};
        static const int values[] = {OB_FEED_AUTO, OB_FEED_SYNCREPL, OB_FEED_POLL, OB_FEED_DIRSYNC, OB_FEED_NONE};
        int x = 0;
        int r = h_one_of(p, key, v, &x, names, values);
        if (r == 0)
                *(enum ob_feed *)dst = (enum ob_feed)x;
        return r;
}

static int h_changelog(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        static const char *const names[] = {"auto", "off", "require", NULL};
        static const int values[] = {OB_CHANGELOG_AUTO, OB_CHANGELOG_OFF, OB_CHANGELOG_REQUIRE};
        int x = 0;
        int r = h_one_of(p, key, v, &x, names, values);
        if (r == 0)
                *(enum ob_changelog *)dst = (enum ob_changelog)x;
        return r;
}

/* service.listen: the health and metrics endpoint answers on loopback only. */
static int h_listen(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = h_str(p, key, v, dst);
        const char *why;
        if (r == 0 && ob_metrics_check_listen(*(char **)dst, &why) < 0)
                return fail(p, v,
                            "%s: '%s' %s; it must be 127.x.y.z:PORT, [::1]:PORT, localhost:PORT or "
                            "unix:/absolute/path",
                            key, *(char **)dst, why);
        return r;
}

static int parse_service(struct pctx *p, yaml_node_t *v)
{
        const struct field f[] = {
                {"drain_timeout", h_duration, offsetof(struct ob_config, drain_timeout_ms), false},
                {"full_pass_interval", h_duration, offsetof(struct ob_config, full_pass_interval_ms), false},
                {"feed", h_feed, offsetof(struct ob_config, feed), false},
                {"poll_interval", h_duration, offsetof(struct ob_config, poll_interval_ms), false},
                {"changelog", h_changelog, offsetof(struct ob_config, changelog), false},
                {"listen", h_listen, offsetof(struct ob_config, listen), false},
                {NULL},
        };
        int r = walk(p, v, "service", f, p->cfg);
        /* Only the feeds that read a directory's changes can read its
         * changelog: required with none of them, it could never be. */
        if (r == 0 && p->cfg->changelog == OB_CHANGELOG_REQUIRE &&
            (p->cfg->feed == OB_FEED_NONE || p->cfg->feed == OB_FEED_DIRSYNC))
                return fail(p, find_value(p, v, "changelog"),
                            "service.changelog: 'require' needs a feed that can read it (service.feed: auto, "
                            "syncrepl or poll), not '%s'",
                            p->cfg->feed == OB_FEED_NONE ? "none" : "dirsync");
        return r;
}

static int dn_item(struct pctx *p, const char *key, yaml_node_t *e)
{
        return ob_dn_syntax_ok(scalar(e))
                       ? 0
                       : fail(p, e, "%s: '%s' is not a DN (for example cn=it,ou=teams,dc=example,dc=org)", key,
                              scalar(e));
}

/* A list of distinguished names, each checked where it stands. */
static int h_dnlist(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        if (v->type != YAML_SEQUENCE_NODE)
                return fail(p, v, "%s must be a list of DNs", key);
        char **l = NULL;
        int r = get_strlist(p, key, v, &l, dn_item);
        if (r < 0)
                return r;
        ob_strv_free(*(char ***)dst);
        *(char ***)dst = l;
        return 0;
}

static int parse_transfer(struct pctx *p, yaml_node_t *v)
{
        const struct field f[] = {
                {"fallback", h_dn, offsetof(struct ob_config, transfer_fallback), false},
                {"leader_of", h_dnlist, offsetof(struct ob_config, transfer_leader_of), false},
                {NULL},
        };
        return walk(p, v, "transfer", f, p->cfg);
}

/* ---- guards ---------------------------------------------------------------- */

static bool name_ok(const char *s);

static int h_strlist(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        char **l = NULL;
        int r = get_strlist(p, key, v, &l, NULL);
        if (r < 0)
                return r;
        ob_strv_free(*(char ***)dst);
        *(char ***)dst = l;
        return 0;
}

static int h_guard_role(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        const struct field f[] = {
                {"attribute", h_attr, offsetof(struct ob_guard, role_attribute), true},
                {"ranks", h_strlist, offsetof(struct ob_guard, ranks), true},
                {"above", h_nonempty, offsetof(struct ob_guard, role_above), true},
                {NULL},
        };
        struct ob_guard *g = dst;
        int r = walk(p, v, key, f, g);
        if (r < 0)
                return r;
        for (size_t i = 0; g->ranks && g->ranks[i]; i++)
                if (ob_streq_ci(g->ranks[i], g->role_above)) {
                        g->above = i;
                        return 0;
                }
        return fail(p, find_value(p, v, "above"), "%s.above: '%s' is not one of ranks", key, g->role_above);
}

/* guards.X.connector: an http connector, defined above (connectors and
 * actions are parsed before guards). */
static struct ob_connector *find_connector(struct ob_config *c, const char *name);
static yaml_node_t *value_of(struct pctx *p, yaml_node_t *m, const char *key);

static int h_guard_connector(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        int r = expect(p, v, YAML_SCALAR_NODE, key);
        if (r < 0)
                return r;
        struct ob_connector *k = find_connector(p->cfg, scalar(v));
        if (!k) {
                /* No connectors: section to look in (refused, or perhaps misspelt): said already. */
                if (p->ld->connectors_unknowable)
                        return -OB_ECONFIG;
                return fail(p, v, "%s: unknown connector '%s' (define it under connectors:)", key, scalar(v));
        }
        if (!k->kind || !k->settings) /* its type was refused: said there */
                return -OB_ECONFIG;
        if (k->kind != &ob_http_kind)
                return fail(p, v, "%s: '%s' is a %s connector; a guard asks an http connector (GET base_url + url)",
                            key, scalar(v), k->kind->name);
        *(struct ob_connector **)dst = k;
        return 0;
}

/* guards.X.url: a path under the connector's base_url whose fields are the
 * account's own (account.*, no list): the guard is asked before the
 * account's teams and transfer target are read. */
static int h_guard_url(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        struct ob_tpl **t = dst;
        int r = parse_tpl(p, v, OB_TPL_URL, key, t);
        if (r < 0)
                return r;
        const char *src = ob_tpl_source(*t);
        if (src[0] != '/')
                return fail(p, v, "%s must start with '/' (it is appended to the connector's base_url)", key);
        static const char *const refused[] = {"transfer_to.", "status.", "transition.", "action.", "idempotency_key",
                                              "account.teams", "account.groups", NULL};
        for (size_t i = 0; refused[i]; i++) {
                if (!ob_tpl_uses_prefix(*t, refused[i]))
                        continue;
                const char *at = strstr(src, refused[i]);
                return fail_off(p, v, at ? (size_t)(at - src) : 0,
                                "%s: a guard's url may use the account's own fields (account.id, account.dn, "
                                "account.uid, account.mail, account.name, account.manager, account.attr.NAME), not "
                                "%s",
                                key, refused[i]);
        }
        return 0;
}

static int h_http_statuses(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        struct ob_int_list *l = dst;
        if (v->type != YAML_SEQUENCE_NODE)
                return fail(p, v, "%s must be a list of HTTP statuses, such as [404]", key);
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                int64_t n = 0;
                int r = parse_int(p, key, node(p, *i), 100, 599, &n);
                if (r < 0)
                        return r;
                long *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                nv[l->n++] = (long)n;
        }
        return 0;
}

static int h_i64_nonneg(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        return parse_int(p, key, v, 0, INT64_MAX, dst);
}

/* guards.X.blocks_when: {json: PATH, above: N} or {status: [CODES]}. */
static int h_guard_blocks_when(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        struct ob_guard *g = dst;
        const struct field f[] = {
                {"json", h_nonempty, offsetof(struct ob_guard, json), false},
                {"above", h_i64_nonneg, offsetof(struct ob_guard, json_above), false},
                {"status", h_http_statuses, offsetof(struct ob_guard, block_status), false},
                {NULL},
        };
        int r = walk(p, v, key, f, g);
        if (r < 0)
                return r;
        bool has_json = g->json != NULL, has_status = value_of(p, v, "status") != NULL;
        if (has_json == has_status)
                return fail(p, v, "%s: %s (json: PATH with above: N, or status: [CODES])", key,
                            has_json ? "one test: json or status" : "a test is needed");
        if (!has_json && value_of(p, v, "above"))
                return fail(p, find_value(p, v, "above"), "%s.above: only json: reads a number", key);
        for (const char *c = g->json; c && *c; c++)
                if (*c == '.' && (c == g->json || c[1] == '.' || c[1] == '\0'))
                        return fail(p, find_value(p, v, "json"),
                                    "%s.json: member names separated by '.', such as open.count", key);
        return 0;
}

/* The value of a connector's string key (base_url), read through its kind's
 * table: config.c knows no kind's struct. */
static const char *connector_string(const struct ob_connector *k, const char *name)
{
        for (const struct ob_key_spec *s = k->kind->connector_keys; s && s->name; s++)
                if (strcmp(s->name, name) == 0 && s->type == OB_KEY_STRING)
                        return *(char *const *)((const char *)k->settings + s->offset);
        return NULL;
}

/* One guard's keys, then what they must be together (skipped when a key
 * was refused). */
static int parse_guard(struct pctx *p, yaml_node_t *k, yaml_node_t *val, struct ob_guard *g)
{
        if (!(g->name = strdup(scalar(k))) || set_source(p, k, &g->source) < 0)
                return -ENOMEM;
        char section[100];
        snprintf(section, sizeof(section), "guards.%s", g->name);
        const struct field f[] = {
                {"owns_team_with_members", h_bool, offsetof(struct ob_guard, owns_team), false},
                {"role", h_guard_role, 0, false},
                {"member_of", h_dn, offsetof(struct ob_guard, group), false},
                {"sole_member_of", h_dn, offsetof(struct ob_guard, sole_member_of), false},
                {"member_attribute", h_attr, offsetof(struct ob_guard, member_attribute), false},
                {"connector", h_guard_connector, offsetof(struct ob_guard, connector), false},
                {"url", h_guard_url, offsetof(struct ob_guard, url), false},
                {"blocks_when", h_guard_blocks_when, 0, false},
                {"clear_status", h_http_statuses, offsetof(struct ob_guard, clear_status), false},
                {"warn", h_bool, offsetof(struct ob_guard, warn), false},
                {NULL},
        };
        int r = walk(p, val, section, f, g);
        if (r < 0)
                return r;
        bool has_role = g->role_attribute != NULL, has_sole = g->sole_member_of != NULL;
        bool has_conn = g->connector != NULL;
        int kinds = g->owns_team + has_role + (g->group != NULL) + has_sole + has_conn;
        if (kinds != 1)
                return fail(p, kinds ? val : k,
                            "%s: %s (owns_team_with_members: true, role:, member_of:, sole_member_of: or "
                            "connector:)",
                            section, kinds ? "one condition per guard" : "a guard needs a condition");
        g->kind = g->owns_team ? OB_GUARD_OWNS_TEAM
                  : has_role   ? OB_GUARD_ROLE
                  : has_sole   ? OB_GUARD_SOLE_MEMBER_OF
                  : has_conn   ? OB_GUARD_CONNECTOR
                               : OB_GUARD_MEMBER_OF;
        /* Past the condition, each rule across keys is said. */
        int bad = 0;
        static const char *const conn_keys[] = {"url", "blocks_when", "clear_status", NULL};
        for (size_t i = 0; !has_conn && conn_keys[i]; i++)
                if (value_of(p, val, conn_keys[i]) &&
                    !go_on(p,
                           r = fail(p, find_value(p, val, conn_keys[i]),
                                    "%s.%s: only a connector: guard asks an endpoint", section, conn_keys[i]),
                           &bad))
                        return r;
        if (has_conn) {
                for (size_t i = 0; i < 2; i++)
                        if (!value_of(p, val, conn_keys[i]) &&
                            !go_on(p,
                                   r = fail(p, val, "%s: missing required key '%s' (a connector: guard asks GET url)",
                                            section, conn_keys[i]),
                                   &bad))
                                return r;
                if (!connector_string(g->connector, "base_url") &&
                    !go_on(p,
                           r = fail(p, find_value(p, val, "connector"),
                                    "%s.connector: connector '%s' has no base_url; the guard's url is appended to it",
                                    section, g->connector->name),
                           &bad))
                        return r;
        }
        if (has_sole)
                g->group = TAKE_PTR(g->sole_member_of);
        if (g->member_attribute && !g->group &&
            !go_on(p,
                   r = fail(p, find_value(p, val, "member_attribute"),
                            "%s.member_attribute: only member_of and sole_member_of read a group", section),
                   &bad))
                return r;
        if (g->group && !g->member_attribute && !(g->member_attribute = strdup("member")))
                return -ENOMEM;
        /* A refused directory: section may be why directory.teams is missing. */
        if (g->owns_team && !p->cfg->directory.teams_base && !p->ld->directory_failed &&
            !go_on(p,
                   r = fail(p, find_value(p, val, "owns_team_with_members"),
                            "%s: owns_team_with_members needs directory.teams", section),
                   &bad))
                return r;
        return bad;
}

/* guards: NAME: {owns_team_with_members: true | role: {...} | member_of: DN |
 * sole_member_of: DN, member_attribute: ATTR | connector: NAME, url: PATH,
 * blocks_when: {...}, clear_status: [...]; warn: BOOL} */
static int parse_guards(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int r = expect(p, v, YAML_MAPPING_NODE, "guards");
        if (r < 0)
                return r;
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (n > 64)
                return fail(p, v, "too many guards (at most 64)");
        c->guards = calloc(n ? n : 1, sizeof(*c->guards));
        if (!c->guards)
                return -ENOMEM;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a guard name")) == 0 && !name_ok(scalar(k)))
                        r = fail(p, k, "guard names use letters, digits, '-' and '_' (at most 64): '%s'", scalar(k));
                for (size_t i = 0; r == 0 && i < c->nguards; i++)
                        if (strcmp(c->guards[i].name, scalar(k)) == 0)
                                r = fail(p, k, "duplicate guard '%s'", scalar(k));
                if (r == 0)
                        r = parse_guard(p, k, val, &c->guards[c->nguards++]);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

/* safety.transitions: kept until the transitions are parsed. */
static int h_safety_transitions(struct pctx *p, const char *key, yaml_node_t *v, void *dst)
{
        (void)dst;
        int r = expect(p, v, YAML_MAPPING_NODE, key);
        if (r == 0)
                p->safety_transitions = v;
        return r;
}

static int parse_safety(struct pctx *p, yaml_node_t *v)
{
        const struct field f[] = {
                {"max_accounts", h_size, offsetof(struct ob_safety, max_accounts), false},
                {"max_percent", h_percent, offsetof(struct ob_safety, max_percent), false},
                {"window", h_duration, offsetof(struct ob_safety, window_ms), false},
                {"transitions", h_safety_transitions, 0, false},
                {NULL},
        };
        return walk(p, v, "safety", f, &p->cfg->safety);
}

static int parse_retry(struct pctx *p, const char *key, yaml_node_t *v, struct ob_retry_policy *rp)
{
        const struct field f[] = {
                {"attempts", h_attempts, offsetof(struct ob_retry_policy, attempts), false},
                {"backoff", h_duration, offsetof(struct ob_retry_policy, backoff_ms), false},
                {"max_backoff", h_duration, offsetof(struct ob_retry_policy, max_backoff_ms), false},
                {"park_after", h_count, offsetof(struct ob_retry_policy, park_after), false},
                {"pause_after", h_count, offsetof(struct ob_retry_policy, pause_after), false},
                {NULL},
        };
        int r = walk(p, v, key, f, rp);
        if (r == 0 && rp->max_backoff_ms < rp->backoff_ms)
                return fail(p, v, "%s: max_backoff must not be shorter than backoff", key);
        return r;
}

/* ---- a connector kind's keys ------------------------------------------------ */

static size_t spec_count(const struct ob_key_spec *specs)
{
        size_t n = 0;
        while (specs && specs[n].name)
                n++;
        return n;
}

/* "a, b or c": the rows of specs that pass keep (all when keep is NULL). */
static void spec_names(const struct ob_key_spec *specs, bool (*keep)(const struct ob_key_spec *s, const void *ud),
                       const void *ud, const char *last_sep, char *buf, size_t size)
{
        size_t n = 0, total = 0;
        for (size_t i = 0; specs[i].name; i++)
                total += !keep || keep(&specs[i], ud);
        buf[0] = '\0';
        for (size_t i = 0; specs[i].name; i++) {
                if (keep && !keep(&specs[i], ud))
                        continue;
                if (n > 0)
                        strncat(buf, n + 1 == total ? last_sep : ", ", size - strlen(buf) - 1);
                strncat(buf, specs[i].name, size - strlen(buf) - 1);
                n++;
        }
}

static bool spec_is_listed(const struct ob_key_spec *s, const void *ud)
{
        (void)ud;
        return s->type != OB_KEY_SECRET;
}

static bool spec_same_offset(const struct ob_key_spec *s, const void *ud)
{
        const struct ob_key_spec *other = ud;
        return s->type == other->type && s->offset == other->offset;
}

static int walk_specs(struct pctx *p, yaml_node_t *map, const char *section, const struct ob_key_spec *specs,
                      void *base);

/* One key of a kind's table: checked for its row's type and stored at its
 * offset in base. kk is the key's node, for errors about the key itself. */
static int spec_set(struct pctx *p, const char *section, yaml_node_t *kk, yaml_node_t *v,
                    const struct ob_key_spec *specs, const struct ob_key_spec *spec, void *base)
{
        char what[200];
        snprintf(what, sizeof(what), "%s.%s", section, spec->name);
        void *dst = (char *)base + spec->offset;
        int r;
        switch (spec->type) {
        case OB_KEY_STRING: return h_nonempty(p, what, v, dst);
        case OB_KEY_PATH: return h_path(p, what, v, dst);
        case OB_KEY_BOOL: return h_bool(p, what, v, dst);
        case OB_KEY_DURATION: return h_duration(p, what, v, dst);
        case OB_KEY_INT: {
                int64_t n = 0;
                r = parse_int(p, what, v, spec->min, spec->max, &n);
                if (r == 0)
                        *(int *)dst = (int)n;
                return r;
        }
        case OB_KEY_CHOICE: {
                if ((r = h_nonempty(p, what, v, dst)) < 0)
                        return r;
                char list[256] = "";
                for (size_t i = 0; spec->choices[i]; i++) {
                        if (strcmp(*(char **)dst, spec->choices[i]) == 0)
                                return 0;
                        if (i > 0)
                                strncat(list, spec->choices[i + 1] ? ", " : " or ", sizeof(list) - strlen(list) - 1);
                        strncat(list, spec->choices[i], sizeof(list) - strlen(list) - 1);
                }
                return fail(p, v, "%s must be %s, not '%s'", what, list, *(char **)dst);
        }
        case OB_KEY_TEMPLATE: return parse_tpl(p, v, spec->tpl, what, dst);
        case OB_KEY_HEADERS: {
                struct ob_header_list *l = dst;
                return parse_headers(p, v, what, spec, &l->v, &l->n);
        }
        case OB_KEY_INT_LIST: {
                struct ob_int_list *l = dst;
                if (v->type != YAML_SEQUENCE_NODE)
                        return fail(p, v, "%s must be a list of %s", what, spec->hint ? spec->hint : "numbers");
                int bad = 0;
                for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                        int64_t n = 0;
                        if ((r = parse_int(p, what, node(p, *i), spec->min, spec->max, &n)) < 0) {
                                if (!go_on(p, r, &bad))
                                        return r;
                                continue;
                        }
                        long *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        l->v = nv;
                        nv[l->n++] = (long)n;
                }
                return bad;
        }
        case OB_KEY_BODY: {
                struct ob_body_tpl *b = dst;
                if (b->tree) {
                        char alts[256];
                        spec_names(specs, spec_same_offset, spec, " or ", alts, sizeof(alts));
                        return fail(p, kk, "%s: an action has one body: %s", section, alts);
                }
                if (spec->tpl == OB_TPL_FORM && v->type != YAML_MAPPING_NODE)
                        return fail(p, v, "%s must be a mapping of name: value", what);
                b->context = spec->tpl;
                return parse_json_tpl(p, v, what, spec->tpl, 0, &b->tree);
        }
        case OB_KEY_SECTION: return walk_specs(p, v, what, spec->sub, base);
        case OB_KEY_SECRET: return h_reject_secret(p, what, v, NULL);
        case OB_KEY_TEMPLATE_LIST: {
                struct ob_tpl_list *l = dst;
                size_t max = spec->max > 0 ? (size_t)spec->max : 256;
                if (v->type != YAML_SEQUENCE_NODE)
                        return fail(p, v, "%s must be a list of strings", what);
                if ((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) > max)
                        return fail(p, v, "%s: at most %zu items", what, max);
                int bad = 0;
                for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
                        struct ob_tpl **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        l->v = nv;
                        nv[l->n] = NULL;
                        if ((r = parse_tpl(p, node(p, *i), spec->tpl, what, &nv[l->n])) < 0) {
                                if (!go_on(p, r, &bad))
                                        return r;
                                continue;
                        }
                        l->n++;
                }
                return bad;
        }
        }
        return -EINVAL;
}

/* A key of a connector or an action that is not one of the keys every one
 * has (generic lists those, for the error): its kind's. */
static int kind_key(struct pctx *p, const char *section, const char *generic, yaml_node_t *kk, yaml_node_t *v,
                    const struct ob_key_spec *specs, void *base, yaml_node_t **nodes)
{
        const char *ks = scalar(kk);
        size_t i;
        for (i = 0; specs[i].name; i++)
                if (strcmp(specs[i].name, ks) == 0)
                        break;
        if (!specs[i].name) {
                char known[512];
                spec_names(specs, spec_is_listed, NULL, ", ", known, sizeof(known));
                p->unknown_keys++;
                return fail(p, kk, "unknown key '%s' in %s (expected one of: %s%s%s)", ks, section,
                            generic ? generic : "", generic && known[0] ? ", " : "", known);
        }
        if (nodes[i])
                return fail(p, kk, "duplicate key '%s' in %s", ks, section);
        nodes[i] = v;
        return spec_set(p, section, kk, v, specs, &specs[i], base);
}

/* A row's default, written as its YAML scalar would be. */
static int spec_default(const struct ob_key_spec *spec, void *base)
{
        void *dst = (char *)base + spec->offset;
        if (spec->type == OB_KEY_SECTION) {
                for (size_t i = 0; spec->sub[i].name; i++) {
                        int r = spec_default(&spec->sub[i], base);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (!spec->def)
                return 0;
        int64_t n = 0;
        switch (spec->type) {
        case OB_KEY_STRING:
        case OB_KEY_PATH:
        case OB_KEY_CHOICE:
                *(char **)dst = strdup(spec->def);
                return *(char **)dst ? 0 : -ENOMEM;
        case OB_KEY_BOOL: *(bool *)dst = strcmp(spec->def, "true") == 0; return 0;
        case OB_KEY_DURATION: return ob_parse_duration_ms(spec->def, (int64_t *)dst) < 0 ? -EINVAL : 0;
        case OB_KEY_INT:
                if (ob_parse_i64(spec->def, &n) < 0)
                        return -EINVAL;
                *(int *)dst = (int)n;
                return 0;
        default: return -EINVAL; /* a kind's table gives a default its type cannot have */
        }
}

/* After the keys: the missing ones are an error if required (each one
 * reported, unless an unknown key was since unknown0: perhaps it,
 * misspelt), else get their defaults. */
static int keys_finish(struct pctx *p, const char *section, yaml_node_t *map, const struct ob_key_spec *specs,
                       void *base, yaml_node_t **nodes, size_t unknown0)
{
        int bad = 0;
        for (size_t i = 0; specs[i].name; i++) {
                if (nodes[i])
                        continue;
                int r = !specs[i].required ? spec_default(&specs[i], base)
                        : p->unknown_keys > unknown0
                                ? -OB_ECONFIG
                                : fail(p, map, "%s: missing required key '%s'", section, specs[i].name);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

/* A mapping of a kind's keys only (a section such as auth:). */
static int walk_specs(struct pctx *p, yaml_node_t *map, const char *section, const struct ob_key_spec *specs,
                      void *base)
{
        int r = expect(p, map, YAML_MAPPING_NODE, section);
        if (r < 0)
                return r;
        yaml_node_t **nodes = calloc(spec_count(specs) + 1, sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        size_t unknown0 = p->unknown_keys;
        int bad = 0;
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                r = expect(p, k, YAML_SCALAR_NODE, "a key");
                if (r == 0)
                        r = kind_key(p, section, NULL, k, node(p, pr->value), specs, base, nodes);
                if (r < 0 && !go_on(p, r, &bad))
                        goto out;
        }
        r = keys_finish(p, section, map, specs, base, nodes, unknown0);
out:
        free(nodes);
        return r < 0 ? r : bad;
}

static void specs_free(const struct ob_key_spec *specs, void *base)
{
        if (!base)
                return;
        for (size_t i = 0; specs[i].name; i++) {
                void *dst = (char *)base + specs[i].offset;
                switch (specs[i].type) {
                case OB_KEY_STRING:
                case OB_KEY_PATH:
                case OB_KEY_CHOICE:
                        free(*(char **)dst);
                        *(char **)dst = NULL;
                        break;
                case OB_KEY_TEMPLATE:
                        ob_tpl_free(*(struct ob_tpl **)dst);
                        *(struct ob_tpl **)dst = NULL;
                        break;
                case OB_KEY_HEADERS:
                        free_headers(((struct ob_header_list *)dst)->v, ((struct ob_header_list *)dst)->n);
                        *(struct ob_header_list *)dst = (struct ob_header_list){0};
                        break;
                case OB_KEY_INT_LIST:
                        free(((struct ob_int_list *)dst)->v);
                        *(struct ob_int_list *)dst = (struct ob_int_list){0};
                        break;
                case OB_KEY_BODY: /* rows that share it see NULL after the first */
                        ob_json_tpl_free(((struct ob_body_tpl *)dst)->tree);
                        ((struct ob_body_tpl *)dst)->tree = NULL;
                        break;
                case OB_KEY_SECTION: specs_free(specs[i].sub, base); break;
                case OB_KEY_TEMPLATE_LIST: {
                        struct ob_tpl_list *l = dst;
                        for (size_t t = 0; t < l->n; t++)
                                ob_tpl_free(l->v[t]);
                        free(l->v);
                        *l = (struct ob_tpl_list){0};
                        break;
                }
                default: break;
                }
        }
}

/* Calls fn on every template a kind's keys hold (each once). */
static int specs_foreach_tpl(const struct ob_key_spec *specs, const void *base,
                             int (*fn)(const struct ob_tpl *t, void *ud), void *ud)
{
        int r = 0;
        if (!base)
                return 0;
        for (size_t i = 0; r == 0 && specs[i].name; i++) {
                const void *src = (const char *)base + specs[i].offset;
                bool seen = false;
                switch (specs[i].type) {
                case OB_KEY_TEMPLATE:
                        if (*(struct ob_tpl *const *)src)
                                r = fn(*(struct ob_tpl *const *)src, ud);
                        break;
                case OB_KEY_HEADERS: {
                        const struct ob_header_list *l = src;
                        for (size_t h = 0; r == 0 && h < l->n; h++)
                                if (l->v[h].value) /* NULL: a value_file secret */
                                        r = fn(l->v[h].value, ud);
                        break;
                }
                case OB_KEY_BODY:
                        for (size_t j = 0; j < i; j++)
                                seen = seen || spec_same_offset(&specs[j], &specs[i]);
                        if (!seen)
                                r = ob_json_tpl_foreach(((const struct ob_body_tpl *)src)->tree, fn, ud);
                        break;
                case OB_KEY_SECTION: r = specs_foreach_tpl(specs[i].sub, base, fn, ud); break;
                case OB_KEY_TEMPLATE_LIST: {
                        const struct ob_tpl_list *l = src;
                        for (size_t t = 0; r == 0 && t < l->n; t++)
                                r = fn(l->v[t], ud);
                        break;
                }
                default: break;
                }
        }
        return r;
}

/* Every file a kind's keys name: OB_KEY_PATH rows and value_file headers. */
static int specs_foreach_file(const struct ob_key_spec *specs, const void *base, const char *what,
                              ob_config_file_fn fn, void *ud)
{
        int r = 0;
        if (!base)
                return 0;
        for (size_t i = 0; r == 0 && specs[i].name; i++) {
                const void *src = (const char *)base + specs[i].offset;
                char key[256];
                snprintf(key, sizeof(key), "%s.%s", what, specs[i].name);
                switch (specs[i].type) {
                case OB_KEY_PATH: {
                        const char *path = *(char *const *)src;
                        /* Credentials are read from files named *password_file, *token_file, *key_file. */
                        bool secret = strstr(specs[i].name, "password") || strstr(specs[i].name, "token") ||
                                      strstr(specs[i].name, "key_file");
                        if (path)
                                r = fn(key, path, secret, ud);
                        break;
                }
                case OB_KEY_HEADERS: {
                        const struct ob_header_list *l = src;
                        for (size_t h = 0; r == 0 && h < l->n; h++)
                                if (l->v[h].secret_file) {
                                        char hk[400];
                                        snprintf(hk, sizeof(hk), "%s.%s", key, l->v[h].name);
                                        r = fn(hk, l->v[h].secret_file, true, ud);
                                }
                        break;
                }
                case OB_KEY_SECTION: r = specs_foreach_file(specs[i].sub, base, key, fn, ud); break;
                default: break;
                }
        }
        return r;
}

int ob_config_foreach_file(const struct ob_config *c, ob_config_file_fn fn, void *ud)
{
        const struct ob_directory_config *d = &c->directory;
        int r = 0;
        if (d->bind_password_file)
                r = fn("directory.bind_password_file", d->bind_password_file, true, ud);
        if (r == 0 && d->ca_file)
                r = fn("directory.ca_file", d->ca_file, false, ud);
        for (size_t i = 0; r == 0 && i < c->nconnectors; i++) {
                const struct ob_connector *k = &c->connectors[i];
                char what[200];
                snprintf(what, sizeof(what), "connectors.%s", k->name);
                r = specs_foreach_file(k->kind->connector_keys, k->settings, what, fn, ud);
        }
        for (size_t i = 0; r == 0 && i < c->nactions; i++) {
                const struct ob_action *a = &c->actions[i];
                char what[200];
                snprintf(what, sizeof(what), "actions.%s", a->name);
                r = specs_foreach_file(a->connector->kind->action_keys, a->settings, what, fn, ud);
        }
        return r;
}

/* The node of key in what kd recorded, or its mapping. */
static yaml_node_t *keyed_node(const struct keyed *kd, const struct ob_key_spec *specs, const char *key)
{
        for (size_t i = 0; kd->nodes && specs[i].name; i++)
                if (strcmp(specs[i].name, key) == 0 && kd->nodes[i])
                        return kd->nodes[i];
        return kd->map;
}

/* At n, or (at) off bytes into its scalar value, past an opening quote as fail_off() does. */
static int check_failv(struct pctx *p, yaml_node_t *n, bool at, size_t off, const char *fmt, va_list ap)
{
        size_t line = n ? n->start_mark.line : 0, col = n ? n->start_mark.column : 0;
        if (at && n && n->type == YAML_SCALAR_NODE) {
                yaml_scalar_style_t st = n->data.scalar.style;
                col += off + (st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE ? 1 : 0);
        }
        return failv(p, line, col, fmt, ap);
}

int ob_config_fail_connector(struct ob_config_check *ck, const struct ob_connector *c, const char *key,
                             const char *fmt, ...)
{
        struct pctx *p = ck->p;
        size_t i = (size_t)(c - p->cfg->connectors);
        yaml_node_t *n = i < p->nconn_keyed ? keyed_node(&p->conn_keyed[i], c->kind->connector_keys, key) : NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = check_failv(p, n, false, 0, fmt, ap);
        va_end(ap);
        return r;
}

static int fail_action_v(struct ob_config_check *ck, const struct ob_action *a, const char *key, bool at, size_t off,
                         const char *fmt, va_list ap)
{
        struct pctx *p = ck->p;
        size_t i = (size_t)(a - p->cfg->actions);
        yaml_node_t *n = i < p->naction_keyed
                                 ? keyed_node(&p->action_keyed[i], a->connector->kind->action_keys, key)
                                 : NULL;
        return check_failv(p, n, at, off, fmt, ap);
}

int ob_config_fail_action(struct ob_config_check *ck, const struct ob_action *a, const char *key, const char *fmt,
                          ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = fail_action_v(ck, a, key, false, 0, fmt, ap);
        va_end(ap);
        return r;
}

int ob_config_fail_action_at(struct ob_config_check *ck, const struct ob_action *a, const char *key, size_t offset,
                             const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = fail_action_v(ck, a, key, true, offset, fmt, ap);
        va_end(ap);
        return r;
}

bool ob_config_check_go_on(struct ob_config_check *ck, int r, int *bad)
{
        return go_on(ck->p, r, bad);
}

/* The value of key in mapping m, or NULL. */
static yaml_node_t *value_of(struct pctx *p, yaml_node_t *m, const char *key)
{
        for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
                        return node(p, pr->value);
        }
        return NULL;
}

/* Keys every connector has; the rest are its kind's. */
static const char ob_connector_generic_keys[] = "type, timeout, concurrency, retry";

static int parse_connector(struct pctx *p, yaml_node_t *k, yaml_node_t *v, struct ob_connector *c, struct keyed *kd)
{
        char section[160];
        snprintf(section, sizeof(section), "connectors.%s", scalar(k));
        c->name = strdup(scalar(k));
        if (!c->name)
                return -ENOMEM;
        c->concurrency = 4;
        c->timeout_ms = 30000;
        c->retry = (struct ob_retry_policy){
                .attempts = 3, .backoff_ms = 1000, .max_backoff_ms = 30000, .park_after = 10, .pause_after = 5};
        int r = expect(p, v, YAML_MAPPING_NODE, section);
        if (r < 0)
                return r;
        kd->map = v;
        /* The type first: it says what the other keys may be. */
        yaml_node_t *typen = value_of(p, v, "type");
        if (!typen)
                return fail(p, v, "%s: missing required key 'type'", section);
        char what[200];
        snprintf(what, sizeof(what), "%s.type", section);
        char *type = NULL;
        if ((r = h_nonempty(p, what, typen, &type)) < 0) {
                free(type); /* an empty one was copied before it was refused */
                return r;
        }
        c->kind = ob_connector_kind_find(type);
        if (!c->kind) {
                char names[256] = "";
                const struct ob_connector_kind *kind;
                for (size_t i = 0; (kind = ob_connector_kind_at(i)); i++) {
                        strncat(names, i ? ", " : "", sizeof(names) - strlen(names) - 1);
                        strncat(names, kind->name, sizeof(names) - strlen(names) - 1);
                }
                r = fail(p, v, "%s: unknown connector type '%s' (this version has: %s)", section, type, names);
                free(type);
                return r;
        }
        free(type);
        const struct ob_key_spec *specs = c->kind->connector_keys;
        c->settings = calloc(1, c->kind->connector_size ? c->kind->connector_size : 1);
        kd->nodes = calloc(spec_count(specs) + 1, sizeof(*kd->nodes));
        size_t unknown0 = p->unknown_keys;
        if (!c->settings || !kd->nodes)
                return -ENOMEM;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *kk = node(p, pr->key), *vv = node(p, pr->value);
                if ((r = expect(p, kk, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                const char *ks = scalar(kk);
                snprintf(what, sizeof(what), "%s.%s", section, ks);
                if (strcmp(ks, "type") == 0)
                        continue;
                else if (strcmp(ks, "timeout") == 0)
                        r = h_duration(p, what, vv, &c->timeout_ms);
                else if (strcmp(ks, "concurrency") == 0)
                        r = h_concurrency(p, what, vv, &c->concurrency);
                else if (strcmp(ks, "retry") == 0)
                        r = parse_retry(p, what, vv, &c->retry);
                else
                        r = kind_key(p, section, ob_connector_generic_keys, kk, vv, specs, c->settings, kd->nodes);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if ((r = keys_finish(p, section, v, specs, c->settings, kd->nodes, unknown0)) < 0)
                return r;
        if (bad) /* the kind's checks across keys would read what was refused */
                return bad;
        struct ob_config_check ck = {p};
        return c->kind->check_connector ? c->kind->check_connector(&ck, c) : 0;
}

static struct ob_connector *find_connector(struct ob_config *c, const char *name)
{
        for (size_t i = 0; i < c->nconnectors; i++)
                if (strcmp(c->connectors[i].name, name) == 0)
                        return &c->connectors[i];
        return NULL;
}

static struct ob_action *find_action(struct ob_config *c, const char *name)
{
        for (size_t i = 0; i < c->nactions; i++)
                if (strcmp(c->actions[i].name, name) == 0)
                        return &c->actions[i];
        return NULL;
}

static bool name_ok(const char *s)
{
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
                        return false;
        return true;
}

static int set_source(struct pctx *p, const yaml_node_t *n, char **ret)
{
        if (asprintf(ret, "%s:%zu", p->file, n->start_mark.line + 1) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Keys every action has; the rest are its connector kind's. */
static const char ob_action_generic_keys[] = "connector, when, after, security, grace, restored_by, modules";

/* Appends s to a NULL-terminated list, duplicates kept. */
static int strv_push(char ***list, const char *s)
{
        size_t n = 0;
        while (*list && (*list)[n])
                n++;
        char **l = realloc(*list, (n + 2) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        *list = l;
        if (!(l[n] = strdup(s)))
                return -ENOMEM;
        l[n + 1] = NULL;
        return 0;
}

/* actions.X.modules.M.is (or is_not): FIELD: VALUE or [VALUE...], plain
 * data for the downstream API, as written. */
static int parse_module_criteria(struct pctx *p, const char *key, yaml_node_t *v, struct ob_transfer_module *m)
{
        if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.top == v->data.mapping.pairs.start)
                return fail(p, v, "%s: empty criteria: name at least one field, such as {status: open}", key);
        if (v->data.mapping.pairs.top - v->data.mapping.pairs.start > OB_CONFIG_MAX_LIST)
                return fail(p, v, "%s: more than %d fields", key, OB_CONFIG_MAX_LIST);
        m->criteria = calloc((size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start), sizeof(*m->criteria));
        if (!m->criteria)
                return -ENOMEM;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                int r = expect(p, k, YAML_SCALAR_NODE, key);
                if (r < 0)
                        return r;
                if (!*scalar(k))
                        return fail(p, k, "%s: a field needs a name", key);
                for (size_t i = 0; i < m->ncriteria; i++)
                        if (strcmp(m->criteria[i].field, scalar(k)) == 0)
                                return fail(p, k, "%s: field '%s' twice", key, scalar(k));
                struct ob_module_criterion *cr = &m->criteria[m->ncriteria++];
                if (!(cr->field = strdup(scalar(k))))
                        return -ENOMEM;
                yaml_node_item_t one[1], *start = one, *top = one + 1;
                if (val->type == YAML_SEQUENCE_NODE) {
                        cr->list = true;
                        start = val->data.sequence.items.start;
                        top = val->data.sequence.items.top;
                        if (start == top)
                                return fail(p, val, "%s.%s: an empty list matches nothing; say none instead", key,
                                            scalar(k));
                        if (top - start > OB_CONFIG_MAX_LIST)
                                return fail(p, val, "%s.%s: more than %d values", key, scalar(k), OB_CONFIG_MAX_LIST);
                } else if (val->type == YAML_SCALAR_NODE) {
                        one[0] = pr->value;
                } else {
                        return fail(p, val, "%s.%s must be a value or a list of values, not %s", key, scalar(k),
                                    node_type_name(val));
                }
                for (yaml_node_item_t *i = start; i < top; i++) {
                        yaml_node_t *e = node(p, *i);
                        char what[300];
                        if (snprintf(what, sizeof(what), "%s.%s", key, scalar(k)) >= (int)sizeof(what))
                                return fail(p, k, "%s: a key of %zu bytes is too long", key, strlen(scalar(k)));
                        if ((r = expect(p, e, YAML_SCALAR_NODE, what)) < 0)
                                return r;
                        /* Sent as written: a template here would reach the
                         * downstream API unrendered. */
                        const char *t = strstr(scalar(e), "{{");
                        if (t)
                                return fail_off(p, e, (size_t)(t - scalar(e)),
                                                "%s: criteria are plain data, not templates", what);
                        if ((r = strv_push(&cr->values, scalar(e))) < 0)
                                return r;
                }
        }
        return 0;
}

/* actions.X.modules.M: all, none, or {records: all|none, is: {...},
 * is_not: {...}, when: COND} with exactly one of records, is and is_not. */
static int parse_module(struct pctx *p, const char *key, yaml_node_t *v, struct ob_transfer_module *m)
{
        static const char choices[] = "all, none, or a mapping of records (all or none), is, is_not and when";
        if (v->type == YAML_SCALAR_NODE) {
                if (strcmp(scalar(v), "all") == 0)
                        m->records = OB_RECORDS_ALL;
                else if (strcmp(scalar(v), "none") == 0)
                        m->records = OB_RECORDS_NONE;
                else
                        return fail(p, v, "%s: unknown choice '%s' (expected one of: %s)", key, scalar(v), choices);
                return 0;
        }
        if (v->type != YAML_MAPPING_NODE)
                return fail(p, v, "%s must be %s, not %s", key, choices, node_type_name(v));
        yaml_node_t *chosen = NULL;
        const char *chosen_key = NULL;
        char what[300];
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *val = node(p, pr->value);
                int r = expect(p, k, YAML_SCALAR_NODE, "a key");
                if (r < 0)
                        return r;
                const char *ks = scalar(k);
                if (snprintf(what, sizeof(what), "%s.%s", key, ks) >= (int)sizeof(what))
                        return fail(p, k, "%s: a key of %zu bytes is too long", key, strlen(ks));
                if (strcmp(ks, "when") == 0) {
                        if (m->when)
                                return fail(p, k, "%s: twice", what);
                        if ((r = parse_cond(p, val, true, &m->when)) < 0)
                                return r;
                        continue;
                }
                if (strcmp(ks, "records") != 0 && strcmp(ks, "is") != 0 && strcmp(ks, "is_not") != 0)
                        return fail(p, k, "unknown key '%s' in %s (expected one of: records, is, is_not, when)", ks,
                                    key);
                if (chosen)
                        return fail(p, k, "%s: '%s' and '%s' together; a module takes one of records, is and is_not",
                                    key, chosen_key, ks);
                chosen = val;
                chosen_key = ks;
                if (strcmp(ks, "records") == 0) {
                        if ((r = expect(p, val, YAML_SCALAR_NODE, what)) < 0)
                                return r;
                        if (strcmp(scalar(val), "all") == 0)
                                m->records = OB_RECORDS_ALL;
                        else if (strcmp(scalar(val), "none") == 0)
                                m->records = OB_RECORDS_NONE;
                        else
                                return fail(p, val,
                                            "%s: unknown choice '%s' (expected one of: all, none; is: or is_not: "
                                            "for records that meet criteria)",
                                            what, scalar(val));
                } else {
                        m->records = OB_RECORDS_MATCHING;
                        m->is_not = strcmp(ks, "is_not") == 0;
                        if ((r = parse_module_criteria(p, what, val, m)) < 0)
                                return r;
                }
        }
        if (!chosen)
                return fail(p, v, "%s: say which records: records (all or none), is or is_not", key);
        return 0;
}

/* actions.X.modules: MODULE: CHOICE, in order, each module once. */
static int parse_modules(struct pctx *p, const char *key, yaml_node_t *v, struct ob_action *a)
{
        if (a->modules)
                return fail(p, v, "%s: twice", key);
        if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.top == v->data.mapping.pairs.start)
                return fail(p, v, "%s must be a mapping of module names to all, none, is or is_not", key);
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (n > OB_CONFIG_MAX_LIST)
                return fail(p, v, "%s: more than %d modules", key, OB_CONFIG_MAX_LIST);
        if (!(a->modules = calloc(n, sizeof(*a->modules))))
                return -ENOMEM;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                int r = expect(p, k, YAML_SCALAR_NODE, "a module name");
                if (r == 0 && !*scalar(k))
                        r = fail(p, k, "%s: a module needs a name", key);
                for (size_t i = 0; r == 0 && i < a->nmodules; i++)
                        if (strcmp(a->modules[i].name, scalar(k)) == 0)
                                r = fail(p, k, "%s: module '%s' twice", key, scalar(k));
                if (r == 0) {
                        struct ob_transfer_module *m = &a->modules[a->nmodules++];
                        char what[300];
                        snprintf(what, sizeof(what), "%s.%s", key, scalar(k));
                        r = (m->name = strdup(scalar(k))) ? parse_module(p, what, node(p, pr->value), m) : -ENOMEM;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

static int uses_modules_cb(const struct ob_tpl *t, void *ud)
{
        if (ob_tpl_uses_prefix(t, "transfer.modules"))
                *(bool *)ud = true;
        return 0;
}

/* First pass over an action: everything but `after`, which needs all names.
 * An action whose connector was refused is checked for its own keys if the
 * connector's kind is known, never against the connector's settings. */
static int parse_action(struct pctx *p, yaml_node_t *k, yaml_node_t *v, struct ob_action *a, yaml_node_t **ret_after,
                        yaml_node_t **ret_restored, struct keyed *kd)
{
        char section[160];
        snprintf(section, sizeof(section), "actions.%s", scalar(k));
        /* Named even when the name is refused: after: and transitions find it. */
        a->name = strdup(scalar(k));
        if (!a->name || set_source(p, k, &a->source) < 0)
                return -ENOMEM;
        int bad = 0, r = 0;
        if (!name_ok(scalar(k)) &&
            !go_on(p, r = fail(p, k, "action names use letters, digits, '-' and '_' (at most 64): '%s'", scalar(k)),
                   &bad))
                return r;
        if ((r = expect(p, v, YAML_MAPPING_NODE, section)) < 0)
                return r;
        kd->map = v;
        /* The connector first: its kind says what the other keys may be. */
        yaml_node_t *conn = value_of(p, v, "connector");
        if (!conn)
                return fail(p, v, "%s: missing required key 'connector'", section);
        char what[200];
        snprintf(what, sizeof(what), "%s.connector", section);
        if ((r = expect(p, conn, YAML_SCALAR_NODE, what)) < 0)
                return r;
        struct ob_connector *ck_conn = find_connector(p->cfg, scalar(conn));
        if (!ck_conn) {
                /* No connectors: section to look in (refused, or perhaps misspelt): said already. */
                if (p->ld->connectors_unknowable)
                        return -OB_ECONFIG;
                return fail(p, conn, "%s: unknown connector '%s' (define it under connectors:)", what, scalar(conn));
        }
        const struct keyed *conn_kd = &p->conn_keyed[ck_conn - p->cfg->connectors];
        if (!ck_conn->kind || !ck_conn->settings) /* its type was refused: said there */
                return -OB_ECONFIG;
        a->connector = ck_conn;
        const struct ob_connector_kind *kind = a->connector->kind;
        const struct ob_key_spec *specs = kind->action_keys;
        a->settings = calloc(1, kind->action_size ? kind->action_size : 1);
        kd->nodes = calloc(spec_count(specs) + 1, sizeof(*kd->nodes));
        size_t unknown0 = p->unknown_keys;
        if (!a->settings || !kd->nodes)
                return -ENOMEM;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *kk = node(p, pr->key), *vv = node(p, pr->value);
                if ((r = expect(p, kk, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                const char *ks = scalar(kk);
                snprintf(what, sizeof(what), "%s.%s", section, ks);
                if (strcmp(ks, "connector") == 0)
                        continue;
                else if (strcmp(ks, "when") == 0)
                        r = parse_cond(p, vv, true, &a->when);
                else if (strcmp(ks, "after") == 0)
                        *ret_after = vv;
                else if (strcmp(ks, "security") == 0)
                        r = h_bool(p, what, vv, &a->security);
                else if (strcmp(ks, "grace") == 0)
                        r = h_duration(p, what, vv, &a->grace_ms);
                else if (strcmp(ks, "restored_by") == 0)
                        *ret_restored = vv;
                else if (strcmp(ks, "modules") == 0)
                        r = parse_modules(p, what, vv, a);
                else
                        r = kind_key(p, section, ob_action_generic_keys, kk, vv, specs, a->settings, kd->nodes);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if ((r = keys_finish(p, section, v, specs, a->settings, kd->nodes, unknown0)) < 0)
                return r;
        if (bad)
                return bad;
        if (a->security && a->grace_ms > 0 &&
            !go_on(p,
                   r = fail(p, value_of(p, v, "grace"),
                            "%s.grace: a security action never waits (sessions and tokens are revoked at once)",
                            section),
                   &bad))
                return r;
        /* modules: is what transfer.modules sends, and nothing else reads it. */
        bool sends_modules = false;
        specs_foreach_tpl(specs, a->settings, uses_modules_cb, &sends_modules);
        specs_foreach_tpl(a->connector->kind->connector_keys, a->connector->settings, uses_modules_cb, &sends_modules);
        if (a->nmodules && !sends_modules &&
            !go_on(p,
                   r = fail(p, value_of(p, v, "modules"),
                            "%s.modules: no template of this action sends them; add \"{{ transfer.modules }}\" "
                            "to its request",
                            section),
                   &bad))
                return r;
        if (sends_modules && !a->nmodules &&
            !go_on(p, r = fail(p, k, "%s: a template reads transfer.modules, which needs %s.modules", section, section),
                   &bad))
                return r;
        if (conn_kd->failed) /* the kind's checks read the connector's settings */
                return bad;
        struct ob_config_check ck = {p};
        r = kind->check_action ? kind->check_action(&ck, a) : 0;
        return r < 0 ? r : bad;
}

/* An action's list of other actions (after:, restored_by:), by name. */
static int parse_action_list(struct pctx *p, yaml_node_t *v, struct ob_action *a, const char *key,
                             struct ob_action ***list, size_t *n)
{
        char **names = NULL;
        char what[200];
        snprintf(what, sizeof(what), "actions.%s.%s", a->name, key);
        int r = get_strlist(p, what, v, &names, NULL);
        if (r < 0)
                return r;
        int bad = 0;
        for (size_t i = 0; names && names[i]; i++) {
                struct ob_action *dep = find_action(p->cfg, names[i]);
                if (!dep || dep == a) {
                        r = !dep ? fail(p, v, "%s: unknown action '%s'", what, names[i])
                                 : fail(p, v, "%s: an action cannot name itself", what);
                        if (!go_on(p, r, &bad))
                                break;
                        continue;
                }
                struct ob_action **nl = realloc(*list, (*n + 1) * sizeof(*nl));
                if (!nl) {
                        r = -ENOMEM;
                        break;
                }
                *list = nl;
                nl[(*n)++] = dep;
                r = 0;
        }
        ob_strv_free(names);
        return r < 0 ? r : bad;
}

/* A depth-first search in three colours over the after: edges, each action
 * and edge visited once. Returns 1 and sets *ret to the index of an action
 * on a cycle, 0 when there is none, or -ENOMEM. */
static int find_after_cycle(const struct ob_config *c, size_t *ret)
{
        enum { WHITE, GREY, BLACK };
        struct dfs {
                size_t action, edge;
        };
        size_t n = c->nactions;
        unsigned char *colour = calloc(n ? n : 1, 1);
        struct dfs *stack = calloc(n ? n : 1, sizeof(*stack));
        int r = 0;
        if (!colour || !stack) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t s = 0; s < n && r == 0; s++) {
                if (colour[s] != WHITE)
                        continue;
                size_t top = 0;
                stack[top++] = (struct dfs){s, 0};
                colour[s] = GREY;
                while (top > 0) {
                        struct dfs *f = &stack[top - 1];
                        const struct ob_action *a = &c->actions[f->action];
                        if (f->edge == a->nafter) {
                                colour[f->action] = BLACK;
                                top--;
                                continue;
                        }
                        size_t d = (size_t)(a->after[f->edge++] - c->actions);
                        if (colour[d] == GREY) {
                                *ret = d;
                                r = 1;
                                break;
                        }
                        if (colour[d] == WHITE) {
                                colour[d] = GREY;
                                stack[top++] = (struct dfs){d, 0};
                        }
                }
        }
out:
        free(colour);
        free(stack);
        return r;
}

static int parse_transition(struct pctx *p, yaml_node_t *k, yaml_node_t *v, struct ob_transition *t)
{
        char section[160];
        snprintf(section, sizeof(section), "transitions.%s", scalar(k));
        /* Named even when the name is refused: safety.transitions finds it. */
        t->name = strdup(scalar(k));
        if (!t->name || set_source(p, k, &t->source) < 0)
                return -ENOMEM;
        int bad = 0, r = 0;
        if (!name_ok(scalar(k)) &&
            !go_on(p, r = fail(p, k, "transition names use letters, digits, '-' and '_' (at most 64): '%s'", scalar(k)),
                   &bad))
                return r;
        if ((r = expect(p, v, YAML_MAPPING_NODE, section)) < 0)
                return r;
        bool have_actions = false, have_to = false, unknown = false;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *kk = node(p, pr->key), *vv = node(p, pr->value);
                if ((r = expect(p, kk, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                const char *ks = scalar(kk);
                char what[200];
                snprintf(what, sizeof(what), "%s.%s", section, ks);
                if (strcmp(ks, "from") == 0) {
                        r = parse_status_list(p, what, vv, &t->from_mask, true);
                } else if (strcmp(ks, "to") == 0) {
                        r = parse_status_list(p, what, vv, &t->to_mask, false);
                        have_to = true;
                } else if (strcmp(ks, "when") == 0) {
                        r = parse_cond(p, vv, true, &t->when);
                } else if (strcmp(ks, "actions") == 0) {
                        char **names = NULL; /* get_strlist leaves it alone on failure */
                        r = get_strlist(p, what, vv, &names, NULL);
                        /* Each unknown name; none when there was no actions: section to look in. */
                        for (size_t i = 0; r == 0 && names && names[i]; i++) {
                                struct ob_action *a = find_action(p->cfg, names[i]);
                                if (!a && p->ld->actions_unknowable) {
                                        bad = -OB_ECONFIG;
                                        continue;
                                }
                                if (!a) {
                                        int e = fail(p, vv, "%s: unknown action '%s' (define it under actions:)", what,
                                                     names[i]);
                                        if (!go_on(p, e, &bad))
                                                r = e;
                                        continue;
                                }
                                struct ob_action **n = realloc(t->actions, (t->nactions + 1) * sizeof(*n));
                                if (!n) {
                                        r = -ENOMEM;
                                        break;
                                }
                                t->actions = n;
                                t->actions[t->nactions++] = a;
                        }
                        ob_strv_free(names);
                        have_actions = true;
                } else {
                        r = fail(p, kk, "unknown key '%s' in %s (expected one of: from, to, when, actions)", ks,
                                 section);
                        unknown = true;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        /* A missing key is not said when an unknown one (perhaps it, misspelt) was. */
        if (!have_to && !unknown && !go_on(p, r = fail(p, v, "%s: missing required key 'to'", section), &bad))
                return r;
        if (!have_actions && !unknown && !go_on(p, r = fail(p, v, "%s: missing required key 'actions'", section), &bad))
                return r;
        if (bad)
                return bad;
        if (!t->to_mask)
                return fail(p, v, "%s: missing required key 'to'", section);
        /* Every action a transition runs must have what it runs after: each one missing is said. */
        for (size_t i = 0; i < t->nactions; i++)
                for (size_t j = 0; j < t->actions[i]->nafter; j++) {
                        bool found = false;
                        for (size_t m = 0; m < t->nactions; m++)
                                found = found || t->actions[m] == t->actions[i]->after[j];
                        if (!found &&
                            !go_on(p,
                                   r = fail(p, v, "%s: action '%s' runs after '%s', which this transition lacks",
                                            section, t->actions[i]->name, t->actions[i]->after[j]->name),
                                   &bad))
                                return r;
                }
        return bad;
}

/* ---- files ---------------------------------------------------------------- */

static void pctx_done(struct pctx *p)
{
        if (p->have_doc)
                yaml_document_delete(&p->doc);
        p->have_doc = false;
        free(p->text);
        p->text = NULL;
        free(p->dir);
        p->dir = NULL;
        for (size_t i = 0; i < p->nconn_keyed; i++)
                free(p->conn_keyed[i].nodes);
        free(p->conn_keyed);
        p->conn_keyed = NULL;
        p->nconn_keyed = 0;
        for (size_t i = 0; i < p->naction_keyed; i++)
                free(p->action_keyed[i].nodes);
        free(p->action_keyed);
        p->action_keyed = NULL;
        p->naction_keyed = 0;
}

static int syntax_error(struct pctx *p, const yaml_parser_t *parser)
{
        if (parser->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        struct ob_config_error *e;
        int r = new_error(p->ld, &e);
        if (r < 0 || !e)
                return r < 0 ? r : -OB_ECONFIG;
        snprintf(e->message, sizeof(e->message), "%s:%zu:%zu: YAML syntax error: %s%s%s", p->file,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "unknown", parser->context ? " " : "",
                 parser->context ? parser->context : "");
        copy_line(p, parser->problem_mark.line, e);
        e->column = (int)parser->problem_mark.column + 1;
        return -OB_ECONFIG;
}

__attribute__((format(printf, 3, 4))) static int fail_mark(struct pctx *p, const yaml_mark_t *m, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = failv(p, m->line, m->column, fmt, ap);
        va_end(ap);
        return r;
}

/* The scalar keys of one mapping, in an open-addressing hash set. */
struct keyset {
        char **slot; /* NULL or a key; the capacity is a power of two */
        size_t *len;
        size_t cap, n;
};

static void keyset_done(struct keyset *k)
{
        for (size_t i = 0; i < k->cap; i++)
                free(k->slot[i]);
        free(k->slot);
        free(k->len);
        *k = (struct keyset){0};
}

static size_t key_hash(const char *s, size_t n)
{
        size_t h = 1469598103934665603ULL & SIZE_MAX;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)s[i]) * (1099511628211ULL & SIZE_MAX);
        return h;
}

/* Returns 1 if s was already there, 0 once added, or -ENOMEM. s is copied. */
static int keyset_add(struct keyset *k, const char *s, size_t n)
{
        if ((k->n + 1) * 2 > k->cap) {
                struct keyset g = {.cap = k->cap ? k->cap * 2 : 8};
                g.slot = calloc(g.cap, sizeof(*g.slot));
                g.len = calloc(g.cap, sizeof(*g.len));
                if (!g.slot || !g.len) {
                        free(g.slot);
                        free(g.len);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < k->cap; i++) {
                        if (!k->slot[i])
                                continue;
                        size_t j = key_hash(k->slot[i], k->len[i]) & (g.cap - 1);
                        while (g.slot[j])
                                j = (j + 1) & (g.cap - 1);
                        g.slot[j] = k->slot[i];
                        g.len[j] = k->len[i];
                }
                g.n = k->n;
                free(k->slot);
                free(k->len);
                *k = g;
        }
        size_t j = key_hash(s, n) & (k->cap - 1);
        for (; k->slot[j]; j = (j + 1) & (k->cap - 1))
                if (k->len[j] == n && memcmp(k->slot[j], s, n) == 0)
                        return 1;
        k->slot[j] = malloc(n + 1);
        if (!k->slot[j])
                return -ENOMEM;
        memcpy(k->slot[j], s, n);
        k->slot[j][n] = '\0';
        k->len[j] = n;
        k->n++;
        return 0;
}

struct frame {
        bool mapping;
        bool want_key; /* mapping: the next node is a key */
        struct keyset keys;
};

/* Reads the file's events once before the document is built, so that no
 * input can make the document large: no anchors or aliases (an alias cycle,
 * or a few hundred bytes that expand to gigabytes), at most
 * OB_CONFIG_MAX_DEPTH nested collections and OB_CONFIG_MAX_NODES nodes, one
 * document, and no mapping anywhere with the same key twice. Memory is
 * linear in the file's size. Every duplicate key is reported; any other
 * error stops the reading. Either way the document is not built. */
static int prepass(struct pctx *p, size_t len)
{
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)p->text, len);
        struct frame stack[OB_CONFIG_MAX_DEPTH] = {0};
        size_t depth = 0, nodes = 0, docs = 0;
        int r = 0, bad = 0;
        bool done = false;
        while (r == 0 && !done) {
                yaml_event_t ev;
                if (!yaml_parser_parse(&parser, &ev)) {
                        r = syntax_error(p, &parser);
                        break;
                }
                const yaml_mark_t *m = &ev.start_mark;
                const unsigned char *anchor = NULL;
                bool is_node = false;
                switch (ev.type) {
                case YAML_STREAM_END_EVENT: done = true; break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++docs > 1)
                                r = fail_mark(p, m, "a configuration file holds one YAML document");
                        break;
                case YAML_ALIAS_EVENT:
                        r = fail_mark(p, m, "YAML anchors and aliases are not supported (write the value out in full)");
                        break;
                case YAML_SCALAR_EVENT:
                        anchor = ev.data.scalar.anchor;
                        is_node = true;
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        anchor = ev.data.sequence_start.anchor;
                        is_node = true;
                        break;
                case YAML_MAPPING_START_EVENT:
                        anchor = ev.data.mapping_start.anchor;
                        is_node = true;
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        if (depth > 0)
                                keyset_done(&stack[--depth].keys);
                        break;
                default: break;
                }
                if (r == 0 && anchor)
                        r = fail_mark(p, m, "YAML anchors and aliases are not supported (write the value out in full)");
                if (r == 0 && is_node && ++nodes > OB_CONFIG_MAX_NODES)
                        r = fail_mark(p, m, "more than %d YAML nodes in one file", OB_CONFIG_MAX_NODES);
                if (r == 0 && is_node && depth > 0 && stack[depth - 1].mapping) {
                        struct frame *f = &stack[depth - 1];
                        if (f->want_key && ev.type == YAML_SCALAR_EVENT) {
                                const char *k = (const char *)ev.data.scalar.value;
                                size_t kn = ev.data.scalar.length;
                                int d = keyset_add(&f->keys, k, kn);
                                if (d < 0)
                                        r = d;
                                else if (d > 0) {
                                        r = fail_mark(p, m, "duplicate key '%.*s'", kn > 200 ? 200 : (int)kn, k);
                                        if (go_on(p, r, &bad))
                                                r = 0; /* reported: on to the next */
                                }
                        }
                        f->want_key = !f->want_key;
                }
                if (r == 0 && (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)) {
                        if (depth == OB_CONFIG_MAX_DEPTH)
                                r = fail_mark(p, m, "nested deeper than %d levels", OB_CONFIG_MAX_DEPTH);
                        else
                                stack[depth++] = (struct frame){.mapping = ev.type == YAML_MAPPING_START_EVENT,
                                                                .want_key = true};
                }
                yaml_event_delete(&ev);
        }
        while (depth > 0)
                keyset_done(&stack[--depth].keys);
        yaml_parser_delete(&parser);
        return r < 0 ? r : bad;
}

/* Reads and parses one file. An error here stops the file's checks: there
 * is no document to walk. */
static int pctx_load(struct pctx *p, const char *path)
{
        p->file = path;
        FILE *f = fopen(path, "re");
        if (!f)
                return fail_plain(p, "cannot open: %s", strerror(errno));
        struct stat st;
        if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
                fclose(f);
                return fail_plain(p, "not a regular file");
        }
        if (st.st_size > OB_CONFIG_MAX_BYTES) {
                fclose(f);
                return fail_plain(p, "larger than %d bytes", OB_CONFIG_MAX_BYTES);
        }
        p->text = calloc(1, (size_t)st.st_size + 1);
        if (!p->text) {
                fclose(f);
                return -ENOMEM;
        }
        size_t n = fread(p->text, 1, (size_t)st.st_size, f);
        fclose(f);
        p->text[n] = '\0';
        char *d = strdup(path);
        if (!d)
                return -ENOMEM;
        p->dir = strdup(dirname(d));
        free(d);
        if (!p->dir)
                return -ENOMEM;

        int r = prepass(p, n);
        if (r < 0)
                return r;
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)p->text, n);
        if (!yaml_parser_load(&parser, &p->doc)) {
                r = syntax_error(p, &parser);
                yaml_parser_delete(&parser);
                return r;
        }
        yaml_parser_delete(&parser);
        p->have_doc = true;
        yaml_node_t *root = yaml_document_get_root_node(&p->doc);
        if (!root)
                return fail_plain(p, "the file is empty");
        return 0;
}

static int resolve_mapping(struct pctx *p, const char *name, char **ret)
{
        if (strchr(name, '/') || strstr(name, ".yaml") || strstr(name, ".yml"))
                return resolve_path(p, name, ret);
        const char *dirs[3] = {getenv("OFFBOARD_MAPPINGS_DIR"), NULL, OFFBOARD_DATADIR "/mappings"};
        char *local = NULL;
        if (asprintf(&local, "%s/mappings", p->dir) < 0)
                return -ENOMEM;
        dirs[1] = local;
        for (size_t i = 0; i < 3; i++) {
                if (!dirs[i])
                        continue;
                char *c;
                if (asprintf(&c, "%s/%s.yaml", dirs[i], name) < 0) {
                        free(local);
                        return -ENOMEM;
                }
                if (access(c, R_OK) == 0) {
                        free(local);
                        *ret = c;
                        return 0;
                }
                free(c);
        }
        free(local);
        return -ENOENT;
}

/* A mapping file's directory: defaults for its kind of server (filter, id
 * and field attributes, team groups): used where the configuration's own
 * directory section (read first) and earlier mappings set nothing. */
static int mapping_directory(struct pctx *p, yaml_node_t *v)
{
        struct ob_directory_config t = {0}, *d = &p->cfg->directory;
#define D(x) offsetof(struct ob_directory_config, x)
        const struct field f[] = {
                {"filter", h_filter, D(filter), false},
                {"id_attribute", h_attr, D(id_attribute), false},
                {"username_attribute", h_attr, D(username_attribute), false},
                {"mail_attribute", h_attr, D(mail_attribute), false},
                {"name_attribute", h_attr, D(name_attribute), false},
                {"manager_attribute", h_attr, D(manager_attribute), false},
                {"teams_filter", h_filter, D(teams_filter), false},
                {"teams_member_attribute", h_attr, D(teams_member_attribute), false},
                {"teams_owner_attribute", h_attr, D(teams_owner_attribute), false},
                {NULL},
        };
        int r = walk(p, v, "directory", f, &t);
        for (size_t i = 0; f[i].key; i++) {
                char **dst = (char **)((char *)d + f[i].offset), **src = (char **)((char *)&t + f[i].offset);
                if (r == 0 && !*dst)
                        *dst = *src;
                else
                        free(*src);
        }
#undef D
        return r;
}

/* One mapping rule: its keys (each checked), then what they must be
 * together, skipped when one of them was refused. */
static int parse_rule(struct pctx *p, yaml_node_t *rn, struct ob_rule *rule)
{
        int r = set_source(p, rn, &rule->source);
        if (r < 0)
                return r;
        if ((r = expect(p, rn, YAML_MAPPING_NODE, "a rule")) < 0)
                return r;
        char *status = NULL;
        yaml_node_t *when = NULL;
        int bad = 0;
        for (yaml_node_pair_t *pr = rn->data.mapping.pairs.start; pr < rn->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(p, r, &bad))
                                goto out;
                        continue;
                }
                const char *ks = scalar(k);
                if (strcmp(ks, "name") == 0) {
                        r = h_nonempty(p, "rules.name", v, &rule->name);
                        if (r == 0 && !name_ok(rule->name))
                                r = fail(p, v, "rule names use letters, digits, '-' and '_'");
                } else if (strcmp(ks, "status") == 0)
                        r = h_nonempty(p, "rules.status", v, &status);
                else if (strcmp(ks, "when") == 0)
                        when = v;
                else if (strcmp(ks, "reason") == 0)
                        r = h_str(p, "rules.reason", v, &rule->reason);
                else if (strcmp(ks, "reason_attribute") == 0)
                        r = h_attr(p, "rules.reason_attribute", v, &rule->reason_attribute);
                else
                        r = fail(p, k,
                                 "unknown key '%s' in a rule (expected one of: name, status, when, reason, "
                                 "reason_attribute)",
                                 ks);
                if (r < 0 && !go_on(p, r, &bad))
                        goto out;
        }
        r = bad;
        if (r == 0 && !rule->name)
                r = fail(p, rn, "a rule needs a name");
        if (r == 0 && !status)
                r = fail(p, rn, "rule '%s' needs a status", rule->name);
        if (r == 0 && (ob_status_from_name(status, &rule->status) < 0 || rule->status == OB_STATUS_DELETED ||
                       rule->status == OB_STATUS_ACTIVE))
                r = fail(p, rn,
                         "rule '%s': status must be locked, inactive or ended (active is what no rule "
                         "matches; deleted comes from the directory), not '%s'",
                         rule->name, status);
        if (r == 0 && !when)
                r = fail(p, rn, "rule '%s' needs a when: condition", rule->name);
        /* The condition is checked whatever the rule's other keys. */
        if (when && (r == 0 || go_on(p, r, &bad))) {
                int k = parse_cond(p, when, false, &rule->when);
                r = k < 0 ? k : bad;
        }
out:
        free(status);
        return r;
}

/* A mapping file: each of its sections and rules checked, whatever the
 * others' errors. */
static int load_mapping(struct loader *ld, struct ob_config *cfg, const char *path)
{
        struct pctx p = {.ld = ld, .cfg = cfg};
        int bad = 0;
        /* Until its policies: are read, the policies its rules name are unknown. */
        bool policies_read = false;
        int r = pctx_load(&p, path);
        if (r < 0)
                goto out;
        yaml_node_t *root = yaml_document_get_root_node(&p.doc);
        if ((r = expect(&p, root, YAML_MAPPING_NODE, "a mapping file")) < 0)
                goto out;
        policies_read = true; /* unless a misspelt key below was them */
        yaml_node_t *rules = NULL;
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(&p, pr->key);
                if ((r = expect(&p, k, YAML_SCALAR_NODE, "a key")) < 0) {
                        if (!go_on(&p, r, &bad))
                                goto out;
                        continue;
                }
                if (strcmp(scalar(k), "rules") == 0)
                        rules = node(&p, pr->value);
                else if (strcmp(scalar(k), "required_attributes") == 0)
                        r = h_attrlist(&p, "required_attributes", node(&p, pr->value), &cfg->required_attributes);
                else if (strcmp(scalar(k), "directory") == 0)
                        r = mapping_directory(&p, node(&p, pr->value));
                else if (strcmp(scalar(k), "policies") == 0) {
                        r = parse_policies(&p, node(&p, pr->value));
                        ld->policies_failed = ld->policies_failed || r < 0;
                } else if (strcmp(scalar(k), "description") != 0) {
                        r = fail(&p, k,
                                 "unknown key '%s' in a mapping file (expected one of: description, directory, "
                                 "policies, required_attributes, rules)",
                                 scalar(k));
                        policies_read = false;
                }
                if (r < 0 && !go_on(&p, r, &bad))
                        goto out;
        }
        r = 0;
        if (!rules) {
                r = fail(&p, root, "a mapping file needs rules:");
                goto out;
        }
        if ((r = expect(&p, rules, YAML_SEQUENCE_NODE, "rules")) < 0)
                goto out;
        for (yaml_node_item_t *i = rules->data.sequence.items.start; i < rules->data.sequence.items.top; i++) {
                struct ob_rule *n = realloc(cfg->rules, (cfg->nrules + 1) * sizeof(*n));
                if (!n) {
                        r = -ENOMEM;
                        goto out;
                }
                cfg->rules = n;
                struct ob_rule *rule = &cfg->rules[cfg->nrules++];
                *rule = (struct ob_rule){0};
                if ((r = parse_rule(&p, node(&p, *i), rule)) < 0 && !go_on(&p, r, &bad))
                        goto out;
        }
        r = 0;
out:
        ld->policies_failed = ld->policies_failed || !policies_read;
        pctx_done(&p);
        return r < 0 ? r : bad;
}

static void set_default(char **s, const char *v, int *r)
{
        if (!*s && v && *r == 0) {
                *s = strdup(v);
                if (!*s)
                        *r = -ENOMEM;
        }
}

static int add_attr_cb(const char *attr, void *ud)
{
        return ob_strv_add_unique_ci(ud, attr);
}

static int add_tpl_attrs(const struct ob_tpl *t, void *ud)
{
        return ob_tpl_attributes(t, add_attr_cb, ud);
}

static int uses_transfer_cb(const struct ob_tpl *t, void *ud)
{
        if (ob_tpl_uses_prefix(t, "transfer_to."))
                *(bool *)ud = true;
        return 0;
}

struct uses_lists {
        bool teams, groups;
};

static int uses_lists_cb(const struct ob_tpl *t, void *ud)
{
        struct uses_lists *u = ud;
        u->teams = u->teams || ob_tpl_uses_prefix(t, "account.teams");
        u->groups = u->groups || ob_tpl_uses_prefix(t, "account.groups");
        return 0;
}

/* Every attribute the rules, conditions and templates read is requested. */
static int collect_attributes(struct ob_config *c)
{
        struct ob_directory_config *d = &c->directory;
        char ***l = &d->attributes;
        const char *fixed[] = {d->username_attribute,
                               d->mail_attribute,
                               d->name_attribute,
                               d->manager_attribute,
                               c->writeback.enabled ? c->writeback.status_attribute : NULL,
                               c->writeback.enabled ? c->writeback.assertion_attribute : NULL};
        int r = 0;
        for (size_t i = 0; r == 0 && i < OB_ELEMENTSOF(fixed); i++)
                if (fixed[i])
                        r = ob_strv_add_unique_ci(l, fixed[i]);
        for (size_t i = 0; r == 0 && c->required_attributes && c->required_attributes[i]; i++)
                r = ob_strv_add_unique_ci(l, c->required_attributes[i]);
        /* With the entry's classes at hand, a write-back knows whether to add
         * its auxiliary class without reading the entry again. */
        if (r == 0 && c->writeback.enabled && c->writeback.object_class)
                r = ob_strv_add_unique_ci(l, "objectClass");
        for (size_t i = 0; r == 0 && i < c->nguards; i++) {
                if (c->guards[i].role_attribute)
                        r = ob_strv_add_unique_ci(l, c->guards[i].role_attribute);
                if (r == 0 && c->guards[i].url)
                        r = add_tpl_attrs(c->guards[i].url, l);
        }
        for (size_t i = 0; r == 0 && i < c->nrules; i++) {
                r = ob_cond_attributes(c->rules[i].when, l);
                if (r == 0 && c->rules[i].reason_attribute)
                        r = ob_strv_add_unique_ci(l, c->rules[i].reason_attribute);
        }
        for (size_t i = 0; r == 0 && i < c->nactions; i++) {
                struct ob_action *a = &c->actions[i];
                r = ob_cond_attributes(a->when, l);
                for (size_t m = 0; r == 0 && m < a->nmodules; m++)
                        r = ob_cond_attributes(a->modules[m].when, l);
                if (r == 0)
                        r = specs_foreach_tpl(a->connector->kind->action_keys, a->settings, add_tpl_attrs, l);
        }
        /* A connector's own templates (a header) are rendered for every account too. */
        for (size_t i = 0; r == 0 && i < c->nconnectors; i++)
                r = specs_foreach_tpl(c->connectors[i].kind->connector_keys, c->connectors[i].settings, add_tpl_attrs,
                                      l);
        for (size_t i = 0; r == 0 && i < c->ntransitions; i++)
                r = ob_cond_attributes(c->transitions[i].when, l);
        /* account.teams reads the teams search; account.groups the entry's memberOf. */
        struct uses_lists u = {0};
        for (size_t i = 0; r == 0 && i < c->nactions; i++) {
                struct ob_action *a = &c->actions[i];
                struct uses_lists ua = {0};
                specs_foreach_tpl(a->connector->kind->action_keys, a->settings, uses_lists_cb, &ua);
                specs_foreach_tpl(a->connector->kind->connector_keys, a->connector->settings, uses_lists_cb, &ua);
                a->uses_teams = ua.teams;
                u.teams = u.teams || ua.teams;
                u.groups = u.groups || ua.groups;
        }
        c->uses_teams = u.teams;
        if (r == 0 && u.groups)
                r = ob_strv_add_unique_ci(l, "memberOf");
        return r;
}

static int parse_safety_transitions(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                int r = expect(p, k, YAML_SCALAR_NODE, "a transition name");
                struct ob_transition *t = NULL;
                for (size_t i = 0; r == 0 && !t && i < c->ntransitions; i++)
                        if (strcmp(c->transitions[i].name, scalar(k)) == 0)
                                t = &c->transitions[i];
                if (r == 0 && !t)
                        r = fail(p, k, "safety.transitions: unknown transition '%s' (define it under transitions:)",
                                 scalar(k));
                if (r == 0) {
                        char what[200];
                        snprintf(what, sizeof(what), "safety.transitions.%s", scalar(k));
                        const struct field f[] = {
                                {"max_accounts", h_size, offsetof(struct ob_transition, max_accounts), false},
                                {"max_percent", h_percent, offsetof(struct ob_transition, max_percent), false},
                                {NULL},
                        };
                        r = walk(p, node(p, pr->value), what, f, t);
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

/* mappings: each file found, and the list of them in c->mapping_files. */
static int parse_mapping_list(struct pctx *p, yaml_node_t *m)
{
        struct ob_config *c = p->cfg;
        if (m->type != YAML_SEQUENCE_NODE || m->data.sequence.items.top == m->data.sequence.items.start)
                return fail(p, m, "mappings must be a non-empty list of mapping files or names");
        int r, bad = 0;
        for (yaml_node_item_t *i = m->data.sequence.items.start; i < m->data.sequence.items.top; i++) {
                yaml_node_t *e = node(p, *i);
                char *path = NULL;
                if ((r = expect(p, e, YAML_SCALAR_NODE, "mappings")) == 0)
                        r = resolve_mapping(p, scalar(e), &path);
                if (r == -ENOENT)
                        r = fail(p, e, "mapping '%s' not found (looked in $OFFBOARD_MAPPINGS_DIR, %s/mappings and %s)",
                                 scalar(e), p->dir, OFFBOARD_DATADIR "/mappings");
                if (r == 0)
                        r = ob_strv_add_unique_ci(&c->mapping_files, path);
                free(path);
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

static int parse_connectors(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int r = expect(p, v, YAML_MAPPING_NODE, "connectors");
        if (r < 0)
                return r;
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->connectors = calloc(n ? n : 1, sizeof(*c->connectors));
        p->conn_keyed = calloc(n ? n : 1, sizeof(*p->conn_keyed));
        if (!c->connectors || !p->conn_keyed)
                return -ENOMEM;
        p->nconn_keyed = n;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a connector name")) == 0 && find_connector(c, scalar(k)))
                        r = fail(p, k, "duplicate connector '%s'", scalar(k));
                if (r < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                size_t at = c->nconnectors++;
                bool named = name_ok(scalar(k));
                if (!named)
                        r = fail(p, k, "connector names use letters, digits, '-' and '_': '%s'", scalar(k));
                /* Read even with a refused name: its actions find it, and its own mistakes are said. */
                if (named || go_on(p, r, &bad))
                        r = parse_connector(p, k, node(p, pr->value), &c->connectors[at], &p->conn_keyed[at]);
                p->conn_keyed[at].failed = !named || r < 0;
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

static int parse_actions(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int r = expect(p, v, YAML_MAPPING_NODE, "actions");
        if (r < 0)
                return r;
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->actions = calloc(n ? n : 1, sizeof(*c->actions));
        yaml_node_t **after = calloc(n ? n : 1, sizeof(*after));
        yaml_node_t **restored = calloc(n ? n : 1, sizeof(*restored));
        p->action_keyed = calloc(n ? n : 1, sizeof(*p->action_keyed));
        int bad = 0;
        if (!c->actions || !after || !restored || !p->action_keyed) {
                r = -ENOMEM;
                goto out;
        }
        p->naction_keyed = n;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                if ((r = expect(p, k, YAML_SCALAR_NODE, "an action name")) == 0 && find_action(c, scalar(k)))
                        r = fail(p, k, "duplicate action '%s'", scalar(k));
                if (r == 0) {
                        size_t at = c->nactions++;
                        r = parse_action(p, k, node(p, pr->value), &c->actions[at], &after[at], &restored[at],
                                         &p->action_keyed[at]);
                        p->action_keyed[at].failed = r < 0;
                }
                if (r < 0 && !go_on(p, r, &bad))
                        goto out;
        }
        /* The names in after: and restored_by:, each unknown one said. */
        int lists_bad = 0;
        for (size_t i = 0; i < c->nactions; i++) {
                struct ob_action *a = &c->actions[i];
                if (after[i] && (r = parse_action_list(p, after[i], a, "after", &a->after, &a->nafter)) < 0 &&
                    !go_on(p, r, &lists_bad))
                        goto out;
                if (restored[i] &&
                    (r = parse_action_list(p, restored[i], a, "restored_by", &a->restored_by, &a->nrestored_by)) < 0 &&
                    !go_on(p, r, &lists_bad))
                        goto out;
        }
        size_t cyc = 0;
        r = lists_bad ? 0 : find_after_cycle(c, &cyc);
        if (r > 0)
                r = fail(p, after[cyc], "actions.%s.after: the after: lists form a cycle", c->actions[cyc].name);
        if (r < 0 && !go_on(p, r, &bad))
                goto out;
        r = bad ? bad : lists_bad;
out:
        free(after);
        free(restored);
        return r;
}

/* The kinds' rules across a connector and the actions that use it. They
 * read every action, its after: list and the directory: section, so they
 * run only when all of those were read without an error. */
static int check_uses(struct pctx *p)
{
        struct ob_config *c = p->cfg;
        int r, bad = 0;
        for (size_t i = 0; i < c->nconnectors; i++) {
                const struct ob_connector *k = &c->connectors[i];
                struct ob_config_check ck = {p};
                if (k->kind->check_uses && (r = k->kind->check_uses(&ck, c, k)) < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

static int parse_transitions(struct pctx *p, yaml_node_t *v)
{
        struct ob_config *c = p->cfg;
        int r = expect(p, v, YAML_MAPPING_NODE, "transitions");
        if (r < 0)
                return r;
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->transitions = calloc(n ? n : 1, sizeof(*c->transitions));
        if (!c->transitions)
                return -ENOMEM;
        int bad = 0;
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                r = expect(p, k, YAML_SCALAR_NODE, "a transition name");
                for (size_t i = 0; r == 0 && i < c->ntransitions; i++)
                        if (strcmp(c->transitions[i].name, scalar(k)) == 0)
                                r = fail(p, k, "duplicate transition '%s'", scalar(k));
                if (r == 0) {
                        c->ntransitions++;
                        r = parse_transition(p, k, node(p, pr->value), &c->transitions[c->ntransitions - 1]);
                }
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        return bad;
}

/* The configuration file. Each section is read whatever the others' errors;
 * a check that needs another section is skipped when that one failed. */
static int load_main(struct pctx *p)
{
        struct ob_config *c = p->cfg;
        struct loader *ld = p->ld;
        int r = pctx_load(p, c->path);
        if (r < 0)
                return r;
        yaml_node_t *root = yaml_document_get_root_node(&p->doc);
        if ((r = expect(p, root, YAML_MAPPING_NODE, "the configuration")) < 0)
                return r;
        static const char *const sections[] = {"directory", "writeback",  "state",   "transfer",    "safety",
                                               "mappings",  "connectors", "actions", "transitions", "service",
                                               "policies",  "guards",     NULL};
        yaml_node_t *sec[12] = {0};
        int bad = 0;
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = node(p, pr->key);
                size_t i = 0;
                if ((r = expect(p, k, YAML_SCALAR_NODE, "a key")) == 0) {
                        while (sections[i] && strcmp(sections[i], scalar(k)) != 0)
                                i++;
                        if (!sections[i]) {
                                ld->unknown_section = true;
                                r = fail(p, k,
                                         "unknown section '%s' (expected one of: directory, writeback, state, "
                                         "transfer, safety, mappings, connectors, actions, transitions, service, "
                                         "policies, guards)",
                                         scalar(k));
                        } else if (sec[i])
                                r = fail(p, k, "duplicate section '%s'", scalar(k));
                }
                if (r < 0) {
                        if (!go_on(p, r, &bad))
                                return r;
                        continue;
                }
                sec[i] = node(p, pr->value);
        }
        if (!sec[0] && !go_on(p, r = fail(p, root, "missing required section 'directory'"), &bad))
                return r;
        if (!sec[5] &&
            !go_on(p, r = fail(p, root, "missing required section 'mappings' (for example: mappings: [openldap])"),
                   &bad))
                return r;
        ld->directory_failed = !sec[0];
        if (sec[0]) {
                r = parse_directory(p, sec[0]);
                ld->directory_failed = r < 0;
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if (sec[1] && (r = parse_writeback(p, sec[1])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[2] && (r = parse_state(p, sec[2])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[3] && (r = parse_transfer(p, sec[3])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[4] && (r = parse_safety(p, sec[4])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[9] && (r = parse_service(p, sec[9])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[10]) {
                r = parse_policies(p, sec[10]);
                ld->policies_failed = ld->policies_failed || r < 0;
                if (r < 0 && !go_on(p, r, &bad))
                        return r;
        }
        if (sec[5] && (r = parse_mapping_list(p, sec[5])) < 0 && !go_on(p, r, &bad))
                return r;
        /* A section that is not a mapping, or absent beside a misspelt one,
         * defines nothing: names looked up in it are not said unknown. */
        ld->connectors_unknowable = sec[6] ? sec[6]->type != YAML_MAPPING_NODE : ld->unknown_section;
        ld->actions_unknowable = sec[7] ? sec[7]->type != YAML_MAPPING_NODE : ld->unknown_section;
        ld->transitions_unknowable = sec[8] ? sec[8]->type != YAML_MAPPING_NODE : ld->unknown_section;
        int uses_bad = ld->directory_failed ? -OB_ECONFIG : 0;
        if (sec[6] && (r = parse_connectors(p, sec[6])) < 0 && !go_on(p, r, &uses_bad))
                return r;
        if (sec[7] && (r = parse_actions(p, sec[7])) < 0 && !go_on(p, r, &uses_bad))
                return r;
        if (!uses_bad && (r = check_uses(p)) < 0 && !go_on(p, r, &bad))
                return r;
        bad = bad ? bad : uses_bad;
        /* After the connectors: a guard may ask one. */
        if (sec[11] && (r = parse_guards(p, sec[11])) < 0 && !go_on(p, r, &bad))
                return r;
        if (sec[8] && (r = parse_transitions(p, sec[8])) < 0 && !go_on(p, r, &bad))
                return r;
        if (p->safety_transitions && !ld->transitions_unknowable &&
            (r = parse_safety_transitions(p, p->safety_transitions)) < 0 && !go_on(p, r, &bad))
                return r;
        return bad;
}

/* r is 0, or errors that let the checks go on (not out of memory, not too many). */
static bool still(const struct loader *ld, int r)
{
        return r == 0 || (r == -OB_ECONFIG && !ld->full);
}

int ob_config_load_all(const char *path, struct ob_config **ret, struct ob_config_errors *errs)
{
        *errs = (struct ob_config_errors){0};
        struct loader ld = {.errs = errs};
        struct ob_config *c = calloc(1, sizeof(*c));
        if (!c) {
                fail_loader(&ld, "%s: out of memory", path);
                return -ENOMEM;
        }
        c->path = strdup(path);
        c->directory.starttls = true;
        c->directory.tls_verify = true;
        c->directory.scope = OB_SCOPE_SUB;
        c->directory.page_size = 500;
        c->directory.timeout_ms = 30000;
        c->directory.search_deadline_ms = 30 * 60 * 1000;
        c->directory.max_pages = 10000;
        c->directory.min_accounts = 1;
        c->writeback.enabled = true;
        c->safety.max_accounts = 50;
        c->safety.max_percent = 10;
        c->safety.window_ms = 3600 * 1000;
        c->drain_timeout_ms = 10000;
        c->full_pass_interval_ms = 3600 * 1000;
        c->poll_interval_ms = 1000;
        struct pctx p = {.ld = &ld, .cfg = c};
        int r = c->path ? load_main(&p) : -ENOMEM;
        pctx_done(&p);
        /* Each mapping file is its own: read whatever the configuration's errors. */
        for (size_t i = 0; still(&ld, r) && c->mapping_files && c->mapping_files[i]; i++) {
                int k = load_mapping(&ld, c, c->mapping_files[i]);
                r = k < 0 ? k : r;
        }
        /* Policies are named across files; none is said unknown or without a
         * dn when a policies: entry, or perhaps a misspelt section, failed. */
        if (r == 0 || (still(&ld, r) && !ld.policies_failed && !ld.unknown_section)) {
                int k = resolve_policies(c, &ld);
                r = k < 0 ? k : r;
        }
        /* The checks below read every section: after an error, they are skipped. */
        struct ob_directory_config *d = &c->directory;
        set_default(&d->filter, "(objectClass=inetOrgPerson)", &r);
        set_default(&d->id_attribute, "entryUUID", &r);
        set_default(&d->username_attribute, "uid", &r);
        set_default(&d->mail_attribute, "mail", &r);
        set_default(&d->name_attribute, "cn", &r);
        set_default(&d->manager_attribute, "manager", &r);
        if (d->teams_base) {
                set_default(&d->teams_filter, "(objectClass=groupOfNames)", &r);
                set_default(&d->teams_member_attribute, "member", &r);
                set_default(&d->teams_owner_attribute, "owner", &r);
        }
        struct ob_writeback_config *w = &c->writeback;
        if (!w->status_attribute && !w->time_attribute && !w->actions_attribute && !w->reason_attribute) {
                if (!w->no_object_class)
                        set_default(&w->object_class, "offboardAccount", &r);
                set_default(&w->status_attribute, "offboardStatus", &r);
                set_default(&w->time_attribute, "offboardStatusTime", &r);
                set_default(&w->reason_attribute, "offboardReason", &r);
                set_default(&w->actions_attribute, "offboardAction", &r);
        }
        if (r == 0 && w->enabled && !w->status_attribute)
                r = fail_loader(&ld, "%s: writeback: status_attribute is required when attributes are mapped", path);
        if (w->enabled) {
                d->writeback_time_attribute = w->time_attribute;
                d->writeback_assertion_attribute = w->assertion_attribute;
        }
        set_default(&c->state_path, "/var/lib/offboard/state.db", &r);
        if (r == 0 && !c->journal_path) {
                /* The audit journal lives beside the state store. */
                char *sd = strdup(c->state_path);
                if (!sd || asprintf(&c->journal_path, "%s/journal.jsonl", dirname(sd)) < 0) {
                        c->journal_path = NULL;
                        r = -ENOMEM;
                }
                free(sd);
        }
        if (r == 0)
                r = collect_attributes(c);
        if (r == 0 && c->uses_teams && !c->directory.teams_base)
                r = fail_loader(&ld,
                                "%s: a template reads account.teams or account.teams_led, which need "
                                "directory.teams",
                                path);
        for (size_t i = 0; r == 0 && i < c->nactions; i++) {
                struct ob_action *a = &c->actions[i];
                const struct ob_connector *k = a->connector;
                specs_foreach_tpl(k->kind->action_keys, a->settings, uses_transfer_cb, &a->uses_transfer);
                specs_foreach_tpl(k->kind->connector_keys, k->settings, uses_transfer_cb, &a->uses_transfer);
                c->uses_transfer = c->uses_transfer || a->uses_transfer;
        }
        if (r < 0) {
                if (r == -ENOMEM)
                        fail_loader(&ld, "%s: out of memory", path);
                else if (errs->n == 0 && !errs->truncated) /* never a failure without a message */
                        fail_loader(&ld, "%s: %s", path, ob_strerror(r));
                ob_config_free(c);
                return r == -ENOMEM ? r : -OB_ECONFIG;
        }
        *ret = c;
        return 0;
}

int ob_config_load(const char *path, struct ob_config **ret, struct ob_config_error *err)
{
        struct ob_config_errors errs;
        int r = ob_config_load_all(path, ret, &errs);
        *err = errs.n > 0 ? errs.v[0] : (struct ob_config_error){0};
        if (r < 0 && !err->message[0])
                snprintf(err->message, sizeof(err->message), "%s: %s", path,
                         r == -ENOMEM ? "out of memory" : ob_strerror(r));
        ob_config_errors_clear(&errs);
        return r;
}

void ob_config_errors_clear(struct ob_config_errors *errs)
{
        free(errs->v);
        *errs = (struct ob_config_errors){0};
}

void ob_config_errors_print(const struct ob_config_errors *errs, FILE *f)
{
        for (size_t i = 0; i < errs->n; i++)
                fprintf(f, "%s\n", errs->v[i].message);
        if (errs->truncated)
                fprintf(f, "too many errors, stopping\n");
}

void ob_config_free(struct ob_config *c)
{
        if (!c)
                return;
        struct ob_directory_config *d = &c->directory;
        char *dstr[] = {d->uri,          d->ca_file,      d->bind_dn,
                        d->bind_password_file, d->base,   d->filter,
                        d->id_attribute, d->username_attribute, d->mail_attribute,
                        d->name_attribute, d->manager_attribute, d->teams_base,
                        d->teams_filter, d->teams_member_attribute, d->teams_owner_attribute};
        for (size_t i = 0; i < OB_ELEMENTSOF(dstr); i++)
                free(dstr[i]);
        ob_strv_free(d->attributes);
        struct ob_writeback_config *w = &c->writeback;
        free(w->object_class);
        free(w->status_attribute);
        free(w->time_attribute);
        free(w->reason_attribute);
        free(w->actions_attribute);
        free(w->assertion_attribute);
        for (size_t i = 0; i < c->nrules; i++) {
                free(c->rules[i].name);
                free(c->rules[i].source);
                ob_cond_free(c->rules[i].when);
                free(c->rules[i].reason);
                free(c->rules[i].reason_attribute);
        }
        free(c->rules);
        /* Actions first: their settings are read with their connector's kind. */
        for (size_t i = 0; i < c->nactions; i++) {
                struct ob_action *a = &c->actions[i];
                free(a->name);
                free(a->source);
                if (a->settings)
                        specs_free(a->connector->kind->action_keys, a->settings);
                free(a->settings);
                ob_cond_free(a->when);
                free(a->after);
                free(a->restored_by);
                for (size_t m = 0; m < a->nmodules; m++) {
                        struct ob_transfer_module *tm = &a->modules[m];
                        free(tm->name);
                        for (size_t k = 0; k < tm->ncriteria; k++) {
                                free(tm->criteria[k].field);
                                ob_strv_free(tm->criteria[k].values);
                        }
                        free(tm->criteria);
                        ob_cond_free(tm->when);
                }
                free(a->modules);
        }
        free(c->actions);
        for (size_t i = 0; i < c->nconnectors; i++) {
                struct ob_connector *k = &c->connectors[i];
                free(k->name);
                if (k->settings)
                        specs_free(k->kind->connector_keys, k->settings);
                free(k->settings);
        }
        free(c->connectors);
        for (size_t i = 0; i < c->ntransitions; i++) {
                free(c->transitions[i].name);
                free(c->transitions[i].source);
                ob_cond_free(c->transitions[i].when);
                free(c->transitions[i].actions);
        }
        free(c->transitions);
        for (size_t i = 0; i < c->npolicies; i++) {
                free(c->policies[i].name);
                free(c->policies[i].dn);
                free(c->policies[i].source);
                ob_strv_free(c->policies[i].attributes);
        }
        free(c->policies);
        for (size_t i = 0; i < c->nguards; i++) {
                struct ob_guard *g = &c->guards[i];
                free(g->name);
                free(g->source);
                free(g->group);
                free(g->member_attribute);
                free(g->role_attribute);
                ob_strv_free(g->ranks);
                free(g->role_above);
                free(g->sole_member_of);
                ob_tpl_free(g->url);
                free(g->json);
                free(g->block_status.v);
                free(g->clear_status.v);
        }
        free(c->guards);
        ob_strv_free(c->mapping_files);
        ob_strv_free(c->required_attributes);
        free(c->state_path);
        free(c->journal_path);
        free(c->listen);
        free(c->transfer_fallback);
        ob_strv_free(c->transfer_leader_of);
        free(c->path);
        free(c);
}

void ob_config_error_print(const struct ob_config_error *err, FILE *f)
{
        fprintf(f, "%s\n", err->message);
        if (err->line[0]) {
                fprintf(f, "  %s\n", err->line);
                if (err->column > 0)
                        fprintf(f, "  %*s^\n", err->column - 1, "");
        }
}
