/*
 * kafka_test.c: helpers for tests against the real Kafka broker fixture.
 * See kafka_test.h for the API and ownership rules.
 */
#include "kafka_test.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC_PREFIX_MAX 160

static atomic_uint name_counter;

__attribute__((format(printf, 3, 4))) static void
set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr == NULL || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, at least 1 (librdkafka treats 0 as
 * "do not wait"). */
static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left < 1 ? 1 : (int)left;
}

static int effective_timeout(int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : TKC_KAFKA_TEST_DEFAULT_TIMEOUT_MS;
}

char *tkc_kafka_test_bootstrap(char *errstr, size_t errstr_size)
{
    const char *path = getenv(TKC_KAFKA_TEST_BOOTSTRAP_ENV);
    if (path == NULL || *path == '\0') {
        set_err(errstr, errstr_size,
                "%s is not set (run through ctest, which starts the broker "
                "fixture)",
                TKC_KAFKA_TEST_BOOTSTRAP_ENV);
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        set_err(errstr, errstr_size, "cannot open %s: %s (is the broker "
                "fixture running?)", path, strerror(errno));
        return NULL;
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start != '\0' && isspace((unsigned char)*start))
        start++;
    char *end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (*start == '\0') {
        set_err(errstr, errstr_size, "%s is empty", path);
        return NULL;
    }
    char *bootstrap = strdup(start);
    if (bootstrap == NULL)
        set_err(errstr, errstr_size, "out of memory");
    return bootstrap;
}

static bool valid_topic_chars(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    }
    return true;
}

char *tkc_kafka_test_topic_name(const char *prefix)
{
    if (prefix == NULL)
        prefix = "tkc-test";
    if (*prefix == '\0' || strlen(prefix) > TOPIC_PREFIX_MAX ||
        !valid_topic_chars(prefix))
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    unsigned counter = atomic_fetch_add(&name_counter, 1u) + 1u;
    size_t size = strlen(prefix) + 64;
    char *name = malloc(size);
    if (name == NULL)
        return NULL;
    snprintf(name, size, "%s-%ld-%lld-%u", prefix, (long)getpid(), ms,
             counter);
    return name;
}

rd_kafka_conf_t *tkc_kafka_test_conf(const char *bootstrap, char *errstr,
                                     size_t errstr_size)
{
    static const char *const props[][2] = {
        {"reconnect.backoff.ms", "50"},
        {"reconnect.backoff.max.ms", "1000"},
        {"log_level", "4"},
        {"log.connection.close", "false"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[256];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, buf,
                          sizeof(buf)) != RD_KAFKA_CONF_OK) {
        set_err(errstr, errstr_size, "bootstrap.servers: %s", buf);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], buf,
                              sizeof(buf)) != RD_KAFKA_CONF_OK) {
            set_err(errstr, errstr_size, "%s: %s", props[i][0], buf);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* A handle for admin and metadata requests; NULL with errstr on failure. */
static rd_kafka_t *new_admin_handle(const char *bootstrap, char *errstr,
                                    size_t errstr_size)
{
    rd_kafka_conf_t *conf = tkc_kafka_test_conf(bootstrap, errstr, errstr_size);
    if (conf == NULL)
        return NULL;
    char buf[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, buf, sizeof(buf));
    if (rk == NULL) {
        set_err(errstr, errstr_size, "rd_kafka_new: %s", buf);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/*
 * Metadata of one topic.  Returns 1 when it exists with an error-free
 * leader for each partition (*partitions set to their number), 0 when it
 * is unknown or not ready yet, -1 on a request failure (errstr set).
 */
static int topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                          int *partitions, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        set_err(errstr, errstr_size, "rd_kafka_topic_new(%s): %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        set_err(errstr, errstr_size, "metadata request for %s: %s", topic,
                rd_kafka_err2str(err));
        return -1;
    }
    int ready = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0)
            continue;
        if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_err(errstr, errstr_size, "topic %s: %s", topic,
                    rd_kafka_err2str(t->err));
            break;
        }
        if (t->partition_cnt <= 0) {
            set_err(errstr, errstr_size, "topic %s has no partitions yet",
                    topic);
            break;
        }
        ready = 1;
        for (int p = 0; p < t->partition_cnt; p++) {
            if (t->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
                t->partitions[p].leader < 0) {
                set_err(errstr, errstr_size, "topic %s partition %d has no "
                        "leader yet", topic, (int)t->partitions[p].id);
                ready = 0;
                break;
            }
        }
        if (ready)
            *partitions = t->partition_cnt;
        break;
    }
    rd_kafka_metadata_destroy(md);
    return ready;
}

