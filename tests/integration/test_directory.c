/* test_directory.c: agent/directory.c against a real slapd (tests/harness).
 *
 * One slapd for the whole executable, started by the runner before the first
 * test and stopped after the last; every test runs in its own process and
 * attaches to it. The fixture's manifest says who is there, so no count is
 * hard-coded.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "directory.h"
#include "loop.h"
#include "slapd.h"
#include "util.h"

#define NUSERS 50
#define TEAMS_BASE "ou=teams,dc=example,dc=org"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
        (void)set;
        ob_test_slapd_share(NUSERS);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
        (void)stats;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        int r = ob_test_slapd_attach(&srv);
        cr_assert_eq(r, 0, "no test slapd (see the runner's output above): %s", strerror(-r));
        r = ob_test_manifest_load(srv.manifest, &man);
        cr_assert_eq(r, 0, "cannot load %s: %s", srv.manifest, strerror(-r));
}

static void teardown(void)
{
        ob_test_manifest_free(man);
        man = NULL;
}

/* The search with its info reduced to the number of entries delivered. */
static int search_accounts(struct ob_dir *d, ob_dir_entry_fn fn, void *ud, size_t *ret_count)
{
        struct ob_dir_search_info info = {0};
        int r = ob_dir_search_accounts(d, fn, ud, &info);
        if (r == 0 && ret_count)
                *ret_count = info.entries;
        ob_dir_search_info_clear(&info);
        return r;
}

TestSuite(directory, .init = setup, .fini = teardown, .timeout = 60);

static char *account_attrs[] = {"uid",          "cn",          "mail",           "manager",
                                "employeeType", "description", "shadowExpire",   "pwdAccountLockedTime",
                                "entryCSN",     "objectClass", "offboardStatus", NULL};

/* StartTLS with the test CA as the offboard service account, paged by 7. */
static struct ob_directory_config config(void)
{
        return (struct ob_directory_config){
                .uri = srv.ldap_uri,
                .starttls = true,
                .tls_verify = true,
                .ca_file = srv.ca_file,
                .bind_dn = srv.bind_dn,
                .bind_password_file = srv.bind_pw_file,
                .base = srv.base,
                .scope = OB_SCOPE_SUB,
                .filter = "(objectClass=inetOrgPerson)",
                .page_size = 7,
                .timeout_ms = 10000,
                .min_accounts = 1,
                .id_attribute = "entryUUID",
                .attributes = account_attrs,
                .teams_base = TEAMS_BASE,
                .teams_filter = "(objectClass=groupOfNames)",
                .teams_member_attribute = "member",
                .teams_owner_attribute = "owner",
        };
}

static const struct ob_test_person *person(const char *uid)
{
        const struct ob_test_person *p = ob_test_manifest_find(man, uid);
        cr_assert_not_null(p, "%s is not in the manifest", uid);
        return p;
}

static struct ob_dir *open_ok(const struct ob_directory_config *c)
{
        struct ob_dir *d = NULL;
        int r = ob_dir_open(c, &d);
        cr_assert_eq(r, 0, "ob_dir_open(%s): %s", c->uri, ob_strerror(r));
        cr_assert_not_null(d);
        return d;
}

static int open_err(const struct ob_directory_config *c)
{
        struct ob_dir *d = (struct ob_dir *)0x1;
        int r = ob_dir_open(c, &d);
        cr_assert_eq(d, (struct ob_dir *)0x1, "ret_dir written on failure");
        return r;
}

static bool is_uuid(const char *s)
{
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
                        return false;
        }
        return true;
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
}

/* ---- connecting ------------------------------------------------------------ */

Test(directory, starttls_with_the_test_ca_binds_the_service_account)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("alice")->dn, &a), 0);
        cr_assert_str_eq(ob_account_get(a, "mail"), "alice@example.org");
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, ldaps_with_the_test_ca_binds_the_service_account)
{
        struct ob_directory_config c = config();
        c.uri = srv.ldaps_uri;
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("dave")->dn, &a), 0);
        cr_assert_str_eq(ob_account_get(a, "uid"), "dave");
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, ldapi_with_sasl_external_binds_as_root)
{
        static char *attrs[] = {"uid", "userPassword", NULL};
        struct ob_directory_config c = config();
        c.uri = srv.ldapi_uri;
        c.bind_dn = NULL;
        c.bind_password_file = NULL;
        c.sasl_external = true;
        c.attributes = attrs;
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("alice")->dn, &a), 0);
        /* Only the peercred root identity may read password hashes. */
        const char *pw = ob_account_get(a, "userPassword");
        cr_assert_not_null(pw, "SASL EXTERNAL did not bind as root");
        cr_assert_eq(strncmp(pw, "{SSHA}", 6), 0);
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, service_account_cannot_read_password_hashes)
{
        static char *attrs[] = {"uid", "userPassword", NULL};
        struct ob_directory_config c = config();
        c.attributes = attrs;
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("alice")->dn, &a), 0);
        cr_assert_str_eq(ob_account_get(a, "uid"), "alice");
        cr_assert_null(ob_account_get(a, "userPassword"));
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, simple_bind_over_plain_ldap_without_starttls_is_refused)
{
        struct ob_directory_config c = config();
        c.starttls = false;
        cr_assert_eq(open_err(&c), -OB_EINSECURE);
}

Test(directory, simple_bind_over_plain_ldap_is_allowed_when_insecure_is_allowed)
{
        struct ob_directory_config c = config();
        c.starttls = false;
        c.allow_insecure = true;
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("alice")->dn, &a), 0);
        cr_assert_str_eq(ob_account_get(a, "uid"), "alice");
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, anonymous_bind_over_plain_ldap_needs_insecure_to_be_allowed)
{
        /* Anonymous sends no password, but everything read (statuses, names,
         * managers) crosses the network in clear and can be forged. */
        struct ob_directory_config c = config();
        c.starttls = false;
        c.bind_dn = NULL;
        c.bind_password_file = NULL;
        cr_assert_eq(open_err(&c), -OB_EINSECURE);
        c.allow_insecure = true;
        struct ob_dir *d = open_ok(&c);
        ob_dir_free(d);
}

Test(directory, starttls_with_the_wrong_ca_fails)
{
        char other[400];
        snprintf(other, sizeof(other), "%s/tls/other-ca.pem", srv.dir);
        struct ob_directory_config c = config();
        c.ca_file = other;
        cr_assert_eq(open_err(&c), -OB_EDIRECTORY);
}

Test(directory, ldaps_with_the_wrong_ca_fails)
{
        char other[400];
        snprintf(other, sizeof(other), "%s/tls/other-ca.pem", srv.dir);
        struct ob_directory_config c = config();
        c.uri = srv.ldaps_uri;
        c.ca_file = other;
        cr_assert_eq(open_err(&c), -OB_EDIRECTORY);
}

Test(directory, the_wrong_ca_is_accepted_only_when_verification_is_off)
{
        char other[400];
        snprintf(other, sizeof(other), "%s/tls/other-ca.pem", srv.dir);
        struct ob_directory_config c = config();
        c.uri = srv.ldaps_uri;
        c.ca_file = other;
        c.tls_verify = false;
        struct ob_dir *d = open_ok(&c);
        ob_dir_free(d);
}

