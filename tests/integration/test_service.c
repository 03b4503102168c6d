/* `offboard run` as systemd runs it: the binary against a real slapd and a
 * recording HTTP server, with $NOTIFY_SOCKET pointing at a datagram socket
 * this test reads, as systemd's would.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];
static char logpath[300];
static int notify_fd = -1;
static pid_t service = -1;
static const char *interval = "1s"; /* service.full_pass_interval */
static const char *feed = "auto";   /* service.feed */
static char extra_mapping[320];     /* ", PATH" of one more mapping file, or "" */
static const char *safety = "  max_accounts: 0\n  max_percent: 0\n"; /* the safety: section */
static char listen_line[400]; /* "  listen: ...\n" under service:, or "" */

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(20) < 0)
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
        snprintf(dir, sizeof(dir), "/tmp/ob-svc-XXXXXX");
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
        ob_test_manifest_free(man);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 120);

/* The configuration, with broken: a key the loader refuses, on line 4. */
static void write_config(bool broken)
{
        char path[300];
        snprintf(path, sizeof(path), "%s/apps.token", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs("s3cr3t-t0ken\n", f);
        fclose(f);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        char tmp[320];
        snprintf(tmp, sizeof(tmp), "%s.new", cfgpath);
        f = fopen(tmp, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "service:\n"
                "  full_pass_interval: %s\n"
                "  feed: %s\n"
                "%s"
                "%s"
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
                "%s"
                "mappings: [openldap%s]\n"
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
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [locked, inactive, ended, deleted]\n"
                "    actions: [revoke-sessions]\n",
                interval, feed, listen_line, broken ? "  pass_every: 1s\n" : "", srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base,
                man->fallback, safety, extra_mapping, rec.base_url);
        fclose(f);
        cr_assert_eq(rename(tmp, cfgpath), 0); /* a reload never reads half a file */
}

/* Starts `offboard run` with systemd's environment: NOTIFY_SOCKET (bound
 * here) and a watchdog of 400 ms; unreachable points the configuration at
 * a port nothing listens on. */
static void start_service(bool unreachable)
{
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config(false);
        if (unreachable) {
                char *cfg = ob_test_read_file(cfgpath);
                cr_assert_not_null(cfg);
                char *uri = strstr(cfg, srv.ldap_uri);
                cr_assert_not_null(uri);
                FILE *f = fopen(cfgpath, "w");
                cr_assert_not_null(f);
                fprintf(f, "%.*sldap://127.0.0.1:1%s", (int)(uri - cfg), cfg, uri + strlen(srv.ldap_uri));
                fclose(f);
                free(cfg);
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/notify", dir);
        cr_assert(n > 0 && (size_t)n < sizeof(sa.sun_path));
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(notify_fd, 0);
        cr_assert_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", sa.sun_path,
                     strerror(errno));
        snprintf(logpath, sizeof(logpath), "%s/service.log", dir);
        service = fork();
        if (service == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                setenv("NOTIFY_SOCKET", sa.sun_path, 1);
                setenv("WATCHDOG_USEC", "400000", 1);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "run", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_gt(service, 0);
}

/* The next notification within timeout_ms, NUL-terminated into buf; false if
 * none came. */
static bool next_notification(char *buf, size_t len, int timeout_ms)
{
        struct pollfd p = {.fd = notify_fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1)
                return false;
        ssize_t n = recv(notify_fd, buf, len - 1, 0);
        if (n < 0)
                return false;
        buf[n] = '\0';
        return true;
}

/* Reads notifications until one contains want (at most timeout_ms); counts
 * the watchdog pings seen on the way. */
static bool wait_notification(const char *want, int timeout_ms, int *watchdogs, char *last, size_t lastlen)
{
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char buf[1100];
        for (;;) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                int left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
                if (left <= 0 || !next_notification(buf, sizeof(buf), left))
                        return false;
                if (watchdogs && strstr(buf, "WATCHDOG=1"))
                        (*watchdogs)++;
                if (last)
                        snprintf(last, lastlen, "%s", buf);
                if (strstr(buf, want))
                        return true;
        }
}

static char *service_log(void)
{
        char *log = ob_test_read_file(logpath);
        return log ? log : strdup("");
}

/* Waits (at most timeout_ms) until the service's log holds needle. */
static bool wait_log(const char *needle, int timeout_ms)
{
        for (int i = 0; i < timeout_ms / 10; i++) {
                char *log = service_log();
                bool seen = strstr(log, needle) != NULL;
                free(log);
                if (seen)
                        return true;
                usleep(10000);
        }
        return false;
}

/* Waits until the recorder has count requests for path (at most timeout_ms). */
static int wait_requests(const char *path, int count, int timeout_ms)
{
        char needle[300];
        snprintf(needle, sizeof(needle), "\"%s\"", path);
        int seen = 0;
        for (int i = 0; i < timeout_ms / 10; i++) {
                char *log = ob_test_recorder_log(&rec);
                seen = log ? ob_test_count(log, needle) : 0;
                free(log);
                if (seen >= count)
                        break;
                usleep(10000);
        }
        return seen;
}

static int wait_exit(int timeout_s)
{
        int status;
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(service, &status, WNOHANG) == service) {
                        service = -1;
                        return status;
                }
                usleep(10000);
        }
        return -1;
}

