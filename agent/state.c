/* state.c: the embedded state store on SQLite.
 *
 * One file, WAL, synchronous=FULL. The schema is versioned twice: the SQLite
 * header carries application_id 'offb' and user_version, and the `meta` table
 * says format=offboard-state, version=1. A file that fails any of these checks,
 * or PRAGMA quick_check of the tables every pass reads, is refused with
 * -OB_ESTATE and left untouched (SQLite itself refuses a truncated file).
 *
 * A new store is built under "<path>.new" and renamed into place once its
 * schema is committed, so the file at <path> is either absent or a complete
 * store: an empty or truncated file is never mistaken for a new store.
 *
 * Errors: every SQLite error becomes -OB_ESTATE (-ENOMEM for SQLITE_NOMEM,
 * -ENOSPC when the disk is full) and a message naming the file is kept for
 * ob_state_errmsg(). Writes on a read-only store give -EROFS. Operating-system
 * errors while creating the file are returned as -errno. Nothing is logged.
 */
#define _GNU_SOURCE
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"
#include "util.h"

#define OB_STATE_APPLICATION_ID 0x6f666662 /* 'offb' */
#define OB_STATE_FORMAT "offboard-state"
#define OB_STATE_VERSION 4 /* 2: actions.not_before and actions.parked; 3: actions.due; 4: memberships */
/* Memberships kept per (account, generation, action): a step's records are
 * read whole by every plan of the account, so they stay small; 256 rows of
 * a group DN, an attribute name and a value, each at most
 * OB_STATE_MEMBERSHIP_FIELD_MAX bytes, are under 1 MiB, and a leaver in more
 * groups is rare. Beyond it (or a longer field), the rows are not kept and
 * actions.memberships_cut counts them: the list says it was cut. */
#define OB_STATE_MEMBERSHIPS_MAX 256
#define OB_STATE_MEMBERSHIP_FIELD_MAX 1024
/* Error excerpts kept per action, in bytes (cut on a UTF-8 boundary). */
#define OB_STATE_ERROR_MAX 1024
#define OB_STATE_MSG_MAX (PATH_MAX + 768)

/* What the operator can do about a damaged store. */
#define OB_STATE_ADVICE                                                                           \
        "it was left untouched: restore it from a backup, or move it away to start over (every " \
        "owed action will be planned again)"

enum {
        ST_GET,
        ST_GET_SNAPSHOT,
        ST_PUT,
        ST_PUT_SNAPSHOT,
        ST_INDEX,
        ST_INDEX_ONE,
        ST_ACTIONS,
        ST_INTENT,
        ST_OUTCOME,
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_SAVEPOINT,
        ST_RELEASE,
        ST_ROLLBACK_TO,
        ST_DEFER,
        ST_DUE,
        ST_HAS_STATUS,
        ST_DELETED_USERNAME,
        ST_ID_OF,
        ST_MEMBERSHIPS_COUNT,
        ST_MEMBERSHIPS_OFFER,
        ST_MEMBERSHIPS_ADD,
        ST_MEMBERSHIPS_MARK,
        ST_MEMBERSHIPS_CARRY,
        _ST_MAX,
};

static const char *const state_sql[_ST_MAX] = {
        [ST_GET] = "SELECT id, dn, username, status, status_since, digest, generation, pending_from, "
                   "pending_to, writeback_owed FROM accounts WHERE id = ?1",
        [ST_GET_SNAPSHOT] = "SELECT a.dn, s.data FROM accounts AS a LEFT JOIN snapshots AS s ON s.id = a.id "
                            "WHERE a.id = ?1",
        [ST_PUT] = "INSERT INTO accounts(id, dn, username, status, status_since, digest, generation, "
                   "pending_from, pending_to, writeback_owed) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                   "ON CONFLICT(id) DO UPDATE SET dn = excluded.dn, username = excluded.username, "
                   "status = excluded.status, status_since = excluded.status_since, "
                   "digest = excluded.digest, generation = excluded.generation, "
                   "pending_from = excluded.pending_from, pending_to = excluded.pending_to, "
                   "writeback_owed = excluded.writeback_owed",
        [ST_PUT_SNAPSHOT] = "INSERT INTO snapshots(id, data) VALUES(?1, ?2) "
                            "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
        /* accounts is a WITHOUT ROWID table: its rows are stored in id
         * order, so this ORDER BY costs no sort. */
        [ST_INDEX] = "SELECT id, digest, status, pending_to, writeback_owed FROM accounts ORDER BY id",
        [ST_INDEX_ONE] = "SELECT id, digest, status, pending_to, writeback_owed FROM accounts WHERE id = ?1",
        /* The memberships a record stands for (memberships_in: the
         * generation whose rows they are), as JSON: ldap_conn.h's detail. */
        [ST_ACTIONS] = "SELECT action, outcome, attempts, http_status, error, idempotency_key, updated, "
                       "not_before, parked, due, CASE WHEN x.memberships_in IS NOT NULL THEN json_object("
                       "'memberships', json(COALESCE((SELECT json_group_array(json_array(m.group_dn, m.attribute, "
                       "m.value)) FROM memberships AS m WHERE m.account_id = x.account_id AND m.generation = "
                       "x.memberships_in AND m.action = x.action), '[]')), 'cut', x.memberships_cut) END "
                       "FROM actions AS x WHERE account_id = ?1 AND generation = ?2 ORDER BY action",
        /* A new intent keeps http_status and error: they describe the last
         * attempt that came back, which `offboard status` still wants to show
         * while the next one is in flight. */
        [ST_INTENT] = "INSERT INTO actions(account_id, generation, action, outcome, attempts, "
                      "http_status, error, idempotency_key, updated) "
                      "VALUES(?1, ?2, ?3, ?4, 1, 0, NULL, ?5, ?6) "
                      "ON CONFLICT(account_id, generation, action) DO UPDATE SET "
                      "outcome = excluded.outcome, attempts = actions.attempts + 1, "
                      "idempotency_key = excluded.idempotency_key, updated = excluded.updated, not_before = 0",
        /* An outcome may come without an intent (skipped, blocked: no request
         * was sent); it then has zero attempts. */
        [ST_OUTCOME] = "INSERT INTO actions(account_id, generation, action, outcome, attempts, "
                       "http_status, error, idempotency_key, updated) "
                       "VALUES(?1, ?2, ?3, ?4, 0, ?5, ?6, NULL, ?7) "
                       "ON CONFLICT(account_id, generation, action) DO UPDATE SET "
                       "outcome = excluded.outcome, http_status = excluded.http_status, "
                       "error = excluded.error, updated = excluded.updated",
        /* A step's memberships (ob_state_action_outcome_detail): rows added
         * to those of earlier attempts (a removal that failed half-way, then
         * finished, recorded all it removed), up to the cap. */
        [ST_MEMBERSHIPS_COUNT] = "SELECT count(*) FROM memberships WHERE account_id = ?1 AND generation = ?2 "
                                 "AND action = ?3",
        /* How many the detail offers, how many it says it left out, and how
         * many of those offered do not fit (not text, or longer than ?2). */
        [ST_MEMBERSHIPS_OFFER] = "SELECT json_array_length(?1, '$.memberships'), COALESCE(json_extract(?1, "
                                 "'$.cut'), 0), (SELECT count(*) FROM json_each(?1, '$.memberships') WHERE NOT ("
                                 "typeof(json_extract(value, '$[0]')) = 'text' AND typeof(json_extract(value, "
                                 "'$[1]')) = 'text' AND typeof(json_extract(value, '$[2]')) = 'text' AND length("
                                 "CAST(json_extract(value, '$[0]') AS BLOB)) <= ?2 AND length(CAST(json_extract("
                                 "value, '$[1]') AS BLOB)) <= ?2 AND length(CAST(json_extract(value, '$[2]') AS "
                                 "BLOB)) <= ?2))",
        [ST_MEMBERSHIPS_ADD] = "INSERT OR IGNORE INTO memberships(account_id, generation, action, group_dn, "
                               "attribute, value) SELECT ?1, ?2, ?3, g, a, v FROM (SELECT json_extract(value, "
                               "'$[0]') AS g, json_extract(value, '$[1]') AS a, json_extract(value, '$[2]') AS v "
                               "FROM json_each(?4, '$.memberships')) WHERE typeof(g) = 'text' AND typeof(a) = "
                               "'text' AND typeof(v) = 'text' AND length(CAST(g AS BLOB)) <= ?6 AND "
                               "length(CAST(a AS BLOB)) <= ?6 AND length(CAST(v AS BLOB)) <= ?6 LIMIT ?5",
        /* The cut is the most any attempt reported: at least that many
         * are missing (an attempt that repeats the list, as a restore's
         * intent and outcome do, must not count them again). */
        [ST_MEMBERSHIPS_MARK] = "UPDATE actions SET memberships_in = ?2, "
                                "memberships_cut = max(memberships_cut, ?4) "
                                "WHERE account_id = ?1 AND generation = ?2 AND action = ?3",
        /* A step done by an earlier transition is recorded done in the
         * next one without a detail (reconcile.c: carried): it stands for
         * the memberships its last record stood for. A step that removed
         * memberships always comes with its detail, and then says so. */
        [ST_MEMBERSHIPS_CARRY] = "UPDATE actions SET memberships_in = (SELECT p.memberships_in FROM actions AS p "
                                 "WHERE p.account_id = ?1 AND p.action = ?3 AND p.generation < ?2 "
                                 "ORDER BY p.generation DESC LIMIT 1), memberships_cut = COALESCE((SELECT "
                                 "p.memberships_cut FROM actions AS p WHERE p.account_id = ?1 AND p.action = ?3 "
                                 "AND p.generation < ?2 ORDER BY p.generation DESC LIMIT 1), 0) "
                                 "WHERE account_id = ?1 AND generation = ?2 AND action = ?3 AND memberships_in IS NULL",
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_SAVEPOINT] = "SAVEPOINT ob_put",
        [ST_RELEASE] = "RELEASE ob_put",
        [ST_ROLLBACK_TO] = "ROLLBACK TO ob_put",
        /* When the action may be tried again (Retry-After, backoff), and
         * whether it waits for a human (`offboard retry`). */
        [ST_DEFER] = "UPDATE actions SET not_before = ?4, parked = ?5 "
                     "WHERE account_id = ?1 AND generation = ?2 AND action = ?3",
        /* A stage's due time (actions.X.grace), recorded once when its
         * transition begins: a later pass, a restart or `offboard retry`
         * never moves it. */
        [ST_DUE] = "INSERT INTO actions(account_id, generation, action, outcome, attempts, updated, due) "
                   "VALUES(?1, ?2, ?3, 0, 0, ?5, ?4) "
                   "ON CONFLICT(account_id, generation, action) DO UPDATE SET due = excluded.due "
                   "WHERE actions.due = 0",
        [ST_HAS_STATUS] = "SELECT EXISTS(SELECT 1 FROM accounts WHERE status = ?1 OR pending_to = ?1)",
        /* Seed 000: a deleted account's username on a new entry. */
        [ST_DELETED_USERNAME] = "SELECT id FROM accounts WHERE username = ?1 COLLATE NOCASE "
                                "AND (status = ?2 OR pending_to = ?2) AND id != ?3 LIMIT 1",
        /* explain: the account a username names, the latest first. */
        [ST_ID_OF] = "SELECT id FROM accounts WHERE username = ?1 COLLATE NOCASE ORDER BY status_since DESC LIMIT 1",
};