/* Runs one admin request already started on queue q and returns its result
 * event (destroy with rd_kafka_event_destroy), or NULL with errstr. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                                    const char *what, int timeout_ms,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
    if (ev == NULL) {
        set_err(errstr, errstr_size, "%s: no answer within %d ms", what,
                timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_type(ev) != type) {
        set_err(errstr, errstr_size, "%s: unexpected event %s", what,
                rd_kafka_event_name(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        set_err(errstr, errstr_size, "%s: %s", what,
                rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk,
                                              rd_kafka_admin_op_t op,
                                              int timeout_ms, char *errstr,
                                              size_t errstr_size)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    char buf[256];
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, buf,
                                                  sizeof(buf)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, buf,
                                                    sizeof(buf))) {
        set_err(errstr, errstr_size, "admin options: %s", buf);
        rd_kafka_AdminOptions_destroy(opts);
        return NULL;
    }
    return opts;
}

int tkc_kafka_test_create_topic(const char *bootstrap, const char *topic,
                                int partitions, const char *const *config,
                                int timeout_ms, char *errstr,
                                size_t errstr_size)
{
    timeout_ms = effective_timeout(timeout_ms);
    int64_t deadline = now_ms() + timeout_ms;
    if (partitions < 1) {
        set_err(errstr, errstr_size, "partitions must be >= 1");
        return -1;
    }
    rd_kafka_t *rk = new_admin_handle(bootstrap, errstr, errstr_size);
    if (rk == NULL)
        return -1;

    int rc = -1;
    char buf[256];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, partitions, 1, buf, sizeof(buf));
    if (nt == NULL) {
        set_err(errstr, errstr_size, "NewTopic %s: %s", topic, buf);
        goto out;
    }
    for (size_t i = 0; config != NULL && config[i] != NULL; i += 2) {
        if (config[i + 1] == NULL) {
            set_err(errstr, errstr_size, "config %s has no value", config[i]);
            goto out;
        }
        rd_kafka_resp_err_t err =
            rd_kafka_NewTopic_set_config(nt, config[i], config[i + 1]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_err(errstr, errstr_size, "config %s: %s", config[i],
                    rd_kafka_err2str(err));
            goto out;
        }
    }
    opts = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms,
                         errstr, errstr_size);
    if (opts == NULL)
        goto out;
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "CreateTopics",
                    remaining_ms(deadline) + 1000, errstr, errstr_size);
    if (ev == NULL)
        goto out;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(ev), &cnt);
    if (cnt != 1) {
        set_err(errstr, errstr_size, "CreateTopics: %zu results", cnt);
        goto out;
    }
    if (rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *msg = rd_kafka_topic_result_error_string(res[0]);
        set_err(errstr, errstr_size, "create topic %s: %s", topic,
                msg != NULL ? msg
                            : rd_kafka_err2str(rd_kafka_topic_result_error(res[0])));
        goto out;
    }

    /* The controller has created it; wait until the broker's metadata
     * shows it with leaders, so producers can use it at once. */
    for (;;) {
        int got = 0;
        int r = topic_metadata(rk, topic, remaining_ms(deadline) < 5000
                                              ? remaining_ms(deadline)
                                              : 5000,
                               &got, errstr, errstr_size);
        if (r == 1 && got == partitions) {
            rc = 0;
            break;
        }
        if (r == 1)
            set_err(errstr, errstr_size, "topic %s has %d partitions, "
                    "expected %d", topic, got, partitions);
        if (now_ms() >= deadline) {
            size_t len = errstr != NULL ? strlen(errstr) : 0;
            if (errstr != NULL && len + 16 < errstr_size)
                snprintf(errstr + len, errstr_size - len, " (timed out)");
            break;
        }
        usleep(100 * 1000);
    }

