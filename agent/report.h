/* report.h: what a plan or a reconcile did, as text for people, JSON for
 * tools, or one HTML page for a browser (report_html.c). The JSON form is
 * documented in README.md ("JSON report") and keeps its field names within
 * a "version": 1 document. Secrets never reach here:
 * requests are rendered without credentials and the report shows the
 * connector's auth scheme as "<scheme> ***".
 */
#ifndef OB_REPORT_H
#define OB_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "plan.h"

struct ob_step_result {
        int outcome; /* enum ob_outcome; OB_OUTCOME_NONE: not attempted (held by after:) */
        long http_status;
        char *error;
        int64_t duration_ms;
        bool interrupted; /* not started, or abandoned, because of SIGTERM/SIGINT: still owed */
};

struct ob_report_item {
        struct ob_account_plan *plan;
        struct ob_step_result *results; /* one per step; NULL in a dry run */
        int writeback_result;           /* 0 written, <0 failed, 1 not attempted */
};

/* An entry that could not be judged (held): where and why. */
struct ob_report_unreadable {
        char *dn;
        char *reason;
};

/* Status changes the circuit breaker counted for one transition ("" when no
 * transition acts on the change). */
struct ob_report_count {
        const char *transition;
        size_t n;
};

struct ob_report_summary {
        bool dry_run;
        int64_t now;
        size_t accounts_read;
        size_t accounts_recorded; /* in the state store before the pass */
        size_t accounts_new;      /* seen for the first time */
        size_t usernames_reused;  /* new accounts whose username a deleted account had (seed 000) */
        size_t deleted;           /* recorded accounts the directory no longer has */
        size_t new_deactivations; /* active (or new) accounts that stop being active */
        size_t status_changes;    /* counted by the circuit breaker (reactivations included) */
        const struct ob_report_count *per_transition;
        size_t nper_transition;
        size_t unreadable;        /* entries that could not be judged: held, never swept */
        const struct ob_report_unreadable *unreadable_list; /* the first of them */
        size_t nunreadable_list;
        size_t spared;            /* recorded accounts unseen but not swept (unreadable, behind a referral) */
        char *const *references;  /* subtrees held by another server, not read (NULL-terminated or NULL) */
        bool parked;              /* the circuit breaker held the plan */
        char parked_reason[512];
        size_t steps_owed;
        size_t steps_done;
        size_t steps_failed;
        size_t steps_held;
        size_t writebacks_failed;
        int interrupted_by; /* the signal that stopped the pass early, or 0 */
        bool adopt;         /* --adopt: statuses recorded as applied, nothing run */
        char fallback_problem[768]; /* why transfer.fallback cannot take records, or "" */
        size_t adopted;
        size_t not_reached; /* owing accounts a signal stopped the pass before (not listed) */
};

struct ob_report_spool; /* report.c */

/* How a report is written: html is the JSON document inside one
 * self-contained page (report_html.c). */
enum ob_format { OB_FORMAT_TEXT, OB_FORMAT_JSON, OB_FORMAT_HTML };

/* A report written as the pass goes, so that it never holds every account:
 * start, then one add per account that owes something (or did something),
 * then finish with the summary. JSON has "accounts", then
 * "unreadable_accounts" and "summary", in the order added. Text starts with
 * the summary and the safety verdict (counts per group, rule and action),
 * then the accounts grouped (failed, held, each transition in the
 * configuration's order, write-back only), sorted by username in a group:
 * until finish their text waits in a temporary file, not in memory. */
struct ob_report_writer {
        FILE *f;   /* html: the JSON going into the page; NULL: no report can be written */
        FILE *html; /* html: the page (report_html.c), else NULL */
        bool json; /* json and html */
        const struct ob_config *c;
        size_t n; /* accounts added */
        /* Text: the summary and the verdict only (--summary); set before the
         * first ob_report_add. */
        bool summary_only;
        struct ob_report_spool *spool; /* text: owned, freed by finish */
        bool spool_failed;             /* out of memory: the accounts are written as added */
};

void ob_report_start(struct ob_report_writer *w, FILE *f, enum ob_format format, const struct ob_config *c,
                     const struct ob_report_summary *s);
void ob_report_add(struct ob_report_writer *w, const struct ob_report_item *it, const struct ob_report_summary *s);
void ob_report_finish(struct ob_report_writer *w, const struct ob_report_summary *s);

/* report_html.c: the page around the JSON report. begin writes the page's
 * head to out and returns a stream for the JSON document that writes it on
 * into out with '<', '>' and '&' as \u003c, \u003e and \u0026 (the same
 * JSON, which can then never end the script element it is in); NULL (and
 * errno) when no stream can be had: the page written then says so, whole.
 * end closes that stream and writes the rest of the page (the script that
 * draws the report) to out. */
FILE *ob_report_html_begin(FILE *out);
void ob_report_html_end(FILE *json, FILE *out);

/* For a connector kind's describe hooks (connector.h). */

/* printf for a text report, the one way a kind writes to it: every %s and
 * %c argument goes through ob_escape_text (escape.h): C0 and C1 controls,
 * DEL, bidi overrides and bytes that are not UTF-8 are shown as \x1b or
 * \u202E, never sent to the terminal; valid UTF-8 is printed as is. The
 * format's own text is escaped too, but for its newlines. Understands '-',
 * a width, and d i u x c s with l, ll or z; any other conversion is printed
 * as written and takes no argument. */
__attribute__((format(printf, 2, 3))) void ob_report_printf(FILE *f, const char *fmt, ...);

/* The members of a JSON object being written. */
struct ob_report_json {
        FILE *f;
        bool first;      /* no member written yet */
        bool list_first; /* no item in the open list yet */
};

/* "key": "value", or null when value is NULL. */
void ob_report_json_string(struct ob_report_json *j, const char *key, const char *value);
/* "key": [ items ] */
void ob_report_json_list_begin(struct ob_report_json *j, const char *key);
void ob_report_json_list_item(struct ob_report_json *j, const char *value);
/* The item "name: ***": a secret's name, never its value. */
void ob_report_json_list_masked(struct ob_report_json *j, const char *name);
void ob_report_json_list_end(struct ob_report_json *j);

/* Progress of a long pass, for a person at a terminal: one line on stderr,
 * rewritten in place, once the pass has run OB_PROGRESS_AFTER_MS, at most
 * every OB_PROGRESS_EVERY_MS. Nothing at all when stderr is not a terminal
 * (a journal, a pipe, a file). The line ends with the cursor at its start,
 * so a log line written meanwhile overwrites it instead of following it. */
#define OB_PROGRESS_AFTER_MS 3000
#define OB_PROGRESS_EVERY_MS 250

struct ob_progress {
        FILE *f; /* NULL: off */
        const char *verb; /* "plan", "reconcile" */
        int64_t start_ms;
        int64_t next_ms;
        bool shown; /* a line is on the terminal */
};

/* On only when tty (isatty of f's descriptor, asked by the caller). */
void ob_progress_init(struct ob_progress *p, FILE *f, bool tty, const char *verb, int64_t now_ms);
/* "what: done of total accounts" (total 0: not known yet). */
void ob_progress_note(struct ob_progress *p, int64_t now_ms, const char *what, size_t done, size_t total);
/* Takes the line away, before the report or an error is printed. */
void ob_progress_clear(struct ob_progress *p);

/* The whole report of items[0..n) at once. */
void ob_report_text(FILE *f, const struct ob_config *c, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s);
void ob_report_json(FILE *f, const struct ob_report_item *items, size_t n,
                    const struct ob_report_summary *s);

#endif
