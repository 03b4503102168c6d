/* oidc_server.c: the test OAuth 2.0 server (oidc_server.h). Starting and
 * stopping node is scim_server.c's, copied: the two servers differ in what
 * start.sh is given and what the helpers ask. */
#define _GNU_SOURCE
#include "oidc_server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node_server.h"
#include "run.h"

#define OB_TEST_OIDC_START_S 180 /* the first start runs npm ci */

bool ob_test_oidc_have_node(void)
{
        const char *argv[] = {"/bin/sh", "-c", "command -v node", NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 10, &out, &err);
        free(out);
        free(err);
        return rc == 0;
}

/* Fills the URLs and file names from dir's portfile. */
static int load(struct ob_test_oidc *s, const char *dir)
{
        if (dir != s->dir)
                snprintf(s->dir, sizeof(s->dir), "%s", dir);
        int p, r = ob_test_node_load(dir, &p, &s->pid);
        if (r < 0)
                return r;
        snprintf(s->host, sizeof(s->host), "127.0.0.1:%d", p);
        snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", p);
        snprintf(s->secret_file, sizeof(s->secret_file), "%s/secret", dir);
        snprintf(s->reserved_secret_file, sizeof(s->reserved_secret_file), "%s/reserved-secret", dir);
        snprintf(s->reserved_raw_secret_file, sizeof(s->reserved_raw_secret_file), "%s/reserved-raw-secret", dir);
        return 0;
}

static void stop(struct ob_test_oidc *s)
{
        ob_test_node_stop(&s->pid, s->dir);
}

