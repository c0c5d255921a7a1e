/*
 * msgq.c: bounded MPSC pointer queue (see msgq.h). A ring buffer that grows
 * by doubling; the byte budget, not the ring size, bounds it.
 */
#include "util/msgq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "util/mem.h"

typedef struct {
    void *item;
    size_t bytes;
} slot_t;

struct tkc_msgq_s {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    slot_t *ring;
    size_t cap, head, count;
    size_t bytes, max_bytes;
    bool closed;
};

tkc_msgq_t *tkc_msgq_new(size_t max_bytes)
{
    tkc_msgq_t *q = tkc_calloc(1, sizeof(*q));
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = 64;
    q->ring = tkc_calloc(q->cap, sizeof(slot_t));
    q->max_bytes = max_bytes;
    return q;
}

void tkc_msgq_destroy(tkc_msgq_t *q, void (*free_item)(void *item))
{
    if (!q)
        return;
    for (size_t i = 0; i < q->count; i++) {
        void *it = q->ring[(q->head + i) % q->cap].item;
        if (free_item)
            free_item(it);
    }
    tkc_free(q->ring);
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
    tkc_free(q);
}

static void grow(tkc_msgq_t *q)
{
    slot_t *r = tkc_calloc(q->cap * 2, sizeof(slot_t));
    for (size_t i = 0; i < q->count; i++)
        r[i] = q->ring[(q->head + i) % q->cap];
    tkc_free(q->ring);
    q->ring = r;
    q->head = 0;
    q->cap *= 2;
}

tkc_err_t tkc_msgq_try_push(tkc_msgq_t *q, void *item, size_t bytes)
{
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return TKC_ERR_STOPPED;
    }
    if (q->count > 0 && q->bytes + bytes > q->max_bytes) {
        pthread_mutex_unlock(&q->lock);
        return TKC_ERR_QUEUE_FULL;
    }
    if (q->count == q->cap)
        grow(q);
    q->ring[(q->head + q->count) % q->cap] = (slot_t){item, bytes};
    q->count++;
    q->bytes += bytes;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return TKC_ERR_OK;
}

void *tkc_msgq_pop(tkc_msgq_t *q, int timeout_ms, size_t *bytes_out)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == 0 && !q->closed && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (q->count == 0 && !q->closed)
                pthread_cond_wait(&q->nonempty, &q->lock);
        } else {
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += timeout_ms / 1000;
            dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            while (q->count == 0 && !q->closed)
                if (pthread_cond_timedwait(&q->nonempty, &q->lock, &dl) == ETIMEDOUT)
                    break;
        }
    }
    void *item = NULL;
    if (q->count > 0) {
        slot_t s = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        q->bytes -= s.bytes;
        item = s.item;
        if (bytes_out)
            *bytes_out = s.bytes;
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

void tkc_msgq_close(tkc_msgq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

size_t tkc_msgq_bytes(tkc_msgq_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t b = q->bytes;
    pthread_mutex_unlock(&q->lock);
    return b;
}

size_t tkc_msgq_count(tkc_msgq_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t c = q->count;
    pthread_mutex_unlock(&q->lock);
    return c;
}

size_t tkc_msgq_max_bytes(const tkc_msgq_t *q)
{
    return q->max_bytes;
}

int tkc_msgq_has_room(tkc_msgq_t *q, size_t bytes)
{
    pthread_mutex_lock(&q->lock);
    int ok = q->count == 0 || q->bytes + bytes <= q->max_bytes;
    pthread_mutex_unlock(&q->lock);
    return ok;
}
