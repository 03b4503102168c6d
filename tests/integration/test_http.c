/* test_http.c: the HTTP connector against a real recording server. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connector.h"
#include "http.h"
#include "loop.h"
#include "recorder.h"
#include "util.h"

static struct ob_test_recorder rec;
static struct ob_loop *loop;
static char secret_paths[4][64];
static size_t nsecret_paths;

static void setup(void)
{
        cr_assert_eq(ob_loop_new(&loop), 0);
}

static void teardown(void)
{
        ob_loop_free(loop);
        loop = NULL;
        ob_test_recorder_stop(&rec);
        for (size_t i = 0; i < nsecret_paths; i++)
                unlink(secret_paths[i]);
        nsecret_paths = 0;
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

static void start_recorder(const char *rules, bool tls)
{
        int r = ob_test_recorder_start(&rec, rules, tls);
        cr_assert_eq(r, 0, "recorder did not start: %s", strerror(-r));
}

/* A new secret file per call (at most 4 per test), removed by teardown. */
static const char *write_secret(const char *content)
{
        cr_assert_lt(nsecret_paths, OB_ELEMENTSOF(secret_paths));
        char *path = secret_paths[nsecret_paths];
        strcpy(path, "/tmp/ob-secret-XXXXXX");
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        nsecret_paths++;
        size_t n = strlen(content);
        cr_assert_eq(write(fd, content, n), (ssize_t)n);
        close(fd);
        return path;
}

/* The http settings of the connector http_config() returns (one per test). */
static struct ob_http_connector http_settings;
#define HTTP(cfg) ((struct ob_http_connector *)(cfg).settings)

static struct ob_connector http_config(void)
{
        http_settings = (struct ob_http_connector){.tls_verify = true};
        return (struct ob_connector){
                .name = "test",
                .kind = &ob_http_kind,
                .settings = &http_settings,
                .timeout_ms = 10000,
                .concurrency = 4,
        };
}

/* The file of the secret, whichever auth type reads it. */
static void set_secret_file(struct ob_connector *cfg, const char *path)
{
        HTTP(*cfg)->auth.token_file = (char *)path;
        HTTP(*cfg)->auth.password_file = (char *)path;
}

static void *new_connector(const struct ob_connector *cfg)
{
        void *c = NULL;
        int r = ob_http_new(loop, cfg, &c);
        cr_assert_eq(r, 0, "new: %s", ob_strerror(r));
        cr_assert_not_null(c);
        return c;
}

/* What a done callback saw. */
struct outcome {
        int calls;
        struct ob_response resp;
};

struct batch {
        struct outcome *out;
        int expected;
        int finished;
};

struct slot {
        struct batch *batch;
        struct outcome *out;
};

static void on_done(const struct ob_response *resp, void *userdata)
{
        struct slot *s = userdata;
        s->out->calls++;
        s->out->resp = *resp;
        s->batch->finished++;
        if (s->batch->finished == s->batch->expected)
                ob_loop_stop(loop);
}

static void on_safety(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        bool *fired = userdata;
        *fired = true;
        ob_loop_stop(l);
}

/* Runs the loop until `expected` callbacks ran, at most 20 s. */
static void run_until_done(struct batch *b)
{
        bool timed_out = false;
        struct ob_timer *safety;
        cr_assert_eq(ob_loop_timer(loop, 20000, on_safety, &timed_out, &safety), 0);
        if (b->finished < b->expected)
                cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_not(timed_out, "only %d of %d requests finished", b->finished, b->expected);
        ob_loop_timer_cancel(loop, safety);
}

/* Sends one request and waits for its outcome. */
static struct ob_response send_one(void *c, const struct ob_request *req)
{
        struct outcome out = {0};
        struct batch b = { &out, 1, 0 };
        struct slot s = { &b, &out };
        int r = ob_http_start(c, req, on_done, &s);
        cr_assert_eq(r, 0, "start: %s", ob_strerror(r));
        cr_assert_eq(out.calls, 0, "the callback ran inside start()");
        run_until_done(&b);
        cr_assert_eq(out.calls, 1);
        return out.resp;
}

static char *url(const char *path)
{
        char *u;
        cr_assert_gt(asprintf(&u, "%s%s", rec.base_url, path), 0);
        return u;
}

static struct ob_test_request *requests(size_t *n)
{
        struct ob_test_request *q;
        cr_assert_eq(ob_test_recorder_requests(&rec, &q, n), 0);
        return q;
}

Test(http, the_connector_table_knows_the_http_type)
{
        cr_assert_eq(ob_connector_kind_find("http"), &ob_http_kind);
        cr_assert_str_eq(ob_http_kind.name, "http");
        cr_assert_null(ob_connector_kind_find("smtp"));
}

