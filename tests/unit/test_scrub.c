/* Unit tests for agent/scrub.c: servers that echo a secret back in every
 * shape we know of, cut at every place that matters. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include "util.h"

/* 38 bytes, with a "/" so its JSON forms differ. */
#define TOKEN "sk_live_4f9Qx2Lm8Zr7/Tb1Vc3Nd5Hp6Jw0Ky"
#define TOKEN_LEN 38
#define MAX 512

static struct ob_scrub *scrubber(size_t max_out, const char *const *secrets)
{
        struct ob_scrub *s = NULL;
        cr_assert_eq(ob_scrub_new(max_out, &s), 0);
        for (const char *const *p = secrets; p && *p; p++)
                cr_assert_eq(ob_scrub_add_secret(s, *p, strlen(*p)), 0);
        return s;
}

/* Feeds in[0..n) in chunks of `chunk` bytes (0: all at once); returns the
 * malloc'd output. */
static char *run_chunked(struct ob_scrub *s, size_t max_out, const char *in, size_t n, size_t chunk)
{
        for (size_t i = 0; i < n;) {
                size_t k = chunk == 0 || n - i < chunk ? n - i : chunk;
                ob_scrub_feed(s, in + i, k);
                i += k;
        }
        char *out = malloc(max_out + 1);
        cr_assert_not_null(out);
        size_t len = ob_scrub_finish(s, out, max_out + 1);
        cr_assert_eq(len, strlen(out));
        cr_assert_leq(len, max_out);
        ob_scrub_free(s);
        return out;
}

static char *scrub_n(const char *in, size_t n, size_t max_out, const char *const *secrets)
{
        return run_chunked(scrubber(max_out, secrets), max_out, in, n, 0);
}

static char *scrub(const char *in, size_t max_out, const char *const *secrets)
{
        return scrub_n(in, strlen(in), max_out, secrets);
}

/* Neither the form nor any 8 consecutive bytes of it appear in out. */
static void assert_no_piece(const char *out, const char *form)
{
        size_t n = strlen(form);
        cr_assert_null(strstr(out, form), "the whole form is in: %s", out);
        for (size_t i = 0; i + 8 <= n; i++) {
                char piece[9];
                memcpy(piece, form + i, 8);
                piece[8] = '\0';
                cr_assert_null(strstr(out, piece), "\"%s\" (offset %zu) is in: %s", piece, i, out);
        }
}

static const char *const token_only[] = {TOKEN, NULL};

static char *padded(size_t pad, const char *a, const char *b)
{
        char *s;
        cr_assert_gt(asprintf(&s, "%*s%s%s", (int)pad, "", a, b ? b : ""), 0);
        for (size_t i = 0; i < pad; i++)
                s[i] = (char)('a' + i % 26);
        return s;
}

Test(scrub, a_full_echo_becomes_three_stars)
{
        _cleanup_free_ char *out = scrub("{\"error\":\"token " TOKEN " revoked\"}", MAX, token_only);
        cr_assert_str_eq(out, "{\"error\":\"token *** revoked\"}");
}

Test(scrub, every_echo_is_replaced_and_the_text_around_survives)
{
        _cleanup_free_ char *out = scrub(TOKEN TOKEN " x " TOKEN, MAX, token_only);
        cr_assert_str_eq(out, "****** x ***");
}

Test(scrub, an_echo_straddling_the_output_limit_leaves_no_piece)
{
        for (size_t pad = 480; pad <= MAX; pad++) {
                _cleanup_free_ char *in = padded(pad, TOKEN, " and more text after the token");
                _cleanup_free_ char *out = scrub(in, MAX, token_only);
                assert_no_piece(out, TOKEN);
                cr_assert_eq(strncmp(out, in, pad), 0, "the padding before the token is kept");
                size_t expect = pad + 3 > MAX ? MAX : pad + 3;
                cr_assert_geq(strlen(out), expect, "pad %zu: %zu bytes", pad, strlen(out));
        }
}

