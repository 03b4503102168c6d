/* test_loop.c: the epoll event loop (timers, fds, signals, termination). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"

static struct ob_loop *loop;

static void setup(void)
{
        cr_assert_eq(ob_loop_new(&loop), 0);
}

static void teardown(void)
{
        ob_loop_free(loop);
        loop = NULL;
}

TestSuite(loop, .init = setup, .fini = teardown, .timeout = 20);

/* A record of callbacks, in the order they ran. */
struct trace {
        int ids[32];
        int n;
};

static void trace_add(struct trace *t, int id)
{
        cr_assert_lt(t->n, 32);
        t->ids[t->n++] = id;
}

struct tagged {
        struct trace *trace;
        int id;
};

static void on_tagged_timer(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct tagged *tg = userdata;
        trace_add(tg->trace, tg->id);
}

static void on_stop_timer(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        bool *fired = userdata;
        *fired = true;
        ob_loop_stop(l);
}

Test(loop, run_returns_at_once_when_nothing_is_watched_or_pending)
{
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_lt(ob_loop_now_ms() - start, 1000);
}

Test(loop, timers_fire_in_deadline_order_not_creation_order)
{
        struct trace tr = {0};
        /* 100 ms apart: the four calls would have to take that long, on a
         * loaded CI machine, for creation to overtake the deadlines (10 ms
         * did: a run saw the 10 ms timer before the one due at once). */
        struct tagged a = { &tr, 300 }, b = { &tr, 100 }, c = { &tr, 200 }, d = { &tr, 0 };
        cr_assert_eq(ob_loop_timer(loop, 300, on_tagged_timer, &a, NULL), 0);
        cr_assert_eq(ob_loop_timer(loop, 100, on_tagged_timer, &b, NULL), 0);
        cr_assert_eq(ob_loop_timer(loop, 200, on_tagged_timer, &c, NULL), 0);
        cr_assert_eq(ob_loop_timer(loop, 0, on_tagged_timer, &d, NULL), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(tr.n, 4);
        cr_assert_eq(tr.ids[0], 0);
        cr_assert_eq(tr.ids[1], 100);
        cr_assert_eq(tr.ids[2], 200);
        cr_assert_eq(tr.ids[3], 300);
}

Test(loop, timers_with_the_same_deadline_fire_in_creation_order)
{
        struct trace tr = {0};
        struct tagged t[5];
        for (int i = 0; i < 5; i++) {
                t[i] = (struct tagged){ &tr, i };
                cr_assert_eq(ob_loop_timer(loop, 0, on_tagged_timer, &t[i], NULL), 0);
        }
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(tr.n, 5);
        for (int i = 0; i < 5; i++)
                cr_assert_eq(tr.ids[i], i);
}

Test(loop, a_timer_does_not_fire_before_its_delay)
{
        struct trace tr = {0};
        struct tagged a = { &tr, 1 };
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_timer(loop, 60, on_tagged_timer, &a, NULL), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(tr.n, 1);
        cr_assert_geq(ob_loop_now_ms() - start, 60);
}

Test(loop, now_ms_is_monotonic)
{
        int64_t a = ob_loop_now_ms();
        usleep(20000);
        int64_t b = ob_loop_now_ms();
        cr_assert_geq(b - a, 20);
        cr_assert_lt(b - a, 2000);
}

/* A zero timer that re-arms itself; its first run makes a pipe readable. */
struct starve {
        int wfd;
        int rearmed;
        bool io_seen;
};

static void on_rearm(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        struct starve *s = userdata;
        if (s->rearmed == 0)
                cr_assert_eq(write(s->wfd, "x", 1), 1);
        if (s->io_seen || s->rearmed > 1000)
                return;
        s->rearmed++;
        cr_assert_eq(ob_loop_timer(l, 0, on_rearm, s, NULL), 0);
}

static void on_starve_io(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        struct starve *s = userdata;
        cr_assert(events & OB_IO_READ);
        s->io_seen = true;
        ob_loop_io(l, fd, 0, NULL, NULL);
}

Test(loop, a_zero_timer_armed_from_a_callback_runs_on_the_next_iteration)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        struct starve s = { .wfd = p[1] };
        cr_assert_eq(ob_loop_timer(loop, 0, on_rearm, &s, NULL), 0);
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_starve_io, &s), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        /* Had the re-armed timer run in the same pass, it would have spun
         * to the 1000 limit before the pipe was looked at again. */
        cr_assert(s.io_seen);
        cr_assert_leq(s.rearmed, 2, "re-armed %d times before the fd was served", s.rearmed);
        close(p[0]);
        close(p[1]);
}

