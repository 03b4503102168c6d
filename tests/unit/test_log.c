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
#include <sys/stat.h>
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

Test(log, under_journald_a_line_carries_its_syslog_priority_and_no_time)
{
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
