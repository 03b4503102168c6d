/* cond.c: evaluating `when:` conditions. Pure: no I/O, the clock comes in. */
#include "cond.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "timeparse.h"
#include "util.h"

static bool eval_attr(const struct ob_cond *c, const struct ob_attr *at, int64_t now)
{
        if (!at || at->nvals == 0)
                return false;
        for (size_t i = 0; i < at->nvals; i++) {
                const char *v = at->vals[i].data;
                switch (c->kind) {
                case OB_COND_EQUALS:
                        for (size_t k = 0; c->values && c->values[k]; k++)
                                if (strcasecmp(v, c->values[k]) == 0)
                                        return true;
                        break;
                case OB_COND_BITS: {
                        int64_t n;
                        /* AD writes userAccountControl as a signed 32-bit decimal. */
                        if (ob_parse_i64(v, &n) == 0 && ((uint64_t)n & c->bits))
                                return true;
                        break;
                }
                case OB_COND_PASSED: {
                        int64_t t;
                        int r;
                        switch (c->timefmt) {
                        case OB_TIMEFMT_FILETIME: r = ob_time_parse_filetime(v, &t); break;
                        case OB_TIMEFMT_DAYS: r = ob_time_parse_days(v, &t); break;
                        case OB_TIMEFMT_GENERALIZED:
                        default: r = ob_time_parse_generalized(v, &t); break;
                        }
                        /* A malformed value is not a date that passed: the rule does not
                         * match, and the account keeps the status later rules give it. */
                        if (r == 0 && t <= now)
                                return true;
                        break;
                }
                default:
                        return false;
                }
        }
        return false;
}

bool ob_cond_eval(const struct ob_cond *c, const struct ob_cond_ctx *ctx)
{
        if (!c)
                return true;
        switch (c->kind) {
        case OB_COND_PRESENT: {
                const struct ob_attr *at = ob_account_attr(ctx->account, c->attribute);
                return at && at->nvals > 0;
        }
        case OB_COND_ABSENT: {
                const struct ob_attr *at = ob_account_attr(ctx->account, c->attribute);
                return !at || at->nvals == 0;
        }
        case OB_COND_EQUALS:
        case OB_COND_BITS:
        case OB_COND_PASSED:
                return eval_attr(c, ob_account_attr(ctx->account, c->attribute), ctx->now);
        case OB_COND_STATUS:
                return ctx->status > 0 && (c->status_mask & (1u << ctx->status));
        case OB_COND_ALL:
                for (size_t i = 0; i < c->nsub; i++)
                        if (!ob_cond_eval(c->sub[i], ctx))
                                return false;
                return true;
        case OB_COND_ANY:
                for (size_t i = 0; i < c->nsub; i++)
                        if (ob_cond_eval(c->sub[i], ctx))
                                return true;
                return false;
        case OB_COND_NOT:
                return c->nsub == 1 && !ob_cond_eval(c->sub[0], ctx);
        }
        return false;
}

void ob_cond_free(struct ob_cond *c)
{
        if (!c)
                return;
        free(c->attribute);
        for (size_t k = 0; c->values && c->values[k]; k++)
                free(c->values[k]);
        free(c->values);
        for (size_t i = 0; i < c->nsub; i++)
                ob_cond_free(c->sub[i]);
        free(c->sub);
        free(c);
}

int ob_cond_attributes(const struct ob_cond *c, char ***list)
{
        if (!c)
                return 0;
        if (c->attribute) {
                int r = ob_strv_add_unique_ci(list, c->attribute);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->nsub; i++) {
                int r = ob_cond_attributes(c->sub[i], list);
                if (r < 0)
                        return r;
        }
        return 0;
}
