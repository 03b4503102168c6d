/* connectors/: every preset loads once its ${PLACEHOLDERS} are filled in, and
 * each action renders the request its API's documentation describes. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "http.h"
#include "plan.h"
#include "state.h"

#define NOW 1795422796LL /* 2026-11-23T08:33:16Z */
#define KC_ID "0f2c5a5e-7c1d-4c4e-9a7e-1b2c3d4e5f60"

/* What an administrator fills in, as the test fills it. */
static const struct {
        const char *name, *value;
} fills[] = {
        {"KEYCLOAK_HOST", "sso.test.example"},
        {"REALM", "acme"},
        {"AUTH_HOST", "auth.test.example"},
        {"CLIENT_ID", "offboard"},
        {"GITLAB_HOST", "gitlab.test.example"},
        {"GITEA_HOST", "git.test.example"},
        {"SUBSCRIPTIONS_BASE_URL", "https://billing.test.example/api/v1"},
        {"LICENSES_BASE_URL", "https://licenses.test.example/api/v2"},
};

struct expect {
        const char *action;
        bool reactivate; /* runs on reactivation, else on deactivation */
        const char *method, *url, *body;
        bool security;
        long ok[2]; /* ok_status: statuses outside 2xx that count as done ("already gone") */
};

/* Each request as the API's documentation (cited in the preset) has it. */
static const struct {
        const char *file;
        struct expect ex[4];
} presets[] = {
        {"keycloak.yaml",
         {{"keycloak-logout",
           false,
           "POST",
           "https://sso.test.example/admin/realms/acme/users/" KC_ID "/logout",
           NULL,
           true,
           {404}},
          {"keycloak-disable",
           false,
           "PUT",
           "https://sso.test.example/admin/realms/acme/users/" KC_ID,
           "{\"enabled\":false}",
           false,
           {404}},
          {"keycloak-enable", true, "PUT", "https://sso.test.example/admin/realms/acme/users/" KC_ID,
           "{\"enabled\":true}", false}}},
        {"oauth-revoke.yaml",
         {{"oauth-revoke-token",
           false,
           "POST",
           "https://auth.test.example/revoke",
           "token=rt%2Fbob%201&token_type_hint=refresh_token",
           true,
           {0}}}},
        {"gitlab.yaml",
         {{"gitlab-block", false, "POST", "https://gitlab.test.example/api/v4/users/42/block", NULL, true, {404}},
          {"gitlab-unblock", true, "POST", "https://gitlab.test.example/api/v4/users/42/unblock", NULL, false}}},
        {"gitea.yaml",
         {{"gitea-prohibit-login",
           false,
           "PATCH",
           "https://git.test.example/api/v1/admin/users/bob",
           "{\"source_id\":0,\"login_name\":\"bob\",\"prohibit_login\":true}",
           true,
           {404}},
          {"gitea-allow-login", true, "PATCH", "https://git.test.example/api/v1/admin/users/bob",
           "{\"source_id\":0,\"login_name\":\"bob\",\"prohibit_login\":false}", false}}},
        {"subscriptions.yaml",
         {{"cancel-subscriptions",
           false,
           "POST",
           "https://billing.test.example/api/v1/users/bob/subscriptions/cancel",
           "{\"reason\":\"Left the company\",\"at_period_end\":false}",
           false,
           {404, 410}}}},
        {"licenses.yaml",
         {{"release-license",
           false,
           "DELETE",
           "https://licenses.test.example/api/v2/seats/bob",
           NULL,
           false,
           {404, 410}},
          {"assign-license",
           true,
           "POST",
           "https://licenses.test.example/api/v2/seats",
           "{\"user\":\"bob\",\"mail\":\"bob@example.org\"}",
           false,
           {409}}}},
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

static char tmpdir[] = "/tmp/ob-presets-XXXXXX";

static void setup(void)
{
        setenv("OFFBOARD_MAPPINGS_DIR", OB_SOURCE_DIR "/mappings", 1);
        /* The presets name their secrets as systemd's credentials. */
        setenv("CREDENTIALS_DIRECTORY", "/run/credentials/offboard.service", 1);
        cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/offboard.yaml", tmpdir);
        unlink(p);
        rmdir(tmpdir);
}

TestSuite(presets, .init = setup, .fini = teardown);

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "%s", path);
        char *s = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&s, &n);
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, k, m);
        fclose(f);
        fclose(m);
        return s;
}

