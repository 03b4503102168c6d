/* plan.c: the pure planner. No I/O here; see plan.h. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "escape.h"
#include "mapping.h"
#include "template.h"
#include "timeparse.h"
#include "util.h"

const char *ob_step_state_name(enum ob_step_state s)
{
        switch (s) {
        case OB_STEP_OWED: return "owed";
        case OB_STEP_DONE: return "done";
        case OB_STEP_SKIPPED: return "skipped";
        }
        return "?";
}

static void step_clear(struct ob_step *s)
{
        free(s->last_error);
        if (s->rendered)
                s->action->connector->kind->free_rendered(s->rendered);
        free(s->idempotency_key);
        free(s->render_error);
        free(s->hold_reason);
        free(s->intent_detail);
        free(s->modules);
}

void ob_account_plan_free(struct ob_account_plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->nsteps; i++)
                step_clear(&p->steps[i]);
        free(p->steps);
        free(p->id);
        free(p->dn);
        free(p->username);
        free(p->reason);
        free(p->transfer_via);
        free(p->transfer_dn);
        free(p->transfer_uid);
        for (size_t i = 0; i < p->nguards; i++) {
                free(p->guards[i].name);
                free(p->guards[i].reason);
        }
        free(p->guards);
        free(p->blocked);
        ob_strv_free(p->not_restored);
        free(p);
}

bool ob_account_plan_wants_guards(const struct ob_account_plan *p)
{
        if (!p->transition || p->status == OB_STATUS_ACTIVE)
                return false;
        for (size_t i = 0; i < p->nsteps; i++)
                if (p->steps[i].state == OB_STEP_OWED && !p->steps[i].action->security)
                        return true;
        return false;
}

size_t ob_account_plan_owed(const struct ob_account_plan *p)
{
        size_t n = 0;
        for (size_t i = 0; i < p->nsteps; i++)
                n += p->steps[i].state == OB_STEP_OWED;
        return n;
}

bool ob_account_plan_is_status_change(const struct ob_account_plan *p)
{
        if (p->status == p->recorded || p->continuing)
                return false;
        if (p->recorded == OB_STATUS_NONE)
                return ob_account_plan_is_new_deactivation(p);
        return true;
}

bool ob_account_plan_wants_transfer(const struct ob_account_plan *p)
{
        for (size_t i = 0; i < p->nsteps; i++)
                if (p->steps[i].state == OB_STEP_OWED && p->steps[i].action->uses_transfer)
                        return true;
        return false;
}

bool ob_account_plan_is_new_deactivation(const struct ob_account_plan *p)
{
        return p->transition && !p->continuing && p->status != OB_STATUS_ACTIVE &&
               (p->from == OB_STATUS_ACTIVE || p->from == OB_STATUS_NONE) && ob_account_plan_owed(p) > 0;
}

/* ---- transfer.modules -------------------------------------------------------- */

static int json_str(struct ob_buf *out, const char *v)
{
        int r = ob_buf_addc(out, '"');
        if (r == 0)
                r = ob_escape_json(out, v, strlen(v));
        return r == 0 ? ob_buf_addc(out, '"') : r;
}

