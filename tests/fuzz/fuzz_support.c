/* fuzz_support.c: failure reporting, memfd files and the strict JSON
 * checker the harnesses use as oracles (see fuzz_support.h). */
#define _GNU_SOURCE
#include "fuzz_support.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void ob_fuzz_fail(const char *fmt, ...)
{
        va_list ap;
        fputs("oracle failed: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
        abort();
}

void ob_fuzz_dump(const char *label, const void *p, size_t n)
{
        const unsigned char *c = p;
        fprintf(stderr, "%s (%zu bytes): \"", label, n);
        for (size_t i = 0; i < n; i++) {
                if (c[i] == '"' || c[i] == '\\')
                        fprintf(stderr, "\\%c", c[i]);
                else if (c[i] >= 0x20 && c[i] < 0x7f)
                        fputc(c[i], stderr);
                else
                        fprintf(stderr, "\\x%02x", c[i]);
        }
        fputs("\"\n", stderr);
}

int ob_fuzz_memfd(const char *name, const void *p, size_t n, char *path, size_t pathlen)
{
        int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        const char *c = p;
        size_t done = 0;
        while (done < n) {
                ssize_t k = write(fd, c + done, n - done);
                if (k < 0) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                done += (size_t)k;
        }
        if (lseek(fd, 0, SEEK_SET) < 0 || snprintf(path, pathlen, "/proc/self/fd/%d", fd) >= (int)pathlen) {
                close(fd);
                return -EINVAL;
        }
        return fd;
}

const void *ob_fuzz_memmem(const void *hay, size_t hn, const void *needle, size_t nn)
{
        if (nn == 0)
                return hay;
        return memmem(hay, hn, needle, nn);
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed sequence at s, or 0 (RFC 3629 table 3-7). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
        unsigned char c = s[0];
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2;
        else if (c == 0xe0)
                len = 3, lo = 0xa0;
        else if (c == 0xed)
                len = 3, hi = 0x9f;
        else if (c >= 0xe1 && c <= 0xef)
                len = 3;
        else if (c == 0xf0)
                len = 4, lo = 0x90;
        else if (c >= 0xf1 && c <= 0xf3)
                len = 4;
        else if (c == 0xf4)
                len = 4, hi = 0x8f;
        else
                return 0;
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

bool ob_fuzz_utf8_valid(const char *p, size_t n)
{
        const unsigned char *s = (const unsigned char *)p;
        for (size_t i = 0; i < n;) {
                size_t k = utf8_len(s + i, n - i);
                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

/* ---- JSON ----------------------------------------------------------------- */

struct jp {
        const unsigned char *p;
        size_t n, i;
        int depth;
        struct ob_buf *out; /* string contents go here when set */
};

static void jws(struct jp *j)
{
        while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
                j->i++;
}

static int hex4(struct jp *j, unsigned *ret)
{
        unsigned v = 0;
        if (j->n - j->i < 4)
                return -1;
        for (int k = 0; k < 4; k++) {
                unsigned char c = j->p[j->i++];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= c - '0';
                else if (c >= 'a' && c <= 'f')
                        v |= c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        v |= c - 'A' + 10;
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static int put_cp(struct ob_buf *b, unsigned cp)
{
        char u[4];
        size_t n;
        if (!b)
                return 0;
        if (cp < 0x80) {
                u[0] = (char)cp, n = 1;
        } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
        } else {
                u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
        }
        return ob_buf_add(b, u, n);
}

static int jstring(struct jp *j)
{
        if (j->i >= j->n || j->p[j->i] != '"')
                return -1;
        j->i++;
        while (j->i < j->n) {
                unsigned char c = j->p[j->i];
                if (c == '"') {
                        j->i++;
                        return 0;
                }
                if (c < 0x20)
                        return -1;
                if (c == '\\') {
                        if (++j->i >= j->n)
                                return -1;
                        unsigned char e = j->p[j->i++];
                        unsigned cp;
                        switch (e) {
                        case '"': cp = '"'; break;
                        case '\\': cp = '\\'; break;
                        case '/': cp = '/'; break;
                        case 'b': cp = '\b'; break;
                        case 'f': cp = '\f'; break;
                        case 'n': cp = '\n'; break;
                        case 'r': cp = '\r'; break;
                        case 't': cp = '\t'; break;
                        case 'u':
                                if (hex4(j, &cp) < 0)
                                        return -1;
                                if (cp >= 0xdc00 && cp <= 0xdfff)
                                        return -1; /* lone low surrogate */
                                if (cp >= 0xd800 && cp <= 0xdbff) {
                                        unsigned lo;
                                        if (j->n - j->i < 6 || j->p[j->i] != '\\' || j->p[j->i + 1] != 'u')
                                                return -1;
                                        j->i += 2;
                                        if (hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                                return -1;
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                }
                                break;
                        default: return -1;
                        }
                        if (put_cp(j->out, cp) < 0)
                                return -1;
                        continue;
                }
                size_t k = utf8_len(j->p + j->i, j->n - j->i);
                if (k == 0)
                        return -1;
                if (j->out && ob_buf_add(j->out, (const char *)j->p + j->i, k) < 0)
                        return -1;
                j->i += k;
        }
        return -1;
}

static bool jdigit(struct jp *j)
{
        return j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9';
}

static int jnumber(struct jp *j)
{
        if (j->i < j->n && j->p[j->i] == '-')
                j->i++;
        if (!jdigit(j))
                return -1;
        if (j->p[j->i] == '0')
                j->i++;
        else
                while (jdigit(j))
                        j->i++;
        if (j->i < j->n && j->p[j->i] == '.') {
                j->i++;
                if (!jdigit(j))
                        return -1;
                while (jdigit(j))
                        j->i++;
        }
        if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
                j->i++;
                if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
                        j->i++;
                if (!jdigit(j))
                        return -1;
                while (jdigit(j))
                        j->i++;
        }
        return 0;
}

static int jvalue(struct jp *j);

static int jcontainer(struct jp *j, bool object)
{
        if (++j->depth > 512)
                return -1;
        j->i++; /* [ or { */
        jws(j);
        if (j->i < j->n && j->p[j->i] == (object ? '}' : ']')) {
                j->i++;
                j->depth--;
                return 0;
        }
        for (;;) {
                jws(j);
                if (object) {
                        if (jstring(j) < 0)
                                return -1;
                        jws(j);
                        if (j->i >= j->n || j->p[j->i] != ':')
                                return -1;
                        j->i++;
                }
                if (jvalue(j) < 0)
                        return -1;
                jws(j);
                if (j->i >= j->n)
                        return -1;
                if (j->p[j->i] == ',') {
                        j->i++;
                        continue;
                }
                if (j->p[j->i] != (object ? '}' : ']'))
                        return -1;
                j->i++;
                j->depth--;
                return 0;
        }
}

static int jlit(struct jp *j, const char *w)
{
        size_t n = strlen(w);
        if (j->n - j->i < n || memcmp(j->p + j->i, w, n) != 0)
                return -1;
        j->i += n;
        return 0;
}

static int jvalue(struct jp *j)
{
        jws(j);
        if (j->i >= j->n)
                return -1;
        switch (j->p[j->i]) {
        case '{': return jcontainer(j, true);
        case '[': return jcontainer(j, false);
        case '"': return jstring(j);
        case 't': return jlit(j, "true");
        case 'f': return jlit(j, "false");
        case 'n': return jlit(j, "null");
        default: return jnumber(j);
        }
}

bool ob_fuzz_json_valid(const char *p, size_t n)
{
        struct jp j = {(const unsigned char *)p, n, 0, 0, NULL};
        if (jvalue(&j) < 0)
                return false;
        jws(&j);
        return j.i == n;
}

int ob_fuzz_json_string(const char *p, size_t n, struct ob_buf *out)
{
        struct jp j = {(const unsigned char *)p, n, 0, 0, out};
        if (jstring(&j) < 0 || j.i != n)
                return -EINVAL;
        return 0;
}

/* ---- percent-encoding ----------------------------------------------------- */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int ob_fuzz_percent_decode(const char *p, size_t n, struct ob_buf *out)
{
        for (size_t i = 0; i < n; i++) {
                char c = p[i];
                if (c == '%') {
                        if (n - i < 3 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
                                return -EINVAL;
                        c = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
                        i += 2;
                }
                if (ob_buf_addc(out, c) < 0)
                        return -ENOMEM;
        }
        return 0;
}