/* The which-th account the fixture keeps active, to be disabled while the
 * service runs (each test its own: they share the directory). */
static const struct ob_test_person *an_active_person(int which)
{
        for (size_t i = 0; i < man->npeople; i++)
                if (strcmp(man->people[i].status, "active") == 0 && strncmp(man->people[i].uid, "user", 4) == 0 &&
                    which-- == 0)
                        return &man->people[i];
        cr_assert_fail("the fixture has no active generated user");
        return NULL;
}

/* p's employeeType, to put back after a test changed it. */
static void get_employee_type(const struct ob_test_person *p, char type[64])
{
        char *entry = ob_test_ldapsearch(&srv, p->dn, "(objectClass=*)", "employeeType");
        char *et = entry ? strstr(entry, "employeeType: ") : NULL;
        type[0] = '\0';
        if (et)
                sscanf(et + strlen("employeeType: "), "%63[^\n]", type);
        free(entry);
        cr_assert(type[0], "the fixture's active people have an employeeType");
}

/* SIGTERM, then the service must exit 0 within 15 s. */
static void stop_service_ok(void)
{
        cr_assert_eq(kill(service, SIGTERM), 0);
        int status = wait_exit(15);
        char *log = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? NULL : service_log();
        cr_assert_null(log, "status %#x:\n%s", status, log);
}

/* Starts the service again on the same store and directory, as systemd
 * would after a stop: a new recorder and notify socket, the same
 * configuration. */
static void restart_service(void)
{
        ob_test_recorder_stop(&rec);
        close(notify_fd);
        notify_fd = -1;
        char sock[300];
        snprintf(sock, sizeof(sock), "%s/notify", dir);
        unlink(sock);
        start_service(false);
}

/* A service with the feed live that has run the pass its refresh asked for
 * (which stores the feed's cookie), then stopped. */
static void run_until_the_cookie_is_stored(void)
{
        interval = "1h";
        feed = "auto";
        start_service(false);
        cr_assert(wait_log("event=feed_live", 30000), "the feed never went live");
        cr_assert(wait_log("event=pass number=2 ", 30000), "no pass after the feed's refresh");
        stop_service_ok();
}

