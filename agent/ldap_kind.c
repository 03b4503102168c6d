/* ldap_kind.c: the ldap connector kind without the network: its keys and
 * their rules, rendering a step and describing it. Running it is
 * ldap_conn.c's (libldap stays in directory.c). See ldap_conn.h and
 * connector.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "ldap_conn.h"
#include "plan.h"
#include "report.h"
#include "template.h"
#include "util.h"

static const char *const ob_ldap_group_attrs[OB_LDAP_GROUP_ATTRS] = {"member", "uniqueMember", "memberUid"};

const char *ob_ldap_group_attr_name(size_t i)
{
        return i < OB_LDAP_GROUP_ATTRS ? ob_ldap_group_attrs[i] : NULL;
}

/* ---- keys ------------------------------------------------------------------ */

#define C(x) offsetof(struct ob_ldap_connector, x)
#define A(x) offsetof(struct ob_ldap_action, x)

static const struct ob_key_spec ob_ldap_connector_keys[] = {
        {.name = "groups_base", .type = OB_KEY_STRING, .offset = C(groups_base)},
        {.name = "uri", .type = OB_KEY_STRING, .offset = C(uri)},
        {.name = "bind_dn", .type = OB_KEY_STRING, .offset = C(bind_dn)},
        {.name = "bind_password_file", .type = OB_KEY_PATH, .offset = C(bind_password_file)},
        {.name = "bind_password", .type = OB_KEY_SECRET},
        {NULL},
};

static const char *const ob_ldap_operations[] = {"remove_from_groups", "move", "modify", "restore_groups", NULL};

/* attributes:, set: and clear: are YAML trees (lists, a mapping) read as
 * text templates; the checks below say which shapes each may take. */
static const struct ob_key_spec ob_ldap_action_keys[] = {
        {.name = "operation",
         .type = OB_KEY_CHOICE,
         .offset = A(operation),
         .required = true,
         .choices = ob_ldap_operations},
        {.name = "attributes", .type = OB_KEY_BODY, .offset = A(attributes), .tpl = OB_TPL_TEXT},
        {.name = "new_parent", .type = OB_KEY_STRING, .offset = A(new_parent)},
        {.name = "set", .type = OB_KEY_BODY, .offset = A(set), .tpl = OB_TPL_TEXT},
        {.name = "clear", .type = OB_KEY_BODY, .offset = A(clear), .tpl = OB_TPL_TEXT},
        {.name = "from", .type = OB_KEY_STRING, .offset = A(from)},
        {NULL},
};

#undef C
#undef A

/* ---- rules across keys ------------------------------------------------------ */

/* An attribute description as LDAP names it (RFC 4512: a descr or an OID,
 * options after ';'). */
static bool ob_ldap_attr_name_ok(const char *s)
{
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.' || *p == ';'))
                        return false;
        return true;
}

/* A leaf of attributes: or clear: : a plain name, no template. */
static const char *ob_ldap_plain_name(const struct ob_json_tpl *j)
{
        if (j->kind != OB_JSON_STRING || !j->tpl)
                return NULL;
        const char *s = ob_tpl_source(j->tpl);
        return ob_ldap_attr_name_ok(s) ? s : NULL;
}

/* Each key is checked on its own; every problem is said. */
static int ob_ldap_check_connector(struct ob_config_check *ck, struct ob_connector *c)
{
        struct ob_ldap_connector *l = c->settings;
        int r, bad = 0;
        if (l->groups_base && !ob_dn_syntax_ok(l->groups_base) &&
            !ob_config_check_go_on(ck,
                                   r = ob_config_fail_connector(ck, c, "groups_base",
                                                                "connectors.%s.groups_base is not a DN", c->name),
                                   &bad))
                return r;
        if (l->bind_dn && !ob_dn_syntax_ok(l->bind_dn) &&
            !ob_config_check_go_on(
                    ck, r = ob_config_fail_connector(ck, c, "bind_dn", "connectors.%s.bind_dn is not a DN", c->name),
                    &bad))
                return r;
        if (!!l->bind_dn != !!l->bind_password_file &&
            !ob_config_check_go_on(ck,
                                   r = ob_config_fail_connector(ck, c, l->bind_dn ? "bind_dn" : "bind_password_file",
                                                                "connectors.%s: bind_dn and bind_password_file go "
                                                                "together",
                                                                c->name),
                                   &bad))
                return r;
        if (l->uri && strncmp(l->uri, "ldap://", 7) != 0 && strncmp(l->uri, "ldaps://", 8) != 0 &&
            strncmp(l->uri, "ldapi://", 8) != 0)
                return ob_config_fail_connector(
                        ck, c, "uri", "connectors.%s.uri must start with ldap://, ldaps:// or ldapi://", c->name);
        return bad;
}

