/*
 * feed_event.h: what the feed hands to the pipeline.
 *
 * The feed workers push tkc_feed_event_t items into one bounded tkc_msgq_t
 * (util/msgq.h); the pipeline thread pops them. Ordering contract: every
 * worker pushes a region's rows before any resolved event that covers them
 * (both come off the same gRPC stream in that order, and one worker owns a
 * region at a time), so when the pipeline's frontier says the feed is
 * resolved at R, every row with commit_ts <= R has already been popped.
 *
 * When the queue is full the workers stop issuing RECV_MESSAGE on their
 * streams: flow control reaches TiKV instead of memory growing here.
 */
#ifndef TKC_FEED_EVENT_H
#define TKC_FEED_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "util/err.h"

typedef enum {
    TKC_FEED_EVENT_ROWS = 1,     /* committed rows of one region, in commit order of arrival */
    TKC_FEED_EVENT_RESOLVED = 2, /* regions resolved at ts */
    TKC_FEED_EVENT_ERROR = 3,    /* the feed stopped: a fatal error */
} tkc_feed_event_kind_t;

/** One region's piece of a span: ENCODED [start, end) clipped to the span. */
typedef struct {
    uint64_t region_id;
    uint8_t *start; /* owned by the event (in its key blocks) */
    size_t start_len;
    uint8_t *end;   /* owned by the event (in its key blocks); len 0 = +inf */
    size_t end_len;
} tkc_feed_region_range_t;

typedef struct tkc_feed_event_s {
    tkc_feed_event_kind_t kind;
    uint32_t span_index; /* which subscribed span (ROWS, RESOLVED) */

    /* ROWS: a list linked through row->next; owned by the event */
    tkc_row_t *rows;
    tkc_row_t *rows_tail;
    size_t n_rows;

    /* RESOLVED: every listed region is resolved at ts (never lower than a
     * ts reported before for the same range) */
    uint64_t ts;
    tkc_feed_region_range_t *regions; /* owned by the event */
    size_t n_regions;
    void *key_blocks_; /* private: the blocks holding the regions' keys */

    /* ERROR */
    tkc_err_t err;
    char message[512];

    size_t bytes; /* the weight used for the queue budget */
} tkc_feed_event_t;

tkc_feed_event_t *tkc_feed_event_new(tkc_feed_event_kind_t kind, uint32_t span_index);
/** Appends @p row (ownership moves to the event) to a ROWS event. */
void tkc_feed_event_add_row(tkc_feed_event_t *ev, tkc_row_t *row);
/** Appends a copy of a region range to a RESOLVED event. */
void tkc_feed_event_add_region(tkc_feed_event_t *ev, uint64_t region_id, const uint8_t *start,
                               size_t start_len, const uint8_t *end, size_t end_len);
/** Frees the event and everything it owns (rows still attached included). */
void tkc_feed_event_destroy(tkc_feed_event_t *ev);
/** For tkc_msgq_destroy(). */
void tkc_feed_event_free(void *ev);

#endif