Test(scrub, a_body_cut_inside_an_echo_leaves_no_piece)
{
        /* The body ends (the server cut it, or the capture did) at every
         * length inside the token. */
        for (size_t k = 1; k < TOKEN_LEN; k++) {
                _cleanup_free_ char *in = padded(490, "", NULL);
                _cleanup_free_ char *body = NULL;
                cr_assert_gt(asprintf(&body, "%s%.*s", in, (int)k, TOKEN), 0);
                _cleanup_free_ char *out = scrub(body, MAX, token_only);
                assert_no_piece(out, TOKEN);
                cr_assert_str_eq(out + 490, k >= 8 ? "***" : "", "k %zu: %s", k, out + 490);
        }
}

Test(scrub, a_second_echo_cut_at_the_capture_limit_does_not_leak)
{
        /* The measured leak: an early full echo shortens the text, which
         * pulled the cut-off second echo (34 of 38 bytes) into the excerpt. */
        for (size_t second = 470; second <= 520; second++) {
                _cleanup_free_ char *body = padded(10, TOKEN, NULL);
                size_t len = strlen(body);
                _cleanup_free_ char *in = malloc(second + TOKEN_LEN + 1);
                cr_assert_not_null(in);
                memcpy(in, body, len);
                memset(in + len, '.', second - len);
                memcpy(in + second, TOKEN, TOKEN_LEN);
                /* Cut 34 bytes into the second echo, as the old capture of
                 * 512 + 38 bytes did when it started at 516. */
                size_t n = second + 34;
                _cleanup_free_ char *out = scrub_n(in, n, MAX, token_only);
                assert_no_piece(out, TOKEN);
                cr_assert_eq(strncmp(out, "abcdefghij***...", 16), 0, "%s", out);
        }
}

Test(scrub, a_json_escaped_echo_with_escaped_slashes_is_replaced)
{
        _cleanup_free_ char *out = scrub("{\"got\":\"sk_live_4f9Qx2Lm8Zr7\\/Tb1Vc3Nd5Hp6Jw0Ky\"}", MAX, token_only);
        cr_assert_str_eq(out, "{\"got\":\"***\"}");
        static const char *const quoted[] = {"pa\"ss\\wo/rd", NULL};
        _cleanup_free_ char *q = scrub("[\"pa\\\"ss\\\\wo\\/rd\", \"pa\\\"ss\\\\wo/rd\"]", MAX, quoted);
        cr_assert_str_eq(q, "[\"***\", \"***\"]");
}

Test(scrub, a_json_echo_with_every_symbol_as_a_unicode_escape_is_replaced)
{
        _cleanup_free_ char *out =
                scrub("{\"got\":\"sk\\u005flive\\u005f4f9Qx2Lm8Zr7\\u002fTb1Vc3Nd5Hp6Jw0Ky\"}", MAX, token_only);
        cr_assert_str_eq(out, "{\"got\":\"***\"}");
}

Test(scrub, base64_of_the_secret_in_every_alphabet_is_replaced)
{
        /* printf 'sk_live_4f9Qx2Lm8Zr7/Tb1Vc3Nd5Hp6Jw0Ky' | base64 -w0 (and | tr '+/' '-_') */
        static const char b64[] = "c2tfbGl2ZV80ZjlReDJMbThacjcvVGIxVmMzTmQ1SHA2SncwS3k=";
        static const char url[] = "c2tfbGl2ZV80ZjlReDJMbThacjcvVGIxVmMzTmQ1SHA2SncwS3k";
        _cleanup_free_ char *in = NULL;
        cr_assert_gt(asprintf(&in, "a=%s b=%s", b64, url), 0);
        _cleanup_free_ char *out = scrub(in, MAX, token_only);
        cr_assert_str_eq(out, "a=*** b=***");

        static const char *const binary[] = {"\xfb\xff\xfe?", NULL};
        /* standard "+//+Pw==", URL-safe "-__-Pw" */
        _cleanup_free_ char *o2 = scrub("x +//+Pw== y -__-Pw z", MAX, binary);
        cr_assert_str_eq(o2, "x *** y *** z");
}

