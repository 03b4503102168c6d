/* cond.c: evaluating `when:` conditions. Pure: no I/O, the clock comes in. */
#include "cond.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "timeparse.h"
#include "util.h"

static int parse_time(enum ob_time_format f, const char *v, int64_t *ret)
{
        switch (f) {
        case OB_TIMEFMT_FILETIME: return ob_time_parse_filetime(v, ret);
        case OB_TIMEFMT_DAYS: return ob_time_parse_days(v, ret);
        case OB_TIMEFMT_GENERALIZED:
        default: return ob_time_parse_generalized(v, ret);
        }
}

int ob_bound_policy_value(const struct ob_bound *b, const struct ob_policy_values *pv, int64_t *ret)
{
        if (!pv || b->policy_index >= pv->n || !pv->entries[b->policy_index])
                return -ENOENT;
        const char *v = ob_account_get(pv->entries[b->policy_index], b->attribute);
        if (!v)
                return -ENOENT;
        int64_t n;
        if (ob_parse_i64(v, &n) < 0)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* The bound as a number: 0, or -ENOENT/-EINVAL when it cannot be had. */
static int bound_number(const struct ob_bound *b, const struct ob_cond_ctx *ctx, int64_t *ret)
{
        if (b->kind == OB_BOUND_NUMBER) {
                *ret = b->number;
                return 0;
        }
        if (b->kind == OB_BOUND_POLICY)
                return ob_bound_policy_value(b, ctx->policy, ret);
        return -EINVAL;
}

/* A duration bound in seconds: 0 and *ret, 1 for "forever", or < 0. */
static int bound_duration(const struct ob_bound *b, const struct ob_cond_ctx *ctx, int64_t *ret)
{
        int64_t v;
        int r = bound_number(b, ctx, &v);
        if (r < 0)
                return r;
        if (b->kind == OB_BOUND_POLICY && b->unit == OB_UNIT_INTERVAL) {
                /* MS-ADTS 3.1.1.4.5.17: a lockout lasts until an administrator
                 * ends it when the duration, taken as unsigned, is below
                 * 0x8000000000000000 (0 and every positive value) or is that
                 * value itself (then now + duration is before any lockoutTime). */
                if (v >= 0 || v == INT64_MIN)
                        return 1;
                *ret = -(v / 10000000);
                return 0;
        }
        /* A negative count of seconds is no duration anyone set: held for
         * as long as it can be, never taken for "already over". */
        if (v < 0 || (v == 0 && b->zero_forever))
                return 1;
        *ret = v;
        return 0;
}

static bool eval_within(const struct ob_cond *c, const struct ob_attr *at, const struct ob_cond_ctx *ctx)
{
        int64_t d = 0;
        int forever = bound_duration(&c->bound, ctx, &d);
        if (forever < 0)
                return false;
        for (size_t i = 0; i < at->nvals; i++) {
                int64_t t, end;
                if (parse_time(c->timefmt, at->vals[i].data, &t) != 0)
                        continue; /* "never" (lockoutTime 0) or malformed: no period began */
                if (forever == 1)
                        return true;
                if (__builtin_add_overflow(t, d, &end) || ctx->now < end)
                        return true;
        }
        return false;
}

static bool eval_at_or_after(const struct ob_cond *c, const struct ob_attr *at, const struct ob_cond_ctx *ctx)
{
        const struct ob_attr *other = ob_account_attr(ctx->account, c->bound.attribute);
        int64_t t2 = 0;
        bool have = false;
        for (size_t i = 0; other && i < other->nvals && !have; i++)
                have = parse_time(c->timefmt, other->vals[i].data, &t2) == 0;
        if (!have)
                return false;
        for (size_t i = 0; i < at->nvals; i++) {
                int64_t t;
                if (parse_time(c->timefmt, at->vals[i].data, &t) == 0 && t >= t2)
                        return true;
        }
        return false;
}

static bool eval_compare(const struct ob_cond *c, const struct ob_attr *at, const struct ob_cond_ctx *ctx)
{
        int64_t bound;
        if (bound_number(&c->bound, ctx, &bound) < 0)
                return false;
        if (bound == 0 && c->bound.zero_never)
                return false;
        for (size_t i = 0; i < at->nvals; i++) {
                int64_t n;
                if (ob_parse_i64(at->vals[i].data, &n) < 0)
                        continue;
                if (c->kind == OB_COND_AT_LEAST ? n >= bound : n < bound)
                        return true;
        }
        return false;
}

static bool eval_attr(const struct ob_cond *c, const struct ob_attr *at, const struct ob_cond_ctx *ctx)
{
        if (!at || at->nvals == 0)
                return false;
        switch (c->kind) {
        case OB_COND_AT_LEAST:
        case OB_COND_BELOW: return eval_compare(c, at, ctx);
        case OB_COND_WITHIN: return eval_within(c, at, ctx);
        case OB_COND_AT_OR_AFTER: return eval_at_or_after(c, at, ctx);
        default: break;
        }
        int64_t now = ctx->now;
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
                        int r = parse_time(c->timefmt, v, &t);
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
        case OB_COND_AT_LEAST:
        case OB_COND_BELOW:
        case OB_COND_WITHIN:
        case OB_COND_AT_OR_AFTER:
                return eval_attr(c, ob_account_attr(ctx->account, c->attribute), ctx);
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

/* The earliest instant after now at which c could evaluate otherwise, with
 * the account as it is: a time that passes (passed:) or a period that ends
 * (within:). INT64_MAX when no time of the account's can change c. */
int64_t ob_cond_next_change(const struct ob_cond *c, const struct ob_cond_ctx *ctx)
{
        int64_t next = INT64_MAX;
        if (!c)
                return next;
        switch (c->kind) {
        case OB_COND_PASSED:
        case OB_COND_WITHIN: {
                const struct ob_attr *at = ob_account_attr(ctx->account, c->attribute);
                int64_t d = 0;
                int forever = c->kind == OB_COND_WITHIN ? bound_duration(&c->bound, ctx, &d) : 0;
                if (forever != 0)
                        break; /* a period that never ends, or a bound that cannot be had */
                for (size_t i = 0; at && i < at->nvals; i++) {
                        int64_t t, when;
                        if (parse_time(c->timefmt, at->vals[i].data, &t) != 0 ||
                            __builtin_add_overflow(t, d, &when))
                                continue;
                        /* passed: true from t on; within: false from t + d on. */
                        if (when > ctx->now && when < next)
                                next = when;
                }
                break;
        }
        case OB_COND_ALL:
        case OB_COND_ANY:
        case OB_COND_NOT:
                for (size_t i = 0; i < c->nsub; i++) {
                        int64_t n = ob_cond_next_change(c->sub[i], ctx);
                        if (n < next)
                                next = n;
                }
                break;
        default:
                break;
        }
        return next;
}

void ob_cond_free(struct ob_cond *c)
{
        if (!c)
                return;
        free(c->attribute);
        for (size_t k = 0; c->values && c->values[k]; k++)
                free(c->values[k]);
        free(c->values);
        free(c->bound.policy);
        free(c->bound.attribute);
        free(c->bound.where);
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
        if (c->bound.kind == OB_BOUND_ATTRIBUTE && c->bound.attribute) {
                int r = ob_strv_add_unique_ci(list, c->bound.attribute);
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

int ob_cond_foreach_bound(struct ob_cond *c, int (*fn)(struct ob_bound *b, void *ud), void *ud)
{
        if (!c)
                return 0;
        if (c->bound.kind == OB_BOUND_POLICY) {
                int r = fn(&c->bound, ud);
                if (r != 0)
                        return r;
        }
        for (size_t i = 0; i < c->nsub; i++) {
                int r = ob_cond_foreach_bound(c->sub[i], fn, ud);
                if (r != 0)
                        return r;
        }
        return 0;
}
