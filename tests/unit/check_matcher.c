/*
 * check_matcher.c: unit tests of matcher (tikv-cdc-protocol.md §4, §5.1).
 *
 * Table-driven: every case is a list of steps (an Event.Row put, or a
 * resolved ts offered) with the rows each step must emit, in order, and the
 * error it must return. One case per rule of §4 plus the scenarios 8-11 of
 * §7; the loop test runs each case in its own forked child.
 */
#include "matcher.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit/check_main.h"
#include "util/keycodec.h"
#include "util/mem.h"

/* ===== the table ===== */

#define MAX_EMIT 4
#define MAX_STEPS 16

typedef struct want_s {
    const char *key, *value, *old;
    uint64_t start_ts, commit_ts;
    tkc_row_op_t op;
} want_t;

typedef struct step_s {
    tkc_feed_log_t type;
    tkc_row_op_t op;
    const char *key, *value, *old;
    uint64_t start_ts, commit_ts, gen;
    uint64_t resolve; /* non-zero: offer this resolved ts instead of a row */
    bool want_advanced;
    tkc_err_t want_err;
    want_t emit[MAX_EMIT];
} step_t;

typedef struct case_s {
    const char *name;
    uint64_t span_start_ts;
    uint64_t checkpoint_ts;
    step_t steps[MAX_STEPS];
    /* expected state at the end */
    size_t prewrites, cached_commits, cached_rollbacks;
} case_t;

#define PUT TKC_ROW_OP_PUT
#define DEL TKC_ROW_OP_DELETE
/* rows */
#define PW(k, v, o, s, ...)                                                                 \
    {.type = TKC_FEED_LOG_PREWRITE, .op = PUT, .key = k, .value = v, .old = o,             \
     .start_ts = s, __VA_ARGS__}
#define PWD(k, o, s, ...)                                                                   \
    {.type = TKC_FEED_LOG_PREWRITE, .op = DEL, .key = k, .old = o, .start_ts = s, __VA_ARGS__}
#define PWG(k, v, o, s, g, ...)                                                             \
    {.type = TKC_FEED_LOG_PREWRITE, .op = PUT, .key = k, .value = v, .old = o,             \
     .start_ts = s, .gen = g, __VA_ARGS__}
#define CM(k, s, c, ...)                                                                    \
    {.type = TKC_FEED_LOG_COMMIT, .op = PUT, .key = k, .start_ts = s, .commit_ts = c,      \
     __VA_ARGS__}
#define CMD(k, s, c, ...)                                                                   \
    {.type = TKC_FEED_LOG_COMMIT, .op = DEL, .key = k, .start_ts = s, .commit_ts = c,      \
     __VA_ARGS__}
#define CTD(k, v, o, s, c, ...)                                                             \
    {.type = TKC_FEED_LOG_COMMITTED, .op = PUT, .key = k, .value = v, .old = o,            \
     .start_ts = s, .commit_ts = c, __VA_ARGS__}
#define RB(k, s, ...) {.type = TKC_FEED_LOG_ROLLBACK, .key = k, .start_ts = s, __VA_ARGS__}
#define INIT(...) {.type = TKC_FEED_LOG_INITIALIZED, __VA_ARGS__}
#define RESOLVE(ts, adv) {.resolve = ts, .want_advanced = adv}
/* expectations */
#define EMIT(...) .emit = {__VA_ARGS__}
#define ROW(k, v, o, s, c)                                                                  \
    {.key = k, .value = v, .old = o, .start_ts = s, .commit_ts = c, .op = PUT}
#define DROW(k, o, s, c)                                                                    \
    {.key = k, .value = NULL, .old = o, .start_ts = s, .commit_ts = c, .op = DEL}
#define ERR(e) .want_err = e

/*
 * The subscribed range is raw ["b", "y") (encoded by the runner); keys
 * "a..." and "z..." are outside. span_start_ts 10 and checkpoint 20 unless a
 * case says otherwise.
 */