Test(directory, a_wrong_password_is_refused_and_the_right_one_accepted)
{
        char pwfile[400];
        snprintf(pwfile, sizeof(pwfile), "%s/judy.pw", srv.dir);
        struct ob_directory_config c = config();
        c.bind_dn = person("judy")->dn;
        c.bind_password_file = pwfile;
        write_file(pwfile, "not-judys-password\n");
        cr_assert_eq(open_err(&c), -OB_EDIRECTORY);
        write_file(pwfile, "pw-judy\n"); /* gen_fixture.py's password, with a newline */
        struct ob_dir *d = open_ok(&c);
        ob_dir_free(d);
        unlink(pwfile);
}

Test(directory, a_missing_password_file_is_an_error)
{
        struct ob_directory_config c = config();
        char missing[400];
        snprintf(missing, sizeof(missing), "%s/no-such.pw", srv.dir);
        c.bind_password_file = missing;
        cr_assert_eq(open_err(&c), -ENOENT);
}

Test(directory, an_empty_password_is_refused_rather_than_bound_anonymously)
{
        char pwfile[400];
        snprintf(pwfile, sizeof(pwfile), "%s/empty.pw", srv.dir);
        write_file(pwfile, "\n");
        struct ob_directory_config c = config();
        c.bind_password_file = pwfile;
        int r = open_err(&c);
        unlink(pwfile);
        cr_assert_lt(r, 0);
}

Test(directory, an_unreachable_server_is_a_directory_error)
{
        struct ob_directory_config c = config();
        c.uri = "ldap://127.0.0.1:1";
        c.timeout_ms = 2000;
        cr_assert_eq(open_err(&c), -OB_EDIRECTORY);
}

/* ---- searching --------------------------------------------------------------- */

struct seen {
        size_t n;
        size_t stop_after; /* 0: never */
        char **uids;
        char **ids;
        struct ob_account *alice, *mallory;
};

static struct ob_account *copy_account(const struct ob_account *a)
{
        struct ob_account *c = ob_account_new();
        cr_assert_not_null(c);
        c->id = strdup(a->id);
        c->dn = strdup(a->dn);
        for (size_t i = 0; i < a->nattrs; i++)
                for (size_t j = 0; j < a->attrs[i].nvals; j++)
                        cr_assert_eq(
                                ob_account_add(c, a->attrs[i].name, a->attrs[i].vals[j].data, a->attrs[i].vals[j].len),
                                0);
        return c;
}

static int on_account(const struct ob_account *a, void *ud)
{
        struct seen *s = ud;
        const char *uid = ob_account_get(a, "uid");
        s->uids = realloc(s->uids, (s->n + 1) * sizeof(char *));
        s->ids = realloc(s->ids, (s->n + 1) * sizeof(char *));
        s->uids[s->n] = strdup(uid ? uid : "");
        s->ids[s->n] = strdup(a->id ? a->id : "");
        s->n++;
        if (uid && strcmp(uid, "alice") == 0)
                s->alice = copy_account(a);
        if (uid && strncmp(uid, "mal lory", 8) == 0)
                s->mallory = copy_account(a);
        if (s->stop_after && s->n >= s->stop_after)
                return -ECANCELED;
        return 0;
}

static void seen_free(struct seen *s)
{
        for (size_t i = 0; i < s->n; i++) {
                free(s->uids[i]);
                free(s->ids[i]);
        }
        free(s->uids);
        free(s->ids);
        ob_account_free(s->alice);
        ob_account_free(s->mallory);
}

/* ---- connecting while the loop turns (ob_dir_open_on) ------------------------- */

static void on_tick(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct ob_timer **self = ((void **)ud)[0];
        int *ticks = ((void **)ud)[1];
        (*ticks)++;
        if (ob_loop_timer(l, 10, on_tick, ud, self) < 0)
                *self = NULL;
}

/* Opens c with ob_dir_open_on while a 10 ms timer counts the loop's turns. */
static int open_on_counting(const struct ob_directory_config *c, struct ob_loop *l, struct ob_dir **d, int *ticks)
{
        struct ob_timer *t = NULL;
        void *ud[2] = {&t, ticks};
        cr_assert_eq(ob_loop_timer(l, 10, on_tick, ud, &t), 0);
        int r = ob_dir_open_on(l, c, d);
        if (t)
                ob_loop_timer_cancel(l, t);
        return r;
}

Test(directory, a_server_that_accepts_and_never_answers_does_not_stop_the_loop_while_connecting)
{
        /* A listener that never reads: the TCP connect succeeds (the
         * kernel's backlog), StartTLS waits for an answer that never comes. */
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(lfd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert_eq(listen(lfd, 4), 0);
        socklen_t al = sizeof(a);
        cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
        char uri[64];
        snprintf(uri, sizeof(uri), "ldap://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
        struct ob_directory_config c = config();
        c.uri = uri;
        c.timeout_ms = 1000;
        struct ob_loop *l;
        cr_assert_eq(ob_loop_new(&l), 0);
        struct ob_dir *d = (struct ob_dir *)0x1;
        int ticks = 0;
        int r = open_on_counting(&c, l, &d, &ticks);
        cr_assert_eq(r, -OB_EDIRECTORY, "got %s", ob_strerror(r));
        cr_assert_eq(d, (struct ob_dir *)0x1, "ret_dir written on failure");
        /* ob_dir_open on the loop's thread would have let no timer fire. */
        cr_assert_gt(ticks, 0, "the loop did not turn while the connection waited");
        close(lfd);
        ob_loop_free(l);
}

Test(directory, a_connection_set_up_while_the_loop_turns_is_handed_over_and_searches)
{
        struct ob_directory_config c = config();
        struct ob_loop *l;
        cr_assert_eq(ob_loop_new(&l), 0);
        struct ob_dir *d = NULL;
        int ticks = 0;
        int r = open_on_counting(&c, l, &d, &ticks);
        cr_assert_eq(r, 0, "ob_dir_open_on: %s", ob_strerror(r));
        struct seen s = {0};
        size_t n = 0;
        cr_assert_eq(search_accounts(d, on_account, &s, &n), 0);
        cr_assert_eq(s.n, man->npeople, "delivered %zu, the manifest lists %zu", s.n, man->npeople);
        seen_free(&s);
        ob_dir_free(d);
        ob_loop_free(l);
}

Test(directory, paged_search_delivers_every_person_of_the_manifest_once)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        size_t count = 0;
        int r = search_accounts(d, on_account, &s, &count);
        cr_assert_eq(r, 0, "search: %s", ob_strerror(r));
        cr_assert_gt(man->npeople, (size_t)NUSERS);
        cr_assert_eq(s.n, man->npeople, "delivered %zu, the manifest lists %zu", s.n, man->npeople);
        cr_assert_eq(count, s.n);
        for (size_t i = 0; i < man->npeople; i++) {
                size_t hits = 0;
                for (size_t j = 0; j < s.n; j++)
                        hits += strcmp(s.uids[j], man->people[i].uid) == 0;
                cr_assert_eq(hits, 1, "%s delivered %zu times", man->people[i].uid, hits);
        }
        for (size_t j = 0; j < s.n; j++) {
                cr_assert(is_uuid(s.ids[j]), "id of %s is not an entryUUID: '%s'", s.uids[j], s.ids[j]);
                for (size_t k = j + 1; k < s.n; k++)
                        cr_assert_str_neq(s.ids[j], s.ids[k]);
        }
        seen_free(&s);
        ob_dir_free(d);
}

Test(directory, accounts_carry_their_id_dn_and_requested_attributes)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        cr_assert_eq(search_accounts(d, on_account, &s, NULL), 0);
        cr_assert_not_null(s.alice);
        cr_assert_not_null(s.mallory);

        const struct ob_test_person *alice = person("alice");
        cr_assert_str_eq(s.alice->dn, alice->dn);
        cr_assert_str_eq(ob_account_get(s.alice, "mail"), "alice@example.org");
        cr_assert_str_eq(ob_account_get(s.alice, "manager"), alice->manager);
        const char *uuid = ob_account_get(s.alice, "entryUUID");
        cr_assert(is_uuid(uuid), "entryUUID '%s'", uuid ? uuid : "(none)");
        cr_assert_str_eq(s.alice->id, uuid);
        cr_assert_not_null(ob_account_get(s.alice, "entryCSN"));
        cr_assert_null(ob_account_get(s.alice, "sn"), "an attribute that was not requested came back");

        /* The hostile uid survives byte for byte; so does a 2,000-byte cn. */
        const char *mallory_uid = ob_account_get(s.mallory, "uid");
        const struct ob_test_person *m = NULL;
        for (size_t i = 0; i < man->npeople && !m; i++)
                if (strncmp(man->people[i].uid, "mal lory", 8) == 0)
                        m = &man->people[i];
        cr_assert_not_null(m);
        cr_assert_str_eq(mallory_uid, m->uid);
        cr_assert_str_eq(mallory_uid, "mal lory/?#%\"\\*()\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac");
        cr_assert_eq(ob_account_attr(s.mallory, "cn")->vals[0].len, 2000);
        cr_assert_str_eq(ob_account_get(s.mallory, "mail"), "mal+lory@example.org");
        seen_free(&s);
        ob_dir_free(d);
}

