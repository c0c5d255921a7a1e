/*
 * gen_corpus.c: writes the seed corpus of the fuzz targets
 * (tests/fuzz/corpus/<target>/). Not a test: run it by hand after changing
 * an input format, then commit what it wrote:
 *
 *   fuzz_gen_corpus <tests/fuzz/corpus> <schema dir> <config dir>
 *
 * The seeds are small valid (and a few deliberately broken) inputs in each
 * target's format, so the fuzzer starts from the interesting paths: a
 * matched prewrite/commit, INITIALIZED, resolved ts in both forms, each
 * region error kind, leader discovery and every PD response type, each
 * Avro message kind, and the shipped example configs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avro_codec.h"
#include "cdcpb.pb-c.h"
#include "errorpb.pb-c.h"
#include "metapb.pb-c.h"
#include "pdpb.pb-c.h"
#include "row.h"
#include "util/mem.h"

/* ===== a seed file being built ===== */

typedef struct seed_s {
    uint8_t buf[16384];
    size_t len;
} seed_t;

static const char *OUT;

static void put(seed_t *s, const void *p, size_t n)
{
    if (s->len + n > sizeof(s->buf)) {
        fprintf(stderr, "seed too large\n");
        exit(1);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put_u8(seed_t *s, uint8_t v)
{
    put(s, &v, 1);
}

/* [ctl/status u8][u16 len][packed message], the record of both pb targets */
static void put_msg(seed_t *s, uint8_t ctl, const ProtobufCMessage *m)
{
    uint8_t tmp[8192];
    size_t n = m ? protobuf_c_message_pack(m, tmp) : 0;
    put_u8(s, ctl);
    put_u8(s, (uint8_t)(n >> 8));
    put_u8(s, (uint8_t)n);
    put(s, tmp, n);
}

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", OUT, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", OUT, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ===== changedata ===== */

static Cdcpb__Event__Row *row(Cdcpb__Event__Row *r, Cdcpb__Event__LogType type,
                              Cdcpb__Event__Row__OpType op, const char *key, const char *value,
                              uint64_t start_ts, uint64_t commit_ts)
{
    cdcpb__event__row__init(r);
    r->type = type;
    r->op_type = op;
    r->key.data = (uint8_t *)key;
    r->key.len = key ? strlen(key) : 0;
    r->value.data = (uint8_t *)value;
    r->value.len = value ? strlen(value) : 0;
    r->start_ts = start_ts;
    r->commit_ts = commit_ts;
    return r;
}

#define PW CDCPB__EVENT__LOG_TYPE__PREWRITE
#define CM CDCPB__EVENT__LOG_TYPE__COMMIT
#define CMD CDCPB__EVENT__LOG_TYPE__COMMITTED
#define RB CDCPB__EVENT__LOG_TYPE__ROLLBACK
#define INIT CDCPB__EVENT__LOG_TYPE__INITIALIZED
#define PUT CDCPB__EVENT__ROW__OP_TYPE__PUT
#define DEL CDCPB__EVENT__ROW__OP_TYPE__DELETE

/* One event with entries rows[0..n) for (region, request). */
static void entries_msg(seed_t *s, uint64_t region, uint64_t req, Cdcpb__Event__Row **rows,
                        size_t n)
{
    Cdcpb__Event__Entries en = CDCPB__EVENT__ENTRIES__INIT;
    en.entries = rows;
    en.n_entries = n;
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = region;
    ev.request_id = req;
    ev.event_case = CDCPB__EVENT__EVENT_ENTRIES;
    ev.entries = &en;
    Cdcpb__Event *evs[] = {&ev};
    Cdcpb__ChangeDataEvent m = CDCPB__CHANGE_DATA_EVENT__INIT;
    m.events = evs;
    m.n_events = 1;
    put_msg(s, 1, &m.base);
}

static void resolved_msg(seed_t *s, const uint64_t *regions, size_t n, uint64_t ts, uint64_t req)
{
    Cdcpb__ResolvedTs rt = CDCPB__RESOLVED_TS__INIT;
    rt.regions = (uint64_t *)regions;
    rt.n_regions = n;
    rt.ts = ts;
    rt.request_id = req;
    Cdcpb__ChangeDataEvent m = CDCPB__CHANGE_DATA_EVENT__INIT;
    m.resolved_ts = &rt;
    put_msg(s, 2, &m.base);
}

static void error_msg(seed_t *s, uint64_t region, uint64_t req, Cdcpb__Error *err)
{
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = region;
    ev.request_id = req;
    ev.event_case = CDCPB__EVENT__EVENT_ERROR;
    ev.error = err;
    Cdcpb__Event *evs[] = {&ev};
    Cdcpb__ChangeDataEvent m = CDCPB__CHANGE_DATA_EVENT__INIT;
    m.events = evs;
    m.n_events = 1;
    put_msg(s, 3, &m.base);
}

static void gen_changedata(void)
{
    Cdcpb__Event__Row r[8];
    Cdcpb__Event__Row *rp[8];
    for (int i = 0; i < 8; i++)
        rp[i] = &r[i];
    const uint64_t both[] = {1, 2}, three[] = {1, 2, 3};

    /* V1, 2 regions (request ids 1, 2): prewrite, INITIALIZED, commit,
     * resolved, not_leader, re-registration (request id 3), COMMITTED */
    seed_t s = {.len = 0};
    put_u8(&s, 0x02);
    row(&r[0], PW, PUT, "a1", "v1", 1100, 0);
    row(&r[1], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 1, 1, rp, 2);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 2, 2, rp, 1);
    row(&r[0], CM, PUT, "a1", NULL, 1100, 1200);
    row(&r[1], PW, DEL, "a2", NULL, 1150, 0);
    row(&r[2], CM, DEL, "a2", NULL, 1150, 1250);
    entries_msg(&s, 1, 1, rp, 3);
    resolved_msg(&s, both, 2, 1300, 0);
    Metapb__Peer leader = METAPB__PEER__INIT;
    leader.id = 11;
    leader.store_id = 2;
    Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
    nl.region_id = 1;
    nl.leader = &leader;
    Cdcpb__Error e1 = CDCPB__ERROR__INIT;
    e1.not_leader = &nl;
    error_msg(&s, 1, 1, &e1);
    row(&r[0], CMD, PUT, "a3", "v3", 1400, 1500);
    row(&r[1], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 1, 3, rp, 2);
    row(&r[0], CMD, PUT, "b1", "w1", 1410, 1510);
    entries_msg(&s, 2, 2, rp, 1);
    resolved_msg(&s, both, 2, 1600, 0);
    write_seed("changedata", "v1_two_regions", s.buf, s.len);

    /* V2 (request id 1), 3 regions: commits cached before INITIALIZED, a
     * rollback, the deprecated per-region resolved ts, busy and epoch errors */
    s.len = 0;
    put_u8(&s, 0x05);
    row(&r[0], CM, PUT, "b5", NULL, 1100, 1120);
    row(&r[1], PW, PUT, "b5", "x5", 1100, 0);
    row(&r[2], PW, PUT, "b6", "x6", 1130, 0);
    row(&r[3], RB, 0, "b6", NULL, 1130, 0);
    row(&r[4], CMD, PUT, "b7", "x7", 900, 1050);
    row(&r[5], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 2, 1, rp, 6);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 1, 1, rp, 1);
    entries_msg(&s, 3, 1, rp, 1);
    resolved_msg(&s, three, 3, 1200, 1);
    {
        Cdcpb__Event ev = CDCPB__EVENT__INIT;
        ev.region_id = 3;
        ev.request_id = 1;
        ev.event_case = CDCPB__EVENT__EVENT_RESOLVED_TS;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        ev.resolved_ts = 1250;
#pragma GCC diagnostic pop
        Cdcpb__Event *evs[] = {&ev};
        Cdcpb__ChangeDataEvent m = CDCPB__CHANGE_DATA_EVENT__INIT;
        m.events = evs;
        m.n_events = 1;
        put_msg(&s, 1, &m.base);
    }
    Errorpb__ServerIsBusy busy = ERRORPB__SERVER_IS_BUSY__INIT;
    busy.backoff_ms = 50;
    Cdcpb__Error e2 = CDCPB__ERROR__INIT;
    e2.server_is_busy = &busy;
    error_msg(&s, 2, 1, &e2);
    Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
    Cdcpb__Error e3 = CDCPB__ERROR__INIT;
    e3.epoch_not_match = &enm;
    error_msg(&s, 3, 1, &e3);
    resolved_msg(&s, three, 3, 1300, 0);
    write_seed("changedata", "v2_three_regions", s.buf, s.len);

    /* matcher errors: a commit without its prewrite after INITIALIZED (V1:
     * the stream is replaced), then a commit below the resolved ts */
    s.len = 0;
    put_u8(&s, 0x00);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    row(&r[1], CM, PUT, "k", NULL, 1100, 1200);
    entries_msg(&s, 1, 1, rp, 2);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 1, 2, rp, 1);
    resolved_msg(&s, both, 1, 2000, 0);
    row(&r[0], CMD, PUT, "k", "late", 1500, 1900);
    entries_msg(&s, 1, 2, rp, 1);
    write_seed("changedata", "v1_matcher_errors", s.buf, s.len);

    s.len = 0;
    put_u8(&s, 0x01);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    row(&r[1], CM, PUT, "k", NULL, 1100, 1200);
    entries_msg(&s, 1, 1, rp, 2);
    Errorpb__RegionNotFound rnf = ERRORPB__REGION_NOT_FOUND__INIT;
    Cdcpb__Error e4 = CDCPB__ERROR__INIT;
    e4.region_not_found = &rnf;
    error_msg(&s, 1, 1, &e4);
    row(&r[0], INIT, 0, NULL, NULL, 0, 0);
    entries_msg(&s, 1, 1, rp, 1);
    Cdcpb__Congested cg = CDCPB__CONGESTED__INIT;
    Cdcpb__Error e5 = CDCPB__ERROR__INIT;
    e5.congested = &cg;
    error_msg(&s, 1, 1, &e5);
    Cdcpb__Error e6 = CDCPB__ERROR__INIT; /* empty: unknown */
    error_msg(&s, 1, 1, &e6);
    write_seed("changedata", "v2_deregister", s.buf, s.len);

    /* fatal: duplicate_request, compatibility, cluster id mismatch */
    Cdcpb__DuplicateRequest dr = CDCPB__DUPLICATE_REQUEST__INIT;
    Cdcpb__Compatibility co = CDCPB__COMPATIBILITY__INIT;
    co.required_version = "9.0.0";
    Cdcpb__ClusterIDMismatch cim = CDCPB__CLUSTER_IDMISMATCH__INIT;
    cim.current = 8;
    cim.request = 7;
    Cdcpb__Error fe[3] = {CDCPB__ERROR__INIT, CDCPB__ERROR__INIT, CDCPB__ERROR__INIT};
    fe[0].duplicate_request = &dr;
    fe[1].compatibility = &co;
    fe[2].cluster_id_mismatch = &cim;
    static const char *const fname[] = {"fatal_duplicate", "fatal_compat", "fatal_cluster"};
    for (int i = 0; i < 3; i++) {
        s.len = 0;
        put_u8(&s, 0x00);
        error_msg(&s, 1, 1, &fe[i]);
        write_seed("changedata", fname[i], s.buf, s.len);
    }
}

