/*
 * kafka_test.h: helpers for tests that run against the real Kafka broker
 * fixture (tests/kafka/kafka-broker.sh, ctest fixture "kafka").
 *
 * Link with the CMake target tkc_kafka_test and pass ${TKC_KAFKA_ENV} in the
 * test's environment; include as "kafka/kafka_test.h".
 *
 * Conventions:
 *  - Functions that can fail return 0 on success and -1 on failure, and then
 *    write a NUL-terminated reason into errstr (errstr may be NULL).
 *  - Every returned pointer is owned by the caller, who frees it as stated
 *    next to the function.
 *  - Every function creates and destroys its own librdkafka handles, so it is
 *    safe to call from check's forked test children (never create handles
 *    before srunner_run_all).  All functions are thread-safe.
 */
#ifndef TKC_KAFKA_TEST_H
#define TKC_KAFKA_TEST_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Environment variable that names the file holding the broker's bootstrap
 * address ("127.0.0.1:PORT"); set by ${TKC_KAFKA_ENV}. */
#define TKC_KAFKA_TEST_BOOTSTRAP_ENV "TKC_KAFKA_BOOTSTRAP_FILE"

/* Default timeout the helpers use when passed timeout_ms <= 0. */
#define TKC_KAFKA_TEST_DEFAULT_TIMEOUT_MS 30000

/*
 * Reads the broker address from the file named by $TKC_KAFKA_BOOTSTRAP_FILE
 * (surrounding whitespace is dropped).  Returns a malloc'd string such as
 * "127.0.0.1:24031" that the caller frees with free(), or NULL when the
 * variable is unset or the file is missing or empty.
 */
char *tkc_kafka_test_bootstrap(char *errstr, size_t errstr_size);

/*
 * Returns a malloc'd topic name unique to this run:
 * "<prefix>-<pid>-<unix ms>-<counter>", e.g. "tkc-orders-4242-1716...-3".
 * prefix may be NULL (then "tkc-test") and must consist of Kafka topic
 * characters [A-Za-z0-9._-] and be at most 160 bytes; otherwise NULL is
 * returned.  The caller frees the result with free().
 */
char *tkc_kafka_test_topic_name(const char *prefix);

/*
 * Returns a new client configuration with bootstrap.servers set, fast
 * reconnects (reconnect.backoff.max.ms=1000) and librdkafka's logging
 * limited to warnings and errors on stderr.  Returns NULL (with errstr) if a
 * property is rejected.  Ownership passes to the caller: give it to
 * rd_kafka_new() (which takes it over on success) or rd_kafka_conf_destroy()
 * it.
 */
rd_kafka_conf_t *tkc_kafka_test_conf(const char *bootstrap, char *errstr,
                                     size_t errstr_size);

/*
 * Creates topic with the given number of partitions and replication factor
 * 1 through the Admin API, then waits until the metadata shows every
 * partition with a leader.  config is NULL or a NULL-terminated list of
 * name/value pairs, e.g. {"cleanup.policy", "compact", NULL}.  An existing
 * topic is an error.  timeout_ms <= 0 means the default (30 s).
 */
int tkc_kafka_test_create_topic(const char *bootstrap, const char *topic,
                                int partitions, const char *const *config,
                                int timeout_ms, char *errstr,
                                size_t errstr_size);

/* Deletes topic through the Admin API (waits for the broker's answer). */
int tkc_kafka_test_delete_topic(const char *bootstrap, const char *topic,
                                int timeout_ms, char *errstr,
                                size_t errstr_size);

/* One consumed message.  key and value are NUL-terminated copies (the NUL
 * is not counted in the length) so text can be compared with strcmp; they
 * are NULL when the message had no key / a null value (a tombstone), which
 * tells a null key apart from an empty one. */
typedef struct tkc_kafka_test_msg {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* ms since the epoch, -1 if not available */
} tkc_kafka_test_msg_t;

/* The messages of a topic, ordered by partition and then by offset. */
typedef struct tkc_kafka_test_msgs {
    tkc_kafka_test_msg_t *msgs; /* count entries, owned by this struct */
    size_t count;
} tkc_kafka_test_msgs_t;

typedef enum tkc_kafka_test_isolation {
    TKC_KAFKA_TEST_READ_UNCOMMITTED = 0, /* every record, aborted ones too */
    TKC_KAFKA_TEST_READ_COMMITTED = 1    /* committed and non-transactional */
} tkc_kafka_test_isolation_t;

/*
 * Reads every message of topic, all partitions, from the beginning up to
 * the end offsets the broker reports when the call starts (for
 * read_committed: the last stable offset, so an open transaction's records
 * are not waited for).  Uses a consumer with manual assignment and no
 * offset commits, so no consumer group state is left behind.
 *
 * On success *out holds the messages (possibly none); release them with
 * tkc_kafka_test_msgs_free().  On failure *out is empty and nothing needs
 * freeing.  timeout_ms <= 0 means the default (30 s).
 */
int tkc_kafka_test_consume_all(const char *bootstrap, const char *topic,
                               tkc_kafka_test_isolation_t isolation,
                               int timeout_ms, tkc_kafka_test_msgs_t *out,
                               char *errstr, size_t errstr_size);

/* Frees the messages in msgs and leaves it empty; msgs may be NULL. */
void tkc_kafka_test_msgs_free(tkc_kafka_test_msgs_t *msgs);

#endif
