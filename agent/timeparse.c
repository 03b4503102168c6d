/* timeparse.c: GeneralizedTime, AD FILETIME and shadow day counts as Unix
 * seconds, and the two UTC formats offboard writes.
 *
 * No libc time function is used: mktime and friends depend on TZ, and the
 * calendar arithmetic is small enough to do here (Howard Hinnant's
 * days_from_civil / civil_from_days, proleptic Gregorian calendar).
 */
#include "timeparse.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#define SECS_PER_DAY INT64_C(86400)

/* FILETIME counts 100 ns ticks from 1601-01-01; this many ticks is 1970-01-01. */
#define FILETIME_UNIX_EPOCH INT64_C(116444736000000000)
#define FILETIME_TICKS_PER_SEC INT64_C(10000000)

/* The range the formatters can print: 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z. Values outside are clamped to the nearest end. */
#define FORMAT_MIN INT64_C(-62167219200)
#define FORMAT_MAX INT64_C(253402300799)

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
        static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (m == 2 && is_leap(y))
                return 29;
        return days[m - 1];
}

/* Days since 1970-01-01 of a civil date (m 1-12, d 1-31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;                                    /* [0, 399] */
        int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* [0, 365] */
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* [0, 146096] */
        return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m, int *ret_d)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *ret_d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *ret_m = m;
        *ret_y = yoe + era * 400 + (m <= 2);
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Reads exactly n decimal digits; stops safely at the terminating NUL. */
static bool read_digits(const char *p, int n, int *ret)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!is_digit(p[i]))
                        return false;
                v = v * 10 + (p[i] - '0');
        }
        *ret = v;
        return true;
}

/* floor(0.<digits> * unit), exactly, however many digits there are: long
 * multiplication from the last digit, keeping only the carry. The carry stays
 * below unit, so nothing overflows. */
static int64_t fraction_of(const char *digits, size_t n, int64_t unit)
{
        int64_t carry = 0;
        for (size_t i = n; i-- > 0;)
                carry = ((digits[i] - '0') * unit + carry) / 10;
        return carry;
}

int ob_time_parse_generalized(const char *s, int64_t *ret)
{
        if (!s)
                return -EINVAL;

        const char *p = s;
        int year, mon, day, hour, min = 0, sec = 0;
        int64_t unit = 3600; /* seconds in the last unit present */

        if (!read_digits(p, 4, &year) || !read_digits(p + 4, 2, &mon) || !read_digits(p + 6, 2, &day) ||
            !read_digits(p + 8, 2, &hour))
                return -EINVAL;
        p += 10;
        if (read_digits(p, 2, &min)) {
                p += 2;
                unit = 60;
                if (read_digits(p, 2, &sec)) {
                        p += 2;
                        unit = 1;
                }
        }

        int64_t frac = 0;
        if (*p == '.' || *p == ',') {
                const char *f = ++p;
                while (is_digit(*p))
                        p++;
                if (p == f)
                        return -EINVAL;
                frac = fraction_of(f, (size_t)(p - f), unit);
        }

        int64_t offset = 0;
        if (*p == 'Z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1;
                int oh, om = 0;
                p++;
                if (!read_digits(p, 2, &oh) || oh > 23)
                        return -EINVAL;
                p += 2;
                if (read_digits(p, 2, &om)) {
                        if (om > 59)
                                return -EINVAL;
                        p += 2;
                }
                offset = sign * (oh * INT64_C(3600) + om * INT64_C(60));
        } else {
                return -EINVAL; /* a time without a zone is local time: refused */
        }
        if (*p != '\0')
                return -EINVAL;

        /* Leap second 60 is refused rather than folded: no directory we read
         * writes one, and accepting it would make two strings the same time. */
        if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
            sec > 59)
                return -EINVAL;

        if (year == 0) {
                *ret = OB_TIME_FOREVER_PAST;
                return 0;
        }

        *ret = days_from_civil(year, mon, day) * SECS_PER_DAY + hour * INT64_C(3600) + min * INT64_C(60) + sec +
               frac - offset;
        return 0;
}

/* Unsigned decimal digits only (no sign, no space), at most INT64_MAX. */
static int parse_decimal(const char *s, int64_t *ret)
{
        if (!s || !*s)
                return -EINVAL;
        int64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (!is_digit(*p))
                        return -EINVAL;
                int d = *p - '0';
                if (v > (INT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int ob_time_parse_filetime(const char *s, int64_t *ret)
{
        int64_t ticks;
        int r = parse_decimal(s, &ticks);
        if (r < 0)
                return r;
        if (ticks == 0 || ticks == INT64_MAX)
                return 1;
        /* ticks >= 0, so division truncates and floors alike; subtracting
         * whole seconds keeps the floor for dates before 1970 too. */
        *ret = ticks / FILETIME_TICKS_PER_SEC - FILETIME_UNIX_EPOCH / FILETIME_TICKS_PER_SEC;
        return 0;
}

int ob_time_parse_days(const char *s, int64_t *ret)
{
        if (!s)
                return -EINVAL;
        if (s[0] == '\0' || (s[0] == '-' && s[1] == '1' && s[2] == '\0'))
                return 1;
        int64_t days;
        int r = parse_decimal(s, &days);
        if (r < 0)
                return r;
        if (days == 0)
                return 1;
        if (days > INT64_MAX / SECS_PER_DAY)
                return -EINVAL;
        *ret = days * SECS_PER_DAY;
        return 0;
}

struct civil {
        int year, mon, day, hour, min, sec;
};

static struct civil civil_from_unix(int64_t t)
{
        if (t < FORMAT_MIN)
                t = FORMAT_MIN;
        if (t > FORMAT_MAX)
                t = FORMAT_MAX;
        int64_t days = t / SECS_PER_DAY;
        int64_t secs = t % SECS_PER_DAY;
        if (secs < 0) {
                secs += SECS_PER_DAY;
                days--;
        }
        int64_t y;
        struct civil c;
        civil_from_days(days, &y, &c.mon, &c.day);
        c.year = (int)y;
        c.hour = (int)(secs / 3600);
        c.min = (int)(secs / 60 % 60);
        c.sec = (int)(secs % 60);
        return c;
}

/* Writes v as exactly width decimal digits (v is known to fit). */
static char *put_digits(char *p, int v, int width)
{
        for (int i = width - 1; i >= 0; i--) {
                p[i] = (char)('0' + v % 10);
                v /= 10;
        }
        return p + width;
}

void ob_time_format_generalized(int64_t t, char buf[static 16])
{
        struct civil c = civil_from_unix(t);
        char *p = buf;
        p = put_digits(p, c.year, 4);
        p = put_digits(p, c.mon, 2);
        p = put_digits(p, c.day, 2);
        p = put_digits(p, c.hour, 2);
        p = put_digits(p, c.min, 2);
        p = put_digits(p, c.sec, 2);
        *p++ = 'Z';
        *p = '\0';
}

void ob_time_format_rfc3339(int64_t t, char buf[static 21])
{
        struct civil c = civil_from_unix(t);
        char *p = buf;
        p = put_digits(p, c.year, 4);
        *p++ = '-';
        p = put_digits(p, c.mon, 2);
        *p++ = '-';
        p = put_digits(p, c.day, 2);
        *p++ = 'T';
        p = put_digits(p, c.hour, 2);
        *p++ = ':';
        p = put_digits(p, c.min, 2);
        *p++ = ':';
        p = put_digits(p, c.sec, 2);
        *p++ = 'Z';
        *p = '\0';
}
