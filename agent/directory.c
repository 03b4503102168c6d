/* directory.c: the only module that talks LDAP (libldap 2.5, synchronous).
 *
 * Every operation waits for its messages with ldap_result() and the configured
 * timeout, abandons what timed out, and translates libldap codes into project
 * codes; each failure is logged here once, with the server's diagnostic
 * message. Searches are paged (RFC 2696) and streamed entry by entry, and any
 * result other than success, on any page, fails the whole search.
 *
 * ob_dir_open() copies what it needs from the configuration, so a caller may
 * pass a temporary copy of the directory section.
 */
#define _GNU_SOURCE
#include "directory.h"

#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "loop.h"
#include "util.h"

/* Limits on what the directory controls. */
#define OB_DIR_MAX_VALUE_BYTES (1u << 20)  /* one attribute value */
#define OB_DIR_MAX_ENTRY_BYTES (16u << 20) /* all values of one entry */
#define OB_DIR_MAX_TEAMS 10000             /* groups one account is in */
#define OB_DIR_MAX_PAGE_SIZE 10000
#define OB_DIR_DEFAULT_PAGE_SIZE 500
#define OB_DIR_DEFAULT_DEADLINE_MS (30 * 60 * 1000)
#define OB_DIR_DEFAULT_MAX_PAGES 10000
#define OB_DIR_MAX_REFERENCES 1000
#define OB_DIR_MAX_RANGE_WAITING 10000  /* entries of one page waiting for their ranges */
#define OB_DIR_MAX_RANGE_VALUES 1000000 /* values of one attribute read in ranges */

struct ob_dir {
        LDAP *ld;
        char *uri;
        char *base;
        int scope;
        char *filter;
        char *id_attr;
        bool id_is_guid;
        int page_size;
        int64_t timeout_ms;
        int64_t search_deadline_ms;
        size_t max_pages;
        char **attrs; /* account attributes to request (NULL-terminated) */
        char *teams_base;
        char *teams_filter;
        char *teams_member;
        char *teams_owner;
        char **team_attrs;
        char **team_owned_attrs; /* team_attrs and the member attribute */
        char *time_attr; /* writeback's time attribute: written with a fraction */
        /* Read from the root DSE at open (ob_dir_caps). */
        bool caps_known;    /* the root DSE listed supportedControl */
        bool has_assertion; /* RFC 4528 assertion control */
        bool has_paging;    /* RFC 2696 paged results control */
        bool has_sync;      /* RFC 4533 content synchronization (OpenLDAP syncprov) */
        bool is_ad;         /* Active Directory or Samba AD (LDAP_CAP_ACTIVE_DIRECTORY_OID) */
        /* AD: the values of an attribute asked for at a time (ob_dir_set_range_step); 0: the server's. */
        unsigned long range_step;
        /* On an event loop (ob_dir_attach): the operations in flight. */
        struct ob_loop *loop;
        int fd;
        struct dir_op *ops;
        size_t nops;
        bool watched;
        bool lost; /* the connection failed: nothing more can be sent */
        struct ob_timer *timer;
        struct ob_timer *kick;
};

#define OB_OID_ASSERTION "1.3.6.1.1.12"
#define OB_OID_PAGED "1.2.840.113556.1.4.319"
#define OB_OID_AD_CAP "1.2.840.113556.1.4.800"
#define OB_OID_AD_SHOW_DELETED "1.2.840.113556.1.4.417"
#define OB_OID_AD_DIRSYNC "1.2.840.113556.1.4.841"
#define OB_DIRSYNC_OBJECT_SECURITY 0x1

/* The layout of Cyrus SASL's sasl_interact_t (stable since SASL 2.0); the
 * header is not needed for EXTERNAL, which asks at most for an authzid. */
struct ob_sasl_interact {
        unsigned long id;
        const char *challenge;
        const char *prompt;
        const char *defresult;
        const void *result;
        unsigned len;
};
#define OB_SASL_CB_LIST_END 0

/* ---- errors ----------------------------------------------------------------- */

static int ldap_to_ob(int rc)
{
        switch (rc) {
        case LDAP_SUCCESS: return 0;
        case LDAP_SIZELIMIT_EXCEEDED:
        case LDAP_ADMINLIMIT_EXCEEDED:
        case LDAP_TIMELIMIT_EXCEEDED: return -OB_ESIZELIMIT;
        case LDAP_NO_SUCH_OBJECT: return -OB_ENOTFOUND;
        case LDAP_ASSERTION_FAILED: return -OB_EASSERTION;
        case LDAP_NO_MEMORY: return -ENOMEM;
        default: return -OB_EDIRECTORY;
        }
}

/* Logs one failed LDAP operation. diag is the result's diagnostic message; if
 * NULL, the handle's is used. */
static void dir_log(struct ob_dir *d, enum ob_log_level level, const char *op, const char *target, int rc,
                    const char *diag)
{
        char *own = NULL;
        if (!diag && d->ld && ldap_get_option(d->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &own) == LDAP_OPT_SUCCESS)
                diag = own;
        ob_log(level, "event=ldap_failed op=%s uri=%s target=%s code=%d error=%s diagnostic=%s", op,
               ob_log_quote(d->uri), ob_log_quote(target ? target : ""), rc, ob_log_quote(ldap_err2string(rc)),
               ob_log_quote(diag ? diag : ""));
        if (own)
                ldap_memfree(own);
}

static int handle_errno(struct ob_dir *d)
{
        int rc = LDAP_OTHER;
        ldap_get_option(d->ld, LDAP_OPT_RESULT_CODE, &rc);
        return rc;
}

/* ---- small helpers ------------------------------------------------------------ */

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int strv_add_unique(char ***v, size_t *n, const char *s)
{
        for (size_t i = 0; i < *n; i++)
                if (strcasecmp((*v)[i], s) == 0)
                        return 0;
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strdup(s);
        if (!nv[*n])
                return -ENOMEM;
        nv[++*n] = NULL;
        return 0;
}

static struct timeval ms_to_tv(int64_t ms)
{
        return (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

static int64_t monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool has_prefix_ci(const char *s, const char *p)
{
        return strncasecmp(s, p, strlen(p)) == 0;
}

/* Classifies a (space or comma separated) URI list: every URI must use the same
 * scheme. Returns 0 and *ret_plain (ldap://), or -OB_ECONFIG. */
static int uri_scheme(const char *uris, bool *ret_plain)
{
        int kind = -1; /* 0 ldap, 1 ldaps, 2 ldapi */
        const char *p = uris;
        while (*p) {
                p += strspn(p, " \t,");
                if (!*p)
                        break;
                int k;
                if (has_prefix_ci(p, "ldap://"))
                        k = 0;
                else if (has_prefix_ci(p, "ldaps://"))
                        k = 1;
                else if (has_prefix_ci(p, "ldapi://"))
                        k = 2;
                else
                        return -OB_ECONFIG;
                if (kind >= 0 && kind != k)
                        return -OB_ECONFIG;
                kind = k;
                p += strcspn(p, " \t,");
        }
        if (kind < 0)
                return -OB_ECONFIG;
        *ret_plain = kind == 0;
        return 0;
}

static int read_entry(struct ob_dir *d, const char *dn, char **attrs, const char *op, struct ob_account **ret);
static void dir_kick(struct ob_dir *d);
static void dir_dispatch(struct ob_dir *d, LDAPMessage *m);
static void dir_detach(struct ob_dir *d);
static int replace_wait(struct ob_dir *d, int msgid, int *ret_msgid, int *ret_result);

/* ---- waiting for messages ------------------------------------------------------ */

/* One message of msgid, waiting at most timeout_ms (<= 0: forever). Returns
 * its type (> 0) and *ret, or an error (after abandoning the operation on a
 * timeout). */
static int wait_msgs(struct ob_dir *d, int msgid, int all, int64_t timeout_ms, const char *op, const char *target,
                     LDAPMessage **ret)
{
        struct timeval tv = ms_to_tv(timeout_ms);
        LDAPMessage *m = NULL;
        int t = ldap_result(d->ld, msgid, all, timeout_ms > 0 ? &tv : NULL, &m);
        if (t == 0) {
                ldap_abandon_ext(d->ld, msgid, NULL, NULL);
                dir_log(d, OB_LOG_ERROR, op, target, LDAP_TIMEOUT, "no answer within the timeout");
                return -OB_EDIRECTORY;
        }
        if (t < 0 || !m) {
                int rc = handle_errno(d);
                dir_log(d, OB_LOG_ERROR, op, target, rc, NULL);
                ldap_msgfree(m);
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
        }
        *ret = m;
        dir_kick(d);
        return t;
}

static int wait_msg(struct ob_dir *d, int msgid, const char *op, const char *target, LDAPMessage **ret)
{
        return wait_msgs(d, msgid, LDAP_MSG_ONE, d->timeout_ms, op, target, ret);
}

/* Parses a result message; logs and translates a failure. *ret_ctrls (if
 * given) receives the response controls on success. Frees nothing. */
static int parse_result(struct ob_dir *d, LDAPMessage *m, const char *op, const char *target, int *ret_rc,
                        LDAPControl ***ret_ctrls)
{
        int rc = LDAP_OTHER;
        char *diag = NULL;
        LDAPControl **ctrls = NULL;
        int k = ldap_parse_result(d->ld, m, &rc, NULL, &diag, NULL, ret_ctrls ? &ctrls : NULL, 0);
        if (k != LDAP_SUCCESS)
                rc = k;
        *ret_rc = rc;
        if (rc != LDAP_SUCCESS) {
                /* A failed assertion is the expected outcome of a race; a
                 * missing entry is the caller's to judge. */
                enum ob_log_level lvl =
                        rc == LDAP_ASSERTION_FAILED || rc == LDAP_NO_SUCH_OBJECT ? OB_LOG_INFO : OB_LOG_ERROR;
                dir_log(d, lvl, op, target, rc, diag ? diag : "");
                ldap_memfree(diag);
                ldap_controls_free(ctrls);
                return rc;
        }
        ldap_memfree(diag);
        if (ret_ctrls)
                *ret_ctrls = ctrls;
        else
                ldap_controls_free(ctrls);
        return LDAP_SUCCESS;
}

/* ---- open / free ------------------------------------------------------------------ */

static int set_opt(struct ob_dir *d, int opt, const void *val, const char *name)
{
        int rc = ldap_set_option(d->ld, opt, val);
        if (rc != LDAP_OPT_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, name, NULL, rc, NULL);
                return -OB_EDIRECTORY;
        }
        return 0;
}

static int sasl_interact(LDAP *ld, unsigned flags, void *defaults, void *in)
{
        (void)ld;
        (void)flags;
        (void)defaults;
        for (struct ob_sasl_interact *i = in; i && i->id != OB_SASL_CB_LIST_END; i++) {
                /* EXTERNAL: no authorization identity beyond the peer's. */
                const char *v = i->defresult ? i->defresult : "";
                i->result = v;
                i->len = (unsigned)strlen(v);
        }
        return LDAP_SUCCESS;
}

/* Says which setting a refused bind points at. */
static void explain_bind(struct ob_dir *d, const char *who, int rc)
{
        const char *fix = NULL;
        if (rc == LDAP_INVALID_CREDENTIALS)
                fix = "the password in directory.bind_password_file does not match directory.bind_dn (or the "
                      "account is locked, disabled or expired: see the diagnostic)";
        else if (rc == LDAP_STRONG_AUTH_REQUIRED || rc == LDAP_CONFIDENTIALITY_REQUIRED)
                fix = "the server refuses a simple bind without TLS: use ldaps:// or starttls: true";
        else if (rc == LDAP_INVALID_DN_SYNTAX)
                fix = "directory.bind_dn is not a DN the server accepts";
        else if (rc == LDAP_UNWILLING_TO_PERFORM)
                fix = "the server refuses this bind (a disabled account, or anonymous binds are off)";
        if (fix)
                ob_log(OB_LOG_ERROR, "event=ldap_bind_refused uri=%s bind_dn=%s fix=%s", ob_log_quote(d->uri),
                       ob_log_quote(who), ob_log_quote(fix));
}

static int dir_bind(struct ob_dir *d, const struct ob_directory_config *cfg, int *ret_rc)
{
        int rc;
        if (cfg->sasl_external) {
                rc = ldap_sasl_interactive_bind_s(d->ld, NULL, "EXTERNAL", NULL, NULL, LDAP_SASL_QUIET, sasl_interact,
                                                  NULL);
                *ret_rc = rc;
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "sasl_external_bind", NULL, rc, NULL);
                        return -OB_EDIRECTORY;
                }
                return 0;
        }
        if (cfg->bind_dn) {
                if (!cfg->bind_password_file) {
                        ob_log(OB_LOG_ERROR, "event=ldap_bind_refused uri=%s bind_dn=%s reason=\"no password file\"",
                               ob_log_quote(d->uri), ob_log_quote(cfg->bind_dn));
                        return -OB_ECONFIG;
                }
                char *pw = NULL;
                int r = ob_read_secret_file(cfg->bind_password_file, &pw);
                if (r < 0) {
                        const char *fix = r == -EINVAL ? "the password file is empty or holds more than one line "
                                                         "(or a NUL byte): write the service account's password "
                                                         "into it, on one line"
                                          : r == -ENOENT ? "the password file does not exist: check "
                                                           "directory.bind_password_file"
                                          : r == -EACCES ? "this user may not read the password file"
                                          : r == -OB_ELIMIT ? "the password file is too long for a password"
                                                            : "the password file cannot be read";
                        ob_log(OB_LOG_ERROR, "event=ldap_bind_refused uri=%s password_file=%s error=%s fix=%s",
                               ob_log_quote(d->uri), ob_log_quote(cfg->bind_password_file),
                               ob_log_quote(ob_strerror(r)), ob_log_quote(fix));
                        return r;
                }
                if (!*pw) {
                        /* An empty password is an unauthenticated bind (RFC 4513
                         * 5.1.2): it would "succeed" as anonymous. */
                        ob_secret_free(pw);
                        ob_log(OB_LOG_ERROR,
                               "event=ldap_bind_refused uri=%s password_file=%s reason=\"empty password\" "
                               "fix=\"the password file is empty: write the service account's password into it (an "
                               "empty password would bind anonymously, RFC 4513 5.1.2)\"",
                               ob_log_quote(d->uri), ob_log_quote(cfg->bind_password_file));
                        return -OB_ECONFIG;
                }
                struct berval cred = {.bv_len = strlen(pw), .bv_val = pw};
                rc = ldap_sasl_bind_s(d->ld, cfg->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
                ob_secret_free(pw);
                *ret_rc = rc;
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "simple_bind", cfg->bind_dn, rc, NULL);
                        explain_bind(d, cfg->bind_dn, rc);
                        return -OB_EDIRECTORY;
                }
                return 0;
        }
        /* Anonymous: bind anyway, so an unreachable server fails here. */
        struct berval none = {0, NULL};
        rc = ldap_sasl_bind_s(d->ld, "", LDAP_SASL_SIMPLE, &none, NULL, NULL, NULL);
        *ret_rc = rc;
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "anonymous_bind", NULL, rc, NULL);
                explain_bind(d, "", rc);
                return -OB_EDIRECTORY;
        }
        return 0;
}

static int copy_config(struct ob_dir *d, const struct ob_directory_config *cfg)
{
        const char *id = cfg->id_attribute ? cfg->id_attribute : "entryUUID";
        size_t n = 0;
        d->search_deadline_ms = cfg->search_deadline_ms > 0 ? cfg->search_deadline_ms : OB_DIR_DEFAULT_DEADLINE_MS;
        d->max_pages = cfg->max_pages > 0 ? cfg->max_pages : OB_DIR_DEFAULT_MAX_PAGES;
        d->uri = strdup(cfg->uri);
        d->base = strdup(cfg->base ? cfg->base : "");
        d->filter = strdup(cfg->filter ? cfg->filter : "(objectClass=*)");
        d->id_attr = strdup(id);
        if (!d->uri || !d->base || !d->filter || !d->id_attr)
                return -ENOMEM;
        d->id_is_guid = strcasecmp(id, "objectGUID") == 0;
        d->scope = cfg->scope == OB_SCOPE_BASE  ? LDAP_SCOPE_BASE
                   : cfg->scope == OB_SCOPE_ONE ? LDAP_SCOPE_ONELEVEL
                                                : LDAP_SCOPE_SUBTREE;
        d->page_size = cfg->page_size > 0 ? cfg->page_size : OB_DIR_DEFAULT_PAGE_SIZE;
        if (d->page_size > OB_DIR_MAX_PAGE_SIZE)
                d->page_size = OB_DIR_MAX_PAGE_SIZE;
        d->timeout_ms = cfg->timeout_ms;
        if (cfg->writeback_time_attribute && !(d->time_attr = strdup(cfg->writeback_time_attribute)))
                return -ENOMEM;

        int r = 0;
        if (cfg->attributes)
                for (size_t i = 0; r == 0 && cfg->attributes[i]; i++)
                        r = strv_add_unique(&d->attrs, &n, cfg->attributes[i]);
        else
                r = strv_add_unique(&d->attrs, &n, "*"); /* every user attribute */
        if (r == 0)
                r = strv_add_unique(&d->attrs, &n, id);
        if (r < 0)
                return r;

        if (cfg->teams_base) {
                const char *tf = cfg->teams_filter ? cfg->teams_filter : "(objectClass=groupOfNames)";
                d->teams_base = strdup(cfg->teams_base);
                /* A bare "objectClass=x" is accepted and parenthesized. */
                if (asprintf(&d->teams_filter, tf[0] == '(' ? "%s" : "(%s)", tf) < 0)
                        d->teams_filter = NULL;
                d->teams_member = strdup(cfg->teams_member_attribute ? cfg->teams_member_attribute : "member");
                d->teams_owner = strdup(cfg->teams_owner_attribute ? cfg->teams_owner_attribute : "owner");
                if (!d->teams_base || !d->teams_filter || !d->teams_member || !d->teams_owner)
                        return -ENOMEM;
                n = 0;
                r = strv_add_unique(&d->team_attrs, &n, d->teams_owner);
                if (r == 0)
                        r = strv_add_unique(&d->team_attrs, &n, "cn");
                if (r == 0)
                        r = strv_add_unique(&d->team_attrs, &n, id);
                size_t m = 0;
                for (size_t i = 0; r == 0 && d->team_attrs[i]; i++)
                        r = strv_add_unique(&d->team_owned_attrs, &m, d->team_attrs[i]);
                if (r == 0)
                        r = strv_add_unique(&d->team_owned_attrs, &m, d->teams_member);
                if (r < 0)
                        return r;
        }
        return 0;
}

