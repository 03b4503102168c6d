/* Fail closed: the offboard binary against a real slapd and a recording
 * HTTP(S) server, in the situations where doing nothing is right and doing
 * something is a disaster: read access lost, ids unreadable, referrals,
 * directory errors while choosing a transfer target, secrets in error bodies,
 * insecure transport, terminal escapes, a refused state store, limits.
 *
 * Every test uses its own temporary directory and state store. Changes to
 * the shared directory (entries, ACLs on olcDatabase={1}mdb,cn=config) are
 * registered with undo() before they are made and undone in the suite's
 * .fini, which runs even when an assertion fails; tests that go on after a
 * change also undo it themselves before their last assertions.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

#define PEOPLE "ou=people,dc=example,dc=org"
#define MDB "olcDatabase={1}mdb,cn=config"
#define MANAGE_DSA_IT "control: 2.16.840.1.113730.3.4.2 true\n"
#define RUN_TIMEOUT_S 30
/* A clause in every ACL a test adds (it matches nobody), so one left by a
 * test that was killed can be found and removed. */
#define ACL_MARKER "by dn.exact=\"cn=fc-test-marker,dc=example,dc=org\" none"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];

/* LDIF run in reverse order by the suite's .fini (and by undo_now()). */
static char *undo_ldif[32];
static size_t nundo;
/* Memory freed by .fini, so a failed assertion leaks nothing. */
static void *garbage[512];
static size_t ngarbage;

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        if (ob_test_slapd_share(40) < 0)
                fprintf(stderr, "could not start slapd\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void *gc(void *p)
{
        if (p && ngarbage < sizeof(garbage) / sizeof(garbage[0]))
                garbage[ngarbage++] = p;
        else if (p)
                fprintf(stderr, "gc: too many allocations\n");
        return p;
}

static char *fmt(const char *f, ...)
{
        va_list ap;
        char *s = NULL;
        va_start(ap, f);
        if (vasprintf(&s, f, ap) < 0)
                s = NULL;
        va_end(ap);
        cr_assert_not_null(s);
        return gc(s);
}

/* Registers LDIF that puts the directory back; run by .fini. */
static void undo(const char *ldif)
{
        cr_assert_lt(nundo, sizeof(undo_ldif) / sizeof(undo_ldif[0]));
        undo_ldif[nundo] = strdup(ldif);
        cr_assert_not_null(undo_ldif[nundo]);
        nundo++;
}

/* ob_test_ldapmodify with its stderr (ldapmodify's complaints) muted. */
static int ldapmodify_muted(const char *ldif)
{
        fflush(stderr);
        int saved = dup(2), null = open("/dev/null", O_WRONLY);
        if (saved >= 0 && null >= 0)
                dup2(null, 2);
        int r = ob_test_ldapmodify(&srv, ldif);
        if (saved >= 0) {
                dup2(saved, 2);
                close(saved);
        }
        if (null >= 0)
                close(null);
        return r;
}

/* Undoes every registered change now (newest first). Returns how many failed. */
static int undo_now(void)
{
        int failed = 0;
        while (nundo > 0) {
                char *l = undo_ldif[--nundo];
                int r = ldapmodify_muted(l);
                /* A delete of what is already gone: 32 noSuchObject, or 10
                 * referral for an entry below a referral object. */
                if (r != 0 && !((r == 32 || r == 10) && strstr(l, "changetype: delete"))) {
                        fprintf(stderr, "fail_closed: undo failed (%d):\n%s\n", r, l);
                        failed++;
                }
                free(l);
        }
        return failed;
}

/* Undoes what a test killed before its .fini left behind: ACLs it added,
 * and the fixed people it changed (as the fixture has them). */
static void repair_directory(void)
{
        for (int i = 0; i < 16; i++) {
                char *acls = ob_test_ldapsearch_scope(&srv, MDB, "base", "(objectClass=*)", "olcAccess");
                char *m = acls ? strstr(acls, "fc-test-marker") : NULL;
                if (!m) {
                        free(acls);
                        break;
                }
                while (m > acls && m[-1] != '\n')
                        m--;
                char *ldif = NULL;
                if (asprintf(&ldif, "dn: " MDB "\nchangetype: modify\ndelete: olcAccess\n%.*s\n", (int)strcspn(m, "\n"),
                             m) < 0)
                        ldif = NULL;
                free(acls);
                int r = ldif ? ob_test_ldapmodify(&srv, ldif) : -1;
                free(ldif);
                cr_assert_eq(r, 0, "could not remove an ACL left by an earlier test");
        }
        static const char *const fixed[][2] = {
                {"grace", "Locked"}, {"bob", "Inactive"}, {"heidi", "Terminated"}, {"alice", "employee"}};
        char ldif[2048] = "";
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
                size_t l = strlen(ldif);
                snprintf(ldif + l, sizeof(ldif) - l,
                         "dn: uid=%s," PEOPLE "\nchangetype: modify\nreplace: employeeType\nemployeeType: %s\n\n",
                         fixed[i][0], fixed[i][1]);
        }
        cr_assert_eq(ob_test_ldapmodify(&srv, ldif), 0, "could not restore the fixed people");
}

