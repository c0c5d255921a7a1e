/*
 * check_sim_cdc_util.c: fixtures of the sim.cdc_* suites (see the header).
 */
#include "check_sim_cdc_util.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "util/clock.h"
#include "util/keycodec.h"
#include "util/mem.h"

void cdc_env_opts_init(cdc_env_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->stores = 1;
    o->regions = 1;
    o->key_count = 100;
    sim_cdc_config_defaults(&o->cdc);
    o->cdc.resolved_interval_ms = 50;
}

void cdc_env_init(cdc_env_t *e, const cdc_env_opts_t *o)
{
    memset(e, 0, sizeof(*e));
    grpc_init();
    if (o->truth) {
        /* append mode: the model writes at the end even after the test has
         * read the file from the start */
        char path[] = "/tmp/sim-cdc-truth-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        e->truth = fdopen(fd, "a+");
        ck_assert_ptr_nonnull(e->truth);
        unlink(path);
    }
    sim_model_config_t mc = {
        .cluster_id = 0,
        .stores = o->stores,
        .regions = o->regions,
        .seed = 7,
        .table_id = 100,
        .key_count = o->key_count,
        .raw_keys = false,
        .store_version = "8.5.0",
        .truth = e->truth,
    };
    e->m = sim_model_new(&mc);
    ck_assert_ptr_nonnull(e->m);
    e->cluster_id = sim_model_cluster_id(e->m);
    e->cdc = sim_cdc_new(e->m, &o->cdc);
    e->nstores = o->stores;
    ck_assert_int_le(e->nstores, CDC_ENV_MAX_STORES);
    for (int i = 0; i < e->nstores; i++) {
        char name[32];
        snprintf(name, sizeof(name), "store-%d", i + 1);
        e->srv[i] = sim_server_new(name, "127.0.0.1:0");
        sim_cdc_attach_store(e->cdc, (uint64_t)i + 1, e->srv[i]);
        int port = sim_server_start(e->srv[i]);
        ck_assert_int_gt(port, 0);
        snprintf(e->addr[i], sizeof(e->addr[i]), "127.0.0.1:%d", port);
        sim_model_lock(e->m);
        sim_store_t *st = sim_model_store_by_id_locked(e->m, (uint64_t)i + 1);
        snprintf(st->addr, sizeof(st->addr), "%s", e->addr[i]);
        sim_model_unlock(e->m);
    }
}

void cdc_env_fini(cdc_env_t *e)
{
    for (int i = 0; i < e->nstores; i++)
        sim_server_stop(e->srv[i]);
    for (int i = 0; i < e->nstores; i++)
        sim_server_destroy(e->srv[i]);
    sim_cdc_destroy(e->cdc);
    sim_model_destroy(e->m);
    if (e->truth)
        fclose(e->truth);
    grpc_shutdown();
}

static void region_copy(const sim_region_t *r, cdc_region_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->conf_ver = r->conf_ver;
    out->version = r->version;
    out->leader_store = sim_region_leader_store(r);
    for (int i = 0; i < SIM_PEERS; i++)
        out->peer_stores[i] = r->peers[i].store_id;
    ck_assert_uint_le(r->start.len, sizeof(out->start));
    ck_assert_uint_le(r->end.len, sizeof(out->end));
    if (r->start.len)
        memcpy(out->start, r->start.data, r->start.len);
    out->start_len = r->start.len;
    if (r->end.len)
        memcpy(out->end, r->end.data, r->end.len);
    out->end_len = r->end.len;
}

void cdc_region_at(cdc_env_t *e, size_t idx, cdc_region_t *out)
{
    sim_model_lock(e->m);
    sim_region_t *r = sim_model_region_at_locked(e->m, idx);
    ck_assert_ptr_nonnull(r);
    region_copy(r, out);
    sim_model_unlock(e->m);
}

bool cdc_region_by_id(cdc_env_t *e, uint64_t id, cdc_region_t *out)
{
    sim_model_lock(e->m);
    sim_region_t *r = sim_model_region_by_id_locked(e->m, id);
    if (r)
        region_copy(r, out);
    sim_model_unlock(e->m);
    return r != NULL;
}

size_t cdc_key(cdc_env_t *e, int64_t i, uint8_t out[SIM_KEY_MAX])
{
    return sim_model_key_raw(e->m, i, out);
}

/* ===== writes ===== */