/* A version 1 store opened read-only cannot be upgraded: the same reads,
 * with the columns version 2 added as constants. */
static const char state_actions_v1[] =
        "SELECT action, outcome, attempts, http_status, error, idempotency_key, updated, 0, 0, 0, NULL "
        "FROM actions WHERE account_id = ?1 AND generation = ?2 ORDER BY action";
/* And a version 2 store opened read-only, without version 3's due. */
static const char state_actions_v2[] =
        "SELECT action, outcome, attempts, http_status, error, idempotency_key, updated, not_before, parked, 0, NULL "
        "FROM actions WHERE account_id = ?1 AND generation = ?2 ORDER BY action";
/* And a version 3 store opened read-only: no memberships yet. */
static const char state_actions_v3[] =
        "SELECT action, outcome, attempts, http_status, error, idempotency_key, updated, not_before, parked, due, "
        "NULL FROM actions WHERE account_id = ?1 AND generation = ?2 ORDER BY action";

static const char state_upgrade_v2[] = "BEGIN IMMEDIATE;"
                                       "ALTER TABLE actions ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;"
                                       "ALTER TABLE actions ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;"
                                       "UPDATE meta SET value = '2' WHERE key = 'version';"
                                       "PRAGMA user_version = 2;"
                                       "COMMIT;";

/* For an administrator with sqlite3: the tables with names and times, not
 * integers (the store's statuses and outcomes are enum values). */
#define STATE_STATUS_NAME(col)                                                                                      \
        "CASE " col " WHEN 0 THEN 'none' WHEN 1 THEN 'active' WHEN 2 THEN 'locked' WHEN 3 THEN 'inactive' "        \
        "WHEN 4 THEN 'ended' WHEN 5 THEN 'deleted' ELSE 'unknown' END"
#define STATE_TIME(col) "CASE WHEN " col " > 0 THEN datetime(" col ", 'unixepoch') END"
#define STATE_VIEWS                                                                                                 \
        "CREATE VIEW IF NOT EXISTS accounts_named AS SELECT id, dn, username, " STATE_STATUS_NAME("status")          \
        " AS status, " STATE_TIME("status_since") " AS status_since, generation, "                                 \
        "CASE WHEN pending_to != 0 THEN " STATE_STATUS_NAME("pending_from") " END AS pending_from, "              \
        "CASE WHEN pending_to != 0 THEN " STATE_STATUS_NAME("pending_to") " END AS pending_to, "                  \
        "writeback_owed != 0 AS writeback_owed FROM accounts;"                                                    \
        "CREATE VIEW IF NOT EXISTS actions_named AS SELECT a.username, x.account_id, x.generation, x.action, "    \
        "CASE x.outcome WHEN 0 THEN 'none' WHEN 1 THEN 'intent' WHEN 2 THEN 'done' WHEN 3 THEN 'failed' "          \
        "WHEN 4 THEN 'skipped' WHEN 5 THEN 'blocked' ELSE 'unknown' END AS outcome, x.attempts, x.http_status, "  \
        "x.error, x.idempotency_key, " STATE_TIME("x.updated") " AS updated, " STATE_TIME("x.not_before")         \
        " AS not_before, x.parked != 0 AS parked, " STATE_TIME("x.due") " AS due "                                \
        "FROM actions AS x LEFT JOIN accounts AS a ON a.id = x.account_id;"
#define STATE_VIEWS_V4                                                                                              \
        "CREATE VIEW IF NOT EXISTS memberships_named AS SELECT a.username, m.account_id, m.generation, m.action, "  \
        "m.group_dn, m.attribute, m.value FROM memberships AS m LEFT JOIN accounts AS a ON a.id = m.account_id;"

/* Version 4: the memberships a step removed (remove_from_groups) or is to
 * put back (restore_groups), one row each; actions.memberships_in says which
 * generation's rows a record stands for (its own, or, carried, an earlier
 * one), memberships_cut how many were not kept (beyond the cap). */
#define STATE_MEMBERSHIPS_TABLE                                                                                     \
        "CREATE TABLE memberships("                                                                                \
        " account_id TEXT NOT NULL,"                                                                               \
        " generation INTEGER NOT NULL,"                                                                            \
        " action TEXT NOT NULL,"                                                                                   \
        " group_dn TEXT NOT NULL,"                                                                                 \
        " attribute TEXT NOT NULL,"                                                                                \
        " value TEXT NOT NULL,"                                                                                    \
        " PRIMARY KEY(account_id, generation, action, group_dn, attribute, value)) WITHOUT ROWID;"
static const char state_upgrade_v4[] = "BEGIN IMMEDIATE;"
                                       "ALTER TABLE actions ADD COLUMN memberships_in INTEGER;"
                                       "ALTER TABLE actions ADD COLUMN memberships_cut INTEGER NOT NULL DEFAULT 0;"
                                       STATE_MEMBERSHIPS_TABLE
                                       STATE_VIEWS_V4
                                       "UPDATE meta SET value = '4' WHERE key = 'version';"
                                       "PRAGMA user_version = 4;"
                                       "COMMIT;";

static const char state_upgrade_v3[] = "BEGIN IMMEDIATE;"
                                       "ALTER TABLE actions ADD COLUMN due INTEGER NOT NULL DEFAULT 0;"
                                       "CREATE INDEX IF NOT EXISTS accounts_username ON accounts(username COLLATE NOCASE);"
                                       STATE_VIEWS
                                       "UPDATE meta SET value = '3' WHERE key = 'version';"
                                       "PRAGMA user_version = 3;"
                                       "COMMIT;";

