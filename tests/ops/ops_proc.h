/*
 * ops_proc.h: helpers for the tests that drive the tikv-kafka-cdc binary as
 * a process and talk to its HTTP endpoint.
 *
 * Every returned string is owned by the caller (free()). Functions are safe
 * in check's forked test children; nothing is created before a test runs.
 */
#ifndef TKC_OPS_PROC_H
#define TKC_OPS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ops_result_s {
    int status; /* exit code; 128+signal if killed; -1 on timeout (then killed) */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
} ops_result_t;

/**
 * Runs argv (argv[0] is a path) with the environment plus env_add
 * ("NAME=value", NULL-terminated, may be NULL), waits up to timeout_ms.
 * @returns res->status.
 */
int ops_run(const char *const argv[], const char *const env_add[], int timeout_ms,
            ops_result_t *res);
void ops_result_free(ops_result_t *res);

/** Starts argv in the background with stdout on a pipe (*out_fd); stderr inherited. */
pid_t ops_spawn(const char *const argv[], const char *const env_add[], int *out_fd);

/** Reads one line (without '\n') from fd within timeout_ms. @returns 0, or -1 on EOF/timeout. */
int ops_read_line(int fd, char *buf, size_t size, int timeout_ms);

/** Waits for pid up to timeout_ms (SIGKILL after). @returns its exit code, 128+sig, or -1. */
int ops_wait(pid_t pid, int timeout_ms);

/**
 * GET (or another method) http://127.0.0.1:port/path with libcurl.
 * @returns the HTTP status (0 if the request failed); *body and
 *          *content_type (may be NULL) receive malloc'd copies.
 */
long ops_http(const char *method, int port, const char *path, char **body, char **content_type);

/** Number of occurrences of needle in hay. */
int ops_count(const char *hay, const char *needle);

/** Writes text to a new temporary file; @returns its malloc'd path. */
char *ops_temp_file(const char *suffix, const char *text);

#endif
