/* metrics.h: the service's counters, and its health and metrics endpoint.
 *
 * `offboard run` keeps one struct ob_metrics for its life. The service and
 * the executor feed it (what the feed hears, each pass, each action's
 * outcome); service.listen, when set, serves it over HTTP/1.1 on the agent's
 * loop:
 *
 *   GET /healthz  200 {"status":"ok",...}, or 503 {"status":"failing",
 *                 "reason":...} when the last whole pass could not use the
 *                 directory or the last pass was parked by the safety limits.
 *                 Served from the loop: a hung loop does not answer.
 *   GET /metrics  the Prometheus text exposition format 0.0.4.
 *   HEAD of both; anything else is 404 (path), 405 (method), 400 (not a
 *   request) or 431 (headers over OB_METRICS_REQUEST_MAX).
 *
 * The server is a small one written here: non-blocking accept, read and
 * write, one response per connection (Connection: close), at most
 * OB_METRICS_MAX_CONNS connections (one more is accepted and closed at once),
 * each closed OB_METRICS_DEADLINE_MS after it was accepted whatever it is
 * doing. Nothing it does waits. It listens only on loopback: 127.x.y.z:PORT,
 * [::1]:PORT, localhost:PORT (127.0.0.1, never asked of a resolver), or
 * unix:/absolute/path, created with mode 0600 (a stale socket there is
 * replaced; a live one, or a file that is not a socket, is an error).
 *
 * Nothing here is a secret: the metrics carry counts, durations, connector
 * names and outcomes. Everything runs on the loop's thread. Every feeding
 * function takes NULL and then does nothing (a pass without a service).
 */
#ifndef OB_METRICS_H
#define OB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "util.h"

#define OB_METRICS_MAX_CONNS 16
#define OB_METRICS_REQUEST_MAX 8192
#define OB_METRICS_DEADLINE_MS 5000
/* (connector, outcome) pairs counted apart; more are counted together under
 * connector="_other",outcome="_other" (a configuration reloaded again and
 * again with new connector names cannot grow the metrics without bound). */
#define OB_METRICS_MAX_SERIES 1024

struct ob_metrics;

enum ob_metrics_feed {
        OB_METRICS_FEED_NONE,     /* no feed (service.feed: none, or the server offers none) */
        OB_METRICS_FEED_STARTING, /* connecting, or refreshing */
        OB_METRICS_FEED_LIVE,     /* changes are heard as they happen */
        OB_METRICS_FEED_DOWN,     /* failed; started again after a backoff */
};

/* Whether listen is a value service.listen accepts (port 0 is not). Returns
 * 0, or -EINVAL and *ret_why, a phrase that follows the quoted value ("is
 * not a loopback address"). */
int ob_metrics_check_listen(const char *listen, const char **ret_why);

/* The counters, and a listener on listen (NULL: none) watched on l. Port 0
 * lets the kernel choose (tests; see ob_metrics_port). Returns 0, -EINVAL
 * for a listen ob_metrics_check_listen refuses, -EEXIST for a unix path that
 * is not a socket, -EADDRINUSE, or the errno of socket(), bind() or
 * listen(). l must outlive the metrics. */
int ob_metrics_open(struct ob_loop *l, const char *listen, struct ob_metrics **ret);
/* Closes the listener and its connections (and removes its unix socket);
 * call it before the loop is freed. Takes NULL. */
void ob_metrics_free(struct ob_metrics *m);
/* A reload: listens on listen instead (NULL: nowhere), counters kept. The
 * same value keeps the listener as it is. On error the old listener stays. */
int ob_metrics_listen(struct ob_metrics *m, const char *listen);
/* The TCP port listened on, or 0 (none, or a unix socket). */
int ob_metrics_port(const struct ob_metrics *m);

/* ---- what the service feeds ---------------------------------------------- */

/* The change feed's kind ("syncrepl", "poll"; NULL: none) and state. */
void ob_metrics_feed_state(struct ob_metrics *m, const char *kind, enum ob_metrics_feed state);
/* A change heard through the feed; own: the service's own write-back coming
 * back (it causes nothing). The first other change since the last pass
 * started is when the latency to its first request starts. */
void ob_metrics_feed_event(struct ob_metrics *m, bool own);
/* A pass starts: the changes heard until now are the ones it acts on. */
void ob_metrics_pass_start(struct ob_metrics *m);
/* A pass ended: whole (every account) or over changes, its exit code (enum
 * ob_exit), how long it took, and the actions a whole pass left held and
 * whether the pass was parked by the safety limits. */
void ob_metrics_pass(struct ob_metrics *m, bool whole, int exit_code, int64_t duration_ms, size_t held, bool parked);

/* ---- what the executor feeds (execute.c) --------------------------------- */

/* An action's attempt ended with outcome (ob_outcome_name) after
 * duration_ms, through the connector named connector. */
void ob_metrics_action(struct ob_metrics *m, const char *connector, const char *outcome, int64_t duration_ms);
/* A request left: the first one of a pass ends the latency that the changes
 * it acts on started (offboard_change_to_request_seconds). */
void ob_metrics_request_left(struct ob_metrics *m);

/* Appends what /metrics serves to b. Returns 0 or -ENOMEM. */
int ob_metrics_render(const struct ob_metrics *m, struct ob_buf *b);

/* The request parser of the endpoint, for the tests and the fuzzer: the
 * bytes read so far from a connection, buf[0..len), len <= max (the size of
 * its buffer). Returns 0 while the request is incomplete and more may come
 * (len < max), or the status to answer: 400 (not an HTTP/1.x request line,
 * or a bad header), 431 (no end of the line or of the headers within max
 * bytes), 405 (neither GET nor HEAD), or 200 with whether it is a HEAD and
 * the path asked for (the target up to its '?', pointing into buf); which
 * paths exist (404) is the server's business. */
int ob_metrics_parse_request(const char *buf, size_t len, size_t max, bool *ret_head, const char **ret_path,
                             size_t *ret_plen);

/* `offboard status`: GET path from the service listening at listen (the
 * service.listen syntax), within timeout_ms: 0 with the HTTP status and the
 * body (malloc'd, NUL-terminated), or -errno (-ECONNREFUSED, -ENOENT: no
 * service there; -ETIMEDOUT: it did not answer). Blocking: not for the loop. */
int ob_metrics_fetch(const char *listen, const char *path, int timeout_ms, int *ret_status, char **ret_body);

#endif
