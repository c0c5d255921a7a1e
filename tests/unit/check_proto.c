/*
 * check_proto.c: the code generated from our kvproto subset (proto/) against
 * bytes worked out by hand from the protobuf encoding rules.
 *
 * Encoding reminders used in the comments below:
 *   tag      = varint(field_number << 3 | wire_type)
 *   wire type 0 = varint (uint64, uint32, int32, int64, bool, enum)
 *   wire type 2 = length-delimited (bytes, string, message, packed repeated)
 *   varint   = 7 bits per byte, least significant group first, high bit set
 *              on every byte except the last. Negative int32/int64 values are
 *              sign-extended to 64 bits, so they always take 10 bytes.
 *   proto3 omits scalar fields that hold their default (0, "", false) and
 *   protobuf-c writes fields in field-number order.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cdcpb.pb-c.h"
#include "errorpb.pb-c.h"
#include "kvrpcpb.pb-c.h"
#include "metapb.pb-c.h"
#include "pdpb.pb-c.h"
#include "tikvpb.pb-c.h"
#include "unit/check_main.h"

/* Packs msg and requires exactly the n bytes at want. */
static void expect_packed(const ProtobufCMessage *msg, const uint8_t *want,
                          size_t n)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t buf[256];
    ck_assert_uint_le(size, sizeof buf);
    size_t wrote = protobuf_c_message_pack(msg, buf);
    ck_assert_uint_eq(wrote, size);
    if (wrote != n || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "%s: got ", msg->descriptor->name);
        for (size_t i = 0; i < wrote; i++)
            fprintf(stderr, "%02x ", buf[i]);
        fprintf(stderr, "\n%s: want ", msg->descriptor->name);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%02x ", want[i]);
        fprintf(stderr, "\n");
    }
    ck_assert_uint_eq(wrote, n);
    ck_assert_mem_eq(buf, want, n);
}

static int bin_is(ProtobufCBinaryData b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && memcmp(b.data, s, n) == 0;
}

/* ---- shared pieces --------------------------------------------------- */

/* 427827666839142402 = 0x05EFF2FF0B080002 = physical 1632033030850 ms << 18 |
 * logical 2 (a real TSO, 2021-09-19 06:30:30.850 UTC). Split into 7-bit
 * groups from the low end: 02 00 20 58 70 5f 7c 77 05; every group but the
 * last gets the 0x80 continuation bit: 82 80 a0 d8 f0 df fc f7 05. */
#define BIG_TSO UINT64_C(427827666839142402)
#define BIG_TSO_VARINT 0x82, 0x80, 0xa0, 0xd8, 0xf0, 0xdf, 0xfc, 0xf7, 0x05

/* cdcpb.Header{cluster_id = 300, ticdc_version = "8.5.0"}: 10 bytes.
 * 300 = 0b10_0101100 -> low group 0x2c|0x80 = 0xac, then 0x02. */
#define HEADER_BYTES                                                         \
    0x08, 0xac, 0x02,              /* cluster_id: field 1 varint, 300 */     \
        0x12, 0x05,                /* ticdc_version: field 2 LEN, 5 bytes */ \
        '8', '.', '5', '.', '0'

/* 1001 = 0b111_1101001 -> 0x69|0x80 = 0xe9, 0x07. */
#define V1001 0xe9, 0x07
/* 1002 -> 0xea, 0x07. */
#define V1002 0xea, 0x07

/* ---- cdcpb encoding ---------------------------------------------------- */

