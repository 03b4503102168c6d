/* Unit tests for agent/escape.c: every escaper gets hostile values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "util.h"

typedef int (*escape_fn)(struct ob_buf *b, const char *s, size_t n);

/* Escapes s[0..n) after a prefix and checks both the result and that the
 * prefix survived (escapers append). */
static void check_n(escape_fn fn, const char *s, size_t n, const char *expect)
{
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_buf_adds(&b, "pre:"), 0);
        int r = fn(&b, s, n);
        cr_assert_eq(r, 0, "escaping \"%.*s\" returned %d", (int)n, s, r);
        cr_assert_eq(b.len, 4 + strlen(expect), "length %zu, got \"%s\"", b.len, b.data);
        cr_assert_eq(memcmp(b.data, "pre:", 4), 0);
        cr_assert_str_eq(b.data + 4, expect);
}

static void check(escape_fn fn, const char *s, const char *expect)
{
        check_n(fn, s, strlen(s), expect);
}

/* A refused value returns -OB_ETEMPLATE and leaves the buffer as it was. */
static void refuse_n(escape_fn fn, const char *s, size_t n)
{
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_buf_adds(&b, "pre:"), 0);
        int r = fn(&b, s, n);
        cr_assert_eq(r, -OB_ETEMPLATE, "value of %zu bytes should be refused, got %d", n, r);
        cr_assert_eq(b.len, 4);
        cr_assert_str_eq(b.data, "pre:");
}

static void refuse(escape_fn fn, const char *s)
{
        refuse_n(fn, s, strlen(s));
}

/* A 10,000-byte value made of repeated unit, and the expected escaping of it. */
static char *repeat(const char *unit, size_t count)
{
        size_t ul = strlen(unit);
        char *s = malloc(ul * count + 1);
        cr_assert_not_null(s);
        for (size_t i = 0; i < count; i++)
                memcpy(s + i * ul, unit, ul);
        s[ul * count] = '\0';
        return s;
}

/* ---- path segment ---------------------------------------------------- */

Test(escape, path_segment_keeps_unreserved_characters)
{
        check(ob_escape_path_segment, "AZaz09-._~", "AZaz09-._~");
        check(ob_escape_path_segment, "jdoe", "jdoe");
}

Test(escape, path_segment_encodes_slash_so_a_value_cannot_add_a_segment)
{
        check(ob_escape_path_segment, "../admin/users", "..%2Fadmin%2Fusers");
        check(ob_escape_path_segment, "a/b", "a%2Fb");
}

Test(escape, path_segment_encodes_every_delimiter_in_upper_case_hex)
{
        check(ob_escape_path_segment, "/?#% \"\\*()", "%2F%3F%23%25%20%22%5C%2A%28%29");
        check(ob_escape_path_segment, "a+b=c&d;e:f@g,h!i$j'k[l]m",
              "a%2Bb%3Dc%26d%3Be%3Af%40g%2Ch%21i%24j%27k%5Bl%5Dm");
}

Test(escape, path_segment_encodes_cr_lf_and_nul_inside_the_value)
{
        check_n(ob_escape_path_segment, "a\r\nb\0c", 6, "a%0D%0Ab%00c");
}

Test(escape, path_segment_encodes_utf8_bytes)
{
        check(ob_escape_path_segment, "ren\xc3\xa9", "ren%C3%A9");
        check(ob_escape_path_segment, "\xe6\x97\xa5\xe6\x9c\xac", "%E6%97%A5%E6%9C%AC");
        check(ob_escape_path_segment, "\xff\xfe", "%FF%FE"); /* not UTF-8: still only encoded bytes */
}

Test(escape, path_segment_refuses_dot_and_dot_dot_as_a_whole_value)
{
        /* %2E%2E is decoded and resolved as ".." by some proxies. */
        refuse(ob_escape_path_segment, ".");
        refuse(ob_escape_path_segment, "..");
        /* Only the whole value is a dot segment. */
        check(ob_escape_path_segment, "...", "...");
        check(ob_escape_path_segment, ".hidden", ".hidden");
        check(ob_escape_path_segment, "a..b", "a..b");
}

Test(escape, path_segment_refuses_an_empty_value_that_would_collapse_the_path)
{
        refuse(ob_escape_path_segment, "");
}

Test(escape, path_segment_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("a/", 5000);
        _cleanup_free_ char *out = repeat("a%2F", 5000);
        check(ob_escape_path_segment, in, out);
}

/* ---- query component ------------------------------------------------- */

Test(escape, query_keeps_unreserved_and_encodes_space_as_percent_20)
{
        check(ob_escape_query, "AZaz09-._~", "AZaz09-._~");
        check(ob_escape_query, "John Doe", "John%20Doe");
}

