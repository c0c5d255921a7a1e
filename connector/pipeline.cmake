# tkc_pipeline: the pipeline thread's modules (sorter with spill files, Kafka
# sink, checkpoint store, pipeline loop). librdkafka and zlib (CRC-32 of
# spill records and checkpoint files); no gRPC. The Avro codec joins through
# the seam in pipeline.h: src/pipeline_avro.c adapts tkc_avro_codec once the
# codec library (tkc_codec) exists.
add_library(tkc_pipeline STATIC
  src/spill.c
  src/sorter.c
  src/row_dedup.c
  src/checkpoint.c
  src/kafka_sink.c
  src/pipeline.c)
target_include_directories(tkc_pipeline PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_compile_options(tkc_pipeline PRIVATE ${TKC_WARNINGS})
target_link_libraries(tkc_pipeline PUBLIC tkc_feedlogic tkc_util PkgConfig::RDKAFKA
                      PkgConfig::ZLIB Threads::Threads)

# The Avro codec behind the seam (src/pipeline_avro.c), once tkc_codec exists
# (connector/codec.cmake is included before this file).
if(TARGET tkc_codec)
  target_sources(tkc_pipeline PRIVATE src/pipeline_avro.c)
  target_link_libraries(tkc_pipeline PUBLIC tkc_codec)
endif()
