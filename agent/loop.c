/* loop.c: the event loop (epoll), after Redis's ae.c.
 *
 * File descriptors live in a table indexed by fd. Each watch carries a
 * generation number that is also stored in the epoll event, so an event
 * fetched in a batch is dropped when a callback earlier in the same batch
 * removed that watch (or removed it and watched a new file under the same
 * number). Callbacks therefore never see a watcher that is gone.
 *
 * Timers sit in a binary heap ordered by (deadline, creation sequence). One
 * iteration fires only the timers that were due when it started and that
 * existed then, so a timer armed from a callback with delay 0 runs on the next
 * iteration: a callback that re-arms itself cannot starve file descriptors.
 *
 * Signals arrive through one signalfd. Signal handlers do not keep the loop
 * running on their own: ob_loop_run() returns once no fd is watched and no
 * timer is pending, even if signal handlers are installed. Signals handed to
 * ob_loop_signal() are blocked with pthread_sigmask(); call it before other
 * threads are started so that they inherit the mask. ob_loop_free() drains
 * the signals still pending on the signalfd and unblocks the ones the loop
 * blocked.
 *
 * ob_loop_free() must not be called from inside one of the loop's callbacks.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define OB_LOOP_BATCH 64
#define OB_LOOP_SIGNAL_TAG UINT64_MAX
/* Longest accepted delay: about 24 days, so deadlines never overflow and the
 * epoll timeout always fits an int. */
#define OB_LOOP_MAX_DELAY_MS ((int64_t)INT_MAX)

struct ob_io {
        unsigned events; /* 0: not watched */
        bool lazy;       /* not watched, still in the epoll set until the next wait */
        uint32_t gen;
        ob_io_fn fn;
        void *userdata;
};

enum ob_timer_state { OB_TIMER_PENDING, OB_TIMER_RUNNING };

struct ob_timer {
        int64_t deadline;
        uint64_t seq;
        size_t idx; /* position in the heap while pending */
        enum ob_timer_state state;
        ob_timer_fn fn;
        void *userdata;
};

struct ob_signal {
        ob_signal_fn fn;
        void *userdata;
};

struct ob_loop {
        int epfd;
        bool stop;
        unsigned running; /* ob_loop_run()s in progress */

        struct ob_io *io; /* indexed by fd */
        size_t nio_alloc;
        size_t nwatched;
        uint32_t next_gen;
        int *dels; /* fds unwatched since the last wait (see ob_loop_io_remove) */
        size_t ndels, dels_alloc;

        struct ob_timer **heap;
        size_t nheap;
        size_t heap_alloc;
        uint64_t next_seq;

        int sigfd;
        sigset_t sigmask;     /* signals the signalfd reads */
        sigset_t sigblocked;  /* signals this loop blocked (were unblocked before) */
        struct ob_signal signals[_NSIG];
};

int64_t ob_loop_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ob_loop_new(struct ob_loop **ret)
{
        struct ob_loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        l->sigfd = -1;
        sigemptyset(&l->sigmask);
        sigemptyset(&l->sigblocked);
        *ret = l;
        return 0;
}

void ob_loop_free(struct ob_loop *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->nheap; i++)
                free(l->heap[i]);
        free(l->heap);
        free(l->io);
        free(l->dels);
        if (l->sigfd >= 0) {
                struct signalfd_siginfo si;
                while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                        ;
                close(l->sigfd);
                pthread_sigmask(SIG_UNBLOCK, &l->sigblocked, NULL);
        }
        close(l->epfd);
        free(l);
}

/* ---- file descriptors ---- */

static uint32_t ob_io_epoll_events(unsigned events)
{
        uint32_t ev = 0;
        if (events & OB_IO_READ)
                ev |= EPOLLIN;
        if (events & OB_IO_WRITE)
                ev |= EPOLLOUT;
        return ev;
}

static int ob_loop_io_grow(struct ob_loop *l, int fd)
{
        if ((size_t)fd < l->nio_alloc)
                return 0;
        size_t n = l->nio_alloc ? l->nio_alloc : 64;
        while (n <= (size_t)fd)
                n *= 2;
        struct ob_io *io = realloc(l->io, n * sizeof(*io));
        if (!io)
                return -ENOMEM;
        memset(io + l->nio_alloc, 0, (n - l->nio_alloc) * sizeof(*io));
        l->io = io;
        l->nio_alloc = n;
        return 0;
}

/* Unwatching leaves the fd in the epoll set until the next wait: a
 * connection unwatched when its answer is read and watched again when the
 * next request goes out (libcurl does that for every request on a kept
 * connection) then costs one EPOLL_CTL_MOD instead of a DEL and an ADD.
 * Events that arrive for it meanwhile are dropped (events == 0). An fd
 * closed meanwhile leaves the set with its file, as long as no other
 * process holds that file: exec.c's children close every fd above 2 before
 * they run anything (posix_spawn, the loop's thread suspended meanwhile). */
