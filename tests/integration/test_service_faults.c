/* `offboard run` under faults: the binary against a real slapd and the
 * recording HTTP server while the directory restarts, the service is killed
 * with SIGKILL or stopped with requests in flight, and its configuration is
 * reloaded, with changes flowing all along; and the service's own timers,
 * feed and signals arriving while a pass runs. What must hold every time:
 * every change is acted on, nothing is sent twice unless its answer was
 * lost, and every repeat of an (account, action) carries the key of its
 * first send; SIGTERM stops the service and SIGHUP reloads it whenever they
 * come.
 *
 * The tests share one slapd (a restart too: the others find it where it
 * was) and put back every entry they change, in .fini even when an
 * assertion failed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

/* Enough generated users for every test's accounts (70% are active). */
#define USERS 130

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];
static char logpath[300]; /* the log of the service's current run */
static int notify_fd = -1;
static char notify_path[300];
static pid_t service = -1;                /* the running service, or -1 */
static int service_status = -1;           /* its wait status once it ended and was reaped */
static int runs;                          /* services started in this test: service-N.log */
static const char *drain_timeout = "20s"; /* service.drain_timeout */
static const char *interval = "1h";       /* service.full_pass_interval */
static bool slapd_halted;                 /* stopped by this test, to start again in .fini */

/* The entries this test changed, with what to put back. */
struct touched {
        const struct ob_test_person *p;
        char type[64];
};
static struct touched touched[128];
static size_t ntouched;

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
        snprintf(dir, sizeof(dir), "/tmp/ob-svcf-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        unsetenv("OFFBOARD_NOW");
}

static void teardown(void)
{
        if (service > 0) {
                kill(service, SIGKILL);
                waitpid(service, NULL, 0);
                service = -1;
        }
        if (notify_fd >= 0)
                close(notify_fd);
        notify_fd = -1;
        ob_test_recorder_stop(&rec);
        /* The directory as the other tests expect it: running, and every
         * entry changed here back to its employeeType. */
        if (slapd_halted && ob_test_slapd_resume(&srv) < 0)
                fprintf(stderr, "could not start slapd again\n");
        slapd_halted = false;
        if (ntouched) {
                size_t cap = ntouched * 400 + 1, len = 0;
                char *ldif = malloc(cap);
                for (size_t i = 0; ldif && i < ntouched; i++)
                        len += (size_t)snprintf(ldif + len, cap - len,
                                                "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: "
                                                "%s\n\n",
                                                touched[i].p->dn, touched[i].type);
                if (!ldif || ob_test_ldapmodify(&srv, ldif) != 0)
                        fprintf(stderr, "could not put back the %zu entries this test changed\n", ntouched);
                free(ldif);
        }
        ntouched = 0;
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 150);

/* ---- the service ------------------------------------------------------------------------------ */

/* The configuration. With the hourly whole pass of most tests, only the
 * feed (and its recovery) starts passes after the ones at start. */
static void write_config(void)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/apps.token", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("f4ults-t0ken\n", f);
        fclose(f);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        char tmp[320];
        snprintf(tmp, sizeof(tmp), "%s.new", cfgpath);
        f = fopen(tmp, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "service:\n"
                "  full_pass_interval: %s\n"
                "  feed: syncrepl\n"
                "  drain_timeout: %s\n"
                "directory:\n"
                "  uri: %s\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  filter: \"(objectClass=inetOrgPerson)\"\n"
                "  timeout: 10s\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "state:\n"
                "  path: state.db\n"
                "transfer:\n"
                "  fallback: %s\n"
                "safety:\n"
                "  max_accounts: 0\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "    base_url: %s/api\n"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    allow_insecure: true\n"
                "    timeout: 10s\n"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [locked, inactive, ended, deleted]\n"
                "    actions: [revoke-sessions]\n",
                interval, drain_timeout, srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base,
                man->fallback, rec.base_url);
        fclose(f);
        cr_assert_eq(rename(tmp, cfgpath), 0); /* a reload never reads half a file */
}

