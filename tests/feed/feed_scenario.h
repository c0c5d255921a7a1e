/*
 * feed_scenario.h: small helpers shared by the feed scenario suites (region
 * lookups in the simulator's model, a standard feed run). Header-only.
 */
#ifndef TKC_FEED_SCENARIO_H
#define TKC_FEED_SCENARIO_H

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feed_harness.h"
#include "sim_model.h"

typedef struct {
    uint64_t id;
    uint64_t leader_store;
    uint64_t peer_stores[SIM_PEERS];
} sc_region_t;

/* Region number @p idx in key order. */
static inline sc_region_t sc_region_at(fh_t *h, size_t idx)
{
    sc_region_t out = {0};
    sim_model_t *m = fh_model(h);
    sim_model_lock(m);
    size_t n = sim_model_region_count_locked(m);
    sim_region_t *r = sim_model_region_at_locked(m, idx % n);
    out.id = r->id;
    out.leader_store = sim_region_leader_store(r);
    for (int i = 0; i < SIM_PEERS; i++)
        out.peer_stores[i] = r->peers[i].store_id;
    sim_model_unlock(m);
    return out;
}

static inline size_t sc_region_count(fh_t *h)
{
    sim_model_t *m = fh_model(h);
    sim_model_lock(m);
    size_t n = sim_model_region_count_locked(m);
    sim_model_unlock(m);
    return n;
}

/* Starts the feed with @p cfg and waits until it caught up with "now". */
static inline void sc_start(fh_t *h, const tkc_feed_config_t *cfg)
{
    char err[256] = "";
    ck_assert_msg(fh_start_feed(h, cfg, err, sizeof(err)) == TKC_ERR_OK, "feed: %s", err);
    ck_assert_msg(fh_wait_caught_up(h, 30000), "the feed never caught up at start");
}

/* Verifies the run, prints the report, asserts it clean. */
static inline void sc_finish(fh_t *h, const char *title, bool allow_dups)
{
    fh_report_t rep;
    fh_check(h, 30000, &rep);
    fh_report_print(title, &rep);
    fh_assert_clean(&rep, allow_dups);
    sim_cdc_stats_t ss;
    fh_sim_total_stats(h, &ss);
    /* a correct client never causes it (§7 scenario 15) */
    ck_assert_uint_eq(ss.err_duplicate_request, 0);
}

static inline void sc_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

#endif
