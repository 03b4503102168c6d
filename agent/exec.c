/* exec.c: the exec connector: runs a program per step, on the loop.
 *
 * A run is spawned with posix_spawn(): argv and environment as given (never
 * a shell), every other file descriptor closed, a process group of its own,
 * signals unblocked and at their defaults (the agent blocks the ones its
 * signalfd owns and ignores SIGPIPE; a child must not inherit that; only
 * glibc's two internal signals stay ignored, as glibc's posix_spawn() leaves
 * them, and glibc sets their handlers before it uses them), stdin from
 * /dev/null or from a pipe that already holds the rendered stdin
 * (at most OB_EXEC_MAX_STDIN, a pipe's buffer, so writing it cannot block),
 * stdout and stderr into one pipe. The loop watches that pipe and a pidfd of
 * the child: no SIGCHLD handler, no blocking wait. The first
 * OB_EXCERPT_MAX bytes of output go through a scrubber that knows the
 * connector's secrets into the excerpt; the rest is read and dropped.
 *
 * The run ends when the child exits: what it wrote before is in the pipe and
 * is read then; a process it left behind in the background is not waited
 * for. At the timeout the process group gets SIGTERM, and SIGKILL
 * OB_EXEC_KILL_GRACE_MS later if the child has not exited yet.
 *
 * At most `concurrency` children run at once; the others wait in FIFO order.
 * A run's duration_ms counts from its spawn. Every accepted run reports
 * through its done callback on the loop, exactly once, never from inside
 * start(): a run that could not start is reported from a timer.
 *
 * Secrets: the env: values read from value_file at new(), wiped at free();
 * they reach only the child's environment and the scrubber.
 *
 * free() with runs queued or running aborts them: running children's
 * process groups are killed (SIGKILL) and reaped, their callbacks never run.
 * free() may be called from inside a done callback; the instance is then
 * released when that callback returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connector.h"
#include "exec.h"
#include "loop.h"
#include "scrub.h"
#include "util.h"

#define OB_EXEC_MAX_QUEUE 65536 /* runs waiting for a slot */

struct ob_exec;

struct ob_exec_run {
        struct ob_exec *x;
        struct ob_exec_run *next;          /* in x->queued or x->finished */
        struct ob_exec_run *rprev, *rnext; /* in x->running */
        char **argv;
        char **envp; /* holds secrets: wiped on free */
        size_t nenv;
        char *stdin_data;
        size_t stdin_len;
        long *ok_exit;
        size_t nok_exit;
        ob_connector_done_fn done;
        void *userdata;

        pid_t pid;
        int pidfd;
        int outfd;
        struct ob_timer *timer; /* the timeout, then the grace before SIGKILL */
        bool timed_out;
        int64_t started_ms;
        struct ob_scrub *scrub;
        struct ob_response resp;
};

struct ob_exec_fifo {
        struct ob_exec_run *head, *tail;
        size_t n;
};

struct ob_exec {
        struct ob_loop *loop;
        char *program;
        char **secret_env; /* "NAME=value" of value_file: variables, wiped on free */
        size_t nsecret_env;
        struct ob_scrub *proto; /* knows the secrets; each run's scrubber shares its forms */
        int64_t timeout_ms;
        size_t concurrency;

        struct ob_exec_fifo queued;
        struct ob_exec_fifo finished;
        struct ob_exec_run *running;
        size_t nrunning;
        struct ob_timer *kick; /* delivers outcomes of runs that could not start */

        int depth; /* inside a callback of ours */
        bool closing;
};

static void ob_exec_fifo_push(struct ob_exec_fifo *f, struct ob_exec_run *q)
{
        q->next = NULL;
        if (f->tail)
                f->tail->next = q;
        else
                f->head = q;
        f->tail = q;
        f->n++;
}

static struct ob_exec_run *ob_exec_fifo_pop(struct ob_exec_fifo *f)
{
        struct ob_exec_run *q = f->head;
        if (!q)
                return NULL;
        f->head = q->next;
        if (!f->head)
                f->tail = NULL;
        q->next = NULL;
        f->n--;
        return q;
}

static void ob_exec_running_add(struct ob_exec *x, struct ob_exec_run *q)
{
        q->rprev = NULL;
        q->rnext = x->running;
        if (x->running)
                x->running->rprev = q;
        x->running = q;
        x->nrunning++;
}

static void ob_exec_running_del(struct ob_exec *x, struct ob_exec_run *q)
{
        if (q->rprev)
                q->rprev->rnext = q->rnext;
        else
                x->running = q->rnext;
        if (q->rnext)
                q->rnext->rprev = q->rprev;
        q->rprev = q->rnext = NULL;
        x->nrunning--;
}

