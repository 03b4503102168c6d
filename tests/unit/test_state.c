/* test_state.c: the SQLite state store, each test in its own temporary directory. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "state.h"
#include "util.h"

static char tmpdir[256];
static bool tmpfs_mounted;
static char tmpfs_dir[300];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static void setup(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/ob-test-state-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
        if (tmpfs_mounted) {
                umount2(tmpfs_dir, MNT_DETACH);
                tmpfs_mounted = false;
        }
        if (tmpdir[0])
                nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
}

TestSuite(state, .init = setup, .fini = teardown, .timeout = 60);

static char *path_in(const char *name)
{
        static char p[4][512];
        static int k;
        k = (k + 1) % 4;
        snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
        return p[k];
}

static struct ob_state *open_store(const char *path, bool readonly)
{
        struct ob_state *s = NULL;
        int r = ob_state_open(path, readonly, &s);
        cr_assert_eq(r, 0, "open %s: %s (%s)", path, ob_strerror(r), ob_state_open_errmsg());
        cr_assert_not_null(s);
        return s;
}

static void uuid_for(int i, char out[37])
{
        snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012x", (unsigned)i * 2654435761u, i & 0xffff, i & 0xfff,
                 (i * 7) & 0xfff, (unsigned)i);
}

/* n records with small snapshots, in one transaction. */
static void fill(const char *path, int n)
{
        struct ob_state *s = open_store(path, false);
        cr_assert_eq(ob_state_begin(s), 0);
        for (int i = 0; i < n; i++) {
                char id[37], dn[64], mail[64];
                uuid_for(i, id);
                snprintf(dn, sizeof(dn), "uid=user%d,ou=people,dc=example,dc=org", i);
                snprintf(mail, sizeof(mail), "user%d@example.org", i);
                struct ob_account *a = ob_account_new();
                cr_assert_not_null(a);
                a->id = strdup(id);
                a->dn = strdup(dn);
                cr_assert_eq(ob_account_add(a, "mail", mail, strlen(mail)), 0);
                cr_assert_eq(ob_account_add(a, "cn", "Some User", 9), 0);
                struct ob_record r = {.id = id, .dn = dn, .username = mail, .status = 1, .digest = (uint64_t)i};
                cr_assert_eq(ob_state_put(s, &r, a), 0, "%s", ob_state_errmsg(s));
                ob_account_free(a);
        }
        cr_assert_eq(ob_state_commit(s), 0, "%s", ob_state_errmsg(s));
        ob_state_free(s);
}

static char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
        cr_assert_eq(fseek(f, 0, SEEK_END), 0);
        long len = ftell(f);
        cr_assert_geq(len, 0);
        rewind(f);
        char *buf = malloc((size_t)len + 1);
        cr_assert_not_null(buf);
        cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        *ret_len = (size_t)len;
        return buf;
}

static void write_at(const char *path, off_t off, const void *data, size_t n)
{
        int fd = open(path, O_WRONLY);
        cr_assert_geq(fd, 0);
        cr_assert_eq(pwrite(fd, data, n, off), (ssize_t)n);
        close(fd);
}

static void sql(const char *path, const char *stmts)
{
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        char *err = NULL;
        int rc = sqlite3_exec(db, stmts, NULL, NULL, &err);
        cr_assert_eq(rc, SQLITE_OK, "%s: %s", stmts, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
}

/* Opening must fail with -OB_ESTATE, both ways, and leave the file as it was. */
static void assert_refused(const char *path, const char *needle)
{
        size_t before_len, after_len;
        char *before = slurp(path, &before_len);
        for (int ro = 0; ro <= 1; ro++) {
                struct ob_state *s = NULL;
                int r = ob_state_open(path, ro, &s);
                cr_assert_eq(r, -OB_ESTATE, "readonly=%d: got %d (%s)", ro, r, ob_strerror(r));
                cr_assert_null(s);
                const char *msg = ob_state_open_errmsg();
                cr_assert_not_null(strstr(msg, path), "message does not name the file: %s", msg);
                cr_assert_not_null(strstr(msg, needle), "message lacks \"%s\": %s", needle, msg);
        }
        char *after = slurp(path, &after_len);
        cr_assert_eq(after_len, before_len);
        cr_assert(memcmp(before, after, before_len) == 0, "the file was modified");
        free(before);
        free(after);
}

Test(state, put_and_get_round_trip_every_field_including_a_digest_above_int64_max)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_record in = {
                .id = "3f0e1a52-6c1b-4a7e-9a51-0d2c3b4a5f60",
                .dn = "uid=jdoe,ou=people,dc=example,dc=org",
                .username = "jdoe",
                .status = 3,
                .status_since = 1700000000123,
                .digest = 0xfedcba9876543210ULL,
                .generation = 42,
                .pending_from = 3,
                .pending_to = 5,
                .writeback_owed = true,
        };
        cr_assert_gt(in.digest, (uint64_t)INT64_MAX);
        cr_assert_eq(ob_state_put(s, &in, NULL), 0, "%s", ob_state_errmsg(s));

        struct ob_record out = {0};
        cr_assert_eq(ob_state_get(s, in.id, &out), 0, "%s", ob_state_errmsg(s));
        cr_assert_str_eq(out.id, in.id);
        cr_assert_str_eq(out.dn, in.dn);
        cr_assert_str_eq(out.username, in.username);
        cr_assert_eq(out.status, 3);
        cr_assert_eq(out.status_since, 1700000000123);
        cr_assert_eq(out.digest, 0xfedcba9876543210ULL);
        cr_assert_eq(out.generation, 42);
        cr_assert_eq(out.pending_from, 3);
        cr_assert_eq(out.pending_to, 5);
        cr_assert(out.writeback_owed);
        ob_record_clear(&out);

        /* Replacing the record changes every field, including to NULL strings. */
        struct ob_record again = {.id = in.id, .status = 4, .digest = 1};
        cr_assert_eq(ob_state_put(s, &again, NULL), 0);
        cr_assert_eq(ob_state_get(s, in.id, &out), 0);
        cr_assert_null(out.dn);
        cr_assert_null(out.username);
        cr_assert_eq(out.status, 4);
        cr_assert_eq(out.digest, 1);
        cr_assert_eq(out.pending_to, 0);
        cr_assert_not(out.writeback_owed);
        ob_record_clear(&out);

        cr_assert_eq(ob_state_get(s, "no-such-id", &out), -OB_ENOTFOUND);
        ob_state_free(s);
}

Test(state, snapshot_round_trip_keeps_binary_values_and_non_ascii_text)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char guid[16] = {0x00, 0x01, (char)0xff, 0x00, 0x7f, (char)0x80, 0x0a, 0x00,
                               0x00, 0x00, 0x10, 0x20, (char)0xfe, 0x00, 0x01, 0x02};
        const char *name = "Zoë Ångström-Łukasiewicz 日本";
        struct ob_account *a = ob_account_new();
        cr_assert_not_null(a);
        a->id = strdup("acc-1");
        a->dn = strdup("cn=Zoë Ångström,ou=people,dc=example,dc=org");
        cr_assert_eq(ob_account_add(a, "objectGUID", guid, sizeof(guid)), 0);
        cr_assert_eq(ob_account_add(a, "cn", name, strlen(name)), 0);
        cr_assert_eq(ob_account_add(a, "mail", "a@example.org", 13), 0);
        cr_assert_eq(ob_account_add(a, "mail", "", 0), 0);
        cr_assert_eq(ob_account_add(a, "MAIL", "b@example.org", 13), 0);
        struct ob_record r = {.id = "acc-1", .dn = a->dn, .status = 1};
        cr_assert_eq(ob_state_put(s, &r, a), 0, "%s", ob_state_errmsg(s));

        struct ob_account *b = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, "acc-1", &b), 0, "%s", ob_state_errmsg(s));
        cr_assert_str_eq(b->id, "acc-1");
        cr_assert_str_eq(b->dn, a->dn);
        cr_assert_eq(b->nattrs, 3);
        const struct ob_attr *g = ob_account_attr(b, "objectguid");
        cr_assert_not_null(g);
        cr_assert_eq(g->nvals, 1);
        cr_assert_eq(g->vals[0].len, sizeof(guid));
        cr_assert(memcmp(g->vals[0].data, guid, sizeof(guid)) == 0);
        cr_assert_str_eq(ob_account_get(b, "cn"), name);
        const struct ob_attr *m = ob_account_attr(b, "mail");
        cr_assert_eq(m->nvals, 3);
        cr_assert_str_eq(m->vals[0].data, "a@example.org");
        cr_assert_eq(m->vals[1].len, 0);
        cr_assert_str_eq(m->vals[2].data, "b@example.org");
        cr_assert_eq(ob_account_digest(b, NULL), ob_account_digest(a, NULL));
        ob_account_free(b);

        /* A put without a snapshot keeps the one recorded. */
        r.status = 2;
        cr_assert_eq(ob_state_put(s, &r, NULL), 0);
        b = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, "acc-1", &b), 0);
        cr_assert_eq(ob_account_digest(b, NULL), ob_account_digest(a, NULL));
        ob_account_free(b);

        b = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, "acc-2", &b), -OB_ENOTFOUND);
        cr_assert_null(b);
        ob_account_free(a);
        ob_state_free(s);
}

