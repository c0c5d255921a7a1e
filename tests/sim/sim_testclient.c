/*
 * sim_testclient.c: synchronous EventFeed test client (see the header).
 *
 * Each stream owns a completion queue of the "next" kind and at most one
 * operation of each kind in flight: the initial-metadata batch, the status
 * batch (started at once, so the final status is always collected), one
 * RECV_MESSAGE and one SEND_MESSAGE/close. Tags are small integers; every
 * started batch completes exactly once, even after a cancel, so destroy pumps
 * until nothing is outstanding before releasing the call.
 */
#include "sim_testclient.h"

#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "util/mem.h"

enum { TAG_START = 1, TAG_STATUS, TAG_RECV, TAG_SEND };

struct sim_tc_s {
    grpc_channel *ch;
};

struct sim_tc_stream_s {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata md;
    bool has_md;
    grpc_metadata_array init_md, trailing_md;
    grpc_status_code status;
    grpc_slice status_details;
    char *details;
    bool have_status;
    int outstanding;
    bool recv_pending, send_pending;
    bool ended;             /* a RECV_MESSAGE returned no message */
    grpc_byte_buffer *recv_bb;
    bool recv_ready;        /* recv_bb holds an unread message */
    grpc_slice cur;         /* the message handed out last */
    bool cur_set;
    grpc_byte_buffer *send_bb;
};

