# Avro codec (connector/codec.cmake): canonical form and fingerprint, codec
# round trips in both framings.
set(_cd ${CMAKE_CURRENT_LIST_DIR})

tkc_add_check_test(unit.avro_canonical
  SOURCES ${_cd}/check_avro_canonical.c
  LIBS tkc_codec
  LABELS unit)
target_compile_definitions(unit_avro_canonical PRIVATE TKC_SCHEMA_DIR="${TKC_SCHEMA_DIR}")

# Both framings; the Confluent one through the in-process test registry
# (tests/registry) on loopback, started inside each forked test.
tkc_add_check_test(unit.avro_codec
  SOURCES ${_cd}/check_avro_codec.c
  LIBS tkc_codec tkc_test_registry
  LABELS unit
  TIMEOUT 120)
target_compile_definitions(unit_avro_codec PRIVATE TKC_SCHEMA_DIR="${TKC_SCHEMA_DIR}")
