/* recorder.h: a real HTTP(S) server for tests (tests/harness/recorder.py) that
 * records every request as one JSON line, and the helpers to read it back.
 *
 * Start it in a test, stop it in the suite's .fini so it goes away even when
 * an assertion fails; it also gets SIGTERM if the test process dies. Its
 * port is free (bound to port 0 on 127.0.0.1). Set OB_TEST_KEEP=1 to keep
 * the work directory after stop; OB_TEST_PYTHON picks the interpreter
 * (default /usr/bin/python3 when it exists, else python3 from PATH).
 */
#ifndef OB_TEST_RECORDER_H
#define OB_TEST_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

struct ob_test_recorder {
        char dir[256];      /* work directory (log, portfile, rules, tls/) */
        char base_url[128]; /* "http://127.0.0.1:PORT" or "https://..." */
        char log[300];      /* the JSON-lines log */
        int pid;            /* 0 when not running */
        bool tls;
        char ca[300];       /* DIR/tls/ca.pem when tls, else "" */
};

/* Starts recorder.py (TLS with a cert from tests/harness/tls.sh DIR/tls if
 * tls); rules_json (a JSON list, see recorder.py) may be NULL. Waits at most
 * 10 s for the server to listen. Returns 0 or a negative errno. */
int ob_test_recorder_start(struct ob_test_recorder *r, const char *rules_json, bool tls);
/* Replaces the rules of a running server (atomically): the next request is
 * answered by them, with their "times" counted afresh. 0 or a negative errno. */
int ob_test_recorder_set_rules(const struct ob_test_recorder *r, const char *rules_json);
/* Stops the server and removes its directory. Safe to call twice, or on a
 * recorder that never started (zeroed). */
void ob_test_recorder_stop(struct ob_test_recorder *r);
/* The whole log as a malloc'd string ("" if empty), NULL on allocation failure. */
char *ob_test_recorder_log(const struct ob_test_recorder *r);
/* Number of recorded requests. */
int ob_test_recorder_count(const struct ob_test_recorder *r);
/* Path to the CA that signed the TLS server cert (DIR/tls/ca.pem), or "" if not tls. */
const char *ob_test_recorder_ca(const struct ob_test_recorder *r);

/* One recorded request, parsed from a log line. */
struct ob_test_request {
        int seq;
        char *method;
        char *path; /* the raw request target, query included */
        char *body; /* decoded (also when the log holds it as base64), NUL-terminated */
        size_t body_len;
        int inflight; /* requests in progress when this one arrived, itself included */
        double time;
        size_t nheaders;
        char **header_names;
        char **header_values;
};

/* Parses the log into an array of *ret_n requests in arrival order. Returns 0,
 * -ENOMEM, or -EINVAL when a line is not what recorder.py writes. */
int ob_test_recorder_requests(const struct ob_test_recorder *r, struct ob_test_request **ret, size_t *ret_n);
void ob_test_requests_free(struct ob_test_request *q, size_t n);
/* The value of a header (name compared case-insensitively), NULL when absent. */
const char *ob_test_request_header(const struct ob_test_request *q, const char *name);
/* The highest "inflight" seen in the log (0 when empty). */
int ob_test_recorder_max_inflight(const struct ob_test_recorder *r);

#endif