/* The preset with every ${NAME} replaced; an unknown NAME fails the test. */
static char *fill(const char *src, const char *file)
{
        char *s = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&s, &n);
        for (const char *p = src; *p;) {
                const char *d = strstr(p, "${");
                if (!d) {
                        fputs(p, m);
                        break;
                }
                fwrite(p, 1, (size_t)(d - p), m);
                const char *e = strchr(d, '}');
                cr_assert_not_null(e, "%s: unterminated ${", file);
                const char *v = NULL;
                /* Not a placeholder: systemd's credentials, resolved by the loader. */
                if ((size_t)(e - d + 1) == strlen("${CREDENTIALS_DIRECTORY}") &&
                    !strncmp(d, "${CREDENTIALS_DIRECTORY}", (size_t)(e - d + 1)))
                        v = "${CREDENTIALS_DIRECTORY}";
                for (size_t i = 0; !v && i < sizeof(fills) / sizeof(fills[0]); i++)
                        if (strlen(fills[i].name) == (size_t)(e - d - 2) && !strncmp(d + 2, fills[i].name, e - d - 2))
                                v = fills[i].value;
                cr_assert_not_null(v, "%s: placeholder %.*s is not listed in the test", file, (int)(e - d + 1), d);
                fputs(v, m);
                p = e + 1;
        }
        fclose(m);
        return s;
}

/* base + preset + transitions naming its actions; returns the load's result. */
static int load(const char *preset_text, const struct expect *ex, struct ob_config **ret, struct ob_config_error *err)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/offboard.yaml", tmpdir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "directory:\n  uri: ldaps://127.0.0.1\n  base: ou=people,dc=example,dc=org\n"
                "mappings: [openldap]\nstate:\n  path: %s/state.db\n",
                tmpdir);
        fputs(preset_text, f);
        fputs("\ntransitions:\n  off:\n    to: [locked, inactive, ended, deleted]\n    actions: [", f);
        for (int i = 0, k = 0; i < 4 && ex[i].action; i++)
                if (!ex[i].reactivate)
                        fprintf(f, "%s%s", k++ ? ", " : "", ex[i].action);
        fputs("]\n", f);
        bool back = false;
        for (int i = 0; i < 4 && ex[i].action; i++)
                back |= ex[i].reactivate;
        if (back) {
                fputs("  back:\n    from: [locked, inactive, ended]\n    to: active\n    actions: [", f);
                for (int i = 0, k = 0; i < 4 && ex[i].action; i++)
                        if (ex[i].reactivate)
                                fprintf(f, "%s%s", k++ ? ", " : "", ex[i].action);
                fputs("]\n", f);
        }
        fclose(f);
        return ob_config_load(path, ret, err);
}

static struct ob_account *bob(const char *status_attr, const char *status_value)
{
        struct ob_account *a = ob_account_new();
        a->id = strdup("id-bob");
        a->dn = strdup("uid=bob,ou=people,dc=example,dc=org");
        const char *kv[][2] = {
                {"uid", "bob"},
                {"mail", "bob@example.org"},
                {"description", "Left the company"},
                {"keycloakUserId", KC_ID},
                {"gitlabUserId", "42"},
                {"oauthRefreshToken", "rt/bob 1"},
        };
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                ob_account_add(a, kv[i][0], kv[i][1], strlen(kv[i][1]));
        if (status_attr)
                ob_account_add(a, status_attr, status_value, strlen(status_value));
        return a;
}

static struct ob_account_plan *plan(const struct ob_config *cfg, const struct ob_account *a, enum ob_status recorded)
{
        struct ob_record rec = {.id = "id-bob", .status = recorded, .generation = 3};
        struct ob_plan_input in = {.account = a, .record = &rec, .now = NOW};
        struct ob_account_plan *p = NULL;
        cr_assert_eq(ob_plan_account(cfg, &in, &p), 0);
        return p;
}

static const struct ob_step *step(const struct ob_account_plan *p, const char *name)
{
        for (size_t i = 0; i < p->nsteps; i++)
                if (strcmp(p->steps[i].action->name, name) == 0)
                        return &p->steps[i];
        return NULL;
}

static void check_request(const char *file, const struct ob_account_plan *p, const struct expect *e)
{
        const struct ob_step *s = step(p, e->action);
        cr_assert_not_null(s, "%s: %s is not planned", file, e->action);
        cr_assert_eq(s->state, OB_STEP_OWED, "%s: %s is %s", file, e->action, ob_step_state_name(s->state));
        cr_assert_null(s->render_error, "%s: %s: %s", file, e->action, s->render_error);
        cr_assert_eq(s->action->security, e->security, "%s: %s: security", file, e->action);
        const struct ob_http_rendered *q = s->rendered;
        cr_assert_not_null(q, "%s: %s has no request", file, e->action);
        cr_assert_str_eq(q->method, e->method, "%s: %s", file, e->action);
        cr_assert_str_eq(q->url, e->url, "%s: %s", file, e->action);
        if (e->body)
                cr_assert(q->body && strcmp(q->body, e->body) == 0, "%s: %s: body %s, want %s", file, e->action,
                          q->body ? q->body : "(none)", e->body);
        else
                cr_assert_null(q->body, "%s: %s sends a body: %s", file, e->action, q->body);
        const struct ob_int_list *ok = &((const struct ob_http_action *)s->action->settings)->ok_status;
        size_t nok = e->ok[1] ? 2 : e->ok[0] ? 1 : 0;
        cr_assert_eq(ok->n, nok, "%s: %s: %zu ok_status, want %zu", file, e->action, ok->n, nok);
        for (size_t k = 0; k < nok; k++)
                cr_assert_eq(ok->v[k], e->ok[k], "%s: %s: ok_status", file, e->action);
}

