/* log.c: structured lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static enum ob_log_level ob_log_max = OB_LOG_INFO;

void ob_log_set_level(enum ob_log_level level)
{
        ob_log_max = level;
}

static bool ob_log_quiet;

void ob_log_set_quiet(bool quiet)
{
        ob_log_quiet = quiet;
}

void ob_log(enum ob_log_level level, const char *fmt, ...)
{
        static const char *const names[] = {"error", "warning", "info", "debug"};
        if (ob_log_quiet && level < OB_LOG_INFO)
                level = OB_LOG_DEBUG;
        if (level > ob_log_max)
                return;
        char line[2048];
        int n = snprintf(line, sizeof(line), "level=%s ", names[level]);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        fprintf(stderr, "offboard: %s\n", line);
}

const char *ob_log_quote(const char *s)
{
        static char bufs[4][256];
        static int which;
        char *out = bufs[which];
        which = (which + 1) % 4;
        size_t o = 0;
        out[o++] = '"';
        for (size_t i = 0; s && s[i] && o < 240; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(out + o, 6, "\\x%02x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        if (s && strlen(s) > 200 && o >= 240) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o++] = '"';
        out[o] = '\0';
        return out;
}
