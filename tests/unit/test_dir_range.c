/* Active Directory's range retrieval: the attribute descriptions a server
 * hands out in ranges (member;range=0-1499, member;range=1500-*), parsed by
 * ob_dir_parse_range (directory.h). The reads that follow the ranges are
 * tested against a real Samba DC (tests/integration/test_ldap_ad.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "directory.h"

static int parse(const char *desc, struct ob_dir_range *r)
{
        *r = (struct ob_dir_range){.name_len = 999, .low = 999, .high = 999};
        return ob_dir_parse_range(desc, strlen(desc), r);
}

Test(dir_range, a_first_range_names_the_attribute_and_where_the_next_starts)
{
        struct ob_dir_range r;
        cr_assert_eq(parse("member;range=0-1499", &r), 1);
        cr_assert_eq(r.name_len, strlen("member"));
        cr_assert_eq(r.low, 0);
        cr_assert_eq(r.high, 1499);
        cr_assert_not(r.last);
}

Test(dir_range, the_last_range_ends_in_a_star)
{
        struct ob_dir_range r;
        cr_assert_eq(parse("member;range=1500-*", &r), 1);
        cr_assert_eq(r.name_len, 6);
        cr_assert_eq(r.low, 1500);
        cr_assert(r.last);
}

Test(dir_range, the_option_is_found_in_any_case_and_after_other_options)
{
        struct ob_dir_range r;
        cr_assert_eq(parse("MEMBER;Range=0-0", &r), 1);
        cr_assert_eq(r.name_len, 6);
        cr_assert_eq(r.high, 0);
        cr_assert_eq(parse("userCertificate;binary;RANGE=3-*", &r), 1);
        cr_assert_eq(r.name_len, strlen("userCertificate;binary"));
        cr_assert_eq(r.low, 3);
        cr_assert(r.last);
}

Test(dir_range, a_description_without_the_option_is_no_range)
{
        struct ob_dir_range r = {.name_len = 7};
        cr_assert_eq(ob_dir_parse_range("member", 6, &r), 0);
        cr_assert_eq(ob_dir_parse_range("member;binary", 13, &r), 0);
        /* "range" as a name, or the option's name without "=" */
        cr_assert_eq(ob_dir_parse_range("range", 5, &r), 0);
        cr_assert_eq(ob_dir_parse_range("member;range", 12, &r), 0);
        cr_assert_eq(r.name_len, 7, "*ret is written only on success");
}

Test(dir_range, only_the_bytes_given_are_read)
{
        struct ob_dir_range r;
        /* a length that cuts the description: the server's berval */
        cr_assert_eq(ob_dir_parse_range("member;range=0-1499XYZ", 19, &r), 1);
        cr_assert_eq(r.high, 1499);
        cr_assert_eq(ob_dir_parse_range("member;range=0-1499", 15, &r), -EBADMSG);
}

Test(dir_range, malformed_options_are_refused)
{
        static const char *const bad[] = {
                ";range=0-1",              /* no attribute */
                "member;range=",           /* no numbers */
                "member;range=0",          /* no high */
                "member;range=0-",         /* empty high */
                "member;range=-5",         /* empty low */
                "member;range=*-5",        /* a star for low */
                "member;range=+1-5",       /* a sign */
                "member;range=5-4",        /* high below low */
                "member;range=0x1-5",      /* not decimal */
                "member;range=0-1499;x",   /* not the last option */
                "member;range=0-**",       /* after the star */
                "member;range=0-1;range=2-*", /* twice */
                "member;range=4294967296-*",  /* over 32 bits */
                "member;range=0-99999999999999999999999",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct ob_dir_range r;
                cr_assert_eq(parse(bad[i], &r), -EBADMSG, "%s", bad[i]);
        }
        struct ob_dir_range r;
        cr_assert_eq(parse("member;range=4294967295-*", &r), 1, "the largest 32-bit index");
        cr_assert_eq(r.low, 4294967295UL);
}
