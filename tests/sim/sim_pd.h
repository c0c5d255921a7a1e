/*
 * sim_pd.h: the simulated PD (service pdpb.PD) of tikv-sim, answered from
 * the shared model (sim_model.h).
 *
 * Methods: GetMembers, GetClusterInfo, Tso (bidi), GetStore, GetAllStores,
 * GetRegion, GetRegionByID, ScanRegions, UpdateServiceGCSafePoint.
 * BatchScanRegions is not served: it answers UNIMPLEMENTED like a PD older
 * than the method, and client-go falls back to ScanRegions.
 *
 * Behaviour copied from PD (server/grpc_service.go, read for facts):
 *  - every method except GetMembers / GetClusterInfo first checks leadership
 *    (gRPC status UNAVAILABLE "not leader"), then header.cluster_id
 *    (FAILED_PRECONDITION "mismatch cluster id, need X but got Y");
 *  - Tso: one response per request, timestamp = the LARGEST of the batch,
 *    count echoed; count 0 fails the stream with UNKNOWN "tso count should
 *    be positive"; a failed check ends the stream with that status;
 *  - GetStore of an unknown id: header error UNKNOWN "invalid store ID N, not
 *    found"; GetRegion/GetRegionByID of nothing: a header without region;
 *  - ScanRegions: ordered by start key, start < end_key, limit <= 0 means no
 *    limit, fills the legacy region_metas+leaders arrays AND regions;
 *  - UpdateServiceGCSafePoint: min_safe_point over all services (the model
 *    refuses a service safe point below the current minimum, as PD does).
 *
 * Thread: handlers run on the PD server's thread; fault functions may be
 * called from any thread.
 */
#ifndef TKC_SIM_PD_H
#define TKC_SIM_PD_H

#include <stdint.h>

#include <grpc/grpc.h>
#include <jansson.h>

#include "sim_model.h"
#include "sim_server.h"

typedef struct sim_pd_s sim_pd_t;

/**
 * Creates the PD service and registers its methods on @p srv (before
 * sim_server_start). Both are borrowed and must outlive the service.
 */
sim_pd_t *sim_pd_new(sim_model_t *m, sim_server_t *srv);
/** Frees the service; @p srv must be stopped first. */
void sim_pd_destroy(sim_pd_t *pd);

/* ===== faults (thread: any) ===== */

/**
 * PD loses its leadership: for @p ms milliseconds (if > 0) and/or for the
 * next @p calls checked calls (if > 0), every checked method answers
 * UNAVAILABLE "not leader", open Tso streams end with it at their next
 * request, and GetMembers reports no leader (an election is running).
 */
void sim_pd_fault_lose_leader(sim_pd_t *pd, int ms, int calls);
/**
 * The next @p count calls of @p method ("GetStore" or "/pdpb.PD/GetStore";
 * "Tso" fails the stream at open) end with @p status / @p details (NULL: a
 * generic text). Counts replace any previous setting for that method.
 * @returns 0, or -1 if the method is not a PD method.
 */
int sim_pd_fault_fail(sim_pd_t *pd, const char *method, int count, grpc_status_code status,
                      const char *details);
/** Ends every open Tso stream with @p status. @returns how many. */
int sim_pd_fault_break_tso(sim_pd_t *pd, grpc_status_code status, const char *details);
/**
 * Region @p region_id is left out of the next @p calls ScanRegions answers
 * that would have contained it (a hole, as when PD has not yet received the
 * region's heartbeat after a split).
 */
void sim_pd_fault_scan_hole(sim_pd_t *pd, uint64_t region_id, int calls);

/** {"calls": {"GetStore": n, …}, "errors": {"not_leader": n, …}, "tso_streams": n, …} */
json_t *sim_pd_stats_json(sim_pd_t *pd);

#endif
