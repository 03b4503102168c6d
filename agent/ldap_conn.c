/* ldap_conn.c: running an ldap connector's steps on the loop (ldap_conn.h).
 *
 * The connector holds a directory session of its own, opened by new with
 * the configuration's directory: section (reached through the pointer the
 * kind's check_uses left in the connector's settings), its uri and bind
 * replaced by the connector's when it has them, and attached to the loop.
 * Opening connects and binds before the loop goes on, as the pass's own
 * session does; a session found lost is opened again by the next start.
 * Every operation afterwards is a request whose answer the loop reads
 * (directory.h), so a step never blocks the loop.
 *
 * A step of remove_from_groups searches, one attribute after the other,
 * for the groups that list the account, then deletes the value from each,
 * one at a time. What it removed is logged (event=ldap_group_removed) and
 * written in the outcome's excerpt and its detail (the state store keeps
 * it: ob_response.detail), done or failed half-way. Finding no group is
 * done only once groups_base is read: a base that is not there (a typo, an
 * ACL) must not pass for "listed nowhere".
 *
 * A step of restore_groups adds each recorded value back to its group, one
 * at a time: a value already there is done (permissive modify; where the
 * server refuses it all the same, as Samba does, a search of the group for
 * the value decides), a group that no longer exists is reported (excerpt,
 * event=ldap_group_gone) and the others go on; any other failure fails the
 * step, whose detail keeps the whole list for its next attempt (which adds
 * again what is there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "ldap_conn.h"
#include "log.h"
#include "plan.h"
#include "util.h"

/* Groups one step may remove the account from; more fails the step. */
#define OB_LDAP_MAX_GROUPS 10000

struct ob_ldap_job;

struct ob_ldap {
        struct ob_loop *loop;
        const struct ob_connector *cfg;
        struct ob_dir *dir;
        struct ob_ldap_job *jobs; /* accepted, not yet answered */
        int depth;                /* inside a done callback */
        bool closing;
};

struct ob_ldap_group {
        size_t attr; /* index of the membership attribute */
        char *dn;
};

struct ob_ldap_job {
        struct ob_ldap_job *next;
        struct ob_ldap *c;
        ob_connector_done_fn done;
        void *userdata;
        int64_t started;
        struct ob_timer *timer; /* the answer, on its way (ob_ldap_finish_later) */
        int result;
        enum ob_ldap_operation op;
        char *dn;
        char *uid;
        char *groups_base;
        unsigned group_attrs;
        size_t attr; /* remove: the attribute being searched */
        struct ob_ldap_group *groups;
        size_t ngroups, next_group;
        char *new_parent;
        char *new_dn;
        struct ob_buf what; /* the excerpt: what was done */
        char error[200];
        /* The detail: memberships removed (remove_from_groups) or to put
         * back (restore_groups). */
        struct ob_ldap_detail detail;
        bool has_detail;                    /* the step answers with a detail (even empty) */
        struct ob_ldap_membership *restore; /* restore_groups: the recorded list */
        size_t nrestore;
        size_t gone;   /* groups that no longer exist */
        int add_error; /* restore: the add's error, while a search checks whether the value is there */
        bool listed;   /* ... and the search found the group listing it */
};

/* ---- the session ----------------------------------------------------------- */

static int ob_ldap_open(struct ob_ldap *c)
{
        const struct ob_ldap_connector *l = c->cfg->settings;
        if (!l->directory)
                return -EINVAL;
        /* ob_dir_open copies what it keeps: a changed copy of the section will do. */
        struct ob_directory_config d = *l->directory;
        d.timeout_ms = c->cfg->timeout_ms; /* the connector's timeout: (each request, the bind included) */
        if (l->uri)
                d.uri = l->uri;
        if (l->bind_dn) {
                d.bind_dn = l->bind_dn;
                d.bind_password_file = l->bind_password_file;
                d.sasl_external = false;
        }
        struct ob_dir *dir = NULL;
        int r = ob_dir_open(&d, &dir);
        if (r == 0 && (r = ob_dir_attach(dir, c->loop)) < 0)
                ob_dir_free(dir);
        if (r < 0)
                return r;
        c->dir = dir;
        return 0;
}

