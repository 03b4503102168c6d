/* Conditions: the tests mapping rules and when: clauses are made of. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "cond.h"
#include "config.h"
#include "mapping.h"
#include "policy.h"

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

/* ---- numbers, durations and policies ------------------------------------------ */

/* A configuration with the shipped mappings (and tail added as it is). */
static struct ob_config *load(const char *mappings, const char *tail)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        char path[64];
        snprintf(path, sizeof(path), "/tmp/ob-test-cond-%d.yaml", (int)getpid());
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\nmappings: [%s]\n%s", mappings,
                tail ? tail : "");
        fclose(f);
        struct ob_config *c = NULL;
        struct ob_config_error err;
        int r = ob_config_load(path, &c, &err);
        unlink(path);
        cr_assert_eq(r, 0, "%s", err.message);
        return c;
}

/* An account (or policy entry) from name, value pairs ending in NULL. */
static struct ob_account *entry(const char *name, ...)
{
        struct ob_account *a = ob_account_new();
        a->id = strdup("x");
        va_list ap;
        va_start(ap, name);
        for (const char *n = name; n; n = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                ob_account_add(a, n, v, strlen(v));
        }
        va_end(ap);
        return a;
}

static void gtime(int64_t t, char buf[static 16])
{
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(buf, 16, "%Y%m%d%H%M%SZ", &tm);
}

static void filetime(int64_t t, char buf[static 24])
{
        snprintf(buf, 24, "%lld", (long long)((t + 11644473600LL) * 10000000LL));
}

/* The rule that decides a (freed), or "active". */
static const char *rule_of(const struct ob_config *c, struct ob_account *a, const struct ob_policy_values *pv)
{
        struct ob_status_eval ev;
        ob_mapping_eval(c, a, NOW, pv, &ev);
        ob_account_free(a);
        return ev.rule ? ev.rule->name : "active";
}

#define IPA_POLICY "policies: {kerberos: {dn: \"cn=global_policy,cn=X.ORG,cn=kerberos,dc=x\"}}\n"

/* FreeIPA's KDC (ipa-kdb's ipadb_check_policy_as): locked when the failures
 * reach krbPwdMaxFailure (0: never), the last one within
 * krbPwdLockoutDuration (0: forever), unless an administrator unlocked it
 * at or after that failure. */
Test(cond, freeipa_lockout_is_decided_as_freeipas_kdc_decides_it)
{
        struct ob_config *c = load("freeipa", IPA_POLICY);
        cr_assert_eq(c->npolicies, 1);
        cr_assert_str_eq(c->policies[0].dn, "cn=global_policy,cn=X.ORG,cn=kerberos,dc=x");
        struct ob_account *pol = entry("krbPwdMaxFailure", "3", "krbPwdLockoutDuration", "600", NULL);
        struct ob_policy_values pv = {.n = 1, .entries = &pol};
        char min1[16], min2[16], min11[16], old[16];
        gtime(NOW - 60, min1);
        gtime(NOW - 120, min2);
        gtime(NOW - 601, min11);
        gtime(NOW - 30 * 86400, old);
        const char *L = "kerberos-lockout";
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "3", "krbLastFailedAuth", min1, NULL), &pv), L);
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "2", "krbLastFailedAuth", min1, NULL), &pv),
                         "active", "below the count");
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "5", "krbLastFailedAuth", min11, NULL), &pv),
                         "active", "the lockout duration has passed");
        cr_expect_str_eq(rule_of(c,
                                 entry("krbLoginFailedCount", "5", "krbLastFailedAuth", min2, "krbLastAdminUnlock",
                                       min1, NULL),
                                 &pv),
                         "active", "unlocked by an administrator after the failure");
        cr_expect_str_eq(rule_of(c,
                                 entry("krbLoginFailedCount", "5", "krbLastFailedAuth", min2, "krbLastAdminUnlock",
                                       min2, NULL),
                                 &pv),
                         "active", "an unlock at the same second counts (last_failed <= last_admin_unlock)");
        cr_expect_str_eq(rule_of(c,
                                 entry("krbLoginFailedCount", "5", "krbLastFailedAuth", min1, "krbLastAdminUnlock",
                                       min2, NULL),
                                 &pv),
                         L, "failed again after the unlock");
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "3", NULL), &pv), "active", "no failure time");
        cr_expect_str_eq(rule_of(c, entry("nsAccountLock", "TRUE", "krbLoginFailedCount", "3", NULL), &pv),
                         "disabled");
        cr_expect_str_eq(rule_of(c, entry("krbPrincipalExpiration", old, NULL), &pv), "principal-expired");
        ob_account_free(pol);

        /* krbPwdLockoutDuration 0: locked until an administrator unlocks. */
        pol = entry("krbPwdMaxFailure", "3", "krbPwdLockoutDuration", "0", NULL);
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "3", "krbLastFailedAuth", old, NULL), &pv), L);
        ob_account_free(pol);
        /* krbPwdMaxFailure 0: the policy never locks. */
        pol = entry("krbPwdMaxFailure", "0", "krbPwdLockoutDuration", "600", NULL);
        cr_expect_str_eq(rule_of(c, entry("krbLoginFailedCount", "9", "krbLastFailedAuth", min1, NULL), &pv),
                         "active");
        ob_account_free(pol);
        ob_config_free(c);
}

