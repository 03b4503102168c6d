/* report.c: text and JSON reports of a plan or a reconcile. */
#include "report.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

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

/* The contents of a JSON string, without the quotes. */
static void jraw(FILE *f, const char *s)
{
        struct ob_buf b;
        ob_buf_init(&b);
        if (ob_escape_json(&b, s, strlen(s)) == 0 && b.data)
                fputs(b.data, f);
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

static void jfield(FILE *f, bool *first, const char *k, const char *v)
{
        jkey(f, first, k);
        jstr(f, v);
}

static void jbool(FILE *f, bool *first, const char *k, bool v)
{
        jkey(f, first, k);
        fputs(v ? "true" : "false", f);
}

/* ---- what a connector kind writes ------------------------------------------ */

void ob_report_json_string(struct ob_report_json *j, const char *key, const char *value)
{
        jfield(j->f, &j->first, key, value);
}

void ob_report_json_list_begin(struct ob_report_json *j, const char *key)
{
        jkey(j->f, &j->first, key);
        fputc('[', j->f);
        j->list_first = true;
}

void ob_report_json_list_item(struct ob_report_json *j, const char *value)
{
        if (!j->list_first)
                fputc(',', j->f);
        j->list_first = false;
        jstr(j->f, value);
}

void ob_report_json_list_masked(struct ob_report_json *j, const char *name)
{
        if (!j->list_first)
                fputc(',', j->f);
        j->list_first = false;
        fputc('"', j->f);
        jraw(j->f, name);
        fputs(": " OB_MASK "\"", j->f);
}

void ob_report_json_list_end(struct ob_report_json *j)
{
        fputc(']', j->f);
}

static const char *step_outcome(const struct ob_report_item *it, size_t i)
{
        if (!it->results)
                return ob_step_state_name(it->plan->steps[i].state);
        if (it->plan->steps[i].state != OB_STEP_OWED)
                return ob_step_state_name(it->plan->steps[i].state);
        if (it->results[i].interrupted)
                return "interrupted";
        if (it->results[i].outcome == OB_OUTCOME_NONE)
                return "held";
        return ob_outcome_name(it->results[i].outcome);
}

static void json_item(FILE *f, const struct ob_report_item *it)
{
        const struct ob_account_plan *p = it->plan;
        bool first = true;
        fputc('{', f);
        jfield(f, &first, "id", p->id);
        jfield(f, &first, "dn", p->dn);
        jfield(f, &first, "username", p->username);
        jfield(f, &first, "status", ob_status_name(p->status));
        jfield(f, &first, "rule", p->rule ? p->rule->name : NULL);
        jfield(f, &first, "rule_source", p->rule ? p->rule->source : NULL);
        jfield(f, &first, "reason", p->reason);
        jfield(f, &first, "recorded_status", ob_status_name(p->recorded));
        jfield(f, &first, "transition", p->transition ? p->transition->name : NULL);
        jfield(f, &first, "from", ob_status_name(p->from));
        jkey(f, &first, "generation");
        fprintf(f, "%lld", (long long)p->generation);
        jbool(f, &first, "continuing", p->continuing);
        jkey(f, &first, "transfer_to");
        if (p->transfer_dn) {
                bool f2 = true;
                fputc('{', f);
                jfield(f, &f2, "via", p->transfer_via);
                jfield(f, &f2, "dn", p->transfer_dn);
                jfield(f, &f2, "username", p->transfer_uid);
                fputc('}', f);
        } else {
                fputs("null", f);
        }
        jkey(f, &first, "guards");
        fputc('[', f);
        for (size_t g = 0; g < p->nguards; g++) {
                bool f2 = true;
                fputs(g ? ",{" : "{", f);
                jfield(f, &f2, "name", p->guards[g].name);
                jfield(f, &f2, "reason", p->guards[g].reason);
                jbool(f, &f2, "block", p->guards[g].block);
                fputc('}', f);
        }
        fputc(']', f);
        jfield(f, &first, "blocked", p->blocked);
        jbool(f, &first, "writeback", p->writeback);
        if (it->results)
                jfield(f, &first, "writeback_result",
                       it->writeback_result == 0  ? "written"
                       : it->writeback_result > 0 ? "not attempted"
                                                  : "failed");
        jkey(f, &first, "actions");
        fputc('[', f);
        for (size_t i = 0; i < p->nsteps; i++) {
                const struct ob_step *s = &p->steps[i];
                bool f2 = true;
                if (i)
                        fputc(',', f);
                fputc('{', f);
                jfield(f, &f2, "name", s->action->name);
                jfield(f, &f2, "connector", s->action->connector->name);
                jfield(f, &f2, "state", step_outcome(it, i));
                jbool(f, &f2, "security", s->action->security);
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
                        struct ob_report_json rj = {.f = f, .first = true};
                        fputc('{', f);
                        s->action->connector->kind->describe_json(s, &rj);
                        fputc('}', f);
                        jfield(f, &f2, "hold_reason", s->hold_reason);
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
}

/* The summary as a JSON object; n is the number of accounts reported. */
static void json_summary(FILE *f, size_t n, const struct ob_report_summary *s)
{
        fprintf(f,
                "{\"accounts_read\":%zu,\"accounts_recorded\":%zu,\"accounts_new\":%zu,\"deleted\":%zu,"
                "\"accounts_owing\":%zu,\"new_deactivations\":%zu,\"actions_owed\":%zu,\"actions_done\":%zu,"
                "\"actions_failed\":%zu,\"actions_held\":%zu,\"writebacks_failed\":%zu,\"parked\":%s,"
                "\"parked_reason\":",
                s->accounts_read, s->accounts_recorded, s->accounts_new, s->deleted, n, s->new_deactivations,
                s->steps_owed, s->steps_done, s->steps_failed, s->steps_held, s->writebacks_failed,
                s->parked ? "true" : "false");
        jstr(f, s->parked ? s->parked_reason : NULL);
        fprintf(f, ",\"status_changes\":%zu,\"unreadable\":%zu,\"spared\":%zu,\"not_reached\":%zu,\"interrupted_by\":",
                s->status_changes, s->unreadable, s->spared, s->not_reached);
        jstr(f, !s->interrupted_by ? NULL : s->interrupted_by == SIGTERM ? "SIGTERM" : "SIGINT");
        fprintf(f, ",\"adopt\":%s,\"adopted\":%zu", s->adopt ? "true" : "false", s->adopted);
        fputs(",\"fallback_problem\":", f);
        jstr(f, s->fallback_problem[0] ? s->fallback_problem : NULL);
        fputs(",\"per_transition\":{", f);
        for (size_t i = 0; i < s->nper_transition; i++) {
                if (i)
                        fputc(',', f);
                jstr(f, s->per_transition[i].transition[0] ? s->per_transition[i].transition : "(none)");
                fprintf(f, ":%zu", s->per_transition[i].n);
        }
        fputs("},\"references\":[", f);
        for (size_t i = 0; s->references && s->references[i]; i++) {
                if (i)
                        fputc(',', f);
                jstr(f, s->references[i]);
        }
        fputs("]}", f);
}

static void json_start(FILE *f, const struct ob_report_summary *s)
{
        char now[21];
        ob_time_format_rfc3339(s->now, now);
        bool first = true;
        fputc('{', f);
        jkey(f, &first, "version");
        fputs("1", f);
        jfield(f, &first, "kind", s->dry_run ? "plan" : "reconcile");
        jfield(f, &first, "time", now);
        jkey(f, &first, "accounts");
        fputc('[', f);
}

static void json_finish(FILE *f, size_t n, const struct ob_report_summary *s)
{
        fputs("],\"unreadable_accounts\":[", f);
        for (size_t i = 0; i < s->nunreadable_list; i++) {
                bool f2 = true;
                if (i)
                        fputc(',', f);
                fputc('{', f);
                jfield(f, &f2, "dn", s->unreadable_list[i].dn);
                jfield(f, &f2, "reason", s->unreadable_list[i].reason);
                fputc('}', f);
        }
        fputs("],\"summary\":", f);
        json_summary(f, n, s);
        fputs("}\n", f);
}

/* ---- text --------------------------------------------------------------- */

/* Writes s[0..n) with every control character escaped (ob_escape_text):
 * values from the directory and from downstream answers must not drive the
 * terminal of the person reading the report. */
static void tput_n(FILE *f, const char *s, size_t n)
{
        struct ob_buf b;
        ob_buf_init(&b);
        if (ob_escape_text(&b, s, n) == 0 && b.data)
                fwrite(b.data, 1, b.len, f);
        ob_buf_free(&b);
}

static void tput(FILE *f, const char *s)
{
        if (s)
                tput_n(f, s, strlen(s));
}

/* Spaces up to width columns after used ones. */
static void tpad(FILE *f, size_t used, size_t width)
{
        for (; used < width; used++)
                fputc(' ', f);
}

/* Columns a terminal gives s, already escaped: one per character (wide
 * characters make a column drift, never a control sequence). */
static size_t tcolumns(const char *s, size_t n)
{
        size_t cols = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] & 0xC0) != 0x80)
                        cols++;
        return cols;
}