Test(escape, query_encodes_delimiters_so_a_value_cannot_add_a_parameter)
{
        check(ob_escape_query, "x&admin=true", "x%26admin%3Dtrue");
        check(ob_escape_query, "a+b", "a%2Bb");
        check(ob_escape_query, "/?#% \"\\*()", "%2F%3F%23%25%20%22%5C%2A%28%29");
}

Test(escape, query_encodes_control_bytes_nul_and_utf8)
{
        check_n(ob_escape_query, "a\r\n\0\x7f", 5, "a%0D%0A%00%7F");
        check(ob_escape_query, "\xc3\xa9\xe6\x97\xa5", "%C3%A9%E6%97%A5");
}

Test(escape, query_keeps_dot_segments_and_empty_values)
{
        check(ob_escape_query, "..", "..");
        check(ob_escape_query, "", "");
}

Test(escape, query_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("& ", 5000);
        _cleanup_free_ char *out = repeat("%26%20", 5000);
        check(ob_escape_query, in, out);
}

/* ---- JSON ------------------------------------------------------------ */

Test(escape, json_escapes_quote_and_backslash)
{
        check(ob_escape_json, "say \"hi\" \\o/", "say \\\"hi\\\" \\\\o/");
}

Test(escape, json_uses_short_escapes_where_they_exist)
{
        check(ob_escape_json, "\b\f\n\r\t", "\\b\\f\\n\\r\\t");
}

Test(escape, json_escapes_other_control_characters_as_u00xx)
{
        check_n(ob_escape_json, "a\0b", 3, "a\\u0000b");
        check(ob_escape_json, "\x01\x1f\x0b\x1b", "\\u0001\\u001f\\u000b\\u001b");
}

Test(escape, json_keeps_delete_slash_and_markup_characters)
{
        check(ob_escape_json, "\x7f/</script>*()#%?", "\x7f/</script>*()#%?");
}