static const case_t cases[] = {
    {
        .name = "rule1+2: prewrite then commit after init emits value and old value",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            CM("k1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
        },
    },
    {
        .name = "rule2: prewrite then commit before init is emitted at once",
        .steps = {
            PW("k1", "v1", "o1", 30),
            CM("k1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
            INIT(),
        },
    },
    {
        .name = "scenario 8a: commit before the scan's prewrite is emitted after init",
        .steps = {
            CM("k1", 30, 40),
            PW("k1", "v1", "o1", 30),
            INIT(EMIT(ROW("k1", "v1", "o1", 30, 40))),
        },
    },
    {
        .name = "scenario 8b: cached commit without prewrite, COMMITTED scanned: one row, no error",
        .steps = {
            CM("k1", 30, 40),
            CTD("k1", "v1", "o1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
            INIT(),
            PW("k2", "v2", "", 50),
            CM("k2", 50, 60, EMIT(ROW("k2", "v2", "", 50, 60))),
        },
    },
    {
        .name = "rule5: init replays cached commits in arrival order, unmatched ignored",
        .steps = {
            CM("k3", 30, 41),
            CM("k1", 31, 42),
            CM("k9", 32, 43), /* never prewritten: already COMMITTED in the scan */
            CM("k2", 33, 44),
            PW("k2", "v2", "o2", 33),
            PW("k1", "v1", "o1", 31),
            PW("k3", "v3", "o3", 30),
            INIT(EMIT(ROW("k3", "v3", "o3", 30, 41), ROW("k1", "v1", "o1", 31, 42),
                      ROW("k2", "v2", "o2", 33, 44))),
        },
    },
    {
        .name = "scenario 10: heartbeat prewrite with empty value keeps the real one",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            PW("k1", NULL, "o1", 30), /* fake: value empty, old value set */
            PW("k1", NULL, NULL, 30),
            CM("k1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
        },
    },
    {
        .name = "scenario 10: a repeated prewrite with a value replaces (same generation)",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            PW("k1", "v1b", "o1", 30),
            CM("k1", 30, 40, EMIT(ROW("k1", "v1b", "o1", 30, 40))),
        },
    },
    {
        .name = "scenario 10: pipelined prewrites, the larger generation wins",
        .steps = {
            INIT(),
            PWG("k1", "g1", "o", 30, 1),
            PWG("k1", "g3", "o", 30, 3),
            PWG("k1", "g2", "o", 30, 2), /* late, lower generation */
            CM("k1", 30, 40, EMIT(ROW("k1", "g3", "o", 30, 40))),
        },
    },
    {
        .name = "rule2: a generation > 0 prewrite is not used before init",
        .steps = {
            PWG("k1", "g1", "o", 30, 1),
            CM("k1", 30, 40),
            PWG("k1", "g2", "o", 30, 2),
            INIT(EMIT(ROW("k1", "g2", "o", 30, 40))),
        },
    },
    {
        .name = "rule2: an empty-value prewrite is not used before init (delete)",
        .steps = {
            PWD("k1", "old", 30),
            CMD("k1", 30, 40),
            INIT(EMIT(DROW("k1", "old", 30, 40))),
        },
    },
    {
        .name = "rule2: an empty-value prewrite is used after init (delete)",
        .steps = {
            INIT(),
            PWD("k1", "old", 30),
            CMD("k1", 30, 40, EMIT(DROW("k1", "old", 30, 40))),
        },
    },
    {
        .name = "scenario 9: commit without prewrite after init is an error, no row",
        .steps = {
            INIT(),
            CM("k1", 30, 40, ERR(TKC_MATCHER_ERR_PREWRITE_NOT_MATCH)),
            PW("k2", "v2", "", 50, ERR(TKC_MATCHER_ERR_FAILED)),
            CM("k2", 50, 60, ERR(TKC_MATCHER_ERR_FAILED)),
            RESOLVE(100, false),
        },
        .prewrites = 0,
    },
    {
        .name = "scenario 9: prewrite for another start ts does not match",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 29),
            CM("k1", 30, 40, ERR(TKC_MATCHER_ERR_PREWRITE_NOT_MATCH)),
        },
        .prewrites = 1,
    },
    {
        .name = "rule2: commit_ts <= span start ts is dropped after matching",
        .span_start_ts = 50,
        .checkpoint_ts = 50,
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            CM("k1", 30, 45),
            CM("k1", 30, 45, ERR(TKC_MATCHER_ERR_PREWRITE_NOT_MATCH)), /* entry was consumed */
        },
    },
    {
        .name = "rule2: commit_ts == span start ts is dropped, above is emitted",
        .span_start_ts = 50,
        .checkpoint_ts = 50,
        .steps = {
            PW("k1", "v1", "o1", 30),
            PW("k2", "v2", "o2", 31),
            CM("k1", 30, 50),
            CM("k2", 31, 51, EMIT(ROW("k2", "v2", "o2", 31, 51))),
            INIT(),
        },
    },
    {
        .name = "rule2+5: cached commit at or below span start ts is dropped at init",
        .span_start_ts = 50,
        .checkpoint_ts = 50,
        .steps = {
            CM("k1", 30, 45),
            CM("k2", 31, 55),
            PW("k1", "v1", "o1", 30),
            PW("k2", "v2", "o2", 31),
            INIT(EMIT(ROW("k2", "v2", "o2", 31, 55))),
        },
    },
    {
        .name = "rule2: commit_ts <= resolved ts is an invariant violation",
        .steps = {
            INIT(),
            RESOLVE(100, true),
            PW("k1", "v1", "o1", 90),
            CM("k1", 90, 100, ERR(TKC_MATCHER_ERR_RESOLVED_TS)),
        },
    },
    {
        .name = "rule2: before init the checkpoint ts is the resolved ts",
        .span_start_ts = 10,
        .checkpoint_ts = 60,
        .steps = {
            PW("k1", "v1", "o1", 30),
            CM("k1", 30, 55, ERR(TKC_MATCHER_ERR_RESOLVED_TS)),
        },
    },
    {
        .name = "rule2: commit just above resolved ts is fine",
        .steps = {
            INIT(),
            RESOLVE(100, true),
            PW("k1", "v1", "o1", 90),
            CM("k1", 90, 101, EMIT(ROW("k1", "v1", "o1", 90, 101))),
        },
    },
    {
        .name = "rule3: COMMITTED is emitted as is, before and after init",
        .steps = {
            CTD("k1", "v1", "o1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
            INIT(),
            CTD("k2", "v2", "", 50, 60, EMIT(ROW("k2", "v2", "", 50, 60))),
        },
    },
    {
        .name = "rule3: COMMITTED at or below resolved ts is an invariant violation",
        .steps = {
            INIT(),
            RESOLVE(100, true),
            CTD("k1", "v1", "o1", 30, 100, ERR(TKC_MATCHER_ERR_RESOLVED_TS)),
        },
    },
    {
        .name = "rule3: COMMITTED at or below checkpoint before init is a violation",
        .steps = {
            CTD("k1", "v1", "o1", 15, 20, ERR(TKC_MATCHER_ERR_RESOLVED_TS)),
        },
    },
    {
        .name = "rule3: COMMITTED with an unknown op is an error",
        .steps = {
            {.type = TKC_FEED_LOG_COMMITTED, .op = TKC_ROW_OP_UNKNOWN, .key = "k1", .start_ts = 30,
             .commit_ts = 40, ERR(TKC_MATCHER_ERR_UNKNOWN_OP)},
        },
    },
    {
        .name = "rule2: COMMIT with an unknown op is an error",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_UNKNOWN, .key = "k1", .start_ts = 30,
             .commit_ts = 40, ERR(TKC_MATCHER_ERR_UNKNOWN_OP)},
        },
    },
    {
        .name = "scenario 11 / rule4: rollback after init drops the prewrite",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            PW("k2", "v2", "o2", 30),
            RB("k1", 30),
            RB("k3", 30), /* nothing pending: no-op */
        },
        .prewrites = 1,
    },
    {
        .name = "scenario 11 / rule4: rollback before init is cached, applied at init",
        .steps = {
            PW("k1", "v1", "o1", 30),
            RB("k1", 30),
            PW("k2", "v2", "o2", 31),
        },
        .prewrites = 2,
        .cached_rollbacks = 1,
    },
    {
        .name = "scenario 11 / rule4+5: init applies cached rollbacks after the commits",
        .steps = {
            PW("k1", "v1", "o1", 30),
            RB("k1", 30),
            RB("k2", 31), /* overlapped rollback: arrives before its (scan) prewrite */
            PW("k2", "v2", "o2", 31),
            PW("k3", "v3", "o3", 32),
            INIT(),
            CM("k1", 30, 40, ERR(TKC_MATCHER_ERR_PREWRITE_NOT_MATCH)),
        },
        .prewrites = 1, /* k3 */
    },
    {
        .name = "scenario 11: nothing is emitted for a rolled-back transaction",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            PW("k2", "v2", "o2", 30),
            RB("k1", 30),
            RB("k2", 30),
            RESOLVE(50, true),
        },
        .prewrites = 0,
    },
    {
        .name = "rows outside the range are dropped, even commits after init",
        .steps = {
            PW("a1", "v", "o", 30),
            PW("z1", "v", "o", 30),
            CTD("a2", "v", "o", 30, 40),
            INIT(),
            CM("a1", 30, 40), /* would be prewrite-not-match if in range */
            CM("z1", 30, 40),
            CTD("y", "v", "o", 30, 40),   /* end key is exclusive */
            CTD("b", "v", "o", 30, 40, EMIT(ROW("b", "v", "o", 30, 40))), /* start inclusive */
            RB("zz", 30),
        },
        .prewrites = 0,
    },
    {
        .name = "rule2: commits of several keys of one transaction",
        .steps = {
            INIT(),
            PW("k1", "v1", "o1", 30),
            PW("k2", "v2", "o2", 30),
            PWD("k3", "o3", 30),
            CM("k2", 30, 40, EMIT(ROW("k2", "v2", "o2", 30, 40))),
            CMD("k3", 30, 40, EMIT(DROW("k3", "o3", 30, 40))),
            CM("k1", 30, 40, EMIT(ROW("k1", "v1", "o1", 30, 40))),
        },
    },
    {
        .name = "resolved ts: ignored before init, then only forward",
        .steps = {
            RESOLVE(50, false),
            INIT(),
            RESOLVE(20, false), /* == checkpoint */
            RESOLVE(60, true),
            RESOLVE(55, false), /* fallen back */
            RESOLVE(60, false), /* same again: not an advance, not an error */
            RESOLVE(70, true),
        },
    },
    {
        .name = "caches hold until init, then drain",
        .steps = {
            CM("k1", 30, 40),
            CM("k2", 31, 41),
            RB("k3", 32),
            PW("k4", "v4", "o4", 33),
        },
        .prewrites = 1,
        .cached_commits = 2,
        .cached_rollbacks = 1,
    },
    {
        .name = "unknown log type is ignored",
        .steps = {
            {.type = TKC_FEED_LOG_UNKNOWN, .key = "k1"},
            {.type = (tkc_feed_log_t)42, .key = "k1"},
            INIT(),
        },
    },
};