/* ===== pd_response ===== */

static void gen_pd(void)
{
    seed_t s = {.len = 0};
    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = 7;

    char *urls[] = {"http://pd1:2379"};
    Pdpb__Member leader = PDPB__MEMBER__INIT;
    leader.name = "pd1";
    leader.client_urls = urls;
    leader.n_client_urls = 1;
    Pdpb__GetMembersResponse gm = PDPB__GET_MEMBERS_RESPONSE__INIT;
    gm.header = &hdr;
    gm.leader = &leader;

    uint8_t k1[] = {'t', 0x80, 0, 0, 0, 0, 0, 0, 0x64, 0xff};
    Metapb__RegionEpoch ep = METAPB__REGION_EPOCH__INIT;
    ep.conf_ver = 2;
    ep.version = 5;
    Metapb__Region reg[3] = {METAPB__REGION__INIT, METAPB__REGION__INIT, METAPB__REGION__INIT};
    Metapb__Peer peer[3] = {METAPB__PEER__INIT, METAPB__PEER__INIT, METAPB__PEER__INIT};
    for (int i = 0; i < 3; i++) {
        reg[i].id = 10 + (uint64_t)i;
        reg[i].region_epoch = &ep;
        peer[i].id = (uint64_t)(i == 2 ? 0 : 100 + i); /* region 12: no leader */
        peer[i].store_id = 1;
    }
    reg[0].end_key.data = k1;
    reg[0].end_key.len = sizeof(k1);
    reg[1].start_key.data = k1;
    reg[1].start_key.len = sizeof(k1);
    Pdpb__Region pr[3] = {PDPB__REGION__INIT, PDPB__REGION__INIT, PDPB__REGION__INIT};
    Pdpb__Region *prp[3];
    Metapb__Region *rp[3];
    Metapb__Peer *pp[3];
    for (int i = 0; i < 3; i++) {
        pr[i].region = &reg[i];
        pr[i].leader = &peer[i];
        prp[i] = &pr[i];
        rp[i] = &reg[i];
        pp[i] = &peer[i];
    }
    Pdpb__ScanRegionsResponse scan = PDPB__SCAN_REGIONS_RESPONSE__INIT;
    scan.header = &hdr;
    scan.regions = prp;
    scan.n_regions = 3;

    Metapb__StoreLabel tiflash = METAPB__STORE_LABEL__INIT;
    tiflash.key = "engine";
    tiflash.value = "tiflash";
    Metapb__StoreLabel *labels[] = {&tiflash};
    Metapb__Store st[4] = {METAPB__STORE__INIT, METAPB__STORE__INIT, METAPB__STORE__INIT,
                           METAPB__STORE__INIT};
    for (int i = 0; i < 4; i++) {
        st[i].id = (uint64_t)i + 1;
        st[i].address = i == 0 ? "tikv1:20160" : i == 1 ? "tiflash:3930" : "tikv3:20160";
        st[i].version = i == 3 ? "v4.0.16" : "8.5.0";
    }
    st[1].labels = labels;
    st[1].n_labels = 1;
    st[2].state = METAPB__STORE_STATE__Tombstone;
    Metapb__Store *stp[] = {&st[0], &st[1], &st[2], &st[3]};
    Pdpb__GetStoreResponse gs = PDPB__GET_STORE_RESPONSE__INIT;
    gs.header = &hdr;
    gs.store = &st[0];
    Pdpb__GetAllStoresResponse gas = PDPB__GET_ALL_STORES_RESPONSE__INIT;
    gas.header = &hdr;
    gas.stores = stp;
    gas.n_stores = 4;
    Pdpb__GetRegionResponse gr = PDPB__GET_REGION_RESPONSE__INIT;
    gr.header = &hdr;
    gr.region = &reg[0];
    gr.leader = &peer[0];
    Pdpb__UpdateServiceGCSafePointResponse gc = PDPB__UPDATE_SERVICE_GCSAFE_POINT_RESPONSE__INIT;
    gc.header = &hdr;
    gc.min_safe_point = 12345;

    /* every operation once, answered */
    put_u8(&s, 7);
    put_u8(&s, 0); /* channel to pd1 */
    put_msg(&s, 0, &gm.base);
    put_u8(&s, 0x00); /* scan */
    put_msg(&s, 0, &scan.base);
    put_u8(&s, 0x8a); /* get_store 1, reload */
    put_msg(&s, 0, &gs.base);
    put_u8(&s, 0x0a); /* get_store 1 from the cache */
    put_u8(&s, 0x03); /* get_all_stores */
    put_msg(&s, 0, &gas.base);
    put_u8(&s, 0x04); /* gc safepoint */
    put_msg(&s, 0, &gc.base);
    put_u8(&s, 0x01); /* get_region_by_id */
    put_msg(&s, 0, &gr.base);
    put_u8(&s, 0x05); /* leader, stats */
    write_seed("pd_response", "all_ops", s.buf, s.len);

    /* failures: first endpoint unavailable; a PD error header; the legacy
     * arrays; an old TiKV; a tombstone; a leader change on a call */
    s.len = 0;
    Pdpb__Error perr = PDPB__ERROR__INIT;
    perr.type = PDPB__ERROR_TYPE__NOT_BOOTSTRAPPED;
    perr.message = "not bootstrapped";
    Pdpb__ResponseHeader bad = PDPB__RESPONSE_HEADER__INIT;
    bad.cluster_id = 7;
    bad.error = &perr;
    put_u8(&s, 8);
    put_u8(&s, 0);
    put_msg(&s, 5, NULL); /* pd1 unavailable */
    put_u8(&s, 0);
    put_msg(&s, 0, &gm.base); /* pd2 answers: leader pd1 */
    put_u8(&s, 0);            /* the channel to pd1 */
    Pdpb__ScanRegionsResponse scan_err = PDPB__SCAN_REGIONS_RESPONSE__INIT;
    scan_err.header = &bad;
    put_u8(&s, 0x48);
    put_msg(&s, 0, &scan_err.base);
    Pdpb__ScanRegionsResponse legacy = PDPB__SCAN_REGIONS_RESPONSE__INIT;
    legacy.header = &hdr;
    legacy.region_metas = rp;
    legacy.n_region_metas = 3;
    legacy.leaders = pp;
    legacy.n_leaders = 2;
    put_u8(&s, 0x00);
    put_msg(&s, 0, &legacy.base);
    gs.store = &st[3];
    put_u8(&s, 0x9a); /* get_store 3 reload: too old */
    put_msg(&s, 0, &gs.base);
    gs.store = &st[2];
    put_u8(&s, 0x92); /* get_store 2 reload: tombstone */
    put_msg(&s, 0, &gs.base);
    put_u8(&s, 0x03);
    put_msg(&s, 5, NULL); /* unavailable: rediscover */
    put_u8(&s, 0);
    put_msg(&s, 0, &gm.base);
    put_msg(&s, 0, &gas.base);
    put_u8(&s, 0x04);
    put_msg(&s, 6, NULL); /* deadline */
    put_u8(&s, 0x01);
    Pdpb__GetRegionResponse gr_none = PDPB__GET_REGION_RESPONSE__INIT;
    gr_none.header = &hdr;
    put_msg(&s, 0, &gr_none.base);
    write_seed("pd_response", "failures", s.buf, s.len);

    /* no PD answers at all */
    s.len = 0;
    put_u8(&s, 1);
    put_u8(&s, 0xff);
    put_u8(&s, 0);
    put_msg(&s, 7, NULL);
    write_seed("pd_response", "no_leader", s.buf, s.len);
}

