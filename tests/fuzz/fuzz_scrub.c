/* fuzz_scrub.c: the streaming secret scrubber (agent/scrub.h).
 *
 * Input:
 *   byte 0      secret length, 8 + b % 57 (8..64 bytes);
 *   byte 1      output bound: below 16, a small max_out (1 + 8b: the output is
 *               cut); else large enough for the whole body;
 *   next len    the secret, mapped onto printable ASCII without '*' (a secret
 *               of asterisks would be "found" in the "***" masks themselves);
 *   the rest    operations building the body around the secret, op & 7:
 *               0 literal bytes (count: next byte), 1 the raw secret,
 *               2 JSON-escaped, 3 JSON-escaped with '/' as "\/", 4 base64
 *               (op bit 3: padded, bit 4: URL-safe), 5 filler of 4 * next byte
 *               + (op >> 3) bytes, 6 a prefix of a form (form by op >> 3,
 *               length by the next byte), 7 a chunk boundary.
 *
 * The body is fed in the chunks chosen, and again in one piece to a second
 * scrubber. Oracles, for the forms raw, JSON-escaped (both), base64 (four
 * variants) and percent-encoded (upper-case hex):
 *   - the output holds no whole form;
 *   - the output holds no 8-byte run that starts a form (longer runs
 *     contain one);
 *   - unless the output is full, it does not end with a (non-empty) prefix
 *     of a form;
 *   - chunk boundaries do not change the output;
 *   - ob_scrub_text() on the body obeys the first two as well.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "scrub.h"

#define MAX_CHUNKS 64

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int base64(struct ob_buf *b, const char *s, size_t n, bool url, bool pad)
{
        const char *al = url ? b64url : b64std;
        const unsigned char *u = (const unsigned char *)s;
        int r = 0;
        for (size_t i = 0; r == 0 && i < n; i += 3) {
                uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0) |
                             (i + 2 < n ? u[i + 2] : 0);
                char q[4] = {al[v >> 18 & 63], al[v >> 12 & 63], al[v >> 6 & 63], al[v & 63]};
                size_t k = n - i >= 3 ? 4 : n - i + 1;
                r = ob_buf_add(b, q, k);
                for (size_t j = k; r == 0 && pad && j < 4; j++)
                        r = ob_buf_addc(b, '=');
        }
        return r;
}

static int json_escape(struct ob_buf *b, const char *s, size_t n, bool slash)
{
        int r = 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (s[i] == '"' || s[i] == '\\' || (slash && s[i] == '/'))
                        r = ob_buf_addc(b, '\\');
                if (r == 0)
                        r = ob_buf_addc(b, s[i]);
        }
        return r;
}

static int percent(struct ob_buf *b, const char *s, size_t n)
{
        int r = 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~')
                        r = ob_buf_addc(b, (char)c);
                else
                        r = ob_buf_printf(b, "%%%02X", c);
        }
        return r;
}

enum { F_RAW, F_JSON, F_JSON_SLASH, F_B64, F_B64_NOPAD, F_B64URL, F_B64URL_NOPAD, F_PERCENT, _F_MAX };

static int make_forms(struct ob_buf f[_F_MAX], const char *s, size_t n)
{
        int r = ob_buf_add(&f[F_RAW], s, n);
        if (r == 0)
                r = json_escape(&f[F_JSON], s, n, false);
        if (r == 0)
                r = json_escape(&f[F_JSON_SLASH], s, n, true);
        if (r == 0)
                r = base64(&f[F_B64], s, n, false, true);
        if (r == 0)
                r = base64(&f[F_B64_NOPAD], s, n, false, false);
        if (r == 0)
                r = base64(&f[F_B64URL], s, n, true, true);
        if (r == 0)
                r = base64(&f[F_B64URL_NOPAD], s, n, true, false);
        if (r == 0)
                r = percent(&f[F_PERCENT], s, n);
        return r;
}

static void check_output(const char *what, const struct ob_buf f[_F_MAX], const char *out, size_t n, bool ends)
{
        for (int k = 0; k < _F_MAX; k++) {
                const char *p = f[k].data;
                size_t fn = f[k].len;
                if (ob_fuzz_memmem(out, n, p, fn)) {
                        ob_fuzz_dump("form", p, fn);
                        ob_fuzz_dump("output", out, n);
                        ob_fuzz_fail("scrub (%s): form %d of the secret is in the output", what, k);
                }
                if (fn >= OB_SCRUB_MIN_PIECE && ob_fuzz_memmem(out, n, p, OB_SCRUB_MIN_PIECE)) {
                        ob_fuzz_dump("form", p, fn);
                        ob_fuzz_dump("output", out, n);
                        ob_fuzz_fail("scrub (%s): the first %d bytes of form %d are in the output", what,
                                     OB_SCRUB_MIN_PIECE, k);
                }
                for (size_t l = 1; ends && l <= fn && l <= n; l++)
                        if (memcmp(out + n - l, p, l) == 0) {
                                ob_fuzz_dump("form", p, fn);
                                ob_fuzz_dump("output", out, n);
                                ob_fuzz_fail("scrub (%s): the output ends with the first %zu bytes of form %d", what,
                                             l, k);
                        }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char printable[] = " !\"#$%&'()+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                        "abcdefghijklmnopqrstuvwxyz{|}~";
        struct ob_buf forms[_F_MAX], body;
        struct ob_scrub *s = NULL, *one = NULL;
        char secret[64];
        char *out = NULL, *out1 = NULL, *text = NULL;
        size_t chunks[MAX_CHUNKS], nchunks = 0;

        for (int k = 0; k < _F_MAX; k++)
                ob_buf_init(&forms[k]);
        ob_buf_init(&body);
        if (size < 2)
                goto out;
        size_t len = 8 + data[0] % 57;
        if (size < 2 + len)
                goto out;
        for (size_t i = 0; i < len; i++)
                secret[i] = printable[data[2 + i] % (sizeof(printable) - 1)];
        if (make_forms(forms, secret, len) < 0)
                goto out;

        for (size_t i = 2 + len; i < size;) {
                uint8_t op = data[i++];
                uint8_t arg = i < size ? data[i] : 0;
                int r = 0;
                switch (op & 7) {
                case 0: {
                        size_t n = arg;
                        i++;
                        if (n > size - (i < size ? i : size))
                                n = size - (i < size ? i : size);
                        r = ob_buf_add(&body, (const char *)data + (i < size ? i : size), n);
                        i += n;
                        break;
                }
                case 1: r = ob_buf_add(&body, forms[F_RAW].data, forms[F_RAW].len); break;
                case 2: r = ob_buf_add(&body, forms[F_JSON].data, forms[F_JSON].len); break;
                case 3: r = ob_buf_add(&body, forms[F_JSON_SLASH].data, forms[F_JSON_SLASH].len); break;
                case 4: {
                        int k = (op & 16) ? ((op & 8) ? F_B64URL : F_B64URL_NOPAD) : ((op & 8) ? F_B64 : F_B64_NOPAD);
                        r = ob_buf_add(&body, forms[k].data, forms[k].len);
                        break;
                }
                case 5: {
                        size_t n = (size_t)arg * 4 + (op >> 3);
                        i++;
                        for (size_t j = 0; r == 0 && j < n; j++)
                                r = ob_buf_addc(&body, (char)('a' + j % 26));
                        break;
                }
                case 6: {
                        const struct ob_buf *f = &forms[(op >> 3) % _F_MAX];
                        i++;
                        r = ob_buf_add(&body, f->data, arg % (f->len + 1));
                        break;
                }
                case 7:
                        if (nchunks < MAX_CHUNKS)
                                chunks[nchunks++] = body.len;
                        break;
                }
                if (r < 0)
                        goto out;
        }

        size_t max_out = data[1] < 16 ? 1 + (size_t)data[1] * 8 : body.len * 2 + 64;
        if (ob_scrub_new(max_out, &s) < 0 || ob_scrub_new(max_out, &one) < 0)
                goto out;
        if (ob_scrub_add_secret(s, secret, len) < 0 || ob_scrub_add_secret(one, secret, len) < 0)
                goto out;
        out = malloc(max_out + 1);
        out1 = malloc(max_out + 1);
        text = malloc(max_out + 1);
        if (!out || !out1 || !text)
                goto out;

        const char *b = body.data ? body.data : "";
        size_t at = 0;
        for (size_t c = 0; c < nchunks; c++) {
                if (chunks[c] < at)
                        continue;
                ob_scrub_feed(s, b + at, chunks[c] - at);
                at = chunks[c];
        }
        ob_scrub_feed(s, b + at, body.len - at);
        size_t n = ob_scrub_finish(s, out, max_out + 1);
        if (n > max_out)
                ob_fuzz_fail("scrub: %zu bytes out, max_out %zu", n, max_out);
        /* Rule 3 is about the end of the input: an output cut at max_out
         * (full once the held-back bytes are flushed) may end anywhere. */
        check_output("chunked", forms, out, n, !ob_scrub_full(s) && n < max_out);

        ob_scrub_feed(one, b, body.len);
        size_t n1 = ob_scrub_finish(one, out1, max_out + 1);
        if (n1 != n || memcmp(out, out1, n) != 0) {
                ob_fuzz_dump("chunked", out, n);
                ob_fuzz_dump("in one piece", out1, n1);
                ob_fuzz_fail("scrub: chunk boundaries changed the output");
        }

        int k = ob_scrub_text(s, b, body.len, text, max_out + 1);
        if (k >= 0)
                check_output("text", forms, text, (size_t)k, false);
        else if (k != -ENOMEM)
                ob_fuzz_fail("scrub: ob_scrub_text returned %d", k);
out:
        ob_scrub_free(s);
        ob_scrub_free(one);
        free(out);
        free(out1);
        free(text);
        for (int f = 0; f < _F_MAX; f++)
                ob_buf_free(&forms[f]);
        ob_buf_free(&body);
        return 0;
}
