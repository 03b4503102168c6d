/* guard_http.h: connector guards (seed 002), for guard.c.
 *
 * A connector guard asks an application whether an account still has open
 * records (tasks, alerts, approval requests): GET the http connector's
 * base_url + the guard's url, with the connector's auth, TLS, headers,
 * timeout and concurrency, and reads the answer (blocks_when). The request
 * is a read: it carries no idempotency key, is never recorded in the state
 * store and is not an action. Answers go to the pass's loop; a batch is
 * asked at once (ob_guard_http_ask) and waited for on the loop, never with a
 * blocking call.
 *
 * Fail closed: no answer, a timeout, a status that is neither 2xx nor in
 * clear_status (a 5xx, a 401, a redirect), an answer too large, a body that
 * is not JSON or has no number at the path: the guard holds and says why.
 * It is never "clear". Reasons carry the URL (as reports show actions' URLs)
 * and curl's scrubbed error, never the body.
 */
#ifndef OB_GUARD_HTTP_H
#define OB_GUARD_HTTP_H

#include <stddef.h>

#include "account.h"
#include "config.h"
#include "loop.h"

/* The answers of one window. Borrows the configuration and the loop; stop
 * is the pass's first signal (0: none): waiting ends when it is set. */
struct ob_guard_http;

int ob_guard_http_new(const struct ob_config *c, struct ob_loop *loop, const int *stop, struct ob_guard_http **ret);
void ob_guard_http_free(struct ob_guard_http *q);

/* Asks every connector guard about accounts[0..n) (borrowed until it
 * returns), all at once, at most each connector's
 * concurrency in flight, and returns when every request has its verdict
 * (an interrupted one: "not asked"). The accounts' earlier answers are
 * kept. 0 or -ENOMEM. */
int ob_guard_http_ask(struct ob_guard_http *q, const struct ob_account *const *accounts, size_t n);
/* Drops every answer (the window is over). */
void ob_guard_http_forget(struct ob_guard_http *q);

/* Guard gi's verdict on a (asked now if it was not): 1 with *reason (it
 * says the account has open records, or it could not be asked), 0 (clear),
 * or -ENOMEM. */
int ob_guard_http_verdict(struct ob_guard_http *q, size_t gi, const struct ob_account *a, char **reason);

/* What the answer to GET url says of guard g (for tests and the fuzz
 * harness): 0 (clear), 1 with *reason (it holds: open records, or an answer
 * that says nothing clear), or -ENOMEM. The reason never quotes the body. */
struct ob_response;
struct ob_http_answer;
int ob_guard_http_judge(const struct ob_guard *g, const char *url, const struct ob_response *resp,
                        const struct ob_http_answer *ans, char **reason);

#endif
