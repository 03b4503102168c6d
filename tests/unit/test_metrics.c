/* test_metrics.c: the counters and the health and metrics endpoint, over
 * real sockets.
 *
 * The test's thread runs the loop the endpoint lives on; a client thread
 * talks to it with plain blocking sockets, keeps what it saw, and wakes the
 * loop through a pipe when it is done. Only the test's thread asserts, after
 * the client thread ended. A client's reads and writes give up after 30 s (a
 * guard against a hang, never a measure). /metrics is checked by a strict
 * parser of the text exposition format 0.0.4.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"
#include "util.h"

static struct ob_loop *loop;
static struct ob_metrics *m;
static char tmpdir[64];
static char sock_path[100];

static void setup(void)
{
        cr_assert_eq(ob_loop_new(&loop), 0);
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/ob-test-metrics-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
        snprintf(sock_path, sizeof(sock_path), "%s/metrics.sock", tmpdir);
        m = NULL;
}

static void teardown(void)
{
        ob_metrics_free(m);
        m = NULL;
        ob_loop_free(loop);
        loop = NULL;
        unlink(sock_path);
        rmdir(tmpdir);
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a client on a thread of its own ---------------------------------------- */

/* Where the client connects: a TCP port on 127.0.0.1, else sock_path. */
static int target_port;

static int client_connect(void)
{
        int fd;
        if (target_port) {
                struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target_port)};
                in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
                        close(fd);
                        return -1;
                }
        } else {
                struct sockaddr_un un = {.sun_family = AF_UNIX};
                snprintf(un.sun_path, sizeof(un.sun_path), "%s", sock_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
                        close(fd);
                        return -1;
                }
        }
        if (fd < 0)
                return -1;
        struct timeval tv = {.tv_sec = 30};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        return fd;
}

static bool send_all(int fd, const char *s, size_t n)
{
        while (n > 0) {
                ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return false;
                s += k;
                n -= (size_t)k;
        }
        return true;
}

/* What a client read on one connection. */
struct reply {
        char *data; /* NUL-terminated */
        size_t len;
        bool closed; /* read until the server closed (EOF, or a reset) */
        int status;  /* from the status line, 0: none */
        const char *body;
        size_t body_len;
};

static void reply_free(struct reply *r)
{
        free(r->data);
        *r = (struct reply){0};
}

/* Reads until the server closes (or the guard gives up). */
static void read_reply(int fd, struct reply *r)
{
        size_t cap = 4096;
        r->data = malloc(cap);
        r->len = 0;
        for (;;) {
                if (r->len + 1 >= cap)
                        r->data = realloc(r->data, cap *= 2);
                ssize_t k = recv(fd, r->data + r->len, cap - r->len - 1, 0);
                if (k > 0) {
                        r->len += (size_t)k;
                        continue;
                }
                r->closed = k == 0 || errno == ECONNRESET;
                break;
        }
        r->data[r->len] = '\0';
        if (sscanf(r->data, "HTTP/1.1 %d ", &r->status) != 1)
                r->status = 0;
        char *end = strstr(r->data, "\r\n\r\n");
        if (end) {
                r->body = end + 4;
                r->body_len = r->len - (size_t)(r->body - r->data);
        }
}

/* One request on a connection of its own; *r is what came back. */
static void exchange(const char *req, size_t n, struct reply *r)
{
        *r = (struct reply){0};
        int fd = client_connect();
        if (fd < 0)
                return;
        if (send_all(fd, req, n))
                read_reply(fd, r);
        close(fd);
}

static void get(const char *path, struct reply *r)
{
        char req[256];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n", path);
        exchange(req, (size_t)n, r);
}

/* A header's value in a reply (the first line that starts with name), or "". */
static void header(const struct reply *r, const char *name, char *out, size_t size)
{
        out[0] = '\0';
        if (!r->data)
                return;
        size_t nl = strlen(name);
        for (const char *s = strstr(r->data, "\r\n"); s && s < r->body; s = strstr(s + 2, "\r\n")) {
                if (strncasecmp(s + 2, name, nl) == 0 && s[2 + nl] == ':') {
                        const char *v = s + 3 + nl;
                        while (*v == ' ')
                                v++;
                        size_t len = strcspn(v, "\r");
                        snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), v);
                        return;
                }
        }
}

struct client {
        void (*fn)(void *arg);
        void *arg;
        int wake; /* the pipe's write end */
};

static void *client_main(void *p)
{
        struct client *c = p;
        c->fn(c->arg);
        char x = 1;
        if (write(c->wake, &x, 1) != 1)
                abort();
        return NULL;
}

static void on_wake(struct ob_loop *l, int fd, unsigned events, void *ud)
{
        (void)fd;
        (void)events;
        (void)ud;
        ob_loop_stop(l);
}

/* Runs fn(arg) on a client thread while this thread runs the loop. */
static void with_client(void (*fn)(void *arg), void *arg)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_wake, NULL), 0);
        struct client c = {.fn = fn, .arg = arg, .wake = p[1]};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, client_main, &c), 0);
        int k = ob_loop_run(loop);
        pthread_join(t, NULL);
        ob_loop_io(loop, p[0], 0, NULL, NULL);
        close(p[0]);
        close(p[1]);
        cr_assert_eq(k, 0);
}

