/* Configuration loader: every bad fixture fails with its message at its
 * position, never a crash and never a partial load. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "http.h"

#define FIX OB_SOURCE_DIR "/tests/fixtures/config/"

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

TestSuite(config, .init = setup);

struct bad {
        const char *file;
        const char *message_file; /* the file the error names, if not file */
        int line, col;
        const char *needle;
};

static const struct bad bad_cases[] = {
        {"bad-unknown-section.yaml", NULL, 5, 1, "unknown section 'bogus'"},
        {"bad-unknown-key.yaml", NULL, 4, 3, "unknown key 'page_sise' in directory"},
        {"bad-type.yaml", NULL, 4, 14, "directory.page_size must be a scalar"},
        {"bad-page-size.yaml", NULL, 4, 14, "page_size must be a whole number from 1 to 10000"},
        {"bad-missing-base.yaml", NULL, 2, 3, "missing required key 'base'"},
        {"bad-duration.yaml", NULL, 4, 12, "directory.timeout must be a duration"},
        {"bad-password-inline.yaml", NULL, 5, 18, "secrets are never written in the configuration"},
        {"bad-unknown-connector.yaml", NULL, 11, 16, "unknown connector 'ap'"},
        {"bad-unknown-action.yaml", NULL, 16, 14, "unknown action 'cancel'"},
        {"bad-restored-by.yaml", NULL, 13, 18, "actions.remove-groups.restored_by: unknown action 'restore-groups'"},
        {"bad-grace-security.yaml", NULL, 14, 12, "actions.revoke.grace: a security action never waits"},
        {"bad-template-field.yaml", NULL, 12, 20, "unknown template field 'account.usrname'"},
        {"bad-connector-type.yaml", NULL, 7, 5, "unknown connector type 'smtp'"},
        {"bad-status.yaml", NULL, 15, 20, "unknown status 'gone'"},
        {"bad-after-cycle.yaml", NULL, 13, 12, "form a cycle"},
        {"bad-host-template.yaml", NULL, 11, 18, "templates may not choose the host"},
        {"bad-header-crlf-name.yaml", NULL, 10, 7, "'X Bad' is not a valid header name"},
        {"bad-mapping-missing.yaml", NULL, 4, 12, "mapping 'nosuchmapping' not found"},
        {"bad-rule.yaml", "bad-rule-mapping.yaml", 6, 15, "passed must name the time format"},
        {"bad-ldap-uri.yaml", NULL, 2, 8, "must start with ldap://, ldaps:// or ldapi://"},
        /* Fail closed: no YAML feature can make a small file large or cyclic. */
        {"bad-transition-actions-map.yaml", NULL, 5, 40, "transitions.t.actions must be a list"},
        {"bad-anchor.yaml", NULL, 3, 9, "YAML anchors and aliases are not supported"},
        {"bad-alias.yaml", NULL, 4, 11, "YAML anchors and aliases are not supported"},
        {"bad-alias-cycle.yaml", NULL, 5, 10, "YAML anchors and aliases are not supported"},
        {"bad-billion-laughs.yaml", NULL, 10, 11, "YAML anchors and aliases are not supported"},
        {"bad-nesting.yaml", NULL, 9, 377, "nested deeper than 64 levels"},
        {"bad-duplicate-key.yaml", NULL, 15, 23, "duplicate key 'to'"},
        {"bad-duplicate-key-condition.yaml", "bad-duplicate-key-mapping.yaml", 6, 7, "duplicate key 'attribute'"},
        {"bad-two-documents.yaml", NULL, 5, 1, "one YAML document"},
        {"bad-token-inline.yaml", NULL, 9, 33, "secrets are never written in the configuration"},
        {"bad-duplicate-secret.yaml", NULL, 5, 3, "duplicate key 'bind_password'"},
        {"bad-header-authorization-file.yaml", NULL, 10, 7, "set credentials with the connector's auth: section"},
        {"bad-header-value-file-key.yaml", NULL, 10, 19, "unknown key 'value' in connectors.apps.headers.X-Api-Key"},
        {"bad-http-credentials.yaml", NULL, 8, 15, "use https:// or set allow_insecure: true"},
        {"bad-http-secret-header.yaml", NULL, 14, 10, "actions.revoke.url: connector 'apps' sends credentials"},
        {"bad-ldap-plain.yaml", NULL, 4, 13, "directory.starttls: plain ldap:// without StartTLS"},
        {"bad-max-pages.yaml", NULL, 4, 14, "max_pages must be a whole number from 1 to 10000000"},
        {"bad-search-deadline.yaml", NULL, 4, 20, "search_deadline must be a duration"},
        {"bad-safety-transition.yaml", NULL, 8, 5, "safety.transitions: unknown transition 'deactivat'"},
        {"bad-safety-transition-value.yaml", NULL, 7, 25, "safety.transitions.lock.max_percent must be a whole number"},
        {"bad-required-attributes.yaml", "bad-required-attributes-mapping.yaml", 1, 43,
         "required_attributes: 'user account' is not an LDAP attribute name"},
        {"bad-fallback-dn.yaml", NULL, 6, 13, "transfer.fallback: 'trent' is not a DN"},
        {"bad-leader-of.yaml", NULL, 8, 7, "transfer.leader_of: 'it-team' is not a DN"},
        {"bad-guard-role.yaml", NULL, 7, 62, "guards.executives.role.above: 'director' is not one of ranks"},
        {"bad-guard-two.yaml", NULL, 7, 5, "guards.admins: one condition per guard"},
        {"bad-guard-teams.yaml", NULL, 6, 40, "guards.team-owner: owns_team_with_members needs directory.teams"},
        {"bad-long-list.yaml", NULL, 11, 14, "transitions.t.actions: more than 1000 entries"},
        {"bad-feed.yaml", NULL, 5, 9, "feed must be auto, syncrepl, poll, dirsync or none, not 'changelog'"},
        {"bad-listen.yaml", NULL, 5, 11,
         "service.listen: '0.0.0.0:9100' is not a loopback address (the endpoint answers only on this host); it "
         "must be 127.x.y.z:PORT, [::1]:PORT, localhost:PORT or unix:/absolute/path"},
};

Test(config, every_bad_fixture_names_file_line_column_and_the_problem)
{
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                const struct bad *b = &bad_cases[i];
                struct ob_config *c;
                struct ob_config_error err;
                int r;
                char path[512];
                snprintf(path, sizeof(path), FIX "%s", b->file);
                c = (struct ob_config *)0x1;
                r = ob_config_load(path, &c, &err);
                cr_assert_eq(r, -OB_ECONFIG, "%s: expected a configuration error, got %d", b->file, r);
                cr_assert_eq(c, (struct ob_config *)0x1, "%s: ret was written on failure", b->file);
                char prefix[600];
                snprintf(prefix, sizeof(prefix), FIX "%s:%d:%d: ", b->message_file ? b->message_file : b->file,
                         b->line, b->col);
                cr_assert(strncmp(err.message, prefix, strlen(prefix)) == 0, "%s: message '%s' does not start with '%s'",
                          b->file, err.message, prefix);
                cr_assert(strstr(err.message, b->needle), "%s: message '%s' lacks '%s'", b->file, err.message,
                          b->needle);
                cr_assert(err.line[0] != '\0', "%s: the offending line is missing", b->file);
                cr_assert_eq(err.column, b->col, "%s: caret column %d", b->file, err.column);
        }
}

Test(config, yaml_syntax_error_is_reported_with_position)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        int r = ob_config_load(FIX "bad-yaml-syntax.yaml", &c, &err);
        cr_assert_eq(r, -OB_ECONFIG);
        cr_assert(strstr(err.message, FIX "bad-yaml-syntax.yaml:"), "%s", err.message);
        cr_assert(strstr(err.message, "YAML syntax error"), "%s", err.message);
}

Test(config, a_missing_file_is_an_error_not_a_crash)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "does-not-exist.yaml", &c, &err), -OB_ECONFIG);
        cr_assert(strstr(err.message, "does-not-exist.yaml: cannot open"), "%s", err.message);
}

Test(config, the_error_print_shows_the_line_and_a_caret_under_the_column)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "bad-unknown-key.yaml", &c, &err), -OB_ECONFIG);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        ob_config_error_print(&err, f);
        fclose(f);
        cr_assert(strstr(buf, "\n    page_sise: 100\n    ^\n"), "got:\n%s", buf);
        free(buf);
}

Test(config, minimal_config_gets_safe_defaults)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "minimal.yaml", &c, &err), 0, "%s", err.message);
        cr_assert(c->directory.starttls);
        cr_assert(c->directory.tls_verify);
        cr_assert(!c->directory.allow_insecure);
        cr_assert_eq(c->directory.min_accounts, 1);
        cr_assert_str_eq(c->directory.id_attribute, "entryUUID");
        cr_assert_str_eq(c->writeback.status_attribute, "offboardStatus");
        cr_assert_gt(c->safety.max_accounts, 0);
        cr_assert_eq(c->nrules, 5);
        /* `run`: a pass an hour, and the change feed where the server has one. */
        cr_assert_eq(c->full_pass_interval_ms, 3600 * 1000);
        cr_assert_eq(c->feed, OB_FEED_AUTO);
        ob_config_free(c);
}

Test(config, the_example_configuration_loads_and_requests_every_attribute_it_reads)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        /* As under offboard.service: its secrets are systemd credentials. */
        setenv("CREDENTIALS_DIRECTORY", "/run/credentials/offboard.service", 1);
        cr_assert_eq(ob_config_load(OB_SOURCE_DIR "/examples/offboard.yaml", &c, &err), 0, "%s", err.message);
        cr_assert_str_eq(c->directory.bind_password_file, "/run/credentials/offboard.service/ldap-password");
        const char *want[] = {"uid", "mail", "cn", "manager", "employeeType", "description", "shadowExpire",
                              "pwdAccountLockedTime", "offboardStatus", "entryCSN"};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                bool found = false;
                for (size_t k = 0; c->directory.attributes[k]; k++)
                        found = found || strcasecmp(c->directory.attributes[k], want[i]) == 0;
                cr_assert(found, "attribute %s is not requested", want[i]);
        }
        cr_assert(c->uses_transfer);
        cr_assert_eq(c->ntransitions, 4);
        ob_config_free(c);
}