/* The AD rule for DCs without msDS-User-Account-Control-Computed:
 * lockoutTime + the domain's lockoutDuration (negative 100 ns intervals;
 * 0 and INT64_MIN: until an administrator unlocks, MS-ADTS 3.1.1.4.5.17). */
Test(cond, ad_lockout_time_honours_the_domains_lockout_duration)
{
        struct ob_config *c = load("active-directory", NULL);
        cr_assert_eq(c->npolicies, 1);
        cr_assert_str_eq(c->policies[0].dn, "${naming_context}");
        cr_assert_str_eq(c->policies[0].attributes[0], "lockoutDuration");
        struct ob_account *pol = entry("lockoutDuration", "-18000000000", NULL); /* 30 minutes */
        struct ob_policy_values pv = {.n = 1, .entries = &pol};
        char m10[24], m31[24], years[24];
        filetime(NOW - 600, m10);
        filetime(NOW - 31 * 60, m31);
        filetime(NOW - 3 * 365 * 86400LL, years);
        const char *L = "lockout-time";
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", m10, NULL), &pv), L);
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", m31, NULL), &pv), "active",
                         "the lockout duration has passed");
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", "0", NULL), &pv), "active");
        /* Where the DC computes the lock, that wins. */
        cr_expect_str_eq(rule_of(c,
                                 entry("userAccountControl", "512", "lockoutTime", m10,
                                       "msDS-User-Account-Control-Computed", "0", NULL),
                                 &pv),
                         "active");
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "msDS-User-Account-Control-Computed", "16",
                                          NULL),
                                 &pv),
                         "locked-out");
        ob_account_free(pol);
        pol = entry("lockoutDuration", "0", NULL);
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", years, NULL), &pv), L,
                         "0: until an administrator unlocks");
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", "0", NULL), &pv), "active");
        ob_account_free(pol);
        pol = entry("lockoutDuration", "-9223372036854775808", NULL);
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", years, NULL), &pv), L,
                         "the smallest value: until an administrator unlocks");
        ob_account_free(pol);
        /* Without the policy values a bound never holds: a pass never gets
         * here (it does not start without them), a caller that forgets
         * them gets no lock from this rule, never a crash. */
        cr_expect_str_eq(rule_of(c, entry("userAccountControl", "512", "lockoutTime", m10, NULL), NULL), "active");
        ob_config_free(c);
}

