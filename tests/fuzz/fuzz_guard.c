/* fuzz_guard.c: a connector guard's judgement of an application's answer
 * (ob_guard_http_judge, agent/guard_http.h): the status and body any
 * endpoint a guard asks may send.
 *
 * Byte 0 chooses the status (no answer, 200, 204, 404, 409, 500), byte 1
 * the guard: by status only, or a JSON path (count, open.count, a.b.c),
 * and whether 409 blocks; byte 2 is blocks_when.above (signed). The rest is
 * the body. No crash, no read outside the bytes (ASan). Oracles, fail
 * closed: 0 or 1, never anything else; no answer, or a status neither 2xx
 * nor in clear_status (404), holds; a 409 listed as blocking holds; a clear
 * verdict on a 2xx answer read by a JSON path needs a body that is JSON; a
 * reason names the url and is short (it never quotes the body).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "fuzz_support.h"
#include "guard_http.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 3)
                return 0;
        static const long statuses[] = {0, 200, 204, 404, 409, 500, 200, 200};
        static const char *const paths[] = {NULL, "count", "open.count", "a.b.c"};
        long status = statuses[data[0] & 7];
        const char *path = paths[data[1] & 3];
        bool block_409 = data[1] & 4;
        int64_t above = (int8_t)data[2];
        const char *body = (const char *)data + 3;
        size_t len = size - 3;

        long clear[] = {404}, block[] = {409};
        struct ob_guard g = {
                .name = "g",
                .json = (char *)path,
                .json_above = above,
                .clear_status = {.v = clear, .n = 1},
                .block_status = {.v = block, .n = block_409 ? 1 : 0},
        };
        struct ob_response resp = {.status = status, .transport = status == 0};
        if (status == 0)
                strcpy(resp.error, "Connection refused");
        struct ob_http_answer ans = {0};
        ob_buf_init(&ans.body);
        if (ob_buf_add(&ans.body, body, len) < 0)
                return 0;
        const char url[] = "https://apps.example.org/users/u/open-records";
        char *reason = NULL;
        int r = ob_guard_http_judge(&g, url, &resp, &ans, &reason);
        if (r != 0 && r != 1)
                ob_fuzz_fail("guard: verdict %d", r);
        bool two = status >= 200 && status <= 299;
        if (r == 0 && (status == 0 || (!two && status != 404)))
                ob_fuzz_fail("guard: HTTP %ld (transport %d) taken as clear", status, resp.transport);
        if (r == 0 && block_409 && status == 409)
                ob_fuzz_fail("guard: a blocking 409 taken as clear");
        if (r == 0 && two && path && !ob_fuzz_json_valid(body, len)) {
                ob_fuzz_dump("body", body, len);
                ob_fuzz_fail("guard: a body that is not JSON taken as clear");
        }
        if (r == 1) {
                if (!reason || !strstr(reason, url))
                        ob_fuzz_fail("guard: a hold without a reason naming the url: %s", reason ? reason : "(null)");
                if (strlen(reason) > sizeof(url) + 300)
                        ob_fuzz_fail("guard: a reason of %zu bytes (does it quote the body?)", strlen(reason));
        } else if (reason) {
                ob_fuzz_fail("guard: a reason with a clear verdict");
        }
        free(reason);
        ob_buf_free(&ans.body);
        return 0;
}
