/* report.c: text and JSON reports of a plan or a reconcile (and the JSON
 * that report_html.c puts in a page). */
#define _GNU_SOURCE /* O_TMPFILE */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

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
        jkey(f, &first, "not_restored");
        fputc('[', f);
        for (size_t k = 0; p->not_restored && p->not_restored[k]; k++) {
                if (k)
                        fputc(',', f);
                jstr(f, p->not_restored[k]);
        }
        fputc(']', f);
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
                if (s->modules) {
                        /* Every module, those left with the leaver too (seed 000). */
                        struct ob_buf b;
                        ob_buf_init(&b);
                        jkey(f, &f2, "modules");
                        fputs(ob_step_modules_format(s, true, true, &b) == 0 ? b.data : "null", f);
                        ob_buf_free(&b);
                        jbool(f, &f2, "nothing_to_transfer", s->nothing_to_transfer);
                }
                if (s->state == OB_STEP_OWED) {
                        jkey(f, &f2, "request");
                        struct ob_report_json rj = {.f = f, .first = true};
                        fputc('{', f);
                        s->action->connector->kind->describe_json(s, &rj);
                        fputc('}', f);
                        jfield(f, &f2, "hold_reason", s->hold_reason);
                        if (s->due) {
                                char due[21];
                                ob_time_format_rfc3339(s->due, due);
                                jfield(f, &f2, "due", due);
                        }
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
        fprintf(f, ",\"usernames_reused\":%zu", s->usernames_reused);
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

/* An action's modules as they fall for the account, one line each. */
static void text_modules(FILE *f, const struct ob_step *st)
{
        for (size_t i = 0; st->modules && i < st->action->nmodules; i++) {
                struct ob_buf b;
                ob_buf_init(&b);
                int r = ob_step_module_text(st, i, &b);
                tprintf(f, "       module %s: %s\n", st->action->modules[i].name, r == 0 ? b.data : "?");
                ob_buf_free(&b);
        }
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
        if (it->results && st->state == OB_STEP_OWED && it->results[k].outcome > OB_OUTCOME_INTENT) {
                /* No status: no answer, or a kind that has none (exec). */
                if (it->results[k].http_status > 0)
                        tprintf(f, "  (HTTP %ld, %lld ms)", it->results[k].http_status,
                                (long long)it->results[k].duration_ms);
                else
                        tprintf(f, "  (%lld ms)", (long long)it->results[k].duration_ms);
        }
        fputc('\n', f);
        if (st->nothing_to_transfer) {
                tprintf(f, "       nothing to transfer: every module is none for this account\n");
                text_modules(f, st);
        }
        if (st->state != OB_STEP_OWED)
                return;
        if (held) {
                tprintf(f, "       held: %s\n", st->hold_reason);
                if (!it->results)
                        text_modules(f, st);
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
        text_modules(f, st);
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
        if (p->not_restored) {
                tprintf(f, "  not restored:");
                for (size_t k = 0; p->not_restored[k]; k++)
                        tprintf(f, "%s %s", k ? "," : "", p->not_restored[k]);
                tprintf(f, " (what the deactivation did that no action of this transition puts back)\n");
        }
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

/* ---- the text report's order: summary first, accounts grouped ------------ */

/* "1 account", "2 accounts". */
static const char *plural(size_t n, const char *one, const char *many)
{
        return n == 1 ? one : many;
}

/* Groups, in the order they are printed: what needs a human first, then
 * the transitions in the configuration's order, then accounts that owe only
 * a write-back. */
enum {
        GROUP_FAILED,
        GROUP_HELD,
        GROUP_WRITEBACK, /* printed last */
        GROUP_TRANSITION, /* + the transition's index in the configuration */
};

/* One account's text in the spool. */
struct spool_entry {
        size_t group;
        char *key; /* what it is sorted by in its group: username, or id */
        size_t seq;
        off_t off;
        size_t len;
};

/* A count for the summary: accounts per rule, or steps per action and state. */
struct tally {
        const char *name; /* borrowed from the configuration, or a literal */
        const char *what; /* steps: the state shown; rules: NULL */
        size_t n;
        size_t seq; /* first met: states of an action in that order */
};

struct ob_report_spool {
        /* The accounts' text until finish: a temporary file, so that the
         * report's memory does not grow with the accounts (10,000 of them
         * are a few megabytes of text). NULL: written as they come, in the
         * directory's order, with the summary last (no temporary file). */
        FILE *tmp;
        int tmp_errno;
        struct spool_entry *entries;
        size_t nentries, centries;
        size_t *groups; /* accounts per group */
        size_t ngroups;
        struct tally *rules, *actions;
        size_t nrules, crules, nactions, cactions;
        bool oom; /* a count or an entry was lost: the summary says so */
};

/* Room for one more of *v (size bytes each): 0, or -ENOMEM. */
static int grow(void *v, size_t *cap, size_t n, size_t size)
{
        void **p = v;
        if (n < *cap)
                return 0;
        size_t want = *cap ? *cap * 2 : 16;
        if (want < *cap || want > SIZE_MAX / size)
                return -ENOMEM;
        void *q = realloc(*p, want * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = want;
        return 0;
}

static void tally_add(struct ob_report_spool *sp, struct tally **v, size_t *n, size_t *cap, const char *name,
                      const char *what)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i].name, name) == 0 && (what == (*v)[i].what || (what && (*v)[i].what &&
                                                                                  strcmp(what, (*v)[i].what) == 0))) {
                        (*v)[i].n++;
                        return;
                }
        if (grow(v, cap, *n, sizeof(**v)) < 0) {
                sp->oom = true;
                return;
        }
        (*v)[*n] = (struct tally){.name = name, .what = what, .n = 1, .seq = *n};
        (*n)++;
}

