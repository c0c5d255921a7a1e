/*
 * fuzz_config.c: fuzz target (3). Bytes as an INI file -> the config loader
 * (tkc_conf_load_string: libinih, the key table, value parsers, validation
 * and librdkafka's check of pass-through properties).
 *
 * Input: the INI text; if it holds a NUL byte, what follows is an
 * environment, one NAME=value per line, applied as tkc_conf_load's envp
 * (without one the environment is empty: the process environment never
 * leaks into a run, so every input replays the same way).
 *
 * Invariants (abort on violation):
 *   - NULL exactly when errors were reported; every message is one
 *     non-empty line of plain text (control bytes escaped);
 *   - a loaded config dumps, and its dump (without source comments) loads
 *     again without errors and dumps to the same text (the dump is the
 *     config's fixed point; `check-config` relies on it);
 *   - the value parsers' format functions give text that parses back to
 *     the same value (durations and sizes from the first line);
 *   - no crash, leak or UB.
 */
#include <string.h>

#include "conf.h"
#include "fuzz_target.h"
#include "util/mem.h"

#define MAX_ENV 32

/* One line of plain text: no control byte at all (a tab or CR in a quoted
 * value is escaped like a newline). */
static bool one_plain_line(const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void check_report(const tkc_conf_report_t *rep, bool loaded)
{
    FUZZ_ASSERT(loaded == (rep->n_errors == 0));
    for (size_t i = 0; i < rep->n_errors; i++) {
        FUZZ_ASSERT(rep->errors[i] && rep->errors[i][0] != '\0');
        FUZZ_ASSERT(one_plain_line(rep->errors[i]));
    }
    for (size_t i = 0; i < rep->n_warnings; i++) {
        FUZZ_ASSERT(rep->warnings[i] && rep->warnings[i][0] != '\0');
        FUZZ_ASSERT(one_plain_line(rep->warnings[i]));
    }
}

/* A loaded config's dump must load again, to the same dump. */
static void check_dump_round_trip(const tkc_conf_t *conf, char *const *envp)
{
    char *dump = tkc_conf_dump(conf, false);
    FUZZ_ASSERT(dump);
    char *with_sources = tkc_conf_dump(conf, true);
    FUZZ_ASSERT(with_sources);
    tkc_free(with_sources);
    tkc_conf_report_t rep = {0};
    tkc_conf_t *again = tkc_conf_load_string("fuzz.ini", dump, envp, &rep);
    if (!again) {
        for (size_t i = 0; i < rep.n_errors; i++)
            fprintf(stderr, "reload error: %s\n", rep.errors[i]);
        fprintf(stderr, "dump:\n%s\n", dump);
    }
    FUZZ_ASSERT(again);
    char *dump2 = tkc_conf_dump(again, false);
    if (strcmp(dump, dump2) != 0)
        fprintf(stderr, "dump 1:\n%s\ndump 2:\n%s\n", dump, dump2);
    FUZZ_ASSERT(strcmp(dump, dump2) == 0);
    tkc_free(dump2);
    tkc_conf_destroy(again);
    tkc_conf_report_clear(&rep);
    tkc_free(dump);
}

/* The first line of the input as a duration and as a size. */
static void check_value_parsers(const char *text)
{
    char line[128];
    size_t n = strcspn(text, "\r\n");
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    memcpy(line, text, n);
    line[n] = '\0';
    char err[256], buf[64];

    int64_t ms;
    if (tkc_conf_parse_duration(line, &ms, err, sizeof(err)) == 0) {
        tkc_conf_format_duration(ms, buf, sizeof(buf));
        int64_t ms2 = -1;
        FUZZ_ASSERT(tkc_conf_parse_duration(buf, &ms2, err, sizeof(err)) == 0);
        FUZZ_ASSERT(ms == ms2);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    uint64_t bytes;
    if (tkc_conf_parse_size(line, &bytes, err, sizeof(err)) == 0) {
        tkc_conf_format_size(bytes, buf, sizeof(buf));
        uint64_t bytes2 = 0;
        FUZZ_ASSERT(tkc_conf_parse_size(buf, &bytes2, err, sizeof(err)) == 0);
        FUZZ_ASSERT(bytes == bytes2);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    uint64_t tso;
    if (tkc_conf_parse_tso(line, &tso, err, sizeof(err)) != 0)
        FUZZ_ASSERT(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        fuzz_quiet_logs();
        quiet = true;
    }
    /* INI text, NUL, environment lines */
    char *text = tkc_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *envp[MAX_ENV + 1];
    size_t n_env = 0;
    size_t ini_len = strlen(text);
    if (ini_len < size) {
        char *env = text + ini_len + 1;
        char *save = NULL;
        for (char *tok = strtok_r(env, "\n", &save); tok && n_env < MAX_ENV;
             tok = strtok_r(NULL, "\n", &save))
            envp[n_env++] = tok;
    }
    envp[n_env] = NULL;

    check_value_parsers(text);

    tkc_conf_report_t rep = {0};
    tkc_conf_t *conf = tkc_conf_load_string("fuzz.ini", text, envp, &rep);
    check_report(&rep, conf != NULL);
    if (conf) {
        for (size_t i = 0; i < tkc_conf_span_count(conf); i++) {
            char name[256];
            tkc_conf_topic_name(conf, i, name, sizeof(name));
            FUZZ_ASSERT(memchr(name, '\0', sizeof(name)) != NULL);
            tkc_conf_span_name(conf, i, name, sizeof(name));
        }
        check_dump_round_trip(conf, envp);
        tkc_conf_destroy(conf);
    }
    tkc_conf_report_clear(&rep);
    tkc_free(text);
    return 0;
}
