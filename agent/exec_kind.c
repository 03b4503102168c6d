/* exec_kind.c: the exec connector kind without processes: its keys and their
 * rules, rendering an argv and describing it. Running the program is
 * exec.c's. See exec.h and connector.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"
#include "exec.h"
#include "plan.h"
#include "report.h"
#include "template.h"
#include "util.h"

#define OB_EXEC_MAX_ENV 64 /* env: entries of a connector */

/* ---- keys ------------------------------------------------------------------ */

#define C(x) offsetof(struct ob_exec_connector, x)
#define A(x) offsetof(struct ob_exec_action, x)

static const struct ob_key_spec ob_exec_connector_keys[] = {
        {.name = "program", .type = OB_KEY_STRING, .offset = C(program), .required = true},
        /* Values are rendered in header context: a line break or control
         * character from the directory fails the step rather than reaching
         * a program that may write it into a log or a file. */
        {.name = "env", .type = OB_KEY_HEADERS, .offset = C(env)},
        {NULL},
};

static const struct ob_key_spec ob_exec_action_keys[] = {
        {.name = "args", .type = OB_KEY_TEMPLATE_LIST, .offset = A(args), .max = 256, .tpl = OB_TPL_TEXT},
        {.name = "stdin", .type = OB_KEY_TEMPLATE, .offset = A(stdin_tpl), .tpl = OB_TPL_TEXT},
        {.name = "ok_exit",
         .type = OB_KEY_INT_LIST,
         .offset = A(ok_exit),
         .min = 0,
         .max = 255,
         .hint = "exit statuses, such as [0, 3]"},
        {NULL},
};

#undef C
#undef A

/* ---- rules across keys ------------------------------------------------------ */

static bool ob_exec_env_name_ok(const char *s)
{
        if (!*s || (*s >= '0' && *s <= '9'))
                return false;
        for (; *s; s++)
                if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
                        return false;
        return true;
}

/* program: and env: are checked each on its own, and each variable of env:. */
static int ob_exec_check_connector(struct ob_config_check *ck, struct ob_connector *c)
{
        const struct ob_exec_connector *x = c->settings;
        struct stat st;
        int r = 0, bad = 0;
        if (x->program[0] != '/')
                r = ob_config_fail_connector(ck, c, "program",
                                             "connectors.%s.program must be an absolute path (no PATH lookup)",
                                             c->name);
        else if (stat(x->program, &st) < 0)
                r = ob_config_fail_connector(ck, c, "program", "connectors.%s.program: %s: %s", c->name, x->program,
                                             strerror(errno));
        else if (!S_ISREG(st.st_mode) || access(x->program, X_OK) < 0)
                r = ob_config_fail_connector(ck, c, "program", "connectors.%s.program: %s is not an executable file",
                                             c->name, x->program);
        if (r < 0 && !ob_config_check_go_on(ck, r, &bad))
                return r;
        if (x->env.n > OB_EXEC_MAX_ENV)
                return ob_config_fail_connector(ck, c, "env", "connectors.%s.env: at most %d variables", c->name,
                                                OB_EXEC_MAX_ENV);
        for (size_t i = 0; i < x->env.n; i++) {
                const char *n = x->env.v[i].name;
                bool twice = false;
                for (size_t j = 0; j < i; j++)
                        twice = twice || strcmp(x->env.v[j].name, n) == 0;
                if (!ob_exec_env_name_ok(n))
                        r = ob_config_fail_connector(
                                ck, c, "env",
                                "connectors.%s.env: '%s' is not a variable name (letters, digits and '_')", c->name,
                                n);
                else if (strcmp(n, OB_EXEC_IDEMPOTENCY_ENV) == 0)
                        r = ob_config_fail_connector(ck, c, "env",
                                                     "connectors.%s.env: " OB_EXEC_IDEMPOTENCY_ENV
                                                     " is set by offboard for every run",
                                                     c->name);
                else if (twice)
                        r = ob_config_fail_connector(ck, c, "env", "connectors.%s.env: '%s' is set twice", c->name,
                                                     n);
                else
                        r = 0;
                if (r < 0 && !ob_config_check_go_on(ck, r, &bad))
                        return r;
        }
        return bad;
}

static int ob_exec_check_action(struct ob_config_check *ck, struct ob_action *a)
{
        (void)ck;
        struct ob_exec_action *x = a->settings;
        if (x->ok_exit.n == 0) {
                x->ok_exit.v = calloc(1, sizeof(*x->ok_exit.v));
                if (!x->ok_exit.v)
                        return -ENOMEM;
                x->ok_exit.n = 1; /* [0] */
        }
        return 0;
}

