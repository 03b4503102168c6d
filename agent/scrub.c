/* scrub.c: see scrub.h for the contract.
 *
 * The matcher is deliberately plain: at each position it compares the
 * look-ahead with every offset of every form. Forms are short (a few hundred
 * bytes in all for a connector) and the output is bounded, so the work per
 * stream is bounded too; once the output is full, feeding costs nothing.
 */
#define _GNU_SOURCE
#include "scrub.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define OB_SCRUB_MASK "***"

struct ob_scrub_form {
        char *p;
        size_t n;
};

struct ob_scrub {
        size_t max_out;
        struct ob_scrub_form *forms;
        size_t nforms;
        size_t forms_alloc;
        size_t nsecrets;
        size_t longest; /* longest form: the look-ahead */

        char *out; /* max_out bytes */
        size_t out_len;
        size_t out_mark; /* out_len after the last "***" */
        char *pend;      /* held back: pend[pend_off .. pend_off + pend_len) */
        size_t pend_off;
        size_t pend_len;
        size_t pend_cap; /* 2 * longest */

        bool fed;      /* no secret may be added any more */
        bool full;     /* out_len == max_out */
        bool cut;      /* something did not fit */
        bool finished; /* ob_scrub_finish() ran */
        bool borrowed; /* forms and out belong to someone else (ob_scrub_text) */
        bool forms_borrowed; /* forms belong to the prototype (ob_scrub_new_like) */
        bool is_proto;       /* lends its forms: no secret may be added */
};

int ob_scrub_new(size_t max_out, struct ob_scrub **ret)
{
        if (max_out == 0 || !ret)
                return -EINVAL;
        struct ob_scrub *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->max_out = max_out;
        s->out = malloc(max_out);
        if (!s->out) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void ob_wipe_free(void *p, size_t n)
{
        if (!p)
                return;
        explicit_bzero(p, n);
        free(p);
}

int ob_scrub_new_like(struct ob_scrub *proto, size_t max_out, struct ob_scrub **ret)
{
        if (!proto || max_out == 0 || !ret)
                return -EINVAL;
        /* One block: the struct, then out, then the look-ahead. */
        size_t pend_cap = 2 * proto->longest;
        if (max_out > SIZE_MAX / 2 - sizeof(struct ob_scrub) - pend_cap)
                return -EINVAL;
        struct ob_scrub *s = malloc(sizeof(*s) + max_out + pend_cap);
        if (!s)
                return -ENOMEM;
        proto->is_proto = true;
        *s = (struct ob_scrub){
                .max_out = max_out,
                .forms = proto->forms,
                .nforms = proto->nforms,
                .nsecrets = proto->nsecrets,
                .longest = proto->longest,
                .out = (char *)(s + 1),
                .pend = pend_cap ? (char *)(s + 1) + max_out : NULL,
                .pend_cap = pend_cap,
                .fed = true,
                .forms_borrowed = true,
        };
        if (pend_cap)
                memset(s->pend, 0, pend_cap);
        *ret = s;
        return 0;
}

void ob_scrub_free(struct ob_scrub *s)
{
        if (!s)
                return;
        if (s->forms_borrowed) {
                /* out and pend are in the struct's block. */
                explicit_bzero(s->out, s->max_out + s->pend_cap);
                free(s);
                return;
        }
        ob_wipe_free(s->pend, s->pend_cap);
        if (!s->borrowed) {
                for (size_t i = 0; i < s->nforms; i++)
                        ob_wipe_free(s->forms[i].p, s->forms[i].n);
                free(s->forms);
                ob_wipe_free(s->out, s->max_out);
                free(s);
        }
}

/* ---- forms ---- */

/* Appends a copy of p[0..n) unless the same form is already known. */
static int ob_scrub_add_form(struct ob_scrub *s, const char *p, size_t n)
{
        if (n == 0)
                return 0;
        for (size_t i = 0; i < s->nforms; i++)
                if (s->forms[i].n == n && memcmp(s->forms[i].p, p, n) == 0)
                        return 0;
        if (s->nforms == s->forms_alloc) {
                size_t a = s->forms_alloc ? s->forms_alloc * 2 : 16;
                struct ob_scrub_form *f = realloc(s->forms, a * sizeof(*f));
                if (!f)
                        return -ENOMEM;
                s->forms = f;
                s->forms_alloc = a;
        }
        char *c = malloc(n);
        if (!c)
                return -ENOMEM;
        memcpy(c, p, n);
        s->forms[s->nforms++] = (struct ob_scrub_form){c, n};
        return 0;
}

static const char ob_hex_upper[] = "0123456789ABCDEF";
static const char ob_hex_lower[] = "0123456789abcdef";

static bool ob_is_alnum(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static size_t ob_put_u00(char *o, unsigned char c)
{
        memcpy(o, "\\u00", 4);
        o[4] = ob_hex_lower[c >> 4];
        o[5] = ob_hex_lower[c & 15];
        return 6;
}

enum ob_json_style { OB_JSON_PLAIN, OB_JSON_SLASH, OB_JSON_ALL };

/* At most 6 bytes out per byte in. */
static size_t ob_encode_json(char *o, const unsigned char *p, size_t n, enum ob_json_style style)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = p[i];
                if (style == OB_JSON_ALL && c < 0x80 && !ob_is_alnum(c)) {
                        k += ob_put_u00(o + k, c);
                } else if (c == '"' || c == '\\' || (c == '/' && style == OB_JSON_SLASH)) {
                        o[k++] = '\\';
                        o[k++] = (char)c;
                } else if (c < 0x20 || c == 0x7f) {
                        k += ob_put_u00(o + k, c);
                } else {
                        o[k++] = (char)c;
                }
        }
        return k;
}

