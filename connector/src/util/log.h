/*
 * log.h: one line per event, key=value, thread-safe.
 *
 *   tkc_log(TKC_LOG_WARN, "feed", "event=stream_failed store_id=%" PRIu64, id);
 * prints
 *   ts=2026-11-26T15:12:03.123Z level=warn comp=feed event=stream_failed store_id=4
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from different threads never interleave. The level is checked
 * before the arguments are formatted.
 */
#ifndef TKC_UTIL_LOG_H
#define TKC_UTIL_LOG_H

#include <stdarg.h>

typedef enum {
    TKC_LOG_ERROR = 0,
    TKC_LOG_WARN = 1,
    TKC_LOG_INFO = 2,
    TKC_LOG_DEBUG = 3,
} tkc_log_level_t;

/** Lines above this level are dropped. Default: TKC_LOG_INFO. */
void tkc_log_set_level(tkc_log_level_t level);
tkc_log_level_t tkc_log_get_level(void);
/** Parses "error", "warn", "info" or "debug"; @returns 0, or -1 if unknown. */
int tkc_log_level_parse(const char *name, tkc_log_level_t *out);
/** Where lines go (default stderr). */
void tkc_log_set_fd(int fd);

void tkc_log_write(tkc_log_level_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tkc_log(level, comp, ...)                                            \
    do {                                                                     \
        if ((level) <= tkc_log_get_level())                                  \
            tkc_log_write((level), (comp), __VA_ARGS__);                     \
    } while (0)

#endif
