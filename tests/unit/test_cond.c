/* Conditions: the tests mapping rules and when: clauses are made of. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "cond.h"
#include "config.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */

static struct ob_cond *leaf(enum ob_cond_kind k, const char *attr)
{
        struct ob_cond *c = calloc(1, sizeof(*c));
        c->kind = k;
        c->attribute = attr ? strdup(attr) : NULL;
        return c;
}

static bool eval(const struct ob_cond *c, const char *attr, const char *val)
{
        struct ob_account *a = ob_account_new();
        a->id = strdup("x");
        if (attr)
                ob_account_add(a, attr, val, strlen(val));
        struct ob_cond_ctx ctx = {.account = a, .status = OB_STATUS_INACTIVE, .now = NOW};
        bool r = ob_cond_eval(c, &ctx);
        ob_account_free(a);
        return r;
}

Test(cond, bits_match_active_directory_user_account_control_values)
{
        struct ob_cond *c = leaf(OB_COND_BITS, "userAccountControl");
        c->bits = 0x2;
        cr_assert(eval(c, "userAccountControl", "514"));        /* NORMAL_ACCOUNT | ACCOUNTDISABLE */
        cr_assert_not(eval(c, "userAccountControl", "512"));    /* NORMAL_ACCOUNT */
        cr_assert(eval(c, "userAccountControl", "66050"));      /* + DONT_EXPIRE_PASSWORD */
        cr_assert_not(eval(c, "userAccountControl", "banana")); /* malformed never matches */
        cr_assert_not(eval(c, NULL, NULL));                     /* absent never matches */
        ob_cond_free(c);
}

Test(cond, passed_filetime_honours_the_never_sentinels)
{
        struct ob_cond *c = leaf(OB_COND_PASSED, "accountExpires");
        c->timefmt = OB_TIMEFMT_FILETIME;
        cr_assert_not(eval(c, "accountExpires", "0"));
        cr_assert_not(eval(c, "accountExpires", "9223372036854775807"));
        cr_assert(eval(c, "accountExpires", "133000000000000000"));     /* 2022 */
        cr_assert_not(eval(c, "accountExpires", "140000000000000000")); /* 2044 */
        ob_cond_free(c);
}

Test(cond, passed_generalized_time_compares_with_the_clock)
{
        struct ob_cond *c = leaf(OB_COND_PASSED, "endDate");
        c->timefmt = OB_TIMEFMT_GENERALIZED;
        cr_assert(eval(c, "endDate", "20261123083316Z"));        /* exactly now: passed */
        cr_assert_not(eval(c, "endDate", "20261123083317Z"));    /* one second later */
        cr_assert(eval(c, "endDate", "20261123033316-0500"));    /* same instant, other zone */
        cr_assert_not(eval(c, "endDate", "not a date"));
        ob_cond_free(c);
}

Test(cond, all_any_not_and_status_combine)
{
        struct ob_cond *present = leaf(OB_COND_PRESENT, "lockoutTime");
        struct ob_cond *zero = leaf(OB_COND_EQUALS, "lockoutTime");
        zero->values = calloc(2, sizeof(char *));
        zero->values[0] = strdup("0");
        struct ob_cond *notzero = leaf(OB_COND_NOT, NULL);
        notzero->nsub = 1;
        notzero->sub = calloc(1, sizeof(*notzero->sub));
        notzero->sub[0] = zero;
        struct ob_cond *all = leaf(OB_COND_ALL, NULL);
        all->nsub = 2;
        all->sub = calloc(2, sizeof(*all->sub));
        all->sub[0] = present;
        all->sub[1] = notzero;
        cr_assert(eval(all, "lockoutTime", "133000000000000000"));
        cr_assert_not(eval(all, "lockoutTime", "0"));
        cr_assert_not(eval(all, NULL, NULL));
        struct ob_cond *st = leaf(OB_COND_STATUS, NULL);
        st->status_mask = 1u << OB_STATUS_INACTIVE;
        cr_assert(eval(st, NULL, NULL));
        st->status_mask = 1u << OB_STATUS_LOCKED;
        cr_assert_not(eval(st, NULL, NULL));
        ob_cond_free(all);
        ob_cond_free(st);
}
