# The ChangeData EventFeed / EventFeedV2 service of tikv-sim's stores, the
# synchronous test client used as its reference peer, and their tests.
target_sources(tkc_sim PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_cdc.c
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_cdc_out.c
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_testclient.c)

set(_cdc_util ${CMAKE_CURRENT_LIST_DIR}/check_sim_cdc_util.c)
foreach(t scan live errors v2 restart resolved deregister)
  if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/check_sim_cdc_${t}.c")
    tkc_add_check_test(sim.cdc_${t}
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_cdc_${t}.c ${_cdc_util}
      LIBS tkc_sim
      LABELS sim
      TIMEOUT 180)
  endif()
endforeach()

# Throughput measurement (issue 3 §9); see the file's header for the modes.
# The ctest entries only run it briefly (a smoke test: it works, no
# thresholds); measure with a build without TKC_SANITIZE.
add_executable(sim-cdc-bench ${CMAKE_CURRENT_LIST_DIR}/sim_cdc_bench.c)
target_compile_options(sim-cdc-bench PRIVATE ${TKC_WARNINGS})
target_link_libraries(sim-cdc-bench PRIVATE tkc_sim)
add_test(NAME sim.cdc_bench_events COMMAND sim-cdc-bench events --seconds 1 --regions 16)
add_test(NAME sim.cdc_bench_register
         COMMAND sim-cdc-bench register --seconds 1 --stores 3 --regions 3000)
set_tests_properties(sim.cdc_bench_events sim.cdc_bench_register
                     PROPERTIES TIMEOUT 120 LABELS "sim;bench")
