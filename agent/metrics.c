/* metrics.c: counters and the health and metrics endpoint (metrics.h).
 *
 * A connection is read until the blank line that ends its headers (at most
 * OB_METRICS_REQUEST_MAX bytes), answered from a buffer written as the socket
 * takes it, then shut for writing and read until the client closes (a short
 * lingering close, so that a client still sending does not get a reset that
 * would discard the answer before it reads it). Its deadline counts from
 * the accept, whatever it is doing.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "reconcile.h"

/* After the answer: how long a client may take to close, and how much it
 * may still send meanwhile. */
#define OB_METRICS_LINGER_MS 1000
#define OB_METRICS_LINGER_MAX (64 * 1024)
/* Accepts per wake-up: a flood of connections does not starve the loop. */
#define OB_METRICS_ACCEPTS_PER_TURN 64
/* Out of descriptors: the listener rests this long rather than spin. */
#define OB_METRICS_ACCEPT_PAUSE_MS 1000

/* ---- histograms ------------------------------------------------------------ */

#define OB_HIST_MAX 16

struct hist {
        const int64_t *le; /* upper bounds in milliseconds, ascending; +Inf is implied */
        size_t nle;
        uint64_t n[OB_HIST_MAX + 1]; /* per bucket, not cumulative; n[nle]: above the last bound */
        uint64_t count;
        int64_t sum_ms;
};

static const int64_t le_action[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
static const int64_t le_change[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000};
static const int64_t le_pass[] = {10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000, 900000, 3600000};

#define HIST(bounds) ((struct hist){.le = (bounds), .nle = OB_ELEMENTSOF(bounds)})

static void hist_observe(struct hist *h, int64_t ms)
{
        if (ms < 0)
                ms = 0;
        size_t i = 0;
        while (i < h->nle && ms > h->le[i])
                i++;
        h->n[i]++;
        h->count++;
        h->sum_ms = ms > INT64_MAX - h->sum_ms ? INT64_MAX : h->sum_ms + ms;
}

/* ---- the counters ------------------------------------------------------------ */

struct series {
        char *connector; /* NULL: the "_other" series */
        char *outcome;
        uint64_t n;
        struct hist duration;
};

/* Exit codes counted apart (enum ob_exit); others under exit="other". */
#define OB_METRICS_EXITS 8

struct conn;

struct ob_metrics {
        struct ob_loop *loop;
        /* The feed. */
        char feed_kind[32]; /* "" : none */
        enum ob_metrics_feed feed_state;
        uint64_t feed_events[2]; /* [own] */
        bool heard;              /* a change heard since the last pass started */
        int64_t heard_at;        /* the first of them (ob_loop_now_ms) */
        bool pass_heard;         /* the pass running acts on changes heard from pass_heard_at */
        int64_t pass_heard_at;
        struct hist change_to_request;
        /* Passes: [whole]. */
        uint64_t passes[2][OB_METRICS_EXITS];
        struct hist pass_duration[2];
        int last_whole_exit;   /* -1: no whole pass yet */
        int64_t last_whole_at; /* seconds since the epoch, 0: none */
        size_t held;
        bool parked;
        /* Actions. */
        struct series *series;
        size_t nseries, series_cap;
        struct series other;
        /* The listener. */
        char *listen;    /* what it listens on, as configured; NULL: nowhere */
        int lfd;         /* -1: none */
        int port;        /* TCP */
        char *unix_path; /* a unix socket this created, removed at the end */
        dev_t unix_dev;
        ino_t unix_ino;
        struct ob_timer *resume; /* the listener rests (out of descriptors) */
        struct conn *conns[OB_METRICS_MAX_CONNS];
        size_t nconns;
};

/* ---- service.listen ------------------------------------------------------------ */

struct addr {
        struct sockaddr_storage sa;
        socklen_t len;
        const char *path; /* unix: into the value parsed */
};

/* Reads ":PORT" at s, the rest of the value. */
static int parse_port(const char *s, bool allow_zero, int *ret, const char **ret_why)
{
        if (*s != ':' || !s[1]) {
                *ret_why = "has no port (such as 127.0.0.1:9100)";
                return -EINVAL;
        }
        long port = 0;
        for (s++; *s; s++) {
                if (*s < '0' || *s > '9' || port > 65535) {
                        port = -1;
                        break;
                }
                port = port * 10 + (*s - '0');
        }
        if (port < (allow_zero ? 0 : 1) || port > 65535) {
                *ret_why = "has a port that is not a number from 1 to 65535";
                return -EINVAL;
        }
        *ret = (int)port;
        return 0;
}

static int parse_listen(const char *s, bool allow_zero, struct addr *ret, const char **ret_why)
{
        struct addr a = {0};
        int port;
        if (strncmp(s, "unix:", 5) == 0) {
                const char *path = s + 5;
                struct sockaddr_un *un = (struct sockaddr_un *)&a.sa;
                if (path[0] != '/') {
                        *ret_why = "is not an absolute path (unix:/run/offboard/metrics.sock)";
                        return -EINVAL;
                }
                if (strlen(path) >= sizeof(un->sun_path)) {
                        *ret_why = "is too long for a unix socket's path";
                        return -EINVAL;
                }
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, path, strlen(path) + 1);
                a.len = (socklen_t)sizeof(*un);
                a.path = path;
                *ret = a;
                return 0;
        }
        const char *colon;
        char host[INET6_ADDRSTRLEN + 2];
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || (size_t)(end - s - 1) >= sizeof(host)) {
                        *ret_why = "is not an address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path)";
                        return -EINVAL;
                }
                memcpy(host, s + 1, (size_t)(end - s - 1));
                host[end - s - 1] = '\0';
                colon = end + 1;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.sa;
                in6->sin6_family = AF_INET6;
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
                        *ret_why = "is not an address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path)";
                        return -EINVAL;
                }
                if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
                        *ret_why = "is not a loopback address (the endpoint answers only on this host)";
                        return -EINVAL;
                }
                a.len = (socklen_t)sizeof(*in6);
        } else {
                colon = strrchr(s, ':');
                size_t n = colon ? (size_t)(colon - s) : strlen(s);
                if (n >= sizeof(host)) {
                        *ret_why = "is not an address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path)";
                        return -EINVAL;
                }
                memcpy(host, s, n);
                host[n] = '\0';
                struct sockaddr_in *in = (struct sockaddr_in *)&a.sa;
                in->sin_family = AF_INET;
                if (strcmp(host, "localhost") == 0) {
                        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* never a resolver's answer */
                } else if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                        if ((ntohl(in->sin_addr.s_addr) >> 24) != 127) {
                                *ret_why = "is not a loopback address (the endpoint answers only on this host)";
                                return -EINVAL;
                        }
                } else {
                        struct in6_addr a6;
                        *ret_why = inet_pton(AF_INET6, host, &a6) == 1
                                           ? "is an IPv6 address without brackets (write [::1]:PORT)"
                                           : "is not a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT "
                                             "or unix:/path)";
                        return -EINVAL;
                }
                a.len = (socklen_t)sizeof(*in);
                if (!colon)
                        colon = s + n;
        }
        int k = parse_port(colon, allow_zero, &port, ret_why);
        if (k < 0)
                return k;
        if (a.sa.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&a.sa)->sin6_port = htons((uint16_t)port);
        else
                ((struct sockaddr_in *)&a.sa)->sin_port = htons((uint16_t)port);
        *ret = a;
        return 0;
}

