/* connector.h: the interface every connector implements.
 *
 * A connector instance is created from its configuration on an event loop,
 * accepts fully rendered requests (start), and reports each outcome through a
 * callback that runs on the loop exactly once per accepted request. Adding a
 * connector type touches its own file and the table in connector.c.
 */
#ifndef OB_CONNECTOR_H
#define OB_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

/* A header whose value is a secret (value_file:): the connector reads the
 * file itself and adds "name: value"; only the name and path pass here. */
struct ob_secret_header {
        const char *name;
        const char *file;
};

/* A rendered request. The connector adds authentication itself (secrets never
 * pass through here, so a request can always be printed). */
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
};

#define OB_EXCERPT_MAX 512

struct ob_response {
        int result;  /* 0: done (2xx); -OB_EHTTP or another negative code: failed */
        long status; /* HTTP status, 0 if none was received */
        char error[256]; /* curl's error or "HTTP 500", "" when done */
        char excerpt[OB_EXCERPT_MAX + 1]; /* start of the response body, NUL-terminated */
        int64_t duration_ms;
        int64_t retry_after_s; /* the answer's Retry-After in seconds (an HTTP-date converted), -1: none */
        bool transport;        /* no HTTP answer: refused, reset, timed out, TLS failed */
};

typedef void (*ob_connector_done_fn)(const struct ob_response *resp, void *userdata);

struct ob_connector_ops {
        enum ob_connector_type type;
        int (*new)(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
        int (*start)(void *c, const struct ob_request *req, ob_connector_done_fn done, void *userdata);
        void (*free)(void *c);
};

const struct ob_connector_ops *ob_connector_ops_for(enum ob_connector_type type);

extern const struct ob_connector_ops ob_http_ops;

#endif
