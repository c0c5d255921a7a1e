# `tikv-kafka-cdc demo` (issue 6, item 6; `make demo` runs it).
#
#   tkc_demo  the demo's helpers: child processes (demo_proc), HTTP calls
#             (demo_http), reading messages back from Kafka (demo_kafka),
#             and the pure status logic (demo_watch: live line, recovery,
#             summary), which tests/ops/check_demo.c also tests alone
#   cmd_demo.c joins tkc_cli (the subcommand itself)
add_library(tkc_demo STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/demo_proc.c
  ${CMAKE_CURRENT_LIST_DIR}/src/demo_http.c
  ${CMAKE_CURRENT_LIST_DIR}/src/demo_kafka.c
  ${CMAKE_CURRENT_LIST_DIR}/src/demo_watch.c)
target_include_directories(tkc_demo PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_compile_options(tkc_demo PRIVATE ${TKC_WARNINGS})
target_link_libraries(tkc_demo PUBLIC tkc_util PkgConfig::CURL PkgConfig::JANSSON
                      PkgConfig::RDKAFKA)

target_sources(tkc_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/cmd_demo.c)
# The demo's default configuration: this source tree's config/demo.ini, so
# `tikv-kafka-cdc demo` works from any directory of a build tree.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/src/cmd_demo.c PROPERTIES
  COMPILE_DEFINITIONS "TKC_DEMO_CONFIG=\"${CMAKE_SOURCE_DIR}/config/demo.ini\"")
target_link_libraries(tkc_cli PUBLIC tkc_demo tkc_codec PkgConfig::ZLIB)