static uint64_t one_1pc(cdc_env_t *e, int64_t key, sim_op_t op, const char *value)
{
    uint8_t k[SIM_KEY_MAX];
    size_t kl = cdc_key(e, key, k);
    sim_mutation_t mu = {.key = k, .key_len = kl, .op = op,
                         .value = (const uint8_t *)value, .value_len = value ? strlen(value) : 0};
    uint64_t ts = sim_model_commit_1pc(e->m, &mu, 1);
    ck_assert_uint_gt(ts, 0);
    return ts;
}

uint64_t cdc_put_1pc(cdc_env_t *e, int64_t key, const char *value)
{
    return one_1pc(e, key, SIM_OP_PUT, value);
}

uint64_t cdc_del_1pc(cdc_env_t *e, int64_t key)
{
    return one_1pc(e, key, SIM_OP_DELETE, NULL);
}

uint64_t cdc_prewrite_bytes(cdc_env_t *e, int64_t key, const uint8_t *v, size_t len)
{
    uint8_t k[SIM_KEY_MAX];
    size_t kl = cdc_key(e, key, k);
    sim_mutation_t mu = {.key = k, .key_len = kl, .op = v ? SIM_OP_PUT : SIM_OP_DELETE,
                         .value = v, .value_len = len};
    uint64_t start_ts = sim_model_tso(e->m);
    ck_assert_int_eq(sim_model_prewrite(e->m, start_ts, &mu, 1, k, kl), 0);
    return start_ts;
}

uint64_t cdc_prewrite(cdc_env_t *e, int64_t key, const char *value)
{
    return cdc_prewrite_bytes(e, key, (const uint8_t *)value, value ? strlen(value) : 0);
}

uint64_t cdc_commit(cdc_env_t *e, int64_t key, uint64_t start_ts)
{
    uint8_t k[SIM_KEY_MAX];
    sim_bytes_t b = {.data = k, .len = cdc_key(e, key, k)};
    uint64_t ts = sim_model_commit(e->m, start_ts, &b, 1);
    ck_assert_uint_gt(ts, start_ts);
    return ts;
}

void cdc_rollback(cdc_env_t *e, int64_t key, uint64_t start_ts)
{
    uint8_t k[SIM_KEY_MAX];
    sim_bytes_t b = {.data = k, .len = cdc_key(e, key, k)};
    sim_model_rollback(e->m, start_ts, &b, 1);
}

/* ===== feed ===== */

void feed_init(feed_t *f, sim_tc_stream_t *s)
{
    memset(f, 0, sizeof(*f));
    f->s = s;
}

void feed_fini(feed_t *f)
{
    for (size_t i = 0; i < f->n_msgs; i++)
        cdcpb__change_data_event__free_unpacked(f->msgs[i], NULL);
    tkc_free(f->msgs);
    tkc_free(f->msg_len);
    tkc_free(f->it);
    memset(f, 0, sizeof(*f));
}

static feed_item_t *feed_add(feed_t *f)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        f->it = tkc_realloc(f->it, f->cap * sizeof(*f->it));
    }
    feed_item_t *it = &f->it[f->n++];
    memset(it, 0, sizeof(*it));
    it->msg = f->n_msgs - 1;
    return it;
}

int feed_pump(feed_t *f, int timeout_ms)
{
    const uint8_t *d;
    size_t len;
    int rc = sim_tc_recv_raw(f->s, timeout_ms, &d, &len);
    if (rc != 1)
        return rc;
    Cdcpb__ChangeDataEvent *ev = cdcpb__change_data_event__unpack(NULL, len, d);
    ck_assert_msg(ev != NULL, "undecodable ChangeDataEvent (%zu bytes)", len);
    /* TiKV never mixes events and a resolved ts in one message */
    ck_assert(ev->n_events == 0 || ev->resolved_ts == NULL);
    if (f->n_msgs == f->cap_msgs) {
        f->cap_msgs = f->cap_msgs ? f->cap_msgs * 2 : 64;
        f->msgs = tkc_realloc(f->msgs, f->cap_msgs * sizeof(*f->msgs));
        f->msg_len = tkc_realloc(f->msg_len, f->cap_msgs * sizeof(*f->msg_len));
    }
    f->msg_len[f->n_msgs] = len;
    f->msgs[f->n_msgs++] = ev;
    if (ev->resolved_ts) {
        feed_item_t *it = feed_add(f);
        it->kind = FI_RESOLVED;
        it->request_id = ev->resolved_ts->request_id;
        it->rts = ev->resolved_ts;
        it->ts = ev->resolved_ts->ts;
    }
    for (size_t i = 0; i < ev->n_events; i++) {
        const Cdcpb__Event *e = ev->events[i];
        switch (e->event_case) {
        case CDCPB__EVENT__EVENT_ENTRIES:
            for (size_t j = 0; j < e->entries->n_entries; j++) {
                feed_item_t *it = feed_add(f);
                it->kind = FI_ROW;
                it->region_id = e->region_id;
                it->request_id = e->request_id;
                it->row = e->entries->entries[j];
                it->event = i;
            }
            break;
        case CDCPB__EVENT__EVENT_ERROR: {
            feed_item_t *it = feed_add(f);
            it->kind = FI_ERROR;
            it->region_id = e->region_id;
            it->request_id = e->request_id;
            it->err = e->error;
            it->event = i;
            break;
        }
        case CDCPB__EVENT__EVENT_RESOLVED_TS: {
            feed_item_t *it = feed_add(f);
            it->kind = FI_REGION_RTS;
            it->region_id = e->region_id;
            it->request_id = e->request_id;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            it->ts = e->resolved_ts;
#pragma GCC diagnostic pop
            it->event = i;
            break;
        }
        default:
            ck_abort_msg("unexpected event case %d", (int)e->event_case);
        }
    }
    return 1;
}

