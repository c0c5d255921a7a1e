/*
 * ops_proc.c: run the binary, read its output, make HTTP requests.
 *
 * Output is captured into temporary files rather than pipes, so a chatty
 * process can never block on a full pipe while the test waits for it.
 */
#include "ops/ops_proc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_all_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    ssize_t r;
    while ((r = read(fd, b + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    b[n] = '\0';
    return b;
}

static void child_exec(const char *const argv[], const char *const env_add[])
{
    for (size_t i = 0; env_add && env_add[i]; i++) {
        char *kv = strdup(env_add[i]);
        char *eq = strchr(kv, '=');
        if (eq) {
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        free(kv);
    }
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int ops_wait(pid_t pid, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10 * 1000);
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int ops_run(const char *const argv[], const char *const env_add[], int timeout_ms,
            ops_result_t *res)
{
    char o[] = "/tmp/ops-out-XXXXXX", e[] = "/tmp/ops-err-XXXXXX";
    int ofd = mkstemp(o), efd = mkstemp(e);
    unlink(o);
    unlink(e);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        child_exec(argv, env_add);
    }
    res->status = ops_wait(pid, timeout_ms);
    res->out = read_all_fd(ofd);
    res->err = read_all_fd(efd);
    close(ofd);
    close(efd);
    return res->status;
}

void ops_result_free(ops_result_t *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

pid_t ops_spawn(const char *const argv[], const char *const env_add[], int *out_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        child_exec(argv, env_add);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

int ops_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    size_t n = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r <= 0)
            continue;
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        if (n + 1 < size)
            buf[n++] = c;
    }
}

typedef struct {
    char *buf;
    size_t len;
} mem_t;

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    mem_t *m = ud;
    m->buf = realloc(m->buf, m->len + sz * nm + 1);
    memcpy(m->buf + m->len, p, sz * nm);
    m->len += sz * nm;
    m->buf[m->len] = '\0';
    return sz * nm;
}

long ops_http(const char *method, int port, const char *path, char **body, char **content_type)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    mem_t m = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (content_type) {
            char *ct = NULL;
            curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
            *content_type = strdup(ct ? ct : "");
        }
    } else if (content_type) {
        *content_type = strdup("");
    }
    curl_easy_cleanup(c);
    *body = m.buf;
    return code;
}

int ops_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

char *ops_temp_file(const char *suffix, const char *text)
{
    char tmpl[128];
    snprintf(tmpl, sizeof(tmpl), "/tmp/ops-XXXXXX%s", suffix);
    int fd = mkstemps(tmpl, (int)strlen(suffix));
    if (fd < 0)
        return NULL;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    close(fd);
    return strdup(tmpl);
}