static void open_tcp(void)
{
        cr_assert_eq(ob_metrics_open(loop, "127.0.0.1:0", &m), 0);
        target_port = ob_metrics_port(m);
        cr_assert_gt(target_port, 0);
}

static void client_get(void *arg)
{
        void **a = arg;
        get(a[0], a[1]);
}

/* GET path over the loop. */
static void fetch(const char *path, struct reply *r)
{
        void *a[] = {(void *)path, r};
        with_client(client_get, a);
}

struct raw {
        const char *req;
        size_t n;
        struct reply r;
};

static void client_raw(void *arg)
{
        struct raw *x = arg;
        exchange(x->req, x->n, &x->r);
}

/* ---- a strict reader of the text exposition format 0.0.4 --------------------- */

static bool metric_name(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                          (i > 0 && c >= '0' && c <= '9');
                if (!ok)
                        return false;
        }
        return true;
}

#define MAX_FAMILIES 64

struct family {
        char name[128];
        char type[16];
        bool help, typed, sampled;
};

struct expo {
        struct family f[MAX_FAMILIES];
        size_t nf;
        /* The histogram series being read: its family, its labels without le. */
        char hkey[1200];
        double last_bucket;
        bool have_inf;
        double inf;
        size_t samples;
};

static struct family *family_find(struct expo *e, const char *name, size_t n, bool add)
{
        for (size_t i = 0; i < e->nf; i++)
                if (strlen(e->f[i].name) == n && memcmp(e->f[i].name, name, n) == 0)
                        return &e->f[i];
        if (!add || e->nf == MAX_FAMILIES || n >= sizeof(e->f[0].name))
                return NULL;
        struct family *f = &e->f[e->nf++];
        memcpy(f->name, name, n);
        f->name[n] = '\0';
        return f;
}

/* Reads {name="value",...} at *ps; the labels other than le go to key (as
 * written), le's value to le. Returns an error or NULL. */
static const char *read_labels(const char **ps, char *key, size_t keysize, char *le, size_t lesize)
{
        const char *s = *ps;
        key[0] = le[0] = '\0';
        if (*s != '{')
                return NULL;
        s++;
        bool first = true;
        while (*s != '}') {
                if (!first) {
                        if (*s != ',')
                                return "labels not separated by a comma";
                        s++;
                }
                first = false;
                const char *n0 = s;
                while (*s && *s != '=')
                        s++;
                if (*s != '=' || !metric_name(n0, (size_t)(s - n0)) || memchr(n0, ':', (size_t)(s - n0)))
                        return "bad label name";
                size_t nlen = (size_t)(s - n0);
                if (s[1] != '"')
                        return "label value not quoted";
                s += 2;
                char val[512];
                size_t vl = 0;
                while (*s != '"') {
                        if (!*s || *s == '\n')
                                return "label value not closed";
                        char c = *s++;
                        if (c == '\\') {
                                c = *s++;
                                if (c == 'n')
                                        c = '\n';
                                else if (c != '\\' && c != '"')
                                        return "bad escape in a label value";
                        }
                        if (vl + 1 >= sizeof(val))
                                return "label value too long";
                        val[vl++] = c;
                }
                val[vl] = '\0';
                s++;
                if (nlen == 2 && memcmp(n0, "le", 2) == 0) {
                        if (vl >= lesize)
                                return "le too long";
                        memcpy(le, val, vl + 1);
                } else {
                        size_t kl = strlen(key);
                        snprintf(key + kl, keysize - kl, "%.*s=%s;", (int)nlen, n0, val);
                }
        }
        *ps = s + 1;
        return NULL;
}