/* printf for the text report, and the one way anything reaches it: every
 * %s (and %c) argument goes through ob_escape_text, so a value from the
 * directory, the configuration or a downstream answer can never drive the
 * reader's terminal (set its title, clear it, forge a line). Understands the
 * flag '-', a width, and d i u x c s with the length modifiers l, ll and z;
 * anything else is printed as written, never read from the arguments. */
static void tvprintf(FILE *f, const char *fmt, va_list ap)
{
        for (const char *p = fmt; *p; p++) {
                if (*p != '%') {
                        const char *q = strchr(p, '%');
                        size_t n = q ? (size_t)(q - p) : strlen(p);
                        /* The report's own words; escaped all the same (a
                         * kind's format is code, but a slip must not reach
                         * the terminal), all but the newlines that end lines. */
                        for (size_t i = 0; i < n;) {
                                const char *nl = memchr(p + i, '\n', n - i);
                                size_t m = nl ? (size_t)(nl - (p + i)) : n - i;
                                tput_n(f, p + i, m);
                                i += m;
                                if (nl)
                                        fputc('\n', f), i++;
                        }
                        p += n - 1;
                        continue;
                }
                const char *spec = p++;
                bool left = false;
                size_t width = 0;
                if (*p == '%') {
                        fputc('%', f);
                        continue;
                }
                while (*p == '-')
                        left = true, p++;
                while (*p >= '0' && *p <= '9')
                        width = width * 10 + (size_t)(*p++ - '0');
                int longs = 0;
                bool size = false;
                while (*p == 'l')
                        longs++, p++;
                if (*p == 'z')
                        size = true, p++;
                char num[32];
                const char *out = num;
                size_t len;
                struct ob_buf b;
                ob_buf_init(&b);
                switch (*p) {
                case 'd':
                case 'i': {
                        long long v = size ? (long long)va_arg(ap, ssize_t)
                                      : longs >= 2 ? va_arg(ap, long long)
                                      : longs ? (long long)va_arg(ap, long)
                                              : (long long)va_arg(ap, int);
                        len = (size_t)snprintf(num, sizeof(num), "%lld", v);
                        break;
                }
                case 'u':
                case 'x': {
                        unsigned long long v = size ? (unsigned long long)va_arg(ap, size_t)
                                               : longs >= 2 ? va_arg(ap, unsigned long long)
                                               : longs ? (unsigned long long)va_arg(ap, unsigned long)
                                                       : (unsigned long long)va_arg(ap, unsigned);
                        len = (size_t)snprintf(num, sizeof(num), *p == 'x' ? "%llx" : "%llu", v);
                        break;
                }
                case 'c': {
                        char ch = (char)va_arg(ap, int);
                        if (ob_escape_text(&b, &ch, 1) < 0 || !b.data)
                                ob_buf_reset(&b);
                        out = b.data ? b.data : "";
                        len = b.len;
                        break;
                }
                case 's': {
                        const char *v = va_arg(ap, const char *);
                        if (v && ob_escape_text(&b, v, strlen(v)) < 0)
                                ob_buf_reset(&b);
                        out = b.data ? b.data : "";
                        len = b.data ? b.len : 0;
                        break;
                }
                default:
                        /* Not understood: shown as written (escaped), and no
                         * argument is taken, so nothing is misread. */
                        if (!*p)
                                p--;
                        tput_n(f, spec, (size_t)(p - spec) + 1);
                        ob_buf_free(&b);
                        continue;
                }
                size_t cols = *p == 's' || *p == 'c' ? tcolumns(out, len) : len;
                if (!left)
                        tpad(f, cols, width);
                fwrite(out, 1, len, f);
                if (left)
                        tpad(f, cols, width);
                ob_buf_free(&b);
        }
}

