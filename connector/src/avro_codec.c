/*
 * avro_codec.c: rows, watermarks and checkpoints to framed Avro and back
 * (see avro_codec.h for the schemas, the row-topic union and the framings).
 *
 * Data flow: the pipeline thread hands each released row to
 * tkc_avro_codec_encode_row() and gives the returned buffer to the Kafka
 * producer; the same thread encodes watermarks and checkpoints. Consumers
 * and tests decode.
 *
 * Encoding is built for the hot path:
 *   - the schemas are parsed once; field positions are resolved by name at
 *     load time (so field order in the .avsc is free) and set by index;
 *   - one generic avro value per value schema is reused for every message
 *     (avro-c keeps the byte/string buffers allocated between calls);
 *   - one avro writer writes into a reusable scratch buffer behind the 5- or
 *     10-byte header, and the result is copied into an exact-size output:
 *     one traversal of the value (sizing it first with avro_value_sizeof and
 *     writing in place measured 0.55-0.78 M rows/s against 0.85-0.95 M for
 *     this, 100 B rows, 2 shared cores); a message
 *     larger than the scratch is sized and the scratch grown to fit, so the
 *     codec keeps a buffer as large as the largest message it has written;
 *   - the schema id per (topic, value schema) is cached in the codec, so
 *     the registry client (and its mutex) is only consulted once per topic.
 *
 * Decoding looks up a "decoder" (writer schema, generic value, which union
 * branch is which message kind) by schema id or fingerprint and caches it.
 * Before avro-c reads a byte, validate() walks the writer schema over the
 * input: every length, count, union branch and enum index is checked against
 * the remaining input, nesting is bounded and trailing bytes are refused.
 * avro-c's reader trusts lengths (a corrupt bytes length becomes a malloc of
 * that size), so this pre-pass is what makes corrupt input a clean
 * TKC_ERR_CORRUPT.
 *
 * Fields are then read by name, so a writer schema with extra fields or in
 * another order (a compatible evolution) still decodes.
 *
 * Thread-compatible: all state is the codec's own; one codec per thread.
 */
#include "avro_codec.h"
#include "util/err.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "avro_canonical.h"
#include "util/clock.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/mem.h"

#define CODEC_LOG "avro_codec"
/* A schema file larger than this is certainly not one of ours. */
#define CODEC_MAX_SCHEMA_FILE (1u << 20)
/* Deepest value nesting accepted when decoding (our schemas need 4). */
#define CODEC_MAX_DEPTH 64
/* Most items of zero-byte type (null, empty record) accepted in one message. */
#define CODEC_MAX_EMPTY_ITEMS (1u << 20)
/* First size of the encode buffer: rows up to this size are written in one pass. */
#define CODEC_SCRATCH_INITIAL (64u << 10)

/* ===== field tables ===== */

/* How the codec writes one field of a record. */
typedef enum {
    F_LONG,          /* long */
    F_STRING,        /* string */
    F_BYTES,         /* bytes */
    F_NULLABLE_BYTES /* union of null and bytes */,
    F_OP,            /* enum with PUT and DELETE */
} ftype_t;

typedef struct fdesc_s {
    const char *name;
    ftype_t type;
} fdesc_t;

enum { R_OP, R_KEY, R_VALUE, R_OLD, R_START, R_COMMIT, R_COMMIT_MS, R_SPAN, R_REGION, R_N };
static const fdesc_t row_fields[R_N] = {
    {"op", F_OP},           {"key", F_BYTES},        {"value", F_NULLABLE_BYTES},
    {"old_value", F_NULLABLE_BYTES}, {"start_ts", F_LONG}, {"commit_ts", F_LONG},
    {"commit_time_ms", F_LONG}, {"span", F_STRING},  {"region_id", F_LONG},
};

enum { W_FEED, W_TS, W_TS_MS, W_EMITTED, W_N };
static const fdesc_t wm_fields[W_N] = {
    {"feed_id", F_STRING},
    {"resolved_ts", F_LONG},
    {"resolved_time_ms", F_LONG},
    {"emitted_at_ms", F_LONG},
};

enum { C_FEED, C_TS, C_TS_MS, C_COMMITTED, C_EPOCH, C_N };
static const fdesc_t ck_fields[C_N] = {
    {"feed_id", F_STRING},         {"checkpoint_ts", F_LONG}, {"checkpoint_time_ms", F_LONG},
    {"committed_at_ms", F_LONG},   {"epoch", F_LONG},
};

/* Where a field lives in the loaded schema and, for unions, which branch is which. */
typedef struct fslot_s {
    int index;
    int null_branch, value_branch; /* F_NULLABLE_BYTES */
    int put_symbol, delete_symbol; /* F_OP */
} fslot_t;

/* One record schema the codec writes. */
typedef struct rec_s {
    const char *file;
    char *text;        /* file contents */
    char *fullname;    /* e.g. io.tikvkafkacdc.RowChange */
    avro_schema_t schema;
    const fdesc_t *fields;
    size_t n_fields;
    fslot_t *slots;    /* per fields[] entry */
    int *extra_nulls;  /* indexes of extra nullable fields, set to null once */
    size_t n_extra;
    uint64_t fp;       /* fingerprint of the plain record */
} rec_t;

/* A writer schema seen when decoding. */
typedef struct decoder_s {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool is_union;
    tkc_avro_msg_kind_t kind; /* plain record: its kind; 0: not ours */
    size_t n_branches;
    tkc_avro_msg_kind_t *branch_kind; /* union: per branch */
} decoder_t;

struct tkc_avro_codec_s {
    tkc_schema_registry_t *registry;
    rec_t row, wm, ck;

    /* the row-topic value schema: [RowChange, Watermark] */
    char *rt_text;
    avro_schema_t rt_schema;
    uint64_t rt_fp;
    int rt_row_branch, rt_wm_branch;
    int rt_current; /* branch rt_value holds; -1: none */
    avro_value_iface_t *rt_iface;
    avro_value_t rt_value;

    /* the checkpoint value schema: Checkpoint */
    avro_value_iface_t *ck_iface;
    avro_value_t ck_value;

    avro_writer_t writer;
    uint8_t *scratch; /* encode buffer, grows to the largest message seen */
    size_t scratch_cap;
    avro_reader_t reader;
    tkc_hashmap_t *subject_ids; /* which byte + topic -> id + 1 */
    tkc_hashmap_t *decoders;    /* 'i' + id / 'f' + fingerprint -> decoder_t */
};

const char *tkc_avro_msg_kind_name(int kind)
{
    switch (kind) {
    case TKC_AVRO_MSG_ROW_CHANGE:
        return "RowChange";
    case TKC_AVRO_MSG_WATERMARK:
        return "Watermark";
    case TKC_AVRO_MSG_CHECKPOINT:
        return "Checkpoint";
    default:
        return "?";
    }
}