static bool read_value(const char *s, double *ret)
{
        if (strcmp(s, "+Inf") == 0) {
                *ret = 1.0 / 0.0;
                return true;
        }
        if (!*s || strchr(s, ' ') || !strcmp(s, "inf") || !strcmp(s, "nan"))
                return false;
        char *end;
        errno = 0;
        *ret = strtod(s, &end);
        return *end == '\0' && errno == 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
        size_t k = strlen(suffix);
        return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Checks text; returns NULL or what is wrong (with the line in buf). */
static const char *check_exposition(const char *text, size_t len, char *buf, size_t size)
{
        static struct expo e;
        memset(&e, 0, sizeof(e));
        if (len == 0 || text[len - 1] != '\n')
                return "does not end with a newline";
        const char *line = text;
        while (line < text + len) {
                const char *nl = memchr(line, '\n', (size_t)(text + len - line));
                char l[2048];
                snprintf(l, sizeof(l), "%.*s", (int)(nl - line), line);
                line = nl + 1;
                snprintf(buf, size, "%s", l);
                if (!l[0])
                        return "an empty line";
                if (strncmp(l, "# HELP ", 7) == 0 || strncmp(l, "# TYPE ", 7) == 0) {
                        const char *n0 = l + 7;
                        size_t n = strcspn(n0, " ");
                        if (!metric_name(n0, n) || n0[n] != ' ' || !n0[n + 1])
                                return "a HELP or TYPE line without a name and text";
                        struct family *f = family_find(&e, n0, n, true);
                        if (!f)
                                return "too many families";
                        if (f->sampled)
                                return "HELP or TYPE after the family's samples";
                        if (l[2] == 'H') {
                                if (f->help)
                                        return "a second HELP";
                                f->help = true;
                        } else {
                                const char *t = n0 + n + 1;
                                if (f->typed)
                                        return "a second TYPE";
                                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram"))
                                        return "an unknown TYPE";
                                if (!strcmp(t, "counter") && !ends_with(n0, n, "_total"))
                                        return "a counter whose name does not end in _total";
                                snprintf(f->type, sizeof(f->type), "%s", t);
                                f->typed = true;
                        }
                        continue;
                }
                if (l[0] == '#')
                        return "a comment that is neither HELP nor TYPE";
                /* A sample: name[{labels}] value */
                const char *s = l;
                size_t n = 0;
                while (s[n] && s[n] != '{' && s[n] != ' ')
                        n++;
                if (!metric_name(s, n))
                        return "a sample with a bad name";
                char key[1024], le[64];
                const char *p = s + n;
                const char *err = read_labels(&p, key, sizeof(key), le, sizeof(le));
                if (err)
                        return err;
                if (*p != ' ')
                        return "no space before the value";
                double v;
                if (!read_value(p + 1, &v))
                        return "a value that is not a number";
                e.samples++;
                /* Its family. */
                struct family *f = family_find(&e, s, n, false);
                const char *suffix = NULL;
                if (!f || strcmp(f->type, "histogram") == 0) {
                        static const char *const sfx[] = {"_bucket", "_sum", "_count"};
                        for (size_t i = 0; !f && i < 3; i++)
                                if (ends_with(s, n, sfx[i]) && (f = family_find(&e, s, n - strlen(sfx[i]), false)) &&
                                    strcmp(f->type, "histogram") == 0)
                                        suffix = sfx[i];
                                else
                                        f = NULL;
                        if (!f || !suffix)
                                return "a sample outside any typed family (or a histogram without a suffix)";
                }
                if (!f->typed || !f->help)
                        return "a sample before its HELP and TYPE";
                f->sampled = true;
                if (le[0] && (!suffix || strcmp(suffix, "_bucket")))
                        return "le outside a histogram's buckets";
                if (!suffix)
                        continue;
                char hk[1200];
                snprintf(hk, sizeof(hk), "%s|%s", f->name, key);
                if (!strcmp(suffix, "_bucket")) {
                        if (!le[0])
                                return "a bucket without le";
                        double b;
                        if (!read_value(le, &b))
                                return "an le that is not a number";
                        if (strcmp(hk, e.hkey) != 0) {
                                if (e.hkey[0] && !e.have_inf)
                                        return "a histogram series without a +Inf bucket";
                                snprintf(e.hkey, sizeof(e.hkey), "%s", hk);
                                e.last_bucket = 0;
                                e.have_inf = false;
                        } else if (e.have_inf) {
                                return "a bucket after +Inf";
                        }
                        if (v < e.last_bucket)
                                return "buckets that are not cumulative";
                        e.last_bucket = v;
                        if (!strcmp(le, "+Inf")) {
                                e.have_inf = true;
                                e.inf = v;
                        }
                } else {
                        if (strcmp(hk, e.hkey) != 0 || !e.have_inf)
                                return "_sum or _count before the series' buckets";
                        if (!strcmp(suffix, "_count") && v != e.inf)
                                return "_count differs from the +Inf bucket";
                        if (v < 0)
                                return "a negative _sum or _count";
                }
        }
        buf[0] = '\0';
        for (size_t i = 0; i < e.nf; i++)
                if (!e.f[i].typed || !e.f[i].help) {
                        snprintf(buf, size, "%s", e.f[i].name);
                        return "a family without HELP or TYPE";
                }
        return e.samples ? NULL : "no sample";
}

static void assert_exposition(const char *text, size_t len)
{
        char line[2048];
        const char *err = check_exposition(text, len, line, sizeof(line));
        cr_assert_null(err, "not the exposition format: %s: %s", err, line);
}

static char *render(void)
{
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_metrics_render(m, &b), 0);
        char *s;
        cr_assert_eq(ob_buf_steal(&b, &s), 0);
        return s;
}

/* ---- tests -------------------------------------------------------------------- */

Test(metrics, the_strict_reader_refuses_what_is_not_the_exposition_format)
{
        static const char *const bad[] = {
                "offboard_x 1\n",                                      /* no TYPE */
                "# HELP a_total x\n# TYPE a_total counter\na_total 1", /* no newline at the end */
                "# HELP a x\n# TYPE a counter\na 1\n",                 /* a counter without _total */
                "# HELP a x\n# TYPE a gauge\na{l=\"x\\q\"} 1\n",       /* a bad escape */
                "# HELP a x\n# TYPE a gauge\na{l=\"x\"} one\n",
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 2\n",
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n",
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(bad); i++) {
                char line[2048];
                cr_expect_not_null(check_exposition(bad[i], strlen(bad[i]), line, sizeof(line)), "case %zu", i);
        }
        const char *good =
                "# HELP h x\n# TYPE h histogram\nh_bucket{k=\"a\",le=\"1\"} 1\nh_bucket{k=\"a\",le=\"+Inf\"} "
                "2\nh_sum{k=\"a\"} 0.5\nh_count{k=\"a\"} 2\n";
        char line[2048];
        cr_assert_null(check_exposition(good, strlen(good), line, sizeof(line)), "%s", line);
}