void ob_dir_free(struct ob_dir *d)
{
        if (!d)
                return;
        if (d->loop)
                dir_detach(d);
        if (d->ld)
                ldap_unbind_ext_s(d->ld, NULL, NULL);
        free(d->uri);
        free(d->base);
        free(d->filter);
        free(d->id_attr);
        strv_free(d->attrs);
        free(d->teams_base);
        free(d->teams_filter);
        free(d->teams_member);
        free(d->teams_owner);
        strv_free(d->team_attrs);
        strv_free(d->team_owned_attrs);
        free(d->time_attr);
        free(d);
}

/* ---- why a connection failed ------------------------------------------------------ */

/* libldap (GnuTLS on Debian) leaves "Connect error" and "(unknown error
 * code)" on the handle when a TLS handshake or the certificate check fails;
 * what failed is only in its debug output. While a connection is set up,
 * that output is collected (the TLS lines only, bounded) and read by
 * explain_connect(). The previous print function and level are restored.
 * Connections are set up one at a time (tls_diag_lock: ob_dir_open_on runs
 * them on a thread of their own), and only the lines of the thread setting
 * one up are kept: the loop's thread may use other connections meanwhile. */
static pthread_mutex_t tls_diag_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        pthread_t owner;
        bool on;
        size_t len;
        char text[2048];
        BER_LOG_PRINT_FN old_fn;
        int old_level;
} tls_diag;

static void tls_diag_print(const char *line)
{
        if (!tls_diag.on || !pthread_equal(tls_diag.owner, pthread_self()) || strncmp(line, "TLS", 3) != 0)
                return;
        size_t n = strlen(line), room = sizeof(tls_diag.text) - 1 - tls_diag.len;
        if (n > room)
                n = room;
        memcpy(tls_diag.text + tls_diag.len, line, n);
        tls_diag.len += n;
        tls_diag.text[tls_diag.len] = '\0';
}

static void tls_diag_start(void)
{
        int level = 0x0001; /* LDAP_DEBUG_TRACE (ldap_log.h, not installed) */
        tls_diag.len = 0;
        tls_diag.text[0] = '\0';
        tls_diag.old_fn = NULL;
        tls_diag.old_level = 0;
        ber_get_option(NULL, LBER_OPT_LOG_PRINT_FN, &tls_diag.old_fn);
        ldap_get_option(NULL, LDAP_OPT_DEBUG_LEVEL, &tls_diag.old_level);
        if (ber_set_option(NULL, LBER_OPT_LOG_PRINT_FN, (void *)tls_diag_print) != LBER_OPT_SUCCESS)
                return;
        tls_diag.owner = pthread_self();
        tls_diag.on = true;
        ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &level);
}

static void tls_diag_stop(void)
{
        if (!tls_diag.on)
                return;
        ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &tls_diag.old_level);
        if (tls_diag.old_fn)
                ber_set_option(NULL, LBER_OPT_LOG_PRINT_FN, (void *)tls_diag.old_fn);
        tls_diag.on = false;
}

/* Logs what failed while connecting (StartTLS, or the first operation on
 * ldaps://) and which setting fixes it. */
static void explain_connect(struct ob_dir *d, const struct ob_directory_config *cfg, const char *op, int rc)
{
        const char *t = tls_diag.text, *problem, *fix;
        if (rc == LDAP_SUCCESS)
                return; /* refused before anything was sent */
        /* GnuTLS's verification status, as libldap prints it: 0x200 not
         * activated, 0x400 expired, 0x20 revoked; the rest (0x40 signer
         * not found, 0x80 signer not a CA, 0x2 invalid) is "not trusted". */
        unsigned long status = 0;
        const char *st = strstr(t, "untrusted or revoked (0x");
        if (st)
                status = strtoul(st + strlen("untrusted or revoked ("), NULL, 16);
        bool tls = has_prefix_ci(d->uri, "ldaps://") || (cfg->starttls && has_prefix_ci(d->uri, "ldap://"));
        if (strstr(t, "does not match")) {
                problem = "the server's certificate does not name the host in directory.uri";
                fix = "use in directory.uri a name or address the certificate was issued for (a URI with "
                      "localhost is checked against this machine's own name)";
        } else if ((status & 0x600) || strstr(t, "expired") || strstr(t, "not yet valid") ||
                   strstr(t, "not activated")) {
                problem = "the server's certificate has expired or is not valid yet";
                fix = "renew the directory server's certificate (and check both clocks)";
        } else if (status & 0x20) {
                problem = "the server's certificate has been revoked";
                fix = "give the directory server a new certificate";
        } else if (strstr(t, "untrusted") || strstr(t, "not trusted") || strstr(t, "issuer") ||
                   strstr(t, "verif") || strstr(t, "signer")) {
                problem = "the server's certificate is not signed by a CA this agent trusts";
                fix = cfg->ca_file ? "directory.ca_file must hold the CA that issued the server's certificate "
                                     "(tls_verify: false only to test)"
                                   : "set directory.ca_file to the CA that issued the server's certificate "
                                     "(tls_verify: false only to test)";
        } else if (tls && *t) {
                problem = "the TLS handshake was refused or failed";
                fix = has_prefix_ci(d->uri, "ldaps://")
                              ? "check that directory.uri names the server's LDAPS port (ldap:// with "
                                "starttls: true for the plain port)"
                              : "check that the server offers StartTLS with a certificate on this port";
        } else if (strcmp(op, "starttls") == 0 && rc != LDAP_SERVER_DOWN && rc != LDAP_CONNECT_ERROR &&
                   rc != LDAP_TIMEOUT) {
                /* Samba supports StartTLS without listing it in the root
                 * DSE: the answer to the request is what counts. */
                problem = "the server refused StartTLS";
                fix = "use ldaps://, or enable StartTLS (a certificate) on the server";
        } else if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT) {
                problem = "the server cannot be reached";
                fix = "check directory.uri (host and port) and that the server runs";
        } else {
                return; /* dir_log said it */
        }
        /* The first TLS line libldap wrote, for the log. */
        char first[256];
        size_t n = strcspn(t, "\n");
        if (n >= sizeof(first))
                n = sizeof(first) - 1;
        memcpy(first, t, n);
        first[n] = '\0';
        ob_log(OB_LOG_ERROR, "event=ldap_connect_failed op=%s uri=%s problem=%s fix=%s detail=%s", op,
               ob_log_quote(d->uri), ob_log_quote(problem), ob_log_quote(fix), ob_log_quote(first));
}

/* Reads the root DSE: what the server supports, rather than assuming it.
 * A root DSE that cannot be read (an ACL) leaves the capabilities unknown. */
static int read_caps(struct ob_dir *d)
{
        char *attrs[] = {"supportedControl", "supportedExtension", "supportedCapabilities", "vendorName",
                         "vendorVersion", NULL};
        struct ob_account *dse = NULL;
        int r = read_entry(d, "", attrs, "read_root_dse", &dse);
        if (r < 0 || !dse)
                return r == -ENOMEM ? r : 0;
        const struct ob_attr *ctl = ob_account_attr(dse, "supportedControl");
        const struct ob_attr *cap = ob_account_attr(dse, "supportedCapabilities");
        d->caps_known = ctl && ctl->nvals > 0;
        for (size_t i = 0; ctl && i < ctl->nvals; i++)
                if (strcmp(ctl->vals[i].data, OB_OID_ASSERTION) == 0)
                        d->has_assertion = true;
                else if (strcmp(ctl->vals[i].data, OB_OID_PAGED) == 0)
                        d->has_paging = true;
                else if (strcmp(ctl->vals[i].data, LDAP_CONTROL_SYNC) == 0)
                        d->has_sync = true;
        for (size_t i = 0; cap && i < cap->nvals; i++)
                if (strcmp(cap->vals[i].data, OB_OID_AD_CAP) == 0)
                        d->is_ad = true;
        const char *vendor = ob_account_get(dse, "vendorName");
        const char *version = ob_account_get(dse, "vendorVersion");
        ob_log(OB_LOG_DEBUG, "event=ldap_server uri=%s vendor=%s version=%s assertion=%s active_directory=%s",
               ob_log_quote(d->uri), ob_log_quote(vendor ? vendor : ""), ob_log_quote(version ? version : ""),
               !d->caps_known ? "unknown" : d->has_assertion ? "yes" : "no", d->is_ad ? "yes" : "no");
        ob_account_free(dse);
        return 0;
}

/* What the configuration asks of the server that it does not offer: one
 * error at the start of a pass, never one failure per entry. */
static int check_caps(struct ob_dir *d, const struct ob_directory_config *cfg)
{
        if (cfg->writeback_assertion_attribute && d->caps_known && !d->has_assertion) {
                ob_log(OB_LOG_ERROR,
                       "event=ldap_feature_missing uri=%s feature=\"assertion control (RFC 4528, " OB_OID_ASSERTION
                       ")\" setting=writeback.assertion_attribute fix=%s",
                       ob_log_quote(d->uri),
                       ob_log_quote("this server does not support the assertion control (it is not in the root "
                                    "DSE's supportedControl): remove writeback.assertion_attribute (389-DS and "
                                    "Active Directory lack it), or every write-back would be refused"));
                return -OB_ECONFIG;
        }
        /* Every search sends the paged results control as critical. */
        if (d->caps_known && !d->has_paging) {
                ob_log(OB_LOG_ERROR,
                       "event=ldap_feature_missing uri=%s feature=\"paged results (RFC 2696, " OB_OID_PAGED
                       ")\" fix=%s",
                       ob_log_quote(d->uri),
                       ob_log_quote("this server does not offer paged results, which offboard needs to read "
                                    "every account"));
                return -OB_EDIRECTORY;
        }
        return 0;
}

static int dir_open(const struct ob_directory_config *cfg, struct ob_dir **ret)
{
        bool plain;
        int r;

        if (!cfg || !cfg->uri)
                return -EINVAL;
        r = uri_scheme(cfg->uri, &plain);
        if (r < 0) {
                ob_log(OB_LOG_ERROR, "event=ldap_uri_invalid uri=%s reason=\"%s\"", ob_log_quote(cfg->uri),
                       "expected ldap://, ldaps:// or ldapi:// URIs, all of one scheme");
                return r;
        }
        /* Refused before anything is sent: neither a password nor what the
         * decisions rest on (statuses, managers) crosses an unencrypted
         * connection unless the configuration says so; anonymous included. */
        if (plain && !cfg->starttls && !cfg->sasl_external && !cfg->allow_insecure)
                return -OB_EINSECURE;

        struct ob_dir *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        r = copy_config(d, cfg);
        if (r < 0)
                goto fail;

        int rc = ldap_initialize(&d->ld, d->uri);
        if (rc != LDAP_SUCCESS) {
                d->ld = NULL;
                dir_log(d, OB_LOG_ERROR, "initialize", NULL, rc, NULL);
                r = -OB_EDIRECTORY;
                goto fail;
        }
        int v3 = LDAP_VERSION3;
        int64_t tmo = d->timeout_ms > 0 ? d->timeout_ms : 30000;
        struct timeval tv = ms_to_tv(tmo);
        int idle = 60, probes = 3, interval = 10;
        unsigned user_timeout = (unsigned)(tmo > 120000 ? tmo : 120000);
        int require = cfg->tls_verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
        int is_server = 0;
        if ((r = set_opt(d, LDAP_OPT_PROTOCOL_VERSION, &v3, "set_protocol_version")) < 0 ||
            (r = set_opt(d, LDAP_OPT_REFERRALS, LDAP_OPT_OFF, "set_referrals")) < 0 ||
            (r = set_opt(d, LDAP_OPT_NETWORK_TIMEOUT, &tv, "set_network_timeout")) < 0 ||
            (d->timeout_ms > 0 && (r = set_opt(d, LDAP_OPT_TIMEOUT, &tv, "set_timeout")) < 0) ||
            (r = set_opt(d, LDAP_OPT_X_KEEPALIVE_IDLE, &idle, "set_keepalive_idle")) < 0 ||
            (r = set_opt(d, LDAP_OPT_X_KEEPALIVE_PROBES, &probes, "set_keepalive_probes")) < 0 ||
            (r = set_opt(d, LDAP_OPT_X_KEEPALIVE_INTERVAL, &interval, "set_keepalive_interval")) < 0 ||
            (r = set_opt(d, LDAP_OPT_TCP_USER_TIMEOUT, &user_timeout, "set_tcp_user_timeout")) < 0 ||
            (r = set_opt(d, LDAP_OPT_X_TLS_REQUIRE_CERT, &require, "set_tls_require_cert")) < 0 ||
            (cfg->ca_file && (r = set_opt(d, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file, "set_tls_cacertfile")) < 0) ||
            (r = set_opt(d, LDAP_OPT_X_TLS_NEWCTX, &is_server, "set_tls_newctx")) < 0)
                goto fail;

        tls_diag_start();
        if (plain && cfg->starttls) {
                rc = ldap_start_tls_s(d->ld, NULL, NULL);
                if (rc != LDAP_SUCCESS) {
                        tls_diag_stop();
                        dir_log(d, OB_LOG_ERROR, "starttls", NULL, rc, NULL);
                        explain_connect(d, cfg, "starttls", rc);
                        r = -OB_EDIRECTORY;
                        goto fail;
                }
        }
        /* On ldaps:// the handshake happens here. */
        rc = LDAP_SUCCESS;
        r = dir_bind(d, cfg, &rc);
        tls_diag_stop();
        if (r < 0) {
                explain_connect(d, cfg, "bind", rc);
                goto fail;
        }
        r = read_caps(d);
        if (r == 0)
                r = check_caps(d, cfg);
        if (r < 0)
                goto fail;
        *ret = d;
        return 0;
fail:
        ob_dir_free(d);
        return r;
}

int ob_dir_open(const struct ob_directory_config *cfg, struct ob_dir **ret)
{
        pthread_mutex_lock(&tls_diag_lock);
        int r = dir_open(cfg, ret);
        pthread_mutex_unlock(&tls_diag_lock);
        return r;
}

/* ---- connecting without stopping the loop ------------------------------------------ */

/* The connect, StartTLS and bind of ob_dir_open are libldap's synchronous
 * calls, each bounded by directory.timeout: against a server that does not
 * answer, up to three timeouts. On the loop's thread that would stop the
 * watchdog, /healthz, /metrics and the signals for as long. So the service
 * connects on a thread of its own and keeps turning the loop meanwhile;
 * the connection is handed over when it is set up (the eventfd orders it). */
struct opening {
        const struct ob_directory_config *cfg;
        bool quiet; /* the caller's ob_log_set_quiet, for the thread's lines */
        int efd;
        int result;
        struct ob_dir *d;
        bool done;
};

static void *opening_main(void *arg)
{
        struct opening *op = arg;
        ob_log_set_quiet(op->quiet);
        op->result = ob_dir_open(op->cfg, &op->d);
        uint64_t one = 1;
        while (write(op->efd, &one, sizeof(one)) < 0 && errno == EINTR)
                ;
        return NULL;
}

static void on_opened(struct ob_loop *l, int fd, unsigned events, void *ud)
{
        (void)events;
        struct opening *op = ud;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
                return; /* not yet (EAGAIN) */
        op->done = true;
        ob_loop_io(l, fd, 0, NULL, NULL);
        ob_loop_stop(l);
}

int ob_dir_open_on(struct ob_loop *l, const struct ob_directory_config *cfg, struct ob_dir **ret)
{
        if (!l)
                return ob_dir_open(cfg, ret);
        struct opening op = {.cfg = cfg, .quiet = ob_log_is_quiet(), .result = -EINTR};
        op.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (op.efd < 0)
                return -errno;
        int k = ob_loop_io(l, op.efd, OB_IO_READ, on_opened, &op);
        if (k < 0) {
                close(op.efd);
                return k;
        }
        /* The loop takes the signals (signalfd): none for this thread. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_t th;
        int e = pthread_create(&th, NULL, opening_main, &op);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e != 0) {
                ob_loop_io(l, op.efd, 0, NULL, NULL);
                close(op.efd);
                return -e;
        }
        /* Callbacks may stop the loop meanwhile (a signal, a pass falling
         * due): they leave flags that the caller reads once this returns. */
        while (!op.done && ob_loop_run(l) >= 0)
                ;
        pthread_join(th, NULL); /* at once, unless the loop failed */
        if (!op.done)
                ob_loop_io(l, op.efd, 0, NULL, NULL);
        close(op.efd);
        if (op.result == 0)
                *ret = op.d;
        return op.result;
}

/* ---- entries ------------------------------------------------------------------------ */

/* The canonical string of a 16-byte GUID as AD prints it: the first three
 * fields are little-endian. */
static void guid_to_string(const unsigned char *g, char out[37])
{
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1],
                 g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* Marks a as unreadable (the first reason wins). */