Test(scrub, basic_credentials_in_base64_are_replaced_including_json_escaped)
{
        struct ob_scrub *s = scrubber(MAX, NULL);
        cr_assert_eq(ob_scrub_add_secret(s, "p4ss word!", 10), 0);
        cr_assert_eq(ob_scrub_add_basic(s, "svc-offboard", "p4ss word!"), 0);
        /* printf 'svc-offboard:p4ss word!' | base64 */
        static const char in[] = "{\"auth\":\"Basic c3ZjLW9mZmJvYXJkOnA0c3Mgd29yZCE=\",\"pw\":\"p4ss word!\"}";
        _cleanup_free_ char *out = run_chunked(s, MAX, in, strlen(in), 0);
        cr_assert_str_eq(out, "{\"auth\":\"Basic ***\",\"pw\":\"***\"}");

        /* A base64 credential with "/" escaped by a JSON encoder. */
        s = scrubber(MAX, NULL);
        cr_assert_eq(ob_scrub_add_basic(s, "u",
                                        "?"
                                        "?>"),
                     0); /* base64("u:?" "?>") = "dTo/Pz4=" */
        static const char in2[] = "[\"dTo\\/Pz4=\", \"dTo/Pz4\"]";
        _cleanup_free_ char *o2 = run_chunked(s, MAX, in2, strlen(in2), 0);
        cr_assert_str_eq(o2, "[\"***\", \"***\"]");
}

Test(scrub, a_percent_encoded_echo_is_replaced)
{
        static const char *const pw[] = {"p4ss word!/x", NULL};
        _cleanup_free_ char *out =
                scrub("/login?pw=p4ss%20word%21%2Fx&again=p4ss%20word%21%2fx&form=p4ss+word%21%2Fx", MAX, pw);
        cr_assert_str_eq(out, "/login?pw=***&again=***&form=***");
}

Test(scrub, a_prefix_of_eight_bytes_or_more_mid_body_is_replaced)
{
        _cleanup_free_ char *out = scrub("token sk_live_4f9Q... was revoked", MAX, token_only);
        cr_assert_str_eq(out, "token ***... was revoked");
        /* Seven bytes are not enough to be sure. */
        _cleanup_free_ char *o7 = scrub("token sk_live... was revoked", MAX, token_only);
        cr_assert_str_eq(o7, "token sk_live... was revoked");
        /* Any 8-byte piece, not just the start. */
        _cleanup_free_ char *mid = scrub("ends with 5Hp6Jw0Ky.", MAX, token_only);
        cr_assert_str_eq(mid, "ends with ***.");
}

Test(scrub, a_trailing_prefix_of_any_length_is_dropped_at_the_end)
{
        for (size_t k = 1; k < TOKEN_LEN; k++) {
                _cleanup_free_ char *in = NULL;
                cr_assert_gt(asprintf(&in, "end: %.*s", (int)k, TOKEN), 0);
                _cleanup_free_ char *out = scrub(in, MAX, token_only);
                cr_assert_str_eq(out, k >= 8 ? "end: ***" : "end: ", "k %zu: \"%s\"", k, out);
        }
}

Test(scrub, the_output_never_ends_with_the_start_of_a_form)
{
        /* "a" is let through ("abc" does not start "abd..."), then "bc"
         * starts the second secret and is dropped: "a" alone starts the
         * first one, so it goes too. */
        static const char *const two[] = {"abd-12345678", "bcx-12345678", NULL};
        _cleanup_free_ char *out = scrub("x abc", MAX, two);
        cr_assert_str_eq(out, "x ");
        _cleanup_free_ char *kept = scrub("x abc.", MAX, two);
        cr_assert_str_eq(kept, "x abc.");
}

