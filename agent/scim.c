/* scim.c: running a scim step, a few requests one after another.
 *
 * A step is a job: look the user up by its filter, then act on what the
 * answer says (scim.h lists the requests of each operation). Each request
 * goes through the connector's own http.c instance, which asks for the
 * whole answer (bounded by OB_HTTP_MAX_ANSWER) so the job can read the ids
 * and versions in it with jansson, the only file that does. Values from
 * the answers land in a URL as one escaped path segment, in a filter as a
 * JSON string, and in a body through jansson, so a server cannot steer a
 * request elsewhere.
 *
 * The step's outcome is the last request's response: a failure keeps its
 * status, Retry-After, transport flag and (scrubbed) excerpt, and its error
 * says which request failed; the durations add up. Nothing here logs.
 *
 * free() with jobs running frees the http instance first (their requests
 * are aborted, their callbacks never run), then the jobs. The done callback
 * of a job is the last thing the job does, so it may free the connector.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "http.h"
#include "loop.h"
#include "plan.h"
#include "scim.h"
#include "util.h"

#define OB_SCIM_PAGE 100         /* groups asked for per page */
#define OB_SCIM_MAX_GROUPS 10000 /* groups one user may be removed from in one step */
#define OB_SCIM_MAX_412 2        /* lookups again after a 412 (the resource changed in between) */
#define OB_SCIM_MAX_VERSION 200
#define OB_SCIM_PATCHOP "urn:ietf:params:scim:api:messages:2.0:PatchOp"

static inline void ob_json_decrefp(json_t **p)
{
        json_decref(*p);
}
#define _cleanup_json_ _cleanup_(ob_json_decrefp)

enum ob_scim_phase { OB_SCIM_LOOKUP, OB_SCIM_ACT, OB_SCIM_GROUPS, OB_SCIM_GROUP_FIND, OB_SCIM_GROUP_PATCH };

struct ob_scim_ref {
        char *id;      /* as the server wrote it */
        char *version; /* meta.version, or NULL */
};

struct ob_scim;

struct ob_scim_job {
        struct ob_scim *sc;
        struct ob_scim_job *prev, *next;
        ob_connector_done_fn done;
        void *userdata;
        enum ob_scim_op op;
        enum ob_scim_phase phase;
        char *lookup_url;
        char *filter; /* for the excerpt when no user matches */
        struct ob_scim_ref user;
        struct ob_scim_ref *groups; /* each once */
        size_t ngroups, igroup;
        size_t nlisted; /* every group: groups the pages so far brought, repeats included (paging) */
        /* groups: or group_ids: the chosen groups' filters (displayName eq
         * "NAME" or id eq "ID"), looked for one after another: the one at
         * ichosen, of which nfound have come so far (paged). */
        char **chosen;
        size_t nchosen, ichosen, nfound;
        size_t removed;
        int retries;
        int64_t duration_ms;
        struct ob_http_answer answer;
};

struct ob_scim {
        void *http;
        char *base_url;
        struct ob_scim_job *jobs;
};

static void ob_scim_ref_clear(struct ob_scim_ref *r)
{
        free(r->id);
        free(r->version);
        *r = (struct ob_scim_ref){0};
}

static void ob_scim_groups_clear(struct ob_scim_job *j)
{
        for (size_t i = 0; i < j->ngroups; i++)
                ob_scim_ref_clear(&j->groups[i]);
        free(j->groups);
        j->groups = NULL;
        j->ngroups = j->igroup = j->nlisted = 0;
}

static void ob_scim_job_free(struct ob_scim_job *j)
{
        if (!j)
                return;
        free(j->lookup_url);
        free(j->filter);
        ob_scim_ref_clear(&j->user);
        ob_scim_groups_clear(j);
        for (size_t i = 0; i < j->nchosen; i++)
                free(j->chosen[i]);
        free(j->chosen);
        ob_buf_free(&j->answer.body);
        free(j);
}

static void ob_scim_job_unlink(struct ob_scim_job *j)
{
        if (j->prev)
                j->prev->next = j->next;
        else
                j->sc->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        j->prev = j->next = NULL;
}

