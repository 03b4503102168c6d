/* test_389ds.c: mappings/389ds.yaml, mappings/freeipa.yaml and
 * agent/directory.c against a real 389 Directory Server 2.3.1
 * (tests/harness/ds389.sh), through the offboard binary.
 *
 * One server for the executable, started by the runner. The fixture
 * (gen_dirsrv_fixture.py 389) holds a person for every rule of each mapping
 * and for every way a rule must not fire (an end date ahead, a lockout whose
 * passwordLockoutDuration has passed, "never"); its manifests say what each
 * mapping must conclude. Tests that change entries use people no other test
 * judges (kim, leo, mia), or only add offboard's own attributes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dirsrv_case.h"
#include "ds389.h"
#include "run.h"

static struct ob_test_dirsrv srv;
static struct ob_test_manifest *man;
static struct ob_test_case tc;

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_ds389_share();
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_ds389_unshare();
}

static void setup(void)
{
        int r = ob_test_ds389_attach(&srv);
        cr_assert_eq(r, 0, "no test 389-DS (see the runner's output above): %s", strerror(-r));
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        ob_test_case_open(&tc, &srv, "389t");
}

static bool service_changed;    /* the service test locked sam and ended tom: put them back */
static bool added_people;       /* the deletion tests added dora and dirk: gone again */
static char changelog_aci[600]; /* taken from cn=changelog by a test: given back */

static void teardown(void)
{
        ob_test_case_close(&tc); /* first: the service it may run */
        if (service_changed) {
                service_changed = false;
                char dn[300], tom[120];
                snprintf(dn, sizeof(dn), "uid=sam,%s", srv.base);
                ob_test_dirsrv_put_back(&srv, dn, "replace: nsAccountLock\n-\n");
                snprintf(dn, sizeof(dn), "uid=tom,%s", srv.base);
                snprintf(tom, sizeof(tom), "replace: shadowExpire\nshadowExpire: %lld\n-\n",
                         (long long)(time(NULL) / 86400 + 365));
                ob_test_dirsrv_put_back(&srv, dn, tom);
        }
        if (added_people) {
                added_people = false;
                for (int i = 0; i < 2; i++) {
                        char ldif[300];
                        snprintf(ldif, sizeof(ldif), "dn: uid=%s,%s\nchangetype: delete\n", i ? "dirk" : "dora",
                                 srv.base);
                        char *err = NULL;
                        ob_test_dirsrv_modify(&srv, ldif, &err); /* gone already, when the test got that far */
                        free(err);
                }
        }
        if (changelog_aci[0]) {
                char ldif[800], *err = NULL;
                snprintf(ldif, sizeof(ldif), "dn: cn=changelog\nchangetype: modify\nadd: aci\naci: %s\n-\n",
                         changelog_aci);
                changelog_aci[0] = '\0';
                if (ob_test_dirsrv_modify(&srv, ldif, &err) != 0)
                        fprintf(stderr, "teardown: the changelog's ACI was not given back: %s\n", err);
                free(err);
        }
        ob_test_manifest_free(man);
        man = NULL;
}

TestSuite(ds389, .init = setup, .fini = teardown, .timeout = 180);

/* The configuration (dirsrv_case.h) for base (NULL: ou=people) with
 * mapping (NULL: 389ds); directory_extra and extra (top-level sections) are
 * added as they are. */
static void write_config(const char *uri, const char *base, const char *mapping, const char *directory_extra,
                         const char *extra)
{
        char fallback[200];
        snprintf(fallback, sizeof(fallback), "uid=alice,%s", srv.base);
        struct ob_test_config c = {.uri = uri,
                                   .base = base,
                                   .mappings = mapping ? mapping : "389ds",
                                   .fallback = fallback,
                                   .directory_extra = directory_extra,
                                   .extra = extra};
        ob_test_case_write_config(&tc, &c);
}

static int offboard(const char *cmd, const char *a1, const char *a2, char **out, char **err)
{
        return ob_test_case_offboard(&tc, cmd, a1, a2, out, err);
}

static char *admin_search(const char *filter, const char *attrs)
{
        char *out = ob_test_dirsrv_search(&srv, srv.suffix, filter, attrs);
        cr_assert_not_null(out, "ldapsearch %s failed", filter);
        return out;
}

static void admin_modify(const char *ldif)
{
        char *err = NULL;
        int rc = ob_test_dirsrv_modify(&srv, ldif, &err);
        cr_assert_eq(rc, 0, "ldapmodify failed (%d): %s\n%s", rc, err, ldif);
        free(err);
}

/* ---- reading ------------------------------------------------------------------ */

