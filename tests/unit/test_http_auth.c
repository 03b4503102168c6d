/* HTTP Basic with auth encoding: form (RFC 6749 section 2.3.1): an OAuth
 * client's id and secret are each application/x-www-form-urlencoded before
 * base64. The encoding itself, the key as the loader reads it, and what
 * ob_http_new accepts. What reaches a real server, and that no output shows
 * the secret, is tests/integration/test_oidc.c's. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "http.h"
#include "loop.h"
#include "util.h"

static char dir[64];

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        snprintf(dir, sizeof(dir), "/tmp/ob-http-auth-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
}

TestSuite(http_auth, .init = setup, .fini = teardown);

static void assert_form(const char *value, const char *want)
{
        char *got = NULL;
        cr_assert_eq(ob_http_form_credential(value, &got), 0);
        cr_assert_str_eq(got, want, "'%s' was encoded as '%s'", value, got);
        ob_secret_free(got);
}

Test(http_auth, form_encoding_escapes_each_reserved_character_of_a_client_secret)
{
        assert_form("+/%&=:", "%2B%2F%25%26%3D%3A");
        assert_form("s3cr+t/x%26y&z=1:2", "s3cr%2Bt%2Fx%2526y%26z%3D1%3A2");
        /* The unreserved characters go as they are. */
        assert_form("AZaz09-._~", "AZaz09-._~");
        /* A space as %20 (form decoding reads it as a space, as it does '+'),
         * a quote, a backslash, and UTF-8 byte by byte. */
        assert_form("a b\"c\\d", "a%20b%22c%5Cd");
        assert_form("\xc3\xa9t\xc3\xa9", "%C3%A9t%C3%A9");
        /* A ':' in a client id cannot end it. */
        assert_form("app:1", "app%3A1");
        assert_form("", "");
}

/* offboard.yaml with one http connector whose auth is auth (a YAML flow
 * mapping); returns what ob_config_load returns, the error in err. */
static int load_auth(const char *auth, struct ob_config_error *err)
{
        char secret[128], path[128];
        snprintf(secret, sizeof(secret), "%s/secret", dir);
        FILE *f = fopen(secret, "w");
        cr_assert_not_null(f);
        fputs("s3cr+t/%&=:\n", f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/offboard.yaml", dir);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n"
                "  uri: ldaps://127.0.0.1:636\n"
                "  base: ou=people,dc=example,dc=org\n"
                "mappings: [openldap]\n"
                "connectors:\n"
                "  oauth:\n"
                "    type: http\n"
                "    base_url: https://auth.example.org\n"
                "    auth: %s\n"
                "actions:\n"
                "  revoke: {connector: oauth, method: POST, url: /revoke, form: {token: x}}\n"
                "transitions:\n"
                "  deactivate: {to: inactive, actions: [revoke]}\n",
                auth);
        fclose(f);
        struct ob_config *c = NULL;
        int r = ob_config_load(path, &c, err);
        if (r == 0) {
                const struct ob_http_connector *h = c->connectors[0].settings;
                cr_assert_str_eq(h->auth.encoding ? h->auth.encoding : "(none)", strstr(auth, "encoding: form") ? "form"
                                                                                 : strstr(auth, "encoding: none")
                                                                                         ? "none"
                                                                                         : "(none)");
        }
        ob_config_free(c);
        return r;
}

Test(http_auth, the_loader_takes_encoding_form_or_none_on_basic_auth_only)
{
        struct ob_config_error err;
        char a[512];
        snprintf(a, sizeof(a), "{type: basic, username: app, password_file: %s/secret, encoding: form}", dir);
        cr_assert_eq(load_auth(a, &err), 0, "%s", err.message);
        snprintf(a, sizeof(a), "{type: basic, username: app, password_file: %s/secret, encoding: none}", dir);
        cr_assert_eq(load_auth(a, &err), 0, "%s", err.message);
        snprintf(a, sizeof(a), "{type: basic, username: app, password_file: %s/secret}", dir);
        cr_assert_eq(load_auth(a, &err), 0, "%s", err.message);

        snprintf(a, sizeof(a), "{type: basic, username: app, password_file: %s/secret, encoding: base64}", dir);
        cr_assert_eq(load_auth(a, &err), -OB_ECONFIG);
        cr_assert(strstr(err.message, "offboard.yaml:9:"), "%s", err.message);
        cr_assert(strstr(err.message, "none") && strstr(err.message, "form"), "%s", err.message);

        snprintf(a, sizeof(a), "{type: bearer, token_file: %s/secret, encoding: form}", dir);
        cr_assert_eq(load_auth(a, &err), -OB_ECONFIG);
        cr_assert(strstr(err.message, "offboard.yaml:9:"), "%s", err.message);
        cr_assert(strstr(err.message, "bearer auth takes token_file (only)"), "%s", err.message);
}

/* ob_http_new with basic auth as username and encoding say. */
static int new_basic(const char *username, const char *encoding)
{
        char secret[128];
        snprintf(secret, sizeof(secret), "%s/secret", dir);
        FILE *f = fopen(secret, "w");
        cr_assert_not_null(f);
        fputs("s3cr+t/%&=:\n", f);
        fclose(f);
        struct ob_http_connector h = {
                .base_url = "https://auth.example.org",
                .auth = {.type = "basic",
                         .username = (char *)username,
                         .password_file = secret,
                         .encoding = (char *)encoding},
                .tls_verify = true,
        };
        struct ob_connector k = {.name = "oauth", .settings = &h, .timeout_ms = 1000, .concurrency = 1};
        struct ob_loop *loop = NULL;
        cr_assert_eq(ob_loop_new(&loop), 0);
        void *c = NULL;
        int r = ob_http_new(loop, &k, &c);
        ob_http_free(c);
        ob_loop_free(loop);
        return r;
}

Test(http_auth, a_colon_in_the_client_id_is_refused_as_written_and_taken_form_encoded)
{
        cr_assert_eq(new_basic("app:1", NULL), -EINVAL);
        cr_assert_eq(new_basic("app:1", "none"), -EINVAL);
        cr_assert_eq(new_basic("app:1", "form"), 0);
        cr_assert_eq(new_basic("app", "form"), 0);
        cr_assert_eq(new_basic("app", "plain"), -EINVAL);
}
