/* feed_event.c: construction and release of the feed's output events. */
#include "feed_event.h"

#include <string.h>

#include "util/mem.h"

tkc_feed_event_t *tkc_feed_event_new(tkc_feed_event_kind_t kind, uint32_t span_index)
{
    tkc_feed_event_t *ev = tkc_calloc(1, sizeof(*ev));
    ev->kind = kind;
    ev->span_index = span_index;
    ev->bytes = sizeof(*ev);
    return ev;
}

void tkc_feed_event_add_row(tkc_feed_event_t *ev, tkc_row_t *row)
{
    /* Keep arrival order: append at the tail. */
    row->next = NULL;
    if (ev->rows_tail)
        ev->rows_tail->next = row;
    else
        ev->rows = row;
    ev->rows_tail = row;
    ev->n_rows++;
    ev->bytes += tkc_row_size(row);
}

void tkc_feed_event_add_region(tkc_feed_event_t *ev, uint64_t region_id, const uint8_t *start,
                               size_t start_len, const uint8_t *end, size_t end_len)
{
    if ((ev->n_regions & (ev->n_regions - 1)) == 0) /* 0, 1, 2, 4, ...: grow */
        ev->regions = tkc_realloc(ev->regions,
                                  (ev->n_regions ? ev->n_regions * 2 : 1) * sizeof(*ev->regions));
    tkc_feed_region_range_t *r = &ev->regions[ev->n_regions++];
    r->region_id = region_id;
    r->start = tkc_memdup(start, start_len);
    r->start_len = start_len;
    r->end = tkc_memdup(end, end_len);
    r->end_len = end_len;
    ev->bytes += sizeof(*r) + start_len + end_len;
}

void tkc_feed_event_destroy(tkc_feed_event_t *ev)
{
    if (!ev)
        return;
    tkc_row_t *r = ev->rows;
    while (r) {
        tkc_row_t *next = r->next;
        tkc_row_destroy(r);
        r = next;
    }
    for (size_t i = 0; i < ev->n_regions; i++) {
        tkc_free(ev->regions[i].start);
        tkc_free(ev->regions[i].end);
    }
    tkc_free(ev->regions);
    tkc_free(ev);
}

void tkc_feed_event_free(void *ev)
{
    tkc_feed_event_destroy(ev);
}