/* Reads and drops every notification waiting (those of an earlier run). */
static void drop_notifications(void)
{
        char buf[1100];
        while (recv(notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
}

/* Starts `offboard run` (the recorder runs already) on the test's store and
 * configuration, with $NOTIFY_SOCKET as systemd sets it; each run logs to
 * a file of its own. */
static void start_service(void)
{
        if (notify_fd < 0) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/notify", dir);
                cr_assert(n > 0 && (size_t)n < sizeof(sa.sun_path));
                snprintf(notify_path, sizeof(notify_path), "%s", sa.sun_path);
                notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                cr_assert_geq(notify_fd, 0);
                cr_assert_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", sa.sun_path,
                             strerror(errno));
        }
        drop_notifications();
        snprintf(logpath, sizeof(logpath), "%s/service-%d.log", dir, ++runs);
        service_status = -1;
        service = fork();
        if (service == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                setenv("NOTIFY_SOCKET", notify_path, 1);
                /* SIGPIPE as a shell, cron or a container leaves it, whatever
                 * the test runner inherited (systemd's IgnoreSIGPIPE=yes is a
                 * default a unit can turn off; the service must not need it). */
                signal(SIGPIPE, SIG_DFL);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "run", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_gt(service, 0);
}

/* Reads notifications until one contains want (at most timeout_ms). */
static bool wait_notification(const char *want, int timeout_ms)
{
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char buf[1100];
        for (;;) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                int left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
                struct pollfd p = {.fd = notify_fd, .events = POLLIN};
                if (left <= 0 || poll(&p, 1, left) != 1)
                        return false;
                ssize_t n = recv(notify_fd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return false;
                buf[n] = '\0';
                if (strstr(buf, want))
                        return true;
        }
}

static char *service_log(void)
{
        char *log = ob_test_read_file(logpath);
        return log ? log : strdup("");
}

/* The logs of every run of this test, in order. */
static char *all_logs(void)
{
        char *all = strdup("");
        for (int i = 1; all && i <= runs; i++) {
                char path[300];
                snprintf(path, sizeof(path), "%s/service-%d.log", dir, i);
                char *log = ob_test_read_file(path), *both = NULL;
                if (asprintf(&both, "%s---- run %d\n%s", all, i, log ? log : "") < 0)
                        both = NULL;
                free(log);
                free(all);
                all = both;
        }
        return all ? all : strdup("");
}

static bool service_ended(void);

/* Waits (at most timeout_ms, less if the service ends) until the current
 * run's log holds needle at least count times. */
static bool wait_log_count(const char *needle, int count, int timeout_ms)
{
        for (int i = 0; i < timeout_ms / 20; i++) {
                bool ended = service_ended(); /* then its log is complete: look once more */
                char *log = service_log();
                int seen = ob_test_count(log, needle);
                free(log);
                if (seen >= count)
                        return true;
                if (ended)
                        return false;
                usleep(20000);
        }
        return false;
}

/* Whether the service has ended (reaped here, its status kept). */
static bool service_ended(void)
{
        int status;
        if (service <= 0)
                return true;
        if (waitpid(service, &status, WNOHANG) != service)
                return false;
        service = -1;
        service_status = status;
        return true;
}

/* The service's wait status once it ended (at most timeout_s), else -1. */
static int wait_exit(int timeout_s)
{
        for (int i = 0; i < timeout_s * 100; i++) {
                if (service_ended())
                        return service_status;
                usleep(10000);
        }
        return -1;
}

/* Sends sig to the service, which must still run (never kill(-1, ...)). */
static void signal_service(int sig)
{
        cr_assert(!service_ended(), "the service is no longer running (wait status %#x)", service_status);
        cr_assert_eq(kill(service, sig), 0);
}

/* What became of the service, for a failure's message: "running", or how
 * it ended (a service killed by SIGPIPE leaves no line in its log). */
static const char *service_fate(void)
{
        static char fate[64];
        if (!service_ended())
                return "running";
        if (service_status == -1)
                return "not started";
        if (WIFSIGNALED(service_status))
                snprintf(fate, sizeof(fate), "killed by signal %d (%s)", WTERMSIG(service_status),
                         strsignal(WTERMSIG(service_status)));
        else
                snprintf(fate, sizeof(fate), "exited with status %d", WEXITSTATUS(service_status));
        return fate;
}

/* SIGTERM, with the notifications so far read first: the socket's queue
 * is short (net.unix.max_dgram_qlen, 10 here) and the service drops what
 * does not fit, as it must not wait for systemd. */
static void sigterm_service(void)
{
        drop_notifications();
        signal_service(SIGTERM);
}

/* SIGTERM: STOPPING=1 and exit 0 within 30 s. */
static void stop_service_ok(void)
{
        sigterm_service();
        bool stopping = wait_notification("STOPPING=1", 30000);
        int status = wait_exit(30);
        char *log = stopping && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? NULL : service_log();
        cr_assert_null(log, "STOPPING=1 %s, status %#x:\n%s", stopping ? "sent" : "never sent", status, log);
}

/* SIGKILL, as the OOM killer or a power cut would. */
static void kill_service(void)
{
        signal_service(SIGKILL);
        int status = wait_exit(10);
        cr_assert(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
}

/* A service whose feed is live and whose first two passes (at start, and
 * the one the feed's refresh asked for) are over. */
static void start_live_service(void)
{
        start_service();
        bool live = wait_log_count("event=feed_live feed=syncrepl", 1, 30000) &&
                    wait_log_count("event=pass number=2 ", 1, 30000);
        char *log = live ? NULL : service_log();
        cr_assert(live, "the feed never went live, or no pass after its refresh:\n%s", log);
}

/* ---- the directory ---------------------------------------------------------------------------- */

/* The which-th account the fixture keeps active (each test its own range). */
static const struct ob_test_person *an_active_person(int which)
{
        for (size_t i = 0; i < man->npeople; i++)
                if (strcmp(man->people[i].status, "active") == 0 && strncmp(man->people[i].uid, "user", 4) == 0 &&
                    which-- == 0)
                        return &man->people[i];
        cr_assert_fail("the fixture has too few active generated users");
        return NULL;
}

/* n accounts from the which-th active one on. */
static void active_people(int which, const struct ob_test_person **ps, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ps[i] = an_active_person(which + (int)i);
}

/* Remembers p's employeeType (once) to put back in .fini. */
static void touch(const struct ob_test_person *p)
{
        for (size_t i = 0; i < ntouched; i++)
                if (touched[i].p == p)
                        return;
        cr_assert_lt(ntouched, sizeof(touched) / sizeof(touched[0]));
        char *entry = ob_test_ldapsearch(&srv, p->dn, "(objectClass=*)", "employeeType");
        char *et = entry ? strstr(entry, "employeeType: ") : NULL;
        struct touched *t = &touched[ntouched];
        t->p = p;
        t->type[0] = '\0';
        if (et)
                sscanf(et + strlen("employeeType: "), "%63[^\n]", t->type);
        free(entry);
        cr_assert(t->type[0], "%s has no employeeType to put back", p->dn);
        ntouched++;
}

/* An admin sets employeeType: Inactive on ps[*next] ... ps[*next + n - 1],
 * in one ldapmodify (a few changes at once); *next moves on. */
static void disable(const struct ob_test_person *const *ps, size_t *next, size_t n)
{
        char ldif[4096];
        size_t len = 0;
        cr_assert_leq(n, 8);
        for (size_t i = *next; i < *next + n; i++) {
                touch(ps[i]);
                len += (size_t)snprintf(ldif + len, sizeof(ldif) - len,
                                        "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n\n",
                                        ps[i]->dn);
        }
        cr_assert_lt(len, sizeof(ldif));
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0, "ldapmodify of %zu changes failed", n);
        *next += n;
}

static void halt_slapd(void)
{
        slapd_halted = true;
        cr_assert_eq(ob_test_slapd_halt(&srv), 0, "could not stop slapd");
}

static void resume_slapd(void)
{
        int r = ob_test_slapd_resume(&srv);
        cr_assert_eq(r, 0, "could not start slapd again: %s", strerror(-r));
        slapd_halted = false;
}

/* ---- what the recorder saw -------------------------------------------------------------------- */

static void revoke_path(const struct ob_test_person *p, char path[300])
{
        snprintf(path, 300, "/api/users/%s/sessions/revoke", p->uid);
}

/* Requests the recorder saw for path. */
static int requests_for(const char *log, const char *path)
{
        char needle[320];
        snprintf(needle, sizeof(needle), "\"path\": \"%s\"", path);
        return ob_test_count(log, needle);
}

/* Waits (at most timeout_ms, less if the service ends) until each of
 * ps[0..n) got at least one request; returns how many did. */
static size_t wait_all(const struct ob_test_person *const *ps, size_t n, int timeout_ms)
{
        size_t got = 0;
        for (int i = 0; i < timeout_ms / 50; i++) {
                bool ended = service_ended();
                char *log = ob_test_recorder_log(&rec);
                got = 0;
                for (size_t k = 0; log && k < n; k++) {
                        char path[300];
                        revoke_path(ps[k], path);
                        got += requests_for(log, path) > 0;
                }
                free(log);
                if (got == n || ended)
                        break;
                usleep(50000);
        }
        return got;
}

/* Requests for any of ps[0..n). */
static int requests_for_any(const struct ob_test_person *const *ps, size_t n)
{
        char *log = ob_test_recorder_log(&rec);
        int seen = 0;
        for (size_t k = 0; log && k < n; k++) {
                char path[300];
                revoke_path(ps[k], path);
                seen += requests_for(log, path);
        }
        free(log);
        return seen;
}

/* The whole recorder log, checked: every request carries an
 * Idempotency-Key, and every repeat of a (method, path) the key of its
 * first send. Counts the repeats; at most 4 KiB of findings in why. */
struct audit {
        size_t requests, repeats, conflicts, keyless;
        char why[4096];
};

__attribute__((format(printf, 2, 3))) static void note(struct audit *a, const char *fmt, ...)
{
        size_t len = strlen(a->why);
        va_list ap;
        va_start(ap, fmt);
        if (len + 1 < sizeof(a->why))
                vsnprintf(a->why + len, sizeof(a->why) - len, fmt, ap);
        va_end(ap);
}

static void audit_log(struct audit *a)
{
        memset(a, 0, sizeof(*a));
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0, "the recorder's log does not parse");
        a->requests = n;
        for (size_t i = 0; i < n; i++) {
                const char *key = ob_test_request_header(&q[i], "Idempotency-Key");
                if (!key) {
                        a->keyless++;
                        note(a, "%s %s without an Idempotency-Key\n", q[i].method, q[i].path);
                        continue;
                }
                for (size_t j = 0; j < i; j++)
                        if (strcmp(q[j].path, q[i].path) == 0 && strcmp(q[j].method, q[i].method) == 0) {
                                const char *first = ob_test_request_header(&q[j], "Idempotency-Key");
                                a->repeats++;
                                if (first && strcmp(first, key) != 0) {
                                        a->conflicts++;
                                        note(a, "%s sent again with another key: %s, then %s\n", q[i].path, first, key);
                                }
                                break;
                        }
        }
        ob_test_requests_free(q, n);
}

