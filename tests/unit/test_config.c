/* Configuration loader: every bad fixture fails with its message at its
 * position, never a crash and never a partial load. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

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
        {"bad-template-field.yaml", NULL, 12, 20, "unknown template field 'account.usrname'"},
        {"bad-connector-type.yaml", NULL, 7, 5, "unknown connector type 'smtp'"},
        {"bad-status.yaml", NULL, 15, 20, "unknown status 'gone'"},
        {"bad-after-cycle.yaml", NULL, 13, 12, "form a cycle"},
        {"bad-host-template.yaml", NULL, 11, 18, "templates may not choose the host"},
        {"bad-header-crlf-name.yaml", NULL, 10, 7, "'X Bad' is not a valid header name"},
        {"bad-mapping-missing.yaml", NULL, 4, 12, "mapping 'nosuchmapping' not found"},
        {"bad-rule.yaml", "bad-rule-mapping.yaml", 6, 15, "passed must name the time format"},
        {"bad-ldap-uri.yaml", NULL, 2, 8, "must start with ldap://, ldaps:// or ldapi://"},
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
        ob_config_free(c);
}

Test(config, the_example_configuration_loads_and_requests_every_attribute_it_reads)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        cr_assert_eq(ob_config_load(OB_SOURCE_DIR "/examples/offboard.yaml", &c, &err), 0, "%s", err.message);
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
        const char *names[] = {"openldap", "active-directory", "389ds"};
        for (size_t i = 0; i < 3; i++) {
                char path[256];
                snprintf(path, sizeof(path), "/tmp/ob-test-mapping-%d.yaml", (int)getpid());
                FILE *f = fopen(path, "w");
                fprintf(f, "directory:\n  uri: ldaps://127.0.0.1\n  base: dc=x\nmappings: [%s]\n", names[i]);
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
