/* The HTML report (offboard plan|reconcile --format html) in a real browser:
 * Debian's chromium, headless, on the page a real plan and a real reconcile
 * wrote from a real slapd. The page must carry the same data as
 * --format json (the embedded document parses to the same JSON), name no
 * other resource, load without a console message (an exception, a CSP
 * violation), draw an account whose values are hostile markup as text, and
 * its filters must show what the JSON says: with the URL's #selftest the
 * page picks each filter value as a person would and writes the sections
 * then visible into <pre id="selftest">, which is compared with the counts
 * this test makes from the JSON report (and, drawn two at a time, that
 * "show more" shows two more). Two pages broken on purpose show
 * that the console check can fail.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"
#include "run.h"
#include "slapd.h"

static struct ob_test_slapd srv;
static struct ob_test_manifest *man;
static struct ob_test_recorder rec;
static char dir[256];
static char cfgpath[300];

#define PEOPLE "ou=people,dc=example,dc=org"
#define TEAMS "ou=teams,dc=example,dc=org"
#define CHROMIUM "/usr/bin/chromium"
#define DATA_OPEN "<script type=\"application/json\" id=\"report\">"

/* The fixture's people (every status), a team bob (leaving) owns with alice
 * (active) in it, so that the team-owner guard holds his license, and one
 * account whose uid, DN and reason are markup, quotes and control
 * characters. The uid is, base64'd:
 * x</script><script>document.title="pwned"</script>"<U+0001><U+202E>&amp; */
static const char html_ldif[] =
        "dn: cn=html-hostile \\3C/script\\3E," PEOPLE "\nchangetype: add\nobjectClass: inetOrgPerson\n"
        "cn: html-hostile </script>\nsn: Hostile\n"
        "uid:: eDwvc2NyaXB0PjxzY3JpcHQ+ZG9jdW1lbnQudGl0bGU9InB3bmVkIjwvc2NyaXB0PiIB4oCuJmFtcDs=\n"
        "employeeType: Inactive\n"
        "description: <img src=x onerror=\"document.title='pwned'\"> & </script><!--\n\n"
        "dn: cn=h-owned," TEAMS "\nchangetype: add\nobjectClass: groupOfNames\ncn: h-owned\nowner: uid=bob," PEOPLE
        "\nmember: uid=bob," PEOPLE "\nmember: uid=alice," PEOPLE "\n";

ReportHook(PRE_ALL)(struct criterion_test_set *t)
{
        (void)t;
        ob_test_slapd_share_with(0, html_ldif);
}

ReportHook(POST_ALL)(struct criterion_global_stats *s)
{
        (void)s;
        ob_test_slapd_unshare();
}

static void setup(void)
{
        ob_test_case_begin(&srv, &man, "html", dir, sizeof(dir));
        cr_assert_eq(access(CHROMIUM, X_OK), 0, CHROMIUM " is missing: scripts/install-deps.sh installs it");
        /* ivan's license fails: a reconcile then has a failed account. */
        cr_assert_eq(ob_test_recorder_start(&rec, "[{\"match\": \"/licenses/ivan$\", \"status\": 500}]", false), 0);
        snprintf(cfgpath, sizeof(cfgpath), "%s/offboard.yaml", dir);
        FILE *f = fopen(cfgpath, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: %s\n"
                "  starttls: true\n"
                "  ca_file: %s\n"
                "  bind_dn: %s\n"
                "  bind_password_file: %s\n"
                "  base: %s\n"
                "  filter: (objectClass=inetOrgPerson)\n"
                "  teams:\n"
                "    base: " TEAMS "\n"
                "writeback: {object_class: offboardAccount}\n"
                "state:\n"
                "  path: state.db\n"
                "transfer: {fallback: '%s'}\n"
                "safety: {max_accounts: 0, max_percent: 0}\n"
                "mappings: [openldap]\n"
                "guards:\n"
                "  team-owner: {owns_team_with_members: true}\n"
                "connectors:\n"
                "  apps: {type: http, base_url: '%s/api', timeout: 5s, retry: {attempts: 1}}\n"
                "actions:\n"
                "  revoke-sessions:\n"
                "    connector: apps\n"
                "    security: true\n"
                "    method: POST\n"
                "    url: /users/{{ account.uid }}/sessions/revoke\n"
                "  free-license:\n"
                "    connector: apps\n"
                "    method: DELETE\n"
                "    url: /licenses/{{ account.uid }}\n"
                "    after: [revoke-sessions]\n"
                "  transfer-records:\n"
                "    connector: apps\n"
                "    url: /users/{{ account.uid }}/transfer\n"
                "    after: [revoke-sessions]\n"
                "    json: {to: \"{{ transfer_to.uid }}\", modules: \"{{ transfer.modules }}\"}\n"
                "    modules:\n"
                "      opportunities: all\n"
                "      tasks: none\n"
                "      cases: {is: {status: [open, new]}}\n"
                "transitions:\n"
                "  deactivate:\n"
                "    to: [inactive, ended, deleted]\n"
                "    actions: [revoke-sessions, free-license, transfer-records]\n"
                "  lock:\n"
                "    to: [locked]\n"
                "    actions: [revoke-sessions]\n",
                srv.ldap_uri, srv.ca_file, srv.bind_dn, srv.bind_pw_file, srv.base, man->fallback, rec.base_url);
        fclose(f);
}

