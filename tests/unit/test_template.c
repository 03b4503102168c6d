/* Templates: fields checked at parse, values escaped by where they land. */
#include <criterion/criterion.h>
#include <string.h>

#include "cond.h"
#include "template.h"
#include "util.h"

static const char *vals(const char *field, void *ud)
{
        (void)ud;
        if (strcmp(field, "account.uid") == 0)
                return "a/b?c d#e&f=g";
        if (strcmp(field, "account.mail") == 0)
                return "x+y@example.org";
        if (strcmp(field, "status.reason") == 0)
                return "line\r\nX-Injected: 1";
        if (strcmp(field, "account.attr.description") == 0)
                return "say \"hi\"";
        if (strcmp(field, "account.teams") == 0)
                return "sales" "\x1f" "r&d \"x\"";
        if (strcmp(field, "account.teams_led") == 0)
                return "";
        return NULL;
}

static char *render(const char *src, enum ob_tpl_context ctx, int *ret)
{
        struct ob_tpl *t = NULL;
        char err[256];
        size_t off;
        cr_assert_eq(ob_tpl_parse(src, ctx, &t, err, sizeof(err), &off), 0, "%s", err);
        struct ob_buf b;
        ob_buf_init(&b);
        *ret = ob_tpl_render(t, vals, NULL, &b);
        ob_tpl_free(t);
        char *s = NULL;
        ob_buf_steal(&b, &s);
        ob_buf_free(&b);
        return s;
}

Test(template, url_path_values_are_one_segment_and_query_values_are_query_escaped)
{
        int r;
        char *s = render("/users/{{ account.uid }}/x?mail={{account.mail}}&n={{ account.uid }}", OB_TPL_URL, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "/users/a%2Fb%3Fc%20d%23e%26f%3Dg/x?mail=x%2By%40example.org&n=a%2Fb%3Fc%20d%23e%26f%3Dg");
        free(s);
}

Test(template, a_header_value_with_a_line_break_is_refused)
{
        int r;
        char *s = render("{{ status.reason }}", OB_TPL_HEADER, &r);
        cr_assert_eq(r, -OB_ETEMPLATE);
        free(s);
}

Test(template, json_values_are_string_escaped)
{
        int r;
        char *s = render("{{ account.attr.description }}", OB_TPL_JSON, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "say \\\"hi\\\"");
        free(s);
}

Test(template, an_empty_path_value_is_refused_rather_than_addressing_the_collection)
{
        int r;
        char *s = render("/licenses/{{ account.name }}", OB_TPL_URL, &r);
        cr_assert_eq(r, -OB_ETEMPLATE);
        free(s);
}

Test(template, unknown_fields_and_unclosed_braces_are_parse_errors_with_offsets)
{
        struct ob_tpl *t = NULL;
        char err[512];
        size_t off = 99;
        cr_assert_eq(ob_tpl_parse("/u/{{ account.nope }}", OB_TPL_URL, &t, err, sizeof(err), &off), -OB_ETEMPLATE);
        cr_assert_eq(off, 6);
        cr_assert(strstr(err, "account.nope"));
        cr_assert_eq(ob_tpl_parse("/u/{{ account.uid", OB_TPL_URL, &t, err, sizeof(err), &off), -OB_ETEMPLATE);
        cr_assert_eq(off, 3);
        cr_assert_eq(ob_tpl_parse("/u#frag", OB_TPL_URL, &t, err, sizeof(err), &off), -OB_ETEMPLATE);
        cr_assert_null(t);
}

static int collect(const char *attr, void *ud)
{
        return ob_strv_add_unique_ci(ud, attr);
}

Test(template, attributes_used_are_reported_for_the_search)
{
        struct ob_tpl *t = NULL;
        char err[64];
        size_t off;
        cr_assert_eq(ob_tpl_parse("{{ account.attr.departmentNumber }}-{{ account.uid }}-{{account.attr.l}}",
                                  OB_TPL_TEXT, &t, err, sizeof(err), &off),
                     0);
        char **list = NULL;
        cr_assert_eq(ob_tpl_attributes(t, collect, &list), 0);
        cr_assert_str_eq(list[0], "departmentNumber");
        cr_assert_str_eq(list[1], "l");
        cr_assert_null(list[2]);
        cr_assert(ob_tpl_uses_prefix(t, "account."));
        cr_assert_not(ob_tpl_uses_prefix(t, "transfer_to."));
        ob_tpl_free(t);
        ob_strv_free(list);
}