Test(http, a_post_arrives_exactly_as_sent)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);

        static const char body[] = "{\"user\":\"j\\u00e9\",\"tags\":[\"a b\",\"c/d\"]}";
        static const char *const headers[] = { "X-Request-Source: offboard-test", "X-Tenant: acme corp", NULL };
        _cleanup_free_ char *u = url("/v1/users/a%2Fb%20c/sessions?filter=x%3Dy&q=%C3%A9");
        struct ob_request req = {
                .method = "POST",
                .url = u,
                .headers = headers,
                .content_type = "application/json",
                .body = body,
                .body_len = strlen(body),
                .idempotency_key = "offboard-7f3a-1",
        };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "error: %s", resp.error);
        cr_assert_eq(resp.status, 200);
        cr_assert_str_eq(resp.error, "");
        cr_assert_str_eq(resp.excerpt, "{\"ok\":true}");
        cr_assert_geq(resp.duration_ms, 0);
        cr_assert_lt(resp.duration_ms, 10000);

        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(q[0].method, "POST");
        cr_assert_str_eq(q[0].path, "/v1/users/a%2Fb%20c/sessions?filter=x%3Dy&q=%C3%A9");
        cr_assert_eq(q[0].body_len, strlen(body));
        cr_assert_str_eq(q[0].body, body);
        cr_assert_str_eq(ob_test_request_header(&q[0], "Content-Type"), "application/json");
        cr_assert_str_eq(ob_test_request_header(&q[0], "X-Request-Source"), "offboard-test");
        cr_assert_str_eq(ob_test_request_header(&q[0], "X-Tenant"), "acme corp");
        cr_assert_str_eq(ob_test_request_header(&q[0], "Idempotency-Key"), "offboard-7f3a-1");
        const char *ua = ob_test_request_header(&q[0], "User-Agent");
        cr_assert_not_null(ua);
        cr_assert_eq(strncmp(ua, "offboard/", 9), 0, "User-Agent: %s", ua);
        cr_assert_null(ob_test_request_header(&q[0], "Expect"));
        cr_assert_null(ob_test_request_header(&q[0], "Authorization"));
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, put_patch_delete_and_get_use_their_own_method)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        static const char *const methods[] = { "PUT", "PATCH", "DELETE", "GET" };
        for (size_t i = 0; i < OB_ELEMENTSOF(methods); i++) {
                _cleanup_free_ char *u = url("/m");
                bool body = i < 2;
                struct ob_request req = {
                        .method = methods[i],
                        .url = u,
                        .content_type = body ? "application/json" : NULL,
                        .body = body ? "{\"a\":1}" : NULL,
                        .body_len = body ? 7 : 0,
                };
                struct ob_response resp = send_one(c, &req);
                cr_assert_eq(resp.result, 0, "%s: %s", methods[i], resp.error);
        }
        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 4);
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(q[i].method, methods[i]);
                cr_assert_str_eq(q[i].body, i < 2 ? "{\"a\":1}" : "");
                if (i >= 2)
                        cr_assert_null(ob_test_request_header(&q[i], "Content-Type"), "%s", methods[i]);
        }
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, a_header_with_a_line_break_is_refused_before_anything_is_sent)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        static const char *const headers[] = { "X-Evil: a\r\nX-Injected: yes", NULL };
        _cleanup_free_ char *u = url("/h");
        struct ob_request req = { .method = "GET", .url = u, .headers = headers };
        cr_assert_eq(ob_http_start(c, &req, on_done, NULL), -EINVAL);
        struct ob_request bad_key = { .method = "GET", .url = u, .idempotency_key = "k\nX: y" };
        cr_assert_eq(ob_http_start(c, &bad_key, on_done, NULL), -EINVAL);
        struct ob_request bad_method = { .method = "GET /x HTTP/1.1\r\n", .url = u };
        cr_assert_eq(ob_http_start(c, &bad_method, on_done, NULL), -EINVAL);
        cr_assert_eq(ob_loop_run(loop), 0); /* nothing was queued: returns at once */
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
        ob_http_free(c);
}

#define TOKEN "tok-5ecr3t-Zq9v1xP"

Test(http, the_bearer_token_from_the_file_is_sent_and_never_reported_back)
{
        /* The second request gets a 401 whose body echoes the token. */
        start_recorder("[{\"match\": \"^/echo\", \"status\": 401, "
                       "\"body\": \"{\\\"error\\\": \\\"token " TOKEN " revoked\\\", \\\"again\\\": \\\"" TOKEN "\\\"}\"}]",
                       false);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "bearer";
        set_secret_file(&cfg, (char *)write_secret(TOKEN "\n"));
        HTTP(cfg)->allow_insecure = true; /* the recorder speaks plain http */
        void *c = new_connector(&cfg);

        _cleanup_free_ char *u1 = url("/ok");
        struct ob_request req = { .method = "POST", .url = u1, .content_type = "application/json", .body = "{}", .body_len = 2 };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);

        _cleanup_free_ char *u2 = url("/echo");
        req.url = u2;
        resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_eq(resp.status, 401);
        cr_assert_str_eq(resp.error, "HTTP 401");
        cr_assert_null(strstr(resp.excerpt, TOKEN), "excerpt: %s", resp.excerpt);
        cr_assert_null(strstr(resp.error, TOKEN));
        cr_assert_str_eq(resp.excerpt, "{\"error\": \"token *** revoked\", \"again\": \"***\"}");

        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 2);
        for (size_t i = 0; i < n; i++)
                cr_assert_str_eq(ob_test_request_header(&q[i], "Authorization"), "Bearer " TOKEN);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, a_transport_error_never_carries_the_token)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "bearer";
        set_secret_file(&cfg, (char *)write_secret(TOKEN));
        cfg.timeout_ms = 2000;
        HTTP(cfg)->allow_insecure = true; /* else the scheme is refused before the name is looked up */
        void *c = new_connector(&cfg);
        /* The token as a host name: curl's error names the host. */
        struct ob_request req = { .method = "GET", .url = "http://" TOKEN ".invalid/" };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_neq(resp.error[0], '\0');
        cr_assert_null(strstr(resp.error, TOKEN), "error: %s", resp.error);
        ob_http_free(c);
}

