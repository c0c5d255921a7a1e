/*
 * kafka_sink.c: librdkafka producer with ordered, loss-free delivery
 * accounting (see kafka_sink.h for the contract).
 *
 * Owned by the pipeline thread. librdkafka runs its own threads; delivery
 * reports and error callbacks are queued by it and served by rd_kafka_poll()
 * on our thread, so no state here is shared with librdkafka's threads (the
 * log callback only formats a line).
 *
 * Per partition, the messages not yet reported delivered form a FIFO in
 * produce order. Each message may have several copies in librdkafka (see
 * re-sends below); each copy is an `attempt` that carries the message's
 * generation at the time it was produced, and only a report for the current
 * generation counts. A message is reported delivered when its current copy is
 * acknowledged AND it is at the head of its FIFO; reports therefore come out
 * in produce order per partition, whatever order librdkafka serves them in.
 *
 * Local timeouts and ordering. With an idempotent producer, librdkafka keeps
 * a partition's messages in order across retries, but a message that hits
 * message.timeout.ms is dropped from the sequence (INTRODUCTION.md "Message
 * timeout considerations": the epoch is bumped and later messages go on),
 * so the later messages can land before a copy we produce again. Producing
 * only the timed-out message again would put it after newer changes of the
 * same key. So on a timeout of message m we re-produce m and every later
 * message of the partition, in order (bumping their generation, so the
 * older copies no longer count), and hold new messages for that partition
 * until the re-send is queued. Old copies that still land make duplicates
 * but the log's last occurrences are in order again, and nothing is
 * reported delivered before its newest copy is acknowledged. This only
 * applies when the operator configures a finite message.timeout.ms; by
 * default it is infinite and librdkafka retries in order forever. In
 * transactional mode a timeout fails the transaction instead (the pipeline
 * aborts and restarts from the checkpoint), because the transaction can no
 * longer commit what it lost.
 *
 * A value buffer is owned by its message and lent to librdkafka for each
 * copy (no RD_KAFKA_MSG_F_COPY / _FREE), so a re-send needs no encoder and
 * the buffer is freed only after the last copy's report.
 *
 * Allocations per message: one block holds the message, its key bytes and
 * the record of its first copy (attempt); only a re-send allocates another
 * attempt. At 100k+ messages/s the per-message malloc/free pairs (message,
 * key, attempt) were a large share of the pipeline thread, and since a
 * message is freed thousands of messages after it was allocated, they
 * missed the allocator's per-thread cache.
 */
#include "kafka_sink.h"
#include "util/err.h"

#include <inttypes.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/mem.h"

#define DEFAULT_MAX_INFLIGHT ((size_t)64 * 1024 * 1024)

/*
 * What one in-flight message costs besides its key and value bytes: our
 * sink_msg_t and attempt record, the key copy, and librdkafka's own message
 * (about 200 bytes in 2.0), with malloc's headers. Charged against
 * max_inflight so that the budget bounds the memory, not only the payload:
 * for 300-byte rows the overhead is larger than the payload.
 */
#define MSG_OVERHEAD_BYTES 384

static size_t msg_charge(size_t key_len, size_t value_len)
{
    return key_len + value_len + MSG_OVERHEAD_BYTES;
}
#define DEFAULT_TIMEOUT_MS 30000

typedef struct sink_msg_s sink_msg_t;
typedef struct topic_s topic_t;

typedef struct part_s {
    sink_msg_t *head, *tail;
    sink_msg_t *resend; /* next message to produce again, NULL when none */
    uint64_t failures;  /* messages reported failed */
} part_t;

struct topic_s {
    char *name;
    rd_kafka_topic_t *rkt;
    int32_t n_parts;
    part_t *parts;
};

typedef struct attempt_s {
    struct attempt_s *prev, *next; /* all live attempts, for destroy */
    sink_msg_t *msg;
    uint32_t gen;
} attempt_t;

struct sink_msg_s {
    sink_msg_t *prev, *next; /* partition FIFO; unlinked once reported */
    topic_t *topic;
    int32_t partition;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    void *opaque;
    attempt_t first;  /* the first copy's attempt, in the same block */
    bool first_busy;  /* `first` is inside librdkafka */
    uint32_t gen;    /* current generation */
    uint32_t copies; /* attempts still inside librdkafka */
    int64_t offset;
    bool acked;      /* the current generation is acknowledged */
    bool failed;     /* reported failed; holds its partition */
    bool linked;     /* still in the FIFO */
    uint8_t key_buf[]; /* the key bytes (m->key points here) */
};

