/* fuzz_metrics.c: the health and metrics endpoint's request parser
 * (ob_metrics_parse_request, agent/metrics.h), which reads what any local
 * client sends to service.listen.
 *
 * Byte 0: bit 0 set, the bytes fill the connection's buffer (max = their
 * length, as when the client sent OB_METRICS_REQUEST_MAX bytes), else max
 * is OB_METRICS_REQUEST_MAX (the bytes are cut to it); bits 1-7 choose a
 * prefix, parsed too. The rest is what the client sent. No crash, no read
 * outside the bytes (ASan). Oracles: the status is 0, 200, 400, 405 or 431;
 * 0 only while the buffer is not full, 431 only when it is; a 200 names a
 * GET or HEAD as the request line starts, has a blank line after the
 * request line, and its path lies inside the request line's target: it
 * starts with '/', holds no space, control character, DEL or '?' and ends
 * at the target's end or its '?'. A decision once taken on a prefix stays
 * the same when more bytes come.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "metrics.h"

static void check_accepted(const char *buf, size_t len, bool head, const char *path, size_t plen)
{
        const char *nl = memchr(buf, '\n', len);
        if (!nl)
                ob_fuzz_fail("metrics: a request without a line end accepted");
        size_t mlen = head ? 5 : 4;
        if (len < mlen || memcmp(buf, head ? "HEAD " : "GET ", mlen) != 0)
                ob_fuzz_fail("metrics: accepted as %s", head ? "HEAD" : "GET");
        if (!path || path != buf + mlen || plen == 0 || path + plen > nl)
                ob_fuzz_fail("metrics: the path (%zu bytes) lies outside the request line's target", plen);
        if (path[0] != '/')
                ob_fuzz_fail("metrics: the path does not start with '/'");
        for (size_t i = 0; i < plen; i++)
                if ((unsigned char)path[i] <= ' ' || (unsigned char)path[i] >= 0x7f || path[i] == '?') {
                        ob_fuzz_dump("path", path, plen);
                        ob_fuzz_fail("metrics: byte %zu of the path is %#x", i, (unsigned char)path[i]);
                }
        if (path[plen] != ' ' && path[plen] != '?')
                ob_fuzz_fail("metrics: the path ends before the target does");
        size_t rest = len - (size_t)(nl - buf);
        if (!ob_fuzz_memmem(nl, rest, "\n\n", 2) && !ob_fuzz_memmem(nl, rest, "\n\r\n", 3))
                ob_fuzz_fail("metrics: accepted without the blank line that ends the headers");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        bool full = data[0] & 1;
        size_t n = size - 1;
        if (n > OB_METRICS_REQUEST_MAX)
                n = OB_METRICS_REQUEST_MAX;
        size_t max = full ? n : OB_METRICS_REQUEST_MAX;
        /* A copy of exactly the bytes: ASan sees any read past them. */
        char *buf = malloc(n ? n : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, n);

        bool head = false;
        const char *path = NULL;
        size_t plen = 0;
        int status = ob_metrics_parse_request(buf, n, max, &head, &path, &plen);
        if (status != 0 && status != 200 && status != 400 && status != 405 && status != 431)
                ob_fuzz_fail("metrics: status %d", status);
        if (status == 0 && n >= max)
                ob_fuzz_fail("metrics: waits for more with a full buffer (%zu bytes)", n);
        if (status == 431 && n < max)
                ob_fuzz_fail("metrics: 431 with %zu of %zu bytes", n, max);
        if (status == 200)
                check_accepted(buf, n, head, path, plen);

        /* A prefix, as a first read of the same request. */
        size_t k = n * (size_t)(data[0] >> 1) / 128;
        if (k < n) {
                char *pre = malloc(k ? k : 1);
                if (!pre) {
                        free(buf);
                        return 0;
                }
                memcpy(pre, buf, k);
                bool phead = false;
                const char *ppath = NULL;
                size_t pplen = 0;
                int ps = ob_metrics_parse_request(pre, k, max, &phead, &ppath, &pplen);
                if (ps != 0 && (ps != status || (ps == 200 && (phead != head || pplen != plen ||
                                                               ppath - pre != path - buf)))) {
                        ob_fuzz_dump("request", buf, n);
                        ob_fuzz_fail("metrics: %d after %zu bytes, %d after %zu", ps, k, status, n);
                }
                free(pre);
        }
        free(buf);
        return 0;
}
