/* test_journal.c: the audit journal, each test in its own temporary directory.
 *
 * Lines are checked byte for byte where the format is fixed, and every file a
 * test writes is parsed by Python's json module (strict: UTF-8 decoded with
 * errors="strict", control characters in strings refused, each line one
 * object ending in "\n").
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "util.h"

static char tmpdir[256];
static char tmpfs_dir[300];
static bool tmpfs_mounted;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static void setup(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/ob-test-journal-XXXXXX");
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

TestSuite(journal, .init = setup, .fini = teardown, .timeout = 60);

static char *path_in(const char *name)
{
        static char p[4][512];
        static int k;
        char *s = p[k++ % 4];
        snprintf(s, sizeof(p[0]), "%s/%s", tmpdir, name);
        return s;
}

/* The whole file, NUL-terminated; *ret_len without the NUL. */
static char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
        struct ob_buf b;
        ob_buf_init(&b);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                cr_assert_eq(ob_buf_add(&b, chunk, n), 0);
        fclose(f);
        char *s;
        size_t len = b.len;
        cr_assert_eq(ob_buf_steal(&b, &s), 0);
        if (ret_len)
                *ret_len = len;
        return s;
}

static void put_file(const char *path, const char *content, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        size_t n = strlen(content);
        cr_assert_eq(write(fd, content, n), (ssize_t)n);
        cr_assert_eq(fchmod(fd, mode), 0);
        close(fd);
}

/* Runs a Python check over the file: every line must parse strictly as a JSON
 * object; then `expr` (Python, over the list `objs` of decoded objects, using
 * double quotes only) must be true. Returns the number of lines. */
static int py_check(const char *path, const char *expr)
{
        char cmd[4096];
        snprintf(cmd, sizeof(cmd),
                 "python3 -c '\n"
                 "import json, sys\n"
                 "data = open(sys.argv[1], \"rb\").read()\n"
                 "assert data.endswith(b\"\\n\"), \"no final newline\"\n"
                 "def refuse(c): raise ValueError(\"constant \" + c)\n"
                 "objs = [json.loads(l.decode(\"utf-8\", \"strict\"), parse_constant=refuse) for l in "
                 "data[:-1].split(b\"\\n\")]\n"
                 "assert all(type(o) is dict for o in objs)\n"
                 "assert (%s), \"check failed\"\n"
                 "print(len(objs))\n"
                 "' '%s'",
                 expr, path);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        int lines = -1;
        if (fscanf(p, "%d", &lines) != 1)
                lines = -1;
        int st = pclose(p);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python check failed on %s: %s", path, expr);
        return lines;
}

static struct ob_journal *open_journal(const char *path)
{
        struct ob_journal *j = NULL;
        int r = ob_journal_open(path, &j);
        cr_assert_eq(r, 0, "open %s: %s", path, ob_strerror(r));
        cr_assert_not_null(j);
        return j;
}

static void append_ok(struct ob_journal *j, const struct ob_journal_entry *e)
{
        int r = ob_journal_append(j, e);
        cr_assert_eq(r, 0, "append: %s", ob_strerror(r));
}

/* 2026-12-02T10:00:00.123Z */
#define T0 INT64_C(1796205600123)

static const struct ob_journal_entry full = {
        .event = "outcome",
        .time_ms = T0,
        .account_id = "42",
        .username = "jdoe",
        .dn = "uid=jdoe,ou=people,dc=example,dc=org",
        .transition = "leave",
        .generation = 3,
        .action = "revoke",
        .connector = "http",
        .idempotency_key = "k-42-3-revoke",
        .attempt = 2,
        .result = "failed",
        .http_status = 503,
        .error = "Service Unavailable",
        .duration_ms = 212,
};

/* ---- format ------------------------------------------------------------ */

