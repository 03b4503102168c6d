/* test_exec.c: the exec connector running real programs: first on a loop of
 * its own (what cannot start, output, signals, concurrency), then end to
 * end, the offboard binary against the harness's slapd with a connector
 * that runs a script this test writes into its directory. The script
 * records its argv, environment and stdin per idempotency key and does what
 * the file `mode` beside it says, so each test chooses the program's answer.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connector.h"
#include "exec.h"
#include "loop.h"
#include "run.h"
#include "slapd.h"
#include "util.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_loop *loop;
static char dir[256];
static char script[300];
static char cfgpath[300];
static char token[300];

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(8) < 0)
                fprintf(stderr, "could not start slapd\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static const char script_text[] =
        "#!/bin/sh\n"
        "d='@DIR@'\n"
        "f=\"$d/calls/$OFFBOARD_IDEMPOTENCY_KEY\"\n"
        "for a in \"$@\"; do printf 'arg %s\\n' \"$a\"; done > \"$f.tmp\"\n"
        "env | LC_ALL=C sort | sed 's/^/env /' >> \"$f.tmp\"\n"
        "sed 's/^/stdin /' >> \"$f.tmp\"\n"
        "mv \"$f.tmp\" \"$f\"\n"
        "echo \"$OFFBOARD_IDEMPOTENCY_KEY\" >> \"$d/log\"\n"
        "how=; who=\n"
        "[ -r \"$d/mode\" ] && read -r how who < \"$d/mode\"\n"
        "if [ \"$who\" = \"$2\" ] || [ \"$who\" = '*' ]; then\n"
        "  case \"$how\" in\n"
        "  fail) echo \"no such user $2 in the app\" >&2; exit 3;;\n"
        "  tempfail) echo 'app busy, try later'; exit 75;;\n"
        "  hang) echo $$ > \"$d/hang.pid\"; trap '' TERM; sleep 60 & echo $! > \"$d/sleep.pid\"; wait; exit 0;;\n"
        "  noisy) echo \"token=$APP_TOKEN\"; head -c 300000 /dev/zero | tr '\\000' x; exit 1;;\n"
        "  polite) trap 'echo term > \"$d/got-term\"; exit 0' TERM; sleep 60 & wait; exit 0;;\n"
        "  signal) kill -9 $$;;\n"
        "  slow) echo start >> \"$d/slots\"; sleep 0.3; echo end >> \"$d/slots\";;\n"
        "  cat) cat \"$d/stdin.txt\"; exit 0;;\n"
        "  esac\n"
        "fi\n"
        "echo \"disabled $2\"\n";

static void write_text(const char *path, const char *text, mode_t mode)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
        cr_assert_eq(chmod(path, mode), 0);
}

static void set_mode(const char *how, const char *who)
{
        char path[300], text[200];
        snprintf(path, sizeof(path), "%s/mode", dir);
        snprintf(text, sizeof(text), "%s %s\n", how, who);
        write_text(path, text, 0644);
}

static void setup(void)
{
        cr_assert_eq(ob_test_slapd_attach(&srv), 0, "slapd is not running");
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        cr_assert_eq(ob_loop_new(&loop), 0);
        snprintf(dir, sizeof(dir), "/tmp/ob-exec-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        char path[300];
        snprintf(path, sizeof(path), "%s/calls", dir);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(script, sizeof(script), "%s/disable-user", dir);
        struct ob_buf b;
        ob_buf_init(&b);
        const char *at = strstr(script_text, "@DIR@");
        cr_assert_eq(ob_buf_add(&b, script_text, (size_t)(at - script_text)), 0);
        cr_assert_eq(ob_buf_adds(&b, dir), 0);
        cr_assert_eq(ob_buf_adds(&b, at + 5), 0);
        write_text(script, b.data, 0755);
        ob_buf_free(&b);
        snprintf(token, sizeof(token), "%s/app.token", dir);
        write_text(token, "t0p-s3cr3t-t0ken\n", 0600);
        char now[64];
        snprintf(now, sizeof(now), "%lld", man->today_days * 86400 + 43200);
        setenv("OFFBOARD_NOW", now, 1);
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        /* offboard's own environment must not reach the program */
        setenv("OB_EXEC_LEAK", "must-not-reach-the-child", 1);
}