Test(template, a_list_field_reads_a_comma_list_in_text_and_is_an_array_alone_in_json)
{
        int r;
        char *s = render("teams: {{ account.teams }}", OB_TPL_TEXT, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "teams: sales, r&d \"x\"");
        free(s);
        s = render("/t/{{ account.teams }}", OB_TPL_URL, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "/t/sales%2C%20r%26d%20%22x%22");
        free(s);
        struct ob_json_tpl j = {.kind = OB_JSON_STRING};
        char err[256];
        size_t off;
        cr_assert_eq(ob_tpl_parse("{{ account.teams }}", OB_TPL_JSON, &j.tpl, err, sizeof(err), &off), 0);
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_json_tpl_render(&j, vals, NULL, &b), 0);
        cr_assert_str_eq(b.data, "[\"sales\",\"r&d \\\"x\\\"\"]");
        ob_buf_free(&b);
        ob_tpl_free(j.tpl);
        /* An empty list is an empty array; with other text it is a string. */
        cr_assert_eq(ob_tpl_parse("{{ account.teams_led }}", OB_TPL_JSON, &j.tpl, err, sizeof(err), &off), 0);
        ob_buf_init(&b);
        cr_assert_eq(ob_json_tpl_render(&j, vals, NULL, &b), 0);
        cr_assert_str_eq(b.data, "[]");
        ob_buf_free(&b);
        ob_tpl_free(j.tpl);
        cr_assert_eq(ob_tpl_parse("led {{ account.teams_led }}", OB_TPL_JSON, &j.tpl, err, sizeof(err), &off), 0);
        ob_buf_init(&b);
        cr_assert_eq(ob_json_tpl_render(&j, vals, NULL, &b), 0);
        cr_assert_str_eq(b.data, "\"led \"");
        ob_buf_free(&b);
        ob_tpl_free(j.tpl);
}

/* transfer.modules: its JSON form alone in a JSON string, its text form
 * (escaped where it lands) anywhere else, and no form is no request. */
static const char *modules_vals(const char *field, void *ud)
{
        (void)ud;
        if (strcmp(field, "transfer.modules") == 0)
                return "cases: where status is \"open\"";
        if (strcmp(field, "transfer.modules" OB_TPL_JSON_FORM) == 0)
                return "[{\"module\":\"cases\",\"records\":\"matching\",\"is\":{\"status\":\"open\"}}]";
        return NULL;
}

static int render_json_string(const char *src, ob_tpl_lookup_fn lookup, char **ret)
{
        struct ob_json_tpl j = {.kind = OB_JSON_STRING};
        char err[256];
        size_t off;
        cr_assert_eq(ob_tpl_parse(src, OB_TPL_JSON, &j.tpl, err, sizeof(err), &off), 0, "%s", err);
        struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_json_tpl_render(&j, lookup, NULL, &b);
        ob_tpl_free(j.tpl);
        *ret = NULL;
        if (r == 0)
                ob_buf_steal(&b, ret);
        ob_buf_free(&b);
        return r;
}

Test(template, transfer_modules_alone_in_json_is_its_json_form_and_text_elsewhere)
{
        char *s;
        cr_assert_eq(render_json_string("{{ transfer.modules }}", modules_vals, &s), 0);
        cr_assert_str_eq(s, "[{\"module\":\"cases\",\"records\":\"matching\",\"is\":{\"status\":\"open\"}}]");
        free(s);
        cr_assert_eq(render_json_string("move {{ transfer.modules }}", modules_vals, &s), 0);
        cr_assert_str_eq(s, "\"move cases: where status is \\\"open\\\"\"");
        free(s);
        struct ob_tpl *t = NULL;
        char err[64];
        size_t off;
        cr_assert_eq(ob_tpl_parse("/t?m={{ transfer.modules }}", OB_TPL_URL, &t, err, sizeof(err), &off), 0);
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_tpl_render(t, modules_vals, NULL, &b), 0);
        cr_assert_str_eq(b.data, "/t?m=cases%3A%20where%20status%20is%20%22open%22");
        ob_buf_free(&b);
        ob_tpl_free(t);
        /* A lookup without the JSON form fails the render: never "[]". */
        cr_assert_eq(render_json_string("{{ transfer.modules }}", vals, &s), -OB_ETEMPLATE);
        cr_assert_null(s);
}

/* What the configuration writes around a field is data too: in a JSON
 * string or a form value it is escaped like the field's value. */
Test(template, literal_text_in_a_json_string_or_a_form_value_is_escaped_like_a_value)
{
        int r;
        char *s = render("say \"hi\" \\ {{ account.mail }}", OB_TPL_JSON, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "say \\\"hi\\\" \\\\ x+y@example.org");
        free(s);
        s = render("a&b=c {{ account.mail }}", OB_TPL_FORM, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "a%26b%3Dc%20x%2By%40example.org");
        free(s);
        /* A URL's literal text is the URL: kept as written. */
        s = render("/a/b?x=1&y={{ account.mail }}", OB_TPL_URL, &r);
        cr_assert_eq(r, 0);
        cr_assert_str_eq(s, "/a/b?x=1&y=x%2By%40example.org");
        free(s);
}