/* ===== clearing decoded messages ===== */

void tkc_avro_row_change_clear(tkc_avro_row_change_t *rc)
{
    tkc_row_destroy(rc->row);
    tkc_free(rc->span);
    memset(rc, 0, sizeof(*rc));
}

void tkc_avro_watermark_clear(tkc_avro_watermark_t *wm)
{
    tkc_free(wm->feed_id);
    memset(wm, 0, sizeof(*wm));
}

void tkc_avro_checkpoint_clear(tkc_avro_checkpoint_t *ck)
{
    tkc_free(ck->feed_id);
    memset(ck, 0, sizeof(*ck));
}

void tkc_avro_message_clear(tkc_avro_message_t *msg)
{
    tkc_avro_row_change_clear(&msg->row_change);
    tkc_avro_watermark_clear(&msg->watermark);
    tkc_avro_checkpoint_clear(&msg->checkpoint);
    memset(msg, 0, sizeof(*msg));
}

/* ===== schema loading ===== */

static avro_schema_t deref(avro_schema_t s)
{
    while (s && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}

static char *full_name(avro_schema_t s)
{
    const char *ns = avro_schema_namespace(s);
    const char *name = avro_schema_name(s);
    if (!name)
        return NULL;
    if (!ns || !*ns)
        return tkc_strdup(name);
    size_t n = strlen(ns) + 1 + strlen(name) + 1;
    char *out = tkc_malloc(n);
    snprintf(out, n, "%s.%s", ns, name);
    return out;
}

static char *read_schema_file(const char *dir, const char *file, char *errstr,
                              size_t errstr_size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        tkc_err_set(errstr, errstr_size, "cannot open schema %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = tkc_malloc(CODEC_MAX_SCHEMA_FILE + 1);
    size_t n = fread(buf, 1, CODEC_MAX_SCHEMA_FILE + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > CODEC_MAX_SCHEMA_FILE) {
        tkc_err_set(errstr, errstr_size, "cannot read schema %s: %s", path,
               bad ? "read error" : "larger than 1 MiB");
        tkc_free(buf);
        return NULL;
    }
    buf[n] = '\0';
    /* The text is registered verbatim; trailing newlines are harmless JSON whitespace. */
    return tkc_realloc(buf, n + 1);
}

/* Checks that field @p fs of the record has the type the codec writes. */
static bool slot_matches(avro_schema_t ftype, const fdesc_t *fd, fslot_t *slot)
{
    ftype = deref(ftype);
    switch (fd->type) {
    case F_LONG:
        return avro_typeof(ftype) == AVRO_INT64;
    case F_STRING:
        return avro_typeof(ftype) == AVRO_STRING;
    case F_BYTES:
        return avro_typeof(ftype) == AVRO_BYTES;
    case F_NULLABLE_BYTES:
        if (avro_typeof(ftype) != AVRO_UNION || avro_schema_union_size(ftype) != 2)
            return false;
        slot->null_branch = slot->value_branch = -1;
        for (int b = 0; b < 2; b++) {
            avro_type_t t = avro_typeof(deref(avro_schema_union_branch(ftype, b)));
            if (t == AVRO_NULL)
                slot->null_branch = b;
            else if (t == AVRO_BYTES)
                slot->value_branch = b;
        }
        return slot->null_branch >= 0 && slot->value_branch >= 0;
    case F_OP:
        if (avro_typeof(ftype) != AVRO_ENUM)
            return false;
        slot->put_symbol = avro_schema_enum_get_by_name(ftype, "PUT");
        slot->delete_symbol = avro_schema_enum_get_by_name(ftype, "DELETE");
        return slot->put_symbol >= 0 && slot->delete_symbol >= 0;
    }
    return false;
}

/* Index of the null branch if @p ftype is a union containing null, else -1. */
static int null_branch_of(avro_schema_t ftype)
{
    ftype = deref(ftype);
    if (avro_typeof(ftype) != AVRO_UNION)
        return -1;
    for (size_t b = 0; b < avro_schema_union_size(ftype); b++)
        if (avro_typeof(deref(avro_schema_union_branch(ftype, (int)b))) == AVRO_NULL)
            return (int)b;
    return -1;
}

static bool load_record(rec_t *r, const char *dir, const char *file, const fdesc_t *fields,
                        size_t n_fields, char *errstr, size_t errstr_size)
{
    r->file = file;
    r->fields = fields;
    r->n_fields = n_fields;
    r->text = read_schema_file(dir, file, errstr, errstr_size);
    if (!r->text)
        return false;
    if (avro_schema_from_json_length(r->text, strlen(r->text), &r->schema) != 0) {
        tkc_err_set(errstr, errstr_size, "schema %s/%s is invalid: %.200s", dir, file, avro_strerror());
        r->schema = NULL;
        return false;
    }
    if (avro_typeof(r->schema) != AVRO_RECORD) {
        tkc_err_set(errstr, errstr_size, "schema %s/%s is not a record", dir, file);
        return false;
    }
    r->fullname = full_name(r->schema);
    char cerr[256];
    if (tkc_avro_canonical_fingerprint(r->text, strlen(r->text), &r->fp, cerr, sizeof(cerr))) {
        tkc_err_set(errstr, errstr_size, "schema %s/%s: %s", dir, file, cerr);
        return false;
    }
    r->slots = tkc_calloc(n_fields, sizeof(*r->slots));
    for (size_t i = 0; i < n_fields; i++) {
        int idx = avro_schema_record_field_get_index(r->schema, fields[i].name);
        if (idx < 0) {
            tkc_err_set(errstr, errstr_size, "schema %s/%s lacks field \"%s\"", dir, file,
                   fields[i].name);
            return false;
        }
        r->slots[i].index = idx;
        if (!slot_matches(avro_schema_record_field_get_by_index(r->schema, idx), &fields[i],
                          &r->slots[i])) {
            tkc_err_set(errstr, errstr_size, "schema %s/%s: field \"%s\" has a type this codec "
                   "cannot write", dir, file, fields[i].name);
            return false;
        }
    }
    /* Fields the codec does not know are allowed if they can be null (room to grow). */
    size_t n = avro_schema_record_size(r->schema);
    r->extra_nulls = tkc_calloc(n ? n : 1, sizeof(int));
    for (size_t idx = 0; idx < n; idx++) {
        bool known = false;
        for (size_t i = 0; i < n_fields; i++)
            known |= r->slots[i].index == (int)idx;
        if (known)
            continue;
        if (null_branch_of(avro_schema_record_field_get_by_index(r->schema, (int)idx)) < 0) {
            tkc_err_set(errstr, errstr_size, "schema %s/%s: field \"%s\" is not nullable and not "
                   "written by this codec", dir, file,
                   avro_schema_record_field_name(r->schema, (int)idx));
            return false;
        }
        r->extra_nulls[r->n_extra++] = (int)idx;
    }
    return true;
}

static void rec_free(rec_t *r)
{
    if (r->schema)
        avro_schema_decref(r->schema);
    tkc_free(r->text);
    tkc_free(r->fullname);
    tkc_free(r->slots);
    tkc_free(r->extra_nulls);
}

/* Sets the fields the codec does not write to null, once: generic values keep them. */
static int init_extra_nulls(const rec_t *r, avro_value_t *rec)
{
    for (size_t i = 0; i < r->n_extra; i++) {
        avro_value_t f, br;
        avro_schema_t ft = avro_schema_record_field_get_by_index(r->schema, r->extra_nulls[i]);
        if (avro_value_get_by_index(rec, (size_t)r->extra_nulls[i], &f, NULL) ||
            avro_value_set_branch(&f, null_branch_of(ft), &br) || avro_value_set_null(&br))
            return -1;
    }
    return 0;
}

static void decoder_free(void *p)
{
    decoder_t *d = p;
    avro_value_decref(&d->value);
    avro_value_iface_decref(d->iface);
    avro_schema_decref(d->schema);
    tkc_free(d->branch_kind);
    tkc_free(d);
}

static tkc_avro_msg_kind_t kind_of(const tkc_avro_codec_t *c, avro_schema_t s)
{
    s = deref(s);
    if (avro_typeof(s) != AVRO_RECORD)
        return 0;
    char *name = full_name(s);
    tkc_avro_msg_kind_t k = 0;
    if (name && strcmp(name, c->row.fullname) == 0)
        k = TKC_AVRO_MSG_ROW_CHANGE;
    else if (name && strcmp(name, c->wm.fullname) == 0)
        k = TKC_AVRO_MSG_WATERMARK;
    else if (name && strcmp(name, c->ck.fullname) == 0)
        k = TKC_AVRO_MSG_CHECKPOINT;
    tkc_free(name);
    return k;
}

/* Builds a decoder for writer schema @p schema (a reference is taken). */
static decoder_t *decoder_new(const tkc_avro_codec_t *c, avro_schema_t schema)
{
    decoder_t *d = tkc_calloc(1, sizeof(*d));
    d->schema = avro_schema_incref(schema);
    d->iface = avro_generic_class_from_schema(schema);
    if (!d->iface || avro_generic_value_new(d->iface, &d->value)) {
        if (d->iface)
            avro_value_iface_decref(d->iface);
        avro_schema_decref(d->schema);
        tkc_free(d);
        return NULL;
    }
    if (avro_typeof(schema) == AVRO_UNION) {
        d->is_union = true;
        d->n_branches = avro_schema_union_size(schema);
        d->branch_kind = tkc_calloc(d->n_branches ? d->n_branches : 1, sizeof(*d->branch_kind));
        for (size_t b = 0; b < d->n_branches; b++)
            d->branch_kind[b] = kind_of(c, avro_schema_union_branch(schema, (int)b));
    } else {
        d->kind = kind_of(c, schema);
    }
    return d;
}

static void decoder_put(tkc_avro_codec_t *c, char tag, const void *id, size_t id_len,
                        decoder_t *d)
{
    uint8_t key[1 + 8];
    key[0] = (uint8_t)tag;
    memcpy(key + 1, id, id_len);
    decoder_t *old = tkc_hashmap_put(c->decoders, key, 1 + id_len, d);
    if (old)
        decoder_free(old);
}

static decoder_t *decoder_get(const tkc_avro_codec_t *c, char tag, const void *id, size_t id_len)
{
    uint8_t key[1 + 8];
    key[0] = (uint8_t)tag;
    memcpy(key + 1, id, id_len);
    return tkc_hashmap_get(c->decoders, key, 1 + id_len);
}

tkc_avro_codec_t *tkc_avro_codec_new(const char *schema_dir, tkc_schema_registry_t *registry,
                                     char *errstr, size_t errstr_size)
{
    if (!schema_dir || !*schema_dir) {
        tkc_err_set(errstr, errstr_size, "no schema directory given");
        return NULL;
    }
    tkc_avro_codec_t *c = tkc_calloc(1, sizeof(*c));
    c->registry = registry;
    c->subject_ids = tkc_hashmap_new();
    c->decoders = tkc_hashmap_new();
    if (!load_record(&c->row, schema_dir, TKC_AVRO_CODEC_ROW_CHANGE_FILE, row_fields, R_N,
                     errstr, errstr_size) ||
        !load_record(&c->wm, schema_dir, TKC_AVRO_CODEC_WATERMARK_FILE, wm_fields, W_N, errstr,
                     errstr_size) ||
        !load_record(&c->ck, schema_dir, TKC_AVRO_CODEC_CHECKPOINT_FILE, ck_fields, C_N, errstr,
                     errstr_size))
        goto fail;

    /* The row-topic value schema: the two files' texts as a union, verbatim. */
    size_t n = strlen(c->row.text) + strlen(c->wm.text) + 4;
    c->rt_text = tkc_malloc(n);
    snprintf(c->rt_text, n, "[%s,%s]", c->row.text, c->wm.text);
    if (avro_schema_from_json_length(c->rt_text, strlen(c->rt_text), &c->rt_schema) != 0) {
        tkc_err_set(errstr, errstr_size, "row-topic union of %s and %s is invalid: %s",
               TKC_AVRO_CODEC_ROW_CHANGE_FILE, TKC_AVRO_CODEC_WATERMARK_FILE, avro_strerror());
        c->rt_schema = NULL;
        goto fail;
    }
    char cerr[256];
    if (tkc_avro_canonical_fingerprint(c->rt_text, strlen(c->rt_text), &c->rt_fp, cerr,
                                       sizeof(cerr))) {
        tkc_err_set(errstr, errstr_size, "row-topic union: %s", cerr);
        goto fail;
    }
    c->rt_row_branch = 0;
    c->rt_wm_branch = 1;

    c->rt_iface = avro_generic_class_from_schema(c->rt_schema);
    c->ck_iface = avro_generic_class_from_schema(c->ck.schema);
    if (!c->rt_iface || !c->ck_iface || avro_generic_value_new(c->rt_iface, &c->rt_value) ||
        avro_generic_value_new(c->ck_iface, &c->ck_value)) {
        tkc_err_set(errstr, errstr_size, "avro-c cannot build values: %.200s", avro_strerror());
        goto fail;
    }
    c->rt_current = -1;
    if (init_extra_nulls(&c->ck, &c->ck_value)) {
        tkc_err_set(errstr, errstr_size, "avro-c cannot initialise values: %.200s", avro_strerror());
        goto fail;
    }
    c->scratch_cap = CODEC_SCRATCH_INITIAL;
    c->scratch = tkc_malloc(c->scratch_cap);
    c->writer = avro_writer_memory(NULL, 0);
    c->reader = avro_reader_memory(NULL, 0);
    if (!c->writer || !c->reader) {
        tkc_err_set(errstr, errstr_size, "avro-c cannot create memory reader/writer");
        goto fail;
    }

    /* Decoders for our own schemas by fingerprint: union and plain records. */
    struct {
        avro_schema_t schema;
        uint64_t fp;
    } own[] = {{c->rt_schema, c->rt_fp},
               {c->row.schema, c->row.fp},
               {c->wm.schema, c->wm.fp},
               {c->ck.schema, c->ck.fp}};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        decoder_t *d = decoder_new(c, own[i].schema);
        if (!d) {
            tkc_err_set(errstr, errstr_size, "avro-c cannot build a decoder: %.200s", avro_strerror());
            goto fail;
        }
        decoder_put(c, 'f', &own[i].fp, sizeof(own[i].fp), d);
    }
    tkc_log(TKC_LOG_INFO, CODEC_LOG,
            "event=codec_ready schema_dir=%s framing=%s row_topic_fp=0x%016" PRIx64
            " checkpoint_fp=0x%016" PRIx64,
            schema_dir, registry ? "confluent" : "single-object", c->rt_fp, c->ck.fp);
    return c;
fail:
    tkc_avro_codec_destroy(c);
    return NULL;
}

void tkc_avro_codec_destroy(tkc_avro_codec_t *c)
{
    if (!c)
        return;
    if (c->rt_iface) {
        avro_value_decref(&c->rt_value);
        avro_value_iface_decref(c->rt_iface);
    }
    if (c->ck_iface) {
        avro_value_decref(&c->ck_value);
        avro_value_iface_decref(c->ck_iface);
    }
    if (c->rt_schema)
        avro_schema_decref(c->rt_schema);
    if (c->writer)
        avro_writer_free(c->writer);
    tkc_free(c->scratch);
    if (c->reader)
        avro_reader_free(c->reader);
    tkc_hashmap_destroy(c->subject_ids, NULL);
    tkc_hashmap_destroy(c->decoders, decoder_free);
    tkc_free(c->rt_text);
    rec_free(&c->row);
    rec_free(&c->wm);
    rec_free(&c->ck);
    tkc_free(c);
}

const char *tkc_avro_codec_schema_text(const tkc_avro_codec_t *c, tkc_avro_value_schema_t which)
{
    return which == TKC_AVRO_SCHEMA_CHECKPOINT ? c->ck.text : c->rt_text;
}

uint64_t tkc_avro_codec_fingerprint(const tkc_avro_codec_t *c, tkc_avro_value_schema_t which)
{
    return which == TKC_AVRO_SCHEMA_CHECKPOINT ? c->ck.fp : c->rt_fp;
}

/* ===== encoding ===== */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * The schema id of @p which for @p topic, registering on first use.
 * Called only with a registry and a topic.
 */
static tkc_err_t schema_id(tkc_avro_codec_t *c, const char *topic, tkc_avro_value_schema_t which,
                           uint32_t *id, char *errstr, size_t errstr_size)
{
    size_t tlen = strlen(topic);
    char stack[256];
    char *key = tlen + 1 <= sizeof(stack) ? stack : tkc_malloc(tlen + 1);
    key[0] = (char)which;
    memcpy(key + 1, topic, tlen);
    void *hit = tkc_hashmap_get(c->subject_ids, key, tlen + 1);
    tkc_err_t err = TKC_ERR_OK;
    if (hit) {
        *id = (uint32_t)((uintptr_t)hit - 1);
    } else {
        char *subject = tkc_malloc(tlen + sizeof("-value"));
        memcpy(subject, topic, tlen);
        memcpy(subject + tlen, "-value", sizeof("-value"));
        err = tkc_schema_registry_register(c->registry, subject,
                                           tkc_avro_codec_schema_text(c, which), id, errstr,
                                           errstr_size);
        if (err == TKC_ERR_OK) {
            tkc_hashmap_put(c->subject_ids, key, tlen + 1, (void *)((uintptr_t)*id + 1));
        } else {
            tkc_log(TKC_LOG_ERROR, CODEC_LOG, "event=schema_register_failed subject=\"%s\" "
                    "err=%s", subject, tkc_err2name(err));
        }
        tkc_free(subject);
    }
    if (key != stack)
        tkc_free(key);
    return err;
}

/* Frames and serialises @p value, written with value schema @p which. */
static tkc_err_t finish(tkc_avro_codec_t *c, const char *topic, tkc_avro_value_schema_t which,
                        avro_value_t *value, uint8_t **out, size_t *out_len, char *errstr,
                        size_t errstr_size)
{
    uint8_t hdr[TKC_AVRO_SINGLE_OBJECT_HEADER_LEN];
    size_t hdr_len;
    if (c->registry && topic) {
        uint32_t id;
        tkc_err_t err = schema_id(c, topic, which, &id, errstr, errstr_size);
        if (err)
            return err;
        hdr[0] = 0x00;
        put_be32(hdr + 1, id);
        hdr_len = TKC_AVRO_CONFLUENT_HEADER_LEN;
    } else {
        hdr[0] = 0xC3;
        hdr[1] = 0x01;
        put_le64(hdr + 2, tkc_avro_codec_fingerprint(c, which));
        hdr_len = TKC_AVRO_SINGLE_OBJECT_HEADER_LEN;
    }
    /*
     * One pass: write into the reusable scratch buffer and copy out the
     * exact size. Only a message larger than the scratch is sized first
     * (a second traversal) and the scratch grown to fit it.
     */
    avro_writer_memory_set_dest(c->writer, (const char *)c->scratch + hdr_len,
                                (int64_t)(c->scratch_cap - hdr_len));
    if (avro_value_write(c->writer, value)) {
        size_t need = 0;
        if (avro_value_sizeof(value, &need)) {
            tkc_err_set(errstr, errstr_size, "avro: cannot size message: %.200s", avro_strerror());
            return TKC_ERR_INVALID_ARG;
        }
        tkc_free(c->scratch);
        c->scratch_cap = hdr_len + need;
        c->scratch = tkc_malloc(c->scratch_cap);
        avro_writer_memory_set_dest(c->writer, (const char *)c->scratch + hdr_len,
                                    (int64_t)need);
        if (avro_value_write(c->writer, value)) {
            tkc_err_set(errstr, errstr_size, "avro: cannot write message: %.200s", avro_strerror());
            return TKC_ERR_INVALID_ARG;
        }
    }
    size_t body = (size_t)avro_writer_tell(c->writer);
    memcpy(c->scratch, hdr, hdr_len);
    uint8_t *buf = tkc_memdup(c->scratch, hdr_len + body);
    *out = buf;
    *out_len = hdr_len + body;
    return TKC_ERR_OK;
}

static int set_long(avro_value_t *rec, const fslot_t *s, int64_t v)
{
    avro_value_t f;
    return avro_value_get_by_index(rec, (size_t)s->index, &f, NULL) || avro_value_set_long(&f, v);
}

static int set_string(avro_value_t *rec, const fslot_t *s, const char *v)
{
    avro_value_t f;
    /* avro-c's size includes the terminating NUL (c-deps-notes §4.4) */
    return avro_value_get_by_index(rec, (size_t)s->index, &f, NULL) ||
           avro_value_set_string_len(&f, v, strlen(v) + 1);
}

static int set_bytes(avro_value_t *rec, const fslot_t *s, const uint8_t *p, size_t len)
{
    avro_value_t f;
    /* avro-c refuses a NULL buffer even for zero bytes */
    return avro_value_get_by_index(rec, (size_t)s->index, &f, NULL) ||
           avro_value_set_bytes(&f, p ? (void *)p : (void *)"", len);
}

static int set_nullable_bytes(avro_value_t *rec, const fslot_t *s, bool present,
                              const uint8_t *p, size_t len)
{
    avro_value_t f, br;
    if (avro_value_get_by_index(rec, (size_t)s->index, &f, NULL))
        return -1;
    if (!present)
        return avro_value_set_branch(&f, s->null_branch, &br) || avro_value_set_null(&br);
    return avro_value_set_branch(&f, s->value_branch, &br) ||
           avro_value_set_bytes(&br, p ? (void *)p : (void *)"", len);
}

static int set_op(avro_value_t *rec, const fslot_t *s, tkc_row_op_t op)
{
    avro_value_t f;
    return avro_value_get_by_index(rec, (size_t)s->index, &f, NULL) ||
           avro_value_set_enum(&f, op == TKC_ROW_OP_DELETE ? s->delete_symbol : s->put_symbol);
}

/*
 * Points the row-topic union at @p branch. Switching branches makes avro-c
 * discard the other record, so the fields the codec never writes are set to
 * null again; staying on the branch keeps everything (the common case: runs
 * of rows).
 */
static int select_branch(tkc_avro_codec_t *c, int branch, const rec_t *r, avro_value_t *rec)
{
    if (avro_value_set_branch(&c->rt_value, branch, rec))
        return -1;
    if (c->rt_current != branch) {
        if (init_extra_nulls(r, rec))
            return -1;
        c->rt_current = branch;
    }
    return 0;
}

tkc_err_t tkc_avro_codec_encode_row(tkc_avro_codec_t *c, const char *topic, const char *span_name,
                                    const tkc_row_t *row, uint8_t **out, size_t *out_len,
                                    char *errstr, size_t errstr_size)
{
    if (!row || !span_name || !out || !out_len || (c->registry && !topic)) {
        tkc_err_set(errstr, errstr_size, "encode_row: missing row, span name, output or topic");
        return TKC_ERR_INVALID_ARG;
    }
    if (row->op != TKC_ROW_OP_PUT && row->op != TKC_ROW_OP_DELETE) {
        tkc_err_set(errstr, errstr_size, "encode_row: row op %d is neither PUT nor DELETE", row->op);
        return TKC_ERR_INVALID_ARG;
    }
    const fslot_t *s = c->row.slots;
    avro_value_t rec;
    bool is_delete = row->op == TKC_ROW_OP_DELETE;
    if (select_branch(c, c->rt_row_branch, &c->row, &rec) || set_op(&rec, &s[R_OP], row->op) ||
        set_bytes(&rec, &s[R_KEY], row->key, row->key_len) ||
        set_nullable_bytes(&rec, &s[R_VALUE], !is_delete, row->value, row->value_len) ||
        set_nullable_bytes(&rec, &s[R_OLD], row->has_old_value, row->old_value,
                           row->old_value_len) ||
        set_long(&rec, &s[R_START], (int64_t)row->start_ts) ||
        set_long(&rec, &s[R_COMMIT], (int64_t)row->commit_ts) ||
        set_long(&rec, &s[R_COMMIT_MS], tkc_tso_physical_ms(row->commit_ts)) ||
        set_string(&rec, &s[R_SPAN], span_name) ||
        set_long(&rec, &s[R_REGION], (int64_t)row->region_id)) {
        tkc_err_set(errstr, errstr_size, "avro: cannot set RowChange fields: %.200s", avro_strerror());
        return TKC_ERR_INVALID_ARG;
    }
    return finish(c, topic, TKC_AVRO_SCHEMA_ROW_TOPIC, &c->rt_value, out, out_len, errstr,
                  errstr_size);
}

tkc_err_t tkc_avro_codec_encode_watermark(tkc_avro_codec_t *c, const char *topic,
                                          const char *feed_id, uint64_t resolved_ts,
                                          int64_t emitted_at_ms, uint8_t **out, size_t *out_len,
                                          char *errstr, size_t errstr_size)
{
    if (!feed_id || !out || !out_len || (c->registry && !topic)) {
        tkc_err_set(errstr, errstr_size, "encode_watermark: missing feed id, output or topic");
        return TKC_ERR_INVALID_ARG;
    }
    const fslot_t *s = c->wm.slots;
    avro_value_t rec;
    if (select_branch(c, c->rt_wm_branch, &c->wm, &rec) ||
        set_string(&rec, &s[W_FEED], feed_id) ||
        set_long(&rec, &s[W_TS], (int64_t)resolved_ts) ||
        set_long(&rec, &s[W_TS_MS], tkc_tso_physical_ms(resolved_ts)) ||
        set_long(&rec, &s[W_EMITTED], emitted_at_ms)) {
        tkc_err_set(errstr, errstr_size, "avro: cannot set Watermark fields: %.200s", avro_strerror());
        return TKC_ERR_INVALID_ARG;
    }
    return finish(c, topic, TKC_AVRO_SCHEMA_ROW_TOPIC, &c->rt_value, out, out_len, errstr,
                  errstr_size);
}

tkc_err_t tkc_avro_codec_encode_checkpoint(tkc_avro_codec_t *c, const char *topic,
                                           const char *feed_id, uint64_t checkpoint_ts,
                                           int64_t committed_at_ms, uint64_t epoch,
                                           uint8_t **out, size_t *out_len, char *errstr,
                                           size_t errstr_size)
{
    if (!feed_id || !out || !out_len) {
        tkc_err_set(errstr, errstr_size, "encode_checkpoint: missing feed id or output");
        return TKC_ERR_INVALID_ARG;
    }
    const fslot_t *s = c->ck.slots;
    avro_value_t *rec = &c->ck_value;
    if (set_string(rec, &s[C_FEED], feed_id) ||
        set_long(rec, &s[C_TS], (int64_t)checkpoint_ts) ||
        set_long(rec, &s[C_TS_MS], tkc_tso_physical_ms(checkpoint_ts)) ||
        set_long(rec, &s[C_COMMITTED], committed_at_ms) ||
        set_long(rec, &s[C_EPOCH], (int64_t)epoch)) {
        tkc_err_set(errstr, errstr_size, "avro: cannot set Checkpoint fields: %.200s", avro_strerror());
        return TKC_ERR_INVALID_ARG;
    }
    return finish(c, topic, TKC_AVRO_SCHEMA_CHECKPOINT, rec, out, out_len, errstr, errstr_size);
}

/* ===== validation of untrusted input ===== */

typedef struct cursor_s {
    const uint8_t *p, *end;
    int depth;
    size_t empty_items;
} cursor_t;

static bool read_varint(cursor_t *cur, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (cur->p >= cur->end)
            return false;
        uint8_t b = *cur->p++;
        if (shift == 63 && (b & 0x7e))
            return false; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    return false;
}

static bool skip(cursor_t *cur, int64_t n)
{
    if (n < 0 || n > cur->end - cur->p)
        return false;
    cur->p += n;
    return true;
}

/* Smallest encoding of a value of @p s, 0 or 1 being all that matters here. */
static int min_size(avro_schema_t s, int depth)
{
    s = deref(s);
    if (depth > 8)
        return 0;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_FIXED:
        return avro_schema_fixed_size(s) > 0;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (min_size(avro_schema_record_field_get_by_index(s, (int)i), depth + 1))
                return 1;
        return 0;
    default:
        return 1; /* everything else takes at least one byte */
    }
}