static void teardown(void)
{
        ob_loop_free(loop);
        loop = NULL;
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(exec, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the runner on a loop ---------------------------------------------------- */

struct outcome {
        int calls;
        struct ob_response resp;
};

struct batch {
        int expected, finished;
};

struct slot {
        struct batch *batch;
        struct outcome out;
};

static void on_done(const struct ob_response *resp, void *userdata)
{
        struct slot *s = userdata;
        s->out.calls++;
        s->out.resp = *resp;
        if (++s->batch->finished == s->batch->expected)
                ob_loop_stop(loop);
}

static void on_safety(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        *(bool *)userdata = true;
        ob_loop_stop(l);
}

/* Runs the loop until every run of b reported, at most 20 s. */
static void run_until_done(struct batch *b)
{
        bool late = false;
        struct ob_timer *safety;
        cr_assert_eq(ob_loop_timer(loop, 20000, on_safety, &late, &safety), 0);
        if (b->finished < b->expected)
                cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_not(late, "only %d of %d runs finished", b->finished, b->expected);
        ob_loop_timer_cancel(loop, safety);
}

static struct ob_exec_connector xsettings;

static void *new_runner(const char *program, int concurrency, int64_t timeout_ms)
{
        static struct ob_header_tpl env[1];
        env[0] = (struct ob_header_tpl){.name = "APP_TOKEN", .secret_file = token};
        xsettings = (struct ob_exec_connector){.program = (char *)program, .env = {env, 1}};
        struct ob_connector k = {.name = "app",
                                 .kind = &ob_exec_kind,
                                 .settings = &xsettings,
                                 .timeout_ms = timeout_ms,
                                 .concurrency = concurrency};
        void *c = NULL;
        int r = ob_exec_new(loop, &k, &c);
        cr_assert_eq(r, 0, "new: %s", ob_strerror(r));
        return c;
}

/* Runs program once with argv [program, "--user", user] and waits. */
static struct ob_response run_one(void *c, const char *program, const char *user, const char *stdin_data)
{
        const char *argv[] = {program, "--user", user, NULL};
        struct ob_exec_request req = {.argv = argv,
                                      .stdin_data = stdin_data,
                                      .stdin_len = stdin_data ? strlen(stdin_data) : 0,
                                      .idempotency_key = "offboard-test-1-disable"};
        struct batch b = {1, 0};
        struct slot s = {&b, {0}};
        int r = ob_exec_start(c, &req, on_done, &s);
        cr_assert_eq(r, 0, "start: %s", ob_strerror(r));
        cr_assert_eq(s.out.calls, 0, "the callback ran inside start()");
        run_until_done(&b);
        cr_assert_eq(s.out.calls, 1);
        return s.out.resp;
}

Test(exec, a_program_that_cannot_start_fails_with_the_reason_and_nothing_crashes)
{
        char gone[300];
        snprintf(gone, sizeof(gone), "%s/gone", dir);
        void *c = new_runner(gone, 1, 10000);
        struct ob_response resp = run_one(c, gone, "bob", NULL);
        cr_assert_eq(resp.result, -ENOENT, "%d %s", resp.result, resp.error);
        char want[400];
        snprintf(want, sizeof(want), "cannot start %s: No such file or directory", gone);
        cr_assert_str_eq(resp.error, want);
        cr_assert_not(resp.transport);
        ob_exec_free(c);

        cr_assert_eq(chmod(script, 0644), 0);
        c = new_runner(script, 1, 10000);
        resp = run_one(c, script, "bob", NULL);
        cr_assert_eq(resp.result, -EACCES, "%d %s", resp.result, resp.error);
        cr_assert(strstr(resp.error, "Permission denied"), "%s", resp.error);
        ob_exec_free(c);
}

Test(exec, output_is_captured_bounded_and_scrubbed_of_the_connectors_secrets)
{
        set_mode("noisy", "bob");
        void *c = new_runner(script, 1, 10000);
        struct ob_response resp = run_one(c, script, "bob", NULL);
        cr_assert_eq(resp.result, -EIO);
        cr_assert_str_eq(resp.error, "exit status 1");
        cr_assert_eq(resp.status, 0, "no HTTP status for a program");
        cr_assert_leq(strlen(resp.excerpt), OB_EXCERPT_MAX);
        cr_assert_eq(strncmp(resp.excerpt, "token=***\nxxxx", 14), 0, "%.60s", resp.excerpt);
        cr_assert_null(strstr(resp.excerpt, "t0p-s3cr3t"));
        ob_exec_free(c);
}

Test(exec, stdin_reaches_the_program_and_ok_exit_decides_success)
{
        void *c = new_runner(script, 1, 10000);
        set_mode("cat", "bob");
        char path[300];
        snprintf(path, sizeof(path), "%s/stdin.txt", dir);
        write_text(path, "", 0644);
        struct ob_response resp = run_one(c, script, "bob", "line one\nline two\n");
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        /* the script copied what it read into its record */
        snprintf(path, sizeof(path), "%s/calls/offboard-test-1-disable", dir);
        char *rec = ob_test_read_file(path);
        cr_assert_not_null(rec);
        cr_assert(strstr(rec, "stdin line one\nstdin line two\n"), "%s", rec);
        free(rec);

        set_mode("fail", "bob");
        const char *argv[] = {script, "--user", "bob", NULL};
        const long ok[] = {0, 3};
        struct ob_exec_request req = {.argv = argv, .idempotency_key = "k", .ok_exit = ok, .nok_exit = 2};
        struct batch b = {1, 0};
        struct slot s = {&b, {0}};
        cr_assert_eq(ob_exec_start(c, &req, on_done, &s), 0);
        run_until_done(&b);
        cr_assert_eq(s.out.resp.result, 0, "exit 3 is in ok_exit: %s", s.out.resp.error);
        ob_exec_free(c);
}

Test(exec, a_program_killed_by_a_signal_fails_and_says_which)
{
        set_mode("signal", "bob");
        void *c = new_runner(script, 1, 10000);
        struct ob_response resp = run_one(c, script, "bob", NULL);
        cr_assert_eq(resp.result, -EIO);
        cr_assert_str_eq(resp.error, "killed by signal 9 (SIGKILL)");
        ob_exec_free(c);
}

Test(exec, at_most_concurrency_programs_run_at_once_and_every_run_reports_once)
{
        set_mode("slow", "*");
        void *c = new_runner(script, 2, 10000);
        struct batch b = {5, 0};
        struct slot s[5];
        const char *argv[] = {script, "--user", "bob", NULL};
        for (int i = 0; i < 5; i++) {
                s[i] = (struct slot){&b, {0}};
                struct ob_exec_request req = {.argv = argv, .idempotency_key = "k"};
                cr_assert_eq(ob_exec_start(c, &req, on_done, &s[i]), 0);
        }
        run_until_done(&b);
        for (int i = 0; i < 5; i++) {
                cr_assert_eq(s[i].out.calls, 1);
                cr_assert_eq(s[i].out.resp.result, 0, "%s", s[i].out.resp.error);
        }
        char path[300];
        snprintf(path, sizeof(path), "%s/slots", dir);
        char *log = ob_test_read_file(path);
        cr_assert_not_null(log);
        int running = 0, most = 0;
        for (const char *p = log; *p; p = strchr(p, '\n') + 1) {
                running += strncmp(p, "start", 5) == 0 ? 1 : -1;
                most = running > most ? running : most;
        }
        cr_assert_eq(ob_test_count(log, "start"), 5);
        cr_assert_leq(most, 2, "%d programs ran at once:\n%s", most, log);
        free(log);
        ob_exec_free(c);
}

static void on_signal(struct ob_loop *l, int signo, void *userdata)
{
        (void)l;
        (void)signo;
        (void)userdata;
}

/* offboard blocks the signals its signalfd takes and ignores SIGPIPE; a
 * child inheriting that would not stop on SIGTERM nor die on a closed pipe. */
Test(exec, the_child_starts_with_no_signal_blocked_or_ignored)
{
        cr_assert_eq(ob_loop_signal(loop, SIGTERM, on_signal, NULL), 0);
        cr_assert_eq(ob_loop_signal(loop, SIGINT, on_signal, NULL), 0);
        cr_assert_neq(signal(SIGPIPE, SIG_IGN), SIG_ERR);
        void *c = new_runner("/bin/grep", 1, 10000);
        const char *argv[] = {"/bin/grep", "^Sig[BI]", "/proc/self/status", NULL};
        struct ob_exec_request req = {.argv = argv, .idempotency_key = "k"};
        struct batch b = {1, 0};
        struct slot s = {&b, {0}};
        cr_assert_eq(ob_exec_start(c, &req, on_done, &s), 0);
        run_until_done(&b);
        cr_assert_eq(s.out.resp.result, 0, "%s", s.out.resp.error);
        cr_assert(strstr(s.out.resp.excerpt, "SigBlk:\t0000000000000000\n"), "%s", s.out.resp.excerpt);
        /* glibc's posix_spawn leaves its own two internal signals (32 and
         * 33, bits 31 and 32) ignored; they are no signal anyone sends */
        const char *ign = strstr(s.out.resp.excerpt, "SigIgn:\t");
        cr_assert_not_null(ign, "%s", s.out.resp.excerpt);
        unsigned long long mask = strtoull(ign + 8, NULL, 16);
        cr_assert_eq(mask & ~(3ULL << 31), 0, "ignored in the child: %llx", mask);
        ob_exec_free(c);
}

/* A descriptor offboard holds without O_CLOEXEC (a library's socket, a
 * file) does not reach the program: it sees 0, 1, 2 and what it opens. */
Test(exec, the_child_gets_stdin_stdout_and_stderr_and_no_other_descriptor)
{
        int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
        cr_assert_geq(leak, 3);
        void *c = new_runner("/bin/ls", 1, 10000);
        const char *argv[] = {"/bin/ls", "-1", "/proc/self/fd", NULL};
        struct ob_exec_request req = {.argv = argv, .idempotency_key = "k"};
        struct batch b = {1, 0};
        struct slot s = {&b, {0}};
        cr_assert_eq(ob_exec_start(c, &req, on_done, &s), 0);
        run_until_done(&b);
        cr_assert_eq(s.out.resp.result, 0, "%s", s.out.resp.error);
        /* ls's own directory descriptor is 3 */
        cr_assert_str_eq(s.out.resp.excerpt, "0\n1\n2\n3\n", "the child holds:\n%s(offboard's extra one: %d)",
                         s.out.resp.excerpt, leak);
        ob_exec_free(c);
        close(leak);
}

static bool gone_or_zombie(pid_t pid)
{
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return true;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        char *st = ob_test_read_file(path);
        bool z = st && strstr(st, ") Z ");
        free(st);
        return z;
}

static pid_t read_pid(const char *name)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        char *s = ob_test_read_file(path);
        cr_assert_not_null(s, "%s was not written", name);
        pid_t p = (pid_t)atoi(s);
        free(s);
        cr_assert_gt(p, 0);
        return p;
}

Test(exec, freeing_the_connector_kills_what_still_runs_and_reports_nothing)
{
        set_mode("hang", "bob");
        void *c = new_runner(script, 1, 60000);
        const char *argv[] = {script, "--user", "bob", NULL};
        struct ob_exec_request req = {.argv = argv, .idempotency_key = "k"};
        struct batch b = {1, 0};
        struct slot s = {&b, {0}};
        cr_assert_eq(ob_exec_start(c, &req, on_done, &s), 0);
        char path[300];
        snprintf(path, sizeof(path), "%s/sleep.pid", dir);
        /* until the script wrote both pids, newline included (bounded: 200
         * turns of 50 ms on the loop, which keeps the pipe read) */
        bool late = false;
        for (int i = 0; i < 200; i++) {
                char *pid = ob_test_read_file(path);
                bool whole = pid && strchr(pid, '\n');
                free(pid);
                if (whole)
                        break;
                struct ob_timer *t;
                cr_assert_eq(ob_loop_timer(loop, 50, on_safety, &late, &t), 0);
                ob_loop_run(loop);
        }
        pid_t sh = read_pid("hang.pid"), sl = read_pid("sleep.pid");
        ob_exec_free(c);
        cr_assert_eq(s.out.calls, 0, "a freed connector reported");
        cr_assert(gone_or_zombie(sh), "the program outlived its connector");
        for (int i = 0; i < 100 && !gone_or_zombie(sl); i++)
                usleep(20000);
        cr_assert(gone_or_zombie(sl), "its process group outlived the connector");
}

/* ---- end to end -------------------------------------------------------------- */

static void write_config(const char *timeout, int attempts)
{
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  starttls: true\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  filter: \"(objectClass=inetOrgPerson)\"\n"
                "  timeout: 10s\n"
                "  teams:\n"
                "    base: ou=teams,dc=example,dc=org\n"
                "writeback:\n"
                "  enabled: false\n"
                "state:\n"
                "  path: state.db\n"
                "transfer:\n"
                "  fallback: %s\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  app:\n"
                "    type: exec\n"
                "    program: %s\n"
                "    timeout: %s\n"
                "    concurrency: 2\n"
                "    retry: {attempts: %d, backoff: 50ms, max_backoff: 1s}\n"
                "    env:\n"
                "      APP_TOKEN: {value_file: app.token}\n"
                "      APP_USER: \"{{ account.uid }}\"\n"
                "actions:\n"
                "  disable:\n"
                "    connector: app\n"
                "    args: [--user, \"{{ account.uid }}\", --reason, \"{{ status.reason }}\", --, "
                "\"{{ account.dn }}\"]\n"
                "    stdin: \"{{ transfer_to.uid }}\"\n"
                "transitions:\n"
                "  off:\n"
                "    to: [locked, inactive, ended]\n"
                "    actions: [disable]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, man->fallback, script, timeout,
                attempts);
        fclose(f);
}

