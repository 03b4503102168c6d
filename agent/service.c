/* service.c: `offboard run` (service.h). */
#define _GNU_SOURCE
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "notify.h"
#include "util.h"

/* A pass that could not reach the directory is tried again after 1 s, 2 s,
 * 4 s ... up to this, with full jitter, and never later than the interval. */
#define OB_SERVICE_MAX_BACKOFF_MS (5 * 60 * 1000)

struct service {
        const char *config_path;
        struct ob_config *cfg; /* in use; the agent borrows it */
        struct ob_agent *ag;
        FILE *devnull;         /* the per-pass report: the log line says what matters */
        struct ob_timer *pass_timer;
        struct ob_timer *watchdog_timer;
        int64_t watchdog_ms;
        bool pass_due;
        unsigned failures; /* passes in a row that could not reach the directory */
        uint64_t passes;
};

static void on_pass_due(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct service *s = ud;
        s->pass_timer = NULL;
        s->pass_due = true;
        ob_loop_stop(l);
}

/* Fed from the loop: a loop that no longer turns is a hung service. */
static void on_watchdog(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)t;
        struct service *s = ud;
        ob_notify("WATCHDOG=1");
        if (ob_loop_timer(l, s->watchdog_ms, on_watchdog, s, &s->watchdog_timer) < 0)
                s->watchdog_timer = NULL;
}

static void schedule_pass(struct service *s, int64_t delay_ms)
{
        if (s->pass_timer)
                ob_loop_timer_cancel(s->ag->loop, s->pass_timer);
        s->pass_timer = NULL;
        if (ob_loop_timer(s->ag->loop, delay_ms, on_pass_due, s, &s->pass_timer) < 0) {
                /* No timer: pass again at once rather than never. */
                s->pass_timer = NULL;
                s->pass_due = true;
        }
}

/* The delay after a pass that ended with code: the interval, or a backoff
 * while the directory cannot be reached. */
static int64_t next_delay(struct service *s, int code)
{
        int64_t interval = s->cfg->full_pass_interval_ms;
        if (code != OB_EXIT_DIRECTORY) {
                if (s->failures)
                        ob_log(OB_LOG_INFO, "event=directory_back failed_passes=%u", s->failures);
                s->failures = 0;
                return interval;
        }
        if (s->failures++ == 0)
                ob_log(OB_LOG_ERROR,
                       "event=directory_unusable note=\"passes are tried again with a growing delay; one line per "
                       "outage\"");
        int64_t cap = 1000;
        for (unsigned i = 1; i < s->failures && cap < OB_SERVICE_MAX_BACKOFF_MS; i++)
                cap *= 2;
        if (cap > OB_SERVICE_MAX_BACKOFF_MS)
                cap = OB_SERVICE_MAX_BACKOFF_MS;
        if (cap > interval)
                cap = interval;
        /* Full jitter, at least 100 ms: many agents do not come back at once. */
        int64_t d = 100 + (int64_t)(((uint64_t)rand() << 16 ^ (uint64_t)rand()) % (uint64_t)cap);
        return d < interval ? d : interval;
}

static void run_pass(struct service *s)
{
        struct ob_pass_result res = {0};
        struct ob_run_options o = {.out = s->devnull, .format = OB_FORMAT_TEXT, .result = &res};
        int64_t t0 = ob_loop_now_ms();
        int code = ob_agent_pass(s->ag, &o);
        int64_t ms = ob_loop_now_ms() - t0;
        s->passes++;
        fflush(s->devnull);
        ob_log(code == OB_EXIT_OK ? OB_LOG_INFO : OB_LOG_WARNING,
               "event=pass number=%llu exit=%d duration_ms=%lld accounts=%zu owed=%zu done=%zu failed=%zu held=%zu "
               "writebacks_failed=%zu unreadable=%zu parked=%s",
               (unsigned long long)s->passes, code, (long long)ms, res.accounts_read, res.steps_owed, res.steps_done,
               res.steps_failed, res.steps_held, res.writebacks_failed, res.unreadable, res.parked ? "yes" : "no");
        if (s->ag->stop_signal)
                return;
        int64_t delay = next_delay(s, code);
        schedule_pass(s, delay);
        ob_notify("STATUS=pass %llu: exit %d in %lld ms, %zu accounts, %zu actions done, %zu failed, %zu held%s; next "
                  "in %lld s",
                  (unsigned long long)s->passes, code, (long long)ms, res.accounts_read, res.steps_done,
                  res.steps_failed, res.steps_held, res.parked ? ", plan PARKED (safety threshold)" : "",
                  (long long)(delay + 999) / 1000);
}

