/* journal.c: the audit journal (see journal.h for the contract).
 *
 * A line is built in memory, field by field, into an ob_buf and handed to
 * write(2) once. Every string goes through json_string(), which validates
 * UTF-8 itself (ob_escape_json() refuses invalid UTF-8 as a whole, the
 * journal must not) and cuts the value between two characters when its
 * escaped form outgrows the field's budget. The error comes last among the
 * strings and gets what is left of OB_JOURNAL_LINE_MAX after the other fields
 * and the reserve for the numbers that follow it.
 */
#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "util.h"

/* Room kept after the error for ,"duration_ms":<int64> and "}\n". */
#define OB_JOURNAL_TAIL_RESERVE 64
#define OB_JOURNAL_ELLIPSIS "..."

struct ob_journal {
        char *path;
        int fd;
        dev_t dev; /* the file fd is open on */
        ino_t ino;
        bool torn; /* the last line was cut short and could not be ended */
        bool hold; /* ob_journal_hold(): lines gather in out until a flush */
        struct ob_buf out; /* whole lines not written yet (held) */
        struct ob_buf line; /* the line being built, kept for its capacity */
        time_t tsec;        /* the second whose "YYYY-MM-DDTHH:MM:SS" is in tprefix */
        char tprefix[80]; /* 19 bytes used; room for what gcc cannot rule out */
};

/* Opens path for appending and checks what was opened: a regular file of
 * ours that nobody else may write. O_NONBLOCK keeps a FIFO planted at path
 * from blocking the open; it is refused below anyway. */
static int open_checked(const char *path, int *ret_fd, struct stat *ret_st)
{
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0)
                return -errno;
        struct stat st;
        int r = 0;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                r = -EPERM;
        else if (fcntl(fd, F_SETFL, O_APPEND) < 0) /* drops O_NONBLOCK */
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        *ret_st = st;
        return 0;
}

int ob_journal_open(const char *path, struct ob_journal **ret)
{
        if (!path || !*path || !ret)
                return -EINVAL;
        struct ob_journal *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->fd = -1;
        j->path = ob_strdup(path);
        if (!j->path) {
                free(j);
                return -ENOMEM;
        }
        struct stat st = {0};
        int r = open_checked(path, &j->fd, &st);
        if (r < 0) {
                ob_journal_free(j);
                return r;
        }
        j->dev = st.st_dev;
        j->ino = st.st_ino;
        *ret = j;
        return 0;
}

int ob_journal_reopen(struct ob_journal *j)
{
        if (!j)
                return -EINVAL;
        int fd = -1;
        struct stat st = {0};
        /* Held lines belong to the file they were appended for. */
        (void)ob_journal_flush(j);
        int r = open_checked(j->path, &fd, &st);
        if (r < 0)
                return r;
        if (j->fd >= 0)
                close(j->fd);
        j->fd = fd;
        /* A torn line stays to be ended only if this is still its file. */
        if (st.st_dev != j->dev || st.st_ino != j->ino)
                j->torn = false;
        j->dev = st.st_dev;
        j->ino = st.st_ino;
        return 0;
}

void ob_journal_free(struct ob_journal *j)
{
        if (!j)
                return;
        (void)ob_journal_flush(j);
        if (j->fd >= 0)
                close(j->fd);
        ob_buf_free(&j->out);
        ob_buf_free(&j->line);
        free(j->path);
        free(j);
}

int ob_journal_sync(struct ob_journal *j)
{
        if (!j)
                return -EINVAL;
        int r = ob_journal_flush(j);
        if (r < 0)
                return r;
        if (fdatasync(j->fd) < 0)
                return -errno;
        return 0;
}


/* Appends the contents of a JSON string for s (no quotes), at most max bytes
 * (max >= sizeof(OB_JOURNAL_ELLIPSIS)). A value whose escaped form is longer
 * is cut after the last character that leaves room for the ellipsis. */