static int set_unreadable(struct ob_account *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_unreadable(struct ob_account *a, const char *fmt, ...)
{
        if (a->unreadable)
                return 0;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&a->unreadable, fmt, ap);
        va_end(ap);
        if (n < 0) {
                a->unreadable = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* ---- range retrieval (Active Directory) -------------------------------------------------------- */

int ob_dir_parse_range(const char *desc, size_t len, struct ob_dir_range *ret)
{
        static const char opt[] = ";range=";
        const size_t olen = sizeof(opt) - 1;
        size_t at = len;
        for (size_t i = 0; i + olen <= len; i++)
                if (strncasecmp(desc + i, opt, olen) == 0) {
                        if (at != len)
                                return -EBADMSG; /* two range options */
                        at = i;
                }
        if (at == len)
                return 0;
        if (at == 0)
                return -EBADMSG;
        struct ob_dir_range r = {.name_len = at};
        size_t i = at + olen;
        unsigned long *num[] = {&r.low, &r.high};
        for (int k = 0; k < 2; k++) {
                if (k == 1 && i < len && desc[i] == '*') {
                        r.last = true;
                        i++;
                        break;
                }
                size_t start = i;
                unsigned long v = 0;
                while (i < len && desc[i] >= '0' && desc[i] <= '9') {
                        if (v > (UINT32_MAX - (unsigned long)(desc[i] - '0')) / 10)
                                return -EBADMSG; /* AD's indexes are 32-bit */
                        v = v * 10 + (unsigned long)(desc[i++] - '0');
                }
                if (i == start)
                        return -EBADMSG;
                *num[k] = v;
                if (k == 0 && (i >= len || desc[i++] != '-'))
                        return -EBADMSG;
        }
        /* Nothing may follow: AD puts the range option last. */
        if (i != len || (!r.last && r.high < r.low))
                return -EBADMSG;
        *ret = r;
        return 1;
}

void ob_dir_set_range_step(struct ob_dir *d, unsigned long step)
{
        if (d)
                d->range_step = step;
}

/* What an entry still lacks: the attributes the server handed out in part,
 * each with the index its next range starts at. */
struct range_todo {
        char name[256]; /* the attribute description without its range option */
        unsigned long next;
        size_t nvals; /* values read so far */
};

struct ranges {
        struct range_todo *v;
        size_t n, i; /* v[i] is being read */
        size_t bytes; /* of the entry's values so far */
        bool got;     /* the range read in flight delivered its range */
        bool lenient; /* a range that cannot be read makes the entry unreadable (an account search), rather
                       * than failing the operation (a group read: a shorter list could pass a guard) */
};

static void ranges_clear(struct ranges *rg)
{
        free(rg->v);
        *rg = (struct ranges){0};
}

static int ranges_add(struct ranges *rg, const char *name, unsigned long next, size_t nvals)
{
        struct range_todo *nv = realloc(rg->v, (rg->n + 1) * sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        rg->v = nv;
        struct range_todo *t = &rg->v[rg->n++];
        snprintf(t->name, sizeof(t->name), "%s", name);
        t->next = next;
        t->nvals = nvals;
        return 0;
}

static bool ranges_pending(const struct ranges *rg)
{
        return rg && rg->i < rg->n;
}

/* A range the server gave cannot be used: the entry is unreadable (lenient)
 * or the operation fails. Logged here. */
static int range_failed(struct ranges *rg, struct ob_account *a, const char *attr, const char *why)
{
        ob_log(OB_LOG_ERROR, "event=ldap_range_failed dn=%s attribute=%s reason=%s", ob_log_quote(a->dn),
               ob_log_quote(attr), ob_log_quote(why));
        if (!rg || !rg->lenient)
                return -OB_EDIRECTORY;
        return set_unreadable(a, "its %s could not be read whole (range retrieval): %s", attr, why);
}

/* The attribute list of a request: attrs as given, or, with a range step on
 * AD, each one asked for in a first range of that many values (how the tests
 * reach the range path on Samba, which gives ranges only when asked).
 * *ret_owned is what the caller frees (NULL when attrs was returned). */
static char **request_attrs(struct ob_dir *d, char **attrs, char ***ret_owned)
{
        *ret_owned = NULL;
        if (!d->is_ad || !d->range_step || !attrs)
                return attrs;
        size_t n = 0, bytes = 0;
        while (attrs[n])
                bytes += strlen(attrs[n++]) + 32;
        char **v = malloc((n + 1) * sizeof(char *) + bytes);
        if (!v)
                return NULL;
        char *p = (char *)(v + n + 1);
        for (size_t i = 0; i < n; i++) {
                v[i] = p;
                bool plain = !strcmp(attrs[i], "1.1") || !strcmp(attrs[i], "*") || !strcmp(attrs[i], "+") ||
                             strchr(attrs[i], ';');
                int k = plain ? sprintf(p, "%s", attrs[i])
                              : sprintf(p, "%s;range=0-%lu", attrs[i], d->range_step - 1);
                p += k + 1;
        }
        v[n] = NULL;
        *ret_owned = v;
        return v;
}

/* Builds an account from an entry. need_id: an entry without a usable id is
 * delivered unreadable with a NULL id; otherwise its DN stands in. A value
 * over the limits is left out and makes the account unreadable: one hostile
 * entry holds that account, not every pass. An attribute handed out in
 * ranges (NAME;range=0-1499) is kept under its NAME, and what is still to be
 * read goes to rg (which the caller reads: ranges_read, or the loop's
 * operation), with the entry's size so far. */
static int entry_to_account(struct ob_dir *d, LDAPMessage *e, bool need_id, struct ob_account **ret,
                            struct ranges *rg)
{
        struct ob_account *a = ob_account_new();
        BerElement *ber = NULL;
        size_t bytes = 0;
        int r = 0;
        if (!a)
                return -ENOMEM;
        /* ldap_get_dn_ber/ldap_get_attribute_ber hand out values that point
         * into the message: one copy (into the account) instead of two. */
        struct berval dn = {0}, attr;
        BerVarray vals = NULL;
        if (ldap_get_dn_ber(d->ld, e, &ber, &dn) != LDAP_SUCCESS || !dn.bv_val) {
                dir_log(d, OB_LOG_ERROR, "get_dn", NULL, handle_errno(d), NULL);
                ber_free(ber, 0);
                ob_account_free(a);
                return -OB_EDIRECTORY;
        }
        a->dn = strndup(dn.bv_val, dn.bv_len);
        if (!a->dn) {
                ber_free(ber, 0);
                ob_account_free(a);
                return -ENOMEM;
        }
        char name[256];
        while (r == 0) {
                int rc = ldap_get_attribute_ber(d->ld, e, ber, &attr, &vals);
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "get_attribute", NULL, rc, NULL);
                        r = -OB_EDIRECTORY;
                        break;
                }
                if (!attr.bv_val)
                        break;
                if (attr.bv_len >= sizeof(name)) {
                        ber_memfree(vals);
                        vals = NULL;
                        continue;
                }
                memcpy(name, attr.bv_val, attr.bv_len);
                name[attr.bv_len] = '\0';
                struct ob_dir_range range;
                int k = ob_dir_parse_range(name, attr.bv_len, &range);
                if (k == 1)
                        name[range.name_len] = '\0';
                if (k < 0 || (k == 1 && range.low != 0)) {
                        /* Not a first range: what came before it is missing. */
                        r = range_failed(rg, a, name, "the server's range option does not parse or does not "
                                                      "start at 0");
                        ber_memfree(vals);
                        vals = NULL;
                        continue;
                }
                size_t nvals = 0;
                for (size_t i = 0; vals && vals[i].bv_val && r == 0; i++, nvals++) {
                        if (vals[i].bv_len > OB_DIR_MAX_VALUE_BYTES ||
                            bytes + vals[i].bv_len > OB_DIR_MAX_ENTRY_BYTES) {
                                r = set_unreadable(a,
                                                   "%s has a value of %zu bytes; the limits are %u bytes a value and "
                                                   "%u bytes an entry",
                                                   name, (size_t)vals[i].bv_len, OB_DIR_MAX_VALUE_BYTES,
                                                   OB_DIR_MAX_ENTRY_BYTES);
                                continue;
                        }
                        bytes += vals[i].bv_len;
                        r = ob_account_add(a, name, vals[i].bv_val, vals[i].bv_len);
                }
                ber_memfree(vals);
                vals = NULL;
                if (r == 0 && k == 1 && !range.last)
                        r = rg ? ranges_add(rg, name, range.high + 1, nvals)
                               : range_failed(rg, a, name, "handed out in ranges where it cannot be read further");
        }
        ber_free(ber, 0);
        if (rg)
                rg->bytes = bytes;
        if (r < 0) {
                ob_account_free(a);
                return r;
        }

        const struct ob_attr *ia = ob_account_attr(a, d->id_attr);
        if (!ia || ia->nvals == 0 || ia->vals[0].len == 0) {
                if (need_id)
                        r = set_unreadable(a, "its %s cannot be read (access rights?)", d->id_attr);
                else
                        a->id = strdup(a->dn);
        } else if (d->id_is_guid) {
                if (ia->vals[0].len != 16) {
                        r = set_unreadable(a, "its objectGUID is %zu bytes, not 16", ia->vals[0].len);
                } else {
                        char g[37];
                        guid_to_string((const unsigned char *)ia->vals[0].data, g);
                        a->id = strdup(g);
                }
        } else if (strlen(ia->vals[0].data) != ia->vals[0].len) {
                r = set_unreadable(a, "its %s holds a NUL byte", d->id_attr);
        } else {
                a->id = strdup(ia->vals[0].data);
        }
        if (r == 0 && !a->id && !a->unreadable)
                r = -ENOMEM;
        if (r < 0) {
                ob_account_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

/* Asks for the next range of rg's attribute in flight (MS-ADTS
 * 3.1.1.3.1.3.3): a base search of the entry for NAME;range=NEXT-*, or
 * NEXT-(NEXT+step-1) with a range step. */
static int range_send(struct ob_dir *d, const struct ranges *rg, const char *dn, int *ret_msgid)
{
        const struct range_todo *t = &rg->v[rg->i];
        char attr[300];
        if (d->range_step)
                snprintf(attr, sizeof(attr), "%s;range=%lu-%lu", t->name, t->next, t->next + d->range_step - 1);
        else
                snprintf(attr, sizeof(attr), "%s;range=%lu-*", t->name, t->next);
        char *attrs[] = {attr, NULL};
        struct timeval tl = ms_to_tv(d->timeout_ms);
        int rc = ldap_search_ext(d->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                                 d->timeout_ms >= 1000 ? &tl : NULL, 1, ret_msgid);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "read_range", dn, rc, NULL);
                return -OB_EDIRECTORY;
        }
        return 0;
}

/* The entry a range read returned: the values of the range asked for are
 * added to a, and rg says where the next one starts (or moves on to the
 * next attribute after the last). Other attributes are ignored. */
static int range_on_entry(struct ob_dir *d, struct ranges *rg, struct ob_account *a, LDAPMessage *e)
{
        struct range_todo *t = &rg->v[rg->i];
        BerElement *ber = NULL;
        struct berval dn = {0}, attr;
        BerVarray vals = NULL;
        if (ldap_get_dn_ber(d->ld, e, &ber, &dn) != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "get_dn", a->dn, handle_errno(d), NULL);
                ber_free(ber, 0);
                return -OB_EDIRECTORY;
        }
        int r = 0;
        while (r == 0) {
                int rc = ldap_get_attribute_ber(d->ld, e, ber, &attr, &vals);
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "get_attribute", a->dn, rc, NULL);
                        r = -OB_EDIRECTORY;
                        break;
                }
                if (!attr.bv_val)
                        break;
                struct ob_dir_range range;
                int k = ob_dir_parse_range(attr.bv_val, attr.bv_len, &range);
                if (k != 1 || range.name_len != strlen(t->name) ||
                    strncasecmp(attr.bv_val, t->name, range.name_len) != 0) {
                        ber_memfree(vals);
                        vals = NULL;
                        continue;
                }
                if (rg->got || range.low != t->next) {
                        r = range_failed(rg, a, t->name, "the server answered another range than the one asked for");
                } else {
                        rg->got = true;
                        size_t n = 0;
                        for (size_t i = 0; vals && vals[i].bv_val && r == 0; i++, n++) {
                                if (vals[i].bv_len > OB_DIR_MAX_VALUE_BYTES ||
                                    rg->bytes + vals[i].bv_len > OB_DIR_MAX_ENTRY_BYTES ||
                                    t->nvals + n >= OB_DIR_MAX_RANGE_VALUES) {
                                        ob_log(OB_LOG_ERROR,
                                               "event=ldap_range_too_large dn=%s attribute=%s values=%zu limits=\"%u "
                                               "bytes a value, %u bytes an entry, %u values\"",
                                               ob_log_quote(a->dn), ob_log_quote(t->name), t->nvals + n,
                                               OB_DIR_MAX_VALUE_BYTES, OB_DIR_MAX_ENTRY_BYTES,
                                               OB_DIR_MAX_RANGE_VALUES);
                                        r = -OB_ELIMIT;
                                        break;
                                }
                                rg->bytes += vals[i].bv_len;
                                r = ob_account_add(a, t->name, vals[i].bv_val, vals[i].bv_len);
                        }
                        t->nvals += n;
                        if (r == 0 && range.last) {
                                rg->i++;
                        } else if (r == 0 && n == 0) {
                                /* No value and not the last range: no progress. */
                                r = range_failed(rg, a, t->name, "an empty range that is not the last");
                        } else if (r == 0) {
                                t->next = range.high + 1;
                        }
                }
                ber_memfree(vals);
                vals = NULL;
        }
        ber_free(ber, 0);
        return r;
}

/* The result of a range read: 0 when the entry is whole, 1 when another
 * range is to be asked for, or the error. An answer without the range asked
 * for (the entry is gone, or its attribute lost values meanwhile) is an
 * error: the list would be shorter than it is. */
static int range_on_result(struct ob_dir *d, struct ranges *rg, struct ob_account *a, LDAPMessage *m)
{
        int res;
        if (parse_result(d, m, "read_range", a->dn, &res, NULL) != LDAP_SUCCESS)
                return ldap_to_ob(res) == -ENOMEM ? -ENOMEM : -OB_EDIRECTORY;
        if (!rg->got && rg->i < rg->n) {
                const char *name = rg->v[rg->i].name;
                int r = range_failed(rg, a, name, "the next range was not in the answer (the entry changed?)");
                if (r < 0)
                        return r;
                rg->i++; /* lenient: the entry is unreadable; the others are still read */
        }
        rg->got = false;
        return rg->i < rg->n ? 1 : 0;
}

/* A referral where the entry was: never followed. */
static int range_referral(struct ob_account *a)
{
        ob_log(OB_LOG_ERROR, "event=ldap_reference target=%s note=\"the entry is held by another server\"",
               ob_log_quote(a->dn));
        return -OB_EDIRECTORY;
}

/* Reads what rg says a still lacks, waiting here. */
static int ranges_read(struct ob_dir *d, struct ranges *rg, struct ob_account *a)
{
        int r = 0;
        while (r == 0 && ranges_pending(rg)) {
                int msgid = -1;
                if ((r = range_send(d, rg, a->dn, &msgid)) < 0)
                        break;
                for (;;) {
                        LDAPMessage *m = NULL;
                        int t = wait_msg(d, msgid, "read_range", a->dn, &m);
                        if (t < 0) {
                                r = t; /* abandoned on a timeout */
                                break;
                        }
                        if (t == LDAP_RES_SEARCH_RESULT) {
                                int k = range_on_result(d, rg, a, m);
                                ldap_msgfree(m);
                                r = r < 0 ? r : k < 0 ? k : 0;
                                break;
                        }
                        if (r == 0 && t == LDAP_RES_SEARCH_ENTRY)
                                r = range_on_entry(d, rg, a, m);
                        else if (r == 0 && t == LDAP_RES_SEARCH_REFERENCE)
                                r = range_referral(a);
                        ldap_msgfree(m);
                }
        }
        return r;
}

/* ---- paged search ----------------------------------------------------------------------- */

/* Adds the DNs the reference message m points at to info (or fails the
 * search when info is NULL: a list that must be whole is not). */
static int note_reference(struct ob_dir *d, LDAPMessage *m, const char *base, struct ob_dir_search_info *info)
{
        char **urls = NULL;
        int rc = ldap_parse_reference(d->ld, m, &urls, NULL, 0);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "parse_reference", base, rc, NULL);
                return -OB_EDIRECTORY;
        }
        int r = 0;
        if (!info) {
                ob_log(OB_LOG_ERROR,
                       "event=ldap_reference base=%s url=%s note=\"part of the search is held by another "
                       "server; the result would be incomplete\"",
                       ob_log_quote(base), ob_log_quote(urls && urls[0] ? urls[0] : ""));
                r = -OB_EDIRECTORY;
        }
        size_t n = 0;
        while (info && info->references && info->references[n])
                n++;
        for (size_t i = 0; r == 0 && urls && urls[i]; i++) {
                if (n >= OB_DIR_MAX_REFERENCES) {
                        ob_log(OB_LOG_ERROR, "event=ldap_too_many_references base=%s limit=%d", ob_log_quote(base),
                               OB_DIR_MAX_REFERENCES);
                        r = -OB_ELIMIT;
                        break;
                }
                LDAPURLDesc *lud = NULL;
                const char *target = "";
                if (ldap_url_parse(urls[i], &lud) == LDAP_URL_SUCCESS && lud->lud_dn)
                        target = lud->lud_dn;
                ob_log(OB_LOG_WARNING, "event=ldap_reference base=%s url=%s subtree=%s", ob_log_quote(base),
                       ob_log_quote(urls[i]), ob_log_quote(target));
                char **nv = realloc(info->references, (n + 2) * sizeof(char *));
                if (!nv || !(nv[n] = strdup(target))) {
                        if (nv)
                                info->references = nv;
                        r = -ENOMEM;
                } else {
                        nv[++n] = NULL;
                        info->references = nv;
                }
                if (lud)
                        ldap_free_urldesc(lud);
        }
        ber_memvfree((void **)urls);
        return r;
}