/* attributes: a list whose every entry is one of the group attributes; each
 * one that is not is said. */
static int ob_ldap_check_remove(struct ob_config_check *ck, struct ob_action *a, struct ob_ldap_action *l)
{
        if (!l->attributes.tree) {
                l->group_attrs = OB_LDAP_MEMBER | OB_LDAP_UNIQUE_MEMBER | OB_LDAP_MEMBER_UID;
                return 0;
        }
        const struct ob_json_tpl *t = l->attributes.tree;
        if (t->kind != OB_JSON_ARRAY || t->nchildren == 0)
                return ob_config_fail_action(ck, a, "attributes",
                                             "actions.%s.attributes must be a list of member, uniqueMember or "
                                             "memberUid",
                                             a->name);
        int r, bad = 0;
        for (size_t i = 0; i < t->nchildren; i++) {
                const char *n = ob_ldap_plain_name(t->children[i]);
                size_t k = 0;
                while (n && k < OB_LDAP_GROUP_ATTRS && !ob_streq_ci(n, ob_ldap_group_attrs[k]))
                        k++;
                if (n && k < OB_LDAP_GROUP_ATTRS) {
                        l->group_attrs |= 1u << k;
                        continue;
                }
                r = ob_config_fail_action(ck, a, "attributes",
                                          "actions.%s.attributes: '%s' is not one of member, uniqueMember or "
                                          "memberUid",
                                          a->name,
                                          t->children[i]->tpl ? ob_tpl_source(t->children[i]->tpl)
                                                              : "(a list or mapping)");
                if (!ob_config_check_go_on(ck, r, &bad))
                        return r;
        }
        return bad;
}

/* set: and clear: are each checked, and each entry of them; a shape that
 * is wrong is said once, its entries not read. */
static int ob_ldap_check_modify(struct ob_config_check *ck, struct ob_action *a, const struct ob_ldap_action *l)
{
        if (!l->set.tree && !l->clear.tree)
                return ob_config_fail_action(ck, a, "operation", "actions.%s: modify takes set:, clear: or both",
                                             a->name);
        const struct ob_json_tpl *s = l->set.tree, *c = l->clear.tree;
        int r = 0, bad = 0;
        if (s && (s->kind != OB_JSON_OBJECT || s->nchildren == 0)) {
                r = ob_config_fail_action(ck, a, "set", "actions.%s.set must be a mapping of attribute: value",
                                          a->name);
                if (!ob_config_check_go_on(ck, r, &bad))
                        return r;
                s = NULL;
        }
        for (size_t i = 0; s && i < s->nchildren; i++) {
                const struct ob_json_tpl *v = s->children[i];
                bool ok = v->kind == OB_JSON_STRING || (v->kind == OB_JSON_ARRAY && v->nchildren > 0);
                for (size_t k = 0; ok && v->kind == OB_JSON_ARRAY && k < v->nchildren; k++)
                        ok = v->children[k]->kind == OB_JSON_STRING;
                if (!ob_ldap_attr_name_ok(v->key))
                        r = ob_config_fail_action(ck, a, "set", "actions.%s.set: '%s' is not an attribute name",
                                                  a->name, v->key);
                else if (!ok)
                        r = ob_config_fail_action(ck, a, "set",
                                                  "actions.%s.set.%s must be a value or a list of values", a->name,
                                                  v->key);
                else
                        r = 0;
                if (r < 0 && !ob_config_check_go_on(ck, r, &bad))
                        return r;
        }
        if (c && (c->kind != OB_JSON_ARRAY || c->nchildren == 0))
                return ob_config_fail_action(ck, a, "clear", "actions.%s.clear must be a list of attribute names",
                                             a->name);
        bool said = false; /* an entry that is not a name: the list is said once */
        for (size_t i = 0; c && i < c->nchildren; i++) {
                const char *n = ob_ldap_plain_name(c->children[i]);
                if (!n) {
                        if (!said && !ob_config_check_go_on(
                                             ck,
                                             r = ob_config_fail_action(ck, a, "clear",
                                                                       "actions.%s.clear must be a list of "
                                                                       "attribute names",
                                                                       a->name),
                                             &bad))
                                return r;
                        said = true;
                        continue;
                }
                for (size_t k = 0; s && k < s->nchildren; k++)
                        if (ob_streq_ci(n, s->children[k]->key) &&
                            !ob_config_check_go_on(ck,
                                                   r = ob_config_fail_action(ck, a, "clear",
                                                                             "actions.%s: %s is both set and cleared",
                                                                             a->name, n),
                                                   &bad))
                                return r;
        }
        return bad;
}

