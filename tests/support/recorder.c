/* recorder.c: starts tests/harness/recorder.py and reads its log back. */
#define _GNU_SOURCE
#include "recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR must be defined"
#endif

#define OB_RECORDER_START_TIMEOUT_MS 10000
#define OB_RECORDER_STOP_TIMEOUT_MS 5000
#define OB_RECORDER_TLS_TIMEOUT_MS 60000

static long long ob_test_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ob_test_sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Waits for pid at most timeout_ms; returns its wait status, or -ETIMEDOUT. */
static int ob_test_wait(pid_t pid, long timeout_ms)
{
        long long end = ob_test_now_ms() + timeout_ms;
        for (;;) {
                int st;
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid)
                        return st & 0x7fffffff;
                if (w < 0 && errno != EINTR)
                        return -errno;
                if (ob_test_now_ms() >= end)
                        return -ETIMEDOUT;
                ob_test_sleep_ms(10);
        }
}

static void ob_test_reap(pid_t pid)
{
        kill(pid, SIGTERM);
        if (ob_test_wait(pid, OB_RECORDER_STOP_TIMEOUT_MS) == -ETIMEDOUT) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

/* In the child: die with the test, run with a clean signal mask, keep
 * stdout quiet and stderr in errfile. */
static void ob_test_child_setup(pid_t parent, const char *errfile)
{
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
                dup2(devnull, STDIN_FILENO);
                dup2(devnull, STDOUT_FILENO);
        }
        if (errfile) {
                int e = open(errfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (e >= 0)
                        dup2(e, STDERR_FILENO);
        }
}

static int ob_test_run_tls_sh(const char *dir)
{
        char errfile[320];
        snprintf(errfile, sizeof(errfile), "%s/tls.err", dir);
        char tlsdir[300];
        snprintf(tlsdir, sizeof(tlsdir), "%s/tls", dir);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                ob_test_child_setup(parent, errfile);
                execlp("bash", "bash", OB_SOURCE_DIR "/tests/harness/tls.sh", tlsdir, (char *)NULL);
                _exit(127);
        }
        int st = ob_test_wait(pid, OB_RECORDER_TLS_TIMEOUT_MS);
        if (st == -ETIMEDOUT) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -ETIMEDOUT;
        }
        if (st < 0)
                return st;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return -EIO;
        return 0;
}

static int ob_test_write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        size_t n = strlen(text);
        int r = fwrite(text, 1, n, f) == n ? 0 : -EIO;
        if (fclose(f) != 0 && r == 0)
                r = -EIO;
        return r;
}