#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* ===== runner ===== */

typedef struct sink_s {
    tkc_row_t *rows[64];
    size_t n;
} sink_t;

static void sink_emit(void *opaque, tkc_row_t *row)
{
    sink_t *s = opaque;
    if (s->n >= 64)
        ck_abort_msg("more than 64 rows emitted by one step");
    s->rows[s->n++] = row;
}

static void sink_clear(sink_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        tkc_row_destroy(s->rows[i]);
    s->n = 0;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static void check_bytes(const char *what, const uint8_t *got, size_t got_len, const char *want,
                        const char *cname, int step)
{
    size_t wl = slen(want);
    ck_assert_msg(got_len == wl && (wl == 0 || memcmp(got, want, wl) == 0),
                  "%s: step %d: %s is '%.*s', want '%s'", cname, step, what, (int)got_len,
                  (const char *)got, want ? want : "");
}

typedef struct range_s {
    uint8_t start[64], end[64];
    size_t start_len, end_len;
} range_t;

static void encode_range(range_t *r, const char *start, const char *end)
{
    r->start_len = tkc_keycodec_encoded_len(strlen(start));
    tkc_keycodec_encode((const uint8_t *)start, strlen(start), r->start);
    r->end_len = end ? tkc_keycodec_encoded_len(strlen(end)) : 0;
    if (end)
        tkc_keycodec_encode((const uint8_t *)end, strlen(end), r->end);
}

/* the spill store new_matcher() gives its matchers (NULL: none) */
static tkc_prewrite_spill_t *g_spill;

static tkc_matcher_t *new_matcher(const case_t *c, range_t *r)
{
    encode_range(r, "b", "y");
    tkc_matcher_conf_t conf = {
        .region_id = 7,
        .span_index = 3,
        .start = r->start,
        .start_len = r->start_len,
        .end = r->end,
        .end_len = r->end_len,
        .span_start_ts = c->span_start_ts ? c->span_start_ts : 10,
        .checkpoint_ts = c->checkpoint_ts ? c->checkpoint_ts : 20,
        .spill = g_spill,
    };
    return tkc_matcher_new(&conf);
}

static void feed_row(tkc_feed_row_t *fr, const step_t *s)
{
    memset(fr, 0, sizeof(*fr));
    fr->type = s->type;
    fr->op = s->op;
    fr->key = (const uint8_t *)s->key;
    fr->key_len = slen(s->key);
    fr->value = (const uint8_t *)s->value;
    fr->value_len = slen(s->value);
    fr->old_value = (const uint8_t *)s->old;
    fr->old_value_len = slen(s->old);
    fr->has_old_value = s->type == TKC_FEED_LOG_PREWRITE || s->type == TKC_FEED_LOG_COMMITTED;
    fr->start_ts = s->start_ts;
    fr->commit_ts = s->commit_ts;
    fr->generation = s->gen;
}

static void run_case(const case_t *c)
{
    range_t r;
    tkc_matcher_t *m = new_matcher(c, &r);
    sink_t sink = {.n = 0};
    for (int i = 0; i < MAX_STEPS; i++) {
        const step_t *s = &c->steps[i];
        if (s->resolve) {
            bool adv = tkc_matcher_resolve(m, s->resolve);
            ck_assert_msg(adv == s->want_advanced, "%s: step %d: resolve(%" PRIu64 ") -> %d",
                          c->name, i, s->resolve, adv);
            if (adv)
                ck_assert_uint_eq(tkc_matcher_resolved_ts(m), s->resolve);
            continue;
        }
        if (!s->key && s->type == TKC_FEED_LOG_UNKNOWN)
            break; /* end of steps */
        tkc_feed_row_t fr;
        feed_row(&fr, s);
        char errstr[256] = "";
        tkc_err_t err = tkc_matcher_put(m, &fr, sink_emit, &sink, errstr, sizeof(errstr));
        ck_assert_msg(err == s->want_err, "%s: step %d (%s %s): err %s (%s), want %s", c->name, i,
                      tkc_feed_log_name(s->type), s->key ? s->key : "", tkc_err2name(err), errstr,
                      tkc_err2name(s->want_err));
        if (err != TKC_ERR_OK)
            ck_assert_msg(errstr[0] != '\0', "%s: step %d: error without description", c->name, i);
        size_t want_n = 0;
        while (want_n < MAX_EMIT && s->emit[want_n].key)
            want_n++;
        ck_assert_msg(sink.n == want_n, "%s: step %d: %zu rows emitted, want %zu", c->name, i,
                      sink.n, want_n);
        for (size_t j = 0; j < sink.n; j++) {
            const tkc_row_t *row = sink.rows[j];
            const want_t *w = &s->emit[j];
            check_bytes("key", row->key, row->key_len, w->key, c->name, i);
            check_bytes("value", row->value, row->value_len, w->value, c->name, i);
            check_bytes("old value", row->old_value, row->old_value_len, w->old, c->name, i);
            ck_assert_uint_eq(row->start_ts, w->start_ts);
            ck_assert_uint_eq(row->commit_ts, w->commit_ts);
            ck_assert_int_eq(row->op, w->op);
            ck_assert_uint_eq(row->region_id, 7);
            ck_assert_uint_eq(row->span_index, 3);
            ck_assert(row->has_old_value);
            ck_assert_uint_eq(tkc_row_size(row), sizeof(tkc_row_t) + row->key_len +
                                                     row->value_len + row->old_value_len);
        }
        sink_clear(&sink);
    }
    tkc_matcher_stats_t st;
    tkc_matcher_get_stats(m, &st);
    ck_assert_msg(st.prewrites == c->prewrites, "%s: %zu prewrites left, want %zu", c->name,
                  st.prewrites, c->prewrites);
    ck_assert_msg(st.cached_commits == c->cached_commits, "%s: %zu cached commits, want %zu",
                  c->name, st.cached_commits, c->cached_commits);
    ck_assert_msg(st.cached_rollbacks == c->cached_rollbacks, "%s: %zu cached rollbacks, want %zu",
                  c->name, st.cached_rollbacks, c->cached_rollbacks);
    if (g_spill)
        ck_assert_msg(st.spilled_prewrites == st.prewrites, "%s: %zu of %zu prewrites spilled",
                      c->name, st.spilled_prewrites, st.prewrites);
    tkc_matcher_destroy(m);
}

START_TEST(test_matcher_table)
{
    run_case(&cases[_i]);
}
END_TEST

/*
 * The same table with every prewrite spilled (budget 0, no minimum size):
 * the rules see a stub exactly like the row it stands for (fake empty
 * prewrites, generations, cached commits), emitted rows are byte-exact, and
 * destroying the matcher gives back every charged byte and record.
 */
START_TEST(test_matcher_table_spilled)
{
    char dir[] = "/tmp/tkc-matcher-spill-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    atomic_size_t shared;
    atomic_init(&shared, 0);
    char e[256] = "";
    g_spill = tkc_prewrite_spill_new(dir, &shared, 0, e, sizeof(e));
    ck_assert_msg(g_spill != NULL, "%s", e);
    rmdir(dir); /* the file is anonymous: the directory is not needed any more */
    tkc_prewrite_spill_set_min(g_spill, 0);
    run_case(&cases[_i]);
    tkc_prewrite_spill_stats_t st;
    tkc_prewrite_spill_get_stats(g_spill, &st);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.file_bytes, 0);
    ck_assert_uint_eq(atomic_load(&shared), 0);
    tkc_prewrite_spill_destroy(g_spill);
    g_spill = NULL;
}
END_TEST