static void setup(void)
{
        cr_assert_eq(ob_test_slapd_attach(&srv), 0, "slapd is not running");
        cr_assert_eq(ob_test_manifest_load(srv.manifest, &man), 0);
        repair_directory();
        snprintf(dir, sizeof(dir), "/tmp/ob-fc-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        /* The fixture's statuses are for today; reconcile uses the real clock. */
        unsetenv("OFFBOARD_NOW");
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

static struct ob_test_request *reqs;
static size_t nreqs;

static void teardown(void)
{
        ob_test_recorder_stop(&rec);
        if (reqs)
                ob_test_requests_free(reqs, nreqs);
        reqs = NULL;
        nreqs = 0;
        undo_now();
        ob_test_manifest_free(man);
        man = NULL;
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        while (ngarbage > 0)
                free(garbage[--ngarbage]);
}

TestSuite(fail_closed, .init = setup, .fini = teardown, .timeout = 150);

/* ---- configuration ---------------------------------------------------------- */

struct opts {
        const char *uri;             /* default srv.ldap_uri */
        bool plain;                  /* starttls: false */
        bool anonymous;              /* no bind_dn */
        bool tls_verify_off;         /* directory.tls_verify: false */
        const char *inline_password; /* bind_password: X instead of the file */
        const char *fallback;        /* default trent */
        int max_accounts;            /* safety.max_accounts (0: off) */
        int max_pages;               /* directory.max_pages (0: not set) */
        const char *token;           /* default s3cr3t-t0ken */
        const char *base_url;        /* default rec.base_url + /api, with allow_insecure: true */
        const char *connector_extra; /* raw YAML lines, indented 4 spaces */
};

static void write_file(const char *name, const char *text, mode_t mode)
{
        char *path = fmt("%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
        chmod(path, mode);
}

static void write_config(const struct opts *o)
{
        static const struct opts none = {0};
        if (!o)
                o = &none;
        write_file("apps.token", fmt("%s\n", o->token ? o->token : "s3cr3t-t0ken"), 0600);
        char *bind;
        if (o->anonymous)
                bind = "";
        else if (o->inline_password)
                bind = fmt("  bind_dn: %s\n  bind_password: %s\n", srv.bind_dn, o->inline_password);
        else
                bind = fmt("  bind_dn: %s\n  bind_password_file: %s\n", srv.bind_dn, srv.bind_pw_file);
        char *connector;
        if (o->base_url)
                connector = fmt("    base_url: %s\n", o->base_url);
        else
                connector = fmt("    base_url: %s/api\n"
                                "    allow_insecure: true\n", /* the recorder is plain http on loopback */
                                rec.base_url);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  starttls: %s\n"
                "  ca_file: %s\n"
                "%s"
                "%s"
                "  base: %s\n"
                "  page_size: 7\n"
                "%s"
                "  timeout: 10s\n"
                "  teams:\n"
                "    base: ou=teams,dc=example,dc=org\n"
                "writeback:\n"
                "  object_class: offboardAccount\n"
                "  assertion_attribute: entryCSN\n"
                "state:\n"
                "  path: state.db\n"
                "transfer:\n"
                "  fallback: %s\n"
                "safety:\n"
                "  max_accounts: %d\n"
                "  max_percent: 0\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  apps:\n"
                "    type: http\n"
                "%s"
                "    auth: {type: bearer, token_file: apps.token}\n"
                "    timeout: 5s\n"
                "    concurrency: 4\n"
                "%s"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "    json: {reason: \"{{ status.reason }}\", status: \"{{ status.name }}\"}\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    after: [revoke-sessions]\n"
                "    json: {to: \"{{ transfer_to.uid }}\", via: \"{{ transfer_to.via }}\"}\n"
                "    when: {status: [inactive, ended, deleted]}\n"
                "  free-license:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /licenses/{{ account.uid }}\n"
                "    after: [transfer-records]\n"
                "    when: {status: [inactive, deleted]}\n"
                "  reactivate:\n"
                "    connector: apps\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/reactivate\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, transfer-records, free-license]\n"
                "  lock:\n"
                "    to: locked\n"
                "    actions: [revoke-sessions]\n"
                "  reactivate:\n"
                "    from: [locked, inactive, ended]\n"
                "    to: active\n"
                "    actions: [reactivate]\n",
                o->uri ? o->uri : srv.ldap_uri, o->plain ? "false" : "true", srv.ca_file,
                o->tls_verify_off ? "  tls_verify: false\n" : "", bind, srv.base,
                o->max_pages ? fmt("  max_pages: %d\n", o->max_pages) : "", o->fallback ? o->fallback : man->fallback,
                o->max_accounts, connector, o->connector_extra ? o->connector_extra : "");
        fclose(f);
}

/* Starts the recording server and writes the config. */
static void start(const char *rules, const struct opts *o)
{
        cr_assert_eq(ob_test_recorder_start(&rec, rules, false), 0, "the recorder did not start");
        write_config(o);
}

/* Runs offboard CMD --config cfgpath [args...] (NULL-terminated). */
static int ob(const char *cmd, char **out, char **err, ...)
{
        const char *argv[16] = {OB_OFFBOARD_BIN, cmd, "--config", cfgpath};
        size_t n = 4;
        va_list ap;
        va_start(ap, err);
        const char *a;
        while ((a = va_arg(ap, const char *)) && n < 15)
                argv[n++] = a;
        va_end(ap);
        argv[n] = NULL;
        char *o = NULL, *e = NULL;
        int rc = ob_test_run(argv, RUN_TIMEOUT_S, &o, &e);
        *out = gc(o ? o : strdup(""));
        *err = gc(e ? e : strdup(""));
        return rc;
}

/* ---- requests --------------------------------------------------------------- */

static void load_requests(void)
{
        if (reqs)
                ob_test_requests_free(reqs, nreqs);
        reqs = NULL;
        nreqs = 0;
        cr_assert_eq(ob_test_recorder_requests(&rec, &reqs, &nreqs), 0);
}

static const struct ob_test_request *find_req(const char *method, const char *path)
{
        load_requests();
        for (size_t i = 0; i < nreqs; i++)
                if ((!method || strcmp(reqs[i].method, method) == 0) && strcmp(reqs[i].path, path) == 0)
                        return &reqs[i];
        return NULL;
}

/* Paths of the requests received after the first `since`, one a line (for
 * failure messages). */
static char *requests_after(int since)
{
        load_requests();
        size_t cap = 64 + nreqs * 96;
        char *s = gc(calloc(1, cap));
        cr_assert_not_null(s);
        for (size_t i = since > 0 ? (size_t)since : 0; i < nreqs; i++) {
                size_t l = strlen(s);
                snprintf(s + l, cap - l, "%s %s\n", reqs[i].method, reqs[i].path);
        }
        return s;
}

/* Requests whose path starts with /api/users/UID/ or is /api/licenses/UID. */
static char *request_list(void)
{
        return requests_after(0);
}

static int requests_for(const char *uid)
{
        char *p1 = fmt("/api/users/%s/", uid), *p2 = fmt("/api/licenses/%s", uid);
        load_requests();
        int n = 0;
        for (size_t i = 0; i < nreqs; i++)
                if (strncmp(reqs[i].path, p1, strlen(p1)) == 0 || strcmp(reqs[i].path, p2) == 0)
                        n++;
        return n;
}

/* ---- text ------------------------------------------------------------------- */

/* The text report's block for an account: from its "USERNAME  DN" line to
 * the blank line after it; NULL when absent. */
static char *block(const char *out, const char *header)
{
        const char *p = out;
        size_t hl = strlen(header);
        while (p && *p) {
                if (strncmp(p, header, hl) == 0)
                        break;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        if (!p || !*p)
                return NULL;
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        return gc(strndup(p, len));
}

/* The line of text holding needle (a copy), or NULL. */
static char *line_with(const char *text, const char *needle)
{
        const char *p = text ? strstr(text, needle) : NULL;
        if (!p)
                return NULL;
        const char *start = p;
        while (start > text && start[-1] != '\n')
                start--;
        return gc(strndup(start, strcspn(start, "\n")));
}

static bool contains_ci(const char *hay, const char *needle)
{
        return hay && strcasestr(hay, needle) != NULL;
}

/* Bytes of a file (which may hold NULs); NULL if absent. */
static char *read_bytes(const char *path, size_t *len)
{
        *len = 0;
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        size_t cap = 1 << 16;
        char *b = malloc(cap);
        size_t n;
        while (b && (n = fread(b + *len, 1, cap - *len, f)) > 0) {
                *len += n;
                if (*len == cap) {
                        char *nb = realloc(b, cap *= 2);
                        if (!nb) {
                                free(b);
                                b = NULL;
                        }
                        b = nb;
                }
        }
        fclose(f);
        return gc(b);
}

/* The first 8-byte piece of secret found in data, or NULL. */
static char *leaked_piece(const char *data, size_t len, const char *secret)
{
        size_t sl = strlen(secret);
        for (size_t i = 0; i + 8 <= sl; i++)
                if (memmem(data, len, secret + i, 8))
                        return fmt("%.8s", secret + i);
        return NULL;
}

/* A JSON string literal of s (for recorder rules). */
static char *jstr(const char *s)
{
        size_t cap = strlen(s) * 6 + 3, o = 0;
        char *j = gc(malloc(cap));
        cr_assert_not_null(j);
        j[o++] = '"';
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                if (*c == '"' || *c == '\\') {
                        j[o++] = '\\';
                        j[o++] = (char)*c;
                } else if (*c < 0x20 || *c == 0x7f) {
                        o += (size_t)sprintf(j + o, "\\u%04x", *c);
                } else {
                        j[o++] = (char)*c;
                }
        }
        j[o++] = '"';
        j[o] = '\0';
        return j;
}

static char *b64(const char *s)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(s), o = 0;
        char *r = gc(malloc(n / 3 * 4 + 8));
        cr_assert_not_null(r);
        const unsigned char *u = (const unsigned char *)s;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v =
                        (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0) | (i + 2 < n ? u[i + 2] : 0);
                r[o++] = tab[v >> 18 & 63];
                r[o++] = tab[v >> 12 & 63];
                r[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
                r[o++] = i + 2 < n ? tab[v & 63] : '=';
        }
        r[o] = '\0';
        return r;
}

/* ---- directory changes ------------------------------------------------------ */

/* Deletes an entry left over by an earlier run, if any. */
static void delete_entry_quietly(const char *dn)
{
        ldapmodify_muted(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", dn));
}

/* Adds a person under PEOPLE (removing a leftover first) and registers its
 * removal. extra: more LDIF attribute lines. */
static void add_person(const char *uid, const char *extra)
{
        const char *dn = fmt("uid=%s," PEOPLE, uid);
        delete_entry_quietly(dn);
        undo(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", dn));
        int r = ob_test_ldapmodify(&srv, fmt("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\n"
                                             "uid: %s\ncn: %s\nsn: %s\n%s",
                                             dn, uid, uid, uid, extra ? extra : ""));
        cr_assert_eq(r, 0, "could not add %s", dn);
}

/* Registers the restoration of olcDatabase={1}mdb's ACLs as they are now,
 * then inserts acl (without its {N} prefix) at index {1}. */
static void add_acl(const char *acl)
{
        char *now = gc(ob_test_ldapsearch_scope(&srv, MDB, "base", "(objectClass=*)", "olcAccess"));
        cr_assert_not_null(now, "cannot read the ACLs");
        size_t cap = strlen(now) + 256;
        char *restore = gc(malloc(cap));
        cr_assert_not_null(restore);
        snprintf(restore, cap, "dn: " MDB "\nchangetype: modify\nreplace: olcAccess\n");
        int n = 0;
        for (char *line = now; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strncmp(line, "olcAccess: ", 11) == 0) {
                        strcat(restore, line);
                        strcat(restore, "\n");
                        n++;
                }
                cr_assert(strncmp(line, "olcAccess:: ", 12) != 0, "base64 ACL: %s", line);
                line = nl ? nl + 1 : NULL;
        }
        cr_assert_geq(n, 5, "unexpected ACLs: %s", now);
        undo(restore);
        const char *by = strstr(acl, " by ");
        cr_assert_not_null(by, "%s", acl);
        int r = ob_test_ldapmodify(&srv, fmt("dn: " MDB "\nchangetype: modify\nadd: olcAccess\n"
                                             "olcAccess: {1}%.*s " ACL_MARKER "%s\n",
                                             (int)(by - acl), acl, by));
        cr_assert_eq(r, 0, "could not add the ACL %s", acl);
}

static void set_attr(const char *uid, const char *attr, const char *value, const char *old)
{
        const char *dn = fmt("uid=%s," PEOPLE, uid);
        if (old)
                undo(fmt("dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n", dn, attr, attr, old));
        else
                undo(fmt("dn: %s\nchangetype: modify\ndelete: %s\n", dn, attr));
        int r = ob_test_ldapmodify(&srv,
                                   fmt("dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n", dn, attr, attr, value));
        cr_assert_eq(r, 0, "could not set %s of %s", attr, uid);
}

/* The first reconcile: records everyone and deactivates who is owed. */
static void first_reconcile(void)
{
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(rc, 0, "the first reconcile exits 0; stdout: %.3000s\nstderr: %.3000s", out, err);
}

/* =========================================================================== */
/* 1. Lost read access                                                          */

Test(fail_closed, when_the_status_attributes_become_unreadable_reconcile_exits_3_and_reactivates_nobody)
{
        start(NULL, NULL);
        first_reconcile();
        int sent = ob_test_recorder_count(&rec);
        cr_assert_gt(sent, 0);

        add_acl("to dn.subtree=\"" PEOPLE "\" attrs=employeeType,pwdAccountLockedTime,shadowExpire "
                "by dn.exact=\"cn=offboard,ou=services,dc=example,dc=org\" none by * break");
        char *out, *err;
        int rc = ob("reconcile", &out, &err, NULL);
        int after = ob_test_recorder_count(&rec);
        cr_assert_eq(undo_now(), 0, "the ACL could not be removed");
        cr_assert_eq(after, sent, "requests were sent while the status attributes were hidden:\n%s",
                     requests_after(sent));
        cr_assert_eq(rc, 3, "expected exit 3 (directory problem), got %d; stdout: %.2000s\nstderr: %.2000s", rc, out,
                     err);
        cr_assert(strstr(err, "employeeType") || strstr(err, "pwdAccountLockedTime") || strstr(err, "shadowExpire"),
                  "stderr names no hidden attribute: %.2000s", err);
        cr_assert(contains_ci(err, "access"), "stderr does not say it is about access rights: %.2000s", err);

        rc = ob("plan", &out, &err, "--check", NULL);
        cr_assert_eq(rc, 0, "after the ACL is gone nothing is owed (nothing was recorded wrongly); stdout: %.3000s",
                     out);
}

Test(fail_closed, the_circuit_breaker_counts_reactivations_too)
{
        struct opts o = {.max_accounts = 2};
        start(NULL, &o);
        first_reconcile();
        int sent = ob_test_recorder_count(&rec);
        /* Three recorded non-active accounts now look active. */
        set_attr("grace", "employeeType", "Active", "Locked");
        set_attr("bob", "employeeType", "employee", "Inactive");
        set_attr("heidi", "employeeType", "employee", "Terminated");

        char *out, *err;
        int rc = ob("reconcile", &out, &err, NULL);
        int parked_sent = ob_test_recorder_count(&rec) - sent;
        int rc2 = -1;
        char *out2 = NULL, *err2 = NULL;
        if (rc == 4)
                rc2 = ob("reconcile", &out2, &err2, "--force", NULL);
        bool g = find_req("POST", "/api/users/grace/reactivate"), b = find_req("POST", "/api/users/bob/reactivate"),
             h = find_req("POST", "/api/users/heidi/reactivate");
        cr_assert_eq(undo_now(), 0, "could not restore grace, bob and heidi");

        cr_assert_eq(rc, 4, "3 reactivations > max_accounts 2 must park the plan (exit 4), got %d; stdout: %.3000s", rc,
                     out);
        cr_assert_eq(parked_sent, 0, "a parked plan sent requests:\n%s", requests_after(sent));
        cr_assert(strstr(out, "SAFETY"), "%.3000s", out);
        cr_assert_eq(rc2, 0, "reconcile --force; stdout: %.3000s\nstderr: %.3000s", out2, err2);
        cr_assert(g && b && h, "--force sends the three reactivations (grace %d, bob %d, heidi %d):\n%s", g, b, h,
                  requests_after(sent));
}

/* =========================================================================== */
/* 2. An unreadable id is not a deletion                                        */

Test(fail_closed, an_entry_whose_id_cannot_be_read_is_skipped_and_reported_not_deleted)
{
        const char *uids[3];
        size_t k = 0;
        for (size_t i = 0; i < man->npeople && k < 3; i++)
                if (strcmp(man->people[i].status, "active") == 0 && strncmp(man->people[i].uid, "user", 4) == 0)
                        uids[k++] = man->people[i].uid;
        cr_assert_eq(k, 3, "the fixture has fewer than 3 active generated users");
        start(NULL, NULL);
        first_reconcile();
        int sent = ob_test_recorder_count(&rec);

        add_acl(fmt("to dn.regex=\"^uid=(%s|%s|%s)," PEOPLE "$\" attrs=entryUUID "
                    "by dn.exact=\"cn=offboard,ou=services,dc=example,dc=org\" none by * break",
                    uids[0], uids[1], uids[2]));
        char *out, *err;
        int rc = ob("reconcile", &out, &err, NULL);
        int after = ob_test_recorder_count(&rec);
        cr_assert_eq(undo_now(), 0, "the ACL could not be removed");

        cr_assert_eq(after, sent, "requests were sent for accounts whose id was unreadable:\n%s", requests_after(sent));
        for (size_t i = 0; i < 3; i++)
                cr_assert_eq(requests_for(uids[i]), 0, "%s was treated as deleted", uids[i]);
        cr_assert_eq(rc, 1, "expected exit 1 (some accounts held), got %d; stdout: %.3000s\nstderr: %.3000s", rc, out,
                     err);
        char *all = fmt("%s\n%s", out, err);
        for (size_t i = 0; i < 3; i++)
                cr_assert(strstr(all, uids[i]), "the output does not name %s:\n%.3000s", uids[i], all);
        cr_assert(contains_ci(all, "skip") || contains_ci(all, "unreadable") || contains_ci(all, "not be read") ||
                          contains_ci(all, "cannot read"),
                  "the output does not say the entries were skipped or unreadable:\n%.3000s", all);
        cr_assert(strstr(all, "entryUUID"), "the output does not name the id attribute:\n%.3000s", all);
        rc = ob("plan", &out, &err, "--check", NULL);
        cr_assert_eq(rc, 0, "once the ids are readable again nothing is owed (nobody was recorded deleted): %.3000s",
                     out);
}

/* =========================================================================== */
/* 3. A referral under the base                                                 */

Test(fail_closed, a_referral_under_the_base_stops_the_pass_instead_of_sweeping_its_entries_as_deleted)
{
        const char *ou = "ou=branch," PEOPLE;
        delete_entry_quietly("uid=fcbr1,ou=branch," PEOPLE);
        delete_entry_quietly("uid=fcbr2,ou=branch," PEOPLE);
        delete_entry_quietly(ou);
        undo(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", ou));
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\nchangetype: add\nobjectClass: organizationalUnit\n"
                                                  "ou: branch\n",
                                                  ou)),
                     0);
        for (int i = 1; i <= 2; i++) {
                const char *dn = fmt("uid=fcbr%d,%s", i, ou);
                undo(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", dn));
                cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\n"
                                                          "uid: fcbr%d\ncn: Branch %d\nsn: Branch\n"
                                                          "employeeType: employee\n",
                                                          dn, i, i)),
                             0);
        }
        start(NULL, NULL);
        first_reconcile();
        int sent = ob_test_recorder_count(&rec);
        char *p = gc(ob_test_ldapsearch(&srv, srv.base, "(uid=fcbr1)", "entryUUID"));
        cr_assert(p && strstr(p, "entryUUID"), "fcbr1 was not added: %s", p ? p : "");

        /* The branch moves to another server: its entries go, a referral comes. */
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: uid=fcbr1,%s\nchangetype: delete\n", ou)), 0);
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: uid=fcbr2,%s\nchangetype: delete\n", ou)), 0);
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\nchangetype: delete\n", ou)), 0);
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\n" MANAGE_DSA_IT "changetype: add\n"
                                                  "objectClass: referral\nobjectClass: extensibleObject\n"
                                                  "ou: branch\nref: ldap://127.0.0.1:1/%s\n",
                                                  ou, ou)),
                     0, "could not add the referral");

        char *out, *err;
        int rc = ob("reconcile", &out, &err, NULL);
        int after = ob_test_recorder_count(&rec);
        cr_assert_eq(undo_now(), 0, "could not remove the referral");

        cr_assert_eq(after, sent, "the entries behind the referral were swept as deleted:\n%s", requests_after(sent));
        cr_assert_eq(requests_for("fcbr1") + requests_for("fcbr2"), 0);
        cr_assert_eq(rc, 3, "expected exit 3, got %d; stdout: %.2000s\nstderr: %.2000s", rc, out, err);
        cr_assert(contains_ci(err, "referral") || contains_ci(err, "reference"),
                  "stderr does not mention the referral: %.2000s", err);
}