/* Every mapping the project ships is loaded, so examples never rot. */
Test(config, every_shipped_mapping_loads)
{
        const char *names[] = {"openldap", "active-directory", "active-directory-password-expiry", "389ds", "freeipa"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                char path[256];
                snprintf(path, sizeof(path), "/tmp/ob-test-mapping-%d.yaml", (int)getpid());
                FILE *f = fopen(path, "w");
                /* FreeIPA's policy DN names the realm: the configuration gives it. */
                fprintf(f, "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\nmappings: [%s]\n%s", names[i],
                        strcmp(names[i], "freeipa") == 0
                                ? "policies: {kerberos: {dn: \"cn=global_policy,cn=X.ORG,cn=kerberos,dc=x\"}}\n"
                                : "");
                fclose(f);
                struct ob_config *c = NULL;
                struct ob_config_error err;
                int r = ob_config_load(path, &c, &err);
                unlink(path);
                cr_assert_eq(r, 0, "%s: %s", names[i], err.message);
                cr_assert_gt(c->nrules, 0);
                ob_config_free(c);
        }
}

/* An inline secret is refused without being repeated: the quoted line shows
 * *** from the value's column on, and the caret still points there. */
Test(config, an_inline_secret_is_never_echoed_in_the_error)
{
        static const struct {
                const char *file, *secret, *line;
                bool caret_on_value;
        } cases[] = {
                {"bad-password-inline.yaml", "hunter2", "  bind_password: ***", true},
                {"bad-token-inline.yaml", "s3cr3t", "    auth: {type: bearer, token: ***", true},
                /* any error quoting such a line masks it */
                {"bad-duplicate-secret.yaml", "hunter2", "  \"bind_password\": ***", false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ob_config *c = NULL;
                struct ob_config_error err;
                char path[512];
                snprintf(path, sizeof(path), FIX "%s", cases[i].file);
                cr_assert_eq(ob_config_load(path, &c, &err), -OB_ECONFIG);
                cr_assert_null(strstr(err.message, cases[i].secret), "%s: %s", cases[i].file, err.message);
                cr_assert_null(strstr(err.line, cases[i].secret), "%s: %s", cases[i].file, err.line);
                cr_assert_str_eq(err.line, cases[i].line, "%s", cases[i].file);
                if (cases[i].caret_on_value)
                        cr_assert_eq(err.line[err.column - 1], '*', "%s: the caret is not on the mask",
                                     cases[i].file);
        }
}

static struct ob_action *action(struct ob_config *c, const char *name)
{
        for (size_t i = 0; i < c->nactions; i++)
                if (strcmp(c->actions[i].name, name) == 0)
                        return &c->actions[i];
        return NULL;
}

static const char *json_literal(const struct ob_action *a, const char *key)
{
        const struct ob_json_tpl *body = ((const struct ob_http_action *)a->settings)->body.tree;
        for (size_t i = 0; i < body->nchildren; i++)
                if (strcmp(body->children[i]->key, key) == 0)
                        return body->children[i]->kind == OB_JSON_LITERAL ? body->children[i]->literal : "(a string)";
        return NULL;
}

static bool has_ci(char **l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (strcasecmp(l[i], s) == 0)
                        return true;
        return false;
}

Test(config, the_fail_closed_keys_load)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "good-limits.yaml", &c, &err), 0, "%s", err.message);
        /* directory: search limits, and plain ldap:// allowed on request */
        cr_assert_eq(c->directory.search_deadline_ms, 10 * 60 * 1000);
        cr_assert_eq(c->directory.max_pages, 250);
        cr_assert(c->directory.allow_insecure);
        /* value_file headers: a path, never a template */
        cr_assert_eq(c->connectors[0].kind, &ob_http_kind);
        const struct ob_http_connector *apps = c->connectors[0].settings;
        cr_assert_str_eq(apps->headers.v[0].name, "X-Api-Key");
        cr_assert_null(apps->headers.v[0].value);
        cr_assert_str_eq(apps->headers.v[0].secret_file, OB_SOURCE_DIR "/tests/fixtures/config/secrets/apps.key");
        cr_assert_not_null(apps->headers.v[1].value);
        cr_assert_null(apps->headers.v[1].secret_file);
        cr_assert(!apps->allow_insecure);
        cr_assert(((const struct ob_http_connector *)c->connectors[1].settings)->allow_insecure);
        struct ob_action *revoke = action(c, "revoke");
        const struct ob_http_action *rh = revoke->settings;
        cr_assert_str_eq(rh->headers.v[0].secret_file, "/etc/offboard/tenant");
        cr_assert_null(rh->headers.v[0].value);
        /* JSON numbers are written from their value */
        cr_assert_str_eq(json_literal(revoke, "plus"), "5");
        cr_assert_str_eq(json_literal(revoke, "octal"), "7");
        cr_assert_str_eq(json_literal(revoke, "zero"), "0");
        cr_assert_str_eq(json_literal(revoke, "big"), "42");
        cr_assert_str_eq(json_literal(revoke, "yes"), "true");
        cr_assert_str_eq(json_literal(revoke, "none"), "null");
        cr_assert_str_eq(json_literal(revoke, "text"), "(a string)");
        /* per-transition safety limits; the global ones keep their defaults */
        cr_assert_eq(c->safety.max_accounts, 20);
        cr_assert_eq(c->safety.max_percent, 10);
        for (size_t i = 0; i < c->ntransitions; i++) {
                struct ob_transition *t = &c->transitions[i];
                bool deact = strcmp(t->name, "deactivate") == 0;
                cr_assert_eq(t->max_accounts, deact ? 3 : 0, "%s", t->name);
                cr_assert_eq(t->max_percent, deact ? 2 : 0, "%s", t->name);
        }
        /* the mapping's required_attributes are collected and requested */
        cr_assert(has_ci(c->required_attributes, "userAccountControl"));
        cr_assert(has_ci(c->directory.attributes, "userAccountControl"));
        cr_assert_str_eq(c->transfer_fallback, "uid=trent,ou=people,dc=example,dc=org");
        ob_config_free(c);
}

Test(config, search_limits_default_to_half_an_hour_and_ten_thousand_pages)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "minimal.yaml", &c, &err), 0, "%s", err.message);
        cr_assert_eq(c->directory.search_deadline_ms, 30 * 60 * 1000);
        cr_assert_eq(c->directory.max_pages, 10000);
        cr_assert_null(c->required_attributes);
        for (size_t i = 0; i < c->ntransitions; i++)
                cr_assert_eq(c->transitions[i].max_accounts, 0);
        ob_config_free(c);
}

/* A temporary configuration: the caller writes the rest into *ret_f. */
static char *start_generated(FILE **ret_f, const char *directory_tail)
{
        char *path = strdup("/tmp/ob-test-config-XXXXXX");
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs("mappings: [" OB_SOURCE_DIR "/mappings/openldap.yaml]\n", f);
        fprintf(f, "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\n%s", directory_tail);
        *ret_f = f;
        return path;
}

/* Loads and removes a generated configuration; *ret is the result or NULL. */
static int load_generated_config(char *path, struct ob_config **ret, struct ob_config_error *err)
{
        *ret = NULL;
        int r = ob_config_load(path, ret, err);
        unlink(path);
        free(path);
        return r;
}

static int load_generated(char *path, struct ob_config_error *err)
{
        struct ob_config *c;
        int r = load_generated_config(path, &c, err);
        ob_config_free(c);
        return r;
}

/* service.listen: loopback or a unix socket at an absolute path, with a
 * port; anything else fails at the value. */
Test(config, service_listen_takes_loopback_addresses_and_absolute_unix_paths_only)
{
        static const struct {
                const char *value, *needle; /* needle NULL: loads */
        } cases[] = {
                {"127.0.0.1:9100", NULL},
                {"127.1.2.3:1", NULL},
                {"\"[::1]:65535\"", NULL},
                {"localhost:9100", NULL},
                {"unix:/run/offboard/metrics.sock", NULL},
                {"0.0.0.0:9100", "'0.0.0.0:9100' is not a loopback address"},
                {"10.0.0.1:9100", "is not a loopback address"},
                {"\"[::]:9100\"", "'[::]:9100' is not a loopback address"},
                {"\"[::1]\"", "'[::1]' has no port"},
                {"127.0.0.1", "'127.0.0.1' has no port"},
                {"\"127.0.0.1:\"", "has no port"},
                {"localhost:0", "has a port that is not a number from 1 to 65535"},
                {"localhost:65536", "has a port that is not a number from 1 to 65535"},
                {"localhost:91x", "has a port that is not a number"},
                {"example.org:9100", "is not a loopback address"},
                {"\"::1:9100\"", "is an IPv6 address without brackets"},
                {"unix:run/metrics.sock", "'unix:run/metrics.sock' is not an absolute path"},
                {"\"unix:\"", "is not an absolute path"},
                {"9100", "'9100' is not a loopback address"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FILE *f;
                char *path = start_generated(&f, "");
                fprintf(f, "service:\n  listen: %s\n", cases[i].value);
                fclose(f);
                struct ob_config *c;
                struct ob_config_error err;
                int r = load_generated_config(path, &c, &err);
                if (!cases[i].needle) {
                        cr_expect_eq(r, 0, "%s: %s", cases[i].value, err.message);
                        cr_expect(c && c->listen && strstr(cases[i].value, c->listen), "%s", cases[i].value);
                } else {
                        cr_expect_eq(r, -OB_ECONFIG, "%s loaded", cases[i].value);
                        cr_expect_not_null(strstr(err.message, cases[i].needle), "%s: %s", cases[i].value,
                                           err.message);
                        cr_expect_not_null(strstr(err.message, ":6:11: service.listen: "), "%s: %s", cases[i].value,
                                           err.message);
                }
                ob_config_free(c);
        }
}

Test(config, more_than_a_hundred_thousand_nodes_is_an_error, .timeout = 30)
{
        FILE *f;
        char *path = start_generated(&f, "  attributes: [");
        for (size_t i = 0; i < 100000; i++)
                fputs("a,", f);
        fputs("a]\n", f);
        fclose(f);
        struct ob_config_error err;
        cr_assert_eq(load_generated(path, &err), -OB_ECONFIG);
        cr_assert(strstr(err.message, "more than 100000 YAML nodes"), "%s", err.message);
}

/* Each action runs after the two before it: a search that follows every path
 * takes 2^n steps; one that colours each action takes n. */
static char *diamonds(int n, bool loop)
{
        FILE *f;
        char *path = start_generated(&f, "");
        fputs("connectors:\n  apps: {type: http, base_url: https://a.example}\nactions:\n", f);
        fprintf(f, "  a0: {connector: apps, url: /x%s}\n", loop ? ", after: [a2]" : "");
        fputs("  a1: {connector: apps, url: /x, after: [a0]}\n", f);
        for (int i = 2; i < n; i++)
                fprintf(f, "  a%d: {connector: apps, url: /x, after: [a%d, a%d]}\n", i, i - 1, i - 2);
        fclose(f);
        return path;
}

Test(config, cycle_detection_is_linear_in_the_after_lists, .timeout = 20)
{
        struct ob_config_error err;
        cr_assert_eq(load_generated(diamonds(2000, false), &err), 0, "%s", err.message);
        cr_assert_eq(load_generated(diamonds(2000, true), &err), -OB_ECONFIG);
        cr_assert(strstr(err.message, "form a cycle"), "%s", err.message);
}

/* writeback.object_class: null (or ~, or nothing) adds no class at all: not
 * a class called "null", and not the offboardAccount default either. */
Test(config, object_class_null_means_no_class_and_a_real_class_is_kept)
{
        static const struct {
                const char *value, *want; /* want NULL: no class */
        } cases[] = {
                {" null", NULL},             /* YAML's null */
                {" ~", NULL},                /* its short form */
                {" Null", NULL},             /* YAML's other spellings of null */
                {" NULL", NULL},
                {"", NULL},                  /* no value at all */
                {" myAccount", "myAccount"}, /* a class of the site's schema */
                {" \"null\"", "null"},       /* quoted, it is a name */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FILE *f;
                char *path = start_generated(&f, "");
                fprintf(f, "writeback:\n  object_class:%s\n", cases[i].value);
                fclose(f);
                struct ob_config *c;
                struct ob_config_error err;
                cr_assert_eq(load_generated_config(path, &c, &err), 0, "'%s': %s", cases[i].value, err.message);
                struct ob_writeback_config *w = &c->writeback;
                if (cases[i].want) {
                        cr_assert_str_eq(w->object_class, cases[i].want, "'%s'", cases[i].value);
                        cr_assert(!w->no_object_class, "'%s'", cases[i].value);
                        cr_assert(has_ci(c->directory.attributes, "objectClass"), "'%s'", cases[i].value);
                } else {
                        cr_assert_null(w->object_class, "'%s': class '%s'", cases[i].value, w->object_class);
                        cr_assert(w->no_object_class, "'%s'", cases[i].value);
                        /* nothing to add, so the entry's classes are not read */
                        cr_assert(!has_ci(c->directory.attributes, "objectClass"), "'%s'", cases[i].value);
                }
                /* the other write-back attributes keep their defaults */
                cr_assert_str_eq(w->status_attribute, "offboardStatus", "'%s'", cases[i].value);
                cr_assert_str_eq(w->actions_attribute, "offboardAction", "'%s'", cases[i].value);
                ob_config_free(c);
        }
        /* and without the key, the default class */
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(FIX "minimal.yaml", &c, &err), 0, "%s", err.message);
        cr_assert_str_eq(c->writeback.object_class, "offboardAccount");
        cr_assert(!c->writeback.no_object_class);
        ob_config_free(c);
}

