/* exec.h: the exec connector kind: a program run with an argv built from
 * templates, never through a shell.
 *
 * exec_kind.c holds what needs no process: the keys of an exec connector and
 * of its actions, their checks, rendering an argv and describing it in a
 * report. exec.c runs the program on the loop (the only file that spawns).
 * Both are reached through ob_exec_kind (connector.h); the structs below are
 * for them and for tests.
 *
 * Each args: item becomes exactly one argv element (argv[0] is the program):
 * no splitting, no globbing, no shell. A value from the directory that would
 * make an element start with '-' (read as an option) is refused unless an
 * earlier element is a literal "--". The child's environment is built from
 * scratch: PATH=/usr/bin:/bin, LANG=C.UTF-8, the connector's env: (which may
 * override those two) and OFFBOARD_IDEMPOTENCY_KEY; nothing of offboard's own.
 */
#ifndef OB_EXEC_H
#define OB_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "connector.h"
#include "loop.h"

#define OB_EXEC_MAX_ARG (128 * 1024)       /* one argv element or env value (the kernel's MAX_ARG_STRLEN) */
#define OB_EXEC_MAX_ARGV (1024 * 1024)     /* argv and environment together */
#define OB_EXEC_MAX_STDIN (64 * 1024)      /* a pipe's buffer: written whole before the program starts */
#define OB_EXEC_KILL_GRACE_MS 2000         /* SIGTERM, then SIGKILL this much later */
#define OB_EXEC_TEMPFAIL 75                /* EX_TEMPFAIL: retried like a timeout */
#define OB_EXEC_IDEMPOTENCY_ENV "OFFBOARD_IDEMPOTENCY_KEY"

/* connectors.X for type: exec (ob_connector.settings) */
struct ob_exec_connector {
        char *program;             /* absolute path of an executable file */
        struct ob_header_list env; /* NAME: template, or {value_file: PATH} read by the connector at start */
};

/* actions.X of an exec connector (ob_action.settings) */
struct ob_exec_action {
        struct ob_tpl_list args;   /* argv[1..], one element each */
        struct ob_tpl *stdin_tpl;  /* NULL: stdin is /dev/null */
        struct ob_int_list ok_exit; /* exit statuses that count as done; [0] when not set */
};

/* An action rendered for one account (ob_step.rendered), without secrets. */
struct ob_exec_rendered {
        char **argv;   /* NULL-terminated; argv[0] is the program */
        char **env;    /* NULL-terminated "NAME=value": env: entries that are templates */
        char *stdin_data; /* NULL: /dev/null */
        size_t stdin_len;
};

/* A run as exec.c starts it. The connector adds its value_file variables
 * itself (secrets never pass through here, so a request can be printed). */
struct ob_exec_request {
        const char *const *argv;   /* argv[0] is the program */
        const char *const *env;    /* "NAME=value", NULL-terminated; may be NULL */
        const char *stdin_data;    /* NULL: /dev/null */
        size_t stdin_len;          /* at most OB_EXEC_MAX_STDIN */
        const char *idempotency_key;
        const long *ok_exit; /* NULL or empty: [0] */
        size_t nok_exit;
};

/* exec.c: cfg->settings is a struct ob_exec_connector. A run that cannot
 * start (the program is gone, not executable, no fds left) is reported
 * through done with the errno's text, like a run that failed.
 * Outcomes (ob_response): result 0 when the exit status is in ok_exit;
 * -EIO "exit status N" or "killed by signal N (NAME)" otherwise (exit
 * status 75, EX_TEMPFAIL, with transport: true, so it is retried like a
 * timeout; any other is parked as a refusal that will not change);
 * -ETIMEDOUT "timed out after 10s" (transport: true, so it is retried like a
 * request without an answer); -errno "cannot start PROG: ..." when it could
 * not start. status is always 0 (no HTTP). excerpt holds the start of stdout
 * and stderr together, with the connector's secrets scrubbed. */
int ob_exec_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret);
int ob_exec_start(void *c, const struct ob_exec_request *req, ob_connector_done_fn done, void *userdata);
void ob_exec_free(void *c);

#endif