static void ob_exec_strv_wipe(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                explicit_bzero(v[i], strlen(v[i]));
}

/* Stops watching and closes the run's descriptors, cancels its timer. */
static void ob_exec_run_release(struct ob_exec_run *q)
{
        struct ob_loop *l = q->x->loop;
        if (q->timer) {
                ob_loop_timer_cancel(l, q->timer);
                q->timer = NULL;
        }
        if (q->pidfd >= 0) {
                ob_loop_io(l, q->pidfd, 0, NULL, NULL);
                close(q->pidfd);
                q->pidfd = -1;
        }
        if (q->outfd >= 0) {
                ob_loop_io(l, q->outfd, 0, NULL, NULL);
                close(q->outfd);
                q->outfd = -1;
        }
}

static void ob_exec_run_free(struct ob_exec_run *q)
{
        if (!q)
                return;
        ob_exec_run_release(q);
        ob_strv_free(q->argv);
        ob_exec_strv_wipe(q->envp);
        ob_strv_free(q->envp);
        free(q->stdin_data);
        free(q->ok_exit);
        ob_scrub_free(q->scrub);
        free(q);
}

/* ---- a run ---- */

static void ob_exec_fail(struct ob_exec_run *q, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ob_exec_fail(struct ob_exec_run *q, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->resp.error, sizeof(q->resp.error), fmt, ap);
        va_end(ap);
        q->resp.result = err;
}

/* Reads what the pipe holds now (all of it, or until EOF). The excerpt
 * keeps the start; the rest is dropped. */
static void ob_exec_drain(struct ob_exec_run *q)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(q->outfd, buf, sizeof(buf));
                if (n > 0) {
                        if (!ob_scrub_full(q->scrub))
                                ob_scrub_feed(q->scrub, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno != EAGAIN) {
                        /* EOF or an error: nothing more will come. */
                        ob_loop_io(q->x->loop, q->outfd, 0, NULL, NULL);
                        close(q->outfd);
                        q->outfd = -1;
                }
                return;
        }
}

static void ob_exec_after(struct ob_exec *x);

static void ob_exec_on_out(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)l;
        (void)fd;
        (void)events;
        ob_exec_drain(userdata);
}

static void ob_exec_format_duration(char *buf, size_t size, int64_t ms)
{
        if (ms % 1000 == 0)
                snprintf(buf, size, "%llds", (long long)(ms / 1000));
        else
                snprintf(buf, size, "%lldms", (long long)ms);
}

/* The child has exited: its outcome, from its wait status (-1: unknown,
 * reaped by someone else, as when SIGCHLD is ignored). */
static void ob_exec_complete(struct ob_exec_run *q, int wstatus)
{
        struct ob_exec *x = q->x;
        if (q->outfd >= 0)
                ob_exec_drain(q);
        ob_exec_run_release(q);
        q->resp.duration_ms = ob_loop_now_ms() - q->started_ms;
        ob_scrub_finish(q->scrub, q->resp.excerpt, sizeof(q->resp.excerpt));
        if (q->timed_out) {
                char d[32];
                ob_exec_format_duration(d, sizeof(d), x->timeout_ms);
                ob_exec_fail(q, -ETIMEDOUT, "timed out after %s", d);
                q->resp.transport = true;
        } else if (wstatus < 0) {
                ob_exec_fail(q, -ECHILD, "exit status unknown: %s", strerror(ECHILD));
        } else if (WIFEXITED(wstatus)) {
                int code = WEXITSTATUS(wstatus);
                bool ok = false;
                for (size_t i = 0; i < q->nok_exit; i++)
                        ok = ok || q->ok_exit[i] == code;
                if (!ok)
                        ob_exec_fail(q, -EIO, "exit status %d", code);
                /* EX_TEMPFAIL (sysexits.h): the program asks to be run again
                 * later, as a request that got no answer would be. */
                q->resp.transport = !ok && code == OB_EXEC_TEMPFAIL;
        } else if (WIFSIGNALED(wstatus)) {
                int sig = WTERMSIG(wstatus);
                const char *name = sigabbrev_np(sig);
                ob_exec_fail(q, -EIO, "killed by signal %d (SIG%s)", sig, name ? name : "?");
        } else {
                ob_exec_fail(q, -EIO, "ended with wait status %d", wstatus);
        }
        ob_exec_running_del(x, q);
        ob_exec_fifo_push(&x->finished, q);
}

