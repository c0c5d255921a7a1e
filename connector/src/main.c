/*
 * main.c: the tikv-kafka-cdc program. Everything lives in cli.c and the
 * cmd_*.c subcommands; this file only hands argv over, so the tests can
 * link the whole command line without a second main().
 *
 * Exit codes (README, `tikv-kafka-cdc --help`):
 *   0  success
 *   1  runtime failure (the feed stopped on an error, Kafka or PD unreachable)
 *   2  usage or configuration error
 *   3  the subcommand or a configured feature is not available in this build
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return tkc_cli_main(argc, argv);
}
