/*
 * check_rpc_arena.c: the unpack arena of rpc.h, which the feed workers use
 * for every ChangeDataEvent: a message unpacked into it reads back exactly
 * what was packed, whether the byte buffer is one slice or many (joined in
 * the arena), after any number of resets, and across messages larger than
 * one block and than what the arena keeps between messages. Malformed bytes
 * give NULL and leave the arena usable.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>

#include "cdcpb.pb-c.h"
#include "rpc.h"
#include "unit/check_main.h"
#include "util/mem.h"

static void grpc_up(void)
{
    grpc_init();
}

static void grpc_down(void)
{
    grpc_shutdown();
}

/* Fills @p buf with bytes derived from (seed, i). */
static void fill(uint8_t *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(seed * 131u + i * 7u);
}

/* A ChangeDataEvent of @p n_rows rows of @p value_len bytes in one event, packed. */
static uint8_t *make_msg(size_t n_rows, size_t value_len, unsigned seed, size_t *len)
{
    Cdcpb__Event__Row *rows = tkc_calloc(n_rows, sizeof(*rows));
    Cdcpb__Event__Row **rowp = tkc_calloc(n_rows, sizeof(*rowp));
    uint8_t *vals = tkc_malloc(n_rows * value_len + 1);
    char (*keys)[32] = tkc_calloc(n_rows, sizeof(*keys));
    for (size_t i = 0; i < n_rows; i++) {
        Cdcpb__Event__Row init = CDCPB__EVENT__ROW__INIT;
        rows[i] = init;
        rows[i].start_ts = 1000 + i;
        rows[i].commit_ts = 2000 + i + seed;
        rows[i].type = CDCPB__EVENT__LOG_TYPE__COMMITTED;
        rows[i].op_type = CDCPB__EVENT__ROW__OP_TYPE__PUT;
        int kl = snprintf(keys[i], sizeof(keys[i]), "k-%u-%zu", seed, i);
        rows[i].key.data = (uint8_t *)keys[i];
        rows[i].key.len = (size_t)kl;
        fill(vals + i * value_len, value_len, seed + (unsigned)i);
        rows[i].value.data = vals + i * value_len;
        rows[i].value.len = value_len;
        rowp[i] = &rows[i];
    }
    Cdcpb__Event__Entries entries = CDCPB__EVENT__ENTRIES__INIT;
    entries.n_entries = n_rows;
    entries.entries = rowp;
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = 7 + seed;
    ev.request_id = 3;
    ev.event_case = CDCPB__EVENT__EVENT_ENTRIES;
    ev.entries = &entries;
    Cdcpb__Event *evp = &ev;
    Cdcpb__ChangeDataEvent msg = CDCPB__CHANGE_DATA_EVENT__INIT;
    msg.n_events = 1;
    msg.events = &evp;
    *len = cdcpb__change_data_event__get_packed_size(&msg);
    uint8_t *out = tkc_malloc(*len);
    cdcpb__change_data_event__pack(&msg, out);
    tkc_free(rows);
    tkc_free(rowp);
    tkc_free(vals);
    tkc_free(keys);
    return out;
}

/* The bytes as a byte buffer of @p pieces slices (1 = one slice). */
static grpc_byte_buffer *as_buffer(const uint8_t *p, size_t len, size_t pieces)
{
    grpc_slice s[16];
    size_t n = 0, off = 0;
    for (size_t i = 0; i < pieces; i++) {
        size_t take = i + 1 == pieces ? len - off : len / pieces;
        s[n++] = grpc_slice_from_copied_buffer((const char *)p + off, take);
        off += take;
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(s, n);
    for (size_t i = 0; i < n; i++)
        grpc_slice_unref(s[i]);
    return bb;
}

static void check_msg(const Cdcpb__ChangeDataEvent *m, size_t n_rows, size_t value_len,
                      unsigned seed)
{
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->n_events, 1);
    const Cdcpb__Event *ev = m->events[0];
    ck_assert_uint_eq(ev->region_id, 7 + seed);
    ck_assert_int_eq(ev->event_case, CDCPB__EVENT__EVENT_ENTRIES);
    ck_assert_uint_eq(ev->entries->n_entries, n_rows);
    uint8_t *want = tkc_malloc(value_len + 1);
    for (size_t i = 0; i < n_rows; i++) {
        const Cdcpb__Event__Row *r = ev->entries->entries[i];
        char key[32];
        int kl = snprintf(key, sizeof(key), "k-%u-%zu", seed, i);
        ck_assert_uint_eq(r->key.len, (size_t)kl);
        ck_assert_int_eq(memcmp(r->key.data, key, (size_t)kl), 0);
        ck_assert_uint_eq(r->commit_ts, 2000 + i + seed);
        ck_assert_uint_eq(r->value.len, value_len);
        fill(want, value_len, seed + (unsigned)i);
        ck_assert_int_eq(memcmp(r->value.data, want, value_len), 0);
    }
    tkc_free(want);
}