/* Each of ps[0..n) got exactly `want` requests (want < 0: at least one);
 * the findings in why, the number that did not in the result. */
static size_t check_each(const struct ob_test_person *const *ps, size_t n, int want, char *why, size_t whylen)
{
        char *log = ob_test_recorder_log(&rec);
        cr_assert_not_null(log);
        size_t bad = 0, len = 0;
        why[0] = '\0';
        for (size_t k = 0; k < n; k++) {
                char path[300];
                revoke_path(ps[k], path);
                int got = requests_for(log, path);
                if (want < 0 ? got >= 1 : got == want)
                        continue;
                bad++;
                if (len + 1 < whylen)
                        len += (size_t)snprintf(why + len, whylen - len, "%s: %d requests\n", ps[k]->uid, got);
        }
        free(log);
        return bad;
}

/* ---- the tests -------------------------------------------------------------------------------- */

#define STREAM 30
#define OUTAGES 3

Test(faults, slapd_stopped_and_restarted_mid_stream_loses_no_change_and_replays_none)
{
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config();
        start_live_service();
        const struct ob_test_person *ps[STREAM];
        active_people(0, ps, STREAM);
        size_t next = 0;

        disable(ps, &next, 3); /* heard live */
        for (int outage = 1; outage <= OUTAGES; outage++) {
                disable(ps, &next, 3); /* right before the stop: heard, or not, before the feed drops */
                halt_slapd();
                bool down = wait_log_count("event=feed_down", outage, 20000);
                char *log = down ? NULL : service_log();
                cr_assert(down, "outage %d: the feed did not notice slapd stopping; the service: %s\n%s", outage,
                          service_fate(), log);
                /* The feed is tried again while slapd is down (1 s, then 2 s ...). */
                usleep(1500000);
                resume_slapd();
                disable(ps, &next, 3); /* as soon as slapd is back, before the feed is */
                bool back = wait_log_count("event=feed_back", outage, 40000);
                log = back ? NULL : service_log();
                cr_assert(back, "outage %d: the feed never came back; the service: %s\n%s", outage, service_fate(),
                          log);
                disable(ps, &next, 2); /* heard live again */
        }
        disable(ps, &next, STREAM - next);
        cr_assert_eq(next, STREAM);

        size_t got = wait_all(ps, STREAM, 60000);
        char why[4096];
        check_each(ps, STREAM, -1, why, sizeof(why));
        char *log = got == STREAM ? NULL : all_logs();
        cr_assert_eq(got, STREAM, "%zu of %d changes were acted on (the service: %s); missing:\n%s\nlog:\n%s", got,
                     STREAM, service_fate(), why, log);
        /* Settle: a replay would come from the passes after the last change. */
        usleep(2000000);
        size_t bad = check_each(ps, STREAM, 1, why, sizeof(why));
        struct audit a;
        audit_log(&a);
        log = bad || a.repeats || a.keyless ? all_logs() : NULL;
        cr_assert_eq(a.keyless, 0, "%s", a.why);
        cr_assert_eq(a.conflicts, 0, "%s", a.why);
        cr_assert_eq(bad, 0,
                     "every change is acted on exactly once (the recorder answered every request):\n%s\nlog:\n%s", why,
                     log);
        cr_assert_eq(a.repeats, 0, "%zu requests were sent again though their answers had arrived:\n%s\nlog:\n%s",
                     a.repeats, a.why, log);
        free(log);

        /* One line per outage, not one per try of the feed. */
        log = service_log();
        cr_assert_eq(ob_test_count(log, "event=feed_down"), OUTAGES, "%s", log);
        cr_assert_eq(ob_test_count(log, "event=feed_back"), OUTAGES, "%s", log);
        cr_log_info("%d outages: %d feed starts failed in all (event=ldap_connect_failed); %d whole passes, "
                    "event=directory_unusable %d times; %d passes over changes",
                    OUTAGES, ob_test_count(log, "event=ldap_connect_failed"), ob_test_count(log, "event=pass "),
                    ob_test_count(log, "event=directory_unusable"), ob_test_count(log, "event=change_pass "));
        free(log);
        stop_service_ok();
}

