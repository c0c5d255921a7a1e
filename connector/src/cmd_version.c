/*
 * cmd_version.c: `tikv-kafka-cdc version`.
 *
 * Library versions are the ones loaded at run time where the library can
 * tell (gRPC core, librdkafka, libmicrohttpd, jansson, libcurl), and the
 * build-time pkg-config version for avro-c and inih, which have no version
 * call. gRPC core reports its core ABI version (29.0.0 is release 1.51).
 */
#include <curl/curl.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run.h"

#ifndef TKC_AVRO_C_VERSION
#define TKC_AVRO_C_VERSION "unknown"
#endif
#ifndef TKC_INIH_VERSION
#define TKC_INIH_VERSION "unknown"
#endif

int tkc_cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        FILE *out = tkc_cli_is_help(argv[1]) ? stdout : stderr;
        fprintf(out, "usage: tikv-kafka-cdc version\n\nPrints the version of the program and "
                     "of the libraries it uses.\nexit code: 0.\n");
        return out == stdout ? TKC_EXIT_OK : TKC_EXIT_USAGE;
    }
    printf("tikv-kafka-cdc %s\n", TKC_VERSION);
    printf("  gRPC core      %s (\"%s\")\n", grpc_version_string(), grpc_g_stands_for());
    printf("  librdkafka     %s\n", rd_kafka_version_str());
    printf("  avro-c         %s (build)\n", TKC_AVRO_C_VERSION);
    printf("  libmicrohttpd  %s\n", MHD_get_version());
    printf("  jansson        %s\n", jansson_version_str());
    printf("  libcurl        %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("  inih           r%s (build)\n", TKC_INIH_VERSION);
    return TKC_EXIT_OK;
}
