/* util.c: error names, growable strings, checked parsers, secrets. */
#define _GNU_SOURCE
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const ob_errors[] = {
        [OB_ECONFIG - OB_EBASE] = "invalid configuration",
        [OB_EDIRECTORY - OB_EBASE] = "directory unreachable or operation failed",
        [OB_ESIZELIMIT - OB_EBASE] = "search cut short by a size or time limit",
        [OB_EEMPTY - OB_EBASE] = "search returned fewer accounts than expected",
        [OB_ENOTFOUND - OB_EBASE] = "entry not found",
        [OB_EASSERTION - OB_EBASE] = "entry changed concurrently",
        [OB_EINSECURE - OB_EBASE] = "refusing to send credentials over an unencrypted connection",
        [OB_ETEMPLATE - OB_EBASE] = "value cannot be placed safely in the template",
        [OB_ESTATE - OB_EBASE] = "state store unreadable or corrupt",
        [OB_EHTTP - OB_EBASE] = "HTTP request failed",
        [OB_ESAFETY - OB_EBASE] = "safety threshold reached",
        [OB_ELIMIT - OB_EBASE] = "value exceeds a limit",
        [OB_ESYNCREFRESH - OB_EBASE] = "the directory asks for a full refresh of the change feed",
};

const char *ob_strerror(int err)
{
        if (err < 0)
                err = -err;
        if (err > OB_EBASE && err - OB_EBASE < (int)OB_ELEMENTSOF(ob_errors) && ob_errors[err - OB_EBASE])
                return ob_errors[err - OB_EBASE];
        return strerror(err);
}

char *ob_strdup(const char *s)
{
        return s ? strdup(s) : NULL;
}

char *ob_strndup(const char *s, size_t n)
{
        return strndup(s, n);
}

void ob_buf_init(struct ob_buf *b)
{
        *b = (struct ob_buf){0};
}

void ob_buf_free(struct ob_buf *b)
{
        free(b->data);
        *b = (struct ob_buf){0};
}

void ob_buf_reset(struct ob_buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

int ob_buf_reserve(struct ob_buf *b, size_t extra)
{
        if (b->oom)
                return -ENOMEM;
        if (b->len + extra + 1 <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + extra + 1) {
                if (cap > SIZE_MAX / 2) {
                        b->oom = true;
                        return -ENOMEM;
                }
                cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p) {
                b->oom = true;
                return -ENOMEM;
        }
        b->data = p;
        b->cap = cap;
        return 0;
}

int ob_buf_add(struct ob_buf *b, const char *s, size_t n)
{
        int r = ob_buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int ob_buf_adds(struct ob_buf *b, const char *s)
{
        return ob_buf_add(b, s, strlen(s));
}

int ob_buf_addc(struct ob_buf *b, char c)
{
        return ob_buf_add(b, &c, 1);
}

int ob_buf_vprintf(struct ob_buf *b, const char *fmt, va_list ap)
{
        if (b->oom)
                return -ENOMEM;
        /* Straight into the room there is; formatted again only if it did
         * not fit. */
        va_list ap2;
        va_copy(ap2, ap);
        size_t room = b->data ? b->cap - b->len : 0;
        int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
        va_end(ap2);
        if (n < 0) {
                if (b->data)
                        b->data[b->len] = '\0';
                return -EINVAL;
        }
        if ((size_t)n < room) {
                b->len += (size_t)n;
                return 0;
        }
        if (b->data)
                b->data[b->len] = '\0';
        int r = ob_buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int ob_buf_printf(struct ob_buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = ob_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

int ob_buf_steal(struct ob_buf *b, char **ret)
{
        if (b->oom)
                return -ENOMEM;
        if (!b->data) {
                char *s = strdup("");
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        *ret = b->data;
        *b = (struct ob_buf){0};
        return 0;
}

int ob_parse_i64(const char *s, int64_t *ret)
{
        if (!s || !*s || isspace((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int ob_parse_u64(const char *s, uint64_t *ret)
{
        if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
                return -EINVAL;
        int base = 10;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                s += 2;
                if (!*s)
                        return -EINVAL;
        }
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int ob_parse_duration_ms(const char *s, int64_t *ret)
{
        if (!s || !*s)
                return -EINVAL;
        size_t n = strlen(s);
        int64_t mult = 1000;
        char unit = s[n - 1];
        char num[32];
        if (isalpha((unsigned char)unit)) {
                if (n >= 3 && strcmp(s + n - 2, "ms") == 0) {
                        mult = 1;
                        n -= 2;
                } else {
                        switch (unit) {
                        case 's': mult = 1000; break;
                        case 'm': mult = 60 * 1000; break;
                        case 'h': mult = 3600 * 1000; break;
                        case 'd': mult = 86400 * 1000; break;
                        default: return -EINVAL;
                        }
                        n -= 1;
                }
        }
        if (n == 0 || n >= sizeof(num))
                return -EINVAL;
        memcpy(num, s, n);
        num[n] = '\0';
        int64_t v;
        int r = ob_parse_i64(num, &v);
        if (r < 0)
                return r;
        if (v < 0)
                return -EINVAL;
        if (v > INT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

void ob_secret_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

int ob_read_secret_file(const char *path, char **ret)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        char buf[4096];
        size_t len = 0;
        for (;;) {
                ssize_t k = read(fd, buf + len, sizeof(buf) - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        close(fd);
                        explicit_bzero(buf, sizeof(buf));
                        return e;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len == sizeof(buf)) {
                        close(fd);
                        explicit_bzero(buf, sizeof(buf));
                        return -OB_ELIMIT;
                }
        }
        close(fd);
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                len--;
        if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\0', len)) {
                explicit_bzero(buf, sizeof(buf));
                return -EINVAL;
        }
        char *s = strndup(buf, len);
        explicit_bzero(buf, sizeof(buf));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool ob_streq_ci(const char *a, const char *b)
{
        return a && b && strcasecmp(a, b) == 0;
}

int64_t ob_now(void)
{
        return (int64_t)time(NULL);
}

int ob_strv_add_unique_ci(char ***list, const char *s)
{
        size_t n = 0;
        for (; *list && (*list)[n]; n++)
                if (strcasecmp((*list)[n], s) == 0)
                        return 0;
        char **l = realloc(*list, (n + 2) * sizeof(char *));
        if (!l)
                return -ENOMEM;
        *list = l;
        l[n] = strdup(s);
        if (!l[n])
                return -ENOMEM;
        l[n + 1] = NULL;
        return 0;
}

void ob_strv_free(char **l)
{
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}