static int offboard(const char *cmd, char **out, char **err)
{
        const char *argv[] = {OB_OFFBOARD_BIN, cmd, "--config", cfgpath, NULL};
        return ob_test_run(argv, 60, out, err);
}

static size_t owing(void)
{
        return ob_test_manifest_count(man, "locked", 0) + ob_test_manifest_count(man, "inactive", 0) +
               ob_test_manifest_count(man, "ended", 0);
}

/* How many runs the script logged. */
static int runs(void)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/log", dir);
        char *log = ob_test_read_file(path);
        int n = log ? ob_test_count(log, "\n") : 0;
        free(log);
        return n;
}

/* The record of the run whose argv[2] is uid (NULL: none). */
static char *call_of(const char *uid)
{
        char calls[300], needle[300];
        snprintf(calls, sizeof(calls), "%s/calls", dir);
        snprintf(needle, sizeof(needle), "arg --user\narg %s\n", uid);
        DIR *d = opendir(calls);
        cr_assert_not_null(d);
        struct dirent *e;
        char *found = NULL;
        while (!found && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char path[600];
                snprintf(path, sizeof(path), "%s/%s", calls, e->d_name);
                char *rec = ob_test_read_file(path);
                if (rec && strncmp(rec, needle, strlen(needle)) == 0)
                        found = rec;
                else
                        free(rec);
        }
        closedir(d);
        return found;
}