Test(journal, a_line_holds_every_field_in_the_documented_order)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &full);
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"outcome\",\"account_id\":\"42\","
                            "\"username\":\"jdoe\",\"dn\":\"uid=jdoe,ou=people,dc=example,dc=org\","
                            "\"transition\":\"leave\",\"generation\":3,\"action\":\"revoke\",\"connector\":\"http\","
                            "\"idempotency_key\":\"k-42-3-revoke\",\"attempt\":2,\"result\":\"failed\","
                            "\"http_status\":503,\"error\":\"Service Unavailable\",\"duration_ms\":212}\n");
        free(s);
        cr_assert_eq(py_check(path, "objs[0][\"http_status\"] == 503 and objs[0][\"generation\"] == 3"), 1);
}

Test(journal, an_attempt_leaves_out_result_status_error_and_duration)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        /* As an engine would write it: duration left at 0, which an
         * attempt does not carry. */
        append_ok(j, &(struct ob_journal_entry){.event = "attempt",
                                                .time_ms = T0,
                                                .account_id = "42",
                                                .username = "jdoe",
                                                .transition = "leave",
                                                .generation = 3,
                                                .action = "revoke",
                                                .connector = "http",
                                                .idempotency_key = "k",
                                                .attempt = 1});
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"attempt\",\"account_id\":\"42\","
                            "\"username\":\"jdoe\",\"transition\":\"leave\",\"generation\":3,\"action\":\"revoke\","
                            "\"connector\":\"http\",\"idempotency_key\":\"k\",\"attempt\":1}\n");
        free(s);
        py_check(path, "True");
}

Test(journal, fields_not_applicable_are_left_out_and_time_and_event_never_are)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "held", .time_ms = T0, .duration_ms = -1});
        append_ok(j,
                  &(struct ob_journal_entry){.event = "outcome", .time_ms = T0, .result = "done", .duration_ms = -1});
        append_ok(j, &(struct ob_journal_entry){.event = "outcome", .time_ms = T0, .result = "skipped"});
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"held\"}\n"
                            "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"outcome\",\"result\":\"done\"}\n"
                            "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"outcome\",\"result\":\"skipped\","
                            "\"duration_ms\":0}\n");
        free(s);
        py_check(path, "True");
}

Test(journal, time_is_rfc3339_utc_with_milliseconds)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = 1});
        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = INT64_C(951782400000)}); /* 2000-02-29 */
        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = INT64_C(253402300799999)});
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"1970-01-01T00:00:00.001Z\",\"event\":\"a\"}\n"
                            "{\"time\":\"2000-02-29T00:00:00.000Z\",\"event\":\"a\"}\n"
                            "{\"time\":\"9999-12-31T23:59:59.999Z\",\"event\":\"a\"}\n");
        free(s);
}

Test(journal, time_zero_means_now)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        time_t before = time(NULL);
        append_ok(j, &(struct ob_journal_entry){.event = "a"});
        time_t after = time(NULL);
        ob_journal_free(j);

        char expr[512];
        snprintf(expr, sizeof(expr),
                 "int(__import__(\"datetime\").datetime.strptime(objs[0][\"time\"], \"%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ\")"
                 ".replace(tzinfo=__import__(\"datetime\").timezone.utc).timestamp()) in range(%lld, %lld)",
                 (long long)before, (long long)after + 1);
        py_check(path, expr);
}

Test(journal, an_entry_without_event_or_with_a_time_out_of_range_is_refused_and_nothing_written)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        cr_assert_eq(ob_journal_append(j, &(struct ob_journal_entry){.time_ms = T0}), -EINVAL);
        cr_assert_eq(ob_journal_append(j, &(struct ob_journal_entry){.event = "", .time_ms = T0}), -EINVAL);
        cr_assert_eq(ob_journal_append(j, &(struct ob_journal_entry){.event = "a", .time_ms = -5}), -EINVAL);
        cr_assert_eq(
                ob_journal_append(j, &(struct ob_journal_entry){.event = "a", .time_ms = INT64_C(253402300800000)}),
                -EINVAL);
        cr_assert_eq(ob_journal_append(j, NULL), -EINVAL);
        cr_assert_eq(ob_journal_append(NULL, &full), -EINVAL);
        ob_journal_free(j);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_size, 0);
}

