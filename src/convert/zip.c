/* zip.c - see zip.h. */
#include "zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_format.h" /* rd_u16, rd_u32, rd_u64 */
#include "utf8.h"

#define EOCD_BYTES 22
#define EOCD64_LOCATOR_BYTES 20
#define EOCD64_BYTES 56
#define CENTRAL_BYTES 46
#define LOCAL_BYTES 30
#define MAX_COMMENT 65535

bool gpt2_zip_is_zip(const uint8_t *b, size_t n) { return n >= 4 && memcmp(b, "PK\3\4", 4) == 0; }

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const ZipEntry *)a)->name, ((const ZipEntry *)b)->name);
}

/* The end of central directory record: the last "PK\5\6" whose comment
 * ends exactly at the end of the archive. */
static bool find_eocd(const uint8_t *b, size_t n, size_t *at) {
    if (n < EOCD_BYTES) return false;
    size_t lowest = n - EOCD_BYTES > MAX_COMMENT ? n - EOCD_BYTES - MAX_COMMENT : 0;
    for (size_t i = n - EOCD_BYTES + 1; i-- > lowest;) {
        if (memcmp(b + i, "PK\5\6", 4) == 0 && i + EOCD_BYTES + rd_u16(b + i + 20) == n) {
            *at = i;
            return true;
        }
    }
    return false;
}

/* Where the central directory lies and how many entries it has, from the
 * zip64 records when the classic ones say 0xFFFF.. */
static bool central_directory(const uint8_t *b, size_t n, uint64_t *count, uint64_t *offset, uint64_t *bytes, char *err,
                              size_t errsz) {
    size_t e;
    if (!find_eocd(b, n, &e)) {
        snprintf(err, errsz, "damaged zip archive: no end of central directory record");
        return false;
    }
    *count = rd_u16(b + e + 10);
    *bytes = rd_u32(b + e + 12);
    *offset = rd_u32(b + e + 16);
    bool zip64 = *count == 0xFFFF || *bytes == 0xFFFFFFFF || *offset == 0xFFFFFFFF;
    if (e >= EOCD64_LOCATOR_BYTES && memcmp(b + e - EOCD64_LOCATOR_BYTES, "PK\6\7", 4) == 0) {
        uint64_t at = rd_u64(b + e - EOCD64_LOCATOR_BYTES + 8);
        if (at > n || n - at < EOCD64_BYTES || memcmp(b + at, "PK\6\6", 4) != 0) {
            snprintf(err, errsz, "damaged zip archive: its zip64 locator points outside the archive");
            return false;
        }
        *count = rd_u64(b + at + 32);
        *bytes = rd_u64(b + at + 40);
        *offset = rd_u64(b + at + 48);
    } else if (zip64) {
        snprintf(err, errsz, "damaged zip archive: zip64 sizes without a zip64 record");
        return false;
    }
    if (*offset > n || *bytes > n - *offset) {
        snprintf(err, errsz, "damaged zip archive: its central directory lies outside the archive");
        return false;
    }
    if (*count > *bytes / CENTRAL_BYTES) {
        snprintf(err, errsz, "damaged zip archive: %llu entries do not fit its central directory",
                 (unsigned long long)*count);
        return false;
    }
    return true;
}

/* The zip64 extended information of a central directory entry replaces
 * the fields that are 0xFFFFFFFF, in this order. */
static bool zip64_extra(const uint8_t *x, size_t len, uint64_t *usize, uint64_t *csize, uint64_t *local) {
    while (len >= 4) {
        unsigned id = rd_u16(x), size = rd_u16(x + 2);
        if (size > len - 4) return false;
        if (id == 0x0001) {
            const uint8_t *p = x + 4;
            unsigned left = size;
            uint64_t *fields[3] = {usize, csize, local};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xFFFFFFFF) continue;
                if (left < 8) return false;
                *fields[i] = rd_u64(p);
                p += 8, left -= 8;
            }
            return true;
        }
        x += 4 + size;
        len -= 4 + size;
    }
    return true;
}

