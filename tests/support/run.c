/* run.c: run a program with captured output and a time limit. */
#define _GNU_SOURCE
#include "run.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *ob_test_read_file(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        char *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                }
                memcpy(buf + len, tmp, n);
                len += n;
        }
        fclose(f);
        if (!buf)
                return strdup("");
        buf[len] = '\0';
        return buf;
}

int ob_test_count(const char *haystack, const char *needle)
{
        int n = 0;
        size_t k = strlen(needle);
        for (const char *p = haystack; k && (p = strstr(p, needle)); p += k)
                n++;
        return n;
}

int ob_test_run(const char *const argv[], int timeout_s, char **ret_out, char **ret_err)
{
        char outp[] = "/tmp/ob-run-out-XXXXXX", errp[] = "/tmp/ob-run-err-XXXXXX";
        int fo = mkstemp(outp), fe = mkstemp(errp);
        if (fo < 0 || fe < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(fo, 1);
                dup2(fe, 2);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, 0);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(fo);
        close(fe);
        int status = 0;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec > timeout_s) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        break;
                }
                usleep(10000);
        }
        if (ret_out)
                *ret_out = ob_test_read_file(outp);
        /* A sanitizer report from the program is a failure of the test even
         * when the exit code it causes (1) is the one the test expects:
         * copied to the test's own stderr, ctest's FAIL_REGULAR_EXPRESSION
         * sees it. */
        char *err = ob_test_read_file(errp);
        if (err && (strstr(err, "ERROR: AddressSanitizer") || strstr(err, "ERROR: LeakSanitizer") ||
                    strstr(err, "runtime error:")))
                fprintf(stderr, "%s: sanitizer report from %s:\n%s\n", __func__, argv[0], err);
        if (ret_err)
                *ret_err = err;
        else
                free(err);
        unlink(outp);
        unlink(errp);
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -1;
}

void ob_test_json_check(const char *workdir, const char *doc, bool one_line, const char *const *asserts, size_t n)
{
        char docp[512], py[512];
        snprintf(docp, sizeof(docp), "%s/report.json", workdir);
        snprintf(py, sizeof(py), "%s/check.py", workdir);
        FILE *f = fopen(docp, "w");
        cr_assert_not_null(f, "%s", docp);
        fputs(doc, f);
        fclose(f);
        f = fopen(py, "w");
        cr_assert_not_null(f, "%s", py);
        fputs("import json, sys\n"
              "def pairs(kv):\n"
              "    keys = [k for k, _ in kv]\n"
              "    assert len(keys) == len(set(keys)), 'duplicate key in %r' % keys\n"
              "    return dict(kv)\n"
              "def const(c):\n"
              "    raise ValueError('not JSON: ' + c)\n"
              "raw = open(sys.argv[1], 'rb').read()\n",
              f);
        if (one_line)
                fputs("assert raw.endswith(b'\\n') and raw.count(b'\\n') == 1, 'one line'\n", f);
        fputs("d = json.loads(raw.decode('utf-8'), object_pairs_hook=pairs, parse_constant=const)\n", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "assert %s, repr(d)[:3000]\n", asserts[i]);
        fclose(f);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "python3 %s %s 1>&2", py, docp);
        int rc = system(cmd);
        cr_assert_eq(rc, 0, "JSON check failed (%d) on: %.3000s", rc, doc);
}