START_TEST(test_register_request)
{
    Cdcpb__Header hdr = CDCPB__HEADER__INIT;
    hdr.cluster_id = 300;
    hdr.ticdc_version = "8.5.0";
    Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;
    epoch.conf_ver = 5;
    epoch.version = 12;
    Cdcpb__ChangeDataRequest__Register reg =
        CDCPB__CHANGE_DATA_REQUEST__REGISTER__INIT;
    Cdcpb__ChangeDataRequest req = CDCPB__CHANGE_DATA_REQUEST__INIT;
    static uint8_t start[] = {'t', 0x80}, end[] = {'t', 0x81};
    req.header = &hdr;
    req.region_id = 1001;
    req.region_epoch = &epoch;
    req.checkpoint_ts = BIG_TSO;
    req.start_key = (ProtobufCBinaryData){sizeof start, start};
    req.end_key = (ProtobufCBinaryData){sizeof end, end};
    req.request_id = 42;
    req.extra_op = KVRPCPB__EXTRA_OP__ReadOldValue;
    req.request_case = CDCPB__CHANGE_DATA_REQUEST__REQUEST_REGISTER;
    req.register_ = &reg;
    /* kv_api = TiDB (0), filter_loop = false, scan_priority = 0: omitted. */

    static const uint8_t want[] = {
        0x0a, 0x0a,        /* header: field 1 LEN (1<<3|2), 10 bytes */
        HEADER_BYTES,
        0x10, V1001,       /* region_id: field 2 varint (2<<3|0), 1001 */
        0x1a, 0x04,        /* region_epoch: field 3 LEN, 4 bytes */
        0x08, 0x05,        /*   conf_ver: field 1 varint, 5 */
        0x10, 0x0c,        /*   version: field 2 varint, 12 */
        0x20, BIG_TSO_VARINT, /* checkpoint_ts: field 4 varint (0x20) */
        0x2a, 0x02, 't', 0x80, /* start_key: field 5 LEN, 2 bytes */
        0x32, 0x02, 't', 0x81, /* end_key: field 6 LEN, 2 bytes */
        0x38, 0x2a,        /* request_id: field 7 varint, 42 */
        0x40, 0x01,        /* extra_op: field 8 varint, ReadOldValue = 1 */
        0x4a, 0x00,        /* register: field 9 LEN (9<<3|2 = 74), empty */
    };
    expect_packed(&req.base, want, sizeof want);
}
END_TEST

START_TEST(test_deregister_request)
{
    Cdcpb__Header hdr = CDCPB__HEADER__INIT;
    hdr.cluster_id = 300;
    hdr.ticdc_version = "8.5.0";
    Cdcpb__ChangeDataRequest__Deregister dereg =
        CDCPB__CHANGE_DATA_REQUEST__DEREGISTER__INIT;
    Cdcpb__ChangeDataRequest req = CDCPB__CHANGE_DATA_REQUEST__INIT;
    req.header = &hdr;
    req.region_id = 1001;
    req.request_id = 42;
    req.request_case = CDCPB__CHANGE_DATA_REQUEST__REQUEST_DEREGISTER;
    req.deregister = &dereg;

    static const uint8_t want[] = {
        0x0a, 0x0a, HEADER_BYTES, /* header: field 1 LEN, 10 bytes */
        0x10, V1001,              /* region_id: field 2 varint, 1001 */
        0x38, 0x2a,               /* request_id: field 7 varint, 42 */
        0x6a, 0x00, /* deregister: field 13 LEN (13<<3|2 = 106), empty */
    };
    expect_packed(&req.base, want, sizeof want);

    /* And back: the oneof comes out as Deregister. */
    Cdcpb__ChangeDataRequest *got =
        cdcpb__change_data_request__unpack(NULL, sizeof want, want);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(got->request_case,
                     CDCPB__CHANGE_DATA_REQUEST__REQUEST_DEREGISTER);
    ck_assert_ptr_nonnull(got->deregister);
    ck_assert_ptr_nonnull(got->header);
    ck_assert_str_eq(got->header->ticdc_version, "8.5.0");
    cdcpb__change_data_request__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_committed_row_event)
{
    Cdcpb__Event__Row row = CDCPB__EVENT__ROW__INIT;
    row.start_ts = 100;
    row.commit_ts = 105;
    row.type = CDCPB__EVENT__LOG_TYPE__COMMITTED;
    row.op_type = CDCPB__EVENT__ROW__OP_TYPE__PUT;
    row.key = (ProtobufCBinaryData){2, (uint8_t *)"k1"};
    row.value = (ProtobufCBinaryData){2, (uint8_t *)"v1"};
    Cdcpb__Event__Row *rows[] = {&row};
    Cdcpb__Event__Entries entries = CDCPB__EVENT__ENTRIES__INIT;
    entries.n_entries = 1;
    entries.entries = rows;
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = 1001;
    ev.request_id = 42;
    ev.event_case = CDCPB__EVENT__EVENT_ENTRIES;
    ev.entries = &entries;
    Cdcpb__Event *evs[] = {&ev};
    Cdcpb__ChangeDataEvent cde = CDCPB__CHANGE_DATA_EVENT__INIT;
    cde.n_events = 1;
    cde.events = evs;

    static const uint8_t want[] = {
        0x0a, 0x19,       /* events: field 1 LEN, 25 bytes (one Event) */
        0x08, V1001,      /*  Event.region_id: field 1 varint, 1001 */
        0x1a, 0x12,       /*  Event.entries: field 3 LEN, 18 bytes */
        0x0a, 0x10,       /*   Entries.entries: field 1 LEN, 16 bytes */
        0x08, 0x64,       /*    Row.start_ts: field 1 varint, 100 */
        0x10, 0x69,       /*    Row.commit_ts: field 2 varint, 105 */
        0x18, 0x04,       /*    Row.type: field 3 varint, COMMITTED = 4 */
        0x20, 0x01,       /*    Row.op_type: field 4 varint, PUT = 1 */
        0x2a, 0x02, 'k', '1', /* Row.key: field 5 LEN, 2 bytes */
        0x32, 0x02, 'v', '1', /* Row.value: field 6 LEN, 2 bytes */
        0x38, 0x2a,       /*  Event.request_id: field 7 varint, 42 */
    };
    expect_packed(&cde.base, want, sizeof want);

    Cdcpb__ChangeDataEvent *got =
        cdcpb__change_data_event__unpack(NULL, sizeof want, want);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->n_events, 1);
    ck_assert_ptr_null(got->resolved_ts);
    Cdcpb__Event *e = got->events[0];
    ck_assert_uint_eq(e->region_id, 1001);
    ck_assert_uint_eq(e->request_id, 42);
    ck_assert_int_eq(e->event_case, CDCPB__EVENT__EVENT_ENTRIES);
    ck_assert_uint_eq(e->entries->n_entries, 1);
    Cdcpb__Event__Row *r = e->entries->entries[0];
    ck_assert_uint_eq(r->start_ts, 100);
    ck_assert_uint_eq(r->commit_ts, 105);
    ck_assert_int_eq(r->type, CDCPB__EVENT__LOG_TYPE__COMMITTED);
    ck_assert_int_eq(r->op_type, CDCPB__EVENT__ROW__OP_TYPE__PUT);
    ck_assert(bin_is(r->key, "k1"));
    ck_assert(bin_is(r->value, "v1"));
    ck_assert_uint_eq(r->old_value.len, 0);
    cdcpb__change_data_event__free_unpacked(got, NULL);
}
END_TEST

