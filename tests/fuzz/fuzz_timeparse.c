/* fuzz_timeparse.c: the directory time parsers (agent/timeparse.h).
 *
 * The input, up to its first NUL, goes to every parser: no crash, no
 * undefined behaviour (UBSan catches overflow in the calendar arithmetic).
 * Oracles: a GeneralizedTime that parses to a time the formatter can print
 * (years 0001-9999) prints and parses back to the same second; and the first
 * 8 input bytes as a time in that range round-trip through
 * ob_time_format_generalized and ob_time_parse_generalized.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "timeparse.h"

/* 0001-01-01T00:00:00Z (year 0 parses as OB_TIME_FOREVER_PAST) and
 * 9999-12-31T23:59:59Z. */
#define MIN_T INT64_C(-62135596800)
#define MAX_T INT64_C(253402300799)

static void round_trip(int64_t t)
{
        char buf[16], rfc[21];
        int64_t back;
        ob_time_format_generalized(t, buf);
        ob_time_format_rfc3339(t, rfc);
        if (strlen(buf) != 15 || strlen(rfc) != 20)
                ob_fuzz_fail("timeparse: %lld formats as '%s' / '%s'", (long long)t, buf, rfc);
        int r = ob_time_parse_generalized(buf, &back);
        if (r != 0 || back != t)
                ob_fuzz_fail("timeparse: %lld formats as '%s', which parses as %lld (r=%d)", (long long)t, buf,
                             (long long)back, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);
        int64_t t;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        if (ob_time_parse_generalized(s, &t) == 0 && t >= MIN_T && t <= MAX_T)
                round_trip(t);
        (void)ob_time_parse_filetime(s, &t);
        (void)ob_time_parse_days(s, &t);

        if (size >= 8) {
                uint64_t u = 0;
                for (int i = 0; i < 8; i++)
                        u = u << 8 | data[i];
                /* Fold into the printable range so most inputs test something. */
                t = MIN_T + (int64_t)(u % (uint64_t)(MAX_T - MIN_T + 1));
                round_trip(t);
                char buf[16];
                ob_time_format_generalized((int64_t)u, buf); /* clamps, never overflows */
        }
        free(s);
        return 0;
}