Test(ds389, every_account_of_the_fixture_gets_the_status_its_rule_gives)
{
        write_config(NULL, NULL, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        bool admin_ran = strstr(out, "\"username\":\"kim\",\"status\":\"locked\"") != NULL;
        char want[64];
        snprintf(want, sizeof(want), "\"accounts_read\":%zu,", man->npeople - admin_ran);
        cr_assert_not_null(strstr(out, want), "%s", ob_test_summary(out));
        snprintf(want, sizeof(want), "\"accounts_owing\":%zu,",
                 man->npeople - ob_test_manifest_count(man, "active", 0) + 2 * admin_ran);
        cr_expect_not_null(strstr(out, want), "%s in %s", want, ob_test_summary(out));
        const char *changed[] = {"kim", "leo", "mia", "sam", "tom", NULL};
        ob_test_assert_statuses(man, out, changed);
        /* An ended manager is no transfer target (the issue: 389 had no
         * end-date rule, so dave was taken for active and chosen). */
        const char *bob = strstr(out, "\"username\":\"bob\",\"status\"");
        cr_assert_not_null(bob);
        const char *tt = strstr(bob, "\"transfer_to\":");
        cr_assert_not_null(tt);
        const char *fb = "\"transfer_to\":{\"via\":\"fallback\"";
        cr_assert_eq(strncmp(tt, fb, strlen(fb)), 0, "%.200s", tt);
        /* The id is nsUniqueId (the mapping's default), the hostile DN intact. */
        cr_assert_not_null(strstr(out, "\"dn\":\"uid=a\\\\2Bb\\\\3Dc\\\\3Bd\\\\3Ce\\\\3Ef,ou=people,"), "%.4000s", out);
        free(out);
        free(err);
}

/* The configuration's policies: section for freeipa.yaml (whose policy DN
 * names the realm), pointing at the fixture's policy entry rdn. */
static const char *ipa_policy(const char *rdn)
{
        static char yaml[400];
        snprintf(yaml, sizeof(yaml), "policies:\n  kerberos:\n    dn: \"%s,cn=EXAMPLE.ORG,cn=kerberos,%s\"\n", rdn,
                 srv.suffix);
        return yaml;
}

static void write_ipa_config(const char *policy_rdn)
{
        /* FreeIPA's defaults (posixAccount, ipaUniqueID) need a real FreeIPA;
         * the configuration's own directory settings win over them. */
        write_config(NULL, srv.ipa_base, "freeipa",
                     "  filter: \"(objectClass=krbPrincipalAux)\"\n  id_attribute: nsUniqueId\n",
                     policy_rdn ? ipa_policy(policy_rdn) : NULL);
}

/* nsAccountLock, krbPrincipalExpiration and the KDC's lockout against the
 * global policy (read from its entry): locked by failures within the
 * duration, not when below the count, past the duration or unlocked by an
 * administrator after the last failure. */
Test(ds389, the_freeipa_mapping_judges_nsaccountlock_the_principal_expiration_and_kerberos_lockouts)
{
        write_ipa_config("cn=global_policy");
        struct ob_test_manifest *ipa = NULL;
        cr_assert_eq(ob_test_manifest_load(srv.ipa_manifest, &ipa), 0);
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        char want[64];
        snprintf(want, sizeof(want), "\"accounts_read\":%zu,", ipa->npeople);
        cr_assert_not_null(strstr(out, want), "%s", ob_test_summary(out));
        ob_test_assert_statuses(ipa, out, NULL);
        cr_assert_eq(ob_test_manifest_count(ipa, "locked", 0), 2, "the fixture has two Kerberos lockouts");
        ob_test_manifest_free(ipa);
        free(out);
        free(err);
}

/* Fail closed: a policy entry that is not there, or lacks an attribute the
 * rules compare with, stops the pass before any account is judged (3, the
 * DN named); without a DN for the policy the configuration is refused (2). */
Test(ds389, the_freeipa_lockout_rule_never_runs_without_its_policy)
{
        char *out, *err;
        write_ipa_config("cn=no_such_policy");
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 3, "rc %d; stdout %s\nstderr %s", rc, out, err);
        cr_assert_not_null(strstr(err, "cn=no_such_policy,cn=EXAMPLE.ORG,cn=kerberos,dc=example,dc=org does not exist"),
                           "%s", err);
        cr_assert_null(strstr(out, "\"username\""), "no account was judged: %s", out);
        free(out);
        free(err);

        write_ipa_config("cn=broken_policy");
        rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 3, "rc %d; stderr %s", rc, err);
        cr_assert_not_null(strstr(err, "cn=broken_policy,"), "%s", err);
        cr_assert_not_null(strstr(err, "has no krbPwdLockoutDuration"), "%s", err);
        free(out);
        free(err);

        write_ipa_config(NULL);
        rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 2, "rc %d; stdout %s stderr %s", rc, out, err);
        cr_assert_not_null(strstr(out[0] ? out : err, "set policies.kerberos.dn in the configuration"), "%s%s", out,
                           err);
        free(out);
        free(err);
}

/* 389's per-user password policy (dsconf localpwp adduser, ds389.sh): two
 * failures lock lpat and lpeg where the global policy needs three; lpat's
 * lockout lasts a day and is a lock, lpeg's lasted 2 s and is none, although
 * its accountUnlockTime stays on the entry. */
