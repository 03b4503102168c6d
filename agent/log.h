/* log.h: one structured line per event on stderr (journald picks it up).
 *
 *   ob_log(OB_LOG_WARNING, "event=bind_failed uri=%s error=\"%s\"", ...)
 *
 * Lines are logfmt: "time=RFC3339 run=ID level=... " followed by the
 * caller's key=value pairs; run is random per process, so one run's lines
 * can be found together. Under journald (JOURNAL_STREAM names stderr) a
 * line goes through libsystemd with its priority and each key=value as a
 * field OFFBOARD_KEY (journalctl -p warning, OFFBOARD_EVENT=pass_end);
 * without journald's socket, to the stream with a "<N>" priority prefix and
 * no time. A line over 2 KiB loses its end, never half a
 * UTF-8 character. Values that come from outside go through
 * ob_log_quote(). Secrets are never passed here.
 */
#ifndef OB_LOG_H
#define OB_LOG_H

#include <stdbool.h>

enum ob_log_level { OB_LOG_ERROR, OB_LOG_WARNING, OB_LOG_INFO, OB_LOG_DEBUG };

void ob_log_set_level(enum ob_log_level level);
/* While quiet, errors and warnings are logged as debug: what a retry of an
 * outage already logged once says again (the service's feed). */
void ob_log_set_quiet(bool quiet); /* for the calling thread */
bool ob_log_is_quiet(void);
void ob_log(enum ob_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether ob_log would write a line of this level: for a line whose values
 * cost something to compute (debug lines on a pass's path). */
bool ob_log_enabled(enum ob_log_level level);
/* Quotes a value for a log line: "..." with \" \\ and control characters as
 * \xNN; truncated after about 240 bytes (with "..."), on a UTF-8 boundary.
 * Returns a pointer into one of 4 rotating buffers of the calling thread
 * (valid for the current log call: at most 4 quoted values per line). */
const char *ob_log_quote(const char *s);

#endif
