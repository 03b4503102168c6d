/* fuzz_plan.c: directory values through the planner (agent/plan.h) and the
 * reports (agent/report.h).
 *
 * The configuration is tests/fuzz/plan.yaml (loaded once per process): one
 * http connector with base_url https://apps.example.org/api and actions whose
 * url, json, form and headers use account fields; the openldap mapping turns
 * employeeType, shadowExpire and pwdAccountLockedTime into a status.
 *
 * Input: byte 0 holds flags (bits 0-2: recorded status; bit 3: the account
 * is deleted; bit 4: a transfer target; bit 5: a transition in progress);
 * then records of (type, length, bytes) that set the account's fields:
 * uid, mail, cn, description, manager, employeeType (raw, or one of the
 * mapped values), shadowExpire, pwdAccountLockedTime, id, dn, title,
 * employeeNumber, any attribute, and the transfer target's uid and mail.
 *
 * Oracles, for every step rendered:
 *   - the URL starts with the base_url, its host is unchanged, and its path
 *     has exactly as many '/' (and the URL as many '?') as the base_url and
 *     the template together: no value adds a segment or a query; no '#', no
 *     space or control character;
 *   - header lines hold no control character but tab;
 *   - a JSON body is valid JSON; a form body holds only unreserved bytes,
 *     %XX, '&' and '=';
 * and ob_report_json's output is valid JSON, ob_report_text's holds no byte
 * below 0x20 other than '\n', and no 0x7f.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "config.h"
#include "fuzz_support.h"
#include "http.h"
#include "plan.h"
#include "report.h"
#include "state.h"

#define NOW INT64_C(1795422796) /* 2026-11-23T08:33:16Z */
#define BASE_URL "https://apps.example.org/api"
#define HOST "apps.example.org"

static struct ob_config *cfg;

static void load_config(void)
{
        struct ob_config_error err;
        setenv("OFFBOARD_MAPPINGS_DIR", OB_FUZZ_MAPPINGS_DIR, 1);
        int r = ob_config_load(OB_FUZZ_DIR "/plan.yaml", &cfg, &err);
        if (r < 0)
                ob_fuzz_fail("plan: %s does not load: %s", OB_FUZZ_DIR "/plan.yaml", err.message);
}

static size_t count(const char *s, size_t n, char c)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += s[i] == c;
        return k;
}

static void check_url(const struct ob_step *st, const struct ob_http_rendered *rq)
{
        const char *u = rq->url;
        const char *src = ob_tpl_source(((const struct ob_http_action *)st->action->settings)->url);
        size_t n = strlen(u);

        if (strncmp(u, BASE_URL, strlen(BASE_URL)) != 0)
                ob_fuzz_fail("plan: step %s: url '%s' does not start with the base_url", st->action->name, u);
        const char *host = u + strlen("https://");
        const char *slash = strchr(host, '/');
        if (!slash || (size_t)(slash - host) != strlen(HOST) || strncmp(host, HOST, strlen(HOST)) != 0)
                ob_fuzz_fail("plan: step %s: url '%s' has another host", st->action->name, u);
        const char *q = strchr(u, '?');
        const char *sq = strchr(src, '?');
        size_t path_len = q ? (size_t)(q - u) : n;
        size_t want = count(BASE_URL, strlen(BASE_URL), '/') + count(src, sq ? (size_t)(sq - src) : strlen(src), '/');
        if (count(u, path_len, '/') != want || count(u, n, '?') != count(src, strlen(src), '?')) {
                ob_fuzz_dump("url", u, n);
                ob_fuzz_fail("plan: step %s: the url's segments differ from the template '%s'", st->action->name, src);
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)u[i];
                if (c <= 0x20 || c >= 0x7f || c == '#') {
                        ob_fuzz_dump("url", u, n);
                        ob_fuzz_fail("plan: step %s: byte 0x%02x in the url", st->action->name, c);
                }
        }
}

static bool form_byte(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~' || c == '%' || c == '&' || c == '=';
}

static void check_step(const struct ob_step *st)
{
        const struct ob_http_rendered *rq = st->rendered;
        const struct ob_http_action *ha = st->action->settings;
        if (!rq)
                return;
        if (rq->url)
                check_url(st, rq);
        for (size_t i = 0; rq->headers && rq->headers[i]; i++)
                for (const unsigned char *c = (const unsigned char *)rq->headers[i]; *c; c++)
                        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
                                ob_fuzz_dump("header", rq->headers[i], strlen(rq->headers[i]));
                                ob_fuzz_fail("plan: step %s: control character in a header", st->action->name);
                        }
        if (!rq->body)
                return;
        if (ha->body.context == OB_TPL_JSON && !ob_fuzz_json_valid(rq->body, rq->body_len)) {
                ob_fuzz_dump("body", rq->body, rq->body_len);
                ob_fuzz_fail("plan: step %s: the JSON body is not valid JSON", st->action->name);
        }
        if (ha->body.context == OB_TPL_FORM)
                for (size_t i = 0; i < rq->body_len; i++)
                        if (!form_byte((unsigned char)rq->body[i])) {
                                ob_fuzz_dump("body", rq->body, rq->body_len);
                                ob_fuzz_fail("plan: step %s: byte 0x%02x in the form body", st->action->name,
                                             (unsigned char)rq->body[i]);
                        }
}

