/*
 * rpc.c: gRPC C-core client glue (channels, packing, blocking unary calls,
 * and the unpack arena of the feed's hot path).
 *
 * Unpack arena: protobuf-c allocates every sub-message and copies every
 * bytes field of a message separately, so a ChangeDataEvent of n rows costs
 * about 4n mallocs and as many frees on the feed worker thread; at 100k
 * rows/s that was the largest cost of that thread. The arena serves them
 * from a block by bumping a pointer and frees them all at once. After a
 * message that needed more than one block, the blocks are replaced by one
 * block of their total size (up to ARENA_RETAIN_MAX), so a steady stream of
 * similar messages settles on a single block and no malloc at all.
 *
 * Thread: any. Nothing here keeps state beyond the objects it returns.
 */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "util/mem.h"

static int opt_or(int v, int dflt)
{
    return v > 0 ? v : dflt;
}

static char *read_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = tkc_malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = tkc_realloc(buf, cap);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static grpc_channel_credentials *make_creds(const tkc_rpc_tls_t *tls, char *errstr,
                                            size_t errstr_size)
{
    if (!tls || (!tls->ca_path && !tls->cert_path && !tls->key_path))
        return grpc_insecure_credentials_create();
    if ((tls->cert_path == NULL) != (tls->key_path == NULL)) {
        snprintf(errstr, errstr_size, "TLS needs both a certificate and a key");
        return NULL;
    }
    char *ca = NULL, *cert = NULL, *key = NULL;
    grpc_channel_credentials *cr = NULL;
    if (tls->ca_path && !(ca = read_file(tls->ca_path, errstr, errstr_size)))
        goto out;
    if (tls->cert_path && !(cert = read_file(tls->cert_path, errstr, errstr_size)))
        goto out;
    if (tls->key_path && !(key = read_file(tls->key_path, errstr, errstr_size)))
        goto out;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    cr = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    if (!cr)
        snprintf(errstr, errstr_size, "invalid TLS material");
out:
    tkc_free(ca);
    tkc_free(cert);
    tkc_free(key);
    return cr;
}

grpc_channel *tkc_rpc_channel_new(const char *target, const tkc_rpc_tls_t *tls,
                                  const tkc_rpc_channel_opts_t *opts, char *errstr,
                                  size_t errstr_size)
{
    tkc_rpc_channel_opts_t o = opts ? *opts : (tkc_rpc_channel_opts_t){0};
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = opt_or(o.max_recv_bytes, 256 << 20)}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = opt_or(o.keepalive_ms, 10000)}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         {.integer = opt_or(o.keepalive_timeout_ms, 3000)}},
        /* Without these two, pings stop on idle streams and a silent peer is
         * never detected (c-deps-notes 1.2). */
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
        /* A small per-stream window: a slow reader back-pressures TiKV. */
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
         {.integer = opt_or(o.stream_window_bytes, 65535)}},
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_BDP_PROBE, {.integer = 0}},
        /* MIN_RECONNECT_BACKOFF is really the connect timeout (20 s default). */
        {GRPC_ARG_INTEGER, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
         {.integer = opt_or(o.connect_timeout_ms, 3000)}},
        /* The first reconnect after a lost connection 100 ms later, not
         * 1 s: a restarted TiKV or PD is usually back within a second or
         * two and every later attempt waits 1.6x longer (up to the max). */
        {GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = 100}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         {.integer = opt_or(o.max_backoff_ms, 3000)}},
        /* Each channel gets its own connection: streams of different workers
         * must not share (and so not fail) one HTTP/2 connection. */
        {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
        {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_RETRIES, {.integer = 0}},
    };
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    grpc_channel_credentials *cr = make_creds(tls, errstr, errstr_size);
    if (!cr)
        return NULL;
    grpc_channel *ch = grpc_channel_create(target, cr, &cargs);
    grpc_channel_credentials_release(cr);
    if (!ch)
        snprintf(errstr, errstr_size, "cannot create a channel to %s", target);
    return ch;
}

grpc_byte_buffer *tkc_rpc_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *tkc_rpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all),
                                                    GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
    return m;
}

/* ===== unpack arena ===== */

#define ARENA_BLOCK_MIN ((size_t)64 * 1024)
#define ARENA_RETAIN_MAX ((size_t)1024 * 1024)
#define ARENA_ALIGN ((size_t)16)

typedef struct arena_block_s {
    struct arena_block_s *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} arena_block_t;

struct tkc_rpc_arena_s {
    arena_block_t *head; /* the block allocations come from; older ones follow */
    size_t total;        /* capacity of all blocks */
};

