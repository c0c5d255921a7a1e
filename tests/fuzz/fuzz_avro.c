/*
 * fuzz_avro.c: fuzz target (4). Bytes -> tkc_avro_codec_decode (both
 * framings; single-object resolves against the codec's own schemas,
 * Confluent framing has no registry here and must be refused cleanly), and
 * for every message that decodes: encode it again with the codec and decode
 * that, which must give the same message.
 *
 * The codec is created once per process (LLVMFuzzerInitialize) from the
 * schemas/ of the source tree, as the connector does at startup; a codec is
 * meant to be reused across messages, so reusing it across inputs is also
 * what the fuzzer should exercise.
 *
 * Invariants (abort on violation): decode returns OK, CORRUPT, NOT_FOUND or
 * INCOMPATIBLE, leaves the output zeroed on failure and writes an error
 * text; a decoded message re-encodes and decodes to equal fields (for a
 * DELETE the value is not compared: it is written as null by design); no
 * crash, leak, UB or allocation beyond the input's size class (ASan's
 * allocation limit under libFuzzer's -rss_limit_mb / -malloc_limit_mb).
 */
#include <string.h>

#include "avro_codec.h"
#include "fuzz_target.h"
#include "util/mem.h"

static tkc_avro_codec_t *CODEC;

/* Destroyed at exit so LeakSanitizer sees only what decoding lost. */
static void destroy_codec(void)
{
    tkc_avro_codec_destroy(CODEC);
    CODEC = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    char err[256];
    CODEC = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, err, sizeof(err));
    if (!CODEC) {
        fprintf(stderr, "fuzz_avro: cannot load schemas from %s: %s\n", TKC_SCHEMA_DIR, err);
        abort();
    }
    atexit(destroy_codec);
    return 0;
}

static bool bytes_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void check_zeroed(const tkc_avro_message_t *m)
{
    static const tkc_avro_message_t zero;
    FUZZ_ASSERT(memcmp(m, &zero, sizeof(zero)) == 0);
}

static void round_trip(const tkc_avro_message_t *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    tkc_err_t e = TKC_ERR_INVALID_ARG;
    switch (m->kind) {
    case TKC_AVRO_MSG_ROW_CHANGE:
        FUZZ_ASSERT(m->row_change.row);
        e = tkc_avro_codec_encode_row(CODEC, "fuzz", m->row_change.span ? m->row_change.span : "",
                                      m->row_change.row, &buf, &len, err, sizeof(err));
        break;
    case TKC_AVRO_MSG_WATERMARK:
        e = tkc_avro_codec_encode_watermark(CODEC, "fuzz", m->watermark.feed_id,
                                            m->watermark.resolved_ts, m->watermark.emitted_at_ms,
                                            &buf, &len, err, sizeof(err));
        break;
    case TKC_AVRO_MSG_CHECKPOINT:
        e = tkc_avro_codec_encode_checkpoint(CODEC, NULL, m->checkpoint.feed_id,
                                             m->checkpoint.checkpoint_ts,
                                             m->checkpoint.committed_at_ms, m->checkpoint.epoch,
                                             &buf, &len, err, sizeof(err));
        break;
    default:
        FUZZ_ASSERT(!"decoded an unknown message kind");
    }
    if (e != TKC_ERR_OK)
        fprintf(stderr, "re-encode failed: %s\n", err);
    FUZZ_ASSERT(e == TKC_ERR_OK && buf && len > 0);

    tkc_avro_message_t m2;
    memset(&m2, 0, sizeof(m2));
    e = tkc_avro_codec_decode(CODEC, buf, len, &m2, err, sizeof(err));
    if (e != TKC_ERR_OK)
        fprintf(stderr, "decode of re-encoded message failed: %s\n", err);
    FUZZ_ASSERT(e == TKC_ERR_OK);
    FUZZ_ASSERT(m2.kind == m->kind);
    FUZZ_ASSERT(m2.framing == TKC_AVRO_FRAMING_SINGLE_OBJECT);
    switch (m->kind) {
    case TKC_AVRO_MSG_ROW_CHANGE: {
        const tkc_row_t *a = m->row_change.row, *b = m2.row_change.row;
        FUZZ_ASSERT(a->op == b->op);
        FUZZ_ASSERT(bytes_eq(a->key, a->key_len, b->key, b->key_len));
        if (a->op != TKC_ROW_OP_DELETE)
            FUZZ_ASSERT(bytes_eq(a->value, a->value_len, b->value, b->value_len));
        FUZZ_ASSERT(a->has_old_value == b->has_old_value);
        if (a->has_old_value)
            FUZZ_ASSERT(bytes_eq(a->old_value, a->old_value_len, b->old_value, b->old_value_len));
        FUZZ_ASSERT(a->start_ts == b->start_ts && a->commit_ts == b->commit_ts);
        FUZZ_ASSERT(a->region_id == b->region_id);
        FUZZ_ASSERT(str_eq(m->row_change.span, m2.row_change.span));
        break;
    }
    case TKC_AVRO_MSG_WATERMARK:
        FUZZ_ASSERT(str_eq(m->watermark.feed_id, m2.watermark.feed_id));
        FUZZ_ASSERT(m->watermark.resolved_ts == m2.watermark.resolved_ts);
        FUZZ_ASSERT(m->watermark.emitted_at_ms == m2.watermark.emitted_at_ms);
        break;
    case TKC_AVRO_MSG_CHECKPOINT:
        FUZZ_ASSERT(str_eq(m->checkpoint.feed_id, m2.checkpoint.feed_id));
        FUZZ_ASSERT(m->checkpoint.checkpoint_ts == m2.checkpoint.checkpoint_ts);
        FUZZ_ASSERT(m->checkpoint.committed_at_ms == m2.checkpoint.committed_at_ms);
        FUZZ_ASSERT(m->checkpoint.epoch == m2.checkpoint.epoch);
        break;
    }
    tkc_avro_message_clear(&m2);
    tkc_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!CODEC)
        LLVMFuzzerInitialize(NULL, NULL);
    tkc_avro_message_t m;
    memset(&m, 0, sizeof(m));
    char err[256] = "";
    tkc_err_t e = tkc_avro_codec_decode(CODEC, data, size, &m, err, sizeof(err));
    if (e != TKC_ERR_OK) {
        FUZZ_ASSERT(e == TKC_ERR_CORRUPT || e == TKC_ERR_NOT_FOUND || e == TKC_ERR_INCOMPATIBLE);
        FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
        check_zeroed(&m);
        return 0;
    }
    if (!getenv("FUZZ_AVRO_NO_ROUND_TRIP"))
        round_trip(&m);
    tkc_avro_message_clear(&m);
    check_zeroed(&m);
    return 0;
}