/* Each key given to an operation it does not belong to is said; the
 * operation's own needs are checked only when none was (a wrong operation
 * would make them a consequence). */
static int ob_ldap_check_action(struct ob_config_check *ck, struct ob_action *a)
{
        struct ob_ldap_action *l = a->settings;
        if (strcmp(l->operation, "remove_from_groups") == 0)
                l->op = OB_LDAP_REMOVE_FROM_GROUPS;
        else if (strcmp(l->operation, "move") == 0)
                l->op = OB_LDAP_MOVE;
        else if (strcmp(l->operation, "restore_groups") == 0)
                l->op = OB_LDAP_RESTORE_GROUPS;
        else
                l->op = OB_LDAP_MODIFY;
        /* Each key belongs to one operation: one given to another is a mistake. */
        static const struct {
                const char *key;
                enum ob_ldap_operation op;
        } owner[] = {{"attributes", OB_LDAP_REMOVE_FROM_GROUPS},
                     {"new_parent", OB_LDAP_MOVE},
                     {"set", OB_LDAP_MODIFY},
                     {"clear", OB_LDAP_MODIFY},
                     {"from", OB_LDAP_RESTORE_GROUPS}};
        const bool given[] = {l->attributes.tree, l->new_parent, l->set.tree, l->clear.tree, l->from};
        int r, bad = 0;
        for (size_t i = 0; i < OB_ELEMENTSOF(owner); i++)
                if (given[i] && owner[i].op != l->op &&
                    !ob_config_check_go_on(ck,
                                           r = ob_config_fail_action(ck, a, owner[i].key,
                                                                     "actions.%s.%s does not apply to %s", a->name,
                                                                     owner[i].key, l->operation),
                                           &bad))
                        return r;
        if (bad)
                return bad;
        switch (l->op) {
        case OB_LDAP_REMOVE_FROM_GROUPS: return ob_ldap_check_remove(ck, a, l);
        case OB_LDAP_MOVE:
                if (!l->new_parent)
                        return ob_config_fail_action(ck, a, "operation", "actions.%s: move needs new_parent:", a->name);
                if (!ob_dn_syntax_ok(l->new_parent))
                        return ob_config_fail_action(ck, a, "new_parent", "actions.%s.new_parent is not a DN", a->name);
                return 0;
        case OB_LDAP_MODIFY: return ob_ldap_check_modify(ck, a, l);
        case OB_LDAP_RESTORE_GROUPS:
                if (!l->from)
                        return ob_config_fail_action(ck, a, "operation",
                                                     "actions.%s: restore_groups needs from: (the remove_from_groups "
                                                     "action whose records it puts back)",
                                                     a->name);
                return 0;
        }
        return 0;
}

