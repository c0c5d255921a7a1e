/*
 * tmpfile.c: see tmpfile.h. O_TMPFILE first (no name ever exists); when the
 * file system refuses it, mkostemp and an immediate unlink.
 */
#include "util/tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/mem.h"

int tkc_tmpfile_open(const char *dir, const char *name_prefix)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return -1;
#endif
    size_t n = strlen(dir) + 1 + strlen(name_prefix) + sizeof("-XXXXXX");
    char *path = tkc_malloc(n);
    snprintf(path, n, "%s/%s-XXXXXX", dir, name_prefix);
    int fd2 = mkostemp(path, O_CLOEXEC);
    if (fd2 >= 0)
        unlink(path);
    int saved = errno;
    tkc_free(path);
    errno = saved;
    return fd2;
}