Test(directory, a_callback_error_stops_the_search_and_is_returned)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct seen s = {.stop_after = 10};
        size_t count = 4242;
        cr_assert_eq(search_accounts(d, on_account, &s, &count), -ECANCELED);
        cr_assert_eq(s.n, 10);
        cr_assert_eq(count, 4242, "ret_count written on failure");
        seen_free(&s);
        /* The connection is still usable afterwards. */
        struct seen s2 = {0};
        cr_assert_eq(search_accounts(d, on_account, &s2, NULL), 0);
        cr_assert_eq(s2.n, man->npeople);
        seen_free(&s2);
        ob_dir_free(d);
}

Test(directory, the_size_limited_account_gets_a_size_limit_error_not_a_partial_success)
{
        struct ob_directory_config c = config();
        c.bind_dn = srv.limited_dn;
        c.bind_password_file = srv.limited_pw_file;
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        size_t count = 4242;
        /* Page size 7 is above the account's size.pr of 5. */
        cr_assert_eq(search_accounts(d, on_account, &s, &count), -OB_ESIZELIMIT);
        cr_assert_eq(count, 4242);
        seen_free(&s);
        ob_dir_free(d);
}

Test(directory, a_size_limit_after_some_pages_fails_the_whole_search)
{
        struct ob_directory_config c = config();
        c.bind_dn = srv.limited_dn;
        c.bind_password_file = srv.limited_pw_file;
        c.page_size = 2;
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        size_t count = 4242;
        cr_assert_eq(search_accounts(d, on_account, &s, &count), -OB_ESIZELIMIT);
        cr_assert_gt(s.n, 0, "the first pages should have been delivered");
        cr_assert_lt(s.n, man->npeople);
        cr_assert_eq(count, 4242);
        seen_free(&s);
        ob_dir_free(d);
}

Test(directory, a_missing_base_is_an_error_not_an_empty_result)
{
        struct ob_directory_config c = config();
        c.base = "ou=nowhere,dc=example,dc=org";
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        int r = search_accounts(d, on_account, &s, NULL);
        cr_assert_eq(r, -OB_EDIRECTORY, "got %d (%s)", r, ob_strerror(r));
        cr_assert_eq(s.n, 0);
        seen_free(&s);
        ob_dir_free(d);
}

Test(directory, entries_without_the_id_attribute_are_delivered_as_unreadable)
{
        struct ob_directory_config c = config();
        c.id_attribute = "manager"; /* present on some people only */
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        struct ob_dir_search_info info = {0};
        cr_assert_eq(ob_dir_search_accounts(d, on_account, &s, &info), 0);
        size_t with_manager = 0;
        for (size_t i = 0; i < man->npeople; i++)
                with_manager += man->people[i].manager != NULL;
        cr_assert_gt(with_manager, 0);
        cr_assert_lt(with_manager, man->npeople);
        /* Every entry comes back; those without an id are marked, never
         * dropped (a dropped entry would look deleted). */
        cr_assert_eq(s.n, man->npeople);
        cr_assert_eq(info.entries, man->npeople);
        cr_assert_eq(info.unreadable, man->npeople - with_manager);
        size_t without_id = 0;
        for (size_t i = 0; i < s.n; i++)
                without_id += s.ids[i][0] == '\0';
        cr_assert_eq(without_id, man->npeople - with_manager);
        ob_dir_search_info_clear(&info);
        seen_free(&s);
        ob_dir_free(d);
}

/* Whether every thread of pid is in group stop (state T). */
static bool all_threads_stopped(int pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", pid);
        DIR *dir = opendir(path);
        if (!dir)
                return false;
        bool all = true;
        size_t n = 0;
        for (struct dirent *e; all && (e = readdir(dir));) {
                if (e->d_name[0] == '.')
                        continue;
                char status[300], line[256] = "";
                snprintf(status, sizeof(status), "/proc/%d/task/%s/status", pid, e->d_name);
                FILE *f = fopen(status, "r");
                while (f && fgets(line, sizeof(line), f) && strncmp(line, "State:", 6) != 0)
                        ;
                if (f)
                        fclose(f);
                all = strstr(line, "(stopped)") != NULL;
                n++;
        }
        closedir(dir);
        return all && n > 0;
}

Test(directory, a_server_that_stops_answering_times_out_as_a_directory_error)
{
        struct ob_directory_config c = config();
        c.timeout_ms = 500;
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
        /* The signal is asynchronous: wait until every thread is stopped. */
        bool stopped = false;
        for (int i = 0; i < 200 && !stopped; i++) {
                stopped = all_threads_stopped(srv.pid);
                if (!stopped)
                        usleep(5000);
        }
        int r = stopped ? search_accounts(d, on_account, &s, NULL) : 4242;
        kill(srv.pid, SIGCONT);
        cr_assert(stopped, "slapd %d did not stop", srv.pid);
        cr_assert_eq(r, -OB_EDIRECTORY, "got %d (%s)", r, ob_strerror(r));
        seen_free(&s);
        ob_dir_free(d);
}

/* ---- one entry ------------------------------------------------------------------- */

Test(directory, read_account_of_a_missing_dn_is_not_found)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = (struct ob_account *)0x1;
        cr_assert_eq(ob_dir_read_account(d, "uid=nobody,ou=people,dc=example,dc=org", &a), -OB_ENOTFOUND);
        cr_assert_eq(a, (struct ob_account *)0x1);
        ob_dir_free(d);
}

Test(directory, read_account_outside_the_base_is_not_found)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, srv.bind_dn, &a), -OB_ENOTFOUND);
        cr_assert_eq(ob_dir_read_account(d, "not a dn", &a), -OB_ENOTFOUND);
        cr_assert_null(a);
        ob_dir_free(d);
}

