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