Test(ds389, a_lockout_under_a_per_user_policy_is_seen_and_an_expired_one_is_not)
{
        char base[200];
        snprintf(base, sizeof(base), "ou=pwp,%s", srv.suffix);
        const char *who[] = {"lpat", "lpeg"};
        for (size_t u = 0; u < 2; u++) {
                char dn[300];
                snprintf(dn, sizeof(dn), "uid=%s,%s", who[u], base);
                for (int i = 0; i < 2; i++) {
                        char *berr = NULL;
                        int rc = ob_test_dirsrv_bind(&srv, dn, "not-the-password", &berr);
                        cr_assert_eq(rc, 49, "a bad password is refused: %d %s", rc, berr);
                        free(berr);
                }
                char *berr = NULL;
                int rc = ob_test_dirsrv_bind(&srv, dn, "Leo!Passw0rd7", &berr);
                cr_assert_neq(rc, 0, "%s is locked out after two failures (its own policy)", who[u]);
                free(berr);
        }
        sleep(3); /* lpeg's lockout ends */
        write_config(NULL, base, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("plan", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        cr_assert_not_null(strstr(out, "\"username\":\"lpat\",\"status\":\"locked\",\"rule\":\"password-lockout\""),
                           "%.3000s", out);
        cr_assert_null(strstr(out, "\"username\":\"lpeg\","), "an expired lockout is no lock: %.3000s", out);
        free(out);
        free(err);
        char *e = admin_search("(uid=lpeg)", "accountUnlockTime pwdpolicysubentry");
        cr_assert_not_null(strstr(e, "accountUnlockTime: "), "lpeg was locked out: %s", e);
        cr_assert_not_null(strstr(e, "pwdpolicysubentry: "), "under a policy of its own: %s", e);
        free(e);
}

/* ---- writing back ---------------------------------------------------------------- */

Test(ds389, write_back_lands_a_second_pass_does_nothing_and_admin_changes_are_found)
{
        write_config(NULL, NULL, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        cr_assert_not_null(strstr(out, "\"writebacks_failed\":0,"), "%s\nstderr: %s", ob_test_summary(out), err);
        free(out);
        free(err);
        char *e = admin_search("(uid=pat)", "objectClass offboardStatus offboardStatusTime offboardReason "
                                            "offboardAction modifyTimestamp");
        cr_assert_not_null(strstr(e, "objectClass: offboardAccount\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardReason: locked out after failed logins\n"), "%s", e);
        const char *t = strstr(e, "offboardStatusTime: ");
        cr_assert_not_null(t, "%s", e);
        t += strlen("offboardStatusTime: ");
        cr_assert(strspn(t, "0123456789") == 14 && strncmp(t + 14, ".0Z\n", 4) == 0, "a fraction is accepted: %s",
                  e);
        free(e);
        e = admin_search("(uid=peg)", "offboardStatus");
        cr_assert_null(strstr(e, "offboardStatus"), "a lockout past its duration is no lock: %s", e);
        free(e);
        e = admin_search("(uid=rory)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "locked through a role: %s", e);
        free(e);

        int sent = ob_test_recorder_count(&tc.rec);
        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        cr_assert_not_null(strstr(out, "\"accounts_owing\":0,"), "%s", ob_test_summary(out));
        cr_assert_eq(ob_test_recorder_count(&tc.rec), sent, "the second pass sent requests");
        free(out);
        free(err);

        /* An administrator locks kim (nsAccountLock), leo is locked out by
         * three bad passwords (the global password policy), mia is deleted. */
        char ldif[1024];
        snprintf(ldif, sizeof(ldif),
                 "dn: uid=kim,%s\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: true\n-\n\n"
                 "dn: uid=mia,%s\nchangetype: delete\n",
                 srv.base, srv.base);
        admin_modify(ldif);
        char leo[300];
        snprintf(leo, sizeof(leo), "uid=leo,%s", srv.base);
        for (int i = 0; i < 3; i++) {
                char *berr = NULL;
                rc = ob_test_dirsrv_bind(&srv, leo, "not-leos-password", &berr);
                cr_assert_eq(rc, 49, "a bad password is refused: %d %s", rc, berr);
                free(berr);
        }
        char *berr = NULL;
        rc = ob_test_dirsrv_bind(&srv, leo, "Leo!Passw0rd7", &berr);
        cr_assert_neq(rc, 0, "leo is locked out now");
        free(berr);

        rc = offboard("reconcile", "--format", "json", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, ob_test_summary(out), err);
        cr_assert_not_null(strstr(out, "\"username\":\"kim\",\"status\":\"locked\",\"rule\":\"account-lock\""),
                           "%.4000s", out);
        cr_assert_not_null(strstr(out, "\"username\":\"leo\",\"status\":\"locked\",\"rule\":\"password-lockout\""),
                           "%.4000s", out);
        cr_assert_not_null(strstr(out, "\"username\":\"mia\",\"status\":\"deleted\""), "%.4000s", out);
        free(out);
        free(err);
        rc = offboard("plan", "--check", NULL, &out, &err);
        cr_assert_eq(rc, 0, "nothing owed after the pass: %.3000s", out);
        free(out);
        free(err);
}

/* writeback.object_class: null means no class is added (olga's entry has
 * it already); it used to be taken for a class named "null". */
Test(ds389, object_class_null_adds_no_class)
{
        write_config(NULL, NULL, NULL, NULL, "writeback:\n  object_class: null\n");
        char *out, *err;
        int rc = offboard("reconcile", "--account", "olga", &out, &err);
        cr_assert_eq(rc, 0, "rc %d; %s\nstderr: %s", rc, out, err);
        free(out);
        free(err);
        char *e = admin_search("(uid=olga)", "objectClass offboardStatus offboardReason");
        cr_assert_not_null(strstr(e, "offboardStatus: inactive\n"), "%s", e);
        cr_assert_not_null(strstr(e, "offboardReason: Contract ended\n"), "%s", e);
        cr_assert_null(strstr(e, "objectClass: null"), "%s", e);
        free(e);
}

/* ---- what the server supports, and errors that say what failed ------------------- */

/* validate --online connects and checks what a pass will need, before a
 * pass runs: a fallback that does not exist is a configuration problem (2),
 * a server that cannot be reached is 3, and all is well is 0. */
Test(ds389, validate_online_checks_the_connection_the_base_and_the_fallback)
{
        write_config(NULL, NULL, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("validate", "--online", NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout %s\nstderr %s", out, err);
        cr_assert_not_null(strstr(out, "online: connected, bound and checked the base"), "%s", out);
        free(out);
        free(err);
        /* Offline, the same configuration with a fallback that is not there passes. */
        write_config(NULL, NULL, NULL, NULL, NULL);
        ob_test_case_edit_config(&tc, "fallback: uid=alice,", "fallback: uid=nobod,");
        rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "offline, nothing is looked up: %s", err);
        free(out);
        free(err);
        rc = offboard("validate", "--online", NULL, &out, &err);
        cr_assert_eq(rc, 2, "a fallback that does not exist: stdout %s\nstderr %s", out, err);
        cr_assert_not_null(strstr(err, "uid=nobod"), "the message names the DN: %s", err);
        free(out);
        free(err);
        /* A server that does not answer. */
        write_config("ldap://127.0.0.1:1", NULL, NULL, NULL, NULL);
        rc = offboard("validate", "--online", NULL, &out, &err);
        cr_assert_eq(rc, 3, "an unreachable server: stdout %s\nstderr %s", out, err);
        free(out);
        free(err);
}

Test(ds389, an_assertion_attribute_is_refused_at_the_start_because_389_lacks_the_control)
{
        write_config(NULL, NULL, NULL, NULL, "writeback:\n  assertion_attribute: modifyTimestamp\n");
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 2, "a configuration problem, not a failure per entry: %d; %s", rc, out);
        cr_assert_not_null(strstr(err, "assertion control"), "%s", err);
        cr_assert_not_null(strstr(err, "remove writeback.assertion_attribute"), "%s", err);
        cr_assert_eq(ob_test_count(err, "event=ldap_feature_missing"), 1, "said once: %s", err);
        free(out);
        free(err);
}

Test(ds389, a_name_the_certificate_does_not_carry_is_named_as_the_problem)
{
        /* libldap checks a localhost URI against this machine's own name,
         * which the certificate (127.0.0.1, localhost) does not carry. */
        char uri[128];
        snprintf(uri, sizeof(uri), "%s", srv.ldap_uri);
        char *colon = strrchr(uri, ':');
        cr_assert_not_null(colon);
        char fixed[160];
        snprintf(fixed, sizeof(fixed), "ldap://localhost%s", colon);
        write_config(fixed, NULL, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "does not name the host"), "%s", err);
        free(out);
        free(err);
}

/* A TLS server (openssl s_server) presenting a certificate, signed by the CA
 * offboard trusts, that expired in 2020: no directory server needs to be
 * re-certified for it. */
Test(ds389, an_expired_certificate_is_named_as_the_problem)
{
        char tls[300];
        snprintf(tls, sizeof(tls), "%s/expired", tc.dir);
        const char *gen[] = {OB_SOURCE_DIR "/tests/harness/expired_tls.sh", tls, NULL};
        cr_assert_eq(ob_test_run(gen, 60, NULL, NULL), 0);
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        cr_assert_eq(bind(sock, (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert_eq(getsockname(sock, (struct sockaddr *)&a, &len), 0);
        int port = ntohs(a.sin_port);
        close(sock);
        char accept_arg[64], cert[340], key[340], ca[340];
        snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
        snprintf(cert, sizeof(cert), "%s/server.pem", tls);
        snprintf(key, sizeof(key), "%s/server.key", tls);
        snprintf(ca, sizeof(ca), "%s/ca.pem", tls);
        fflush(NULL);
        pid_t pid = fork();
        /* No Criterion call in the child: every assertion, passed ones
         * included, is a message to the runner, which refuses (and then
         * waits forever for) one from a process it did not start. */
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                execlp("openssl", "openssl", "s_server", "-quiet", "-naccept", "5", "-accept", accept_arg, "-cert",
                       cert, "-key", key, (char *)NULL);
                _exit(127);
        }
        cr_assert_gt(pid, 0, "fork: %s", strerror(errno));
        /* Listening within 10 s, polled every 20 ms. */
        bool up = false;
        for (int i = 0; i < 500 && !up; i++) {
                int c = socket(AF_INET, SOCK_STREAM, 0);
                up = connect(c, (struct sockaddr *)&a, sizeof(a)) == 0;
                close(c);
                if (!up)
                        usleep(20000);
        }
        char uri[64];
        snprintf(uri, sizeof(uri), "ldaps://127.0.0.1:%d", port);
        char *out = NULL, *err = NULL;
        int rc = -1;
        if (up) {
                write_config(uri, NULL, NULL, NULL, NULL);
                ob_test_case_edit_config(&tc, srv.ca_file, ca);
                rc = offboard("plan", NULL, NULL, &out, &err);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        cr_assert(up, "openssl s_server did not listen");
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "has expired or is not valid yet"), "%s", err);
        free(out);
        free(err);
}

Test(ds389, ldaps_on_the_plain_port_says_the_handshake_failed)
{
        char uri[sizeof(srv.ldap_uri) + 8];
        snprintf(uri, sizeof(uri), "ldaps://%.120s", srv.ldap_uri + strlen("ldap://"));
        write_config(uri, NULL, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "TLS handshake was refused or failed"), "%s", err);
        cr_assert_not_null(strstr(err, "LDAPS port"), "%s", err);
        free(out);
        free(err);
}

Test(ds389, a_missing_base_and_an_empty_password_file_each_say_so)
{
        char base[200];
        snprintf(base, sizeof(base), "ou=nobody,%s", srv.suffix);
        write_config(NULL, base, NULL, NULL, NULL);
        char *out, *err;
        int rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 3, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "event=ldap_base_missing"), "%s", err);
        cr_assert_not_null(strstr(err, "check directory.base"), "%s", err);
        free(out);
        free(err);

        char pw[300];
        snprintf(pw, sizeof(pw), "%s/empty.pw", tc.dir);
        FILE *f = fopen(pw, "w");
        fclose(f);
        write_config(NULL, NULL, NULL, NULL, NULL);
        ob_test_case_edit_config(&tc, srv.bind_pw_file, pw);
        rc = offboard("plan", NULL, NULL, &out, &err);
        cr_assert_neq(rc, 0, "stderr: %s", err);
        cr_assert_not_null(strstr(err, "the password file is empty"), "%s", err);
        cr_assert_null(strstr(err, "problem="), "not a connection problem: %s", err);
        free(out);
        free(err);
}

/* ---- offboard run ------------------------------------------------------------- */

/* service.feed: poll (389-DS without its content sync plugin, which
 * service.feed: auto would use): the service asks, every poll_interval,
 * which accounts have a modifyTimestamp from the newest it saw minus an
 * overlap. */
Test(ds389, the_service_hears_a_lock_by_polling_modifytimestamp_and_passes_over_that_account_alone)
{
        write_config(NULL, NULL, NULL, NULL,
                     "service:\n  feed: poll\n  full_pass_interval: 1h\n  poll_interval: 200ms\n");
        service_changed = true;
        ob_test_case_start_service(&tc, "poll kind=timestamp");
        char *log = ob_test_case_service_log(&tc);
        int whole = ob_test_count(log, "event=pass ");
        free(log);

        char ldif[400];
        snprintf(ldif, sizeof(ldif), "dn: uid=sam,%s\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: true\n-\n",
                 srv.base);
        admin_modify(ldif);
        int n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 1, 30000);
        /* The overlap window asks about sam again for some seconds, and its
         * write-back (modifiersName: the service account) is no change. */
        usleep(2000000);
        n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 2, 20);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "sam's lock was acted on %d times:\n%s", n, log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "%s", log);
        cr_assert_null(strstr(log, "event=change_pass number=2 "), "the write-back or the overlap was a change:\n%s",
                       log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for one change:\n%s", log);
        free(log);
        char *e = admin_search("(uid=sam)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "not written back: %s", e);
        free(e);

        /* An end date that has passed, set by an administrator. */
        snprintf(ldif, sizeof(ldif), "dn: uid=tom,%s\nchangetype: modify\nreplace: shadowExpire\nshadowExpire: %lld\n-\n",
                 srv.base, (long long)(time(NULL) / 86400 - 1));
        admin_modify(ldif);
        n = ob_test_case_wait_requests(&tc, "/api/users/tom/sessions/revoke", 1, 30000);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "tom's end date was not acted on:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for one change:\n%s", log);
        free(log);
        e = admin_search("(uid=tom)", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: ended\n"), "not written back: %s", e);
        free(e);
        ob_test_case_stop_service(&tc);
}

/* A person of the test's own under ou=people, active (no other test judges
 * it; teardown deletes it if the test did not). */
static void add_person(const char *uid)
{
        char ldif[400];
        snprintf(ldif, sizeof(ldif),
                 "dn: uid=%s,%s\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n"
                 "objectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n",
                 uid, srv.base, uid, uid, uid);
        added_people = true;
        admin_modify(ldif);
}

static void delete_person(const char *uid)
{
        char ldif[300];
        snprintf(ldif, sizeof(ldif), "dn: uid=%s,%s\nchangetype: delete\n", uid, srv.base);
        admin_modify(ldif);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The service's log once it holds what (a pass logs its line after its
 * requests), or as it is after timeout_ms. */
static char *service_log_with(const char *what, int timeout_ms)
{
        int64_t end = now_ms() + timeout_ms;
        for (;;) {
                char *log = ob_test_case_service_log(&tc);
                if (!log || strstr(log, what) || now_ms() >= end)
                        return log;
                free(log);
                usleep(20000);
        }
}

/* modifyTimestamp polling sees no deletion; the Retro Changelog (enabled
 * by ds389.sh with nsslapd-attribute: nsuniqueid:targetUniqueId, and an ACI
 * for the service account) names the deleted entry by its nsUniqueId, the
 * 389 mapping's id. The whole pass is an hour away: only the feed can find
 * it. */
Test(ds389, a_deletion_reaches_the_service_through_the_changelog_within_a_second_without_a_whole_pass)
{
        add_person("dora");
        write_config(NULL, NULL, NULL, NULL,
                     "service:\n  feed: poll\n  full_pass_interval: 1h\n  poll_interval: 100ms\n");
        ob_test_case_start_service(&tc, "poll kind=timestamp");
        char *log = ob_test_case_service_log(&tc);
        cr_assert(strstr(log, "event=feed_changelog state=used base=\"cn=changelog\" named=yes "), "%s", log);
        int whole = ob_test_count(log, "event=pass ");
        free(log);

        int64_t t0 = now_ms();
        delete_person("dora");
        int n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 1, 10000);
        int64_t ms = now_ms() - t0;
        n += ob_test_case_wait_requests(&tc, "/api/users/dora/transfer", 1, 5000);
        log = service_log_with("event=change_pass number=1 ", 5000);
        cr_assert_eq(n, 2, "dora's deletion was not acted on (%d requests):\n%s", n, log);
        cr_assert_lt(ms, 1000, "dora's deletion took %lld ms to reach the connector:\n%s", (long long)ms, log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for a deletion:\n%s", log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "not a pass over the change:\n%s",
                  log);
        cr_assert_null(strstr(log, "level=warning"), "polling is quiet:\n%s", log);
        free(log);

        /* Stopped and started again: it resumes from the changeNumber the
         * last whole pass covered; what it reads again owes nothing. */
        ob_test_case_stop_service(&tc);
        ob_test_case_start_service(&tc, "poll kind=timestamp");
        usleep(500000);
        n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 2, 20);
        log = ob_test_case_service_log(&tc);
        cr_assert(strstr(log, "event=feed_cookie_loaded "), "the changelog's position was not kept:\n%s", log);
        cr_assert_eq(n, 1, "dora's deletion was acted on again:\n%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* Without the right to read cn=changelog (389-DS's default: Directory
 * Manager only) the feed says so once and goes on polling modifyTimestamp;
 * a deletion is then found by a whole pass, never guessed. */
