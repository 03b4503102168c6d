/* account.c: one directory entry. */
#include "account.h"

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ob_account *ob_account_new(void)
{
        return calloc(1, sizeof(struct ob_account));
}

struct ob_account_chunk {
        struct ob_account_chunk *next;
        size_t used, cap;
        alignas(max_align_t) char data[];
};

#define OB_ACCOUNT_CHUNK_FIRST 1024
#define OB_ACCOUNT_CHUNK_MAX (16 * 1024)

/* n bytes aligned for a struct ob_value, from the account's current chunk or
 * a new one (chunks grow from 1 KiB to 16 KiB; a larger value gets a chunk
 * of its own size). What a chunk cannot fit any more is left unused. */
static void *chunk_alloc(struct ob_account *a, size_t n)
{
        const size_t al = alignof(struct ob_value);
        struct ob_account_chunk *c = a->chunks;
        size_t off = c ? (c->used + al - 1) & ~(al - 1) : 0;
        if (!c || off > c->cap || n > c->cap - off) {
                size_t cap = c ? (c->cap < OB_ACCOUNT_CHUNK_MAX ? c->cap * 2 : c->cap) : OB_ACCOUNT_CHUNK_FIRST;
                if (cap < n)
                        cap = n;
                if (cap > SIZE_MAX - sizeof(*c))
                        return NULL;
                struct ob_account_chunk *nc = malloc(sizeof(*nc) + cap);
                if (!nc)
                        return NULL;
                *nc = (struct ob_account_chunk){.next = c, .cap = cap};
                a->chunks = c = nc;
                off = 0;
        }
        c->used = off + n;
        return c->data + off;
}

void ob_account_free(struct ob_account *a)
{
        if (!a)
                return;
        for (struct ob_account_chunk *c = a->chunks, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        free(a->attrs);
        free(a->id);
        free(a->dn);
        free(a->unreadable);
        free(a);
}

static inline int lower(int c)
{
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

const struct ob_attr *ob_account_attr(const struct ob_account *a, const char *name)
{
        if (!a || !name)
                return NULL;
        /* Called for every rule on every entry: the first letter rules out
         * most attributes before a full case-insensitive compare. */
        int first = lower((unsigned char)name[0]);
        for (size_t i = 0; i < a->nattrs; i++)
                if (lower((unsigned char)a->attrs[i].name[0]) == first && strcasecmp(a->attrs[i].name, name) == 0)
                        return &a->attrs[i];
        return NULL;
}

const char *ob_account_get(const struct ob_account *a, const char *name)
{
        const struct ob_attr *at = ob_account_attr(a, name);
        return at && at->nvals > 0 ? at->vals[0].data : NULL;
}

int ob_account_add(struct ob_account *a, const char *name, const char *val, size_t len)
{
        struct ob_attr *at = (struct ob_attr *)ob_account_attr(a, name);
        if (!at) {
                if (a->nattrs == a->cap) {
                        size_t cap = a->cap ? a->cap * 2 : 16;
                        struct ob_attr *n = realloc(a->attrs, cap * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        a->attrs = n;
                        a->cap = cap;
                }
                size_t nl = strlen(name);
                char *copy = chunk_alloc(a, nl + 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, name, nl + 1);
                at = &a->attrs[a->nattrs];
                *at = (struct ob_attr){.name = copy};
                a->nattrs++;
        }
        if (at->nvals == at->cap) {
                /* The old array stays in its chunk, unused. */
                size_t cap = at->cap ? at->cap * 2 : 1;
                if (cap > SIZE_MAX / sizeof(struct ob_value))
                        return -ENOMEM;
                struct ob_value *v = chunk_alloc(a, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                if (at->nvals)
                        memcpy(v, at->vals, at->nvals * sizeof(*v));
                at->vals = v;
                at->cap = cap;
        }
        char *d = len < SIZE_MAX ? chunk_alloc(a, len + 1) : NULL;
        if (!d)
                return -ENOMEM;
        if (len)
                memcpy(d, val, len);
        d[len] = '\0';
        at->vals[at->nvals++] = (struct ob_value){.data = d, .len = len};
        return 0;
}

/* FNV-1a over one string, then mixed so that the sum over attributes does not
 * depend on their order. */
static unsigned long long fnv(const void *p, size_t n, unsigned long long h)
{
        const unsigned char *c = p;
        for (size_t i = 0; i < n; i++) {
                h ^= c[i];
                h *= 1099511628211ULL;
        }
        return h;
}

static unsigned long long mix(unsigned long long x)
{
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}

unsigned long long ob_account_digest(const struct ob_account *a, const char *const *skip)
{
        const unsigned long long basis = 14695981039346656037ULL;
        unsigned long long sum = 0;
        if (a->id)
                sum += mix(fnv(a->id, strlen(a->id), basis) ^ 1);
        if (a->dn)
                sum += mix(fnv(a->dn, strlen(a->dn), basis) ^ 2);
        for (size_t i = 0; i < a->nattrs; i++) {
                const struct ob_attr *at = &a->attrs[i];
                bool skipped = false;
                for (size_t k = 0; skip && skip[k] && !skipped; k++)
                        skipped = lower((unsigned char)skip[k][0]) == lower((unsigned char)at->name[0]) &&
                                  strcasecmp(skip[k], at->name) == 0;
                if (skipped)
                        continue;
                unsigned long long hn = basis;
                for (const char *c = at->name; *c; c++) {
                        unsigned char l = (unsigned char)*c;
                        if (l >= 'A' && l <= 'Z')
                                l = (unsigned char)(l + 32);
                        hn = fnv(&l, 1, hn);
                }
                for (size_t j = 0; j < at->nvals; j++)
                        sum += mix(fnv(at->vals[j].data, at->vals[j].len, hn));
        }
        return sum;
}

int ob_account_dup(const struct ob_account *a, struct ob_account **ret)
{
        struct ob_account *c = ob_account_new();
        if (!c)
                return -ENOMEM;
        c->id = a->id ? strdup(a->id) : NULL;
        c->dn = a->dn ? strdup(a->dn) : NULL;
        c->unreadable = a->unreadable ? strdup(a->unreadable) : NULL;
        if ((a->id && !c->id) || (a->dn && !c->dn) || (a->unreadable && !c->unreadable)) {
                ob_account_free(c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < a->nattrs; i++)
                for (size_t j = 0; j < a->attrs[i].nvals; j++)
                        if (ob_account_add(c, a->attrs[i].name, a->attrs[i].vals[j].data, a->attrs[i].vals[j].len) <
                            0) {
                                ob_account_free(c);
                                return -ENOMEM;
                        }
        *ret = c;
        return 0;
}