/* At most 4 * ceil(n / 3) bytes out. */
static size_t ob_encode_base64(char *o, const unsigned char *p, size_t n, bool url, bool pad)
{
        const char *tbl = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                              : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t k = 0;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned)p[i] << 16;
                if (i + 1 < n)
                        v |= (unsigned)p[i + 1] << 8;
                if (i + 2 < n)
                        v |= p[i + 2];
                o[k++] = tbl[(v >> 18) & 63];
                o[k++] = tbl[(v >> 12) & 63];
                if (i + 1 < n)
                        o[k++] = tbl[(v >> 6) & 63];
                else if (pad)
                        o[k++] = '=';
                if (i + 2 < n)
                        o[k++] = tbl[v & 63];
                else if (pad)
                        o[k++] = '=';
        }
        return k;
}

/* At most 3 bytes out per byte in. */
static size_t ob_encode_percent(char *o, const unsigned char *p, size_t n, const char *hex, bool plus)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = p[i];
                if (ob_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
                        o[k++] = (char)c;
                } else if (c == ' ' && plus) {
                        o[k++] = '+';
                } else {
                        o[k++] = '%';
                        o[k++] = hex[c >> 4];
                        o[k++] = hex[c & 15];
                }
        }
        return k;
}

static void ob_scrub_rollback(struct ob_scrub *s, size_t nforms)
{
        while (s->nforms > nforms) {
                s->nforms--;
                ob_wipe_free(s->forms[s->nforms].p, s->forms[s->nforms].n);
        }
}

int ob_scrub_add_secret(struct ob_scrub *s, const char *secret, size_t n)
{
        if (!s || (!secret && n > 0) || s->fed || s->is_proto)
                return -EINVAL;
        if (n > OB_SCRUB_MAX_SECRET)
                return -OB_ELIMIT;
        if (n == 0)
                return 0;
        if (s->nsecrets >= OB_SCRUB_MAX_SECRETS)
                return -OB_ELIMIT;

        const unsigned char *p = (const unsigned char *)secret;
        size_t cap = 6 * n + 4;
        char *tmp = malloc(cap);
        if (!tmp)
                return -ENOMEM;
        size_t before = s->nforms;
        int r = ob_scrub_add_form(s, secret, n);
        for (int style = OB_JSON_PLAIN; r >= 0 && style <= OB_JSON_ALL; style++)
                r = ob_scrub_add_form(s, tmp, ob_encode_json(tmp, p, n, (enum ob_json_style)style));
        for (int v = 0; r >= 0 && v < 4; v++)
                r = ob_scrub_add_form(s, tmp, ob_encode_base64(tmp, p, n, v & 1, v & 2));
        if (r >= 0)
                r = ob_scrub_add_form(s, tmp, ob_encode_percent(tmp, p, n, ob_hex_upper, false));
        if (r >= 0)
                r = ob_scrub_add_form(s, tmp, ob_encode_percent(tmp, p, n, ob_hex_lower, false));
        if (r >= 0)
                r = ob_scrub_add_form(s, tmp, ob_encode_percent(tmp, p, n, ob_hex_upper, true));
        ob_wipe_free(tmp, cap);
        if (r < 0) {
                ob_scrub_rollback(s, before);
                return r;
        }
        s->nsecrets++;
        for (size_t i = before; i < s->nforms; i++)
                if (s->forms[i].n > s->longest)
                        s->longest = s->forms[i].n;
        return 0;
}