/* ---- hostile values ------------------------------------------------------ */

Test(journal, quotes_backslashes_and_control_characters_are_escaped)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "a",
                                                .time_ms = T0,
                                                .username = "a\"b\\c\nd\re\tf\x01g\x1f\x7fh",
                                                .error = "\",\"result\":\"done\"}\n{\"event\":\"forged"});
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"a\","
                            "\"username\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\x7fh\","
                            "\"error\":\"\\\",\\\"result\\\":\\\"done\\\"}\\n{\\\"event\\\":\\\"forged\"}\n");
        free(s);
        cr_assert_eq(py_check(path, "objs[0][\"error\"].startswith(\"\\\",\") and \"result\" not in objs[0]"), 1);
}

Test(journal, bytes_that_are_not_utf8_become_u00xx_and_valid_utf8_is_kept)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        /* Latin-1 é, a lone continuation byte, an overlong "/", a surrogate,
         * a truncated sequence at the end; then valid é and U+2028. */
        append_ok(j, &(struct ob_journal_entry){.event = "a",
                                                .time_ms = T0,
                                                .username = "Ren\xe9 \x80 \xc0\xaf \xed\xa0\x80 \xe2\x82",
                                                .dn = "cn=Ren\xc3\xa9\xe2\x80\xa8"});
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"a\","
                            "\"username\":\"Ren\\u00e9 \\u0080 \\u00c0\\u00af \\u00ed\\u00a0\\u0080 \\u00e2\\u0082\","
                            "\"dn\":\"cn=Ren\xc3\xa9\\u2028\"}\n");
        free(s);
        py_check(path, "objs[0][\"dn\"] == \"cn=Ren\\u00e9\\u2028\"");
}

static char *repeat(const char *unit, size_t count)
{
        size_t ul = strlen(unit);
        char *s = malloc(ul * count + 1);
        cr_assert_not_null(s);
        for (size_t i = 0; i < count; i++)
                memcpy(s + i * ul, unit, ul);
        s[ul * count] = '\0';
        return s;
}

Test(journal, hostile_values_give_one_valid_line_each_within_the_cap)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        char *big_ascii = repeat("x", 100000);
        char *big_quotes = repeat("\"\\", 50000);
        char *big_ctl = repeat("\x01", 100000);
        char *big_bad = repeat("\xff", 100000);
        char *big_utf8 = repeat("\xe2\x82\xac", 40000); /* € */
        const char *values[] = {big_ascii, big_quotes, big_ctl, big_bad, big_utf8, "\"", "\\", "\n", "\xff"};
        int lines = 0;
        for (size_t i = 0; i < OB_ELEMENTSOF(values); i++) {
                /* One value alone in the error, then everywhere at once. */
                append_ok(j, &(struct ob_journal_entry){
                                     .event = "outcome", .time_ms = T0, .result = "failed", .error = values[i]});
                append_ok(j, &(struct ob_journal_entry){.event = values[i],
                                                        .time_ms = T0,
                                                        .account_id = values[i],
                                                        .username = values[i],
                                                        .dn = values[i],
                                                        .transition = values[i],
                                                        .generation = INT64_MAX,
                                                        .action = values[i],
                                                        .connector = values[i],
                                                        .idempotency_key = values[i],
                                                        .attempt = 2147483647,
                                                        .result = values[i],
                                                        .http_status = 999,
                                                        .error = values[i],
                                                        .duration_ms = INT64_MAX});
                lines += 2;
        }
        ob_journal_free(j);
        free(big_ascii);
        free(big_quotes);
        free(big_ctl);
        free(big_bad);
        free(big_utf8);

        size_t len;
        char *s = slurp(path, &len);
        int counted = 0;
        for (char *p = s; *p;) {
                char *nl = strchr(p, '\n');
                cr_assert_not_null(nl);
                cr_assert_leq((size_t)(nl - p + 1), OB_JOURNAL_LINE_MAX, "line %d is %zu bytes", counted,
                              (size_t)(nl - p + 1));
                counted++;
                p = nl + 1;
        }
        free(s);
        cr_assert_eq(counted, lines);
        cr_assert_eq(py_check(path, "all(\"duration_ms\" in o and \"error\" in o for o in objs)"), lines);
}

