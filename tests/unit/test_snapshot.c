/* The snapshot codec as the pass's spill file uses it: blobs appended one
 * after another to one buffer, each decoded from its own slice. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "account.h"
#include "snapshot.h"
#include "util.h"

static struct ob_account *account(const char *id, const char *dn, const char *uid)
{
        struct ob_account *a = ob_account_new();
        cr_assert(a);
        a->id = strdup(id);
        a->dn = strdup(dn);
        cr_assert_eq(ob_account_add(a, "uid", uid, strlen(uid)), 0);
        cr_assert_eq(ob_account_add(a, "cn", "Name \xc3\xa9", 7), 0);
        return a;
}

Test(snapshot, blobs_appended_to_one_buffer_each_decode_from_their_slice)
{
        struct ob_account *a = account("id-1", "uid=alice,ou=people,dc=example,dc=org", "alice");
        struct ob_account *b = account("id-2", "uid=bob,ou=people,dc=example,dc=org", "bob");
        struct ob_buf buf;
        ob_buf_init(&buf);
        cr_assert_eq(ob_snapshot_encode(a, &buf), 0);
        size_t first = buf.len;
        cr_assert_eq(ob_snapshot_encode(b, &buf), 0);
        struct ob_account *da = NULL, *db = NULL;
        cr_assert_eq(ob_snapshot_decode(buf.data, first, &da), 0);
        cr_assert_eq(ob_snapshot_decode(buf.data + first, buf.len - first, &db), 0, "the second blob must decode alone");
        cr_assert_str_eq(da->id, "id-1");
        cr_assert_str_eq(db->id, "id-2");
        cr_assert_str_eq(ob_account_get(db, "uid"), "bob");
        cr_assert_str_eq(db->dn, "uid=bob,ou=people,dc=example,dc=org");
        /* A damaged byte in the second blob is caught by its own checksum. */
        buf.data[first + 10] ^= 1;
        struct ob_account *bad = NULL;
        cr_assert_eq(ob_snapshot_decode(buf.data + first, buf.len - first, &bad), -OB_ESTATE);
        ob_account_free(a);
        ob_account_free(b);
        ob_account_free(da);
        ob_account_free(db);
        ob_buf_free(&buf);
}

/* The format of snapshot.h, byte for byte: magic, id, absent dn, attribute
 * count, each attribute's name, value count and values, FNV-1a checksum. */
Test(snapshot, the_encoding_is_the_documented_format_byte_for_byte)
{
        struct ob_account *a = ob_account_new();
        cr_assert_not_null(a);
        a->id = strdup("id1");
        cr_assert_eq(ob_account_add(a, "cn", "Jo", 2), 0);
        cr_assert_eq(ob_account_add(a, "cn", "", 0), 0);
        struct ob_buf b;
        ob_buf_init(&b);
        cr_assert_eq(ob_buf_add(&b, "xy", 2), 0); /* a blob appended after other bytes */
        cr_assert_eq(ob_snapshot_encode(a, &b), 0);
        static const unsigned char body[] = {'O', 'B', 'S', '1', 3, 0, 0, 0, 'i', 'd', '1', 0xff, 0xff, 0xff, 0xff,
                                             1,   0,   0,   0,   2, 0, 0, 0, 'c', 'n', 2, 0, 0, 0, 2, 0, 0, 0,
                                             'J', 'o', 0,   0,   0, 0};
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < sizeof(body); i++) {
                h ^= body[i];
                h *= 16777619u;
        }
        cr_assert_eq(b.len, 2 + sizeof(body) + 4);
        cr_assert_eq(memcmp(b.data + 2, body, sizeof(body)), 0);
        const unsigned char *sum = (const unsigned char *)b.data + 2 + sizeof(body);
        cr_assert_eq((uint32_t)sum[0] | (uint32_t)sum[1] << 8 | (uint32_t)sum[2] << 16 | (uint32_t)sum[3] << 24, h);
        cr_assert_eq(b.data[b.len], '\0');
        struct ob_account *back = NULL;
        cr_assert_eq(ob_snapshot_decode(b.data + 2, b.len - 2, &back), 0);
        struct ob_buf again;
        ob_buf_init(&again);
        cr_assert_eq(ob_snapshot_encode(back, &again), 0);
        cr_assert_eq(again.len, b.len - 2);
        cr_assert_eq(memcmp(again.data, b.data + 2, again.len), 0);
        ob_buf_free(&again);
        ob_buf_free(&b);
        ob_account_free(back);
        ob_account_free(a);
}

/* Values live in chunks of the account: many of them, large ones and many
 * attributes each keep their bytes, NUL-terminated, across the chunks. */
Test(snapshot, an_account_with_many_large_and_binary_values_keeps_each_value)
{
        struct ob_account *a = ob_account_new();
        cr_assert_not_null(a);
        a->id = strdup("id-many");
        static char big[40000];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char)(i % 251);
        char name[32], val[64];
        for (int i = 0; i < 40; i++) {
                snprintf(name, sizeof(name), "attr%d", i);
                for (int j = 0; j <= i; j++) {
                        int n = snprintf(val, sizeof(val), "value %d of %d", j, i);
                        cr_assert_eq(ob_account_add(a, name, val, (size_t)n), 0);
                }
        }
        cr_assert_eq(ob_account_add(a, "jpegPhoto", big, sizeof(big)), 0);
        cr_assert_eq(ob_account_add(a, "jpegPhoto", big + 1, 17), 0);
        cr_assert_eq(a->nattrs, 41);
        for (int i = 0; i < 40; i++) {
                snprintf(name, sizeof(name), "ATTR%d", i);
                const struct ob_attr *at = ob_account_attr(a, name);
                cr_assert_not_null(at);
                cr_assert_eq(at->nvals, (size_t)i + 1);
                for (int j = 0; j <= i; j++) {
                        int n = snprintf(val, sizeof(val), "value %d of %d", j, i);
                        cr_assert_eq(at->vals[j].len, (size_t)n);
                        cr_assert_str_eq(at->vals[j].data, val);
                }
        }
        const struct ob_attr *photo = ob_account_attr(a, "jpegphoto");
        cr_assert_eq(photo->nvals, 2);
        cr_assert_eq(photo->vals[0].len, sizeof(big));
        cr_assert_eq(memcmp(photo->vals[0].data, big, sizeof(big)), 0);
        cr_assert_eq(photo->vals[0].data[sizeof(big)], '\0');
        cr_assert_eq(memcmp(photo->vals[1].data, big + 1, 17), 0);
        struct ob_account *copy = NULL;
        cr_assert_eq(ob_account_dup(a, &copy), 0);
        cr_assert_eq(ob_account_digest(copy, NULL), ob_account_digest(a, NULL));
        struct ob_buf b1, b2;
        ob_buf_init(&b1);
        ob_buf_init(&b2);
        cr_assert_eq(ob_snapshot_encode(a, &b1), 0);
        cr_assert_eq(ob_snapshot_encode(copy, &b2), 0);
        cr_assert_eq(b1.len, b2.len);
        cr_assert_eq(memcmp(b1.data, b2.data, b1.len), 0);
        ob_buf_free(&b1);
        ob_buf_free(&b2);
        ob_account_free(copy);
        ob_account_free(a);
}