#define KILLED 18

/* The first request of any of ps[0..n) after `before` of them arrived:
 * waits at most timeout_ms (less if the service ends). */
static bool wait_more_requests(const struct ob_test_person *const *ps, size_t n, int before, int timeout_ms)
{
        for (int i = 0; i < timeout_ms / 5; i++) {
                bool ended = service_ended();
                if (requests_for_any(ps, n) > before)
                        return true;
                if (ended)
                        return false;
                usleep(5000);
        }
        return false;
}

Test(faults, offboard_killed_with_sigkill_while_changes_keep_coming_loses_nothing_and_repeats_carry_their_keys)
{
        const struct ob_test_person *ps[KILLED];
        active_people(STREAM, ps, KILLED);
        /* The stream's requests are answered after 300 ms: a kill as one
         * arrives finds it in flight, its answer lost. */
        char rules[2048] = "[{\"match\": \"/users/(";
        for (size_t i = 0; i < KILLED; i++)
                snprintf(rules + strlen(rules), sizeof(rules) - strlen(rules), "%s%s", i ? "|" : "", ps[i]->uid);
        snprintf(rules + strlen(rules), sizeof(rules) - strlen(rules), ")/\", \"delay_ms\": 300}]");
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        write_config();
        start_live_service();
        size_t next = 0;

        /* 1. Killed as the first request of the stream arrives (in flight);
         *    changes go on while it is down. */
        disable(ps, &next, 3);
        bool arrived = wait_more_requests(ps, KILLED, 0, 20000);
        char *log = arrived ? NULL : service_log();
        cr_assert(arrived, "the first changes were not acted on:\n%s", log);
        kill_service();
        disable(ps, &next, 3);

        /* 2. Killed right after a change was written: heard or not, acted
         *    on or half-way. */
        start_service();
        disable(ps, &next, 3);
        kill_service();
        disable(ps, &next, 3);

        /* 3. Killed during the pass at start, as it sends its first request
         *    (what the last run owed, and what changed while it was down). */
        int before = requests_for_any(ps, KILLED);
        start_service();
        arrived = wait_more_requests(ps, KILLED, before, 30000);
        log = arrived ? NULL : service_log();
        cr_assert(arrived, "the pass at start acted on nothing:\n%s", log);
        kill_service();
        disable(ps, &next, 3);

        /* Then a run that is let be. */
        start_service();
        disable(ps, &next, KILLED - next);
        cr_assert_eq(next, KILLED);
        size_t got = wait_all(ps, KILLED, 60000);
        char why[4096];
        check_each(ps, KILLED, -1, why, sizeof(why));
        log = got == KILLED ? NULL : all_logs();
        cr_assert_eq(got, KILLED, "%zu of %d changes were acted on; missing:\n%s\nlog:\n%s", got, KILLED, why, log);
        usleep(1000000);
        stop_service_ok();

        struct audit a;
        audit_log(&a);
        log = a.keyless || a.conflicts ? all_logs() : NULL;
        cr_assert_eq(a.keyless, 0, "%s", a.why);
        cr_assert_eq(a.conflicts, 0, "an (account, action) was acted on twice with different keys:\n%s\nlog:\n%s",
                     a.why, log);
        cr_log_info("%zu requests, %zu of them repeats (each with its first key) after 3 kills", a.requests, a.repeats);

        /* Nothing is owed: every request recorded done, every status written back. */
        char *out = NULL, *err = NULL;
        const char *check[] = {OB_OFFBOARD_BIN, "plan", "--check", "--config", cfgpath, NULL};
        int rc = ob_test_run(check, 60, &out, &err);
        cr_assert_eq(rc, 0, "plan --check: %d, something is still owed:\n%.3000s\n%.2000s", rc, out, err);
        free(out);
        free(err);
}