/* ResolvedTs{regions = [1001, 1002, 3], ts = 200, request_id = 42}.
 * 200 = 0b1_1001000 -> 0x48|0x80 = 0xc8, 0x01. */
static const uint8_t resolved_packed[] = {
    0x0a, 0x05,               /* regions: field 1 LEN (packed), 5 bytes: */
    V1001, V1002, 0x03,       /*   2 + 2 + 1 varint bytes */
    0x10, 0xc8, 0x01,         /* ts: field 2 varint, 200 */
    0x18, 0x2a,               /* request_id: field 3 varint, 42 */
};

START_TEST(test_resolved_ts_packed)
{
    uint64_t regions[] = {1001, 1002, 3};
    Cdcpb__ResolvedTs rts = CDCPB__RESOLVED_TS__INIT;
    rts.n_regions = 3;
    rts.regions = regions;
    rts.ts = 200;
    rts.request_id = 42;
    expect_packed(&rts.base, resolved_packed, sizeof resolved_packed);

    Cdcpb__ResolvedTs *got = cdcpb__resolved_ts__unpack(
        NULL, sizeof resolved_packed, resolved_packed);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->n_regions, 3);
    ck_assert_uint_eq(got->regions[0], 1001);
    ck_assert_uint_eq(got->regions[1], 1002);
    ck_assert_uint_eq(got->regions[2], 3);
    ck_assert_uint_eq(got->ts, 200);
    ck_assert_uint_eq(got->request_id, 42);
    cdcpb__resolved_ts__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_resolved_ts_unpacked_decodes)
{
    /* The same ResolvedTs with regions NOT packed (one tag per element, as
     * a proto2-style encoder would write it), inside a ChangeDataEvent. */
    static const uint8_t in[] = {
        0x12, 0x0d,         /* resolved_ts: field 2 LEN, 13 bytes */
        0x08, V1001,        /*  regions: field 1 varint, 1001 */
        0x08, V1002,        /*  regions: field 1 varint, 1002 */
        0x08, 0x03,         /*  regions: field 1 varint, 3 */
        0x10, 0xc8, 0x01,   /*  ts: field 2 varint, 200 */
        0x18, 0x2a,         /*  request_id: field 3 varint, 42 */
    };
    Cdcpb__ChangeDataEvent *got =
        cdcpb__change_data_event__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->n_events, 0);
    Cdcpb__ResolvedTs *r = got->resolved_ts;
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_regions, 3);
    ck_assert_uint_eq(r->regions[0], 1001);
    ck_assert_uint_eq(r->regions[1], 1002);
    ck_assert_uint_eq(r->regions[2], 3);
    ck_assert_uint_eq(r->ts, 200);
    ck_assert_uint_eq(r->request_id, 42);
    cdcpb__change_data_event__free_unpacked(got, NULL);
}
END_TEST

