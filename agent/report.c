/* report.c: text and JSON reports of a plan or a reconcile. */
#include "report.h"

#include <string.h>

#include "escape.h"
#include "state.h"
#include "timeparse.h"
#include "util.h"

/* ---- JSON helpers ------------------------------------------------------- */

/* A JSON string; directory values that are not UTF-8 are written byte by
 * byte as \u00XX rather than refused, so a report is always produced. */
static void jstr(FILE *f, const char *s)
{
        if (!s) {
                fputs("null", f);
                return;
        }
        struct ob_buf b;
        ob_buf_init(&b);
        if (ob_escape_json(&b, s, strlen(s)) == 0) {
                fprintf(f, "\"%s\"", b.data ? b.data : "");
        } else {
                fputc('"', f);
                for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                fprintf(f, "\\%c", *c);
                        else if (*c < 0x20 || *c >= 0x7f)
                                fprintf(f, "\\u%04x", *c);
                        else
                                fputc(*c, f);
                }
                fputc('"', f);
        }
        ob_buf_free(&b);
}

static void jkey(FILE *f, bool *first, const char *k)
{
        if (!*first)
                fputc(',', f);
        *first = false;
        jstr(f, k);
        fputc(':', f);
}

static const char *auth_display(const struct ob_connector *k)
{
        if (!k->auth_type)
                return NULL;
        return strcmp(k->auth_type, "bearer") == 0 ? "Bearer " OB_MASK : "Basic " OB_MASK;
}

static const char *step_outcome(const struct ob_report_item *it, size_t i)
{
        if (!it->results)
                return ob_step_state_name(it->plan->steps[i].state);
        if (it->plan->steps[i].state != OB_STEP_OWED)
                return ob_step_state_name(it->plan->steps[i].state);
        if (it->results[i].outcome == OB_OUTCOME_NONE)
                return "held";
        return ob_outcome_name(it->results[i].outcome);
}

