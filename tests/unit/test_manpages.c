/* The manual pages against the program (issue 15): offboard(8) names every
 * verb and option the built binary's help prints, and every environment
 * variable the agent reads; offboard.yaml(5) documents exactly the keys
 * config.c accepts. config.c's tables are not read from its source: the
 * binary is asked, with a configuration that has one unknown key where the
 * table applies, and its "unknown key 'zz_bogus' ... (expected one of: ...)"
 * answer is the table. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define PAGE8 OB_SOURCE_DIR "/docs/offboard.8"
#define PAGE5 OB_SOURCE_DIR "/docs/offboard.yaml.5"
#define BOGUS "zz_bogus"

/* ---- a set of words ---------------------------------------------------------- */

struct words {
        char *v[256];
        size_t n;
};

static bool words_has(const struct words *w, const char *s)
{
        for (size_t i = 0; i < w->n; i++)
                if (strcmp(w->v[i], s) == 0)
                        return true;
        return false;
}

static void words_add(struct words *w, const char *s, size_t len)
{
        char *c = strndup(s, len);
        cr_assert_not_null(c);
        if (words_has(w, c)) {
                free(c);
                return;
        }
        cr_assert_lt(w->n, sizeof(w->v) / sizeof(w->v[0]), "too many words");
        w->v[w->n++] = c;
}

static void words_free(struct words *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        w->n = 0;
}

static char *read_page(const char *path)
{
        char *s = ob_test_read_file(path);
        cr_assert_not_null(s, "cannot read %s", path);
        return s;
}

/* ---- offboard(8) against --help ------------------------------------------------ */

static char *help(const char *verb)
{
        const char *argv[] = {OB_OFFBOARD_BIN, verb ? verb : "--help", verb ? "--help" : NULL, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 30, &out, &err);
        cr_assert_eq(rc, 0, "offboard %s --help: exit %d: %s", verb ? verb : "", rc, err);
        free(err);
        return out;
}

/* The verbs of offboard --help: under "Commands:", each line that starts
 * with two spaces and a word, up to the blank line. */
static void help_verbs(const char *text, struct words *w)
{
        const char *s = strstr(text, "\nCommands:\n");
        cr_assert_not_null(s, "no Commands: in offboard --help:\n%s", text);
        for (s = strchr(s + 1, '\n') + 1; *s && *s != '\n'; s = strchr(s, '\n') + 1) {
                if (s[0] == ' ' && s[1] == ' ' && islower((unsigned char)s[2])) {
                        size_t n = 0;
                        while (islower((unsigned char)s[2 + n]))
                                n++;
                        words_add(w, s + 2, n);
                }
                if (!strchr(s, '\n'))
                        break;
        }
        cr_assert_geq(w->n, 7, "too few verbs in offboard --help:\n%s", text);
}

/* The options text names: --long (at least two letters) and -x (after a
 * space, '/', '(' or '[', followed by neither a letter nor a digit). */
static void help_options(const char *text, struct words *longs, struct words *shorts)
{
        for (const char *s = text; (s = strchr(s, '-')); s++) {
                if (s[1] == '-' && islower((unsigned char)s[2]) && (s == text || !isalnum((unsigned char)s[-1]))) {
                        size_t n = 2;
                        while (islower((unsigned char)s[n]) || s[n] == '-')
                                n++;
                        words_add(longs, s + 2, n - 2);
                        s += n - 1;
                } else if (isalpha((unsigned char)s[1]) && !isalnum((unsigned char)s[2]) && s > text &&
                           strchr(" /([", s[-1])) {
                        words_add(shorts, s + 1, 1);
                }
        }
}

/* Whether roff text has needle followed by neither a letter, a digit, '_'
 * nor '-' (so that \-\-force is not found in \-\-forcefully). */
static bool has_word(const char *text, const char *needle)
{
        size_t n = strlen(needle);
        for (const char *s = text; (s = strstr(s, needle)); s++) {
                char c = s[n];
                if (!isalnum((unsigned char)c) && c != '_' && c != '-' && !(c == '\\' && s[n + 1] == '-'))
                        return true;
        }
        return false;
}