Test(metrics, the_metrics_page_is_the_exposition_format_with_every_family)
{
        open_tcp();
        ob_metrics_feed_state(m, "syncrepl", OB_METRICS_FEED_LIVE);
        ob_metrics_feed_event(m, false);
        ob_metrics_feed_event(m, true);
        ob_metrics_pass_start(m);
        ob_metrics_action(m, "http", "done", 120);
        ob_metrics_action(m, "http", "failed", 30000);
        ob_metrics_action(m, "scim", "done", 7);
        ob_metrics_request_left(m);
        ob_metrics_pass(m, true, 0, 1500, 2, false);
        ob_metrics_pass(m, false, 1, 20, 0, false);
        struct reply r;
        fetch("/metrics", &r);
        cr_assert_eq(r.status, 200, "%s", r.data ? r.data : "(nothing)");
        cr_assert(r.closed);
        char type[128], len[32], conn[32];
        header(&r, "Content-Type", type, sizeof(type));
        header(&r, "Content-Length", len, sizeof(len));
        header(&r, "Connection", conn, sizeof(conn));
        cr_expect_str_eq(type, "text/plain; version=0.0.4; charset=utf-8");
        cr_expect_str_eq(conn, "close");
        cr_assert_eq(strtoul(len, NULL, 10), r.body_len);
        assert_exposition(r.body, r.body_len);
        static const char *const want[] = {
                "\noffboard_up 1\n",
                "\noffboard_feed_state{feed=\"syncrepl\",state=\"live\"} 1\n",
                "\noffboard_feed_state{feed=\"syncrepl\",state=\"down\"} 0\n",
                "\noffboard_feed_events_total{own=\"false\"} 1\n",
                "\noffboard_feed_events_total{own=\"true\"} 1\n",
                "\noffboard_passes_total{kind=\"whole\",exit=\"0\"} 1\n",
                "\noffboard_passes_total{kind=\"changes\",exit=\"1\"} 1\n",
                "\noffboard_pass_duration_seconds_bucket{kind=\"whole\",le=\"1\"} 0\n",
                "\noffboard_pass_duration_seconds_bucket{kind=\"whole\",le=\"5\"} 1\n",
                "\noffboard_pass_duration_seconds_sum{kind=\"whole\"} 1.500\n",
                "\noffboard_actions_total{connector=\"http\",outcome=\"done\"} 1\n",
                "\noffboard_actions_total{connector=\"http\",outcome=\"failed\"} 1\n",
                "\noffboard_actions_total{connector=\"scim\",outcome=\"done\"} 1\n",
                "\noffboard_action_duration_seconds_bucket{connector=\"http\",outcome=\"done\",le=\"0.1\"} 0\n",
                "\noffboard_action_duration_seconds_bucket{connector=\"http\",outcome=\"done\",le=\"0.25\"} 1\n",
                "\noffboard_action_duration_seconds_count{connector=\"http\",outcome=\"failed\"} 1\n",
                "\noffboard_change_to_request_seconds_count 1\n",
                "\noffboard_held_actions 2\n",
                "\noffboard_parked 0\n",
                "\noffboard_last_whole_pass_exit_code 0\n",
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(want); i++)
                cr_expect_not_null(strstr(r.body, want[i]), "missing %s", want[i] + 1);
        cr_expect_null(strstr(r.body, "offboard_last_whole_pass_timestamp_seconds 0\n"));
        reply_free(&r);
}

Test(metrics, the_action_counters_move_after_an_action)
{
        open_tcp();
        ob_metrics_action(m, "mail", "done", 5);
        struct reply r;
        fetch("/metrics", &r);
        cr_assert_not_null(strstr(r.body, "\noffboard_actions_total{connector=\"mail\",outcome=\"done\"} 1\n"), "%s",
                           r.body);
        reply_free(&r);
        ob_metrics_action(m, "mail", "done", 5);
        ob_metrics_action(m, "mail", "done", 5);
        fetch("/metrics", &r);
        cr_assert_not_null(strstr(r.body, "\noffboard_actions_total{connector=\"mail\",outcome=\"done\"} 3\n"), "%s",
                           r.body);
        cr_assert_not_null(strstr(r.body, "\noffboard_action_duration_seconds_sum{connector=\"mail\",outcome=\"done\"} "
                                          "0.015\n"));
        assert_exposition(r.body, r.body_len);
        reply_free(&r);
}

Test(metrics, label_values_from_the_configuration_are_escaped)
{
        open_tcp();
        ob_metrics_action(m, "a\"b\\c\nd", "done", 1);
        struct reply r;
        fetch("/metrics", &r);
        cr_assert_eq(r.status, 200);
        cr_assert_not_null(
                strstr(r.body, "\noffboard_actions_total{connector=\"a\\\"b\\\\c\\nd\",outcome=\"done\"} 1\n"), "%s",
                r.body);
        assert_exposition(r.body, r.body_len);
        reply_free(&r);
}

Test(metrics, past_the_series_limit_actions_are_counted_together)
{
        cr_assert_eq(ob_metrics_open(loop, NULL, &m), 0);
        char name[32];
        for (int i = 0; i < OB_METRICS_MAX_SERIES + 10; i++) {
                snprintf(name, sizeof(name), "c%d", i);
                ob_metrics_action(m, name, "done", 1);
        }
        char *s = render();
        snprintf(name, sizeof(name), "c%d", OB_METRICS_MAX_SERIES - 1);
        cr_expect_not_null(strstr(s, "{connector=\"c1023\",outcome=\"done\"} 1\n"));
        cr_expect_null(strstr(s, "connector=\"c1024\""));
        cr_expect_not_null(strstr(s, "\noffboard_actions_total{connector=\"_other\",outcome=\"_other\"} 10\n"));
        assert_exposition(s, strlen(s));
        free(s);
}

