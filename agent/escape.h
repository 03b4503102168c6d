/* escape.h: directory values are hostile data; each function escapes for
 * exactly one place a value can land. All append to an ob_buf and return 0,
 * -ENOMEM, or -OB_ETEMPLATE when the value cannot be placed there safely.
 */
#ifndef OB_ESCAPE_H
#define OB_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* One URL path segment (RFC 3986): everything but unreserved
 * (ALPHA DIGIT - . _ ~) is percent-encoded, "/" included, so a value can never
 * add a segment. An empty value, "." and ".." are refused (-OB_ETEMPLATE):
 * each would address another resource (a collection, or a parent). */
int ob_escape_path_segment(struct ob_buf *b, const char *s, size_t n);

/* One query component (key or value) in application/x-www-form-urlencoded
 * style: unreserved kept, space as %20, everything else percent-encoded. */
int ob_escape_query(struct ob_buf *b, const char *s, size_t n);

/* Contents of a JSON string (without the quotes), RFC 8259: ", \ and control
 * characters escaped; invalid UTF-8 is refused with -OB_ETEMPLATE. */
int ob_escape_json(struct ob_buf *b, const char *s, size_t n);

/* An HTTP header value: refused (-OB_ETEMPLATE) if it holds CR, LF, NUL or any
 * other control character except horizontal tab; otherwise copied as is. */
int ob_escape_header(struct ob_buf *b, const char *s, size_t n);

/* An LDAP filter assertion value, RFC 4515: * ( ) \ NUL as \2a \28 \29 \5c \00,
 * plus every byte >= 0x80 is kept as is (UTF-8). */
int ob_escape_ldap_filter(struct ob_buf *b, const char *s, size_t n);

/* An attribute value in a DN, RFC 4514 section 2.4; NUL and every other
 * control character as a hex pair (\09), which parsers never trim. */
int ob_escape_dn_value(struct ob_buf *b, const char *s, size_t n);

/* Text for a terminal (the text report): every control character, C0 (tab
 * and newline included), DEL and C1, the Unicode bidirectional and line
 * separator controls, and every byte that is not valid UTF-8 become \xNN
 * (or \u202E); a backslash becomes \\. Never fails on content. */
int ob_escape_text(struct ob_buf *b, const char *s, size_t n);

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlongs, surrogates, values above U+10FFFF or truncated sequences), or 0. */
size_t ob_utf8_sequence(const unsigned char *s, size_t n);

/* Whether s is a distinguished name in the string form of RFC 4514
 * (attributeType=value pairs joined by ',' or '+', specials escaped). A
 * syntax check only, without libldap, so the configuration can tell "trent"
 * from "uid=trent,ou=people,dc=example,dc=org". */
bool ob_dn_syntax_ok(const char *s);

/* Mask a secret for display: always "***". */
#define OB_MASK "***"

#endif
