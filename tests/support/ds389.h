/* ds389.h: a private 389 Directory Server for integration tests
 * (tests/harness/ds389.sh), used like samba.h (struct ob_test_dirsrv and its
 * helpers are shared):
 *
 *   ReportHook(PRE_ALL)(struct criterion_test_set *t) { (void)t; ob_test_ds389_share(); }
 *   ReportHook(POST_ALL)(struct criterion_global_stats *s) { (void)s; ob_test_ds389_unshare(); }
 *   static void setup(void) { cr_assert_eq(ob_test_ds389_attach(&srv), 0); }
 *
 * dscreate takes ~10 s; the server listens on 127.0.0.1 only.
 */
#ifndef OB_TEST_DS389_H
#define OB_TEST_DS389_H

#include "samba.h"

int ob_test_ds389_share(void);
int ob_test_ds389_attach(struct ob_test_dirsrv *s);
void ob_test_ds389_unshare(void);

#endif
