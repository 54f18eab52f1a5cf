/* SPDX-License-Identifier: MIT */
/* common/http.c against a scripted HTTP/1.1 server on 127.0.0.1 that this
 * test runs in a thread: statuses, headers, caps, redirects, retries, range
 * resume, uploads, parallel verified downloads, file: URLs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/hash.h"
#include "common/http.h"
#include "testutil.h"

static int srv_fd = -1;
static int srv_port;
static int flaky_count;
static int requests;
static char last_method[16], last_body[256];

static void send_str(int fd, const char *s)
{
        size_t len = strlen(s);

        while (len > 0) {
                ssize_t w = write(fd, s, len);

                if (w <= 0)
                        return;
                s += w;
                len -= (size_t)w;
        }
}

static void respond(int fd, int status, const char *extra, const char *body)
{
        char head[512];

        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                 strlen(body), extra);
        send_str(fd, head);
        send_str(fd, body);
}

static void serve_one(int fd)
{
        char req[8192], path[256] = "", method[16] = "";
        size_t got = 0;
        char *end = NULL, *cl, *rg;
        long content_length = 0, range = -1;

        while (got < sizeof(req) - 1) {
                ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);

                if (r <= 0)
                        return;
                got += (size_t)r;
                req[got] = '\0';
                end = strstr(req, "\r\n\r\n");
                if (end != NULL)
                        break;
        }
        if (end == NULL || sscanf(req, "%15s %255s", method, path) != 2)
                return;
        requests++;
        cl = strcasestr(req, "\r\ncontent-length:");
        if (cl != NULL)
                content_length = strtol(cl + 17, NULL, 10);
        rg = strcasestr(req, "\r\nrange: bytes=");
        if (rg != NULL)
                range = strtol(rg + 15, NULL, 10);
        snprintf(last_method, sizeof(last_method), "%s", method);
        {
                size_t have = got - (size_t)(end + 4 - req);
                size_t want =
                    content_length > 0 && content_length < 255 ? (size_t)content_length : 0;

                memcpy(last_body, end + 4, have < want ? have : want);
                while (have < want) {
                        ssize_t r = read(fd, last_body + have, want - have);

                        if (r <= 0)
                                break;
                        have += (size_t)r;
                }
                last_body[want] = '\0';
        }
        if (strcmp(path, "/ok") == 0) {
                respond(fd, 200, "X-Test: abc  \r\n", "hello");
        } else if (strcmp(path, "/big") == 0) {
                static char big[100001];

                memset(big, 'b', sizeof(big) - 1);
                respond(fd, 200, "", big);
        } else if (strcmp(path, "/loop") == 0) {
                respond(fd, 302, "Location: /loop\r\n", "");
        } else if (strcmp(path, "/redir") == 0) {
                respond(fd, 302, "Location: /ok\r\n", "");
        } else if (strcmp(path, "/flaky") == 0) {
                if (flaky_count++ == 0)
                        respond(fd, 503, "", "busy, error page");
                else
                        respond(fd, 200, "", "ok2");
        } else if (strcmp(path, "/missing") == 0) {
                respond(fd, 404, "", "not here");
        } else if (strcmp(path, "/range") == 0) {
                const char *data = "0123456789";

                if (range < 0) {
                        /* announce 10 bytes, send 5, hang up */
                        send_str(fd, "HTTP/1.1 200 X\r\nContent-Length: 10\r\n"
                                     "Accept-Ranges: bytes\r\nConnection: close\r\n\r\n01234");
                } else {
                        char extra[128];

                        snprintf(extra, sizeof(extra), "Content-Range: bytes %ld-9/10\r\n", range);
                        respond(fd, 206, extra, data + range);
                }
        } else if (strcmp(path, "/echo") == 0) {
                respond(fd, 201, "", last_body);
        } else {
                respond(fd, 404, "", "");
        }
}

static void *server(void *arg)
{
        (void)arg;
        for (;;) {
                int c = accept(srv_fd, NULL, NULL);

                if (c < 0)
                        return NULL;
                serve_one(c);
                shutdown(c, SHUT_WR);
                close(c);
        }
}

static int setup(void **state)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);
        pthread_t t;

        (void)state;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        srv_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(srv_fd, 16) < 0 || getsockname(srv_fd, (struct sockaddr *)&sa, &len) < 0)
                return -1;
        srv_port = ntohs(sa.sin_port);
        pthread_create(&t, NULL, server, NULL);
        pthread_detach(t);
        return 0;
}