/* Whether the page has an entry ".TP" then ".B name" (alone or followed by
 * a space and more). */
static bool has_entry(const char *page, const char *name)
{
        char *want = NULL;
        cr_assert_geq(asprintf(&want, "\n.TP\n.B %s", name), 0);
        bool found = false;
        size_t n = strlen(want);
        for (const char *s = page; !found && (s = strstr(s, want)); s++)
                found = s[n] == '\n' || s[n] == ' ';
        free(want);
        return found;
}

/* Every verb offboard --help lists, and every option it and each verb's
 * --help print. */
static void all_help(struct words *verbs, struct words *longs, struct words *shorts)
{
        char *top = help(NULL);
        help_verbs(top, verbs);
        help_options(top, longs, shorts);
        for (size_t i = 0; i < verbs->n; i++) {
                char *v = help(verbs->v[i]);
                char want[80];
                snprintf(want, sizeof(want), "Usage: offboard %s", verbs->v[i]);
                cr_assert(strncmp(v, want, strlen(want)) == 0, "offboard %s --help is not its own:\n%s", verbs->v[i],
                          v);
                help_options(v, longs, shorts);
                free(v);
        }
        free(top);
        cr_assert(words_has(longs, "config") && words_has(shorts, "c"), "options not found in the help");
}

Test(manpages, every_verb_of_help_is_in_offboard_8)
{
        struct words verbs = {0}, longs = {0}, shorts = {0};
        all_help(&verbs, &longs, &shorts);
        char *page = read_page(PAGE8);
        for (size_t i = 0; i < verbs.n; i++)
                cr_expect(has_entry(page, verbs.v[i]), "offboard.8 has no entry (.TP, .B %s) for the verb %s",
                          verbs.v[i], verbs.v[i]);
        free(page);
        words_free(&verbs);
        words_free(&longs);
        words_free(&shorts);
}

Test(manpages, every_option_of_help_is_in_offboard_8)
{
        struct words verbs = {0}, longs = {0}, shorts = {0};
        all_help(&verbs, &longs, &shorts);
        char *page = read_page(PAGE8);
        for (size_t i = 0; i < longs.n; i++) {
                char roff[80];
                snprintf(roff, sizeof(roff), "\\-\\-%s", longs.v[i]);
                cr_expect(has_word(page, roff), "offboard.8 does not name --%s (written %s)", longs.v[i], roff);
        }
        for (size_t i = 0; i < shorts.n; i++) {
                char roff[8];
                snprintf(roff, sizeof(roff), "\\-%s", shorts.v[i]);
                cr_expect(has_word(page, roff), "offboard.8 does not name -%s (written %s)", shorts.v[i], roff);
        }
        free(page);
        words_free(&verbs);
        words_free(&longs);
        words_free(&shorts);
}

/* The long options offboard.8 names as offboard's: \-\-name anywhere but in
 * comments and, in examples (.EX), on lines that run another program. */
static void page_options(const char *page, struct words *w)
{
        bool example = false;
        for (const char *line = page; *line;) {
                size_t len = strcspn(line, "\n");
                if (strncmp(line, ".EX", 3) == 0)
                        example = true;
                else if (strncmp(line, ".EE", 3) == 0)
                        example = false;
                bool skip = strncmp(line, ".\\\"", 3) == 0 || (example && strncmp(line, "offboard ", 9) != 0);
                for (const char *s = line; !skip && (s = strstr(s, "\\-\\-")) && s < line + len; s++) {
                        char name[64] = "";
                        size_t j = 0;
                        for (const char *c = s + 4; j + 1 < sizeof(name);) {
                                if (islower((unsigned char)*c))
                                        name[j++] = *c++;
                                else if (c[0] == '\\' && c[1] == '-' && islower((unsigned char)c[2]))
                                        name[j++] = '-', c += 2;
                                else
                                        break;
                        }
                        name[j] = '\0';
                        if (j > 0)
                                words_add(w, name, j);
                }
                line += len + (line[len] == '\n');
        }
}