void ob_dir_search_info_clear(struct ob_dir_search_info *info)
{
        if (!info)
                return;
        strv_free(info->references);
        free(info->dirsync_cookie);
        *info = (struct ob_dir_search_info){0};
}

/* A paged search, waited for here (paged_search) or driven by the event
 * loop (ob_dir_search_accounts_start): the same page and message handling. */
struct dir_search {
        const char *base; /* borrowed from the ob_dir */
        int scope;
        char *filter;
        char **attrs; /* borrowed from the ob_dir */
        bool need_id;
        bool show_deleted; /* AD's show-deleted control: tombstones too */
        bool dirsync;      /* AD's DirSync control instead of paging; cookie is DirSync's */
        ob_dir_entry_fn fn;
        void *userdata;
        struct ob_dir_search_info *info;
        struct berval *cookie;
        size_t pages;
        int64_t deadline;
        int msgid;
        /* Entries of the page the server handed out in part (range
         * retrieval): delivered once their ranges are read, before the next
         * page is asked for. While ranging, msgid is the range read's. */
        struct range_wait {
                struct ob_account *a;
                struct ranges rg;
        } *waiting;
        size_t nwaiting, wi;
        bool ranging;
};

static void search_clear(struct dir_search *s)
{
        free(s->filter);
        ber_bvfree(s->cookie);
        s->filter = NULL;
        s->cookie = NULL;
        for (size_t i = 0; i < s->nwaiting; i++) {
                ob_account_free(s->waiting[i].a);
                ranges_clear(&s->waiting[i].rg);
        }
        free(s->waiting);
        s->waiting = NULL;
        s->nwaiting = s->wi = 0;
        s->ranging = false;
}

/* Sends the next page's request (s->cookie, the previous page's). */
static int search_send_page(struct ob_dir *d, struct dir_search *s)
{
        if (++s->pages > d->max_pages) {
                ob_log(OB_LOG_ERROR,
                       "event=ldap_search_too_long base=%s pages=%zu max_pages=%zu note=\"raise "
                       "directory.max_pages or page_size if the directory really is this large\"",
                       ob_log_quote(s->base), s->pages - 1, d->max_pages);
                return -OB_ESIZELIMIT;
        }
        LDAPControl *page = NULL;
        int rc = LDAP_SUCCESS;
        struct berval *dsv = NULL;
        LDAPControl dirsync = {.ldctl_oid = OB_OID_AD_DIRSYNC, .ldctl_iscritical = 1};
        if (s->dirsync) {
                /* MS-ADTS 3.1.1.3.4.1.3: {flags, maxBytes, cookie}; object
                 * security: what the service account may read, no
                 * replication right needed. */
                BerElement *ber = ber_alloc_t(LBER_USE_DER);
                struct berval none = {0, (char *)""};
                if (!ber || ber_printf(ber, "{iiO}", (ber_int_t)OB_DIRSYNC_OBJECT_SECURITY, (ber_int_t)(1 << 20),
                                       s->cookie ? s->cookie : &none) < 0 ||
                    ber_flatten(ber, &dsv) < 0)
                        rc = LDAP_NO_MEMORY;
                ber_free(ber, 1);
                if (dsv)
                        dirsync.ldctl_value = *dsv;
        } else {
                rc = ldap_create_page_control(d->ld, d->page_size, s->cookie, 1, &page);
        }
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "create_page_control", s->base, rc, NULL);
                ber_bvfree(dsv);
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
        }
        LDAPControl deleted = {.ldctl_oid = OB_OID_AD_SHOW_DELETED, .ldctl_iscritical = 1};
        LDAPControl *sctrls[] = {s->dirsync ? &dirsync : page, s->show_deleted ? &deleted : NULL, NULL};
        struct timeval tl = ms_to_tv(d->timeout_ms);
        s->msgid = -1;
        char **owned = NULL;
        char **attrs = s->dirsync ? s->attrs : request_attrs(d, s->attrs, &owned);
        rc = !s->attrs || attrs ? ldap_search_ext(d->ld, s->base, s->scope, s->filter, attrs, 0, sctrls, NULL,
                                                  d->timeout_ms >= 1000 ? &tl : NULL, LDAP_NO_LIMIT, &s->msgid)
                                : LDAP_NO_MEMORY;
        free(owned);
        ldap_control_free(page);
        ber_bvfree(dsv);
        ber_bvfree(s->cookie);
        s->cookie = NULL;
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "search", s->base, rc, NULL);
                return rc == LDAP_NO_MEMORY                      ? -ENOMEM
                       : ldap_to_ob(rc) == -OB_ESIZELIMIT ? -OB_ESIZELIMIT
                                                          : -OB_EDIRECTORY;
        }
        return 0;
}

/* One message of the page in flight (or of a range read after it, which
 * changes s->msgid): 0 to go on, 1 when the page ended and its entries
 * were delivered (s->cookie then says whether another follows), or the
 * error or the callback's non-zero return that ends the search (the
 * request is then abandoned). */
static int search_deliver(struct dir_search *s, const struct ob_account *a)
{
        if (s->info) {
                s->info->entries++;
                s->info->unreadable += a->unreadable != NULL;
        }
        if (a->unreadable)
                ob_log(OB_LOG_WARNING, "event=ldap_entry_unreadable dn=%s reason=%s", ob_log_quote(a->dn),
                       ob_log_quote(a->unreadable));
        return s->fn(a, s->userdata);
}

/* Asks for the next range the waiting entries lack, delivering those that
 * are whole: 0 when a read is in flight (s->msgid), 1 when every entry of
 * the page was delivered, or the error or the callback's return. */
static int search_next_range(struct ob_dir *d, struct dir_search *s)
{
        while (s->wi < s->nwaiting) {
                struct range_wait *w = &s->waiting[s->wi];
                if (ranges_pending(&w->rg)) {
                        s->ranging = true;
                        return range_send(d, &w->rg, w->a->dn, &s->msgid);
                }
                int r = search_deliver(s, w->a);
                ob_account_free(w->a);
                ranges_clear(&w->rg);
                w->a = NULL;
                s->wi++;
                if (r != 0) {
                        /* The callback stops the search: no next page. */
                        ber_bvfree(s->cookie);
                        s->cookie = NULL;
                        return r;
                }
        }
        s->ranging = false;
        free(s->waiting);
        s->waiting = NULL;
        s->nwaiting = s->wi = 0;
        return 1;
}

/* One message of the range read in flight (search_on_msg's). */
static int search_on_range_msg(struct ob_dir *d, struct dir_search *s, LDAPMessage *m)
{
        struct range_wait *w = &s->waiting[s->wi];
        int t = ldap_msgtype(m);
        if (t == LDAP_RES_SEARCH_ENTRY)
                return range_on_entry(d, &w->rg, w->a, m);
        if (t == LDAP_RES_SEARCH_REFERENCE)
                return range_referral(w->a);
        if (t != LDAP_RES_SEARCH_RESULT)
                return 0;
        int k = range_on_result(d, &w->rg, w->a, m);
        if (k < 0)
                return k;
        return search_next_range(d, s);
}

static int search_on_msg(struct ob_dir *d, struct dir_search *s, LDAPMessage *m)
{
        int r = 0;
        int t = ldap_msgtype(m);
        if (s->ranging) {
                r = search_on_range_msg(d, s, m);
                if (r != 0 && r != 1)
                        ldap_abandon_ext(d->ld, s->msgid, NULL, NULL);
                return r;
        }
        if (t == LDAP_RES_SEARCH_ENTRY) {
                struct ob_account *a = NULL;
                struct ranges rg = {.lenient = s->need_id};
                r = entry_to_account(d, m, s->need_id, &a, &rg);
                if (r == 0 && ranges_pending(&rg)) {
                        /* Read the rest once the page is in. */
                        struct range_wait *nw = s->nwaiting < OB_DIR_MAX_RANGE_WAITING
                                                        ? realloc(s->waiting, (s->nwaiting + 1) * sizeof(*nw))
                                                        : NULL;
                        if (!nw) {
                                if (s->nwaiting >= OB_DIR_MAX_RANGE_WAITING)
                                        ob_log(OB_LOG_ERROR, "event=ldap_too_many_ranges base=%s limit=%d",
                                               ob_log_quote(s->base), OB_DIR_MAX_RANGE_WAITING);
                                r = s->nwaiting >= OB_DIR_MAX_RANGE_WAITING ? -OB_ELIMIT : -ENOMEM;
                        } else {
                                s->waiting = nw;
                                s->waiting[s->nwaiting++] = (struct range_wait){.a = a, .rg = rg};
                                a = NULL;
                                rg = (struct ranges){0};
                        }
                } else if (r == 0) {
                        r = search_deliver(s, a);
                }
                ob_account_free(a);
                ranges_clear(&rg);
        } else if (t == LDAP_RES_SEARCH_RESULT) {
                LDAPControl **rctrls = NULL;
                int res;
                if (parse_result(d, m, "search", s->base, &res, &rctrls) != LDAP_SUCCESS) {
                        /* A missing base is an error, not "no accounts". */
                        int e = ldap_to_ob(res);
                        if (res == LDAP_NO_SUCH_OBJECT)
                                ob_log(OB_LOG_ERROR,
                                       "event=ldap_base_missing base=%s fix=\"the search base does not exist, or the "
                                       "service account cannot see it: check directory.base (or teams.base)\"",
                                       ob_log_quote(s->base));
                        return e == -OB_ESIZELIMIT || e == -ENOMEM ? e : -OB_EDIRECTORY;
                }
                LDAPControl *dc = s->dirsync ? ldap_control_find(OB_OID_AD_DIRSYNC, rctrls, NULL) : NULL;
                if (s->dirsync) {
                        /* More asks again with the cookie; the last one is
                         * the caller's. */
                        bool more = false;
                        const char *c = NULL;
                        size_t clen = 0;
                        int k = dc ? ob_dir_dirsync_parse_reply(dc->ldctl_value.bv_val, dc->ldctl_value.bv_len, &more,
                                                                &c, &clen)
                                   : -EBADMSG;
                        if (k == -ENOMEM) {
                                r = -ENOMEM;
                        } else if (k < 0) {
                                ob_log(OB_LOG_ERROR, "event=ldap_dirsync_failed base=%s note=\"the answer carries no "
                                                     "usable DirSync control\"",
                                       ob_log_quote(s->base));
                                r = -OB_EDIRECTORY;
                        } else if (more && clen) {
                                struct berval bv = {clen, (char *)c};
                                if (!(s->cookie = ber_bvdup(&bv)))
                                        r = -ENOMEM;
                        } else if (s->info) {
                                free(s->info->dirsync_cookie);
                                s->info->dirsync_cookie = malloc(clen ? clen : 1);
                                if (!s->info->dirsync_cookie)
                                        r = -ENOMEM;
                                else
                                        memcpy(s->info->dirsync_cookie, c, clen);
                                s->info->dirsync_cookie_len = clen;
                        }
                }
                LDAPControl *pc = s->dirsync ? NULL : ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
                if (pc) {
                        ber_int_t estimate = 0;
                        struct berval c = {0, NULL};
                        int rc = ldap_parse_pageresponse_control(d->ld, pc, &estimate, &c);
                        if (rc != LDAP_SUCCESS) {
                                dir_log(d, OB_LOG_ERROR, "parse_page_control", s->base, rc, NULL);
                                r = -OB_EDIRECTORY;
                        } else if (c.bv_len > 0 && !(s->cookie = ber_bvdup(&c)))
                                r = -ENOMEM;
                        ber_memfree(c.bv_val);
                }
                /* No page control: the server sent everything at once. */
                ldap_controls_free(rctrls);
                if (r == 0 && s->nwaiting) {
                        /* 0: a range read is in flight (s->msgid). */
                        r = search_next_range(d, s);
                        if (r < 0 && s->ranging)
                                ldap_abandon_ext(d->ld, s->msgid, NULL, NULL);
                        return r;
                }
                return r ? r : 1;
        } else if (t == LDAP_RES_SEARCH_REFERENCE) {
                /* Referrals are not chased: what another server holds was
                 * not read, and the caller must know. */
                r = note_reference(d, m, s->base, s->info);
        }
        if (r != 0)
                ldap_abandon_ext(d->ld, s->msgid, NULL, NULL);
        return r;
}

static void search_too_long(struct ob_dir *d, struct dir_search *s)
{
        ldap_abandon_ext(d->ld, s->msgid, NULL, NULL);
        ob_log(OB_LOG_ERROR,
               "event=ldap_search_too_long base=%s pages=%zu search_deadline_ms=%lld "
               "note=\"the whole search did not end within directory.search_deadline\"",
               ob_log_quote(s->base), s->pages, (long long)d->search_deadline_ms);
}

/* Paged search streaming every entry to fn, waited for here. Any result
 * other than success on any page fails the search; a callback's non-zero
 * return stops it. The whole search has a deadline and a page cap.
 * References go to info, or fail the search when info is NULL. */
static int paged_search(struct ob_dir *d, const char *base, int scope, const char *filter, char **attrs, bool need_id,
                        ob_dir_entry_fn fn, void *userdata, struct ob_dir_search_info *info)
{
        struct dir_search s = {.base = base, .scope = scope, .filter = strdup(filter), .attrs = attrs,
                               .need_id = need_id, .fn = fn, .userdata = userdata, .info = info,
                               .deadline = monotonic_ms() + d->search_deadline_ms};
        int r = s.filter ? search_send_page(d, &s) : -ENOMEM;
        while (r == 0) {
                int64_t left = s.deadline - monotonic_ms();
                if (left <= 0) {
                        search_too_long(d, &s);
                        r = -OB_ESIZELIMIT;
                        break;
                }
                /* Everything received so far in one call: a page costs a
                 * few reads and polls, not two reads and a poll an entry. */
                LDAPMessage *chain = NULL;
                int64_t wait = d->timeout_ms > 0 && d->timeout_ms < left ? d->timeout_ms : left;
                int t = wait_msgs(d, s.msgid, LDAP_MSG_RECEIVED, wait, "search", base, &chain);
                if (t < 0) {
                        r = wait < d->timeout_ms && monotonic_ms() >= s.deadline ? -OB_ESIZELIMIT : t;
                        break;
                }
                for (LDAPMessage *m = ldap_first_message(d->ld, chain); m && r == 0; m = ldap_next_message(d->ld, m))
                        r = search_on_msg(d, &s, m);
                ldap_msgfree(chain);
                if (r == 1)
                        r = s.cookie ? search_send_page(d, &s) : 2;
        }
        search_clear(&s);
        return r == 2 ? 0 : r;
}

/* 389-DS answers a paged search of a base that does not exist with success
 * and no entries: a missing base must not pass for "no accounts". */
static int search_base_exists(struct ob_dir *d)
{
        char *none[] = {"1.1", NULL};
        struct ob_account *b = NULL;
        int r = read_entry(d, d->base, none, "read_base", &b);
        if (r == 0 && !b) {
                ob_log(OB_LOG_ERROR,
                       "event=ldap_base_missing base=%s fix=\"the search base does not exist, or the "
                       "service account cannot see it: check directory.base\"",
                       ob_log_quote(d->base));
                r = -OB_EDIRECTORY;
        }
        ob_account_free(b);
        return r;
}

int ob_dir_search_accounts(struct ob_dir *d, ob_dir_entry_fn fn, void *userdata, struct ob_dir_search_info *ret_info)
{
        if (!d || !fn)
                return -EINVAL;
        struct ob_dir_search_info info = {0};
        int r = paged_search(d, d->base, d->scope, d->filter, d->attrs, true, fn, userdata, &info);
        if (r == 0 && info.entries == 0 && !info.references)
                r = search_base_exists(d);
        if (r == 0 && ret_info)
                *ret_info = info;
        else
                ob_dir_search_info_clear(&info);
        return r;
}

/* ---- one entry ----------------------------------------------------------------------------- */

static bool ava_equal(const LDAPAVA *a, const LDAPAVA *b)
{
        const struct berval *va = &a->la_value, *vb = &b->la_value;
        return a->la_attr.bv_len == b->la_attr.bv_len &&
               strncasecmp(a->la_attr.bv_val, b->la_attr.bv_val, a->la_attr.bv_len) == 0 && va->bv_len == vb->bv_len &&
               strncasecmp(va->bv_val, vb->bv_val, va->bv_len) == 0;
}

static bool rdn_equal(LDAPRDN x, LDAPRDN y)
{
        size_t i;
        for (i = 0; x[i] && y[i]; i++)
                if (!ava_equal(x[i], y[i]))
                        return false;
        return !x[i] && !y[i];
}

/* Whether dn lies within base and scope (compared RDN by RDN, attribute names
 * and ASCII case ignored). Returns 1, 0, or -EINVAL for an unparsable DN. */