/* Ends the job: the callback runs last, the job is gone by then. */
static void ob_scim_finish(struct ob_scim_job *j, const struct ob_response *resp)
{
        ob_connector_done_fn done = j->done;
        void *ud = j->userdata;
        ob_scim_job_unlink(j);
        ob_scim_job_free(j);
        done(resp, ud);
}

/* Done, with what happened in the excerpt. */
__attribute__((format(printf, 3, 4))) static void ob_scim_succeed(struct ob_scim_job *j, long status,
                                                                  const char *fmt, ...)
{
        struct ob_response resp = {.result = 0, .status = status, .duration_ms = j->duration_ms, .retry_after_s = -1};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(resp.excerpt, sizeof(resp.excerpt), fmt, ap);
        va_end(ap);
        ob_scim_finish(j, &resp);
}

/* Failed at a request: its response, with what the request was for. */
static void ob_scim_fail_at(struct ob_scim_job *j, const struct ob_response *http, const char *what)
{
        struct ob_response resp = *http;
        resp.result = resp.result < 0 ? resp.result : -OB_EHTTP;
        resp.duration_ms = j->duration_ms;
        snprintf(resp.error, sizeof(resp.error), "%s: %.200s", what, http->error);
        ob_scim_finish(j, &resp);
}

/* Failed on what an answer says (or could not go on): not worth a retry. */
__attribute__((format(printf, 4, 5))) static void ob_scim_fail(struct ob_scim_job *j, int err, long status,
                                                               const char *fmt, ...)
{
        struct ob_response resp = {.result = err, .status = status, .duration_ms = j->duration_ms,
                                   .retry_after_s = -1};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(resp.error, sizeof(resp.error), fmt, ap);
        va_end(ap);
        ob_scim_finish(j, &resp);
}

static void ob_scim_on_http(const struct ob_response *resp, void *userdata);

/* Sends one request of the job; body (a JSON object) is serialised here. */
static int ob_scim_send(struct ob_scim_job *j, const char *method, const char *url, json_t *body,
                        const char *version)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ char *if_match = NULL;
        const char *headers[3] = {"Accept: application/scim+json", NULL, NULL};
        if (body && !(text = json_dumps(body, JSON_COMPACT)))
                return -ENOMEM;
        if (version) {
                if (asprintf(&if_match, "If-Match: %s", version) < 0) {
                        if_match = NULL;
                        return -ENOMEM;
                }
                headers[1] = if_match;
        }
        ob_buf_reset(&j->answer.body);
        struct ob_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .content_type = text ? "application/scim+json" : NULL,
                .body = text,
                .body_len = text ? strlen(text) : 0,
                .answer = &j->answer,
        };
        return ob_http_start(j->sc->http, &req, ob_scim_on_http, j);
}

/* A request that could not start, from inside a callback: the step fails
 * as one without an answer does (http.c's own "cannot start"), so it is
 * tried again. */
static void ob_scim_send_or_fail(struct ob_scim_job *j, const char *method, const char *url, json_t *body,
                                 const char *version)
{
        int r = ob_scim_send(j, method, url, body, version);
        if (r < 0) {
                struct ob_response resp = {.result = -OB_EHTTP, .duration_ms = j->duration_ms, .retry_after_s = -1,
                                           .transport = true};
                snprintf(resp.error, sizeof(resp.error), "cannot send %s: %s", method, ob_strerror(r));
                ob_scim_finish(j, &resp);
        }
}

/* base_url/Users/{id} (or Groups), the id one escaped path segment. */
static int ob_scim_resource_url(const struct ob_scim *sc, const char *type, const char *id, char **ret)
{
        _cleanup_buf_ struct ob_buf b;
        ob_buf_init(&b);
        int r = ob_buf_printf(&b, "%s/%s/", sc->base_url, type);
        if (r == 0)
                r = ob_escape_path_segment(&b, id, strlen(id));
        if (r == 0)
                r = ob_buf_steal(&b, ret);
        return r;
}

