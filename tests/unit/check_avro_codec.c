/*
 * check_avro_codec.c: the Avro codec (avro_codec.h).
 *
 * Round trips of every message kind in both framings (single-object, and
 * Confluent through the in-process test registry on loopback), the exact
 * Avro bytes of one row assembled by hand from the specification (so we
 * know the output is standard Avro, not just something avro-c reads back),
 * null vs empty old values, 1 MiB values, corrupt and truncated input,
 * schema loading errors, and the encode/decode rates (printed, not
 * asserted).
 */
#include "avro_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "avro_canonical.h"
#include "registry/test_registry.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"
#include "../test_file.h"

static char err[1024];

static tkc_avro_codec_t *codec_plain(void)
{
    err[0] = '\0';
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "codec: %s", err);
    return c;
}

static tkc_row_t *mkrow(tkc_row_op_t op, const char *key, const char *value, bool has_old,
                        const char *old)
{
    tkc_row_t *r = tkc_row_new(op, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                               value ? strlen(value) : 0, (const uint8_t *)old,
                               old ? strlen(old) : 0);
    r->has_old_value = has_old;
    r->start_ts = tkc_tso_compose(1700000000000, 5);
    r->commit_ts = tkc_tso_compose(1700000000123, 7);
    r->region_id = 42;
    return r;
}

static void assert_row_equal(const tkc_avro_row_change_t *got, const tkc_row_t *want,
                             const char *span)
{
    const tkc_row_t *g = got->row;
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->op, want->op);
    ck_assert_uint_eq(g->key_len, want->key_len);
    ck_assert(memcmp(g->key, want->key, want->key_len) == 0);
    ck_assert_int_eq(got->has_value, want->op == TKC_ROW_OP_PUT);
    ck_assert_uint_eq(g->value_len, want->op == TKC_ROW_OP_PUT ? want->value_len : 0);
    if (want->op == TKC_ROW_OP_PUT && want->value_len)
        ck_assert(memcmp(g->value, want->value, want->value_len) == 0);
    ck_assert_int_eq(g->has_old_value, want->has_old_value);
    ck_assert_uint_eq(g->old_value_len, want->has_old_value ? want->old_value_len : 0);
    if (want->has_old_value && want->old_value_len)
        ck_assert(memcmp(g->old_value, want->old_value, want->old_value_len) == 0);
    ck_assert_uint_eq(g->start_ts, want->start_ts);
    ck_assert_uint_eq(g->commit_ts, want->commit_ts);
    ck_assert_uint_eq(g->region_id, want->region_id);
    ck_assert_int_eq(got->commit_time_ms, tkc_tso_physical_ms(want->commit_ts));
    ck_assert_str_eq(got->span, span);
}

static void roundtrip_row(tkc_avro_codec_t *enc, tkc_avro_codec_t *dec, const char *topic,
                          const tkc_row_t *row, const char *span)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ck_assert_msg(tkc_avro_codec_encode_row(enc, topic, span, row, &buf, &len, err,
                                            sizeof(err)) == TKC_ERR_OK,
                  "encode: %s", err);
    tkc_avro_row_change_t rc;
    ck_assert_msg(tkc_avro_codec_decode_row(dec, buf, len, &rc, err, sizeof(err)) == TKC_ERR_OK,
                  "decode: %s", err);
    assert_row_equal(&rc, row, span);
    tkc_avro_row_change_clear(&rc);
    ck_assert_ptr_null(rc.row);
    tkc_free(buf);
}