static bool validate(avro_schema_t s, cursor_t *cur);

static bool validate_blocks(avro_schema_t item, bool map, cursor_t *cur)
{
    bool empty = !map && min_size(item, 0) == 0;
    for (;;) {
        int64_t count;
        if (!read_varint(cur, &count))
            return false;
        if (count == 0)
            return true;
        if (count < 0) {
            int64_t block_bytes;
            if (count == INT64_MIN || !read_varint(cur, &block_bytes) || block_bytes < 0 ||
                block_bytes > cur->end - cur->p)
                return false;
            count = -count;
        }
        if (empty) {
            /* Items that take no bytes cannot be bounded by the input length. */
            if ((uint64_t)count > CODEC_MAX_EMPTY_ITEMS - cur->empty_items)
                return false;
            cur->empty_items += (size_t)count;
        } else if (count > cur->end - cur->p) {
            return false;
        }
        for (int64_t i = 0; i < count; i++) {
            if (map) {
                int64_t klen;
                if (!read_varint(cur, &klen) || !skip(cur, klen))
                    return false;
            }
            if (!validate(item, cur))
                return false;
        }
    }
}

static bool validate(avro_schema_t s, cursor_t *cur)
{
    s = deref(s);
    if (++cur->depth > CODEC_MAX_DEPTH)
        return false;
    bool ok = true;
    int64_t v;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        break;
    case AVRO_BOOLEAN:
        ok = cur->p < cur->end && *cur->p <= 1;
        cur->p += ok;
        break;
    case AVRO_INT32:
        ok = read_varint(cur, &v) && v >= INT32_MIN && v <= INT32_MAX;
        break;
    case AVRO_INT64:
        ok = read_varint(cur, &v);
        break;
    case AVRO_FLOAT:
        ok = skip(cur, 4);
        break;
    case AVRO_DOUBLE:
        ok = skip(cur, 8);
        break;
    case AVRO_BYTES:
    case AVRO_STRING:
        ok = read_varint(cur, &v) && skip(cur, v);
        break;
    case AVRO_FIXED:
        ok = skip(cur, avro_schema_fixed_size(s));
        break;
    case AVRO_ENUM:
        ok = read_varint(cur, &v) && v >= 0 && v < avro_schema_enum_number_of_symbols(s);
        break;
    case AVRO_UNION:
        ok = read_varint(cur, &v) && v >= 0 && (uint64_t)v < avro_schema_union_size(s) &&
             validate(avro_schema_union_branch(s, (int)v), cur);
        break;
    case AVRO_RECORD:
        for (size_t i = 0; ok && i < avro_schema_record_size(s); i++)
            ok = validate(avro_schema_record_field_get_by_index(s, (int)i), cur);
        break;
    case AVRO_ARRAY:
        ok = validate_blocks(avro_schema_array_items(s), false, cur);
        break;
    case AVRO_MAP:
        ok = validate_blocks(avro_schema_map_values(s), true, cur);
        break;
    default:
        ok = false;
    }
    cur->depth--;
    return ok;
}