/* ===== targeted tests ===== */

static void put_ok(tkc_matcher_t *m, tkc_feed_row_t *fr, sink_t *sink)
{
    char errstr[256] = "";
    tkc_err_t err = tkc_matcher_put(m, fr, sink_emit, sink, errstr, sizeof(errstr));
    ck_assert_msg(err == TKC_ERR_OK, "put: %s %s", tkc_err2name(err), errstr);
}

/* Memory accounting: bytes grow with pending data and return to the base. */
START_TEST(test_matcher_bytes)
{
    case_t c = {.name = "bytes"};
    range_t r;
    tkc_matcher_t *m = new_matcher(&c, &r);
    sink_t sink = {.n = 0};
    size_t base = tkc_matcher_bytes(m);
    ck_assert_uint_gt(base, 0);

    static uint8_t big[10000];
    memset(big, 'x', sizeof(big));
    tkc_feed_row_t fr = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)"k1", .key_len = 2, .value = big,
                         .value_len = sizeof(big), .old_value = big, .old_value_len = 500,
                         .has_old_value = true, .start_ts = 30};
    put_ok(m, &fr, &sink);
    size_t with_pw = tkc_matcher_bytes(m);
    ck_assert_uint_ge(with_pw, base + sizeof(big) + 500);

    tkc_feed_row_t cm = {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)"k2", .key_len = 2, .start_ts = 31,
                         .commit_ts = 41};
    put_ok(m, &cm, &sink); /* cached: not initialised */
    ck_assert_uint_gt(tkc_matcher_bytes(m), with_pw);

    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink); /* k2 unmatched: dropped from the cache */
    ck_assert_uint_eq(sink.n, 0);
    cm.key = (const uint8_t *)"k1";
    cm.start_ts = 30;
    cm.commit_ts = 40;
    put_ok(m, &cm, &sink);
    ck_assert_uint_eq(sink.n, 1);
    ck_assert_uint_eq(sink.rows[0]->value_len, sizeof(big));
    ck_assert_uint_eq(sink.rows[0]->old_value_len, 500);
    sink_clear(&sink);
    /* nothing pending: the map and lists are freed, back to exactly the base */
    tkc_matcher_stats_t st;
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, 0);
    ck_assert_uint_eq(tkc_matcher_bytes(m), base);
    tkc_matcher_destroy(m);
}
END_TEST