Test(exec, reconcile_runs_the_program_with_exact_argv_a_clean_environment_and_once)
{
        write_config("10s", 3);
        char *out, *err;
        int rc = offboard("plan", &out, &err);
        cr_assert_eq(rc, 0, "stderr: %s", err);
        char want[600];
        snprintf(want, sizeof(want), "exec %s\n", script);
        cr_assert(strstr(out, want), "%s", out);
        cr_assert(strstr(out, "env: APP_TOKEN=***"), "%s", out);
        cr_assert_null(strstr(out, "t0p-s3cr3t"), "%s", out);
        cr_assert_eq(runs(), 0, "plan ran the program");
        free(out);
        free(err);

        rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.3000s\nstderr: %.3000s", out, err);
        cr_assert_null(strstr(out, "t0p-s3cr3t"), "%s", out);
        free(out);
        free(err);
        cr_assert_eq((size_t)runs(), owing(), "runs: %d, owing: %zu", runs(), owing());

        const struct ob_test_person *bob = ob_test_manifest_find(man, "bob");
        char *rec = call_of("bob");
        cr_assert_not_null(rec, "no run for bob");
        char argv_want[600];
        snprintf(argv_want, sizeof(argv_want), "arg --user\narg bob\narg --reason\narg %s\narg --\narg %s\nenv ",
                 bob->reason, bob->dn);
        cr_assert_eq(strncmp(rec, argv_want, strlen(argv_want)), 0, "want:\n%s\ngot:\n%s", argv_want, rec);
        cr_assert(strstr(rec, "\nenv APP_TOKEN=t0p-s3cr3t-t0ken\n"), "%s", rec);
        cr_assert(strstr(rec, "\nenv APP_USER=bob\n"), "%s", rec);
        cr_assert(strstr(rec, "\nenv LANG=C.UTF-8\n"), "%s", rec);
        cr_assert(strstr(rec, "\nenv PATH=/usr/bin:/bin\n"), "%s", rec);
        cr_assert(strstr(rec, "\nenv OFFBOARD_IDEMPOTENCY_KEY=offboard-"), "%s", rec);
        cr_assert(strstr(rec, "-off-1-disable\n"), "%s", rec);
        cr_assert_null(strstr(rec, "OB_EXEC_LEAK"), "offboard's environment reached the program:\n%s", rec);
        cr_assert_null(strstr(rec, "OFFBOARD_MAPPINGS_DIR"), "%s", rec);
        cr_assert_null(strstr(rec, "\nenv HOME="), "%s", rec);
        /* stdin: the transfer target, then EOF */
        cr_assert(strstr(rec, "\nstdin alice"), "%s", rec);
        free(rec);

        /* The hostile uid arrives as one element, byte for byte. */
        const char *mal = NULL;
        for (size_t i = 0; i < man->npeople; i++)
                if (strstr(man->people[i].uid, "lory"))
                        mal = man->people[i].uid;
        cr_assert_not_null(mal);
        rec = call_of(mal);
        cr_assert_not_null(rec, "no run for %s", mal);
        free(rec);

        /* A second pass owes nothing and runs nothing. */
        rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(out, "0 accounts owe actions"), "%s", out);
        cr_assert_eq((size_t)runs(), owing(), "the second pass ran the program again");
        free(out);
        free(err);
}

