/* execute.c: the actions of a pass on the event loop (see pass.h).
 *
 * Accounts are admitted OB_EXEC_WINDOW at a time. A step's intent goes into
 * the batch being gathered and its request waits in a queue; at the end of
 * the loop turn the batch goes to the writer thread (writer.h), which
 * commits it in one transaction while the loop goes on with the network and
 * gathers the next batch. The requests leave when their batch is durable: no
 * request leaves before its intent is, the loop never waits for an fsync,
 * and the slower the disk the larger the batches. Outcomes join the batches.
 * A failed step is retried inside the pass with capped exponential backoff
 * and full jitter (never before a Retry-After), parked when the answer will
 * not change or after park_after attempts, and its connector is paused
 * after pause_after failures without an answer. SIGTERM/SIGINT drain; a
 * second one abandons what is in flight.
 */
#define _GNU_SOURCE
#include "pass.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "connector.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "timeparse.h"
#include "util.h"
#include "writer.h"

/* ---- execution on the loop ------------------------------------------------- */

struct exec;

struct pending_req;

struct job {
        struct exec *x;
        struct ob_report_item *item;
        size_t next; /* next step to consider */
        bool busy;
        bool aborted;
        struct pending_req *pr; /* the request in flight, while busy */
        struct ob_timer *retry_timer; /* waiting to try steps[retry_step] again */
        size_t retry_step;
        int tries; /* attempts of the current step in this pass */
        bool finished;
};

#define OB_WRITEBACKS_IN_FLIGHT 16

struct wb_wait {
        size_t item;
        uint64_t seq;
};

/* A write-back on the wire. When its window ends without waiting for it
 * (a second signal), it is orphaned: x and it become NULL and its answer
 * is dropped. */
struct wb_op {
        struct exec *x; /* NULL: ob_execute_write_backs, or orphaned */
        struct run *r;
        struct ob_report_item *it;
        size_t *nflight; /* ob_execute_write_backs' count of write-backs on the wire */
};

struct exec {
        struct run *r;
        struct ob_loop *loop; /* the pass's */
        void **conns;         /* per configured connector, created on first use */
        struct job *jobs;
        size_t njobs, jobs_cap;
        size_t inflight;
        size_t waiting; /* jobs waiting for a retry timer */
        struct ob_timer *drain_timer;
        int *fails;   /* per connector: failures without an answer in a row */
        bool *paused; /* per connector: paused for the rest of the pass */
        /* Group commit: the intents and outcomes gathered while the writer
         * is busy (at least one loop turn's) share one transaction; the
         * requests wait in starts until it is committed. wstarts are the
         * requests of the batch with the writer. */
        struct ob_writer *writer;
        struct ob_write_batch batch;
        struct ob_timer *flush_timer;
        struct pending_req **starts, **wstarts;
        size_t nstarts, starts_cap, nwstarts, wstarts_cap;
        /* Sequence numbers of records: gathered so far, in the batch with the
         * writer, durable. An account's write-back waits until its last
         * record is durable (wb_wait, in sequence order), then goes on the
         * wire, OB_WRITEBACKS_IN_FLIGHT at a time, its answer read on the
         * loop: the write-backs overlap the requests of other accounts. */
        uint64_t seq, seq_writer, seq_durable;
        struct wb_wait *wb_wait;
        size_t wb_wait_head, nwb_wait, wb_wait_cap;
        size_t *wbq; /* items whose write-back may leave */
        size_t wbq_head, nwbq, wbq_cap;
        struct wb_op *wbfl[OB_WRITEBACKS_IN_FLIGHT];
        size_t nwbfl;
        /* The window of accounts being worked on. */
        struct ob_report_item *items;
        size_t nitems, next_item, active;
        bool admitting;
        int fatal;
};

static void job_advance(struct job *j);
static int batch_add(struct exec *x, const struct ob_write *w);
static void on_flush(struct ob_loop *l, struct ob_timer *t, void *ud);
static void wb_finished(struct exec *x, struct job *j);
static void wb_release(struct exec *x);
static void maybe_done(struct exec *x);
static void wb_collect_all(struct exec *x);
static void wb_orphan(struct exec *x);
static void wb_pump(struct exec *x);
static void admit(struct exec *x);

static void *connector_for(struct exec *x, const struct ob_connector *k)
{
        size_t i = (size_t)(k - x->r->c->connectors);
        if (x->paused[i])
                return NULL;
        if (!x->conns[i]) {
                int e = ob_connector_new(x->loop, k, &x->conns[i]);
                if (e < 0) {
                        ob_log(OB_LOG_ERROR, "event=connector_failed connector=%s error=%s", k->name,
                               ob_log_quote(ob_strerror(e)));
                        x->conns[i] = NULL;
                        return NULL;
                }
        }
        return x->conns[i];
}

static bool step_settled_ok(const struct job *j, size_t i)
{
        const struct ob_step *s = &j->item->plan->steps[i];
        if (s->state != OB_STEP_OWED)
                return true;
        int o = j->item->results[i].outcome;
        return o == OB_OUTCOME_DONE || o == OB_OUTCOME_SKIPPED;
}

static bool deps_ok(const struct job *j, size_t i)
{
        const struct ob_account_plan *p = j->item->plan;
        const struct ob_action *a = p->steps[i].action;
        for (size_t d = 0; d < a->nafter; d++)
                for (size_t k = 0; k < p->nsteps; k++)
                        if (p->steps[k].action == a->after[d] && !step_settled_ok(j, k))
                                return false;
        return true;
}

/* One journal line about steps[i] of the job's account; a journal that
 * cannot be written stops the pass from acting, like the state store. */
