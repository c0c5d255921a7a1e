/*
 * ratelimit.c: per-key windows in a fixed open-addressing table.
 *
 * Why windows and not a token bucket: the question an operator asks of a
 * flood of identical warnings is "how many, over what time", and a window
 * per key answers it in one summary line; a bucket would let a steady
 * trickle through and never say how much it dropped.
 *
 * A slot holds the key's 64-bit FNV-1a hash (the identity used for
 * matching), a cut copy of the key (for the summary), the window start and
 * length, and the count of events suppressed in it. Lookup probes a few
 * slots from the hash; a full probe sequence evicts the slot whose window
 * started first. An evicted slot with a pending count is moved to a small
 * overflow list so its summary is not lost; if even that list is full, the
 * count is added to a single "(evicted)" total.
 *
 * The logger's limiter is one process-wide instance created on first use
 * (pthread_once); the lines it writes go through tkc_log_write(), so they
 * inherit the format (kv or json) and the single write(2) per line.
 */
#include "util/ratelimit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

#define PROBES 8
#define OVERFLOW_MAX 32

typedef struct rl_slot_s {
    uint64_t hash; /* 0: empty */
    char key[TKC_RATELIMIT_KEY_MAX + 1];
    int64_t start_ms;
    int64_t interval_ms;
    uint64_t suppressed; /* in the current window, not yet reported */
} rl_slot_t;

typedef struct rl_pending_s {
    char key[TKC_RATELIMIT_KEY_MAX + 1];
    uint64_t count;
    int64_t interval_ms;
} rl_pending_t;

struct tkc_ratelimit_s {
    pthread_mutex_t lock;
    int64_t default_interval_ms;
    size_t n_slots;
    rl_slot_t *slots;
    rl_pending_t overflow[OVERFLOW_MAX];
    size_t n_overflow;
    uint64_t evicted_lost; /* counts that found no room in overflow */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1; /* 0 marks an empty slot */
}

tkc_ratelimit_t *tkc_ratelimit_new(int64_t default_interval_ms, size_t slots)
{
    tkc_ratelimit_t *rl = tkc_calloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->lock, NULL);
    rl->default_interval_ms = default_interval_ms > 0 ? default_interval_ms : 10000;
    rl->n_slots = slots < 8 ? 8 : slots;
    rl->slots = tkc_calloc(rl->n_slots, sizeof(rl_slot_t));
    return rl;
}

void tkc_ratelimit_destroy(tkc_ratelimit_t *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    tkc_free(rl->slots);
    tkc_free(rl);
}

static void slot_evict(tkc_ratelimit_t *rl, rl_slot_t *s)
{
    if (s->suppressed) {
        if (rl->n_overflow < OVERFLOW_MAX) {
            rl_pending_t *p = &rl->overflow[rl->n_overflow++];
            memcpy(p->key, s->key, sizeof(p->key));
            p->count = s->suppressed;
            p->interval_ms = s->interval_ms;
        } else {
            rl->evicted_lost += s->suppressed;
        }
    }
    memset(s, 0, sizeof(*s));
}

bool tkc_ratelimit_check(tkc_ratelimit_t *rl, const char *key, int64_t interval_ms, int64_t now_ms,
                         uint64_t *suppressed)
{
    uint64_t h = fnv1a(key);
    bool pass;
    pthread_mutex_lock(&rl->lock);
    rl_slot_t *found = NULL, *empty = NULL, *oldest = NULL;
    for (size_t i = 0; i < PROBES && i < rl->n_slots; i++) {
        rl_slot_t *s = &rl->slots[(h + i) % rl->n_slots];
        if (s->hash == h) {
            found = s;
            break;
        }
        if (s->hash == 0) {
            if (!empty)
                empty = s;
        } else if (!oldest || s->start_ms < oldest->start_ms) {
            oldest = s;
        }
    }
    if (found && now_ms - found->start_ms < found->interval_ms) {
        found->suppressed++;
        pass = false;
    } else {
        if (!found) {
            found = empty;
            if (!found) {
                slot_evict(rl, oldest);
                found = oldest;
            }
            found->hash = h;
            snprintf(found->key, sizeof(found->key), "%s", key);
        }
        if (suppressed)
            *suppressed = found->suppressed;
        found->suppressed = 0;
        found->start_ms = now_ms;
        found->interval_ms = interval_ms > 0 ? interval_ms : rl->default_interval_ms;
        pass = true;
    }
    pthread_mutex_unlock(&rl->lock);
    return pass;
}