Test(service, run_is_ready_acts_on_a_change_at_its_next_pass_reloads_only_a_valid_configuration_and_stops_on_sigterm)
{
        start_service(false);
        char last[1100] = "";
        int watchdogs = 0;
        bool ready = wait_notification("READY=1", 20000, &watchdogs, last, sizeof(last));
        char *log = ready ? NULL : service_log();
        cr_assert(ready, "no READY=1 within 20 s; last notification '%s'; log:\n%s", last, log);

        /* The first pass does what the fixture owes. */
        bool passed = wait_notification("STATUS=pass 1:", 30000, &watchdogs, last, sizeof(last));
        log = passed ? NULL : service_log();
        cr_assert(passed, "no STATUS after the first pass; last '%s'; log:\n%s", last, log);
        cr_assert(strstr(last, "exit 0"), "the first pass exits 0: %s", last);
        size_t owed = man->npeople - ob_test_manifest_count(man, "active", 0);
        int first = ob_test_recorder_count(&rec);
        cr_assert_eq((size_t)first, owed, "the first pass revokes every non-active account's sessions once: %d of %zu",
                     first, owed);

        /* An admin disables someone: the next pass (1 s later) acts on it,
         * once, and later passes do nothing more. */
        const struct ob_test_person *p = an_active_person(0);
        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n", p->dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        cr_assert_eq(wait_requests(path, 1, 10000), 1, "the change was not acted on within 10 s");
        cr_assert(wait_notification("STATUS=pass 4:", 10000, &watchdogs, last, sizeof(last)),
                  "passes go on every second; last '%s'", last);
        cr_assert_eq(wait_requests(path, 2, 10), 1, "a later pass repeated the request");
        cr_assert_eq(ob_test_recorder_count(&rec), first + 1);
        cr_assert_geq(watchdogs, 2, "the watchdog (400 ms) is fed from the loop: %d pings", watchdogs);

        /* A broken configuration is refused with its position; the old one runs on. */
        write_config(true);
        cr_assert_eq(kill(service, SIGHUP), 0);
        bool refused = wait_notification("STATUS=reload refused", 10000, &watchdogs, last, sizeof(last));
        log = service_log();
        cr_assert(refused, "no 'reload refused' status; last '%s'; log:\n%s", last, log);
        cr_assert(strstr(last, "offboard.yaml:4:"), "the status names file and line: %s", last);
        cr_assert(strstr(log, "event=reload_refused"), "%s", log);
        free(log);
        cr_assert(wait_notification("STATUS=pass", 5000, &watchdogs, last, sizeof(last)),
                  "passes go on under the old configuration");
        cr_assert_eq(waitpid(service, NULL, WNOHANG), 0, "the service still runs");

        /* A valid one is taken. */
        write_config(false);
        cr_assert_eq(kill(service, SIGHUP), 0);
        cr_assert(wait_log("event=reloaded", 5000), "the valid configuration was not reloaded");

        /* SIGTERM: STOPPING=1, exit 0. */
        cr_assert_eq(kill(service, SIGTERM), 0);
        bool stopping = wait_notification("STOPPING=1", 15000, NULL, last, sizeof(last));
        int status = wait_exit(15);
        log = service_log();
        cr_assert(stopping, "no STOPPING=1; last '%s'; log:\n%s", last, log);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x; log:\n%s", status, log);
        cr_assert(strstr(log, "event=service_stopped signal=SIGTERM"), "%s", log);
        free(log);
        cr_assert_eq(ob_test_recorder_count(&rec), first + 1, "nothing was sent twice over the whole run");
}

Test(service, a_directory_that_cannot_be_reached_still_lets_the_service_get_ready_and_keep_trying)
{
        start_service(true);
        char last[1100] = "";
        cr_assert(wait_notification("READY=1", 10000, NULL, last, sizeof(last)),
                  "an outage must not keep the service from READY (a restart loop)");
        cr_assert(wait_notification("STATUS=pass 3:", 15000, NULL, last, sizeof(last)),
                  "passes are tried again within a few seconds; last '%s'", last);
        cr_assert(strstr(last, "exit 3"), "%s", last);
        stop_service_ok();
        char *log = service_log();
        cr_assert_eq(ob_test_count(log, "event=directory_unusable"), 1, "one line per outage, not per try:\n%s", log);
        free(log);
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
}

static int count_passes(void)
{
        char *log = service_log();
        int n = ob_test_count(log, "event=pass ");
        free(log);
        return n;
}

