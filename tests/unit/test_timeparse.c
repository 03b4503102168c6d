/* Unit tests for agent/timeparse.c.
 *
 * Expected Unix times were checked on the build machine with GNU date, e.g.
 * `date -u -d '2026-11-23 08:33:16' +%s` prints 1795422796, and
 * `date -u -d @1655526400 +%FT%TZ` prints 2022-06-18T04:26:40Z.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "timeparse.h"

/* 2026-11-23T08:33:16Z, the lockout time slapd's ppolicy wrote in our notes. */
#define T_20261123083316 INT64_C(1795422796)
/* 2026-11-23T00:00:00Z */
#define T_20261123 (T_20261123083316 - 8 * 3600 - 33 * 60 - 16)

static int64_t parse_gt(const char *s)
{
        int64_t t = 0;
        int r = ob_time_parse_generalized(s, &t);
        cr_assert_eq(r, 0, "parsing \"%s\" returned %d", s, r);
        return t;
}

static void refuse_gt(const char *s)
{
        int64_t t = 42;
        int r = ob_time_parse_generalized(s, &t);
        cr_assert_eq(r, -EINVAL, "\"%s\" should be refused with -EINVAL, got %d", s, r);
        cr_assert_eq(t, 42, "\"%s\" was refused but the output was written", s);
}

/* ---- GeneralizedTime ------------------------------------------------- */

Test(timeparse, generalized_full_utc_value_matches_date_command)
{
        cr_assert_eq(parse_gt("20261123083316Z"), T_20261123083316);
}

Test(timeparse, generalized_unix_epoch_is_zero)
{
        cr_assert_eq(parse_gt("19700101000000Z"), 0);
}

Test(timeparse, generalized_before_1970_is_negative)
{
        /* date -u -d '1969-12-31 23:59:59' +%s */
        cr_assert_eq(parse_gt("19691231235959Z"), -1);
        /* date -u -d '1601-01-01' +%s: the FILETIME origin */
        cr_assert_eq(parse_gt("16010101000000Z"), INT64_C(-11644473600));
}

Test(timeparse, generalized_last_representable_second)
{
        /* date -u -d '9999-12-31 23:59:59' +%s */
        cr_assert_eq(parse_gt("99991231235959Z"), INT64_C(253402300799));
}

Test(timeparse, generalized_hour_only_form_is_on_the_hour)
{
        cr_assert_eq(parse_gt("2026112308Z"), T_20261123 + 8 * 3600);
}

Test(timeparse, generalized_minute_only_form_has_zero_seconds)
{
        cr_assert_eq(parse_gt("202611230833Z"), T_20261123 + 8 * 3600 + 33 * 60);
}

Test(timeparse, generalized_fraction_of_an_hour_becomes_minutes)
{
        cr_assert_eq(parse_gt("2026112308.5Z"), T_20261123 + 8 * 3600 + 30 * 60);
        cr_assert_eq(parse_gt("2026112308,25Z"), T_20261123 + 8 * 3600 + 15 * 60);
}

Test(timeparse, generalized_fraction_of_a_minute_becomes_seconds)
{
        cr_assert_eq(parse_gt("202611230833.5Z"), T_20261123 + 8 * 3600 + 33 * 60 + 30);
        /* 0.999 min = 59.94 s, truncated to 59 */
        cr_assert_eq(parse_gt("202611230833,999Z"), T_20261123 + 8 * 3600 + 33 * 60 + 59);
}

Test(timeparse, generalized_fraction_of_a_second_is_truncated_with_dot_or_comma)
{
        cr_assert_eq(parse_gt("20261123083316.571694Z"), T_20261123083316);
        cr_assert_eq(parse_gt("20261123083316,999999999Z"), T_20261123083316);
        cr_assert_eq(parse_gt("20261123083316.0Z"), T_20261123083316);
}

Test(timeparse, generalized_long_fraction_is_computed_exactly)
{
        /* 1/3600 h = 0.000277777... h is exactly one second; a fraction just
         * above it is 1 s, just below it is 0 s, however many digits it has. */
        cr_assert_eq(parse_gt("2026112308.0002777777777777777778Z"), T_20261123 + 8 * 3600 + 1);
        cr_assert_eq(parse_gt("2026112308.0002777777777777777777Z"), T_20261123 + 8 * 3600);
        cr_assert_eq(parse_gt("2026112308.99999999999999999999999Z"), T_20261123 + 8 * 3600 + 3599);
}

Test(timeparse, generalized_negative_offset_is_added_to_give_utc)
{
        /* 08:33:16 at -05:00 is 13:33:16Z (date -u -d '2026-11-23 13:33:16' +%s) */
        cr_assert_eq(parse_gt("20261123083316-0500"), INT64_C(1795440796));
        cr_assert_eq(parse_gt("20261123083316-0500"), T_20261123083316 + 5 * 3600);
}

