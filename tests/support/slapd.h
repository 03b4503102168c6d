/* slapd.h: a private slapd for integration tests (tests/harness/slapd.sh).
 *
 * One server per test executable: Criterion runs every test (and a suite's
 * .init/.fini) in its own process, so start the server in the runner with
 * ReportHook(PRE_ALL), pick it up in each test with ob_test_slapd_attach(),
 * and stop it in ReportHook(POST_ALL):
 *
 *   static struct ob_test_slapd srv;
 *   ReportHook(PRE_ALL)(struct criterion_test_set *t) { (void)t; ob_test_slapd_share(50); }
 *   ReportHook(POST_ALL)(struct criterion_global_stats *s) { (void)s; ob_test_slapd_unshare(); }
 *   static void setup(void) { cr_assert_eq(ob_test_slapd_attach(&srv), 0); }
 *   TestSuite(directory, .init = setup);
 *
 * The server also stops by itself when the process that started it ends
 * (slapd.sh's OB_SLAPD_WATCH_PID), so a crashed runner leaves nothing behind.
 * The fixture is tests/harness/gen_fixture.py's; its manifest says what the
 * agent must conclude about each person, so tests never hard-code counts.
 */
#ifndef OB_TEST_SLAPD_H
#define OB_TEST_SLAPD_H

#include <stddef.h>

struct ob_test_slapd {
        char dir[256]; /* mkdtemp under /tmp */
        char ldap_uri[128], ldaps_uri[128], ldapi_uri[512];
        char ca_file[300], base[128];
        char bind_dn[128], bind_pw_file[300];
        char limited_dn[128], limited_pw_file[300];
        char admin_dn[128], admin_pw_file[300];
        char manifest[300];
        int pid;
};

/* Generates a fixture of nusers generated users (plus the fixed ones), starts
 * slapd with it. 0 or -errno (-ECHILD: a harness script failed; its output is
 * on stderr). */
int ob_test_slapd_start(struct ob_test_slapd *s, int nusers);
void ob_test_slapd_stop(struct ob_test_slapd *s); /* stops and removes the directory */
/* Stops slapd and starts it again on the same directory, database and ports
 * (for a shared server, the runner stays the process it is tied to). */
int ob_test_slapd_restart(struct ob_test_slapd *s);
/* The two halves of a restart, for an outage of the caller's length: halt
 * stops slapd and keeps its directory, database and ports (s->pid becomes
 * 0); resume starts it again on them and fills s anew. Resuming a server
 * that runs fails (slapd.sh refuses a second one). */
int ob_test_slapd_halt(struct ob_test_slapd *s);
int ob_test_slapd_resume(struct ob_test_slapd *s);

/* Sharing one server between the processes of a test executable: share
 * starts it and exports its directory as OB_TEST_SLAPD_DIR (children inherit
 * it), attach fills s from that directory, unshare stops and removes it. */
int ob_test_slapd_share(int nusers);
int ob_test_slapd_attach(struct ob_test_slapd *s);
void ob_test_slapd_unshare(void);

/* Runs ldapmodify as root over ldapi with SASL EXTERNAL on the given LDIF text;
 * returns its exit code (or -errno if it could not run). */
int ob_test_ldapmodify(const struct ob_test_slapd *s, const char *ldif);
/* Runs ldapsearch as root over ldapi (-LLL, no line wrapping, subtree scope)
 * with base, filter and attrs (space-separated, may be NULL) and returns its
 * malloc'd stdout, or NULL if it failed. */
char *ob_test_ldapsearch(const struct ob_test_slapd *s, const char *base, const char *filter, const char *attrs);
/* The same with a scope: "base", "one" or "sub" (cn=Subschema needs "base"). */
char *ob_test_ldapsearch_scope(const struct ob_test_slapd *s, const char *base, const char *scope, const char *filter,
                               const char *attrs);

/* The fixture manifest (gen_fixture.py --manifest). Strings are NULL where the
 * manifest has null. */
struct ob_test_person {
        char *uid, *dn, *status, *rule, *reason, *manager, *team, *team_owner;
        char *guid; /* the test-only objectGUID as AD prints it */
};

struct ob_test_manifest {
        long long today_days;
        char *fallback; /* DN of the fallback account */
        size_t npeople;
        struct ob_test_person *people;
};

int ob_test_manifest_load(const char *path, struct ob_test_manifest **ret);
void ob_test_manifest_free(struct ob_test_manifest *m);
const struct ob_test_person *ob_test_manifest_find(const struct ob_test_manifest *m, const char *uid);
/* Number of people whose status (or rule, if by_rule) equals name. */
size_t ob_test_manifest_count(const struct ob_test_manifest *m, const char *name, int by_rule);

/* For a test executable's ReportHook(PRE_ALL): shares a server with nusers
 * generated users and adds the entries of ldif (ldapmodify records, may be
 * NULL). Says on stderr what failed; the tests then fail in their set-up. */
void ob_test_slapd_share_with(int nusers, const char *ldif);

/* A test's own case: attaches s to the shared server, loads its manifest
 * into *man, makes dir (/tmp/ob-NAME-XXXXXX, dir of len bytes) and sets
 * OFFBOARD_NOW (noon of the manifest's day) and OFFBOARD_MAPPINGS_DIR
 * (the source tree's). Asserts. ob_test_case_end frees and removes them. */
void ob_test_case_begin(struct ob_test_slapd *s, struct ob_test_manifest **man, const char *name, char *dir,
                        size_t len);
void ob_test_case_end(struct ob_test_manifest *man, const char *dir);

#endif