/* =========================================================================== */
/* 4. Transfer target                                                           */

/* After a reconcile: uid's revocation was sent, its transfer and the license
 * (which runs after the transfer) were not, exit 1, and its text block says
 * the transfer is held and why. */
static void assert_transfer_held(const char *uid, int rc, const char *out, const char *err)
{
        cr_assert_not_null(find_req("POST", fmt("/api/users/%s/sessions/revoke", uid)),
                           "security actions do not wait for the transfer target:\n%s", request_list());
        const struct ob_test_request *t = find_req(NULL, fmt("/api/users/%s/transfer", uid));
        cr_assert_null(t, "%s's records were transferred although the lookup failed: %s", uid, t ? t->body : "");
        cr_assert_null(find_req(NULL, fmt("/api/licenses/%s", uid)), "the license was freed before the transfer");
        cr_assert_eq(rc, 1, "expected exit 1 (a step held), got %d; stdout: %.3000s\nstderr: %.3000s", rc, out, err);
        char *b = block(out, fmt("%s  ", uid));
        cr_assert_not_null(b, "%s is not in the report:\n%.4000s", uid, out);
        char *tr = line_with(b, "transfer-records");
        cr_assert(tr && strstr(tr, "held"), "the transfer is not held:\n%s", b);
        /* Why: a line that speaks of the transfer target's lookup (not just
         * "an action it runs after did not succeed"). */
        bool why = false;
        for (const char *l = b; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char *line = fmt("%.*s", (int)strcspn(l, "\n"), l);
                if ((contains_ci(line, "held") || contains_ci(line, "error")) && contains_ci(line, "transfer") &&
                    !strstr(line, "transfer-records"))
                        why = true;
                if (strstr(line, "transfer:") && (contains_ci(line, "referral") || contains_ci(line, "error") ||
                                                  contains_ci(line, "cannot") || contains_ci(line, "fail")))
                        why = true;
        }
        cr_assert(why, "the report does not say why the transfer is held:\n%s", b);
}