static void journal(struct job *j, size_t i, const char *event, const char *result, long status, const char *error,
                    int64_t duration)
{
        struct run *r = j->x->r;
        if (!r->journal)
                return;
        const struct ob_account_plan *p = j->item->plan;
        const struct ob_step *s = &p->steps[i];
        struct ob_journal_entry e = {
                .event = event,
                .account_id = p->id,
                .username = p->username,
                .dn = p->dn,
                .transition = p->transition ? p->transition->name : NULL,
                .generation = p->generation,
                .action = s->action->name,
                .connector = s->action->connector->name,
                .idempotency_key = s->idempotency_key,
                .attempt = s->attempts + j->tries,
                .result = result,
                .http_status = status,
                .error = error,
                .duration_ms = result ? duration : -1,
        };
        int k = ob_journal_append(r->journal, &e);
        if (k < 0 && !j->x->fatal) {
                ob_log(OB_LOG_ERROR, "event=journal_write_failed path=%s error=%s", ob_log_quote(r->c->journal_path),
                       ob_log_quote(strerror(-k)));
                j->x->fatal = k;
        }
}

/* Writes the journal lines held during this loop turn (one write(2)),
 * before the turn's records go to the state store: an attempt's line is in
 * the file before its intent is committed and its request leaves. */
static void journal_flush(struct exec *x)
{
        struct run *r = x->r;
        if (!r->journal)
                return;
        int k = ob_journal_flush(r->journal);
        if (k < 0 && !x->fatal) {
                ob_log(OB_LOG_ERROR, "event=journal_write_failed path=%s error=%s", ob_log_quote(r->c->journal_path),
                       ob_log_quote(strerror(-k)));
                x->fatal = k;
        }
}

/* Records an attempt's outcome durably, with what the connector says it
 * did (detail, ob_response.detail, or NULL); final: no retry follows in
 * this pass, so it counts in the summary. */
static void record_outcome_ex(struct job *j, size_t i, enum ob_outcome o, long status, const char *error,
                              const char *detail, int64_t duration, bool final)
{
        struct run *r = j->x->r;
        struct ob_account_plan *p = j->item->plan;
        struct ob_step_result *res = &j->item->results[i];
        res->outcome = o;
        res->http_status = status;
        res->duration_ms = duration;
        free(res->error);
        res->error = error && *error ? strdup(error) : NULL;
        struct ob_write w = {.op = OB_WRITE_OUTCOME,
                             .id = p->id,
                             .generation = p->generation,
                             .action = p->steps[i].action->name,
                             .outcome = o,
                             .http_status = status,
                             .error = (char *)error,
                             .detail = (char *)detail,
                             .at = ob_now()};
        int k = batch_add(j->x, &w);
        if (k < 0) {
                ob_log(OB_LOG_ERROR, "event=state_write_failed account=%s action=%s error=\"out of memory\"",
                       ob_log_quote(p->id), p->steps[i].action->name);
                if (!j->x->fatal)
                        j->x->fatal = k;
        }
        journal(j, i, "outcome", ob_outcome_name(o), status, error, duration);
        ob_metrics_action(r->ag ? r->ag->metrics : NULL, p->steps[i].action->connector->name, ob_outcome_name(o),
                          duration);
        if (o == OB_OUTCOME_DONE)
                r->sum.steps_done++;
        else if (final)
                r->sum.steps_failed++;
        ob_log(o == OB_OUTCOME_DONE ? OB_LOG_INFO : OB_LOG_WARNING,
               "event=action account=%s transition=%s action=%s connector=%s outcome=%s http_status=%ld "
               "duration_ms=%lld key=%s%s%s",
               ob_log_quote(p->username ? p->username : p->id), p->transition->name, p->steps[i].action->name,
               p->steps[i].action->connector->name, ob_outcome_name(o), status, (long long)duration,
               ob_log_quote(p->steps[i].idempotency_key), error && *error ? " error=" : "",
               error && *error ? ob_log_quote(error) : "");
}

static void record_outcome(struct job *j, size_t i, enum ob_outcome o, long status, const char *error,
                           int64_t duration)
{
        record_outcome_ex(j, i, o, status, error, NULL, duration, true);
}

/* A step the plan holds (a guard, a transfer target or teams that could
 * not be read): recorded as blocked with why, no request and no attempt,
 * so that `offboard status` shows it held and why between passes. The
 * report counts it held, as before; a later attempt's intent replaces it. */
static void record_hold(struct job *j, size_t i, const char *why)
{
        struct ob_account_plan *p = j->item->plan;
        struct ob_write w = {.op = OB_WRITE_OUTCOME,
                             .id = p->id,
                             .generation = p->generation,
                             .action = p->steps[i].action->name,
                             .outcome = OB_OUTCOME_BLOCKED,
                             .error = (char *)why,
                             .at = ob_now()};
        int k = batch_add(j->x, &w);
        if (k < 0) {
                ob_log(OB_LOG_ERROR, "event=state_write_failed account=%s action=%s error=\"out of memory\"",
                       ob_log_quote(p->id), p->steps[i].action->name);
                if (!j->x->fatal)
                        j->x->fatal = k;
        }
}

struct pending_req {
        struct job *job;
        size_t step;
        bool queued; /* waiting in exec.starts for this turn's commit */
};

static size_t conn_index(const struct exec *x, const struct ob_connector *k)
{
        return (size_t)(k - x->r->c->connectors);
}

/* Worth trying again: no answer, a timeout, too many requests, or a
 * server error. Any other 4xx will say the same next time. */
static bool retryable(const struct ob_response *resp)
{
        long st = resp->status;
        return resp->transport || st == 408 || st == 425 || st == 429 || st >= 500;
}

/* Full jitter (a uniform delay up to the capped exponential one). */
static int64_t backoff_ms(const struct ob_retry_policy *rp, int tries)
{
        int64_t cap = rp->backoff_ms;
        for (int i = 1; i < tries && cap < rp->max_backoff_ms; i++)
                cap *= 2;
        if (cap > rp->max_backoff_ms)
                cap = rp->max_backoff_ms;
        return cap > 0 ? (int64_t)(random() % (cap + 1)) : 0;
}

static void pause_connector(struct exec *x, size_t ci);

static void on_retry(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct job *j = ud;
        j->retry_timer = NULL;
        j->x->waiting--;
        j->busy = false;
        j->next = j->retry_step;
        job_advance(j);
}