int ob_scrub_add_basic(struct ob_scrub *s, const char *user, const char *password)
{
        if (!s || !user || !password)
                return -EINVAL;
        size_t ul = strlen(user), pl = strlen(password);
        if (ul + 1 + pl > OB_SCRUB_MAX_SECRET)
                return -OB_ELIMIT;
        size_t n = ul + 1 + pl;
        size_t bcap = (n + 2) / 3 * 4;
        char *cred = malloc(n);
        char *b64 = malloc(bcap);
        int r = -ENOMEM;
        if (cred && b64) {
                memcpy(cred, user, ul);
                cred[ul] = ':';
                memcpy(cred + ul + 1, password, pl);
                /* Padded as in the Authorization header, and without the
                 * padding, which is no prefix match when it is short. */
                size_t bl = ob_encode_base64(b64, (const unsigned char *)cred, n, false, true);
                size_t before = s->nforms, nsecrets = s->nsecrets, longest = s->longest;
                r = bl > OB_SCRUB_MAX_SECRET ? -OB_ELIMIT : ob_scrub_add_secret(s, b64, bl);
                size_t unpadded = bl;
                while (unpadded > 0 && b64[unpadded - 1] == '=')
                        unpadded--;
                if (r >= 0 && unpadded < bl && (r = ob_scrub_add_secret(s, b64, unpadded)) < 0) {
                        ob_scrub_rollback(s, before);
                        s->nsecrets = nsecrets;
                        s->longest = longest;
                }
        }
        ob_wipe_free(cred, n);
        ob_wipe_free(b64, bcap);
        return r;
}

/* ---- the stream ---- */

static void ob_scrub_emit(struct ob_scrub *s, const char *p, size_t n)
{
        size_t room = s->max_out - s->out_len;
        size_t k = n < room ? n : room;
        memcpy(s->out + s->out_len, p, k);
        s->out_len += k;
        if (k < n)
                s->cut = true;
        if (s->out_len == s->max_out)
                s->full = true;
}

static void ob_scrub_consume(struct ob_scrub *s, size_t k)
{
        explicit_bzero(s->pend + s->pend_off, k);
        s->pend_off += k;
        s->pend_len -= k;
}

/* Decides the first held-back byte (and maybe more). At the end of the input
 * the look-ahead is whatever is left; otherwise it is at least s->longest. */
static void ob_scrub_step(struct ob_scrub *s, bool at_end)
{
        const char *x = s->pend + s->pend_off;
        size_t avail = s->pend_len;
        size_t best_any = 0, best_full = 0;
        bool tail_prefix = false;

        for (size_t f = 0; f < s->nforms; f++) {
                const char *fp = s->forms[f].p;
                size_t fn = s->forms[f].n;
                for (size_t j = 0; j < fn; j++) {
                        if (fp[j] != x[0])
                                continue;
                        size_t lim = fn - j < avail ? fn - j : avail;
                        size_t k = 1;
                        while (k < lim && fp[j + k] == x[k])
                                k++;
                        if (k > best_any)
                                best_any = k;
                        if (j == 0 && k == fn && k > best_full)
                                best_full = k;
                        else if (j == 0 && at_end && k == avail)
                                tail_prefix = true;
                }
        }

        if (best_any >= OB_SCRUB_MIN_PIECE || best_full > 0) {
                ob_scrub_consume(s, best_any >= OB_SCRUB_MIN_PIECE ? best_any : best_full);
                ob_scrub_emit(s, OB_SCRUB_MASK, strlen(OB_SCRUB_MASK));
                s->out_mark = s->out_len;
        } else if (tail_prefix) {
                ob_scrub_consume(s, avail);
        } else {
                ob_scrub_emit(s, x, 1);
                ob_scrub_consume(s, 1);
        }
}

static void ob_scrub_process(struct ob_scrub *s, bool at_end)
{
        while (s->pend_len > 0 && !s->full && (at_end || s->pend_len >= s->longest))
                ob_scrub_step(s, at_end);
        if (s->full && s->pend_len > 0) {
                s->cut = true;
                ob_scrub_consume(s, s->pend_len);
        }
        if (s->pend_len == 0)
                s->pend_off = 0;
}

static int ob_scrub_start(struct ob_scrub *s)
{
        s->fed = true;
        if (s->longest == 0 || s->pend)
                return 0;
        s->pend_cap = 2 * s->longest;
        s->pend = calloc(1, s->pend_cap);
        return s->pend ? 0 : -ENOMEM;
}

