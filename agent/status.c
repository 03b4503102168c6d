/* status.c: `offboard status` and `offboard retry` (see status.h).
 *
 * The report is written account by account as ob_state_foreach_attention
 * delivers them: each account is composed in one buffer and written at once,
 * and only the counts (per state, per connector: at most the configured
 * connectors plus "?") outlive it. Nothing is logged.
 */
#include "status.h"

#include <errno.h>
#include <string.h>

#include "escape.h"
#include "timeparse.h"
#include "util.h"

enum status_state {
        AS_PARKED,
        AS_FAILED,
        AS_WAITING,
        AS_IN_FLIGHT,
        AS_HELD,
        AS_DONE,
        AS_SKIPPED,
        _AS_MAX,
};

/* The states a human or a pass still has to deal with come first; the
 * summary counts those. */
#define AS_OPEN_MAX AS_DONE

static const char *const state_json[_AS_MAX] = {
        [AS_PARKED] = "parked",       [AS_FAILED] = "failed", [AS_WAITING] = "waiting",
        [AS_IN_FLIGHT] = "in_flight", [AS_HELD] = "held",     [AS_DONE] = "done",
        [AS_SKIPPED] = "skipped",
};

static const char *const state_text[_AS_MAX] = {
        [AS_PARKED] = "parked",
        [AS_FAILED] = "failed",
        [AS_WAITING] = "waiting",
        [AS_IN_FLIGHT] = "in flight or interrupted",
        [AS_HELD] = "held",
        [AS_DONE] = "done",
        [AS_SKIPPED] = "skipped",
};

static enum status_state action_state(const struct ob_action_record *a, int64_t now)
{
        if (a->outcome == OB_OUTCOME_DONE)
                return AS_DONE;
        if (a->outcome == OB_OUTCOME_SKIPPED)
                return AS_SKIPPED;
        if (a->parked)
                return AS_PARKED;
        if (a->outcome == OB_OUTCOME_FAILED)
                return AS_FAILED;
        if (a->not_before > now || a->due > now)
                return AS_WAITING;
        if (a->outcome == OB_OUTCOME_INTENT)
                return AS_IN_FLIGHT;
        return AS_HELD;
}

struct status_counts {
        size_t n[AS_OPEN_MAX];
};

struct status_ctx {
        const struct ob_config *c;
        bool json;
        FILE *out;
        int64_t now;
        struct ob_buf b; /* one account at a time */
        size_t accounts;
        size_t in_progress;
        size_t writebacks_owed;
        struct status_counts total;
        size_t nconnectors;
        struct status_counts *per_connector; /* nconnectors + 1 ("?") */
};

/* The index of the action's connector in c->connectors, or nconnectors for "?". */
static size_t connector_of(const struct status_ctx *x, const char *action, const char **ret_name)
{
        *ret_name = "?";
        if (!x->c || !action)
                return x->nconnectors;
        for (size_t i = 0; i < x->c->nactions; i++) {
                const struct ob_action *a = &x->c->actions[i];
                if (!a->name || strcmp(a->name, action) != 0 || !a->connector || !a->connector->name)
                        continue;
                for (size_t k = 0; k < x->nconnectors; k++)
                        if (x->c->connectors[k].name && strcmp(x->c->connectors[k].name, a->connector->name) == 0) {
                                *ret_name = x->c->connectors[k].name;
                                return k;
                        }
                *ret_name = a->connector->name;
                return x->nconnectors;
        }
        return x->nconnectors;
}

/* ---- text ---- */

static void tput(struct ob_buf *b, const char *s)
{
        if (s)
                (void)ob_escape_text(b, s, strlen(s)); /* fails only for memory: b->oom is sticky */
}

static const char *plural(size_t n, const char *one, const char *many)
{
        return n == 1 ? one : many;
}