/* The action named name, or NULL. */
static const struct ob_action *ob_ldap_action_named(const struct ob_config *cfg, const char *name)
{
        for (size_t i = 0; i < cfg->nactions; i++)
                if (strcmp(cfg->actions[i].name, name) == 0)
                        return &cfg->actions[i];
        return NULL;
}

/* Whether b is in a's after: list, directly or through others (the lists
 * have no cycle by now). */
static bool ob_ldap_runs_after(const struct ob_action *a, const struct ob_action *b, int depth)
{
        if (depth > 64)
                return false;
        for (size_t i = 0; i < a->nafter; i++)
                if (a->after[i] == b || ob_ldap_runs_after(a->after[i], b, depth + 1))
                        return true;
        return false;
}

/* The connector learns where the directory: section is, for new (which
 * sees only the connector), and groups_base gets its default from it. A
 * move changes the DN every other ldap step acts on: it must come last. */
static int ob_ldap_check_uses(struct ob_config_check *ck, const struct ob_config *cfg, const struct ob_connector *c)
{
        struct ob_ldap_connector *l = c->settings;
        l->directory = &cfg->directory;
        if (!l->groups_base && cfg->directory.base && !(l->groups_base = strdup(cfg->directory.base)))
                return -ENOMEM;
        int e, bad = 0; /* each action's problem is said */
        /* restore_groups: from names a remove_from_groups action (of any
         * ldap connector: the records are the account's, not the server's). */
        for (size_t i = 0; i < cfg->nactions; i++) {
                const struct ob_action *r = &cfg->actions[i];
                const struct ob_ldap_action *rl = r->settings;
                if (r->connector != c || rl->op != OB_LDAP_RESTORE_GROUPS)
                        continue;
                const struct ob_action *f = ob_ldap_action_named(cfg, rl->from);
                if ((!f || f->connector->kind != c->kind ||
                     ((const struct ob_ldap_action *)f->settings)->op != OB_LDAP_REMOVE_FROM_GROUPS) &&
                    !ob_config_check_go_on(ck,
                                           e = ob_config_fail_action(ck, r, "from",
                                                                     "actions.%s.from: '%s' is not a "
                                                                     "remove_from_groups action of an ldap connector",
                                                                     r->name, rl->from),
                                           &bad))
                        return e;
        }
        for (size_t i = 0; i < cfg->nactions; i++) {
                const struct ob_action *m = &cfg->actions[i];
                if (m->connector != c || ((const struct ob_ldap_action *)m->settings)->op != OB_LDAP_MOVE)
                        continue;
                for (size_t j = 0; j < cfg->nactions; j++) {
                        const struct ob_action *o = &cfg->actions[j];
                        if (j == i || o->connector->kind != c->kind || ob_ldap_runs_after(m, o, 0))
                                continue;
                        e = ob_config_fail_action(ck, m, "operation",
                                                  "actions.%s moves the entry, which changes the DN that action "
                                                  "%s acts on: list %s in its after:",
                                                  m->name, o->name, o->name);
                        if (!ob_config_check_go_on(ck, e, &bad))
                                return e;
                }
        }
        return bad;
}

/* ---- rendering -------------------------------------------------------------- */

static void ob_ldap_free_rendered(void *p)
{
        struct ob_ldap_rendered *q = p;
        if (!q)
                return;
        free(q->dn);
        free(q->uid);
        free(q->new_dn);
        for (size_t i = 0; i < q->nset; i++)
                ob_strv_free(q->set[i].values);
        free(q->set);
        free(q->clear);
        ob_ldap_memberships_free(q->memberships, q->nmemberships);
        free(q);
}

/* ---- recorded memberships ----------------------------------------------------- */

void ob_ldap_memberships_free(struct ob_ldap_membership *m, size_t n)
{
        for (size_t i = 0; m && i < n; i++) {
                free(m[i].group);
                free(m[i].value);
        }
        free(m);
}

/* Memberships a step's detail lists: the state store keeps 256 per step
 * (state.h), and the detail stays under OB_STATE_DETAIL_MAX bytes; the rest
 * are counted in its "cut", so the records say the list is incomplete. */
