/* http_kind.c: the http connector kind without the network: its keys and
 * their rules, rendering a request and describing it. Sending is http.c's
 * (libcurl stays there). See http.h and connector.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "http.h"
#include "plan.h"
#include "report.h"
#include "template.h"
#include "util.h"

/* ---- keys ------------------------------------------------------------------ */

#define C(x) offsetof(struct ob_http_connector, x)
#define A(x) offsetof(struct ob_http_action, x)

const char *const ob_http_auth_encodings[] = {"none", "form", NULL};

static const struct ob_key_spec ob_http_auth_keys[] = {
        {.name = "type", .type = OB_KEY_STRING, .offset = C(auth.type), .required = true},
        {.name = "username", .type = OB_KEY_STRING, .offset = C(auth.username)},
        {.name = "token_file", .type = OB_KEY_PATH, .offset = C(auth.token_file)},
        {.name = "password_file", .type = OB_KEY_PATH, .offset = C(auth.password_file)},
        {.name = "encoding", .type = OB_KEY_CHOICE, .offset = C(auth.encoding), .choices = ob_http_auth_encodings},
        {.name = "token", .type = OB_KEY_SECRET},
        {.name = "password", .type = OB_KEY_SECRET},
        {NULL},
};

static const char ob_http_authorization_hint[] =
        "set credentials with the connector's auth: section, which reads them from a file";

static const struct ob_key_spec ob_http_connector_keys[] = {
        {.name = "base_url", .type = OB_KEY_STRING, .offset = C(base_url)},
        {.name = "auth", .type = OB_KEY_SECTION, .sub = ob_http_auth_keys},
        {.name = "ca_file", .type = OB_KEY_PATH, .offset = C(ca_file)},
        {.name = "tls_verify", .type = OB_KEY_BOOL, .offset = C(tls_verify), .def = "true"},
        {.name = "allow_insecure", .type = OB_KEY_BOOL, .offset = C(allow_insecure), .def = "false"},
        {.name = "headers",
         .type = OB_KEY_HEADERS,
         .offset = C(headers),
         .reject = "Authorization",
         .hint = ob_http_authorization_hint},
        {NULL},
};

static const char *const ob_http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

static const struct ob_key_spec ob_http_action_keys[] = {
        {.name = "method", .type = OB_KEY_CHOICE, .offset = A(method), .choices = ob_http_methods},
        {.name = "url", .type = OB_KEY_TEMPLATE, .offset = A(url), .required = true, .tpl = OB_TPL_URL},
        {.name = "headers",
         .type = OB_KEY_HEADERS,
         .offset = A(headers),
         .reject = "Authorization",
         .hint = ob_http_authorization_hint},
        {.name = "json", .type = OB_KEY_BODY, .offset = A(body), .tpl = OB_TPL_JSON},
        {.name = "form", .type = OB_KEY_BODY, .offset = A(body), .tpl = OB_TPL_FORM},
        {.name = "secret_body", .type = OB_KEY_BOOL, .offset = A(secret_body), .def = "false"},
        {.name = "ok_status",
         .type = OB_KEY_INT_LIST,
         .offset = A(ok_status),
         .min = 100,
         .max = 599,
         .hint = "HTTP statuses, such as [404, 410]"},
        {NULL},
};

#undef C
#undef A

/* ---- rules across keys ------------------------------------------------------ */

