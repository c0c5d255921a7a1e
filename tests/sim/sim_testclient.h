/*
 * sim_testclient.h: a minimal EventFeed client over gRPC C core, for tests.
 *
 * It is the reference peer of tikv-sim's ChangeData service: open EventFeed
 * or EventFeedV2 (with a "features" header) on a channel to one store, send
 * Register / Deregister requests, receive ChangeDataEvents with a timeout,
 * half-close, read the final status. Everything is synchronous and
 * single-threaded: one stream = one completion queue, pumped only inside the
 * calls below, so a test drives it step by step.
 *
 * The caller owns gRPC initialisation (grpc_init() / grpc_shutdown(), in the
 * forked check child; see c-deps-notes §1.4).
 */
#ifndef TKC_SIM_TESTCLIENT_H
#define TKC_SIM_TESTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "cdcpb.pb-c.h"

typedef struct sim_tc_s sim_tc_t;
typedef struct sim_tc_stream_s sim_tc_stream_t;

/** A channel (one HTTP/2 connection) to @p addr "host:port"; unlimited
 * receive size, short reconnect backoff. Never NULL. */
sim_tc_t *sim_tc_new(const char *addr);
/** Streams must be destroyed first. */
void sim_tc_destroy(sim_tc_t *tc);

/**
 * Opens /cdcpb.ChangeData/EventFeed, or EventFeedV2 when @p v2, sending
 * metadata "features: @p features" when it is not NULL. Does not wait for the
 * server; a refused call shows up as the end of stream with its status.
 */
sim_tc_stream_t *sim_tc_open(sim_tc_t *tc, bool v2, const char *features);
/** Cancels the call if it is still open and frees everything. */
void sim_tc_stream_destroy(sim_tc_stream_t *s);

/** Sends one request (packed); waits until gRPC accepted it. @returns 0 or -1. */
int sim_tc_send(sim_tc_stream_t *s, const Cdcpb__ChangeDataRequest *req);

/** Parameters of a Register built by sim_tc_register(). */
typedef struct {
    uint64_t cluster_id;
    const char *version;      /* header.ticdc_version; NULL = "8.5.0" */
    uint64_t region_id;
    uint64_t conf_ver, version_epoch;
    uint64_t checkpoint_ts;
    const uint8_t *start_key; /* encoded */
    size_t start_len;
    const uint8_t *end_key;   /* encoded; empty = +inf */
    size_t end_len;
    uint64_t request_id;
    int kv_api;               /* Cdcpb__ChangeDataRequest__KvAPI */
} sim_tc_reg_t;

int sim_tc_register(sim_tc_stream_t *s, const sim_tc_reg_t *r);
int sim_tc_deregister(sim_tc_stream_t *s, uint64_t cluster_id, uint64_t request_id,
                      uint64_t region_id);
/** Half-closes the send side. */
int sim_tc_close_send(sim_tc_stream_t *s);

/**
 * Waits up to @p timeout_ms for the next message.
 * @returns 1 and the raw bytes in *data / *len (owned by the stream, valid
 *          until the next receive), 0 on timeout, -1 once the stream ended
 *          (then see sim_tc_status()).
 */
int sim_tc_recv_raw(sim_tc_stream_t *s, int timeout_ms, const uint8_t **data, size_t *len);
/** Like sim_tc_recv_raw, unpacked; free with cdcpb__change_data_event__free_unpacked.
 * NULL on timeout or end (tell them apart with sim_tc_ended()). */
Cdcpb__ChangeDataEvent *sim_tc_recv(sim_tc_stream_t *s, int timeout_ms);
bool sim_tc_ended(const sim_tc_stream_t *s);
/**
 * Waits up to @p timeout_ms for the final status. @returns the status, or -1
 * if it has not arrived. @p details (may be NULL) points into the stream.
 */
int sim_tc_status(sim_tc_stream_t *s, int timeout_ms, const char **details);

#endif