Test(http, basic_auth_sends_the_user_and_the_password_from_the_file)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = "svc-offboard";
        set_secret_file(&cfg, (char *)write_secret("p4ss word!\n"));
        HTTP(cfg)->allow_insecure = true;
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/basic");
        struct ob_request req = { .method = "GET", .url = u };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 1);
        /* printf 'svc-offboard:p4ss word!' | base64 */
        cr_assert_str_eq(ob_test_request_header(&q[0], "Authorization"), "Basic c3ZjLW9mZmJvYXJkOnA0c3Mgd29yZCE=");
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, a_server_error_reports_the_status_and_a_bounded_excerpt)
{
        /* 100 KB of body: the excerpt keeps only its start. */
        size_t big = 100 * 1024;
        struct ob_buf rules = {0};
        cr_assert_eq(ob_buf_adds(&rules, "[{\"match\": \"^/boom\", \"status\": 500, \"body\": \"oops:"), 0);
        for (size_t i = 0; i < big; i++)
                cr_assert_eq(ob_buf_addc(&rules, (char)('a' + i % 26)), 0);
        cr_assert_eq(ob_buf_adds(&rules, "\"}]"), 0);
        start_recorder(rules.data, false);
        ob_buf_free(&rules);

        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/boom");
        struct ob_request req = { .method = "DELETE", .url = u };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_eq(resp.status, 500);
        cr_assert_str_eq(resp.error, "HTTP 500");
        cr_assert_eq(strlen(resp.excerpt), OB_EXCERPT_MAX);
        cr_assert_eq(strncmp(resp.excerpt, "oops:abcdefghijklmnopqrstuvwxyzabc", 34), 0, "excerpt: %.40s", resp.excerpt);
        ob_http_free(c);
}

Test(http, concurrency_two_keeps_two_requests_in_flight_and_finishes_all_six)
{
        start_recorder("[{\"match\": \"^/slow/\", \"delay_ms\": 400}]", false);
        struct ob_connector cfg = http_config();
        cfg.concurrency = 2;
        void *c = new_connector(&cfg);

        enum { N = 6 };
        struct outcome out[N] = {0};
        struct slot slots[N];
        char *urls[N];
        struct batch b = { out, N, 0 };
        for (int i = 0; i < N; i++) {
                char path[32];
                snprintf(path, sizeof(path), "/slow/%d", i);
                urls[i] = url(path);
                slots[i] = (struct slot){ &b, &out[i] };
                struct ob_request req = { .method = "POST", .url = urls[i], .content_type = "application/json", .body = "{}", .body_len = 2 };
                cr_assert_eq(ob_http_start(c, &req, on_done, &slots[i]), 0);
        }
        int64_t start = ob_loop_now_ms();
        run_until_done(&b);
        int64_t took = ob_loop_now_ms() - start;
        for (int i = 0; i < N; i++) {
                cr_assert_eq(out[i].calls, 1, "request %d: %d callbacks", i, out[i].calls);
                cr_assert_eq(out[i].resp.result, 0, "request %d: %s", i, out[i].resp.error);
                free(urls[i]);
        }
        /* Three rounds of 400 ms: never all at once. */
        cr_assert_geq(took, 3 * 400, "took %lld ms", (long long)took);

        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, N);
        int max = 0;
        for (size_t i = 0; i < n; i++)
                max = q[i].inflight > max ? q[i].inflight : max;
        cr_assert_eq(max, 2);
        /* FIFO: the first two to arrive are the first two started. */
        cr_assert(strcmp(q[0].path, "/slow/0") == 0 || strcmp(q[0].path, "/slow/1") == 0, "%s", q[0].path);
        cr_assert(strcmp(q[1].path, "/slow/0") == 0 || strcmp(q[1].path, "/slow/1") == 0, "%s", q[1].path);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, https_with_the_test_ca_succeeds)
{
        start_recorder(NULL, true);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->ca_file = (char *)ob_test_recorder_ca(&rec);
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/tls");
        struct ob_request req = { .method = "GET", .url = u };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        cr_assert_eq(resp.status, 200);
        cr_assert_eq(ob_test_recorder_count(&rec), 1);
        ob_http_free(c);
}

static void expect_certificate_failure(const char *ca_file)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->ca_file = (char *)ca_file;
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/tls");
        struct ob_request req = { .method = "GET", .url = u };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_eq(resp.status, 0);
        cr_assert(strcasestr(resp.error, "certificate") != NULL, "error: %s", resp.error);
        ob_http_free(c);
}