Test(scrub, a_short_secret_is_replaced_only_when_whole)
{
        static const char *const pin[] = {"4711", NULL};
        _cleanup_free_ char *out = scrub("pin 4711, not 471x; 47", MAX, pin);
        cr_assert_str_eq(out, "pin ***, not 471x; ");
}

Test(scrub, text_without_a_secret_is_unchanged_up_to_the_limit)
{
        char in[1500];
        for (size_t i = 0; i < sizeof(in) - 1; i++)
                in[i] = (char)(' ' + i % 90);
        in[sizeof(in) - 1] = '\0';
        _cleanup_free_ char *out = scrub(in, MAX, token_only);
        cr_assert_eq(strlen(out), MAX);
        cr_assert_eq(memcmp(out, in, MAX), 0);

        _cleanup_free_ char *small = scrub("{\"ok\":true}", MAX, token_only);
        cr_assert_str_eq(small, "{\"ok\":true}");
        _cleanup_free_ char *none = scrub(in, MAX, NULL);
        cr_assert_eq(memcmp(none, in, MAX), 0);
        cr_assert_eq(strlen(none), MAX);
}

Test(scrub, a_cut_never_splits_a_utf8_character)
{
        /* 511 bytes, then "é" (2 bytes) across the limit. */
        _cleanup_free_ char *in = padded(511, "\xc3\xa9", "tail");
        _cleanup_free_ char *out = scrub(in, MAX, token_only);
        cr_assert_eq(strlen(out), 511);
        /* A 4-byte character with 2 bytes inside the limit. */
        _cleanup_free_ char *in4 = padded(510, "\xf0\x9f\x94\x91", NULL);
        _cleanup_free_ char *o4 = scrub(in4, MAX, NULL);
        cr_assert_eq(strlen(o4), 510);
        /* A body that is exactly as long as the limit is kept whole. */
        _cleanup_free_ char *in2 = padded(510, "\xc3\xa9", NULL);
        _cleanup_free_ char *o2 = scrub(in2, MAX, token_only);
        cr_assert_str_eq(o2, in2);
}

Test(scrub, feeding_byte_by_byte_gives_the_same_output_as_one_chunk)
{
        static const char *const secrets[] = {TOKEN, "p4ss word!", "4711", NULL};
        const char *pieces[] = {
                "{\"e\":\"",
                TOKEN,
                "\\/",
                "sk_live_4f9Qx2Lm8Zr7\\/Tb1Vc3Nd5Hp6Jw0Ky",
                " p4ss%20word%21 ",
                "c2tfbGl2ZV80ZjlReDJMbThacjcvVGIxVmMzTmQ1SHA2SncwS3k=",
                "4711",
                "sk_live_4f9Q",
                "sk_liv",
                "é",
                "plain text, nothing to see",
                "Jw0Ky",
        };
        unsigned seed = 12345;
        for (int round = 0; round < 60; round++) {
                struct ob_buf b = {0};
                int parts = 5 + round % 40;
                for (int i = 0; i < parts; i++) {
                        seed = seed * 1103515245u + 12345u;
                        cr_assert_eq(ob_buf_adds(&b, pieces[(seed >> 16) % OB_ELEMENTSOF(pieces)]), 0);
                }
                size_t max_out = round % 2 ? MAX : 64 + (size_t)round;
                _cleanup_free_ char *whole = run_chunked(scrubber(max_out, secrets), max_out, b.data, b.len, 0);
                for (size_t chunk = 1; chunk <= 97; chunk += 8) {
                        _cleanup_free_ char *c = run_chunked(scrubber(max_out, secrets), max_out, b.data, b.len, chunk);
                        cr_assert_str_eq(c, whole, "round %d, chunk %zu", round, chunk);
                }
                assert_no_piece(whole, TOKEN);
                ob_buf_free(&b);
        }
}