/*
 * An idle region's matcher is one small block (there is one per subscribed
 * region): the pending state exists only while something is pending, and a
 * ROLLBACK or a matched COMMIT that empties it gives it back, also when the
 * range it reads is the caller's (borrowed) bytes.
 */
START_TEST(test_matcher_idle_is_small)
{
    case_t c = {.name = "idle"};
    range_t r;
    tkc_matcher_t *m = new_matcher(&c, &r);
    sink_t sink = {.n = 0};
    size_t base = tkc_matcher_bytes(m);
    ck_assert_uint_le(base, 160);
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    ck_assert_uint_eq(tkc_matcher_bytes(m), base);
    ck_assert(tkc_matcher_resolve(m, 25));

    tkc_feed_row_t pw = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)"k", .key_len = 1,
                         .value = (const uint8_t *)"v", .value_len = 1, .start_ts = 30};
    put_ok(m, &pw, &sink);
    ck_assert_uint_gt(tkc_matcher_bytes(m), base);
    tkc_feed_row_t rb = {.type = TKC_FEED_LOG_ROLLBACK, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)"k", .key_len = 1, .start_ts = 30};
    put_ok(m, &rb, &sink);
    ck_assert_uint_eq(tkc_matcher_bytes(m), base);

    /* out of range rows never allocate */
    tkc_feed_row_t out = pw;
    out.key = (const uint8_t *)"z";
    put_ok(m, &out, &sink);
    ck_assert_uint_eq(tkc_matcher_bytes(m), base);

    put_ok(m, &pw, &sink);
    tkc_feed_row_t cm = {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)"k", .key_len = 1, .start_ts = 30,
                         .commit_ts = 31};
    put_ok(m, &cm, &sink);
    ck_assert_uint_eq(sink.n, 1);
    ck_assert_uint_eq(tkc_matcher_bytes(m), base);
    sink_clear(&sink);
    tkc_matcher_destroy(m);
}
END_TEST

/* A matcher embedded in caller memory works the same and fini frees what
 * it holds (LSan checks), so the memory can take a fresh matcher. */