/* The teams search (part of choosing heidi's target: she has no manager,
 * her team's owner takes her records) meets a referral: an error, not "no
 * team". */
Test(fail_closed, a_referral_met_while_searching_the_teams_holds_the_transfer_and_what_follows_it)
{
        const char *remote = "ou=remote,ou=teams,dc=example,dc=org";
        delete_entry_quietly(remote);
        undo(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", remote));
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\n" MANAGE_DSA_IT "changetype: add\n"
                                                  "objectClass: referral\nobjectClass: extensibleObject\n"
                                                  "ou: remote\nref: ldap://127.0.0.1:1/%s\n",
                                                  remote, remote)),
                     0, "could not add the referral");
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_not_null(find_req("POST", "/api/users/bob/transfer"), "bob's manager is fine:\n%s", request_list());
        assert_transfer_held("heidi", rc, out, err);
}

/* fcremote's manager lives below a referral object inside the base:
 * reading it returns a referral, which is an error, not "no manager" (so not
 * the fallback). The account search meets the same referral; with nothing
 * recorded under it, the pass goes on and says so. (A manager outside the
 * base is not an account offboard judges: that one is "no usable manager".) */
Test(fail_closed, a_directory_error_while_reading_the_manager_holds_the_transfer_and_what_follows_it)
{
        const char *remote = "ou=remote,ou=people,dc=example,dc=org";
        delete_entry_quietly(remote);
        undo(fmt("dn: %s\n" MANAGE_DSA_IT "changetype: delete\n", remote));
        cr_assert_eq(ob_test_ldapmodify(&srv, fmt("dn: %s\n" MANAGE_DSA_IT "changetype: add\n"
                                                  "objectClass: referral\nobjectClass: extensibleObject\n"
                                                  "ou: remote\nref: ldap://127.0.0.1:1/%s\n",
                                                  remote, remote)),
                     0, "could not add the referral");
        add_person("fcremote", "employeeType: Inactive\ndescription: Left the company\n"
                               "manager: uid=boss,ou=remote,ou=people,dc=example,dc=org\n");
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        assert_transfer_held("fcremote", rc, out, err);
}

