/* scrub.h: removes secrets from text a server or a library hands back (a
 * response body, curl's error text) before it can reach a log, the state
 * store or a report.
 *
 * A scrubber holds a set of secrets and scrubs one stream. For each secret it
 * derives the forms in which a server is likely to echo it:
 *
 *   - the raw bytes;
 *   - JSON-escaped: " and \ as \" and \\ (control characters as \u00xx), once
 *     with / kept and once with / as \/; and once with every non-alphanumeric
 *     ASCII byte as \u00xx;
 *   - base64, standard and URL-safe alphabets, each with and without padding;
 *   - percent-encoded: everything but ALPHA DIGIT - . _ ~ as %XX, with upper-
 *     and lower-case hex digits, and with a space as "+" (form encoding).
 *
 * Identical forms are kept once. The output is the input with these changes,
 * applied left to right, at each position taking the longest match:
 *
 *   1. every complete occurrence of a form becomes "***";
 *   2. every run of 8 or more bytes that occurs anywhere inside a form (a
 *      truncated or partial echo, a prefix in particular) becomes "***";
 *   3. when the input ends, a trailing run (shorter than 8 bytes, else rule 2
 *      applies) that is the start of a form is dropped: the body was cut or
 *      ended in the middle of an echo. Then the output does not end with
 *      the start of a form either (after the last "***"), full or not: the
 *      tail is dropped until it does not.
 *
 * So the output never holds a whole form, nor 8 consecutive input bytes of
 * one. The output is at most max_out bytes; a "***" that does not fit is cut,
 * and when the output is full the rest of the input is ignored (feeding more
 * is cheap: the caller may keep feeding). When the output was cut, an
 * incomplete UTF-8 sequence at its end is removed.
 *
 * Every input byte passes through the matcher (nothing is scrubbed after a
 * truncation), with a look-ahead of the longest form. Memory: max_out plus
 * twice the longest form, plus the forms. All buffers are wiped before they
 * are freed. A scrubber is not thread-safe.
 */
#ifndef OB_SCRUB_H
#define OB_SCRUB_H

#include <stdbool.h>
#include <stddef.h>

#define OB_SCRUB_MAX_SECRET 4096 /* bytes per secret */
#define OB_SCRUB_MAX_SECRETS 256 /* secrets per scrubber */
#define OB_SCRUB_MIN_PIECE 8     /* rule 2: shortest partial echo scrubbed */

struct ob_scrub;

/* A scrubber whose output holds at most max_out bytes (max_out > 0).
 * Returns 0, -EINVAL or -ENOMEM. */
int ob_scrub_new(size_t max_out, struct ob_scrub **ret);

/* A scrubber for one more stream that knows proto's secrets and shares
 * their forms (one allocation, nothing derived again): proto must outlive
 * it, and takes no secret from now on (ob_scrub_add_secret: -EINVAL).
 * Returns 0, -EINVAL or -ENOMEM. */
int ob_scrub_new_like(struct ob_scrub *proto, size_t max_out, struct ob_scrub **ret);

/* Adds a secret (n bytes, may hold any byte) and its derived forms. An empty
 * secret adds nothing. Must be called before the first ob_scrub_feed().
 * Returns 0, -EINVAL (s NULL or already fed), -OB_ELIMIT (secret longer than
 * OB_SCRUB_MAX_SECRET, or more than OB_SCRUB_MAX_SECRETS secrets) or -ENOMEM;
 * on error the scrubber is unchanged. */
int ob_scrub_add_secret(struct ob_scrub *s, const char *secret, size_t n);

/* Adds base64("user:password") (HTTP basic credentials) as a secret of its
 * own, with and without its "=" padding, each with its derived forms. The
 * password itself is not added; add it with ob_scrub_add_secret(). Returns
 * like ob_scrub_add_secret(). */
int ob_scrub_add_basic(struct ob_scrub *s, const char *user, const char *password);

/* Feeds the next n bytes of the stream. Never fails; ignored after
 * ob_scrub_finish() and once the output is full. */
void ob_scrub_feed(struct ob_scrub *s, const char *p, size_t n);

/* True once the output is full: whatever is fed later is dropped. */
bool ob_scrub_full(const struct ob_scrub *s);

/* Ends the stream (rule 3 applies to what is held back) and copies the output
 * to out: at most outlen - 1 bytes plus a NUL (outlen > 0; pass max_out + 1 to
 * get all of it). Returns the number of bytes copied, without the NUL. May be
 * called again; the stream stays finished. */
size_t ob_scrub_finish(struct ob_scrub *s, char *out, size_t outlen);

/* Scrubs a short string in one go with the secrets of s (its own stream is
 * not touched): out gets at most outlen - 1 bytes and a NUL. Returns the
 * length written, or -ENOMEM / -EINVAL (outlen 0); on error out holds "". */
int ob_scrub_text(const struct ob_scrub *s, const char *in, size_t n, char *out, size_t outlen);

/* Wipes and frees; NULL is fine. */
void ob_scrub_free(struct ob_scrub *s);
static inline void ob_scrub_freep(struct ob_scrub **s)
{
        ob_scrub_free(*s);
}
#define _cleanup_scrub_ __attribute__((cleanup(ob_scrub_freep)))

#endif
