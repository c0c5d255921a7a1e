/*
 * err.h: the one error enum of the program.
 *
 * Generated from an X-macro table so that codes, names and descriptions
 * cannot drift apart. Functions that can fail return tkc_err_t; library
 * errors (gRPC, librdkafka, avro-c) are translated at module boundaries.
 */
#ifndef TKC_UTIL_ERR_H
#define TKC_UTIL_ERR_H

#include <stddef.h>

#define TKC_ERRORS(X)                                                        \
    X(OK, 0, "Success")                                                      \
    X(INVALID_ARG, -1, "Invalid argument")                                   \
    X(CONF, -2, "Configuration error")                                       \
    X(TIMED_OUT, -3, "Timed out")                                            \
    X(TRANSPORT, -4, "gRPC transport failure")                               \
    X(REGION_STALE, -5, "Region epoch or leader changed")                    \
    X(QUEUE_FULL, -6, "Queue full")                                          \
    X(KAFKA_FATAL, -7, "Kafka producer fatal error")                         \
    X(IO, -8, "I/O error")                                                   \
    X(CORRUPT, -9, "Corrupt data")                                           \
    X(NOT_FOUND, -10, "Not found")                                           \
    X(INCOMPATIBLE, -11, "Incompatible peer")                                \
    X(STOPPED, -12, "Stopped")                                               \
    X(SNAPSHOT_LOST, -13, "History older than the GC safepoint is gone")     \
    X(REJECTED, -14, "Kafka rejected a message")

typedef enum {
#define X(name, val, desc) TKC_ERR_##name = (val),
    TKC_ERRORS(X)
#undef X
} tkc_err_t;

/** @returns a human-readable description of @p err (static storage). */
const char *tkc_err2str(tkc_err_t err);
/** @returns the symbolic name of @p err without the prefix, e.g. "TIMED_OUT". */
const char *tkc_err2name(tkc_err_t err);

/**
 * @brief Formats an error message into the caller's buffer, the convention
 *        of every `char *errstr, size_t errstr_size` parameter; a NULL
 *        buffer or a size of 0 is a no-op (the caller did not ask).
 * @locality any thread
 */
void tkc_err_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
