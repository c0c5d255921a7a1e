/*
 * wm_watch.c: watermark lag as a Kafka consumer sees it (issue 7, `make bench`).
 *
 *   bench-wm-watch --bootstrap HOST:PORT --topic PREFIX.watermark
 *                  --schema-dir DIR [--from-beginning]
 *
 * Consumes the connector's watermark topic live (every partition, from the
 * end unless --from-beginning) and, for each watermark as it arrives, prints
 * one line to stdout and flushes it:
 *
 *   ARRIVAL_MS LAG_MS RESOLVED_TS
 *
 * ARRIVAL_MS is this machine's wall clock when the message was handed to us,
 * LAG_MS = ARRIVAL_MS - physical(resolved_ts) (resolved_ts >> 18). The bench
 * script turns these lines into max / p99 lag and the time to recovery; this
 * program keeps no statistics so a partial run still leaves usable lines.
 *
 * Why a separate consumer rather than the connector's own /status lag: the
 * issue asks for the lag a downstream reader experiences, which includes the
 * producer's linger, the broker's acknowledgement and the fetch path. Why
 * wall clock: tikv-sim's TSO is the same machine's clock, so no skew term.
 *
 * read_uncommitted: the bench runs at-least-once, where every watermark is
 * visible as soon as it is acknowledged. Runs until SIGTERM/SIGINT, exit 0.
 */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro_codec.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_or_die(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "wm_watch: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL, *schema_dir = NULL;
    int from_beginning = 0;
    static const struct option lo[] = {{"bootstrap", 1, 0, 'b'},
                                       {"topic", 1, 0, 't'},
                                       {"schema-dir", 1, 0, 's'},
                                       {"from-beginning", 0, 0, 'f'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 's': schema_dir = optarg; break;
        case 'f': from_beginning = 1; break;
        default:
            fprintf(stderr, "usage: bench-wm-watch --bootstrap B --topic T --schema-dir D "
                            "[--from-beginning]\n");
            return 2;
        }
    }
    if (!bootstrap || !topic || !schema_dir) {
        fprintf(stderr, "wm_watch: --bootstrap, --topic and --schema-dir are required\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    char err[512];
    tkc_avro_codec_t *codec = tkc_avro_codec_new(schema_dir, NULL, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "wm_watch: codec: %s\n", err);
        return 1;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set_or_die(conf, "bootstrap.servers", bootstrap);
    set_or_die(conf, "group.id", "tkc-bench-wm-watch");
    set_or_die(conf, "enable.auto.commit", "false");
    set_or_die(conf, "isolation.level", "read_uncommitted");
    set_or_die(conf, "fetch.wait.max.ms", "10");
    set_or_die(conf, "reconnect.backoff.max.ms", "1000");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "wm_watch: %s\n", err);
        return 1;
    }
    /* The topic may not exist yet when we start (the connector creates it):
     * wait for it, then assign every partition explicitly (no group
     * rebalance delay). */
    int parts = 0;
    while (!g_stop && parts == 0) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                parts = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (parts == 0) {
            struct timespec ts = {0, 200000000L};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    fprintf(stderr, "wm_watch: watching %s (%d partitions)\n", topic, parts);

    long bad = 0;
    while (!g_stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        int64_t now = wall_ms();
        if (!m->err && m->payload) {
            tkc_avro_watermark_t wm = {0};
            if (tkc_avro_codec_decode_watermark(codec, m->payload, m->len, &wm, err,
                                                sizeof(err)) == TKC_ERR_OK) {
                int64_t phys = (int64_t)(wm.resolved_ts >> 18);
                printf("%" PRId64 " %" PRId64 " %" PRIu64 "\n", now, now - phys,
                       wm.resolved_ts);
                fflush(stdout);
            } else if (bad++ == 0) {
                fprintf(stderr, "wm_watch: undecodable message: %s\n", err);
            }
            tkc_avro_watermark_clear(&wm);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    tkc_avro_codec_destroy(codec);
    return 0;
}