Test(loop, a_cancelled_timer_never_fires)
{
        struct trace tr = {0};
        struct tagged a = { &tr, 1 }, b = { &tr, 2 }, c = { &tr, 3 };
        struct ob_timer *ta, *tb, *tc;
        cr_assert_eq(ob_loop_timer(loop, 10, on_tagged_timer, &a, &ta), 0);
        cr_assert_eq(ob_loop_timer(loop, 20, on_tagged_timer, &b, &tb), 0);
        cr_assert_eq(ob_loop_timer(loop, 0, on_tagged_timer, &c, &tc), 0);
        ob_loop_timer_cancel(loop, ta);
        ob_loop_timer_cancel(loop, tc);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(tr.n, 1);
        cr_assert_eq(tr.ids[0], 2);
}

struct canceller {
        struct ob_timer *victim;
        struct trace *trace;
};

static void on_cancel_other(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        struct canceller *c = userdata;
        trace_add(c->trace, 100);
        ob_loop_timer_cancel(l, c->victim);
        /* Cancelling the running timer itself is harmless. */
        ob_loop_timer_cancel(l, t);
}

Test(loop, a_timer_cancelled_from_another_timer_callback_never_fires)
{
        struct trace tr = {0};
        struct tagged v = { &tr, 7 };
        struct canceller c = { NULL, &tr };
        cr_assert_eq(ob_loop_timer(loop, 5, on_cancel_other, &c, NULL), 0);
        cr_assert_eq(ob_loop_timer(loop, 5, on_tagged_timer, &v, &c.victim), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(tr.n, 1);
        cr_assert_eq(tr.ids[0], 100);
}

struct reader {
        char buf[64];
        size_t len;
        int calls;
};

static void on_read_once(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        struct reader *r = userdata;
        r->calls++;
        cr_assert(events & OB_IO_READ);
        ssize_t k = read(fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
        cr_assert_gt(k, 0);
        r->len += (size_t)k;
        r->buf[r->len] = '\0';
        cr_assert_eq(ob_loop_io(l, fd, 0, NULL, NULL), 0);
}

Test(loop, io_on_a_pipe_is_delivered_and_can_be_removed_from_its_own_callback)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        struct reader r = {0};
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_read_once, &r), 0);
        cr_assert_eq(write(p[1], "hello", 5), 5);
        cr_assert_eq(ob_loop_run(loop), 0); /* returns: nothing left once removed */
        cr_assert_eq(r.calls, 1);
        cr_assert_str_eq(r.buf, "hello");
        /* More data after removal is not delivered. */
        cr_assert_eq(write(p[1], "again", 5), 5);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(r.calls, 1);
        close(p[0]);
        close(p[1]);
}

static void on_write_ready(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        int *calls = userdata;
        (*calls)++;
        cr_assert(events & OB_IO_WRITE);
        cr_assert_eq(write(fd, "w", 1), 1);
        ob_loop_io(l, fd, 0, NULL, NULL);
}

Test(loop, write_readiness_is_delivered)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        int calls = 0;
        cr_assert_eq(ob_loop_io(loop, p[1], OB_IO_WRITE, on_write_ready, &calls), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(calls, 1);
        char c;
        cr_assert_eq(read(p[0], &c, 1), 1);
        cr_assert_eq(c, 'w');
        close(p[0]);
        close(p[1]);
}

/* Two readable pipes in one batch: whichever callback runs first removes
 * and closes the other, whose event (already fetched) must be dropped. */
struct pair {
        int fds[2];
        int calls[2];
};

static void on_pair(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)events;
        struct pair *p = userdata;
        int me = fd == p->fds[0] ? 0 : 1;
        p->calls[me]++;
        int other = p->fds[1 - me];
        if (other >= 0) {
                cr_assert_eq(ob_loop_io(l, other, 0, NULL, NULL), 0);
                close(other);
                p->fds[1 - me] = -1;
        }
        ob_loop_io(l, fd, 0, NULL, NULL);
}

Test(loop, a_watch_removed_by_an_earlier_callback_in_the_same_batch_is_not_called)
{
        int a[2], b[2];
        cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
        cr_assert_eq(write(a[1], "a", 1), 1);
        cr_assert_eq(write(b[1], "b", 1), 1);
        struct pair p = { .fds = { a[0], b[0] } };
        cr_assert_eq(ob_loop_io(loop, a[0], OB_IO_READ, on_pair, &p), 0);
        cr_assert_eq(ob_loop_io(loop, b[0], OB_IO_READ, on_pair, &p), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(p.calls[0] + p.calls[1], 1);
        for (int i = 0; i < 2; i++)
                if (p.fds[i] >= 0)
                        close(p.fds[i]);
        close(a[1]);
        close(b[1]);
}

/* Same, but the closed fd number is reused at once for a new, empty pipe:
 * the event fetched for the old file must not reach the new watch. */
struct reuse {
        int fds[2];
        int first_calls;
        int fresh_calls;
        int fresh_fd;
        int fresh_w;
};

static void on_fresh(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)l;
        (void)fd;
        (void)events;
        struct reuse *r = userdata;
        r->fresh_calls++;
}