Test(faults, sigterm_with_requests_in_flight_waits_for_their_answers_and_a_restart_sends_none_again)
{
        const struct ob_test_person *ps[3];
        active_people(STREAM + KILLED, ps, 3);
        /* Their first requests are answered after 1.5 s. */
        char rules[512];
        snprintf(rules, sizeof(rules), "[{\"match\": \"/users/(%s|%s|%s)/\", \"delay_ms\": 1500, \"times\": 3}]",
                 ps[0]->uid, ps[1]->uid, ps[2]->uid);
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        drain_timeout = "20s";
        write_config();
        start_live_service();
        size_t next = 0;
        disable(ps, &next, 3);
        bool arrived = wait_more_requests(ps, 3, 0, 20000);
        char *log = arrived ? NULL : service_log();
        cr_assert(arrived, "the changes were not acted on:\n%s", log);
        /* A request is in flight (its answer 1.5 s away): the pass drains. */
        sigterm_service();
        bool stopping = wait_notification("STOPPING=1", 30000);
        int status = wait_exit(30);
        log = service_log();
        cr_assert(stopping, "no STOPPING=1:\n%s", log);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x:\n%s", status, log);
        cr_assert(strstr(log, "event=draining signal=SIGTERM"), "the SIGTERM did not find a pass to drain:\n%s", log);
        cr_assert_null(strstr(log, "event=drain_deadline"), "the drain gave up within drain_timeout (20 s):\n%s", log);
        cr_assert(strstr(log, "event=service_stopped signal=SIGTERM"), "%s", log);
        free(log);
        int sent = requests_for_any(ps, 3);

        /* A restart sends what had not left, and nothing whose answer came. */
        start_live_service();
        size_t got = wait_all(ps, 3, 30000);
        usleep(1000000);
        char why[1024];
        size_t bad = check_each(ps, 3, 1, why, sizeof(why));
        log = got == 3 && !bad ? NULL : all_logs();
        cr_assert_eq(got, 3, "what the drain left undone was not done after the restart:\n%s\n%s", why, log);
        cr_assert_eq(bad, 0, "%d requests had left before SIGTERM; after the restart:\n%s\nlog:\n%s", sent, why, log);
        stop_service_ok();
}