int ob_metrics_check_listen(const char *listen, const char **ret_why)
{
        struct addr a;
        return parse_listen(listen, false, &a, ret_why);
}

/* ---- the client: `offboard status` asks a running service ------------------ */

int ob_metrics_fetch(const char *listen, const char *path, int timeout_ms, int *ret_status, char **ret_body)
{
        struct addr a;
        const char *why = NULL;
        if (!listen || !path || parse_listen(listen, false, &a, &why) < 0)
                return -EINVAL;
        int fd = socket(a.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        int64_t deadline = ob_loop_now_ms() + timeout_ms;
        int r = 0;
        if (connect(fd, (struct sockaddr *)&a.sa, a.len) < 0 && errno != EINPROGRESS)
                r = -errno;
        struct ob_buf req, in;
        ob_buf_init(&req);
        ob_buf_init(&in);
        ob_buf_printf(&req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
        size_t sent = 0;
        /* Send, then read until the service closes (it always does), all
         * within the deadline: a hung service is an answer too. */
        while (r == 0) {
                int64_t left = deadline - ob_loop_now_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd p = {.fd = fd, .events = sent < req.len ? POLLOUT : POLLIN};
                int k = poll(&p, 1, (int)left);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0)
                        continue;
                if (sent < req.len) {
                        ssize_t n = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);
                        if (n < 0 && errno != EAGAIN && errno != EINTR)
                                r = -errno;
                        else if (n > 0)
                                sent += (size_t)n;
                        continue;
                }
                char buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n == 0)
                        break;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        r = -errno;
                else if (n > 0 && (in.len + (size_t)n > (1u << 22) || ob_buf_add(&in, buf, (size_t)n) < 0))
                        r = -EMSGSIZE;
        }
        close(fd);
        ob_buf_free(&req);
        int status = 0;
        const char *body = in.len ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL;
        if (r == 0 && (!body || sscanf(in.data, "HTTP/1.%*[01] %d", &status) != 1))
                r = -EPROTO;
        if (r == 0) {
                body += 4;
                *ret_body = strndup(body, in.len - (size_t)(body - in.data));
                if (!*ret_body)
                        r = -ENOMEM;
                *ret_status = status;
        }
        ob_buf_free(&in);
        return r;
}