Test(http, https_without_the_ca_fails_with_a_certificate_error)
{
        start_recorder(NULL, true);
        expect_certificate_failure(NULL);
        char other[320];
        snprintf(other, sizeof(other), "%s/tls/other-ca.pem", rec.dir);
        expect_certificate_failure(other);
        cr_assert_eq(ob_test_recorder_count(&rec), 0);
}

Test(http, https_with_verification_off_accepts_an_unknown_ca)
{
        start_recorder(NULL, true);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->tls_verify = false;
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/insecure");
        struct ob_request req = { .method = "GET", .url = u };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        cr_assert_eq(ob_test_recorder_count(&rec), 1);
        ob_http_free(c);
}

Test(http, a_reply_slower_than_the_timeout_fails_without_hanging)
{
        start_recorder("[{\"match\": \"^/stall\", \"delay_ms\": 5000}]", false);
        struct ob_connector cfg = http_config();
        cfg.timeout_ms = 300;
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/stall");
        struct ob_request req = { .method = "GET", .url = u };
        int64_t start = ob_loop_now_ms();
        struct ob_response resp = send_one(c, &req);
        int64_t took = ob_loop_now_ms() - start;
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert(strcasestr(resp.error, "timed out") != NULL, "error: %s", resp.error);
        cr_assert_geq(took, 300);
        cr_assert_lt(took, 3000, "took %lld ms", (long long)took);
        cr_assert_geq(resp.duration_ms, 300);
        ob_http_free(c);
}

static int closed_port(void)
{
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(s, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t len = sizeof(a);
        cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
        close(s); /* bound, never listened: connecting is refused */
        return ntohs(a.sin_port);
}

Test(http, a_refused_connection_fails_cleanly)
{
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        char u[64];
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/nobody", closed_port());
        struct ob_request req = { .method = "POST", .url = u, .content_type = "application/json", .body = "{}", .body_len = 2 };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_eq(resp.status, 0);
        cr_assert(strcasestr(resp.error, "connect") != NULL, "error: %s", resp.error);
        cr_assert_str_eq(resp.excerpt, "");
        ob_http_free(c);
}

Test(http, a_missing_secret_file_makes_new_fail)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "bearer";
        set_secret_file(&cfg, "/nonexistent/offboard/token");
        void *c = (void *)&cfg; /* must stay untouched */
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -ENOENT);
        cr_assert_eq(c, (void *)&cfg);

        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = "svc";
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -ENOENT);
        set_secret_file(&cfg, NULL);
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -EINVAL);
        HTTP(cfg)->auth.type = "digest";
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -EINVAL);
        cr_assert_eq(c, (void *)&cfg);
}

Test(http, ftp_and_other_schemes_are_refused)
{
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        struct ob_request req = { .method = "GET", .url = "file:///etc/passwd" };
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EHTTP);
        cr_assert_str_eq(resp.excerpt, "");
        ob_http_free(c);
}

static void on_never(const struct ob_response *resp, void *userdata)
{
        (void)resp;
        int *calls = userdata;
        (*calls)++;
}

static void on_stop(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        (void)userdata;
        ob_loop_stop(l);
}

Test(http, free_with_requests_running_and_queued_calls_no_callback_and_leaves_the_loop_empty)
{
        start_recorder("[{\"match\": \"^/hold\", \"delay_ms\": 3000}]", false);
        struct ob_connector cfg = http_config();
        cfg.concurrency = 1;
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/hold");
        int calls = 0;
        for (int i = 0; i < 3; i++) {
                struct ob_request req = { .method = "GET", .url = u };
                cr_assert_eq(ob_http_start(c, &req, on_never, &calls), 0);
        }
        /* Let the first one reach the server (polled, at most 10 s). */
        for (int i = 0; i < 100 && ob_test_recorder_count(&rec) < 1; i++) {
                cr_assert_eq(ob_loop_timer(loop, 100, on_stop, NULL, NULL), 0);
                cr_assert_eq(ob_loop_run(loop), 0);
        }
        cr_assert_eq(ob_test_recorder_count(&rec), 1);
        ob_http_free(c);
        cr_assert_eq(calls, 0);
        /* No watch or timer of the connector is left behind. */
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_lt(ob_loop_now_ms() - start, 1000);
        cr_assert_eq(calls, 0);
}

struct freer {
        void *c;
        int calls;
};

static void on_done_then_free(const struct ob_response *resp, void *userdata)
{
        (void)resp;
        struct freer *f = userdata;
        f->calls++;
        ob_http_free(f->c);
        ob_loop_stop(loop);
}

