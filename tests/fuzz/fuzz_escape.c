/* fuzz_escape.c: every escaper (agent/escape.h) and templates
 * (agent/template.h), each with an oracle that does not trust the code under
 * test.
 *
 * Input: byte 0 selects what runs; the rest, v, is
 *   even: the value given to every escaper;
 *   odd:  a template source up to the first NUL, parsed in each context and,
 *         when it parses, rendered with hostile values (the bytes after the
 *         NUL, and a fixed list) and with a benign one ("x").
 *
 * Escaper oracles:
 *   path segment: only [A-Za-z0-9-._~] and %XX, percent-decodes to v, never
 *     "." or ".." or a '/'; refused (-OB_ETEMPLATE) only for "", "." or "..";
 *   query: the same alphabet and round trip, never refused;
 *   json: "\"" out "\"" is valid JSON that decodes to v; refused exactly when v
 *     is not UTF-8;
 *   header: no control character but tab in the output; refused exactly when
 *     v holds one (or DEL), else copied;
 *   ldap filter: no unescaped * ( ) \ NUL, and unescaping gives v back;
 *   dn value: libldap parses "cn=" out as one RDN cn whose value is v.
 * Template oracles: the hostile rendering holds exactly as many structural
 * bytes as the benign one ('/', '?', '#', '&', '=' in URLs; '&', '=' in forms;
 * control characters in headers), and a JSON template that gives valid JSON
 * with the benign value gives valid JSON (or -OB_ETEMPLATE) with any value.
 */
#include <errno.h>
#include <ldap.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz_support.h"
#include "template.h"

static bool unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~';
}

static bool ishex(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static void check_percent(const char *what, const char *v, size_t n, const struct ob_buf *o)
{
        struct ob_buf d;
        for (size_t i = 0; i < o->len; i++) {
                unsigned char c = (unsigned char)o->data[i];
                if (c == '%' && i + 2 < o->len + 0 && ishex((unsigned char)o->data[i + 1]) &&
                    ishex((unsigned char)o->data[i + 2])) {
                        i += 2;
                        continue;
                }
                if (!unreserved(c)) {
                        ob_fuzz_dump("value", v, n);
                        ob_fuzz_dump("output", o->data, o->len);
                        ob_fuzz_fail("%s: byte 0x%02x at %zu is outside the alphabet", what, c, i);
                }
        }
        ob_buf_init(&d);
        int r = ob_fuzz_percent_decode(o->data ? o->data : "", o->len, &d);
        if (r == -ENOMEM)
                goto out;
        if (r < 0 || d.len != n || memcmp(d.data ? d.data : "", v, n) != 0) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("output", o->data, o->len);
                ob_fuzz_fail("%s: the output does not percent-decode to the value", what);
        }
out:
        ob_buf_free(&d);
}

static void check_path_segment(const char *v, size_t n)
{
        struct ob_buf o;
        ob_buf_init(&o);
        int r = ob_escape_path_segment(&o, v, n);
        bool dots = (n == 1 && v[0] == '.') || (n == 2 && v[0] == '.' && v[1] == '.');
        if (r == -ENOMEM)
                goto out;
        if (r == -OB_ETEMPLATE) {
                /* Refusing "", "." and ".." is right; anything else must be encoded. */
                if (n != 0 && !dots) {
                        ob_fuzz_dump("value", v, n);
                        ob_fuzz_fail("path segment: a value was refused");
                }
                if (o.len != 0)
                        ob_fuzz_fail("path segment: a refused value left %zu bytes behind", o.len);
                goto out;
        }
        if (r < 0)
                ob_fuzz_fail("path segment: unexpected error %d", r);
        if ((o.len == 1 && o.data[0] == '.') || (o.len == 2 && memcmp(o.data, "..", 2) == 0))
                ob_fuzz_fail("path segment: the output is a dot segment '%s'", o.data);
        if (o.len > 0 && memchr(o.data, '/', o.len))
                ob_fuzz_fail("path segment: the output holds a '/'");
        check_percent("path segment", v, n, &o);
out:
        ob_buf_free(&o);
}

