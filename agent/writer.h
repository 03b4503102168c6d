/* writer.h: the executor's records (intents, outcomes, deferrals), committed
 * to the state store by a thread of their own so that the event loop never
 * waits for an fsync.
 *
 * The loop gathers records into a batch; when the writer is idle it submits
 * the batch, and keeps gathering the next one while the writer commits it
 * (one transaction, one fsync). The writer's descriptor becomes readable when
 * the batch is durable (or failed); the loop then collects the result and
 * lets the requests that waited for it leave. Only one batch is with the
 * writer at a time, and the loop does not touch the state store while it is:
 * the store is used by one thread at a time.
 */
#ifndef OB_WRITER_H
#define OB_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

enum ob_write_op { OB_WRITE_INTENT, OB_WRITE_OUTCOME, OB_WRITE_DEFER };

/* One record. id, action and key are borrowed (they must outlive the batch);
 * error and detail are owned by the batch. */
struct ob_write {
        enum ob_write_op op;
        const char *id;
        int64_t generation;
        const char *action;
        const char *key;   /* intent */
        int outcome;       /* outcome: enum ob_outcome */
        long http_status;  /* outcome */
        char *error;       /* outcome, or NULL */
        char *detail;      /* intent (ob_step.intent_detail), outcome (ob_response.detail), or NULL */
        int64_t at;        /* intent, outcome: when */
        int64_t not_before; /* defer */
        bool parked;       /* defer */
};

struct ob_write_batch {
        struct ob_write *w;
        size_t n, cap;
};

/* Appends a copy of w (error and detail duplicated). 0 or -ENOMEM. */
int ob_write_batch_add(struct ob_write_batch *b, const struct ob_write *w);
void ob_write_batch_clear(struct ob_write_batch *b); /* empty, capacity kept */
void ob_write_batch_free(struct ob_write_batch *b);

/* Writes every record of b in one transaction on the calling thread. */
int ob_write_batch_apply(struct ob_state *s, const struct ob_write_batch *b);

struct ob_writer;

/* Starts the writer thread for s. The calling thread's signal mask is
 * inherited: block the signals the loop owns first. */
int ob_writer_new(struct ob_state *s, struct ob_writer **ret);
/* Readable when the submitted batch is done. */
int ob_writer_fd(const struct ob_writer *w);
bool ob_writer_busy(const struct ob_writer *w);
/* Hands b's records to the writer (b is left empty). -EBUSY while the last
 * batch is not collected. */
int ob_writer_submit(struct ob_writer *w, struct ob_write_batch *b);
/* The result of the submitted batch: 0, a negative error from the store, or
 * -EAGAIN when it is not done yet and wait is false. */
int ob_writer_collect(struct ob_writer *w, bool wait);
/* Waits for a batch in progress, then stops the thread. */
void ob_writer_free(struct ob_writer *w);

#endif
