/*
 * main.c: the tikv-kafka-cdc command line.
 *
 * Subcommands: run, check-config, demo, lag, version. Exit codes:
 *   0  success
 *   1  runtime failure (the feed stopped on an error)
 *   2  usage or configuration error
 *   3  the subcommand is not available in this build yet
 */
#include <stdio.h>
#include <string.h>

#include "util/log.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_UNAVAILABLE 3

typedef struct {
    const char *name;
    const char *args;
    const char *summary;
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"run", "--config FILE", "run the change feed into Kafka"},
    {"check-config", "FILE", "validate a configuration file and exit"},
    {"demo", "", "run against tikv-sim with an embedded Kafka"},
    {"lag", "--config FILE", "print the watermark lag per feed"},
    {"version", "", "print the version"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tikv-kafka-cdc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(out, "  %-13s %-14s %s\n", subcommands[i].name, subcommands[i].args,
                subcommands[i].summary);
    fprintf(out, "\nRun 'tikv-kafka-cdc <command> --help' for a command's options.\n");
}

static const subcommand_t *find_subcommand(const char *name)
{
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(subcommands[i].name, name) == 0)
            return &subcommands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const subcommand_t *cmd = find_subcommand(argv[1]);
    if (!cmd) {
        fprintf(stderr, "tikv-kafka-cdc: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        printf("usage: tikv-kafka-cdc %s %s\n  %s\n", cmd->name, cmd->args, cmd->summary);
        return 0;
    }
    if (strcmp(cmd->name, "version") == 0) {
        printf("tikv-kafka-cdc %s\n", TKC_VERSION);
        return 0;
    }
    tkc_log(TKC_LOG_ERROR, "main", "event=unavailable command=%s msg=\"not built yet\"",
            cmd->name);
    return EXIT_UNAVAILABLE;
}
