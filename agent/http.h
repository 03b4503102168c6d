/* http.h: the http connector kind.
 *
 * http_kind.c holds what needs no network: the keys of an http connector and
 * of its actions, their checks, rendering a request and describing it in a
 * report. http.c sends requests with libcurl (the only file that uses it).
 * Both are reached through ob_http_kind (connector.h); the structs below are
 * for them and for tests.
 */
#ifndef OB_HTTP_H
#define OB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "connector.h"
#include "loop.h"

/* connectors.X.auth */
struct ob_http_auth {
        char *type;          /* NULL (none), "bearer" or "basic" */
        char *username;      /* basic */
        char *token_file;    /* bearer */
        char *password_file; /* basic */
        char *encoding;      /* basic: NULL or "none" (as written), or "form": username and
                              * password each application/x-www-form-urlencoded before base64,
                              * as RFC 6749 section 2.3.1 wants of an OAuth client */
};

/* The values of auth encoding (http_kind.c; the scim kind's auth takes it too). */
extern const char *const ob_http_auth_encodings[];

/* connectors.X for type: http (ob_connector.settings) */
struct ob_http_connector {
        char *base_url; /* prefix for action URLs, no trailing '/'; no templates */
        struct ob_http_auth auth;
        char *ca_file;
        bool tls_verify;
        bool allow_insecure; /* credentials (auth, value_file headers) over plain http:// */
        struct ob_header_list headers;
};

/* actions.X of an http connector (ob_action.settings) */
struct ob_http_action {
        char *method;
        struct ob_tpl *url; /* path segments and query escaped by position */
        struct ob_header_list headers;
        struct ob_body_tpl body;    /* json: or form: */
        struct ob_int_list ok_status; /* HTTP statuses outside 2xx that count as done (404, 410 on a delete) */
        bool secret_body; /* the body carries a secret from the directory (a token): reports show *** */
};

/* A header whose value is a secret (value_file:): the connector reads the
 * file itself and adds "name: value"; only the name and path pass here. */
struct ob_secret_header {
        const char *name;
        const char *file;
};

/* An action rendered for one account (ob_step.rendered), without credentials. */
struct ob_http_rendered {
        char *method;
        char *url;
        char **headers; /* NULL-terminated "Name: value", without credentials */
        /* value_file: headers (borrowed from the configuration): the
         * connector adds their values; reports show "Name: ***". */
        struct ob_secret_header *secret_headers;
        size_t nsecret_headers;
        const char *content_type; /* NULL without a body */
        char *body;
        size_t body_len;
};

/* The whole body of an answer, for a kind that reads what the server says
 * (scim; versions come in the body, as SCIM's meta.version):
 * http.c fills it before the request's done callback runs. The caller owns
 * it (ob_buf_init before start, ob_buf_free after) and keeps it alive until
 * done runs or the connector is freed. The body is the server's, unscrubbed:
 * never log it or put it in a report (the response's excerpt is for that). */
#define OB_HTTP_MAX_ANSWER (1024 * 1024)
struct ob_http_answer {
        struct ob_buf body; /* the whole body, NUL-terminated */
        bool too_large;     /* the body went over OB_HTTP_MAX_ANSWER: the request failed */
};

/* A request as http.c sends it. The connector adds authentication itself
 * (secrets never pass through here, so a request can always be printed). */
struct ob_request {
        const char *method;
        const char *url;
        const char *const *headers; /* NULL-terminated "Name: value" */
        const char *content_type;   /* NULL without a body */
        const char *body;
        size_t body_len;
        const char *idempotency_key; /* sent as Idempotency-Key */
        const struct ob_secret_header *secret_headers;
        size_t nsecret_headers;
        const long *ok_status; /* statuses outside 2xx that count as done */
        size_t nok_status;
        struct ob_http_answer *answer; /* NULL: the excerpt is enough */
};

/* One credential of HTTP Basic with auth encoding: form (RFC 6749 section
 * 2.3.1, an OAuth client's id or secret): application/x-www-form-urlencoded,
 * every byte but A-Z a-z 0-9 - . _ ~ as %XX (a space as %20, which form
 * decoding reads as a space too). *ret (malloc'd) is a secret when value
 * is: wipe it before free. 0 or -ENOMEM. */
int ob_http_form_credential(const char *value, char **ret);

/* http.c: cfg->settings is a struct ob_http_connector. */
int ob_http_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
int ob_http_start(void *c, const struct ob_request *req, ob_connector_done_fn done, void *userdata);
void ob_http_free(void *c);

#endif