bool feed_wait(feed_t *f, int timeout_ms, feed_pred_t pred, const void *arg)
{
    int64_t end = tkc_clock_mono_ms() + timeout_ms;
    for (;;) {
        if (pred(f, arg))
            return true;
        int64_t left = end - tkc_clock_mono_ms();
        if (left <= 0) {
            if (getenv("SIM_CDC_TEST_DUMP"))
                feed_dump(f, "wait timed out");
            return false;
        }
        if (feed_pump(f, (int)(left < 100 ? left : 100)) < 0)
            return pred(f, arg);
    }
}

void feed_drain(feed_t *f, int ms)
{
    int64_t end = tkc_clock_mono_ms() + ms;
    for (;;) {
        int64_t left = end - tkc_clock_mono_ms();
        if (left <= 0)
            return;
        if (feed_pump(f, (int)left) < 0)
            return;
    }
}

long feed_find_init(const feed_t *f, uint64_t region_id, uint64_t request_id)
{
    for (size_t i = 0; i < f->n; i++) {
        const feed_item_t *it = &f->it[i];
        if (it->kind == FI_ROW && it->region_id == region_id && it->request_id == request_id &&
            it->row->type == CDCPB__EVENT__LOG_TYPE__INITIALIZED)
            return (long)i;
    }
    return -1;
}

long feed_find_error(const feed_t *f, uint64_t region_id, uint64_t request_id)
{
    for (size_t i = 0; i < f->n; i++) {
        const feed_item_t *it = &f->it[i];
        if (it->kind == FI_ERROR && it->region_id == region_id && it->request_id == request_id)
            return (long)i;
    }
    return -1;
}

bool feed_pred_init(const feed_t *f, const void *arg)
{
    const feed_sub_t *s = arg;
    return feed_find_init(f, s->region_id, s->request_id) >= 0;
}

bool feed_pred_error(const feed_t *f, const void *arg)
{
    const feed_sub_t *s = arg;
    return feed_find_error(f, s->region_id, s->request_id) >= 0;
}

bool feed_pred_n_resolved(const feed_t *f, const void *arg)
{
    size_t want = *(const size_t *)arg, n = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->it[i].kind == FI_RESOLVED || f->it[i].kind == FI_REGION_RTS)
            n++;
    return n >= want;
}

size_t feed_rows(const feed_t *f, uint64_t region_id, uint64_t request_id,
                 const Cdcpb__Event__Row **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++) {
        const feed_item_t *it = &f->it[i];
        if (it->kind != FI_ROW || it->region_id != region_id || it->request_id != request_id ||
            it->row->type == CDCPB__EVENT__LOG_TYPE__INITIALIZED)
            continue;
        if (n < max)
            out[n] = it->row;
        n++;
    }
    return n;
}

bool feed_item_names_region(const feed_item_t *it, uint64_t region_id)
{
    if (it->kind == FI_REGION_RTS)
        return it->region_id == region_id;
    if (it->kind != FI_RESOLVED)
        return false;
    for (size_t i = 0; i < it->rts->n_regions; i++)
        if (it->rts->regions[i] == region_id)
            return true;
    return false;
}

/* ===== registration ===== */

int cdc_register(cdc_env_t *e, sim_tc_stream_t *s, const cdc_region_t *r, uint64_t checkpoint_ts,
                 uint64_t request_id)
{
    sim_tc_reg_t reg = {
        .cluster_id = e->cluster_id,
        .region_id = r->id,
        .conf_ver = r->conf_ver,
        .version_epoch = r->version,
        .checkpoint_ts = checkpoint_ts,
        .start_key = r->start,
        .start_len = r->start_len,
        .end_key = r->end,
        .end_len = r->end_len,
        .request_id = request_id,
    };
    return sim_tc_register(s, &reg);
}

