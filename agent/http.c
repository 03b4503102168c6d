/* http.c: the HTTP connector, on libcurl's multi socket interface.
 *
 * One CURLM per connector instance, driven by the ob_loop: curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION); the loop calls curl_multi_socket_action() back.
 * Nothing here blocks and nothing here logs: every outcome is reported through
 * the request's done callback.
 *
 * Requests are copied by start() (the caller's strings may die as soon as it
 * returns). At most `concurrency` run at once; the others wait in FIFO order.
 * A request's duration_ms counts from the moment it starts running, not the
 * time it waited in the queue. A request's ok statuses are answers outside
 * 2xx that count as done (result 0), such as 404 for a delete.
 *
 * Secrets: the token or password is read from the auth: section's file in
 * new(), the values of the connector's secret headers (value_file:) too; a
 * request's own secret headers are read when a request first names their
 * file, and kept (one copy per path) until free(), which wipes them all. They
 * only ever go to curl (an Authorization or "Name: value" header, or
 * CURLOPT_PASSWORD); a value holding a control character is refused with
 * -EINVAL. Every response body is fed, as it arrives, through a scrubber
 * (scrub.h) that knows every
 * secret the instance holds (and base64("user:password") for basic auth, as
 * sent: with auth encoding: form, RFC 6749 section 2.3.1, both are
 * form-encoded first, and the encoded password is masked too):
 * the excerpt is its output, and curl's error text goes through the same
 * secrets, so a server that echoes a header back, whole, cut off or encoded,
 * cannot make a log line or the state store carry it. A request may also
 * ask for the whole body of the answer (ob_request.answer, bounded), for a
 * kind that must read it; that copy is not scrubbed.
 *
 * Transport: unless the connector sets allow_insecure, a request that carries
 * a credential (auth, or any secret header) may only use https://, enforced by
 * curl itself (CURLOPT_PROTOCOLS_STR), so a secret never crosses the network
 * in clear text even if configuration checks were bypassed. Such a request to
 * http:// fails with -OB_EINSECURE and an error text that says so.
 *
 * free() with requests still queued or running aborts them: their transfers
 * are removed from curl, their memory is released and their callbacks never
 * run. free() may be called from inside a done callback; the instance is then
 * released when that callback returns and no further callback runs.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "escape.h"
#include "http.h"
#include "loop.h"
#include "scrub.h"
#include "util.h"

#ifndef OFFBOARD_VERSION
#define OFFBOARD_VERSION "dev"
#endif

#define OB_HTTP_DEFAULT_TIMEOUT_MS 30000
#define OB_HTTP_MAX_QUEUE 65536          /* requests waiting for a slot */
#define OB_HTTP_MAX_HEADERS 100          /* caller headers per request */
#define OB_HTTP_MAX_URL 8192
#define OB_HTTP_MAX_BODY (16 * 1024 * 1024)
#define OB_HTTP_MAX_METHOD 16
#define OB_HTTP_MAX_SECRET_FILES 64 /* distinct value_file paths per instance */

static const char ob_http_insecure_text[] =
        "refusing to send credentials over plain http://; use https:// or set allow_insecure: true";


enum ob_http_auth_scheme { OB_HTTP_AUTH_NONE, OB_HTTP_AUTH_BEARER, OB_HTTP_AUTH_BASIC };

struct ob_http;

struct ob_http_req {
        struct ob_http *h;
        struct ob_http_req *next; /* in h->queued or h->finished */
        struct ob_http_req *rprev, *rnext; /* in h->running */
        CURL *easy;
        struct curl_slist *headers;
        ob_connector_done_fn done;
        void *userdata;
        int64_t started_ms;
        struct ob_scrub *scrub; /* the body goes through it; its output is the excerpt */
        bool https_only;        /* carries a credential: curl may only use https */
        bool plain_http;        /* ... and the URL says http:// */
        struct ob_http_answer *answer; /* the caller's, or NULL */
        long *ok_status;        /* statuses outside 2xx that count as done (copied) */
        size_t nok_status;
        char errbuf[CURL_ERROR_SIZE];
        struct ob_response resp;
};

struct ob_http_fifo {
        struct ob_http_req *head, *tail;
        size_t n;
};

/* A secret header value: name (connector-level) or path (per request). */
struct ob_http_secret {
        char *key;
        char *value; /* wiped on free */
};

struct ob_http {
        struct ob_loop *loop;
        CURLM *multi;
        struct ob_timer *timer;

        enum ob_http_auth_scheme auth;
        char *username;       /* basic: as sent (form-encoded with encoding: form) */
        char *secret;         /* as the file holds it; wiped on free */
        char *basic_password; /* basic with encoding: form: the secret form-encoded; wiped on free */
        char *ca_file;
        bool tls_verify;
        bool allow_insecure;
        struct ob_http_secret *headers; /* connector-level value_file headers: name, value */
        size_t nheaders;
        struct ob_http_secret *files; /* per-request value_file headers read so far: path, value */
        size_t nfiles;
        long timeout_ms;
        size_t concurrency;

