/*
 * cli.h: the tikv-kafka-cdc command line: one function per subcommand
 * (cmd_<name>.c) and the shared pieces they use.
 *
 *   tikv-kafka-cdc run --config FILE       run the change feed into Kafka
 *   tikv-kafka-cdc check-config FILE       validate; print the effective config
 *   tikv-kafka-cdc lag [options]           watermark lag per feed, from Kafka
 *   tikv-kafka-cdc version                 versions of the program and its libraries
 *   tikv-kafka-cdc demo                    see `make demo`
 *
 * Exit codes (run.h): 0 success, 1 runtime failure, 2 usage or
 * configuration error, 3 not available in this build.
 *
 * Only the CLI prints to stdout/stderr directly (usage, reports, tables);
 * everything else logs through tkc_log.
 */
#ifndef TKC_CLI_H
#define TKC_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

/** The program: dispatches argv[1] to a subcommand. @returns the exit code. */
int tkc_cli_main(int argc, char **argv);

/* Subcommands: argv[0] is the subcommand name. Each handles --help. */
int tkc_cmd_run(int argc, char **argv);
int tkc_cmd_check_config(int argc, char **argv);
int tkc_cmd_lag(int argc, char **argv);
int tkc_cmd_version(int argc, char **argv);
int tkc_cmd_demo(int argc, char **argv);

/** Prints every error and warning of a load to @p out ("error: ...", "warning: ..."). */
void tkc_cli_print_report(FILE *out, const tkc_conf_report_t *rep);

/**
 * @brief Loads @p path like tkc_conf_load(), with the process environment
 *        plus the NAME=value lines of @p env_file (may be NULL) on top.
 *        Prints the report to stderr.
 * @returns the configuration or NULL (errors printed).
 */
tkc_conf_t *tkc_cli_load_conf(const char *path, const char *env_file);

/** Applies [log] (level, format, warning interval) to the logger. */
void tkc_cli_apply_log(const tkc_conf_t *conf);

/** True if @p arg is -h or --help. */
bool tkc_cli_is_help(const char *arg);

#endif