Test(directory, read_account_returns_the_same_attributes_as_the_search)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const struct ob_test_person *bob = person("bob");
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, bob->dn, &a), 0);
        cr_assert_str_eq(a->dn, bob->dn);
        cr_assert(is_uuid(a->id));
        cr_assert_str_eq(ob_account_get(a, "description"), "Left the company");
        cr_assert_str_eq(ob_account_get(a, "employeeType"), "Inactive");
        cr_assert_str_eq(ob_account_get(a, "manager"), bob->manager);
        ob_account_free(a);
        ob_dir_free(d);
}

/* ---- teams ----------------------------------------------------------------------------- */

struct teams {
        size_t n;
        char *first_dn, *first_owner;
        char *prev;
        bool sorted;
};

static int on_team(const struct ob_account *g, void *ud)
{
        struct teams *t = ud;
        if (t->n == 0) {
                t->first_dn = strdup(g->dn);
                const char *o = ob_account_get(g, "owner");
                t->first_owner = o ? strdup(o) : NULL;
                t->sorted = true;
        } else if (strcmp(t->prev, g->dn) > 0) {
                t->sorted = false;
        }
        free(t->prev);
        t->prev = strdup(g->dn);
        t->n++;
        return 0;
}

static void teams_free(struct teams *t)
{
        free(t->first_dn);
        free(t->first_owner);
        free(t->prev);
}

Test(directory, teams_of_heidi_is_sales_owned_by_dave)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct teams t = {0};
        cr_assert_eq(ob_dir_search_teams(d, person("heidi")->dn, on_team, &t), 0);
        cr_assert_eq(t.n, 1);
        cr_assert_str_eq(t.first_dn, "cn=sales," TEAMS_BASE);
        cr_assert_str_eq(t.first_owner, person("dave")->dn);
        teams_free(&t);
        ob_dir_free(d);
}

Test(directory, teams_search_with_a_hostile_dn_finds_engineering)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const struct ob_test_person *m = NULL;
        for (size_t i = 0; i < man->npeople && !m; i++)
                if (strncmp(man->people[i].uid, "mal lory", 8) == 0)
                        m = &man->people[i];
        cr_assert_not_null(m);
        struct teams t = {0};
        cr_assert_eq(ob_dir_search_teams(d, m->dn, on_team, &t), 0);
        cr_assert_eq(t.n, 1);
        cr_assert_str_eq(t.first_dn, "cn=engineering," TEAMS_BASE);
        cr_assert_str_eq(t.first_owner, person("alice")->dn);
        teams_free(&t);

        /* The DN as the server spells it works as well. */
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, m->dn, &a), 0);
        struct teams t2 = {0};
        cr_assert_eq(ob_dir_search_teams(d, a->dn, on_team, &t2), 0);
        cr_assert_eq(t2.n, 1);
        cr_assert_str_eq(t2.first_dn, "cn=engineering," TEAMS_BASE);
        teams_free(&t2);
        ob_account_free(a);
        ob_dir_free(d);
}

Test(directory, a_wildcard_member_dn_matches_no_team)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct teams t = {0};
        cr_assert_eq(ob_dir_search_teams(d, "*", on_team, &t), 0);
        cr_assert_eq(t.n, 0, "'*' reached the filter unescaped");
        cr_assert_eq(ob_dir_search_teams(d, "*)(cn=*", on_team, &t), 0);
        cr_assert_eq(t.n, 0);
        teams_free(&t);
        ob_dir_free(d);
}

Test(directory, first_team_of_every_person_matches_the_manifest)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        size_t with_team = 0;
        for (size_t i = 0; i < man->npeople; i++) {
                const struct ob_test_person *p = &man->people[i];
                struct teams t = {0};
                cr_assert_eq(ob_dir_search_teams(d, p->dn, on_team, &t), 0, "%s", p->uid);
                if (!p->team) {
                        cr_assert_eq(t.n, 0, "%s is in %zu teams", p->uid, t.n);
                } else {
                        with_team++;
                        cr_assert_geq(t.n, 1, "%s", p->uid);
                        cr_assert(t.sorted, "teams of %s not in DN order", p->uid);
                        cr_assert_str_eq(t.first_dn, p->team, "%s", p->uid);
                        cr_assert_str_eq(t.first_owner, p->team_owner, "%s", p->uid);
                }
                teams_free(&t);
        }
        cr_assert_geq(with_team, 3);
        ob_dir_free(d);
}

Test(directory, no_teams_base_means_no_teams)
{
        struct ob_directory_config c = config();
        c.teams_base = NULL;
        struct ob_dir *d = open_ok(&c);
        struct teams t = {0};
        cr_assert_eq(ob_dir_search_teams(d, person("heidi")->dn, on_team, &t), 0);
        cr_assert_eq(t.n, 0);
        teams_free(&t);
        ob_dir_free(d);
}

/* ---- writing ------------------------------------------------------------------------------- */

static char *search_attr(const char *dn, const char *attrs)
{
        char filter[64];
        const char *rdn_end = strchr(dn, ',');
        cr_assert_not_null(rdn_end);
        /* The fixed accounts have plain uids: uid=NAME,... */
        snprintf(filter, sizeof(filter), "(%.*s)", (int)(rdn_end - dn), dn);
        char *out = ob_test_ldapsearch(&srv, srv.base, filter, attrs);
        cr_assert_not_null(out, "ldapsearch %s failed", filter);
        return out;
}