static arena_block_t *arena_block_new(size_t cap)
{
    arena_block_t *b = tkc_malloc(sizeof(*b) + cap);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

tkc_rpc_arena_t *tkc_rpc_arena_new(void)
{
    return tkc_calloc(1, sizeof(tkc_rpc_arena_t));
}

static void arena_free_blocks(tkc_rpc_arena_t *a)
{
    while (a->head) {
        arena_block_t *b = a->head;
        a->head = b->next;
        tkc_free(b);
    }
    a->total = 0;
}

void tkc_rpc_arena_destroy(tkc_rpc_arena_t *a)
{
    if (!a)
        return;
    arena_free_blocks(a);
    tkc_free(a);
}

void tkc_rpc_arena_reset(tkc_rpc_arena_t *a)
{
    if (a->head && a->head->next) {
        size_t want = a->total < ARENA_RETAIN_MAX ? a->total : ARENA_RETAIN_MAX;
        arena_free_blocks(a);
        a->head = arena_block_new(want);
        a->total = want;
    } else if (a->head) {
        a->head->used = 0;
    }
}

static void *arena_alloc(void *opaque, size_t size)
{
    tkc_rpc_arena_t *a = opaque;
    size = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    arena_block_t *b = a->head;
    if (!b || b->cap - b->used < size) {
        b = arena_block_new(size > ARENA_BLOCK_MIN ? size : ARENA_BLOCK_MIN);
        b->next = a->head;
        a->head = b;
        a->total += b->cap;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static void arena_free(void *opaque, void *p)
{
    /* everything goes at tkc_rpc_arena_reset() */
    (void)opaque;
    (void)p;
}

ProtobufCMessage *tkc_rpc_unpack_in(tkc_rpc_arena_t *a, const ProtobufCMessageDescriptor *desc,
                                    grpc_byte_buffer *bb)
{
    ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return NULL;
    /* One slice (the common case): unpack from it directly. Several: join
     * them in the arena rather than in a malloc'd slice. */
    grpc_slice first, more;
    ProtobufCMessage *m = NULL;
    if (!grpc_byte_buffer_reader_next(&rd, &first)) {
        m = protobuf_c_message_unpack(desc, &alloc, 0, (const uint8_t *)"");
    } else if (!grpc_byte_buffer_reader_next(&rd, &more)) {
        m = protobuf_c_message_unpack(desc, &alloc, GRPC_SLICE_LENGTH(first),
                                      GRPC_SLICE_START_PTR(first));
        grpc_slice_unref(first);
    } else {
        size_t len = grpc_byte_buffer_length(bb);
        uint8_t *buf = arena_alloc(a, len ? len : 1);
        size_t off = 0;
        grpc_slice s = first;
        bool have = true;
        bool second = true;
        while (have) {
            size_t n = GRPC_SLICE_LENGTH(s);
            if (n > len - off)
                n = len - off; /* cannot happen; never write past buf */
            memcpy(buf + off, GRPC_SLICE_START_PTR(s), n);
            off += n;
            grpc_slice_unref(s);
            if (second) {
                s = more;
                second = false;
            } else {
                have = grpc_byte_buffer_reader_next(&rd, &s) != 0;
            }
        }
        m = protobuf_c_message_unpack(desc, &alloc, off, buf);
    }
    grpc_byte_buffer_reader_destroy(&rd);
    return m;
}

gpr_timespec tkc_rpc_deadline_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* tkc_rpc_unary() and tkc_rpc_unary_in(): @p a NULL = malloc'd response */
static void unary(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                  tkc_rpc_arena_t *a, ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    *resp = NULL;
    st->status = GRPC_STATUS_UNKNOWN;
    st->details[0] = '\0';

    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice path = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path, NULL,
                                               tkc_rpc_deadline_ms(timeout_ms), NULL);
    grpc_byte_buffer *send = tkc_rpc_pack(req);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_slice details = grpc_empty_slice();
    grpc_status_code status = GRPC_STATUS_UNKNOWN;

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;

    void *tag = &ops;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, tag, NULL);
    if (e == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                    NULL);
        (void)ev; /* the status below carries the outcome */
        st->status = status;
        char *d = grpc_slice_to_c_string(details);
        snprintf(st->details, sizeof(st->details), "%s", d);
        gpr_free(d);
        if (status == GRPC_STATUS_OK) {
            if (recv && !(*resp = a ? tkc_rpc_unpack_in(a, resp_desc, recv)
                                    : tkc_rpc_unpack(resp_desc, recv))) {
                st->status = GRPC_STATUS_INTERNAL;
                snprintf(st->details, sizeof(st->details), "malformed %s response", method);
            } else if (!recv) {
                st->status = GRPC_STATUS_INTERNAL;
                snprintf(st->details, sizeof(st->details), "empty %s response", method);
            }
        }
    } else {
        snprintf(st->details, sizeof(st->details), "start_batch failed (%d)", (int)e);
    }

    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

void tkc_rpc_unary(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                   ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    unary(ch, method, req, resp_desc, timeout_ms, NULL, resp, st);
}

void tkc_rpc_unary_in(tkc_rpc_arena_t *a, grpc_channel *ch, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      int timeout_ms, ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    unary(ch, method, req, resp_desc, timeout_ms, a, resp, st);
}

const char *tkc_rpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",           "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",     "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",          "UNAVAILABLE",    "DATA_LOSS",
        "UNAUTHENTICATED"};
    if ((int)code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
        return names[code];
    return "UNKNOWN_STATUS";
}
