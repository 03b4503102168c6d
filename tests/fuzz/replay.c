/* replay.c: runs a harness on its corpus without libFuzzer.
 *
 *     fuzz_replay_NAME DIR|FILE...
 *
 * Calls LLVMFuzzerTestOneInput on every regular file of each directory (in
 * name order) and on each file given, then on a few built-in inputs.
 * Built with the ordinary compiler and the project's sanitizers, and run by
 * CTest, so every reproducer ever committed keeps being checked. An oracle
 * failure aborts; the file being replayed is named on stderr first.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_support.h"

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        struct ob_buf b;
        ob_buf_init(&b);
        char chunk[65536];
        size_t k;
        int r = 0;
        while (r == 0 && (k = fread(chunk, 1, sizeof(chunk), f)) > 0)
                r = ob_buf_add(&b, chunk, k);
        if (ferror(f))
                r = -EIO;
        fclose(f);
        if (r == 0) {
                fprintf(stderr, "replay %s\n", path);
                /* A copy of exactly the file's size, so ASan sees reads past the end. */
                uint8_t *copy = malloc(b.len ? b.len : 1);
                if (!copy) {
                        r = -ENOMEM;
                } else {
                        memcpy(copy, b.data ? b.data : "", b.len);
                        LLVMFuzzerTestOneInput(copy, b.len);
                        free(copy);
                }
        }
        ob_buf_free(&b);
        return r;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, size_t *count)
{
        struct dirent **list;
        int n = scandir(dir, &list, NULL, by_name);
        int r = 0;
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", dir, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                char *path = NULL;
                struct stat st;
                if (list[i]->d_name[0] != '.' && asprintf(&path, "%s/%s", dir, list[i]->d_name) >= 0 &&
                    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (replay_file(path) < 0)
                                r = -EIO;
                        else
                                (*count)++;
                }
                free(path);
                free(list[i]);
        }
        free(list);
        return r;
}

int main(int argc, char **argv)
{
        static const struct {
                const char *p;
                size_t n;
        } builtin[] = {
                {"", 0}, {"\0", 1}, {"\xff", 1}, {"a", 1}, {"\n\n\n\n\n\n\n\n", 8},
                {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16},
                {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32},
        };
        size_t count = 0;
        int r = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        r = -errno;
                } else if (S_ISDIR(st.st_mode)) {
                        if (replay_dir(argv[i], &count) < 0)
                                r = -EIO;
                } else if (replay_file(argv[i]) < 0) {
                        r = -EIO;
                } else {
                        count++;
                }
        }
        for (size_t i = 0; i < OB_ELEMENTSOF(builtin); i++) {
                uint8_t *copy = malloc(builtin[i].n ? builtin[i].n : 1);
                if (!copy)
                        return 1;
                memcpy(copy, builtin[i].p, builtin[i].n);
                LLVMFuzzerTestOneInput(copy, builtin[i].n);
                free(copy);
                count++;
        }
        fprintf(stderr, "%zu inputs replayed%s\n", count, r < 0 ? ", some could not be read" : "");
        return r < 0 ? 1 : 0;
}
