/*
 * feed_hook.c: reaches the feed's test-only stream-cleanup delay from the
 * command line of a bench-only build of the connector (issue 7, `make bench`).
 *
 * tkc_feed_config_t.test_stream_cleanup_delay_ms (the 5 s sleep TiCDC PR
 * 10559's manual test put before its second deleteStream) is not a
 * configuration key, and the bench must not add one to the shipped
 * configuration. So bench-tikv-kafka-cdc-hooked is the connector's own main
 * and libraries linked with `-Wl,--wrap=tkc_feed_new`: every call of
 * tkc_feed_new() from the runner lands here first, we copy the config, set
 * the delay from the environment variable TKC_BENCH_STREAM_CLEANUP_DELAY_MS
 * (absent or 0: unchanged) and call the real constructor. Nothing else of
 * the binary differs from tikv-kafka-cdc.
 */
#include <stdlib.h>

#include "feed.h"

tkc_feed_t *__real_tkc_feed_new(const tkc_feed_config_t *cfg, tkc_msgq_t *out, tkc_err_t *err,
                                char *errstr, size_t errstr_size);
tkc_feed_t *__wrap_tkc_feed_new(const tkc_feed_config_t *cfg, tkc_msgq_t *out, tkc_err_t *err,
                                char *errstr, size_t errstr_size);

/** Same contract as tkc_feed_new(); @p cfg is borrowed and not modified. */
tkc_feed_t *__wrap_tkc_feed_new(const tkc_feed_config_t *cfg, tkc_msgq_t *out, tkc_err_t *err,
                                char *errstr, size_t errstr_size)
{
    tkc_feed_config_t c = *cfg;
    const char *d = getenv("TKC_BENCH_STREAM_CLEANUP_DELAY_MS");
    if (d && *d)
        c.test_stream_cleanup_delay_ms = strtoll(d, NULL, 10);
    return __real_tkc_feed_new(&c, out, err, errstr, errstr_size);
}