static void json_item(FILE *f, const struct ob_config *c, const struct ob_report_item *it)
{
        const struct ob_account_plan *p = it->plan;
        bool first = true;
        fputc('{', f);
        jkey(f, &first, "id");
        jstr(f, p->id);
        jkey(f, &first, "dn");
        jstr(f, p->dn);
        jkey(f, &first, "username");
        jstr(f, p->username);
        jkey(f, &first, "status");
        jstr(f, ob_status_name(p->status));
        jkey(f, &first, "rule");
        jstr(f, p->rule ? p->rule->name : NULL);
        jkey(f, &first, "rule_source");
        jstr(f, p->rule ? p->rule->source : NULL);
        jkey(f, &first, "reason");
        jstr(f, p->reason);
        jkey(f, &first, "recorded_status");
        jstr(f, ob_status_name(p->recorded));
        jkey(f, &first, "transition");
        jstr(f, p->transition ? p->transition->name : NULL);
        jkey(f, &first, "from");
        jstr(f, ob_status_name(p->from));
        jkey(f, &first, "generation");
        fprintf(f, "%lld", (long long)p->generation);
        jkey(f, &first, "continuing");
        fputs(p->continuing ? "true" : "false", f);
        jkey(f, &first, "transfer_to");
        if (p->transfer_dn) {
                bool f2 = true;
                fputc('{', f);
                jkey(f, &f2, "via");
                jstr(f, p->transfer_via);
                jkey(f, &f2, "dn");
                jstr(f, p->transfer_dn);
                jkey(f, &f2, "username");
                jstr(f, p->transfer_uid);
                fputc('}', f);
        } else {
                fputs("null", f);
        }
        jkey(f, &first, "writeback");
        fputs(p->writeback ? "true" : "false", f);
        if (it->results) {
                jkey(f, &first, "writeback_result");
                jstr(f, it->writeback_result == 0 ? "written" : it->writeback_result > 0 ? "not attempted" : "failed");
        }
        jkey(f, &first, "actions");
        fputc('[', f);
        for (size_t i = 0; i < p->nsteps; i++) {
                const struct ob_step *s = &p->steps[i];
                bool f2 = true;
                if (i)
                        fputc(',', f);
                fputc('{', f);
                jkey(f, &f2, "name");
                jstr(f, s->action->name);
                jkey(f, &f2, "connector");
                jstr(f, s->action->connector->name);
                jkey(f, &f2, "state");
                jstr(f, step_outcome(it, i));
                jkey(f, &f2, "security");
                fputs(s->action->security ? "true" : "false", f);
                jkey(f, &f2, "after");
                fputc('[', f);
                for (size_t d = 0; d < s->action->nafter; d++) {
                        if (d)
                                fputc(',', f);
                        jstr(f, s->action->after[d]->name);
                }
                fputc(']', f);
                jkey(f, &f2, "attempts");
                fprintf(f, "%d", s->attempts + (it->results && it->results[i].outcome > OB_OUTCOME_INTENT ? 1 : 0));
                if (s->state == OB_STEP_OWED) {
                        jkey(f, &f2, "request");
                        bool f3 = true;
                        fputc('{', f);
                        jkey(f, &f3, "method");
                        jstr(f, s->method);
                        jkey(f, &f3, "url");
                        jstr(f, s->url);
                        jkey(f, &f3, "headers");
                        fputc('[', f);
                        bool f4 = true;
                        const char *auth = auth_display(s->action->connector);
                        if (auth) {
                                fputs("\"Authorization: ", f);
                                fputs(auth, f);
                                fputc('"', f);
                                f4 = false;
                        }
                        for (size_t h = 0; s->headers && s->headers[h]; h++) {
                                if (!f4)
                                        fputc(',', f);
                                f4 = false;
                                jstr(f, s->headers[h]);
                        }
                        fputc(']', f);
                        jkey(f, &f3, "content_type");
                        jstr(f, s->content_type);
                        jkey(f, &f3, "body");
                        jstr(f, s->body);
                        jkey(f, &f3, "idempotency_key");
                        jstr(f, s->idempotency_key);
                        fputc('}', f);
                        jkey(f, &f2, "error");
                        if (s->render_error)
                                jstr(f, s->render_error);
                        else if (it->results && it->results[i].error)
                                jstr(f, it->results[i].error);
                        else
                                jstr(f, s->last_error);
                        if (it->results) {
                                jkey(f, &f2, "http_status");
                                fprintf(f, "%ld", it->results[i].http_status);
                                jkey(f, &f2, "duration_ms");
                                fprintf(f, "%lld", (long long)it->results[i].duration_ms);
                        }
                }
                fputc('}', f);
        }
        fputs("]}", f);
        (void)c;
}

void ob_report_json(FILE *f, const struct ob_config *c, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s)
{
        char now[21];
        ob_time_format_rfc3339(s->now, now);
        bool first = true;
        fputc('{', f);
        jkey(f, &first, "version");
        fputs("1", f);
        jkey(f, &first, "kind");
        jstr(f, s->dry_run ? "plan" : "reconcile");
        jkey(f, &first, "time");
        jstr(f, now);
        jkey(f, &first, "summary");
        fprintf(f,
                "{\"accounts_read\":%zu,\"accounts_recorded\":%zu,\"accounts_new\":%zu,\"deleted\":%zu,"
                "\"accounts_owing\":%zu,\"new_deactivations\":%zu,\"actions_owed\":%zu,\"actions_done\":%zu,"
                "\"actions_failed\":%zu,\"actions_held\":%zu,\"writebacks_failed\":%zu,\"parked\":%s,"
                "\"parked_reason\":",
                s->accounts_read, s->accounts_recorded, s->accounts_new, s->deleted, n, s->new_deactivations,
                s->steps_owed, s->steps_done, s->steps_failed, s->steps_held, s->writebacks_failed,
                s->parked ? "true" : "false");
        jstr(f, s->parked ? s->parked_reason : NULL);
        fputc('}', f);
        jkey(f, &first, "accounts");
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        fputc(',', f);
                json_item(f, c, &items[i]);
        }
        fputs("]}\n", f);
}

/* ---- text --------------------------------------------------------------- */