Test(journal, a_100_kb_error_is_cut_on_a_utf8_boundary_with_an_ellipsis)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        /* Each value a different width per character: 1, 2, 3 and 6 (escaped) bytes. */
        const char *units[] = {"y", "\xc3\xa9", "\xe2\x82\xac", "\x02"};
        for (size_t i = 0; i < OB_ELEMENTSOF(units); i++) {
                char *err = repeat(units[i], 100000 / strlen(units[i]));
                struct ob_journal_entry e = full;
                e.error = err;
                append_ok(j, &e);
                free(err);
        }
        ob_journal_free(j);
        /* The other fields are intact, the error is a prefix of whole
         * characters followed by "...", and the line nearly fills the cap. */
        py_check(path, "all(o[\"error\"].endswith(\"...\") and len(set(o[\"error\"][:-3])) == 1 and "
                       "o[\"duration_ms\"] == 212 and o[\"http_status\"] == 503 for o in objs)");

        size_t len;
        char *s = slurp(path, &len);
        for (char *p = s; *p;) {
                char *nl = strchr(p, '\n');
                size_t n = (size_t)(nl - p + 1);
                cr_assert_leq(n, OB_JOURNAL_LINE_MAX);
                cr_assert_geq(n, OB_JOURNAL_LINE_MAX - 64 - 6, "line of %zu bytes wastes the cap", n);
                p = nl + 1;
        }
        free(s);
}

Test(journal, a_short_field_is_cut_at_its_budget)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        char *v = repeat("u", 2000);
        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = T0, .username = v, .dn = v});
        free(v);
        ob_journal_free(j);
        char expr[256];
        snprintf(expr, sizeof(expr),
                 "objs[0][\"username\"] == \"u\" * %d + \"...\" and objs[0][\"dn\"] == \"u\" * %d + \"...\"",
                 OB_JOURNAL_FIELD_MAX - 3, 2 * OB_JOURNAL_FIELD_MAX - 3);
        py_check(path, expr);
}

Test(journal, a_value_exactly_at_its_budget_is_not_cut)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        char *v = repeat("u", OB_JOURNAL_FIELD_MAX);
        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = T0, .username = v});
        free(v);
        ob_journal_free(j);
        char expr[128];
        snprintf(expr, sizeof(expr), "objs[0][\"username\"] == \"u\" * %d", OB_JOURNAL_FIELD_MAX);
        py_check(path, expr);
}

/* ---- files --------------------------------------------------------------- */

Test(journal, a_new_file_is_created_with_mode_0600_whatever_the_umask)
{
        const char *path = path_in("audit.jsonl");
        mode_t old = umask(0);
        struct ob_journal *j = open_journal(path);
        umask(old);
        ob_journal_free(j);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 07777, 0600);
}

Test(journal, existing_content_is_kept_and_lines_are_appended)
{
        const char *path = path_in("audit.jsonl");
        put_file(path, "{\"earlier\":1}\n", 0640);
        struct ob_journal *j = open_journal(path);
        append_ok(j, &full);
        ob_journal_free(j);
        j = open_journal(path);
        append_ok(j, &full);
        cr_assert_eq(ob_journal_sync(j), 0);
        ob_journal_free(j);

        char *s = slurp(path, NULL);
        cr_assert(strncmp(s, "{\"earlier\":1}\n{\"time\"", 21) == 0, "got %s", s);
        free(s);
        cr_assert_eq(py_check(path, "objs[0] == {\"earlier\": 1} and objs[1] == objs[2]"), 3);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0640, "the mode of an existing file is left alone");
}

