/* agent.c: the long-lived agent (agent.h). */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "directory.h"
#include "log.h"
#include "pass.h"
#include "util.h"

/* SIGTERM/SIGINT: the pass running drains (execute.c). */
static void on_signal(struct ob_loop *l, int signo, void *ud)
{
        struct ob_agent *ag = ud;
        if (!ag->stop_signal)
                ag->stop_signal = signo;
        if (ag->pass)
                ob_execute_on_signal(l, signo, ag->pass);
        else
                ob_loop_stop(l); /* `run` between passes: stop now */
}

void ob_agent_reopen_journal(struct ob_agent *ag)
{
        int k = ag->journal ? ob_journal_reopen(ag->journal) : 0;
        if (k < 0)
                ob_log(OB_LOG_ERROR, "event=journal_reopen_failed path=%s error=%s note=\"still writing the old file\"",
                       ob_log_quote(ag->c->journal_path), ob_log_quote(strerror(-k)));
}

/* SIGHUP: logrotate moved the journal away; write to a new one. */
static void on_hup(struct ob_loop *l, int signo, void *ud)
{
        (void)signo;
        struct ob_agent *ag = ud;
        ob_agent_reopen_journal(ag);
        /* `run` reloads its configuration between passes. */
        ag->reload = true;
        if (!ag->pass)
                ob_loop_stop(l);
}

bool ob_agent_pid_is_service(long pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = pid > 0 ? fopen(path, "r") : NULL;
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        size_t first = strnlen(buf, n);
        return first + 1 < n && strcmp(buf + first + 1, "run") == 0;
}

int ob_agent_open(const struct ob_config *c, bool acting, bool wait, struct ob_agent **ret)
{
        struct ob_agent *ag = calloc(1, sizeof(*ag));
        int k;
        if (!ag) {
                fprintf(stderr, "offboard: out of memory\n");
                return OB_EXIT_FAILED;
        }
        *ag = (struct ob_agent){.c = c, .acting = acting, .lock_fd = -1};
        if (acting) {
                /* One acting offboard per store: two would both carry out
                 * everything owed. plan reads and needs no lock. */
                long holder = 0;
                k = ob_state_lock(c->state_path, wait, &ag->lock_fd, &holder);
                if (k == -EBUSY && ob_agent_pid_is_service(holder)) {
                        fprintf(stderr,
                                "offboard: the service `offboard run` (pid %ld) holds the state store %s and acts on "
                                "every change itself; nothing was done. To release a parked plan or retry by hand, "
                                "stop it (systemctl stop offboard), run this command, then start it again\n",
                                holder, c->state_path);
                        ob_agent_free(ag);
                        return OB_EXIT_CONFIG;
                } else if (k == -EBUSY) {
                        fprintf(stderr,
                                "offboard: another offboard (pid %ld) is acting on the state store %s; nothing was "
                                "done (use --wait to run after it)\n",
                                holder, c->state_path);
                        ob_agent_free(ag);
                        return OB_EXIT_CONFIG;
                } else if (k < 0) {
                        fprintf(stderr, "offboard: cannot lock the state store %s: %s\n", c->state_path,
                                strerror(-k));
                        ob_agent_free(ag);
                        return OB_EXIT_CONFIG;
                }
                /* The loop owns SIGTERM and SIGINT from here on: a pass is
                 * drained, never cut between a request and its record. */
                if ((k = ob_loop_new(&ag->loop)) < 0 || (k = ob_loop_signal(ag->loop, SIGTERM, on_signal, ag)) < 0 ||
                    (k = ob_loop_signal(ag->loop, SIGINT, on_signal, ag)) < 0 ||
                    (k = ob_loop_signal(ag->loop, SIGHUP, on_hup, ag)) < 0) {
                        fprintf(stderr, "offboard: cannot set up the event loop: %s\n", strerror(-k));
                        ob_agent_free(ag);
                        return OB_EXIT_FAILED;
                }
                k = ob_journal_open(c->journal_path, &ag->journal);
                if (k < 0) {
                        fprintf(stderr, "offboard: cannot open the audit journal %s: %s; nothing was done\n",
                                c->journal_path,
                                k == -EPERM ? "it is not a regular file owned by this user and writable by it alone"
                                            : strerror(-k));
                        ob_agent_free(ag);
                        return OB_EXIT_CONFIG;
                }
        }
        /* A dry run reads the directory on a loop too, one without the
         * signals: nothing it does needs draining. */
        if (!ag->loop && (k = ob_loop_new(&ag->loop)) < 0) {
                fprintf(stderr, "offboard: cannot set up the event loop: %s\n", strerror(-k));
                ob_agent_free(ag);
                return OB_EXIT_FAILED;
        }
        k = ob_state_open(c->state_path, !acting, &ag->state);
        if (k < 0) {
                fprintf(stderr, "offboard: %s\n", ob_state_open_errmsg());
                ob_agent_free(ag);
                return OB_EXIT_CONFIG;
        }
        *ret = ag;
        return OB_EXIT_OK;
}

void ob_agent_drop_dir(struct ob_agent *ag)
{
        ob_dir_free(ag->dir);
        ag->dir = NULL;
}

void ob_agent_free(struct ob_agent *ag)
{
        if (!ag)
                return;
        ob_agent_drop_dir(ag); /* before the loop it is attached to */
        ob_state_free(ag->state);
        ob_journal_free(ag->journal);
        ob_loop_free(ag->loop);
        if (ag->lock_fd >= 0)
                close(ag->lock_fd);
        free(ag);
}