static size_t preset_index(const char *path)
{
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        for (size_t i = 0; i < NPRESETS; i++)
                if (strcmp(presets[i].file, base) == 0)
                        return i;
        cr_assert_fail("%s: a preset the test does not know; add what its API documents to presets[]", base);
        return 0;
}

static void each_preset(void (*fn)(const char *path, size_t i))
{
        glob_t g;
        cr_assert_eq(glob(OB_SOURCE_DIR "/connectors/*.yaml", 0, NULL, &g), 0);
        cr_assert_geq(g.gl_pathc, NPRESETS, "a preset the test knows is missing from connectors/");
        for (size_t k = 0; k < g.gl_pathc; k++)
                fn(g.gl_pathv[k], preset_index(g.gl_pathv[k]));
        globfree(&g);
}

static void renders_documented_requests(const char *path, size_t i)
{
        const char *file = presets[i].file;
        const struct expect *ex = presets[i].ex;
        char *raw = slurp(path);
        char *text = fill(raw, file);
        struct ob_config *cfg = NULL;
        struct ob_config_error err;
        cr_assert_eq(load(text, ex, &cfg, &err), 0, "%s: %s\n%s", file, err.message, err.line);
        size_t n = 0;
        while (n < 4 && ex[n].action)
                n++;
        cr_assert_eq(cfg->nactions, n, "%s: %zu actions, the test checks %zu", file, cfg->nactions, n);

        struct ob_account *leaver = bob("employeeType", "Inactive");
        struct ob_account_plan *off = plan(cfg, leaver, OB_STATUS_ACTIVE);
        cr_assert_eq(off->status, OB_STATUS_INACTIVE);
        struct ob_account *back = bob(NULL, NULL);
        struct ob_account_plan *on = plan(cfg, back, OB_STATUS_INACTIVE);
        for (size_t k = 0; k < n; k++)
                check_request(file, ex[k].reactivate ? on : off, &ex[k]);
        /* Session and token revocation go first. */
        if (off->nsteps > 0 && ex[0].security)
                cr_assert_str_eq(off->steps[0].action->name, ex[0].action, "%s", file);

        ob_account_plan_free(on);
        ob_account_plan_free(off);
        ob_account_free(back);
        ob_account_free(leaver);
        ob_config_free(cfg);
        free(text);
        free(raw);
}

Test(presets, every_preset_loads_filled_in_and_renders_the_requests_its_api_documents)
{
        each_preset(renders_documented_requests);
}

static void refused_unfilled(const char *path, size_t i)
{
        char *raw = slurp(path);
        cr_assert_not_null(strstr(raw, "${"), "%s: nothing to fill in?", presets[i].file);
        struct ob_config *cfg = NULL;
        struct ob_config_error err;
        int r = load(raw, presets[i].ex, &cfg, &err);
        cr_assert_neq(r, 0, "%s loads with its placeholders left in", presets[i].file);
        cr_assert(strstr(err.message, "base_url"), "%s: %s", presets[i].file, err.message);
        free(raw);
}

Test(presets, a_preset_copied_without_filling_in_its_placeholders_does_not_load)
{
        each_preset(refused_unfilled);
}

Test(presets, a_locked_account_keeps_its_license_and_subscription_an_inactive_one_frees_them)
{
        static const char *const files[] = {"licenses.yaml", "subscriptions.yaml"};
        for (size_t f = 0; f < 2; f++) {
                size_t i = preset_index(files[f]);
                char path[512];
                snprintf(path, sizeof(path), "%s/connectors/%s", OB_SOURCE_DIR, files[f]);
                char *raw = slurp(path);
                char *text = fill(raw, files[f]);
                struct ob_config *cfg = NULL;
                struct ob_config_error err;
                cr_assert_eq(load(text, presets[i].ex, &cfg, &err), 0, "%s", err.message);
                const char *name = presets[i].ex[0].action;
                struct ob_account *locked = bob("pwdAccountLockedTime", "000001010000Z");
                struct ob_account_plan *p = plan(cfg, locked, OB_STATUS_ACTIVE);
                cr_assert_eq(p->status, OB_STATUS_LOCKED);
                const struct ob_step *s = step(p, name);
                cr_assert_not_null(s);
                cr_assert_eq(s->state, OB_STEP_SKIPPED, "%s: a locked account loses %s", files[f], name);
                ob_account_plan_free(p);
                ob_account_free(locked);
                ob_config_free(cfg);
                free(text);
                free(raw);
        }
}

