/* The exec connector kind without processes: its keys and their checks, how
 * an action renders into an argv and an environment, and how reports show
 * it (secrets as ***). Running programs is tests/integration/test_exec.c's. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "connector.h"
#include "exec.h"
#include "plan.h"
#include "report.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */

static char dir[64];
static char prog[128];   /* an executable script (never run here) */
static char noexec[128]; /* a file without the x bit */
static char secret[128];

static void write_file(const char *path, const char *text, mode_t mode)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        cr_assert_eq(chmod(path, mode), 0);
}

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        strcpy(dir, "/tmp/ob-test-exec-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(prog, sizeof(prog), "%s/disable-user", dir);
        snprintf(noexec, sizeof(noexec), "%s/not-a-program", dir);
        snprintf(secret, sizeof(secret), "%s/app.token", dir);
        write_file(prog, "#!/bin/sh\nexit 0\n", 0755);
        write_file(noexec, "#!/bin/sh\nexit 0\n", 0644);
        write_file(secret, "t0p-s3cr3t-value\n", 0600);
}

static void teardown(void)
{
        unlink(prog);
        unlink(noexec);
        unlink(secret);
        rmdir(dir);
}

TestSuite(exec_kind, .init = setup, .fini = teardown);

static const char head[] = "directory:\n"
                           "  uri: ldaps://127.0.0.1\n"
                           "  base: dc=x\n"
                           "mappings: [openldap]\n";


/* Writes tail with @PROG@, @SECRET@ and @NOEXEC@ replaced by the paths. */
static void put_tail(FILE *f, const char *tail)
{
        static const char *const names[] = {"@PROG@", "@SECRET@", "@NOEXEC@"};
        const char *values[] = {prog, secret, noexec};
        while (*tail) {
                size_t i;
                for (i = 0; i < 3; i++)
                        if (strncmp(tail, names[i], strlen(names[i])) == 0)
                                break;
                if (i < 3) {
                        fputs(values[i], f);
                        tail += strlen(names[i]);
                } else {
                        fputc(*tail++, f);
                }
        }
}

/* Loads head + tail (see put_tail). */
static int load(const char *tail, struct ob_config **ret, struct ob_config_error *err)
{
        char path[128];
        snprintf(path, sizeof(path), "%s/offboard.yaml", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(head, f);
        put_tail(f, tail);
        fclose(f);
        *ret = NULL;
        int r = ob_config_load(path, ret, err);
        unlink(path);
        return r;
}

static const char good[] = "connectors:\n"
                           "  app:\n"
                           "    type: exec\n"
                           "    program: @PROG@\n"
                           "    timeout: 10s\n"
                           "    concurrency: 2\n"
                           "    env:\n"
                           "      APP_TOKEN: {value_file: @SECRET@}\n"
                           "      APP_USER: \"{{ account.uid }}\"\n"
                           "      LANG: de_DE.UTF-8\n"
                           "actions:\n"
                           "  disable:\n"
                           "    connector: app\n"
                           "    args: [--disable, \"{{ account.uid }}\", \"--title={{ account.attr.title }}\", "
                           "\"--\", \"{{ transfer_to.uid }}\"]\n"
                           "    stdin: \"reason: {{ status.name }}\\n\"\n"
                           "  purge:\n"
                           "    connector: app\n"
                           "    args: [purge, \"{{ account.uid }}\"]\n"
                           "    ok_exit: [0, 3]\n"
                           "transitions:\n"
                           "  deactivate:\n"
                           "    to: inactive\n"
                           "    actions: [disable, purge]\n";

Test(exec_kind, the_table_knows_the_exec_type)
{
        cr_assert_eq(ob_connector_kind_find("exec"), &ob_exec_kind);
}

Test(exec_kind, the_loader_reads_program_env_args_stdin_and_ok_exit)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        const struct ob_connector *k = &c->connectors[0];
        cr_assert_eq(k->kind, &ob_exec_kind);
        cr_assert_eq(k->timeout_ms, 10000);
        cr_assert_eq(k->concurrency, 2);
        const struct ob_exec_connector *xc = k->settings;
        cr_assert_str_eq(xc->program, prog);
        cr_assert_eq(xc->env.n, 3);
        cr_assert_str_eq(xc->env.v[0].name, "APP_TOKEN");
        cr_assert_str_eq(xc->env.v[0].secret_file, secret);
        cr_assert_null(xc->env.v[0].value);
        cr_assert_str_eq(ob_tpl_source(xc->env.v[1].value), "{{ account.uid }}");

        const struct ob_exec_action *d = c->actions[0].settings;
        cr_assert_eq(d->args.n, 5);
        cr_assert_str_eq(ob_tpl_source(d->args.v[0]), "--disable");
        cr_assert_str_eq(ob_tpl_source(d->args.v[2]), "--title={{ account.attr.title }}");
        cr_assert_str_eq(ob_tpl_source(d->stdin_tpl), "reason: {{ status.name }}\n");
        cr_assert_eq(d->ok_exit.n, 1, "ok_exit defaults to [0]");
        cr_assert_eq(d->ok_exit.v[0], 0);
        const struct ob_exec_action *p = c->actions[1].settings;
        cr_assert_eq(p->ok_exit.n, 2);
        cr_assert_eq(p->ok_exit.v[1], 3);
        cr_assert_null(p->stdin_tpl);
        /* what the args read is requested from the directory and known */
        bool title = false;
        for (size_t i = 0; c->directory.attributes && c->directory.attributes[i]; i++)
                title = title || strcasecmp(c->directory.attributes[i], "title") == 0;
        cr_assert(title, "account.attr.title in args is not requested");
        cr_assert(c->actions[0].uses_transfer);
        cr_assert_not(c->actions[1].uses_transfer);
        ob_config_free(c);
}