Test(service, with_syncrepl_a_change_is_acted_on_without_waiting_for_the_interval_and_its_own_write_back_triggers_nothing)
{
        interval = "1h"; /* only the feed can start the second pass */
        /* This test stops reading the notify socket after the first pass:
         * the watchdog pings then fill it, and the service must not wait. */
        start_service(false);
        char last[1100] = "";
        cr_assert(wait_notification("STATUS=pass 1:", 30000, NULL, last, sizeof(last)), "no first pass; last '%s'",
                  last);
        int first = ob_test_recorder_count(&rec);
        /* The feed goes live (its refresh done) and asks for one pass to
         * cover what changed meanwhile; wait until it settles. */
        cr_assert(wait_log("event=feed_live feed=syncrepl", 10000), "the feed never went live");
        cr_assert(wait_log("event=pass number=2 ", 10000), "no pass after the feed's refresh");
        int before = count_passes();

        const struct ob_test_person *p = an_active_person(1);
        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n",
                 p->dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        int acted = wait_requests(path, 1, 20000);
        char *log = acted == 1 ? NULL : service_log();
        cr_assert_eq(acted, 1, "the change was not acted on (the interval is an hour):\n%s", log);
        cr_assert_eq(ob_test_recorder_count(&rec), first + 1);

        /* The pass wrote the status back onto the entry; that modify comes
         * back through the feed as the service account's and starts nothing. */
        char *out = NULL;
        for (int i = 0; i < 500; i++) {
                free(out);
                out = ob_test_ldapsearch(&srv, p->dn, "(objectClass=*)", "offboardStatus");
                if (out && strstr(out, "offboardStatus: inactive"))
                        break;
                usleep(10000);
        }
        cr_assert(out && strstr(out, "offboardStatus: inactive"), "no write-back: %s", out ? out : "");
        free(out);
        usleep(1500000);
        int after = count_passes();
        log = service_log();
        /* A pass over that account alone, not over the directory. */
        cr_assert_eq(after, before, "no whole pass for one change (%d then %d):\n%s", before, after, log);
        cr_assert_eq(ob_test_count(log, "event=change_pass "), 1,
                     "one pass over the change, none for the write-back:\n%s", log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "%s", log);
        free(log);
        stop_service_ok();
}

Test(service, an_end_date_fires_at_its_second_with_no_change_and_no_feed)
{
        interval = "1h";
        feed = "none"; /* nothing but the clock can start the second pass */
        /* A mapping whose end date is a GeneralizedTime in description. */
        char mpath[300];
        snprintf(mpath, sizeof(mpath), "%s/enddate.yaml", dir);
        FILE *f = fopen(mpath, "w");
        cr_assert_not_null(f);
        fputs("rules:\n  - {name: end-date, status: ended, when: {attribute: description, passed: generalized}}\n", f);
        fclose(f);
        snprintf(extra_mapping, sizeof(extra_mapping), ", %s", mpath);
        const struct ob_test_person *p = an_active_person(2);
        time_t end = time(NULL) + 4;
        struct tm tm;
        gmtime_r(&end, &tm);
        char when[32], ldif[600];
        strftime(when, sizeof(when), "%Y%m%d%H%M%SZ", &tm);
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: description\ndescription: %s\n", p->dn, when);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        start_service(false);
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        int acted = wait_requests(path, 1, 30000);
        char *log = service_log();
        cr_assert_eq(acted, 1, "the end date %s was not acted on within 30 s:\n%s", when, log);
        cr_assert(strstr(log, "event=pass_at_next_change"), "the pass was scheduled for the end date:\n%s", log);
        free(log);
        /* Not before its second. */
        struct ob_test_request *q;
        size_t n;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, &n), 0);
        double at = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].path, path) == 0)
                        at = q[i].time;
        ob_test_requests_free(q, n);
        cr_assert_geq(at, (double)end, "acted on at %.3f, before the end date %lld", at, (long long)end);
        stop_service_ok();
        extra_mapping[0] = '\0';
}

Test(service, a_restart_resumes_the_feed_from_the_cookie_the_last_complete_pass_covered)
{
        /* The pass the feed's refresh asked for covered the feed's cookie,
         * which the store now keeps. */
        run_until_the_cookie_is_stored();
        char *log = service_log();
        cr_assert_null(strstr(log, "event=feed_cookie_loaded"), "a first start has no cookie:\n%s", log);
        free(log);

        /* A change while it is down, then a restart on the same store. */
        const struct ob_test_person *p = an_active_person(3);
        char old_type[64];
        get_employee_type(p, old_type);
        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: Inactive\n", p->dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        restart_service();
        cr_assert(wait_log("event=feed_cookie_loaded", 30000), "the stored cookie was not used");
        cr_assert(wait_log("event=feed_live", 30000), "the feed did not resume");
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        int acted = wait_requests(path, 1, 20000);
        log = service_log();
        cr_assert_eq(acted, 1, "the change made while the service was down was not acted on:\n%s", log);
        cr_assert_null(strstr(log, "event=feed_down"), "the resumed feed failed:\n%s", log);
        free(log);
        stop_service_ok();
        /* The tests share the directory: the others count on the fixture. */
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: %s\n", p->dn,
                 old_type);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
}