Test(metrics, healthz_is_200_until_a_whole_pass_cannot_use_the_directory)
{
        open_tcp();
        ob_metrics_feed_state(m, "syncrepl", OB_METRICS_FEED_STARTING);
        struct reply r;
        fetch("/healthz", &r);
        cr_assert_eq(r.status, 200, "%s", r.data ? r.data : "(nothing)");
        char type[64];
        header(&r, "Content-Type", type, sizeof(type));
        cr_expect_str_eq(type, "application/json");
        cr_expect_not_null(strstr(r.body, "\"status\":\"ok\""), "%s", r.body);
        cr_expect_not_null(strstr(r.body, "\"feed_state\":\"starting\""), "%s", r.body);
        cr_expect_not_null(strstr(r.body, "\"last_whole_pass_exit\":null"), "%s", r.body);
        reply_free(&r);

        ob_metrics_pass(m, true, 3, 10, 0, false);
        fetch("/healthz", &r);
        cr_assert_eq(r.status, 503, "%s", r.data ? r.data : "(nothing)");
        cr_expect_not_null(strstr(r.body, "\"status\":\"failing\""), "%s", r.body);
        cr_expect_not_null(strstr(r.body, "directory"), "%s", r.body);
        cr_expect_not_null(strstr(r.body, "\"last_whole_pass_exit\":3"), "%s", r.body);
        reply_free(&r);

        /* A pass over changes does not say the directory is back. */
        ob_metrics_pass(m, false, 0, 10, 0, false);
        fetch("/healthz", &r);
        cr_expect_eq(r.status, 503);
        reply_free(&r);

        ob_metrics_pass(m, true, 1, 10, 4, false);
        fetch("/healthz", &r);
        cr_expect_eq(r.status, 200, "%s", r.data ? r.data : "(nothing)");
        cr_expect_not_null(strstr(r.body, "\"held_actions\":4"), "%s", r.body);
        reply_free(&r);

        ob_metrics_pass(m, false, 4, 10, 0, true);
        fetch("/healthz", &r);
        cr_expect_eq(r.status, 503);
        cr_expect_not_null(strstr(r.body, "parked"), "%s", r.body);
        reply_free(&r);
}

