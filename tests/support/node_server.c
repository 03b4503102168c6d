/* node_server.c: see node_server.h. */
#define _GNU_SOURCE
#include "node_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

int ob_test_node_write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -errno;
        }
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

int ob_test_node_start(const char *dir, const char *name, const char *modules, const char *arg, const char *what,
                       int start_s, pid_t *ret_pid)
{
        char path[300], portfile[300], logfile[300], script[300], watch[32];
        snprintf(portfile, sizeof(portfile), "%s/port", dir);
        snprintf(logfile, sizeof(logfile), "%s/server.log", dir);
        snprintf(script, sizeof(script), "%s/tests/harness/%s/start.sh", OB_SOURCE_DIR, name);
        snprintf(watch, sizeof(watch), "%d", (int)getpid());
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(127);
                /* The server ends itself when the test runner is gone. */
                setenv("OB_WATCH_PID", watch, 1);
                setenv("OB_MAX_LIFETIME_S", "600", 1);
                execl("/bin/sh", "sh", script, modules, portfile, arg, (char *)NULL);
                _exit(127);
        }
        *ret_pid = pid;
        snprintf(path, sizeof(path), "%s/pid", dir);
        snprintf(watch, sizeof(watch), "%d\n", (int)pid);
        int r = ob_test_node_write_file(path, watch);
        if (r < 0)
                return r;
        for (int i = 0; i < start_s * 20; i++) {
                if (access(portfile, F_OK) == 0)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        *ret_pid = 0;
                        char *log = ob_test_read_file(logfile);
                        fprintf(stderr, "the %s did not start:\n%s\n", what, log ? log : "");
                        free(log);
                        return -ECHILD;
                }
                sleep_ms(50);
        }
        return -ETIMEDOUT;
}

int ob_test_node_load(const char *dir, int *ret_port, pid_t *ret_pid)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/port", dir);
        char *port = ob_test_read_file(path);
        if (!port)
                return -ENOENT;
        int p = atoi(port);
        free(port);
        if (p <= 0 || p > 65535)
                return -EINVAL;
        snprintf(path, sizeof(path), "%s/pid", dir);
        char *pid = ob_test_read_file(path);
        *ret_pid = pid ? atoi(pid) : 0;
        free(pid);
        *ret_port = p;
        return 0;
}

void ob_test_node_stop(pid_t *pid, char *dir)
{
        if (*pid > 0) {
                kill(*pid, SIGTERM);
                for (int i = 0; i < 300; i++) {
                        if (waitpid(*pid, NULL, WNOHANG) != 0)
                                break;
                        if (i == 299)
                                kill(*pid, SIGKILL);
                        sleep_ms(10);
                }
                waitpid(*pid, NULL, WNOHANG);
                *pid = 0;
        }
        if (dir[0] && !getenv("OB_TEST_KEEP")) {
                const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
                char *out = NULL, *err = NULL;
                ob_test_run(argv, 30, &out, &err);
                free(out);
                free(err);
        }
        dir[0] = '\0';
}