Test(faults, a_drain_that_outlasts_drain_timeout_stops_and_the_restart_sends_again_with_the_same_key)
{
        const struct ob_test_person *p = an_active_person(STREAM + KILLED + 3);
        /* Its first request is answered after 6 s, past drain_timeout (1 s). */
        char rules[512];
        snprintf(rules, sizeof(rules), "[{\"match\": \"/users/%s/\", \"delay_ms\": 6000, \"times\": 1}]", p->uid);
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        drain_timeout = "1s";
        write_config();
        drain_timeout = "20s";
        start_live_service();
        size_t next = 0;
        disable(&p, &next, 1);
        bool arrived = wait_more_requests(&p, 1, 0, 20000);
        char *log = arrived ? NULL : service_log();
        cr_assert(arrived, "the change was not acted on:\n%s", log);
        sigterm_service();
        bool stopping = wait_notification("STOPPING=1", 30000);
        int status = wait_exit(30);
        log = service_log();
        cr_assert(stopping, "no STOPPING=1:\n%s", log);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x:\n%s", status, log);
        cr_assert(strstr(log, "event=drain_deadline inflight=1 "), "the drain did not give up:\n%s", log);
        free(log);

        /* The answer never came back in time: sent again, with its key. */
        start_live_service();
        char path[300];
        revoke_path(p, path);
        int seen = 0;
        for (int i = 0; i < 600 && seen < 2; i++) {
                char *rlog = ob_test_recorder_log(&rec);
                seen = rlog ? requests_for(rlog, path) : 0;
                free(rlog);
                usleep(50000);
        }
        usleep(1000000);
        struct audit a;
        audit_log(&a);
        log = seen == 2 && a.repeats == 1 ? NULL : all_logs();
        cr_assert_eq(seen, 2, "the abandoned request was not sent again (or more than once): %d\n%s", seen, log);
        cr_assert_eq(a.repeats, 1, "%s\n%s", a.why, log);
        cr_assert_eq(a.conflicts, 0, "%s", a.why);
        free(log);
        stop_service_ok();
}