static int start(struct ob_test_oidc *s)
{
        char path[300];
        memset(s, 0, sizeof(*s));
        snprintf(s->dir, sizeof(s->dir), "/tmp/ob-test-oidc-XXXXXX");
        if (!mkdtemp(s->dir))
                return -errno;
        static const struct {
                const char *name, *text;
        } secrets[] = {
                {"secret", OB_TEST_OIDC_SECRET "\n"},
                {"reserved-secret", OB_TEST_OIDC_SECRET OB_TEST_OIDC_RESERVED_ENCODED "\n"},
                {"reserved-raw-secret", OB_TEST_OIDC_SECRET OB_TEST_OIDC_RESERVED_SUFFIX "\n"},
        };
        int r = 0;
        for (size_t i = 0; r == 0 && i < sizeof(secrets) / sizeof(secrets[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", s->dir, secrets[i].name);
                r = ob_test_node_write_file(path, secrets[i].text);
        }
        if (r == 0)
                r = ob_test_node_start(s->dir, "oidc", OB_BINARY_DIR "/oidc-server", OB_TEST_OIDC_SECRET,
                                       "OAuth server", OB_TEST_OIDC_START_S, &s->pid);
        return r < 0 ? r : load(s, s->dir);
}

static struct ob_test_oidc shared;

int ob_test_oidc_share(void)
{
        int r = start(&shared);
        if (r < 0) {
                fprintf(stderr, "ob_test_oidc_share: %s\n", strerror(-r));
                stop(&shared);
                unsetenv("OB_TEST_OIDC_DIR");
                return r;
        }
        return setenv("OB_TEST_OIDC_DIR", shared.dir, 1) < 0 ? -errno : 0;
}

int ob_test_oidc_attach(struct ob_test_oidc *s)
{
        const char *dir = getenv("OB_TEST_OIDC_DIR");
        memset(s, 0, sizeof(*s));
        if (!dir || !*dir)
                return -ENOENT;
        return load(s, dir);
}

void ob_test_oidc_unshare(void)
{
        stop(&shared);
        unsetenv("OB_TEST_OIDC_DIR");
}

/* POSTs a form (fields "name=value", NULL-terminated, each sent as curl's
 * --data-urlencode) to path as client, with HTTP Basic as curl sends it (the
 * reserved client's secret already form-encoded). Returns the status (0 when
 * none came) and *ret_body (malloc'd), or a negative errno. */
static int post(const struct ob_test_oidc *s, const char *client, const char *path, const char *const *fields,
                char **ret_body)
{
        char url[256], user[256];
        snprintf(url, sizeof(url), "%s%s", s->base_url, path);
        if (strcmp(client, OB_TEST_OIDC_RESERVED_CLIENT) == 0)
                snprintf(user, sizeof(user), "%s:%s%s", client, OB_TEST_OIDC_SECRET, OB_TEST_OIDC_RESERVED_ENCODED);
        else
                snprintf(user, sizeof(user), "%s:%s", client, OB_TEST_OIDC_SECRET);
        const char *argv[24];
        size_t n = 0;
        argv[n++] = "/usr/bin/curl";
        argv[n++] = "-sS";
        argv[n++] = "--max-time";
        argv[n++] = "10";
        argv[n++] = "-u";
        argv[n++] = user;
        for (size_t i = 0; fields[i] && n < 16; i++) {
                argv[n++] = "--data-urlencode";
                argv[n++] = fields[i];
        }
        argv[n++] = "-w";
        argv[n++] = "\n%{http_code}";
        argv[n++] = url;
        argv[n] = NULL;
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 20, &out, &err);
        free(err);
        if (rc != 0 || !out) {
                free(out);
                return -EIO;
        }
        char *nl = strrchr(out, '\n');
        int status = nl ? atoi(nl + 1) : 0;
        if (nl)
                *nl = '\0';
        *ret_body = out;
        return status;
}

int ob_test_oidc_issue(const struct ob_test_oidc *s, const char *client, char ret_token[256])
{
        char *answer = NULL;
        int st = post(s, client, "/token", (const char *const[]){"grant_type=client_credentials", NULL}, &answer);
        int r = st == 200 ? 0 : st < 0 ? st : -EIO;
        json_t *doc = r == 0 ? json_loads(answer, 0, NULL) : NULL;
        const char *token = json_string_value(json_object_get(doc, "access_token"));
        if (r == 0 && (!token || !*token || strlen(token) >= 256))
                r = -EIO;
        if (r == 0)
                snprintf(ret_token, 256, "%s", token);
        else
                fprintf(stderr, "OAuth token request: %d %s\n", st, answer ? answer : "");
        json_decref(doc);
        free(answer);
        return r;
}

int ob_test_oidc_user_tokens(const struct ob_test_oidc *s, const char *account, char ret_refresh[256],
                             char ret_access[256])
{
        char url[512];
        snprintf(url, sizeof(url), "%s/_test/user_tokens?account=%s", s->base_url, account);
        const char *argv[] = {"/usr/bin/curl", "-sS", "--max-time",     "10", "-X",
                              "POST",          "-w",  "\n%{http_code}", url,  NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 20, &out, &err);
        free(err);
        char *nl = out ? strrchr(out, '\n') : NULL;
        int r = rc == 0 && nl && atoi(nl + 1) == 200 ? 0 : -EIO;
        if (nl)
                *nl = '\0';
        json_t *doc = r == 0 ? json_loads(out, 0, NULL) : NULL;
        const char *rt = json_string_value(json_object_get(doc, "refresh_token"));
        const char *at = json_string_value(json_object_get(doc, "access_token"));
        if (r == 0 && (!rt || !at || !*rt || !*at || strlen(rt) >= 256 || strlen(at) >= 256))
                r = -EIO;
        if (r == 0) {
                snprintf(ret_refresh, 256, "%s", rt);
                snprintf(ret_access, 256, "%s", at);
        } else {
                fprintf(stderr, "OAuth user tokens: %s\n", out ? out : "");
        }
        json_decref(doc);
        free(out);
        return r;
}

int ob_test_oidc_active(const struct ob_test_oidc *s, const char *client, const char *token)
{
        char field[300], *answer = NULL;
        snprintf(field, sizeof(field), "token=%s", token);
        int st = post(s, client, "/token/introspection", (const char *const[]){field, NULL}, &answer);
        int r = st == 200 ? 0 : st < 0 ? st : -EIO;
        json_t *doc = r == 0 ? json_loads(answer, 0, NULL) : NULL;
        json_t *active = json_object_get(doc, "active");
        if (r == 0 && !json_is_boolean(active))
                r = -EIO;
        if (r == 0)
                r = json_is_true(active) ? 1 : 0;
        else
                fprintf(stderr, "OAuth introspection: %d %s\n", st, answer ? answer : "");
        json_decref(doc);
        free(answer);
        return r;
}

int ob_test_oidc_revoke(const struct ob_test_oidc *s, const char *client, const char *token)
{
        char field[300], *answer = NULL;
        snprintf(field, sizeof(field), "token=%s", token);
        int st = post(s, client, "/token/revocation", (const char *const[]){field, NULL}, &answer);
        free(answer);
        return st;
}

char *ob_test_oidc_log(const struct ob_test_oidc *s)
{
        char url[256];
        snprintf(url, sizeof(url), "%s/_test/log", s->base_url);
        const char *argv[] = {"/usr/bin/curl", "-sS", "--max-time", "10", url, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 20, &out, &err);
        free(err);
        if (rc != 0) {
                free(out);
                return NULL;
        }
        return out;
}