Test(directory, object_class_is_added_so_the_offboard_attributes_can_be_written)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *dn = person("bob")->dn;
        const char *status[] = {"inactive", NULL};
        const char *when[] = {"20261202014455Z", NULL};
        const char *reason[] = {"Left the company", NULL};
        const char *actions[] = {"revoke-sessions done 20261202014455Z", "remove-groups failed 20261202014456Z", NULL};
        struct ob_dir_mod mods[] = {
                {"offboardStatus", status},
                {"offboardStatusTime", when},
                {"offboardReason", reason},
                {"offboardAction", actions},
        };
        char *before = search_attr(dn, "objectClass");
        cr_assert_null(strstr(before, "offboardAccount"), "the fixture already has the class:\n%s", before);
        free(before);

        int r = ob_dir_replace(d, dn, "offboardAccount", mods, 4, NULL, NULL);
        cr_assert_eq(r, 0, "replace: %s", ob_strerror(r));
        char *out = search_attr(dn, "objectClass offboardStatus offboardStatusTime offboardReason offboardAction");
        cr_assert_not_null(strstr(out, "objectClass: offboardAccount\n"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardStatus: inactive\n"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardStatusTime: 20261202014455Z\n"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardReason: Left the company\n"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardAction: revoke-sessions done 20261202014455Z\n"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardAction: remove-groups failed 20261202014456Z\n"), "%s", out);
        free(out);

        /* Again, with the class now present: replaced, not added to; an
         * empty list removes the attribute. */
        const char *status2[] = {"deleted", NULL};
        const char *none[] = {NULL};
        const char *actions2[] = {"delete-account done 20261203000000Z", NULL};
        struct ob_dir_mod mods2[] = {
                {"offboardStatus", status2},
                {"offboardReason", none},
                {"offboardAction", actions2},
        };
        r = ob_dir_replace(d, dn, "offboardAccount", mods2, 3, NULL, NULL);
        cr_assert_eq(r, 0, "second replace: %s", ob_strerror(r));
        out = search_attr(dn, "offboardStatus offboardReason offboardAction");
        cr_assert_not_null(strstr(out, "offboardStatus: deleted\n"), "%s", out);
        cr_assert_null(strstr(out, "offboardReason"), "%s", out);
        cr_assert_null(strstr(out, "revoke-sessions"), "%s", out);
        cr_assert_not_null(strstr(out, "offboardAction: delete-account done 20261203000000Z\n"), "%s", out);
        free(out);

        /* Removing an attribute that is already gone is not an error. */
        struct ob_dir_mod mods3[] = {{"offboardReason", none}};
        cr_assert_eq(ob_dir_replace(d, dn, NULL, mods3, 1, NULL, NULL), 0);
        ob_dir_free(d);
}

Test(directory, without_the_object_class_the_write_is_refused)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *status[] = {"ended", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        int r = ob_dir_replace(d, person("erin")->dn, NULL, mods, 1, NULL, NULL);
        cr_assert_eq(r, -OB_EDIRECTORY, "got %d (%s)", r, ob_strerror(r));
        char *out = search_attr(person("erin")->dn, "offboardStatus");
        cr_assert_null(strstr(out, "offboardStatus"), "%s", out);
        free(out);
        ob_dir_free(d);
}

Test(directory, a_stale_entry_csn_assertion_refuses_the_second_write)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *dn = person("grace")->dn;
        struct ob_account *a = NULL;
        cr_assert_eq(ob_dir_read_account(d, dn, &a), 0);
        char *csn = strdup(ob_account_get(a, "entryCSN"));
        ob_account_free(a);
        cr_assert_not_null(csn);

        const char *status[] = {"locked", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        int r = ob_dir_replace(d, dn, "offboardAccount", mods, 1, "entryCSN", csn);
        cr_assert_eq(r, 0, "first write: %s", ob_strerror(r));

        const char *status2[] = {"active", NULL};
        struct ob_dir_mod mods2[] = {{"offboardStatus", status2}};
        r = ob_dir_replace(d, dn, "offboardAccount", mods2, 1, "entryCSN", csn);
        cr_assert_eq(r, -OB_EASSERTION, "stale write: %d (%s)", r, ob_strerror(r));

        char *out = search_attr(dn, "offboardStatus entryCSN");
        cr_assert_not_null(strstr(out, "offboardStatus: locked\n"), "the stale write changed the entry:\n%s", out);
        cr_assert_null(strstr(out, csn), "entryCSN did not move:\n%s", out);
        free(out);

        /* With the fresh CSN the write goes through. */
        cr_assert_eq(ob_dir_read_account(d, dn, &a), 0);
        r = ob_dir_replace(d, dn, NULL, mods2, 1, "entryCSN", ob_account_get(a, "entryCSN"));
        ob_account_free(a);
        cr_assert_eq(r, 0, "fresh write: %s", ob_strerror(r));
        free(csn);
        ob_dir_free(d);
}

Test(directory, an_assertion_value_with_filter_characters_is_escaped)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *status[] = {"locked", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        /* Unescaped, "*" would be a presence test that always matches. */
        int r = ob_dir_replace(d, person("carol")->dn, "offboardAccount", mods, 1, "entryCSN", "*");
        cr_assert_eq(r, -OB_EASSERTION, "got %d (%s)", r, ob_strerror(r));
        r = ob_dir_replace(d, person("carol")->dn, "offboardAccount", mods, 1, "description", "x)(objectClass=*");
        cr_assert_eq(r, -OB_EASSERTION, "got %d (%s)", r, ob_strerror(r));
        ob_dir_free(d);
}

Test(directory, replace_of_a_missing_entry_is_not_found)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *status[] = {"locked", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        const char *dn = "uid=nobody,ou=people,dc=example,dc=org";
        cr_assert_eq(ob_dir_replace(d, dn, "offboardAccount", mods, 1, NULL, NULL), -OB_ENOTFOUND);
        cr_assert_eq(ob_dir_replace(d, dn, NULL, mods, 1, NULL, NULL), -OB_ENOTFOUND);
        ob_dir_free(d);
}

Test(directory, the_service_account_may_not_write_other_attributes)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *v[] = {"Active", NULL};
        struct ob_dir_mod mods[] = {{"employeeType", v}};
        cr_assert_eq(ob_dir_replace(d, person("ivan")->dn, NULL, mods, 1, NULL, NULL), -OB_EDIRECTORY);
        char *out = search_attr(person("ivan")->dn, "employeeType");
        cr_assert_not_null(strstr(out, "employeeType: inactive\n"), "%s", out);
        free(out);
        ob_dir_free(d);
}

/* ---- the harness and the schema files ------------------------------------------------------- */

Test(directory, a_restarted_server_keeps_its_data_and_ports)
{
        struct ob_directory_config c = config();
        char uri[sizeof(srv.ldap_uri)];
        int old_pid = srv.pid;
        snprintf(uri, sizeof(uri), "%s", srv.ldap_uri);
        int r = ob_test_slapd_restart(&srv);
        cr_assert_eq(r, 0, "restart: %s", strerror(-r));
        cr_assert_neq(srv.pid, old_pid);
        cr_assert_str_eq(srv.ldap_uri, uri);
        struct ob_dir *d = open_ok(&c);
        struct seen s = {0};
        cr_assert_eq(search_accounts(d, on_account, &s, NULL), 0);
        cr_assert_eq(s.n, man->npeople);
        seen_free(&s);
        ob_dir_free(d);
}

/* One record of an LDIF/LDF file: its lines, unfolded. */
struct ldf_record {
        char *lines[64];
        size_t n;
};

static size_t ldf_load(const char *path, struct ldf_record *recs, size_t max)
{
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        char line[1024];
        size_t nrec = 0;
        struct ldf_record *cur = NULL;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (line[0] == '#')
                        continue;
                if (!line[0]) {
                        cur = NULL;
                        continue;
                }
                if (line[0] == ' ' && cur && cur->n) { /* continuation */
                        char *prev = cur->lines[cur->n - 1];
                        char *joined = NULL;
                        cr_assert_geq(asprintf(&joined, "%s%s", prev, line + 1), 0);
                        free(prev);
                        cur->lines[cur->n - 1] = joined;
                        continue;
                }
                if (!cur) {
                        cr_assert_lt(nrec, max);
                        cur = &recs[nrec++];
                        cur->n = 0;
                }
                cr_assert_lt(cur->n, 64);
                cur->lines[cur->n++] = strdup(line);
        }
        fclose(f);
        return nrec;
}

static const char *ldf_get(const struct ldf_record *r, const char *key, size_t nth)
{
        size_t klen = strlen(key);
        for (size_t i = 0; i < r->n; i++)
                if (strncasecmp(r->lines[i], key, klen) == 0 && r->lines[i][klen] == ':' && nth-- == 0)
                        return r->lines[i] + klen + 1 + (r->lines[i][klen + 1] == ' ');
        return NULL;
}

/* The schema line of the server's subschema that defines name. */
static const char *schema_def(const char *subschema, const char *kind, const char *name, char *out, size_t size)
{
        char needle[200];
        snprintf(needle, sizeof(needle), " NAME '%s' ", name);
        for (const char *p = subschema; (p = strstr(p, needle)); p++) {
                const char *bol = p;
                while (bol > subschema && bol[-1] != '\n')
                        bol--;
                if (strncmp(bol, kind, strlen(kind)) != 0)
                        continue;
                const char *eol = strchr(p, '\n');
                snprintf(out, size, "%.*s", (int)(eol ? eol - bol : (long)strlen(bol)), bol);
                return out;
        }
        return NULL;
}