Test(state, a_record_put_without_any_snapshot_gives_an_account_with_id_and_dn)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_record r = {.id = "acc-1", .dn = "uid=x,dc=example,dc=org"};
        cr_assert_eq(ob_state_put(s, &r, NULL), 0);
        struct ob_account *b = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, "acc-1", &b), 0, "%s", ob_state_errmsg(s));
        cr_assert_str_eq(b->id, "acc-1");
        cr_assert_str_eq(b->dn, "uid=x,dc=example,dc=org");
        cr_assert_eq(b->nattrs, 0);
        ob_account_free(b);
        ob_state_free(s);
}

static void set_snapshot(const char *path, const char *id, const void *blob, size_t len)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE snapshots SET data = ?1 WHERE id = ?2", -1, &st, NULL),
                     SQLITE_OK);
        sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        cr_assert_eq(sqlite3_changes(db), 1);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void *get_snapshot_blob(const char *path, const char *id, size_t *ret_len)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, "SELECT data FROM snapshots WHERE id = ?1", -1, &st, NULL),
                     SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        void *copy = malloc(len);
        cr_assert_not_null(copy);
        memcpy(copy, sqlite3_column_blob(st, 0), len);
        sqlite3_finalize(st);
        sqlite3_close(db);
        *ret_len = len;
        return copy;
}

static void put_le32(unsigned char *p, uint32_t v)
{
        p[0] = v & 0xff;
        p[1] = (v >> 8) & 0xff;
        p[2] = (v >> 16) & 0xff;
        p[3] = (v >> 24) & 0xff;
}

static uint32_t fnv1a32(const unsigned char *p, size_t n)
{
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 16777619u;
        }
        return h;
}

static void assert_snapshot_refused(const char *path, const char *id)
{
        struct ob_state *s = open_store(path, true);
        struct ob_account *b = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, id, &b), -OB_ESTATE);
        cr_assert_null(b);
        cr_assert_not_null(strstr(ob_state_errmsg(s), path), "%s", ob_state_errmsg(s));
        cr_assert_not_null(strstr(ob_state_errmsg(s), id), "%s", ob_state_errmsg(s));
        ob_state_free(s);
}

Test(state, a_corrupt_snapshot_blob_gives_estate_not_a_crash)
{
        const char *path = path_in("state.db");
        fill(path, 4);
        char id[37];

        /* One byte of a value changed on disk: the checksum no longer matches. */
        uuid_for(1, id);
        size_t len;
        unsigned char *blob = get_snapshot_blob(path, id, &len);
        cr_assert_gt(len, 40);
        blob[len - 10] ^= 0x20;
        set_snapshot(path, id, blob, len);
        free(blob);
        assert_snapshot_refused(path, id);

        /* Cut short. */
        uuid_for(2, id);
        blob = get_snapshot_blob(path, id, &len);
        set_snapshot(path, id, blob, len - 3);
        free(blob);
        assert_snapshot_refused(path, id);

        /* A well-formed checksum over lengths that lie: a 1 GiB id, then an
         * attribute count with nothing behind it. */
        uuid_for(3, id);
        unsigned char lie[12] = {'O', 'B', 'S', '1'};
        put_le32(lie + 4, 0x40000000);
        put_le32(lie + 8, fnv1a32(lie, 8));
        set_snapshot(path, id, lie, sizeof(lie));
        assert_snapshot_refused(path, id);
        unsigned char lie2[21] = {'O', 'B', 'S', '1'};
        put_le32(lie2 + 4, 1);
        lie2[8] = 'x';
        put_le32(lie2 + 9, 0xffffffff);
        put_le32(lie2 + 13, 1000000);
        put_le32(lie2 + 17, fnv1a32(lie2, 17));
        set_snapshot(path, id, lie2, 21);
        assert_snapshot_refused(path, id);

        /* The others still read. */
        struct ob_state *s = open_store(path, true);
        struct ob_account *b = NULL;
        uuid_for(0, id);
        cr_assert_eq(ob_state_get_snapshot(s, id, &b), 0, "%s", ob_state_errmsg(s));
        cr_assert_str_eq(ob_account_get(b, "mail"), "user0@example.org");
        ob_account_free(b);
        ob_state_free(s);
}

Test(state, readonly_open_of_a_missing_file_is_an_empty_store_and_creates_no_file)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, true);
        struct ob_record r = {0};
        cr_assert_eq(ob_state_get(s, "x", &r), -OB_ENOTFOUND);
        struct ob_account *a = NULL;
        cr_assert_eq(ob_state_get_snapshot(s, "x", &a), -OB_ENOTFOUND);
        struct ob_index *ix = NULL;
        cr_assert_eq(ob_state_load_index(s, &ix), 0);
        cr_assert_eq(ob_index_size(ix), 0);
        cr_assert_null(ob_index_find(ix, "x"));
        ob_index_free(ix);
        struct ob_action_record *acts = (void *)1;
        size_t n = 99;
        cr_assert_eq(ob_state_actions(s, "x", 1, &acts, &n), 0);
        cr_assert_eq(n, 0);
        ob_action_records_free(acts, n);
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = "x"}, NULL), -EROFS);
        ob_state_free(s);

        DIR *d = opendir(tmpdir);
        cr_assert_not_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
                cr_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0, "%s was created",
                          e->d_name);
        closedir(d);
}

Test(state, readonly_store_refuses_writes_and_keeps_the_records)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        struct ob_record in = {.id = "acc-1", .status = 2, .generation = 1};
        cr_assert_eq(ob_state_put(s, &in, NULL), 0);
        cr_assert_eq(ob_state_action_intent(s, "acc-1", 1, "revoke", "key-1", 100), 0);
        ob_state_free(s);

        s = open_store(path, true);
        struct ob_record changed = {.id = "acc-1", .status = 5};
        cr_assert_eq(ob_state_put(s, &changed, NULL), -EROFS);
        cr_assert_not_null(strstr(ob_state_errmsg(s), path));
        cr_assert_not_null(strstr(ob_state_errmsg(s), "read-only"));
        cr_assert_eq(ob_state_action_intent(s, "acc-1", 1, "revoke", "key-1", 200), -EROFS);
        cr_assert_eq(ob_state_action_outcome(s, "acc-1", 1, "revoke", OB_OUTCOME_DONE, 200, NULL, 200), -EROFS);
        cr_assert_eq(ob_state_begin(s), -EROFS);

        struct ob_record out = {0};
        cr_assert_eq(ob_state_get(s, "acc-1", &out), 0);
        cr_assert_eq(out.status, 2);
        ob_record_clear(&out);
        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "acc-1", 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_INTENT);
        cr_assert_eq(acts[0].attempts, 1);
        ob_action_records_free(acts, n);
        ob_state_free(s);
}

