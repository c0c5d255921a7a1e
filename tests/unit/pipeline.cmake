# Pipeline pure-ish modules (connector/pipeline.cmake): the sorter with its
# spill runs, and the checkpoint file store. No broker needed.
set(_pl ${CMAKE_CURRENT_LIST_DIR})

tkc_add_check_test(unit.sorter
  SOURCES ${_pl}/check_sorter.c
  LIBS tkc_pipeline
  LABELS unit
  TIMEOUT 300)

tkc_add_check_test(unit.checkpoint
  SOURCES ${_pl}/check_checkpoint.c
  LIBS tkc_pipeline
  LABELS unit
  TIMEOUT 120)

tkc_add_check_test(unit.row_dedup
  SOURCES ${_pl}/check_row_dedup.c
  LIBS tkc_pipeline
  LABELS unit
  TIMEOUT 120)