Test(journal, reopen_after_rename_creates_a_new_file_and_the_old_one_keeps_its_lines)
{
        const char *path = path_in("audit.jsonl");
        const char *rotated = path_in("audit.jsonl.1");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "first", .time_ms = T0});
        cr_assert_eq(rename(path, rotated), 0);
        /* Until the reopen, lines follow the renamed file. */
        append_ok(j, &(struct ob_journal_entry){.event = "second", .time_ms = T0});
        cr_assert_eq(ob_journal_reopen(j), 0);
        append_ok(j, &(struct ob_journal_entry){.event = "third", .time_ms = T0});
        ob_journal_free(j);

        cr_assert_eq(py_check(rotated, "[o[\"event\"] for o in objs] == [\"first\", \"second\"]"), 2);
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs] == [\"third\"]"), 1);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
}

Test(journal, reopen_without_rotation_goes_on_appending_to_the_same_file)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "first", .time_ms = T0});
        cr_assert_eq(ob_journal_reopen(j), 0);
        append_ok(j, &(struct ob_journal_entry){.event = "second", .time_ms = T0});
        ob_journal_free(j);
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs] == [\"first\", \"second\"]"), 2);
}

Test(journal, a_failed_reopen_keeps_the_old_descriptor)
{
        const char *path = path_in("audit.jsonl");
        const char *rotated = path_in("audit.jsonl.1");
        const char *elsewhere = path_in("elsewhere");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &(struct ob_journal_entry){.event = "first", .time_ms = T0});
        cr_assert_eq(rename(path, rotated), 0);
        put_file(elsewhere, "", 0600);
        cr_assert_eq(symlink(elsewhere, path), 0);
        cr_assert_eq(ob_journal_reopen(j), -ELOOP);
        append_ok(j, &(struct ob_journal_entry){.event = "second", .time_ms = T0});
        ob_journal_free(j);

        cr_assert_eq(py_check(rotated, "[o[\"event\"] for o in objs] == [\"first\", \"second\"]"), 2);
        struct stat st;
        cr_assert_eq(stat(elsewhere, &st), 0);
        cr_assert_eq(st.st_size, 0);
}

Test(journal, a_symlink_is_refused_and_its_target_untouched)
{
        const char *path = path_in("audit.jsonl");
        const char *target = path_in("target");
        put_file(target, "target\n", 0600);
        cr_assert_eq(symlink(target, path), 0);
        struct ob_journal *j = (struct ob_journal *)0x1;
        cr_assert_eq(ob_journal_open(path, &j), -ELOOP);
        cr_assert_eq(j, (struct ob_journal *)0x1, "ret is written only on success");
        char *s = slurp(target, NULL);
        cr_assert_str_eq(s, "target\n");
        free(s);

        /* A dangling symlink is not followed to create its target either. */
        const char *dangling = path_in("dangling");
        cr_assert_eq(symlink(path_in("nowhere"), dangling), 0);
        cr_assert_eq(ob_journal_open(dangling, &j), -ELOOP);
        cr_assert_eq(access(path_in("nowhere"), F_OK), -1);
}

Test(journal, a_file_writable_by_group_or_others_is_refused_with_nothing_written)
{
        const mode_t modes[] = {0620, 0602, 0666, 0622};
        for (size_t i = 0; i < OB_ELEMENTSOF(modes); i++) {
                const char *path = path_in("audit.jsonl");
                put_file(path, "kept\n", modes[i]);
                struct ob_journal *j = NULL;
                cr_assert_eq(ob_journal_open(path, &j), -EPERM, "mode %o", (unsigned)modes[i]);
                cr_assert_null(j);
                char *s = slurp(path, NULL);
                cr_assert_str_eq(s, "kept\n");
                free(s);
                struct stat st;
                cr_assert_eq(stat(path, &st), 0);
                cr_assert_eq(st.st_mode & 07777, modes[i], "the mode is not changed");
        }
}

