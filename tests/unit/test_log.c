/* Log lines: logfmt with time, run and level; journald priorities; no half
 * UTF-8 characters. Each test runs in its own process (Criterion), so the
 * log's once-per-process choices (journald or not, the run id) start anew. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static char path[64];
static int saved = -1;

/* stderr into a file, whose text end() returns. */
static void begin(bool journal)
{
        snprintf(path, sizeof(path), "/tmp/ob-test-log-XXXXXX");
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        saved = dup(STDERR_FILENO);
        cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
        if (journal) {
                struct stat st;
                cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
                char v[64];
                snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
                setenv("JOURNAL_STREAM", v, 1);
        } else {
                unsetenv("JOURNAL_STREAM");
        }
}

static char *end(void)
{
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f);
        static char buf[16384];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        unlink(path);
        return buf;
}

static bool matches(const char *re, const char *s)
{
        regex_t r;
        cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0, "%s", re);
        bool m = regexec(&r, s, 0, NULL, 0) == 0;
        regfree(&r);
        return m;
}

/* Whether s is valid UTF-8. */
static bool utf8_ok(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
                if (n < 0)
                        return false;
                p++;
                for (int i = 0; i < n; i++, p++)
                        if ((*p & 0xC0) != 0x80)
                                return false;
        }
        return true;
}

Test(log, a_line_is_logfmt_with_time_run_and_level_and_no_prefix)
{
        begin(false);
        ob_log(OB_LOG_WARNING, "event=one n=%d", 1);
        ob_log(OB_LOG_INFO, "event=two");
        ob_log(OB_LOG_DEBUG, "event=hidden");
        char *out = end();
        cr_assert(matches("^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z run=([0-9a-f]{8}) "
                          "level=warning event=one n=1\n"
                          "time=[^ ]+Z run=[0-9a-f]{8} level=info event=two\n$",
                          out),
                  "%s", out);
        /* One run id for the process. */
        char a[9], b[9];
        cr_assert_eq(sscanf(strstr(out, "run=") + 4, "%8s", a), 1);
        cr_assert_eq(sscanf(strstr(strchr(out, '\n'), "run=") + 4, "%8s", b), 1);
        cr_assert_str_eq(a, b);
}

/* A private /run/systemd (a mount namespace of this test's own process):
 * empty, or with a datagram socket where journald's would be, whose fd is
 * returned. Skips the test where namespaces are not allowed (not root). */
static int private_journal(bool with_socket)
{
        if (unshare(CLONE_NEWNS) < 0)
                cr_skip_test("no mount namespace here (%s): run the tests as root", strerror(errno));
        cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
        if (mkdir("/run/systemd", 0755) < 0)
                cr_assert_eq(errno, EEXIST);
        cr_assert_eq(mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755"), 0, "%s", strerror(errno));
        if (!with_socket)
                return -1;
        cr_assert_eq(mkdir("/run/systemd/journal", 0755), 0);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "/run/systemd/journal/socket");
        cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
        int big = 1 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        return fd;
}

/* The next datagram journald would have read, as text ("KEY=value\n"...). */
static char *journal_entry(int fd)
{
        static char buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        cr_assert_gt(n, 0, "nothing reached the journal's socket");
        buf[n] = '\0';
        return buf;
}

