/* main.c: the command line. The only place that decides the process's exit
 * status; every module below returns errors instead of exiting. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "directory.h"
#include "explain.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "service.h"
#include "state.h"
#include "status.h"
#include "util.h"

#ifndef OFFBOARD_VERSION
#define OFFBOARD_VERSION "dev"
#endif

#define DEFAULT_CONFIG "/etc/offboard/offboard.yaml"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: offboard COMMAND [OPTIONS]\n"
                "\n"
                "Keeps applications in step with the directory: when an account stops being active\n"
                "(locked, inactive, ended, deleted), runs the configured actions and writes back what it did.\n"
                "\n"
                "Commands:\n"
                "  validate            check the configuration and every mapping file it names; with\n"
                "                      --online also connect: TLS and CA, bind, server capabilities, base,\n"
                "                      teams search and transfer.fallback\n"
                "  plan                show what would be done to whom and why; changes nothing\n"
                "  reconcile           do what is owed: run the actions, record them, write back\n"
                "  run                 the service: a reconcile at start and every service.full_pass_interval,\n"
                "                      a pass over each account a change feed names (syncrepl, AD's USN or\n"
                "                      DirSync, modifyTimestamp: service.feed), /healthz and /metrics at\n"
                "                      service.listen, systemd notify (READY, STATUS, WATCHDOG), SIGHUP reloads\n"
                "  status              what is held back: failed, parked, waiting, owed write-backs, and\n"
                "                      whether the service runs and what its /healthz says\n"
                "                      (exit 1 when something needs a human)\n"
                "  retry [TARGET]      release parked actions (of an account or of an action; all by default)\n"
                "                      for the next pass\n"
                "  explain ACCOUNT     one account from every side: its plan (even when nothing is owed),\n"
                "                      the attribute values the rules read, what the state store records\n"
                "                      and every transition's actions with attempts, results and keys\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
                "  -f, --format FMT    report format: text (default) or json; plan and reconcile also\n"
                "                      html (one self-contained page with filters, for a browser)\n"
                "  -a, --account UID   only this account (no deletion sweep)\n"
                "      --check         plan: exit 1 when anything is owed (for monitoring)\n"
                "      --summary       plan, reconcile: print only the summary and the safety verdict, not\n"
                "                      the accounts (for timers and logs)\n"
                "      --force         reconcile: release a plan the safety threshold would park\n"
                "      --wait          reconcile: wait for a pass that holds the state store, then run\n"
                "      --adopt         first deployment: record every account's current status as done,\n"
                "                      running no action (plan --adopt shows what it would record)\n"
                "  -v, --verbose       debug logging\n"
                "  -q, --quiet         log errors only\n"
                "  -h, --help          this help\n"
                "  -V, --version       print the version\n"
                "\n"
                "Exit status: 0 all done; 1 some actions failed or are held, or entries could not be judged\n"
                "(plan --check: something is owed; status: something needs a human); 2 bad configuration,\n"
                "usage or state store, or another reconcile holds the store; 3 directory unreachable, search\n"
                "failed or cut short, an attribute the rules read vanished, or a referral hid accounts;\n"
                "4 safety threshold reached, plan parked; 5 stopped by SIGTERM/SIGINT (drained, the rest is owed).\n"
                "A first SIGTERM or SIGINT lets requests in flight finish (service.drain_timeout), a second stops at once.\n"
                "\n"
                "Secrets are read from files named in the configuration, never from the command line.\n");
}

/* validate --online: connects as a pass would (TLS and CA, bind, the
 * capabilities the configuration needs), then checks the base, the teams
 * search and transfer.fallback. What is wrong is logged with the setting
 * that fixes it. */