#define OB_LDAP_DETAIL_MEMBERSHIPS 256

/* The bytes s takes as a JSON string (jansson writes UTF-8 as it is). */
static size_t ob_ldap_json_len(const char *s)
{
        size_t n = 2;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                n += *p == '"' || *p == '\\' ? 2 : *p < 0x20 ? 6 : 1;
        return n;
}

void ob_ldap_detail_add(struct ob_ldap_detail *d, const char *group, const char *attr, const char *value)
{
        size_t bytes = ob_ldap_json_len(group) + ob_ldap_json_len(attr) + ob_ldap_json_len(value) + 5;
        json_t *e = NULL;
        if (!d->list)
                d->list = json_array();
        if (!d->list || json_array_size(d->list) >= OB_LDAP_DETAIL_MEMBERSHIPS ||
            d->bytes + bytes > OB_STATE_DETAIL_MAX - 64 || !(e = json_pack("[sss]", group, attr, value)) ||
            json_array_append_new(d->list, e) < 0) {
                d->cut++;
                return;
        }
        d->bytes += bytes;
}

char *ob_ldap_detail_dump(const struct ob_ldap_detail *d)
{
        json_t *o = json_pack("{s:O?,s:I}", "memberships", (json_t *)d->list, "cut", (json_int_t)d->cut);
        if (o && json_is_null(json_object_get(o, "memberships")))
                json_object_set_new(o, "memberships", json_array());
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

void ob_ldap_detail_clear(struct ob_ldap_detail *d)
{
        json_decref(d->list);
        *d = (struct ob_ldap_detail){0};
}

int ob_ldap_memberships_parse(const char *detail, struct ob_ldap_membership **ret, size_t *ret_n, int64_t *ret_cut)
{
        struct ob_ldap_membership *m = NULL;
        size_t n = 0;
        int64_t cut = 0;
        int r = 0;
        json_t *root = NULL;
        if (detail) {
                root = json_loads(detail, JSON_REJECT_DUPLICATES, NULL);
                json_t *list = root ? json_object_get(root, "memberships") : NULL;
                json_t *c = root ? json_object_get(root, "cut") : NULL;
                if (!json_is_object(root) || !json_is_array(list) || (c && !json_is_integer(c))) {
                        json_decref(root);
                        return -EINVAL;
                }
                cut = c && json_integer_value(c) > 0 ? json_integer_value(c) : 0;
                size_t len = json_array_size(list);
                if (len && !(m = calloc(len, sizeof(*m))))
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < len; i++) {
                        json_t *e = json_array_get(list, i);
                        const char *g = json_string_value(json_array_get(e, 0));
                        const char *a = json_string_value(json_array_get(e, 1));
                        const char *v = json_string_value(json_array_get(e, 2));
                        size_t k = 0;
                        while (a && k < OB_LDAP_GROUP_ATTRS && !ob_streq_ci(a, ob_ldap_group_attrs[k]))
                                k++;
                        if (!json_is_array(e) || json_array_size(e) != 3 || !g || !*g || !v || !*v ||
                            k == OB_LDAP_GROUP_ATTRS) {
                                cut++;
                                continue;
                        }
                        m[n].attr = k;
                        if (!(m[n].group = strdup(g)) || !(m[n].value = strdup(v))) {
                                n++;
                                r = -ENOMEM;
                                break;
                        }
                        n++;
                }
        }
        json_decref(root);
        if (r < 0) {
                ob_ldap_memberships_free(m, n);
                return r;
        }
        *ret = m;
        *ret_n = n;
        *ret_cut = cut;
        return 0;
}

/* restore_groups: the records of the step's own earlier attempt in this
 * transition (it keeps the list it was given), or else those from: left in
 * the transition before. */