/* ===== decoding ===== */

static tkc_err_t find_decoder(tkc_avro_codec_t *c, const uint8_t *buf, size_t len,
                              tkc_avro_message_t *msg, decoder_t **dec, size_t *hdr_len,
                              char *errstr, size_t errstr_size)
{
    if (len >= TKC_AVRO_CONFLUENT_HEADER_LEN && buf[0] == 0x00) {
        uint32_t id = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 |
                      buf[4];
        msg->framing = TKC_AVRO_FRAMING_CONFLUENT;
        msg->schema_id = id;
        *hdr_len = TKC_AVRO_CONFLUENT_HEADER_LEN;
        *dec = decoder_get(c, 'i', &id, sizeof(id));
        if (*dec)
            return TKC_ERR_OK;
        if (!c->registry) {
            tkc_err_set(errstr, errstr_size, "message names schema id %" PRIu32 " but no schema "
                   "registry is configured", id);
            return TKC_ERR_NOT_FOUND;
        }
        char *text = NULL;
        tkc_err_t err = tkc_schema_registry_get_schema(c->registry, id, &text, errstr,
                                                       errstr_size);
        if (err)
            return err;
        avro_schema_t schema;
        if (avro_schema_from_json_length(text, strlen(text), &schema) != 0) {
            tkc_err_set(errstr, errstr_size, "schema id %" PRIu32 " from the registry cannot be "
                   "parsed: %s", id, avro_strerror());
            tkc_free(text);
            return TKC_ERR_INCOMPATIBLE;
        }
        tkc_free(text);
        *dec = decoder_new(c, schema);
        avro_schema_decref(schema);
        if (!*dec) {
            tkc_err_set(errstr, errstr_size, "avro-c cannot build a decoder for schema id %" PRIu32,
                   id);
            return TKC_ERR_INCOMPATIBLE;
        }
        decoder_put(c, 'i', &id, sizeof(id), *dec);
        return TKC_ERR_OK;
    }
    if (len >= TKC_AVRO_SINGLE_OBJECT_HEADER_LEN && buf[0] == 0xC3 && buf[1] == 0x01) {
        uint64_t fp = 0;
        for (int i = 0; i < 8; i++)
            fp |= (uint64_t)buf[2 + i] << (8 * i);
        msg->framing = TKC_AVRO_FRAMING_SINGLE_OBJECT;
        msg->fingerprint = fp;
        *hdr_len = TKC_AVRO_SINGLE_OBJECT_HEADER_LEN;
        *dec = decoder_get(c, 'f', &fp, sizeof(fp));
        if (*dec)
            return TKC_ERR_OK;
        tkc_err_set(errstr, errstr_size, "message names schema fingerprint 0x%016" PRIx64
               ", which is none of this codec's schemas", fp);
        return TKC_ERR_NOT_FOUND;
    }
    tkc_err_set(errstr, errstr_size, "not a framed Avro message (%zu bytes, first 0x%02x): neither "
           "Confluent (00 + id) nor single-object (C3 01 + fingerprint)", len,
           len ? buf[0] : 0);
    return TKC_ERR_CORRUPT;
}

