/*
 * check_sim_rpc.h: a tiny gRPC C-core client for the SERVER helper's tests
 * (sim.server, sim.pd, sim.lockrpc, sim.control): unary calls and one bidi
 * stream, each on its own pluck completion queue so a test reads top-down.
 *
 * Thread: one test thread per object. gRPC must be initialised by the caller
 * (inside the forked check child, c-deps-notes §1.4).
 */
#ifndef TKC_CHECK_SIM_RPC_H
#define TKC_CHECK_SIM_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

/** A channel to "127.0.0.1:port" with short reconnect backoff (tests). */
grpc_channel *crpc_channel(const char *addr);

typedef struct {
    grpc_status_code status;
    char *details;    /* malloc'd, never NULL after a call */
    uint8_t *resp;    /* malloc'd response bytes (NULL unless status OK) */
    size_t resp_len;
} crpc_result_t;

/** One unary call; @returns the status (also in @p out). Free with crpc_result_free. */
grpc_status_code crpc_unary(grpc_channel *ch, const char *method, const uint8_t *req,
                            size_t len, int timeout_ms, crpc_result_t *out);
void crpc_result_free(crpc_result_t *r);

typedef struct crpc_stream_s crpc_stream_t;

/** Opens a bidi stream; @p md_key/@p md_value optional request metadata. */
crpc_stream_t *crpc_stream_open(grpc_channel *ch, const char *method, const char *md_key,
                                const char *md_value);
/** Sends one message and waits for the send to complete. @returns 0 or -1. */
int crpc_stream_send(crpc_stream_t *st, const uint8_t *data, size_t len);
/**
 * Waits up to @p timeout_ms for the next message. @returns 1 with *data
 * (malloc'd) / *len, 0 at end of stream (status available), -1 on timeout
 * (the receive stays pending and the next call continues waiting for it).
 */
int crpc_stream_recv(crpc_stream_t *st, int timeout_ms, uint8_t **data, size_t *len);
void crpc_stream_close_send(crpc_stream_t *st);
/** Waits up to @p timeout_ms for the final status. @returns 0, or -1 on timeout. */
int crpc_stream_status(crpc_stream_t *st, int timeout_ms, grpc_status_code *status,
                       const char **details);
void crpc_stream_cancel(crpc_stream_t *st);
void crpc_stream_destroy(crpc_stream_t *st);

#endif