Test(manpages, every_option_in_offboard_8_is_one_offboard_prints_in_its_help)
{
        struct words verbs = {0}, longs = {0}, shorts = {0}, named = {0};
        all_help(&verbs, &longs, &shorts);
        char *page = read_page(PAGE8);
        page_options(page, &named);
        cr_assert_geq(named.n, 5, "too few options found in offboard.8");
        for (size_t i = 0; i < named.n; i++)
                cr_expect(words_has(&longs, named.v[i]), "offboard.8 names --%s, which no --help of offboard prints",
                          named.v[i]);
        free(page);
        words_free(&verbs);
        words_free(&longs);
        words_free(&shorts);
        words_free(&named);
}

Test(manpages, every_environment_variable_the_agent_reads_is_in_offboard_8)
{
        DIR *d = opendir(OB_SOURCE_DIR "/agent");
        cr_assert_not_null(d);
        struct words env = {0};
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name);
                if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
                        continue;
                char path[512];
                snprintf(path, sizeof(path), "%s/agent/%s", OB_SOURCE_DIR, e->d_name);
                char *src = ob_test_read_file(path);
                cr_assert_not_null(src, "cannot read %s", path);
                for (const char *s = src; (s = strstr(s, "getenv(\"")); s++) {
                        const char *name = s + strlen("getenv(\"");
                        words_add(&env, name, strcspn(name, "\""));
                }
                free(src);
        }
        closedir(d);
        cr_assert_geq(env.n, 3, "too few getenv() calls found in agent/");
        char *page = read_page(PAGE8);
        const char *sect = strstr(page, "\n.SH ENVIRONMENT\n");
        cr_assert_not_null(sect, "offboard.8 has no ENVIRONMENT section");
        for (size_t i = 0; i < env.n; i++)
                cr_expect(has_entry(sect, env.v[i]),
                          "the agent reads $%s; offboard.8's ENVIRONMENT has no entry for it", env.v[i]);
        free(page);
        words_free(&env);
}

/* ---- offboard.yaml(5) against config.c ---------------------------------------- */

#define DIRECTORY "directory: {uri: 'ldaps://h', base: 'dc=x'}\n"
#define MAPPINGS "mappings: [./m.yaml]\n"
#define HEAD DIRECTORY MAPPINGS
#define CONNECTORS                                                                                                     \
        "connectors:\n"                                                                                                \
        "  h: {type: http, base_url: 'https://x'}\n"                                                                   \
        "  s: {type: scim, base_url: 'https://x'}\n"                                                                   \
        "  l: {type: ldap}\n"                                                                                          \
        "  e: {type: exec, program: /bin/true}\n"
#define WHEN(c) HEAD "transitions:\n  t: {to: locked, actions: [], when: " c "}\n"
#define RULE "  - {name: x, status: locked, when: {attribute: a, present: true}}\n"

/* Where a table of config.c applies: a configuration (and mapping file)
 * with the key zz_bogus there, and the subsections of offboard.yaml.5
 * whose entries together are that table. */