static int ob_loop_io_remove(struct ob_loop *l, int fd)
{
        if ((size_t)fd >= l->nio_alloc || l->io[fd].events == 0)
                return 0;
        if (!l->io[fd].lazy) {
                if (l->ndels == l->dels_alloc) {
                        size_t n = l->dels_alloc ? l->dels_alloc * 2 : 16;
                        int *d = realloc(l->dels, n * sizeof(*d));
                        if (!d) {
                                /* No room to remember it: take it out now. */
                                if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF &&
                                    errno != ENOENT)
                                        return -errno;
                                goto out;
                        }
                        l->dels = d;
                        l->dels_alloc = n;
                }
                l->dels[l->ndels++] = fd;
                l->io[fd].lazy = true;
        }
out:
        l->io[fd].events = 0;
        l->io[fd].fn = NULL;
        l->io[fd].userdata = NULL;
        l->nwatched--;
        return 0;
}

/* Takes the fds still unwatched out of the epoll set. One may have been
 * closed meanwhile (the kernel then dropped it itself) and its number taken
 * by a file that is not in the set: no error is an error here. */
static void ob_loop_io_flush(struct ob_loop *l)
{
        for (size_t i = 0; i < l->ndels; i++) {
                int fd = l->dels[i];
                if (!l->io[fd].lazy)
                        continue;
                l->io[fd].lazy = false;
                if (l->io[fd].events == 0)
                        (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        }
        l->ndels = 0;
}

int ob_loop_io(struct ob_loop *l, int fd, unsigned events, ob_io_fn fn, void *userdata)
{
        if (fd < 0)
                return -EBADF;
        events &= OB_IO_READ | OB_IO_WRITE;
        if (events == 0)
                return ob_loop_io_remove(l, fd);
        if (!fn)
                return -EINVAL;
        int r = ob_loop_io_grow(l, fd);
        if (r < 0)
                return r;

        struct ob_io *w = &l->io[fd];
        bool watched = w->events != 0;
        /* A new watch gets a new generation: events fetched for the old one
         * in the current batch are then recognised and dropped. */
        uint32_t gen = watched ? w->gen : ++l->next_gen;
        struct epoll_event ev = {
                .events = ob_io_epoll_events(events),
                .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd,
        };
        /* Unwatched since the last wait: probably still in the set (MOD),
         * unless it was closed and its number reused (ENOENT: ADD). */
        int op = watched || w->lazy ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        w->lazy = false;
        if (epoll_ctl(l->epfd, op, fd, &ev) < 0) {
                /* MOD on an fd that was closed and reopened under the same
                 * number, or ADD on one still registered: switch. */
                if (op == EPOLL_CTL_MOD && errno == ENOENT)
                        op = EPOLL_CTL_ADD;
                else if (op == EPOLL_CTL_ADD && errno == EEXIST)
                        op = EPOLL_CTL_MOD;
                else
                        return -errno;
                if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
                        return -errno;
        }
        if (!watched)
                l->nwatched++;
        w->events = events;
        w->gen = gen;
        w->fn = fn;
        w->userdata = userdata;
        return 0;
}

static void ob_loop_dispatch_io(struct ob_loop *l, const struct epoll_event *ev)
{
        int fd = (int)(uint32_t)(ev->data.u64 & 0xffffffffu);
        uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
        /* Look the watcher up again: an earlier callback of this batch may
         * have removed or replaced it. */
        if ((size_t)fd >= l->nio_alloc)
                return;
        struct ob_io *w = &l->io[fd];
        if (w->events == 0 || w->gen != gen)
                return;
        unsigned events = 0;
        if (ev->events & EPOLLIN)
                events |= OB_IO_READ;
        if (ev->events & EPOLLOUT)
                events |= OB_IO_WRITE;
        if (ev->events & (EPOLLERR | EPOLLHUP))
                events |= OB_IO_ERROR | w->events;
        events &= w->events | OB_IO_ERROR;
        if (events == 0)
                return;
        w->fn(l, fd, events, w->userdata);
        /* w may be dangling now (the table can grow): do not touch it. */
}

/* ---- timers ---- */

static bool ob_timer_before(const struct ob_timer *a, const struct ob_timer *b)
{
        if (a->deadline != b->deadline)
                return a->deadline < b->deadline;
        return a->seq < b->seq;
}

static void ob_heap_set(struct ob_loop *l, size_t i, struct ob_timer *t)
{
        l->heap[i] = t;
        t->idx = i;
}

static void ob_heap_up(struct ob_loop *l, size_t i)
{
        struct ob_timer *t = l->heap[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!ob_timer_before(t, l->heap[parent]))
                        break;
                ob_heap_set(l, i, l->heap[parent]);
                i = parent;
        }
        ob_heap_set(l, i, t);
}

static void ob_heap_down(struct ob_loop *l, size_t i)
{
        struct ob_timer *t = l->heap[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= l->nheap)
                        break;
                if (c + 1 < l->nheap && ob_timer_before(l->heap[c + 1], l->heap[c]))
                        c++;
                if (!ob_timer_before(l->heap[c], t))
                        break;
                ob_heap_set(l, i, l->heap[c]);
                i = c;
        }
        ob_heap_set(l, i, t);
}