void ob_report_text(FILE *f, const struct ob_config *c, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s)
{
        (void)c;
        for (size_t i = 0; i < n; i++) {
                const struct ob_report_item *it = &items[i];
                const struct ob_account_plan *p = it->plan;
                fprintf(f, "%s  %s\n", p->username ? p->username : p->id, p->dn ? p->dn : "");
                fprintf(f, "  status:     %s", ob_status_name(p->status));
                if (p->rule)
                        fprintf(f, " (rule %s, %s)", p->rule->name, p->rule->source);
                else if (p->deleted)
                        fprintf(f, " (the entry is gone from the directory)");
                else
                        fprintf(f, " (no rule matched)");
                if (p->reason)
                        fprintf(f, ", reason: %s", p->reason);
                fputc('\n', f);
                fprintf(f, "  recorded:   %s\n", ob_status_name(p->recorded));
                if (p->transition)
                        fprintf(f, "  transition: %s (%s -> %s, generation %lld%s)\n", p->transition->name,
                                ob_status_name(p->from), ob_status_name(p->status), (long long)p->generation,
                                p->continuing ? ", continuing" : "");
                if (p->transfer_dn)
                        fprintf(f, "  transfer:   %s (%s) via %s\n", p->transfer_uid ? p->transfer_uid : "?",
                                p->transfer_dn, p->transfer_via);
                else if (c->uses_transfer && p->transition)
                        fprintf(f, "  transfer:   no target (no active manager, team owner or fallback)\n");
                for (size_t k = 0; k < p->nsteps; k++) {
                        const struct ob_step *st = &p->steps[k];
                        fprintf(f, "  %zu. %-22s %-8s %s", k + 1, st->action->name, step_outcome(it, k),
                                st->action->connector->name);
                        if (st->state == OB_STEP_OWED)
                                fprintf(f, "  %s %s", st->method, st->url ? st->url : "");
                        if (it->results && st->state == OB_STEP_OWED && it->results[k].outcome > OB_OUTCOME_INTENT)
                                fprintf(f, "  (HTTP %ld, %lld ms)", it->results[k].http_status,
                                        (long long)it->results[k].duration_ms);
                        fputc('\n', f);
                        if (st->state != OB_STEP_OWED)
                                continue;
                        if (it->results) {
                                /* After a reconcile: outcomes only; the request was shown by plan. */
                                const char *e = st->render_error ? st->render_error : it->results[k].error;
                                if (e)
                                        fprintf(f, "       error: %s\n", e);
                                else if (it->results[k].outcome == OB_OUTCOME_NONE)
                                        fprintf(f, "       held: an action it runs after did not succeed\n");
                                continue;
                        }
                        const char *auth = auth_display(st->action->connector);
                        if (auth)
                                fprintf(f, "       Authorization: %s\n", auth);
                        for (size_t h = 0; st->headers && st->headers[h]; h++)
                                fprintf(f, "       %s\n", st->headers[h]);
                        fprintf(f, "       Idempotency-Key: %s\n", st->idempotency_key);
                        if (st->body)
                                fprintf(f, "       body: %s\n", st->body);
                        if (st->render_error)
                                fprintf(f, "       error: %s\n", st->render_error);
                        else if (st->last_error)
                                fprintf(f, "       last error (attempt %d): %s\n", st->attempts, st->last_error);
                }
                if (p->writeback)
                        fprintf(f, "  write-back: %s\n",
                                !it->results               ? "status attributes will be written on the entry"
                                : it->writeback_result == 0 ? "written"
                                : it->writeback_result > 0  ? "not attempted"
                                                            : "FAILED");
                fputc('\n', f);
        }
        fprintf(f, "%s: %zu accounts read (%zu new), %zu recorded before, %zu deleted; %zu accounts owe actions",
                s->dry_run ? "plan" : "reconcile", s->accounts_read, s->accounts_new, s->accounts_recorded,
                s->deleted, n);
        if (s->dry_run)
                fprintf(f, ", %zu actions would run.\n", s->steps_owed);
        else
                fprintf(f, "; actions: %zu done, %zu failed, %zu held.\n", s->steps_done, s->steps_failed,
                        s->steps_held);
        if (s->writebacks_failed)
                fprintf(f, "%zu write-backs failed (see the log).\n", s->writebacks_failed);
        if (s->parked)
                fprintf(f, "%s\n", s->parked_reason);
}
