/* samba.h: a private Samba AD DC for integration tests (tests/harness/samba.sh),
 * and what it shares with the 389-DS one (ds389.h): a server started by a
 * harness script in a temporary directory, described by DIR/env.
 *
 * One server per test executable, as with slapd.h: start it in the runner
 * with ReportHook(PRE_ALL), attach in each test, stop it in POST_ALL:
 *
 *   ReportHook(PRE_ALL)(struct criterion_test_set *t) { (void)t; ob_test_samba_share(); }
 *   ReportHook(POST_ALL)(struct criterion_global_stats *s) { (void)s; ob_test_samba_unshare(); }
 *   static void setup(void) { cr_assert_eq(ob_test_samba_attach(&srv), 0); }
 *
 * The server also stops when the runner ends (OB_SLAPD_WATCH_PID), and every
 * wait in the scripts is bounded. Samba binds the first free 127.0.0.N
 * (N >= 2) on ports 389/636, which needs root (CI runs as root).
 */
#ifndef OB_TEST_SAMBA_H
#define OB_TEST_SAMBA_H

struct ob_test_dirsrv {
        char dir[256]; /* mkdtemp under /tmp */
        char ldap_uri[128], ldaps_uri[128];
        char ca_file[300], other_ca_file[300];
        char suffix[128], base[128], ipa_base[128];
        char bind_dn[160], bind_pw_file[300];
        char admin_dn[160], admin_pw_file[300];
        char manifest[300], ipa_manifest[300];
        char sam_ldb[300]; /* Samba only */
        int pid;
};

int ob_test_samba_share(void);
/* The same with the group CN=crowd,OU=Crowd,SUFFIX of members contacts
 * (samba.sh's OB_SAMBA_CROWD): more than AD hands out at once. Adding them
 * takes Samba a minute or more. */
int ob_test_samba_share_crowd(int members);
int ob_test_samba_attach(struct ob_test_dirsrv *s);
void ob_test_samba_unshare(void);

/* ---- shared with ds389.c ---- */

/* Runs `script start DIR` in a new mkdtemp directory (prefix "/tmp/ob-NAME-")
 * tied to this process, and exports DIR as the environment variable envvar.
 * 0 or -errno (-ECHILD: the script failed; its output is on stderr). */
int ob_test_dirsrv_share(const char *script, const char *name, const char *envvar, int timeout_s);
/* Fills s from the directory named by envvar. */
int ob_test_dirsrv_attach(const char *envvar, struct ob_test_dirsrv *s);
/* Runs `script stop DIR` and removes DIR. */
void ob_test_dirsrv_unshare(const char *script, const char *envvar);

/* ldapmodify (with -a: entries without changetype are added) as the
 * administrator over StartTLS with the server's CA; returns its exit status,
 * its stderr in *ret_err if ret_err. */
int ob_test_dirsrv_modify(const struct ob_test_dirsrv *s, const char *ldif, char **ret_err);
/* ldapsearch -LLL (no wrapping) as the administrator, subtree; malloc'd
 * stdout or NULL. */
char *ob_test_dirsrv_search(const struct ob_test_dirsrv *s, const char *base, const char *filter, const char *attrs);
/* A simple bind of dn with password (over StartTLS); returns ldapsearch's
 * exit status (49: invalid credentials, 53: unwilling) and its stderr. */
int ob_test_dirsrv_bind(const struct ob_test_dirsrv *s, const char *dn, const char *password, char **ret_err);

#endif
