# The feed workers (issue 4): scheduler, workers, streams, region
# subscriptions, lock resolution. They talk gRPC, so they join tkc_feed.
set(TKC_FEED_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/feed.c
  ${CMAKE_CURRENT_LIST_DIR}/src/feed_scheduler.c
  ${CMAKE_CURRENT_LIST_DIR}/src/feed_worker.c
  ${CMAKE_CURRENT_LIST_DIR}/src/feed_stream.c
  ${CMAKE_CURRENT_LIST_DIR}/src/feed_region.c
  ${CMAKE_CURRENT_LIST_DIR}/src/lock_resolver.c)
target_sources(tkc_feed PRIVATE ${TKC_FEED_SOURCES})

# TEST ONLY: the same feed built on the address-keyed stream table (the old
# TiCDC bug, tiflow#10239), so a test can show that the old way loops. The
# stream table is compiled into this archive with the switch on; the linker
# takes it from here before tkc_feedlogic's id-guarded copy is ever needed.
if(TKC_TESTS)
  add_library(tkc_feed_addr_keyed STATIC
    ${TKC_FEED_SOURCES}
    ${CMAKE_CURRENT_LIST_DIR}/src/rpc.c
    ${CMAKE_CURRENT_LIST_DIR}/src/pd_client.c
    ${CMAKE_CURRENT_LIST_DIR}/src/stream_table.c)
  target_include_directories(tkc_feed_addr_keyed PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
  target_compile_options(tkc_feed_addr_keyed PRIVATE ${TKC_WARNINGS})
  target_compile_definitions(tkc_feed_addr_keyed PRIVATE TKC_TEST_ADDR_KEYED_STREAMS)
  target_link_libraries(tkc_feed_addr_keyed PUBLIC tkc_feedlogic tkc_util tkc_proto
                        PkgConfig::GRPC)
endif()