Test(http, free_from_inside_a_done_callback_stops_further_callbacks)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        cfg.concurrency = 3;
        void *c = new_connector(&cfg);
        struct freer f = { c, 0 };
        _cleanup_free_ char *u = url("/x");
        for (int i = 0; i < 3; i++) {
                struct ob_request req = { .method = "GET", .url = u };
                cr_assert_eq(ob_http_start(c, &req, on_done_then_free, &f), 0);
        }
        bool timed_out = false;
        struct ob_timer *safety;
        cr_assert_eq(ob_loop_timer(loop, 10000, on_safety, &timed_out, &safety), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_not(timed_out);
        cr_assert_eq(f.calls, 1);
        ob_loop_timer_cancel(loop, safety);
        /* The free released every watch and timer: the loop ends at once. */
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_lt(ob_loop_now_ms() - start, 1000);
        cr_assert_eq(f.calls, 1);
}

Test(http, the_loop_returns_by_itself_once_every_request_is_done)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/alone");
        int calls = 0;
        for (int i = 0; i < 3; i++) {
                struct ob_request req = { .method = "GET", .url = u };
                cr_assert_eq(ob_http_start(c, &req, on_never, &calls), 0);
        }
        cr_assert_eq(ob_loop_run(loop), 0); /* bounded by the suite timeout */
        cr_assert_eq(calls, 3);
        cr_assert_eq(ob_test_recorder_count(&rec), 3);
        ob_http_free(c);
}

/* ---- secrets echoed back: the excerpt never carries them ---- */

/* Neither s nor any 8 consecutive bytes of it appear in text. */
static void assert_no_piece(const char *text, const char *s, const char *what)
{
        size_t n = strlen(s);
        cr_assert_null(strstr(text, s), "%s: the whole secret is in: %s", what, text);
        for (size_t i = 0; i + 8 <= n; i++)
                cr_assert_null(memmem(text, strlen(text), s + i, 8), "%s: \"%.8s\" is in: %s", what, s + i, text);
}

static char *encode_base64(const char *s, bool url)
{
        const char *tbl = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                              : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(s);
        char *o = calloc(1, n / 3 * 4 + 5);
        cr_assert_not_null(o);
        size_t k = 0;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned)(unsigned char)s[i] << 16;
                if (i + 1 < n)
                        v |= (unsigned)(unsigned char)s[i + 1] << 8;
                if (i + 2 < n)
                        v |= (unsigned char)s[i + 2];
                o[k++] = tbl[(v >> 18) & 63];
                o[k++] = tbl[(v >> 12) & 63];
                o[k++] = i + 1 < n ? tbl[(v >> 6) & 63] : url ? '\0' : '=';
                o[k++] = i + 2 < n ? tbl[v & 63] : url ? '\0' : '=';
        }
        return o;
}

/* The forms recorder.py's echo_encode produces, to look for in an excerpt. */
static char *encode_as(const char *s, const char *how)
{
        if (strcmp(how, "base64") == 0)
                return encode_base64(s, false);
        if (strcmp(how, "base64url") == 0)
                return encode_base64(s, true);
        struct ob_buf b = {0};
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (strcmp(how, "json") == 0 && (c == '/' || c == '"' || c == '\\'))
                        cr_assert_eq(ob_buf_printf(&b, "\\%c", c), 0);
                else if (strcmp(how, "percent") == 0 && !strchr("-._~", c) &&
                         !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9'))
                        cr_assert_eq(ob_buf_printf(&b, "%%%02X", c), 0);
                else
                        cr_assert_eq(ob_buf_addc(&b, (char)c), 0);
        }
        char *r;
        cr_assert_eq(ob_buf_steal(&b, &r), 0);
        return r;
}

struct echo_shape {
        const char *name;
        const char *encode;
        const char *body;   /* recorder.py template */
        const char *expect; /* the excerpt, when it is known exactly; NULL otherwise */
};

#define PAD20 "abcdefghijklmnopqrst"

static const struct echo_shape echo_shapes[] = {
        {"full", "raw", "{\"error\": \"bad credentials {echo}\"}", "{\"error\": \"bad credentials ***\"}"},
        /* The echo straddles the 512-byte cut. */
        {"straddle", "raw", "{pad:500}{echo} and the rest of the body", NULL},
        /* The measured leak: a first echo, then a second one that the old
         * capture (512 + secret bytes) cut and the first scrub moved into
         * the excerpt. */
        {"second-moved", "raw", "{echo} {pad:478}{echo} tail", NULL},
        /* A second echo cut by the end of the body. */
        {"second-cut", "raw", "{echo} {pad:470}{echo:30}", NULL},
        {"json", "json", "{\"echo\": \"{echo}\"}", "{\"echo\": \"***\"}"},
        {"base64", "base64", "{\"b\": \"{echo}\"}", "{\"b\": \"***\"}"},
        {"base64url", "base64url", "b={echo}&c=1", "b=***&c=1"},
        {"percent", "percent", "/login?t={echo}&x=1", "/login?t=***&x=1"},
        {"prefix", "raw", "token {echo:12}... was revoked.", "token ***... was revoked."},
        {"tail", "raw", "{pad:20} {echo:5}", PAD20 " "},
};

static void add_json_string(struct ob_buf *b, const char *s)
{
        cr_assert_eq(ob_buf_addc(b, '"'), 0);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        cr_assert_eq(ob_buf_addc(b, '\\'), 0);
                cr_assert_eq(ob_buf_addc(b, *s), 0);
        }
        cr_assert_eq(ob_buf_addc(b, '"'), 0);
}