/* base_url and auth are checked each on its own. */
static int ob_http_check_connector(struct ob_config_check *ck, struct ob_connector *c)
{
        struct ob_http_connector *h = c->settings;
        int r, bad = 0;
        if (h->base_url) {
                char *u = h->base_url;
                if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                        r = ob_config_fail_connector(ck, c, "base_url",
                                                     "connectors.%s.base_url must start with http:// or https://",
                                                     c->name);
                else if (strchr(u, '{') || strchr(u, '?') || strchr(u, '#'))
                        r = ob_config_fail_connector(
                                ck, c, "base_url",
                                "connectors.%s.base_url must be a plain URL prefix (no templates, query or fragment)",
                                c->name);
                else
                        r = 0;
                if (r < 0 && !ob_config_check_go_on(ck, r, &bad))
                        return r;
                size_t n = strlen(u);
                while (r == 0 && n > 0 && u[n - 1] == '/')
                        u[--n] = '\0';
        }
        struct ob_http_auth *a = &h->auth;
        if (!a->type)
                return bad;
        if (strcmp(a->type, "bearer") == 0) {
                if (!a->token_file || a->password_file || a->username || a->encoding)
                        return ob_config_fail_connector(
                                ck, c, "auth", "connectors.%s.auth: bearer auth takes token_file (only)", c->name);
        } else if (strcmp(a->type, "basic") == 0) {
                if (!a->username || !a->password_file || a->token_file)
                        return ob_config_fail_connector(
                                ck, c, "auth", "connectors.%s.auth: basic auth takes username and password_file",
                                c->name);
        } else {
                return ob_config_fail_connector(ck, c, "auth",
                                                "connectors.%s.auth: unknown auth type '%s' (expected bearer or basic)",
                                                c->name, a->type);
        }
        return bad;
}

static int ob_http_check_action(struct ob_config_check *ck, struct ob_action *a)
{
        struct ob_http_action *h = a->settings;
        const struct ob_http_connector *k = a->connector->settings;
        if (!h->method) {
                h->method = strdup(h->body.tree ? "POST" : "GET");
                if (!h->method)
                        return -ENOMEM;
        }
        const char *u = ob_tpl_source(h->url);
        if (k->base_url) {
                if (u[0] != '/')
                        return ob_config_fail_action(
                                ck, a, "url",
                                "actions.%s.url must start with '/' (it is appended to the connector's base_url)",
                                a->name);
        } else if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
                return ob_config_fail_action(
                        ck, a, "url", "actions.%s.url must be an http:// or https:// URL (the connector has no base_url)",
                        a->name);
        } else {
                /* The scheme and host are literal: a value can only land in the path or query. */
                const char *host = strstr(u, "://") + 3;
                const char *brace = strstr(u, "{{");
                const char *slash = strchr(host, '/');
                if (brace && (!slash || brace < slash))
                        return ob_config_fail_action_at(ck, a, "url", (size_t)(brace - u),
                                                        "actions.%s.url: templates may not choose the host; use a "
                                                        "fixed host",
                                                        a->name);
        }
        return 0;
}

static bool ob_http_has_secret_header(const struct ob_header_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].secret_file)
                        return true;
        return false;
}

/* Credentials never travel over plain http:// unless allow_insecure: says
 * so: the connector's auth:, or a value_file header on it or on an action
 * that uses it. */
static int ob_http_check_uses(struct ob_config_check *ck, const struct ob_config *cfg, const struct ob_connector *c)
{
        const struct ob_http_connector *k = c->settings;
        if (k->allow_insecure)
                return 0;
        bool creds = k->auth.type || ob_http_has_secret_header(&k->headers);
        for (size_t j = 0; !creds && j < cfg->nactions; j++)
                creds = cfg->actions[j].connector == c &&
                        ob_http_has_secret_header(&((const struct ob_http_action *)cfg->actions[j].settings)->headers);
        if (!creds)
                return 0;
        if (k->base_url) {
                if (strncmp(k->base_url, "http://", 7) == 0)
                        return ob_config_fail_connector(ck, c, "base_url",
                                                        "connectors.%s.base_url: the connector sends credentials, "
                                                        "which would cross the network in clear text over http://; "
                                                        "use https:// or set allow_insecure: true",
                                                        c->name);
                return 0;
        }
        /* Each action that would send them is said. */
        int r, bad = 0;
        for (size_t j = 0; j < cfg->nactions; j++) {
                const struct ob_action *a = &cfg->actions[j];
                if (a->connector != c)
                        continue;
                const struct ob_http_action *h = a->settings;
                if (strncmp(ob_tpl_source(h->url), "http://", 7) == 0 &&
                    !ob_config_check_go_on(ck,
                                           r = ob_config_fail_action(
                                                   ck, a, "url",
                                                   "actions.%s.url: connector '%s' sends credentials, which would "
                                                   "cross the network in clear text over http://; use https:// or "
                                                   "set allow_insecure: true on the connector",
                                                   a->name, c->name),
                                           &bad))
                        return r;
        }
        return bad;
}