static const char *oid_tail(const char *oid)
{
        /* ".1.N" or ".2.N": the last two arcs. */
        const char *last = strrchr(oid, '.');
        cr_assert_not_null(last);
        const char *p = last - 1;
        while (p > oid && *p != '.')
                p--;
        return p;
}

Test(directory, the_ad_schema_declares_what_the_openldap_schema_declares)
{
        struct ldf_record recs[32] = {0};
        size_t n = ldf_load(OB_SOURCE_DIR "/schemas/offboard-ad.ldf", recs, 32);
        char *subschema = ob_test_ldapsearch_scope(&srv, "cn=Subschema", "base", "(objectClass=subschema)",
                                                   "attributeTypes objectClasses");
        cr_assert_not_null(subschema);
        size_t nattrs = 0, nclasses = 0, nupdates = 0;
        char def[2048];
        for (size_t i = 0; i < n; i++) {
                const struct ldf_record *r = &recs[i];
                const char *dn = ldf_get(r, "dn", 0);
                cr_assert_not_null(dn);
                if (!*dn) {
                        cr_assert_str_eq(ldf_get(r, "add", 0), "schemaUpdateNow");
                        nupdates++;
                        continue;
                }
                cr_assert_not_null(strstr(dn, ",CN=Schema,CN=Configuration,DC=X"), "%s", dn);
                cr_assert_str_eq(ldf_get(r, "changetype", 0), "ntdsSchemaAdd");
                const char *name = ldf_get(r, "lDAPDisplayName", 0);
                cr_assert_not_null(name, "%s", dn);
                if (strcmp(ldf_get(r, "objectClass", 1), "attributeSchema") == 0) {
                        nattrs++;
                        cr_assert_not_null(schema_def(subschema, "attributeTypes:", name, def, sizeof(def)),
                                           "%s is not in offboard.ldif", name);
                        bool single = strcmp(ldf_get(r, "isSingleValued", 0), "TRUE") == 0;
                        cr_assert_eq(single, strstr(def, " SINGLE-VALUE") != NULL, "%s: single-valued differs", name);
                        const char *syn = ldf_get(r, "attributeSyntax", 0), *om = ldf_get(r, "oMSyntax", 0);
                        if (strcmp(syn, "2.5.5.12") == 0) {
                                cr_assert_str_eq(om, "64");
                                cr_assert_not_null(strstr(def, "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15"), "%s", def);
                        } else {
                                cr_assert_str_eq(syn, "2.5.5.11", "%s", name);
                                cr_assert_str_eq(om, "24");
                                cr_assert_not_null(strstr(def, "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24"), "%s", def);
                        }
                        char oid[200];
                        snprintf(oid, sizeof(oid), "%s ", oid_tail(ldf_get(r, "attributeID", 0)));
                        cr_assert_not_null(strstr(def, oid), "%s: OID tail %s differs: %s", name, oid, def);
                } else {
                        cr_assert_str_eq(ldf_get(r, "objectClass", 1), "classSchema");
                        nclasses++;
                        cr_assert_not_null(schema_def(subschema, "objectClasses:", name, def, sizeof(def)),
                                           "%s is not in offboard.ldif", name);
                        cr_assert_str_eq(ldf_get(r, "objectClassCategory", 0), "3"); /* auxiliary */
                        cr_assert_not_null(strstr(def, " AUXILIARY "));
                        size_t nmay = 0;
                        for (const char *m; (m = ldf_get(r, "mayContain", nmay)); nmay++) {
                                char word[200];
                                snprintf(word, sizeof(word), " %s ", m);
                                cr_assert_not_null(strstr(def, word), "%s: MAY lacks %s", name, m);
                        }
                        size_t dollars = 0;
                        for (const char *p = def; (p = strstr(p, " $ ")); p++)
                                dollars++;
                        cr_assert_eq(nmay, dollars + 1, "%s: MAY has %zu, the LDF %zu", name, dollars + 1, nmay);
                }
        }
        cr_assert_eq(nattrs, 4);
        cr_assert_eq(nclasses, 1);
        cr_assert_eq(nupdates, 2);
        /* Every offboard attribute type of the server is in the LDF. */
        size_t server_attrs = 0;
        for (const char *p = subschema; (p = strstr(p, "attributeTypes: ")); p++)
                if (strstr(p, " NAME 'offboard") && strstr(p, " NAME 'offboard") < strchr(p, '\n'))
                        server_attrs++;
        cr_assert_eq(server_attrs, nattrs);
        free(subschema);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < recs[i].n; j++)
                        free(recs[i].lines[j]);
}

Test(directory, the_service_account_may_add_no_other_object_class)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *dn = person("trent")->dn;
        const char *status[] = {"active", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        /* simpleSecurityObject is auxiliary and its MUST (userPassword) is
         * there, so only the ACL can refuse it. */
        cr_assert_eq(ob_dir_replace(d, dn, "simpleSecurityObject", mods, 1, NULL, NULL), -OB_EDIRECTORY);
        char *out = search_attr(dn, "objectClass offboardStatus");
        cr_assert_null(strstr(out, "simpleSecurityObject"), "%s", out);
        cr_assert_null(strstr(out, "offboardStatus"), "%s", out);
        free(out);
        char ldif[512];
        snprintf(ldif, sizeof(ldif),
                 "dn: %s\nchangetype: modify\nadd: objectClass\nobjectClass: simpleSecurityObject\n", dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0, "root could not add the class either");
        ob_dir_free(d);
}

struct guids {
        size_t n, matched;
        char first_bad[200];
};

static int on_guid_account(const struct ob_account *a, void *ud)
{
        struct guids *g = ud;
        const char *uid = ob_account_get(a, "uid");
        const struct ob_test_person *p = uid ? ob_test_manifest_find(man, uid) : NULL;
        const struct ob_attr *raw = ob_account_attr(a, "objectGUID");
        g->n++;
        if (p && p->guid && strcmp(a->id, p->guid) == 0 && raw && raw->vals[0].len == 16)
                g->matched++;
        else if (!g->first_bad[0])
                snprintf(g->first_bad, sizeof(g->first_bad), "%s: id %s, expected %s", uid ? uid : "?", a->id,
                         p && p->guid ? p->guid : "(none)");
        return 0;
}

Test(directory, an_object_guid_id_is_the_guid_string_as_ad_prints_it)
{
        static char *attrs[] = {"uid", "objectGUID", NULL};
        struct ob_directory_config c = config();
        c.id_attribute = "objectGUID";
        c.attributes = attrs;
        struct ob_dir *d = open_ok(&c);
        struct guids g = {0};
        cr_assert_eq(search_accounts(d, on_guid_account, &g, NULL), 0);
        cr_assert_eq(g.n, man->npeople);
        cr_assert_eq(g.matched, g.n, "%s", g.first_bad);
        ob_dir_free(d);
}

