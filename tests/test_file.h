/*
 * test_file.h: a whole file as one NUL-terminated string, for tests that
 * read a reference file, a schema, a truth or ports file the code under
 * test wrote. Header-only so that every test directory can use it without
 * another library.
 */
#ifndef TKC_TEST_FILE_H
#define TKC_TEST_FILE_H

#include <stdio.h>
#include <stdlib.h>

/*
 * Returns the file's bytes plus a NUL (free() or tkc_free() it), its length
 * in @p len when not NULL; NULL when the file cannot be opened. Aborts when
 * memory runs out (a test has nothing better to do).
 */
static inline char *tkc_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

#endif