Test(presets, an_account_without_the_id_attribute_fails_the_action_instead_of_calling_an_empty_path)
{
        char *raw = slurp(OB_SOURCE_DIR "/connectors/gitlab.yaml");
        char *text = fill(raw, "gitlab.yaml");
        size_t i = preset_index("gitlab.yaml");
        struct ob_config *cfg = NULL;
        struct ob_config_error err;
        cr_assert_eq(load(text, presets[i].ex, &cfg, &err), 0, "%s", err.message);
        struct ob_account *a = ob_account_new();
        a->id = strdup("id-eve");
        a->dn = strdup("uid=eve,ou=people,dc=example,dc=org");
        ob_account_add(a, "uid", "eve", 3);
        ob_account_add(a, "employeeType", "Inactive", 8);
        struct ob_account_plan *p = plan(cfg, a, OB_STATUS_ACTIVE);
        const struct ob_step *s = step(p, "gitlab-block");
        cr_assert_not_null(s);
        cr_assert_not_null(s->render_error, "gitlab-block would call /users//block");
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_config_free(cfg);
        free(text);
        free(raw);
}

/* A line "key: value" whose key names a credential must take it from a file
 * (token_file, password_file, {value_file: ...}) or be a template over the
 * account (the token a revocation names); NULL when clean, else the line. */
static const char *inline_secret(const char *text, char *line, size_t linesz)
{
        static const char *const words[] = {"password", "secret", "token", "key", "authorization", "credential"};
        static const char *const fine[] = {"token_file", "password_file", "value_file", "token_type_hint",
                                           "secret_body"};
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                snprintf(line, linesz, "%.*s", (int)len, p);
                p += len + (nl ? 1 : 0);
                char *k = line;
                while (isspace((unsigned char)*k) || *k == '-')
                        k++;
                char *colon = strchr(k, ':');
                if (*k == '#' || !colon)
                        continue;
                char key[128];
                size_t kl = (size_t)(colon - k) < sizeof(key) - 1 ? (size_t)(colon - k) : sizeof(key) - 1;
                for (size_t j = 0; j < kl; j++)
                        key[j] = (char)tolower((unsigned char)k[j]);
                key[kl] = '\0';
                char *v = colon + 1;
                while (isspace((unsigned char)*v))
                        v++;
                bool ok = *v == '\0' || *v == '#' || strncmp(v, "{value_file:", 12) == 0 ||
                          (strncmp(v, "\"{{", 3) == 0 && strstr(v, "}}\"") && !strstr(strstr(v, "}}\"") + 3, "\""));
                for (size_t j = 0; j < sizeof(fine) / sizeof(fine[0]); j++)
                        ok |= strcmp(key, fine[j]) == 0;
                bool named = false;
                for (size_t j = 0; j < sizeof(words) / sizeof(words[0]); j++)
                        named |= strstr(key, words[j]) != NULL;
                if ((named && !ok) || strstr(v, "Bearer ") || strstr(v, "Basic "))
                        return line;
        }
        return NULL;
}

static void no_inline_secret(const char *path, size_t i)
{
        char *raw = slurp(path);
        char line[1024];
        const char *bad = inline_secret(raw, line, sizeof(line));
        cr_assert_null(bad, "%s holds an inline secret: %s", presets[i].file, bad);
        free(raw);
}

Test(presets, no_preset_holds_an_inline_secret)
{
        char line[1024];
        /* The check itself catches what it is for. */
        cr_assert_not_null(inline_secret("    headers:\n      X-Api-Key: s3cr3t\n", line, sizeof(line)));
        cr_assert_not_null(inline_secret("  auth: {type: bearer, token: abc}\n  x: 1\n", line, sizeof(line)) ||
                           inline_secret("      token: abc\n", line, sizeof(line)));
        cr_assert_not_null(inline_secret("      Authorization: Bearer abc\n", line, sizeof(line)));
        cr_assert_not_null(inline_secret("      client_secret: \"{{ account.uid }}x\"\n", line, sizeof(line)));
        cr_assert_null(inline_secret("      token: \"{{ account.attr.t }}\"\n", line, sizeof(line)));
        each_preset(no_inline_secret);
}