/* One rule per shape, on /echo/NAME, echoing header (minus strip). */
static char *echo_rules(const char *header, const char *strip)
{
        struct ob_buf b = {0};
        cr_assert_eq(ob_buf_adds(&b, "["), 0);
        for (size_t i = 0; i < OB_ELEMENTSOF(echo_shapes); i++) {
                const struct echo_shape *e = &echo_shapes[i];
                cr_assert_eq(ob_buf_printf(&b,
                                           "%s{\"match\": \"^/echo/%s$\", \"status\": 401, \"echo_header\": \"%s\", "
                                           "\"echo_strip\": \"%s\", \"echo_encode\": \"%s\", \"body\": ",
                                           i ? ", " : "", e->name, header, strip, e->encode),
                             0);
                add_json_string(&b, e->body);
                cr_assert_eq(ob_buf_adds(&b, "}"), 0);
        }
        cr_assert_eq(ob_buf_adds(&b, "]"), 0);
        char *r;
        cr_assert_eq(ob_buf_steal(&b, &r), 0);
        return r;
}

static char pad_char(size_t i)
{
        return (char)('a' + i % 26);
}

static bool is_pad(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] != pad_char(i))
                        return false;
        return true;
}

/* Sends one request per shape; value is what the server echoes (before
 * encoding). Also checks what the server received in `header`. */
static void check_echoes(void *c, const char *value, const struct ob_request *base)
{
        for (size_t i = 0; i < OB_ELEMENTSOF(echo_shapes); i++) {
                const struct echo_shape *e = &echo_shapes[i];
                _cleanup_free_ char *path = NULL;
                cr_assert_gt(asprintf(&path, "/echo/%s", e->name), 0);
                _cleanup_free_ char *u = url(path);
                struct ob_request req = *base;
                req.url = u;
                struct ob_response resp = send_one(c, &req);
                cr_assert_eq(resp.status, 401, "%s: %s", e->name, resp.error);
                cr_assert_eq(resp.result, -OB_EHTTP);
                cr_assert_leq(strlen(resp.excerpt), OB_EXCERPT_MAX);
                _cleanup_free_ char *form = encode_as(value, e->encode);
                assert_no_piece(resp.excerpt, value, e->name);
                assert_no_piece(resp.excerpt, form, e->name);
                if (e->expect)
                        cr_assert_str_eq(resp.excerpt, e->expect, "%s: %s", e->name, resp.excerpt);
                if (strcmp(e->name, "straddle") == 0) {
                        cr_assert_eq(strlen(resp.excerpt), OB_EXCERPT_MAX);
                        cr_assert(is_pad(resp.excerpt, 500));
                        cr_assert_eq(strncmp(resp.excerpt + 500, "*** and the", 11), 0, "%s", resp.excerpt + 500);
                } else if (strcmp(e->name, "second-moved") == 0) {
                        cr_assert_eq(strncmp(resp.excerpt, "*** ", 4), 0);
                        cr_assert(is_pad(resp.excerpt + 4, 478));
                        cr_assert_str_eq(resp.excerpt + 482, "*** tail");
                } else if (strcmp(e->name, "second-cut") == 0) {
                        cr_assert(is_pad(resp.excerpt + 4, 470));
                        cr_assert_str_eq(resp.excerpt + 474, "***");
                }
        }
}

#define ECHO_TOKEN "tok/5ecr3t-Zq9v1xP+Lm8Zr7Tb1Vc3Nd5Hp6"

static void start_tls_recorder(const char *rules, struct ob_connector *cfg)
{
        start_recorder(rules, true);
        HTTP(*cfg)->ca_file = (char *)ob_test_recorder_ca(&rec);
}

Test(http, an_echoed_bearer_token_never_reaches_the_excerpt_in_any_shape)
{
        _cleanup_free_ char *rules = echo_rules("Authorization", "Bearer ");
        struct ob_connector cfg = http_config();
        start_tls_recorder(rules, &cfg);
        HTTP(cfg)->auth.type = "bearer";
        set_secret_file(&cfg, (char *)write_secret(ECHO_TOKEN "\n"));
        void *c = new_connector(&cfg);
        struct ob_request req = {.method = "GET"};
        check_echoes(c, ECHO_TOKEN, &req);
        ob_http_free(c);
}