START_TEST(test_matcher_embedded)
{
    case_t c = {.name = "embedded"};
    range_t r;
    encode_range(&r, "b", "y");
    tkc_matcher_conf_t conf = {.region_id = 7, .start = r.start, .start_len = r.start_len,
                               .end = r.end, .end_len = r.end_len, .span_start_ts = 10,
                               .checkpoint_ts = 20};
    ck_assert_uint_le(tkc_matcher_size(), 128);
    _Alignas(16) uint8_t mem[256];
    sink_t sink = {.n = 0};
    for (int round = 0; round < 2; round++) {
        tkc_matcher_t *m = tkc_matcher_init(mem, &conf);
        ck_assert_ptr_eq(m, (void *)mem);
        tkc_feed_row_t pw = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT,
                             .key = (const uint8_t *)"k", .key_len = 1,
                             .value = (const uint8_t *)"v", .value_len = 1, .start_ts = 30};
        put_ok(m, &pw, &sink); /* left pending: fini must free it */
        tkc_feed_row_t cm = {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_PUT,
                             .key = (const uint8_t *)"k", .key_len = 1, .start_ts = 31,
                             .commit_ts = 32};
        put_ok(m, &cm, &sink); /* cached before INITIALIZED */
        ck_assert_uint_eq(sink.n, 0);
        tkc_matcher_fini(m);
    }
    (void)c;
}
END_TEST

/* Large keys take the heap paths of the match key and the range check. */
START_TEST(test_matcher_large_keys)
{
    range_t r;
    encode_range(&r, "", NULL); /* whole key space */
    tkc_matcher_conf_t conf = {.region_id = 1, .start = r.start, .start_len = r.start_len,
                               .span_start_ts = 1, .checkpoint_ts = 1};
    tkc_matcher_t *m = tkc_matcher_new(&conf);
    sink_t sink = {.n = 0};
    static uint8_t key[5000];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7);
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    for (int n = 0; n < 3; n++) {
        size_t klen = n == 0 ? 0 : n == 1 ? 300 : sizeof(key); /* empty key too */
        tkc_feed_row_t pw = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT, .key = key,
                             .key_len = klen, .value = (const uint8_t *)"v", .value_len = 1,
                             .start_ts = 5};
        put_ok(m, &pw, &sink);
        tkc_feed_row_t cm = {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_PUT, .key = key,
                             .key_len = klen, .start_ts = 5, .commit_ts = 6};
        put_ok(m, &cm, &sink);
        ck_assert_uint_eq(sink.n, 1);
        ck_assert_uint_eq(sink.rows[0]->key_len, klen);
        ck_assert(klen == 0 || memcmp(sink.rows[0]->key, key, klen) == 0);
        sink_clear(&sink);
    }
    tkc_matcher_destroy(m);
}
END_TEST

/* Many pending prewrites across keys and start ts all match correctly. */
START_TEST(test_matcher_many)
{
    case_t c = {.name = "many"};
    range_t r;
    tkc_matcher_t *m = new_matcher(&c, &r);
    static sink_t sink;
    sink.n = 0;
    enum { N = 20000 };
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%06d", i % 5000);
        snprintf(val, sizeof(val), "v%d", i);
        tkc_feed_row_t pw = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT,
                             .key = (const uint8_t *)key, .key_len = strlen(key),
                             .value = (const uint8_t *)val, .value_len = strlen(val),
                             .start_ts = 100 + (uint64_t)(i / 5000)};
        if (tkc_matcher_put(m, &pw, sink_emit, &sink, NULL, 0) != TKC_ERR_OK)
            ck_abort_msg("prewrite %d failed", i);
    }
    tkc_matcher_stats_t st;
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, N);
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    for (int i = N - 1; i >= 0; i--) {
        snprintf(key, sizeof(key), "k%06d", i % 5000);
        snprintf(val, sizeof(val), "v%d", i);
        tkc_feed_row_t cm = {.type = TKC_FEED_LOG_COMMIT, .op = TKC_ROW_OP_PUT,
                             .key = (const uint8_t *)key, .key_len = strlen(key),
                             .start_ts = 100 + (uint64_t)(i / 5000), .commit_ts = 1000};
        /* no ck_assert in this loop: each one writes to a pipe */
        if (tkc_matcher_put(m, &cm, sink_emit, &sink, NULL, 0) != TKC_ERR_OK || sink.n != 1 ||
            sink.rows[0]->value_len != strlen(val) ||
            memcmp(sink.rows[0]->value, val, strlen(val)) != 0)
            ck_abort_msg("commit %d did not emit its own value", i);
        sink_clear(&sink);
    }
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, 0);
    ck_assert_uint_eq(st.emitted, N);
    tkc_matcher_destroy(m);
}
END_TEST

/* ===== spilling ===== */

typedef struct spill_fx_s {
    atomic_size_t shared;
    tkc_prewrite_spill_t *s;
    int fd2; /* the same file, to damage it */
} spill_fx_t;

static void spill_fx_open(spill_fx_t *fx, size_t limit, const char *dev)
{
    atomic_init(&fx->shared, 0);
    int fd;
    if (dev) {
        fd = open(dev, O_RDWR);
        fx->fd2 = -1;
    } else {
        char path[] = "/tmp/tkc-matcher-spill-XXXXXX";
        fd = mkstemp(path);
        fx->fd2 = open(path, O_RDWR);
        unlink(path);
    }
    ck_assert_int_ge(fd, 0);
    fx->s = tkc_prewrite_spill_new_fd(fd, &fx->shared, limit);
}

static void spill_fx_close(spill_fx_t *fx)
{
    tkc_prewrite_spill_destroy(fx->s);
    if (fx->fd2 >= 0)
        close(fx->fd2);
}