/* Takes the service account's ACI off cn=changelog (teardown gives it back). */
static void take_changelog_aci(void)
{
        char *e = ob_test_dirsrv_search(&srv, "cn=changelog", "(cn=changelog)", "aci");
        cr_assert_not_null(e);
        const char *a = strstr(e, "\naci: ");
        cr_assert_not_null(a, "no ACI on cn=changelog (ds389.sh gives one): %s", e);
        a += strlen("\naci: ");
        size_t len = strcspn(a, "\n");
        cr_assert_lt(len, sizeof(changelog_aci));
        char ldif[800];
        snprintf(ldif, sizeof(ldif), "dn: cn=changelog\nchangetype: modify\ndelete: aci\naci: %.*s\n-\n", (int)len, a);
        admin_modify(ldif);
        memcpy(changelog_aci, a, len); /* teardown gives it back */
        changelog_aci[len] = '\0';
        free(e);
}

Test(ds389, without_a_readable_changelog_a_deletion_is_found_by_a_whole_pass)
{
        take_changelog_aci();
        add_person("dirk");
        write_config(NULL, NULL, NULL, NULL,
                     "service:\n  feed: poll\n  full_pass_interval: 2s\n  poll_interval: 100ms\n");
        ob_test_case_start_service(&tc, "poll kind=timestamp");
        char *log = ob_test_case_service_log(&tc);
        cr_assert(strstr(log, "event=feed_changelog state=unused reason=\"the server has a changelog the service "
                              "account cannot read"),
                  "%s", log);
        int whole = ob_test_count(log, "event=pass ");
        free(log);
        delete_person("dirk");
        int n = ob_test_case_wait_requests(&tc, "/api/users/dirk/sessions/revoke", 1, 15000);
        char pass[40];
        snprintf(pass, sizeof(pass), "event=pass number=%d ", whole + 1);
        log = service_log_with(pass, 5000);
        cr_assert_eq(n, 1, "dirk's deletion was not found:\n%s", log);
        cr_assert_gt(ob_test_count(log, "event=pass "), whole, "not by a whole pass:\n%s", log);
        cr_assert_null(strstr(log, "event=change_pass "), "a pass over a change no feed could name:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=feed_changelog "), 1, "said more than once:\n%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* ---- offboard run: 389-DS's Content Synchronization plugin -------------------- */

/* ds389.sh enables it (RFC 4533 on the Retro Changelog): service.feed: auto
 * keeps a refreshAndPersist search open. Its syncUUID is the nsUniqueId's
 * 16 bytes, so each change names the 389 mapping's id, and the pass over
 * it reads that account alone. The changelog is asked once at start and
 * then an hour later: only the content sync can tell these. */
Test(ds389, a_lock_and_an_end_date_reach_the_service_through_389_content_sync_without_a_whole_pass)
{
        write_config(NULL, NULL, NULL, NULL, "service:\n  full_pass_interval: 1h\n  poll_interval: 1h\n");
        service_changed = true;
        ob_test_case_start_service(&tc, "syncrepl");
        char *log = ob_test_case_service_log(&tc);
        int whole = ob_test_count(log, "event=pass ");
        cr_assert(strstr(log, "event=feed_changelog state=used "), "the changelog is the deletions' second source:\n%s",
                  log);
        free(log);

        char ldif[400];
        snprintf(ldif, sizeof(ldif), "dn: uid=sam,%s\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: true\n-\n",
                 srv.base);
        int64_t t0 = now_ms();
        admin_modify(ldif);
        int n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 1, 30000);
        int64_t lock_ms = now_ms() - t0;
        log = service_log_with("event=change_pass number=1 ", 5000);
        cr_assert_eq(n, 1, "sam's lock was not acted on:\n%s", log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "not a pass over the change:\n%s", log);
        free(log);

        snprintf(ldif, sizeof(ldif), "dn: uid=tom,%s\nchangetype: modify\nreplace: shadowExpire\nshadowExpire: %lld\n-\n",
                 srv.base, (long long)(time(NULL) / 86400 - 1));
        t0 = now_ms();
        admin_modify(ldif);
        n = ob_test_case_wait_requests(&tc, "/api/users/tom/sessions/revoke", 1, 30000);
        int64_t end_ms = now_ms() - t0;
        log = service_log_with("event=change_pass number=2 ", 5000);
        cr_assert_eq(n, 1, "tom's end date was not acted on:\n%s", log);
        cr_assert(strstr(log, "event=change_pass number=2 changes=1 exit=0 "), "%s", log);
        free(log);
        /* The write-backs come back through the feed as the service
         * account's: no change. */
        usleep(1000000);
        log = ob_test_case_service_log(&tc);
        cr_assert_null(strstr(log, "event=change_pass number=3 "), "a write-back was a change:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for a change:\n%s", log);
        cr_assert_null(strstr(log, "level=warning"), "%s", log);
        cr_assert_null(strstr(log, "level=error"), "%s", log);
        free(log);
        char *e = admin_search("(|(uid=sam)(uid=tom))", "offboardStatus");
        cr_assert_not_null(strstr(e, "offboardStatus: locked\n"), "not written back: %s", e);
        cr_assert_not_null(strstr(e, "offboardStatus: ended\n"), "not written back: %s", e);
        free(e);
        fprintf(stderr, "389 content sync: lock to first request %lld ms, end date %lld ms\n", (long long)lock_ms,
                (long long)end_ms);
        ob_test_case_stop_service(&tc);
}

