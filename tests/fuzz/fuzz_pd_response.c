/*
 * fuzz_pd_response.c: fuzz target (2). Bytes -> PD responses -> the PD
 * client's real handling of them: leader discovery (GetMembersResponse),
 * ScanRegions, GetRegionByID, GetStore, GetAllStores and
 * UpdateServiceGCSafePoint, including region_from_pb, store_from_pb,
 * header_error and the store cache.
 *
 * Why pd_client.c is #included: its conversions are static, and the
 * public functions reach them through pd_call() -> tkc_rpc_unary() (and
 * ScanRegions through pd_call_in() -> tkc_rpc_unary_in(), into an arena).
 * The four gRPC entry points pd_client.c uses for unary calls are renamed by
 * the macros below before the include, so every call pd_client.c makes is
 * answered from the fuzz input instead of the network; pd_client.c itself
 * is unchanged. (The TSO stream uses raw gRPC calls and is not fuzzed.)
 *
 * Input: byte 0 = number of operations (mod 32); then, consumed in call
 * order, one byte per operation choosing it and its arguments, and for
 * every unary call pd_client.c makes one record
 *     [u8 status][u16 len, big-endian][len bytes: the response message]
 * status % 8: 0-4 OK (the bytes are unpacked as the expected response
 * type; malformed bytes become INTERNAL, as tkc_rpc_unary reports them),
 * 5 UNAVAILABLE, 6 DEADLINE_EXCEEDED, 7 NOT_FOUND. An exhausted input
 * answers UNAVAILABLE.
 *
 * Invariants (abort on violation): scanned regions all have a leader peer;
 * a store returned by GetStore has a supported version; GetAllStores never
 * returns a tombstone; a GetStore answered from the cache (no call made)
 * returns a supported, non-TiFlash store; strings are terminated; no
 * crash, leak or UB.
 */
#define tkc_rpc_unary fuzz_rpc_unary
#define tkc_rpc_unary_in fuzz_rpc_unary_in
#define tkc_rpc_channel_new fuzz_rpc_channel_new
#define grpc_channel_destroy fuzz_channel_destroy
#include "pd_client.c"
#undef tkc_rpc_unary
#undef tkc_rpc_unary_in
#undef tkc_rpc_channel_new
#undef grpc_channel_destroy

#include "fuzz_target.h"

static fuzz_in_t IN;
static size_t CALLS;
static char CHANNEL; /* every fake channel is this address */

grpc_channel *fuzz_rpc_channel_new(const char *target, const tkc_rpc_tls_t *tls,
                                   const tkc_rpc_channel_opts_t *opts, char *errstr,
                                   size_t errstr_size)
{
    (void)tls;
    (void)opts;
    FUZZ_ASSERT(target && strlen(target) < 160);
    if (fuzz_u8(&IN) == 0xff) { /* rarely: the channel cannot be created */
        snprintf(errstr, errstr_size, "fuzz: no channel");
        return NULL;
    }
    return (grpc_channel *)&CHANNEL;
}

void fuzz_channel_destroy(grpc_channel *ch)
{
    FUZZ_ASSERT(ch == (grpc_channel *)&CHANNEL);
}

/* One answer from the input; with @p a the response is unpacked into the
 * arena the way tkc_rpc_unary_in() does it (from a gRPC byte buffer). */
static void fake_unary(tkc_rpc_arena_t *a, grpc_channel *ch, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                       int timeout_ms, ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    FUZZ_ASSERT(ch == (grpc_channel *)&CHANNEL);
    FUZZ_ASSERT(method && req && resp_desc && timeout_ms > 0);
    /* the request must be packable (it is what would go on the wire) */
    size_t req_len = protobuf_c_message_get_packed_size(req);
    FUZZ_ASSERT(req_len < (1u << 20));
    CALLS++;
    *resp = NULL;
    memset(st, 0, sizeof(*st));
    if (IN.n == 0) {
        st->status = GRPC_STATUS_UNAVAILABLE;
        snprintf(st->details, sizeof(st->details), "fuzz: input exhausted");
        return;
    }
    uint8_t status = fuzz_u8(&IN);
    size_t len;
    const uint8_t *p = fuzz_bytes(&IN, fuzz_u16(&IN), &len);
    switch (status % 8) {
    case 5:
        st->status = GRPC_STATUS_UNAVAILABLE;
        return;
    case 6:
        st->status = GRPC_STATUS_DEADLINE_EXCEEDED;
        return;
    case 7:
        st->status = GRPC_STATUS_NOT_FOUND;
        return;
    default:
        break;
    }
    if (a) {
        grpc_slice slice = grpc_slice_from_copied_buffer((const char *)p, len);
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
        grpc_slice_unref(slice);
        *resp = tkc_rpc_unpack_in(a, resp_desc, bb);
        grpc_byte_buffer_destroy(bb);
    } else {
        *resp = protobuf_c_message_unpack(resp_desc, NULL, len, p);
    }
    if (!*resp) {
        st->status = GRPC_STATUS_INTERNAL;
        snprintf(st->details, sizeof(st->details), "malformed response");
        return;
    }
    st->status = GRPC_STATUS_OK;
}

