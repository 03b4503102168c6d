/* escape.c: one escaper per place a directory value can land.
 *
 * Every function appends to b. A value that is refused (-OB_ETEMPLATE) is
 * checked in full before anything is appended, so it never leaves half of
 * itself in a rendered request; after -ENOMEM the buffer is dead anyway
 * (ob_buf.oom is sticky).
 */
#include "escape.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static bool is_unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~';
}

/* Percent-encodes all but the unreserved set, with upper-case hex
 * (RFC 3986 section 2.1). */
static int percent_encode(struct ob_buf *b, const char *s, size_t n)
{
        size_t i = 0;
        while (i < n) {
                size_t run = i;
                while (run < n && is_unreserved((unsigned char)s[run]))
                        run++;
                if (run > i) {
                        int r = ob_buf_add(b, s + i, run - i);
                        if (r < 0)
                                return r;
                        i = run;
                        continue;
                }
                unsigned char c = (unsigned char)s[i++];
                char enc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 0xF]};
                int r = ob_buf_add(b, enc, sizeof(enc));
                if (r < 0)
                        return r;
        }
        return 0;
}

int ob_escape_path_segment(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        /* An empty segment turns /users/{id}/x into /users//x, which servers
         * and proxies may collapse into a different resource: refused. */
        if (n == 0)
                return -OB_ETEMPLATE;
        /* "." and ".." are removed by dot-segment removal (RFC 3986
         * section 5.2.4), and proxies and servers also decode %2E before
         * normalising, so an encoded form would still move the request to
         * another resource: refused like an empty value. */
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return -OB_ETEMPLATE;
        return percent_encode(b, s, n);
}

int ob_escape_query(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        return percent_encode(b, s, n);
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not
 * one (RFC 3629 section 4: no overlongs, no surrogates, nothing above
 * U+10FFFF, no truncated sequence). */
size_t ob_utf8_sequence(const unsigned char *s, size_t n)
{
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0)
                        lo = 0x90; /* overlong */
                else if (c == 0xF4)
                        hi = 0x8F; /* above U+10FFFF */
        } else {
                return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xBF)
                        return 0;
        return len;
}

static bool json_plain(unsigned char c)
{
        return c >= 0x20 && c != '"' && c != '\\' && c < 0x80;
}

int ob_escape_json(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        const unsigned char *u = (const unsigned char *)s;

        /* Validate first: a refused value appends nothing. */
        for (size_t i = 0; i < n;) {
                size_t k = ob_utf8_sequence(u + i, n - i);
                if (k == 0)
                        return -OB_ETEMPLATE;
                i += k;
        }

        size_t i = 0;
        while (i < n) {
                size_t run = i;
                while (run < n && json_plain(u[run]))
                        run++;
                if (run > i) {
                        int r = ob_buf_add(b, s + i, run - i);
                        if (r < 0)
                                return r;
                        i = run;
                        continue;
                }

                unsigned char c = u[i];
                char esc[6];
                size_t len = 2;
                size_t consumed = 1;
                esc[0] = '\\';
                switch (c) {
                case '"': esc[1] = '"'; break;
                case '\\': esc[1] = '\\'; break;
                case '\b': esc[1] = 'b'; break;
                case '\f': esc[1] = 'f'; break;
                case '\n': esc[1] = 'n'; break;
                case '\r': esc[1] = 'r'; break;
                case '\t': esc[1] = 't'; break;
                default:
                        if (c < 0x20) {
                                esc[1] = 'u';
                                esc[2] = '0';
                                esc[3] = '0';
                                esc[4] = hex_lower[c >> 4];
                                esc[5] = hex_lower[c & 0xF];
                                len = 6;
                                break;
                        }
                        /* Non-ASCII, already validated. U+2028 and U+2029
                         * (E2 80 A8 / E2 80 A9) are legal JSON but end a line
                         * in JavaScript, so they are escaped too. */
                        consumed = ob_utf8_sequence(u + i, n - i);
                        if (consumed == 3 && c == 0xE2 && u[i + 1] == 0x80 &&
                            (u[i + 2] == 0xA8 || u[i + 2] == 0xA9)) {
                                esc[1] = 'u';
                                esc[2] = '2';
                                esc[3] = '0';
                                esc[4] = '2';
                                esc[5] = u[i + 2] == 0xA8 ? '8' : '9';
                                len = 6;
                        } else {
                                /* Copy the character verbatim. */
                                int r = ob_buf_add(b, s + i, consumed);
                                if (r < 0)
                                        return r;
                                i += consumed;
                                continue;
                        }
                        break;
                }
                int r = ob_buf_add(b, esc, len);
                if (r < 0)
                        return r;
                i += consumed;
        }
        return 0;
}

int ob_escape_header(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c < 0x20 && c != '\t') || c == 0x7F)
                        return -OB_ETEMPLATE;
        }
        return ob_buf_add(b, s, n);
}

static bool ldap_filter_special(unsigned char c)
{
        return c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0';
}

