/*
 * row.c: allocation of tkc_row_t and the names of the row enums.
 *
 * A row is one allocation: the struct, then key, value and old value bytes.
 * That keeps the hand-over between threads to one pointer, makes the byte
 * count for the memory quota exact (alloc_size), and frees in one call.
 * Rows are immutable once emitted; no locking is needed.
 */
#include "row.h"

#include <string.h>

#include "util/mem.h"

const char *tkc_row_op_name(int op)
{
    static const char *const names[] = {"UNKNOWN", "PUT", "DELETE"};
    return op >= 0 && op < (int)(sizeof(names) / sizeof(names[0])) ? names[op] : "?";
}

const char *tkc_feed_log_name(int type)
{
    static const char *const names[] = {"UNKNOWN",   "PREWRITE",  "COMMIT",
                                        "ROLLBACK",  "COMMITTED", "INITIALIZED"};
    return type >= 0 && type < (int)(sizeof(names) / sizeof(names[0])) ? names[type] : "?";
}

tkc_row_t *tkc_row_new(tkc_row_op_t op, const uint8_t *key, size_t key_len, const uint8_t *value,
                       size_t value_len, const uint8_t *old_value, size_t old_value_len)
{
    size_t size = sizeof(tkc_row_t) + key_len + value_len + old_value_len;
    tkc_row_t *row = tkc_malloc(size);
    memset(row, 0, sizeof(*row));
    row->op = op;
    row->alloc_size = size;
    uint8_t *p = row->data;
    /* empty strings point at the (valid) end of the block, never NULL */
    row->key = p;
    row->key_len = key_len;
    if (key_len)
        memcpy(p, key, key_len);
    p += key_len;
    row->value = p;
    row->value_len = value_len;
    if (value_len)
        memcpy(p, value, value_len);
    p += value_len;
    row->old_value = p;
    row->old_value_len = old_value_len;
    if (old_value_len)
        memcpy(p, old_value, old_value_len);
    return row;
}

void tkc_row_destroy(tkc_row_t *row)
{
    tkc_free(row);
}