static void write_file(char *path, size_t size, const char *dir, const char *name, const char *text)
{
        snprintf(path, size, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s", path);
        fputs(text, f);
        fclose(f);
}

/* A mapping file's directory: section only fills in what the configuration's
 * own directory: section (and any mapping listed before it) left unset. */
Test(config, a_mappings_directory_defaults_lose_to_the_configurations_own)
{
        char dir[] = "/tmp/ob-test-mapping-dir-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char site[256];
        write_file(site, sizeof(site), dir, "site.yaml",
                   "directory:\n"
                   "  filter: \"(objectClass=sitePerson)\"\n"
                   "  id_attribute: siteId\n"
                   "rules:\n"
                   "  - name: gone\n"
                   "    status: ended\n"
                   "    when:\n"
                   "      attribute: siteGone\n"
                   "      equals: \"true\"\n");
        char other[256];
        write_file(other, sizeof(other), dir, "other.yaml",
                   "directory:\n"
                   "  filter: \"(objectClass=otherPerson)\"\n"
                   "  id_attribute: otherId\n"
                   "rules:\n"
                   "  - name: away\n"
                   "    status: inactive\n"
                   "    when:\n"
                   "      attribute: otherAway\n"
                   "      equals: \"true\"\n");
        /* mapping paths are relative to the configuration, in the same directory */
        static const struct {
                const char *directory_tail, *mappings;
                const char *filter, *id_attribute;
        } cases[] = {
                /* the configuration sets filter: it wins; id_attribute comes from the mapping */
                {"  filter: \"(objectClass=person)\"\n", "site.yaml", "(objectClass=person)", "siteId"},
                /* the configuration sets id_attribute: it wins; filter comes from the mapping */
                {"  id_attribute: uid\n", "site.yaml", "(objectClass=sitePerson)", "uid"},
                /* the configuration sets neither: both from the mapping, not the built-in defaults */
                {"", "site.yaml", "(objectClass=sitePerson)", "siteId"},
                /* a later mapping's defaults lose to an earlier one's */
                {"", "site.yaml, other.yaml", "(objectClass=sitePerson)", "siteId"},
                {"", "other.yaml, site.yaml", "(objectClass=otherPerson)", "otherId"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char text[1024], path[256];
                snprintf(text, sizeof(text), "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\n%smappings: [%s]\n",
                         cases[i].directory_tail, cases[i].mappings);
                write_file(path, sizeof(path), dir, "offboard.yaml", text);
                struct ob_config *c = NULL;
                struct ob_config_error err;
                int r = ob_config_load(path, &c, &err);
                unlink(path);
                cr_assert_eq(r, 0, "case %zu: %s", i, err.message);
                cr_assert_str_eq(c->directory.filter, cases[i].filter, "case %zu: filter '%s'", i, c->directory.filter);
                cr_assert_str_eq(c->directory.id_attribute, cases[i].id_attribute, "case %zu: id_attribute '%s'", i,
                                 c->directory.id_attribute);
                /* keys no one sets keep the built-in defaults */
                cr_assert_str_eq(c->directory.username_attribute, "uid", "case %zu: '%s'", i,
                                 c->directory.username_attribute);
                ob_config_free(c);
        }
        unlink(site);
        unlink(other);
        cr_assert_eq(rmdir(dir), 0);
}

/* Conditions that compare with a policy entry: a reference to a policy no
 * section defines, or one without a DN, fails the load (validate) with the
 * place it was made; so do malformed bounds. */
Test(config, policy_references_and_bounds_are_checked_when_loading)
{
        char dir[] = "/tmp/ob-test-policy-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        static const struct {
                const char *mapping, *config_tail, *needle;
        } cases[] = {
                {"rules:\n  - name: r\n    status: locked\n    when: {attribute: n, at_least: {policy: nope.max}}\n",
                 "",
                 "m.yaml:4:45: unknown policy 'nope' (no policies: section defines one)"},
                {"policies: {pw: {dn: \"cn=p,dc=x\"}}\nrules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: n, at_least: {policy: pwd.max}}\n",
                 "", "unknown policy 'pwd' (policies: pw)"},
                {"policies: {pw: {attributes: [max]}}\nrules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: n, at_least: {policy: pw.max}}\n",
                 "", "policy 'pw' has no dn: set policies.pw.dn in the configuration"},
                {"rules:\n  - name: r\n    status: locked\n    when: {attribute: n, at_least: {policy: pw}}\n", "",
                 "m.yaml:4:45: at_least must be NAME.attribute"},
                {"rules:\n  - name: r\n    status: locked\n    when: {attribute: n, below: many}\n", "",
                 "m.yaml:4:33: below must be a whole number or {policy: NAME.attribute}, not 'many'"},
                {"rules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: t, within: {time: generalized, duration: {policy: pw.d}}}\n",
                 "policies: {pw: {dn: \"cn=p,dc=x\"}}\n", "needs policy: NAME.attribute and unit:"},
                {"rules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: t, within: {time: filetime, duration: {policy: pw.d, unit: interval, "
                 "zero: forever}}}\n",
                 "policies: {pw: {dn: \"cn=p,dc=x\"}}\n", "zero: forever is implied by unit: interval"},
                {"rules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: t, within: {time: ages, duration: 1h}}\n",
                 "", "within.time must name the time format"},
                {"rules:\n  - name: r\n    status: locked\n    when: {attribute: t, at_or_after: {attribute: u}}\n", "",
                 "at_or_after needs attribute: (the other time) and time: (its format)"},
                {"rules:\n  - name: r\n    status: locked\n    when: {at_least: 3}\n", "",
                 "the test 'at_least' needs an attribute: key"},
                {"policies: {pw: {dn: \"cn=p,${realm}\"}}\nrules:\n  - name: r\n    status: locked\n"
                 "    when: {attribute: n, at_least: 1}\n",
                 "", "m.yaml:1:21: policies.pw.dn: 'cn=p,${realm}' is not a DN"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char mpath[256], cpath[256], text[512];
                write_file(mpath, sizeof(mpath), dir, "m.yaml", cases[i].mapping);
                snprintf(text, sizeof(text),
                         "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\nmappings: [m.yaml]\n%s",
                         cases[i].config_tail);
                write_file(cpath, sizeof(cpath), dir, "offboard.yaml", text);
                struct ob_config *c = NULL;
                struct ob_config_error err;
                int r = ob_config_load(cpath, &c, &err);
                unlink(mpath);
                unlink(cpath);
                cr_expect_eq(r, -OB_ECONFIG, "case %zu loaded", i);
                cr_expect_not_null(strstr(err.message, cases[i].needle), "case %zu: %s", i, err.message);
                if (r == 0)
                        ob_config_free(c);
        }
        cr_assert_eq(rmdir(dir), 0);
}

/* The configuration's policies: gives the DN a mapping leaves to the site,
 * and wins over a mapping's default; the attributes the conditions compare
 * with are what the pass will read and require. */
Test(config, the_configurations_policy_dn_wins_and_the_compared_attributes_are_required)
{
        char path[64];
        snprintf(path, sizeof(path), "/tmp/ob-test-policy-%d.yaml", (int)getpid());
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\nmappings: [active-directory]\n"
              "policies:\n  domain:\n    dn: \"DC=corp,DC=example\"\n",
              f);
        fclose(f);
        struct ob_config *c = NULL;
        struct ob_config_error err;
        int r = ob_config_load(path, &c, &err);
        unlink(path);
        cr_assert_eq(r, 0, "%s", err.message);
        cr_assert_eq(c->npolicies, 1);
        cr_assert_str_eq(c->policies[0].dn, "DC=corp,DC=example");
        cr_assert_str_eq(c->policies[0].attributes[0], "lockoutDuration");
        cr_assert_null(c->policies[0].attributes[1]);
        ob_config_free(c);
}

/* ---- every error of a file (issue 15) --------------------------------------------- */

/* Loads text as a configuration with every error; the file is removed. */
static int load_all_text(const char *text, struct ob_config_errors *errs)
{
        char path[] = "/tmp/ob-test-errors-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        struct ob_config *c = (struct ob_config *)0x1;
        int r = ob_config_load_all(path, &c, errs);
        unlink(path);
        if (r == 0)
                ob_config_free(c);
        else
                cr_assert_eq(c, (struct ob_config *)0x1, "ret was written on failure");
        /* The file name is gone: keep "LINE:COL: message" to compare. */
        for (size_t i = 0; i < errs->n; i++) {
                char *m = errs->v[i].message;
                cr_assert(strncmp(m, path, strlen(path)) == 0 && m[strlen(path)] == ':', "error %zu: '%s'", i, m);
                memmove(m, m + strlen(path) + 1, strlen(m + strlen(path) + 1) + 1);
        }
        return r;
}

/* Every error as "LINE:COL: message" lines, for a failing assertion's message. */
static const char *listed(const struct ob_config_errors *errs)
{
        static char buf[8192];
        buf[0] = '\0';
        for (size_t i = 0; i < errs->n; i++)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "\n  %s", errs->v[i].message);
        return buf;
}