static const char state_schema[] =
        "BEGIN;"
        "PRAGMA application_id = 1868981858;" /* 0x6f666662 */
        "PRAGMA user_version = 4;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
        "INSERT INTO meta(key, value) VALUES('format', 'offboard-state'), ('version', '4');"
        "CREATE TABLE accounts("
        " id TEXT PRIMARY KEY NOT NULL,"
        " dn TEXT,"
        " username TEXT,"
        " status INTEGER NOT NULL DEFAULT 0,"
        " status_since INTEGER NOT NULL DEFAULT 0,"
        " digest INTEGER NOT NULL DEFAULT 0," /* uint64 stored as its int64 bit pattern */
        " generation INTEGER NOT NULL DEFAULT 0,"
        " pending_from INTEGER NOT NULL DEFAULT 0,"
        " pending_to INTEGER NOT NULL DEFAULT 0,"
        " writeback_owed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;" /* one b-tree, in id order */
        /* Snapshots (~1 KB each) have their own table: the scan that loads
         * the index then reads ~100 bytes per account instead of all of
         * them, and a put that keeps the snapshot does not rewrite it. */
        "CREATE TABLE snapshots("
        " id TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
        " data BLOB NOT NULL);"
        "CREATE TABLE actions("
        " account_id TEXT NOT NULL,"
        " generation INTEGER NOT NULL,"
        " action TEXT NOT NULL,"
        " outcome INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " http_status INTEGER NOT NULL DEFAULT 0,"
        " error TEXT,"
        " idempotency_key TEXT,"
        " updated INTEGER NOT NULL DEFAULT 0,"
        " not_before INTEGER NOT NULL DEFAULT 0,"
        " parked INTEGER NOT NULL DEFAULT 0,"
        " due INTEGER NOT NULL DEFAULT 0,"
        " memberships_in INTEGER,"
        " memberships_cut INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY(account_id, generation, action)) WITHOUT ROWID;"
        STATE_MEMBERSHIPS_TABLE
        /* A username a deleted account had, found when a new entry shows it. */
        "CREATE INDEX IF NOT EXISTS accounts_username ON accounts(username COLLATE NOCASE);"
        STATE_VIEWS
        STATE_VIEWS_V4
        "COMMIT;";

struct ob_state {
        sqlite3 *db; /* NULL: read-only store whose file does not exist (empty) */
        char *path;
        bool readonly;
        int version; /* the format version of the file */
        sqlite3_stmt *st[_ST_MAX];
        char errmsg[OB_STATE_MSG_MAX];
        struct ob_buf blob; /* ob_state_put's snapshot, kept for its capacity */
};

static _Thread_local char state_open_errmsg[OB_STATE_MSG_MAX];

static void stmt_resetp(sqlite3_stmt **st)
{
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}
#define _cleanup_reset_ _cleanup_(stmt_resetp)

static int64_t u64_to_i64(uint64_t u)
{
        int64_t i;
        memcpy(&i, &u, sizeof(i));
        return i;
}

static uint64_t i64_to_u64(int64_t i)
{
        uint64_t u;
        memcpy(&u, &i, sizeof(u));
        return u;
}

static int state_msg(struct ob_state *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int state_msg(struct ob_state *s, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
        va_end(ap);
        return err;
}

/* Translates an SQLite result code into an error and a message; `what` says
 * what was being done ("reading account X"). */
static int state_fail(struct ob_state *s, int rc, const char *what)
{
        /* rc may be ours (a NULL where none can be): then the connection's
         * last message is about something else. */
        bool from_db = s->db && (sqlite3_errcode(s->db) & 0xff) == (rc & 0xff);
        const char *detail = from_db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
        int sys = from_db ? sqlite3_system_errno(s->db) : 0;

        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return state_msg(s, -ENOMEM, "state store %s: out of memory while %s", s->path, what);
        case SQLITE_FULL:
                return state_msg(s, -ENOSPC,
                                 "state store %s: disk full while %s (%s); nothing more can be recorded "
                                 "until space is freed",
                                 s->path, what, detail);
        case SQLITE_NOTADB:
                return state_msg(s, -OB_ESTATE,
                                 "state store %s is corrupt or not a database at all (%s); " OB_STATE_ADVICE,
                                 s->path, detail);
        case SQLITE_CORRUPT:
                return state_msg(s, -OB_ESTATE, "state store %s is corrupt (%s); " OB_STATE_ADVICE, s->path,
                                 detail);
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return state_msg(s, -OB_ESTATE, "state store %s is locked by another process while %s (%s)",
                                 s->path, what, detail);
        case SQLITE_IOERR:
                if (sys == ENOSPC || sys == EDQUOT)
                        return state_msg(s, -ENOSPC,
                                         "state store %s: disk full while %s (%s); nothing more can be "
                                         "recorded until space is freed",
                                         s->path, what, strerror(sys));
                if (sys != 0)
                        return state_msg(s, -OB_ESTATE, "state store %s: I/O error while %s (%s: %s)", s->path,
                                         what, detail, strerror(sys));
                break;
        default:
                break;
        }
        return state_msg(s, -OB_ESTATE, "state store %s: error while %s (%s)", s->path, what, detail);
}

static int state_readonly(struct ob_state *s, const char *what)
{
        return state_msg(s, -EROFS, "state store %s is open read-only: cannot %s", s->path, what);
}

static int col_strdup(sqlite3_stmt *st, int col, char **ret)
{
        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        const unsigned char *t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        char *d = strdup((const char *)t);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

/* The snapshot codec (its format and checks) is in snapshot.c. */

/* ---- opening ---- */

static int state_prepare(struct ob_state *s, const char *sql, sqlite3_stmt **ret, const char *what)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_finalize(st);
                return state_fail(s, rc, what);
        }
        *ret = st;
        return 0;
}

static int state_exec(struct ob_state *s, const char *sql, const char *what)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return state_fail(s, rc, what);
        return 0;
}

/* A single-row integer pragma. */
static int state_pragma_int(struct ob_state *s, const char *sql, int64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int r = state_prepare(s, sql, &st, "opening it");
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                r = 0;
        } else {
                r = state_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "opening it");
        }
        sqlite3_finalize(st);
        return r;
}

/* The value of one meta key (NULL if absent); -OB_ESTATE if there is no meta table. */
static int state_meta(struct ob_state *s, const char *key, char **ret)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
        int r;

        if (rc != SQLITE_OK) {
                sqlite3_finalize(st);
                if ((rc & 0xff) == SQLITE_ERROR)
                        return state_msg(s, -OB_ESTATE,
                                         "state store %s is not an offboard state store (it has no meta "
                                         "table); it was left untouched: check the state path",
                                         s->path);
                return state_fail(s, rc, "opening it");
        }
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                r = col_strdup(st, 0, ret);
                if (r < 0)
                        r = state_fail(s, SQLITE_NOMEM, "opening it");
        } else if (rc == SQLITE_DONE) {
                *ret = NULL;
                r = 0;
        } else
                r = state_fail(s, rc, "opening it");
        sqlite3_finalize(st);
        return r;
}

static int state_quick_check(struct ob_state *s, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int r = state_prepare(s, sql, &st, "checking it");
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 0);
                if (!t)
                        r = state_fail(s, SQLITE_NOMEM, "checking it");
                else if (strcmp(t, "ok") != 0) {
                        char detail[256];
                        snprintf(detail, sizeof(detail), "%s", t);
                        for (char *c = detail; *c; c++)
                                if (*c == '\n' || *c == '\r' || *c == '\t')
                                        *c = ' ';
                        r = state_msg(s, -OB_ESTATE, "state store %s is corrupt (%s); " OB_STATE_ADVICE,
                                      s->path, detail);
                } else
                        r = 0;
        } else
                r = state_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "checking it");
        sqlite3_finalize(st);
        return r;
}