static int tally_cmp(const void *a, const void *b)
{
        const struct tally *x = a, *y = b;
        int d = strcmp(x->name, y->name);
        if (d)
                return d;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Whether an owed step is held, as its line in the report says. */
static bool step_held(const struct ob_report_item *it, size_t k)
{
        const struct ob_step *st = &it->plan->steps[k];
        if (st->hold_reason && (!it->results || (it->results[k].outcome == OB_OUTCOME_NONE &&
                                                 !it->results[k].interrupted)))
                return true;
        return it->results && it->results[k].outcome == OB_OUTCOME_NONE && !it->results[k].interrupted;
}

/* Whether an owed step failed (or, in a plan, cannot but fail). */
static bool step_failed(const struct ob_report_item *it, size_t k)
{
        if (it->plan->steps[k].render_error)
                return true;
        return it->results && (it->results[k].outcome == OB_OUTCOME_FAILED ||
                               it->results[k].outcome == OB_OUTCOME_BLOCKED);
}

/* The state an owed step is counted under in the summary. */
static const char *step_tally(const struct ob_report_item *it, size_t k)
{
        if (step_failed(it, k))
                return it->results ? "failed" : "would fail";
        if (step_held(it, k))
                return "held";
        if (!it->results)
                return "would run";
        return step_outcome(it, k);
}

static size_t item_group(const struct ob_config *c, const struct ob_report_item *it,
                         const struct ob_report_summary *s)
{
        const struct ob_account_plan *p = it->plan;
        bool held = false;
        for (size_t k = 0; !s->adopt && k < p->nsteps; k++) {
                if (p->steps[k].state != OB_STEP_OWED)
                        continue;
                if (step_failed(it, k))
                        return GROUP_FAILED;
                held = held || step_held(it, k);
        }
        if (it->results && it->writeback_result < 0)
                return GROUP_FAILED;
        if (held)
                return GROUP_HELD;
        for (size_t i = 0; p->transition && c && i < c->ntransitions; i++)
                if (p->transition == &c->transitions[i])
                        return GROUP_TRANSITION + i;
        return GROUP_WRITEBACK;
}

static const char *group_name(const struct ob_config *c, size_t g)
{
        switch (g) {
        case GROUP_FAILED: return "failed";
        case GROUP_HELD: return "held";
        case GROUP_WRITEBACK: return "write-back only";
        default: return c->transitions[g - GROUP_TRANSITION].name;
        }
}

/* The order groups are printed in. */
static size_t group_rank(size_t g)
{
        return g == GROUP_WRITEBACK ? SIZE_MAX : g;
}

static int entry_cmp(const void *a, const void *b)
{
        const struct spool_entry *x = a, *y = b;
        size_t rx = group_rank(x->group), ry = group_rank(y->group);
        if (rx != ry)
                return rx < ry ? -1 : 1;
        int d = strcmp(x->key, y->key);
        if (d)
                return d;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The spool: unlinked and readable by this user alone, next to the state
 * store when its directory allows (as the pass's spill file), else in /tmp.
 * It holds what the report shows: no secret, only what the reader sees. */
static FILE *spool_open(const struct ob_config *c)
{
        if (c && c->state_path) {
                char *copy = strdup(c->state_path);
                int fd = copy ? open(dirname(copy), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) : -1;
                free(copy);
                FILE *f = fd >= 0 ? fdopen(fd, "w+") : NULL;
                if (f)
                        return f;
                if (fd >= 0)
                        close(fd);
        }
        return tmpfile();
}

static struct ob_report_spool *spool_new(const struct ob_config *c, bool summary_only)
{
        struct ob_report_spool *sp = calloc(1, sizeof(*sp));
        if (!sp)
                return NULL;
        sp->ngroups = GROUP_TRANSITION + (c ? c->ntransitions : 0);
        sp->groups = calloc(sp->ngroups, sizeof(*sp->groups));
        if (!sp->groups) {
                free(sp);
                return NULL;
        }
        if (!summary_only) {
                sp->tmp = spool_open(c);
                if (!sp->tmp)
                        sp->tmp_errno = errno;
        }
        return sp;
}

static void spool_free(struct ob_report_spool *sp)
{
        if (!sp)
                return;
        if (sp->tmp)
                fclose(sp->tmp);
        for (size_t i = 0; i < sp->nentries; i++)
                free(sp->entries[i].key);
        free(sp->entries);
        free(sp->groups);
        free(sp->rules);
        free(sp->actions);
        free(sp);
}

/* Counts the account for the summary; writes its text to the spool, or
 * (without one) to f at once. */
static void spool_add(struct ob_report_writer *w, const struct ob_report_item *it, const struct ob_report_summary *s)
{
        struct ob_report_spool *sp = w->spool;
        const struct ob_account_plan *p = it->plan;
        size_t g = item_group(w->c, it, s);
        sp->groups[g]++;
        tally_add(sp, &sp->rules, &sp->nrules, &sp->crules,
                  p->rule ? p->rule->name : p->deleted ? "(entry gone)" : "(no rule)", NULL);
        for (size_t k = 0; !s->adopt && k < p->nsteps; k++)
                if (p->steps[k].state == OB_STEP_OWED)
                        tally_add(sp, &sp->actions, &sp->nactions, &sp->cactions, p->steps[k].action->name,
                                  step_tally(it, k));
        if (w->summary_only)
                return;
        if (!sp->tmp) {
                text_item(w->f, w->c, it, s);
                return;
        }
        off_t off = ftello(sp->tmp);
        text_item(sp->tmp, w->c, it, s);
        off_t end = ftello(sp->tmp);
        const char *key = p->username ? p->username : p->id ? p->id : "";
        char *k = strdup(key);
        if (off < 0 || end < off || !k || grow(&sp->entries, &sp->centries, sp->nentries, sizeof(*sp->entries)) < 0) {
                free(k);
                sp->oom = true;
                return;
        }
        sp->entries[sp->nentries] = (struct spool_entry){
                .group = g, .key = k, .seq = sp->nentries, .off = off, .len = (size_t)(end - off)};
        sp->nentries++;
}

/* The accounts, group after group, each sorted by username. */
static void spool_write(struct ob_report_writer *w)
{
        struct ob_report_spool *sp = w->spool;
        if (!sp->tmp || !sp->nentries)
                return;
        if (fflush(sp->tmp) != 0) {
                sp->oom = true;
                return;
        }
        qsort(sp->entries, sp->nentries, sizeof(*sp->entries), entry_cmp);
        char buf[16384];
        for (size_t i = 0; i < sp->nentries; i++) {
                const struct spool_entry *e = &sp->entries[i];
                if (i == 0 || e->group != sp->entries[i - 1].group)
                        tprintf(w->f, "== %s: %zu %s ==\n\n", group_name(w->c, e->group), sp->groups[e->group],
                                plural(sp->groups[e->group], "account", "accounts"));
                if (fseeko(sp->tmp, e->off, SEEK_SET) != 0) {
                        sp->oom = true;
                        return;
                }
                for (size_t left = e->len; left;) {
                        size_t m = fread(buf, 1, left < sizeof(buf) ? left : sizeof(buf), sp->tmp);
                        if (m == 0) {
                                sp->oom = true;
                                return;
                        }
                        fwrite(buf, 1, m, w->f);
                        left -= m;
                }
        }
}

/* The circuit breaker's verdict, and what was held because it could not be
 * read: the first thing an operator needs to know about a pass. */
static void text_verdict(FILE *f, const struct ob_report_summary *s)
{
        if (s->parked_reason[0]) {
                /* Parked, or released by --force: the breaker says why. */
                tprintf(f, "%s\n", s->parked_reason);
        } else if (s->adopt) {
                tprintf(f, "Safety: --adopt runs no action; nothing to park.\n");
        } else if (!s->status_changes) {
                tprintf(f, "Safety: not parked; no account changes status.\n");
        } else {
                tprintf(f, "Safety: not parked; %zu %s status", s->status_changes,
                        plural(s->status_changes, "account changes", "accounts change"));
                for (size_t i = 0; i < s->nper_transition; i++)
                        tprintf(f, "%s%s %zu", i ? ", " : " (",
                                s->per_transition[i].transition[0] ? s->per_transition[i].transition
                                                                   : "no transition",
                                s->per_transition[i].n);
                tprintf(f, "%s.\n", s->nper_transition ? ")" : "");
        }
        if (s->unreadable) {
                tprintf(f, "%zu %s could not be judged and %s held (never taken for deleted or active):\n",
                        s->unreadable, plural(s->unreadable, "entry", "entries"), plural(s->unreadable, "is", "are"));
                for (size_t i = 0; i < s->nunreadable_list; i++)
                        tprintf(f, "  %s: %s\n", s->unreadable_list[i].dn, s->unreadable_list[i].reason);
                if (s->nunreadable_list < s->unreadable)
                        tprintf(f, "  ... and %zu more (see the log)\n", s->unreadable - s->nunreadable_list);
        }
        for (size_t i = 0; s->references && s->references[i]; i++)
                tprintf(f, "Not read: %s is held by another server (a referral); nothing under it is taken for "
                           "deleted.\n",
                        s->references[i][0] ? s->references[i] : "(a subtree the referral does not name)");
        if (s->spared)
                tprintf(f, "%zu recorded %s not seen but not swept as deleted: %s.\n", s->spared,
                        plural(s->spared, "account was", "accounts were"), "what cannot be read is not gone");
        if (s->fallback_problem[0])
                tprintf(f, "Warning: %s.\n", s->fallback_problem);
        if (s->usernames_reused)
                tprintf(f, "Warning: %zu new %s a username a deleted account had: %s (see the log).\n",
                        s->usernames_reused, plural(s->usernames_reused, "account has", "accounts have"),
                        "each is a new account and gets nothing of the old one's");
}

static void text_summary(struct ob_report_writer *w, const struct ob_report_summary *s)
{
        FILE *f = w->f;
        struct ob_report_spool *sp = w->spool;
        size_t n = w->n;
        tprintf(f, "%s: %zu %s read (%zu new), %zu recorded before, %zu deleted; %zu %s actions",
                s->dry_run ? "plan" : "reconcile", s->accounts_read, plural(s->accounts_read, "account", "accounts"),
                s->accounts_new, s->accounts_recorded, s->deleted, n, plural(n, "account owes", "accounts owe"));
        if (s->adopt)
                tprintf(f, "; adopt: %zu %s as their current status, no action %s.\n", s->adopted,
                        s->dry_run ? "would be recorded" : "recorded", s->dry_run ? "would run" : "ran");
        else if (s->dry_run)
                tprintf(f, ", %zu %s.\n", s->steps_owed, plural(s->steps_owed, "action would run",
                                                                 "actions would run"));
        else
                tprintf(f, "; actions: %zu done, %zu failed, %zu held.\n", s->steps_done, s->steps_failed,
                        s->steps_held);
        text_verdict(f, s);
        if (s->writebacks_failed)
                tprintf(f, "%zu %s failed (see the log).\n", s->writebacks_failed,
                        plural(s->writebacks_failed, "write-back", "write-backs"));
        if (s->interrupted_by)
                tprintf(f, "Stopped early by %s: what was in flight finished or is recorded as interrupted; the next "
                           "pass does the rest with the same keys.\n",
                        s->interrupted_by == SIGTERM ? "SIGTERM" : "SIGINT");
        if (s->not_reached)
                tprintf(f, "%zu %s that %s actions %s not reached and %s listed; the next pass plans %s again.\n",
                        s->not_reached, plural(s->not_reached, "account", "accounts"),
                        plural(s->not_reached, "owes", "owe"), plural(s->not_reached, "was", "were"),
                        plural(s->not_reached, "is not", "are not"), plural(s->not_reached, "it", "them"));
        if (!sp)
                return;
        if (n) {
                /* The groups below, in their order. */
                const char *sep = "Accounts: ";
                for (size_t r = 0; r < sp->ngroups; r++) {
                        /* failed, held, the transitions, write-back only */
                        size_t g = r < GROUP_WRITEBACK ? r : r + 1 < sp->ngroups ? r + 1 : GROUP_WRITEBACK;
                        if (!sp->groups[g])
                                continue;
                        tprintf(f, "%s%s %zu", sep, group_name(w->c, g), sp->groups[g]);
                        sep = ", ";
                }
                tprintf(f, ".\n");
        }
        if (sp->nrules)
                qsort(sp->rules, sp->nrules, sizeof(*sp->rules), tally_cmp);
        for (size_t i = 0; i < sp->nrules; i++)
                tprintf(f, i ? ", %s %zu" : "Rules: %s %zu", sp->rules[i].name, sp->rules[i].n);
        if (sp->nrules)
                tprintf(f, ".\n");
        /* Per action (by name), its states in the order first met. */
        if (sp->nactions)
                qsort(sp->actions, sp->nactions, sizeof(*sp->actions), tally_cmp);
        for (size_t i = 0; i < sp->nactions; i++) {
                const struct tally *t = &sp->actions[i];
                if (i && strcmp(t->name, sp->actions[i - 1].name) == 0)
                        tprintf(f, ", %zu %s", t->n, t->what);
                else
                        tprintf(f, i ? "; %s: %zu %s" : "Actions: %s: %zu %s", t->name, t->n, t->what);
        }
        if (sp->nactions)
                tprintf(f, ".\n");
        if (sp->oom)
                tprintf(f, "Warning: out of memory or temporary space: some accounts or counts are missing here "
                           "(the JSON report and the journal have them).\n");
        if (!w->summary_only && !sp->tmp && n)
                tprintf(f, "(The accounts are above, in the directory's order: no temporary file to sort them: %s.)\n",
                        strerror(sp->tmp_errno));
}

/* ---- the report as the pass goes ------------------------------------------ */

void ob_report_start(struct ob_report_writer *w, FILE *f, enum ob_format format, const struct ob_config *c,
                     const struct ob_report_summary *s)
{
        *w = (struct ob_report_writer){.f = f, .json = format != OB_FORMAT_TEXT, .c = c};
        if (format == OB_FORMAT_HTML) {
                w->html = f;
                w->f = ob_report_html_begin(f);
        }
        if (w->json && w->f)
                json_start(w->f, s);
}

void ob_report_add(struct ob_report_writer *w, const struct ob_report_item *it, const struct ob_report_summary *s)
{
        if (!w->f) {
                /* html without its JSON stream: the page says so. */
        } else if (w->json) {
                if (w->n)
                        fputc(',', w->f);
                json_item(w->f, it);
        } else {
                /* Made at the first account, so that summary_only may be set
                 * after ob_report_start. */
                if (!w->spool && !w->spool_failed && !(w->spool = spool_new(w->c, w->summary_only)))
                        w->spool_failed = true;
                if (w->spool)
                        spool_add(w, it, s);
                else if (!w->summary_only)
                        text_item(w->f, w->c, it, s);
        }
        w->n++;
}

void ob_report_finish(struct ob_report_writer *w, const struct ob_report_summary *s)
{
        if (w->json) {
                if (w->f)
                        json_finish(w->f, w->n, s);
                if (w->html) {
                        ob_report_html_end(w->f, w->html);
                        w->f = w->html;
                        w->html = NULL;
                }
        } else if (w->spool && w->spool->tmp) {
                text_summary(w, s);
                if (w->n)
                        fputc('\n', w->f);
                spool_write(w);
        } else {
                /* Without a spool the accounts (if any) are above: the
                 * summary follows them. */
                if (w->n && !w->summary_only)
                        fputc('\n', w->f);
                text_summary(w, s);
        }
        spool_free(w->spool);
        w->spool = NULL;
        fflush(w->f);
}

/* ---- progress on a terminal ---------------------------------------------- */

void ob_progress_init(struct ob_progress *p, FILE *f, bool tty, const char *verb, int64_t now_ms)
{
        *p = (struct ob_progress){
                .f = tty ? f : NULL, .verb = verb, .start_ms = now_ms, .next_ms = now_ms + OB_PROGRESS_AFTER_MS};
}

void ob_progress_note(struct ob_progress *p, int64_t now_ms, const char *what, size_t done, size_t total)
{
        if (!p->f || now_ms < p->next_ms)
                return;
        p->next_ms = now_ms + OB_PROGRESS_EVERY_MS;
        long long secs = (long long)((now_ms - p->start_ms) / 1000);
        fputc('\r', p->f);
        if (total)
                tprintf(p->f, "offboard %s: %s: %zu of %zu accounts (%lld s)", p->verb, what, done, total, secs);
        else
                tprintf(p->f, "offboard %s: %s: %zu accounts (%lld s)", p->verb, what, done, secs);
        /* Erase what a longer line left, and go back to the start. */
        fputs("\x1b[K\r", p->f);
        fflush(p->f);
        p->shown = true;
}

void ob_progress_clear(struct ob_progress *p)
{
        if (p->f && p->shown) {
                fputs("\r\x1b[K", p->f);
                fflush(p->f);
        }
        p->shown = false;
}

void ob_report_json(FILE *f, const struct ob_report_item *items, size_t n, const struct ob_report_summary *s)
{
        struct ob_report_writer w;
        ob_report_start(&w, f, OB_FORMAT_JSON, NULL, s);
        for (size_t i = 0; i < n; i++)
                ob_report_add(&w, &items[i], s);
        ob_report_finish(&w, s);
}

void ob_report_text(FILE *f, const struct ob_config *c, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s)
{
        struct ob_report_writer w;
        ob_report_start(&w, f, OB_FORMAT_TEXT, c, s);
        for (size_t i = 0; i < n; i++)
                ob_report_add(&w, &items[i], s);
        ob_report_finish(&w, s);
}