static gpr_timespec deadline_ms(int ms)
{
    if (ms < 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

sim_tc_t *sim_tc_new(const char *addr)
{
    sim_tc_t *tc = tkc_calloc(1, sizeof(*tc));
    grpc_arg args[4];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 100;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 500;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
    args[3].value.integer = 100;
    grpc_channel_args ca = {.num_args = 4, .args = args};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    tc->ch = grpc_channel_create(addr, cr, &ca);
    grpc_channel_credentials_release(cr);
    return tc;
}

void sim_tc_destroy(sim_tc_t *tc)
{
    if (tc == NULL)
        return;
    grpc_channel_destroy(tc->ch);
    tkc_free(tc);
}

/* Handles one completion; @returns false on timeout. */
static bool pump(sim_tc_stream_t *s, gpr_timespec deadline)
{
    grpc_event ev = grpc_completion_queue_next(s->cq, deadline, NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return false;
    s->outstanding--;
    switch ((intptr_t)ev.tag) {
    case TAG_START:
        break;
    case TAG_STATUS:
        s->have_status = true;
        s->details = grpc_slice_to_c_string(s->status_details);
        break;
    case TAG_RECV:
        s->recv_pending = false;
        if (s->recv_bb == NULL)
            s->ended = true;
        else
            s->recv_ready = true;
        break;
    case TAG_SEND:
        s->send_pending = false;
        if (s->send_bb) {
            grpc_byte_buffer_destroy(s->send_bb);
            s->send_bb = NULL;
        }
        break;
    default:
        break;
    }
    return true;
}

static int start(sim_tc_stream_t *s, const grpc_op *ops, size_t n, intptr_t tag)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, (void *)tag, NULL);
    if (e != GRPC_CALL_OK)
        return -1;
    s->outstanding++;
    return 0;
}

sim_tc_stream_t *sim_tc_open(sim_tc_t *tc, bool v2, const char *features)
{
    sim_tc_stream_t *s = tkc_calloc(1, sizeof(*s));
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice method = grpc_slice_from_static_string(v2 ? "/cdcpb.ChangeData/EventFeedV2"
                                                         : "/cdcpb.ChangeData/EventFeed");
    s->call = grpc_channel_create_call(tc->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method,
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->status_details = grpc_empty_slice();

    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (features) {
        s->md.key = grpc_slice_from_static_string("features");
        s->md.value = grpc_slice_from_copied_string(features);
        s->has_md = true;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &s->md;
    }
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    start(s, ops, 2, TAG_START);

    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->status_details;
    start(s, ops, 1, TAG_STATUS);
    return s;
}

static int wait_send_idle(sim_tc_stream_t *s)
{
    while (s->send_pending)
        if (!pump(s, deadline_ms(10000)))
            return -1;
    return 0;
}

int sim_tc_send(sim_tc_stream_t *s, const Cdcpb__ChangeDataRequest *req)
{
    if (wait_send_idle(s) != 0 || s->have_status)
        return -1;
    size_t n = cdcpb__change_data_request__get_packed_size(req);
    grpc_slice sl = grpc_slice_malloc(n);
    cdcpb__change_data_request__pack(req, GRPC_SLICE_START_PTR(sl));
    s->send_bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->send_bb;
    if (start(s, &op, 1, TAG_SEND) != 0) {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
        return -1;
    }
    s->send_pending = true;
    return wait_send_idle(s);
}

int sim_tc_register(sim_tc_stream_t *s, const sim_tc_reg_t *r)
{
    Cdcpb__Header h = CDCPB__HEADER__INIT;
    h.cluster_id = r->cluster_id;
    h.ticdc_version = (char *)(r->version ? r->version : "8.5.0");
    Metapb__RegionEpoch ep = METAPB__REGION_EPOCH__INIT;
    ep.conf_ver = r->conf_ver;
    ep.version = r->version_epoch;
    Cdcpb__ChangeDataRequest req = CDCPB__CHANGE_DATA_REQUEST__INIT;
    req.header = &h;
    req.region_id = r->region_id;
    req.region_epoch = &ep;
    req.checkpoint_ts = r->checkpoint_ts;
    req.start_key.data = (uint8_t *)r->start_key;
    req.start_key.len = r->start_len;
    req.end_key.data = (uint8_t *)r->end_key;
    req.end_key.len = r->end_len;
    req.request_id = r->request_id;
    req.extra_op = KVRPCPB__EXTRA_OP__ReadOldValue;
    req.kv_api = (Cdcpb__ChangeDataRequest__KvAPI)r->kv_api;
    return sim_tc_send(s, &req);
}

int sim_tc_deregister(sim_tc_stream_t *s, uint64_t cluster_id, uint64_t request_id,
                      uint64_t region_id)
{
    Cdcpb__Header h = CDCPB__HEADER__INIT;
    h.cluster_id = cluster_id;
    h.ticdc_version = "8.5.0";
    Cdcpb__ChangeDataRequest__Deregister d = CDCPB__CHANGE_DATA_REQUEST__DEREGISTER__INIT;
    Cdcpb__ChangeDataRequest req = CDCPB__CHANGE_DATA_REQUEST__INIT;
    req.header = &h;
    req.request_id = request_id;
    req.region_id = region_id;
    req.request_case = CDCPB__CHANGE_DATA_REQUEST__REQUEST_DEREGISTER;
    req.deregister = &d;
    return sim_tc_send(s, &req);
}

int sim_tc_close_send(sim_tc_stream_t *s)
{
    if (wait_send_idle(s) != 0)
        return -1;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (start(s, &op, 1, TAG_SEND) != 0)
        return -1;
    s->send_pending = true;
    return 0;
}

static void drop_current(sim_tc_stream_t *s)
{
    if (s->cur_set) {
        grpc_slice_unref(s->cur);
        s->cur_set = false;
    }
}

int sim_tc_recv_raw(sim_tc_stream_t *s, int timeout_ms, const uint8_t **data, size_t *len)
{
    drop_current(s);
    gpr_timespec dl = deadline_ms(timeout_ms);
    for (;;) {
        if (s->recv_ready) {
            grpc_byte_buffer_reader rd;
            grpc_byte_buffer_reader_init(&rd, s->recv_bb);
            s->cur = grpc_byte_buffer_reader_readall(&rd);
            s->cur_set = true;
            grpc_byte_buffer_reader_destroy(&rd);
            grpc_byte_buffer_destroy(s->recv_bb);
            s->recv_bb = NULL;
            s->recv_ready = false;
            *data = GRPC_SLICE_START_PTR(s->cur);
            *len = GRPC_SLICE_LENGTH(s->cur);
            return 1;
        }
        if (s->ended)
            return -1;
        if (!s->recv_pending) {
            grpc_op op;
            memset(&op, 0, sizeof(op));
            op.op = GRPC_OP_RECV_MESSAGE;
            op.data.recv_message.recv_message = &s->recv_bb;
            if (start(s, &op, 1, TAG_RECV) != 0) {
                s->ended = true;
                return -1;
            }
            s->recv_pending = true;
        }
        if (!pump(s, dl))
            return 0;
    }
}

Cdcpb__ChangeDataEvent *sim_tc_recv(sim_tc_stream_t *s, int timeout_ms)
{
    const uint8_t *d;
    size_t n;
    if (sim_tc_recv_raw(s, timeout_ms, &d, &n) != 1)
        return NULL;
    return cdcpb__change_data_event__unpack(NULL, n, d);
}

bool sim_tc_ended(const sim_tc_stream_t *s)
{
    return s->ended;
}

int sim_tc_status(sim_tc_stream_t *s, int timeout_ms, const char **details)
{
    gpr_timespec dl = deadline_ms(timeout_ms);
    while (!s->have_status)
        if (!pump(s, dl))
            return -1;
    if (details)
        *details = s->details;
    return (int)s->status;
}

void sim_tc_stream_destroy(sim_tc_stream_t *s)
{
    if (s == NULL)
        return;
    if (!s->have_status)
        grpc_call_cancel(s->call, NULL);
    while (s->outstanding > 0)
        pump(s, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    drop_current(s);
    if (s->recv_bb)
        grpc_byte_buffer_destroy(s->recv_bb);
    if (s->send_bb)
        grpc_byte_buffer_destroy(s->send_bb);
    grpc_call_unref(s->call);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->cq);
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_slice_unref(s->status_details);
    if (s->has_md)
        grpc_slice_unref(s->md.value);
    gpr_free(s->details);
    tkc_free(s);
}
