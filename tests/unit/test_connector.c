/* Connector kinds: a kind defined here, and nowhere in the agent, is read by
 * the loader, rendered by the planner and described by the reports, which
 * shows that config.c, plan.c and report.c assume nothing of HTTP. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "connector.h"
#include "plan.h"
#include "report.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */

/* ---- "note": posts a line of text to a channel ---------------------------- */

struct note_connector {
        char *channel;
};

struct note_action {
        struct ob_tpl *text;
        bool loud;
};

struct note_rendered {
        char *text;
};

static const struct ob_key_spec note_connector_keys[] = {
        {.name = "channel", .type = OB_KEY_STRING, .offset = offsetof(struct note_connector, channel), .required = true},
        {NULL},
};

static const struct ob_key_spec note_action_keys[] = {
        {.name = "text",
         .type = OB_KEY_TEMPLATE,
         .offset = offsetof(struct note_action, text),
         .required = true,
         .tpl = OB_TPL_TEXT},
        {.name = "loud", .type = OB_KEY_BOOL, .offset = offsetof(struct note_action, loud), .def = "true"},
        {NULL},
};

static int note_check_connector(struct ob_config_check *ck, struct ob_connector *c)
{
        const struct note_connector *n = c->settings;
        if (n->channel[0] != '#')
                return ob_config_fail_connector(ck, c, "channel", "connectors.%s.channel must start with '#'",
                                                c->name);
        return 0;
}

static int note_render(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s)
{
        const struct note_action *na = a->settings;
        struct note_rendered *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->rendered = q;
        struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_tpl_render(na->text, lookup, ud, &b);
        if (r == 0 && b.len == 0)
                r = ob_step_render_error(s, "text: nothing to say");
        else if (r == 0)
                r = ob_buf_steal(&b, &q->text);
        ob_buf_free(&b);
        return r;
}

static void note_free_rendered(void *p)
{
        struct note_rendered *q = p;
        if (q)
                free(q->text);
        free(q);
}

static void note_headline_text(const struct ob_step *s, FILE *f)
{
        ob_report_printf(f, "  to %s", ((const struct note_connector *)s->action->connector->settings)->channel);
}

static void note_describe_text(const struct ob_step *s, FILE *f)
{
        const struct note_rendered *q = s->rendered;
        if (q->text)
                ob_report_printf(f, "       text: %s\n", q->text);
}

static void note_describe_json(const struct ob_step *s, struct ob_report_json *j)
{
        const struct note_rendered *q = s->rendered;
        ob_report_json_string(j, "channel", ((const struct note_connector *)s->action->connector->settings)->channel);
        ob_report_json_string(j, "text", q->text);
}

static int note_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret)
{
        (void)loop, (void)cfg, (void)ret;
        return -ENOTSUP;
}

static int note_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata)
{
        (void)c, (void)s, (void)done, (void)userdata;
        return -ENOTSUP;
}

static void note_free(void *c)
{
        (void)c;
}

static const struct ob_connector_kind note_kind = {
        .name = "note",
        .connector_keys = note_connector_keys,
        .connector_size = sizeof(struct note_connector),
        .action_keys = note_action_keys,
        .action_size = sizeof(struct note_action),
        .check_connector = note_check_connector,
        .render = note_render,
        .free_rendered = note_free_rendered,
        .headline_text = note_headline_text,
        .describe_text = note_describe_text,
        .describe_json = note_describe_json,
        .new = note_new,
        .start = note_start,
        .free = note_free,
};

/* ---- fixtures ------------------------------------------------------------- */

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        ob_connector_kind_register_test(&note_kind);
}

static void teardown(void)
{
        ob_connector_kind_register_test(NULL);
}

TestSuite(connector, .init = setup, .fini = teardown);

static const char head[] = "directory:\n"
                           "  uri: ldaps://127.0.0.1\n"
                           "  base: dc=x\n"
                           "mappings: [openldap]\n";

/* Loads head + tail; returns the loader's result, *ret or err filled. */
static int load(const char *tail, struct ob_config **ret, struct ob_config_error *err)
{
        char path[] = "/tmp/ob-test-connector-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs(head, f);
        fputs(tail, f);
        fclose(f);
        *ret = NULL;
        int r = ob_config_load(path, ret, err);
        unlink(path);
        return r;
}

static const char good[] = "connectors:\n"
                           "  chat: {type: note, channel: \"#ops\", concurrency: 2}\n"
                           "actions:\n"
                           "  notify:\n"
                           "    connector: chat\n"
                           "    text: \"{{ account.uid }} left ({{ account.attr.title }}), see {{ transfer_to.uid }}\"\n"
                           "transitions:\n"
                           "  deactivate:\n"
                           "    to: inactive\n"
                           "    actions: [notify]\n";

static bool has_ci(char **l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (strcasecmp(l[i], s) == 0)
                        return true;
        return false;
}

Test(connector, the_loader_reads_a_kinds_keys_into_its_struct_with_their_defaults)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        cr_assert_eq(c->connectors[0].kind, &note_kind);
        cr_assert_eq(c->connectors[0].concurrency, 2, "a key every connector has is the loader's");
        cr_assert_str_eq(((struct note_connector *)c->connectors[0].settings)->channel, "#ops");
        const struct note_action *na = c->actions[0].settings;
        cr_assert_str_eq(ob_tpl_source(na->text),
                         "{{ account.uid }} left ({{ account.attr.title }}), see {{ transfer_to.uid }}");
        cr_assert(na->loud, "the default in the row was not applied");
        /* what the kind's templates read is requested and known */
        cr_assert(has_ci(c->directory.attributes, "title"));
        cr_assert(c->actions[0].uses_transfer);
        cr_assert(c->uses_transfer);
        ob_config_free(c);
}

