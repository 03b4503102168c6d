/* mapping.h: an account's status from the mapping rules (first match wins).
 * Pure: the clock is an argument, nothing is read from outside. */
#ifndef OB_MAPPING_H
#define OB_MAPPING_H

#include <stdint.h>

#include "account.h"
#include "config.h"

struct ob_status_eval {
        enum ob_status status;
        const struct ob_rule *rule; /* NULL: no rule matched (active) */
        const char *reason;         /* borrowed from the account or the rule; may be NULL */
};

/* policy: the pass's policy values (policy.h), NULL when the configuration
 * names no policy. */
void ob_mapping_eval(const struct ob_config *c, const struct ob_account *a, int64_t now,
                     const struct ob_policy_values *policy, struct ob_status_eval *ret);
/* The earliest instant after now (seconds) at which the account's status
 * could change with no change to the entry (an end date, a lockout that
 * expires), or INT64_MAX. */
int64_t ob_mapping_next_change(const struct ob_config *c, const struct ob_account *a, int64_t now,
                               const struct ob_policy_values *policy);

#endif
