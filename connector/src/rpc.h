/*
 * rpc.h: gRPC C-core client glue shared by the PD client and the feed.
 *
 * gRPC C core has no C stub generator: method paths are constants here and
 * protobuf-c messages are packed into / unpacked from grpc_byte_buffers by
 * the helpers below. Channels are created with the settings the protocol
 * notes call for (256 MiB receive limit, keepalive 10 s / 3 s that also
 * pings idle connections, reconnect backoff capped at 3 s, a small stream
 * window so a slow reader back-pressures TiKV).
 */
#ifndef TKC_RPC_H
#define TKC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define TKC_RPC_EVENTFEED "/cdcpb.ChangeData/EventFeed"
#define TKC_RPC_EVENTFEED_V2 "/cdcpb.ChangeData/EventFeedV2"
#define TKC_RPC_PD_GET_MEMBERS "/pdpb.PD/GetMembers"
#define TKC_RPC_PD_TSO "/pdpb.PD/Tso"
#define TKC_RPC_PD_GET_STORE "/pdpb.PD/GetStore"
#define TKC_RPC_PD_GET_ALL_STORES "/pdpb.PD/GetAllStores"
#define TKC_RPC_PD_GET_REGION "/pdpb.PD/GetRegion"
#define TKC_RPC_PD_GET_REGION_BY_ID "/pdpb.PD/GetRegionByID"
#define TKC_RPC_PD_SCAN_REGIONS "/pdpb.PD/ScanRegions"
#define TKC_RPC_PD_UPDATE_SERVICE_GC_SAFEPOINT "/pdpb.PD/UpdateServiceGCSafePoint"
#define TKC_RPC_KV_SCAN_LOCK "/tikvpb.Tikv/KvScanLock"
#define TKC_RPC_KV_CHECK_TXN_STATUS "/tikvpb.Tikv/KvCheckTxnStatus"
#define TKC_RPC_KV_RESOLVE_LOCK "/tikvpb.Tikv/KvResolveLock"

/** TLS material (PEM file paths). All NULL = plaintext. */
typedef struct {
    const char *ca_path;
    const char *cert_path;
    const char *key_path;
} tkc_rpc_tls_t;

/** Channel tuning; zero fields take the defaults in brackets. */
typedef struct {
    int max_recv_bytes;       /* [256 MiB] */
    int keepalive_ms;         /* [10000] */
    int keepalive_timeout_ms; /* [3000] */
    int stream_window_bytes;  /* [65535] per-stream HTTP/2 window */
    int connect_timeout_ms;   /* [3000] */
    int max_backoff_ms;       /* [3000] */
} tkc_rpc_channel_opts_t;

/**
 * Creates a channel to @p target ("host:port"). TLS files are read here;
 * on failure returns NULL and writes the reason to @p errstr.
 * The channel is owned by the caller: grpc_channel_destroy().
 */
grpc_channel *tkc_rpc_channel_new(const char *target, const tkc_rpc_tls_t *tls,
                                  const tkc_rpc_channel_opts_t *opts, char *errstr,
                                  size_t errstr_size);

/** Packs @p msg into a new byte buffer (owned by the caller). */
grpc_byte_buffer *tkc_rpc_pack(const ProtobufCMessage *msg);

/**
 * Unpacks @p bb as @p desc. @returns the message (free with
 * protobuf_c_message_free_unpacked) or NULL if the bytes are malformed.
 * @p bb is not destroyed.
 */
ProtobufCMessage *tkc_rpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);

/**
 * A region of memory that unpacked messages live in until it is reset: one
 * bump allocation per message field instead of a malloc each, and one reset
 * instead of a free each (a ChangeDataEvent carries a few allocations per
 * row: the Row, its key, value and old value). One message at a time; the
 * owner's thread only.
 */
typedef struct tkc_rpc_arena_s tkc_rpc_arena_t;

tkc_rpc_arena_t *tkc_rpc_arena_new(void);
/** Frees the arena and everything in it. NULL is a no-op. */
void tkc_rpc_arena_destroy(tkc_rpc_arena_t *a);
/** Frees everything unpacked into @p a (keeps one block for the next message). */
void tkc_rpc_arena_reset(tkc_rpc_arena_t *a);

/**
 * Like tkc_rpc_unpack(), but the message and all its fields (and, when
 * @p bb is split into several slices, the joined bytes) are allocated in
 * @p a: valid until tkc_rpc_arena_reset(), never freed one by one (do not
 * call protobuf_c_message_free_unpacked on it).
 */
ProtobufCMessage *tkc_rpc_unpack_in(tkc_rpc_arena_t *a, const ProtobufCMessageDescriptor *desc,
                                    grpc_byte_buffer *bb);

/** Result of a unary call. */
typedef struct {
    grpc_status_code status;
    char details[256];
} tkc_rpc_status_t;

/**
 * Blocking unary call with a deadline: packs @p req, waits for the
 * response and unpacks it as @p resp_desc into *@p resp (caller frees with
 * protobuf_c_message_free_unpacked). On any failure *@p resp is NULL and
 * @p st says why (a malformed response is reported as GRPC_STATUS_INTERNAL).
 * Thread-safe; uses its own completion queue.
 */
void tkc_rpc_unary(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                   ProtobufCMessage **resp, tkc_rpc_status_t *st);

/**
 * tkc_rpc_unary() with the response unpacked into @p a (tkc_rpc_unpack_in():
 * valid until tkc_rpc_arena_reset(), never freed on its own). For large
 * responses read and dropped at once, like PD's ScanRegions pages.
 */
void tkc_rpc_unary_in(tkc_rpc_arena_t *a, grpc_channel *ch, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      int timeout_ms, ProtobufCMessage **resp, tkc_rpc_status_t *st);

/** gpr_timespec deadline @p ms from now on the monotonic clock. */
gpr_timespec tkc_rpc_deadline_ms(int64_t ms);

/** Name of a gRPC status code ("UNAVAILABLE"...). */
const char *tkc_rpc_status_name(grpc_status_code code);

#endif
