/*
 * pipeline_avro.h: the Avro codec (avro_codec.h) behind the pipeline's codec
 * seam (tkc_pipeline_codec_t in pipeline.h).
 *
 * The adapter only forwards: the pipeline calls the codec on its own thread,
 * which matches the codec's threading rule (one codec per thread).
 */
#ifndef TKC_PIPELINE_AVRO_H
#define TKC_PIPELINE_AVRO_H

#include "avro_codec.h"
#include "pipeline.h"

/**
 * @brief Fills @p out with callbacks that use @p codec.
 * @param codec borrowed; it must outlive the pipeline, and after
 *              tkc_pipeline_start() only the pipeline thread may use it.
 * @locality any
 */
void tkc_pipeline_codec_avro(tkc_pipeline_codec_t *out, tkc_avro_codec_t *codec);

#endif
