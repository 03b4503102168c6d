/* The systemd units as shipped: systemd's own offline security analysis
 * rates each 2.0 or lower (lower is safer; 10 is an unconfined service). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The overall exposure systemd-analyze gives unit (a path), or -1. */
static double exposure(const char *unit, char *out, size_t outlen)
{
        char cmd[640];
        snprintf(cmd, sizeof(cmd), "systemd-analyze security --offline=true --no-pager '%s' 2>&1", unit);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p, "cannot run systemd-analyze");
        size_t n = fread(out, 1, outlen - 1, p);
        out[n] = '\0';
        pclose(p);
        const char *at = strstr(out, "Overall exposure level for ");
        const char *colon = at ? strchr(at, ':') : NULL;
        return colon ? strtod(colon + 1, NULL) : -1;
}

static void check(const char *name)
{
        static char out[1 << 16];
        char path[512];
        snprintf(path, sizeof(path), "%s/systemd/%s", OB_SOURCE_DIR, name);
        double e = exposure(path, out, sizeof(out));
        cr_assert_geq(e, 0.0, "no rating for %s:\n%s", name, out);
        cr_assert_leq(e, 2.0, "%s is rated %.1f (at most 2.0):\n%s", name, e, out);
}

Test(units, the_service_is_rated_2_or_lower)
{
        check("offboard.service");
}

Test(units, the_one_shot_reconcile_is_rated_2_or_lower)
{
        check("offboard-reconcile.service");
}
