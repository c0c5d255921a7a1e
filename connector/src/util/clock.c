/* clock.c: monotonic and wall-clock milliseconds. */
#include "util/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tkc_clock_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t tkc_clock_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void tkc_clock_format_utc_ms(int64_t ms, char *buf, size_t size)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}