Test(exec_kind, bad_keys_fail_at_their_position_with_a_reason)
{
        static const struct {
                const char *tail, *needle;
                int line;
        } cases[] = {
                {"connectors:\n  app: {type: exec}\n", "connectors.app: missing required key 'program'", 6},
                {"connectors:\n  app: {type: exec, program: bin/disable}\n",
                 "connectors.app.program must be an absolute path", 6},
                {"connectors:\n  app: {type: exec, program: /nonexistent/disable-user}\n",
                 "connectors.app.program: /nonexistent/disable-user: No such file or directory", 6},
                {"connectors:\n  app: {type: exec, program: @NOEXEC@}\n", "is not an executable file", 6},
                {"connectors:\n  app: {type: exec, program: /tmp}\n", "/tmp is not an executable file", 6},
                {"connectors:\n  app: {type: exec, program: @PROG@, env: {APP-USER: x}}\n",
                 "connectors.app.env: 'APP-USER' is not a variable name", 6},
                {"connectors:\n  app: {type: exec, program: @PROG@, env: {OFFBOARD_IDEMPOTENCY_KEY: x}}\n",
                 "OFFBOARD_IDEMPOTENCY_KEY is set by offboard for every run", 6},
                {"connectors:\n  app: {type: exec, program: @PROG@, env: {T: {value_file: @SECRET@, x: 1}}}\n",
                 "unknown key 'x'", 6},
                {"connectors:\n  app: {type: exec, program: @PROG@, url: /x}\n",
                 "unknown key 'url' in connectors.app (expected one of: type, timeout, concurrency, retry, "
                 "program, env)",
                 6},
                {"connectors:\n  app: {type: exec, program: @PROG@}\nactions:\n  a: {connector: app, args: x}\n",
                 "actions.a.args must be a list of strings", 8},
                {"connectors:\n  app: {type: exec, program: @PROG@}\nactions:\n"
                 "  a: {connector: app, args: [\"{{ account.nope }}\"]}\n",
                 "actions.a.args: unknown template field 'account.nope'", 8},
                {"connectors:\n  app: {type: exec, program: @PROG@}\nactions:\n"
                 "  a: {connector: app, ok_exit: [0, 256]}\n",
                 "actions.a.ok_exit", 8},
                {"connectors:\n  app: {type: exec, program: @PROG@}\nactions:\n"
                 "  a: {connector: app, ok_exit: 0}\n",
                 "actions.a.ok_exit must be a list of exit statuses", 8},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ob_config *c;
                struct ob_config_error err;
                cr_assert_eq(load(cases[i].tail, &c, &err), -OB_ECONFIG, "case %zu loaded", i);
                cr_assert(strstr(err.message, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.message,
                          cases[i].needle);
                char pos[32];
                snprintf(pos, sizeof(pos), ":%d:", cases[i].line);
                cr_assert(strstr(err.message, pos), "case %zu: '%s' is not on line %d", i, err.message,
                          cases[i].line);
        }
}

static struct ob_account *person(const char *uid, const char *title)
{
        struct ob_account *a = ob_account_new();
        char buf[128];
        snprintf(buf, sizeof(buf), "id-%s", uid);
        a->id = strdup(buf);
        snprintf(buf, sizeof(buf), "uid=%s,dc=x", uid);
        a->dn = strdup(buf);
        ob_account_add(a, "uid", uid, strlen(uid));
        ob_account_add(a, "employeeType", "Inactive", 8);
        if (title)
                ob_account_add(a, "title", title, strlen(title));
        return a;
}

static struct ob_account_plan *plan(const struct ob_config *c, struct ob_account *who, struct ob_account *to)
{
        struct ob_plan_input in = {.account = who, .now = NOW};
        in.transfer.target = to;
        in.transfer.via = "manager";
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        return p;
}

static char *report(const struct ob_config *c, struct ob_account_plan *p, bool json)
{
        struct ob_report_item item = {.plan = p, .writeback_result = 1};
        struct ob_report_summary sum = {.dry_run = true, .now = NOW, .accounts_read = 1};
        sum.steps_owed = ob_account_plan_owed(p);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (json)
                ob_report_json(f, &item, 1, &sum);
        else
                ob_report_text(f, c, &item, 1, &sum);
        fclose(f);
        return text;
}

Test(exec_kind, each_arg_is_one_argv_element_whatever_the_value_holds)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        /* spaces, quotes, a glob, a semicolon and a $(...): data, never split or expanded */
        struct ob_account *bob = person("bob smith", "C*O; $(rm -rf /) \"x\""), *alice = person("-alice", NULL);
        struct ob_account_plan *p = plan(c, bob, alice);
        cr_assert_eq(p->nsteps, 2);
        const struct ob_step *s = &p->steps[0];
        cr_assert_null(s->render_error, "%s", s->render_error);
        const struct ob_exec_rendered *q = s->rendered;
        const char *want[] = {prog, "--disable", "bob smith", "--title=C*O; $(rm -rf /) \"x\"", "--", "-alice",
                              NULL};
        for (size_t i = 0; want[i]; i++) {
                cr_assert_not_null(q->argv[i], "argv has %zu elements", i);
                cr_assert_str_eq(q->argv[i], want[i], "argv[%zu]", i);
        }
        cr_assert_null(q->argv[6]);
        /* the secret is not rendered: exec.c adds it */
        cr_assert_str_eq(q->env[0], "APP_USER=bob smith");
        cr_assert_str_eq(q->env[1], "LANG=de_DE.UTF-8");
        cr_assert_null(q->env[2]);
        cr_assert_str_eq(q->stdin_data, "reason: inactive\n");
        cr_assert_eq(q->stdin_len, strlen("reason: inactive\n"));
        const struct ob_exec_rendered *q2 = p->steps[1].rendered;
        cr_assert_str_eq(q2->argv[1], "purge");
        cr_assert_null(q2->stdin_data, "no stdin: /dev/null");
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_account_free(alice);
        ob_config_free(c);
}