static const struct context {
        const char *name;
        const char *pages[3];
        const char *config;
        const char *mapping; /* NULL: a valid one */
} contexts[] = {
        {"the top level", {"SECTIONS"}, HEAD BOGUS ": 1\n", NULL},
        {"directory", {"directory"}, "directory: {uri: 'ldaps://h', base: 'dc=x', " BOGUS ": 1}\n" MAPPINGS, NULL},
        {"directory.teams",
         {"directory.teams"},
         "directory: {uri: 'ldaps://h', base: 'dc=x', teams: {base: 'dc=t', " BOGUS ": 1}}\n" MAPPINGS,
         NULL},
        {"writeback", {"writeback"}, HEAD "writeback: {" BOGUS ": 1}\n", NULL},
        {"state", {"state"}, HEAD "state: {" BOGUS ": 1}\n", NULL},
        {"transfer", {"transfer"}, HEAD "transfer: {" BOGUS ": 1}\n", NULL},
        {"safety", {"safety"}, HEAD "safety: {" BOGUS ": 1}\n", NULL},
        {"safety.transitions.NAME",
         {"safety.transitions.NAME"},
         HEAD "transitions: {t: {to: locked, actions: []}}\nsafety: {transitions: {t: {" BOGUS ": 1}}}\n",
         NULL},
        {"service", {"service"}, HEAD "service: {" BOGUS ": 1}\n", NULL},
        {"policies.NAME", {"policies.NAME"}, HEAD "policies: {p: {" BOGUS ": 1}}\n", NULL},
        {"guards.NAME", {"guards.NAME"}, HEAD "guards: {g: {" BOGUS ": 1}}\n", NULL},
        {"guards.NAME.role", {"guards.NAME.role"}, HEAD "guards: {g: {role: {" BOGUS ": 1}}}\n", NULL},
        {"guards.NAME.blocks_when", {"guards.NAME.blocks_when"}, HEAD "guards: {g: {blocks_when: {" BOGUS ": 1}}}\n",
         NULL},
        {"an http connector",
         {"connectors.NAME", "http connectors"},
         HEAD "connectors: {h: {type: http, " BOGUS ": 1}}\n",
         NULL},
        {"a scim connector",
         {"connectors.NAME", "scim connectors"},
         HEAD "connectors: {s: {type: scim, " BOGUS ": 1}}\n",
         NULL},
        {"an ldap connector",
         {"connectors.NAME", "ldap connectors"},
         HEAD "connectors: {l: {type: ldap, " BOGUS ": 1}}\n",
         NULL},
        {"an exec connector",
         {"connectors.NAME", "exec connectors"},
         HEAD "connectors: {e: {type: exec, " BOGUS ": 1}}\n",
         NULL},
        {"connectors.NAME.retry",
         {"connectors.NAME.retry"},
         HEAD "connectors: {h: {type: http, retry: {" BOGUS ": 1}}}\n",
         NULL},
        {"an http connector's auth",
         {"connectors.NAME.auth"},
         HEAD "connectors: {h: {type: http, auth: {" BOGUS ": 1}}}\n",
         NULL},
        {"a scim connector's auth",
         {"connectors.NAME.auth"},
         HEAD "connectors: {s: {type: scim, auth: {" BOGUS ": 1}}}\n",
         NULL},
        {"a secret header",
         {"Secret values"},
         HEAD "connectors: {h: {type: http, headers: {X-A: {" BOGUS ": 1}}}}\n",
         NULL},
        {"a secret environment variable",
         {"Secret values"},
         HEAD "connectors: {e: {type: exec, program: /bin/true, env: {A: {" BOGUS ": 1}}}}\n",
         NULL},
        {"an http action",
         {"actions.NAME", "http actions"},
         HEAD CONNECTORS "actions: {a: {connector: h, " BOGUS ": 1}}\n",
         NULL},
        {"a scim action",
         {"actions.NAME", "scim actions"},
         HEAD CONNECTORS "actions: {a: {connector: s, " BOGUS ": 1}}\n",
         NULL},
        {"an ldap action",
         {"actions.NAME", "ldap actions"},
         HEAD CONNECTORS "actions: {a: {connector: l, " BOGUS ": 1}}\n",
         NULL},
        {"an exec action",
         {"actions.NAME", "exec actions"},
         HEAD CONNECTORS "actions: {a: {connector: e, " BOGUS ": 1}}\n",
         NULL},
        {"transitions.NAME", {"transitions.NAME"}, HEAD "transitions: {t: {" BOGUS ": 1}}\n", NULL},
        {"a condition", {"A condition"}, WHEN("{" BOGUS ": 1}"), NULL},
        {"within", {"within"}, WHEN("{attribute: a, within: {" BOGUS ": 1}}"), NULL},
        {"within.duration",
         {"within.duration"},
         WHEN("{attribute: a, within: {time: days, duration: {" BOGUS ": 1}}}"),
         NULL},
        {"at_least", {"at_least and below"}, WHEN("{attribute: a, at_least: {" BOGUS ": 1}}"), NULL},
        {"below", {"at_least and below"}, WHEN("{attribute: a, below: {" BOGUS ": 1}}"), NULL},
        {"at_or_after", {"at_or_after"}, WHEN("{attribute: a, at_or_after: {" BOGUS ": 1}}"), NULL},
        {"a mapping file", {"A mapping file"}, HEAD, BOGUS ": 1\nrules:\n" RULE},
        {"a mapping file's directory",
         {"directory (in a mapping file)"},
         HEAD,
         "directory: {" BOGUS ": 1}\nrules:\n" RULE},
        {"a mapping file's policies", {"policies.NAME"}, HEAD, "policies: {p: {" BOGUS ": 1}}\nrules:\n" RULE},
        {"a rule", {"rules"}, HEAD, "rules:\n  - {name: x, " BOGUS ": 1}\n"},
};

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "cannot write %s", path);
        fputs(text, f);
        cr_assert_eq(fclose(f), 0);
}