#define RELOADED 12
#define RELOADS 3

Test(faults, a_reload_while_changes_flow_loses_no_change)
{
        const struct ob_test_person *ps[RELOADED];
        active_people(STREAM + KILLED + 4, ps, RELOADED);
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config();
        start_live_service();
        size_t next = 0;
        int reloads = 0;
        for (int k = 1; k <= RELOADS; k++) {
                signal_service(SIGHUP);
                disable(ps, &next, 3); /* while the service reloads and its feed starts again */
                /* The next SIGHUP once this one was taken (or 10 s passed):
                 * it lands in the pass the reload started. */
                reloads += wait_log_count("event=reloaded", k, 10000);
        }
        disable(ps, &next, RELOADED - next);
        size_t got = wait_all(ps, RELOADED, 60000);
        char why[2048];
        check_each(ps, RELOADED, -1, why, sizeof(why));
        char *log = got == RELOADED ? NULL : all_logs();
        cr_assert_eq(got, RELOADED, "%zu of %d changes were acted on (the service: %s); missing:\n%s\nlog:\n%s", got,
                     RELOADED, service_fate(), why, log);
        usleep(1500000);
        size_t bad = check_each(ps, RELOADED, 1, why, sizeof(why));
        struct audit a;
        audit_log(&a);
        log = bad || a.repeats ? all_logs() : NULL;
        cr_assert_eq(bad, 0, "%s\n%s", why, log);
        cr_assert_eq(a.repeats, 0, "%s\n%s", a.why, log);
        free(log);
        /* Every SIGHUP reloads, also one that comes during a pass. */
        log = service_log();
        cr_assert_eq(reloads, RELOADS, "%d of %d SIGHUPs reloaded the configuration:\n%s", reloads, RELOADS, log);
        cr_assert_eq(ob_test_count(log, "event=reloaded"), RELOADS, "%s", log);
        free(log);
        stop_service_ok();
}

/* Where the other tests' accounts end: the next ones are these tests' own. */
#define FIRST_FREE (STREAM + KILLED + 4 + RELOADED)

Test(faults, a_whole_pass_coming_due_during_a_pass_over_changes_does_not_cut_its_request_short)
{
        const struct ob_test_person *p = an_active_person(FIRST_FREE);
        /* Its first request is answered after 4 s: the pass over its change
         * outlasts the interval between whole passes (1 s). */
        char rules[512];
        snprintf(rules, sizeof(rules), "[{\"match\": \"/users/%s/\", \"delay_ms\": 4000, \"times\": 1}]", p->uid);
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        interval = "1s";
        write_config();
        interval = "1h";
        start_live_service();
        size_t next = 0;
        disable(&p, &next, 1);
        bool arrived = wait_more_requests(&p, 1, 0, 20000);
        char *log = arrived ? NULL : service_log();
        cr_assert(arrived, "the change was not acted on:\n%s", log);
        /* Its answer, then two whole passes: a request sent again would be
         * in the recorder by then. */
        char *now = service_log();
        int passes = ob_test_count(now, "event=pass ");
        free(now);
        bool passed = wait_log_count("event=pass ", passes + 3, 30000);
        log = service_log();
        cr_assert(passed, "the whole passes stopped:\n%s", log);
        char path[300];
        revoke_path(p, path);
        char *rlog = ob_test_recorder_log(&rec);
        int seen = requests_for(rlog, path);
        free(rlog);
        cr_assert_eq(seen, 1,
                     "the request was sent %d times: its pass was cut short while its answer was on the way, and "
                     "the next pass sent it again:\n%s",
                     seen, log);
        free(log);
        stop_service_ok();
}