Test(directory, the_manifest_guids_put_the_first_three_fields_little_endian)
{
        /* What the manifest's generator computes, checked against the raw
         * bytes slapd returns: byte 3 prints first. */
        char *out = ob_test_ldapsearch(&srv, srv.base, "(uid=alice)", "objectGUID");
        cr_assert_not_null(out);
        const char *b64 = strstr(out, "objectGUID:: ");
        cr_assert_not_null(b64, "%s", out);
        b64 += strlen("objectGUID:: ");
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned char raw[18] = {0};
        size_t n = 0;
        unsigned acc = 0;
        int bits = 0;
        for (const char *p = b64; *p && *p != '\n' && *p != '=' && n < sizeof(raw); p++) {
                const char *pos = strchr(alphabet, *p);
                cr_assert_not_null(pos);
                acc = (acc << 6) | (unsigned)(pos - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        raw[n++] = (unsigned char)(acc >> bits);
                }
        }
        cr_assert_eq(n, 16);
        char expect[40];
        snprintf(expect, sizeof(expect), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-", raw[3], raw[2], raw[1], raw[0],
                 raw[5], raw[4], raw[7], raw[6], raw[8], raw[9]);
        cr_assert_eq(strncmp(person("alice")->guid, expect, strlen(expect)), 0, "%s vs %s", person("alice")->guid,
                     expect);
        free(out);
}

struct many {
        size_t n;
        int err[8];
        char *uid[8];
};

static void on_many(size_t i, const struct ob_account *a, int err, void *ud)
{
        struct many *m = ud;
        m->n++;
        m->err[i] = err;
        const char *uid = a ? ob_account_get(a, "uid") : NULL;
        m->uid[i] = uid ? strdup(uid) : NULL;
}

Test(directory, read_many_reads_every_dn_once_and_tells_missing_from_out_of_scope_from_found)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        const char *dns[] = {person("alice")->dn, "uid=nobody,ou=people,dc=example,dc=org", srv.bind_dn,
                             person("bob")->dn, "not a dn", person("dave")->dn};
        struct many m = {0};
        cr_assert_eq(ob_dir_read_many(d, dns, 6, on_many, &m), 0);
        cr_assert_eq(m.n, 6, "every DN gets exactly one answer");
        cr_assert_eq(m.err[0], 0);
        cr_assert_str_eq(m.uid[0], "alice");
        cr_assert_eq(m.err[1], -OB_ENOTFOUND);
        cr_assert_eq(m.err[2], -OB_ENOTFOUND, "outside the base is not an account offboard judges");
        cr_assert_str_eq(m.uid[3], "bob");
        cr_assert_eq(m.err[4], -OB_ENOTFOUND);
        cr_assert_str_eq(m.uid[5], "dave");
        for (size_t i = 0; i < 6; i++)
                free(m.uid[i]);
        ob_dir_free(d);
}

/* ---- on the event loop -------------------------------------------------------------------------- */

struct on_loop {
        struct ob_loop *loop;
        struct seen s;
        size_t entries_before_run; /* delivered before the loop ran: 0 if the search does not block */
        int search_result;
        size_t search_calls;
        size_t search_entries;
        int read_err[4];
        char *read_uid[4];
        size_t read_calls[4];
        int modify_result;
        size_t modify_calls;
        size_t pending;
};

static void loop_done_one(struct on_loop *o)
{
        if (--o->pending == 0)
                ob_loop_stop(o->loop);
}

static void on_loop_search_done(int result, struct ob_dir_search_info *info, void *ud)
{
        struct on_loop *o = ud;
        o->search_result = result;
        o->search_calls++;
        o->search_entries = info ? info->entries : 0;
        loop_done_one(o);
}

static int on_loop_entry(const struct ob_account *a, void *ud)
{
        struct on_loop *o = ud;
        return on_account(a, &o->s);
}

static void on_loop_read(const char *dn, const struct ob_account *a, int err, void *ud)
{
        struct on_loop *o = ud;
        size_t i = 0;
        while (i < 3 && strcasecmp(dn, o->read_uid[i] ? o->read_uid[i] : "") != 0)
                i++;
        /* read_uid[i] holds the DN asked for until the answer replaces it by the uid. */
        cr_assert_lt(i, 3, "an answer for a DN nobody asked for: %s", dn);
        o->read_calls[i]++;
        o->read_err[i] = err;
        free(o->read_uid[i]);
        const char *uid = a ? ob_account_get(a, "uid") : NULL;
        o->read_uid[i] = strdup(uid ? uid : "-");
        loop_done_one(o);
}

static void on_loop_modify(int result, void *ud)
{
        struct on_loop *o = ud;
        o->modify_result = result;
        o->modify_calls++;
        loop_done_one(o);
}

Test(directory, on_the_loop_a_search_reads_and_a_write_back_run_together_and_each_answers_once)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        struct on_loop o = {0};
        cr_assert_eq(ob_loop_new(&o.loop), 0);
        cr_assert_eq(ob_dir_attach(d, o.loop), 0);
        const char *target = person("user000007")->dn;
        const char *dns[] = {person("alice")->dn, "uid=nobody,ou=people,dc=example,dc=org", person("dave")->dn};
        for (size_t i = 0; i < 3; i++)
                o.read_uid[i] = strdup(dns[i]);

        cr_assert_eq(ob_dir_search_accounts_start(d, on_loop_entry, on_loop_search_done, &o), 0);
        o.pending++;
        for (size_t i = 0; i < 3; i++) {
                cr_assert_eq(ob_dir_read_account_start(d, dns[i], on_loop_read, &o), 0);
                o.pending++;
        }
        cr_assert_eq(ob_dir_read_account_start(d, srv.bind_dn, on_loop_read, &o), -OB_ENOTFOUND,
                     "outside the base: not found at once, and no callback");
        const char *status[] = {"locked", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        cr_assert_eq(ob_dir_replace_start(d, target, true, "offboardAccount", mods, 1, NULL, NULL, on_loop_modify, &o), 0);
        o.pending++;
        cr_assert_eq(ob_dir_in_flight(d), 5);
        /* A blocking read on the same connection meanwhile: what it meets
         * for the loop's operations is handed on, not lost. */
        struct ob_account *bob = NULL;
        cr_assert_eq(ob_dir_read_account(d, person("bob")->dn, &bob), 0);
        cr_assert_str_eq(ob_account_get(bob, "uid"), "bob");
        ob_account_free(bob);
        o.entries_before_run = o.s.n;
        cr_assert_eq(ob_loop_run(o.loop), 0);

        cr_assert_eq(o.pending, 0, "%zu operations never answered", o.pending);
        /* Whether a timer gets a turn between pages depends on how fast the
         * server answers (a quick one can finish within one pump): only
         * that nothing was delivered before the loop ran is certain. */
        cr_assert_eq(o.entries_before_run, 0, "the search delivered entries before the loop ran: it blocked");
        cr_assert_eq(o.search_calls, 1);
        cr_assert_eq(o.search_result, 0, "search: %s", ob_strerror(o.search_result));
        cr_assert_eq(o.s.n, man->npeople, "delivered %zu, the manifest lists %zu", o.s.n, man->npeople);
        cr_assert_eq(o.search_entries, o.s.n);
        for (size_t i = 0; i < man->npeople; i++) {
                size_t hits = 0;
                for (size_t j = 0; j < o.s.n; j++)
                        hits += strcmp(o.s.uids[j], man->people[i].uid) == 0;
                cr_assert_eq(hits, 1, "%s delivered %zu times", man->people[i].uid, hits);
        }
        for (size_t i = 0; i < 3; i++)
                cr_assert_eq(o.read_calls[i], 1, "read %zu answered %zu times", i, o.read_calls[i]);
        cr_assert_eq(o.read_err[0], 0);
        cr_assert_str_eq(o.read_uid[0], "alice");
        cr_assert_eq(o.read_err[1], -OB_ENOTFOUND);
        cr_assert_eq(o.read_err[2], 0);
        cr_assert_str_eq(o.read_uid[2], "dave");
        cr_assert_eq(o.modify_calls, 1);
        cr_assert_eq(o.modify_result, 0, "modify: %s", ob_strerror(o.modify_result));
        char *out = search_attr(target, "objectClass offboardStatus");
        cr_assert_not_null(strstr(out, "offboardStatus: locked\n"), "%s", out);
        cr_assert_not_null(strstr(out, "objectClass: offboardAccount\n"), "%s", out);
        free(out);
        cr_assert_eq(ob_dir_in_flight(d), 0);
        for (size_t i = 0; i < 3; i++)
                free(o.read_uid[i]);
        seen_free(&o.s);
        ob_dir_free(d);
        ob_loop_free(o.loop);
}