struct tkc_kafka_sink_s {
    rd_kafka_t *rk;
    char *bootstrap;
    tkc_kafka_prop_t *props;
    size_t n_props;
    bool transactional;
    bool txn_open;
    bool mock;
    size_t max_inflight;
    int64_t timeout_ms;
    tkc_kafka_sink_dr_cb *dr_cb;
    void *opaque;

    tkc_hashmap_t *topics; /* name -> topic_t */
    attempt_t *attempts;   /* live attempts */
    bool destroying;

    bool fatal;
    char fatal_str[512];

    tkc_kafka_sink_stats_t stats;
};

static void count_error(tkc_kafka_sink_t *sk, rd_kafka_resp_err_t err)
{
    tkc_kafka_sink_stats_t *st = &sk->stats;
    for (size_t i = 0; i < st->n_error_kinds; i++) {
        if (st->errors[i].err == err) {
            st->errors[i].count++;
            return;
        }
    }
    if (st->n_error_kinds < TKC_KAFKA_SINK_MAX_ERROR_KINDS) {
        st->errors[st->n_error_kinds].err = err;
        st->errors[st->n_error_kinds].count = 1;
        st->n_error_kinds++;
    }
}

/* ===== callbacks from librdkafka ===== */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    tkc_log_level_t l = level <= 3 ? TKC_LOG_ERROR
                        : level == 4 ? TKC_LOG_WARN
                        : level <= 6 ? TKC_LOG_INFO
                                     : TKC_LOG_DEBUG;
    tkc_log(l, "kafka", "event=rdkafka_log fac=%s msg=\"%s\"", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    tkc_kafka_sink_t *sk = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[400];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        if (!sk->fatal) {
            sk->fatal = true;
            snprintf(sk->fatal_str, sizeof(sk->fatal_str), "%s: %s", rd_kafka_err2name(ferr),
                     buf);
            count_error(sk, ferr);
            tkc_log(TKC_LOG_ERROR, "sink", "event=producer_fatal err=%s reason=\"%s\"",
                    rd_kafka_err2name(ferr), buf);
        }
        return;
    }
    tkc_log(TKC_LOG_WARN, "sink", "event=kafka_error err=%s reason=\"%s\"",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ===== messages ===== */

static void msg_free(tkc_kafka_sink_t *sk, sink_msg_t *m)
{
    sk->stats.inflight_bytes -= msg_charge(m->key_len, m->value_len);
    tkc_free(m->value);
    tkc_free(m); /* the key and the first attempt live in the same block */
}

/* The attempt record for a new copy of @p m: its own first one if free. */
static attempt_t *attempt_get(sink_msg_t *m)
{
    if (!m->first_busy) {
        m->first_busy = true;
        return &m->first;
    }
    return tkc_malloc(sizeof(attempt_t));
}

static void attempt_put(attempt_t *a)
{
    if (a == &a->msg->first)
        a->msg->first_busy = false;
    else
        tkc_free(a);
}

static void fifo_unlink(part_t *p, sink_msg_t *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        p->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        p->tail = m->prev;
    if (p->resend == m)
        p->resend = m->next;
    m->prev = m->next = NULL;
    m->linked = false;
}

static void report(tkc_kafka_sink_t *sk, sink_msg_t *m, rd_kafka_resp_err_t err,
                   const char *errstr)
{
    if (sk->destroying || !sk->dr_cb)
        return;
    tkc_kafka_sink_report_t r = {
        .topic = m->topic->name,
        .partition = m->partition,
        .offset = err ? -1 : m->offset,
        .err = err,
        .errstr = errstr,
        .bytes = m->key_len + m->value_len,
    };
    sk->dr_cb(sk->opaque, m->opaque, &r);
}

/* Reports and unlinks acknowledged messages from the head of the FIFO. */
static void pump_head(tkc_kafka_sink_t *sk, part_t *p)
{
    while (p->head && p->head->acked && !p->head->failed) {
        sink_msg_t *m = p->head;
        fifo_unlink(p, m);
        sk->stats.delivered++;
        sk->stats.inflight_msgs--;
        report(sk, m, RD_KAFKA_RESP_ERR_NO_ERROR, NULL);
        if (m->copies == 0)
            msg_free(sk, m);
        /* else: freed when the report of its last old copy arrives */
    }
}

static rd_kafka_resp_err_t produce_copy(tkc_kafka_sink_t *sk, sink_msg_t *m)
{
    attempt_t *a = attempt_get(m);
    a->msg = m;
    a->gen = m->gen;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        sk->rk, RD_KAFKA_V_RKT(m->topic->rkt), RD_KAFKA_V_PARTITION(m->partition),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->value, m->value_len),
        RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_OPAQUE(a), RD_KAFKA_V_END);
    if (err) {
        attempt_put(a);
        return err;
    }
    a->prev = NULL;
    a->next = sk->attempts;
    if (sk->attempts)
        sk->attempts->prev = a;
    sk->attempts = a;
    m->copies++;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void fail_msg(tkc_kafka_sink_t *sk, sink_msg_t *m, rd_kafka_resp_err_t err,
                     const char *errstr)
{
    if (m->failed)
        return;
    m->failed = true;
    sk->stats.failed++;
    count_error(sk, err);
    /* one line per partition at error level; the rest of a failed batch at
     * debug (they are counted) */
    part_t *p = &m->topic->parts[m->partition];
    tkc_log(p->failures++ ? TKC_LOG_DEBUG : TKC_LOG_ERROR, "sink",
            "event=delivery_failed topic=%s partition=%" PRId32
            " err=%s bytes=%zu reason=\"%s\" action=hold",
            m->topic->name, m->partition, rd_kafka_err2name(err), m->key_len + m->value_len,
            errstr ? errstr : rd_kafka_err2str(err));
    report(sk, m, err, errstr ? errstr : rd_kafka_err2str(err));
}

