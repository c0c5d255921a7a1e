/*
 * feed_stream.c: one EventFeed bidi call to one store, driven by its
 * worker's completion queue (c-deps-notes §1).
 *
 * Batches of a call, each with its own tag (a feed_stream_op_t embedded in
 * the stream):
 *   STATUS  RECV_STATUS_ON_CLIENT, started first; its completion is the one
 *           and only "this stream is over" signal;
 *   START   SEND_INITIAL_METADATA (wait-for-ready, and the "features"
 *           header on EventFeedV2) + RECV_INITIAL_METADATA;
 *   RECV    one RECV_MESSAGE at a time, re-armed only while the worker's
 *           outbox is empty (flow control, feed.h);
 *   SEND    one SEND_MESSAGE at a time from a FIFO of packed requests.
 * gRPC allows one operation of each kind in flight and completes every
 * started batch exactly once, also after a cancel; pending_ops counts them
 * and the stream object is freed only when it is retired AND the count is
 * zero, so no completion can ever reach freed memory.
 *
 * The stream's cancel is bound to this object (tkc_feed_stream_cancel_cb is
 * the stream table's cancel callback with this stream as its opaque): it
 * cancels this call and no other.
 *
 * Thread: the owning worker thread only (grpc_call_cancel itself is
 * thread-safe, but nothing here relies on that).
 */
#include "feed_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "rpc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

feed_stream_t *tkc_feed_stream_new(feed_worker_t *w, feed_store_t *ws, bool v2, int64_t now)
{
    feed_stream_t *fs = tkc_calloc(1, sizeof(*fs));
    fs->w = w;
    fs->ws = ws;
    fs->store_id = ws->store_id;
    fs->v2 = v2;
    fs->op_start = (feed_stream_op_t){FS_OP_START, fs};
    fs->op_status = (feed_stream_op_t){FS_OP_STATUS, fs};
    fs->op_recv = (feed_stream_op_t){FS_OP_RECV, fs};
    fs->op_send = (feed_stream_op_t){FS_OP_SEND, fs};
    grpc_metadata_array_init(&fs->init_md);
    grpc_metadata_array_init(&fs->trail_md);
    fs->details = grpc_empty_slice();
    fs->status = GRPC_STATUS_OK;
    fs->opened_ms = now;
    fs->last_recv_ms = now;
    fs->by_region = tkc_hashmap_new_fixed(sizeof(uint64_t)); /* region id; one per region */
    fs->next = w->streams;
    w->streams = fs;
    return fs;
}

void tkc_feed_stream_attach(feed_stream_t *fs, tkc_stream_t *st)
{
    fs->st = st;
    fs->id = tkc_stream_id(st);
}

static bool start_batch(feed_stream_t *fs, const grpc_op *ops, size_t n, feed_stream_op_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(fs->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        tkc_log(TKC_LOG_ERROR, "feed",
                "event=start_batch_failed store_id=%" PRIu64 " stream_id=%" PRIu64
                " op=%d grpc_call_error=%d",
                fs->store_id, fs->id, (int)tag->kind, (int)e);
        return false;
    }
    fs->pending_ops++;
    return true;
}

static void arm_recv(feed_stream_t *fs)
{
    if (fs->recv_armed || fs->recv_ended || fs->failed || !fs->call)
        return;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &fs->recv_buf;
    if (start_batch(fs, &op, 1, &fs->op_recv))
        fs->recv_armed = true;
}

static void start_next_send(feed_stream_t *fs)
{
    if (fs->sending || !fs->sq_head || !fs->call)
        return;
    feed_sendq_t *q = fs->sq_head;
    fs->sq_head = q->next;
    if (!fs->sq_head)
        fs->sq_tail = NULL;
    fs->sending = q->bb;
    tkc_free(q);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = fs->sending;
    if (!start_batch(fs, &op, 1, &fs->op_send)) {
        grpc_byte_buffer_destroy(fs->sending);
        fs->sending = NULL;
    }
}

bool tkc_feed_stream_open(feed_stream_t *fs)
{
    feed_worker_t *w = fs->w;
    tkc_feed_t *f = w->f;
    fs->call = grpc_channel_create_call(
        fs->ws->ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
        grpc_slice_from_static_string(fs->v2 ? TKC_RPC_EVENTFEED_V2 : TKC_RPC_EVENTFEED), NULL,
        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!fs->call)
        return false;

    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &fs->trail_md;
    ops[0].data.recv_status_on_client.status = &fs->status;
    ops[0].data.recv_status_on_client.status_details = &fs->details;
    if (!start_batch(fs, ops, 1, &fs->op_status))
        return false;

    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    /* Wait for the connection instead of failing at once while the store
     * restarts: one stream per restart instead of a create/fail loop. The
     * worker's connect timeout bounds the wait. */
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    if (fs->v2) {
        fs->md[0].key = grpc_slice_from_static_string("features");
        fs->md[0].value = grpc_slice_from_copied_string(f->v2_features);
        fs->n_md = 1;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = fs->md;
    }
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &fs->init_md;
    if (!start_batch(fs, ops, 2, &fs->op_start)) {
        grpc_call_cancel(fs->call, NULL);
        return false;
    }
    arm_recv(fs);
    if (fs->cancel_wanted)
        grpc_call_cancel(fs->call, NULL);
    return true;
}

