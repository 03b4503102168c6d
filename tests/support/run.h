/* run.h: run the offboard binary (or any program) and capture its output. */
#ifndef OB_TEST_RUN_H
#define OB_TEST_RUN_H

/* Runs argv (argv[0] a path) with stdout and stderr captured, killed after
 * timeout_s. Returns the exit status (128+signal when killed), or -1 if it
 * could not run. *ret_out / *ret_err are malloc'd NUL-terminated strings. */
int ob_test_run(const char *const argv[], int timeout_s, char **ret_out, char **ret_err);

/* Reads a whole file; NULL if it cannot. */
char *ob_test_read_file(const char *path);

/* Counts non-overlapping occurrences of needle in haystack. */
int ob_test_count(const char *haystack, const char *needle);

#endif
