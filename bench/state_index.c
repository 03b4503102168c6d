/* bench/state_index.c: how long the state store takes to fill, open (with its
 * integrity check) and index N accounts, and how much memory the index takes.
 * Not a test. Build by hand from the project root:
 *
 *   gcc -std=gnu11 -O2 -Iagent bench/state_index.c agent/state.c agent/util.c \
 *       agent/log.c agent/account.c -lsqlite3 -o /tmp/state_index
 *   /tmp/state_index [DIR] [N]      (defaults: a new directory under /tmp, 100000)
 *
 * Each account gets a UUID id and a snapshot of about 20 attributes (~900
 * bytes), roughly what an inetOrgPerson with a few groups looks like.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "util.h"

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this process (user + system), to tell our cost from waiting
 * on other processes or on fsync. */
static double cpu_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void uuid_for(unsigned i, char out[37])
{
        unsigned long long x = (i + 1) * 0x9e3779b97f4a7c15ULL;
        snprintf(out, 37, "%08llx-%04llx-4%03llx-8%03llx-%012llx", x >> 32, (x >> 16) & 0xffff, x & 0xfff,
                 (x >> 20) & 0xfff, (x ^ (x >> 7)) & 0xffffffffffffULL);
}

static int die(const char *what, int r, const char *msg)
{
        fprintf(stderr, "%s: %s: %s\n", what, ob_strerror(r), msg);
        exit(1);
}

static int count_unseen(struct ob_index_entry *e, const char *id, void *ud)
{
        (void)e;
        (*(size_t *)ud)++;
        return 0;
}