static void check_query(const char *v, size_t n)
{
        struct ob_buf o;
        ob_buf_init(&o);
        int r = ob_escape_query(&o, v, n);
        if (r == 0)
                check_percent("query", v, n, &o);
        else if (r != -ENOMEM)
                ob_fuzz_fail("query: unexpected error %d", r);
        ob_buf_free(&o);
}

static void check_json(const char *v, size_t n)
{
        struct ob_buf o, q, d;
        ob_buf_init(&o);
        ob_buf_init(&q);
        ob_buf_init(&d);
        int r = ob_escape_json(&o, v, n);
        bool utf8 = ob_fuzz_utf8_valid(v, n);
        if (r == -ENOMEM)
                goto out;
        if (r == -OB_ETEMPLATE && !utf8) {
                if (o.len != 0)
                        ob_fuzz_fail("json: a refused value left %zu bytes behind", o.len);
                goto out;
        }
        if (r != 0 || !utf8) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_fail("json: returned %d for a value that is%s UTF-8", r, utf8 ? "" : " not");
        }
        if (ob_buf_addc(&q, '"') < 0 || ob_buf_add(&q, o.data ? o.data : "", o.len) < 0 || ob_buf_addc(&q, '"') < 0)
                goto out;
        if (!ob_fuzz_json_valid(q.data, q.len)) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("output", q.data, q.len);
                ob_fuzz_fail("json: the quoted output is not valid JSON");
        }
        r = ob_fuzz_json_string(q.data, q.len, &d);
        if (r == 0 && (d.len != n || memcmp(d.data ? d.data : "", v, n) != 0)) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("output", q.data, q.len);
                ob_fuzz_fail("json: the output does not decode to the value");
        }
out:
        ob_buf_free(&o);
        ob_buf_free(&q);
        ob_buf_free(&d);
}

static bool header_bad(unsigned char c)
{
        return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void check_header(const char *v, size_t n)
{
        struct ob_buf o;
        bool bad = false;
        ob_buf_init(&o);
        for (size_t i = 0; i < n; i++)
                bad = bad || header_bad((unsigned char)v[i]);
        int r = ob_escape_header(&o, v, n);
        if (r == -ENOMEM)
                goto out;
        if (bad != (r == -OB_ETEMPLATE) || (r < 0 && r != -OB_ETEMPLATE)) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_fail("header: returned %d for a value %s control characters", r, bad ? "with" : "without");
        }
        for (size_t i = 0; i < o.len; i++)
                if (header_bad((unsigned char)o.data[i]))
                        ob_fuzz_fail("header: control character 0x%02x in the output", (unsigned char)o.data[i]);
        if (r == 0 && (o.len != n || memcmp(o.data ? o.data : "", v, n) != 0))
                ob_fuzz_fail("header: an accepted value was not copied as is");
out:
        ob_buf_free(&o);
}

static int hexv(unsigned char c)
{
        return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void check_ldap_filter(const char *v, size_t n)
{
        struct ob_buf o, d;
        ob_buf_init(&o);
        ob_buf_init(&d);
        int r = ob_escape_ldap_filter(&o, v, n);
        if (r == -ENOMEM)
                goto out;
        if (r < 0)
                ob_fuzz_fail("ldap filter: unexpected error %d", r);
        for (size_t i = 0; i < o.len; i++) {
                unsigned char c = (unsigned char)o.data[i];
                if (c == '\\') {
                        if (i + 2 >= o.len + 0 || !ishex((unsigned char)o.data[i + 1]) ||
                            !ishex((unsigned char)o.data[i + 2])) {
                                ob_fuzz_dump("output", o.data, o.len);
                                ob_fuzz_fail("ldap filter: a '\\' at %zu is not followed by two hex digits", i);
                        }
                        c = (unsigned char)(hexv((unsigned char)o.data[i + 1]) << 4 | hexv((unsigned char)o.data[i + 2]));
                        i += 2;
                } else if (c == '*' || c == '(' || c == ')' || c == '\0') {
                        ob_fuzz_dump("output", o.data, o.len);
                        ob_fuzz_fail("ldap filter: unescaped 0x%02x at %zu", c, i);
                }
                if (ob_buf_addc(&d, (char)c) < 0)
                        goto out;
        }
        if (d.len != n || memcmp(d.data ? d.data : "", v, n) != 0) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("output", o.data, o.len);
                ob_fuzz_fail("ldap filter: unescaping the output does not give the value");
        }
out:
        ob_buf_free(&o);
        ob_buf_free(&d);
}

