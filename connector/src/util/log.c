/*
 * log.c: key=value line logger. No locks and no FILE*: each line is built in
 * a stack buffer and written with a single write(2).
 */
#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TKC_LOG_LINE_MAX 2048

static atomic_int log_level = TKC_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tkc_log_set_level(tkc_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

tkc_log_level_t tkc_log_get_level(void)
{
    return (tkc_log_level_t)atomic_load(&log_level);
}

int tkc_log_level_parse(const char *name, tkc_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tkc_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void tkc_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void tkc_log_write(tkc_log_level_t level, const char *comp, const char *fmt, ...)
{
    char line[TKC_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s comp=%s ",
                     ts.tv_nsec / 1000000, level_names[level], comp);
    if (w > 0)
        n += (size_t)w;
    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w;
    if (n >= sizeof(line) - 1) /* truncated: keep the newline */
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(atomic_load(&log_fd), line, n) < 0) {
        /* a logger has nowhere to report its own failure */
    }
}