Test(timeparse, generalized_positive_offset_is_subtracted_to_give_utc)
{
        cr_assert_eq(parse_gt("20261123083316+0130"), T_20261123083316 - 90 * 60);
        cr_assert_eq(parse_gt("20261123083316+01"), T_20261123083316 - 3600);
        cr_assert_eq(parse_gt("20261123083316+0000"), T_20261123083316);
}

Test(timeparse, generalized_offset_can_cross_midnight_and_the_year)
{
        /* 2027-01-01 00:30 at +01:00 is 2026-12-31 23:30Z:
         * date -u -d '2026-12-31 23:30' +%s prints 1798759800 */
        cr_assert_eq(parse_gt("202701010030+0100"), INT64_C(1798759800));
}

Test(timeparse, generalized_offset_with_fraction_and_short_forms)
{
        cr_assert_eq(parse_gt("2026112308.5-0130"), T_20261123 + 8 * 3600 + 30 * 60 + 90 * 60);
        cr_assert_eq(parse_gt("202611230833+01"), T_20261123 + 7 * 3600 + 33 * 60);
}

Test(timeparse, generalized_accepts_leap_day_in_a_leap_year)
{
        /* date -u -d '2024-02-29' +%s */
        cr_assert_eq(parse_gt("20240229000000Z"), INT64_C(1709164800));
        cr_assert_eq(parse_gt("20000229000000Z"), INT64_C(951782400)); /* 2000: divisible by 400 */
}

Test(timeparse, generalized_refuses_leap_day_in_a_common_year)
{
        refuse_gt("20260229000000Z");
        refuse_gt("19000229000000Z"); /* 1900: divisible by 100, not by 400 */
        refuse_gt("20240230000000Z");
}

Test(timeparse, generalized_refuses_bad_month_and_day)
{
        refuse_gt("20261323083316Z");
        refuse_gt("20260023083316Z");
        refuse_gt("20261100083316Z");
        refuse_gt("20261131083316Z"); /* November has 30 days */
        refuse_gt("20261232083316Z");
}

Test(timeparse, generalized_refuses_hour_24_and_out_of_range_minutes_or_seconds)
{
        refuse_gt("20261123240000Z");
        refuse_gt("2026112324Z");
        refuse_gt("20261123086000Z");
        refuse_gt("20261123083360Z"); /* leap second: refused, not folded to 59 */
        refuse_gt("20261123083399Z");
}

Test(timeparse, generalized_refuses_out_of_range_offsets)
{
        refuse_gt("20261123083316+2400");
        refuse_gt("20261123083316+0160");
        refuse_gt("20261123083316+1");
        refuse_gt("20261123083316+");
        refuse_gt("20261123083316-");
}

Test(timeparse, generalized_refuses_a_value_without_zone)
{
        refuse_gt("20261123083316");
        refuse_gt("2026112308");
        refuse_gt("20261123083316.5");
}

Test(timeparse, generalized_refuses_trailing_garbage_and_malformed_shapes)
{
        refuse_gt("20261123083316Zx");
        refuse_gt("20261123083316Z ");
        refuse_gt(" 20261123083316Z");
        refuse_gt("20261123083316z");
        refuse_gt("20261123083316+0130x");
        refuse_gt("20261123083316+013");
        refuse_gt("2026112308331Z");    /* odd digit count */
        refuse_gt("202611230Z");        /* hour cut short */
        refuse_gt("20261123083316.Z");  /* separator without digits */
        refuse_gt("20261123083316..5Z");
        refuse_gt("2026-11-23T08:33:16Z");
        refuse_gt("+2026112308Z");
}

Test(timeparse, generalized_refuses_empty_and_null)
{
        refuse_gt("");
        refuse_gt("Z");
        int64_t t = 7;
        cr_assert_eq(ob_time_parse_generalized(NULL, &t), -EINVAL);
        cr_assert_eq(t, 7);
}

Test(timeparse, generalized_ppolicy_admin_lock_is_forever_past)
{
        cr_assert_eq(parse_gt("000001010000Z"), OB_TIME_FOREVER_PAST);
        cr_assert_eq(parse_gt("00000101000000Z"), OB_TIME_FOREVER_PAST);
        cr_assert_eq(parse_gt("00001231235959+0500"), OB_TIME_FOREVER_PAST);
}

Test(timeparse, generalized_year_zero_must_still_be_well_formed)
{
        refuse_gt("000001010000");
        refuse_gt("00001301000000Z");
        refuse_gt("000001010000Zjunk");
}

