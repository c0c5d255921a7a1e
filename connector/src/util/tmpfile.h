/*
 * tmpfile.h: an anonymous scratch file in a given directory, for the
 * sorter's spill runs and the feed's spilled prewrites. The file has no
 * name (O_TMPFILE, or created and unlinked at once where the file system
 * lacks it), so nothing is left behind when the process dies.
 */
#ifndef TKC_UTIL_TMPFILE_H
#define TKC_UTIL_TMPFILE_H

/**
 * @brief Opens a new anonymous read/write file in @p dir; @p name_prefix
 *        names it briefly where O_TMPFILE is not supported (e.g. "tkc-spill").
 * @returns the descriptor (close-on-exec), or -1 with errno set.
 * @locality any thread
 */
int tkc_tmpfile_open(const char *dir, const char *name_prefix);

#endif
