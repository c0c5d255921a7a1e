# Operability (issue 6): configuration, logs, metrics, status, HTTP, CLI.
#
#   tkc_conf  the configuration (INI via libinih, environment, validation);
#             librdkafka only to validate pass-through properties
#   tkc_metrics  the metrics registry (atomics, Prometheus text)
#   tkc_ops   /status + /healthz, the HTTP endpoint, and the
#             runner that wires feed + pipeline (run.c)
#   tkc_cli   the subcommands; the tikv-kafka-cdc executable is main.c + this
#
# util/ratelimit.c joins tkc_util: it is generic and the logger's
# rate-limited warnings live there.
target_sources(tkc_util PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/util/ratelimit.c)

# Default [kafka] schema_dir: the schemas/ of this source tree, so a build
# runs without configuring it; packagers set the installed path.
set(TKC_DEFAULT_SCHEMA_DIR "${CMAKE_SOURCE_DIR}/schemas" CACHE STRING
    "Default [kafka] schema_dir compiled into tikv-kafka-cdc")

add_library(tkc_conf STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/conf.c
  ${CMAKE_CURRENT_LIST_DIR}/src/conf_value.c
  ${CMAKE_CURRENT_LIST_DIR}/src/conf_keys.c)
target_include_directories(tkc_conf PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_compile_options(tkc_conf PRIVATE ${TKC_WARNINGS})
target_compile_definitions(tkc_conf PRIVATE TKC_DEFAULT_SCHEMA_DIR="${TKC_DEFAULT_SCHEMA_DIR}")
target_link_libraries(tkc_conf PUBLIC tkc_util PkgConfig::INIH PkgConfig::RDKAFKA)

# The registry alone (no I/O), so its unit test links nothing else.
add_library(tkc_metrics STATIC ${CMAKE_CURRENT_LIST_DIR}/src/metrics.c)
target_include_directories(tkc_metrics PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_compile_options(tkc_metrics PRIVATE ${TKC_WARNINGS})
target_link_libraries(tkc_metrics PUBLIC tkc_util Threads::Threads)

add_library(tkc_ops STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/http.c
  ${CMAKE_CURRENT_LIST_DIR}/src/status.c
  ${CMAKE_CURRENT_LIST_DIR}/src/run.c)
target_include_directories(tkc_ops PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_compile_options(tkc_ops PRIVATE ${TKC_WARNINGS})
target_link_libraries(tkc_ops PUBLIC tkc_metrics tkc_conf tkc_pipeline tkc_feed tkc_codec tkc_util
                      PkgConfig::MHD PkgConfig::JANSSON PkgConfig::RDKAFKA Threads::Threads)

add_library(tkc_cli STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/cli.c
  ${CMAKE_CURRENT_LIST_DIR}/src/cmd_run.c
  ${CMAKE_CURRENT_LIST_DIR}/src/cmd_check_config.c
  ${CMAKE_CURRENT_LIST_DIR}/src/cmd_lag.c
  ${CMAKE_CURRENT_LIST_DIR}/src/cmd_version.c)
target_include_directories(tkc_cli PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_compile_options(tkc_cli PRIVATE ${TKC_WARNINGS})
target_compile_definitions(tkc_cli PRIVATE
  TKC_DEFAULT_SCHEMA_DIR="${TKC_DEFAULT_SCHEMA_DIR}"
  TKC_AVRO_C_VERSION="${AVRO_VERSION}"
  TKC_INIH_VERSION="${INIH_VERSION}")
target_link_libraries(tkc_cli PUBLIC tkc_ops PkgConfig::CURL PkgConfig::GRPC)

target_link_libraries(tikv-kafka-cdc PRIVATE tkc_cli)
