/* snapshot.h: the byte format of an account snapshot in the state store.
 *
 * A snapshot keeps an account's id, dn and attributes so a deleted account can
 * still be rendered into requests. The state store writes the blob as is; the
 * bytes read back are hostile (a damaged or crafted file), so decoding checks
 * every length against what is left and a checksum over the whole blob.
 *
 * Format: "OBS1", then little-endian u32 lengths followed by bytes:
 *   id, dn (0xffffffff: absent), u32 nattrs, per attribute: name, u32 nvals,
 *   per value: bytes;
 * then a u32 FNV-1a checksum of everything before it. SQLite checks the
 * structure of its pages but not their content: the checksum catches a value
 * garbled on disk. Attributes without values are not kept (ob_account_add
 * cannot make them).
 *
 * Encoding the account that a decode returned gives the same bytes back.
 */
#ifndef OB_SNAPSHOT_H
#define OB_SNAPSHOT_H

#include <stddef.h>

#include "account.h"
#include "util.h"

/* Appends the snapshot of a to b. Returns 0, -ENOMEM, or -OB_ELIMIT when a
 * length or count does not fit in 32 bits (b then holds a partial blob). */
int ob_snapshot_encode(const struct ob_account *a, struct ob_buf *b);

/* Decodes len bytes at blob into a new account, owned by the caller (free with
 * ob_account_free). Returns 0, -OB_ESTATE for a malformed blob (bad magic or
 * checksum, a length past the end, trailing bytes, a NUL inside id, dn or an
 * attribute name, an attribute without values), or -ENOMEM. *ret is written
 * only on success. */
int ob_snapshot_decode(const void *blob, size_t len, struct ob_account **ret);

#endif