static void on_reuse_done(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        struct reuse *r = userdata;
        ob_loop_io(l, r->fresh_fd, 0, NULL, NULL);
}

static void on_reuse(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)events;
        struct reuse *r = userdata;
        r->first_calls++;
        int other = fd == r->fds[0] ? r->fds[1] : r->fds[0];
        cr_assert_eq(ob_loop_io(l, other, 0, NULL, NULL), 0);
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        cr_assert_eq(dup3(p[0], other, O_CLOEXEC), other); /* closes the old file */
        close(p[0]);
        r->fresh_fd = other;
        r->fresh_w = p[1];
        cr_assert_eq(ob_loop_io(l, other, OB_IO_READ, on_fresh, r), 0);
        cr_assert_eq(ob_loop_io(l, fd, 0, NULL, NULL), 0);
        cr_assert_eq(ob_loop_timer(l, 50, on_reuse_done, r, NULL), 0);
}

Test(loop, an_event_fetched_for_a_closed_fd_never_reaches_a_new_watch_on_the_same_number)
{
        int a[2], b[2];
        cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
        cr_assert_eq(write(a[1], "a", 1), 1);
        cr_assert_eq(write(b[1], "b", 1), 1);
        struct reuse r = { .fds = { a[0], b[0] }, .fresh_fd = -1, .fresh_w = -1 };
        cr_assert_eq(ob_loop_io(loop, a[0], OB_IO_READ, on_reuse, &r), 0);
        cr_assert_eq(ob_loop_io(loop, b[0], OB_IO_READ, on_reuse, &r), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(r.first_calls, 1);
        cr_assert_eq(r.fresh_calls, 0);
        close(a[0]);
        close(b[0]);
        close(a[1]);
        close(b[1]);
        close(r.fresh_w);
}

static void on_hangup(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        unsigned *seen = userdata;
        *seen = events;
        ob_loop_io(l, fd, 0, NULL, NULL);
}

Test(loop, a_closed_peer_is_reported_as_an_error_with_the_requested_events)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        close(p[1]);
        unsigned seen = 0;
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_hangup, &seen), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert(seen & OB_IO_ERROR);
        cr_assert(seen & OB_IO_READ);
        close(p[0]);
}

Test(loop, watching_a_negative_fd_or_without_a_callback_is_refused)
{
        cr_assert_eq(ob_loop_io(loop, -1, OB_IO_READ, on_hangup, NULL), -EBADF);
        cr_assert_eq(ob_loop_io(loop, 0, OB_IO_READ, NULL, NULL), -EINVAL);
        cr_assert_eq(ob_loop_timer(loop, -1, on_tagged_timer, NULL, NULL), -EINVAL);
        cr_assert_eq(ob_loop_run(loop), 0);
}

struct sigrec {
        int signo;
        int calls;
        struct ob_timer *safety;
};

static void on_signal(struct ob_loop *l, int signo, void *userdata)
{
        struct sigrec *s = userdata;
        s->signo = signo;
        s->calls++;
        ob_loop_timer_cancel(l, s->safety);
        s->safety = NULL;
}

Test(loop, a_raised_signal_arrives_through_the_loop)
{
        struct sigrec s = {0};
        bool safety_fired = false;
        cr_assert_eq(ob_loop_signal(loop, SIGUSR1, on_signal, &s), 0);
        cr_assert_eq(ob_loop_timer(loop, 5000, on_stop_timer, &safety_fired, &s.safety), 0);
        cr_assert_eq(raise(SIGUSR1), 0); /* blocked: stays pending for the signalfd */
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_not(safety_fired);
        cr_assert_eq(s.calls, 1);
        cr_assert_eq(s.signo, SIGUSR1);
}

Test(loop, a_signal_handler_alone_does_not_keep_the_loop_running)
{
        struct sigrec s = {0};
        cr_assert_eq(ob_loop_signal(loop, SIGUSR2, on_signal, &s), 0);
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_lt(ob_loop_now_ms() - start, 1000);
        cr_assert_eq(s.calls, 0);
}