Test(http, echoed_basic_credentials_never_reach_the_excerpt_in_any_shape)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = "svc-offboard";
        set_secret_file(&cfg, (char *)write_secret("p4ss/w0rd!x-Qq7Zk2\n"));
        /* printf 'svc-offboard:p4ss/w0rd!x-Qq7Zk2' | base64 */
        static const char b64[] = "c3ZjLW9mZmJvYXJkOnA0c3MvdzByZCF4LVFxN1prMg==";

        /* The header value with "Basic " stripped: the base64 credentials. */
        _cleanup_free_ char *rules = echo_rules("Authorization", "Basic ");
        start_tls_recorder(rules, &cfg);
        void *c = new_connector(&cfg);
        struct ob_request req = {.method = "GET"};
        check_echoes(c, b64, &req);
        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_str_eq(ob_test_request_header(&q[0], "Authorization"),
                         "Basic c3ZjLW9mZmJvYXJkOnA0c3MvdzByZCF4LVFxN1prMg==");
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, an_echoed_basic_password_never_reaches_the_excerpt_in_any_shape)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = "svc-offboard";
        set_secret_file(&cfg, (char *)write_secret("p4ss/w0rd!x-Qq7Zk2\n"));
        _cleanup_free_ char *rules = echo_rules("X-Echo-Password", "");
        start_tls_recorder(rules, &cfg);
        void *c = new_connector(&cfg);
        /* The server echoes a header we fill with the password: the same as
         * a server that reflects a submitted password field. */
        static const char *const headers[] = {"X-Echo-Password: p4ss/w0rd!x-Qq7Zk2", NULL};
        struct ob_request req = {.method = "GET", .headers = headers};
        check_echoes(c, "p4ss/w0rd!x-Qq7Zk2", &req);
        ob_http_free(c);
}

/* auth encoding: form (RFC 6749 section 2.3.1): what is sent is
 * base64("app%3A1:p4ss%2Bw%2F0rd%25%26%3D%3Ax-Qq7Zk2"), and an echo of it,
 * or of the encoded password alone, is masked like the plain ones. */
#define FORM_USER "app:1"
#define FORM_SECRET "p4ss+w/0rd%&=:x-Qq7Zk2"
#define FORM_SECRET_SENT "p4ss%2Bw%2F0rd%25%26%3D%3Ax-Qq7Zk2"

static struct ob_connector form_basic_config(void)
{
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = FORM_USER;
        HTTP(cfg)->auth.encoding = "form";
        set_secret_file(&cfg, (char *)write_secret(FORM_SECRET "\n"));
        return cfg;
}

Test(http, echoed_form_encoded_basic_credentials_are_what_is_sent_and_never_reach_the_excerpt)
{
        struct ob_connector cfg = form_basic_config();
        _cleanup_free_ char *b64 = encode_base64("app%3A1:" FORM_SECRET_SENT, false);
        _cleanup_free_ char *rules = echo_rules("Authorization", "Basic ");
        start_tls_recorder(rules, &cfg);
        void *c = new_connector(&cfg);
        struct ob_request req = {.method = "GET"};
        check_echoes(c, b64, &req);
        size_t n;
        struct ob_test_request *q = requests(&n);
        _cleanup_free_ char *want = NULL;
        cr_assert_gt(asprintf(&want, "Basic %s", b64), 0);
        cr_assert_str_eq(ob_test_request_header(&q[0], "Authorization"), want);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, an_echoed_form_encoded_basic_password_never_reaches_the_excerpt_in_any_shape)
{
        struct ob_connector cfg = form_basic_config();
        _cleanup_free_ char *rules = echo_rules("X-Echo-Password", "");
        start_tls_recorder(rules, &cfg);
        void *c = new_connector(&cfg);
        static const char *const headers[] = {"X-Echo-Password: " FORM_SECRET_SENT, NULL};
        struct ob_request req = {.method = "GET", .headers = headers};
        check_echoes(c, FORM_SECRET_SENT, &req);
        ob_http_free(c);
}

#define API_KEY "key_9f8e7d6c5b4a/3210zyxwvu+QpR"

Test(http, a_value_file_header_is_sent_with_its_value_and_never_echoed_back)
{
        _cleanup_free_ char *rules = echo_rules("X-Api-Key", "");
        struct ob_connector cfg = http_config();
        start_tls_recorder(rules, &cfg);
        struct ob_header_tpl hdr = {.name = "X-Api-Key", .secret_file = (char *)write_secret(API_KEY "\n")};
        HTTP(cfg)->headers.v = &hdr;
        HTTP(cfg)->headers.n = 1;
        void *c = new_connector(&cfg);
        struct ob_request req = {.method = "GET"};
        check_echoes(c, API_KEY, &req);

        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, OB_ELEMENTSOF(echo_shapes));
        for (size_t i = 0; i < n; i++)
                cr_assert_str_eq(ob_test_request_header(&q[i], "X-Api-Key"), API_KEY);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

#define REQ_SECRET "rq-7Hh2/Kk9+Ww4-Ee5Tt6Yy"