static bool has_field(const char *entry, const char *field)
{
        size_t n = strlen(field);
        for (const char *p = entry; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, field, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

Test(log, under_journald_a_line_goes_to_the_journal_with_its_fields_and_priority)
{
        int fd = private_journal(true);
        begin(true);
        ob_log(OB_LOG_ERROR, "event=ldap_failed uri=%s error=%s code=-1", ob_log_quote("ldap://dc1"),
               ob_log_quote("a \"quoted\" \x01 reason"));
        ob_log(OB_LOG_INFO, "event=pass_end done=3");
        char *out = end();
        cr_assert_str_empty(out, "the journal took the lines; stderr got: %s", out);
        char *e = journal_entry(fd);
        cr_assert(has_field(e, "PRIORITY=3"), "%s", e);
        cr_assert(has_field(e, "SYSLOG_IDENTIFIER=offboard"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_EVENT=ldap_failed"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_URI=ldap://dc1"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_LEVEL=error"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_CODE=-1"), "%s", e);
        cr_assert(matches("(^|\n)OFFBOARD_RUN=[0-9a-f]{8}(\n|$)", e), "%s", e);
        cr_assert(matches("(^|\n)MESSAGE=run=[0-9a-f]{8} level=error event=ldap_failed uri=\"ldap://dc1\" ", e), "%s", e);
        /* A quoted value arrives unquoted; a control character as itself, not as text. */
        cr_assert(has_field(e, "OFFBOARD_ERROR=a \"quoted\" \x01 reason"), "%s", e);
        e = journal_entry(fd);
        cr_assert(has_field(e, "PRIORITY=6"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_EVENT=pass_end"), "%s", e);
        cr_assert(has_field(e, "OFFBOARD_DONE=3"), "%s", e);
        close(fd);
}

Test(log, under_journald_without_its_socket_a_line_carries_its_syslog_priority_and_no_time)
{
        private_journal(false);
        begin(true);
        ob_log(OB_LOG_ERROR, "event=e");
        ob_log(OB_LOG_WARNING, "event=w");
        ob_log(OB_LOG_INFO, "event=i");
        char *out = end();
        cr_assert(matches("^<3>run=[0-9a-f]{8} level=error event=e\n<4>run=[0-9a-f]{8} level=warning event=w\n"
                          "<6>run=[0-9a-f]{8} level=info event=i\n$",
                          out),
                  "%s", out);
}

Test(log, a_journal_stream_that_is_not_stderr_is_not_journald)
{
        begin(false);
        setenv("JOURNAL_STREAM", "1:1", 1);
        ob_log(OB_LOG_ERROR, "event=e");
        char *out = end();
        cr_assert(matches("^time=", out), "%s", out);
}

Test(log, long_lines_and_values_are_cut_between_utf8_characters)
{
        /* 540 bytes of CJK (180 characters of 3 bytes), as a quoted value
         * and as a whole line of 3,000 bytes. */
        char cjk[541] = "";
        for (int i = 0; i < 180; i++)
                strcat(cjk, "\xe6\x97\xa5");
        char *big = malloc(3001);
        cr_assert_not_null(big);
        big[0] = '\0';
        for (int i = 0; i < 1000; i++)
                strcat(big, "\xe6\x97\xa5");
        begin(false);
        ob_log(OB_LOG_WARNING, "event=quoted uid=%s", ob_log_quote(cjk));
        ob_log(OB_LOG_WARNING, "event=long text=%s", big);
        ob_log(OB_LOG_WARNING, "event=after");
        char *out = end();
        free(big);
        cr_assert(utf8_ok(out), "%s", out);
        cr_assert(strstr(out, "\xe6\x97\xa5...\"\n"), "the quoted value is cut whole, marked ...: %s", out);
        cr_assert(strstr(out, "level=warning event=after\n"), "a long line ends and the next one starts: %s", out);
        const char *q = strstr(out, "uid=\"");
        cr_assert_lt((size_t)(strchr(q, '\n') - q), (size_t)260);
}

Test(log, quoting_escapes_quotes_backslashes_and_controls)
{
        cr_assert_str_eq(ob_log_quote("a\"b\\c\x1b[2J\r\n"), "\"a\\\"b\\\\c\\x1b[2J\\x0d\\x0a\"");
        cr_assert_str_eq(ob_log_quote(NULL), "\"\"");
}

Test(log, enabled_says_whether_a_line_of_that_level_would_be_written)
{
        cr_assert(ob_log_enabled(OB_LOG_INFO));
        cr_assert_not(ob_log_enabled(OB_LOG_DEBUG), "debug is off unless -v");
        ob_log_set_quiet(true); /* an outage's retries: errors are said as debug */
        cr_assert_not(ob_log_enabled(OB_LOG_ERROR));
        ob_log_set_quiet(false);
        ob_log_set_level(OB_LOG_DEBUG);
        cr_assert(ob_log_enabled(OB_LOG_DEBUG));
        ob_log_set_level(OB_LOG_ERROR);
        cr_assert_not(ob_log_enabled(OB_LOG_WARNING));
        cr_assert(ob_log_enabled(OB_LOG_ERROR));
}