/* A field of @p rec by name; a union is unwrapped to its current branch. */
static bool field(avro_value_t *rec, const char *name, avro_value_t *out, bool *is_null)
{
    if (avro_value_get_by_name(rec, name, out, NULL))
        return false;
    *is_null = false;
    if (avro_value_get_type(out) == AVRO_UNION) {
        avro_value_t br;
        if (avro_value_get_current_branch(out, &br))
            return false;
        *out = br;
    }
    if (avro_value_get_type(out) == AVRO_NULL)
        *is_null = true;
    return true;
}

typedef struct getter_s {
    avro_value_t *rec;
    const char *kind;
    const char *missing; /* first missing/mistyped field */
} getter_t;

static int64_t get_long(getter_t *g, const char *name)
{
    avro_value_t f;
    bool is_null;
    int64_t v = 0;
    int32_t i32;
    if (!field(g->rec, name, &f, &is_null) || is_null) {
        g->missing = g->missing ? g->missing : name;
        return 0;
    }
    if (avro_value_get_type(&f) == AVRO_INT64 && avro_value_get_long(&f, &v) == 0)
        return v;
    if (avro_value_get_type(&f) == AVRO_INT32 && avro_value_get_int(&f, &i32) == 0)
        return i32;
    g->missing = g->missing ? g->missing : name;
    return 0;
}