Test(state, records_survive_close_and_reopen_and_a_rollback_discards_its_puts)
{
        const char *path = path_in("state.db");
        fill(path, 50);
        struct ob_state *s = open_store(path, false);
        cr_assert_eq(ob_state_begin(s), 0);
        cr_assert_eq(ob_state_begin(s), -EBUSY);
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = "discarded"}, NULL), 0);
        cr_assert_eq(ob_state_rollback(s), 0);
        cr_assert_eq(ob_state_rollback(s), 0);
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = "autocommitted", .status = 7}, NULL), 0);
        cr_assert_eq(ob_state_begin(s), 0);
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = "left-open"}, NULL), 0);
        ob_state_free(s); /* an open transaction is rolled back */

        s = open_store(path, false);
        struct ob_record out = {0};
        cr_assert_eq(ob_state_get(s, "discarded", &out), -OB_ENOTFOUND);
        cr_assert_eq(ob_state_get(s, "left-open", &out), -OB_ENOTFOUND);
        cr_assert_eq(ob_state_get(s, "autocommitted", &out), 0);
        cr_assert_eq(out.status, 7);
        ob_record_clear(&out);
        for (int i = 0; i < 50; i++) {
                char id[37], dn[64];
                uuid_for(i, id);
                snprintf(dn, sizeof(dn), "uid=user%d,ou=people,dc=example,dc=org", i);
                cr_assert_eq(ob_state_get(s, id, &out), 0, "%s", id);
                cr_assert_str_eq(out.dn, dn);
                cr_assert_eq(out.digest, (uint64_t)i);
                ob_record_clear(&out);
        }
        ob_state_free(s);
}

Test(state, a_new_store_is_private_wal_and_marked_as_offboard)
{
        const char *path = path_in("state.db");
        ob_state_free(open_store(path, false));
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0);
        cr_assert_eq(sb.st_mode & 0777, 0600);
        cr_assert_neq(access(path_in("state.db.new"), F_OK), 0);

        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT journal_mode FROM pragma_journal_mode), "
                                        "(SELECT application_id FROM pragma_application_id), "
                                        "(SELECT user_version FROM pragma_user_version), "
                                        "(SELECT value FROM meta WHERE key = 'format'), "
                                        "(SELECT value FROM meta WHERE key = 'version')",
                                        -1, &st, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
        cr_assert_eq(sqlite3_column_int64(st, 1), 0x6f666662);
        cr_assert_eq(sqlite3_column_int(st, 2), 4);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), "offboard-state");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 4), "4");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

Test(state, creating_a_store_in_a_missing_directory_names_the_directory)
{
        const char *dir = path_in("nope");
        char path[600];
        snprintf(path, sizeof(path), "%s/state.db", dir);
        struct ob_state *s = NULL;
        int r = ob_state_open(path, false, &s);
        cr_assert_lt(r, 0);
        cr_assert_null(s);
        cr_assert_not_null(strstr(ob_state_open_errmsg(), dir), "%s", ob_state_open_errmsg());
        cr_assert_not_null(strstr(ob_state_open_errmsg(), "does not exist"), "%s", ob_state_open_errmsg());
}

Test(state, intents_increment_attempts_and_outcomes_are_kept_per_generation)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char *id = "acc-1";
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = (char *)id, .generation = 1}, NULL), 0);

        cr_assert_eq(ob_state_action_intent(s, id, 1, "revoke", "k1", 100), 0, "%s", ob_state_errmsg(s));
        cr_assert_eq(ob_state_action_outcome(s, id, 1, "revoke", OB_OUTCOME_FAILED, 503, "Service Unavailable", 101),
                     0);
        cr_assert_eq(ob_state_action_intent(s, id, 1, "revoke", "k1", 200), 0);

        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, id, 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(acts[0].action, "revoke");
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_INTENT);
        cr_assert_eq(acts[0].attempts, 2);
        cr_assert_str_eq(acts[0].idempotency_key, "k1");
        cr_assert_eq(acts[0].updated, 200);
        /* The last attempt that came back is still visible while one is in flight. */
        cr_assert_eq(acts[0].http_status, 503);
        cr_assert_str_eq(acts[0].error, "Service Unavailable");
        ob_action_records_free(acts, n);

        cr_assert_eq(ob_state_action_outcome(s, id, 1, "revoke", OB_OUTCOME_DONE, 204, NULL, 201), 0);
        /* The next transition has its own progress. */
        cr_assert_eq(ob_state_action_intent(s, id, 2, "revoke", "k2", 300), 0);
        /* An outcome without intent (no request was sent) has no attempt. */
        cr_assert_eq(ob_state_action_outcome(s, id, 2, "notify", OB_OUTCOME_SKIPPED, 0, NULL, 301), 0);
        ob_state_free(s);

        s = open_store(path_in("state.db"), true);
        cr_assert_eq(ob_state_actions(s, id, 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_DONE);
        cr_assert_eq(acts[0].attempts, 2);
        cr_assert_eq(acts[0].http_status, 204);
        cr_assert_null(acts[0].error);
        cr_assert_eq(acts[0].updated, 201);
        ob_action_records_free(acts, n);

        cr_assert_eq(ob_state_actions(s, id, 2, &acts, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(acts[0].action, "notify");
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_SKIPPED);
        cr_assert_eq(acts[0].attempts, 0);
        cr_assert_null(acts[0].idempotency_key);
        cr_assert_str_eq(acts[1].action, "revoke");
        cr_assert_eq(acts[1].outcome, OB_OUTCOME_INTENT);
        cr_assert_eq(acts[1].attempts, 1);
        cr_assert_str_eq(acts[1].idempotency_key, "k2");
        ob_action_records_free(acts, n);

        cr_assert_eq(ob_state_actions(s, id, 3, &acts, &n), 0);
        cr_assert_eq(n, 0);
        ob_state_free(s);
}

Test(state, intents_in_a_transaction_are_durable_at_its_commit_and_gone_after_a_rollback)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        cr_assert_eq(ob_state_begin(s), 0);
        cr_assert_eq(ob_state_action_intent(s, "a", 1, "revoke", "k", 1), 0);
        cr_assert_eq(ob_state_action_intent(s, "b", 1, "revoke", "k2", 1), 0);
        cr_assert_eq(ob_state_rollback(s), 0);
        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "a", 1, &acts, &n), 0);
        cr_assert_eq(n, 0, "a rolled back intent was kept");
        ob_action_records_free(acts, n);
        cr_assert_eq(ob_state_begin(s), 0);
        cr_assert_eq(ob_state_action_intent(s, "a", 1, "revoke", "k", 1), 0);
        cr_assert_eq(ob_state_action_outcome(s, "b", 1, "revoke", OB_OUTCOME_DONE, 200, NULL, 1), 0);
        cr_assert_eq(ob_state_commit(s), 0);
        cr_assert_eq(ob_state_commit(s), -EINVAL);
        cr_assert_eq(ob_state_action_outcome(s, "a", 1, "revoke", _OB_OUTCOME_MAX, 0, NULL, 1), -EINVAL);
        ob_state_free(s);
        s = open_store(path, true);
        cr_assert_eq(ob_state_actions(s, "a", 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_INTENT);
        ob_action_records_free(acts, n);
        cr_assert_eq(ob_state_actions(s, "b", 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(acts[0].outcome, OB_OUTCOME_DONE);
        ob_action_records_free(acts, n);
        ob_state_free(s);
}

Test(state, a_long_error_is_kept_as_a_bounded_excerpt_cut_on_a_character_boundary)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_buf b = {0};
        cr_assert_eq(ob_buf_adds(&b, "x"), 0);
        for (int i = 0; i < 3000; i++)
                cr_assert_eq(ob_buf_adds(&b, "é"), 0);
        cr_assert_eq(ob_state_action_outcome(s, "a", 1, "revoke", OB_OUTCOME_FAILED, 500, b.data, 1), 0);
        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "a", 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        size_t len = strlen(acts[0].error);
        cr_assert_eq(len, 1023); /* "x" + 511 two-byte characters; 1024 would split one */
        cr_assert(strncmp(acts[0].error, b.data, len) == 0);
        ob_action_records_free(acts, n);
        ob_buf_free(&b);
        ob_state_free(s);
}

Test(state, actions_are_listed_in_name_order)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char *names[] = {"transfer", "Audit", "revoke", "disable", "remove", "b-notify"};
        for (size_t i = 0; i < OB_ELEMENTSOF(names); i++)
                cr_assert_eq(ob_state_action_intent(s, "acc", 7, names[i], NULL, (int64_t)i), 0);
        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "acc", 7, &acts, &n), 0);
        cr_assert_eq(n, OB_ELEMENTSOF(names));
        const char *want[] = {"Audit", "b-notify", "disable", "remove", "revoke", "transfer"};
        for (size_t i = 0; i < n; i++)
                cr_assert_str_eq(acts[i].action, want[i]);
        ob_action_records_free(acts, n);
        ob_state_free(s);
}

