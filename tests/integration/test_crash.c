/* Crash safety at scale: a pass of about a thousand deactivations with three
 * actions each, killed with SIGKILL at seeded points and restarted, against
 * a real slapd and a real recording HTTP server. After a finishing pass every
 * (account, action) is recorded done, the server saw each at least once, and
 * every repeat carried the same Idempotency-Key: group commit must never let
 * a request leave before its intent is durable.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

#define USERS 3000
#define KILLS 20

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(USERS) < 0)
                fprintf(stderr, "could not start slapd\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        cr_assert_eq(ob_test_slapd_attach(&srv), 0, "slapd is not running");
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        snprintf(dir, sizeof(dir), "/tmp/ob-crash-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        /* Several windows per pass: the pass must carry work from one to the next. */
        setenv("OFFBOARD_PASS_WINDOW", "64", 1);
}

static void teardown(void)
{
        ob_test_recorder_stop(&rec);
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 600);

static void write_config(void)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/apps.token", dir);
        FILE *f = fopen(path, "w");
        fputs("crash-t0ken\n", f);
        fclose(f);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        /* Every status that is not active owes the same three actions. */
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  page_size: 500\n"
                "state: {path: state.db}\n"
                "transfer: {fallback: \"%s\"}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: %s/api\n"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    allow_insecure: true\n"
                "    concurrency: 16\n"
                "    timeout: 10s\n"
                "actions:\n"
                "  revoke: {connector: apps, security: true, method: POST, url: \"/revoke/{{ account.uid }}\"}\n"
                "  transfer: {connector: apps, method: POST, url: \"/transfer/{{ account.uid }}\", after: [revoke],\n"
                "             json: {to: \"{{ transfer_to.uid }}\"}}\n"
                "  license: {connector: apps, method: DELETE, url: \"/license/{{ account.uid }}\", after: [transfer]}\n"
                "transitions:\n"
                "  deactivate: {to: [locked, inactive, ended, deleted], actions: [revoke, transfer, license]}\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, man->fallback, rec.base_url);
        fclose(f);
}

static pid_t start_reconcile(int n)
{
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/pass-%d.log", dir, n);
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "reconcile", "--quiet", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_neq(pid, -1);
        return pid;
}

/* The requests the server has seen, counted from its log's newlines. */
static int seen(void)
{
        char *log = ob_test_recorder_log(&rec);
        int n = log ? ob_test_count(log, "\n") : 0;
        free(log);
        return n;
}

Test(crash, sigkill_at_seeded_points_loses_nothing_and_every_repeat_carries_its_key)
{
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config();
        size_t owing = man->npeople - ob_test_manifest_count(man, "active", 0);
        int total = (int)(3 * owing);
        cr_assert_gt(owing, 500, "the fixture has too few leavers (%zu)", owing);

        /* Kill points: request counts spread over the pass, from a fixed
         * seed so a failure can be replayed. */
        unsigned seed = 20261202;
        int points[KILLS];
        for (int k = 0; k < KILLS; k++)
                points[k] = (k + 1) * total / (KILLS + 2) + (int)(rand_r(&seed) % 40) - 20;
        int killed = 0;
        for (int k = 0; k < KILLS; k++) {
                pid_t pid = start_reconcile(k);
                int status = 0;
                bool done = false;
                /* Until the server has seen points[k] requests (at most 60 s). */
                for (int i = 0; i < 6000; i++) {
                        if (seen() >= points[k])
                                break;
                        if (waitpid(pid, &status, WNOHANG) == pid) {
                                done = true;
                                break;
                        }
                        usleep(10000);
                }
                if (!done) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        killed += WIFSIGNALED(status);
                }
        }
        char logpath[300];
        snprintf(logpath, sizeof(logpath), "%s/pass-0.log", dir);
        char *said = ob_test_read_file(logpath);
        cr_assert_geq(killed, KILLS / 2, "only %d of %d passes were killed mid-way; the first said:\n%.2000s", killed,
                      KILLS, said ? said : "");
        free(said);

        /* A finishing pass, then nothing is owed. */
        char *out, *err;
        const char *argv[] = {OB_OFFBOARD_BIN, "reconcile", "--quiet", "--config", cfgpath, NULL};
        int rc = ob_test_run(argv, 300, &out, &err);
        cr_assert_eq(rc, 0, "stdout %.2000s\nstderr %.2000s", out, err);
        free(out);
        free(err);
        const char *check[] = {OB_OFFBOARD_BIN, "plan", "--check", "--config", cfgpath, NULL};
        rc = ob_test_run(check, 300, &out, &err);
        cr_assert_eq(rc, 0, "something is still owed:\n%.3000s", out);
        free(out);
        free(err);

        /* Every (account, action) reached the server, and every repeat of
         * one carried the key of its first send. */
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        size_t distinct = 0, repeats = 0;
        for (size_t i = 0; i < n; i++) {
                const char *key = ob_test_request_header(&q[i], "Idempotency-Key");
                cr_assert_not_null(key, "%s without a key", q[i].path);
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                        if (strcmp(q[j].path, q[i].path) == 0 && strcmp(q[j].method, q[i].method) == 0) {
                                first = false;
                                cr_assert_str_eq(ob_test_request_header(&q[j], "Idempotency-Key"), key,
                                                 "%s was repeated with another key", q[i].path);
                        }
                distinct += first;
                repeats += !first;
        }
        cr_assert_eq(distinct, (size_t)total, "the server saw %zu distinct requests, %d are owed", distinct, total);
        cr_log_info("%zu requests, %zu repeats after %d kills", n, repeats, killed);
        ob_test_requests_free(q, n);
}