/* @returns a malloc'd copy of the string field (NULL with g->missing set). */
static char *get_string(getter_t *g, const char *name)
{
    avro_value_t f;
    bool is_null;
    const char *s;
    size_t size;
    if (!field(g->rec, name, &f, &is_null) || is_null || avro_value_get_type(&f) != AVRO_STRING ||
        avro_value_get_string(&f, &s, &size)) {
        g->missing = g->missing ? g->missing : name;
        return NULL;
    }
    return tkc_strndup(s, size ? size - 1 : 0); /* size counts the NUL */
}

/* Bytes field; *present false for null. @returns false if absent or mistyped. */
static bool get_bytes(getter_t *g, const char *name, bool nullable, const void **p, size_t *len,
                      bool *present)
{
    avro_value_t f;
    bool is_null;
    *p = NULL;
    *len = 0;
    *present = false;
    if (!field(g->rec, name, &f, &is_null)) {
        if (nullable) /* a writer without the field: as if null */
            return true;
        g->missing = g->missing ? g->missing : name;
        return false;
    }
    if (is_null) {
        if (!nullable)
            g->missing = g->missing ? g->missing : name;
        return nullable;
    }
    if (avro_value_get_type(&f) != AVRO_BYTES || avro_value_get_bytes(&f, p, len)) {
        g->missing = g->missing ? g->missing : name;
        return false;
    }
    *present = true;
    return true;
}

