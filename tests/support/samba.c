/* samba.c: a private Samba AD DC for integration tests, and the harness
 * plumbing it shares with the 389-DS one. Scripts run through ob_test_run
 * (argv, never a shell, killed after a time limit). */
#define _GNU_SOURCE
#include "samba.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

#ifndef OB_SOURCE_DIR
#error "OB_SOURCE_DIR must be defined (tests/support is built by cmake/add_tests.cmake)"
#endif

#define SAMBA_SH OB_SOURCE_DIR "/tests/harness/samba.sh"
#define SAMBA_ENV "OB_TEST_SAMBA_DIR"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void rm_rf(const char *dir)
{
        if (dir && strncmp(dir, "/tmp/ob-", 8) == 0)
                nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int script(const char *path, const char *verb, const char *dir, int timeout_s)
{
        const char *argv[] = {path, verb, dir, NULL};
        char *err = NULL;
        int r = ob_test_run(argv, timeout_s, NULL, &err);
        if (r != 0) {
                fprintf(stderr, "%s %s %s: exit status %d\n%s", path, verb, dir, r, err ? err : "");
                free(err);
                return -ECHILD;
        }
        if (err && *err)
                fputs(err, stderr); /* the script's timing line */
        free(err);
        return 0;
}

int ob_test_dirsrv_share(const char *path, const char *name, const char *envvar, int timeout_s)
{
        char dir[64], pid[32];
        snprintf(dir, sizeof(dir), "/tmp/ob-%s-XXXXXX", name);
        if (!mkdtemp(dir))
                return -errno;
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("OB_SLAPD_WATCH_PID", pid, 1);
        int r = script(path, "start", dir, timeout_s);
        unsetenv("OB_SLAPD_WATCH_PID");
        if (r < 0) {
                script(path, "stop", dir, 30);
                rm_rf(dir);
                unsetenv(envvar);
                return r;
        }
        return setenv(envvar, dir, 1) < 0 ? -errno : 0;
}

void ob_test_dirsrv_unshare(const char *path, const char *envvar)
{
        const char *d = getenv(envvar);
        if (!d || !*d)
                return;
        char dir[256];
        snprintf(dir, sizeof(dir), "%s", d);
        script(path, "stop", dir, 30);
        rm_rf(dir);
        unsetenv(envvar);
}

static int copy(char *dst, size_t size, const char *src)
{
        size_t n = strlen(src);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}

int ob_test_dirsrv_attach(const char *envvar, struct ob_test_dirsrv *s)
{
        const char *dir = getenv(envvar);
        memset(s, 0, sizeof(*s));
        if (!dir || !*dir)
                return -ENOENT;
        struct {
                const char *key;
                char *dst;
                size_t size;
        } map[] = {
                {"OB_LDAP_URI", s->ldap_uri, sizeof(s->ldap_uri)},
                {"OB_LDAPS_URI", s->ldaps_uri, sizeof(s->ldaps_uri)},
                {"OB_CA_FILE", s->ca_file, sizeof(s->ca_file)},
                {"OB_OTHER_CA_FILE", s->other_ca_file, sizeof(s->other_ca_file)},
                {"OB_SUFFIX", s->suffix, sizeof(s->suffix)},
                {"OB_BASE", s->base, sizeof(s->base)},
                {"OB_IPA_BASE", s->ipa_base, sizeof(s->ipa_base)},
                {"OB_BIND_DN", s->bind_dn, sizeof(s->bind_dn)},
                {"OB_BIND_PW_FILE", s->bind_pw_file, sizeof(s->bind_pw_file)},
                {"OB_ADMIN_DN", s->admin_dn, sizeof(s->admin_dn)},
                {"OB_ADMIN_PW_FILE", s->admin_pw_file, sizeof(s->admin_pw_file)},
                {"OB_SAM_LDB", s->sam_ldb, sizeof(s->sam_ldb)},
        };
        char path[512], line[1024];
        snprintf(path, sizeof(path), "%s/env", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        int r = 0;
        while (r == 0 && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                if (strcmp(line, "OB_SAMBA_PID") == 0 || strcmp(line, "OB_DS389_PID") == 0)
                        s->pid = atoi(eq + 1);
                for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                        if (strcmp(line, map[i].key) == 0)
                                r = copy(map[i].dst, map[i].size, eq + 1);
        }
        fclose(f);
        if (r < 0)
                return r;
        if (!s->ldap_uri[0] || !s->base[0] || !s->bind_dn[0] || s->pid <= 0)
                return -EBADMSG;
        snprintf(s->manifest, sizeof(s->manifest), "%s/manifest.json", dir);
        snprintf(s->ipa_manifest, sizeof(s->ipa_manifest), "%s/ipa-manifest.json", dir);
        return copy(s->dir, sizeof(s->dir), dir);
}

int ob_test_dirsrv_modify(const struct ob_test_dirsrv *s, const char *ldif, char **ret_err)
{
        char path[] = "/tmp/ob-ldif-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return -errno;
        size_t n = strlen(ldif);
        if (write(fd, ldif, n) != (ssize_t)n) {
                close(fd);
                unlink(path);
                return -EIO;
        }
        close(fd);
        setenv("LDAPTLS_CACERT", s->ca_file, 1);
        const char *argv[] = {"/usr/bin/ldapmodify", "-a", "-x", "-ZZ", "-H", s->ldap_uri, "-D", s->admin_dn,
                              "-y", s->admin_pw_file, "-o", "nettimeout=10", "-f", path, NULL};
        char *err = NULL;
        int r = ob_test_run(argv, 30, NULL, &err);
        unlink(path);
        if (ret_err)
                *ret_err = err;
        else
                free(err);
        return r;
}

char *ob_test_dirsrv_search(const struct ob_test_dirsrv *s, const char *base, const char *filter, const char *attrs)
{
        const char *argv[48] = {"/usr/bin/ldapsearch", "-LLL", "-x", "-ZZ", "-H", s->ldap_uri, "-D", s->admin_dn,
                                "-y", s->admin_pw_file, "-o", "ldif-wrap=no", "-o", "nettimeout=10", "-l", "10",
                                "-b", base, filter ? filter : "(objectClass=*)"};
        size_t n = 19;
        char *copy_attrs = attrs ? strdup(attrs) : NULL;
        char *save = NULL;
        for (char *t = copy_attrs ? strtok_r(copy_attrs, " ,", &save) : NULL; t && n < 47;
             t = strtok_r(NULL, " ,", &save))
                argv[n++] = t;
        argv[n] = NULL;
        setenv("LDAPTLS_CACERT", s->ca_file, 1);
        char *out = NULL, *err = NULL;
        int r = ob_test_run(argv, 30, &out, &err);
        free(copy_attrs);
        if (r != 0) {
                fprintf(stderr, "ldapsearch -b %s %s: exit status %d: %s\n", base, filter ? filter : "", r,
                        err ? err : "");
                free(out);
                out = NULL;
        }
        free(err);
        return out;
}

int ob_test_dirsrv_bind(const struct ob_test_dirsrv *s, const char *dn, const char *password, char **ret_err)
{
        setenv("LDAPTLS_CACERT", s->ca_file, 1);
        const char *argv[] = {"/usr/bin/ldapsearch", "-LLL", "-x", "-ZZ", "-H", s->ldap_uri, "-D", dn,
                              "-w", password, "-o", "nettimeout=10", "-s", "base", "-b", "", "(objectClass=*)",
                              "1.1", NULL};
        return ob_test_run(argv, 30, NULL, ret_err);
}

int ob_test_samba_share(void)
{
        /* Provision ~6 s and start ~1 s here; slower machines get 3 minutes. */
        int r = ob_test_dirsrv_share(SAMBA_SH, "samba", SAMBA_ENV, 180);
        if (r < 0)
                fprintf(stderr, "ob_test_samba_share: cannot start Samba: %s\n", strerror(-r));
        return r;
}

int ob_test_samba_share_crowd(int members)
{
        char n[16];
        snprintf(n, sizeof(n), "%d", members);
        setenv("OB_SAMBA_CROWD", n, 1);
        /* ~40 contacts a second on a loaded machine, on top of the start. */
        int r = ob_test_dirsrv_share(SAMBA_SH, "samba", SAMBA_ENV, 180 + members / 10);
        unsetenv("OB_SAMBA_CROWD");
        if (r < 0)
                fprintf(stderr, "ob_test_samba_share_crowd: cannot start Samba: %s\n", strerror(-r));
        return r;
}

int ob_test_samba_attach(struct ob_test_dirsrv *s)
{
        return ob_test_dirsrv_attach(SAMBA_ENV, s);
}

void ob_test_samba_unshare(void)
{
        ob_test_dirsrv_unshare(SAMBA_SH, SAMBA_ENV);
}
