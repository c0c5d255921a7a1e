/*
 * sim_server.h: gRPC C-core server plumbing shared by tikv-sim's endpoints.
 *
 * One sim_server_t is one listening endpoint (the PD, or one store) with its
 * own completion queue and its own thread. Calls are dispatched by method
 * path to registered handlers:
 *   - unary: the handler gets the request bytes and returns the response
 *     bytes (or a gRPC status);
 *   - bidi streams: the handler is told when a call opens, on every message
 *     and when the client half-closes or cancels; it sends with
 *     sim_call_send() (any thread, queued, one SEND_MESSAGE in flight) and
 *     ends the call with sim_call_finish().
 * Unknown methods get UNIMPLEMENTED.
 *
 * A store restart is sim_server_stop() (every call ends with UNAVAILABLE,
 * the port stops listening: connections are refused) followed, D ms later,
 * by sim_server_start() on the same port.
 */
#ifndef TKC_SIM_SERVER_H
#define TKC_SIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

typedef struct sim_server_s sim_server_t;
typedef struct sim_call_s sim_call_t;

/** Request metadata of a call (e.g. "features"), valid while the call lives. */
const char *sim_call_metadata(const sim_call_t *call, const char *key);
const char *sim_call_method(const sim_call_t *call);
/** Per-call opaque slot for the stream handler. */
void sim_call_set_opaque(sim_call_t *call, void *opaque);
void *sim_call_get_opaque(const sim_call_t *call);
/** Every call gets a unique id (for logs and counters). */
uint64_t sim_call_id(const sim_call_t *call);

/**
 * Queues one message (bytes are copied). Thread-safe. @returns 0, or -1 if the
 * call is already finished. @p queued_bytes_out (may be NULL) receives the
 * bytes still waiting to be written on this call, for flow control.
 */
int sim_call_send(sim_call_t *call, const uint8_t *data, size_t len, size_t *queued_bytes_out);
/* added by SERVER helper: the same figure as sim_call_send's
 * queued_bytes_out without sending anything, so a producer can wait for a
 * call to drain. Thread-safe. */
size_t sim_call_queued_bytes(sim_call_t *call);
/** Ends the call after the queued messages: status and details. Thread-safe, once. */
void sim_call_finish(sim_call_t *call, grpc_status_code status, const char *details);
/** Ends the call at once, dropping queued messages (a silent drop or reset). */
void sim_call_abort(sim_call_t *call, grpc_status_code status, const char *details);
/** Keeps the call open but stops writing anything (a silent stall). */
void sim_call_stall(sim_call_t *call, bool stalled);

/**
 * Unary handler: @p req / @p req_len the request; fill *resp (malloc'd,
 * ownership to the server) and *resp_len and return GRPC_STATUS_OK, or return
 * another status and optionally set *details (malloc'd; the server frees it).
 */
typedef grpc_status_code (*sim_unary_fn)(void *opaque, sim_call_t *call, const uint8_t *req,
                                         size_t req_len, uint8_t **resp, size_t *resp_len,
                                         char **details);

typedef struct {
    /* a new call; return non-zero to refuse it with @p *status_out */
    int (*on_open)(void *opaque, sim_call_t *call, grpc_status_code *status_out,
                   const char **details_out);
    void (*on_message)(void *opaque, sim_call_t *call, const uint8_t *data, size_t len);
    /* the client half-closed (cancelled = false) or the call died (true);
     * after this the handler must not use @p call except sim_call_finish */
    void (*on_close)(void *opaque, sim_call_t *call, bool cancelled);
    /* the call's memory is about to be released: drop every reference */
    void (*on_release)(void *opaque, sim_call_t *call);
} sim_stream_handler_t;

/** @p addr "127.0.0.1:0" picks a free port. */
sim_server_t *sim_server_new(const char *name, const char *addr);
void sim_server_add_unary(sim_server_t *s, const char *method, sim_unary_fn fn, void *opaque);
void sim_server_add_stream(sim_server_t *s, const char *method, const sim_stream_handler_t *h,
                           void *opaque);
/**
 * Called on the server thread about every @p interval_ms (timers for resolved
 * ts, scans, flushing): keeps periodic work on the thread that owns the calls.
 */
void sim_server_set_tick(sim_server_t *s, int interval_ms, void (*tick)(void *opaque),
                         void *opaque);
/** Binds (first time: picks the port) and starts the thread. @returns the port or -1. */
int sim_server_start(sim_server_t *s);
/** Cancels every call (UNAVAILABLE), stops listening, joins the thread. */
void sim_server_stop(sim_server_t *s);
int sim_server_port(const sim_server_t *s);
bool sim_server_running(const sim_server_t *s);
/* added by SERVER helper: change_store_addr moves a stopped store to a new
 * address ("127.0.0.1:0" = a new free port) while keeping its handlers; the
 * next sim_server_start() binds there. */
void sim_server_set_addr(sim_server_t *s, const char *addr);
/* added by SERVER helper: "127.0.0.1:port" once bound, and the name given to
 * sim_server_new(), for logs and /stats. */
const char *sim_server_addr(const sim_server_t *s);
const char *sim_server_name(const sim_server_t *s);
/* added by SERVER helper: per-server counters of calls accepted and calls
 * completed (any method, any outcome) since creation, for /stats. */
uint64_t sim_server_calls_opened(const sim_server_t *s);
uint64_t sim_server_calls_closed(const sim_server_t *s);
void sim_server_destroy(sim_server_t *s);

#endif