Test(journal, a_file_owned_by_another_user_is_refused_with_nothing_written)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to chown");
        const char *path = path_in("audit.jsonl");
        put_file(path, "kept\n", 0600);
        cr_assert_eq(chown(path, 65534, 65534), 0);
        struct ob_journal *j = NULL;
        cr_assert_eq(ob_journal_open(path, &j), -EPERM);
        cr_assert_null(j);
        char *s = slurp(path, NULL);
        cr_assert_str_eq(s, "kept\n");
        free(s);

        /* Nor taken over on reopen once rotated. */
        const char *mine = path_in("mine.jsonl");
        j = open_journal(mine);
        cr_assert_eq(rename(path, path_in("other")), 0);
        cr_assert_eq(rename(mine, path_in("mine.1")), 0);
        cr_assert_eq(rename(path_in("other"), mine), 0);
        cr_assert_eq(ob_journal_reopen(j), -EPERM);
        ob_journal_free(j);
}

Test(journal, a_fifo_or_a_directory_is_refused_without_blocking)
{
        const char *fifo = path_in("fifo");
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        struct ob_journal *j = NULL;
        int r = ob_journal_open(fifo, &j);
        /* No reader: open(2) itself fails with ENXIO; either way, refused. */
        cr_assert(r == -ENXIO || r == -EPERM, "got %d", r);

        int rd = open(fifo, O_RDONLY | O_NONBLOCK);
        cr_assert_geq(rd, 0);
        cr_assert_eq(ob_journal_open(fifo, &j), -EPERM);
        close(rd);

        cr_assert_eq(ob_journal_open(tmpdir, &j), -EISDIR);
        cr_assert_null(j);
}

Test(journal, free_accepts_null)
{
        ob_journal_free(NULL);
}

/* ---- errors -------------------------------------------------------------- */

Test(journal, a_line_cut_by_the_file_size_limit_returns_efbig_and_the_next_line_starts_clean)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        append_ok(j, &full);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        size_t line = (size_t)st.st_size;
        signal(SIGXFSZ, SIG_IGN);
        /* Room for half of the next line, and not for the newline that would
         * end it. */
        struct rlimit rl = {.rlim_cur = (rlim_t)(line + line / 2), .rlim_max = RLIM_INFINITY};
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
        cr_assert_eq(ob_journal_append(j, &full), -EFBIG);
        cr_assert_eq(ob_journal_append(j, &full), -EFBIG);
        rl.rlim_cur = RLIM_INFINITY;
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
        append_ok(j, &full);
        append_ok(j, &full);
        ob_journal_free(j);

        size_t len;
        char *s = slurp(path, &len);
        cr_assert_eq(len, line + line / 2 + 1 + 2 * line, "line, half a line, its newline, two lines");
        cr_assert_eq(memcmp(s, s + line, line / 2), 0, "the torn half is the start of the line");
        cr_assert_eq(s[line + line / 2], '\n');
        cr_assert_eq(memcmp(s, s + line + line / 2 + 1, line), 0);
        cr_assert_eq(memcmp(s, s + 2 * line + line / 2 + 1, line), 0);
        free(s);
}