static tkc_err_t extract_row(avro_value_t *rec, tkc_avro_row_change_t *out, char *errstr,
                             size_t errstr_size)
{
    getter_t g = {rec, "RowChange", NULL};
    avro_value_t f;
    bool is_null;
    tkc_row_op_t op = TKC_ROW_OP_UNKNOWN;
    int sym;
    if (field(rec, "op", &f, &is_null) && !is_null && avro_value_get_type(&f) == AVRO_ENUM &&
        avro_value_get_enum(&f, &sym) == 0) {
        const char *name = avro_schema_enum_get(avro_value_get_schema(&f), sym);
        if (name && strcmp(name, "PUT") == 0)
            op = TKC_ROW_OP_PUT;
        else if (name && strcmp(name, "DELETE") == 0)
            op = TKC_ROW_OP_DELETE;
        if (op == TKC_ROW_OP_UNKNOWN) {
            tkc_err_set(errstr, errstr_size, "RowChange has op \"%s\", which this codec does not "
                   "know", name ? name : "?");
            return TKC_ERR_INCOMPATIBLE;
        }
    } else {
        g.missing = "op";
    }
    const void *key, *value, *old;
    size_t key_len, value_len, old_len;
    bool key_present, has_value, has_old;
    get_bytes(&g, "key", false, &key, &key_len, &key_present);
    get_bytes(&g, "value", true, &value, &value_len, &has_value);
    get_bytes(&g, "old_value", true, &old, &old_len, &has_old);
    int64_t start_ts = get_long(&g, "start_ts");
    int64_t commit_ts = get_long(&g, "commit_ts");
    int64_t region_id = get_long(&g, "region_id");
    char *span = get_string(&g, "span");
    /* commit_time_ms is derived data: tolerate writers without it */
    getter_t g2 = {rec, "RowChange", NULL};
    int64_t commit_ms = get_long(&g2, "commit_time_ms");
    if (g2.missing)
        commit_ms = tkc_tso_physical_ms((uint64_t)commit_ts);
    if (g.missing) {
        tkc_free(span);
        tkc_err_set(errstr, errstr_size, "RowChange field \"%s\" is missing or has another type",
               g.missing);
        return TKC_ERR_INCOMPATIBLE;
    }
    out->row = tkc_row_new(op, key, key_len, value, value_len, old, old_len);
    out->row->has_old_value = has_old;
    out->row->start_ts = (uint64_t)start_ts;
    out->row->commit_ts = (uint64_t)commit_ts;
    out->row->region_id = (uint64_t)region_id;
    out->has_value = has_value;
    out->span = span;
    out->commit_time_ms = commit_ms;
    return TKC_ERR_OK;
}

static tkc_err_t extract_watermark(avro_value_t *rec, tkc_avro_watermark_t *out, char *errstr,
                                   size_t errstr_size)
{
    getter_t g = {rec, "Watermark", NULL};
    int64_t ts = get_long(&g, "resolved_ts");
    int64_t emitted = get_long(&g, "emitted_at_ms");
    char *feed = get_string(&g, "feed_id");
    getter_t g2 = {rec, "Watermark", NULL};
    int64_t ts_ms = get_long(&g2, "resolved_time_ms");
    if (g.missing) {
        tkc_free(feed);
        tkc_err_set(errstr, errstr_size, "Watermark field \"%s\" is missing or has another type",
               g.missing);
        return TKC_ERR_INCOMPATIBLE;
    }
    out->feed_id = feed;
    out->resolved_ts = (uint64_t)ts;
    out->resolved_time_ms = g2.missing ? tkc_tso_physical_ms((uint64_t)ts) : ts_ms;
    out->emitted_at_ms = emitted;
    return TKC_ERR_OK;
}

