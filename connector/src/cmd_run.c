/*
 * cmd_run.c: `tikv-kafka-cdc run --config FILE`.
 *
 * Order: load and validate the configuration (exit 2 with every error),
 * apply [log], block SIGINT/SIGTERM (before any thread exists, so every
 * thread inherits the mask and only tkc_run's sigtimedwait sees them),
 * start the HTTP endpoint (so /healthz and /status answer during start-up,
 * which can take a while: topic creation, checkpoint read), then tkc_run().
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "http.h"
#include "metrics.h"
#include "run.h"
#include "status.h"
#include "util/log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tikv-kafka-cdc run --config FILE [--env-file FILE]\n"
            "\n"
            "Runs the change feed: reads TiKV's change data for the configured spans or\n"
            "tables, writes Avro row changes and watermarks to Kafka and commits the\n"
            "checkpoint. SIGINT or SIGTERM stop it gracefully (final watermark and\n"
            "checkpoint). Serves /metrics, /status and /healthz on [http] listen.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    the configuration (docs/configuration.md)\n"
            "      --env-file FILE  NAME=value lines applied like environment variables\n"
            "  -h, --help           this text\n"
            "\n"
            "exit codes: 0 stopped by a signal after a clean shutdown, 1 runtime failure,\n"
            "2 configuration error, 3 a configured feature is not available.\n");
}

int tkc_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"env-file", required_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *env_file = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'e':
            env_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return TKC_EXIT_OK;
        default:
            usage(stderr);
            return TKC_EXIT_USAGE;
        }
    }
    if (!path && optind < argc)
        path = argv[optind++];
    if (!path || optind < argc) {
        usage(stderr);
        return TKC_EXIT_USAGE;
    }
    tkc_conf_t *conf = tkc_cli_load_conf(path, env_file);
    if (!conf)
        return TKC_EXIT_USAGE;
    tkc_cli_apply_log(conf);
    tkc_run_block_signals();

    tkc_metrics_t *m = tkc_metrics_new();
    tkc_status_t *st = tkc_status_new(conf, m);
    tkc_http_t *http = NULL;
    int rc;
    if (conf->http.listen[0]) {
        char err[512];
        tkc_http_config_t hc = {
            .listen = conf->http.listen,
            .metrics = m,
            .status_json = tkc_status_http_json,
            .healthy = tkc_status_http_healthy,
            .opaque = st,
        };
        http = tkc_http_start(&hc, err, sizeof(err));
        if (!http) {
            tkc_log(TKC_LOG_ERROR, "main", "event=http_failed listen=%s msg=\"%s\"",
                    conf->http.listen, err);
            rc = TKC_EXIT_RUNTIME;
            goto out;
        }
        tkc_log(TKC_LOG_INFO, "main", "event=http_listening addr=%s port=%d", conf->http.listen,
                tkc_http_port(http));
    }
    tkc_log(TKC_LOG_INFO, "main", "event=start version=%s config=%s feed=%s", TKC_VERSION, path,
            conf->feed.id);
    rc = tkc_run(conf, st);
out:
    tkc_http_stop(http);
    tkc_status_destroy(st);
    tkc_metrics_destroy(m);
    tkc_conf_destroy(conf);
    return rc;
}