static void on_done(const struct ob_response *resp, void *ud)
{
        struct pending_req *pr = ud;
        struct job *j = pr->job;
        size_t i = pr->step;
        free(pr);
        j->pr = NULL;
        j->busy = false;
        j->x->inflight--;
        struct exec *x = j->x;
        struct run *r = x->r;
        const struct ob_step *s = &j->item->plan->steps[i];
        const struct ob_connector *k = s->action->connector;
        size_t ci = conn_index(x, k);
        const struct ob_retry_policy *rp = &k->retry;
        if (resp->result == 0) { /* the kind counts what else is done (an HTTP ok_status) */
                x->fails[ci] = 0;
                j->tries = 0;
                record_outcome_ex(j, i, OB_OUTCOME_DONE, resp->status, NULL, resp->detail, resp->duration_ms, true);
        } else {
                char err[OB_EXCERPT_MAX + 300];
                if (resp->excerpt[0])
                        snprintf(err, sizeof(err), "%s: %s", resp->error, resp->excerpt);
                else
                        snprintf(err, sizeof(err), "%s", resp->error);
                x->fails[ci] = resp->transport ? x->fails[ci] + 1 : 0;
                int total = s->attempts + j->tries;
                int64_t ra_ms = resp->retry_after_s >= 0 ? resp->retry_after_s * 1000 : -1;
                int64_t delay = backoff_ms(rp, j->tries);
                if (ra_ms > delay)
                        delay = ra_ms; /* never undercut the server */
                bool again = retryable(resp) && j->tries < rp->attempts && !r->signo && !x->paused[ci] &&
                             (!rp->park_after || total < rp->park_after) && delay <= rp->max_backoff_ms;
                record_outcome_ex(j, i, OB_OUTCOME_FAILED, resp->status, err, resp->detail, resp->duration_ms, !again);
                bool park = !retryable(resp) || (rp->park_after && total >= rp->park_after);
                if (!again && (park || ra_ms > 0)) {
                        int64_t nb = ra_ms > 0 ? ob_now() + (ra_ms + 999) / 1000 : 0;
                        struct ob_write w = {.op = OB_WRITE_DEFER,
                                             .id = j->item->plan->id,
                                             .generation = j->item->plan->generation,
                                             .action = s->action->name,
                                             .not_before = nb,
                                             .parked = park};
                        int e = batch_add(x, &w);
                        if (e < 0 && !x->fatal)
                                x->fatal = e;
                        ob_log(OB_LOG_WARNING, "event=%s account=%s action=%s attempts=%d%s%s",
                               park ? "action_parked" : "action_deferred",
                               ob_log_quote(j->item->plan->username ? j->item->plan->username : j->item->plan->id),
                               s->action->name, total,
                               park ? (retryable(resp) ? " reason=\"too many failed attempts\""
                                                       : " reason=\"the answer is not one to retry\"")
                                    : " reason=\"Retry-After\"",
                               park ? " note=\"offboard retry releases it\"" : "");
                }
                if (!x->paused[ci] && rp->pause_after && x->fails[ci] >= rp->pause_after)
                        pause_connector(x, ci);
                if (again && !x->paused[ci] &&
                    ob_loop_timer(x->loop, delay, on_retry, j, &j->retry_timer) == 0) {
                        j->retry_step = i;
                        j->busy = true; /* waiting */
                        x->waiting++;
                        return;
                }
        }
        job_advance(j);
        if (r->signo && x->inflight == 0)
                ob_loop_stop(x->loop); /* drained */
}

/* Runs the account's steps one after another in plan order; a step whose
 * after: did not succeed is held (left owed, reported, retried next pass). */
static void job_advance(struct job *j)
{
        struct exec *x = j->x;
        struct run *r = x->r;
        struct ob_account_plan *p = j->item->plan;
        while (!j->busy && j->next < p->nsteps) {
                if (x->fatal) {
                        j->aborted = true;
                        return;
                }
                if (r->signo) {
                        /* Draining: nothing new starts; the rest stays owed. */
                        for (size_t i = j->next; i < p->nsteps; i++)
                                if (p->steps[i].state == OB_STEP_OWED && j->item->results[i].outcome == OB_OUTCOME_NONE)
                                        j->item->results[i].interrupted = true;
                        j->next = p->nsteps;
                        return;
                }
                size_t i = j->next++;
                struct ob_step *s = &p->steps[i];
                if (s->state != OB_STEP_OWED)
                        continue;
                if (s->hold_reason || !deps_ok(j, i)) {
                        r->sum.steps_held++;
                        /* A stage's wait is on record already (its due time),
                         * and so is a hold the last pass recorded as it is. */
                        if (s->hold_reason && s->due <= r->now &&
                            !(s->last_error && strcmp(s->last_error, s->hold_reason) == 0))
                                record_hold(j, i, s->hold_reason);
                        continue;
                }
                if (s->render_error) {
                        record_outcome(j, i, OB_OUTCOME_FAILED, 0, s->render_error, 0);
                        continue;
                }
                size_t ci = conn_index(x, s->action->connector);
                if (x->paused[ci]) {
                        /* Held with its reason; the next pass tries again. */
                        free(j->item->results[i].error);
                        j->item->results[i].error = strdup("the connector was paused after failures without an "
                                                           "answer; the next pass tries again");
                        r->sum.steps_held++;
                        continue;
                }
                if (j->retry_step != i || j->tries == 0)
                        j->tries = 0;
                j->retry_step = i;
                j->tries++;
                void *conn = connector_for(x, s->action->connector);
                if (!conn) {
                        record_outcome(j, i, OB_OUTCOME_FAILED, 0, "connector could not be started", 0);
                        continue;
                }
                journal(j, i, "attempt", NULL, 0, NULL, -1);
                /* Write-ahead: the intent goes into this turn's transaction,
                 * and the request leaves only after it is committed. */
                struct ob_write w = {.op = OB_WRITE_INTENT,
                                     .id = p->id,
                                     .generation = p->generation,
                                     .action = s->action->name,
                                     .key = s->idempotency_key,
                                     .detail = s->intent_detail, /* kept with the intent (plan.h) */
                                     .at = ob_now()};
                int k = batch_add(x, &w);
                struct pending_req *pr = k == 0 ? malloc(sizeof(*pr)) : NULL;
                if (k == 0 && !pr)
                        k = -ENOMEM;
                if (k == 0 && x->nstarts == x->starts_cap) {
                        size_t cap = x->starts_cap ? x->starts_cap * 2 : 64;
                        struct pending_req **n = realloc(x->starts, cap * sizeof(*n));
                        if (!n)
                                k = -ENOMEM;
                        else {
                                x->starts = n;
                                x->starts_cap = cap;
                        }
                }
                if (k < 0) {
                        free(pr);
                        ob_log(OB_LOG_ERROR, "event=state_write_failed account=%s action=%s error=%s",
                               ob_log_quote(p->id), s->action->name,
                               ob_log_quote("out of memory"));
                        x->fatal = k;
                        j->aborted = true;
                        return;
                }
                *pr = (struct pending_req){.job = j, .step = i, .queued = true};
                j->pr = pr;
                j->busy = true;
                x->inflight++;
                x->starts[x->nstarts++] = pr;
        }
        if (!j->busy && j->next >= p->nsteps && !j->finished) {
                j->finished = true;
                x->active--;
                wb_finished(x, j);
                admit(x);
                maybe_done(x);
        }
}

