/* util.h: error codes, cleanup helpers, growable strings, checked parsers.
 *
 * Every function in offboard returns int: 0 on success, a negative errno, or a
 * negative project code from the OB_E* range below (absolute value above 4095),
 * which ob_strerror() names. Output parameters are called ret_x and are only
 * written on success.
 */
#ifndef OB_UTIL_H
#define OB_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum {
        OB_EBASE = 4096,
        OB_ECONFIG,       /* configuration invalid */
        OB_EDIRECTORY,    /* directory unreachable, bind or search failed */
        OB_ESIZELIMIT,    /* search hit a size or time limit */
        OB_EEMPTY,        /* search returned fewer accounts than expected */
        OB_ENOTFOUND,     /* entry does not exist */
        OB_EASSERTION,    /* write-back refused: entry changed concurrently */
        OB_EINSECURE,     /* a connection would send a secret in clear text */
        OB_ETEMPLATE,     /* a template could not be rendered safely */
        OB_ESTATE,        /* state store unreadable or corrupt */
        OB_EHTTP,         /* HTTP request failed */
        OB_ESAFETY,       /* circuit breaker: plan too large */
        OB_ELIMIT,        /* a value exceeded a configured or built-in limit */
        OB_ESYNCREFRESH,  /* the server wants a change feed to start over (RFC 4533 e-syncRefreshRequired) */
};

const char *ob_strerror(int err);

/* Cleanup helpers (gnu11). */
#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void ob_freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(ob_freep)
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) _ptr_ = (p);           \
                (p) = NULL;                          \
                _ptr_;                               \
        })

#define OB_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that reports failure; callers check. */
char *ob_strdup(const char *s);
char *ob_strndup(const char *s, size_t n);

/* A growable NUL-terminated string. */
struct ob_buf {
        char *data;
        size_t len;
        size_t cap;
        bool oom; /* sticky: once an append failed, the buffer is unusable */
};

void ob_buf_init(struct ob_buf *b);
void ob_buf_free(struct ob_buf *b);
void ob_buf_reset(struct ob_buf *b);
int ob_buf_add(struct ob_buf *b, const char *s, size_t n);
/* Room for extra more bytes (and the NUL) without growing again: 0 or -ENOMEM. */
int ob_buf_reserve(struct ob_buf *b, size_t extra);
int ob_buf_adds(struct ob_buf *b, const char *s);
int ob_buf_addc(struct ob_buf *b, char c);
int ob_buf_printf(struct ob_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ob_buf_vprintf(struct ob_buf *b, const char *fmt, va_list ap);
/* Hands the string over (never NULL on success; "" for an empty buffer). */
int ob_buf_steal(struct ob_buf *b, char **ret);
static inline void ob_buf_freep(struct ob_buf *b) { ob_buf_free(b); }
#define _cleanup_buf_ _cleanup_(ob_buf_freep)

/* Checked number parsing: the whole string must be consumed. */
int ob_parse_i64(const char *s, int64_t *ret);
int ob_parse_u64(const char *s, uint64_t *ret); /* accepts 0x prefix */
/* Durations: "30", "30s", "5m", "2h", "7d"; result in milliseconds. */
int ob_parse_duration_ms(const char *s, int64_t *ret);

/* Read a secret from a file: one line, trailing newline stripped. The buffer
 * is wiped before it is freed with ob_secret_free(). */
int ob_read_secret_file(const char *path, char **ret);
void ob_secret_free(char *s);

/* NULL-terminated string lists. */
int ob_strv_add_unique_ci(char ***list, const char *s); /* appends unless present (case-insensitive) */
void ob_strv_free(char **l);

/* Lower-case ASCII compare helpers. */
bool ob_streq_ci(const char *a, const char *b);

/* Wall clock in seconds since the epoch. Only main.c lets OFFBOARD_NOW move
 * the clock, and only for `plan`: a pass that acts always uses the real one. */
int64_t ob_now(void);

#endif
