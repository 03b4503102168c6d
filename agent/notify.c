/* notify.c: sd_notify(3) by hand (notify.h). */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int ob_notify(const char *fmt, ...)
{
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || !*path)
                return 0;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (path[0] == '@')
                sa.sun_path[0] = '\0'; /* the abstract namespace */
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= sizeof(msg))
                n = sizeof(msg) - 1; /* a STATUS= cut short is still a status */
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* Never waits: a notify socket nobody reads must not stop the loop
         * (a full queue loses a ping, which the next one makes up for). */
        ssize_t w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
                           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
        int e = w < 0 ? -errno : 0;
        close(fd);
        return e;
}

int64_t ob_notify_watchdog_ms(void)
{
        const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
        int64_t us, p;
        if (!usec || ob_parse_i64(usec, &us) < 0 || us <= 0)
                return 0;
        if (pid && (ob_parse_i64(pid, &p) < 0 || p != (int64_t)getpid()))
                return 0;
        int64_t ms = us / 2000;
        return ms > 0 ? ms : 1;
}