/* The kinds of rows TiKV sends: insert, update, delete, with and without old values. */
static void roundtrip_all_rows(tkc_avro_codec_t *enc, tkc_avro_codec_t *dec, const char *topic)
{
    struct {
        tkc_row_op_t op;
        const char *key, *value;
        bool has_old;
        const char *old;
    } rows[] = {
        {TKC_ROW_OP_PUT, "t\x80\x00\x00\x00\x00\x00\x00\x01_r\x01", "new", true, ""}, /* insert */
        {TKC_ROW_OP_PUT, "k-update", "new", true, "previous"},                        /* update */
        {TKC_ROW_OP_PUT, "k-unknown-old", "new", false, NULL},  /* TiKV gave no old value */
        {TKC_ROW_OP_PUT, "k-empty-value", "", true, "x"},       /* empty value is still a value */
        {TKC_ROW_OP_DELETE, "k-delete", NULL, true, "deleted row"},
        {TKC_ROW_OP_DELETE, "k-delete-no-old", NULL, false, NULL},
        {TKC_ROW_OP_PUT, "", "empty key", true, ""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        tkc_row_t *r = mkrow(rows[i].op, rows[i].key, rows[i].value, rows[i].has_old,
                             rows[i].old);
        roundtrip_row(enc, dec, topic, r, i % 2 ? "orders" : "t_1 \xc3\xa9");
        tkc_row_destroy(r);
    }
}

START_TEST(test_avro_codec_rows_single_object)
{
    tkc_avro_codec_t *c = codec_plain();
    roundtrip_all_rows(c, c, "ignored.topic");
    /* A second codec decodes what the first wrote: nothing depends on codec state. */
    tkc_avro_codec_t *d = codec_plain();
    roundtrip_all_rows(c, d, NULL);
    tkc_avro_codec_destroy(d);
    tkc_avro_codec_destroy(c);
}
END_TEST

/* Null (unknown) and empty (insert) old values must stay distinct. */
START_TEST(test_avro_codec_null_vs_empty_old_value)
{
    tkc_avro_codec_t *c = codec_plain();
    tkc_row_t *insert = mkrow(TKC_ROW_OP_PUT, "k", "v", true, "");
    tkc_row_t *unknown = mkrow(TKC_ROW_OP_PUT, "k", "v", false, NULL);
    uint8_t *a, *b;
    size_t alen, blen;
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, NULL, "s", insert, &a, &alen, err, sizeof(err)),
                     0);
    ck_assert_int_eq(
        tkc_avro_codec_encode_row(c, NULL, "s", unknown, &b, &blen, err, sizeof(err)), 0);
    /* Same length (branch byte + zero length vs branch byte), different bytes. */
    ck_assert(alen != blen || memcmp(a, b, alen) != 0);
    tkc_avro_row_change_t ra, rb;
    ck_assert_int_eq(tkc_avro_codec_decode_row(c, a, alen, &ra, err, sizeof(err)), 0);
    ck_assert_int_eq(tkc_avro_codec_decode_row(c, b, blen, &rb, err, sizeof(err)), 0);
    ck_assert(ra.row->has_old_value);
    ck_assert_uint_eq(ra.row->old_value_len, 0);
    ck_assert(!rb.row->has_old_value);
    tkc_avro_row_change_clear(&ra);
    tkc_avro_row_change_clear(&rb);
    tkc_free(a);
    tkc_free(b);
    tkc_row_destroy(insert);
    tkc_row_destroy(unknown);
    tkc_avro_codec_destroy(c);
}
END_TEST