Test(fail_closed, a_fallback_that_does_not_exist_holds_the_transfer_instead_of_sending_an_empty_target)
{
        struct opts o = {.fallback = "uid=no-such-fallback," PEOPLE};
        start(NULL, &o);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        load_requests();
        for (size_t i = 0; i < nreqs; i++)
                cr_assert_null(strstr(reqs[i].body ? reqs[i].body : "", "\"to\":\"\""),
                               "a transfer with an empty target was sent: %s %s", reqs[i].path, reqs[i].body);
        cr_assert_not_null(find_req("POST", "/api/users/ivan/sessions/revoke"));
        const struct ob_test_request *t = find_req(NULL, "/api/users/ivan/transfer");
        cr_assert_null(t, "ivan (no manager, no team) got a transfer: %s", t ? t->body : "");
        cr_assert_null(find_req(NULL, "/api/licenses/ivan"));
        cr_assert_not_null(find_req("POST", "/api/users/bob/transfer"), "bob's manager is fine");
        cr_assert_eq(rc, 1, "expected exit 1, got %d; stdout: %.3000s\nstderr: %.3000s", rc, out, err);
        char *b = block(out, "ivan  ");
        cr_assert_not_null(b, "ivan is not in the report:\n%.4000s", out);
        cr_assert(contains_ci(b, "no transfer target"), "ivan's block does not say 'no transfer target':\n%s", b);
        char *tr = line_with(b, "transfer-records");
        cr_assert(tr && strstr(tr, "held"), "transfer-records is not held:\n%s", b);
}

/* =========================================================================== */
/* 5. Secrets                                                                   */

#define TOKEN "abc/def/ghi/jkl/mno/pqr-0123456789"
#define TOKEN_ESCAPED "abc\\/def\\/ghi\\/jkl\\/mno\\/pqr-0123456789"
#define TOKEN_PERCENT "abc%2Fdef%2Fghi%2Fjkl%2Fmno%2Fpqr-0123456789"

/* No 8-byte piece of any secret in: reconcile's stdout and stderr (given),
 * a later plan (text and JSON, stdout and stderr), the state store's files
 * as bytes, and the write-back on the given accounts' entries. */