        struct ob_http_fifo queued;
        struct ob_http_fifo finished;
        struct ob_http_req *running;
        size_t nrunning;

        /* Scrubbers' prototypes: each request's scrubber shares the forms
         * of the last one (protos[nprotos - 1]); a new one is derived when a
         * request named a secret file not read before (nfiles grew). Older
         * ones stay until free(): requests running may still use them. */
        struct ob_scrub **protos;
        size_t nprotos;
        size_t proto_nfiles; /* nfiles when the last one was made */
        /* Easy handles of finished requests, reset, for the next ones:
         * curl_easy_init and cleanup cost more than a reset. */
        CURL **idle;
        size_t nidle;

        int *fds; /* sockets curl asked the loop to watch */
        size_t nfds;
        size_t fds_alloc;

        unsigned depth; /* > 0 while a loop callback of ours runs */
        bool closing;   /* free() was called */
        bool destroying;
};

/* ---- curl_global_init, once ---- */

static pthread_once_t ob_http_once = PTHREAD_ONCE_INIT;
static CURLcode ob_http_global_rc;

static void ob_http_global_init(void)
{
        ob_http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static void ob_fifo_push(struct ob_http_fifo *f, struct ob_http_req *r)
{
        r->next = NULL;
        if (f->tail)
                f->tail->next = r;
        else
                f->head = r;
        f->tail = r;
        f->n++;
}

static struct ob_http_req *ob_fifo_pop(struct ob_http_fifo *f)
{
        struct ob_http_req *r = f->head;
        if (!r)
                return NULL;
        f->head = r->next;
        if (!f->head)
                f->tail = NULL;
        f->n--;
        r->next = NULL;
        return r;
}

static void ob_slist_wipe_free(struct curl_slist *l)
{
        for (struct curl_slist *i = l; i; i = i->next)
                if (i->data)
                        explicit_bzero(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

static bool ob_http_header_value_ok(const char *s)
{
        for (; *s; s++)
                if (*s == '\r' || *s == '\n')
                        return false;
        return true;
}

/* A secret value goes into a header line as is: no control character at all. */
static bool ob_http_secret_value_ok(const char *s)
{
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

static bool ob_http_header_name_ok(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c <= ' ' || c >= 0x7f || c == ':')
                        return false;
        }
        return true;
}

static bool ob_http_header_ok(const char *s)
{
        const char *colon = strchr(s, ':');
        if (!colon || colon == s)
                return false;
        for (const char *p = s; p < colon; p++) {
                unsigned char c = (unsigned char)*p;
                if (c <= ' ' || c >= 0x7f)
                        return false;
        }
        return ob_http_header_value_ok(colon + 1);
}

static bool ob_http_method_ok(const char *m)
{
        size_t n = m ? strlen(m) : 0;
        if (n == 0 || n > OB_HTTP_MAX_METHOD)
                return false;
        for (size_t i = 0; i < n; i++)
                if (m[i] < 'A' || m[i] > 'Z')
                        return false;
        return true;
}

static int ob_curl_errno(CURLcode c)
{
        return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* ---- requests ---- */

static void ob_http_req_release(struct ob_http_req *r)
{
        if (r->easy) {
                struct ob_http *h = r->h;
                if (h && !h->destroying && h->idle && h->nidle < h->concurrency) {
                        curl_easy_reset(r->easy);
                        h->idle[h->nidle++] = r->easy;
                } else {
                        curl_easy_cleanup(r->easy);
                }
                r->easy = NULL;
        }
        ob_slist_wipe_free(r->headers);
        r->headers = NULL;
        ob_scrub_free(r->scrub);
        r->scrub = NULL;
}

static void ob_http_req_free(struct ob_http_req *r)
{
        if (!r)
                return;
        ob_http_req_release(r);
        free(r->ok_status);
        free(r);
}

static size_t ob_http_on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct ob_http_req *r = userdata;
        size_t n = size * nmemb;
        /* Every byte goes through the scrubber until its output is full;
         * after that it drops what it gets at no cost. */
        ob_scrub_feed(r->scrub, ptr, n);
        if (r->answer) {
                struct ob_http_answer *a = r->answer;
                if (a->body.len + n > OB_HTTP_MAX_ANSWER) {
                        a->too_large = true;
                        return 0; /* curl stops the transfer */
                }
                if (ob_buf_add(&a->body, ptr, n) < 0)
                        return 0;
        }
        return n;
}

static int ob_http_add_header(struct curl_slist **list, const char *line)
{
        struct curl_slist *n = curl_slist_append(*list, line);
        if (!n)
                return -ENOMEM;
        *list = n;
        return 0;
}

/* Adds "name: prefix value". The line is built in one exact allocation
 * (no growing buffer leaving copies behind) and wiped: value may be a secret. */
static int ob_http_add_header3(struct curl_slist **list, const char *name, const char *prefix, const char *value)
{
        size_t n = strlen(name) + 2 + strlen(prefix) + strlen(value) + 1;
        char *line = malloc(n);
        if (!line)
                return -ENOMEM;
        snprintf(line, n, "%s: %s%s", name, prefix, value);
        int r = ob_http_add_header(list, line);
        explicit_bzero(line, n);
        free(line);
        return r;
}

static int ob_http_add_headerf(struct curl_slist **list, const char *name, const char *value)
{
        return ob_http_add_header3(list, name, "", value);
}

/* Reads a secret header value from its file, checks it and keeps it; the
 * value of a path read before is returned as it was then. */
static int ob_http_secret_file(struct ob_http *h, const char *path, const char **ret)
{
        for (size_t i = 0; i < h->nfiles; i++) {
                if (strcmp(h->files[i].key, path) == 0) {
                        *ret = h->files[i].value;
                        return 0;
                }
        }
        if (h->nfiles >= OB_HTTP_MAX_SECRET_FILES)
                return -OB_ELIMIT;
        struct ob_http_secret *f = realloc(h->files, (h->nfiles + 1) * sizeof(*f));
        if (!f)
                return -ENOMEM;
        h->files = f;
        char *value = NULL;
        int r = ob_read_secret_file(path, &value);
        if (r < 0)
                return r;
        if (!ob_http_secret_value_ok(value)) {
                ob_secret_free(value);
                return -EINVAL;
        }
        char *key = ob_strdup(path);
        if (!key) {
                ob_secret_free(value);
                return -ENOMEM;
        }
        h->files[h->nfiles++] = (struct ob_http_secret){key, value};
        *ret = value;
        return 0;
}

static bool ob_http_request_names(const struct ob_request *req, size_t from, const char *name)
{
        for (size_t i = from; i < req->nsecret_headers; i++)
                if (req->secret_headers[i].name && ob_streq_ci(req->secret_headers[i].name, name))
                        return true;
        return false;
}

/* Secret headers: the connector's own, unless the request names the same
 * header, then the request's, the last of several with one name winning. */
static int ob_http_add_secret_headers(struct ob_http *h, const struct ob_request *req, struct curl_slist **list)
{
        int r;
        if (req->nsecret_headers > OB_HTTP_MAX_HEADERS)
                return -OB_ELIMIT;
        if (req->nsecret_headers > 0 && !req->secret_headers)
                return -EINVAL;
        for (size_t i = 0; i < req->nsecret_headers; i++)
                if (!ob_http_header_name_ok(req->secret_headers[i].name) || !req->secret_headers[i].file)
                        return -EINVAL;
        for (size_t i = 0; i < h->nheaders; i++) {
                if (ob_http_request_names(req, 0, h->headers[i].key))
                        continue;
                if ((r = ob_http_add_headerf(list, h->headers[i].key, h->headers[i].value)) < 0)
                        return r;
        }
        for (size_t i = 0; i < req->nsecret_headers; i++) {
                const struct ob_secret_header *sh = &req->secret_headers[i];
                if (ob_http_request_names(req, i + 1, sh->name))
                        continue;
                const char *value;
                if ((r = ob_http_secret_file(h, sh->file, &value)) < 0)
                        return r;
                if ((r = ob_http_add_headerf(list, sh->name, value)) < 0)
                        return r;
        }
        return 0;
}

static int ob_http_build_headers(struct ob_http *h, const struct ob_request *req, struct curl_slist **ret)
{
        struct curl_slist *list = NULL;
        size_t n = 0;
        int r = 0;

        for (const char *const *p = req->headers; p && *p; p++) {
                if (++n > OB_HTTP_MAX_HEADERS) {
                        r = -OB_ELIMIT;
                        goto fail;
                }
                if (!ob_http_header_ok(*p)) {
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = ob_http_add_header(&list, *p)) < 0)
                        goto fail;
        }
        if (req->body) {
                const char *ct = req->content_type;
                if (ct && !ob_http_header_value_ok(ct)) {
                        r = -EINVAL;
                        goto fail;
                }
                /* "Content-Type:" with no value stops curl from adding its
                 * form-urlencoded default. */
                r = ct ? ob_http_add_headerf(&list, "Content-Type", ct) : ob_http_add_header(&list, "Content-Type:");
                if (r < 0)
                        goto fail;
        }
        if (req->idempotency_key) {
                if (!ob_http_header_value_ok(req->idempotency_key)) {
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = ob_http_add_headerf(&list, "Idempotency-Key", req->idempotency_key)) < 0)
                        goto fail;
        }
        if ((r = ob_http_add_secret_headers(h, req, &list)) < 0)
                goto fail;
        if (h->auth == OB_HTTP_AUTH_BEARER &&
            (r = ob_http_add_header3(&list, "Authorization", "Bearer ", h->secret)) < 0)
                goto fail;
        if ((r = ob_http_add_header(&list, "Expect:")) < 0)
                goto fail;
        *ret = list;
        return 0;
fail:
        ob_slist_wipe_free(list);
        return r;
}