static bool ob_http_tls_unverified(const struct ob_connector *c)
{
        return !((const struct ob_http_connector *)c->settings)->tls_verify;
}

/* ---- rendering -------------------------------------------------------------- */

static void ob_http_free_rendered(void *p)
{
        struct ob_http_rendered *q = p;
        if (!q)
                return;
        free(q->method);
        free(q->url);
        ob_strv_free(q->headers);
        free(q->secret_headers);
        free(q->body);
        free(q);
}

/* Appends a line to a NULL-terminated list. Not _unique_: two header lines
 * of one name are legal. Takes line. */
static int ob_http_add_line(char ***list, char *line)
{
        size_t n = 0;
        while (*list && (*list)[n])
                n++;
        char **nl = realloc(*list, (n + 2) * sizeof(*nl));
        if (!nl) {
                free(line);
                return -ENOMEM;
        }
        nl[n] = line;
        nl[n + 1] = NULL;
        *list = nl;
        return 0;
}

static int ob_http_render_headers(const struct ob_header_list *l, ob_tpl_lookup_fn lookup, void *ud,
                                  struct ob_step *s, struct ob_http_rendered *q)
{
        for (size_t i = 0; i < l->n; i++) {
                const struct ob_header_tpl *t = &l->v[i];
                if (t->secret_file) {
                        struct ob_secret_header *n = realloc(q->secret_headers, (q->nsecret_headers + 1) * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        q->secret_headers = n;
                        n[q->nsecret_headers++] = (struct ob_secret_header){t->name, t->secret_file};
                        continue;
                }
                struct ob_buf b;
                char *h = NULL;
                ob_buf_init(&b);
                int r = ob_buf_printf(&b, "%s: ", t->name);
                if (r == 0)
                        r = ob_tpl_render(t->value, lookup, ud, &b);
                if (r == -OB_ETEMPLATE)
                        r = ob_step_render_error(s, "header %s: a value holds a line break or control character",
                                                 t->name);
                else if (r == 0)
                        r = ob_buf_steal(&b, &h);
                ob_buf_free(&b);
                if (r == 0 && h)
                        r = ob_http_add_line(&q->headers, h);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ob_http_render(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *ud, struct ob_step *s)
{
        const struct ob_http_action *ha = a->settings;
        const struct ob_http_connector *hc = a->connector->settings;
        struct ob_http_rendered *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        s->rendered = q;
        q->method = strdup(ha->method);
        if (!q->method)
                return -ENOMEM;

        struct ob_buf b;
        int r = 0;
        ob_buf_init(&b);
        if (hc->base_url)
                r = ob_buf_adds(&b, hc->base_url);
        if (r == 0)
                r = ob_tpl_render(ha->url, lookup, ud, &b);
        if (r == -OB_ETEMPLATE)
                r = ob_step_render_error(s, "url: a value is empty or cannot be placed safely in %s",
                                         ob_tpl_source(ha->url));
        else if (r == 0)
                r = ob_buf_steal(&b, &q->url);
        ob_buf_free(&b);
        if (r < 0)
                return r;

        if ((r = ob_http_render_headers(&hc->headers, lookup, ud, s, q)) < 0 ||
            (r = ob_http_render_headers(&ha->headers, lookup, ud, s, q)) < 0)
                return r;

        if (ha->body.tree) {
                ob_buf_init(&b);
                if (ha->body.context == OB_TPL_JSON) {
                        q->content_type = "application/json";
                        r = ob_json_tpl_render(ha->body.tree, lookup, ud, &b);
                } else {
                        q->content_type = "application/x-www-form-urlencoded";
                        r = ob_json_tpl_render_form(ha->body.tree, lookup, ud, &b);
                }
                q->body_len = b.len;
                if (r == -OB_ETEMPLATE)
                        r = ob_step_render_error(s, "body: a value is not valid UTF-8");
                else if (r == 0)
                        r = ob_buf_steal(&b, &q->body);
                ob_buf_free(&b);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- reports ---------------------------------------------------------------- */

/* The connector's own Authorization header, as reports show it. */
static const char *ob_http_auth_display(const struct ob_connector *k)
{
        const struct ob_http_connector *h = k->settings;
        if (!h->auth.type)
                return NULL;
        return strcmp(h->auth.type, "bearer") == 0 ? "Bearer " OB_MASK : "Basic " OB_MASK;
}

static void ob_http_headline_text(const struct ob_step *s, FILE *f)
{
        const struct ob_http_rendered *q = s->rendered;
        if (q)
                ob_report_printf(f, "  %s %s", q->method, q->url ? q->url : "");
}

static void ob_http_describe_text(const struct ob_step *s, FILE *f)
{
        const struct ob_http_rendered *q = s->rendered;
        const char *auth = ob_http_auth_display(s->action->connector);
        if (auth)
                ob_report_printf(f, "       Authorization: %s\n", auth);
        for (size_t h = 0; q && q->headers && q->headers[h]; h++)
                ob_report_printf(f, "       %s\n", q->headers[h]);
        for (size_t h = 0; q && h < q->nsecret_headers; h++)
                ob_report_printf(f, "       %s: " OB_MASK "\n", q->secret_headers[h].name);
        ob_report_printf(f, "       Idempotency-Key: %s\n", s->idempotency_key);
        const struct ob_http_action *ha = s->action->settings;
        if (q && q->body && ha->secret_body)
                ob_report_printf(f, "       body: " OB_MASK " (secret_body: %zu bytes)\n", q->body_len);
        else if (q && q->body)
                ob_report_printf(f, "       body: %s\n", q->body);
}

static void ob_http_describe_json(const struct ob_step *s, struct ob_report_json *j)
{
        static const struct ob_http_rendered none = {0};
        const struct ob_http_rendered *q = s->rendered ? s->rendered : &none;
        ob_report_json_string(j, "method", q->method);
        ob_report_json_string(j, "url", q->url);
        ob_report_json_list_begin(j, "headers");
        const char *auth = ob_http_auth_display(s->action->connector);
        if (auth) {
                char line[64];
                snprintf(line, sizeof(line), "Authorization: %s", auth);
                ob_report_json_list_item(j, line);
        }
        for (size_t h = 0; q->headers && q->headers[h]; h++)
                ob_report_json_list_item(j, q->headers[h]);
        for (size_t h = 0; h < q->nsecret_headers; h++)
                ob_report_json_list_masked(j, q->secret_headers[h].name);
        ob_report_json_list_end(j);
        ob_report_json_string(j, "content_type", q->content_type);
        /* A body with a secret from the directory (secret_body) is shown as
         * the masked value, like a value_file: header. */
        const struct ob_http_action *ha = s->action->settings;
        ob_report_json_string(j, "body", q->body && ha->secret_body ? OB_MASK : q->body);
        ob_report_json_string(j, "idempotency_key", s->idempotency_key);
}

/* ---- execution -------------------------------------------------------------- */

static int ob_http_kind_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata)
{
        const struct ob_http_rendered *q = s->rendered;
        const struct ob_http_action *ha = s->action->settings;
        if (!q)
                return -EINVAL;
        struct ob_request req = {
                .method = q->method,
                .url = q->url,
                .headers = (const char *const *)q->headers,
                .content_type = q->content_type,
                .body = q->body,
                .body_len = q->body_len,
                .idempotency_key = s->idempotency_key,
                .secret_headers = q->secret_headers,
                .nsecret_headers = q->nsecret_headers,
                .ok_status = ha->ok_status.v,
                .nok_status = ha->ok_status.n,
        };
        return ob_http_start(c, &req, done, userdata);
}

const struct ob_connector_kind ob_http_kind = {
        .name = "http",
        .connector_keys = ob_http_connector_keys,
        .connector_size = sizeof(struct ob_http_connector),
        .action_keys = ob_http_action_keys,
        .action_size = sizeof(struct ob_http_action),
        .check_connector = ob_http_check_connector,
        .check_action = ob_http_check_action,
        .check_uses = ob_http_check_uses,
        .tls_unverified = ob_http_tls_unverified,
        .render = ob_http_render,
        .free_rendered = ob_http_free_rendered,
        .headline_text = ob_http_headline_text,
        .describe_text = ob_http_describe_text,
        .describe_json = ob_http_describe_json,
        .new = ob_http_new,
        .start = ob_http_kind_start,
        .free = ob_http_free,
};
