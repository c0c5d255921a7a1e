/*
 * fuzz_target.h: the libFuzzer entry points every tests/fuzz/fuzz_*.c
 * defines, declared once so -Wmissing-prototypes is satisfied and
 * replay_main.c can call them.
 *
 * Contract (libFuzzer's): LLVMFuzzerTestOneInput gets @p data (borrowed,
 * exactly @p size bytes, not NUL-terminated), must not keep state that
 * changes the next input's behaviour, and returns 0. Invariant violations
 * abort() so the fuzzer (or the replay test) reports them.
 */
#ifndef TKC_FUZZ_TARGET_H
#define TKC_FUZZ_TARGET_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant failed: say which and abort (a crash for the fuzzer). */
#define FUZZ_ASSERT(cond)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__,    \
                    __LINE__);                                                         \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A cursor over the fuzz input, for targets that read structured bytes. */
typedef struct fuzz_in_s {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in_t *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Up to @p want bytes (fewer at the end of the input), borrowed. */
static inline const uint8_t *fuzz_bytes(fuzz_in_t *in, size_t want, size_t *got)
{
    *got = want < in->n ? want : in->n;
    const uint8_t *p = in->p;
    in->p += *got;
    in->n -= *got;
    return p;
}

/* The connector logs every broken input; millions of lines would slow the
 * fuzzer down, so targets send them to /dev/null (the fd stays open). */
static inline void fuzz_quiet_logs(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        tkc_log_set_fd(fd);
}

#endif