static int module_json(const struct ob_transfer_module *m, enum ob_records got, struct ob_buf *out)
{
        int r = ob_buf_adds(out, "{\"module\":");
        if (r == 0)
                r = json_str(out, m->name);
        if (r == 0)
                r = ob_buf_printf(out, ",\"records\":\"%s\"",
                                  got == OB_RECORDS_ALL        ? "all"
                                  : got == OB_RECORDS_MATCHING ? "matching"
                                                               : "none");
        if (r == 0 && got == OB_RECORDS_MATCHING) {
                r = ob_buf_adds(out, m->is_not ? ",\"is_not\":{" : ",\"is\":{");
                for (size_t i = 0; r == 0 && i < m->ncriteria; i++) {
                        const struct ob_module_criterion *c = &m->criteria[i];
                        if (i)
                                r = ob_buf_addc(out, ',');
                        if (r == 0)
                                r = json_str(out, c->field);
                        if (r == 0)
                                r = ob_buf_adds(out, c->list ? ":[" : ":");
                        for (size_t k = 0; r == 0 && c->values[k]; k++) {
                                if (k)
                                        r = ob_buf_addc(out, ',');
                                if (r == 0)
                                        r = json_str(out, c->values[k]);
                        }
                        if (r == 0 && c->list)
                                r = ob_buf_addc(out, ']');
                }
                if (r == 0)
                        r = ob_buf_addc(out, '}');
        }
        if (r == 0 && got == OB_RECORDS_NONE && m->records != OB_RECORDS_NONE)
                r = ob_buf_adds(out, ",\"when_false\":true");
        return r == 0 ? ob_buf_addc(out, '}') : r;
}

int ob_step_module_text(const struct ob_step *s, size_t i, struct ob_buf *out)
{
        const struct ob_transfer_module *m = &s->action->modules[i];
        if (s->modules[i] == OB_RECORDS_ALL)
                return ob_buf_adds(out, "all");
        if (s->modules[i] == OB_RECORDS_NONE)
                return ob_buf_adds(out, m->records == OB_RECORDS_NONE ? "none" : "none (its when: is false)");
        int r = ob_buf_adds(out, m->is_not ? "except where " : "where ");
        for (size_t k = 0; r == 0 && k < m->ncriteria; k++) {
                const struct ob_module_criterion *c = &m->criteria[k];
                r = ob_buf_printf(out, "%s%s is ", k ? " and " : "", c->field);
                for (size_t v = 0; r == 0 && c->values[v]; v++)
                        r = ob_buf_printf(out, "%s%s", v ? " or " : "", c->values[v]);
        }
        return r;
}

int ob_step_modules_format(const struct ob_step *s, bool json, bool with_none, struct ob_buf *out)
{
        int r = json ? ob_buf_addc(out, '[') : ob_buf_adds(out, "");
        bool first = true;
        for (size_t i = 0; r == 0 && s->modules && i < s->action->nmodules; i++) {
                if (!with_none && s->modules[i] == OB_RECORDS_NONE)
                        continue;
                if (!first)
                        r = ob_buf_adds(out, json ? "," : "; ");
                first = false;
                if (r == 0 && json)
                        r = module_json(&s->action->modules[i], s->modules[i], out);
                else if (r == 0)
                        r = ob_buf_printf(out, "%s: ", s->action->modules[i].name);
                if (r == 0 && !json)
                        r = ob_step_module_text(s, i, out);
        }
        return r == 0 && json ? ob_buf_addc(out, ']') : r;
}

/* How the action's modules fall for the account: each module's records, or
 * none where its when: is false. Returns whether any has records to move,
 * or -ENOMEM. */
static int resolve_modules(struct ob_step *s, const struct ob_cond_ctx *ctx)
{
        const struct ob_action *a = s->action;
        if (!a->nmodules)
                return 0;
        if (!(s->modules = calloc(a->nmodules, sizeof(*s->modules))))
                return -ENOMEM;
        int some = 0;
        for (size_t i = 0; i < a->nmodules; i++) {
                const struct ob_transfer_module *m = &a->modules[i];
                s->modules[i] = m->when && !ob_cond_eval(m->when, ctx) ? OB_RECORDS_NONE : m->records;
                some = some || s->modules[i] != OB_RECORDS_NONE;
        }
        return some;
}

/* ---- template values ----------------------------------------------------- */

struct lookup_ctx {
        const struct ob_config *c;
        const struct ob_plan_input *in;
        const struct ob_account_plan *p;
        const struct ob_action *action;
        const char *idempotency_key;
        char *groups; /* account.groups, made at the first use */
        const struct ob_step *step;        /* the step being rendered */
        char *modules_text, *modules_json; /* transfer.modules, for step */
};

