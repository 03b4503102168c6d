/* fuzz_snapshot.c: the state store's snapshot codec (agent/snapshot.h).
 *
 * The input is decoded as is (the checksum almost always refuses it), then
 * once more with the checksum over its first n - 4 bytes written into its
 * last four, so the fuzzer reaches the structure behind it. Oracle: for every
 * account that decodes, encode -> decode -> encode gives identical bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "fuzz_support.h"
#include "snapshot.h"

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 16777619u;
        }
        return h;
}

static void check_round_trip(const struct ob_account *a)
{
        struct ob_buf e1, e2;
        struct ob_account *b = NULL;
        int r;

        ob_buf_init(&e1);
        ob_buf_init(&e2);
        r = ob_snapshot_encode(a, &e1);
        if (r == -ENOMEM)
                goto out;
        if (r < 0)
                ob_fuzz_fail("snapshot: a decoded account does not encode (%d)", r);
        r = ob_snapshot_decode(e1.data, e1.len, &b);
        if (r == -ENOMEM)
                goto out;
        if (r < 0) {
                ob_fuzz_dump("encoding", e1.data, e1.len);
                ob_fuzz_fail("snapshot: an encoding does not decode (%d)", r);
        }
        r = ob_snapshot_encode(b, &e2);
        if (r == -ENOMEM)
                goto out;
        if (r < 0 || e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0) {
                ob_fuzz_dump("first encoding", e1.data, e1.len);
                ob_fuzz_dump("second encoding", e2.data, e2.len);
                ob_fuzz_fail("snapshot: encode -> decode -> encode changed the bytes");
        }
out:
        ob_account_free(b);
        ob_buf_free(&e1);
        ob_buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ob_account *a = NULL;
        uint8_t *fixed = NULL;

        if (ob_snapshot_decode(data, size, &a) == 0)
                check_round_trip(a);
        ob_account_free(a);
        a = NULL;

        /* The same bytes with a valid checksum. */
        if (size < 8)
                goto out;
        fixed = malloc(size);
        if (!fixed)
                goto out;
        memcpy(fixed, data, size);
        uint32_t h = fnv1a(fixed, size - 4);
        for (int i = 0; i < 4; i++)
                fixed[size - 4 + i] = (uint8_t)(h >> (8 * i));
        if (ob_snapshot_decode(fixed, size, &a) == 0)
                check_round_trip(a);
out:
        ob_account_free(a);
        free(fixed);
        return 0;
}