static int json_contents(struct ob_buf *b, const char *s, size_t max)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        size_t n = strlen(s);
        size_t start = b->len;
        size_t keep = start; /* end of the longest prefix that leaves room for the ellipsis */
        const size_t ell = sizeof(OB_JOURNAL_ELLIPSIS) - 1;

        for (size_t i = 0; i < n;) {
                int r;
                if (u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\') {
                        /* A run of bytes written as they are, one output byte
                         * each: added at once, cut as the loop below would. */
                        size_t j = i;
                        while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
                                j++;
                        size_t used0 = b->len - start;
                        size_t take = j - i;
                        if (take > max - used0 + 1)
                                take = max - used0 + 1; /* one past the budget shows the cut */
                        r = ob_buf_add(b, s + i, take);
                        if (r < 0)
                                return r;
                        i += take;
                        size_t lim = max - ell;
                        if (used0 + take <= lim)
                                keep = b->len;
                        else if (used0 <= lim)
                                keep = start + lim;
                        if (b->len - start > max) {
                                b->len = keep;
                                b->data[b->len] = '\0';
                                return ob_buf_add(b, OB_JOURNAL_ELLIPSIS, ell);
                        }
                        continue;
                }
                size_t k = ob_utf8_sequence(u + i, n - i);
                if (k == 0) {
                        char esc[6] = {'\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 0xF]};
                        r = ob_buf_add(b, esc, sizeof(esc));
                        k = 1;
                } else {
                        r = ob_escape_json(b, s + i, k);
                }
                if (r < 0)
                        return r;
                i += k;
                size_t used = b->len - start;
                if (used > max) {
                        b->len = keep;
                        b->data[b->len] = '\0';
                        return ob_buf_add(b, OB_JOURNAL_ELLIPSIS, ell);
                }
                if (used + ell <= max)
                        keep = b->len;
        }
        return 0;
}

/* ,"key": (key is one of ours: nothing to escape) */
static int json_key(struct ob_buf *b, const char *key)
{
        size_t n = strlen(key);
        int r = ob_buf_add(b, ",\"", 2);
        if (r >= 0)
                r = ob_buf_add(b, key, n);
        if (r >= 0)
                r = ob_buf_add(b, "\":", 2);
        return r;
}

static int json_string(struct ob_buf *b, const char *key, const char *s, size_t max)
{
        if (!s)
                return 0;
        int r = json_key(b, key);
        if (r >= 0)
                r = ob_buf_addc(b, '"');
        if (r < 0)
                return r;
        r = json_contents(b, s, max);
        if (r < 0)
                return r;
        return ob_buf_addc(b, '"');
}