/* ---- connections --------------------------------------------------------------- */

enum conn_state { CONN_READING, CONN_WRITING, CONN_LINGER };

struct conn {
        struct ob_metrics *m;
        int fd;
        enum conn_state state;
        struct ob_timer *deadline;
        char *out; /* the answer */
        size_t nout, off;
        size_t lingered; /* bytes read and dropped after the answer */
        size_t nin;
        char in[OB_METRICS_REQUEST_MAX];
};

static void conn_close(struct conn *c)
{
        struct ob_metrics *m = c->m;
        ob_loop_io(m->loop, c->fd, 0, NULL, NULL);
        close(c->fd);
        if (c->deadline)
                ob_loop_timer_cancel(m->loop, c->deadline);
        for (size_t i = 0; i < m->nconns; i++)
                if (m->conns[i] == c) {
                        m->conns[i] = m->conns[--m->nconns];
                        break;
                }
        free(c->out);
        free(c);
}

static void on_deadline(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct conn *c = ud;
        c->deadline = NULL; /* freed by the loop after this */
        conn_close(c);
}

static void on_conn_io(struct ob_loop *l, int fd, unsigned events, void *ud);

/* The answer is out: no more writing; read until the client closes. */
static void conn_linger(struct conn *c)
{
        free(c->out);
        c->out = NULL;
        c->state = CONN_LINGER;
        shutdown(c->fd, SHUT_WR);
        if (c->deadline)
                ob_loop_timer_cancel(c->m->loop, c->deadline);
        c->deadline = NULL;
        if (ob_loop_timer(c->m->loop, OB_METRICS_LINGER_MS, on_deadline, c, &c->deadline) < 0 ||
            ob_loop_io(c->m->loop, c->fd, OB_IO_READ, on_conn_io, c) < 0)
                conn_close(c);
}

/* Writes what the socket takes now; the rest when it becomes writable. */
static void conn_flush(struct conn *c)
{
        while (c->off < c->nout) {
                ssize_t n = send(c->fd, c->out + c->off, c->nout - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                        c->off += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (ob_loop_io(c->m->loop, c->fd, OB_IO_WRITE, on_conn_io, c) < 0)
                                conn_close(c);
                        return;
                }
                conn_close(c); /* the client went away */
                return;
        }
        conn_linger(c);
}

static const char *reason_phrase(int status)
{
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Internal Server Error";
        }
}

/* Sends status with body (of type, or a short text for an error); head:
 * the headers alone. */