/* transfer.modules for the step being rendered, made at the first use. */
static const char *modules_of(struct lookup_ctx *l, bool json)
{
        char **have = json ? &l->modules_json : &l->modules_text;
        if (*have || !l->step || !l->step->modules)
                return *have;
        struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_step_modules_format(l->step, json, false, &b);
        if (r == 0)
                r = ob_buf_steal(&b, have);
        ob_buf_free(&b);
        return r == 0 ? *have : NULL;
}

/* account.groups: the DNs in memberOf, as a list (template.h), made once. */
static const char *groups_of(struct lookup_ctx *l)
{
        if (l->groups)
                return l->groups;
        const struct ob_attr *m = ob_account_attr(l->in->account, "memberOf");
        struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_buf_adds(&b, "");
        for (size_t i = 0; r == 0 && m && i < m->nvals; i++) {
                if (i)
                        r = ob_buf_addc(&b, OB_TPL_LIST_SEP);
                for (const char *c = m->vals[i].data; r == 0 && *c; c++)
                        r = ob_buf_addc(&b, *c == OB_TPL_LIST_SEP ? '?' : *c);
        }
        if (r == 0)
                r = ob_buf_steal(&b, &l->groups);
        ob_buf_free(&b);
        return r == 0 ? l->groups : NULL;
}

static const char *lookup(const char *field, void *ud)
{
        struct lookup_ctx *l = ud;
        const struct ob_account *a = l->in->account;
        const struct ob_directory_config *d = &l->c->directory;
        if (strncmp(field, "account.", 8) == 0) {
                const char *f = field + 8;
                if (strcmp(f, "id") == 0)
                        return l->p->id;
                if (strcmp(f, "dn") == 0)
                        return l->p->dn;
                if (strcmp(f, "teams") == 0)
                        return l->in->teams;
                if (strcmp(f, "teams_led") == 0)
                        return l->in->teams_led;
                if (strcmp(f, "groups") == 0)
                        return groups_of(l);
                return ob_account_field(d, a, f);
        }
        if (strcmp(field, "status.name") == 0)
                return ob_status_name(l->p->status);
        if (strcmp(field, "status.reason") == 0)
                return l->p->reason;
        if (strcmp(field, "status.rule") == 0)
                return l->p->rule ? l->p->rule->name : NULL;
        if (strcmp(field, "status.previous") == 0)
                return ob_status_name(l->p->from);
        if (strcmp(field, "transition.name") == 0)
                return l->p->transition ? l->p->transition->name : NULL;
        if (strcmp(field, "action.name") == 0)
                return l->action ? l->action->name : NULL;
        if (strcmp(field, "idempotency_key") == 0)
                return l->idempotency_key;
        if (strcmp(field, "transfer.modules") == 0)
                return modules_of(l, false);
        if (strcmp(field, "transfer.modules" OB_TPL_JSON_FORM) == 0)
                return modules_of(l, true);
        /* recorded.ACTION.detail: what the records at hand (the transition
         * in progress, or the one before) keep of ACTION's doing (state.h),
         * for a kind's render (restore_groups); not a template field. */
        if (strncmp(field, "recorded.", 9) == 0) {
                const char *name = field + 9, *end = strrchr(name, '.');
                if (!end || strcmp(end, ".detail") != 0)
                        return NULL;
                for (size_t i = 0; i < l->in->nactions; i++)
                        if (strncmp(l->in->actions[i].action, name, (size_t)(end - name)) == 0 &&
                            l->in->actions[i].action[end - name] == '\0')
                                return l->in->actions[i].detail;
                return NULL;
        }
        if (strncmp(field, "transfer_to.", 12) == 0) {
                const char *f = field + 12;
                const struct ob_account *t = l->in->transfer.target;
                if (strcmp(f, "via") == 0)
                        return t ? l->in->transfer.via : NULL;
                /* config.c knows transfer_to's fields: no other is asked. */
                return t ? ob_account_field(d, t, f) : NULL;
        }
        return NULL;
}