/* The keys config.c accepts where ctx puts zz_bogus: the names after
 * "expected" on the line of its error about zz_bogus (other errors, before
 * or after, are not read). */
static void accepted_keys(const struct context *ctx, struct words *w)
{
        char dir[] = "/tmp/ob-manpages-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char cfg[64], map[64];
        snprintf(cfg, sizeof(cfg), "%s/c.yaml", dir);
        snprintf(map, sizeof(map), "%s/m.yaml", dir);
        write_file(cfg, ctx->config);
        write_file(map, ctx->mapping ? ctx->mapping : "rules:\n" RULE);
        const char *argv[] = {OB_OFFBOARD_BIN, "validate", "--config", cfg, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 30, &out, &err);
        unlink(cfg);
        unlink(map);
        rmdir(dir);
        cr_assert_eq(rc, 2, "%s: validate exits %d, not 2:\n%s%s", ctx->name, rc, out, err);
        const char *at = strstr(err, "'" BOGUS "'");
        cr_assert_not_null(at, "%s: no error about the key " BOGUS ":\n%s", ctx->name, err);
        const char *exp = strstr(at, "expected");
        cr_assert(exp && exp < at + strcspn(at, "\n"), "%s: the error lists no expected keys:\n%s", ctx->name, err);
        size_t eol = (size_t)(exp - at) + strcspn(exp, ")\n"); /* the list ends at ')' or the line's end */
        static const char *const filler[] = {"expected", "one", "of", "or", "with", NULL};
        for (const char *s = exp; s < at + eol;) {
                if (!isalpha((unsigned char)*s) && *s != '_') {
                        s++;
                        continue;
                }
                size_t n = 0;
                while (s + n < at + eol && (isalnum((unsigned char)s[n]) || s[n] == '_'))
                        n++;
                bool skip = false;
                for (size_t i = 0; filler[i]; i++)
                        skip = skip || (strlen(filler[i]) == n && strncmp(s, filler[i], n) == 0);
                if (!skip)
                        words_add(w, s, n);
                s += n;
        }
        cr_assert_geq(w->n, 1, "%s: no keys in:\n%s", ctx->name, err);
        free(out);
        free(err);
}

/* A title of .SH or .SS, without quotes. */
static void title_of(const char *line, size_t len, char *buf, size_t size)
{
        const char *s = line + 4;
        size_t n = len - 4;
        while (n > 0 && *s == ' ')
                s++, n--;
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
                s++, n -= 2;
        snprintf(buf, size, "%.*s", (int)n, s);
}

/* The keys offboard.yaml.5 documents under the .SH or .SS titled title (all
 * titles when NULL): each ".TP" followed by ".B key" or ".BR key ...". With
 * titles, the titles that have such entries. */
static void page_keys(const char *page, const char *title, struct words *keys, struct words *titles)
{
        char cur[160] = "";
        bool after_tp = false;
        for (const char *s = page; *s;) {
                size_t len = strcspn(s, "\n");
                if (len > 4 && (strncmp(s, ".SH ", 4) == 0 || strncmp(s, ".SS ", 4) == 0))
                        title_of(s, len, cur, sizeof(cur));
                if (after_tp && (strncmp(s, ".B ", 3) == 0 || strncmp(s, ".BR ", 4) == 0)) {
                        const char *k = s + (s[2] == ' ' ? 3 : 4);
                        size_t n = 0;
                        if (*k == '"')
                                k++;
                        while (k + n < s + len && k[n] != ' ' && k[n] != '"')
                                n++;
                        if (!title || strcmp(title, cur) == 0)
                                words_add(keys, k, n);
                        if (titles)
                                words_add(titles, cur, strlen(cur));
                }
                after_tp = len == 3 && strncmp(s, ".TP", 3) == 0;
                s += len + (s[len] == '\n');
        }
}