struct visit {
        char ids[16][40];
        int n;
        int stop_after;
};

static int visit_unseen(struct ob_index_entry *e, const char *id, void *ud)
{
        struct visit *v = ud;
        (void)e;
        snprintf(v->ids[v->n++], sizeof(v->ids[0]), "%s", id);
        return v->n == v->stop_after ? -ECANCELED : 0;
}

Test(state, index_finds_ids_marks_seen_and_visits_the_unseen_in_id_order)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char *ids[] = {"d4", "a1", "e5", "c3", "b2", "f6"};
        for (size_t i = 0; i < OB_ELEMENTSOF(ids); i++) {
                struct ob_record r = {.id = (char *)ids[i],
                                      .status = (int)i + 1,
                                      .digest = UINT64_MAX - i,
                                      .pending_to = i == 2 ? 4 : 0,
                                      .writeback_owed = i == 3};
                cr_assert_eq(ob_state_put(s, &r, NULL), 0);
        }
        struct ob_index *ix = NULL;
        cr_assert_eq(ob_state_load_index(s, &ix), 0, "%s", ob_state_errmsg(s));
        cr_assert_eq(ob_index_size(ix), 6);
        for (size_t i = 0; i < OB_ELEMENTSOF(ids); i++) {
                struct ob_index_entry *e = ob_index_find(ix, ids[i]);
                cr_assert_not_null(e, "%s", ids[i]);
                char buf[OB_INDEX_ID_PACKED_LEN + 1];
                cr_assert_str_eq(ob_index_id(ix, e, buf), ids[i]);
                cr_assert_eq(e->status, (int)i + 1);
                cr_assert_eq(e->digest, UINT64_MAX - i);
                cr_assert_eq(e->pending, i == 2);
                cr_assert_eq(e->writeback_owed, i == 3);
                cr_assert_not(e->seen);
        }
        cr_assert_null(ob_index_find(ix, "a"));
        cr_assert_null(ob_index_find(ix, "a10"));
        ob_index_find(ix, "c3")->seen = true;
        ob_index_find(ix, "f6")->seen = true;

        struct visit v = {0};
        cr_assert_eq(ob_index_foreach_unseen(ix, visit_unseen, &v), 0);
        cr_assert_eq(v.n, 4);
        cr_assert_str_eq(v.ids[0], "a1");
        cr_assert_str_eq(v.ids[1], "b2");
        cr_assert_str_eq(v.ids[2], "d4");
        cr_assert_str_eq(v.ids[3], "e5");

        struct visit stop = {.stop_after = 2};
        cr_assert_eq(ob_index_foreach_unseen(ix, visit_unseen, &stop), -ECANCELED);
        cr_assert_eq(stop.n, 2);
        ob_index_free(ix);
        ob_state_free(s);
}

/* A pass over the accounts a change feed named reads their records alone,
 * whatever the size of the store; ids without a record are simply absent. */
Test(state, an_index_of_named_ids_holds_those_records_only)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char *ids[] = {"d4", "a1", "e5", "1e1b9338-82f5-1041-84f3-f97456719ba1"};
        for (size_t i = 0; i < OB_ELEMENTSOF(ids); i++) {
                struct ob_record r = {.id = (char *)ids[i], .status = (int)i + 1, .digest = 7 + i,
                                      .pending_to = i == 1 ? 4 : 0};
                cr_assert_eq(ob_state_put(s, &r, NULL), 0);
        }
        const char *want[] = {"1e1b9338-82f5-1041-84f3-f97456719ba1", "nobody", "a1"};
        struct ob_index *ix = NULL;
        cr_assert_eq(ob_state_load_index_ids(s, want, OB_ELEMENTSOF(want), &ix), 0, "%s", ob_state_errmsg(s));
        cr_assert_eq(ob_index_size(ix), 2);
        struct ob_index_entry *e = ob_index_find(ix, "a1");
        cr_assert_not_null(e);
        cr_assert_eq(e->status, 2);
        cr_assert_eq(e->digest, 8);
        cr_assert(e->pending);
        e = ob_index_find(ix, "1e1b9338-82f5-1041-84f3-f97456719ba1");
        cr_assert_not_null(e);
        cr_assert_eq(e->status, 4);
        cr_assert_null(ob_index_find(ix, "nobody"));
        cr_assert_null(ob_index_find(ix, "d4"), "a record not named is not read");
        ob_index_free(ix);

        cr_assert_eq(ob_state_load_index_ids(s, NULL, 0, &ix), 0);
        cr_assert_eq(ob_index_size(ix), 0);
        cr_assert_null(ob_index_find(ix, "a1"));
        ob_index_free(ix);
        ob_state_free(s);
}

/* UUIDs are kept packed in 16 bytes: each id, packed or not, is found by
 * itself alone and written out as it was stored. */
Test(state, index_keeps_uuids_packed_and_finds_every_id_by_itself_alone)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        const char *ids[] = {
                "0f8fad5b-d9cb-469f-a165-70867728950e", /* packed */
                "7c9e6679-7425-40de-944b-e07fc1f90ae7", /* packed */
                "7C9E6679-7425-40DE-944B-E07FC1F90AE7", /* upper case: kept as text */
                "7c9e6679-7425-40de-944b-e07fc1f90ae",  /* one short: text */
                "7c9e6679-7425-40de-944b-e07fc1f90ae7x", /* one long: text */
                "7c9e6679x7425-40de-944b-e07fc1f90ae7", /* not a dash: text */
                "7c9e6679-7425-40de-944b-e07fc1f90ag7", /* not hex: text */
                "uid=alice",
        };
        for (size_t i = 0; i < OB_ELEMENTSOF(ids); i++) {
                struct ob_record r = {.id = (char *)ids[i], .status = (int)i + 1, .digest = i};
                cr_assert_eq(ob_state_put(s, &r, NULL), 0);
        }
        struct ob_index *ix = NULL;
        cr_assert_eq(ob_state_load_index(s, &ix), 0, "%s", ob_state_errmsg(s));
        for (size_t i = 0; i < OB_ELEMENTSOF(ids); i++) {
                struct ob_index_entry *e = ob_index_find(ix, ids[i]);
                cr_assert_not_null(e, "%s", ids[i]);
                cr_assert_eq(e->status, (int)i + 1, "%s found another entry", ids[i]);
                char buf[OB_INDEX_ID_PACKED_LEN + 1];
                cr_assert_str_eq(ob_index_id(ix, e, buf), ids[i]);
        }
        cr_assert_null(ob_index_find(ix, "0f8fad5b-d9cb-469f-a165-70867728950f"));
        cr_assert_null(ob_index_find(ix, "0F8FAD5B-D9CB-469F-A165-70867728950E"));
        ob_index_free(ix);
        ob_state_free(s);
}

struct ordered {
        int count;
        char last[40];
};

static int check_ordered(struct ob_index_entry *e, const char *id, void *ud)
{
        struct ordered *o = ud;
        cr_assert_gt(strcmp(id, o->last), 0, "%s after %s", id, o->last);
        cr_assert_not(e->seen);
        snprintf(o->last, sizeof(o->last), "%s", id);
        o->count++;
        return 0;
}

