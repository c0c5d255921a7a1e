# SERVER part of tkc_sim: gRPC server plumbing, the PD endpoint, the lock
# RPCs, the HTTP control endpoint, and the tikv-sim executable.
target_sources(tkc_sim PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/sim_server.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_pd.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_lockrpc.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_control.c)

# tikv-sim: ${CMAKE_BINARY_DIR}/tests/sim/tikv-sim
add_executable(tikv-sim ${CMAKE_CURRENT_LIST_DIR}/sim_main.c)
target_compile_options(tikv-sim PRIVATE ${TKC_WARNINGS})
target_link_libraries(tikv-sim PRIVATE tkc_sim)
set_target_properties(tikv-sim PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/sim)

set(_sim_rpc ${CMAKE_CURRENT_LIST_DIR}/check_sim_rpc.c)

tkc_add_check_test(sim.server
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_server.c ${_sim_rpc}
  LIBS tkc_sim
  LABELS sim
  TIMEOUT 120)

tkc_add_check_test(sim.pd
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_pd.c ${_sim_rpc}
  LIBS tkc_sim
  LABELS sim
  TIMEOUT 120)

tkc_add_check_test(sim.lockrpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_lockrpc.c ${_sim_rpc}
  LIBS tkc_sim
  LABELS sim
  TIMEOUT 120)

tkc_add_check_test(sim.control
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_control.c ${_sim_rpc}
  LIBS tkc_sim PkgConfig::CURL
  LABELS sim
  TIMEOUT 180)

# sim.cli runs the real binary as a child process.
tkc_add_check_test(sim.cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sim_cli.c
  LIBS tkc_sim PkgConfig::CURL
  LABELS sim
  TIMEOUT 180)
target_compile_definitions(sim_cli PRIVATE TIKV_SIM_BIN="$<TARGET_FILE:tikv-sim>")
add_dependencies(sim_cli tikv-sim)