static void ob_exec_on_exit(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)l;
        (void)fd;
        (void)events;
        struct ob_exec_run *q = userdata;
        struct ob_exec *x = q->x;
        int wstatus = 0;
        pid_t p;
        do
                p = waitpid(q->pid, &wstatus, WNOHANG);
        while (p < 0 && errno == EINTR);
        if (p == 0)
                return; /* not yet (a spurious wake-up) */
        x->depth++;
        ob_exec_complete(q, p < 0 ? -1 : wstatus);
        ob_exec_after(x);
}

static void ob_exec_on_grace(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct ob_exec_run *q = userdata;
        q->timer = NULL;
        kill(-q->pid, SIGKILL); /* not reaped yet: the group cannot be someone else's */
}

static void ob_exec_on_timeout(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)t;
        struct ob_exec_run *q = userdata;
        q->timer = NULL;
        q->timed_out = true;
        kill(-q->pid, SIGTERM);
        if (ob_loop_timer(l, OB_EXEC_KILL_GRACE_MS, ob_exec_on_grace, q, &q->timer) < 0)
                kill(-q->pid, SIGKILL);
}

static int ob_exec_pidfd_open(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Spawns the run's child. On failure the run's response says why, and the
 * caller reports it from the loop. */
static int ob_exec_spawn(struct ob_exec_run *q)
{
        struct ob_exec *x = q->x;
        int in[2] = {-1, -1}, out[2] = {-1, -1};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        bool fa_ok = false, at_ok = false;
        int r;

        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        if (q->stdin_data) {
                if (pipe2(in, O_CLOEXEC) < 0 || fcntl(in[1], F_SETFL, O_NONBLOCK) < 0) {
                        r = -errno;
                        goto out;
                }
                /* Fits in the pipe's buffer: written whole before the child runs. */
                ssize_t n = q->stdin_len ? write(in[1], q->stdin_data, q->stdin_len) : 0;
                if (n < 0 || (size_t)n != q->stdin_len) {
                        r = n < 0 ? -errno : -EMSGSIZE;
                        goto out;
                }
                close(in[1]);
                in[1] = -1;
        }
        if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
                goto out;
        fa_ok = true;
        if ((r = -posix_spawnattr_init(&at)) < 0)
                goto out;
        at_ok = true;
        sigset_t none, deflt;
        sigemptyset(&none);
        sigfillset(&deflt);
        sigdelset(&deflt, SIGKILL);
        sigdelset(&deflt, SIGSTOP);
        if ((r = -(q->stdin_data ? posix_spawn_file_actions_adddup2(&fa, in[0], 0)
                                 : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0))) < 0 ||
            (r = -posix_spawn_file_actions_adddup2(&fa, out[1], 1)) < 0 ||
            (r = -posix_spawn_file_actions_adddup2(&fa, out[1], 2)) < 0 ||
            (r = -posix_spawn_file_actions_addclosefrom_np(&fa, 3)) < 0 ||
            (r = -posix_spawnattr_setsigmask(&at, &none)) < 0 ||
            (r = -posix_spawnattr_setsigdefault(&at, &deflt)) < 0 ||
            (r = -posix_spawnattr_setpgroup(&at, 0)) < 0 ||
            (r = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                        POSIX_SPAWN_SETSIGDEF)) < 0)
                goto out;
        pid_t pid;
        /* glibc reports a failed exec (ENOENT, EACCES) here, not as an exit. */
        if ((r = -posix_spawn(&pid, x->program, &fa, &at, q->argv, q->envp)) < 0)
                goto out;
        q->pid = pid;
        q->started_ms = ob_loop_now_ms();
        close(out[1]);
        out[1] = -1;
        q->outfd = out[0];
        out[0] = -1;
        q->pidfd = ob_exec_pidfd_open(pid);
        if (q->pidfd < 0 || fcntl(q->outfd, F_SETFL, O_NONBLOCK) < 0 ||
            (r = ob_loop_io(x->loop, q->pidfd, OB_IO_READ, ob_exec_on_exit, q)) < 0 ||
            (r = ob_loop_io(x->loop, q->outfd, OB_IO_READ, ob_exec_on_out, q)) < 0 ||
            (r = ob_loop_timer(x->loop, x->timeout_ms, ob_exec_on_timeout, q, &q->timer)) < 0) {
                if (r == 0)
                        r = -errno;
                /* Cannot watch it: it must not run unwatched. A SIGKILLed
                 * child exits at once, so this wait is short. */
                kill(-pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                ob_exec_run_release(q);
                goto out;
        }
        r = 0;
out:
        if (fa_ok)
                posix_spawn_file_actions_destroy(&fa);
        if (at_ok)
                posix_spawnattr_destroy(&at);
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (out[i] >= 0)
                        close(out[i]);
        }
        if (r < 0)
                ob_exec_fail(q, r, "cannot start %s: %s", x->program, strerror(-r));
        return r;
}

