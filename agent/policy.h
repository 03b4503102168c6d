/* policy.h: the policy entries conditions compare with ({policy: NAME.attr},
 * the policies: section), read once at the start of a pass.
 *
 * Fail closed: an entry that does not exist, cannot be read, or lacks an
 * attribute a condition names (or holds one that is not an integer) stops
 * the pass before any account is judged; a lockout rule never runs against
 * a policy it could not read. The values live until ob_policy_values_free.
 */
#ifndef OB_POLICY_H
#define OB_POLICY_H

#include <stddef.h>

#include "cond.h"
#include "config.h"
#include "directory.h"

/* Reads every policy of c (NULL and 0 when there is none); on error says in
 * why which DN or attribute is missing and returns -OB_ENOTFOUND (no such
 * entry, or an attribute missing), -OB_EDIRECTORY (the read failed, or a
 * value is not an integer) or -ENOMEM. */
int ob_policy_read(struct ob_dir *d, const struct ob_config *c, struct ob_policy_values **ret, char *why,
                   size_t whylen);
void ob_policy_values_free(struct ob_policy_values *pv);

/* dn with ${base} and ${naming_context} replaced (naming_context may be NULL
 * when dn does not use it); malloc'd, or NULL. */
char *ob_policy_dn(const char *dn, const char *base, const char *naming_context);

#endif