static void check_reports(struct ob_account_plan *p)
{
        struct ob_report_item item = {.plan = p, .results = NULL, .writeback_result = 1};
        struct ob_report_summary sum = {.dry_run = true, .now = NOW, .accounts_read = 1};
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        sum.steps_owed = ob_account_plan_owed(p);
        f = open_memstream(&text, &len);
        if (!f)
                return;
        ob_report_json(f, &item, 1, &sum);
        if (fclose(f) == 0 && !ob_fuzz_json_valid(text, len)) {
                ob_fuzz_dump("report", text, len);
                ob_fuzz_fail("plan: the JSON report is not valid JSON");
        }
        free(text);
        text = NULL;
        len = 0;

        f = open_memstream(&text, &len);
        if (!f)
                return;
        ob_report_text(f, cfg, &item, 1, &sum);
        if (fclose(f) == 0)
                for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char)text[i];
                        if ((c < 0x20 && c != '\n') || c == 0x7f) {
                                ob_fuzz_dump("report", text, len);
                                ob_fuzz_fail("plan: byte 0x%02x at %zu of the text report", c, i);
                        }
                }
        free(text);
}

/* Fills *a (and *target) from the records; returns the flags byte. */
static void build(const uint8_t *data, size_t size, struct ob_account *a, struct ob_account *target)
{
        static const char *const fields[] = {
                "uid", "mail", "cn", "description", "manager", "employeeType", NULL, "shadowExpire",
                "pwdAccountLockedTime", NULL, NULL, "title", "employeeNumber", NULL, NULL, NULL,
        };
        static const char *const mapped[] = {"Inactive", "Terminated", "Locked", "Active", "000001010000Z"};
        size_t i = 1;

        while (i + 2 <= size) {
                unsigned type = data[i] & 15;
                size_t len = data[i + 1];
                const char *v = (const char *)data + i + 2;
                i += 2;
                if (len > size - i)
                        len = size - i;
                i += len;
                if (fields[type]) {
                        ob_account_add(a, fields[type], v, len);
                        continue;
                }
                switch (type) {
                case 6: {
                        const char *m = mapped[(len ? (unsigned char)v[0] : 0) % OB_ELEMENTSOF(mapped)];
                        ob_account_add(a, m[0] == '0' ? "pwdAccountLockedTime" : "employeeType", m, strlen(m));
                        break;
                }
                case 9:
                case 10: {
                        char *s = strndup(v, len);
                        if (!s || !*s) {
                                free(s);
                                break;
                        }
                        char **dst = type == 9 ? &a->id : &a->dn;
                        free(*dst);
                        *dst = s;
                        break;
                }
                case 13: {
                        /* name: the bytes up to ':' (or 8), value: the rest */
                        const char *colon = memchr(v, ':', len);
                        size_t nl = colon ? (size_t)(colon - v) : (len < 8 ? len : 8);
                        char *name = strndup(v, nl);
                        if (name && *name)
                                ob_account_add(a, name, v + nl + (colon ? 1 : 0), len - nl - (colon ? 1 : 0));
                        free(name);
                        break;
                }
                case 14: ob_account_add(target, "uid", v, len); break;
                case 15: ob_account_add(target, "mail", v, len); break;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ob_account *a = NULL, *target = NULL;
        struct ob_account_plan *p = NULL;

        if (!cfg)
                load_config();
        if (size < 1)
                return 0;
        a = ob_account_new();
        target = ob_account_new();
        if (!a || !target)
                goto out;
        a->id = strdup("0f6a3a7e-0000-4000-8000-00000000f022");
        a->dn = strdup("uid=fuzz,ou=people,dc=example,dc=org");
        target->id = strdup("0f6a3a7e-0000-4000-8000-0000000074e7");
        target->dn = strdup("uid=trent,ou=people,dc=example,dc=org");
        if (!a->id || !a->dn || !target->id || !target->dn)
                goto out;
        build(data, size, a, target);

        uint8_t flags = data[0];
        struct ob_record rec = {
                .id = a->id,
                .dn = a->dn,
                .username = (char *)"fuzz",
                .status = flags & 7,
                .status_since = NOW - 86400,
                .generation = 3,
                .pending_from = (flags & 0x20) ? (flags & 7) : 0,
                .pending_to = (flags & 0x20) ? OB_STATUS_INACTIVE : 0,
        };
        if (rec.status >= _OB_STATUS_MAX)
                rec.status = OB_STATUS_ACTIVE;
        if (rec.pending_from >= _OB_STATUS_MAX)
                rec.pending_from = OB_STATUS_ACTIVE;
        struct ob_plan_input in = {
                .account = a,
                .deleted = (flags & 8) != 0,
                .record = rec.status ? &rec : NULL,
                .now = NOW,
        };
        if (flags & 0x10) {
                in.transfer.target = target;
                in.transfer.via = "manager";
        }
        int r = ob_plan_account(cfg, &in, &p);
        if (r < 0) {
                if (r != -ENOMEM)
                        ob_fuzz_fail("plan: ob_plan_account returned %d", r);
                goto out;
        }
        for (size_t i = 0; i < p->nsteps; i++)
                check_step(&p->steps[i]);
        check_reports(p);
out:
        ob_account_plan_free(p);
        ob_account_free(a);
        ob_account_free(target);
        return 0;
}