static char *url(const char *path)
{
        static char buf[128];

        snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", srv_port, path);
        return buf;
}

static http_client *client(void)
{
        http_client *c = NULL;
        http_options o;
        forge_error *err = NULL;

        http_options_init(&o);
        assert_int_equal(http_client_new(&o, &c, &err), 0);
        return c;
}

/* rq done: an answer with status in *r (the caller frees it). */
static void expect_status(http_client *c, const http_request *rq, int status, http_response *r)
{
        forge_error *err = NULL;

        assert_int_equal(http_request_do(c, rq, r, &err), 0);
        assert_int_equal(r->status, status);
}

/* A GET of path (the request's defaults): an answer with status in *r (the
 * caller frees it). */
static void expect_get(http_client *c, const char *path, int status, http_response *r)
{
        http_request rq;

        http_request_init(&rq, url(path));
        expect_status(c, &rq, status, r);
}

/* rq done: an error whose message contains frag. */
static void expect_failure(http_client *c, const http_request *rq, const char *frag)
{
        http_response r = {0};
        forge_error *err = NULL;

        assert_int_equal(http_request_do(c, rq, &r, &err), -1);
        assert_non_null(strstr(err->msg, frag));
        forge_error_release(&err);
}

static void test_get_headers(void **state)
{
        cleanup_http_client http_client *c = client();
        http_response r = {0};

        (void)state;
        expect_get(c, "/ok", 200, &r);
        assert_string_equal(r.body, "hello");
        assert_string_equal(http_response_header(&r, "x-test"), "abc");
        assert_string_equal(http_response_header(&r, "X-TEST"), "abc");
        assert_null(http_response_header(&r, "x-none"));
        http_response_free(&r);

        expect_get(c, "/missing", 404, &r);
        http_response_free(&r);
}

static void test_cap_and_redirects(void **state)
{
        cleanup_http_client http_client *c = client();
        http_request rq;
        http_response r = {0};

        (void)state;
        http_request_init(&rq, url("/big"));
        rq.max_body = 1000;
        expect_failure(c, &rq, "larger than 1000 bytes");

        http_request_init(&rq, url("/loop"));
        rq.max_redirects = 5;
        expect_failure(c, &rq, "too many redirects");

        http_request_init(&rq, url("/redir"));
        rq.max_redirects = 5;
        expect_status(c, &rq, 200, &r);
        assert_string_equal(r.body, "hello");
        assert_non_null(strstr(r.effective_url, "/ok"));
        http_response_free(&r);

        /* not followed unless asked */
        expect_get(c, "/redir", 302, &r);
        assert_string_equal(http_response_header(&r, "location"), "/ok");
        http_response_free(&r);
}

/* A new temporary file, already unlinked: its fd. */
static int unlinked_tmpfile(void)
{
        char path[] = "/tmp/forge-http.XXXXXX";
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        unlink(path);
        return fd;
}

/* GET path into a file: the final status, and the file (and the count of
 * bytes written) holding exactly content. */
static void expect_download(const char *path, int status, const char *content)
{
        cleanup_http_client http_client *c = client();
        int fd = unlinked_tmpfile();
        char buf[64] = "";
        http_request rq;
        http_response r = {0};
        forge_error *err = NULL;

        http_request_init(&rq, url(path));
        rq.out_fd = fd;
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_int_equal(r.status, status);
        assert_int_equal(r.written, strlen(content));
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), strlen(content));
        assert_string_equal(buf, content);
        http_response_free(&r);
        close(fd);
}

static void test_retry_keeps_error_page_out_of_file(void **state)
{
        (void)state;
        flaky_count = 0;
        expect_download("/flaky", 200, "ok2");
}

static void test_range_resume(void **state)
{
        (void)state;
        expect_download("/range", 206, "0123456789");
}

static void test_upload(void **state)
{
        cleanup_http_client http_client *c = client();
        const char *body = "payload-bytes";
        const char *const hdrs[] = {"Content-Type: application/octet-stream", NULL};
        int fd = unlinked_tmpfile();
        http_request rq;
        http_response r = {0};
        forge_error *err = NULL;

        (void)state;
        http_request_init(&rq, url("/echo"));
        rq.method = "PUT";
        rq.headers = hdrs;
        rq.body_kind = HTTP_BODY_BUFFER;
        rq.body = body;
        rq.body_len = strlen(body);
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_int_equal(r.status, 201);
        assert_string_equal(last_method, "PUT");
        assert_string_equal(r.body, body);
        http_response_free(&r);

        assert_int_equal(write(fd, "xxfrom-a-file", 13), 13);
        http_request_init(&rq, url("/echo"));
        rq.method = "PATCH";
        rq.body_kind = HTTP_BODY_FD;
        rq.body_fd = fd;
        rq.body_offset = 2;
        rq.body_len = 11;
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_string_equal(last_method, "PATCH");
        assert_string_equal(r.body, "from-a-file");
        http_response_free(&r);

        http_request_init(&rq, url("/echo"));
        rq.method = "POST";
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_string_equal(last_method, "POST");
        http_response_free(&r);

        http_request_init(&rq, url("/ok"));
        rq.method = "HEAD";
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_string_equal(last_method, "HEAD");
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 0);
        http_response_free(&r);
        close(fd);
}