static void assert_errors(const struct ob_config_errors *errs, const char *const want[], size_t n)
{
        cr_assert_eq(errs->n, n, "%zu errors, not %zu:%s", errs->n, n, listed(errs));
        for (size_t i = 0; i < n; i++)
                cr_assert(strncmp(errs->v[i].message, want[i], strlen(want[i])) == 0, "error %zu is not '%s':%s", i,
                          want[i], listed(errs));
        cr_assert_not(errs->truncated);
}

static const char head[] = "directory:\n"                          /* 1 */
                           "  uri: ldaps://127.0.0.1:636\n"        /* 2 */
                           "  base: ou=people,dc=example,dc=org\n" /* 3 */
                           "mappings: [openldap]\n";               /* 4 */

Test(config, validate_reports_every_independent_mistake_with_its_line)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s"
                 "writeback:\n"                             /* 5 */
                 "  colour: blue\n"                         /* 6 */
                 "connectors:\n"                            /* 7 */
                 "  apps:\n"                                /* 8 */
                 "    type: http\n"                         /* 9 */
                 "    base_url: https://apps.example.org\n" /* 10 */
                 "    timeout: soon\n"                      /* 11 */
                 "actions:\n"                               /* 12 */
                 "  revoke:\n"                              /* 13 */
                 "    connector: apps\n"                    /* 14 */
                 "    url: /users/{{ account.uid }}\n"      /* 15 */
                 "transitions:\n"                           /* 16 */
                 "  leave:\n"                               /* 17 */
                 "    to: inactive\n"                       /* 18 */
                 "    actions: [revoke, cancel]\n",         /* 19 */
                 head);
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
        static const char *const want[] = {
                "6:3: unknown key 'colour' in writeback",
                "11:14: connectors.apps.timeout must be a duration",
                "19:14: transitions.leave.actions: unknown action 'cancel'",
        };
        assert_errors(&errs, want, 3);
        cr_assert_neq(errs.v[1].line[0], '\0', "the offending line is kept");
        cr_assert_eq(errs.v[1].column, 14);
        ob_config_errors_clear(&errs);
}

/* ob_config_load() (plan, reconcile, run, a reload) still fails with the
 * first of them. */
Test(config, the_single_error_load_gives_the_first_of_several)
{
        char path[] = "/tmp/ob-test-first-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "%swriteback:\n  colour: blue\nservice:\n  feed: carrier-pigeon\n", head);
        fclose(f);
        struct ob_config *c = (struct ob_config *)0x1;
        struct ob_config_error err;
        int r = ob_config_load(path, &c, &err);
        unlink(path);
        cr_assert_eq(r, -OB_ECONFIG);
        cr_assert_eq(c, (struct ob_config *)0x1);
        char want[128];
        snprintf(want, sizeof(want), "%s:6:3: unknown key 'colour' in writeback", path);
        cr_assert(strncmp(err.message, want, strlen(want)) == 0, "%s", err.message);
        cr_assert_str_eq(err.line, "  colour: blue");
}

Test(config, an_unknown_key_and_a_bad_value_in_two_actions_are_both_reported)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s"
                 "connectors:\n"                             /* 5 */
                 "  apps:\n"                                 /* 6 */
                 "    type: http\n"                          /* 7 */
                 "    base_url: https://apps.example.org\n"  /* 8 */
                 "actions:\n"                                /* 9 */
                 "  revoke:\n"                               /* 10 */
                 "    connector: apps\n"                     /* 11 */
                 "    url: /users/{{ account.uid }}\n"       /* 12 */
                 "    colour: blue\n"                        /* 13 */
                 "  disable:\n"                              /* 14 */
                 "    connector: apps\n"                     /* 15 */
                 "    url: /users/{{ account.uid }}\n"       /* 16 */
                 "    security: maybe\n"                     /* 17 */
                 "  notify:\n"                               /* 18 */
                 "    connector: apps\n"                     /* 19 */
                 "    url: /users/{{ account.uid }}\n"       /* 20 */
                 "transitions:\n"                            /* 21 */
                 "  leave:\n"                                /* 22 */
                 "    to: inactive\n"                        /* 23 */
                 "    actions: [revoke, disable, notify]\n", /* 24 */
                 head);
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
        static const char *const want[] = {
                "13:5: unknown key 'colour' in actions.revoke",
                "17:15: actions.disable.security must be true or false, not 'maybe'",
        };
        assert_errors(&errs, want, 2);
        ob_config_errors_clear(&errs);
}

/* No cascade: a connector whose type is refused is said once; the actions
 * that use it are not said to name an unknown connector, and what cannot be
 * checked without its kind is not checked. A connector with a known kind
 * and a bad value still lets its actions' own keys be checked; a misspelt
 * key is not said missing as well. */
Test(config, a_refused_connector_is_said_once_and_not_again_by_each_action_using_it)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s"
                 "connectors:\n"                                            /* 5 */
                 "  mail:\n"                                                /* 6 */
                 "    type: smtp\n"                                         /* 7 */
                 "  apps:\n"                                                /* 8 */
                 "    type: http\n"                                         /* 9 */
                 "    base_url: https://apps.example.org\n"                 /* 10 */
                 "    concurrency: many\n"                                  /* 11 */
                 "actions:\n"                                               /* 12 */
                 "  tell-manager:\n"                                        /* 13 */
                 "    connector: mail\n"                                    /* 14 */
                 "    to: \"{{ manager.mail }}\"\n"                         /* 15 */
                 "  tell-hr:\n"                                             /* 16 */
                 "    connector: mail\n"                                    /* 17 */
                 "  revoke:\n"                                              /* 18 */
                 "    connector: apps\n"                                    /* 19 */
                 "    url: /users/{{ account.uid }}\n"                      /* 20 */
                 "  disable:\n"                                             /* 21 */
                 "    connector: apps\n"                                    /* 22 */
                 "    urll: /users/{{ account.uid }}\n"                     /* 23 */
                 "transitions:\n"                                           /* 24 */
                 "  leave:\n"                                               /* 25 */
                 "    to: inactive\n"                                       /* 26 */
                 "    actions: [tell-manager, tell-hr, revoke, disable]\n", /* 27 */
                 head);
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
        static const char *const want[] = {
                "7:5: connectors.mail: unknown connector type 'smtp'",
                "11:18: connectors.apps.concurrency must be a whole number",
                "23:5: unknown key 'urll' in actions.disable",
        };
        assert_errors(&errs, want, 3);
        ob_config_errors_clear(&errs);
}

/* A misspelt section defines nothing: the names it would have defined are
 * not each said unknown. */
Test(config, a_misspelt_section_is_said_once_and_its_names_are_not_said_unknown)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s"
                 "connectrs:\n"                             /* 5 */
                 "  apps:\n"                                /* 6 */
                 "    type: http\n"                         /* 7 */
                 "    base_url: https://apps.example.org\n" /* 8 */
                 "actions:\n"                               /* 9 */
                 "  revoke:\n"                              /* 10 */
                 "    connector: apps\n"                    /* 11 */
                 "    url: /users/{{ account.uid }}\n"      /* 12 */
                 "  disable:\n"                             /* 13 */
                 "    connector: apps\n"                    /* 14 */
                 "    url: /users/{{ account.uid }}\n"      /* 15 */
                 "safety:\n"                                /* 16 */
                 "  max_percent: 200\n",                    /* 17 */
                 head);
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
        static const char *const want[] = {
                "5:1: unknown section 'connectrs'",
                "17:16: safety.max_percent must be a whole number from 0 to 100",
        };
        assert_errors(&errs, want, 2);
        ob_config_errors_clear(&errs);
}

/* A key whose value is refused is there: it is not said missing too, and
 * the checks across the section's keys (which would read it) are skipped. */
Test(config, a_refused_required_key_is_not_also_said_missing)
{
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text("directory:\n"
                                   "  uri: [ldaps://127.0.0.1]\n"
                                   "  base: ou=people,dc=example,dc=org\n"
                                   "  scope: deep\n"
                                   "mappings: [openldap]\n",
                                   &errs),
                     -OB_ECONFIG);
        static const char *const want[] = {
                "2:8: directory.uri must be a scalar",
                "4:10: directory.scope must be base, one or sub, not 'deep'",
        };
        assert_errors(&errs, want, 2);
        ob_config_errors_clear(&errs);
}