Test(metrics, wrong_paths_methods_and_requests_get_404_405_400)
{
        open_tcp();
        static const struct {
                const char *req;
                int status;
                size_t n; /* 0: strlen */
        } cases[] = {
                {"GET /nope HTTP/1.1\r\n\r\n", 404},
                {"GET /metrics/x HTTP/1.1\r\n\r\n", 404},
                {"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n", 200},
                {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
                {"DELETE /healthz HTTP/1.1\r\n\r\n", 405},
                {"garbage\r\n\r\n", 400},
                {"GET /metrics\r\n\r\n", 400},
                {"GET /metrics HTTP/2.0\r\n\r\n", 400},
                {"GET metrics HTTP/1.1\r\n\r\n", 400},
                {"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400},
                {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, 11}, /* a TLS hello, unended */
                {"GET /metrics HTTP/1.1\r\nHost: a\0b\r\n\r\n", 400, 36},
                {"GET /metrics HTTP/1.1\n\n", 200}, /* bare LFs */
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(cases); i++) {
                struct raw x = {.req = cases[i].req, .n = cases[i].n ? cases[i].n : strlen(cases[i].req)};
                with_client(client_raw, &x);
                cr_expect_eq(x.r.status, cases[i].status, "case %zu: %s", i, x.r.data ? x.r.data : "(nothing)");
                cr_expect(x.r.closed, "case %zu: the connection stayed open", i);
                if (cases[i].status == 405) {
                        char allow[64];
                        header(&x.r, "Allow", allow, sizeof(allow));
                        cr_expect_str_eq(allow, "GET, HEAD");
                }
                reply_free(&x.r);
        }
}

Test(metrics, head_gets_the_headers_without_the_body)
{
        open_tcp();
        const char *req = "HEAD /metrics HTTP/1.1\r\n\r\n";
        struct raw x = {.req = req, .n = strlen(req)};
        with_client(client_raw, &x);
        cr_assert_eq(x.r.status, 200, "%s", x.r.data ? x.r.data : "(nothing)");
        char len[32];
        header(&x.r, "Content-Length", len, sizeof(len));
        cr_expect_gt(strtoul(len, NULL, 10), 100);
        cr_expect_eq(x.r.body_len, 0);
        reply_free(&x.r);
}

Test(metrics, an_oversized_request_gets_431_and_is_closed)
{
        open_tcp();
        size_t n = OB_METRICS_REQUEST_MAX + 4096;
        char *req = malloc(n);
        memcpy(req, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
        memset(req + 30, 'a', n - 30);
        struct raw x = {.req = req, .n = n};
        with_client(client_raw, &x);
        cr_expect_eq(x.r.status, 431, "%s", x.r.data ? x.r.data : "(nothing)");
        cr_expect(x.r.closed);
        reply_free(&x.r);
        /* No line end at all. */
        memset(req, 'G', n);
        x = (struct raw){.req = req, .n = n};
        with_client(client_raw, &x);
        cr_expect_eq(x.r.status, 431, "%s", x.r.data ? x.r.data : "(nothing)");
        cr_expect(x.r.closed);
        reply_free(&x.r);
        free(req);
}

struct two {
        struct reply silent_first; /* what the silent client saw after the other was served */
        struct reply served;
        bool silent_open;
};

static void client_silent_and_served(void *arg)
{
        struct two *t = arg;
        int silent = client_connect();
        send_all(silent, "GET /met", 8); /* and nothing more */
        get("/healthz", &t->served);
        /* The silent one is still open: a peek finds nothing and no EOF. */
        char c;
        ssize_t k = recv(silent, &c, 1, MSG_DONTWAIT | MSG_PEEK);
        t->silent_open = k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        close(silent);
}

Test(metrics, a_client_that_sends_nothing_does_not_stop_another_from_being_served)
{
        open_tcp();
        struct two t = {0};
        with_client(client_silent_and_served, &t);
        cr_expect_eq(t.served.status, 200, "%s", t.served.data ? t.served.data : "(nothing)");
        cr_expect(t.silent_open);
        reply_free(&t.served);
}

static void client_idle(void *arg)
{
        struct reply *r = arg;
        int fd = client_connect();
        send_all(fd, "GET /metrics HTTP/1.1\r\n", 23); /* never the blank line */
        read_reply(fd, r);
        close(fd);
}

Test(metrics, a_client_that_does_not_finish_its_request_is_closed_at_the_deadline)
{
        open_tcp();
        struct reply r = {0};
        with_client(client_idle, &r);
        cr_expect(r.closed, "the server never closed it");
        cr_expect_eq(r.len, 0, "%s", r.data);
        reply_free(&r);
}

#define FLOOD (OB_METRICS_MAX_CONNS + 8)

struct flood {
        int answered, refused, other;
        struct reply after;
};

static void client_flood(void *arg)
{
        struct flood *f = arg;
        int fds[FLOOD];
        for (int i = 0; i < FLOOD; i++)
                fds[i] = client_connect();
        const char *req = "GET /healthz HTTP/1.1\r\n\r\n";
        for (int i = 0; i < FLOOD; i++) {
                struct reply r = {0};
                if (fds[i] >= 0 && send_all(fds[i], req, strlen(req)))
                        read_reply(fds[i], &r);
                else
                        r.closed = true; /* refused before the request */
                if (r.status == 200)
                        f->answered++;
                else if (r.closed && r.len == 0)
                        f->refused++;
                else
                        f->other++;
                reply_free(&r);
                if (fds[i] >= 0)
                        close(fds[i]);
        }
        /* Every slot is free again once the server sees them closed. */
        for (int tries = 0; tries < 200 && f->after.status != 200; tries++) {
                reply_free(&f->after);
                get("/healthz", &f->after);
                if (f->after.status != 200)
                        usleep(10 * 1000);
        }
}

Test(metrics, connections_beyond_the_limit_are_closed_at_once_and_the_endpoint_goes_on)
{
        open_tcp();
        struct flood f = {0};
        with_client(client_flood, &f);
        cr_expect_leq(f.answered, OB_METRICS_MAX_CONNS);
        cr_expect_geq(f.refused, FLOOD - OB_METRICS_MAX_CONNS);
        cr_expect_eq(f.other, 0);
        cr_expect_eq(f.after.status, 200);
        reply_free(&f.after);
}

struct big {
        struct reply big, health;
};

static void client_big(void *arg)
{
        struct big *b = arg;
        int fd = client_connect();
        int small = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
        send_all(fd, req, strlen(req));
        /* While that answer waits for this client to read, another is served. */
        get("/healthz", &b->health);
        read_reply(fd, &b->big);
        close(fd);
}

Test(metrics, an_answer_larger_than_the_socket_buffer_is_written_as_the_client_reads)
{
        char listen[160];
        snprintf(listen, sizeof(listen), "unix:%s", sock_path);
        cr_assert_eq(ob_metrics_open(loop, listen, &m), 0);
        target_port = 0;
        char name[64];
        for (int i = 0; i < 1000; i++) {
                snprintf(name, sizeof(name), "connector-with-a-long-name-%d", i);
                ob_metrics_action(m, name, "done", i);
        }
        char *want = render();
        cr_assert_gt(strlen(want), 1000 * 1000);
        struct big b = {0};
        with_client(client_big, &b);
        cr_expect_eq(b.health.status, 200);
        cr_assert_eq(b.big.status, 200);
        cr_assert_eq(b.big.body_len, strlen(want));
        cr_assert(memcmp(b.big.body, want, b.big.body_len) == 0);
        free(want);
        reply_free(&b.big);
        reply_free(&b.health);
}

static void client_health(void *arg)
{
        get("/healthz", arg);
}

Test(metrics, a_unix_socket_is_0600_replaces_a_stale_one_and_is_removed_at_the_end)
{
        /* A stale socket: bound, and its process gone. */
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", sock_path);
        int old = socket(AF_UNIX, SOCK_STREAM, 0);
        cr_assert_eq(bind(old, (struct sockaddr *)&un, sizeof(un)), 0);
        close(old);
        char listen[160];
        snprintf(listen, sizeof(listen), "unix:%s", sock_path);
        mode_t mask = umask(0);
        int k = ob_metrics_open(loop, listen, &m);
        cr_expect_eq(umask(mask), 0, "the umask was not put back");
        cr_assert_eq(k, 0, "%s", strerror(-k));
        cr_expect_eq(ob_metrics_port(m), 0);
        struct stat st;
        cr_assert_eq(lstat(sock_path, &st), 0);
        cr_expect(S_ISSOCK(st.st_mode));
        cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
        target_port = 0;
        struct reply r = {0};
        with_client(client_health, &r);
        cr_expect_eq(r.status, 200, "%s", r.data ? r.data : "(nothing)");
        reply_free(&r);
        ob_metrics_free(m);
        m = NULL;
        cr_expect_neq(lstat(sock_path, &st), 0, "the socket was left behind");
}

Test(metrics, a_unix_path_that_is_a_file_or_a_live_socket_is_refused)
{
        char spec[160];
        snprintf(spec, sizeof(spec), "unix:%s", sock_path);
        FILE *f = fopen(sock_path, "w");
        cr_assert_not_null(f);
        fputs("keep me\n", f);
        fclose(f);
        cr_expect_eq(ob_metrics_open(loop, spec, &m), -EEXIST);
        cr_expect_null(m);
        struct stat st;
        cr_assert_eq(lstat(sock_path, &st), 0);
        cr_expect(S_ISREG(st.st_mode) && st.st_size == 8, "the file was touched");
        unlink(sock_path);
        /* Someone listens there. */
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", sock_path);
        int live = socket(AF_UNIX, SOCK_STREAM, 0);
        cr_assert_eq(bind(live, (struct sockaddr *)&un, sizeof(un)), 0);
        cr_assert_eq(listen(live, 1), 0);
        cr_expect_eq(ob_metrics_open(loop, spec, &m), -EADDRINUSE);
        cr_expect_null(m);
        cr_expect_eq(lstat(sock_path, &st), 0, "the live socket was removed");
        close(live);
        cr_expect_eq(ob_metrics_open(loop, "unix:/nonexistent-dir/x.sock", &m), -ENOENT);
}

Test(metrics, only_loopback_addresses_are_listened_on)
{
        static const char *const refused[] = {"0.0.0.0:0", "[::]:0",        "192.0.2.1:0",
                                              "127.0.0.1", "unix:rel.sock", "example.org:0"};
        for (size_t i = 0; i < OB_ELEMENTSOF(refused); i++) {
                cr_expect_eq(ob_metrics_open(loop, refused[i], &m), -EINVAL, "%s", refused[i]);
                cr_expect_null(m);
        }
        const char *why = NULL;
        cr_expect_eq(ob_metrics_check_listen("127.0.0.1:0", &why), -EINVAL, "port 0 in a configuration");
        cr_expect_eq(ob_metrics_check_listen("127.0.0.1:9100", &why), 0);
        cr_assert_eq(ob_metrics_open(loop, "localhost:0", &m), 0);
        target_port = ob_metrics_port(m);
        cr_assert_gt(target_port, 0);
        struct reply r = {0};
        with_client(client_health, &r);
        cr_expect_eq(r.status, 200);
        reply_free(&r);
        ob_metrics_free(m);
        m = NULL;
        int k = ob_metrics_open(loop, "[::1]:0", &m);
        if (k == -EADDRNOTAVAIL || k == -EAFNOSUPPORT)
                return; /* no IPv6 loopback here */
        cr_expect_eq(k, 0, "%s", strerror(-k));
        cr_expect_gt(ob_metrics_port(m), 0);
}

static void client_refused(void *arg)
{
        int *ret = arg;
        int fd = client_connect();
        *ret = fd < 0 ? errno : 0;
        if (fd >= 0)
                close(fd);
}

Test(metrics, a_reload_moves_the_listener_and_keeps_the_counters)
{
        open_tcp();
        int old_port = target_port;
        ob_metrics_action(m, "http", "done", 1);
        char listen[160];
        snprintf(listen, sizeof(listen), "unix:%s", sock_path);
        cr_assert_eq(ob_metrics_listen(m, listen), 0);
        cr_expect_eq(ob_metrics_port(m), 0);
        cr_expect_eq(ob_metrics_listen(m, listen), 0, "the same value again");
        /* A listener that cannot be opened leaves the one there. */
        cr_expect_eq(ob_metrics_listen(m, "unix:/nonexistent-dir/x.sock"), -ENOENT);
        target_port = 0;
        struct reply r = {0};
        fetch("/metrics", &r);
        cr_assert_eq(r.status, 200);
        cr_expect_not_null(strstr(r.body, "offboard_actions_total{connector=\"http\",outcome=\"done\"} 1\n"));
        reply_free(&r);
        target_port = old_port;
        int err = 0;
        with_client(client_refused, &err);
        cr_expect_eq(err, ECONNREFUSED, "the old port still answers (%d)", err);
        cr_assert_eq(ob_metrics_listen(m, NULL), 0);
        struct stat st;
        cr_expect_neq(lstat(sock_path, &st), 0, "the socket was left behind");
}

static bool has(const char *s, const char *needle)
{
        return strstr(s, needle) != NULL;
}

Test(metrics, the_latency_runs_from_a_change_heard_to_the_first_request_of_the_pass_after_it)
{
        cr_assert_eq(ob_metrics_open(loop, NULL, &m), 0);
        cr_expect_eq(ob_metrics_port(m), 0);
        /* Our own write-back causes nothing. */
        ob_metrics_feed_event(m, true);
        ob_metrics_pass_start(m);
        ob_metrics_request_left(m);
        ob_metrics_pass(m, false, 0, 1, 0, false);
        char *s = render();
        cr_expect(has(s, "\noffboard_change_to_request_seconds_count 0\n"), "%s", s);
        free(s);
        /* A change, its pass, its requests: one observation. */
        ob_metrics_feed_event(m, false);
        ob_metrics_feed_event(m, false);
        ob_metrics_pass_start(m);
        ob_metrics_request_left(m);
        ob_metrics_request_left(m);
        ob_metrics_pass(m, false, 0, 1, 0, false);
        s = render();
        cr_expect(has(s, "\noffboard_change_to_request_seconds_count 1\n"), "%s", s);
        free(s);
        /* A change whose pass sent nothing: a later request is not its. */
        ob_metrics_feed_event(m, false);
        ob_metrics_pass_start(m);
        ob_metrics_pass(m, false, 0, 1, 0, false);
        ob_metrics_pass_start(m);
        ob_metrics_request_left(m);
        ob_metrics_pass(m, true, 0, 1, 0, false);
        s = render();
        cr_expect(has(s, "\noffboard_change_to_request_seconds_count 1\n"), "%s", s);
        /* A change heard during a pass waits for the next. */
        free(s);
        ob_metrics_pass_start(m);
        ob_metrics_feed_event(m, false);
        ob_metrics_request_left(m);
        ob_metrics_pass(m, true, 0, 1, 0, false);
        ob_metrics_pass_start(m);
        ob_metrics_request_left(m);
        s = render();
        cr_expect(has(s, "\noffboard_change_to_request_seconds_count 2\n"), "%s", s);
        cr_expect(has(s, "\noffboard_feed_events_total{own=\"false\"} 4\n"), "%s", s);
        cr_expect(has(s, "\noffboard_feed_events_total{own=\"true\"} 1\n"), "%s", s);
        cr_expect(has(s, "\noffboard_feed_state{feed=\"none\",state=\"none\"} 1\n"), "%s", s);
        assert_exposition(s, strlen(s));
        free(s);
        /* NULL is no metrics at all. */
        ob_metrics_action(NULL, "x", "done", 1);
        ob_metrics_pass(NULL, true, 0, 1, 0, false);
        ob_metrics_feed_event(NULL, false);
        ob_metrics_request_left(NULL);
}

Test(metrics, the_request_parser_waits_for_the_blank_line_and_decides_at_the_bound)
{
        static const char req[] = "HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\n\r\n";
        size_t end = strlen("HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        bool head = false;
        const char *path = NULL;
        size_t plen = 0;
        /* Every prefix short of the blank line waits; from it on, the answer
         * is the same whatever follows. */
        for (size_t n = 0; n < end; n++)
                cr_expect_eq(ob_metrics_parse_request(req, n, OB_METRICS_REQUEST_MAX, &head, &path, &plen), 0,
                             "%zu bytes", n);
        for (size_t n = end; n <= strlen(req); n++) {
                cr_assert_eq(ob_metrics_parse_request(req, n, OB_METRICS_REQUEST_MAX, &head, &path, &plen), 200);
                cr_expect(head);
                cr_expect_eq(path, req + 5);
                cr_expect_eq(plen, 8);
        }
        /* A full buffer without a line end, or without the headers' end. */
        cr_expect_eq(ob_metrics_parse_request(req, 10, 10, &head, &path, &plen), 431);
        cr_expect_eq(ob_metrics_parse_request(req, end - 2, end - 2, &head, &path, &plen), 431);
        cr_expect_eq(ob_metrics_parse_request("\x16\x03\x01", 3, OB_METRICS_REQUEST_MAX, &head, &path, &plen), 400);
        cr_expect_eq(ob_metrics_parse_request("PUT / HTTP/1.1\n\n", 16, OB_METRICS_REQUEST_MAX, &head, &path, &plen),
                     405);
}

/* The lag: 0 with nothing heard; the age of the oldest change heard while no
 * pass has acted on it; 0 again once its pass sent its first request. */
static double lag_of(void)
{
        struct reply r;
        fetch("/metrics", &r);
        const char *l = strstr(r.body, "\noffboard_feed_lag_seconds ");
        cr_assert_not_null(l, "%s", r.body);
        double v = strtod(l + strlen("\noffboard_feed_lag_seconds "), NULL);
        assert_exposition(r.body, r.body_len);
        reply_free(&r);
        return v;
}

Test(metrics, the_feed_lag_is_the_age_of_the_oldest_change_not_yet_acted_on)
{
        open_tcp();
        cr_assert_eq(lag_of(), 0.0);
        ob_metrics_feed_event(m, true); /* the service's own write-back waits for nothing */
        cr_assert_eq(lag_of(), 0.0);
        ob_metrics_feed_event(m, false);
        usleep(300 * 1000);
        ob_metrics_feed_event(m, false); /* a later one does not make the oldest younger */
        double waited = lag_of();
        cr_assert_geq(waited, 0.3, "lag %.3f", waited);
        ob_metrics_pass_start(m);
        cr_assert_geq(lag_of(), waited, "a pass over the changes has not answered them yet");
        ob_metrics_request_left(m);
        cr_assert_eq(lag_of(), 0.0);
}