static void teardown(void)
{
        ob_test_recorder_stop(&rec);
        ob_test_case_end(man, dir);
}

TestSuite(html, .init = setup, .fini = teardown, .timeout = 240);

/* offboard VERB --format FORMAT: its stdout. */
static char *offboard(const char *verb, const char *format)
{
        const char *argv[] = {OB_OFFBOARD_BIN, verb, "--config", cfgpath, "--format", format, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        /* 1: something needs a human (the failure, the held actions). */
        cr_assert(rc == 0 || rc == 1, "offboard %s --format %s: rc %d\nstderr: %s", verb, format, rc, err);
        cr_assert_not_null(out);
        free(err);
        return out;
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s", path);
        fputs(text, f);
        cr_assert_eq(fclose(f), 0, "%s", path);
}

/* The JSON document inside the page, parsed; *ret_at and *ret_len: where
 * its text is in html. It must hold no '<' (nothing can end its element). */
static json_t *embedded(const char *html, size_t *ret_at, size_t *ret_len)
{
        cr_assert_eq(ob_test_count(html, DATA_OPEN), 1, "one data element");
        const char *start = strstr(html, DATA_OPEN) + strlen(DATA_OPEN);
        const char *end = strstr(start, "</script>");
        cr_assert_not_null(end);
        cr_assert_null(memchr(start, '<', (size_t)(end - start)), "a '<' in the embedded JSON");
        json_error_t e;
        json_t *doc = json_loadb(start, (size_t)(end - start), 0, &e);
        cr_assert_not_null(doc, "the embedded JSON: %s at %d", e.text, e.position);
        *ret_at = (size_t)(start - html);
        *ret_len = (size_t)(end - start);
        return doc;
}

/* The page but its data names no resource: nothing to fetch, no link. */
static void page_is_self_contained(const char *html, size_t at, size_t len)
{
        static const char *const refs[] = {"http:", "https:",  "//",   "src=",    "href=",  "url(", "@import",
                                           "<link", "<iframe", "<img", "<object", "<embed", "<base"};
        char *rest = strdup(html);
        cr_assert_not_null(rest);
        memmove(rest + at, rest + at + len, strlen(rest + at + len) + 1);
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
                cr_assert_null(strstr(rest, refs[i]), "the page (but its data) has '%s'", refs[i]);
        cr_assert(strstr(rest, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"), "no CSP");
        cr_assert_null(strstr(rest, "unsafe-"), "the CSP allows unsafe-*");
        free(rest);
}

struct browser {
        char *dom;     /* what --dump-dom printed */
        char *console; /* chromium's CONSOLE lines: every message the page logged or caused */
        double seconds;
};

/* Loads file://path#fragment in headless chromium, resolving no host name:
 * 60 s at most (timeout kills chromium's whole process group). */
static void browse(const char *path, const char *fragment, struct browser *b)
{
        char url[600], udd[400];
        snprintf(url, sizeof(url), "file://%s%s", path, fragment);
        snprintf(udd, sizeof(udd), "--user-data-dir=%s/chromium", dir);
        const char *argv[] = {"/usr/bin/timeout",
                              "-k",
                              "5",
                              "60",
                              CHROMIUM,
                              "--headless=new",
                              "--no-sandbox",
                              "--disable-gpu",
                              udd,
                              "--no-first-run",
                              "--disable-background-networking",
                              "--disable-component-update",
                              "--disable-extensions",
                              "--host-resolver-rules=MAP * ~NOTFOUND",
                              "--enable-logging=stderr",
                              "--v=0",
                              "--virtual-time-budget=5000",
                              "--dump-dom",
                              url,
                              NULL};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char *err = NULL;
        int rc = ob_test_run(argv, 75, &b->dom, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        b->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        cr_assert_eq(rc, 0, "chromium: rc %d (124: timed out)\n%s", rc, err);
        cr_assert(b->dom && strstr(b->dom, "</html>"), "chromium printed no DOM\n%s", err);
        /* Only the lines with CONSOLE: the rest is chromium's own noise
         * (no D-Bus in a container, no GPU). */
        size_t n = 0;
        b->console = calloc(1, strlen(err) + 1);
        cr_assert_not_null(b->console);
        for (char *line = err; line && *line;) {
                char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
                if (memmem(line, len, ":CONSOLE", 8)) {
                        memcpy(b->console + n, line, len);
                        n += len;
                }
                line = nl ? nl + 1 : NULL;
        }
        fprintf(stderr, "chromium on %s%s: %.1f s\n", path, fragment, b->seconds);
        free(err);
}

static void browser_free(struct browser *b)
{
        free(b->dom);
        free(b->console);
}

/* The text of the DOM's <pre id="selftest">. */
static char *selftest_text(const char *dom)
{
        const char *p = strstr(dom, "<pre id=\"selftest\">");
        cr_assert_not_null(p, "no visible selftest element: the script did not run to its end\n%.3000s", dom);
        p += strlen("<pre id=\"selftest\">");
        const char *end = strstr(p, "</pre>");
        cr_assert_not_null(end);
        return strndup(p, (size_t)(end - p));
}

/* ---- what the page should show, from the JSON report ----------------- */

static bool has_text(json_t *o, const char *k)
{
        return json_is_string(json_object_get(o, k)) && json_string_length(json_object_get(o, k)) > 0;
}

/* The page's result of an account (its script's result()), worst owed
 * action first. */
static const char *result_of(json_t *doc, json_t *a)
{
        bool plan = strcmp(json_string_value(json_object_get(doc, "kind")), "plan") == 0;
        if (json_is_true(json_object_get(json_object_get(doc, "summary"), "adopt")))
                return "adopted";
        static const char *const names[] = {"", "done", NULL, "held", "interrupted", "failed"};
        int worst = 0;
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(a, "actions"), i, x)
        {
                if (!json_object_get(x, "request"))
                        continue;
                const char *st = json_string_value(json_object_get(x, "state"));
                int r = 1;
                if (strcmp(st, "failed") == 0 || strcmp(st, "blocked") == 0)
                        r = 5;
                else if (strcmp(st, "interrupted") == 0)
                        r = 4;
                else if (strcmp(st, "held") == 0 || (strcmp(st, "owed") == 0 && has_text(x, "hold_reason")))
                        r = 3;
                else if (strcmp(st, "owed") == 0)
                        r = 2;
                if (r > worst)
                        worst = r;
        }
        json_t *wr = json_object_get(a, "writeback_result");
        if (wr && strcmp(json_string_value(wr), "failed") == 0)
                worst = 5;
        if (worst == 2)
                return plan ? "would run" : "not run";
        if (worst)
                return names[worst];
        return json_is_true(json_object_get(a, "writeback")) ? "write-back only" : "nothing owed";
}

static const char *key_of(json_t *doc, json_t *a, const char *dim)
{
        if (strcmp(dim, "result") == 0)
                return result_of(doc, a);
        json_t *v = json_object_get(a, dim);
        return json_is_string(v) ? json_string_value(v) : "(none)";
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct values of dim, sorted (as the page sorts them: ASCII). */
static size_t values_of(json_t *doc, const char *dim, const char **v, size_t max)
{
        size_t n = 0, i;
        json_t *a;
        json_array_foreach(json_object_get(doc, "accounts"), i, a)
        {
                const char *k = key_of(doc, a, dim);
                size_t j = 0;
                while (j < n && strcmp(v[j], k) != 0)
                        j++;
                if (j == n) {
                        cr_assert_lt(n, max);
                        v[n++] = k;
                }
        }
        qsort(v, n, sizeof(*v), cmp_str);
        return n;
}

/* Accounts whose dim1 is v1 and (dim2 NULL or) dim2 is v2. */
static size_t count_of(json_t *doc, const char *dim1, const char *v1, const char *dim2, const char *v2)
{
        size_t n = 0, i;
        json_t *a;
        json_array_foreach(json_object_get(doc, "accounts"), i, a)
        {
                if (strcmp(key_of(doc, a, dim1), v1) == 0 && (!dim2 || strcmp(key_of(doc, a, dim2), v2) == 0))
                        n++;
        }
        return n;
}

/* The selftest's lines as the page must write them. */
static char *expected_selftest(json_t *doc)
{
        static const char *const dims[] = {"status", "transition", "result"};
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        cr_assert_not_null(f);
        const char *v[3][64];
        size_t nv[3];
        for (size_t d = 0; d < 3; d++) {
                nv[d] = values_of(doc, dims[d], v[d], 64);
                for (size_t i = 0; i < nv[d]; i++)
                        fprintf(f, "%s=%s:%zu\n", dims[d], v[d][i], count_of(doc, dims[d], v[d][i], NULL, NULL));
        }
        for (size_t i = 0; i < nv[0]; i++)
                for (size_t j = 0; j < nv[1]; j++)
                        fprintf(f, "status=%s,transition=%s:%zu\n", v[0][i], v[1][j],
                                count_of(doc, "status", v[0][i], "transition", v[1][j]));
        size_t all = json_array_size(json_object_get(doc, "accounts"));
        fprintf(f, "all:%zu\n", all);
        fprintf(f, "paged:%zu,%zu", all < 2 ? all : 2, all < 4 ? all : 4);
        fclose(f);
        return out;
}

/* ---- the tests -------------------------------------------------------- */

/* verb --format html; the page in chromium: no console message, the
 * hostile account as text, the filters' counts those of the page's JSON.
 * Returns that JSON, parsed. */
static json_t *check_page(const char *verb)
{
        char path[400];
        snprintf(path, sizeof(path), "%s/%s.html", dir, verb);
        char *html = offboard(verb, "html");
        size_t at, len;
        json_t *page = embedded(html, &at, &len);
        page_is_self_contained(html, at, len);
        cr_assert(strncmp(html, "<!DOCTYPE html>\n", 16) == 0, "%.200s", html);
        write_file(path, html);
        /* To look at the pages: OB_TEST_HTML_KEEP=/some/dir. */
        const char *keep = getenv("OB_TEST_HTML_KEEP");
        if (keep && *keep) {
                char kept[400];
                snprintf(kept, sizeof(kept), "%s/%s.html", keep, verb);
                write_file(kept, html);
        }

        struct browser b;
        browse(path, "#selftest", &b);
        cr_assert_str_empty(b.console, "the page logged (an error, a CSP violation):\n%s", b.console);

        /* Drawn as text: the hostile values are in the DOM escaped, no
         * element came from them, the title is the page's. */
        cr_assert(strstr(b.dom, "x&lt;/script&gt;&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;\""
                                "\\u0001\\u202e&amp;amp;"),
                  "the hostile uid is not shown as text\n%.6000s", b.dom);
        cr_assert(strstr(b.dom, "&lt;img src=x onerror=\"document.title='pwned'\"&gt; &amp; &lt;/script&gt;&lt;!--"),
                  "the hostile reason is not shown as text");
        cr_assert_eq(ob_test_count(b.dom, "<script"), 2, "the page's two scripts and no other");
        cr_assert_null(strstr(b.dom, "<img"));
        cr_assert(strstr(b.dom, "<title>offboard "), "the title is not the page's");
        /* A transfer's modules (seed 000) are drawn with the action. */
        cr_assert(strstr(b.dom, "module opportunities: all\nmodule tasks: none\nmodule cases: where status is open "
                                "or new"),
                  "the transfer's modules are not drawn\n%.6000s", b.dom);

        char *got = selftest_text(b.dom);
        char *want = expected_selftest(page);
        cr_assert_str_eq(got, want, "the filters show other counts than the JSON report");
        fprintf(stderr, "%s selftest:\n%s\n", verb, got);
        free(got);
        free(want);
        browser_free(&b);
        free(html);
        return page;
}

Test(html, a_plan_page_carries_the_json_report_and_its_filters_count_what_it_says)
{
        json_t *page = check_page("plan");
        char *json = offboard("plan", "json");
        json_error_t e;
        json_t *doc = json_loads(json, 0, &e);
        cr_assert_not_null(doc, "%s", e.text);
        cr_assert(json_equal(page, doc), "the page's data is not what --format json prints");
        /* Filters worth the name: more than one value each. */
        const char *v[64];
        cr_assert_geq(values_of(page, "status", v, 64), 3);
        cr_assert_geq(values_of(page, "transition", v, 64), 2);
        cr_assert_geq(values_of(page, "result", v, 64), 2);
        json_decref(doc);
        json_decref(page);
        free(json);
}

/* Executed: results done, held (bob's license, the guard) and failed
 * (ivan's license answers 500); the page's JSON is a valid report. */
Test(html, a_reconcile_page_shows_what_was_done_and_what_failed)
{
        json_t *page = check_page("reconcile");
        cr_assert_str_eq(json_string_value(json_object_get(page, "kind")), "reconcile");
        cr_assert_geq(count_of(page, "result", "failed", NULL, NULL), 1);
        cr_assert_geq(count_of(page, "result", "done", NULL, NULL), 1);
        cr_assert_geq(count_of(page, "result", "held", NULL, NULL), 1);
        char path[400];
        snprintf(path, sizeof(path), "%s/reconcile.json", dir);
        char *text = json_dumps(page, 0);
        cr_assert_not_null(text);
        write_file(path, text);
        const char *argv[] = {"/usr/bin/python3",
                              OB_SOURCE_DIR "/tests/harness/validate_json.py",
                              OB_SOURCE_DIR "/schemas",
                              "report.schema.json",
                              path,
                              NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_assert_eq(rc, 0, "the page's JSON against report.schema.json: rc %d\n%s%s", rc, out, err);
        free(out);
        free(err);
        free(text);
        json_decref(page);
}

/* The console check can fail: data that is not JSON (the script throws),
 * and a script one character off (the CSP refuses it). */
Test(html, a_page_that_throws_or_breaks_its_csp_is_caught)
{
        char *html = offboard("plan", "html");
        size_t at, len;
        json_decref(embedded(html, &at, &len));
        char path[400];
        struct browser b;

        char *bad = malloc(strlen(html) + 2);
        cr_assert_not_null(bad);
        memcpy(bad, html, at);
        strcpy(bad + at, "{");
        strcat(bad, html + at + len);
        snprintf(path, sizeof(path), "%s/bad-data.html", dir);
        write_file(path, bad);
        browse(path, "", &b);
        cr_assert(strstr(b.console, "Uncaught SyntaxError"), "no exception logged:\n%s", b.console);
        browser_free(&b);

        strcpy(bad, html);
        char *p = strstr(bad, "'use strict';");
        cr_assert_not_null(p);
        p[strlen("'use strict'")] = ','; /* still a valid script, but not the one the CSP names */
        snprintf(path, sizeof(path), "%s/bad-script.html", dir);
        write_file(path, bad);
        browse(path, "", &b);
        cr_assert(strstr(b.console, "Content Security Policy"), "no CSP violation logged:\n%s", b.console);
        browser_free(&b);
        free(bad);
        free(html);
}

/* html is the whole report of plan and reconcile: other commands and
 * --summary refuse it in one line, before reading any configuration. */
Test(html_cli, only_plan_and_reconcile_write_html)
{
        static const char *const cases[][5] = {
                {"explain", "alice", NULL},
                {"status", NULL},
                {"validate", NULL},
                {"retry", NULL},
                {"run", NULL},
                {"plan", "--summary", NULL},
                {"reconcile", "--summary", NULL},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *argv[9] = {OB_OFFBOARD_BIN,     cases[i][0], "--config",
                                       "/nonexistent.yaml", "--format",  "html"};
                if (cases[i][1])
                        argv[6] = cases[i][1];
                char *out = NULL, *err = NULL;
                cr_assert_eq(ob_test_run(argv, 30, &out, &err), 2, "%s: %s", cases[i][0], err);
                cr_assert(strstr(err, "offboard: --format html goes with plan or reconcile, without --summary\n"),
                          "%s: %s", cases[i][0], err);
                cr_assert_eq(ob_test_count(err, "\n"), 1, "%s: %s", cases[i][0], err);
                free(out);
                free(err);
        }
        const char *argv[] = {OB_OFFBOARD_BIN, "plan", "--format", "xml", NULL};
        char *out = NULL, *err = NULL;
        cr_assert_eq(ob_test_run(argv, 30, &out, &err), 2);
        cr_assert(strstr(err, "--format must be text, json or html, not 'xml'"), "%s", err);
        free(out);
        free(err);
}
