/* mapping.c: first matching rule wins; no match is active. */
#include "mapping.h"

#include "cond.h"

void ob_mapping_eval(const struct ob_config *c, const struct ob_account *a, int64_t now,
                     const struct ob_policy_values *policy, struct ob_status_eval *ret)
{
        struct ob_cond_ctx ctx = {.account = a, .status = 0, .now = now, .policy = policy};
        for (size_t i = 0; i < c->nrules; i++) {
                const struct ob_rule *r = &c->rules[i];
                if (!ob_cond_eval(r->when, &ctx))
                        continue;
                const char *reason = r->reason_attribute ? ob_account_get(a, r->reason_attribute) : NULL;
                *ret = (struct ob_status_eval){.status = r->status, .rule = r, .reason = reason ? reason : r->reason};
                return;
        }
        *ret = (struct ob_status_eval){.status = OB_STATUS_ACTIVE};
}

int64_t ob_mapping_next_change(const struct ob_config *c, const struct ob_account *a, int64_t now,
                               const struct ob_policy_values *policy)
{
        /* The rules up to the one that matches: one before it may start to
         * match, or it may stop; the rules after it matter only then, and
         * are looked at again at that instant. */
        struct ob_cond_ctx ctx = {.account = a, .status = 0, .now = now, .policy = policy};
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < c->nrules; i++) {
                int64_t n = ob_cond_next_change(c->rules[i].when, &ctx);
                if (n < next)
                        next = n;
                if (ob_cond_eval(c->rules[i].when, &ctx))
                        break;
        }
        return next;
}