Test(exec_kind, a_value_that_would_read_as_an_option_fails_the_step)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_account *mal = person("--delete-all", NULL), *alice = person("alice", NULL);
        struct ob_account_plan *p = plan(c, mal, alice);
        /* disable puts "--" before nothing of its own: args[1] is the uid itself */
        cr_assert_not_null(p->steps[0].render_error);
        cr_assert(strstr(p->steps[0].render_error, "args[1]: a value starts with '-'"), "%s",
                  p->steps[0].render_error);
        cr_assert(strstr(p->steps[1].render_error, "args[1]: a value starts with '-'"), "%s",
                  p->steps[1].render_error);
        char *text = report(c, p, false);
        cr_assert(strstr(text, "error: args[1]: a value starts with '-'"), "%s", text);
        free(text);
        ob_account_plan_free(p);
        ob_account_free(mal);
        ob_account_free(alice);
        ob_config_free(c);
}

Test(exec_kind, a_line_break_in_an_env_value_fails_the_step)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_account *bob = person("bob\nEVIL=1", NULL), *alice = person("alice", NULL);
        struct ob_account_plan *p = plan(c, bob, alice);
        cr_assert_str_eq(p->steps[0].render_error, "env APP_USER: a value holds a line break or control character");
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_account_free(alice);
        ob_config_free(c);
}