/* Event{region_id 1001, request_id 42, error{epoch_not_match{current_regions
 * [Region{id 1002, "a".."b", epoch{5, 13}, peers [Peer{id 3, store 1}]}]}}} */
static const uint8_t epoch_error_event[] = {
    0x08, V1001,            /* region_id: field 1 varint, 1001 */
    0x2a, 0x19,             /* error: field 5 LEN (5<<3|2 = 42), 25 bytes */
    0x1a, 0x17,             /*  epoch_not_match: field 3 LEN, 23 bytes */
    0x0a, 0x15,             /*   current_regions: field 1 LEN, 21 bytes */
    0x08, V1002,            /*    Region.id: field 1 varint, 1002 */
    0x12, 0x01, 'a',        /*    start_key: field 2 LEN, 1 byte */
    0x1a, 0x01, 'b',        /*    end_key: field 3 LEN, 1 byte */
    0x22, 0x04,             /*    region_epoch: field 4 LEN, 4 bytes */
    0x08, 0x05,             /*     conf_ver: field 1 varint, 5 */
    0x10, 0x0d,             /*     version: field 2 varint, 13 */
    0x2a, 0x04,             /*    peers: field 5 LEN, 4 bytes */
    0x08, 0x03,             /*     Peer.id: field 1 varint, 3 */
    0x10, 0x01,             /*     Peer.store_id: field 2 varint, 1 */
    0x38, 0x2a,             /* request_id: field 7 varint, 42 */
};

START_TEST(test_epoch_not_match_event)
{
    Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;
    epoch.conf_ver = 5;
    epoch.version = 13;
    Metapb__Peer peer = METAPB__PEER__INIT;
    peer.id = 3;
    peer.store_id = 1;
    Metapb__Peer *peers[] = {&peer};
    Metapb__Region region = METAPB__REGION__INIT;
    region.id = 1002;
    region.start_key = (ProtobufCBinaryData){1, (uint8_t *)"a"};
    region.end_key = (ProtobufCBinaryData){1, (uint8_t *)"b"};
    region.region_epoch = &epoch;
    region.n_peers = 1;
    region.peers = peers;
    Metapb__Region *regions[] = {&region};
    Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
    enm.n_current_regions = 1;
    enm.current_regions = regions;
    Cdcpb__Error err = CDCPB__ERROR__INIT;
    err.epoch_not_match = &enm;
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = 1001;
    ev.request_id = 42;
    ev.event_case = CDCPB__EVENT__EVENT_ERROR;
    ev.error = &err;
    expect_packed(&ev.base, epoch_error_event, sizeof epoch_error_event);

    Cdcpb__Event *got = cdcpb__event__unpack(NULL, sizeof epoch_error_event,
                                             epoch_error_event);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(got->event_case, CDCPB__EVENT__EVENT_ERROR);
    ck_assert_ptr_null(got->error->not_leader);
    ck_assert_ptr_nonnull(got->error->epoch_not_match);
    ck_assert_uint_eq(got->error->epoch_not_match->n_current_regions, 1);
    Metapb__Region *r = got->error->epoch_not_match->current_regions[0];
    ck_assert_uint_eq(r->id, 1002);
    ck_assert(bin_is(r->start_key, "a"));
    ck_assert(bin_is(r->end_key, "b"));
    ck_assert_uint_eq(r->region_epoch->conf_ver, 5);
    ck_assert_uint_eq(r->region_epoch->version, 13);
    ck_assert_uint_eq(r->n_peers, 1);
    ck_assert_uint_eq(r->peers[0]->store_id, 1);
    ck_assert_int_eq(r->peers[0]->role, METAPB__PEER_ROLE__Voter);
    cdcpb__event__free_unpacked(got, NULL);
}
END_TEST