/* Is this file an offboard store this version can use? Reads only. */
static int state_verify(struct ob_state *s)
{
        _cleanup_free_ char *format = NULL, *version = NULL;
        int64_t appid = 0, v = 0;
        int r;

        if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK)
                return state_fail(s, sqlite3_errcode(s->db), "opening it");
        r = state_pragma_int(s, "PRAGMA application_id", &appid);
        if (r < 0)
                return r;
        if (appid != OB_STATE_APPLICATION_ID)
                return state_msg(s, -OB_ESTATE,
                                 "state store %s is not an offboard state store (SQLite application_id "
                                 "0x%08llx, expected 0x%08x); it was left untouched: check the state path",
                                 s->path, (unsigned long long)(uint32_t)appid, OB_STATE_APPLICATION_ID);
        r = state_meta(s, "format", &format);
        if (r < 0)
                return r;
        r = state_meta(s, "version", &version);
        if (r < 0)
                return r;
        if (!format || strcmp(format, OB_STATE_FORMAT) != 0 || !version)
                return state_msg(s, -OB_ESTATE,
                                 "state store %s is not an offboard state store (format %s); it was left "
                                 "untouched: check the state path",
                                 s->path, format ? format : "missing");
        if (ob_parse_i64(version, &v) < 0 || v < 1)
                return state_msg(s, -OB_ESTATE,
                                 "state store %s has an invalid format version \"%s\"; " OB_STATE_ADVICE,
                                 s->path, version);
        if (v > OB_STATE_VERSION)
                return state_msg(s, -OB_ESTATE,
                                 "state store %s was written by a newer offboard (format version %lld, this "
                                 "one reads up to %d); it was left untouched: run that newer version",
                                 s->path, (long long)v, OB_STATE_VERSION);
        s->version = (int)v;
        /* The structure of the tables every pass reads. Checking the whole
         * file takes ~200 ms per 100,000 accounts, mostly in the snapshots
         * (~1 KB each); those are read one at a time, where SQLite checks
         * the pages it walks and a checksum covers each blob. */
        static const char *const checks[] = {
                "PRAGMA quick_check(meta)",
                "PRAGMA quick_check(accounts)",
                "PRAGMA quick_check(actions)",
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(checks); i++) {
                r = state_quick_check(s, checks[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int state_open_db(struct ob_state *s, const char *path, int flags)
{
        int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
        if (rc != SQLITE_OK) {
                if (!s->db)
                        return state_msg(s, -ENOMEM, "state store %s: out of memory while opening it", s->path);
                return state_fail(s, rc, "opening it");
        }
        sqlite3_extended_result_codes(s->db, 1);
        return 0;
}

static void state_close_db(struct ob_state *s, bool checkpoint)
{
        for (size_t i = 0; i < _ST_MAX; i++) {
                sqlite3_finalize(s->st[i]);
                s->st[i] = NULL;
        }
        if (!s->db)
                return;
        /* A store that failed its checks is not written to, not even by the
         * checkpoint SQLite runs when the last connection closes. */
        if (!checkpoint)
                sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_close_v2(s->db);
        s->db = NULL;
}

static int fsync_path(const char *path, bool dir)
{
        int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

static void unlink_sidecars(const char *base)
{
        static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
        char p[PATH_MAX];
        for (size_t i = 0; i < OB_ELEMENTSOF(suffixes); i++)
                if (snprintf(p, sizeof(p), "%s%s", base, suffixes[i]) < (int)sizeof(p))
                        (void)unlink(p);
}

/* Builds a complete empty store at <path>.new and renames it to <path> if
 * nothing appeared there meanwhile. */
static int state_create(struct ob_state *s)
{
        char tmp[PATH_MAX];
        int fd, r;

        if (snprintf(tmp, sizeof(tmp), "%s.new", s->path) >= (int)sizeof(tmp))
                return state_msg(s, -ENAMETOOLONG, "state store %s: path too long", s->path);
        /* Leftovers of an interrupted creation are ours, and a stale -wal
         * must not be replayed into the new file. */
        unlink_sidecars(tmp);
        fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT) {
                        _cleanup_free_ char *d = strdup(s->path);
                        if (!d)
                                return state_fail(s, SQLITE_NOMEM, "creating it");
                        return state_msg(s, r, "state store %s cannot be created: directory %s does not exist",
                                         s->path, dirname(d));
                }
                return state_msg(s, r, "state store %s cannot be created: %s: %s", s->path, tmp, strerror(-r));
        }
        close(fd);

        r = state_open_db(s, tmp, SQLITE_OPEN_READWRITE);
        if (r >= 0)
                r = state_exec(s, "PRAGMA synchronous = FULL", "creating it");
        if (r >= 0)
                r = state_exec(s, state_schema, "creating it");
        if (r >= 0)
                r = state_exec(s, "PRAGMA journal_mode = WAL", "creating it");
        state_close_db(s, true);
        if (r >= 0) {
                r = fsync_path(tmp, false);
                if (r < 0)
                        r = state_msg(s, r, "state store %s cannot be created: fsync %s: %s", s->path, tmp,
                                      strerror(-r));
        }
        if (r >= 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, s->path, RENAME_NOREPLACE) < 0) {
                r = -errno;
                if (r == -EINVAL || r == -ENOSYS) {
                        /* A file system without RENAME_NOREPLACE: a hard link
                         * refuses to replace too. */
                        r = link(tmp, s->path) < 0 ? -errno : 0;
                }
                if (r == -EEXIST)
                        r = 0; /* someone else created it: verify theirs */
                else if (r < 0)
                        r = state_msg(s, r, "state store %s cannot be created: rename %s: %s", s->path, tmp,
                                      strerror(-r));
        }
        unlink_sidecars(tmp);
        if (r >= 0) {
                _cleanup_free_ char *d = strdup(s->path);
                if (!d)
                        return state_fail(s, SQLITE_NOMEM, "creating it");
                (void)fsync_path(dirname(d), true);
        }
        return r;
}

/* path with its directory resolved (links included) and its last name as
 * it is: "<realpath(dirname)>/<basename>". */
static int state_real_path(struct ob_state *s, const char *path, char *out, size_t len)
{
        _cleanup_free_ char *d = strdup(path), *b = strdup(path);
        if (!d || !b)
                return state_msg(s, -ENOMEM, "state store %s: out of memory", s->path);
        char dir[PATH_MAX];
        if (!realpath(dirname(d), dir)) {
                int r = -errno;
                return state_msg(s, r, "state store %s cannot be opened: its directory: %s", s->path, strerror(-r));
        }
        const char *base = basename(b);
        if (snprintf(out, len, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", base) >= (int)len)
                return state_msg(s, -ENAMETOOLONG, "state store %s: path too long", s->path);
        return 0;
}

/* The store decides what is done and what is owed: a file another user can
 * write, or a link to somewhere else, is refused (and left untouched). */
static int state_check_file(struct ob_state *s, const char *file, const struct stat *sb)
{
        if (S_ISLNK(sb->st_mode))
                return state_msg(s, -OB_ESTATE,
                                 "state store %s: %s is a symbolic link; it was left untouched (point state.path at "
                                 "the real file)",
                                 s->path, file);
        if (!S_ISREG(sb->st_mode))
                return state_msg(s, -OB_ESTATE, "state store %s: %s is not a regular file; it was left untouched",
                                 s->path, file);
        if (sb->st_uid != geteuid())
                return state_msg(s, -OB_ESTATE,
                                 "state store %s: %s is owned by uid %u, not by the user offboard runs as (uid %u); "
                                 "it was left untouched",
                                 s->path, file, (unsigned)sb->st_uid, (unsigned)geteuid());
        if (sb->st_mode & (S_IWGRP | S_IWOTH))
                return state_msg(s, -OB_ESTATE,
                                 "state store %s: %s is writable by other users (mode %04o); it was left untouched "
                                 "(chmod 600 it after checking it)",
                                 s->path, file, (unsigned)(sb->st_mode & 07777));
        return 0;
}

void ob_state_free(struct ob_state *s)
{
        if (!s)
                return;
        if (s->db && !sqlite3_get_autocommit(s->db) && s->st[ST_ROLLBACK]) {
                sqlite3_step(s->st[ST_ROLLBACK]);
                sqlite3_reset(s->st[ST_ROLLBACK]);
        }
        state_close_db(s, true);
        ob_buf_free(&s->blob);
        free(s->path);
        free(s);
}

int ob_state_open(const char *path, bool readonly, struct ob_state **ret)
{
        struct ob_state *s = NULL;
        struct stat sb;
        int r;

        state_open_errmsg[0] = '\0';
        if (!path || !*path) {
                snprintf(state_open_errmsg, sizeof(state_open_errmsg), "state store path is empty");
                return -EINVAL;
        }
        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path))) {
                free(s);
                snprintf(state_open_errmsg, sizeof(state_open_errmsg), "state store %s: out of memory", path);
                return -ENOMEM;
        }
        s->readonly = readonly;

        if (lstat(path, &sb) < 0) {
                r = -errno;
                if (r != -ENOENT) {
                        state_msg(s, r, "state store %s cannot be opened: %s", path, strerror(-r));
                        goto fail;
                }
                if (readonly) {
                        /* A first `offboard plan`: nothing recorded yet. */
                        *ret = s;
                        return 0;
                }
                r = state_create(s);
                if (r < 0)
                        goto fail;
        } else if ((r = state_check_file(s, path, &sb)) < 0) {
                goto fail;
        } else if (sb.st_size == 0) {
                r = state_msg(s, -OB_ESTATE, "state store %s is corrupt (it is empty); " OB_STATE_ADVICE, path);
                goto fail;
        }

        /* SQLite's own sidecars: a planted -wal would be replayed into the store. */
        static const char *const sidecars[] = {"-wal", "-shm"};
        for (size_t i = 0; i < OB_ELEMENTSOF(sidecars); i++) {
                char side[PATH_MAX];
                struct stat ss;
                if (snprintf(side, sizeof(side), "%s%s", path, sidecars[i]) >= (int)sizeof(side))
                        continue;
                if (lstat(side, &ss) == 0 && (r = state_check_file(s, side, &ss)) < 0)
                        goto fail;
        }
        /* SQLITE_OPEN_NOFOLLOW refuses a link anywhere in the path, and
         * systemd's StateDirectory= with DynamicUser= is one:
         * /var/lib/offboard -> private/offboard. The directories are the
         * administrator's to arrange; the file itself (checked above) and
         * its sidecars must not be links, so the store is opened by its
         * directory's real path with the file's own name. */
        char real[PATH_MAX];
        r = state_real_path(s, path, real, sizeof(real));
        if (r < 0)
                goto fail;
        r = state_open_db(s, real, (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOFOLLOW);
        if (r < 0)
                goto fail;
        r = state_verify(s);
        if (r < 0)
                goto fail;
        if (!readonly) {
                /* A 2 MiB page cache (SQLite's default). 8 MiB once saved
                 * about a fifth of the CPU of filling 100,000 accounts, but
                 * with intents committed in groups the pass no longer shows
                 * it (bench/http_pass.sh: 9.0 s either way) and memory must
                 * stay under 64 MB: peak RSS 72 -> 66 MB, 27 -> 20 MB when
                 * nothing is owed. */
                r = state_exec(s,
                               "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                               "PRAGMA cache_size = -2048;",
                               "opening it");
                if (r < 0)
                        goto fail;
        }
        if (!readonly && s->version < 2) {
                r = state_exec(s, state_upgrade_v2, "upgrading it to format version 2");
                if (r < 0) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        goto fail;
                }
                s->version = 2;
        }
        if (!readonly && s->version < 3) {
                r = state_exec(s, state_upgrade_v3, "upgrading it to format version 3");
                if (r < 0) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        goto fail;
                }
                s->version = 3;
        }
        if (!readonly && s->version < 4) {
                r = state_exec(s, state_upgrade_v4, "upgrading it to format version 4");
                if (r < 0) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        goto fail;
                }
                s->version = 4;
        }
        for (size_t i = 0; i < _ST_MAX; i++) {
                const char *sql = state_sql[i];
                if (s->version < 4 && i == ST_ACTIONS)
                        sql = s->version < 2 ? state_actions_v1 : s->version < 3 ? state_actions_v2 : state_actions_v3;
                else if (s->version < 4 && i >= ST_MEMBERSHIPS_COUNT && i <= ST_MEMBERSHIPS_CARRY)
                        continue; /* read-only: never written */
                else if (s->version < 3 && i == ST_DUE)
                        continue; /* read-only: never written */
                else if (s->version < 2 && (i == ST_DEFER || i == ST_INTENT))
                        continue; /* read-only: never written */
                r = state_prepare(s, sql, &s->st[i], "opening it");
                if (r < 0)
                        goto fail;
        }
        *ret = s;
        return 0;