/* SIGHUP: a new configuration, only if it is valid and keeps the state store
 * and journal (the agent holds them open). */
static bool reload(struct service *s)
{
        struct ob_config *n = NULL;
        struct ob_config_error err;
        if (ob_config_load(s->config_path, &n, &err) < 0) {
                ob_log(OB_LOG_ERROR, "event=reload_refused error=%s line=%s note=\"the running configuration stays\"",
                       ob_log_quote(err.message), ob_log_quote(err.line));
                ob_notify("STATUS=reload refused: %s", err.message);
                return false;
        }
        const char *why = strcmp(n->state_path, s->cfg->state_path) != 0 ? "state.path"
                          : strcmp(n->journal_path, s->cfg->journal_path) != 0 ? "state.journal"
                                                                               : NULL;
        if (why) {
                ob_log(OB_LOG_ERROR,
                       "event=reload_refused setting=%s note=\"a new state store or journal needs a restart; the "
                       "running configuration stays\"",
                       why);
                ob_config_free(n);
                return false;
        }
        s->ag->c = n;
        ob_config_free(s->cfg);
        s->cfg = n;
        ob_log(OB_LOG_INFO, "event=reloaded path=%s", ob_log_quote(s->config_path));
        return true;
}

int ob_service_run(const char *config_path, struct ob_config *cfg)
{
        struct service s = {.config_path = config_path, .cfg = cfg};
        srand((unsigned)getpid() ^ (unsigned)ob_loop_now_ms());
        /* One service per store; a reconcile that holds it is waited for. */
        int ret = ob_agent_open(cfg, true, true, &s.ag);
        if (ret != OB_EXIT_OK) {
                ob_config_free(cfg);
                return ret;
        }
        if (!(s.devnull = fopen("/dev/null", "w"))) {
                fprintf(stderr, "offboard: cannot open /dev/null: %s\n", strerror(errno));
                ob_agent_free(s.ag);
                ob_config_free(cfg);
                return OB_EXIT_FAILED;
        }
        struct ob_loop *l = s.ag->loop;
        s.watchdog_ms = ob_notify_watchdog_ms();
        if (s.watchdog_ms && ob_loop_timer(l, s.watchdog_ms, on_watchdog, &s, &s.watchdog_timer) < 0)
                s.watchdog_timer = NULL;
        ob_log(OB_LOG_INFO, "event=service_started config=%s full_pass_interval_ms=%lld watchdog_ms=%lld",
               ob_log_quote(config_path), (long long)cfg->full_pass_interval_ms, (long long)s.watchdog_ms);
        ob_notify("READY=1\nSTATUS=first pass");
        s.pass_due = true;
        while (!s.ag->stop_signal) {
                if (s.ag->reload) {
                        s.ag->reload = false;
                        if (reload(&s))
                                s.pass_due = true; /* the new rules apply now */
                }
                if (s.pass_due) {
                        s.pass_due = false;
                        run_pass(&s);
                        continue;
                }
                int k = ob_loop_run(l);
                if (k < 0) {
                        ob_log(OB_LOG_ERROR, "event=loop_failed error=%s", ob_log_quote(strerror(-k)));
                        ret = OB_EXIT_FAILED;
                        break;
                }
        }
        ob_notify("STOPPING=1");
        if (s.ag->stop_signal)
                ob_log(OB_LOG_INFO, "event=service_stopped signal=%s", s.ag->stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        if (s.pass_timer)
                ob_loop_timer_cancel(l, s.pass_timer);
        if (s.watchdog_timer)
                ob_loop_timer_cancel(l, s.watchdog_timer);
        fclose(s.devnull);
        ob_agent_free(s.ag);
        ob_config_free(s.cfg);
        return ret;
}