Test(scrub, the_one_shot_helper_scrubs_an_error_message)
{
        struct ob_scrub *s = scrubber(MAX, token_only);
        char out[64];
        int n = ob_scrub_text(s, "Could not resolve host: " TOKEN ".invalid",
                              strlen("Could not resolve host: " TOKEN ".invalid"), out, sizeof(out));
        cr_assert_eq(n, (int)strlen("Could not resolve host: ***.invalid"));
        cr_assert_str_eq(out, "Could not resolve host: ***.invalid");
        /* Bounded by outlen, and the stream of s is untouched. */
        char tiny[10];
        cr_assert_eq(ob_scrub_text(s, "0123456789abc", 13, tiny, sizeof(tiny)), 9);
        cr_assert_str_eq(tiny, "012345678");
        ob_scrub_feed(s, "ok", 2);
        char rest[16];
        cr_assert_eq(ob_scrub_finish(s, rest, sizeof(rest)), 2);
        cr_assert_str_eq(rest, "ok");
        ob_scrub_free(s);
}

Test(scrub, secrets_are_refused_after_the_first_feed_and_above_the_limit)
{
        struct ob_scrub *s = scrubber(MAX, NULL);
        char *big = calloc(1, OB_SCRUB_MAX_SECRET + 2);
        cr_assert_not_null(big);
        memset(big, 'x', OB_SCRUB_MAX_SECRET + 1);
        cr_assert_eq(ob_scrub_add_secret(s, big, OB_SCRUB_MAX_SECRET + 1), -OB_ELIMIT);
        free(big);
        cr_assert_eq(ob_scrub_add_secret(s, "", 0), 0);
        cr_assert_eq(ob_scrub_add_secret(s, TOKEN, TOKEN_LEN), 0);
        ob_scrub_feed(s, "x", 1);
        cr_assert_eq(ob_scrub_add_secret(s, "late-secret", 11), -EINVAL);
        ob_scrub_free(s);
        cr_assert_eq(ob_scrub_new(0, &s), -EINVAL);
        ob_scrub_free(NULL);
}

Test(scrub, the_output_is_full_once_the_limit_is_reached)
{
        struct ob_scrub *s = scrubber(16, token_only);
        cr_assert_not(ob_scrub_full(s));
        ob_scrub_feed(s, "0123456789", 10);
        cr_assert_not(ob_scrub_full(s));
        char big[200];
        memset(big, 'z', sizeof(big));
        ob_scrub_feed(s, big, sizeof(big));
        cr_assert(ob_scrub_full(s));
        char out[17];
        cr_assert_eq(ob_scrub_finish(s, out, sizeof(out)), 16);
        cr_assert_str_eq(out, "0123456789zzzzzz");
        ob_scrub_free(s);
}

Test(scrub, a_scrubber_like_a_prototype_scrubs_the_same_and_the_prototype_takes_no_more_secrets)
{
        static const char *const secrets[] = {TOKEN, "p@ss/word", NULL};
        struct ob_scrub *proto = scrubber(64, secrets);
        const char *in = "echo " TOKEN " and cGFzcw and p%40ss%2Fword and " TOKEN;
        char *want = scrub(in, 40, secrets);
        for (size_t chunk = 1; chunk <= 7; chunk += 3) {
                struct ob_scrub *s = NULL;
                cr_assert_eq(ob_scrub_new_like(proto, 40, &s), 0);
                char *got = run_chunked(s, 40, in, strlen(in), chunk);
                cr_assert_str_eq(got, want, "chunk %zu", chunk);
                free(got);
        }
        cr_assert_eq(ob_scrub_add_secret(proto, "more", 4), -EINVAL);
        /* The prototype still scrubs a text of its own. */
        char out[64];
        cr_assert_geq(ob_scrub_text(proto, in, strlen(in), out, sizeof(out)), 0);
        assert_no_piece(out, TOKEN);
        free(want);
        ob_scrub_free(proto);
}
