/*
 * check_sim_rpc.c: the tests' gRPC client (see check_sim_rpc.h).
 *
 * Unary: the 6-op batch of c-deps-notes §1.1 on a private pluck queue.
 * Stream: RECV_STATUS_ON_CLIENT started at once, then one RECV_MESSAGE at a
 * time; a receive that times out stays pending and is picked up by the next
 * crpc_stream_recv(), so no batch is ever started twice.
 */
#include "check_sim_rpc.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "util/mem.h"

static gpr_timespec deadline_in(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void drain_pluck_cq(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

static uint8_t *bb_to_bytes(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, bb);
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    *len = GRPC_SLICE_LENGTH(all);
    uint8_t *out = tkc_malloc(*len ? *len : 1);
    memcpy(out, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    return out;
}

static grpc_byte_buffer *bytes_to_bb(const uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

grpc_channel *crpc_channel(const char *addr)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 100},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 100},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 300},
        /* a private channel per test object: no subchannel sharing between
         * channels, so a restarted server is seen by a fresh channel */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
    };
    grpc_channel_args ca = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, cr, &ca);
    grpc_channel_credentials_release(cr);
    return ch;
}

grpc_status_code crpc_unary(grpc_channel *ch, const char *method, const uint8_t *req,
                            size_t len, int timeout_ms, crpc_result_t *out)
{
    memset(out, 0, sizeof(*out));
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
                                               deadline_in(timeout_ms), NULL);
    grpc_slice_unref(m);
    grpc_byte_buffer *send_bb = bytes_to_bb(req, len);
    grpc_byte_buffer *recv_bb = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 1;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    out->status = status;
    out->details = tkc_strndup((const char *)GRPC_SLICE_START_PTR(details),
                               GRPC_SLICE_LENGTH(details));
    if (recv_bb) {
        if (status == GRPC_STATUS_OK)
            out->resp = bb_to_bytes(recv_bb, &out->resp_len);
        grpc_byte_buffer_destroy(recv_bb);
    }
    grpc_slice_unref(details);
    grpc_byte_buffer_destroy(send_bb);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    drain_pluck_cq(cq);
    return status;
}

void crpc_result_free(crpc_result_t *r)
{
    tkc_free(r->details);
    tkc_free(r->resp);
    memset(r, 0, sizeof(*r));
}

struct crpc_stream_s {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata md;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    char *details_str;
    bool status_done;
    grpc_byte_buffer *recv_bb;
    bool recv_pending;
    bool recv_ended;
    int tag_init, tag_status, tag_recv, tag_send, tag_close;
};

crpc_stream_t *crpc_stream_open(grpc_channel *ch, const char *method, const char *md_key,
                                const char *md_value)
{
    crpc_stream_t *st = tkc_calloc(1, sizeof(*st));
    st->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice m = grpc_slice_from_copied_string(method);
    st->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, st->cq, m, NULL,
                                        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(m);
    grpc_metadata_array_init(&st->init_md);
    grpc_metadata_array_init(&st->trail_md);
    st->details = grpc_empty_slice();
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (md_key) {
        st->md.key = grpc_slice_from_copied_string(md_key);
        st->md.value = grpc_slice_from_copied_string(md_value);
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &st->md;
    }
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
    grpc_call_start_batch(st->call, ops, 2, &st->tag_init, NULL);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &st->trail_md;
    ops[0].data.recv_status_on_client.status = &st->status;
    ops[0].data.recv_status_on_client.status_details = &st->details;
    grpc_call_start_batch(st->call, ops, 1, &st->tag_status, NULL);
    return st;
}

int crpc_stream_send(crpc_stream_t *st, const uint8_t *data, size_t len)
{
    grpc_byte_buffer *bb = bytes_to_bb(data, len);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int rc = -1;
    if (grpc_call_start_batch(st->call, &op, 1, &st->tag_send, NULL) == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(st->cq, &st->tag_send,
                                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        rc = ev.success ? 0 : -1;
    }
    grpc_byte_buffer_destroy(bb);
    return rc;
}

int crpc_stream_recv(crpc_stream_t *st, int timeout_ms, uint8_t **data, size_t *len)
{
    if (st->recv_ended)
        return 0;
    if (!st->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &st->recv_bb;
        if (grpc_call_start_batch(st->call, &op, 1, &st->tag_recv, NULL) != GRPC_CALL_OK) {
            st->recv_ended = true;
            return 0;
        }
        st->recv_pending = true;
    }
    grpc_event ev = grpc_completion_queue_pluck(st->cq, &st->tag_recv, deadline_in(timeout_ms),
                                                NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return -1;
    st->recv_pending = false;
    if (!ev.success || !st->recv_bb) {
        st->recv_ended = true;
        return 0;
    }
    *data = bb_to_bytes(st->recv_bb, len);
    grpc_byte_buffer_destroy(st->recv_bb);
    st->recv_bb = NULL;
    return 1;
}

void crpc_stream_close_send(crpc_stream_t *st)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (grpc_call_start_batch(st->call, &op, 1, &st->tag_close, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(st->cq, &st->tag_close, gpr_inf_future(GPR_CLOCK_REALTIME),
                                    NULL);
}

int crpc_stream_status(crpc_stream_t *st, int timeout_ms, grpc_status_code *status,
                       const char **details)
{
    if (!st->status_done) {
        grpc_event ev = grpc_completion_queue_pluck(st->cq, &st->tag_status,
                                                    deadline_in(timeout_ms), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT)
            return -1;
        st->status_done = true;
        st->details_str = tkc_strndup((const char *)GRPC_SLICE_START_PTR(st->details),
                                      GRPC_SLICE_LENGTH(st->details));
    }
    if (status)
        *status = st->status;
    if (details)
        *details = st->details_str;
    return 0;
}

void crpc_stream_cancel(crpc_stream_t *st)
{
    grpc_call_cancel(st->call, NULL);
}

void crpc_stream_destroy(crpc_stream_t *st)
{
    if (!st)
        return;
    grpc_call_cancel(st->call, NULL);
    gpr_timespec inf = gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_completion_queue_pluck(st->cq, &st->tag_init, inf, NULL);
    if (!st->status_done) {
        grpc_completion_queue_pluck(st->cq, &st->tag_status, inf, NULL);
        st->status_done = true;
    }
    if (st->recv_pending)
        grpc_completion_queue_pluck(st->cq, &st->tag_recv, inf, NULL);
    if (st->recv_bb)
        grpc_byte_buffer_destroy(st->recv_bb);
    grpc_call_unref(st->call);
    drain_pluck_cq(st->cq);
    grpc_slice_unref(st->details);
    grpc_metadata_array_destroy(&st->init_md);
    grpc_metadata_array_destroy(&st->trail_md);
    if (GRPC_SLICE_LENGTH(st->md.key)) {
        grpc_slice_unref(st->md.key);
        grpc_slice_unref(st->md.value);
    }
    tkc_free(st->details_str);
    tkc_free(st);
}