/* Stops the loop when the window is done: every account finished, nothing
 * in flight, queued or waiting for a retry, no write-back on the wire.
 * Write-backs still waiting for their records are sent after the loop. The
 * connections stay open for the next window. */
static void maybe_done(struct exec *x)
{
        if (x->active == 0 && x->next_item >= x->nitems && x->inflight == 0 && x->waiting == 0 && !x->nstarts &&
            !x->nwstarts && x->nwbfl == 0 && x->nwbq == 0)
                ob_loop_stop(x->loop);
}

/* Starts the next accounts while the window has room. Iterative: an account
 * that finishes at once (everything held) does not recurse. */
static void admit(struct exec *x)
{
        if (x->admitting)
                return;
        x->admitting = true;
        size_t started = 0;
        while (x->active < OB_EXEC_WINDOW && x->next_item < x->nitems && !x->r->signo && !x->fatal) {
                struct ob_report_item *it = &x->items[x->next_item++];
                if (ob_account_plan_owed(it->plan) == 0)
                        continue;
                struct job *j = &x->jobs[x->njobs++];
                *j = (struct job){.x = x, .item = it};
                x->active++;
                job_advance(j);
                /* A signal that came meanwhile stops the admissions. On
                 * the loop, its signalfd delivers it; before the loop runs
                 * (a window's first admissions), it is asked for every 16
                 * accounts (a syscall each time). */
                if (++started % 16 == 0 && !ob_loop_running(x->loop))
                        ob_execute_poll_signals(x->r);
        }
        if (started % 16 != 0 && !ob_loop_running(x->loop))
                ob_execute_poll_signals(x->r);
        x->admitting = false;
}

/* Adds a record to the batch being gathered and arms the flush that hands
 * it to the writer at the end of this loop turn. */
static int batch_add(struct exec *x, const struct ob_write *w)
{
        if (!x->flush_timer) {
                int k = ob_loop_timer(x->loop, 0, on_flush, x, &x->flush_timer);
                if (k < 0)
                        return k;
        }
        int k = ob_write_batch_add(&x->batch, w);
        if (k == 0)
                x->seq++;
        return k;
}

/* A request that was queued but will not leave: it keeps its intent (the
 * next pass sends it with the same key). */
static void unqueue(struct exec *x, struct pending_req *pr, const char *why)
{
        struct job *j = pr->job;
        struct ob_step_result *res = &j->item->results[pr->step];
        res->interrupted = true;
        if (why && !res->error)
                res->error = strdup(why);
        j->pr = NULL;
        j->busy = false;
        j->next = j->item->plan->nsteps;
        x->inflight--;
        free(pr);
}

static void fail_commit(struct exec *x, int k)
{
        ob_log(OB_LOG_ERROR, "event=state_write_failed error=%s note=\"stopped acting: no request leaves "
                             "without its intent recorded\"",
               ob_log_quote(ob_state_errmsg(x->r->state)));
        if (!x->fatal)
                x->fatal = k;
}

/* Lets the requests of a committed batch leave (k == 0), or keeps them
 * back (k < 0, or the pass is stopping). */
static void release(struct exec *x, struct pending_req **starts, size_t n, int k)
{
        for (size_t q = 0; q < n; q++) {
                struct pending_req *pr = starts[q];
                struct job *j = pr->job;
                const struct ob_step *s = &j->item->plan->steps[pr->step];
                size_t ci = conn_index(x, s->action->connector);
                pr->queued = false;
                if (k < 0 || x->r->signo || x->paused[ci] || x->fatal) {
                        bool paused = x->paused[ci] && k == 0 && !x->r->signo && !x->fatal;
                        unqueue(x, pr, x->paused[ci] ? "the connector was paused after failures without an answer"
                                                     : NULL);
                        if (paused)
                                job_advance(j); /* finishes it: the window goes on */
                        continue;
                }
                void *conn = connector_for(x, s->action->connector);
                int e = conn ? ob_connector_start(s->action->connector, conn, s, on_done, pr) : -EINVAL;
                if (e >= 0)
                        ob_metrics_request_left(x->r->ag ? x->r->ag->metrics : NULL);
                if (e < 0) {
                        size_t i = pr->step;
                        free(pr);
                        j->pr = NULL;
                        x->inflight--;
                        j->busy = false;
                        record_outcome(j, i, OB_OUTCOME_FAILED, 0, ob_strerror(e), 0);
                        job_advance(j);
                }
        }
        if ((x->r->signo || x->fatal) && x->inflight == 0)
                ob_loop_stop(x->loop);
}