START_TEST(test_rpc_arena_round_trip)
{
    tkc_rpc_arena_t *a = tkc_rpc_arena_new();
    /* small, several blocks (> 64 KiB), and above the kept size (> 1 MiB),
     * each as one slice and as several; repeated to reuse the kept block */
    const struct {
        size_t rows, value_len;
    } shapes[] = {{4, 100}, {300, 1024}, {2, 700 * 1024}, {50, 30}, {1, 3 * 1024 * 1024}};
    unsigned seed = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            for (size_t pieces = 1; pieces <= 5; pieces += 2) {
                size_t len;
                uint8_t *bytes = make_msg(shapes[s].rows, shapes[s].value_len, seed, &len);
                grpc_byte_buffer *bb = as_buffer(bytes, len, pieces);
                Cdcpb__ChangeDataEvent *m = (Cdcpb__ChangeDataEvent *)tkc_rpc_unpack_in(
                    a, &cdcpb__change_data_event__descriptor, bb);
                grpc_byte_buffer_destroy(bb);
                tkc_free(bytes); /* nothing may point into the input */
                check_msg(m, shapes[s].rows, shapes[s].value_len, seed);
                tkc_rpc_arena_reset(a);
                seed++;
            }
        }
    }
    tkc_rpc_arena_destroy(a);
}
END_TEST

START_TEST(test_rpc_arena_malformed_and_empty)
{
    tkc_rpc_arena_t *a = tkc_rpc_arena_new();
    /* field 1 (events), length-delimited, claiming 100 bytes of 2 */
    const uint8_t bad[] = {0x0a, 0x64, 0x01, 0x02};
    grpc_byte_buffer *bb = as_buffer(bad, sizeof(bad), 2);
    ck_assert_ptr_null(tkc_rpc_unpack_in(a, &cdcpb__change_data_event__descriptor, bb));
    grpc_byte_buffer_destroy(bb);
    tkc_rpc_arena_reset(a);
    /* an empty buffer is an empty message */
    bb = grpc_raw_byte_buffer_create(NULL, 0);
    Cdcpb__ChangeDataEvent *m = (Cdcpb__ChangeDataEvent *)tkc_rpc_unpack_in(
        a, &cdcpb__change_data_event__descriptor, bb);
    grpc_byte_buffer_destroy(bb);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->n_events, 0);
    tkc_rpc_arena_reset(a);
    /* and the arena still works */
    size_t len;
    uint8_t *bytes = make_msg(3, 10, 99, &len);
    bb = as_buffer(bytes, len, 1);
    m = (Cdcpb__ChangeDataEvent *)tkc_rpc_unpack_in(a, &cdcpb__change_data_event__descriptor,
                                                     bb);
    grpc_byte_buffer_destroy(bb);
    tkc_free(bytes);
    check_msg(m, 3, 10, 99);
    tkc_rpc_arena_destroy(a);
    tkc_rpc_arena_destroy(NULL);
}
END_TEST

static Suite *rpc_arena_suite(void)
{
    Suite *s = suite_create("rpc_arena");
    TCase *tc = tcase_create("arena");
    tcase_add_checked_fixture(tc, grpc_up, grpc_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rpc_arena_round_trip);
    tcase_add_test(tc, test_rpc_arena_malformed_and_empty);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(rpc_arena_suite)