static void text_account(struct status_ctx *x, const struct ob_attention *a)
{
        struct ob_buf *b = &x->b;

        if (a->username) {
                tput(b, a->username);
                ob_buf_adds(b, " (id ");
                tput(b, a->id);
                ob_buf_addc(b, ')');
        } else {
                ob_buf_adds(b, "id ");
                tput(b, a->id);
        }
        ob_buf_adds(b, "\n  dn: ");
        if (a->dn)
                tput(b, a->dn);
        else
                ob_buf_adds(b, "(unknown)");
        ob_buf_printf(b, "\n  status: %s", ob_status_name(a->status));
        if (a->pending_to)
                ob_buf_printf(b, ", changing %s -> %s (generation %lld)", ob_status_name(a->pending_from),
                              ob_status_name(a->pending_to), (long long)a->generation);
        ob_buf_addc(b, '\n');
        for (size_t i = 0; i < a->nactions; i++) {
                const struct ob_action_record *r = &a->actions[i];
                enum status_state st = action_state(r, x->now);
                const char *connector;
                (void)connector_of(x, r->action, &connector);
                ob_buf_adds(b, "    ");
                tput(b, r->action);
                ob_buf_adds(b, " [");
                tput(b, connector);
                ob_buf_printf(b, "]: %s, %d %s", ob_outcome_name(r->outcome), r->attempts,
                              plural((size_t)(r->attempts < 0 ? 0 : r->attempts), "attempt", "attempts"));
                if (r->http_status)
                        ob_buf_printf(b, ", last HTTP %ld", r->http_status);
                if (st == AS_PARKED)
                        ob_buf_adds(b, ", parked");
                else if (st == AS_IN_FLIGHT)
                        ob_buf_adds(b, ", in flight or interrupted");
                else if (st == AS_HELD)
                        ob_buf_adds(b, ", held");
                if (st < AS_DONE && st != AS_PARKED && r->not_before > x->now) {
                        char t[21];
                        ob_time_format_rfc3339(r->not_before, t);
                        ob_buf_printf(b, ", not before %s", t);
                }
                if (st < AS_DONE && r->due > x->now) {
                        char t[21];
                        ob_time_format_rfc3339(r->due, t);
                        ob_buf_printf(b, ", a stage due at %s", t);
                }
                ob_buf_addc(b, '\n');
                if (r->error && *r->error) {
                        ob_buf_adds(b, r->outcome == OB_OUTCOME_BLOCKED ? "      why: " : "      error: ");
                        tput(b, r->error);
                        ob_buf_addc(b, '\n');
                }
        }
        if (a->writeback_owed)
                ob_buf_adds(b, "  write-back owed: the status is not yet written onto the entry\n");
        ob_buf_addc(b, '\n');
}

static void text_counts(struct ob_buf *b, const struct status_counts *k)
{
        for (size_t i = 0; i < AS_OPEN_MAX; i++)
                ob_buf_printf(b, "%s%zu %s", i ? ", " : "", k->n[i], state_text[i]);
}

static void text_summary(struct status_ctx *x, bool needs_human)
{
        struct ob_buf *b = &x->b;

        if (x->accounts == 0) {
                ob_buf_adds(b, "nothing needs attention\n");
                return;
        }
        ob_buf_printf(b, "summary: %zu %s need%s attention (%zu %s in progress, %zu write-%s owed)\n",
                      x->accounts, plural(x->accounts, "account", "accounts"), x->accounts == 1 ? "s" : "",
                      x->in_progress, plural(x->in_progress, "transition", "transitions"), x->writebacks_owed,
                      plural(x->writebacks_owed, "back", "backs"));
        ob_buf_adds(b, "  actions: ");
        text_counts(b, &x->total);
        ob_buf_addc(b, '\n');
        for (size_t k = 0; k <= x->nconnectors; k++) {
                const struct status_counts *n = &x->per_connector[k];
                size_t sum = 0;
                for (size_t i = 0; i < AS_OPEN_MAX; i++)
                        sum += n->n[i];
                if (sum == 0)
                        continue;
                ob_buf_adds(b, "  connector ");
                tput(b, k < x->nconnectors ? x->c->connectors[k].name : "?");
                ob_buf_adds(b, ": ");
                text_counts(b, n);
                ob_buf_addc(b, '\n');
        }
        if (needs_human)
                ob_buf_adds(b, "a human is needed: fix the cause of what is parked or failed, then run "
                               "`offboard retry [ACCOUNT|ACTION]`; for a write-back owed, check that offboard may "
                               "write the entry (the next pass tries again)\n");
        else
                ob_buf_adds(b, "no human is needed: the next pass carries on\n");
}