static void assert_secret_nowhere(const char *out, const char *err, const char *const *secrets, size_t nsecrets,
                                  const char *const *uids, size_t nuids)
{
        char *pout, *perr, *jout, *jerr;
        int prc = ob("plan", &pout, &perr, NULL);
        ob("plan", &jout, &jerr, "--format", "json", NULL);
        cr_assert_eq(prc, 0, "plan: %s", perr);
        cr_assert(strstr(pout, uids[0]), "%s still owes actions: %.3000s", uids[0], pout);
        struct place {
                const char *what;
                const char *data;
                size_t len;
        } places[32];
        size_t np = 0;
        places[np++] = (struct place){"reconcile stdout", out, strlen(out)};
        places[np++] = (struct place){"reconcile stderr", err, strlen(err)};
        places[np++] = (struct place){"plan stdout", pout, strlen(pout)};
        places[np++] = (struct place){"plan stderr", perr, strlen(perr)};
        places[np++] = (struct place){"plan --format json", jout, strlen(jout)};
        places[np++] = (struct place){"plan --format json stderr", jerr, strlen(jerr)};
        const char *files[] = {"state.db", "state.db-wal", "state.db-journal"};
        size_t nfiles = 0;
        for (size_t i = 0; i < 3; i++) {
                size_t len;
                char *data = read_bytes(fmt("%s/%s", dir, files[i]), &len);
                if (data) {
                        places[np++] = (struct place){files[i], data, len};
                        nfiles++;
                }
        }
        cr_assert_geq(nfiles, 1, "no state store in %s", dir);
        for (size_t u = 0; u < nuids && np < 32; u++) {
                char *wb = gc(ob_test_ldapsearch(&srv, srv.base, fmt("(uid=%s)", uids[u]),
                                                 "offboardAction offboardReason offboardStatus"));
                if (wb)
                        places[np++] = (struct place){fmt("%s's write-back", uids[u]), wb, strlen(wb)};
        }
        for (size_t i = 0; i < np; i++)
                for (size_t k = 0; k < nsecrets; k++) {
                        char *piece = leaked_piece(places[i].data, places[i].len, secrets[k]);
                        cr_assert_null(piece, "%s holds '%s', a piece of the token (as %s)", places[i].what, piece,
                                       secrets[k]);
                }
}

Test(fail_closed, a_token_echoed_in_an_error_body_appears_nowhere)
{
        /* The body echoes the token near its start, \/-escaped, and again
         * across byte 512 (where an error message may be cut). */
        char body[1024];
        int n = snprintf(body, sizeof(body),
                         "denied: Authorization: Bearer " TOKEN "; as JSON \"Bearer " TOKEN_ESCAPED "\"; ");
        while (n < 500)
                body[n++] = '.';
        snprintf(body + n, sizeof(body) - (size_t)n, "Bearer " TOKEN " (echo)");
        char *rules = fmt("[{\"match\": \"^/api/users/bob/sessions/revoke$\", \"status\": 401, "
                          "\"content_type\": \"text/plain\", \"body\": %s}]",
                          jstr(body));
        struct opts o = {.token = TOKEN};
        start(rules, &o);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        const struct ob_test_request *r = find_req("POST", "/api/users/bob/sessions/revoke");
        cr_assert_not_null(r);
        cr_assert_str_eq(ob_test_request_header(r, "Authorization"), "Bearer " TOKEN);
        cr_assert_eq(rc, 1, "bob's revocation failed: exit 1, got %d; stderr: %.2000s", rc, err);
        cr_assert(strstr(out, "401") && strstr(out, "denied: Authorization"), "the failure is reported: %.3000s", out);

        const char *secrets[] = {TOKEN, TOKEN_ESCAPED};
        const char *uids[] = {"bob"};
        assert_secret_nowhere(out, err, secrets, 2, uids, 1);
}

/* The server echoes the Authorization header it received (recorder.py's
 * echo_header rules): raw across byte 512, JSON-escaped, percent-encoded,
 * base64 and base64url, one encoding per account. */
Test(fail_closed, a_token_the_server_echoes_back_in_any_encoding_appears_nowhere)
{
        char *rs = gc(ob_test_read_file(OB_SOURCE_DIR "/tests/harness/recorder.py"));
        if (!rs || !strstr(rs, "echo_header"))
                cr_skip_test("tests/harness/recorder.py has no echo_header rules");
        const char *rule = "{\"match\": \"^/api/users/%s/sessions/revoke$\", \"status\": %d, "
                           "\"echo_header\": \"Authorization\", \"echo_strip\": \"Bearer \", \"echo_encode\": \"%s\", "
                           "\"content_type\": \"text/plain\", \"body\": %s}";
        char *rules = fmt("[%s, %s, %s, %s, %s]",
                          fmt(rule, "bob", 401, "raw", jstr("denied for {echo}; {pad:453}{echo} (again)")),
                          fmt(rule, "carol", 403, "json", jstr("{\"error\": \"bad token \\\"{echo}\\\"\"}")),
                          fmt(rule, "frank", 500, "percent", jstr("see /login?token={echo}&retry=1")),
                          fmt(rule, "erin", 500, "base64", jstr("credential {echo} rejected")),
                          fmt(rule, "grace", 500, "base64url", jstr("jwt-ish {echo}.sig")));
        struct opts o = {.token = TOKEN};
        start(rules, &o);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(rc, 1, "the revocations failed: exit 1, got %d; stderr: %.2000s", rc, err);
        cr_assert(strstr(out, "401") && strstr(out, "403"), "the failures are reported: %.3000s", out);
        cr_assert(strstr(out, "denied for") && strstr(out, "credential") && strstr(out, "jwt-ish"),
                  "the error bodies (less the token) are reported: %.3000s", out);
        char *b64url = gc(strdup(b64(TOKEN)));
        for (char *c = b64url; *c; c++)
                *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
        b64url[strcspn(b64url, "=")] = '\0';
        const char *secrets[] = {TOKEN, TOKEN_ESCAPED, TOKEN_PERCENT, b64(TOKEN), b64url};
        const char *uids[] = {"bob", "carol", "frank", "erin", "grace"};
        assert_secret_nowhere(out, err, secrets, 5, uids, 5);
}

Test(fail_closed, validate_refuses_an_inline_bind_password_without_printing_it)
{
        struct opts o = {.inline_password = "hunter2-s3cret"};
        start(NULL, &o);
        char *out, *err;
        int rc = ob("validate", &out, &err, NULL);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert_null(strstr(out, "hunter2"), "stdout shows the password: %s", out);
        cr_assert_null(strstr(err, "hunter2"), "stderr shows the password: %s", err);
        cr_assert(strstr(err, "bind_password"), "the error names the key: %s", err);
}

