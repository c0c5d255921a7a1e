# Feed pure logic (connector/feedlogic.cmake): one check suite per module.
set(_fl ${CMAKE_CURRENT_LIST_DIR})

# The generic containers the modules are built on (connector/src/util/).
tkc_add_check_test(unit.hashmap
  SOURCES ${_fl}/check_hashmap.c
  LIBS tkc_feedlogic
  LABELS unit)

tkc_add_check_test(unit.omap
  SOURCES ${_fl}/check_omap.c
  LIBS tkc_feedlogic
  LABELS unit)

tkc_add_check_test(unit.matcher
  SOURCES ${_fl}/check_matcher.c
  LIBS tkc_feedlogic
  LABELS unit)

tkc_add_check_test(unit.prewrite_spill
  SOURCES ${_fl}/check_prewrite_spill.c
  LIBS tkc_feedlogic
  LABELS unit)

tkc_add_check_test(unit.range_lock
  SOURCES ${_fl}/check_range_lock.c
  LIBS tkc_feedlogic
  LABELS unit)

tkc_add_check_test(unit.frontier
  SOURCES ${_fl}/check_frontier.c
  LIBS tkc_feedlogic
  LABELS unit)

# The stream table's id guard (architecture.md invariant 1), three ways:
#   unit.stream_table            the library as built (expects whatever
#                                TKC_TEST_ADDR_KEYED_STREAMS selected; OFF:
#                                the id guard);
#   unit.stream_table_addr_keyed the always-address-keyed test library: shows
#                                that a stale retire deletes and cancels the
#                                newer stream and that a restart loops;
#   unit.stream_table_guard_detects_addr_keyed
#                                the id-guard expectations against the
#                                address-keyed library: must fail (WILL_FAIL),
#                                i.e. these tests can fail.
if(TKC_TEST_ADDR_KEYED_STREAMS)
  set(_fl_expect 1)
else()
  set(_fl_expect 0)
endif()
tkc_add_check_test(unit.stream_table
  SOURCES ${_fl}/check_stream_table.c
  LIBS tkc_feedlogic
  LABELS unit)
target_compile_definitions(unit_stream_table PRIVATE TKC_EXPECT_ADDR_KEYED=${_fl_expect})

tkc_add_check_test(unit.stream_table_addr_keyed
  SOURCES ${_fl}/check_stream_table.c
  LIBS tkc_feedlogic_addr_keyed
  LABELS unit)
target_compile_definitions(unit_stream_table_addr_keyed PRIVATE TKC_EXPECT_ADDR_KEYED=1)

tkc_add_check_test(unit.stream_table_guard_detects_addr_keyed
  SOURCES ${_fl}/check_stream_table.c
  LIBS tkc_feedlogic_addr_keyed
  LABELS unit)
target_compile_definitions(unit_stream_table_guard_detects_addr_keyed
  PRIVATE TKC_EXPECT_ADDR_KEYED=0 TKC_SKIP_MODE_CHECK)
set_tests_properties(unit.stream_table_guard_detects_addr_keyed PROPERTIES WILL_FAIL TRUE)
