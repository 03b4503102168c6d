/* log.c: structured lines on stderr, or to journald with their fields. */
#define _GNU_SOURCE
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

static enum ob_log_level ob_log_max = OB_LOG_INFO;

void ob_log_set_level(enum ob_log_level level)
{
        ob_log_max = level;
}

/* Per thread: a connection set up on a thread of its own (directory.c)
 * says its failures as quietly as the caller asked. */
static _Thread_local bool ob_log_quiet;

void ob_log_set_quiet(bool quiet)
{
        ob_log_quiet = quiet;
}

bool ob_log_is_quiet(void)
{
        return ob_log_quiet;
}

/* Where to cut s (longer than n) at most n bytes in, never inside a UTF-8
 * character: back from s[n] to the byte that starts one. */
static size_t utf8_cut(const char *s, size_t n)
{
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

static char run_id_text[9];

static void run_id_init(void)
{
        unsigned char b[4] = {0};
        if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
                unsigned v = (unsigned)getpid() ^ (unsigned)time(NULL);
                memcpy(b, &v, sizeof(b));
        }
        snprintf(run_id_text, sizeof(run_id_text), "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
}

/* A random id for this process's lines: what one run said, together (the
 * same on every thread). */
static const char *run_id(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, run_id_init);
        return run_id_text;
}

static int journal_known;
static bool journal_api; /* journald's native socket is there */

static void journal_detect(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        journal_known = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
        /* libsystemd drops a line silently when the socket is missing: then
         * the stream it is, with priorities. */
        journal_api = journal_known && access("/run/systemd/journal/socket", W_OK) == 0;
}

/* Whether stderr is journald's stream (systemd.exec(5), JOURNAL_STREAM):
 * then each line goes to the journal with its fields (journal_send), or, if
 * that fails, to stderr with a "<N>" prefix that gives it its priority. */
static bool to_journal(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, journal_detect);
        return journal_known;
}

#define OB_JOURNAL_FIELDS 40

/* The line's key=value pairs (values bare or "quoted" as ob_log_quote
 * writes them) as journal fields OFFBOARD_KEY=value, unquoted, beside
 * MESSAGE (the line), PRIORITY and SYSLOG_IDENTIFIER: `journalctl
 * OFFBOARD_EVENT=pass_end` finds the passes' ends. 0, or a negative errno
 * (then the caller writes the line to stderr). */
static int journal_send(int priority, const char *line, size_t len)
{
        struct iovec iov[OB_JOURNAL_FIELDS + 3];
        char arena[3 * 2048 + 256], head[64], msg[2048 + 8];
        size_t n = 0, used = 0;
        int hn = snprintf(head, sizeof(head), "PRIORITY=%d", priority);
        iov[n++] = (struct iovec){head, (size_t)hn};
        iov[n++] = (struct iovec){(char *)"SYSLOG_IDENTIFIER=offboard", strlen("SYSLOG_IDENTIFIER=offboard")};
        memcpy(msg, "MESSAGE=", 8);
        memcpy(msg + 8, line, len);
        iov[n++] = (struct iovec){msg, 8 + len};
        const char *p = line, *end = line + len;
        while (p < end && n < OB_JOURNAL_FIELDS + 3) {
                while (p < end && *p == ' ')
                        p++;
                const char *k = p;
                while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        p++;
                size_t klen = (size_t)(p - k);
                if (p >= end || *p != '=' || klen == 0 || klen > 40) {
                        while (p < end && *p != ' ') /* not a pair: skip the word */
                                p++;
                        continue;
                }
                p++;
                char *f = arena + used;
                size_t room = sizeof(arena) - used, o = 0;
                if (room < klen + 16)
                        break;
                memcpy(f, "OFFBOARD_", 9);
                o = 9;
                for (size_t i = 0; i < klen; i++)
                        f[o++] = (char)(k[i] >= 'a' && k[i] <= 'z' ? k[i] - 'a' + 'A' : k[i]);
                f[o++] = '=';
                if (p < end && *p == '"') {
                        for (p++; p < end && *p != '"' && o < room; p++) {
                                if (*p == '\\' && p + 1 < end && p[1] == 'x' && p + 3 < end) {
                                        unsigned v;
                                        if (sscanf(p + 2, "%2x", &v) == 1)
                                                f[o++] = (char)v;
                                        p += 3;
                                } else if (*p == '\\' && p + 1 < end) {
                                        f[o++] = *++p;
                                } else {
                                        f[o++] = *p;
                                }
                        }
                        if (p < end)
                                p++; /* the closing quote */
                } else {
                        while (p < end && *p != ' ' && o < room)
                                f[o++] = *p++;
                }
                used += o;
                iov[n++] = (struct iovec){f, o};
        }
        int r = sd_journal_sendv(iov, (int)n);
        return r < 0 ? r : 0;
}

bool ob_log_enabled(enum ob_log_level level)
{
        if (ob_log_quiet && level < OB_LOG_INFO)
                level = OB_LOG_DEBUG;
        return level <= ob_log_max;
}

void ob_log(enum ob_log_level level, const char *fmt, ...)
{
        static const char *const names[] = {"error", "warning", "info", "debug"};
        static const int priorities[] = {3, 4, 6, 7}; /* syslog: err, warning, info, debug */
        if (!ob_log_enabled(level))
                return;
        if (ob_log_quiet && level < OB_LOG_INFO)
                level = OB_LOG_DEBUG;
        char line[2048];
        int n;
        bool journal = to_journal();
        if (journal) {
                /* "<N>" first, in case the journal's socket fails; journald stamps the time. */
                n = snprintf(line, sizeof(line), "<%d>run=%s level=%s ", priorities[level], run_id(), names[level]);
        } else {
                struct timespec ts;
                struct tm tm;
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                n = snprintf(line, sizeof(line), "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ run=%s level=%s ",
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                             ts.tv_nsec / 1000000, run_id(), names[level]);
        }
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
        if (len >= sizeof(line))
                len = utf8_cut(line, sizeof(line) - 1); /* a long line loses its end, never half a character */
        if (journal && journal_api) {
                const char *gt = memchr(line, '>', len);
                size_t skip = gt ? (size_t)(gt - line) + 1 : 0;
                if (journal_send(priorities[level], line + skip, len - skip) == 0)
                        return;
        }
        line[len] = '\n';
        fwrite(line, 1, len + 1, stderr);
}

const char *ob_log_quote(const char *s)
{
        static _Thread_local char bufs[4][256]; /* per thread: see ob_dir_open_on */
        static _Thread_local int which;
        char *out = bufs[which];
        which = (which + 1) % 4;
        size_t o = 0;
        out[o++] = '"';
        size_t i = 0;
        for (; s && s[i] && o < 240; i++) {
                unsigned char c = (unsigned char)s[i];
                /* Cut before a character that would not fit whole. */
                if (c >= 0xC0 && o + (c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2) > 240)
                        break;
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(out + o, 6, "\\x%02x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        if (s && s[i]) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o++] = '"';
        out[o] = '\0';
        return out;
}