Test(fail_closed, a_header_read_from_a_file_is_sent_but_shown_masked)
{
        write_file("apikey.txt", "k3y-V4lue-7f9a2c\n", 0600);
        struct opts o = {.connector_extra = "    headers:\n      X-Api-Key: {value_file: apikey.txt}\n"};
        start(NULL, &o);
        char *out, *err, *jout, *jerr;
        int rc = ob("plan", &out, &err, "--account", "bob", NULL);
        cr_assert_eq(rc, 0, "stdout: %.2000s\nstderr: %.2000s", out, err);
        cr_assert(strstr(out, "X-Api-Key: ***"), "the plan does not show the masked header: %.3000s", out);
        ob("plan", &jout, &jerr, "--format", "json", "--account", "bob", NULL);
        cr_assert(strstr(jout, "\"X-Api-Key: ***\""), "%.3000s", jout);
        char *rout, *rerr;
        rc = ob("reconcile", &rout, &rerr, "--force", NULL);
        cr_assert_eq(rc, 0, "stdout: %.2000s\nstderr: %.2000s", rout, rerr);
        const struct ob_test_request *r = find_req("POST", "/api/users/bob/sessions/revoke");
        cr_assert_not_null(r);
        const char *v = ob_test_request_header(r, "X-Api-Key");
        cr_assert(v && strcmp(v, "k3y-V4lue-7f9a2c") == 0, "X-Api-Key sent: %s", v ? v : "(none)");
        const char *texts[] = {out, err, jout, jerr, rout, rerr};
        for (size_t i = 0; i < 6; i++)
                cr_assert_null(strstr(texts[i], "V4lue"), "output %zu shows the header's value: %.2000s", i, texts[i]);
}

/* =========================================================================== */
/* 6. Transport                                                                 */

Test(fail_closed, a_bearer_token_over_plain_http_is_refused_unless_allow_insecure)
{
        struct opts o = {.base_url = "http://apps.example.org/api"};
        start(NULL, &o);
        char *out, *err;
        int rc = ob("validate", &out, &err, NULL);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "allow_insecure"), "%s", err);
        char *at = strstr(err, cfgpath);
        cr_assert(at && at[strlen(cfgpath)] == ':' && at[strlen(cfgpath) + 1] >= '1' && at[strlen(cfgpath) + 1] <= '9',
                  "the error does not name %s:LINE: %s", cfgpath, err);
        o.connector_extra = "    allow_insecure: true\n";
        write_config(&o);
        rc = ob("validate", &out, &err, NULL);
        cr_assert_eq(rc, 0, "with allow_insecure: true; stdout: %s\nstderr: %s", out, err);
}

Test(fail_closed, every_plan_warns_when_directory_tls_verification_is_off)
{
        struct opts o = {.tls_verify_off = true};
        start(NULL, &o);
        for (int i = 0; i < 2; i++) {
                char *out, *err;
                int rc = ob("plan", &out, &err, NULL);
                cr_assert_eq(rc, 0, "run %d: stderr: %.2000s", i + 1, err);
                cr_assert(strstr(err, "tls_verify"), "run %d did not warn about tls_verify: %.2000s", i + 1, err);
        }
}

Test(fail_closed, an_anonymous_bind_over_plain_ldap_is_refused_by_validate)
{
        struct opts o = {.plain = true, .anonymous = true};
        start(NULL, &o);
        char *out, *err;
        int rc = ob("validate", &out, &err, NULL);
        cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
        cr_assert(strstr(err, "allow_insecure"), "%s", err);
}

/* =========================================================================== */
/* 7. Control characters                                                        */

static void assert_no_control(const char *what, const char *s)
{
        for (const char *p = s; *p; p++)
                cr_assert(*p != 0x1b && *p != 0x07 && *p != '\r', "%s holds byte 0x%02x at %zu: ...%.200s", what,
                          (unsigned char)*p, (size_t)(p - s), p > s + 100 ? p - 100 : s);
}

static bool shows_escape(const char *s)
{
        return strstr(s, "\\x1b") || strstr(s, "\\x1B") || strstr(s, "\\u001b") || strstr(s, "\\033") ||
               strstr(s, "\\e");
}

Test(fail_closed, the_text_plan_escapes_control_characters_from_the_directory)
{
        const char *uid = "fcesc\x1b[2J\x1b]0;pwned\x07\r";
        const char *dn = "uid=fcesc\\1b[2J\\1b]0\\3bpwned\\07\\0d," PEOPLE;
        delete_entry_quietly(dn);
        undo(fmt("dn: %s\nchangetype: delete\n", dn));
        int r = ob_test_ldapmodify(&srv, fmt("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nuid:: %s\n"
                                             "cn:: %s\nsn: Esc\nemployeeType: Inactive\ndescription:: %s\n",
                                             dn, b64(uid), b64("Esc \x1b[31mRed\x1b[0m \r\x1b]0;pwned\x07"),
                                             b64("\x1b[1A\x1b[2Kdone")));
        cr_assert_eq(r, 0, "could not add the entry");
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("plan", &out, &err, NULL);
        cr_assert_eq(rc, 0, "stderr: %.2000s", err);
        cr_assert(strstr(out, "fcesc"), "the account is not in the plan: %.3000s", out);
        assert_no_control("plan stdout", out);
        cr_assert(shows_escape(out), "the escapes are not shown escaped: %.3000s", strstr(out, "fcesc"));
}

Test(fail_closed, the_text_report_escapes_control_characters_in_an_error_body)
{
        char *rules = fmt("[{\"match\": \"^/api/users/bob/sessions/revoke$\", \"status\": 500, "
                          "\"content_type\": \"text/plain\", \"body\": %s}]",
                          jstr("\x1b[2J\x1b]0;pwned\x07 downstream broke\r\n\x1b[1A\x1b[2Kall good"));
        start(rules, NULL);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(rc, 1, "stdout: %.2000s\nstderr: %.2000s", out, err);
        cr_assert(strstr(out, "downstream broke"), "the error is not in the report: %.3000s", out);
        assert_no_control("reconcile stdout", out);
        cr_assert(shows_escape(out), "the escapes are not shown escaped: %.3000s", strstr(out, "downstream"));
}

/* =========================================================================== */
/* 8. Smaller                                                                    */

Test(fail_closed, offboard_now_moves_the_clock_of_plan_only)
{
        setenv("OFFBOARD_NOW", "4102444800", 1); /* 2100-01-01 */
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("plan", &out, &err, "--format", "json", NULL);
        cr_assert_eq(rc, 0, "stderr: %.2000s", err);
        cr_assert(strstr(out, "\"username\":\"judy\",\"status\":\"ended\""), "plan in 2100: judy has ended: %.3000s",
                  out);
        rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(rc, 0, "stdout: %.2000s\nstderr: %.2000s", out, err);
        cr_assert_eq(requests_for("judy"), 0, "reconcile acted on judy's future end date:\n%s", request_list());
        size_t expected = 3 * ob_test_manifest_count(man, "inactive", 0) + 2 * ob_test_manifest_count(man, "ended", 0) +
                          ob_test_manifest_count(man, "locked", 0);
        cr_assert_eq((size_t)ob_test_recorder_count(&rec), expected,
                     "reconcile acted on the faked clock: %d requests, %zu by the real clock",
                     ob_test_recorder_count(&rec), expected);
        /* It may warn that OFFBOARD_NOW is ignored; it must not act on it. */
}