static void conn_answer(struct conn *c, int status, const char *type, const struct ob_buf *body, bool head)
{
        struct ob_buf b;
        ob_buf_init(&b);
        const char *text = body            ? body->data
                           : status == 400 ? "bad request\n"
                           : status == 404 ? "not found: try /metrics or /healthz\n"
                           : status == 405 ? "only GET and HEAD\n"
                           : status == 431 ? "request headers too large\n"
                                           : "internal error\n";
        size_t len = body ? body->len : strlen(text);
        ob_buf_printf(&b,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                      "Connection: close\r\n%s\r\n",
                      status, reason_phrase(status), type ? type : "text/plain; charset=utf-8", len,
                      status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (!head)
                ob_buf_add(&b, text, len);
        if (b.oom) {
                ob_buf_free(&b);
                conn_close(c);
                return;
        }
        c->out = b.data;
        c->nout = b.len;
        c->off = 0;
        c->state = CONN_WRITING;
        conn_flush(c);
}

static const char *const feed_state_names[] = {"none", "starting", "live", "down"};

/* /healthz's body; returns its status. */
static int health(const struct ob_metrics *m, struct ob_buf *b)
{
        const char *why = m->last_whole_exit == OB_EXIT_DIRECTORY ? "the last whole pass could not use the directory"
                          : m->parked ? "the last pass was parked by the safety limits (see offboard plan)"
                                      : NULL;
        ob_buf_printf(b, "{\"status\":\"%s\"", why ? "failing" : "ok");
        if (why)
                ob_buf_printf(b, ",\"reason\":\"%s\"", why);
        ob_buf_printf(b, ",\"feed\":\"%s\",\"feed_state\":\"%s\"", m->feed_kind[0] ? m->feed_kind : "none",
                      feed_state_names[m->feed_state]);
        if (m->last_whole_exit >= 0)
                ob_buf_printf(b, ",\"last_whole_pass_exit\":%d,\"last_whole_pass_time\":%lld", m->last_whole_exit,
                              (long long)m->last_whole_at);
        else
                ob_buf_adds(b, ",\"last_whole_pass_exit\":null");
        ob_buf_printf(b, ",\"parked\":%s,\"held_actions\":%zu}\n", m->parked ? "true" : "false", m->held);
        return why ? 503 : 200;
}

/* Is c a token character (RFC 9110 tchar)? */
static bool tchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The request line "METHOD SP TARGET SP HTTP/1.x" (without its line end):
 * 0 and its parts, or -EINVAL. */
static int parse_request_line(const char *s, size_t n, const char **ret_method, size_t *ret_mlen,
                              const char **ret_target, size_t *ret_tlen)
{
        size_t i = 0;
        while (i < n && tchar(s[i]))
                i++;
        size_t mlen = i;
        if (mlen == 0 || i >= n || s[i] != ' ')
                return -EINVAL;
        size_t t0 = ++i;
        while (i < n && s[i] > ' ' && s[i] < 0x7f)
                i++;
        size_t tlen = i - t0;
        if (tlen == 0 || s[t0] != '/' || i >= n || s[i] != ' ')
                return -EINVAL;
        i++;
        if (n - i != 8 || (memcmp(s + i, "HTTP/1.1", 8) != 0 && memcmp(s + i, "HTTP/1.0", 8) != 0))
                return -EINVAL;
        *ret_method = s;
        *ret_mlen = mlen;
        *ret_target = s + t0;
        *ret_tlen = tlen;
        return 0;
}

/* A header line "name: value": a token, a colon, no control character but
 * a tab. */
static bool header_ok(const char *s, size_t n)
{
        size_t i = 0;
        while (i < n && tchar(s[i]))
                i++;
        if (i == 0 || i >= n || s[i] != ':')
                return false;
        for (; i < n; i++)
                if (((unsigned char)s[i] < ' ' && s[i] != '\t') || s[i] == 0x7f)
                        return false;
        return true;
}

/* The length of line at s[0..n) without its CRLF or LF, and where the next
 * begins; -1 when no line end is there yet. */
static long line_at(const char *s, size_t n, size_t *ret_next)
{
        const char *nl = memchr(s, '\n', n);
        if (!nl)
                return -1;
        size_t len = (size_t)(nl - s);
        *ret_next = len + 1;
        if (len > 0 && s[len - 1] == '\r')
                len--;
        return (long)len;
}

int ob_metrics_parse_request(const char *buf, size_t len, size_t max, bool *ret_head, const char **ret_path,
                             size_t *ret_plen)
{
        size_t next;
        long rl = line_at(buf, len, &next);
        size_t mlen = 0;
        while (mlen < len && tchar(buf[mlen]))
                mlen++;
        if (rl < 0 && mlen < len && (mlen == 0 || buf[mlen] != ' '))
                return 400; /* not a method: TLS, or noise */
        if (rl < 0)
                return len < max ? 0 : 431;
        const char *method, *target;
        size_t tlen;
        if (parse_request_line(buf, (size_t)rl, &method, &mlen, &target, &tlen) < 0)
                return 400;
        /* The headers, to the blank line. */
        size_t at = next;
        for (;;) {
                long hl = line_at(buf + at, len - at, &next);
                if (hl < 0)
                        return len < max ? 0 : 431;
                if (hl == 0)
                        break;
                if (!header_ok(buf + at, (size_t)hl))
                        return 400;
                at += next;
        }
        bool head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
        if (!head && !(mlen == 3 && memcmp(method, "GET", 3) == 0))
                return 405;
        size_t plen = 0;
        while (plen < tlen && target[plen] != '?')
                plen++;
        *ret_head = head;
        *ret_path = target;
        *ret_plen = plen;
        return 200;
}

/* Answers when the request is complete or cannot be one. Returns whether it
 * answered. */
static bool conn_try_request(struct conn *c)
{
        bool head;
        const char *target;
        size_t plen;
        int code = ob_metrics_parse_request(c->in, c->nin, sizeof(c->in), &head, &target, &plen);
        if (code == 0)
                return false;
        if (code != 200) {
                conn_answer(c, code, NULL, NULL, false);
                return true;
        }
        struct ob_buf body;
        ob_buf_init(&body);
        if (plen == 8 && memcmp(target, "/metrics", 8) == 0) {
                if (ob_metrics_render(c->m, &body) < 0)
                        conn_answer(c, 500, NULL, NULL, head);
                else
                        conn_answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", &body, head);
        } else if (plen == 8 && memcmp(target, "/healthz", 8) == 0) {
                int status = health(c->m, &body);
                if (body.oom)
                        conn_answer(c, 500, NULL, NULL, head);
                else
                        conn_answer(c, status, "application/json", &body, head);
        } else {
                conn_answer(c, 404, NULL, NULL, head);
        }
        ob_buf_free(&body);
        return true;
}

static void conn_read(struct conn *c)
{
        bool eof = false;
        while (c->nin < sizeof(c->in)) {
                ssize_t n = recv(c->fd, c->in + c->nin, sizeof(c->in) - c->nin, MSG_DONTWAIT);
                if (n > 0) {
                        c->nin += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                if (n < 0) {
                        conn_close(c);
                        return;
                }
                eof = true;
                break;
        }
        if (!conn_try_request(c) && eof)
                conn_close(c); /* it stopped half-way */
}

/* After the answer: drop what the client still sends until it closes. */
static void conn_drain(struct conn *c)
{
        char buf[4096];
        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0 && (c->lingered += (size_t)n) <= OB_METRICS_LINGER_MAX)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                conn_close(c);
                return;
        }
}

