/* explain.c: `offboard explain ACCOUNT`. See explain.h. */
#define _GNU_SOURCE
#include "explain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "ldap_conn.h"
#include "report.h"
#include "timeparse.h"
#include "util.h"

/* The generations shown, newest first: an account that came and went for
 * years has more, which the journal keeps. */
#define OB_EXPLAIN_GENERATIONS 20

void ob_explain_clear(struct ob_explain *x)
{
        free(x->id);
        for (size_t i = 0; i < x->n; i++) {
                free(x->names[i]);
                free(x->values[i]);
        }
        free(x->names);
        free(x->values);
        *x = (struct ob_explain){0};
}

int ob_explain_note(struct ob_explain *x, const struct ob_config *c, const struct ob_account *a,
                    const struct ob_account_plan *p)
{
        ob_explain_clear(x);
        char **attrs = NULL;
        int r = 0;
        for (size_t i = 0; r == 0 && i < c->nrules; i++) {
                r = ob_cond_attributes(c->rules[i].when, &attrs);
                if (r == 0 && c->rules[i].reason_attribute)
                        r = ob_strv_add_unique_ci(&attrs, c->rules[i].reason_attribute);
        }
        size_t n = 0;
        while (attrs && attrs[n])
                n++;
        if (r == 0 && (!(x->id = strdup(p->id)) || !(x->names = calloc(n + 1, sizeof(char *))) ||
                       !(x->values = calloc(n + 1, sizeof(char *)))))
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++) {
                x->names[i] = attrs[i];
                attrs[i] = NULL;
                x->n++;
                const struct ob_attr *at = ob_account_attr(a, x->names[i]);
                struct ob_buf b;
                ob_buf_init(&b);
                for (size_t v = 0; r == 0 && at && v < at->nvals; v++)
                        r = ob_buf_printf(&b, "%s%s", v ? "; " : "", at->vals[v].data);
                if (r == 0 && at && at->nvals)
                        r = ob_buf_steal(&b, &x->values[i]);
                ob_buf_free(&b);
        }
        ob_strv_free(attrs);
        if (r < 0)
                ob_explain_clear(x);
        return r;
}

static const char *when(int64_t t, char buf[21])
{
        if (t <= 0)
                return NULL;
        ob_time_format_rfc3339(t, buf);
        return buf;
}

/* The memberships an ldap step recorded (removed, or to put back). */
static void history_memberships(FILE *f, const char *detail)
{
        struct ob_ldap_membership *m = NULL;
        size_t n = 0;
        int64_t cut = 0;
        if (!detail || ob_ldap_memberships_parse(detail, &m, &n, &cut) < 0)
                return;
        ob_report_printf(f, "      memberships: %zu%s\n", n, cut > 0 ? " (the list was cut)" : "");
        for (size_t i = 0; i < n; i++)
                ob_report_printf(f, "        %s: %s in %s\n", ob_ldap_group_attr_name(m[i].attr), m[i].value,
                                 m[i].group);
        if (cut > 0)
                ob_report_printf(f, "        and %lld not recorded\n", (long long)cut);
        ob_ldap_memberships_free(m, n);
}