/* ---- cdcpb decoding ---------------------------------------------------- */

START_TEST(test_event_unknown_fields_skipped)
{
    /* An Event from a "newer" TiKV: two fields 99 we do not know. */
    static const uint8_t in[] = {
        0x08, V1001,       /* region_id: field 1 varint, 1001 */
        0x98, 0x06, 0x01,  /* field 99 varint: tag 99<<3|0 = 792 =
                            * 0b110_0011000 -> 0x18|0x80, 0x06; value 1 */
        0x9a, 0x06, 0x03,  /* field 99 LEN: tag 794 -> 0x9a 0x06; 3 bytes */
        'x', 'y', 'z',
        0x38, 0x2a,        /* request_id: field 7 varint, 42 */
        0x2a, 0x04,        /* error: field 5 LEN, 4 bytes */
        0x0a, 0x02,        /*  not_leader: field 1 LEN, 2 bytes */
        0x08, 0x07,        /*   region_id: field 1 varint, 7 (no leader) */
    };
    Cdcpb__Event *got = cdcpb__event__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->region_id, 1001);
    ck_assert_uint_eq(got->request_id, 42);
    ck_assert_uint_eq(got->base.n_unknown_fields, 2);
    ck_assert_int_eq(got->event_case, CDCPB__EVENT__EVENT_ERROR);
    ck_assert_ptr_nonnull(got->error->not_leader);
    ck_assert_uint_eq(got->error->not_leader->region_id, 7);
    /* Absent leader = unknown leader. */
    ck_assert_ptr_null(got->error->not_leader->leader);
    cdcpb__event__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_admin_event_with_real_raft_cmd)
{
    /* raft_cmdpb.AdminRequest is declared empty here; its real fields
     * arrive as unknown fields and must not break decoding. */
    static const uint8_t in[] = {
        0x08, 0x05,        /* region_id: field 1 varint, 5 */
        0x22, 0x06,        /* admin: field 4 LEN, 6 bytes */
        0x0a, 0x02,        /*  admin_request: field 1 LEN, 2 bytes */
        0x08, 0x05,        /*   cmd_type: field 1 varint (unknown to us) */
        0x12, 0x00,        /*  admin_response: field 2 LEN, empty */
    };
    Cdcpb__Event *got = cdcpb__event__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(got->event_case, CDCPB__EVENT__EVENT_ADMIN);
    ck_assert_ptr_nonnull(got->admin->admin_request);
    ck_assert_uint_eq(got->admin->admin_request->base.n_unknown_fields, 1);
    ck_assert_ptr_nonnull(got->admin->admin_response);
    cdcpb__event__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_deprecated_resolved_ts_event)
{
    /* Old-style per-region resolved ts (oneof member 6). */
    static const uint8_t in[] = {
        0x08, 0x05,        /* region_id: field 1 varint, 5 */
        0x30, 0x64,        /* resolved_ts: field 6 varint (6<<3|0), 100 */
    };
    Cdcpb__Event *got = cdcpb__event__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->region_id, 5);
    ck_assert_int_eq(got->event_case, CDCPB__EVENT__EVENT_RESOLVED_TS);
    cdcpb__event__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_truncated_input_rejected)
{
    /* The committed-row event cut inside the row: a LEN prefix promises more
     * bytes than there are. */
    static const uint8_t in[] = {0x0a, 0x19, 0x08, V1001, 0x1a, 0x12, 0x0a};
    ck_assert_ptr_null(cdcpb__change_data_event__unpack(NULL, sizeof in, in));
}
END_TEST

/* ---- pdpb -------------------------------------------------------------- */

START_TEST(test_tso_request)
{
    Pdpb__RequestHeader hdr = PDPB__REQUEST_HEADER__INIT;
    hdr.cluster_id = 300;
    Pdpb__TsoRequest req = PDPB__TSO_REQUEST__INIT;
    req.header = &hdr;
    req.count = 1;
    req.dc_location = "global";

    static const uint8_t want[] = {
        0x0a, 0x03,        /* header: field 1 LEN, 3 bytes */
        0x08, 0xac, 0x02,  /*  cluster_id: field 1 varint, 300 */
        0x10, 0x01,        /* count: field 2 varint, 1 */
        0x1a, 0x06,        /* dc_location: field 3 LEN, 6 bytes */
        'g', 'l', 'o', 'b', 'a', 'l',
    };
    expect_packed(&req.base, want, sizeof want);
}
END_TEST

