/* zip.h - reading the entries of a zip archive held in memory.
 *
 * Owns the part of the zip format that torch.save writes: the end of
 * central directory record (and its zip64 form, used past 4 GiB or 65535
 * entries), the central directory, and each entry's local header, which
 * locates its data.  Entries are named by the central directory; the sizes
 * of the local header are not trusted (torch leaves them zero and writes a
 * data descriptor).  Only stored (uncompressed) entries can be read, which
 * is all torch writes.  Every offset and size is checked against the
 * archive, so an entry's data always lies inside it.
 */
#ifndef GPT2_ZIP_H
#define GPT2_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;          /* NUL-terminated; an entry whose name holds NUL is refused */
    const uint8_t *data; /* inside the archive; NULL for a compressed entry */
    uint64_t size;
    uint16_t method; /* 0: stored */
} ZipEntry;

typedef struct {
    ZipEntry *entries; /* [n], sorted by name */
    size_t n;
} Zip;

/* Whether b[0..n) starts like a zip archive (a local file header). */
bool gpt2_zip_is_zip(const uint8_t *b, size_t n);

/* Reads the directory of the archive b[0..n) (which must outlive z). */
bool gpt2_zip_parse(Zip *z, const uint8_t *b, size_t n, char *err, size_t errsz);
void gpt2_zip_free(Zip *z);

const ZipEntry *gpt2_zip_find(const Zip *z, const char *name);

#endif
