/* fuzz_dirsync.c: the parser of AD's DirSync response control
 * (ob_dir_dirsync_parse_reply, agent/directory.h), which reads what a
 * domain controller sends at the end of each DirSync page.
 *
 * The whole input is the control's value. No crash, no read outside the
 * input (ASan). Oracles: an accepted value holds at least the tags and
 * lengths of a SEQUENCE, two INTEGERs and an OCTET STRING (8 bytes); the
 * cookie lies inside the input and is shorter than it by those 8 bytes; a
 * copy of the value at another address parses the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* A copy of exactly the value: ASan sees any read past it. */
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        bool more;
        const char *cookie;
        size_t cookie_len;
        if (ob_dir_dirsync_parse_reply(buf, size, &more, &cookie, &cookie_len) == 0) {
                const uint8_t *c = (const uint8_t *)cookie;
                if (size < 8)
                        ob_fuzz_fail("dirsync: a %zu-byte value accepted", size);
                if (!c || c < buf || c + cookie_len > buf + size)
                        ob_fuzz_fail("dirsync: cookie (%zu bytes) lies outside the input", cookie_len);
                if (cookie_len > size - 8)
                        ob_fuzz_fail("dirsync: a %zu-byte cookie in %zu bytes", cookie_len, size);
                /* The same answer from another copy, offset by one byte. */
                uint8_t *again = malloc(size + 1);
                if (!again) {
                        free(buf);
                        return 0;
                }
                memcpy(again + 1, buf, size);
                bool more2;
                const char *cookie2;
                size_t cookie_len2;
                if (ob_dir_dirsync_parse_reply(again + 1, size, &more2, &cookie2, &cookie_len2) != 0 ||
                    more2 != more || cookie_len2 != cookie_len ||
                    (const uint8_t *)cookie2 - (again + 1) != c - buf)
                        ob_fuzz_fail("dirsync: a copy of the value parses otherwise");
                free(again);
        }
        free(buf);
        return 0;
}
