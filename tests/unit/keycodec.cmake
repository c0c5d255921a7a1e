# util/keycodec: memcomparable key encoding and TiDB record keys.
tkc_add_check_test(unit.keycodec
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/check_keycodec.c
  LIBS tkc_util
  LABELS unit
  TIMEOUT 60)
