/* account.h: one directory entry as offboard sees it.
 *
 * An account owns all its strings. Attribute names compare case-insensitively
 * (LDAP attribute descriptions do). Values are byte strings with a length and a
 * terminating NUL, so text values can be used as C strings; binary values
 * (objectGUID) use the length.
 */
#ifndef OB_ACCOUNT_H
#define OB_ACCOUNT_H

#include <stddef.h>

struct ob_value {
        char *data; /* NUL-terminated copy */
        size_t len;
};

struct ob_attr {
        char *name;
        size_t nvals;
        struct ob_value *vals;
        size_t cap; /* allocated vals */
};

struct ob_account {
        char *id; /* stable key in text form (entryUUID, GUID string, nsUniqueId);
                   * NULL only when unreadable is set */
        char *dn;
        /* Why this entry cannot be judged (its id is unreadable, a value is
         * over a limit, a required attribute is missing), or NULL. An
         * unreadable account is neither active nor gone: it is held. */
        char *unreadable;
        size_t nattrs;
        struct ob_attr *attrs;
        size_t cap; /* allocated attrs */
        /* Where ob_account_add puts names, value arrays and values: a few
         * chunks per account instead of three allocations per value. Only
         * account.c touches them; they go with ob_account_free. */
        struct ob_account_chunk *chunks;
};

struct ob_account *ob_account_new(void);
void ob_account_free(struct ob_account *a);
static inline void ob_account_freep(struct ob_account **a) { ob_account_free(*a); }
#define _cleanup_account_ __attribute__((cleanup(ob_account_freep)))

/* A deep copy. */
int ob_account_dup(const struct ob_account *a, struct ob_account **ret);

/* Adds one value to attribute `name` (created on first use). */
int ob_account_add(struct ob_account *a, const char *name, const char *val, size_t len);
const struct ob_attr *ob_account_attr(const struct ob_account *a, const char *name);
/* First value of an attribute as a C string, or NULL. */
const char *ob_account_get(const struct ob_account *a, const char *name);
/* 64-bit digest of id, dn and every attribute except those named in skip
 * (NULL-terminated), independent of attribute and value order. */
unsigned long long ob_account_digest(const struct ob_account *a, const char *const *skip);

#endif