static void test_fetch_many(void **state)
{
        cleanup_http_client http_client *c = client();
        char ok_hex[DIGEST_STR_SIZE];
        http_fetch items[4];
        int fds[4];
        forge_error *err = NULL;

        (void)state;
        hash_sha256_buf("hello", 5, ok_hex);
        for (int i = 0; i < 4; i++) {
                fds[i] = unlinked_tmpfile();
                items[i] = (http_fetch){.url = strdup(url("/ok")), .out_fd = fds[i]};
        }
        items[0].expect_sha256 = digest_hex(ok_hex);
        items[1].expect_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
        items[2].expect_size = 5;
        free((char *)items[3].url);
        items[3].url = strdup(url("/missing"));
        assert_int_equal(http_fetch_many(c, items, 4, 3, NULL, NULL, &err), 0);
        assert_null(items[0].err);
        assert_non_null(items[1].err);
        assert_non_null(strstr(items[1].err->msg, "sha256 mismatch"));
        assert_null(items[2].err);
        assert_int_equal(items[2].written, 5);
        assert_non_null(items[3].err);
        assert_non_null(strstr(items[3].err->msg, "404"));
        for (int i = 0; i < 4; i++) {
                forge_error_release(&items[i].err);
                free((char *)items[i].url);
                close(fds[i]);
        }
}

static void test_file_url_and_refused(void **state)
{
        cleanup_http_client http_client *c = NULL;
        char dir[] = "/tmp/forge-http-dir.XXXXXX";
        char file[128], u[160];
        http_options o;
        http_request rq;
        http_response r = {0};
        forge_error *err = NULL;
        FILE *f;
        int s;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(file, sizeof(file), "%s/a", dir);
        f = fopen(file, "w");
        fputs("file-bytes", f);
        fclose(f);
        http_options_init(&o);
        o.retries = 1;
        assert_int_equal(http_client_new(&o, &c, &err), 0);
        snprintf(u, sizeof(u), "file://%s", file);
        http_request_init(&rq, u);
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "file-bytes");
        http_response_free(&r);
        snprintf(u, sizeof(u), "file://%s/nope", dir);
        http_request_init(&rq, u);
        assert_int_equal(http_request_do(c, &rq, &r, &err), 0);
        assert_int_equal(r.status, 404);
        http_response_free(&r);
        unlink(file);
        rmdir(dir);

        /* a port nobody listens on: a transport error naming the URL */
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s = socket(AF_INET, SOCK_STREAM, 0);
        bind(s, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(s, (struct sockaddr *)&sa, &len);
        close(s);
        snprintf(u, sizeof(u), "http://user:secret@127.0.0.1:%d/x", ntohs(sa.sin_port));
        http_request_init(&rq, u);
        assert_int_equal(http_request_do(c, &rq, &r, &err), -1);
        assert_non_null(strstr(err->msg, "127.0.0.1"));
        assert_null(strstr(err->msg, "secret"));
        forge_error_release(&err);
}

static void test_redact(void **state)
{
        char *s;

        (void)state;
        s = http_url_redact("https://u:p@host:5000/v2/x?y=@z");
        assert_string_equal(s, "https://host:5000/v2/x?y=@z");
        free(s);
        s = http_url_redact("http://host/a@b");
        assert_string_equal(s, "http://host/a@b");
        free(s);
}

TU_TEST_MAIN(setup, NULL, cmocka_unit_test(test_get_headers),
             cmocka_unit_test(test_cap_and_redirects),
             cmocka_unit_test(test_retry_keeps_error_page_out_of_file),
             cmocka_unit_test(test_range_resume), cmocka_unit_test(test_upload),
             cmocka_unit_test(test_fetch_many), cmocka_unit_test(test_file_url_and_refused),
             cmocka_unit_test(test_redact))
