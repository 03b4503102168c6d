/* scim_server.h: a real SCIM 2.0 server for tests (tests/harness/scim: scimmy and
 * scimmy-routers on express, under node), and helpers to seed and read it
 * through its own API.
 *
 * One server per test executable, like slapd (slapd.h): start it in the
 * runner with ReportHook(PRE_ALL) (ob_test_scim_share), pick it up in each
 * test with ob_test_scim_attach, stop it in ReportHook(POST_ALL). The first
 * start installs the server's pinned npm packages into the build tree
 * (start.sh, `npm ci`). The server listens on a free port of 127.0.0.1, and
 * stops by itself when the runner is gone or after ten minutes. Its state
 * lives as long as it does: tests use names of their own.
 */
#ifndef OB_TEST_SCIM_SERVER_H
#include <sys/types.h>

#define OB_TEST_SCIM_SERVER_H

#include <stddef.h>

struct ob_test_scim {
        char dir[256];        /* work directory: portfile, token, log */
        char base_url[128];   /* http://127.0.0.1:PORT/scim/v2 */
        char control_url[128]; /* http://127.0.0.1:PORT/_test */
        char token_file[300];
        pid_t pid;
};

int ob_test_scim_share(void);
int ob_test_scim_attach(struct ob_test_scim *s);
void ob_test_scim_unshare(void);

/* One request with curl: path after base_url (or a full URL), body may be
 * NULL. Returns the HTTP status (0 when none came) and *ret_body (malloc'd,
 * may be NULL), or a negative errno. */
int ob_test_scim_request(const struct ob_test_scim *s, const char *method, const char *path, const char *body,
                         char **ret_body);

/* Seeding: a user (active) or a group of members (ids; NULL-terminated),
 * its id in ret_id. 0 or a negative errno (-EIO: the server said no). */
int ob_test_scim_add_user(const struct ob_test_scim *s, const char *user_name, const char *external_id,
                          char ret_id[64]);
int ob_test_scim_add_group(const struct ob_test_scim *s, const char *display_name, const char *const *members,
                           char ret_id[64]);
/* A user's active flag (0 or 1) and the number of groups listing it as a
 * member; -ENOENT when it is not there. */
int ob_test_scim_user_state(const struct ob_test_scim *s, const char *id, int *ret_active, int *ret_ngroups);
/* The next count SCIM requests get 429 with Retry-After: retry_after_s. */
int ob_test_scim_throttle(const struct ob_test_scim *s, int count, int retry_after_s);
/* The next count PATCH or DELETE requests with If-Match find their
 * resource changed just before (a write in between: 412). */
int ob_test_scim_stale(const struct ob_test_scim *s, int count);
/* Every SCIM request the server received, as JSON lines {method, url,
 * if_match, body, time} (malloc'd), or NULL. */
char *ob_test_scim_log(const struct ob_test_scim *s);

#endif