int ob_ldap_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret)
{
        if (!loop || !cfg || !ret)
                return -EINVAL;
        struct ob_ldap *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->loop = loop;
        c->cfg = cfg;
        int r = ob_ldap_open(c);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static void ob_ldap_job_free(struct ob_ldap_job *j)
{
        if (!j)
                return;
        for (struct ob_ldap_job **p = &j->c->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        if (j->timer)
                ob_loop_timer_cancel(j->c->loop, j->timer);
        free(j->dn);
        free(j->uid);
        free(j->groups_base);
        for (size_t i = 0; i < j->ngroups; i++)
                free(j->groups[i].dn);
        free(j->groups);
        free(j->new_parent);
        free(j->new_dn);
        ob_buf_free(&j->what);
        ob_ldap_detail_clear(&j->detail);
        ob_ldap_memberships_free(j->restore, j->nrestore);
        free(j);
}

static void ob_ldap_destroy(struct ob_ldap *c)
{
        /* Freeing the session fails what is in flight (-ECANCELED): those
         * jobs are freed unanswered, as the connector goes. */
        ob_dir_free(c->dir);
        c->dir = NULL;
        while (c->jobs)
                ob_ldap_job_free(c->jobs);
        free(c);
}

void ob_ldap_free(void *p)
{
        struct ob_ldap *c = p;
        if (!c || c->closing)
                return;
        c->closing = true;
        if (c->depth == 0)
                ob_ldap_destroy(c);
}

/* ---- answering ------------------------------------------------------------- */

/* Answers the step (result 0: done) and frees the job; from a timer, never
 * from inside the session's callbacks: done may free the connector (the
 * executor pauses one that keeps failing), and its session with it, which
 * the session's own code could not survive. */
static void ob_ldap_answer(struct ob_ldap_job *j, int result)
{
        struct ob_ldap *c = j->c;
        struct ob_response resp = {.result = result, .retry_after_s = -1};
        resp.duration_ms = ob_loop_now_ms() - j->started;
        if (j->what.data)
                snprintf(resp.excerpt, sizeof(resp.excerpt), "%s", j->what.data);
        if (result < 0) {
                resp.result = -OB_EDIRECTORY;
                snprintf(resp.error, sizeof(resp.error), "LDAP: %s: %s", j->error[0] ? j->error : "failed",
                         ob_strerror(result));
                /* An entry that is not there stays so; anything else (the
                 * server, the connection, a timeout) may pass. */
                resp.transport = result != -OB_ENOTFOUND && result != -EINVAL && result != -OB_ELIMIT;
        }
        /* The detail as JSON, {"memberships": [...], "cut": N}: it dies
         * with the call. */
        _cleanup_free_ char *detail = NULL;
        if (j->has_detail) {
                detail = ob_ldap_detail_dump(&j->detail);
                if (!detail && !resp.error[0]) {
                        /* No memory to say what was done: the step cannot be
                         * recorded done without it. */
                        resp.result = -OB_EDIRECTORY;
                        snprintf(resp.error, sizeof(resp.error), "LDAP: recording what was done: %s",
                                 ob_strerror(-ENOMEM));
                        resp.transport = true;
                }
                resp.detail = detail;
        }
        ob_connector_done_fn done = j->done;
        void *ud = j->userdata;
        ob_ldap_job_free(j);
        c->depth++;
        done(&resp, ud);
        c->depth--;
        if (c->closing && c->depth == 0)
                ob_ldap_destroy(c);
}

static void ob_ldap_on_answer(struct ob_loop *l, struct ob_timer *t, void *ud)
{
        (void)l;
        (void)t;
        struct ob_ldap_job *j = ud;
        j->timer = NULL;
        ob_ldap_answer(j, j->result);
}

/* The step's result, answered on the next loop turn; a connector being
 * freed answers nothing. */
static int ob_ldap_finish_later(struct ob_ldap_job *j, int result)
{
        j->result = result;
        return ob_loop_timer(j->c->loop, 0, ob_ldap_on_answer, j, &j->timer);
}

static void ob_ldap_finish(struct ob_ldap_job *j, int result)
{
        if (j->c->closing)
                ob_ldap_job_free(j);
        else if (ob_ldap_finish_later(j, result) < 0)
                ob_ldap_answer(j, result); /* no memory for a timer: at once, at the session's risk */
}

__attribute__((format(printf, 2, 3))) static void ob_ldap_what(struct ob_ldap_job *j, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (j->what.len)
                ob_buf_adds(&j->what, "; ");
        ob_buf_vprintf(&j->what, fmt, ap);
        va_end(ap);
}

/* ---- remove_from_groups ------------------------------------------------------- */

static void ob_ldap_search_next(struct ob_ldap_job *j);
static void ob_ldap_delete_next(struct ob_ldap_job *j);

static const char *ob_ldap_value(const struct ob_ldap_job *j, size_t attr)
{
        return (1u << attr) == OB_LDAP_MEMBER_UID ? j->uid : j->dn;
}

static int ob_ldap_on_group(const struct ob_account *a, void *ud)
{
        struct ob_ldap_job *j = ud;
        if (!a->dn)
                return 0;
        if (j->ngroups >= OB_LDAP_MAX_GROUPS) {
                snprintf(j->error, sizeof(j->error), "more than %d groups list %s", OB_LDAP_MAX_GROUPS,
                         ob_ldap_group_attr_name(j->attr));
                return -OB_ELIMIT;
        }
        struct ob_ldap_group *g = realloc(j->groups, (j->ngroups + 1) * sizeof(*g));
        if (!g)
                return -ENOMEM;
        j->groups = g;
        if (!(g[j->ngroups].dn = strdup(a->dn)))
                return -ENOMEM;
        g[j->ngroups++].attr = j->attr;
        return 0;
}

static void ob_ldap_on_searched(int result, struct ob_dir_search_info *info, void *ud)
{
        struct ob_ldap_job *j = ud;
        if (result == 0 && info && info->references) {
                /* A part of the tree another server holds was not searched:
                 * "listed nowhere" could be false. */
                snprintf(j->error, sizeof(j->error), "searching %s under %s: a part of it is held by another server",
                         ob_ldap_group_attr_name(j->attr), j->groups_base);
                result = -OB_EDIRECTORY;
        }
        if (result < 0) {
                if (!j->error[0])
                        snprintf(j->error, sizeof(j->error), "searching the groups under %s", j->groups_base);
                ob_ldap_finish(j, result);
                return;
        }
        j->attr++;
        ob_ldap_search_next(j);
}

static void ob_ldap_on_base(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_ldap_job *j = ud;
        if (!a) {
                snprintf(j->error, sizeof(j->error), "groups_base %s%s", j->groups_base,
                         err == -OB_ENOTFOUND ? " does not exist, or the connector cannot see it" : "");
                ob_ldap_finish(j, err < 0 ? err : -OB_ENOTFOUND);
                return;
        }
        ob_ldap_what(j, "listed in no group under %s", j->groups_base);
        ob_ldap_finish(j, 0);
}

static void ob_ldap_search_next(struct ob_ldap_job *j)
{
        while (j->attr < OB_LDAP_GROUP_ATTRS && (!(j->group_attrs & (1u << j->attr)) || !ob_ldap_value(j, j->attr)))
                j->attr++;
        if (j->attr == OB_LDAP_GROUP_ATTRS) {
                if (j->ngroups > 0) {
                        ob_ldap_delete_next(j);
                        return;
                }
                /* Nothing found: so be it, if groups_base is there at all. */
                static char *none[] = {(char *)"1.1", NULL};
                int r = ob_dir_read_start(j->c->dir, j->groups_base, none, ob_ldap_on_base, j);
                if (r < 0) {
                        snprintf(j->error, sizeof(j->error), "reading groups_base %s", j->groups_base);
                        ob_ldap_finish(j, r);
                }
                return;
        }
        int r = ob_dir_search_listing_start(j->c->dir, j->groups_base, ob_ldap_group_attr_name(j->attr),
                                            ob_ldap_value(j, j->attr), ob_ldap_on_group, ob_ldap_on_searched, j);
        if (r < 0) {
                snprintf(j->error, sizeof(j->error), "searching the groups under %s", j->groups_base);
                ob_ldap_finish(j, r);
        }
}

static void ob_ldap_on_deleted(int result, void *ud)
{
        struct ob_ldap_job *j = ud;
        const struct ob_ldap_group *g = &j->groups[j->next_group];
        const char *attr = ob_ldap_group_attr_name(g->attr);
        if (result == -OB_ENOTFOUND) {
                result = 0; /* the group is gone: it lists no one */
        } else if (result == 0) {
                ob_ldap_what(j, "removed %s from %s", attr, g->dn);
                ob_ldap_detail_add(&j->detail, g->dn, attr, ob_ldap_value(j, g->attr));
                if (!j->c->closing)
                        ob_log(OB_LOG_INFO, "event=ldap_group_removed connector=%s dn=%s attribute=%s group=%s",
                               j->c->cfg->name, ob_log_quote(j->dn), attr, ob_log_quote(g->dn));
        }
        if (result < 0) {
                snprintf(j->error, sizeof(j->error), "removing %s from %s", attr, g->dn);
                ob_ldap_finish(j, result);
                return;
        }
        j->next_group++;
        ob_ldap_delete_next(j);
}

static void ob_ldap_delete_next(struct ob_ldap_job *j)
{
        if (j->next_group == j->ngroups) {
                ob_ldap_finish(j, 0);
                return;
        }
        const struct ob_ldap_group *g = &j->groups[j->next_group];
        int r = ob_dir_delete_value_start(j->c->dir, g->dn, ob_ldap_group_attr_name(g->attr), ob_ldap_value(j, g->attr),
                                          ob_ldap_on_deleted, j);
        if (r < 0) {
                snprintf(j->error, sizeof(j->error), "removing %s from %s", ob_ldap_group_attr_name(g->attr), g->dn);
                ob_ldap_finish(j, r);
        }
}

/* ---- move -------------------------------------------------------------------- */

static void ob_ldap_on_found_moved(const char *dn, const struct ob_account *a, int err, void *ud)
{
        (void)dn;
        struct ob_ldap_job *j = ud;
        if (a) {
                ob_ldap_what(j, "already at %s", j->new_dn);
                ob_ldap_finish(j, 0);
                return;
        }
        snprintf(j->error, sizeof(j->error), "moving %s: the entry is neither there nor at %s", j->dn, j->new_dn);
        ob_ldap_finish(j, err < 0 ? err : -OB_ENOTFOUND);
}

static void ob_ldap_on_moved(int result, void *ud)
{
        struct ob_ldap_job *j = ud;
        if (result == -OB_ENOTFOUND && !j->c->closing) {
                /* Moved by an earlier attempt whose outcome was not recorded? */
                static char *none[] = {(char *)"1.1", NULL};
                int r = ob_dir_read_start(j->c->dir, j->new_dn, none, ob_ldap_on_found_moved, j);
                if (r == 0)
                        return;
                result = r;
        }
        if (result == 0) {
                ob_ldap_what(j, "moved to %s", j->new_dn);
                if (!j->c->closing)
                        ob_log(OB_LOG_INFO, "event=ldap_moved connector=%s dn=%s new_dn=%s", j->c->cfg->name,
                               ob_log_quote(j->dn), ob_log_quote(j->new_dn));
        } else {
                snprintf(j->error, sizeof(j->error), "moving %s under %s", j->dn, j->new_parent);
        }
        ob_ldap_finish(j, result);
}

static int ob_ldap_start_move(struct ob_ldap_job *j, const struct ob_ldap_rendered *q)
{
        if (!(j->new_parent = strdup(q->new_parent)))
                return -ENOMEM;
        int r = ob_dn_moved(j->dn, j->new_parent, &j->new_dn);
        if (r < 0)
                return r;
        if (ob_dn_equal(j->new_dn, j->dn) == 1) {
                ob_ldap_what(j, "already under %s", j->new_parent);
                return ob_ldap_finish_later(j, 0);
        }
        return ob_dir_move_start(j->c->dir, j->dn, j->new_parent, ob_ldap_on_moved, j);
}

/* ---- modify ------------------------------------------------------------------- */

static void ob_ldap_on_modified(int result, void *ud)
{
        struct ob_ldap_job *j = ud;
        if (result < 0)
                snprintf(j->error, sizeof(j->error), "modifying %s", j->dn);
        else if (!j->c->closing)
                ob_log(OB_LOG_INFO, "event=ldap_modified connector=%s dn=%s what=%s", j->c->cfg->name,
                       ob_log_quote(j->dn), ob_log_quote(j->what.data ? j->what.data : ""));
        ob_ldap_finish(j, result);
}

static int ob_ldap_start_modify(struct ob_ldap_job *j, const struct ob_ldap_rendered *q)
{
        static const char *const none[] = {NULL}; /* a replace with no value deletes */
        size_t n = q->nset + q->nclear;
        _cleanup_free_ struct ob_dir_mod *mods = calloc(n ? n : 1, sizeof(*mods));
        if (!mods)
                return -ENOMEM;
        for (size_t i = 0; i < q->nset; i++) {
                mods[i] = (struct ob_dir_mod){q->set[i].attribute, (const char *const *)q->set[i].values};
                if (q->set[i].values[0])
                        ob_ldap_what(j, "set %s", q->set[i].attribute);
                else
                        ob_ldap_what(j, "cleared %s", q->set[i].attribute);
        }
        for (size_t i = 0; i < q->nclear; i++) {
                mods[q->nset + i] = (struct ob_dir_mod){q->clear[i], none};
                ob_ldap_what(j, "cleared %s", q->clear[i]);
        }
        /* The request is encoded before this returns: mods may go. */
        int r = ob_dir_replace_start(j->c->dir, j->dn, false, NULL, mods, n, NULL, NULL, ob_ldap_on_modified, j);
        return r == 1 ? ob_ldap_finish_later(j, 0) : r;
}

/* ---- restore_groups ------------------------------------------------------------ */

static void ob_ldap_add_next(struct ob_ldap_job *j);
static void ob_ldap_on_added(int result, void *ud);

static int ob_ldap_on_listing(const struct ob_account *a, void *ud)
{
        struct ob_ldap_job *j = ud;
        j->listed = j->listed || a->dn;
        return 0;
}

/* The add failed: where the server does not know the permissive modify
 * control (Samba answers entryAlreadyExists), a value already there is
 * refused. A search of the group for the value says whether it is. */
static void ob_ldap_on_checked(int result, struct ob_dir_search_info *info, void *ud)
{
        (void)info;
        struct ob_ldap_job *j = ud;
        int err = j->add_error;
        ob_ldap_on_added(result == 0 && j->listed ? 0 : err, j);
}

static void ob_ldap_on_added(int result, void *ud)
{
        struct ob_ldap_job *j = ud;
        const struct ob_ldap_membership *m = &j->restore[j->next_group];
        const char *attr = ob_ldap_group_attr_name(m->attr);
        if (result < 0 && result != -OB_ENOTFOUND && !j->add_error && !j->c->closing) {
                j->add_error = result;
                j->listed = false;
                int r = ob_dir_search_listing_start(j->c->dir, m->group, attr, m->value, ob_ldap_on_listing,
                                                    ob_ldap_on_checked, j);
                if (r == 0)
                        return;
        }
        j->add_error = 0;
        if (result == -OB_ENOTFOUND) {
                /* The group is gone: nothing to put back into; the others go on. */
                j->gone++;
                ob_ldap_what(j, "not restored: %s no longer exists", m->group);
                if (!j->c->closing)
                        ob_log(OB_LOG_WARNING, "event=ldap_group_gone connector=%s dn=%s attribute=%s group=%s",
                               j->c->cfg->name, ob_log_quote(j->dn), attr, ob_log_quote(m->group));
        } else if (result == 0) {
                ob_ldap_what(j, "restored %s to %s", attr, m->group);
                if (!j->c->closing)
                        ob_log(OB_LOG_INFO, "event=ldap_group_restored connector=%s dn=%s attribute=%s group=%s",
                               j->c->cfg->name, ob_log_quote(j->dn), attr, ob_log_quote(m->group));
        } else {
                snprintf(j->error, sizeof(j->error), "restoring %s to %s", attr, m->group);
                ob_ldap_finish(j, result);
                return;
        }
        j->next_group++;
        ob_ldap_add_next(j);
}

static void ob_ldap_add_next(struct ob_ldap_job *j)
{
        if (j->next_group == j->nrestore) {
                if (j->nrestore == 0)
                        ob_ldap_what(j, "no membership recorded to restore");
                ob_ldap_finish(j, 0);
                return;
        }
        const struct ob_ldap_membership *m = &j->restore[j->next_group];
        int r = ob_dir_add_value_start(j->c->dir, m->group, ob_ldap_group_attr_name(m->attr), m->value,
                                       ob_ldap_on_added, j);
        if (r < 0) {
                snprintf(j->error, sizeof(j->error), "restoring %s to %s", ob_ldap_group_attr_name(m->attr), m->group);
                ob_ldap_finish(j, r);
        }
}

/* The list comes with the step (rendered from the records); it is also the
 * step's detail, done or failed, so a later attempt finds it among the
 * transition's own records. */
static int ob_ldap_start_restore(struct ob_ldap_job *j, const struct ob_ldap_rendered *q)
{
        j->has_detail = true;
        j->detail.cut = q->cut;
        if (q->nmemberships && !(j->restore = calloc(q->nmemberships, sizeof(*j->restore))))
                return -ENOMEM;
        for (size_t i = 0; i < q->nmemberships; i++) {
                const struct ob_ldap_membership *m = &q->memberships[i];
                struct ob_ldap_membership *d = &j->restore[j->nrestore++];
                d->attr = m->attr;
                if (!(d->group = strdup(m->group)) || !(d->value = strdup(m->value)))
                        return -ENOMEM;
                ob_ldap_detail_add(&j->detail, m->group, ob_ldap_group_attr_name(m->attr), m->value);
        }
        if (q->cut > 0)
                ob_ldap_what(j, "%lld not recorded (the list was cut): not restored", (long long)q->cut);
        if (j->nrestore == 0) {
                ob_ldap_what(j, "no membership recorded to restore");
                return ob_ldap_finish_later(j, 0);
        }
        ob_ldap_add_next(j);
        return 0;
}

/* ---- start -------------------------------------------------------------------- */

int ob_ldap_start(void *p, const struct ob_step *s, ob_connector_done_fn done, void *userdata)
{
        struct ob_ldap *c = p;
        const struct ob_ldap_rendered *q = s ? s->rendered : NULL;
        if (!c || c->closing || !q || !done)
                return -EINVAL;
        /* A lost session failed all it had in flight: open another (the
         * steps still to be answered hold none of it). */
        if (ob_dir_lost(c->dir) && ob_dir_in_flight(c->dir) == 0) {
                ob_dir_free(c->dir);
                c->dir = NULL;
                int r = ob_ldap_open(c);
                if (r < 0)
                        return r;
        }
        struct ob_ldap_job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->c = c;
        j->done = done;
        j->userdata = userdata;
        j->started = ob_loop_now_ms();
        j->op = q->op;
        ob_buf_init(&j->what);
        j->next = c->jobs;
        c->jobs = j;
        int r = 0;
        if (!(j->dn = strdup(q->dn)) || (q->uid && !(j->uid = strdup(q->uid))))
                r = -ENOMEM;
        else if (q->op == OB_LDAP_MOVE)
                r = ob_ldap_start_move(j, q);
        else if (q->op == OB_LDAP_MODIFY)
                r = ob_ldap_start_modify(j, q);
        else if (q->op == OB_LDAP_RESTORE_GROUPS)
                r = ob_ldap_start_restore(j, q);
        else if (!q->groups_base)
                r = -EINVAL;
        else if (!(j->groups_base = strdup(q->groups_base)))
                r = -ENOMEM;
        else {
                j->has_detail = true;
                j->group_attrs = q->group_attrs;
                while (j->attr < OB_LDAP_GROUP_ATTRS &&
                       (!(j->group_attrs & (1u << j->attr)) || !ob_ldap_value(j, j->attr)))
                        j->attr++;
                if (j->attr == OB_LDAP_GROUP_ATTRS) {
                        ob_ldap_what(j, "nothing to look for (no username for memberUid)");
                        r = ob_ldap_finish_later(j, 0);
                } else {
                        r = ob_dir_search_listing_start(c->dir, j->groups_base, ob_ldap_group_attr_name(j->attr),
                                                        ob_ldap_value(j, j->attr), ob_ldap_on_group,
                                                        ob_ldap_on_searched, j);
                }
        }
        if (r < 0)
                ob_ldap_job_free(j); /* a start that fails calls nothing */
        return r < 0 ? r : 0;
}
