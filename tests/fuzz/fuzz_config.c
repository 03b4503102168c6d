/* fuzz_config.c: the configuration loader (agent/config.h) on hostile YAML.
 *
 * Byte 0 selects the mode; the rest is a file in memory (memfd_create, read
 * through its /proc/self/fd/N path, so nothing touches the disk):
 *   even: the main configuration file;
 *   odd:  a mapping file, named by a fixed small main configuration.
 * Mapping names resolve in the source tree's mappings/.
 *
 * Oracles: the loader returns 0 with a configuration or -OB_ECONFIG/-ENOMEM
 * with a non-empty, NUL-terminated message (never a partial configuration);
 * no crash, leak or undefined behaviour on the way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_support.h"

static const char main_for_mapping[] =
        "directory:\n"
        "  uri: ldaps://127.0.0.1:636\n"
        "  base: ou=people,dc=example,dc=org\n"
        "mappings: [\"%s\"]\n";

static void check_load(const char *path)
{
        struct ob_config *c = NULL;
        struct ob_config_error err;
        int r = ob_config_load(path, &c, &err);
        if (r == 0) {
                if (!c)
                        ob_fuzz_fail("config: success without a configuration");
                ob_config_free(c);
                return;
        }
        if (r != -OB_ECONFIG && r != -ENOMEM)
                ob_fuzz_fail("config: unexpected error %d", r);
        if (!memchr(err.message, '\0', sizeof(err.message)) || !memchr(err.line, '\0', sizeof(err.line)))
                ob_fuzz_fail("config: the error is not NUL-terminated");
        if (r == -OB_ECONFIG && err.message[0] == '\0')
                ob_fuzz_fail("config: -OB_ECONFIG without a message");
        /* Printing must not crash either; the output goes nowhere. */
        FILE *f = fopen("/dev/null", "w");
        if (f) {
                ob_config_error_print(&err, f);
                fclose(f);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool init;
        char path[64], mpath[64];
        int fd = -1, mfd = -1;
        char *main_text = NULL;

        if (!init) {
                setenv("OFFBOARD_MAPPINGS_DIR", OB_FUZZ_MAPPINGS_DIR, 1);
                init = true;
        }
        if (size < 1)
                return 0;
        fd = ob_fuzz_memfd("fuzz-input", data + 1, size - 1, path, sizeof(path));
        if (fd < 0)
                goto out;
        if (!(data[0] & 1)) {
                check_load(path);
                goto out;
        }
        int n = asprintf(&main_text, main_for_mapping, path);
        if (n < 0) {
                main_text = NULL;
                goto out;
        }
        mfd = ob_fuzz_memfd("fuzz-main", main_text, (size_t)n, mpath, sizeof(mpath));
        if (mfd < 0)
                goto out;
        check_load(mpath);
out:
        if (fd >= 0)
                close(fd);
        if (mfd >= 0)
                close(mfd);
        free(main_text);
        return 0;
}
