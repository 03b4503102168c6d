/* guard.c: the guards that block a deactivation. See guard.h. */
#define _GNU_SOURCE
#include "guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard_http.h"
#include "util.h"

/* A group a guard reads, as this pass read it. */
struct group_read {
        bool done;
        int result;           /* 0, or the read's error */
        struct ob_account *g; /* the group with its member attribute; NULL if absent */
};

struct ob_guards {
        const struct ob_config *c;
        struct ob_dir *d;
        struct group_read *groups; /* one per guard (unused for those that read none) */
        struct ob_guard_http *asks; /* the connector guards' answers (guard_http.h), NULL without them */
};

int ob_guards_new(const struct ob_config *c, struct ob_dir *d, struct ob_loop *loop, const int *stop,
                  struct ob_guards **ret)
{
        struct ob_guards *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->c = c;
        g->d = d;
        g->groups = calloc(c->nguards ? c->nguards : 1, sizeof(*g->groups));
        if (!g->groups || (ob_guards_ask_endpoints(c) && ob_guard_http_new(c, loop, stop, &g->asks) < 0)) {
                free(g->groups);
                free(g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

bool ob_guards_ask_endpoints(const struct ob_config *c)
{
        for (size_t i = 0; i < c->nguards; i++)
                if (c->guards[i].kind == OB_GUARD_CONNECTOR)
                        return true;
        return false;
}

int ob_guards_ask(struct ob_guards *g, const struct ob_account *const *accounts, size_t n)
{
        if (!g->asks)
                return 0;
        ob_guard_http_forget(g->asks);
        return ob_guard_http_ask(g->asks, accounts, n);
}

void ob_guards_free(struct ob_guards *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->c->nguards; i++)
                ob_account_free(g->groups[i].g);
        free(g->groups);
        ob_guard_http_free(g->asks);
        free(g);
}

void ob_guard_verdicts_free(struct ob_guard_verdict *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].reason);
        free(v);
}

int ob_guard_role_above(const struct ob_guard *g, const struct ob_account *a, const char **rank)
{
        const struct ob_attr *at = ob_account_attr(a, g->role_attribute);
        size_t best = 0;
        bool found = false;
        for (size_t v = 0; at && v < at->nvals; v++)
                for (size_t i = 0; g->ranks[i]; i++)
                        if (ob_streq_ci(g->ranks[i], at->vals[v].data) && (!found || i > best)) {
                                best = i;
                                found = true;
                        }
        if (!found || best <= g->above)
                return 0;
        if (rank)
                *rank = g->ranks[best];
        return 1;
}

/* Whether value (of attribute attr) names the account. */
static bool names_account(const char *attr, const char *value, const char *dn, const char *username)
{
        if (ob_streq_ci(attr, "memberUid"))
                return username && strcmp(value, username) == 0;
        return dn && ob_dn_equal(value, dn) == 1;
}

struct owned_ctx {
        const char *member_attr;
        const char *dn;
        char *team;  /* the first owned team with another member */
        size_t others;
};

static int owned_cb(const struct ob_account *t, void *ud)
{
        struct owned_ctx *o = ud;
        if (o->team)
                return 0;
        const struct ob_attr *m = ob_account_attr(t, o->member_attr);
        size_t others = 0;
        for (size_t i = 0; m && i < m->nvals; i++)
                if (ob_dn_equal(m->vals[i].data, o->dn) != 1)
                        others++;
        if (others > 0) {
                if (!(o->team = strdup(t->dn)))
                        return -ENOMEM;
                o->others = others;
        }
        return 0;
}