/* ===== avro ===== */

static void gen_avro(const char *schema_dir)
{
    char err[256];
    tkc_avro_codec_t *c = tkc_avro_codec_new(schema_dir, NULL, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "codec: %s\n", err);
        exit(1);
    }
    uint8_t *buf;
    size_t len;
    tkc_row_t *r = tkc_row_new(TKC_ROW_OP_PUT, (const uint8_t *)"key-1", 5,
                               (const uint8_t *)"value-1", 7, (const uint8_t *)"old", 3);
    r->has_old_value = true;
    r->start_ts = 1000;
    r->commit_ts = 462711718092800001ull;
    r->region_id = 42;
    if (tkc_avro_codec_encode_row(c, "cdc.t100", "t100", r, &buf, &len, err, sizeof(err)))
        exit(1);
    write_seed("avro", "row_put", buf, len);
    /* a truncated copy and one with a trailing byte: both must be refused */
    write_seed("avro", "row_put_truncated", buf, len - 3);
    uint8_t *longer = tkc_malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0x02;
    write_seed("avro", "row_put_trailing", longer, len + 1);
    tkc_free(longer);
    tkc_free(buf);
    tkc_row_destroy(r);

    r = tkc_row_new(TKC_ROW_OP_DELETE, (const uint8_t *)"k", 1, NULL, 0, NULL, 0);
    r->start_ts = 5;
    r->commit_ts = 6;
    if (tkc_avro_codec_encode_row(c, "cdc.span0", "span0", r, &buf, &len, err, sizeof(err)))
        exit(1);
    write_seed("avro", "row_delete", buf, len);
    tkc_free(buf);
    tkc_row_destroy(r);

    if (tkc_avro_codec_encode_watermark(c, "cdc.watermark", "feed-a", 462711718092800000ull,
                                        1700000000000, &buf, &len, err, sizeof(err)))
        exit(1);
    write_seed("avro", "watermark", buf, len);
    tkc_free(buf);
    if (tkc_avro_codec_encode_checkpoint(c, NULL, "feed-a", 462711718092800000ull, 1700000000000,
                                         3, &buf, &len, err, sizeof(err)))
        exit(1);
    write_seed("avro", "checkpoint", buf, len);
    tkc_free(buf);
    /* Confluent framing (no registry in the target: refused) */
    static const uint8_t confluent[] = {0, 0, 0, 0, 1, 2, 0x0a, 'h', 'e', 'l', 'l', 'o'};
    write_seed("avro", "confluent_header", confluent, sizeof(confluent));
    tkc_avro_codec_destroy(c);
}