static int json_int(struct ob_buf *b, const char *key, int64_t v)
{
        char d[24];
        size_t i = sizeof(d);
        uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
        do
                d[--i] = (char)('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
                d[--i] = '-';
        int r = json_key(b, key);
        return r < 0 ? r : ob_buf_add(b, d + i, sizeof(d) - i);
}

/* RFC 3339, UTC, milliseconds: "2026-12-02T10:00:00.123Z". The date and
 * time of day are formatted once per second. */
static int format_time(struct ob_journal *j, struct ob_buf *b, int64_t ms)
{
        /* 253402300800000 ms is 10000-01-01T00:00:00Z: four-digit years only. */
        if (ms < 0 || ms >= INT64_C(253402300800000))
                return -EINVAL;
        time_t secs = (time_t)(ms / 1000);
        if (!j->tprefix[0] || secs != j->tsec) {
                struct tm tm;
                if (!gmtime_r(&secs, &tm))
                        return -EINVAL;
                snprintf(j->tprefix, sizeof(j->tprefix), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
                j->tsec = secs;
        }
        int m = (int)(ms % 1000);
        char frac[6] = {'.', (char)('0' + m / 100), (char)('0' + m / 10 % 10), (char)('0' + m % 10), 'Z', '"'};
        int r = ob_buf_add(b, "{\"time\":\"", 9);
        if (r >= 0)
                r = ob_buf_add(b, j->tprefix, strlen(j->tprefix));
        return r < 0 ? r : ob_buf_add(b, frac, sizeof(frac));
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int build_line(struct ob_journal *j, struct ob_buf *b, const struct ob_journal_entry *e)
{
        int r = format_time(j, b, e->time_ms ? e->time_ms : now_ms());
        if (r < 0)
                return r;
        /* Fields in the order of struct ob_journal_entry. */
        const struct {
                const char *key;
                const char *value;
                size_t max;
        } head[] = {
                {"event", e->event, OB_JOURNAL_FIELD_MAX},
                {"account_id", e->account_id, OB_JOURNAL_FIELD_MAX},
                {"username", e->username, OB_JOURNAL_FIELD_MAX},
                {"dn", e->dn, 2 * OB_JOURNAL_FIELD_MAX},
                {"transition", e->transition, OB_JOURNAL_FIELD_MAX},
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(head) && r >= 0; i++)
                r = json_string(b, head[i].key, head[i].value, head[i].max);
        if (r >= 0 && e->generation > 0)
                r = json_int(b, "generation", e->generation);
        if (r >= 0)
                r = json_string(b, "action", e->action, OB_JOURNAL_FIELD_MAX);
        if (r >= 0)
                r = json_string(b, "connector", e->connector, OB_JOURNAL_FIELD_MAX);
        if (r >= 0)
                r = json_string(b, "idempotency_key", e->idempotency_key, OB_JOURNAL_FIELD_MAX);
        if (r >= 0 && e->attempt > 0)
                r = json_int(b, "attempt", e->attempt);
        if (r >= 0)
                r = json_string(b, "result", e->result, OB_JOURNAL_FIELD_MAX);
        if (r >= 0 && e->http_status > 0)
                r = json_int(b, "http_status", e->http_status);
        if (r < 0)
                return r;

        if (e->error) {
                /* What is left once the key, its quotes and the tail are set aside;
                 * the other fields' budgets leave several KiB. */
                size_t overhead = sizeof(",\"error\":\"\"") - 1 + OB_JOURNAL_TAIL_RESERVE;
                if (b->len + overhead + sizeof(OB_JOURNAL_ELLIPSIS) > OB_JOURNAL_LINE_MAX)
                        return -OB_ELIMIT; /* cannot happen with the budgets above */
                r = json_string(b, "error", e->error, OB_JOURNAL_LINE_MAX - b->len - overhead);
                if (r < 0)
                        return r;
        }
        if (e->result && e->duration_ms >= 0) {
                r = json_int(b, "duration_ms", e->duration_ms);
                if (r < 0)
                        return r;
        }
        r = ob_buf_add(b, "}\n", 2);
        if (r < 0)
                return r;
        if (b->len > OB_JOURNAL_LINE_MAX)
                return -OB_ELIMIT;
        return 0;
}

/* Writes the lines in j->out with one write(2) and empties it, whatever
 * happens: lines that could not be written are reported, not kept. */
static int write_out(struct ob_journal *j)
{
        if (j->out.len == 0)
                return 0;
        ssize_t n;
        do
                n = write(j->fd, j->out.data, j->out.len);
        while (n < 0 && errno == EINTR);
        size_t want = j->out.len;
        ob_buf_reset(&j->out);
        if (n < 0)
                return -errno; /* nothing written: a torn line stays torn */
        if ((size_t)n == want) {
                j->torn = false;
                return 0;
        }

        /* Short write: the rest cannot follow without risking another
         * appender's line in between. End the torn line so that the next
         * one starts clean, and report why the disk took no more. */
        do
                n = write(j->fd, "\n", 1);
        while (n < 0 && errno == EINTR);
        j->torn = n != 1;
        if (n < 0)
                return -errno;
        return -EIO;
}

int ob_journal_append(struct ob_journal *j, const struct ob_journal_entry *e)
{
        if (!j || !e || !e->event || !*e->event)
                return -EINVAL;
        struct ob_buf *b = &j->line;
        ob_buf_reset(b);
        int r = build_line(j, b, e);
        if (r < 0)
                return r;
        if (j->hold && j->out.len > 0 && j->out.len + b->len > OB_JOURNAL_HOLD_MAX) {
                r = write_out(j);
                if (r < 0)
                        return r;
        }
        /* A torn line left without its newline is ended by the next write,
         * in the same write(2) as the new lines. */
        if (j->out.len == 0 && j->torn)
                r = ob_buf_addc(&j->out, '\n');
        if (r >= 0)
                r = ob_buf_add(&j->out, b->data, b->len);
        if (r < 0) {
                ob_buf_reset(&j->out); /* what was held is lost with the line: say so */
                return r;
        }
        return j->hold ? 0 : write_out(j);
}

void ob_journal_hold(struct ob_journal *j, bool hold)
{
        if (j)
                j->hold = hold;
}

int ob_journal_flush(struct ob_journal *j)
{
        if (!j)
                return -EINVAL;
        return write_out(j);
}