out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

int tkc_kafka_test_delete_topic(const char *bootstrap, const char *topic,
                                int timeout_ms, char *errstr,
                                size_t errstr_size)
{
    timeout_ms = effective_timeout(timeout_ms);
    rd_kafka_t *rk = new_admin_handle(bootstrap, errstr, errstr_size);
    if (rk == NULL)
        return -1;
    int rc = -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_AdminOptions_t *opts = admin_options(
        rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms, errstr, errstr_size);
    if (opts == NULL)
        goto out;
    rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "DeleteTopics",
                    timeout_ms + 1000, errstr, errstr_size);
    if (ev == NULL)
        goto out;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res = rd_kafka_DeleteTopics_result_topics(
        rd_kafka_event_DeleteTopics_result(ev), &cnt);
    if (cnt != 1) {
        set_err(errstr, errstr_size, "DeleteTopics: %zu results", cnt);
        goto out;
    }
    if (rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *msg = rd_kafka_topic_result_error_string(res[0]);
        set_err(errstr, errstr_size, "delete topic %s: %s", topic,
                msg != NULL ? msg
                            : rd_kafka_err2str(rd_kafka_topic_result_error(res[0])));
        goto out;
    }
    rc = 0;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------ consuming */

void tkc_kafka_test_msgs_free(tkc_kafka_test_msgs_t *msgs)
{
    if (msgs == NULL)
        return;
    for (size_t i = 0; i < msgs->count; i++) {
        free(msgs->msgs[i].key);
        free(msgs->msgs[i].value);
    }
    free(msgs->msgs);
    msgs->msgs = NULL;
    msgs->count = 0;
}

/* NUL-terminated copy of len bytes; NULL for NULL (with *ok untouched) and
 * NULL with *ok = false when out of memory. */
static char *copy_bytes(const void *p, size_t len, bool *ok)
{
    if (p == NULL)
        return NULL;
    char *c = malloc(len + 1);
    if (c == NULL) {
        *ok = false;
        return NULL;
    }
    memcpy(c, p, len);
    c[len] = '\0';
    return c;
}

static int append_msg(tkc_kafka_test_msgs_t *out, size_t *cap,
                      const rd_kafka_message_t *m)
{
    if (out->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        tkc_kafka_test_msg_t *n = realloc(out->msgs, ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        out->msgs = n;
        *cap = ncap;
    }
    bool ok = true;
    tkc_kafka_test_msg_t *dst = &out->msgs[out->count];
    dst->key = copy_bytes(m->key, m->key_len, &ok);
    dst->key_len = m->key != NULL ? m->key_len : 0;
    dst->value = copy_bytes(m->payload, m->len, &ok);
    dst->value_len = m->payload != NULL ? m->len : 0;
    dst->partition = m->partition;
    dst->offset = m->offset;
    rd_kafka_timestamp_type_t tstype;
    dst->timestamp = rd_kafka_message_timestamp(m, &tstype);
    if (!ok) {
        free(dst->key);
        free(dst->value);
        return -1;
    }
    out->count++;
    return 0;
}

static int cmp_msg(const void *a, const void *b)
{
    const tkc_kafka_test_msg_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return 0;
}

/* Errors after which waiting longer cannot help. */
static bool consume_error_is_fatal(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__FATAL:
        return true;
    default:
        return false;
    }
}