__attribute__((format(printf, 2, 3))) static void tprintf(FILE *f, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tvprintf(f, fmt, ap);
        va_end(ap);
}

void ob_report_printf(FILE *f, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tvprintf(f, fmt, ap);
        va_end(ap);
}

static void text_step(FILE *f, const struct ob_report_item *it, size_t k)
{
        const struct ob_step *st = &it->plan->steps[k];
        bool held = st->hold_reason && (!it->results || (it->results[k].outcome == OB_OUTCOME_NONE &&
                                                         !it->results[k].interrupted));
        const char *state = held ? "held" : step_outcome(it, k);
        tprintf(f, "  %zu. %-22s %-8s ", k + 1, st->action->name, state);
        tput(f, st->action->connector->name);
        if (st->state == OB_STEP_OWED)
                st->action->connector->kind->headline_text(st, f);
        if (it->results && st->state == OB_STEP_OWED && it->results[k].outcome > OB_OUTCOME_INTENT)
                tprintf(f, "  (HTTP %ld, %lld ms)", it->results[k].http_status, (long long)it->results[k].duration_ms);
        fputc('\n', f);
        if (st->state != OB_STEP_OWED)
                return;
        if (held) {
                tprintf(f, "       held: %s\n", st->hold_reason);
                return;
        }
        if (it->results && it->results[k].interrupted) {
                tprintf(f, "       interrupted: still owed; the next pass sends it with the same key\n");
                return;
        }
        if (it->results) {
                /* After a reconcile: outcomes only; the request was shown by plan. */
                const char *e = st->render_error ? st->render_error : it->results[k].error;
                if (e && it->results[k].outcome == OB_OUTCOME_NONE)
                        tprintf(f, "       held: %s\n", e);
                else if (e)
                        tprintf(f, "       error: %s\n", e);
                else if (it->results[k].outcome == OB_OUTCOME_NONE)
                        tprintf(f, "       held: an action it runs after did not succeed\n");
                return;
        }
        st->action->connector->kind->describe_text(st, f);
        if (st->render_error)
                tprintf(f, "       error: %s\n", st->render_error);
        else if (st->last_error)
                tprintf(f, "       last error (attempt %d): %s\n", st->attempts, st->last_error);
}