static int dn_in_scope(const char *dn, const char *base, int scope)
{
        LDAPDN x = NULL, y = NULL;
        int r = -EINVAL;
        if (ldap_str2dn(dn, &x, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
                goto out;
        if (ldap_str2dn(base, &y, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
                goto out;
        size_t nx = 0, ny = 0;
        while (x && x[nx])
                nx++;
        while (y && y[ny])
                ny++;
        r = 0;
        if (nx < ny)
                goto out;
        for (size_t i = 0; i < ny; i++)
                if (!rdn_equal(x[nx - ny + i], y[i]))
                        goto out;
        r = scope == LDAP_SCOPE_BASE ? nx == ny : scope == LDAP_SCOPE_ONELEVEL ? nx == ny + 1 : 1;
out:
        ldap_dnfree(x);
        ldap_dnfree(y);
        return r;
}

int ob_dn_in_subtree(const char *dn, const char *base)
{
        if (!dn || !base)
                return -EINVAL;
        return dn_in_scope(dn, base, LDAP_SCOPE_SUBTREE);
}

int ob_dn_equal(const char *a, const char *b)
{
        if (!a || !b)
                return -EINVAL;
        return dn_in_scope(a, b, LDAP_SCOPE_BASE);
}

/* Base-scope read of dn; *ret is NULL (and 0 returned) if it does not exist. */
static int read_entry(struct ob_dir *d, const char *dn, char **attrs, const char *op, struct ob_account **ret)
{
        int msgid = -1;
        struct timeval tl = ms_to_tv(d->timeout_ms);
        char **owned = NULL;
        char **ask = *dn ? request_attrs(d, attrs, &owned) : attrs; /* the root DSE has no ranges */
        int rc = ask || !attrs ? ldap_search_ext(d->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", ask, 0, NULL,
                                                 NULL, d->timeout_ms >= 1000 ? &tl : NULL, 1, &msgid)
                               : LDAP_NO_MEMORY;
        free(owned);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, op, dn, rc, NULL);
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
        }
        struct ob_account *found = NULL;
        struct ranges rg = {0};
        int r = 0;
        for (;;) {
                LDAPMessage *m = NULL;
                int t = wait_msg(d, msgid, op, dn, &m);
                if (t < 0) {
                        r = t;
                        break;
                }
                if (t == LDAP_RES_SEARCH_ENTRY && !found && r == 0) {
                        int k = entry_to_account(d, m, false, &found, &rg);
                        if (k < 0)
                                r = k;
                } else if (t == LDAP_RES_SEARCH_RESULT) {
                        int res;
                        if (parse_result(d, m, op, dn, &res, NULL) != LDAP_SUCCESS)
                                r = res == LDAP_NO_SUCH_OBJECT   ? 0
                                    : ldap_to_ob(res) == -ENOMEM ? -ENOMEM
                                                                 : -OB_EDIRECTORY;
                        ldap_msgfree(m);
                        break;
                }
                ldap_msgfree(m);
        }
        if (r == 0 && found)
                r = ranges_read(d, &rg, found);
        ranges_clear(&rg);
        if (r < 0) {
                ob_account_free(found);
                return r;
        }
        *ret = found;
        return 0;
}

int ob_dir_read_account(struct ob_dir *d, const char *dn, struct ob_account **ret)
{
        if (!d || !dn || !*dn)
                return -EINVAL;
        int in = dn_in_scope(dn, d->base, d->scope);
        if (in <= 0) {
                ob_log(OB_LOG_INFO, "event=ldap_read_refused dn=%s reason=\"%s\"", ob_log_quote(dn),
                       in < 0 ? "not a valid DN" : "outside the account base and scope");
                return -OB_ENOTFOUND;
        }
        struct ob_account *a = NULL;
        int r = read_entry(d, dn, d->attrs, "read_account", &a);
        if (r < 0)
                return r;
        if (!a)
                return -OB_ENOTFOUND;
        *ret = a;
        return 0;
}

/* ---- validate --online --------------------------------------------------------------------------- */

static int stop_at_first(const struct ob_account *a, void *userdata)
{
        (void)a;
        (void)userdata;
        return 1;
}

/* Whether dn exists (a read the service account may do); logs what is
 * missing under the name of the setting. */
static int check_exists(struct ob_dir *d, const char *dn, const char *setting)
{
        char *none[] = {"1.1", NULL};
        struct ob_account *a = NULL;
        int r = read_entry(d, dn, none, "check", &a);
        if (r < 0)
                return r;
        if (!a) {
                ob_log(OB_LOG_ERROR, "event=ldap_dn_missing setting=%s dn=%s fix=%s", setting, ob_log_quote(dn),
                       ob_log_quote("the entry does not exist, or the service account cannot see it"));
                return -OB_ENOTFOUND;
        }
        ob_account_free(a);
        return 0;
}

int ob_dir_check(struct ob_dir *d, const char *fallback_dn)
{
        if (!d)
                return -EINVAL;
        int r = check_exists(d, d->base, "directory.base");
        if (r == 0 && d->teams_base)
                r = check_exists(d, d->teams_base, "directory.teams.base");
        if (r == 0 && d->teams_base) {
                /* One entry is enough to know the filter is accepted. */
                r = paged_search(d, d->teams_base, LDAP_SCOPE_SUBTREE, d->teams_filter, d->team_attrs, false,
                                 stop_at_first, NULL, NULL);
                if (r == 1)
                        r = 0;
                if (r < 0)
                        ob_log(OB_LOG_ERROR, "event=ldap_teams_unusable base=%s filter=%s fix=%s",
                               ob_log_quote(d->teams_base), ob_log_quote(d->teams_filter),
                               ob_log_quote("check directory.teams.filter and the service account's rights"));
        }
        if (r == 0 && fallback_dn)
                r = check_exists(d, fallback_dn, "transfer.fallback");
        return r;
}

/* ---- teams ------------------------------------------------------------------------------------- */

struct team_list {
        struct ob_account **v;
        size_t n;
};

static int collect_team(const struct ob_account *a, void *userdata)
{
        struct team_list *l = userdata;
        if (l->n >= OB_DIR_MAX_TEAMS) {
                ob_log(OB_LOG_ERROR, "event=ldap_too_many_teams dn=%s limit=%d", ob_log_quote(a->dn), OB_DIR_MAX_TEAMS);
                return -OB_ELIMIT;
        }
        /* The account is borrowed: copy it. */
        struct ob_account *c = ob_account_new();
        if (!c)
                return -ENOMEM;
        c->id = strdup(a->id);
        c->dn = strdup(a->dn);
        int r = c->id && c->dn ? 0 : -ENOMEM;
        /* Read in part stays read in part: the copy must not look whole. */
        if (r == 0 && a->unreadable && !(c->unreadable = strdup(a->unreadable)))
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < a->nattrs; i++)
                for (size_t j = 0; r == 0 && j < a->attrs[i].nvals; j++)
                        r = ob_account_add(c, a->attrs[i].name, a->attrs[i].vals[j].data, a->attrs[i].vals[j].len);
        if (r < 0) {
                ob_account_free(c);
                return r;
        }
        struct ob_account **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
        if (!nv) {
                ob_account_free(c);
                return -ENOMEM;
        }
        l->v = nv;
        l->v[l->n++] = c;
        return 0;
}

static int cmp_dn(const void *x, const void *y)
{
        const struct ob_account *a = *(struct ob_account *const *)x, *b = *(struct ob_account *const *)y;
        return strcmp(a->dn, b->dn);
}

/* Teams whose attr holds dn, with attrs, in DN order. */
static int search_teams_by(struct ob_dir *d, const char *attr, const char *dn, char **attrs, ob_dir_entry_fn fn,
                           void *userdata)
{
        if (!d || !dn || !fn)
                return -EINVAL;
        if (!d->teams_base)
                return 0;
        struct ob_buf f;
        ob_buf_init(&f);
        int r = ob_buf_printf(&f, "(&%s(%s=", d->teams_filter, attr);
        if (r == 0)
                r = ob_escape_ldap_filter(&f, dn, strlen(dn));
        if (r == 0)
                r = ob_buf_adds(&f, "))");
        if (r < 0) {
                ob_buf_free(&f);
                return r;
        }
        struct team_list l = {0};
        r = paged_search(d, d->teams_base, LDAP_SCOPE_SUBTREE, f.data, attrs, false, collect_team, &l, NULL);
        ob_buf_free(&f);
        if (r == 0 && l.n > 1)
                qsort(l.v, l.n, sizeof(*l.v), cmp_dn);
        /* A team read in part (a value over the limits) is not a shorter
         * team: its members and owners decide guards and transfers. */
        for (size_t i = 0; r == 0 && i < l.n; i++)
                if (l.v[i]->unreadable) {
                        ob_log(OB_LOG_ERROR, "event=team_unreadable dn=%s reason=%s", ob_log_quote(l.v[i]->dn),
                               ob_log_quote(l.v[i]->unreadable));
                        r = -OB_EDIRECTORY;
                }
        for (size_t i = 0; r == 0 && i < l.n; i++)
                r = fn(l.v[i], userdata);
        for (size_t i = 0; i < l.n; i++)
                ob_account_free(l.v[i]);
        free(l.v);
        return r;
}

int ob_dir_search_teams(struct ob_dir *d, const char *member_dn, ob_dir_entry_fn fn, void *userdata)
{
        return d ? search_teams_by(d, d->teams_member, member_dn, d->team_attrs, fn, userdata) : -EINVAL;
}

int ob_dir_search_teams_owned(struct ob_dir *d, const char *owner_dn, ob_dir_entry_fn fn, void *userdata)
{
        if (!d)
                return -EINVAL;
        return search_teams_by(d, d->teams_owner, owner_dn, d->team_owned_attrs, fn, userdata);
}

/* ---- write ---------------------------------------------------------------------------------------- */

static bool valid_attr_name(const char *s)
{
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.' || *p == ';'))
                        return false;
        return true;
}

static bool has_object_class(const struct ob_account *a, const char *oc)
{
        const struct ob_attr *at = ob_account_attr(a, "objectClass");
        for (size_t i = 0; at && i < at->nvals; i++)
                if (strcasecmp(at->vals[i].data, oc) == 0)
                        return true;
        return false;
}

static int replace_send(struct ob_dir *d, const char *dn, bool add_oc, const char *object_class,
                        const struct ob_dir_mod *mods, size_t nmods, const char *assert_attr, const char *assert_value,
                        int *ret_msgid);

static int replace_check(const char *dn, const char *object_class, const struct ob_dir_mod *mods, size_t nmods,
                         const char *assert_attr, const char *assert_value)
{
        if (!dn || (!mods && nmods) || (!!assert_attr != !!assert_value) ||
            (assert_attr && !valid_attr_name(assert_attr)) || (object_class && !valid_attr_name(object_class)))
                return -EINVAL;
        for (size_t i = 0; i < nmods; i++)
                if (!valid_attr_name(mods[i].attribute) || !mods[i].values)
                        return -EINVAL;
        return 0;
}

int ob_dir_replace(struct ob_dir *d, const char *dn, const char *object_class, const struct ob_dir_mod *mods,
                   size_t nmods, const char *assert_attr, const char *assert_value)
{
        int r = d ? replace_check(dn, object_class, mods, nmods, assert_attr, assert_value) : -EINVAL;
        if (r < 0)
                return r;
        bool add_oc = false;
        if (object_class) {
                struct ob_account *cur = NULL;
                char *oc_attrs[] = {"objectClass", NULL};
                r = read_entry(d, dn, oc_attrs, "read_object_class", &cur);
                if (r < 0)
                        return r;
                if (!cur)
                        return -OB_ENOTFOUND;
                add_oc = !has_object_class(cur, object_class);
                ob_account_free(cur);
        }
        int msgid = 0;
        r = replace_send(d, dn, add_oc, object_class, mods, nmods, assert_attr, assert_value, &msgid);
        if (r < 0 || msgid == 0)
                return r;
        int result = 0;
        r = replace_wait(d, msgid, &msgid, &result);
        return r < 0 ? r : result;
}

/* Whether s is GeneralizedTime without a fraction, "YYYYMMDDHHMMSSZ". */
static bool plain_generalized(const char *s)
{
        for (int i = 0; i < 14; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return s[14] == 'Z' && s[15] == '\0';
}

/* Active Directory (Samba at least) refuses one modify that adds an
 * auxiliary class together with attributes only that class allows
 * (objectClassViolation): there the class goes in a modify of its own,
 * waited for, before the attributes. AD has no assertion control, so no
 * guard is lost by the split; elsewhere it stays one modify. */
static int add_class_first(struct ob_dir *d, const char *dn, const char *object_class)
{
        struct berval bv = {strlen(object_class), (char *)object_class};
        struct berval *bvp[] = {&bv, NULL};
        LDAPMod mod = {.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES, .mod_type = (char *)"objectClass",
                       .mod_bvalues = bvp};
        LDAPMod *modp[] = {&mod, NULL};
        int msgid = -1;
        int rc = ldap_modify_ext(d->ld, dn, modp, NULL, NULL, &msgid);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "modify_object_class", dn, rc, NULL);
                return -OB_EDIRECTORY;
        }
        LDAPMessage *m = NULL;
        int t = wait_msg(d, msgid, "modify_object_class", dn, &m);
        if (t < 0)
                return t;
        int res = LDAP_SUCCESS;
        int k = parse_result(d, m, "modify_object_class", dn, &res, NULL);
        ldap_msgfree(m);
        /* Added meanwhile by someone else: what was wanted. */
        if (k != LDAP_SUCCESS && res != LDAP_TYPE_OR_VALUE_EXISTS) {
                int e = ldap_to_ob(res);
                return e == -OB_ENOTFOUND || e == -ENOMEM ? e : -OB_EDIRECTORY;
        }
        return 0;
}

/* Sends one modify (see ob_dir_replace_start); the request is encoded before
 * this returns, so nothing the caller passed needs to outlive it. */
static int replace_send(struct ob_dir *d, const char *dn, bool add_oc, const char *object_class,
                        const struct ob_dir_mod *mods, size_t nmods, const char *assert_attr, const char *assert_value,
                        int *ret_msgid)
{
        if (nmods == 0 && !add_oc) {
                *ret_msgid = 0;
                return 0;
        }
        if (add_oc && d->is_ad && nmods > 0) {
                int k = add_class_first(d, dn, object_class);
                if (k < 0)
                        return k;
                add_oc = false;
        }
        /* The time is written as GeneralizedTime with a fraction
         * ("YYYYMMDDHHMMSS.0Z"): Samba refuses it without one (invalid
         * syntax), OpenLDAP and 389-DS take both. */
        char (*frac)[18] = nmods ? calloc(nmods, sizeof(*frac)) : NULL;
        if (nmods && !frac)
                return -ENOMEM;

        /* mods + an objectClass add + NULL; each value list as bervals. */
        size_t nm = nmods + (add_oc ? 1 : 0);
        LDAPMod *modv = calloc(nm, sizeof(*modv));
        LDAPMod **modp = calloc(nm + 1, sizeof(*modp));
        struct berval **bvs = calloc(nm, sizeof(*bvs));
        struct berval ***bvps = calloc(nm, sizeof(*bvps));
        LDAPControl *assert_ctrl = NULL;
        struct ob_buf f;
        int r = 0;
        ob_buf_init(&f);
        if (!modv || !modp || !bvs || !bvps) {
                r = -ENOMEM;
                goto out;
        }
        size_t k = 0;
        if (add_oc) {
                bvs[k] = calloc(1, sizeof(struct berval));
                bvps[k] = calloc(2, sizeof(struct berval *));
                if (!bvs[k] || !bvps[k]) {
                        r = -ENOMEM;
                        goto out;
                }
                bvs[k][0] = (struct berval){strlen(object_class), (char *)object_class};
                bvps[k][0] = &bvs[k][0];
                modv[k] = (LDAPMod){.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES,
                                    .mod_type = (char *)"objectClass",
                                    .mod_bvalues = bvps[k]};
                k++;
        }
        for (size_t i = 0; i < nmods; i++, k++) {
                size_t nv = 0;
                while (mods[i].values[nv])
                        nv++;
                bvs[k] = calloc(nv ? nv : 1, sizeof(struct berval));
                bvps[k] = calloc(nv + 1, sizeof(struct berval *));
                if (!bvs[k] || !bvps[k]) {
                        r = -ENOMEM;
                        goto out;
                }
                bool is_time = d->time_attr && strcasecmp(mods[i].attribute, d->time_attr) == 0;
                for (size_t j = 0; j < nv; j++) {
                        const char *v = mods[i].values[j];
                        if (is_time && nv == 1 && plain_generalized(v)) {
                                snprintf(frac[i], sizeof(frac[i]), "%.14s.0Z", v);
                                v = frac[i];
                        }
                        bvs[k][j] = (struct berval){strlen(v), (char *)v};
                        bvps[k][j] = &bvs[k][j];
                }
                /* A replace with no values deletes the attribute, and is a
                 * no-op when it is absent (RFC 4511 4.6): no noSuchAttribute. */
                modv[k] = (LDAPMod){.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
                                    .mod_type = (char *)mods[i].attribute,
                                    .mod_bvalues = bvps[k]};
        }
        for (size_t i = 0; i < nm; i++)
                modp[i] = &modv[i];

        LDAPControl *sctrls[2] = {NULL, NULL};
        if (assert_attr) {
                r = ob_buf_printf(&f, "(%s=", assert_attr);
                if (r == 0)
                        r = ob_escape_ldap_filter(&f, assert_value, strlen(assert_value));
                if (r == 0)
                        r = ob_buf_addc(&f, ')');
                if (r < 0)
                        goto out;
                int rc = ldap_create_assertion_control(d->ld, f.data, 1, &assert_ctrl);
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "create_assertion_control", dn, rc, NULL);
                        r = rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
                        goto out;
                }
                sctrls[0] = assert_ctrl;
        }

        int msgid = -1;
        int rc = ldap_modify_ext(d->ld, dn, modp, sctrls, NULL, &msgid);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "modify", dn, rc, NULL);
                r = -OB_EDIRECTORY;
                goto out;
        }
        *ret_msgid = msgid;