static tkc_matcher_t *spill_matcher(range_t *r, tkc_prewrite_spill_t *s)
{
    encode_range(r, "b", "y");
    tkc_matcher_conf_t conf = {.region_id = 7, .span_index = 3, .start = r->start,
                               .start_len = r->start_len, .end = r->end, .end_len = r->end_len,
                               .span_start_ts = 10, .checkpoint_ts = 20, .spill = s};
    return tkc_matcher_new(&conf);
}

#define BIG 10000
static uint8_t big_v[4][BIG], big_o[4][BIG / 4];

static tkc_feed_row_t big_pw(int i)
{
    static char keys[4][4] = {"k0", "k1", "k2", "k3"};
    for (size_t j = 0; j < BIG; j++)
        big_v[i][j] = (uint8_t)(i * 37 + j * 11 + (j >> 9));
    for (size_t j = 0; j < BIG / 4; j++)
        big_o[i][j] = (uint8_t)(i * 5 + j * 3);
    tkc_feed_row_t fr = {.type = TKC_FEED_LOG_PREWRITE, .op = TKC_ROW_OP_PUT,
                         .key = (const uint8_t *)keys[i], .key_len = 2, .value = big_v[i],
                         .value_len = BIG, .old_value = big_o[i], .old_value_len = BIG / 4,
                         .has_old_value = true, .start_ts = 30};
    return fr;
}

static tkc_feed_row_t big_cm(int i, tkc_feed_log_t type)
{
    tkc_feed_row_t fr = big_pw(i);
    fr.type = type;
    fr.value = fr.old_value = NULL;
    fr.value_len = fr.old_value_len = 0;
    fr.commit_ts = 40;
    return fr;
}

/*
 * A budget for about one value: the first prewrite stays in memory, the
 * next ones spill; commits restore them byte-exact; a rollback and the
 * matcher's end give back their bytes and records, and the file is
 * truncated once nothing is live.
 */
START_TEST(test_matcher_spill_budget)
{
    spill_fx_t fx;
    spill_fx_open(&fx, BIG + BIG / 4 + 1000, NULL);
    range_t r;
    tkc_matcher_t *m = spill_matcher(&r, fx.s);
    sink_t sink = {.n = 0};
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    for (int i = 0; i < 4; i++) {
        tkc_feed_row_t fr = big_pw(i);
        put_ok(m, &fr, &sink);
    }
    tkc_matcher_stats_t st;
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, 4);
    ck_assert_uint_eq(st.spilled_prewrites, 3);
    /* memory held: one full row and three stubs, all charged to the budget */
    size_t charged = atomic_load(&fx.shared);
    ck_assert_uint_le(charged, BIG + BIG / 4 + 1000);
    ck_assert_uint_ge(charged, BIG + BIG / 4);
    ck_assert_uint_lt(tkc_matcher_bytes(m), 2 * BIG);
    tkc_prewrite_spill_stats_t ss;
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, 3 * tkc_prewrite_spill_record_size(BIG, BIG / 4));

    /* commit k2 (spilled) and k0 (in memory): values byte-exact */
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? 2 : 0;
        tkc_feed_row_t cm = big_cm(i, TKC_FEED_LOG_COMMIT);
        put_ok(m, &cm, &sink);
        ck_assert_uint_eq(sink.n, 1);
        const tkc_row_t *row = sink.rows[0];
        ck_assert_uint_eq(row->key_len, 2);
        ck_assert(memcmp(row->key, cm.key, 2) == 0);
        ck_assert_uint_eq(row->value_len, BIG);
        ck_assert(memcmp(row->value, big_v[i], BIG) == 0);
        ck_assert_uint_eq(row->old_value_len, BIG / 4);
        ck_assert(memcmp(row->old_value, big_o[i], BIG / 4) == 0);
        ck_assert(row->has_old_value);
        ck_assert_uint_eq(row->start_ts, 30);
        ck_assert_uint_eq(row->commit_ts, 40);
        ck_assert_uint_eq(row->region_id, 7);
        ck_assert_uint_eq(row->span_index, 3);
        ck_assert_int_eq(row->op, TKC_ROW_OP_PUT);
        ck_assert_uint_eq(tkc_row_size(row), sizeof(tkc_row_t) + 2 + BIG + BIG / 4);
        sink_clear(&sink);
    }
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, 2 * tkc_prewrite_spill_record_size(BIG, BIG / 4));

    /* a rollback frees k1's stub and record */
    size_t before = atomic_load(&fx.shared);
    tkc_feed_row_t rb = big_cm(1, TKC_FEED_LOG_ROLLBACK);
    put_ok(m, &rb, &sink);
    ck_assert_uint_eq(sink.n, 0);
    ck_assert_uint_lt(atomic_load(&fx.shared), before);
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, tkc_prewrite_spill_record_size(BIG, BIG / 4));
    ck_assert_uint_eq(ss.truncations, 0);
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, 1);
    ck_assert_uint_eq(st.spilled_prewrites, 1);

    /* the region goes away with k3 pending: everything is given back */
    tkc_matcher_destroy(m);
    ck_assert_uint_eq(atomic_load(&fx.shared), 0);
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, 0);
    ck_assert_uint_eq(ss.file_bytes, 0);
    ck_assert_uint_eq(ss.truncations, 1);
    spill_fx_close(&fx);
}
END_TEST

/* A replaced prewrite (newer generation) releases the spilled record of the
 * one it replaces; a commit cached before INITIALIZED restores at replay. */