Test(state, index_of_thousands_of_records_finds_every_one)
{
        const char *path = path_in("state.db");
        fill(path, 3000);
        struct ob_state *s = open_store(path, true);
        struct ob_index *ix = NULL;
        cr_assert_eq(ob_state_load_index(s, &ix), 0);
        cr_assert_eq(ob_index_size(ix), 3000);
        for (int i = 0; i < 3000; i++) {
                char id[37];
                uuid_for(i, id);
                struct ob_index_entry *e = ob_index_find(ix, id);
                cr_assert_not_null(e, "%s", id);
                cr_assert_eq(e->digest, (uint64_t)i);
                if (i % 3)
                        e->seen = true;
        }
        struct ordered o = {0};
        cr_assert_eq(ob_index_foreach_unseen(ix, check_ordered, &o), 0);
        cr_assert_eq(o.count, 1000);
        ob_index_free(ix);
        ob_state_free(s);
}

Test(state, a_text_file_is_refused_with_its_path_and_left_byte_identical)
{
        const char *path = path_in("state.db");
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        for (int i = 0; i < 200; i++)
                fprintf(f, "this is not a database, line %d\n", i);
        fclose(f);
        assert_refused(path, "left untouched");
}

Test(state, an_empty_file_is_refused_not_taken_for_a_new_store)
{
        const char *path = path_in("state.db");
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
        assert_refused(path, "corrupt");
}

Test(state, a_truncated_store_is_refused_with_its_path_and_left_byte_identical)
{
        const char *path = path_in("state.db");
        fill(path, 2000);
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0);
        cr_assert_gt(sb.st_size, 100000);
        cr_assert_eq(truncate(path, sb.st_size / 2), 0);
        assert_refused(path, "corrupt");
}

/* The page number of the middle page of a table, from SQLite's dbstat. */
static long middle_page_of(const char *path, const char *table)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        int rc = sqlite3_prepare_v2(db, "SELECT pageno FROM dbstat WHERE name = ?1 ORDER BY pageno", -1, &st, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_close(db);
                cr_skip_test("this SQLite has no dbstat table");
        }
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        long pages[4096];
        int n = 0;
        while (sqlite3_step(st) == SQLITE_ROW && n < 4096)
                pages[n++] = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        cr_assert_gt(n, 4, "table %s has only %d pages", table, n);
        return pages[n / 2];
}

static void garble_page(const char *path, long pageno)
{
        char junk[4096];
        memset(junk, 0xa5, sizeof(junk));
        write_at(path, (off_t)(pageno - 1) * 4096, junk, sizeof(junk));
}

Test(state, a_store_with_a_garbled_account_page_is_refused_with_its_path_and_left_byte_identical)
{
        const char *path = path_in("state.db");
        fill(path, 2000);
        garble_page(path, middle_page_of(path, "accounts"));
        assert_refused(path, "corrupt");
}

/* Snapshots are checked when read: opening may succeed, but the damage
 * surfaces as -OB_ESTATE naming the file, never as a crash or a change. */
Test(state, a_store_garbled_in_the_middle_gives_estate_when_the_damage_is_read_and_stays_byte_identical)
{
        const char *path = path_in("state.db");
        fill(path, 2000);
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0);
        garble_page(path, (long)(sb.st_size / 2 / 4096) + 1);
        size_t before_len, after_len;
        char *before = slurp(path, &before_len);

        int first_error = 0;
        char msg[1024] = "";
        for (int ro = 1; ro >= 0; ro--) {
                struct ob_state *s = NULL;
                int r = ob_state_open(path, ro, &s);
                if (r < 0) {
                        cr_assert_eq(r, -OB_ESTATE);
                        if (!first_error) {
                                first_error = r;
                                snprintf(msg, sizeof(msg), "%s", ob_state_open_errmsg());
                        }
                        continue;
                }
                struct ob_index *ix = NULL;
                r = ob_state_load_index(s, &ix);
                ob_index_free(ix);
                for (int i = 0; r == 0 && i < 2000; i++) {
                        char id[37];
                        uuid_for(i, id);
                        struct ob_record rec = {0};
                        struct ob_account *a = NULL;
                        r = ob_state_get(s, id, &rec);
                        ob_record_clear(&rec);
                        if (r == 0)
                                r = ob_state_get_snapshot(s, id, &a);
                        ob_account_free(a);
                }
                if (r < 0) {
                        cr_assert_eq(r, -OB_ESTATE, "%d %s", r, ob_state_errmsg(s));
                        if (!first_error) {
                                first_error = r;
                                snprintf(msg, sizeof(msg), "%s", ob_state_errmsg(s));
                        }
                }
                ob_state_free(s);
        }
        cr_assert_eq(first_error, -OB_ESTATE, "the garbled page went unnoticed");
        cr_assert_not_null(strstr(msg, path), "%s", msg);
        cr_assert_not_null(strstr(msg, "corrupt"), "%s", msg);
        char *after = slurp(path, &after_len);
        cr_assert_eq(after_len, before_len);
        cr_assert(memcmp(before, after, before_len) == 0, "the file was modified");
        free(before);
        free(after);
}

Test(state, a_store_with_a_foreign_application_id_is_refused)
{
        const char *path = path_in("other.db");
        sql(path, "PRAGMA application_id = 42; CREATE TABLE meta(key, value);"
                  "INSERT INTO meta VALUES('format', 'offboard-state'), ('version', '1');");
        assert_refused(path, "not an offboard state store");

        const char *plain = path_in("plain.db");
        sql(plain, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
        assert_refused(plain, "not an offboard state store");
}

Test(state, a_store_written_by_a_newer_version_is_refused)
{
        const char *path = path_in("state.db");
        ob_state_free(open_store(path, false));
        sql(path, "UPDATE meta SET value = '5' WHERE key = 'version'");
        assert_refused(path, "newer offboard");
}

/* What version 4 added, taken away to make an older store. */
#define V4_DROP                                                                                                     \
        "DROP VIEW memberships_named; DROP TABLE memberships; ALTER TABLE actions DROP COLUMN memberships_cut; "    \
        "ALTER TABLE actions DROP COLUMN memberships_in; "

Test(state, a_version_1_store_is_read_as_is_and_upgraded_when_written)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        struct ob_record rec = {.id = "u1", .dn = "uid=a", .username = "a", .status = 3, .generation = 1,
                                .pending_from = 1, .pending_to = 3};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "revoke", "key-1", 100), 0);
        ob_state_free(s);
        /* What a version 1 store looked like. */
        sql(path, V4_DROP "DROP VIEW actions_named; DROP VIEW accounts_named; DROP INDEX accounts_username; "
                  "ALTER TABLE actions DROP COLUMN due; "
                  "ALTER TABLE actions DROP COLUMN parked; "
                  "ALTER TABLE actions DROP COLUMN not_before; "
                  "UPDATE meta SET value = '1' WHERE key = 'version'; PRAGMA user_version = 1;");
        s = open_store(path, true); /* plan: read as it is */
        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(a[0].not_before, 0);
        cr_assert_not(a[0].parked);
        ob_action_records_free(a, n);
        ob_state_free(s);
        s = open_store(path, false); /* reconcile: upgraded */
        cr_assert_eq(ob_state_action_defer(s, "u1", 1, "revoke", 12345, true), 0);
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(a[0].not_before, 12345);
        cr_assert(a[0].parked);
        ob_action_records_free(a, n);
        /* A new attempt clears the wait (not the parking, which retry clears). */
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "revoke", "key-1", 200), 0);
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(a[0].not_before, 0);
        ob_action_records_free(a, n);
        ob_state_free(s);
}

