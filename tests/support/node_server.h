/* node_server.h: a test server on node (tests/harness/NAME/server.mjs),
 * started the same way for every one of them: its npm packages installed by
 * tests/harness/node_start.sh into the build tree, a private directory
 * holding its port, pid and log, stopped and removed at the end. */
#ifndef OB_TEST_NODE_SERVER_H
#define OB_TEST_NODE_SERVER_H

#include <sys/types.h>

/* Writes text to path (mode 0600). 0 or a negative errno. */
int ob_test_node_write_file(const char *path, const char *text);

/* Starts tests/harness/NAME/start.sh MODULES DIR/port ARG (its output in
 * DIR/server.log, its pid in DIR/pid) and waits up to start_s seconds for the
 * port file. 0; -ECHILD when it ended first (its log on stderr, naming what);
 * -ETIMEDOUT; or a negative errno. *ret_pid is set as soon as it runs. */
int ob_test_node_start(const char *dir, const char *name, const char *modules, const char *arg, const char *what,
                       int start_s, pid_t *ret_pid);

/* The port and pid a started server left in dir. 0, -ENOENT, -EINVAL. */
int ob_test_node_load(const char *dir, int *ret_port, pid_t *ret_pid);

/* SIGTERM (SIGKILL after 3 s), then dir removed unless OB_TEST_KEEP is
 * set; *pid and dir are cleared. */
void ob_test_node_stop(pid_t *pid, char *dir);

#endif