Test(escape, json_keeps_valid_utf8_as_is)
{
        check(ob_escape_json, "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
        /* Boundaries: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
        const char *edges = "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
                            "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
        check(ob_escape_json, edges, edges);
}

Test(escape, json_escapes_line_and_paragraph_separators)
{
        check(ob_escape_json, "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\\u2028b\\u2029c");
        /* Neighbours of U+2028 stay as they are. */
        check(ob_escape_json, "\xe2\x80\xa7\xe2\x80\xaa", "\xe2\x80\xa7\xe2\x80\xaa");
}

Test(escape, json_refuses_overlong_encodings)
{
        refuse(ob_escape_json, "\xc0\xaf");             /* '/' in two bytes */
        refuse(ob_escape_json, "\xc1\xbf");
        refuse(ob_escape_json, "\xe0\x80\xaf");         /* '/' in three bytes */
        refuse(ob_escape_json, "\xe0\x9f\xbf");
        refuse(ob_escape_json, "\xf0\x80\x80\xaf");     /* '/' in four bytes */
        refuse(ob_escape_json, "\xf0\x8f\xbf\xbf");
        refuse_n(ob_escape_json, "\xc0\x80", 2);        /* "modified UTF-8" NUL */
}

Test(escape, json_refuses_surrogates)
{
        refuse(ob_escape_json, "\xed\xa0\x80");         /* U+D800 */
        refuse(ob_escape_json, "\xed\xbf\xbf");         /* U+DFFF */
        refuse(ob_escape_json, "\xed\xa0\xbd\xed\xb8\x80"); /* CESU-8 pair */
}

Test(escape, json_refuses_code_points_above_10ffff)
{
        refuse(ob_escape_json, "\xf4\x90\x80\x80");     /* U+110000 */
        refuse(ob_escape_json, "\xf5\x80\x80\x80");
        refuse(ob_escape_json, "\xf8\x88\x80\x80\x80");
        refuse(ob_escape_json, "\xff");
        refuse(ob_escape_json, "\xfe");
}

Test(escape, json_refuses_truncated_and_stray_sequences)
{
        refuse(ob_escape_json, "abc\xc3");              /* cut at the end */
        refuse(ob_escape_json, "\xe6\x97");
        refuse(ob_escape_json, "\xf0\x90\x80");
        refuse(ob_escape_json, "\xc3" "a");             /* continuation missing */
        refuse(ob_escape_json, "\xe6\x97" "a");
        refuse(ob_escape_json, "\x80");                 /* lone continuation */
        refuse(ob_escape_json, "a\xbf" "b");
        /* The length counts: a valid character cut by n is refused. */
        refuse_n(ob_escape_json, "\xc3\xa9", 1);
}

Test(escape, json_refusal_after_a_valid_prefix_appends_nothing)
{
        refuse(ob_escape_json, "valid \"part\" then \xed\xa0\x80");
}

Test(escape, json_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("\"\n", 5000);
        _cleanup_free_ char *out = repeat("\\\"\\n", 5000);
        check(ob_escape_json, in, out);
}

/* ---- header value ---------------------------------------------------- */

Test(escape, header_copies_printable_values_tab_and_utf8)
{
        check(ob_escape_header, "Bearer abc.def", "Bearer abc.def");
        check(ob_escape_header, "a\tb", "a\tb");
        check(ob_escape_header, "/?#% \"\\*()", "/?#% \"\\*()");
        check(ob_escape_header, "Ren\xc3\xa9 \xe6\x97\xa5", "Ren\xc3\xa9 \xe6\x97\xa5");
        check(ob_escape_header, "", "");
}

Test(escape, header_refuses_cr_lf_so_a_value_cannot_add_a_header)
{
        refuse(ob_escape_header, "x\r\nX-Admin: true");
        refuse(ob_escape_header, "x\nX-Admin: true");
        refuse(ob_escape_header, "x\r");
}

Test(escape, header_refuses_nul_inside_the_value)
{
        refuse_n(ob_escape_header, "ab\0cd", 5);
}

Test(escape, header_refuses_every_other_control_byte_and_delete)
{
        for (int c = 1; c < 0x20; c++) {
                if (c == '\t')
                        continue;
                char v[3] = {'a', (char)c, 'b'};
                refuse_n(ob_escape_header, v, 3);
        }
        refuse(ob_escape_header, "a\x7f");
}

Test(escape, header_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("x", 10000);
        check(ob_escape_header, in, in);
        in[9999] = '\n';
        refuse(ob_escape_header, in);
}

/* ---- LDAP filter value ----------------------------------------------- */

Test(escape, ldap_filter_escapes_star_parens_and_backslash)
{
        check(ob_escape_ldap_filter, "*", "\\2a");
        check(ob_escape_ldap_filter, "x)(uid=*", "x\\29\\28uid=\\2a");
        check(ob_escape_ldap_filter, "a\\b", "a\\5cb");
}

Test(escape, ldap_filter_escapes_nul_inside_the_value)
{
        check_n(ob_escape_ldap_filter, "a\0b", 3, "a\\00b");
}

Test(escape, ldap_filter_keeps_other_bytes_and_utf8)
{
        check(ob_escape_ldap_filter, "/?#% \"=&|!~<>", "/?#% \"=&|!~<>");
        check(ob_escape_ldap_filter, "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
        check(ob_escape_ldap_filter, "a\r\nb", "a\r\nb");
        check(ob_escape_ldap_filter, "", "");
}

Test(escape, ldap_filter_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("*)", 5000);
        _cleanup_free_ char *out = repeat("\\2a\\29", 5000);
        check(ob_escape_ldap_filter, in, out);
}

/* ---- DN attribute value ---------------------------------------------- */

Test(escape, dn_value_escapes_separators_so_a_value_cannot_add_an_rdn)
{
        check(ob_escape_dn_value, "Doe, John", "Doe\\, John");
        check(ob_escape_dn_value, "a+cn=admin", "a\\+cn\\=admin");
        check(ob_escape_dn_value, "x,ou=admins,dc=example", "x\\,ou\\=admins\\,dc\\=example");
        check(ob_escape_dn_value, "\"\\<>;", "\\\"\\\\\\<\\>\\;");
}

Test(escape, dn_value_escapes_leading_space_or_hash_and_trailing_space)
{
        check(ob_escape_dn_value, " lead", "\\ lead");
        check(ob_escape_dn_value, "#04024869", "\\#04024869");
        check(ob_escape_dn_value, "trail ", "trail\\ ");
        check(ob_escape_dn_value, " ", "\\ ");
        check(ob_escape_dn_value, "  ", "\\ \\ ");
        check(ob_escape_dn_value, "#", "\\#");
        /* Inner spaces and hashes are kept. */
        check(ob_escape_dn_value, "a # b", "a # b");
        check(ob_escape_dn_value, " a b ", "\\ a b\\ ");
}

Test(escape, dn_value_escapes_nul_as_hex)
{
        check_n(ob_escape_dn_value, "a\0b", 3, "a\\00b");
        check_n(ob_escape_dn_value, "\0", 1, "\\00");
}

Test(escape, dn_value_keeps_other_bytes_and_utf8)
{
        check(ob_escape_dn_value, "/?#% *()", "/?#% *()");
        check(ob_escape_dn_value, "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "Ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
        check(ob_escape_dn_value, "..", "..");
        check(ob_escape_dn_value, "", "");
}

Test(escape, dn_value_handles_a_ten_thousand_byte_value)
{
        _cleanup_free_ char *in = repeat("a,", 5000);
        _cleanup_free_ char *out = repeat("a\\,", 5000);
        check(ob_escape_dn_value, in, out);
        /* Trailing space after a long plain run. */
        in[9999] = ' ';
        _cleanup_free_ char *out2 = repeat("a\\,", 4999);
        size_t l = strlen(out2);
        char *full = malloc(l + 4);
        cr_assert_not_null(full);
        memcpy(full, out2, l);
        memcpy(full + l, "a\\ ", 4);
        check(ob_escape_dn_value, in, full);
        free(full);
}

/* ---- common behaviour ------------------------------------------------ */

Test(escape, every_escaper_appends_after_existing_content)
{
        escape_fn fns[] = {ob_escape_path_segment, ob_escape_query, ob_escape_json,
                           ob_escape_header, ob_escape_ldap_filter, ob_escape_dn_value};
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
                _cleanup_buf_ struct ob_buf b;
                ob_buf_init(&b);
                cr_assert_eq(fns[i](&b, "ab", 2), 0);
                cr_assert_eq(fns[i](&b, "cd", 2), 0);
                cr_assert_str_eq(b.data, "abcd");
        }
}

Test(escape, every_escaper_reports_a_dead_buffer_as_enomem)
{
        escape_fn fns[] = {ob_escape_path_segment, ob_escape_query, ob_escape_json,
                           ob_escape_header, ob_escape_ldap_filter, ob_escape_dn_value};
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
                _cleanup_buf_ struct ob_buf b;
                ob_buf_init(&b);
                b.oom = true;
                cr_assert_eq(fns[i](&b, "ab", 2), -ENOMEM);
        }
}

Test(escape, text_escapes_every_control_character_for_a_terminal)
{
        check(ob_escape_text, "\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07");
        check(ob_escape_text, "a\rb\nc\td\x7f", "a\\x0db\\x0ac\\x09d\\x7f");
        /* C1 controls as UTF-8 (U+009B is a one-byte CSI on some terminals). */
        check(ob_escape_text, "\xc2\x9b" "31m", "\\x9b31m");
        /* Bidirectional overrides reorder what a person reads. */
        check(ob_escape_text, "ab\xe2\x80\xae" "cd", "ab\\u202Ecd");
        /* A backslash is doubled, so an escape cannot be forged. */
        check(ob_escape_text, "\\x1b", "\\\\x1b");
}

Test(escape, text_keeps_utf8_and_escapes_invalid_bytes)
{
        check(ob_escape_text, "ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "ren\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
        check(ob_escape_text, "\xff\xc3", "\\xff\\xc3");
        check(ob_escape_text, "\xc0\xaf", "\\xc0\\xaf"); /* overlong "/" */
}

Test(escape, dn_value_escapes_control_characters_that_parsers_trim)
{
        /* Found by fuzz_escape: libldap trims a leading or trailing tab, CR
         * or LF, so "cn=alice\n" named alice. */
        check(ob_escape_dn_value, "\ta", "\\09a");
        check(ob_escape_dn_value, "alice\n", "alice\\0A");
        check(ob_escape_dn_value, "bob\r", "bob\\0D");
        check(ob_escape_dn_value, "a\x7f" "b", "a\\7Fb");
}

Test(escape, dn_syntax_accepts_distinguished_names_and_refuses_the_rest)
{
        cr_assert(ob_dn_syntax_ok("uid=trent,ou=people,dc=example,dc=org"));
        cr_assert(ob_dn_syntax_ok("cn=Doe\\, John+uid=jd, ou=people"));
        cr_assert(ob_dn_syntax_ok("CN=a\\2Bb\\3Dc,DC=example,DC=test"));
        cr_assert(ob_dn_syntax_ok("2.5.4.3=x"));
        cr_assert(ob_dn_syntax_ok("uid=#0403616263"));
        cr_assert_not(ob_dn_syntax_ok("trent"));
        cr_assert_not(ob_dn_syntax_ok(""));
        cr_assert_not(ob_dn_syntax_ok("=x"));
        cr_assert_not(ob_dn_syntax_ok("uid=a;ou=b"));
        cr_assert_not(ob_dn_syntax_ok("uid=a\\"));
        cr_assert_not(ob_dn_syntax_ok("uid=a\\zz"));
        cr_assert_not(ob_dn_syntax_ok("uid=a,,ou=b"));
        cr_assert_not(ob_dn_syntax_ok("uid=#zz"));
}