static int validate_online(const struct ob_config *cfg)
{
        struct ob_dir *d = NULL;
        int k = ob_dir_open(&cfg->directory, &d);
        if (k == 0)
                k = ob_dir_check(d, cfg->transfer_fallback);
        ob_dir_free(d);
        if (k == 0) {
                printf("%s: online: connected, bound and checked the base%s%s\n", cfg->directory.uri,
                       cfg->directory.teams_base ? ", the teams search" : "",
                       cfg->transfer_fallback ? " and transfer.fallback" : "");
                return OB_EXIT_OK;
        }
        fprintf(stderr, "offboard: validate --online: %s: %s\n", cfg->directory.uri, ob_strerror(k));
        if (k == -ENOMEM)
                return OB_EXIT_FAILED;
        return k == -OB_ECONFIG || k == -OB_EINSECURE || k == -OB_ENOTFOUND ? OB_EXIT_CONFIG : OB_EXIT_DIRECTORY;
}

/* Memory holds the bind password, API tokens and curl's request buffers: no
 * core file, and no ptrace or /proc/PID/mem by other processes of the same
 * user (PR_SET_DUMPABLE 0). Done before anything reads a secret. */
static void no_core_dumps(void)
{
        struct rlimit none = {0, 0};
        if (setrlimit(RLIMIT_CORE, &none) < 0)
                fprintf(stderr, "offboard: cannot disable core dumps: %s\n", strerror(errno));
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                fprintf(stderr, "offboard: cannot mark the process non-dumpable: %s\n", strerror(errno));
}

/* offboard status | retry [TARGET]: read (or release) what the state store
 * holds back. status exits 1 when something needs a human. */
static int state_command(const struct ob_config *c, bool retry, const char *target, bool json)
{
        struct ob_state *s = NULL;
        long holder = 0;
        int lock_fd = -1;
        if (retry && access(c->state_path, F_OK) != 0) {
                printf("no state store at %s yet: nothing to release\n", c->state_path);
                return OB_EXIT_OK;
        }
        if (retry) {
                /* Not beside an acting pass: it reads what it releases. */
                int k = ob_state_lock(c->state_path, false, &lock_fd, &holder);
                if (k < 0) {
                        fprintf(stderr, "offboard: %s\n",
                                k == -EBUSY ? "a reconcile is acting on the state store; run retry after it"
                                            : strerror(-k));
                        return OB_EXIT_CONFIG;
                }
        }
        int k = ob_state_open(c->state_path, !retry, &s);
        if (k < 0) {
                fprintf(stderr, "offboard: %s\n", ob_state_open_errmsg());
                if (lock_fd >= 0)
                        close(lock_fd);
                return OB_EXIT_CONFIG;
        }
        int ret = OB_EXIT_OK;
        if (retry) {
                k = ob_status_retry(s, target, stdout);
                if (k == -OB_ENOTFOUND) {
                        fprintf(stderr, "offboard: nothing in progress is named '%s' (an account's username or id, "
                                        "or an action)\n",
                                target ? target : "");
                        ret = OB_EXIT_FAILED;
                } else if (k < 0) {
                        fprintf(stderr, "offboard: %s\n", k == -EIO ? "cannot write the output" : ob_state_errmsg(s));
                        ret = OB_EXIT_CONFIG;
                }
        } else {
                /* Whether the service holds the store, and what it says of
                 * itself: it knows what the store does not (the feed, a
                 * directory outage, a parked plan). */
                struct ob_status_service svc = {.listen = c->listen};
                char *health = NULL;
                long pid = 0;
                if (ob_state_lock_holder(c->state_path, &pid) == 1 && ob_agent_pid_is_service(pid)) {
                        svc.running = true;
                        svc.pid = pid;
                }
                if (svc.running && c->listen) {
                        int e = ob_metrics_fetch(c->listen, "/healthz", 5000, &svc.http_status, &health);
                        svc.health = health;
                        if (e < 0)
                                svc.error = e == -ETIMEDOUT ? "no answer within 5 s (the service's loop is stuck?)"
                                                            : strerror(-e);
                }
                bool human = false;
                k = ob_status_report(s, c, &svc, json, stdout, &human);
                free(health);
                if (k < 0) {
                        fprintf(stderr, "offboard: %s\n", k == -EIO ? "cannot write the output" : ob_state_errmsg(s));
                        ret = OB_EXIT_CONFIG;
                } else if (human) {
                        ret = OB_EXIT_FAILED;
                }
        }
        ob_state_free(s);
        if (lock_fd >= 0)
                close(lock_fd);
        return ret;
}