static void on_conn_io(struct ob_loop *l, int fd, unsigned events, void *ud)
{
        (void)l;
        (void)fd;
        (void)events;
        struct conn *c = ud;
        switch (c->state) {
        case CONN_READING: conn_read(c); break;
        case CONN_WRITING: conn_flush(c); break;
        case CONN_LINGER: conn_drain(c); break;
        }
}

static void conn_new(struct ob_metrics *m, int fd)
{
        struct conn *c = malloc(sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->m = m;
        c->fd = fd;
        c->state = CONN_READING;
        c->deadline = NULL;
        c->out = NULL;
        c->nout = c->off = c->lingered = c->nin = 0;
        m->conns[m->nconns++] = c;
        if (ob_loop_timer(m->loop, OB_METRICS_DEADLINE_MS, on_deadline, c, &c->deadline) < 0 ||
            ob_loop_io(m->loop, fd, OB_IO_READ, on_conn_io, c) < 0)
                conn_close(c);
}

/* ---- the listener -------------------------------------------------------------- */

static void on_accept(struct ob_loop *l, int fd, unsigned events, void *ud);

static void on_resume(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct ob_metrics *m = ud;
        m->resume = NULL;
        if (m->lfd >= 0 && ob_loop_io(l, m->lfd, OB_IO_READ, on_accept, m) < 0)
                ob_log(OB_LOG_ERROR, "event=metrics_listener_lost note=\"the endpoint no longer answers\"");
}

static void on_accept(struct ob_loop *l, int fd, unsigned events, void *ud)
{
        (void)events;
        struct ob_metrics *m = ud;
        for (int i = 0; i < OB_METRICS_ACCEPTS_PER_TURN; i++) {
                int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* Level-triggered: watching on would spin. */
                                ob_log(OB_LOG_WARNING, "event=metrics_accept_paused error=%s",
                                       ob_log_quote(strerror(errno)));
                                ob_loop_io(l, fd, 0, NULL, NULL);
                                if (!m->resume &&
                                    ob_loop_timer(l, OB_METRICS_ACCEPT_PAUSE_MS, on_resume, m, &m->resume) < 0)
                                        m->resume = NULL;
                                return;
                        }
                        continue; /* that one went away (ECONNABORTED, EPROTO...): the next */
                }
                if (m->nconns >= OB_METRICS_MAX_CONNS) {
                        close(c); /* full: an answer would cost what the limit saves */
                        continue;
                }
                conn_new(m, c);
        }
}

struct lsock {
        int fd;
        int port;
        char *path; /* a unix socket's, created here */
        dev_t dev;
        ino_t ino;
};

/* Whether something listens on the unix socket at path. */
static int unix_in_use(const struct sockaddr_un *un, socklen_t len)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int k = connect(fd, (const struct sockaddr *)un, len) == 0 ? 1 : -errno;
        close(fd);
        if (k == -EAGAIN || k == -EINPROGRESS)
                return 1; /* its backlog is full: alive */
        if (k == -ECONNREFUSED)
                return 0;
        return k;
}

