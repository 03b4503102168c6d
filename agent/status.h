/* status.h: `offboard status` and `offboard retry`: what the state store
 * says needs attention, and handing held-back actions to the next pass.
 *
 * The report reads the store only (a read-only store, or one whose file does
 * not exist yet, is fine: nothing to report), one account at a time, and
 * writes to out as it goes. An account is listed when a transition is in
 * progress or a write-back is owed. Each action of its transition is in
 * exactly one state, first match wins:
 *
 *   done, skipped   final outcomes
 *   parked          failed for good: waits for `offboard retry`
 *   failed          outcome FAILED (the next pass tries it again, maybe
 *                   after "not before <time>")
 *   waiting         not to be tried before a time still to come
 *   in_flight       outcome intent: a request left and no outcome came back
 *                   (in flight, or interrupted by a crash)
 *   held            no outcome yet (or blocked)
 *
 * A human is needed when an action is parked or failed, or a write-back is
 * owed. The connector of an action is found through the configuration (c
 * may be NULL: every connector is then "?", as for an action the
 * configuration no longer has).
 *
 * Text (for a terminal): grouped by account, then a summary per state and
 * per connector; every value from the directory or a downstream answer has
 * its control characters escaped (ob_escape_text). JSON (for tools): one
 * document {"version": 1, "kind": "status", "time", "accounts": [...],
 * "summary": {...}} whose field names stay within version 1. Errors stored
 * with actions were scrubbed of secrets before they were recorded.
 *
 * Nothing is logged. Errors: the store's (ob_state_errmsg() says what
 * happened), -ENOMEM, -EIO when out could not be written.
 */
#ifndef OB_STATUS_H
#define OB_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "state.h"

/* What `status` learnt of the service (main.c asks): whether `offboard
 * run` holds the state store, and what its /healthz said. */
struct ob_status_service {
        bool running;      /* the process holding the state store is `offboard run` */
        long pid;          /* its pid, when running */
        const char *listen; /* service.listen, or NULL: its health cannot be asked */
        int http_status;   /* /healthz's answer (200, 503), or 0 */
        const char *health; /* its body, or NULL */
        const char *error; /* why it could not be asked, or NULL */
};

/* Writes the report to out, with what svc (may be NULL) says of the
 * service first. *ret_needs_human (may be NULL) is set on success: true when
 * anything is parked or failed, a write-back is owed, or the running service
 * says it is failing or does not answer (`offboard status` then exits 1). */
int ob_status_report(struct ob_state *s, const struct ob_config *c, const struct ob_status_service *svc, bool json,
                     FILE *out, bool *ret_needs_human);

/* `offboard retry [ACCOUNT|ACTION]`: releases parked and deferred actions of
 * transitions in progress so that the next pass runs them (ob_state_release,
 * one transaction). target NULL: everything; a target that names an action
 * ever recorded releases that action for every account; otherwise target is
 * an account's username or id. Prints one line to out saying what was
 * released ("released 3 actions of 2 accounts; the next pass runs them"), or
 * that there was nothing to release (still 0).
 *
 * Errors, nothing printed: -OB_ENOTFOUND when target names neither an action
 * nor an account (the caller says "nothing is named TARGET"); -EROFS on a
 * read-only store, other store errors (ob_state_errmsg() has the message);
 * -EIO when out could not be written (the release stands). */
int ob_status_retry(struct ob_state *s, const char *target, FILE *out);

#endif