Test(loop, stop_makes_run_return_with_timers_still_pending)
{
        bool fired = false;
        struct trace tr = {0};
        struct tagged later = { &tr, 1 };
        cr_assert_eq(ob_loop_timer(loop, 10, on_stop_timer, &fired, NULL), 0);
        cr_assert_eq(ob_loop_timer(loop, 10000, on_tagged_timer, &later, NULL), 0);
        int64_t start = ob_loop_now_ms();
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert(fired);
        cr_assert_eq(tr.n, 0);
        cr_assert_lt(ob_loop_now_ms() - start, 5000);
        /* The loop is freed with the pending timer (no leak under ASan). */
}

static void on_running_check(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        *(int *)userdata = ob_loop_running(l) ? 1 : 0;
}

Test(loop, running_is_true_only_inside_run)
{
        cr_assert_not(ob_loop_running(loop));
        cr_assert_not(ob_loop_running(NULL));
        int inside = -1;
        struct ob_timer *t = NULL;
        cr_assert_eq(ob_loop_timer(loop, 0, on_running_check, &inside, &t), 0);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(inside, 1);
        cr_assert_not(ob_loop_running(loop), "false again once run returned");
}

/* Unwatching leaves the fd in the epoll set until the next wait (one MOD
 * instead of a DEL and an ADD when it is watched again in the same turn). */
struct rewatch {
        int fd;          /* the fd of the first watch */
        int pipe_w;      /* write end of the pipe whose read end is watched now */
        bool reopen;     /* close the first fd and watch a new pipe under the same number */
        int first_calls, second_calls;
        char got[8];
};

static void on_rewatch_second(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        struct rewatch *rw = userdata;
        cr_assert(events & OB_IO_READ);
        rw->second_calls++;
        ssize_t n = read(fd, rw->got, sizeof(rw->got) - 1);
        cr_assert_gt(n, 0);
        ob_loop_io(l, fd, 0, NULL, NULL);
}

static void on_rewatch_first(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)events;
        struct rewatch *rw = userdata;
        rw->first_calls++;
        char c;
        cr_assert_eq(read(fd, &c, 1), 1);
        cr_assert_eq(ob_loop_io(l, fd, 0, NULL, NULL), 0);
        if (rw->reopen) {
                int old_w = rw->pipe_w;
                close(fd);
                int p[2];
                cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
                cr_assert_eq(p[0], fd, "the new pipe should take the closed number");
                close(old_w);
                rw->pipe_w = p[1];
        }
        cr_assert_eq(ob_loop_io(l, fd, OB_IO_READ, on_rewatch_second, rw), 0);
        cr_assert_eq(write(rw->pipe_w, "second", 6), 6);
}

Test(loop, an_fd_unwatched_and_watched_again_in_one_turn_gets_its_next_events)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        struct rewatch rw = {.fd = p[0], .pipe_w = p[1]};
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_rewatch_first, &rw), 0);
        cr_assert_eq(write(p[1], "1", 1), 1);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(rw.first_calls, 1);
        cr_assert_eq(rw.second_calls, 1);
        cr_assert_str_eq(rw.got, "second");
        close(p[0]);
        close(rw.pipe_w);
}

Test(loop, an_fd_unwatched_closed_and_its_number_reused_in_one_turn_is_watched_anew)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        struct rewatch rw = {.fd = p[0], .pipe_w = p[1], .reopen = true};
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_rewatch_first, &rw), 0);
        cr_assert_eq(write(p[1], "1", 1), 1);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert_eq(rw.first_calls, 1);
        cr_assert_eq(rw.second_calls, 1, "the reused number was never added to the epoll set");
        cr_assert_str_eq(rw.got, "second");
        close(rw.fd);
        close(rw.pipe_w);
}

static void on_unwatch_unread(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)events;
        int *calls = userdata;
        (*calls)++;
        ob_loop_io(l, fd, 0, NULL, NULL); /* leaves its data unread */
}

Test(loop, an_fd_unwatched_with_data_left_unread_is_not_called_again)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        int calls = 0;
        bool fired = false;
        struct ob_timer *t;
        cr_assert_eq(ob_loop_io(loop, p[0], OB_IO_READ, on_unwatch_unread, &calls), 0);
        cr_assert_eq(ob_loop_timer(loop, 50, on_stop_timer, &fired, &t), 0);
        cr_assert_eq(write(p[1], "x", 1), 1);
        cr_assert_eq(ob_loop_run(loop), 0);
        cr_assert(fired);
        cr_assert_eq(calls, 1);
        close(p[0]);
        close(p[1]);
}