Test(state, a_version_2_store_is_read_as_is_and_gains_stage_due_times_when_written)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        struct ob_record rec = {.id = "u1", .dn = "uid=a", .username = "a", .status = 3, .generation = 1};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "revoke", "key-1", 100), 0);
        ob_state_free(s);
        sql(path, V4_DROP "DROP VIEW actions_named; DROP VIEW accounts_named; DROP INDEX accounts_username; "
                  "ALTER TABLE actions DROP COLUMN due; "
                  "UPDATE meta SET value = '2' WHERE key = 'version'; "
                  "PRAGMA user_version = 2;");
        s = open_store(path, true);
        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(a[0].due, 0);
        ob_action_records_free(a, n);
        ob_state_free(s);
        s = open_store(path, false);
        /* The first due time recorded stays: a later pass never moves it. */
        cr_assert_eq(ob_state_action_due(s, "u1", 1, "delete", 5000, 200), 0);
        cr_assert_eq(ob_state_action_due(s, "u1", 1, "delete", 9000, 300), 0);
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(a[0].action, "delete");
        cr_assert_eq(a[0].due, 5000);
        cr_assert_eq(a[0].outcome, OB_OUTCOME_NONE);
        cr_assert_eq(a[0].attempts, 0);
        ob_action_records_free(a, n);
        /* An attempt, a deferral and a release keep it. */
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "delete", "key-2", 6000), 0);
        cr_assert_eq(ob_state_action_defer(s, "u1", 1, "delete", 7000, false), 0);
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0);
        cr_assert_eq(a[0].due, 5000);
        ob_action_records_free(a, n);
        ob_state_free(s);
}

Test(state, a_deleted_accounts_username_is_found_without_case_for_another_id_only)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        cr_assert_eq(ob_state_has_status(s, OB_STATUS_DELETED), 0);
        struct ob_record gone = {.id = "u1", .dn = "uid=Reu", .username = "Reu", .status = OB_STATUS_ACTIVE,
                                 .generation = 1, .pending_from = OB_STATUS_ACTIVE, .pending_to = OB_STATUS_DELETED};
        struct ob_record other = {.id = "u2", .dn = "uid=ann", .username = "ann", .status = OB_STATUS_DELETED};
        cr_assert_eq(ob_state_put(s, &gone, NULL), 0);
        cr_assert_eq(ob_state_put(s, &other, NULL), 0);
        cr_assert_eq(ob_state_has_status(s, OB_STATUS_DELETED), 1);
        char *id = NULL;
        cr_assert_eq(ob_state_deleted_username(s, "reu", "u9", OB_STATUS_DELETED, &id), 1, "on its way to deleted");
        cr_assert_str_eq(id, "u1");
        free(id);
        cr_assert_eq(ob_state_deleted_username(s, "reu", "u1", OB_STATUS_DELETED, &id), 0, "its own id");
        cr_assert_null(id);
        cr_assert_eq(ob_state_deleted_username(s, "bob", "u9", OB_STATUS_DELETED, &id), 0);
        cr_assert_eq(ob_state_deleted_username(s, "ANN", "u9", OB_STATUS_DELETED, &id), 1);
        free(id);
        ob_state_free(s);
}

Test(state, the_named_views_show_statuses_outcomes_and_times_as_words_for_sqlite3)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        struct ob_record rec = {.id = "u1", .dn = "uid=a", .username = "alice", .status = OB_STATUS_ACTIVE,
                                .status_since = 1700000000, .generation = 1, .pending_from = OB_STATUS_ACTIVE,
                                .pending_to = OB_STATUS_INACTIVE};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "revoke", "key-1", 1700000001), 0);
        cr_assert_eq(ob_state_action_outcome(s, "u1", 1, "revoke", OB_OUTCOME_DONE, 200, NULL, 1700000002), 0);
        ob_state_free(s);
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db,
                                        "SELECT a.status, a.status_since, a.pending_to, x.username, x.outcome, "
                                        "x.updated FROM accounts_named AS a JOIN actions_named AS x ON "
                                        "x.account_id = a.id",
                                        -1, &st, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "active");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), "2023-11-14 22:13:20");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 2), "inactive");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), "alice");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 4), "done");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 5), "2023-11-14 22:13:22");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

Test(state, outcome_names_are_stable)
{
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_NONE), "none");
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_INTENT), "intent");
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_DONE), "done");
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_FAILED), "failed");
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_SKIPPED), "skipped");
        cr_assert_str_eq(ob_outcome_name(OB_OUTCOME_BLOCKED), "blocked");
        cr_assert_str_eq(ob_outcome_name(_OB_OUTCOME_MAX), "unknown");
}

/* Needs root and a kernel that lets this process mount a tmpfs; skipped otherwise. */
Test(state, a_full_disk_gives_enospc_naming_the_file_and_keeps_what_was_committed)
{
        snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s/small", tmpdir);
        cr_assert_eq(mkdir(tmpfs_dir, 0700), 0);
        if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, "size=256k") < 0)
                cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
        tmpfs_mounted = true;
        char path[400];
        snprintf(path, sizeof(path), "%s/state.db", tmpfs_dir);
        struct ob_state *s = open_store(path, false);
        cr_assert_eq(ob_state_action_intent(s, "first", 1, "revoke", "k", 1), 0);
        char big[2000];
        memset(big, 'v', sizeof(big));
        struct ob_account *a = ob_account_new();
        cr_assert_not_null(a);
        cr_assert_eq(ob_account_add(a, "blob", big, sizeof(big)), 0);
        int r = 0, i;
        for (i = 0; i < 1000 && r == 0; i++) {
                char id[32];
                snprintf(id, sizeof(id), "acc-%d", i);
                r = ob_state_put(s, &(struct ob_record){.id = id}, a);
        }
        cr_assert_eq(r, -ENOSPC, "after %d puts: %d %s", i, r, ob_state_errmsg(s));
        cr_assert_not_null(strstr(ob_state_errmsg(s), path), "%s", ob_state_errmsg(s));
        cr_assert_not_null(strstr(ob_state_errmsg(s), "disk full"), "%s", ob_state_errmsg(s));
        /* A small intent may still fit in space the failed put gave back; if
         * it is acknowledged it must be durable, if not it must be absent. */
        int r2 = ob_state_action_intent(s, "second", 1, "revoke", "k", 2);
        cr_assert(r2 == 0 || r2 == -ENOSPC, "%d", r2);
        ob_account_free(a);
        ob_state_free(s);

        s = open_store(path, true);
        struct ob_action_record *acts = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "first", 1, &acts, &n), 0);
        cr_assert_eq(n, 1);
        ob_action_records_free(acts, n);
        cr_assert_eq(ob_state_actions(s, "second", 1, &acts, &n), 0);
        cr_assert_eq(n, r2 == 0 ? 1 : 0);
        ob_action_records_free(acts, n);
        struct ob_record rec = {0};
        char last[32];
        snprintf(last, sizeof(last), "acc-%d", i - 1);
        cr_assert_eq(ob_state_get(s, last, &rec), -OB_ENOTFOUND, "the failed put was recorded");
        ob_state_free(s);
}

/* ---- the executor's writer thread (writer.h) ---- */

#include "writer.h"

static void add_intent(struct ob_write_batch *b, const char *id, const char *action, const char *key)
{
        struct ob_write w = {.op = OB_WRITE_INTENT, .id = id, .generation = 1, .action = action, .key = key, .at = 100};
        cr_assert_eq(ob_write_batch_add(b, &w), 0);
}