static int ob_ldap_render_restore(const struct ob_action *a, const struct ob_ldap_action *la, ob_tpl_lookup_fn lookup,
                                  void *ud, struct ob_step *s, struct ob_ldap_rendered *q)
{
        q->from = la->from;
        const char *names[] = {a->name, la->from};
        const char *detail = NULL;
        for (size_t i = 0; i < 2 && !detail; i++) {
                _cleanup_free_ char *key = NULL;
                if (asprintf(&key, "recorded.%s.detail", names[i]) < 0)
                        return -ENOMEM;
                detail = lookup(key, ud);
        }
        q->recorded = detail != NULL;
        int r = ob_ldap_memberships_parse(detail, &q->memberships, &q->nmemberships, &q->cut);
        if (r == -EINVAL)
                return ob_step_render_error(s, "the memberships recorded by %s cannot be read", la->from);
        /* Kept with the intent: an attempt cut short (a crash before its
         * outcome) leaves the list among the reactivation's own records. */
        if (r == 0 && detail && !(s->intent_detail = strdup(detail)))
                return -ENOMEM;
        return r;
}

/* Where the first RDN of an RFC 4514 DN ends (its ',' or the end). For
 * reports only: the move itself splits the DN with libldap. */
static size_t ob_ldap_first_rdn_len(const char *dn)
{
        size_t i = 0;
        while (dn[i] && dn[i] != ',') {
                if (dn[i] == '\\' && dn[i + 1])
                        i++;
                i++;
        }
        return i;
}