static bool read_entry(const uint8_t *b, size_t n, uint64_t *at, uint64_t end, ZipEntry *e, char *err, size_t errsz) {
    const uint8_t *c = b + *at;
    if (end - *at < CENTRAL_BYTES || memcmp(c, "PK\1\2", 4) != 0) {
        snprintf(err, errsz, "damaged zip archive: a central directory entry is cut short or lacks its signature");
        return false;
    }
    unsigned name_len = rd_u16(c + 28), extra_len = rd_u16(c + 30), comment_len = rd_u16(c + 32);
    uint64_t total = (uint64_t)CENTRAL_BYTES + name_len + extra_len + comment_len;
    if (total > end - *at) {
        snprintf(err, errsz, "damaged zip archive: a central directory entry runs past the directory");
        return false;
    }
    uint64_t usize = rd_u32(c + 24), csize = rd_u32(c + 20), local = rd_u32(c + 42);
    if (!zip64_extra(c + CENTRAL_BYTES + name_len, extra_len, &usize, &csize, &local)) {
        snprintf(err, errsz, "damaged zip archive: bad zip64 extra field");
        return false;
    }
    e->name = malloc((size_t)name_len + 1);
    if (!e->name) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    memcpy(e->name, c + CENTRAL_BYTES, name_len);
    e->name[name_len] = '\0';
    char shown[UTF8_SHOWN];
    gpt2_utf8_shown(e->name, name_len, shown, sizeof shown);
    if (strlen(e->name) != name_len) {
        snprintf(err, errsz, "damaged zip archive: an entry name contains NUL");
        return false;
    }
    e->method = (uint16_t)rd_u16(c + 10);
    if (rd_u16(c + 8) & 1) {
        snprintf(err, errsz, "zip entry \"%s\" is encrypted", shown);
        return false;
    }
    if (local > n || n - local < LOCAL_BYTES || memcmp(b + local, "PK\3\4", 4) != 0) {
        snprintf(err, errsz, "damaged zip archive: entry \"%s\" has no local header where the directory says", shown);
        return false;
    }
    uint64_t data = local + LOCAL_BYTES + rd_u16(b + local + 26) + rd_u16(b + local + 28);
    if (data > n || csize > n - data) {
        snprintf(err, errsz, "damaged zip archive: entry \"%s\" runs past the end of the archive (truncated file?)",
                 shown);
        return false;
    }
    if (e->method == 0 && csize != usize) {
        snprintf(err, errsz, "damaged zip archive: stored entry \"%s\" has two different sizes", shown);
        return false;
    }
    e->data = e->method == 0 ? b + data : NULL;
    e->size = usize;
    *at += total;
    return true;
}

bool gpt2_zip_parse(Zip *z, const uint8_t *b, size_t n, char *err, size_t errsz) {
    memset(z, 0, sizeof *z);
    uint64_t count, offset, bytes;
    if (!central_directory(b, n, &count, &offset, &bytes, err, errsz)) return false;
    z->entries = calloc(count ? (size_t)count : 1, sizeof *z->entries); /* bounded by the directory's size */
    if (!z->entries) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    uint64_t at = offset;
    for (uint64_t i = 0; i < count; i++) {
        bool ok = read_entry(b, n, &at, offset + bytes, &z->entries[z->n], err, errsz);
        z->n++; /* its name, if any, is freed with the rest */
        if (!ok) {
            gpt2_zip_free(z);
            return false;
        }
    }
    qsort(z->entries, z->n, sizeof *z->entries, entry_cmp);
    for (size_t i = 1; i < z->n; i++) {
        if (strcmp(z->entries[i].name, z->entries[i - 1].name) == 0) {
            char shown[UTF8_SHOWN];
            snprintf(err, errsz, "damaged zip archive: entry \"%s\" is listed twice",
                     gpt2_utf8_shown(z->entries[i].name, strlen(z->entries[i].name), shown, sizeof shown));
            gpt2_zip_free(z);
            return false;
        }
    }
    return true;
}

void gpt2_zip_free(Zip *z) {
    for (size_t i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}

const ZipEntry *gpt2_zip_find(const Zip *z, const char *name) {
    ZipEntry key = {.name = (char *)name};
    if (z->n == 0) return NULL;
    return bsearch(&key, z->entries, z->n, sizeof *z->entries, entry_cmp);
}
