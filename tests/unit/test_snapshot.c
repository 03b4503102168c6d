/* The snapshot codec as the pass's spill file uses it: blobs appended one
 * after another to one buffer, each decoded from its own slice. */
#include <criterion/criterion.h>
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
