/* What a directory server lacks, met at the start of a pass with the fix in
 * the message, never as a failure per entry. slapd, Samba and 389-DS all
 * offer StartTLS and paged results, so these faults come from a fake server
 * (tests/harness/fake_ldap.py) that speaks real LDAP but refuses StartTLS,
 * or leaves paged results out of its root DSE.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

static char dir[256];
static pid_t fake = -1;
static int fake_stdin = -1;

static void setup(void)
{
        snprintf(dir, sizeof(dir), "/tmp/ob-ldapfault-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

static void teardown(void)
{
        if (fake_stdin >= 0)
                close(fake_stdin); /* the fake server exits when its stdin closes */
        fake_stdin = -1;
        if (fake > 0) {
                kill(fake, SIGTERM);
                waitpid(fake, NULL, 0);
        }
        fake = -1;
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(ldap_faults, .init = setup, .fini = teardown, .timeout = 60);

/* Starts the fake server in mode; returns its port. */
static int start_fake(const char *mode)
{
        int in[2], out[2];
        cr_assert_eq(pipe(in), 0);
        cr_assert_eq(pipe(out), 0);
        fflush(NULL);
        fake = fork();
        if (fake == 0) { /* no cr_assert here: Criterion's assertions belong to the test's process */
                dup2(in[0], 0);
                dup2(out[1], 1);
                close(in[1]);
                close(out[0]);
                const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
                execlp(py, py, OB_SOURCE_DIR "/tests/harness/fake_ldap.py", "--mode", mode, "--lifetime", "60",
                       (char *)NULL);
                _exit(127);
        }
        cr_assert_gt(fake, 0, "fork: %s", strerror(errno));
        close(in[0]);
        close(out[1]);
        fake_stdin = in[1];
        FILE *f = fdopen(out[0], "r");
        int port = 0;
        cr_assert_eq(fscanf(f, "PORT %d", &port), 1, "the fake server did not start");
        fclose(f);
        return port;
}

static char *config(int port, bool starttls)
{
        char path[300], pw[300];
        snprintf(pw, sizeof(pw), "%s/bind.pw", dir);
        FILE *f = fopen(pw, "w");
        cr_assert_not_null(f);
        fputs("not-a-real-password\n", f);
        fclose(f);
        chmod(pw, 0600);
        snprintf(path, sizeof(path), "%s/offboard.yaml", dir);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: ldap://127.0.0.1:%d\n"
                "  starttls: %s\n"
                "  allow_insecure: %s\n"
                "  bind_dn: cn=offboard,dc=example,dc=org\n"
                "  bind_password_file: %s\n"
                "  base: ou=people,dc=example,dc=org\n"
                "  timeout: 5s\n"
                "state:\n"
                "  path: %s/state.db\n"
                "mappings: [openldap]\n",
                port, starttls ? "true" : "false", starttls ? "false" : "true", pw, dir);
        fclose(f);
        return strdup(path);
}

static int offboard(const char *cmd, const char *extra, const char *cfg, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", cfg, extra, NULL};
        return ob_test_run(argv, 30, out, err);
}

Test(ldap_faults, a_server_that_refuses_starttls_stops_the_pass_and_says_to_use_ldaps_or_enable_it)
{
        char *cfg = config(start_fake("starttls-refused"), true);
        const char *cmds[][2] = {{"plan", NULL}, {"validate", "--online"}};
        for (size_t i = 0; i < 2; i++) {
                char *out, *err;
                int rc = offboard(cmds[i][0], cmds[i][1], cfg, &out, &err);
                cr_assert_eq(rc, 3, "%s: exit %d (the directory cannot be used: 3)\n%s", cmds[i][0], rc, err);
                cr_assert(strstr(err, "problem=\"the server refused StartTLS\""), "%s: %s", cmds[i][0], err);
                cr_assert(strstr(err, "use ldaps://, or enable StartTLS"), "the fix is named: %s", err);
                cr_assert_null(strstr(err, "not-a-real-password"), "the password never shows: %s", err);
                free(out);
                free(err);
        }
        free(cfg);
}

Test(ldap_faults, a_server_without_paged_results_stops_the_pass_before_any_search_of_the_accounts)
{
        char *cfg = config(start_fake("no-paging"), false);
        const char *cmds[][2] = {{"plan", NULL}, {"validate", "--online"}};
        for (size_t i = 0; i < 2; i++) {
                char *out, *err;
                int rc = offboard(cmds[i][0], cmds[i][1], cfg, &out, &err);
                cr_assert_eq(rc, 3, "%s: exit %d\n%s", cmds[i][0], rc, err);
                cr_assert(strstr(err, "event=ldap_feature_missing"), "%s: %s", cmds[i][0], err);
                cr_assert(strstr(err, "paged results (RFC 2696"), "the missing feature is named: %s", err);
                cr_assert_null(strstr(err, "event=ldap_base_missing"),
                               "no search of the accounts was tried (the fake would have answered it empty): %s",
                               err);
                free(out);
                free(err);
        }
        free(cfg);
}
