/* snapshot.c: the account snapshot codec (format in snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SNAP_MAGIC "OBS1"
#define SNAP_ABSENT UINT32_MAX

static int snap_raw_u32(struct ob_buf *b, uint32_t v)
{
        unsigned char c[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
        return ob_buf_add(b, (const char *)c, sizeof(c));
}

/* A length or a count. */
static int snap_u32(struct ob_buf *b, size_t v)
{
        if (v >= SNAP_ABSENT)
                return -OB_ELIMIT;
        return snap_raw_u32(b, (uint32_t)v);
}

static int snap_bytes(struct ob_buf *b, const char *p, size_t n)
{
        int r;
        if (!p)
                return snap_raw_u32(b, SNAP_ABSENT);
        r = snap_u32(b, n);
        if (r < 0)
                return r;
        return ob_buf_add(b, p, n);
}

static uint32_t snap_checksum(const void *p, size_t n)
{
        const unsigned char *c = p;
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++) {
                h ^= c[i];
                h *= 16777619u;
        }
        return h;
}

int ob_snapshot_encode(const struct ob_account *a, struct ob_buf *b)
{
        int r;
        size_t nattrs = 0;
        size_t start = b->len; /* the checksum covers this blob only */

        for (size_t i = 0; i < a->nattrs; i++)
                if (a->attrs[i].nvals > 0)
                        nattrs++;
        r = ob_buf_add(b, SNAP_MAGIC, 4);
        if (r >= 0)
                r = snap_bytes(b, a->id, a->id ? strlen(a->id) : 0);
        if (r >= 0)
                r = snap_bytes(b, a->dn, a->dn ? strlen(a->dn) : 0);
        if (r >= 0)
                r = snap_u32(b, nattrs);
        for (size_t i = 0; r >= 0 && i < a->nattrs; i++) {
                const struct ob_attr *at = &a->attrs[i];
                if (at->nvals == 0)
                        continue;
                r = snap_bytes(b, at->name, strlen(at->name));
                if (r >= 0)
                        r = snap_u32(b, at->nvals);
                for (size_t j = 0; r >= 0 && j < at->nvals; j++)
                        r = snap_bytes(b, at->vals[j].data, at->vals[j].len);
        }
        if (r >= 0)
                r = snap_raw_u32(b, snap_checksum(b->data + start, b->len - start));
        return r;
}

struct snap_reader {
        const unsigned char *p;
        size_t left;
};

static int snap_read_u32(struct snap_reader *rd, uint32_t *ret)
{
        if (rd->left < 4)
                return -OB_ESTATE;
        *ret = (uint32_t)rd->p[0] | (uint32_t)rd->p[1] << 8 | (uint32_t)rd->p[2] << 16 | (uint32_t)rd->p[3] << 24;
        rd->p += 4;
        rd->left -= 4;
        return 0;
}

/* A pointer into the blob and its length; *ret_p NULL when absent. */
static int snap_read_bytes(struct snap_reader *rd, bool may_be_absent, const char **ret_p, size_t *ret_n)
{
        uint32_t n;
        if (snap_read_u32(rd, &n) < 0)
                return -OB_ESTATE;
        if (n == SNAP_ABSENT) {
                if (!may_be_absent)
                        return -OB_ESTATE;
                *ret_p = NULL;
                *ret_n = 0;
                return 0;
        }
        if (n > rd->left)
                return -OB_ESTATE;
        *ret_p = (const char *)rd->p;
        *ret_n = n;
        rd->p += n;
        rd->left -= n;
        return 0;
}

/* -OB_ESTATE for a malformed blob, -ENOMEM. */
int ob_snapshot_decode(const void *blob, size_t len, struct ob_account **ret)
{
        _cleanup_account_ struct ob_account *a = ob_account_new();
        struct snap_reader rd = {blob, len};
        const char *p;
        size_t n;
        uint32_t nattrs;
        int r;

        if (!a)
                return -ENOMEM;
        if (len < 8 || memcmp(blob, SNAP_MAGIC, 4) != 0)
                return -OB_ESTATE;
        struct snap_reader sum = {rd.p + len - 4, 4};
        uint32_t want;
        if (snap_read_u32(&sum, &want) < 0 || snap_checksum(blob, len - 4) != want)
                return -OB_ESTATE;
        rd.p += 4;
        rd.left -= 8;

        if (snap_read_bytes(&rd, true, &p, &n) < 0)
                return -OB_ESTATE;
        if (p) {
                if (memchr(p, '\0', n))
                        return -OB_ESTATE;
                a->id = strndup(p, n);
                if (!a->id)
                        return -ENOMEM;
        }
        if (snap_read_bytes(&rd, true, &p, &n) < 0)
                return -OB_ESTATE;
        if (p) {
                if (memchr(p, '\0', n))
                        return -OB_ESTATE;
                a->dn = strndup(p, n);
                if (!a->dn)
                        return -ENOMEM;
        }
        if (snap_read_u32(&rd, &nattrs) < 0)
                return -OB_ESTATE;
        for (uint32_t i = 0; i < nattrs; i++) {
                const char *name;
                size_t name_len;
                uint32_t nvals;
                if (snap_read_bytes(&rd, false, &name, &name_len) < 0 || name_len == 0 ||
                    memchr(name, '\0', name_len))
                        return -OB_ESTATE;
                _cleanup_free_ char *name_z = strndup(name, name_len);
                if (!name_z)
                        return -ENOMEM;
                if (snap_read_u32(&rd, &nvals) < 0 || nvals == 0)
                        return -OB_ESTATE;
                for (uint32_t j = 0; j < nvals; j++) {
                        if (snap_read_bytes(&rd, false, &p, &n) < 0)
                                return -OB_ESTATE;
                        r = ob_account_add(a, name_z, p, n);
                        if (r < 0)
                                return r;
                }
        }
        if (rd.left != 0)
                return -OB_ESTATE;
        *ret = TAKE_PTR(a);
        return 0;
}
