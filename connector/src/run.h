/*
 * run.h: `tikv-kafka-cdc run`: wires the feed, the pipeline and the codec
 * from a loaded configuration and runs them until a signal or an error.
 */
#ifndef TKC_RUN_H
#define TKC_RUN_H

#include "conf.h"
#include "feed.h"
#include "kafka_sink.h"
#include "pipeline.h"
#include "schema_registry.h"
#include "status.h"

/** Exit codes of the tikv-kafka-cdc commands (also in README and --help). */
#define TKC_EXIT_OK 0
#define TKC_EXIT_RUNTIME 1     /* the feed stopped on an error, Kafka unreachable, ... */
#define TKC_EXIT_USAGE 2       /* bad command line or configuration */
#define TKC_EXIT_UNAVAILABLE 3 /* the feature is not available in this build */

/**
 * @brief Runs the connector: codec, pipeline (Kafka, checkpoint), feed (PD,
 *        TiKV), until SIGINT/SIGTERM (graceful: final watermark and
 *        checkpoint) or a fatal error.
 *
 * SIGINT and SIGTERM are blocked in every thread and taken with
 * sigtimedwait() by the calling thread, so call it from the main thread
 * before any other thread that should not see them is created (the HTTP
 * server started before is fine: signals stay blocked there too because
 * tkc_run_block_signals() is called first by the CLI).
 *
 * @param conf the validated configuration (borrowed).
 * @param st the status to report to (sources and state); may be NULL.
 * @returns a TKC_EXIT_* code.
 * @locality main thread
 */
int tkc_run(const tkc_conf_t *conf, tkc_status_t *st);

/** Blocks SIGINT and SIGTERM in the calling thread (and threads it creates later). */
void tkc_run_block_signals(void);

/* ===== configuration mapping (exported for tests) ===== */

/** Storage that the mapped config structs point into; free with tkc_run_maps_fini(). */
typedef struct tkc_run_maps_s {
    const char **pd_endpoints;
    tkc_keyrange_t *raw_spans;       /* feed: raw keys */
    tkc_feed_table_span_t *table_spans;
    tkc_pipeline_span_t *pl_spans;   /* pipeline: encoded keys + names */
    uint8_t **enc_keys;              /* owned encoded key buffers */
    size_t n_enc_keys;
    char **span_names;
    size_t n_spans;
    tkc_kafka_prop_t *props;
} tkc_run_maps_t;

/**
 * @brief Fills the feed, pipeline and registry configurations from @p conf.
 *        @p fcfg and @p pcfg must hold their modules' defaults already
 *        (tkc_feed_config_defaults, tkc_pipeline_config_defaults); @p srcfg
 *        is initialised here. Strings and arrays point into @p conf and
 *        @p maps.
 * @locality any
 */
void tkc_run_map_config(const tkc_conf_t *conf, tkc_run_maps_t *maps, tkc_feed_config_t *fcfg,
                        tkc_pipeline_config_t *pcfg, tkc_schema_registry_conf_t *srcfg);

void tkc_run_maps_fini(tkc_run_maps_t *maps);

#endif