/* Hands the gathered batch, and the requests waiting for it, to the writer
 * when it is idle; otherwise they wait for the batch it is committing. */
static void submit(struct exec *x)
{
        if (ob_writer_busy(x->writer) || (x->batch.n == 0 && x->nstarts == 0))
                return;
        journal_flush(x); /* the lines of what the batch records come first */
        struct pending_req **t = x->wstarts;
        size_t tcap = x->wstarts_cap;
        x->wstarts = x->starts;
        x->wstarts_cap = x->starts_cap;
        x->nwstarts = x->nstarts;
        x->starts = t;
        x->starts_cap = tcap;
        x->nstarts = 0;
        if (x->batch.n == 0) {
                /* Nothing to record (cannot happen: every start has its
                 * intent); let them go. */
                size_t n = x->nwstarts;
                x->nwstarts = 0;
                release(x, x->wstarts, n, 0);
                return;
        }
        x->seq_writer = x->seq;
        (void)ob_writer_submit(x->writer, &x->batch);
}

/* The writer finished a batch: its requests leave, the next batch goes. */
static void on_written(struct ob_loop *l, int fd, unsigned events, void *ud)
{
        (void)l;
        (void)fd;
        (void)events;
        struct exec *x = ud;
        int k = ob_writer_collect(x->writer, false);
        if (k == -EAGAIN)
                return;
        if (k < 0)
                fail_commit(x, k);
        else
                x->seq_durable = x->seq_writer;
        size_t n = x->nwstarts;
        x->nwstarts = 0;
        release(x, x->wstarts, n, k);
        submit(x);
        if (k == 0)
                wb_release(x);
        maybe_done(x);
}

/* Waits for the writer and commits what is gathered, on this thread: at the
 * end of a window, nothing is left unrecorded. The requests that waited stay
 * owed. Returns 0 or the store's error. */
static int batch_commit(struct exec *x)
{
        int k = 0;
        journal_flush(x);
        if (x->writer && ob_writer_busy(x->writer)) {
                k = ob_writer_collect(x->writer, true);
                if (k < 0)
                        fail_commit(x, k);
                for (size_t q = 0; q < x->nwstarts; q++)
                        unqueue(x, x->wstarts[q], NULL);
                x->nwstarts = 0;
        }
        if (x->batch.n > 0) {
                int e = ob_write_batch_apply(x->r->state, &x->batch);
                ob_write_batch_clear(&x->batch);
                if (e < 0) {
                        fail_commit(x, e);
                        k = k < 0 ? k : e;
                }
        }
        return k;
}

static void on_flush(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct exec *x = ud;
        x->flush_timer = NULL;
        submit(x);
}

/* The end of a window of accounts: what this turn recorded is made durable;
 * what waited to leave stays owed. */
static void exec_window_end(struct exec *x)
{
        if (x->flush_timer)
                ob_loop_timer_cancel(x->loop, x->flush_timer);
        x->flush_timer = NULL;
        batch_commit(x);
        /* Write-backs on the wire are answered; those that had not left
         * are sent after the window (ob_execute_write_backs). */
        if (!x->r->stop_now)
                wb_collect_all(x);
        wb_orphan(x);
        x->wbq_head = x->nwbq = 0;
        x->wb_wait_head = x->nwb_wait = 0;
        for (size_t q = 0; q < x->nstarts; q++)
                unqueue(x, x->starts[q], NULL);
        x->nstarts = 0;
        /* Requests the connectors abandoned never call back. */
        for (size_t i = 0; x->jobs && i < x->njobs; i++)
                if (x->jobs[i].pr) {
                        x->jobs[i].item->results[x->jobs[i].pr->step].interrupted = true;
                        free(x->jobs[i].pr);
                        x->jobs[i].pr = NULL;
                }
        for (size_t i = 0; x->jobs && i < x->njobs; i++)
                if (x->jobs[i].retry_timer) {
                        ob_loop_timer_cancel(x->loop, x->jobs[i].retry_timer);
                        x->jobs[i].retry_timer = NULL;
                }
        x->njobs = 0;
        x->items = NULL;
        x->nitems = x->next_item = x->active = 0;
        x->inflight = x->waiting = 0;
}

static void exec_free(struct exec *x)
{
        exec_window_end(x);
        if (x->writer) {
                ob_loop_io(x->loop, ob_writer_fd(x->writer), 0, NULL, NULL);
                ob_writer_free(x->writer);
        }
        ob_write_batch_free(&x->batch);
        free(x->starts);
        free(x->wstarts);
        free(x->wbq);
        free(x->wb_wait);
        for (size_t i = 0; x->conns && i < x->r->c->nconnectors; i++)
                if (x->conns[i])
                        ob_connector_free(&x->r->c->connectors[i], x->conns[i]);
        free(x->conns);
        free(x->jobs);
        free(x->fails);
        free(x->paused);
        if (x->drain_timer)
                ob_loop_timer_cancel(x->loop, x->drain_timer);
        x->r->x = NULL;
        free(x);
}

/* Retries waiting for their timer will not happen in this pass. */
static void cancel_retries(struct exec *x)
{
        for (size_t i = 0; i < x->njobs; i++) {
                struct job *j = &x->jobs[i];
                if (!j->retry_timer)
                        continue;
                ob_loop_timer_cancel(x->loop, j->retry_timer);
                j->retry_timer = NULL;
                j->busy = false;
                j->next = j->item->plan->nsteps;
                x->waiting--;
                x->r->sum.steps_failed++; /* its last attempt failed and stays the outcome */
        }
}

/* A connector that fails again and again without answering (down, or every
 * request timing out) is paused for the rest of the pass: what is queued for
 * it is dropped (each keeps its recorded intent and key) and its remaining
 * steps are held, while the other connectors go on. */
