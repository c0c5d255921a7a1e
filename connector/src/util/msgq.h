/*
 * msgq.h: a bounded multi-producer, single-consumer queue of pointers.
 *
 * Bounded by bytes (each item says what it weighs), not by count, so that
 * a few huge rows and many small ones are limited alike. Producers never
 * block: a push that would exceed the budget fails with TKC_ERR_QUEUE_FULL
 * and the producer applies flow control upstream (the feed workers stop
 * asking their gRPC streams for more messages) and retries later. One item
 * is always accepted into an empty queue, whatever its weight, so a single
 * oversized item cannot wedge the queue. The consumer waits with a timeout.
 *
 * Items of one producer come out in the order that producer pushed them.
 * Thread: any; internally one mutex and one condition variable.
 */
#ifndef TKC_UTIL_MSGQ_H
#define TKC_UTIL_MSGQ_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct tkc_msgq_s tkc_msgq_t;

tkc_msgq_t *tkc_msgq_new(size_t max_bytes);
/** Frees the queue; items still in it are passed to @p free_item (may be NULL). */
void tkc_msgq_destroy(tkc_msgq_t *q, void (*free_item)(void *item));

/**
 * Appends @p item weighing @p bytes. @returns TKC_ERR_OK (ownership moves to
 * the queue), TKC_ERR_QUEUE_FULL (nothing happened) or TKC_ERR_STOPPED after
 * tkc_msgq_close().
 */
tkc_err_t tkc_msgq_try_push(tkc_msgq_t *q, void *item, size_t bytes);

/**
 * Takes the oldest item, waiting up to @p timeout_ms (0: do not wait, <0:
 * forever). @returns the item (ownership to the caller) or NULL on timeout
 * or when the queue is closed and empty. *@p bytes_out (may be NULL)
 * receives its weight.
 */
void *tkc_msgq_pop(tkc_msgq_t *q, int timeout_ms, size_t *bytes_out);

/** Wakes the consumer and makes later pushes fail with TKC_ERR_STOPPED. */
void tkc_msgq_close(tkc_msgq_t *q);

/** Bytes and items queued now, and the budget. */
size_t tkc_msgq_bytes(tkc_msgq_t *q);
size_t tkc_msgq_count(tkc_msgq_t *q);
size_t tkc_msgq_max_bytes(const tkc_msgq_t *q);
/** True while a push of @p bytes would be accepted (a hint; may change). */
int tkc_msgq_has_room(tkc_msgq_t *q, size_t bytes);

#endif