Test(cond, at_least_below_and_within_take_plain_numbers_and_durations)
{
        char mpath[64];
        snprintf(mpath, sizeof(mpath), "/tmp/ob-test-cond-m-%d.yaml", (int)getpid());
        FILE *f = fopen(mpath, "w");
        cr_assert_not_null(f);
        fputs("rules:\n"
              "  - {name: many, status: locked, when: {attribute: badPwdCount, at_least: 5}}\n"
              "  - {name: few, status: inactive, when: {attribute: logins, below: -1}}\n"
              "  - name: recent\n"
              "    status: ended\n"
              "    when: {attribute: lastFail, within: {time: generalized, duration: 1h}}\n",
              f);
        fclose(f);
        struct ob_config *c = load(mpath, NULL);
        unlink(mpath);
        char m59[16], m61[16], ahead[16];
        gtime(NOW - 59 * 60, m59);
        gtime(NOW - 61 * 60, m61);
        gtime(NOW + 60, ahead);
        cr_expect_str_eq(rule_of(c, entry("badPwdCount", "5", NULL), NULL), "many");
        cr_expect_str_eq(rule_of(c, entry("badPwdCount", "4", NULL), NULL), "active");
        cr_expect_str_eq(rule_of(c, entry("badPwdCount", "4", "badPwdCount", "6", NULL), NULL), "many",
                         "any value");
        cr_expect_str_eq(rule_of(c, entry("badPwdCount", "lots", NULL), NULL), "active", "not a number");
        cr_expect_str_eq(rule_of(c, entry("logins", "-2", NULL), NULL), "few");
        cr_expect_str_eq(rule_of(c, entry("logins", "-1", NULL), NULL), "active");
        cr_expect_str_eq(rule_of(c, entry("lastFail", m59, NULL), NULL), "recent");
        cr_expect_str_eq(rule_of(c, entry("lastFail", m61, NULL), NULL), "active");
        cr_expect_str_eq(rule_of(c, entry("lastFail", ahead, NULL), NULL), "recent",
                         "a time ahead of the clock: the period has not ended");
        cr_expect_str_eq(rule_of(c, entry("lastFail", "yesterday", NULL), NULL), "active");
        ob_config_free(c);
}

Test(cond, a_policy_dn_gets_the_base_and_the_naming_context)
{
        char *dn = ob_policy_dn("cn=p,${base}", "ou=people,dc=x", NULL);
        cr_assert_str_eq(dn, "cn=p,ou=people,dc=x");
        free(dn);
        dn = ob_policy_dn("${naming_context}", "ou=people,dc=x", "DC=offboard,DC=test");
        cr_assert_str_eq(dn, "DC=offboard,DC=test");
        free(dn);
}

Test(cond, the_next_change_is_when_an_end_date_passes_or_a_period_ends_never_before_now)
{
        char mpath[64];
        snprintf(mpath, sizeof(mpath), "/tmp/ob-test-cond-n-%d.yaml", (int)getpid());
        FILE *f = fopen(mpath, "w");
        cr_assert_not_null(f);
        fputs("rules:\n"
              "  - name: recent\n"
              "    status: locked\n"
              "    when: {attribute: lastFail, within: {time: generalized, duration: 1h}}\n"
              "  - {name: disabled, status: inactive, when: {attribute: employeeType, equals: Inactive}}\n"
              "  - {name: ended, status: ended, when: {any: [{attribute: endDate, passed: generalized}]}}\n",
              f);
        fclose(f);
        struct ob_config *c = load(mpath, NULL);
        unlink(mpath);
        char in90[16], ago10[16], ago30m[16], in2h[16];
        gtime(NOW + 90, in90);
        gtime(NOW - 10, ago10);
        gtime(NOW - 30 * 60, ago30m);
        gtime(NOW + 2 * 3600, in2h);
        struct ob_account *a;
        /* An end date ahead: its second (through any:). */
        a = entry("endDate", in90, NULL);
        cr_assert_eq(ob_mapping_next_change(c, a, NOW, NULL), NOW + 90);
        ob_account_free(a);
        /* One that passed already changed nothing still to come. */
        a = entry("endDate", ago10, NULL);
        cr_assert_eq(ob_mapping_next_change(c, a, NOW, NULL), INT64_MAX);
        ob_account_free(a);
        /* A lockout that began 30 minutes ago ends 30 minutes from now; the
         * end date behind the matching rule is looked at again then. */
        a = entry("lastFail", ago30m, "endDate", in2h, NULL);
        cr_assert_eq(ob_mapping_next_change(c, a, NOW, NULL), NOW + 30 * 60);
        ob_account_free(a);
        /* Disabled by an attribute: an end date after that rule cannot
         * change the status by itself. */
        a = entry("employeeType", "Inactive", "endDate", in2h, NULL);
        cr_assert_eq(ob_mapping_next_change(c, a, NOW, NULL), INT64_MAX);
        ob_account_free(a);
        /* Malformed, or no time at all. */
        a = entry("endDate", "someday", NULL);
        cr_assert_eq(ob_mapping_next_change(c, a, NOW, NULL), INT64_MAX);
        ob_account_free(a);
        ob_config_free(c);
}
