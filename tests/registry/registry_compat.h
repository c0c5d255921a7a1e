/*
 * registry_compat.h: Avro schema parsing and compatibility checks for the
 * test schema registry, following the Avro specification's schema
 * resolution rules (what Java's SchemaCompatibility, which Confluent's
 * registry uses, decides).
 *
 * "reader can read writer" holds when data written with the writer schema
 * can be read with the reader schema:
 *   - same primitive, or a promotion: int -> long/float/double,
 *     long -> float/double, float -> double, string <-> bytes;
 *   - records with the same unqualified name (or a reader alias): every
 *     reader field either exists in the writer (by name or reader alias)
 *     with a readable type, or has a default; writer-only fields are skipped;
 *   - enums with the same name: every writer symbol is a reader symbol,
 *     unless the reader has an enum default;
 *   - fixed with the same name and size; arrays/maps by their item types;
 *   - a writer union: every branch readable; a reader union: some branch
 *     reads the writer.
 *
 * Levels (Confluent): BACKWARD = the new schema reads data of the latest
 * version; FORWARD = the latest version reads data of the new one; FULL =
 * both; *_TRANSITIVE = against every version; NONE = no check.
 */
#ifndef TKC_REGISTRY_COMPAT_H
#define TKC_REGISTRY_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tkc_registry_compat_schema_s tkc_registry_compat_schema_t;

typedef enum {
    TKC_REGISTRY_COMPAT_NONE = 0,
    TKC_REGISTRY_COMPAT_BACKWARD,
    TKC_REGISTRY_COMPAT_BACKWARD_TRANSITIVE,
    TKC_REGISTRY_COMPAT_FORWARD,
    TKC_REGISTRY_COMPAT_FORWARD_TRANSITIVE,
    TKC_REGISTRY_COMPAT_FULL,
    TKC_REGISTRY_COMPAT_FULL_TRANSITIVE,
} tkc_registry_compat_level_t;

/** "NONE", "BACKWARD", ... */
const char *tkc_registry_compat_level_name(tkc_registry_compat_level_t level);
/** Parses a level name (case-sensitive, as Confluent); @returns 0 or -1. */
int tkc_registry_compat_level_parse(const char *name, tkc_registry_compat_level_t *out);

/**
 * @brief Parses and validates an Avro schema (names, references, defaults).
 * @returns the schema (free with tkc_registry_compat_schema_free()) or NULL
 *          with the reason in @p errstr.
 */
tkc_registry_compat_schema_t *tkc_registry_compat_parse(const char *text, size_t len,
                                                        char *errstr, size_t errstr_size);
void tkc_registry_compat_schema_free(tkc_registry_compat_schema_t *s);

/**
 * The schema's identity for "same schema, same id": its JSON compacted with
 * object keys sorted (whitespace and key order do not matter; docs,
 * defaults and logical types do, as in Confluent's registry).
 */
const char *tkc_registry_compat_normalized(const tkc_registry_compat_schema_t *s);

/**
 * @brief Whether data written with @p writer can be read with @p reader.
 * @param error_type on false: Java's error type name, e.g.
 *                   "READER_FIELD_MISSING_DEFAULT_VALUE" (static string)
 * @param desc       on false: a description with the path of the problem
 */
bool tkc_registry_compat_can_read(const tkc_registry_compat_schema_t *reader,
                                  const tkc_registry_compat_schema_t *writer,
                                  const char **error_type, char *desc, size_t desc_size);

/**
 * @brief Checks @p candidate against the subject's versions (oldest first)
 *        under @p level.
 * @param bad_version on false: index into @p versions of the version it
 *                    conflicts with
 * @returns true when compatible; false with error type and description.
 */
bool tkc_registry_compat_check(tkc_registry_compat_level_t level,
                               const tkc_registry_compat_schema_t *candidate,
                               const tkc_registry_compat_schema_t *const *versions,
                               size_t n_versions, size_t *bad_version, const char **error_type,
                               char *desc, size_t desc_size);

#endif