/* One guard on a: 1 with *reason (it holds), 0 (it does not), -ENOMEM. */
static int check_one(struct ob_guards *gs, size_t gi, const struct ob_account *a, char **reason)
{
        const struct ob_guard *g = &gs->c->guards[gi];
        const struct ob_directory_config *dc = &gs->c->directory;
        const char *username = ob_account_get(a, dc->username_attribute);
        int n = 0;
        switch (g->kind) {
        case OB_GUARD_ROLE: {
                const char *rank = NULL;
                if (!ob_guard_role_above(g, a, &rank))
                        return 0;
                n = asprintf(reason, "%s %s ranks above %s", g->role_attribute, rank, g->ranks[g->above]);
                break;
        }
        case OB_GUARD_OWNS_TEAM: {
                if (!a->dn)
                        return 0;
                struct owned_ctx o = {
                        .member_attr = dc->teams_member_attribute ? dc->teams_member_attribute : "member",
                        .dn = a->dn,
                };
                int k = ob_dir_search_teams_owned(gs->d, a->dn, owned_cb, &o);
                if (k == -ENOMEM) {
                        free(o.team);
                        return k;
                }
                if (k < 0)
                        n = asprintf(reason, "cannot check the teams it owns: %s", ob_strerror(k));
                else if (!o.team)
                        return 0;
                else
                        n = asprintf(reason, "owns the team %s, which has %zu other member%s", o.team, o.others,
                                     o.others == 1 ? "" : "s");
                free(o.team);
                break;
        }
        case OB_GUARD_CONNECTOR: {
                /* Asked before the window was planned (ob_guards_ask), or now. */
                int k = ob_guard_http_verdict(gs->asks, gi, a, reason);
                if (k <= 0)
                        return k;
                n = 0;
                break;
        }
        case OB_GUARD_MEMBER_OF:
        case OB_GUARD_SOLE_MEMBER_OF: {
                struct group_read *gr = &gs->groups[gi];
                if (!gr->done) {
                        const char *const attrs[] = {g->member_attribute, NULL};
                        gr->result = ob_dir_read_entry(gs->d, g->group, attrs, &gr->g);
                        if (gr->result == -OB_ENOTFOUND)
                                gr->result = 0; /* no group: nobody is in it */
                        gr->done = true;
                }
                if (gr->result == -ENOMEM)
                        return -ENOMEM;
                if (gr->result < 0) {
                        n = asprintf(reason, "cannot read the group %s: %s", g->group, ob_strerror(gr->result));
                        break;
                }
                /* Read in part (a value over the limits): not a shorter list. */
                if (gr->g && gr->g->unreadable) {
                        n = asprintf(reason, "cannot read the group %s whole: %s", g->group, gr->g->unreadable);
                        break;
                }
                const struct ob_attr *m = gr->g ? ob_account_attr(gr->g, g->member_attribute) : NULL;
                bool in = false;
                size_t others = 0;
                for (size_t i = 0; m && i < m->nvals; i++) {
                        if (names_account(g->member_attribute, m->vals[i].data, a->dn, username))
                                in = true;
                        else
                                others++;
                }
                if (!in || (g->kind == OB_GUARD_SOLE_MEMBER_OF && others > 0))
                        return 0;
                n = g->kind == OB_GUARD_MEMBER_OF ? asprintf(reason, "is a member of %s", g->group)
                                                  : asprintf(reason, "is the only member of %s", g->group);
                break;
        }
        }
        if (n < 0) {
                *reason = NULL;
                return -ENOMEM;
        }
        return 1;
}

int ob_guards_check(struct ob_guards *gs, const struct ob_account *a, struct ob_guard_verdict **ret, size_t *n)
{
        *ret = NULL;
        *n = 0;
        struct ob_guard_verdict *v = NULL;
        size_t nv = 0;
        for (size_t i = 0; i < gs->c->nguards; i++) {
                char *reason = NULL;
                int k = check_one(gs, i, a, &reason);
                if (k < 0) {
                        ob_guard_verdicts_free(v, nv);
                        return k;
                }
                if (k == 0)
                        continue;
                struct ob_guard_verdict *nw = realloc(v, (nv + 1) * sizeof(*nw));
                if (!nw) {
                        free(reason);
                        ob_guard_verdicts_free(v, nv);
                        return -ENOMEM;
                }
                v = nw;
                v[nv++] = (struct ob_guard_verdict){
                        .guard = &gs->c->guards[i],
                        .reason = reason,
                        .block = !gs->c->guards[i].warn,
                };
        }
        *ret = v;
        *n = nv;
        return 0;
}