START_TEST(test_tso_response_decodes)
{
    static const uint8_t in[] = {
        0x0a, 0x03,        /* header: field 1 LEN, 3 bytes */
        0x08, 0xac, 0x02,  /*  cluster_id: field 1 varint, 300 */
        0x10, 0x03,        /* count: field 2 varint, 3 */
        0x1a, 0x09,        /* timestamp: field 3 LEN, 9 bytes */
        0x08,              /*  physical: field 1 varint, 1632033030850 =
                            *  0x17BFCBFC2C2; 7-bit groups from the low
                            *  end: 42 05 7f 65 3f 2f, +0x80 on all but
                            *  the last */
        0xc2, 0x85, 0xff, 0xe5, 0xbf, 0x2f,
        0x10, 0x04,        /*  logical: field 2 varint, 4 */
    };
    Pdpb__TsoResponse *got = pdpb__tso_response__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->header->cluster_id, 300);
    ck_assert_ptr_null(got->header->error);
    ck_assert_uint_eq(got->count, 3);
    ck_assert_int_eq(got->timestamp->physical, INT64_C(1632033030850));
    ck_assert_int_eq(got->timestamp->logical, 4);
    ck_assert_uint_eq(got->timestamp->suffix_bits, 0);
    pdpb__tso_response__free_unpacked(got, NULL);
}
END_TEST

START_TEST(test_scan_regions_request)
{
    Pdpb__RequestHeader hdr = PDPB__REQUEST_HEADER__INIT;
    hdr.cluster_id = 300;
    Pdpb__ScanRegionsRequest req = PDPB__SCAN_REGIONS_REQUEST__INIT;
    static uint8_t start[] = {'t', 0x80}, end[] = {'t', 0x81};
    req.header = &hdr;
    req.start_key = (ProtobufCBinaryData){sizeof start, start};
    req.limit = 128;
    req.end_key = (ProtobufCBinaryData){sizeof end, end};

    static const uint8_t want[] = {
        0x0a, 0x03,            /* header: field 1 LEN, 3 bytes */
        0x08, 0xac, 0x02,      /*  cluster_id: field 1 varint, 300 */
        0x12, 0x02, 't', 0x80, /* start_key: field 2 LEN, 2 bytes */
        0x18, 0x80, 0x01,      /* limit: field 3 varint, 128 = 0b1_0000000 */
        0x22, 0x02, 't', 0x81, /* end_key: field 4 LEN, 2 bytes */
    };
    expect_packed(&req.base, want, sizeof want);

    /* limit <= 0 means "no limit"; a negative int32 is sign-extended to 64
     * bits on the wire: 0xFFFF_FFFF_FFFF_FFFF = nine 0x7f groups + 0x01. */
    req.limit = -1;
    req.start_key.len = 0;
    req.end_key.len = 0;
    static const uint8_t want_neg[] = {
        0x0a, 0x03, 0x08, 0xac, 0x02, /* header as above */
        0x18,                          /* limit: field 3 varint, -1 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    };
    expect_packed(&req.base, want_neg, sizeof want_neg);
}
END_TEST

START_TEST(test_get_members_response_decodes)
{
    static const uint8_t in[] = {
        0x0a, 0x03,             /* header: field 1 LEN, 3 bytes */
        0x08, 0xac, 0x02,       /*  cluster_id: field 1 varint, 300 */
        0x1a, 0x18,             /* leader: field 3 LEN, 24 = 5 + 2 + 17 */
        0x0a, 0x03, 'p', 'd', '1', /*  name: field 1 LEN, "pd1" */
        0x10, 0x09,             /*  member_id: field 2 varint, 9 */
        0x22, 0x0f,             /*  client_urls: field 4 LEN, 15 bytes */
        'h', 't', 't', 'p', ':', '/', '/', 'p', 'd', '1', ':', '2', '3', '7',
        '9',
        0x2a, 0x0c,             /* tso_allocator_leaders: field 5 LEN, 12;
                                 * a map entry is a message {key 1, value 2} */
        0x0a, 0x06,             /*  key: field 1 LEN, 6 bytes */
        'g', 'l', 'o', 'b', 'a', 'l',
        0x12, 0x02,             /*  value: field 2 LEN, 2 bytes (Member) */
        0x10, 0x09,             /*   member_id: field 2 varint, 9 */
    };
    Pdpb__GetMembersResponse *got =
        pdpb__get_members_response__unpack(NULL, sizeof in, in);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->header->cluster_id, 300);
    ck_assert_uint_eq(got->n_members, 0);
    ck_assert_ptr_nonnull(got->leader);
    ck_assert_str_eq(got->leader->name, "pd1");
    ck_assert_uint_eq(got->leader->member_id, 9);
    ck_assert_uint_eq(got->leader->n_client_urls, 1);
    ck_assert_str_eq(got->leader->client_urls[0], "http://pd1:2379");
    ck_assert_uint_eq(got->n_tso_allocator_leaders, 1);
    ck_assert_str_eq(got->tso_allocator_leaders[0]->key, "global");
    ck_assert_uint_eq(got->tso_allocator_leaders[0]->value->member_id, 9);
    pdpb__get_members_response__free_unpacked(got, NULL);
}
END_TEST

