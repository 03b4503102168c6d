/* run.h: run the offboard binary (or any program) and capture its output. */
#ifndef OB_TEST_RUN_H
#define OB_TEST_RUN_H

#include <stdbool.h>
#include <stddef.h>

/* Runs argv (argv[0] a path) with stdout and stderr captured, killed after
 * timeout_s. Returns the exit status (128+signal when killed), or -1 if it
 * could not run. *ret_out / *ret_err are malloc'd NUL-terminated strings. */
int ob_test_run(const char *const argv[], int timeout_s, char **ret_out, char **ret_err);

/* Reads a whole file; NULL if it cannot. */
char *ob_test_read_file(const char *path);

/* Runs Python's strict JSON parser on doc (written to workdir/report.json):
 * a duplicate key, NaN or Infinity fail; with one_line, doc must be one line
 * ending in a newline. Then each assertion, a Python expression over d.
 * Fails the test (Criterion) when anything does not hold. */
void ob_test_json_check(const char *workdir, const char *doc, bool one_line, const char *const *asserts, size_t n);

/* Counts non-overlapping occurrences of needle in haystack. */
int ob_test_count(const char *haystack, const char *needle);

#endif
