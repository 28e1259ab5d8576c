/* fileio.h - reading whole files, and error text for failed system calls.
 *
 * Owns the one way the program slurps a file or stream into memory, and the
 * one way it maps a large file (a model, a safetensors file) read-only, so
 * that every caller reports a missing or unreadable file the same way; and
 * the one way it touches the pages of memory before they are needed, or
 * makes fresh memory for a large table that is filled at once.
 */
#ifndef GPT2_FILEIO_H
#define GPT2_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "strbuf.h"

/* Appends the whole content of path to out.  On failure writes
 * "PATH: reason" to err and returns false. */
bool gpt2_fileio_read_file(const char *path, StrBuf *out, char *err, size_t errsz);

/* Appends everything left in f to out; what names f in the error message. */
bool gpt2_fileio_read_stream(FILE *f, const char *what, StrBuf *out, char *err, size_t errsz);

/* The same, refusing ("PATH: more than N MiB, the limit for this file") a
 * file or stream of more than max bytes, a regular file before reading it. */
bool gpt2_fileio_read_file_max(const char *path, size_t max, StrBuf *out, char *err, size_t errsz);
bool gpt2_fileio_read_stream_max(FILE *f, const char *what, size_t max, StrBuf *out, char *err, size_t errsz);

/* Maps the regular file at path read-only: *bytes, *n.  An empty file gives
 * n 0 and bytes pointing at "" (mmap refuses a length of 0).  A directory,
 * device, FIFO or socket is refused without waiting on it; `what` names
 * the expected kind of file in that message ("a model file").  On failure
 * writes the reason, without the path, to err. */
bool gpt2_fileio_map(const char *path, const char *what, const void **bytes, size_t *n, char *err, size_t errsz);
void gpt2_fileio_unmap(const void *bytes, size_t n);

/* Reads one byte of every 4 KiB page that p[0..n) touches: p itself, then
 * the start of each page after it, so no byte outside the range.  The
 * loads are atomic (relaxed): another thread may be writing there.  This
 * maps pages not yet mapped, and pays what a virtual machine may charge
 * for a page's first access from user space. */
void gpt2_fileio_touch(const void *p, size_t n);

/* n zeroed bytes for a table its maker fills right away (a hash table, a
 * copy of a file's section) or in order as it grows (a key/value cache),
 * or NULL.  From 1 MiB on they are a mapping of
 * their own, rounded up to 2 MiB pages, which Linux backs with huge pages
 * where it allows: on the virtual machines this was measured on, a fresh
 * 4 KiB page cost some 11 us on its first write, and a whole 2 MiB page
 * 0.4-2.8 ms.  Smaller tables come from calloc.  Free with
 * gpt2_fileio_free_table and the same n. */
void *gpt2_fileio_alloc_table(size_t n);
void gpt2_fileio_free_table(void *p, size_t n);

#endif