/* Queues the pending re-sends of a partition, in order, while librdkafka takes them. */
static void pump_resend(tkc_kafka_sink_t *sk, part_t *p)
{
    while (p->resend && !sk->fatal) {
        sink_msg_t *m = p->resend;
        if (!m->failed) {
            rd_kafka_resp_err_t err = produce_copy(sk, m);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                return; /* continue at the next poll */
            if (err) {
                fail_msg(sk, m, err, rd_kafka_err2str(err));
            } else {
                sk->stats.reproduced++;
            }
        }
        p->resend = m->next;
    }
}

/* Errors after which producing the same message again can succeed. */
static bool err_is_timeout(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        return true;
    default:
        return false;
    }
}

static void rewind_from(tkc_kafka_sink_t *sk, part_t *p, sink_msg_t *m)
{
    uint32_t n = 0;
    for (sink_msg_t *x = m; x; x = x->next) {
        x->gen++;
        x->acked = false;
        n++;
    }
    p->resend = m;
    tkc_log(TKC_LOG_WARN, "sink",
            "event=resend topic=%s partition=%" PRId32 " messages=%" PRIu32
            " reason=local_timeout",
            m->topic->name, m->partition, n);
    pump_resend(sk, p);
}

static void attempt_unlink(tkc_kafka_sink_t *sk, attempt_t *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        sk->attempts = a->next;
    if (a->next)
        a->next->prev = a->prev;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    tkc_kafka_sink_t *sk = opaque;
    attempt_t *a = rkm->_private;
    sink_msg_t *m = a->msg;
    uint32_t gen = a->gen;
    attempt_unlink(sk, a);
    attempt_put(a);
    m->copies--;

    if (!m->linked) {
        /* reported already; this was an old copy */
        if (m->copies == 0)
            msg_free(sk, m);
        return;
    }
    if (sk->destroying || gen != m->gen || m->failed)
        return;
    part_t *p = &m->topic->parts[m->partition];
    rd_kafka_resp_err_t err = rkm->err;
    if (!err || err == RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER) {
        m->acked = true;
        m->offset = rkm->offset;
        pump_head(sk, p);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return; /* our own purge */
    if (err_is_timeout(err) && !sk->transactional && !sk->fatal) {
        count_error(sk, err);
        rewind_from(sk, p, m);
        return;
    }
    /* not rd_kafka_message_errstr(): for a delivery report it returns the
     * payload, which is our value, not text */
    fail_msg(sk, m, err, rd_kafka_err2str(err));
}

/* ===== construction ===== */

static tkc_err_t conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                          char *errstr, size_t errstr_size)
{
    char buf[512];
    if (rd_kafka_conf_set(conf, name, value, buf, sizeof(buf)) != RD_KAFKA_CONF_OK) {
        tkc_err_set(errstr, errstr_size, "kafka property %s=%s: %s", name, value, buf);
        return TKC_ERR_CONF;
    }
    return TKC_ERR_OK;
}

static bool user_sets(const tkc_kafka_prop_t *props, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(props[i].name, name) == 0)
            return true;
    return false;
}

static void topic_free(void *v)
{
    topic_t *t = v;
    rd_kafka_topic_destroy(t->rkt);
    tkc_free(t->parts);
    tkc_free(t->name);
    tkc_free(t);
}