/* Needs root and a kernel that lets this process mount a tmpfs; skipped otherwise. */
Test(journal, a_full_disk_gives_enospc_and_the_next_line_starts_clean_once_there_is_room)
{
        snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s/small", tmpdir);
        cr_assert_eq(mkdir(tmpfs_dir, 0700), 0);
        if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, "size=64k") < 0)
                cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
        tmpfs_mounted = true;
        char path[400], filler[400];
        snprintf(path, sizeof(path), "%s/audit.jsonl", tmpfs_dir);
        snprintf(filler, sizeof(filler), "%s/filler", tmpfs_dir);
        char *space = repeat("f", 16384);
        put_file(filler, space, 0600);
        free(space);

        struct ob_journal *j = open_journal(path);
        char *err = repeat("e", 3000);
        struct ob_journal_entry e = full;
        e.error = err;
        int r = 0, i;
        for (i = 0; i < 100 && r == 0; i++)
                r = ob_journal_append(j, &e);
        cr_assert(r == -ENOSPC || r == -EIO, "got %s after %d lines", ob_strerror(r), i);
        cr_assert_lt(i, 100);
        cr_assert_eq(ob_journal_append(j, &full), -ENOSPC);

        cr_assert_eq(unlink(filler), 0);
        append_ok(j, &full);
        cr_assert_eq(ob_journal_sync(j), 0);
        ob_journal_free(j);
        free(err);

        /* Every line is whole but one (the torn one), and the last is whole. */
        size_t len;
        char *s = slurp(path, &len);
        cr_assert_eq(s[len - 1], '\n');
        int whole = 0, torn = 0;
        for (char *p = s; *p;) {
                char *nl = strchr(p, '\n');
                cr_assert_not_null(nl);
                if (nl[-1] == '}')
                        whole++;
                else
                        torn++;
                p = nl + 1;
        }
        free(s);
        cr_assert_eq(torn, 1);
        cr_assert_eq(whole, i);
}

/* ---- concurrency --------------------------------------------------------- */

static void appender(const char *path, const char *who)
{
        struct ob_journal *j = NULL;
        if (ob_journal_open(path, &j) < 0)
                _exit(2);
        /* Lines of several KiB make a torn or interleaved write visible. */
        char *err = malloc(6000);
        if (!err)
                _exit(3);
        memset(err, who[0], 5999);
        err[5999] = '\0';
        for (int i = 1; i <= 1000; i++) {
                char key[32];
                snprintf(key, sizeof(key), "%s-%d", who, i);
                struct ob_journal_entry e = {.event = "outcome",
                                             .time_ms = T0,
                                             .account_id = who,
                                             .idempotency_key = key,
                                             .attempt = i,
                                             .result = "failed",
                                             .error = err,
                                             .duration_ms = i};
                if (ob_journal_append(j, &e) < 0)
                        _exit(4);
        }
        free(err);
        ob_journal_free(j);
        _exit(0);
}

Test(journal, two_processes_appending_1000_lines_each_give_2000_intact_lines)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path); /* created before either child starts */
        ob_journal_free(j);
        pid_t pids[2];
        const char *who[2] = {"A", "B"};
        for (int k = 0; k < 2; k++) {
                /* No cr_assert in a child: with --full-stats even a passing
                 * one talks to the runner over a socket the child shares. */
                pids[k] = fork();
                if (pids[k] == 0)
                        appender(path, who[k]);
        }
        cr_assert(pids[0] > 0 && pids[1] > 0, "fork failed");
        for (int k = 0; k < 2; k++) {
                int st;
                cr_assert_eq(waitpid(pids[k], &st, 0), pids[k]);
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "appender %s failed: %d", who[k], st);
        }
        cr_assert_eq(py_check(path, "all(o[\"error\"] == o[\"account_id\"] * 5999 for o in objs) and "
                                    "[o[\"attempt\"] for o in objs if o[\"account_id\"] == \"A\"] == "
                                    "list(range(1, 1001)) and "
                                    "[o[\"attempt\"] for o in objs if o[\"account_id\"] == \"B\"] == "
                                    "list(range(1, 1001))"),
                     2000);
}