static char *ob_test_read_file(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? strdup("") : NULL;
        size_t cap = 4096, len = 0;
        char *s = malloc(cap);
        while (s) {
                if (cap - len < 2048) {
                        char *n = realloc(s, cap * 2);
                        if (!n) {
                                free(s);
                                s = NULL;
                                break;
                        }
                        s = n;
                        cap *= 2;
                }
                size_t k = fread(s + len, 1, cap - len - 1, f);
                len += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        if (s)
                s[len] = '\0';
        return s;
}

static const char *ob_test_python(void)
{
        const char *p = getenv("OB_TEST_PYTHON");
        if (p && *p)
                return p;
        /* Prefer the system interpreter: wrappers such as pyenv shims cost
         * a second per start. */
        if (access("/usr/bin/python3", X_OK) == 0)
                return "/usr/bin/python3";
        return "python3";
}

static int ob_test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void ob_test_rmtree(const char *dir)
{
        if (!dir[0])
                return;
        const char *keep = getenv("OB_TEST_KEEP");
        if (keep && *keep && strcmp(keep, "0") != 0)
                return;
        nftw(dir, ob_test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int ob_test_recorder_start(struct ob_test_recorder *r, const char *rules_json, bool tls)
{
        memset(r, 0, sizeof(*r));
        strcpy(r->dir, "/tmp/ob-recorder-XXXXXX");
        if (!mkdtemp(r->dir)) {
                r->dir[0] = '\0';
                return -errno;
        }
        r->tls = tls;
        snprintf(r->log, sizeof(r->log), "%s/requests.jsonl", r->dir);
        char portfile[320], rules[320], errfile[320], cert[320], key[320];
        snprintf(portfile, sizeof(portfile), "%s/port", r->dir);
        snprintf(rules, sizeof(rules), "%s/rules.json", r->dir);
        snprintf(errfile, sizeof(errfile), "%s/recorder.err", r->dir);
        snprintf(cert, sizeof(cert), "%s/tls/server.pem", r->dir);
        snprintf(key, sizeof(key), "%s/tls/server.key", r->dir);

        /* Always a rules file: ob_test_recorder_set_rules replaces it. */
        int e;
        if ((e = ob_test_write_file(rules, rules_json ? rules_json : "[]")) < 0)
                goto fail;
        if (tls) {
                if ((e = ob_test_run_tls_sh(r->dir)) < 0)
                        goto fail;
                snprintf(r->ca, sizeof(r->ca), "%s/tls/ca.pem", r->dir);
        }

        const char *argv[16];
        size_t n = 0;
        const char *python = ob_test_python();
        argv[n++] = python;
        argv[n++] = OB_SOURCE_DIR "/tests/harness/recorder.py";
        argv[n++] = "--log";
        argv[n++] = r->log;
        argv[n++] = "--portfile";
        argv[n++] = portfile;
        argv[n++] = "--rules";
        argv[n++] = rules;
        if (tls) {
                argv[n++] = "--tls-cert";
                argv[n++] = cert;
                argv[n++] = "--tls-key";
                argv[n++] = key;
        }
        argv[n] = NULL;

        fflush(NULL);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                e = -errno;
                goto fail;
        }
        if (pid == 0) {
                ob_test_child_setup(parent, errfile);
                execvp(python, (char *const *)argv);
                _exit(127);
        }
        r->pid = pid;

        long long end = ob_test_now_ms() + OB_RECORDER_START_TIMEOUT_MS;
        for (;;) {
                FILE *f = fopen(portfile, "re");
                if (f) {
                        int port = 0;
                        int ok = fscanf(f, "%d", &port);
                        fclose(f);
                        if (ok != 1 || port <= 0 || port > 65535) {
                                e = -EIO;
                                goto fail;
                        }
                        snprintf(r->base_url, sizeof(r->base_url), "%s://127.0.0.1:%d", tls ? "https" : "http",
                                 port);
                        return 0;
                }
                int st;
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        r->pid = 0;
                        e = -ECHILD;
                        goto fail;
                }
                if (ob_test_now_ms() >= end) {
                        e = -ETIMEDOUT;
                        goto fail;
                }
                ob_test_sleep_ms(10);
        }
fail:;
        char *err = ob_test_read_file(errfile);
        if (err && *err)
                fprintf(stderr, "recorder failed to start: %s\n", err);
        free(err);
        ob_test_recorder_stop(r);
        return e;
}

int ob_test_recorder_set_rules(const struct ob_test_recorder *r, const char *rules_json)
{
        char path[320], tmp[330];
        snprintf(path, sizeof(path), "%s/rules.json", r->dir);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        int e = ob_test_write_file(tmp, rules_json ? rules_json : "[]");
        if (e == 0 && rename(tmp, path) < 0)
                e = -errno;
        return e;
}

void ob_test_recorder_stop(struct ob_test_recorder *r)
{
        if (r->pid > 0) {
                ob_test_reap(r->pid);
                r->pid = 0;
        }
        ob_test_rmtree(r->dir);
        r->dir[0] = '\0';
}

char *ob_test_recorder_log(const struct ob_test_recorder *r)
{
        return ob_test_read_file(r->log);
}

int ob_test_recorder_count(const struct ob_test_recorder *r)
{
        char *s = ob_test_recorder_log(r);
        if (!s)
                return -ENOMEM;
        int n = 0;
        for (const char *p = s; *p; p++)
                if (*p == '\n')
                        n++;
        free(s);
        return n;
}

const char *ob_test_recorder_ca(const struct ob_test_recorder *r)
{
        return r->tls ? r->ca : "";
}

/* ---- a small reader for the JSON lines recorder.py writes ---- */

struct ob_json {
        const char *p;
        const char *end;
};

static void ob_json_ws(struct ob_json *j)
{
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
                j->p++;
}

static bool ob_json_eat(struct ob_json *j, char c)
{
        ob_json_ws(j);
        if (j->p < j->end && *j->p == c) {
                j->p++;
                return true;
        }
        return false;
}

static int ob_json_hex4(struct ob_json *j, unsigned *ret)
{
        if (j->end - j->p < 4)
                return -EINVAL;
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char c = j->p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -EINVAL;
        }
        j->p += 4;
        *ret = v;
        return 0;
}