out:
        if (assert_ctrl)
                ldap_control_free(assert_ctrl);
        ob_buf_free(&f);
        for (size_t i = 0; bvs && i < nm; i++)
                free(bvs[i]);
        for (size_t i = 0; bvps && i < nm; i++)
                free(bvps[i]);
        free(bvs);
        free(bvps);
        free(modp);
        free(modv);
        free(frac);
        return r;
}

/* The answer to a modify: its message id and what ob_dir_replace would
 * have returned. */
static void modify_result(struct ob_dir *d, LDAPMessage *m, int *ret_msgid, int *ret_result)
{
        int id = ldap_msgid(m);
        int res = LDAP_SUCCESS, result = 0;
        if (parse_result(d, m, "modify", NULL, &res, NULL) != LDAP_SUCCESS) {
                int e = ldap_to_ob(res);
                result = e == -OB_EASSERTION || e == -OB_ENOTFOUND || e == -ENOMEM ? e : -OB_EDIRECTORY;
        }
        *ret_msgid = id;
        *ret_result = result;
}

/* Waits for the answer to the modify msgid. */
static int replace_wait(struct ob_dir *d, int msgid, int *ret_msgid, int *ret_result)
{
        if (!d || msgid <= 0 || !ret_msgid || !ret_result)
                return -EINVAL;
        LDAPMessage *m = NULL;
        int t = wait_msg(d, msgid, "modify", NULL, &m);
        if (t < 0)
                return t;
        modify_result(d, m, ret_msgid, ret_result);
        ldap_msgfree(m);
        return 0;
}