Test(exec, a_non_zero_exit_fails_the_action_with_its_status_and_output)
{
        write_config("10s", 3);
        set_mode("fail", "bob");
        char *out, *err;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "a failed action exits 1; stdout: %.2000s", out);
        cr_assert(strstr(out, "exit status 3: no such user bob in the app"), "%s", out);
        char head[400];
        snprintf(head, sizeof(head), "exec %s  (", script);
        cr_assert(strstr(out, head), "the outcome's duration follows the headline:\n%s", out);
        cr_assert_null(strstr(out, "HTTP"), "a program has no HTTP status:\n%s", out);
        free(out);
        free(err);
        cr_assert_eq((size_t)runs(), owing(), "an exit status is not retried in the pass");
}

Test(exec, exit_75_is_retried_by_the_next_pass_with_the_same_key)
{
        write_config("10s", 1);
        set_mode("tempfail", "bob");
        char *out, *err;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "stdout: %.2000s", out);
        cr_assert(strstr(out, "exit status 75: app busy, try later"), "%s", out);
        free(out);
        free(err);
        char *first = call_of("bob");
        cr_assert_not_null(first);
        set_mode("ok", "nobody");
        rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 0, "stdout: %.2000s\nstderr: %s", out, err);
        free(out);
        free(err);
        cr_assert_eq((size_t)runs(), owing() + 1, "only bob's run was repeated");
        char *second = call_of("bob");
        const char *k1 = strstr(first, "OFFBOARD_IDEMPOTENCY_KEY="), *k2 = strstr(second, "OFFBOARD_IDEMPOTENCY_KEY=");
        cr_assert(k1 && k2);
        cr_assert_eq(strcspn(k1, "\n"), strcspn(k2, "\n"));
        cr_assert_eq(strncmp(k1, k2, strcspn(k1, "\n")), 0, "the retry carries another key");
        free(first);
        free(second);
}