static int lsock_open(const char *spec, bool allow_zero, struct lsock *ret)
{
        struct addr a;
        const char *why;
        if (parse_listen(spec, allow_zero, &a, &why) < 0)
                return -EINVAL;
        struct lsock s = {.fd = -1};
        if (a.path) {
                struct stat st;
                if (lstat(a.path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        int k = unix_in_use((const struct sockaddr_un *)&a.sa, a.len);
                        if (k > 0)
                                return -EADDRINUSE;
                        if (k < 0 && k != -ENOENT)
                                return k;
                        if (k == 0 && unlink(a.path) < 0 && errno != ENOENT)
                                return -errno; /* stale: the last run did not remove it */
                } else if (errno != ENOENT) {
                        return -errno;
                }
                if (!(s.path = strdup(a.path)))
                        return -ENOMEM;
        }
        s.fd = socket(a.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int k = s.fd < 0 ? -errno : 0;
        int one = 1;
        if (k == 0 && a.sa.ss_family != AF_UNIX && setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                k = -errno;
        if (k == 0 && a.sa.ss_family == AF_INET6 && setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                k = -errno;
        if (k == 0) {
                /* 0600: only the service's user reads the metrics. */
                mode_t old = a.path ? umask(0177) : 0;
                if (bind(s.fd, (const struct sockaddr *)&a.sa, a.len) < 0)
                        k = -errno;
                if (a.path)
                        umask(old);
        }
        struct stat st;
        if (k == 0 && a.path) {
                if (stat(a.path, &st) < 0) {
                        k = -errno;
                } else {
                        s.dev = st.st_dev;
                        s.ino = st.st_ino;
                }
        }
        if (k == 0 && listen(s.fd, OB_METRICS_MAX_CONNS) < 0)
                k = -errno;
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        if (k == 0 && a.sa.ss_family != AF_UNIX) {
                if (getsockname(s.fd, (struct sockaddr *)&bound, &blen) < 0)
                        k = -errno;
                else
                        s.port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                                   : ((struct sockaddr_in *)&bound)->sin_port);
        }
        if (k < 0) {
                if (s.fd >= 0)
                        close(s.fd);
                if (s.path && s.ino)
                        unlink(s.path); /* bound, then failed */
                free(s.path);
                return k;
        }
        *ret = s;
        return 0;
}

/* Closes the listener (the connections it accepted go on) and removes its
 * socket file, if it is still the one this created. */
static void listener_close(struct ob_metrics *m)
{
        if (m->resume)
                ob_loop_timer_cancel(m->loop, m->resume);
        m->resume = NULL;
        if (m->lfd >= 0) {
                ob_loop_io(m->loop, m->lfd, 0, NULL, NULL);
                close(m->lfd);
        }
        struct stat st;
        if (m->unix_path && lstat(m->unix_path, &st) == 0 && st.st_dev == m->unix_dev && st.st_ino == m->unix_ino)
                unlink(m->unix_path);
        free(m->unix_path);
        free(m->listen);
        m->unix_path = NULL;
        m->listen = NULL;
        m->lfd = -1;
        m->port = 0;
}

static int listen_on(struct ob_metrics *m, const char *listen, bool allow_zero)
{
        if (!listen) {
                listener_close(m);
                return 0;
        }
        if (m->listen && strcmp(m->listen, listen) == 0)
                return 0;
        char *copy = strdup(listen);
        if (!copy)
                return -ENOMEM;
        struct lsock s;
        int k = lsock_open(listen, allow_zero, &s);
        if (k == 0 && (k = ob_loop_io(m->loop, s.fd, OB_IO_READ, on_accept, m)) < 0) {
                close(s.fd);
                if (s.path)
                        unlink(s.path);
                free(s.path);
        }
        if (k < 0) {
                free(copy);
                return k;
        }
        listener_close(m);
        m->listen = copy;
        m->lfd = s.fd;
        m->port = s.port;
        m->unix_path = s.path;
        m->unix_dev = s.dev;
        m->unix_ino = s.ino;
        return 0;
}

int ob_metrics_listen(struct ob_metrics *m, const char *listen)
{
        return listen_on(m, listen, true);
}

int ob_metrics_open(struct ob_loop *l, const char *listen, struct ob_metrics **ret)
{
        struct ob_metrics *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->loop = l;
        m->lfd = -1;
        m->last_whole_exit = -1;
        m->change_to_request = HIST(le_change);
        m->pass_duration[0] = HIST(le_pass);
        m->pass_duration[1] = HIST(le_pass);
        m->other.duration = HIST(le_action);
        int k = listen_on(m, listen, true);
        if (k < 0) {
                free(m);
                return k;
        }
        *ret = m;
        return 0;
}

void ob_metrics_free(struct ob_metrics *m)
{
        if (!m)
                return;
        listener_close(m);
        while (m->nconns > 0)
                conn_close(m->conns[0]);
        for (size_t i = 0; i < m->nseries; i++) {
                free(m->series[i].connector);
                free(m->series[i].outcome);
        }
        free(m->series);
        free(m);
}

int ob_metrics_port(const struct ob_metrics *m)
{
        return m ? m->port : 0;
}

/* ---- feeding -------------------------------------------------------------------- */

void ob_metrics_feed_state(struct ob_metrics *m, const char *kind, enum ob_metrics_feed state)
{
        if (!m)
                return;
        /* A name of our own (syncrepl, poll): kept to a safe alphabet all the same. */
        size_t n = 0;
        for (; kind && kind[n] && n < sizeof(m->feed_kind) - 1; n++) {
                char ch = kind[n];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '-' || ch == '_';
                m->feed_kind[n] = ok ? ch : '_';
        }
        m->feed_kind[n] = '\0';
        m->feed_state = (unsigned)state < OB_ELEMENTSOF(feed_state_names) ? state : OB_METRICS_FEED_NONE;
}

void ob_metrics_feed_event(struct ob_metrics *m, bool own)
{
        if (!m)
                return;
        m->feed_events[own ? 1 : 0]++;
        if (!own && !m->heard) {
                m->heard = true;
                m->heard_at = ob_loop_now_ms();
        }
}

void ob_metrics_pass_start(struct ob_metrics *m)
{
        if (!m)
                return;
        m->pass_heard = m->heard;
        m->pass_heard_at = m->heard_at;
        m->heard = false;
}

void ob_metrics_pass(struct ob_metrics *m, bool whole, int exit_code, int64_t duration_ms, size_t held, bool parked)
{
        if (!m)
                return;
        size_t e = exit_code >= 0 && exit_code < OB_METRICS_EXITS - 1 ? (size_t)exit_code : OB_METRICS_EXITS - 1;
        m->passes[whole][e]++;
        hist_observe(&m->pass_duration[whole], duration_ms);
        m->pass_heard = false; /* changes that caused no request */
        m->parked = parked || exit_code == OB_EXIT_SAFETY;
        if (whole) {
                m->last_whole_exit = exit_code;
                m->last_whole_at = ob_now();
                m->held = held;
        }
}

static struct series *series_for(struct ob_metrics *m, const char *connector, const char *outcome)
{
        for (size_t i = 0; i < m->nseries; i++)
                if (strcmp(m->series[i].connector, connector) == 0 && strcmp(m->series[i].outcome, outcome) == 0)
                        return &m->series[i];
        if (m->nseries >= OB_METRICS_MAX_SERIES)
                return &m->other;
        if (m->nseries == m->series_cap) {
                size_t cap = m->series_cap ? 2 * m->series_cap : 16;
                struct series *n = realloc(m->series, cap * sizeof(*n));
                if (!n)
                        return &m->other;
                m->series = n;
                m->series_cap = cap;
        }
        struct series s = {.connector = strdup(connector), .outcome = strdup(outcome), .duration = HIST(le_action)};
        if (!s.connector || !s.outcome) {
                free(s.connector);
                free(s.outcome);
                return &m->other;
        }
        m->series[m->nseries] = s;
        return &m->series[m->nseries++];
}

void ob_metrics_action(struct ob_metrics *m, const char *connector, const char *outcome, int64_t duration_ms)
{
        if (!m)
                return;
        struct series *s = series_for(m, connector ? connector : "", outcome ? outcome : "");
        s->n++;
        hist_observe(&s->duration, duration_ms);
}

void ob_metrics_request_left(struct ob_metrics *m)
{
        if (!m || !m->pass_heard)
                return;
        m->pass_heard = false;
        hist_observe(&m->change_to_request, ob_loop_now_ms() - m->pass_heard_at);
}

/* ---- the exposition format ------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct ob_buf *b, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\')
                        ob_buf_adds(b, "\\\\");
                else if (*s == '"')
                        ob_buf_adds(b, "\\\"");
                else if (*s == '\n')
                        ob_buf_adds(b, "\\n");
                else
                        ob_buf_addc(b, *s);
        }
}

static void family(struct ob_buf *b, const char *name, const char *type, const char *help)
{
        ob_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's samples; labels: "" or `name="value",` pairs already
 * escaped, each followed by a comma. */
static void hist_render(struct ob_buf *b, const char *name, const char *labels, const struct hist *h)
{
        uint64_t cum = 0;
        for (size_t i = 0; i < h->nle; i++) {
                cum += h->n[i];
                ob_buf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)h->le[i] / 1000.0,
                              (unsigned long long)cum);
        }
        size_t ll = strlen(labels);
        ob_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
        /* labels without its trailing comma */
        ob_buf_printf(b, "%s_sum%s%.*s%s %lld.%03lld\n", name, ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels,
                      ll ? "}" : "", (long long)(h->sum_ms / 1000), (long long)(h->sum_ms % 1000));
        ob_buf_printf(b, "%s_count%s%.*s%s %llu\n", name, ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels, ll ? "}" : "",
                      (unsigned long long)h->count);
}

static void series_labels(struct ob_buf *b, const struct series *s)
{
        ob_buf_adds(b, "connector=\"");
        label_value(b, s->connector ? s->connector : "_other");
        ob_buf_adds(b, "\",outcome=\"");
        label_value(b, s->outcome ? s->outcome : "_other");
        ob_buf_adds(b, "\",");
}

int ob_metrics_render(const struct ob_metrics *m, struct ob_buf *b)
{
        static const char *const kinds[] = {"changes", "whole"};
        family(b, "offboard_up", "gauge", "1 while the service's loop runs (it serves this page).");
        ob_buf_adds(b, "offboard_up 1\n");

        family(b, "offboard_feed_state", "gauge", "The change feed's state: 1 for the state it is in.");
        for (size_t i = 0; i < OB_ELEMENTSOF(feed_state_names); i++)
                ob_buf_printf(b, "offboard_feed_state{feed=\"%s\",state=\"%s\"} %d\n",
                              m->feed_kind[0] ? m->feed_kind : "none", feed_state_names[i], (size_t)m->feed_state == i);
        family(b, "offboard_feed_events_total", "counter",
               "Changes heard through the feed; own=\"true\": the service's own write-backs.");
        ob_buf_printf(b, "offboard_feed_events_total{own=\"false\"} %llu\n", (unsigned long long)m->feed_events[0]);
        ob_buf_printf(b, "offboard_feed_events_total{own=\"true\"} %llu\n", (unsigned long long)m->feed_events[1]);
        /* The feed's lag: how long the oldest change heard has waited for
         * the service to act (its pass's first request, or the pass's end
         * when it caused none); 0 when none waits. */
        int64_t since = m->pass_heard ? m->pass_heard_at : m->heard ? m->heard_at : -1;
        if (m->pass_heard && m->heard && m->heard_at < since)
                since = m->heard_at;
        int64_t lag = since < 0 ? 0 : ob_loop_now_ms() - since;
        family(b, "offboard_feed_lag_seconds", "gauge",
               "Age of the oldest change heard through the feed that no request or finished pass has answered yet.");
        ob_buf_printf(b, "offboard_feed_lag_seconds %lld.%03lld\n", (long long)(lag / 1000), (long long)(lag % 1000));
        family(b, "offboard_change_to_request_seconds", "histogram",
               "From a change heard to the first request of the pass that acted on it.");
        hist_render(b, "offboard_change_to_request_seconds", "", &m->change_to_request);

        family(b, "offboard_passes_total", "counter", "Passes by kind (whole: every account) and exit code.");
        for (size_t w = 0; w < 2; w++)
                for (size_t e = 0; e < OB_METRICS_EXITS; e++) {
                        if (!m->passes[w][e])
                                continue;
                        char code[8];
                        snprintf(code, sizeof(code), "%zu", e);
                        ob_buf_printf(b, "offboard_passes_total{kind=\"%s\",exit=\"%s\"} %llu\n", kinds[w],
                                      e == OB_METRICS_EXITS - 1 ? "other" : code, (unsigned long long)m->passes[w][e]);
                }
        family(b, "offboard_pass_duration_seconds", "histogram", "How long passes took.");
        for (size_t w = 0; w < 2; w++) {
                char labels[32];
                snprintf(labels, sizeof(labels), "kind=\"%s\",", kinds[w]);
                hist_render(b, "offboard_pass_duration_seconds", labels, &m->pass_duration[w]);
        }
        family(b, "offboard_last_whole_pass_exit_code", "gauge", "The last whole pass's exit code (-1: none yet).");
        ob_buf_printf(b, "offboard_last_whole_pass_exit_code %d\n", m->last_whole_exit);
        family(b, "offboard_last_whole_pass_timestamp_seconds", "gauge",
               "When the last whole pass ended, in seconds since the epoch (0: none yet).");
        ob_buf_printf(b, "offboard_last_whole_pass_timestamp_seconds %lld\n", (long long)m->last_whole_at);
        family(b, "offboard_held_actions", "gauge", "Actions the last whole pass left held.");
        ob_buf_printf(b, "offboard_held_actions %zu\n", m->held);
        family(b, "offboard_parked", "gauge", "1 when the last pass was parked by the safety limits.");
        ob_buf_printf(b, "offboard_parked %d\n", m->parked ? 1 : 0);

        family(b, "offboard_actions_total", "counter", "Attempts of actions, by connector and outcome.");
        struct ob_buf lb;
        ob_buf_init(&lb);
        for (size_t i = 0; i <= m->nseries; i++) {
                const struct series *s = i < m->nseries ? &m->series[i] : &m->other;
                if (i == m->nseries && !s->n)
                        break;
                ob_buf_reset(&lb);
                series_labels(&lb, s);
                if (lb.oom)
                        break;
                ob_buf_printf(b, "offboard_actions_total{%.*s} %llu\n", (int)lb.len - 1, lb.data,
                              (unsigned long long)s->n);
        }
        family(b, "offboard_action_duration_seconds", "histogram",
               "How long attempts of actions took, by connector and outcome.");
        for (size_t i = 0; i <= m->nseries && !lb.oom; i++) {
                const struct series *s = i < m->nseries ? &m->series[i] : &m->other;
                if (i == m->nseries && !s->n)
                        break;
                ob_buf_reset(&lb);
                series_labels(&lb, s);
                if (!lb.oom)
                        hist_render(b, "offboard_action_duration_seconds", lb.data, &s->duration);
        }
        bool oom = lb.oom;
        ob_buf_free(&lb);
        return oom || b->oom ? -ENOMEM : 0;
}