static void ob_exec_on_kick(struct ob_loop *l, struct ob_timer *t, void *userdata);

/* Starts queued runs while there are free slots; one that cannot start
 * goes to finished, delivered on the loop. */
static void ob_exec_fill(struct ob_exec *x)
{
        while (!x->closing && x->nrunning < x->concurrency && x->queued.head) {
                struct ob_exec_run *q = ob_exec_fifo_pop(&x->queued);
                if (ob_exec_spawn(q) == 0) {
                        ob_exec_running_add(x, q);
                } else {
                        q->resp.duration_ms = 0;
                        ob_exec_fifo_push(&x->finished, q);
                }
        }
        if (x->finished.head && x->depth == 0 && !x->kick &&
            ob_loop_timer(x->loop, 0, ob_exec_on_kick, x, &x->kick) < 0)
                x->kick = NULL; /* delivered at the next run's end */
}

static void ob_exec_destroy(struct ob_exec *x);

/* Runs the done callbacks, then releases the instance if a callback freed it. */
static void ob_exec_after(struct ob_exec *x)
{
        ob_exec_fill(x);
        while (!x->closing) {
                struct ob_exec_run *q = ob_exec_fifo_pop(&x->finished);
                if (!q)
                        break;
                q->done(&q->resp, q->userdata);
                ob_exec_run_free(q);
                ob_exec_fill(x); /* a slot is free, or a callback queued a run */
        }
        if (--x->depth == 0 && x->closing)
                ob_exec_destroy(x);
}

static void ob_exec_on_kick(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct ob_exec *x = userdata;
        x->kick = NULL;
        x->depth++;
        ob_exec_after(x);
}

/* ---- the connector interface ---- */

