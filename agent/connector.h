/* connector.h: connector kinds, and the interface every kind implements.
 *
 * A kind ("http") owns everything that depends on what its connectors talk
 * to: the keys of its connectors and of the actions that use them (tables of
 * typed rows that config.c reads, plus check hooks for rules across keys),
 * how an action becomes a request for one account (render, in the pure
 * planner), how that request reads in a report (describe), and how it is
 * sent (new, start, free). plan.c, report.c, config.c and execute.c call
 * through the kind and know nothing of HTTP. Adding a kind is one file and
 * one line in the table in connector.c.
 *
 * A connector instance is created from its configuration on an event loop,
 * accepts rendered steps (start), and reports each outcome through a
 * callback that runs on the loop exactly once per accepted request.
 */
#ifndef OB_CONNECTOR_H
#define OB_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "loop.h"
#include "template.h"

struct ob_step;
struct ob_report_json;

#define OB_EXCERPT_MAX 512

struct ob_response {
        int result;  /* 0: done; -OB_EHTTP or another negative code: failed */
        long status; /* the protocol's status (HTTP), 0 if none was received */
        char error[256]; /* the transport's error or "HTTP 500", "" when done */
        char excerpt[OB_EXCERPT_MAX + 1]; /* start of the answer, NUL-terminated */
        int64_t duration_ms;
        int64_t retry_after_s; /* the answer's Retry-After in seconds (an HTTP-date converted), -1: none */
        bool transport;        /* no answer: refused, reset, timed out, TLS failed */
        /* What the step did that a later step needs, kept with its outcome
         * in the state store (ob_state_action_outcome_detail: JSON, at most
         * OB_STATE_DETAIL_MAX bytes), done or failed; NULL: nothing. The
         * ldap kind's remove_from_groups lists the memberships it removed.
         * Borrowed: valid during the done callback. */
        const char *detail;
};

typedef void (*ob_connector_done_fn)(const struct ob_response *resp, void *userdata);

struct ob_connector_kind {
        const char *name; /* connectors.X.type */

        /* Configuration: the kind's keys and the size of the struct they
         * fill (ob_connector.settings, ob_action.settings). Keys every
         * connector has (type, timeout, concurrency, retry) and every action
         * has (connector, when, after, security) are not in these tables. */
        const struct ob_key_spec *connector_keys;
        size_t connector_size;
        const struct ob_key_spec *action_keys;
        size_t action_size;
        /* Rules across keys, after the keys are read; each may fill in what
         * depends on other keys. They fail through ob_config_fail_*() and
         * return its result. Any may be NULL. check_uses runs once every
         * action is read, for rules across a connector and its actions. */
        int (*check_connector)(struct ob_config_check *ck, struct ob_connector *c);
        int (*check_action)(struct ob_config_check *ck, struct ob_action *a);
        int (*check_uses)(struct ob_config_check *ck, const struct ob_config *cfg, const struct ob_connector *c);
        /* Whether action a (of this kind) puts back what action undone
         * did, as undone's restored_by: would say (plan.c leaves undone out
         * of a reactivation's "not restored" when a is in it). NULL: never. */
        bool (*restores)(const struct ob_action *a, const struct ob_action *undone);
        /* The connector does not check its server's certificate
         * (tls_verify: false): a pass warns about it. NULL: never. */
        bool (*tls_unverified)(const struct ob_connector *c);

        /* Planning (pure): fills s->rendered from the action's templates,
         * whose fields come from lookup. A value that cannot be placed safely
         * is not an error: it sets s->render_error (ob_step_render_error) and
         * rendering goes on, so the report shows the rest. Returns 0 or a
         * negative errno; s->rendered is freed with free_rendered either way. */
        int (*render)(const struct ob_action *a, ob_tpl_lookup_fn lookup, void *userdata, struct ob_step *s);
        void (*free_rendered)(void *rendered);

        /* Reports (report.h), for an owed step. headline_text ends the
         * step's line ("  GET https://..."); describe_text writes the lines
         * under it ("       Name: value\n", every value through
         * ob_report_printf); describe_json writes the members of the step's
         * "request" object. Secrets are shown as ***. */
        void (*headline_text)(const struct ob_step *s, FILE *f);
        void (*describe_text)(const struct ob_step *s, FILE *f);
        void (*describe_json)(const struct ob_step *s, struct ob_report_json *j);

        /* Execution, on the loop. start copies what it needs from the step
         * (s->rendered, s->idempotency_key, s->action): the step may die
         * as soon as it returns. */
        int (*new)(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
        int (*start)(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata);
        void (*free)(void *c);
};

/* The kind called name, or NULL. */
const struct ob_connector_kind *ob_connector_kind_find(const char *name);
/* The i-th kind (for "this version has: ..."), NULL past the last. */
const struct ob_connector_kind *ob_connector_kind_at(size_t i);
/* Tests only: one more kind, found after the table's (NULL removes it). */
void ob_connector_kind_register_test(const struct ob_connector_kind *k);

/* The connector's kind, through small wrappers. */
static inline int ob_connector_new(struct ob_loop *loop, const struct ob_connector *k, void **ret)
{
        return k->kind->new(loop, k, ret);
}

static inline int ob_connector_start(const struct ob_connector *k, void *c, const struct ob_step *s,
                                     ob_connector_done_fn done, void *userdata)
{
        return k->kind->start(c, s, done, userdata);
}

static inline void ob_connector_free(const struct ob_connector *k, void *c)
{
        k->kind->free(c);
}

static inline bool ob_connector_tls_unverified(const struct ob_connector *k)
{
        return k->kind->tls_unverified && k->kind->tls_unverified(k);
}

extern const struct ob_connector_kind ob_http_kind;
extern const struct ob_connector_kind ob_ldap_kind;
extern const struct ob_connector_kind ob_scim_kind;
extern const struct ob_connector_kind ob_exec_kind;

#endif
