/* timeparse.h: the time formats directories use for status attributes.
 *
 * All results are seconds since the Unix epoch (UTC). Functions return 0,
 * -EINVAL for a malformed value, or 1 for a "never" sentinel (ret untouched).
 */
#ifndef OB_TIMEPARSE_H
#define OB_TIMEPARSE_H

#include <stdint.h>

/* RFC 4517 GeneralizedTime: YYYYMMDDHH[MM[SS]][(.|,)frac](Z|(+|-)HH[MM]).
 * A fraction applies to the last unit present and is truncated to whole
 * seconds. The ppolicy value 000001010000Z (locked by an administrator,
 * "forever") parses as year 0: it returns 0 with *ret = OB_TIME_FOREVER_PAST. */
#define OB_TIME_FOREVER_PAST INT64_MIN
int ob_time_parse_generalized(const char *s, int64_t *ret);

/* AD FILETIME as decimal text: 100 ns intervals since 1601-01-01 UTC. 0 and
 * 0x7FFFFFFFFFFFFFFF (9223372036854775807) mean never and return 1. */
int ob_time_parse_filetime(const char *s, int64_t *ret);

/* shadowExpire: days since 1970-01-01. Empty, -1 and 0 mean never (return 1)
 * as shadow-utils treat them (expire > 0). */
int ob_time_parse_days(const char *s, int64_t *ret);

/* Formats t as GeneralizedTime "YYYYMMDDHHMMSSZ" into buf (at least 16 bytes). */
void ob_time_format_generalized(int64_t t, char buf[static 16]);
/* Formats t as RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void ob_time_format_rfc3339(int64_t t, char buf[static 21]);

#endif