Test(service, a_cookie_the_server_refuses_leads_to_a_full_refresh_not_a_loop)
{
        run_until_the_cookie_is_stored();

        /* The stored cookie, for the same search, now names a change the
         * server has not made yet: slapd refuses to resume from it. */
        char cmd[1200];
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/python3 -c \"import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); "
                 "v=db.execute(\\\"select value from meta where key='feed-cookie'\\\").fetchone()[0]; "
                 "c=b'rid=000,csn=29991231235959.000000Z#000000#000#000000'.hex(); "
                 "db.execute(\\\"update meta set value=? where key='feed-cookie'\\\", (v[:17]+c,)); db.commit()\" "
                 "'%s/state.db'",
                 dir);
        cr_assert_eq(system(cmd), 0, "could not rewrite the stored cookie");
        restart_service();
        cr_assert(wait_log("event=feed_cookie_loaded", 30000), "the stored cookie was not used");
        /* Refused once (the outage's one line), then live from the whole content. */
        bool live = wait_log("event=feed_back feed=syncrepl failed_starts=1", 30000);
        char *log = service_log();
        cr_assert(live, "the feed never recovered from a refused cookie:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=ldap_failed op=sync"), 1, "the refused cookie was tried again:\n%s",
                     log);
        cr_assert(strstr(log, "event=feed_refresh_required"), "a full refresh was started:\n%s", log);
        free(log);
        stop_service_ok();
}

/* A service whose feed is live and whose first passes are over. */
static void start_live_service(void)
{
        interval = "1h"; /* only the feed can start a pass */
        start_service(false);
        char last[1100] = "";
        cr_assert(wait_notification("STATUS=pass 1:", 30000, NULL, last, sizeof(last)), "no first pass; last '%s'",
                  last);
        cr_assert(wait_log("event=feed_live feed=syncrepl", 10000), "the feed never went live");
        cr_assert(wait_log("event=pass number=2 ", 10000), "no pass after the feed's refresh");
}

static void set_employee_type(const struct ob_test_person *p, const char *type)
{
        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: %s\n", p->dn,
                 type);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
}

Test(service, a_deletion_heard_through_the_feed_is_acted_on_by_a_pass_over_that_account_alone)
{
        const struct ob_test_person *p = an_active_person(4);
        /* The entry as it is, to put back for the other tests. */
        char *entry = ob_test_ldapsearch(&srv, p->dn, "(objectClass=*)", "*");
        cr_assert(entry && strstr(entry, "dn: "), "cannot read %s", p->dn);
        start_live_service();
        int before = count_passes();

        char ldif[600];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: delete\n", p->dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        int acted = wait_requests(path, 1, 20000);
        usleep(500000);
        char *log = service_log();
        cr_assert_eq(acted, 1, "the deletion was not acted on:\n%s", log);
        /* The feed names a deleted entry by its entryUUID alone: the pass
         * found the account by it and used what was recorded of it. */
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "%s", log);
        cr_assert(strstr(log, "whole_pass_needed=no"), "%s", log);
        cr_assert_eq(count_passes(), before, "a pass over the directory for one deletion:\n%s", log);
        free(log);
        stop_service_ok();

        /* Back, as a new entry (a new entryUUID: a new account to offboard). */
        char *add = NULL;
        cr_assert_gt(asprintf(&add, "%.*schangetype: add\n%s", (int)(strchr(strstr(entry, "dn: "), '\n') -
                                                                       entry + 1), entry,
                              strchr(strstr(entry, "dn: "), '\n') + 1),
                     0);
        cr_assert_eq(ob_test_ldapmodify(&srv, add), 0, "could not put %s back", p->dn);
        free(add);
        free(entry);
}

/* A first deployment: what the directory says now is taken as done
 * (reconcile --adopt), then the service runs. */