static int dir_fd(struct ob_dir *d)
{
        ber_socket_t fd = -1;
        if (!d || !d->ld || ldap_get_option(d->ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS)
                return -1;
        return (int)fd;
}

/* ---- on the event loop ------------------------------------------------------------------------ */

/* Operations whose answers the loop reads: the descriptor is watched while
 * any is in flight, answers are read with a zero timeout and handed to the
 * operation by message id, and a timer fails what got no answer within the
 * timeout. The blocking calls above share the connection: what they read
 * for these operations is handed on (dir_dispatch), and what libldap holds
 * after them is read on the next loop turn (dir_kick). */
enum dir_op_kind { DIR_OP_SEARCH, DIR_OP_READ, DIR_OP_MODIFY, DIR_OP_SYNC };

struct dir_op {
        struct dir_op *next;
        enum dir_op_kind kind;
        int msgid;
        int64_t last_ms; /* sent, or the last message: no answer for timeout_ms fails it */
        char *dn;        /* read, modify */
        struct dir_search s;            /* search */
        struct ob_dir_search_info info; /* search */
        struct ob_account *found;       /* read */
        struct ranges rg;               /* read: what found still lacks (range retrieval) */
        bool ranging;                   /* read: msgid is a range read's */
        int err;                        /* read: what went wrong before the result */
        ob_dir_search_done_fn search_done;
        ob_dir_read_done_fn read_done;
        ob_dir_modify_done_fn modify_done;
        ob_dir_sync_fn sync_fn;
        ob_dir_sync_end_fn sync_end;
        char *cookie; /* sync: the newest the server gave */
        size_t cookie_len;
        bool persisting; /* sync: refreshDone came; no timeout applies */
        char **owned_attrs; /* search: s.attrs, when the operation owns the list */
        void *userdata;
        bool base_checked; /* search: no check of the accounts' base when nothing is found */
};

static void dir_arm(struct ob_dir *d);

static void op_free(struct dir_op *op)
{
        search_clear(&op->s);
        ob_dir_search_info_clear(&op->info);
        ob_account_free(op->found);
        ranges_clear(&op->rg);
        free(op->dn);
        free(op->cookie);
        free(op->owned_attrs);
        free(op);
}

/* A new operation of kind for userdata, with its DN copied (NULL: none). */
static struct dir_op *op_new(enum dir_op_kind kind, const char *dn, void *userdata)
{
        struct dir_op *op = calloc(1, sizeof(*op));
        if (op && dn && !(op->dn = strdup(dn))) {
                free(op);
                return NULL;
        }
        if (op) {
                op->kind = kind;
                op->userdata = userdata;
        }
        return op;
}

static struct dir_op *op_find(struct ob_dir *d, int msgid)
{
        for (struct dir_op *op = d->ops; op; op = op->next)
                if (op->msgid == msgid)
                        return op;
        return NULL;
}

static void op_add(struct ob_dir *d, struct dir_op *op)
{
        op->last_ms = monotonic_ms();
        op->next = d->ops;
        d->ops = op;
        d->nops++;
        dir_arm(d);
}

/* Takes op out and hands its result to its callback (which may start other
 * operations), then frees it. */
static void op_finish(struct ob_dir *d, struct dir_op *op, int result)
{
        for (struct dir_op **p = &d->ops; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        d->nops--;
                        break;
                }
        switch (op->kind) {
        case DIR_OP_SEARCH:
                if (result == 0 && op->info.entries == 0 && !op->info.references && !op->base_checked)
                        result = search_base_exists(d);
                op->search_done(result, &op->info, op->userdata);
                break;
        case DIR_OP_READ:
                if (result == 0 && op->err == 0 && !op->found)
                        result = -OB_ENOTFOUND;
                op->read_done(op->dn, result == 0 && op->err == 0 ? op->found : NULL,
                              result < 0 ? result : op->err, op->userdata);
                break;
        case DIR_OP_MODIFY:
                op->modify_done(result, op->userdata);
                break;
        case DIR_OP_SYNC:
                op->sync_end(result, op->cookie, op->cookie_len, op->userdata);
                break;
        }
        op_free(op);
        dir_arm(d);
}

/* The connection is gone: no answer can come for anything in flight. */
static void dir_lost(struct ob_dir *d, int err)
{
        d->lost = true;
        while (d->ops)
                op_finish(d, d->ops, err);
}

/* ---- RFC 4533 content synchronization on the loop ------------------------------------------- */

/* A BER reader over a copy of buf: liblber's in-place reads ("m") write a
 * NUL after each string, one byte past the last, so the copy has room for
 * it and the parsers point their results back into the caller's buffer,
 * which stays as it was. The caller frees *ret_tmp and the element
 * (ber_free(ber, 0): the buffer is not liblber's). */
static int ber_over_copy(const void *buf, size_t len, char **ret_tmp, BerElement **ret_ber)
{
        char *tmp = malloc(len + 1);
        BerElement *ber = tmp ? ber_alloc_t(LBER_USE_DER) : NULL;
        if (!ber) {
                free(tmp);
                return -ENOMEM;
        }
        memcpy(tmp, buf, len);
        tmp[len] = '\0';
        struct berval bv = {len, tmp};
        ber_init2(ber, &bv, LBER_USE_DER);
        *ret_tmp = tmp;
        *ret_ber = ber;
        return 0;
}

/* The start of refreshDelete, refreshPresent and syncIdSet: SEQUENCE {
 * cookie OPTIONAL, BOOLEAN (refreshDone or refreshDeletes) DEFAULT *flag.
 * Both tags are 0x01 (LDAP_TAG_REFRESHDONE, LDAP_TAG_REFRESHDELETES). */
static int sync_info_head(BerElement *ber, struct berval *cookie, bool *flag)
{
        ber_len_t l;
        if (ber_scanf(ber, "{" /*}*/) == LBER_ERROR)
                return -EBADMSG;
        if (ber_peek_tag(ber, &l) == LDAP_TAG_SYNC_COOKIE && ber_scanf(ber, "m", cookie) == LBER_ERROR)
                return -EBADMSG;
        if (ber_peek_tag(ber, &l) == LDAP_TAG_REFRESHDONE) {
                ber_int_t b = *flag;
                if (ber_scanf(ber, "b", &b) == LBER_ERROR)
                        return -EBADMSG;
                *flag = b != 0;
        }
        return 0;
}

/* The Sync Info message's value (an intermediate response): which message,
 * its cookie, and for syncIdSet the entryUUIDs (16 bytes each, pointing
 * into the value). */
int ob_dir_sync_parse_info(const void *buf, size_t len, struct ob_sync_info *ret)
{
        char *tmp;
        BerElement *ber;
        if (ber_over_copy(buf, len, &tmp, &ber) < 0)
                return -ENOMEM;
        struct ob_sync_info info = {.refresh_done = true};
        ber_len_t l;
        ber_tag_t tag = ber_peek_tag(ber, &l);
        int r = 0;
        struct berval cookie = {0, NULL};
        switch (tag) {
        case LDAP_TAG_SYNC_NEW_COOKIE:
                info.kind = OB_SYNC_INFO_NEW_COOKIE;
                if (ber_scanf(ber, "m", &cookie) == LBER_ERROR)
                        r = -EBADMSG;
                break;
        case LDAP_TAG_SYNC_REFRESH_DELETE:
        case LDAP_TAG_SYNC_REFRESH_PRESENT:
                info.kind = tag == LDAP_TAG_SYNC_REFRESH_DELETE ? OB_SYNC_INFO_REFRESH_DELETE
                                                                : OB_SYNC_INFO_REFRESH_PRESENT;
                r = sync_info_head(ber, &cookie, &info.refresh_done); /* refreshDone DEFAULT TRUE */
                break;
        case LDAP_TAG_SYNC_ID_SET: {
                info.kind = OB_SYNC_INFO_ID_SET;
                info.refresh_done = false;
                r = sync_info_head(ber, &cookie, &info.refresh_deletes); /* refreshDeletes DEFAULT FALSE */
                /* SET OF syncUUID: counted here, each checked to be 16 bytes. */
                char *last = NULL;
                if (r == 0) {
                        for (tag = ber_first_element(ber, &l, &last); r == 0 && tag != LBER_DEFAULT;
                             tag = ber_next_element(ber, &l, last)) {
                                struct berval u = {0, NULL};
                                if (ber_scanf(ber, "m", &u) == LBER_ERROR || u.bv_len != 16)
                                        r = -EBADMSG;
                                else if (info.nuuids++ == 0)
                                        info.first_uuid = (const unsigned char *)u.bv_val;
                        }
                }
                break;
        }
        default:
                r = -EBADMSG;
        }
        ber_free(ber, 0); /* the element only: the buffer is tmp */
        if (r == 0) {
                info.cookie = cookie.bv_val ? (const char *)buf + (cookie.bv_val - tmp) : NULL;
                info.cookie_len = cookie.bv_len;
                if (info.first_uuid)
                        info.first_uuid = (const unsigned char *)buf + ((const char *)info.first_uuid - tmp);
                *ret = info;
        }
        free(tmp);
        return r;
}

/* The Sync State control of an entry: state, entryUUID (16 bytes), cookie. */
int ob_dir_sync_parse_state(const void *buf, size_t len, int *ret_state, const unsigned char **ret_uuid,
                            const char **ret_cookie, size_t *ret_cookie_len)
{
        char *tmp;
        BerElement *ber;
        if (ber_over_copy(buf, len, &tmp, &ber) < 0)
                return -ENOMEM;
        ber_int_t state = -1;
        struct berval uuid = {0, NULL}, cookie = {0, NULL};
        ber_len_t l;
        int r = 0;
        if (ber_scanf(ber, "{em" /*}*/, &state, &uuid) == LBER_ERROR || uuid.bv_len != 16 || state < LDAP_SYNC_PRESENT ||
            state > LDAP_SYNC_DELETE)
                r = -EBADMSG;
        if (r == 0 && ber_peek_tag(ber, &l) == LDAP_TAG_SYNC_COOKIE && ber_scanf(ber, "m", &cookie) == LBER_ERROR)
                r = -EBADMSG;
        ber_free(ber, 0);
        if (r == 0) {
                *ret_state = state;
                *ret_uuid = (const unsigned char *)buf + (uuid.bv_val - tmp);
                *ret_cookie = cookie.bv_val ? (const char *)buf + (cookie.bv_val - tmp) : NULL;
                *ret_cookie_len = cookie.bv_len;
        }
        free(tmp);
        return r;
}

/* AD's DirSync response control's value (MS-ADTS 3.1.1.3.4.1.3): SEQUENCE
 * {moreResults INTEGER, unused INTEGER, cookie OCTET STRING}. */
int ob_dir_dirsync_parse_reply(const void *buf, size_t len, bool *ret_more, const char **ret_cookie,
                               size_t *ret_cookie_len)
{
        char *tmp;
        BerElement *ber;
        if (!buf)
                return -EBADMSG; /* a control without a value */
        if (ber_over_copy(buf, len, &tmp, &ber) < 0)
                return -ENOMEM;
        ber_int_t more = 0, unused = 0;
        struct berval cookie = {0, NULL};
        int r = ber_scanf(ber, "{iim}", &more, &unused, &cookie) == LBER_ERROR ? -EBADMSG : 0;
        ber_free(ber, 0); /* the element only: the buffer is tmp */
        if (r == 0) {
                *ret_more = more != 0;
                *ret_cookie = (const char *)buf + (cookie.bv_val - tmp);
                *ret_cookie_len = cookie.bv_len;
        }
        free(tmp);
        return r;
}

static void uuid_text(const unsigned char *u, char out[37])
{
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Keeps the newest cookie the server gave (RFC 4533 3.4.2: use the last). */
static int sync_keep_cookie(struct dir_op *op, const char *c, size_t len)
{
        if (!c)
                return 0;
        char *n = malloc(len ? len : 1);
        if (!n)
                return -ENOMEM;
        memcpy(n, c, len);
        free(op->cookie);
        op->cookie = n;
        op->cookie_len = len;
        return 0;
}

/* One message of the sync search: 0 to go on, or the result that ends it. */
static int sync_on_msg(struct ob_dir *d, struct dir_op *op, LDAPMessage *m)
{
        int t = ldap_msgtype(m);
        struct ob_sync_event ev = {.refreshing = !op->persisting};
        if (t == LDAP_RES_SEARCH_ENTRY) {
                LDAPControl **ctrls = NULL;
                if (ldap_get_entry_controls(d->ld, m, &ctrls) != LDAP_SUCCESS)
                        return -OB_EDIRECTORY;
                LDAPControl *c = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL);
                int state;
                const unsigned char *u;
                const char *cookie;
                size_t cookie_len;
                int r = c ? ob_dir_sync_parse_state(c->ldctl_value.bv_val, c->ldctl_value.bv_len, &state, &u, &cookie,
                                                    &cookie_len)
                          : -EBADMSG;
                if (r == 0)
                        r = sync_keep_cookie(op, cookie, cookie_len);
                if (r == 0)
                        uuid_text(u, ev.uuid);
                ldap_controls_free(ctrls);
                if (r < 0) {
                        ob_log(OB_LOG_ERROR, "event=ldap_sync_bad_message note=\"an entry without a valid sync state\"");
                        return -OB_EDIRECTORY;
                }
                ev.kind = state == LDAP_SYNC_PRESENT ? OB_SYNC_PRESENT
                          : state == LDAP_SYNC_ADD   ? OB_SYNC_ADD
                          : state == LDAP_SYNC_MODIFY ? OB_SYNC_MODIFY
                                                      : OB_SYNC_DELETE;
                char *dn = ldap_get_dn(d->ld, m);
                ev.dn = dn;
                struct berval **mn = ldap_get_values_len(d->ld, m, "modifiersName");
                char *who = mn && mn[0] ? strndup(mn[0]->bv_val, mn[0]->bv_len) : NULL;
                ev.modifiers_name = who;
                op->sync_fn(&ev, op->userdata);
                free(who);
                ldap_value_free_len(mn);
                ldap_memfree(dn);
                return 0;
        }
        if (t == LDAP_RES_INTERMEDIATE) {
                char *oid = NULL;
                struct berval *data = NULL;
                int r = ldap_parse_intermediate(d->ld, m, &oid, &data, NULL, 0) == LDAP_SUCCESS ? 0 : -EBADMSG;
                struct ob_sync_info info;
                if (r == 0 && (!oid || strcmp(oid, LDAP_SYNC_INFO) != 0))
                        r = 1; /* another intermediate response: not ours to read */
                if (r == 0)
                        r = data ? ob_dir_sync_parse_info(data->bv_val, data->bv_len, &info) : -EBADMSG;
                if (r == 0)
                        r = sync_keep_cookie(op, info.cookie, info.cookie_len);
                if (r == 0) {
                        if (info.kind == OB_SYNC_INFO_ID_SET) {
                                ev.kind = info.refresh_deletes ? OB_SYNC_IDSET_DELETES : OB_SYNC_IDSET_PRESENTS;
                                ev.nuuids = info.nuuids;
                                op->sync_fn(&ev, op->userdata);
                        } else if ((info.kind == OB_SYNC_INFO_REFRESH_DELETE ||
                                    info.kind == OB_SYNC_INFO_REFRESH_PRESENT) && info.refresh_done && !op->persisting) {
                                op->persisting = true;
                                ev.kind = OB_SYNC_REFRESH_DONE;
                                ev.refreshing = false;
                                op->sync_fn(&ev, op->userdata);
                        }
                }
                ldap_memfree(oid);
                ber_bvfree(data);
                if (r < 0) {
                        ob_log(OB_LOG_ERROR, "event=ldap_sync_bad_message note=\"a sync info message that does not parse\"");
                        return -OB_EDIRECTORY;
                }
                return 0;
        }
        if (t == LDAP_RES_SEARCH_RESULT) {
                int res;
                if (parse_result(d, m, "sync", d->base, &res, NULL) == LDAP_SUCCESS) {
                        /* The server ended a persistent search: the feed must start again. */
                        ob_log(OB_LOG_WARNING, "event=ldap_sync_ended note=\"the server ended the feed\"");
                        return -OB_EDIRECTORY;
                }
                if (res == LDAP_SYNC_REFRESH_REQUIRED) {
                        free(op->cookie); /* a full refresh: the old cookie would be refused again */
                        op->cookie = NULL;
                        op->cookie_len = 0;
                        return -OB_ESYNCREFRESH;
                }
                return ldap_to_ob(res) == -ENOMEM ? -ENOMEM : -OB_EDIRECTORY;
        }
        return 0; /* a reference: the accounts' pass reports those */
}

bool ob_dir_has_sync(const struct ob_dir *d)
{
        return d && d->has_sync;
}

const char *ob_dir_sync_cookie(const struct ob_dir *d, size_t *ret_len)
{
        for (const struct dir_op *op = d ? d->ops : NULL; op; op = op->next)
                if (op->kind == DIR_OP_SYNC && op->cookie) {
                        *ret_len = op->cookie_len;
                        return op->cookie;
                }
        *ret_len = 0;
        return NULL;
}

int ob_dir_sync_start(struct ob_dir *d, const char *cookie, size_t cookie_len, char **attrs, ob_dir_sync_fn fn,
                      ob_dir_sync_end_fn end, void *userdata)
{
        if (!d || !d->loop || !fn || !end)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        struct dir_op *op = op_new(DIR_OP_SYNC, NULL, userdata);
        if (!op)
                return -ENOMEM;
        op->sync_fn = fn;
        op->sync_end = end;
        BerElement *ber = ber_alloc_t(LBER_USE_DER);
        struct berval value = {0, NULL}, c = {cookie_len, (char *)cookie};
        int r = ber ? 0 : -ENOMEM;
        if (r == 0 && (cookie ? ber_printf(ber, "{eO}", (ber_int_t)LDAP_SYNC_REFRESH_AND_PERSIST, &c)
                              : ber_printf(ber, "{e}", (ber_int_t)LDAP_SYNC_REFRESH_AND_PERSIST)) < 0)
                r = -ENOMEM;
        if (r == 0 && ber_flatten2(ber, &value, 0) < 0)
                r = -ENOMEM;
        if (r == 0 && cookie && sync_keep_cookie(op, cookie, cookie_len) < 0)
                r = -ENOMEM;
        if (r == 0) {
                LDAPControl ctrl = {.ldctl_oid = (char *)LDAP_CONTROL_SYNC, .ldctl_value = value, .ldctl_iscritical = 1};
                LDAPControl *sctrls[] = {&ctrl, NULL};
                int rc = ldap_search_ext(d->ld, d->base, d->scope, d->filter, attrs, 0, sctrls, NULL, NULL,
                                         LDAP_NO_LIMIT, &op->msgid);
                if (rc != LDAP_SUCCESS) {
                        dir_log(d, OB_LOG_ERROR, "sync", d->base, rc, NULL);
                        r = -OB_EDIRECTORY;
                }
        }
        if (ber)
                ber_free(ber, 1);
        if (r < 0) {
                op_free(op);
                return r;
        }
        op_add(d, op);
        return 0;
}


/* One message for an operation on the loop (ignored when none has its id:
 * what was abandoned may still answer). Does not free m. */
static void dir_dispatch(struct ob_dir *d, LDAPMessage *m)
{
        struct dir_op *op = op_find(d, ldap_msgid(m));
        if (!op)
                return;
        op->last_ms = monotonic_ms();
        int t = ldap_msgtype(m);
        switch (op->kind) {
        case DIR_OP_SEARCH: {
                int k = search_on_msg(d, &op->s, m);
                op->msgid = op->s.msgid; /* a range read's, after the page */
                if (k == 1) {
                        if (!op->s.cookie) {
                                op_finish(d, op, 0);
                                return;
                        }
                        if ((k = search_send_page(d, &op->s)) == 0) {
                                op->msgid = op->s.msgid;
                                return;
                        }
                }
                if (k == 0 && op->last_ms > op->s.deadline) {
                        search_too_long(d, &op->s);
                        k = -OB_ESIZELIMIT;
                }
                if (k != 0)
                        op_finish(d, op, k);
                return;
        }
        case DIR_OP_READ:
                if (op->ranging) {
                        /* The rest of found's ranges, one read at a time. */
                        int k = 0;
                        if (t == LDAP_RES_SEARCH_ENTRY && op->err == 0)
                                k = range_on_entry(d, &op->rg, op->found, m);
                        else if (t == LDAP_RES_SEARCH_REFERENCE && op->err == 0)
                                k = range_referral(op->found);
                        else if (t == LDAP_RES_SEARCH_RESULT)
                                k = range_on_result(d, &op->rg, op->found, m);
                        if (k < 0 && op->err == 0)
                                op->err = k;
                        if (t != LDAP_RES_SEARCH_RESULT)
                                return;
                        if (k == 1 && op->err == 0 && (k = range_send(d, &op->rg, op->found->dn, &op->msgid)) == 0)
                                return;
                        if (k < 0 && op->err == 0)
                                op->err = k;
                        op_finish(d, op, 0);
                } else if (t == LDAP_RES_SEARCH_ENTRY && !op->found && op->err == 0) {
                        int k = entry_to_account(d, m, false, &op->found, &op->rg);
                        if (k < 0)
                                op->err = k;
                } else if (t == LDAP_RES_SEARCH_RESULT) {
                        int res;
                        if (parse_result(d, m, "read_account", op->dn, &res, NULL) != LDAP_SUCCESS) {
                                if (res == LDAP_NO_SUCH_OBJECT) {
                                        ob_account_free(op->found);
                                        op->found = NULL;
                                } else if (op->err == 0)
                                        op->err = ldap_to_ob(res) == -ENOMEM ? -ENOMEM : -OB_EDIRECTORY;
                        }
                        if (op->err == 0 && op->found && ranges_pending(&op->rg)) {
                                int k = range_send(d, &op->rg, op->found->dn, &op->msgid);
                                if (k == 0) {
                                        op->ranging = true;
                                        return;
                                }
                                op->err = k;
                        }
                        op_finish(d, op, 0);
                } else if (t == LDAP_RES_SEARCH_REFERENCE && op->err == 0) {
                        ob_log(OB_LOG_ERROR, "event=ldap_reference target=%s note=\"the entry is held by another "
                               "server\"", ob_log_quote(op->dn));
                        op->err = -OB_EDIRECTORY;
                }
                return;
        case DIR_OP_SYNC: {
                int k = sync_on_msg(d, op, m);
                if (k != 0)
                        op_finish(d, op, k);
                return;
        }
        case DIR_OP_MODIFY: /* a modify, or a rename (ob_dir_move_start) */
                if (t == LDAP_RES_MODIFY || t == LDAP_RES_MODRDN) {
                        int id, result;
                        modify_result(d, m, &id, &result);
                        op_finish(d, op, result);
                }
                return;
        }
}

/* Messages handled per call before the loop gets a turn (the rest are
 * read on the next turn): a fast server must not starve the signals, the
 * HTTP transfers and the timers. */
#define OB_DIR_PUMP_BUDGET 256

int ob_dir_pump(struct ob_dir *d)
{
        if (!d)
                return -EINVAL;
        for (size_t seen = 0; d->ops;) {
                if (seen >= OB_DIR_PUMP_BUDGET) {
                        dir_kick(d);
                        return 0;
                }
                struct timeval zero = {0, 0};
                LDAPMessage *chain = NULL;
                int t = ldap_result(d->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &chain);
                if (t == 0)
                        return 0;
                if (t < 0 || !chain) {
                        int rc = handle_errno(d);
                        dir_log(d, OB_LOG_ERROR, "result", NULL, rc, NULL);
                        ldap_msgfree(chain);
                        dir_lost(d, rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY);
                        return -OB_EDIRECTORY;
                }
                for (LDAPMessage *m = ldap_first_message(d->ld, chain); m; m = ldap_next_message(d->ld, m), seen++)
                        dir_dispatch(d, m);
                ldap_msgfree(chain);
        }
        return 0;
}

static void on_dir_ready(struct ob_loop *l, int fd, unsigned events, void *userdata)
{
        (void)l;
        (void)fd;
        (void)events;
        ob_dir_pump(userdata);
}

static void on_dir_kick(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct ob_dir *d = userdata;
        d->kick = NULL;
        ob_dir_pump(d);
}

/* What a blocking call left in libldap's queue for the loop's operations
 * is read on the next turn: the descriptor will not say it is there. */
static void dir_kick(struct ob_dir *d)
{
        if (d->loop && d->ops && !d->kick && ob_loop_timer(d->loop, 0, on_dir_kick, d, &d->kick) < 0)
                d->kick = NULL;
}

static int64_t dir_expire(struct ob_dir *d);

static void on_dir_timer(struct ob_loop *l, struct ob_timer *t, void *userdata)
{
        (void)l;
        (void)t;
        struct ob_dir *d = userdata;
        d->timer = NULL;
        dir_expire(d);
        dir_arm(d);
}

/* Watches the descriptor and arms the timer while anything is in flight;
 * lets both go when nothing is. */
static void dir_arm(struct ob_dir *d)
{
        if (!d->loop)
                return;
        if (!d->ops) {
                if (d->watched)
                        ob_loop_io(d->loop, d->fd, 0, NULL, NULL);
                d->watched = false;
                if (d->timer)
                        ob_loop_timer_cancel(d->loop, d->timer);
                d->timer = NULL;
                return;
        }
        if (!d->watched && d->fd >= 0 && ob_loop_io(d->loop, d->fd, OB_IO_READ, on_dir_ready, d) == 0)
                d->watched = true;
        if (!d->timer) {
                int64_t every = d->timeout_ms / 4;
                every = every < 50 ? 50 : every > 1000 ? 1000 : every;
                if (ob_loop_timer(d->loop, every, on_dir_timer, d, &d->timer) < 0)
                        d->timer = NULL;
        }
}

/* Fails what got no answer within the timeout; returns how long until the
 * next operation would time out. */
static int64_t dir_expire(struct ob_dir *d)
{
        for (;;) {
                int64_t now = monotonic_ms(), next = INT64_MAX;
                struct dir_op *late = NULL;
                int err = 0;
                for (struct dir_op *op = d->ops; op && !late; op = op->next) {
                        if (op->kind == DIR_OP_SEARCH && now >= op->s.deadline) {
                                search_too_long(d, &op->s);
                                late = op;
                                err = -OB_ESIZELIMIT;
                        } else if (op->kind == DIR_OP_SYNC && op->persisting) {
                                continue; /* a quiet directory is not a dead one: TCP keepalive finds those */
                        } else if (d->timeout_ms > 0 && now - op->last_ms >= d->timeout_ms) {
                                ldap_abandon_ext(d->ld, op->msgid, NULL, NULL);
                                dir_log(d, OB_LOG_ERROR,
                                        op->kind == DIR_OP_SEARCH ? "search"
                                        : op->kind == DIR_OP_READ ? "read_account"
                                        : op->kind == DIR_OP_SYNC ? "sync"
                                                                  : "modify",
                                        op->kind == DIR_OP_SEARCH ? op->s.base
                                        : op->kind == DIR_OP_SYNC ? d->base
                                                                  : op->dn,
                                        LDAP_TIMEOUT,
                                        "no answer within the timeout");
                                late = op;
                                err = -OB_EDIRECTORY;
                        } else {
                                int64_t left = d->timeout_ms > 0 ? op->last_ms + d->timeout_ms - now : INT64_MAX;
                                if (op->kind == DIR_OP_SEARCH && op->s.deadline - now < left)
                                        left = op->s.deadline - now;
                                if (left < next)
                                        next = left;
                        }
                }
                if (!late)
                        return next;
                op_finish(d, late, err); /* the list changed: look again */
        }
}

int ob_dir_wait(struct ob_dir *d)
{
        if (!d || !d->ops)
                return -EINVAL;
        int64_t left = dir_expire(d);
        if (!d->ops)
                return 0;
        struct timeval tv = ms_to_tv(left < 1 ? 1 : left > 1000 ? 1000 : left);
        LDAPMessage *chain = NULL;
        int t = ldap_result(d->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &tv, &chain);
        if (t == 0) {
                dir_expire(d);
                return 0;
        }
        if (t < 0 || !chain) {
                int rc = handle_errno(d);
                dir_log(d, OB_LOG_ERROR, "result", NULL, rc, NULL);
                ldap_msgfree(chain);
                dir_lost(d, rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY);
                return -OB_EDIRECTORY;
        }
        for (LDAPMessage *m = ldap_first_message(d->ld, chain); m; m = ldap_next_message(d->ld, m))
                dir_dispatch(d, m);
        ldap_msgfree(chain);
        return ob_dir_pump(d);
}

int ob_dir_attach(struct ob_dir *d, struct ob_loop *l)
{
        if (!d || !l || d->ops)
                return -EINVAL;
        d->loop = l;
        d->fd = dir_fd(d);
        return d->fd >= 0 ? 0 : -OB_EDIRECTORY;
}

/* What is in flight when the connection is let go ends with -ECANCELED;
 * nothing more can start. */
static void dir_detach(struct ob_dir *d)
{
        dir_lost(d, -ECANCELED);
        dir_arm(d);
        if (d->kick)
                ob_loop_timer_cancel(d->loop, d->kick);
        d->kick = NULL;
        d->loop = NULL;
}

size_t ob_dir_in_flight(const struct ob_dir *d)
{
        return d ? d->nops : 0;
}

bool ob_dir_lost(const struct ob_dir *d)
{
        return !d || d->lost;
}

/* What search_start asks: the accounts (under the base, or the one entry
 * dn), AD's tombstones right under dn, or AD's DirSync from dn (the naming
 * context) on. */
enum search_kind { SEARCH_ACCOUNTS, SEARCH_TOMBSTONES, SEARCH_DIRSYNC };

/* The accounts' search under base (dn NULL: the configured base and scope;
 * else that one entry), with the accounts' filter (and extra, when not NULL,
 * a filter the entries must match as well) and every fail-closed rule;
 * attrs NULL: the accounts' attributes. cookie: DirSync's, to resume from. */
static int search_start(struct ob_dir *d, const char *dn, const char *extra, char **attrs, enum search_kind kind,
                        const struct berval *cookie, ob_dir_entry_fn fn, ob_dir_search_done_fn done,
                        void *userdata)
{
        if (!d || !d->loop || !fn || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        if (dn && kind == SEARCH_ACCOUNTS && (!*dn || dn_in_scope(dn, d->base, d->scope) <= 0))
                return -OB_ENOTFOUND; /* not an account offboard judges */
        struct dir_op *op = op_new(DIR_OP_SEARCH, dn, userdata);
        if (!op)
                return -ENOMEM;
        if (attrs && attrs != d->attrs) {
                /* Every page sends the list again: the operation keeps a copy
                 * of the array (the names are static or the ob_dir's). */
                size_t n = 0;
                while (attrs[n])
                        n++;
                if (!(op->owned_attrs = calloc(n + 1, sizeof(char *)))) {
                        op_free(op);
                        return -ENOMEM;
                }
                memcpy(op->owned_attrs, attrs, n * sizeof(char *));
                attrs = op->owned_attrs;
        }
        op->search_done = done;
        char *filter = NULL;
        if (kind == SEARCH_DIRSYNC) {
                /* Every object that changed: DirSync returns only what
                 * changed of each, and a filter on anything else would miss
                 * it (Samba does); the passes apply the accounts' filter. */
                filter = strdup("(objectClass=*)");
        } else if (extra) {
                /* A tombstone keeps little but its id: the accounts' filter
                 * cannot apply to it (AD strips objectCategory). */
                if (asprintf(&filter, "(&%s%s)", kind == SEARCH_TOMBSTONES ? "(isDeleted=TRUE)" : d->filter, extra) <
                    0)
                        filter = NULL;
        } else {
                filter = strdup(d->filter);
        }
        op->s = (struct dir_search){.base = dn ? op->dn : d->base,
                                    .scope = kind == SEARCH_TOMBSTONES ? LDAP_SCOPE_ONELEVEL
                                             : kind == SEARCH_DIRSYNC  ? LDAP_SCOPE_SUBTREE
                                             : dn                      ? LDAP_SCOPE_BASE
                                                                       : d->scope,
                                    .filter = filter,
                                    .attrs = attrs ? attrs : d->attrs,
                                    .need_id = true,
                                    .show_deleted = kind == SEARCH_TOMBSTONES,
                                    .dirsync = kind == SEARCH_DIRSYNC,
                                    .fn = fn,
                                    .userdata = userdata,
                                    .info = &op->info,
                                    .deadline = monotonic_ms() + d->search_deadline_ms};
        int k = op->s.filter ? 0 : -ENOMEM;
        if (k == 0 && cookie && cookie->bv_len && !(op->s.cookie = ber_bvdup((struct berval *)cookie)))
                k = -ENOMEM;
        if (k == 0)
                k = search_send_page(d, &op->s);
        if (k < 0) {
                op_free(op);
                return k;
        }
        op->msgid = op->s.msgid;
        op_add(d, op);
        return 0;
}

int ob_dir_search_accounts_start(struct ob_dir *d, ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata)
{
        return search_start(d, NULL, NULL, NULL, SEARCH_ACCOUNTS, NULL, fn, done, userdata);
}

int ob_dir_search_entry_start(struct ob_dir *d, const char *dn, ob_dir_entry_fn fn, ob_dir_search_done_fn done,
                              void *userdata)
{
        return dn ? search_start(d, dn, NULL, NULL, SEARCH_ACCOUNTS, NULL, fn, done, userdata) : -EINVAL;
}

int ob_dir_search_changed_start(struct ob_dir *d, const char *extra, char **attrs, ob_dir_entry_fn fn,
                                ob_dir_search_done_fn done, void *userdata)
{
        if (!extra || extra[0] != '(' || !attrs)
                return -EINVAL;
        /* The id must come with every entry, whatever the caller asked. */
        char *a[OB_DIR_CHANGED_MAX_ATTRS + 2];
        size_t n = 0;
        while (attrs[n] && n < OB_DIR_CHANGED_MAX_ATTRS) {
                a[n] = attrs[n];
                n++;
        }
        if (attrs[n])
                return -EINVAL;
        a[n] = d->id_attr;
        a[n + 1] = NULL;
        return search_start(d, NULL, extra, a, SEARCH_ACCOUNTS, NULL, fn, done, userdata);
}

int ob_dir_read_start(struct ob_dir *d, const char *dn, char **attrs, ob_dir_read_done_fn done, void *userdata)
{
        if (!d || !d->loop || !dn || !attrs || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        struct dir_op *op = op_new(DIR_OP_READ, dn, userdata);
        if (!op)
                return -ENOMEM;
        op->read_done = done;
        struct timeval tl = ms_to_tv(d->timeout_ms);
        char **owned = NULL;
        char **ask = *dn ? request_attrs(d, attrs, &owned) : attrs; /* the root DSE has no ranges */
        int rc = ask || !attrs ? ldap_search_ext(d->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", ask, 0, NULL,
                                                 NULL, d->timeout_ms >= 1000 ? &tl : NULL, 1, &op->msgid)
                               : LDAP_NO_MEMORY;
        free(owned);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "read_account", dn, rc, NULL);
                op_free(op);
                return -OB_EDIRECTORY;
        }
        op_add(d, op);
        return 0;
}

int ob_dir_dirsync_start(struct ob_dir *d, const char *nc, const char *cookie, size_t cookie_len,
                         ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata)
{
        if (!d || !d->is_ad || !nc || !*nc)
                return -EINVAL;
        /* DirSync returns an object only when an attribute asked for
         * changed: the attributes the rules read, and isDeleted. */
        size_t n = 0;
        while (d->attrs[n])
                n++;
        char **attrs = calloc(n + 2, sizeof(*attrs));
        if (!attrs)
                return -ENOMEM;
        memcpy(attrs, d->attrs, n * sizeof(*attrs));
        attrs[n] = "isDeleted";
        struct berval c = {.bv_len = cookie ? cookie_len : 0, .bv_val = (char *)cookie};
        int k = search_start(d, nc, NULL, attrs, SEARCH_DIRSYNC, &c, fn, done, userdata);
        free(attrs); /* the operation keeps its own copy */
        return k;
}

bool ob_dir_in_scope(const struct ob_dir *d, const char *dn)
{
        return d && dn && *dn && dn_in_scope(dn, d->base, d->scope) > 0;
}

int ob_dir_search_deleted_start(struct ob_dir *d, const char *base, const char *extra, ob_dir_entry_fn fn,
                                ob_dir_search_done_fn done, void *userdata)
{
        if (!d || !d->is_ad || !base || !extra || extra[0] != '(')
                return -EINVAL;
        char *attrs[] = {d->id_attr, NULL};
        return search_start(d, base, extra, attrs, SEARCH_TOMBSTONES, NULL, fn, done, userdata);
}

int ob_dir_search_changelog_start(struct ob_dir *d, const char *base, const char *filter, char **attrs,
                                  ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata)
{
        if (!d || !d->loop || !base || !*base || !filter || filter[0] != '(' || !attrs || !fn || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        size_t n = 0;
        while (attrs[n] && n < OB_DIR_CHANGED_MAX_ATTRS)
                n++;
        if (attrs[n])
                return -EINVAL;
        struct dir_op *op = op_new(DIR_OP_SEARCH, base, userdata);
        char *f = strdup(filter);
        if (!op || !f || !(op->owned_attrs = calloc(n + 1, sizeof(char *)))) {
                free(f);
                if (op)
                        op_free(op);
                return -ENOMEM;
        }
        memcpy(op->owned_attrs, attrs, n * sizeof(char *));
        op->search_done = done;
        /* Not the accounts' base, and finding nothing is an answer. */
        op->base_checked = true;
        op->s = (struct dir_search){.base = op->dn,
                                    .scope = LDAP_SCOPE_ONELEVEL,
                                    .filter = f,
                                    .attrs = op->owned_attrs,
                                    .need_id = false,
                                    .fn = fn,
                                    .userdata = userdata,
                                    .info = &op->info,
                                    .deadline = monotonic_ms() + d->search_deadline_ms};
        int k = search_send_page(d, &op->s);
        if (k < 0) {
                op_free(op);
                return k;
        }
        op->msgid = op->s.msgid;
        op_add(d, op);
        return 0;
}

const char *ob_dir_id_attribute(const struct ob_dir *d)
{
        return d ? d->id_attr : NULL;
}

bool ob_dir_is_ad(const struct ob_dir *d)
{
        return d && d->is_ad;
}

int ob_dir_read_account_start(struct ob_dir *d, const char *dn, ob_dir_read_done_fn done, void *userdata)
{
        if (!d || !d->loop || !dn || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        int in = *dn ? dn_in_scope(dn, d->base, d->scope) : -EINVAL;
        if (in <= 0)
                return -OB_ENOTFOUND; /* not an account offboard judges */
        return ob_dir_read_start(d, dn, d->attrs, done, userdata);
}

int ob_dir_replace_start(struct ob_dir *d, const char *dn, bool add_object_class, const char *object_class,
                         const struct ob_dir_mod *mods, size_t nmods, const char *assert_attr,
                         const char *assert_value, ob_dir_modify_done_fn done, void *userdata)
{
        int r = d && d->loop && done ? replace_check(dn, object_class, mods, nmods, assert_attr, assert_value)
                                     : -EINVAL;
        if (r < 0)
                return r;
        if (add_object_class && !object_class)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        struct dir_op *op = op_new(DIR_OP_MODIFY, dn, userdata);
        if (!op)
                return -ENOMEM;
        op->modify_done = done;
        r = replace_send(d, dn, add_object_class, object_class, mods, nmods, assert_attr, assert_value, &op->msgid);
        if (r < 0 || op->msgid == 0) {
                op_free(op);
                return r < 0 ? r : 1;
        }
        op_add(d, op);
        return 0;
}

#define OB_DIR_READS_IN_FLIGHT 32

struct read_slot {
        int msgid; /* 0: free */
        size_t i;
        struct ob_account *found;
        struct ranges rg;
        int err;
};

/* Finishes slot sl: hands its answer to fn and frees the slot. */
static void read_slot_done(struct read_slot *sl, const char *const *dns, ob_dir_read_fn fn, void *ud)
{
        if (sl->err < 0)
                fn(sl->i, NULL, sl->err, ud);
        else
                fn(sl->i, sl->found, sl->found ? 0 : -OB_ENOTFOUND, ud);
        (void)dns;
        ob_account_free(sl->found);
        ranges_clear(&sl->rg);
        *sl = (struct read_slot){0};
}

int ob_dir_read_many(struct ob_dir *d, const char *const *dns, size_t n, ob_dir_read_fn fn, void *ud)
{
        if (!d || (!dns && n) || !fn)
                return -EINVAL;
        struct read_slot slots[OB_DIR_READS_IN_FLIGHT] = {0};
        size_t busy = 0, next = 0;
        char **owned = NULL;
        char **attrs = request_attrs(d, d->attrs, &owned);
        if (!attrs)
                return -ENOMEM;
        int r = 0;
        while (r == 0 && (next < n || busy > 0)) {
                /* Send while there is room. */
                while (next < n && busy < OB_DIR_READS_IN_FLIGHT) {
                        size_t i = next++;
                        int in = dns[i] && *dns[i] ? dn_in_scope(dns[i], d->base, d->scope) : -EINVAL;
                        if (in <= 0) {
                                fn(i, NULL, -OB_ENOTFOUND, ud); /* not an account offboard judges */
                                continue;
                        }
                        int msgid = -1;
                        struct timeval tl = ms_to_tv(d->timeout_ms);
                        int rc = ldap_search_ext(d->ld, dns[i], LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
                                                 NULL, d->timeout_ms >= 1000 ? &tl : NULL, 1, &msgid);
                        if (rc != LDAP_SUCCESS) {
                                dir_log(d, OB_LOG_ERROR, "read_account", dns[i], rc, NULL);
                                fn(i, NULL, -OB_EDIRECTORY, ud);
                                continue;
                        }
                        for (size_t k = 0; k < OB_DIR_READS_IN_FLIGHT; k++)
                                if (!slots[k].msgid) {
                                        slots[k] = (struct read_slot){.msgid = msgid, .i = i};
                                        break;
                                }
                        busy++;
                }
                if (busy == 0)
                        break;
                LDAPMessage *m = NULL;
                int t = wait_msg(d, LDAP_RES_ANY, "read_account", NULL, &m);
                if (t < 0) {
                        /* No answer can come for what is in flight. */
                        for (size_t k = 0; k < OB_DIR_READS_IN_FLIGHT; k++)
                                if (slots[k].msgid) {
                                        slots[k].err = t;
                                        read_slot_done(&slots[k], dns, fn, ud);
                                }
                        busy = 0;
                        r = t;
                        break;
                }
                int id = ldap_msgid(m);
                struct read_slot *sl = NULL;
                for (size_t k = 0; k < OB_DIR_READS_IN_FLIGHT && !sl; k++)
                        if (slots[k].msgid == id)
                                sl = &slots[k];
                if (!sl)
                        dir_dispatch(d, m); /* an operation on the loop */
                else if (t == LDAP_RES_SEARCH_ENTRY && !sl->found && sl->err == 0) {
                        int k = entry_to_account(d, m, false, &sl->found, &sl->rg);
                        if (k < 0)
                                sl->err = k;
                } else if (t == LDAP_RES_SEARCH_RESULT) {
                        int res;
                        if (parse_result(d, m, "read_account", dns[sl->i], &res, NULL) != LDAP_SUCCESS &&
                            res != LDAP_NO_SUCH_OBJECT && sl->err == 0)
                                sl->err = ldap_to_ob(res) == -ENOMEM ? -ENOMEM : -OB_EDIRECTORY;
                        if (res == LDAP_NO_SUCH_OBJECT) {
                                ob_account_free(sl->found);
                                sl->found = NULL;
                        }
                        /* The rest of its ranges, here: the other reads'
                         * answers wait in libldap meanwhile. */
                        if (sl->err == 0 && sl->found)
                                sl->err = ranges_read(d, &sl->rg, sl->found);
                        read_slot_done(sl, dns, fn, ud);
                        busy--;
                }
                ldap_msgfree(m);
        }
        free(owned);
        return r;
}

/* ---- one entry by DN, outside the account base -------------------------------------------------- */

int ob_dir_read_entry(struct ob_dir *d, const char *dn, const char *const *attrs, struct ob_account **ret)
{
        if (!d || !dn || !attrs)
                return -EINVAL;
        struct ob_account *a = NULL;
        /* libldap takes char **; it does not write to the list. */
        int r = read_entry(d, dn, (char **)attrs, "read_entry", &a);
        if (r < 0)
                return r;
        if (!a)
                return -OB_ENOTFOUND;
        *ret = a;
        return 0;
}

/* ---- the ldap connector's operations on the loop (ldap_conn.c) ---------------------------------- */

#define OB_OID_PERMISSIVE_MODIFY "1.2.840.113556.1.4.1413"

int ob_dir_search_listing_start(struct ob_dir *d, const char *base, const char *attr, const char *value,
                                ob_dir_entry_fn fn, ob_dir_search_done_fn done, void *userdata)
{
        static char *none[] = {(char *)"1.1", NULL}; /* the DN is all the caller needs */
        if (!d || !d->loop || !base || !*base || !valid_attr_name(attr) || !value || !*value || !fn || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        _cleanup_buf_ struct ob_buf f;
        ob_buf_init(&f);
        char *filter = NULL;
        int r = ob_buf_printf(&f, "(%s=", attr);
        if (r == 0)
                r = ob_escape_ldap_filter(&f, value, strlen(value));
        if (r == 0)
                r = ob_buf_addc(&f, ')');
        if (r == 0)
                r = ob_buf_steal(&f, &filter);
        if (r < 0)
                return r;
        struct dir_op *op = op_new(DIR_OP_SEARCH, base, userdata);
        if (!op) {
                free(filter);
                return -ENOMEM;
        }
        op->search_done = done;
        /* Not the accounts' base: the caller checks base (on the loop) when
         * nothing is found, for 389-DS answers a paged search of a missing
         * base with success. */
        op->base_checked = true;
        op->s = (struct dir_search){.base = op->dn,
                                    .scope = LDAP_SCOPE_SUBTREE,
                                    .filter = filter,
                                    .attrs = none,
                                    .need_id = false,
                                    .fn = fn,
                                    .userdata = userdata,
                                    .info = &op->info,
                                    .deadline = monotonic_ms() + d->search_deadline_ms};
        r = search_send_page(d, &op->s);
        if (r < 0) {
                op_free(op);
                return r;
        }
        op->msgid = op->s.msgid;
        op_add(d, op);
        return 0;
}

/* One modify deleting (or adding) one value: modify_value_start. */
static int modify_value_start(struct ob_dir *d, const char *dn, const char *attr, const char *value, int mod_op,
                              ob_dir_modify_done_fn done, void *userdata)
{
        if (!d || !d->loop || !dn || !*dn || !valid_attr_name(attr) || !value || !*value || !done)
                return -EINVAL;
        if (d->lost)
                return -OB_EDIRECTORY;
        struct berval bv = {strlen(value), (char *)value};
        struct berval *bvs[] = {&bv, NULL};
        LDAPMod mod = {.mod_op = mod_op | LDAP_MOD_BVALUES, .mod_type = (char *)attr, .mod_bvalues = bvs};
        LDAPMod *mods[] = {&mod, NULL};
        /* Not critical: where the server knows it, a value gone meanwhile
         * (or, added, already there) is no error: the change is done
         * (modify_value_start); elsewhere that is an error the next pass,
         * which no longer finds the group, settles. */
        LDAPControl permissive = {.ldctl_oid = OB_OID_PERMISSIVE_MODIFY, .ldctl_iscritical = 0};
        LDAPControl *sctrls[] = {&permissive, NULL};
        struct dir_op *op = op_new(DIR_OP_MODIFY, dn, userdata);
        if (!op)
                return -ENOMEM;
        op->modify_done = done;
        int rc = ldap_modify_ext(d->ld, dn, mods, sctrls, NULL, &op->msgid);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "modify", dn, rc, NULL);
                op_free(op);
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
        }
        op_add(d, op);
        return 0;
}

int ob_dir_delete_value_start(struct ob_dir *d, const char *dn, const char *attr, const char *value,
                              ob_dir_modify_done_fn done, void *userdata)
{
        return modify_value_start(d, dn, attr, value, LDAP_MOD_DELETE, done, userdata);
}

int ob_dir_add_value_start(struct ob_dir *d, const char *dn, const char *attr, const char *value,
                           ob_dir_modify_done_fn done, void *userdata)
{
        return modify_value_start(d, dn, attr, value, LDAP_MOD_ADD, done, userdata);
}

/* The first RDN of dn in RFC 4514 form (libldap escapes what needs it), or
 * -EINVAL when dn does not parse or is empty. */
static int first_rdn(const char *dn, char **ret)
{
        LDAPDN ldn = NULL;
        if (!dn || !*dn || ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !ldn || !ldn[0]) {
                if (ldn)
                        ldap_dnfree(ldn);
                return -EINVAL;
        }
        char *rdn = NULL;
        int rc = ldap_rdn2str(ldn[0], &rdn, LDAP_DN_FORMAT_LDAPV3 | LDAP_DN_PRETTY);
        ldap_dnfree(ldn);
        if (rc != LDAP_SUCCESS || !rdn)
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -EINVAL;
        char *copy = strdup(rdn);
        ldap_memfree(rdn);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

static bool dn_parses(const char *dn)
{
        LDAPDN ldn = NULL;
        if (!dn || !*dn || ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
                return false;
        ldap_dnfree(ldn);
        return true;
}

int ob_dn_moved(const char *dn, const char *new_parent, char **ret)
{
        if (!ret || !dn_parses(new_parent))
                return -EINVAL;
        _cleanup_free_ char *rdn = NULL;
        int r = first_rdn(dn, &rdn);
        if (r < 0)
                return r;
        char *s;
        if (asprintf(&s, "%s,%s", rdn, new_parent) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ob_dir_move_start(struct ob_dir *d, const char *dn, const char *new_parent, ob_dir_modify_done_fn done,
                      void *userdata)
{
        if (!d || !d->loop || !done || !dn_parses(new_parent))
                return -EINVAL;
        _cleanup_free_ char *rdn = NULL;
        int r = first_rdn(dn, &rdn);
        if (r < 0)
                return r;
        if (d->lost)
                return -OB_EDIRECTORY;
        struct dir_op *op = op_new(DIR_OP_MODIFY, dn, userdata);
        if (!op)
                return -ENOMEM;
        op->modify_done = done;
        /* The same RDN under the new parent; the old RDN's value is the new
         * one's, so deleting it changes nothing else in the entry. */
        int rc = ldap_rename(d->ld, dn, rdn, new_parent, 1, NULL, NULL, &op->msgid);
        if (rc != LDAP_SUCCESS) {
                dir_log(d, OB_LOG_ERROR, "rename", dn, rc, NULL);
                op_free(op);
                return rc == LDAP_NO_MEMORY ? -ENOMEM : -OB_EDIRECTORY;
        }
        op_add(d, op);
        return 0;
}