/* ===== config ===== */

static void copy_file(const char *src, const char *target, const char *name)
{
    FILE *f = fopen(src, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", src);
        exit(1);
    }
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    write_seed(target, name, buf, n);
}

static void gen_config(const char *config_dir)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/local.ini", config_dir);
    copy_file(p, "config", "local.ini");
    snprintf(p, sizeof(p), "%s/demo.ini", config_dir);
    copy_file(p, "config", "demo.ini");
    static const char minimal[] =
        "[feed]\nid = f1\nspans = 7480..7481, ..\nstart_ts = 2024-01-02T03:04:05Z\n"
        "memory_quota = 1.5GiB\nstuck_threshold = 1h30m\n"
        "[pd]\nendpoints = http://pd1:2379,pd2:2379\n"
        "[kafka]\nbootstrap_servers = k1:9092\nsasl.password = hunter2\nlinger.ms = 5\n"
        "[schema_registry]\nurl = http://reg:8081\nusername = u\npassword = p\n";
    write_seed("config", "minimal_spans", minimal, sizeof(minimal) - 1);
    static const char with_env[] =
        "[feed]\nid = f1\ntables = 100,101\n[pd]\nendpoints = pd:2379\n"
        "[kafka]\nbootstrap_servers = k:9092\npartitons = 3\n"
        "\0TKC_FEED_WORKERS=two\nTKC_KAFKA_PARTITIONS=6\nTKC_RDKAFKA_LINGER_MS=7\n";
    write_seed("config", "env_and_typo", with_env, sizeof(with_env) - 1);
    static const char dur[] = "2s\n[feed]\nid=\n";
    write_seed("config", "duration_line", dur, sizeof(dur) - 1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <corpus dir> <schema dir> <config dir>\n", argv[0]);
        return 2;
    }
    OUT = argv[1];
    mkdir(OUT, 0755);
    gen_changedata();
    gen_pd();
    gen_avro(argv[2]);
    gen_config(argv[3]);
    return 0;
}
