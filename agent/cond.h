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
        OB_COND_ALL,
        OB_COND_ANY,
        OB_COND_NOT,
};

enum ob_time_format { OB_TIMEFMT_GENERALIZED, OB_TIMEFMT_FILETIME, OB_TIMEFMT_DAYS };

struct ob_cond {
        enum ob_cond_kind kind;
        char *attribute;
        char **values; /* NULL-terminated */
        uint64_t bits;
        enum ob_time_format timefmt;
        unsigned status_mask; /* bits of enum ob_status */
        size_t nsub;
        struct ob_cond **sub;
};

struct ob_cond_ctx {
        const struct ob_account *account;
        int status; /* enum ob_status, or 0 while the status is being derived */
        int64_t now;
};

bool ob_cond_eval(const struct ob_cond *c, const struct ob_cond_ctx *ctx);
void ob_cond_free(struct ob_cond *c);
/* Adds every attribute the condition reads to a NULL-terminated list. */
int ob_cond_attributes(const struct ob_cond *c, char ***list);

#endif
