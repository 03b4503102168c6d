/* cond.h: conditions in mapping rules, transitions and actions (`when:`).
 *
 * A condition is a small tree parsed from YAML by config.c and evaluated
 * against an account, its derived status and the clock. Evaluation is pure.
 */
#ifndef OB_COND_H
#define OB_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"

enum ob_cond_kind {
        OB_COND_PRESENT, /* attribute has a value (present: true) */
        OB_COND_ABSENT,  /* present: false */
        OB_COND_EQUALS,  /* any value equals one of values, case-insensitively */
        OB_COND_BITS,    /* any value, as an integer, has any of the bits */
        OB_COND_PASSED,  /* a time value (format timefmt) is at or before now */
        OB_COND_STATUS,  /* the derived status is in status_mask */
        OB_COND_AT_LEAST, /* any value, as an integer, is >= bound */
        OB_COND_BELOW,    /* any value, as an integer, is < bound */
        OB_COND_WITHIN,   /* a time value (timefmt) plus the duration bound is still ahead of now */
        OB_COND_AT_OR_AFTER, /* a time value is at or after the time in bound.attribute (same format) */
        OB_COND_ALL,
        OB_COND_ANY,
        OB_COND_NOT,
};

enum ob_time_format { OB_TIMEFMT_GENERALIZED, OB_TIMEFMT_FILETIME, OB_TIMEFMT_DAYS };

/* How a duration read from a policy entry is written. */
enum ob_duration_unit {
        OB_UNIT_SECONDS,  /* a count of seconds (krbPwdLockoutDuration, passwordLockoutDuration) */
        OB_UNIT_INTERVAL, /* AD: minus the count of 100 ns intervals (lockoutDuration). As
                           * MS-ADTS 3.1.1.4.5.17 computes UF_LOCKOUT, 0 or any value >= 0, and
                           * -9223372036854775808, mean "until an administrator unlocks". */
};

/* The other side of a comparison: a number (a duration in seconds), a value
 * of a policy entry read at the start of the pass, or (at_or_after) another
 * attribute of the same account. */
enum ob_bound_kind { OB_BOUND_NUMBER, OB_BOUND_POLICY, OB_BOUND_ATTRIBUTE };

struct ob_bound {
        enum ob_bound_kind kind;
        int64_t number;        /* NUMBER: the count, or the duration in seconds */
        char *policy;          /* POLICY: the policy's name (policies: in the configuration) */
        size_t policy_index;   /* POLICY: index into config->policies, set once the file is loaded */
        char *attribute;       /* POLICY: the policy entry's attribute; ATTRIBUTE: the account's */
        enum ob_duration_unit unit; /* POLICY durations */
        bool zero_forever;     /* a duration of 0 means forever (FreeIPA's krbPwdLockoutDuration) */
        bool zero_never;       /* a count of 0 matches nothing (krbPwdMaxFailure 0: no lockout) */
        char *where;           /* "file:line:col" of the reference, for errors found after parsing */
};

/* The policy entries one pass read (policy.c), indexed like
 * config->policies; every attribute a condition names is present and an
 * integer, or the pass did not start. */
struct ob_policy_values {
        size_t n;
        struct ob_account **entries;
};

struct ob_cond {
        enum ob_cond_kind kind;
        char *attribute;
        char **values; /* NULL-terminated */
        uint64_t bits;
        enum ob_time_format timefmt;
        unsigned status_mask; /* bits of enum ob_status */
        struct ob_bound bound; /* at_least, below, within, at_or_after */
        size_t nsub;
        struct ob_cond **sub;
};

struct ob_cond_ctx {
        const struct ob_account *account;
        int status; /* enum ob_status, or 0 while the status is being derived */
        int64_t now;
        /* Read at the start of the pass; NULL when the configuration names
         * no policy. A bound that cannot be resolved makes its test false,
         * which a pass never meets: it refuses to start without them. */
        const struct ob_policy_values *policy;
};

bool ob_cond_eval(const struct ob_cond *c, const struct ob_cond_ctx *ctx);
/* The earliest instant after ctx->now (seconds) at which c could evaluate
 * otherwise while the account stays as it is (an end date that passes, a
 * lockout that expires), or INT64_MAX. Conservative: it may name an instant
 * at which nothing changes after all, never miss one. */
int64_t ob_cond_next_change(const struct ob_cond *c, const struct ob_cond_ctx *ctx);
void ob_cond_free(struct ob_cond *c);
/* Adds every attribute the condition reads to a NULL-terminated list. */
int ob_cond_attributes(const struct ob_cond *c, char ***list);
/* Calls fn for every policy bound in the condition (to resolve and collect
 * them); a non-zero return stops the walk and is returned. */
int ob_cond_foreach_bound(struct ob_cond *c, int (*fn)(struct ob_bound *b, void *ud), void *ud);
/* A policy value as a bound: *ret set and 0, or -ENOENT when the policy or
 * its attribute is missing, -EINVAL when it is not an integer. */
int ob_bound_policy_value(const struct ob_bound *b, const struct ob_policy_values *pv, int64_t *ret);

#endif
