# tkc_feedlogic: the feed's pure-logic modules (row types, matcher, range
# lock, frontier, stream table) and the generic containers they use. No gRPC,
# protobuf-c, librdkafka or avro here: unit tests drive these with plain data.

option(TKC_TEST_ADDR_KEYED_STREAMS
  "TEST ONLY: key the stream table by store address like pre-PR-10559 TiCDC (reconnection loop)"
  OFF)

set(TKC_FEEDLOGIC_SOURCES
  src/row.c
  src/feed_event.c
  src/matcher.c
  src/prewrite_spill.c
  src/range_lock.c
  src/frontier.c
  src/stream_table.c
  src/util/hashmap.c
  src/util/omap.c)

add_library(tkc_feedlogic STATIC ${TKC_FEEDLOGIC_SOURCES})
target_compile_options(tkc_feedlogic PRIVATE ${TKC_WARNINGS})
# zlib: the CRC of spilled prewrite records (prewrite_spill.c)
target_link_libraries(tkc_feedlogic PUBLIC tkc_util PkgConfig::ZLIB)
if(TKC_TEST_ADDR_KEYED_STREAMS)
  message(WARNING "TKC_TEST_ADDR_KEYED_STREAMS is ON: the stream table has the old "
                  "address-keyed bug on purpose. Never ship this build.")
  target_compile_definitions(tkc_feedlogic PRIVATE TKC_TEST_ADDR_KEYED_STREAMS)
endif()

# The same stream table built with the old behaviour, always, for the unit
# test that shows the id guard matters (tests/unit/feed_logic.cmake).
if(TKC_TESTS)
  add_library(tkc_feedlogic_addr_keyed STATIC src/stream_table.c src/util/hashmap.c)
  target_compile_options(tkc_feedlogic_addr_keyed PRIVATE ${TKC_WARNINGS})
  target_compile_definitions(tkc_feedlogic_addr_keyed PRIVATE TKC_TEST_ADDR_KEYED_STREAMS)
  target_link_libraries(tkc_feedlogic_addr_keyed PUBLIC tkc_util)
endif()