void tkc_feed_stream_send(feed_stream_t *fs, grpc_byte_buffer *bb)
{
    if (fs->failed || !fs->call) {
        grpc_byte_buffer_destroy(bb);
        return;
    }
    feed_sendq_t *q = tkc_calloc(1, sizeof(*q));
    q->bb = bb;
    if (fs->sq_tail)
        fs->sq_tail->next = q;
    else
        fs->sq_head = q;
    fs->sq_tail = q;
    start_next_send(fs);
}

void tkc_feed_stream_resume(feed_stream_t *fs)
{
    if (!fs->recv_paused)
        return;
    fs->recv_paused = false;
    /* the silence while we did not read was ours: restart the stall clock */
    fs->last_recv_ms = tkc_clock_mono_ms();
    arm_recv(fs);
}

void tkc_feed_stream_cancel(feed_stream_t *fs)
{
    if (fs->call)
        grpc_call_cancel(fs->call, NULL);
    else
        fs->cancel_wanted = true;
}

void tkc_feed_stream_cancel_cb(tkc_stream_t *st, void *opaque)
{
    (void)st;
    tkc_feed_stream_cancel(opaque);
}

bool tkc_feed_stream_finished(const feed_stream_t *fs)
{
    return fs->pending_ops == 0 && (fs->retired || fs->w->shutting_down);
}

static void on_message(feed_stream_t *fs, int64_t now)
{
    feed_worker_t *w = fs->w;
    grpc_byte_buffer *bb = fs->recv_buf;
    fs->recv_buf = NULL;
    fs->connected = true;
    fs->last_recv_ms = now;
    fs->msgs++;
    if (fs->failed || w->shutting_down) {
        grpc_byte_buffer_destroy(bb);
        return;
    }
    /* unpacked into the worker's arena: one reset instead of a free per
     * field; everything kept past this call is copied out of the message */
    if (!w->pb_arena)
        w->pb_arena = tkc_rpc_arena_new();
    Cdcpb__ChangeDataEvent *msg = (Cdcpb__ChangeDataEvent *)tkc_rpc_unpack_in(
        w->pb_arena, &cdcpb__change_data_event__descriptor, bb);
    grpc_byte_buffer_destroy(bb);
    if (!msg) {
        tkc_rpc_arena_reset(w->pb_arena);
        snprintf(fs->fail_reason, sizeof(fs->fail_reason), "undecodable ChangeDataEvent");
        tkc_feed_worker_stream_failed(w, fs);
        return;
    }
    tkc_feed_region_on_message(w, fs, msg, now);
    tkc_rpc_arena_reset(w->pb_arena);
    if (fs->failed)
        return;
    if (tkc_feed_worker_flush(w)) {
        arm_recv(fs);
    } else {
        /* The output queue is full: stop asking this stream for more until
         * the outbox drains (HTTP/2 flow control then holds TiKV back). */
        fs->recv_paused = true;
        if (!w->recv_paused)
            FEED_COUNT(w->f, flow_control_pauses);
        w->recv_paused = true;
    }
}

void tkc_feed_stream_on_op(feed_stream_op_t *op, bool ok)
{
    feed_stream_t *fs = op->fs;
    feed_worker_t *w = fs->w;
    int64_t now = tkc_clock_mono_ms();
    switch (op->kind) {
    case FS_OP_START:
        if (ok)
            fs->connected = true;
        break;
    case FS_OP_STATUS:
        fs->status_done = true;
        if (!w->shutting_down && !fs->failed) {
            char *d = grpc_slice_to_c_string(fs->details);
            snprintf(fs->fail_reason, sizeof(fs->fail_reason), "status %s \"%s\"",
                     tkc_rpc_status_name(fs->status), d);
            gpr_free(d);
        }
        if (!w->shutting_down)
            tkc_feed_worker_stream_failed(w, fs);
        break;
    case FS_OP_RECV:
        fs->recv_armed = false;
        if (ok && fs->recv_buf)
            on_message(fs, now);
        else
            fs->recv_ended = true; /* end of stream; the status follows */
        break;
    case FS_OP_SEND:
        grpc_byte_buffer_destroy(fs->sending);
        fs->sending = NULL;
        if (ok && !fs->failed && !w->shutting_down)
            start_next_send(fs);
        break;
    }
    fs->pending_ops--;
    tkc_feed_worker_stream_maybe_free(w, fs);
}

void tkc_feed_stream_free(feed_stream_t *fs)
{
    feed_worker_t *w = fs->w;
    for (feed_stream_t **pp = &w->streams; *pp; pp = &(*pp)->next) {
        if (*pp == fs) {
            *pp = fs->next;
            break;
        }
    }
    if (fs->ws && fs->ws->cur == fs)
        fs->ws->cur = NULL;
    while (fs->sq_head) {
        feed_sendq_t *q = fs->sq_head;
        fs->sq_head = q->next;
        grpc_byte_buffer_destroy(q->bb);
        tkc_free(q);
    }
    if (fs->sending)
        grpc_byte_buffer_destroy(fs->sending);
    if (fs->recv_buf)
        grpc_byte_buffer_destroy(fs->recv_buf);
    if (fs->call)
        grpc_call_unref(fs->call);
    for (size_t i = 0; i < fs->n_md; i++)
        grpc_slice_unref(fs->md[i].value);
    grpc_metadata_array_destroy(&fs->init_md);
    grpc_metadata_array_destroy(&fs->trail_md);
    grpc_slice_unref(fs->details);
    if (fs->st)
        tkc_stream_release(fs->st);
    tkc_hashmap_destroy(fs->by_region, NULL);
    tkc_free(fs);
}