const char *ob_account_field(const struct ob_directory_config *d, const struct ob_account *a, const char *f)
{
        if (strcmp(f, "id") == 0)
                return a->id;
        if (strcmp(f, "dn") == 0)
                return a->dn;
        if (strcmp(f, "uid") == 0)
                return ob_account_get(a, d->username_attribute);
        if (strcmp(f, "mail") == 0)
                return ob_account_get(a, d->mail_attribute);
        if (strcmp(f, "name") == 0)
                return ob_account_get(a, d->name_attribute);
        if (strcmp(f, "manager") == 0)
                return ob_account_get(a, d->manager_attribute);
        if (strncmp(f, "attr.", 5) == 0)
                return ob_account_get(a, f + 5);
        return NULL;
}

/* ---- rendering ------------------------------------------------------------- */

/* The first problem is kept; rendering goes on so the report shows the rest. */
int ob_step_render_error(struct ob_step *s, const char *fmt, ...)
{
        if (s->render_error)
                return 0;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s->render_error, fmt, ap);
        va_end(ap);
        if (n < 0) {
                s->render_error = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* The idempotency key, then the request, by the action's connector kind. */
static int render_step(struct lookup_ctx *l, struct ob_step *s)
{
        const struct ob_action *a = s->action;
        struct ob_buf b;
        int r;

        /* Idempotency key: stable across restarts for (account, transition, generation, action). */
        ob_buf_init(&b);
        r = ob_buf_adds(&b, "offboard-");
        if (r == 0)
                r = ob_escape_query(&b, l->p->id, strlen(l->p->id));
        if (r == 0)
                r = ob_buf_printf(&b, "-%s-%lld-%s", l->p->transition->name, (long long)l->p->generation, a->name);
        if (r == 0)
                r = ob_buf_steal(&b, &s->idempotency_key);
        ob_buf_free(&b);
        if (r < 0)
                return r;
        l->idempotency_key = s->idempotency_key;
        l->action = a;
        l->step = s;
        r = a->connector->kind->render(a, lookup, l, s);
        free(l->modules_text);
        free(l->modules_json);
        l->modules_text = l->modules_json = NULL;
        l->step = NULL;
        return r;
}

/* Seed 001: a reactivation says what it does not give back. The last
 * transition's records (in->actions) say what it did. */
static int list_not_restored(const struct ob_config *c, const struct ob_plan_input *in, struct ob_account_plan *p)
{
        for (size_t i = 0; i < in->nactions; i++) {
                const struct ob_action_record *ar = &in->actions[i];
                if (ar->outcome != OB_OUTCOME_DONE)
                        continue;
                const struct ob_action *a = NULL;
                for (size_t k = 0; k < c->nactions && !a; k++)
                        if (strcmp(c->actions[k].name, ar->action) == 0)
                                a = &c->actions[k];
                if (a && a->security)
                        continue; /* sessions and tokens are not given back: a new login makes new ones */
                bool restored = false;
                for (size_t k = 0; a && k < a->nrestored_by && !restored; k++)
                        for (size_t t = 0; t < p->transition->nactions && !restored; t++)
                                restored = p->transition->actions[t] == a->restored_by[k];
                /* Or an action whose kind says it puts back what a did
                 * (restore_groups with from: a). */
                for (size_t t = 0; a && t < p->transition->nactions && !restored; t++) {
                        const struct ob_action *x = p->transition->actions[t];
                        restored = x->connector->kind->restores && x->connector->kind->restores(x, a);
                }
                if (!restored) {
                        int r = ob_strv_add_unique_ci(&p->not_restored, ar->action);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- transitions and ordering ---------------------------------------------- */

static const struct ob_transition *find_transition(const struct ob_config *c, enum ob_status from, enum ob_status to,
                                                   const struct ob_cond_ctx *ctx)
{
        for (size_t i = 0; i < c->ntransitions; i++) {
                const struct ob_transition *t = &c->transitions[i];
                if (t->from_mask && !(t->from_mask & (1u << from)))
                        continue;
                if (!(t->to_mask & (1u << to)))
                        continue;
                if (!ob_cond_eval(t->when, ctx))
                        continue;
                return t;
        }
        return NULL;
}

/* Topological order over `after`; among ready actions, security actions
 * (session and token revocation) first, then the transition's order. */
static int order_actions(const struct ob_transition *t, const struct ob_action **out)
{
        size_t n = t->nactions;
        bool *placed = calloc(n ? n : 1, sizeof(bool));
        if (!placed)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                ssize_t pick = -1;
                for (int pass = 0; pass < 2 && pick < 0; pass++)
                        for (size_t i = 0; i < n && pick < 0; i++) {
                                if (placed[i] || (pass == 0 && !t->actions[i]->security))
                                        continue;
                                bool ready = true;
                                for (size_t d = 0; d < t->actions[i]->nafter && ready; d++)
                                        for (size_t j = 0; j < n; j++)
                                                if (t->actions[j] == t->actions[i]->after[d] && !placed[j])
                                                        ready = false;
                                if (ready)
                                        pick = (ssize_t)i;
                        }
                if (pick < 0) { /* config.c rejects cycles; be safe anyway */
                        free(placed);
                        return -EINVAL;
                }
                placed[pick] = true;
                out[k] = t->actions[pick];
        }
        free(placed);
        return 0;
}

static const struct ob_action_record *recorded_action(const struct ob_plan_input *in, const char *name)
{
        for (size_t i = 0; i < in->nactions; i++)
                if (strcmp(in->actions[i].action, name) == 0)
                        return &in->actions[i];
        return NULL;
}

static int dup_or_null(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ob_plan_account(const struct ob_config *c, const struct ob_plan_input *in, struct ob_account_plan **ret)
{
        const struct ob_account *a = in->account;
        const struct ob_record *rec = in->record;
        struct ob_account_plan *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        int r = 0;
        if (dup_or_null(a->id, &p->id) < 0 || dup_or_null(a->dn, &p->dn) < 0 ||
            dup_or_null(ob_account_get(a, c->directory.username_attribute), &p->username) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        if (!p->id) {
                r = -EINVAL;
                goto fail;
        }
        p->deleted = in->deleted;

        struct ob_status_eval ev;
        if (in->deleted)
                ev = (struct ob_status_eval){.status = OB_STATUS_DELETED};
        else
                ob_mapping_eval(c, a, in->now, in->policy, &ev);
        p->status = ev.status;
        p->rule = ev.rule;
        if (dup_or_null(ev.reason, &p->reason) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        p->recorded = rec ? (enum ob_status)rec->status : OB_STATUS_NONE;

        /* Where the account comes from, and with which generation. */
        bool pending = rec && rec->pending_to != OB_STATUS_NONE;
        enum ob_status from = p->recorded;
        int64_t gen = rec ? rec->generation + 1 : 1;
        bool continuing = false;
        if (pending && (enum ob_status)rec->pending_to == p->status) {
                from = (enum ob_status)rec->pending_from;
                gen = rec->generation;
                continuing = true;
        } else if (pending) {
                /* The account moved on before the transition finished. If some
                 * of its side effects happened, the account left its recorded
                 * status: plan from where those side effects put it. */
                for (size_t i = 0; i < in->nactions; i++)
                        if (in->actions[i].outcome == OB_OUTCOME_DONE)
                                from = (enum ob_status)rec->pending_to;
        }
        p->from = from;

        struct ob_cond_ctx ctx = {.account = a, .status = p->status, .now = in->now, .policy = in->policy};
        if (from != p->status)
                p->transition = find_transition(c, from, p->status, &ctx);
        p->continuing = continuing && p->transition;
        /* Continuing, in->actions are the reactivation's own: the list was
         * made when it began. */
        if (p->transition && p->status == OB_STATUS_ACTIVE && !p->continuing && (r = list_not_restored(c, in, p)) < 0)
                goto fail;
        p->generation = p->transition ? gen : (rec ? rec->generation : 0);

        if (in->transfer.target) {
                if (dup_or_null(in->transfer.via, &p->transfer_via) < 0 ||
                    dup_or_null(in->transfer.target->dn, &p->transfer_dn) < 0 ||
                    dup_or_null(ob_account_get(in->transfer.target, c->directory.username_attribute),
                                &p->transfer_uid) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        if (in->nguards > 0) {
                p->guards = calloc(in->nguards, sizeof(*p->guards));
                if (!p->guards) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < in->nguards; i++) {
                        struct ob_plan_guard *g = &p->guards[p->nguards++];
                        g->block = in->guards[i].block;
                        if (!(g->name = strdup(in->guards[i].guard->name)) ||
                            dup_or_null(in->guards[i].reason, &g->reason) < 0) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (g->block && !p->blocked && p->transition && p->status != OB_STATUS_ACTIVE &&
                            asprintf(&p->blocked, "guard %s: %s", g->name, g->reason ? g->reason : "") < 0) {
                                p->blocked = NULL;
                                r = -ENOMEM;
                                goto fail;
                        }
                }
        }

        if (p->transition) {
                const struct ob_transition *t = p->transition;
                const struct ob_action **order = calloc(t->nactions ? t->nactions : 1, sizeof(*order));
                p->steps = calloc(t->nactions ? t->nactions : 1, sizeof(*p->steps));
                if (!order || !p->steps) {
                        free(order);
                        r = -ENOMEM;
                        goto fail;
                }
                r = order_actions(t, order);
                struct lookup_ctx l = {.c = c, .in = in, .p = p};
                /* Carry only between statuses that cannot log in: after a
                 * reactivation, a new deactivation does everything again. */
                bool carry = p->from != OB_STATUS_ACTIVE && p->from != OB_STATUS_NONE && p->status != OB_STATUS_ACTIVE;
                for (size_t i = 0; r == 0 && i < t->nactions; i++) {
                        struct ob_step *s = &p->steps[p->nsteps++];
                        s->action = order[i];
                        const struct ob_action_record *ar = p->continuing ? recorded_action(in, order[i]->name) : NULL;
                        /* Deleted after deactivated (or any move between
                         * statuses that cannot log in): what the earlier
                         * transition did is not done again with new keys. */
                        const struct ob_action_record *before =
                                !p->continuing && carry ? recorded_action(in, order[i]->name) : NULL;
                        if (ar) {
                                s->attempts = ar->attempts;
                                if (ar->error && !(s->last_error = strdup(ar->error)))
                                        r = -ENOMEM;
                        }
                        if (ar && (ar->outcome == OB_OUTCOME_DONE || ar->outcome == OB_OUTCOME_SKIPPED)) {
                                s->state = ar->outcome == OB_OUTCOME_DONE ? OB_STEP_DONE : OB_STEP_SKIPPED;
                        } else if (before && before->outcome == OB_OUTCOME_DONE) {
                                s->state = OB_STEP_DONE;
                                s->carried = true;
                        } else if (!ob_cond_eval(order[i]->when, &ctx)) {
                                s->state = OB_STEP_SKIPPED;
                        } else {
                                /* Every module none for this account: nothing
                                 * to transfer, so nothing to send (seed 000). */
                                int some = resolve_modules(s, &ctx);
                                if (some < 0)
                                        r = some;
                                s->nothing_to_transfer = order[i]->nmodules && some == 0;
                                s->state = s->nothing_to_transfer ? OB_STEP_SKIPPED : OB_STEP_OWED;
                        }
                        if (r == 0 && s->state == OB_STEP_OWED)
                                r = render_step(&l, s);
                        /* Parked for a human, or the server asked to wait. */
                        if (r == 0 && s->state == OB_STEP_OWED && ar && ar->parked) {
                                if (asprintf(&s->hold_reason,
                                             "parked as failed after %d attempts; `offboard retry` releases it",
                                             ar->attempts) < 0) {
                                        s->hold_reason = NULL;
                                        r = -ENOMEM;
                                }
                        } else if (r == 0 && s->state == OB_STEP_OWED && ar && ar->not_before > in->now) {
                                char when[21];
                                ob_time_format_rfc3339(ar->not_before, when);
                                if (asprintf(&s->hold_reason, "the server asked to wait until %s (Retry-After)",
                                             when) < 0) {
                                        s->hold_reason = NULL;
                                        r = -ENOMEM;
                                }
                        }
                        /* A stage waits for its due time: the one recorded
                         * when the transition began, or carried from the
                         * transition this one follows (a deletion during
                         * the grace period does not restart it), or, before
                         * the first pass records it, now plus the grace. */
                        if (r == 0 && s->state == OB_STEP_OWED && order[i]->grace_ms > 0) {
                                const struct ob_action_record *d = ar && ar->due ? ar : before && before->due ? before : NULL;
                                s->due = d ? d->due : in->now + (order[i]->grace_ms + 999) / 1000;
                                if (s->due > in->now && !s->hold_reason) {
                                        char when[21];
                                        ob_time_format_rfc3339(s->due, when);
                                        if (asprintf(&s->hold_reason, "a stage: due at %s, a grace period after its "
                                                                      "transition began", when) < 0) {
                                                s->hold_reason = NULL;
                                                r = -ENOMEM;
                                        }
                                }
                        }
                        /* A guard holds the rest of the transition, never
                         * the revocation of sessions and tokens (seed 001). */
                        if (r == 0 && s->state == OB_STEP_OWED && p->blocked && !order[i]->security &&
                            !s->hold_reason && !(s->hold_reason = strdup(p->blocked)))
                                r = -ENOMEM;
                        /* Teams that could not be read are not "no teams". */
                        if (r == 0 && s->state == OB_STEP_OWED && order[i]->uses_teams && in->teams_error &&
                            !s->hold_reason &&
                            asprintf(&s->hold_reason, "teams lookup failed: %s", in->teams_error) < 0) {
                                s->hold_reason = NULL;
                                r = -ENOMEM;
                        }
                        /* No target, no request: a transfer to nobody would
                         * be recorded done and the records lost. */
                        if (r == 0 && s->state == OB_STEP_OWED && order[i]->uses_transfer && !in->transfer.target &&
                            !s->hold_reason) {
                                int n = in->transfer.error
                                                ? asprintf(&s->hold_reason, "transfer target lookup failed: %s",
                                                           in->transfer.error)
                                                : asprintf(&s->hold_reason, "no transfer target (no active manager, "
                                                                            "team owner, leader or fallback)");
                                if (n < 0) {
                                        s->hold_reason = NULL;
                                        r = -ENOMEM;
                                }
                        }
                }
                free(order);
                free(l.groups);
                if (r < 0)
                        goto fail;
        }

        if (c->writeback.enabled && !p->deleted) {
                const char *written = ob_account_get(a, c->writeback.status_attribute);
                p->writeback = (p->transition && p->nsteps > 0) || (rec && rec->writeback_owed) ||
                               (written ? strcmp(written, ob_status_name(p->status)) != 0
                                        : p->status != OB_STATUS_ACTIVE);
        }
        *ret = p;
        return 0;
fail:
        ob_account_plan_free(p);
        return r;
}
