/* writer.c: see writer.h. */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int ob_write_batch_add(struct ob_write_batch *b, const struct ob_write *w)
{
        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 64;
                struct ob_write *n = realloc(b->w, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                b->w = n;
                b->cap = cap;
        }
        struct ob_write c = *w;
        c.detail = NULL;
        if (w->error && !(c.error = strdup(w->error)))
                return -ENOMEM;
        if (w->detail && !(c.detail = strdup(w->detail))) {
                free(c.error);
                return -ENOMEM;
        }
        b->w[b->n++] = c;
        return 0;
}

void ob_write_batch_clear(struct ob_write_batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                free(b->w[i].error);
                free(b->w[i].detail);
        }
        b->n = 0;
}

void ob_write_batch_free(struct ob_write_batch *b)
{
        ob_write_batch_clear(b);
        free(b->w);
        *b = (struct ob_write_batch){0};
}

int ob_write_batch_apply(struct ob_state *s, const struct ob_write_batch *b)
{
        if (b->n == 0)
                return 0;
        int k = ob_state_begin(s);
        for (size_t i = 0; k == 0 && i < b->n; i++) {
                const struct ob_write *w = &b->w[i];
                switch (w->op) {
                case OB_WRITE_INTENT:
                        k = ob_state_action_intent(s, w->id, w->generation, w->action, w->key, w->at);
                        if (k == 0 && w->detail)
                                k = ob_state_action_memberships(s, w->id, w->generation, w->action, w->detail);
                        break;
                case OB_WRITE_OUTCOME:
                        k = ob_state_action_outcome_detail(s, w->id, w->generation, w->action,
                                                           (enum ob_outcome)w->outcome, w->http_status, w->error,
                                                           w->detail, w->at);
                        break;
                case OB_WRITE_DEFER:
                        k = ob_state_action_defer(s, w->id, w->generation, w->action, w->not_before, w->parked);
                        break;
                }
        }
        if (k == 0)
                k = ob_state_commit(s);
        if (k < 0)
                ob_state_rollback(s);
        return k;
}

struct ob_writer {
        struct ob_state *state;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct ob_write_batch todo; /* with the thread while submitted */
        bool submitted;             /* a batch is with the thread or waits for collect */
        bool done;                  /* ... and it is done: result holds its outcome */
        bool quit;
        int result;
        int efd;
};

static void *writer_main(void *ud)
{
        struct ob_writer *w = ud;
        pthread_mutex_lock(&w->mu);
        for (;;) {
                while (!w->quit && (!w->submitted || w->done))
                        pthread_cond_wait(&w->cv, &w->mu);
                if (w->quit)
                        break;
                pthread_mutex_unlock(&w->mu);
                int k = ob_write_batch_apply(w->state, &w->todo);
                pthread_mutex_lock(&w->mu);
                w->result = k;
                w->done = true;
                uint64_t one = 1;
                ssize_t n;
                do
                        n = write(w->efd, &one, sizeof(one));
                while (n < 0 && errno == EINTR);
        }
        pthread_mutex_unlock(&w->mu);
        return NULL;
}

int ob_writer_new(struct ob_state *s, struct ob_writer **ret)
{
        struct ob_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->state = s;
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                int e = -errno;
                free(w);
                return e;
        }
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        int e = pthread_create(&w->thread, NULL, writer_main, w);
        if (e) {
                close(w->efd);
                pthread_mutex_destroy(&w->mu);
                pthread_cond_destroy(&w->cv);
                free(w);
                return -e;
        }
        *ret = w;
        return 0;
}

int ob_writer_fd(const struct ob_writer *w)
{
        return w->efd;
}

bool ob_writer_busy(const struct ob_writer *w)
{
        return w->submitted; /* only the loop's thread changes it */
}

int ob_writer_submit(struct ob_writer *w, struct ob_write_batch *b)
{
        if (w->submitted)
                return -EBUSY;
        pthread_mutex_lock(&w->mu);
        struct ob_write_batch t = w->todo;
        w->todo = *b;
        *b = t; /* the last batch's emptied array comes back for reuse */
        w->submitted = true;
        w->done = false;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return 0;
}

int ob_writer_collect(struct ob_writer *w, bool wait)
{
        if (!w->submitted)
                return 0;
        uint64_t v;
        for (;;) {
                ssize_t n = read(w->efd, &v, sizeof(v));
                if (n == sizeof(v))
                        break;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        if (!wait)
                                return -EAGAIN;
                        struct pollfd p = {.fd = w->efd, .events = POLLIN};
                        (void)poll(&p, 1, -1);
                        continue;
                }
                return -EIO;
        }
        pthread_mutex_lock(&w->mu);
        int k = w->result;
        w->submitted = false;
        w->done = false;
        ob_write_batch_clear(&w->todo);
        pthread_mutex_unlock(&w->mu);
        return k;
}

void ob_writer_free(struct ob_writer *w)
{
        if (!w)
                return;
        (void)ob_writer_collect(w, true);
        pthread_mutex_lock(&w->mu);
        w->quit = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        ob_write_batch_free(&w->todo);
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
}
