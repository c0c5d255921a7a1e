/*
 * cli.c: subcommand dispatch, the top-level usage, and what subcommands
 * share (loading the configuration with an optional env file, printing a
 * load report, applying [log]).
 *
 * Usage text goes to stdout when asked for (--help) and to stderr when the
 * command line was wrong, so `tikv-kafka-cdc --help | less` works and a
 * wrong invocation in a script still shows up in its log.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/ratelimit.h"

extern char **environ;

typedef struct subcommand_s {
    const char *name;
    const char *args;
    const char *summary;
    int (*fn)(int argc, char **argv);
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"run", "--config FILE", "run the change feed into Kafka", tkc_cmd_run},
    {"check-config", "FILE", "validate a configuration file and print it (secrets masked)",
     tkc_cmd_check_config},
    {"lag", "[--config FILE] [--watch] [--serve ADDR]",
     "print the watermark lag per feed, read from Kafka", tkc_cmd_lag},
    {"version", "", "print the version and the library versions", tkc_cmd_version},
    {"demo", "[--duration SEC] [options]",
     "tikv-sim -> connector -> embedded Kafka, with a live status (make demo)", tkc_cmd_demo},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: tikv-kafka-cdc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-13s %s\n  %-13s   %s\n", subcommands[i].name, subcommands[i].args, "",
                subcommands[i].summary);
    fprintf(out,
            "\nRun 'tikv-kafka-cdc <command> --help' for a command's options.\n"
            "\nexit codes:\n"
            "  0  success\n"
            "  1  runtime failure (the feed stopped on an error, Kafka or PD unreachable, ...)\n"
            "  2  usage or configuration error\n"
            "  3  not available in this build\n"
            "\nconfiguration: docs/configuration.md; every key can be set from the environment\n"
            "as TKC_<SECTION>_<KEY> (e.g. TKC_KAFKA_BOOTSTRAP_SERVERS).\n");
}

bool tkc_cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int tkc_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TKC_EXIT_USAGE;
    }
    if (tkc_cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return TKC_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return tkc_cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tikv-kafka-cdc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return TKC_EXIT_USAGE;
}

void tkc_cli_print_report(FILE *out, const tkc_conf_report_t *rep)
{
    for (size_t i = 0; i < rep->n_errors; i++)
        fprintf(out, "error: %s\n", rep->errors[i]);
    for (size_t i = 0; i < rep->n_warnings; i++)
        fprintf(out, "warning: %s\n", rep->warnings[i]);
}

/* The environment plus the NAME=value lines of an env file (docker's
 * env_file syntax: comments, blank lines, no quotes). */
static char **env_with_file(const char *path, char ***owned, size_t *n_owned, char *err,
                            size_t err_size)
{
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char **extra = NULL;
    size_t n_extra = 0;
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        if (!strchr(p, '=')) {
            snprintf(err, err_size, "%s:%d: expected NAME=value", path, lineno);
            for (size_t i = 0; i < n_extra; i++)
                tkc_free(extra[i]);
            tkc_free(extra);
            fclose(f);
            return NULL;
        }
        extra = tkc_realloc(extra, (n_extra + 1) * sizeof(char *));
        extra[n_extra++] = tkc_strdup(p);
    }
    fclose(f);
    /* File entries first: the loader takes the first match, so they win. */
    char **envp = tkc_calloc(n_env + n_extra + 1, sizeof(char *));
    for (size_t i = 0; i < n_extra; i++)
        envp[i] = extra[i];
    for (size_t i = 0; i < n_env; i++)
        envp[n_extra + i] = environ[i];
    *owned = extra;
    *n_owned = n_extra;
    return envp;
}

tkc_conf_t *tkc_cli_load_conf(const char *path, const char *env_file)
{
    char **envp = NULL, **owned = NULL;
    size_t n_owned = 0;
    if (env_file) {
        char err[512];
        envp = env_with_file(env_file, &owned, &n_owned, err, sizeof(err));
        if (!envp) {
            fprintf(stderr, "error: %s\n", err);
            return NULL;
        }
    }
    tkc_conf_report_t rep = {0};
    tkc_conf_t *conf = tkc_conf_load(path, envp, &rep);
    tkc_cli_print_report(stderr, &rep);
    if (!conf)
        fprintf(stderr, "%s: %zu error%s\n", path ? path : "(environment)", rep.n_errors,
                rep.n_errors == 1 ? "" : "s");
    tkc_conf_report_clear(&rep);
    for (size_t i = 0; i < n_owned; i++)
        tkc_free(owned[i]);
    tkc_free(owned);
    tkc_free(envp);
    return conf;
}

void tkc_cli_apply_log(const tkc_conf_t *conf)
{
    tkc_log_set_level((tkc_log_level_t)conf->log.level);
    tkc_log_set_format((tkc_log_format_t)conf->log.format);
    tkc_log_ratelimit_set_interval(conf->log.warn_interval_ms);
}