int ob_escape_ldap_filter(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        size_t i = 0;
        while (i < n) {
                size_t run = i;
                while (run < n && !ldap_filter_special((unsigned char)s[run]))
                        run++;
                if (run > i) {
                        int r = ob_buf_add(b, s + i, run - i);
                        if (r < 0)
                                return r;
                        i = run;
                        continue;
                }
                unsigned char c = (unsigned char)s[i++];
                char enc[3] = {'\\', hex_lower[c >> 4], hex_lower[c & 0xF]};
                int r = ob_buf_add(b, enc, sizeof(enc));
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool dn_special(unsigned char c)
{
        return c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=';
}

static bool is_hex(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool ob_dn_syntax_ok(const char *s)
{
        if (!s || !*s)
                return false;
        const unsigned char *p = (const unsigned char *)s;
        for (;;) {
                /* attributeType: a descr or a numericoid (a space after a
                 * separator is tolerated, as libldap does). */
                while (*p == ' ')
                        p++;
                const unsigned char *type = p;
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
                        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                               *p == '-')
                                p++;
                } else {
                        while ((*p >= '0' && *p <= '9') || (*p == '.' && p > type && p[1] >= '0' && p[1] <= '9'))
                                p++;
                }
                if (p == type || *p != '=')
                        return false;
                p++;
                /* attributeValue: #hexstring, or a string whose specials are
                 * escaped (\ followed by a special or two hex digits). */
                if (*p == '#') {
                        const unsigned char *h = ++p;
                        while (is_hex(p[0]) && is_hex(p[1]))
                                p += 2;
                        if (p == h)
                                return false;
                } else {
                        while (*p && *p != ',' && *p != '+') {
                                if (*p == '\\') {
                                        if (is_hex(p[1]) && is_hex(p[2]))
                                                p += 3;
                                        else if (p[1] && (dn_special(p[1]) || p[1] == ' ' || p[1] == '#'))
                                                p += 2;
                                        else
                                                return false;
                                } else if (*p == '"' || *p == ';' || *p == '<' || *p == '>' || *p == '=') {
                                        return false;
                                } else {
                                        p++;
                                }
                        }
                }
                if (!*p)
                        return true;
                if (*p != ',' && *p != '+')
                        return false;
                p++;
        }
}

int ob_escape_dn_value(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                int r;
                if (c < 0x20 || c == 0x7f) {
                        /* NUL and every control character as a hex pair:
                         * parsers trim a leading or trailing tab or newline. */
                        char enc[3] = {'\\', hex_upper[c >> 4], hex_upper[c & 0xF]};
                        r = ob_buf_add(b, enc, sizeof(enc));
                } else if (dn_special(c) || (i == 0 && (c == ' ' || c == '#')) || (i == n - 1 && c == ' ')) {
                        char enc[2] = {'\\', (char)c};
                        r = ob_buf_add(b, enc, sizeof(enc));
                } else {
                        size_t run = i + 1;
                        /* Copy the plain bytes up to the next special one or the
                         * last byte (which may be a trailing space). */
                        while (run < n - 1 && (unsigned char)s[run] >= 0x20 && s[run] != 0x7f &&
                               !dn_special((unsigned char)s[run]))
                                run++;
                        r = ob_buf_add(b, s + i, run - i);
                        i = run - 1;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The code point of a well-formed sequence of len bytes. */
static uint32_t utf8_decode(const unsigned char *s, size_t len)
{
        static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
        uint32_t cp = s[0] & lead_mask[len];
        for (size_t i = 1; i < len; i++)
                cp = (cp << 6) | (s[i] & 0x3F);
        return cp;
}

/* Code points a terminal acts on or that reorder what is shown. */
static bool text_control(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x200E || cp == 0x200F ||
               (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061C;
}

int ob_escape_text(struct ob_buf *b, const char *s, size_t n)
{
        if (!s && n)
                return -EINVAL;
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0;
        while (i < n) {
                size_t len = ob_utf8_sequence(u + i, n - i);
                uint32_t cp = len ? utf8_decode(u + i, len) : 0;
                int r;
                if (len == 0) {
                        char enc[4] = {'\\', 'x', hex_lower[u[i] >> 4], hex_lower[u[i] & 0xF]};
                        r = ob_buf_add(b, enc, sizeof(enc));
                        len = 1;
                } else if (cp == '\\') {
                        r = ob_buf_add(b, "\\\\", 2);
                } else if (text_control(cp)) {
                        if (cp < 0x100) {
                                char enc[4] = {'\\', 'x', hex_lower[cp >> 4], hex_lower[cp & 0xF]};
                                r = ob_buf_add(b, enc, sizeof(enc));
                        } else {
                                r = ob_buf_printf(b, "\\u%04X", (unsigned)cp);
                        }
                } else {
                        r = ob_buf_add(b, s + i, len);
                }
                if (r < 0)
                        return r;
                i += len;
        }
        return 0;
}
