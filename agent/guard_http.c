/* guard_http.c: connector guards: ask an endpoint, judge its answer. See
 * guard_http.h. Requests go through http.c (libcurl stays there); the
 * answer's JSON is read with jansson, as scim.c reads its answers.
 */
#define _GNU_SOURCE
#include "guard_http.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "http.h"
#include "plan.h"
#include "template.h"
#include "util.h"

/* A loop that gives up this many times in a row without an answer coming
 * (nothing left to wait on) ends the wait: what is not answered holds. */
#define OB_GUARD_HTTP_IDLE_RUNS 100

/* One guard's question about one account, and its answer. */
struct ask {
        struct ob_guard_http *q;
        const struct ob_account *a; /* borrowed while the request is made */
        char *id;                   /* a's, the answer's key */
        size_t gi;                  /* the guard, in c->guards */
        bool done;
        char *reason;                /* done: NULL (clear) or why it holds */
        char *url;                   /* in flight: what was asked, for the reason */
        struct ob_http_answer body;  /* in flight */
        bool in_flight;
};

/* A connector the guards ask through, made at its first use in a pass. */
struct conn {
        void *h;  /* ob_http_new's */
        int err;  /* why it could not be made (0: not tried yet, or made) */
        bool tried;
};

struct ob_guard_http {
        const struct ob_config *c;
        struct ob_loop *loop;
        const int *stop;
        struct conn *conns; /* by index in c->connectors */
        struct ask **v;     /* sorted by (account id, guard) outside ob_guard_http_ask */
        size_t n, cap;
        size_t pending; /* requests in flight */
        bool waiting;   /* ob_guard_http_ask runs the loop */
        bool oom;       /* a callback ran out of memory */
};

int ob_guard_http_new(const struct ob_config *c, struct ob_loop *loop, const int *stop, struct ob_guard_http **ret)
{
        struct ob_guard_http *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->c = c;
        q->loop = loop;
        q->stop = stop;
        q->conns = calloc(c->nconnectors ? c->nconnectors : 1, sizeof(*q->conns));
        if (!q->conns) {
                free(q);
                return -ENOMEM;
        }
        *ret = q;
        return 0;
}

static void ask_free(struct ask *w)
{
        if (!w)
                return;
        free(w->id);
        free(w->reason);
        free(w->url);
        ob_buf_free(&w->body.body);
        free(w);
}

/* Closes the connectors: requests in flight are dropped without their
 * callbacks (http.h). */
static void conns_close(struct ob_guard_http *q)
{
        for (size_t i = 0; i < q->c->nconnectors; i++) {
                if (q->conns[i].h)
                        ob_http_free(q->conns[i].h);
                q->conns[i] = (struct conn){0};
        }
}

void ob_guard_http_forget(struct ob_guard_http *q)
{
        if (!q)
                return;
        for (size_t i = 0; i < q->n; i++)
                ask_free(q->v[i]);
        q->n = 0;
}

void ob_guard_http_free(struct ob_guard_http *q)
{
        if (!q)
                return;
        conns_close(q);
        ob_guard_http_forget(q);
        free(q->v);
        free(q->conns);
        free(q);
}

/* ---- the request ------------------------------------------------------------ */

/* The account's own fields (config.c refuses any other in a guard's url). */
static const char *lookup(const char *field, void *ud)
{
        const struct ob_guard_http *q = ((void **)ud)[0];
        const struct ob_account *a = ((void **)ud)[1];
        if (strncmp(field, "account.", 8) != 0)
                return NULL;
        return ob_account_field(&q->c->directory, a, field + 8);
}

/* The connector's headers for a, into *lines ("Name: value", NULL-
 * terminated) and *secrets (value_file: ones, which http.c reads). 0,
 * -ENOMEM, or -OB_ETEMPLATE with *bad the header's name. */
static int render_headers(const struct ob_header_list *l, void *ud, char ***lines, struct ob_secret_header **secrets,
                          size_t *nsecrets, const char **bad)
{
        size_t nl = 0;
        *lines = calloc(l->n + 1, sizeof(char *));
        *secrets = calloc(l->n ? l->n : 1, sizeof(**secrets));
        *nsecrets = 0;
        if (!*lines || !*secrets)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const struct ob_header_tpl *t = &l->v[i];
                if (t->secret_file) {
                        (*secrets)[(*nsecrets)++] = (struct ob_secret_header){t->name, t->secret_file};
                        continue;
                }
                struct ob_buf b;
                ob_buf_init(&b);
                int r = ob_buf_printf(&b, "%s: ", t->name);
                if (r == 0)
                        r = ob_tpl_render(t->value, lookup, ud, &b);
                if (r == 0)
                        r = ob_buf_steal(&b, &(*lines)[nl++]);
                ob_buf_free(&b);
                if (r == -OB_ETEMPLATE)
                        *bad = t->name;
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool listed(const struct ob_int_list *l, long status)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i] == status)
                        return true;
        return false;
}

