/* ds389.c: a private 389 Directory Server for integration tests. */
#include "ds389.h"

#include <stdio.h>
#include <string.h>

#define DS389_SH OB_SOURCE_DIR "/tests/harness/ds389.sh"
#define DS389_ENV "OB_TEST_DS389_DIR"

int ob_test_ds389_share(void)
{
        /* dscreate ~10 s here; slower machines get 3 minutes. */
        int r = ob_test_dirsrv_share(DS389_SH, "389", DS389_ENV, 180);
        if (r < 0)
                fprintf(stderr, "ob_test_ds389_share: cannot start 389-DS: %s\n", strerror(-r));
        return r;
}

int ob_test_ds389_attach(struct ob_test_dirsrv *s)
{
        return ob_test_dirsrv_attach(DS389_ENV, s);
}

void ob_test_ds389_unshare(void)
{
        ob_test_dirsrv_unshare(DS389_SH, DS389_ENV);
}