START_TEST(test_matcher_spill_replace_and_replay)
{
    spill_fx_t fx;
    spill_fx_open(&fx, 0, NULL);
    range_t r;
    tkc_matcher_t *m = spill_matcher(&r, fx.s);
    sink_t sink = {.n = 0};
    tkc_feed_row_t cm = big_cm(0, TKC_FEED_LOG_COMMIT);
    put_ok(m, &cm, &sink); /* before its prewrite: cached */
    tkc_feed_row_t pw = big_pw(1);
    pw.key = cm.key; /* k0 with k1's bytes: replaced below */
    put_ok(m, &pw, &sink);
    pw = big_pw(0);
    pw.generation = 1;
    put_ok(m, &pw, &sink);
    tkc_prewrite_spill_stats_t ss;
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, tkc_prewrite_spill_record_size(BIG, BIG / 4));
    ck_assert_uint_eq(sink.n, 0);
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    ck_assert_uint_eq(sink.n, 1);
    ck_assert(memcmp(sink.rows[0]->value, big_v[0], BIG) == 0);
    ck_assert(memcmp(sink.rows[0]->old_value, big_o[0], BIG / 4) == 0);
    sink_clear(&sink);
    tkc_prewrite_spill_get_stats(fx.s, &ss);
    ck_assert_uint_eq(ss.live_bytes, 0);
    ck_assert_uint_eq(ss.file_bytes, 0);
    ck_assert_uint_eq(atomic_load(&fx.shared), 0);
    tkc_matcher_destroy(m);
    spill_fx_close(&fx);
}
END_TEST

/* A damaged spilled value fails the registration: no row, a clear error. */
START_TEST(test_matcher_spill_corrupt)
{
    spill_fx_t fx;
    spill_fx_open(&fx, 0, NULL);
    range_t r;
    tkc_matcher_t *m = spill_matcher(&r, fx.s);
    sink_t sink = {.n = 0};
    tkc_feed_row_t init = {.type = TKC_FEED_LOG_INITIALIZED};
    put_ok(m, &init, &sink);
    tkc_feed_row_t pw = big_pw(0);
    put_ok(m, &pw, &sink);
    uint8_t b = 0;
    ck_assert_int_eq(pread(fx.fd2, &b, 1, 16 + 500), 1);
    b ^= 0x80;
    ck_assert_int_eq(pwrite(fx.fd2, &b, 1, 16 + 500), 1);
    tkc_feed_row_t cm = big_cm(0, TKC_FEED_LOG_COMMIT);
    char e[256] = "";
    ck_assert_int_eq(tkc_matcher_put(m, &cm, sink_emit, &sink, e, sizeof(e)), TKC_ERR_CORRUPT);
    ck_assert_uint_eq(sink.n, 0);
    ck_assert_msg(strstr(e, "CRC") != NULL && strstr(e, "region_id=7") != NULL, "%s", e);
    ck_assert(tkc_matcher_failed(m));
    tkc_matcher_destroy(m);
    ck_assert_uint_eq(atomic_load(&fx.shared), 0);
    spill_fx_close(&fx);
}
END_TEST

/* A spill write error (disk full) fails the registration, drops nothing
 * silently, and leaves no charge behind. */
START_TEST(test_matcher_spill_write_error)
{
    spill_fx_t fx;
    spill_fx_open(&fx, 0, "/dev/full");
    range_t r;
    tkc_matcher_t *m = spill_matcher(&r, fx.s);
    sink_t sink = {.n = 0};
    tkc_feed_row_t pw = big_pw(0);
    char e[256] = "";
    ck_assert_int_eq(tkc_matcher_put(m, &pw, sink_emit, &sink, e, sizeof(e)), TKC_ERR_IO);
    ck_assert_msg(strstr(e, "prewrite spill failed") != NULL, "%s", e);
    ck_assert(tkc_matcher_failed(m));
    tkc_matcher_stats_t st;
    tkc_matcher_get_stats(m, &st);
    ck_assert_uint_eq(st.prewrites, 0);
    tkc_matcher_destroy(m);
    ck_assert_uint_eq(atomic_load(&fx.shared), 0);
    spill_fx_close(&fx);
}
END_TEST

START_TEST(test_matcher_names)
{
    ck_assert_str_eq(tkc_feed_log_name(TKC_FEED_LOG_COMMITTED), "COMMITTED");
    ck_assert_str_eq(tkc_feed_log_name(99), "?");
    ck_assert_str_eq(tkc_row_op_name(TKC_ROW_OP_DELETE), "DELETE");
    ck_assert_str_eq(tkc_row_op_name(-1), "?");
}
END_TEST

static Suite *matcher_suite(void)
{
    Suite *s = suite_create("matcher");
    TCase *tc = tcase_create("rules");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_matcher_table, 0, N_CASES);
    tcase_add_loop_test(tc, test_matcher_table_spilled, 0, N_CASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("spill");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_matcher_spill_budget);
    tcase_add_test(tc, test_matcher_spill_replace_and_replay);
    tcase_add_test(tc, test_matcher_spill_corrupt);
    tcase_add_test(tc, test_matcher_spill_write_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_matcher_bytes);
    tcase_add_test(tc, test_matcher_idle_is_small);
    tcase_add_test(tc, test_matcher_embedded);
    tcase_add_test(tc, test_matcher_large_keys);
    tcase_add_test(tc, test_matcher_many);
    tcase_add_test(tc, test_matcher_names);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(matcher_suite)
