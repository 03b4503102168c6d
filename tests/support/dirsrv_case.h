/* dirsrv_case.h: one test against a shared Samba AD DC or 389-DS (samba.h,
 * ds389.h), through the offboard binary: what test_ad.c and test_389ds.c
 * share.
 *
 * A case owns a work directory under /tmp (removed by close), an HTTP
 * recorder the configuration's connector points at, and the configuration
 * file it writes there. The server it borrows outlives it.
 *
 *   static struct ob_test_dirsrv srv;
 *   static struct ob_test_case tc;
 *   static void setup(void) { ...attach(&srv)...; ob_test_case_open(&tc, &srv, "ad"); }
 *   static void teardown(void) { ob_test_case_close(&tc); }
 */
#ifndef OB_TEST_DIRSRV_CASE_H
#define OB_TEST_DIRSRV_CASE_H

#include "recorder.h"
#include "samba.h"
#include "slapd.h" /* the manifest */

struct ob_test_case {
        const struct ob_test_dirsrv *srv;
        struct ob_test_recorder rec;
        char dir[256];
        char cfgpath[300];
        int service; /* pid of `offboard run`, or 0 */
};

/* What a configuration differs in; NULL members take the server's value or
 * nothing. */
struct ob_test_config {
        const char *uri;             /* the server's ldap:// (StartTLS) */
        const char *ca_file;         /* the server's CA */
        const char *base;            /* the server's account base */
        const char *mappings;        /* the contents of mappings: [...] (required) */
        const char *fallback;        /* transfer.fallback (required) */
        const char *directory_extra; /* lines added to directory:, indented by two */
        const char *extra;           /* top-level sections (writeback:, policies:) */
};

/* Sets OFFBOARD_MAPPINGS_DIR to the source tree's mappings, makes the work
 * directory (/tmp/ob-NAME-XXXXXX) and starts the recorder; fails the test
 * when it cannot. */
void ob_test_case_open(struct ob_test_case *tc, const struct ob_test_dirsrv *srv, const char *name);
void ob_test_case_close(struct ob_test_case *tc);

/* Writes cfgpath: StartTLS as the service account, page size 5, and one
 * connector (the recorder) with a lock and a deactivate transition. */
void ob_test_case_write_config(struct ob_test_case *tc, const struct ob_test_config *c);
/* Replaces the first from in the configuration with to; fails the test
 * when from is not there. */
void ob_test_case_edit_config(struct ob_test_case *tc, const char *from, const char *to);
/* offboard CMD --config cfgpath [a1 [a2]], at most 120 s: its exit status,
 * stdout and stderr (malloc'd). */
int ob_test_case_offboard(struct ob_test_case *tc, const char *cmd, const char *a1, const char *a2, char **out,
                          char **err);

/* Starts `offboard run --config cfgpath` (its stderr in DIR/service.log)
 * and waits (at most 60 s) until its feed is live and the whole pass that
 * going live asks for has run; feed is what the log says once live
 * ("poll kind=usn"). Fails the test otherwise. ob_test_case_stop_service
 * sends SIGTERM and wants exit 0 (both are done by close too). */
void ob_test_case_start_service(struct ob_test_case *tc, const char *feed);
/* Starts it and waits for nothing (a service whose feed must not go live). */
void ob_test_case_spawn_service(struct ob_test_case *tc);
void ob_test_case_stop_service(struct ob_test_case *tc);
/* The service's log so far (malloc'd). */
char *ob_test_case_service_log(struct ob_test_case *tc);
/* Waits at most timeout_ms for count requests to path at the recorder;
 * returns how many came. */
int ob_test_case_wait_requests(struct ob_test_case *tc, const char *path, int count, int timeout_ms);

/* The lines of an LDIF modify that clear what offboard writes back (the
 * shipped schema's attributes; absent ones are no error). */
#define OB_TEST_CLEAR_WRITEBACK                                                                 \
        "replace: offboardStatus\n-\nreplace: offboardStatusTime\n-\nreplace: offboardReason\n-\n" \
        "replace: offboardAction\n-\n"
/* Puts the entry dn back as the fixture had it: the LDIF modify lines
 * changes (may be "") and then OB_TEST_CLEAR_WRITEBACK. Best effort, for a
 * teardown: a failure is printed, not asserted. */
void ob_test_dirsrv_put_back(const struct ob_test_dirsrv *srv, const char *dn, const char *changes);

/* The "summary" object of a JSON report (or the whole text), for messages. */
const char *ob_test_summary(const char *out);
/* Every person of m has, in the JSON report out, the status and rule it
 * predicts (an active one is not listed); those in skip (NULL-terminated,
 * may be NULL) are not looked at. Expectations, so every miss is told. */
void ob_test_assert_statuses(const struct ob_test_manifest *m, const char *out, const char *const *skip);

#endif
