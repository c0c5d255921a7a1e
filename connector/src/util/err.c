/* err.c: names and descriptions for tkc_err_t, generated from TKC_ERRORS,
 * and the errstr formatter. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

void tkc_err_set(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (!errstr || !errstr_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

const char *tkc_err2str(tkc_err_t err)
{
    switch (err) {
#define X(name, val, desc)                                                   \
    case TKC_ERR_##name:                                                     \
        return desc;
        TKC_ERRORS(X)
#undef X
    }
    return "Unknown error";
}

const char *tkc_err2name(tkc_err_t err)
{
    switch (err) {
#define X(name, val, desc)                                                   \
    case TKC_ERR_##name:                                                     \
        return #name;
        TKC_ERRORS(X)
#undef X
    }
    return "UNKNOWN";
}