static void start_after_adopting(void)
{
        cr_assert_eq(ob_test_recorder_start(&rec, NULL, false), 0);
        write_config(false);
        ob_test_recorder_stop(&rec);
        char *out = NULL, *err = NULL;
        const char *adopt[] = {OB_OFFBOARD_BIN, "reconcile", "--adopt", "--config", cfgpath, NULL};
        int rc = ob_test_run(adopt, 60, &out, &err);
        cr_assert_eq(rc, 0, "reconcile --adopt: %d\n%s%s", rc, out, err);
        free(out);
        free(err);
        start_live_service();
}

Test(service, the_circuit_breaker_counts_the_changes_of_the_feed_over_a_sliding_window)
{
        /* At most one status change per hour without a human. */
        safety = "  max_accounts: 1\n  max_percent: 0\n  window: 1h\n";
        start_after_adopting();
        char *out = NULL, *err = NULL;
        int rc;

        const struct ob_test_person *a = an_active_person(5), *b = an_active_person(6);
        char type_a[64], type_b[64];
        get_employee_type(a, type_a);
        get_employee_type(b, type_b);
        char pa[300], pb[300];
        snprintf(pa, sizeof(pa), "/api/users/%s/sessions/revoke", a->uid);
        snprintf(pb, sizeof(pb), "/api/users/%s/sessions/revoke", b->uid);
        set_employee_type(a, "Inactive");
        int acted = wait_requests(pa, 1, 20000);
        char *log = service_log();
        cr_assert_eq(acted, 1, "the first leaver, within the limit, was not acted on:\n%s", log);
        free(log);
        /* The second within the hour is above it: parked, as a big plan is. */
        set_employee_type(b, "Inactive");
        bool parked = wait_log("event=parked scope=changes", 20000);
        usleep(300000);
        log = service_log();
        cr_assert(parked, "the second change in the window was not parked:\n%s", log);
        cr_assert(strstr(log, "event=change_pass number=2 changes=1 exit=4 "), "%s", log);
        cr_assert_eq(wait_requests(pb, 1, 10), 0, "a parked change was acted on:\n%s", log);
        free(log);
        /* Releasing it by hand needs the service stopped, and says so. */
        const char *force[] = {OB_OFFBOARD_BIN, "reconcile", "--force", "--config", cfgpath, NULL};
        rc = ob_test_run(force, 60, &out, &err);
        cr_assert_eq(rc, 2, "reconcile beside the service: %d\n%s%s", rc, out, err);
        cr_assert(strstr(err, "the service `offboard run` (pid ") && strstr(err, "systemctl stop offboard"), "%s",
                  err);
        free(out);
        free(err);
        cr_assert_eq(wait_requests(pb, 1, 10), 0, "reconcile --force beside the service acted");
        stop_service_ok();
        set_employee_type(a, type_a);
        set_employee_type(b, type_b);
        safety = "  max_accounts: 0\n  max_percent: 0\n";
}

Test(service, the_circuit_breaker_forgets_the_changes_older_than_its_window)
{
        /* At most one status change per 3 s: a service runs for longer than
         * its window, and what left it no longer counts. */
        safety = "  max_accounts: 1\n  max_percent: 0\n  window: 3s\n";
        start_after_adopting();

        const struct ob_test_person *a = an_active_person(9), *b = an_active_person(10);
        char type_a[64], type_b[64];
        get_employee_type(a, type_a);
        get_employee_type(b, type_b);
        char pa[300], pb[300];
        snprintf(pa, sizeof(pa), "/api/users/%s/sessions/revoke", a->uid);
        snprintf(pb, sizeof(pb), "/api/users/%s/sessions/revoke", b->uid);
        set_employee_type(a, "Inactive");
        int acted = wait_requests(pa, 1, 20000);
        char *log = service_log();
        cr_assert_eq(acted, 1, "the first leaver was not acted on:\n%s", log);
        free(log);
        /* Past the window (3 s after the first change was heard), a second
         * change is within the limit again. */
        usleep(3500000);
        set_employee_type(b, "Inactive");
        acted = wait_requests(pb, 1, 20000);
        usleep(300000);
        log = service_log();
        cr_assert_eq(acted, 1, "a change after the window was not acted on:\n%s", log);
        cr_assert_null(strstr(log, "event=parked"), "a change after the window was parked:\n%s", log);
        free(log);
        stop_service_ok();
        set_employee_type(a, type_a);
        set_employee_type(b, type_b);
        safety = "  max_accounts: 0\n  max_percent: 0\n";
}