fail:
        memcpy(state_open_errmsg, s->errmsg, sizeof(state_open_errmsg));
        state_close_db(s, false);
        free(s->path);
        free(s);
        return r;
}

const char *ob_state_errmsg(const struct ob_state *s)
{
        return s ? s->errmsg : "";
}

const char *ob_state_open_errmsg(void)
{
        return state_open_errmsg;
}

/* ---- one acting pass per store ---- */

int ob_state_lock(const char *path, bool wait, int *ret_fd, long *ret_holder)
{
        char lp[PATH_MAX];
        if (!path || snprintf(lp, sizeof(lp), "%s.lock", path) >= (int)sizeof(lp))
                return -ENAMETOOLONG;
        int fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
                int e = errno;
                if (e == EINTR && wait)
                        continue;
                if (e == EAGAIN || e == EACCES) {
                        char buf[32] = "";
                        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                        buf[n > 0 ? n : 0] = '\0';
                        *ret_holder = strtol(buf, NULL, 10);
                        close(fd);
                        return -EBUSY;
                }
                close(fd);
                return -e;
        }
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
                int e = -errno;
                close(fd);
                return e;
        }
        *ret_fd = fd;
        return 0;
}

int ob_state_lock_holder(const char *path, long *ret_pid)
{
        char lp[PATH_MAX];
        if (!path || snprintf(lp, sizeof(lp), "%s.lock", path) >= (int)sizeof(lp))
                return -ENAMETOOLONG;
        int fd = open(lp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int r = fcntl(fd, F_OFD_GETLK, &fl) < 0 ? -errno : fl.l_type != F_UNLCK;
        if (r == 1) {
                char buf[32] = "";
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                buf[n > 0 ? n : 0] = '\0';
                *ret_pid = strtol(buf, NULL, 10);
        }
        close(fd);
        return r;
}

/* ---- named values ---- */

int ob_state_meta_get(struct ob_state *s, const char *key, char **ret)
{
        if (!s || !key)
                return -EINVAL;
        if (!s->db) {
                *ret = NULL;
                return 0;
        }
        return state_meta(s, key, ret);
}

int ob_state_meta_put(struct ob_state *s, const char *key, const char *value)
{
        if (!s || !key || !value)
                return -EINVAL;
        if (s->readonly || !s->db)
                return state_readonly(s, "writing a named value");
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db,
                                    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
                return state_fail(s, rc, "writing a named value");
        return 0;
}

/* ---- records ---- */

void ob_record_clear(struct ob_record *r)
{
        if (!r)
                return;
        free(r->id);
        free(r->dn);
        free(r->username);
        *r = (struct ob_record){0};
}

int ob_state_get(struct ob_state *s, const char *id, struct ob_record *ret)
{
        struct ob_record rec = {0};
        int r;

        if (!id)
                return -EINVAL;
        if (!s->db)
                return -OB_ENOTFOUND;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_GET];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -OB_ENOTFOUND;
        if (rc != SQLITE_ROW)
                return state_fail(s, rc, "reading an account");
        r = col_strdup(st, 0, &rec.id);
        if (r >= 0)
                r = col_strdup(st, 1, &rec.dn);
        if (r >= 0)
                r = col_strdup(st, 2, &rec.username);
        if (r < 0 || !rec.id) {
                ob_record_clear(&rec);
                return r < 0 ? state_fail(s, SQLITE_NOMEM, "reading an account")
                             : state_fail(s, SQLITE_CORRUPT, "reading an account");
        }
        rec.status = sqlite3_column_int(st, 3);
        rec.status_since = sqlite3_column_int64(st, 4);
        rec.digest = i64_to_u64(sqlite3_column_int64(st, 5));
        rec.generation = sqlite3_column_int64(st, 6);
        rec.pending_from = sqlite3_column_int(st, 7);
        rec.pending_to = sqlite3_column_int(st, 8);
        rec.writeback_owed = sqlite3_column_int(st, 9) != 0;
        *ret = rec;
        return 0;
}

/* A record without a snapshot gives an account with only id and dn. */
int ob_state_get_snapshot(struct ob_state *s, const char *id, struct ob_account **ret)
{
        _cleanup_account_ struct ob_account *a = NULL;
        int r;

        if (!id)
                return -EINVAL;
        if (!s->db)
                return -OB_ENOTFOUND;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_GET_SNAPSHOT];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -OB_ENOTFOUND;
        if (rc != SQLITE_ROW)
                return state_fail(s, rc, "reading a snapshot");
        if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
                a = ob_account_new();
                if (!a)
                        return state_fail(s, SQLITE_NOMEM, "reading a snapshot");
        } else {
                const void *blob = sqlite3_column_blob(st, 1);
                int len = sqlite3_column_bytes(st, 1);
                if (!blob && len > 0)
                        return state_fail(s, SQLITE_NOMEM, "reading a snapshot");
                r = ob_snapshot_decode(blob ? blob : "", (size_t)len, &a);
                if (r == -OB_ESTATE)
                        return state_msg(s, r,
                                         "state store %s is corrupt (the snapshot of account %s does not "
                                         "decode); " OB_STATE_ADVICE,
                                         s->path, id);
                if (r < 0)
                        return state_fail(s, SQLITE_NOMEM, "reading a snapshot");
        }
        if ((!a->id && !(a->id = strdup(id))) || (!a->dn && col_strdup(st, 0, &a->dn) < 0))
                return state_fail(s, SQLITE_NOMEM, "reading a snapshot");
        *ret = TAKE_PTR(a);
        return 0;
}

int ob_state_begin(struct ob_state *s)
{
        if (s->readonly)
                return state_readonly(s, "begin a transaction");
        if (!sqlite3_get_autocommit(s->db))
                return state_msg(s, -EBUSY, "state store %s: a transaction is already open", s->path);
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_BEGIN];
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "beginning a transaction");
        return 0;
}

/* After a failed commit the transaction may still be open: call
 * ob_state_rollback(), which is harmless when there is none. */
int ob_state_commit(struct ob_state *s)
{
        if (s->readonly)
                return state_readonly(s, "commit");
        if (sqlite3_get_autocommit(s->db))
                return state_msg(s, -EINVAL, "state store %s: commit without a transaction", s->path);
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_COMMIT];
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "committing");
        return 0;
}

int ob_state_rollback(struct ob_state *s)
{
        if (s->readonly)
                return state_readonly(s, "roll back");
        if (sqlite3_get_autocommit(s->db))
                return 0;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_ROLLBACK];
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "rolling back");
        return 0;
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *t)
{
        return t ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int state_step_done(struct ob_state *s, int which, const char *what)
{
        _cleanup_reset_ sqlite3_stmt *st = s->st[which];
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, what);
        return 0;
}

static int state_put_record(struct ob_state *s, const struct ob_record *r)
{
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_PUT];
        sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
        bind_text_or_null(st, 2, r->dn);
        bind_text_or_null(st, 3, r->username);
        sqlite3_bind_int(st, 4, r->status);
        sqlite3_bind_int64(st, 5, r->status_since);
        sqlite3_bind_int64(st, 6, u64_to_i64(r->digest));
        sqlite3_bind_int64(st, 7, r->generation);
        sqlite3_bind_int(st, 8, r->pending_from);
        sqlite3_bind_int(st, 9, r->pending_to);
        sqlite3_bind_int(st, 10, r->writeback_owed ? 1 : 0);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "recording an account");
        return 0;
}