static void check_dn_value(const char *v, size_t n)
{
        struct ob_buf o;
        LDAPDN dn = NULL;
        ob_buf_init(&o);
        int r = ob_buf_adds(&o, "cn=");
        if (r == 0)
                r = ob_escape_dn_value(&o, v, n);
        if (r == -ENOMEM || (r == -OB_ETEMPLATE && o.len == 3))
                goto out;
        if (r < 0)
                ob_fuzz_fail("dn value: unexpected error %d", r);
        struct berval bv = {.bv_len = o.len, .bv_val = o.data};
        r = ldap_bv2dn(&bv, &dn, LDAP_DN_FORMAT_LDAPV3);
        if (r == LDAP_NO_MEMORY)
                goto out;
        if (r != LDAP_SUCCESS) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("dn", o.data, o.len);
                ob_fuzz_fail("dn value: libldap does not parse the DN: %s", ldap_err2string(r));
        }
        if (!dn || !dn[0] || dn[1] || !dn[0][0] || dn[0][1]) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("dn", o.data, o.len);
                ob_fuzz_fail("dn value: the DN is not one RDN with one value");
        }
        const LDAPAVA *ava = dn[0][0];
        if (ava->la_attr.bv_len != 2 || memcmp(ava->la_attr.bv_val, "cn", 2) != 0 || ava->la_value.bv_len != n ||
            memcmp(ava->la_value.bv_val ? ava->la_value.bv_val : "", v, n) != 0) {
                ob_fuzz_dump("value", v, n);
                ob_fuzz_dump("dn", o.data, o.len);
                ob_fuzz_dump("parsed value", ava->la_value.bv_val, ava->la_value.bv_len);
                ob_fuzz_fail("dn value: the parsed value is not the value");
        }
out:
        ldap_dnfree(dn);
        ob_buf_free(&o);
}

/* ---- templates ------------------------------------------------------------ */

static const char *const hostile[] = {
        "", ".", "..", "a/b", "../../admin", "x?y=1&z=2#frag", "\x1b[2J\x1b]0;pwned\x07", "a\r\nX-Injected: 1",
        "\"},\"admin\":true,\"x\":{\"", "\xff\xfe", "\xc0\xaf", "\xed\xa0\x80", "%2e%2e", "\xe2\x80\xa8",
        "*)(uid=*", "cn=x,dc=y", " #lead", "trail ", "a+b c", "\\u0000", "\t",
};

struct lookup {
        const char *value; /* NULL: pick from hostile[] by field */
};

static const char *lookup_hostile(const char *field, void *ud)
{
        struct lookup *l = ud;
        if (l->value)
                return l->value;
        size_t h = 0;
        for (const char *c = field; *c; c++)
                h = h * 31 + (unsigned char)*c;
        return hostile[h % OB_ELEMENTSOF(hostile)];
}

static const char *lookup_benign(const char *field, void *ud)
{
        (void)field;
        (void)ud;
        return "x";
}

static size_t count_of(const struct ob_buf *b, const char *set, bool controls)
{
        size_t k = 0;
        for (size_t i = 0; i < b->len; i++) {
                unsigned char c = (unsigned char)b->data[i];
                if ((c && strchr(set, c)) || (controls && header_bad(c)))
                        k++;
        }
        return k;
}