static void documented_keys(const char *page, const struct context *ctx, struct words *w)
{
        for (size_t i = 0; i < 3 && ctx->pages[i]; i++) {
                size_t before = w->n;
                page_keys(page, ctx->pages[i], w, NULL);
                cr_expect(w->n > before, "offboard.yaml.5 has no entries under \"%s\"", ctx->pages[i]);
        }
}

static void page_list(const struct context *ctx, char *buf, size_t size)
{
        buf[0] = '\0';
        for (size_t i = 0; i < 3 && ctx->pages[i]; i++)
                snprintf(buf + strlen(buf), size - strlen(buf), "%s\"%s\"", i ? " and " : "", ctx->pages[i]);
}

/* Both ways at once: each table costs a run of offboard (under the
 * sanitizers), so they are asked once. */
Test(manpages, offboard_yaml_5_documents_exactly_the_keys_config_c_accepts)
{
        char *page = read_page(PAGE5);
        for (size_t c = 0; c < sizeof(contexts) / sizeof(contexts[0]); c++) {
                struct words accepted = {0}, documented = {0};
                accepted_keys(&contexts[c], &accepted);
                documented_keys(page, &contexts[c], &documented);
                char where[200];
                page_list(&contexts[c], where, sizeof(where));
                for (size_t i = 0; i < accepted.n; i++)
                        cr_expect(words_has(&documented, accepted.v[i]),
                                  "%s takes the key %s; offboard.yaml.5 has no entry (.TP, .B %s) for it under %s",
                                  contexts[c].name, accepted.v[i], accepted.v[i], where);
                for (size_t i = 0; i < documented.n; i++)
                        cr_expect(words_has(&accepted, documented.v[i]),
                                  "offboard.yaml.5 documents %s under %s, which %s does not take (it takes: %s ...)",
                                  documented.v[i], where, contexts[c].name, accepted.v[0]);
                words_free(&accepted);
                words_free(&documented);
        }
        free(page);
}

Test(manpages, every_table_of_offboard_yaml_5_is_checked)
{
        char *page = read_page(PAGE5);
        struct words keys = {0}, titles = {0};
        page_keys(page, NULL, &keys, &titles);
        for (size_t t = 0; t < titles.n; t++) {
                bool checked = false;
                for (size_t c = 0; c < sizeof(contexts) / sizeof(contexts[0]) && !checked; c++)
                        for (size_t i = 0; i < 3 && contexts[c].pages[i]; i++)
                                checked = checked || strcmp(contexts[c].pages[i], titles.v[t]) == 0;
                cr_expect(checked,
                          "offboard.yaml.5 has entries under \"%s\", which no context of test_manpages checks "
                          "(add one, or write them with .IP)",
                          titles.v[t]);
        }
        free(page);
        words_free(&keys);
        words_free(&titles);
}

/* ---- both pages ------------------------------------------------------------------ */

static void renders_cleanly(const char *path, const char *section)
{
        char *page = read_page(path);
        char th[64];
        snprintf(th, sizeof(th), "\n.TH %s %s ", strstr(path, "yaml") ? "OFFBOARD.YAML" : "OFFBOARD", section);
        cr_expect(strncmp(page, th + 1, strlen(th + 1)) == 0 || strstr(page, th), "%s has no line '%s'", path, th + 1);
        free(page);
        if (access("/usr/bin/groff", X_OK) != 0)
                cr_skip_test("groff is not installed");
        const char *argv[] = {"/usr/bin/groff", "-man", "-Tutf8", "-ww", "-z", path, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 60, &out, &err);
        cr_expect_eq(rc, 0, "groff exits %d on %s", rc, path);
        cr_expect_str_empty(err, "groff warns about %s:\n%s", path, err);
        free(out);
        free(err);
}

Test(manpages, offboard_8_renders_without_a_warning)
{
        renders_cleanly(PAGE8, "8");
}

Test(manpages, offboard_yaml_5_renders_without_a_warning)
{
        renders_cleanly(PAGE5, "5");
}