/* The record and the actions of its latest generations, as text or JSON. */
static int history(FILE *f, bool json, struct ob_state *s, const char *id)
{
        struct ob_record rec = {0};
        int k = s && id ? ob_state_get(s, id, &rec) : -OB_ENOTFOUND;
        if (k == -OB_ENOTFOUND) {
                if (json)
                        fputs(",\"record\":null,\"history\":[]", f);
                else
                        ob_report_printf(f, "Recorded: nothing (never acted on)\n");
                return 0;
        }
        if (k < 0)
                return k;
        char t[21];
        if (json) {
                fputs(",\"record\":{", f);
                struct ob_report_json j = {.f = f, .first = true};
                ob_report_json_string(&j, "status", ob_status_name(rec.status));
                ob_report_json_string(&j, "since", when(rec.status_since, t));
                ob_report_json_string(&j, "pending_to", rec.pending_to ? ob_status_name(rec.pending_to) : NULL);
                fprintf(f, ",\"generation\":%lld,\"writeback_owed\":%s}", (long long)rec.generation,
                        rec.writeback_owed ? "true" : "false");
                fputs(",\"history\":[", f);
        } else {
                if (rec.status)
                        ob_report_printf(f, "Recorded: %s since %s", ob_status_name(rec.status),
                                         when(rec.status_since, t) ? t : "?");
                else
                        ob_report_printf(f, "Recorded: no status fully applied yet");
                ob_report_printf(f, ", generation %lld%s%s%s\n", (long long)rec.generation,
                                 rec.pending_to ? ", on its way to " : "",
                                 rec.pending_to ? ob_status_name(rec.pending_to) : "",
                                 rec.writeback_owed ? ", write-back owed" : "");
        }
        bool first = true;
        for (int64_t g = rec.generation; k >= 0 && g >= 1 && g > rec.generation - OB_EXPLAIN_GENERATIONS; g--) {
                struct ob_action_record *a = NULL;
                size_t n = 0;
                if ((k = ob_state_actions(s, id, g, &a, &n)) < 0)
                        break;
                if (!json && n)
                        ob_report_printf(f, "  generation %lld:\n", (long long)g);
                for (size_t i = 0; i < n; i++) {
                        char u[21], nb[21], due[21];
                        if (json) {
                                fputs(first ? "{" : ",{", f);
                                first = false;
                                struct ob_report_json j = {.f = f, .first = true};
                                fprintf(f, "\"generation\":%lld", (long long)g);
                                j.first = false;
                                ob_report_json_string(&j, "action", a[i].action);
                                ob_report_json_string(&j, "outcome", ob_outcome_name(a[i].outcome));
                                fprintf(f, ",\"attempts\":%d,\"http_status\":%ld", a[i].attempts, a[i].http_status);
                                ob_report_json_string(&j, "error", a[i].error);
                                ob_report_json_string(&j, "idempotency_key", a[i].idempotency_key);
                                ob_report_json_string(&j, "updated", when(a[i].updated, u));
                                ob_report_json_string(&j, "not_before", when(a[i].not_before, nb));
                                ob_report_json_string(&j, "due", when(a[i].due, due));
                                /* The memberships it removed or put back (state.h: JSON already). */
                                if (a[i].detail)
                                        fprintf(f, ",\"detail\":%s", a[i].detail);
                                fprintf(f, ",\"parked\":%s}", a[i].parked ? "true" : "false");
                        } else {
                                ob_report_printf(f, "    %s: %s, %d attempt%s", a[i].action,
                                                 ob_outcome_name(a[i].outcome), a[i].attempts,
                                                 a[i].attempts == 1 ? "" : "s");
                                if (a[i].http_status)
                                        ob_report_printf(f, ", HTTP %ld", a[i].http_status);
                                if (when(a[i].updated, u))
                                        ob_report_printf(f, ", at %s", u);
                                if (when(a[i].due, due))
                                        ob_report_printf(f, ", a stage due at %s", due);
                                if (when(a[i].not_before, nb))
                                        ob_report_printf(f, ", not before %s", nb);
                                if (a[i].parked)
                                        ob_report_printf(f, ", parked");
                                ob_report_printf(f, "\n");
                                if (a[i].idempotency_key)
                                        ob_report_printf(f, "      key: %s\n", a[i].idempotency_key);
                                if (a[i].error && *a[i].error)
                                        ob_report_printf(f, "      error: %s\n", a[i].error);
                                history_memberships(f, a[i].detail);
                        }
                }
                ob_action_records_free(a, n);
        }
        if (json)
                fputc(']', f);
        ob_record_clear(&rec);
        return k < 0 ? k : 0;
}

int ob_explain_print(FILE *f, bool json, const char *report, const struct ob_explain *x, const char *username,
                     struct ob_state *s)
{
        char *found = NULL;
        const char *id = x->id;
        int k = 0;
        if (!id && s && (k = ob_state_id_of(s, username, &found)) < 0)
                return k;
        if (!id)
                id = found;
        if (json) {
                fputs("{\"version\":1,\"kind\":\"explain\"", f);
                struct ob_report_json j = {.f = f, .first = false};
                ob_report_json_string(&j, "account", username);
                ob_report_json_string(&j, "id", id);
                /* The plan's document, one line without its newline. */
                size_t rl = report ? strlen(report) : 0;
                while (rl > 0 && (report[rl - 1] == '\n' || report[rl - 1] == '\r'))
                        rl--;
                fprintf(f, ",\"seen\":%s,\"plan\":%.*s", x->id ? "true" : "false", rl ? (int)rl : 4,
                        rl ? report : "null");
                fputs(",\"attributes\":{", f);
                for (size_t i = 0; i < x->n; i++) {
                        struct ob_report_json a = {.f = f, .first = i == 0};
                        ob_report_json_string(&a, x->names[i], x->values[i]);
                }
                fputc('}', f);
        } else {
                if (!x->id)
                        ob_report_printf(f, "%s: not in the directory's scope now (no entry with this username "
                                            "matches the filter under the base)\n", username);
                else
                        fputs(report ? report : "", f);
                if (x->n)
                        ob_report_printf(f, "\nWhat the rules read:\n");
                for (size_t i = 0; i < x->n; i++)
                        ob_report_printf(f, "  %s: %s\n", x->names[i], x->values[i] ? x->values[i] : "(absent)");
                ob_report_printf(f, "\n");
        }
        k = history(f, json, s, id);
        if (json)
                fputs("}\n", f);
        free(found);
        if (k < 0)
                return k;
        return ferror(f) ? -EIO : 0;
}
