/* curl_floor.c: how fast libcurl's multi interface alone sends the HTTP
 * pass's requests, with nothing of offboard around it: no directory, no
 * state store, no templates, no journal. It is the ceiling for any client
 * built on libcurl multi (as offboard is, by design) on this machine, to
 * put next to wrk's rate and to offboard's HTTP phase.
 *
 *   cc -O2 -o curl_floor bench/curl_floor.c -lcurl
 *   curl_floor URL_BASE REQUESTS CONCURRENCY
 *
 * URL_BASE is like http://127.0.0.1:PORT/api (nginx answering 200). The
 * requests are those of bench/http_pass.sh's pass, in the same mix: for
 * each account a POST with a small JSON body and a bearer token, a second
 * POST, then a DELETE. The socket and timer callbacks drive an epoll loop
 * the way agent/http.c and agent/loop.c do; easy handles are reused.
 * Prints the requests per second over the run. Traffic to 127.0.0.1 only;
 * stops by itself after REQUESTS answers (or 120 s).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

static int epfd;
static long timeout_ms = -1;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
        (void)e, (void)u, (void)sp;
        struct epoll_event ev = {.data.fd = s};
        if (what == CURL_POLL_REMOVE) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
                return 0;
        }
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) < 0)
                epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
        return 0;
}

static int on_timer(CURLM *m, long ms, void *u)
{
        (void)m, (void)u;
        timeout_ms = ms;
        return 0;
}

static size_t on_write(char *p, size_t s, size_t n, void *u)
{
        (void)p, (void)u;
        return s * n;
}

struct slot {
        CURL *easy;
        struct curl_slist *headers;
        long next; /* the request number it carries */
        char url[256];
        char body[128];
};

static void prepare(struct slot *sl, const char *base, long i)
{
        long account = i / 3;
        int kind = (int)(i % 3);
        CURL *e = sl->easy;
        curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_PRIVATE, sl);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl->headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "curl_floor");
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
        if (kind == 0) {
                snprintf(sl->url, sizeof(sl->url), "%s/users/user%06ld/sessions/revoke", base, account);
                snprintf(sl->body, sizeof(sl->body), "{\"reason\":\"employeeType is Inactive\",\"status\":\"inactive\"}");
        } else if (kind == 1) {
                snprintf(sl->url, sizeof(sl->url), "%s/users/user%06ld/transfer", base, account);
                snprintf(sl->body, sizeof(sl->body), "{\"to\":\"user000001\",\"via\":\"manager\"}");
        } else {
                snprintf(sl->url, sizeof(sl->url), "%s/licenses/user%06ld", base, account);
        }
        curl_easy_setopt(e, CURLOPT_URL, sl->url);
        if (kind < 2) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(sl->body));
                curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, sl->body);
        } else {
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        }
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: curl_floor URL_BASE REQUESTS CONCURRENCY\n");
                return 2;
        }
        const char *base = argv[1];
        long total = atol(argv[2]), conc = atol(argv[3]);
        if (total < 1 || conc < 1 || conc > 1024)
                return 2;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        CURLM *m = curl_multi_init();
        curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
        struct slot *slots = calloc((size_t)conc, sizeof(*slots));
        long started = 0, done = 0, failed = 0;
        for (long k = 0; k < conc; k++) {
                slots[k].easy = curl_easy_init();
                slots[k].headers = curl_slist_append(NULL, "Authorization: Bearer bench-token");
                slots[k].headers = curl_slist_append(slots[k].headers, "Content-Type: application/json");
                slots[k].headers = curl_slist_append(slots[k].headers, "Idempotency-Key: offboard-0000-deactivate-1");
        }
        double t0 = now();
        for (long k = 0; k < conc && started < total; k++) {
                prepare(&slots[k], base, started++);
                curl_multi_add_handle(m, slots[k].easy);
        }
        int running;
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        struct epoll_event evs[64];
        while (done < total && now() - t0 < 120) {
                int n = epoll_wait(epfd, evs, 64, timeout_ms < 0 ? 1000 : (int)timeout_ms);
                if (n == 0)
                        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
                for (int i = 0; i < n; i++) {
                        int f = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                                (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
                        curl_multi_socket_action(m, evs[i].data.fd, f, &running);
                }
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(m, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        CURL *e = msg->easy_handle;
                        struct slot *sl;
                        long code = 0;
                        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
                        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
                        if (msg->data.result != CURLE_OK || code / 100 != 2)
                                failed++;
                        done++;
                        curl_multi_remove_handle(m, e);
                        if (started < total) {
                                prepare(sl, base, started++);
                                curl_multi_add_handle(m, e);
                        }
                }
        }
        double t = now() - t0;
        printf("%ld requests (%ld failed) in %.2f s: %.0f req/s at concurrency %ld\n", done, failed, t, done / t,
               conc);
        for (long k = 0; k < conc; k++) {
                curl_slist_free_all(slots[k].headers);
                curl_easy_cleanup(slots[k].easy);
        }
        curl_multi_cleanup(m);
        free(slots);
        curl_global_cleanup();
        return failed ? 1 : 0;
}
