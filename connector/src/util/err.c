/* err.c: names and descriptions for tkc_err_t, generated from TKC_ERRORS. */
#include "util/err.h"

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
