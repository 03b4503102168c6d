/* fuzz_sync.c: the RFC 4533 message parsers (agent/directory.h), which read
 * what a directory server sends on the change feed.
 *
 * Byte 0 chooses the parser (even: a Sync Info value, odd: a Sync State
 * control value); the rest is the BER value. No crash, no read outside the
 * input (ASan). Oracles: whatever a parser returns points inside the input;
 * a state is 0..3 and an entryUUID 16 bytes in; a syncIdSet counts its
 * UUIDs and the first one lies inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "fuzz_support.h"

static void inside(const void *p, size_t len, const uint8_t *buf, size_t size, const char *what)
{
        const uint8_t *q = p;
        if (!p)
                return;
        if (q < buf || q + len > buf + size)
                ob_fuzz_fail("sync: %s (%zu bytes) lies outside the input", what, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        /* A copy of exactly the value: ASan sees any read past it. */
        size_t n = size - 1;
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, n);
        if (data[0] % 2 == 0) {
                struct ob_sync_info info;
                if (ob_dir_sync_parse_info(buf, n, &info) == 0) {
                        inside(info.cookie, info.cookie_len, buf, n, "cookie");
                        if (info.kind == OB_SYNC_INFO_ID_SET && info.nuuids > 0)
                                inside(info.first_uuid, 16, buf, n, "first UUID");
                        if (info.nuuids > n / 16 + 1)
                                ob_fuzz_fail("sync: %zu UUIDs in %zu bytes", info.nuuids, n);
                }
        } else {
                int state;
                const unsigned char *uuid;
                const char *cookie;
                size_t cookie_len;
                if (ob_dir_sync_parse_state(buf, n, &state, &uuid, &cookie, &cookie_len) == 0) {
                        if (state < 0 || state > 3)
                                ob_fuzz_fail("sync: state %d", state);
                        inside(uuid, 16, buf, n, "entryUUID");
                        inside(cookie, cookie_len, buf, n, "cookie");
                }
        }
        free(buf);
        return 0;
}