size_t tkc_ratelimit_flush(tkc_ratelimit_t *rl, int64_t now_ms, tkc_ratelimit_summary_cb *cb,
                           void *opaque)
{
    size_t n = 0;
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < rl->n_slots; i++) {
        rl_slot_t *s = &rl->slots[i];
        if (s->hash && s->suppressed && now_ms - s->start_ms >= s->interval_ms) {
            cb(opaque, s->key, s->suppressed, s->interval_ms);
            s->suppressed = 0;
            n++;
        }
    }
    for (size_t i = 0; i < rl->n_overflow; i++, n++)
        cb(opaque, rl->overflow[i].key, rl->overflow[i].count, rl->overflow[i].interval_ms);
    rl->n_overflow = 0;
    if (rl->evicted_lost) {
        cb(opaque, "(evicted)", rl->evicted_lost, rl->default_interval_ms);
        rl->evicted_lost = 0;
        n++;
    }
    pthread_mutex_unlock(&rl->lock);
    return n;
}

/* ===== the logger's limiter ===== */

static pthread_once_t log_rl_once = PTHREAD_ONCE_INIT;
static tkc_ratelimit_t *log_rl;
static atomic_llong log_rl_interval = 10000;
static _Atomic int64_t log_rl_last_flush;

static void log_rl_init(void)
{
    /* Lives for the whole process, like the logger itself. */
    log_rl = tkc_ratelimit_new(10000, 1024);
}

void tkc_log_ratelimit_set_interval(int64_t interval_ms)
{
    if (interval_ms > 0)
        atomic_store(&log_rl_interval, interval_ms);
}

static void log_summary(void *opaque, const char *key, uint64_t count, int64_t interval_ms)
{
    (void)opaque;
    tkc_log_write(TKC_LOG_WARN, "log",
                  "event=log_suppressed key=\"%s\" count=%" PRIu64 " interval_ms=%" PRId64, key,
                  count, interval_ms);
}

size_t tkc_log_ratelimit_flush(void)
{
    pthread_once(&log_rl_once, log_rl_init);
    int64_t now = tkc_clock_mono_ms();
    atomic_store(&log_rl_last_flush, now);
    return tkc_ratelimit_flush(log_rl, now, log_summary, NULL);
}

void tkc_log_ratelimited(tkc_log_level_t level, const char *comp, const char *key,
                         int64_t interval_ms, const char *fmt, ...)
{
    pthread_once(&log_rl_once, log_rl_init);
    int64_t now = tkc_clock_mono_ms();
    if (interval_ms <= 0)
        interval_ms = atomic_load(&log_rl_interval);
    uint64_t suppressed = 0;
    bool pass = tkc_ratelimit_check(log_rl, key, interval_ms, now, &suppressed);
    if (pass) {
        char msg[1536];
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (w < 0)
            msg[0] = '\0';
        if (suppressed)
            tkc_log_write(level, comp, "%s suppressed=%" PRIu64, msg, suppressed);
        else
            tkc_log_write(level, comp, "%s", msg);
    }
    /* Summaries of other keys whose burst stopped; at most once a second so
     * a warning site never scans the table more often than that. */
    int64_t last = atomic_load(&log_rl_last_flush);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&log_rl_last_flush, &last, now))
        tkc_ratelimit_flush(log_rl, now, log_summary, NULL);
}