/* GET path from the service's unix socket with curl: the status and body. */
static int get(const char *sock, const char *path, char **body)
{
        char url[200];
        snprintf(url, sizeof(url), "http://localhost%s", path);
        const char *argv[] = {"/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", sock, url, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 10, &out, &err);
        free(err);
        cr_assert_eq(rc, 0, "curl %s: %d", path, rc);
        char *nl = strrchr(out, '\n');
        cr_assert_not_null(nl);
        int status = atoi(nl + 1);
        *nl = '\0';
        *body = out;
        return status;
}

Test(service, health_and_metrics_are_served_on_a_unix_socket_and_count_what_the_feed_brought)
{
        char sock[300];
        snprintf(sock, sizeof(sock), "%s/metrics.sock", dir);
        snprintf(listen_line, sizeof(listen_line), "  listen: unix:%s\n", sock);
        start_live_service();
        char *body = NULL;
        int status = get(sock, "/healthz", &body);
        cr_assert_eq(status, 200, "%s", body);
        cr_assert(strstr(body, "\"status\":\"ok\"") && strstr(body, "\"feed\":\"syncrepl\"") &&
                          strstr(body, "\"feed_state\":\"live\""),
                  "%s", body);
        free(body);

        const struct ob_test_person *p = an_active_person(7);
        char type[64];
        get_employee_type(p, type);
        set_employee_type(p, "Inactive");
        char path[300];
        snprintf(path, sizeof(path), "/api/users/%s/sessions/revoke", p->uid);
        int acted = wait_requests(path, 1, 20000);
        cr_assert_eq(acted, 1);
        /* The pass is over when its line is logged. */
        cr_assert(wait_log("event=change_pass number=1 ", 10000));
        status = get(sock, "/metrics", &body);
        cr_assert_eq(status, 200, "%s", body);
        cr_assert(strstr(body, "offboard_feed_state{feed=\"syncrepl\",state=\"live\"} 1\n"), "%s", body);
        cr_assert(strstr(body, "offboard_passes_total{kind=\"changes\",exit=\"0\"} 1\n"), "%s", body);
        cr_assert(strstr(body, "offboard_actions_total{connector=\"apps\",outcome=\"done\"} "), "%s", body);
        cr_assert(strstr(body, "offboard_change_to_request_seconds_count 1\n"), "%s", body);
        free(body);

        /* `offboard status` beside it: the store's view and the service's. */
        char *out = NULL, *err = NULL;
        const char *st[] = {OB_OFFBOARD_BIN, "status", "--config", cfgpath, NULL};
        int rc = ob_test_run(st, 30, &out, &err);
        cr_assert_eq(rc, 0, "status: %d\n%s%s", rc, out, err);
        char want[400];
        snprintf(want, sizeof(want), "service: offboard run (pid %d) holds the state store; /healthz at unix:%s: 200 {",
                 (int)service, sock);
        cr_assert(strstr(out, want), "%s\nwanted: %s", out, want);
        free(out);
        free(err);
        const char *stj[] = {OB_OFFBOARD_BIN, "status", "--format", "json", "--config", cfgpath, NULL};
        rc = ob_test_run(stj, 30, &out, &err);
        cr_assert_eq(rc, 0, "status: %d\n%s%s", rc, out, err);
        snprintf(want, sizeof(want), "\"service\":{\"running\":true,\"pid\":%d,", (int)service);
        cr_assert(strstr(out, want) && strstr(out, "\"http_status\":200,\"health\":\"{\\\"status\\\":\\\"ok\\\""),
                  "%s", out);
        free(out);
        free(err);
        stop_service_ok();
        rc = ob_test_run(st, 30, &out, &err);
        cr_assert_eq(rc, 0, "status: %d\n%s%s", rc, out, err);
        cr_assert(strstr(out, "service: not running"), "%s", out);
        free(out);
        free(err);
        struct stat sb;
        cr_assert_neq(stat(sock, &sb), 0, "the socket is removed at the end");
        set_employee_type(p, type);
        listen_line[0] = '\0';
}
