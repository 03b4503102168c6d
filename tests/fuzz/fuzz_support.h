/* fuzz_support.h: what every harness under tests/fuzz/ shares.
 *
 * A harness is one LLVMFuzzerTestOneInput per parser (OpenSSH's
 * regress/misc/fuzz-harness style). It frees everything it allocated before
 * returning, and calls ob_fuzz_fail() when an oracle does not hold: that
 * prints the reason on stderr and abort()s, so libFuzzer keeps a reproducer
 * and the replay test fails.
 *
 * The JSON checker is strict RFC 8259 (no leading '+', no leading zeros, no
 * control characters in strings, well-formed UTF-8, nothing after the value),
 * small enough to trust as an oracle, and independent of the code under test.
 */
#ifndef OB_FUZZ_SUPPORT_H
#define OB_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "oracle failed: ..." on stderr and aborts. */
void ob_fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints n bytes of p on stderr, C-escaped, after a label (for failure messages). */
void ob_fuzz_dump(const char *label, const void *p, size_t n);

/* An anonymous in-memory file holding n bytes at p, rewound; its path
 * "/proc/self/fd/N" goes to path (at least 32 bytes). Returns the fd
 * (close it) or a negative errno. */
int ob_fuzz_memfd(const char *name, const void *p, size_t n, char *path, size_t pathlen);

/* Whether p[0..n) is exactly one JSON value (RFC 8259), surrounding
 * whitespace allowed. Nesting deeper than 512 counts as invalid. */
bool ob_fuzz_json_valid(const char *p, size_t n);

/* Decodes the JSON string literal p[0..n) (quotes included) into out.
 * Returns 0, or -EINVAL when it is not exactly one valid string literal. */
int ob_fuzz_json_string(const char *p, size_t n, struct ob_buf *out);

/* Percent-decodes p[0..n) into out; -EINVAL on a malformed %XX. */
int ob_fuzz_percent_decode(const char *p, size_t n, struct ob_buf *out);

/* Whether p[0..n) is well-formed UTF-8 (RFC 3629). */
bool ob_fuzz_utf8_valid(const char *p, size_t n);

/* memmem that is fine with n == 0. */
const void *ob_fuzz_memmem(const void *hay, size_t hn, const void *needle, size_t nn);

#endif