Test(directory, on_the_loop_a_server_that_stops_answering_fails_each_operation_once_within_the_timeout)
{
        struct ob_directory_config c = config();
        c.timeout_ms = 500;
        struct ob_dir *d = open_ok(&c);
        struct on_loop o = {0};
        cr_assert_eq(ob_loop_new(&o.loop), 0);
        cr_assert_eq(ob_dir_attach(d, o.loop), 0);
        cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
        bool stopped = false;
        for (int i = 0; i < 200 && !stopped; i++) {
                stopped = all_threads_stopped(srv.pid);
                if (!stopped)
                        usleep(5000);
        }
        o.read_uid[0] = strdup(person("alice")->dn);
        int s = ob_dir_search_accounts_start(d, on_loop_entry, on_loop_search_done, &o);
        int rd = ob_dir_read_account_start(d, person("alice")->dn, on_loop_read, &o);
        const char *status[] = {"locked", NULL};
        struct ob_dir_mod mods[] = {{"offboardStatus", status}};
        int md = ob_dir_replace_start(d, person("user000008")->dn, false, NULL, mods, 1, NULL, NULL, on_loop_modify, &o);
        o.pending = 3;
        int run = s == 0 && rd == 0 && md == 0 && stopped ? ob_loop_run(o.loop) : 4242;
        kill(srv.pid, SIGCONT);
        cr_assert(stopped, "slapd %d did not stop", srv.pid);
        cr_assert_eq(run, 0, "start: %d %d %d", s, rd, md);
        cr_assert_eq(o.search_calls, 1);
        cr_assert_eq(o.search_result, -OB_EDIRECTORY, "got %s", ob_strerror(o.search_result));
        cr_assert_eq(o.read_calls[0], 1);
        cr_assert_eq(o.read_err[0], -OB_EDIRECTORY);
        cr_assert_eq(o.modify_calls, 1);
        cr_assert_eq(o.modify_result, -OB_EDIRECTORY);
        cr_assert_eq(ob_dir_in_flight(d), 0);
        free(o.read_uid[0]);
        seen_free(&o.s);
        ob_dir_free(d);
        ob_loop_free(o.loop);
}

/* ---- RFC 4533 content synchronization ------------------------------------------------------------- */

struct feed {
        struct ob_loop *loop;
        size_t refresh_entries; /* add/present during the refresh */
        bool live;
        size_t changes;
        char last_uuid[37];
        char *last_dn;
        char *last_modifier;
        int end_result;
        bool ended;
        char *cookie;
        size_t cookie_len;
        bool stop_on_change;
};

static void on_feed(const struct ob_sync_event *ev, void *ud)
{
        struct feed *f = ud;
        if (ev->kind == OB_SYNC_REFRESH_DONE) {
                f->live = true;
                ob_loop_stop(f->loop);
                return;
        }
        if (ev->refreshing) {
                f->refresh_entries++;
                return;
        }
        f->changes++;
        snprintf(f->last_uuid, sizeof(f->last_uuid), "%s", ev->uuid);
        free(f->last_dn);
        free(f->last_modifier);
        f->last_dn = ev->dn ? strdup(ev->dn) : NULL;
        f->last_modifier = ev->modifiers_name ? strdup(ev->modifiers_name) : NULL;
        if (f->stop_on_change)
                ob_loop_stop(f->loop);
}

static void on_feed_end(int result, const char *cookie, size_t len, void *ud)
{
        struct feed *f = ud;
        f->ended = true;
        f->end_result = result;
        free(f->cookie);
        f->cookie = cookie ? strndup(cookie, len) : NULL;
        f->cookie_len = len;
}

static void on_feed_timeout(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        (void)ud;
        ob_loop_stop(l);
}

Test(directory, a_sync_feed_refreshes_then_pushes_each_change_with_its_entry_uuid_and_modifier)
{
        struct ob_directory_config c = config();
        struct ob_dir *d = open_ok(&c);
        cr_assert(ob_dir_has_sync(d), "the test slapd runs syncprov: the root DSE must say so");
        struct feed f = {0};
        cr_assert_eq(ob_loop_new(&f.loop), 0);
        cr_assert_eq(ob_dir_attach(d, f.loop), 0);
        char *attrs[] = {"modifiersName", NULL};
        cr_assert_eq(ob_dir_sync_start(d, NULL, 0, attrs, on_feed, on_feed_end, &f), 0);
        struct ob_timer *t = NULL;
        ob_loop_timer(f.loop, 20000, on_feed_timeout, &f, &t);
        cr_assert_eq(ob_loop_run(f.loop), 0);
        cr_assert(f.live, "no refreshDone within 20 s (ended: %d %s; %zu entries)", f.ended, ob_strerror(f.end_result), f.refresh_entries);
        cr_assert_eq(f.refresh_entries, man->npeople, "the refresh without a cookie sends every account: %zu of %zu",
                     f.refresh_entries, man->npeople);
        ob_loop_timer_cancel(f.loop, t);

        const char *dn = person("user000011")->dn;
        char ldif[400];
        snprintf(ldif, sizeof(ldif), "dn: %s\nchangetype: modify\nreplace: description\ndescription: feed test\n", dn);
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0);
        f.stop_on_change = true;
        ob_loop_timer(f.loop, 20000, on_feed_timeout, &f, &t);
        cr_assert_eq(ob_loop_run(f.loop), 0);
        cr_assert_eq(f.changes, 1, "the modify was not pushed within 20 s");
        cr_assert_not_null(f.last_dn);
        cr_assert_str_eq(f.last_dn, dn);
        char *uuid = search_attr(dn, "entryUUID");
        cr_assert(strstr(uuid, f.last_uuid), "the event's uuid %s is the entry's:\n%s", f.last_uuid, uuid);
        free(uuid);
        cr_assert_not_null(f.last_modifier, "modifiersName was asked for");
        cr_assert(strstr(f.last_modifier, "cn=peercred"), "ldapmodify ran as root over ldapi: %s", f.last_modifier);
        ob_loop_timer_cancel(f.loop, t);
        /* Letting the connection go ends the feed once, with the cookie to resume from. */
        ob_dir_free(d);
        cr_assert(f.ended);
        cr_assert_eq(f.end_result, -ECANCELED);
        cr_assert_not_null(f.cookie, "the server gave a cookie");
        free(f.cookie);
        free(f.last_dn);
        free(f.last_modifier);
        ob_loop_free(f.loop);
}