Test(state, the_writer_commits_a_batch_off_the_calling_thread_one_at_a_time)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_record rec = {.id = "a1", .status = 1, .generation = 1, .pending_to = 2};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        struct ob_writer *w = NULL;
        cr_assert_eq(ob_writer_new(s, &w), 0);
        cr_assert_not(ob_writer_busy(w));
        cr_assert_eq(ob_writer_collect(w, false), 0, "nothing submitted: nothing to wait for");

        struct ob_write_batch b = {0};
        add_intent(&b, "a1", "revoke", "key-revoke");
        add_intent(&b, "a1", "license", "key-license");
        struct ob_write out = {.op = OB_WRITE_OUTCOME, .id = "a1", .generation = 1, .action = "revoke",
                               .outcome = OB_OUTCOME_FAILED, .http_status = 503, .error = "busy", .at = 101};
        cr_assert_eq(ob_write_batch_add(&b, &out), 0);
        cr_assert_eq(ob_writer_submit(w, &b), 0);
        cr_assert_eq(b.n, 0, "the batch went to the writer");
        cr_assert(ob_writer_busy(w));
        struct ob_write_batch more = {0};
        add_intent(&more, "a1", "transfer", "key-transfer");
        cr_assert_eq(ob_writer_submit(w, &more), -EBUSY, "one batch with the writer at a time");
        cr_assert_eq(ob_writer_collect(w, true), 0);
        cr_assert_not(ob_writer_busy(w));
        cr_assert_eq(ob_writer_submit(w, &more), 0);
        /* Its descriptor says when the batch is done. */
        struct pollfd p = {.fd = ob_writer_fd(w), .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 10000), 1);
        cr_assert_eq(ob_writer_collect(w, false), 0);
        ob_writer_free(w);

        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "a1", 1, &a, &n), 0);
        cr_assert_eq(n, 3);
        bool seen_revoke = false, seen_transfer = false;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(a[i].action, "revoke") == 0) {
                        seen_revoke = true;
                        cr_assert_eq(a[i].outcome, OB_OUTCOME_FAILED);
                        cr_assert_eq(a[i].http_status, 503);
                        cr_assert_str_eq(a[i].idempotency_key, "key-revoke");
                }
                seen_transfer = seen_transfer || strcmp(a[i].action, "transfer") == 0;
        }
        cr_assert(seen_revoke && seen_transfer);
        ob_action_records_free(a, n);
        ob_write_batch_free(&b);
        ob_write_batch_free(&more);
        ob_state_free(s);
}

/* A batch that cannot be committed (the disk is full) is rolled back whole
 * and its error comes back to the loop, which then sends none of its requests. */
Test(state, a_batch_the_writer_cannot_commit_is_rolled_back_and_its_error_returned)
{
        snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s/small", tmpdir);
        cr_assert_eq(mkdir(tmpfs_dir, 0700), 0);
        if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, "size=256k") < 0)
                cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
        tmpfs_mounted = true;
        char path[400];
        snprintf(path, sizeof(path), "%s/state.db", tmpfs_dir);
        struct ob_state *s = open_store(path, false);
        struct ob_record rec = {.id = "a1", .status = 1, .generation = 1, .pending_to = 2};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        struct ob_writer *w = NULL;
        cr_assert_eq(ob_writer_new(s, &w), 0);
        /* Far more than 256 KiB of intents in one batch. */
        static char keys[4000][64];
        static char actions[4000][32];
        struct ob_write_batch b = {0};
        for (int i = 0; i < 4000; i++) {
                snprintf(actions[i], sizeof(actions[i]), "action-%04d", i);
                snprintf(keys[i], sizeof(keys[i]), "key-%04d-%040d", i, i);
                add_intent(&b, "a1", actions[i], keys[i]);
        }
        cr_assert_eq(ob_writer_submit(w, &b), 0);
        int k = ob_writer_collect(w, true);
        cr_assert(k < 0, "a full disk must fail the batch, got %d", k);
        ob_writer_free(w);
        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "a1", 1, &a, &n), 0);
        cr_assert_eq(n, 0, "nothing of a failed batch is kept (%zu records)", n);
        ob_action_records_free(a, n);
        ob_write_batch_free(&b);
        ob_state_free(s);
}

/* ---- memberships (format version 4) ---- */

static char *detail_of(struct ob_state *s, const char *id, int64_t gen, const char *action)
{
        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, id, gen, &a, &n), 0, "%s", ob_state_errmsg(s));
        char *d = NULL;
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i].action, action) == 0 && a[i].detail)
                        d = strdup(a[i].detail);
        ob_action_records_free(a, n);
        return d;
}

Test(state, the_memberships_a_step_removed_are_kept_with_its_outcome_and_each_attempt_adds_to_them)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_record rec = {.id = "u1", .username = "ann", .status = 1, .generation = 1, .pending_to = 3};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        cr_assert_eq(ob_state_action_intent(s, "u1", 1, "groups", "k", 100), 0);
        /* Half-way, then failed: what it removed is kept all the same. */
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 1, "groups", OB_OUTCOME_FAILED, 0, "LDAP: refused",
                                                    "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann,dc=x\"]],"
                                                    "\"cut\":0}",
                                                    101),
                     0, "%s", ob_state_errmsg(s));
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 1, "groups", OB_OUTCOME_DONE, 0, NULL,
                                                    "{\"memberships\":[[\"cn=b,dc=x\",\"memberUid\",\"ann\"]],"
                                                    "\"cut\":0}",
                                                    102),
                     0, "%s", ob_state_errmsg(s));
        char *d = detail_of(s, "u1", 1, "groups");
        cr_assert_not_null(d);
        cr_assert(strstr(d, "[\"cn=a,dc=x\",\"member\",\"uid=ann,dc=x\"]"), "%s", d);
        cr_assert(strstr(d, "[\"cn=b,dc=x\",\"memberUid\",\"ann\"]"), "%s", d);
        cr_assert(strstr(d, "\"cut\":0"), "%s", d);
        free(d);
        /* Another action, and an outcome without a detail, have none. */
        cr_assert_eq(ob_state_action_outcome(s, "u1", 1, "mail", OB_OUTCOME_DONE, 204, NULL, 103), 0);
        cr_assert_null(detail_of(s, "u1", 1, "mail"));
        /* Not JSON: refused, nothing half-written. */
        cr_assert_lt(ob_state_action_outcome_detail(s, "u1", 1, "x", OB_OUTCOME_DONE, 0, NULL, "{nope", 104), 0);
        ob_state_free(s);
}

Test(state, a_step_keeps_at_most_256_memberships_and_counts_the_rest_as_cut)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_buf_adds(&b, "{\"memberships\":["), 0);
        for (int i = 0; i < 300; i++)
                cr_assert_eq(ob_buf_printf(&b, "%s[\"cn=g%d,dc=x\",\"member\",\"uid=ann\"]", i ? "," : "", i), 0);
        /* and one whose group DN is longer than a field may be */
        cr_assert_eq(ob_buf_adds(&b, ",[\""), 0);
        for (int i = 0; i < 1100; i++)
                cr_assert_eq(ob_buf_addc(&b, 'x'), 0);
        cr_assert_eq(ob_buf_adds(&b, "\",\"member\",\"uid=ann\"]],\"cut\":5}"), 0);
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 1, "groups", OB_OUTCOME_DONE, 0, NULL, b.data, 1), 0,
                     "%s", ob_state_errmsg(s));
        ob_buf_free(&b);
        char *d = detail_of(s, "u1", 1, "groups");
        cr_assert_not_null(d);
        /* 300 offered + 1 too long: 256 kept, 44 + 1 + the 5 the detail cut. */
        cr_assert(strstr(d, "\"cut\":50"), "%.200s", d + strlen(d) - 20);
        size_t rows = 0;
        for (const char *p = d; (p = strstr(p, "\"member\"")); p++)
                rows++;
        cr_assert_eq(rows, 256);
        free(d);
        /* A detail larger than a detail may be is refused. */
        char *big = malloc(OB_STATE_DETAIL_MAX + 2);
        memset(big, ' ', OB_STATE_DETAIL_MAX + 1);
        big[OB_STATE_DETAIL_MAX + 1] = '\0';
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 1, "g2", OB_OUTCOME_DONE, 0, NULL, big, 1), -EINVAL);
        free(big);
        ob_state_free(s);
}

Test(state, a_step_carried_into_the_next_transition_stands_for_the_memberships_it_removed_before)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 1, "groups", OB_OUTCOME_DONE, 0, NULL,
                                                    "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]],"
                                                    "\"cut\":2}",
                                                    1),
                     0);
        /* locked -> inactive: done before, recorded done again without a detail */
        cr_assert_eq(ob_state_action_outcome(s, "u1", 2, "groups", OB_OUTCOME_DONE, 0, NULL, 2), 0);
        char *d = detail_of(s, "u1", 2, "groups");
        cr_assert_not_null(d);
        cr_assert(strstr(d, "cn=a,dc=x") && strstr(d, "\"cut\":2"), "%s", d);
        free(d);
        /* A step that removed nothing this time says so: it is not the old list. */
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 4, "groups", OB_OUTCOME_DONE, 0, NULL,
                                                    "{\"memberships\":[],\"cut\":0}", 3),
                     0);
        d = detail_of(s, "u1", 4, "groups");
        cr_assert_str_eq(d, "{\"memberships\":[],\"cut\":0}");
        free(d);
        /* Skipped or failed without a detail: nothing carried. */
        cr_assert_eq(ob_state_action_outcome(s, "u1", 5, "groups", OB_OUTCOME_SKIPPED, 0, NULL, 4), 0);
        cr_assert_null(detail_of(s, "u1", 5, "groups"));
        ob_state_free(s);
}