Test(exec, a_program_past_its_timeout_is_killed_with_its_group_and_fails)
{
        write_config("1s", 1);
        set_mode("hang", "bob");
        char *out, *err;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "stdout: %.2000s", out);
        cr_assert(strstr(out, "timed out after 1s"), "%s", out);
        free(out);
        free(err);
        /* it ignored SIGTERM: SIGKILL after the grace took it and its child */
        cr_assert(gone_or_zombie(read_pid("hang.pid")), "the program still runs");
        pid_t sl = read_pid("sleep.pid");
        for (int i = 0; i < 100 && !gone_or_zombie(sl); i++)
                usleep(20000);
        cr_assert(gone_or_zombie(sl), "its child still runs");
        cr_assert_eq((size_t)runs(), owing(), "every other account was served");
}

/* At the timeout SIGTERM comes first: a program that cleans up on it can. */
Test(exec, a_program_past_its_timeout_gets_sigterm_first_and_may_clean_up)
{
        write_config("1s", 1);
        set_mode("polite", "bob");
        char *out, *err;
        int rc = offboard("reconcile", &out, &err);
        cr_assert_eq(rc, 1, "stdout: %.2000s", out);
        cr_assert(strstr(out, "timed out after 1s"), "an exit after the timeout is still a timeout:\n%s", out);
        free(out);
        free(err);
        char path[300];
        snprintf(path, sizeof(path), "%s/got-term", dir);
        char *got = ob_test_read_file(path);
        cr_assert_not_null(got, "the program never saw SIGTERM");
        cr_assert_str_eq(got, "term\n");
        free(got);
}