/* ---- JSON ---- */

/* A JSON string; bytes that are not UTF-8 are written one by one as \u00XX
 * rather than refused, so a report is always produced. */
static void jstr(struct ob_buf *b, const char *s)
{
        if (!s) {
                ob_buf_adds(b, "null");
                return;
        }
        ob_buf_addc(b, '"');
        size_t mark = b->len;
        if (ob_escape_json(b, s, strlen(s)) == -OB_ETEMPLATE && !b->oom) {
                b->len = mark;
                if (b->data)
                        b->data[mark] = '\0';
                for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                ob_buf_printf(b, "\\%c", *c);
                        else if (*c < 0x20 || *c >= 0x7f)
                                ob_buf_printf(b, "\\u%04x", *c);
                        else
                                ob_buf_addc(b, (char)*c);
                }
        }
        ob_buf_addc(b, '"');
}

static void jkey(struct ob_buf *b, bool *first, const char *k)
{
        if (!*first)
                ob_buf_addc(b, ',');
        *first = false;
        jstr(b, k);
        ob_buf_addc(b, ':');
}

static void jtime(struct ob_buf *b, int64_t t)
{
        char s[21];
        if (t <= 0) {
                ob_buf_adds(b, "null");
                return;
        }
        ob_time_format_rfc3339(t, s);
        jstr(b, s);
}

static void json_account(struct status_ctx *x, const struct ob_attention *a)
{
        struct ob_buf *b = &x->b;
        bool f = true;

        if (x->accounts > 1)
                ob_buf_addc(b, ',');
        ob_buf_addc(b, '{');
        jkey(b, &f, "id");
        jstr(b, a->id);
        jkey(b, &f, "username");
        jstr(b, a->username);
        jkey(b, &f, "dn");
        jstr(b, a->dn);
        jkey(b, &f, "status");
        jstr(b, ob_status_name(a->status));
        jkey(b, &f, "pending");
        if (a->pending_to) {
                ob_buf_adds(b, "{\"from\":");
                jstr(b, ob_status_name(a->pending_from));
                ob_buf_adds(b, ",\"to\":");
                jstr(b, ob_status_name(a->pending_to));
                ob_buf_addc(b, '}');
        } else
                ob_buf_adds(b, "null");
        jkey(b, &f, "generation");
        ob_buf_printf(b, "%lld", (long long)a->generation);
        jkey(b, &f, "writeback_owed");
        ob_buf_adds(b, a->writeback_owed ? "true" : "false");
        jkey(b, &f, "actions");
        ob_buf_addc(b, '[');
        for (size_t i = 0; i < a->nactions; i++) {
                const struct ob_action_record *r = &a->actions[i];
                const char *connector;
                bool g = true;
                (void)connector_of(x, r->action, &connector);
                if (i)
                        ob_buf_addc(b, ',');
                ob_buf_addc(b, '{');
                jkey(b, &g, "action");
                jstr(b, r->action);
                jkey(b, &g, "connector");
                jstr(b, connector);
                jkey(b, &g, "state");
                jstr(b, state_json[action_state(r, x->now)]);
                jkey(b, &g, "outcome");
                jstr(b, ob_outcome_name(r->outcome));
                jkey(b, &g, "attempts");
                ob_buf_printf(b, "%d", r->attempts);
                jkey(b, &g, "http_status");
                ob_buf_printf(b, "%ld", r->http_status);
                jkey(b, &g, "error");
                jstr(b, r->error);
                jkey(b, &g, "parked");
                ob_buf_adds(b, r->parked ? "true" : "false");
                jkey(b, &g, "not_before");
                jtime(b, r->not_before);
                jkey(b, &g, "due");
                jtime(b, r->due);
                jkey(b, &g, "updated");
                jtime(b, r->updated);
                ob_buf_addc(b, '}');
        }
        ob_buf_adds(b, "]}");
}