Test(http, a_request_secret_header_is_read_once_sent_and_never_echoed_back)
{
        _cleanup_free_ char *rules = echo_rules("X-Request-Token", "");
        struct ob_connector cfg = http_config();
        start_tls_recorder(rules, &cfg);
        void *c = new_connector(&cfg);
        const char *path = write_secret(REQ_SECRET "\n");
        struct ob_secret_header sh[] = {{"X-Request-Token", path}};
        struct ob_request req = {.method = "GET", .secret_headers = sh, .nsecret_headers = 1};
        _cleanup_free_ char *u = url("/first");
        req.url = u;
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        /* Cached: the file may go away (or change) once it has been read. */
        cr_assert_eq(unlink(path), 0);
        check_echoes(c, REQ_SECRET, &req);

        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 1 + OB_ELEMENTSOF(echo_shapes));
        for (size_t i = 0; i < n; i++)
                cr_assert_str_eq(ob_test_request_header(&q[i], "X-Request-Token"), REQ_SECRET);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, a_request_secret_header_replaces_the_connector_one_of_the_same_name)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->allow_insecure = true;
        struct ob_header_tpl hdr = {.name = "X-Api-Key", .secret_file = (char *)write_secret(API_KEY)};
        HTTP(cfg)->headers.v = &hdr;
        HTTP(cfg)->headers.n = 1;
        void *c = new_connector(&cfg);
        struct ob_secret_header sh[] = {{"x-api-key", write_secret(REQ_SECRET)}};
        _cleanup_free_ char *u = url("/both");
        struct ob_request req = {.method = "GET", .url = u, .secret_headers = sh, .nsecret_headers = 1};
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        req.secret_headers = NULL;
        req.nsecret_headers = 0;
        resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        size_t n;
        struct ob_test_request *q = requests(&n);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(ob_test_request_header(&q[0], "X-Api-Key"), REQ_SECRET);
        cr_assert_str_eq(ob_test_request_header(&q[1], "X-Api-Key"), API_KEY);
        ob_test_requests_free(q, n);
        ob_http_free(c);
}

Test(http, a_secret_header_value_with_a_control_character_is_refused)
{
        struct ob_connector cfg = http_config();
        struct ob_header_tpl hdr = {.name = "X-Api-Key", .secret_file = (char *)write_secret("abc\rX-Evil: 1\n")};
        HTTP(cfg)->headers.v = &hdr;
        HTTP(cfg)->headers.n = 1;
        void *c = (void *)&cfg;
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -EINVAL);
        cr_assert_eq(c, (void *)&cfg);
        hdr.secret_file = (char *)write_secret("tab\there");
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -EINVAL);
        hdr.secret_file = "/nonexistent/offboard/key";
        cr_assert_eq(ob_http_new(loop, &cfg, &c), -ENOENT);

        HTTP(cfg)->headers.n = 0;
        c = new_connector(&cfg);
        struct ob_secret_header sh[] = {{"X-Key", write_secret("a\x01b")}};
        struct ob_request req = {
                .method = "GET", .url = "https://127.0.0.1:1/", .secret_headers = sh, .nsecret_headers = 1};
        cr_assert_eq(ob_http_start(c, &req, on_done, NULL), -EINVAL);
        sh[0] = (struct ob_secret_header){"Bad Name", write_secret("fine")};
        cr_assert_eq(ob_http_start(c, &req, on_done, NULL), -EINVAL);
        cr_assert_eq(ob_loop_run(loop), 0); /* nothing was queued */
        ob_http_free(c);
}

static void expect_refused_over_http(struct ob_connector *cfg, const struct ob_secret_header *sh, size_t nsh)
{
        void *c = new_connector(cfg);
        _cleanup_free_ char *u = url("/plain");
        struct ob_request req = {
                .method = "POST", .url = u, .body = "{}", .body_len = 2, .secret_headers = sh, .nsecret_headers = nsh};
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, -OB_EINSECURE, "%d: %s", resp.result, resp.error);
        cr_assert_str_eq(resp.error,
                         "refusing to send credentials over plain http://; use https:// or set allow_insecure: true");
        cr_assert_eq(resp.status, 0);
        ob_http_free(c);
}

Test(http, credentials_never_go_over_plain_http_unless_allowed)
{
        start_recorder(NULL, false);
        struct ob_connector cfg = http_config();
        HTTP(cfg)->auth.type = "bearer";
        set_secret_file(&cfg, (char *)write_secret(TOKEN));
        expect_refused_over_http(&cfg, NULL, 0);

        HTTP(cfg)->auth.type = "basic";
        HTTP(cfg)->auth.username = "svc";
        expect_refused_over_http(&cfg, NULL, 0);

        HTTP(cfg)->auth.type = NULL;
        struct ob_header_tpl hdr = {.name = "X-Api-Key", .secret_file = (char *)write_secret(API_KEY)};
        HTTP(cfg)->headers.v = &hdr;
        HTTP(cfg)->headers.n = 1;
        expect_refused_over_http(&cfg, NULL, 0);

        HTTP(cfg)->headers.n = 0;
        struct ob_secret_header sh[] = {{"X-Request-Token", write_secret(REQ_SECRET)}};
        expect_refused_over_http(&cfg, sh, 1);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "a request reached the server");

        /* Without credentials plain http is fine; with allow_insecure too. */
        void *c = new_connector(&cfg);
        _cleanup_free_ char *u = url("/plain");
        struct ob_request req = {.method = "GET", .url = u};
        struct ob_response resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        ob_http_free(c);
        HTTP(cfg)->allow_insecure = true;
        HTTP(cfg)->headers.n = 1;
        c = new_connector(&cfg);
        resp = send_one(c, &req);
        cr_assert_eq(resp.result, 0, "%s", resp.error);
        ob_http_free(c);
        cr_assert_eq(ob_test_recorder_count(&rec), 2);
}
