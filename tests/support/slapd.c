/* slapd.c: a private slapd for integration tests, driven through the harness
 * scripts in OB_SOURCE_DIR/tests/harness (argv, never a shell). */
#define _GNU_SOURCE
#include "slapd.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR must be defined (tests/support is built by cmake/add_tests.cmake)"
#endif

#define HARNESS OB_SOURCE_DIR "/tests/harness"

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv with stdin from `input` (or /dev/null), stdout into *ret_out (if
 * ret_out), into the file out_path (if set) or to /dev/null; stderr is
 * inherited so failures show in the test log. Kills the child after
 * timeout_ms. Returns its exit status, 128+signal, or -errno. */
static int run(char *const argv[], const char *input, const char *out_path, char **ret_out, int timeout_ms, bool watch)
{
        int in[2] = {-1, -1}, out[2] = {-1, -1};
        int r;

        if (input && pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (ret_out && pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        /* slapd stops when this process (or the runner sharing it) ends. */
        char watch_pid[32];
        const char *owner = getenv("OB_TEST_SLAPD_OWNER");
        snprintf(watch_pid, sizeof(watch_pid), "%d", owner && *owner ? atoi(owner) : (int)getpid());
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                goto fail;
        }
        if (pid == 0) {
                int fd0 = input ? in[0] : open("/dev/null", O_RDONLY);
                int fd1;
                if (ret_out)
                        fd1 = out[1];
                else if (out_path)
                        fd1 = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                else
                        fd1 = open("/dev/null", O_WRONLY);
                if (fd0 < 0 || fd1 < 0 || dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0)
                        _exit(127);
                if (watch)
                        setenv("OB_SLAPD_WATCH_PID", watch_pid, 1);
                execvp(argv[0], argv);
                fprintf(stderr, "cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        if (in[0] >= 0) {
                close(in[0]);
                in[0] = -1;
        }
        if (out[1] >= 0) {
                close(out[1]);
                out[1] = -1;
        }

        char *buf = NULL;
        size_t len = 0, cap = 0, off = 0, inlen = input ? strlen(input) : 0;
        int64_t deadline = now_ms() + timeout_ms;
        bool timed_out = false;
        r = 0;
        while (in[1] >= 0 || out[0] >= 0) {
                struct pollfd p[2];
                int n = 0, iw = -1, ir = -1;
                if (in[1] >= 0) {
                        iw = n;
                        p[n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
                }
                if (out[0] >= 0) {
                        ir = n;
                        p[n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
                }
                int64_t left = deadline - now_ms();
                if (left <= 0) {
                        timed_out = true;
                        break;
                }
                int k = poll(p, n, (int)left);
                if (k < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (k <= 0)
                        continue;
                if (iw >= 0 && p[iw].revents) {
                        ssize_t w = off < inlen ? write(in[1], input + off, inlen - off) : 0;
                        if (w > 0)
                                off += (size_t)w;
                        if (w < 0 || off >= inlen) {
                                close(in[1]);
                                in[1] = -1;
                        }
                }
                if (ir >= 0 && p[ir].revents) {
                        if (cap - len < 4096) {
                                char *nb = realloc(buf, cap ? cap * 2 : 8192);
                                if (!nb) {
                                        r = -ENOMEM;
                                        break;
                                }
                                buf = nb;
                                cap = cap ? cap * 2 : 8192;
                        }
                        ssize_t got = read(out[0], buf + len, cap - len - 1);
                        if (got > 0)
                                len += (size_t)got;
                        else if (got == 0 || errno != EINTR) {
                                close(out[0]);
                                out[0] = -1;
                        }
                }
        }
        if (timed_out || r < 0)
                kill(pid, SIGKILL);
        int status = 0;
        for (;;) {
                pid_t w = waitpid(pid, &status, timed_out || r < 0 ? 0 : WNOHANG);
                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        r = r < 0 ? r : -errno;
                        break;
                }
                if (w == 0) {
                        if (now_ms() > deadline) {
                                timed_out = true;
                                kill(pid, SIGKILL);
                                continue;
                        }
                        usleep(5000);
                }
        }
        if (in[1] >= 0)
                close(in[1]);
        if (out[0] >= 0)
                close(out[0]);
        if (timed_out) {
                fprintf(stderr, "%s: killed after %d ms\n", argv[0], timeout_ms);
                free(buf);
                return -ETIMEDOUT;
        }
        if (r < 0) {
                free(buf);
                return r;
        }
        if (ret_out) {
                if (!buf && !(buf = malloc(1)))
                        return -ENOMEM;
                buf[len] = '\0';
                *ret_out = buf;
        }
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
fail:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (out[i] >= 0)
                        close(out[i]);
        }
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void rm_rf(const char *dir)
{
        if (dir && *dir && strncmp(dir, "/tmp/", 5) == 0)
                nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int copy(char *dst, size_t size, const char *src)
{
        size_t n = strlen(src);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}

/* Fills s from DIR/env (KEY=value lines written by slapd.sh start). */
static int load_env(struct ob_test_slapd *s, const char *dir)
{
        struct {
                const char *key;
                char *dst;
                size_t size;
        } map[] = {
                {"OB_LDAP_URI", s->ldap_uri, sizeof(s->ldap_uri)},
                {"OB_LDAPS_URI", s->ldaps_uri, sizeof(s->ldaps_uri)},
                {"OB_LDAPI_URI", s->ldapi_uri, sizeof(s->ldapi_uri)},
                {"OB_CA_FILE", s->ca_file, sizeof(s->ca_file)},
                {"OB_BASE", s->base, sizeof(s->base)},
                {"OB_BIND_DN", s->bind_dn, sizeof(s->bind_dn)},
                {"OB_BIND_PW_FILE", s->bind_pw_file, sizeof(s->bind_pw_file)},
                {"OB_LIMITED_DN", s->limited_dn, sizeof(s->limited_dn)},
                {"OB_LIMITED_PW_FILE", s->limited_pw_file, sizeof(s->limited_pw_file)},
                {"OB_ADMIN_DN", s->admin_dn, sizeof(s->admin_dn)},
                {"OB_ADMIN_PW_FILE", s->admin_pw_file, sizeof(s->admin_pw_file)},
        };
        char path[512];
        int r = 0;
        snprintf(path, sizeof(path), "%s/env", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        char line[1024];
        unsigned found = 0;
        s->pid = 0;
        while (r == 0 && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                const char *val = eq + 1;
                if (strcmp(line, "OB_SLAPD_PID") == 0) {
                        s->pid = atoi(val);
                        continue;
                }
                for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                        if (strcmp(line, map[i].key) == 0) {
                                r = copy(map[i].dst, map[i].size, val);
                                found |= 1u << i;
                        }
        }
        fclose(f);
        if (r < 0)
                return r;
        if (found != (1u << (sizeof(map) / sizeof(map[0]))) - 1 || s->pid <= 0)
                return -EBADMSG;
        if (copy(s->dir, sizeof(s->dir), dir) < 0)
                return -ENAMETOOLONG;
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        return copy(s->manifest, sizeof(s->manifest), path);
}

static int harness(const char *verb, const char *dir, const char *arg, int timeout_ms)
{
        char *argv[] = {(char *)HARNESS "/slapd.sh", (char *)verb, (char *)dir, (char *)arg, NULL};
        int r = run(argv, NULL, NULL, NULL, timeout_ms, strcmp(verb, "start") == 0);
        if (r > 0) {
                fprintf(stderr, "slapd.sh %s %s: exit status %d\n", verb, dir, r);
                return -ECHILD;
        }
        return r;
}

int ob_test_slapd_start(struct ob_test_slapd *s, int nusers)
{
        char dir[] = "/tmp/ob-slapd-XXXXXX";
        char users[32], fixture[300];
        int r;

        memset(s, 0, sizeof(*s));
        if (nusers < 0)
                return -EINVAL;
        if (!mkdtemp(dir))
                return -errno;
        snprintf(users, sizeof(users), "%d", nusers);
        snprintf(fixture, sizeof(fixture), "%s/fixture.ldif", dir);
        /* About 25,000 users a second here; allow for slower machines. */
        r = harness("fixture", dir, users, 60000 + nusers / 5);
        if (r < 0)
                goto fail;
        r = harness("start", dir, fixture, 60000 + nusers / 5);
        if (r < 0)
                goto fail;
        r = load_env(s, dir);
        if (r < 0) {
                harness("stop", dir, NULL, 20000);
                goto fail;
        }
        return 0;
fail:
        rm_rf(dir);
        memset(s, 0, sizeof(*s));
        return r;
}

void ob_test_slapd_stop(struct ob_test_slapd *s)
{
        if (!s || !s->dir[0])
                return;
        harness("stop", s->dir, NULL, 20000);
        rm_rf(s->dir);
        memset(s, 0, sizeof(*s));
}

int ob_test_slapd_restart(struct ob_test_slapd *s)
{
        char dir[sizeof(s->dir)];
        int r;
        memcpy(dir, s->dir, sizeof(dir));
        r = harness("stop", dir, NULL, 20000);
        if (r < 0)
                return r;
        r = harness("start", dir, NULL, 60000);
        if (r < 0)
                return r;
        return load_env(s, dir);
}

int ob_test_slapd_halt(struct ob_test_slapd *s)
{
        int r = harness("stop", s->dir, NULL, 20000);
        if (r == 0)
                s->pid = 0;
        return r;
}

int ob_test_slapd_resume(struct ob_test_slapd *s)
{
        char dir[sizeof(s->dir)];
        memcpy(dir, s->dir, sizeof(dir));
        int r = harness("start", dir, NULL, 60000);
        if (r < 0)
                return r;
        return load_env(s, dir);
}

static struct ob_test_slapd shared;

int ob_test_slapd_share(int nusers)
{
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("OB_TEST_SLAPD_OWNER", pid, 1);
        int r = ob_test_slapd_start(&shared, nusers);
        if (r < 0) {
                fprintf(stderr, "ob_test_slapd_share: cannot start slapd: %s\n", strerror(-r));
                unsetenv("OB_TEST_SLAPD_DIR");
                return r;
        }
        if (setenv("OB_TEST_SLAPD_DIR", shared.dir, 1) < 0)
                return -errno;
        return 0;
}

int ob_test_slapd_attach(struct ob_test_slapd *s)
{
        const char *dir = getenv("OB_TEST_SLAPD_DIR");
        memset(s, 0, sizeof(*s));
        if (!dir || !*dir)
                return -ENOENT;
        return load_env(s, dir);
}

void ob_test_slapd_unshare(void)
{
        ob_test_slapd_stop(&shared);
        unsetenv("OB_TEST_SLAPD_DIR");
        unsetenv("OB_TEST_SLAPD_OWNER");
}

int ob_test_ldapmodify(const struct ob_test_slapd *s, const char *ldif)
{
        char *argv[] = {"ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", (char *)s->ldapi_uri, "-o", "nettimeout=10", NULL};
        return run(argv, ldif, NULL, NULL, 20000, false);
}

char *ob_test_ldapsearch(const struct ob_test_slapd *s, const char *base, const char *filter, const char *attrs)
{
        return ob_test_ldapsearch_scope(s, base, "sub", filter, attrs);
}

char *ob_test_ldapsearch_scope(const struct ob_test_slapd *s, const char *base, const char *scope, const char *filter,
                               const char *attrs)
{
        char *argv[64] = {"ldapsearch",
                          "-LLL",
                          "-Q",
                          "-Y",
                          "EXTERNAL",
                          "-H",
                          (char *)s->ldapi_uri,
                          "-o",
                          "ldif-wrap=no",
                          "-o",
                          "nettimeout=10",
                          "-l",
                          "10",
                          "-s",
                          (char *)scope,
                          "-b",
                          (char *)base,
                          (char *)(filter ? filter : "(objectClass=*)")};
        size_t n = 18;
        char *copy_attrs = attrs ? strdup(attrs) : NULL;
        if (attrs && !copy_attrs)
                return NULL;
        char *save = NULL;
        for (char *t = copy_attrs ? strtok_r(copy_attrs, " ,", &save) : NULL; t && n < 63;
             t = strtok_r(NULL, " ,", &save))
                argv[n++] = t;
        argv[n] = NULL;
        char *out = NULL;
        int r = run(argv, NULL, NULL, &out, 20000, false);
        free(copy_attrs);
        if (r != 0) {
                if (r > 0)
                        fprintf(stderr, "ldapsearch -b %s %s: exit status %d\n", base, filter ? filter : "", r);
                free(out);
                return NULL;
        }
        return out;
}

/* ---- manifest ------------------------------------------------------------ */

static bool is_null(const yaml_node_t *n)
{
        return !n || (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                      strcmp((const char *)n->data.scalar.value, "null") == 0);
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

static int dup_scalar(yaml_node_t *n, char **ret)
{
        *ret = NULL;
        if (is_null(n))
                return 0;
        if (n->type != YAML_SCALAR_NODE)
                return -EBADMSG;
        *ret = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
        return *ret ? 0 : -ENOMEM;
}

static void person_free(struct ob_test_person *p)
{
        free(p->uid);
        free(p->dn);
        free(p->status);
        free(p->rule);
        free(p->reason);
        free(p->manager);
        free(p->team);
        free(p->team_owner);
        free(p->guid);
}

void ob_test_manifest_free(struct ob_test_manifest *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->npeople; i++)
                person_free(&m->people[i]);
        free(m->people);
        free(m->fallback);
        free(m);
}

int ob_test_manifest_load(const char *path, struct ob_test_manifest **ret)
{
        FILE *f = fopen(path, "rbe");
        if (!f)
                return -errno;
        yaml_parser_t parser;
        yaml_document_t doc;
        struct ob_test_manifest *m = NULL;
        int r = -EBADMSG;
        if (!yaml_parser_initialize(&parser)) {
                fclose(f);
                return -ENOMEM;
        }
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &doc)) {
                fprintf(stderr, "%s:%zu: %s\n", path, parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "parse error");
                yaml_parser_delete(&parser);
                fclose(f);
                return -EBADMSG;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        yaml_node_t *today = map_get(&doc, root, "today_days");
        yaml_node_t *people = map_get(&doc, root, "people");
        if (!today || today->type != YAML_SCALAR_NODE || !people || people->type != YAML_SEQUENCE_NODE)
                goto out;
        m = calloc(1, sizeof(*m));
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        m->today_days = strtoll((const char *)today->data.scalar.value, NULL, 10);
        r = dup_scalar(map_get(&doc, root, "fallback"), &m->fallback);
        if (r < 0)
                goto out;
        size_t n = (size_t)(people->data.sequence.items.top - people->data.sequence.items.start);
        m->people = calloc(n ? n : 1, sizeof(*m->people));
        if (!m->people) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *pn = yaml_document_get_node(&doc, people->data.sequence.items.start[i]);
                struct ob_test_person *p = &m->people[m->npeople++];
                struct {
                        const char *key;
                        char **dst;
                } fields[] = {
                        {"uid", &p->uid},       {"dn", &p->dn},
                        {"status", &p->status}, {"rule", &p->rule},
                        {"reason", &p->reason}, {"manager", &p->manager},
                        {"team", &p->team},     {"team_owner", &p->team_owner},
                        {"guid", &p->guid},
                };
                for (size_t j = 0; j < sizeof(fields) / sizeof(fields[0]); j++) {
                        r = dup_scalar(map_get(&doc, pn, fields[j].key), fields[j].dst);
                        if (r < 0)
                                goto out;
                }
                if (!p->uid || !p->dn || !p->status || !p->rule) {
                        r = -EBADMSG;
                        goto out;
                }
        }
        *ret = m;
        m = NULL;
        r = 0;
out:
        ob_test_manifest_free(m);
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        fclose(f);
        return r;
}

const struct ob_test_person *ob_test_manifest_find(const struct ob_test_manifest *m, const char *uid)
{
        for (size_t i = 0; m && i < m->npeople; i++)
                if (strcmp(m->people[i].uid, uid) == 0)
                        return &m->people[i];
        return NULL;
}

size_t ob_test_manifest_count(const struct ob_test_manifest *m, const char *name, int by_rule)
{
        size_t n = 0;
        for (size_t i = 0; m && i < m->npeople; i++)
                if (strcmp(by_rule ? m->people[i].rule : m->people[i].status, name) == 0)
                        n++;
        return n;
}

/* ---- a test case's share of the server ------------------------------------------------------ */

void ob_test_slapd_share_with(int nusers, const char *ldif)
{
        struct ob_test_slapd s;
        if (ob_test_slapd_share(nusers) < 0 || ob_test_slapd_attach(&s) < 0) {
                fprintf(stderr, "could not start slapd\n");
                return;
        }
        if (ldif && ob_test_ldapmodify(&s, ldif) != 0)
                fprintf(stderr, "could not add the test's entries\n");
}

void ob_test_case_begin(struct ob_test_slapd *s, struct ob_test_manifest **man, const char *name, char *dir,
                        size_t len)
{
        cr_assert_eq(ob_test_slapd_attach(s), 0, "slapd is not running");
        cr_assert_eq(ob_test_manifest_load(s->manifest, man), 0);
        snprintf(dir, len, "/tmp/ob-%s-XXXXXX", name);
        cr_assert_not_null(mkdtemp(dir));
        char now[64];
        snprintf(now, sizeof(now), "%lld", (*man)->today_days * 86400 + 43200);
        setenv("OFFBOARD_NOW", now, 1);
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
}

void ob_test_case_end(struct ob_test_manifest *man, const char *dir)
{
        ob_test_manifest_free(man);
        rm_rf(dir);
}