void ob_scrub_feed(struct ob_scrub *s, const char *p, size_t n)
{
        if (!s || s->finished || n == 0)
                return;
        if (ob_scrub_start(s) < 0) {
                /* Fail closed: without a look-ahead buffer nothing is let through. */
                s->cut = true;
                s->full = true;
                return;
        }
        while (n > 0 && !s->full) {
                if (s->longest == 0) {
                        ob_scrub_emit(s, p, n);
                        return;
                }
                if (s->pend_off + s->pend_len == s->pend_cap) {
                        memmove(s->pend, s->pend + s->pend_off, s->pend_len);
                        explicit_bzero(s->pend + s->pend_len, s->pend_cap - s->pend_len);
                        s->pend_off = 0;
                }
                size_t room = s->pend_cap - s->pend_off - s->pend_len;
                size_t k = n < room ? n : room;
                memcpy(s->pend + s->pend_off + s->pend_len, p, k);
                s->pend_len += k;
                p += k;
                n -= k;
                ob_scrub_process(s, false);
        }
        if (n > 0)
                s->cut = true;
}

bool ob_scrub_full(const struct ob_scrub *s)
{
        return s && s->full;
}

/* Drops an incomplete UTF-8 sequence at the end of the output. */
static void ob_scrub_trim_utf8(struct ob_scrub *s)
{
        size_t i = s->out_len, cont = 0;
        while (i > 0 && cont < 3 && ((unsigned char)s->out[i - 1] & 0xc0) == 0x80) {
                i--;
                cont++;
        }
        if (i == 0)
                return;
        unsigned char lead = (unsigned char)s->out[i - 1];
        size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (need > 1 && cont + 1 < need) {
                explicit_bzero(s->out + i - 1, s->out_len - (i - 1));
                s->out_len = i - 1;
        }
}

/* Rule 3 across the cut: bytes let through just before a dropped tail may
 * themselves start a form ("a" kept, then "bc" dropped, with a form "ab...").
 * Drops the longest such end of the output, "***" excluded. */
static void ob_scrub_trim_prefix(struct ob_scrub *s)
{
        /* Until the output no longer ends with the start of a form: a tail
         * of repeated partial echoes ("abcab" for "abcd...") goes whole. */
        for (size_t drop = 1; drop > 0;) {
                size_t avail = s->out_len - s->out_mark;
                drop = 0;
                for (size_t f = 0; f < s->nforms; f++) {
                        size_t fn = s->forms[f].n;
                        for (size_t k = avail < fn ? avail : fn - 1; k > drop; k--) {
                                if (memcmp(s->out + s->out_len - k, s->forms[f].p, k) == 0) {
                                        drop = k;
                                        break;
                                }
                        }
                }
                explicit_bzero(s->out + s->out_len - drop, drop);
                s->out_len -= drop;
        }
}

static void ob_scrub_end(struct ob_scrub *s)
{
        if (s->finished)
                return;
        s->finished = true;
        if (s->pend_len > 0)
                ob_scrub_process(s, true);
        /* Cut at the limit or not, the end is where a truncated echo of a
         * secret would stand. */
        ob_scrub_trim_prefix(s);
        if (s->cut)
                ob_scrub_trim_utf8(s);
}

size_t ob_scrub_finish(struct ob_scrub *s, char *out, size_t outlen)
{
        if (!s || !out || outlen == 0)
                return 0;
        ob_scrub_end(s);
        size_t n = s->out_len < outlen - 1 ? s->out_len : outlen - 1;
        memcpy(out, s->out, n);
        out[n] = '\0';
        return n;
}

int ob_scrub_text(const struct ob_scrub *s, const char *in, size_t n, char *out, size_t outlen)
{
        if (!out || outlen == 0)
                return -EINVAL;
        out[0] = '\0';
        if (!s || (!in && n > 0))
                return -EINVAL;
        if (outlen == 1)
                return 0;
        if (outlen - 1 > INT_MAX)
                return -EINVAL;
        /* A stream of its own that borrows the forms and writes straight
         * into out. */
        struct ob_scrub t = {
                .max_out = outlen - 1,
                .forms = s->forms,
                .nforms = s->nforms,
                .longest = s->longest,
                .out = out,
                .borrowed = true,
        };
        if (ob_scrub_start(&t) < 0)
                return -ENOMEM;
        ob_scrub_feed(&t, in, n);
        ob_scrub_end(&t);
        out[t.out_len] = '\0';
        ob_scrub_free(&t);
        return (int)t.out_len;
}