Test(state, a_version_3_store_is_read_as_is_and_migrated_to_version_4_with_memberships_when_written)
{
        const char *path = path_in("state.db");
        struct ob_state *s = open_store(path, false);
        struct ob_record rec = {.id = "u1", .username = "ann", .status = 3, .generation = 1};
        cr_assert_eq(ob_state_put(s, &rec, NULL), 0);
        cr_assert_eq(ob_state_action_outcome(s, "u1", 1, "groups", OB_OUTCOME_DONE, 0, NULL, 100), 0);
        ob_state_free(s);
        sql(path, V4_DROP "UPDATE meta SET value = '3' WHERE key = 'version'; PRAGMA user_version = 3;");
        s = open_store(path, true); /* plan: read as it is, no memberships */
        struct ob_action_record *a = NULL;
        size_t n = 0;
        cr_assert_eq(ob_state_actions(s, "u1", 1, &a, &n), 0, "%s", ob_state_errmsg(s));
        cr_assert_eq(n, 1);
        cr_assert_eq(a[0].outcome, OB_OUTCOME_DONE);
        cr_assert_null(a[0].detail);
        ob_action_records_free(a, n);
        ob_state_free(s);
        s = open_store(path, false); /* reconcile: migrated */
        cr_assert_null(detail_of(s, "u1", 1, "groups"), "a record of version 3 has no memberships");
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 2, "groups", OB_OUTCOME_DONE, 0, NULL,
                                                    "{\"memberships\":[[\"cn=a,dc=x\",\"memberUid\",\"ann\"]]}", 200),
                     0, "%s", ob_state_errmsg(s));
        char *d = detail_of(s, "u1", 2, "groups");
        cr_assert_str_eq(d, "{\"memberships\":[[\"cn=a,dc=x\",\"memberUid\",\"ann\"]],\"cut\":0}");
        free(d);
        ob_state_free(s);
        /* sqlite3 reads it by name, and the file says version 4. */
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db,
                                        "SELECT username, generation, action, group_dn, attribute, value, "
                                        "(SELECT value FROM meta WHERE key = 'version'), "
                                        "(SELECT user_version FROM pragma_user_version) FROM memberships_named",
                                        -1, &st, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ann");
        cr_assert_eq(sqlite3_column_int(st, 1), 2);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 2), "groups");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), "cn=a,dc=x");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 4), "memberUid");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 5), "ann");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 6), "4");
        cr_assert_eq(sqlite3_column_int(st, 7), 4);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

Test(state, an_intent_keeps_the_list_its_step_restores_before_the_request_leaves)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_write_batch b = {0};
        char detail[] = "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]],\"cut\":1}";
        struct ob_write w = {.op = OB_WRITE_INTENT, .id = "u1", .generation = 3, .action = "back", .key = "k",
                             .detail = detail, .at = 5};
        cr_assert_eq(ob_write_batch_add(&b, &w), 0);
        cr_assert_eq(ob_write_batch_apply(s, &b), 0, "%s", ob_state_errmsg(s));
        ob_write_batch_free(&b);
        /* No outcome came (a crash): the record has the list all the same. */
        char *d = detail_of(s, "u1", 3, "back");
        cr_assert_str_eq(d, "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]],\"cut\":1}");
        free(d);
        /* The next attempt's intent and its outcome add nothing twice. */
        cr_assert_eq(ob_state_action_intent(s, "u1", 3, "back", "k", 6), 0);
        cr_assert_eq(ob_state_action_memberships(s, "u1", 3, "back", detail), 0);
        cr_assert_eq(ob_state_action_outcome_detail(s, "u1", 3, "back", OB_OUTCOME_DONE, 0, NULL,
                                                    "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]]}", 7),
                     0);
        d = detail_of(s, "u1", 3, "back");
        cr_assert(strstr(d, "\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]]"), "%s", d);
        cr_assert(strstr(d, "\"cut\":1}"), "the cut is not counted twice: %s", d);
        free(d);
        ob_state_free(s);
}

Test(state, a_batch_carries_an_outcomes_memberships_to_the_store)
{
        struct ob_state *s = open_store(path_in("state.db"), false);
        struct ob_write_batch b = {0};
        char detail[] = "{\"memberships\":[[\"cn=a,dc=x\",\"member\",\"uid=ann\"]],\"cut\":0}";
        struct ob_write w = {.op = OB_WRITE_OUTCOME, .id = "u1", .generation = 1, .action = "groups",
                             .outcome = OB_OUTCOME_DONE, .detail = detail, .at = 5};
        cr_assert_eq(ob_write_batch_add(&b, &w), 0);
        detail[3] = 'X'; /* the batch has its own copy */
        cr_assert_eq(ob_write_batch_apply(s, &b), 0, "%s", ob_state_errmsg(s));
        ob_write_batch_free(&b);
        char *d = detail_of(s, "u1", 1, "groups");
        cr_assert(d && strstr(d, "cn=a,dc=x"), "%s", d ? d : "(null)");
        free(d);
        ob_state_free(s);
}

Test(state, a_store_in_a_directory_reached_through_a_link_opens_as_systemd_lays_out_a_dynamic_users_state)
{
        /* DynamicUser= with StateDirectory=offboard: /var/lib/offboard is a
         * link to private/offboard, and state.path goes through it. */
        char priv[600], link_dir[600], path[700];
        snprintf(priv, sizeof(priv), "%s/private", tmpdir);
        cr_assert_eq(mkdir(priv, 0700), 0);
        snprintf(priv, sizeof(priv), "%s/private/offboard", tmpdir);
        cr_assert_eq(mkdir(priv, 0700), 0);
        snprintf(link_dir, sizeof(link_dir), "%s/offboard", tmpdir);
        cr_assert_eq(symlink("private/offboard", link_dir), 0);
        snprintf(path, sizeof(path), "%s/state.db", link_dir);

        struct ob_state *s = open_store(path, false); /* created, then opened */
        cr_assert_eq(ob_state_put(s, &(struct ob_record){.id = "x", .status = OB_STATUS_LOCKED}, NULL), 0);
        ob_state_free(s);
        s = open_store(path, false); /* opened again, as every pass does */
        struct ob_record r = {0};
        cr_assert_eq(ob_state_get(s, "x", &r), 0);
        cr_assert_eq(r.status, OB_STATUS_LOCKED);
        ob_record_clear(&r);
        ob_state_free(s);
        s = open_store(path, true); /* and read only, as plan does */
        ob_state_free(s);
}

Test(state, a_store_that_is_itself_a_link_is_refused_even_in_a_linked_directory)
{
        char real[600], link_dir[600], path[700], target[700];
        snprintf(real, sizeof(real), "%s/real", tmpdir);
        cr_assert_eq(mkdir(real, 0700), 0);
        snprintf(link_dir, sizeof(link_dir), "%s/linked", tmpdir);
        cr_assert_eq(symlink("real", link_dir), 0);
        /* A real store elsewhere, and state.db a link to it. */
        snprintf(target, sizeof(target), "%s/other.db", real);
        ob_state_free(open_store(target, false));
        snprintf(path, sizeof(path), "%s/state.db", real);
        cr_assert_eq(symlink("other.db", path), 0);
        snprintf(path, sizeof(path), "%s/state.db", link_dir);

        struct ob_state *s = NULL;
        int r = ob_state_open(path, false, &s);
        cr_assert_lt(r, 0, "a store that is a link was opened");
        cr_assert_null(s);
        cr_assert(strstr(ob_state_open_errmsg(), "is a symbolic link"), "%s", ob_state_open_errmsg());
}
