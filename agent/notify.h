/* notify.h: the systemd notification protocol (sd_notify(3)), by hand.
 *
 * A service with Type=notify tells systemd it is ready, what it is doing and
 * that it is alive by sending short "KEY=value" datagrams to the unix socket
 * named in $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 * The protocol is a few lines; libsystemd is not needed for it. Outside
 * systemd ($NOTIFY_SOCKET unset) every call does nothing.
 */
#ifndef OB_NOTIFY_H
#define OB_NOTIFY_H

#include <stdint.h>

/* Sends one message ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1";
 * several separated by newlines). Returns 0, or a negative errno. */
int ob_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How often the watchdog must be fed, in milliseconds: half of
 * $WATCHDOG_USEC when it is set for this process ($WATCHDOG_PID unset or
 * ours), else 0. */
int64_t ob_notify_watchdog_ms(void);

#endif