static size_t ob_utf8_put(char *out, unsigned cp)
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* Parses a string; *ret is malloc'd (NUL-terminated, may hold NULs). */
static int ob_json_string(struct ob_json *j, char **ret, size_t *ret_len)
{
        if (!ob_json_eat(j, '"'))
                return -EINVAL;
        /* UTF-8 output is never longer than the escaped input. */
        char *out = malloc((size_t)(j->end - j->p) + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        while (j->p < j->end && *j->p != '"') {
                char c = *j->p++;
                if (c != '\\') {
                        out[o++] = c;
                        continue;
                }
                if (j->p >= j->end)
                        goto bad;
                c = *j->p++;
                switch (c) {
                case '"': case '\\': case '/': out[o++] = c; break;
                case 'b': out[o++] = '\b'; break;
                case 'f': out[o++] = '\f'; break;
                case 'n': out[o++] = '\n'; break;
                case 'r': out[o++] = '\r'; break;
                case 't': out[o++] = '\t'; break;
                case 'u': {
                        unsigned cp;
                        if (ob_json_hex4(j, &cp) < 0)
                                goto bad;
                        if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                            j->p[1] == 'u') {
                                struct ob_json save = *j;
                                unsigned lo;
                                j->p += 2;
                                if (ob_json_hex4(j, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                else
                                        *j = save;
                        }
                        o += ob_utf8_put(out + o, cp);
                        break;
                }
                default:
                        goto bad;
                }
        }
        if (j->p >= j->end)
                goto bad;
        j->p++; /* closing quote */
        out[o] = '\0';
        *ret = out;
        if (ret_len)
                *ret_len = o;
        return 0;
bad:
        free(out);
        return -EINVAL;
}

static int ob_json_number(struct ob_json *j, double *ret)
{
        ob_json_ws(j);
        char buf[64];
        size_t n = 0;
        while (j->p + n < j->end && n < sizeof(buf) - 1 && strchr("+-0123456789.eE", j->p[n]))
                n++;
        if (n == 0)
                return -EINVAL;
        memcpy(buf, j->p, n);
        buf[n] = '\0';
        char *endp;
        double v = strtod(buf, &endp);
        if (*endp)
                return -EINVAL;
        j->p += n;
        *ret = v;
        return 0;
}

static int ob_json_skip(struct ob_json *j, int depth)
{
        if (depth > 32)
                return -EINVAL;
        ob_json_ws(j);
        if (j->p >= j->end)
                return -EINVAL;
        char c = *j->p;
        if (c == '"') {
                char *s;
                int e = ob_json_string(j, &s, NULL);
                if (e == 0)
                        free(s);
                return e;
        }
        if (c == '{' || c == '[') {
                char close = c == '{' ? '}' : ']';
                j->p++;
                if (ob_json_eat(j, close))
                        return 0;
                for (;;) {
                        if (c == '{') {
                                char *k;
                                int e = ob_json_string(j, &k, NULL);
                                if (e < 0)
                                        return e;
                                free(k);
                                if (!ob_json_eat(j, ':'))
                                        return -EINVAL;
                        }
                        int e = ob_json_skip(j, depth + 1);
                        if (e < 0)
                                return e;
                        if (ob_json_eat(j, close))
                                return 0;
                        if (!ob_json_eat(j, ','))
                                return -EINVAL;
                }
        }
        static const char *const words[] = { "true", "false", "null" };
        for (size_t i = 0; i < 3; i++) {
                size_t n = strlen(words[i]);
                if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
                        j->p += n;
                        return 0;
                }
        }
        double d;
        return ob_json_number(j, &d);
}

static bool ob_json_bool(struct ob_json *j, bool *ret)
{
        ob_json_ws(j);
        if (j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0) {
                j->p += 4;
                *ret = true;
                return true;
        }
        if (j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0) {
                j->p += 5;
                *ret = false;
                return true;
        }
        return false;
}

static int ob_test_headers(struct ob_json *j, struct ob_test_request *q)
{
        if (!ob_json_eat(j, '{'))
                return -EINVAL;
        if (ob_json_eat(j, '}'))
                return 0;
        for (;;) {
                char *name = NULL, *value = NULL;
                int e = ob_json_string(j, &name, NULL);
                if (e < 0)
                        return e;
                if (!ob_json_eat(j, ':') || (e = ob_json_string(j, &value, NULL)) < 0) {
                        free(name);
                        return e < 0 ? e : -EINVAL;
                }
                char **nn = realloc(q->header_names, (q->nheaders + 1) * sizeof(*nn));
                if (nn)
                        q->header_names = nn;
                char **vv = realloc(q->header_values, (q->nheaders + 1) * sizeof(*vv));
                if (vv)
                        q->header_values = vv;
                if (!nn || !vv) {
                        free(name);
                        free(value);
                        return -ENOMEM;
                }
                q->header_names[q->nheaders] = name;
                q->header_values[q->nheaders] = value;
                q->nheaders++;
                if (ob_json_eat(j, '}'))
                        return 0;
                if (!ob_json_eat(j, ','))
                        return -EINVAL;
        }
}

static int ob_b64_val(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static int ob_b64_decode_inplace(char *s, size_t *len)
{
        size_t o = 0, bits = 0;
        uint32_t acc = 0;
        for (size_t i = 0; i < *len; i++) {
                if (s[i] == '=')
                        break;
                int v = ob_b64_val(s[i]);
                if (v < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        s[o++] = (char)((acc >> bits) & 0xff);
                }
        }
        s[o] = '\0';
        *len = o;
        return 0;
}

static int ob_test_parse_line(const char *line, size_t len, struct ob_test_request *q)
{
        struct ob_json j = { .p = line, .end = line + len };
        bool b64 = false;
        if (!ob_json_eat(&j, '{'))
                return -EINVAL;
        if (ob_json_eat(&j, '}'))
                return 0;
        for (;;) {
                char *key;
                int e = ob_json_string(&j, &key, NULL);
                if (e < 0)
                        return e;
                if (!ob_json_eat(&j, ':')) {
                        free(key);
                        return -EINVAL;
                }
                double d;
                if (strcmp(key, "method") == 0 && !q->method)
                        e = ob_json_string(&j, &q->method, NULL);
                else if (strcmp(key, "path") == 0 && !q->path)
                        e = ob_json_string(&j, &q->path, NULL);
                else if (strcmp(key, "body") == 0 && !q->body)
                        e = ob_json_string(&j, &q->body, &q->body_len);
                else if (strcmp(key, "headers") == 0 && q->nheaders == 0)
                        e = ob_test_headers(&j, q);
                else if (strcmp(key, "body_b64") == 0)
                        e = ob_json_bool(&j, &b64) ? 0 : -EINVAL;
                else if (strcmp(key, "seq") == 0 || strcmp(key, "inflight") == 0 || strcmp(key, "time") == 0) {
                        e = ob_json_number(&j, &d);
                        if (e == 0 && key[0] == 's')
                                q->seq = (int)d;
                        else if (e == 0 && key[0] == 'i')
                                q->inflight = (int)d;
                        else if (e == 0)
                                q->time = d;
                } else
                        e = ob_json_skip(&j, 0);
                free(key);
                if (e < 0)
                        return e;
                if (ob_json_eat(&j, '}'))
                        break;
                if (!ob_json_eat(&j, ','))
                        return -EINVAL;
        }
        if (!q->method || !q->path || !q->body)
                return -EINVAL;
        if (b64)
                return ob_b64_decode_inplace(q->body, &q->body_len);
        return 0;
}

static void ob_test_request_clear(struct ob_test_request *q)
{
        free(q->method);
        free(q->path);
        free(q->body);
        for (size_t i = 0; i < q->nheaders; i++) {
                free(q->header_names[i]);
                free(q->header_values[i]);
        }
        free(q->header_names);
        free(q->header_values);
        memset(q, 0, sizeof(*q));
}

void ob_test_requests_free(struct ob_test_request *q, size_t n)
{
        if (!q)
                return;
        for (size_t i = 0; i < n; i++)
                ob_test_request_clear(&q[i]);
        free(q);
}

int ob_test_recorder_requests(const struct ob_test_recorder *r, struct ob_test_request **ret, size_t *ret_n)
{
        char *log = ob_test_recorder_log(r);
        if (!log)
                return -ENOMEM;
        size_t lines = 0;
        for (const char *p = log; *p; p++)
                if (*p == '\n')
                        lines++;
        struct ob_test_request *q = calloc(lines + 1, sizeof(*q));
        if (!q) {
                free(log);
                return -ENOMEM;
        }
        size_t n = 0;
        int e = 0;
        for (char *p = log; *p && n < lines;) {
                char *nl = strchr(p, '\n');
                if (!nl)
                        break; /* a line still being written */
                e = ob_test_parse_line(p, (size_t)(nl - p), &q[n]);
                if (e < 0)
                        break;
                n++;
                p = nl + 1;
        }
        free(log);
        if (e < 0) {
                ob_test_requests_free(q, n + 1);
                return e;
        }
        *ret = q;
        *ret_n = n;
        return 0;
}

const char *ob_test_request_header(const struct ob_test_request *q, const char *name)
{
        for (size_t i = 0; i < q->nheaders; i++)
                if (strcasecmp(q->header_names[i], name) == 0)
                        return q->header_values[i];
        return NULL;
}

int ob_test_recorder_max_inflight(const struct ob_test_recorder *r)
{
        struct ob_test_request *q;
        size_t n;
        int e = ob_test_recorder_requests(r, &q, &n);
        if (e < 0)
                return e;
        int max = 0;
        for (size_t i = 0; i < n; i++)
                if (q[i].inflight > max)
                        max = q[i].inflight;
        ob_test_requests_free(q, n);
        return max;
}