static void pause_connector(struct exec *x, size_t ci)
{
        const struct ob_connector *k = &x->r->c->connectors[ci];
        x->paused[ci] = true;
        ob_log(OB_LOG_WARNING,
               "event=connector_paused connector=%s failures=%d note=\"no answer %d times in a row; its actions "
               "are held until the next pass\"",
               k->name, x->fails[ci], x->fails[ci]);
        if (x->conns[ci]) {
                ob_connector_free(k, x->conns[ci]);
                x->conns[ci] = NULL;
        }
        for (size_t i = 0; i < x->njobs; i++) {
                struct job *j = &x->jobs[i];
                if (j->pr && !j->pr->queued && j->item->plan->steps[j->pr->step].action->connector == k) {
                        struct ob_step_result *res = &j->item->results[j->pr->step];
                        free(res->error);
                        res->error = strdup("the connector was paused after failures without an answer; the next "
                                            "pass sends it again with the same key");
                        res->interrupted = true;
                        free(j->pr);
                        j->pr = NULL;
                        j->busy = false;
                        j->next = j->item->plan->nsteps;
                        x->inflight--;
                        x->r->sum.steps_held++;
                }
                if (j->retry_timer && j->item->plan->steps[j->retry_step].action->connector == k) {
                        ob_loop_timer_cancel(x->loop, j->retry_timer);
                        j->retry_timer = NULL;
                        j->busy = false;
                        j->next = j->item->plan->nsteps;
                        x->waiting--;
                        x->r->sum.steps_failed++;
                }
        }
        /* The accounts it held finish, and the window takes the next ones
         * (their steps for this connector are held as they come). */
        for (size_t i = 0; i < x->njobs; i++) {
                struct job *j = &x->jobs[i];
                if (!j->busy && !j->finished && j->next >= j->item->plan->nsteps)
                        job_advance(j);
        }
        if (x->inflight == 0 && x->waiting == 0 && x->r->signo)
                ob_loop_stop(x->loop);
}

/* Abandons what is in flight: the connectors drop their transfers (no
 * callback runs), each step keeps its recorded intent, so the next pass
 * sends it again with the same idempotency key. */
static void exec_abandon(struct exec *x)
{
        for (size_t q = 0; q < x->nstarts; q++)
                unqueue(x, x->starts[q], NULL);
        x->nstarts = 0;
        for (size_t q = 0; q < x->nwstarts; q++)
                unqueue(x, x->wstarts[q], NULL);
        x->nwstarts = 0;
        /* Write-backs on the wire are left: the next pass writes back what
         * the entry lacks. */
        wb_orphan(x);
        x->nwbq = 0;
        x->nwb_wait = 0;
        for (size_t i = 0; x->conns && i < x->r->c->nconnectors; i++)
                if (x->conns[i]) {
                        ob_connector_free(&x->r->c->connectors[i], x->conns[i]);
                        x->conns[i] = NULL;
                }
        for (size_t i = 0; i < x->njobs; i++)
                if (x->jobs[i].pr) {
                        x->jobs[i].item->results[x->jobs[i].pr->step].interrupted = true;
                        free(x->jobs[i].pr);
                        x->jobs[i].pr = NULL;
                        x->jobs[i].busy = false;
                }
        x->inflight = 0;
        cancel_retries(x);
        ob_loop_stop(x->loop);
}

static void on_drain_deadline(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct exec *x = ud;
        x->drain_timer = NULL;
        ob_log(OB_LOG_WARNING, "event=drain_deadline inflight=%zu note=\"abandoned; recorded as interrupted, the next "
                               "pass sends them again with the same keys\"",
               x->inflight);
        exec_abandon(x);
}

const char *ob_execute_signal_name(int signo)
{
        return signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal";
}

/* SIGTERM or SIGINT: the first drains (no new request, in-flight ones get
 * drain_timeout to finish), a second stops at once. */
void ob_execute_on_signal(struct ob_loop *l, int signo, void *ud)
{
        struct run *r = ud;
        if (!r->signo) {
                r->signo = signo;
                r->sum.interrupted_by = signo;
                ob_log(OB_LOG_WARNING,
                       "event=draining signal=%s drain_timeout_ms=%lld note=\"no new request starts; a second signal "
                       "stops at once\"",
                       ob_execute_signal_name(signo), (long long)r->c->drain_timeout_ms);
                if (!r->x && l)
                        ob_loop_stop(l); /* reading: read_accounts stops at once */
                if (r->x)
                        cancel_retries(r->x);
                if (r->x && r->x->inflight == 0)
                        ob_loop_stop(r->x->loop);
                else if (r->x && ob_loop_timer(r->x->loop, r->c->drain_timeout_ms, on_drain_deadline, r->x,
                                               &r->x->drain_timer) < 0)
                        exec_abandon(r->x);
                return;
        }
        ob_log(OB_LOG_WARNING, "event=stopping signal=%s note=\"second signal: what is in flight is abandoned\"",
               ob_execute_signal_name(signo));
        r->stop_now = true;
        if (r->x)
                exec_abandon(r->x);
}

/* Delivers a SIGTERM/SIGINT/SIGHUP that arrived while the loop was not
 * running (the signals stay blocked for the whole pass, so none is lost). */
void ob_execute_poll_signals(struct run *r)
{
        if (!r->loop)
                return;
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        struct timespec zero = {0, 0};
        int s;
        while ((s = sigtimedwait(&set, NULL, &zero)) > 0) {
                if (s == SIGHUP) {
                        /* What the agent's on_hup does: taken here, the signal
                         * never reaches the loop, and `run` must still reload. */
                        ob_agent_reopen_journal(r->ag);
                        r->ag->reload = true;
                } else {
                        /* What the agent's on_signal does: `run` stops after
                         * this pass. */
                        if (!r->ag->stop_signal)
                                r->ag->stop_signal = s;
                        ob_execute_on_signal(r->loop, s, r);
                }
        }
}