/* ---- FILETIME -------------------------------------------------------- */

static int64_t filetime_to_unix(int64_t ticks)
{
        /* The documented formula: ft / 10^7 - 11644473600 */
        return ticks / 10000000 - INT64_C(11644473600);
}

Test(timeparse, filetime_zero_and_max_mean_never)
{
        int64_t t = 42;
        cr_assert_eq(ob_time_parse_filetime("0", &t), 1);
        cr_assert_eq(ob_time_parse_filetime("9223372036854775807", &t), 1);
        cr_assert_eq(t, 42, "a never sentinel must not write the output");
}

Test(timeparse, filetime_unix_epoch_is_zero)
{
        int64_t t = 42;
        cr_assert_eq(ob_time_parse_filetime("116444736000000000", &t), 0);
        cr_assert_eq(t, 0);
}

Test(timeparse, filetime_known_active_directory_value)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_filetime("133000000000000000", &t), 0);
        cr_assert_eq(t, filetime_to_unix(INT64_C(133000000000000000)));
        /* date -u -d @1655526400 +%FT%TZ prints 2022-06-18T04:26:40Z */
        cr_assert_eq(t, INT64_C(1655526400));
}

Test(timeparse, filetime_sub_second_ticks_are_floored)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_filetime("116444736009999999", &t), 0);
        cr_assert_eq(t, 0);
        cr_assert_eq(ob_time_parse_filetime("116444736010000000", &t), 0);
        cr_assert_eq(t, 1);
        /* Just before the Unix epoch: -0.0000001 s floors to -1. */
        cr_assert_eq(ob_time_parse_filetime("116444735999999999", &t), 0);
        cr_assert_eq(t, -1);
}

Test(timeparse, filetime_one_tick_after_origin_is_1601)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_filetime("1", &t), 0);
        cr_assert_eq(t, INT64_C(-11644473600));
}

Test(timeparse, filetime_largest_value_below_never_converts)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_filetime("9223372036854775806", &t), 0);
        cr_assert_eq(t, filetime_to_unix(INT64_C(9223372036854775806)));
}

Test(timeparse, filetime_refuses_negative_non_numeric_and_overflow)
{
        const char *bad[] = {"-1", "-133000000000000000", "", " 1", "1 ", "+1", "0x10", "12a",
                             "9223372036854775808", "99999999999999999999", "1.5"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t t = 42;
                cr_assert_eq(ob_time_parse_filetime(bad[i], &t), -EINVAL, "\"%s\" should be refused", bad[i]);
                cr_assert_eq(t, 42);
        }
        int64_t t = 42;
        cr_assert_eq(ob_time_parse_filetime(NULL, &t), -EINVAL);
}

/* ---- shadowExpire days ----------------------------------------------- */

Test(timeparse, days_empty_minus_one_and_zero_mean_never)
{
        int64_t t = 42;
        cr_assert_eq(ob_time_parse_days("", &t), 1);
        cr_assert_eq(ob_time_parse_days("-1", &t), 1);
        cr_assert_eq(ob_time_parse_days("0", &t), 1);
        cr_assert_eq(t, 42);
}

Test(timeparse, days_are_multiplied_by_a_day_of_seconds)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_days("19000", &t), 0);
        /* date -u -d 2022-01-08 +%s prints 1641600000 */
        cr_assert_eq(t, INT64_C(1641600000));
        cr_assert_eq(t, INT64_C(19000) * 86400);
        cr_assert_eq(ob_time_parse_days("1", &t), 0);
        cr_assert_eq(t, 86400);
}

Test(timeparse, days_refuse_other_negatives_non_numeric_and_overflow)
{
        const char *bad[] = {"-2", "-0", "-", "--1", "abc", "1d", " 1", "+1", "1.0",
                             "106751991167301", /* * 86400 overflows int64 */
                             "9223372036854775808"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t t = 42;
                cr_assert_eq(ob_time_parse_days(bad[i], &t), -EINVAL, "\"%s\" should be refused", bad[i]);
                cr_assert_eq(t, 42);
        }
        int64_t t = 42;
        cr_assert_eq(ob_time_parse_days(NULL, &t), -EINVAL);
}

Test(timeparse, days_largest_value_that_fits_is_accepted)
{
        int64_t t = 0;
        cr_assert_eq(ob_time_parse_days("106751991167300", &t), 0);
        cr_assert_eq(t, INT64_C(106751991167300) * 86400);
}

/* ---- formatting ------------------------------------------------------ */