static tkc_err_t extract_checkpoint(avro_value_t *rec, tkc_avro_checkpoint_t *out, char *errstr,
                                    size_t errstr_size)
{
    getter_t g = {rec, "Checkpoint", NULL};
    int64_t ts = get_long(&g, "checkpoint_ts");
    int64_t committed = get_long(&g, "committed_at_ms");
    int64_t epoch = get_long(&g, "epoch");
    char *feed = get_string(&g, "feed_id");
    getter_t g2 = {rec, "Checkpoint", NULL};
    int64_t ts_ms = get_long(&g2, "checkpoint_time_ms");
    if (g.missing) {
        tkc_free(feed);
        tkc_err_set(errstr, errstr_size, "Checkpoint field \"%s\" is missing or has another type",
               g.missing);
        return TKC_ERR_INCOMPATIBLE;
    }
    out->feed_id = feed;
    out->checkpoint_ts = (uint64_t)ts;
    out->checkpoint_time_ms = g2.missing ? tkc_tso_physical_ms((uint64_t)ts) : ts_ms;
    out->committed_at_ms = committed;
    out->epoch = (uint64_t)epoch;
    return TKC_ERR_OK;
}

tkc_err_t tkc_avro_codec_decode(tkc_avro_codec_t *c, const void *vbuf, size_t len,
                                tkc_avro_message_t *out, char *errstr, size_t errstr_size)
{
    const uint8_t *buf = vbuf;
    memset(out, 0, sizeof(*out));
    if (!buf && len) {
        tkc_err_set(errstr, errstr_size, "decode: NULL buffer");
        return TKC_ERR_INVALID_ARG;
    }
    decoder_t *d = NULL;
    size_t hdr = 0;
    tkc_err_t err = find_decoder(c, buf, len, out, &d, &hdr, errstr, errstr_size);
    if (err) {
        tkc_avro_message_clear(out);
        return err;
    }
    cursor_t cur = {buf + hdr, buf + len, 0, 0};
    if (!validate(d->schema, &cur) || cur.p != cur.end) {
        tkc_err_set(errstr, errstr_size, "corrupt Avro message: %s at byte %zu of %zu",
               cur.p == cur.end ? "truncated or malformed" : "malformed or trailing data",
               (size_t)(cur.p - buf), len);
        tkc_avro_message_clear(out);
        return TKC_ERR_CORRUPT;
    }
    avro_reader_memory_set_source(c->reader, (const char *)buf + hdr, (int64_t)(len - hdr));
    if (avro_value_read(c->reader, &d->value)) {
        tkc_err_set(errstr, errstr_size, "corrupt Avro message: %.200s", avro_strerror());
        tkc_avro_message_clear(out);
        return TKC_ERR_CORRUPT;
    }
    avro_value_t rec = d->value;
    tkc_avro_msg_kind_t kind = d->kind;
    if (d->is_union) {
        int disc;
        if (avro_value_get_discriminant(&d->value, &disc) ||
            avro_value_get_current_branch(&d->value, &rec) || disc < 0 ||
            (size_t)disc >= d->n_branches) {
            tkc_err_set(errstr, errstr_size, "corrupt Avro message: no union branch");
            tkc_avro_message_clear(out);
            return TKC_ERR_CORRUPT;
        }
        kind = d->branch_kind[disc];
    }
    switch (kind) {
    case TKC_AVRO_MSG_ROW_CHANGE:
        err = extract_row(&rec, &out->row_change, errstr, errstr_size);
        break;
    case TKC_AVRO_MSG_WATERMARK:
        err = extract_watermark(&rec, &out->watermark, errstr, errstr_size);
        break;
    case TKC_AVRO_MSG_CHECKPOINT:
        err = extract_checkpoint(&rec, &out->checkpoint, errstr, errstr_size);
        break;
    default: {
        const char *name = avro_schema_name(deref(avro_value_get_schema(&rec)));
        tkc_err_set(errstr, errstr_size, "message is a %s, not a %s, %s or %s",
               name ? name : avro_schema_type_name(avro_value_get_schema(&rec)), c->row.fullname,
               c->wm.fullname, c->ck.fullname);
        err = TKC_ERR_INCOMPATIBLE;
    }
    }
    if (err) {
        tkc_avro_message_clear(out);
        return err;
    }
    out->kind = kind;
    return TKC_ERR_OK;
}

static tkc_err_t decode_kind(tkc_avro_codec_t *c, const void *buf, size_t len,
                             tkc_avro_msg_kind_t want, tkc_avro_message_t *msg, char *errstr,
                             size_t errstr_size)
{
    tkc_err_t err = tkc_avro_codec_decode(c, buf, len, msg, errstr, errstr_size);
    if (err)
        return err;
    if (msg->kind != want) {
        tkc_err_set(errstr, errstr_size, "message is a %s, not a %s",
               tkc_avro_msg_kind_name(msg->kind), tkc_avro_msg_kind_name(want));
        tkc_avro_message_clear(msg);
        return TKC_ERR_INVALID_ARG;
    }
    return TKC_ERR_OK;
}

tkc_err_t tkc_avro_codec_decode_row(tkc_avro_codec_t *c, const void *buf, size_t len,
                                    tkc_avro_row_change_t *out, char *errstr,
                                    size_t errstr_size)
{
    tkc_avro_message_t msg;
    memset(out, 0, sizeof(*out));
    tkc_err_t err = decode_kind(c, buf, len, TKC_AVRO_MSG_ROW_CHANGE, &msg, errstr, errstr_size);
    if (!err)
        *out = msg.row_change;
    return err;
}

tkc_err_t tkc_avro_codec_decode_watermark(tkc_avro_codec_t *c, const void *buf, size_t len,
                                          tkc_avro_watermark_t *out, char *errstr,
                                          size_t errstr_size)
{
    tkc_avro_message_t msg;
    memset(out, 0, sizeof(*out));
    tkc_err_t err = decode_kind(c, buf, len, TKC_AVRO_MSG_WATERMARK, &msg, errstr, errstr_size);
    if (!err)
        *out = msg.watermark;
    return err;
}

tkc_err_t tkc_avro_codec_decode_checkpoint(tkc_avro_codec_t *c, const void *buf, size_t len,
                                           tkc_avro_checkpoint_t *out, char *errstr,
                                           size_t errstr_size)
{
    tkc_avro_message_t msg;
    memset(out, 0, sizeof(*out));
    tkc_err_t err = decode_kind(c, buf, len, TKC_AVRO_MSG_CHECKPOINT, &msg, errstr,
                                errstr_size);
    if (!err)
        *out = msg.checkpoint;
    return err;
}