/* ---- rendering -------------------------------------------------------------- */

static void ob_exec_free_rendered(void *p)
{
        struct ob_exec_rendered *q = p;
        if (!q)
                return;
        ob_strv_free(q->argv);
        ob_strv_free(q->env);
        free(q->stdin_data);
        free(q);
}

/* Whether the template's text starts with a value, not a literal. */
static bool ob_exec_starts_with_field(const struct ob_tpl *t)
{
        return strncmp(ob_tpl_source(t), "{{", 2) == 0;
}

/* Renders t in text context into a new string (*ret, also on a render error,
 * so the report shows what it can). Returns 1 when the result holds a NUL
 * byte, else 0 or a negative errno. */
static int ob_exec_render_one(const struct ob_tpl *t, ob_tpl_lookup_fn lookup, void *ud, const char *prefix,
                              char **ret, size_t *ret_len)
{
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_buf_adds(&b, prefix);
        if (r == 0)
                r = ob_tpl_render(t, lookup, ud, &b);
        if (r < 0)
                return r;
        size_t len = b.len;
        bool nul = b.data && strlen(b.data) != len;
        if ((r = ob_buf_steal(&b, ret)) < 0)
                return r;
        *ret_len = len;
        return nul ? 1 : 0;
}

static int ob_exec_render(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s)
{
        const struct ob_exec_action *xa = a->settings;
        const struct ob_exec_connector *xc = a->connector->settings;
        struct ob_exec_rendered *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->rendered = q;
        q->argv = calloc(xa->args.n + 2, sizeof(*q->argv));
        q->env = calloc(xc->env.n + 1, sizeof(*q->env));
        if (!q->argv || !q->env || !(q->argv[0] = strdup(xc->program)))
                return -ENOMEM;
        size_t total = strlen(xc->program) + 1;
        bool options_end = false; /* an earlier element is a literal "--" */
        int r;
        for (size_t i = 0; i < xa->args.n; i++) {
                const struct ob_tpl *t = xa->args.v[i];
                size_t len = 0;
                if ((r = ob_exec_render_one(t, lookup, ud, "", &q->argv[i + 1], &len)) < 0)
                        return r;
                total += len + 1;
                if (r == 1)
                        r = ob_step_render_error(s, "args[%zu]: a value holds a NUL byte", i);
                else if (len >= OB_EXEC_MAX_ARG)
                        r = ob_step_render_error(s, "args[%zu]: longer than %d bytes", i, OB_EXEC_MAX_ARG - 1);
                else if (!options_end && q->argv[i + 1][0] == '-' && ob_exec_starts_with_field(t))
                        r = ob_step_render_error(s,
                                                 "args[%zu]: a value starts with '-' and would read as an option "
                                                 "(put a literal \"--\" before it, or text in front of the value)",
                                                 i);
                if (r < 0)
                        return r;
                if (strcmp(ob_tpl_source(t), "--") == 0)
                        options_end = true;
        }
        size_t ne = 0;
        for (size_t i = 0; i < xc->env.n; i++) {
                const struct ob_header_tpl *e = &xc->env.v[i];
                if (e->secret_file)
                        continue; /* exec.c adds it; reports show NAME=*** */
                _cleanup_free_ char *prefix = NULL;
                size_t len = 0;
                if (asprintf(&prefix, "%s=", e->name) < 0)
                        return -ENOMEM;
                r = ob_exec_render_one(e->value, lookup, ud, prefix, &q->env[ne], &len);
                if (r == -OB_ETEMPLATE) {
                        r = ob_step_render_error(s, "env %s: a value holds a line break or control character",
                                                 e->name);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                ne++;
                total += len + 1;
                if (r == 1)
                        r = ob_step_render_error(s, "env %s: a value holds a NUL byte", e->name);
                else if (len >= OB_EXEC_MAX_ARG)
                        r = ob_step_render_error(s, "env %s: longer than %d bytes", e->name, OB_EXEC_MAX_ARG - 1);
                if (r < 0)
                        return r;
        }
        if (total > OB_EXEC_MAX_ARGV && (r = ob_step_render_error(s, "argv and environment: longer than %d bytes",
                                                                   OB_EXEC_MAX_ARGV)) < 0)
                return r;
        if (xa->stdin_tpl) {
                if ((r = ob_exec_render_one(xa->stdin_tpl, lookup, ud, "", &q->stdin_data, &q->stdin_len)) < 0)
                        return r;
                if (r == 1)
                        r = ob_step_render_error(s, "stdin: a value holds a NUL byte");
                else if (q->stdin_len > OB_EXEC_MAX_STDIN)
                        r = ob_step_render_error(s, "stdin: longer than %d bytes", OB_EXEC_MAX_STDIN);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- reports ---------------------------------------------------------------- */

/* An argv element in double quotes, escaped as the report escapes text (a
 * backslash doubled, controls as \xNN) and a quote as \". */
static void ob_exec_put_quoted(FILE *f, const char *s)
{
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        if (ob_escape_text(&b, s, strlen(s)) < 0 || !b.data)
                b.len = 0;
        fputc('"', f);
        for (size_t i = 0; i < b.len; i++) {
                if (b.data[i] == '"')
                        fputc('\\', f);
                fputc(b.data[i], f);
        }
        fputc('"', f);
}

static void ob_exec_headline_text(const struct ob_step *s, FILE *f)
{
        const struct ob_exec_connector *xc = s->action->connector->settings;
        ob_report_printf(f, "  exec %s", xc->program);
}

static void ob_exec_describe_text(const struct ob_step *s, FILE *f)
{
        const struct ob_exec_rendered *q = s->rendered;
        const struct ob_exec_connector *xc = s->action->connector->settings;
        if (q && q->argv) {
                fputs("       argv:", f);
                for (size_t i = 0; q->argv[i]; i++) {
                        fputc(' ', f);
                        ob_exec_put_quoted(f, q->argv[i]);
                }
                fputc('\n', f);
        }
        for (size_t i = 0; q && q->env && q->env[i]; i++)
                ob_report_printf(f, "       env: %s\n", q->env[i]);
        for (size_t i = 0; i < xc->env.n; i++)
                if (xc->env.v[i].secret_file)
                        ob_report_printf(f, "       env: %s=" OB_MASK "\n", xc->env.v[i].name);
        ob_report_printf(f, "       env: " OB_EXEC_IDEMPOTENCY_ENV "=%s\n", s->idempotency_key);
        if (q && q->stdin_data)
                ob_report_printf(f, "       stdin: %s\n", q->stdin_data);
}

static void ob_exec_describe_json(const struct ob_step *s, struct ob_report_json *j)
{
        static const struct ob_exec_rendered none = {0};
        const struct ob_exec_rendered *q = s->rendered ? s->rendered : &none;
        const struct ob_exec_connector *xc = s->action->connector->settings;
        ob_report_json_string(j, "program", xc->program);
        ob_report_json_list_begin(j, "argv");
        for (size_t i = 0; q->argv && q->argv[i]; i++)
                ob_report_json_list_item(j, q->argv[i]);
        ob_report_json_list_end(j);
        ob_report_json_list_begin(j, "env");
        for (size_t i = 0; q->env && q->env[i]; i++)
                ob_report_json_list_item(j, q->env[i]);
        for (size_t i = 0; i < xc->env.n; i++) {
                if (!xc->env.v[i].secret_file)
                        continue;
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "%s=" OB_MASK, xc->env.v[i].name) < 0)
                        m = NULL;
                ob_report_json_list_item(j, m ? m : OB_MASK);
        }
        ob_report_json_list_end(j);
        ob_report_json_string(j, "stdin", q->stdin_data);
        ob_report_json_string(j, "idempotency_key", s->idempotency_key);
}

/* ---- execution -------------------------------------------------------------- */

static int ob_exec_kind_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata)
{
        const struct ob_exec_rendered *q = s->rendered;
        const struct ob_exec_action *xa = s->action->settings;
        if (!q || !q->argv)
                return -EINVAL;
        struct ob_exec_request req = {
                .argv = (const char *const *)q->argv,
                .env = (const char *const *)q->env,
                .stdin_data = q->stdin_data,
                .stdin_len = q->stdin_len,
                .idempotency_key = s->idempotency_key,
                .ok_exit = xa->ok_exit.v,
                .nok_exit = xa->ok_exit.n,
        };
        return ob_exec_start(c, &req, done, userdata);
}

const struct ob_connector_kind ob_exec_kind = {
        .name = "exec",
        .connector_keys = ob_exec_connector_keys,
        .connector_size = sizeof(struct ob_exec_connector),
        .action_keys = ob_exec_action_keys,
        .action_size = sizeof(struct ob_exec_action),
        .check_connector = ob_exec_check_connector,
        .check_action = ob_exec_check_action,
        .render = ob_exec_render,
        .free_rendered = ob_exec_free_rendered,
        .headline_text = ob_exec_headline_text,
        .describe_text = ob_exec_describe_text,
        .describe_json = ob_exec_describe_json,
        .new = ob_exec_new,
        .start = ob_exec_kind_start,
        .free = ob_exec_free,
};