/* A version fit for an If-Match line, or NULL (then none is sent). */
static const char *ob_scim_version(json_t *resource)
{
        const char *v = json_string_value(json_object_get(json_object_get(resource, "meta"), "version"));
        if (!v || !*v || strlen(v) > OB_SCIM_MAX_VERSION)
                return NULL;
        for (const char *p = v; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                        return NULL;
        return v;
}

static int ob_scim_ref_set(struct ob_scim_ref *r, json_t *resource)
{
        const char *id = json_string_value(json_object_get(resource, "id"));
        const char *v = ob_scim_version(resource);
        if (!id || !*id)
                return -EBADMSG;
        if (!(r->id = ob_strdup(id)) || (v && !(r->version = ob_strdup(v)))) {
                ob_scim_ref_clear(r);
                return -ENOMEM;
        }
        return 0;
}

/* The ListResponse in the answer: its Resources (an array, maybe empty)
 * and totalResults. */
static int ob_scim_list(struct ob_scim_job *j, json_t **ret, json_t **ret_resources, size_t *ret_total)
{
        json_error_t err;
        json_t *doc = json_loadb(j->answer.body.data ? j->answer.body.data : "", j->answer.body.len,
                                 JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return -EBADMSG;
        }
        json_t *res = json_object_get(doc, "Resources");
        json_t *total = json_object_get(doc, "totalResults");
        if ((res && !json_is_array(res)) || !json_is_integer(total) || json_integer_value(total) < 0) {
                json_decref(doc);
                return -EBADMSG;
        }
        *ret_resources = res;
        *ret_total = (size_t)json_integer_value(total);
        *ret = doc;
        return 0;
}

static void ob_scim_lookup(struct ob_scim_job *j)
{
        j->phase = OB_SCIM_LOOKUP;
        ob_scim_ref_clear(&j->user);
        ob_scim_groups_clear(j);
        ob_scim_send_or_fail(j, "GET", j->lookup_url, NULL, NULL);
}

/* GET /Groups?filter=[CHOSEN and ]members[value eq "{id}"], a page of
 * them from start (1-based), without their members; what fails says what. */
static void ob_scim_groups_get(struct ob_scim_job *j, const char *chosen, size_t start, const char *what)
{
        _cleanup_buf_ struct ob_buf f, u;
        ob_buf_init(&f);
        ob_buf_init(&u);
        int r = chosen ? ob_buf_printf(&f, "%s and ", chosen) : 0;
        if (r == 0)
                r = ob_buf_adds(&f, "members[value eq \"");
        if (r == 0)
                r = ob_escape_json(&f, j->user.id, strlen(j->user.id));
        if (r == 0)
                r = ob_buf_adds(&f, "\"]");
        if (r == 0)
                r = ob_buf_printf(&u, "%s/Groups?filter=", j->sc->base_url);
        if (r == 0)
                r = ob_escape_query(&u, f.data, f.len);
        if (r == 0)
                r = ob_buf_printf(&u, "&excludedAttributes=members&startIndex=%zu&count=%d", start, OB_SCIM_PAGE);
        if (r < 0)
                return ob_scim_fail(j, r, 0, "cannot %s: %s", what, ob_strerror(r));
        ob_scim_send_or_fail(j, "GET", u.data, NULL, NULL);
}

static void ob_scim_groups_page(struct ob_scim_job *j)
{
        j->phase = OB_SCIM_GROUPS;
        ob_scim_groups_get(j, NULL, j->nlisted + 1, "list the user's groups");
}

/* groups: or group_ids: the next page of the chosen group at ichosen, if
 * it lists the user: filter=CHOSEN and members[value eq "{id}"]. */
static void ob_scim_chosen_page(struct ob_scim_job *j)
{
        j->phase = OB_SCIM_GROUP_FIND;
        ob_scim_groups_get(j, j->chosen[j->ichosen], j->nfound + 1, "look for a configured group");
}

static void ob_scim_next_group(struct ob_scim_job *j, long status)
{
        if (j->igroup >= j->ngroups && j->nchosen > 0)
                return ob_scim_succeed(j, status,
                                       "removed from %zu of the %zu groups configured (a group not there, or not "
                                       "listing the user, has nothing to remove)",
                                       j->removed, j->nchosen);
        if (j->igroup >= j->ngroups)
                return ob_scim_succeed(j, status, "removed from %zu of %zu groups", j->removed, j->ngroups);
        const struct ob_scim_ref *g = &j->groups[j->igroup];
        _cleanup_free_ char *url = NULL;
        _cleanup_buf_ struct ob_buf path;
        ob_buf_init(&path);
        j->phase = OB_SCIM_GROUP_PATCH;
        int r = ob_scim_resource_url(j->sc, "Groups", g->id, &url);
        if (r == 0)
                r = ob_buf_adds(&path, "members[value eq \"");
        if (r == 0)
                r = ob_escape_json(&path, j->user.id, strlen(j->user.id));
        if (r == 0)
                r = ob_buf_adds(&path, "\"]");
        _cleanup_json_ json_t *body = NULL;
        if (r == 0 && !(body = json_pack("{s:[s],s:[{s:s,s:s}]}", "schemas", OB_SCIM_PATCHOP, "Operations", "op",
                                         "remove", "path", path.data)))
                r = -ENOMEM;
        if (r < 0)
                return ob_scim_fail(j, r, 0, "cannot remove the user from a group: %s", ob_strerror(r));
        /* No If-Match here: removing one member by a value filter cannot
         * overwrite anyone else's change, and leavers leaving one big group
         * at once would only make each other's versions stale (412). */
        ob_scim_send_or_fail(j, "PATCH", url, body, NULL);
}

/* The user is known: act on it. */
static void ob_scim_act(struct ob_scim_job *j)
{
        if (j->op == OB_SCIM_REMOVE_GROUPS && j->nchosen > 0) {
                j->ichosen = j->nfound = 0;
                return ob_scim_chosen_page(j);
        }
        if (j->op == OB_SCIM_REMOVE_GROUPS)
                return ob_scim_groups_page(j);
        _cleanup_free_ char *url = NULL;
        _cleanup_json_ json_t *body = NULL;
        int r = ob_scim_resource_url(j->sc, "Users", j->user.id, &url);
        j->phase = OB_SCIM_ACT;
        if (r == 0 && j->op != OB_SCIM_DELETE &&
            !(body = json_pack("{s:[s],s:[{s:s,s:s,s:b}]}", "schemas", OB_SCIM_PATCHOP, "Operations", "op",
                               "replace", "path", "active", "value", j->op == OB_SCIM_ENABLE)))
                r = -ENOMEM;
        if (r < 0)
                return ob_scim_fail(j, r, 0, "cannot address the user: %s", ob_strerror(r));
        ob_scim_send_or_fail(j, j->op == OB_SCIM_DELETE ? "DELETE" : "PATCH", url, body, j->user.version);
}

static void ob_scim_on_lookup(struct ob_scim_job *j, const struct ob_response *resp)
{
        if (resp->result < 0)
                return ob_scim_fail_at(j, resp, "looking up the user");
        _cleanup_json_ json_t *doc = NULL;
        json_t *res = NULL;
        size_t total = 0;
        if (ob_scim_list(j, &doc, &res, &total) < 0)
                return ob_scim_fail(j, -OB_EHTTP, resp->status, "looking up the user: the answer is not a SCIM "
                                                                "ListResponse");
        size_t n = res ? json_array_size(res) : 0;
        if (n == 0 && total == 0) {
                if (j->op == OB_SCIM_ENABLE)
                        return ob_scim_fail(j, -OB_ENOTFOUND, 404, "no user with %.200s downstream", j->filter);
                return ob_scim_succeed(j, resp->status, "no user with %.200s downstream: nothing to do",
                                       j->filter);
        }
        if (n != 1 || total != 1)
                return ob_scim_fail(j, -OB_EHTTP, resp->status, "%zu users match %.200s downstream; expected one",
                                    total > n ? total : n, j->filter);
        int r = ob_scim_ref_set(&j->user, json_array_get(res, 0));
        if (r < 0)
                return ob_scim_fail(j, r == -ENOMEM ? r : -OB_EHTTP, resp->status,
                                    "looking up the user: the answer has no id");
        ob_scim_act(j);
}

/* A page of groups (what: which request it answers, for the error): their
 * ids added to j->groups, each once; the number of groups on the page and
 * the total the answer says in *ret_n and *ret_total. 0, or the step has
 * failed (-1). */
static int ob_scim_add_groups(struct ob_scim_job *j, const struct ob_response *resp, const char *what, size_t *ret_n,
                              size_t *ret_total)
{
        if (resp->result < 0) {
                ob_scim_fail_at(j, resp, what);
                return -1;
        }
        _cleanup_json_ json_t *doc = NULL;
        json_t *res = NULL;
        size_t total = 0;
        if (ob_scim_list(j, &doc, &res, &total) < 0) {
                ob_scim_fail(j, -OB_EHTTP, resp->status, "%s: the answer is not a SCIM ListResponse", what);
                return -1;
        }
        size_t n = res ? json_array_size(res) : 0;
        if (total > OB_SCIM_MAX_GROUPS || j->ngroups + n > OB_SCIM_MAX_GROUPS) {
                ob_scim_fail(j, -OB_ELIMIT, resp->status, "the user is in more than %d groups", OB_SCIM_MAX_GROUPS);
                return -1;
        }
        if (n > 0) {
                struct ob_scim_ref *g = realloc(j->groups, (j->ngroups + n) * sizeof(*g));
                if (!g) {
                        ob_scim_fail(j, -ENOMEM, 0, "out of memory");
                        return -1;
                }
                j->groups = g;
        }
        for (size_t i = 0; i < n; i++) {
                struct ob_scim_ref *g = &j->groups[j->ngroups];
                *g = (struct ob_scim_ref){0};
                int r = ob_scim_ref_set(g, json_array_get(res, i));
                if (r < 0) {
                        ob_scim_fail(j, r == -ENOMEM ? r : -OB_EHTTP, resp->status, "%s: a group has no id", what);
                        return -1;
                }
                /* A group chosen twice (by name and by id) loses the user once. */
                bool dup = false;
                for (size_t k = 0; !dup && k < j->ngroups; k++)
                        dup = strcmp(j->groups[k].id, g->id) == 0;
                if (dup)
                        ob_scim_ref_clear(g);
                else
                        j->ngroups++;
        }
        *ret_n = n;
        *ret_total = total;
        return 0;
}

static void ob_scim_on_groups(struct ob_scim_job *j, const struct ob_response *resp)
{
        size_t n, total;
        if (ob_scim_add_groups(j, resp, "listing the user's groups", &n, &total) < 0)
                return;
        /* Pages go by what was listed: a group listed twice is one. */
        j->nlisted += n;
        if (n > 0 && j->nlisted < total)
                return ob_scim_groups_page(j);
        /* A page that brings nothing while groups are still counted: they
         * are unknown, not "none" (the user would keep them). */
        if (j->nlisted < total)
                return ob_scim_fail(j, -OB_EHTTP, resp->status,
                                    "listing the user's groups: the answer counts %zu groups and lists %zu", total,
                                    j->nlisted);
        j->igroup = 0;
        ob_scim_next_group(j, resp->status);
}

/* A configured group's page: none is done (the group is not there, or does
 * not list the user); an answer that is not a list fails the step. */
static void ob_scim_on_chosen(struct ob_scim_job *j, const struct ob_response *resp)
{
        size_t n, total;
        if (ob_scim_add_groups(j, resp, "looking for a configured group", &n, &total) < 0)
                return;
        j->nfound += n;
        if (n > 0 && j->nfound < total)
                return ob_scim_chosen_page(j);
        /* Groups said to be there but not listed: unknown, not "none". */
        if (j->nfound < total)
                return ob_scim_fail(j, -OB_EHTTP, resp->status,
                                    "looking for a configured group: the answer counts %zu groups and lists %zu", total,
                                    j->nfound);
        if (++j->ichosen < j->nchosen) {
                j->nfound = 0;
                return ob_scim_chosen_page(j);
        }
        j->igroup = 0;
        ob_scim_next_group(j, resp->status);
}

static void ob_scim_on_http(const struct ob_response *resp, void *userdata)
{
        struct ob_scim_job *j = userdata;
        j->duration_ms += resp->duration_ms;
        switch (j->phase) {
        case OB_SCIM_LOOKUP: return ob_scim_on_lookup(j, resp);
        case OB_SCIM_GROUPS: return ob_scim_on_groups(j, resp);
        case OB_SCIM_GROUP_FIND: return ob_scim_on_chosen(j, resp);
        case OB_SCIM_ACT:
        case OB_SCIM_GROUP_PATCH: break;
        }
        bool group = j->phase == OB_SCIM_GROUP_PATCH;
        if (resp->result < 0 && resp->status == 412 && j->retries < OB_SCIM_MAX_412) {
                j->retries++; /* changed since we read it: read it again */
                return ob_scim_lookup(j);
        }
        /* Gone already: what was to be taken away is not there. */
        bool gone = resp->result < 0 && resp->status == 404 && !resp->transport &&
                    (group || j->op == OB_SCIM_DELETE);
        if (resp->result < 0 && !gone)
                return ob_scim_fail_at(j, resp,
                                       group                     ? "removing the user from a group"
                                       : j->op == OB_SCIM_DELETE ? "deleting the user"
                                                                 : "changing the user's active flag");
        if (!group)
                return ob_scim_succeed(j, resp->status, "%s", gone ? "the user was gone already" : "done");
        if (!gone)
                j->removed++;
        j->igroup++;
        ob_scim_next_group(j, resp->status);
}

/* ---- the connector interface ---- */

int ob_scim_new(struct ob_loop *loop, const struct ob_connector *cfg, void **ret)
{
        if (!cfg || !cfg->settings)
                return -EINVAL;
        const struct ob_scim_connector *s = cfg->settings;
        if (!s->http.base_url)
                return -EINVAL;
        struct ob_scim *sc = calloc(1, sizeof(*sc));
        if (!sc)
                return -ENOMEM;
        /* http.c reads the http part of our settings, which comes first. */
        struct ob_connector h = *cfg;
        h.settings = (void *)&s->http;
        int r = ob_http_new(loop, &h, &sc->http);
        if (r == 0 && !(sc->base_url = ob_strdup(s->http.base_url)))
                r = -ENOMEM;
        if (r < 0) {
                ob_scim_free(sc);
                return r;
        }
        *ret = sc;
        return 0;
}

int ob_scim_start(void *c, const struct ob_step *s, ob_connector_done_fn done, void *userdata)
{
        struct ob_scim *sc = c;
        const struct ob_scim_rendered *q = s->rendered;
        if (!sc || !q || !q->lookup_url || !q->filter || !done)
                return -EINVAL;
        struct ob_scim_job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->sc = sc;
        j->done = done;
        j->userdata = userdata;
        j->op = q->op;
        ob_buf_init(&j->answer.body);
        if (!(j->lookup_url = ob_strdup(q->lookup_url)) || !(j->filter = ob_strdup(q->filter)) ||
            (q->ngroups > 0 && !(j->chosen = calloc(q->ngroups, sizeof(*j->chosen))))) {
                ob_scim_job_free(j);
                return -ENOMEM;
        }
        for (; j->nchosen < q->ngroups; j->nchosen++) {
                if (!(j->chosen[j->nchosen] = ob_strdup(q->groups[j->nchosen]))) {
                        ob_scim_job_free(j);
                        return -ENOMEM;
                }
        }
        j->phase = OB_SCIM_LOOKUP;
        int r = ob_scim_send(j, "GET", j->lookup_url, NULL, NULL);
        if (r < 0) {
                ob_scim_job_free(j);
                return r;
        }
        j->next = sc->jobs;
        if (sc->jobs)
                sc->jobs->prev = j;
        sc->jobs = j;
        return 0;
}

void ob_scim_free(void *c)
{
        struct ob_scim *sc = c;
        if (!sc)
                return;
        ob_http_free(sc->http); /* aborts the jobs' requests: no callback runs */
        struct ob_scim_job *j;
        while ((j = sc->jobs)) {
                sc->jobs = j->next;
                ob_scim_job_free(j);
        }
        free(sc->base_url);
        free(sc);
}