/* Appends one rendered value; an empty one is left out. */
static int ob_ldap_add_value(struct ob_ldap_set *s, size_t *n, struct ob_buf *b)
{
        if (b->len == 0)
                return 0;
        char **nv = realloc(s->values, (*n + 2) * sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        s->values = nv;
        int r = ob_buf_steal(b, &nv[*n]);
        if (r < 0)
                return r;
        nv[++*n] = NULL;
        return 0;
}

static int ob_ldap_render_set(const struct ob_ldap_action *la, ob_tpl_lookup_fn lookup, void *ud,
                              struct ob_ldap_rendered *q)
{
        const struct ob_json_tpl *s = la->set.tree;
        if (s) {
                q->set = calloc(s->nchildren, sizeof(*q->set));
                if (!q->set)
                        return -ENOMEM;
        }
        for (size_t i = 0; s && i < s->nchildren; i++) {
                const struct ob_json_tpl *v = s->children[i];
                struct ob_ldap_set *o = &q->set[q->nset++];
                o->attribute = v->key;
                o->values = calloc(1, sizeof(char *));
                if (!o->values)
                        return -ENOMEM;
                size_t n = 0;
                size_t nt = v->kind == OB_JSON_ARRAY ? v->nchildren : 1;
                for (size_t k = 0; k < nt; k++) {
                        const struct ob_json_tpl *t = v->kind == OB_JSON_ARRAY ? v->children[k] : v;
                        _cleanup_buf_ struct ob_buf b;
                        ob_buf_init(&b);
                        int r = ob_tpl_render(t->tpl, lookup, ud, &b);
                        if (r == 0)
                                r = ob_ldap_add_value(o, &n, &b);
                        if (r < 0)
                                return r;
                }
        }
        const struct ob_json_tpl *c = la->clear.tree;
        if (c) {
                q->clear = calloc(c->nchildren, sizeof(*q->clear));
                if (!q->clear)
                        return -ENOMEM;
                for (size_t i = 0; i < c->nchildren; i++)
                        q->clear[q->nclear++] = ob_tpl_source(c->children[i]->tpl);
        }
        return 0;
}

static int ob_ldap_render(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s)
{
        const struct ob_ldap_action *la = a->settings;
        const struct ob_ldap_connector *lc = a->connector->settings;
        struct ob_ldap_rendered *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->rendered = q;
        q->op = la->op;
        const char *dn = lookup("account.dn", ud);
        const char *uid = lookup("account.uid", ud);
        if (!(q->dn = strdup(dn ? dn : "")) || (uid && *uid && !(q->uid = strdup(uid))))
                return -ENOMEM;
        if (!ob_dn_syntax_ok(q->dn))
                return ob_step_render_error(s, "the account's DN is empty or not a DN");
        switch (la->op) {
        case OB_LDAP_REMOVE_FROM_GROUPS:
                q->groups_base = lc->groups_base;
                q->group_attrs = la->group_attrs;
                return 0;
        case OB_LDAP_MOVE:
                q->new_parent = la->new_parent;
                if (asprintf(&q->new_dn, "%.*s,%s", (int)ob_ldap_first_rdn_len(q->dn), q->dn, la->new_parent) < 0) {
                        q->new_dn = NULL;
                        return -ENOMEM;
                }
                return 0;
        case OB_LDAP_MODIFY: return ob_ldap_render_set(la, lookup, ud, q);
        case OB_LDAP_RESTORE_GROUPS: return ob_ldap_render_restore(a, la, lookup, ud, s, q);
        }
        return 0;
}

static bool ob_ldap_restores(const struct ob_action *a, const struct ob_action *undone)
{
        const struct ob_ldap_action *la = a->settings;
        return la->op == OB_LDAP_RESTORE_GROUPS && la->from && strcmp(la->from, undone->name) == 0;
}

/* ---- reports ---------------------------------------------------------------- */

static const char *ob_ldap_op_name(enum ob_ldap_operation op)
{
        switch (op) {
        case OB_LDAP_REMOVE_FROM_GROUPS: return "remove_from_groups";
        case OB_LDAP_MOVE: return "move";
        case OB_LDAP_MODIFY: return "modify";
        case OB_LDAP_RESTORE_GROUPS: return "restore_groups";
        }
        return "?";
}

/* The value a membership attribute holds for the account. */
static const char *ob_ldap_member_value(const struct ob_ldap_rendered *q, size_t i)
{
        return (1u << i) == OB_LDAP_MEMBER_UID ? q->uid : q->dn;
}

static void ob_ldap_headline_text(const struct ob_step *s, FILE *f)
{
        const struct ob_ldap_rendered *q = s->rendered;
        if (q)
                ob_report_printf(f, "  LDAP %s %s", ob_ldap_op_name(q->op), q->dn);
}

static void ob_ldap_describe_text(const struct ob_step *s, FILE *f)
{
        const struct ob_ldap_rendered *q = s->rendered;
        if (!q)
                return;
        switch (q->op) {
        case OB_LDAP_REMOVE_FROM_GROUPS:
                ob_report_printf(f, "       groups under: %s\n", q->groups_base ? q->groups_base : "");
                for (size_t i = 0; i < OB_LDAP_GROUP_ATTRS; i++) {
                        if (!(q->group_attrs & (1u << i)))
                                continue;
                        const char *v = ob_ldap_member_value(q, i);
                        ob_report_printf(f, "       %s: %s\n", ob_ldap_group_attrs[i],
                                         v ? v : "(none: the account has no username)");
                }
                break;
        case OB_LDAP_MOVE:
                ob_report_printf(f, "       new parent: %s\n", q->new_parent);
                ob_report_printf(f, "       new DN: %s\n", q->new_dn ? q->new_dn : "");
                break;
        case OB_LDAP_MODIFY:
                for (size_t i = 0; i < q->nset; i++) {
                        if (!q->set[i].values[0])
                                ob_report_printf(f, "       clear %s (no value)\n", q->set[i].attribute);
                        for (size_t k = 0; q->set[i].values[k]; k++)
                                ob_report_printf(f, "       set %s: %s\n", q->set[i].attribute, q->set[i].values[k]);
                }
                for (size_t i = 0; i < q->nclear; i++)
                        ob_report_printf(f, "       clear %s\n", q->clear[i]);
                break;
        case OB_LDAP_RESTORE_GROUPS:
                if (!q->recorded) {
                        ob_report_printf(f, "       memberships to restore: none recorded by %s\n", q->from);
                        break;
                }
                ob_report_printf(f, "       memberships to restore: %zu (recorded by %s)\n", q->nmemberships, q->from);
                for (size_t i = 0; i < q->nmemberships; i++)
                        ob_report_printf(f, "       %s: %s in %s\n", ob_ldap_group_attrs[q->memberships[i].attr],
                                         q->memberships[i].value, q->memberships[i].group);
                if (q->cut > 0)
                        ob_report_printf(f, "       not recorded (the list was cut), not restored: %lld\n",
                                         (long long)q->cut);
                break;
        }
}

static void ob_ldap_describe_json(const struct ob_step *s, struct ob_report_json *j)
{
        const struct ob_ldap_rendered *q = s->rendered;
        if (!q)
                return;
        ob_report_json_string(j, "operation", ob_ldap_op_name(q->op));
        ob_report_json_string(j, "dn", q->dn);
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        switch (q->op) {
        case OB_LDAP_REMOVE_FROM_GROUPS:
                ob_report_json_string(j, "groups_base", q->groups_base);
                /* "attribute: value" for each value looked for */
                ob_report_json_list_begin(j, "remove");
                for (size_t i = 0; i < OB_LDAP_GROUP_ATTRS; i++) {
                        const char *v = ob_ldap_member_value(q, i);
                        if (!(q->group_attrs & (1u << i)) || !v)
                                continue;
                        ob_buf_reset(&b);
                        if (ob_buf_printf(&b, "%s: %s", ob_ldap_group_attrs[i], v) == 0)
                                ob_report_json_list_item(j, b.data);
                }
                ob_report_json_list_end(j);
                break;
        case OB_LDAP_MOVE:
                ob_report_json_string(j, "new_parent", q->new_parent);
                ob_report_json_string(j, "new_dn", q->new_dn);
                break;
        case OB_LDAP_MODIFY:
                ob_report_json_list_begin(j, "set");
                for (size_t i = 0; i < q->nset; i++)
                        for (size_t k = 0; q->set[i].values[k]; k++) {
                                ob_buf_reset(&b);
                                if (ob_buf_printf(&b, "%s: %s", q->set[i].attribute, q->set[i].values[k]) == 0)
                                        ob_report_json_list_item(j, b.data);
                        }
                ob_report_json_list_end(j);
                ob_report_json_list_begin(j, "clear");
                for (size_t i = 0; i < q->nset; i++)
                        if (!q->set[i].values[0])
                                ob_report_json_list_item(j, q->set[i].attribute);
                for (size_t i = 0; i < q->nclear; i++)
                        ob_report_json_list_item(j, q->clear[i]);
                ob_report_json_list_end(j);
                break;
        case OB_LDAP_RESTORE_GROUPS:
                ob_report_json_string(j, "from", q->from);
                /* "attribute: value in group" for each membership put back */
                ob_report_json_list_begin(j, "restore");
                for (size_t i = 0; i < q->nmemberships; i++) {
                        ob_buf_reset(&b);
                        if (ob_buf_printf(&b, "%s: %s in %s", ob_ldap_group_attrs[q->memberships[i].attr],
                                          q->memberships[i].value, q->memberships[i].group) == 0)
                                ob_report_json_list_item(j, b.data);
                }
                ob_report_json_list_end(j);
                ob_buf_reset(&b);
                if (ob_buf_printf(&b, "%lld", (long long)q->cut) == 0)
                        ob_report_json_string(j, "not_recorded", b.data);
                break;
        }
}

const struct ob_connector_kind ob_ldap_kind = {
        .name = "ldap",
        .connector_keys = ob_ldap_connector_keys,
        .connector_size = sizeof(struct ob_ldap_connector),
        .action_keys = ob_ldap_action_keys,
        .action_size = sizeof(struct ob_ldap_action),
        .check_connector = ob_ldap_check_connector,
        .check_action = ob_ldap_check_action,
        .check_uses = ob_ldap_check_uses,
        .render = ob_ldap_render,
        .free_rendered = ob_ldap_free_rendered,
        .headline_text = ob_ldap_headline_text,
        .describe_text = ob_ldap_describe_text,
        .describe_json = ob_ldap_describe_json,
        .restores = ob_ldap_restores,
        .new = ob_ldap_new,
        .start = ob_ldap_start,
        .free = ob_ldap_free,
};