int cdc_register_range(cdc_env_t *e, sim_tc_stream_t *s, const cdc_region_t *r,
                       uint64_t checkpoint_ts, uint64_t request_id, const uint8_t *raw_start,
                       size_t raw_start_len, const uint8_t *raw_end, size_t raw_end_len)
{
    uint8_t es[128], ee[128];
    sim_tc_reg_t reg = {
        .cluster_id = e->cluster_id,
        .region_id = r->id,
        .conf_ver = r->conf_ver,
        .version_epoch = r->version,
        .checkpoint_ts = checkpoint_ts,
        .start_key = r->start,
        .start_len = r->start_len,
        .end_key = r->end,
        .end_len = r->end_len,
        .request_id = request_id,
    };
    if (raw_start) {
        ck_assert_uint_le(tkc_keycodec_encoded_len(raw_start_len), sizeof(es));
        tkc_keycodec_encode(raw_start, raw_start_len, es);
        reg.start_key = es;
        reg.start_len = tkc_keycodec_encoded_len(raw_start_len);
    }
    if (raw_end) {
        ck_assert_uint_le(tkc_keycodec_encoded_len(raw_end_len), sizeof(ee));
        tkc_keycodec_encode(raw_end, raw_end_len, ee);
        reg.end_key = ee;
        reg.end_len = tkc_keycodec_encoded_len(raw_end_len);
    }
    return sim_tc_register(s, &reg);
}

size_t cdc_truth_scan(cdc_env_t *e, truth_cb_t cb, void *opaque)
{
    ck_assert_ptr_nonnull(e->truth);
    sim_model_truth_flush(e->m);
    fflush(e->truth);
    rewind(e->truth);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof(line), e->truth)) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        ck_assert_msg(j != NULL, "bad truth line: %s", line);
        json_t *rid = json_object_get(j, "region_id");
        json_t *cts = json_object_get(j, "commit_ts");
        json_t *rts = json_object_get(j, "region_resolved_ts");
        ck_assert(json_is_integer(rid) && json_is_integer(cts) && json_is_integer(rts));
        cb(opaque, (uint64_t)json_integer_value(rid), (uint64_t)json_integer_value(cts),
           (uint64_t)json_integer_value(rts));
        json_decref(j);
        n++;
    }
    fseek(e->truth, 0, SEEK_END);
    return n;
}

void feed_dump(const feed_t *f, const char *why)
{
    fprintf(stderr, "--- feed (%s): %zu messages, %zu items, ended=%d\n", why, f->n_msgs, f->n,
            (int)sim_tc_ended(f->s));
    for (size_t i = 0; i < f->n; i++) {
        const feed_item_t *it = &f->it[i];
        switch (it->kind) {
        case FI_ROW:
            fprintf(stderr, "%4zu msg %zu row region=%" PRIu64 " req=%" PRIu64
                            " type=%d op=%d start=%" PRIu64 " commit=%" PRIu64
                            " klen=%zu vlen=%zu olen=%zu\n",
                    i, it->msg, it->region_id, it->request_id, (int)it->row->type,
                    (int)it->row->op_type, it->row->start_ts, it->row->commit_ts,
                    it->row->key.len, it->row->value.len, it->row->old_value.len);
            break;
        case FI_ERROR: {
            const Cdcpb__Error *er = it->err;
            const char *k = er->not_leader ? "not_leader"
                            : er->region_not_found ? "region_not_found"
                            : er->epoch_not_match ? "epoch_not_match"
                            : er->duplicate_request ? "duplicate_request"
                            : er->compatibility ? "compatibility"
                            : er->cluster_id_mismatch ? "cluster_id_mismatch"
                            : er->server_is_busy ? "server_is_busy"
                            : er->congested ? "congested" : "empty";
            fprintf(stderr, "%4zu msg %zu error region=%" PRIu64 " req=%" PRIu64 " %s\n", i,
                    it->msg, it->region_id, it->request_id, k);
            break;
        }
        case FI_RESOLVED:
            fprintf(stderr, "%4zu msg %zu resolved req=%" PRIu64 " ts=%" PRIu64 " n=%zu\n", i,
                    it->msg, it->request_id, it->ts, it->rts->n_regions);
            break;
        case FI_REGION_RTS:
            fprintf(stderr, "%4zu msg %zu region-rts region=%" PRIu64 " ts=%" PRIu64 "\n", i,
                    it->msg, it->region_id, it->ts);
            break;
        }
    }
}