static void check_render(const struct ob_tpl *t, enum ob_tpl_context ctx, struct lookup *l)
{
        struct ob_buf good, bad, q;
        ob_buf_init(&good);
        ob_buf_init(&bad);
        ob_buf_init(&q);
        int rg = ob_tpl_render(t, lookup_benign, NULL, &good);
        int rb = ob_tpl_render(t, lookup_hostile, l, &bad);
        if (rg == -ENOMEM || rb == -ENOMEM || rg < 0 || rb < 0) {
                if (rb < 0 && rb != -ENOMEM && rb != -OB_ETEMPLATE)
                        ob_fuzz_fail("template: render returned %d", rb);
                goto out;
        }
        const char *set = NULL;
        bool controls = false;
        switch (ctx) {
        case OB_TPL_URL: set = "/?#&="; controls = true; break;
        case OB_TPL_FORM: set = "&="; controls = true; break;
        case OB_TPL_HEADER: set = ""; controls = true; break;
        default: break;
        }
        if (set && count_of(&good, set, controls) != count_of(&bad, set, controls)) {
                ob_fuzz_dump("template", ob_tpl_source(t), strlen(ob_tpl_source(t)));
                ob_fuzz_dump("benign", good.data, good.len);
                ob_fuzz_dump("hostile", bad.data, bad.len);
                ob_fuzz_fail("template (context %d): a value added structure to the output", (int)ctx);
        }
        if (ctx == OB_TPL_JSON) {
                bool ok = ob_buf_addc(&q, '"') == 0 && ob_buf_add(&q, good.data ? good.data : "", good.len) == 0 &&
                          ob_buf_addc(&q, '"') == 0 && ob_fuzz_json_valid(q.data, q.len);
                ob_buf_reset(&q);
                if (ok && ob_buf_addc(&q, '"') == 0 && ob_buf_add(&q, bad.data ? bad.data : "", bad.len) == 0 &&
                    ob_buf_addc(&q, '"') == 0 && !ob_fuzz_json_valid(q.data, q.len)) {
                        ob_fuzz_dump("template", ob_tpl_source(t), strlen(ob_tpl_source(t)));
                        ob_fuzz_dump("hostile", q.data, q.len);
                        ob_fuzz_fail("template (json): a value made the JSON string invalid");
                }
        }
out:
        ob_buf_free(&good);
        ob_buf_free(&bad);
        ob_buf_free(&q);
}

static void check_templates(const char *v, size_t n)
{
        const char *nul = memchr(v, '\0', n);
        char *src = strndup(v, nul ? (size_t)(nul - v) : n);
        char *value = nul ? strndup(nul + 1, n - (size_t)(nul - v) - 1) : NULL;
        static const enum ob_tpl_context ctxs[] = {OB_TPL_TEXT, OB_TPL_URL, OB_TPL_HEADER, OB_TPL_JSON, OB_TPL_FORM};

        if (!src || (nul && !value))
                goto out;
        for (size_t i = 0; i < OB_ELEMENTSOF(ctxs); i++) {
                struct ob_tpl *t = NULL;
                char err[256];
                size_t off = 0;
                int r = ob_tpl_parse(src, ctxs[i], &t, err, sizeof(err), &off);
                if (r == -OB_ETEMPLATE && off > strlen(src))
                        ob_fuzz_fail("template: error offset %zu past the end (%zu)", off, strlen(src));
                if (r < 0)
                        continue;
                if (strcmp(ob_tpl_source(t), src) != 0)
                        ob_fuzz_fail("template: the source was not kept");
                struct lookup l = {value};
                check_render(t, ctxs[i], &l);
                l.value = NULL;
                check_render(t, ctxs[i], &l);
                ob_tpl_free(t);
        }
out:
        free(src);
        free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const char *v = (const char *)data + 1;
        size_t n = size - 1;
        if (data[0] & 1) {
                check_templates(v, n);
                return 0;
        }
        check_path_segment(v, n);
        check_query(v, n);
        check_json(v, n);
        check_header(v, n);
        check_ldap_filter(v, n);
        check_dn_value(v, n);
        return 0;
}