static void json_counts(struct ob_buf *b, const struct status_counts *k)
{
        for (size_t i = 0; i < AS_OPEN_MAX; i++)
                ob_buf_printf(b, "%s\"%s\":%zu", i ? "," : "", state_json[i], k->n[i]);
}

static void json_summary(struct status_ctx *x, bool needs_human)
{
        struct ob_buf *b = &x->b;

        ob_buf_printf(b, "],\"summary\":{\"accounts\":%zu,\"in_progress\":%zu,\"writebacks_owed\":%zu,",
                      x->accounts, x->in_progress, x->writebacks_owed);
        json_counts(b, &x->total);
        ob_buf_printf(b, ",\"needs_human\":%s,\"connectors\":{", needs_human ? "true" : "false");
        bool first = true;
        for (size_t k = 0; k <= x->nconnectors; k++) {
                const struct status_counts *n = &x->per_connector[k];
                if (k == x->nconnectors) {
                        /* "?" only when something is counted there. */
                        size_t sum = 0;
                        for (size_t i = 0; i < AS_OPEN_MAX; i++)
                                sum += n->n[i];
                        if (sum == 0)
                                break;
                }
                jkey(b, &first, k < x->nconnectors ? x->c->connectors[k].name : "?");
                ob_buf_addc(b, '{');
                json_counts(b, n);
                ob_buf_addc(b, '}');
        }
        ob_buf_adds(b, "}}}\n");
}

/* ---- the walk ---- */

static int status_flush(struct status_ctx *x)
{
        if (x->b.oom)
                return -ENOMEM;
        if (x->b.len && fwrite(x->b.data, 1, x->b.len, x->out) != x->b.len)
                return -EIO;
        ob_buf_reset(&x->b);
        return 0;
}

static int status_account(const struct ob_attention *a, void *ud)
{
        struct status_ctx *x = ud;

        x->accounts++;
        if (a->pending_to)
                x->in_progress++;
        if (a->writeback_owed)
                x->writebacks_owed++;
        for (size_t i = 0; i < a->nactions; i++) {
                enum status_state st = action_state(&a->actions[i], x->now);
                const char *name;
                if (st >= AS_OPEN_MAX)
                        continue;
                x->total.n[st]++;
                x->per_connector[connector_of(x, a->actions[i].action, &name)].n[st]++;
        }
        if (x->json)
                json_account(x, a);
        else
                text_account(x, a);
        return status_flush(x);
}

/* The service, first: text. */
static void text_service(struct ob_buf *b, const struct ob_status_service *v)
{
        if (!v->running) {
                ob_buf_adds(b, "service: not running (no `offboard run` holds the state store)\n");
                return;
        }
        ob_buf_printf(b, "service: offboard run (pid %ld) holds the state store", v->pid);
        if (!v->listen) {
                ob_buf_adds(b, "; set service.listen to see its health here\n");
                return;
        }
        ob_buf_adds(b, "; /healthz at ");
        tput(b, v->listen);
        if (v->error) {
                ob_buf_adds(b, " did not answer: ");
                tput(b, v->error);
                ob_buf_addc(b, '\n');
                return;
        }
        ob_buf_printf(b, ": %d ", v->http_status);
        size_t n = v->health ? strlen(v->health) : 0;
        while (n && (v->health[n - 1] == '\n' || v->health[n - 1] == '\r'))
                n--;
        if (n)
                ob_escape_text(b, v->health, n);
        ob_buf_addc(b, '\n');
}

static void jstr(struct ob_buf *b, const char *s);