tkc_kafka_sink_t *tkc_kafka_sink_new(const tkc_kafka_sink_config_t *cfg, char *errstr,
                                     size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[512];
    bool txn = cfg->transactional_id && *cfg->transactional_id;
    /*
     * librdkafka's queue holds only what produce() let through, which
     * max_inflight bounds (the payload is below the charge); its own limit
     * (default 1 GiB) is set to the same budget plus 1 MiB for watermark
     * copies, so that nothing inside librdkafka can outgrow the memory
     * budget either (an operator's value still wins).
     */
    size_t max_inflight = cfg->max_inflight_bytes ? cfg->max_inflight_bytes : DEFAULT_MAX_INFLIGHT;
    char queue_kb[32];
    snprintf(queue_kb, sizeof(queue_kb), "%zu", max_inflight / 1024 + 1024);
    /* defaults first, then the operator's pass-through properties win */
    struct {
        const char *name, *value;
        bool when;
    } defaults[] = {
        {"bootstrap.servers", cfg->bootstrap, cfg->bootstrap && cfg->mock_brokers <= 0},
        {"enable.idempotence", "true", true},
        {"acks", "all", true},
        {"partitioner", "murmur2_random", true},
        {"reconnect.backoff.max.ms", "1000", true},
        {"allow.auto.create.topics", "false", true},
        /* infinite: librdkafka retries in order until the broker is back */
        {"message.timeout.ms", "0", !txn},
        {"linger.ms", "5", true},
        {"queue.buffering.max.kbytes", queue_kb, true},
        {"transactional.id", cfg->transactional_id, txn},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (defaults[i].when &&
            conf_set(conf, defaults[i].name, defaults[i].value, errstr, errstr_size))
            goto fail;
    }
    if (cfg->mock_brokers > 0) {
        snprintf(buf, sizeof(buf), "%d", cfg->mock_brokers);
        if (conf_set(conf, "test.mock.num.brokers", buf, errstr, errstr_size))
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_props; i++)
        if (conf_set(conf, cfg->props[i].name, cfg->props[i].value, errstr, errstr_size))
            goto fail;
    if (txn && user_sets(cfg->props, cfg->n_props, "enable.idempotence")) {
        char v[16];
        size_t vn = sizeof(v);
        if (rd_kafka_conf_get(conf, "enable.idempotence", v, &vn) == RD_KAFKA_CONF_OK &&
            strcmp(v, "false") == 0) {
            tkc_err_set(errstr, errstr_size, "exactly-once needs enable.idempotence=true");
            goto fail;
        }
    }

    tkc_kafka_sink_t *sk = tkc_calloc(1, sizeof(*sk));
    sk->transactional = txn;
    sk->mock = cfg->mock_brokers > 0;
    sk->max_inflight = max_inflight;
    sk->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    sk->dr_cb = cfg->dr_cb;
    sk->opaque = cfg->opaque;
    sk->topics = tkc_hashmap_new();
    sk->n_props = cfg->n_props;
    sk->props = tkc_calloc(cfg->n_props + 1, sizeof(*sk->props));
    for (size_t i = 0; i < cfg->n_props; i++) {
        sk->props[i].name = tkc_strdup(cfg->props[i].name);
        sk->props[i].value = tkc_strdup(cfg->props[i].value);
    }
    rd_kafka_conf_set_opaque(conf, sk);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    sk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, buf, sizeof(buf));
    if (!sk->rk) {
        tkc_err_set(errstr, errstr_size, "cannot create the Kafka producer: %s", buf);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new() only takes it on success */
        tkc_hashmap_destroy(sk->topics, NULL);
        for (size_t i = 0; i < sk->n_props; i++) {
            tkc_free((char *)sk->props[i].name);
            tkc_free((char *)sk->props[i].value);
        }
        tkc_free(sk->props);
        tkc_free(sk);
        return NULL;
    }
    char v[16];
    size_t vn = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(sk->rk), "enable.idempotence", v, &vn) ==
            RD_KAFKA_CONF_OK &&
        strcmp(v, "false") == 0)
        tkc_log(TKC_LOG_WARN, "sink",
                "event=idempotence_disabled reason=\"enable.idempotence=false: a retry may "
                "reorder or duplicate a key's changes within its partition\"");
    if (sk->mock) {
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(sk->rk);
        sk->bootstrap = tkc_strdup(mc ? rd_kafka_mock_cluster_bootstraps(mc) : "");
    } else {
        sk->bootstrap = tkc_strdup(cfg->bootstrap ? cfg->bootstrap : "");
    }
    return sk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