Test(exec_kind, reports_show_the_program_each_argv_element_quoted_and_secrets_masked)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_account *bob = person("bob", "say \"hi\" \\o/"), *alice = person("alice", NULL);
        struct ob_account_plan *p = plan(c, bob, alice);
        char *text = report(c, p, false);
        char line[512];
        snprintf(line, sizeof(line), "  1. disable                owed     app  exec %s\n", prog);
        cr_assert(strstr(text, line), "%s", text);
        snprintf(line, sizeof(line),
                 "       argv: \"%s\" \"--disable\" \"bob\" \"--title=say \\\"hi\\\" \\\\o/\" \"--\" \"alice\"\n",
                 prog);
        cr_assert(strstr(text, line), "want %s in:\n%s", line, text);
        cr_assert(strstr(text, "       env: APP_USER=bob\n"), "%s", text);
        cr_assert(strstr(text, "       env: APP_TOKEN=***\n"), "%s", text);
        cr_assert(strstr(text, "       env: OFFBOARD_IDEMPOTENCY_KEY=offboard-id-bob-deactivate-1-disable\n"), "%s",
                  text);
        cr_assert(strstr(text, "       stdin: reason: inactive\\x0a\n"), "%s", text);
        cr_assert_null(strstr(text, "t0p-s3cr3t"), "%s", text);
        cr_assert_null(strstr(text, "Idempotency-Key"), "%s", text);
        free(text);

        char *json = report(c, p, true);
        char want[1024];
        snprintf(want, sizeof(want),
                 "\"request\":{\"program\":\"%s\",\"argv\":[\"%s\",\"--disable\",\"bob\","
                 "\"--title=say \\\"hi\\\" \\\\o/\",\"--\",\"alice\"],"
                 "\"env\":[\"APP_USER=bob\",\"LANG=de_DE.UTF-8\",\"APP_TOKEN=***\"],"
                 "\"stdin\":\"reason: inactive\\n\",\"idempotency_key\":\"offboard-id-bob-deactivate-1-disable\"}",
                 prog, prog);
        cr_assert(strstr(json, want), "want %s in:\n%s", want, json);
        cr_assert_null(strstr(json, "t0p-s3cr3t"), "%s", json);
        free(json);
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_account_free(alice);
        ob_config_free(c);
}

Test(exec_kind, what_the_kernel_or_a_pipe_cannot_take_fails_the_step_not_the_pass)
{
        struct ob_config *c;
        struct ob_config_error err;
        const char *tail = "connectors:\n  app: {type: exec, program: @PROG@}\n"
                           "actions:\n"
                           "  big-stdin: {connector: app, stdin: \"{{ account.attr.title }}\"}\n"
                           "  big-arg: {connector: app, args: [\"x{{ account.attr.title }}{{ account.attr.title }}\"]}\n"
                           "transitions:\n  deactivate: {to: inactive, actions: [big-stdin, big-arg]}\n";
        cr_assert_eq(load(tail, &c, &err), 0, "%s", err.message);
        char *title = malloc(OB_EXEC_MAX_STDIN + 2);
        memset(title, 'a', OB_EXEC_MAX_STDIN + 1);
        title[OB_EXEC_MAX_STDIN + 1] = '\0';
        struct ob_account *bob = person("bob", title), *alice = person("alice", NULL);
        struct ob_account_plan *p = plan(c, bob, alice);
        cr_assert_str_eq(p->steps[0].render_error, "stdin: longer than 65536 bytes");
        cr_assert_str_eq(p->steps[1].render_error, "args[0]: longer than 131071 bytes");
        ob_account_plan_free(p);
        ob_account_free(bob);
        free(title);

        /* exactly as much as fits */
        title = malloc(OB_EXEC_MAX_STDIN + 1);
        memset(title, 'a', OB_EXEC_MAX_STDIN);
        title[OB_EXEC_MAX_STDIN] = '\0';
        bob = person("bob", title);
        p = plan(c, bob, alice);
        cr_assert_null(p->steps[0].render_error, "%s", p->steps[0].render_error);
        cr_assert_eq(((const struct ob_exec_rendered *)p->steps[0].rendered)->stdin_len, OB_EXEC_MAX_STDIN);
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_account_free(alice);
        free(title);
        ob_config_free(c);
}