/* The service, first: JSON (after "time"). */
static void json_service(struct ob_buf *b, const struct ob_status_service *v)
{
        ob_buf_printf(b, "\"service\":{\"running\":%s", v->running ? "true" : "false");
        if (v->running)
                ob_buf_printf(b, ",\"pid\":%ld", v->pid);
        if (v->running && v->listen) {
                ob_buf_adds(b, ",\"listen\":");
                jstr(b, v->listen);
                if (v->error) {
                        ob_buf_adds(b, ",\"error\":");
                        jstr(b, v->error);
                } else {
                        ob_buf_printf(b, ",\"http_status\":%d,\"health\":", v->http_status);
                        jstr(b, v->health ? v->health : "");
                }
        }
        ob_buf_adds(b, "},");
}

int ob_status_report(struct ob_state *s, const struct ob_config *c, const struct ob_status_service *svc, bool json,
                     FILE *out, bool *ret_needs_human)
{
        struct status_ctx x = {
                .c = c,
                .json = json,
                .out = out,
                .now = ob_now(),
                .nconnectors = c ? c->nconnectors : 0,
        };
        int r;

        if (!s || !out)
                return -EINVAL;
        ob_buf_init(&x.b);
        x.per_connector = calloc(x.nconnectors + 1, sizeof(*x.per_connector));
        if (!x.per_connector)
                return -ENOMEM;
        if (json) {
                char now[21];
                ob_time_format_rfc3339(x.now, now);
                ob_buf_printf(&x.b, "{\"version\":1,\"kind\":\"status\",\"time\":\"%s\",", now);
                if (svc)
                        json_service(&x.b, svc);
                ob_buf_adds(&x.b, "\"accounts\":[");
        } else if (svc) {
                text_service(&x.b, svc);
        }
        r = status_flush(&x);
        if (r >= 0)
                r = ob_state_foreach_attention(s, status_account, &x);
        bool needs_human = x.total.n[AS_PARKED] || x.total.n[AS_FAILED] || x.writebacks_owed ||
                           (svc && svc->running && svc->listen && (svc->error || svc->http_status != 200));
        if (r >= 0) {
                if (json)
                        json_summary(&x, needs_human);
                else
                        text_summary(&x, needs_human);
                r = status_flush(&x);
        }
        if (r >= 0 && (fflush(out) != 0 || ferror(out)))
                r = -EIO;
        ob_buf_free(&x.b);
        free(x.per_connector);
        if (r < 0)
                return r;
        if (ret_needs_human)
                *ret_needs_human = needs_human;
        return 0;
}

/* ---- retry ---- */

int ob_status_retry(struct ob_state *s, const char *target, FILE *out)
{
        _cleanup_buf_ struct ob_buf b = {0};
        size_t n = 0, accounts = 0;
        bool by_action = false;
        int r;

        if (!s || !out)
                return -EINVAL;
        if (!target) {
                r = ob_state_release(s, NULL, NULL, &n, &accounts);
        } else {
                /* An action name first: that action for every account. */
                r = ob_state_release(s, NULL, target, &n, &accounts);
                by_action = r >= 0;
                if (r == -OB_ENOTFOUND)
                        r = ob_state_release(s, target, NULL, &n, &accounts);
        }
        if (r < 0)
                return r;

        if (n == 0) {
                ob_buf_adds(&b, "nothing to release");
                if (target) {
                        ob_buf_adds(&b, by_action ? " for action " : " for account ");
                        tput(&b, target);
                }
                ob_buf_adds(&b, ": no action of a transition in progress is parked or waiting\n");
        } else {
                ob_buf_printf(&b, "released %zu %s of %zu %s", n, plural(n, "action", "actions"), accounts,
                              plural(accounts, "account", "accounts"));
                if (target) {
                        ob_buf_adds(&b, by_action ? " (action " : " (account ");
                        tput(&b, target);
                        ob_buf_addc(&b, ')');
                }
                ob_buf_adds(&b, "; the next pass runs them\n");
        }
        if (b.oom)
                return -ENOMEM;
        if (fwrite(b.data, 1, b.len, out) != b.len || fflush(out) != 0)
                return -EIO;
        return 0;
}
