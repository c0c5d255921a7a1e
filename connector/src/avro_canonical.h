/*
 * avro_canonical.h: Avro Parsing Canonical Form and the CRC-64-AVRO (Rabin)
 * fingerprint, which avro-c 1.11 does not provide.
 *
 * The fingerprint names a schema in Avro single-object encoding
 * (C3 01 + fingerprint, little-endian). It must match what other
 * implementations compute, so the canonical form follows the specification
 * ("Parsing Canonical Form for Schemas") and Java's SchemaNormalization:
 * primitives in simple form, full names, only the attributes name, type,
 * fields, symbols, items, values, size in that order, no whitespace.
 * logicalType is stripped (Java does so; Python avro 1.11 does not, so its
 * fingerprints of schemas with logical types differ from ours and Java's).
 */
#ifndef TKC_AVRO_CANONICAL_H
#define TKC_AVRO_CANONICAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/** The fingerprint of the empty byte string (the Rabin polynomial's seed). */
#define TKC_AVRO_CANONICAL_CRC64_EMPTY 0xc15d213aa4d7a795ULL

/**
 * @brief CRC-64-AVRO fingerprint of @p len bytes at @p data.
 * @locality any thread
 */
uint64_t tkc_avro_canonical_crc64(const void *data, size_t len);

/**
 * @brief Computes the Parsing Canonical Form of the schema JSON text.
 *
 * Validates what the form depends on: type names, name syntax, references
 * to defined named types, no redefinition, fields/symbols/items/values/size
 * present and well-typed.
 *
 * @param json    schema text, @p len bytes, need not be NUL-terminated
 * @param out     on success a NUL-terminated string owned by the caller,
 *                free with tkc_free()
 * @param out_len optional: its length
 * @returns TKC_ERR_OK, or TKC_ERR_INVALID_ARG with a message in @p errstr
 * @locality any thread
 */
tkc_err_t tkc_avro_canonical_form(const char *json, size_t len, char **out, size_t *out_len,
                                  char *errstr, size_t errstr_size);

/**
 * @brief CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form.
 * @returns as tkc_avro_canonical_form()
 * @locality any thread
 */
tkc_err_t tkc_avro_canonical_fingerprint(const char *json, size_t len, uint64_t *fp,
                                         char *errstr, size_t errstr_size);

#endif