static int state_put_snapshot(struct ob_state *s, const char *id, const struct ob_buf *blob)
{
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_PUT_SNAPSHOT];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_bind_blob(st, 2, blob->data, (int)blob->len, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "recording a snapshot");
        return 0;
}

/* The snapshot buffer is kept from one put to the next unless a large
 * snapshot grew it past this. */
#define OB_STATE_BLOB_KEEP (256 * 1024)

static void blob_done(struct ob_state *s)
{
        if (s->blob.cap > OB_STATE_BLOB_KEEP)
                ob_buf_free(&s->blob);
        else
                ob_buf_reset(&s->blob);
        s->blob.oom = false;
}

static int state_put_with_snapshot(struct ob_state *s, const struct ob_record *r, const struct ob_account *snapshot);

/* Record and snapshot are two rows: outside a transaction they are committed
 * together, inside one a savepoint undoes the first if the second fails, so a
 * failed put leaves nothing behind either way. */
int ob_state_put(struct ob_state *s, const struct ob_record *r, const struct ob_account *snapshot)
{
        if (!r || !r->id)
                return -EINVAL;
        if (s->readonly)
                return state_readonly(s, "record an account");
        if (!snapshot)
                return state_put_record(s, r);
        int k = state_put_with_snapshot(s, r, snapshot);
        blob_done(s);
        return k;
}

static int state_put_with_snapshot(struct ob_state *s, const struct ob_record *r, const struct ob_account *snapshot)
{
        struct ob_buf *blob = &s->blob;
        int k = ob_snapshot_encode(snapshot, blob);
        if (k == -OB_ELIMIT)
                return state_msg(s, k, "state store %s: the snapshot of account %s has a value over 4 GiB", s->path,
                                 r->id);
        if (k < 0)
                return state_fail(s, SQLITE_NOMEM, "recording a snapshot");
        if (blob->len > INT_MAX)
                return state_msg(s, -OB_ELIMIT, "state store %s: the snapshot of account %s is too large", s->path,
                                 r->id);

        bool own = sqlite3_get_autocommit(s->db);
        k = state_step_done(s, own ? ST_BEGIN : ST_SAVEPOINT, "recording an account");
        if (k < 0)
                return k;
        k = state_put_record(s, r);
        if (k >= 0)
                k = state_put_snapshot(s, r->id, blob);
        if (k >= 0)
                k = state_step_done(s, own ? ST_COMMIT : ST_RELEASE, "recording an account");
        if (k < 0) {
                /* Keep the first error's message. */
                char msg[sizeof(s->errmsg)];
                memcpy(msg, s->errmsg, sizeof(msg));
                if (own) {
                        if (!sqlite3_get_autocommit(s->db))
                                (void)state_step_done(s, ST_ROLLBACK, "rolling back");
                } else if (state_step_done(s, ST_ROLLBACK_TO, "rolling back") >= 0)
                        (void)state_step_done(s, ST_RELEASE, "rolling back");
                memcpy(s->errmsg, msg, sizeof(msg));
        }
        return k;
}

/* ---- actions ---- */

const char *ob_outcome_name(enum ob_outcome o)
{
        static const char *const names[_OB_OUTCOME_MAX] = {
                [OB_OUTCOME_NONE] = "none",       [OB_OUTCOME_INTENT] = "intent",
                [OB_OUTCOME_DONE] = "done",       [OB_OUTCOME_FAILED] = "failed",
                [OB_OUTCOME_SKIPPED] = "skipped", [OB_OUTCOME_BLOCKED] = "blocked",
        };
        if ((unsigned)o >= _OB_OUTCOME_MAX)
                return "unknown";
        return names[o];
}

void ob_action_record_clear(struct ob_action_record *a)
{
        if (!a)
                return;
        free(a->action);
        free(a->error);
        free(a->idempotency_key);
        free(a->detail);
        *a = (struct ob_action_record){0};
}

void ob_action_records_free(struct ob_action_record *a, size_t n)
{
        if (!a)
                return;
        for (size_t i = 0; i < n; i++)
                ob_action_record_clear(&a[i]);
        free(a);
}

int ob_state_actions(struct ob_state *s, const char *id, int64_t generation, struct ob_action_record **ret,
                     size_t *ret_n)
{
        struct ob_action_record *list = NULL;
        size_t n = 0, cap = 0;
        int r = 0, rc;

        if (!id)
                return -EINVAL;
        if (!s->db) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_ACTIONS];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 4;
                        struct ob_action_record *nl = realloc(list, ncap * sizeof(*nl));
                        if (!nl) {
                                r = -ENOMEM;
                                break;
                        }
                        list = nl;
                        cap = ncap;
                }
                struct ob_action_record *a = &list[n++];
                *a = (struct ob_action_record){0};
                r = col_strdup(st, 0, &a->action);
                if (r >= 0)
                        r = col_strdup(st, 4, &a->error);
                if (r >= 0)
                        r = col_strdup(st, 10, &a->detail);
                if (r >= 0)
                        r = col_strdup(st, 5, &a->idempotency_key);
                if (r < 0)
                        break;
                if (!a->action) {
                        r = state_fail(s, SQLITE_CORRUPT, "reading actions");
                        break;
                }
                a->outcome = sqlite3_column_int(st, 1);
                a->attempts = sqlite3_column_int(st, 2);
                a->http_status = (long)sqlite3_column_int64(st, 3);
                a->updated = sqlite3_column_int64(st, 6);
                a->not_before = sqlite3_column_int64(st, 7);
                a->parked = sqlite3_column_int(st, 8) != 0;
                a->due = sqlite3_column_int64(st, 9);
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = state_fail(s, rc, "reading actions");
        if (r < 0) {
                ob_action_records_free(list, n);
                return r == -ENOMEM ? state_fail(s, SQLITE_NOMEM, "reading actions") : r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* Intents and outcomes outside a transaction are committed on their own.
 * Inside one (group commit: every intent of a loop turn in one fsync) they
 * are durable only when ob_state_commit() returns, and the caller must not
 * let a request leave before. */
static int state_action_check(struct ob_state *s, const char *id, const char *action, const char *what)
{
        if (!id || !action)
                return -EINVAL;
        if (s->readonly)
                return state_readonly(s, what);
        return 0;
}

int ob_state_action_intent(struct ob_state *s, const char *id, int64_t generation, const char *action,
                           const char *idempotency_key, int64_t now)
{
        int r = state_action_check(s, id, action, "record an intent");
        if (r < 0)
                return r;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_INTENT];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, OB_OUTCOME_INTENT);
        bind_text_or_null(st, 5, idempotency_key);
        sqlite3_bind_int64(st, 6, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "recording an intent");
        return 0;
}

/* The length of the longest prefix of s, at most max bytes, that does not
 * end inside a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

int ob_state_action_outcome(struct ob_state *s, const char *id, int64_t generation, const char *action,
                            enum ob_outcome outcome, long http_status, const char *error, int64_t now)
{
        return ob_state_action_outcome_detail(s, id, generation, action, outcome, http_status, error, NULL, now);
}

/* The step's memberships (detail, JSON), added to those of its earlier
 * attempts up to the cap; without a detail, a step recorded done stands for
 * what its last record stood for (a carried step). */
static int state_memberships(struct ob_state *s, const char *id, int64_t generation, const char *action,
                             enum ob_outcome outcome, long http_status, const char *detail)
{
        if (s->version < 4)
                return 0;
        if (!detail) {
                /* A carried step is recorded with no status: an HTTP step
                 * done now (2xx) costs no statement. */
                if (outcome != OB_OUTCOME_DONE || http_status != 0)
                        return 0;
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_MEMBERSHIPS_CARRY];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, generation);
                sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
                int rc = sqlite3_step(st);
                return rc == SQLITE_DONE ? 0 : state_fail(s, rc, "recording an outcome");
        }
        if (strlen(detail) > OB_STATE_DETAIL_MAX)
                return -EINVAL;
        int64_t have = 0, offered = 0, unfit = 0, cut = 0;
        {
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_MEMBERSHIPS_COUNT];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, generation);
                sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
                int rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        return state_fail(s, rc, "recording memberships");
                have = sqlite3_column_int64(st, 0);
        }
        /* What the detail offers and says it left out, read by SQLite's own
         * JSON functions (a detail that is not JSON is an error). */
        {
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_MEMBERSHIPS_OFFER];
                sqlite3_bind_text(st, 1, detail, -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 2, OB_STATE_MEMBERSHIP_FIELD_MAX);
                int rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        return state_fail(s, rc, "recording memberships (is the detail JSON?)");
                offered = sqlite3_column_int64(st, 0);
                cut = sqlite3_column_int64(st, 1);
                unfit = sqlite3_column_int64(st, 2);
        }
        int64_t room = have < OB_STATE_MEMBERSHIPS_MAX ? OB_STATE_MEMBERSHIPS_MAX - have : 0;
        {
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_MEMBERSHIPS_ADD];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, generation);
                sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 5, room);
                sqlite3_bind_int(st, 6, OB_STATE_MEMBERSHIP_FIELD_MAX);
                int rc = sqlite3_step(st);
                if (rc != SQLITE_DONE)
                        return state_fail(s, rc, "recording memberships");
        }
        /* Not kept: a row that does not fit, and fit ones beyond the room
         * left (a duplicate of an earlier attempt's row there counts too). */
        int64_t fit = offered - unfit;
        int64_t dropped = unfit + (fit > room ? fit - room : 0);
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_MEMBERSHIPS_MARK];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (cut > 0 ? cut : 0) + dropped);
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : state_fail(s, rc, "recording memberships");
}