/* validate: the files the configuration names exist, can be read and are
 * regular files; a credential readable by every user is a warning. */
struct file_check {
        const char *config;
        int problems;
};

static int check_file(const char *what, const char *path, bool secret, void *ud)
{
        struct file_check *fc = ud;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %s: %s: %s\n", fc->config, what, path, strerror(errno));
                fc->problems++;
        } else if (!S_ISREG(st.st_mode)) {
                fprintf(stderr, "%s: %s: %s: not a regular file\n", fc->config, what, path);
                fc->problems++;
        } else if (secret && (st.st_mode & S_IROTH)) {
                fprintf(stderr, "%s: warning: %s: %s holds a credential and every user can read it (chmod o-rwx)\n",
                        fc->config, what, path);
        }
        if (fd >= 0)
                close(fd);
        return 0;
}

/* offboard explain ACCOUNT: the plan of that account alone, kept whatever it
 * owes, then what the rules read and what the state store records. */
static int explain(const struct ob_config *c, struct ob_run_options *o, const char *username)
{
        struct ob_explain x = {0};
        char *report = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&report, &len);
        if (!out) {
                fprintf(stderr, "offboard: out of memory\n");
                return OB_EXIT_FAILED;
        }
        o->dry_run = true;
        o->account = username;
        o->explain = &x;
        o->out = out;
        struct ob_agent *ag = NULL;
        int ret = ob_agent_open(c, false, false, &ag);
        if (ret == OB_EXIT_OK)
                ret = ob_agent_pass(ag, o);
        ob_agent_free(ag);
        fclose(out);
        if (ret == OB_EXIT_OK || ret == OB_EXIT_FAILED) {
                struct ob_state *s = NULL;
                if (ob_state_open(c->state_path, true, &s) < 0) {
                        fprintf(stderr, "offboard: %s\n", ob_state_open_errmsg());
                        ret = OB_EXIT_CONFIG;
                } else if (ob_explain_print(stdout, o->format == OB_FORMAT_JSON, report, &x, username, s) < 0) {
                        fprintf(stderr, "offboard: %s\n", ob_state_errmsg(s));
                        ret = OB_EXIT_CONFIG;
                }
                ob_state_free(s);
        }
        free(report);
        ob_explain_clear(&x);
        return ret;
}

/* offboard VERB --help: that verb's synopsis, what it does and its options. */
static const struct verb_help {
        const char *verb, *synopsis, *text;
} verb_helps[] = {
        {"validate", "offboard validate [--config FILE] [--online]",
         "Check the configuration and every mapping file it names (each problem as file:line:col), and\n"
         "every file it names (missing, unreadable, a credential anyone can read). --online also\n"
         "connects: TLS and CA, bind, server capabilities, base, teams search, transfer.fallback.\n"},
        {"plan", "offboard plan [--config FILE] [--format text|json|html] [--account UID] [--check]\n"
                 "              [--summary] [--adopt]",
         "Show what would be done to whom and why; changes nothing. --check exits 1 when anything is\n"
         "owed; --summary prints only the summary and the safety verdict; --adopt shows what a first\n"
         "deployment would record.\n"},
        {"reconcile", "offboard reconcile [--config FILE] [--format text|json|html] [--account UID]\n"
                      "                   [--force] [--wait] [--summary] [--adopt]",
         "Do what is owed: run the actions, record them, write back. --force releases a plan the\n"
         "safety threshold would park; --wait queues behind a pass that holds the state store;\n"
         "--adopt records every account's current status as done, running nothing.\n"},
        {"run", "offboard run [--config FILE]",
         "The service: a whole pass at start and every service.full_pass_interval, a pass over each\n"
         "account a change feed names, /healthz and /metrics at service.listen, systemd notify;\n"
         "SIGHUP reloads a valid configuration, SIGTERM drains.\n"},
        {"status", "offboard status [--config FILE] [--format text|json]",
         "What the state store holds back (failed, parked, waiting, owed write-backs), and whether the\n"
         "service runs and what its /healthz says. Exit 1 when something needs a human.\n"},
        {"retry", "offboard retry [--config FILE] [ACCOUNT|ACTION]",
         "Release parked and waiting actions (of an account, of an action, or all) for the next pass.\n"},
        {"explain", "offboard explain [--config FILE] [--format text|json] ACCOUNT",
         "One account from every side: its plan (even when nothing is owed), the values the rules\n"
         "read, what the state store records and every transition's actions. Changes nothing.\n"},
};