/* Each mapping rule is checked, whatever the rule before it. */
Test(config, mistakes_in_two_mapping_rules_are_both_reported_with_the_mapping_file)
{
        char dir[] = "/tmp/ob-test-rules-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char mpath[128], cpath[128];
        snprintf(mpath, sizeof(mpath), "%s/site.yaml", dir);
        snprintf(cpath, sizeof(cpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(mpath, "w");
        cr_assert_not_null(f);
        fputs("rules:\n"                                                     /* 1 */
              "  - name: locked\n"                                           /* 2 */
              "    status: gone\n"                                           /* 3 */
              "    when: {attribute: pwdAccountLockedTime, present: true}\n" /* 4 */
              "  - name: ended\n"                                            /* 5 */
              "    status: ended\n"                                          /* 6 */
              "    when: {attribute: contractEnd, passed: soon}\n"           /* 7 */
              "  - name: hidden\n"                                           /* 8 */
              "    status: inactive\n"                                       /* 9 */
              "    colour: blue\n"                                           /* 10 */
              "    when: {attribute: x, present: true}\n",                   /* 11 */
              f);
        fclose(f);
        f = fopen(cpath, "w");
        cr_assert_not_null(f);
        fputs("directory:\n  uri: ldaps://127.0.0.1:636\n  base: dc=example,dc=org\n  page_size: 0\n"
              "mappings: [site.yaml]\n",
              f);
        fclose(f);
        struct ob_config *c = NULL;
        struct ob_config_errors errs;
        cr_assert_eq(ob_config_load_all(cpath, &c, &errs), -OB_ECONFIG);
        char want[4][300];
        snprintf(want[0], sizeof(want[0]), "%s:4:14: directory.page_size must be", cpath);
        snprintf(want[1], sizeof(want[1]), "%s:2:5: rule 'locked': status must be locked, inactive or ended", mpath);
        snprintf(want[2], sizeof(want[2]), "%s:7:44: passed must name the time format", mpath);
        snprintf(want[3], sizeof(want[3]), "%s:10:5: unknown key 'colour' in a rule", mpath);
        cr_assert_eq(errs.n, 4, "%zu errors:%s", errs.n, listed(&errs));
        for (size_t i = 0; i < 4; i++)
                cr_assert(strncmp(errs.v[i].message, want[i], strlen(want[i])) == 0, "error %zu is not '%s':%s", i,
                          want[i], listed(&errs));
        ob_config_errors_clear(&errs);
        unlink(mpath);
        unlink(cpath);
        rmdir(dir);
}

/* Every key said twice, each once; the document is not walked after. */
Test(config, every_duplicate_key_is_reported)
{
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text("directory:\n"
                                   "  uri: ldaps://127.0.0.1:636\n"
                                   "  base: ou=people,dc=example,dc=org\n"
                                   "  base: dc=example,dc=org\n"
                                   "  page_size: nope\n"
                                   "mappings: [openldap]\n"
                                   "mappings: [freeipa]\n",
                                   &errs),
                     -OB_ECONFIG);
        static const char *const want[] = {
                "4:3: duplicate key 'base'",
                "7:1: duplicate key 'mappings'",
        };
        assert_errors(&errs, want, 2);
        ob_config_errors_clear(&errs);
}

/* A YAML syntax error ends the reading: nothing after it is a finding. */
Test(config, a_yaml_syntax_error_is_the_only_error)
{
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text("directory:\n  uri: ldaps://x\n  page_size: nope\n  base: [unclosed\n"
                                   "mappings: [openldap]\nbogus: 1\n",
                                   &errs),
                     -OB_ECONFIG);
        cr_assert_eq(errs.n, 1, "%zu errors:%s", errs.n, listed(&errs));
        cr_assert(strstr(errs.v[0].message, "YAML syntax error"), "%s", errs.v[0].message);
        ob_config_errors_clear(&errs);
}

/* Each fixture holds one mistake (bad-guard-two.yaml two: its team-owner
 * guard lacks directory.teams too): one error, the one ob_config_load()
 * gives, and no consequence of it. */
Test(config, every_bad_fixture_reports_its_one_mistake_and_nothing_else)
{
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                char path[512];
                snprintf(path, sizeof(path), FIX "%s", bad_cases[i].file);
                struct ob_config *c = NULL;
                struct ob_config_errors errs;
                cr_assert_eq(ob_config_load_all(path, &c, &errs), -OB_ECONFIG, "%s", bad_cases[i].file);
                size_t want = strcmp(bad_cases[i].file, "bad-guard-two.yaml") == 0 ? 2 : 1;
                cr_expect_eq(errs.n, want, "%s: %zu errors:%s", bad_cases[i].file, errs.n, listed(&errs));
                cr_expect(errs.n > 0 && strstr(errs.v[0].message, bad_cases[i].needle), "%s:%s", bad_cases[i].file,
                          listed(&errs));
                ob_config_errors_clear(&errs);
        }
}

/* Past OB_CONFIG_MAX_ERRORS the load stops, and says so once. */
Test(config, after_a_hundred_errors_the_load_stops_and_says_so)
{
        for (int extra = 0; extra <= 1; extra++) {
                size_t size = 64 * 1024, len = 0;
                char *text = malloc(size);
                cr_assert_not_null(text);
                len += (size_t)snprintf(text + len, size - len, "%s", head);
                len += (size_t)snprintf(text + len, size - len, "service:\n");
                for (int i = 0; i < OB_CONFIG_MAX_ERRORS + extra * 50; i++)
                        len += (size_t)snprintf(text + len, size - len, "  key%d: 1\n", i);
                struct ob_config_errors errs;
                cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
                free(text);
                cr_assert_eq(errs.n, OB_CONFIG_MAX_ERRORS, "%zu errors", errs.n);
                cr_assert_eq(errs.truncated, extra == 1, "with %d more: truncated %d", extra * 50, errs.truncated);
                cr_assert(strncmp(errs.v[99].message, "105:3: unknown key 'key99' in service", 37) == 0, "%s",
                          errs.v[99].message);
                char *buf = NULL;
                size_t blen = 0;
                FILE *f = open_memstream(&buf, &blen);
                ob_config_errors_print(&errs, f);
                fclose(f);
                size_t lines = 0;
                for (char *s = buf; *s; s++)
                        lines += *s == '\n';
                cr_assert_eq(lines, OB_CONFIG_MAX_ERRORS + (size_t)extra, "%zu lines", lines);
                const char *tail = "\ntoo many errors, stopping\n";
                bool has_tail = blen >= strlen(tail) && strcmp(buf + blen - strlen(tail), tail) == 0;
                cr_assert_eq(has_tail, extra == 1, "%s", buf + (blen > 200 ? blen - 200 : 0));
                free(buf);
                ob_config_errors_clear(&errs);
        }
}

/* A misspelt policies: in a mapping file defines nothing: the rules that
 * name its policies are not each said to name an unknown one. */
Test(config, a_misspelt_policies_key_is_said_once_and_its_policies_are_not_said_unknown)
{
        char dir[] = "/tmp/ob-test-policies-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char mpath[128], cpath[128];
        snprintf(mpath, sizeof(mpath), "%s/site.yaml", dir);
        snprintf(cpath, sizeof(cpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(mpath, "w");
        cr_assert_not_null(f);
        fputs("policys:\n"                                                                   /* 1 */
              "  lockout: {dn: \"cn=lockout,dc=example,dc=org\"}\n"                          /* 2 */
              "rules:\n"                                                                     /* 3 */
              "  - name: locked\n"                                                           /* 4 */
              "    status: locked\n"                                                         /* 5 */
              "    when: {attribute: badPwdCount, at_least: {policy: lockout.threshold}}\n", /* 6 */
              f);
        fclose(f);
        f = fopen(cpath, "w");
        cr_assert_not_null(f);
        fputs("directory:\n  uri: ldaps://127.0.0.1:636\n  base: dc=example,dc=org\nmappings: [site.yaml]\n", f);
        fclose(f);
        struct ob_config *c = NULL;
        struct ob_config_errors errs;
        int r = ob_config_load_all(cpath, &c, &errs);
        unlink(mpath);
        unlink(cpath);
        rmdir(dir);
        cr_assert_eq(r, -OB_ECONFIG);
        char want[300];
        snprintf(want, sizeof(want), "%s:1:1: unknown key 'policys' in a mapping file", mpath);
        cr_assert_eq(errs.n, 1, "%zu errors:%s", errs.n, listed(&errs));
        cr_assert(strncmp(errs.v[0].message, want, strlen(want)) == 0, "%s", errs.v[0].message);
        ob_config_errors_clear(&errs);
}

/* ---- every error inside one value, and in the kinds' checks (issue 15) ----------- */

/* Loads text and asserts exactly these errors, in this order. */
static void assert_load_errors(const char *text, const char *const want[], size_t n)
{
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG, "loaded:\n%s", text);
        assert_errors(&errs, want, n);
        ob_config_errors_clear(&errs);
}

static const char http_apps[] = "connectors:\n"                             /* 5 */
                                "  apps:\n"                                 /* 6 */
                                "    type: http\n"                          /* 7 */
                                "    base_url: https://apps.example.org\n"; /* 8 */

/* Each header of a connector is checked whatever the one before it: a bad
 * name, a value_file mapping with an unknown key, an unknown field. */
Test(config, every_bad_header_of_a_connector_is_reported)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s%s"
                 "    headers:\n"                                /* 9 */
                 "      X Bad: one\n"                            /* 10 */
                 "      X-Good: offboard\n"                      /* 11 */
                 "      X-Key: {value_file: /k, bogus: 1}\n"     /* 12 */
                 "      X-Who: \"{{ account.nope }}\"\n"         /* 13 */
                 "      Authorization: Bearer x\n"               /* 14 */
                 "actions:\n"                                    /* 15 */
                 "  revoke:\n"                                   /* 16 */
                 "    connector: apps\n"                         /* 17 */
                 "    url: /users/{{ account.uid }}\n"           /* 18 */
                 "    headers: {X-A: \"{{ x }}\", \"B C\": d}\n", /* 19 */
                 head, http_apps);
        static const char *const want[] = {
                "10:7: connectors.apps.headers: 'X Bad' is not a valid header name",
                "12:31: unknown key 'bogus' in connectors.apps.headers.X-Key (expected one of: value_file)",
                "13:18: connectors.apps.headers: unknown template field 'account.nope'",
                "14:7: connectors.apps.headers: set credentials with the connector's auth: section",
                "19:24: actions.revoke.headers: unknown template field 'x'",
                "19:31: actions.revoke.headers: 'B C' is not a valid header name",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        /* One mistake: one error. */
        snprintf(text, sizeof(text), "%s%s    headers:\n      X Bad: one\n      X-Good: offboard\n", head, http_apps);
        static const char *const one[] = {"10:7: connectors.apps.headers: 'X Bad' is not a valid header name"};
        assert_load_errors(text, one, 1);
}

/* Each leaf of a json: body, at any depth, and each value of a form: body. */
Test(config, every_bad_template_of_a_json_or_form_body_is_reported)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s%s"
                 "actions:\n"                                         /* 9 */
                 "  revoke:\n"                                        /* 10 */
                 "    connector: apps\n"                              /* 11 */
                 "    url: /users/{{ account.uid }}\n"                /* 12 */
                 "    json:\n"                                        /* 13 */
                 "      reason: \"{{ status.nam }}\"\n"               /* 14 */
                 "      who: \"{{ account.zzz }}\"\n"                 /* 15 */
                 "      ok: \"{{ status.name }}\"\n"                  /* 16 */
                 "      what: \"{{ unclosed\"\n"                      /* 17 */
                 "      deep: {list: [\"{{ a }}\", 1, \"{{ b }}\"]}\n" /* 18 */
                 "  notify:\n"                                        /* 19 */
                 "    connector: apps\n"                              /* 20 */
                 "    url: /notify\n"                                 /* 21 */
                 "    form:\n"                                        /* 22 */
                 "      user: \"{{ account.uidd }}\"\n"               /* 23 */
                 "      list: [a, b]\n"                               /* 24 */
                 "      why: \"{{ status.reason }}\"\n"               /* 25 */
                 "      rule: \"{{ status.rul }}\"\n",                /* 26 */
                 head, http_apps);
        static const char *const want[] = {
                "14:19: actions.revoke.json: unknown template field 'status.nam'",
                "15:16: actions.revoke.json: unknown template field 'account.zzz'",
                "17:14: actions.revoke.json: unclosed '{{' in template",
                "18:25: actions.revoke.json: unknown template field 'a'",
                "18:39: actions.revoke.json: unknown template field 'b'",
                "23:17: actions.notify.form: unknown template field 'account.uidd'",
                "24:13: actions.notify.form: a form value must be a scalar",
                "26:17: actions.notify.form: unknown template field 'status.rul'",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        snprintf(text, sizeof(text),
                 "%s%sactions:\n  revoke:\n    connector: apps\n    url: /u\n    json:\n"
                 "      reason: \"{{ status.nam }}\"\n      ok: \"{{ status.name }}\"\n",
                 head, http_apps);
        static const char *const one[] = {"14:19: actions.revoke.json: unknown template field 'status.nam'"};
        assert_load_errors(text, one, 1);
}

