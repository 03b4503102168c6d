/* scim_server.c: the test SCIM server (scim_server.h). */
#define _GNU_SOURCE
#include "scim_server.h"

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

#define OB_TEST_SCIM_TOKEN "scim-test-token-Q7xv"
#define OB_TEST_SCIM_START_S 180 /* the first start runs npm ci */

/* Fills the URLs from dir's portfile. */
static int load(struct ob_test_scim *s, const char *dir)
{
        if (dir != s->dir)
                snprintf(s->dir, sizeof(s->dir), "%s", dir);
        int p, r = ob_test_node_load(dir, &p, &s->pid);
        if (r < 0)
                return r;
        snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d/scim/v2", p);
        snprintf(s->control_url, sizeof(s->control_url), "http://127.0.0.1:%d/_test", p);
        snprintf(s->token_file, sizeof(s->token_file), "%s/token", dir);
        return 0;
}

static void stop(struct ob_test_scim *s)
{
        ob_test_node_stop(&s->pid, s->dir);
}

static int start(struct ob_test_scim *s)
{
        char path[300];
        memset(s, 0, sizeof(*s));
        snprintf(s->dir, sizeof(s->dir), "/tmp/ob-test-scim-XXXXXX");
        if (!mkdtemp(s->dir))
                return -errno;
        snprintf(path, sizeof(path), "%s/token", s->dir);
        int r = ob_test_node_write_file(path, OB_TEST_SCIM_TOKEN "\n");
        if (r == 0)
                r = ob_test_node_start(s->dir, "scim", OB_BINARY_DIR "/scim-server", OB_TEST_SCIM_TOKEN,
                                       "SCIM server", OB_TEST_SCIM_START_S, &s->pid);
        return r < 0 ? r : load(s, s->dir);
}

static struct ob_test_scim shared;

int ob_test_scim_share(void)
{
        int r = start(&shared);
        if (r < 0) {
                fprintf(stderr, "ob_test_scim_share: %s\n", strerror(-r));
                stop(&shared);
                unsetenv("OB_TEST_SCIM_DIR");
                return r;
        }
        return setenv("OB_TEST_SCIM_DIR", shared.dir, 1) < 0 ? -errno : 0;
}

int ob_test_scim_attach(struct ob_test_scim *s)
{
        const char *dir = getenv("OB_TEST_SCIM_DIR");
        memset(s, 0, sizeof(*s));
        if (!dir || !*dir)
                return -ENOENT;
        return load(s, dir);
}

void ob_test_scim_unshare(void)
{
        stop(&shared);
        unsetenv("OB_TEST_SCIM_DIR");
}

int ob_test_scim_request(const struct ob_test_scim *s, const char *method, const char *path, const char *body,
                         char **ret_body)
{
        char url[1024], auth[128];
        if (strncmp(path, "http", 4) == 0)
                snprintf(url, sizeof(url), "%s", path);
        else
                snprintf(url, sizeof(url), "%s%s", s->base_url, path);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", OB_TEST_SCIM_TOKEN);
        const char *argv[20];
        size_t n = 0;
        argv[n++] = "/usr/bin/curl";
        argv[n++] = "-sS";
        argv[n++] = "--max-time";
        argv[n++] = "10";
        argv[n++] = "-X";
        argv[n++] = method;
        argv[n++] = "-H";
        argv[n++] = auth;
        argv[n++] = "-H";
        argv[n++] = "Content-Type: application/scim+json";
        if (body) {
                argv[n++] = "--data-binary";
                argv[n++] = body;
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
        if (ret_body)
                *ret_body = out;
        else
                free(out);
        return status;
}

/* POSTs body to path and copies the new resource's id. */
static int create(const struct ob_test_scim *s, const char *path, json_t *doc, char ret_id[64])
{
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (!text)
                return -ENOMEM;
        char *answer = NULL;
        int st = ob_test_scim_request(s, "POST", path, text, &answer);
        free(text);
        int r = st == 201 ? 0 : st < 0 ? st : -EIO;
        json_t *got = r == 0 ? json_loads(answer, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(got, "id"));
        if (r == 0 && (!id || strlen(id) >= 64))
                r = -EIO;
        if (r == 0)
                snprintf(ret_id, 64, "%s", id);
        else
                fprintf(stderr, "SCIM POST %s: %d %s\n", path, st, answer ? answer : "");
        json_decref(got);
        free(answer);
        return r;
}

int ob_test_scim_add_user(const struct ob_test_scim *s, const char *user_name, const char *external_id,
                          char ret_id[64])
{
        json_t *doc = json_pack("{s:[s],s:s,s:b}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:User",
                                "userName", user_name, "active", 1);
        if (doc && external_id)
                json_object_set_new(doc, "externalId", json_string(external_id));
        return doc ? create(s, "/Users", doc, ret_id) : -ENOMEM;
}

int ob_test_scim_add_group(const struct ob_test_scim *s, const char *display_name, const char *const *members,
                           char ret_id[64])
{
        json_t *m = json_array();
        for (size_t i = 0; m && members && members[i]; i++)
                json_array_append_new(m, json_pack("{s:s}", "value", members[i]));
        json_t *doc = m ? json_pack("{s:[s],s:s,s:o}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                                    "displayName", display_name, "members", m)
                        : NULL;
        return doc ? create(s, "/Groups", doc, ret_id) : -ENOMEM;
}

int ob_test_scim_user_state(const struct ob_test_scim *s, const char *id, int *ret_active, int *ret_ngroups)
{
        char path[128], *answer = NULL;
        snprintf(path, sizeof(path), "/Users/%s", id);
        int st = ob_test_scim_request(s, "GET", path, NULL, &answer);
        int r = st == 200 ? 0 : st == 404 ? -ENOENT : st < 0 ? st : -EIO;
        json_t *doc = r == 0 ? json_loads(answer, 0, NULL) : NULL;
        json_t *active = json_object_get(doc, "active");
        if (r == 0 && !json_is_boolean(active))
                r = -EIO;
        if (r == 0) {
                *ret_active = json_is_true(active);
                *ret_ngroups = (int)json_array_size(json_object_get(doc, "groups"));
        }
        json_decref(doc);
        free(answer);
        return r;
}

/* POSTs a JSON body to a test control (/_test/NAME). */
static int control(const struct ob_test_scim *s, const char *name, const char *body)
{
        char url[256];
        snprintf(url, sizeof(url), "%s/%s", s->control_url, name);
        const char *argv[] = {"/usr/bin/curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                              "-H", "Content-Type: application/json", "--data-binary", body, url, NULL};
        char *out = NULL, *err = NULL;
        int rc = ob_test_run(argv, 20, &out, &err);
        int r = rc == 0 && out && strcmp(out, "200") == 0 ? 0 : -EIO;
        free(out);
        free(err);
        return r;
}

int ob_test_scim_throttle(const struct ob_test_scim *s, int count, int retry_after_s)
{
        char body[64];
        snprintf(body, sizeof(body), "{\"count\":%d,\"retry_after\":%d}", count, retry_after_s);
        return control(s, "throttle", body);
}

int ob_test_scim_stale(const struct ob_test_scim *s, int count)
{
        char body[32];
        snprintf(body, sizeof(body), "{\"count\":%d}", count);
        return control(s, "stale", body);
}

char *ob_test_scim_log(const struct ob_test_scim *s)
{
        char url[256];
        snprintf(url, sizeof(url), "%s/log", s->control_url);
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