static rd_kafka_t *new_consumer(const char *bootstrap,
                                tkc_kafka_test_isolation_t isolation,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = tkc_kafka_test_conf(bootstrap, errstr, errstr_size);
    if (conf == NULL)
        return NULL;
    /* A group id is required by the consumer API even with manual
     * assignment; nothing is committed to it. */
    char group[96];
    snprintf(group, sizeof(group), "tkc-kafka-test-%ld-%u", (long)getpid(),
             atomic_fetch_add(&name_counter, 1u) + 1u);
    const char *const props[][2] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "100"},
        {"isolation.level", isolation == TKC_KAFKA_TEST_READ_COMMITTED
                                ? "read_committed"
                                : "read_uncommitted"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], buf,
                              sizeof(buf)) != RD_KAFKA_CONF_OK) {
            set_err(errstr, errstr_size, "%s: %s", props[i][0], buf);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, buf, sizeof(buf));
    if (rk == NULL) {
        set_err(errstr, errstr_size, "rd_kafka_new: %s", buf);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int tkc_kafka_test_consume_all(const char *bootstrap, const char *topic,
                               tkc_kafka_test_isolation_t isolation,
                               int timeout_ms, tkc_kafka_test_msgs_t *out,
                               char *errstr, size_t errstr_size)
{
    out->msgs = NULL;
    out->count = 0;
    timeout_ms = effective_timeout(timeout_ms);
    int64_t deadline = now_ms() + timeout_ms;

    rd_kafka_t *rk = new_consumer(bootstrap, isolation, errstr, errstr_size);
    if (rk == NULL)
        return -1;

    int rc = -1;
    size_t cap = 0;
    int64_t *end = NULL;  /* per partition: stop before this offset */
    bool *done = NULL;    /* per partition: reached end */
    rd_kafka_topic_partition_list_t *parts = NULL;
    char lasterr[256] = "";

    int nparts = 0;
    int r = topic_metadata(rk, topic, remaining_ms(deadline), &nparts, errstr,
                           errstr_size);
    if (r != 1) {
        if (r == 0 && errstr != NULL && *errstr == '\0')
            set_err(errstr, errstr_size, "topic %s not found", topic);
        goto out;
    }
    end = calloc((size_t)nparts, sizeof(*end));
    done = calloc((size_t)nparts, sizeof(*done));
    parts = rd_kafka_topic_partition_list_new(nparts);
    if (end == NULL || done == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        goto out;
    }
    int pending = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, topic, p, &lo, &hi, remaining_ms(deadline));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_err(errstr, errstr_size, "watermarks of %s [%d]: %s", topic,
                    p, rd_kafka_err2str(err));
            goto out;
        }
        end[p] = hi;
        done[p] = hi <= lo;
        if (!done[p]) {
            pending++;
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        }
    }
    if (pending > 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_err(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
            goto out;
        }
    }

    /*
     * A partition is done once a message at end-1 or beyond arrived, or on
     * a partition-EOF event: the consumer caught up with the broker's end
     * (the last stable offset for read_committed), which is never below
     * the end offset read above.  The EOF rule matters for read_committed,
     * where an open transaction, aborted records or control records leave
     * no message at end-1.
     */
    while (pending > 0) {
        if (now_ms() >= deadline) {
            int p0 = 0;
            while (p0 < nparts && done[p0])
                p0++;
            set_err(errstr, errstr_size, "consuming %s timed out after %d ms "
                    "with %zu messages; partition %d not at end offset %" PRId64
                    "%s%s", topic, timeout_ms, out->count, p0,
                    p0 < nparts ? end[p0] : -1, *lasterr ? "; last error: " : "",
                    lasterr);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        int p = m->partition;
        bool ours = m->rkt != NULL && p >= 0 && p < nparts &&
                    strcmp(rd_kafka_topic_name(m->rkt), topic) == 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (ours && !done[p]) {
                done[p] = true;
                pending--;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(lasterr, sizeof(lasterr), "%s",
                     rd_kafka_message_errstr(m));
            if (consume_error_is_fatal(m->err)) {
                set_err(errstr, errstr_size, "consuming %s: %s", topic,
                        lasterr);
                rd_kafka_message_destroy(m);
                goto out;
            }
        } else if (ours && !done[p] && m->offset < end[p]) {
            if (append_msg(out, &cap, m) != 0) {
                set_err(errstr, errstr_size, "out of memory");
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (m->offset + 1 >= end[p]) {
                done[p] = true;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (out->count > 1)
        qsort(out->msgs, out->count, sizeof(*out->msgs), cmp_msg);
    rc = 0;

out:
    if (rc != 0)
        tkc_kafka_test_msgs_free(out);
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    free(end);
    free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