/* Each field of one template: a URL with two unknown fields and a fragment,
 * a body string with an empty field; an unclosed '{{' ends the reading. */
Test(config, every_bad_field_of_one_template_is_reported)
{
        char text[2048];
        snprintf(text, sizeof(text),
                 "%s%s"
                 "actions:\n"                                                          /* 9 */
                 "  revoke:\n"                                                         /* 10 */
                 "    connector: apps\n"                                               /* 11 */
                 "    url: \"/u/{{ a }}/{{ account.uid }}/{{ b }}#x#y\"\n"             /* 12 */
                 "    json: {r: \"{{ }} {{ status.name }} {{ c }} {{ d\", s: \"{{ e }}\"}\n", /* 13 */
                 head, http_apps);
        static const char *const want[] = {
                "12:17: actions.revoke.url: unknown template field 'a'",
                "12:43: actions.revoke.url: unknown template field 'b'",
                "12:47: actions.revoke.url: a URL template cannot have a fragment ('#')",
                "13:16: actions.revoke.json: empty or overlong field name in template",
                "13:43: actions.revoke.json: unknown template field 'c'",
                "13:48: actions.revoke.json: unclosed '{{' in template",
                "13:62: actions.revoke.json: unknown template field 'e'",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        snprintf(text, sizeof(text),
                 "%s%sactions:\n  revoke:\n    connector: apps\n    url: \"/u/{{ a }}/{{ account.uid }}\"\n", head,
                 http_apps);
        static const char *const one[] = {"12:17: actions.revoke.url: unknown template field 'a'"};
        assert_load_errors(text, one, 1);
}

/* An action's and a transition's when:, each key and each nested
 * condition; what the keys must be together is not said after an unknown
 * key (perhaps the missing one, misspelt). */
Test(config, every_mistake_in_a_condition_and_its_nested_conditions_is_reported)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "%s%s"
                 "actions:\n"                                                    /* 9 */
                 "  revoke:\n"                                                   /* 10 */
                 "    connector: apps\n"                                         /* 11 */
                 "    url: /u\n"                                                 /* 12 */
                 "    when:\n"                                                   /* 13 */
                 "      status: [inactive, deletd, gone]\n"                      /* 14 */
                 "      frob: 1\n"                                               /* 15 */
                 "      any:\n"                                                  /* 16 */
                 "        - {attribute: x, passed: soon}\n"                      /* 17 */
                 "  free:\n"                                                     /* 18 */
                 "    connector: apps\n"                                         /* 19 */
                 "    url: /f\n"                                                 /* 20 */
                 "    when:\n"                                                   /* 21 */
                 "      all:\n"                                                  /* 22 */
                 "        - {status: [inactive, deletd]}\n"                      /* 23 */
                 "        - {frob: 1}\n"                                         /* 24 */
                 "        - {passed: soon}\n"                                    /* 25 */
                 "        - not: {attribute: \"a b\", bits: 0}\n"                /* 26 */
                 "        - {attribute: y, within: {time: never, duration: 0}}\n" /* 27 */
                 "        - {attribute: z, at_least: {zero: always, colour: red}}\n" /* 28 */
                 "transitions:\n"                                                /* 29 */
                 "  leave:\n"                                                    /* 30 */
                 "    to: inactive\n"                                            /* 31 */
                 "    actions: [revoke, free]\n"                                 /* 32 */
                 "    when: {any: [{present: maybe}, {status: locked, attribute: q}]}\n", /* 33 */
                 head, http_apps);
        static const char *const want[] = {
                "14:26: status: unknown status 'deletd'",
                "14:34: status: unknown status 'gone'",
                "15:7: unknown key 'frob' in a condition",
                "16:7: a condition takes one test",
                "17:34: passed must name the time format: generalized, filetime or days, not 'soon'",
                "23:31: status: unknown status 'deletd'",
                "24:12: unknown key 'frob' in a condition",
                "25:20: passed must name the time format: generalized, filetime or days, not 'soon'",
                "25:11: the test 'passed' needs an attribute: key",
                "26:28: attribute: 'a b' is not an LDAP attribute name",
                "26:41: bits must be a non-zero number such as 0x2, not '0'",
                "27:41: within.time must name the time format: generalized, filetime or days, not 'never'",
                "27:58: within.duration must be a duration such as 30m or 1d",
                "28:43: at_least.zero can only be never",
                "28:51: unknown key 'colour' in at_least (expected policy, zero)",
                "33:28: present must be true or false, not 'maybe'",
                "33:18: the test 'present' needs an attribute: key",
                "33:64: attribute: has no meaning with 'status'",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        snprintf(text, sizeof(text),
                 "%s%sactions:\n  revoke:\n    connector: apps\n    url: /u\n    when:\n"
                 "      all: [{status: [inactive, deletd]}, {attribute: x, present: true}]\n",
                 head, http_apps);
        static const char *const one[] = {"14:33: status: unknown status 'deletd'"};
        assert_load_errors(text, one, 1);
}

/* A mapping rule's condition, each nested one, whatever the rule's other keys. */
Test(config, every_mistake_in_a_mapping_rules_nested_conditions_is_reported)
{
        char dir[] = "/tmp/ob-test-conds-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char mpath[128], cpath[128];
        snprintf(mpath, sizeof(mpath), "%s/site.yaml", dir);
        snprintf(cpath, sizeof(cpath), "%s/offboard.yaml", dir);
        static const char *const rules[2] = {
                "rules:\n"                                                            /* 1 */
                "  - name: locked\n"                                                  /* 2 */
                "    status: locked\n"                                                /* 3 */
                "    colour: blue\n"                                                  /* 4 */
                "    when:\n"                                                         /* 5 */
                "      any:\n"                                                        /* 6 */
                "        - {attribute: pwdAccountLockedTime, present: perhaps}\n"     /* 7 */
                "        - {status: locked, attribute: a}\n"                          /* 8 */
                "        - all: [{attribute: a, equals: [x, [y]]}, {attribute: b}]\n" /* 9 */
                "        - {attribute: c, at_or_after: {time: soon}}\n",              /* 10 */
                "rules:\n"
                "  - name: locked\n"
                "    status: locked\n"
                "    when:\n"
                "      any:\n"
                "        - {attribute: pwdAccountLockedTime, present: perhaps}\n"
                "        - {attribute: b, present: true}\n",
        };
        static const char *const want[] = {
                "4:5: unknown key 'colour' in a rule",
                "7:54: present must be true or false, not 'perhaps'",
                "8:12: a mapping rule cannot test the status it derives",
                "9:44: equals must be a scalar, not a list",
                "9:51: a condition needs a test",
                "10:39: at_or_after needs attribute: (the other time) and time: (its format)",
                "10:46: at_or_after.time must name the time format: generalized, filetime or days, not 'soon'",
        };
        for (size_t t = 0; t < 2; t++) {
                FILE *f = fopen(mpath, "w");
                cr_assert_not_null(f);
                fputs(rules[t], f);
                fclose(f);
                f = fopen(cpath, "w");
                cr_assert_not_null(f);
                fputs("directory:\n  uri: ldaps://127.0.0.1:636\n  base: dc=example,dc=org\nmappings: [site.yaml]\n",
                      f);
                fclose(f);
                struct ob_config *c = NULL;
                struct ob_config_errors errs;
                cr_assert_eq(ob_config_load_all(cpath, &c, &errs), -OB_ECONFIG);
                size_t n = t == 0 ? OB_ELEMENTSOF(want) : 1;
                cr_assert_eq(errs.n, n, "%zu errors:%s", errs.n, listed(&errs));
                for (size_t i = 0; i < n; i++) {
                        char w[300];
                        snprintf(w, sizeof(w), "%s:%s", mpath, t == 0 ? want[i] : "6:54: present must be true or false");
                        cr_assert(strncmp(errs.v[i].message, w, strlen(w)) == 0, "error %zu is not '%s':%s", i, w,
                                  listed(&errs));
                }
                ob_config_errors_clear(&errs);
        }
        unlink(mpath);
        unlink(cpath);
        rmdir(dir);
}

/* Each entry of a list: attribute names, DNs, statuses, numbers, the
 * exec kind's argv templates, action names. */
/* The directory's rules across keys are each said; one that rests on a
 * uri that is itself wrong is not said again. */
Test(config, every_rule_across_the_directorys_keys_is_reported)
{
        static const char text[] = "directory:\n"                                 /* 1 */
                                   "  uri: ldap://127.0.0.1:389\n"               /* 2 */
                                   "  base: ou=people,dc=example,dc=org\n"       /* 3 */
                                   "  bind_dn: cn=offboard,dc=example,dc=org\n"  /* 4 */
                                   "  starttls: false\n"                         /* 5 */
                                   "mappings: [openldap]\n";                     /* 6 */
        static const char *const want[] = {
                "5:13: directory.starttls: plain ldap:// without StartTLS sends every search and any bind in clear "
                "text; use ldaps://, ldapi:// or starttls: true, or set allow_insecure: true",
                "2:3: directory: bind_dn needs bind_password_file (the password is read from a file)",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        static const char text2[] = "directory:\n"                         /* 1 */
                                    "  uri: http://127.0.0.1\n"            /* 2 */
                                    "  base: ou=people,dc=example,dc=org\n" /* 3 */
                                    "  sasl_external: true\n"              /* 4 */
                                    "mappings: [openldap]\n";              /* 5 */
        static const char *const want2[] = {
                "2:8: directory.uri must start with ldap://, ldaps:// or ldapi://",
        };
        assert_load_errors(text2, want2, OB_ELEMENTSOF(want2));
}

/* A guard's rules across its keys are each said, once its condition is
 * known; a guard with two conditions says only that. */
Test(config, every_rule_across_a_guards_keys_is_reported)
{
        char text[1024];
        snprintf(text, sizeof(text),
                 "%s"
                 "guards:\n"                            /* 5 */
                 "  g1:\n"                              /* 6 */
                 "    owns_team_with_members: true\n"   /* 7 */
                 "    url: /a\n"                        /* 8 */
                 "    member_attribute: uid\n"          /* 9 */
                 "  g2:\n"                              /* 10 */
                 "    member_of: cn=a,dc=example,dc=org\n" /* 11 */
                 "    role: {attribute: title, ranks: [a, b], above: a}\n" /* 12 */
                 "    url: /b\n",                       /* 13 */
                 head);
        static const char *const want[] = {
                "8:10: guards.g1.url: only a connector: guard asks an endpoint",
                "9:23: guards.g1.member_attribute: only member_of and sole_member_of read a group",
                "7:29: guards.g1: owns_team_with_members needs directory.teams",
                "11:5: guards.g2: one condition per guard (owns_team_with_members: true, role:, member_of:, "
                "sole_member_of: or connector:)",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));
}