static void ob_heap_remove(struct ob_loop *l, struct ob_timer *t)
{
        size_t i = t->idx;
        struct ob_timer *last = l->heap[--l->nheap];
        if (last != t) {
                ob_heap_set(l, i, last);
                if (i > 0 && ob_timer_before(last, l->heap[(i - 1) / 2]))
                        ob_heap_up(l, i);
                else
                        ob_heap_down(l, i);
        }
}

int ob_loop_timer(struct ob_loop *l, int64_t delay_ms, ob_timer_fn fn, void *userdata, struct ob_timer **ret)
{
        if (!fn || delay_ms < 0 || delay_ms > OB_LOOP_MAX_DELAY_MS)
                return -EINVAL;
        if (l->nheap == l->heap_alloc) {
                size_t n = l->heap_alloc ? l->heap_alloc * 2 : 16;
                struct ob_timer **h = realloc(l->heap, n * sizeof(*h));
                if (!h)
                        return -ENOMEM;
                l->heap = h;
                l->heap_alloc = n;
        }
        struct ob_timer *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->deadline = ob_loop_now_ms() + delay_ms;
        t->seq = l->next_seq++;
        t->state = OB_TIMER_PENDING;
        t->fn = fn;
        t->userdata = userdata;
        l->heap[l->nheap++] = t;
        ob_heap_up(l, l->nheap - 1);
        if (ret)
                *ret = t;
        return 0;
}

void ob_loop_timer_cancel(struct ob_loop *l, struct ob_timer *t)
{
        if (!t)
                return;
        /* A running timer is freed when its callback returns. */
        if (t->state == OB_TIMER_RUNNING)
                return;
        ob_heap_remove(l, t);
        free(t);
}

static void ob_loop_run_timers(struct ob_loop *l)
{
        int64_t now = ob_loop_now_ms();
        uint64_t seq_limit = l->next_seq; /* timers armed from now on wait */
        while (l->nheap > 0 && !l->stop) {
                struct ob_timer *t = l->heap[0];
                if (t->deadline > now || t->seq >= seq_limit)
                        break;
                ob_heap_remove(l, t);
                t->state = OB_TIMER_RUNNING;
                t->fn(l, t, t->userdata);
                free(t);
        }
}

static int ob_loop_timeout(struct ob_loop *l)
{
        if (l->nheap == 0)
                return -1;
        int64_t d = l->heap[0]->deadline - ob_loop_now_ms();
        if (d <= 0)
                return 0;
        return d > INT_MAX ? INT_MAX : (int)d;
}

/* ---- signals ---- */

static void ob_loop_dispatch_signals(struct ob_loop *l)
{
        struct signalfd_siginfo si;
        for (;;) {
                ssize_t k = read(l->sigfd, &si, sizeof(si));
                if (k != (ssize_t)sizeof(si))
                        return; /* EAGAIN: drained */
                int signo = (int)si.ssi_signo;
                if (signo <= 0 || signo >= _NSIG || !l->signals[signo].fn)
                        continue;
                l->signals[signo].fn(l, signo, l->signals[signo].userdata);
                if (l->stop || l->sigfd < 0)
                        return;
        }
}

int ob_loop_signal(struct ob_loop *l, int signo, ob_signal_fn fn, void *userdata)
{
        if (signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP || !fn)
                return -EINVAL;
        sigset_t one, old;
        sigemptyset(&one);
        sigaddset(&one, signo);
        int r = pthread_sigmask(SIG_BLOCK, &one, &old);
        if (r != 0)
                return -r;
        bool was_blocked = sigismember(&old, signo) == 1;

        sigset_t mask = l->sigmask;
        sigaddset(&mask, signo);
        int fd = signalfd(l->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (!was_blocked)
                        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
                return r;
        }
        if (l->sigfd < 0) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = OB_LOOP_SIGNAL_TAG };
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        r = -errno;
                        close(fd);
                        if (!was_blocked)
                                pthread_sigmask(SIG_UNBLOCK, &one, NULL);
                        return r;
                }
                l->sigfd = fd;
        }
        if (!was_blocked)
                sigaddset(&l->sigblocked, signo);
        l->sigmask = mask;
        l->signals[signo].fn = fn;
        l->signals[signo].userdata = userdata;
        return 0;
}

/* ---- running ---- */

void ob_loop_stop(struct ob_loop *l)
{
        l->stop = true;
}

int ob_loop_run(struct ob_loop *l)
{
        struct epoll_event events[OB_LOOP_BATCH];
        int r = 0;
        l->stop = false;
        l->running++;
        while (!l->stop) {
                if (l->nwatched == 0 && l->nheap == 0)
                        break;
                ob_loop_io_flush(l);
                int n = epoll_wait(l->epfd, events, OB_LOOP_BATCH, ob_loop_timeout(l));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < n && !l->stop; i++) {
                        if (events[i].data.u64 == OB_LOOP_SIGNAL_TAG)
                                ob_loop_dispatch_signals(l);
                        else
                                ob_loop_dispatch_io(l, &events[i]);
                }
                if (!l->stop)
                        ob_loop_run_timers(l);
        }
        l->running--;
        return r;
}

bool ob_loop_running(const struct ob_loop *l)
{
        return l && l->running > 0;
}
