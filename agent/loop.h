/* loop.h: the one event loop (epoll). It owns every file descriptor the agent
 * waits on (libcurl's sockets today; libldap's and signals as the service grows)
 * and every timer. Nothing blocks it. Callbacks run on the loop; they may add
 * and remove watches and timers, including their own.
 */
#ifndef OB_LOOP_H
#define OB_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct ob_loop;
struct ob_timer;

enum {
        OB_IO_READ = 1,
        OB_IO_WRITE = 2,
        OB_IO_ERROR = 4, /* delivered, never requested */
};

typedef void (*ob_io_fn)(struct ob_loop *l, int fd, unsigned events, void *userdata);
typedef void (*ob_timer_fn)(struct ob_loop *l, struct ob_timer *t, void *userdata);
typedef void (*ob_signal_fn)(struct ob_loop *l, int signo, void *userdata);

int ob_loop_new(struct ob_loop **ret);
void ob_loop_free(struct ob_loop *l);

/* Watches fd for events (OB_IO_READ|OB_IO_WRITE); events 0 stops watching. */
int ob_loop_io(struct ob_loop *l, int fd, unsigned events, ob_io_fn fn, void *userdata);

/* One-shot timer after delay_ms (0: on the next iteration). The timer is freed
 * after its callback runs or when cancelled. */
int ob_loop_timer(struct ob_loop *l, int64_t delay_ms, ob_timer_fn fn, void *userdata, struct ob_timer **ret);
void ob_loop_timer_cancel(struct ob_loop *l, struct ob_timer *t);

/* Delivers signo through a signalfd (the signal is blocked for the process). */
int ob_loop_signal(struct ob_loop *l, int signo, ob_signal_fn fn, void *userdata);

/* Runs until ob_loop_stop() or until nothing is watched and no timer is
 * pending. Returns 0, or a negative errno if epoll failed. */
int ob_loop_run(struct ob_loop *l);
void ob_loop_stop(struct ob_loop *l);
/* Whether ob_loop_run() is running (a callback of the loop is the caller):
 * then its signalfd delivers the signals it owns. */
bool ob_loop_running(const struct ob_loop *l);

/* Monotonic milliseconds. */
int64_t ob_loop_now_ms(void);

#endif