Test(config, every_bad_entry_of_a_list_is_reported)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "directory:\n"                                                          /* 1 */
                 "  uri: ldaps://127.0.0.1:636\n"                                        /* 2 */
                 "  base: ou=people,dc=example,dc=org\n"                                 /* 3 */
                 "  attributes: [mail, \"user name\", [x], \"a b\"]\n"                  /* 4 */
                 "mappings: [openldap]\n"                                                /* 5 */
                 "transfer:\n"                                                           /* 6 */
                 "  leader_of: [\"cn=it,dc=example,dc=org\", it-team, {x: 1}, hr]\n"    /* 7 */
                 "connectors:\n"                                                         /* 8 */
                 "  apps:\n"                                                             /* 9 */
                 "    type: http\n"                                                      /* 10 */
                 "    base_url: https://apps.example.org\n"                              /* 11 */
                 "  tool:\n"                                                             /* 12 */
                 "    type: exec\n"                                                      /* 13 */
                 "    program: /bin/true\n"                                              /* 14 */
                 "actions:\n"                                                            /* 15 */
                 "  revoke:\n"                                                           /* 16 */
                 "    connector: apps\n"                                                 /* 17 */
                 "    url: /u\n"                                                         /* 18 */
                 "    ok_status: [404, 99, x, 410, 600]\n"                               /* 19 */
                 "  run:\n"                                                              /* 20 */
                 "    connector: tool\n"                                                 /* 21 */
                 "    args: [\"{{ account.uid }}\", \"{{ uid }}\", [a], \"{{ mail\"]\n"  /* 22 */
                 "    ok_exit: [0, 256, -1]\n"                                           /* 23 */
                 "transitions:\n"                                                        /* 24 */
                 "  leave:\n"                                                            /* 25 */
                 "    from: [active, nobody, none, [x]]\n"                               /* 26 */
                 "    to: inactive\n"                                                    /* 27 */
                 "    actions: [revoke, {x: 1}, run, [y]]\n");                           /* 28 */
        static const char *const want[] = {
                "4:22: directory.attributes: 'user name' is not an LDAP attribute name",
                "4:35: directory.attributes must be a scalar, not a list",
                "4:40: directory.attributes: 'a b' is not an LDAP attribute name",
                "7:42: transfer.leader_of: 'it-team' is not a DN",
                "7:51: transfer.leader_of must be a scalar, not a mapping",
                "7:59: transfer.leader_of: 'hr' is not a DN",
                "19:22: actions.revoke.ok_status must be a whole number from 100 to 599, not '99'",
                "19:26: actions.revoke.ok_status must be a whole number from 100 to 599, not 'x'",
                "19:34: actions.revoke.ok_status must be a whole number from 100 to 599, not '600'",
                "22:37: actions.run.args: unknown template field 'uid'",
                "22:46: actions.run.args must be a scalar, not a list",
                "22:52: actions.run.args: unclosed '{{' in template",
                "23:18: actions.run.ok_exit must be a whole number from 0 to 255, not '256'",
                "23:23: actions.run.ok_exit must be a whole number from 0 to 255, not '-1'",
                "26:20: transitions.leave.from: unknown status 'nobody'",
                "26:34: transitions.leave.from must be a scalar, not a list",
                "28:23: transitions.leave.actions must be a scalar, not a mapping",
                "28:36: transitions.leave.actions must be a scalar, not a list",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        snprintf(text, sizeof(text), "%stransfer:\n  leader_of: [\"cn=it,dc=example,dc=org\", it-team]\n", head);
        static const char *const one[] = {"6:42: transfer.leader_of: 'it-team' is not a DN"};
        assert_load_errors(text, one, 1);
}

/* The kinds' own checks say each independent problem of a connector or an
 * action; a problem that follows from another (the operation a key belongs
 * to) is not said as well. */
Test(config, the_kinds_checks_report_each_independent_problem)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "%s"
                 "connectors:\n"                                                     /* 5 */
                 "  apps:\n"                                                         /* 6 */
                 "    type: http\n"                                                  /* 7 */
                 "    base_url: ftp://apps.example.org\n"                            /* 8 */
                 "    auth: {type: bearer, username: u}\n"                           /* 9 */
                 "  dir:\n"                                                          /* 10 */
                 "    type: ldap\n"                                                  /* 11 */
                 "    groups_base: not-a-dn\n"                                       /* 12 */
                 "    bind_dn: also-not\n"                                           /* 13 */
                 "    uri: http://x\n"                                               /* 14 */
                 "  tool:\n"                                                         /* 15 */
                 "    type: exec\n"                                                  /* 16 */
                 "    program: bin/true\n"                                           /* 17 */
                 "    env: {A: \"1\", 9x: \"2\", OFFBOARD_IDEMPOTENCY_KEY: \"3\"}\n" /* 18 */
                 "  groups:\n"                                                       /* 19 */
                 "    type: ldap\n"                                                  /* 20 */
                 "actions:\n"                                                        /* 21 */
                 "  modify:\n"                                                       /* 22 */
                 "    connector: groups\n"                                           /* 23 */
                 "    operation: modify\n"                                           /* 24 */
                 "    set: {\"a b\": x, title: [], mail: m}\n"                       /* 25 */
                 "    clear: [mail, \"{{ account.uid }}\", description, [x]]\n"      /* 26 */
                 "  remove:\n"                                                       /* 27 */
                 "    connector: groups\n"                                           /* 28 */
                 "    operation: remove_from_groups\n"                               /* 29 */
                 "    attributes: [member, owner, memberUid, seeAlso]\n"             /* 30 */
                 "  moved:\n"                                                        /* 31 */
                 "    connector: groups\n"                                           /* 32 */
                 "    operation: move\n"                                             /* 33 */
                 "    set: {a: b}\n"                                                 /* 34 */
                 "    from: remove\n",                                               /* 35 */
                 head);
        static const char *const want[] = {
                "8:15: connectors.apps.base_url must start with http:// or https://",
                "9:11: connectors.apps.auth: bearer auth takes token_file (only)",
                "12:18: connectors.dir.groups_base is not a DN",
                "13:14: connectors.dir.bind_dn is not a DN",
                "13:14: connectors.dir: bind_dn and bind_password_file go together",
                "14:10: connectors.dir.uri must start with ldap://, ldaps:// or ldapi://",
                "17:14: connectors.tool.program must be an absolute path",
                "18:10: connectors.tool.env: '9x' is not a variable name",
                "18:10: connectors.tool.env: OFFBOARD_IDEMPOTENCY_KEY is set by offboard for every run",
                "25:10: actions.modify.set: 'a b' is not an attribute name",
                "25:10: actions.modify.set.title must be a value or a list of values",
                "26:12: actions.modify: mail is both set and cleared",
                "26:12: actions.modify.clear must be a list of attribute names",
                "30:17: actions.remove.attributes: 'owner' is not one of member, uniqueMember or memberUid",
                "30:17: actions.remove.attributes: 'seeAlso' is not one of member, uniqueMember or memberUid",
                "34:10: actions.moved.set does not apply to move",
                "35:11: actions.moved.from does not apply to move",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));

        snprintf(text, sizeof(text),
                 "%sconnectors:\n  apps:\n    type: http\n    base_url: ftp://apps.example.org\n"
                 "    auth: {type: bearer, token_file: /t}\n",
                 head);
        static const char *const one[] = {"8:15: connectors.apps.base_url must start with http:// or https://"};
        assert_load_errors(text, one, 1);

        /* The scim kind: the groups of another operation, and a match: without its value:. */
        snprintf(text, sizeof(text),
                 "%s"
                 "connectors:\n"                         /* 5 */
                 "  idp:\n"                              /* 6 */
                 "    type: scim\n"                      /* 7 */
                 "    base_url: https://idp.example.org\n" /* 8 */
                 "actions:\n"                            /* 9 */
                 "  off:\n"                              /* 10 */
                 "    connector: idp\n"                  /* 11 */
                 "    operation: disable\n"              /* 12 */
                 "    match: externalId\n"               /* 13 */
                 "    groups: [staff]\n"                 /* 14 */
                 "    group_ids: [\"42\"]\n",            /* 15 */
                 head);
        static const char *const scim[] = {
                "14:13: actions.off: groups chooses the groups of remove_groups; operation disable has none",
                "15:16: actions.off: group_ids chooses the groups of remove_groups; operation disable has none",
                "13:12: actions.off: match: externalId needs a value: template",
        };
        assert_load_errors(text, scim, OB_ELEMENTSOF(scim));
}

/* The checks across a connector and the actions that use it: each action
 * is said. */
Test(config, the_kinds_checks_across_actions_report_each_action)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "%s"
                 "connectors:\n"                                        /* 5 */
                 "  plain:\n"                                           /* 6 */
                 "    type: http\n"                                     /* 7 */
                 "    headers: {X-Key: {value_file: /k}}\n"             /* 8 */
                 "  groups:\n"                                          /* 9 */
                 "    type: ldap\n"                                     /* 10 */
                 "actions:\n"                                           /* 11 */
                 "  one:\n"                                             /* 12 */
                 "    connector: plain\n"                               /* 13 */
                 "    url: http://a.example.org/x\n"                    /* 14 */
                 "  two:\n"                                             /* 15 */
                 "    connector: plain\n"                               /* 16 */
                 "    url: http://a.example.org/y\n"                    /* 17 */
                 "  strip:\n"                                           /* 18 */
                 "    connector: groups\n"                              /* 19 */
                 "    operation: remove_from_groups\n"                  /* 20 */
                 "  back:\n"                                            /* 21 */
                 "    connector: groups\n"                              /* 22 */
                 "    operation: restore_groups\n"                      /* 23 */
                 "    from: one\n"                                      /* 24 */
                 "  back2:\n"                                           /* 25 */
                 "    connector: groups\n"                              /* 26 */
                 "    operation: restore_groups\n"                      /* 27 */
                 "    from: nothing\n"                                  /* 28 */
                 "  moved:\n"                                           /* 29 */
                 "    connector: groups\n"                              /* 30 */
                 "    operation: move\n"                                /* 31 */
                 "    new_parent: ou=gone,dc=example,dc=org\n"          /* 32 */
                 "    after: [back]\n",                                 /* 33 */
                 head);
        static const char *const want[] = {
                "14:10: actions.one.url: connector 'plain' sends credentials",
                "17:10: actions.two.url: connector 'plain' sends credentials",
                "24:11: actions.back.from: 'one' is not a remove_from_groups action of an ldap connector",
                "28:11: actions.back2.from: 'nothing' is not a remove_from_groups action of an ldap connector",
                "31:16: actions.moved moves the entry, which changes the DN that action strip acts on",
                "31:16: actions.moved moves the entry, which changes the DN that action back2 acts on",
        };
        assert_load_errors(text, want, OB_ELEMENTSOF(want));
}