Test(connector, a_kinds_key_errors_name_the_position_and_the_kinds_own_keys)
{
        static const struct {
                const char *tail, *needle;
                int line, col;
        } cases[] = {
                {"connectors:\n  chat: {type: note}\n", "connectors.chat: missing required key 'channel'", 6, 9},
                {"connectors:\n  chat: {type: note, channel: ops}\n", "connectors.chat.channel must start with '#'",
                 6, 31},
                {"connectors:\n  chat: {type: note, channel: \"#ops\", base_url: https://x}\n",
                 "unknown key 'base_url' in connectors.chat (expected one of: type, timeout, concurrency, retry, "
                 "channel)",
                 6, 39},
                {"connectors:\n  chat: {type: note, channel: \"#ops\"}\nactions:\n  notify: {connector: chat}\n",
                 "actions.notify: missing required key 'text'", 8, 11},
                {"connectors:\n  chat: {type: note, channel: \"#ops\"}\nactions:\n"
                 "  notify: {connector: chat, text: hi, url: /x}\n",
                 "unknown key 'url' in actions.notify (expected one of: connector, when, after, security, grace, restored_by, modules, text, loud)",
                 8, 39},
                {"connectors:\n  chat: {type: note, channel: \"#ops\"}\nactions:\n"
                 "  notify: {connector: chat, text: hi, loud: very}\n",
                 "actions.notify.loud must be true or false, not 'very'", 8, 45},
                {"connectors:\n  chat: {type: note, channel: \"#ops\"}\nactions:\n"
                 "  notify: {connector: chat, text: \"{{ account.nope }}\"}\n",
                 "actions.notify.text: unknown template field 'account.nope'", 8, 39},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ob_config *c;
                struct ob_config_error err;
                cr_assert_eq(load(cases[i].tail, &c, &err), -OB_ECONFIG, "case %zu loaded", i);
                cr_assert(strstr(err.message, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.message,
                          cases[i].needle);
                char pos[32];
                snprintf(pos, sizeof(pos), ":%d:%d: ", cases[i].line, cases[i].col);
                cr_assert(strstr(err.message, pos), "case %zu: '%s' is not at %s", i, err.message, pos);
                cr_assert_eq(err.column, cases[i].col, "case %zu: caret at %d", i, err.column);
        }
}

Test(connector, an_unknown_type_lists_the_kinds_this_version_has)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load("connectors:\n  chat: {type: smtp}\n", &c, &err), -OB_ECONFIG);
        /* the table's kinds, then the one a test registered, last */
        cr_assert(strstr(err.message, "unknown connector type 'smtp' (this version has: http, "), "%s", err.message);
        cr_assert(strstr(err.message, ", exec") && strstr(err.message, ", note)"), "%s", err.message);
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

Test(connector, the_planner_renders_and_the_reports_describe_through_the_kind)
{
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load(good, &c, &err), 0, "%s", err.message);
        struct ob_account *bob = person("bob", "CFO"), *alice = person("alice", NULL);
        struct ob_plan_input in = {.account = bob, .now = NOW};
        in.transfer.target = alice;
        in.transfer.via = "manager";
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        cr_assert_eq(p->nsteps, 1);
        const struct ob_step *s = &p->steps[0];
        cr_assert_eq(s->state, OB_STEP_OWED);
        cr_assert_null(s->render_error);
        cr_assert_str_eq(((const struct note_rendered *)s->rendered)->text, "bob left (CFO), see alice");
        cr_assert_str_eq(s->idempotency_key, "offboard-id-bob-deactivate-1-notify");

        char *text = report(c, p, false);
        cr_assert(strstr(text, "  1. notify                 owed     chat  to #ops\n"
                               "       text: bob left (CFO), see alice\n"),
                  "%s", text);
        cr_assert_null(strstr(text, "Idempotency-Key"), "an HTTP word in a note's report:\n%s", text);
        free(text);
        char *json = report(c, p, true);
        cr_assert(strstr(json, "\"request\":{\"channel\":\"#ops\",\"text\":\"bob left (CFO), see alice\"}"), "%s",
                  json);
        cr_assert_null(strstr(json, "\"method\""), "%s", json);
        free(json);
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_account_free(alice);
        ob_config_free(c);
}

Test(connector, a_kinds_render_error_fails_the_step_and_reads_in_the_report)
{
        struct ob_config *c;
        struct ob_config_error err;
        const char *tail = "connectors:\n  chat: {type: note, channel: \"#ops\"}\n"
                           "actions:\n  notify: {connector: chat, text: \"{{ account.attr.title }}\"}\n"
                           "transitions:\n  deactivate: {to: inactive, actions: [notify]}\n";
        cr_assert_eq(load(tail, &c, &err), 0, "%s", err.message);
        struct ob_account *bob = person("bob", NULL);
        struct ob_plan_input in = {.account = bob, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(c, &in, &p), 0);
        cr_assert_str_eq(p->steps[0].render_error, "text: nothing to say");
        char *text = report(c, p, false);
        cr_assert(strstr(text, "       error: text: nothing to say\n"), "%s", text);
        free(text);
        ob_account_plan_free(p);
        ob_account_free(bob);
        ob_config_free(c);
}