static bool verb_usage(const char *verb, FILE *f)
{
        for (size_t i = 0; i < sizeof(verb_helps) / sizeof(verb_helps[0]); i++)
                if (strcmp(verb_helps[i].verb, verb) == 0) {
                        fprintf(f, "Usage: %s\n\n%s\nCommon options: -c/--config FILE (default " DEFAULT_CONFIG
                                   "), -v/--verbose, -q/--quiet.\nSee offboard --help and offboard(8).\n",
                                verb_helps[i].synopsis, verb_helps[i].text);
                        return true;
                }
        return false;
}

int main(int argc, char **argv)
{
        no_core_dumps();
        /* A peer that closed its end (a directory restarting, an HTTP
         * server, a reader of stdout gone) is an error to handle, never a
         * silent death: libldap writes its unbind and TLS close_notify
         * without MSG_NOSIGNAL. */
        signal(SIGPIPE, SIG_IGN);
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'}, {"format", required_argument, NULL, 'f'},
                {"account", required_argument, NULL, 'a'}, {"check", no_argument, NULL, 'k'},
                {"force", no_argument, NULL, 'F'},         {"verbose", no_argument, NULL, 'v'},
                {"wait", no_argument, NULL, 'W'},         {"adopt", no_argument, NULL, 'A'},
                {"quiet", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},       {"online", no_argument, NULL, 'O'},
                {"summary", no_argument, NULL, 'S'},
                {NULL, 0, NULL, 0},
        };
        const char *config = DEFAULT_CONFIG;
        struct ob_run_options o = {.out = stdout, .format = OB_FORMAT_TEXT};
        bool online = false; /* validate --online */
        bool help = false;
        int c;
        opterr = 0; /* our own message, without the program's full path */
        while ((c = getopt_long(argc, argv, ":c:f:a:vqhV", opts, NULL)) != -1) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'f':
                        if (strcmp(optarg, "json") == 0)
                                o.format = OB_FORMAT_JSON;
                        else if (strcmp(optarg, "text") == 0)
                                o.format = OB_FORMAT_TEXT;
                        else if (strcmp(optarg, "html") == 0)
                                o.format = OB_FORMAT_HTML;
                        else {
                                fprintf(stderr, "offboard: --format must be text, json or html, not '%s'\n", optarg);
                                return OB_EXIT_CONFIG;
                        }
                        break;
                case 'a':
                        if (o.account) {
                                fprintf(stderr, "offboard: --account is given twice ('%s', '%s'): one account at a "
                                                "time\n",
                                        o.account, optarg);
                                return OB_EXIT_CONFIG;
                        }
                        o.account = optarg;
                        break;
                case 'k': o.check = true; break;
                case 'F': o.force = true; break;
                case 'W': o.wait = true; break;
                case 'A': o.adopt = true; break;
                case 'O': online = true; break;
                case 'S': o.summary = true; break;
                case 'v': ob_log_set_level(OB_LOG_DEBUG); break;
                case 'q': ob_log_set_level(OB_LOG_ERROR); break;
                case 'h': help = true; break;
                case ':':
                        fprintf(stderr, "offboard: %s needs a value (try offboard --help)\n", argv[optind - 1]);
                        return OB_EXIT_CONFIG;
                case '?':
                        if (optopt)
                                fprintf(stderr, "offboard: unknown option '-%c' (try offboard --help)\n", optopt);
                        else
                                fprintf(stderr, "offboard: unknown option '%s' (try offboard --help)\n",
                                        argv[optind - 1]);
                        return OB_EXIT_CONFIG;
                case 'V': printf("offboard %s\n", OFFBOARD_VERSION); return OB_EXIT_OK;
                default: usage(stderr); return OB_EXIT_CONFIG;
                }
        }
        if (help) {
                /* offboard VERB --help: the verb's own; else everything. */
                if (optind >= argc || !verb_usage(argv[optind], stdout))
                        usage(stdout);
                return OB_EXIT_OK;
        }
        if (optind >= argc) {
                usage(stderr);
                return OB_EXIT_CONFIG;
        }
        const char *cmd = argv[optind++];
        const char *target = NULL; /* retry [ACCOUNT|ACTION] */
        if ((strcmp(cmd, "retry") == 0 || strcmp(cmd, "explain") == 0) && optind < argc)
                target = argv[optind++];
        if (optind < argc) {
                fprintf(stderr, "offboard: unexpected argument '%s'\n", argv[optind]);
                return OB_EXIT_CONFIG;
        }
        if (strcmp(cmd, "help") == 0) {
                usage(stdout);
                return OB_EXIT_OK;
        }
        bool is_plan = strcmp(cmd, "plan") == 0, is_reconcile = strcmp(cmd, "reconcile") == 0,
             is_validate = strcmp(cmd, "validate") == 0, is_status = strcmp(cmd, "status") == 0,
             is_retry = strcmp(cmd, "retry") == 0, is_run = strcmp(cmd, "run") == 0,
             is_explain = strcmp(cmd, "explain") == 0;
        if (!is_plan && !is_reconcile && !is_validate && !is_status && !is_retry && !is_run && !is_explain) {
                fprintf(stderr, "offboard: unknown command '%s' (try offboard --help)\n", cmd);
                return OB_EXIT_CONFIG;
        }
        if (is_explain && (!target || o.account || o.check || o.force || o.adopt || o.wait || o.summary)) {
                fprintf(stderr, "offboard: %s\n",
                        !target ? "explain needs an account: offboard explain USERNAME"
                                : "explain takes only --config and --format");
                return OB_EXIT_CONFIG;
        }
        if (o.check && !is_plan) {
                fprintf(stderr, "offboard: --check goes with plan\n");
                return OB_EXIT_CONFIG;
        }
        if (o.summary && ((!is_plan && !is_reconcile) || o.format == OB_FORMAT_JSON)) {
                fprintf(stderr, "offboard: --summary goes with plan or reconcile and the text report\n");
                return OB_EXIT_CONFIG;
        }
        if (o.format == OB_FORMAT_HTML && ((!is_plan && !is_reconcile) || o.summary)) {
                fprintf(stderr, "offboard: --format html goes with plan or reconcile, without --summary\n");
                return OB_EXIT_CONFIG;
        }
        if (o.force && !is_reconcile) {
                fprintf(stderr, "offboard: --force goes with reconcile\n");
                return OB_EXIT_CONFIG;
        }
        if (o.adopt && !is_reconcile && !is_plan) {
                fprintf(stderr, "offboard: --adopt goes with plan or reconcile\n");
                return OB_EXIT_CONFIG;
        }
        if (o.adopt && (o.force || o.account)) {
                fprintf(stderr, "offboard: --adopt records every account as it is; it takes no --force or --account\n");
                return OB_EXIT_CONFIG;
        }
        if (is_validate && o.format == OB_FORMAT_JSON) {
                fprintf(stderr, "offboard: validate has no --format: its errors are file:line:col lines\n");
                return OB_EXIT_CONFIG;
        }
        if (online && !is_validate) {
                fprintf(stderr, "offboard: --online goes with validate\n");
                return OB_EXIT_CONFIG;
        }
        if (o.wait && !is_reconcile) {
                fprintf(stderr, "offboard: --wait goes with reconcile\n");
                return OB_EXIT_CONFIG;
        }

        struct ob_config *cfg = NULL;
        struct ob_config_error err;
        if (is_validate) {
                /* validate: every error of the configuration and its mapping
                 * files, one "file:line:col: message" line each, as a compiler. */
                struct ob_config_errors errs;
                int r = ob_config_load_all(config, &cfg, &errs);
                ob_config_errors_print(&errs, stderr);
                if (r < 0 && errs.truncated)
                        fprintf(stderr, "offboard: the configuration has more than %zu errors\n", errs.n);
                else if (r < 0)
                        fprintf(stderr, "offboard: the configuration has %zu error%s\n", errs.n,
                                errs.n == 1 ? "" : "s");
                ob_config_errors_clear(&errs);
                if (r < 0)
                        return OB_EXIT_CONFIG;
        } else if (ob_config_load(config, &cfg, &err) < 0) {
                ob_config_error_print(&err, stderr);
                return OB_EXIT_CONFIG;
        }
        int ret = OB_EXIT_OK;
        if (is_run) {
                if (o.account || o.check || o.force || o.adopt || o.wait || o.format == OB_FORMAT_JSON) {
                        fprintf(stderr, "offboard: run takes only --config (it waits for a reconcile that holds "
                                        "the state store)\n");
                        ob_config_free(cfg);
                        return OB_EXIT_CONFIG;
                }
                return ob_service_run(config, cfg);
        }
        if (is_status || is_retry) {
                if (o.account || o.check || o.force || o.adopt || o.wait || (is_retry && o.format == OB_FORMAT_JSON)) {
                        fprintf(stderr, "offboard: %s takes only --config%s\n", cmd, is_status ? " and --format" : "");
                        ob_config_free(cfg);
                        return OB_EXIT_CONFIG;
                }
                ret = state_command(cfg, is_retry, target, o.format == OB_FORMAT_JSON);
        } else if (is_validate) {
                /* Every file it names, each problem said, before "valid". */
                struct file_check fc = {.config = cfg->path};
                ob_config_foreach_file(cfg, check_file, &fc);
                if (fc.problems) {
                        fprintf(stderr, "offboard: %d file%s the configuration names cannot be used\n", fc.problems,
                                fc.problems == 1 ? "" : "s");
                        ob_config_free(cfg);
                        return OB_EXIT_CONFIG;
                }
                printf("%s: valid: %zu mapping rule%s, %zu connector%s, %zu action%s, %zu transition%s\n", cfg->path,
                       cfg->nrules, cfg->nrules == 1 ? "" : "s", cfg->nconnectors, cfg->nconnectors == 1 ? "" : "s",
                       cfg->nactions, cfg->nactions == 1 ? "" : "s", cfg->ntransitions,
                       cfg->ntransitions == 1 ? "" : "s");
                printf("attributes requested:");
                for (size_t i = 0; cfg->directory.attributes && cfg->directory.attributes[i]; i++)
                        printf(" %s", cfg->directory.attributes[i]);
                printf(" %s\n", cfg->directory.id_attribute);
                if (online)
                        ret = validate_online(cfg);
        } else if (is_explain) {
                ret = explain(cfg, &o, target);
        } else {
                o.dry_run = is_plan;
                const char *now = getenv("OFFBOARD_NOW");
                if (now && is_plan) {
                        if (ob_parse_i64(now, &o.now) < 0 || o.now <= 0) {
                                fprintf(stderr, "offboard: OFFBOARD_NOW must be seconds since 1970, not '%s'\n", now);
                                ob_config_free(cfg);
                                return OB_EXIT_CONFIG;
                        }
                } else if (now) {
                        ob_log(OB_LOG_WARNING,
                               "event=clock_override_ignored note=\"OFFBOARD_NOW only moves the clock of plan; "
                               "reconcile acts on the real time\"");
                }
                /* The agent outlives the pass: `offboard run` will keep it. */
                struct ob_agent *ag = NULL;
                ret = ob_agent_open(cfg, !o.dry_run, o.wait, &ag);
                if (ret == OB_EXIT_OK)
                        ret = ob_agent_pass(ag, &o);
                ob_agent_free(ag);
        }
        ob_config_free(cfg);
        return ret;
}
