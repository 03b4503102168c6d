/* oidc_server.h: a real OAuth 2.0 authorization server for tests
 * (tests/harness/oidc: oidc-provider under node), with client_credentials,
 * token introspection (RFC 7662) and revocation (RFC 7009) at
 * oidc-provider's default routes, and helpers that talk to it with curl.
 *
 * One server per test executable, like slapd (slapd.h) and the SCIM server
 * (scim_server.h): start it in the runner with ReportHook(PRE_ALL)
 * (ob_test_oidc_share), pick it up in each test with ob_test_oidc_attach,
 * stop it in ReportHook(POST_ALL). The first start installs the pinned npm
 * packages into the build tree (start.sh, `npm ci`). The server listens on
 * a free port of 127.0.0.1 and stops by itself when the runner is gone or
 * after ten minutes. Its tokens live as long as it does (in memory).
 *
 * Clients (server.mjs), both client_credentials and refresh_token with
 * client_secret_basic:
 * OB_TEST_OIDC_CLIENT with the secret in secret_file, and
 * OB_TEST_OIDC_RESERVED_CLIENT whose secret ends in characters that RFC 6749
 * section 2.3.1 has form-encoded before HTTP Basic (reserved_secret_file
 * holds it encoded so, reserved_raw_secret_file as it is). A client may
 * introspect and revoke only the tokens issued to it.
 */
#ifndef OB_TEST_OIDC_SERVER_H
#define OB_TEST_OIDC_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#define OB_TEST_OIDC_CLIENT "offboard-test"
#define OB_TEST_OIDC_RESERVED_CLIENT "offboard-reserved"
#define OB_TEST_OIDC_SECRET "oidc-test-secret-Hq3v9"
/* Appended to the secret for the reserved client: + / % & = :, arranged so
 * that form-decoding it as written gives another secret (a server answers
 * 401 invalid_client), not an undecodable one (400 invalid_request). */
#define OB_TEST_OIDC_RESERVED_SUFFIX "+/%26&=:"
#define OB_TEST_OIDC_RESERVED_ENCODED "%2B%2F%2526%26%3D%3A" /* the same, form-encoded */

struct ob_test_oidc {
        char dir[256];      /* work directory: port, pid, secret files, server.log */
        char base_url[128]; /* http://127.0.0.1:PORT, also the issuer */
        char host[64];      /* 127.0.0.1:PORT */
        char secret_file[300];
        char reserved_secret_file[300];     /* form-encoded */
        char reserved_raw_secret_file[300]; /* as the client's secret is */
        pid_t pid;
};

/* Whether node is on PATH (without it the tests skip, saying so). */
bool ob_test_oidc_have_node(void);

int ob_test_oidc_share(void);
int ob_test_oidc_attach(struct ob_test_oidc *s);
void ob_test_oidc_unshare(void);

/* A new access token for client (one of the two above) by client_credentials,
 * copied into ret_token. 0 or a negative errno (-EIO: the server said no). */
int ob_test_oidc_issue(const struct ob_test_oidc *s, const char *client, char ret_token[256]);
/* A user's tokens (server.mjs /_test/user_tokens): a grant of account to
 * OB_TEST_OIDC_CLIENT, its refresh token and an access token of the same
 * grant. 0 or a negative errno. */
int ob_test_oidc_user_tokens(const struct ob_test_oidc *s, const char *account, char ret_refresh[256],
                             char ret_access[256]);
/* Introspection (as client) of token: 1 active, 0 not, or a negative errno. */
int ob_test_oidc_active(const struct ob_test_oidc *s, const char *client, const char *token);
/* Revokes token (as client) itself, RFC 7009 style; returns the HTTP status
 * or a negative errno. */
int ob_test_oidc_revoke(const struct ob_test_oidc *s, const char *client, const char *token);
/* Every request the server logged (server.mjs, GET /_test/log) as JSON lines
 * (malloc'd), or NULL. */
char *ob_test_oidc_log(const struct ob_test_oidc *s);

#endif