/* ---- services ----------------------------------------------------------- */

START_TEST(test_grpc_method_paths)
{
    static const char *const want[] = {
        "/cdcpb.ChangeData/EventFeed",  "/cdcpb.ChangeData/EventFeedV2",
        "/pdpb.PD/Tso",                 "/pdpb.PD/GetMembers",
        "/pdpb.PD/ScanRegions",         "/pdpb.PD/UpdateServiceGCSafePoint",
        "/tikvpb.Tikv/KvScanLock",      "/tikvpb.Tikv/KvCheckTxnStatus",
        "/tikvpb.Tikv/KvResolveLock",
    };
    const ProtobufCServiceDescriptor *svcs[] = {
        &cdcpb__change_data__descriptor,
        &pdpb__pd__descriptor,
        &tikvpb__tikv__descriptor,
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (size_t s = 0; s < sizeof svcs / sizeof svcs[0]; s++) {
            for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
                char path[128];
                snprintf(path, sizeof path, "/%s/%s", svcs[s]->name,
                         svcs[s]->methods[m].name);
                if (strcmp(path, want[w]) == 0)
                    found++;
            }
        }
        ck_assert_msg(found == 1, "%s found %d times", want[w], found);
    }
    /* Request/response types the simulator and client rely on. */
    const ProtobufCMethodDescriptor *feed =
        protobuf_c_service_descriptor_get_method_by_name(
            &cdcpb__change_data__descriptor, "EventFeedV2");
    ck_assert_ptr_nonnull(feed);
    ck_assert_ptr_eq(feed->input, &cdcpb__change_data_request__descriptor);
    ck_assert_ptr_eq(feed->output, &cdcpb__change_data_event__descriptor);
    const ProtobufCMethodDescriptor *scan =
        protobuf_c_service_descriptor_get_method_by_name(
            &tikvpb__tikv__descriptor, "KvScanLock");
    ck_assert_ptr_nonnull(scan);
    ck_assert_ptr_eq(scan->input, &kvrpcpb__scan_lock_request__descriptor);
    ck_assert_ptr_eq(scan->output, &kvrpcpb__scan_lock_response__descriptor);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("encode");
    tcase_add_test(tc, test_register_request);
    tcase_add_test(tc, test_deregister_request);
    tcase_add_test(tc, test_committed_row_event);
    tcase_add_test(tc, test_resolved_ts_packed);
    tcase_add_test(tc, test_epoch_not_match_event);
    tcase_add_test(tc, test_tso_request);
    tcase_add_test(tc, test_scan_regions_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_test(tc, test_resolved_ts_unpacked_decodes);
    tcase_add_test(tc, test_event_unknown_fields_skipped);
    tcase_add_test(tc, test_admin_event_with_real_raft_cmd);
    tcase_add_test(tc, test_deprecated_resolved_ts_event);
    tcase_add_test(tc, test_truncated_input_rejected);
    tcase_add_test(tc, test_tso_response_decodes);
    tcase_add_test(tc, test_get_members_response_decodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("services");
    tcase_add_test(tc, test_grpc_method_paths);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(proto_suite)