Test(timeparse, format_generalized_of_a_known_time)
{
        char buf[16];
        ob_time_format_generalized(T_20261123083316, buf);
        cr_assert_str_eq(buf, "20261123083316Z");
        ob_time_format_generalized(0, buf);
        cr_assert_str_eq(buf, "19700101000000Z");
        ob_time_format_generalized(-1, buf);
        cr_assert_str_eq(buf, "19691231235959Z");
}

Test(timeparse, format_rfc3339_of_a_known_time)
{
        char buf[21];
        ob_time_format_rfc3339(T_20261123083316, buf);
        cr_assert_str_eq(buf, "2026-11-23T08:33:16Z");
        ob_time_format_rfc3339(INT64_C(1709164800), buf);
        cr_assert_str_eq(buf, "2024-02-29T00:00:00Z");
        ob_time_format_rfc3339(INT64_C(-11644473600), buf);
        cr_assert_str_eq(buf, "1601-01-01T00:00:00Z");
}

Test(timeparse, format_clamps_to_the_printable_range)
{
        char g[16], r[21];
        ob_time_format_generalized(OB_TIME_FOREVER_PAST, g);
        cr_assert_str_eq(g, "00000101000000Z");
        ob_time_format_rfc3339(OB_TIME_FOREVER_PAST, r);
        cr_assert_str_eq(r, "0000-01-01T00:00:00Z");
        ob_time_format_generalized(INT64_MAX, g);
        cr_assert_str_eq(g, "99991231235959Z");
        ob_time_format_rfc3339(INT64_MAX, r);
        cr_assert_str_eq(r, "9999-12-31T23:59:59Z");
}

Test(timeparse, format_writes_exactly_the_documented_length)
{
        char g[17], r[22];
        memset(g, 'x', sizeof(g));
        memset(r, 'x', sizeof(r));
        ob_time_format_generalized(T_20261123083316, g);
        ob_time_format_rfc3339(T_20261123083316, r);
        cr_assert_eq(strlen(g), 15);
        cr_assert_eq(g[16], 'x');
        cr_assert_eq(strlen(r), 20);
        cr_assert_eq(r[21], 'x');
}

Test(timeparse, format_then_parse_round_trips_across_the_calendar)
{
        /* Every day boundary of 1999-2001 plus odd seconds, a leap year edge,
         * pre-epoch values and both ends of the printable range. */
        int64_t samples[] = {0, 1, -1, 59, 86399, 86400, INT64_C(951782399), INT64_C(951782400),
                             INT64_C(951868800), T_20261123083316, INT64_C(-11644473600),
                             INT64_C(-62135596800), INT64_C(-62135596799), INT64_C(253402300799)};
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                char buf[16];
                ob_time_format_generalized(samples[i], buf);
                cr_assert_eq(parse_gt(buf), samples[i], "round trip of %lld via %s", (long long)samples[i],
                             buf);
        }
        for (int64_t t = INT64_C(915148800) - 86400; t < INT64_C(1009843200) + 86400; t += 86400 + 7) {
                char buf[16];
                ob_time_format_generalized(t, buf);
                cr_assert_eq(parse_gt(buf), t, "round trip of %lld via %s", (long long)t, buf);
        }
}

Test(timeparse, format_of_a_year_zero_time_parses_back_as_forever_past)
{
        /* Year 0000 is the ppolicy sentinel, whatever the rest of the value. */
        char buf[16];
        ob_time_format_generalized(INT64_C(-62167219199), buf);
        cr_assert_str_eq(buf, "00000101000001Z");
        cr_assert_eq(parse_gt(buf), OB_TIME_FOREVER_PAST);
        ob_time_format_generalized(OB_TIME_FOREVER_PAST, buf);
        cr_assert_eq(parse_gt(buf), OB_TIME_FOREVER_PAST);
}

Test(timeparse, format_rfc3339_agrees_with_generalized)
{
        for (int64_t t = INT64_C(-2208988800); t < INT64_C(4102444800); t += INT64_C(7776000) + 12345) {
                char g[16], r[21], expect[21];
                ob_time_format_generalized(t, g);
                ob_time_format_rfc3339(t, r);
                /* Rebuild the RFC 3339 form from the GeneralizedTime digits. */
                memcpy(expect, g, 4);
                expect[4] = '-';
                memcpy(expect + 5, g + 4, 2);
                expect[7] = '-';
                memcpy(expect + 8, g + 6, 2);
                expect[10] = 'T';
                memcpy(expect + 11, g + 8, 2);
                expect[13] = ':';
                memcpy(expect + 14, g + 10, 2);
                expect[16] = ':';
                memcpy(expect + 17, g + 12, 2);
                expect[19] = 'Z';
                expect[20] = '\0';
                cr_assert_str_eq(r, expect);
        }
}
