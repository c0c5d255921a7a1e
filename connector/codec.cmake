# tkc_codec: Avro schemas, encoding and the schema registry client
# (issue 5, deliverable 2). Pipeline side: avro-c, jansson and libcurl, no
# gRPC or librdkafka.
add_library(tkc_codec STATIC
  src/avro_canonical.c
  src/avro_codec.c
  src/schema_registry.c)
target_include_directories(tkc_codec PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_compile_options(tkc_codec PRIVATE ${TKC_WARNINGS})
target_link_libraries(tkc_codec PUBLIC tkc_feedlogic tkc_util
  PkgConfig::AVRO PkgConfig::JANSSON PkgConfig::CURL Threads::Threads)

# Where the connector finds schemas/*.avsc when run from the build tree.
set(TKC_SCHEMA_DIR "${CMAKE_SOURCE_DIR}/schemas" CACHE INTERNAL "Avro schemas (.avsc)")