Test(fail_closed, a_username_of_dot_or_dot_dot_fails_its_actions_instead_of_climbing_the_url)
{
        add_person(".", "employeeType: Inactive\ndescription: dots\nmanager: uid=alice," PEOPLE "\n");
        add_person("..", "employeeType: Inactive\ndescription: dots\nmanager: uid=alice," PEOPLE "\n");
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        regex_t re;
        cr_assert_eq(regcomp(&re, "^/api/(users/[^/]+/(sessions/revoke|transfer|reactivate)|licenses/[^/]+)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
        load_requests();
        for (size_t i = 0; i < nreqs; i++) {
                const char *p = reqs[i].path;
                bool shape = regexec(&re, p, 0, NULL, 0) == 0;
                bool dots = strstr(p, "/./") || strstr(p, "/../") || strcasestr(p, "%2e") ||
                            (strlen(p) >= 2 && strcmp(p + strlen(p) - 2, "/.") == 0) ||
                            (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0);
                if (!shape || dots) {
                        regfree(&re);
                        cr_assert_fail("a request for '.' or '..' was sent: %s %s", reqs[i].method, p);
                }
        }
        regfree(&re);
        cr_assert_not_null(find_req("POST", "/api/users/bob/sessions/revoke"), "the other accounts were not processed");
        cr_assert_eq(rc, 1, "expected exit 1, got %d; stdout: %.3000s\nstderr: %.3000s", rc, out, err);
        const char *heads[] = {".  uid=.,", "..  uid=..,"};
        for (size_t i = 0; i < 2; i++) {
                char *b = block(out, heads[i]);
                cr_assert_not_null(b, "'%s' is not in the report: %.4000s", heads[i], out);
                cr_assert(strstr(b, "failed") && strstr(b, "error"), "its actions did not fail with an error:\n%s", b);
        }
}

Test(fail_closed, core_dumps_are_off_while_reconcile_runs)
{
        start("[{\"match\": \"^/api/users/bob/sessions/revoke$\", \"delay_ms\": 20000, \"times\": 1}]", NULL);
        char *logpath = fmt("%s/slow.log", dir);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(OB_OFFBOARD_BIN, OB_OFFBOARD_BIN, "reconcile", "--force", "--config", cfgpath, (char *)NULL);
                _exit(127);
        }
        cr_assert_neq(pid, -1);
        bool seen = false;
        for (int i = 0; i < 3000 && !seen; i++) {
                char *log = ob_test_recorder_log(&rec);
                seen = log && strstr(log, "\"/api/users/bob/sessions/revoke\"");
                free(log);
                if (!seen)
                        usleep(10000);
        }
        char *limits = seen ? ob_test_read_file(fmt("/proc/%d/limits", (int)pid)) : NULL;
        gc(limits);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert(seen, "the slow request never arrived: %s", (char *)gc(ob_test_read_file(logpath)));
        cr_assert_not_null(limits);
        const char *l = strstr(limits, "Max core file size");
        cr_assert_not_null(l, "%s", limits);
        char soft[32] = "", hard[32] = "";
        cr_assert_eq(sscanf(l + strlen("Max core file size"), "%31s %31s", soft, hard), 2);
        cr_assert(strcmp(soft, "0") == 0 && strcmp(hard, "0") == 0, "core file size: soft %s, hard %s", soft, hard);
}

/* A state store that is not the agent's own. */
static void state_refused(const char *how)
{
        start(NULL, NULL);
        first_reconcile();
        int sent = ob_test_recorder_count(&rec);
        char *st = fmt("%s/state.db", dir);
        if (strcmp(how, "mode") == 0) {
                cr_assert_eq(chmod(st, 0666), 0);
        } else if (strcmp(how, "owner") == 0) {
                cr_assert_eq(chown(st, 65534, 65534), 0, "chown: %s (the tests run as root)", strerror(errno));
        } else {
                char *real = fmt("%s/real.db", dir);
                cr_assert_eq(rename(st, real), 0);
                cr_assert_eq(symlink(real, st), 0);
        }
        /* Something owed, so a wrongly accepted store would show in requests. */
        set_attr("alice", "employeeType", "Inactive", "employee");
        const char *cmds[] = {"reconcile", "plan"};
        for (size_t i = 0; i < 2; i++) {
                char *out, *err;
                int rc = ob(cmds[i], &out, &err, NULL);
                cr_assert_eq(rc, 2, "%s with a state store refused (%s): exit %d; stdout: %.2000s\nstderr: %.2000s",
                             cmds[i], how, rc, out, err);
                cr_assert(strstr(err, st), "%s does not name %s: %.2000s", cmds[i], st, err);
        }
        cr_assert_eq(ob_test_recorder_count(&rec), sent, "requests were sent:\n%s", requests_after(sent));
}

Test(fail_closed, a_world_writable_state_store_is_refused)
{
        state_refused("mode");
}

Test(fail_closed, a_state_store_owned_by_another_user_is_refused)
{
        state_refused("owner");
}

Test(fail_closed, a_state_store_that_is_a_symlink_is_refused)
{
        state_refused("symlink");
}

Test(fail_closed, a_search_cut_short_by_max_pages_exits_3_before_any_side_effect)
{
        struct opts o = {.max_pages = 1};
        start(NULL, &o);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(rc, 3, "stdout: %.2000s\nstderr: %.2000s", out, err);
        cr_assert_eq(ob_test_recorder_count(&rec), 0, "requests were sent:\n%s", request_list());
        cr_assert(strstr(err, "max_pages"), "stderr does not name max_pages: %.2000s", err);
}

Test(fail_closed, an_oversized_value_holds_that_account_and_the_others_go_ahead)
{
        size_t big = 1536 * 1024;
        char *desc = gc(malloc(big + 1));
        cr_assert_not_null(desc);
        memset(desc, 'x', big);
        desc[big] = '\0';
        char *extra = fmt("employeeType: Inactive\nmanager: uid=alice," PEOPLE "\ndescription: %s\n", desc);
        add_person("fcbig", extra);
        start(NULL, NULL);
        char *out, *err;
        int rc = ob("reconcile", &out, &err, "--force", NULL);
        cr_assert_eq(requests_for("fcbig"), 0, "fcbig was processed:\n%s", request_list());
        cr_assert_not_null(find_req("POST", "/api/users/bob/sessions/revoke"),
                           "the others were not processed (exit %d):\n%s\nstderr: %.2000s", rc, request_list(), err);
        cr_assert_not_null(find_req("DELETE", "/api/licenses/bob"));
        cr_assert_eq(rc, 1, "expected exit 1, got %d; stdout: %.2000s\nstderr: %.2000s", rc, out, err);
        char *all = fmt("%s\n%s", out, err);
        cr_assert(strstr(all, "fcbig"), "fcbig is not reported: %.3000s", all);
        cr_assert_lt(strlen(all), 512 * 1024, "the value itself was printed");
}
