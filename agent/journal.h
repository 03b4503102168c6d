/* journal.h: the audit journal, append-only JSON lines.
 *
 * One line per event: an "attempt" before an action is started, an "outcome"
 * when it ends, and whatever else the engine decides to record ("held",
 * "adopted"). A line is one JSON object followed by "\n", for example
 *
 *   {"time":"2026-12-02T10:00:00.123Z","event":"outcome","account_id":"42",
 *    "username":"jdoe","transition":"leave","generation":3,"action":"revoke",
 *    "connector":"http","idempotency_key":"k-42-3-revoke","attempt":1,
 *    "result":"failed","http_status":503,"error":"Service Unavailable",
 *    "duration_ms":212}
 *
 * (shown folded; a real line never holds a newline). "time" comes first,
 * the other keys follow in the order of struct ob_journal_entry; a field that
 * is NULL or "not applicable" (see the struct) is left out, "time" and
 * "event" never are.
 *
 * Values:
 *   - every line is valid JSON (RFC 8259) and valid UTF-8. Strings are escaped
 *     with ob_escape_json(); a byte that is not part of well-formed UTF-8 is
 *     written as \u00XX, XX being the byte (valid UTF-8 is written verbatim,
 *     so in the raw line an escaped \u0080..\u00ff always marks such a byte);
 *   - a line is at most OB_JOURNAL_LINE_MAX bytes, newline included: each
 *     string but "error" is cut at OB_JOURNAL_FIELD_MAX escaped bytes (the dn
 *     at twice that), "error" at whatever is left of the line; a cut is made
 *     between two characters (never inside a UTF-8 sequence or an escape)
 *     and marked by a trailing "...";
 *   - no secret: the journal cannot tell one, so callers pass only what
 *     they would store in the state (error texts through the scrubber,
 *     scrub.h).
 *
 * Files: ob_journal_open() creates the file with mode 0600 and never follows
 * a symbolic link; it refuses a file that is not a regular file, is owned by
 * another user or is writable by group or others, writing nothing to it.
 * The directory is the caller's business (the service's StateDirectory= or
 * LogsDirectory=, mode 0700). Rotation: logrotate renames the file, then
 * SIGHUP makes the agent call ob_journal_reopen(), which creates a new one.
 *
 * Concurrency: each line goes out whole in one write(2) to an O_APPEND
 * descriptor, so processes appending to the same file (the service and a
 * one-shot `offboard retry`, say) never interleave inside a line. While the
 * journal is held (ob_journal_hold), the lines appended gather in memory (at
 * most OB_JOURNAL_HOLD_MAX bytes) and go out together in one write(2) at the
 * next ob_journal_flush(), sync(), reopen() or free(): the executor holds
 * the lines of one loop turn and flushes them at the end of the turn, before
 * the records of that turn go to the state store, so an attempt's line is
 * in the file before its intent is committed and its request leaves, and an
 * outcome's line before its outcome is committed. A struct ob_journal is
 * used from one thread (the loop's).
 *
 * Durability: append() leaves the line in the page cache; ob_journal_sync()
 * (fdatasync) is for the caller's group-commit points, e.g. after a pass or
 * before recording a durable outcome in the state store.
 *
 * Errors: 0 or a negative errno; nothing is logged. A write that fails loses
 * the lines it held (all of them when they were held), and says so. After a short write (disk
 * full in the middle of a line) the journal ends the torn line with a
 * newline, at once or, if that fails too, at the start of the next line it
 * writes, so that the next line starts clean. Readers skip a line that does
 * not parse (a torn one; or an empty one, if another process wrote after a
 * torn line before it was ended).
 */
#ifndef OB_JOURNAL_H
#define OB_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

/* Longest line, newline included, and the cut for each short string field
 * (escaped bytes, the trailing "..." included). */
#define OB_JOURNAL_LINE_MAX 8192
#define OB_JOURNAL_FIELD_MAX 512
/* Held lines (ob_journal_hold) written at once when they reach this size. */
#define OB_JOURNAL_HOLD_MAX (64 * 1024)

struct ob_journal;

/* Opens the journal at path for appending, creating it with mode 0600
 * (O_APPEND|O_CLOEXEC|O_NOFOLLOW). Returns -ELOOP if path is a symbolic link,
 * -EPERM if it is not a regular file, is owned by a user other than the
 * effective one or is writable by group or others (nothing is written then),
 * -ENOMEM, or the -errno of open(2). */
int ob_journal_open(const char *path, struct ob_journal **ret);

/* Opens the same path again (after logrotate moved the file away: a new file
 * is created) with the checks of ob_journal_open(). On success the old
 * descriptor is closed; on failure it is kept (lines go on to the old file)
 * and the error is returned. */
int ob_journal_reopen(struct ob_journal *j);

/* Closes the journal. NULL is accepted. Does not sync. */
void ob_journal_free(struct ob_journal *j);

/* One line. Strings are borrowed for the call only. */
struct ob_journal_entry {
        const char *event; /* required: "attempt" | "outcome" | "held" | "adopted" | ... (a short word) */
        int64_t time_ms;   /* wall clock, ms since 1970; 0: now. Written as "2026-12-02T10:00:00.123Z" */
        const char *account_id;
        const char *username;
        const char *dn;
        const char *transition;
        int64_t generation; /* 0: none (generations start at 1) */
        const char *action;
        const char *connector;
        const char *idempotency_key;
        int attempt;         /* 1-based attempt number; 0: not applicable */
        const char *result;  /* "done" | "failed" | "skipped" | "held" | "interrupted"; NULL for an attempt */
        long http_status;    /* 0: none */
        const char *error;   /* NULL: none; already scrubbed */
        int64_t duration_ms; /* written only with a result, and only when >= 0 (-1: not applicable) */
};

/* Appends one line with a single write(2), or, while the journal is held,
 * keeps it for the next flush (writing what was held first when it would
 * outgrow OB_JOURNAL_HOLD_MAX). Returns 0, -EINVAL (no event, or a
 * time before 1970 or after 9999), -ENOMEM, or the -errno of write(2)
 * (-ENOSPC, -EFBIG, -EDQUOT, ...). After a short write the line is torn: the
 * errno comes from the write of the newline that ends it, or is -EIO if that
 * write succeeded. */
int ob_journal_append(struct ob_journal *j, const struct ob_journal_entry *e);

/* Held or not: while held, lines are written by ob_journal_flush() (and by
 * sync, reopen and free), not by append. Releasing the hold does not flush. */
void ob_journal_hold(struct ob_journal *j, bool hold);
/* Writes the held lines in one write(2). 0, or the error of append's write. */
int ob_journal_flush(struct ob_journal *j);

/* fdatasync(2): every line appended so far (held ones written first) is on
 * disk. 0 or -errno. */
int ob_journal_sync(struct ob_journal *j);

#endif