int ob_state_action_memberships(struct ob_state *s, const char *id, int64_t generation, const char *action,
                                const char *detail)
{
        int r = state_action_check(s, id, action, "record memberships");
        if (r < 0)
                return r;
        if (!detail)
                return 0;
        return state_memberships(s, id, generation, action, OB_OUTCOME_INTENT, 0, detail);
}

int ob_state_action_outcome_detail(struct ob_state *s, const char *id, int64_t generation, const char *action,
                                   enum ob_outcome outcome, long http_status, const char *error, const char *detail,
                                   int64_t now)
{
        int r = state_action_check(s, id, action, "record an outcome");
        if (r < 0)
                return r;
        if ((unsigned)outcome >= _OB_OUTCOME_MAX)
                return -EINVAL;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_OUTCOME];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, (int)outcome);
        sqlite3_bind_int64(st, 5, http_status);
        if (error)
                sqlite3_bind_text(st, 6, error, (int)utf8_prefix(error, OB_STATE_ERROR_MAX), SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(st, 7, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "recording an outcome");
        return state_memberships(s, id, generation, action, outcome, http_status, detail);
}

int ob_state_action_defer(struct ob_state *s, const char *id, int64_t generation, const char *action,
                          int64_t not_before, bool parked)
{
        int r = state_action_check(s, id, action, "defer an action");
        if (r < 0)
                return r;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_DEFER];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, not_before);
        sqlite3_bind_int(st, 5, parked ? 1 : 0);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "deferring an action");
        return 0;
}

int ob_state_action_due(struct ob_state *s, const char *id, int64_t generation, const char *action, int64_t due,
                        int64_t now)
{
        int r = state_action_check(s, id, action, "record a stage's due time");
        if (r < 0)
                return r;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_DUE];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, generation);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, due);
        sqlite3_bind_int64(st, 5, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return state_fail(s, rc, "recording a stage's due time");
        return 0;
}

int ob_state_has_status(struct ob_state *s, int status)
{
        if (!s->db)
                return 0;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_HAS_STATUS];
        sqlite3_bind_int(st, 1, status);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return state_fail(s, rc, "looking for a status");
        return sqlite3_column_int(st, 0) != 0;
}

/* The id in the first row of a bound query by username: 1 and *ret_id, 0
 * when there is none, or a negative code. */
static int state_first_id(struct ob_state *s, sqlite3_stmt *st, char **ret_id)
{
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return state_fail(s, rc, "looking for a username");
        int r = col_strdup(st, 0, ret_id);
        return r < 0 ? r : 1;
}

int ob_state_id_of(struct ob_state *s, const char *username, char **ret_id)
{
        *ret_id = NULL;
        if (!s->db || !username)
                return 0;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_ID_OF];
        sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
        return state_first_id(s, st, ret_id);
}

int ob_state_deleted_username(struct ob_state *s, const char *username, const char *id, int deleted_status,
                              char **ret_id)
{
        *ret_id = NULL;
        if (!s->db || !username)
                return 0;
        _cleanup_reset_ sqlite3_stmt *st = s->st[ST_DELETED_USERNAME];
        sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, deleted_status);
        sqlite3_bind_text(st, 3, id ? id : "", -1, SQLITE_STATIC);
        return state_first_id(s, st, ret_id);
}

/* ---- index ----
 *
 * Entries (16 bytes) live in one array, their ids in one arena, and an
 * open-addressing table of uint32 slots (entry number + 1, 0: empty) at most
 * half full finds them. An id that is a lower-case UUID (entryUUID, a GUID)
 * is kept as a tag byte and its 16 bytes, any other as a tag byte and the
 * string with its NUL: with UUIDs about 16 + 17 + 8..16 bytes per entry,
 * 45 MB for a million accounts.
 */
#define ID_PACKED 1
#define ID_TEXT 2

struct ob_index {
        struct ob_index_entry *entries;
        size_t n;
        unsigned char *arena;
        uint32_t *slots;
        size_t mask;
};

static uint64_t index_hash(const char *id)
{
        uint64_t h = 14695981039346656037ULL;
        for (const unsigned char *c = (const unsigned char *)id; *c; c++) {
                h ^= *c;
                h *= 1099511628211ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h;
}

static int hexval(char c)
{
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Packs a lower-case canonical UUID (8-4-4-4-12) into 16 bytes; false for
 * anything else, which is kept as text. Writing it out gives id back. */
static bool uuid_pack(const char *id, size_t len, unsigned char out[16])
{
        if (len != OB_INDEX_ID_PACKED_LEN)
                return false;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (id[i++] != '-')
                                return false;
                        continue;
                }
                int hi = hexval(id[i]), lo = hexval(id[i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                out[o++] = (unsigned char)(hi << 4 | lo);
                i += 2;
        }
        return true;
}

static void uuid_unpack(const unsigned char in[16], char out[OB_INDEX_ID_PACKED_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[in[i] >> 4];
                out[o++] = hex[in[i] & 15];
        }
        out[o] = '\0';
}

const char *ob_index_id(const struct ob_index *ix, const struct ob_index_entry *e,
                        char buf[OB_INDEX_ID_PACKED_LEN + 1])
{
        const unsigned char *p = ix->arena + e->id_at;
        if (p[0] == ID_PACKED) {
                uuid_unpack(p + 1, buf);
                return buf;
        }
        return (const char *)p + 1;
}

void ob_index_free(struct ob_index *ix)
{
        if (!ix)
                return;
        free(ix->entries);
        free(ix->arena);
        free(ix->slots);
        free(ix);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
        if (need <= *cap)
                return 0;
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < need) {
                if (ncap > SIZE_MAX / 2 / size)
                        return -ENOMEM;
                ncap *= 2;
        }
        void *n = realloc(*p, ncap * size);
        if (!n)
                return -ENOMEM;
        *p = n;
        *cap = ncap;
        return 0;
}

static void shrink(void **p, size_t n, size_t size)
{
        if (n == 0)
                return;
        void *s = realloc(*p, n * size);
        if (s)
                *p = s;
}

static int index_build_table(struct ob_index *ix)
{
        size_t cap = 16;
        while (cap < ix->n * 2)
                cap *= 2;
        ix->slots = calloc(cap, sizeof(uint32_t));
        if (!ix->slots)
                return -ENOMEM;
        ix->mask = cap - 1;
        char buf[OB_INDEX_ID_PACKED_LEN + 1];
        for (size_t i = 0; i < ix->n; i++) {
                size_t k = index_hash(ob_index_id(ix, &ix->entries[i], buf)) & ix->mask;
                while (ix->slots[k])
                        k = (k + 1) & ix->mask;
                ix->slots[k] = (uint32_t)(i + 1);
        }
        return 0;
}

/* Adds the row st stands on to ix: 0, 1 when it could not be read (rc
 * says why), or an error. */
static int index_add_row(struct ob_state *s, struct ob_index *ix, sqlite3_stmt *st, size_t *ecap, size_t *acap,
                         size_t *alen, int *rc)
{
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!id) {
                *rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? SQLITE_CORRUPT : SQLITE_NOMEM;
                return 1;
        }
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        unsigned char packed[16];
        bool pack = uuid_pack(id, len, packed);
        size_t need = 1 + (pack ? sizeof(packed) : len + 1);
        if (ix->n >= UINT32_MAX - 1 || *alen + need > UINT32_MAX)
                return state_msg(s, -OB_ELIMIT, "state store %s: too many accounts to index", s->path);
        if (grow((void **)&ix->entries, ecap, ix->n + 1, sizeof(*ix->entries)) < 0 ||
            grow((void **)&ix->arena, acap, *alen + need, 1) < 0) {
                *rc = SQLITE_NOMEM;
                return 1;
        }
        ix->arena[*alen] = pack ? ID_PACKED : ID_TEXT;
        if (pack)
                memcpy(ix->arena + *alen + 1, packed, sizeof(packed));
        else
                memcpy(ix->arena + *alen + 1, id, len + 1);
        int status = sqlite3_column_int(st, 2);
        ix->entries[ix->n++] = (struct ob_index_entry){
                .id_at = (uint32_t)*alen,
                .digest = i64_to_u64(sqlite3_column_int64(st, 1)),
                .status = (uint8_t)(status >= 0 && status <= UINT8_MAX ? status : 0),
                .pending = sqlite3_column_int(st, 3) != 0,
                .writeback_owed = sqlite3_column_int(st, 4) != 0,
        };
        *alen += need;
        return 0;
}