/* The bytes of one row, assembled by hand from the Avro specification. */
START_TEST(test_avro_codec_exact_bytes)
{
    tkc_avro_codec_t *c = codec_plain();
    tkc_row_t *r = mkrow(TKC_ROW_OP_PUT, "k", "v", false, NULL);
    r->start_ts = 1;
    r->commit_ts = 2u << 18; /* physical 2 ms */
    r->region_id = 7;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, NULL, "s", r, &buf, &len, err, sizeof(err)), 0);
    static const uint8_t body[] = {
        0x00,                   /* union branch 0: RowChange */
        0x00,                   /* op: enum index 0 = PUT */
        0x02, 'k',              /* key: length 1 (zigzag 2), "k" */
        0x02, 0x02, 'v',        /* value: branch 1 (bytes), length 1, "v" */
        0x00,                   /* old_value: branch 0 (null) */
        0x02,                   /* start_ts 1 */
        0x80, 0x80, 0x40,       /* commit_ts 524288 -> zigzag 1048576 */
        0x04,                   /* commit_time_ms 2 */
        0x02, 's',              /* span "s" */
        0x0e,                   /* region_id 7 */
        0x00,                   /* columns: null */
    };
    uint64_t fp = tkc_avro_codec_fingerprint(c, TKC_AVRO_SCHEMA_ROW_TOPIC);
    ck_assert_uint_eq(len, TKC_AVRO_SINGLE_OBJECT_HEADER_LEN + sizeof(body));
    ck_assert_uint_eq(buf[0], 0xC3);
    ck_assert_uint_eq(buf[1], 0x01);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(buf[2 + i], (uint8_t)(fp >> (8 * i)));
    ck_assert(memcmp(buf + TKC_AVRO_SINGLE_OBJECT_HEADER_LEN, body, sizeof(body)) == 0);
    /* The fingerprint is that of the registered text's canonical form. */
    const char *text = tkc_avro_codec_schema_text(c, TKC_AVRO_SCHEMA_ROW_TOPIC);
    uint64_t fp2;
    ck_assert_int_eq(tkc_avro_canonical_fingerprint(text, strlen(text), &fp2, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(fp, fp2);
    ck_assert_uint_ne(fp, tkc_avro_codec_fingerprint(c, TKC_AVRO_SCHEMA_CHECKPOINT));
    tkc_free(buf);
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
}
END_TEST

static void roundtrip_watermark_checkpoint(tkc_avro_codec_t *enc, tkc_avro_codec_t *dec,
                                           const char *wm_topic, const char *row_topic,
                                           const char *ck_topic)
{
    uint64_t ts = tkc_tso_compose(1712345678901, 3);
    const char *topics[] = {wm_topic, row_topic};
    for (int t = 0; t < 2; t++) {
        uint8_t *buf;
        size_t len;
        ck_assert_msg(tkc_avro_codec_encode_watermark(enc, topics[t], "feed-1", ts, 1712345679000,
                                                      &buf, &len, err, sizeof(err)) == 0,
                      "%s", err);
        tkc_avro_watermark_t wm;
        ck_assert_msg(tkc_avro_codec_decode_watermark(dec, buf, len, &wm, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_str_eq(wm.feed_id, "feed-1");
        ck_assert_uint_eq(wm.resolved_ts, ts);
        ck_assert_int_eq(wm.resolved_time_ms, 1712345678901);
        ck_assert_int_eq(wm.emitted_at_ms, 1712345679000);
        tkc_avro_watermark_clear(&wm);
        /* The generic decoder says what it is. */
        tkc_avro_message_t msg;
        ck_assert_int_eq(tkc_avro_codec_decode(dec, buf, len, &msg, err, sizeof(err)), 0);
        ck_assert_int_eq(msg.kind, TKC_AVRO_MSG_WATERMARK);
        tkc_avro_message_clear(&msg);
        /* Asking for a row gets a clear refusal. */
        tkc_avro_row_change_t rc;
        ck_assert_int_eq(tkc_avro_codec_decode_row(dec, buf, len, &rc, err, sizeof(err)),
                         TKC_ERR_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(err, "Watermark, not a RowChange"));
        ck_assert_ptr_null(rc.row);
        tkc_free(buf);
    }
    uint8_t *buf;
    size_t len;
    ck_assert_msg(tkc_avro_codec_encode_checkpoint(enc, ck_topic, "feed-1", ts, 1712345680000,
                                                   UINT64_C(9), &buf, &len, err,
                                                   sizeof(err)) == 0,
                  "%s", err);
    tkc_avro_checkpoint_t ck;
    ck_assert_msg(tkc_avro_codec_decode_checkpoint(dec, buf, len, &ck, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(ck.feed_id, "feed-1");
    ck_assert_uint_eq(ck.checkpoint_ts, ts);
    ck_assert_int_eq(ck.checkpoint_time_ms, 1712345678901);
    ck_assert_int_eq(ck.committed_at_ms, 1712345680000);
    ck_assert_uint_eq(ck.epoch, 9);
    tkc_avro_checkpoint_clear(&ck);
    tkc_avro_watermark_t wm;
    ck_assert_int_eq(tkc_avro_codec_decode_watermark(dec, buf, len, &wm, err, sizeof(err)),
                     TKC_ERR_INVALID_ARG);
    tkc_free(buf);
}

START_TEST(test_avro_codec_watermark_checkpoint_single_object)
{
    tkc_avro_codec_t *c = codec_plain();
    roundtrip_watermark_checkpoint(c, c, "p.watermark", "p.orders", "p.checkpoint");
    tkc_avro_codec_destroy(c);
}
END_TEST

/* 1 MiB value and old value, and a value that is not valid UTF-8 or text at all. */
START_TEST(test_avro_codec_big_values)
{
    tkc_avro_codec_t *c = codec_plain();
    size_t n = 1u << 20;
    uint8_t *v = tkc_malloc(n), *o = tkc_malloc(n);
    for (size_t i = 0; i < n; i++) {
        v[i] = (uint8_t)(i * 31 + 7);
        o[i] = (uint8_t)(i * 17 + 3);
    }
    tkc_row_t *r = tkc_row_new(TKC_ROW_OP_PUT, (const uint8_t *)"big", 3, v, n, o, n);
    r->has_old_value = true;
    r->commit_ts = 99u << 18;
    roundtrip_row(c, c, NULL, r, "big");
    /* Again with a smaller row: the reused value must not keep old bytes. */
    tkc_row_t *small = mkrow(TKC_ROW_OP_PUT, "s", "tiny", true, "x");
    roundtrip_row(c, c, NULL, small, "big");
    roundtrip_row(c, c, NULL, r, "big");
    tkc_row_destroy(small);
    tkc_row_destroy(r);
    tkc_free(v);
    tkc_free(o);
    tkc_avro_codec_destroy(c);
}
END_TEST

static void expect_corrupt(tkc_avro_codec_t *c, const uint8_t *buf, size_t len, const char *what)
{
    tkc_avro_message_t msg;
    tkc_err_t rc = tkc_avro_codec_decode(c, buf, len, &msg, err, sizeof(err));
    ck_assert_msg(rc == TKC_ERR_CORRUPT, "%s: got %s (%s)", what, tkc_err2name(rc), err);
    ck_assert_int_eq(msg.kind, 0);
    ck_assert_ptr_null(msg.row_change.row);
}

START_TEST(test_avro_codec_corrupt_input)
{
    tkc_avro_codec_t *c = codec_plain();
    tkc_row_t *r = mkrow(TKC_ROW_OP_PUT, "key", "value", true, "old");
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, NULL, "span", r, &buf, &len, err, sizeof(err)),
                     0);
    /* Every truncation fails cleanly. */
    for (size_t n = 0; n < len; n++)
        expect_corrupt(c, buf, n, "truncated");
    /* Trailing garbage. */
    uint8_t *longer = tkc_malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    expect_corrupt(c, longer, len + 1, "trailing byte");
    tkc_free(longer);
    /* Unknown framing. */
    uint8_t junk[16] = {0x7b, 0x22};
    expect_corrupt(c, junk, sizeof(junk), "not framed");
    /* A bytes length far beyond the input (avro-c would try to allocate it). */
    uint8_t huge[] = {0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, /* header, fixed below */
                      0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    memcpy(huge + 2, buf + 2, 8);
    expect_corrupt(c, huge, sizeof(huge), "huge key length");
    /* A negative length. */
    uint8_t neg[] = {0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x01};
    memcpy(neg + 2, buf + 2, 8);
    expect_corrupt(c, neg, sizeof(neg), "negative key length");
    /* An out-of-range union branch and enum symbol. */
    uint8_t branch[] = {0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x04};
    memcpy(branch + 2, buf + 2, 8);
    expect_corrupt(c, branch, sizeof(branch), "union branch 2");
    uint8_t sym[] = {0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x04};
    memcpy(sym + 2, buf + 2, 8);
    expect_corrupt(c, sym, sizeof(sym), "enum symbol 2");
    /* An over-long varint. */
    uint8_t varint[32] = {0xC3, 0x01};
    memcpy(varint + 2, buf + 2, 8);
    varint[10] = 0x00;
    varint[11] = 0x00;
    varint[12] = 0x02;
    varint[13] = 'k';
    memset(varint + 14, 0x80, 12); /* value branch: never-ending varint */
    varint[26] = 0x01;
    expect_corrupt(c, varint, 27, "over-long varint");

    /* An unknown fingerprint is NOT_FOUND; Confluent framing without a registry too. */
    tkc_avro_message_t msg;
    uint8_t other[sizeof(huge)];
    memcpy(other, buf, sizeof(other));
    other[5] ^= 0xff;
    ck_assert_int_eq(tkc_avro_codec_decode(c, other, sizeof(other), &msg, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err, "fingerprint"));
    uint8_t conf[] = {0x00, 0x00, 0x00, 0x00, 0x07, 0x00};
    ck_assert_int_eq(tkc_avro_codec_decode(c, conf, sizeof(conf), &msg, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err, "no schema registry"));

    /* Random single-byte damage: any outcome but a crash; successes must be whole rows. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint8_t *copy = tkc_malloc(len);
    size_t ok = 0, bad = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(copy, buf, len);
        for (int k = 0; k < 1 + i % 3; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t body = len - TKC_AVRO_SINGLE_OBJECT_HEADER_LEN;
            copy[TKC_AVRO_SINGLE_OBJECT_HEADER_LEN + x % body] = (uint8_t)(x >> 32);
        }
        tkc_err_t rc = tkc_avro_codec_decode(c, copy, len, &msg, err, sizeof(err));
        if (rc == TKC_ERR_OK) {
            ok++;
            ck_assert_int_eq(msg.kind == TKC_AVRO_MSG_ROW_CHANGE ? msg.row_change.row != NULL
                                                                 : msg.watermark.feed_id != NULL,
                             1);
            tkc_avro_message_clear(&msg);
        } else {
            bad++;
            ck_assert_msg(rc == TKC_ERR_CORRUPT || rc == TKC_ERR_INCOMPATIBLE, "%s: %s",
                          tkc_err2name(rc), err);
        }
    }
    printf("avro_codec: random damage: %zu decoded, %zu rejected\n", ok, bad);
    ck_assert_uint_gt(bad, 0);
    tkc_free(copy);
    tkc_free(buf);
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
}
END_TEST

/* ===== Confluent framing through the in-process test registry ===== */

static tkc_test_registry_t *reg;
static tkc_schema_registry_t *client;

static void registry_setup(void)
{
    char e[256];
    reg = tkc_test_registry_start(0, e, sizeof(e));
    ck_assert_msg(reg != NULL, "%s", e);
    tkc_schema_registry_conf_t conf;
    tkc_schema_registry_conf_init(&conf);
    conf.url = tkc_test_registry_url(reg);
    conf.backoff_initial_ms = 5;
    client = tkc_schema_registry_new(&conf, e, sizeof(e));
    ck_assert_msg(client != NULL, "%s", e);
}

static void registry_teardown(void)
{
    tkc_schema_registry_destroy(client);
    tkc_test_registry_stop(reg);
}

START_TEST(test_avro_codec_confluent_roundtrip)
{
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, client, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    roundtrip_all_rows(c, c, "p.orders");
    roundtrip_watermark_checkpoint(c, c, "p.watermark", "p.orders", "p.checkpoint");

    /* Framing: 00 + big-endian id; row topics and the watermark topic share a schema. */
    tkc_row_t *r = mkrow(TKC_ROW_OP_PUT, "k", "v", true, "");
    uint8_t *a, *b, *k;
    size_t alen, blen, klen;
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.orders", "orders", r, &a, &alen, err,
                                               sizeof(err)), 0);
    ck_assert_int_eq(tkc_avro_codec_encode_watermark(c, "p.watermark", "f", 1, 2, &b, &blen, err,
                                                     sizeof(err)), 0);
    ck_assert_int_eq(tkc_avro_codec_encode_checkpoint(c, "p.checkpoint", "f", 1, 2, 3, &k, &klen,
                                                      err, sizeof(err)), 0);
    ck_assert_uint_eq(a[0], 0);
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(k[0], 0);
    ck_assert(memcmp(a + 1, b + 1, 4) == 0); /* same schema text -> same global id */
    ck_assert(memcmp(a + 1, k + 1, 4) != 0);
    uint32_t id = (uint32_t)a[1] << 24 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 8 | a[4];
    ck_assert_uint_ge(id, 1);
    tkc_free(k);
    /* A checkpoint for the local file (topic NULL) is single-object even with a registry. */
    ck_assert_int_eq(tkc_avro_codec_encode_checkpoint(c, NULL, "f", 1, 2, 3, &k, &klen, err,
                                                      sizeof(err)), 0);
    ck_assert_uint_eq(k[0], 0xC3);
    tkc_free(k);

    /* A codec that never encoded (a consumer) decodes by id via the registry. */
    tkc_avro_codec_t *consumer = tkc_avro_codec_new(TKC_SCHEMA_DIR, client, err, sizeof(err));
    tkc_avro_message_t msg;
    ck_assert_msg(tkc_avro_codec_decode(consumer, a, alen, &msg, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_int_eq(msg.framing, TKC_AVRO_FRAMING_CONFLUENT);
    ck_assert_uint_eq(msg.schema_id, id);
    assert_row_equal(&msg.row_change, r, "orders");
    tkc_avro_message_clear(&msg);
    /* An id the registry does not know. */
    a[4] ^= 0x40;
    ck_assert_int_eq(tkc_avro_codec_decode(consumer, a, alen, &msg, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    tkc_avro_codec_destroy(consumer);

    /* One registration per topic: further encodes are served from the codec's cache. */
    uint64_t before = tkc_test_registry_requests(reg);
    for (int i = 0; i < 100; i++) {
        uint8_t *o;
        size_t olen;
        ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.orders", "orders", r, &o, &olen, err,
                                                   sizeof(err)), 0);
        tkc_free(o);
    }
    ck_assert_uint_eq(tkc_test_registry_requests(reg), before);
    tkc_free(a);
    tkc_free(b);
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
}
END_TEST

/* ===== schema loading ===== */

static char tmpdir[256];

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A schema dir with the project's schemas, row_change.avsc replaced by @p row_change. */
static const char *schema_dir_with(const char *row_change)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tkc-avro-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    const char *files[] = {"watermark.avsc", "checkpoint.avsc", "row_change.avsc"};
    for (int i = 0; i < 3; i++) {
        char src[512];
        snprintf(src, sizeof(src), "%s/%s", TKC_SCHEMA_DIR, files[i]);
        char *text = tkc_test_read_file(src, NULL);
        ck_assert_msg(text != NULL, "cannot open %s", src);
        write_file(tmpdir, files[i], i == 2 && row_change ? row_change : text);
        tkc_free(text);
    }
    return tmpdir;
}

static void remove_dir(const char *dir)
{
    const char *files[] = {"watermark.avsc", "checkpoint.avsc", "row_change.avsc"};
    char path[512];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Replaces the first occurrence of @p from in the project's row_change.avsc. */
static char *row_schema_edit(const char *from, const char *to)
{
    char src[512];
    snprintf(src, sizeof(src), "%s/row_change.avsc", TKC_SCHEMA_DIR);
    char *text = tkc_test_read_file(src, NULL);
    ck_assert_msg(text != NULL, "cannot open %s", src);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "\"%s\" not in row_change.avsc", from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = tkc_malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    tkc_free(text);
    return out;
}

START_TEST(test_avro_codec_load_errors)
{
    ck_assert_ptr_null(tkc_avro_codec_new("/nonexistent-dir", NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/row_change.avsc"));

    static const struct {
        const char *from, *to, *needle;
    } edits[] = {
        {"\"name\": \"span\"", "\"name\": \"spam\"", "lacks field \"span\""},
        {"\"type\": \"bytes\"\n", "\"type\": \"string\"\n", "field \"key\" has a type"},
        {"\"symbols\": [\"PUT\", \"DELETE\"]", "\"symbols\": [\"PUT\", \"DEL\"]",
         "field \"op\" has a type"},
        {"\"fields\": [", "\"fields\": [{\"name\": \"must\", \"type\": \"int\"},",
         "field \"must\" is not nullable"},
        {"\"type\": \"record\"", "\"type\": \"recrod\"", "is invalid"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *text = row_schema_edit(edits[i].from, edits[i].to);
        const char *dir = schema_dir_with(text);
        err[0] = '\0';
        ck_assert_ptr_null(tkc_avro_codec_new(dir, NULL, err, sizeof(err)));
        ck_assert_msg(strstr(err, edits[i].needle) != NULL, "edit %zu: \"%s\" lacks \"%s\"", i,
                      err, edits[i].needle);
        remove_dir(dir);
        tkc_free(text);
    }
}
END_TEST

/*
 * Schema evolution: a producer with an extra nullable field and the fields
 * in another order; a consumer with the original schema still decodes
 * (fields are read by name, extra ones ignored). Both framings.
 */
START_TEST(test_avro_codec_evolved_writer)
{
    char *text = row_schema_edit("\"fields\": [",
                                 "\"fields\": [{\"name\": \"table_id\", \"type\": [\"null\", "
                                 "\"long\"], \"default\": null},");
    const char *dir = schema_dir_with(text);
    tkc_avro_codec_t *producer = tkc_avro_codec_new(dir, client, err, sizeof(err));
    ck_assert_msg(producer != NULL, "%s", err);
    tkc_avro_codec_t *consumer = tkc_avro_codec_new(TKC_SCHEMA_DIR, client, err, sizeof(err));
    ck_assert_msg(consumer != NULL, "%s", err);
    roundtrip_all_rows(producer, consumer, "evolved.topic");
    tkc_avro_codec_destroy(producer);
    tkc_avro_codec_destroy(consumer);
    remove_dir(dir);
    tkc_free(text);
}
END_TEST

/* ===== rates ===== */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void measure(tkc_avro_codec_t *c, size_t value_size, const char *framing)
{
    uint8_t key[16], *value = tkc_malloc(value_size);
    memset(key, 'k', sizeof(key));
    memset(value, 'v', value_size);
    tkc_row_t *r = tkc_row_new(TKC_ROW_OP_PUT, key, sizeof(key), value, value_size, NULL, 0);
    r->has_old_value = true; /* an insert: empty old value */
    r->commit_ts = tkc_tso_compose(1712345678901, 1);
    r->start_ts = r->commit_ts - 1000;
    r->region_id = 1234;
    size_t n = 0, bytes = 0;
    uint8_t *buf;
    size_t len;
    double t0 = now_s(), t1;
    do {
        for (int i = 0; i < 1000; i++, n++) {
            ck_assert_int_eq(tkc_avro_codec_encode_row(c, "bench.topic", "bench", r, &buf, &len,
                                                       err, sizeof(err)), 0);
            bytes += len;
            tkc_free(buf);
        }
        t1 = now_s();
    } while (t1 - t0 < 0.3);
    double enc = (double)n / (t1 - t0);
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "bench.topic", "bench", r, &buf, &len, err,
                                               sizeof(err)), 0);
    size_t m = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 1000; i++, m++) {
            tkc_avro_row_change_t rc;
            ck_assert_int_eq(tkc_avro_codec_decode_row(c, buf, len, &rc, err, sizeof(err)), 0);
            tkc_avro_row_change_clear(&rc);
        }
        t1 = now_s();
    } while (t1 - t0 < 0.3);
    double dec = (double)m / (t1 - t0);
    printf("avro_codec rate (%s, key 16 B + value %zu B, message %zu B): encode %.0f rows/s "
           "(%.1f MB/s), decode %.0f rows/s%s\n",
           framing, value_size, len, enc, enc * (double)len / 1e6, dec,
#if defined(__SANITIZE_ADDRESS__)
           " [ASan build]"
#else
           ""
#endif
    );
    (void)bytes;
    tkc_free(buf);
    tkc_free(value);
    tkc_row_destroy(r);
}

START_TEST(test_avro_codec_rate)
{
    tkc_avro_codec_t *c = codec_plain();
    measure(c, 100, "single-object");
    measure(c, 1024, "single-object");
    tkc_avro_codec_destroy(c);
    c = tkc_avro_codec_new(TKC_SCHEMA_DIR, client, err, sizeof(err));
    ck_assert_ptr_nonnull(c);
    measure(c, 100, "confluent");
    measure(c, 1024, "confluent");
    tkc_avro_codec_destroy(c);
}
END_TEST

static Suite *avro_codec_suite(void)
{
    Suite *s = suite_create("avro_codec");
    TCase *tc = tcase_create("single_object");
    tcase_add_test(tc, test_avro_codec_rows_single_object);
    tcase_add_test(tc, test_avro_codec_null_vs_empty_old_value);
    tcase_add_test(tc, test_avro_codec_exact_bytes);
    tcase_add_test(tc, test_avro_codec_watermark_checkpoint_single_object);
    tcase_add_test(tc, test_avro_codec_big_values);
    tcase_add_test(tc, test_avro_codec_corrupt_input);
    tcase_add_test(tc, test_avro_codec_load_errors);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("confluent");
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    tcase_add_test(tc, test_avro_codec_confluent_roundtrip);
    tcase_add_test(tc, test_avro_codec_evolved_writer);
    tcase_add_test(tc, test_avro_codec_rate);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(avro_codec_suite)