static void ob_exec_destroy(struct ob_exec *x)
{
        struct ob_exec_run *q;
        while ((q = x->running)) {
                ob_exec_running_del(x, q);
                /* Killed and reaped here, so no zombie outlives us; SIGKILL
                 * makes the wait short. */
                kill(-q->pid, SIGKILL);
                while (waitpid(q->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                ob_exec_run_free(q);
        }
        while ((q = ob_exec_fifo_pop(&x->queued)))
                ob_exec_run_free(q);
        while ((q = ob_exec_fifo_pop(&x->finished)))
                ob_exec_run_free(q);
        if (x->kick)
                ob_loop_timer_cancel(x->loop, x->kick);
        ob_exec_strv_wipe(x->secret_env);
        ob_strv_free(x->secret_env);
        ob_scrub_free(x->proto);
        free(x->program);
        free(x);
}

void ob_exec_free(void *c)
{
        struct ob_exec *x = c;
        if (!x || x->closing)
                return;
        x->closing = true;
        if (x->depth > 0)
                return; /* released by ob_exec_after() when the callback returns */
        ob_exec_destroy(x);
}

/* The connector's value_file variables, read once, as "NAME=value". */
static int ob_exec_read_secrets(struct ob_exec *x, const struct ob_exec_connector *cfg)
{
        x->secret_env = calloc(cfg->env.n + 1, sizeof(*x->secret_env));
        if (!x->secret_env)
                return -ENOMEM;
        for (size_t i = 0; i < cfg->env.n; i++) {
                const struct ob_header_tpl *t = &cfg->env.v[i];
                if (!t->secret_file)
                        continue;
                char *v = NULL;
                int r = ob_read_secret_file(t->secret_file, &v);
                if (r < 0)
                        return r;
                if ((r = ob_scrub_add_secret(x->proto, v, strlen(v))) < 0) {
                        ob_secret_free(v);
                        return r;
                }
                char *line = NULL;
                if (asprintf(&line, "%s=%s", t->name, v) < 0)
                        line = NULL;
                ob_secret_free(v);
                if (!line)
                        return -ENOMEM;
                x->secret_env[x->nsecret_env++] = line;
        }
        return 0;
}

int ob_exec_new(struct ob_loop *loop, const struct ob_connector *k, void **ret)
{
        if (!loop || !k || !k->settings || k->timeout_ms <= 0)
                return -EINVAL;
        const struct ob_exec_connector *cfg = k->settings;
        if (!cfg->program || cfg->program[0] != '/')
                return -EINVAL;
        struct ob_exec *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->loop = loop;
        x->timeout_ms = k->timeout_ms;
        x->concurrency = k->concurrency > 0 ? (size_t)k->concurrency : 1;
        int r = -ENOMEM;
        if (!(x->program = ob_strdup(cfg->program)))
                goto fail;
        if ((r = ob_scrub_new(OB_EXCERPT_MAX, &x->proto)) < 0 || (r = ob_exec_read_secrets(x, cfg)) < 0)
                goto fail;
        *ret = x;
        return 0;
fail:
        ob_exec_destroy(x);
        return r;
}

/* The environment from scratch: the request's variables, the connector's
 * secrets, PATH and LANG unless they set them, and the idempotency key. */
static int ob_exec_build_env(struct ob_exec *x, const struct ob_exec_request *req, struct ob_exec_run *q)
{
        static const char *const defaults[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
        size_t n = 0;
        while (req->env && req->env[n])
                n++;
        q->envp = calloc(n + x->nsecret_env + OB_ELEMENTSOF(defaults) + 2, sizeof(*q->envp));
        if (!q->envp)
                return -ENOMEM;
        size_t e = 0;
        for (size_t i = 0; i < n; i++)
                if (!(q->envp[e++] = ob_strdup(req->env[i])))
                        return -ENOMEM;
        for (size_t i = 0; i < x->nsecret_env; i++)
                if (!(q->envp[e++] = ob_strdup(x->secret_env[i])))
                        return -ENOMEM;
        for (size_t d = 0; d < OB_ELEMENTSOF(defaults); d++) {
                size_t nl = (size_t)(strchr(defaults[d], '=') - defaults[d]) + 1;
                bool set = false;
                for (size_t i = 0; i < e && !set; i++)
                        set = strncmp(q->envp[i], defaults[d], nl) == 0;
                if (!set && !(q->envp[e++] = ob_strdup(defaults[d])))
                        return -ENOMEM;
        }
        if (req->idempotency_key && asprintf(&q->envp[e++], OB_EXEC_IDEMPOTENCY_ENV "=%s", req->idempotency_key) < 0) {
                q->envp[--e] = NULL;
                return -ENOMEM;
        }
        q->nenv = e;
        return 0;
}

static int ob_exec_run_new(struct ob_exec *x, const struct ob_exec_request *req, ob_connector_done_fn done,
                           void *userdata, struct ob_exec_run **ret)
{
        size_t argc = 0;
        while (req->argv[argc])
                argc++;
        if (argc == 0 || req->stdin_len > OB_EXEC_MAX_STDIN)
                return -EINVAL;
        struct ob_exec_run *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->x = x;
        q->pidfd = q->outfd = -1;
        q->done = done;
        q->userdata = userdata;
        q->resp.retry_after_s = -1;
        int r = -ENOMEM;
        q->argv = calloc(argc + 1, sizeof(*q->argv));
        if (!q->argv)
                goto fail;
        for (size_t i = 0; i < argc; i++)
                if (!(q->argv[i] = ob_strdup(req->argv[i])))
                        goto fail;
        if ((r = ob_exec_build_env(x, req, q)) < 0)
                goto fail;
        r = -ENOMEM;
        if (req->stdin_data && !(q->stdin_data = ob_strndup(req->stdin_data, req->stdin_len)))
                goto fail;
        q->stdin_len = req->stdin_len;
        q->nok_exit = req->nok_exit ? req->nok_exit : 1;
        if (!(q->ok_exit = calloc(q->nok_exit, sizeof(*q->ok_exit))))
                goto fail;
        if (req->nok_exit)
                memcpy(q->ok_exit, req->ok_exit, req->nok_exit * sizeof(*q->ok_exit));
        if ((r = ob_scrub_new_like(x->proto, OB_EXCERPT_MAX, &q->scrub)) < 0)
                goto fail;
        *ret = q;
        return 0;
fail:
        ob_exec_run_free(q);
        return r;
}

int ob_exec_start(void *c, const struct ob_exec_request *req, ob_connector_done_fn done, void *userdata)
{
        struct ob_exec *x = c;
        if (!x || x->closing || !req || !req->argv || !done)
                return -EINVAL;
        if (x->queued.n >= OB_EXEC_MAX_QUEUE)
                return -OB_ELIMIT;
        struct ob_exec_run *q;
        int r = ob_exec_run_new(x, req, done, userdata, &q);
        if (r < 0)
                return r;
        /* Through the queue, so FIFO order holds; fill() spawns at once
         * when a slot is free. */
        ob_exec_fifo_push(&x->queued, q);
        ob_exec_fill(x);
        return 0;
}
