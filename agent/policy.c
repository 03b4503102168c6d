/* policy.c: reading the policy entries of a pass (policy.h). */
#define _GNU_SOURCE
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void ob_policy_values_free(struct ob_policy_values *pv)
{
        if (!pv)
                return;
        for (size_t i = 0; i < pv->n; i++)
                ob_account_free(pv->entries[i]);
        free(pv->entries);
        free(pv);
}

char *ob_policy_dn(const char *dn, const char *base, const char *naming_context)
{
        struct ob_buf b;
        ob_buf_init(&b);
        for (const char *s = dn; *s;) {
                if (strncmp(s, "${base}", 7) == 0 && base) {
                        ob_buf_adds(&b, base);
                        s += 7;
                } else if (strncmp(s, "${naming_context}", 17) == 0 && naming_context) {
                        ob_buf_adds(&b, naming_context);
                        s += 17;
                } else
                        ob_buf_add(&b, s++, 1);
        }
        char *out = NULL;
        if (ob_buf_steal(&b, &out) < 0) {
                ob_buf_free(&b);
                return NULL;
        }
        return out;
}

/* The root DSE's defaultNamingContext (AD: the domain head, which holds
 * lockoutDuration). */
static int naming_context(struct ob_dir *d, char **ret, char *why, size_t whylen)
{
        const char *attrs[] = {"defaultNamingContext", NULL};
        struct ob_account *root = NULL;
        int r = ob_dir_read_entry(d, "", attrs, &root);
        const char *v = r == 0 ? ob_account_get(root, "defaultNamingContext") : NULL;
        if (r == 0 && !v)
                r = -OB_ENOTFOUND;
        if (r < 0) {
                snprintf(why, whylen, "the root DSE gives no defaultNamingContext for ${naming_context} (%s): set "
                         "the policy's dn in full", ob_strerror(r));
                ob_account_free(root);
                return r;
        }
        *ret = strdup(v);
        ob_account_free(root);
        return *ret ? 0 : -ENOMEM;
}

int ob_policy_read(struct ob_dir *d, const struct ob_config *c, struct ob_policy_values **ret, char *why,
                   size_t whylen)
{
        *ret = NULL;
        if (c->npolicies == 0)
                return 0;
        struct ob_policy_values *pv = calloc(1, sizeof(*pv));
        if (!pv || !(pv->entries = calloc(c->npolicies, sizeof(*pv->entries)))) {
                free(pv);
                return -ENOMEM;
        }
        pv->n = c->npolicies;
        char *nc = NULL;
        int r = 0;
        for (size_t i = 0; r == 0 && i < c->npolicies; i++) {
                const struct ob_policy *pol = &c->policies[i];
                if (!nc && strstr(pol->dn, "${naming_context}") && (r = naming_context(d, &nc, why, whylen)) < 0)
                        break;
                char *dn = ob_policy_dn(pol->dn, c->directory.base, nc);
                if (!dn) {
                        r = -ENOMEM;
                        break;
                }
                r = ob_dir_read_entry(d, dn, (const char *const *)pol->attributes, &pv->entries[i]);
                if (r == -OB_ENOTFOUND)
                        snprintf(why, whylen,
                                 "policy '%s': the entry %s does not exist or the service account cannot see it",
                                 pol->name, dn);
                else if (r < 0)
                        snprintf(why, whylen, "policy '%s': reading %s: %s", pol->name, dn, ob_strerror(r));
                for (size_t k = 0; r == 0 && pol->attributes && pol->attributes[k]; k++) {
                        const char *v = ob_account_get(pv->entries[i], pol->attributes[k]);
                        int64_t n;
                        if (!v) {
                                snprintf(why, whylen,
                                         "policy '%s': %s has no %s (or the service account cannot read it); "
                                         "the rules that compare with it cannot be judged",
                                         pol->name, dn, pol->attributes[k]);
                                r = -OB_ENOTFOUND;
                        } else if (ob_parse_i64(v, &n) < 0) {
                                snprintf(why, whylen, "policy '%s': %s of %s is '%s', not a whole number", pol->name,
                                         pol->attributes[k], dn, v);
                                r = -OB_EDIRECTORY;
                        }
                }
                free(dn);
        }
        free(nc);
        if (r < 0) {
                ob_policy_values_free(pv);
                return r;
        }
        *ret = pv;
        return 0;
}
