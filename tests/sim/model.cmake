# tikv-sim model part: the MVCC model, the workload generator, ground truth.
target_sources(tkc_sim PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_model.c
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_workload.c)

tkc_add_check_test(sim.model
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/check_sim_model.c
  LIBS tkc_sim PkgConfig::JANSSON PkgConfig::ZLIB
  LABELS sim
  TIMEOUT 300)
