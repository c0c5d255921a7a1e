/*
 * conf_int.h: what conf.c (loading, validation, dump) and conf_value.c
 * (typed values) share. Only conf*.c include it.
 */
#ifndef TKC_CONF_INT_H
#define TKC_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/** Trims white space at both ends, in place; @returns the new start. */
char *conf_trim(char *s);

/** The field of @p k inside @p c. */
void *conf_field(tkc_conf_t *c, const tkc_conf_key_t *k);

/**
 * Sets key @p k of @p c from the text @p raw. Lists replace, or with
 * @p append add to what is there (continuation lines). On failure @p c is
 * unchanged and @p errstr says why, without location.
 * @returns 0 or -1.
 */
int conf_key_set(tkc_conf_t *c, const tkc_conf_key_t *k, const char *raw, bool append,
                 char *errstr, size_t errstr_size);

/** Frees what key @p k owns in @p c. */
void conf_key_free(tkc_conf_t *c, const tkc_conf_key_t *k);

void conf_strlist_free(tkc_conf_strlist_t *l);

/** host:port / [v6]:port with port >= @p min_port. @returns 0 or -1 (errstr). */
int conf_check_hostport(const char *s, int min_port, char *errstr, size_t errstr_size);

/** Byte-wise key order (shorter first on a common prefix). */
int conf_key_cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

#endif
