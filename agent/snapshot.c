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

static unsigned char *put_u32(unsigned char *o, uint32_t v)
{
        o[0] = v & 0xff;
        o[1] = (v >> 8) & 0xff;
        o[2] = (v >> 16) & 0xff;
        o[3] = (v >> 24) & 0xff;
        return o + 4;
}

static unsigned char *put_bytes(unsigned char *o, const char *p, size_t n)
{
        o = put_u32(o, (uint32_t)n);
        if (n)
                memcpy(o, p, n);
        return o + n;
}

/* The blob is sized first and written in one reservation; every length and
 * count is checked against 32 bits while sizing. */
int ob_snapshot_encode(const struct ob_account *a, struct ob_buf *b)
{
        size_t nattrs = 0;
        size_t id_len = a->id ? strlen(a->id) : 0, dn_len = a->dn ? strlen(a->dn) : 0;
        size_t total = 4 + 4 + id_len + 4 + dn_len + 4 + 4;
        if (id_len >= SNAP_ABSENT || dn_len >= SNAP_ABSENT)
                return -OB_ELIMIT;
        for (size_t i = 0; i < a->nattrs; i++) {
                const struct ob_attr *at = &a->attrs[i];
                if (at->nvals == 0)
                        continue;
                nattrs++;
                size_t nl = strlen(at->name);
                if (nl >= SNAP_ABSENT || at->nvals >= SNAP_ABSENT)
                        return -OB_ELIMIT;
                total += 4 + nl + 4;
                for (size_t j = 0; j < at->nvals; j++) {
                        if (at->vals[j].len >= SNAP_ABSENT)
                                return -OB_ELIMIT;
                        total += 4 + at->vals[j].len;
                }
        }
        if (nattrs >= SNAP_ABSENT)
                return -OB_ELIMIT;
        int r = ob_buf_reserve(b, total);
        if (r < 0)
                return r;
        size_t start = b->len; /* the checksum covers this blob only */
        unsigned char *o = (unsigned char *)b->data + start;
        memcpy(o, SNAP_MAGIC, 4);
        o += 4;
        o = a->id ? put_bytes(o, a->id, id_len) : put_u32(o, SNAP_ABSENT);
        o = a->dn ? put_bytes(o, a->dn, dn_len) : put_u32(o, SNAP_ABSENT);
        o = put_u32(o, (uint32_t)nattrs);
        for (size_t i = 0; i < a->nattrs; i++) {
                const struct ob_attr *at = &a->attrs[i];
                if (at->nvals == 0)
                        continue;
                o = put_bytes(o, at->name, strlen(at->name));
                o = put_u32(o, (uint32_t)at->nvals);
                for (size_t j = 0; j < at->nvals; j++)
                        o = put_bytes(o, at->vals[j].data, at->vals[j].len);
        }
        o = put_u32(o, snap_checksum(b->data + start, (size_t)(o - (unsigned char *)b->data) - start));
        b->len = (size_t)(o - (unsigned char *)b->data);
        b->data[b->len] = '\0';
        return 0;
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