void fuzz_rpc_unary(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                    ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    fake_unary(NULL, ch, method, req, resp_desc, timeout_ms, resp, st);
}

void fuzz_rpc_unary_in(tkc_rpc_arena_t *a, grpc_channel *ch, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                       int timeout_ms, ProtobufCMessage **resp, tkc_rpc_status_t *st)
{
    FUZZ_ASSERT(a);
    fake_unary(a, ch, method, req, resp_desc, timeout_ms, resp, st);
}

static void check_store(const tkc_pd_store_t *s)
{
    FUZZ_ASSERT(memchr(s->address, '\0', sizeof(s->address)) != NULL);
    FUZZ_ASSERT(memchr(s->version, '\0', sizeof(s->version)) != NULL);
}

static void one_op(tkc_pd_client_t *pd)
{
    uint8_t op = fuzz_u8(&IN);
    char err[256];
    switch (op % 6) {
    case 0: {
        tkc_pd_region_t *rs = NULL;
        size_t n = 0;
        static const uint8_t start[] = {'t', 0x80};
        tkc_err_t e = tkc_pd_client_scan_regions(pd, (op & 0x40) ? start : NULL,
                                                 (op & 0x40) ? sizeof(start) : 0, NULL, 0,
                                                 (int)(op >> 3), &rs, &n);
        if (e == TKC_ERR_OK) {
            FUZZ_ASSERT(rs != NULL);
            for (size_t i = 0; i < n; i++) {
                FUZZ_ASSERT(rs[i].leader_peer_id != 0);
                FUZZ_ASSERT(rs[i].start_len == 0 || rs[i].start_key);
                FUZZ_ASSERT(rs[i].end_len == 0 || rs[i].end_key);
            }
            tkc_pd_regions_free(rs, n);
        } else {
            FUZZ_ASSERT(rs == NULL && n == 0);
        }
        break;
    }
    case 1: {
        tkc_pd_region_t r;
        memset(&r, 0, sizeof(r));
        if (tkc_pd_client_get_region_by_id(pd, op, &r) == TKC_ERR_OK)
            tkc_pd_region_free(&r);
        break;
    }
    case 2: {
        tkc_pd_store_t s;
        bool reload = op & 0x80;
        size_t calls = CALLS;
        tkc_err_t e = tkc_pd_client_get_store(pd, (op >> 3) & 7, reload, &s, err, sizeof(err));
        if (e == TKC_ERR_OK) {
            check_store(&s);
            FUZZ_ASSERT(tkc_pd_store_version_supported(s.version));
            if (calls == CALLS) /* from the cache */
                FUZZ_ASSERT(!reload && !s.tiflash && s.id == (uint64_t)((op >> 3) & 7));
        } else {
            FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        }
        break;
    }
    case 3: {
        tkc_pd_store_t *ss = NULL;
        size_t n = 0;
        if (tkc_pd_client_get_all_stores(pd, &ss, &n) == TKC_ERR_OK) {
            for (size_t i = 0; i < n; i++) {
                check_store(&ss[i]);
                FUZZ_ASSERT(ss[i].state != METAPB__STORE_STATE__Tombstone);
            }
            tkc_free(ss);
        } else {
            FUZZ_ASSERT(ss == NULL && n == 0);
        }
        break;
    }
    case 4: {
        uint64_t min = 0;
        (void)tkc_pd_client_update_service_safepoint(pd, "fuzz-feed", 60, op, &min);
        break;
    }
    default: {
        char leader[160];
        tkc_pd_client_leader(pd, leader, sizeof(leader));
        FUZZ_ASSERT(memchr(leader, '\0', sizeof(leader)) != NULL);
        tkc_pd_client_stats_t stats;
        tkc_pd_client_stats(pd, &stats);
        (void)tkc_pd_client_cluster_id(pd);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        fuzz_quiet_logs();
        quiet = true;
    }
    IN = (fuzz_in_t){data, size};
    CALLS = 0;
    int n_ops = fuzz_u8(&IN) % 32;
    static const char *const endpoints[] = {"pd1:2379", "http://pd2:2379"};
    tkc_pd_config_t cfg = {.endpoints = endpoints, .n_endpoints = 2, .timeout_ms = 100};
    char err[256];
    tkc_pd_client_t *pd = tkc_pd_client_new(&cfg, err, sizeof(err));
    if (!pd) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    for (int i = 0; i < n_ops; i++)
        one_op(pd);
    tkc_pd_client_destroy(pd);
    return 0;
}