int ob_guard_http_judge(const struct ob_guard *g, const char *url, const struct ob_response *resp,
                        const struct ob_http_answer *ans, char **reason)
{
        int n;
        if (ans->too_large)
                n = asprintf(reason, "cannot ask: GET %s: the answer is larger than 1 MiB", url);
        else if (ans->body.oom)
                return -ENOMEM;
        else if (resp->transport || resp->status == 0)
                n = asprintf(reason, "cannot ask: GET %s: %s", url, resp->error[0] ? resp->error : "no answer");
        else if (listed(&g->block_status, resp->status))
                n = asprintf(reason, "GET %s answered HTTP %ld", url, resp->status);
        else if (listed(&g->clear_status, resp->status))
                return 0;
        else if (resp->status < 200 || resp->status > 299)
                n = asprintf(reason, "cannot ask: GET %s answered HTTP %ld", url, resp->status);
        else if (!g->json)
                return 0;
        else {
                json_error_t err;
                /* jansson reads up to a NUL byte and stops; JSON text has none. */
                json_t *doc = ans->body.len && memchr(ans->body.data, '\0', ans->body.len)
                                      ? NULL
                                      : json_loadb(ans->body.data ? ans->body.data : "", ans->body.len, 0, &err);
                if (!doc)
                        return asprintf(reason, "cannot read the answer to GET %s: not JSON", url) < 0 ? -ENOMEM : 1;
                /* The dotted path, member by member. */
                json_t *at = doc;
                const char *p = g->json;
                while (at && *p) {
                        const char *dot = strchr(p, '.');
                        size_t len = dot ? (size_t)(dot - p) : strlen(p);
                        at = json_is_object(at) ? json_object_getn(at, p, len) : NULL;
                        p += len + (dot ? 1 : 0);
                }
                if (json_is_array(at) || json_is_integer(at)) {
                        long long v = json_is_array(at) ? (long long)json_array_size(at) : (long long)json_integer_value(at);
                        n = v > g->json_above ? asprintf(reason, "GET %s: %s is %lld, above %lld", url, g->json, v,
                                                         (long long)g->json_above)
                                              : 0;
                } else if (json_is_real(at)) {
                        double v = json_real_value(at);
                        n = v > (double)g->json_above ? asprintf(reason, "GET %s: %s is %g, above %lld", url, g->json,
                                                                 v, (long long)g->json_above)
                                                      : 0;
                } else {
                        n = asprintf(reason, "cannot read the answer to GET %s: no number or list at %s", url,
                                     g->json);
                }
                json_decref(doc);
                if (n == 0)
                        return 0;
        }
        if (n < 0) {
                *reason = NULL;
                return -ENOMEM;
        }
        return 1;
}

static void on_answer(const struct ob_response *resp, void *ud)
{
        struct ask *w = ud;
        struct ob_guard_http *q = w->q;
        const struct ob_guard *g = &q->c->guards[w->gi];
        if (ob_guard_http_judge(g, w->url, resp, &w->body, &w->reason) < 0)
                q->oom = true;
        w->done = true;
        w->in_flight = false;
        ob_buf_free(&w->body.body);
        q->pending--;
        if (q->pending == 0 && q->waiting)
                ob_loop_stop(q->loop);
}

/* The connector instance of k, made at its first use; NULL with *err. */
static void *conn_of(struct ob_guard_http *q, const struct ob_connector *k, int *err)
{
        struct conn *cn = &q->conns[k - q->c->connectors];
        if (!cn->tried) {
                cn->tried = true;
                cn->err = ob_http_new(q->loop, k, &cn->h);
                if (cn->err < 0)
                        cn->h = NULL;
        }
        *err = cn->err;
        return cn->h;
}

/* Sends w's request, or gives w its reason at once. 0 or -ENOMEM. */
static int start(struct ob_guard_http *q, struct ask *w)
{
        const struct ob_guard *g = &q->c->guards[w->gi];
        const struct ob_http_connector *hc = g->connector->settings;
        void *ud[2] = {q, (void *)w->a};
        struct ob_buf b;
        char **lines = NULL;
        struct ob_secret_header *secrets = NULL;
        size_t nsecrets = 0;
        const char *bad = NULL;
        int n = 0;
        ob_buf_init(&b);
        int r = ob_buf_adds(&b, hc->base_url);
        if (r == 0)
                r = ob_tpl_render(g->url, lookup, ud, &b);
        if (r == -OB_ETEMPLATE) {
                n = asprintf(&w->reason, "cannot ask: url: a value is empty or cannot be placed safely in %s",
                             ob_tpl_source(g->url));
                goto given;
        }
        if (r < 0 || (r = ob_buf_steal(&b, &w->url)) < 0)
                goto out;
        r = render_headers(&hc->headers, ud, &lines, &secrets, &nsecrets, &bad);
        if (r == -OB_ETEMPLATE) {
                n = asprintf(&w->reason, "cannot ask: GET %s: header %s: a value holds a line break or control "
                                         "character",
                             w->url, bad);
                goto given;
        }
        if (r < 0)
                goto out;
        int err = 0;
        void *h = conn_of(q, g->connector, &err);
        if (!h) {
                n = asprintf(&w->reason, "cannot ask: connector %s cannot start: %s", g->connector->name,
                             err == -ENOMEM ? "out of memory" : ob_strerror(err));
                goto given;
        }
        ob_buf_init(&w->body.body);
        struct ob_request req = {
                .method = "GET",
                .url = w->url,
                .headers = (const char *const *)lines,
                .secret_headers = secrets,
                .nsecret_headers = nsecrets,
                .answer = &w->body,
        };
        r = ob_http_start(h, &req, on_answer, w);
        if (r == 0) {
                w->in_flight = true;
                q->pending++;
                goto out;
        }
        if (r == -ENOMEM)
                goto out;
        n = asprintf(&w->reason, "cannot ask: GET %s: %s", w->url, ob_strerror(r));
given:
        r = 0;
        w->done = true;
        if (n < 0) {
                w->reason = NULL;
                r = -ENOMEM;
        }
out:
        ob_buf_free(&b);
        ob_strv_free(lines);
        free(secrets);
        return r;
}