/* The index of every record (ids NULL), or of the records of ids[0..n)
 * (distinct; those that exist). */
static int load_index(struct ob_state *s, const char *const *ids, size_t nids, struct ob_index **ret)
{
        struct ob_index *ix = calloc(1, sizeof(*ix));
        size_t ecap = 0, acap = 0, alen = 0;
        int r = 0, rc = SQLITE_DONE;

        if (!ix)
                return state_fail(s, SQLITE_NOMEM, "loading the index");
        if (s->db && !ids) {
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_INDEX];
                while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                        r = index_add_row(s, ix, st, &ecap, &acap, &alen, &rc);
                if (r == 0 && rc != SQLITE_DONE)
                        r = 1;
        }
        for (size_t i = 0; s->db && ids && r == 0 && i < nids; i++) {
                _cleanup_reset_ sqlite3_stmt *st = s->st[ST_INDEX_ONE];
                sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        r = index_add_row(s, ix, st, &ecap, &acap, &alen, &rc);
                else if (rc != SQLITE_DONE)
                        r = 1;
        }
        if (r == 1)
                r = state_fail(s, rc, "loading the index");
        if (r < 0) {
                ob_index_free(ix);
                return r;
        }
        shrink((void **)&ix->entries, ix->n, sizeof(*ix->entries));
        shrink((void **)&ix->arena, alen, 1);
        if (index_build_table(ix) < 0) {
                ob_index_free(ix);
                return state_fail(s, SQLITE_NOMEM, "loading the index");
        }
        *ret = ix;
        return 0;
}

int ob_state_load_index(struct ob_state *s, struct ob_index **ret)
{
        return load_index(s, NULL, 0, ret);
}

int ob_state_load_index_ids(struct ob_state *s, const char *const *ids, size_t n, struct ob_index **ret)
{
        return ids || n == 0 ? load_index(s, ids ? ids : (const char *const[]){NULL}, n, ret) : -EINVAL;
}

static bool id_equal(const struct ob_index *ix, const struct ob_index_entry *e, const char *id, size_t len,
                     const unsigned char *packed)
{
        const unsigned char *p = ix->arena + e->id_at;
        if (p[0] == ID_PACKED)
                return packed && memcmp(p + 1, packed, 16) == 0;
        return !packed && strncmp((const char *)p + 1, id, len + 1) == 0;
}

struct ob_index_entry *ob_index_find(struct ob_index *ix, const char *id)
{
        if (!ix || !id || !ix->slots)
                return NULL;
        size_t len = strlen(id);
        unsigned char packed[16];
        bool pack = uuid_pack(id, len, packed);
        size_t k = index_hash(id) & ix->mask;
        for (uint32_t slot; (slot = ix->slots[k]) != 0; k = (k + 1) & ix->mask)
                if (id_equal(ix, &ix->entries[slot - 1], id, len, pack ? packed : NULL))
                        return &ix->entries[slot - 1];
        return NULL;
}

size_t ob_index_size(const struct ob_index *ix)
{
        return ix ? ix->n : 0;
}

/* Stops at the first negative return of fn and returns it. */
int ob_index_foreach_unseen(struct ob_index *ix, int (*fn)(struct ob_index_entry *e, const char *id, void *ud),
                            void *ud)
{
        if (!ix)
                return 0;
        char buf[OB_INDEX_ID_PACKED_LEN + 1];
        /* Entries were loaded in id order (ORDER BY id). */
        for (size_t i = 0; i < ix->n; i++) {
                if (ix->entries[i].seen)
                        continue;
                int r = fn(&ix->entries[i], ob_index_id(ix, &ix->entries[i], buf), ud);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- what needs a human: `offboard status` and `offboard retry` ---- */

/* The accounts statement stays active while each account's actions are
 * read, so the whole walk sees one snapshot of the file. */
int ob_state_foreach_attention(struct ob_state *s, int (*fn)(const struct ob_attention *a, void *ud), void *ud)
{
        sqlite3_stmt *st = NULL;
        int r = 0, rc;

        if (!s || !fn)
                return -EINVAL;
        if (!s->db)
                return 0; /* a read-only store whose file does not exist yet */
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, dn, username, status, generation, pending_from, pending_to, "
                                "writeback_owed FROM accounts WHERE pending_to != 0 OR writeback_owed != 0 "
                                "ORDER BY id",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_finalize(st);
                return state_fail(s, rc, "listing what needs attention");
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct ob_attention a = {
                        .id = (const char *)sqlite3_column_text(st, 0),
                        .dn = (const char *)sqlite3_column_text(st, 1),
                        .username = (const char *)sqlite3_column_text(st, 2),
                        .status = sqlite3_column_int(st, 3),
                        .generation = sqlite3_column_int64(st, 4),
                        .pending_from = sqlite3_column_int(st, 5),
                        .pending_to = sqlite3_column_int(st, 6),
                        .writeback_owed = sqlite3_column_int(st, 7) != 0,
                };
                if (!a.id || (!a.dn && sqlite3_column_type(st, 1) != SQLITE_NULL) ||
                    (!a.username && sqlite3_column_type(st, 2) != SQLITE_NULL)) {
                        r = state_fail(s, sqlite3_column_type(st, 0) == SQLITE_NULL ? SQLITE_CORRUPT : SQLITE_NOMEM,
                                       "listing what needs attention");
                        break;
                }
                struct ob_action_record *list = NULL;
                size_t n = 0;
                r = ob_state_actions(s, a.id, a.generation, &list, &n);
                if (r < 0)
                        break;
                a.actions = list;
                a.nactions = n;
                r = fn(&a, ud);
                ob_action_records_free(list, n);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = state_fail(s, rc, "listing what needs attention");
        sqlite3_finalize(st);
        return r < 0 ? r : 0;
}

/* Does one row answer sql with its text parameter bound to value? */
static int state_exists(struct ob_state *s, const char *sql, const char *value, const char *what)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return state_fail(s, rc, what);
}

/* The actions a release takes: ?1 account (username or id, NULL: all), ?2
 * action name (NULL: all), ?3 and ?4 the outcomes that are final. */
#define STATE_RELEASE_WHERE                                                                                  \
        " WHERE (parked != 0 OR not_before != 0) AND outcome != ?3 AND outcome != ?4"                        \
        " AND (?2 IS NULL OR action = ?2)"                                                                   \
        " AND EXISTS (SELECT 1 FROM accounts AS a WHERE a.id = actions.account_id"                           \
        " AND a.generation = actions.generation AND a.pending_to != 0"                                       \
        " AND (?1 IS NULL OR a.id = ?1 OR a.username = ?1))"

static int state_release_step(struct ob_state *s, const char *sql, const char *account, const char *action,
                              int64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                if (account)
                        sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
                if (action)
                        sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 3, OB_OUTCOME_DONE);
                sqlite3_bind_int(st, 4, OB_OUTCOME_SKIPPED);
                rc = sqlite3_step(st);
        }
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                rc = SQLITE_DONE;
        } else if (rc == SQLITE_DONE)
                *ret = sqlite3_changes64(s->db);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : state_fail(s, rc, "releasing actions");
}

int ob_state_release(struct ob_state *s, const char *account, const char *action, size_t *ret_n,
                     size_t *ret_accounts)
{
        int64_t n = 0, accounts = 0;
        int r;

        if (!s || !ret_n)
                return -EINVAL;
        if (s->readonly || !s->db)
                return state_readonly(s, "release actions");
        r = ob_state_begin(s);
        if (r < 0)
                return r;
        if (account) {
                r = state_exists(s, "SELECT 1 FROM accounts WHERE id = ?1 OR username = ?1 LIMIT 1", account,
                                 "releasing actions");
                if (r == 0)
                        r = state_msg(s, -OB_ENOTFOUND, "state store %s records no account with username or id %s",
                                      s->path, account);
        }
        if (r >= 0 && action) {
                r = state_exists(s, "SELECT 1 FROM actions WHERE action = ?1 LIMIT 1", action, "releasing actions");
                if (r == 0)
                        r = state_msg(s, -OB_ENOTFOUND, "state store %s records no action named %s", s->path,
                                      action);
        }
        if (r >= 0)
                r = state_release_step(s, "SELECT COUNT(DISTINCT account_id) FROM actions" STATE_RELEASE_WHERE,
                                       account, action, &accounts);
        if (r >= 0)
                r = state_release_step(s, "UPDATE actions SET parked = 0, not_before = 0" STATE_RELEASE_WHERE,
                                       account, action, &n);
        if (r >= 0)
                r = ob_state_commit(s);
        if (r < 0) {
                /* Keep the first error's message. */
                char msg[sizeof(s->errmsg)];
                memcpy(msg, s->errmsg, sizeof(msg));
                (void)ob_state_rollback(s);
                memcpy(s->errmsg, msg, sizeof(msg));
                return r;
        }
        *ret_n = (size_t)n;
        if (ret_accounts)
                *ret_accounts = (size_t)accounts;
        return 0;
}
