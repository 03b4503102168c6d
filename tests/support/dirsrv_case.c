/* dirsrv_case.c: one test against a shared Samba AD DC or 389-DS. */
#define _GNU_SOURCE
#include "dirsrv_case.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

void ob_test_case_open(struct ob_test_case *tc, const struct ob_test_dirsrv *srv, const char *name)
{
        *tc = (struct ob_test_case){.srv = srv};
        snprintf(tc->dir, sizeof(tc->dir), "/tmp/ob-%s-XXXXXX", name);
        cr_assert_not_null(mkdtemp(tc->dir));
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        cr_assert_eq(ob_test_recorder_start(&tc->rec, NULL, false), 0);
}

void ob_test_case_close(struct ob_test_case *tc)
{
        if (tc->service > 0) {
                kill(tc->service, SIGKILL);
                waitpid(tc->service, NULL, 0);
                tc->service = 0;
        }
        ob_test_recorder_stop(&tc->rec);
        if (!tc->dir[0])
                return;
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tc->dir);
        tc->dir[0] = '\0';
}

void ob_test_case_write_config(struct ob_test_case *tc, const struct ob_test_config *c)
{
        const struct ob_test_dirsrv *s = tc->srv;
        char path[300];
        snprintf(path, sizeof(path), "%s/apps.token", tc->dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("t0ken\n", f);
        fclose(f);
        snprintf(tc->cfgpath, sizeof(tc->cfgpath), "%s/offboard.yaml", tc->dir);
        f = fopen(tc->cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  page_size: 5\n"
                "  timeout: 10s\n"
                "%s"
                "%s"
                "state:\n"
                "  path: state.db\n"
                "transfer:\n"
                "  fallback: %s\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [%s]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: %s/api\n"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    allow_insecure: true\n"
                "    timeout: 5s\n"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    after: [revoke-sessions]\n"
                "    json: {to: \"{{ transfer_to.uid }}\"}\n"
                "    when: {status: [inactive, ended, deleted]}\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, transfer-records]\n"
                "  lock:\n"
                "    to: locked\n"
                "    actions: [revoke-sessions]\n",
                c->uri ? c->uri : s->ldap_uri, c->ca_file ? c->ca_file : s->ca_file, s->bind_dn, s->bind_pw_file,
                c->base ? c->base : s->base, c->directory_extra ? c->directory_extra : "", c->extra ? c->extra : "",
                c->fallback, c->mappings, tc->rec.base_url);
        fclose(f);
}

void ob_test_case_edit_config(struct ob_test_case *tc, const char *from, const char *to)
{
        char *text = ob_test_read_file(tc->cfgpath);
        cr_assert_not_null(text);
        const char *at = strstr(text, from);
        cr_assert_not_null(at, "%s not in %s", from, text);
        FILE *f = fopen(tc->cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
        fclose(f);
        free(text);
}

int ob_test_case_offboard(struct ob_test_case *tc, const char *cmd, const char *a1, const char *a2, char **out,
                          char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", tc->cfgpath, a1, a2, NULL};
        return ob_test_run(argv, 120, out, err);
}

const char *ob_test_summary(const char *out)
{
        const char *s = strstr(out, "\"summary\"");
        return s ? s : out;
}

void ob_test_assert_statuses(const struct ob_test_manifest *m, const char *out, const char *const *skip)
{
        for (size_t i = 0; i < m->npeople; i++) {
                const struct ob_test_person *p = &m->people[i];
                bool skipped = false;
                for (size_t k = 0; skip && skip[k]; k++)
                        skipped = skipped || strcmp(skip[k], p->uid) == 0;
                if (skipped)
                        continue;
                char want[300];
                if (strcmp(p->rule, "active") == 0) {
                        /* Active and never recorded: nothing owed, not listed. */
                        snprintf(want, sizeof(want), "\"username\":\"%s\",\"status\":", p->uid);
                        cr_expect_null(strstr(out, want), "%s should be active: %.300s", p->uid,
                                       strstr(out, want) ? strstr(out, want) : "");
                        continue;
                }
                snprintf(want, sizeof(want), "\"username\":\"%s\",\"status\":\"%s\",\"rule\":\"%s\"", p->uid,
                         p->status, p->rule);
                cr_expect_not_null(strstr(out, want), "%s: expected %s", p->uid, want);
        }
}

char *ob_test_case_service_log(struct ob_test_case *tc)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/service.log", tc->dir);
        char *log = ob_test_read_file(path);
        return log ? log : strdup("");
}

static bool wait_service_log(struct ob_test_case *tc, const char *needle, int timeout_ms)
{
        for (int i = 0; i < timeout_ms / 20; i++) {
                char *log = ob_test_case_service_log(tc);
                bool seen = strstr(log, needle) != NULL;
                free(log);
                if (seen)
                        return true;
                usleep(20000);
        }
        return false;
}

void ob_test_case_spawn_service(struct ob_test_case *tc)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/service.log", tc->dir);
        /* Emptied before the service starts: a restarted service's log
         * must not be read as the last one's. */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        pid_t pid = fork();
        if (pid == 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                unsetenv("NOTIFY_SOCKET");
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "run", "--config", tc->cfgpath, (char *)NULL);
                _exit(127);
        }
        close(fd);
        cr_assert_gt(pid, 0);
        tc->service = pid;
}

void ob_test_case_start_service(struct ob_test_case *tc, const char *feed)
{
        ob_test_case_spawn_service(tc);
        char live[100];
        snprintf(live, sizeof(live), "event=feed_live feed=%s", feed);
        bool ok = wait_service_log(tc, live, 60000) && wait_service_log(tc, "event=pass number=2 ", 60000);
        char *log = ok ? NULL : ob_test_case_service_log(tc);
        cr_assert(ok, "the service's feed (%s) did not go live with its pass:\n%s", feed, log);
}

void ob_test_case_stop_service(struct ob_test_case *tc)
{
        cr_assert_gt(tc->service, 0);
        cr_assert_eq(kill(tc->service, SIGTERM), 0);
        int status = -1;
        for (int i = 0; i < 1500; i++) {
                if (waitpid(tc->service, &status, WNOHANG) == tc->service)
                        break;
                status = -1;
                usleep(10000);
        }
        tc->service = status == -1 ? tc->service : 0;
        char *log = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? NULL : ob_test_case_service_log(tc);
        cr_assert_null(log, "the service did not stop cleanly (%#x):\n%s", status, log);
}

int ob_test_case_wait_requests(struct ob_test_case *tc, const char *path, int count, int timeout_ms)
{
        char needle[300];
        snprintf(needle, sizeof(needle), "\"%s\"", path);
        int seen = 0;
        for (int i = 0; i < timeout_ms / 20; i++) {
                char *log = ob_test_recorder_log(&tc->rec);
                seen = log ? ob_test_count(log, needle) : 0;
                free(log);
                if (seen >= count)
                        break;
                usleep(20000);
        }
        return seen;
}

void ob_test_dirsrv_put_back(const struct ob_test_dirsrv *srv, const char *dn, const char *changes)
{
        char *ldif = NULL, *err = NULL;
        if (asprintf(&ldif, "dn: %s\nchangetype: modify\n%s" OB_TEST_CLEAR_WRITEBACK, dn, changes) < 0)
                return;
        if (ob_test_dirsrv_modify(srv, ldif, &err) != 0)
                fprintf(stderr, "could not put %s back: %s\n", dn, err ? err : "");
        free(err);
        free(ldif);
}