int main(int argc, char **argv)
{
        char dir[256] = "/tmp/ob-bench-state-XXXXXX";
        unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
        if (argc > 1)
                snprintf(dir, sizeof(dir), "%s", argv[1]);
        else if (!mkdtemp(dir))
                return 1;
        char path[512];
        snprintf(path, sizeof(path), "%s/state.db", dir);
        unlink(path);

        struct ob_state *s = NULL;
        int r = ob_state_open(path, false, &s);
        if (r < 0)
                die("open", r, ob_state_open_errmsg());
        double t0 = now_ms(), c0 = cpu_ms();
        const unsigned per_tx = 1000;
        for (unsigned i = 0; i < n; i++) {
                char id[37], dn[96], v[128];
                if (i % per_tx == 0 && (r = ob_state_begin(s)) < 0)
                        die("begin", r, ob_state_errmsg(s));
                uuid_for(i, id);
                snprintf(dn, sizeof(dn), "uid=user%06u,ou=people,dc=example,dc=org", i);
                struct ob_account *a = ob_account_new();
                a->id = strdup(id);
                a->dn = strdup(dn);
                snprintf(v, sizeof(v), "user%06u", i);
                ob_account_add(a, "uid", v, strlen(v));
                snprintf(v, sizeof(v), "user%06u@example.org", i);
                ob_account_add(a, "mail", v, strlen(v));
                ob_account_add(a, "cn", "Firstname Lastname", 18);
                ob_account_add(a, "sn", "Lastname", 8);
                ob_account_add(a, "givenName", "Firstname", 9);
                ob_account_add(a, "displayName", "Firstname Lastname (Department)", 31);
                ob_account_add(a, "title", "Senior Something Engineer", 25);
                ob_account_add(a, "departmentNumber", "4711", 4);
                ob_account_add(a, "employeeNumber", v, 10);
                ob_account_add(a, "employeeType", "staff", 5);
                ob_account_add(a, "manager", "uid=boss,ou=people,dc=example,dc=org", 36);
                ob_account_add(a, "entryUUID", id, 36);
                ob_account_add(a, "pwdChangedTime", "20240101120000Z", 15);
                ob_account_add(a, "telephoneNumber", "+49 30 1234567", 14);
                for (int g = 0; g < 6; g++) {
                        snprintf(v, sizeof(v), "cn=group-%d-%u,ou=groups,dc=example,dc=org", g, i % 50);
                        ob_account_add(a, "memberOf", v, strlen(v));
                }
                struct ob_record rec = {.id = id,
                                        .dn = dn,
                                        .username = a->attrs[0].vals[0].data,
                                        .status = 1,
                                        .status_since = 1700000000,
                                        .digest = ob_account_digest(a, NULL),
                                        .generation = 1,
                                        .pending_to = i % 10 == 0 ? 3 : 0};
                if ((r = ob_state_put(s, &rec, a)) < 0)
                        die("put", r, ob_state_errmsg(s));
                ob_account_free(a);
                if ((i % per_tx == per_tx - 1 || i == n - 1) && (r = ob_state_commit(s)) < 0)
                        die("commit", r, ob_state_errmsg(s));
        }
        double t_fill = now_ms() - t0, c_fill = cpu_ms() - c0;
        ob_state_free(s);
        struct stat sb;
        stat(path, &sb);
        printf("accounts:            %u\n", n);
        printf("file size:           %.1f MB (%.0f bytes/account)\n", sb.st_size / 1e6, (double)sb.st_size / n);
        printf("fill:                %.0f ms, %.0f ms CPU (%.0f puts/s, transactions of %u)\n", t_fill, c_fill,
               n / t_fill * 1e3, per_tx);

        for (int ro = 0; ro <= 1; ro++) {
                t0 = now_ms();
                c0 = cpu_ms();
                r = ob_state_open(path, ro, &s);
                double t_open = now_ms() - t0, c_open = cpu_ms() - c0;
                if (r < 0)
                        die("reopen", r, ob_state_open_errmsg());
                printf("open %s:    %.1f ms, %.1f ms CPU (incl. checks)\n", ro ? "read-only " : "read-write", t_open,
                       c_open);
                if (ro)
                        break;
                ob_state_free(s);
        }

        char (*ids)[37] = malloc(2 * (size_t)n * sizeof(*ids));
        if (!ids)
                return 1;
        for (unsigned i = 0; i < 2 * n; i++)
                uuid_for(i, ids[i]);

        struct mallinfo2 m0 = mallinfo2();
        t0 = now_ms();
        c0 = cpu_ms();
        struct ob_index *ix = NULL;
        if ((r = ob_state_load_index(s, &ix)) < 0)
                die("load_index", r, ob_state_errmsg(s));
        double t_load = now_ms() - t0, c_load = cpu_ms() - c0;
        struct mallinfo2 m1 = mallinfo2();
        size_t used = (m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd);
        printf("load_index:          %.1f ms, %.1f ms CPU for %zu entries\n", t_load, c_load, ob_index_size(ix));
        printf("index memory:        %.2f MB (%.1f bytes/entry; malloc'd, incl. hash table)\n", used / 1e6,
               (double)used / ob_index_size(ix));

        t0 = now_ms();
        size_t found = 0;
        for (unsigned i = 0; i < n; i++) {
                struct ob_index_entry *e = ob_index_find(ix, ids[i]);
                if (e && i % 100 != 0) {
                        e->seen = true;
                        found++;
                }
                if (ob_index_find(ix, ids[i + n])) /* a miss */
                        die("find", -EINVAL, "found an id that was never put");
        }
        double t_find = now_ms() - t0;
        printf("find:                %.1f ms for %u hits + %u misses (%.0f ns per lookup)\n", t_find, n, n,
               t_find * 1e6 / (2.0 * n));
        size_t unseen = 0;
        t0 = now_ms();
        ob_index_foreach_unseen(ix, count_unseen, &unseen);
        printf("foreach_unseen:      %.1f ms for %zu unseen (in id order)\n", now_ms() - t0, unseen);
        if (found + unseen != n)
                die("index", -EINVAL, "seen + unseen != accounts");

        ob_index_free(ix);
        ob_state_free(s);

        /* Write-ahead cost: every intent and every outcome is its own
         * durable commit (an fsync of the WAL each). */
        if ((r = ob_state_open(path, false, &s)) < 0)
                die("reopen", r, ob_state_open_errmsg());
        const unsigned nact = n < 2000 ? n : 2000;
        t0 = now_ms();
        c0 = cpu_ms();
        for (unsigned i = 0; i < nact; i++) {
                if ((r = ob_state_action_intent(s, ids[i], 1, "revoke", ids[i], 1)) < 0)
                        die("intent", r, ob_state_errmsg(s));
                if ((r = ob_state_action_outcome(s, ids[i], 1, "revoke", OB_OUTCOME_DONE, 204, NULL, 2)) < 0)
                        die("outcome", r, ob_state_errmsg(s));
        }
        double t_act = now_ms() - t0, c_act = cpu_ms() - c0;
        printf("intent+outcome:      %u pairs in %.0f ms, %.0f ms CPU (%.0f durable commits/s)\n", nact, t_act,
               c_act, 2.0 * nact / t_act * 1e3);
        ob_state_free(s);
        free(ids);
        if (argc <= 1) {
                unlink(path);
                rmdir(dir);
        }
        return 0;
}