Test(journal, held_lines_reach_the_file_only_at_flush_in_one_write_and_whole)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        ob_journal_hold(j, true);
        append_ok(j, &(struct ob_journal_entry){.event = "attempt", .time_ms = T0});
        append_ok(j, &(struct ob_journal_entry){.event = "outcome", .time_ms = T0, .result = "done"});
        size_t n = 0;
        free(slurp(path, &n));
        cr_assert_eq(n, 0, "held lines are not written before a flush");
        cr_assert_eq(ob_journal_flush(j), 0);
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs] == [\"attempt\", \"outcome\"]"), 2);
        cr_assert_eq(ob_journal_flush(j), 0, "flushing nothing is fine");
        ob_journal_hold(j, false);
        append_ok(j, &(struct ob_journal_entry){.event = "third", .time_ms = T0});
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs][-1] == \"third\""), 3);
        ob_journal_free(j);
}

Test(journal, held_lines_are_written_by_sync_reopen_and_free)
{
        const char *path = path_in("audit.jsonl");
        const char *rotated = path_in("audit.jsonl.1");
        struct ob_journal *j = open_journal(path);
        ob_journal_hold(j, true);
        append_ok(j, &(struct ob_journal_entry){.event = "synced", .time_ms = T0});
        cr_assert_eq(ob_journal_sync(j), 0);
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs] == [\"synced\"]"), 1);
        append_ok(j, &(struct ob_journal_entry){.event = "before-rotation", .time_ms = T0});
        cr_assert_eq(rename(path, rotated), 0);
        cr_assert_eq(ob_journal_reopen(j), 0);
        append_ok(j, &(struct ob_journal_entry){.event = "after-rotation", .time_ms = T0});
        ob_journal_free(j);
        cr_assert_eq(py_check(rotated, "[o[\"event\"] for o in objs] == [\"synced\", \"before-rotation\"]"), 2);
        cr_assert_eq(py_check(path, "[o[\"event\"] for o in objs] == [\"after-rotation\"]"), 1);
}

Test(journal, held_lines_past_the_hold_limit_are_written_whole_without_a_flush)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        ob_journal_hold(j, true);
        size_t lines = 0;
        for (size_t n = 0; n < 2 * OB_JOURNAL_HOLD_MAX;) {
                append_ok(j, &(struct ob_journal_entry){.event = "attempt", .time_ms = T0, .action = "revoke"});
                lines++;
                n += 60;
        }
        size_t size = 0;
        free(slurp(path, &size));
        cr_assert_gt(size, 0, "the hold is bounded");
        cr_assert_leq(size, (lines - 1) * 100);
        ob_journal_free(j);
        cr_assert_eq(py_check(path, "all(o[\"event\"] == \"attempt\" for o in objs)"), (int)lines);
}

/* Runs of plain bytes and escapes around the budget: the escaped value is
 * cut between two characters, keeps a prefix of the value, and the cut is
 * made only when the whole value does not fit. */
Test(journal, plain_runs_and_escapes_are_cut_at_the_same_place_around_the_budget)
{
        const char *path = path_in("audit.jsonl");
        struct ob_journal *j = open_journal(path);
        size_t lines = 0;
        for (size_t len = OB_JOURNAL_FIELD_MAX - 8; len <= OB_JOURNAL_FIELD_MAX + 8; len++) {
                for (size_t at = len - 6; at < len; at++) {
                        char *v = repeat("p", len);
                        v[at] = '"'; /* two bytes escaped */
                        append_ok(j, &(struct ob_journal_entry){.event = "a", .time_ms = T0, .username = v});
                        lines++;
                        free(v);
                }
        }
        ob_journal_free(j);
        char expr[512];
        snprintf(expr, sizeof(expr),
                 "all((lambda u, m: (len(json.dumps(u, ensure_ascii=False)) - 2 <= m) and "
                 "(not u.endswith(\"...\") or len(json.dumps(u[:-3], ensure_ascii=False)) - 2 + 3 <= m)) "
                 "(o[\"username\"], %d) for o in objs) and "
                 "sum(o[\"username\"].endswith(\"...\") for o in objs) > 0 and "
                 "sum(not o[\"username\"].endswith(\"...\") for o in objs) > 0",
                 OB_JOURNAL_FIELD_MAX);
        cr_assert_eq(py_check(path, expr), (int)lines);
}
