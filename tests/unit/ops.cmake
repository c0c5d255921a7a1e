# Operability (connector/ops.cmake): configuration, metrics registry,
# rate-limited and JSON logging. The tests that run the binary, the HTTP
# endpoint and `lag` against the real broker are in tests/ops/.
set(_ops ${CMAKE_CURRENT_LIST_DIR})

tkc_add_check_test(unit.conf
  SOURCES ${_ops}/check_conf.c
  LIBS tkc_conf
  LABELS unit)
target_compile_definitions(unit_conf PRIVATE TKC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

tkc_add_check_test(unit.metrics
  SOURCES ${_ops}/check_metrics.c
  LIBS tkc_metrics
  LABELS unit)

tkc_add_check_test(unit.ratelimit
  SOURCES ${_ops}/check_ratelimit.c
  LIBS tkc_util PkgConfig::JANSSON
  LABELS unit)
