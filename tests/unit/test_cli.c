/* The command line as an administrator meets it (issue 15): per-verb help,
 * short errors without the whole help, options that do not apply refused. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

static int cli(const char *a1, const char *a2, const char *a3, const char *a4, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, a1, a2, a3, a4, NULL};
        return ob_test_run(argv, 30, out, err);
}

Test(cli, each_verb_has_its_own_help)
{
        static const char *const verbs[] = {"validate", "plan", "reconcile", "run", "status", "retry", "explain"};
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
                char *out, *err;
                int rc = cli(verbs[i], "--help", NULL, NULL, &out, &err);
                cr_assert_eq(rc, 0, "%s: %s", verbs[i], err);
                char want[64];
                snprintf(want, sizeof(want), "Usage: offboard %s ", verbs[i]);
                cr_assert(strncmp(out, want, strlen(want)) == 0, "%s --help: %s", verbs[i], out);
                cr_assert_null(strstr(out, "Commands:"), "not the whole help: %s", out);
                free(out);
                free(err);
        }
        char *out, *err;
        cr_assert_eq(cli("--help", NULL, NULL, NULL, &out, &err), 0);
        cr_assert(strstr(out, "Commands:") && strstr(out, "explain ACCOUNT"), "%s", out);
        free(out);
        free(err);
}

Test(cli, an_unknown_option_is_one_line_naming_it)
{
        char *out, *err;
        cr_assert_eq(cli("plan", "--bogus", NULL, NULL, &out, &err), 2);
        cr_assert_str_eq(err, "offboard: unknown option '--bogus' (try offboard --help)\n");
        cr_assert_str_eq(out, "");
        free(out);
        free(err);
        cr_assert_eq(cli("plan", "--config", NULL, NULL, &out, &err), 2);
        cr_assert_str_eq(err, "offboard: --config needs a value (try offboard --help)\n");
        free(out);
        free(err);
}

Test(cli, options_that_do_not_apply_are_refused)
{
        char *out, *err;
        cr_assert_eq(cli("plan", "--account", "a", "--account=b", &out, &err), 2);
        cr_assert(strstr(err, "--account is given twice"), "%s", err);
        free(out);
        free(err);
        cr_assert_eq(cli("validate", "--format", "json", NULL, &out, &err), 2);
        cr_assert(strstr(err, "validate has no --format"), "%s", err);
        free(out);
        free(err);
        cr_assert_eq(cli("explain", NULL, NULL, NULL, &out, &err), 2);
        cr_assert(strstr(err, "explain needs an account"), "%s", err);
        free(out);
        free(err);
}

/* validate says every error of the configuration, each on its own
 * "file:line:col: message" line, then how many; plan refuses with the first,
 * its line and a caret. Both exit 2. */
Test(cli, validate_prints_every_error_one_per_line_and_plan_the_first)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        char path[] = "/tmp/ob-test-cli-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        cr_assert_not_null(f);
        fputs("directory:\n"                            /* 1 */
              "  uri: ldaps://127.0.0.1:636\n"          /* 2 */
              "  base: ou=people,dc=example,dc=org\n"   /* 3 */
              "  page_size: lots\n"                     /* 4 */
              "mappings: [openldap]\n"                  /* 5 */
              "connectors:\n"                           /* 6 */
              "  apps:\n"                               /* 7 */
              "    type: http\n"                        /* 8 */
              "    base_url: https://apps.example.org\n" /* 9 */
              "actions:\n"                              /* 10 */
              "  revoke:\n"                             /* 11 */
              "    connector: apps\n"                   /* 12 */
              "    url: /users/{{ account.uid }}\n"     /* 13 */
              "    colour: blue\n"                      /* 14 */
              "transitions:\n"                          /* 15 */
              "  leave:\n"                              /* 16 */
              "    to: inactive\n"                      /* 17 */
              "    actions: [revoke, cancel]\n",        /* 18 */
              f);
        fclose(f);
        char *out, *err;
        int rc = cli("validate", "--config", path, NULL, &out, &err);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert_str_eq(out, "");
        char want[1024];
        snprintf(want, sizeof(want),
                 "%s:4:14: directory.page_size must be a whole number from 1 to 10000, not 'lots'\n"
                 "%s:14:5: unknown key 'colour' in actions.revoke (expected one of: connector, when, after, "
                 "security, grace, restored_by, modules, method, url, headers, json, form, secret_body, ok_status)\n"
                 "%s:18:14: transitions.leave.actions: unknown action 'cancel' (define it under actions:)\n"
                 "offboard: the configuration has 3 errors\n",
                 path, path, path);
        cr_assert_str_eq(err, want);
        free(out);
        free(err);
        rc = cli("plan", "--config", path, NULL, &out, &err);
        remove(path);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        snprintf(want, sizeof(want),
                 "%s:4:14: directory.page_size must be a whole number from 1 to 10000, not 'lots'\n"
                 "    page_size: lots\n"
                 "               ^\n",
                 path);
        cr_assert_str_eq(err, want);
        free(out);
        free(err);
}

/* A valid configuration is summed up in words that agree with their counts. */
Test(cli, validate_counts_one_connector_and_one_action_in_the_singular)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        char path[] = "/tmp/ob-test-cli-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        FILE *f = fdopen(fd, "w");
        cr_assert_not_null(f);
        fputs("directory:\n"
              "  uri: ldaps://127.0.0.1:636\n"
              "  base: ou=people,dc=example,dc=org\n"
              "mappings: [openldap]\n"
              "connectors:\n"
              "  apps:\n"
              "    type: http\n"
              "    base_url: https://apps.example.org\n"
              "actions:\n"
              "  revoke:\n"
              "    connector: apps\n"
              "    url: /users/{{ account.uid }}\n"
              "transitions:\n"
              "  leave:\n"
              "    to: inactive\n"
              "    actions: [revoke]\n",
              f);
        fclose(f);
        char *out, *err;
        int rc = cli("validate", "--config", path, NULL, &out, &err);
        remove(path);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert_not_null(strstr(out, " 1 connector, 1 action, 1 transition\n"), "%s", out);
        cr_assert(strstr(out, " mapping rules, "), "the openldap mapping has several rules: %s", out);
        free(out);
        free(err);
}