static void text_item(FILE *f, const struct ob_config *c, const struct ob_report_item *it,
                      const struct ob_report_summary *s)
{
        const struct ob_account_plan *p = it->plan;
        tprintf(f, "%s  %s\n", p->username ? p->username : p->id, p->dn ? p->dn : "");
        tprintf(f, "  status:     %s", ob_status_name(p->status));
        if (p->rule)
                tprintf(f, " (rule %s, %s)", p->rule->name, p->rule->source);
        else if (p->deleted)
                tprintf(f, " (the entry is gone from the directory)");
        else
                tprintf(f, " (no rule matched)");
        if (p->reason)
                tprintf(f, ", reason: %s", p->reason);
        fputc('\n', f);
        tprintf(f, "  recorded:   %s\n", ob_status_name(p->recorded));
        if (p->transition)
                tprintf(f, "  transition: %s (%s -> %s, generation %lld%s)\n", p->transition->name,
                        ob_status_name(p->from), ob_status_name(p->status), (long long)p->generation,
                        p->continuing ? ", continuing" : "");
        if (p->transfer_dn)
                tprintf(f, "  transfer:   %s (%s) via %s\n", p->transfer_uid ? p->transfer_uid : "?",
                        p->transfer_dn, p->transfer_via);
        else if (c->uses_transfer && ob_account_plan_wants_transfer(p))
                tprintf(f, "  transfer:   no target\n");
        for (size_t g = 0; g < p->nguards; g++)
                tprintf(f, "  guard:      %s: %s (%s)\n", p->guards[g].name, p->guards[g].reason ? p->guards[g].reason : "",
                        !p->guards[g].block ? "warning only" : p->blocked ? "holds all but security actions" : "no transition to hold");
        if (s->adopt)
                tprintf(f, "  adopt:      %s as %s; no action runs\n",
                        s->dry_run ? "would be recorded" : "recorded", ob_status_name(p->status));
        for (size_t k = 0; !s->adopt && k < p->nsteps; k++)
                text_step(f, it, k);
        if (p->writeback)
                tprintf(f, "  write-back: %s\n",
                        !it->results               ? "status attributes will be written on the entry"
                        : it->writeback_result == 0 ? "written"
                        : it->writeback_result > 0  ? "not attempted"
                                                    : "FAILED");
        fputc('\n', f);
}