/* A deletion pushed by the content sync (the changelog's next question is
 * an hour away); stopped and started again, the feed resumes from the
 * cookie the last whole pass covered: what changed meanwhile is acted on,
 * nothing is acted on again, nothing is refreshed from the whole content,
 * and what follows is heard. */
Test(ds389, a_delete_reaches_the_service_through_389_content_sync_and_a_restart_resumes_from_its_cookie)
{
        add_person("dora");
        add_person("dirk");
        write_config(NULL, NULL, NULL, NULL, "service:\n  full_pass_interval: 1h\n  poll_interval: 1h\n");
        ob_test_case_start_service(&tc, "syncrepl");
        char *log = ob_test_case_service_log(&tc);
        int whole = ob_test_count(log, "event=pass ");
        free(log);

        int64_t t0 = now_ms();
        delete_person("dora");
        int n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 1, 10000);
        int64_t ms = now_ms() - t0;
        n += ob_test_case_wait_requests(&tc, "/api/users/dora/transfer", 1, 5000);
        log = service_log_with("event=change_pass number=1 ", 5000);
        cr_assert_eq(n, 2, "dora's deletion was not acted on (%d requests):\n%s", n, log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), whole, "a whole pass for a deletion:\n%s", log);
        free(log);
        fprintf(stderr, "389 content sync: delete to first request %lld ms\n", (long long)ms);

        ob_test_case_stop_service(&tc);
        /* A lock while it is stopped: not lost (the pass at start finds it). */
        char ldif[400];
        snprintf(ldif, sizeof(ldif), "dn: uid=sam,%s\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: true\n-\n",
                 srv.base);
        service_changed = true;
        admin_modify(ldif);
        ob_test_case_start_service(&tc, "syncrepl");
        n = ob_test_case_wait_requests(&tc, "/api/users/sam/sessions/revoke", 1, 10000);
        cr_assert_eq(n, 1, "the lock made while the service was stopped was lost");
        delete_person("dirk");
        n = ob_test_case_wait_requests(&tc, "/api/users/dirk/sessions/revoke", 1, 10000);
        log = service_log_with("event=change_pass number=1 ", 5000);
        cr_assert_eq(n, 1, "the resumed feed did not hear dirk's deletion:\n%s", log);
        cr_assert(strstr(log, "event=feed_cookie_loaded "), "the cookie was not kept:\n%s", log);
        cr_assert_null(strstr(log, "event=feed_refresh_required"), "the cookie was refused:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=pass "), 2, "%s", log);
        n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 2, 20);
        cr_assert_eq(n, 1, "dora's deletion was acted on again:\n%s", log);
        cr_assert_null(strstr(log, "level=warning"), "%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* The changelog stays a second source of deletions beside the content
 * sync (never rely on one alone): read every 100 ms, it names the deletion
 * the feed pushed already, and the account is acted on once. */
Test(ds389, a_delete_heard_through_content_sync_and_the_changelog_acts_once)
{
        add_person("dora");
        write_config(NULL, NULL, NULL, NULL, "service:\n  full_pass_interval: 1h\n  poll_interval: 100ms\n");
        ob_test_case_start_service(&tc, "syncrepl");
        char *log = ob_test_case_service_log(&tc);
        cr_assert(strstr(log, "event=feed_changelog state=used base=\"cn=changelog\" named=yes "), "%s", log);
        free(log);

        delete_person("dora");
        int n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 1, 10000);
        log = service_log_with("event=feed_duplicate_deletion ", 5000);
        cr_assert_eq(n, 1, "dora's deletion was not acted on:\n%s", log);
        cr_assert_eq(ob_test_count(log, "event=feed_duplicate_deletion "), 1, "not heard from both sources:\n%s", log);
        free(log);
        usleep(500000);
        n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 2, 20);
        log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "dora's deletion was acted on %d times:\n%s", n, log);
        cr_assert(strstr(log, "event=change_pass number=1 changes=1 exit=0 "), "%s", log);
        cr_assert_null(strstr(log, "event=change_pass number=2 "), "a second pass over the same deletion:\n%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* service.changelog: off: the content sync alone; the changelog is never
 * asked (no word of it in the log), and a deletion is still heard. */
Test(ds389, with_service_changelog_off_the_changelog_is_never_read)
{
        add_person("dora");
        write_config(NULL, NULL, NULL, NULL,
                     "service:\n  full_pass_interval: 1h\n  poll_interval: 100ms\n  changelog: off\n");
        ob_test_case_start_service(&tc, "syncrepl");
        delete_person("dora");
        int n = ob_test_case_wait_requests(&tc, "/api/users/dora/sessions/revoke", 1, 10000);
        usleep(500000);
        char *log = ob_test_case_service_log(&tc);
        cr_assert_eq(n, 1, "dora's deletion was not acted on:\n%s", log);
        cr_assert_null(strstr(log, "event=feed_changelog"), "the changelog was read:\n%s", log);
        cr_assert_null(strstr(log, "event=feed_duplicate_deletion"), "%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* service.changelog: require, and the service account may not read
 * cn=changelog: an error, once, and the feed stops rather than go on as if
 * deletions were heard; it is not started again. */
Test(ds389, a_changelog_required_but_unreadable_stops_the_feed_with_an_error)
{
        take_changelog_aci();
        write_config(NULL, NULL, NULL, NULL,
                     "service:\n  full_pass_interval: 1h\n  poll_interval: 100ms\n  changelog: require\n");
        ob_test_case_spawn_service(&tc);
        char *log = service_log_with("event=feed_unavailable feed=changelog ", 60000);
        const char *at = strstr(log, "event=feed_unavailable feed=changelog ");
        cr_assert_not_null(at, "%s", log);
        cr_assert(strstr(log, "level=error event=feed_unavailable feed=changelog reason=\"the server has a changelog "
                              "the service account cannot read"),
                  "%s", log);
        free(log);
        usleep(1500000); /* a feed started again would be live by now */
        log = ob_test_case_service_log(&tc);
        at = strstr(log, "event=feed_unavailable feed=changelog ");
        cr_assert_eq(ob_test_count(log, "event=feed_unavailable "), 1, "%s", log);
        cr_assert_null(strstr(at, "event=feed_live"), "the feed went on:\n%s", log);
        cr_assert_null(strstr(at, "event=feed_down"), "the feed was started again:\n%s", log);
        free(log);
        ob_test_case_stop_service(&tc);
}

/* require with a feed that never reads the directory's changes is a
 * configuration error, named where it stands. */
Test(ds389, a_changelog_required_without_a_feed_that_reads_it_is_a_configuration_error)
{
        write_config(NULL, NULL, NULL, NULL, "service:\n  feed: none\n  changelog: require\n");
        char *out, *err;
        int rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "offboard.yaml:11:14: service.changelog: 'require' needs a feed that can read it "
                              "(service.feed: auto, syncrepl or poll), not 'none'"),
                  "%s", err);
        free(out);
        free(err);
        write_config(NULL, NULL, NULL, NULL, "service:\n  feed: poll\n  changelog: require\n");
        rc = offboard("validate", NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        free(out);
        free(err);
}