int ob_execute_open(struct run *r)
{
        struct exec *x = calloc(1, sizeof(*x));
        size_t nc = r->c->nconnectors ? r->c->nconnectors : 1;
        if (!x)
                return -ENOMEM;
        *x = (struct exec){.r = r, .loop = r->loop};
        x->conns = calloc(nc, sizeof(void *));
        x->fails = calloc(nc, sizeof(*x->fails));
        x->paused = calloc(nc, sizeof(*x->paused));
        r->x = x;
        if (!x->conns || !x->fails || !x->paused) {
                exec_free(x);
                return -ENOMEM;
        }
        /* After the loop blocked its signals: the writer thread inherits
         * the mask and never takes SIGTERM, SIGINT or SIGHUP. */
        int k = ob_writer_new(r->state, &x->writer);
        if (k == 0 && (k = ob_loop_io(x->loop, ob_writer_fd(x->writer), OB_IO_READ, on_written, x)) < 0) {
                ob_writer_free(x->writer);
                x->writer = NULL;
        }
        if (k < 0) {
                exec_free(x);
                return k;
        }
        return 0;
}

void ob_execute_close(struct run *r)
{
        if (r->x)
                exec_free(r->x);
}

int ob_execute_run(struct run *r, struct ob_report_item *items, size_t n)
{
        struct exec *x = r->x;
        if (!x)
                return -EINVAL;
        if (n > x->jobs_cap) {
                struct job *jobs = realloc(x->jobs, n * sizeof(*jobs));
                if (!jobs)
                        return -ENOMEM;
                x->jobs = jobs;
                size_t *wbq = realloc(x->wbq, n * sizeof(*wbq));
                if (!wbq)
                        return -ENOMEM;
                x->wbq = wbq;
                struct wb_wait *ww = realloc(x->wb_wait, n * sizeof(*ww));
                if (!ww)
                        return -ENOMEM;
                x->wb_wait = ww;
                x->jobs_cap = n;
        }
        x->items = items;
        x->nitems = n;
        /* The journal's lines go out a loop turn at a time (journal_flush). */
        ob_journal_hold(r->journal, true);
        admit(x);
        int k = 0;
        if (!r->stop_now && !x->fatal && (x->inflight > 0 || x->waiting > 0))
                k = ob_loop_run(x->loop);
        cancel_retries(x);
        journal_flush(x);
        ob_journal_hold(r->journal, false);
        if (r->journal && ob_journal_sync(r->journal) < 0)
                ob_log(OB_LOG_ERROR, "event=journal_sync_failed path=%s", ob_log_quote(r->c->journal_path));
        /* Owed steps of accounts never started are interrupted too. */
        for (size_t i = 0; r->signo && i < n; i++)
                for (size_t s = 0; items[i].results && s < items[i].plan->nsteps; s++)
                        if (items[i].plan->steps[s].state == OB_STEP_OWED && items[i].results[s].outcome == OB_OUTCOME_NONE &&
                            !items[i].plan->steps[s].hold_reason)
                                items[i].results[s].interrupted = true;
        exec_window_end(x);
        if (k == 0)
                k = x->fatal;
        return k;
}

/* ---- write-back ------------------------------------------------------------ */

static void write_back_done(struct run *r, struct ob_report_item *it, int k);
static void on_wb_done(int result, void *ud);

/* Builds the write-back of one account and sends it; its answer goes to
 * write_back_done through op. Returns 1 when it is on the wire (op taken),
 * else its result (0 or an error): it was done, or failed, already. */
static int write_back(struct run *r, struct cand *cd, struct ob_report_item *it, struct wb_op *op)
{
        const struct ob_writeback_config *w = &r->c->writeback;
        struct ob_account_plan *p = it->plan;
        char when[16];
        ob_time_format_generalized(r->now, when);
        /* A guarded account is written back as blocked, with the guard's
         * reason; the next write-back after the guard clears puts its status. */
        const char *status[] = {p->blocked ? "blocked" : ob_status_name(p->status), NULL};
        const char *time[] = {when, NULL};
        /* AD limits these attributes to 1,024 characters; cut on a UTF-8 boundary. */
        char reason_buf[1024];
        const char *why = p->reason;
        if (p->blocked) {
                snprintf(reason_buf, sizeof(reason_buf), "blocked by %s", p->blocked);
                why = reason_buf;
        }
        const char *reason[] = {why, NULL};
        if (why && strlen(why) >= sizeof(reason_buf) - 1) {
                size_t n = sizeof(reason_buf) - 1;
                while (n > 0 && ((unsigned char)why[n] & 0xC0) == 0x80)
                        n--;
                memmove(reason_buf, why, n);
                reason_buf[n] = '\0';
                reason[0] = reason_buf;
        }
        const char *none[] = {NULL}; /* an empty list deletes the attribute */
        char **acts = NULL;
        int k = 0;
        for (size_t i = 0; k == 0 && i < p->nsteps; i++) {
                char *v;
                const char *o = p->steps[i].state != OB_STEP_OWED ? ob_step_state_name(p->steps[i].state)
                                : it->results[i].outcome == OB_OUTCOME_NONE
                                        ? "held"
                                        : ob_outcome_name(it->results[i].outcome);
                if (asprintf(&v, "%s %s %s", p->steps[i].action->name, o, when) < 0)
                        k = -ENOMEM;
                else {
                        k = ob_strv_add_unique_ci(&acts, v);
                        free(v);
                }
        }
        struct ob_dir_mod mods[4];
        size_t nm = 0;
        mods[nm++] = (struct ob_dir_mod){w->status_attribute, status};
        if (w->time_attribute)
                mods[nm++] = (struct ob_dir_mod){w->time_attribute, time};
        if (w->reason_attribute)
                mods[nm++] = (struct ob_dir_mod){w->reason_attribute, why ? reason : none};
        if (w->actions_attribute && p->transition)
                mods[nm++] = (struct ob_dir_mod){w->actions_attribute,
                                                 acts ? (const char *const *)acts : none};
        const char *assert_value = w->assertion_attribute ? ob_account_get(cd->account, w->assertion_attribute) : NULL;
        /* The entry was read with its objectClass: whether the class must be
         * added is known, and the modify need not wait for a read. */
        const struct ob_attr *oc = ob_account_attr(cd->account, "objectClass");
        if (k == 0 && oc && oc->nvals > 0) {
                bool add = false;
                if (w->object_class) {
                        add = true;
                        for (size_t i = 0; i < oc->nvals; i++)
                                add = add && !ob_streq_ci(oc->vals[i].data, w->object_class);
                }
                k = ob_dir_replace_start(r->dir, p->dn, add, w->object_class, mods, nm,
                                         assert_value ? w->assertion_attribute : NULL, assert_value, on_wb_done, op);
                k = k == 1 ? 0 : k == 0 ? 1 : k;
        } else if (k == 0) {
                k = ob_dir_replace(r->dir, p->dn, w->object_class, mods, nm, assert_value ? w->assertion_attribute : NULL,
                                   assert_value);
        }
        ob_strv_free(acts);
        return k;
}