/* ---- the answers ------------------------------------------------------------ */

static int cmp_key(const char *id, size_t gi, const struct ask *w)
{
        int c = strcmp(id, w->id);
        return c ? c : gi < w->gi ? -1 : gi > w->gi ? 1 : 0;
}

static int cmp_ask(const void *x, const void *y)
{
        const struct ask *a = *(struct ask *const *)x, *b = *(struct ask *const *)y;
        return cmp_key(a->id, a->gi, b);
}

/* Among the sorted answers v[0..n). */
static struct ask *find(const struct ob_guard_http *q, size_t n, size_t gi, const struct ob_account *a)
{
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = cmp_key(a->id, gi, q->v[mid]);
                if (c == 0)
                        return q->v[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* Waits on the loop for every request in flight; what a signal (or a
 * loop with nothing left to wait on) leaves unanswered holds. */
static void wait_all(struct ob_guard_http *q)
{
        const char *why = NULL;
        size_t idle = 0;
        q->waiting = true;
        while (q->pending > 0) {
                if (q->stop && *q->stop) {
                        why = "the pass was interrupted";
                        break;
                }
                size_t before = q->pending;
                int k = ob_loop_run(q->loop);
                if (k < 0) {
                        why = "the event loop failed";
                        break;
                }
                idle = q->pending == before ? idle + 1 : 0;
                if (idle >= OB_GUARD_HTTP_IDLE_RUNS) {
                        why = "the answer never came";
                        break;
                }
        }
        q->waiting = false;
        if (q->pending == 0)
                return;
        /* Dropped without their callbacks; the next ask makes them anew. */
        conns_close(q);
        q->pending = 0;
        for (size_t i = 0; i < q->n; i++) {
                struct ask *w = q->v[i];
                if (!w->in_flight)
                        continue;
                w->in_flight = false;
                w->done = true;
                ob_buf_free(&w->body.body);
                if (asprintf(&w->reason, "not asked: GET %s: %s", w->url, why) < 0) {
                        w->reason = NULL;
                        q->oom = true;
                }
        }
}

int ob_guard_http_ask(struct ob_guard_http *q, const struct ob_account *const *accounts, size_t n)
{
        const struct ob_config *c = q->c;
        size_t first = q->n;
        int r = 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                for (size_t gi = 0; r == 0 && gi < c->nguards; gi++) {
                        /* Asked once per window: a window names each account once. */
                        if (c->guards[gi].kind != OB_GUARD_CONNECTOR || !accounts[i]->id ||
                            find(q, first, gi, accounts[i]))
                                continue;
                        if (q->n == q->cap) {
                                size_t cap = q->cap ? q->cap * 2 : 64;
                                struct ask **nv = cap > SIZE_MAX / sizeof(*nv) ? NULL : realloc(q->v, cap * sizeof(*nv));
                                if (!nv) {
                                        r = -ENOMEM;
                                        break;
                                }
                                q->v = nv;
                                q->cap = cap;
                        }
                        struct ask *w = calloc(1, sizeof(*w));
                        if (!w) {
                                r = -ENOMEM;
                                break;
                        }
                        *w = (struct ask){.q = q, .a = accounts[i], .gi = gi};
                        q->v[q->n++] = w;
                        r = (w->id = strdup(accounts[i]->id)) ? start(q, w) : -ENOMEM;
                }
        }
        /* Even after a failure: what was sent is waited for, then dropped. */
        wait_all(q);
        if (q->n > 1)
                qsort(q->v, q->n, sizeof(*q->v), cmp_ask);
        if (q->oom)
                r = -ENOMEM;
        q->oom = false;
        return r;
}

int ob_guard_http_verdict(struct ob_guard_http *q, size_t gi, const struct ob_account *a, char **reason)
{
        *reason = NULL;
        struct ask *w = a->id ? find(q, q->n, gi, a) : NULL;
        if (!w && a->id) {
                int r = ob_guard_http_ask(q, &a, 1);
                if (r < 0)
                        return r;
                w = find(q, q->n, gi, a);
        }
        if (!w)
                return asprintf(reason, "not asked: the account has no id") < 0 ? -ENOMEM : 1;
        if (!w->reason)
                return 0;
        return (*reason = strdup(w->reason)) ? 1 : -ENOMEM;
}
