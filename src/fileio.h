/* fileio.h - reading whole files, and error text for failed system calls.
 *
 * Owns the one way the program slurps a file or stream into memory, so that
 * every caller reports a missing or unreadable file the same way.
 */
#ifndef GPT2_FILEIO_H
#define GPT2_FILEIO_H

#include <stdbool.h>
#include <stdio.h>

#include "strbuf.h"

/* Appends the whole content of path to out.  On failure writes
 * "PATH: reason" to err and returns false. */
bool read_whole_file(const char *path, StrBuf *out, char *err, size_t errsz);

/* Appends everything left in f to out; what names f in the error message. */
bool read_whole_stream(FILE *f, const char *what, StrBuf *out, char *err, size_t errsz);

#endif