void tkc_kafka_sink_destroy(tkc_kafka_sink_t *sk)
{
    if (!sk)
        return;
    sk->destroying = true;
    /* Drop what is queued and wait (bounded) for the purge reports, which
     * free the attempts; what remains after that is freed by hand. */
    rd_kafka_purge(sk->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t deadline = tkc_clock_mono_ms() + 5000;
    while (rd_kafka_outq_len(sk->rk) > 0 && tkc_clock_mono_ms() < deadline)
        rd_kafka_poll(sk->rk, 50);
    rd_kafka_poll(sk->rk, 0);
    /* free messages still linked, and old copies' messages via attempts */
    const void *k;
    size_t kl;
    void *v;
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    while (tkc_hashmap_next(sk->topics, &it, &k, &kl, &v)) {
        topic_t *t = v;
        for (int32_t i = 0; i < t->n_parts; i++) {
            sink_msg_t *m = t->parts[i].head;
            while (m) {
                sink_msg_t *next = m->next;
                m->linked = false;
                if (m->copies == 0)
                    msg_free(sk, m);
                m = next;
            }
        }
    }
    tkc_hashmap_destroy(sk->topics, topic_free);
    sk->topics = NULL;
    rd_kafka_destroy(sk->rk);
    /* librdkafka dropped whatever it still held without reports */
    while (sk->attempts) {
        attempt_t *a = sk->attempts;
        attempt_unlink(sk, a);
        sink_msg_t *m = a->msg;
        attempt_put(a);
        if (--m->copies == 0 && !m->linked)
            msg_free(sk, m);
    }
    for (size_t i = 0; i < sk->n_props; i++) {
        tkc_free((char *)sk->props[i].name);
        tkc_free((char *)sk->props[i].value);
    }
    tkc_free(sk->props);
    tkc_free(sk->bootstrap);
    tkc_free(sk);
}

const char *tkc_kafka_sink_bootstrap(const tkc_kafka_sink_t *sk)
{
    return sk->bootstrap;
}

struct rd_kafka_mock_cluster_s *tkc_kafka_sink_mock_cluster(tkc_kafka_sink_t *sk)
{
    return sk->mock ? rd_kafka_handle_mock_cluster(sk->rk) : NULL;
}

/* Producer-only properties that a consumer would only warn about. */
static bool producer_only(const char *name)
{
    static const char *const names[] = {
        "enable.idempotence", "acks", "request.required.acks", "partitioner",
        "message.timeout.ms", "delivery.timeout.ms", "linger.ms", "queue.buffering.max.ms",
        "queue.buffering.max.messages", "queue.buffering.max.kbytes", "batch.num.messages",
        "batch.size", "compression.codec", "compression.type", "transactional.id",
        "transaction.timeout.ms", "enable.gapless.guarantee", "retries", "message.send.max.retries",
        "test.mock.num.brokers", "sticky.partitioning.linger.ms", "compression.level",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

rd_kafka_conf_t *tkc_kafka_sink_client_conf(const tkc_kafka_sink_t *sk, char *errstr,
                                            size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", sk->bootstrap, errstr, errstr_size) ||
        conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < sk->n_props; i++) {
        if (producer_only(sk->props[i].name) || strcmp(sk->props[i].name, "bootstrap.servers") == 0)
            continue;
        if (conf_set(conf, sk->props[i].name, sk->props[i].value, errstr, errstr_size))
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ===== topics ===== */

static int remaining(int64_t deadline)
{
    int64_t left = deadline - tkc_clock_mono_ms();
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/*
 * Reads the topic's metadata. @returns partitions with a leader each (> 0),
 * 0 when the topic is unknown or not ready yet, -1 on a request failure.
 */
static int topic_ready_partitions(tkc_kafka_sink_t *sk, rd_kafka_topic_t *rkt, int timeout_ms,
                                  bool *missing, char *errstr, size_t errstr_size)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(sk->rk, 0, rkt, &md, timeout_ms);
    *missing = false;
    if (err) {
        tkc_err_set(errstr, errstr_size, "metadata of %s: %s", rd_kafka_topic_name(rkt),
                rd_kafka_err2str(err));
        return -1;
    }
    int n = 0;
    if (md->topic_cnt == 1) {
        const rd_kafka_metadata_topic_t *t = &md->topics[0];
        if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t->partition_cnt == 0) {
            *missing = true;
        } else if (!t->err) {
            n = t->partition_cnt;
            for (int i = 0; i < t->partition_cnt; i++)
                if (t->partitions[i].leader < 0 || t->partitions[i].err)
                    n = 0;
        } else {
            tkc_err_set(errstr, errstr_size, "topic %s: %s", t->topic, rd_kafka_err2str(t->err));
        }
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

static tkc_err_t create_topic(tkc_kafka_sink_t *sk, const char *topic, int partitions,
                              int replication, bool compacted, int64_t deadline, char *errstr,
                              size_t errstr_size)
{
    if (sk->mock) {
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(sk->rk);
        /* the mock has no broker defaults: its auto-create uses 4 partitions */
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mc, topic, partitions > 0 ? partitions : 4, replication > 0 ? replication : 1);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            tkc_err_set(errstr, errstr_size, "mock topic %s: %s", topic, rd_kafka_err2str(err));
            return TKC_ERR_IO;
        }
        return TKC_ERR_OK;
    }
    char buf[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication, buf,
                                                    sizeof(buf));
    if (!nt) {
        tkc_err_set(errstr, errstr_size, "topic %s: %s", topic, buf);
        return TKC_ERR_INVALID_ARG;
    }
    if (compacted)
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(sk->rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(sk->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, remaining(deadline), buf, sizeof(buf));
    rd_kafka_AdminOptions_set_operation_timeout(opts, remaining(deadline), buf, sizeof(buf));
    rd_kafka_CreateTopics(sk->rk, &nt, 1, opts, q);
    tkc_err_t result = TKC_ERR_TIMED_OUT;
    tkc_err_set(errstr, errstr_size, "creating topic %s timed out", topic);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, remaining(deadline) + 1000);
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        if (rd_kafka_event_error(ev)) {
            tkc_err_set(errstr, errstr_size, "creating topic %s: %s", topic,
                    rd_kafka_event_error_string(ev));
            result = TKC_ERR_IO;
        } else if (res) {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
            rd_kafka_resp_err_t terr = cnt ? rd_kafka_topic_result_error(tr[0])
                                           : RD_KAFKA_RESP_ERR_UNKNOWN;
            if (!terr || terr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                result = TKC_ERR_OK;
            } else {
                const char *es = cnt ? rd_kafka_topic_result_error_string(tr[0]) : NULL;
                tkc_err_set(errstr, errstr_size, "creating topic %s: %s", topic,
                        es ? es : rd_kafka_err2str(terr));
                result = TKC_ERR_IO;
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (result == TKC_ERR_OK) {
        tkc_log(TKC_LOG_INFO, "sink", "event=topic_created topic=%s partitions=%d replication=%d%s",
                topic, partitions, replication, compacted ? " cleanup_policy=compact" : "");
    }
    return result;
}

tkc_err_t tkc_kafka_sink_ensure_topic(tkc_kafka_sink_t *sk, const char *topic, int partitions,
                                      int replication, bool compacted, char *errstr,
                                      size_t errstr_size)
{
    if (tkc_hashmap_get(sk->topics, topic, strlen(topic)))
        return TKC_ERR_OK;
    int64_t deadline = tkc_clock_mono_ms() + sk->timeout_ms;
    bool created = false;
    if (sk->mock) {
        /* The mock creates unknown topics (4 partitions) on any metadata
         * request, whatever allow.auto.create.topics says, and
         * rd_kafka_topic_new() below sends one: create it first. */
        tkc_err_t err = create_topic(sk, topic, partitions, replication, compacted, deadline,
                                     errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
        created = true;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(sk->rk, topic, NULL);
    if (!rkt) {
        tkc_err_set(errstr, errstr_size, "topic %s: %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return TKC_ERR_INVALID_ARG;
    }
    int n = 0;
    char lasterr[512] = "";
    for (;;) {
        bool missing = false;
        n = topic_ready_partitions(sk, rkt, remaining(deadline), &missing, lasterr,
                                   sizeof(lasterr));
        if (n > 0)
            break;
        if (missing && !created) {
            /* <= 0: the broker's defaults (num.partitions,
             * default.replication.factor; KIP-464, Kafka 2.4+) */
            tkc_err_t err = create_topic(sk, topic, partitions > 0 ? partitions : -1,
                                         replication > 0 ? replication : -1, compacted, deadline,
                                         errstr, errstr_size);
            if (err != TKC_ERR_OK) {
                rd_kafka_topic_destroy(rkt);
                return err;
            }
            created = true;
            continue;
        }
        if (tkc_clock_mono_ms() >= deadline) {
            tkc_err_set(errstr, errstr_size, "topic %s not ready in time%s%s", topic,
                    *lasterr ? ": " : "", lasterr);
            rd_kafka_topic_destroy(rkt);
            return TKC_ERR_TIMED_OUT;
        }
        rd_kafka_poll(sk->rk, 100);
    }
    if (!created && partitions > 0 && n != partitions)
        tkc_log(TKC_LOG_WARN, "sink",
                "event=topic_partitions_differ topic=%s partitions=%d configured=%d "
                "msg=\"using the topic as it is; keys hash over its %d partitions\"",
                topic, n, partitions, n);
    topic_t *t = tkc_calloc(1, sizeof(*t));
    t->name = tkc_strdup(topic);
    t->rkt = rkt;
    t->n_parts = n;
    t->parts = tkc_calloc((size_t)n, sizeof(part_t));
    tkc_hashmap_put(sk->topics, topic, strlen(topic), t);
    return TKC_ERR_OK;
}

int32_t tkc_kafka_sink_partitions(const tkc_kafka_sink_t *sk, const char *topic)
{
    topic_t *t = tkc_hashmap_get(sk->topics, topic, strlen(topic));
    return t ? t->n_parts : -1;
}

static int32_t partition_for(const topic_t *t, const void *key, size_t key_len)
{
    if (!key)
        return 0; /* murmur2_random would pick a random one: keep it stable */
    return rd_kafka_msg_partitioner_murmur2_random(t->rkt, key, key_len, t->n_parts, NULL, NULL);
}

int32_t tkc_kafka_sink_partition_for_key(const tkc_kafka_sink_t *sk, const char *topic,
                                         const void *key, size_t key_len)
{
    topic_t *t = tkc_hashmap_get(sk->topics, topic, strlen(topic));
    return t ? partition_for(t, key, key_len) : -1;
}

/* ===== produce / poll ===== */

tkc_err_t tkc_kafka_sink_produce(tkc_kafka_sink_t *sk, const char *topic, int32_t partition,
                                 const void *key, size_t key_len, uint8_t *value,
                                 size_t value_len, void *msg_opaque, char *errstr,
                                 size_t errstr_size)
{
    if (sk->fatal) {
        tkc_err_set(errstr, errstr_size, "producer failed: %s", sk->fatal_str);
        return TKC_ERR_KAFKA_FATAL;
    }
    topic_t *t = tkc_hashmap_get(sk->topics, topic, strlen(topic));
    if (!t) {
        count_error(sk, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
        tkc_err_set(errstr, errstr_size, "topic %s was not set up", topic);
        return TKC_ERR_INVALID_ARG;
    }
    if (partition < 0)
        partition = partition_for(t, key, key_len);
    if (partition >= t->n_parts) {
        count_error(sk, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION);
        tkc_err_set(errstr, errstr_size, "topic %s has no partition %" PRId32, topic, partition);
        return TKC_ERR_INVALID_ARG;
    }
    part_t *p = &t->parts[partition];
    if (p->resend) {
        pump_resend(sk, p);
        if (p->resend)
            return TKC_ERR_QUEUE_FULL;
    }
    if (sk->stats.inflight_bytes > 0 &&
        sk->stats.inflight_bytes + msg_charge(key_len, value_len) > sk->max_inflight)
        return TKC_ERR_QUEUE_FULL;

    sink_msg_t *m = tkc_malloc(sizeof(*m) + key_len);
    memset(m, 0, sizeof(*m));
    m->topic = t;
    m->partition = partition;
    m->key = NULL;
    if (key_len) {
        memcpy(m->key_buf, key, key_len);
        m->key = m->key_buf;
    }
    m->key_len = key_len;
    m->value = value;
    m->value_len = value_len;
    m->opaque = msg_opaque;
    m->offset = -1;
    rd_kafka_resp_err_t err = produce_copy(sk, m);
    if (err) {
        tkc_free(m);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return TKC_ERR_QUEUE_FULL;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[400];
            rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(sk->rk, buf, sizeof(buf));
            sk->fatal = true;
            snprintf(sk->fatal_str, sizeof(sk->fatal_str), "%s: %s", rd_kafka_err2name(ferr), buf);
            tkc_err_set(errstr, errstr_size, "producer failed: %s", sk->fatal_str);
            return TKC_ERR_KAFKA_FATAL;
        }
        count_error(sk, err);
        sk->stats.failed++;
        tkc_err_set(errstr, errstr_size,
                "%s [%" PRId32 "]: message of %zu bytes rejected by the client before sending: "
                "%s%s",
                topic, partition, key_len + value_len, rd_kafka_err2name(err),
                err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                    ? " (above the producer's message.max.bytes)"
                    : "");
        return TKC_ERR_INVALID_ARG;
    }
    m->linked = true;
    m->prev = p->tail;
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    sk->stats.produced++;
    sk->stats.inflight_msgs++;
    sk->stats.inflight_bytes += msg_charge(key_len, value_len);
    return TKC_ERR_OK;
}

int tkc_kafka_sink_poll(tkc_kafka_sink_t *sk, int timeout_ms)
{
    int n = rd_kafka_poll(sk->rk, timeout_ms);
    /* continue re-sends that librdkafka's queue could not take before */
    const void *k;
    size_t kl;
    void *v;
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    while (tkc_hashmap_next(sk->topics, &it, &k, &kl, &v)) {
        topic_t *t = v;
        for (int32_t i = 0; i < t->n_parts; i++)
            if (t->parts[i].resend)
                pump_resend(sk, &t->parts[i]);
    }
    return n;
}

tkc_err_t tkc_kafka_sink_fatal(const tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size)
{
    if (!sk->fatal)
        return TKC_ERR_OK;
    tkc_err_set(errstr, errstr_size, "%s", sk->fatal_str);
    return TKC_ERR_KAFKA_FATAL;
}

uint64_t tkc_kafka_sink_inflight(const tkc_kafka_sink_t *sk)
{
    return sk->stats.inflight_msgs;
}

void tkc_kafka_sink_stats(const tkc_kafka_sink_t *sk, tkc_kafka_sink_stats_t *out)
{
    *out = sk->stats;
}

/* ===== transactions ===== */

static tkc_err_t txn_result(tkc_kafka_sink_t *sk, rd_kafka_error_t *e, const char *what,
                            char *errstr, size_t errstr_size)
{
    if (!e)
        return TKC_ERR_OK;
    tkc_err_t r;
    rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    if (rd_kafka_error_is_fatal(e) || code == RD_KAFKA_RESP_ERR__FENCED) {
        r = TKC_ERR_KAFKA_FATAL;
        if (!sk->fatal) {
            sk->fatal = true;
            snprintf(sk->fatal_str, sizeof(sk->fatal_str), "%s: %s", rd_kafka_error_name(e),
                     rd_kafka_error_string(e));
        }
    } else if (rd_kafka_error_txn_requires_abort(e)) {
        r = TKC_ERR_IO;
    } else if (rd_kafka_error_is_retriable(e)) {
        r = TKC_ERR_TIMED_OUT;
    } else {
        /* librdkafka: treat an error that is neither as fatal */
        r = TKC_ERR_KAFKA_FATAL;
        if (!sk->fatal) {
            sk->fatal = true;
            snprintf(sk->fatal_str, sizeof(sk->fatal_str), "%s: %s", rd_kafka_error_name(e),
                     rd_kafka_error_string(e));
        }
    }
    count_error(sk, code);
    tkc_err_set(errstr, errstr_size, "%s: %s: %s", what, rd_kafka_error_name(e),
            rd_kafka_error_string(e));
    tkc_log(r == TKC_ERR_TIMED_OUT ? TKC_LOG_WARN : TKC_LOG_ERROR, "sink",
            "event=txn_error op=%s err=%s fatal=%d abortable=%d retriable=%d reason=\"%s\"", what,
            rd_kafka_error_name(e), rd_kafka_error_is_fatal(e),
            rd_kafka_error_txn_requires_abort(e), rd_kafka_error_is_retriable(e),
            rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return r;
}

tkc_err_t tkc_kafka_sink_txn_init(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size)
{
    return txn_result(sk, rd_kafka_init_transactions(sk->rk, (int)sk->timeout_ms),
                      "init_transactions", errstr, errstr_size);
}

tkc_err_t tkc_kafka_sink_txn_begin(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size)
{
    tkc_err_t r = txn_result(sk, rd_kafka_begin_transaction(sk->rk), "begin_transaction", errstr,
                             errstr_size);
    if (r == TKC_ERR_OK)
        sk->txn_open = true;
    return r;
}

tkc_err_t tkc_kafka_sink_txn_commit(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size)
{
    tkc_err_t r = txn_result(sk, rd_kafka_commit_transaction(sk->rk, (int)sk->timeout_ms),
                             "commit_transaction", errstr, errstr_size);
    /* serve the delivery reports the commit's flush produced */
    rd_kafka_poll(sk->rk, 0);
    if (r == TKC_ERR_OK)
        sk->txn_open = false;
    return r;
}

tkc_err_t tkc_kafka_sink_txn_abort(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size)
{
    tkc_err_t r = txn_result(sk, rd_kafka_abort_transaction(sk->rk, (int)sk->timeout_ms),
                             "abort_transaction", errstr, errstr_size);
    rd_kafka_poll(sk->rk, 0);
    if (r == TKC_ERR_OK)
        sk->txn_open = false;
    return r;
}

bool tkc_kafka_sink_txn_open(const tkc_kafka_sink_t *sk)
{
    return sk->txn_open;
}