/* ---- ${CREDENTIALS_DIRECTORY} (systemd's LoadCredential=) ------------------------ */

Test(config, a_path_under_credentials_directory_resolves_to_the_units_own_directory)
{
        setenv("CREDENTIALS_DIRECTORY", "/run/credentials/offboard-reconcile.service", 1);
        FILE *f;
        char *path = start_generated(&f, "  bind_dn: cn=offboard,dc=x\n"
                                         "  bind_password_file: ${CREDENTIALS_DIRECTORY}/ldap-password\n"
                                         "  ca_file: relative/ca.pem\n");
        fclose(f);
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load_generated_config(path, &c, &err), 0, "%s", err.message);
        cr_assert_str_eq(c->directory.bind_password_file, "/run/credentials/offboard-reconcile.service/ldap-password");
        /* Other paths are untouched: relative to the configuration's directory. */
        cr_assert_str_eq(c->directory.ca_file, "/tmp/relative/ca.pem");
        ob_config_free(c);
        unsetenv("CREDENTIALS_DIRECTORY");
}

Test(config, a_path_under_credentials_directory_without_it_set_says_how_to_set_it)
{
        unsetenv("CREDENTIALS_DIRECTORY");
        FILE *f;
        char *path = start_generated(&f, "  bind_dn: cn=offboard,dc=x\n"
                                         "  bind_password_file: ${CREDENTIALS_DIRECTORY}/ldap-password\n");
        fclose(f);
        struct ob_config_error err;
        cr_assert_lt(load_generated(path, &err), 0);
        cr_assert_not_null(strstr(err.message, "CREDENTIALS_DIRECTORY"), "%s", err.message);
        cr_assert_not_null(strstr(err.message, "LoadCredential="), "%s", err.message);
        cr_assert_not_null(strstr(err.message, ":6:23:"), "the error names the line and column: %s", err.message);
}

/* ---- DNs (validate checks them, issue 15) ----------------------------------------- */

Test(config, a_base_or_teams_base_that_is_not_a_dn_is_an_error_at_its_line)
{
        static const char *const bad[] = {"  base: ou=people,,dc=x\n", "  base: people\n",
                                          "  teams: {base: \"ou=teams dc=x\"}\n"};
        for (size_t i = 0; i < OB_ELEMENTSOF(bad); i++) {
                char *path = strdup("/tmp/ob-test-config-XXXXXX");
                int fd = mkstemp(path);
                cr_assert_geq(fd, 0);
                FILE *f = fdopen(fd, "w");
                fputs("mappings: [" OB_SOURCE_DIR "/mappings/openldap.yaml]\n", f);
                fprintf(f, "directory:\n  uri: ldaps://127.0.0.1\n%s%s", strstr(bad[i], "teams") ? "  base: dc=x\n" : "",
                        bad[i]);
                fclose(f);
                struct ob_config_error err;
                cr_assert_lt(load_generated(path, &err), 0, "%s", bad[i]);
                cr_assert_not_null(strstr(err.message, "is not a DN"), "%s: %s", bad[i], err.message);
        }
}

Test(config, bind_dn_is_a_dn_or_an_active_directory_user_name)
{
        static const char *const good[] = {"cn=offboard,ou=services,dc=x", "svc-offboard@corp.example.org",
                                           "\"CORP\\\\svc-offboard\""};
        for (size_t i = 0; i < OB_ELEMENTSOF(good); i++) {
                char tail[200];
                snprintf(tail, sizeof(tail), "  bind_dn: %s\n  bind_password_file: /etc/offboard/pw\n", good[i]);
                FILE *f;
                char *path = start_generated(&f, tail);
                fclose(f);
                struct ob_config_error err;
                cr_assert_eq(load_generated(path, &err), 0, "%s: %s", good[i], err.message);
        }
        static const char *const bad[] = {"cn=offboard,,dc=x", "offboard"};
        for (size_t i = 0; i < OB_ELEMENTSOF(bad); i++) {
                char tail[200];
                snprintf(tail, sizeof(tail), "  bind_dn: %s\n  bind_password_file: /etc/offboard/pw\n", bad[i]);
                FILE *f;
                char *path = start_generated(&f, tail);
                fclose(f);
                struct ob_config_error err;
                cr_assert_lt(load_generated(path, &err), 0, "%s", bad[i]);
                cr_assert_not_null(strstr(err.message, "is not a DN"), "%s: %s", bad[i], err.message);
        }
}

/* ---- actions.X.modules: seed 000's transfer screen ---------------------------- */

static const char modules_head[] = "connectors:\n"                                    /* 5 */
                                   "  apps: {type: http, base_url: 'https://apps'}\n" /* 6 */
                                   "actions:\n"                                       /* 7 */
                                   "  transfer:\n"                                    /* 8 */
                                   "    connector: apps\n"                            /* 9 */
                                   "    url: /t\n"                                    /* 10 */
                                   "    json: {modules: '{{ transfer.modules }}'}\n"  /* 11 */
                                   "    modules:\n";                                  /* 12 */

Test(config, modules_keep_each_choice_in_order_with_its_criteria_and_condition)
{
        FILE *f;
        char *path = start_generated(&f, "");
        fprintf(f, "%s", modules_head);
        fputs("      opportunities: all\n"
              "      tasks: none\n"
              "      cases: {is: {status: open, priority: [high, 'urgent \"now\"']}}\n"
              "      contacts: {is_not: {region: EMEA}}\n"
              "      quotes: {records: all, when: {attribute: l, equals: Paris}}\n"
              "transitions:\n  leave: {to: inactive, actions: [transfer]}\n",
              f);
        fclose(f);
        struct ob_config *c;
        struct ob_config_error err;
        cr_assert_eq(load_generated_config(path, &c, &err), 0, "%s", err.message);
        const struct ob_action *a = action(c, "transfer");
        cr_assert_eq(a->nmodules, 5);
        static const char *const names[] = {"opportunities", "tasks", "cases", "contacts", "quotes"};
        static const enum ob_records records[] = {OB_RECORDS_ALL, OB_RECORDS_NONE, OB_RECORDS_MATCHING,
                                                  OB_RECORDS_MATCHING, OB_RECORDS_ALL};
        for (size_t i = 0; i < 5; i++) {
                cr_assert_str_eq(a->modules[i].name, names[i]);
                cr_assert_eq(a->modules[i].records, records[i], "%s", names[i]);
        }
        const struct ob_transfer_module *cases = &a->modules[2];
        cr_assert_not(cases->is_not);
        cr_assert_eq(cases->ncriteria, 2);
        cr_assert_str_eq(cases->criteria[0].field, "status");
        cr_assert_not(cases->criteria[0].list);
        cr_assert_str_eq(cases->criteria[0].values[0], "open");
        cr_assert_null(cases->criteria[0].values[1]);
        cr_assert(cases->criteria[1].list);
        cr_assert_str_eq(cases->criteria[1].values[1], "urgent \"now\"");
        cr_assert(a->modules[3].is_not);
        cr_assert_not_null(a->modules[4].when);
        cr_assert_null(a->modules[0].when);
        cr_assert(has_ci(c->directory.attributes, "l"), "a module's when: reads l, which must be requested");
        ob_config_free(c);
}

Test(config, every_mistake_in_modules_is_reported_at_its_key)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "%s%s"
                 "      a: some\n"                           /* 13 */
                 "      b: {is: {}}\n"                       /* 14 */
                 "      c: {is: {x: 1}, is_not: {y: 2}}\n"   /* 15 */
                 "      d: {records: some}\n"                /* 16 */
                 "      e: {when: {status: deleted}}\n"      /* 17 */
                 "      f: {is: {x: '{{ account.uid }}'}}\n" /* 18 */
                 "      g: {is: {x: {y: 1}}}\n"              /* 19 */
                 "      h: {is: {x: []}}\n"                  /* 20 */
                 "      i: {colour: red}\n"                  /* 21 */
                 "      j: [all]\n"                          /* 22 */
                 "  nosend:\n"                               /* 23 */
                 "    connector: apps\n"                     /* 24 */
                 "    url: /n\n"                             /* 25 */
                 "    modules: {tasks: all}\n"               /* 26 */
                 "  nolist:\n"                               /* 27 */
                 "    connector: apps\n"                     /* 28 */
                 "    url: /l?m={{ transfer.modules }}\n"    /* 29 */
                 "  empty:\n"                                /* 30 */
                 "    connector: apps\n"                     /* 31 */
                 "    url: /e\n"                             /* 32 */
                 "    json: {m: '{{ transfer.modules }}'}\n" /* 33 */
                 "    modules: {}\n",                        /* 34 */
                 head, modules_head);
        struct ob_config_errors errs;
        cr_assert_eq(load_all_text(text, &errs), -OB_ECONFIG);
        static const char *const want[] = {
                "13:10: actions.transfer.modules.a: unknown choice 'some' (expected one of: all, none, or a mapping",
                "14:15: actions.transfer.modules.b.is: empty criteria",
                "15:23: actions.transfer.modules.c: 'is' and 'is_not' together",
                "16:20: actions.transfer.modules.d.records: unknown choice 'some'",
                "17:10: actions.transfer.modules.e: say which records",
                "18:20: actions.transfer.modules.f.is.x: criteria are plain data, not templates",
                "19:19: actions.transfer.modules.g.is.x must be a value or a list of values, not a mapping",
                "20:19: actions.transfer.modules.h.is.x: an empty list matches nothing",
                "21:11: unknown key 'colour' in actions.transfer.modules.i",
                "22:10: actions.transfer.modules.j must be all, none, or a mapping",
                "26:14: actions.nosend.modules: no template of this action sends them",
                "27:3: actions.nolist: a template reads transfer.modules, which needs actions.nolist.modules",
                "34:14: actions.empty.modules must be a mapping of module names",
        };
        assert_errors(&errs, want, OB_ELEMENTSOF(want));
        ob_config_errors_clear(&errs);
}