Test(faults, the_feed_coming_back_during_a_pass_over_changes_still_gets_the_pass_that_covers_what_it_missed)
{
        const struct ob_test_person *ps[2];
        active_people(FIRST_FREE + 1, ps, 2);
        /* The first change's request is answered after 8 s: the feed drops
         * and comes back while its pass runs. */
        char rules[512];
        snprintf(rules, sizeof(rules), "[{\"match\": \"/users/%s/\", \"delay_ms\": 8000, \"times\": 1}]", ps[0]->uid);
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0);
        write_config();
        start_live_service();
        size_t next = 0;
        disable(ps, &next, 1);
        bool arrived = wait_more_requests(ps, 1, 0, 20000);
        char *log = arrived ? NULL : service_log();
        cr_assert(arrived, "the change was not acted on:\n%s", log);
        halt_slapd();
        bool down = wait_log_count("event=feed_down", 1, 20000);
        log = down ? NULL : service_log();
        cr_assert(down, "the feed did not notice slapd stopping; the service: %s\n%s", service_fate(), log);
        resume_slapd();
        /* Written before the feed is back: only the pass after its refresh
         * can find it. */
        disable(ps, &next, 1);
        bool back = wait_log_count("event=feed_back", 1, 30000);
        log = service_log();
        cr_assert(back, "the feed never came back; the service: %s\n%s", service_fate(), log);
        bool during = !strstr(log, "event=change_pass number=1 ");
        free(log);
        size_t got = wait_all(ps, 2, 30000);
        log = got == 2 ? NULL : service_log();
        cr_assert_eq(got, 2,
                     "the change written while the feed was down was never acted on (the feed came back %s the "
                     "pass over the first change ended; the service: %s):\n%s",
                     during ? "before" : "after", service_fate(), log);
        cr_log_info("the feed came back %s the pass over the first change ended", during ? "before" : "after");
        stop_service_ok();
}

/* A new store (the first pass owes every leaver of the fixture), the
 * service started, and back once that pass has sent n requests. */
static void start_fresh_until(int round, int n)
{
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -f '%s'/state.db*", dir);
        cr_assert_eq(system(cmd), 0);
        int before = ob_test_recorder_count(&rec);
        start_service();
        bool reached = false;
        for (int i = 0; i < 6000 && !reached; i++) {
                reached = ob_test_recorder_count(&rec) >= before + n;
                if (!reached)
                        usleep(5000);
        }
        char *log = reached ? NULL : service_log();
        cr_assert(reached, "round %d: the first pass sent too little:\n%s", round, log);
}

#define SIGTERMS 4

Test(faults, sigterm_at_any_point_of_a_whole_pass_stops_the_service)
{
        /* One account a window: much of the pass is spent between windows
         * (planning, recording), off the event loop, where a signal waits
         * for the pass to look for it. */
        setenv("OFFBOARD_PASS_WINDOW", "1", 1);
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config();
        for (int round = 1; round <= SIGTERMS; round++) {
                /* SIGTERM after 5, 10, 15 ... of the pass's requests. */
                start_fresh_until(round, 5 * round);
                sigterm_service();
                bool stopping = wait_notification("STOPPING=1", 15000);
                int status = wait_exit(stopping ? 15 : 1);
                char *log = service_log();
                cr_assert(stopping && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "round %d: SIGTERM during a pass: STOPPING=1 %s, status %#x (-1: still running); the "
                          "pass may have drained and the service gone on:\n%s",
                          round, stopping ? "sent" : "never sent", status, log);
                cr_assert(strstr(log, "event=service_stopped signal=SIGTERM"), "%s", log);
                free(log);
        }
        unsetenv("OFFBOARD_PASS_WINDOW");
}

#define SIGHUPS 4

Test(faults, sighup_at_any_point_of_a_whole_pass_reloads_the_configuration)
{
        /* As for SIGTERM: one account a window, so that much of the pass is
         * spent off the event loop. */
        setenv("OFFBOARD_PASS_WINDOW", "1", 1);
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config();
        for (int round = 1; round <= SIGHUPS; round++) {
                start_fresh_until(round, 5 * round);
                signal_service(SIGHUP);
                bool reloaded = wait_log_count("event=reloaded", 1, 10000);
                char *log = reloaded ? NULL : service_log();
                cr_assert(reloaded, "round %d: a SIGHUP during a pass did not reload the configuration:\n%s", round,
                          log);
                stop_service_ok();
        }
        unsetenv("OFFBOARD_PASS_WINDOW");
}
