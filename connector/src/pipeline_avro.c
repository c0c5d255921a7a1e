/*
 * pipeline_avro.c: forwards the pipeline's codec seam to tkc_avro_codec (see
 * pipeline_avro.h). Kept apart from pipeline.c so that the pipeline builds
 * and is tested without avro-c, and the codec without librdkafka.
 */
#include "pipeline_avro.h"

#include <string.h>

static tkc_err_t encode_row(void *opaque, const char *topic, const char *span_name,
                            const tkc_row_t *row, uint8_t **out, size_t *out_len, char *errstr,
                            size_t errstr_size)
{
    return tkc_avro_codec_encode_row(opaque, topic, span_name, row, out, out_len, errstr,
                                     errstr_size);
}

static tkc_err_t encode_watermark(void *opaque, const char *topic, const char *feed_id,
                                  uint64_t resolved_ts, int64_t emitted_at_ms, uint8_t **out,
                                  size_t *out_len, char *errstr, size_t errstr_size)
{
    return tkc_avro_codec_encode_watermark(opaque, topic, feed_id, resolved_ts, emitted_at_ms,
                                           out, out_len, errstr, errstr_size);
}

static tkc_err_t encode_checkpoint(void *opaque, const char *topic, const char *feed_id,
                                   uint64_t checkpoint_ts, int64_t committed_at_ms,
                                   uint64_t epoch, uint8_t **out, size_t *out_len, char *errstr,
                                   size_t errstr_size)
{
    return tkc_avro_codec_encode_checkpoint(opaque, topic, feed_id, checkpoint_ts,
                                            committed_at_ms, epoch, out, out_len, errstr,
                                            errstr_size);
}

static tkc_err_t decode_checkpoint(void *opaque, const char *topic, const uint8_t *buf,
                                   size_t len, tkc_checkpoint_t *out, char *errstr,
                                   size_t errstr_size)
{
    (void)topic;
    tkc_avro_checkpoint_t ck;
    memset(&ck, 0, sizeof(ck));
    tkc_err_t err = tkc_avro_codec_decode_checkpoint(opaque, buf, len, &ck, errstr, errstr_size);
    if (err == TKC_ERR_OK) {
        out->ts = ck.checkpoint_ts;
        out->epoch = ck.epoch;
        out->committed_at_ms = ck.committed_at_ms;
    }
    tkc_avro_checkpoint_clear(&ck);
    return err;
}

void tkc_pipeline_codec_avro(tkc_pipeline_codec_t *out, tkc_avro_codec_t *codec)
{
    memset(out, 0, sizeof(*out));
    out->opaque = codec;
    out->encode_row = encode_row;
    out->encode_watermark = encode_watermark;
    out->encode_checkpoint = encode_checkpoint;
    out->decode_checkpoint = decode_checkpoint;
}