/* A scrubber that knows every secret the instance holds. */
static int ob_http_scrub_proto(const struct ob_http *h, struct ob_scrub **ret)
{
        struct ob_scrub *s = NULL;
        int r = ob_scrub_new(OB_EXCERPT_MAX, &s);
        if (r < 0)
                return r;
        if (h->secret)
                r = ob_scrub_add_secret(s, h->secret, strlen(h->secret));
        if (r >= 0 && h->basic_password)
                r = ob_scrub_add_secret(s, h->basic_password, strlen(h->basic_password));
        if (r >= 0 && h->auth == OB_HTTP_AUTH_BASIC)
                r = ob_scrub_add_basic(s, h->username, h->basic_password ? h->basic_password : h->secret);
        for (size_t i = 0; r >= 0 && i < h->nheaders; i++)
                r = ob_scrub_add_secret(s, h->headers[i].value, strlen(h->headers[i].value));
        for (size_t i = 0; r >= 0 && i < h->nfiles; i++)
                r = ob_scrub_add_secret(s, h->files[i].value, strlen(h->files[i].value));
        if (r < 0) {
                ob_scrub_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* A request's scrubber: shares the forms of a prototype that knows every
 * secret read so far. */
static int ob_http_scrub_new(struct ob_http *h, struct ob_scrub **ret)
{
        if (h->nprotos == 0 || h->proto_nfiles != h->nfiles) {
                struct ob_scrub **l = realloc(h->protos, (h->nprotos + 1) * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                h->protos = l;
                int r = ob_http_scrub_proto(h, &l[h->nprotos]);
                if (r < 0)
                        return r;
                h->nprotos++;
                h->proto_nfiles = h->nfiles;
        }
        return ob_scrub_new_like(h->protos[h->nprotos - 1], OB_EXCERPT_MAX, ret);
}

#define OB_SETOPT(e, opt, val)                                    \
        do {                                                      \
                CURLcode _c = curl_easy_setopt((e), (opt), (val)); \
                if (_c != CURLE_OK) {                             \
                        r = ob_curl_errno(_c);                    \
                        goto fail;                                \
                }                                                 \
        } while (0)

static int ob_http_req_new(struct ob_http *h, const struct ob_request *req, ob_connector_done_fn done,
                           void *userdata, struct ob_http_req **ret)
{
        int r;
        if (!req || !done || !req->url || !ob_http_method_ok(req->method))
                return -EINVAL;
        if (strlen(req->url) > OB_HTTP_MAX_URL || (req->body && req->body_len > OB_HTTP_MAX_BODY))
                return -OB_ELIMIT;

        struct ob_http_req *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->h = h;
        q->done = done;
        q->userdata = userdata;
        q->answer = req->answer;
        if (q->answer)
                q->answer->too_large = false;
        if (req->nok_status > 0) {
                if (!req->ok_status || req->nok_status > 1000) {
                        r = -EINVAL;
                        goto fail;
                }
                q->ok_status = malloc(req->nok_status * sizeof(*q->ok_status));
                if (!q->ok_status) {
                        r = -ENOMEM;
                        goto fail;
                }
                memcpy(q->ok_status, req->ok_status, req->nok_status * sizeof(*q->ok_status));
                q->nok_status = req->nok_status;
        }

        /* Reads the request's secret header files, so the scrubber below
         * knows their values. */
        if ((r = ob_http_build_headers(h, req, &q->headers)) < 0)
                goto fail;
        if ((r = ob_http_scrub_new(h, &q->scrub)) < 0)
                goto fail;
        q->https_only =
                !h->allow_insecure && (h->auth != OB_HTTP_AUTH_NONE || h->nheaders > 0 || req->nsecret_headers > 0);
        /* curl takes a URL without a scheme as http. */
        q->plain_http = strncasecmp(req->url, "http://", 7) == 0 || !strstr(req->url, "://");

        CURL *e = q->easy = h->nidle > 0 ? h->idle[--h->nidle] : curl_easy_init();
        if (!e) {
                r = -ENOMEM;
                goto fail;
        }
        OB_SETOPT(e, CURLOPT_PRIVATE, q);
        OB_SETOPT(e, CURLOPT_ERRORBUFFER, q->errbuf);
        OB_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
        OB_SETOPT(e, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
        OB_SETOPT(e, CURLOPT_PROTOCOLS_STR, q->https_only ? "https" : "http,https");
#else
        OB_SETOPT(e, CURLOPT_PROTOCOLS,
                  q->https_only ? (long)CURLPROTO_HTTPS : (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        OB_SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
        OB_SETOPT(e, CURLOPT_USERAGENT, "offboard/" OFFBOARD_VERSION);
        OB_SETOPT(e, CURLOPT_HTTPHEADER, q->headers);
        OB_SETOPT(e, CURLOPT_WRITEFUNCTION, ob_http_on_write);
        OB_SETOPT(e, CURLOPT_WRITEDATA, q);
        OB_SETOPT(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
        OB_SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
        OB_SETOPT(e, CURLOPT_SSL_VERIFYPEER, h->tls_verify ? 1L : 0L);
        OB_SETOPT(e, CURLOPT_SSL_VERIFYHOST, h->tls_verify ? 2L : 0L);
        if (h->ca_file)
                OB_SETOPT(e, CURLOPT_CAINFO, h->ca_file);
        if (h->auth == OB_HTTP_AUTH_BASIC) {
                OB_SETOPT(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                OB_SETOPT(e, CURLOPT_USERNAME, h->username);
                OB_SETOPT(e, CURLOPT_PASSWORD, h->basic_password ? h->basic_password : h->secret);
        }

        /* A body goes through POSTFIELDS (copied by curl), which makes the
         * request a POST unless the method is set explicitly. PUT and PATCH
         * without a body still send Content-Length: 0. */
        const char *m = req->method;
        bool fields = req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
        if (fields) {
                OB_SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
                OB_SETOPT(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
                if (strcmp(m, "POST") != 0)
                        OB_SETOPT(e, CURLOPT_CUSTOMREQUEST, m);
        } else if (strcmp(m, "HEAD") == 0) {
                OB_SETOPT(e, CURLOPT_NOBODY, 1L);
        } else if (strcmp(m, "GET") != 0) {
                OB_SETOPT(e, CURLOPT_CUSTOMREQUEST, m);
        }

        *ret = q;
        return 0;
fail:
        ob_http_req_free(q);
        return r;
}

/* A status the action counts as done although it is not 2xx (404 or 410
 * for a delete: what it was to remove is gone already). */
static bool ob_http_ok_status(const struct ob_http_req *q, long status)
{
        for (size_t i = 0; i < q->nok_status; i++)
                if (q->ok_status[i] == status)
                        return true;
        return false;
}

/* Fills q->resp from the finished transfer and frees its curl resources. */
static void ob_http_req_complete(struct ob_http_req *q, CURLcode rc)
{
        struct ob_response *resp = &q->resp;
        long status = 0;
        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        resp->duration_ms = ob_loop_now_ms() - q->started_ms;
        /* Retry-After, in seconds or as an HTTP-date (curl turns both into
         * seconds from now); -1 when the answer has none. */
        curl_off_t ra = -1;
        resp->retry_after_s = curl_easy_getinfo(q->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0
                                      ? (int64_t)ra
                                      : (ra == 0 && status == 429 ? 0 : -1);
        resp->transport = rc != CURLE_OK;

        ob_scrub_finish(q->scrub, resp->excerpt, sizeof(resp->excerpt));

        if (q->answer && (q->answer->too_large || q->answer->body.oom)) {
                resp->result = -OB_EHTTP;
                snprintf(resp->error, sizeof(resp->error), "%s",
                         q->answer->too_large ? "the answer is larger than 1 MiB" : "out of memory for the answer");
        } else if (rc == CURLE_UNSUPPORTED_PROTOCOL && q->https_only && q->plain_http) {
                resp->result = -OB_EINSECURE;
                snprintf(resp->error, sizeof(resp->error), "%s", ob_http_insecure_text);
        } else if (rc != CURLE_OK) {
                resp->result = -OB_EHTTP;
                const char *msg = q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc);
                size_t n = strnlen(msg, CURL_ERROR_SIZE);
                if (ob_scrub_text(q->scrub, msg, n, resp->error, sizeof(resp->error)) < 0)
                        snprintf(resp->error, sizeof(resp->error), "%s (details withheld)", curl_easy_strerror(rc));
        } else if ((status >= 200 && status <= 299) || ob_http_ok_status(q, status)) {
                resp->result = 0;
                resp->error[0] = '\0';
        } else {
                resp->result = -OB_EHTTP;
                snprintf(resp->error, sizeof(resp->error), "HTTP %ld", status);
        }
        ob_http_req_release(q);
}

/* A request that could not be launched after it was accepted. */
static void ob_http_req_fail(struct ob_http_req *q, int err)
{
        q->resp.result = -OB_EHTTP;
        q->resp.status = 0;
        q->resp.duration_ms = 0;
        q->resp.retry_after_s = -1;
        q->resp.transport = true;
        q->resp.excerpt[0] = '\0';
        snprintf(q->resp.error, sizeof(q->resp.error), "cannot start the request: %s",
                 err == -ENOMEM ? "out of memory" : "curl refused the transfer");
        ob_http_req_release(q);
}

static void ob_http_running_add(struct ob_http *h, struct ob_http_req *q)
{
        q->rprev = NULL;
        q->rnext = h->running;
        if (h->running)
                h->running->rprev = q;
        h->running = q;
        h->nrunning++;
}

static void ob_http_running_del(struct ob_http *h, struct ob_http_req *q)
{
        if (q->rprev)
                q->rprev->rnext = q->rnext;
        else
                h->running = q->rnext;
        if (q->rnext)
                q->rnext->rprev = q->rprev;
        q->rprev = q->rnext = NULL;
        h->nrunning--;
}

static int ob_http_launch(struct ob_http *h, struct ob_http_req *q)
{
        q->started_ms = ob_loop_now_ms();
        CURLMcode mc = curl_multi_add_handle(h->multi, q->easy);
        if (mc != CURLM_OK)
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        ob_http_running_add(h, q);
        return 0;
}

/* Starts queued requests while there are free slots. */
static void ob_http_fill(struct ob_http *h)
{
        while (!h->closing && h->nrunning < h->concurrency && h->queued.head) {
                struct ob_http_req *q = ob_fifo_pop(&h->queued);
                int r = ob_http_launch(h, q);
                if (r < 0) {
                        ob_http_req_fail(q, r);
                        ob_fifo_push(&h->finished, q);
                }
        }
}

/* Moves finished transfers to h->finished. */
static void ob_http_collect(struct ob_http *h)
{
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(h->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *e = msg->easy_handle;
                CURLcode rc = msg->data.result;
                char *priv = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
                struct ob_http_req *q = (struct ob_http_req *)priv;
                curl_multi_remove_handle(h->multi, e); /* msg is invalid now */
                if (!q)
                        continue;
                ob_http_running_del(h, q);
                ob_http_req_complete(q, rc);
                ob_fifo_push(&h->finished, q);
        }
}

static void ob_http_destroy(struct ob_http *h);

/* Runs the done callbacks, then releases the instance if a callback freed it. */
static void ob_http_after(struct ob_http *h)
{
        ob_http_collect(h);
        ob_http_fill(h);
        while (!h->closing) {
                struct ob_http_req *q = ob_fifo_pop(&h->finished);
                if (!q)
                        break;
                q->done(&q->resp, q->userdata);
                ob_http_req_free(q);
        }
        if (--h->depth == 0 && h->closing)
                ob_http_destroy(h);
}

/* ---- glue between curl and the loop ---- */

static void ob_http_on_io(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)l;
        struct ob_http *h = userdata;
        int flags = 0;
        if (events & OB_IO_READ)
                flags |= CURL_CSELECT_IN;
        if (events & OB_IO_WRITE)
                flags |= CURL_CSELECT_OUT;
        if (events & OB_IO_ERROR)
                flags |= CURL_CSELECT_ERR;
        int running;
        h->depth++;
        curl_multi_socket_action(h->multi, fd, flags, &running);
        ob_http_after(h);
}

static void ob_http_on_timer(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct ob_http *h = userdata;
        h->timer = NULL; /* freed by the loop when we return */
        int running;
        h->depth++;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        ob_http_after(h);
}

static int ob_http_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
        (void)m;
        struct ob_http *h = userp;
        if (h->timer) {
                ob_loop_timer_cancel(h->loop, h->timer);
                h->timer = NULL;
        }
        if (timeout_ms < 0 || h->destroying)
                return 0;
        if (ob_loop_timer(h->loop, timeout_ms, ob_http_on_timer, h, &h->timer) < 0)
                return -1;
        return 0;
}

static void ob_http_untrack(struct ob_http *h, int fd)
{
        for (size_t i = 0; i < h->nfds; i++) {
                if (h->fds[i] == fd) {
                        h->fds[i] = h->fds[--h->nfds];
                        return;
                }
        }
}

static int ob_http_track(struct ob_http *h, int fd)
{
        for (size_t i = 0; i < h->nfds; i++)
                if (h->fds[i] == fd)
                        return 0;
        if (h->nfds == h->fds_alloc) {
                size_t n = h->fds_alloc ? h->fds_alloc * 2 : 8;
                int *fds = realloc(h->fds, n * sizeof(*fds));
                if (!fds)
                        return -ENOMEM;
                h->fds = fds;
                h->fds_alloc = n;
        }
        h->fds[h->nfds++] = fd;
        return 0;
}

static int ob_http_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
        (void)e;
        (void)socketp;
        struct ob_http *h = userp;
        unsigned events = 0;
        if (what == CURL_POLL_IN)
                events = OB_IO_READ;
        else if (what == CURL_POLL_OUT)
                events = OB_IO_WRITE;
        else if (what == CURL_POLL_INOUT)
                events = OB_IO_READ | OB_IO_WRITE;
        if (events == 0 || h->destroying) {
                ob_loop_io(h->loop, s, 0, NULL, NULL);
                ob_http_untrack(h, s);
                return 0;
        }
        if (ob_http_track(h, s) < 0)
                return -1;
        if (ob_loop_io(h->loop, s, events, ob_http_on_io, h) < 0)
                return -1;
        return 0;
}

/* ---- the connector interface ---- */

static void ob_http_secrets_free(struct ob_http_secret *l, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(l[i].key);
                ob_secret_free(l[i].value);
        }
        free(l);
}

static void ob_http_destroy(struct ob_http *h)
{
        h->destroying = true;
        struct ob_http_req *q;
        while ((q = h->running)) {
                ob_http_running_del(h, q);
                curl_multi_remove_handle(h->multi, q->easy);
                ob_http_req_free(q);
        }
        while ((q = ob_fifo_pop(&h->queued)))
                ob_http_req_free(q);
        while ((q = ob_fifo_pop(&h->finished)))
                ob_http_req_free(q);
        if (h->multi)
                curl_multi_cleanup(h->multi);
        if (h->timer)
                ob_loop_timer_cancel(h->loop, h->timer);
        /* Sockets curl did not hand back explicitly. */
        for (size_t i = 0; i < h->nfds; i++)
                ob_loop_io(h->loop, h->fds[i], 0, NULL, NULL);
        free(h->fds);
        for (size_t i = 0; i < h->nidle; i++)
                curl_easy_cleanup(h->idle[i]);
        free(h->idle);
        for (size_t i = 0; i < h->nprotos; i++)
                ob_scrub_free(h->protos[i]);
        free(h->protos);
        ob_secret_free(h->secret);
        ob_secret_free(h->basic_password);
        ob_http_secrets_free(h->headers, h->nheaders);
        ob_http_secrets_free(h->files, h->nfiles);
        free(h->username);
        free(h->ca_file);
        free(h);
}

void ob_http_free(void *c)
{
        struct ob_http *h = c;
        if (!h || h->closing)
                return;
        h->closing = true;
        if (h->depth > 0)
                return; /* released by ob_http_after() when the callback returns */
        ob_http_destroy(h);
}

int ob_http_form_credential(const char *value, char **ret)
{
        struct ob_buf b;
        ob_buf_init(&b);
        size_t n = strlen(value);
        /* Room for the worst case first: a buffer that grew would leave
         * pieces of the secret behind in freed memory. */
        int r = n > SIZE_MAX / 3 - 1 ? -ENOMEM : ob_buf_reserve(&b, 3 * n + 1);
        if (r == 0) {
                b.data[0] = '\0';
                r = ob_escape_query(&b, value, n);
        }
        if (r < 0) {
                ob_secret_free(b.data);
                return r == -ENOMEM ? r : -EINVAL;
        }
        *ret = b.data;
        return 0;
}

static int ob_http_parse_auth(const struct ob_http_connector *cfg, enum ob_http_auth_scheme *ret)
{
        if (!cfg->auth.type || ob_streq_ci(cfg->auth.type, "none"))
                *ret = OB_HTTP_AUTH_NONE;
        else if (ob_streq_ci(cfg->auth.type, "bearer"))
                *ret = OB_HTTP_AUTH_BEARER;
        else if (ob_streq_ci(cfg->auth.type, "basic"))
                *ret = OB_HTTP_AUTH_BASIC;
        else
                return -EINVAL;
        return 0;
}

/* The connector's value_file headers, read once. */
static int ob_http_read_headers(struct ob_http *h, const struct ob_http_connector *cfg)
{
        size_t n = 0;
        for (size_t i = 0; i < cfg->headers.n; i++)
                if (cfg->headers.v[i].secret_file)
                        n++;
        if (n == 0)
                return 0;
        if (n > OB_HTTP_MAX_HEADERS)
                return -OB_ELIMIT;
        h->headers = calloc(n, sizeof(*h->headers));
        if (!h->headers)
                return -ENOMEM;
        for (size_t i = 0; i < cfg->headers.n; i++) {
                const struct ob_header_tpl *t = &cfg->headers.v[i];
                if (!t->secret_file)
                        continue;
                if (!ob_http_header_name_ok(t->name))
                        return -EINVAL;
                struct ob_http_secret *s = &h->headers[h->nheaders];
                int r = ob_read_secret_file(t->secret_file, &s->value);
                if (r < 0)
                        return r;
                h->nheaders++; /* freed by the caller from here on */
                if (!ob_http_secret_value_ok(s->value))
                        return -EINVAL;
                if (!(s->key = ob_strdup(t->name)))
                        return -ENOMEM;
        }
        return 0;
}

int ob_http_new(struct ob_loop *loop, const struct ob_connector *k, void **ret)
{
        if (!loop || !k || !k->settings || k->timeout_ms < 0)
                return -EINVAL;
        const struct ob_http_connector *cfg = k->settings;
        enum ob_http_auth_scheme auth;
        int r = ob_http_parse_auth(cfg, &auth);
        if (r < 0)
                return r;
        const char *secret_file = auth == OB_HTTP_AUTH_BEARER ? cfg->auth.token_file : cfg->auth.password_file;
        if (auth != OB_HTTP_AUTH_NONE && !secret_file)
                return -EINVAL;
        bool form = auth == OB_HTTP_AUTH_BASIC && cfg->auth.encoding && strcmp(cfg->auth.encoding, "form") == 0;
        if (cfg->auth.encoding && !form && strcmp(cfg->auth.encoding, "none") != 0)
                return -EINVAL;
        /* Form-encoded, a ':' in the username is %3A: it cannot end it. */
        if (auth == OB_HTTP_AUTH_BASIC && (!cfg->auth.username || (!form && strchr(cfg->auth.username, ':'))))
                return -EINVAL;

        pthread_once(&ob_http_once, ob_http_global_init);
        if (ob_http_global_rc != CURLE_OK)
                return -OB_EHTTP;

        struct ob_http *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->loop = loop;
        h->auth = auth;
        h->tls_verify = cfg->tls_verify;
        h->allow_insecure = cfg->allow_insecure;
        int64_t t = k->timeout_ms ? k->timeout_ms : OB_HTTP_DEFAULT_TIMEOUT_MS;
        h->timeout_ms = t > LONG_MAX ? LONG_MAX : (long)t;
        h->concurrency = k->concurrency > 0 ? (size_t)k->concurrency : 1;
        h->idle = calloc(h->concurrency, sizeof(*h->idle)); /* none: no reuse */

        if (cfg->ca_file && !(h->ca_file = ob_strdup(cfg->ca_file))) {
                r = -ENOMEM;
                goto fail;
        }
        if (auth != OB_HTTP_AUTH_NONE) {
                if ((r = ob_read_secret_file(secret_file, &h->secret)) < 0)
                        goto fail;
                for (const char *p = h->secret; *p; p++) {
                        unsigned char c = (unsigned char)*p;
                        /* A bearer token goes into a header line as is. */
                        if (c < 0x20 || c == 0x7f || (auth == OB_HTTP_AUTH_BEARER && c == ' ')) {
                                r = -EINVAL;
                                goto fail;
                        }
                }
        }
        if (form) {
                /* RFC 6749 section 2.3.1: an OAuth client's id and secret
                 * are form-encoded before base64, and servers decode them. */
                if ((r = ob_http_form_credential(cfg->auth.username, &h->username)) < 0 ||
                    (r = ob_http_form_credential(h->secret, &h->basic_password)) < 0)
                        goto fail;
        } else if (auth == OB_HTTP_AUTH_BASIC && !(h->username = ob_strdup(cfg->auth.username))) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = ob_http_read_headers(h, cfg)) < 0)
                goto fail;

        h->multi = curl_multi_init();
        if (!h->multi) {
                r = -ENOMEM;
                goto fail;
        }
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, ob_http_curl_socket);
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, ob_http_curl_timer);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);

        *ret = h;
        return 0;
fail:
        ob_http_destroy(h);
        return r;
}

int ob_http_start(void *c, const struct ob_request *req, ob_connector_done_fn done, void *userdata)
{
        struct ob_http *h = c;
        if (!h || h->closing)
                return -EINVAL;
        if (h->nrunning >= h->concurrency && h->queued.n >= OB_HTTP_MAX_QUEUE)
                return -OB_ELIMIT;
        struct ob_http_req *q;
        int r = ob_http_req_new(h, req, done, userdata, &q);
        if (r < 0)
                return r;
        /* Slots are refilled before callbacks run, so a free slot means
         * nothing is waiting: FIFO order holds. Adding the handle only arms
         * a curl timer; the transfer itself starts on the loop. */
        if (h->nrunning < h->concurrency && !h->queued.head) {
                r = ob_http_launch(h, q);
                if (r < 0) {
                        ob_http_req_free(q);
                        return r;
                }
        } else {
                ob_fifo_push(&h->queued, q);
        }
        return 0;
}
