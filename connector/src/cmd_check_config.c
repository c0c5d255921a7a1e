/*
 * cmd_check_config.c: `tikv-kafka-cdc check-config FILE`.
 *
 * Loads the file exactly as `run` would (same environment overrides), so a
 * file that passes here fails at run time only for reasons outside the
 * configuration (unreachable PD or Kafka). Every error is printed, each
 * naming file, line and key; the effective configuration goes to stdout
 * with secrets masked and each value's source, so an operator sees what the
 * environment changed.
 *
 * --keys-markdown prints the key table as Markdown (docs/configuration.md
 * embeds it; a unit test keeps the two equal).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run.h"
#include "util/mem.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tikv-kafka-cdc check-config FILE [--env-file FILE] [--quiet]\n"
            "       tikv-kafka-cdc check-config --keys-markdown\n"
            "\n"
            "Validates FILE with the environment applied (TKC_<SECTION>_<KEY>,\n"
            "TKC_RDKAFKA_<PROP>), prints every error (file:line: [section] key: why) and,\n"
            "when valid, the effective configuration with secrets masked.\n"
            "\n"
            "options:\n"
            "      --env-file FILE   NAME=value lines applied like environment variables\n"
            "                        (docker's env_file), on top of the environment\n"
            "  -q, --quiet           print nothing when valid\n"
            "      --keys-markdown   print the table of every key as Markdown and exit\n"
            "  -h, --help            this text\n"
            "\n"
            "exit codes: 0 valid, 2 invalid (or bad usage).\n");
}

int tkc_cmd_check_config(int argc, char **argv)
{
    static const struct option opts[] = {{"env-file", required_argument, NULL, 'e'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"keys-markdown", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *env_file = NULL;
    bool quiet = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            env_file = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'k': {
            char *md = tkc_conf_keys_markdown();
            fputs(md, stdout);
            tkc_free(md);
            return TKC_EXIT_OK;
        }
        case 'h':
            usage(stdout);
            return TKC_EXIT_OK;
        default:
            usage(stderr);
            return TKC_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return TKC_EXIT_USAGE;
    }
    const char *path = argv[optind];
    tkc_conf_t *conf = tkc_cli_load_conf(path, env_file);
    if (!conf)
        return TKC_EXIT_USAGE;
    if (!quiet) {
        char *dump = tkc_conf_dump(conf, true);
        fputs(dump, stdout);
        tkc_free(dump);
        fprintf(stderr, "%s: configuration OK\n", path);
    }
    tkc_conf_destroy(conf);
    return TKC_EXIT_OK;
}