static void write_back_done(struct run *r, struct ob_report_item *it, int k)
{
        const struct ob_account_plan *p = it->plan;
        it->writeback_result = k == 0 ? 0 : -1;
        if (k < 0) {
                r->sum.writebacks_failed++;
                ob_log(OB_LOG_WARNING, "event=writeback_failed account=%s dn=%s error=%s%s",
                       ob_log_quote(p->username ? p->username : p->id), ob_log_quote(p->dn),
                       ob_log_quote(ob_strerror(k)),
                       k == -OB_EASSERTION ? " note=\"the entry changed since it was read; the next pass retries\"" : "");
        }
}

/* ---- write-backs on the loop ------------------------------------------------ */

static void on_wb_done(int result, void *ud)
{
        struct wb_op *op = ud;
        struct exec *x = op->x;
        if (op->it)
                write_back_done(op->r, op->it, result);
        if (op->nflight)
                (*op->nflight)--;
        for (size_t f = 0; x && f < x->nwbfl; f++)
                if (x->wbfl[f] == op) {
                        x->wbfl[f] = x->wbfl[--x->nwbfl];
                        break;
                }
        free(op);
        if (x) {
                wb_pump(x);
                maybe_done(x);
        }
}

/* Write-backs on the wire that nobody will wait for: their answers are
 * dropped (the next pass writes back what the entry lacks). */
static void wb_orphan(struct exec *x)
{
        for (size_t f = 0; f < x->nwbfl; f++)
                *x->wbfl[f] = (struct wb_op){0};
        x->nwbfl = 0;
}

/* Waits for every write-back on the wire (the end of a window). */
static void wb_collect_all(struct exec *x)
{
        while (x->nwbfl > 0 && ob_dir_wait(x->r->dir) != -EINVAL)
                ;
}

/* Sends the write-backs that may leave while there is room on the wire. */
static void wb_pump(struct exec *x)
{
        struct run *r = x->r;
        while (x->nwbq > 0 && x->nwbfl < OB_WRITEBACKS_IN_FLIGHT && !r->stop_now) {
                size_t i = x->wbq[x->wbq_head++];
                x->nwbq--;
                struct ob_report_item *it = &x->items[i];
                struct wb_op *op = malloc(sizeof(*op));
                if (!op) {
                        write_back_done(r, it, -ENOMEM);
                        continue;
                }
                *op = (struct wb_op){.x = x, .r = r, .it = it};
                x->wbfl[x->nwbfl++] = op;
                int k = write_back(r, &r->cands[i], it, op);
                if (k != 1) {
                        x->wbfl[--x->nwbfl] = NULL;
                        free(op);
                        write_back_done(r, it, k);
                }
        }
}

/* Write-backs whose records became durable may leave. */
static void wb_release(struct exec *x)
{
        while (x->nwb_wait > 0 && x->wb_wait[x->wb_wait_head].seq <= x->seq_durable) {
                x->wbq[x->wbq_head + x->nwbq++] = x->wb_wait[x->wb_wait_head++].item;
                x->nwb_wait--;
        }
        wb_pump(x);
}

/* An account finished its steps: its write-back leaves once what was
 * recorded for it is durable (status and outcomes are written onto the
 * entry only after the state store has them). */
static void wb_finished(struct exec *x, struct job *j)
{
        struct ob_report_item *it = j->item;
        if (!x->wbq || !x->r->dir || !it->plan->writeback || it->plan->deleted || x->r->stop_now || x->r->signo)
                return; /* left to ob_execute_write_backs after the window, or to the next pass */
        size_t i = (size_t)(it - x->items);
        if (x->seq <= x->seq_durable) {
                x->wbq[x->wbq_head + x->nwbq++] = i;
                wb_pump(x);
        } else {
                x->wb_wait[x->wb_wait_head + x->nwb_wait++] = (struct wb_wait){i, x->seq};
        }
}

/* Every write-back the window still owes, up to OB_WRITEBACKS_IN_FLIGHT on
 * the wire at once. */
void ob_execute_write_backs(struct run *r, struct ob_report_item *items, size_t n)
{
        size_t nflight = 0;
        for (size_t i = 0; i < n; i++) {
                struct ob_report_item *it = &items[i];
                if (!it->plan->writeback || it->plan->deleted || it->writeback_result != 1)
                        continue; /* nothing to write, or written on the loop already */
                while (nflight >= OB_WRITEBACKS_IN_FLIGHT && ob_dir_wait(r->dir) != -EINVAL)
                        ;
                struct wb_op *op = malloc(sizeof(*op));
                if (!op) {
                        write_back_done(r, it, -ENOMEM);
                        continue;
                }
                *op = (struct wb_op){.r = r, .it = it, .nflight = &nflight};
                nflight++;
                int k = write_back(r, &r->cands[i], it, op);
                if (k != 1) {
                        nflight--;
                        free(op);
                        write_back_done(r, it, k);
                }
        }
        while (nflight > 0 && ob_dir_wait(r->dir) != -EINVAL)
                ;
}