static void text_finish(FILE *f, size_t n, const struct ob_report_summary *s)
{
        if (s->unreadable) {
                tprintf(f, "%zu %s could not be judged and %s held (never taken for deleted or active):\n",
                        s->unreadable, s->unreadable == 1 ? "entry" : "entries", s->unreadable == 1 ? "is" : "are");
                for (size_t i = 0; i < s->nunreadable_list; i++)
                        tprintf(f, "  %s: %s\n", s->unreadable_list[i].dn, s->unreadable_list[i].reason);
                if (s->nunreadable_list < s->unreadable)
                        tprintf(f, "  ... and %zu more (see the log)\n", s->unreadable - s->nunreadable_list);
                fputc('\n', f);
        }
        for (size_t i = 0; s->references && s->references[i]; i++)
                tprintf(f, "Not read: %s is held by another server (a referral); nothing under it is taken for "
                           "deleted.\n",
                        s->references[i][0] ? s->references[i] : "(a subtree the referral does not name)");
        tprintf(f, "%s: %zu %s read (%zu new), %zu recorded before, %zu deleted; %zu %s owe%s actions",
                s->dry_run ? "plan" : "reconcile", s->accounts_read, s->accounts_read == 1 ? "account" : "accounts",
                s->accounts_new, s->accounts_recorded, s->deleted, n, n == 1 ? "account" : "accounts",
                n == 1 ? "s" : "");
        if (s->adopt)
                tprintf(f, "; adopt: %zu %s as their current status, no action %s.\n", s->adopted,
                        s->dry_run ? "would be recorded" : "recorded", s->dry_run ? "would run" : "ran");
        else if (s->dry_run)
                tprintf(f, ", %zu actions would run.\n", s->steps_owed);
        else
                tprintf(f, "; actions: %zu done, %zu failed, %zu held.\n", s->steps_done, s->steps_failed,
                        s->steps_held);
        if (s->status_changes) {
                tprintf(f, "Status changes: %zu", s->status_changes);
                for (size_t i = 0; i < s->nper_transition; i++)
                        tprintf(f, "%s%s %zu", i ? ", " : " (", s->per_transition[i].transition[0]
                                                                    ? s->per_transition[i].transition
                                                                    : "no transition",
                                s->per_transition[i].n);
                tprintf(f, "%s.\n", s->nper_transition ? ")" : "");
        }
        if (s->spared)
                tprintf(f, "%zu recorded %s not seen but not swept as deleted: %s.\n", s->spared,
                        s->spared == 1 ? "account was" : "accounts were",
                        "what cannot be read is not gone");
        if (s->writebacks_failed)
                tprintf(f, "%zu write-backs failed (see the log).\n", s->writebacks_failed);
        if (s->fallback_problem[0])
                tprintf(f, "Warning: %s.\n", s->fallback_problem);
        if (s->parked)
                tprintf(f, "%s\n", s->parked_reason);
        if (s->interrupted_by)
                tprintf(f, "Stopped early by %s: what was in flight finished or is recorded as interrupted; the next "
                           "pass does the rest with the same keys.\n",
                        s->interrupted_by == SIGTERM ? "SIGTERM" : "SIGINT");
        if (s->not_reached)
                tprintf(f, "%zu %s that owe%s actions %s not reached and %s listed above; the next pass plans %s "
                           "again.\n",
                        s->not_reached, s->not_reached == 1 ? "account" : "accounts", s->not_reached == 1 ? "s" : "",
                        s->not_reached == 1 ? "was" : "were", s->not_reached == 1 ? "is not" : "are not",
                        s->not_reached == 1 ? "it" : "them");
}

/* ---- the report as the pass goes ------------------------------------------ */

void ob_report_start(struct ob_report_writer *w, FILE *f, bool json, const struct ob_config *c,
                     const struct ob_report_summary *s)
{
        *w = (struct ob_report_writer){.f = f, .json = json, .c = c};
        if (json)
                json_start(f, s);
}

void ob_report_add(struct ob_report_writer *w, const struct ob_report_item *it, const struct ob_report_summary *s)
{
        if (w->json) {
                if (w->n)
                        fputc(',', w->f);
                json_item(w->f, it);
        } else {
                text_item(w->f, w->c, it, s);
        }
        w->n++;
}

void ob_report_finish(struct ob_report_writer *w, const struct ob_report_summary *s)
{
        if (w->json)
                json_finish(w->f, w->n, s);
        else
                text_finish(w->f, w->n, s);
        fflush(w->f);
}

void ob_report_json(FILE *f, const struct ob_report_item *items, size_t n, const struct ob_report_summary *s)
{
        struct ob_report_writer w;
        ob_report_start(&w, f, true, NULL, s);
        for (size_t i = 0; i < n; i++)
                ob_report_add(&w, &items[i], s);
        ob_report_finish(&w, s);
}

void ob_report_text(FILE *f, const struct ob_config *c, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s)
{
        struct ob_report_writer w;
        ob_report_start(&w, f, false, c, s);
        for (size_t i = 0; i < n; i++)
                ob_report_add(&w, &items[i], s);
        ob_report_finish(&w, s);
}
